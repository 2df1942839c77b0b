#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: maintenance_plan
short_description: Decide which servers planned maintenance drains and holds, and which it gives back
version_added: 0.1.0
description:
  - The decision step of the maintenance job (docs/maintenance.md). A server is in maintenance when the fleet
    file says C(state=maintenance) or the recovery state holds a maintenance mark for it (the job started with a
    reason, M(baremetal.k8s.recovery_state) with C(action=mark_maintenance)).
  - Each server concerned gets one decision with its reason. C(enter) a server in maintenance whose Node is not
    held yet (cordon it with the reason and drain it); C(held) one already held; C(exit) a server back to
    C(active) whose Node is still held, verified Ready, healthy, with C(spec.podCIDR) equal to the allocation
    ledger's and (control planes) a healthy etcd member (uncordon it); C(blocked) such a server while the
    verification fails; C(refused) a server recovery is working on, or a control plane whose host going down
    would leave etcd without quorum.
  - Reads only; deterministic for the same inputs.
author:
  - baremetal.k8s maintainers (@baremetal)
options:
  fleet:
    description: Path of the fleet file (docs/fleet-format.md).
    type: path
    required: true
  cluster:
    description: Plan only this cluster (default every cluster the health verdicts belong to).
    type: str
  health:
    description: The C(nodes) list that M(baremetal.k8s.node_health) returned for the clusters' fleet members.
    type: list
    elements: dict
    required: true
  etcd:
    description:
      - Per cluster name, the result of M(baremetal.k8s.etcd_info) (its C(members)). Without it a control plane
        neither enters maintenance (quorum cannot be checked) nor leaves it (its member cannot be verified).
    type: dict
    default: {}
  starting:
    description:
      - Servers this run puts in maintenance for O(reason) (the marks M(baremetal.k8s.recovery_state) writes in the
        same run), applied before planning so that check mode plans what the run would do.
    type: list
    elements: str
    default: []
  ending:
    description: Servers whose maintenance mark this run clears, applied before planning.
    type: list
    elements: str
    default: []
  reason:
    description: Why the O(starting) servers go into maintenance.
    type: str
    default: ""
extends_documentation_fragment:
  - baremetal.k8s.ledger_store
  - baremetal.k8s.recovery_state
requirements:
  - netaddr (read by the fleet model)
  - kubernetes (for the C(kubernetes) store)
attributes:
  check_mode:
    description: Reads only, in check mode as in a run.
    support: full
  diff_mode:
    description: No diff; the plan is the result.
    support: none
notes:
  - Runs on the controller (C(delegate_to=localhost) or a localhost play), like the other fleet modules.
"""

EXAMPLES = r"""
- name: Decide what maintenance does now
  baremetal.k8s.maintenance_plan:
    fleet: inventory/prod/fleet.yml
    health: "{{ health.nodes }}"
    etcd:
      ams1-prod: "{{ etcd }}"
  register: maintenance
  delegate_to: localhost

- name: Show it
  ansible.builtin.debug:
    msg: "{{ maintenance.summary }}"
"""

RETURN = r"""
decisions:
  description: One per server in maintenance or held for it, in the order of O(health).
  returned: success
  type: list
  elements: dict
  sample:
    - server: ams1-a02-s03
      cluster: ams1-prod
      decision: enter
      reason: "cordon and drain it for maintenance: replace DIMM B2, ticket OPS-123"
      cordon_reason: "replace DIMM B2, ticket OPS-123"
      node_ready: true
enter:
  description: The decisions C(enter) (cordon with C(cordon_reason), drain).
  returned: success
  type: list
  elements: dict
held:
  description: The decisions C(held) (nothing to do).
  returned: success
  type: list
  elements: dict
exit:
  description: The decisions C(exit) (verified, so uncordon).
  returned: success
  type: list
  elements: dict
blocked:
  description: The decisions C(blocked) (back to active, not verified, so it stays cordoned), each with what failed.
  returned: success
  type: list
  elements: dict
refused:
  description: The decisions C(refused) (not entered because recovery works on it, or for etcd quorum), each with why.
  returned: success
  type: list
  elements: dict
summary:
  description: One line for people, e.g. C(1 enter, 2 held, 0 exit, 0 blocked, 0 refused).
  returned: success
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.baremetal.k8s.plugins.module_utils import recovery_state
from ansible_collections.baremetal.k8s.plugins.module_utils.errors import BaremetalError
from ansible_collections.baremetal.k8s.plugins.module_utils.fleet import load_fleet
from ansible_collections.baremetal.k8s.plugins.module_utils.ledger_store import (
    ALLOCATIONS,
    STORE_ARGUMENT_SPEC,
    apply_operations,
    recovery_store,
    store_for_fleet,
    store_overrides,
)
from ansible_collections.baremetal.k8s.plugins.module_utils.maintenance import fleet_members, plan_maintenance
from ansible_collections.baremetal.k8s.plugins.module_utils.recovery_plan import etcd_state_from_info


def run(params):
    fleet = load_fleet(params["fleet"])
    store = recovery_store(fleet, params)
    state = recovery_state.check_state(store.read(), store.description)
    for name in params["starting"]:  # what this run's marks will say (check mode writes none)
        recovery_state.mark_maintenance(state, name, params["reason"], now=0.0, by="this run")
    for name in params["ending"]:
        recovery_state.clear_maintenance(state, name)
    warnings = apply_operations(fleet, params, state)
    ledger = store_for_fleet(fleet, store_overrides(params), ledger=ALLOCATIONS).read()
    etcd = {name: etcd_state_from_info(info, "etcd.%s" % name) for name, info in (params["etcd"] or {}).items()}
    plan = plan_maintenance(fleet_members(fleet, ledger, params["cluster"]), params["health"], state, etcd=etcd)
    return dict(plan.as_dict(), changed=False, recovery_state=store.description), warnings


def main():
    module = AnsibleModule(
        argument_spec=dict(
            fleet=dict(type="path", required=True),
            cluster=dict(type="str"),
            health=dict(type="list", elements="dict", required=True),
            etcd=dict(type="dict", default={}),
            starting=dict(type="list", elements="str", default=[]),
            ending=dict(type="list", elements="str", default=[]),
            reason=dict(type="str", default=""),
            recovery_file=dict(type="path"),
            **STORE_ARGUMENT_SPEC,
        ),
        supports_check_mode=True,
    )
    try:
        result, warnings = run(module.params)
    except BaremetalError as exc:
        module.fail_json(msg=str(exc))
    for warning in warnings:
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
