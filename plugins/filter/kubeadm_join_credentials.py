# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.baremetal.k8s.plugins.module_utils import bootstrap_kubeadm
from ansible_collections.baremetal.k8s.plugins.module_utils.errors import BaremetalError

DOCUMENTATION = r"""
name: kubeadm_join_credentials
short_description: "Token, CA certificate hash and certificate key from kubeadm's output"
version_added: 0.1.0
author:
  - baremetal.k8s maintainers (@baremetal)
description:
  - Reads the output of C(kubeadm token create --print-join-command) and, for a control-plane join, of C(kubeadm
    init phase upload-certs --upload-certs) (its last 64-hex-digit word is the certificate key).
  - Fails naming the command when its output does not hold them.
  - The rule lives in C(plugins/module_utils/bootstrap_kubeadm.py) (join_credentials), which the unit tests drive.
positional: upload_certs_output
options:
  _input:
    description: What C(kubeadm token create --print-join-command) printed.
    type: str
    required: true
  upload_certs_output:
    description: What C(kubeadm init phase upload-certs --upload-certs) printed; empty for a worker join.
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: Read the join credentials
  ansible.builtin.set_fact:
    credentials: "{{ join_command.stdout | baremetal.k8s.kubeadm_join_credentials(upload_certs.stdout) }}"
  no_log: true
"""

RETURN = r"""
_value:
  description: C(token), C(ca_cert_hash) and C(certificate_key) (an empty string without O(upload_certs_output)).
  type: dict
"""


def kubeadm_join_credentials(join_command, upload_certs_output=""):
    try:
        return bootstrap_kubeadm.join_credentials(join_command, upload_certs_output)
    except BaremetalError as exc:
        raise AnsibleFilterError("kubeadm_join_credentials: %s" % exc) from exc


class FilterModule:
    def filters(self):
        return {"kubeadm_join_credentials": kubeadm_join_credentials}
