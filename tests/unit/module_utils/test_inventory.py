# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The inventory builder (module_utils/inventory.py) and placed members (fleet.place_members), without Ansible."""

from __future__ import annotations

from ansible_collections.baremetal.k8s.plugins.module_utils import ipam
from ansible_collections.baremetal.k8s.plugins.module_utils.fleet import parse_fleet, place_members
from ansible_collections.baremetal.k8s.plugins.module_utils.inventory import build_inventory, with_live_state
from fleet_samples import small_fleet


def intent_fleet(servers=7):
    data = small_fleet(servers=servers, members=[], control_planes=0)
    data["servers"][servers - 1]["state"] = "spare"
    data["clusters"][0]["node_groups"] = [
        {"name": "control-plane", "roles": ["control_plane", "etcd"], "servers": ["s00", "s01", "s02"]},
        {"name": "workers", "roles": ["worker", "load_balancer"], "intent": {"count": 2}},
    ]
    return parse_fleet(data, "fleet.yml")


def inventory_of(fleet):
    ledger = ipam.empty_ledger()
    ipam.allocate(fleet, ledger)
    return build_inventory(fleet, ledger)


def test_an_intent_alone_gives_no_members():
    data = inventory_of(intent_fleet())
    assert "cluster_c1_worker" in data["groups"] and data["groups"]["cluster_c1_worker"]["hosts"] == []
    assert "fleet_cluster" not in data["hosts"]["s03"]


def test_placed_servers_are_members_with_groups_and_addresses():
    fleet = intent_fleet()
    assert place_members(fleet, {"s04": ("c1", "workers"), "s03": ("c1", "workers")}) == []
    assert fleet.clusters["c1"].node_groups[1].placed == ["s03", "s04"]
    assert fleet.cluster_of("s04").name == "c1"
    assert fleet.clusters["c1"].roles_of("s04") == ["worker", "load_balancer"]
    data = inventory_of(fleet)
    groups, hosts = data["groups"], data["hosts"]
    assert groups["node_group_c1_workers"]["hosts"] == ["s03", "s04"]
    assert groups["cluster_c1_worker"]["hosts"] == ["s03", "s04"]
    assert groups["cluster_c1_load_balancer"]["hosts"] == ["s03", "s04"]
    for name in ("s03", "s04"):
        assert hosts[name]["fleet_cluster"] == "c1" and hosts[name]["fleet_node_groups"] == ["workers"]
        assert hosts[name]["pod_cidr"] and hosts[name]["wireguard_address"]
    # Every member's peer table knows the placed servers (the WireGuard mesh routes their pod prefixes).
    peers = groups["wireguard_c1_dc1_private"]["vars"]["wireguard_peers"]
    assert {"s03", "s04"} <= set(peers) and "s05" not in peers


def test_stale_placement_entries_are_warnings_and_left_out():
    fleet = intent_fleet()
    warnings = place_members(fleet, {
        "gone": ("c1", "workers"),  # removed from the fleet file
        "s03": ("c1", "nope"),  # a node group that no longer exists
        "s04": ("c9", "workers"),  # a cluster that no longer exists
        "s00": ("c1", "workers"),  # the fleet file pins it elsewhere: the fleet file wins
        "s05": ("c1", "workers"),
    })
    assert len(warnings) == 4
    assert any("no server 'gone'" in w for w in warnings)
    assert any("s00 -> c1/workers" in w and "already puts it in cluster c1" in w for w in warnings)
    assert fleet.clusters["c1"].node_groups[1].placed == ["s05"]
    assert "fleet_cluster" not in inventory_of(fleet)["hosts"]["s03"]


def test_k8s_cluster_names_the_cluster_groups():
    groups = inventory_of(intent_fleet())["groups"]
    k8s_cluster = groups["cluster_c1"]["vars"]["k8s_cluster"]
    assert k8s_cluster["groups"] == {
        "cluster": "cluster_c1", "control_plane": "cluster_c1_control_plane", "etcd": "cluster_c1_etcd",
        "worker": "cluster_c1_worker", "load_balancer": "cluster_c1_load_balancer"}
    # Names are sanitised by the one rule (vocabulary.group_name).
    data = small_fleet()
    data["clusters"][0]["name"] = "ams1-prod.v2"
    fleet = parse_fleet(data, "fleet.yml")
    groups = inventory_of(fleet)["groups"]
    assert groups["cluster_ams1_prod_v2"]["vars"]["k8s_cluster"]["groups"]["worker"] == "cluster_ams1_prod_v2_worker"
    assert "cluster_ams1_prod_v2_worker" in groups


def test_live_state_is_added_without_touching_the_cached_data():
    data = inventory_of(intent_fleet())
    before = repr(data)
    state = {"registered": True, "ready": False, "cordoned": True}
    live = with_live_state(data, {"c1": {"s00": state, "s01": None}})
    assert live["hosts"]["s00"]["k8s_node"] == state and live["hosts"]["s01"]["k8s_node"] is None
    assert live["groups"]["k8s_not_ready"]["hosts"] == ["s00"] and live["groups"]["k8s_cordoned"]["hosts"] == ["s00"]
    assert live["groups"]["k8s_unreachable"]["hosts"] == ["s01"]
    assert repr(data) == before


def test_fleet_bmc_is_a_host_var_only_where_the_fleet_names_a_bmc():
    data = small_fleet()
    data["servers"][1]["bmc"] = {"type": "redfish", "address": "https://10.0.9.11:8443/", "system_id": "1",
                                 "credentials": "dc1-bmc"}
    hosts = inventory_of(parse_fleet(data, "fleet.yml"))["hosts"]
    assert hosts["s01"]["fleet_bmc"] == {
        "type": "redfish", "address": "https://10.0.9.11:8443/", "baseuri": "10.0.9.11:8443", "system_id": "1",
        "credentials": "dc1-bmc", "validate_certs": True}
    assert "fleet_bmc" not in hosts["s00"]


def test_members_get_their_node_labels_and_taints():
    data = small_fleet(servers=7, members=[f"s{i:02d}" for i in range(6)])
    data["servers"][3]["labels"] = {"workload": "general", "example.com/disk": "nvme"}
    workers = data["clusters"][0]["node_groups"][1]
    workers["labels"] = {"example.com/pool": "batch"}
    workers["taints"] = [{"key": "dedicated", "value": "batch", "effect": "NoSchedule"},
                         {"key": "example.com/slow", "effect": "PreferNoSchedule"}]
    hosts = inventory_of(parse_fleet(data, "fleet.yml"))["hosts"]
    assert hosts["s03"]["fleet_node_labels"] == {"example.com/pool": "batch", "workload": "general",
                                                 "example.com/disk": "nvme"}
    assert hosts["s03"]["fleet_labels"] == {"workload": "general", "example.com/disk": "nvme"}  # unchanged
    assert hosts["s03"]["fleet_node_taints"] == [{"key": "dedicated", "value": "batch", "effect": "NoSchedule"},
                                                 {"key": "example.com/slow", "value": "", "effect": "PreferNoSchedule"}]
    # A group without labels and taints: the server's labels, no taints.
    assert hosts["s00"]["fleet_node_labels"] == {"workload": "general"} and hosts["s00"]["fleet_node_taints"] == []
    assert "fleet_node_labels" not in hosts["s06"] and "fleet_node_taints" not in hosts["s06"]  # no cluster


def test_a_placed_server_whose_label_conflicts_with_its_group_is_kept_with_a_warning():
    data = small_fleet(servers=7, members=[], control_planes=0)
    data["clusters"][0]["node_groups"] = [
        {"name": "control-plane", "roles": ["control_plane", "etcd"], "servers": ["s00", "s01", "s02"]},
        {"name": "gpu", "roles": ["worker"], "intent": {"count": 1}, "labels": {"workload": "gpu", "pool": "a"}},
    ]
    fleet = parse_fleet(data, "fleet.yml")
    (warning,) = place_members(fleet, {"s03": ("c1", "gpu")})
    assert "s03 -> c1/gpu" in warning and "workload='general' conflicts with the node group's workload='gpu'" in warning
    assert inventory_of(fleet)["hosts"]["s03"]["fleet_node_labels"] == {"workload": "general", "pool": "a"}
