# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/maintenance.yml's refusals and error paths, run for real with ansible-playbook on an inventory whose
hosts do not answer and whose API cannot be read: nothing changes, the lock is given back, the message names the
problem. The control-plane harness proves the drains (tests/integration/test_maintenance_playbook.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from test_recover_playbook import inventory, state

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BIN = os.path.dirname(sys.executable)


def maintenance(inv, *args):
    from fleet_samples import ansible_env

    proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", str(inv),
                           os.path.join(REPO, "playbooks", "maintenance.yml"), *args],
                          env=ansible_env(ANSIBLE_NOCOLOR="1"), capture_output=True, text=True, check=False,
                          timeout=300)  # fmt: skip
    return proc.returncode, " ".join((proc.stdout + proc.stderr).split())


def test_bad_input_names_every_problem_and_changes_nothing(tmp_path):
    inv = inventory(tmp_path)
    rc, out = maintenance(inv, "-e", "maintenance_action=start", "-e", '{"maintenance_servers": ["s01", "nope"]}')
    assert rc != 0
    assert "name the fleet file: -e maintenance_fleet=PATH" in out
    assert "maintenance_action=start needs maintenance_reason" in out
    assert "maintenance_servers: not in the inventory: nope" in out
    assert "Nothing was changed" in out and not (inv / "fleet.recovery.json").exists()
    rc, out = maintenance(inv, "-e", "maintenance_fleet=%s" % (inv / "fleet.yml"), "-e", "maintenance_action=stop")
    assert rc != 0 and "maintenance_action=stop is not start, end or empty" in out


def test_a_held_lock_refuses_and_changes_nothing(tmp_path):
    inv = inventory(tmp_path)
    (inv / "fleet.recovery.json").write_text(json.dumps(
        {"version": 1, "lock": {"holder": "awx-job-7", "acquired": 1.0, "expires": 4102444800.0}}))
    before = (inv / "fleet.recovery.json").read_text()
    rc, out = maintenance(inv, "-e", "maintenance_fleet=%s" % (inv / "fleet.yml"), "-e", "maintenance_action=start",
                          "-e", '{"maintenance_servers": ["s01"]}', "-e", "maintenance_reason=firmware")
    assert rc != 0 and "awx-job-7" in out and "Nothing was changed" in out
    assert (inv / "fleet.recovery.json").read_text() == before


def test_an_unreadable_api_gives_the_lock_back(tmp_path):
    inv = inventory(tmp_path)
    rc, out = maintenance(inv, "-e", "maintenance_fleet=%s" % (inv / "fleet.yml"))
    assert rc != 0 and "kubeconfig: file" in out
    assert state(inv).get("lock") is None
