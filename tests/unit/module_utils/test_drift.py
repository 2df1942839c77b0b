# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Drift (module_utils/drift.py): fleet against cluster, ledger against fleet, etcd against fleet, the report."""

from __future__ import annotations

import pytest
from ansible_collections.baremetal.k8s.plugins.module_utils import ipam
from ansible_collections.baremetal.k8s.plugins.module_utils.drift import (
    Drift,
    DriftError,
    drift_report,
    etcd_against_fleet,
    fleet_against_cluster,
    ledger_against_fleet,
    report_lines,
)
from ansible_collections.baremetal.k8s.plugins.module_utils.fleet import parse_fleet
from fleet_samples import small_fleet

MEMBERS = {"w1": {"pod_cidr": "10.244.1.0/24", "state": "active"},
           "w2": {"pod_cidr": "10.244.2.0/24", "state": "active"},
           "w3": {"pod_cidr": "10.244.3.0/24", "state": "retired"}}


def node(name, **fields):
    record = {"name": name, "registered": True, "pod_cidr": MEMBERS.get(name, {}).get("pod_cidr"),
              "kubelet_version": "v1.36.3", "cordoned": False, "cordoned_by": None}
    record.update(fields)
    return record


def whats(items):
    return sorted((i.target, i.what) for i in items)


def test_a_cluster_as_its_fleet_says_has_no_drift():
    assert fleet_against_cluster("c1", MEMBERS, [node("w1"), node("w2")], kubernetes_version="1.36.3") == []


def test_each_difference_is_one_item_with_desired_and_observed():
    nodes = [node("w1", pod_cidr="10.244.9.0/24", kubelet_version="v1.35.4"),
             node("w2", cordoned=True, cordoned_by="unknown"), node("stray")]
    items = fleet_against_cluster("c1", {**MEMBERS, "w4": {"pod_cidr": None, "state": "active"}}, nodes,
                                  kubernetes_version="1.36.3")
    assert whats(items) == [("node/stray", "node_not_in_fleet"), ("node/w1", "kubelet_version"),
                            ("node/w1", "pod_cidr"), ("node/w2", "cordon_without_reason"),
                            ("node/w4", "missing_node")]
    cidr = next(i for i in items if i.what == "pod_cidr")
    assert (cidr.desired, cidr.observed, cidr.risk) == ("10.244.1.0/24", "10.244.9.0/24", "high")


def test_a_cordon_with_a_recorded_reason_is_no_drift():
    nodes = [node("w1", cordoned=True, cordoned_by="baremetal.k8s/maintenance"), node("w2")]
    assert fleet_against_cluster("c1", MEMBERS, nodes, kubernetes_version="1.36.3") == []


def test_a_node_record_without_a_name_is_refused_with_its_index():
    with pytest.raises(DriftError, match=r"nodes: \[1\]: a node record without a name"):
        fleet_against_cluster("c1", MEMBERS, [node("w1"), {}], kubernetes_version="1.36.3")


def test_the_ledger_keeps_orphans_and_retired_servers_until_released():
    data = small_fleet()
    ledger = ipam.empty_ledger()
    ipam.allocate(parse_fleet(data, "fleet.yml"), ledger)  # s05 got its addresses while active
    data["servers"][5]["state"] = "retired"
    fleet = parse_fleet(data, "fleet.yml")
    ledger["clusters"]["c1"]["nodes"]["gone"] = {"pod_cidr": "10.244.99.0/24", "wireguard_address": "10.99.0.9"}
    items = ledger_against_fleet(fleet, ledger)
    assert whats(items) == [("ledger/c1/gone", "orphan"), ("ledger/c1/s05", "retired_not_released")]
    assert "not in the fleet file" in items[0].observed


def test_etcd_members_against_the_control_planes():
    members = [{"id": "1", "name": "cp1"}, {"id": "2", "name": "cp2", "is_learner": True}, {"id": "3", "name": "old"}]
    items = etcd_against_fleet("c1", ["cp1", "cp2", "cp3"], members)
    assert whats(items) == [("etcd/c1/cp2", "learner"), ("etcd/c1/cp3", "missing_member"),
                            ("etcd/c1/old", "member_not_in_fleet")]


def test_the_report_counts_and_puts_the_riskiest_first():
    items = [Drift("ledger", "ledger/c1/x", "orphan", None, "10.0.0.0/24", "release it", "low"),
             Drift("etcd", "etcd/c1/cp3", "missing_member", "a voting member", None, "rejoin it", "high")]
    report = drift_report(items, fleet_revision="abc123")
    assert report["drift"] is True and report["total"] == 2
    assert report["counts"]["by_kind"]["etcd"] == 1 and report["counts"]["by_risk"]["low"] == 1
    assert [i["target"] for i in report["items"]] == ["etcd/c1/cp3", "ledger/c1/x"]
    lines = report_lines(report)
    assert lines[0] == "2 drift items: 1 ledger, 1 etcd"
    assert lines[1] == "high etcd/c1/cp3 missing_member: desired a voting member, observed (none); fix: rejoin it"
    assert report_lines(drift_report([], fleet_revision="abc123")) == [
        "no drift: the fleet matches its intent (fleet revision abc123)"]


def test_an_unknown_kind_or_risk_is_refused():
    with pytest.raises(DriftError, match="unknown drift kind"):
        Drift("weather", "x", "y", None, None, "z", "low")
    with pytest.raises(DriftError, match="unknown risk"):
        Drift("host", "x", "y", None, None, "z", "extreme")
