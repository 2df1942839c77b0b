# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet file ``clusters``: API endpoint, pod/service/WireGuard networks, node groups and what must hold
across them (etcd size, pool sizes, no overlapping networks, no shared VIPs, a server in one cluster)."""

from __future__ import annotations

import bisect
import contextlib

from .fleet_checks import LABEL_KEY_FIX, Checker, Skip, label_key_ok, shown, suggest
from .fleet_intents import read_intent
from .fleet_model import NAME_RE, VERSION_RE, Api, Cluster, NodeGroup, Taint, WireGuard
from .vocabulary import ETCD_SIZES, POD_NETWORKS, ROLES, TAINT_EFFECTS, cluster_group, group_name

# The node prefix length when the fleet file gives none, by IP version.
DEFAULT_NODE_PREFIX = {4: 24, 6: 64}


class Clusters(Checker):
    NODE_GROUP_FIELDS = frozenset(("name", "roles", "servers", "intent", "labels", "taints"))
    TAINT_FIELDS = frozenset(("key", "value", "effect"))
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

    def __init__(self, source, errors, topology, servers):
        super().__init__(source, errors, topology.groups)
        self.regions = topology.regions
        self.topology = topology
        self.servers = servers.servers
        self.broken_servers = servers.broken
        self.server_addresses = servers.addresses  # (version, int) -> (server, path)
        self.clusters = {}  # fleet-file order
        self.server_cluster = {}  # server name -> cluster name
        self.cluster_spans = []  # (version, first, last, path, cidr) of every cluster network
        self.vips = {}  # (version, int) -> (cluster, path)

    def parse(self, clusters):
        self.each(self.listof(clusters, "clusters"), "clusters", self.cluster)
        self.report_overlaps(
            self.cluster_spans + self.topology.network_spans(),
            "give every pod, service and WireGuard network and host network its own range",
        )
        self._check_addresses_outside_cluster_networks()
        return self

    def cluster(self, raw, path, index):
        required = ("name", "region", "kubernetes_version", "api", "pod_cidr", "service_cidr", "wireguard")
        raw = self.mapping(raw, path, self.CLUSTER_FIELDS, required)
        name = self.string(raw["name"], path + ".name", NAME_RE)
        if name in self.clusters:
            self.fail(path + ".name", f"duplicate cluster {name!r}", "give every cluster a unique name")
        for group in (cluster_group(name), *(cluster_group(name, role) for role in ROLES)):
            self.claim_group(group, path + ".name", f"cluster {name}")
        region = self.string(raw["region"], path + ".region")
        if region not in self.regions:
            self.fail(path + ".region", f"unknown region {shown(region)}", f"use {suggest(self.regions)}")
        version = raw["kubernetes_version"]
        if not isinstance(version, str) or not VERSION_RE.match(version):
            self.fail(
                path + ".kubernetes_version",
                f"invalid version {shown(version)}",
                'write it as a quoted string like "1.36.3"',
            )
        api = self.mapping(raw["api"], path + ".api", {"vip", "port"}, ("vip",))
        vip = self.address(api["vip"], path + ".api.vip")
        port = self.integer(api.get("port", 6443), path + ".api.port", 1, 65535)
        pod = self.cidr(raw["pod_cidr"], path + ".pod_cidr")
        node_prefix = self.node_prefix(raw.get("node_prefix_length"), path + ".node_prefix_length", pod)
        service = self.cidr(raw["service_cidr"], path + ".service_cidr")
        wg = self.mapping(raw["wireguard"], path + ".wireguard", {"cidr", "port"}, ("cidr",))
        wg_net = self.cidr(wg["cidr"], path + ".wireguard.cidr")
        wg_port = self.integer(wg.get("port", 51820), path + ".wireguard.port", 1, 65535)
        pod_network = self.choice(raw.get("pod_network", "routed"), path + ".pod_network", POD_NETWORKS)
        groups = self.listof(raw.get("node_groups"), path + ".node_groups")
        self._group_names = set()
        self._members = {}  # server -> node group, of this cluster
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
        self._check_vip(vip, path + ".api.vip", name)
        self._check_etcd(cluster, path)
        self._check_pools(cluster, path, pod, node_prefix, wg_net)
        self.clusters[name] = cluster
        for member in self._members:
            self.server_cluster[member] = name
        for net, p in ((pod, ".pod_cidr"), (service, ".service_cidr"), (wg_net, ".wireguard.cidr")):
            self.cluster_spans.append((net.version, net.first, net.last, path + p, str(net)))
        return cluster

    def node_prefix(self, value, path, pod):
        """The prefix length each node gets from ``pod``; the fix always names a length that fits."""
        longest = 32 if pod.version == 4 else 128
        default = DEFAULT_NODE_PREFIX[pod.version]
        node_prefix = default if value is None else self.integer(value, path, 1, 128)
        if not pod.prefixlen < node_prefix <= longest:
            given = "" if value is not None else " (the default)"
            if pod.prefixlen < longest:
                example = default if pod.prefixlen < default else pod.prefixlen + 1
                fix = f"use a prefix length between /{pod.prefixlen + 1} and /{longest} (e.g. {example})"
                if example != default:
                    fix += f", or a larger pod_cidr such as a /{default - 8} with the default /{default}"
            else:
                fix = f"use a larger pod_cidr, such as a /{default - 8} with the default /{default}"
            self.fail(path, f"/{node_prefix}{given} does not fit inside pod_cidr {pod}", fix)
        return node_prefix

    def node_group(self, raw, path, cluster, region):
        raw = self.mapping(raw, path, self.NODE_GROUP_FIELDS, ("name", "roles"))
        name = self.string(raw["name"], path + ".name", NAME_RE)
        if name in self._group_names:
            self.fail(path + ".name", f"duplicate node group {name!r} in cluster {cluster}", "rename it")
        self._group_names.add(name)
        self.claim_group(group_name("node_group", cluster, name), path + ".name", f"node group {cluster}/{name}")
        roles = self.listof(raw["roles"], path + ".roles", allow_missing=False)
        if not roles:
            self.fail(
                path + ".roles", "a node group needs at least one role", "use some of: {}".format(", ".join(ROLES))
            )
        for i, role in enumerate(roles):
            self.choice(role, f"{path}.roles[{i}]", ROLES)
        if len(set(roles)) != len(roles):
            self.fail(path + ".roles", "a role is listed twice", "list every role once")
        # Reported, not skipping the group: its members are still checked (label conflicts, other clusters).
        labels = {}
        with contextlib.suppress(Skip):
            labels = self.labels(raw.get("labels"), path + ".labels")
        taints = []
        with contextlib.suppress(Skip):
            taints = self.taints(raw.get("taints"), path + ".taints")
        servers = self.listof(raw.get("servers"), path + ".servers")
        for i, member in enumerate(servers):
            p = f"{path}.servers[{i}]"
            self.string(member, p)
            server = self.servers.get(member)
            if server is None:
                if member in self.broken_servers:
                    continue
                self.error(p, f"unknown server {shown(member)}", "add it under servers, or fix the name")
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
            self._check_label_conflicts(server, labels, path + ".labels")
            self._members.setdefault(member, name)
        intent = None
        if raw.get("intent") is not None:
            intent = read_intent(self, raw["intent"], path + ".intent")
        return NodeGroup(name, list(roles), list(servers), intent, labels=labels, taints=taints)

    def taints(self, raw, path):
        """A node group's ``taints``: every problem of every taint is reported; the good ones are returned."""
        taints, seen = [], {}  # (key, effect) -> path of the taint that has it
        for i, item in enumerate(self.listof(raw, path)):
            with contextlib.suppress(Skip):
                taint = self.taint(item, f"{path}[{i}]")
                first = seen.setdefault((taint.key, taint.effect), f"{path}[{i}]")
                if first != f"{path}[{i}]":
                    self.error(f"{path}[{i}]", f"taint {taint.key}:{taint.effect} is also {first}",
                               "list each key and effect once: Kubernetes keeps one taint per key and effect")
                taints.append(taint)
        return taints

    def taint(self, raw, path):
        raw = self.mapping(raw, path, self.TAINT_FIELDS, ("key", "effect"))
        before = len(self.errors)
        key, value, effect = raw["key"], raw.get("value", ""), raw["effect"]
        if not isinstance(key, str) or not label_key_ok(key):
            self.error(path + ".key", f"invalid taint key {shown(key)}", LABEL_KEY_FIX)
        with contextlib.suppress(Skip):
            self.label_value(value, path + ".value")  # the same rules as a label value
        with contextlib.suppress(Skip):
            self.choice(effect, path + ".effect", TAINT_EFFECTS)
        if len(self.errors) > before:
            raise Skip()
        return Taint(key, effect, value)

    def _check_label_conflicts(self, server, labels, path):
        """A member's node gets its server's labels and its node group's: one key cannot have two values."""
        for key, value in labels.items():
            own = server.labels.get(key)
            if own is not None and own != value:
                self.error(f"{path}.{key}",
                           f"node group label {key}={shown(value)} conflicts with {key}={shown(own)} of server "
                           f"{server.name} (servers[{server.index}].labels.{key})",
                           "give the label one value: remove it from the server or the node group, or make them "
                           "equal")

    # -- rules across a cluster's parts, and across clusters

    def _check_vip(self, vip, path, cluster):
        """Keepalived would fight over a VIP two clusters share, or one that is a server's own address."""
        key = (vip.version, vip.value)
        server = self.server_addresses.get(key)
        if server is not None:
            self.error(path, f"API VIP {vip} is the address of server {server[0]} ({server[1]})",
                       "give the API an address no server has")
        other = self.vips.setdefault(key, (cluster, path))
        if other[0] != cluster:
            self.error(path, f"API VIP {vip} is already the VIP of cluster {other[0]} ({other[1]})",
                       "give every cluster its own API VIP")

    def _check_addresses_outside_cluster_networks(self):
        """A server address or API VIP inside a pod, service or WireGuard network is routed into that network."""
        spans = sorted(self.cluster_spans)
        starts = [(span[0], span[1]) for span in spans]

        def cluster_network_of(version, value):
            # Cluster networks do not overlap (or an error says so): the span starting last before ``value``.
            pos = bisect.bisect_right(starts, (version, value)) - 1
            if pos >= 0 and spans[pos][0] == version and spans[pos][2] >= value:
                return spans[pos]
            return None

        for addresses, what in ((self.server_addresses, "a server address"), (self.vips, "an API VIP")):
            for (version, value), (_owner, path) in addresses.items():
                span = cluster_network_of(version, value)
                if span is not None:
                    self.error(path, f"{what} is inside {span[3]} ({span[4]})",
                               "use an address of a host network, outside every pod, service and WireGuard network")

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
            bits = (nodes - 1).bit_length()  # 2**bits prefixes hold every node
            options = []
            if node_prefix - bits >= 0:
                options.append(f"a pod_cidr of /{node_prefix - bits} or larger")
            if pod.prefixlen + bits <= (32 if pod.version == 4 else 128):
                options.append(f"node_prefix_length {pod.prefixlen + bits} (each node a smaller prefix)")
            self.error(
                path + ".pod_cidr",
                f"pool exhausted: {pod} has {pod_slots} /{node_prefix} prefixes for {nodes} nodes",
                "use " + (" or ".join(options) or "fewer nodes"),
            )
        wg_slots = wg.size - 2 if wg.version == 4 and wg.prefixlen < 31 else wg.size
        if nodes > wg_slots:
            longest = 32 if wg.version == 4 else 128
            prefix = longest - (nodes + 1).bit_length()  # room for the nodes plus network and broadcast
            self.error(
                path + ".wireguard.cidr",
                f"pool exhausted: {wg} has {wg_slots} addresses for {nodes} nodes",
                f"use a larger wireguard cidr: a /{prefix} or larger",
            )
