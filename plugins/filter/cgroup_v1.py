# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.baremetal.k8s.plugins.module_utils import bootstrap_host
from ansible_collections.baremetal.k8s.plugins.module_utils.errors import BaremetalError

DOCUMENTATION = r"""
name: cgroup_v1
short_description: "Whether a host runs cgroup v1"
version_added: 0.1.0
author:
  - baremetal.k8s maintainers (@baremetal)
description:
  - C(auto) decides from the type of C(/sys/fs/cgroup) (C(stat -fc %T)); anything but C(cgroup2fs) is cgroup v1.
  - C(true) or C(false) wins over what was read.
  - The rule lives in C(plugins/module_utils/bootstrap_host.py) (cgroup_v1), which the unit tests drive.
positional: cgroup_fstype
options:
  _input:
    description: The setting, C(auto), C(true) or C(false).
    type: str
    required: true
  cgroup_fstype:
    description: What C(stat -fc %T /sys/fs/cgroup) printed; may be null unless the setting is C(auto).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Decide cgroup v1
  ansible.builtin.debug:
    msg: "{{ 'auto' | baremetal.k8s.cgroup_v1('tmpfs') }}"
    # true
"""

RETURN = r"""
_value:
  description: True on a cgroup v1 host.
  type: bool
"""


def cgroup_v1(setting, cgroup_fstype):
    try:
        return bootstrap_host.cgroup_v1(setting, cgroup_fstype)
    except BaremetalError as exc:
        raise AnsibleFilterError("cgroup_v1: %s" % exc) from exc


class FilterModule:
    def filters(self):
        return {"cgroup_v1": cgroup_v1}
