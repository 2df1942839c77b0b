# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet_allocation module, run for real by ansible (local connection): allocate, show, release."""

from __future__ import annotations

import json
import os

import pytest
from ansible_collections.baremetal.k8s.plugins.module_utils import ipam
from fleet_samples import run_module, small_fleet, unreachable_kubeconfig, write_fleet


def module(fleet_file, *, check=False, **args):
    """Run baremetal.k8s.fleet_allocation once on localhost; returns the task result."""
    args["fleet_file"] = str(fleet_file)
    return run_module("baremetal.k8s.fleet_allocation", args, "--diff", *(["--check"] if check else []))


@pytest.fixture
def fleet_file(tmp_path):
    return write_fleet(tmp_path, small_fleet())


def ledger_of(fleet_file):
    path = os.path.splitext(fleet_file)[0] + ".allocations.json"
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def test_present_allocates_then_is_idempotent_and_check_mode_writes_nothing(fleet_file):
    preview = module(fleet_file, check=True, server="s02")
    assert preview["changed"] is True
    assert preview["allocation"] == {"c1": {"pod_cidr": "10.200.2.0/24", "wireguard_address": "10.201.0.3"}}
    assert not os.path.exists(os.path.splitext(fleet_file)[0] + ".allocations.json")
    assert '"s02"' in preview["diff"]["after"]

    first = module(fleet_file)
    assert first["changed"] is True and len(first["added"]["c1"]) == 6
    assert ledger_of(fleet_file)["clusters"]["c1"]["nodes"]["s02"] == preview["allocation"]["c1"]
    second = module(fleet_file, server="s02")
    assert second["changed"] is False and second["allocation"] == preview["allocation"]
    assert second["added"] == {}


def test_release_refuses_an_active_member_and_frees_a_retired_one(tmp_path, fleet_file):
    module(fleet_file)
    refused = module(fleet_file, state="released", server="s04")
    assert refused.get("failed") is True
    assert "s04 is still a member of cluster c1 in state active" in refused["msg"]
    assert "set its state to retired" in refused["msg"]

    data = small_fleet()
    data["servers"][4]["state"] = "retired"
    write_fleet(tmp_path, data)
    kept = ledger_of(fleet_file)["clusters"]["c1"]["nodes"]["s04"]
    preview = module(fleet_file, check=True, state="released", server="s04")
    assert preview["changed"] is True and preview["released"] == {"c1": kept}
    assert '"s04"' in preview["diff"]["before"]
    assert "s04" in ledger_of(fleet_file)["clusters"]["c1"]["nodes"]  # check mode: still there

    done = module(fleet_file, state="released", server="s04")
    assert done["changed"] is True and done["released"] == {"c1": kept}
    assert "s04" not in ledger_of(fleet_file)["clusters"]["c1"]["nodes"]
    again = module(fleet_file, state="released", server="s04")
    assert again["changed"] is False and again["released"] == {}


def test_force_release_and_bad_input(tmp_path, fleet_file):
    module(fleet_file)
    forced = module(fleet_file, state="released", server="s05", cluster="c1", force=True)
    assert forced["changed"] is True
    missing = module(fleet_file, state="released")
    assert missing.get("failed") is True and "server" in missing["msg"]
    bad = write_fleet(tmp_path, {"version": 1, "servers": "nope"}, name="bad.yml")
    broken = module(bad)
    assert broken.get("failed") is True
    assert broken["msg"].startswith(f"{bad}: servers: expected a list")
    assert "Traceback" not in json.dumps(broken)


def test_ledger_options_relative_file_and_inventory_plugin_names(tmp_path, fleet_file):
    """A relative allocation_file is relative to the fleet file (not the working directory), and the ledger
    options take the inventory plugin's names as aliases."""
    result = module(fleet_file, allocation_file="custom.allocations.json")
    assert result["changed"] is True and result["store"] == str(tmp_path / "custom.allocations.json")
    assert (tmp_path / "custom.allocations.json").exists()
    missing = str(tmp_path / "no-such.kubeconfig")
    aliased = module(fleet_file, allocation_store="kubernetes", allocation_kubeconfig=missing,
                     allocation_context="mgmt", allocation_namespace="ns", allocation_configmap="cm")
    assert aliased.get("failed") is True
    assert aliased["msg"].startswith(missing + ": ") and "cannot load the kubeconfig" in aliased["msg"]


def test_release_blocker_core():
    from ansible_collections.baremetal.k8s.plugins.module_utils.fleet import parse_fleet

    data = small_fleet()
    data["servers"][5]["state"] = "retired"
    fleet = parse_fleet(data, "f.yml")
    assert ipam.release_blocker(fleet, "c1", "s04").startswith("s04 is still a member")
    assert ipam.release_blocker(fleet, "c1", "s05") is None  # retired
    assert ipam.release_blocker(fleet, "gone", "s04") is None  # cluster left the fleet
    assert ipam.release_blocker(fleet, "c1", "ghost") is None  # server left the fleet
    ledger = ipam.empty_ledger()
    ipam.allocate(fleet, ledger)
    assert ipam.holders(ledger, "s04") == ["c1"] and ipam.holders(ledger, "s05") == []


def test_bad_kubernetes_stores_are_clear_errors_not_tracebacks(tmp_path, fleet_file):
    """A kubeconfig that is not YAML, one that is a YAML list, and an API server that does not answer."""
    for name, text in (("garbage.conf", "{{{ not yaml"), ("list.conf", "- a\n- b\n")):
        path = tmp_path / name
        path.write_text(text)
        result = module(fleet_file, allocation_store="kubernetes", kubeconfig=str(path))
        assert result.get("failed") is True and "Traceback" not in result.get("module_stderr", "")
        assert result["msg"].startswith(str(path) + ": ") and "is not a kubeconfig" in result["msg"], result
        assert "Fix:" in result["msg"]
    dead = unreachable_kubeconfig(tmp_path / "dead.conf")
    result = module(fleet_file, allocation_store="kubernetes", kubeconfig=str(dead))
    assert result.get("failed") is True and "cannot read the ledger: cannot reach the API server" in result["msg"]
    assert "MaxRetryError" not in result["msg"] and "Fix: check the kubeconfig" in result["msg"], result["msg"]


def test_releasing_a_server_that_holds_nothing_says_so(fleet_file):
    result = module(fleet_file, state="released", server="s99")
    assert result["changed"] is False and result["released"] == {}
    assert any("s99 holds no allocation" in w and "no such server" in w for w in result.get("warnings", []))
