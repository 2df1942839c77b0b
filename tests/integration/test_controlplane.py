# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The harness itself: the control plane answers, kwok nodes and pods behave like a kubelet's.

Every other integration test builds on these facts, so they are checked first
(pytest runs this file before test_node_drain.py) and fail with the component
logs attached (conftest's report hook).
"""

from __future__ import annotations

import time

import pytest
from controlplane import deployment_manifest, pod_ready


def deployment(name: str, replicas: int, node: str | None = None) -> dict:
    spec = {"containers": [{"name": "app", "image": "registry.invalid/app:1"}]}
    if node:
        spec["nodeSelector"] = {"kubernetes.io/hostname": node}
    return deployment_manifest(name, replicas, spec)


def test_readyz_and_components(control_plane):
    assert control_plane.readyz() == "ok"
    names = sorted(p.name for p in control_plane.procs)
    assert names == ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"]
    for p in control_plane.procs:
        assert p.popen.poll() is None, f"{p.name} exited"


def test_kubectl_from_the_same_build(control_plane, kubeconfig):
    import subprocess

    out = subprocess.run(
        [str(control_plane.bin_dir / "kubectl"), "--kubeconfig", kubeconfig, "version", "-o", "json"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout
    assert '"gitVersion": "v1.36.3"' in out


def test_kwok_node_goes_ready(k8s_client, kwok_nodes):
    from kubernetes import client

    (name,) = kwok_nodes(1)
    node = client.CoreV1Api(k8s_client).read_node(name)
    conditions = {c.type: c.status for c in node.status.conditions}
    assert conditions["Ready"] == "True"
    # The controller-manager removed its not-ready taint (the fixture waited for it).
    assert not [t for t in node.spec.taints or [] if t.key.startswith("node.kubernetes.io/")]


def test_deployment_pods_run_and_deletion_completes(k8s_client, namespace, kwok_nodes, pods_ready):
    from kubernetes import client

    node_a, node_b = kwok_nodes(2)
    apps = client.AppsV1Api(k8s_client)
    core = client.CoreV1Api(k8s_client)
    apps.create_namespaced_deployment(namespace, deployment("web", 4))
    pods = pods_ready(namespace, "app=web", 4, timeout=60)
    assert {p.spec.node_name for p in pods} <= {node_a, node_b}
    assert all(p.status.pod_ip for p in pods), "kwok assigns pod IPs"

    # A normal (graceful) delete finishes: kwok plays the kubelet's part.
    victim = pods[0].metadata.name
    core.delete_namespaced_pod(victim, namespace)
    deadline = time.monotonic() + 30
    while any(p.metadata.name == victim for p in core.list_namespaced_pod(namespace).items):
        assert time.monotonic() < deadline, f"pod {victim} still present 30s after deletion"
        time.sleep(0.2)
    # ... and the ReplicaSet replaced it.
    pods_ready(namespace, "app=web", 4, timeout=60)

    apps.delete_namespaced_deployment(namespace=namespace, name="web", propagation_policy="Foreground")
    deadline = time.monotonic() + 60
    while core.list_namespaced_pod(namespace, label_selector="app=web").items:
        assert time.monotonic() < deadline, "pods of the deleted Deployment still present after 60s"
        time.sleep(0.2)


def test_pdb_blocks_eviction_of_ready_pods(k8s_client, namespace, kwok_nodes, pods_ready):
    """The fact the drain module relies on: 429 from the Eviction API while the PDB forbids it."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    (node,) = kwok_nodes(1)
    client.AppsV1Api(k8s_client).create_namespaced_deployment(namespace, deployment("db", 2, node))
    client.PolicyV1Api(k8s_client).create_namespaced_pod_disruption_budget(
        namespace,
        {"metadata": {"name": "db"}, "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "db"}}}},
    )
    pods = pods_ready(namespace, "app=db", 2)
    assert all(pod_ready(p) for p in pods)
    # The disruption controller computes the PDB status asynchronously.
    policy = client.PolicyV1Api(k8s_client)
    deadline = time.monotonic() + 30
    while (policy.read_namespaced_pod_disruption_budget("db", namespace).status.current_healthy or 0) < 2:
        assert time.monotonic() < deadline, "PDB status never counted the Ready pods"
        time.sleep(0.2)
    body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pods[0].metadata.name}}
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(k8s_client).create_namespaced_pod_eviction(pods[0].metadata.name, namespace, body)
    assert err.value.status == 429
    assert "disruption budget db" in err.value.body
