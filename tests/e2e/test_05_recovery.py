# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""L3: playbooks/recover.yml brings broken nodes back without a person, and refuses what is unsafe.

On the cluster the session built (test_02's echo Deployment runs on both workers, its client pod on the
first control plane), in order:

- a healthy cluster: recover.yml changes nothing;
- a worker's kubelet stopped: while it is within its grace period, protected, behind a held lock or
  past max_unhealthy, recover.yml changes nothing and says why; a run killed (SIGKILL) in the middle of
  the drain is finished by the next run, which brings the worker back Ready and uncordoned with its pod
  /24 and WireGuard address, while the echo Service, behind a PodDisruptionBudget, is probed the whole time;
- a worker wiped (its container and volumes destroyed, recreated empty with the same name and address):
  reprovisioned from bare, same pod /24 and WireGuard address;
- a control plane's kubelet and etcd stopped: recovered, 3 voting etcd members, all healthy;
- a worker whose host stays stopped (it does not answer): fenced through the lab's Redfish BMC, marked
  out of service and failed, and replaced by the spare host, which placement chooses and recover.yml
  builds from bare; the next inventory has the spare in the worker group and the old server failed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import yaml

pytestmark = [pytest.mark.lab]

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAB = os.path.join(REPO, "lab", "lab.py")
# Short waits for the test; production keeps the defaults (playbooks/vars/recover.yml, docs/recovery.md).
POLICY = {"grace_period": 20, "halt_cooldown": 0, "max_unhealthy": 1}
PDB = """
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: echo, namespace: default}
spec:
  maxUnavailable: 1
  selector: {matchLabels: {app: echo}}
"""


class ServiceProbe:
    """Requests to the echo Service's ClusterIP from the client pod, one after another, until stopped."""

    def __init__(self, lab):
        self.lab = lab
        self.first = lab.hosts()[0]
        self.ip = lab.kubectl(self.first, "get service echo -o jsonpath={.spec.clusterIP}").stdout.strip()
        self.ok = self.failed = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stopping.is_set():
            result = self.lab.sh(self.first, "kubectl --kubeconfig /etc/kubernetes/admin.conf exec client --"
                                             " etcdctl --endpoints http://%s:2379 --dial-timeout 2s"
                                             " --command-timeout 2s endpoint health" % self.ip)
            if result.returncode == 0:
                self.ok += 1
            else:
                self.failed += 1
            time.sleep(0.5)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join(timeout=30)
        print("echo Service probe: %d failed of %d requests" % (self.failed, self.ok + self.failed), flush=True)


def wait_for(predicate, timeout, what, interval=2):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %d s waiting for %s" % (timeout, what))
        time.sleep(interval)


def ready(lab, name):
    result = lab.kubectl(lab.hosts()[0], "get node", name, "-o json", check=False)
    if result.returncode:
        return None
    conditions = json.loads(result.stdout)["status"].get("conditions", [])
    return next((c["status"] for c in conditions if c["type"] == "Ready"), None)


def node_identity(lab, name):
    """What must survive a recovery: the pod /24 on the Node and the WireGuard address on the host."""
    node = lab.node(name)
    wg = lab.sh(name, "ip -o -4 addr show dev wg0").stdout.split()
    return {"pod_cidr": node["spec"].get("podCIDR"), "wireguard": wg[3].split("/")[0] if len(wg) > 3 else None}


def summary(run):
    """The lines of the job's summary task."""
    return run.output.split("TASK [Summary]", 1)[-1].split("TASK [", 1)[0]


@pytest.fixture(scope="module")
def pdb(lab, first_run):
    lab.sh(lab.hosts()[0], "cat > /tmp/pdb.yaml <<'EOF'\n%s\nEOF\n"
                           "kubectl --kubeconfig /etc/kubernetes/admin.conf apply -f /tmp/pdb.yaml" % PDB)
    lab.kubectl(lab.hosts()[0], "rollout status deployment/echo --timeout=120s")


def test_a_healthy_cluster_changes_nothing(lab, first_run):
    run = lab.recover(policy=POLICY)
    assert run.rc == 0, run.output[-3000:]
    assert run.changed_hosts() == {}, run.changed_hosts()
    assert "nothing to do" in summary(run)
    check = lab.recover("--check", policy=POLICY)
    assert check.rc == 0 and check.changed_hosts() == {}


def test_a_stopped_kubelet_is_refused_while_unsafe_then_recovered_after_a_killed_run(lab, first_run, pdb, tmp_path):
    worker = lab.hosts()[4]
    before = node_identity(lab, worker)
    with ServiceProbe(lab) as probe:
        assert lab.sh(worker, "systemctl stop kubelet").returncode == 0
        wait_for(lambda: ready(lab, worker) in ("False", "Unknown"), 180, "%s NotReady" % worker)
        refuse_within_the_grace_period(lab, worker)
        refuse_a_protected_server(lab, worker, tmp_path)
        refuse_past_max_unhealthy(lab, worker)
        refuse_while_another_run_holds_the_lock(lab, worker)
        time.sleep(POLICY["grace_period"])
        kill_a_run_in_its_drain(lab, worker)
        started = time.monotonic()
        run = lab.recover(policy=POLICY)
        print("recover.yml resumed run: %.0f s" % (time.monotonic() - started), flush=True)
        assert run.rc == 0, run.output[-5000:]
        assert "recovered %s" % worker in summary(run)
        assert ready(lab, worker) == "True"
    node = lab.node(worker)
    assert not node["spec"].get("unschedulable")
    assert not any(key.startswith("baremetal.k8s/cordon") for key in node["metadata"].get("annotations", {}))
    assert node_identity(lab, worker) == before
    entry = lab.recovery_state()["nodes"][worker]
    assert entry["status"] == "done" and entry.get("last_outcome") == "recovered", entry
    assert not lab.recovery_state().get("lock")
    assert probe.ok > 0 and probe.failed <= max(3, (probe.ok + probe.failed) // 10), (probe.ok, probe.failed)
    again = lab.recover(policy=POLICY)
    assert again.rc == 0 and again.changed_hosts() == {}, again.changed_hosts()


def refuse_within_the_grace_period(lab, worker):
    run = lab.recover(policy=dict(POLICY, grace_period=3600))
    assert run.rc == 0, run.output[-3000:]
    assert "waiting %s" % worker in summary(run)
    assert_unchanged_node(lab, run, worker)


def refuse_a_protected_server(lab, worker, tmp_path):
    with open(lab.fleet_file, encoding="utf-8") as handle:
        original = handle.read()
    fleet = yaml.safe_load(original)
    for server in fleet["servers"]:
        if server["name"] == worker:
            server["protection"] = {"deletion": True, "reason": "e2e: holds the only copy"}
    try:
        with open(lab.fleet_file, "w", encoding="utf-8") as handle:
            json.dump(fleet, handle)  # JSON is YAML
        run = lab.recover(policy=dict(POLICY, grace_period=0))
    finally:
        with open(lab.fleet_file, "w", encoding="utf-8") as handle:
            handle.write(original)
    assert run.rc == 0, run.output[-3000:]
    assert "refused %s" % worker in summary(run) and "e2e: holds the only copy" in summary(run)
    assert_unchanged_node(lab, run, worker)


def refuse_past_max_unhealthy(lab, worker):
    run = lab.recover(policy=dict(POLICY, grace_period=0, max_unhealthy=0))
    assert run.rc != 0, "a halted recovery must fail the job: it needs a person"
    assert "halted" in summary(run) and "max_unhealthy 0" in summary(run)
    # The one write: the halt, recorded in the recovery state (storm recovery counts from when it clears).
    assert lab.recovery_state()["halts"][lab.name]["active"] is True
    assert run.changed_hosts() == {"localhost": 1}, run.changed_hosts()
    assert not lab.node(worker)["spec"].get("unschedulable")


def refuse_while_another_run_holds_the_lock(lab, worker):
    take = subprocess.run(["ansible", "localhost", "-m", "baremetal.k8s.recovery_state", "-a",
                           "fleet=%s action=lock holder=e2e-other-run ttl=300" % lab.fleet_file],
                          cwd=REPO, capture_output=True, text=True, check=False)
    assert take.returncode == 0, take.stdout + take.stderr
    try:
        run = lab.recover(policy=dict(POLICY, grace_period=0))
    finally:
        subprocess.run(["ansible", "localhost", "-m", "baremetal.k8s.recovery_state", "-a",
                        "fleet=%s action=unlock holder=e2e-other-run" % lab.fleet_file],
                       cwd=REPO, capture_output=True, text=True, check=True)
    assert run.rc != 0
    assert "e2e-other-run" in run.output and "Nothing was changed" in run.output
    assert set(run.recap) == {"localhost"}, "a refused run went on to the hosts"
    assert_unchanged_node(lab, run, worker)


def kill_a_run_in_its_drain(lab, worker):
    """recover.yml started, then SIGKILLed once it records the drain; its lock (TTL 40 s) then runs out."""
    process = lab.start_playbook("recover.yml", *lab.recover_args(POLICY), "-e", "recover_lock_ttl=40")
    seen = []
    for line in process.stdout:
        seen.append(line)
        if "step drain" in line:
            time.sleep(2)  # in the drain itself
            break
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    print("".join(seen[-40:]), flush=True)
    entry = lab.recovery_state()["nodes"][worker]
    assert entry["step"] == "drain" and entry["status"] == "running", entry
    assert lab.node(worker)["spec"].get("unschedulable"), "the killed run had cordoned the node"
    expires = lab.recovery_state()["lock"]["expires"]
    time.sleep(max(0.0, expires - time.time()) + 1)


def assert_unchanged_node(lab, run, worker):
    assert run.changed_hosts() == {}, run.changed_hosts()
    assert not lab.node(worker)["spec"].get("unschedulable"), "a refused recovery cordoned %s" % worker


def load_echo_image(lab, worker, artifacts):
    """A host built from bare holds only the images it runs: load the echo workload's image as a user would."""
    loaded = lab.sh(worker, "curl -fsS -o /tmp/etcd.tar %s/images/etcd.tar && "
                            "ctr -n k8s.io images import /tmp/etcd.tar && rm /tmp/etcd.tar" % artifacts)
    assert loaded.returncode == 0, loaded.stderr


def recover_once_unhealthy(lab, node, case):
    """Wait until the API says NODE is NotReady and its grace period has passed, then run recover.yml (timed)."""
    wait_for(lambda: ready(lab, node) in ("False", "Unknown"), 180, "%s NotReady" % node)
    time.sleep(POLICY["grace_period"])
    started = time.monotonic()
    run = lab.recover(policy=POLICY)
    print("recover.yml, %s: %.0f s" % (case, time.monotonic() - started), flush=True)
    assert run.rc == 0, run.output[-5000:]
    return run


def test_a_wiped_worker_is_reprovisioned_from_bare(lab, first_run, artifacts):
    worker = lab.hosts()[3]
    before = node_identity(lab, worker)
    subprocess.run(["docker", "rm", "-f", "-v", worker], check=True, capture_output=True)
    hosts = len(lab.hosts()) + len(lab.spares())
    subprocess.run([sys.executable, LAB, "up", "--name", lab.name, "--hosts", str(hosts)], check=True)
    assert lab.sh(worker, "test -e /etc/kubernetes").returncode != 0, "the host is not empty"
    run = recover_once_unhealthy(lab, worker, "wiped worker")
    assert "recovered %s" % worker in summary(run)
    assert ready(lab, worker) == "True"
    assert node_identity(lab, worker) == before
    load_echo_image(lab, worker, artifacts)


def test_a_control_plane_with_kubelet_and_etcd_stopped_is_recovered(lab, first_run):
    first, third = lab.hosts()[0], lab.hosts()[2]
    assert lab.sh(third, "systemctl stop kubelet && crictl stop $(crictl ps -q --name '^etcd$')").returncode == 0
    run = recover_once_unhealthy(lab, third, "control plane")
    assert "recovered %s" % third in summary(run)
    assert ready(lab, third) == "True"
    members = wait_for(lambda: sorted(lab.etcd_members(first)) == sorted(lab.hosts()[:3]) and lab.etcd_members(first),
                       120, "3 etcd members")
    assert sorted(members) == sorted(lab.hosts()[:3])


def test_a_worker_whose_host_stays_down_is_fenced_and_replaced_by_the_spare(lab, first_run, artifacts, bmc):
    worker, spare = lab.hosts()[4], lab.spares()[0]
    subprocess.run(["docker", "stop", worker], check=True, capture_output=True)
    run = recover_once_unhealthy(lab, worker, "replacement")
    assert "replaced %s" % worker in summary(run) and "by %s" % spare in summary(run)
    assert "recovered %s" % spare in summary(run)
    assert "PowerForceOff" in run.output or "Power the server off" in run.output
    assert ready(lab, spare) == "True"
    listed = json.loads(lab.kubectl(lab.hosts()[0], "get nodes -o json").stdout)["items"]
    nodes = [n["metadata"]["name"] for n in listed]
    assert worker not in nodes
    inventory = lab.inventory_list()
    assert sorted(inventory["cluster_%s_worker" % lab.name]["hosts"]) == sorted([lab.hosts()[3], spare])
    assert inventory["_meta"]["hostvars"][worker]["fleet_state"] == "failed"
    assert lab.recovery_state()["failed"][worker]["replaced_by"] == spare
    # The BMC powered the old server off: it stays off (docker reports it stopped).
    status = subprocess.run(["docker", "inspect", "-f", "{{.State.Running}}", worker], capture_output=True, text=True,
                            check=False)
    assert status.stdout.strip() == "false"
    again = lab.recover(policy=POLICY)
    assert again.rc == 0 and again.changed_hosts() == {}, again.changed_hosts()
