# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Placement engine: server placement, workload placement, explanations, ledger."""

from __future__ import annotations

import dataclasses
import random

import pytest
from ansible_collections.baremetal.k8s.plugins.module_utils.errors import BaremetalError
from ansible_collections.baremetal.k8s.plugins.module_utils.fleet import hop_distance, load_fleet
from ansible_collections.baremetal.k8s.plugins.module_utils.ledger_store import PLACEMENT, FileStore
from ansible_collections.baremetal.k8s.plugins.module_utils.placement import (
    Candidate,
    GroupRequest,
    Ledger,
    Location,
    PlacementError,
    dump_ledger,
    model_from_fleet,
    parse_ledger,
    plan_placement,
    replace_server,
    workload_request,
)
from fleet_samples import EXAMPLE_FLEET
from placement_samples import etcd_group, group, make_servers, plan, racks_of, two_clusters, wl

# --- the example fleet through the fleet model -----------------------------------------


def test_example_fleet_plans_grows_and_is_stable():
    fleet = load_fleet(EXAMPLE_FLEET)
    candidates, groups = model_from_fleet(fleet, [{"cluster": "ams1-prod", "group": "general", "count": 3}])
    result = plan_placement(candidates, groups, Ledger())
    assert result.ok, result.failures
    assert result.members["ams1-prod/general"] == ["ams1-a01-s02", "ams1-a02-s02", "ams1-a03-s03"]
    general = next(g for g in result.groups if g["group"] == "ams1-prod/general")
    assert general["released"] == [{"server": "ams1-a03-s04", "reason": "in state retired"}]
    assert [s["left"] for s in general["funnel"]][:3] == [10, 9, 1]
    assert result.ledger.servers == {"ams1-a03-s03": ("ams1-prod", "general")}
    again = plan_placement(candidates, groups, result.ledger)
    assert again.ok and again.changes == [] and dump_ledger(again.ledger) == dump_ledger(result.ledger)


def test_intent_override_rejects_unknown_cluster_and_field():
    fleet = load_fleet(EXAMPLE_FLEET)
    with pytest.raises(PlacementError, match="cluster 'nope' is not in the fleet"):
        model_from_fleet(fleet, [{"cluster": "nope", "group": "x", "count": 1}])
    # Intent fields are checked by the fleet model's own intent validation (fleet.intent_from_mapping).
    with pytest.raises(BaremetalError, match=r"intents\[0\]\.cuont: unknown field"):
        model_from_fleet(fleet, [{"cluster": "ams1-prod", "group": "general", "cuont": 1}])


def test_new_group_from_intents_gets_worker_role():
    fleet = load_fleet(EXAMPLE_FLEET)
    groups = model_from_fleet(fleet, [{"cluster": "nyc1-dev", "group": "batch", "count": 1}])[1]
    batch = next(g for g in groups if g.key == "nyc1-dev/batch")
    assert batch.roles == ("worker",) and batch.intent.count == 1 and batch.pinned == ()


# --- server placement -------------------------------------------------------------------


def test_etcd_members_land_in_distinct_racks_with_explanations():
    servers = make_servers()
    result = plan(servers, [etcd_group()])
    assert result.ok
    members = result.members["c1/control-plane"]
    assert len(set(racks_of(servers, members))) == 3
    placed = next(g for g in result.groups if g["group"] == "c1/control-plane")["placed"]
    assert all(len(p["why"]) >= 4 for p in placed)
    assert "held 0 of the etcd members" in placed[1]["why"][0]


def test_etcd_with_too_few_racks_is_refused_then_allowed():
    servers = make_servers(racks=("a01", "a02"))
    result = plan(servers, [etcd_group()])
    assert not result.ok
    assert "etcd: at most 1 member per rack" in result.failures[0]
    assert result.ledger.servers == {} and result.changes == []
    allowed = plan(servers, [etcd_group()], allow_blast_radius=True)
    assert allowed.ok and len(allowed.members["c1/control-plane"]) == 3
    assert any("allow_blast_radius" in w or "blast radius allowed" in w for w in allowed.warnings)


def test_unsatisfiable_hardware_names_the_filter_and_the_funnel():
    servers = make_servers()
    result = plan(servers, [group(count=2, min_nic_gbps=100)])
    assert not result.ok
    line = result.failures[0]
    assert "c1/workers: unsatisfiable" in line and "'NIC >= 100 Gbps'" in line
    assert "servers in region eu: 16 -> state spare|active: 16 -> free (serving no other group): 16" in line
    explanation = next(g for g in result.groups if g["group"] == "c1/workers")
    assert explanation["status"] == "unsatisfiable" and explanation["funnel"][-1]["left"] == 0


def test_one_failure_fails_the_whole_plan():
    servers = make_servers()
    result = plan(servers, [group("ok", count=2), group("too-big", count=40)])
    assert not result.ok and result.ledger.servers == {} and result.changes == []


def test_group_share_cap_is_hard():
    servers = make_servers(racks=("a01", "a02"))
    result = plan(servers, [group(count=4, max_share_per_domain=0.25)], max_share_per_domain=1.0)
    assert not result.ok and "intent max_share_per_domain 0.25: at most 1 per rack" in result.failures[0]
    result = plan(servers, [group(count=4, max_share_per_domain=0.5)], max_share_per_domain=1.0)
    assert result.ok and sorted(racks_of(servers, result.members["c1/workers"])) == ["a01", "a01", "a02", "a02"]


def test_cluster_blast_radius_refuses_pinned_pileup():
    servers = make_servers()
    pinned = GroupRequest(cluster="c1", group="lb", region="eu", roles=("load_balancer",),
                          pinned=("a01-s01", "a01-s02", "a01-s03"))
    result = plan(servers, [pinned, group(count=1)])
    assert not result.ok
    assert any("blast radius refused: 3 of its 4 nodes in rack dc1/a01 (limit 2" in f for f in result.failures)
    assert plan(servers, [pinned, group(count=1)], allow_blast_radius=True).ok


def test_dedicated_hardware_is_reserved():
    servers = make_servers()
    gpu = dataclasses.replace(servers["a01-s01"], gpus=4, workload_label="gpu")
    servers["a01-s01"] = gpu
    result = plan(servers, [group(count=16)], max_share_per_domain=1.0)
    assert not result.ok and "'not dedicated to another workload'" in result.failures[0]
    result = plan(servers, [group(count=1, gpus=4, dedicated="gpu", name="gpu"), group(count=3)])
    assert result.ok and result.members["c1/gpu"] == ["a01-s01"]
    assert "a01-s01" not in result.members["c1/workers"]


def test_best_fit_keeps_big_servers_free():
    servers = make_servers(racks=("a01",), per_rack=2)
    servers["a01-s01"] = dataclasses.replace(servers["a01-s01"], cores=128)
    result = plan(servers, [group(count=1, min_cores=32)])
    assert result.members["c1/workers"] == ["a01-s02"]


def test_locality_prefers_the_row_of_the_cluster():
    # Control plane in row r1 (a01, a03 with rows=2 => a01,a03 in r1; a02,a04 in r2); a single worker follows it.
    servers = make_servers(racks=("a01", "a02", "a03", "a04", "a05", "a06"), rows=2)
    cp = GroupRequest(cluster="c1", group="cp", region="eu", roles=("control_plane", "etcd"),
                      pinned=("a01-s01", "a03-s01", "a05-s01"))
    result = plan(servers, [cp, group(count=1)])
    worker = result.members["c1/workers"][0]
    assert servers[worker].location.row == "r1"
    why = result.changes[0]["why"]
    assert "hops to the cluster's 3 peers" in why[2]


def test_rerun_and_added_intent_never_move_existing_placements():
    servers = make_servers()
    first = plan(servers, [etcd_group(), group(count=4)])
    assert first.ok
    second = plan(servers, [etcd_group(), group(count=4), group("extra", count=3)], first.ledger)
    assert second.ok
    for server, assignment in first.ledger.servers.items():
        assert second.ledger.servers[server] == assignment
    assert {c["action"] for c in second.changes} == {"placed"}


def test_recovery_replaces_a_failed_server_and_remembers_history():
    servers = make_servers(racks=("a01", "a02", "a03"))
    first = plan(servers, [etcd_group()])
    victim = first.members["c1/control-plane"][0]
    rack = servers[victim].location.rack
    servers[victim] = dataclasses.replace(servers[victim], state="failed")
    second = plan(servers, [etcd_group()], first.ledger)
    assert second.ok
    members = second.members["c1/control-plane"]
    assert victim not in members and len(set(racks_of(servers, members))) == 3
    released = [c for c in second.changes if c["action"] == "released"]
    assert released == [{"server": victim, "from": "c1/control-plane", "action": "released",
                         "reason": "server is failed"}]
    assert second.ledger.history[victim] == ["c1/control-plane"]
    # The replacement takes the failed member's rack back (the only rack without an etcd member).
    new = next(c["server"] for c in second.changes if c["action"] == "placed")
    assert servers[new].location.rack == rack


def test_replace_server_call_and_reuse_of_previous_servers():
    servers = make_servers(racks=("a01", "a02", "a03"))
    first = plan(servers, [group(count=3)])
    victim = first.members["c1/workers"][0]
    replaced = replace_server(servers, [group(count=3)], first.ledger, victim)
    assert replaced.ok and victim not in replaced.members["c1/workers"]
    assert replaced.ledger.history[victim] == ["c1/workers"]
    # Later the group grows: the server that served it before is reused before fresh ones.
    grown = plan(servers, [group(count=6)], replaced.ledger)
    assert victim in grown.members["c1/workers"]
    reason = next(c for c in grown.changes if c["server"] == victim)["why"]
    assert "served this group before" in reason


def test_surplus_is_released_from_the_most_crowded_domain():
    servers = make_servers(racks=("a01", "a02", "a03"))
    first = plan(servers, [group(count=4)], max_share_per_domain=1.0)
    racks = racks_of(servers, first.members["c1/workers"])
    double = max(set(racks), key=racks.count)
    shrunk = plan(servers, [group(count=3)], first.ledger, max_share_per_domain=1.0)
    assert shrunk.ok and len(set(racks_of(servers, shrunk.members["c1/workers"]))) == 3
    gone = [c for c in shrunk.changes if c["action"] == "released"]
    assert len(gone) == 1 and servers[gone[0]["server"]].location.rack == double


def test_changed_intent_keeps_servers_until_rebalance():
    servers = make_servers()
    servers["a01-s01"] = dataclasses.replace(servers["a01-s01"], cores=128)
    ledger = Ledger(servers={"a01-s01": ("c1", "workers")})
    kept = plan(servers, [group(count=1, min_cores=100)], ledger)
    assert kept.ok and kept.changes == []
    stricter = plan(servers, [group(count=1, min_cores=200)], ledger)
    assert stricter.ok and any("no longer meets cores >= 200" in w for w in stricter.warnings)
    moved = plan(servers, [group(count=1, min_cores=100)], ledger, rebalance=True)
    assert moved.ok and moved.changes == []  # rebalance keeps a server that still fits best (reuse)


def test_ledger_drift_is_reconciled():
    servers = make_servers()
    ledger = Ledger(servers={"ghost": ("c1", "workers"), "a01-s01": ("c1", "gone"), "a02-s01": ("c1", "workers")})
    result = plan(servers, [group(count=1)], ledger)
    assert result.ok
    assert result.ledger.servers == {"a02-s01": ("c1", "workers")}
    assert any("ghost is no longer in the fleet" in d for d in result.drift)
    assert any("c1/gone has no intent" in d for d in result.drift)


def test_plans_are_deterministic_regardless_of_input_order():
    servers = make_servers(racks=("a01", "a02", "a03", "a04", "a05"), per_rack=5)
    groups = [etcd_group(), group(count=6), group("db", count=3, min_memory_gb=128)]
    reference = dump_ledger(plan(servers, groups).ledger)
    rng = random.Random(7)
    for _attempt in range(5):
        names = list(servers)
        rng.shuffle(names)
        shuffled = {n: servers[n] for n in names}
        order = list(groups)
        rng.shuffle(order)
        assert dump_ledger(plan(shuffled, order).ledger) == reference


def test_hop_rule_matches_fleet_hop_distance():
    from ansible_collections.baremetal.k8s.plugins.module_utils.placement.locality import PeerCounter

    servers = make_servers(racks=("a01", "a02", "a03"), per_rack=2)
    servers["far"] = Candidate("far", Location("eu", "dc2", "r1", "z01"))
    servers["other"] = Candidate("other", Location("us", "dc3", "r1", "z01"))
    peers = PeerCounter()
    members = ["a01-s01", "a02-s01", "far", "other"]
    for name in members:
        peers.add(servers[name].location)
    probe = servers["a03-s02"]
    assert peers.hop_sum(probe.location) == sum(hop_distance(probe, servers[m]) for m in members)


# --- workloads ---------------------------------------------------------------------------


def test_workloads_least_connection_and_spread():
    servers, groups = two_clusters()
    workloads = [wl("w%02d" % i, replicas=3, cpu=2, memory_gb=4) for i in range(6)]
    result = plan(servers, groups, workloads=workloads)
    assert result.ok, result.failures
    clusters = [result.ledger.workloads["w%02d" % i]["cluster"] for i in range(6)]
    assert clusters == ["c1", "c2", "c1", "c2", "c1", "c2"]
    for placement in result.ledger.workloads.values():
        assert len(set(racks_of(servers, placement["nodes"]))) == 3
    snippet = result.manifests["w00"]
    assert snippet["cluster"] == "c1"
    assert snippet["nodeSelector"] == {"baremetal.k8s/node-group": "workers"}
    assert snippet["topologySpreadConstraints"][0]["topologyKey"] == "baremetal.k8s/rack"
    terms = snippet["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == result.ledger.workloads["w00"]["nodes"]


def test_workload_capacity_is_never_overcommitted_and_failure_is_explained():
    servers, groups = two_clusters()
    # 16 usable cores per node: 8 workloads of 3 x 4 cores fill the 6 nodes (4 per node) exactly.
    workloads = [wl("w%02d" % i, replicas=3, cpu=4, memory_gb=8) for i in range(8)]
    result = plan(servers, groups, workloads=workloads)
    assert result.ok
    used = {}
    for placement in result.ledger.workloads.values():
        for node in placement["nodes"]:
            used[node] = used.get(node, 0) + 4
    assert max(used.values()) <= 16
    over = plan(servers, groups, workloads=[*workloads, wl("w99", replicas=3, cpu=4, memory_gb=8)],
                partial_workloads=False)
    assert not over.ok
    assert "workload w99: unsatisfiable" in over.failures[0]
    assert "clusters in region eu: 2 -> with a worker node group: 2 -> with capacity and spread" in over.failures[0]


def test_workloads_are_stable_and_released_when_no_longer_requested():
    servers, groups = two_clusters()
    workloads = [wl("a", replicas=2), wl("b", replicas=3)]
    first = plan(servers, groups, workloads=workloads)
    again = plan(servers, groups, first.ledger, workloads=[*workloads, wl("c")])
    assert again.ok
    assert {k: again.ledger.workloads[k] for k in ("a", "b")} == first.ledger.workloads
    dropped = plan(servers, groups, first.ledger, workloads=[workloads[0]])
    assert set(dropped.ledger.workloads) == {"a"}
    assert [c["action"] for c in dropped.changes] == ["released"]
    untouched = plan(servers, groups, first.ledger)  # workloads=None: ledger's workloads kept
    assert untouched.ledger.workloads == first.ledger.workloads


def test_workload_follows_a_replaced_node():
    servers, groups = two_clusters()
    first = plan(servers, groups, workloads=[wl("db", replicas=3, cluster="c1", region="")])
    node = first.ledger.workloads["db"]["nodes"][0]
    second = replace_server(servers, groups, first.ledger, node)
    assert second.ok
    third = plan(servers, groups, second.ledger, workloads=[wl("db", replicas=3, cluster="c1", region="")])
    nodes = third.ledger.workloads["db"]["nodes"]
    assert node not in nodes and len(set(nodes) & set(first.ledger.workloads["db"]["nodes"])) == 2
    assert third.workloads[0]["status"] == "repaired"


def test_partial_workloads_place_the_rest_and_report_what_fits_nowhere():
    servers, groups = two_clusters()
    workloads = [wl("w%02d" % i, replicas=3, cpu=2, memory_gb=4) for i in range(4)]
    huge = [wl("huge-a", replicas=3, cpu=100), wl("huge-b", replicas=9)]  # too big; more replicas than nodes
    result = plan(servers, groups, workloads=[*workloads, *huge])
    assert result.ok, result.failures
    assert sorted(result.ledger.workloads) == ["w00", "w01", "w02", "w03"]
    assert [u["workload"] for u in result.unplaced] == ["huge-a", "huge-b"]
    assert not any(u["kept_previous"] for u in result.unplaced)
    assert "workload huge-a: unsatisfiable: 3 replica(s) of 100.00 cores" in result.unplaced[0]["reason"]
    assert [w for w in result.warnings if w.startswith("workload huge")] == [u["reason"] for u in result.unplaced]
    assert {c["workload"] for c in result.changes if "workload" in c} == {"w00", "w01", "w02", "w03"}
    assert sorted(result.manifests) == ["w00", "w01", "w02", "w03"]
    explained = {w["workload"]: w["status"] for w in result.workloads}
    assert explained["huge-a"] == explained["huge-b"] == "unsatisfiable"
    # The same plan placed without the two: identical placements (the unplaced reserve nothing).
    alone = plan(servers, groups, workloads=workloads)
    assert alone.ledger.workloads == result.ledger.workloads
    # Strict: the same input refuses the whole plan and writes nothing.
    strict = plan(servers, groups, workloads=[*workloads, *huge], partial_workloads=False)
    assert not strict.ok and strict.ledger == Ledger() and strict.changes == [] and strict.manifests == {}
    assert [f.split(":")[0] for f in strict.failures] == ["workload huge-a", "workload huge-b"]
    assert [u["workload"] for u in strict.unplaced] == ["huge-a", "huge-b"]


def test_partial_workloads_never_half_build_a_node_group():
    servers, groups = two_clusters()
    result = plan(servers, [*groups, group("big", count=40)], workloads=[wl("w", replicas=1)])
    assert not result.ok and result.ledger == Ledger() and result.changes == []
    assert result.failures[0].startswith("c1/big: unsatisfiable") and result.workloads == []


def test_a_placed_workload_whose_new_request_fits_nowhere_keeps_its_previous_placement():
    servers, groups = two_clusters()
    first = plan(servers, groups, workloads=[wl("db", replicas=3, cpu=4), wl("web", replicas=3, cpu=2)])
    grown = plan(servers, groups, first.ledger,
                 workloads=[wl("db", replicas=3, cpu=400), wl("web", replicas=3, cpu=2), wl("new", replicas=2, cpu=1)])
    assert grown.ok
    assert grown.ledger.workloads["db"] == first.ledger.workloads["db"]  # nodes and the previous spec
    assert grown.ledger.workloads["web"] == first.ledger.workloads["web"] and "new" in grown.ledger.workloads
    assert grown.unplaced == [{"workload": "db", "kept_previous": True, "reason": grown.unplaced[0]["reason"]}]
    assert "workload db: unsatisfiable" in grown.unplaced[0]["reason"]
    assert grown.unplaced[0]["reason"].endswith("planned with its previous request instead")
    assert any("planned with its previous request instead" in w for w in grown.warnings)
    # Its capacity stays reserved: the new workload is not put on top of it.
    nodes = {n: 0.0 for n in grown.members["c1/workers"] + grown.members["c2/workers"]}
    for placement in grown.ledger.workloads.values():
        for node in placement["nodes"]:
            nodes[node] += placement["spec"]["cpu"]
    assert max(nodes.values()) <= 16
    strict = plan(servers, groups, first.ledger, workloads=[wl("db", replicas=3, cpu=400)], partial_workloads=False)
    assert not strict.ok and strict.ledger == first.ledger


def test_a_workload_that_lost_a_node_and_has_no_room_keeps_the_replicas_it_has():
    servers, groups = two_clusters()
    # Each cluster's 3 nodes have 16 usable cores: "db" takes 12 on each of c1's nodes.
    request = [wl("db", cluster="c1", region="", replicas=3, cpu=12)]
    first = plan(servers, groups, workloads=request)
    lost = first.ledger.workloads["db"]["nodes"][0]
    replaced = replace_server(servers, groups, first.ledger, lost)
    filler = [wl("filler", cluster="c1", region="", replicas=1, cpu=16)]  # takes the replacement node
    ledger = replaced.ledger
    fresh = sorted(set(replaced.members["c1/workers"]) - set(first.members["c1/workers"]))
    ledger.workloads["filler"] = {"cluster": "c1", "group": "workers", "nodes": fresh, "spec": filler[0].spec()}
    result = plan(servers, groups, ledger, workloads=[*request, *filler])
    assert result.ok
    kept = result.ledger.workloads["db"]
    assert kept["nodes"] == [n for n in first.ledger.workloads["db"]["nodes"] if n != lost]
    assert result.unplaced[0]["workload"] == "db" and result.unplaced[0]["kept_previous"]
    assert next(w for w in result.workloads if w["workload"] == "db")["status"] == "kept previous"


def test_workload_request_validation():
    assert workload_request({"name": "x", "region": "eu", "replicas": None}).replicas == 1
    with pytest.raises(PlacementError, match="give region or cluster"):
        workload_request({"name": "x"})
    with pytest.raises(PlacementError, match="spread must be"):
        workload_request({"name": "x", "region": "eu", "spread": "planet"})


# --- ledger -----------------------------------------------------------------------------


def test_ledger_round_trip_through_the_store(tmp_path):
    ledger = Ledger(servers={"s1": ("c1", "g")}, history={"s2": ["c1/g"]},
                    workloads={"w": {"cluster": "c1", "group": "g", "nodes": ["s1"], "spec": {"replicas": 1}}})
    text = dump_ledger(ledger)
    assert parse_ledger(text) == ledger
    # The placement ledger lives in the ledger store like the allocation ledger: same file, same text.
    store = FileStore(str(tmp_path / "fleet.placement.yml"), kind=PLACEMENT)
    assert Ledger.from_data(store.read()) == Ledger()

    def write(data):
        data.update(ledger.to_data())
        return True

    store.update(write)
    assert (tmp_path / "fleet.placement.yml").read_text() == text
    assert Ledger.from_data(store.read()) == ledger
    with pytest.raises(PlacementError, match="not a version 1"):
        parse_ledger("version: 2\n")


def test_groups_fill_the_home_datacenter_first_and_overflow_at_the_caps():
    servers = make_servers(racks=("a01", "a02", "a03"), per_rack=3, dc="dc1")
    servers.update(make_servers(racks=("b01", "b02", "b03", "b04"), per_rack=4, dc="dc2"))
    cp = GroupRequest(cluster="c1", group="cp", region="eu", roles=("control_plane", "etcd"),
                      pinned=("a01-s01", "a02-s01", "a03-s01"))
    result = plan(servers, [cp, group(count=4)])
    assert result.ok
    workers = result.members["c1/workers"]
    assert {servers[n].location.datacenter for n in workers} == {"dc1"}
    assert sorted(racks_of(servers, workers)).count("a01") <= 2 and len(set(racks_of(servers, workers))) == 3
    assert "home datacenter dc1 of cluster c1" in result.changes[0]["why"]
    # Two per rack at most: dc1's 3 racks hold 6, the other 2 go to dc2 and say why.
    result = plan(servers, [cp, group(count=8, max_share_per_domain=0.25)], max_share_per_domain=1.0)
    assert result.ok
    away = [c for c in result.changes if servers[c["server"]].location.datacenter == "dc2"]
    assert len(away) == 2 and "outside home datacenter dc1" in away[0]["why"][-1]
    # A group that spreads over datacenters has no home.
    spread = plan(servers, [cp, group(count=4, spread="datacenter")])
    assert {servers[n].location.datacenter for n in spread.members["c1/workers"]} == {"dc1", "dc2"}


def test_intent_overrides_are_validated_like_the_fleet_file():
    fleet = load_fleet(EXAMPLE_FLEET)
    with pytest.raises(BaremetalError, match=r"placement: intents\[0\]\.count: -1 is out of range"):
        model_from_fleet(fleet, [{"cluster": "ams1-prod", "group": "general", "count": -1}])
    with pytest.raises(BaremetalError, match=r"max_share_per_domain: expected a number in \(0, 1\]"):
        model_from_fleet(fleet, [{"cluster": "ams1-prod", "group": "general", "max_share_per_domain": 2}])
    with pytest.raises(BaremetalError, match=r"spread: invalid value 'planet'\. Fix: use one of: rack, row, datac"):
        model_from_fleet(fleet, [{"cluster": "ams1-prod", "group": "general", "spread": "planet"}])
    with pytest.raises(PlacementError, match="unknown role"):
        model_from_fleet(fleet, [{"cluster": "ams1-prod", "group": "new", "roles": ["master"]}])
    with pytest.raises(PlacementError, match=r"cluster ams1-prod would have 4 etcd members \(control-plane: 4\); "
                                             r"etcd needs 1, 3, 5 or 7"):
        model_from_fleet(fleet, [{"cluster": "ams1-prod", "group": "control-plane", "count": 4}])
    groups = model_from_fleet(fleet, [{"cluster": "ams1-prod", "group": "control-plane", "count": 5}])[1]
    assert next(g for g in groups if g.key == "ams1-prod/control-plane").target == 5
    # An override changes the fields it gives and keeps the rest of the group's intent.
    general = next(g for g in model_from_fleet(fleet, [{"cluster": "ams1-prod", "group": "general", "count": 3,
                                                        "min_cores": None}])[1] if g.key == "ams1-prod/general")
    assert general.intent.count == 3 and general.intent.min_cores == 32 and general.intent.disk_type == "nvme"
