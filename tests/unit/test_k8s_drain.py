# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic of the drain core: pod classification, backoff, PDB matching and reports.

The API side (NodeDrainer) is proven against the real control plane in
tests/integration/test_node_drain.py; nothing here fakes the API server.
"""

from __future__ import annotations

import json

import pytest
from ansible_collections.baremetal.k8s.plugins.module_utils.k8s_drain import (
    EVICT,
    REFUSE,
    SKIP,
    WAIT,
    DrainOptions,
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
