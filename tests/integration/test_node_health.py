# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""baremetal.k8s.node_health against the real control plane with kwok nodes.

kwok plays the kubelets: it keeps its nodes Ready and renews their Leases in
kube-node-lease (every 10 s, even after its annotation is removed, so a kwok
node cannot play dead). A dead kubelet is a Node nobody manages whose Ready
condition is patched to Unknown and whose Lease carries a renewTime in the
past; a stale heartbeat is the same with Ready left True (the node lifecycle
controller flips it only after its grace period).
Members without a Node, cordons with and without our annotation and a pressure
condition complete the picture. The module runs for real through ``ansible
localhost -m``; one case drives the core through ``read_cluster`` directly.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import time

import pytest
import yaml
from ansible_collections.baremetal.k8s.plugins.module_utils.k8s_client import api_client
from ansible_collections.baremetal.k8s.plugins.module_utils.node_health import (
    CORDON_REASON_ANNOTATION,
    CORDONED_BY_ANNOTATION,
    LEASE_NAMESPACE,
    assess,
    read_cluster,
)
from ansible_collections.baremetal.k8s.plugins.module_utils.remediation import (
    Policy,
    node_from_dict,
    plan_remediation,
)
from fleet_samples import BIN, module_env

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_module(args: dict, check: bool = False) -> dict:
    env = module_env()
    cmd = [os.path.join(BIN, "ansible"), "localhost", "-i", "localhost,", "-c", "local", "-m",
           "baremetal.k8s.node_health", "-a", json.dumps(args), *(["--check"] if check else [])]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    try:
        return json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except (ValueError, KeyError, IndexError):
        pytest.fail(f"ansible rc={proc.returncode}, unparsable output:\n{proc.stdout}\n{proc.stderr}")


def micro(moment: datetime.datetime) -> str:
    """A MicroTime as the API writes it (renewTime)."""
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def seconds(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def wait_lease(coord, name: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = coord.read_namespaced_lease(name, LEASE_NAMESPACE)
            if found.spec and found.spec.renew_time:
                return found
        except Exception as exc:  # 404 until kwok creates it
            if getattr(exc, "status", None) != 404:
                raise
        if time.monotonic() > deadline:
            raise TimeoutError(f"no renewed Lease {LEASE_NAMESPACE}/{name} after {timeout:.0f}s")
        time.sleep(0.2)


def dead_node(core, coord, name: str, *, ready: str, heartbeat_age: float, ready_age: float = 0.0):
    """A Node whose kubelet is gone: no kwok behind it (kwok renews the Lease of every node it ever managed, so
    a kwok node cannot play dead), its Ready condition written as the node lifecycle controller would, and its
    Lease with the last renewTime the kubelet wrote."""
    now = utcnow()
    core.create_node({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}})
    since = seconds(now - datetime.timedelta(seconds=ready_age))
    condition = {"type": "Ready", "status": ready,
                 "reason": "KubeletReady" if ready == "True" else "NodeStatusUnknown",
                 "message": "kubelet is posting ready status" if ready == "True" else
                 "Kubelet stopped posting node status.", "lastHeartbeatTime": since, "lastTransitionTime": since}
    core.patch_node_status(name, {"status": {"conditions": [condition], "nodeInfo": {
        "kubeletVersion": "v1.36.3", "machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": "",
        "osImage": "", "containerRuntimeVersion": "", "kubeProxyVersion": "", "operatingSystem": "linux",
        "architecture": "amd64"}}})
    renew = micro(now - datetime.timedelta(seconds=heartbeat_age))
    coord.create_namespaced_lease(LEASE_NAMESPACE, {"metadata": {"name": name}, "spec": {
        "holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": renew}})


@pytest.fixture
def apis(k8s_client):
    from kubernetes import client

    return client.CoreV1Api(k8s_client), client.CoordinationV1Api(k8s_client)


@pytest.fixture
def dead_nodes(apis):
    """Factory: ``dead_nodes(name, ready=..., heartbeat_age=..., ready_age=...)``; Nodes and Leases deleted after."""
    from kubernetes.client.exceptions import ApiException

    core, coord = apis
    created = []

    def make(name, **kw):
        created.append(name)
        dead_node(core, coord, name, **kw)
        return name

    yield make
    for name in created:
        for delete in (core.delete_node, lambda n: coord.delete_namespaced_lease(n, LEASE_NAMESPACE)):
            try:
                delete(name)
            except ApiException as exc:
                if exc.status != 404:
                    raise


def test_health_of_a_cluster_through_the_module(kubeconfig, apis, kwok_nodes, dead_nodes):
    core, coord = apis
    healthy, cordoned_ours, cordoned_other, pressured = kwok_nodes(4)
    prefix = healthy.rsplit("-", 1)[0]
    kubelet_dead = dead_nodes(prefix + "-kubelet-dead", ready="Unknown", heartbeat_age=300, ready_age=120)
    host_gone = dead_nodes(prefix + "-host-gone", ready="Unknown", heartbeat_age=600, ready_age=500)
    stale = dead_nodes(prefix + "-stale", ready="True", heartbeat_age=120, ready_age=900)
    names = [healthy, kubelet_dead, host_gone, stale, cordoned_ours, cordoned_other, pressured]
    ghost, newbie = prefix + "-ghost", prefix + "-newbie"
    for name in (healthy, cordoned_ours, cordoned_other, pressured):
        wait_lease(coord, name)
    core.patch_node(cordoned_ours, {"spec": {"unschedulable": True}, "metadata": {"annotations": {
        CORDONED_BY_ANNOTATION: "recovery", CORDON_REASON_ANNOTATION: "drain and redeploy"}}})
    core.patch_node(cordoned_other, {"spec": {"unschedulable": True}})
    pressure_since = seconds(utcnow() - datetime.timedelta(seconds=30))
    core.patch_node_status(pressured, {"status": {"conditions": [
        {"type": "MemoryPressure", "status": "True", "reason": "KubeletHasInsufficientMemory",
         "message": "memory available below the eviction threshold", "lastHeartbeatTime": pressure_since,
         "lastTransitionTime": pressure_since}]}})

    members = [{"name": n, "roles": ["worker"]} for n in names]
    members[0]["probes"] = {"reachable": True, "containerd_active": "active", "kubelet_active": "active"}
    members[1]["probes"] = {"reachable": True, "containerd_active": "active", "kubelet_active": "failed"}
    members[2]["probes"] = {"reachable": False}
    members += [{"name": ghost, "roles": ["worker"]},
                {"name": newbie, "roles": ["worker"], "expected_since": seconds(utcnow())}]
    args = {"kubeconfig": kubeconfig, "members": members, "node_startup_timeout": 600}
    result = run_module(args)
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is False
    by_name = {v["name"]: v for v in result["nodes"]}
    assert [v["name"] for v in result["nodes"]] == [m["name"] for m in members]

    v = by_name[healthy]
    assert v["healthy"] and v["category"] == "healthy" and v["ready"] is True and v["reasons"] == []
    assert v["heartbeat"]["stale"] is False and v["heartbeat"]["age"] < 40
    assert v["kubelet_version"] and v["cordoned"] is False

    v = by_name[kubelet_dead]
    assert v["category"] == "kubelet_down", v
    assert v["reasons"] == ["NodeStatusUnknown", "HeartbeatStale", "KubeletInactive"]
    assert v["ready_status"] == "Unknown" and v["heartbeat"]["age"] >= 300
    assert v["unhealthy_since"] is not None and v["unhealthy_for"] >= 250  # stale since renewTime + 40 s

    v = by_name[host_gone]
    assert v["category"] == "host_unreachable" and "HostUnreachable" in v["reasons"], v
    assert "the host or the network to it is gone" in v["summary"]

    v = by_name[stale]
    assert v["category"] == "heartbeat_stale" and v["ready"] is True and v["reasons"] == ["HeartbeatStale"], v

    v = by_name[cordoned_ours]
    assert v["healthy"] and v["category"] == "cordoned"
    assert (v["cordoned_by"], v["cordon_reason"]) == ("recovery", "drain and redeploy")
    v = by_name[cordoned_other]
    assert v["healthy"] and v["category"] == "cordoned" and v["cordoned_by"] == "unknown"

    v = by_name[pressured]
    assert v["category"] == "pressure" and v["reasons"] == ["MemoryPressure"] and v["pressure"] == ["MemoryPressure"]
    assert v["unhealthy_since"] == pressure_since

    v = by_name[ghost]
    assert v["category"] == "not_registered" and not v["registered"] and v["reasons"] == ["NotRegistered"]
    v = by_name[newbie]
    assert v["category"] == "starting" and v["expected_for"] < 60

    assert result["counts"]["total"] == 9 and result["counts"]["healthy"] == 3
    assert result["counts"]["by_category"] == {
        "healthy": 1, "cordoned": 2, "kubelet_down": 1, "host_unreachable": 1, "heartbeat_stale": 1,
        "pressure": 1, "not_registered": 1, "starting": 1}
    assert set(result["unhealthy"]) == {kubelet_dead, host_gone, stale, pressured, ghost, newbie}
    assert not set(names) & set(result["extra_nodes"])

    # Check mode reads the same (the module changes nothing either way).
    checked = run_module(args, check=True)
    assert not checked.get("failed") and checked["changed"] is False
    categories = {v["name"]: v["category"] for v in result["nodes"]}
    assert {v["name"]: v["category"] for v in checked["nodes"]} == categories

    # The records feed the remediation policy: with a grace period of 60 s only the long-dead ones go,
    # one at a time (max_concurrent 1), longest unhealthy first.
    records = [node_from_dict(dict(v["record"], cluster="c1", failure_domain="eu/dc1/r1/a01",
                                   state="provisioning" if v["category"] == "starting" else "active"),
                              "nodes[%d]" % i) for i, v in enumerate(result["nodes"])]
    plan = plan_remediation(records, Policy(grace_period=60, max_unhealthy="100%"), now=result["now"],
                            clusters=["c1"])
    assert [e.node for e in plan.remediate] == [host_gone]
    assert kubelet_dead in {e.node for e in plan.deferred}
    assert newbie in {e.node for e in plan.refused}


def test_core_reads_the_cluster_through_k8s_client(kubeconfig, apis, kwok_nodes):
    _core, coord = apis
    (name,) = kwok_nodes(1)
    wait_lease(coord, name)
    api = api_client(kubeconfig)
    try:
        nodes, leases = read_cluster(api, timeout=10)
    finally:
        api.close()
    assert name in {n["name"] for n in nodes} and name in {lease["name"] for lease in leases}
    report = assess([{"name": name}], nodes, leases, now=time.time())
    assert report.verdicts[0].healthy and report.verdicts[0].observed["heartbeat"]["renew_time"]


def test_bad_input_and_unreachable_api_server(kubeconfig, tmp_path):
    with open(kubeconfig, encoding="utf-8") as handle:
        config = yaml.safe_load(handle)
    config["clusters"][0]["cluster"]["server"] = config["clusters"][0]["cluster"]["server"].rsplit(":", 1)[0] + ":1"
    dead = tmp_path / "dead.kubeconfig"
    dead.write_text(yaml.safe_dump(config))
    result = run_module({"kubeconfig": str(dead), "members": [{"name": "a"}], "timeout": 2})
    assert result["failed"] and "api server: nodes: cannot reach the API server" in result["msg"]
    assert "Fix: check that the API server runs" in result["msg"]
    result = run_module({"kubeconfig": kubeconfig, "members": [{"name": "a"}, {"roles": ["worker"]}]})
    assert result["failed"] and result["msg"].startswith("members[1].name: required field is missing. Fix: ")


def test_credentials_that_cannot_read_leases(kubeconfig, k8s_client, tmp_path):
    """RBAC that allows Nodes but not Leases: a clear error naming what to grant."""
    from kubernetes import client

    core, rbac = client.CoreV1Api(k8s_client), client.RbacAuthorizationV1Api(k8s_client)
    suffix = str(int(time.time() * 1000))[-8:]
    sa, role = "health-nodes-only-" + suffix, "bmk8s-health-nodes-only-" + suffix
    core.create_namespaced_service_account("default", {"metadata": {"name": sa}})
    rbac.create_cluster_role({"metadata": {"name": role},
                              "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}]})
    rbac.create_cluster_role_binding({"metadata": {"name": role}, "roleRef": {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": "default"}]})
    try:
        token = core.create_namespaced_service_account_token(sa, "default", {"spec": {"expirationSeconds": 600}})
        with open(kubeconfig, encoding="utf-8") as handle:
            cluster = yaml.safe_load(handle)["clusters"][0]["cluster"]
        result = run_module({"host": cluster["server"], "ca_cert": cluster["certificate-authority"],
                             "api_key": token.status.token, "members": [{"name": "a"}]})
        assert result["failed"], result
        assert "cannot list leases in kube-node-lease: the API server answered 403 Forbidden" in result["msg"]
        assert "Fix: grant list on coordination.k8s.io leases" in result["msg"]
    finally:
        rbac.delete_cluster_role_binding(role)
        rbac.delete_cluster_role(role)
        core.delete_namespaced_service_account(sa, "default")
