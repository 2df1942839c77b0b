"""Fixtures for the e2e tier: one lab of 5 container hosts for the whole session.

The lab is brought up from nothing (lab/lab.py up) under its own name, so it
never touches a developer's default lab, and removed at the end of the session
unless BMK8S_E2E_KEEP=1 (handy when a test fails and you want to look inside).
Tests share it in file order (test_01_..., test_02_...): host preparation first, the cluster after.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAB = os.path.join(REPO, "lab", "lab.py")
LAB_NAME = os.environ.get("BMK8S_E2E_LAB", "e2e")
HOSTS = 5  # lab.py's fleet: hosts 1-3 control plane + etcd, 4-5 workers + load balancers
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
        return ["%s-node-%d" % (self.name, index) for index in range(1, HOSTS + 1)]

    def playbook(self, playbook: str, *args: str) -> PlaybookRun:
        """Run a playbook of this repo against the lab through the fleet inventory; output goes to the log too."""
        command = ["ansible-playbook", "-i", self.inventory, os.path.join(REPO, "playbooks", playbook), *args]
        print("+ " + " ".join(command), flush=True)
        result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
        print(result.stdout[-20000:], result.stderr[-5000:], sep="\n", flush=True)
        return PlaybookRun(result.returncode, result.stdout + result.stderr, parse_recap(result.stdout))

    def sh(self, host: str, script: str) -> subprocess.CompletedProcess:
        return subprocess.run(["docker", "exec", host, "sh", "-c", script], capture_output=True, text=True,
                              check=False)


@pytest.fixture(scope="session")
def lab():
    subprocess.run([sys.executable, LAB, "up", "--name", LAB_NAME, "--hosts", str(HOSTS)], check=True)
    yield Lab(LAB_NAME, os.path.join(REPO, ".lab", LAB_NAME, "inventory"))
    if os.environ.get("BMK8S_E2E_KEEP") != "1":
        subprocess.run([sys.executable, LAB, "down", "--name", LAB_NAME], check=False)
