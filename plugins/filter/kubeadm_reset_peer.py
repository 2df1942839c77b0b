# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.baremetal.k8s.plugins.module_utils import bootstrap_kubeadm
from ansible_collections.baremetal.k8s.plugins.module_utils.errors import BaremetalError

DOCUMENTATION = r"""
name: kubeadm_reset_peer
short_description: "The control plane that does the API and etcd work of resetting a node"
version_added: 0.1.0
author:
  - baremetal.k8s maintainers (@baremetal)
description:
  - The first control plane of the group other than the node itself; an empty string when there is none.
  - The rule lives in C(plugins/module_utils/bootstrap_kubeadm.py) (reset_peer), which the unit tests drive.
positional: host
options:
  _input:
    description: The cluster's control planes, in inventory order.
    type: list
    elements: str
    required: true
  host:
    description: The node being reset.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Choose the control plane that resets cp-1
  ansible.builtin.debug:
    msg: "{{ ['cp-1', 'cp-2'] | baremetal.k8s.kubeadm_reset_peer('cp-1') }}"
    # cp-2
"""

RETURN = r"""
_value:
  description: The peer's inventory name, or an empty string.
  type: str
"""


def kubeadm_reset_peer(control_planes, host):
    try:
        return bootstrap_kubeadm.reset_peer(control_planes, host)
    except BaremetalError as exc:
        raise AnsibleFilterError("kubeadm_reset_peer: %s" % exc) from exc


class FilterModule:
    def filters(self):
        return {"kubeadm_reset_peer": kubeadm_reset_peer}
