# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ConfigMap allocation ledger (what AWX uses) against the real API server: conflicts, races, the CLI."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "unit"))
from ansible_collections.baremetal.k8s.plugins.module_utils import ipam  # noqa: E402
from ansible_collections.baremetal.k8s.plugins.module_utils.fleet import parse_fleet  # noqa: E402
from ansible_collections.baremetal.k8s.plugins.module_utils.ledger_store import (  # noqa: E402
    CONFIGMAP_KEY,
    KubernetesStore,
    kubernetes_core_api,
)
from fleet_samples import BIN, ansible_env, small_fleet, unwrap, write_fleet  # noqa: E402

WORKERS, ROUNDS = 4, 4


def fleet_with(members):
    data = small_fleet(servers=3 + WORKERS * ROUNDS, members=[], control_planes=0)
    data["clusters"][0]["node_groups"] = [
        {"name": "control-plane", "roles": ["control_plane", "etcd"], "servers": ["s00", "s01", "s02"]},
        {"name": "workers", "roles": ["worker"], "servers": list(members)},
    ]
    return parse_fleet(data, "fleet.yml")


def stored(core, namespace, name="ledger"):
    cm = core.read_namespaced_config_map(name, namespace)
    return json.loads(cm.data[CONFIGMAP_KEY]), cm.metadata.resource_version


def test_create_read_and_no_op_update(kubeconfig, namespace):
    core = kubernetes_core_api(kubeconfig)
    store = KubernetesStore(core, namespace, "ledger")
    assert store.read() == ipam.empty_ledger()  # no ConfigMap yet
    fleet = fleet_with(["s03"])
    ledger = store.update(lambda led: ipam.allocate(fleet, led, store.description))
    on_server, version = stored(core, namespace)
    assert on_server == ledger and set(on_server["clusters"]["c1"]["nodes"]) == {"s00", "s01", "s02", "s03"}
    store.update(lambda led: ipam.allocate(fleet, led, store.description))
    assert stored(core, namespace)[1] == version  # nothing changed: not written


def test_conflicting_writers_retry_on_resource_version(kubeconfig, namespace):
    """Writer A reads, writer B writes in between, A's replace gets 409 and A recomputes on B's ledger."""
    core_a, core_b = kubernetes_core_api(kubeconfig), kubernetes_core_api(kubeconfig)
    a, b = KubernetesStore(core_a, namespace, "ledger"), KubernetesStore(core_b, namespace, "ledger")
    b.update(lambda led: ipam.allocate(fleet_with([]), led))  # the ConfigMap exists
    fleet_a, fleet_b = fleet_with(["s03"]), fleet_with(["s04"])
    calls = []

    def mutate_a(ledger):
        calls.append(json.dumps(ledger, sort_keys=True))
        if len(calls) == 1:  # after A's first read, B wins the race
            b.update(lambda led: ipam.allocate(fleet_b, led))
        return ipam.allocate(fleet_a, ledger)

    result = a.update(mutate_a)
    assert len(calls) == 2, "A's first replace did not conflict"
    assert "s04" not in json.loads(calls[0])["clusters"]["c1"]["nodes"]
    assert "s04" in json.loads(calls[1])["clusters"]["c1"]["nodes"]  # the retry saw B's write
    nodes = stored(core_a, namespace)[0]
    assert nodes == result
    nodes = nodes["clusters"]["c1"]["nodes"]
    assert set(nodes) == {"s00", "s01", "s02", "s03", "s04"}
    assert nodes["s04"]["pod_cidr"] == "10.200.3.0/24" and nodes["s03"]["pod_cidr"] == "10.200.4.0/24"


def _worker(kubeconfig, namespace, worker, start):
    start.wait(10)
    store = KubernetesStore(kubernetes_core_api(kubeconfig), namespace, "ledger", max_attempts=50)
    for rounds in range(1, ROUNDS + 1):
        fleet = fleet_with(["s%02d" % (3 + worker + WORKERS * r) for r in range(rounds)])
        store.update(lambda led, fleet=fleet: ipam.allocate(fleet, led))


def test_concurrent_processes_never_share_an_address(kubeconfig, namespace):
    ctx = multiprocessing.get_context("spawn")  # fresh clients; no forked sockets
    start = ctx.Event()
    procs = [ctx.Process(target=_worker, args=(kubeconfig, namespace, w, start)) for w in range(WORKERS)]
    for proc in procs:
        proc.start()
    start.set()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    nodes = stored(kubernetes_core_api(kubeconfig), namespace)[0]["clusters"]["c1"]["nodes"]
    assert set(nodes) == {"s%02d" % i for i in range(3 + WORKERS * ROUNDS)}  # no lost update
    assert len({e["pod_cidr"] for e in nodes.values()}) == len(nodes)
    assert len({e["wireguard_address"] for e in nodes.values()}) == len(nodes)


def test_inventory_plugin_with_the_configmap_store(tmp_path, kubeconfig, namespace):
    inv = tmp_path / "inv"
    inv.mkdir()
    write_fleet(inv, small_fleet())
    (inv / "fleet.baremetal.yml").write_text(yaml.safe_dump({
        "plugin": "baremetal.k8s.fleet", "allocation_store": "kubernetes", "allocation_kubeconfig": kubeconfig,
        "allocation_namespace": namespace, "allocation_configmap": "fleet-ledger"}))  # fmt: skip
    env = ansible_env()
    cmd = [os.path.join(BIN, "ansible-inventory"), "-i", str(inv), "--list"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "10.200.5.0/24" in proc.stdout  # s05's pod prefix
    assert not (inv / "fleet.allocations.json").exists()  # nothing beside the fleet file: AWX loses it
    ledger = stored(kubernetes_core_api(kubeconfig), namespace, "fleet-ledger")[0]
    assert ledger["clusters"]["c1"]["nodes"]["s05"] == {"pod_cidr": "10.200.5.0/24", "wireguard_address": "10.201.0.6"}
    # Release through the module (state=released) after s05 retired: the ConfigMap loses the entry.
    data = small_fleet()
    data["servers"][5]["state"] = "retired"
    fleet_file = write_fleet(inv, data)
    args = {"fleet_file": fleet_file, "state": "released", "server": "s05", "allocation_store": "kubernetes",
            "kubeconfig": kubeconfig, "namespace": namespace, "configmap": "fleet-ledger"}  # fmt: skip
    cmd = [os.path.join(BIN, "ansible"), "localhost", "-i", "localhost,", "-c", "local",
           "-e", f"ansible_python_interpreter={sys.executable}", "-m", "baremetal.k8s.fleet_allocation",
           "-a", json.dumps(args)]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0 and "CHANGED" in proc.stdout, proc.stdout + proc.stderr
    ledger = stored(kubernetes_core_api(kubeconfig), namespace, "fleet-ledger")[0]
    assert "s05" not in ledger["clusters"]["c1"]["nodes"]


def intent_fleet():
    """c1: three pinned control planes; the worker group declared by intent only (two of s03..s05)."""
    data = small_fleet(servers=6, members=[], control_planes=0)
    data["servers"][5]["state"] = "spare"
    data["clusters"][0]["node_groups"] = [
        {"name": "control-plane", "roles": ["control_plane", "etcd"], "servers": ["s00", "s01", "s02"]},
        {"name": "workers", "roles": ["worker"], "intent": {"count": 2}},
    ]
    return data


def run_module(module, args, env, *extra):
    cmd = [os.path.join(BIN, "ansible"), "localhost", "-i", "localhost,", "-c", "local",
           "-e", f"ansible_python_interpreter={sys.executable}", "-m", module, "-a", json.dumps(args), *extra]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, timeout=120)


def test_placement_ledger_in_a_configmap_reaches_the_inventory(tmp_path, kubeconfig, namespace):
    """AWX's path: placement writes its ledger to the management cluster, the inventory (cached) reads it."""
    inv = tmp_path / "inv"
    inv.mkdir()
    data = intent_fleet()
    data["allocations"] = {"store": "kubernetes", "kubernetes": {"kubeconfig": kubeconfig, "namespace": namespace}}
    fleet_file = write_fleet(inv, data)
    (inv / "fleet.baremetal.yml").write_text(yaml.safe_dump({
        "plugin": "baremetal.k8s.fleet", "cache": True, "cache_plugin": "ansible.builtin.jsonfile",
        "cache_connection": str(tmp_path / "cache"), "cache_timeout": 3600}))  # fmt: skip
    env = ansible_env()

    def workers():
        cmd = [os.path.join(BIN, "ansible-inventory"), "-i", str(inv), "--list"]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, timeout=120)
        assert proc.returncode == 0, proc.stderr
        listing = unwrap(json.loads(proc.stdout))
        return sorted(listing.get("cluster_c1_worker", {}).get("hosts", [])), listing["_meta"]["hostvars"]

    assert workers()[0] == []  # nothing placed yet: the intent alone gives no hosts
    placed = run_module("baremetal.k8s.placement", {"fleet": fleet_file}, env)
    assert placed.returncode == 0 and "CHANGED" in placed.stdout, placed.stdout + placed.stderr
    core = kubernetes_core_api(kubeconfig)
    ledger = stored(core, namespace, "baremetal-k8s-placement")[0]
    chosen = sorted(ledger["servers"])
    assert len(chosen) == 2 and all(ledger["servers"][s] == {"cluster": "c1", "group": "workers"} for s in chosen)
    names, hostvars = workers()  # the cache is stale now: keyed on the ConfigMap's resourceVersion, it recomputes
    assert names == chosen and all(hostvars[s]["pod_cidr"] for s in chosen)
    # Recovery's path: replace one placed worker; the spare takes its place in the next inventory.
    replaced = run_module("baremetal.k8s.placement", {"fleet": fleet_file, "replace": [chosen[0]]}, env)
    assert replaced.returncode == 0 and "CHANGED" in replaced.stdout, replaced.stdout + replaced.stderr
    names, hostvars = workers()
    assert chosen[0] not in names and len(names) == 2 and "fleet_cluster" not in hostvars[chosen[0]]
    assert sorted(os.listdir(inv)) == ["fleet.baremetal.yml", "fleet.yml"]  # no ledger beside the fleet file
