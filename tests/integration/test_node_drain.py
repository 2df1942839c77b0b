# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""baremetal.k8s.node_drain against the real control plane with kwok nodes.

The module runs for real through `ansible localhost -m` (a subprocess with the
collection on ANSIBLE_COLLECTIONS_PATH); a few cases drive the core
(module_utils/k8s_drain.py) directly, as the recovery playbooks' helpers will.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time

import pytest
from ansible_collections.baremetal.k8s.plugins.module_utils.k8s_drain import DrainError, DrainOptions, NodeDrainer
from controlplane import deployment_manifest
from fleet_samples import module_env

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGE = "registry.invalid/app:1"  # never pulled: kwok runs no containers


# --------------------------------------------------------------------------- helpers


def module_command(args: dict, check: bool = False) -> list[str]:
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible"), "localhost", "-i", "localhost,",
           "-c", "local", "-m", "baremetal.k8s.node_drain", "-a", json.dumps(args)]
    return [*cmd, "--check", "--diff"] if check else cmd


def parse_result(proc_stdout: str) -> dict:
    out = json.loads(proc_stdout)
    return out["plays"][0]["tasks"][0]["hosts"]["localhost"]


def run_module(args: dict, check: bool = False, timeout: float = 180, env: dict | None = None) -> dict:
    proc = subprocess.run(module_command(args, check), env=module_env(**(env or {})), capture_output=True,
                          text=True, timeout=timeout, check=False)
    try:
        return parse_result(proc.stdout)
    except (ValueError, KeyError, IndexError):
        pytest.fail(f"ansible rc={proc.returncode}, unparsable output:\n{proc.stdout}\n{proc.stderr}")


def deployment(name: str, replicas: int, selector: dict, empty_dir: bool = False) -> dict:
    spec: dict = {
        "nodeSelector": selector,
        "terminationGracePeriodSeconds": 1,
        "containers": [{"name": "app", "image": IMAGE}],
    }
    if empty_dir:
        spec["volumes"] = [{"name": "scratch", "emptyDir": {}}]
    return deployment_manifest(name, replicas, spec)


def daemonset(name: str, selector: dict) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"nodeSelector": selector, "containers": [{"name": "agent", "image": IMAGE}]},
            },
        },
    }


def create_pdb(api, namespace: str, name: str, min_available: int, wait_healthy: int) -> None:
    """Create a PDB on app=NAME and wait until the disruption controller counts WAIT_HEALTHY pods."""
    from kubernetes import client

    policy = client.PolicyV1Api(api)
    policy.create_namespaced_pod_disruption_budget(
        namespace,
        {"metadata": {"name": name},
         "spec": {"minAvailable": min_available, "selector": {"matchLabels": {"app": name}}}},
    )
    deadline = time.monotonic() + 30
    while True:
        status = policy.read_namespaced_pod_disruption_budget(name, namespace).status
        if status and status.observed_generation and (status.current_healthy or 0) >= wait_healthy:
            return
        assert time.monotonic() < deadline, f"PDB {name} status never reached {wait_healthy} healthy: {status}"
        time.sleep(0.2)


def pod_uids(api, namespace: str, node: str) -> set[str]:
    from kubernetes import client

    pods = client.CoreV1Api(api).list_namespaced_pod(namespace, field_selector=f"spec.nodeName={node}").items
    return {p.metadata.uid for p in pods}


def unschedulable(api, node: str) -> bool:
    from kubernetes import client

    return bool(client.CoreV1Api(api).read_node(node).spec.unschedulable)


def by_name(result: dict) -> dict[str, dict]:
    return {p["name"]: p for p in result["pods"]}


# --------------------------------------------------------------------------- tests


def test_pdb_blocks_then_allows_once_replacements_are_ready(
    k8s_client, kubeconfig, namespace, kwok_nodes, pods_ready
):
    """minAvailable=3 over 3 replicas on one node: nothing may leave until a 4th pod is Ready elsewhere.

    Then each eviction waits for the previous pod's replacement to be Ready on the new node.
    """
    from kubernetes import client

    pool = {"pool": namespace}
    (node_a,) = kwok_nodes(1, labels=pool)
    apps = client.AppsV1Api(k8s_client)
    apps.create_namespaced_deployment(namespace, deployment("web", 3, pool))
    apps.create_namespaced_daemon_set(namespace, daemonset("agent", pool))
    pods_ready(namespace, "app=web", 3, node=node_a)
    (agent,) = pods_ready(namespace, "app=agent", 1, node=node_a)
    create_pdb(k8s_client, namespace, "web", min_available=3, wait_healthy=3)

    args = {"name": node_a, "kubeconfig": kubeconfig, "timeout": 120, "backoff_initial": 0.5, "backoff_max": 2}
    proc = subprocess.Popen(module_command(args), env=module_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        # Ansible itself takes seconds to start on a busy machine: wait until the drain has begun.
        deadline = time.monotonic() + 60
        while not unschedulable(k8s_client, node_a):
            assert proc.poll() is None and time.monotonic() < deadline, "the drain never cordoned the node"
            time.sleep(0.2)
        time.sleep(3)
        assert proc.poll() is None, "the drain finished although the PDB forbade every eviction"
        # Room elsewhere and one more replica: once it is Ready, the PDB allows one disruption at a time.
        (node_b,) = kwok_nodes(1, labels=pool)
        apps.patch_namespaced_deployment_scale("web", namespace, {"spec": {"replicas": 4}})
        stdout, stderr = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    result = parse_result(stdout)
    assert not result.get("failed"), result.get("msg") or stderr

    assert result["changed"] and result["cordoned"] and not result["was_unschedulable"]
    web = {n: p for n, p in by_name(result).items() if n.startswith("web-")}
    assert len(web) == 3
    assert all(p["outcome"] == "evicted" and p["gone_after"] is not None for p in web.values())
    # Every eviction was first refused by the PDB, and the result says which one.
    assert all(p["attempts"] > 1 and p["blocked_by"] == [f"{namespace}/web"] for p in web.values()), web
    assert any("eviction refused" in m and f"{namespace}/web" in m for m in result["messages"])
    # The DaemonSet pod stays where it is.
    assert by_name(result)[agent.metadata.name]["outcome"] == "skipped"
    assert result["left_alone"] == [f"{namespace}/{agent.metadata.name}"]
    assert agent.metadata.uid in pod_uids(k8s_client, namespace, node_a)
    assert {"cordon", "evict", "wait", "total"} <= set(result["timings"])

    assert unschedulable(k8s_client, node_a)
    pods_ready(namespace, "app=web", 4, node=node_b)
    assert pod_uids(k8s_client, namespace, node_a) == {agent.metadata.uid}

    # Drained already: a second run changes nothing.
    again = run_module({"name": node_a, "kubeconfig": kubeconfig})
    assert not again.get("failed"), again.get("msg")
    assert not again["changed"] and again["evicted"] == []


def test_unmanaged_and_emptydir_pods_refused_unless_allowed(
    k8s_client, kubeconfig, namespace, kwok_nodes, pods_ready
):
    from kubernetes import client

    pool = {"pool": namespace}
    (node,) = kwok_nodes(1, labels=pool)
    core = client.CoreV1Api(k8s_client)
    core.create_namespaced_pod(namespace, {
        "metadata": {"name": "lonely", "labels": {"app": "lonely"}},
        "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "app", "image": IMAGE}]},
    })
    client.AppsV1Api(k8s_client).create_namespaced_deployment(namespace, deployment("cache", 1, pool, empty_dir=True))
    pods_ready(namespace, "app=lonely", 1)
    pods_ready(namespace, "app=cache", 1)
    before = pod_uids(k8s_client, namespace, node)

    refused = run_module({"name": node, "kubeconfig": kubeconfig})
    assert refused.get("failed")
    assert f"{namespace}/lonely: not managed by a controller (set allow_unmanaged=true" in refused["msg"]
    assert "uses emptyDir data (set delete_emptydir_data=true" in refused["msg"]
    assert "(nothing changed)" in refused["msg"]
    # Checked before cordoning: the node and its pods are untouched.
    assert not unschedulable(k8s_client, node)
    assert pod_uids(k8s_client, namespace, node) == before

    # Only one of the two allowed: still refused.
    half = run_module({"name": node, "kubeconfig": kubeconfig, "allow_unmanaged": True})
    assert half.get("failed") and "lonely" not in half["msg"] and "emptyDir" in half["msg"]

    allowed = run_module({"name": node, "kubeconfig": kubeconfig, "allow_unmanaged": True,
                          "delete_emptydir_data": True, "timeout": 60})
    assert not allowed.get("failed"), allowed.get("msg")
    pods = by_name(allowed)
    assert pods["lonely"]["outcome"] == "evicted" and pods["lonely"]["reason"] == "unmanaged (allowed)"
    assert pod_uids(k8s_client, namespace, node) == set()
    with pytest.raises(client.exceptions.ApiException):
        core.read_namespaced_pod("lonely", namespace)  # an unmanaged pod does not come back


def test_timeout_fails_leaves_node_cordoned_and_reports_pdb(k8s_client, namespace, kwok_nodes, pods_ready):
    """Core directly: minAvailable equal to the replicas can never allow an eviction."""
    from kubernetes import client

    pool = {"pool": namespace}
    (node,) = kwok_nodes(1, labels=pool)
    client.AppsV1Api(k8s_client).create_namespaced_deployment(namespace, deployment("db", 2, pool))
    pods_ready(namespace, "app=db", 2)
    create_pdb(k8s_client, namespace, "db", min_available=2, wait_healthy=2)
    before = pod_uids(k8s_client, namespace, node)

    lines: list[str] = []
    options = DrainOptions(timeout=4, backoff_initial=0.5, backoff_max=1, report_interval=1.5)
    with pytest.raises(DrainError) as err:
        NodeDrainer(k8s_client, node, options, log=lines.append).drain()
    msg = str(err.value)
    assert "timed out after 4s" in msg and "node left cordoned" in msg
    assert f"PodDisruptionBudget {namespace}/db (disruptions_allowed=0" in msg
    (blocked,) = err.value.result["blocked"]
    assert blocked["pdb"] == f"{namespace}/db"
    assert blocked["disruptions_allowed"] == 0 and blocked["current_healthy"] == 2
    assert len(blocked["pods"]) == 2
    assert all(p["outcome"] == "blocked" and p["attempts"] >= 2 for p in err.value.result["pods"])
    # While waiting it said which PDB blocks.
    assert any(line.startswith("still waiting") and f"{namespace}/db" in line for line in lines), lines

    assert unschedulable(k8s_client, node)
    assert pod_uids(k8s_client, namespace, node) == before


def test_timeout_force_delete_through_the_module(k8s_client, kubeconfig, namespace, kwok_nodes, pods_ready):
    from kubernetes import client

    pool = {"pool": namespace}
    (node,) = kwok_nodes(1, labels=pool)
    client.AppsV1Api(k8s_client).create_namespaced_deployment(namespace, deployment("db", 2, pool))
    pods_ready(namespace, "app=db", 2)
    create_pdb(k8s_client, namespace, "db", min_available=2, wait_healthy=2)

    failed = run_module({"name": node, "kubeconfig": kubeconfig, "timeout": 3, "backoff_initial": 0.5})
    assert failed.get("failed") and f"{namespace}/db" in failed["msg"]
    assert failed["blocked"][0]["pdb"] == f"{namespace}/db"
    assert unschedulable(k8s_client, node)

    forced = run_module({"name": node, "kubeconfig": kubeconfig, "timeout": 3, "backoff_initial": 0.5,
                         "on_timeout": "force_delete", "force_delete_grace_period": 0})
    assert not forced.get("failed"), forced.get("msg")
    outcomes = {p["outcome"] for p in forced["pods"]}
    assert outcomes == {"force_deleted"}
    assert all(p["blocked_by"] == [f"{namespace}/db"] for p in forced["pods"])
    assert pod_uids(k8s_client, namespace, node) == set()


def test_check_mode_evicts_nothing(k8s_client, kubeconfig, namespace, kwok_nodes, pods_ready):
    from kubernetes import client

    pool = {"pool": namespace}
    (node,) = kwok_nodes(1, labels=pool)
    apps = client.AppsV1Api(k8s_client)
    apps.create_namespaced_deployment(namespace, deployment("web", 2, pool))
    apps.create_namespaced_daemon_set(namespace, daemonset("agent", pool))
    web = pods_ready(namespace, "app=web", 2)
    pods_ready(namespace, "app=agent", 1)
    before = pod_uids(k8s_client, namespace, node)

    result = run_module({"name": node, "kubeconfig": kubeconfig}, check=True)
    assert not result.get("failed"), result.get("msg")
    assert result["changed"]
    assert sorted(result["would_evict"]) == sorted(f"{namespace}/{p.metadata.name}" for p in web)
    assert result["evicted"] == [] and len(result["left_alone"]) == 1
    assert result["diff"]["before"] == {"spec": {"unschedulable": False}}
    assert result["diff"]["after"] == {"spec": {"unschedulable": True}}
    assert not unschedulable(k8s_client, node)
    assert pod_uids(k8s_client, namespace, node) == before


def test_cordon_and_uncordon_are_idempotent(k8s_client, kubeconfig, kwok_nodes):
    (node,) = kwok_nodes(1)

    def state(value: str, check: bool = False) -> dict:
        result = run_module({"name": node, "kubeconfig": kubeconfig, "state": value}, check=check)
        assert not result.get("failed"), result.get("msg")
        return result

    assert state("cordoned", check=True)["changed"] and not unschedulable(k8s_client, node)
    assert state("cordoned")["changed"] and unschedulable(k8s_client, node)
    assert not state("cordoned")["changed"]
    # Connection options fall back to K8S_AUTH_* variables, as in kubernetes.core.
    by_env = run_module({"name": node, "state": "uncordoned"}, env={"K8S_AUTH_KUBECONFIG": kubeconfig})
    assert not by_env.get("failed"), by_env.get("msg")
    assert by_env["changed"] and not unschedulable(k8s_client, node)
    assert not state("uncordoned")["changed"]


def node_annotations(api, node: str) -> dict:
    from kubernetes import client

    return dict(client.CoreV1Api(api).read_node(node).metadata.annotations or {})


def test_cordon_records_who_and_why_and_uncordon_removes_it(k8s_client, kubeconfig, namespace, kwok_nodes,
                                                            pods_ready):
    """cordoned_by/cordon_reason land on the Node with the cordon, are taken over from another cordon,
    are read back by node_health, and go with the uncordon; check mode writes nothing, a rerun changes nothing."""
    from ansible_collections.baremetal.k8s.plugins.module_utils.node_health import assess, node_from_api
    from ansible_collections.baremetal.k8s.plugins.module_utils.vocabulary import (
        CORDON_REASON_ANNOTATION,
        CORDONED_BY_ANNOTATION,
    )
    from kubernetes import client

    core = client.CoreV1Api(k8s_client)
    by, why = "recover.yml awx-job-4711", "kubelet down: drain and redeploy"
    ours = {CORDONED_BY_ANNOTATION: by, CORDON_REASON_ANNOTATION: why}
    pool = {"pool": namespace}
    node_a, node_b = kwok_nodes(2, labels=pool)
    kwok_annotations = node_annotations(k8s_client, node_a)

    def task(node: str, state: str, check: bool = False, **marks) -> dict:
        result = run_module({"name": node, "kubeconfig": kubeconfig, "state": state, **marks}, check=check)
        assert not result.get("failed"), result.get("msg")
        return result

    # state=cordoned, check mode first: says what it would write, writes nothing.
    planned = task(node_a, "cordoned", check=True, cordoned_by=by, cordon_reason=why)
    assert planned["changed"] and planned["cordoned"] and planned["previous_cordon"] is None
    assert planned["diff"]["after"] == {"spec": {"unschedulable": True}, "metadata": {"annotations": ours}}
    assert not unschedulable(k8s_client, node_a) and node_annotations(k8s_client, node_a) == kwok_annotations

    done = task(node_a, "cordoned", cordoned_by=by, cordon_reason=why)
    assert done["changed"] and done["cordoned"] and done["previous_cordon"] is None
    assert unschedulable(k8s_client, node_a)
    assert node_annotations(k8s_client, node_a) == {**kwok_annotations, **ours}  # kwok's own annotation kept
    again = task(node_a, "cordoned", cordoned_by=by, cordon_reason=why)
    assert not again["changed"] and not again["cordoned"]
    assert again["previous_cordon"] == {"cordoned_by": by, "reason": why}
    # A cordon without the options keeps what the annotations say.
    assert not task(node_a, "cordoned")["changed"]
    assert node_annotations(k8s_client, node_a) == {**kwok_annotations, **ours}

    # node_health tells this cordon from a person's.
    verdict = assess([{"name": node_a}], [node_from_api(core.read_node(node_a))], [],
                     now=time.time()).as_dict()["nodes"][0]
    assert verdict["cordoned"] and verdict["cordoned_by"] == by and verdict["cordon_reason"] == why

    # Someone else cordoned node_b by hand, with a reason: a drain keeps the cordon, takes the annotations over
    # and says whose they were.
    client.AppsV1Api(k8s_client).create_namespaced_deployment(
        namespace, deployment("web", 1, {"kubernetes.io/hostname": node_b}))
    pods_ready(namespace, "app=web", 1, node=node_b)
    core.patch_node(node_b, {"spec": {"unschedulable": True}, "metadata": {"annotations": {
        CORDONED_BY_ANNOTATION: "alice", CORDON_REASON_ANNOTATION: "disk swap"}}})
    drained = task(node_b, "drained", cordoned_by=by)
    assert drained["changed"] and not drained["cordoned"] and drained["was_unschedulable"]
    assert len(drained["evicted"]) == 1
    assert drained["previous_cordon"] == {"cordoned_by": "alice", "reason": "disk swap"}
    annotations = node_annotations(k8s_client, node_b)
    assert annotations[CORDONED_BY_ANNOTATION] == by and CORDON_REASON_ANNOTATION not in annotations

    # Uncordon: the flag and both annotations in one task; check mode first, then for real, then nothing left.
    for node in (node_a, node_b):
        preview = task(node, "uncordoned", check=True)
        assert preview["changed"] and preview["diff"]["after"] == {"spec": {"unschedulable": False},
                                                                   "metadata": {"annotations": {}}}
        assert unschedulable(k8s_client, node) and CORDONED_BY_ANNOTATION in node_annotations(k8s_client, node)
        ended = task(node, "uncordoned")
        assert ended["changed"] and ended["previous_cordon"]["cordoned_by"] == by
        assert not unschedulable(k8s_client, node) and node_annotations(k8s_client, node) == kwok_annotations
        assert not task(node, "uncordoned")["changed"]


def test_bad_input_is_reported_without_traceback(kubeconfig, tmp_path):
    missing = run_module({"name": "no-such-node", "kubeconfig": kubeconfig})
    assert missing.get("failed") and missing["msg"] == "node no-such-node not found"
    for state in ("drained", "cordoned", "uncordoned"):
        ignored = run_module({"name": "no-such-node", "state": state, "missing": "ignore", "kubeconfig": kubeconfig})
        assert not ignored.get("failed") and ignored["missing"] is True and not ignored["changed"], ignored

    no_file = run_module({"name": "n1", "kubeconfig": str(tmp_path / "absent.yaml")})
    assert no_file.get("failed") and "kubeconfig: file" in no_file["msg"] and "does not exist" in no_file["msg"]

    bad = run_module({"name": "n1", "kubeconfig": kubeconfig, "force_delete_grace_period": 5})
    assert bad.get("failed") and "only applies with on_timeout=force_delete" in bad["msg"]
    unreachable = run_module({"name": "n1", "host": "https://127.0.0.1:1", "validate_certs": False})
    assert unreachable.get("failed") and unreachable["msg"].startswith("cannot reach the Kubernetes API server")
    for result in (missing, no_file, bad, unreachable):
        assert "Traceback" not in json.dumps(result)


def pdb_status(api, namespace: str, name: str):
    from kubernetes import client

    return client.PolicyV1Api(api).read_namespaced_pod_disruption_budget(name, namespace).status


def test_check_mode_dry_runs_evictions_and_names_the_refusing_pdb(
    k8s_client, kubeconfig, namespace, kwok_nodes, pods_ready
):
    """Check mode asks the API (dryRun=All): db's PDB refuses now, web's allows; nothing is touched."""
    from kubernetes import client

    pool = {"pool": namespace}
    (node,) = kwok_nodes(1, labels=pool)
    apps = client.AppsV1Api(k8s_client)
    apps.create_namespaced_deployment(namespace, deployment("db", 2, pool))
    apps.create_namespaced_deployment(namespace, deployment("web", 2, pool))
    db = pods_ready(namespace, "app=db", 2)
    web = pods_ready(namespace, "app=web", 2)
    create_pdb(k8s_client, namespace, "db", min_available=2, wait_healthy=2)
    create_pdb(k8s_client, namespace, "web", min_available=1, wait_healthy=2)
    before = pod_uids(k8s_client, namespace, node)

    result = run_module({"name": node, "kubeconfig": kubeconfig}, check=True)
    assert not result.get("failed"), result.get("msg")
    assert result["changed"]
    assert result["would_refuse"] == sorted(f"{namespace}/{p.metadata.name}" for p in db)
    # Each dry run stands alone: web's PDB allows one disruption, so each web pod's dry run passes.
    assert result["would_evict"] == sorted(f"{namespace}/{p.metadata.name}" for p in web)
    (blocked,) = result["blocked"]
    assert blocked["pdb"] == f"{namespace}/db" and blocked["disruptions_allowed"] == 0
    assert blocked["current_healthy"] == 2 and len(blocked["pods"]) == 2
    pods = by_name(result)
    assert all(pods[p.metadata.name]["blocked_by"] == [f"{namespace}/db"] for p in db)
    assert all("disruption budget" in pods[p.metadata.name]["message"] for p in db)
    assert any(m.startswith(f"now: PodDisruptionBudget {namespace}/db") for m in result["messages"])
    # Dry runs persist nothing: no pod evicted, web's PDB still allows its disruption, node schedulable.
    assert pod_uids(k8s_client, namespace, node) == before
    assert pdb_status(k8s_client, namespace, "web").disruptions_allowed == 1
    assert not unschedulable(k8s_client, node)


def test_timeout_0_waits_as_long_as_the_pdb_needs(k8s_client, namespace, kwok_nodes, pods_ready):
    """Core directly: timeout=0 is no limit (it used to evict nothing and report success)."""
    import threading

    from kubernetes import client

    pool = {"pool": namespace}
    node_a, node_b = kwok_nodes(2, labels=pool)
    core = client.CoreV1Api(k8s_client)
    core.patch_node(node_b, {"spec": {"unschedulable": True}})  # everything on node_a first
    client.AppsV1Api(k8s_client).create_namespaced_deployment(namespace, deployment("db", 2, pool))
    pods_ready(namespace, "app=db", 2, node=node_a)
    create_pdb(k8s_client, namespace, "db", min_available=2, wait_healthy=2)
    core.patch_node(node_b, {"spec": {"unschedulable": False}})

    outcome: dict = {}
    drainer = NodeDrainer(k8s_client, node_a, DrainOptions(timeout=0, backoff_max=1))
    thread = threading.Thread(target=lambda: outcome.update(result=drainer.drain()), daemon=True)
    thread.start()
    time.sleep(4)  # far past what a broken "0" did (return at once)
    assert thread.is_alive(), f"the drain returned although the PDB allows nothing: {outcome}"
    # The PDB relents: one disruption at a time, each once the replacement is Ready on node_b.
    client.PolicyV1Api(k8s_client).patch_namespaced_pod_disruption_budget(
        "db", namespace, {"spec": {"minAvailable": 1}})
    thread.join(timeout=120)
    assert not thread.is_alive(), "the drain did not finish once the PDB allowed evictions"
    result = outcome["result"]
    assert len(result["evicted"]) == 2 and pod_uids(k8s_client, namespace, node_a) == set()
    assert all(p["outcome"] == "evicted" and p["attempts"] >= 2 for p in result["pods"])
    assert all(p["blocked_by"] == [f"{namespace}/db"] for p in result["pods"])


def test_skip_wait_for_delete_timeout_with_pods_that_never_finish_deleting(
    k8s_client, kubeconfig, namespace, kwok_nodes, pods_ready
):
    """A finalizer keeps a pod Terminating, as on a node that is down: not waited for past the option."""
    from kubernetes import client

    pool = {"pool": namespace}
    (node,) = kwok_nodes(1, labels=pool)
    core = client.CoreV1Api(k8s_client)
    client.AppsV1Api(k8s_client).create_namespaced_deployment(namespace, deployment("held", 2, pool))
    stuck, evicted = pods_ready(namespace, "app=held", 2)
    hold = {"metadata": {"finalizers": ["bmk8s.test/hold"]}}
    try:
        for pod in (stuck, evicted):
            core.patch_namespaced_pod(pod.metadata.name, namespace, hold)
        core.delete_namespaced_pod(stuck.metadata.name, namespace, grace_period_seconds=0)
        pods_ready(namespace, "app=held", 2)  # EVICTED and a replacement of STUCK
        time.sleep(3)  # STUCK's deletionTimestamp is now more than 2 s old

        result = run_module({"name": node, "kubeconfig": kubeconfig, "skip_wait_for_delete_timeout": 2,
                             "timeout": 60, "wait_timeout": 60})
        assert not result.get("failed"), result.get("msg")
        pods = by_name(result)
        assert pods[stuck.metadata.name]["action"] == "skip"
        assert "skip_wait_for_delete_timeout" in pods[stuck.metadata.name]["reason"]
        assert f"{namespace}/{stuck.metadata.name}" in result["left_alone"]
        held = pods[evicted.metadata.name]
        assert held["outcome"] == "evicted" and held["gone_after"] is None and "not waited for" in held["message"]
        replacement = [p for n, p in pods.items() if n not in (stuck.metadata.name, evicted.metadata.name)]
        assert len(replacement) == 1 and replacement[0]["gone_after"] is not None
        assert pod_uids(k8s_client, namespace, node) == {stuck.metadata.uid, evicted.metadata.uid}

        # Without the option the same pods fail the drain at wait_timeout, named.
        waited = run_module({"name": node, "kubeconfig": kubeconfig, "wait_timeout": 3})
        assert waited.get("failed")
        assert waited["msg"].startswith(f"pods still present on {node} 3s after eviction: ")
        assert stuck.metadata.name in waited["msg"] and evicted.metadata.name in waited["msg"]
    finally:
        for pod in (stuck, evicted):
            with contextlib.suppress(client.exceptions.ApiException):
                core.patch_namespaced_pod(pod.metadata.name, namespace, {"metadata": {"finalizers": None}})


def test_pod_selector_drains_only_the_selected_pods(k8s_client, kubeconfig, namespace, kwok_nodes, pods_ready):
    from kubernetes import client

    pool = {"pool": namespace}
    (node,) = kwok_nodes(1, labels=pool)
    apps = client.AppsV1Api(k8s_client)
    apps.create_namespaced_deployment(namespace, deployment("web", 2, pool))
    apps.create_namespaced_deployment(namespace, deployment("db", 1, pool))
    web = pods_ready(namespace, "app=web", 2)
    (db,) = pods_ready(namespace, "app=db", 1)

    result = run_module({"name": node, "kubeconfig": kubeconfig, "pod_selector": "app=web", "timeout": 60})
    assert not result.get("failed"), result.get("msg")
    assert sorted(result["evicted"]) == sorted(f"{namespace}/{p.metadata.name}" for p in web)
    assert sorted(by_name(result)) == sorted(p.metadata.name for p in web)  # db is not looked at
    assert pod_uids(k8s_client, namespace, node) == {db.metadata.uid}
    assert unschedulable(k8s_client, node)

    bad = run_module({"name": node, "kubeconfig": kubeconfig, "pod_selector": "app in (web"})
    assert bad.get("failed") and bad["msg"].startswith("pod_selector: 'app in (web' is not a label selector")
    assert "Fix: write it as kubectl's --selector" in bad["msg"] and "Traceback" not in json.dumps(bad)
    empty = run_module({"name": node, "kubeconfig": kubeconfig, "pod_selector": " "})
    assert empty.get("failed") and empty["msg"].startswith("pod_selector is empty")
