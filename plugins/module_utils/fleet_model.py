# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet model's errors, names and dataclasses: what ``fleet.parse_fleet`` builds.

Import them from ``fleet`` (it re-exports all of them); the fleet_* parser modules import them from here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import LocatedError
from .vocabulary import LEDGER_STORES, SERVER_STATES, SPREAD_LEVELS

# --------------------------------------------------------------------------- errors


class FleetError(LocatedError):
    """A problem in a fleet file. The message always reads ``FILE: PATH: PROBLEM. Fix: FIX``."""


class FleetValidationError(FleetError):
    """Several problems at once; the first one is also exposed as file/path/problem/fix."""

    MAX_SHOWN = 25

    def __init__(self, errors):
        first = errors[0]
        self.errors = list(errors)
        super().__init__(first.file, first.path, first.problem, first.fix)
        lines = [str(e) for e in errors[: self.MAX_SHOWN]]
        if len(errors) > self.MAX_SHOWN:
            lines.append(f"... and {len(errors) - self.MAX_SHOWN} more problems")
        if len(errors) > 1:
            self.args = (f"{len(errors)} problems in the fleet file:\n" + "\n".join(lines),)

    def __str__(self):
        return self.args[0]


# --------------------------------------------------------------------------- constants

STATES = SERVER_STATES
STORES = LEDGER_STORES
SPREAD_DOMAINS = SPREAD_LEVELS

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}\Z")
VERSION_RE = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+\Z")
NAME_FIX = "use 1-63 characters: letters, digits, '.', '_' or '-', starting with a letter or digit"
BMC_TYPES = ("redfish",)

# --------------------------------------------------------------------------- dataclasses


@dataclass(slots=True)
class Rack:
    name: str
    region: str
    datacenter: str
    row: str
    tor: str


@dataclass(slots=True)
class Row:
    name: str
    racks: list[str]


@dataclass(slots=True)
class Datacenter:
    name: str
    region: str
    rows: dict[str, Row]


@dataclass(slots=True)
class Region:
    name: str
    datacenters: list[str]


@dataclass(slots=True)
class Network:
    name: str
    cidr: str
    kind: str
    first: int  # integer bounds, for fast membership tests
    last: int
    version: int


@dataclass(slots=True)
class Disk:
    type: str
    size_gb: int


@dataclass(slots=True)
class Nic:
    name: str
    speed_gbps: int


@dataclass(slots=True)
class Gpu:
    model: str
    count: int


@dataclass(slots=True)
class Hardware:
    cores: int
    memory_gb: int
    disks: list[Disk]
    nics: list[Nic]
    gpus: list[Gpu]

    @property
    def disk_total_gb(self):
        return sum(d.size_gb for d in self.disks)

    @property
    def nic_max_gbps(self):
        return max((n.speed_gbps for n in self.nics), default=0)

    @property
    def gpu_count(self):
        return sum(g.count for g in self.gpus)

    def as_dict(self):
        return {
            "cores": self.cores,
            "memory_gb": self.memory_gb,
            "disks": [{"type": d.type, "size_gb": d.size_gb} for d in self.disks],
            "nics": [{"name": n.name, "speed_gbps": n.speed_gbps} for n in self.nics],
            "gpus": [{"model": g.model, "count": g.count} for g in self.gpus],
            "disk_total_gb": self.disk_total_gb,
            "nic_max_gbps": self.nic_max_gbps,
            "gpu_count": self.gpu_count,
        }


@dataclass(frozen=True)
class Location:
    """Where a server stands. Racks and rows are named uniquely inside their datacenter."""

    region: str
    datacenter: str
    row: str
    rack: str
    tor: str = ""  # top-of-rack switch; default "<datacenter>-<rack>-tor", as in the fleet file

    def __post_init__(self):
        if not self.tor:
            object.__setattr__(self, "tor", f"{self.datacenter}-{self.rack}-tor")
        # Built once: the placement loops ask for these keys millions of times on big fleets.
        object.__setattr__(self, "_domains", {
            "tor": ("tor", self.tor),
            "rack": ("rack", self.datacenter, self.rack),
            "row": ("row", self.datacenter, self.row),
            "datacenter": ("datacenter", self.datacenter),
            "region": ("region", self.region),
        })

    @property
    def failure_domain(self):
        return f"{self.region}/{self.datacenter}/{self.row}/{self.rack}"

    def domain(self, level):
        """Key of the failure domain at ``level`` (tor, rack, row, datacenter, region)."""
        return self._domains[level]

    def describe(self, level):
        if level in ("rack", "row"):
            return f"{level} {self.datacenter}/{getattr(self, level)}"
        if level == "datacenter":
            return f"datacenter {self.datacenter}"
        return f"region {self.region}"


@dataclass(slots=True)
class Addresses:
    private: str
    private_network: str | None
    public: str | None


@dataclass(slots=True, frozen=True)
class Protection:
    """Deletion protection: destructive playbooks (reset, remediation) refuse the server while it is on."""

    deletion: bool = False
    reason: str = ""


@dataclass(slots=True, frozen=True)
class Bmc:
    """The server's baseboard management controller: how recovery fences (powers off) the server.

    ``credentials`` is a name, never a secret: the playbook reads ``bmc_credentials[credentials]``
    (``username``, ``password``) from vaulted inventory vars or an AWX credential.
    """

    type: str  # one of BMC_TYPES
    address: str  # as written: a host[:port] or an https:// URL
    credentials: str
    system_id: str | None = None  # the Redfish ComputerSystem Id; needed when the BMC manages several systems
    validate_certs: bool = True

    @property
    def baseuri(self):
        """``host[:port]``, what community.general's redfish modules take (they always speak HTTPS)."""
        address = self.address
        if address[:8].lower() == "https://":
            address = address[8:]
        return address.rstrip("/")

    def as_dict(self):
        return {"type": self.type, "address": self.address, "baseuri": self.baseuri, "system_id": self.system_id,
                "credentials": self.credentials, "validate_certs": self.validate_certs}


@dataclass(slots=True)
class Server:
    name: str
    state: str
    hardware: Hardware
    location: Location
    addresses: Addresses
    labels: dict
    connection: dict
    index: int  # position in servers[], for error paths
    protection: Protection = Protection()
    bmc: Bmc | None = None
    state_reason: str = ""  # why it is in its state (maintenance: recorded on the Node when it is cordoned)


@dataclass(slots=True, frozen=True)
class Intent:
    count: int = 0
    min_cores: int = 0
    min_memory_gb: int = 0
    disk_type: str = ""
    min_disk_gb: int = 0
    min_nic_gbps: int = 0
    gpus: int = 0
    dedicated: str = ""
    spread: str = "rack"
    max_share_per_domain: float = 1.0


@dataclass(slots=True, frozen=True)
class Taint:
    """A Kubernetes node taint a node group declares; Kubernetes keeps one per key and effect."""

    key: str
    effect: str  # one of vocabulary.TAINT_EFFECTS
    value: str = ""  # empty: no value

    def as_dict(self):
        return {"key": self.key, "value": self.value, "effect": self.effect}


@dataclass(slots=True)
class NodeGroup:
    name: str
    roles: list[str]
    servers: list[str]  # named in the fleet file (pinned)
    intent: Intent | None
    placed: list[str] = field(default_factory=list)  # chosen by placement (its ledger), see place_members()
    labels: dict = field(default_factory=dict)  # Kubernetes node labels of every member, beside its server's
    taints: list[Taint] = field(default_factory=list)

    @property
    def members(self):
        """Every server of the group: the pinned ones, then the placed ones."""
        return self.servers + self.placed


@dataclass(slots=True)
class Api:
    vip: str
    port: int


@dataclass(slots=True)
class WireGuard:
    cidr: str
    port: int


@dataclass(slots=True)
class Cluster:
    name: str
    region: str
    kubernetes_version: str
    api: Api
    pod_cidr: str
    node_prefix_length: int
    service_cidr: str
    wireguard: WireGuard
    pod_network: str
    node_groups: list[NodeGroup]
    index: int

    def members(self):
        """Server names of every node group (pinned and placed), each once, in fleet-file order."""
        seen = {}
        for group in self.node_groups:
            for name in group.members:
                seen.setdefault(name, None)
        return list(seen)

    def roles_of(self, server_name):
        roles = []
        for group in self.node_groups:
            if server_name in group.members:
                roles.extend(r for r in group.roles if r not in roles)
        return roles

    def groups_of(self, server_name):
        return [g.name for g in self.node_groups if server_name in g.members]


@dataclass(slots=True)
class AllocationSettings:
    store: str = "file"
    file: str | None = None  # ledger path (file store); relative to the fleet file
    kubernetes: dict = field(default_factory=dict)  # kubeconfig, context, namespace, name


@dataclass(slots=True)
class Fleet:
    source: str
    regions: dict[str, Region]
    datacenters: dict[str, Datacenter]
    racks: dict[tuple[str, str], Rack]  # (datacenter, rack) -> Rack
    networks: dict[str, Network]
    servers: dict[str, Server]  # fleet-file order
    clusters: dict[str, Cluster]  # fleet-file order
    allocations: AllocationSettings
    server_cluster: dict[str, str]  # server name -> cluster name

    def cluster_of(self, server_name):
        name = self.server_cluster.get(server_name)
        return self.clusters[name] if name else None

    def hop_distance(self, a, b):
        return hop_distance(self.servers[a], self.servers[b])


def hop_distance(a, b):
    """Network hops between two servers: 0 same server, 1 same ToR, 2 same row,
    3 same datacenter, 4 same region, 5 otherwise."""
    if a.name == b.name:
        return 0
    la, lb = a.location, b.location
    if la.region != lb.region:
        return 5
    if la.datacenter != lb.datacenter:
        return 4
    if la.tor == lb.tor:
        return 1
    if la.row != lb.row:
        return 3
    return 2
