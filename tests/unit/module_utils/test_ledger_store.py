# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The file ledger: atomic, locked, and never handing out one address twice across real processes.

The ConfigMap ledger runs against a real API server in tests/integration/test_ledger_store_k8s.py.
"""

from __future__ import annotations

import json
import multiprocessing
import os

import pytest
from ansible_collections.baremetal.k8s.plugins.module_utils import ipam
from ansible_collections.baremetal.k8s.plugins.module_utils.atomic_file import locked
from ansible_collections.baremetal.k8s.plugins.module_utils.fleet import load_fleet, parse_fleet
from ansible_collections.baremetal.k8s.plugins.module_utils.ledger_store import (
    FileStore,
    StoreError,
    default_ledger_path,
    kubernetes_core_api,
    open_store,
    store_for_fleet,
)
from fleet_samples import small_fleet, write_fleet

WORKERS, ROUNDS = 4, 8  # 4 processes, each adding 8 servers one run at a time: 32 allocations


def test_default_ledger_path():
    assert default_ledger_path("/srv/inv/fleet.yml") == "/srv/inv/fleet.allocations.json"
    assert default_ledger_path("/srv/inv/prod.fleet.yaml") == "/srv/inv/prod.fleet.allocations.json"


def test_missing_ledger_reads_empty_and_no_change_writes_nothing(tmp_path):
    store = FileStore(str(tmp_path / "fleet.allocations.json"))
    assert store.read() == ipam.empty_ledger()
    assert store.update(lambda ledger: False) == ipam.empty_ledger()
    assert os.listdir(tmp_path) == []  # no ledger, no lock file


def test_update_writes_atomically_and_is_idempotent(tmp_path):
    fleet = parse_fleet(small_fleet(), str(tmp_path / "fleet.yml"))
    store = FileStore(str(tmp_path / "fleet.allocations.json"))
    ledger = store.update(lambda led: ipam.allocate(fleet, led, store.path))
    on_disk = json.loads((tmp_path / "fleet.allocations.json").read_text())
    assert on_disk == ledger and len(on_disk["clusters"]["c1"]["nodes"]) == 6
    mtime = os.stat(store.path).st_mtime_ns
    store.update(lambda led: ipam.allocate(fleet, led, store.path))
    assert os.stat(store.path).st_mtime_ns == mtime  # second run: not rewritten
    leftovers = [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
    assert leftovers == []


def test_yaml_ledger(tmp_path):
    fleet = parse_fleet(small_fleet(), "fleet.yml")
    store = FileStore(str(tmp_path / "ledger.yml"))
    store.update(lambda led: ipam.allocate(fleet, led))
    assert "pod_cidr: 10.200.0.0/24" in (tmp_path / "ledger.yml").read_text()
    assert store.read()["clusters"]["c1"]["nodes"]["s00"]["wireguard_address"] == "10.201.0.1"


def test_corrupt_ledger_is_a_clear_error(tmp_path):
    path = tmp_path / "fleet.allocations.json"
    path.write_text("{not json")
    with pytest.raises(ipam.LedgerError) as info:
        FileStore(str(path)).read()
    assert info.value.file == str(path) and "cannot parse the ledger" in info.value.problem
    path.write_text("[1, 2]")
    with pytest.raises(ipam.LedgerError, match="not a mapping"):
        FileStore(str(path)).read()


def test_ledger_path_that_is_a_directory(tmp_path):
    fleet = parse_fleet(small_fleet(), "fleet.yml")
    (tmp_path / "l.json").mkdir()
    with pytest.raises(StoreError) as info:
        FileStore(str(tmp_path / "l.json")).update(lambda led: ipam.allocate(fleet, led))
    assert info.value.file.endswith("l.json") and info.value.fix


def test_store_selection(tmp_path):
    data = small_fleet()
    data["allocations"] = {"store": "file", "file": "state/ledger.json"}
    fleet = parse_fleet(data, str(tmp_path / "fleet.yml"))
    assert store_for_fleet(fleet).path == str(tmp_path / "state" / "ledger.json")
    assert store_for_fleet(fleet, {"file": "/elsewhere/l.json"}).path == "/elsewhere/l.json"
    assert open_store(None, str(tmp_path / "fleet.yml")).path == str(tmp_path / "fleet.allocations.json")
    with pytest.raises(StoreError, match="unknown store 'etcd'"):
        open_store("etcd", "fleet.yml")


def test_kubernetes_store_with_a_missing_kubeconfig_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError) as info:
        kubernetes_core_api(str(tmp_path / "missing.conf"))
    assert "cannot load the kubeconfig" in info.value.problem and info.value.fix


def _hold_lock(path, ready, release):
    with locked(path):
        ready.set()
        release.wait(10)


def test_the_lock_is_a_real_flock_between_processes(tmp_path):
    fleet = parse_fleet(small_fleet(), "fleet.yml")
    path = str(tmp_path / "fleet.allocations.json")
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(path, ready, release))
    holder.start()
    try:
        assert ready.wait(10)
        with pytest.raises(StoreError, match="another run holds the lock"):
            FileStore(path, lock_timeout=0.3).update(lambda led: ipam.allocate(fleet, led))
    finally:
        release.set()
        holder.join(10)
    FileStore(path, lock_timeout=5).update(lambda led: ipam.allocate(fleet, led))  # free again
    assert len(FileStore(path).read()["clusters"]["c1"]["nodes"]) == 6


def _concurrent_fleet(worker, rounds):
    """The fleet as worker ``worker`` sees it after ``rounds`` runs: its own servers join one by one.

    Every worker sees a different version of the fleet file (different checkouts racing), so each
    one's allocate() must keep the other workers' entries it does not know as members.
    """
    data = small_fleet(servers=3 + WORKERS * ROUNDS, members=[], pod_cidr="10.200.0.0/18", control_planes=0)
    mine = ["s%02d" % (3 + worker + WORKERS * r) for r in range(rounds)]
    data["clusters"][0]["node_groups"] = [
        {"name": "control-plane", "roles": ["control_plane", "etcd"], "servers": ["s00", "s01", "s02"]},
        {"name": "workers", "roles": ["worker"], "servers": mine},
    ]
    return data


def _allocate_worker(directory, worker, start):
    start.wait(10)
    path = os.path.join(directory, "fleet.allocations.json")
    for rounds in range(1, ROUNDS + 1):
        fleet = parse_fleet(_concurrent_fleet(worker, rounds), os.path.join(directory, "fleet.yml"))
        FileStore(path, lock_timeout=30).update(lambda led, fleet=fleet: ipam.allocate(fleet, led, path))


def test_concurrent_processes_never_hand_out_the_same_address(tmp_path):
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    workers = [ctx.Process(target=_allocate_worker, args=(str(tmp_path), w, start)) for w in range(WORKERS)]
    for proc in workers:
        proc.start()
    start.set()  # all at once
    for proc in workers:
        proc.join(60)
        assert proc.exitcode == 0
    nodes = FileStore(str(tmp_path / "fleet.allocations.json")).read()["clusters"]["c1"]["nodes"]
    # Every server of every worker is there (no lost update) ...
    assert set(nodes) == {"s%02d" % i for i in range(3 + WORKERS * ROUNDS)}
    # ... and no two share a pod prefix or a WireGuard address.
    assert len({e["pod_cidr"] for e in nodes.values()}) == len(nodes)
    assert len({e["wireguard_address"] for e in nodes.values()}) == len(nodes)


def test_example_fleet_roundtrip_through_a_written_file(tmp_path):
    path = write_fleet(tmp_path, small_fleet())
    fleet = load_fleet(path)
    store = store_for_fleet(fleet)
    store.update(lambda led: ipam.allocate(fleet, led, store.description))
    assert os.path.exists(default_ledger_path(path))
    assert os.path.exists(default_ledger_path(path) + ".lock")  # the lock file stays (gitignored in inventory/)
