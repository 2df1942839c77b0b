# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Node health (plugins/module_utils/node_health.py): one case per category and rule, then properties,
then the module's bad-input paths run for real through ``ansible localhost -m`` (no API server needed).

Derandomized by default; ``HYPOTHESIS_PROFILE=deep`` explores more.
"""

from __future__ import annotations

import datetime
import json
import os
import random
import subprocess
import sys

import pytest
from ansible_collections.baremetal.k8s.plugins.module_utils.node_health import (
    CATEGORIES,
    CORDON_REASON_ANNOTATION,
    CORDONED_BY_ANNOTATION,
    HEALTHY_CATEGORIES,
    UNHEALTHY_CATEGORIES,
    HealthOptions,
    Member,
    NodeHealthError,
    assess,
    iso,
    lease_from_api,
    member_from_dict,
    node_from_api,
    timestamp,
)
from ansible_collections.baremetal.k8s.plugins.module_utils.remediation import (
    NodeRecord,
    node_from_dict,
    plan_remediation,
)
from hypothesis import given
from hypothesis import strategies as st

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z


def cond(kind, status, reason=None, since=NOW - 3600, message=None):
    return {"type": kind, "status": status, "reason": reason, "message": message,
            "last_transition_time": since, "last_heartbeat_time": NOW - 5}


def node(name, ready="True", reason="KubeletReady", since=NOW - 3600, *, ips=(), cordoned=False, annotations=None,
         extra=(), message=None):
    conditions = [] if ready is None else [cond("Ready", ready, reason, since, message)]
    return {"name": name, "internal_ips": list(ips), "unschedulable": cordoned, "annotations": annotations or {},
            "kubelet_version": "v1.36.3", "conditions": conditions + list(extra), "taints": []}


def lease(name, age=3.0, duration=40):
    return {"name": name, "renew_time": NOW - age, "lease_duration_seconds": duration, "holder_identity": name}


def one(member, nodes=(), leases=(), **options):
    """The verdict (as a dict) of a single member."""
    report = assess([member], list(nodes), list(leases), now=NOW, options=HealthOptions(**options))
    return report.as_dict()["nodes"][0]


def live(name, **kw):
    """A member with a Ready node and a fresh lease."""
    return [node(name, **kw)], [lease(name)]


# --------------------------------------------------------------------------- categories


def test_healthy_node_reports_what_was_observed():
    v = one({"name": "w1", "roles": ["worker"]}, *live("w1"))
    assert v["healthy"] is True and v["category"] == "healthy" and v["reasons"] == [] and v["details"] == []
    assert v["unhealthy_since"] is None and v["unhealthy_for"] is None
    assert v["ready"] is True and v["ready_reason"] == "KubeletReady" and v["ready_since"] == iso(NOW - 3600)
    assert v["heartbeat"] == {"renew_time": iso(NOW - 3), "age": 3.0, "timeout": 40, "stale": False,
                              "lease_duration_seconds": 40, "problem": None}
    assert v["kubelet_version"] == "v1.36.3" and v["cordoned"] is False and v["cordoned_by"] is None
    assert v["registered"] is True and v["node_name"] == "w1" and v["roles"] == ["worker"]
    assert v["record"] == {"name": "w1", "roles": ["worker"], "ready": True, "unhealthy_since": None, "reasons": []}


def test_kubelet_died_on_a_reachable_host():
    nodes = [node("w1", "Unknown", "NodeStatusUnknown", NOW - 200, message="Kubelet stopped posting node status.")]
    v = one({"name": "w1", "probes": {"reachable": True, "containerd_active": "active", "kubelet_active": "failed"}},
            nodes, [lease("w1", age=250)])
    assert v["category"] == "kubelet_down" and not v["healthy"]
    assert v["reasons"] == ["NodeStatusUnknown", "HeartbeatStale", "KubeletInactive"]
    assert "the host is up, the kubelet is not running" in v["summary"]
    assert v["probes"]["kubelet_active"] is False and v["probes"]["kubelet_state"] == "failed"
    assert v["probes"]["containerd_active"] is True
    # The earliest evidence: the lease went stale 40 s after its last renewal, before Ready flipped.
    assert v["unhealthy_since"] == iso(NOW - 250 + 40)
    assert v["ready"] is None and v["ready_status"] == "Unknown"


def test_host_or_network_gone():
    nodes = [node("w1", "Unknown", "NodeStatusUnknown", NOW - 600)]
    v = one({"name": "w1", "probes": {"reachable": False}}, nodes, [lease("w1", age=700)])
    assert v["category"] == "host_unreachable"
    assert v["reasons"] == ["NodeStatusUnknown", "HeartbeatStale", "HostUnreachable"]
    assert "the host or the network to it is gone" in v["summary"]
    assert v["unhealthy_since"] == iso(NOW - 700 + 40)


def test_unreachable_host_says_nothing_about_its_units():
    # Probes of an unreachable host cannot have run: stale values must not turn it into kubelet_down.
    nodes = [node("w1", "Unknown", "NodeStatusUnknown", NOW - 600)]
    v = one({"name": "w1", "probes": {"reachable": False, "kubelet_active": False}}, nodes, [lease("w1", age=700)])
    assert v["category"] == "host_unreachable" and "KubeletInactive" not in v["reasons"]


def test_heartbeat_stale_before_ready_flips():
    v = one({"name": "w1"}, [node("w1")], [lease("w1", age=45)])
    assert v["category"] == "heartbeat_stale" and v["reasons"] == ["HeartbeatStale"] and v["ready"] is True
    assert "Ready has not flipped yet" in v["summary"]
    assert "last renewed 45 s ago" in v["details"][0] and "heartbeat timeout of 40 s" in v["details"][0]
    assert v["unhealthy_since"] == iso(NOW - 5)  # renewed 45 s ago, stale from 40 s after that
    assert v["record"]["ready"] is True and v["record"]["reasons"] == ["HeartbeatStale"]


def test_kubelet_just_died_and_the_api_has_not_noticed():
    v = one({"name": "w1", "probes": {"reachable": True, "kubelet_active": "inactive"}}, *live("w1"))
    assert v["category"] == "kubelet_down" and v["reasons"] == ["KubeletInactive"]
    assert "the API has not noticed yet" in v["summary"]
    assert v["unhealthy_since"] is None  # no time for a probe: the caller's first-seen time is the best


def test_heartbeat_timeout_option_and_lease_duration():
    assert one({"name": "w1"}, [node("w1")], [lease("w1", age=45, duration=60)])["healthy"] is True
    v = one({"name": "w1"}, [node("w1")], [lease("w1", age=45, duration=60)], heartbeat_timeout=30)
    assert v["category"] == "heartbeat_stale" and v["heartbeat"]["timeout"] == 30
    # A lease without a usable duration: the kubelet's default of 40 s.
    v = one({"name": "w1"}, [node("w1")], [lease("w1", age=45, duration=None)])
    assert v["heartbeat"]["timeout"] == 40 and v["heartbeat"]["stale"] is True


def test_no_lease_or_never_renewed():
    v = one({"name": "w1"}, [node("w1")], [])
    assert v["category"] == "heartbeat_stale" and v["reasons"] == ["NoHeartbeat"]
    assert "no Lease in kube-node-lease" in v["details"][0] and v["unhealthy_since"] is None
    v = one({"name": "w1"}, [node("w1")], [dict(lease("w1"), renew_time=None)])
    assert v["reasons"] == ["NoHeartbeat"] and "never renewed" in v["details"][0]


def test_not_ready_without_probes():
    v = one({"name": "w1"}, [node("w1", "False", "KubeletNotReady", NOW - 100, message="PLEG is not healthy")],
            [lease("w1")])
    assert v["category"] == "not_ready" and v["reasons"] == ["KubeletNotReady"]
    assert v["summary"] == "NotReady (KubeletNotReady)"
    assert v["details"] == ["NotReady (KubeletNotReady) since %s: PLEG is not healthy" % iso(NOW - 100)]
    assert v["unhealthy_since"] == iso(NOW - 100) and v["unhealthy_for"] == 100
    assert v["ready"] is False and v["ready_message"] == "PLEG is not healthy"


def test_not_ready_while_host_and_kubelet_are_fine():
    v = one({"name": "w1", "probes": {"reachable": True, "kubelet_active": True, "containerd_active": True}},
            [node("w1", "False", "KubeletNotReady", NOW - 100)], [lease("w1")])
    assert v["category"] == "not_ready" and "the host answers and its kubelet runs" in v["summary"]


def test_ready_without_reason_and_no_ready_condition():
    v = one({"name": "w1"}, [node("w1", "False", None, NOW - 10)], [lease("w1")])
    assert v["reasons"] == ["NotReady"] and v["ready_reason"] == "NotReady"
    v = one({"name": "w1"}, [node("w1", None)], [lease("w1")])
    assert v["category"] == "not_ready" and v["reasons"] == ["NoReadyCondition"] and v["ready"] is None
    assert v["unhealthy_since"] is None


def test_containerd_down():
    v = one({"name": "w1", "probes": {"reachable": True, "containerd_active": "inactive", "kubelet_active": True}},
            [node("w1", "False", "KubeletNotReady", NOW - 30)], [lease("w1")])
    assert v["category"] == "containerd_down" and v["reasons"] == ["KubeletNotReady", "ContainerdInactive"]
    assert v["probes"]["containerd_state"] == "inactive"


def test_crash_looping_kubelet_is_not_running():
    v = one({"name": "w1", "probes": {"kubelet_active": "activating"}}, *live("w1"))
    assert v["category"] == "kubelet_down" and v["probes"]["kubelet_state"] == "activating"


def test_pressure_and_network_unavailable():
    extra = [cond("MemoryPressure", "True", "KubeletHasInsufficientMemory", NOW - 50),
             cond("DiskPressure", "False", "KubeletHasNoDiskPressure"), cond("PIDPressure", "True", None, NOW - 70)]
    v = one({"name": "w1"}, [node("w1", extra=extra)], [lease("w1")])
    assert v["category"] == "pressure" and v["reasons"] == ["MemoryPressure", "PIDPressure"]
    assert v["pressure"] == ["MemoryPressure", "PIDPressure"] and v["unhealthy_since"] == iso(NOW - 70)
    assert v["conditions"]["DiskPressure"]["status"] == "False"
    extra.append(cond("NetworkUnavailable", "True", "NoRouteCreated", NOW - 20))
    v = one({"name": "w1"}, [node("w1", extra=extra)], [lease("w1")])
    assert v["category"] == "network_unavailable" and v["network_unavailable"] is True
    assert v["reasons"][0] == "NetworkUnavailable"


def test_cordoned_with_and_without_our_annotation():
    annotations = {CORDONED_BY_ANNOTATION: "recovery", CORDON_REASON_ANNOTATION: "drain before redeploy"}
    v = one({"name": "w1"}, *live("w1", cordoned=True, annotations=annotations))
    assert v["healthy"] and v["category"] == "cordoned" and v["cordoned"] is True
    assert v["cordoned_by"] == "recovery" and v["cordon_reason"] == "drain before redeploy"
    assert v["notes"] == ["cordoned by recovery: drain before redeploy"]
    v = one({"name": "w1"}, *live("w1", cordoned=True))
    assert v["category"] == "cordoned" and v["cordoned_by"] == "unknown" and v["cordon_reason"] is None
    # The annotation outlives an uncordon: it is not reported for a schedulable node.
    v = one({"name": "w1"}, *live("w1", annotations=annotations))
    assert v["category"] == "healthy" and v["cordoned_by"] is None
    # Cordoned and broken: the breakage is the category, the cordon is observed.
    v = one({"name": "w1"}, [node("w1", "False", cordoned=True)], [lease("w1")])
    assert v["category"] == "not_ready" and v["cordoned"] is True


def test_wireguard_cut_off_from_every_peer():
    shakes = {"w2": NOW - 400, "w3": 0}
    v = one({"name": "w1", "probes": {"wireguard_handshakes": shakes}}, *live("w1"))
    assert v["category"] == "wireguard_stale" and v["reasons"] == ["WireGuardStale"]
    assert "w2 400 s ago, w3 never" in v["details"][0]
    assert v["probes"]["wireguard"] == [
        {"peer": "w2", "latest_handshake": iso(NOW - 400), "age": 400.0, "stale": True},
        {"peer": "w3", "latest_handshake": None, "age": None, "stale": True}]
    assert v["unhealthy_since"] is None  # one peer never shook hands: when it was cut off is not known
    v = one({"name": "w1", "probes": {"wireguard_handshakes": {"w2": NOW - 400, "w3": NOW - 350}}}, *live("w1"))
    assert v["unhealthy_since"] == iso(NOW - 350 + 300)


def test_wireguard_some_stale_peers_are_a_note():
    shakes = {"w2": NOW - 400, "w3": NOW - 20}
    v = one({"name": "w1", "probes": {"wireguard_handshakes": shakes}}, *live("w1"))
    assert v["healthy"] and v["notes"] == ["WireGuard: no handshake within 300 s with 1 of 2 peers (w2 400 s ago)"]


def test_wireguard_timeout_zero_reports_without_judging():
    v = one({"name": "w1", "probes": {"wireguard_handshakes": {"w2": 0}}}, *live("w1"),
            wireguard_handshake_timeout=0)
    assert v["healthy"] and v["probes"]["wireguard"][0]["stale"] is None


def test_ready_but_unreachable_from_the_controller():
    v = one({"name": "w1", "probes": {"reachable": False}}, *live("w1"))
    assert v["category"] == "controller_unreachable" and v["reasons"] == ["HostUnreachable"]
    assert "the controller's path to it is broken" in v["details"][0]


# --------------------------------------------------------------------------- members without a Node


def test_not_registered_expected_since_unknown_is_past_the_timeout():
    v = one({"name": "w9"})
    assert v["category"] == "not_registered" and v["reasons"] == ["NotRegistered"] and not v["registered"]
    assert v["unhealthy_since"] is None and v["ready"] is None and v["ready_reason"] == "NotRegistered"
    assert "taken as past the node_startup_timeout" in v["details"][0]


def test_starting_within_the_startup_timeout_then_not_registered():
    v = one({"name": "w9", "expected_since": NOW - 100, "probes": {"reachable": True, "kubelet_active": False}})
    assert v["category"] == "starting" and v["reasons"] == ["NotRegistered"] and not v["healthy"]
    assert "within the node_startup_timeout of 600 s (500 s to go)" in v["details"][0]
    assert v["unhealthy_since"] is None and v["expected_for"] == 100
    # Past it: unhealthy since the timeout ran out, and the probes explain why.
    v = one({"name": "w9", "expected_since": iso(NOW - 700), "probes": {"reachable": True, "kubelet_active": False}})
    assert v["category"] == "kubelet_down" and v["reasons"] == ["NotRegistered", "KubeletInactive"]
    assert v["unhealthy_since"] == iso(NOW - 100)
    v = one({"name": "w9", "expected_since": NOW - 100}, node_startup_timeout=60)
    assert v["category"] == "not_registered" and v["unhealthy_since"] == iso(NOW - 40)


def test_not_registered_host_unreachable_or_containerd_down():
    assert one({"name": "w9", "probes": {"reachable": False}})["category"] == "host_unreachable"
    v = one({"name": "w9", "probes": {"reachable": True, "containerd_active": "failed"}})
    assert v["category"] == "containerd_down"


def test_matched_by_address_and_extra_nodes():
    nodes = [node("host-17.local", ips=["10.0.0.17"]), node("stranger")]
    report = assess([{"name": "w1", "address": "10.0.0.17"}], nodes, [lease("host-17.local")], now=NOW)
    v = report.as_dict()["nodes"][0]
    assert v["healthy"] and v["node_name"] == "host-17.local"
    assert v["notes"] == ["registered as Node host-17.local (matched by its InternalIP 10.0.0.17)"]
    assert report.extra_nodes == ("stranger",)


def test_counts_and_report_shape():
    members = [{"name": "a"}, {"name": "b"}, {"name": "c", "expected_since": NOW}]
    report = assess(members, [node("a"), node("b", "False")], [lease("a"), lease("b")], now=NOW)
    out = report.as_dict()
    assert out["counts"] == {"total": 3, "healthy": 1, "unhealthy": 2, "registered": 2,
                             "by_category": {"starting": 1, "not_ready": 1, "healthy": 1}}
    assert out["unhealthy"] == ["b", "c"] and out["now"] == iso(NOW)
    assert out["options"] == {"node_startup_timeout": 600, "heartbeat_timeout": None,
                              "wireguard_handshake_timeout": 300}
    json.dumps(out)


# --------------------------------------------------------------------------- the NodeRecord mapping


def test_records_feed_the_remediation_policy():
    members = [{"name": n, "roles": ["worker"]} for n in ("w1", "w2", "w3", "w4", "w5")]
    nodes = [node("w1", "False", "KubeletNotReady", NOW - 900)] + [node(n) for n in ("w2", "w3", "w4")]
    report = assess(members, nodes, [lease(n) for n in ("w1", "w2", "w3", "w4")], now=NOW)
    records = [node_from_dict(dict(v.record_fields(), cluster="c1", failure_domain="eu/dc1/r1/a01"),
                              "nodes[%d]" % i) for i, v in enumerate(report.verdicts)]
    assert [r.healthy for r in records] == [v.healthy for v in report.verdicts]
    plan = plan_remediation(records, now=NOW, clusters=["c1"])
    assert [e.node for e in plan.remediate] == ["w1"]
    assert plan.remediate[0].reason.startswith("NotReady (KubeletNotReady) for 900 s")
    assert [e.node for e in plan.waiting] == ["w5"]  # not registered, since unknown: it waits
    assert "Ready unknown (NotRegistered)" in plan.waiting[0].reason


def test_starting_members_map_to_provisioning_not_counted():
    members = [{"name": "w1", "roles": ["worker"]}, {"name": "w2", "roles": ["worker"]},
               {"name": "new", "roles": ["worker"], "expected_since": NOW - 10}]
    report = assess(members, [node("w1"), node("w2")], [lease("w1"), lease("w2")], now=NOW)
    records = [NodeRecord(cluster="c1", failure_domain="eu/dc1/r1/a01",
                          state="provisioning" if v.category == "starting" else "active",
                          **{k: tuple(x) if isinstance(x, list) else x for k, x in v.record_fields().items()})
               for v in report.verdicts]
    plan = plan_remediation(records, now=NOW, clusters=["c1"], policy=None)
    assert [e.node for e in plan.refused] == ["new"] and "still being provisioned" in plan.refused[0].reason
    assert not plan.halted


# --------------------------------------------------------------------------- adapters


def test_adapters_from_kubernetes_objects():
    from kubernetes import client

    t = datetime.datetime(2027, 1, 15, 7, 0, tzinfo=datetime.timezone.utc)
    v1 = client.V1Node(
        metadata=client.V1ObjectMeta(name="w1", annotations={CORDONED_BY_ANNOTATION: "ops"}),
        spec=client.V1NodeSpec(unschedulable=True, taints=[client.V1Taint(key="k", value="v", effect="NoSchedule")]),
        status=client.V1NodeStatus(
            conditions=[client.V1NodeCondition(type="Ready", status="True", reason="KubeletReady",
                                               last_transition_time=t, last_heartbeat_time=t)],
            addresses=[client.V1NodeAddress(type="InternalIP", address="10.0.0.1"),
                       client.V1NodeAddress(type="Hostname", address="w1")],
            node_info=client.V1NodeSystemInfo(kubelet_version="v1.36.3", architecture="amd64", boot_id="",
                                              container_runtime_version="", kernel_version="", kube_proxy_version="",
                                              machine_id="", operating_system="linux", os_image="",
                                              system_uuid="")))
    plain = node_from_api(v1)
    assert plain["internal_ips"] == ["10.0.0.1"] and plain["unschedulable"] is True
    assert plain["conditions"][0]["last_transition_time"] == "2027-01-15T07:00:00+00:00"
    v1_lease = client.V1Lease(metadata=client.V1ObjectMeta(name="w1", namespace="kube-node-lease"),
                              spec=client.V1LeaseSpec(renew_time=datetime.datetime.fromtimestamp(
                                  NOW - 2, tz=datetime.timezone.utc), lease_duration_seconds=40,
                                  holder_identity="w1"))
    v = assess([{"name": "w1"}], [plain], [lease_from_api(v1_lease)], now=NOW).as_dict()["nodes"][0]
    assert v["category"] == "cordoned" and v["cordoned_by"] == "ops" and v["heartbeat"]["age"] == 2.0
    assert v["ready_since"] == "2027-01-15T07:00:00Z"
    assert v["taints"] == [{"key": "k", "value": "v", "effect": "NoSchedule"}]
    bare = node_from_api(client.V1Node(metadata=client.V1ObjectMeta(name="bare")))
    assert bare["conditions"] == [] and bare["kubelet_version"] is None
    assert lease_from_api(client.V1Lease(metadata=client.V1ObjectMeta(name="x")))["renew_time"] is None


def test_times():
    assert timestamp("2027-01-15T08:00:00Z", "t") == NOW
    assert timestamp("1800000000", "t") == NOW and timestamp(NOW, "t") == NOW
    assert timestamp(datetime.datetime(2027, 1, 15, 8, 0), "t") == NOW  # naive: UTC
    assert iso(NOW) == "2027-01-15T08:00:00Z" and iso(NOW + 0.25) == "2027-01-15T08:00:00.250Z"
    for bad in (True, "yesterday", float("nan"), [], "", -1, 1e20, "1e20", float("inf"),
                "0001-01-01T00:00:00Z"):
        with pytest.raises(NodeHealthError, match="expected a time"):
            timestamp(bad, "t")


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(("members", "message"), [
    ([{"address": "10.0.0.1"}], r"^members\[0\]\.name: required field is missing\. Fix: give the fleet member's "),
    ([{"name": ""}], r"^members\[0\]\.name: expected a non-empty string"),
    ([{"name": "a"}, "b"], r"^members\[1\]: expected a mapping, got str"),
    ([{"name": "a", "hostname": "x"}], r"^members\[0\]\.hostname: unknown field\. Fix: use some of: name, address"),
    ([{"name": "a", "roles": ["load_balancer"]}],
     r"members\[0\] \(a\)\.roles: unknown role 'load_balancer'.*load balancers are not Kubernetes nodes"),
    ([{"name": "a", "roles": "worker"}], r"members\[0\] \(a\)\.roles: expected a list"),
    ([{"name": "a"}, {"name": "a"}], r"^members\[1\]\.name: member a is listed twice \(also members\[0\]\)"),
    ([{"name": "a", "expected_since": "soon"}], r"members\[0\] \(a\)\.expected_since: expected a time"),
    ([{"name": "a", "address": 7}], r"members\[0\] \(a\)\.address: expected an IP address"),
    ([{"name": "a", "probes": ["up"]}], r"members\[0\] \(a\)\.probes: expected a mapping"),
    ([{"name": "a", "probes": {"ssh": True}}], r"probes\.ssh: unknown probe\. Fix: use some of: reachable"),
    ([{"name": "a", "probes": {"kubelet_active": "runing"}}],
     r"probes\.kubelet_active: expected true, false or a systemctl is-active answer, got 'runing'"),
    ([{"name": "a", "probes": {"reachable": 3}}], r"probes\.reachable: expected true, false"),
    ([{"name": "a", "probes": {"wireguard_handshakes": [1]}}], r"wireguard_handshakes: expected a mapping of peer"),
    ([{"name": "a", "probes": {"wireguard_handshakes": {"w2": "never"}}}], r"wireguard_handshakes\.w2: expected a "
                                                                           r"time"),
    ({"name": "a"}, r"^members: expected a list of members, got dict"),
])
def test_bad_members_name_the_field_and_the_fix(members, message):
    with pytest.raises(NodeHealthError, match=message) as info:
        assess(members, [], [], now=NOW)
    assert "Fix: " in str(info.value)


@pytest.mark.parametrize(("options", "message"), [
    ({"node_startup_timeout": -1}, r"^node_startup_timeout: -1 is below 0"),
    ({"node_startup_timeout": "10m"}, r"^node_startup_timeout: expected a whole number of seconds"),
    ({"heartbeat_timeout": 0}, r"^heartbeat_timeout: 0 is below 1"),
    ({"wireguard_handshake_timeout": True}, r"^wireguard_handshake_timeout: expected a whole number"),
])
def test_bad_options(options, message):
    with pytest.raises(NodeHealthError, match=message):
        HealthOptions(**options)


def test_bad_now_nodes_and_leases():
    with pytest.raises(NodeHealthError, match=r"^now: expected a time"):
        assess([], [], [], now=None)
    with pytest.raises(NodeHealthError, match=r"^nodes\[0\]: expected a mapping with a name"):
        assess([], [{"metadata": {}}], [], now=NOW)
    with pytest.raises(NodeHealthError, match=r"^leases\[0\]: expected a mapping with a name"):
        assess([], [], [None], now=NOW)
    with pytest.raises(NodeHealthError, match=r"nodes\[w1\]\.conditions\[0\]\.last_transition_time"):
        assess([{"name": "w1"}], [node("w1", since="last week")], [], now=NOW)


def test_probe_words():
    m = member_from_dict({"name": "a", "probes": {"reachable": "yes", "kubelet_active": "ACTIVE",
                                                  "containerd_active": "false"}})
    assert (m.probes.reachable, m.probes.kubelet_active, m.probes.containerd_active) == (True, True, False)
    assert m.probes.kubelet_state == "active" and m.probes.given
    assert not Member("a").probes.given


# --------------------------------------------------------------------------- properties

NAMES = ["n%d" % i for i in range(6)]
statuses = st.sampled_from(["True", "False", "Unknown", None])
times = st.one_of(st.none(), st.floats(NOW - 10_000, NOW + 100, allow_nan=False))
flags = st.sampled_from([None, True, False, "active", "inactive", "failed", "activating"])


@st.composite
def worlds(draw):
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=6, unique=True))
    members, nodes, leases = [], [], []
    for name in names:
        probes = draw(st.fixed_dictionaries({}, optional={
            "reachable": st.sampled_from([None, True, False]), "kubelet_active": flags, "containerd_active": flags,
            "wireguard_handshakes": st.dictionaries(st.sampled_from(NAMES), st.one_of(st.just(0), times),
                                                    max_size=3)}))
        member = {"name": name, "roles": ["worker"], "probes": probes}
        if draw(st.booleans()):
            member["expected_since"] = draw(st.floats(NOW - 2000, NOW, allow_nan=False))
        members.append(member)
        if draw(st.integers(0, 4)):  # mostly registered
            extra = [cond(kind, draw(st.sampled_from(["True", "False"])), None, draw(times))
                     for kind in draw(st.lists(st.sampled_from(["MemoryPressure", "DiskPressure", "PIDPressure",
                                                                "NetworkUnavailable"]), unique=True))]
            nodes.append(node(name, draw(statuses), draw(st.sampled_from([None, "KubeletNotReady"])), draw(times),
                              cordoned=draw(st.booleans()), extra=extra))
            if draw(st.integers(0, 3)):
                leases.append(lease(name, draw(st.floats(0, 300, allow_nan=False)),
                                    draw(st.sampled_from([None, 40, 60]))))
    options = HealthOptions(node_startup_timeout=draw(st.sampled_from([0, 60, 600])),
                            heartbeat_timeout=draw(st.sampled_from([None, 20, 90])),
                            wireguard_handshake_timeout=draw(st.sampled_from([0, 300])))
    return members, nodes, leases, options


@given(worlds(), st.randoms(use_true_random=False))
def test_properties(world, rnd):
    members, nodes, leases, options = world
    report = assess(members, nodes, leases, now=NOW, options=options)
    out = report.as_dict()
    json.dumps(out)
    assert [v["name"] for v in out["nodes"]] == [m["name"] for m in members]
    for v in out["nodes"]:
        # A node is healthy iff it has no reasons; healthy categories exactly for healthy nodes.
        assert v["healthy"] == (not v["reasons"]) == (v["category"] in HEALTHY_CATEGORIES)
        assert v["category"] in CATEGORIES and len(v["details"]) == len(v["reasons"])
        assert len(set(v["reasons"])) == len(v["reasons"])
        if v["healthy"]:
            assert v["unhealthy_since"] is None and v["ready"] is True
        if v["ready"] is not True:
            assert not v["healthy"]
        if not v["registered"]:
            assert v["category"] in ("not_registered", "starting", "host_unreachable", "kubelet_down",
                                     "containerd_down") and "NotRegistered" in v["reasons"]
        elif v["probes"]["reachable"] is False and (v["ready"] is not True or v["heartbeat"]["stale"]):
            assert v["category"] == "host_unreachable"
        if v["unhealthy_since"] is not None:
            assert v["unhealthy_for"] >= 0
        # The record is what remediation reads, and agrees on health.
        record = node_from_dict(dict(v["record"], cluster="c", failure_domain="a/b/c/d"))
        assert record.healthy == v["healthy"]
    counts = out["counts"]
    assert counts["healthy"] + counts["unhealthy"] == counts["total"] == len(members)
    assert sum(counts["by_category"].values()) == len(members)
    # The order of the API's lists does not matter.
    shuffled = assess(members, rnd.sample(nodes, len(nodes)), rnd.sample(leases, len(leases)), now=NOW,
                      options=options).as_dict()
    assert shuffled == out


@given(worlds())
def test_category_order_is_by_precedence(world):
    """Each unhealthy category is the first one in UNHEALTHY_CATEGORIES whose evidence is present."""
    members, nodes, leases, options = world
    evidence = {"host_unreachable": {"HostUnreachable"}, "kubelet_down": {"KubeletInactive"},
                "containerd_down": {"ContainerdInactive"}, "heartbeat_stale": {"HeartbeatStale", "NoHeartbeat"},
                "network_unavailable": {"NetworkUnavailable"}, "wireguard_stale": {"WireGuardStale"},
                "pressure": {"MemoryPressure", "DiskPressure", "PIDPressure"}}
    for v in assess(members, nodes, leases, now=NOW, options=options).as_dict()["nodes"]:
        if v["healthy"] or v["category"] in ("starting", "not_registered", "not_ready", "controller_unreachable"):
            continue
        assert evidence[v["category"]] & set(v["reasons"])
        rank = UNHEALTHY_CATEGORIES.index(v["category"])
        for earlier in UNHEALTHY_CATEGORIES[:rank]:
            if earlier == "host_unreachable" and v["registered"]:
                continue  # a reachable=False that the API contradicts is controller_unreachable, the last one
            assert not evidence.get(earlier, set()) & set(v["reasons"]), (v["category"], earlier, v["reasons"])


def test_shuffled_members_give_the_same_verdicts():
    members = [{"name": n} for n in NAMES]
    nodes = [node(n, random.Random(i).choice(["True", "False"])) for i, n in enumerate(NAMES)]
    report = assess(members, nodes, [lease(n) for n in NAMES], now=NOW)
    mixed = list(reversed(members))
    again = assess(mixed, nodes, [lease(n) for n in NAMES], now=NOW)
    assert {v.name: v for v in report.verdicts} == {v.name: v for v in again.verdicts}


# --------------------------------------------------------------------------- the module's bad input, for real

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BIN = os.path.dirname(sys.executable)


def run_tasks(tmp_path, task_args: list) -> list:
    """Run the module once per argument mapping in one ansible-playbook run; each task's result, in order."""
    environ = dict(os.environ)
    for var in ("KUBECONFIG", "K8S_AUTH_KUBECONFIG", "K8S_AUTH_HOST", "KUBERNETES_SERVICE_HOST"):
        environ.pop(var, None)
    environ.update(PATH=BIN + os.pathsep + environ.get("PATH", ""),
                   ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, ".collections"),
                   ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_LOCALHOST_WARNING="false",
                   ANSIBLE_INVENTORY_UNPARSED_WARNING="false", ANSIBLE_NOCOLOR="1",
                   ANSIBLE_PYTHON_INTERPRETER=sys.executable,
                   ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1")
    playbook = tmp_path / "play.yml"
    playbook.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"baremetal.k8s.node_health": args, "ignore_errors": True} for args in task_args]}]))
    proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", "localhost,", "-c", "local", str(playbook)],
                          env=environ, capture_output=True, text=True, check=False, timeout=300)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    tasks = json.loads(proc.stdout)["plays"][0]["tasks"]
    return [t["hosts"]["localhost"] for t in tasks]


def test_module_bad_input_is_a_clear_error(tmp_path):
    garbage = tmp_path / "kubeconfig"
    garbage.write_text("just: [a, list")
    nowhere = "https://127.0.0.1:1"
    cases = [
        ({"members": [{"address": "10.0.0.1"}], "host": nowhere},
         "members[0].name: required field is missing. Fix: give the fleet member's name"),
        ({"members": [{"name": "a"}], "node_startup_timeout": -5, "host": nowhere},
         "node_startup_timeout: -5 is below 0"),
        ({"members": [{"name": "a"}], "now": "tomorrow", "host": nowhere}, "now: expected a time"),
        ({"members": [{"name": "a"}], "timeout": 0, "host": nowhere}, "timeout: 0 is below 1"),
        ({"members": [{"name": "a"}], "kubeconfig": str(tmp_path / "missing")}, "kubeconfig: file "),
        ({"members": [{"name": "a"}], "kubeconfig": str(garbage)}, "is not a kubeconfig"),
        ({"members": [{"name": "a"}], "host": nowhere, "timeout": 2}, "api server: nodes: cannot reach the API server"),
        ({"members": [{"name": "a"}], "heartbeat": 40}, "Unsupported parameters"),
        ({"members": "a"}, "members"),
    ]
    results = run_tasks(tmp_path, [case[0] for case in cases])
    assert len(results) == len(cases)
    for (args, message), result in zip(cases, results, strict=True):
        assert result.get("failed") is True, (args, result)
        assert message in result["msg"], (args, result["msg"])
