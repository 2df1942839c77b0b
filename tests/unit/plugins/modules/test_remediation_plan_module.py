# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""baremetal.k8s.remediation_plan through the ansible CLI: the plan, placed members, halts recorded, bad input."""

from __future__ import annotations

import json

from fleet_samples import run_module, small_fleet, write_fleet

NOW = 2_000_000.0


def verdict(name, category="healthy", down=None, roles=("worker",)):
    healthy = category in ("healthy", "cordoned")
    return {"name": name, "healthy": healthy, "category": category,
            "record": {"name": name, "roles": list(roles), "ready": healthy,
                       "unhealthy_since": None if down is None else NOW - down,
                       "reasons": [] if healthy else [category]}}


def plan(fleet_file, health, *flags, **args):
    return run_module("baremetal.k8s.remediation_plan",
                      dict(fleet=str(fleet_file), health=health, now=NOW, **args), *flags)


def fleet_with_intent_workers(tmp_path):
    """c1: s00-s02 control planes, workers declared by intent and placed (a placement ledger beside the file)."""
    data = small_fleet(servers=6, members=[], control_planes=0)
    data["clusters"][0]["node_groups"] = [
        {"name": "control-plane", "roles": ["control_plane", "etcd"], "servers": ["s00", "s01", "s02"]},
        {"name": "workers", "roles": ["worker"], "intent": {"count": 3}},
    ]
    fleet_file = write_fleet(tmp_path, data)
    (tmp_path / "fleet.placement.yml").write_text(json.dumps({"version": 1, "servers": {
        name: {"cluster": "c1", "group": "workers"} for name in ("s03", "s04", "s05")}}))
    return fleet_file


def test_a_placed_worker_past_its_grace_period_is_planned_and_nothing_is_written(tmp_path):
    fleet_file = fleet_with_intent_workers(tmp_path)
    health = [verdict("s03", "kubelet_down", down=400), verdict("s04"), verdict("s05")]
    result = plan(fleet_file, health, cluster="c1")
    assert not result.get("failed"), result
    assert result["changed"] is False
    assert [(a["node"], a["action"], a["resume_at"]) for a in result["actions"]] == [("s03", "reprovision",
                                                                                      "cordon")]
    assert result["summary"].startswith("1 to reprovision")
    assert not (tmp_path / "fleet.recovery.json").exists()  # a plan without a halt writes nothing


def test_a_halt_is_recorded_outside_check_mode_only(tmp_path):
    fleet_file = fleet_with_intent_workers(tmp_path)
    health = [verdict(n, "host_unreachable", down=400) for n in ("s03", "s04", "s05")]
    checked = plan(fleet_file, health, "--check", policy={"max_unhealthy": 1})
    assert checked["changed"] is True and checked["halted"] is True and checked["halts_started"] == ["c1"]
    assert not (tmp_path / "fleet.recovery.json").exists()
    real = plan(fleet_file, health, policy={"max_unhealthy": 1})
    assert real["changed"] is True and real["actions"] == []
    state = json.loads((tmp_path / "fleet.recovery.json").read_text())
    assert state["halts"]["c1"]["active"] is True
    again = plan(fleet_file, health, policy={"max_unhealthy": 1})
    assert again["changed"] is False and again["halted"] is True  # already recorded


def test_bad_input_names_the_field(tmp_path):
    fleet_file = fleet_with_intent_workers(tmp_path)
    result = plan(fleet_file, [verdict("nope")])
    assert result["failed"] is True and "health: [0]: health verdict 'nope' is not a member" in result["msg"]
    result = plan(fleet_file, [verdict("s03")], policy={"retry_limit": 0})
    assert result["failed"] is True and "policy: retry_limit: 0 is not a whole number >= 1" in result["msg"]
    result = plan(fleet_file, [verdict("s03")], etcd={"c1": {"members": "x"}})
    assert result["failed"] is True and "etcd.c1: expected the result of baremetal.k8s.etcd_info" in result["msg"]
    (tmp_path / "fleet.recovery.json").write_text('{"version": 7}')
    result = plan(fleet_file, [verdict("s03")])
    assert result["failed"] is True and "not a version 1 recovery state" in result["msg"]
