# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The load balancers' backends and VRRP priorities."""

from __future__ import annotations

import pytest
from ansible_collections.baremetal.k8s.plugins.module_utils import bootstrap_lb as bl

HOSTVARS = {
    "cp-1": {"fleet_addresses": {"private": "10.0.0.11"}},
    "cp-2": {"fleet_addresses": {"private": "10.0.0.12"}},
}


def test_each_control_plane_is_a_backend_at_its_private_address_in_group_order():
    assert bl.lb_backends(["cp-2", "cp-1"], HOSTVARS) == [{"name": "cp-2", "address": "10.0.0.12"},
                                                          {"name": "cp-1", "address": "10.0.0.11"}]
    assert bl.lb_backends([], HOSTVARS) == []


def test_the_first_load_balancer_has_the_highest_priority():
    assert [bl.vrrp_priority(["lb-1", "lb-2", "lb-3"], h) for h in ("lb-1", "lb-2", "lb-3")] == [150, 140, 130]


def test_a_host_that_is_not_a_peer_is_an_error_naming_the_fix():
    with pytest.raises(bl.LoadBalancerError, match="api_lb_peers"):
        bl.vrrp_priority(["lb-1"], "lb-2")
