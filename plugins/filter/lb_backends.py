# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.baremetal.k8s.plugins.module_utils import bootstrap_lb
from ansible_collections.baremetal.k8s.plugins.module_utils.errors import BaremetalError

DOCUMENTATION = r"""
name: lb_backends
short_description: "The API load balancer's backends: each control plane at its private address"
version_added: 0.1.0
author:
  - baremetal.k8s maintainers (@baremetal)
description:
  - One C(name), C(address) pair per control plane, the address being its fleet hostvar
    C(fleet_addresses.private), in group order.
  - The rule lives in C(plugins/module_utils/bootstrap_lb.py) (lb_backends), which the unit tests drive.
positional: hostvars
options:
  _input:
    description: The cluster's control planes.
    type: list
    elements: str
    required: true
  hostvars:
    description: The hosts' variables (C(hostvars)).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: List the backends
  ansible.builtin.debug:
    msg: "{{ groups['cluster_c1_control_plane'] | baremetal.k8s.lb_backends(hostvars) }}"
"""

RETURN = r"""
_value:
  description: The backends, C(name) and C(address) each.
  type: list
  elements: dict
"""


def lb_backends(control_planes, hostvars):
    try:
        return bootstrap_lb.lb_backends(control_planes, hostvars)
    except BaremetalError as exc:
        raise AnsibleFilterError("lb_backends: %s" % exc) from exc


class FilterModule:
    def filters(self):
        return {"lb_backends": lb_backends}
