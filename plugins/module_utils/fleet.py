# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet model: load a fleet file, validate it, return dataclasses.

Public API (other modules rely on it; import it from here):

- ``load_fleet(path) -> Fleet`` reads YAML or JSON from disk;
- ``parse_fleet(data, source_name) -> Fleet`` validates already-loaded data;
- ``intent_from_mapping(raw, source, path, base=None) -> Intent`` validates one node group intent
  (the fleet file's and the placement module's ``intents`` option);
- ``place_members(fleet, assignments)`` adds the servers placement chose to their node groups;
- ``hop_distance(a, b) -> int`` network distance between two servers;
- ``FleetError`` (``.file``, ``.path``, ``.problem``, ``.fix``) is the only
  exception a bad fleet file produces; ``FleetValidationError`` is the
  subclass that carries every problem found (``.errors``);
- the dataclasses (``Fleet``, ``Server``, ``Cluster``, ``NodeGroup``, ``Intent``, ``Taint``, ``Location``, ...)
  and the names ``STATES``, ``STORES``, ``SPREAD_DOMAINS``, ``NAME_RE``, ``VERSION_RE``, ``NAME_FIX``.

Validation is hand-written, one pass that both checks and builds the dataclasses, which keeps a
10,000-server fleet well under the inventory time budget. The parts, in the order they run:

- ``fleet_yaml``: the file's text to data (duplicate keys, alias bombs);
- ``fleet_topology``: regions, datacenters, rows, racks and host networks;
- ``fleet_servers``: servers, checked against the topology;
- ``fleet_clusters``: clusters and node groups, checked against the servers;
  ``fleet_intents``: node group intents;
- ``fleet_checks``: the typed field checks and the problem list they share;
- ``fleet_model``: the errors and dataclasses.

See docs/fleet-format.md.
"""

from __future__ import annotations

import contextlib

from .fleet_checks import Checker, Skip, netaddr
from .fleet_clusters import Clusters
from .fleet_intents import INTENT_FIELDS, intent_from_mapping
from .fleet_model import (
    BMC_TYPES,
    NAME_FIX,
    NAME_RE,
    SPREAD_DOMAINS,
    STATES,
    STORES,
    VERSION_RE,
    Addresses,
    AllocationSettings,
    Api,
    Bmc,
    Cluster,
    Datacenter,
    Disk,
    Fleet,
    FleetError,
    FleetValidationError,
    Gpu,
    Hardware,
    Intent,
    Location,
    Network,
    Nic,
    NodeGroup,
    Protection,
    Rack,
    Region,
    Row,
    Server,
    Taint,
    WireGuard,
    hop_distance,
)
from .fleet_servers import Servers
from .fleet_topology import Topology
from .fleet_yaml import decode

__all__ = [
    "BMC_TYPES",
    "INTENT_FIELDS",
    "NAME_FIX",
    "NAME_RE",
    "SPREAD_DOMAINS",
    "STATES",
    "STORES",
    "VERSION_RE",
    "Addresses",
    "AllocationSettings",
    "Api",
    "Bmc",
    "Cluster",
    "Datacenter",
    "Disk",
    "Fleet",
    "FleetError",
    "FleetValidationError",
    "Gpu",
    "Hardware",
    "Intent",
    "Location",
    "Network",
    "Nic",
    "NodeGroup",
    "Protection",
    "Rack",
    "Region",
    "Row",
    "Server",
    "Taint",
    "WireGuard",
    "hop_distance",
    "intent_from_mapping",
    "load_fleet",
    "netaddr",
    "parse_fleet",
    "place_members",
]

TOP_FIELDS = frozenset(("version", "regions", "networks", "servers", "clusters", "allocations"))


def load_fleet(path):
    """Read, validate and return the fleet at ``path`` (YAML or JSON)."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise FleetError(path, None, f"cannot read the fleet file ({exc.strerror})", "check the path") from None
    except UnicodeDecodeError:
        raise FleetError(path, None, "the file is not UTF-8 text", "save the fleet file as UTF-8") from None
    return parse_fleet(decode(text, path), path)


def parse_fleet(data, source_name="<fleet>"):
    """Validate ``data`` (the decoded fleet file) and return a ``Fleet``.

    Raises ``FleetValidationError`` listing every problem found.
    """
    if netaddr is None:
        raise FleetError(source_name, None, "the netaddr Python package is missing", "pip install netaddr")
    errors = []
    fleet = None
    with contextlib.suppress(Skip):
        fleet = _parse(Checker(source_name, errors), data)
    if errors:
        raise FleetValidationError(errors)
    return fleet


def _parse(check, data):
    source, errors = check.source, check.errors
    if data is None:
        check.fail(None, "the fleet file is empty", "start from inventory/example/fleet.yml")
    top = check.mapping(data, "", TOP_FIELDS, ("version",))
    version = top.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version != 1:
        check.fail("version", "unsupported format version {!r}".format(top.get("version")), "set version: 1")
    topology = Topology(source, errors).parse(top.get("regions"), top.get("networks"))
    servers = Servers(source, errors, topology).parse(top.get("servers"))
    clusters = Clusters(source, errors, topology, servers).parse(top.get("clusters"))
    allocations = AllocationSettings()
    if top.get("allocations") is not None:
        with contextlib.suppress(Skip):
            allocations = _allocations(check, top["allocations"], "allocations")
    return Fleet(
        source=source,
        regions=topology.regions,
        datacenters=topology.datacenters,
        racks=topology.racks,
        networks=topology.networks,
        servers=servers.servers,
        clusters=clusters.clusters,
        allocations=allocations,
        server_cluster=clusters.server_cluster,
    )


def _allocations(check, raw, path):
    raw = check.mapping(raw, path, {"store", "file", "kubernetes"})
    store = check.choice(raw.get("store", "file"), path + ".store", STORES)
    file = raw.get("file")
    if file is not None:
        check.string(file, path + ".file", fix="a path, relative to the fleet file")
    kube = raw.get("kubernetes") or {}
    kube = check.mapping(kube, path + ".kubernetes", {"kubeconfig", "context", "namespace", "name"})
    for key, value in kube.items():
        check.string(value, f"{path}.kubernetes.{key}", fix="a string")
    return AllocationSettings(store, file, dict(kube))


def place_members(fleet, assignments):
    """Add the servers placement chose (``{server: (cluster, group)}``, the placement ledger) to their node groups.

    Changes ``fleet`` in place and returns a warning for every assignment that no longer fits the fleet file
    (unknown server, cluster or group; a server the fleet file already gives a cluster; another region); such
    an assignment is left out until placement runs again. A placed server is a member like a pinned one: it
    gets groups, a pod prefix and a WireGuard address. A placed server whose label conflicts with its node
    group's is kept, with a warning (its server's value wins).
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
            # The fleet file refuses a pinned member whose labels conflict with its group's; placement does
            # not look at group labels, so a placed one is told here and keeps its server's value.
            for key, value in group.labels.items():
                own = server.labels.get(key)
                if own is not None and own != value:
                    warnings.append(f"{where}: the server's label {key}={own!r} conflicts with the node group's "
                                    f"{key}={value!r}; its node keeps {own!r} until one of them is changed")
    return warnings
