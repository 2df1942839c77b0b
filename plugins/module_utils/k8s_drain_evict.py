# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Evicting pods through the Eviction API, retried as their PodDisruptionBudgets allow.

Every pod is tried at once: the API server is the authority on what a PDB
allows. A refused pod (HTTP 429) is retried as soon as the PDB that refused
it has room again - its namespace's PDBs are watched from the first refusal
on - instead of after a fixed backoff, so a drain moves at the pace the PDBs
allow. Once they are watched, a pod not tried yet whose PDB (by selector)
has no room waits for it the same way, rather than collecting a refusal.
Besides, a waiting pod is tried every ``backoff_max`` seconds regardless (a
watch can lag); a refusal whose PDB cannot be read is retried with
exponential backoff.
"""

from __future__ import annotations

from .k8s_drain_api import Answer, Evicted, PdbChanged
from .k8s_drain_model import DrainContext, PodRecord
from .k8s_drain_pdb import PdbLedger, backoff_delay, blocked_report, format_blocked, pdbs_from_status, pods_to_retry
from .k8s_drain_pods import round_robin, selector_matches


class Evictor:
    """Evicts one batch of pods of a drain."""

    def __init__(self, ctx: DrainContext):
        self.ctx = ctx
        self.api, self.options, self.clock, self.log = ctx.api, ctx.options, ctx.clock, ctx.log
        self.ledger = PdbLedger()
        self.started = 0.0  # when evict() began
        self._pdbs_of_namespace: dict[str, list[dict]] = {}

    # ---- the real thing

    def evict(self, records: list[PodRecord], deadline: float) -> None:
        """Evict until each pod is evicted, gone or failed, or DEADLINE passes (pods still refused stay "blocked")."""
        channel = self.api.channel(self.options.parallel, self.options.pdb_poll_interval)
        try:
            self._evict_until(channel, records, deadline)
        finally:
            channel.close()
        for rec in records:
            if rec.outcome == "pending":  # a batch larger than the timeout allows
                rec.outcome, rec.message = "blocked", "its eviction was not tried before the timeout"

    def _evict_until(self, channel, records: list[PodRecord], deadline: float) -> None:
        waiting = round_robin(records)  # the order of first attempts; retries follow their PDBs
        in_flight: dict[int, tuple[list[str], int]] = {}  # id(record) -> (PDBs counted against, ledger ticket)
        self.started = self.clock.monotonic()
        next_report = self.started + self.options.report_interval
        while waiting:
            now = self.clock.monotonic()
            if now < deadline:
                for rec in self._due(waiting, in_flight, now):
                    limits = self._limits(rec)
                    in_flight[id(rec)] = (limits, self.ledger.sent(limits))
                    channel.evict(rec, self.options.grace_period)
            elif not in_flight:
                break
            if now >= next_report:
                next_report = now + self.options.report_interval
                self._report(waiting, now)
            for event in channel.next_events(self._time_to_wake(waiting, in_flight, now, deadline, next_report)):
                self._take(event, channel, in_flight)
            waiting = [r for r in waiting if r.outcome in ("pending", "blocked")]

    def _take(self, event, channel, in_flight: dict) -> None:
        """One piece of news: a PDB's new status, or the API's answer to one of our requests."""
        if isinstance(event, PdbChanged):
            self.ledger.observe(event.key, event.status, event.selector)
            return
        if event.error is not None:
            raise event.error
        rec = event.rec
        rec.attempts += 1
        self._record(rec, event.answer)
        refused = rec.outcome == "blocked"
        keys, ticket = in_flight.pop(id(rec))
        self.ledger.answered(keys, ticket, accepted=rec.outcome == "evicted",
                             refused_by=rec.blocked_by if refused else [])
        if refused:  # from now on, this namespace's PDBs say when to retry
            channel.watch_pdbs(rec.namespace)

    def _limits(self, rec: PodRecord) -> list[str]:
        """The PDBs REC waits for: those that refused it, or (not tried yet) the watched ones selecting it."""
        return rec.blocked_by or self.ledger.selecting(rec.namespace, rec.labels)

    def _retry_at(self, rec: PodRecord) -> float:
        """When REC is due regardless of its PDBs' news (pods never tried and no PDB known: at once)."""
        if self.ledger.knows(self._limits(rec)):
            return (rec.refused_at if rec.attempts else self.started) + self.options.backoff_max
        return rec.next_at

    def _due(self, waiting: list[PodRecord], in_flight: dict, now: float) -> list[PodRecord]:
        """The pods to send now, at most as many as free request slots."""
        idle = [r for r in waiting if id(r) not in in_flight]
        watched = [r for r in idle if self.ledger.knows(self._limits(r))]
        # Pods whose PDB has room again go first: they are what the drain waits for.
        chosen = pods_to_retry(watched, self.ledger.allowed(), self._limits)
        picked = {id(r) for r in chosen}
        # Then the rest that is due, in WAITING's order among equals (pods never tried are due at 0).
        chosen += sorted((r for r in idle if id(r) not in picked and self._retry_at(r) <= now), key=self._retry_at)
        return chosen[: self.options.parallel - len(in_flight)]

    def _time_to_wake(self, waiting, in_flight, now, deadline, next_report) -> float:
        if now >= deadline:
            return 1.0  # only answers to the requests in flight are awaited, and they wake us
        wake = min(deadline, next_report)
        if len(in_flight) < self.options.parallel:
            wake = min([wake, *(self._retry_at(r) for r in waiting if id(r) not in in_flight)])
        return wake - now

    def _report(self, waiting: list[PodRecord], now: float) -> None:
        blocked = [r for r in waiting if r.outcome == "blocked"]
        for line in format_blocked(blocked_report(blocked, self.ledger.statuses())):
            self.log(f"still waiting ({now - self.ctx.t0:.0f}s): {line}")

    def _record(self, rec: PodRecord, answer: Answer) -> None:
        now = self.clock.monotonic()
        if answer.code in (200, 201):
            rec.outcome, rec.evicted_after = "evicted", self.ctx.since_start()
            rec.blocked_by = rec.blocked_by if rec.attempts > 1 else []
        elif answer.code in (404, 409):
            # 404: already gone. 409: the UID precondition failed, i.e. a new pod took the name.
            rec.outcome = "gone"
            rec.evicted_after = rec.gone_after = self.ctx.since_start()
        elif answer.code == 429:
            first = rec.outcome != "blocked"
            rec.outcome, rec.message, rec.refused_at = "blocked", answer.message, now
            rec.blocked_by = self.refusing_pdbs(rec, answer)
            rec.next_at = now + backoff_delay(rec.attempts, self.options.backoff_initial, self.options.backoff_max)
            if first:
                self.log(f"{rec.key}: eviction refused ({', '.join(rec.blocked_by) or answer.message}); "
                         "retrying when its PDB allows a disruption")
        else:
            # 500 "more than one PodDisruptionBudget", 403, ...: retrying will not help.
            rec.outcome, rec.message = "failed", f"HTTP {answer.code}: {answer.message}"
            self.log(f"{rec.key}: eviction failed: {rec.message}")

    def refusing_pdbs(self, rec: PodRecord, answer: Answer) -> list[str]:
        """The PDBs named by a 429, or else the namespace's PDBs whose selector matches the pod."""
        named = pdbs_from_status(answer.body, rec.namespace)
        if named:
            return named
        if rec.namespace not in self._pdbs_of_namespace:
            self._pdbs_of_namespace[rec.namespace] = self.api.list_pdbs(rec.namespace).get("items", [])
        labels = self.api.pod_labels(rec.namespace, rec.name)
        if labels is None:  # the pod is gone by now; nothing to report
            return []
        return sorted(
            f"{rec.namespace}/{p['metadata']['name']}"
            for p in self._pdbs_of_namespace[rec.namespace]
            if selector_matches(p.get("spec", {}).get("selector"), labels)
        )

    # ---- check mode

    def dry_run(self, records: list[PodRecord]) -> None:
        """Ask the API (dryRun=All) whether each pod could be evicted right now; nothing is evicted.

        Outcomes: would_evict, would_refuse (with the refusing PDBs), gone, or would_fail. Each dry run
        stands alone: a PDB allowing one disruption accepts every one of its pods' dry runs.
        """
        channel = self.api.channel(self.options.parallel, self.options.pdb_poll_interval)
        try:
            for rec in records:
                channel.evict(rec, self.options.grace_period, dry_run=True)
            unanswered = len(records)
            while unanswered:
                for event in channel.next_events(60.0):
                    if not isinstance(event, Evicted):
                        continue
                    if event.error is not None:
                        raise event.error
                    unanswered -= 1
                    self._record_dry_run(event.rec, event.answer)
        finally:
            channel.close()

    def _record_dry_run(self, rec: PodRecord, answer: Answer) -> None:
        rec.attempts += 1
        if answer.code in (200, 201):
            rec.outcome = "would_evict"
        elif answer.code in (404, 409):
            rec.outcome = "gone"
        elif answer.code == 429:
            rec.outcome, rec.message = "would_refuse", answer.message
            rec.blocked_by = self.refusing_pdbs(rec, answer)
            self.log(f"{rec.key}: eviction would be refused now ({', '.join(rec.blocked_by) or answer.message})")
        else:
            rec.outcome, rec.message = "would_fail", f"HTTP {answer.code}: {answer.message}"
            self.log(f"{rec.key}: eviction would fail: {rec.message}")


def force_delete(ctx: DrainContext, recs: list[PodRecord]) -> None:
    """on_timeout=force_delete: delete RECS directly, bypassing their PDBs."""
    for rec in recs:
        answer = ctx.api.delete_pod(rec, ctx.options.force_delete_grace_period)
        if answer.code in (200, 201, 202):
            rec.outcome = "force_deleted"
        elif answer.code in (404, 409):
            rec.outcome = "gone"
        else:
            rec.outcome, rec.message = "failed", f"delete: HTTP {answer.code}: {answer.message}"
            continue
        rec.evicted_after = ctx.since_start()
        ctx.log(f"{rec.key}: deleted despite {', '.join(rec.blocked_by) or 'the 429'}")


def pdb_statuses(api, keys: set[str]) -> dict[str, dict]:
    """Fresh status of these PDBs ("ns/name" -> status), one list per namespace; best effort."""
    out: dict[str, dict] = {key: {} for key in keys}
    for ns in sorted({key.split("/", 1)[0] for key in keys}):
        try:
            items = api.list_pdbs(ns).get("items", [])
        except Exception:  # the report still names the PDBs
            continue
        for pdb in items:
            key = f"{ns}/{pdb['metadata']['name']}"
            if key in out:
                out[key] = pdb.get("status") or {}
    return out
