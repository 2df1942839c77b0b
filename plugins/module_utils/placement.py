# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Intent-driven placement: the input model, the ledger and the entry point.

Two levels, one call (``plan_placement``):

1. servers to clusters' node groups (``placement_servers``): hard filters
   (hardware, dedicated labels, state), then a greedy pick per server ranked by
   failure-domain spread, reuse of servers that served the group before,
   network locality (hops to the group's peers) and best fit;
2. tenant workloads to node groups (``placement_workloads``): least-connection
   across the clusters of a region, capacity checks per node, replicas spread
   across failure domains, and the scheduling snippet for the manifests.

The engine works on its own small model (``Candidate``, ``GroupRequest``,
``WorkloadRequest``) so it can be fed from the fleet file, from tests or from
a benchmark generator; ``model_from_fleet`` adapts the ``fleet.Fleet`` model
(``fleet.load_fleet``), and distances follow ``fleet.hop_distance``.

Everything is deterministic: inputs are sorted by name and every ranking ends
with the name as the last tie-break. Already placed servers and workloads are
kept unless ``rebalance`` is asked for, so re-running a plan changes nothing.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from functools import cached_property

from ansible_collections.baremetal.k8s.plugins.module_utils.errors import BaremetalError
from ansible_collections.baremetal.k8s.plugins.module_utils.fleet import Intent, Location

LEVELS = ("rack", "row", "datacenter", "region")
# Servers the engine may hand out; active servers not serving any group count as free.
USABLE_STATES = ("spare", "active")
# Servers in these states are released from their group and replaced (recovery).
RELEASE_STATES = ("failed", "retired")
# labels.workload values that do not reserve a server for one workload type.
UNRESERVED_LABELS = ("", "general")
HISTORY_DEPTH = 5
LEDGER_VERSION = 1

# Node labels the workload manifests select on (the node role sets them).
NODE_LABELS = {
    "rack": "baremetal.k8s/rack",
    "row": "baremetal.k8s/row",
    "datacenter": "topology.kubernetes.io/zone",
    "region": "topology.kubernetes.io/region",
    "node_group": "baremetal.k8s/node-group",
    "workload": "baremetal.k8s/workload",
}


class PlacementError(BaremetalError):
    """The input cannot be planned (bad option, unknown cluster, bad ledger)."""


@dataclass(frozen=True)
class Candidate:
    """A physical server as the placement engine sees it."""

    name: str
    location: Location
    state: str = "spare"
    cores: int = 0
    memory_gb: int = 0
    disks: tuple[tuple[str, int], ...] = ()  # (type, size_gb)
    nic_gbps: int = 0  # fastest NIC
    gpus: int = 0
    workload_label: str = ""  # labels.workload

    def largest_disk(self, disk_type: str = "") -> int:
        sizes = [size for kind, size in self.disks if not disk_type or kind == disk_type]
        return max(sizes, default=0)


@dataclass(frozen=True)
class GroupRequest:
    """A node group: its pinned servers and, when it has one, its intent (the fleet file's ``Intent``).

    The requirements are read through ``intent``, so an intent field added to the fleet format needs no
    second copy here. As in the fleet file, an intent's count of 0 means "the pinned servers' number".
    """

    cluster: str
    group: str
    region: str
    roles: tuple[str, ...] = ("worker",)
    pinned: tuple[str, ...] = ()  # servers named in the fleet file, never moved
    intent: Intent | None = None  # None: no intent, pinned servers only

    @cached_property
    def key(self) -> str:
        return "%s/%s" % (self.cluster, self.group)

    @property
    def has_intent(self) -> bool:
        return self.intent is not None

    @cached_property
    def is_etcd(self) -> bool:
        return "etcd" in self.roles

    @property
    def target(self) -> int:
        """Size of the group: the intent's count, else (no intent, or no count) the pinned servers."""
        if self.intent is None:
            return len(self.pinned)
        return self.intent.count or len(self.pinned)


@dataclass(frozen=True)
class WorkloadRequest:
    """A tenant workload (database cluster, Consul, Redis ...) to place on a node group."""

    name: str
    region: str = ""
    cluster: str = ""  # optional: only this cluster
    node_group: str = ""  # optional: only node groups with this name (default: worker groups)
    replicas: int = 1
    cpu: float = 1.0  # cores per replica
    memory_gb: float = 1.0  # per replica
    disk_type: str = ""
    dedicated: str = ""  # nodes must carry labels.workload == dedicated
    spread: str = "rack"

    def spec(self) -> dict:
        """What the ledger remembers to notice a changed request."""
        return {
            "replicas": self.replicas,
            "cpu": float(self.cpu),
            "memory_gb": float(self.memory_gb),
            "disk_type": self.disk_type,
            "dedicated": self.dedicated,
            "spread": self.spread,
        }


@dataclass
class PlacementOptions:
    rebalance: bool = False
    allow_blast_radius: bool = False
    max_share_per_domain: float = 0.5  # of one cluster's nodes in one failure domain
    failure_domain: str = "rack"
    replace: tuple[str, ...] = ()  # servers to take out of their group and replace
    reserved_cores: float = 2.0  # per node, for the system and Kubernetes itself
    reserved_memory_gb: float = 8.0

    def validate(self) -> None:
        if self.failure_domain not in LEVELS[:3]:
            raise PlacementError("failure_domain must be one of rack, row, datacenter, not %r" % self.failure_domain)
        if not 0 < self.max_share_per_domain <= 1:
            raise PlacementError("max_share_per_domain must be in (0, 1], not %r" % self.max_share_per_domain)


def share_cap(share: float, total: int) -> int:
    """Most members one domain may hold: a share of ``total``, never less than one."""
    return max(1, math.floor(share * total + 1e-9))


def etcd_quorum_cap(members: int) -> int:
    """Most etcd members one domain may hold so that losing it keeps quorum."""
    return max(1, (members - 1) // 2)


# --- ledger -----------------------------------------------------------------


@dataclass
class Ledger:
    """What the engine decided earlier: ``<fleet>.placement.yml``."""

    servers: dict[str, tuple[str, str]] = field(default_factory=dict)  # server -> (cluster, group)
    history: dict[str, list[str]] = field(default_factory=dict)  # server -> ["cluster/group", ...] oldest first
    workloads: dict[str, dict] = field(default_factory=dict)  # name -> {cluster, group, nodes, spec}

    @classmethod
    def from_data(cls, data, source: str = "ledger") -> Ledger:
        if not data:
            return cls()
        if not isinstance(data, dict) or data.get("version", LEDGER_VERSION) != LEDGER_VERSION:
            raise PlacementError("%s: not a version %d placement ledger" % (source, LEDGER_VERSION))
        ledger = cls()
        for server, entry in sorted((data.get("servers") or {}).items()):
            if not isinstance(entry, dict) or not entry.get("cluster") or not entry.get("group"):
                raise PlacementError("%s: servers.%s needs cluster and group" % (source, server))
            ledger.servers[str(server)] = (str(entry["cluster"]), str(entry["group"]))
        for server, past in sorted((data.get("history") or {}).items()):
            ledger.history[str(server)] = [str(item) for item in past or []]
        for name, entry in sorted((data.get("workloads") or {}).items()):
            if not isinstance(entry, dict) or not entry.get("cluster") or not entry.get("nodes"):
                raise PlacementError("%s: workloads.%s needs cluster and nodes" % (source, name))
            ledger.workloads[str(name)] = {
                "cluster": str(entry["cluster"]),
                "group": str(entry.get("group", "")),
                "nodes": [str(node) for node in entry["nodes"]],
                "spec": dict(entry.get("spec") or {}),
            }
        return ledger

    def to_data(self) -> dict:
        return {
            "version": LEDGER_VERSION,
            "servers": {s: {"cluster": c, "group": g} for s, (c, g) in sorted(self.servers.items())},
            "history": {s: list(h) for s, h in sorted(self.history.items()) if h},
            "workloads": {
                name: {"cluster": w["cluster"], "group": w["group"], "nodes": list(w["nodes"]), "spec": dict(w["spec"])}
                for name, w in sorted(self.workloads.items())
            },
        }


def dump_ledger(ledger: Ledger) -> str:
    """The ledger as its file store writes it (YAML with a header), for diffs and comparisons."""
    from ansible_collections.baremetal.k8s.plugins.module_utils.ledger_store import PLACEMENT, encode

    return encode(ledger.to_data(), "placement.yml", PLACEMENT)


def parse_ledger(text: str, source: str = "ledger") -> Ledger:
    import yaml

    try:
        return Ledger.from_data(yaml.safe_load(text) if text else None, source)
    except yaml.YAMLError as exc:
        raise PlacementError("%s: not valid YAML: %s" % (source, exc)) from exc


# --- adapters ---------------------------------------------------------------

# The fields of a node group's intent: the module's ``intents`` option takes the same ones.
INTENT_FIELDS = tuple(f.name for f in dataclasses.fields(Intent))


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


def group_request(cluster: str, region: str, group, override: dict | None = None) -> GroupRequest:
    """A ``fleet.NodeGroup`` as a GroupRequest; ``override`` adds or changes intent fields."""
    intent = group.intent
    if override:
        # Values come checked (check_intent_values); None means "not given".
        changes = {k: v for k, v in override.items() if k in INTENT_FIELDS and v is not None}
        intent = dataclasses.replace(intent or Intent(), **changes)
    return GroupRequest(
        cluster=cluster,
        group=group.name,
        region=region,
        roles=tuple(group.roles),
        pinned=tuple(group.servers),
        intent=intent,
    )


def model_from_fleet(fleet, intents: list[dict] | None = None):
    """A ``fleet.Fleet`` -> (candidates by name, group requests).

    ``intents`` add or override node group intents: ``{cluster, group, roles?, count, min_cores, ...}``;
    a group the fleet does not have yet is created with roles ``[worker]`` unless given.
    """
    from ansible_collections.baremetal.k8s.plugins.module_utils.fleet import NodeGroup

    candidates = {name: candidate_from_server(server) for name, server in fleet.servers.items()}
    overrides: dict[tuple[str, str], dict] = {}
    for index, intent in enumerate(intents or []):
        cluster, group = str(intent.get("cluster") or ""), str(intent.get("group") or "")
        if cluster not in fleet.clusters:
            raise PlacementError(
                "intents[%d]: cluster %r is not in the fleet; known: %s"
                % (index, cluster, ", ".join(sorted(fleet.clusters)) or "none")
            )
        if not group:
            raise PlacementError("intents[%d]: group is required" % index)
        unknown = sorted(set(intent) - set(INTENT_FIELDS) - {"cluster", "group", "roles"})
        if unknown:
            raise PlacementError("intents[%d]: unknown field(s) %s; known: %s"
                                 % (index, ", ".join(unknown), ", ".join(INTENT_FIELDS)))
        check_intent_values(intent, "intents[%d] (%s/%s)" % (index, cluster, group))
        overrides[(cluster, group)] = intent
    groups = []
    for name in sorted(fleet.clusters):
        cluster = fleet.clusters[name]
        known = {group.name for group in cluster.node_groups}
        cluster_groups = []
        for group in cluster.node_groups:
            cluster_groups.append(group_request(name, cluster.region, group, overrides.get((name, group.name))))
        for (cluster_name, group_name), intent in sorted(overrides.items()):
            if cluster_name == name and group_name not in known:
                roles = list(intent.get("roles") or ["worker"])
                new_group = NodeGroup(name=group_name, roles=roles, servers=[], intent=None)
                cluster_groups.append(group_request(name, cluster.region, new_group, intent))
        etcd_groups = [g for g in cluster_groups if g.is_etcd]
        members = sum(g.target for g in etcd_groups)
        changed = [g.group for g in etcd_groups if (name, g.group) in overrides]
        if changed and members not in ETCD_SIZES:
            sizes = ", ".join("%s: %d" % (g.group, g.target) for g in etcd_groups)
            raise PlacementError(
                "intents: cluster %s would have %d etcd members (%s); etcd needs 1, 3, 5 or 7 to keep a quorum: "
                "change the count of %s" % (name, members, sizes, " or ".join(changed))
            )
        groups += cluster_groups
    return candidates, groups


ETCD_SIZES = (1, 3, 5, 7)
INTENT_CHOICES = {"disk_type": ("nvme", "ssd", "hdd"), "spread": LEVELS[:3],
                  "roles": ("control_plane", "etcd", "worker", "load_balancer")}
# Counts and minimums (count, min_cores, ...): the intent fields whose default is a whole number.
WHOLE_NUMBER_FIELDS = tuple(
    f.name for f in dataclasses.fields(Intent) if isinstance(f.default, int) and not isinstance(f.default, bool)
)


def check_intent_values(intent: dict, where: str) -> None:
    """The same rules as the fleet file's intents, for the module's ``intents`` option."""
    for key in WHOLE_NUMBER_FIELDS:
        value = intent.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise PlacementError("%s: %s must be a whole number >= 0, not %r" % (where, key, value))
    for key in ("disk_type", "spread"):
        if intent.get(key) and intent[key] not in INTENT_CHOICES[key]:
            raise PlacementError("%s: %s must be one of %s, not %r"
                                 % (where, key, ", ".join(INTENT_CHOICES[key]), intent[key]))
    unknown_roles = [role for role in intent.get("roles") or () if role not in INTENT_CHOICES["roles"]]
    if unknown_roles:
        raise PlacementError("%s: unknown role(s) %s; known: %s"
                             % (where, ", ".join(map(str, unknown_roles)), ", ".join(INTENT_CHOICES["roles"])))
    share = intent.get("max_share_per_domain")
    if share is not None and (isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share <= 1):
        raise PlacementError("%s: max_share_per_domain must be a number in (0, 1], e.g. 0.34, not %r" % (where, share))


def workload_request(data: dict, index: int = 0) -> WorkloadRequest:
    """A workload from the module's ``workloads`` option (absent or None fields take defaults)."""
    data = {k: v for k, v in data.items() if v is not None}
    name = str(data.get("name") or "")
    if not name:
        raise PlacementError("workloads[%d]: name is required" % index)
    if not data.get("region") and not data.get("cluster"):
        raise PlacementError("workloads[%d] (%s): give region or cluster" % (index, name))
    spread = str(data.get("spread") or "rack")
    if spread not in (*LEVELS[:3], "node"):
        raise PlacementError("workloads[%d] (%s): spread must be rack, row, datacenter or node" % (index, name))
    request = WorkloadRequest(
        name=name,
        region=str(data.get("region") or ""),
        cluster=str(data.get("cluster") or ""),
        node_group=str(data.get("node_group") or ""),
        replicas=int(data.get("replicas", 1)),
        cpu=float(data.get("cpu", 1.0)),
        memory_gb=float(data.get("memory_gb", 1.0)),
        disk_type=str(data.get("disk_type") or ""),
        dedicated=str(data.get("dedicated") or ""),
        spread=spread,
    )
    if request.replicas < 1 or request.cpu < 0 or request.memory_gb < 0:
        raise PlacementError("workloads[%d] (%s): replicas >= 1, cpu and memory_gb >= 0" % (index, name))
    return request


# --- entry point ------------------------------------------------------------


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
    failures: list[str]  # one line per unsatisfiable intent or refused blast radius


def plan_placement(
    candidates: dict[str, Candidate],
    groups: list[GroupRequest],
    ledger: Ledger,
    options: PlacementOptions | None = None,
    workloads: list[WorkloadRequest] | None = None,
) -> PlacementResult:
    """Plan both levels. ``workloads=None`` leaves the ledger's workloads untouched."""
    from ansible_collections.baremetal.k8s.plugins.module_utils.placement_servers import place_servers
    from ansible_collections.baremetal.k8s.plugins.module_utils.placement_workloads import place_workloads

    options = options or PlacementOptions()
    options.validate()
    servers = place_servers(candidates, groups, ledger, options)
    new_ledger = Ledger(servers=servers.assignments, history=servers.history, workloads=dict(ledger.workloads))
    workload_result = None
    failures = list(servers.failures)
    warnings = list(servers.warnings)
    drift = list(servers.drift)
    if workloads is not None and not servers.failures:
        workload_result = place_workloads(candidates, groups, servers.members, ledger, options, workloads=workloads)
        new_ledger.workloads = workload_result.placements
        failures += workload_result.failures
        warnings += workload_result.warnings
        drift += workload_result.drift
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
