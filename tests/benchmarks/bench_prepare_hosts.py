#!/usr/bin/env python3
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: playbooks/prepare_hosts.yml on 5 lab hosts, first run and no-op re-run.

Standalone: ``python3 tests/benchmarks/bench_prepare_hosts.py [--keep]``.
Starts the lab ``bench`` (lab/lab.py up --name bench: 3 control planes, 2
workers that are also the API load balancers), runs the playbook through the
fleet inventory twice and prints the wall time and the changed count of each
run. No assertions: the numbers are for humans.
Targets on 2 cores: first run under 3 minutes, no-op re-run under 30 s.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAB = "bench"
SUBNET = "172.31.70.0/24"  # apart from the default lab's, so both can run
VENV_BIN = os.path.join(REPO, ".venv", "bin")


def crictl():
    """crictl built by tools/k8s-build (only if already built: a benchmark builds nothing)."""
    out = subprocess.run([os.path.join(REPO, "tools", "k8s-build", "build.sh"), "--print-dir", "crictl"],
                         capture_output=True, text=True, check=False).stdout.strip().splitlines()
    path = os.path.join(out[-1], "crictl") if out else ""
    return path if os.access(path, os.X_OK) else ""


def inventory(directory):
    """The lab's fleet file with a plugin config and the load balancers' VRRP password."""
    shutil.copy(os.path.join(REPO, ".lab", LAB, "inventory", "fleet.yml"), directory)
    with open(os.path.join(directory, "bench.baremetal.yml"), "w", encoding="utf-8") as handle:
        handle.write("plugin: baremetal.k8s.fleet\nfleet_file: fleet.yml\n")
    os.makedirs(os.path.join(directory, "group_vars"))
    with open(os.path.join(directory, "group_vars", "all.yml"), "w", encoding="utf-8") as handle:
        handle.write("api_lb_vrrp_auth_pass: bench\ncontainerd_crictl_source: %r\n" % crictl())


def run_playbook(directory):
    env = dict(os.environ, PATH=VENV_BIN + os.pathsep + os.environ["PATH"], ANSIBLE_PIPELINING="True",
               ANSIBLE_FORCE_COLOR="0", ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, ".collections"),
               ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"))
    started = time.monotonic()
    result = subprocess.run(["ansible-playbook", "-i", directory, os.path.join(REPO, "playbooks", "prepare_hosts.yml")],
                            capture_output=True, text=True, env=env, check=False)
    seconds = time.monotonic() - started
    if result.returncode:
        print(result.stdout[-4000:] + result.stderr[-2000:])
        raise SystemExit("bench_prepare_hosts: the playbook failed (exit %d)" % result.returncode)
    changed = sum(int(n) for n in re.findall(r"changed=(\d+)", result.stdout))
    return seconds, changed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="store_true", help="leave the lab hosts running")
    args = parser.parse_args(argv)
    lab = [sys.executable, os.path.join(REPO, "lab", "lab.py")]
    subprocess.run([*lab, "down", "--name", LAB], check=False, capture_output=True)  # fresh hosts
    subprocess.run([*lab, "up", "--name", LAB, "--hosts", "5", "--subnet", SUBNET], check=True)
    try:
        with tempfile.TemporaryDirectory(prefix="bmk8s-bench-prepare-") as directory:
            inventory(directory)
            first, first_changed = run_playbook(directory)
            again, again_changed = run_playbook(directory)
    finally:
        if not args.keep:
            subprocess.run([*lab, "down", "--name", LAB], check=False)
    print("prepare_hosts.yml on 5 lab hosts (load average %.1f):" % os.getloadavg()[0])
    print("  first run   %6.1f s  (%d changed)   target < 180 s" % (first, first_changed))
    print("  no-op rerun %6.1f s  (%d changed)   target <  30 s" % (again, again_changed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
