# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Property tests (hypothesis) of the placement engine.

Random fleets (regions, datacenters, rows, racks, mixed hardware, states and
labels), random node-group intents and tenant workloads, random options. The
invariants are checked with code written independently of the engine (own
hardware predicates, own failure-domain counting), never by calling the
engine's helpers.

Examples run derandomized by default so CI is reproducible; explore with
``HYPOTHESIS_PROFILE=deep pytest tests/unit/test_placement_properties.py``.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter

from ansible_collections.baremetal.k8s.plugins.module_utils.fleet import Intent
from ansible_collections.baremetal.k8s.plugins.module_utils.placement import (
    Candidate,
    GroupRequest,
    Ledger,
    Location,
    PlacementOptions,
    WorkloadRequest,
    dump_ledger,
    plan_placement,
)
from hypothesis import event, given, settings
from hypothesis import strategies as st

HARDWARE = (
    {"cores": 16, "memory_gb": 64, "disks": (("ssd", 480),), "nic_gbps": 10},
    {"cores": 32, "memory_gb": 128, "disks": (("nvme", 960),), "nic_gbps": 25},
    {"cores": 64, "memory_gb": 512, "disks": (("nvme", 3840), ("hdd", 16000)), "nic_gbps": 25},
    {"cores": 96, "memory_gb": 1024, "disks": (("nvme", 7680),), "nic_gbps": 100, "gpus": 4},
)
USABLE = ("spare", "active")
# Mostly usable, unlabelled servers, so that most plans succeed and the invariants have something to check.
STATES = ("spare", "active") * 4 + ("maintenance", "failed", "retired", "provisioning")
LABELS = ("",) * 6 + ("general", "gpu", "db")
RESERVED_CORES, RESERVED_MEMORY = 2.0, 8.0


# --- strategies ----------------------------------------------------------------------------


@st.composite
def fleets(draw, max_regions=2, states=STATES, labels=LABELS, min_racks=1, min_per_rack=0):
    """Candidates by name: 1-2 regions, each 1-2 datacenters of 1-3 rows of 1-4 racks of 0-5 servers."""
    servers = {}
    for r in range(draw(st.integers(1, max_regions))):
        for d in range(draw(st.integers(1, 2))):
            dc = "dc%d%d" % (r, d)
            for w in range(draw(st.integers(1, 3))):
                for k in range(draw(st.integers(min_racks, 4))):
                    location = Location("reg%d" % r, dc, "row%d" % w, "k%d%d" % (w, k))
                    for s in range(draw(st.integers(min_per_rack, 5))):
                        name = "%s-k%d%d-s%d" % (dc, w, k, s)
                        servers[name] = Candidate(
                            name=name, location=location,
                            state=draw(st.sampled_from(states)),
                            workload_label=draw(st.sampled_from(labels)),
                            **draw(st.sampled_from(HARDWARE)),
                        )
    return servers


def intents():
    """Intent fields except count; a share of 1 (the fleet's default) puts no cap on the group."""
    return st.fixed_dictionaries({
        "min_cores": st.sampled_from((0, 0, 0, 32, 64)),
        "min_memory_gb": st.sampled_from((0, 0, 0, 256)),
        "disk_type": st.sampled_from(("", "", "", "nvme", "hdd")),
        "min_disk_gb": st.sampled_from((0, 0, 0, 1000)),
        "min_nic_gbps": st.sampled_from((0, 0, 0, 25, 100)),
        "gpus": st.sampled_from((0,) * 6 + (4,)),
        "dedicated": st.sampled_from(("",) * 6 + ("gpu", "db")),
        "spread": st.sampled_from(("rack", "row", "datacenter")),
        "max_share_per_domain": st.sampled_from((1.0, 1.0, 0.5, 0.34)),
    })


@st.composite
def scenarios(draw):
    """(candidates, groups, options): 1-3 clusters, each maybe an etcd group, 0-2 worker groups, some pinned."""
    servers = draw(fleets())
    regions = sorted({c.location.region for c in servers.values()}) or ["reg0"]
    names = sorted(servers)
    free = list(names)
    groups = []
    for c in range(draw(st.integers(1, 3))):
        cluster, region = "c%d" % c, draw(st.sampled_from(regions))
        if draw(st.booleans()):
            groups.append(GroupRequest(cluster, "cp", region, ("control_plane", "etcd"),
                                       intent=Intent(count=draw(st.sampled_from((1, 3, 3, 5))))))
        for g in range(draw(st.integers(0, 2))):
            in_region = [n for n in free if servers[n].location.region == region]
            pinned = tuple(draw(st.lists(st.sampled_from(in_region), max_size=2, unique=True))) if in_region else ()
            free = [n for n in free if n not in pinned]
            count = len(pinned) + draw(st.integers(0, 4))
            groups.append(GroupRequest(cluster, "w%d" % g, region, ("worker",), pinned=pinned,
                                       intent=Intent(count=count, **draw(intents()))))
    options = PlacementOptions(
        allow_blast_radius=draw(st.booleans()),
        max_share_per_domain=draw(st.sampled_from((0.5, 0.5, 1.0))),
        failure_domain=draw(st.sampled_from(("rack", "rack", "row"))),
    )
    return servers, groups, options


# --- independent checks --------------------------------------------------------------------


def meets(group: GroupRequest, server: Candidate) -> bool:
    """The intent's hard constraints, restated from docs/placement.md."""
    want = group.intent
    disks = [size for kind, size in server.disks if not want.disk_type or kind == want.disk_type]
    if (want.disk_type or want.min_disk_gb) and (not disks or max(disks) < max(want.min_disk_gb, 1)):
        return False
    unreserved = server.workload_label in ("", "general")
    label_ok = server.workload_label == want.dedicated if want.dedicated else unreserved
    return (server.location.region == group.region and server.state in USABLE and label_ok
            and server.cores >= want.min_cores and server.memory_gb >= want.min_memory_gb
            and server.nic_gbps >= want.min_nic_gbps and server.gpus >= want.gpus)


def domain(server: Candidate, level: str) -> tuple:
    loc = server.location
    return {"rack": (loc.datacenter, loc.rack), "row": (loc.datacenter, loc.row),
            "datacenter": (loc.datacenter,)}[level]


def cap(share: float, total: int) -> int:
    return max(1, math.floor(share * total + 1e-9))


def run(servers, groups, options, ledger=None, workloads=None):
    return plan_placement(servers, groups, ledger or Ledger(), options, workloads)


def check_server_plan(servers, groups, options, ledger, result):
    """Invariants of every plan: what an ok plan looks like, and that a failed one changes nothing."""
    if not result.ok:
        assert result.failures
        assert result.ledger == ledger and result.changes == []
        for line in result.failures:
            assert ("unsatisfiable" in line and "(funnel: " in line) or "blast radius refused" in line, line
        for explanation in result.groups:
            if explanation["status"] == "unsatisfiable":
                assert explanation["reason"] and explanation["placed"] == []
                lefts = [step["left"] for step in explanation["funnel"]]
                assert lefts and lefts == sorted(lefts, reverse=True), explanation["funnel"]
        return
    by_key = {g.key: g for g in groups}
    owners = Counter(name for members in result.members.values() for name in members)
    assert all(n == 1 for n in owners.values()), "a server serves two groups"
    for name, (cluster, group_name) in result.ledger.servers.items():
        group = by_key["%s/%s" % (cluster, group_name)]
        assert name in result.members[group.key]
        assert meets(group, servers[name]) or name in ledger.servers, (name, group)
    for group in groups:
        members = result.members[group.key]
        if group.has_intent:
            # Never a partial plan: every intent is filled exactly.
            assert len(members) == group.target, (group.key, members)
        if group.has_intent and group.intent.max_share_per_domain < 1 and not group.pinned and not ledger.servers:
            spread = Counter(domain(servers[n], group.intent.spread) for n in members)
            assert max(spread.values(), default=0) <= cap(group.intent.max_share_per_domain, group.target)
    if not options.allow_blast_radius:
        for cluster in {g.cluster for g in groups}:
            names = [n for g in groups if g.cluster == cluster for n in result.members[g.key]]
            per_domain = Counter(domain(servers[n], options.failure_domain) for n in names)
            assert max(per_domain.values(), default=0) <= cap(options.max_share_per_domain, len(names))
            etcd = [n for g in groups if g.cluster == cluster and g.is_etcd for n in result.members[g.key]]
            assert len({domain(servers[n], options.failure_domain) for n in etcd}) == len(etcd)
    # Stability: the same input with the plan's own ledger changes nothing.
    again = run(servers, groups, options, result.ledger)
    assert again.ok and again.changes == [], again.changes or again.failures
    assert dump_ledger(again.ledger) == dump_ledger(result.ledger)
    assert again.members == result.members


# --- server placement ----------------------------------------------------------------------


@given(scenarios())
def test_server_plans_respect_constraints_caps_and_are_stable(scenario):
    servers, groups, options = scenario
    result = run(servers, groups, options)
    event("plan ok" if result.ok else "plan refused")  # --hypothesis-show-statistics: is anything checked?
    check_server_plan(servers, groups, options, Ledger(), result)
    if result.ok:
        # rebalance re-places everything: still a valid plan, and a fixed point (a second rebalance moves nothing).
        rebalance = dataclasses.replace(options, rebalance=True)
        check_server_plan(servers, groups, rebalance, result.ledger, run(servers, groups, rebalance, result.ledger))


@given(scenarios(), st.randoms(use_true_random=False))
def test_plans_are_deterministic_whatever_the_input_order(scenario, rng):
    servers, groups, options = scenario
    reference = run(servers, groups, options)
    names = list(servers)
    rng.shuffle(names)
    order = list(groups)
    rng.shuffle(order)
    shuffled = run({n: servers[n] for n in names}, order, options)
    assert dump_ledger(shuffled.ledger) == dump_ledger(reference.ledger)
    assert shuffled.members == reference.members
    assert shuffled.failures == reference.failures
    assert shuffled.groups == reference.groups


@given(scenarios(), intents(), st.integers(1, 4))
def test_adding_an_intent_never_moves_existing_placements(scenario, intent, count):
    servers, groups, options = scenario
    first = run(servers, groups, options)
    if not first.ok:
        return
    cluster, region = (groups[0].cluster, groups[0].region) if groups else ("c0", "reg0")
    extra = GroupRequest(cluster, "added", region, ("worker",), intent=Intent(count=count, **intent))
    second = run(servers, [*groups, extra], options, first.ledger)
    check_server_plan(servers, [*groups, extra], options, first.ledger, second)
    if second.ok:
        for name, assignment in first.ledger.servers.items():
            assert second.ledger.servers[name] == assignment
        for group in groups:
            assert second.members[group.key] == first.members[group.key]
        assert {change["action"] for change in second.changes} <= {"placed"}


@given(fleets(), intents(), st.integers(1, 6), st.booleans())
def test_unsatisfiable_exactly_when_too_few_servers_pass_the_filters(servers, intent, count, blast):
    """One group alone, no caps in the way: it fails iff fewer servers than ``count`` pass every filter,
    and then the funnel says where the candidates ran out."""
    intent = dict(intent, max_share_per_domain=1.0)
    group = GroupRequest("c1", "w", "reg0", ("worker",), intent=Intent(count=count, **intent))
    options = PlacementOptions(allow_blast_radius=True, max_share_per_domain=1.0 if blast else 0.5)
    eligible = [s for s in servers.values() if meets(group, s)]
    result = run(servers, [group], options)
    if not blast and not result.ok and len(eligible) >= count:
        # Only the cluster share (0.5) can stop it, and allow_blast_radius lets it through.
        raise AssertionError(result.failures)
    assert result.ok == (len(eligible) >= count), (len(eligible), count, result.failures)
    funnel = result.groups[0]["funnel"]
    in_region = sum(1 for s in servers.values() if s.location.region == "reg0")
    assert funnel[0] == {"filter": "servers in region reg0", "left": in_region}
    if result.ok:
        assert set(result.members["c1/w"]) <= {s.name for s in eligible}
        return
    assert result.ledger.servers == {} and result.changes == []
    # The last filter leaves exactly the eligible servers; the failure names the first filter short of count.
    assert funnel[-1]["left"] == len(eligible)
    short = next(step for step in funnel if step["left"] < count)
    assert "'%s'" % short["filter"] in result.failures[0]
    assert "c1/w: unsatisfiable: needs %d more server(s)" % count in result.failures[0]


@given(fleets(states=USABLE, labels=("",)), st.sampled_from((1, 3, 5)), st.booleans(), intents())
def test_etcd_members_never_share_a_rack_when_the_fleet_allows(servers, count, allow, intent):
    intent = dict(intent, dedicated="", max_share_per_domain=1.0, spread="rack")
    group = GroupRequest("c1", "cp", "reg0", ("control_plane", "etcd"), intent=Intent(count=count, **intent))
    eligible = [s for s in servers.values() if meets(group, s)]
    racks = {domain(s, "rack") for s in eligible}
    result = run(servers, [group], PlacementOptions(allow_blast_radius=allow))
    if not allow:
        assert result.ok == (len(racks) >= count), (len(racks), count, result.failures)
    else:
        assert result.ok == (len(eligible) >= count), (len(eligible), count, result.failures)
    if result.ok:
        used = {domain(servers[n], "rack") for n in result.members["c1/cp"]}
        assert len(used) == min(count, len(racks))
    elif not allow and len(eligible) >= count:
        assert "etcd: at most 1 member per rack" in result.failures[0]


@given(fleets(states=USABLE), st.data())
def test_pinned_pileup_in_one_rack_is_refused_unless_allowed(servers, data):
    per_rack: dict[tuple, list[str]] = {}
    for server in servers.values():
        per_rack.setdefault((server.location.region, *domain(server, "rack")), []).append(server.name)
    crowded = sorted(names for names in per_rack.values() if len(names) >= 2)
    if not crowded:
        return
    names = data.draw(st.sampled_from(crowded))
    pinned = tuple(sorted(data.draw(st.lists(st.sampled_from(names), min_size=2, unique=True))))
    etcd = data.draw(st.booleans())
    roles = ("control_plane", "etcd") if etcd else ("load_balancer",)
    group = GroupRequest("c1", "pinned", servers[pinned[0]].location.region, roles, pinned=pinned)
    refused = run(servers, [group], PlacementOptions())
    assert not refused.ok and refused.ledger.servers == {}
    assert any("blast radius refused" in line for line in refused.failures)
    if etcd:
        assert any("%d etcd members in rack" % len(pinned) in line for line in refused.failures)
    allowed = run(servers, [group], PlacementOptions(allow_blast_radius=True))
    assert allowed.ok and any("blast radius allowed" in w for w in allowed.warnings)


# --- workloads -----------------------------------------------------------------------------


@st.composite
def workload_lists(draw, regions, clusters):
    workloads = []
    for i in range(draw(st.integers(1, 8))):
        by_cluster = draw(st.booleans()) and clusters
        workloads.append(WorkloadRequest(
            name="wl%02d" % i,
            region="" if by_cluster else draw(st.sampled_from(regions)),
            cluster=draw(st.sampled_from(clusters)) if by_cluster else "",
            replicas=draw(st.sampled_from((1, 2, 3, 3, 5))),
            cpu=draw(st.sampled_from((0.5, 1.0, 2.0, 4.0, 8.0))),
            memory_gb=draw(st.sampled_from((1.0, 4.0, 8.0, 32.0))),
            disk_type=draw(st.sampled_from(("",) * 6 + ("nvme", "hdd"))),
            dedicated=draw(st.sampled_from(("",) * 6 + ("db",))),
            spread=draw(st.sampled_from(("rack", "rack", "row", "node"))),
        ))
    return workloads


def check_workload_plan(servers, options, ledger, workloads, result):
    if not result.ok:
        assert result.failures and result.ledger == ledger and result.changes == []
        for line in result.failures:
            if options.partial_workloads:
                assert "listed twice" in line, line  # partial: only bad input refuses the workloads
            else:
                assert "unsatisfiable" in line or "listed twice" in line, line
        return
    unplaced = {item["workload"]: item for item in result.unplaced}
    assert not unplaced or options.partial_workloads, unplaced
    for item in unplaced.values():
        assert item["reason"] in result.warnings
    for workload in workloads:
        placement = result.ledger.workloads.get(workload.name)
        if workload.name in unplaced:
            if unplaced[workload.name]["kept_previous"]:
                # Planned with its previous request: the ledger's spec stays the previous one.
                assert placement["spec"] == ledger.workloads[workload.name]["spec"]
                assert len(placement["nodes"]) <= placement["spec"]["replicas"]
            else:
                assert placement is None and workload.name not in result.manifests
            continue
        nodes = placement["nodes"]
        assert len(nodes) == len(set(nodes)) == workload.replicas
        key = "%s/%s" % (placement["cluster"], placement["group"])
        assert set(nodes) <= set(result.members[key])
        if workload.cluster:
            assert placement["cluster"] == workload.cluster
        for name in nodes:
            server = servers[name]
            assert server.location.region == workload.region or workload.cluster
            assert (server.workload_label == workload.dedicated if workload.dedicated
                    else server.workload_label in ("", "general"))
            assert not workload.disk_type or workload.disk_type in {disk[0] for disk in server.disks}
        if workload.spread != "node" and not options.allow_blast_radius:
            most = 1 if workload.replicas <= 3 else (workload.replicas - 1) // 2
            per_domain = Counter(domain(servers[n], workload.spread) for n in nodes)
            assert max(per_domain.values()) <= most, (workload, per_domain)
        manifest = result.manifests[workload.name]
        terms = manifest["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert terms["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == nodes
    # Never over-committed: the requests the ledger reserves on a node fit its capacity minus the system reserve.
    used_cpu, used_mem = Counter(), Counter()
    for placement in result.ledger.workloads.values():
        for name in placement["nodes"]:
            used_cpu[name] += placement["spec"]["cpu"]
            used_mem[name] += placement["spec"]["memory_gb"]
    for name, cpu in used_cpu.items():
        assert cpu <= servers[name].cores - RESERVED_CORES + 1e-6, (name, cpu)
        assert used_mem[name] <= servers[name].memory_gb - RESERVED_MEMORY + 1e-6, (name, used_mem[name])


@st.composite
def workload_scenarios(draw):
    servers = draw(fleets(max_regions=1, states=USABLE, labels=("", "", "general", "db"), min_racks=2,
                          min_per_rack=2))
    regions = sorted({c.location.region for c in servers.values()}) or ["reg0"]
    groups = []
    for c in range(draw(st.integers(1, 3))):
        region = draw(st.sampled_from(regions))
        groups.append(GroupRequest("c%d" % c, "workers", region, ("worker",),
                                   intent=Intent(count=draw(st.integers(2, 6)))))
        if draw(st.booleans()):
            groups.append(GroupRequest("c%d" % c, "db", region, ("worker",),
                                       intent=Intent(count=draw(st.integers(1, 3)), dedicated="db")))
    options = PlacementOptions(allow_blast_radius=draw(st.booleans()), max_share_per_domain=1.0,
                               partial_workloads=draw(st.booleans()))
    servers_only = run(servers, groups, options)
    workloads = draw(workload_lists(sorted({g.region for g in groups}), sorted({g.cluster for g in groups})))
    return servers, groups, options, servers_only, workloads


@settings(max_examples=max(settings.default.max_examples, 150))  # about a third of the scenarios plan fully
@given(workload_scenarios(), st.data())
def test_workload_plans_never_overcommit_and_are_stable(scenario, data):
    servers, groups, options, servers_only, workloads = scenario
    if not servers_only.ok:
        return
    result = run(servers, groups, options, workloads=workloads)
    event("workloads placed" if result.ok else "workloads refused")
    check_workload_plan(servers, options, Ledger(), workloads, result)
    if not result.ok:
        return
    again = run(servers, groups, options, result.ledger, workloads)
    assert again.ok and again.changes == [] and again.ledger.workloads == result.ledger.workloads
    # A new workload never moves the placed ones; if it does not fit, nothing is written (strict) or it is
    # reported and the rest stays as it was (partial).
    extra = data.draw(workload_lists(sorted({s.location.region for s in servers.values()}), ["c0"]))[0]
    extra = WorkloadRequest(**{**extra.__dict__, "name": "zz-added"})
    grown = run(servers, groups, options, result.ledger, [*workloads, extra])
    check_workload_plan(servers, options, result.ledger, [*workloads, extra], grown)
    if grown.ok:
        for name, placement in result.ledger.workloads.items():
            assert grown.ledger.workloads[name] == placement
        assert all(change["workload"] == "zz-added" or change["workload"] not in result.ledger.workloads
                   for change in grown.changes), grown.changes
        assert all(change["action"] == "placed" for change in grown.changes)
