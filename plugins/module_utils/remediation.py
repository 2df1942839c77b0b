# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which unhealthy nodes may be remediated now? Pure policy, no I/O, no clock.

Remediation is drain-and-redeploy: drain the node, take it out of etcd,
``kubeadm reset``, reprovision, rejoin, uncordon. It takes a node away for a
while, so the plan limits the blast radius (docs/remediation.md has the rules
and a table of examples):

* an unhealthy node waits ``grace_period`` seconds first (a reboot, a kubelet
  restart, a flapping link heal on their own);
* protected nodes, nodes whose lifecycle state is not ``active`` and nodes of
  no known cluster are refused;
* when more nodes of a cluster are unhealthy than ``max_unhealthy`` (a count
  or a percentage, Cluster API MachineHealthCheck semantics), nothing new is
  remediated there: something systemic (a partition, a switch, a bad rollout)
  is likelier than that many broken servers, and reprovisioning would make it
  worse;
* at most ``max_concurrent`` remediations per cluster, counting those already
  in flight, all in one failure domain (``failure_domain`` level: rack by
  default) at a time;
* one control plane (or etcd node) at a time, only when another control plane
  is healthy to do the API and etcd work, and only when removing its etcd
  member keeps quorum (``etcd_quorum.check_remove``).

Entry point: ``plan_remediation(nodes, policy, now=..., etcd=..., clusters=...)``
returns a ``Plan`` whose buckets hold every unhealthy or in-flight node exactly
once: ``remediate`` (start now, in this order), ``in_progress``, ``waiting``,
``deferred`` (a limit holds it back; a later run picks it up) and ``refused``
(an operator has to change something), plus the clusters where remediation is
``halted``. ``node_from_dict``/``policy_from_dict`` read module parameters;
``records_from_fleet`` builds the records from the fleet and live node state.
Bad input raises ``RemediationError`` naming the field and the fix.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import re
from dataclasses import dataclass, field

from .errors import BaremetalError
from .etcd_quorum import Member, check_remove, find_member
from .vocabulary import COUNTED_STATES, FAILURE_DOMAIN_LEVELS, NODE_ROLES, REMEDIABLE_STATES

ROLES = NODE_ROLES
DOMAIN_LEVELS = tuple(reversed(FAILURE_DOMAIN_LEVELS))  # a failure domain path, large to small
STATE_REFUSALS = {
    "maintenance": "it is in maintenance (someone is working on it); set state: active to let it be remediated",
    "failed": "it is marked failed (broken hardware): reprovisioning it would not help, placement replaces it "
    "(node group replace:, docs/placement.md)",
    "retired": "it is retired: it is leaving the cluster, not coming back",
    "spare": "it is a spare: it serves no cluster",
    "provisioning": "it is still being provisioned: not in service yet",
}
PERCENT_RE = re.compile(r"^(\d{1,3})%$")


class RemediationError(BaremetalError, ValueError):
    """Bad input to the policy. The message reads ``FIELD: PROBLEM. Fix: FIX``."""

    def __init__(self, field_path, problem, fix):
        self.field = field_path
        super().__init__(problem, fix, where=field_path)


# --------------------------------------------------------------------------- input


@dataclass(frozen=True)
class NodeRecord:
    """One node as the policy sees it.

    ``ready``: the Node's Ready condition (True, False, None = Unknown or no
    Node at all). A node is unhealthy when it is not Ready or when ``reasons``
    (what the health checks found) is not empty. ``unhealthy_since``: when it
    was first seen unhealthy, seconds since the epoch or an ISO 8601 time (the
    Ready condition's lastTransitionTime); None = not known, the node waits.
    ``failure_domain``: ``region/datacenter/row/rack`` (fleet
    ``Location.failure_domain``). ``in_flight``: a remediation of it is
    running already.
    """

    name: str
    cluster: str | None
    roles: tuple[str, ...]
    failure_domain: str
    ready: bool | None = True
    unhealthy_since: float | str | None = None
    reasons: tuple[str, ...] = ()
    state: str = "active"
    protected: bool = False
    in_flight: bool = False
    protection_reason: str = ""  # the fleet file's protection.reason, said back in the refusal

    @property
    def healthy(self) -> bool:
        return self.ready is True and not self.reasons

    @property
    def is_control_plane(self) -> bool:
        """Control planes and etcd nodes: remediated one at a time, never at the cost of quorum."""
        return "control_plane" in self.roles or "etcd" in self.roles

    def symptom(self) -> str:
        """``NotReady (KubeletNotReady)``: how messages describe what is wrong."""
        ready = {True: "Ready", False: "NotReady", None: "Ready unknown"}[self.ready]
        if self.ready is True:
            ready = "Ready but failing health checks"
        return "%s (%s)" % (ready, ", ".join(self.reasons)) if self.reasons else ready


@dataclass(frozen=True)
class EtcdState:
    """A cluster's etcd members and their health (``etcd_info``'s members, ``healthy`` by member id)."""

    members: tuple[Member, ...]
    healthy: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Policy:
    """The limits. Defaults: 300 s grace, 40% max unhealthy, 1 at a time, one rack at a time."""

    grace_period: int = 300
    max_unhealthy: int | str = "40%"
    max_concurrent: int = 1
    failure_domain: str = "rack"

    def __post_init__(self):
        _check_int(self.grace_period, "policy.grace_period", 0, "write a number of seconds, e.g. 300")
        _check_int(self.max_concurrent, "policy.max_concurrent", 1, "write how many nodes of a cluster may be "
                   "remediated at once, at least 1")
        if self.failure_domain not in DOMAIN_LEVELS:
            raise RemediationError("policy.failure_domain", "invalid value %r" % (self.failure_domain,),
                                   "use one of: %s" % ", ".join(DOMAIN_LEVELS))
        _parse_max_unhealthy(self.max_unhealthy)

    def max_unhealthy_of(self, total: int) -> int:
        """How many of TOTAL nodes may be unhealthy (a percentage is rounded down, as Cluster API does)."""
        percent = _parse_max_unhealthy(self.max_unhealthy)
        if percent is None:
            return self.max_unhealthy
        return math.floor(total * percent / 100)

    def domain_of(self, path: str) -> str:
        """The failure domain of a node at the policy's level: ``eu/ams1/r1`` for row."""
        return "/".join(path.split("/")[: DOMAIN_LEVELS.index(self.failure_domain) + 1])

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def _check_int(value, path, low, fix):
    if not isinstance(value, int) or isinstance(value, bool):
        raise RemediationError(path, "expected a whole number, got %r" % (value,), fix)
    if value < low:
        raise RemediationError(path, "%d is below %d" % (value, low), fix)


def _parse_max_unhealthy(value):
    """None for a count, the percentage (0-100) for ``"40%"``."""
    fix = 'write a count (e.g. 2) or a percentage of the cluster\'s nodes (e.g. "40%")'
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise RemediationError("policy.max_unhealthy", "%d is negative" % value, fix)
        return None
    match = PERCENT_RE.match(value) if isinstance(value, str) else None
    if not match or int(match.group(1)) > 100:
        raise RemediationError("policy.max_unhealthy", "invalid value %r" % (value,), fix)
    return int(match.group(1))


def _timestamp(value, path):
    """Seconds since the epoch from a number, a datetime or an ISO 8601 string (``Z`` allowed)."""
    if isinstance(value, bool):
        value = None  # fall through to the error
    elif isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    elif isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return value.timestamp()
    elif isinstance(value, str):
        try:
            parsed = datetime.datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is not None:
            return _timestamp(parsed, path)
    raise RemediationError(path, "expected a time, got %r" % (value,),
                           'write seconds since the epoch or an ISO 8601 time like "2026-01-31T12:00:00Z"')


def _check_node(node, path):
    """Validate one record; return it with unhealthy_since as epoch seconds and tuples for lists."""
    if not isinstance(node, NodeRecord):
        raise RemediationError(path, "expected a NodeRecord, got %s" % type(node).__name__,
                               "build it with NodeRecord(...) or node_from_dict()")
    if not isinstance(node.name, str) or not node.name:
        raise RemediationError(path + ".name", "expected a non-empty string, got %r" % (node.name,),
                               "give the node's name")
    path = "%s (%s)" % (path, node.name)
    if node.cluster is not None and not isinstance(node.cluster, str):
        raise RemediationError(path + ".cluster", "expected a cluster name, got %r" % (node.cluster,),
                               "give the cluster's name, or null for a node of no cluster")
    roles = node.roles
    if isinstance(roles, str) or not isinstance(roles, (list, tuple)) or not roles:
        raise RemediationError(path + ".roles", "expected a non-empty list of roles, got %r" % (roles,),
                               "list some of: %s" % ", ".join(ROLES))
    for role in roles:
        if role not in ROLES:
            raise RemediationError(path + ".roles", "unknown role %r" % (role,),
                                   "use some of: %s (load balancers are not Kubernetes nodes)" % ", ".join(ROLES))
    parts = node.failure_domain.split("/") if isinstance(node.failure_domain, str) else []
    if len(parts) != len(DOMAIN_LEVELS) or not all(parts):
        raise RemediationError(path + ".failure_domain", "expected region/datacenter/row/rack, got %r"
                               % (node.failure_domain,), "write the four names joined by '/', e.g. "
                               "eu-west/ams1/r1/a01 (fleet Location.failure_domain)")
    if not (node.ready is None or isinstance(node.ready, bool)):
        raise RemediationError(path + ".ready", "expected true, false or null, got %r" % (node.ready,),
                               "use the Ready condition: true, false, or null when Unknown or unregistered")
    reasons = node.reasons
    if isinstance(reasons, str) or not isinstance(reasons, (list, tuple)) or not all(
            isinstance(r, str) and r for r in reasons):
        raise RemediationError(path + ".reasons", "expected a list of non-empty strings, got %r" % (reasons,),
                               "list what the health checks found, e.g. [KubeletNotReady]")
    if node.state not in REMEDIABLE_STATES and node.state not in STATE_REFUSALS:
        raise RemediationError(path + ".state", "invalid lifecycle state %r" % (node.state,),
                               "use one of: %s" % ", ".join(("active", *STATE_REFUSALS)))
    for flag in ("protected", "in_flight"):
        if not isinstance(getattr(node, flag), bool):
            raise RemediationError("%s.%s" % (path, flag), "expected true or false, got %r"
                                   % (getattr(node, flag),), "write true or false")
    since = node.unhealthy_since
    if since is not None:
        since = _timestamp(since, path + ".unhealthy_since")
    return dataclasses.replace(node, roles=tuple(roles), reasons=tuple(reasons), unhealthy_since=since)


def node_from_dict(data, path="nodes[0]") -> NodeRecord:
    """A NodeRecord from a mapping (module parameters, JSON); unknown keys are an error."""
    known = {f.name for f in dataclasses.fields(NodeRecord)}
    if not isinstance(data, dict):
        raise RemediationError(path, "expected a mapping, got %s" % type(data).__name__,
                               "write the node as name: ..., cluster: ..., roles: [...], failure_domain: ...")
    unknown = sorted(set(data) - known, key=str)
    if unknown:
        raise RemediationError("%s.%s" % (path, unknown[0]), "unknown field", "use some of: %s" % ", ".join(
            f.name for f in dataclasses.fields(NodeRecord)))
    for key in ("name", "cluster", "roles", "failure_domain"):
        if key not in data:
            raise RemediationError("%s.%s" % (path, key), "required field is missing", "add %s" % key)
    values = dict(data)
    for key in ("roles", "reasons"):
        if isinstance(values.get(key), list):
            values[key] = tuple(values[key])
    return _check_node(NodeRecord(**values), path)


def policy_from_dict(data) -> Policy:
    """A Policy from a mapping; missing keys take the defaults."""
    data = data or {}
    known = {f.name for f in dataclasses.fields(Policy)}
    if not isinstance(data, dict):
        raise RemediationError("policy", "expected a mapping, got %s" % type(data).__name__,
                               "write grace_period, max_unhealthy, max_concurrent, failure_domain")
    unknown = sorted(set(data) - known, key=str)
    if unknown:
        raise RemediationError("policy.%s" % unknown[0], "unknown field", "use some of: %s" % ", ".join(sorted(known)))
    return Policy(**{k: v for k, v in data.items() if v is not None})


# --------------------------------------------------------------------------- output


@dataclass(frozen=True)
class Entry:
    """One node in one bucket of the plan, with why it is there."""

    node: str
    cluster: str | None
    reason: str
    failure_domain: str = ""  # at the policy's level
    roles: tuple[str, ...] = ()
    unhealthy_for: float | None = None  # seconds; None when healthy or not known

    def as_dict(self) -> dict:
        return {"node": self.node, "cluster": self.cluster, "reason": self.reason,
                "failure_domain": self.failure_domain, "roles": list(self.roles),
                "unhealthy_for": self.unhealthy_for}


@dataclass(frozen=True)
class Halt:
    """Remediation halted in a cluster: more nodes unhealthy than max_unhealthy."""

    cluster: str
    reason: str
    unhealthy: int
    nodes: int
    max_unhealthy: int

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Plan:
    remediate: tuple[Entry, ...]  # start these now, in this order (one at a time in the playbook)
    in_progress: tuple[Entry, ...]  # already being remediated
    waiting: tuple[Entry, ...]  # grace period not over
    deferred: tuple[Entry, ...]  # held back by a limit; a later run picks them up
    refused: tuple[Entry, ...]  # never remediated until an operator changes something
    halts: tuple[Halt, ...]  # clusters where max_unhealthy is exceeded
    policy: Policy

    @property
    def halted(self) -> bool:
        return bool(self.halts)

    @property
    def halted_reason(self) -> str:
        return "; ".join(h.reason for h in self.halts)

    def buckets(self) -> dict:
        return {"remediate": self.remediate, "in_progress": self.in_progress, "waiting": self.waiting,
                "deferred": self.deferred, "refused": self.refused}

    def summary(self) -> str:
        counts = ", ".join("%d %s" % (len(v), k.replace("_", " ")) for k, v in self.buckets().items())
        return counts + ("; halted: " + self.halted_reason if self.halted else "")

    def as_dict(self) -> dict:
        result = {name: [e.as_dict() for e in entries] for name, entries in self.buckets().items()}
        result.update({"halted": self.halted, "halted_reason": self.halted_reason,
                       "halted_clusters": [h.as_dict() for h in self.halts],
                       "summary": self.summary(), "policy": self.policy.as_dict()})
        return result


# --------------------------------------------------------------------------- the policy


def plan_remediation(nodes, policy=None, *, now, etcd=None, clusters=None) -> Plan:
    """The remediation plan for NODES (NodeRecords of any number of clusters) at time NOW.

    ``etcd``: ``{cluster: EtcdState}``, needed before an etcd node can be
    remediated. ``clusters``: the known cluster names; when given, a node of
    another cluster is refused. ``now``: seconds since the epoch (or ISO 8601).
    """
    policy = Policy() if policy is None else policy
    if not isinstance(policy, Policy):
        raise RemediationError("policy", "expected a Policy, got %s" % type(policy).__name__,
                               "build it with Policy(...) or policy_from_dict()")
    now = _timestamp(now, "now")
    etcd = dict(etcd or {})
    checked, seen = [], {}
    for index, raw in enumerate(nodes):
        node = _check_node(raw, "nodes[%d]" % index)
        if node.name in seen:
            raise RemediationError("nodes[%d].name" % index, "node %s is listed twice (also nodes[%d])"
                                   % (node.name, seen[node.name]), "list every node once")
        seen[node.name] = index
        checked.append(node)
    for name, state in etcd.items():
        if not isinstance(state, EtcdState):
            raise RemediationError("etcd.%s" % name, "expected an EtcdState, got %s" % type(state).__name__,
                                   "build it with EtcdState(members, healthy) from etcd_info's members")
    known = None if clusters is None else set(clusters)

    buckets = {"remediate": [], "in_progress": [], "waiting": [], "deferred": [], "refused": []}
    halts = []
    by_cluster = {}
    for node in checked:
        if not node.cluster or (known is not None and node.cluster not in known):
            if node.in_flight or not node.healthy:
                why = ("it serves no cluster" if not node.cluster else
                       "cluster %s is not a known cluster (known: %s)" % (node.cluster, ", ".join(sorted(known))
                                                                          or "none"))
                buckets["refused"].append(_entry(node, policy, now, "%s; fix the node's cluster" % why))
            continue
        by_cluster.setdefault(node.cluster, []).append(node)
    for name in sorted(by_cluster):
        halt = _plan_cluster(name, by_cluster[name], policy, now, etcd=etcd.get(name), buckets=buckets)
        if halt:
            halts.append(halt)
    for entries in buckets.values():
        entries.sort(key=_entry_order)  # longest unhealthy first across clusters, then by name
    return Plan(**{k: tuple(v) for k, v in buckets.items()}, halts=tuple(halts), policy=policy)


def _unhealthy_for(node, now):
    if node.healthy or node.unhealthy_since is None:
        return None
    return max(now - node.unhealthy_since, 0.0)


def _entry(node, policy, now, reason):
    return Entry(node.name, node.cluster, reason, policy.domain_of(node.failure_domain), node.roles,
                 _unhealthy_for(node, now))


def _entry_order(entry):
    """Longest unhealthy first; unknown durations last; then by name (unique: a total order)."""
    return (entry.unhealthy_for is None, -(entry.unhealthy_for or 0.0), entry.node)


def _names(nodes):
    return ", ".join(sorted(n.name for n in nodes))


def _plan_cluster(cluster, nodes, policy, now, *, etcd, buckets):
    counted = [n for n in nodes if n.state in COUNTED_STATES]
    unhealthy = [n for n in counted if not n.healthy]
    limit = policy.max_unhealthy_of(len(counted))
    halt = None
    if len(unhealthy) > limit:
        shown = "max_unhealthy %d" % limit
        if isinstance(policy.max_unhealthy, str):
            shown += " (%s)" % policy.max_unhealthy
        halt = Halt(cluster, "cluster %s: %d of %d nodes unhealthy exceeds %s: something systemic (a network "
                    "partition, a switch, a power feed, a bad rollout) is likelier than %d broken servers; nothing "
                    "new is remediated until at most %d are unhealthy (%s)"
                    % (cluster, len(unhealthy), len(counted), shown, len(unhealthy), limit, _names(unhealthy)),
                    len(unhealthy), len(counted), limit)

    in_flight = [n for n in nodes if n.in_flight]
    for node in in_flight:
        buckets["in_progress"].append(_entry(node, policy, now, "a remediation of it is in progress (%s)"
                                             % node.symptom()))
    candidates = []
    for node in nodes:
        if node.in_flight or node.healthy:
            continue
        refusal = _refusal(node, nodes)
        duration = _unhealthy_for(node, now)
        if refusal:
            buckets["refused"].append(_entry(node, policy, now, refusal))
        elif duration is None:
            buckets["waiting"].append(_entry(node, policy, now, "%s since an unknown time: the grace period of "
                                             "%d s counts from when it was first seen unhealthy; pass "
                                             "unhealthy_since" % (node.symptom(), policy.grace_period)))
        elif duration < policy.grace_period:
            buckets["waiting"].append(_entry(node, policy, now, "%s for %d s, within the grace period of %d s "
                                             "(%d s to go)" % (node.symptom(), duration, policy.grace_period,
                                                               math.ceil(policy.grace_period - duration))))
        elif halt:
            buckets["deferred"].append(_entry(node, policy, now, "remediation halted: " + halt.reason))
        else:
            candidates.append(node)
    candidates.sort(key=lambda n: (-_unhealthy_for(n, now), n.name))

    picked = []
    for node in candidates:
        why, etcd_note = _held_back(node, nodes, in_flight + picked, policy, etcd)
        if why:
            buckets["deferred"].append(_entry(node, policy, now, why))
            continue
        picked.append(node)
        reason = "%s for %d s, past the grace period of %d s; remediation %d of max_concurrent %d in cluster %s, " \
                 "%s %s" % (node.symptom(), _unhealthy_for(node, now), policy.grace_period,
                            len(in_flight) + len(picked), policy.max_concurrent, cluster, policy.failure_domain,
                            policy.domain_of(node.failure_domain))
        if etcd_note:
            reason += "; etcd: " + etcd_note
        buckets["remediate"].append(_entry(node, policy, now, reason))
    return halt


def _refusal(node, nodes):
    """Why NODE may never be remediated as things stand (an operator has to act), or None."""
    if node.protected:
        why = " (%s)" % node.protection_reason if node.protection_reason else ""
        return "it is protected against deletion%s; lift the protection to let it be remediated" % why
    if node.state not in REMEDIABLE_STATES:
        return STATE_REFUSALS[node.state]
    if "control_plane" in node.roles and not any(
            "control_plane" in n.roles and n.name != node.name and n.state in COUNTED_STATES for n in nodes):
        return ("it is the only control plane of cluster %s: resetting it destroys the cluster, that is a rebuild "
                "(restore from a backup), not a remediation" % node.cluster)
    return None


def _held_back(node, nodes, busy, policy, etcd):
    """(why NODE must wait for another remediation to finish, or "", what etcd said).

    BUSY: the cluster's nodes in flight and those this plan already picked.
    """
    if len(busy) >= policy.max_concurrent:
        return ("max_concurrent %d reached in cluster %s: %s already being remediated"
                % (policy.max_concurrent, node.cluster, _names(busy)), "")
    domains = sorted({policy.domain_of(n.failure_domain) for n in busy})
    mine = policy.domain_of(node.failure_domain)
    if len(domains) > 1:
        return ("remediations already run in %d %s failure domains (%s); a new one starts when at most one is "
                "left" % (len(domains), policy.failure_domain, ", ".join(domains)), "")
    if domains and mine != domains[0]:
        return ("one %s failure domain at a time: %s is being remediated (%s), %s waits its turn"
                % (policy.failure_domain, domains[0], _names(busy), mine), "")
    if not node.is_control_plane:
        return "", ""
    other_cps = [n for n in busy if n.is_control_plane]
    if other_cps:
        return ("one control plane at a time: %s is being remediated" % _names(other_cps), "")
    if "control_plane" in node.roles:
        helpers = [n for n in nodes if "control_plane" in n.roles and n.name != node.name and n.healthy
                   and not n.in_flight]
        if not helpers:
            return ("no other control plane of cluster %s is healthy to do the API and etcd work" % node.cluster, "")
    if "etcd" not in node.roles:
        return "", ""
    if etcd is None:
        return ("the etcd members of cluster %s are not known: pass their health (etcd_info) so quorum can be "
                "checked" % node.cluster, "")
    try:
        member = find_member(list(etcd.members), name=node.name)
    except ValueError as exc:
        return ("cannot tell which etcd member is %s: %s" % (node.name, exc), "")
    decision = check_remove(list(etcd.members), dict(etcd.healthy), member)
    if decision.refused:
        return (decision.reason, "")
    if member is None:
        return "", "no member named %s, nothing to remove" % node.name
    return "", decision.reason


# --------------------------------------------------------------------------- from the fleet


def records_from_fleet(fleet, live, *, unhealthy_since=None, in_flight=(), cluster=None):
    """NodeRecords for the Kubernetes nodes of FLEET (a ``fleet.Fleet``).

    ``live``: ``{server: node_state}`` as ``live_state.cluster_live_state``
    returns it (a server missing from it is taken as not registered).
    ``unhealthy_since``: ``{server: time}`` when the caller knows better (it
    first saw the node unhealthy); by default a NotReady node's ``ready_since``
    (the Ready condition's lastTransitionTime).
    Deletion protection comes from the fleet file (``protection.deletion``).
    ``cluster``: only that cluster's servers.
    Servers serving no cluster, and load balancers, are skipped.
    """
    since = unhealthy_since or {}
    records = []
    for name, server in fleet.servers.items():
        owner = fleet.cluster_of(name)
        if owner is None or (cluster is not None and owner.name != cluster):
            continue
        roles = tuple(r for r in owner.roles_of(name) if r in ROLES)
        if not roles:
            continue  # a load balancer: not a Kubernetes node
        state = live.get(name) or {"registered": False, "ready": None, "ready_reason": "NotRegistered"}
        ready = state.get("ready") if state.get("registered") else None
        reasons = () if ready is True else (state.get("ready_reason") or "NotReady",)
        records.append(NodeRecord(name=name, cluster=owner.name, roles=roles,
                                  failure_domain=server.location.failure_domain, ready=ready,
                                  unhealthy_since=since.get(name, None if ready else state.get("ready_since")),
                                  reasons=reasons, state=server.state,
                                  protected=server.protection.deletion,
                                  protection_reason=server.protection.reason or "", in_flight=name in in_flight))
    return records
