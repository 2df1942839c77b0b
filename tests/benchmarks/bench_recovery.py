#!/usr/bin/env python3
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: playbooks/recover.yml from a broken server to a Ready, uncordoned node, per kind of breakage.

Standalone: ``python3 tests/benchmarks/bench_recovery.py [--keep]``.
Starts the lab ``benchrec`` from nothing (5 hosts), converges it with site.yml (not timed), then breaks
one server at a time and runs recover.yml once the grace period (20 s here) has passed:

- a worker's kubelet stopped;
- a worker wiped (container and volumes destroyed, recreated empty with the same name and address);
- a control plane's kubelet and etcd stopped.

Printed per case: the fault until the API says NotReady (detection, Kubernetes' node monitor), and the
recovery job's wall time until the node is Ready and uncordoned. No assertions: the numbers are for
humans. Targets on 2 cores after the grace period (issue 12): 3, 5 and 6 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "lab"))
import lab  # noqa: E402

LAB = "benchrec"
HOSTS = 5
VENV_BIN = os.path.join(REPO, ".venv", "bin")
GRACE = 20
TARGETS = {"kubelet stopped (worker)": 180, "wiped (worker)": 300, "kubelet and etcd stopped (control plane)": 360}


def env(url):
    return dict(os.environ, PATH=VENV_BIN + os.pathsep + os.environ["PATH"], BMK8S_ARTIFACTS=url,
                ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, ".collections"),
                ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_FORCE_COLOR="0")


def playbook(url, name, *args):
    inventory = lab.inventory_dir(LAB)
    command = ["ansible-playbook", "-i", inventory, os.path.join(REPO, "playbooks", name), *args]
    result = subprocess.run(command, capture_output=True, text=True, env=env(url), check=False)
    if result.returncode:
        print(result.stdout[-4000:] + result.stderr[-2000:])
        raise SystemExit("bench_recovery: %s failed (exit %d)" % (name, result.returncode))


def node(name):
    """The Node NAME as the first control plane's kubectl sees it (None when absent)."""
    result = subprocess.run(["docker", "exec", "%s-node-1" % LAB, "kubectl", "--kubeconfig",
                             "/etc/kubernetes/admin.conf", "get", "node", name, "-o", "json"],
                            capture_output=True, text=True, check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def ready(name):
    obj = node(name) or {"status": {}}
    return next((c["status"] for c in obj["status"].get("conditions", []) if c["type"] == "Ready"), None)


def wait_until(predicate, timeout=600):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit("bench_recovery: timed out")
        time.sleep(1)


def break_and_recover(url, name, host, fault):
    started = time.monotonic()
    fault(host)
    wait_until(lambda: ready(host) in ("False", "Unknown"))
    detected = time.monotonic() - started
    time.sleep(GRACE)
    recovery_started = time.monotonic()
    inventory = lab.inventory_dir(LAB)
    playbook(url, "recover.yml", "-e", "recover_fleet=" + os.path.join(inventory, "fleet.yml"),
             "-e", json.dumps({"recover_policy": {"grace_period": GRACE, "halt_cooldown": 0}}))
    wait_until(lambda: ready(host) == "True" and not (node(host) or {}).get("spec", {}).get("unschedulable"))
    return name, detected, time.monotonic() - recovery_started, os.getloadavg()[0]


def stop_kubelet(host):
    subprocess.run(["docker", "exec", host, "systemctl", "stop", "kubelet"], check=True)


def wipe(host):
    subprocess.run(["docker", "rm", "-f", "-v", host], check=True, capture_output=True)
    lab.up(LAB, HOSTS)


def stop_kubelet_and_etcd(host):
    subprocess.run(["docker", "exec", host, "sh", "-c",
                    "systemctl stop kubelet && crictl stop $(crictl ps -q --name '^etcd$')"], check=True,
                   capture_output=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="store_true", help="leave the lab hosts running")
    args = parser.parse_args(argv)
    lab.down(LAB)
    lab.up(LAB, HOSTS)
    inventory = lab.inventory_dir(LAB)
    build = os.path.join(REPO, "tools", "artifacts", "build_artifacts.py")
    artifacts = subprocess.run([sys.executable, build], check=True, stdout=subprocess.PIPE,
                               text=True).stdout.split()[-1]
    rows = []
    try:
        with lab.serve_directory(LAB, artifacts) as url:
            playbook(url, "place.yml", "-e", "place_fleet=" + os.path.join(inventory, "fleet.yml"))
            playbook(url, "site.yml")
            hosts = ["%s-node-%d" % (LAB, index) for index in range(1, HOSTS + 1)]
            rows.append(break_and_recover(url, "kubelet stopped (worker)", hosts[4], stop_kubelet))
            rows.append(break_and_recover(url, "wiped (worker)", hosts[3], wipe))
            rows.append(break_and_recover(url, "kubelet and etcd stopped (control plane)", hosts[2],
                                          stop_kubelet_and_etcd))
    finally:
        if not args.keep:
            lab.down(LAB)
    print("recover.yml on the lab, grace period %d s, %d cores:" % (GRACE, os.cpu_count() or 0))
    print("  %-42s %12s %16s %8s %12s" % ("case", "detection", "recovery job", "target", "load (1 min)"))
    for name, detected, recovered, load in rows:
        print("  %-42s %10.0f s %14.0f s %6d s %12.1f" % (name, detected, recovered, TARGETS[name], load))
    return 0


if __name__ == "__main__":
    sys.exit(main())
