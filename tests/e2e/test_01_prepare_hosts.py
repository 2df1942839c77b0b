"""L3: playbooks/prepare_hosts.yml converges the lab's 5 hosts through the fleet inventory, then changes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "unit"))
from fleet_samples import unwrap


def test_fleet_inventory_describes_the_lab(lab):
    graph = subprocess.run(["ansible-inventory", "-i", lab.inventory, "--list"], capture_output=True, text=True,
                           check=True)
    inventory = unwrap(json.loads(graph.stdout))
    hostvars = inventory["_meta"]["hostvars"]
    assert sorted(hostvars) == lab.hosts()
    pod_cidrs = [hostvars[host]["pod_cidr"] for host in lab.hosts()]
    assert len(set(pod_cidrs)) == 5, pod_cidrs


def test_prepare_hosts_converges(lab):
    run = lab.playbook("prepare_hosts.yml")
    assert run.rc == 0, "prepare_hosts.yml failed"
    assert sorted(run.recap) == lab.hosts()
    assert all(counts["failed"] == 0 and counts["unreachable"] == 0 for counts in run.recap.values())


def test_prepare_hosts_is_idempotent(lab):
    run = lab.playbook("prepare_hosts.yml")
    assert run.rc == 0
    assert run.changed_hosts() == {}, "a second run changed something"


def test_hosts_are_ready_for_kubeadm(lab):
    for host in lab.hosts():
        swap = lab.sh(host, "swapon --show --noheadings | wc -l").stdout.strip()
        assert swap == "0", host
        forward = lab.sh(host, "sysctl -n net.ipv4.ip_forward").stdout.strip()
        assert forward == "1", host
        containerd = lab.sh(host, "systemctl is-active containerd").stdout.strip()
        assert containerd == "active", host
