# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bad input to the placement engine: each is a PlacementError naming the option, the value and the fix."""

from __future__ import annotations

import dataclasses
import random

import pytest
from ansible_collections.baremetal.k8s.plugins.module_utils.errors import BaremetalError
from ansible_collections.baremetal.k8s.plugins.module_utils.fleet import hop_distance
from ansible_collections.baremetal.k8s.plugins.module_utils.placement import (
    Candidate,
    GroupRequest,
    Ledger,
    Location,
    PlacementError,
    PlacementOptions,
    WorkloadRequest,
    plan_placement,
    replace_server,
    workload_request,
)
from ansible_collections.baremetal.k8s.plugins.module_utils.placement.locality import PeerCounter
from placement_samples import group, make_servers, plan, two_clusters, wl

# --- options ------------------------------------------------------------------------------


def test_negative_reserved_cores_is_refused_instead_of_overcommitting_a_server():
    servers = make_servers(racks=("a01",), per_rack=1)  # one 64-core, 256 GB server
    groups = [group(count=1, max_share_per_domain=1.0)]
    big = [wl("big", replicas=1, cpu=120, memory_gb=8)]
    # With reserved_cores -100 the node would offer 164 cores and take a 120-core replica.
    with pytest.raises(PlacementError, match=r"reserved_cores must be a number >= 0, not -100\. Fix: give what"):
        plan(servers, groups, workloads=big, max_share_per_domain=1.0, reserved_cores=-100)
    refused = plan(servers, groups, workloads=big, max_share_per_domain=1.0, partial_workloads=False)
    assert not refused.ok and "workload big: unsatisfiable" in refused.failures[0]


@pytest.mark.parametrize(("option", "value", "message"), [
    ("reserved_cores", -0.5, "reserved_cores must be a number >= 0"),
    ("reserved_cores", float("nan"), "reserved_cores must be a number >= 0"),
    ("reserved_memory_gb", -8, "reserved_memory_gb must be a number >= 0, not -8"),
    ("reserved_memory_gb", "8", "reserved_memory_gb must be a number >= 0, not '8'"),
    ("max_share_per_domain", 0, r"max_share_per_domain must be in \(0, 1\], not 0"),
    ("max_share_per_domain", 1.5, r"max_share_per_domain must be in \(0, 1\], not 1.5"),
    ("max_share_per_domain", True, r"max_share_per_domain must be in \(0, 1\], not True"),
    ("failure_domain", "region", "failure_domain must be one of rack, row, datacenter, not 'region'"),
])
def test_bad_options_name_the_option_the_value_and_the_fix(option, value, message):
    with pytest.raises(PlacementError, match=message) as error:
        plan(make_servers(), [group(count=1)], **{option: value})
    assert isinstance(error.value, BaremetalError) and "Fix: " in str(error.value)


# --- replace -----------------------------------------------------------------------------


def test_a_replace_entry_that_is_not_a_server_of_the_fleet_is_an_error_with_a_suggestion():
    servers = make_servers()
    first = plan(servers, [group(count=3)])
    with pytest.raises(PlacementError, match=r"replace: a01-s1 is not a server of the fleet; did you mean a01-s01"):
        plan(servers, [group(count=3)], first.ledger, replace=("a01-s1",))
    with pytest.raises(PlacementError, match=r"Fix: name servers .* serving now: a01-s01, a02-s01, a03-s01"):
        replace_server(servers, [group(count=3)], first.ledger, "zz-nothing-like-it")


def test_a_replace_entry_that_serves_no_node_group_is_an_error_naming_the_groups():
    servers = make_servers()
    first = plan(servers, [group(count=3)])
    free = next(name for name in sorted(servers) if name not in first.members["c1/workers"])
    with pytest.raises(PlacementError, match=r"replace: %s serves no node group .*Fix: remove it from replace; "
                                             r"node groups and their servers: c1/workers \(a01-s01, a02-s01, "
                                             r"a03-s01\)" % free):
        plan(servers, [group(count=3)], first.ledger, replace=(free,))


def test_replacing_again_after_the_replacement_is_a_warning_not_an_error():
    servers = make_servers()
    first = plan(servers, [group(count=3)])
    victim = first.members["c1/workers"][0]
    replaced = replace_server(servers, [group(count=3)], first.ledger, victim)
    assert replaced.ok and victim not in replaced.members["c1/workers"]
    again = replace_server(servers, [group(count=3)], replaced.ledger, victim)
    assert again.ok and again.changes == []
    assert any("replace: %s serves no node group any more (it left c1/workers earlier)" % victim in w
               for w in again.warnings)


def test_a_pinned_server_may_be_replaced():
    servers = make_servers()
    pinned = GroupRequest("c1", "workers", "eu", ("worker",), pinned=("a01-s01",), intent=group(count=2).intent)
    result = plan(servers, [pinned], replace=("a01-s01",))
    assert result.ok and "a01-s01" not in result.members["c1/workers"] and len(result.members["c1/workers"]) == 2


# --- workloads ---------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "value", "message"), [
    ("replicas", 0, r"workloads\[0\] \(x\): replicas must be a whole number >= 1, not 0"),
    ("replicas", 2.5, "replicas must be a whole number >= 1, not 2.5"),
    ("replicas", True, "replicas must be a whole number >= 1, not True"),
    ("replicas", "3", "replicas must be a whole number >= 1, not '3'"),
    ("cpu", -1, r"workloads\[0\] \(x\): cpu must be a number >= 0, not -1"),
    ("cpu", "four", "cpu must be a number >= 0, not 'four'"),
    ("cpu", float("inf"), "cpu must be a number >= 0, not inf"),
    ("memory_gb", -4.0, "memory_gb must be a number >= 0, not -4.0"),
    ("disk_type", "tape", "disk_type must be one of nvme, ssd, hdd, not 'tape'"),
    ("spread", "planet", "spread must be rack, row, datacenter or node, not 'planet'"),
])
def test_workload_fields_are_checked_from_the_option_and_from_code(field, value, message):
    with pytest.raises(PlacementError, match=message):
        workload_request({"name": "x", "region": "eu", field: value})
    # The engine checks WorkloadRequests it is handed directly too.
    servers, groups = two_clusters()
    with pytest.raises(PlacementError, match=message):
        plan(servers, groups, workloads=[dataclasses.replace(wl("x"), **{field: value})])


def test_workload_request_converts_whole_numbers_for_cpu_and_memory():
    request = workload_request({"name": "x", "cluster": "c1", "cpu": 4, "memory_gb": 16, "replicas": 3})
    assert request == WorkloadRequest(name="x", cluster="c1", replicas=3, cpu=4.0, memory_gb=16.0)
    with pytest.raises(PlacementError, match=r"workloads\[2\] \(\?\): name is required"):
        workload_request({"region": "eu"}, 2)


# --- the hop rule --------------------------------------------------------------------------


def test_peer_counter_sums_fleet_hop_distance_even_for_tors_shared_across_rows():
    rng = random.Random(3)
    locations = []
    for _attempt in range(40):
        region, dc = rng.choice(("eu", "us")), rng.choice(("d1", "d2"))
        # Few ToR names, so that racks in different rows (and datacenters) share one.
        locations.append(Location(region, "%s-%s" % (region, dc), rng.choice(("w1", "w2", "w3")),
                                  rng.choice(("k1", "k2", "k3", "k4")), tor=rng.choice(("t1", "t2"))))
    servers = [Candidate("s%02d" % i, location) for i, location in enumerate(locations)]
    for probe in servers:
        peers = PeerCounter()
        others = [s for s in servers if s.name != probe.name and rng.random() < 0.5]
        for server in others:
            peers.add(server.location)
        assert peers.hop_sum(probe.location) == sum(hop_distance(probe, s) for s in others)


def test_options_default_to_partial_workloads():
    assert PlacementOptions().partial_workloads is True
    result = plan_placement(make_servers(), [group(count=1)], Ledger())
    assert result.ok and result.unplaced == []
