# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The entry points: ``plan_placement`` (both levels), ``replace_server`` (recovery), and the adapters
from the fleet model (``model_from_fleet``).

A plan is refused as a whole (``ok`` false, the old ledger returned, no changes) when a node group cannot
be filled or the blast radius is exceeded: a node group is never half built. Workloads that fit nowhere
refuse it too unless ``partial_workloads`` (the default): then they are reported in ``unplaced`` and as
warnings, and the rest are placed (docs/placement.md, "Partial workload plans").
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
from dataclasses import dataclass, field

from ansible_collections.baremetal.k8s.plugins.module_utils.fleet import Intent, NodeGroup, intent_from_mapping
from ansible_collections.baremetal.k8s.plugins.module_utils.placement.ledger import Ledger
from ansible_collections.baremetal.k8s.plugins.module_utils.placement.model import (
    Candidate,
    GroupRequest,
    PlacementError,
    PlacementOptions,
    WorkloadRequest,
)
from ansible_collections.baremetal.k8s.plugins.module_utils.placement.servers import place_servers
from ansible_collections.baremetal.k8s.plugins.module_utils.placement.workloads import place_workloads
from ansible_collections.baremetal.k8s.plugins.module_utils.vocabulary import ETCD_SIZES, ROLES

__all__ = [
    "INTENT_FIELDS",
    "PlacementResult",
    "candidate_from_server",
    "group_request",
    "model_from_fleet",
    "plan_placement",
    "replace_server",
]

# The fields of a node group's intent: the module's ``intents`` option takes the same ones.
INTENT_FIELDS = tuple(f.name for f in dataclasses.fields(Intent))
# How many names an error lists before it only counts the rest.
LISTED = 12


@dataclass
class PlacementResult:
    ok: bool
    ledger: Ledger  # the new ledger (equal to the old one when not ok)
    members: dict[str, list[str]]  # "cluster/group" -> servers (pinned + placed)
    groups: list[dict]  # explanation per node group
    workloads: list[dict]  # explanation per workload
    changes: list[dict]  # what moves compared with the old ledger
    manifests: dict[str, dict]  # workload -> scheduling snippet
    drift: list[str]
    warnings: list[str]
    failures: list[str]  # one line per unsatisfiable intent, refused blast radius (or workload, when strict)
    # Workloads not placed as requested: {workload, reason, kept_previous} (see place_workloads).
    unplaced: list[dict] = field(default_factory=list)


def _names(names, limit=LISTED) -> str:
    names = sorted(names)
    shown = ", ".join(names[:limit]) or "none"
    return shown + (" and %d more" % (len(names) - limit) if len(names) > limit else "")


def check_replace(candidates: dict[str, Candidate], groups: list[GroupRequest], ledger: Ledger,
                  replace) -> list[str]:
    """Every ``replace`` entry must be a server of the fleet that serves a node group (pinned, or placed by the
    ledger); raise PlacementError naming the entry otherwise. A server the ledger shows it served before
    (already replaced by an earlier run) is a warning, so that re-running a replacement is harmless."""
    warnings = []
    serving = {name: g.key for g in groups for name in g.pinned}
    serving.update({name: "%s/%s" % entry for name, entry in ledger.servers.items()})
    for name in sorted(set(replace)):
        if name not in candidates:
            import difflib  # only for the error

            close = difflib.get_close_matches(name, list(candidates), n=3)
            hint = "; did you mean %s?" % " or ".join(close) if close else ""
            raise PlacementError(
                "replace: %s is not a server of the fleet%s" % (name, hint),
                "name servers of the fleet file that serve a node group; serving now: %s" % _names(serving),
            )
        if name in serving:
            continue
        if ledger.history.get(name):
            warnings.append("replace: %s serves no node group any more (it left %s earlier); nothing to replace"
                            % (name, ledger.history[name][-1]))
            continue
        raise PlacementError(
            "replace: %s serves no node group (not pinned in one, not placed by the ledger)" % name,
            "remove it from replace; node groups and their servers: %s"
            % _names("%s (%s)" % (key, ", ".join(sorted(n for n, k in serving.items() if k == key)) or "empty")
                     for key in {g.key for g in groups}),
        )
    return warnings


@contextlib.contextmanager
def _gc_paused():
    """No cyclic garbage collection while planning: a plan allocates hundreds of thousands of small tuples
    and dicts that live until it ends, and the collector's passes over them were about half of the workload
    level's time (bench_placement, 5,000 workloads). The plan makes no reference cycles worth collecting."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def plan_placement(
    candidates: dict[str, Candidate],
    groups: list[GroupRequest],
    ledger: Ledger,
    options: PlacementOptions | None = None,
    workloads: list[WorkloadRequest] | None = None,
) -> PlacementResult:
    """Plan both levels. ``workloads=None`` leaves the ledger's workloads untouched.

    Raises PlacementError for input no plan can use (an option, a workload's fields, a replace entry).
    """
    with _gc_paused():
        return _plan(candidates, groups, ledger, options or PlacementOptions(), workloads)


def _plan(candidates, groups, ledger: Ledger, options: PlacementOptions, workloads) -> PlacementResult:
    options.validate()
    for index, workload in enumerate(workloads or ()):
        workload.validate("workloads", index)
    replace_warnings = check_replace(candidates, groups, ledger, options.replace)
    servers = place_servers(candidates, groups, ledger, options)
    new_ledger = Ledger(servers=servers.assignments, history=servers.history, workloads=dict(ledger.workloads))
    workload_result = None
    failures = list(servers.failures)
    warnings = replace_warnings + servers.warnings
    drift = list(servers.drift)
    unplaced: list[dict] = []
    if workloads is not None and not servers.failures:
        workload_result = place_workloads(candidates, groups, servers.members, ledger, options, workloads=workloads)
        new_ledger.workloads = workload_result.placements
        failures += workload_result.failures
        warnings += workload_result.warnings
        drift += workload_result.drift
        unplaced = workload_result.unplaced
        # Strict: an unplaced workload refuses the plan. Partial: it is reported and the rest are placed.
        (warnings if options.partial_workloads else failures).extend(item["reason"] for item in unplaced)
    ok = not failures
    changes = servers.changes + (workload_result.changes if workload_result else [])
    return PlacementResult(
        ok=ok,
        ledger=new_ledger if ok else ledger,
        members=servers.members,
        groups=servers.explanations,
        workloads=workload_result.explanations if workload_result else [],
        changes=changes if ok else [],
        manifests=workload_result.manifests if workload_result and ok else {},
        drift=drift,
        warnings=warnings,
        failures=failures,
        unplaced=unplaced,
    )


def replace_server(
    candidates: dict[str, Candidate],
    groups: list[GroupRequest],
    ledger: Ledger,
    server: str,
    options: PlacementOptions | None = None,
) -> PlacementResult:
    """Recovery: take ``server`` out of its group and let the engine pick a spare for it."""
    options = options or PlacementOptions()
    replace = tuple(sorted(set(options.replace) | {server}))
    return plan_placement(candidates, groups, ledger, dataclasses.replace(options, replace=replace))


# --- adapters from the fleet model -------------------------------------------------------


def candidate_from_server(server) -> Candidate:
    """A ``fleet.Server`` as a Candidate."""
    hardware = server.hardware
    return Candidate(
        name=server.name,
        location=server.location,
        state=server.state,
        cores=hardware.cores,
        memory_gb=hardware.memory_gb,
        disks=tuple((disk.type, disk.size_gb) for disk in hardware.disks),
        nic_gbps=hardware.nic_max_gbps,
        gpus=hardware.gpu_count,
        workload_label=str((server.labels or {}).get("workload", "")),
    )


def group_request(cluster: str, region: str, group, intent: Intent | None = None) -> GroupRequest:
    """A ``fleet.NodeGroup`` as a GroupRequest; ``intent`` (checked) replaces the group's own."""
    return GroupRequest(
        cluster=cluster,
        group=group.name,
        region=region,
        roles=tuple(group.roles),
        pinned=tuple(group.servers),
        intent=intent if intent is not None else group.intent,
    )


def _override(fleet, index: int, entry: dict) -> tuple[str, str, Intent, list[str]]:
    """One entry of the module's ``intents`` option: (cluster, group, the group's new intent, roles)."""
    cluster_name, group_name = str(entry.get("cluster") or ""), str(entry.get("group") or "")
    where = "intents[%d]" % index
    if cluster_name not in fleet.clusters:
        known = _names(fleet.clusters)
        raise PlacementError("%s: cluster %r is not in the fleet; known: %s" % (where, cluster_name, known),
                             "name a cluster of the fleet file")
    if not group_name:
        raise PlacementError("%s: group is required" % where, "name the node group the intent is for")
    roles = [role for role in entry.get("roles") or () if role is not None]
    unknown_roles = [role for role in roles if role not in ROLES]
    if unknown_roles:
        raise PlacementError("%s (%s/%s): unknown role(s) %s; known: %s"
                             % (where, cluster_name, group_name, ", ".join(map(str, unknown_roles)), ", ".join(ROLES)),
                             "give roles from the list")
    # The fleet file's own intent validation, on the fields given (Ansible leaves the others None).
    fields = {k: v for k, v in entry.items() if k not in ("cluster", "group", "roles") and v is not None}
    existing = next((g for g in fleet.clusters[cluster_name].node_groups if g.name == group_name), None)
    intent = intent_from_mapping(fields, "placement", where, base=existing.intent if existing else None)
    return cluster_name, group_name, intent, roles


def model_from_fleet(fleet, intents: list[dict] | None = None):
    """A ``fleet.Fleet`` -> (candidates by name, group requests).

    ``intents`` add or override node group intents: ``{cluster, group, roles?, count, min_cores, ...}``;
    a group the fleet does not have yet is created with roles ``[worker]`` unless given.
    """
    candidates = {name: candidate_from_server(server) for name, server in fleet.servers.items()}
    overrides: dict[tuple[str, str], tuple[Intent, list[str]]] = {}
    for index, entry in enumerate(intents or []):
        cluster_name, group_name, intent, roles = _override(fleet, index, entry)
        overrides[(cluster_name, group_name)] = (intent, roles)
    groups = []
    for name in sorted(fleet.clusters):
        cluster = fleet.clusters[name]
        known = {group.name for group in cluster.node_groups}
        cluster_groups = []
        for group in cluster.node_groups:
            override = overrides.get((name, group.name))
            cluster_groups.append(group_request(name, cluster.region, group, override[0] if override else None))
        for (cluster_name, group_name), (intent, roles) in sorted(overrides.items()):
            if cluster_name == name and group_name not in known:
                new_group = NodeGroup(name=group_name, roles=roles or ["worker"], servers=[], intent=None)
                cluster_groups.append(group_request(name, cluster.region, new_group, intent))
        etcd_groups = [g for g in cluster_groups if g.is_etcd]
        members = sum(g.target for g in etcd_groups)
        changed = [g.group for g in etcd_groups if (name, g.group) in overrides]
        if changed and members not in ETCD_SIZES:
            sizes = ", ".join("%s: %d" % (g.group, g.target) for g in etcd_groups)
            raise PlacementError(
                "intents: cluster %s would have %d etcd members (%s); etcd needs %s or %d to keep a quorum"
                % (name, members, sizes, ", ".join(map(str, ETCD_SIZES[:-1])), ETCD_SIZES[-1]),
                "change the count of %s" % " or ".join(changed),
            )
        groups += cluster_groups
    return candidates, groups
