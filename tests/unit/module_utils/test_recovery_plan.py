# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The recovery plan (module_utils/recovery_plan.py): health + fleet + recovery state -> what to do now."""

from __future__ import annotations

import pytest
from ansible_collections.baremetal.k8s.plugins.module_utils import recovery_state as rs
from ansible_collections.baremetal.k8s.plugins.module_utils.recovery_plan import (
    REPLACE,
    REPROVISION,
    RecoveryPlanError,
    plan_recovery,
    record_halts,
    recovery_policy_from_dict,
)
from ansible_collections.baremetal.k8s.plugins.module_utils.remediation import RemediationError

NOW = 2_000_000.0
POLICY = recovery_policy_from_dict({"grace_period": 60, "max_unhealthy": 2, "retry_limit": 2, "halt_cooldown": 300})


def members(*names, cluster="c1", **overrides):
    """Workers of one cluster, one rack each."""
    result = {}
    for index, name in enumerate(names):
        result[name] = {"cluster": cluster, "failure_domain": "eu/dc1/r1/a%02d" % index, "state": "active",
                        "protected": False}
        result[name].update(overrides.get(name, {}))
    return result


def verdict(name, category="healthy", down=None):
    """A node_health verdict: ``down`` seconds unhealthy (None: healthy, or no time known with a category)."""
    healthy = category in ("healthy", "cordoned")
    since = None if down is None else NOW - down
    return {"name": name, "healthy": healthy, "category": category,
            "record": {"name": name, "roles": ["worker"], "ready": healthy,
                       "unhealthy_since": since, "reasons": [] if healthy else [category]}}


def plan(verdicts, state=None, fleet=None, policy=POLICY):
    fleet = fleet or members(*[v["name"] for v in verdicts])
    return plan_recovery(fleet, verdicts, state or rs.empty_state(), policy, now=NOW)


def test_a_dead_kubelet_past_the_grace_period_is_reprovisioned():
    result = plan([verdict("w1", "kubelet_down", down=120), verdict("w2"), verdict("w3")])
    [action] = result.actions
    assert action.entry.node == "w1" and action.action == REPROVISION and action.resume_at == "cordon"
    assert action.attempt == 1 and "attempt 1 of retry_limit 2" in action.why
    assert result.as_dict()["summary"].startswith("1 to reprovision; 1 remediate")


def test_within_the_grace_period_nothing_is_done():
    result = plan([verdict("w1", "kubelet_down", down=30), verdict("w2")])
    assert result.actions == () and [e.node for e in result.plan.waiting] == ["w1"]


def test_a_gone_host_is_replaced_not_reprovisioned():
    [action] = plan([verdict("w1", "host_unreachable", down=120), verdict("w2"), verdict("w3")]).actions
    assert action.action == REPLACE and "fence it" in action.why


def test_probes_without_a_time_use_when_the_job_first_saw_the_node():
    state = rs.empty_state()
    state["nodes"]["w1"] = {"first_unhealthy": NOW - 90, "status": rs.DONE, "attempts": 0}
    result = plan([verdict("w1", "kubelet_down"), verdict("w2"), verdict("w3")], state)
    assert [a.entry.node for a in result.actions] == ["w1"]
    assert plan([verdict("w1", "kubelet_down"), verdict("w2"), verdict("w3")]).actions == ()  # unknown: waits


def test_a_run_that_died_is_resumed_first_at_its_step_with_the_same_attempt():
    state = rs.empty_state()
    rs.begin_step(state, "w2", "cordon", now=NOW - 500, cluster="c1", action=REPROVISION)
    rs.begin_step(state, "w2", "drain", now=NOW - 400)
    same_rack = members("w1", "w2", "w3", "w4", w1={"failure_domain": "eu/dc1/r1/a01"})  # one domain at a time
    result = plan([verdict("w1", "kubelet_down", down=120), verdict("w2", "not_ready", down=600),
                   verdict("w3"), verdict("w4")], state, fleet=same_rack,
                  policy=recovery_policy_from_dict({"grace_period": 60, "max_unhealthy": 2, "max_concurrent": 2}))
    resumed_first = [("w2", "drain", 1), ("w1", "cordon", 1)]
    assert [(a.entry.node, a.resume_at, a.attempt) for a in result.actions] == resumed_first
    assert "resume attempt 1 at step drain" in result.actions[0].why


def test_past_the_retry_limit_the_node_is_replaced():
    state = rs.empty_state()
    for attempt in range(2):
        rs.begin_step(state, "w1", "rejoin", now=NOW - 100 + attempt, action=REPROVISION)
        rs.fail_step(state, "w1", "rejoin", "kubeadm join timed out", now=NOW - 100 + attempt)
    [action] = plan([verdict("w1", "not_registered", down=900), verdict("w2"), verdict("w3")], state).actions
    assert action.action == REPLACE and "failed 2 of retry_limit 2 attempts" in action.why
    assert action.resume_at == "cordon" and action.attempt == 3
    # Once the replacement started, a resumed run goes on replacing.
    rs.begin_step(state, "w1", "cordon", now=NOW, action=REPLACE)
    rs.begin_step(state, "w1", "drain", now=NOW)
    [action] = plan([verdict("w1", "not_registered", down=900), verdict("w2"), verdict("w3")], state).actions
    assert action.action == REPLACE and action.resume_at == "drain"


def test_refusals_and_halts_keep_their_reasons():
    fleet = members("w1", "w2", "w3", "w4", w1={"protected": True, "protection_reason": "holds the only copy"})
    result = plan([verdict("w1", "kubelet_down", down=120), verdict("w2"), verdict("w3"), verdict("w4")],
                  fleet=fleet)
    assert result.actions == () and "protected against deletion (holds the only copy)" in result.plan.refused[0].reason
    halted = plan([verdict(n, "host_unreachable", down=120) for n in ("w1", "w2", "w3")] + [verdict("w4")])
    assert halted.actions == () and halted.halts_started == ("c1",) and "exceeds max_unhealthy 2" in \
        halted.plan.halted_reason


def test_after_a_halt_clears_new_remediations_wait_the_cooldown():
    state = rs.empty_state()
    storm = plan([verdict(n, "host_unreachable", down=120) for n in ("w1", "w2", "w3")] + [verdict("w4")], state)
    assert record_halts(state, storm, now=NOW) and state["halts"]["c1"]["active"] is True
    calm = plan([verdict("w1", "kubelet_down", down=120), verdict("w2"), verdict("w3"), verdict("w4")], state)
    assert calm.halts_cleared == ("c1",) and calm.actions == ()
    assert "storm recovery: cluster c1 came out of a halt 0 s ago" in calm.plan.deferred[0].reason
    record_halts(state, calm, now=NOW)
    later = plan_recovery(members("w1", "w2", "w3", "w4"), [verdict("w1", "kubelet_down", down=500),
                          verdict("w2"), verdict("w3"), verdict("w4")], state, POLICY, now=NOW + 301)
    assert [a.entry.node for a in later.actions] == ["w1"] and later.halts_cleared == ()


def test_a_starting_member_is_left_to_provisioning():
    result = plan([verdict("w1", "starting", down=700), verdict("w2"), verdict("w3")])
    assert result.actions == () and "provisioned" in result.plan.refused[0].reason


@pytest.mark.parametrize(("policy", "words"), [
    ({"retry_limit": 0}, "retry_limit: 0 is not a whole number >= 1"),
    ({"halt_cooldown": -1}, "halt_cooldown: -1 is not a whole number >= 0"),
    ({"retry_limit": True}, "retry_limit: True"),
    (["x"], "policy: expected a mapping"),
])
def test_bad_policy_values_name_the_field(policy, words):
    with pytest.raises(RecoveryPlanError, match=words) as caught:
        recovery_policy_from_dict(policy)
    assert caught.value.fix
    with pytest.raises(RemediationError, match=r"policy\.grace_period"):
        recovery_policy_from_dict({"grace_period": -5})


def test_a_verdict_of_no_fleet_member_is_a_clear_error():
    with pytest.raises(RecoveryPlanError, match=r"health: \[1\]: health verdict 'ghost' is not a member"):
        plan_recovery(members("w1"), [verdict("w1"), verdict("ghost")], rs.empty_state(), POLICY, now=NOW)
