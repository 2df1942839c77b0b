# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.baremetal.k8s.plugins.module_utils import bootstrap_artifacts
from ansible_collections.baremetal.k8s.plugins.module_utils.errors import BaremetalError

DOCUMENTATION = r"""
name: artifacts_to_fetch
short_description: "The artifacts to fetch again: missing, or installed from another sha256"
version_added: 0.1.0
author:
  - baremetal.k8s maintainers (@baremetal)
description:
  - First the wanted artifacts whose C(dest) is missing, then those present whose C(fingerprint) was not recorded
    as installed. Nothing is hashed on the node.
  - The rule lives in C(plugins/module_utils/bootstrap_artifacts.py) (artifacts_to_fetch), which the unit tests drive.
positional: present_paths, installed
options:
  _input:
    description: The node's artifacts (from P(baremetal.k8s.node_artifacts#filter)).
    type: list
    elements: dict
    required: true
  present_paths:
    description: The artifact paths found on the node.
    type: list
    elements: str
    required: true
  installed:
    description: The fingerprints recorded when the artifacts were installed.
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Choose the artifacts to fetch
  ansible.builtin.set_fact:
    stale: "{{ wanted | baremetal.k8s.artifacts_to_fetch(found.files | map(attribute='path'), installed) }}"
"""

RETURN = r"""
_value:
  description: The artifacts to fetch, missing ones first.
  type: list
  elements: dict
"""


def artifacts_to_fetch(wanted, present_paths, installed):
    try:
        return bootstrap_artifacts.artifacts_to_fetch(wanted, present_paths, installed)
    except BaremetalError as exc:
        raise AnsibleFilterError("artifacts_to_fetch: %s" % exc) from exc


class FilterModule:
    def filters(self):
        return {"artifacts_to_fetch": artifacts_to_fetch}
