# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Drift: where the live fleet differs from its intent. Pure, no clock, no I/O (docs/reconcile.md).

Each difference is a ``Drift`` item: the kind (``DRIFT_KINDS``), the host or object, what differs, the
desired and observed values, the action fix mode would take, and a risk level (``RISK_LEVELS``). The
comparisons here take plain data gathered elsewhere:

* ``fleet_against_cluster``: the fleet's members of a cluster (pod /24 from the allocation ledger) against
  its Node objects (node_health's records): members with no Node, Nodes not in the fleet, ``spec.podCIDR``
  not the ledger's, kubelets not at the cluster's ``kubernetes_version``, cordons nobody explained;
* ``ledger_against_fleet``: allocation ledger entries of servers that are no members (orphans) and of
  retired servers not released;
* ``etcd_against_fleet``: etcd members against the cluster's control planes.

``drift_report(items, fleet_revision=...)`` gathers them with counts for the job's JSON and
``report_lines`` for the summary a person reads.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import BaremetalError
from .vocabulary import CORDONED_BY_ANNOTATION, DRIFT_KINDS, RISK_LEVELS


class DriftError(BaremetalError):
    """Bad input to a drift comparison (a field and its fix)."""


@dataclass(frozen=True)
class Drift:
    kind: str  # one of DRIFT_KINDS
    target: str  # the host or object, e.g. node/w1, ledger/c1/s09, etcd/c1/cp-4
    what: str  # what differs, a short name: missing_node, pod_cidr, kubelet_version, ...
    desired: object
    observed: object
    action: str  # what fix mode does about it, one sentence
    risk: str  # one of RISK_LEVELS

    def __post_init__(self):
        if self.kind not in DRIFT_KINDS:
            raise DriftError("unknown drift kind %r" % (self.kind,), "use one of: %s" % ", ".join(DRIFT_KINDS),
                             where="drift", path="kind")
        if self.risk not in RISK_LEVELS:
            raise DriftError("unknown risk %r" % (self.risk,), "use one of: %s" % ", ".join(RISK_LEVELS),
                             where="drift", path="risk")

    def as_dict(self) -> dict:
        return {"kind": self.kind, "target": self.target, "what": self.what, "desired": self.desired,
                "observed": self.observed, "action": self.action, "risk": self.risk}

    def line(self) -> str:
        return "%s %s %s: desired %s, observed %s; fix: %s" % (
            self.risk, self.target, self.what, _shown(self.desired), _shown(self.observed), self.action)


def _shown(value):
    return "(none)" if value in (None, "", [], {}) else str(value)


def _version(text):
    """``v1.36.3`` and ``1.36.3`` compare equal."""
    return str(text or "").lstrip("v")


# --------------------------------------------------------------------------- fleet against cluster


def fleet_against_cluster(cluster, members, nodes, *, kubernetes_version):
    """Drift between CLUSTER's fleet MEMBERS (name -> {pod_cidr, state}) and its NODES (node_health records:
    name, registered, pod_cidr, kubelet_version, cordoned, cordoned_by, cordon_reason)."""
    items = []
    by_name = {}
    for index, node in enumerate(nodes):
        if not isinstance(node, dict) or not node.get("name"):
            raise DriftError("a node record without a name", "pass node_health's nodes unchanged",
                             where="nodes", path="[%d]" % index)
        by_name[node["name"]] = node
    for name, member in members.items():
        node = by_name.get(name)
        if member.get("state") in ("retired", "failed", "spare"):
            continue
        if node is None or not node.get("registered", True):
            items.append(Drift("fleet", "node/%s" % name, "missing_node", "a Node of cluster %s" % cluster, None,
                               "join it (site.yml's join path; recover.yml does once it is past its startup "
                               "timeout)", "medium"))
            continue
        desired_cidr = member.get("pod_cidr")
        if desired_cidr and node.get("pod_cidr") and node["pod_cidr"] != desired_cidr:
            items.append(Drift("fleet", "node/%s" % name, "pod_cidr", desired_cidr, node["pod_cidr"],
                               "reprovision the node (spec.podCIDR cannot change on a live Node)", "high"))
        if kubernetes_version and node.get("kubelet_version") and \
                _version(node["kubelet_version"]) != _version(kubernetes_version):
            items.append(Drift("fleet", "node/%s" % name, "kubelet_version", _version(kubernetes_version),
                               _version(node["kubelet_version"]), "upgrade the node (playbooks/upgrade.yml)",
                               "medium"))
        if node.get("cordoned") and node.get("cordoned_by") in (None, "", "unknown") and \
                member.get("state") == "active":
            items.append(Drift("fleet", "node/%s" % name, "cordon_without_reason", "schedulable, or cordoned "
                               "with a recorded reason", "cordoned by an unknown party",
                               "none: report it; uncordon it or put the server in maintenance with a reason",
                               "low"))
    for name in sorted(set(by_name) - set(members)):
        items.append(Drift("fleet", "node/%s" % name, "node_not_in_fleet", None, "a Node of cluster %s" % cluster,
                           "none: add the server to the fleet file, or drain and delete the Node", "medium"))
    return items


def node_records(raw_nodes):
    """``fleet_against_cluster``'s node records from node_health's plain Node mappings (``node_from_api``)."""
    return [{"name": n["name"], "registered": True, "pod_cidr": n.get("pod_cidr"),
             "kubelet_version": n.get("kubelet_version"), "cordoned": bool(n.get("unschedulable")),
             "cordoned_by": (n.get("annotations") or {}).get(CORDONED_BY_ANNOTATION) or "unknown"}
            for n in raw_nodes]


def api_servers_against_fleet(cluster, control_planes, pods, *, kubernetes_version):
    """kube-apiserver static pods (``{node, image}``, the image's tag is the version) against CLUSTER's
    CONTROL_PLANES and its ``kubernetes_version``. A control plane with no API server pod is reported by
    the checker (``cluster_check``), not here: it is health, not intent."""
    items = []
    if not kubernetes_version:
        return items
    for pod in sorted(pods, key=lambda p: p.get("node") or ""):
        node, image = pod.get("node") or "?", pod.get("image") or ""
        if node not in control_planes:
            continue
        version = _version(image.rsplit(":", 1)[-1]) if ":" in image else None
        if version and version != _version(kubernetes_version):
            items.append(Drift("fleet", "apiserver/%s" % node, "apiserver_version", _version(kubernetes_version),
                               version, "upgrade the control plane (playbooks/upgrade.yml)", "medium"))
    return items


def metadata_against_fleet(raw_nodes, wanted):
    """Labels and taints the node groups declare (WANTED, node_metadata.fleet_wanted) against the live
    Nodes (node_health's plain mappings): one item per label or taint, which fix mode applies with
    playbooks/tasks/node_metadata.yml. The managed-labels annotation is bookkeeping, not reported."""
    from .node_metadata import cluster_changes

    nodes = [{"name": n["name"], "labels": n.get("labels") or {}, "annotations": n.get("annotations") or {},
              "taints": [{"key": t.get("key"), "value": t.get("value") or "", "effect": t.get("effect")}
                         for t in n.get("taints") or []],
              "resource_version": n.get("resource_version")} for n in raw_nodes]
    items = []
    for change in cluster_changes(nodes, wanted):
        for item in change["items"]:
            if item["what"].startswith("annotation "):
                continue
            risk = "medium" if item["what"].startswith("taint ") else "low"
            items.append(Drift("fleet", "node/%s" % change["name"], item["what"], item["desired"], item["observed"],
                               "apply the fleet's labels and taints (reconcile_mode=fix)", risk))
    return items


# --------------------------------------------------------------------------- ledger against fleet


def ledger_against_fleet(fleet, ledger):
    """Allocation LEDGER entries that no longer fit FLEET: servers not members of the cluster (orphans)
    and retired members whose addresses were never released."""
    items = []
    for cluster_name, entry in sorted(((ledger or {}).get("clusters") or {}).items()):
        cluster = fleet.clusters.get(cluster_name)
        members = set(cluster.members()) if cluster is not None else set()
        for server, allocation in sorted(((entry or {}).get("nodes") or {}).items()):
            target = "ledger/%s/%s" % (cluster_name, server)
            held = allocation.get("pod_cidr") or allocation.get("wireguard_address")
            if server not in members:
                why = "not in the fleet file" if server not in fleet.servers else "not a member of %s" % cluster_name
                items.append(Drift("ledger", target, "orphan", None, "%s (%s)" % (held, why),
                                   "release it (fleet_allocation action=release) once nothing uses it", "low"))
            elif fleet.servers[server].state == "retired":
                items.append(Drift("ledger", target, "retired_not_released", "released", held,
                                   "release it (fleet_allocation action=release)", "low"))
    return items


# --------------------------------------------------------------------------- etcd against fleet


def etcd_against_fleet(cluster, control_planes, members):
    """etcd MEMBERS (etcd_info's: name, is_learner) against CLUSTER's CONTROL_PLANES (fleet names)."""
    items = []
    names = [m.get("name") or "" for m in members]
    for name in control_planes:
        if name not in names:
            items.append(Drift("etcd", "etcd/%s/%s" % (cluster, name), "missing_member", "a voting member", None,
                               "rejoin the control plane (recover.yml reprovisions it)", "high"))
    for member in members:
        name = member.get("name") or "(unnamed, id %s)" % member.get("id")
        if name not in control_planes:
            items.append(Drift("etcd", "etcd/%s/%s" % (cluster, name), "member_not_in_fleet", None,
                               "a member", "remove it (etcd_member state=absent, quorum checked)", "high"))
        elif member.get("is_learner"):
            items.append(Drift("etcd", "etcd/%s/%s" % (cluster, name), "learner", "a voting member", "a learner",
                               "promote it or rejoin the control plane", "medium"))
    return items


# --------------------------------------------------------------------------- the report


def drift_report(items, *, fleet_revision=None):
    """The JSON report: every item, counts per kind and per risk, and the fleet file's revision."""
    by_kind = {kind: 0 for kind in DRIFT_KINDS}
    by_risk = {risk: 0 for risk in RISK_LEVELS}
    for item in items:
        by_kind[item.kind] += 1
        by_risk[item.risk] += 1
    ordered = sorted(items, key=lambda i: (-RISK_LEVELS.index(i.risk), DRIFT_KINDS.index(i.kind), i.target, i.what))
    return {"drift": bool(items), "total": len(items), "counts": {"by_kind": by_kind, "by_risk": by_risk},
            "items": [i.as_dict() for i in ordered], "fleet_revision": fleet_revision}


def report_lines(report):
    """The summary a person reads: the counts, then one line per item, highest risk first."""
    if not report.get("total"):
        return ["no drift: the fleet matches its intent (fleet revision %s)" % (report.get("fleet_revision") or "?")]
    counts = report["counts"]["by_kind"]
    lines = ["%d drift items: %s" % (report["total"], ", ".join("%d %s" % (n, k) for k, n in counts.items() if n))]
    for item in report["items"]:
        lines.append(Drift(**item).line())
    return lines
