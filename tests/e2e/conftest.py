"""Fixtures for the e2e tier: one lab of 5 container hosts for the whole session.

The lab is brought up from nothing (lab/lab.py up) under its own name, so it
never touches a developer's default lab, and removed at the end of the session
unless BMK8S_E2E_KEEP=1 (handy when a test fails and you want to look inside).
Tests share it in file order (test_01_..., test_02_...): host preparation first, the cluster after.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAB = os.path.join(REPO, "lab", "lab.py")
BUILD = os.path.join(REPO, "tools", "artifacts", "build_artifacts.py")
sys.path.insert(0, os.path.join(REPO, "lab"))
import lab as lab_tool  # noqa: E402

sys.path.insert(0, os.path.join(REPO, "tests", "unit"))
from fleet_samples import unwrap  # noqa: E402

LAB_NAME = os.environ.get("BMK8S_E2E_LAB", "e2e")
HOSTS = 5  # the cluster: lab.py's fleet has hosts 1-3 control plane + etcd, 4-5 workers + load balancers
SPARES = 1  # host 6: a spare that placement may hand out (its worker group is declared by intent)
RECAP_LINE = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.MULTILINE)


@dataclasses.dataclass
class PlaybookRun:
    rc: int
    output: str
    recap: dict[str, dict[str, int]]

    def changed_hosts(self) -> dict[str, int]:
        return {host: counts["changed"] for host, counts in self.recap.items() if counts["changed"]}


def parse_recap(output: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP counts per host: {'host': {'ok': .., 'changed': .., 'unreachable': .., 'failed': ..}}."""
    recap = {}
    for host, ok, changed, unreachable, failed in RECAP_LINE.findall(output):
        recap[host] = {"ok": int(ok), "changed": int(changed), "unreachable": int(unreachable), "failed": int(failed)}
    return recap


@dataclasses.dataclass
class Lab:
    name: str
    inventory: str

    def hosts(self) -> list[str]:
        """The cluster's hosts (the spares are not among them)."""
        return ["%s-node-%d" % (self.name, index) for index in range(1, HOSTS + 1)]

    def spares(self) -> list[str]:
        return ["%s-node-%d" % (self.name, index) for index in range(HOSTS + 1, HOSTS + SPARES + 1)]

    @property
    def fleet_file(self) -> str:
        return os.path.join(self.inventory, "fleet.yml")

    def inventory_list(self) -> dict:
        """``ansible-inventory --list`` of the lab through the fleet plugin (plain strings)."""
        result = subprocess.run(["ansible-inventory", "-i", self.inventory, "--list"], cwd=REPO, capture_output=True,
                                text=True, check=True)
        return unwrap(json.loads(result.stdout))

    def playbook(self, playbook: str, *args: str) -> PlaybookRun:
        """Run a playbook of this repo against the lab through the fleet inventory; output goes to the log too."""
        command = ["ansible-playbook", "-i", self.inventory, os.path.join(REPO, "playbooks", playbook), *args]
        print("+ " + " ".join(command), flush=True)
        result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
        print(result.stdout[-20000:], result.stderr[-5000:], sep="\n", flush=True)
        return PlaybookRun(result.returncode, result.stdout + result.stderr, parse_recap(result.stdout))

    def recover(self, *args: str, policy: dict | None = None) -> PlaybookRun:
        """playbooks/recover.yml on the lab with POLICY (the remediation policy; short grace periods in tests)."""
        return self.playbook("recover.yml", *self.recover_args(policy), *args)

    def recover_args(self, policy: dict | None = None) -> list[str]:
        return ["-e", "recover_fleet=" + self.fleet_file, "-e", json.dumps({"recover_policy": policy or {}})]

    def start_playbook(self, playbook: str, *args: str) -> subprocess.Popen:
        """A playbook run in the background (its output line by line on .stdout), to be killed by a test."""
        command = ["ansible-playbook", "-i", self.inventory, os.path.join(REPO, "playbooks", playbook), *args]
        print("+ (background) " + " ".join(command), flush=True)
        return subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)

    def recovery_state(self) -> dict:
        """The recovery state (the file store beside the fleet file)."""
        path = os.path.join(self.inventory, "fleet.recovery.json")
        if not os.path.exists(path):
            return {}
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)

    def node(self, name: str) -> dict:
        """The Node object NAME as the API has it (through a control plane's admin kubeconfig)."""
        return json.loads(self.kubectl(self.hosts()[0], "get node", name, "-o json").stdout)

    def sh(self, host: str, script: str) -> subprocess.CompletedProcess:
        return subprocess.run(["docker", "exec", host, "sh", "-c", script], capture_output=True, text=True,
                              check=False)

    def kubectl(self, host: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """kubectl with the admin kubeconfig of a control plane (it talks to the API through the VIP)."""
        result = self.sh(host, "kubectl --kubeconfig /etc/kubernetes/admin.conf " + " ".join(args))
        if check:
            assert result.returncode == 0, result.stderr
        return result

    def etcdctl(self, host: str, command: str) -> subprocess.CompletedProcess:
        """etcdctl COMMAND in the etcd static pod of control plane HOST, against its local member."""
        # The latest running etcd container of kube-system: while the kubelet restarts etcd two may be
        # listed, and test_02's client pod runs a container named etcd too.
        return self.sh(host, "crictl exec $(crictl ps -q --latest --state running --name '^etcd$'"
                             " --label io.kubernetes.pod.namespace=kube-system) etcdctl"
                             " --endpoints https://127.0.0.1:2379"
                             " --cacert /etc/kubernetes/pki/etcd/ca.crt --cert /etc/kubernetes/pki/etcd/server.crt"
                             " --key /etc/kubernetes/pki/etcd/server.key " + command)

    def etcd_members(self, host: str) -> list[str]:
        """Names of the etcd members, as etcdctl in the etcd static pod of a control plane lists them.

        Asked through crictl on the host, not `kubectl exec` through the VIP: the answer must not depend
        on the load balancers (a test may have just stopped a control plane behind them).
        """
        result = self.etcdctl(host, "member list -w json")
        assert result.returncode == 0, result.stderr
        return [member.get("name", "") for member in json.loads(result.stdout)["members"]]


@pytest.fixture(scope="session")
def lab():
    """The lab's hosts up, and its worker group placed (playbooks/place.yml writes the placement ledger)."""
    subprocess.run([sys.executable, LAB, "up", "--name", LAB_NAME, "--hosts", str(HOSTS + SPARES)], check=True)
    the_lab = Lab(LAB_NAME, os.path.join(REPO, ".lab", LAB_NAME, "inventory"))
    placed = the_lab.playbook("place.yml", "-e", "place_fleet=" + the_lab.fleet_file)
    assert placed.rc == 0, "place.yml failed"
    yield the_lab
    if os.environ.get("BMK8S_E2E_KEEP") != "1":
        subprocess.run([sys.executable, LAB, "down", "--name", LAB_NAME], check=False)


@pytest.fixture(scope="session")
def artifacts(lab):
    """The artifact set, built (or reused from the cache) and served over HTTP on the lab network."""
    out = subprocess.run([sys.executable, BUILD], check=True, capture_output=True, text=True).stdout.split()[-1]
    with lab_tool.serve_directory(lab.name, out) as url:
        yield url


@pytest.fixture(scope="session")
def bmc(lab):
    """The lab's Redfish BMC (lab/bmc.py) serving for the session: the fleet's bmc fields point at it."""
    with lab_tool.serve_bmc(lab.name) as url:
        yield url


@pytest.fixture(scope="session")
def first_run(lab, artifacts):
    """site.yml's first run on the lab (test_02 checks the cluster it makes; later files use it)."""
    os.environ["BMK8S_ARTIFACTS"] = artifacts
    started = time.monotonic()
    run = lab.playbook("site.yml")
    print("site.yml first run: %.0f s" % (time.monotonic() - started))
    return run
