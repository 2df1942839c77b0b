# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.baremetal.k8s.plugins.module_utils import bootstrap_artifacts
from ansible_collections.baremetal.k8s.plugins.module_utils.errors import BaremetalError

DOCUMENTATION = r"""
name: node_artifacts
short_description: "The air-gap artifacts one node gets"
version_added: 0.1.0
author:
  - baremetal.k8s maintainers (@baremetal)
description:
  - A control plane gets the artifacts of the manifest marked for C(control_plane), any other node those marked
    for C(worker), sorted by name.
  - Each gets C(fingerprint) (C(<sha256>  <path>), what the node records as installed), C(dest) (its path on the
    node, in the directory of its kind) and C(mode).
  - The rule lives in C(plugins/module_utils/bootstrap_artifacts.py) (node_artifacts), which the unit tests drive.
positional: fleet_roles, dest_dirs
options:
  _input:
    description: The manifest's artifacts (the C(artifacts) values of M(baremetal.k8s.k8s_artifacts)).
    type: list
    elements: dict
    required: true
  fleet_roles:
    description: The node's fleet roles (hostvar C(fleet_roles)).
    type: list
    elements: str
    required: true
  dest_dirs:
    description: Directory on the node per artifact kind (C(binary), C(cni), C(image)).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Choose the artifacts of this node
  ansible.builtin.set_fact:
    wanted: "{{ manifest.artifacts.values() | baremetal.k8s.node_artifacts(fleet_roles, dest_dirs) }}"
  vars:
    dest_dirs: {binary: /usr/local/bin, cni: /opt/cni/bin, image: /var/lib/baremetal-k8s/images}
"""

RETURN = r"""
_value:
  description: The artifacts, each with C(fingerprint), C(dest) and C(mode) added.
  type: list
  elements: dict
"""


def node_artifacts(artifacts, fleet_roles, dest_dirs):
    try:
        return bootstrap_artifacts.node_artifacts(artifacts, fleet_roles, dest_dirs)
    except BaremetalError as exc:
        raise AnsibleFilterError("node_artifacts: %s" % exc) from exc


class FilterModule:
    def filters(self):
        return {"node_artifacts": node_artifacts}
