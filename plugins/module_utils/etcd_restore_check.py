# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restore a snapshot into a throwaway etcd and look inside: an untested backup is not a backup.

``check_snapshot()`` does, in order, and stops at the first step that fails:

1. ``verify_snapshot`` (etcd_backup.py): the file, etcd's sha256 trailer, the manifest's sha256 and size;
2. ``etcdutl snapshot restore`` into a private temporary directory (mode 0700) - etcd's own check of the
   file and the proof that it restores;
3. ``etcd`` started on loopback with plain HTTP on free ports, alone, and waited for until /health says so;
4. every expected key or prefix counted, and all keys (``EtcdClient.count``), and the revision read back;
5. etcd stopped and the directory removed, always, also when a step failed.

``judge()`` is the pure part: from what was read, the problems, each naming the key and what it means. The
processes are started through ``run``/``spawn`` (subprocess's by default) and the clock is ``clock``, so the
steps can be driven without an etcd; tests/integration/test_etcd_restore_check.py runs the real ones.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass, field

from .etcd_backup import EtcdBackupError, human_age, verify_snapshot
from .etcd_client import EtcdClient, EtcdError

# What every kubeadm cluster's etcd holds (Kubernetes keeps its objects under /registry). A key ending in "/"
# is a prefix that must have at least one key under it.
KUBERNETES_KEYS = (
    "/registry/namespaces/default",
    "/registry/namespaces/kube-system",
    "/registry/services/specs/default/kubernetes",
    "/registry/configmaps/kube-system/kubeadm-config",
    "/registry/minions/",
)
# Where the etcd image (registry.k8s.io/etcd, and the air-gap set's images/etcd.tar) keeps the server.
ETCD_IN_IMAGE = "usr/local/bin/etcd"
STARTUP_TIMEOUT = 60.0
LOG_TAIL = 15  # lines of etcd's log quoted when it does not come up


class RestoreCheckError(EtcdBackupError):
    """The check could not run (a missing tool, an image without etcd, a bad option); names the fix."""


@dataclass
class CheckResult:
    """What the check found; ``problems`` is empty when the snapshot restored and holds what it should."""

    path: str
    ok: bool = False
    problems: list[str] = field(default_factory=list)
    step: str = "verify"  # the step reached: verify, restore, start, read, done
    keys: dict[str, int] = field(default_factory=dict)  # expected key or prefix -> count
    total_keys: int | None = None
    revision: int | None = None  # the restored etcd's revision
    manifest_revision: int | None = None
    etcd_version: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # step -> wall seconds

    def as_dict(self) -> dict:
        return {"path": self.path, "ok": self.ok, "problems": list(self.problems), "step": self.step,
                "keys": dict(self.keys), "total_keys": self.total_keys, "revision": self.revision,
                "manifest_revision": self.manifest_revision, "etcd_version": self.etcd_version,
                "seconds": {k: round(v, 2) for k, v in self.seconds.items()}}


def check_expected(expected) -> list[str]:
    """EXPECTED as a list of non-empty strings; raises RestoreCheckError otherwise."""
    if not isinstance(expected, (list, tuple)) or not all(isinstance(k, str) and k for k in expected):
        raise RestoreCheckError("expected_keys must be a list of keys or prefixes (a prefix ends with /)",
                                "give keys such as /registry/namespaces/default", where="expected_keys")
    return list(expected)


def judge(keys: dict, total_keys: int, revision: int, manifest_revision: int | None, min_keys: int) -> list[str]:
    """The problems with what the restored etcd holds (pure)."""
    problems = []
    for key, count in keys.items():
        if count == 0:
            what = "no key under the prefix %s" % key if key.endswith("/") else "the key %s is missing" % key
            problems.append(what + ": the snapshot is not of a working Kubernetes cluster (or of another one)")
    if total_keys < min_keys:
        problems.append("it holds %d keys, fewer than min_keys=%d: an empty or truncated database"
                        % (total_keys, min_keys))
    if manifest_revision is not None and revision < manifest_revision:
        problems.append("its revision %d is older than the manifest's %d: it is not the snapshot the manifest "
                        "describes" % (revision, manifest_revision))
    return problems


def extract_etcd(image: str, dest: str, member: str = ETCD_IN_IMAGE) -> str:
    """Copy MEMBER (the etcd server) out of a docker-archive IMAGE into DEST (mode 0755); DEST.

    The archive is what ``docker save`` writes and the air-gap set ships: manifest.json names the layers,
    the last layer that has the file wins. Raises RestoreCheckError naming the archive and the fix.
    """
    fix = "give etcd_binary (an etcd server of the snapshot's version) or the etcd image archive of the artifact set"
    try:
        with tarfile.open(image) as outer:
            manifest = json.load(outer.extractfile("manifest.json"))
            layers = manifest[0]["Layers"]
            data = None
            for layer in layers:
                with tarfile.open(fileobj=io.BytesIO(outer.extractfile(layer).read())) as inner:
                    names = {m.name.lstrip("./"): m for m in inner.getmembers()}
                    if member in names and names[member].isfile():
                        data = inner.extractfile(names[member]).read()
    except FileNotFoundError:
        raise RestoreCheckError("the image archive does not exist", fix, where=image) from None
    except (OSError, tarfile.TarError, KeyError, IndexError, TypeError, ValueError) as exc:
        raise RestoreCheckError("not a docker image archive (%s)" % exc, fix, where=image) from None
    if data is None:
        raise RestoreCheckError("no %s in the image" % member, fix, where=image)
    tmp = dest + ".part"
    with open(tmp, "wb") as handle:
        handle.write(data)
    os.chmod(tmp, 0o755)
    os.replace(tmp, dest)
    return dest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: str, lines: int = LOG_TAIL) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return "".join(handle.readlines()[-lines:]).strip()
    except OSError:
        return ""


def check_snapshot(path: str, *, etcd: str, etcdutl: str, expected=KUBERNETES_KEYS, min_keys: int = 1,
                   work_dir: str | None = None, timeout: float = STARTUP_TIMEOUT, run=subprocess.run,
                   spawn=subprocess.Popen, clock=time.monotonic, sleep=time.sleep) -> CheckResult:
    """Restore the snapshot at PATH with ETCDUTL, start ETCD on it and check it (see the module docstring)."""
    expected = check_expected(expected)
    for option, tool in (("etcd_binary", etcd), ("etcdutl", etcdutl)):
        if not (tool and os.path.isfile(tool) and os.access(tool, os.X_OK)):
            raise RestoreCheckError("%s is not an executable file" % tool,
                                    "install it from the air-gap artifact set (bin/etcdutl, images/etcd.tar) "
                                    "or give its path", where=option)
    result = CheckResult(path)
    started = clock()
    verification = verify_snapshot(path)
    result.seconds["verify"] = clock() - started
    if verification.manifest:
        result.manifest_revision = verification.manifest.get("revision")
    if not verification.ok:
        result.problems.extend(verification.reasons)
        return result

    scratch = tempfile.mkdtemp(prefix="bmk8s-etcd-check-", dir=work_dir)  # mkdtemp: mode 0700
    proc = None
    try:
        data_dir, log_path = os.path.join(scratch, "data"), os.path.join(scratch, "etcd.log")
        peer_url = "http://127.0.0.1:%d" % free_port()
        client_url = "http://127.0.0.1:%d" % free_port()
        member = "restore-check"
        result.step, step_start = "restore", clock()
        restored = run([etcdutl, "snapshot", "restore", path, "--data-dir", data_dir, "--name", member,
                        "--initial-cluster", "%s=%s" % (member, peer_url), "--initial-advertise-peer-urls", peer_url],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=max(timeout, 300.0), check=False)
        result.seconds["restore"] = clock() - step_start
        if restored.returncode != 0:
            result.problems.append("etcdutl snapshot restore failed (exit %d): %s"
                                   % (restored.returncode, (restored.stdout or "").strip()[-800:]))
            return result

        result.step, step_start = "start", clock()
        with open(log_path, "wb") as log:
            proc = spawn([etcd, "--name", member, "--data-dir", data_dir, "--listen-client-urls", client_url,
                          "--advertise-client-urls", client_url, "--listen-peer-urls", peer_url,
                          "--initial-advertise-peer-urls", peer_url, "--initial-cluster",
                          "%s=%s" % (member, peer_url)],
                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        client = EtcdClient([client_url], timeout=5.0)
        healthy, why = False, "it did not answer"
        while clock() - step_start < timeout:
            if proc.poll() is not None:
                why = "it exited with code %s" % proc.returncode
                break
            healthy, why = client.health(client_url)
            if healthy:
                break
            sleep(0.3)
        result.seconds["start"] = clock() - step_start
        if not healthy:
            result.problems.append("etcd on the restored data did not become healthy within %.0f s (%s); its log "
                                   "ends:\n%s" % (timeout, why, _tail(log_path)))
            return result

        result.step, step_start = "read", clock()
        try:
            status = client.status(client_url)
            result.revision = int(status.get("header", {}).get("revision") or 0)
            result.etcd_version = status.get("version")
            result.keys = {key: client.count(key, prefix=key.endswith("/")) for key in expected}
            result.total_keys = client.count_all()
        except EtcdError as exc:
            result.problems.append("reading the restored etcd failed: %s" % exc)
            return result
        result.seconds["read"] = clock() - step_start
        result.problems.extend(judge(result.keys, result.total_keys, result.revision, result.manifest_revision,
                                     min_keys))
        result.step = "done"
        result.ok = not result.problems
        return result
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(scratch, ignore_errors=True)


def check_line(result: dict) -> str:
    """One summary line of etcd_restore_check.yml for one cluster (the play's record: cluster, snapshot,
    age_seconds, check, error)."""
    cluster, check = result.get("cluster"), result.get("check") or {}
    if not result.get("snapshot"):
        return "cluster %s: NO VERIFIED SNAPSHOT (%s)" % (cluster, result.get("error") or "none found")
    if not check.get("ok"):
        why = "; ".join(check.get("problems") or []) or result.get("error")
        return "cluster %s: %s FAILED at %s: %s" % (cluster, result["snapshot"], check.get("step", "the start"), why)
    seconds = check.get("seconds") or {}
    nodes = next((count for key, count in (check.get("keys") or {}).items() if key == "/registry/minions/"), None)
    age = result.get("age_seconds")
    return "cluster %s: %s%s restores: %s keys at revision %s%s, checked in %.1f s (restore %.1f s, etcd up %.1f s)" % (
        cluster, result["snapshot"], " (%s old)" % human_age(age) if isinstance(age, (int, float)) else "",
        check.get("total_keys"), check.get("revision"), ", %d Nodes" % nodes if nodes is not None else "",
        sum(seconds.values()), seconds.get("restore", 0.0), seconds.get("start", 0.0))
