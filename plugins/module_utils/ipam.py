# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stable IP allocation: a pod prefix and a WireGuard address per node.

The allocator works on a *ledger*, a plain dict that a store
(ledger_store.py) persists::

    {"version": 1,
     "clusters": {"<cluster>": {"nodes": {"<server>": {"pod_cidr": "10.200.3.0/24",
                                                        "wireguard_address": "10.201.0.4"}}}}}

Rules (docs/ipam.md):

- an entry, once written, never changes: adding, removing or reordering
  servers only adds entries for new members;
- retired servers get nothing new but keep what they have; servers that left
  a cluster keep theirs too. Only ``release()`` frees an entry;
- a new member takes the lowest free slot; a full pool is an ``AllocationError``.

CIDRs are parsed once with netaddr; slots are plain integers (offsets into the
pool), which keeps 10,000 nodes well under the time budget.
"""

from __future__ import annotations

import copy
import socket

from .errors import LocatedError
from .fleet import netaddr  # netaddr is None when missing: parse_fleet() already said so
from .ledger_store import ALLOCATIONS, LedgerError

LEDGER_VERSION = 1


class AllocationError(LocatedError):
    """A pool is exhausted, or the ledger disagrees with the fleet."""


def empty_ledger():
    return copy.deepcopy(ALLOCATIONS.empty)


# --------------------------------------------------------------------------- address helpers


def _ip_str(value, version):
    if version == 4:
        return socket.inet_ntop(socket.AF_INET, value.to_bytes(4, "big"))
    return socket.inet_ntop(socket.AF_INET6, value.to_bytes(16, "big"))


def _ip_int(text, version):
    family = socket.AF_INET if version == 4 else socket.AF_INET6
    return int.from_bytes(socket.inet_pton(family, text), "big")


class _Pool:
    """Integer view of one CIDR cut into equal slots (a /24 per node, or one address)."""

    def __init__(self, cidr, slot_prefix=None):
        net = netaddr.IPNetwork(cidr)
        self.cidr = str(net)
        self.version = net.version
        bits = 32 if net.version == 4 else 128
        self.host_pool = slot_prefix is None
        self.slot_prefix = bits if self.host_pool else slot_prefix
        self.base = net.first
        self.step = 1 << (bits - self.slot_prefix)
        count = 1 << (self.slot_prefix - net.prefixlen)
        # A host pool skips the network and broadcast addresses of IPv4 subnets.
        skip_ends = self.host_pool and net.version == 4 and net.prefixlen < 31
        self.low, self.high = (1, count - 2) if skip_ends else (0, count - 1)

    @property
    def size(self):
        return self.high - self.low + 1

    def text(self, slot):
        ip = _ip_str(self.base + slot * self.step, self.version)
        return ip if self.host_pool else f"{ip}/{self.slot_prefix}"

    def slot(self, text):
        """The slot index of ``text``, or None when it does not belong to this pool."""
        try:
            if self.host_pool:
                value = _ip_int(text, self.version)
            else:
                ip, _sep, prefix = text.partition("/")
                if int(prefix) != self.slot_prefix:
                    return None
                value = _ip_int(ip, self.version)
        except (OSError, ValueError, TypeError, AttributeError):
            return None
        offset = value - self.base
        if offset % self.step:
            return None
        slot = offset // self.step
        return slot if self.low <= slot <= self.high else None


# --------------------------------------------------------------------------- allocation


def _ledger_clusters(ledger, source):
    if not isinstance(ledger, dict) or ledger.get("version") != LEDGER_VERSION:
        raise LedgerError(source, "version", "not an allocation ledger of version 1", "restore it from a backup")
    clusters = ledger.setdefault("clusters", {})
    if not isinstance(clusters, dict):
        raise LedgerError(source, "clusters", "expected a mapping", "restore the ledger from a backup")
    return clusters


def _nodes(clusters, name, source):
    entry = clusters.setdefault(name, {})
    nodes = entry.setdefault("nodes", {}) if isinstance(entry, dict) else None
    if not isinstance(nodes, dict):
        raise LedgerError(source, f"clusters.{name}.nodes", "expected a mapping", "restore the ledger from a backup")
    return nodes


def allocate(fleet, ledger, source="<ledger>"):
    """Give every member of every cluster a pod prefix and a WireGuard address.

    Mutates ``ledger`` and returns True when it added an entry. Existing
    entries are validated against the fleet but never moved.
    """
    clusters = _ledger_clusters(ledger, source)
    changed = False
    for cluster in fleet.clusters.values():
        nodes = _nodes(clusters, cluster.name, source)
        pod = _Pool(cluster.pod_cidr, cluster.node_prefix_length)
        wg = _Pool(cluster.wireguard.cidr)
        used_pod, used_wg = _used_slots(fleet, cluster, nodes, (pod, wg), source=source)
        wanted = [name for name in cluster.members() if name not in nodes and fleet.servers[name].state != "retired"]
        if not wanted:
            continue
        pod_free = _free_slots(pod, used_pod)
        wg_free = _free_slots(wg, used_wg)
        for name in wanted:
            pod_slot = next(pod_free, None)
            wg_slot = next(wg_free, None)
            if pod_slot is None or wg_slot is None:
                field, pool = ("pod_cidr", pod) if pod_slot is None else ("wireguard.cidr", wg)
                raise _exhausted(fleet, cluster, nodes, field=field, pool=pool, server=name)
            nodes[name] = {"pod_cidr": pod.text(pod_slot), "wireguard_address": wg.text(wg_slot)}
        changed = True
    return changed


def _used_slots(fleet, cluster, nodes, pools, *, source):
    pod, wg = pools
    used_pod, used_wg = set(), set()
    for name, entry in nodes.items():
        if not isinstance(entry, dict):
            raise LedgerError(source, f"clusters.{cluster.name}.nodes.{name}", "expected a mapping", "release it")
        for key, pool, used in (("pod_cidr", pod, used_pod), ("wireguard_address", wg, used_wg)):
            slot = pool.slot(entry.get(key))
            if slot is None:
                raise AllocationError(
                    fleet.source,
                    f"clusters[{cluster.index}].{'pod_cidr' if pool is pod else 'wireguard.cidr'}",
                    f"{name} holds {key} {entry.get(key)!r} in {source}, which is not a slot of {pool.cidr}",
                    f"restore the old range, or release {name} (baremetal.k8s.fleet_allocation state=released)",
                )
            if slot in used:
                raise LedgerError(
                    source,
                    f"clusters.{cluster.name}.nodes.{name}.{key}",
                    f"{entry[key]} is held twice",
                    "release one of the two servers and run the inventory again",
                )
            used.add(slot)
    return used_pod, used_wg


def _free_slots(pool, used):
    """Free slots, lowest first (a generator: the scan resumes where it stopped)."""
    for slot in range(pool.low, pool.high + 1):
        if slot not in used:
            yield slot


def _exhausted(fleet, cluster, nodes, *, field, pool, server):
    members = set(cluster.members())
    stale = sorted(n for n in nodes if n not in members or fleet.servers[n].state == "retired")
    hint = f"; {len(stale)} retired or removed servers still hold one: {', '.join(stale[:5])}" if stale else ""
    return AllocationError(
        fleet.source,
        f"clusters[{cluster.index}].{field}",
        f"pool exhausted: {pool.cidr} has no free slot left for {server} ({pool.size} slots{hint})",
        "release retired servers (baremetal.k8s.fleet_allocation state=released) or use a larger range",
    )


def release(ledger, cluster, server, source="<ledger>"):
    """Free ``server``'s entry in ``cluster``; returns the released entry or None."""
    clusters = _ledger_clusters(ledger, source)
    entry = clusters.get(cluster)
    if not isinstance(entry, dict) or not isinstance(entry.get("nodes"), dict):
        return None
    released = entry["nodes"].pop(server, None)
    if not entry["nodes"]:
        clusters.pop(cluster)
    return released


def lookup(ledger, cluster, server):
    """The allocation entry of ``server`` in ``cluster`` ({} when none)."""
    entry = (ledger.get("clusters") or {}).get(cluster) or {}
    return (entry.get("nodes") or {}).get(server) or {}


# --------------------------------------------------------------------------- WireGuard endpoints


def endpoint(me, peer):
    """The endpoint ``me`` uses to reach ``peer``: (address, via).

    Two servers on the same private network talk privately; otherwise the
    peer's public address. A peer without a public address gets no endpoint
    (None): WireGuard then waits for that peer to connect first.
    """
    network = me.addresses.private_network
    if network is not None and network == peer.addresses.private_network:
        return peer.addresses.private, "private"
    if peer.addresses.public:
        return peer.addresses.public, "public"
    return None, "none"


def mesh_views(fleet, cluster, ledger):
    """Peer tables of one cluster, one per private network of its members.

    Every member on private network N sees the same table, so the table is
    computed once per (cluster, network) instead of once per host, which keeps
    big fleets linear. Returns ``{network or None: {peer: info}}``; a host finds
    itself in its own table and skips that entry.
    """
    members = [fleet.servers[name] for name in cluster.members()]
    members = [s for s in members if s.state != "retired" and lookup(ledger, cluster.name, s.name)]
    views = {}
    for viewer in members:
        network = viewer.addresses.private_network
        if network in views:
            continue
        table = {}
        for peer in members:
            alloc = lookup(ledger, cluster.name, peer.name)
            address, via = endpoint(viewer, peer)
            wg_bits = "/32" if ":" not in alloc["wireguard_address"] else "/128"
            table[peer.name] = {
                "endpoint": _join(address, cluster.wireguard.port),
                "via": via,
                "wireguard_address": alloc["wireguard_address"],
                "pod_cidr": alloc["pod_cidr"],
                "allowed_ips": [alloc["wireguard_address"] + wg_bits, alloc["pod_cidr"]],
            }
        views[network] = table
    return views


def _join(address, port):
    if address is None:
        return None
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


# --------------------------------------------------------------------------- release (fleet_allocation module)


def holders(ledger, server):
    """Names of the clusters whose ledger section holds ``server``."""
    clusters = ledger.get("clusters") or {}
    return [name for name, entry in clusters.items() if server in ((entry or {}).get("nodes") or {})]


def release_blocker(fleet, cluster_name, server_name):
    """Why releasing ``server_name`` in ``cluster_name`` is unsafe, or None when it is safe.

    Releasing frees the addresses for the next new node, so it is only safe
    once the server no longer uses them: it retired, left the cluster, or left
    the fleet.
    """
    cluster = fleet.clusters.get(cluster_name)
    server = fleet.servers.get(server_name)
    if cluster is None or server is None or server_name not in cluster.members() or server.state == "retired":
        return None
    return (
        f"{server_name} is still a member of cluster {cluster_name} in state {server.state}; "
        "its addresses would be handed to the next new node while it still uses them"
    )
