# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PDB-aware node drain (no Ansible imports): the steps in order, and the result they build.

Check the node's pods, cordon it, evict its pods through the Eviction API
(retried as their PodDisruptionBudgets allow), apply the timeout policy, wait
until the evicted pods are gone, and drain pods that slipped in meanwhile.
Each step's work lives in its own file:

- k8s_drain_model.py  options, DrainError, the per-pod record, the clock;
- k8s_drain_cordon.py the cordon patch: spec.unschedulable and who cordoned the node and why;
- k8s_drain_pods.py   what to do with each pod (kubectl drain's filters);
- k8s_drain_pdb.py    PDB refusals, what a PDB allows now, the reports;
- k8s_drain_evict.py  evicting with retries (and check mode's dry runs, force deletion);
- k8s_drain_wait.py   waiting for deletion;
- k8s_drain_api.py    every API request (unit tests replace it with a simulated cluster).

The names other code imports are re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable

from .k8s_drain_api import KubeDrainApi
from .k8s_drain_cordon import CordonChange, mark_summary, node_marks, plan_cordon
from .k8s_drain_evict import Evictor, force_delete, pdb_statuses
from .k8s_drain_model import (
    EVICT,
    ON_TIMEOUT_CHOICES,
    REFUSE,
    SKIP,
    WAIT,
    Clock,
    DrainContext,
    DrainError,
    DrainOptionError,
    DrainOptions,
    NodeNotFound,
    PodRecord,
    deadline_after,
)
from .k8s_drain_pdb import (
    PdbLedger,
    backoff_delay,
    blocked_report,
    format_blocked,
    pdbs_from_status,
    pods_to_retry,
    status_message,
)
from .k8s_drain_pods import classify_pod, controller_of, deletion_overdue, plan_pods, selector_matches
from .k8s_drain_wait import DeletionWaiter

__all__ = [
    "EVICT", "MAX_ROUNDS", "ON_TIMEOUT_CHOICES", "REFUSE", "SKIP", "WAIT",
    "Clock", "CordonChange", "DrainContext", "DrainError", "DrainOptionError", "DrainOptions", "DrainResult",
    "NodeDrainer", "NodeNotFound",
    "PdbLedger", "PodRecord", "backoff_delay", "blocked_report", "classify_pod", "controller_of", "deletion_overdue",
    "format_blocked", "pdbs_from_status", "plan_cordon", "plan_pods", "pods_to_retry", "selector_matches",
    "status_message",
]

MAX_ROUNDS = 3  # evict/wait rounds: the first list, then pods that slipped in while the cordon propagated
EVICTED_OUTCOMES = ("evicted", "gone", "force_deleted")


class DrainResult:
    """The result dict being built: per-pod records and phase timings; makes the DrainErrors that carry it."""

    def __init__(self, node: str, clock: Clock, check_mode: bool = False):
        self.node = node
        self.clock = clock
        self.check_mode = check_mode
        self.t0 = clock.monotonic()
        self.was_unschedulable = False
        self.cordoned = False
        self.marks_changed = False  # the cordon annotations (who, why) were set or removed
        self.previous_cordon: dict | None = None
        self.records: list[PodRecord] = []
        self.blocked: list[dict] = []
        self.timings: dict[str, float] = {}

    def elapsed(self) -> float:
        return self.clock.monotonic() - self.t0

    def add_time(self, phase: str, seconds: float) -> None:
        self.timings[phase] = round(self.timings.get(phase, 0.0) + seconds, 3)

    def keys(self, *outcomes: str) -> list[str]:
        return [r.key for r in self.records if r.outcome in outcomes]

    def as_dict(self, changed: bool) -> dict:
        self.timings["total"] = round(self.elapsed(), 3)
        out = {
            "node": self.node,
            "changed": changed,
            "cordoned": self.cordoned,
            "was_unschedulable": self.was_unschedulable,
            "previous_cordon": self.previous_cordon,
            "pods": [r.as_dict() for r in self.records],
            "blocked": self.blocked,
            "timings": self.timings,
            "evicted": self.keys(*EVICTED_OUTCOMES),
            "left_alone": [r.key for r in self.records if r.action == SKIP],
        }
        if self.check_mode:
            out["would_evict"] = self.keys("would_evict")
            out["would_refuse"] = self.keys("would_refuse")
        return out

    def error(self, msg: str, changed: bool = True) -> DrainError:
        return DrainError(msg, self.as_dict(changed))


class NodeDrainer:
    """Cordon, uncordon or drain one node. ``log`` receives progress lines.

    ``api`` (default: KubeDrainApi over API_CLIENT) makes every request and ``clock`` tells the
    time; unit tests pass a simulated cluster and a fake clock instead. A cordon records
    ``options.cordoned_by`` / ``options.cordon_reason`` on the Node in the same patch
    (k8s_drain_cordon.py); ``last_cordon`` is the last CordonChange planned (for a diff).
    """

    def __init__(
        self,
        api_client,
        node: str,
        options: DrainOptions | None = None,
        log: Callable[[str], None] | None = None,
        *,
        api=None,
        clock: Clock | None = None,
    ):
        self.api = api if api is not None else KubeDrainApi(api_client)
        self.node = node
        self.options = options or DrainOptions()
        self.log = log or (lambda _msg: None)
        self.clock = clock or Clock()
        self.last_cordon: CordonChange | None = None

    # ---- node scheduling

    def read_node(self) -> dict:
        return self.api.read_node(self.node)

    def is_unschedulable(self) -> bool:
        return bool(self.read_node().get("spec", {}).get("unschedulable"))

    def cordon(self, value: bool, check_mode: bool = False) -> CordonChange:
        """Cordon (True, marked with the options' cordoned_by/cordon_reason) or uncordon (False, marks removed).

        One patch of the Node, sent only when something changes and not in check mode.
        """
        change = plan_cordon(self.read_node(), value, self.options.cordoned_by, self.options.cordon_reason)
        self.last_cordon = change
        patch = change.patch
        if patch is not None and not check_mode:
            self.api.patch_node(self.node, patch)
            self.log(change.describe())
        return change

    def set_unschedulable(self, value: bool, check_mode: bool = False) -> bool:
        """Cordon (True) or uncordon (False); returns whether it changed anything (``cordon`` tells what)."""
        return self.cordon(value, check_mode).changed

    def list_pods(self) -> list[dict]:
        return self.api.list_pods(self.node, self.options.pod_selector)

    def plan(self, pods: list[dict] | None = None) -> list[PodRecord]:
        return plan_pods(self.list_pods() if pods is None else pods, self.options, self.clock.wall())

    # ---- drain

    def drain(self, check_mode: bool = False) -> dict:
        """Cordon, evict, wait. Returns the result dict; raises DrainError (with .result) on failure."""
        result = DrainResult(self.node, self.clock, check_mode)
        ctx = DrainContext(self.api, self.node, self.options, self.clock, self.log, result.t0)
        node = self.read_node()
        result.was_unschedulable = bool(node.get("spec", {}).get("unschedulable"))
        result.previous_cordon = mark_summary(node_marks(node))
        # Check before touching the node: a pod we would refuse leaves it as it was.
        result.records = self.plan()
        self._refuse_if_any(result, left_cordoned=False)
        change = self.cordon(True, check_mode)
        result.was_unschedulable, result.previous_cordon = change.was_unschedulable, change.previous
        result.cordoned, result.marks_changed = change.flips, change.marks_changed
        result.add_time("cordon", result.elapsed())
        if check_mode:
            return self._check(ctx, result)
        # The authoritative list: pods scheduled before the cordon took effect count too.
        result.records = self.plan()
        self._refuse_if_any(result, left_cordoned=True)
        counts = {a: sum(r.action == a for r in result.records) for a in (EVICT, SKIP, WAIT)}
        self.log(f"draining {self.node}: {counts[EVICT]} pods to evict, {counts[SKIP]} left alone, "
                 f"{counts[WAIT]} terminating")

        deadline = deadline_after(self.clock.monotonic(), self.options.timeout)
        result.timings.update(evict=0.0, wait=0.0)
        batch = result.records
        for _round in range(MAX_ROUNDS):
            self._evict(ctx, batch, result, deadline)
            self._wait(ctx, batch, result)
            batch = self._newcomers(result)
            if not batch:
                break
            self.log(f"{len(batch)} pods arrived on {self.node} while it was being cordoned; draining them too")
        return result.as_dict(changed=result.cordoned or result.marks_changed
                              or any(r.action == EVICT for r in result.records))

    def _refuse_if_any(self, result: DrainResult, left_cordoned: bool) -> None:
        refused = [r for r in result.records if r.action == REFUSE]
        if refused:
            raise result.error(
                f"cannot drain node {self.node}: " + "; ".join(f"{r.key}: {r.reason}" for r in refused)
                + (" (node left cordoned)" if left_cordoned else " (nothing changed)"),
                changed=left_cordoned,
            )

    def _evict(self, ctx: DrainContext, batch: list[PodRecord], result: DrainResult, deadline: float) -> None:
        """Evict BATCH until DEADLINE, then apply on_timeout to the pods still blocked."""
        to_evict = [r for r in batch if r.action == EVICT]
        started = self.clock.monotonic()
        Evictor(ctx).evict(to_evict, deadline)
        result.add_time("evict", self.clock.monotonic() - started)

        blocked = [r for r in to_evict if r.outcome == "blocked"]
        if not blocked:
            return
        statuses = pdb_statuses(self.api, {k for r in blocked for k in r.blocked_by})
        result.blocked = blocked_report(result.records, statuses)
        lines = format_blocked(result.blocked)
        if self.options.on_timeout == "fail":
            for line in lines:
                self.log(line)
            raise result.error(
                f"timed out after {self.options.timeout:.0f}s evicting pods from {self.node} (node left cordoned): "
                + " | ".join(lines)
            )
        self.log(f"timeout after {self.options.timeout:.0f}s: deleting {len(blocked)} blocked pods "
                 "(on_timeout=force_delete)")
        force_delete(ctx, blocked)

    def _wait(self, ctx: DrainContext, batch: list[PodRecord], result: DrainResult) -> None:
        """Wait until the pods evicted from BATCH are gone; fail naming those left, or those not evicted."""
        failed = [r for r in batch if r.action == EVICT and r.outcome == "failed"]
        started = self.clock.monotonic()
        left = DeletionWaiter(ctx).wait([r for r in batch if r.outcome in ("evicted", "force_deleted", "terminating")])
        result.add_time("wait", self.clock.monotonic() - started)
        if left:
            raise result.error(
                f"pods still present on {self.node} {self.options.wait_timeout:.0f}s after eviction: "
                + ", ".join(r.key for r in left)
            )
        if failed:
            raise result.error(
                f"could not evict {len(failed)} pods from {self.node}: "
                + "; ".join(f"{r.key}: {r.message}" for r in failed)
            )

    def _newcomers(self, result: DrainResult) -> list[PodRecord]:
        """Pods the scheduler bound to the node before it saw the cordon, after our list: they are drained too,
        or the node is "drained" with pods still on it."""
        known = {r.uid for r in result.records}
        batch = [r for r in self.plan() if r.uid not in known and r.action != SKIP]
        result.records = sorted(result.records + batch, key=lambda r: r.key)
        self._refuse_if_any(result, left_cordoned=True)
        return batch

    def _check(self, ctx: DrainContext, result: DrainResult) -> dict:
        """Check mode: ask the API (dry-run evictions) which pods could go now and which PDBs refuse."""
        to_evict = [r for r in result.records if r.action == EVICT]
        Evictor(ctx).dry_run(to_evict)
        refused = [r for r in to_evict if r.outcome == "would_refuse"]
        if refused:
            statuses = pdb_statuses(self.api, {k for r in refused for k in r.blocked_by})
            result.blocked = blocked_report(refused, statuses, outcome="would_refuse")
            for line in format_blocked(result.blocked):
                self.log(f"now: {line}")
        changed = result.cordoned or result.marks_changed or bool(to_evict)
        failing = [r for r in to_evict if r.outcome == "would_fail"]
        if failing:
            raise result.error(
                f"could not evict {len(failing)} pods from {self.node} (check mode, nothing changed): "
                + "; ".join(f"{r.key}: {r.message}" for r in failing),
                changed=changed,
            )
        return result.as_dict(changed)
