# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The roles' decisions as Jinja filters: thin shells over the pure functions of module_utils/bootstrap_*.py.

Each filter is documented in its own file beside this one (plugins/filter/<filter>.yml), as ansible-core
documents the filters of a multi-filter plugin. A decision's BaremetalError becomes an AnsibleFilterError
that names the filter (plugin_utils/filters.py).
"""

from __future__ import annotations

from ansible_collections.baremetal.k8s.plugins.module_utils import (
    bootstrap_artifacts,
    bootstrap_host,
    bootstrap_kubeadm,
    bootstrap_lb,
)
from ansible_collections.baremetal.k8s.plugins.plugin_utils.filters import filters_of

# filter name -> the pure function it exposes
DECISIONS = {
    "kubeadm_bootstrap_order": bootstrap_kubeadm.bootstrap_order,
    "kubeadm_reset_peer": bootstrap_kubeadm.reset_peer,
    "kubeadm_join_credentials": bootstrap_kubeadm.join_credentials,
    "cgroup_v1": bootstrap_host.cgroup_v1,
    "in_container": bootstrap_host.in_container,
    "kubelet_resolv_conf": bootstrap_host.kubelet_resolv_conf,
    "node_artifacts": bootstrap_artifacts.node_artifacts,
    "artifacts_to_fetch": bootstrap_artifacts.artifacts_to_fetch,
    "images_to_import": bootstrap_artifacts.images_to_import,
    "lb_backends": bootstrap_lb.lb_backends,
    "vrrp_priority": bootstrap_lb.vrrp_priority,
}


class FilterModule:
    def filters(self):
        return filters_of(DECISIONS)
