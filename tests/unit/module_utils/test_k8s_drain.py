# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic of the drain core: pod classification, backoff, PDB matching, the PDB ledger, reports.

The drain loop itself runs against a simulated cluster in test_k8s_drain_loop.py,
and against the real control plane in tests/integration/test_node_drain.py.
"""

from __future__ import annotations

import json

import pytest
from ansible_collections.baremetal.k8s.plugins.module_utils.errors import BaremetalError
from ansible_collections.baremetal.k8s.plugins.module_utils.k8s_drain import (
    EVICT,
    REFUSE,
    SKIP,
    WAIT,
    DrainOptionError,
    DrainOptions,
    PdbLedger,
    PodRecord,
    backoff_delay,
    blocked_report,
    classify_pod,
    format_blocked,
    pdbs_from_status,
    pods_to_retry,
    selector_matches,
    status_message,
)
from ansible_collections.baremetal.k8s.plugins.module_utils.k8s_drain_pods import deletion_overdue, round_robin


def pod(owner_kind: str | None = "ReplicaSet", **extra) -> dict:
    meta: dict = {"name": "p", "namespace": "ns", "uid": "u1", "annotations": extra.pop("annotations", {})}
    if owner_kind:
        meta["ownerReferences"] = [{"kind": owner_kind, "name": "owner", "controller": True}]
    if "deletionTimestamp" in extra:
        meta["deletionTimestamp"] = extra.pop("deletionTimestamp")
    return {"metadata": meta, "spec": {"volumes": extra.pop("volumes", [])}, "status": {"phase": "Running", **extra}}


DEFAULT = DrainOptions()


@pytest.mark.parametrize(
    ("the_pod", "options", "action", "reason_part"),
    [
        (pod(), DEFAULT, EVICT, "managed by ReplicaSet/owner"),
        (pod("StatefulSet"), DEFAULT, EVICT, "StatefulSet/owner"),
        (pod("DaemonSet"), DEFAULT, SKIP, "DaemonSet pod"),
        (pod(None, annotations={"kubernetes.io/config.mirror": "x"}), DEFAULT, SKIP, "mirror pod"),
        (pod(deletionTimestamp="2026-01-01T00:00:00Z"), DEFAULT, WAIT, "already terminating"),
        (pod(None), DEFAULT, REFUSE, "allow_unmanaged=true"),
        (pod(None), DrainOptions(allow_unmanaged=True), EVICT, "unmanaged (allowed)"),
        (pod(volumes=[{"name": "v", "emptyDir": {}}]), DEFAULT, REFUSE, "delete_emptydir_data=true"),
        (pod(volumes=[{"name": "v", "emptyDir": {}}]), DrainOptions(delete_emptydir_data=True), EVICT, "emptyDir"),
        (pod(volumes=[{"name": "v", "configMap": {"name": "c"}}]), DEFAULT, EVICT, "managed by"),
        # A finished pod has nothing left to protect, managed or not.
        (pod(None, phase="Succeeded"), DEFAULT, EVICT, "finished pod"),
    ],
)
def test_classify_pod(the_pod, options, action, reason_part):
    got_action, reason = classify_pod(the_pod, options)
    assert got_action == action
    assert reason_part in reason


def test_owner_without_controller_flag_is_unmanaged():
    p = pod()
    p["metadata"]["ownerReferences"][0]["controller"] = False
    assert classify_pod(p, DEFAULT)[0] == REFUSE


def test_backoff_grows_caps_and_jitters():
    no_jitter = [backoff_delay(a, 1.0, 10.0, rng=lambda: 1.0) for a in range(1, 7)]
    assert no_jitter == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert backoff_delay(3, 1.0, 10.0, rng=lambda: 0.0) == 3.0  # 25% jitter below the step


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        ({"matchLabels": {"app": "web"}}, {"app": "web", "x": "y"}, True),
        ({"matchLabels": {"app": "web"}}, {"app": "db"}, False),
        ({}, {"anything": "1"}, True),  # policy/v1: empty selector selects every pod
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]}, {"tier": "b"}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a"]}]}, {}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["a"]}]}, {}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["a"]}]}, {"tier": "a"}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, {"tier": ""}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, {"tier": "a"}, False),
    ],
)
def test_selector_matches(selector, labels, matches):
    assert selector_matches(selector, labels) is matches


# The body of a real 429 from kube-apiserver v1.36 (test_controlplane.py checks it still looks like this).
BODY_429 = json.dumps({
    "kind": "Status", "apiVersion": "v1", "status": "Failure",
    "message": "Cannot evict pod as it would violate the pod's disruption budget.",
    "reason": "TooManyRequests",
    "details": {"causes": [{"reason": "DisruptionBudget",
                            "message": "The disruption budget web needs 2 healthy pods and has 2 currently"}]},
    "code": 429,
})


def test_pdbs_and_message_from_a_429_body():
    assert pdbs_from_status(BODY_429, "shop") == ["shop/web"]
    assert status_message(BODY_429).startswith("Cannot evict pod as it would violate")
    assert "needs 2 healthy pods" in status_message(BODY_429)
    assert pdbs_from_status("not json", "shop") == []
    assert pdbs_from_status(None, "shop") == []
    assert status_message("<html>", "fallback") == "fallback"


def record(name: str, outcome: str, blocked_by: list[str]) -> PodRecord:
    return PodRecord("shop", name, "uid-" + name, EVICT, "", outcome, blocked_by=blocked_by)


def test_blocked_report_groups_by_pdb_with_status():
    records = [
        record("web-1", "blocked", ["shop/web"]),
        record("web-2", "blocked", ["shop/web"]),
        record("db-1", "blocked", []),
        record("api-1", "evicted", ["shop/api"]),
    ]
    status = {"shop/web": {"disruptionsAllowed": 0, "currentHealthy": 2, "desiredHealthy": 2, "expectedPods": 3}}
    report = blocked_report(records, status)
    assert report == [
        {"pdb": None, "pods": ["shop/db-1"]},
        {"pdb": "shop/web", "pods": ["shop/web-1", "shop/web-2"], "disruptions_allowed": 0,
         "current_healthy": 2, "desired_healthy": 2, "expected_pods": 3},
    ]
    lines = format_blocked(report)
    assert "no PodDisruptionBudget named" in lines[0]
    assert lines[1] == ("PodDisruptionBudget shop/web (disruptions_allowed=0, current_healthy=2, desired_healthy=2, "
                        "expected_pods=3) blocks eviction of shop/web-1, shop/web-2")


def test_options_are_checked():
    with pytest.raises(ValueError, match="on_timeout"):
        DrainOptions(on_timeout="ignore")
    with pytest.raises(ValueError, match="parallel"):
        DrainOptions(parallel=0)


def test_record_as_dict_hides_scheduling_state():
    out = record("web-1", "evicted", []).as_dict()
    assert "next_at" not in out
    assert out["outcome"] == "evicted" and out["attempts"] == 0


def test_pods_to_retry_respects_each_pdbs_allowance():
    web = [record(f"web-{i}", "blocked", ["shop/web"]) for i in range(3)]
    db = record("db-1", "blocked", ["shop/db"])
    both = record("both-1", "blocked", ["shop/web", "shop/db"])
    unnamed = record("x-1", "blocked", [])
    for i, rec in enumerate([*web, db, both, unnamed]):
        rec.next_at = float(i)
    chosen = pods_to_retry([unnamed, both, db, *reversed(web)], {"shop/web": 2, "shop/db": 0})
    # Two disruptions allowed for web: the two soonest-due web pods; db allows none; no PDB, no early retry.
    assert [r.name for r in chosen] == ["web-0", "web-1"]
    assert pods_to_retry([both], {"shop/web": 1, "shop/db": 1}) == [both]
    assert pods_to_retry([both], {"shop/web": 1}) == []


def test_options_errors_name_the_option_and_the_fix():
    with pytest.raises(DrainOptionError) as err:
        DrainOptions(timeout=-1)
    assert isinstance(err.value, BaremetalError) and isinstance(err.value, ValueError)
    assert str(err.value).startswith("timeout: must be 0 or more") and "Fix: 0 means no limit" in str(err.value)
    with pytest.raises(DrainOptionError, match="backoff_initial"):
        DrainOptions(backoff_initial=5, backoff_max=1)
    DrainOptions(timeout=0, wait_timeout=0)  # 0: no limit, accepted


NOW = 1_800_000_000.0  # wall clock seconds
STAMP = "2027-01-15T08:00:00Z"  # = NOW


def test_skip_wait_for_delete_timeout_leaves_long_terminating_pods_alone():
    overdue = pod(deletionTimestamp=STAMP)
    assert deletion_overdue(overdue, 30, NOW + 31)
    assert not deletion_overdue(overdue, 30, NOW + 30)  # "older than", as kubectl
    assert not deletion_overdue(overdue, 0, NOW + 10_000)  # 0: the option is off
    assert not deletion_overdue(pod(), 30, NOW + 31)  # not being deleted at all
    skip = DrainOptions(skip_wait_for_delete_timeout=30)
    action, reason = classify_pod(overdue, skip, NOW + 31)
    assert action == SKIP and "skip_wait_for_delete_timeout" in reason
    assert classify_pod(overdue, skip, NOW + 29)[0] == WAIT
    assert classify_pod(overdue, DEFAULT, NOW + 10_000)[0] == WAIT


def test_round_robin_starts_every_controller_first():
    recs = [PodRecord("ns", f"{app}-{i}", f"u-{app}-{i}", EVICT, "", owner=f"rs-{app}")
            for app in ("a", "b") for i in range(3)]
    lonely = PodRecord("ns", "z-lonely", "u-z", EVICT, "")  # no controller: a group of its own
    order = [r.name for r in round_robin([*recs, lonely])]
    assert order == ["a-0", "b-0", "z-lonely", "a-1", "b-1", "a-2", "b-2"]


def test_ledger_counts_our_evictions_until_the_pdb_shows_them():
    ledger = PdbLedger()
    assert not ledger.knows(["shop/web"]) and not ledger.knows([])
    ledger.observe("shop/web", {"disruptionsAllowed": 2})
    assert ledger.knows(["shop/web"]) and ledger.allowed() == {"shop/web": 2}
    ticket = ledger.sent(["shop/web"])
    assert ledger.allowed() == {"shop/web": 1}  # in flight counts
    ledger.answered(["shop/web"], ticket, accepted=True, refused_by=[])
    assert ledger.allowed() == {"shop/web": 1}  # accepted, not yet in a status
    ledger.observe("shop/web", {"disruptionsAllowed": 1})
    assert ledger.allowed() == {"shop/web": 1}  # the status shows it now
    ledger.observe("shop/web", None)  # deleted: limits nothing
    assert ledger.allowed()["shop/web"] == float("inf")


def test_ledger_ignores_a_refusal_older_than_the_status():
    ledger = PdbLedger()
    ledger.observe("shop/web", {"disruptionsAllowed": 0})
    ticket = ledger.sent([])  # a first attempt: its PDB not known yet
    ledger.observe("shop/web", {"disruptionsAllowed": 1})  # a replacement got Ready meanwhile
    ledger.answered([], ticket, accepted=False, refused_by=["shop/web"])
    # The server decided before that change: the newer status stands, or the PDB's pods would wait
    # for a change that may never come.
    assert ledger.allowed() == {"shop/web": 1}
    ticket = ledger.sent(["shop/web"])
    ledger.answered(["shop/web"], ticket, accepted=False, refused_by=["shop/web"])
    assert ledger.allowed() == {"shop/web": 0}  # a refusal after that status: none allowed


def test_blocked_report_for_check_mode_outcome():
    recs = [record("web-1", "would_refuse", ["shop/web"]), record("db-1", "would_evict", [])]
    assert blocked_report(recs, {}, outcome="would_refuse") == [{"pdb": "shop/web", "pods": ["shop/web-1"]}]
