# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The recovery job's decision: what to do with each unhealthy node now. Pure, ``now`` passed in.

Inputs, each from its own module:

- the fleet (lifecycle state, deletion protection, failure domain, roles; placed members applied);
- health verdicts (node_health.py: ``record`` fields and ``category`` per member);
- the recovery state (recovery_state.py: what is in flight, attempts, when a node was first seen unhealthy,
  when a cluster's halt cleared);
- etcd state per cluster (``remediation.EtcdState``) for control planes;
- the policy: remediation's limits plus ``retry_limit`` and ``halt_cooldown``.

Output: the remediation plan (remediation.plan_remediation's buckets, each entry with its reason), an action
per node to act on (``reprovision`` or ``replace``), and the halt transitions to record. A node is replaced
instead of reprovisioned when it failed ``retry_limit`` attempts, or when its host does not answer at all (the
host is gone, or partitioned: the job must fence it before its workloads move; docs/recovery.md). After a halt
clears, new remediations wait ``halt_cooldown`` seconds (medik8s' storm recovery): a cluster that just came
out of a partition settles before nodes are taken away from it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from . import recovery_state
from .errors import BaremetalError
from .etcd_quorum import Member
from .remediation import Entry, EtcdState, Plan, Policy, node_from_dict, plan_remediation, policy_from_dict

REPROVISION, REPLACE = "reprovision", "replace"
# Health categories that mean the host itself does not answer (node_health.CATEGORIES).
HOST_GONE = ("host_unreachable",)
# A member not registered within the startup timeout is still being provisioned (Cluster API semantics).
STARTING = "starting"


class RecoveryPlanError(BaremetalError):
    """Bad input to the recovery plan (a field and its fix)."""


@dataclass(frozen=True)
class RecoveryPolicy:
    """remediation.Policy plus what the recovery job adds: retries before replacement, a cooldown after a halt."""

    limits: Policy = dataclasses.field(default_factory=Policy)
    retry_limit: int = 3
    halt_cooldown: int = 600

    def as_dict(self) -> dict:
        return dict(self.limits.as_dict(), retry_limit=self.retry_limit, halt_cooldown=self.halt_cooldown)


def recovery_policy_from_dict(data) -> RecoveryPolicy:
    """A RecoveryPolicy from module parameters; every bad value names its field and the fix."""
    if not isinstance(data or {}, dict):
        raise RecoveryPlanError("expected a mapping, got %s" % type(data).__name__,
                                "write grace_period, max_unhealthy, max_concurrent, failure_domain, retry_limit, "
                                "halt_cooldown", where="policy")
    data = dict(data or {})
    extra = {key: data.pop(key) for key in ("retry_limit", "halt_cooldown") if key in data}
    for key, value in extra.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < (1 if key == "retry_limit" else 0):
            low = 1 if key == "retry_limit" else 0
            raise RecoveryPlanError("%r is not a whole number >= %d" % (value, low),
                                    "write e.g. %s" % ("3" if key == "retry_limit" else "600 (seconds)"),
                                    where="policy", path=key)
    return RecoveryPolicy(policy_from_dict(data), **extra)


@dataclass(frozen=True)
class Action:
    """A node the job acts on now: its plan entry, the action, and where to (re)start."""

    entry: Entry
    action: str  # reprovision or replace
    why: str
    resume_at: str  # the step to (re)start at
    attempt: int  # the attempt this run makes

    def as_dict(self) -> dict:
        return dict(self.entry.as_dict(), action=self.action, why=self.why, resume_at=self.resume_at,
                    attempt=self.attempt)


@dataclass(frozen=True)
class RecoveryPlan:
    plan: Plan
    actions: tuple[Action, ...]  # in_progress first (finish what was started), then remediate, in order
    halts_started: tuple[str, ...]  # clusters halted now that were not before: record the time
    halts_cleared: tuple[str, ...]  # clusters no longer halted: record the time, the cooldown starts
    policy: RecoveryPolicy

    def as_dict(self) -> dict:
        result = self.plan.as_dict()
        result.update(actions=[a.as_dict() for a in self.actions], halts_started=list(self.halts_started),
                      halts_cleared=list(self.halts_cleared), policy=self.policy.as_dict())
        result["summary"] = self.summary()
        return result

    def summary(self) -> str:
        counts = {}
        for action in self.actions:
            counts[action.action] = counts.get(action.action, 0) + 1
        acting = ", ".join("%d to %s" % (n, a) for a, n in sorted(counts.items())) or "nothing to do"
        return "%s; %s" % (acting, self.plan.summary())


def fleet_members(fleet, cluster=None):
    """``members`` for plan_recovery (and maintenance.py) from a ``fleet.Fleet`` (placed members and marks
    applied): every Kubernetes node."""
    result = {}
    for name, server in fleet.servers.items():
        owner = fleet.cluster_of(name)
        if owner is None or (cluster is not None and owner.name != cluster):
            continue
        result[name] = {"cluster": owner.name, "failure_domain": server.location.failure_domain,
                        "roles": owner.roles_of(name), "state": server.state, "state_reason": server.state_reason,
                        "protected": server.protection.deletion, "protection_reason": server.protection.reason or ""}
    return result


def etcd_state_from_info(info, where="etcd"):
    """``remediation.EtcdState`` from the result of the etcd_info module (its ``members``)."""
    members = (info or {}).get("members") if isinstance(info, dict) else None
    if not isinstance(members, list):
        raise RecoveryPlanError("expected the result of baremetal.k8s.etcd_info (with members)",
                                "register etcd_info's result and pass it here", where=where)
    parsed, healthy = [], {}
    for index, raw in enumerate(members):
        if not isinstance(raw, dict) or not raw.get("id"):
            raise RecoveryPlanError("member without an id", "pass etcd_info's members unchanged",
                                    where=where, path="members[%d]" % index)
        parsed.append(Member(str(raw["id"]), raw.get("name") or "", tuple(raw.get("peer_urls") or ()),
                             tuple(raw.get("client_urls") or ()), bool(raw.get("is_learner"))))
        healthy[str(raw["id"])] = bool(raw.get("healthy"))
    return EtcdState(tuple(parsed), healthy)


def member_verdicts(members, verdicts, error=RecoveryPlanError):
    """(name, verdict) for each of node_health's VERDICTS, in order; a verdict of no member of MEMBERS is
    refused (ERROR) with its index."""
    result = []
    for index, verdict in enumerate(verdicts):
        name = verdict.get("name") if isinstance(verdict, dict) else None
        if name not in members:
            raise error("health verdict %r is not a member of the fleet's clusters" % (name,),
                        "pass the node_health result of the same fleet (its nodes list)",
                        where="health", path="[%d]" % index)
        result.append((name, verdict))
    return result


def records(members, verdicts, state):
    """remediation.NodeRecords: the fleet's view of each member (``members``: name -> {cluster, failure_domain,
    state, protected}) joined with its health verdict and the recovery state."""
    in_flight = set(recovery_state.in_flight(state))
    result = []
    for index, (name, verdict) in enumerate(member_verdicts(members, verdicts)):
        fleet = members[name]
        record = dict(verdict.get("record") or {}, name=name, cluster=fleet["cluster"],
                      failure_domain=fleet["failure_domain"], protected=fleet["protected"],
                      protection_reason=fleet.get("protection_reason", ""),
                      in_flight=name in in_flight,
                      state="provisioning" if verdict.get("category") == STARTING else fleet["state"])
        first_seen = (recovery_state.node_entry(state, name) or {}).get("first_unhealthy")
        if record.get("unhealthy_since") is None and first_seen is not None and not verdict.get("healthy", False):
            record["unhealthy_since"] = first_seen  # probes carry no time: when this job first saw it
        result.append(node_from_dict(record, "health[%d]" % index))
    return result


def plan_recovery(members, verdicts, state, policy=None, *, now, etcd=None, clusters=None) -> RecoveryPlan:
    policy = policy or RecoveryPolicy()
    nodes = records(members, verdicts, state)
    plan = plan_remediation(nodes, policy.limits, now=now, etcd=etcd, clusters=clusters)
    plan, halts_started, halts_cleared = _storm_recovery(plan, state, policy, now)
    category = {v["name"]: v.get("category") for v in verdicts}
    actions = []
    for entry in (*plan.in_progress, *plan.remediate):
        actions.append(_action(entry, category.get(entry.node), state, policy))
    return RecoveryPlan(plan, tuple(actions), halts_started, halts_cleared, policy)


def _action(entry, category, state, policy):
    node = recovery_state.node_entry(state, entry.node) or {}
    attempts = node.get("attempts", 0)
    running = node.get("status") == recovery_state.RUNNING
    attempt = attempts if running else attempts + 1
    resume_at = recovery_state.resume_step(state, entry.node)
    if node.get("action") == REPLACE:
        return Action(entry, REPLACE, node.get("why", "replacement already started"), resume_at, attempt)
    if recovery_state.past_retry_limit(state, entry.node, policy.retry_limit):
        why = "failed %d of retry_limit %d attempts (last: %s): replace it with a spare" % (
            attempts, policy.retry_limit, node.get("last_outcome", "?"))
        return Action(entry, REPLACE, why, recovery_state.STEPS[0], attempt)
    if category in HOST_GONE:
        return Action(entry, REPLACE, "its host does not answer: reprovisioning needs the host; fence it, then "
                      "replace it with a spare", recovery_state.STEPS[0], attempt)
    if running or node.get("status") == recovery_state.FAILED:
        why = "resume attempt %d at step %s" % (attempt, resume_at)
    else:
        why = "attempt %d of retry_limit %d" % (attempt, policy.retry_limit)
    return Action(entry, REPROVISION, why, resume_at, attempt)


def _storm_recovery(plan, state, policy, now):
    """Hold new remediations for ``halt_cooldown`` seconds after a cluster's halt cleared."""
    halts = state.get("halts") or {}
    halted_now = {h.cluster for h in plan.halts}
    started = tuple(sorted(c for c in halted_now if not (halts.get(c) or {}).get("active")))
    cleared = tuple(sorted(c for c, h in halts.items() if (h or {}).get("active") and c not in halted_now))
    ended = {}  # cluster -> when its halt cleared, while the cooldown lasts
    for cluster, halt in halts.items():
        at = now if cluster in cleared else (halt or {}).get("cleared")
        if cluster not in halted_now and at is not None and now - at < policy.halt_cooldown:
            ended[cluster] = at
    if not ended:
        return plan, started, cleared
    remediate, deferred = [], list(plan.deferred)
    for entry in plan.remediate:
        if entry.cluster in ended:
            since = now - ended[entry.cluster]
            deferred.append(dataclasses.replace(entry, reason="storm recovery: cluster %s came out of a halt %d s "
                                                "ago; new remediations wait halt_cooldown %d s (%d s to go)"
                                                % (entry.cluster, since, policy.halt_cooldown,
                                                   policy.halt_cooldown - since)))
        else:
            remediate.append(entry)
    return dataclasses.replace(plan, remediate=tuple(remediate), deferred=tuple(deferred)), started, cleared


def record_halts(state, plan, *, now):
    """Write the plan's halt transitions into the recovery state (the store's mutate shape)."""
    halts = state.setdefault("halts", {})
    for cluster in plan.halts_started:
        halts[cluster] = {"active": True, "since": now, "cleared": None}
    for cluster in plan.halts_cleared:
        halts[cluster] = dict(halts.get(cluster) or {}, active=False, cleared=now)
    return bool(plan.halts_started or plan.halts_cleared)
