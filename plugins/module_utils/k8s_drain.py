# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PDB-aware node drain over the ``kubernetes`` client (no Ansible imports).

Cordon the node, then evict its pods through the Eviction API, many at once.
An eviction that a PodDisruptionBudget forbids (HTTP 429) is retried with
backoff until ``timeout``; meanwhile the blocked pods and their PDBs are
reported. At the timeout the drain fails leaving the node cordoned, or - only
when asked for - deletes the blocked pods directly. Finally it waits (bounded)
until the evicted pods are gone.

The pure functions (classification, backoff, PDB matching, reports) work on
plain JSON dicts as the API returns them; ``NodeDrainer`` does the API calls.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field

from .errors import BaremetalError

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
TERMINAL_PHASES = ("Succeeded", "Failed")
ON_TIMEOUT_CHOICES = ("fail", "force_delete")
MAX_ROUNDS = 3  # evict/wait rounds: the first list, then pods that slipped in while the cordon propagated

# Pod actions decided before anything is evicted.
EVICT, SKIP, REFUSE, WAIT = "evict", "skip", "refuse", "wait"


class DrainError(BaremetalError):
    """The drain could not finish; ``result`` holds the partial result (per-pod outcomes, blockers)."""

    def __init__(self, msg: str, result: dict | None = None):
        super().__init__(msg)
        self.result = result or {}


@dataclass
class DrainOptions:
    delete_emptydir_data: bool = False
    allow_unmanaged: bool = False  # evict pods that no controller manages (they will not come back)
    grace_period: int | None = None  # eviction's gracePeriodSeconds; None keeps each pod's own
    timeout: float = 300.0  # bound on the eviction phase, PDB retries included
    on_timeout: str = "fail"  # or "force_delete"
    force_delete_grace_period: int | None = None  # for on_timeout=force_delete; None keeps each pod's own
    wait_timeout: float = 120.0  # bound on waiting for evicted pods to disappear
    parallel: int = 16  # concurrent eviction requests
    backoff_initial: float = 1.0
    backoff_max: float = 10.0
    report_interval: float = 10.0  # seconds between "still blocked" reports
    pdb_poll_interval: float = 0.5  # seconds between reads of the blocking PDBs' disruptionsAllowed

    def __post_init__(self) -> None:
        if self.on_timeout not in ON_TIMEOUT_CHOICES:
            raise ValueError(f"on_timeout must be one of {ON_TIMEOUT_CHOICES}, not {self.on_timeout!r}")
        if self.parallel < 1:
            raise ValueError("parallel must be >= 1")


@dataclass
class PodRecord:
    """One pod of the node: what the drain decided and what happened to it."""

    namespace: str
    name: str
    uid: str
    action: str  # evict | skip | refuse | wait
    reason: str
    outcome: str = "pending"  # evicted | gone | force_deleted | blocked | failed | skipped | refused | would_evict
    attempts: int = 0
    blocked_by: list[str] = field(default_factory=list)  # "namespace/pdb"
    message: str = ""
    evicted_after: float | None = None  # seconds since the drain started
    gone_after: float | None = None
    next_at: float = field(default=0.0, repr=False)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def as_dict(self) -> dict:
        out = asdict(self)
        out.pop("next_at")
        return out


# --------------------------------------------------------------------------- pure logic


def controller_of(pod: dict) -> dict | None:
    for ref in pod.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def classify_pod(pod: dict, options: DrainOptions) -> tuple[str, str]:
    """(action, reason) for one pod, following kubectl drain's filters.

    Mirror pods (static pods) and DaemonSet pods stay; pods being deleted are
    only waited for; finished pods go without further checks; unmanaged pods
    and pods with emptyDir data are refused unless the matching option allows.
    """
    meta = pod.get("metadata", {})
    if MIRROR_ANNOTATION in (meta.get("annotations") or {}):
        return SKIP, "mirror pod"
    ctrl = controller_of(pod)
    if ctrl and ctrl.get("kind") == "DaemonSet":
        return SKIP, "DaemonSet pod"
    if meta.get("deletionTimestamp"):
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


def backoff_delay(attempt: int, initial: float = 1.0, maximum: float = 10.0, rng: Callable[[], float] = random.random):
    """Delay before retry ATTEMPT (1-based): exponential, capped, with 25% jitter so pods spread out."""
    base = min(maximum, initial * (2 ** max(0, attempt - 1)))
    return base * (0.75 + 0.25 * rng())


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


_PDB_IN_MESSAGE = re.compile(r"disruption budget (\S+)")


def pdbs_from_status(body: str | bytes | None, namespace: str) -> list[str]:
    """PDB names ("ns/name") from a 429 Status body ("The disruption budget web needs 2 healthy pods ...")."""
    try:
        status = json.loads(body or "{}")
    except ValueError:
        return []
    names = []
    for cause in (status.get("details") or {}).get("causes") or []:
        match = _PDB_IN_MESSAGE.search(cause.get("message", ""))
        if match:
            names.append(f"{namespace}/{match.group(1)}")
    return sorted(set(names))


def status_message(body: str | bytes | None, default: str = "") -> str:
    try:
        status = json.loads(body or "{}")
    except ValueError:
        return default
    causes = [c.get("message", "") for c in (status.get("details") or {}).get("causes") or []]
    return "; ".join([status.get("message", default), *[c for c in causes if c]]).strip("; ")


def pods_to_retry(blocked: list[PodRecord], allowed: dict[str, int]) -> list[PodRecord]:
    """Blocked pods to retry now: per PDB at most as many as it allows disruptions, soonest-due first.

    A pod under several PDBs needs every one of them to allow (the API refuses such pods anyway).
    """
    budget = dict(allowed)
    chosen = []
    for rec in sorted(blocked, key=lambda r: (r.next_at, r.key)):
        if rec.blocked_by and all(budget.get(p, 0) > 0 for p in rec.blocked_by):
            for p in rec.blocked_by:
                budget[p] -= 1
            chosen.append(rec)
    return chosen


def blocked_report(records: list[PodRecord], pdb_status: dict[str, dict] | None = None) -> list[dict]:
    """Blocked pods grouped by the PDB that blocks them, with the PDB's status numbers when known."""
    groups: dict[str, list[str]] = {}
    for rec in records:
        if rec.outcome != "blocked":
            continue
        for pdb in rec.blocked_by or [""]:
            groups.setdefault(pdb, []).append(rec.key)
    report = []
    for pdb, pods in sorted(groups.items()):
        entry = {"pdb": pdb or None, "pods": sorted(pods)}
        st = (pdb_status or {}).get(pdb) or {}
        for k_out, k_in in (
            ("disruptions_allowed", "disruptionsAllowed"),
            ("current_healthy", "currentHealthy"),
            ("desired_healthy", "desiredHealthy"),
            ("expected_pods", "expectedPods"),
        ):
            if k_in in st:
                entry[k_out] = st[k_in]
        report.append(entry)
    return report


def format_blocked(report: list[dict]) -> list[str]:
    lines = []
    for entry in report:
        pods = ", ".join(entry["pods"])
        if entry["pdb"]:
            nums = ", ".join(
                f"{k}={entry[k]}"
                for k in ("disruptions_allowed", "current_healthy", "desired_healthy", "expected_pods")
                if k in entry
            )
            lines.append(f"PodDisruptionBudget {entry['pdb']} ({nums or 'status unknown'}) blocks eviction of {pods}")
        else:
            lines.append(f"eviction of {pods} refused with 429 (no PodDisruptionBudget named; API throttling?)")
    return lines


# --------------------------------------------------------------------------- API side


def _json(resp) -> dict:
    return json.loads(resp.data)


class NodeDrainer:
    """Cordon/uncordon/drain one node. ``log`` receives progress lines."""

    def __init__(
        self,
        api_client,
        node: str,
        options: DrainOptions | None = None,
        log: Callable[[str], None] | None = None,
    ):
        from kubernetes import client

        self.core = client.CoreV1Api(api_client)
        self.policy = client.PolicyV1Api(api_client)
        self.node = node
        self.options = options or DrainOptions()
        self.log = log or (lambda _msg: None)
        self._pdb_cache: dict[str, list[dict]] = {}

    # ---- node scheduling

    def read_node(self) -> dict:
        from kubernetes.client.exceptions import ApiException

        try:
            return _json(self.core.read_node(self.node, _preload_content=False))
        except ApiException as exc:
            if exc.status == 404:
                raise DrainError(f"node {self.node} not found") from exc
            raise

    def is_unschedulable(self) -> bool:
        return bool(self.read_node().get("spec", {}).get("unschedulable"))

    def set_unschedulable(self, value: bool, check_mode: bool = False) -> bool:
        """Cordon (True) or uncordon (False); returns whether it changed anything."""
        if self.is_unschedulable() == value:
            return False
        if not check_mode:
            self.core.patch_node(self.node, {"spec": {"unschedulable": value}}, _preload_content=False)
            self.log(f"node {self.node} {'cordoned' if value else 'uncordoned'}")
        return True

    def list_pods(self) -> list[dict]:
        resp = self.core.list_pod_for_all_namespaces(
            field_selector=f"spec.nodeName={self.node}", _preload_content=False
        )
        return _json(resp).get("items", [])

    # ---- drain

    def plan(self, pods: list[dict] | None = None) -> list[PodRecord]:
        pods = self.list_pods() if pods is None else pods
        records = []
        for pod in pods:
            meta = pod["metadata"]
            action, reason = classify_pod(pod, self.options)
            outcome = {SKIP: "skipped", REFUSE: "refused", WAIT: "terminating"}.get(action, "pending")
            records.append(PodRecord(meta["namespace"], meta["name"], meta.get("uid", ""), action, reason, outcome))
        return sorted(records, key=lambda r: r.key)

    def drain(self, check_mode: bool = False) -> dict:
        """Cordon, evict, wait. Returns the result dict; raises DrainError (with .result) on failure."""
        opts = self.options
        t0 = time.monotonic()
        timings: dict[str, float] = {}
        was_unschedulable = self.is_unschedulable()
        result = {
            "node": self.node,
            "cordoned": False,
            "was_unschedulable": was_unschedulable,
            "pods": [],
            "blocked": [],
            "timings": timings,
        }
        records: list[PodRecord] = []

        def finish(changed: bool) -> dict:
            timings["total"] = round(time.monotonic() - t0, 3)
            result["changed"] = changed
            result["pods"] = [r.as_dict() for r in records]
            result["evicted"] = [r.key for r in records if r.outcome in ("evicted", "gone", "force_deleted")]
            result["left_alone"] = [r.key for r in records if r.action == SKIP]
            return result

        def refuse(left_cordoned: bool) -> DrainError:
            finish(left_cordoned)
            return DrainError(
                f"cannot drain node {self.node}: "
                + "; ".join(f"{r.key}: {r.reason}" for r in records if r.action == REFUSE)
                + (" (node left cordoned)" if left_cordoned else " (nothing changed)"),
                result,
            )

        # Check before touching the node: a pod we would refuse leaves it as it was.
        records = self.plan()
        if any(r.action == REFUSE for r in records):
            raise refuse(False)
        cordoned = self.set_unschedulable(True, check_mode)
        result["cordoned"] = cordoned
        timings["cordon"] = round(time.monotonic() - t0, 3)
        if check_mode:
            to_evict = [r for r in records if r.action == EVICT]
            for r in to_evict:
                r.outcome = "would_evict"
            return finish(cordoned or bool(to_evict))
        # The authoritative list: pods scheduled before the cordon took effect count too.
        records = self.plan()
        if any(r.action == REFUSE for r in records):
            raise refuse(True)

        self.log(
            f"draining {self.node}: {sum(r.action == EVICT for r in records)} pods to evict, "
            f"{sum(r.action == SKIP for r in records)} left alone, {sum(r.action == WAIT for r in records)} terminating"
        )
        deadline = time.monotonic() + opts.timeout
        timings["evict"] = timings["wait"] = 0.0
        batch = records
        for _round in range(MAX_ROUNDS):
            self._drain_batch(batch, records, deadline=deadline, t0=t0, timings=timings, finish=finish)
            # The scheduler may have bound pods to the node before it saw the cordon, after our
            # list: drain those too, or the node is "drained" with pods still on it.
            known = {r.uid for r in records}
            batch = [r for r in self.plan() if r.uid not in known and r.action != SKIP]
            if not batch:
                break
            records.extend(batch)
            records.sort(key=lambda r: r.key)
            if any(r.action == REFUSE for r in batch):
                raise refuse(True)
            self.log(f"{len(batch)} pods arrived on {self.node} while it was being cordoned; draining them too")
        return finish(cordoned or any(r.action == EVICT for r in records))

    def _drain_batch(self, batch: list[PodRecord], records: list[PodRecord], *, deadline: float, t0: float,
                     timings: dict[str, float], finish: Callable[[bool], dict]) -> None:
        """Evict BATCH (until DEADLINE), apply the timeout policy, wait until the pods are gone.

        FINISH(changed) fills in and returns the result dict that DrainError carries.
        """
        opts = self.options
        to_evict = [r for r in batch if r.action == EVICT]
        t_evict = time.monotonic()
        self._evict_all(to_evict, t0, deadline)
        timings["evict"] = round(timings["evict"] + time.monotonic() - t_evict, 3)

        blocked = [r for r in to_evict if r.outcome == "blocked"]
        if blocked:
            report = blocked_report(records, self._pdb_status(blocked))
            result = finish(True)
            result["blocked"] = report
            lines = format_blocked(report)
            if opts.on_timeout == "fail":
                for line in lines:
                    self.log(line)
                raise DrainError(
                    f"timed out after {opts.timeout:.0f}s evicting pods from {self.node} (node left cordoned): "
                    + " | ".join(lines),
                    result,
                )
            self.log(
                f"timeout after {opts.timeout:.0f}s: deleting {len(blocked)} blocked pods (on_timeout=force_delete)"
            )
            self._force_delete(blocked, t0)

        failed = [r for r in to_evict if r.outcome == "failed"]
        t_wait = time.monotonic()
        left = self._wait_gone([r for r in batch if r.outcome in ("evicted", "force_deleted", "terminating")], t0)
        timings["wait"] = round(timings["wait"] + time.monotonic() - t_wait, 3)
        if left:
            raise DrainError(
                f"pods still present on {self.node} {opts.wait_timeout:.0f}s after eviction: "
                + ", ".join(r.key for r in left),
                finish(True),
            )
        if failed:
            raise DrainError(
                f"could not evict {len(failed)} pods from {self.node}: "
                + "; ".join(f"{r.key}: {r.message}" for r in failed),
                finish(True),
            )

    def _evict_once(self, rec: PodRecord) -> tuple[int, str, bytes | str | None]:
        """One eviction request: (HTTP status, message, body). 201 on success."""
        from kubernetes.client.exceptions import ApiException

        delete_options: dict = {"preconditions": {"uid": rec.uid}}
        if self.options.grace_period is not None:
            delete_options["gracePeriodSeconds"] = self.options.grace_period
        body = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": rec.name, "namespace": rec.namespace},
            "deleteOptions": delete_options,
        }
        try:
            self.core.create_namespaced_pod_eviction(rec.name, rec.namespace, body, _preload_content=False)
            return 201, "", None
        except ApiException as exc:
            return exc.status, status_message(exc.body, str(exc.reason)), exc.body

    def _evict_all(self, to_evict: list[PodRecord], t0: float, deadline: float) -> None:
        """Evict until every pod is evicted/gone/failed or DEADLINE passes (pods still refused stay "blocked").

        Requests run in a pool of ``parallel`` threads and are handled as each one completes, so a
        slow request never holds back the retry of a pod whose PDB allows it again.
        """
        opts = self.options
        next_report = time.monotonic() + opts.report_interval
        next_poll = time.monotonic() + opts.pdb_poll_interval
        pending = list(to_evict)
        in_flight: dict[Future, PodRecord] = {}
        with ThreadPoolExecutor(max_workers=opts.parallel, thread_name_prefix="evict") as pool:
            while pending:
                now = time.monotonic()
                busy = {id(r) for r in in_flight.values()}
                if now < deadline:
                    for rec in pending:
                        if rec.next_at <= now and id(rec) not in busy:
                            in_flight[pool.submit(self._evict_once, rec)] = rec
                elif not in_flight:
                    break
                busy = {id(r) for r in in_flight.values()}
                blocked = [r for r in pending if r.outcome == "blocked" and id(r) not in busy]
                if now >= next_poll and blocked:
                    # Retry at once the pods whose PDBs allow a disruption again, rather than
                    # sleeping out their backoff: a replacement became Ready elsewhere.
                    next_poll = now + opts.pdb_poll_interval
                    statuses = self._pdb_status(blocked)
                    allowed = {key: st.get("disruptionsAllowed", 0) for key, st in statuses.items()}
                    for rec in pods_to_retry(blocked, allowed):
                        rec.next_at = now
                    if now >= next_report:
                        next_report = now + opts.report_interval
                        for line in format_blocked(blocked_report(blocked, statuses)):
                            self.log(f"still waiting ({now - t0:.0f}s): {line}")
                    continue
                idle = [r.next_at for r in pending if id(r) not in busy]
                wake = min([*idle, next_poll if blocked else deadline, deadline])
                done, _not_done = wait(in_flight, timeout=max(0.01, wake - now), return_when=FIRST_COMPLETED)
                for future in done:
                    rec = in_flight.pop(future)
                    rec.attempts += 1
                    self._record(rec, *future.result(), t0)
                pending = [r for r in pending if r.outcome in ("pending", "blocked")]

    def _record(self, rec: PodRecord, code: int, msg: str, body, t0: float) -> None:
        now = time.monotonic()
        if code in (200, 201):
            rec.outcome, rec.evicted_after = "evicted", round(now - t0, 3)
            rec.blocked_by = rec.blocked_by if rec.attempts > 1 else []
        elif code in (404, 409):
            # 404: already gone. 409: the UID precondition failed, i.e. a new pod took the name.
            rec.outcome, rec.evicted_after, rec.gone_after = "gone", round(now - t0, 3), round(now - t0, 3)
        elif code == 429:
            first = rec.outcome != "blocked"
            rec.outcome, rec.message = "blocked", msg
            rec.blocked_by = pdbs_from_status(body, rec.namespace) or self._matching_pdbs(rec)
            rec.next_at = now + backoff_delay(rec.attempts, self.options.backoff_initial, self.options.backoff_max)
            if first:
                self.log(f"{rec.key}: eviction refused ({', '.join(rec.blocked_by) or msg}); retrying with backoff")
        else:
            # 500 "more than one PodDisruptionBudget", 403, ...: retrying will not help.
            rec.outcome, rec.message = "failed", f"HTTP {code}: {msg}"
            self.log(f"{rec.key}: eviction failed: {rec.message}")

    def _matching_pdbs(self, rec: PodRecord) -> list[str]:
        """Fallback when the 429 names no PDB: the namespace's PDBs whose selector matches the pod."""
        if rec.namespace not in self._pdb_cache:
            resp = self.policy.list_namespaced_pod_disruption_budget(rec.namespace, _preload_content=False)
            self._pdb_cache[rec.namespace] = _json(resp).get("items", [])
        try:
            labels = _json(self.core.read_namespaced_pod(rec.name, rec.namespace, _preload_content=False))
        except Exception:  # the pod may be gone by now; nothing to report then
            return []
        labels = labels.get("metadata", {}).get("labels") or {}
        return sorted(
            f"{rec.namespace}/{p['metadata']['name']}"
            for p in self._pdb_cache[rec.namespace]
            if selector_matches(p.get("spec", {}).get("selector"), labels)
        )

    def _pdb_status(self, blocked: list[PodRecord]) -> dict[str, dict]:
        """status of the PDBs blocking these pods ("ns/name" -> status), one list call per namespace."""
        wanted = {key for r in blocked for key in r.blocked_by}
        out: dict[str, dict] = {key: {} for key in wanted}
        for ns in sorted({key.split("/", 1)[0] for key in wanted}):
            try:
                items = _json(self.policy.list_namespaced_pod_disruption_budget(ns, _preload_content=False))["items"]
            except Exception:  # best effort: the report still names the PDBs, the backoff still retries
                continue
            for pdb in items:
                key = f"{ns}/{pdb['metadata']['name']}"
                if key in wanted:
                    out[key] = pdb.get("status") or {}
        return out

    def _force_delete(self, recs: list[PodRecord], t0: float) -> None:
        from kubernetes.client.exceptions import ApiException

        grace = self.options.force_delete_grace_period
        for rec in recs:
            body = {"preconditions": {"uid": rec.uid}}
            if grace is not None:
                body["gracePeriodSeconds"] = grace
            try:
                self.core.delete_namespaced_pod(rec.name, rec.namespace, body=body, _preload_content=False)
                rec.outcome = "force_deleted"
            except ApiException as exc:
                if exc.status in (404, 409):
                    rec.outcome = "gone"
                else:
                    rec.outcome, rec.message = "failed", f"delete: HTTP {exc.status}: {status_message(exc.body)}"
                    continue
            rec.evicted_after = round(time.monotonic() - t0, 3)
            self.log(f"{rec.key}: deleted despite {', '.join(rec.blocked_by) or 'the 429'}")

    def _wait_gone(self, recs: list[PodRecord], t0: float) -> list[PodRecord]:
        """Poll the node's pods until every record's UID has disappeared; returns those still there at wait_timeout."""
        waiting = {r.uid: r for r in recs if r.gone_after is None}
        deadline = time.monotonic() + self.options.wait_timeout
        next_report = time.monotonic() + self.options.report_interval
        while waiting:
            present = {p["metadata"].get("uid") for p in self.list_pods()}
            now = time.monotonic()
            for uid in [u for u in waiting if u not in present]:
                rec = waiting.pop(uid)
                rec.gone_after = round(now - t0, 3)
                if rec.outcome == "terminating":
                    rec.outcome = "gone"
            if not waiting or now >= deadline:
                break
            if now >= next_report:
                next_report = now + self.options.report_interval
                self.log(f"waiting for {len(waiting)} pods to terminate on {self.node}")
            time.sleep(0.25)
        return sorted(waiting.values(), key=lambda r: r.key)
