# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The jobs run the way AWX runs them: ansible-runner on a private_data_dir laid out as AWX writes it.

AWX syncs the inventory source (the fleet plugin) into its database and hands the job an inventory
script that prints the synced hosts and groups: the playbooks must work from that export, without the
plugin at job time. Extra variables come from env/extravars (a job template's extra vars and survey),
the environment from env/envvars, the project checkout is project/. Runs for real with the
ansible-runner this checkout installs; AWX itself cannot run here (docs/testing.md).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import yaml
from fleet_samples import ansible_env
from test_recover_playbook import REPO, inventory

BIN = os.path.dirname(sys.executable)


def private_data_dir(tmp_path, inv, extravars):
    """AWX's layout: project/ (the checkout), inventory/hosts (the synced inventory as a script), env/."""
    exported = subprocess.run([os.path.join(BIN, "ansible-inventory"), "-i", str(inv), "--list", "--export"],
                              env=ansible_env(), capture_output=True, text=True, check=True).stdout
    pdd = tmp_path / "pdd"
    (pdd / "inventory").mkdir(parents=True)
    (pdd / "env").mkdir()
    # The checkout's playbooks and ansible.cfg (AWX runs from the project root); the collection comes from
    # ANSIBLE_COLLECTIONS_PATH, as an execution environment has it installed.
    shutil.copytree(os.path.join(REPO, "playbooks"), pdd / "project" / "playbooks")
    shutil.copy(os.path.join(REPO, "ansible.cfg"), pdd / "project" / "ansible.cfg")
    script = pdd / "inventory" / "hosts"
    script.write_text("#!/bin/sh\ncat <<'EOF'\n%s\nEOF\n" % exported)
    script.chmod(0o700)
    (pdd / "env" / "extravars").write_text(yaml.safe_dump(extravars))
    (pdd / "env" / "envvars").write_text(yaml.safe_dump({
        "ANSIBLE_COLLECTIONS_PATH": os.path.join(REPO, ".collections"), "ANSIBLE_NOCOLOR": "1"}))
    (pdd / "env" / "settings").write_text(yaml.safe_dump({"job_timeout": 600}))
    return pdd


def runner(*args, **kwargs):
    return subprocess.run([os.path.join(BIN, "ansible-runner"), *args], env=ansible_env(), capture_output=True,
                          text=True, check=False, timeout=600, **kwargs)


def events(pdd, ident):
    directory = pdd / "artifacts" / ident / "job_events"
    return [json.loads(path.read_text()) for path in sorted(directory.iterdir())]


def test_place_runs_from_the_synced_inventory_and_publishes_its_stats(tmp_path):
    inv = inventory(tmp_path)
    pdd = private_data_dir(tmp_path, inv, {"place_fleet": str(inv / "fleet.yml"), "awx_job_id": 41})
    done = runner("run", str(pdd), "-p", "playbooks/place.yml", "--ident", "41")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert (pdd / "artifacts" / "41" / "status").read_text() == "successful"
    stats = [e for e in events(pdd, "41") if e.get("event") == "playbook_on_stats"]
    placement = stats[0]["event_data"]["artifact_data"]["placement"]
    assert placement["groups"]["c1/workers"] == ["s03", "s04", "s05"] and placement["changes"] == []


def test_recover_through_transmit_worker_process_is_refused_by_a_held_lock(tmp_path):
    """AWX's receptor path: the controller transmits, a worker (in the execution environment) runs,
    the controller processes the stream back into events and artifacts."""
    inv = inventory(tmp_path)
    (inv / "fleet.recovery.json").write_text(json.dumps(
        {"version": 1, "lock": {"holder": "awx-job-7", "acquired": 1.0, "expires": 4102444800.0}}))
    before = (inv / "fleet.recovery.json").read_text()
    pdd = private_data_dir(tmp_path, inv, {"recover_fleet": str(inv / "fleet.yml"), "awx_job_id": 42})
    transmitted = runner("transmit", str(pdd), "-p", "playbooks/recover.yml", "--ident", "42")
    assert transmitted.returncode == 0, transmitted.stderr
    worked = runner("worker", "--private-data-dir", str(tmp_path / "worker"), input=transmitted.stdout)
    assert '"eof": true' in worked.stdout, worked.stderr  # the whole stream, whatever the job's result
    processed = runner("process", str(pdd), "--ident", "42", input=worked.stdout)
    # The job's outcome is in its status and rc, as AWX reads them (process itself succeeds).
    assert (pdd / "artifacts" / "42" / "rc").read_text() != "0"
    assert (pdd / "artifacts" / "42" / "status").read_text() == "failed"
    output = " ".join(processed.stdout.split())
    assert "recovery is locked by awx-job-7" in output and "Nothing was changed" in output
    assert (inv / "fleet.recovery.json").read_text() == before
