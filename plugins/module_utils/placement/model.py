# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The placement engine's input model and its validation.

The engine works on its own small model (``Candidate``, ``GroupRequest``, ``WorkloadRequest``,
``PlacementOptions``) so it can be fed from the fleet file (``placement.plan.model_from_fleet``), from tests
or from a benchmark generator. Every check of a value given by a user lives here and raises
``PlacementError`` naming the option, the bad value and the fix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

from ansible_collections.baremetal.k8s.plugins.module_utils.errors import BaremetalError
from ansible_collections.baremetal.k8s.plugins.module_utils.fleet import Intent, Location
from ansible_collections.baremetal.k8s.plugins.module_utils.vocabulary import (
    DISK_TYPES,
    SPREAD_LEVELS,
    WORKLOAD_SPREAD_LEVELS,
)

# labels.workload values that do not reserve a server for one workload type.
UNRESERVED_LABELS = ("", "general")
# The ledger keeps the last groups of every server (reuse ranks them first).
HISTORY_DEPTH = 5

# Node labels the workload manifests select on (the node role sets them).
NODE_LABELS = {
    "rack": "baremetal.k8s/rack",
    "row": "baremetal.k8s/row",
    "datacenter": "topology.kubernetes.io/zone",
    "region": "topology.kubernetes.io/region",
    "node_group": "baremetal.k8s/node-group",
    "workload": "baremetal.k8s/workload",
}

__all__ = [
    "HISTORY_DEPTH",
    "NODE_LABELS",
    "UNRESERVED_LABELS",
    "Candidate",
    "GroupRequest",
    "Location",
    "PlacementError",
    "PlacementOptions",
    "WorkloadRequest",
    "etcd_quorum_cap",
    "share_cap",
    "workload_request",
]


class PlacementError(BaremetalError):
    """The input cannot be planned (bad option, unknown cluster or server, bad ledger)."""


def _is_number(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def _is_whole(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, int)


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

    def validate(self, where: str = "workloads", index: int | None = None) -> None:
        """Raise PlacementError for a field no plan can use; ``where`` and ``index`` name the entry
        (``workloads[3]``)."""
        # The plain check first: it runs for every workload of every plan (thousands).
        if (self.name and (self.region or self.cluster) and _is_whole(self.replicas) and self.replicas >= 1
                and _is_number(self.cpu) and self.cpu >= 0 and _is_number(self.memory_gb) and self.memory_gb >= 0
                and (not self.disk_type or self.disk_type in DISK_TYPES) and self.spread in WORKLOAD_SPREAD_LEVELS):
            return
        if index is not None:
            where = "%s[%d]" % (where, index)
        where = "%s (%s)" % (where, self.name or "?")
        if not self.name:
            raise PlacementError("%s: name is required" % where, "give every workload a unique name")
        if not self.region and not self.cluster:
            raise PlacementError("%s: give region or cluster" % where,
                                 "set region (any cluster of it) or cluster (only that one)")
        if not _is_whole(self.replicas) or self.replicas < 1:
            raise PlacementError("%s: replicas must be a whole number >= 1, not %r" % (where, self.replicas),
                                 "give the number of replicas, one per node, e.g. 3")
        for field_name in ("cpu", "memory_gb"):
            value = getattr(self, field_name)
            if not _is_number(value) or value < 0:
                raise PlacementError("%s: %s must be a number >= 0, not %r" % (where, field_name, value),
                                     "give the request per replica, e.g. %s: 2" % field_name)
        if self.disk_type and self.disk_type not in DISK_TYPES:
            raise PlacementError("%s: disk_type must be one of %s, not %r"
                                 % (where, ", ".join(DISK_TYPES), self.disk_type), "use a disk type of the fleet")
        raise PlacementError("%s: spread must be %s or %s, not %r"
                             % (where, ", ".join(WORKLOAD_SPREAD_LEVELS[:-1]), WORKLOAD_SPREAD_LEVELS[-1],
                                self.spread), "use rack (the default) unless the replicas need more")


def workload_request(data: dict, index: int = 0) -> WorkloadRequest:
    """A workload from the module's ``workloads`` option (absent or None fields take defaults), validated."""
    data = {k: v for k, v in data.items() if v is not None}
    values = {}
    for field_name, convert in (("replicas", None), ("cpu", float), ("memory_gb", float)):
        if field_name not in data:
            continue
        value = data[field_name]
        # Whole numbers for replicas, any number for cpu and memory (Ansible hands over floats for those).
        if convert and _is_number(value):
            value = convert(value)
        values[field_name] = value
    request = WorkloadRequest(
        name=str(data.get("name") or ""),
        region=str(data.get("region") or ""),
        cluster=str(data.get("cluster") or ""),
        node_group=str(data.get("node_group") or ""),
        disk_type=str(data.get("disk_type") or ""),
        dedicated=str(data.get("dedicated") or ""),
        spread=str(data.get("spread") or "rack"),
        **values,
    )
    request.validate("workloads", index)
    return request


@dataclass
class PlacementOptions:
    rebalance: bool = False
    allow_blast_radius: bool = False
    max_share_per_domain: float = 0.5  # of one cluster's nodes in one failure domain
    failure_domain: str = "rack"
    replace: tuple[str, ...] = ()  # servers to take out of their group and replace
    reserved_cores: float = 2.0  # per node, for the system and Kubernetes itself
    reserved_memory_gb: float = 8.0
    # Workloads that fit nowhere are reported and left out; the rest are placed (docs/placement.md).
    partial_workloads: bool = True

    def validate(self) -> None:
        if self.failure_domain not in SPREAD_LEVELS:
            raise PlacementError("failure_domain must be one of %s, not %r"
                                 % (", ".join(SPREAD_LEVELS), self.failure_domain),
                                 "use rack (the default), row or datacenter")
        share = self.max_share_per_domain
        if not _is_number(share) or not 0 < share <= 1:
            raise PlacementError("max_share_per_domain must be in (0, 1], not %r" % (share,),
                                 "give the largest share of a cluster's nodes in one failure domain, e.g. 0.5")
        for name, example in (("reserved_cores", "2"), ("reserved_memory_gb", "8")):
            value = getattr(self, name)
            if not _is_number(value) or value < 0:
                raise PlacementError("%s must be a number >= 0, not %r" % (name, value),
                                     "give what each node keeps for the system and Kubernetes, e.g. %s" % example)
        bad = [s for s in self.replace if not isinstance(s, str) or not s]
        if bad:
            raise PlacementError("replace must list server names, not %r" % (bad[0],),
                                 "name the servers to take out of their node groups")


def share_cap(share: float, total: int) -> int:
    """Most members one domain may hold: a share of ``total``, never less than one."""
    return max(1, math.floor(share * total + 1e-9))


def etcd_quorum_cap(members: int) -> int:
    """Most etcd members one domain may hold so that losing it keeps quorum."""
    return max(1, (members - 1) // 2)
