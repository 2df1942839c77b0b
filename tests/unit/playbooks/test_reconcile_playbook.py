# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/reconcile.yml's refusals, run for real with ansible-playbook on an inventory whose hosts do not
answer: bad input names every problem and changes nothing; fix mode under a lock another job holds refuses
before any host is touched and leaves the recovery state as it was. The lab proves report and fix
(tests/e2e/test_03_reconcile.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from test_recover_playbook import inventory

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BIN = os.path.dirname(sys.executable)


def reconcile(inv, *args, **env):
    from fleet_samples import ansible_env

    proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", str(inv),
                           os.path.join(REPO, "playbooks", "reconcile.yml"), *args],
                          env=ansible_env(ANSIBLE_NOCOLOR="1", **env), capture_output=True, text=True, check=False,
                          cwd=str(inv), timeout=300)  # fmt: skip
    return proc.returncode, " ".join((proc.stdout + proc.stderr).split())


def test_bad_input_names_every_problem_and_changes_nothing(tmp_path):
    inv = inventory(tmp_path)
    rc, out = reconcile(inv, "-e", "reconcile_mode=repair", "-e", "fail_on_drift=maybe", "-e",
                        "reconcile_cluster=nope")
    assert rc != 0
    assert "name the fleet file: -e reconcile_fleet=PATH" in out
    assert "reconcile_mode=repair is not report or fix" in out
    assert "fail_on_drift=maybe is not true or false" in out
    assert "reconcile_cluster=nope is not a cluster of the inventory" in out
    assert "Nothing was changed" in out
    assert not (inv / "fleet.recovery.json").exists() and not (inv / "reconcile-report.json").exists()


def test_without_the_drift_callback_the_job_says_how_to_enable_it(tmp_path):
    inv = inventory(tmp_path)
    # Another callback enabled instead of the repository's (an empty list is refused by ansible-core).
    rc, out = reconcile(inv, "-e", "reconcile_fleet=%s" % (inv / "fleet.yml"),
                        ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks")
    assert rc != 0 and "the callback baremetal.k8s.drift_record is not enabled" in out


def test_fix_under_a_held_lock_refuses_and_changes_nothing(tmp_path):
    inv = inventory(tmp_path)
    (inv / "fleet.recovery.json").write_text(json.dumps(
        {"version": 1, "lock": {"holder": "awx-job-7", "acquired": 1.0, "expires": 4102444800.0}}))
    before = (inv / "fleet.recovery.json").read_text()
    rc, out = reconcile(inv, "-e", "reconcile_fleet=%s" % (inv / "fleet.yml"), "-e", "reconcile_mode=fix")
    assert rc != 0 and "Not fixing drift now" in out and "awx-job-7" in out and "Nothing was changed" in out
    assert (inv / "fleet.recovery.json").read_text() == before
    assert "PLAY [Prepare the Kubernetes nodes" not in out  # no host play ran
