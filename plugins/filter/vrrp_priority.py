# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.baremetal.k8s.plugins.module_utils import bootstrap_lb
from ansible_collections.baremetal.k8s.plugins.module_utils.errors import BaremetalError

DOCUMENTATION = r"""
name: vrrp_priority
short_description: "keepalived priority of a load balancer: 150 for the first peer, 140 for the second, ..."
version_added: 0.1.0
author:
  - baremetal.k8s maintainers (@baremetal)
description:
  - The first of the load balancers is the preferred VRRP master.
  - The rule lives in C(plugins/module_utils/bootstrap_lb.py) (vrrp_priority), which the unit tests drive.
positional: host
options:
  _input:
    description: The load balancers sharing the VIP, in priority order.
    type: list
    elements: str
    required: true
  host:
    description: The load balancer whose priority is wanted; one of the peers.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Priority of lb-2
  ansible.builtin.debug:
    msg: "{{ ['lb-1', 'lb-2'] | baremetal.k8s.vrrp_priority('lb-2') }}"
    # 140
"""

RETURN = r"""
_value:
  description: The VRRP priority.
  type: int
"""


def vrrp_priority(peers, host):
    try:
        return bootstrap_lb.vrrp_priority(peers, host)
    except BaremetalError as exc:
        raise AnsibleFilterError("vrrp_priority: %s" % exc) from exc


class FilterModule:
    def filters(self):
        return {"vrrp_priority": vrrp_priority}
