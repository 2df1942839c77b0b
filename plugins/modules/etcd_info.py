#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: etcd_info
short_description: Report an etcd cluster's members, their health, and what quorum allows now
version_added: 0.1.0
description:
  - Lists the members of the etcd cluster (kubeadm's stacked etcd by default), asks each member for its
    health (C(/health)) and status (leader, raft index, database size and quota) at its own client URL,
    lists the cluster's alarms, and computes the quorum numbers.
  - Says whether any one voting member may be removed (O(ignore:safe_to_remove_one)) and whether a new
    member may be added (as a voter or as a learner) without losing quorum, with the reason, using the
    same rules as M(baremetal.k8s.etcd_member). See docs/etcd.md.
  - Never changes anything.
author:
  - baremetal.k8s maintainers (@baremetal)
extends_documentation_fragment:
  - baremetal.k8s.etcd_auth
options: {}
attributes:
  check_mode:
    support: full
    description: The module only reads; it runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
"""

EXAMPLES = r"""
- name: Read the stacked etcd of this control plane
  baremetal.k8s.etcd_info:
  register: etcd

- name: Stop before a control-plane join that would cost quorum
  ansible.builtin.assert:
    that: etcd.safe_to_add_learner
    fail_msg: "{{ etcd.add_learner_reason }}"

- name: Ask through every control plane, in case the local member is down
  baremetal.k8s.etcd_info:
    endpoints: "{{ groups['control_plane'] | map('extract', hostvars, 'ansible_host')
                   | map('regex_replace', '^(.*)$', 'https://\\1:2379') | list }}"
    timeout: 3
"""

RETURN = r"""
members:
  description: Every member, with its health and status.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Member id (uint64, as a decimal string).
      type: str
    id_hex:
      description: Member id in hexadecimal, as C(etcdctl member list) prints it.
      type: str
    name:
      description: Member name (kubeadm names it after the node). Empty until the member has started.
      type: str
    peer_urls:
      description: Peer URLs.
      type: list
      elements: str
    client_urls:
      description: Client URLs (empty until the member has started).
      type: list
      elements: str
    is_learner:
      description: Whether the member is a learner (replicates, does not vote).
      type: bool
    started:
      description: Whether the member has started (it has a name).
      type: bool
    healthy:
      description: Whether the member's C(/health) answered true within O(timeout).
      type: bool
    health_error:
      description: Why the member is not healthy (empty when it is).
      type: str
    is_leader:
      description: Whether the member is the raft leader.
      type: bool
    version:
      description: etcd version of the member (null when it did not answer).
      type: str
    raft_index:
      description: The member's raft index (null when it did not answer).
      type: int
    db_size:
      description: The member's database size in bytes (null when it did not answer).
      type: int
    db_size_quota:
      description:
        - The member's backend quota in bytes (C(dbSizeQuota) of its status); past it etcd raises the NOSPACE
          alarm and refuses writes.
        - Null when the member did not answer or its etcd version does not report it (before 3.6); etcd's
          default is 2 GiB unless C(--quota-backend-bytes) says otherwise.
      type: int
    remove_allowed:
      description: Whether removing this member alone would keep quorum.
      type: bool
    remove_reason:
      description: Why, with the numbers.
      type: str
  sample:
    - id: "13508179022056053527"
      id_hex: bb77e09a0cc4e117
      name: cp-1
      peer_urls: [https://10.10.0.11:2380]
      client_urls: [https://10.10.0.11:2379]
      is_learner: false
      started: true
      healthy: true
      health_error: ""
      is_leader: true
      version: 3.6.16
      raft_index: 48213
      db_size: 4100096
      db_size_quota: 2147483648
      remove_allowed: true
      remove_reason: removing healthy member cp-1 leaves 2 voting members, 2 healthy (quorum 2)
leader:
  description: Name of the leader (the first answering member's view); null when there is none.
  returned: always
  type: str
  sample: cp-1
cluster_id:
  description: The cluster id (decimal string).
  returned: always
  type: str
member_count:
  description: Number of members, learners included.
  returned: always
  type: int
voting_members:
  description: Number of voting members.
  returned: always
  type: int
learners:
  description: Number of learners.
  returned: always
  type: int
quorum:
  description: Votes needed to commit (voting members // 2 + 1).
  returned: always
  type: int
  sample: 2
healthy_voters:
  description: Voting members whose C(/health) is true.
  returned: always
  type: int
  sample: 3
has_quorum:
  description: Whether the healthy voting members reach the quorum.
  returned: always
  type: bool
fault_tolerance:
  description: How many more healthy voting members may fail before quorum is lost (0 when lost).
  returned: always
  type: int
safe_to_remove_one:
  description: Whether any one voting member, healthy or not, may be removed without losing quorum.
  returned: always
  type: bool
remove_reason:
  description: Why (the first member whose removal is refused, with the numbers).
  returned: always
  type: str
  sample: "refusing to remove healthy member cp-2: 2 voting members would remain, of which only 1 healthy,
    below the quorum of 2; 2 of 3 voting members are healthy now"
removable:
  description: Names of the members whose removal alone is allowed now.
  returned: always
  type: list
  elements: str
safe_to_add:
  description:
    - Whether a new voting member may be added now; it counts toward the quorum before it has started.
  returned: always
  type: bool
add_reason:
  description: Why, with the numbers.
  returned: always
  type: str
safe_to_add_learner:
  description:
    - Whether a new learner may be added now, as C(kubeadm join --control-plane) does before promoting
      it. True when the cluster has quorum and no other learner is pending.
  returned: always
  type: bool
add_learner_reason:
  description: Why, with the numbers.
  returned: always
  type: str
endpoint:
  description: The endpoint that answered the member list.
  returned: always
  type: str
alarms:
  description:
    - The cluster's active alarms (C(/v3/maintenance/alarm)), empty when there are none. V(NOSPACE) - a member's
      database reached its quota and the cluster refuses writes; V(CORRUPT) - a member's data differs from the others'.
    - Null when etcd did not say (RV(alarms_error) tells why).
  returned: always
  type: list
  elements: dict
  contains:
    member_id:
      description: Id of the member that raised it (decimal string).
      type: str
    member_name:
      description: Its name (empty when it is not in the member list).
      type: str
    alarm:
      description: The alarm.
      type: str
      sample: NOSPACE
alarms_error:
  description: Why RV(alarms) is null (empty when the alarms were read); without quorum they are not asked.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.baremetal.k8s.plugins.module_utils.etcd_client import (
    EtcdError,
    client_from_params,
    cluster_facts,
    module_argument_spec,
)


def main():
    module = AnsibleModule(argument_spec=module_argument_spec(), supports_check_mode=True)
    try:
        facts = cluster_facts(client_from_params(module.params))
    except EtcdError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **facts)


if __name__ == "__main__":
    main()
