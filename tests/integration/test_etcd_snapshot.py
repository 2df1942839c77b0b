# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""baremetal.k8s.etcd_snapshot and etcd_backups against a real 3-member TLS etcd cluster on loopback.

The cluster is tests/integration/etcd_cluster.py's (kubeadm-like: TLS with client certificates). The
snapshot is streamed from etcd's v3 gateway for real and its etcd sha256 trailer checked in Python, and
etcd's own tool checks the same files: ``etcdutl snapshot status`` reads the good one and ``etcdutl snapshot
restore`` restores it, and refuses the one with a flipped byte ("expected sha256 [...], got [...]"). etcdutl
is part of tools/k8s-build/build.sh's etcd component, so it is beside etcd in the harness's binaries; the
tests fail, never skip, without it (etcdctl 3.6 no longer reads snapshot files).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import subprocess
import time
from pathlib import Path

from ansible_collections.baremetal.k8s.plugins.module_utils.etcd_backup import (
    digest_file,
    parse_snapshot_name,
    snapshot_name,
    verify_snapshot,
)
from test_etcd_membership import TIMEOUT, by_name, client, etcd3, etcd_bin, etcd_pki, no_traceback, run_module

__all__ = ["etcd3", "etcd_bin", "etcd_pki"]  # fixtures, imported for pytest


def etcdutl(cluster) -> str:
    """The etcdutl beside the etcd the cluster runs (the harness's binaries); fails when it is not there."""
    tool = os.path.join(str(cluster.bin_dir), "etcdutl")
    assert os.access(tool, os.X_OK), (
        f"{tool} is missing: tools/k8s-build/build.sh etcd builds it with etcd (BMK8S_BIN_DIR must hold it too)")
    return tool


def put_keys(cluster, count: int = 20, size: int = 20000) -> None:
    """COUNT keys of SIZE random-ish bytes, through the gateway, so the database is not trivial."""
    etcd = client(cluster)
    value = base64.b64encode(os.urandom(size)).decode()
    for index in range(count):
        etcd._request(cluster.members[0].client_url + "/v3/kv/put",
                      {"key": base64.b64encode(b"/registry/test/%d" % index).decode(), "value": value})


def snapshot(cluster, dest, check: bool = False, **extra) -> dict:
    return run_module("etcd_snapshot", {**cluster.auth, "timeout": TIMEOUT, "cluster": "c1", "dest": str(dest),
                                        **extra}, check=check)


def test_snapshot_of_a_healthy_cluster_verifies(etcd3, tmp_path):
    put_keys(etcd3)
    dest = tmp_path / "backups"
    leader = etcd3.leader()

    checked = snapshot(etcd3, dest, check=True)
    assert not checked.get("failed"), checked.get("msg")
    assert checked["changed"] is True and checked["member"] != leader and checked["manifest"] is None
    assert not dest.exists()  # check mode writes nothing

    result = snapshot(etcd3, dest)
    assert not result.get("failed"), result
    assert result["changed"] is True
    # A follower, not the leader, and the reason says so.
    assert result["member"] != leader and "follower" in result["member_reason"]
    assert result["endpoint"] == etcd3.member(result["member"]).client_url
    path = result["path"]
    assert os.path.basename(path) == result["name"]
    parsed = parse_snapshot_name(result["name"])
    assert parsed.cluster == "c1" and parsed.revision == result["revision"] >= 21
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(result["manifest_path"]).st_mode) == 0o600
    assert sorted(os.listdir(dest)) == [result["name"], result["name"] + ".json"]  # no .part left
    manifest = json.loads(Path(result["manifest_path"]).read_text())
    assert manifest == result["manifest"]
    assert manifest["cluster"] == "c1" and manifest["member"] == result["member"]
    assert manifest["etcd_hash_ok"] is True and manifest["etcd_version"].startswith("3.")
    assert manifest["size"] == os.path.getsize(path) > 20 * 20000
    assert manifest["sha256"] == digest_file(path).sha256
    check = verify_snapshot(path)
    assert check.ok, check.reasons
    # etcd's own reading of the file agrees.
    tool = etcdutl(etcd3)
    proc = subprocess.run([tool, "snapshot", "status", path, "-w", "json"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout)
    assert status["revision"] >= result["revision"] and status["totalKey"] >= 20, status
    proc = subprocess.run([tool, "snapshot", "restore", path, "--data-dir", str(tmp_path / "restored")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0 and (tmp_path / "restored" / "member" / "snap" / "db").exists(), proc.stderr

    # The listing finds it, verified, as the newest.
    listed = run_module("etcd_backups", {"path": str(dest), "cluster": "c1"})
    assert not listed.get("failed"), listed
    assert listed["newest_verified"]["name"] == result["name"]
    assert listed["newest_verified"]["revision"] == result["revision"]
    assert 0 <= listed["newest_verified"]["age_seconds"] < 120
    full = run_module("etcd_backups", {"path": str(dest), "cluster": "c1", "action": "verify"})
    assert not full.get("failed"), full
    assert full["snapshots"][0]["verified"] and full["snapshots"][0]["sha256"] == manifest["sha256"]


def test_with_one_member_killed_it_snapshots_from_a_healthy_one(etcd3, tmp_path):
    put_keys(etcd3, count=5)
    # Kill a follower: the default would otherwise pick it first.
    leader = etcd3.leader()
    victim = next(m.name for m in etcd3.members if m.name != leader)
    etcd3.kill(victim)
    etcd3.wait_healthy(timeout=30)

    result = snapshot(etcd3, tmp_path)
    assert not result.get("failed"), result
    assert result["member"] != victim and result["member"] in [m.name for m in etcd3.running()]
    assert victim in [s["name"] for s in result["passed_over"]]
    assert "not healthy" in by_name({"members": result["passed_over"]})[victim]["reason"]
    assert verify_snapshot(result["path"]).ok

    # Asked for the dead member by name: refused, not silently another one; nothing written.
    before = sorted(os.listdir(tmp_path))
    refused = snapshot(etcd3, tmp_path, member=victim)
    no_traceback(refused)
    assert refused["failed"] and f"member {victim} is not healthy" in refused["msg"] and "Fix:" in refused["msg"]
    assert sorted(os.listdir(tmp_path)) == before


def test_no_healthy_member_is_a_clear_failure(etcd3, tmp_path):
    for member in etcd3.members:
        etcd3.kill(member.name)
    result = snapshot(etcd3, tmp_path / "d")
    no_traceback(result)
    assert result["failed"] and "no etcd endpoint answered" in result["msg"]
    assert not (tmp_path / "d").exists()


def test_flipped_bytes_fail_verification(etcd3, tmp_path):
    result = snapshot(etcd3, tmp_path)
    assert not result.get("failed"), result
    path = result["path"]
    with open(path, "r+b") as handle:
        handle.seek(os.path.getsize(path) // 2)
        byte = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([byte[0] ^ 0xFF]))
    check = verify_snapshot(path)
    assert not check.ok
    assert any("trailer does not match" in r for r in check.reasons), check.reasons
    assert any("differs from the manifest" in r for r in check.reasons), check.reasons
    # etcd's restore refuses it too.
    proc = subprocess.run([etcdutl(etcd3), "snapshot", "restore", path, "--data-dir", str(tmp_path / "restored")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode != 0 and "expected sha256" in proc.stderr, proc.stderr
    shutil.rmtree(tmp_path / "restored", ignore_errors=True)
    full = run_module("etcd_backups", {"path": str(tmp_path), "cluster": "c1", "action": "verify"})
    no_traceback(full)
    assert full["failed"] and "1 of 1 snapshots of c1 do not verify" in full["msg"]
    assert full["newest_verified"] is None


def test_prune_of_seven_snapshots_keeps_the_five_newest(etcd3, tmp_path):
    """Seven real snapshots, named an hour apart (a copy of a real one renamed, manifests adjusted)."""
    first = snapshot(etcd3, tmp_path)
    assert not first.get("failed"), first
    source = first["path"]
    manifest = json.loads(Path(first["manifest_path"]).read_text())
    now = time.time()
    names = []
    for hours in range(7):
        name = snapshot_name("c1", now - 3600 * (hours + 1), first["revision"] + 6 - hours)
        names.append(name)
        with open(source, "rb") as src, open(tmp_path / name, "wb") as out:
            out.write(src.read())
        (tmp_path / (name + ".json")).write_text(json.dumps(manifest))
    os.unlink(source)
    os.unlink(first["manifest_path"])
    (tmp_path / "notes.db").write_text("not ours")
    args = {"path": str(tmp_path), "cluster": "c1", "keep_last": 5, "action": "prune", "now": now}

    checked = run_module("etcd_backups", args, check=True)
    assert not checked.get("failed"), checked.get("msg")
    assert checked["changed"] is True and checked["pruned"] == names[5:]
    assert checked["diff"]["before"]["snapshots"] == names and checked["diff"]["after"]["snapshots"] == names[:5]
    assert len(os.listdir(tmp_path)) == 15  # nothing deleted in check mode

    pruned = run_module("etcd_backups", args)
    assert not pruned.get("failed"), pruned
    assert pruned["changed"] is True and pruned["pruned"] == names[5:]
    assert sorted(os.listdir(tmp_path)) == sorted(["notes.db", ".bmk8s-verified.json", *names[:5],
                                                   *(n + ".json" for n in names[:5])])
    assert pruned["ignored"] == ["notes.db"]
    assert pruned["newest_verified"]["name"] == names[0]

    again = run_module("etcd_backups", args)
    assert again["changed"] is False and again["pruned"] == []
