# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/check.yml run for real with ansible-playbook on an inventory whose hosts do not answer (ssh to a
closed port) and whose kubeconfig does not exist: every problem is a critical verdict in the summary, the
verdicts are published, the job fails only at its end, and nothing changes (also under --check). The dev lab
proves the healthy path (docs/check.md)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import yaml
from fleet_samples import ansible_env, small_fleet, write_fleet

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BIN = os.path.dirname(sys.executable)


def inventory(tmp_path):
    inv = tmp_path / "inv"
    (inv / "group_vars" / "all").mkdir(parents=True)
    write_fleet(inv, small_fleet(servers=4))
    config = {"plugin": "baremetal.k8s.fleet", "fleet_file": "fleet.yml"}
    (inv / "fleet.baremetal.yml").write_text(yaml.safe_dump(config))
    (inv / "group_vars" / "all" / "test.yml").write_text(yaml.safe_dump({
        "ansible_host": "127.0.0.1", "ansible_port": 1, "ansible_connection": "ssh", "ansible_timeout": 3,
        "bmk8s_kubeconfig": str(tmp_path / "absent.kubeconfig")}))
    return inv


def check(inv, *args):
    proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", str(inv),
                           os.path.join(REPO, "playbooks", "check.yml"), *args],
                          env=ansible_env(ANSIBLE_NOCOLOR="1", ANSIBLE_SHOW_CUSTOM_STATS="1",
                                          ANSIBLE_CALLBACK_RESULT_FORMAT="json"),
                          capture_output=True, text=True, check=False, timeout=300)  # fmt: skip
    return proc.returncode, proc.stdout + proc.stderr


def changed_total(out):
    return sum(int(n) for n in re.findall(r"changed=(\d+)", out))


def test_hosts_that_do_not_answer_are_critical_verdicts_not_a_crash(tmp_path):
    inv = inventory(tmp_path)
    before = sorted(os.listdir(inv))
    rc, out = check(inv, "-e", "check_fleet=%s" % (inv / "fleet.yml"))
    assert rc != 0, out
    flat = " ".join(out.split())
    assert "cluster c1: CRITICAL" in flat
    for host in ("s00", "s01", "s02", "s03"):
        assert "CRITICAL host_reachable host/%s: the host did not answer" % host in flat
    assert "CRITICAL node_ready cluster/c1: cannot read the Nodes: kubeconfig: file" in flat
    assert "CRITICAL etcd_health cluster/c1: no control plane's etcd answered" in flat
    assert "not checked: etcd snapshot age" in flat
    assert "check.yml: " in flat and "critical verdicts: host_reachable host/s00" in flat
    # Published for AWX before the job failed.
    assert '"overall": "critical"' in flat and '"not_checked"' in flat
    assert changed_total(out) == 0
    # Only the inventory plugin writes: its allocation ledger on the first read of a new fleet.
    assert set(os.listdir(inv)) - set(before) <= {"fleet.allocations.json", "fleet.allocations.json.lock"}


def test_check_mode_runs_the_same_checks(tmp_path):
    inv = inventory(tmp_path)
    rc, out = check(inv, "-e", "check_fleet=%s" % (inv / "fleet.yml"), "--check")
    assert rc != 0 and "CRITICAL host_reachable host/s00" in " ".join(out.split())
    assert changed_total(out) == 0


def test_the_fleet_file_must_be_named_and_the_cluster_known(tmp_path):
    inv = inventory(tmp_path)
    rc, out = check(inv)
    assert rc != 0 and "check.yml: name the fleet file: -e check_fleet=PATH" in out
    rc, out = check(inv, "-e", "check_fleet=%s" % (inv / "fleet.yml"), "-e", "check_cluster=nope")
    assert rc != 0 and "check_cluster=nope is not a cluster of the inventory" in out
    assert json.dumps("Nothing was checked")[1:-1] in out
