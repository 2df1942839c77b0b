#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: remediation_plan
short_description: Decide which unhealthy nodes the recovery job acts on now, and how
version_added: 0.1.0
description:
  - The decision step of recovery (docs/recovery.md). It joins the fleet (lifecycle state, deletion protection,
    failure domains; servers placed by the placement ledger included), the health verdicts of
    M(baremetal.k8s.node_health), the recovery state (what is in flight, attempts, when a node was first seen
    unhealthy, recent halts) and, for control planes, the etcd members of M(baremetal.k8s.etcd_info).
  - It returns the remediation plan's buckets (C(remediate), C(in_progress), C(waiting), C(deferred),
    C(refused)), each node with the policy's reason, and C(actions), the nodes to act on now in order, each with
    C(reprovision) or C(replace) and the step to (re)start at. Nodes a dead run left half way come first.
  - A node is replaced with a spare instead of reprovisioned when it failed O(policy.retry_limit) attempts, or
    when its host does not answer at all (it must be fenced first).
  - When more nodes of a cluster are unhealthy than O(policy.max_unhealthy), nothing new is remediated there;
    after such a halt clears, new remediations wait O(policy.halt_cooldown) seconds. Outside check mode the
    module records a halt starting or clearing in the recovery state (that is its only write).
  - Deterministic for the same inputs and O(now).
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
    description:
      - The C(nodes) list that M(baremetal.k8s.node_health) returned, for the cluster's fleet members.
    type: list
    elements: dict
    required: true
  etcd:
    description:
      - Per cluster name, the result of M(baremetal.k8s.etcd_info) (its C(members)). Without it, control planes
        and etcd nodes are deferred (quorum cannot be checked).
    type: dict
    default: {}
  policy:
    description: The limits (docs/remediation.md); missing keys take the defaults.
    type: dict
    default: {}
    suboptions:
      grace_period:
        description: Seconds a node must be unhealthy before anything is done.
        type: int
        default: 300
      max_unhealthy:
        description:
          - Most unhealthy nodes a cluster may have for remediation to go on, a count or a percentage such as
            C(40%) (Cluster API semantics). Past it the cluster is halted.
        type: raw
        default: 40%
      max_concurrent:
        description: Most nodes of one cluster remediated at once.
        type: int
        default: 1
      failure_domain:
        description: Remediate in one failure domain at a time, at this level.
        type: str
        choices: [rack, row, datacenter, region]
        default: rack
      retry_limit:
        description: Failed attempts after which a node is replaced with a spare instead of reprovisioned.
        type: int
        default: 3
      halt_cooldown:
        description: Seconds new remediations wait after a cluster's halt cleared (storm recovery).
        type: int
        default: 600
  now:
    description: The time to plan at, seconds since the epoch (tests); default the controller's clock.
    type: float
extends_documentation_fragment:
  - baremetal.k8s.ledger_store
  - baremetal.k8s.recovery_state
requirements:
  - netaddr (read by the fleet model)
  - kubernetes (for the C(kubernetes) store)
attributes:
  check_mode:
    description: Plans without recording halts.
    support: full
  diff_mode:
    description: No diff; the plan is the result.
    support: none
notes:
  - Runs on the controller (C(delegate_to=localhost) or a localhost play), like the other fleet modules.
"""

EXAMPLES = r"""
- name: Read the health of the cluster's members
  baremetal.k8s.node_health:
    kubeconfig: "{{ recovery_kubeconfig }}"
    members: "{{ recovery_members }}"
  register: health
  delegate_to: localhost

- name: Decide what to do now
  baremetal.k8s.remediation_plan:
    fleet: inventory/prod/fleet.yml
    cluster: ams1-prod
    health: "{{ health.nodes }}"
    etcd:
      ams1-prod: "{{ etcd }}"
    policy:
      grace_period: 300
      max_unhealthy: 40%
      retry_limit: 3
  register: plan
  delegate_to: localhost

- name: Show the plan
  ansible.builtin.debug:
    msg: "{{ plan.summary }}"
"""

RETURN = r"""
actions:
  description: The nodes to act on now, in order (resumed ones first), with what to do and where to start.
  returned: success
  type: list
  elements: dict
  sample:
    - node: ams1-a02-s03
      cluster: ams1-prod
      action: reprovision
      resume_at: cordon
      attempt: 1
      why: attempt 1 of retry_limit 3
      reason: "NotReady (KubeletInactive) for 412 s, past the grace period of 300 s; ..."
remediate:
  description: Nodes the policy starts remediating now, each with the policy's reason.
  returned: success
  type: list
  elements: dict
in_progress:
  description: Nodes whose remediation started in an earlier run (resumed now).
  returned: success
  type: list
  elements: dict
waiting:
  description: Unhealthy nodes within their grace period.
  returned: success
  type: list
  elements: dict
deferred:
  description: Nodes a limit holds back (one failure domain or control plane at a time, max_concurrent, a halt, storm
    recovery); a later run picks them up.
  returned: success
  type: list
  elements: dict
refused:
  description: Nodes that are never remediated until an operator acts (protected, not active, ...), with why.
  returned: success
  type: list
  elements: dict
halted:
  description: Whether remediation is halted in any cluster (more nodes unhealthy than max_unhealthy).
  returned: success
  type: bool
halted_reason:
  description: Why, in one sentence per halted cluster.
  returned: success
  type: str
halts_started:
  description: Clusters halted in this run that were not before (recorded in the recovery state).
  returned: success
  type: list
  elements: str
halts_cleared:
  description: Clusters whose halt cleared in this run (their cooldown starts).
  returned: success
  type: list
  elements: str
summary:
  description: One line for people, e.g. C(1 to reprovision; 1 remediate, 0 in progress, 2 waiting, ...).
  returned: success
  type: str
warnings_placement:
  description: Placement ledger entries that no longer fit the fleet file (left out).
  returned: success
  type: list
  elements: str
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.baremetal.k8s.plugins.module_utils import recovery_state
from ansible_collections.baremetal.k8s.plugins.module_utils.errors import BaremetalError
from ansible_collections.baremetal.k8s.plugins.module_utils.fleet import load_fleet
from ansible_collections.baremetal.k8s.plugins.module_utils.ledger_store import (
    STORE_ARGUMENT_SPEC,
    apply_operations,
    recovery_store,
)
from ansible_collections.baremetal.k8s.plugins.module_utils.recovery_plan import (
    etcd_state_from_info,
    fleet_members,
    plan_recovery,
    record_halts,
    recovery_policy_from_dict,
)
from ansible_collections.baremetal.k8s.plugins.module_utils.vocabulary import FAILURE_DOMAIN_LEVELS

POLICY_OPTIONS = dict(
    grace_period=dict(type="int", default=300),
    max_unhealthy=dict(type="raw", default="40%"),
    max_concurrent=dict(type="int", default=1),
    failure_domain=dict(type="str", choices=list(FAILURE_DOMAIN_LEVELS), default="rack"),
    retry_limit=dict(type="int", default=3),
    halt_cooldown=dict(type="int", default=600),
)


def run(module):
    params = module.params
    now = params["now"] if params["now"] is not None else time.time()
    fleet = load_fleet(params["fleet"])
    store = recovery_store(fleet, params)
    state = recovery_state.check_state(store.read(), store.description)
    # Servers this job marked failed are failed for the plan too (refused, not remediated again).
    placement_warnings = apply_operations(fleet, params, state)
    policy = recovery_policy_from_dict(params["policy"])
    etcd = {name: etcd_state_from_info(info, "etcd.%s" % name) for name, info in (params["etcd"] or {}).items()}
    members = fleet_members(fleet, params["cluster"])
    clusters = [params["cluster"]] if params["cluster"] else None

    def decide(state):
        return plan_recovery(members, params["health"], recovery_state.check_state(state, store.description),
                             policy, now=now, etcd=etcd, clusters=clusters)

    plan = decide(state)
    changed = bool(plan.halts_started or plan.halts_cleared)
    if changed and not module.check_mode:
        store.update(lambda state: record_halts(state, decide(state), now=now))
    result = plan.as_dict()
    result.update(changed=changed, warnings_placement=placement_warnings, recovery_state=store.description,
                  now=now)
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            fleet=dict(type="path", required=True),
            cluster=dict(type="str"),
            health=dict(type="list", elements="dict", required=True),
            etcd=dict(type="dict", default={}),
            policy=dict(type="dict", default={}, options=POLICY_OPTIONS),
            now=dict(type="float"),
            recovery_file=dict(type="path"),
            **STORE_ARGUMENT_SPEC,
        ),
        supports_check_mode=True,
    )
    try:
        result = run(module)
    except BaremetalError as exc:
        module.fail_json(msg=str(exc))
    for warning in result["warnings_placement"]:
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
