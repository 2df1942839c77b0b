#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: etcd_member
short_description: Remove an etcd member, only when the cluster keeps its quorum
version_added: 0.1.0
description:
  - Ensures the etcd member named O(name) (kubeadm names a stacked etcd member after its node), or
    with the peer URL O(peer_url), is not in the cluster.
  - Before removing, asks every member for its health and refuses (fails, changing nothing) when the
    removal would leave fewer healthy voting members than the quorum of the smaller cluster, when the
    cluster has already lost quorum, or when the member is the last one. The message gives the
    numbers. With 3 members of which 1 is down, the down member may be removed, a healthy one may not.
    See docs/etcd.md for the rules.
  - A member that is not in the cluster is left alone (C(changed=false)).
  - Removing the member before C(kubeadm reset) on a control plane keeps the membership consistent
    (C(kubeadm reset) removes the member without any quorum check, and not at all when the node's
    etcd is already dead).
  - Only O(state=absent) exists. Members join through C(kubeadm join --control-plane), which adds the
    member as a learner and promotes it; check M(baremetal.k8s.etcd_info)'s C(safe_to_add_learner)
    first.
author:
  - baremetal.k8s maintainers (@baremetal)
extends_documentation_fragment:
  - baremetal.k8s.etcd_auth
options:
  name:
    description:
      - Name of the member (for kubeadm's stacked etcd, the node name).
      - Exactly one of O(name) and O(peer_url) is required.
    type: str
  peer_url:
    description:
      - A peer URL of the member, for example C(https://10.10.0.12:2380). Use it for a member that was
        added but never started (it has no name yet) or when two members share a name.
    type: str
  state:
    description: V(absent) removes the member. Joining is kubeadm's job.
    type: str
    choices: [absent]
    default: absent
attributes:
  check_mode:
    support: full
    description: Checks and reports what would be removed; removes nothing.
  diff_mode:
    support: full
    description: Shows the member list before and after.
"""

EXAMPLES = r"""
- name: Take this control plane's member out of etcd before kubeadm reset (refused if quorum would be lost)
  baremetal.k8s.etcd_member:
    name: "{{ inventory_hostname }}"
    state: absent
  delegate_to: "{{ groups['control_plane'] | difference([inventory_hostname]) | first }}"

- name: Remove a member that was added but never started
  baremetal.k8s.etcd_member:
    peer_url: https://10.10.0.14:2380
    endpoints:
      - https://10.10.0.11:2379
      - https://10.10.0.12:2379

- name: Would the removal be allowed?
  baremetal.k8s.etcd_member:
    name: cp-2
  check_mode: true
  register: plan
"""

RETURN = r"""
member:
  description: The member matched (before its removal); null when it was not in the cluster.
  returned: always
  type: dict
  sample:
    id: "16239705936274065296"
    id_hex: e15e2df1f6e8a690
    name: cp-2
    peer_urls: [https://10.10.0.12:2380]
    client_urls: [https://10.10.0.12:2379]
    is_learner: false
    started: true
removed:
  description: Whether the member was removed (false in check mode).
  returned: always
  type: bool
decision:
  description: What the quorum rules said, with the numbers.
  returned: always
  type: dict
  contains:
    allowed:
      description: Whether the removal is allowed.
      type: bool
    needed:
      description: Whether the member is in the cluster at all.
      type: bool
    reason:
      description: Why, in words.
      type: str
    voters:
      description: Voting members now.
      type: int
    healthy_voters:
      description: Healthy voting members now.
      type: int
    voters_after:
      description: Voting members after the removal.
      type: int
    healthy_voters_after:
      description: Healthy voting members after the removal.
      type: int
    quorum_after:
      description: Quorum of the cluster after the removal.
      type: int
  sample:
    allowed: false
    needed: true
    reason: "refusing to remove healthy member cp-2: 2 voting members would remain, of which only 1 healthy,
      below the quorum of 2; 2 of 3 voting members are healthy now"
    voters: 3
    healthy_voters: 2
    voters_after: 2
    healthy_voters_after: 1
    quorum_after: 2
health:
  description: Health of each member (by name, or peer URL before it has started) when it was asked.
  returned: when the member is in the cluster
  type: dict
  sample: {cp-1: true, cp-2: true, cp-3: false}
members:
  description: Names (or peer URLs) of the members after the task (as they would be in check mode).
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.baremetal.k8s.plugins.module_utils.etcd_client import (
    GRPC_NOT_FOUND,
    EtcdError,
    client_from_params,
    member_facts,
    module_argument_spec,
)
from ansible_collections.baremetal.k8s.plugins.module_utils.etcd_quorum import check_remove, find_member


def argument_spec():
    spec = module_argument_spec()
    spec.update(
        name=dict(type="str"),
        peer_url=dict(type="str"),
        state=dict(type="str", choices=["absent"], default="absent"),
    )
    return spec


def labels(members):
    return [m.label for m in members]


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True,
                           required_one_of=[("name", "peer_url")], mutually_exclusive=[("name", "peer_url")])
    p = module.params
    wanted = p["name"] if p["name"] is not None else p["peer_url"]
    if not wanted.strip():
        module.fail_json(msg="name (or peer_url) is empty: give the member's name (the node name with kubeadm)")
    try:
        client = client_from_params(p)
        members = client.member_list()
        try:
            target = find_member(members, name=p["name"], peer_url=p["peer_url"])
        except ValueError as exc:
            module.fail_json(msg=str(exc), members=labels(members))
        health = client.probe(members) if target else {}
        decision = check_remove(members, {k: v.healthy for k, v in health.items()}, target)
    except EtcdError as exc:
        module.fail_json(msg=str(exc))

    result = dict(
        changed=False,
        removed=False,
        member=member_facts(target) if target else None,
        decision=decision.as_dict(),
        members=labels(members),
    )
    if target:
        result["health"] = {m.label: health[m.id].healthy for m in members}
    if not decision.needed:
        module.exit_json(**result)
    if not decision.allowed:
        # Nothing was changed; the reason names the numbers.
        module.fail_json(msg=decision.reason, **result)

    after = [m for m in members if m.id != target.id]
    changed = True
    if not module.check_mode:
        try:
            after = client.member_remove(target.id)
            result["removed"] = True
        except EtcdError as exc:
            if exc.code != GRPC_NOT_FOUND:
                module.fail_json(msg="removing %s: %s" % (target.label, exc), **result)
            # Removed meanwhile (by kubeadm reset, say): the goal is met, by someone else.
            after, changed = client.member_list(), False
    result.update(
        changed=changed,
        members=labels(after),
        diff={"before": {"members": labels(members)}, "after": {"members": labels(after)},
              "before_header": "etcd members", "after_header": "etcd members"},
    )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
