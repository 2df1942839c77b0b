# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: fleet
short_description: Bare-metal fleet inventory with stable IP allocation
version_added: 0.1.0
description:
  - Reads a fleet file (docs/fleet-format.md), validates it, allocates every cluster member a pod prefix and a
    WireGuard address in a persistent ledger (docs/ipam.md), and builds groups and hostvars (docs/inventory.md).
  - "Groups: C(cluster_<c>), C(cluster_<c>_<role>), C(role_<role>), C(node_group_<c>_<group>), C(region_<r>),
    C(datacenter_<d>), C(row_<d>_<row>), C(rack_<d>_<rack>), C(state_<state>), C(wireguard_<c>_<network>);
    with live state also C(k8s_ready), C(k8s_not_ready), C(k8s_cordoned), C(k8s_unregistered).
    Characters other than letters, digits and C(_) become C(_)."
  - The config file must end in C(.baremetal.yml) or C(.baremetal.yaml). In an inventory directory the plugin also
    claims fleet files (C(fleet.yml), C(*.fleet.yml)) and ledgers (C(*.allocations.json), C(*.placement.yml))
    without reading them, so
    the YAML inventory plugin does not misread them.
extends_documentation_fragment:
  - constructed
  - inventory_cache
options:
  plugin:
    description: The name of this plugin.
    required: true
    type: str
    choices: [baremetal.k8s.fleet]
  fleet_file:
    description: The fleet file; a relative path is relative to this config file.
    type: str
    default: fleet.yml
  allocation_store:
    description:
      - Where the allocation ledger lives. Defaults to C(allocations.store) of the fleet file, else C(file).
      - Use C(kubernetes) in AWX, where the job's checkout is thrown away after each run.
    type: str
    choices: [file, kubernetes]
  allocation_file:
    description:
      - Ledger path for the C(file) store; a relative path is relative to this config file.
      - Default C(allocations.file) of the fleet file, else C(<fleet stem>.allocations.json) beside the fleet file.
    type: str
  allocation_kubeconfig:
    description:
      - Kubeconfig of the management cluster for the C(kubernetes) store.
      - Default C(allocations.kubernetes.kubeconfig) of the fleet file; without either the pod's service account
        is used (AWX execution environments), then C(~/.kube/config).
    type: path
    env:
      - name: BAREMETAL_K8S_ALLOCATION_KUBECONFIG
  allocation_context:
    description: Kubeconfig context for the C(kubernetes) store (default C(allocations.kubernetes.context)).
    type: str
  allocation_namespace:
    description:
      - Namespace of the ledger ConfigMap.
      - Default C(allocations.kubernetes.namespace) of the fleet file, else C(baremetal-k8s).
    type: str
  allocation_configmap:
    description:
      - Name of the ledger ConfigMap.
      - Default C(allocations.kubernetes.name) of the fleet file, else C(baremetal-k8s-allocations).
    type: str
  live_state:
    description:
      - Kubeconfig per cluster name. For each listed cluster the plugin reads the Node objects and adds
        C(k8s_node) (ready, cordoned, kubelet_version, taints) to the members' hostvars and the C(k8s_*) groups.
      - An unreachable cluster is a warning, not an error; its members join C(k8s_unreachable).
    type: dict
    default: {}
  live_state_timeout:
    description: Seconds to wait for each cluster's API server.
    type: int
    default: 10
"""

EXAMPLES = r"""
# inventory/prod/fleet.baremetal.yml
plugin: baremetal.k8s.fleet
fleet_file: fleet.yml

# AWX: keep the ledger in a ConfigMap of the management cluster
plugin: baremetal.k8s.fleet
fleet_file: fleet.yml
allocation_store: kubernetes
allocation_namespace: baremetal-k8s
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: /tmp/baremetal-k8s-inventory
cache_timeout: 600

# Live node state and constructed groups
plugin: baremetal.k8s.fleet
fleet_file: fleet.yml
live_state:
  ams1-prod: ~/.kube/ams1-prod.conf
keyed_groups:
  - key: fleet_labels.workload
    prefix: workload
groups:
  big_memory: fleet_hardware.memory_gb >= 512
compose:
  node_ip: fleet_addresses.private
"""

import os
import re

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible_collections.baremetal.k8s.plugins.module_utils import ipam, live_state
from ansible_collections.baremetal.k8s.plugins.module_utils.allocation_store import (
    kubernetes_core_api,
    store_for_fleet,
)
from ansible_collections.baremetal.k8s.plugins.module_utils.fleet import FleetError, load_fleet

CONFIG_RE = re.compile(r"\.baremetal\.ya?ml$")
# Data files that live beside the config: claimed (and ignored) so other plugins leave them alone.
DATA_RE = re.compile(
    r"(^fleet\.(ya?ml|json)$|\.fleet\.(ya?ml|json)$|\.(allocations|placement)\.(json|ya?ml)(\.lock)?$)"
)
UNSAFE = re.compile(r"[^A-Za-z0-9_]")
CACHE_FORMAT = 1


def group_name(*parts):
    return UNSAFE.sub("_", "_".join(parts))


def build_inventory(fleet, ledger, live=None):
    """The whole inventory as plain data (what the cache stores).

    ``{"hosts": {name: hostvars}, "groups": {group: {"hosts": [...], "children": [...], "vars": {...}}}}``
    """
    groups = {}

    def group(name, parent=None):
        """The group ``name`` (created on first use), made a child of ``parent`` when given."""
        entry = groups.get(name)
        if entry is None:
            entry = groups[name] = {"hosts": [], "children": [], "vars": {}}
        if parent is not None:
            children = group(parent)["children"]
            if name not in children:
                children.append(name)
        return entry

    hosts = {}
    for server in fleet.servers.values():
        loc = server.location
        hostvars = {"ansible_host": server.addresses.private}
        hostvars.update(server.connection)
        hostvars.update(
            fleet_state=server.state,
            fleet_location={
                "region": loc.region,
                "datacenter": loc.datacenter,
                "row": loc.row,
                "rack": loc.rack,
                "tor": loc.tor,
            },
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
        hosts[server.name] = hostvars
        rack = group_name("rack", loc.datacenter, loc.rack)
        if rack not in groups:  # first server of this rack: link region > datacenter > row > rack once
            row = group_name("row", loc.datacenter, loc.row)
            group(group_name("datacenter", loc.datacenter), group_name("region", loc.region))
            group(row, group_name("datacenter", loc.datacenter))
            group(rack, row)
        groups[rack]["hosts"].append(server.name)
        group(group_name("state", server.state))["hosts"].append(server.name)

    for cluster in fleet.clusters.values():
        _add_cluster(fleet, cluster, ledger, hosts, group)

    for states in (live or {}).values():
        for server_name, state in states.items():
            hosts[server_name]["k8s_node"] = state
            for name in live_state.live_groups(state) if state is not None else ["k8s_unreachable"]:
                group(name)["hosts"].append(server_name)
    return {"hosts": hosts, "groups": groups}


def _add_cluster(fleet, cluster, ledger, hosts, group):
    cgroup = group_name("cluster", cluster.name)
    group(cgroup)["vars"]["k8s_cluster"] = {
        "name": cluster.name,
        "region": cluster.region,
        "kubernetes_version": cluster.kubernetes_version,
        "api_vip": cluster.api.vip,
        "api_port": cluster.api.port,
        "api_endpoint": f"[{cluster.api.vip}]:{cluster.api.port}" if ":" in cluster.api.vip else
                        f"{cluster.api.vip}:{cluster.api.port}",
        "pod_cidr": cluster.pod_cidr,
        "node_prefix_length": cluster.node_prefix_length,
        "service_cidr": cluster.service_cidr,
        "wireguard_cidr": cluster.wireguard.cidr,
        "wireguard_port": cluster.wireguard.port,
        "pod_network": cluster.pod_network,
    }  # fmt: skip
    for ng in cluster.node_groups:
        ng_group = group(group_name("node_group", cluster.name, ng.name), cgroup)
        ng_group["vars"]["fleet_node_group_roles"] = list(ng.roles)
        for role in ng.roles:
            group(group_name("cluster", cluster.name, role), cgroup)
            group(group_name("cluster", cluster.name, role), group_name("role", role))
        for name in ng.servers:
            ng_group["hosts"].append(name)
            for role in ng.roles:
                members = group(group_name("cluster", cluster.name, role))["hosts"]
                if name not in members:
                    members.append(name)
    for name in cluster.members():
        hostvars = hosts[name]
        hostvars["fleet_cluster"] = cluster.name
        hostvars["fleet_node_groups"] = cluster.groups_of(name)
        hostvars["fleet_roles"] = cluster.roles_of(name)
        alloc = ipam.lookup(ledger, cluster.name, name)
        hostvars["pod_cidr"] = alloc.get("pod_cidr")
        hostvars["wireguard_address"] = alloc.get("wireguard_address")
        hostvars["wireguard_port"] = cluster.wireguard.port
    # One peer table per private network: every host of that network sees the same endpoints.
    for network, table in ipam.mesh_views(fleet, cluster, ledger).items():
        wg_group = group(group_name("wireguard", cluster.name, network or "no_private_network"), cgroup)
        wg_group["vars"]["wireguard_peers"] = table
        wg_group["hosts"].extend(s for s in table if fleet.servers[s].addresses.private_network == network)


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    NAME = "baremetal.k8s.fleet"

    def verify_file(self, path):
        name = os.path.basename(path)
        if not (CONFIG_RE.search(name) or DATA_RE.search(name)):
            return False
        return super().verify_file(path)

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        if DATA_RE.search(os.path.basename(path)):
            # Fleet data is read through a config; without one beside it, say so rather than show nothing.
            directory = os.path.dirname(os.path.abspath(path))
            if not any(CONFIG_RE.search(f) for f in os.listdir(directory)):
                self.display.warning(
                    f"baremetal.k8s.fleet: {path} is fleet data, not an inventory source; "
                    "add a config ending in .baremetal.yml (plugin: baremetal.k8s.fleet) beside it"
                )
            return
        self._read_config_data(path)
        self._config_dir = os.path.dirname(os.path.abspath(path))
        data = self._cached(path, self._path_option("fleet_file"), cache)
        self._populate(data)

    def _path_option(self, name):
        return self._path_option_value(self.get_option(name))

    def _path_option_value(self, value):
        """A path, relative to the config file (not to the current directory)."""
        return os.path.join(self._config_dir, os.path.expanduser(value)) if value else None

    def _cached(self, path, fleet_file, cache):
        """The inventory data, from the cache when allowed and still matching the fleet file."""
        use_cache = self.get_option("cache")
        key = self.get_cache_key(path)
        stamp = _file_stamp(fleet_file)
        if use_cache and cache:
            try:
                cached = self._cache[key]
            except KeyError:
                cached = None
            if isinstance(cached, dict) and cached.get("format") == CACHE_FORMAT and cached.get("stamp") == stamp:
                return cached["data"]
        data = self._compute(fleet_file)
        if use_cache:
            self._cache[key] = {"format": CACHE_FORMAT, "stamp": stamp, "data": data}
        return data

    def _compute(self, fleet_file):
        try:
            fleet = load_fleet(fleet_file)
            store = store_for_fleet(
                fleet,
                {
                    "kind": self.get_option("allocation_store"),
                    "file": self._path_option("allocation_file"),
                    "kubeconfig": self.get_option("allocation_kubeconfig"),
                    "context": self.get_option("allocation_context"),
                    "namespace": self.get_option("allocation_namespace"),
                    "name": self.get_option("allocation_configmap"),
                },
            )
            ledger = store.update(lambda led: ipam.allocate(fleet, led, store.description))
        except FleetError as exc:
            raise AnsibleParserError(str(exc)) from None
        return build_inventory(fleet, ledger, self._live_state(fleet))

    def _live_state(self, fleet):
        result = {}
        for cluster_name, kubeconfig in (self.get_option("live_state") or {}).items():
            cluster = fleet.clusters.get(cluster_name)
            if cluster is None:
                raise AnsibleParserError(
                    f"live_state: unknown cluster {cluster_name!r}; use one of: {', '.join(fleet.clusters)}"
                )
            servers = [fleet.servers[n] for n in cluster.members()]
            try:
                api = kubernetes_core_api(self._path_option_value(kubeconfig))
                result[cluster_name] = live_state.cluster_live_state(
                    api, servers, self.get_option("live_state_timeout")
                )
            except FleetError as exc:
                self.display.warning(f"baremetal.k8s.fleet: live state of {cluster_name} unavailable: {exc}")
                result[cluster_name] = {s.name: None for s in servers}
        return result

    def _populate(self, data):
        inventory = self.inventory
        for name in data["groups"]:
            inventory.add_group(name)
        for name, entry in data["groups"].items():
            for child in entry["children"]:
                inventory.add_child(name, child)
            for key, value in entry["vars"].items():
                inventory.set_variable(name, key, value)
        for host, hostvars in data["hosts"].items():
            inventory.add_host(host)
            for key, value in hostvars.items():
                inventory.set_variable(host, key, value)
        for name, entry in data["groups"].items():
            for host in entry["hosts"]:
                inventory.add_child(name, host)
        self._construct(data)

    def _construct(self, data):
        compose, groups, keyed = (self.get_option(o) for o in ("compose", "groups", "keyed_groups"))
        if not (compose or groups or keyed):
            return  # templating 10,000 hosts is not free: skip it when unused
        strict = self.get_option("strict")
        for host, hostvars in data["hosts"].items():
            self._set_composite_vars(compose, hostvars, host, strict=strict)
            self._add_host_to_composed_groups(groups, hostvars, host, strict=strict)
            self._add_host_to_keyed_groups(keyed, hostvars, host, strict=strict)


def _file_stamp(path):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_mtime_ns, st.st_size]
