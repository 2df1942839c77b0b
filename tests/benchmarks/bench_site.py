#!/usr/bin/env python3
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: playbooks/site.yml from bare lab hosts, then the no-op re-run, with wall time per phase.

Standalone: ``python3 tests/benchmarks/bench_site.py [--keep]``.
Starts the lab ``bench`` from nothing (5 hosts: 3 control planes, 2 workers
that are also the API load balancers), builds the air-gap artifact set (cached),
serves it on the lab network and runs site.yml twice. A callback
(callback_plugins/phase_times.py) records every task's wall time; tasks are
summed into the phases below by their role and tasks file. No assertions: the
numbers are for humans.

Targets on 2 cores (issues 4 and 6): whole first run under 6 minutes and the
no-op re-run under 60 s; host preparation under 3 minutes and 30 s.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "lab"))
import lab  # noqa: E402

LAB = "bench"
HERE = os.path.dirname(os.path.abspath(__file__))
VENV_BIN = os.path.join(REPO, ".venv", "bin")
PHASES = ("prepare hosts", "load balancer", "binaries and images", "kubeadm init", "control-plane joins",
          "workers", "pod network", "wait for Ready")
# site.yml's plays -> phases (the roles share task files: k8s_node's join pieces run in the control-plane and
# worker plays, so the play says which phase a task belongs to).
PHASE_OF_PLAY = {
    "Prepare the Kubernetes nodes (packages, swap, kernel modules, sysctl, containerd)": "prepare hosts",
    "Build the WireGuard mesh of each cluster": "prepare hosts",
    "Run the API load balancers": "load balancer",
    "Install the Kubernetes binaries and images": "binaries and images",
    "Join the workers": "workers",
    "Set up the pod network": "pod network",
}


def phase(task: dict) -> str:
    if task["play"] == "Bring up the control plane":
        return "control-plane joins" if "join" in os.path.basename(task["path"].split(":")[0]) else "kubeadm init"
    return PHASE_OF_PLAY.get(task["play"], "wait for Ready")


def run_site(url: str, times_file: str) -> tuple[float, int, dict[str, float]]:
    env = dict(os.environ, PATH=VENV_BIN + os.pathsep + os.environ["PATH"], BMK8S_ARTIFACTS=url,
               ANSIBLE_FORCE_COLOR="0", ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, ".collections"),
               ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), BMK8S_PHASE_TIMES=times_file,
               ANSIBLE_CALLBACK_PLUGINS=os.path.join(HERE, "callback_plugins"), ANSIBLE_CALLBACKS_ENABLED="phase_times")
    command = ["ansible-playbook", "-i", lab.inventory_dir(LAB), os.path.join(REPO, "playbooks", "site.yml")]
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    seconds = time.monotonic() - started
    if result.returncode:
        print(result.stdout[-4000:] + result.stderr[-2000:])
        raise SystemExit("bench_site: site.yml failed (exit %d)" % result.returncode)
    changed = sum(int(n) for n in re.findall(r"changed=(\d+)", result.stdout))
    per_phase = collections.Counter()
    with open(times_file, encoding="utf-8") as handle:
        for line in handle:
            task = json.loads(line)
            per_phase[phase(task)] += task["seconds"]
    return seconds, changed, per_phase


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="store_true", help="leave the lab hosts running")
    args = parser.parse_args(argv)
    lab.down(LAB)  # bare hosts
    lab.up(LAB, 5)
    inventory = lab.inventory_dir(LAB)
    # The workers are declared by intent: placement chooses them before site.yml (as make site does).
    subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), "-i", inventory,
                    os.path.join(REPO, "playbooks", "place.yml"), "-e", "place_fleet=" + os.path.join(inventory,
                    "fleet.yml")], check=True, capture_output=True,
                   env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, ".collections"),
                            ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg")))  # fmt: skip
    build = os.path.join(REPO, "tools", "artifacts", "build_artifacts.py")
    artifacts = subprocess.run([sys.executable, build], check=True, stdout=subprocess.PIPE,
                               text=True).stdout.split()[-1]
    try:
        with lab.serve_directory(LAB, artifacts) as url, tempfile.TemporaryDirectory() as scratch:
            first = run_site(url, os.path.join(scratch, "first.jsonl"))
            again = run_site(url, os.path.join(scratch, "again.jsonl"))
    finally:
        if not args.keep:
            lab.down(LAB)
    print("site.yml on 5 bare lab hosts (load average %.1f):" % os.getloadavg()[0])
    print("  %-22s %10s %10s" % ("phase", "first run", "no-op"))
    for name in PHASES:
        print("  %-22s %8.1f s %8.1f s" % (name, first[2][name], again[2][name]))
    print("  %-22s %8.1f s %8.1f s   targets < 360 s / < 60 s" % ("total (wall)", first[0], again[0]))
    print("  %-22s %10d %10d" % ("changed", first[1], again[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
