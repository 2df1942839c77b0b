#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: node_health
short_description: Health of a cluster's fleet members as Kubernetes nodes, with the likely cause
version_added: 0.1.0
description:
  - For every fleet member of a cluster given in O(members), reads its Node object and the kubelet's
    heartbeat Lease in C(kube-node-lease) and reports whether it is healthy, the one category that
    explains it best, short reasons (usable as the remediation policy's C(NodeRecord.reasons)) and
    since when it is unhealthy.
  - Observed per node - the Ready condition (status, reason, C(lastTransitionTime)), the heartbeat
    age (now minus the Lease's C(spec.renewTime)), the C(MemoryPressure), C(DiskPressure),
    C(PIDPressure) and C(NetworkUnavailable) conditions, the cordon (C(spec.unschedulable)) and who
    cordoned it (annotations C(baremetal.k8s/cordoned-by) and C(baremetal.k8s/cordon-reason), else
    V(unknown)) and the kubelet version.
  - A member with no Node object (matched by name, or by an InternalIP equal to its address) is not
    registered; it is unhealthy once it has been expected for longer than O(node_startup_timeout)
    (Cluster API's C(nodeStartupTimeout)), and V(starting) before.
  - Host probes gathered by the playbook (reachable, containerd and kubelet active, WireGuard
    handshakes) tell a dead kubelet on a live host (V(kubelet_down)) from a host or network that is
    gone (V(host_unreachable)), and a heartbeat that stopped before Ready flipped (V(heartbeat_stale)).
  - Read-only; check mode runs the same reads.
  - See docs/node-health.md for the categories, their order and the mapping to the remediation policy.
author:
  - baremetal.k8s maintainers (@baremetal)
extends_documentation_fragment:
  - baremetal.k8s.k8s_auth
options:
  members:
    description:
      - The cluster's fleet members (Kubernetes nodes; leave load balancers out), each a mapping with
      - C(name) (required) - the member's name, as its Node is named (its inventory_hostname).
      - C(address) - its private address; a Node registered under another name is matched by an
        InternalIP equal to it.
      - C(roles) - some of V(control_plane), V(etcd), V(worker), copied to the result.
      - C(expected_since) - when it was first expected to register (epoch seconds or ISO 8601); without
        it a member with no Node is taken as past O(node_startup_timeout).
      - C(probes) - what the controller found on the host, a mapping with C(reachable) (bool),
        C(containerd_active) and C(kubelet_active) (bool, or the output of C(systemctl is-active), such
        as V(active), V(inactive), V(failed) or V(activating)) and C(wireguard_handshakes) (peer name to
        latest handshake time in epoch seconds as C(wg show <interface> latest-handshakes) prints them,
        V(0) for never). Leave out what was not probed.
    type: list
    elements: dict
    required: true
  node_startup_timeout:
    description:
      - Seconds a member may be expected without a Node object before it is unhealthy.
    type: int
    default: 600
  heartbeat_timeout:
    description:
      - Seconds since the kubelet last renewed its Lease before the heartbeat is stale.
      - Default is the Lease's own C(leaseDurationSeconds) (40 by default).
    type: int
  wireguard_handshake_timeout:
    description:
      - Seconds since a peer's latest WireGuard handshake before it is stale. A node is V(wireguard_stale)
        when the handshakes with all its peers are stale; some stale peers are a note.
      - V(0) reports the handshakes without judging them.
    type: int
    default: 300
  now:
    description:
      - The time to judge at (epoch seconds or ISO 8601). Default is the current time.
    type: raw
  timeout:
    description: Seconds each API request may take.
    type: int
    default: 10
attributes:
  check_mode:
    support: full
    description: The module only reads; check mode does the same.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to show.
"""

EXAMPLES = r"""
# In a play over the cluster's hosts: probe each host from the controller (an unreachable host is
# recorded, not fatal), then judge every member once.
- name: Is containerd, is the kubelet running?
  ansible.builtin.command: systemctl is-active containerd kubelet
  register: units
  changed_when: false
  failed_when: false
  ignore_unreachable: true

- name: The members, with what the probes found
  ansible.builtin.set_fact:
    health_members: "{{ health_members | default([]) + [member] }}"
  loop: "{{ groups[k8s_cluster.groups.cluster] | difference(groups[k8s_cluster.groups.load_balancer]) }}"
  vars:
    units: "{{ hostvars[item].units | default({}) }}"
    member:
      name: "{{ item }}"
      address: "{{ hostvars[item].fleet_addresses.private }}"
      roles: "{{ hostvars[item].fleet_roles | difference(['load_balancer']) }}"
      probes:
        reachable: "{{ not (units.unreachable | default(false)) }}"
        containerd_active: "{{ (units.stdout_lines | default([]))[0] | default(none) }}"
        kubelet_active: "{{ (units.stdout_lines | default([]))[1] | default(none) }}"
  run_once: true

- name: Health of the cluster's nodes
  baremetal.k8s.node_health:
    kubeconfig: /etc/baremetal-k8s/ams1-prod.kubeconfig
    node_startup_timeout: 900
    members: "{{ health_members }}"
  run_once: true
  delegate_to: localhost
  register: health

- name: Members given by hand, with WireGuard handshakes and a member still being provisioned
  baremetal.k8s.node_health:
    members:
      - name: ams1-a01-s01
        address: 10.10.1.11
        roles: [control_plane, etcd]
        probes:
          reachable: true
          containerd_active: active
          kubelet_active: failed
          wireguard_handshakes: {ams1-a01-s02: 1767225600, ams1-a02-s01: 1767225590}
      - name: ams1-a02-s05
        roles: [worker]
        expected_since: "2026-01-01T00:00:00Z"
        probes: {reachable: false}
  delegate_to: localhost
  register: health

- name: Stop when a node is unhealthy
  ansible.builtin.assert:
    that: health.counts.unhealthy == 0
    fail_msg: "{{ health.nodes | rejectattr('healthy') | map(attribute='summary') | list }}"
"""

RETURN = r"""
nodes:
  description: One verdict per member, in the order of O(members).
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: The member's name.
      type: str
    roles:
      description: The member's roles as given.
      type: list
      elements: str
    healthy:
      description: Whether no problem was found (true exactly when RV(nodes[].reasons) is empty).
      type: bool
    category:
      description:
        - The one symptom that explains the node best, in this order - V(host_unreachable),
          V(kubelet_down), V(containerd_down), V(not_registered), V(starting), V(not_ready),
          V(heartbeat_stale), V(network_unavailable), V(wireguard_stale), V(pressure),
          V(controller_unreachable); healthy nodes are V(cordoned) or V(healthy).
      type: str
    summary:
      description: One sentence for the category.
      type: str
      sample: "NotReady: the host is up, the kubelet is not running"
    reasons:
      description: Short tokens, one per problem found, for the remediation policy's C(NodeRecord.reasons).
      type: list
      elements: str
      sample: [KubeletNotReady, HeartbeatStale, KubeletInactive]
    details:
      description: One sentence per reason, with the numbers.
      type: list
      elements: str
    notes:
      description:
        - Observations that are not problems (cordoned by whom, matched by address, some stale WireGuard peers).
      type: list
      elements: str
    unhealthy_since:
      description:
        - Best known time the node became unhealthy (ISO 8601) - the earliest of the Ready condition's
          C(lastTransitionTime) when not Ready, the moment the heartbeat went stale, a pressure or network
          condition's C(lastTransitionTime), and for a member with no Node its C(expected_since) plus
          O(node_startup_timeout). Null when healthy or not known.
      type: str
      sample: "2026-01-31T12:00:00Z"
    unhealthy_for:
      description: Seconds from RV(nodes[].unhealthy_since) until O(now) (null when that is null).
      type: float
    record:
      description:
        - The C(remediation.NodeRecord) fields health decides - C(name), C(roles), C(ready), C(unhealthy_since),
          C(reasons); add C(cluster), C(failure_domain), C(state), C(protected) and C(in_flight) from the fleet.
      type: dict
    registered:
      description: Whether a Node object matches the member.
      type: bool
    node_name:
      description: The matching Node's name (null when not registered).
      type: str
    address:
      description: The member's address as given.
      type: str
    expected_since:
      description: The member's C(expected_since) (ISO 8601), when given.
      type: str
    expected_for:
      description: Seconds since C(expected_since) for a member with no Node.
      type: float
    ready:
      description: The Ready condition - true, false, or null (Unknown, missing, not registered).
      type: bool
    ready_status:
      description: The Ready condition's status as the API has it (V(True), V(False), V(Unknown)).
      type: str
    ready_reason:
      description: The Ready condition's reason; V(NoReadyCondition) or V(NotRegistered) when there is none.
      type: str
      sample: KubeletNotReady
    ready_message:
      description: The Ready condition's message.
      type: str
    ready_since:
      description: The Ready condition's C(lastTransitionTime) (ISO 8601).
      type: str
    heartbeat:
      description:
        - The kubelet's heartbeat from its Lease - C(renew_time), C(age) (seconds), C(timeout) (seconds),
          C(stale), C(lease_duration_seconds) and C(problem) (no Lease, never renewed). Null when not registered.
      type: dict
      sample: {renew_time: "2026-01-31T12:00:00Z", age: 4.2, timeout: 40, stale: false, lease_duration_seconds: 40}
    conditions:
      description: The Ready, pressure and NetworkUnavailable conditions by type (status, reason, message, since).
      type: dict
    pressure:
      description: The pressure conditions that are True.
      type: list
      elements: str
    network_unavailable:
      description: Whether the NetworkUnavailable condition is True.
      type: bool
    cordoned:
      description: The Node's C(spec.unschedulable).
      type: bool
    cordoned_by:
      description:
        - The annotation C(baremetal.k8s/cordoned-by) of a cordoned Node, V(unknown) without it.
        - Null when not cordoned.
      type: str
    cordon_reason:
      description: The annotation C(baremetal.k8s/cordon-reason) of a cordoned Node.
      type: str
    kubelet_version:
      description: The kubelet's version from the Node's status.
      type: str
      sample: v1.36.3
    pod_cidr:
      description: The Node's C(spec.podCIDR) (null when not registered or not set).
      type: str
      sample: 10.244.3.0/24
    taints:
      description: The Node's taints (key, value, effect).
      type: list
      elements: dict
    probes:
      description:
        - The host probes as understood - C(given), C(reachable), C(containerd_active), C(kubelet_active),
          C(containerd_state), C(kubelet_state) (the systemctl word when one was given) and C(wireguard), a list
          of C(peer), C(latest_handshake), C(age) and C(stale).
      type: dict
unhealthy:
  description: Names of the unhealthy members.
  returned: success
  type: list
  elements: str
counts:
  description: C(total), C(healthy), C(unhealthy), C(registered) and C(by_category) (only categories that occur).
  returned: success
  type: dict
  sample: {total: 5, healthy: 4, unhealthy: 1, registered: 5, by_category: {healthy: 4, kubelet_down: 1}}
extra_nodes:
  description: Nodes of the cluster that match no member (not in the fleet, or registered under an unknown name).
  returned: success
  type: list
  elements: str
now:
  description: The time the nodes were judged at (ISO 8601).
  returned: success
  type: str
options:
  description: The thresholds used.
  returned: success
  type: dict
"""

import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.baremetal.k8s.plugins.module_utils.errors import BaremetalError
from ansible_collections.baremetal.k8s.plugins.module_utils.k8s_client import (
    HAS_KUBERNETES,
    KUBERNETES_IMPORT_ERROR,
    client_from_params,
    module_argument_spec,
)
from ansible_collections.baremetal.k8s.plugins.module_utils.node_health import (
    DEFAULT_NODE_STARTUP_TIMEOUT,
    DEFAULT_WIREGUARD_HANDSHAKE_TIMEOUT,
    HealthOptions,
    assess,
    members_from_list,
    read_cluster,
    timestamp,
)


def argument_spec():
    spec = module_argument_spec()
    spec.update(
        members=dict(type="list", elements="dict", required=True),
        node_startup_timeout=dict(type="int", default=DEFAULT_NODE_STARTUP_TIMEOUT),
        heartbeat_timeout=dict(type="int"),
        wireguard_handshake_timeout=dict(type="int", default=DEFAULT_WIREGUARD_HANDSHAKE_TIMEOUT),
        now=dict(type="raw"),
        timeout=dict(type="int", default=10),
    )
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    if not HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=str(KUBERNETES_IMPORT_ERROR))
    p = module.params
    if p["timeout"] < 1:
        module.fail_json(msg="timeout: %d is below 1. Fix: give the seconds each API request may take, e.g. 10"
                         % p["timeout"])
    try:
        # Bad input fails before the API server is asked anything.
        options = HealthOptions(node_startup_timeout=p["node_startup_timeout"],
                                heartbeat_timeout=p["heartbeat_timeout"],
                                wireguard_handshake_timeout=p["wireguard_handshake_timeout"])
        members = members_from_list(p["members"])
        now = time.time() if p["now"] in (None, "") else timestamp(p["now"], "now", allow_none=False)
        api = client_from_params(p, pool_size=4)
        try:
            nodes, leases = read_cluster(api, timeout=p["timeout"])
        finally:
            api.close()
        report = assess(members, nodes, leases, now=now, options=options)
    except BaremetalError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **report.as_dict())


if __name__ == "__main__":
    main()
