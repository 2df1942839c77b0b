#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: placement
short_description: Place servers into node groups and tenant workloads onto clusters, from intents
version_added: 0.1.0
description:
  - Reads the fleet file and decides which servers serve which node groups (from each node group's
    C(intent)), and which node group of which cluster runs each tenant workload (database clusters,
    Consul, Redis and other StatefulSets offered as a service).
  - Server placement filters the free servers of the cluster's region through the intent's hard
    constraints (cores, memory, disk, NIC speed, GPUs, dedicated workload label), then picks each
    server by failure-domain spread, reuse of servers that served the group before, network
    locality to the group's peers and best fit.
  - Workload placement is least-connection across the clusters of a region, checks capacity node by
    node, spreads replicas across failure domains and returns the nodeSelector, affinity and
    topologySpreadConstraints for the workload's manifests.
  - The plan is deterministic and stable. What is already placed stays where it is unless
    O(rebalance=true). Every decision is explained; an unsatisfiable intent fails the task with the
    constraint that failed and how many candidates were left after each filter. Nothing is written
    when a node group cannot be filled or the blast radius is exceeded (a node group is never half built).
  - Workloads that fit nowhere are reported in RV(unplaced) and as warnings while the others are placed
    (O(partial_workloads=true), the default); with O(partial_workloads=false) they refuse the whole plan.
  - "Assignments are kept in the placement ledger, in the same store as the allocation ledger (the fleet
    file's C(allocations) section): a file (default C(<fleet>.placement.yml) beside the fleet file) written
    atomically under a lock, or a ConfigMap in the management cluster (AWX). The inventory plugin reads it:
    placed servers become members of their node groups. See docs/placement.md."
  - Runs on the controller (use it with C(delegate_to=localhost) or on a localhost play).
author:
  - baremetal.k8s maintainers (@baremetal)
extends_documentation_fragment:
  - baremetal.k8s.ledger_store
requirements:
  - netaddr (read by the fleet model)
  - PyYAML
  - kubernetes (for the C(kubernetes) store)
options:
  fleet:
    description: Path of the fleet file (docs/fleet-format.md).
    type: path
    required: true
  ledger:
    description:
      - Path of the placement ledger for the C(file) store; a relative path is relative to the fleet file.
      - Default is the fleet file's name with C(.placement.yml) instead of C(.yml), beside it.
      - With O(allocation_store=kubernetes) the ledger is a ConfigMap instead (see O(configmap)).
    type: path
  intents:
    description:
      - Node group intents that add to or override the fleet file's C(node_groups[].intent).
      - Fields left out keep the value of the group's intent in the fleet file; they are checked by the same
        rules as the fleet file's intents.
      - A group the cluster does not have yet is created with O(intents[].roles).
    type: list
    elements: dict
    default: []
    suboptions:
      cluster:
        description: Cluster name from the fleet file.
        type: str
        required: true
      group:
        description: Node group name.
        type: str
        required: true
      roles:
        description: Roles of a new node group (ignored for existing groups); default C([worker]).
        type: list
        elements: str
        choices: [control_plane, etcd, worker, load_balancer]
      count:
        description: Total number of servers of the group, pinned servers included.
        type: int
      min_cores:
        description: Minimum CPU cores.
        type: int
      min_memory_gb:
        description: Minimum memory in GB.
        type: int
      disk_type:
        description: A disk of this type is required.
        type: str
        choices: [nvme, ssd, hdd]
      min_disk_gb:
        description: Minimum size of the largest disk (of O(intents[].disk_type) when given).
        type: int
      min_nic_gbps:
        description: Minimum speed of the fastest NIC.
        type: int
      gpus:
        description: Minimum number of GPUs.
        type: int
      dedicated:
        description: Servers must carry C(labels.workload) with this value.
        type: str
      spread:
        description: Failure domain the group spreads over.
        type: str
        choices: [rack, row, datacenter]
      max_share_per_domain:
        description: Largest share of the group in one failure domain of O(intents[].spread).
        type: float
  workloads:
    description:
      - Tenant workloads to place. When given, this is the complete list; workloads in the ledger
        but not in the list are released. When omitted, the ledger's workloads are left as they are.
    type: list
    elements: dict
    suboptions:
      name:
        description: Unique workload name (also the C(app.kubernetes.io/instance) label of its pods).
        type: str
        required: true
      region:
        description: Region whose clusters may run it.
        type: str
      cluster:
        description: Only this cluster.
        type: str
      node_group:
        description: Only node groups with this name (default every node group with the worker role).
        type: str
      replicas:
        description: Number of replicas, one per node.
        type: int
        default: 1
      cpu:
        description: Cores per replica.
        type: float
        default: 1.0
      memory_gb:
        description: Memory per replica in GB.
        type: float
        default: 1.0
      disk_type:
        description: Nodes must have a disk of this type.
        type: str
        choices: [nvme, ssd, hdd]
      dedicated:
        description: Nodes must carry C(labels.workload) with this value.
        type: str
      spread:
        description: Failure domain the replicas spread over (C(node) only keeps them on distinct nodes).
        type: str
        choices: [rack, row, datacenter, node]
        default: rack
  rebalance:
    description:
      - Re-place everything the ledger holds as if new; servers and workloads may move.
      - Servers that served a group before are still preferred for it.
    type: bool
    default: false
  allow_blast_radius:
    description:
      - Accept a plan that puts more than O(max_share_per_domain) of a cluster's nodes, or more than
        one etcd member, in one failure domain (and workload replicas beyond a quorum-safe spread).
      - The excess is reported as warnings.
    type: bool
    default: false
  max_share_per_domain:
    description:
      - Largest share of one cluster's nodes in one failure domain of O(failure_domain); one node is
        always allowed.
    type: float
    default: 0.5
  failure_domain:
    description: Failure domain of the blast-radius limits.
    type: str
    choices: [rack, row, datacenter]
    default: rack
  replace:
    description:
      - Servers to take out of their node group; the engine places replacements (recovery).
      - Each must be a server of the fleet that serves a node group (pinned in the fleet file or placed by
        the ledger); anything else fails the task naming it. A server that already left its group in an
        earlier run is a warning, so a replacement can be run again.
    type: list
    elements: str
    default: []
  reserved_cores:
    description: Cores per node kept for the system and Kubernetes, not given to workloads; at least 0.
    type: float
    default: 2.0
  reserved_memory_gb:
    description: Memory per node in GB kept for the system and Kubernetes; at least 0.
    type: float
    default: 8.0
  partial_workloads:
    description:
      - When some workloads fit nowhere, place the others and report those in RV(unplaced) and as warnings.
        A workload placed before whose changed request fits nowhere keeps its previous placement.
      - With V(false), one workload that fits nowhere refuses the whole plan and nothing is written.
      - Node groups are all or nothing either way; see docs/placement.md.
    type: bool
    default: true
attributes:
  check_mode:
    description: Returns the plan, the changes and the ledger diff without writing the ledger.
    support: full
  diff_mode:
    description: Shows the placement ledger before and after the plan.
    support: full
notes:
  - The ledger is only written when the plan succeeds (with O(partial_workloads=true), workloads that fit
    nowhere do not stop it); in check mode the plan and the diff are returned and nothing is written.
"""

EXAMPLES = r"""
- name: Plan and persist node group placements from the fleet file's intents
  baremetal.k8s.placement:
    fleet: "{{ playbook_dir }}/../inventory/example/fleet.yml"
  delegate_to: localhost
  register: placement

- name: Grow a node group and place two tenant databases (preview only)
  baremetal.k8s.placement:
    fleet: inventory/example/fleet.yml
    intents:
      - {cluster: ams1-prod, group: general, count: 3}
    workloads:
      - {name: orders-db, region: eu-west, replicas: 3, cpu: 4, memory_gb: 16}
      - {name: sessions-redis, region: eu-west, replicas: 2, cpu: 1, memory_gb: 4}
  check_mode: true
  diff: true

- name: Replace a failed server of a node group with a spare
  baremetal.k8s.placement:
    fleet: inventory/example/fleet.yml
    replace: [ams1-a03-s03]
"""

RETURN = r"""
ledger:
  description: Path of the placement ledger.
  returned: always
  type: str
  sample: /srv/fleet/fleet.placement.yml
plan:
  description: The complete plan.
  returned: success
  type: dict
  contains:
    groups:
      description: Members (pinned and placed servers) of every node group, by C(cluster/group).
      type: dict
      sample: {"ams1-prod/general": ["ams1-a01-s02", "ams1-a02-s02", "ams1-a03-s03"]}
    workloads:
      description: Cluster, node group and nodes of every placed workload.
      type: dict
      sample: {"orders-db": {"cluster": "ams1-prod", "group": "general", "nodes": ["ams1-a01-s02"]}}
changes:
  description: Servers and workloads placed, moved or released compared with the ledger, with the reasons.
  returned: success
  type: list
  elements: dict
  sample: [{"server": "ams1-a03-s03", "action": "placed", "to": "ams1-prod/general", "why": ["fresh server"]}]
explanations:
  description:
    - Per node group (C(groups)) and per workload (C(workloads)) the decision, the funnel (candidates left
      after each filter) and why each server or cluster was chosen; unsatisfiable items carry C(reason).
  returned: always
  type: dict
manifests:
  description:
    - Per workload, the cluster and the C(nodeSelector), C(affinity) and C(topologySpreadConstraints) for its
      pod template.
  returned: success
  type: dict
unplaced:
  description:
    - Workloads not placed as requested, with the reason (the funnel per node group tried).
      C(kept_previous) is true when the workload keeps its earlier placement (its previous request).
    - With O(partial_workloads=false) any entry here refuses the plan. Empty without O(workloads).
  returned: always
  type: list
  elements: dict
  sample: [{"workload": "huge-db", "reason": "workload huge-db: unsatisfiable: ...", "kept_previous": false}]
failures:
  description: One line per unsatisfiable intent or refused blast radius (and unplaced workload when strict).
  returned: failure
  type: list
  elements: str
drift:
  description: Differences between the ledger and the fleet file found and reconciled.
  returned: always
  type: list
  elements: str
"""

import json

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.baremetal.k8s.plugins.module_utils.errors import BaremetalError
from ansible_collections.baremetal.k8s.plugins.module_utils.vocabulary import (
    DISK_TYPES,
    ROLES,
    SPREAD_LEVELS,
    WORKLOAD_SPREAD_LEVELS,
)

try:
    from ansible_collections.baremetal.k8s.plugins.module_utils.fleet import load_fleet
    from ansible_collections.baremetal.k8s.plugins.module_utils.ledger_store import (
        PLACEMENT,
        RECOVERY,
        STORE_ARGUMENT_SPEC,
        store_for_fleet,
        store_overrides,
    )
    from ansible_collections.baremetal.k8s.plugins.module_utils.placement import (
        Ledger,
        PlacementError,
        PlacementOptions,
        dump_ledger,
        model_from_fleet,
        plan_placement,
        workload_request,
    )
    from ansible_collections.baremetal.k8s.plugins.module_utils.recovery_state import apply_marks, check_state

    IMPORT_ERROR = None
except ImportError as exc:  # netaddr missing on the controller
    IMPORT_ERROR = exc

# Choices come from the vocabulary; DOCUMENTATION lists the same values (ansible-test validate-modules).
INTENT_OPTIONS = dict(
    cluster=dict(type="str", required=True),
    group=dict(type="str", required=True),
    roles=dict(type="list", elements="str", choices=list(ROLES)),
    count=dict(type="int"),
    min_cores=dict(type="int"),
    min_memory_gb=dict(type="int"),
    disk_type=dict(type="str", choices=list(DISK_TYPES)),
    min_disk_gb=dict(type="int"),
    min_nic_gbps=dict(type="int"),
    gpus=dict(type="int"),
    dedicated=dict(type="str"),
    spread=dict(type="str", choices=list(SPREAD_LEVELS)),
    max_share_per_domain=dict(type="float"),
)

WORKLOAD_OPTIONS = dict(
    name=dict(type="str", required=True),
    region=dict(type="str"),
    cluster=dict(type="str"),
    node_group=dict(type="str"),
    replicas=dict(type="int", default=1),
    cpu=dict(type="float", default=1.0),
    memory_gb=dict(type="float", default=1.0),
    disk_type=dict(type="str", choices=list(DISK_TYPES)),
    dedicated=dict(type="str"),
    spread=dict(type="str", choices=list(WORKLOAD_SPREAD_LEVELS), default="rack"),
)


class Planner:
    """The plan for one ledger state, computed once per state: the file store asks twice (before and under its
    lock), the ConfigMap store again after a conflict."""

    def __init__(self, candidates, groups, options, workloads):
        self.args = (candidates, groups)
        self.options = options
        self.workloads = workloads
        self.results = {}

    def plan(self, data):
        key = json.dumps(data, sort_keys=True)
        if key not in self.results:
            ledger = Ledger.from_data(data)
            self.results[key] = (ledger, plan_placement(*self.args, ledger, self.options, self.workloads))
        return self.results[key]

    def mutate(self, data):
        """The store's update callback: replace the ledger with the plan's."""
        before, result = self.plan(data)
        if not result.ok:
            refusal = "\n".join(result.failures)
            raise PlacementError("placement refused (the ledger changed while planning):\n" + refusal)
        after = result.ledger.to_data()
        if after == before.to_data():
            return False
        data.clear()
        data.update(after)
        return True


def _text(ledger):
    """The ledger as its file holds it, for the diff; an empty ledger is no file at all."""
    return dump_ledger(ledger) if ledger != Ledger() else ""


def main():
    module = AnsibleModule(
        argument_spec=dict(
            fleet=dict(type="path", required=True),
            ledger=dict(type="path"),
            intents=dict(type="list", elements="dict", default=[], options=INTENT_OPTIONS),
            workloads=dict(type="list", elements="dict", options=WORKLOAD_OPTIONS),
            rebalance=dict(type="bool", default=False),
            allow_blast_radius=dict(type="bool", default=False),
            max_share_per_domain=dict(type="float", default=0.5),
            failure_domain=dict(type="str", choices=list(SPREAD_LEVELS), default="rack"),
            replace=dict(type="list", elements="str", default=[]),
            reserved_cores=dict(type="float", default=2.0),
            reserved_memory_gb=dict(type="float", default=8.0),
            partial_workloads=dict(type="bool", default=True),
            **STORE_ARGUMENT_SPEC,
        ),
        supports_check_mode=True,
    )
    if IMPORT_ERROR is not None:
        module.fail_json(msg=missing_required_lib("netaddr"), exception=str(IMPORT_ERROR))
    params = module.params
    where = params["ledger"] or params["fleet"]
    try:
        fleet = load_fleet(params["fleet"])
        # Servers the recovery job marked failed are released like failed servers of the fleet file.
        recovery = store_for_fleet(fleet, store_overrides(params), ledger=RECOVERY)
        warnings = apply_marks(fleet, check_state(recovery.read(), recovery.description))
        store = store_for_fleet(fleet, store_overrides(params, file=params["ledger"]), ledger=PLACEMENT)
        where = store.description
        candidates, groups = model_from_fleet(fleet, params["intents"])
        workloads = None
        if params["workloads"] is not None:
            workloads = [workload_request(w, i) for i, w in enumerate(params["workloads"])]
        options = PlacementOptions(
            rebalance=params["rebalance"],
            allow_blast_radius=params["allow_blast_radius"],
            max_share_per_domain=params["max_share_per_domain"],
            failure_domain=params["failure_domain"],
            replace=tuple(params["replace"]),
            reserved_cores=params["reserved_cores"],
            reserved_memory_gb=params["reserved_memory_gb"],
            partial_workloads=params["partial_workloads"],
        )
        planner = Planner(candidates, groups, options, workloads)
        before, result = planner.plan(store.read())
    except BaremetalError as exc:
        module.fail_json(msg=str(exc), ledger=where)

    explanations = {"groups": result.groups, "workloads": result.workloads}
    for warning in [*warnings, *result.warnings]:
        module.warn(warning)
    if not result.ok:
        module.fail_json(
            msg="placement refused:\n" + "\n".join(result.failures),
            failures=result.failures,
            explanations=explanations,
            unplaced=result.unplaced,
            drift=result.drift,
            ledger=where,
        )

    changed = result.ledger.to_data() != before.to_data()
    if changed and not module.check_mode:
        try:
            store.update(planner.mutate)
        except BaremetalError as exc:
            module.fail_json(msg=str(exc), ledger=where)
    before_text, after_text = _text(before), _text(result.ledger)
    module.exit_json(
        changed=changed,
        ledger=where,
        plan={
            "groups": result.members,
            "workloads": {name: {k: w[k] for k in ("cluster", "group", "nodes")}
                          for name, w in result.ledger.workloads.items()},
        },
        changes=result.changes,
        explanations=explanations,
        manifests=result.manifests,
        unplaced=result.unplaced,
        drift=result.drift,
        diff={"before": before_text, "after": after_text if changed else before_text,
              "before_header": where, "after_header": where},
    )


if __name__ == "__main__":
    main()
