# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""L3: a control plane taken out of the cluster keeps etcd consistent, and site.yml joins it again.

On the cluster test_02 brought up (the session's first_run): a reset of a
server under deletion protection, and one that would leave etcd without
quorum, are refused before anything changes; a reset of a
control plane removes its etcd member and its Node; a second reset changes
nothing; site.yml then joins it again, changing nothing elsewhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
import yaml

pytestmark = [pytest.mark.lab]


def wait_for_etcd_members(lab, host, expected, timeout=120):
    """The members once they are EXPECTED; until then etcd may be restarting (its liveness probe after a peer froze)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            members = sorted(lab.etcd_members(host))
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            members = None
        if members == sorted(expected) or time.monotonic() > deadline:
            return members
        time.sleep(3)


def test_reset_of_a_protected_server_is_refused(lab, first_run):
    fleet_file = os.path.join(lab.inventory, "fleet.yml")
    with open(fleet_file, encoding="utf-8") as handle:
        original = handle.read()
    fleet = yaml.safe_load(original)
    worker = lab.hosts()[3]
    for server in fleet["servers"]:
        if server["name"] == worker:
            server["protection"] = {"deletion": True, "reason": "e2e: holds the only copy"}
    try:
        with open(fleet_file, "w", encoding="utf-8") as handle:
            json.dump(fleet, handle)  # JSON is YAML
        run = lab.playbook("reset_node.yml", "-e", "reset_nodes=%s" % worker)
    finally:
        with open(fleet_file, "w", encoding="utf-8") as handle:
            handle.write(original)
    assert run.rc != 0
    assert "protected from deletion" in run.output and "e2e: holds the only copy" in run.output
    assert run.changed_hosts() == {}
    assert lab.sh(worker, "test -f /etc/kubernetes/kubelet.conf").returncode == 0


def test_reset_that_would_lose_quorum_is_refused(lab, first_run):
    first, second, third = lab.hosts()[:3]
    subprocess.run(["docker", "pause", third], check=True)
    try:
        run = lab.playbook("reset_node.yml", "-e", "reset_nodes=%s" % second)
    finally:
        subprocess.run(["docker", "unpause", third], check=True)
    assert run.rc != 0
    assert "below the quorum" in run.output, run.output[-3000:]
    assert run.changed_hosts() == {}
    assert lab.sh(second, "test -f /etc/kubernetes/kubelet.conf").returncode == 0, "the refused reset changed the node"
    assert wait_for_etcd_members(lab, first, lab.hosts()[:3]) == sorted(lab.hosts()[:3])


def test_reset_removes_the_etcd_member_and_the_node(lab, first_run):
    first, third = lab.hosts()[0], lab.hosts()[2]
    run = lab.playbook("reset_node.yml", "-e", "reset_nodes=%s" % third)
    assert run.rc == 0, run.output[-3000:]
    assert wait_for_etcd_members(lab, first, lab.hosts()[:2]) == sorted(lab.hosts()[:2])
    nodes = json.loads(lab.kubectl(first, "get nodes -o json").stdout)["items"]
    assert third not in [n["metadata"]["name"] for n in nodes]
    assert lab.sh(third, "test -e /etc/kubernetes/kubelet.conf || test -e /var/lib/etcd/member").returncode != 0


def test_second_reset_changes_nothing(lab, first_run):
    run = lab.playbook("reset_node.yml", "-e", "reset_nodes=%s" % lab.hosts()[2])
    assert run.rc == 0
    assert run.changed_hosts() == {}


def test_site_joins_the_reset_control_plane_again(lab, first_run):
    first, third = lab.hosts()[0], lab.hosts()[2]
    run = lab.playbook("site.yml")
    assert run.rc == 0, run.output[-3000:]
    # The join token is made on the first control plane; nothing else changes elsewhere.
    assert set(run.changed_hosts()) <= {first, third}, run.changed_hosts()
    assert wait_for_etcd_members(lab, first, lab.hosts()[:3]) == sorted(lab.hosts()[:3])
    lab.kubectl(first, "wait --for=condition=Ready node/%s --timeout=120s" % third)
