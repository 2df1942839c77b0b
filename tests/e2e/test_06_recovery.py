# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""L3: playbooks/recover.yml brings broken nodes back without a person, and refuses what is unsafe.

On the cluster the session built (test_02's echo Deployment runs on both workers, its client pod on the
first control plane), in order:

- a healthy cluster: recover.yml changes nothing;
- both workers' kubelets stopped with max_unhealthy 1: halted, nothing changed; one comes back;
- a worker's kubelet stopped: while it is within its grace period, protected or behind a held lock,
  recover.yml changes nothing and says why; a run killed (SIGKILL) in the middle of
  the drain is finished by the next run, which brings the worker back Ready and uncordoned with its pod
  /24 and WireGuard address, while the echo Service, behind a PodDisruptionBudget, is probed the whole time;
- a worker wiped (its container and volumes destroyed, recreated empty with the same name and address):
  reprovisioned from bare, same pod /24 and WireGuard address;
- a control plane's kubelet stopped while another control plane's etcd is down (that one protected):
  refused, removing its healthy member would lose quorum; then with its etcd stopped too and the other's
  back: recovered, 3 voting etcd members, all healthy;
- a worker put in maintenance (maintenance.yml with a reason): drained and held with the reason on the
  Node; recover.yml leaves it alone while its kubelet is down; back, it is verified and uncordoned;
- a worker whose host stays stopped (it does not answer): fenced through the lab's Redfish BMC, marked
  out of service and failed, and replaced by the spare host, which placement chooses; that run is
  killed (SIGKILL) right after the spare is chosen, and the next run builds the spare from bare from
  its recorded step; the next inventory has the spare in the worker group and the old server failed.
"""

from __future__ import annotations

import contextlib
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


def test_a_stopped_kubelet_is_refused_while_unsafe_then_recovered_after_a_killed_run(lab, first_run, pdb):
    worker = lab.hosts()[4]
    before = node_identity(lab, worker)
    refuse_two_workers_down_past_max_unhealthy(lab, worker, lab.hosts()[3])
    with ServiceProbe(lab) as probe:
        refuse_within_the_grace_period(lab, worker)
        refuse_a_protected_server(lab, worker)
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


@contextlib.contextmanager
def protected(lab, name, reason):
    """The fleet file with deletion protection on server NAME, for the block's duration."""
    with open(lab.fleet_file, encoding="utf-8") as handle:
        original = handle.read()
    fleet = yaml.safe_load(original)
    for server in fleet["servers"]:
        if server["name"] == name:
            server["protection"] = {"deletion": True, "reason": reason}
    try:
        with open(lab.fleet_file, "w", encoding="utf-8") as handle:
            json.dump(fleet, handle)  # JSON is YAML
        yield
    finally:
        with open(lab.fleet_file, "w", encoding="utf-8") as handle:
            handle.write(original)


def refuse_a_protected_server(lab, worker):
    with protected(lab, worker, "e2e: holds the only copy"):
        run = lab.recover(policy=dict(POLICY, grace_period=0))
    assert run.rc == 0, run.output[-3000:]
    assert "refused %s" % worker in summary(run) and "e2e: holds the only copy" in summary(run)
    assert_unchanged_node(lab, run, worker)


def refuse_two_workers_down_past_max_unhealthy(lab, worker, other):
    """Both workers' kubelets stopped, max_unhealthy 1: halted, nothing done; then OTHER's kubelet comes back
    (WORKER's stays stopped for the rest of the test)."""
    for host in (worker, other):
        assert lab.sh(host, "systemctl stop kubelet").returncode == 0
    for host in (worker, other):
        wait_for(lambda host=host: ready(lab, host) in ("False", "Unknown"), 180, "%s NotReady" % host)
    run = lab.recover(policy=dict(POLICY, grace_period=0))
    assert run.rc != 0, "a halted recovery must fail the job: it needs a person"
    assert "halted" in summary(run) and "max_unhealthy 1" in summary(run)
    # The one write: the halt, recorded in the recovery state (storm recovery counts from when it clears).
    assert lab.recovery_state()["halts"][lab.name]["active"] is True
    assert run.changed_hosts() == {"localhost": 1}, run.changed_hosts()
    for host in (worker, other):
        assert not lab.node(host)["spec"].get("unschedulable")
    assert lab.sh(other, "systemctl start kubelet").returncode == 0
    wait_for(lambda: ready(lab, other) == "True", 180, "%s Ready again" % other)
    # One node unhealthy again: the halt clears, and that record is this run's only change.
    cleared = lab.recover(policy=dict(POLICY, grace_period=3600))
    assert cleared.rc == 0, cleared.output[-3000:]
    assert lab.recovery_state()["halts"][lab.name]["active"] is False
    assert cleared.changed_hosts() == {"localhost": 1}, cleared.changed_hosts()
    wait_for(lambda: echo_ready_on(lab, other), 120, "an echo pod Ready on %s" % other)


def echo_ready_on(lab, host):
    """Whether an echo pod on HOST is Ready (an endpoint of the Service)."""
    result = lab.kubectl(lab.hosts()[0], "get pods -l app=echo --field-selector spec.nodeName=%s -o jsonpath="
                                         "'{.items[*].status.conditions[?(@.type==\"Ready\")].status}'" % host,
                         check=False)
    return "True" in result.stdout


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
    first, second, third = lab.hosts()[:3]
    assert lab.sh(third, "systemctl stop kubelet").returncode == 0
    refuse_a_control_plane_whose_removal_loses_quorum(lab, second, third)
    assert lab.sh(third, "crictl stop $(crictl ps -q --name '^etcd$')").returncode == 0
    run = recover_once_unhealthy(lab, third, "control plane")
    assert "recovered %s" % third in summary(run)
    assert ready(lab, third) == "True"
    members = wait_for(lambda: sorted(lab.etcd_members(first)) == sorted(lab.hosts()[:3]) and lab.etcd_members(first),
                       120, "3 etcd members")
    assert sorted(members) == sorted(lab.hosts()[:3])


def etcd_healthy(lab, host):
    """Whether every etcd member answers, asked from HOST's etcd container (crictl, not the VIP)."""
    return lab.etcdctl(host, "endpoint health --cluster").returncode == 0


def refuse_a_control_plane_whose_removal_loses_quorum(lab, second, third):
    """THIRD's kubelet is stopped (its etcd member still healthy); SECOND's etcd is stopped and SECOND
    protected. Removing THIRD's healthy member would leave 1 healthy voter of 2: recover.yml refuses and
    changes nothing. Then SECOND's etcd comes back."""
    manifest = "/etc/kubernetes/manifests/etcd.yaml"
    assert lab.sh(second, "mv %s /etc/kubernetes/etcd.yaml.e2e" % manifest).returncode == 0
    try:
        wait_for(lambda: not etcd_healthy(lab, lab.hosts()[0]), 120, "etcd of %s stopped" % second)
        wait_for(lambda: ready(lab, third) in ("False", "Unknown"), 180, "%s NotReady" % third)
        time.sleep(POLICY["grace_period"])
        with protected(lab, second, "e2e: its etcd is being repaired"):
            run = lab.recover(policy=dict(POLICY, max_unhealthy=2))
        assert run.rc == 0, run.output[-3000:]
        text = " ".join(summary(run).split())
        assert "deferred %s: refusing to remove healthy member" % third in text and "below the quorum" in text, text
        assert run.changed_hosts() == {}, run.changed_hosts()
        assert not lab.node(third)["spec"].get("unschedulable")
        assert sorted(lab.etcd_members(lab.hosts()[0])) == sorted(lab.hosts()[:3])
    finally:
        lab.sh(second, "mv /etc/kubernetes/etcd.yaml.e2e %s" % manifest)
    wait_for(lambda: etcd_healthy(lab, lab.hosts()[0]), 180, "etcd healthy again")
    wait_for(lambda: ready(lab, second) == "True", 180, "%s Ready again" % second)


def test_a_worker_in_maintenance_is_drained_held_left_alone_by_recovery_and_given_back(lab, first_run):
    worker = lab.hosts()[3]
    reason = "e2e: replace DIMM B2"
    started = lab.playbook("maintenance.yml", "-e", "maintenance_fleet=" + lab.fleet_file, "-e",
                           "maintenance_action=start", "-e", json.dumps({"maintenance_servers": [worker]}),
                           "-e", json.dumps({"maintenance_reason": reason}))
    assert started.rc == 0, started.output[-3000:]
    assert "held %s for maintenance: drained" % worker in started.output
    node = lab.node(worker)
    annotations = node["metadata"].get("annotations", {})
    assert node["spec"].get("unschedulable")
    assert annotations.get("baremetal.k8s/cordoned-by") == "baremetal.k8s/maintenance"
    assert annotations.get("baremetal.k8s/cordon-reason") == reason
    echo = lab.kubectl(lab.hosts()[0], "get pods -l app=echo --field-selector spec.nodeName=%s -o name" % worker)
    assert echo.stdout.strip() == "", "echo pods left on a node in maintenance: %s" % echo.stdout
    assert lab.inventory_list()["_meta"]["hostvars"][worker]["fleet_state"] == "maintenance"
    # The technician's work stops the kubelet: recovery leaves a server in maintenance alone.
    assert lab.sh(worker, "systemctl stop kubelet").returncode == 0
    wait_for(lambda: ready(lab, worker) in ("False", "Unknown"), 180, "%s NotReady" % worker)
    time.sleep(POLICY["grace_period"])
    left = lab.recover(policy=POLICY)
    assert left.rc == 0, left.output[-3000:]
    assert "refused %s" % worker in summary(left) and "maintenance" in summary(left)
    assert left.changed_hosts() == {}, left.changed_hosts()
    # Back: verified, uncordoned, the mark gone.
    assert lab.sh(worker, "systemctl start kubelet").returncode == 0
    wait_for(lambda: ready(lab, worker) == "True", 180, "%s Ready again" % worker)
    ended = lab.playbook("maintenance.yml", "-e", "maintenance_fleet=" + lab.fleet_file, "-e",
                         "maintenance_action=end", "-e", json.dumps({"maintenance_servers": [worker]}))
    assert ended.rc == 0, ended.output[-3000:]
    assert "released %s from maintenance" % worker in ended.output
    node = lab.node(worker)
    assert not node["spec"].get("unschedulable")
    assert not any(key.startswith("baremetal.k8s/cordon") for key in node["metadata"].get("annotations", {}))
    assert worker not in lab.recovery_state().get("maintenance", {})
    again = lab.playbook("maintenance.yml", "-e", "maintenance_fleet=" + lab.fleet_file)
    assert again.rc == 0 and again.changed_hosts() == {}, again.changed_hosts()
    lab.kubectl(lab.hosts()[0], "rollout status deployment/echo --timeout=120s")


def test_a_worker_whose_host_stays_down_is_fenced_and_replaced_by_the_spare_after_a_killed_run(
        lab, first_run, artifacts, bmc):
    worker, spare = lab.hosts()[4], lab.spares()[0]
    subprocess.run(["docker", "stop", worker], check=True, capture_output=True)
    wait_for(lambda: ready(lab, worker) in ("False", "Unknown"), 180, "%s NotReady" % worker)
    time.sleep(POLICY["grace_period"])
    started = time.monotonic()
    seen = kill_a_run_once_the_spare_is_chosen(lab, worker, spare)
    assert "PowerForceOff" in seen or "Power the server off" in seen
    run = lab.recover(policy=POLICY)
    print("recover.yml, replacement (killed, then resumed): %.0f s" % (time.monotonic() - started), flush=True)
    assert run.rc == 0, run.output[-5000:]
    assert "recovered %s" % spare in summary(run)
    assert ready(lab, spare) == "True"
    listed = json.loads(lab.kubectl(lab.hosts()[0], "get nodes -o json").stdout)["items"]
    nodes = [n["metadata"]["name"] for n in listed]
    assert worker not in nodes
    inventory = lab.inventory_list()
    assert sorted(inventory["cluster_%s_worker" % lab.name]["hosts"]) == sorted([lab.hosts()[3], spare])
    assert inventory["_meta"]["hostvars"][worker]["fleet_state"] == "failed"
    assert lab.recovery_state()["failed"][worker]["replaced_by"] == spare
    assert lab.recovery_state()["nodes"][spare]["status"] == "done"
    # The BMC powered the old server off: it stays off (docker reports it stopped).
    status = subprocess.run(["docker", "inspect", "-f", "{{.State.Running}}", worker], capture_output=True, text=True,
                            check=False)
    assert status.stdout.strip() == "false"
    again = lab.recover(policy=POLICY)
    assert again.rc == 0 and again.changed_hosts() == {}, again.changed_hosts()


def kill_a_run_once_the_spare_is_chosen(lab, worker, spare):
    """recover.yml started, then SIGKILLed right after it closed the old server's remediation (the spare is
    chosen and recorded, not built yet); its lock (TTL 40 s) then runs out. Returns what the run printed."""
    process = lab.start_playbook("recover.yml", *lab.recover_args(POLICY), "-e", "recover_lock_ttl=40")
    seen = []
    for line in process.stdout:
        seen.append(line)
        if "TASK [Remember the outcome" in line:  # the task before it, the old server's finish, is done
            break
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    print("".join(seen[-40:]), flush=True)
    state = lab.recovery_state()
    assert state["nodes"][worker]["status"] == "done", state["nodes"][worker]
    assert state["nodes"][worker]["last_outcome"] == "replaced by %s" % spare
    assert state["nodes"][spare]["status"] == "running" and state["nodes"][spare]["step"] == "reprovision", state
    time.sleep(max(0.0, state["lock"]["expires"] - time.time()) + 1)
    return "".join(seen)
