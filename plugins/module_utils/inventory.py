# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet inventory as plain data: groups and hostvars from the fleet, its ledgers and live state.

The inventory plugin (plugins/inventory/fleet.py) is a shell over this: it reads the options, the stores and
the cache, and hands the result to Ansible. Everything here is pure and unit-tested (docs/inventory.md).

``{"hosts": {name: hostvars}, "groups": {group: {"hosts": [...], "children": [...], "vars": {...}}}}``
"""

from __future__ import annotations

from . import ipam, live_state
from .node_metadata import declared
from .vocabulary import ROLES, cluster_group, group_name


class _Groups(dict):
    """Groups created on first use."""

    def get_or_add(self, name, parent=None):
        """The group ``name``, made a child of ``parent`` when given."""
        entry = self.get(name)
        if entry is None:
            entry = self[name] = {"hosts": [], "children": [], "vars": {}}
        if parent is not None:
            children = self.get_or_add(parent)["children"]
            if name not in children:
                children.append(name)
        return entry


def build_inventory(fleet, ledger):
    """Hosts and groups of ``fleet`` (placed members already applied, see fleet.place_members) with the
    allocation ``ledger``'s addresses. Live state is added by ``with_live_state``, never cached."""
    groups = _Groups()
    hosts = {}
    for server in fleet.servers.values():
        hosts[server.name] = server_vars(server)
        loc = server.location
        rack = group_name("rack", loc.datacenter, loc.rack)
        if rack not in groups:  # first server of this rack: link region > datacenter > row > rack once
            row = group_name("row", loc.datacenter, loc.row)
            groups.get_or_add(group_name("datacenter", loc.datacenter), group_name("region", loc.region))
            groups.get_or_add(row, group_name("datacenter", loc.datacenter))
            groups.get_or_add(rack, row)
        groups[rack]["hosts"].append(server.name)
        groups.get_or_add(group_name("state", server.state))["hosts"].append(server.name)
    for cluster in fleet.clusters.values():
        _add_cluster(fleet, cluster, ledger, hosts, groups)
    return {"hosts": hosts, "groups": dict(groups)}


def server_vars(server):
    loc = server.location
    hostvars = {"ansible_host": server.addresses.private}
    hostvars.update(server.connection)
    hostvars.update(
        fleet_state=server.state,
        fleet_location={"region": loc.region, "datacenter": loc.datacenter, "row": loc.row, "rack": loc.rack,
                        "tor": loc.tor},
        fleet_failure_domain=loc.failure_domain,
        fleet_hardware=server.hardware.as_dict(),
        fleet_labels=server.labels,
        fleet_protection={"deletion": server.protection.deletion, "reason": server.protection.reason},
        fleet_addresses={
            "private": server.addresses.private,
            "private_network": server.addresses.private_network,
            "public": server.addresses.public,
        },
    )
    if server.bmc is not None:  # absent without one: recovery refuses to fence such a server
        hostvars["fleet_bmc"] = server.bmc.as_dict()
    if server.state_reason:  # absent when the fleet file and the recovery state give none
        hostvars["fleet_state_reason"] = server.state_reason
    return hostvars


def cluster_vars(cluster):
    """The ``k8s_cluster`` variable of a cluster's group; ``groups`` names its inventory groups for the roles."""
    vip, port = cluster.api.vip, cluster.api.port
    groups = {"cluster": cluster_group(cluster.name)}
    groups.update((role, cluster_group(cluster.name, role)) for role in ROLES)
    return {
        "name": cluster.name,
        "region": cluster.region,
        "kubernetes_version": cluster.kubernetes_version,
        "api_vip": vip,
        "api_port": port,
        "api_endpoint": f"[{vip}]:{port}" if ":" in vip else f"{vip}:{port}",
        "pod_cidr": cluster.pod_cidr,
        "node_prefix_length": cluster.node_prefix_length,
        "service_cidr": cluster.service_cidr,
        "wireguard_cidr": cluster.wireguard.cidr,
        "wireguard_port": cluster.wireguard.port,
        "pod_network": cluster.pod_network,
        "groups": groups,
    }


def _add_cluster(fleet, cluster, ledger, hosts, groups):
    cgroup = cluster_group(cluster.name)
    groups.get_or_add(cgroup)["vars"]["k8s_cluster"] = cluster_vars(cluster)
    for ng in cluster.node_groups:
        ng_group = groups.get_or_add(group_name("node_group", cluster.name, ng.name), cgroup)
        ng_group["vars"]["fleet_node_group_roles"] = list(ng.roles)
        for role in ng.roles:
            groups.get_or_add(cluster_group(cluster.name, role), cgroup)
            groups.get_or_add(cluster_group(cluster.name, role), group_name("role", role))
        for name in ng.members:
            ng_group["hosts"].append(name)
            for role in ng.roles:
                members = groups[cluster_group(cluster.name, role)]["hosts"]
                if name not in members:
                    members.append(name)
    for name in cluster.members():
        hostvars = hosts[name]
        node_groups = [g for g in cluster.node_groups if name in g.members]
        hostvars["fleet_cluster"] = cluster.name
        hostvars["fleet_node_groups"] = [g.name for g in node_groups]
        hostvars["fleet_roles"] = cluster.roles_of(name)
        hostvars["fleet_node_labels"], hostvars["fleet_node_taints"] = declared(fleet.servers[name], node_groups)
        alloc = ipam.lookup(ledger, cluster.name, name)
        hostvars["pod_cidr"] = alloc.get("pod_cidr")
        hostvars["wireguard_address"] = alloc.get("wireguard_address")
        hostvars["wireguard_port"] = cluster.wireguard.port
    # One peer table per private network: every host of that network sees the same endpoints.
    for network, table in ipam.mesh_views(fleet, cluster, ledger).items():
        wg_group = groups.get_or_add(group_name("wireguard", cluster.name, network or "no_private_network"), cgroup)
        wg_group["vars"]["wireguard_peers"] = table
        wg_group["hosts"].extend(s for s in table if fleet.servers[s].addresses.private_network == network)


def with_live_state(data, live):
    """``data`` plus live node state (``{cluster: {server: node_state or None}}``; None: unreachable).

    Returns a new dict; ``data`` (perhaps the cache's copy) is left as it was.
    """
    if not live:
        return data
    hosts = dict(data["hosts"])
    groups = dict(data["groups"])
    for states in live.values():
        for server_name, state in states.items():
            hosts[server_name] = dict(hosts[server_name], k8s_node=state)
            for name in live_state.live_groups(state) if state is not None else ["k8s_unreachable"]:
                entry = groups.get(name) or {"hosts": [], "children": [], "vars": {}}
                groups[name] = dict(entry, hosts=[*entry["hosts"], server_name])
    return {"hosts": hosts, "groups": groups}
