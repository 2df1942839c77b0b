# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.baremetal.k8s.plugins.module_utils import bootstrap_kubeadm
from ansible_collections.baremetal.k8s.plugins.module_utils.errors import BaremetalError

DOCUMENTATION = r"""
name: kubeadm_bootstrap_order
short_description: "The control plane that bootstraps a cluster and the ones that join, in order"
version_added: 0.1.0
author:
  - baremetal.k8s maintainers (@baremetal)
description:
  - The first member of the control-plane group (in group order) bootstraps and hands out join tokens; when no
    control plane is a member yet, the first of the group runs C(kubeadm init).
  - The joiners are the control planes of this run that are not members, in group order, without that first one.
  - The rule lives in C(plugins/module_utils/bootstrap_kubeadm.py) (bootstrap_order), which the unit tests drive.
positional: members, play_hosts
options:
  _input:
    description: The cluster's control planes, in inventory (join) order.
    type: list
    elements: str
    required: true
  members:
    description: The control planes that already have C(/etc/kubernetes/kubelet.conf).
    type: list
    elements: str
    required: true
  play_hosts:
    description: The hosts of this run (C(ansible_play_hosts)).
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Choose the control plane that bootstraps
  ansible.builtin.set_fact:
    plan: "{{ ['cp-1', 'cp-2', 'cp-3'] | baremetal.k8s.kubeadm_bootstrap_order(['cp-2'], ansible_play_hosts) }}"
    # cp-2 a member, all three in the play: {first: cp-2, joiners: [cp-1, cp-3]}
"""

RETURN = r"""
_value:
  description: C(first), the bootstrapping control plane, and C(joiners), the control planes to join in order.
  type: dict
"""


def kubeadm_bootstrap_order(control_planes, members, play_hosts):
    try:
        return bootstrap_kubeadm.bootstrap_order(control_planes, members, play_hosts)
    except BaremetalError as exc:
        raise AnsibleFilterError("kubeadm_bootstrap_order: %s" % exc) from exc


class FilterModule:
    def filters(self):
        return {"kubeadm_bootstrap_order": kubeadm_bootstrap_order}
