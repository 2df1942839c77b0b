# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.baremetal.k8s.plugins.module_utils import bootstrap_host
from ansible_collections.baremetal.k8s.plugins.module_utils.errors import BaremetalError

DOCUMENTATION = r"""
name: kubelet_resolv_conf
short_description: "The resolv.conf the kubelet gives pods, and the nameservers it holds"
version_added: 0.1.0
author:
  - baremetal.k8s maintainers (@baremetal)
description:
  - When every nameserver of the host is a loopback address other than systemd-resolved's stub C(127.0.0.53)
    (Docker's embedded DNS), a pod would ask itself and CoreDNS stops with C(Loop detected); the kubelet then gets
    C(/etc/kubernetes/resolv.conf) with the default gateway as nameserver.
  - Given upstream nameservers always get that file, holding them.
  - Otherwise the path is empty and the host's resolv.conf is used as it is.
  - The rule lives in C(plugins/module_utils/bootstrap_host.py) (kubelet_resolv_conf), which the unit tests drive.
positional: upstream_dns, default_route
options:
  _input:
    description: The host's nameservers, in order (from C(/etc/resolv.conf)).
    type: list
    elements: str
    required: true
  upstream_dns:
    description: Upstream nameservers for pods; empty to decide from the host.
    type: list
    elements: str
    required: true
  default_route:
    description: What C(ip -4 -o route show default) printed (its C(via) address is the gateway).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Decide the kubelet's resolv.conf
  ansible.builtin.debug:
    msg: "{{ ['127.0.0.11'] | baremetal.k8s.kubelet_resolv_conf([], 'default via 172.30.0.1 dev eth0') }}"
    # {path: /etc/kubernetes/resolv.conf, nameservers: [172.30.0.1]}
"""

RETURN = r"""
_value:
  description: C(path), the kubelet's resolv.conf or an empty string, and C(nameservers), what that file holds.
  type: dict
"""


def kubelet_resolv_conf(nameservers, upstream_dns, default_route):
    try:
        return bootstrap_host.kubelet_resolv_conf(nameservers, upstream_dns, default_route)
    except BaremetalError as exc:
        raise AnsibleFilterError("kubelet_resolv_conf: %s" % exc) from exc


class FilterModule:
    def filters(self):
        return {"kubelet_resolv_conf": kubelet_resolv_conf}
