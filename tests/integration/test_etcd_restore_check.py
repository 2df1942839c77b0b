# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""baremetal.k8s.etcd_restore_check: real snapshots of a real 3-member TLS etcd, restored by the real etcdutl
into a real throwaway etcd (the harness's binaries, built by tools/k8s-build/build.sh etcd).

A snapshot holding what a kubeadm cluster holds passes; the same module fails, saying why and at which step,
on a snapshot with a flipped byte, on one whose manifest was rewritten to match the damage (etcd's trailer
still catches it), and on a good snapshot of an etcd that is not a Kubernetes cluster's. The etcd server can
also come out of an image archive (what the air-gap set ships). Nothing is left in the work directory.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import tarfile

from etcd_gateway import flip
from test_etcd_membership import TIMEOUT, client, etcd3, etcd_bin, etcd_pki, no_traceback, run_module
from test_etcd_snapshot import etcdutl, snapshot

__all__ = ["etcd3", "etcd_bin", "etcd_pki"]  # fixtures, imported for pytest

KUBERNETES_KEYS = ["/registry/namespaces/default", "/registry/namespaces/kube-system",
                   "/registry/services/specs/default/kubernetes", "/registry/configmaps/kube-system/kubeadm-config",
                   "/registry/minions/node-1", "/registry/minions/node-2"]


def put(cluster, keys) -> None:
    etcd = client(cluster)
    for key in keys:
        etcd._request(cluster.members[0].client_url + "/v3/kv/put",
                      {"key": base64.b64encode(key.encode()).decode(),
                       "value": base64.b64encode(b"k8s\0" + os.urandom(64)).decode()})


def restore_check(cluster, path, work_dir, check: bool = False, **extra) -> dict:
    args = {"path": str(path), "etcd_binary": os.path.join(str(cluster.bin_dir), "etcd"),
            "etcdutl": etcdutl(cluster), "work_dir": str(work_dir), "timeout": 60, **extra}
    return run_module("etcd_restore_check", args, check=check)


def image_archive(path, etcd_binary) -> None:
    """A docker-archive with the etcd server at /usr/local/bin/etcd (the layout docker save writes)."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w", dereference=True) as tar:  # the harness's bin dir holds links
        tar.add(etcd_binary, arcname="usr/local/bin/etcd")
    layer_bytes = layer.getvalue()
    digest = hashlib.sha256(layer_bytes).hexdigest()
    manifest = json.dumps([{"Config": "config.json", "RepoTags": ["registry.k8s.io/etcd:test"],
                            "Layers": [digest + "/layer.tar"]}]).encode()
    with tarfile.open(path, "w") as tar:
        for name, data in ((digest + "/layer.tar", layer_bytes), ("config.json", b"{}"), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_a_snapshot_of_a_kubernetes_etcd_restores_and_holds_its_keys(etcd3, tmp_path):
    put(etcd3, KUBERNETES_KEYS)
    taken = snapshot(etcd3, tmp_path / "backups")
    assert not taken.get("failed"), taken
    work = tmp_path / "work"
    work.mkdir()

    result = restore_check(etcd3, taken["path"], work)
    assert not result.get("failed"), result.get("msg")
    check = result["check"]
    assert result["changed"] is False and check["ok"] is True and check["step"] == "done"
    assert check["problems"] == []
    assert check["keys"] == {"/registry/namespaces/default": 1, "/registry/namespaces/kube-system": 1,
                             "/registry/services/specs/default/kubernetes": 1,
                             "/registry/configmaps/kube-system/kubeadm-config": 1, "/registry/minions/": 2}
    assert check["total_keys"] >= len(KUBERNETES_KEYS)
    assert check["revision"] >= check["manifest_revision"] == taken["revision"]
    assert check["etcd_version"].startswith("3.")
    assert set(check["seconds"]) == {"verify", "restore", "start", "read"}
    assert os.listdir(work) == []  # the restored data and the throwaway etcd are gone
    print("restore check of a %d-byte snapshot: %s" % (taken["size"], check["seconds"]))

    # Check mode runs the same check (it leaves nothing behind).
    checked = restore_check(etcd3, taken["path"], work, check=True)
    assert not checked.get("failed"), checked.get("msg")
    assert checked["changed"] is False and checked["check"]["ok"] is True

    # The etcd server taken out of an image archive, as the air-gap set ships it.
    image = tmp_path / "etcd.tar"
    image_archive(image, os.path.join(str(etcd3.bin_dir), "etcd"))
    from_image = run_module("etcd_restore_check", {"path": taken["path"], "etcd_image": str(image),
                                                   "etcdutl": etcdutl(etcd3), "work_dir": str(work)})
    assert not from_image.get("failed"), from_image.get("msg")
    assert from_image["check"]["ok"] is True and os.listdir(work) == []


def test_damaged_or_foreign_snapshots_fail_with_the_reason(etcd3, tmp_path):
    put(etcd3, ["/app/config", "/app/state"])  # an etcd, but not a Kubernetes cluster's
    foreign = snapshot(etcd3, tmp_path / "foreign")
    assert not foreign.get("failed"), foreign
    put(etcd3, KUBERNETES_KEYS)
    good = snapshot(etcd3, tmp_path / "good")
    assert not good.get("failed"), good
    work = tmp_path / "work"
    work.mkdir()

    # Restores and starts, but holds no cluster: each missing key named.
    result = restore_check(etcd3, foreign["path"], work)
    no_traceback(result)
    assert result["failed"] and result["check"]["step"] == "done" and result["check"]["ok"] is False
    assert "the key /registry/namespaces/kube-system is missing" in result["msg"], result["msg"]
    assert "no key under the prefix /registry/minions/" in result["msg"] and "Fix:" in result["msg"]
    assert result["check"]["keys"]["/registry/minions/"] == 0

    # A flipped byte: refused at the first step, etcd never started.
    flip(good["path"], os.path.getsize(good["path"]) // 2)
    damaged = restore_check(etcd3, good["path"], work)
    no_traceback(damaged)
    assert damaged["failed"] and damaged["check"]["step"] == "verify"
    assert "differs from the manifest" in damaged["msg"] and "trailer does not match" in damaged["msg"]

    # The manifest rewritten to match the damage: etcd's own trailer still refuses it.
    manifest_file = good["path"] + ".json"
    with open(manifest_file) as handle:
        manifest = json.load(handle)
    with open(good["path"], "rb") as handle:
        manifest["sha256"] = hashlib.sha256(handle.read()).hexdigest()
    with open(manifest_file, "w") as handle:
        json.dump(manifest, handle)
    rewritten = restore_check(etcd3, good["path"], work)
    assert rewritten["failed"] and rewritten["check"]["step"] == "verify"
    assert "trailer does not match" in rewritten["msg"] and "differs from the manifest" not in rewritten["msg"]
    assert os.listdir(work) == []

    # Bad options: named, with the fix.
    missing = restore_check(etcd3, good["path"], work, etcdutl=str(tmp_path / "nope"))
    no_traceback(missing)
    assert missing["failed"] and "etcdutl" in missing["msg"] and "Fix:" in missing["msg"]
    not_image = run_module("etcd_restore_check", {"path": good["path"], "etcd_image": manifest_file,
                                                  "etcdutl": etcdutl(etcd3), "timeout": TIMEOUT})
    no_traceback(not_image)
    assert not_image["failed"] and "not a docker image archive" in not_image["msg"]
