# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The remediation policy (plugins/module_utils/remediation.py): one case per rule, then properties.

The properties check the plan with code written independently of the policy
(own failure-domain prefixes, own quorum arithmetic). Derandomized by default;
``HYPOTHESIS_PROFILE=deep`` explores more.
"""

from __future__ import annotations

import dataclasses
import datetime
import json

import pytest
from ansible_collections.baremetal.k8s.plugins.module_utils.etcd_quorum import Member
from ansible_collections.baremetal.k8s.plugins.module_utils.fleet import parse_fleet
from ansible_collections.baremetal.k8s.plugins.module_utils.remediation import (
    EtcdState,
    NodeRecord,
    Policy,
    RemediationError,
    node_from_dict,
    plan_remediation,
    policy_from_dict,
    records_from_fleet,
)
from fleet_samples import small_fleet
from hypothesis import given
from hypothesis import strategies as st

NOW = 1_000_000.0


def node(name, rack="a01", *, down=None, cluster="c1", roles=("worker",), row="r1", **extra):
    """A node in eu/dc1/ROW/RACK; DOWN = seconds it has been NotReady (None: healthy)."""
    if down is not None:
        extra.setdefault("ready", False)
        extra.setdefault("unhealthy_since", NOW - down)
        extra.setdefault("reasons", ("KubeletNotReady",))
    return NodeRecord(name=name, cluster=cluster, roles=tuple(roles), failure_domain="eu/dc1/%s/%s" % (row, rack),
                      **extra)


def workers(count, rack="a09", prefix="h", cluster="c1"):
    """COUNT healthy workers (to keep a cluster under max_unhealthy)."""
    return [node("%s%02d" % (prefix, i), rack, cluster=cluster) for i in range(count)]


def control_planes(*downs, racks=("a01", "a02", "a03")):
    """cp-0.. with stacked etcd; downs[i] as in node(); etcd health follows the node's."""
    nodes = [node("cp-%d" % i, racks[i % len(racks)], down=d, roles=("control_plane", "etcd"))
             for i, d in enumerate(downs)]
    members = tuple(Member(id=str(100 + i), name=n.name) for i, n in enumerate(nodes))
    return nodes, EtcdState(members, {m.id: n.healthy for m, n in zip(members, nodes, strict=True)})


def plan(nodes, policy=None, **kwargs):
    return plan_remediation(nodes, policy or Policy(), now=NOW, **kwargs)


def names(entries):
    return [e.node for e in entries]


# --------------------------------------------------------------------------- grace period


def test_a_healthy_cluster_has_an_empty_plan():
    result = plan(workers(5))
    assert not any(result.buckets().values()) and not result.halted
    assert result.summary() == "0 remediate, 0 in progress, 0 waiting, 0 deferred, 0 refused"


def test_within_the_grace_period_the_node_waits():
    result = plan([node("w1", down=200), *workers(4)])
    assert names(result.waiting) == ["w1"] and not result.remediate
    assert result.waiting[0].reason == ("NotReady (KubeletNotReady) for 200 s, within the grace period of 300 s "
                                        "(100 s to go)")


def test_past_the_grace_period_the_node_is_remediated_with_the_numbers():
    result = plan([node("w1", down=301), *workers(4)])
    assert names(result.remediate) == ["w1"]
    entry = result.remediate[0]
    assert entry.reason == ("NotReady (KubeletNotReady) for 301 s, past the grace period of 300 s; remediation 1 "
                            "of max_concurrent 1 in cluster c1, rack eu/dc1/r1/a01")
    assert (entry.failure_domain, entry.unhealthy_for) == ("eu/dc1/r1/a01", 301.0)


def test_unknown_since_waits_and_says_what_to_pass():
    result = plan([node("w1", ready=None, reasons=("NotRegistered",)), *workers(4)])
    assert names(result.waiting) == ["w1"]
    assert "Ready unknown (NotRegistered) since an unknown time" in result.waiting[0].reason
    assert "pass unhealthy_since" in result.waiting[0].reason


def test_ready_but_failing_a_health_check_is_unhealthy():
    result = plan([node("w1", ready=True, reasons=("disk nvme0 SMART failure",), unhealthy_since=NOW - 900),
                   *workers(4)])
    assert names(result.remediate) == ["w1"]
    assert result.remediate[0].reason.startswith("Ready but failing health checks (disk nvme0 SMART failure)")


def test_iso_timestamps_are_accepted():
    since = "1970-01-12T13:31:40Z"  # NOW - 600
    result = plan_remediation([node("w1", down=1, unhealthy_since=since), *workers(4)], Policy(),
                              now="1970-01-12T13:41:40+00:00")
    assert result.remediate[0].unhealthy_for == 600.0


# --------------------------------------------------------------------------- refusals


def test_protected_nodes_are_refused_but_count_as_unhealthy():
    result = plan([node("w1", down=900, protected=True), node("w2", down=900), *workers(1)], Policy(max_unhealthy=1))
    assert names(result.refused) == ["w1"] and "protected against deletion" in result.refused[0].reason
    # w1 still counts: 2 of 3 unhealthy exceeds 1, so w2 is not remediated either.
    assert result.halted and names(result.deferred) == ["w2"]


@pytest.mark.parametrize("state, words", [
    ("maintenance", "in maintenance"), ("failed", "marked failed"), ("retired", "retired"),
    ("spare", "a spare"), ("provisioning", "still being provisioned"),
])
def test_lifecycle_states_other_than_active_are_refused(state, words):
    result = plan([node("w1", down=900, state=state), *workers(4)])
    assert names(result.refused) == ["w1"] and words in result.refused[0].reason
    assert not result.remediate


def test_a_node_of_no_known_cluster_is_refused():
    result = plan([node("w1", down=900, cluster=None), node("w2", down=900, cluster="ghost"), *workers(4)],
                  clusters=["c1"])
    assert names(result.refused) == ["w1", "w2"]
    assert "serves no cluster" in result.refused[0].reason
    assert "cluster ghost is not a known cluster (known: c1)" in result.refused[1].reason


def test_the_only_control_plane_is_refused():
    cps, etcd = control_planes(900)
    result = plan([*cps, *workers(4)], etcd={"c1": etcd})
    assert names(result.refused) == ["cp-0"] and "only control plane of cluster c1" in result.refused[0].reason


# --------------------------------------------------------------------------- max_unhealthy


def test_more_unhealthy_than_max_unhealthy_halts_the_cluster():
    nodes = [node("w%02d" % i, "a0%d" % i, down=900) for i in range(3)] + workers(7, prefix="h")
    result = plan(nodes, Policy(max_unhealthy="20%"))
    assert result.halted and not result.remediate
    assert result.halted_reason.startswith("cluster c1: 3 of 10 nodes unhealthy exceeds max_unhealthy 2 (20%)")
    assert names(result.deferred) == ["w00", "w01", "w02"]
    assert all(e.reason.startswith("remediation halted: cluster c1: 3 of 10") for e in result.deferred)
    assert result.as_dict()["halted_clusters"] == [
        {"cluster": "c1", "reason": result.halted_reason, "unhealthy": 3, "nodes": 10, "max_unhealthy": 2}]


def test_at_max_unhealthy_remediation_goes_on():
    nodes = [node("w%02d" % i, "a01", down=900) for i in range(2)] + workers(8, prefix="h")
    result = plan(nodes, Policy(max_unhealthy="20%", max_concurrent=2))
    assert not result.halted and names(result.remediate) == ["w00", "w01"]


def test_max_unhealthy_as_a_count_and_what_counts():
    # Waiting and in-flight nodes count too (Cluster API: every node that is not healthy).
    nodes = [node("w1", down=900), node("w2", down=10), node("w3", down=900, in_flight=True), *workers(7)]
    result = plan(nodes, Policy(max_unhealthy=2))
    assert "3 of 10 nodes unhealthy exceeds max_unhealthy 2:" in result.halted_reason
    assert names(result.waiting) == ["w2"]  # the grace period says more than the halt
    assert names(result.in_progress) == ["w3"]  # what is running is not stopped
    # Retired, spare and provisioning nodes are not the cluster's nodes.
    nodes = [node("w1", down=900), node("r1", state="retired", ready=False, unhealthy_since=0.0), *workers(2)]
    result = plan(nodes, Policy(max_unhealthy="40%"))  # 1 of 3: floor(1.2) = 1, not exceeded
    assert names(result.remediate) == ["w1"] and names(result.refused) == ["r1"]


def test_percentages_round_down_like_cluster_api():
    assert [Policy(max_unhealthy="40%").max_unhealthy_of(n) for n in (1, 2, 3, 5, 10)] == [0, 0, 1, 2, 4]
    assert Policy(max_unhealthy="100%").max_unhealthy_of(7) == 7


# --------------------------------------------------------------------------- concurrency and failure domains


def test_max_concurrent_counts_what_is_in_flight():
    nodes = [node("w1", down=900, in_flight=True), node("w2", down=800), *workers(8)]
    result = plan(nodes)
    assert names(result.in_progress) == ["w1"] and names(result.deferred) == ["w2"]
    assert result.deferred[0].reason == "max_concurrent 1 reached in cluster c1: w1 already being remediated"
    result = plan(nodes, Policy(max_concurrent=2))
    assert names(result.remediate) == ["w2"]


def test_one_failure_domain_at_a_time():
    nodes = [node("w1", "a01", down=900), node("w2", "a02", down=800), node("w3", "a01", down=700), *workers(7)]
    result = plan(nodes, Policy(max_concurrent=3))
    assert names(result.remediate) == ["w1", "w3"]  # the longest unhealthy picks the rack
    assert names(result.deferred) == ["w2"]
    assert result.deferred[0].reason == ("one rack failure domain at a time: eu/dc1/r1/a01 is being remediated "
                                         "(w1), eu/dc1/r1/a02 waits its turn")
    # At row level both racks are one domain.
    result = plan(nodes, Policy(max_concurrent=3, failure_domain="row"))
    assert names(result.remediate) == ["w1", "w2", "w3"]


def test_an_in_flight_remediation_holds_its_failure_domain():
    nodes = [node("w1", "a02", down=60, in_flight=True), node("w2", "a01", down=900), node("w3", "a02", down=800),
             *workers(7)]
    result = plan(nodes, Policy(max_concurrent=3))
    assert names(result.remediate) == ["w3"] and names(result.deferred) == ["w2"]


def test_in_flight_in_two_domains_starts_nothing_new():
    nodes = [node("w1", "a01", down=60, in_flight=True), node("w2", "a02", down=60, in_flight=True),
             node("w3", "a01", down=900), *workers(7)]
    result = plan(nodes, Policy(max_concurrent=5))
    assert names(result.deferred) == ["w3"] and "already run in 2 rack failure domains" in result.deferred[0].reason


def test_clusters_are_limited_independently():
    nodes = [node("a1", down=900), *workers(4), node("b1", "a02", down=800, cluster="c2"),
             *workers(4, prefix="x", cluster="c2")]
    result = plan(nodes)
    assert names(result.remediate) == ["a1", "b1"]


def test_order_is_longest_unhealthy_first_then_name():
    nodes = [node("w3", down=500), node("w1", down=900), node("w2", down=900), *workers(12)]
    result = plan(nodes, Policy(max_concurrent=3))
    assert names(result.remediate) == ["w1", "w2", "w3"]


# --------------------------------------------------------------------------- control planes and etcd


def test_a_down_control_plane_is_remediated_when_etcd_keeps_quorum():
    cps, etcd = control_planes(900, None, None)
    result = plan([*cps, *workers(4)], etcd={"c1": etcd})
    assert names(result.remediate) == ["cp-0"]
    assert result.remediate[0].reason.endswith(
        "etcd: removing unhealthy member cp-0 leaves 2 voting members, 2 healthy (quorum 2)")


def test_a_control_plane_whose_removal_would_lose_quorum_is_deferred():
    # cp-0's kubelet is down but its etcd is healthy; cp-1's etcd is down while its node is Ready.
    cps, etcd = control_planes(900, None, None)
    etcd = EtcdState(etcd.members, {"100": True, "101": False, "102": True})
    result = plan([*cps, *workers(4)], etcd={"c1": etcd})
    assert names(result.deferred) == ["cp-0"]
    assert ("refusing to remove healthy member cp-0: 2 voting members would remain, of which only 1 healthy, "
            "below the quorum of 2") in result.deferred[0].reason


def test_etcd_without_quorum_remediates_no_control_plane():
    cps, etcd = control_planes(900, 800, None)
    result = plan([*cps, *workers(4)], Policy(max_concurrent=3, failure_domain="region"), etcd={"c1": etcd})
    assert not result.remediate
    assert "already lost quorum (1 of 3 voting members healthy, quorum is 2)" in result.deferred[0].reason


def test_one_control_plane_at_a_time():
    cps, etcd = control_planes(900, 800, None, None, None)
    result = plan([*cps, *workers(5)], Policy(max_concurrent=3, failure_domain="region"), etcd={"c1": etcd})
    assert names(result.remediate) == ["cp-0"]
    assert names(result.deferred) == ["cp-1"]
    assert result.deferred[0].reason == "one control plane at a time: cp-0 is being remediated"


def test_a_control_plane_needs_another_healthy_one():
    cps = [node("cp-%d" % i, down=900 - i, roles=("control_plane",)) for i in range(2)]
    result = plan([*cps, *workers(8)], Policy(max_concurrent=2))
    assert names(result.deferred) == ["cp-0", "cp-1"]
    assert "no other control plane of cluster c1 is healthy" in result.deferred[0].reason


def test_etcd_state_is_needed_for_an_etcd_node():
    cps, _etcd = control_planes(900, None, None)
    result = plan([*cps, *workers(4)])
    assert names(result.deferred) == ["cp-0"]
    assert "etcd members of cluster c1 are not known" in result.deferred[0].reason


def test_an_etcd_member_already_gone_is_no_obstacle():
    cps, etcd = control_planes(900, None, None)
    etcd = EtcdState(etcd.members[1:], {"101": True, "102": True})
    result = plan([*cps, *workers(4)], etcd={"c1": etcd})
    assert names(result.remediate) == ["cp-0"] and "no member named cp-0" in result.remediate[0].reason


# --------------------------------------------------------------------------- input and output


def test_as_dict_is_json():
    cps, etcd = control_planes(900, None, None)
    result = plan([*cps, node("w1", down=100), *workers(4)], etcd={"c1": etcd})
    data = json.loads(json.dumps(result.as_dict()))
    assert data["remediate"][0]["node"] == "cp-0" and data["waiting"][0]["node"] == "w1"
    assert data["policy"] == {"grace_period": 300, "max_unhealthy": "40%", "max_concurrent": 1,
                              "failure_domain": "rack"}
    assert data["halted"] is False and data["summary"].startswith("1 remediate, 0 in progress, 1 waiting")


@pytest.mark.parametrize("changes, field, words", [
    ({"grace_period": -1}, "policy.grace_period", "-1 is below 0"),
    ({"grace_period": "5m"}, "policy.grace_period", "expected a whole number"),
    ({"max_concurrent": 0}, "policy.max_concurrent", "0 is below 1"),
    ({"max_unhealthy": "40"}, "policy.max_unhealthy", "invalid value '40'"),
    ({"max_unhealthy": "150%"}, "policy.max_unhealthy", "invalid value"),
    ({"max_unhealthy": -2}, "policy.max_unhealthy", "negative"),
    ({"max_unhealthy": True}, "policy.max_unhealthy", "invalid value"),
    ({"failure_domain": "switch"}, "policy.failure_domain", "invalid value 'switch'"),
])
def test_bad_policies_name_the_field_and_the_fix(changes, field, words):
    with pytest.raises(RemediationError) as caught:
        Policy(**changes)
    assert caught.value.field == field and words in caught.value.problem and caught.value.fix
    assert str(caught.value).startswith(field + ": ") and ". Fix: " in str(caught.value)


@pytest.mark.parametrize("changes, field, words", [
    ({"roles": ("master",)}, "nodes[0] (w1).roles", "unknown role 'master'"),
    ({"roles": ()}, "nodes[0] (w1).roles", "non-empty list"),
    ({"failure_domain": "a01"}, "nodes[0] (w1).failure_domain", "expected region/datacenter/row/rack"),
    ({"ready": "yes"}, "nodes[0] (w1).ready", "expected true, false or null"),
    ({"state": "broken"}, "nodes[0] (w1).state", "invalid lifecycle state"),
    ({"unhealthy_since": "yesterday"}, "nodes[0] (w1).unhealthy_since", "expected a time"),
    ({"protected": "no"}, "nodes[0] (w1).protected", "expected true or false"),
    ({"reasons": "KubeletNotReady"}, "nodes[0] (w1).reasons", "list of non-empty strings"),
])
def test_bad_nodes_name_the_field_and_the_fix(changes, field, words):
    with pytest.raises(RemediationError) as caught:
        plan([dataclasses.replace(node("w1", down=900), **changes)])
    assert caught.value.field == field and words in caught.value.problem


def test_duplicate_nodes_and_bad_etcd_state_are_errors():
    with pytest.raises(RemediationError, match=r"nodes\[1\].name: node w1 is listed twice \(also nodes\[0\]\)"):
        plan([node("w1"), node("w1")])
    with pytest.raises(RemediationError, match=r"etcd.c1: expected an EtcdState"):
        plan([node("w1")], etcd={"c1": {"members": []}})
    with pytest.raises(RemediationError, match=r"^now: expected a time"):
        plan_remediation([], now=None)


def test_from_dicts():
    record = node_from_dict({"name": "w1", "cluster": "c1", "roles": ["worker"], "failure_domain": "eu/dc1/r1/a01",
                             "ready": False, "unhealthy_since": "2026-01-31T12:00:00Z", "reasons": ["KubeletDown"]})
    assert record.roles == ("worker",) and record.unhealthy_since == 1769860800.0
    with pytest.raises(RemediationError, match=r"nodes\[0\].rack: unknown field"):
        node_from_dict({"name": "w1", "rack": "a01"})
    with pytest.raises(RemediationError, match=r"nodes\[0\].failure_domain: required field is missing"):
        node_from_dict({"name": "w1", "cluster": "c1", "roles": ["worker"]})
    assert policy_from_dict({"max_unhealthy": 2, "grace_period": None}) == Policy(max_unhealthy=2)
    with pytest.raises(RemediationError, match=r"policy.grace: unknown field"):
        policy_from_dict({"grace": 5})


def test_records_from_fleet():
    data = small_fleet(servers=6)
    data["servers"][5]["state"] = "maintenance"
    data["servers"][4]["protection"] = {"deletion": True, "reason": "only copy"}
    data["clusters"][0]["node_groups"].append({"name": "lb", "roles": ["load_balancer"], "servers": []})
    fleet = parse_fleet(data, "fleet.yml")
    live = {"s00": {"registered": True, "ready": True, "ready_reason": "KubeletReady"},
            "s01": {"registered": True, "ready": False, "ready_reason": "KubeletNotReady"},
            "s03": {"registered": True, "ready": True, "ready_reason": "KubeletReady"},
            "s05": {"registered": True, "ready": True, "ready_reason": "KubeletReady"}}
    records = records_from_fleet(fleet, live, unhealthy_since={"s01": NOW - 900},
                                 in_flight={"s02"})
    by_name = {r.name: r for r in records}
    assert sorted(by_name) == ["s00", "s01", "s02", "s03", "s04", "s05"]
    assert by_name["s00"].roles == ("control_plane", "etcd") and by_name["s03"].roles == ("worker",)
    assert by_name["s01"].reasons == ("KubeletNotReady",) and by_name["s01"].failure_domain == "eu/dc1/r1/a02"
    assert by_name["s04"].ready is None and by_name["s04"].reasons == ("NotRegistered",) and by_name["s04"].protected
    assert by_name["s05"].state == "maintenance" and by_name["s02"].in_flight
    members = tuple(Member(id=str(i), name="s%02d" % i) for i in range(3))
    result = plan(records, Policy(max_unhealthy=3), etcd={"c1": EtcdState(members, {"0": True, "1": False, "2": True})})
    assert names(result.in_progress) == ["s02"] and names(result.refused) == ["s04"]
    # s01 would be allowed by etcd, but s02 (a control plane) is in flight: one at a time.
    assert names(result.deferred) == ["s01"] and "max_concurrent 1 reached" in result.deferred[0].reason


def test_records_from_fleet_take_unhealthy_since_from_live_state():
    fleet = parse_fleet(small_fleet(servers=6), "fleet.yml")
    since = datetime.datetime.fromtimestamp(NOW - 900, datetime.timezone.utc).isoformat()
    live = {"s03": {"registered": True, "ready": False, "ready_reason": "KubeletNotReady", "ready_since": since},
            "s04": {"registered": True, "ready": True, "ready_reason": "KubeletReady", "ready_since": since}}
    by_name = {r.name: r for r in records_from_fleet(fleet, live)}
    assert by_name["s03"].unhealthy_since == since and by_name["s04"].unhealthy_since is None
    assert "s03" in names(plan(list(by_name.values()), Policy(max_unhealthy=6)).remediate)


# --------------------------------------------------------------------------- properties

RACKS = [("r1", "a01"), ("r1", "a02"), ("r2", "b01"), ("r2", "b02")]
LEVELS = {"region": 1, "datacenter": 2, "row": 3, "rack": 4}


@st.composite
def scenarios(draw):
    """Up to two clusters of control planes (stacked etcd) and workers, health and limits at random."""
    nodes, etcd = [], {}
    for cluster in draw(st.sampled_from([["c1"], ["c1", "c2"]])):
        cps = draw(st.integers(min_value=0, max_value=5))
        count = cps + draw(st.integers(min_value=0, max_value=7))
        members, health = [], {}
        for i in range(count):
            name = "%s-n%d" % (cluster, i)
            row, rack = draw(st.sampled_from(RACKS))
            # Mostly healthy, so that limits other than max_unhealthy have something to hold back.
            ready, reasons = draw(st.sampled_from([(True, ())] * 6 + [
                (False, ("KubeletNotReady",)), (None, ("NodeStatusUnknown",)), (True, ("disk failed",))]))
            since = draw(st.sampled_from([None, NOW - 2000, NOW - 1000, NOW - 500, NOW - 300, NOW - 10, NOW + 10]))
            nodes.append(NodeRecord(
                name=name, cluster=cluster, roles=("control_plane", "etcd") if i < cps else ("worker",),
                failure_domain="eu/dc1/%s/%s" % (row, rack), ready=ready, unhealthy_since=since, reasons=reasons,
                state=draw(st.sampled_from(["active"] * 6 + ["maintenance", "failed", "retired", "provisioning"])),
                protected=draw(st.sampled_from([False] * 5 + [True])),
                in_flight=draw(st.sampled_from([False] * 6 + [True]))))
            if i < cps and draw(st.integers(0, 9)) > 0:  # now and then a member already removed
                members.append(Member(id=str(len(members) + 1), name=name))
                health[members[-1].id] = draw(st.sampled_from([ready is True, True, False]))
        if draw(st.integers(0, 9)) > 0:
            etcd[cluster] = EtcdState(tuple(members), health)
    policy = Policy(grace_period=draw(st.sampled_from([0, 300, 300, 1000])),
                    max_unhealthy=draw(st.sampled_from([0, 1, 3, "40%", "60%"] + ["100%"] * 5)),
                    max_concurrent=draw(st.integers(min_value=1, max_value=4)),
                    failure_domain=draw(st.sampled_from(list(LEVELS))))
    return nodes, etcd, policy


def domain(record, level):
    return tuple(record.failure_domain.split("/")[: LEVELS[level]])


def per_cluster(result, nodes):
    by_name = {n.name: n for n in nodes}
    for cluster in sorted({n.cluster for n in nodes}):
        in_flight = [n for n in nodes if n.cluster == cluster and n.in_flight]
        new = [by_name[e.node] for e in result.remediate if e.cluster == cluster]
        yield cluster, in_flight, new


@given(scenarios())
def test_limits_hold_after_applying_the_plan(scenario):
    nodes, etcd, policy = scenario
    result = plan(nodes, policy, etcd=etcd)
    halted = {h.cluster for h in result.halts}
    for cluster, in_flight, new in per_cluster(result, nodes):
        if not new:
            continue
        after = in_flight + new
        assert len(after) <= policy.max_concurrent
        assert len({domain(n, policy.failure_domain) for n in after}) == 1
        assert cluster not in halted
        # One control plane at a time: a new one only when none is in flight (a worker may join them).
        new_cps = [n for n in new if "control_plane" in n.roles or "etcd" in n.roles]
        assert len(new_cps) <= 1
        assert not new_cps or not any("control_plane" in n.roles or "etcd" in n.roles for n in in_flight)
        for record in new:
            assert not record.protected and record.state == "active" and not record.healthy
            # A time in the future (clock skew) counts as unhealthy for 0 s.
            assert record.unhealthy_since is not None
            assert max(NOW - record.unhealthy_since, 0) >= policy.grace_period


@given(scenarios())
def test_halted_exactly_when_more_are_unhealthy_than_allowed(scenario):
    nodes, etcd, policy = scenario
    result = plan(nodes, policy, etcd=etcd)
    expected = set()
    for cluster in {n.cluster for n in nodes}:
        counted = [n for n in nodes if n.cluster == cluster and n.state in ("active", "maintenance", "failed")]
        bad = sum(1 for n in counted if n.ready is not True or n.reasons)
        limit = policy.max_unhealthy
        if isinstance(limit, str):
            limit = len(counted) * int(limit[:-1]) // 100
        if bad > limit:
            expected.add(cluster)
    assert {h.cluster for h in result.halts} == expected
    assert not {e.cluster for e in result.remediate} & expected


@given(scenarios())
def test_a_control_plane_is_remediated_only_if_etcd_keeps_quorum(scenario):
    nodes, etcd, policy = scenario
    result = plan(nodes, policy, etcd=etcd)
    by_name = {n.name: n for n in nodes}
    for entry in result.remediate:
        record = by_name[entry.node]
        if "control_plane" not in record.roles:
            continue
        state = etcd[record.cluster]  # no etcd state: no control plane is remediated
        voters = [m for m in state.members if m.name != record.name]
        if len(voters) == len(state.members):
            continue  # its member is already gone
        healthy_before = sum(1 for m in state.members if state.healthy.get(m.id))
        assert healthy_before >= len(state.members) // 2 + 1
        healthy_after = sum(1 for m in voters if state.healthy.get(m.id))
        assert voters and healthy_after >= len(voters) // 2 + 1
        assert any(n.cluster == record.cluster and "control_plane" in n.roles and n.healthy and n.name != record.name
                   for n in nodes)


@given(scenarios(), st.randoms(use_true_random=False))
def test_every_unhealthy_node_is_in_exactly_one_bucket_and_the_plan_is_deterministic(scenario, rnd):
    nodes, etcd, policy = scenario
    result = plan(nodes, policy, etcd=etcd)
    listed = [e.node for entries in result.buckets().values() for e in entries]
    assert len(listed) == len(set(listed))
    assert set(listed) == {n.name for n in nodes if not n.healthy or n.in_flight}
    for entry in result.waiting:
        assert entry.unhealthy_for is None or entry.unhealthy_for < policy.grace_period
    shuffled = list(nodes)
    rnd.shuffle(shuffled)
    assert plan(shuffled, policy, etcd=etcd) == result
    assert json.dumps(plan(shuffled, policy, etcd=etcd).as_dict()) == json.dumps(result.as_dict())
