#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: fleet_allocation
short_description: Show, allocate and release the pod prefixes and WireGuard addresses of a fleet
version_added: 0.1.0
description:
  - Works on the same allocation ledger as the C(baremetal.k8s.fleet) inventory plugin (docs/ipam.md),
    through the same code, so what it shows is what the inventory hands out.
  - O(state=present) gives every member of every cluster a pod prefix and a WireGuard address (existing
    allocations never move) and returns them.
  - O(state=released) frees the allocation of a retired or removed server, so a new node may reuse it.
    This is how AWX users release a retired server's addresses when the ledger lives in a ConfigMap.
  - Releasing a server that is still an active member of its cluster is refused unless O(force=true);
    its addresses would be given to the next new node while it still uses them.
  - Runs on the controller (use C(delegate_to=localhost) or a localhost play).
author:
  - baremetal.k8s maintainers (@baremetal)
options:
  fleet_file:
    description: Path of the fleet file (docs/fleet-format.md).
    type: path
    required: true
  state:
    description:
      - V(present) allocates what is missing and returns the allocations.
      - V(released) frees the allocation of O(server).
    type: str
    choices: [present, released]
    default: present
  server:
    description:
      - Server name. Required with O(state=released).
      - With O(state=present), only this server's allocation is returned in RV(allocation).
    type: str
  cluster:
    description:
      - Cluster of the allocation to release. Default every cluster whose ledger section holds O(server).
      - With O(state=present), only this cluster's allocations are returned in RV(allocations).
    type: str
  force:
    description: Release even when the server is still an active member of the cluster.
    type: bool
    default: false
  allocation_file:
    description:
      - Ledger path of the C(file) store; a relative path is relative to the fleet file.
      - Default C(allocations.file) of the fleet file, else C(<fleet stem>.allocations.json) beside the fleet file.
    type: path
extends_documentation_fragment:
  - baremetal.k8s.ledger_store
requirements:
  - netaddr
  - kubernetes (for the C(kubernetes) store)
attributes:
  check_mode:
    description: Computes the allocations or the release and returns them without writing the ledger.
    support: full
  diff_mode:
    description: Shows the ledger entries added or released.
    support: full
notes:
  - Updates are safe against concurrent inventory runs and jobs; the file store locks the ledger, the
    C(kubernetes) store retries on a resourceVersion conflict.
"""

EXAMPLES = r"""
- name: Show the allocation of one server (allocating what is missing)
  baremetal.k8s.fleet_allocation:
    fleet_file: inventory/example/fleet.yml
    server: ams1-a01-s02
  delegate_to: localhost
  register: alloc

- name: Release the addresses of a retired server (preview with --check --diff)
  baremetal.k8s.fleet_allocation:
    fleet_file: inventory/example/fleet.yml
    server: ams1-a03-s04
    state: released
  delegate_to: localhost

- name: In AWX, release from the ConfigMap ledger of the management cluster
  baremetal.k8s.fleet_allocation:
    fleet_file: "{{ playbook_dir }}/../inventory/prod/fleet.yml"
    allocation_store: kubernetes
    namespace: baremetal-k8s
    server: ams1-a03-s04
    state: released
  delegate_to: localhost
"""

RETURN = r"""
store:
  description: The ledger that was read or written.
  returned: always
  type: str
  sample: /srv/inventory/fleet.allocations.json
allocation:
  description: The allocation of O(server) per cluster (empty when it holds none).
  returned: when O(server) is given
  type: dict
  sample: {"ams1-prod": {"pod_cidr": "10.200.3.0/24", "wireguard_address": "10.201.0.4"}}
allocations:
  description: Every allocation by cluster and server (only O(cluster) when given).
  returned: when O(state=present)
  type: dict
  sample: {"ams1-prod": {"ams1-a01-s01": {"pod_cidr": "10.200.0.0/24", "wireguard_address": "10.201.0.1"}}}
added:
  description: Allocations this run added, by cluster and server.
  returned: when O(state=present)
  type: dict
released:
  description: Allocations this run freed, by cluster.
  returned: when O(state=released)
  type: dict
  sample: {"ams1-prod": {"pod_cidr": "10.200.8.0/24", "wireguard_address": "10.201.0.9"}}
"""

import copy
import json

from ansible.module_utils.basic import AnsibleModule

try:
    from ansible_collections.baremetal.k8s.plugins.module_utils import ipam
    from ansible_collections.baremetal.k8s.plugins.module_utils.errors import BaremetalError
    from ansible_collections.baremetal.k8s.plugins.module_utils.fleet import FleetError, load_fleet
    from ansible_collections.baremetal.k8s.plugins.module_utils.ledger_store import (
        STORE_ARGUMENT_SPEC,
        store_for_fleet,
        store_overrides,
    )

    IMPORT_ERROR = None
except ImportError as exc:  # a broken installation of the collection
    IMPORT_ERROR = exc


def _nodes(ledger):
    return {name: dict((entry or {}).get("nodes") or {}) for name, entry in (ledger.get("clusters") or {}).items()}


def _difference(before, after):
    """Entries added or removed between two ``_nodes`` views, as two small dicts for the diff."""
    old, new = {}, {}
    for cluster in sorted(set(before) | set(after)):
        a, b = before.get(cluster, {}), after.get(cluster, {})
        for server in sorted(set(a) | set(b)):
            if a.get(server) != b.get(server):
                if server in a:
                    old.setdefault(cluster, {})[server] = a[server]
                if server in b:
                    new.setdefault(cluster, {})[server] = b[server]
    return old, new


def run(module):
    params = module.params
    fleet = load_fleet(params["fleet_file"])
    store = store_for_fleet(fleet, store_overrides(params, file=params["allocation_file"]))
    server, cluster = params["server"], params["cluster"]
    if params["state"] == "released":
        if not server:
            module.fail_json(msg="state=released needs server: the name of the server to release")

        def mutate(ledger):
            targets = [cluster] if cluster else ipam.holders(ledger, server)
            for name in targets:
                blocker = ipam.release_blocker(fleet, name, server)
                if blocker and not params["force"]:
                    raise FleetError(
                        fleet.source, f"server {server}", blocker,
                        "set its state to retired (or remove it from the cluster) first, or use force=true",
                    )  # fmt: skip
            released = False
            for name in targets:
                released = ipam.release(ledger, name, server, store.description) is not None or released
            return released
    else:

        def mutate(ledger):
            return ipam.allocate(fleet, ledger, store.description)

    before = store.read()
    if module.check_mode:
        after = copy.deepcopy(before)
        mutate(after)
    else:
        after = store.update(mutate)
    old, new = _difference(_nodes(before), _nodes(after))
    changed = bool(old or new)
    result = {
        "changed": changed,
        "store": store.description,
        "diff": {
            "before": json.dumps(old, indent=2, sort_keys=True) + "\n",
            "after": json.dumps(new, indent=2, sort_keys=True) + "\n",
            "before_header": store.description,
            "after_header": store.description,
        },
    }
    nodes = _nodes(after)
    if server:
        result["allocation"] = {name: entries[server] for name, entries in nodes.items() if server in entries}
    if params["state"] == "present":
        result["allocations"] = {cluster: nodes.get(cluster, {})} if cluster else nodes
        result["added"] = new
    else:
        result["released"] = {name: entries[server] for name, entries in old.items()}
        if not old:
            where = f"cluster {cluster}" if cluster else "any cluster"
            known = "" if server in fleet.servers else " and the fleet file has no such server (a typo?)"
            module.warn(f"{server} holds no allocation in {where} of {store.description}{known}: nothing released")
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            fleet_file=dict(type="path", required=True),
            state=dict(type="str", choices=["present", "released"], default="present"),
            server=dict(type="str"),
            cluster=dict(type="str"),
            force=dict(type="bool", default=False),
            allocation_file=dict(type="path"),
            **STORE_ARGUMENT_SPEC,
        ),
        required_if=[("state", "released", ("server",))],
        supports_check_mode=True,
    )
    if IMPORT_ERROR is not None:
        module.fail_json(msg="cannot import the collection's module_utils: %s" % IMPORT_ERROR)
    try:
        result = run(module)
    except BaremetalError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
