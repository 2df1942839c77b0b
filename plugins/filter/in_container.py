# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.baremetal.k8s.plugins.module_utils import bootstrap_host
from ansible_collections.baremetal.k8s.plugins.module_utils.errors import BaremetalError

DOCUMENTATION = r"""
name: in_container
short_description: "Whether a host is a container"
version_added: 0.1.0
author:
  - baremetal.k8s maintainers (@baremetal)
description:
  - C(auto) decides from the exit code of C(systemd-detect-virt --container), 0 being a container.
  - C(true) or C(false) wins over what was read.
  - The rule lives in C(plugins/module_utils/bootstrap_host.py) (in_container), which the unit tests drive.
positional: detect_virt_rc
options:
  _input:
    description: The setting, C(auto), C(true) or C(false).
    type: str
    required: true
  detect_virt_rc:
    description: The exit code of C(systemd-detect-virt --container); may be null unless the setting is C(auto).
    type: int
    required: true
"""

EXAMPLES = r"""
- name: Decide whether this host is a container
  ansible.builtin.debug:
    msg: "{{ 'auto' | baremetal.k8s.in_container(0) }}"
    # true
"""

RETURN = r"""
_value:
  description: True in a container.
  type: bool
"""


def in_container(setting, detect_virt_rc):
    try:
        return bootstrap_host.in_container(setting, detect_virt_rc)
    except BaremetalError as exc:
        raise AnsibleFilterError("in_container: %s" % exc) from exc


class FilterModule:
    def filters(self):
        return {"in_container": in_container}
