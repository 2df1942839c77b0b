# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Level 2 placement: tenant workloads (StatefulSets offered as a service) to node groups.

Each workload is a number of replicas with a cpu/memory request. In name order
(after keeping what the ledger already placed):

- clusters of the workload's region are tried least-connection first: fewest
  workloads already placed, then lowest cpu utilisation, then name;
- inside a cluster, eligible node groups (``node_group``, or every worker
  group) are tried least-loaded first;
- replicas go one per node, quorum-safe across failure domains (at most one
  per domain for up to 3 replicas, at most (replicas-1)//2 beyond), each on
  the least-loaded node with room;
- the result is the nodeSelector / affinity / topologySpreadConstraints that
  pin the StatefulSet to exactly the nodes whose capacity was reserved.

Node capacity is the server's cores and memory minus a system reserve.

A workload that fits nowhere is *unplaced*: ``place_workloads`` reports it apart
from the failures, and ``plan_placement`` either refuses the plan for it or, with
``partial_workloads``, places the rest. A workload placed before whose new
request fits nowhere keeps its previous placement (planned again with its
previous request, so its reservation holds and the others go around it).
"""

from __future__ import annotations

import bisect
import dataclasses
from collections import Counter
from dataclasses import dataclass, field

from ansible_collections.baremetal.k8s.plugins.module_utils.placement.ledger import Ledger
from ansible_collections.baremetal.k8s.plugins.module_utils.placement.model import (
    NODE_LABELS,
    UNRESERVED_LABELS,
    Candidate,
    Location,
    PlacementError,
    PlacementOptions,
    WorkloadRequest,
    etcd_quorum_cap,
)

__all__ = ["Node", "WorkloadPlacer", "WorkloadPlan", "node_eligible", "place_workloads"]

EPSILON = 1e-9


@dataclass
class WorkloadPlan:
    placements: dict[str, dict]  # the ledger's workloads
    explanations: list[dict]
    changes: list[dict]
    manifests: dict[str, dict]
    drift: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # bad input (a workload listed twice)
    # Workloads not placed as requested: {workload, reason, kept_previous}; kept_previous: the ledger's
    # placement (of the previous request) stays.
    unplaced: list[dict] = field(default_factory=list)


class Node:
    __slots__ = ("cluster", "cpu_cap", "cpu_free", "disk_types", "group", "label", "location", "mem_cap", "mem_free",
                 "name", "rank")

    def __init__(self, server: Candidate, cluster: str, group: str, options: PlacementOptions):
        self.name = server.name
        self.cluster = cluster
        self.group = group
        self.location: Location = server.location
        self.cpu_cap = self.cpu_free = max(0.0, server.cores - options.reserved_cores)
        self.mem_cap = self.mem_free = max(0.0, server.memory_gb - options.reserved_memory_gb)
        self.disk_types = frozenset(disk[0] for disk in server.disks)  # (type, size_gb)
        self.label = server.workload_label
        self.rank = (0.0, self.name)  # (load, name): its place in its group's ranking

    def fits(self, workload: WorkloadRequest) -> bool:
        return self.cpu_free + EPSILON >= workload.cpu and self.mem_free + EPSILON >= workload.memory_gb

    def load(self) -> float:
        used_cpu = 1 - self.cpu_free / self.cpu_cap if self.cpu_cap else 1.0
        used_mem = 1 - self.mem_free / self.mem_cap if self.mem_cap else 1.0
        return max(used_cpu, used_mem)


def spread_cap(workload: WorkloadRequest, allow_blast_radius: bool) -> int:
    """Replicas one failure domain may hold: losing it must keep a quorum."""
    if allow_blast_radius or workload.spread == "node":
        return workload.replicas
    return 1 if workload.replicas <= 3 else etcd_quorum_cap(workload.replicas)


def node_eligible(node: Node, workload: WorkloadRequest) -> bool:
    if workload.dedicated:
        if node.label != workload.dedicated:
            return False
    elif node.label not in UNRESERVED_LABELS:
        return False
    return not workload.disk_type or workload.disk_type in node.disk_types


def eligibility(workload: WorkloadRequest) -> str:
    """The node filters of ``workload``, as the explanations name them."""
    labels = ["labels.workload == %s" % workload.dedicated if workload.dedicated else "not dedicated"]
    if workload.disk_type:
        labels.append("a %s disk" % workload.disk_type)
    return " and ".join(labels)


def select_nodes(workload: WorkloadRequest, ranked: list[tuple], keep: list[Node], cap: int):
    """Nodes for the missing replicas (besides ``keep``), or the reason there are none.

    ``ranked`` is the node group's nodes as (load, name, node), sorted. Each replica goes to the first
    eligible node with room of the domain holding the fewest replicas (below ``cap``): the least-loaded
    node of the least-used domain. Scanning in load order stops at the first empty domain, so a pick
    rarely looks at more than a few nodes.
    """
    level = "rack" if workload.spread == "node" else workload.spread
    per_domain: dict[tuple, int] = {}
    for node in keep:
        domain = node.location.domain(level)
        per_domain[domain] = per_domain.get(domain, 0) + 1
    chosen, used = list(keep), {node.name for node in keep}
    while len(chosen) < workload.replicas:
        best = None
        for entry in ranked:
            node = entry[2]
            if node.name in used:
                continue
            domain = node.location.domain(level)
            count = per_domain.get(domain, 0)
            if count >= cap or (best is not None and count >= best[0]):
                continue
            if node_eligible(node, workload) and node.fits(workload):
                best = (count, node, domain)
                if not count:
                    break  # nothing ranks before the least-loaded node of an empty domain
        if best is None:
            eligible = [entry[2] for entry in ranked if node_eligible(entry[2], workload)]
            roomy = [node for node in eligible if node.fits(workload) or node.name in used]
            domains = {node.location.domain(level) for node in roomy}
            return (
                "%d of %d node(s) with %s, %d of them with %.2f cores and %.1f GB free, in %d %s(s); "
                "%d replicas need %d distinct nodes, at most %d per %s"
                % (len(eligible), len(ranked), eligibility(workload), len(roomy), workload.cpu, workload.memory_gb,
                   len(domains), level, workload.replicas, workload.replicas, cap, level)
            )
        node, domain = best[1], best[2]
        chosen.append(node)
        used.add(node.name)
        per_domain[domain] = per_domain.get(domain, 0) + 1
    return chosen


def manifest(workload: WorkloadRequest, group: str, nodes: list[str]) -> dict:
    """Scheduling snippet for the workload's pod template: exactly the reserved nodes, spread."""
    selector = {"matchLabels": {"app.kubernetes.io/instance": workload.name}}
    node_selector = {NODE_LABELS["node_group"]: group}
    if workload.dedicated:
        node_selector[NODE_LABELS["workload"]] = workload.dedicated
    level = "rack" if workload.spread == "node" else workload.spread
    return {
        "nodeSelector": node_selector,
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": nodes}]}
                    ]
                }
            },
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": selector, "topologyKey": "kubernetes.io/hostname"}
                ]
            },
        },
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": NODE_LABELS[level],
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": selector,
            }
        ],
    }


class WorkloadPlacer:
    def __init__(self, candidates, groups, members, ledger: Ledger, options: PlacementOptions, *,
                 fallback: dict[str, str] | None = None):
        self.options = options
        self.ledger = ledger
        # Workloads planned with their previous request because the new one fits nowhere: name -> why.
        self.fallback = fallback or {}
        self.groups = {g.key: g for g in groups}
        self.nodes: dict[str, Node] = {}
        self.group_nodes: dict[str, list[Node]] = {}
        self.ranked: dict[str, list[tuple]] = {}  # group key -> (load, name, node), sorted
        self.clusters_by_region: dict[str, list[str]] = {}
        self.cluster_groups: dict[str, list[str]] = {}
        for key in sorted(self.groups):
            group = self.groups[key]
            nodes = [Node(candidates[name], group.cluster, group.group, options) for name in members.get(key, [])]
            self.group_nodes[key] = nodes
            self.ranked[key] = sorted((*node.rank, node) for node in nodes)
            self.nodes.update((node.name, node) for node in nodes)
            self.cluster_groups.setdefault(group.cluster, []).append(key)
            region_clusters = self.clusters_by_region.setdefault(group.region, [])
            if group.cluster not in region_clusters:
                region_clusters.append(group.cluster)
        self.cluster_workloads: Counter = Counter()
        self.group_workloads: Counter = Counter()
        self.cluster_cpu = Counter()
        for node in self.nodes.values():
            self.cluster_cpu[node.cluster] += node.cpu_cap
        self.cluster_cpu_used: Counter = Counter()
        self.placements: dict[str, dict] = {}
        self.explanations: dict[str, dict] = {}
        self.manifests: dict[str, dict] = {}
        self.drift: list[str] = []
        self.warnings: list[str] = []
        self.failures: list[str] = []
        self.unplaced: list[dict] = []

    def eligible_groups(self, cluster: str, workload: WorkloadRequest) -> list[str]:
        keys = []
        for key in self.cluster_groups.get(cluster, []):
            group = self.groups[key]
            if group.group == workload.node_group if workload.node_group else "worker" in group.roles:
                keys.append(key)
        return keys

    def commit(self, workload: WorkloadRequest, key: str, nodes: list[Node], status: str, why: list[str]) -> None:
        group = self.groups[key]
        ranked = self.ranked[key]
        for node in nodes:
            # Move the node to its new place in the group's ranking (the list stays sorted).
            del ranked[bisect.bisect_left(ranked, node.rank)]
            node.cpu_free -= workload.cpu
            node.mem_free -= workload.memory_gb
            node.rank = (node.load(), node.name)
            bisect.insort(ranked, (*node.rank, node))
        self.cluster_workloads[group.cluster] += 1
        self.group_workloads[key] += 1
        self.cluster_cpu_used[group.cluster] += workload.cpu * len(nodes)
        names = sorted(node.name for node in nodes)
        self.placements[workload.name] = {"cluster": group.cluster, "group": group.group, "nodes": names,
                                          "spec": workload.spec()}
        self.manifests[workload.name] = dict(manifest(workload, group.group, names), cluster=group.cluster)
        self.explanations[workload.name].update(status=status, cluster=group.cluster, group=group.group,
                                                nodes=names, why=why)

    def kept_nodes(self, workload: WorkloadRequest, entry: dict) -> tuple[str, list[Node]]:
        """The ledger's placement of ``workload``: its group key and the nodes still valid for it."""
        key = "%s/%s" % (entry["cluster"], entry["group"])
        if key not in self.eligible_groups(entry["cluster"], workload):
            return "", []
        valid = []
        for name in entry["nodes"]:
            node = self.nodes.get(name)
            if node and node.cluster == entry["cluster"] and node.group == entry["group"] \
                    and node_eligible(node, workload) and node.fits(workload):
                valid.append(node)
        return key, valid[: workload.replicas]

    def utilisation(self, cluster: str) -> float:
        total = self.cluster_cpu[cluster]
        return self.cluster_cpu_used[cluster] / total if total else 1.0

    def place(self, workload: WorkloadRequest, prefer: str = "") -> None:
        explanation = self.explanations[workload.name]
        if workload.cluster:
            clusters = [workload.cluster] if workload.cluster in self.cluster_groups else []
            scope = "cluster %s" % workload.cluster
        else:
            clusters = list(self.clusters_by_region.get(workload.region, []))
            scope = "clusters in region %s" % workload.region
        funnel = [{"filter": scope, "left": len(clusters)}]
        with_groups = [c for c in clusters if self.eligible_groups(c, workload)]
        funnel.append({"filter": "with a %s node group" % (workload.node_group or "worker"), "left": len(with_groups)})
        # Least-connection: fewest workloads first; a changed workload tries its old node group first.
        order = sorted(with_groups, key=lambda c: (self.cluster_workloads[c], self.utilisation(c), c))
        cap = spread_cap(workload, self.options.allow_blast_radius)
        skipped = []
        targets = [(c, key) for c in order
                   for key in sorted(self.eligible_groups(c, workload), key=lambda k: (self.group_workloads[k], k))]
        targets.sort(key=lambda t: t[1] != prefer)
        for cluster, key in targets:
            chosen = select_nodes(workload, self.ranked[key], [], cap)
            if isinstance(chosen, str):
                skipped.append("%s: %s" % (key, chosen))
                continue
            why = ["cluster %s: %d workload(s), %.0f%% cpu used (least connections among %d candidate cluster(s))"
                   % (cluster, self.cluster_workloads[cluster], 100 * self.utilisation(cluster), len(order))]
            if key == prefer:
                why = ["kept in its node group %s (request changed or a node left)" % key]
            why += ["skipped %s" % s for s in skipped]
            why.append("replicas on the least-loaded nodes with room, at most %d per %s" % (cap, workload.spread))
            explanation["funnel"] = funnel
            self.commit(workload, key, chosen, "placed", why)
            return
        funnel.append({"filter": "with capacity and spread for %d replicas" % workload.replicas, "left": 0})
        explanation.update(status="unsatisfiable", funnel=funnel, why=skipped)
        steps = " -> ".join("%s: %d" % (s["filter"], s["left"]) for s in funnel)
        detail = "; ".join(skipped) if skipped else "no candidate node group"
        reason = ("workload %s: unsatisfiable: %d replica(s) of %.2f cores / %.1f GB (funnel: %s). %s"
                  % (workload.name, workload.replicas, workload.cpu, workload.memory_gb, steps, detail))
        if workload.name in self.fallback:
            reason = "%s; its previous request does not fit either: %s" % (self.fallback[workload.name], reason)
        self.unplaced.append({"workload": workload.name, "reason": reason, "kept_previous": False})

    def keep_previous(self, workload: WorkloadRequest, key: str, valid: list) -> None:
        """A fallback workload whose nodes left and that cannot be topped up: the nodes it still has keep their
        reservation (``valid``: still there, with room) rather than it losing all of them."""
        self.commit(workload, key, valid, "kept previous",
                    ["%d of its %d replica(s) keep their nodes" % (len(valid), workload.replicas)])

    def run(self, workloads: list[WorkloadRequest]) -> WorkloadPlan:
        requested = {}
        for workload in workloads:
            if workload.name in requested:
                self.failures.append("workload %s is listed twice" % workload.name)
            requested[workload.name] = workload
        for name in sorted(requested):
            self.explanations[name] = {"workload": name, "status": "pending", "funnel": [], "why": []}
        pending: list[tuple[WorkloadRequest, str, list[Node]]] = []
        for name in sorted(requested):
            workload, entry = requested[name], self.ledger.workloads.get(name)
            if entry is None or self.options.rebalance:
                pending.append((workload, "", []))
                continue
            key, valid = self.kept_nodes(workload, entry)
            if entry.get("spec") == workload.spec() and len(valid) == workload.replicas == len(entry["nodes"]):
                self.commit(workload, key, valid, "kept", ["already placed; unchanged"])
            else:
                pending.append((workload, key, valid if entry.get("spec") == workload.spec() else []))
        for workload, key, valid in pending:
            cap = spread_cap(workload, self.options.allow_blast_radius)
            if valid:
                # A node left or replicas grew: top up in place before moving anything.
                chosen = select_nodes(workload, self.ranked[key], valid, cap)
                if not isinstance(chosen, str):
                    self.commit(workload, key, chosen, "repaired", ["kept %d replica(s) in %s, placed %d more"
                                                                    % (len(valid), key, len(chosen) - len(valid))])
                    continue
                if workload.name in self.fallback:
                    # Its previous nodes that are left keep their reservation rather than losing all of it.
                    self.keep_previous(workload, key, valid)
                    continue
            self.place(workload, prefer=key)
        for name in sorted(set(self.ledger.workloads) - set(requested)):
            self.drift.append("workload %s is no longer requested; released" % name)
        for name in sorted(set(self.fallback) & set(self.placements)):
            self.explanations[name]["why"].insert(0, self.fallback[name])
            self.unplaced.append({"workload": name, "reason": self.fallback[name], "kept_previous": True})
        self.unplaced.sort(key=lambda item: item["workload"])
        return WorkloadPlan(
            placements=self.placements,
            explanations=[self.explanations[name] for name in sorted(self.explanations)],
            changes=self.changes(),
            manifests=self.manifests,
            drift=self.drift,
            warnings=self.warnings,
            failures=self.failures,
            unplaced=self.unplaced,
        )

    def changes(self) -> list[dict]:
        changes = []
        for name in sorted(set(self.ledger.workloads) | set(self.placements)):
            before, after = self.ledger.workloads.get(name), self.placements.get(name)
            if before == after:
                continue
            change: dict = {"workload": name}
            if before:
                change["from"] = {"cluster": before["cluster"], "group": before["group"], "nodes": before["nodes"]}
            if after:
                change["to"] = {"cluster": after["cluster"], "group": after["group"], "nodes": after["nodes"]}
            change["action"] = "moved" if before and after else ("placed" if after else "released")
            changes.append(change)
        return changes


def previous_request(workload: WorkloadRequest, entry: dict) -> WorkloadRequest | None:
    """``workload`` with the request its ledger entry was placed for (fields the entry lacks stay), or None
    when the entry's spec is not a usable request (a hand-edited ledger)."""
    spec = entry.get("spec") or {}
    fields = {name: spec[name] for name in ("replicas", "cpu", "memory_gb", "disk_type", "dedicated", "spread")
              if name in spec}
    previous = dataclasses.replace(workload, **fields)
    try:
        previous.validate("ledger workloads")
    except PlacementError:
        return None
    return previous


def place_workloads(candidates, groups, members, ledger: Ledger, options: PlacementOptions, *,
                    workloads) -> WorkloadPlan:
    """Place ``workloads``. With ``options.partial_workloads``, a placed workload whose new request fits nowhere
    is planned again with its previous request (until no more such workloads turn up: each pass only adds
    to them, so there are at most as many passes as ledger workloads, in practice two)."""
    requests = {w.name: w for w in workloads}
    order = list(workloads)
    fallback: dict[str, str] = {}
    previous: dict[str, WorkloadRequest] = {}
    while True:
        plan = WorkloadPlacer(candidates, groups, members, ledger, options, fallback=fallback).run(
            [previous.get(w.name, w) for w in order])
        more = False
        for item in plan.unplaced if options.partial_workloads else ():
            name = item["workload"]
            if name in ledger.workloads and name not in fallback:
                earlier = previous_request(requests[name], ledger.workloads[name])
                if earlier is not None:
                    previous[name] = earlier
                    fallback[name] = "%s; planned with its previous request instead" % item["reason"]
                    more = True
        if not more:
            return plan
