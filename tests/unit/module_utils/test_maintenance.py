# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Planned maintenance (module_utils/maintenance.py): fleet + health + etcd -> enter, held, exit, blocked, refused."""

from __future__ import annotations

import pytest
from ansible_collections.baremetal.k8s.plugins.module_utils import recovery_state as rs
from ansible_collections.baremetal.k8s.plugins.module_utils.etcd_quorum import Member
from ansible_collections.baremetal.k8s.plugins.module_utils.maintenance import (
    DEFAULT_REASON,
    MaintenanceError,
    plan_maintenance,
)
from ansible_collections.baremetal.k8s.plugins.module_utils.remediation import EtcdState
from ansible_collections.baremetal.k8s.plugins.module_utils.vocabulary import MAINTENANCE_CORDONER

CPS = ("cp1", "cp2", "cp3")


def members(states=None, reasons=None):
    """Three control planes and two workers of cluster c1, active unless STATES says otherwise."""
    states, reasons = states or {}, reasons or {}
    result = {}
    for index, name in enumerate((*CPS, "w1", "w2")):
        roles = ["control_plane", "etcd"] if name in CPS else ["worker"]
        result[name] = {"cluster": "c1", "roles": roles, "state": states.get(name, "active"),
                        "state_reason": reasons.get(name, ""), "pod_cidr": "10.244.%d.0/24" % index}
    return result


def verdict(name, *, ready=True, held=None, cordoned_by=None, pod_cidr=None, category=None, registered=True):
    """A node_health verdict; HELD: the cordon reason of a node held for maintenance."""
    index = (*CPS, "w1", "w2").index(name)
    cordoned = held is not None or cordoned_by is not None
    return {"name": name, "registered": registered, "ready": ready, "healthy": ready,
            "category": category or ("cordoned" if cordoned and ready else "healthy" if ready else "not_ready"),
            "summary": "Ready" if ready else "NotReady (KubeletNotReady)", "cordoned": cordoned,
            "cordoned_by": MAINTENANCE_CORDONER if held is not None else cordoned_by, "cordon_reason": held,
            "pod_cidr": pod_cidr or "10.244.%d.0/24" % index}


def all_healthy(**overrides):
    return [overrides.get(name) or verdict(name) for name in (*CPS, "w1", "w2")]


def etcd(unhealthy=()):
    found = tuple(Member("id-%s" % n, n, ("https://%s:2380" % n,), ("https://%s:2379" % n,)) for n in CPS)
    return {"c1": EtcdState(found, {m.id: m.name not in unhealthy for m in found})}


def decisions(plan):
    return {d.server: (d.decision, d.reason) for d in plan.decisions}


def test_nothing_in_maintenance_is_nothing_to_do():
    plan = plan_maintenance(members(), all_healthy(), rs.empty_state(), etcd=etcd())
    assert plan.decisions == () and plan.summary().startswith("nothing to do")


def test_a_worker_in_maintenance_is_entered_with_the_fleet_reason_then_held():
    fleet = members({"w1": "maintenance"}, {"w1": "replace DIMM B2, OPS-123"})
    plan = plan_maintenance(fleet, all_healthy(), rs.empty_state(), etcd=etcd())
    [entered] = plan.of("enter")
    assert (entered.server, entered.cordon_reason) == ("w1", "replace DIMM B2, OPS-123")
    held = plan_maintenance(fleet, all_healthy(w1=verdict("w1", held="replace DIMM B2, OPS-123")), rs.empty_state())
    assert decisions(held) == {"w1": ("held", "cordoned and drained for maintenance: replace DIMM B2, OPS-123")}


def test_the_mark_gives_the_reason_and_a_file_state_without_one_gets_the_default():
    state = rs.empty_state()
    rs.mark_maintenance(state, "w2", "firmware update", now=1.0, by="awx-job-7")
    fleet = members({"w1": "maintenance", "w2": "maintenance"})
    plan = plan_maintenance(fleet, all_healthy(), state)
    assert {d.server: d.cordon_reason for d in plan.of("enter")} == {"w1": DEFAULT_REASON, "w2": "firmware update"}


def test_a_broken_node_entering_maintenance_says_so_for_the_drain():
    plan = plan_maintenance(members({"w1": "maintenance", "w2": "maintenance"}),
                            all_healthy(w1=verdict("w1", ready=False)), rs.empty_state())
    assert {d.server: d.node_ready for d in plan.of("enter")} == {"w1": False, "w2": True}


def test_a_new_reason_on_a_held_node_is_recorded_again():
    fleet = members({"w1": "maintenance"}, {"w1": "new reason"})
    plan = plan_maintenance(fleet, all_healthy(w1=verdict("w1", held="old reason")), rs.empty_state())
    [entered] = plan.of("enter")
    assert entered.cordon_reason == "new reason" and "changed" in entered.reason


def test_a_server_without_a_node_is_held_and_nothing_is_drained():
    plan = plan_maintenance(members({"w1": "maintenance"}), all_healthy(w1=verdict("w1", registered=False)),
                            rs.empty_state())
    assert decisions(plan)["w1"][0] == "held" and "no Node" in decisions(plan)["w1"][1]


def test_a_node_recovery_works_on_is_refused():
    state = rs.empty_state()
    rs.begin_step(state, "w1", "drain", now=1.0, cluster="c1")
    plan = plan_maintenance(members({"w1": "maintenance"}), all_healthy(), state)
    assert decisions(plan)["w1"] == ("refused", "recovery is remediating it (step drain): maintenance waits for "
                                                "that run to finish")


def test_one_control_plane_may_go_but_never_two_of_three():
    fleet = members({"cp1": "maintenance", "cp2": "maintenance"})
    plan = plan_maintenance(fleet, all_healthy(), rs.empty_state(), etcd=etcd())
    got = decisions(plan)
    assert got["cp1"][0] == "enter"
    assert got["cp2"][0] == "refused"
    assert "2 healthy etcd voting members" not in got["cp2"][1]
    assert "leave 1 healthy etcd voting members of 3 (quorum 2); also in maintenance: cp1" in got["cp2"][1]


def test_a_held_control_plane_counts_as_down_in_later_runs():
    fleet = members({"cp1": "maintenance", "cp2": "maintenance"})
    health = all_healthy(cp1=verdict("cp1", held=DEFAULT_REASON))
    got = decisions(plan_maintenance(fleet, health, rs.empty_state(), etcd=etcd()))
    assert got["cp1"][0] == "held" and got["cp2"][0] == "refused"


def test_a_control_plane_is_refused_while_another_etcd_member_is_unhealthy():
    got = decisions(plan_maintenance(members({"cp1": "maintenance"}), all_healthy(), rs.empty_state(),
                                     etcd=etcd(unhealthy=("cp3",))))
    assert got["cp1"][0] == "refused" and "1 healthy etcd voting members of 3 (quorum 2)" in got["cp1"][1]


def test_a_control_plane_without_etcd_facts_is_refused():
    got = decisions(plan_maintenance(members({"cp1": "maintenance"}), all_healthy(), rs.empty_state()))
    assert got["cp1"][0] == "refused" and "not known" in got["cp1"][1]


def test_back_to_active_and_verified_is_exited():
    health = all_healthy(w1=verdict("w1", held="repair"))
    got = decisions(plan_maintenance(members(), health, rs.empty_state(), etcd=etcd()))
    assert got == {"w1": ("exit", "back to active and verified: Ready, healthy with spec.podCIDR 10.244.3.0/24 "
                                  "as the ledger; uncordon it")}


@pytest.mark.parametrize("observed, expected", [
    (dict(ready=False), "it is not Ready (NotReady (KubeletNotReady))"),
    (dict(pod_cidr="10.244.9.0/24"), "its spec.podCIDR is 10.244.9.0/24, the allocation ledger says 10.244.3.0/24"),
    (dict(category="pressure"), "it is unhealthy (Ready)"),
])
def test_back_to_active_but_not_verified_is_blocked(observed, expected):
    health = all_healthy(w1=verdict("w1", held="repair", **observed))
    [blocked] = plan_maintenance(members(), health, rs.empty_state()).of("blocked")
    assert blocked.server == "w1" and expected in blocked.reason and "stays cordoned" in blocked.reason


def test_a_control_plane_back_to_active_needs_its_etcd_member_healthy():
    health = all_healthy(cp2=verdict("cp2", held="repair"))
    got = decisions(plan_maintenance(members(), health, rs.empty_state(), etcd=etcd(unhealthy=("cp2",))))
    assert got["cp2"][0] == "blocked" and "its etcd member is not healthy" in got["cp2"][1]
    assert decisions(plan_maintenance(members(), health, rs.empty_state(), etcd=etcd()))["cp2"][0] == "exit"


def test_a_node_cordoned_by_someone_else_is_left_alone_when_active():
    health = all_healthy(w1=verdict("w1", cordoned_by="awx-job-12"))
    assert plan_maintenance(members(), health, rs.empty_state()).decisions == ()


def test_a_verdict_of_another_fleet_is_refused_with_its_index():
    with pytest.raises(MaintenanceError, match=r"health: \[5\]: health verdict 'x9' is not a member"):
        plan_maintenance(members(), [*all_healthy(), {"name": "x9"}], rs.empty_state())


def test_the_plan_as_a_dict_has_every_bucket():
    plan = plan_maintenance(members({"w1": "maintenance"}), all_healthy(), rs.empty_state()).as_dict()
    assert set(plan) == {"enter", "held", "exit", "blocked", "refused", "decisions", "summary"}
    assert plan["summary"] == "1 enter, 0 held, 0 exit, 0 blocked, 0 refused"


def test_the_first_answering_control_plane_speaks_for_its_cluster():
    from ansible_collections.baremetal.k8s.plugins.module_utils.maintenance import etcd_by_cluster

    hostvars = {"cp1": {"fleet_cluster": "c1"}, "cp2": {"fleet_cluster": "c1"}, "x1": {"fleet_cluster": "c2"}}
    results = [{"item": "cp1", "failed": True, "msg": "unreachable"}, {"item": "cp2", "members": [{"id": "1"}]},
               {"item": "x1", "unreachable": True}]
    assert etcd_by_cluster(results, hostvars) == {"c1": {"members": [{"id": "1"}]}}


def test_the_outcome_lines_say_what_was_done_and_what_failed():
    from ansible_collections.baremetal.k8s.plugins.module_utils.maintenance import outcome

    state = rs.empty_state()
    fleet = members({"w1": "maintenance", "w2": "maintenance", "cp1": "maintenance", "cp2": "maintenance"},
                    {"w1": "repair", "w2": "disk"})
    health = all_healthy(cp1=verdict("cp1", held=DEFAULT_REASON), w2=verdict("w2"))
    plan = plan_maintenance(fleet, health, state, etcd=etcd()).as_dict()
    w1, w2 = plan["enter"]
    drained = [{"item": w1, "evicted": [{"name": "a"}, {"name": "b"}], "timings": {"total": 3.5}},
               {"item": w2, "failed": True, "msg": "timed out after 600 s: PDB echo allows 0"}]
    lines = outcome(plan, drained, [])["lines"]
    assert lines[0] == "2 enter, 1 held, 0 exit, 0 blocked, 1 refused"
    assert "held w1 for maintenance: drained 2 pods in 3.5 s, cordoned: repair" in lines
    assert ("failed to drain w2: timed out after 600 s: PDB echo allows 0; it stays cordoned, the next run tries "
            "again") in lines
    assert any(line.startswith("held cp1: ") for line in lines)
    assert any(line.startswith("refused cp2: taking cp2 down") for line in lines)
    stats = outcome(plan, drained, [])["stats"]
    assert stats["entered"] == {"w1": {"outcome": "held", "evicted": 2, "seconds": 3.5},
                                "w2": {"outcome": "failed", "error": "timed out after 600 s: PDB echo allows 0"}}


def test_check_mode_outcomes_are_planned():
    from ansible_collections.baremetal.k8s.plugins.module_utils.maintenance import outcome

    plan = plan_maintenance(members({"w1": "maintenance"}), all_healthy(), rs.empty_state()).as_dict()
    assert outcome(plan, [{"item": plan["enter"][0], "skipped": True}], [])["stats"]["entered"] == {
        "w1": {"outcome": "planned"}}
    # node_drain runs in check mode (it is not skipped) but does nothing.
    checked = outcome(plan, [{"item": plan["enter"][0], "changed": True, "evicted": []}], [], True)
    assert checked["stats"]["entered"] == {"w1": {"outcome": "planned"}}
    assert "planned: drain and hold w1 (not run)" in checked["lines"]
