# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Recovery state that outlives an AWX job: the recovery lock and each node's progress. Pure, ``now`` passed in.

The state is a ledger (ledger_store.RECOVERY: a file by hand, a ConfigMap in AWX)::

    {"version": 1,
     "lock": {"holder": "awx-job-4711", "acquired": 1764580000.0, "expires": 1764581800.0} | null,
     "nodes": {"<server>": {"cluster": "c1", "step": "drain", "status": "running" | "failed" | "done",
                            "action": "reprovision" | "replace", "attempts": 1, "first_unhealthy": 1764579000.0,
                            "started": ..., "updated": ..., "last_outcome": "...", "error": "..."}},
     "halts": {"<cluster>": {"active": false, "since": ..., "cleared": ...}},
     "failed": {"<server>": {"reason": "...", "since": ..., "replaced_by": "<server>"}},
     "maintenance": {"<server>": {"reason": "replace DIMM B2", "by": "awx-job-4712", "since": ...}}}

The lock (kured's idea, with a TTL): one recovery run per fleet at a time. A second run while the lock is
held changes nothing and says who holds it and until when; a lock whose holder died expires after its TTL
and the next run takes it over (and says so). Progress: a node's remediation walks ``STEPS`` in order; each
step is recorded before it runs, so a run that died half way is found by the next one, which resumes the node
at its recorded step (every step is idempotent). A failed step stops that node, counts an attempt and keeps
the error; past the retry limit recovery escalates to replacement.

Servers recovery gave up on are marked ``failed`` here (``mark_failed``), and every reader of the fleet
(the inventory, placement, the plan) applies the marks on top of the fleet file (``apply_marks``):
the server leaves its node group and is never handed out again until an operator clears the mark
(``clear_failed``) after the repair. The fleet file is not rewritten: the store is the one place a job
may write, and the next run of any playbook agrees. Maintenance marks work the same way
(``mark_maintenance``, ``clear_maintenance``): the maintenance job started with a reason puts the server in
state ``maintenance`` for every reader until the job ends it (docs/maintenance.md).

Every function takes the ledger dict and changes it in place (the store's ``update(mutate)`` callback shape)
and returns a decision with its reason.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from .errors import BaremetalError

LEDGER_VERSION = 1
# A node's remediation, in order (docs/recovery.md). Each step is idempotent: a resumed run repeats the
# recorded step and goes on.
# fence and replace are the replacement's (a reprovision skips them); the steps after replace run on the spare.
STEPS = ("cordon", "fence", "drain", "etcd_remove", "reset", "replace", "reprovision", "rejoin", "wait_ready",
         "uncordon", "verify")
RUNNING, FAILED, DONE = "running", "failed", "done"


class RecoveryStateError(BaremetalError):
    """The recovery state is malformed, or a call does not fit it (unknown step, no such node)."""


@dataclass(frozen=True)
class LockDecision:
    acquired: bool
    reason: str
    holder: str | None = None  # who holds it after the call
    expires: float | None = None


def empty_state():
    return {"version": LEDGER_VERSION, "lock": None, "nodes": {}, "halts": {}}


def _when(seconds):
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_state(state, source="recovery state"):
    """Raise RecoveryStateError unless ``state`` is a recovery ledger this code can read."""
    if not isinstance(state, dict) or state.get("version", LEDGER_VERSION) != LEDGER_VERSION:
        raise RecoveryStateError("not a version %d recovery state" % LEDGER_VERSION,
                                 "restore it from a backup, or delete it when no recovery is running", where=source)
    lock = state.get("lock")
    if lock is not None and not (isinstance(lock, dict) and isinstance(lock.get("holder"), str)
                                 and isinstance(lock.get("expires"), (int, float))):
        raise RecoveryStateError("the lock is malformed", "delete the lock entry when no recovery is running",
                                 where=source, path="lock")
    nodes = state.get("nodes") or {}
    if not isinstance(nodes, dict):
        raise RecoveryStateError("nodes is not a mapping", "restore it from a backup", where=source, path="nodes")
    for name, entry in nodes.items():
        if not isinstance(entry, dict) or entry.get("step") not in (*STEPS, None):
            raise RecoveryStateError("malformed entry (step %r)" % (entry.get("step") if isinstance(entry, dict)
                                                                    else entry,),
                                     "delete the node's entry when no recovery is running", where=source,
                                     path="nodes.%s" % name)
    for kind in ("failed", "maintenance"):
        marks = state.get(kind) or {}
        if not isinstance(marks, dict) or not all(isinstance(v, dict) for v in marks.values()):
            raise RecoveryStateError("%s is not a mapping of server to mark" % kind, "restore it from a backup",
                                     where=source, path=kind)
    state.setdefault("version", LEDGER_VERSION)
    state.setdefault("lock", None)
    state.setdefault("nodes", {})
    state.setdefault("halts", {})
    state.setdefault("failed", {})
    state.setdefault("maintenance", {})
    return state


# --------------------------------------------------------------------------- the lock


def acquire_lock(state, holder, *, now, ttl):
    """Take (or renew) the recovery lock for ``ttl`` seconds. Refused while another holder's lock is live."""
    if not holder:
        raise RecoveryStateError("the lock holder is empty", "name the run (e.g. the AWX job id)", path="holder")
    if not isinstance(ttl, (int, float)) or isinstance(ttl, bool) or ttl <= 0:
        raise RecoveryStateError("lock ttl %r is not a positive number of seconds" % (ttl,),
                                 "use e.g. 1800 (longer than one node's remediation)", path="ttl")
    lock = state.get("lock")
    expires = now + ttl
    if lock and lock["holder"] != holder and lock["expires"] > now:
        return LockDecision(False, "recovery is locked by %s since %s until %s; nothing was changed. Wait for it, "
                                   "or if it died, for the lock to expire"
                            % (lock["holder"], _when(lock.get("acquired", now)), _when(lock["expires"])),
                            lock["holder"], lock["expires"])
    if lock and lock["holder"] == holder:
        reason = "renewed the lock until %s" % _when(expires)
        acquired = lock.get("acquired", now)
    elif lock:
        reason = "took over the lock of %s, which expired at %s (that run died or overran its ttl)" % (
            lock["holder"], _when(lock["expires"]))
        acquired = now
    else:
        reason = "took the lock until %s" % _when(expires)
        acquired = now
    state["lock"] = {"holder": holder, "acquired": acquired, "expires": expires}
    return LockDecision(True, reason, holder, expires)


def release_lock(state, holder):
    """Give the lock back; only its holder may. Returns True when it was released."""
    lock = state.get("lock")
    if not lock or lock["holder"] != holder:
        return False
    state["lock"] = None
    return True


# --------------------------------------------------------------------------- node progress


def node_entry(state, name):
    return (state.get("nodes") or {}).get(name)


def resume_step(state, name):
    """Where a node's remediation (re)starts: its recorded step when that did not finish, else the first step.

    A ``failed`` entry resumes at the failed step too (the step is idempotent), once the retry limit allows.
    """
    entry = node_entry(state, name)
    if not entry or entry.get("status") == DONE or entry.get("step") is None:
        return STEPS[0]
    return entry["step"]


def begin_step(state, name, step, *, now, cluster=None, first_unhealthy=None, action=None):
    """Record that ``step`` of ``name`` is about to run (before it runs, so a dead run is found later).

    A node that is not running already (new, done, or failed last time) starts a new attempt; a running one
    (its last run died) goes on with the same attempt.
    """
    if step not in STEPS:
        raise RecoveryStateError("unknown step %r" % (step,), "use one of: %s" % ", ".join(STEPS), path="step")
    nodes = state.setdefault("nodes", {})
    entry = nodes.setdefault(name, {"attempts": 0})
    if entry.get("status") != RUNNING:
        entry["attempts"] = entry.get("attempts", 0) + 1
        entry["started"] = now
        entry.pop("error", None)
    if cluster is not None:
        entry["cluster"] = cluster
    if action is not None:  # reprovision or replace: a resumed run goes on with the same action
        entry["action"] = action
    if first_unhealthy is not None and entry.get("first_unhealthy") is None:
        entry["first_unhealthy"] = first_unhealthy
    entry.update(step=step, status=RUNNING, updated=now)
    return entry


def fail_step(state, name, step, error, *, now):
    """The step failed: the node stays where it stopped (cordoned), the error is kept for the next run."""
    entry = _existing(state, name)
    entry.update(step=step, status=FAILED, updated=now, error=str(error),
                 last_outcome="failed at %s: %s" % (step, error))
    return entry


def finish(state, name, *, now, outcome="recovered"):
    """The whole remediation finished (verified): the node is done; its attempts stay for the record."""
    entry = _existing(state, name)
    entry.update(step=None, status=DONE, updated=now, last_outcome=outcome)
    entry.pop("error", None)
    entry.pop("action", None)
    entry.pop("first_unhealthy", None)
    return entry


def _existing(state, name):
    entry = node_entry(state, name)
    if entry is None:
        raise RecoveryStateError("no recovery is recorded for %s" % name, "begin a step first", path="nodes")
    return entry


def in_flight(state):
    """Nodes whose remediation started and did not finish (running or failed), as the policy's ``in_flight``."""
    return sorted(name for name, entry in (state.get("nodes") or {}).items()
                  if entry.get("status") in (RUNNING, FAILED))


def past_retry_limit(state, name, retry_limit):
    """True when the node failed ``retry_limit`` attempts: recovery escalates to replacement."""
    entry = node_entry(state, name)
    return bool(entry) and entry.get("status") == FAILED and entry.get("attempts", 0) >= retry_limit


# --------------------------------------------------------------------------- servers given up on


def mark_failed(state, name, reason, *, now, replaced_by=None):
    """Mark server NAME failed (recovery replaced it, or cannot); returns whether the mark is new or changed."""
    failed = state.setdefault("failed", {})
    mark = {"reason": str(reason), "since": (failed.get(name) or {}).get("since", now)}
    if replaced_by:
        mark["replaced_by"] = replaced_by
    changed = failed.get(name) != mark
    failed[name] = mark
    return changed


def clear_failed(state, name):
    """An operator repaired server NAME: it may serve again (placement hands it out as any free server)."""
    return (state.get("failed") or {}).pop(name, None) is not None


def failed_servers(state):
    """Server name -> its failed mark."""
    return dict(state.get("failed") or {})


def mark_maintenance(state, name, reason, *, now, by):
    """Put server NAME in maintenance for REASON (the maintenance job); returns whether the mark is new or changed."""
    if not str(reason or "").strip():
        raise RecoveryStateError("a maintenance mark needs a reason", "say why, e.g. reason='replace DIMM B2, "
                                 "ticket OPS-123' (it is recorded on the Node)", path="reason")
    marks = state.setdefault("maintenance", {})
    old = marks.get(name) or {}
    mark = {"reason": str(reason).strip(), "by": str(by), "since": old.get("since", now)}
    if old.get("reason") == mark["reason"]:
        mark["by"] = old.get("by", mark["by"])  # the same maintenance, started again: keep who started it
    changed = old != mark
    marks[name] = mark
    return changed


def clear_maintenance(state, name):
    """The maintenance of server NAME is over: it is back to its fleet-file state for every reader."""
    return (state.get("maintenance") or {}).pop(name, None) is not None


def maintenance_marks(state):
    """Server name -> its maintenance mark."""
    return dict(state.get("maintenance") or {})


def apply_marks(fleet, state):
    """Apply the recovery state's marks to FLEET (in place), as the fleet file would say them.

    A server marked failed gets the lifecycle state ``failed``; one marked for maintenance (and not failed)
    gets ``maintenance`` with the mark's reason as its ``state_reason``. Returns a warning for each mark of
    a server the fleet file does not have (left alone).
    """
    import dataclasses

    warnings = []
    for kind, marks, clear in (("failed", failed_servers(state), "clear_failed"),
                               ("maintenance", maintenance_marks(state), "clear_maintenance")):
        for name in sorted(marks):
            server = fleet.servers.get(name)
            if server is None:
                warnings.append("recovery state: %s is marked %s but the fleet file has no such server; "
                                "clear the mark (recovery_state action=%s)" % (name, kind, clear))
            elif kind == "failed" and server.state != "failed":
                fleet.servers[name] = dataclasses.replace(server, state="failed")
            elif kind == "maintenance" and server.state not in ("failed", "retired"):
                fleet.servers[name] = dataclasses.replace(server, state="maintenance",
                                                          state_reason=marks[name].get("reason", ""))
    return warnings
