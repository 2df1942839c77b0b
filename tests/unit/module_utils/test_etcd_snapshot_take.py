# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""L0: module_utils/etcd_snapshot_take.py, the snapshot orchestration behind etcd_snapshot and the backup timer,
called directly against the fake gateway (tests/unit/etcd_gateway.py). The module's own tests
(tests/unit/plugins/modules/test_etcd_snapshot_module.py) run the same code through Ansible."""

from __future__ import annotations

import json
import os
import stat

import pytest
from ansible_collections.baremetal.k8s.plugins.module_utils import etcd_backup as eb
from ansible_collections.baremetal.k8s.plugins.module_utils.etcd_client import EtcdClient
from ansible_collections.baremetal.k8s.plugins.module_utils.etcd_snapshot_take import (
    check_inputs,
    empty_result,
    take_snapshot,
)
from etcd_gateway import NOW, FakeGateway


def client(gateway):
    return EtcdClient(gateway.endpoints, timeout=2)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_snapshot_with_the_clock_passed_in(tmp_path):
    dest = tmp_path / "etcd"
    with FakeGateway(leader="cp1") as gateway:
        result = take_snapshot(client(gateway), "c1", str(dest), clock=lambda: NOW)
        assert gateway.snapshots_from == ["cp2"]
    name = "c1-20270115T080000Z-r4242.db"
    assert result["changed"] is True and result["name"] == name and result["taken_at"] == "2027-01-15T08:00:00Z"
    assert result["member"] == "cp2" and result["member_reason"].startswith("the first healthy follower")
    assert result["path"] == str(dest / name) and result["manifest_path"] == str(dest / name) + ".json"
    assert sorted(os.listdir(dest)) == [name, name + ".json"]
    assert (mode(dest), mode(result["path"]), mode(result["manifest_path"])) == (0o700, 0o600, 0o600)
    assert json.loads((dest / (name + ".json")).read_text()) == result["manifest"]
    assert result["size"] == len(gateway.data) and result["etcd_hash_ok"] is True
    assert result["storage_version"] == "3.6.0" and result["pki_bundle"] is None and result["raft_index"] == 99
    assert eb.verify_snapshot(result["path"]).ok
    # The fields etcd_snapshot returns (its RETURN), no more, no fewer.
    assert set(result) == set(empty_result("c1")) | {
        "name", "path", "manifest_path", "member", "member_reason", "passed_over", "endpoint", "revision",
        "raft_index", "etcd_version", "taken_at"}


def test_check_writes_nothing(tmp_path):
    with FakeGateway(leader="cp2") as gateway:
        result = take_snapshot(client(gateway), "c1", str(tmp_path / "d"), check=True, clock=lambda: NOW)
        assert gateway.snapshots_from == []
    assert result["changed"] is True and result["member"] == "cp1" and result["manifest"] is None
    assert result["size"] is None and result["name"] == "c1-20270115T080000Z-r4242.db"
    assert not (tmp_path / "d").exists()


def test_the_same_second_twice_is_refused(tmp_path):
    with FakeGateway() as gateway:
        take_snapshot(client(gateway), "c1", str(tmp_path), clock=lambda: NOW)
        with pytest.raises(eb.EtcdBackupError, match=r"the snapshot already exists\. Fix: run again in a second"):
            take_snapshot(client(gateway), "c1", str(tmp_path), clock=lambda: NOW)


def test_a_failure_keeps_what_was_chosen_in_the_result(tmp_path):
    result = {}
    with FakeGateway(corrupt=True) as gateway, pytest.raises(eb.EtcdBackupError, match="failed verification"):
        take_snapshot(client(gateway), "c1", str(tmp_path), clock=lambda: NOW, result=result)
    assert result["member"] == "cp2" and result["name"] == "c1-20270115T080000Z-r4242.db"
    assert result["changed"] is False and result["manifest"] is None
    assert os.listdir(tmp_path) == []


def test_a_named_member_that_is_down(tmp_path):
    gateway = FakeGateway(down={"cp3"})
    with gateway, pytest.raises(eb.EtcdBackupError, match=r"^member: member cp3 is not healthy: "):
        take_snapshot(client(gateway), "c1", str(tmp_path / "d"), member="cp3")
    assert not (tmp_path / "d").exists()


def test_an_os_error_is_located_at_the_file_with_the_fix(tmp_path):
    (tmp_path / "file").write_text("x")
    with FakeGateway() as gateway, pytest.raises(eb.EtcdBackupError) as caught:
        take_snapshot(client(gateway), "c1", str(tmp_path / "file"))
    assert str(caught.value) == "%s: File exists. Fix: check dest is a writable directory with room for the " \
                                "snapshot" % (tmp_path / "file")


@pytest.mark.parametrize(("cluster", "timeout", "message"), [
    ("a b", 120.0, r"^cluster: 'a b' is not a cluster name\. Fix: "),
    ("c1", 0, r"^snapshot_timeout: 0 is not a number of seconds above 0\. Fix: "),
    ("c1", True, r"^snapshot_timeout: True is not a number of seconds above 0"),
])
def test_bad_input_is_refused_before_etcd_is_asked(tmp_path, cluster, timeout, message):
    nowhere = EtcdClient(["http://127.0.0.1:1"], timeout=1)  # would fail with an etcd error if asked
    with pytest.raises(eb.EtcdBackupError, match=message):
        check_inputs(cluster, timeout)
    with pytest.raises(eb.EtcdBackupError, match=message):
        take_snapshot(nowhere, cluster, str(tmp_path), snapshot_timeout=timeout)
