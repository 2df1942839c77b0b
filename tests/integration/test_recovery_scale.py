# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Recovery's detect and decide steps at fleet scale, on the real control plane (issue 12).

One cluster of 366 servers over three racks (a control plane per rack, 121 workers each) and its 366 Nodes:
336 kwok nodes, Ready with heartbeats kwok keeps fresh, and 30 dead workers, 10 per rack, NotReady for an hour
or more with a Lease last renewed before that. ``baremetal.k8s.node_health`` reads them through the harness
kubeconfig and ``baremetal.k8s.remediation_plan`` decides on its result, both through ``ansible localhost -m``
(the plan's health goes in as an extra-vars file: the verdicts of 366 nodes are far more than one command-line
argument may hold). The plan must act on at most max_concurrent nodes, all in one rack, defer every other
dead node naming the limit, leave healthy nodes out of every bucket, and be the same for the same inputs and
``now``; with max_unhealthy 5 it halts, acts on nothing, says why and records the halt (not in check mode).
The wall times of both modules are printed (``-s``), never asserted.
"""

from __future__ import annotations

import datetime
import json
import time
import uuid

import pytest
from ansible_collections.baremetal.k8s.plugins.module_utils import recovery_state
from ansible_collections.baremetal.k8s.plugins.module_utils.fleet import load_fleet
from ansible_collections.baremetal.k8s.plugins.module_utils.k8s_client import api_client
from ansible_collections.baremetal.k8s.plugins.module_utils.node_health import assess, read_cluster
from ansible_collections.baremetal.k8s.plugins.module_utils.recovery_plan import (
    fleet_members,
    plan_recovery,
    recovery_policy_from_dict,
)
from fleet_samples import run_module, write_fleet
from scale_fleet import depopulate, populate, rack_of, scale_fleet, wait_healthy

CLUSTER = "scale"
RACKS = ("a01", "a02", "a03")
DEAD_PER_RACK = 10
POLICY = {"grace_period": 300, "max_unhealthy": "40%", "max_concurrent": 2, "failure_domain": "rack"}
BUCKETS = ("remediate", "in_progress", "waiting", "deferred", "refused")
PLAN_KEYS = (*BUCKETS, "actions", "halted", "halted_reason", "halted_clusters", "halts_started", "halts_cleared",
             "summary", "policy")


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


@pytest.fixture(scope="module")
def scale(k8s_client, kubeconfig, tmp_path_factory):
    """The fleet file, the dead nodes (longest dead first) and node_health's result over all 366 members."""
    prefix = "rs" + uuid.uuid4().hex[:4]
    fleet = scale_fleet(prefix, racks=RACKS, workers_per_rack=121, cluster_name=CLUSTER)
    directory = tmp_path_factory.mktemp("recovery-scale")
    fleet_file = write_fleet(directory, fleet)
    names = [s["name"] for s in fleet["servers"]]
    # Dead: workers w001-w010 of each rack, interleaved over the racks by age (j = 0 is the longest dead, in
    # a01; j = 1 in a02, ...), so the plan meets the rack limit before max_concurrent.
    dead_order = ["%s-%s-w%03d" % (prefix, RACKS[j % 3], 1 + j // 3) for j in range(DEAD_PER_RACK * len(RACKS))]
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    dead = {name: now - datetime.timedelta(seconds=3600 + 60 * (len(dead_order) - j))
            for j, name in enumerate(dead_order)}
    healthy = [n for n in names if n not in dead]
    try:
        _populated, created = timed(populate, k8s_client, prefix, healthy, dead)
        _settled, settled = timed(wait_healthy, k8s_client, prefix, healthy)
        print("\n[recovery-scale] created %d Nodes (%d kwok, %d dead with Leases) in %.1f s; kwok had them Ready "
              "with fresh Leases %.1f s later" % (len(names), len(healthy), len(dead), created, settled))
        members = [{"name": s["name"], "roles": ["control_plane", "etcd"] if s["name"].endswith("-c1")
                    else ["worker"]} for s in fleet["servers"]]
        _pinged, baseline = timed(run_module, "ansible.builtin.ping", {})
        print("[recovery-scale] ansible start-up baseline (ansible.builtin.ping through the same CLI): %.2f s"
              % baseline)
        health, health_seconds = timed(run_module, "baremetal.k8s.node_health",
                                       {"kubeconfig": kubeconfig, "members": members})
        assert not health.get("failed"), health.get("msg")
        # The engine alone, in this process, for comparison with the module's wall time (ansible's start-up).
        api = api_client(kubeconfig)
        try:
            (nodes, leases), read_seconds = timed(read_cluster, api, timeout=30)
        finally:
            api.close()
        _assessed, assess_seconds = timed(assess, members, nodes, leases, now=time.time())
        print("[recovery-scale] node_health over %d members (%d Nodes, %d Leases in the cluster): module %.2f s "
              "wall; in process: read %.2f s, assess %.2f s"
              % (len(members), len(nodes), len(leases), health_seconds, read_seconds, assess_seconds))
        health_file = directory / "health.json"
        health_file.write_text(json.dumps({"scale_health": health["nodes"]}))
        yield {"fleet_file": fleet_file, "directory": directory, "prefix": prefix, "names": names,
               "dead_order": dead_order, "dead": dead, "health": health, "health_file": health_file,
               "now": load_now(health["now"])}
    finally:
        depopulate(k8s_client, names)


def load_now(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def plan(scale, policy, recovery_file, *flags):
    """remediation_plan through the CLI on node_health's result (an extra-vars file), at health's ``now``."""
    args = {"fleet": scale["fleet_file"], "cluster": CLUSTER, "health": "{{ scale_health }}", "policy": policy,
            "now": scale["now"], "recovery_file": str(recovery_file)}
    result, seconds = timed(run_module, "baremetal.k8s.remediation_plan", args, "-e", "@%s" % scale["health_file"],
                            *flags)
    assert not result.get("failed"), result.get("msg")
    print("[recovery-scale] remediation_plan over %d verdicts (policy %s%s): module %.2f s wall; %s"
          % (len(scale["health"]["nodes"]), json.dumps(policy, sort_keys=True), " --check" if flags else "",
             seconds, result["summary"].split("; halted:")[0] + ("; halted" if result["halted"] else "")))
    return result


def bucket_names(result):
    return {name: [e["node"] for e in result[name]] for name in BUCKETS}


def test_node_health_sees_the_fleet(scale):
    health = scale["health"]
    dead = set(scale["dead"])
    assert health["changed"] is False
    assert [v["name"] for v in health["nodes"]] == scale["names"]
    assert health["counts"]["total"] == 366 and health["counts"]["registered"] == 366
    assert health["counts"]["healthy"] == 336 and health["counts"]["unhealthy"] == 30
    assert health["counts"]["by_category"] == {"healthy": 336, "not_ready": 30}, health["counts"]
    assert set(health["unhealthy"]) == dead
    assert not set(scale["names"]) & set(health["extra_nodes"])
    for verdict in health["nodes"]:
        if verdict["name"] not in dead:
            continue
        # Ready False as written, or Unknown if the node lifecycle controller got there first: either way the
        # stale heartbeat dates the failure (renewTime + 40 s, half a second before the NotReady written).
        assert verdict["ready"] in (False, None) and "HeartbeatStale" in verdict["reasons"], verdict
        since = scale["dead"][verdict["name"]].timestamp() - 0.5
        assert load_now(verdict["unhealthy_since"]) == since, verdict
        assert verdict["unhealthy_for"] >= 3600


def test_the_plan_acts_in_one_rack_within_max_concurrent(scale):
    recovery_file = scale["directory"] / "plan.recovery.json"
    result = plan(scale, POLICY, recovery_file)
    dead, order = set(scale["dead"]), scale["dead_order"]

    assert result["changed"] is False and result["halted"] is False and result["halted_clusters"] == []
    assert not result["halted_reason"]
    names = bucket_names(result)
    assert names["in_progress"] == names["waiting"] == names["refused"] == []
    # Longest dead first: order[0] (a01); order[1] (a02) and order[2] (a03) wait for a01 to be done; order[3]
    # (a01 again) is the second of max_concurrent 2.
    assert names["remediate"] == [order[0], order[3]]
    acting = [a["node"] for a in result["actions"]]
    assert acting == names["remediate"] and len(acting) <= POLICY["max_concurrent"]
    assert {rack_of(n) for n in acting} == {"a01"}
    assert {a["failure_domain"] for a in result["actions"]} == {"eu/dc1/r1/a01"}
    for action in result["actions"]:
        assert (action["action"], action["resume_at"], action["attempt"]) == ("reprovision", "cordon", 1), action
        assert "remediation %d of max_concurrent 2 in cluster %s, rack eu/dc1/r1/a01" % (
            acting.index(action["node"]) + 1, CLUSTER) in action["reason"], action

    # Every other dead node is deferred, naming the limit that holds it back.
    assert sorted(names["deferred"]) == sorted(dead - set(acting))
    for entry in result["deferred"]:
        if entry["node"] in (order[1], order[2]):  # seen before the second a01 node was picked
            assert entry["reason"] == ("one rack failure domain at a time: eu/dc1/r1/a01 is being remediated "
                                       "(%s), %s waits its turn" % (order[0], entry["failure_domain"])), entry
        else:
            assert entry["reason"].startswith("max_concurrent 2 reached in cluster %s: " % CLUSTER), entry
            assert "%s, %s already being remediated" % tuple(sorted(acting)) in entry["reason"], entry
    # Healthy nodes are in no bucket; every dead one is in exactly one.
    placed = [n for name in BUCKETS for n in names[name]]
    assert sorted(placed) == sorted(dead)
    assert result["summary"].startswith("2 to reprovision; 2 remediate, 0 in progress, 0 waiting, 28 deferred")
    assert not recovery_file.exists()  # no halt: nothing written

    # Same inputs and now, same plan (and the same as the engine's in process).
    again = plan(scale, POLICY, recovery_file)
    assert {k: again[k] for k in PLAN_KEYS} == {k: result[k] for k in PLAN_KEYS}
    fleet, load_seconds = timed(load_fleet, str(scale["fleet_file"]))
    core, core_seconds = timed(plan_recovery, fleet_members(fleet, CLUSTER), scale["health"]["nodes"],
                               recovery_state.empty_state(), recovery_policy_from_dict(dict(POLICY)),
                               now=scale["now"], clusters=[CLUSTER])
    print("[recovery-scale] remediation_plan engine in process: load_fleet (%d servers) %.3f s, plan_recovery "
          "over %d verdicts %.3f s" % (len(fleet.servers), load_seconds, len(scale["health"]["nodes"]),
                                       core_seconds))
    assert {k: v for k, v in core.as_dict().items() if k in PLAN_KEYS} == {k: result[k] for k in PLAN_KEYS}


def test_past_max_unhealthy_the_cluster_halts_and_the_halt_is_recorded(scale):
    recovery_file = scale["directory"] / "halt.recovery.json"
    policy = dict(POLICY, max_unhealthy=5)
    dead = set(scale["dead"])

    checked = plan(scale, policy, recovery_file, "--check")
    assert checked["halted"] is True and checked["halts_started"] == [CLUSTER] and checked["changed"] is True
    assert checked["actions"] == [] and checked["remediate"] == []
    assert checked["halted_reason"].startswith(
        "cluster %s: 30 of 366 nodes unhealthy exceeds max_unhealthy 5: something systemic" % CLUSTER)
    assert "nothing new is remediated until at most 5 are unhealthy" in checked["halted_reason"]
    assert checked["halted_clusters"] == [{"cluster": CLUSTER, "reason": checked["halted_reason"],
                                           "unhealthy": 30, "nodes": 366, "max_unhealthy": 5}]
    names = bucket_names(checked)
    assert sorted(names["deferred"]) == sorted(dead)
    assert all(e["reason"] == "remediation halted: " + checked["halted_reason"] for e in checked["deferred"])
    assert not recovery_file.exists()  # check mode records nothing

    real = plan(scale, policy, recovery_file)
    assert real["changed"] is True and real["halted"] is True and real["actions"] == []
    assert {k: real[k] for k in PLAN_KEYS} == {k: checked[k] for k in PLAN_KEYS}
    state = json.loads(recovery_file.read_text())
    assert state["halts"] == {CLUSTER: {"active": True, "since": scale["now"], "cleared": None}}
    assert state["nodes"] == {} and state["lock"] is None  # the halt is the plan's only write

    again = plan(scale, policy, recovery_file)
    assert again["changed"] is False and again["halted"] is True and again["halts_started"] == []
    assert json.loads(recovery_file.read_text()) == state
