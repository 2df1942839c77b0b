# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet model: load a fleet file, validate it, return dataclasses.

Public API (other modules rely on it):

- ``load_fleet(path) -> Fleet`` reads YAML or JSON from disk;
- ``parse_fleet(data, source_name) -> Fleet`` validates already-loaded data;
- ``hop_distance(a, b) -> int`` network distance between two servers;
- ``FleetError`` (``.file``, ``.path``, ``.problem``, ``.fix``) is the only
  exception a bad fleet file produces; ``FleetValidationError`` is the
  subclass that carries every problem found (``.errors``).

Validation is hand-written against the field tables below (the "schema"): one
pass both checks and builds the dataclasses, which keeps a 10,000-server fleet
well under the inventory time budget. See docs/fleet-format.md.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import re
from dataclasses import dataclass, field

from .errors import LocatedError
from .vocabulary import (
    DISK_TYPES,
    ETCD_SIZES,
    LEDGER_STORES,
    NETWORK_KINDS,
    POD_NETWORKS,
    ROLES,
    SERVER_STATES,
    SPREAD_LEVELS,
)

try:
    import netaddr
except ImportError:  # parse_fleet() reports it as a FleetError; the import sanity test has no netaddr
    netaddr = None

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

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
VERSION_RE = re.compile(r"^\d+\.\d+\.\d+$")
NAME_FIX = "use 1-63 characters: letters, digits, '.', '_' or '-', starting with a letter or digit"

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


@dataclass(slots=True)
class NodeGroup:
    name: str
    roles: list[str]
    servers: list[str]  # named in the fleet file (pinned)
    intent: Intent | None
    placed: list[str] = field(default_factory=list)  # chosen by placement (its ledger), see place_members()

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


def place_members(fleet, assignments):
    """Add the servers placement chose (``{server: (cluster, group)}``, the placement ledger) to their node groups.

    Changes ``fleet`` in place and returns a warning for every assignment that no longer fits the fleet file
    (unknown server, cluster or group; a server the fleet file already gives a cluster; another region); such
    an assignment is left out until placement runs again. A placed server is a member like a pinned one: it
    gets groups, a pod prefix and a WireGuard address.
    """
    warnings = []
    for server_name, (cluster_name, group_name) in sorted(assignments.items()):
        where = f"placement ledger: {server_name} -> {cluster_name}/{group_name}"
        server = fleet.servers.get(server_name)
        cluster = fleet.clusters.get(cluster_name)
        group = next((g for g in cluster.node_groups if g.name == group_name), None) if cluster else None
        if server is None:
            warnings.append(f"{where}: the fleet file has no server {server_name!r}; run placement again")
        elif group is None:
            warnings.append(f"{where}: the fleet file has no such node group; run placement again")
        elif server_name in fleet.server_cluster:
            other = fleet.server_cluster[server_name]
            warnings.append(f"{where}: the fleet file already puts it in cluster {other}; that wins")
        elif server.location.region != cluster.region:
            warnings.append(f"{where}: the server is in region {server.location.region}, the cluster in "
                            f"{cluster.region}; run placement again")
        else:
            group.placed.append(server_name)
            fleet.server_cluster[server_name] = cluster_name
    return warnings


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


# --------------------------------------------------------------------------- loading


def load_fleet(path):
    """Read, validate and return the fleet at ``path`` (YAML or JSON)."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise FleetError(path, None, f"cannot read the fleet file ({exc.strerror})", "check the path") from None
    except UnicodeDecodeError:
        raise FleetError(path, None, "the file is not UTF-8 text", "save the fleet file as UTF-8") from None
    return parse_fleet(_decode(text, path), path)


def _decode(text, path):
    if path.endswith(".json"):
        try:
            return json.loads(text)
        except ValueError as exc:
            raise FleetError(path, f"line {exc.lineno}", f"invalid JSON ({exc.msg})", "fix the syntax") from None
    import yaml  # only needed for YAML; the C loader is ~10x faster on big fleets

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise FleetError(path, where, f"invalid YAML ({problem})", "fix the YAML syntax at that position") from None
    except (ValueError, RecursionError, OverflowError) as exc:  # e.g. bad timestamps, deep nesting
        raise FleetError(path, None, f"cannot read YAML ({exc})", "fix the value the message names") from None


def parse_fleet(data, source_name="<fleet>"):
    """Validate ``data`` (the decoded fleet file) and return a ``Fleet``.

    Raises ``FleetValidationError`` listing every problem found.
    """
    if netaddr is None:
        raise FleetError(source_name, None, "the netaddr Python package is missing", "pip install netaddr")
    return _Parser(source_name).parse(data)


# --------------------------------------------------------------------------- the parser


class _Skip(Exception):
    """Internal: the current item is broken; its error is already recorded."""


def _type_name(value):
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "an integer"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def _suggest(known, limit=8):
    known = sorted(known)
    if not known:
        return "a defined one (none are defined yet)"
    shown = ", ".join(known[:limit])
    return "one of: {}{}".format(shown, ", ..." if len(known) > limit else "")


class _Parser:
    def __init__(self, source):
        self.source = source
        self.errors = []
        self.network_paths = {}  # network name -> path of its cidr, for overlap messages
        self.cluster_spans = []  # (version, first, last, path, cidr) of every cluster network

    # -- error helpers

    def error(self, path, problem, fix):
        self.errors.append(FleetError(self.source, path, problem, fix))

    def fail(self, path, problem, fix):
        self.error(path, problem, fix)
        raise _Skip()

    def mapping(self, value, path, allowed, required=()):
        if not isinstance(value, dict):
            self.fail(path, f"expected a mapping, got {_type_name(value)}", "write it as key: value pairs")
        unknown = value.keys() - allowed
        if unknown:
            key = sorted(map(str, unknown))[0]
            self.fail(
                f"{path}.{key}" if path else key,
                f"unknown field {key!r}",
                f"remove it or use {_suggest(allowed)}",
            )
        for key in required:
            if key not in value:
                self.fail(f"{path}.{key}" if path else key, "required field is missing", f"add {key}")
        return value

    def listof(self, value, path, allow_missing=True):
        if value is None and allow_missing:
            return []
        if not isinstance(value, list):
            self.fail(path, f"expected a list, got {_type_name(value)}", "write it as a YAML list (- item)")
        return value

    def string(self, value, path, pattern=None, fix=NAME_FIX):
        if not isinstance(value, str) or not value:
            self.fail(path, f"expected a non-empty string, got {_type_name(value)}", fix)
        if pattern is not None and not pattern.match(value):
            self.fail(path, f"invalid value {value!r}", fix)
        return value

    def integer(self, value, path, low=None, high=None):
        if not isinstance(value, int) or isinstance(value, bool):
            self.fail(path, f"expected an integer, got {_type_name(value)}", "write a whole number")
        if (low is not None and value < low) or (high is not None and value > high):
            rng = f"at least {low}" if high is None else f"between {low} and {high}"
            self.fail(path, f"{value} is out of range", f"use a value {rng}")
        return value

    def choice(self, value, path, choices):
        if value not in choices or not isinstance(value, str):
            self.fail(path, f"invalid value {value!r}", "use one of: {}".format(", ".join(choices)))
        return value

    def address(self, value, path):
        if not isinstance(value, str):
            self.fail(path, f"expected an IP address, got {_type_name(value)}", "write an address like 10.0.0.1")
        try:
            return netaddr.IPAddress(value, flags=netaddr.INET_PTON)
        except (netaddr.AddrFormatError, ValueError, TypeError):
            self.fail(path, f"{value!r} is not an IP address", "write an address like 10.0.0.1")

    def cidr(self, value, path):
        if not isinstance(value, str) or "/" not in value:
            self.fail(path, f"expected a CIDR, got {value!r}", "write a network like 10.0.0.0/16")
        try:
            net = netaddr.IPNetwork(value)
        except (netaddr.AddrFormatError, ValueError, TypeError):
            self.fail(path, f"{value!r} is not a CIDR", "write a network like 10.0.0.0/16")
        if net.ip != net.network:
            self.fail(path, f"{value} has host bits set", f"use the network address {net.cidr}")
        return net

    def each(self, items, path, fn):
        """Parse every item; a broken item is recorded and skipped."""
        out = []
        for i, item in enumerate(items):
            with contextlib.suppress(_Skip):
                out.append(fn(item, f"{path}[{i}]", i))
        return out

    # -- top level

    def parse(self, data):
        try:
            fleet = self._parse(data)
        except _Skip:
            fleet = None
        if self.errors:
            raise FleetValidationError(self.errors)
        return fleet

    def _parse(self, data):
        if data is None:
            self.fail(None, "the fleet file is empty", "start from inventory/example/fleet.yml")
        top = self.mapping(
            data, "", {"version", "regions", "networks", "servers", "clusters", "allocations"}, ("version",)
        )
        version = top.get("version")
        if isinstance(version, bool) or not isinstance(version, int) or version != 1:
            self.fail("version", "unsupported format version {!r}".format(top.get("version")), "set version: 1")
        self.regions, self.datacenters, self.racks = {}, {}, {}
        self.tors = {}
        self.each(self.listof(top.get("regions"), "regions"), "regions", self.region)
        self.networks = {}
        self.each(self.listof(top.get("networks"), "networks"), "networks", self.network)
        self._check_network_overlaps()
        self.servers, self.addresses, self.broken_servers = {}, {}, set()
        self._private_index = sorted((n.first, n.last, n.name) for n in self.networks.values() if n.kind == "private")
        self.each(self.listof(top.get("servers"), "servers"), "servers", self.server)
        self.clusters, self.server_cluster = {}, {}
        self.each(self.listof(top.get("clusters"), "clusters"), "clusters", self.cluster)
        self._check_cidr_overlaps()
        allocations = AllocationSettings()
        if top.get("allocations") is not None:
            allocations = self.allocations(top["allocations"], "allocations")
        return Fleet(
            source=self.source,
            regions=self.regions,
            datacenters=self.datacenters,
            racks=self.racks,
            networks=self.networks,
            servers=self.servers,
            clusters=self.clusters,
            allocations=allocations,
            server_cluster=self.server_cluster,
        )

    # -- topology

    def region(self, raw, path, _i):
        raw = self.mapping(raw, path, {"name", "datacenters"}, ("name",))
        name = self.string(raw["name"], path + ".name", NAME_RE)
        if name in self.regions:
            self.fail(path + ".name", f"duplicate region {name!r}", "give every region a unique name")
        region = self.regions[name] = Region(name, [])
        dcs = self.listof(raw.get("datacenters"), path + ".datacenters")
        region.datacenters = self.each(dcs, path + ".datacenters", lambda r, p, i: self.datacenter(r, p, name))
        return region

    def datacenter(self, raw, path, region):
        raw = self.mapping(raw, path, {"name", "rows"}, ("name",))
        name = self.string(raw["name"], path + ".name", NAME_RE)
        if name in self.datacenters:
            self.fail(path + ".name", f"duplicate datacenter {name!r}", "datacenter names are unique in the fleet")
        dc = self.datacenters[name] = Datacenter(name, region, {})
        rows = self.listof(raw.get("rows"), path + ".rows")
        self.each(rows, path + ".rows", lambda r, p, i: self.row(r, p, dc))
        return name

    def row(self, raw, path, dc):
        raw = self.mapping(raw, path, {"name", "racks"}, ("name",))
        name = self.string(raw["name"], path + ".name", NAME_RE)
        if name in dc.rows:
            self.fail(path + ".name", f"duplicate row {name!r} in datacenter {dc.name}", "rename the row")
        row = dc.rows[name] = Row(name, [])
        racks = self.listof(raw.get("racks"), path + ".racks")
        row.racks = self.each(racks, path + ".racks", lambda r, p, i: self.rack(r, p, dc, name))
        return row

    def rack(self, raw, path, dc, row):
        raw = self.mapping(raw, path, {"name", "tor"}, ("name",))
        name = self.string(raw["name"], path + ".name", NAME_RE)
        if (dc.name, name) in self.racks:
            self.fail(path + ".name", f"duplicate rack {name!r} in datacenter {dc.name}", "rename the rack")
        tor = raw.get("tor")
        tor = f"{dc.name}-{name}-tor" if tor is None else self.string(tor, path + ".tor", NAME_RE)
        other = self.tors.setdefault(tor, dc.name)
        if other != dc.name:
            self.fail(path + ".tor", f"ToR {tor!r} is already used in datacenter {other}", "rename the switch")
        self.racks[(dc.name, name)] = Rack(name, dc.region, dc.name, row, tor)
        return name

    def network(self, raw, path, _i):
        raw = self.mapping(raw, path, {"name", "cidr", "kind"}, ("name", "cidr"))
        name = self.string(raw["name"], path + ".name", NAME_RE)
        if name in self.networks:
            self.fail(path + ".name", f"duplicate network {name!r}", "give every network a unique name")
        net = self.cidr(raw["cidr"], path + ".cidr")
        kind = self.choice(raw.get("kind", "private"), path + ".kind", NETWORK_KINDS)
        self.networks[name] = Network(name, str(net), kind, net.first, net.last, net.version)
        self.network_paths[name] = path + ".cidr"
        return name

    def _check_network_overlaps(self):
        self._report_overlaps(self._network_spans(), "give every host network its own range")

    def _network_spans(self):
        return [(n.version, n.first, n.last, self.network_paths[n.name], n.cidr) for n in self.networks.values()]

    # -- servers

    SERVER_FIELDS = frozenset(("name", "state", "hardware", "location", "addresses", "labels", "connection",
                               "protection"))
    PROTECTION_FIELDS = frozenset(("deletion", "reason"))
    HARDWARE_FIELDS = frozenset(("cores", "memory_gb", "disks", "nics", "gpus"))
    LOCATION_FIELDS = frozenset(("region", "datacenter", "row", "rack"))
    ADDRESS_FIELDS = frozenset(("private", "private_network", "public"))

    def server(self, raw, path, index):
        raw = self.mapping(raw, path, self.SERVER_FIELDS, ("name", "hardware", "location", "addresses"))
        name = self.string(raw["name"], path + ".name", NAME_RE)
        if name in self.servers:
            first = self.servers[name].index
            self.fail(path + ".name", f"duplicate server {name!r} (also servers[{first}])", "rename one of them")
        try:
            server = self._server_body(raw, path, name, index)
        except _Skip:
            self.broken_servers.add(name)  # clusters naming it get no second "unknown server" error
            raise
        self.servers[name] = server
        return server

    def _server_body(self, raw, path, name, index):
        state = self.choice(raw.get("state", "active"), path + ".state", STATES)
        hardware = self.hardware(raw["hardware"], path + ".hardware")
        location = self.location(raw["location"], path + ".location")
        addresses = self.server_addresses(raw["addresses"], path + ".addresses", name)
        labels = raw.get("labels") or {}
        if not isinstance(labels, dict) or not all(isinstance(k, str) for k in labels):
            self.fail(path + ".labels", "labels must be a mapping of names to values", "write labels as key: value")
        for key, value in labels.items():
            if not isinstance(value, (str, int, float, bool)):
                self.fail(path + ".labels." + key, "label values are strings or numbers", "quote the value")
        connection = raw.get("connection") or {}
        if not isinstance(connection, dict) or not all(isinstance(k, str) for k in connection):
            self.fail(path + ".connection", "connection must be a mapping", "write e.g. ansible_user: root")
        for key in connection:
            if not key.startswith("ansible_"):
                self.fail(path + ".connection." + key, "not an Ansible connection variable", "use ansible_* names")
        protection = self.protection(raw.get("protection"), path + ".protection")
        return Server(name, state, hardware, location, addresses, labels, connection, index, protection)

    def protection(self, raw, path):
        if raw is None:
            return Protection()
        raw = self.mapping(raw, path, self.PROTECTION_FIELDS, ("deletion",))
        if not isinstance(raw["deletion"], bool):
            self.fail(path + ".deletion", "deletion must be true or false", "write deletion: true (or false)")
        reason = raw.get("reason", "")
        if not isinstance(reason, str):
            self.fail(path + ".reason", "reason must be a sentence", "quote the reason")
        return Protection(raw["deletion"], reason)

    def hardware(self, raw, path):
        raw = self.mapping(raw, path, self.HARDWARE_FIELDS, ("cores", "memory_gb"))
        cores = self.integer(raw["cores"], path + ".cores", 1)
        memory = self.integer(raw["memory_gb"], path + ".memory_gb", 1)
        disks, nics, gpus = [], [], []
        for i, item in enumerate(self.listof(raw.get("disks"), path + ".disks")):
            p = f"{path}.disks[{i}]"
            d = self.mapping(item, p, {"type", "size_gb"}, ("type", "size_gb"))
            disks.append(
                Disk(self.choice(d["type"], p + ".type", DISK_TYPES), self.integer(d["size_gb"], p + ".size_gb", 1))
            )
        for i, item in enumerate(self.listof(raw.get("nics"), path + ".nics")):
            p = f"{path}.nics[{i}]"
            n = self.mapping(item, p, {"name", "speed_gbps"}, ("name", "speed_gbps"))
            nics.append(
                Nic(self.string(n["name"], p + ".name", NAME_RE), self.integer(n["speed_gbps"], p + ".speed_gbps", 1))
            )
        for i, item in enumerate(self.listof(raw.get("gpus"), path + ".gpus")):
            p = f"{path}.gpus[{i}]"
            g = self.mapping(item, p, {"model", "count"}, ("model", "count"))
            gpus.append(Gpu(self.string(g["model"], p + ".model", NAME_RE), self.integer(g["count"], p + ".count", 1)))
        return Hardware(cores, memory, disks, nics, gpus)

    def location(self, raw, path):
        raw = self.mapping(raw, path, self.LOCATION_FIELDS, tuple(sorted(self.LOCATION_FIELDS)))
        region = self.string(raw["region"], path + ".region")
        if region not in self.regions:
            self.fail(path + ".region", f"unknown region {region!r}", f"use {_suggest(self.regions)}")
        dc_name = self.string(raw["datacenter"], path + ".datacenter")
        dc = self.datacenters.get(dc_name)
        if dc is None or dc.region != region:
            known = [d.name for d in self.datacenters.values() if d.region == region]
            self.fail(path + ".datacenter", f"no datacenter {dc_name!r} in region {region}", f"use {_suggest(known)}")
        row = self.string(raw["row"], path + ".row")
        if row not in dc.rows:
            self.fail(path + ".row", f"no row {row!r} in datacenter {dc_name}", f"use {_suggest(dc.rows)}")
        rack_name = self.string(raw["rack"], path + ".rack")
        rack = self.racks.get((dc_name, rack_name))
        if rack is None or rack.row != row:
            self.fail(
                path + ".rack",
                f"no rack {rack_name!r} in row {row} of datacenter {dc_name}",
                f"use {_suggest(dc.rows[row].racks)}, or add the rack under regions",
            )
        return Location(region, dc_name, row, rack_name, rack.tor)

    def server_addresses(self, raw, path, server):
        raw = self.mapping(raw, path, self.ADDRESS_FIELDS, ("private",))
        private = self.address(raw["private"], path + ".private")
        self._unique_address(private, path + ".private", server)
        network = raw.get("private_network")
        if network is not None:
            self.string(network, path + ".private_network")
            net = self.networks.get(network)
            if net is None or net.kind != "private":
                known = [n.name for n in self.networks.values() if n.kind == "private"]
                self.fail(path + ".private_network", f"unknown private network {network!r}", f"use {_suggest(known)}")
            if not net.first <= private.value <= net.last or net.version != private.version:
                self.fail(
                    path + ".private",
                    f"{private} is not in {network} ({net.cidr})",
                    "fix the address or the network",
                )
        else:
            network = self._network_of(private)
        public = raw.get("public")
        if public is not None:
            public = self.address(public, path + ".public")
            self._unique_address(public, path + ".public", server)
            public = str(public)
        return Addresses(str(private), network, public)

    def _unique_address(self, ip, path, server):
        key = (ip.version, ip.value)
        other = self.addresses.setdefault(key, (server, path))
        if other != (server, path):
            self.fail(
                path,
                f"address {ip} is already used by {other[0]} ({other[1]})",
                "give every server its own address",
            )

    def _network_of(self, ip):
        """The private network containing ``ip`` (host networks never overlap)."""
        pos = bisect.bisect_right(self._private_index, (ip.value, float("inf"), "")) - 1
        if pos >= 0:
            first, last, name = self._private_index[pos]
            if first <= ip.value <= last and self.networks[name].version == ip.version:
                return name
        return None

    # -- clusters

    CLUSTER_FIELDS = frozenset(
        (
            "name",
            "region",
            "kubernetes_version",
            "api",
            "pod_cidr",
            "node_prefix_length",
            "service_cidr",
            "wireguard",
            "pod_network",
            "node_groups",
        )
    )
    INTENT_FIELDS = frozenset(Intent.__dataclass_fields__)

    def cluster(self, raw, path, index):
        required = ("name", "region", "kubernetes_version", "api", "pod_cidr", "service_cidr", "wireguard")
        raw = self.mapping(raw, path, self.CLUSTER_FIELDS, required)
        name = self.string(raw["name"], path + ".name", NAME_RE)
        if name in self.clusters:
            self.fail(path + ".name", f"duplicate cluster {name!r}", "give every cluster a unique name")
        region = self.string(raw["region"], path + ".region")
        if region not in self.regions:
            self.fail(path + ".region", f"unknown region {region!r}", f"use {_suggest(self.regions)}")
        version = raw["kubernetes_version"]
        if not isinstance(version, str) or not VERSION_RE.match(version):
            self.fail(
                path + ".kubernetes_version",
                f"invalid version {version!r}",
                'write it as a quoted string like "1.36.3"',
            )
        api = self.mapping(raw["api"], path + ".api", {"vip", "port"}, ("vip",))
        vip = self.address(api["vip"], path + ".api.vip")
        port = self.integer(api.get("port", 6443), path + ".api.port", 1, 65535)
        pod = self.cidr(raw["pod_cidr"], path + ".pod_cidr")
        default_prefix = 24 if pod.version == 4 else 64
        node_prefix = self.integer(raw.get("node_prefix_length", default_prefix), path + ".node_prefix_length", 1, 128)
        if not pod.prefixlen < node_prefix <= (32 if pod.version == 4 else 128):
            self.fail(
                path + ".node_prefix_length",
                f"/{node_prefix} does not fit inside pod_cidr {pod}",
                f"use a prefix length longer than /{pod.prefixlen} (e.g. 24)",
            )
        service = self.cidr(raw["service_cidr"], path + ".service_cidr")
        wg = self.mapping(raw["wireguard"], path + ".wireguard", {"cidr", "port"}, ("cidr",))
        wg_net = self.cidr(wg["cidr"], path + ".wireguard.cidr")
        wg_port = self.integer(wg.get("port", 51820), path + ".wireguard.port", 1, 65535)
        pod_network = self.choice(raw.get("pod_network", "routed"), path + ".pod_network", POD_NETWORKS)
        groups = self.listof(raw.get("node_groups"), path + ".node_groups")
        self._group_names = set()
        self._members = {}
        node_groups = self.each(groups, path + ".node_groups", lambda r, p, i: self.node_group(r, p, name, region))
        cluster = Cluster(
            name,
            region,
            version,
            Api(str(vip), port),
            str(pod),
            node_prefix,
            str(service),
            WireGuard(str(wg_net), wg_port),
            pod_network,
            node_groups,
            index,
        )
        self._check_etcd(cluster, path)
        self._check_pools(cluster, path, pod, node_prefix, wg_net)
        self.clusters[name] = cluster
        for member in self._members:
            self.server_cluster[member] = name
        for net, p in ((pod, ".pod_cidr"), (service, ".service_cidr"), (wg_net, ".wireguard.cidr")):
            self.cluster_spans.append((net.version, net.first, net.last, path + p, str(net)))
        return cluster

    def node_group(self, raw, path, cluster, region):
        raw = self.mapping(raw, path, {"name", "roles", "servers", "intent"}, ("name", "roles"))
        name = self.string(raw["name"], path + ".name", NAME_RE)
        if name in self._group_names:
            self.fail(path + ".name", f"duplicate node group {name!r} in cluster {cluster}", "rename it")
        self._group_names.add(name)
        roles = self.listof(raw["roles"], path + ".roles", allow_missing=False)
        if not roles:
            self.fail(
                path + ".roles", "a node group needs at least one role", "use some of: {}".format(", ".join(ROLES))
            )
        for i, role in enumerate(roles):
            self.choice(role, f"{path}.roles[{i}]", ROLES)
        if len(set(roles)) != len(roles):
            self.fail(path + ".roles", "a role is listed twice", "list every role once")
        servers = self.listof(raw.get("servers"), path + ".servers")
        for i, member in enumerate(servers):
            p = f"{path}.servers[{i}]"
            self.string(member, p)
            server = self.servers.get(member)
            if server is None:
                if member in self.broken_servers:
                    continue
                self.error(p, f"unknown server {member!r}", "add it under servers, or fix the name")
                continue
            if member in self._members:
                self.error(
                    p,
                    f"server {member!r} is already in node group {self._members[member]}",
                    "keep it in one node group; give that group several roles instead",
                )
            elif member in self.server_cluster:
                self.error(
                    p,
                    f"server {member!r} already serves cluster {self.server_cluster[member]}",
                    "a server serves one cluster; remove it from one of them",
                )
            elif server.location.region != region:
                self.error(
                    p,
                    f"server {member!r} is in region {server.location.region}, the cluster in {region}",
                    f"use a server of region {region}",
                )
            self._members.setdefault(member, name)
        intent = None
        if raw.get("intent") is not None:
            intent = self.intent(raw["intent"], path + ".intent")
        return NodeGroup(name, list(roles), list(servers), intent)

    def intent(self, raw, path):
        raw = self.mapping(raw, path, self.INTENT_FIELDS)
        values = {}
        for key in ("count", "min_cores", "min_memory_gb", "min_disk_gb", "min_nic_gbps", "gpus"):
            if key in raw:
                values[key] = self.integer(raw[key], f"{path}.{key}", 0)
        if raw.get("disk_type"):
            values["disk_type"] = self.choice(raw["disk_type"], path + ".disk_type", DISK_TYPES)
        if raw.get("dedicated"):
            values["dedicated"] = self.string(raw["dedicated"], path + ".dedicated", fix="a workload label value")
        if "spread" in raw:
            values["spread"] = self.choice(raw["spread"], path + ".spread", SPREAD_DOMAINS)
        if "max_share_per_domain" in raw:
            share = raw["max_share_per_domain"]
            if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share <= 1:
                self.fail(
                    path + ".max_share_per_domain", f"expected a number in (0, 1], got {share!r}", "write e.g. 0.34"
                )
            values["max_share_per_domain"] = float(share)
        return Intent(**values)

    def _planned(self, group):
        """Nodes a node group will have: its listed servers, or the intent's count."""
        # A server whose entry is broken still counts: its own error is reported, not a knock-on etcd one.
        listed = [
            s
            for s in group.servers
            if s in self.broken_servers or (s in self.servers and self.servers[s].state != "retired")
        ]
        if group.intent is not None:
            return max(len(listed), group.intent.count)
        return len(listed)

    def _check_etcd(self, cluster, path):
        etcd_groups = [g for g in cluster.node_groups if "etcd" in g.roles]
        if not etcd_groups:
            return  # a cluster still being described; kubeadm roles check it before bootstrap
        size = sum(self._planned(g) for g in etcd_groups)
        if size not in ETCD_SIZES:
            index = cluster.node_groups.index(etcd_groups[0])
            self.error(
                f"{path}.node_groups[{index}]",
                f"cluster {cluster.name} has {size} etcd members (not counting retired servers)",
                "use an odd number: 1, 3, 5 or 7, so etcd keeps quorum",
            )

    def _check_pools(self, cluster, path, pod, node_prefix, wg):
        nodes = len(self._members) + sum(g.intent.count for g in cluster.node_groups if g.intent and not g.servers)
        pod_slots = 1 << (node_prefix - pod.prefixlen)
        if nodes > pod_slots:
            self.error(
                path + ".pod_cidr",
                f"pool exhausted: {pod} has {pod_slots} /{node_prefix} prefixes for {nodes} nodes",
                "use a larger pod_cidr or a longer node_prefix_length",
            )
        wg_slots = wg.size - 2 if wg.version == 4 and wg.prefixlen < 31 else wg.size
        if nodes > wg_slots:
            self.error(
                path + ".wireguard.cidr",
                f"pool exhausted: {wg} has {wg_slots} addresses for {nodes} nodes",
                "use a larger wireguard cidr",
            )

    def _check_cidr_overlaps(self):
        self._report_overlaps(
            self.cluster_spans + self._network_spans(),
            "give every pod, service and WireGuard network and host network its own range",
        )

    def _report_overlaps(self, spans, fix):
        # Sort by start; a span overlaps an earlier one iff it starts before the
        # furthest end seen so far (within one IP version). O(n log n).
        spans.sort()
        reach, owner, version = -1, None, None
        for ver, first, last, path, cidr in spans:
            if ver != version:
                reach, version = -1, ver
            if first <= reach:
                self.error(path, f"{cidr} overlaps {owner[0]} ({owner[1]})", fix)
            if last > reach:
                reach, owner = last, (path, cidr)

    def allocations(self, raw, path):
        try:
            raw = self.mapping(raw, path, {"store", "file", "kubernetes"})
            store = self.choice(raw.get("store", "file"), path + ".store", STORES)
            file = raw.get("file")
            if file is not None:
                self.string(file, path + ".file", fix="a path, relative to the fleet file")
            kube = raw.get("kubernetes") or {}
            kube = self.mapping(kube, path + ".kubernetes", {"kubeconfig", "context", "namespace", "name"})
            for key, value in kube.items():
                self.string(value, f"{path}.kubernetes.{key}", fix="a string")
            return AllocationSettings(store, file, dict(kube))
        except _Skip:
            return AllocationSettings()
