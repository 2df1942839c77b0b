# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""baremetal.k8s.placement run for real through Ansible on the example fleet.

Each test copies inventory/example/fleet.yml into a temporary directory (the
ledger is written beside the fleet file) and runs ``ansible localhost -m
baremetal.k8s.placement`` or ``ansible-playbook playbooks/placement_plan.yml``
in a subprocess, so the module is loaded, validated against its
argument_spec and executed exactly as a playbook would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import fleet_samples
import pytest
import yaml
from fleet_samples import BIN, EXAMPLE_FLEET, REPO

GROW = {"cluster": "ams1-prod", "group": "general", "count": 3}
WORKLOADS = [
    {"name": "orders-db", "region": "eu-west", "replicas": 2, "cpu": 4, "memory_gb": 16},
    {"name": "sessions-redis", "cluster": "ams1-prod", "replicas": 1, "cpu": 1, "memory_gb": 4},
]


def ansible_env(**extra):
    return fleet_samples.ansible_env(ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
                                     ANSIBLE_NOCOLOR="1", **extra)


def run_module(args: dict, *flags: str) -> dict:
    """Run the module once on localhost; return its result as the json callback reports it."""
    return fleet_samples.run_module("baremetal.k8s.placement", args, *flags)


@pytest.fixture
def fleet(tmp_path):
    path = tmp_path / "fleet.yml"
    shutil.copy(EXAMPLE_FLEET, path)
    return path


def test_check_mode_returns_the_plan_and_writes_nothing(fleet):
    result = run_module({"fleet": str(fleet), "intents": [GROW], "workloads": WORKLOADS}, "--check", "--diff")
    assert result["changed"] is True and not result.get("failed")
    assert result["plan"]["groups"]["ams1-prod/general"] == ["ams1-a01-s02", "ams1-a02-s02", "ams1-a03-s03"]
    assert result["plan"]["workloads"]["orders-db"]["cluster"] == "ams1-prod"
    assert result["diff"]["before"] == "" and "ams1-a03-s03" in result["diff"]["after"]
    placed = next(c for c in result["changes"] if c.get("server") == "ams1-a03-s03")
    assert placed["action"] == "placed" and "fresh server" in placed["why"]
    manifest = result["manifests"]["orders-db"]
    assert manifest["nodeSelector"] == {"baremetal.k8s/node-group": "general"}
    assert sorted(os.listdir(fleet.parent)) == ["fleet.yml"]  # no ledger, no lock, no temporary file


def test_real_run_writes_the_ledger_atomically_and_the_second_run_changes_nothing(fleet):
    args = {"fleet": str(fleet), "intents": [GROW], "workloads": WORKLOADS}
    first = run_module(args, "--diff")
    ledger = fleet.parent / "fleet.placement.yml"
    assert first["changed"] is True and first["ledger"] == str(ledger)
    text = ledger.read_text()
    assert first["diff"]["after"] == text and first["diff"]["before"] == ""
    data = yaml.safe_load(text)
    assert data["servers"] == {"ams1-a03-s03": {"cluster": "ams1-prod", "group": "general"}}
    assert sorted(data["workloads"]) == ["orders-db", "sessions-redis"]
    # Written through atomic_file: the lock beside it, no temporary file left behind.
    assert sorted(os.listdir(fleet.parent)) == ["fleet.placement.yml", "fleet.placement.yml.lock", "fleet.yml"]
    stamp = ledger.stat().st_mtime_ns
    second = run_module(args, "--diff")
    assert second["changed"] is False and second["changes"] == []
    assert second["plan"] == first["plan"] and second["manifests"] == first["manifests"]
    assert ledger.read_text() == text and ledger.stat().st_mtime_ns == stamp
    # A check-mode run against the written ledger agrees: nothing to do.
    third = run_module(args, "--check", "--diff")
    assert third["changed"] is False


def test_unsatisfiable_intent_fails_with_the_funnel_and_writes_nothing(fleet):
    result = run_module({"fleet": str(fleet), "intents": [dict(GROW, count=5)]})
    assert result["failed"] is True
    assert "ams1-prod/general: unsatisfiable: needs 3 more server(s)" in result["msg"]
    assert "(funnel: servers in region eu-west: 10 -> state spare|active: 9" in result["msg"]
    general = next(g for g in result["explanations"]["groups"] if g["group"] == "ams1-prod/general")
    assert general["status"] == "unsatisfiable" and general["funnel"][2] == {
        "filter": "free (serving no other group)", "left": 1}
    assert sorted(os.listdir(fleet.parent)) == ["fleet.yml"]


def test_bad_input_is_a_clear_error_not_a_traceback(fleet):
    result = run_module({"fleet": str(fleet), "intents": [{"cluster": "nope", "group": "g", "count": 1}]})
    assert result["failed"] is True and "intents[0]: cluster 'nope' is not in the fleet" in result["msg"]
    result = run_module({"fleet": str(fleet), "max_share_per_domain": 1.5})
    assert result["failed"] is True and "max_share_per_domain must be in (0, 1]" in result["msg"]
    broken = fleet.parent / "broken.yml"
    broken.write_text(fleet.read_text().replace("rack: a01}", "rack: zz9}", 1))
    result = run_module({"fleet": str(broken)})
    assert result["failed"] is True and str(broken) in result["msg"] and "Fix:" in result["msg"]
    ledger = fleet.parent / "fleet.placement.yml"
    ledger.write_text("version: 7\n")
    result = run_module({"fleet": str(fleet)})
    assert result["failed"] is True and "not a version 1 placement ledger" in result["msg"]


def test_bad_options_name_the_option_and_the_fix(fleet):
    result = run_module({"fleet": str(fleet), "reserved_cores": -100})
    assert result["failed"] is True and "reserved_cores must be a number >= 0, not -100.0. Fix:" in result["msg"]
    result = run_module({"fleet": str(fleet), "replace": ["ams1-a03-s3"]})
    assert result["failed"] is True
    assert "replace: ams1-a03-s3 is not a server of the fleet; did you mean ams1-a03-s03" in result["msg"]
    result = run_module({"fleet": str(fleet), "workloads": [{"name": "db", "region": "eu-west", "cpu": -1}]})
    assert result["failed"] is True and "workloads[0] (db): cpu must be a number >= 0" in result["msg"]
    assert sorted(os.listdir(fleet.parent)) == ["fleet.yml"]


def test_a_workload_that_fits_nowhere_is_reported_and_the_rest_placed_unless_strict(fleet):
    huge = {"name": "huge-db", "region": "eu-west", "replicas": 2, "cpu": 500}
    args = {"fleet": str(fleet), "intents": [GROW], "workloads": [*WORKLOADS, huge]}
    result = run_module(args, "--check")
    assert not result.get("failed") and result["changed"] is True
    assert [u["workload"] for u in result["unplaced"]] == ["huge-db"]
    assert "workload huge-db: unsatisfiable" in result["unplaced"][0]["reason"]
    assert any("workload huge-db: unsatisfiable" in w for w in result["warnings"])
    assert sorted(result["plan"]["workloads"]) == ["orders-db", "sessions-redis"]
    assert result["plan"]["groups"]["ams1-prod/general"] == ["ams1-a01-s02", "ams1-a02-s02", "ams1-a03-s03"]
    strict = run_module(dict(args, partial_workloads=False), "--check")
    assert strict["failed"] is True and "placement refused" in strict["msg"]
    assert "workload huge-db: unsatisfiable" in strict["msg"]
    assert [u["workload"] for u in strict["unplaced"]] == ["huge-db"]
    assert sorted(os.listdir(fleet.parent)) == ["fleet.yml"]


def test_example_playbook_plans_in_check_mode_and_prints_explanations(fleet):
    extra = {"placement_fleet": str(fleet), "placement_intents": [GROW], "placement_workloads": WORKLOADS}
    proc = subprocess.run(
        [os.path.join(BIN, "ansible-playbook"), os.path.join(REPO, "playbooks", "placement_plan.yml"),
         "-e", json.dumps(extra)],
        env=ansible_env(), capture_output=True, text=True, check=False, timeout=120,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "(item=ams1-prod/general)" in output and "fresh server" in output
    assert "topologySpreadConstraints" in output and "(item=orders-db)" in output
    assert sorted(os.listdir(fleet.parent)) == ["fleet.yml"]
    refused = subprocess.run(
        [os.path.join(BIN, "ansible-playbook"), os.path.join(REPO, "playbooks", "placement_plan.yml"),
         "-e", json.dumps(dict(extra, placement_intents=[dict(GROW, count=5)]))],
        env=ansible_env(), capture_output=True, text=True, check=False, timeout=120,
    )
    output = refused.stdout + refused.stderr
    assert refused.returncode != 0 and "placement refused" in output
    assert "ams1-prod/general" in output and "free (serving no other group)" in output


def test_a_playbook_applies_the_plan_with_a_diff_then_reports_no_change(fleet):
    playbook = fleet.parent / "apply.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "Apply placement", "hosts": "localhost", "connection": "local", "gather_facts": False,
        "tasks": [{"name": "Place", "baremetal.k8s.placement": {"fleet": str(fleet), "intents": [GROW]}}],
    }]))
    command = [os.path.join(BIN, "ansible-playbook"), str(playbook), "--diff"]
    first = subprocess.run(command, env=ansible_env(), capture_output=True, text=True, check=False, timeout=120)
    assert first.returncode == 0, first.stdout + first.stderr
    ledger = fleet.parent / "fleet.placement.yml"
    assert "--- before: %s" % ledger in first.stdout and "+++ after: %s" % ledger in first.stdout
    assert "+servers:" in first.stdout and "+  ams1-a03-s03:" in first.stdout
    assert "changed=1" in first.stdout
    second = subprocess.run(command, env=ansible_env(), capture_output=True, text=True, check=False, timeout=120)
    assert second.returncode == 0 and "changed=0" in second.stdout, second.stdout + second.stderr
