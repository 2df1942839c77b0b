# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/recover.yml's refusals and error paths, run for real with ansible-playbook on an inventory whose
hosts do not answer (ssh to a closed port) and whose API cannot be read: nothing changes, the lock is given
back, and the message names the problem. The lab proves the recoveries (tests/e2e/test_06_recovery.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import yaml
from fleet_samples import ansible_env, small_fleet, write_fleet

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BIN = os.path.dirname(sys.executable)


def inventory(tmp_path):
    inv = tmp_path / "inv"
    (inv / "group_vars" / "all").mkdir(parents=True)
    write_fleet(inv, small_fleet())
    config = {"plugin": "baremetal.k8s.fleet", "fleet_file": "fleet.yml"}
    (inv / "fleet.baremetal.yml").write_text(yaml.safe_dump(config))
    # Every host "answers" on a closed port of this machine: refused at once, so each is unreachable.
    (inv / "group_vars" / "all" / "test.yml").write_text(yaml.safe_dump({
        "ansible_host": "127.0.0.1", "ansible_port": 1, "ansible_connection": "ssh", "ansible_timeout": 3,
        "bmk8s_kubeconfig": str(tmp_path / "absent.kubeconfig")}))
    return inv


def recover(inv, *args):
    proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", str(inv),
                           os.path.join(REPO, "playbooks", "recover.yml"), *args],
                          env=ansible_env(ANSIBLE_NOCOLOR="1"), capture_output=True, text=True, check=False,
                          timeout=300)  # fmt: skip
    return proc.returncode, proc.stdout + proc.stderr


def state(inv):
    path = inv / "fleet.recovery.json"
    return json.loads(path.read_text()) if path.exists() else {}


def test_an_unreadable_api_gives_the_lock_back_and_names_the_problem(tmp_path):
    inv = inventory(tmp_path)
    rc, out = recover(inv, "-e", "recover_fleet=%s" % (inv / "fleet.yml"))
    assert rc != 0
    assert "could not decide (nothing was changed): kubeconfig: file" in out.replace("\n", " ")
    assert state(inv).get("lock") is None and state(inv).get("nodes") == {}


def test_a_held_lock_refuses_before_any_host_is_touched(tmp_path):
    inv = inventory(tmp_path)
    (inv / "fleet.recovery.json").write_text(json.dumps(
        {"version": 1, "lock": {"holder": "awx-job-7", "acquired": 1.0, "expires": 4102444800.0}}))
    before = (inv / "fleet.recovery.json").read_text()
    rc, out = recover(inv, "-e", "recover_fleet=%s" % (inv / "fleet.yml"))
    assert rc != 0
    assert "awx-job-7" in out and "Nothing was changed" in out
    assert "Probe every member" not in out
    assert (inv / "fleet.recovery.json").read_text() == before


def test_bad_input_names_the_variable(tmp_path):
    inv = inventory(tmp_path)
    rc, out = recover(inv)
    assert rc != 0 and "-e recover_fleet=PATH" in out
    rc, out = recover(inv, "-e", "recover_fleet=%s" % (inv / "fleet.yml"), "-e", "recover_cluster=nope")
    message = "recover_cluster=nope is not a cluster of the inventory; use one of: c1"
    assert rc != 0 and message in out.replace("\n", " ")
    assert not (inv / "fleet.recovery.json").exists()
