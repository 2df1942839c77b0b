# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The drift report's fleet-against-cluster part at fleet scale, on the real control plane (issue 13).

One cluster of 366 servers over three racks (scale_fleet: a control plane per rack, 121 workers each) whose
worker node group declares the label baremetal.k8s/pool=general and the taint dedicated=general:PreferNoSchedule;
``baremetal.k8s.fleet_allocation`` gives every member its pod /24 in the file ledger beside the fleet file. Every
member but five gets a kwok Node as a converged cluster has it, and scale_fleet.plant_drift plants a known set of
drift: 5 members with no Node, 3 Nodes no member matches, 4 Nodes with another member's pod /24, 6 cordoned with
no recorded reason, 7 missing the declared label, 2 with an undeclared taint, 2 missing the declared taint; and,
not drift, 2 cordoned for maintenance with the reason recorded, one taint of the collection's own, the
unschedulable taint the node lifecycle controller puts on cordoned Nodes and kubeadm's taint on control planes.
``baremetal.k8s.cluster_drift`` runs through ``ansible localhost -m`` with the harness kubeconfig (no etcd
option: that comparison is skipped) and must report exactly the planted items, each with its desired and
observed value, and nothing else. The module's wall time and, in process, the read and the pure comparison
(drift.fleet_against_cluster and metadata_against_fleet over the read Nodes) are printed (``-s``), never
asserted; tests/benchmarks/bench_drift.py prints the same on its own control plane.

kwok plays the kubelet and reports its own version as the kubelet's (``kwok-v0.8.0``, kwok-stages.yaml's
node-initialize stage), which is no Kubernetes version a fleet file accepts (``1.36.3``): every member Node gets a
kubelet_version item. Those are left out of the exact comparison and checked on their own: one per member Node,
desired the fleet's version, observed what the Node reports.
"""

from __future__ import annotations

import os
import time
import uuid

import pytest
from ansible_collections.baremetal.k8s.plugins.module_utils import drift
from fleet_samples import run_module
from scale_fleet import (
    SCALE_LABEL,
    create_nodes,
    depopulate,
    drift_fleet,
    drift_in_process,
    plant_drift,
    wait_healthy,
    write_allocated,
)

CLUSTER = "scale"
RACKS = ("a01", "a02", "a03")
KUBERNETES_VERSION = "1.36.3"  # fleet_samples.cluster()'s
RISK = {"missing_node": "medium", "node_not_in_fleet": "medium", "pod_cidr": "high", "kubelet_version": "medium",
        "cordon_without_reason": "low", "label": "low", "taint": "medium"}


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def risk_of(what):
    return RISK[what.split(" ")[0]]  # "label KEY" and "taint KEY=VALUE:EFFECT" by their first word


@pytest.fixture(scope="module")
def scale(k8s_client, kubeconfig, tmp_path_factory):
    """The planted drift, the Nodes as the API has them, cluster_drift's result and the in-process comparison."""
    from kubernetes import client

    prefix = "ds" + uuid.uuid4().hex[:4]
    fleet = drift_fleet(prefix, racks=RACKS, workers_per_rack=121, cluster_name=CLUSTER)
    members = [s["name"] for s in fleet["servers"]]
    fleet_file, allocations, allocate_seconds = write_allocated(tmp_path_factory.mktemp("drift-scale"), fleet)
    bodies, planted = plant_drift(fleet, prefix, allocations)
    core = client.CoreV1Api(k8s_client)
    # Nodes other tests of the session left behind are no fleet member either: the report rightly lists them.
    for name in sorted(n.metadata.name for n in core.list_node().items):
        planted["node/" + name, "node_not_in_fleet"] = (None, "a Node of cluster %s" % CLUSTER)
        print("\n[drift-scale] a Node from before this test is in the cluster: %s" % name)
    try:
        _created, created = timed(create_nodes, k8s_client, bodies)
        _settled, settled = timed(wait_healthy, k8s_client, prefix, list(bodies))
        print("\n[drift-scale] fleet_allocation for %d members: %.2f s; created %d kwok Nodes (%d members, %d not in "
              "the fleet) in %.1f s; kwok had them Ready with fresh Leases %.1f s later"
              % (len(members), allocate_seconds, len(bodies), len(set(bodies) & set(members)),
                 len(set(bodies) - set(members)), created, settled))
        nodes = {n.metadata.name: n for n in core.list_node(label_selector="%s=%s" % (SCALE_LABEL, prefix)).items}
        _pinged, baseline = timed(run_module, "ansible.builtin.ping", {})
        result, module_seconds = timed(run_module, "baremetal.k8s.cluster_drift",
                                       {"fleet": fleet_file, "cluster": CLUSTER, "kubeconfig": kubeconfig,
                                        "timeout": 30})
        assert not result.get("failed"), result.get("msg")
        items, seconds = drift_in_process(kubeconfig, fleet_file, CLUSTER)
        print("[drift-scale] ansible start-up baseline (ansible.builtin.ping through the same CLI): %.2f s"
              % baseline)
        print("[drift-scale] cluster_drift over %d members and %d Nodes: module %.2f s wall, %d items; in process: "
              "read %.2f s, fleet_against_cluster %.3f s + metadata_against_fleet %.3f s = comparison %.3f s "
              "(load average %.1f)"
              % (len(members), len(bodies), module_seconds, result["report"]["total"], seconds["read"],
                 seconds["fleet_against_cluster"], seconds["metadata_against_fleet"], seconds["compare"],
                 os.getloadavg()[0]))
        yield {"members": members, "bodies": bodies, "planted": planted, "nodes": nodes, "result": result,
               "items": items}
    finally:
        depopulate(k8s_client, list(bodies))


def test_the_report_lists_exactly_the_planted_drift(scale):
    result, planted = scale["result"], scale["planted"]
    report = result["report"]
    assert result["changed"] is False
    assert report["cluster"] == CLUSTER and report["drift"] is True
    assert report["skipped"] == ["etcd membership: no etcd_info result given"]
    others = [i for i in report["items"] if i["what"] != "kubelet_version"]
    found = {(i["target"], i["what"]): (i["desired"], i["observed"]) for i in others}
    assert len(found) == len(others), "an item is listed twice"
    assert found == planted
    for item in report["items"]:
        assert item["kind"] == "fleet" and item["risk"] == risk_of(item["what"]) and item["action"], item
    # Highest risk first.
    order = [("low", "medium", "high").index(i["risk"]) for i in report["items"]]
    assert order == sorted(order, reverse=True)

    kubelet = len(report["items"]) - len(others)
    by_risk = {"low": 0, "medium": kubelet, "high": 0}
    for _target, what in planted:
        by_risk[risk_of(what)] += 1
    assert report["total"] == len(planted) + kubelet
    assert report["counts"] == {"by_kind": {"host": 0, "fleet": report["total"], "ledger": 0, "etcd": 0,
                                            "security": 0}, "by_risk": by_risk}
    assert result["lines"][0] == "cluster %s: %d drift items: %d fleet" % (CLUSTER, report["total"], report["total"])
    assert len(result["lines"]) == 1 + report["total"] + 1  # the counts, the items, what was not compared


def test_every_member_node_reports_kwoks_version_as_the_kubelets(scale):
    items = [i for i in scale["result"]["report"]["items"] if i["what"] == "kubelet_version"]
    with_node = [n for n in scale["members"] if n in scale["bodies"]]
    assert len(with_node) == 361
    assert sorted(i["target"] for i in items) == sorted("node/" + n for n in with_node)
    for item in items:
        reported = scale["nodes"][item["target"][len("node/"):]].status.node_info.kubelet_version
        assert reported.startswith("kwok-"), reported  # else the fleet could match it: see the docstring
        assert (item["desired"], item["observed"]) == (KUBERNETES_VERSION, reported), item


def test_the_comparison_in_process_gives_the_same_items(scale):
    assert drift.drift_report(scale["items"])["items"] == scale["result"]["report"]["items"]
