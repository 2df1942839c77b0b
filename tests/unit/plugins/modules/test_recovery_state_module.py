# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""baremetal.k8s.recovery_state through the ansible CLI: the lock (refusals change nothing, racing runs get it
once), recorded steps, check mode, bad input."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from fleet_samples import run_module, small_fleet, write_fleet

NOW = 2_000_000.0


def state(fleet_file, *flags, **args):
    return run_module("baremetal.k8s.recovery_state", dict(fleet=str(fleet_file), now=NOW, **args), *flags)


def test_the_lock_is_refused_to_a_second_holder_and_nothing_changes(tmp_path):
    fleet_file = write_fleet(tmp_path, small_fleet())
    first = state(fleet_file, action="lock", holder="job-1", ttl=600)
    assert first["changed"] is True and first["acquired"] is True and first["holder"] == "job-1"
    ledger = tmp_path / "fleet.recovery.json"
    before = ledger.read_text()
    second = state(fleet_file, action="lock", holder="job-2", ttl=600)
    assert second.get("failed") is not True and second["changed"] is False and second["acquired"] is False
    assert "locked by job-1" in second["reason"] and second["holder"] == "job-1"
    assert ledger.read_text() == before
    later = run_module("baremetal.k8s.recovery_state", {"fleet": str(fleet_file), "now": NOW + 601, "action": "lock",
                                                        "holder": "job-2", "ttl": 600})
    assert later["acquired"] is True and "took over the lock of job-1" in later["reason"]


def test_check_mode_writes_nothing(tmp_path):
    fleet_file = write_fleet(tmp_path, small_fleet())
    checked = state(fleet_file, "--check", action="lock", holder="job-1")
    assert checked["changed"] is True and checked["acquired"] is True
    assert not (tmp_path / "fleet.recovery.json").exists()


def test_racing_runs_get_the_lock_once(tmp_path):
    fleet_file = write_fleet(tmp_path, small_fleet())
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: state(fleet_file, action="lock", holder="job-%d" % i), range(4)))
    assert sum(r["acquired"] for r in results) == 1
    holder = json.loads((tmp_path / "fleet.recovery.json").read_text())["lock"]["holder"]
    assert [r["acquired"] for r in results].index(True) == int(holder.split("-")[1])


def test_steps_are_recorded_and_resumed(tmp_path):
    fleet_file = write_fleet(tmp_path, small_fleet())
    begun = state(fleet_file, action="begin", node="s04", cluster="c1", step="drain", remediation="reprovision",
                  first_unhealthy=NOW - 400)
    assert begun["changed"] is True and begun["entry"]["status"] == "running" and begun["entry"]["attempts"] == 1
    failed = state(fleet_file, action="fail", node="s04", step="drain", error="PDB web-pdb allows no disruption")
    assert failed["entry"]["status"] == "failed" and "PDB web-pdb" in failed["entry"]["error"]
    done = state(fleet_file, action="finish", node="s04")
    assert done["entry"]["status"] == "done" and done["entry"]["last_outcome"] == "recovered"
    read = state(fleet_file)
    assert read["changed"] is False and read["state"]["nodes"]["s04"]["attempts"] == 1


def test_bad_input_names_the_option(tmp_path):
    fleet_file = write_fleet(tmp_path, small_fleet())
    result = state(fleet_file, action="begin", node="s04")
    assert result["failed"] is True and "action=begin needs step" in result["msg"]
    result = state(fleet_file, action="finish", node="s04")
    assert result["failed"] is True and "no recovery is recorded for s04" in result["msg"]
    result = state(fleet_file, action="lock", holder="j", ttl=0)
    assert result["failed"] is True and "ttl: lock ttl 0 is not a positive number" in result["msg"]
    (tmp_path / "fleet.recovery.json").write_text("[]")
    result = state(fleet_file)
    assert result["failed"] is True and "the ledger is not a mapping" in result["msg"]


def test_a_server_is_marked_failed_once_and_cleared_after_the_repair(tmp_path):
    fleet_file = write_fleet(tmp_path, small_fleet())
    marked = state(fleet_file, action="mark_failed", node="s01", error="its host does not answer", replaced_by="s05")
    assert marked["changed"] is True
    assert marked["state"]["failed"]["s01"] == {"reason": "its host does not answer", "since": NOW,
                                                "replaced_by": "s05"}
    again = state(fleet_file, action="mark_failed", node="s01", error="its host does not answer", replaced_by="s05")
    assert again["changed"] is False
    cleared = state(fleet_file, action="clear_failed", node="s01")
    assert cleared["changed"] is True and cleared["state"]["failed"] == {}
    assert state(fleet_file, action="mark_failed", node="s01")["failed"] is True  # no reason: refused


def test_a_maintenance_mark_needs_a_reason_and_a_known_server(tmp_path):
    fleet_file = write_fleet(tmp_path, small_fleet())
    marked = state(fleet_file, action="mark_maintenance", node="s04", reason="replace DIMM B2", holder="awx-job-9")
    assert marked["changed"] is True
    assert marked["state"]["maintenance"]["s04"] == {"reason": "replace DIMM B2", "by": "awx-job-9", "since": NOW}
    again = state(fleet_file, action="mark_maintenance", node="s04", reason="replace DIMM B2", holder="awx-job-10")
    assert again["changed"] is False and again["state"]["maintenance"]["s04"]["by"] == "awx-job-9"
    assert "needs reason" in state(fleet_file, action="mark_maintenance", node="s04", holder="j")["msg"]
    unknown = state(fleet_file, action="mark_maintenance", node="nope", reason="r", holder="j")
    assert unknown["failed"] is True and "servers: no server named 'nope'" in unknown["msg"]
    cleared = state(fleet_file, action="clear_maintenance", node="s04")
    assert cleared["changed"] is True and cleared["state"]["maintenance"] == {}
    assert state(fleet_file, action="clear_maintenance", node="s04")["changed"] is False
