# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""L3: playbooks/site.yml turns the lab's 5 bare hosts into a kubeadm HA cluster, for real.

One bring-up for the whole file (about 5 minutes on 2 cores): 3 control planes
with stacked etcd behind the keepalived VIP, 2 workers, routed pod network over
the WireGuard mesh, CoreDNS and kube-proxy from the air-gap artifact set, which
is built from Go modules (tools/artifacts/build_artifacts.py) and served over
HTTP from this machine to the hosts, as an internal mirror would be.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "unit"))
from fleet_samples import unwrap  # noqa: E402

pytestmark = [pytest.mark.lab]


@pytest.fixture(scope="module")
def inventory(lab):
    graph = subprocess.run(["ansible-inventory", "-i", lab.inventory, "--list"], capture_output=True, text=True,
                           check=True)
    return unwrap(json.loads(graph.stdout))["_meta"]["hostvars"]


@pytest.fixture(scope="module")
def nodes(lab, first_run):
    return json.loads(lab.kubectl(lab.hosts()[0], "get nodes -o json").stdout)["items"]


def test_site_converges(lab, first_run):
    assert first_run.rc == 0, "site.yml failed"
    assert sorted(first_run.recap) == lab.hosts()
    assert all(c["failed"] == 0 and c["unreachable"] == 0 for c in first_run.recap.values())
    assert "kubectl get nodes" in first_run.output.lower() or "Print kubectl get nodes" in first_run.output


def test_all_nodes_ready(lab, nodes):
    assert sorted(n["metadata"]["name"] for n in nodes) == lab.hosts()
    for node in nodes:
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True", node["metadata"]["name"]


def test_three_etcd_members(lab, first_run):
    assert sorted(lab.etcd_members(lab.hosts()[0])) == lab.hosts()[:3]


def test_pod_prefixes_agree_everywhere(lab, nodes, inventory):
    """Inventory allocation == Node spec.podCIDR == CNI config == WireGuard route on the other nodes."""
    spec = {n["metadata"]["name"]: n["spec"].get("podCIDR") for n in nodes}
    for host in lab.hosts():
        allocated = inventory[host]["pod_cidr"]
        assert spec[host] == allocated, host
        conf = json.loads(lab.sh(host, "cat /etc/cni/net.d/10-bmk8s-routed.conflist").stdout)
        assert conf["plugins"][0]["ipam"]["ranges"][0][0]["subnet"] == allocated, host
        gateway = str(ipaddress.ip_network(allocated).network_address + 1)
        for other in lab.hosts():
            if other != host:
                route = lab.sh(other, "ip -o route get %s" % gateway).stdout
                assert " dev wg0 " in route, (other, allocated, route)


SERVER = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo, namespace: default}
spec:
  replicas: 2
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      topologySpreadConstraints:
        - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule,
           labelSelector: {matchLabels: {app: echo}}}
      containers:
        - name: etcd
          image: %(etcd)s
          imagePullPolicy: Never
          # A cluster token per pod gives each pod its own member id, so the client can tell them apart.
          command: [etcd, --name, $(POD_NAME), --initial-cluster-token, $(POD_NAME), --data-dir, /tmp/etcd,
                    --listen-client-urls, http://0.0.0.0:2379, --advertise-client-urls, http://$(POD_IP):2379]
          env:
            - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
            - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
          readinessProbe: {tcpSocket: {port: 2379}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: default}
spec:
  selector: {app: echo}
  ports: [{port: 2379}]
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: default}
spec:
  nodeName: %(client_node)s
  tolerations: [{operator: Exists}]
  containers:
    - name: etcd
      image: %(etcd)s
      imagePullPolicy: Never
      command: [etcd, --data-dir, /tmp/etcd]
"""


def test_pod_reaches_pods_on_both_workers_by_service_name(lab, first_run, artifacts):
    """etcd serves as the echo server and etcdctl as the client: both are in the artifact set's etcd image."""
    first = lab.hosts()[0]
    # Workers hold only the images they run; load the test's image as a user would a workload image.
    for worker in lab.hosts()[3:]:
        loaded = lab.sh(worker, "curl -fsS -o /tmp/etcd.tar %s/images/etcd.tar && "
                                "ctr -n k8s.io images import /tmp/etcd.tar && rm /tmp/etcd.tar" % artifacts)
        assert loaded.returncode == 0, loaded.stderr
    pods = json.loads(lab.kubectl(first, "-n kube-system get pods -o json").stdout)["items"]
    etcd_image = next(c["image"] for p in pods for c in p["spec"]["containers"] if c["name"] == "etcd")
    manifest = SERVER % {"etcd": etcd_image, "client_node": first}
    result = lab.sh(first, "cat > /tmp/echo.yaml <<'EOF'\n%s\nEOF\n"
                           "kubectl --kubeconfig /etc/kubernetes/admin.conf apply -f /tmp/echo.yaml" % manifest)
    assert result.returncode == 0, result.stderr
    lab.kubectl(first, "rollout status deployment/echo --timeout=120s")
    lab.kubectl(first, "wait --for=condition=Ready pod/client --timeout=120s")
    pods = json.loads(lab.kubectl(first, "get pods -l app=echo -o json").stdout)["items"]
    assert sorted(p["spec"]["nodeName"] for p in pods) == lab.hosts()[3:]
    seen = set()
    for _attempt in range(20):
        # A new connection each time: kube-proxy picks a backend at random.
        out = lab.kubectl(first, "exec client -- etcdctl --endpoints http://echo.default.svc.cluster.local:2379",
                          "endpoint status -w json").stdout
        seen.add(json.loads(out)[0]["Status"]["header"]["member_id"])
        if len(seen) == 2:
            break
    assert len(seen) == 2, "the service answered from one pod only: %s" % seen


def test_second_run_changes_nothing(lab, first_run):
    started = time.monotonic()
    run = lab.playbook("site.yml")
    print("site.yml no-op run: %.0f s" % (time.monotonic() - started))
    assert run.rc == 0
    assert run.changed_hosts() == {}, "a second run changed something"


def test_check_mode_on_the_converged_cluster_reports_no_change(lab, first_run):
    run = lab.playbook("site.yml", "--check")
    assert run.rc == 0
    assert run.changed_hosts() == {}, "--check on a converged cluster reports changes"


def test_api_survives_a_frozen_control_plane(lab, first_run):
    first, second = lab.hosts()[0], lab.hosts()[1]
    subprocess.run(["docker", "pause", first], check=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            # admin.conf points at the VIP: HAProxy sends us to a live control plane.
            result = lab.kubectl(second, "--request-timeout=5s create configmap ha-probe-%d" % int(time.time()),
                                 check=False)
            if result.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(2)
        assert result.returncode == 0, result.stderr
        assert lab.kubectl(second, "get nodes --request-timeout=5s").returncode == 0
    finally:
        subprocess.run(["docker", "unpause", first], check=True)
