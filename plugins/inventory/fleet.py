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
  - Servers given to a node group by placement (the placement ledger) are members like the ones the fleet file
    names. The cache (O(cache)) is keyed on the config, the fleet file and both ledgers, so it is never stale;
    live state is read on every run.
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
  placement_file:
    description:
      - Placement ledger path for the C(file) store (written by the C(baremetal.k8s.placement) module); a relative
        path is relative to this config file. The servers it assigns become members of their node groups.
      - Default C(<fleet stem>.placement.yml) beside the fleet file. With the C(kubernetes) store the ledger is
        the ConfigMap named after O(allocation_configmap) (C(baremetal-k8s-placement) by default).
    type: str
  live_state:
    description:
      - Kubeconfig per cluster name. For each listed cluster the plugin reads the Node objects and adds
        C(k8s_node) (ready, cordoned, kubelet_version, taints) to the members' hostvars and the C(k8s_*) groups.
      - An unreachable cluster, or a kubeconfig that cannot be loaded, is a warning, not an error; its members
        join C(k8s_unreachable).
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
from ansible_collections.baremetal.k8s.plugins.module_utils.errors import BaremetalError
from ansible_collections.baremetal.k8s.plugins.module_utils.fleet import load_fleet
from ansible_collections.baremetal.k8s.plugins.module_utils.inventory import build_inventory, with_live_state
from ansible_collections.baremetal.k8s.plugins.module_utils.ledger_store import (
    ALLOCATIONS,
    LEDGERS,
    PLACEMENT,
    RECOVERY,
    open_store,
    store_for_fleet,
)
from ansible_collections.baremetal.k8s.plugins.module_utils.placement.ledger import apply_placement
from ansible_collections.baremetal.k8s.plugins.module_utils.recovery_state import apply_marks, check_state

CONFIG_RE = re.compile(r"\.baremetal\.ya?ml$")
# Data files that live beside the config: claimed (and ignored) so other plugins leave them alone.
DATA_RE = re.compile(
    r"(^fleet\.(ya?ml|json)$|\.fleet\.(ya?ml|json)$|\.(allocations|placement|recovery)\.(json|ya?ml)(\.lock)?$)"
)
CACHE_FORMAT = 2
# The ledgers the inventory reads (the recovery state is not one of them).
# The recovery state is read for the servers recovery marked failed (they leave their node groups).
LEDGERS_READ = (PLACEMENT, ALLOCATIONS, RECOVERY)


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
        try:
            data, servers = self._cached(path, self._path_option("fleet_file"), cache)
            data = with_live_state(data, self._live_state(servers))
        except BaremetalError as exc:
            raise AnsibleParserError(str(exc)) from None
        self._populate(data)

    def _path_option(self, name):
        return self._path_option_value(self.get_option(name))

    def _path_option_value(self, value):
        """A path, relative to the config file (not to the current directory)."""
        return os.path.join(self._config_dir, os.path.expanduser(value)) if value else None

    def _store_overrides(self, ledger):
        return {
            "kind": self.get_option("allocation_store"),
            "file": self._path_option("allocation_file" if ledger is ALLOCATIONS else "placement_file"),
            "kubeconfig": self.get_option("allocation_kubeconfig"),
            "context": self.get_option("allocation_context"),
            "namespace": self.get_option("allocation_namespace"),
            "name": self.get_option("allocation_configmap"),
        }

    # -- the cache: keyed on everything the static inventory depends on

    def _cached(self, path, fleet_file, cache):
        """(inventory data, {cluster: [[member, private address], ...]}), from the cache while nothing it
        depends on changed: the config, the fleet file and both ledgers."""
        use_cache = self.get_option("cache")
        key = self.get_cache_key(path)
        if use_cache and cache:
            try:
                cached = self._cache[key]
            except KeyError:
                cached = None
            if (isinstance(cached, dict) and cached.get("format") == CACHE_FORMAT
                    and cached.get("stamp") == _stamp(path, fleet_file, _reopen(fleet_file, cached.get("stores")))):
                return cached["data"], cached["live_servers"]
        data, stores, live_servers = self._compute(fleet_file)
        if use_cache:
            self._cache[key] = {"format": CACHE_FORMAT, "stamp": _stamp(path, fleet_file, stores),
                                "stores": {name: store.settings for name, store in stores.items()},
                                "data": data, "live_servers": live_servers}
        return data, live_servers

    def _compute(self, fleet_file):
        fleet = load_fleet(fleet_file)
        stores = {}
        for kind in LEDGERS_READ:
            stores[kind.name] = store_for_fleet(fleet, self._store_overrides(kind), ledger=kind)
        placed = apply_placement(fleet, stores["placement"])
        recovery = stores["recovery"]
        for warning in placed + apply_marks(fleet, check_state(recovery.read(), recovery.description)):
            self.display.warning(f"baremetal.k8s.fleet: {warning}")
        ledger = stores["allocations"].update(lambda led: ipam.allocate(fleet, led, stores["allocations"].description))
        # What live state needs, so a cached run need not parse the fleet file.
        live_servers = {
            name: [[s, fleet.servers[s].addresses.private] for s in cluster.members()]
            for name, cluster in fleet.clusters.items()
        }
        return build_inventory(fleet, ledger), stores, live_servers

    # -- live state: read on every run

    def _live_state(self, servers):
        from ansible_collections.baremetal.k8s.plugins.module_utils.k8s_client import core_v1

        result = {}
        for cluster_name, kubeconfig in (self.get_option("live_state") or {}).items():
            if cluster_name not in servers:
                raise AnsibleParserError(
                    f"live_state: unknown cluster {cluster_name!r}; use one of: {', '.join(servers)}"
                )
            members = [live_state.ServerRef(name, address) for name, address in servers[cluster_name]]
            try:
                api = core_v1(self._path_option_value(kubeconfig))
                result[cluster_name] = live_state.cluster_live_state(
                    api, members, self.get_option("live_state_timeout")
                )
            except BaremetalError as exc:
                self.display.warning(f"baremetal.k8s.fleet: live state of {cluster_name} unavailable: {exc}")
                result[cluster_name] = {s.name: None for s in members}
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


def _reopen(fleet_file, settings):
    """The stores a cache entry was computed from, rebuilt from their saved settings (no fleet parse);
    None when the entry does not name the ledgers the inventory reads."""
    if not isinstance(settings, dict) or set(settings) != {kind.name for kind in LEDGERS_READ}:
        return None
    return {name: open_store(fleet_file=fleet_file, ledger=LEDGERS[name], **kwargs)
            for name, kwargs in settings.items()}


def _stamp(path, fleet_file, stores):
    """What the inventory was computed from: the config, the fleet file and each ledger's stamp."""
    if stores is None:
        return None
    stamp = {"config": _file_stamp(path), "fleet": _file_stamp(fleet_file)}
    stamp.update((name, store.stamp()) for name, store in stores.items())
    return stamp


def _file_stamp(path):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_mtime_ns, st.st_size]
