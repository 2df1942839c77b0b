# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Planned maintenance: which servers to drain and hold, which to give back. Pure, no clock, no I/O.

A server is in maintenance when the fleet file says ``state: maintenance`` or the recovery state holds a
maintenance mark for it (``recovery_state.mark_maintenance``: the maintenance job with a reason, for AWX
where nobody edits the fleet file). The maintenance job (playbooks/maintenance.yml) then:

* **enters** a server in maintenance whose Node is not held yet: cordons it with
  ``cordoned-by: baremetal.k8s/maintenance`` and the reason, and drains it (node_drain, PDB-aware);
* **holds** one already held (nothing to do);
* **exits** a server back to ``active`` whose Node is still held for maintenance, once it is verified:
  Ready, healthy, ``spec.podCIDR`` equal to the allocation ledger's, its etcd member healthy (control
  planes); then uncordons it;
* **blocks** the exit while verification fails (the Node stays cordoned, and recover.yml remediates it
  if it stays NotReady past its grace period);
* **refuses** to enter a server recovery is working on, and a control plane whose host going down would
  leave etcd without quorum: maintenance means the host may be powered off, so the healthy voting members
  not in maintenance must still reach quorum without it (two control planes of three never go at once).

``plan_maintenance(members, verdicts, state, etcd=...)`` takes the fleet's view of each member
(``fleet_members``), node_health's verdicts (its ``nodes``), the recovery state and the etcd members per
cluster (``remediation.EtcdState``), and returns one ``Decision`` per member concerned, each with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import recovery_plan, recovery_state
from .errors import BaremetalError
from .etcd_quorum import find_member, quorum, voting
from .vocabulary import MAINTENANCE_CORDONER

ENTER, HELD, EXIT, BLOCKED, REFUSED = "enter", "held", "exit", "blocked", "refused"
DECISIONS = (ENTER, HELD, EXIT, BLOCKED, REFUSED)
# The health categories of a node fit to serve again (node_health.HEALTHY_CATEGORIES).
FIT = ("healthy", "cordoned")
DEFAULT_REASON = "state: maintenance in the fleet file"


class MaintenanceError(BaremetalError):
    """Bad input to the maintenance plan (a field and its fix)."""


@dataclass(frozen=True)
class Decision:
    server: str
    cluster: str
    decision: str  # one of DECISIONS
    reason: str
    cordon_reason: str = ""  # the reason recorded on the Node (enter)
    node_ready: bool = True  # enter: whether its kubelet runs (a dead one never confirms pod deletions)

    def as_dict(self) -> dict:
        return {"server": self.server, "cluster": self.cluster, "decision": self.decision, "reason": self.reason,
                "cordon_reason": self.cordon_reason, "node_ready": self.node_ready}


@dataclass(frozen=True)
class MaintenancePlan:
    decisions: tuple[Decision, ...]

    def of(self, kind) -> list[Decision]:
        return [d for d in self.decisions if d.decision == kind]

    def summary(self) -> str:
        counts = ", ".join("%d %s" % (len(self.of(kind)), kind) for kind in DECISIONS)
        return counts if self.decisions else "nothing to do: no server is in maintenance or held for it"

    def as_dict(self) -> dict:
        result = {kind: [d.as_dict() for d in self.of(kind)] for kind in DECISIONS}
        result.update(decisions=[d.as_dict() for d in self.decisions], summary=self.summary())
        return result


def fleet_members(fleet, ledger, cluster=None):
    """recovery_plan.fleet_members (cluster, roles, state, state_reason, ...; marks and placement applied to
    FLEET first), each with the pod /24 the allocation LEDGER gave it."""
    from .ipam import lookup

    result = recovery_plan.fleet_members(fleet, cluster)
    for name, member in result.items():
        member["pod_cidr"] = lookup(ledger, member["cluster"], name).get("pod_cidr")
    return result


def plan_maintenance(members, verdicts, state, *, etcd=None) -> MaintenancePlan:
    """One Decision per member in maintenance or held for it, in the order of VERDICTS."""
    etcd = dict(etcd or {})
    by_name = dict(recovery_plan.member_verdicts(members, verdicts, MaintenanceError))
    marks = recovery_state.maintenance_marks(state)
    in_flight = {name: recovery_state.node_entry(state, name).get("step") for name in recovery_state.in_flight(state)}
    # Control planes going down for maintenance, per cluster: those already held, then those entering now.
    down = {}
    for name, verdict in by_name.items():
        if members[name]["state"] == "maintenance" and _held(verdict):
            down.setdefault(members[name]["cluster"], set()).add(name)
    decisions = []
    for name, verdict in by_name.items():
        member = members[name]
        reason = (marks.get(name) or {}).get("reason") or member.get("state_reason") or DEFAULT_REASON
        if member["state"] == "maintenance":
            decision = _enter(name, member, verdict, reason, in_flight=in_flight, etcd=etcd.get(member["cluster"]),
                              down=down)
        elif member["state"] == "active" and _held(verdict):
            decision = _exit(name, member, verdict, etcd.get(member["cluster"]))
        else:
            continue
        decisions.append(decision)
    return MaintenancePlan(tuple(decisions))


def _held(verdict):
    return bool(verdict.get("cordoned")) and verdict.get("cordoned_by") == MAINTENANCE_CORDONER


def _enter(name, member, verdict, reason, *, in_flight, etcd, down):
    cluster = member["cluster"]
    if not verdict.get("registered", True):
        return Decision(name, cluster, HELD, "no Node object: nothing to drain; it is held out of recovery")
    if _held(verdict) and verdict.get("cordon_reason") == reason:
        return Decision(name, cluster, HELD, "cordoned and drained for maintenance: %s" % reason)
    ready = verdict.get("ready") is True
    if _held(verdict):
        return Decision(name, cluster, ENTER, "held for maintenance; the reason changed to: %s" % reason, reason,
                        ready)
    if name in in_flight:
        return Decision(name, cluster, REFUSED, "recovery is remediating it (step %s): maintenance waits for that "
                        "run to finish" % in_flight[name])
    if "control_plane" in member["roles"] or "etcd" in member["roles"]:
        refusal = _quorum_refusal(name, cluster, etcd, down.get(cluster, set()))
        if refusal:
            return Decision(name, cluster, REFUSED, refusal)
        down.setdefault(cluster, set()).add(name)
    return Decision(name, cluster, ENTER, "cordon and drain it for maintenance: %s" % reason, reason, ready)


def _quorum_refusal(name, cluster, etcd, down):
    """Why NAME may not go down for maintenance (etcd would lose quorum without it), or ""."""
    if etcd is None:
        return ("the etcd members of cluster %s are not known (no control plane answered etcd_info): maintenance "
                "of a control plane waits until quorum can be checked" % cluster)
    voters = voting(list(etcd.members))
    away = {name, *down}
    staying = [m for m in voters if m.name not in away and etcd.healthy.get(m.id, False)]
    needed = quorum(len(voters))
    if len(staying) >= needed:
        return ""
    others = sorted(down - {name})
    also = "; also in maintenance: %s" % ", ".join(others) if others else ""
    return ("taking %s down would leave %d healthy etcd voting members of %d (quorum %d)%s: finish the other "
            "maintenance or repair etcd first" % (name, len(staying), len(voters), needed, also))


def _exit(name, member, verdict, etcd):
    cluster = member["cluster"]
    problems = []
    if verdict.get("ready") is not True:
        problems.append("it is not Ready (%s)" % (verdict.get("summary") or verdict.get("category") or "unknown"))
    elif verdict.get("category") not in FIT:
        problems.append("it is unhealthy (%s)" % (verdict.get("summary") or verdict.get("category")))
    if member.get("pod_cidr") and verdict.get("pod_cidr") != member["pod_cidr"]:
        problems.append("its spec.podCIDR is %s, the allocation ledger says %s"
                        % (verdict.get("pod_cidr"), member["pod_cidr"]))
    if "control_plane" in member["roles"] or "etcd" in member["roles"]:
        etcd_member = find_member(list(etcd.members), name=name) if etcd is not None else None
        if etcd is None:
            problems.append("the etcd members of cluster %s are not known" % cluster)
        elif etcd_member is None:
            problems.append("it is not an etcd member")
        elif not etcd.healthy.get(etcd_member.id, False):
            problems.append("its etcd member is not healthy")
    if problems:
        return Decision(name, cluster, BLOCKED, "back to active but held: %s; it stays cordoned until verified "
                        "(recover.yml remediates it if it stays NotReady)" % "; ".join(problems))
    cidr = " with spec.podCIDR %s as the ledger" % member["pod_cidr"] if member.get("pod_cidr") else ""
    return Decision(name, cluster, EXIT, "back to active and verified: Ready, healthy%s; uncordon it" % cidr)


# --------------------------------------------------------------------------- the job's glue (filters)


def etcd_by_cluster(results, hostvars):
    """{cluster: etcd_info result} from the looped etcd_info results (``item`` the control plane): per cluster
    the first control plane that answered with its members."""
    chosen = {}
    for result in results or []:
        if not isinstance(result, dict) or not isinstance(result.get("members"), list):
            continue
        cluster = (hostvars.get(result.get("item")) or {}).get("fleet_cluster")
        if cluster is not None and cluster not in chosen:
            chosen[cluster] = {"members": result["members"]}
    return chosen


def decision_line(decision):
    """``enter w1: cordon and drain it for maintenance: replace DIMM B2`` from a decision dict."""
    return "%s %s: %s" % (decision.get("decision"), decision.get("server"), decision.get("reason"))


def outcome(plan, drained, uncordoned, check_mode=False):
    """The job's closing lines and its set_stats data, from the plan and the node_drain results of the
    drains (entering) and uncordons (exiting), each with ``item`` the decision. In CHECK_MODE nothing was
    done: every drain and uncordon is ``planned``."""
    lines = [plan.get("summary", "")]
    stats = {"summary": plan.get("summary", ""), "decisions": list(plan.get("decisions") or []), "entered": {},
             "exited": {}}
    for result in drained or []:
        server = (result.get("item") or {}).get("server")
        if result.get("failed"):
            what = {"outcome": "failed", "error": result.get("msg", "")}
            lines.append("failed to drain %s: %s; it stays cordoned, the next run tries again"
                         % (server, what["error"]))
        elif check_mode or result.get("skipped"):
            what = {"outcome": "planned"}
            lines.append("planned: drain and hold %s (not run)" % server)
        else:
            evicted = len(result.get("evicted") or [])
            seconds = (result.get("timings") or {}).get("total")
            what = {"outcome": "held", "evicted": evicted, "seconds": seconds}
            lines.append("held %s for maintenance: drained %d pods in %s s, cordoned: %s"
                         % (server, evicted, seconds if seconds is not None else "?",
                            (result.get("item") or {}).get("cordon_reason")))
        stats["entered"][server] = what
    for result in uncordoned or []:
        server = (result.get("item") or {}).get("server")
        if result.get("failed"):
            what = {"outcome": "failed", "error": result.get("msg", "")}
            lines.append("failed to uncordon %s: %s" % (server, what["error"]))
        elif check_mode or result.get("skipped"):
            what = {"outcome": "planned"}
            lines.append("planned: uncordon %s (not run)" % server)
        else:
            what = {"outcome": "released"}
            lines.append("released %s from maintenance: verified and uncordoned" % server)
        stats["exited"][server] = what
    for kind in (HELD, BLOCKED, REFUSED):
        lines.extend(decision_line(d) for d in plan.get(kind) or [])
    return {"lines": lines, "stats": stats}
