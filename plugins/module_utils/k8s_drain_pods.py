# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deciding what the drain does with each pod of the node, following kubectl drain's filters.

Pure functions over pods as the API returns them (JSON dicts).
"""

from __future__ import annotations

import datetime

from .k8s_drain_model import EVICT, REFUSE, SKIP, WAIT, DrainOptions, PodRecord

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
TERMINAL_PHASES = ("Succeeded", "Failed")


def controller_of(pod: dict) -> dict | None:
    for ref in pod.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def parse_time(text: str) -> float | None:
    """Seconds since the epoch of an RFC 3339 timestamp as the API writes them ("2026-01-01T00:00:00Z")."""
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except (AttributeError, ValueError):
        return None


def deletion_overdue(pod: dict, seconds: int, now: float) -> bool:
    """kubectl's --skip-wait-for-delete-timeout test: deletionTimestamp more than SECONDS before NOW (0: never).

    The API sets deletionTimestamp to the end of the grace period, so this is "SECONDS past its grace period";
    a pod like that on a dead node never goes away by itself.
    """
    stamp = pod.get("metadata", {}).get("deletionTimestamp")
    deleted_at = parse_time(stamp) if stamp else None
    return seconds > 0 and deleted_at is not None and now - deleted_at > seconds


def classify_pod(pod: dict, options: DrainOptions, now: float | None = None) -> tuple[str, str]:
    """(action, reason) for one pod. NOW (wall clock seconds) is only needed with skip_wait_for_delete_timeout.

    Mirror pods (static pods) and DaemonSet pods stay; pods being deleted are
    only waited for (or not at all once overdue); finished pods go without further checks;
    unmanaged pods and pods with emptyDir data are refused unless the matching option allows.
    """
    meta = pod.get("metadata", {})
    if MIRROR_ANNOTATION in (meta.get("annotations") or {}):
        return SKIP, "mirror pod"
    ctrl = controller_of(pod)
    if ctrl and ctrl.get("kind") == "DaemonSet":
        return SKIP, "DaemonSet pod"
    if meta.get("deletionTimestamp"):
        if now is not None and deletion_overdue(pod, options.skip_wait_for_delete_timeout, now):
            return SKIP, (f"terminating for more than {options.skip_wait_for_delete_timeout}s past its "
                          "grace period (skip_wait_for_delete_timeout)")
        return WAIT, "already terminating"
    if pod.get("status", {}).get("phase") in TERMINAL_PHASES:
        return EVICT, "finished pod"
    reasons = []
    if ctrl is None:
        if not options.allow_unmanaged:
            return REFUSE, "not managed by a controller (set allow_unmanaged=true to delete it for good)"
        reasons.append("unmanaged (allowed)")
    if any("emptyDir" in v for v in pod.get("spec", {}).get("volumes") or []):
        if not options.delete_emptydir_data:
            return REFUSE, "uses emptyDir data (set delete_emptydir_data=true to lose it)"
        reasons.append("emptyDir data deleted")
    return EVICT, ", ".join(reasons) or f"managed by {ctrl['kind']}/{ctrl['name']}"


def plan_pods(pods: list[dict], options: DrainOptions, now: float | None = None) -> list[PodRecord]:
    """One record per pod, sorted by namespace/name, with the action decided and the outcome so far."""
    records = []
    for pod in pods:
        meta = pod["metadata"]
        action, reason = classify_pod(pod, options, now)
        outcome = {SKIP: "skipped", REFUSE: "refused", WAIT: "terminating"}.get(action, "pending")
        owner = (controller_of(pod) or {}).get("uid", "")
        records.append(PodRecord(meta["namespace"], meta["name"], meta.get("uid", ""), action, reason, outcome,
                                 owner=owner, labels=meta.get("labels") or {}))
    return sorted(records, key=lambda r: r.key)


def round_robin(records: list[PodRecord]) -> list[PodRecord]:
    """The first pod of each controller, then the second of each, and so on.

    Pods of one controller usually share a PDB that lets them go one at a time: trying them
    in this order starts every workload moving at once, instead of the last ones in name order
    waiting behind the refusals of the first.
    """
    seen: dict[str, int] = {}
    rank = {}
    for rec in records:
        rank[id(rec)] = seen.get(rec.owner or rec.uid, 0)
        seen[rec.owner or rec.uid] = rank[id(rec)] + 1
    return sorted(records, key=lambda r: (rank[id(r)], r.key))


def selector_matches(selector: dict | None, labels: dict | None) -> bool:
    """Kubernetes LabelSelector semantics. An empty selector matches every pod (policy/v1 PDB)."""
    labels = labels or {}
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True
