# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""baremetal.k8s.etcd_snapshot through the ansible CLI against a fake v3 gateway (tests/unit/etcd_gateway.py):
the member it picks, check mode, the files and their modes, a stream that fails verification or breaks off.
The real etcd is tests/integration/test_etcd_snapshot.py's."""

from __future__ import annotations

import json
import os
import stat

from ansible_collections.baremetal.k8s.plugins.module_utils.etcd_backup import parse_snapshot_name, verify_snapshot
from etcd_gateway import FakeGateway
from fleet_samples import run_module


def snapshot(gateway, dest, *flags, **args):
    args = {"endpoints": gateway.endpoints, "cluster": "c1", "dest": str(dest), "timeout": 2, **args}
    return run_module("baremetal.k8s.etcd_snapshot", args, *flags)


def test_a_snapshot_from_a_follower_verified_and_in_place(tmp_path):
    dest = tmp_path / "etcd"
    with FakeGateway(leader="cp1") as gateway:
        result = snapshot(gateway, dest)
        assert gateway.snapshots_from == ["cp2"]
    assert not result.get("failed"), result
    assert result["changed"] is True and result["member"] == "cp2" and result["endpoint"] == gateway.url("cp2")
    assert result["passed_over"] == [{"name": "cp1", "reason": "the leader: a healthy follower is used instead"}]
    name = result["name"]
    parsed = parse_snapshot_name(name)
    assert parsed.cluster == "c1" and parsed.revision == 4242 == result["revision"]
    assert result["path"] == str(dest / name) and result["manifest_path"] == str(dest / name) + ".json"
    assert sorted(os.listdir(dest)) == [name, name + ".json"]
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(result["path"]).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(result["manifest_path"]).st_mode) == 0o600
    with open(result["manifest_path"], encoding="utf-8") as handle:
        manifest = json.load(handle)
    assert manifest == result["manifest"]
    assert {k: manifest[k] for k in ("cluster", "member", "endpoint", "revision", "etcd_version", "storage_version",
                                     "etcd_hash_ok", "pki_bundle", "raft_index")} == {
        "cluster": "c1", "member": "cp2", "endpoint": gateway.url("cp2"), "revision": 4242, "etcd_version": "3.6.16",
        "storage_version": "3.6.0", "etcd_hash_ok": True, "pki_bundle": None, "raft_index": 99}
    assert manifest["size"] == len(gateway.data) == result["size"] and manifest["taken_at"] == result["taken_at"]
    assert verify_snapshot(result["path"]).ok


def test_check_mode_names_the_member_and_writes_nothing(tmp_path):
    with FakeGateway(leader="cp2") as gateway:
        result = snapshot(gateway, tmp_path / "etcd", "--check")
        assert gateway.snapshots_from == []
    assert not result.get("failed"), result
    assert result["changed"] is True and result["member"] == "cp1" and result["manifest"] is None
    assert result["name"].startswith("c1-") and result["size"] is None
    assert not (tmp_path / "etcd").exists()


def test_a_member_down_and_a_named_member(tmp_path):
    with FakeGateway(leader="cp3", down={"cp1"}) as gateway:
        result = snapshot(gateway, tmp_path)
        assert result["member"] == "cp2" and result["passed_over"][0]["name"] == "cp1"
        assert "not healthy" in result["passed_over"][0]["reason"]
        named = snapshot(gateway, tmp_path / "named", member="cp3")
        assert not named.get("failed"), named
        assert named["member"] == "cp3" and named["member_reason"] == "asked for (member: cp3)"
        refused = snapshot(gateway, tmp_path / "refused", member="cp1")
        assert refused["failed"] and refused["msg"].startswith("member: member cp1 is not healthy: ")
        assert not (tmp_path / "refused").exists()


def test_no_healthy_member(tmp_path):
    with FakeGateway(down={"cp1"}, unhealthy={"cp2", "cp3"}) as gateway:
        result = snapshot(gateway, tmp_path / "d")
        assert gateway.snapshots_from == []
    assert result["failed"] and result["msg"].startswith(
        "etcd: no healthy voting member to take a snapshot from (cp1: not healthy: cannot reach etcd at")
    assert "cp3: not healthy: " in result["msg"] and "RAFT NO LEADER" in result["msg"]
    assert "Fix: bring a member back" in result["msg"]
    assert not (tmp_path / "d").exists()


def test_a_corrupt_stream_is_deleted_and_fails(tmp_path):
    with FakeGateway(corrupt=True) as gateway:
        result = snapshot(gateway, tmp_path)
    assert result["failed"] and result["changed"] is False
    assert "failed verification: etcd's sha256 trailer does not match the data before it" in result["msg"]
    assert os.listdir(tmp_path) == []  # neither the .part nor a snapshot is left


def test_a_stream_that_breaks_off_leaves_nothing(tmp_path):
    with FakeGateway(cut_after=2) as gateway:
        result = snapshot(gateway, tmp_path)
    assert result["failed"] and "the snapshot stream ended after 10000 bytes" in result["msg"]
    assert os.listdir(tmp_path) == []


def test_bad_options(tmp_path):
    with FakeGateway() as gateway:
        result = snapshot(gateway, tmp_path, cluster="a b")
        assert result["failed"] and result["msg"].startswith("cluster: 'a b' is not a cluster name. Fix: ")
        result = snapshot(gateway, tmp_path, member="cp9")
        assert result["failed"] and "no etcd member is named 'cp9' (members: cp1, cp2, cp3)" in result["msg"]
        (tmp_path / "file").write_text("x")
        result = snapshot(gateway, tmp_path / "file")
        assert result["failed"] and "Fix: check dest is a writable directory" in result["msg"]
