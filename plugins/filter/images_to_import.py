# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.baremetal.k8s.plugins.module_utils import bootstrap_artifacts
from ansible_collections.baremetal.k8s.plugins.module_utils.errors import BaremetalError

DOCUMENTATION = r"""
name: images_to_import
short_description: "The image archives to import into containerd"
version_added: 0.1.0
author:
  - baremetal.k8s maintainers (@baremetal)
description:
  - The node's image archives whose image containerd does not have, or whose archive was just fetched.
  - The rule lives in C(plugins/module_utils/bootstrap_artifacts.py) (images_to_import), which the unit tests drive.
positional: containerd_images, fetched
options:
  _input:
    description: The node's artifacts (from P(baremetal.k8s.node_artifacts#filter)).
    type: list
    elements: dict
    required: true
  containerd_images:
    description: The images containerd has (C(ctr -n k8s.io images ls -q)).
    type: list
    elements: str
    required: true
  fetched:
    description: The artifacts fetched in this run (from P(baremetal.k8s.artifacts_to_fetch#filter)).
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Import the images
  ansible.builtin.command: ctr -n k8s.io images import {{ item.dest }}
  loop: "{{ wanted | baremetal.k8s.images_to_import(images.stdout_lines, stale) }}"
  changed_when: true
"""

RETURN = r"""
_value:
  description: The image artifacts to import.
  type: list
  elements: dict
"""


def images_to_import(wanted, containerd_images, fetched):
    try:
        return bootstrap_artifacts.images_to_import(wanted, containerd_images, fetched)
    except BaremetalError as exc:
        raise AnsibleFilterError("images_to_import: %s" % exc) from exc


class FilterModule:
    def filters(self):
        return {"images_to_import": images_to_import}
