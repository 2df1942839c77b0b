# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stable allocation: unique, never moved, released only on request, clear exhaustion errors."""

from __future__ import annotations

import copy

import netaddr
import pytest
from ansible_collections.baremetal.k8s.plugins.module_utils import ipam
from ansible_collections.baremetal.k8s.plugins.module_utils.fleet import FleetError, load_fleet, parse_fleet
from fleet_samples import EXAMPLE_FLEET, server, small_fleet
from hypothesis import given, settings
from hypothesis import strategies as st

UNIVERSE = 20  # servers s00..s19 exist in every generated fleet
POD_CIDR, WG_CIDR = "10.200.0.0/20", "10.201.0.0/28"  # 16 pod prefixes, 14 WireGuard addresses


def fleet_of(members, states=None, **cluster_args):
    """A fleet of UNIVERSE servers whose cluster c1 has ``members`` (3 control planes first)."""
    cluster_args.setdefault("pod_cidr", POD_CIDR)
    cluster_args.setdefault("wireguard", WG_CIDR)
    data = small_fleet(servers=UNIVERSE, members=members, **cluster_args)
    for name, state in (states or {}).items():
        data["servers"][int(name[1:])]["state"] = state
    return parse_fleet(data, "fleet.yml")


def allocations(ledger, cluster="c1"):
    return dict(ledger["clusters"].get(cluster, {}).get("nodes", {}))


def assert_unique_and_inside(ledger, fleet):
    for name, cluster in fleet.clusters.items():
        nodes = allocations(ledger, name)
        pods = [netaddr.IPNetwork(e["pod_cidr"]) for e in nodes.values()]
        wgs = [netaddr.IPAddress(e["wireguard_address"]) for e in nodes.values()]
        assert len(set(pods)) == len(pods), "two nodes share a pod prefix"
        assert len(set(wgs)) == len(wgs), "two nodes share a WireGuard address"
        pool = netaddr.IPNetwork(cluster.pod_cidr)
        wg_pool = netaddr.IPNetwork(cluster.wireguard.cidr)
        for pod in pods:
            assert pod in pool and pod.prefixlen == cluster.node_prefix_length
        for wg in wgs:
            assert wg in wg_pool and wg not in (wg_pool.network, wg_pool.broadcast)


# --------------------------------------------------------------------------- basics


def test_example_allocation():
    fleet = load_fleet(EXAMPLE_FLEET)
    ledger = ipam.empty_ledger()
    assert ipam.allocate(fleet, ledger) is True
    assert_unique_and_inside(ledger, fleet)
    prod = allocations(ledger, "ams1-prod")
    # Fleet-file order, lowest free slot first; the retired server gets nothing new.
    assert prod["ams1-a01-s01"] == {"pod_cidr": "10.200.0.0/24", "wireguard_address": "10.201.0.1"}
    assert prod["ams1-a03-s01"] == {"pod_cidr": "10.200.2.0/24", "wireguard_address": "10.201.0.3"}
    assert "ams1-a03-s04" not in prod
    assert ipam.allocate(fleet, ledger) is False  # second run: nothing to do


def test_the_shipped_example_ledger_is_complete():
    """inventory/example ships its ledger: running the example inventory writes nothing."""
    from ansible_collections.baremetal.k8s.plugins.module_utils.ledger_store import FileStore, default_ledger_path

    fleet = load_fleet(EXAMPLE_FLEET)
    ledger = FileStore(default_ledger_path(EXAMPLE_FLEET)).read()
    assert ipam.allocate(fleet, ledger) is False


def test_node_prefix_length_and_ipv6():
    fleet = fleet_of(["s00", "s01", "s02", "s03"], pod_cidr="fd00:10::/56", wireguard="fd00:20::/120")
    ledger = ipam.empty_ledger()
    ipam.allocate(fleet, ledger)
    nodes = allocations(ledger)
    assert nodes["s00"] == {"pod_cidr": "fd00:10::/64", "wireguard_address": "fd00:20::"}
    assert nodes["s03"]["pod_cidr"] == "fd00:10:0:3::/64"


def test_small_wireguard_pool_skips_network_and_broadcast():
    fleet = fleet_of(["s00", "s01"], control_planes=1, wireguard="10.201.0.0/30")
    ledger = ipam.empty_ledger()
    ipam.allocate(fleet, ledger)
    assert sorted(e["wireguard_address"] for e in allocations(ledger).values()) == ["10.201.0.1", "10.201.0.2"]
    # A third node does not fit: the validator says so when loading the fleet.
    with pytest.raises(FleetError, match=r"pool exhausted: 10\.201\.0\.0/30 has 2 addresses for 3 nodes"):
        fleet_of(["s00", "s01", "s02"], control_planes=1, wireguard="10.201.0.0/30")


def test_stability_when_servers_are_removed_added_and_reordered():
    ledger = ipam.empty_ledger()
    ipam.allocate(fleet_of(["s00", "s01", "s02", "s03", "s04"]), ledger)
    before = allocations(ledger)
    # s03 leaves, s05 joins, the order changes: nobody moves, s05 does not get s03's slot.
    fleet = fleet_of(["s02", "s00", "s01", "s05", "s04"])
    ipam.allocate(fleet, ledger)
    after = allocations(ledger)
    assert {k: after[k] for k in before} == before
    assert after["s05"]["pod_cidr"] == "10.200.5.0/24"
    assert_unique_and_inside(ledger, fleet)


def test_retired_server_keeps_its_allocation_until_released():
    ledger = ipam.empty_ledger()
    members = ["s00", "s01", "s02"] + ["s%02d" % i for i in range(3, 14)]  # 14 members: the /28 is full
    ipam.allocate(fleet_of(members), ledger)
    kept = allocations(ledger)["s05"]
    # s05 retires and s14 should take its place in the node group.
    members = [m for m in members if m != "s05"] + ["s14"]
    fleet = fleet_of(members, {"s05": "retired"})
    with pytest.raises(ipam.AllocationError) as info:
        ipam.allocate(fleet, copy.deepcopy(ledger))
    error = info.value
    assert error.file == "fleet.yml" and error.path == "clusters[0].wireguard.cidr"
    assert "pool exhausted: 10.201.0.0/28 has no free slot left for s14" in error.problem
    assert "still hold one: s05" in error.problem
    assert "state=released" in error.fix
    assert allocations(ledger)["s05"] == kept  # the failed run changed nothing
    assert ipam.release(ledger, "c1", "s05") == kept
    ipam.allocate(fleet, ledger)
    assert allocations(ledger)["s14"] == kept  # reused only after the release


def test_release_unknown_and_last_entry():
    ledger = ipam.empty_ledger()
    assert ipam.release(ledger, "c1", "s00") is None
    ipam.allocate(fleet_of(["s00"], control_planes=1), ledger)
    assert ipam.release(ledger, "c1", "s00") == {"pod_cidr": "10.200.0.0/24", "wireguard_address": "10.201.0.1"}
    assert ledger["clusters"] == {}  # an emptied cluster disappears from the ledger
    assert ipam.lookup(ledger, "c1", "s00") == {}


def test_ledger_that_disagrees_with_the_fleet():
    ledger = ipam.empty_ledger()
    ipam.allocate(fleet_of(["s00", "s01", "s02"]), ledger)
    # The operator renumbered the pod CIDR: existing allocations no longer fit.
    with pytest.raises(ipam.AllocationError) as info:
        ipam.allocate(fleet_of(["s00", "s01", "s02"], pod_cidr="10.210.0.0/16"), ledger, "fleet.allocations.json")
    assert info.value.path == "clusters[0].pod_cidr"
    assert "s00 holds pod_cidr '10.200.0.0/24' in fleet.allocations.json" in info.value.problem
    ledger["clusters"]["c1"]["nodes"]["s01"]["wireguard_address"] = "10.201.0.1"  # s00's address
    with pytest.raises(ipam.LedgerError, match=r"10\.201\.0\.1 is held twice"):
        ipam.allocate(fleet_of(["s00", "s01", "s02"]), ledger)


@pytest.mark.parametrize(
    "ledger",
    [[], {"version": 2}, {"version": 1, "clusters": []}, {"version": 1, "clusters": {"c1": {"nodes": []}}},
     {"version": 1, "clusters": {"c1": {"nodes": {"s00": "10.200.0.0/24"}}}}],
)  # fmt: skip
def test_malformed_ledger(ledger):
    with pytest.raises(ipam.LedgerError) as info:
        ipam.allocate(fleet_of(["s00", "s01", "s02"]), ledger, "x.json")
    assert info.value.file == "x.json" and info.value.fix


def test_endpoints_private_when_sharing_a_network_else_public():
    fleet = load_fleet(EXAMPLE_FLEET)
    s = fleet.servers
    assert ipam.endpoint(s["ams1-a01-s01"], s["ams1-a02-s01"]) == ("10.10.2.11", "private")
    assert ipam.endpoint(s["ams1-a01-s01"], s["ams1-a03-s01"]) == ("203.0.113.17", "public")
    assert ipam.endpoint(s["ams1-a03-s01"], s["ams1-a01-s01"]) == ("203.0.113.11", "public")
    data = small_fleet(servers=3)
    data["servers"].append(server(3, addresses={"private": "192.168.0.3"}))  # no network, no public address
    fleet = parse_fleet(data, "f.yml")
    assert ipam.endpoint(fleet.servers["s00"], fleet.servers["s03"]) == (None, "none")


def test_mesh_views_one_table_per_private_network():
    fleet = load_fleet(EXAMPLE_FLEET)
    ledger = ipam.empty_ledger()
    ipam.allocate(fleet, ledger)
    views = ipam.mesh_views(fleet, fleet.clusters["ams1-prod"], ledger)
    assert set(views) == {"ams1-r1-private", "ams1-r2-private"}
    r1 = views["ams1-r1-private"]
    assert r1["ams1-a02-s01"]["endpoint"] == "10.10.2.11:51820" and r1["ams1-a02-s01"]["via"] == "private"
    assert r1["ams1-a03-s01"]["endpoint"] == "203.0.113.17:51820" and r1["ams1-a03-s01"]["via"] == "public"
    assert r1["ams1-a03-s01"]["allowed_ips"] == ["10.201.0.3/32", "10.200.2.0/24"]
    assert "ams1-a03-s04" not in r1  # retired: no peer


# --------------------------------------------------------------------------- properties

operation = st.one_of(
    st.tuples(st.just("add"), st.integers(3, UNIVERSE - 1)),
    st.tuples(st.just("remove"), st.integers(3, UNIVERSE - 1)),
    st.tuples(st.just("retire"), st.integers(3, UNIVERSE - 1)),
    st.tuples(st.just("release"), st.integers(3, UNIVERSE - 1)),
    st.tuples(st.just("shuffle"), st.randoms(use_true_random=False)),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(3, UNIVERSE - 1), unique=True, max_size=8), st.lists(operation, max_size=25))
def test_any_sequence_of_changes_keeps_allocations_stable_and_unique(initial, operations):
    members = ["s00", "s01", "s02"] + ["s%02d" % i for i in initial]
    states = {}
    ledger = ipam.empty_ledger()
    ipam.allocate(fleet_of(members), ledger)
    for op, arg in operations:
        name = "s%02d" % arg if isinstance(arg, int) else None
        if op == "add" and name not in members and len(members) < 14:
            members.append(name)
            states.pop(name, None)
        elif op == "remove" and name in members:
            members.remove(name)
        elif op == "retire":
            states[name] = "retired"
        elif op == "release" and (name not in members or states.get(name) == "retired"):
            ipam.release(ledger, "c1", name)  # the module only releases servers that left or retired
        elif op == "shuffle":
            fixed, rest = members[:3], members[3:]
            arg.shuffle(rest)
            members = fixed + rest
        fleet = fleet_of(members, states)
        before = allocations(ledger)
        work = copy.deepcopy(ledger)
        try:
            ipam.allocate(fleet, work)
        except ipam.AllocationError as exc:
            # Only when the pool is really full: held entries + new members exceed it.
            wanted = [m for m in members if m not in before and states.get(m) != "retired"]
            assert len(before) + len(wanted) > 14, exc
            assert "pool exhausted" in exc.problem
            continue
        ledger = work
        after = allocations(ledger)
        assert {k: after[k] for k in before} == before, "an existing allocation moved or vanished"
        for m in members:
            assert m in after or states.get(m) == "retired", f"{m} has no allocation"
        new = set(after) - set(before)
        assert all(states.get(m) != "retired" for m in new), "a retired server got a new allocation"
        assert_unique_and_inside(ledger, fleet)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 14), st.randoms(use_true_random=False))
def test_allocation_does_not_depend_on_which_run_sees_which_order(count, rng):
    """Two runs that see the same members in another order agree on the set of slots used."""
    names = ["s%02d" % i for i in range(count)]
    a, b = ipam.empty_ledger(), ipam.empty_ledger()
    ipam.allocate(fleet_of(names, control_planes=1), a)
    shuffled = names[:1] + rng.sample(names[1:], len(names) - 1)
    ipam.allocate(fleet_of(shuffled, control_planes=1), b)

    def slots(ledger):
        return sorted(entry["pod_cidr"] for entry in allocations(ledger).values())

    assert slots(a) == slots(b)
