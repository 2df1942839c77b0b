# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The API load balancers' backends and VRRP priorities. Pure, no I/O.

The role api_lb calls these through the filter plugins of the same names
(plugins/filter/).
"""

from __future__ import annotations

from ansible_collections.baremetal.k8s.plugins.module_utils.errors import BaremetalError

TOP_PRIORITY = 150
PRIORITY_STEP = 10


class LoadBalancerError(BaremetalError, ValueError):
    """An input the load balancer decisions cannot use."""


def lb_backends(control_planes, hostvars):
    """``[{name, address}]``: each control plane at its private address (fleet hostvar ``fleet_addresses``)."""
    backends = {}
    for name in control_planes:
        backends[name] = hostvars[name]["fleet_addresses"]["private"]
    return [{"name": name, "address": address} for name, address in backends.items()]


def vrrp_priority(peers, host):
    """keepalived priority of ``host``: 150 for the first of ``peers``, 140 for the second, ..."""
    peers = list(peers)
    if host not in peers:
        raise LoadBalancerError("%s is not one of the load balancers %s" % (host, ", ".join(peers) or "(none)"),
                                "add it to api_lb_peers")
    return TOP_PRIORITY - PRIORITY_STEP * peers.index(host)
