# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""L0: the recovery job's glue (module_utils/recovery_probes.py): probes read back, members, steps, summary."""

from __future__ import annotations

import subprocess

import pytest
from ansible_collections.baremetal.k8s.plugins.module_utils import recovery_probes as rp

CONFIG_LINES = [
    "# Ansible managed",
    "# WireGuard mesh of cluster lab (baremetal.k8s.wireguard).",
    "# The private key stays in /etc/wireguard/wg0.key: it is never templated nor read by Ansible.",
    "# lab-node-2",
    "PublicKey = KEY2=",
    "# Its tunnel address and pod prefix: wg-quick routes both through wg0.",
    "# lab-node-3",
    "PublicKey = KEY3=",
    "# Its tunnel address and pod prefix: wg-quick routes both through wg0.",
]


def probe_output(containerd="active", kubelet="active", handshakes=("KEY2=\t1767225600", "KEY3=\t0")):
    return "\n".join(["containerd=" + containerd, "kubelet=" + kubelet, "--- wireguard peers", *CONFIG_LINES,
                      "--- wireguard handshakes", *handshakes])


def test_probes_name_each_peer_by_the_comment_above_its_key():
    probes = rp.probes_from_output({"stdout": probe_output(kubelet="inactive"), "rc": 0})
    assert probes == {"reachable": True, "containerd_active": "active", "kubelet_active": "inactive",
                      "wireguard_handshakes": {"lab-node-2": 1767225600, "lab-node-3": 0}}


def test_an_unreachable_host_is_only_unreachable():
    assert rp.probes_from_output({"unreachable": True, "msg": "Failed to connect"}) == {"reachable": False}


def test_a_probe_that_never_ran_on_the_host_is_unreachable():
    """docker exec into a stopped container fails as a module error, not as unreachable."""
    result = {"rc": 1, "module_stderr": "Error response from daemon: Container 6128 is not running",
              "module_stdout": "", "msg": "Module result deserialization failed: No start of json char found"}
    assert rp.probes_from_output(result) == {"reachable": False}


def test_a_host_without_a_mesh_has_no_handshakes_and_unknown_units_say_so():
    out = "containerd=\nkubelet=inactive\n--- wireguard peers\n--- wireguard handshakes\n"
    assert rp.probes_from_output({"stdout": out}) == {"reachable": True, "containerd_active": "unknown",
                                                      "kubelet_active": "inactive"}


def test_a_skipped_probe_says_only_that_the_host_answered():
    assert rp.probes_from_output({"skipped": True}) == {"reachable": True}


def test_a_probe_result_that_is_not_a_mapping_is_an_error_naming_it():
    with pytest.raises(rp.RecoveryInputError, match="must be a mapping"):
        rp.probes_from_output("active")


def test_the_probe_script_runs_in_a_shell_without_a_mesh():
    """The script itself, in sh: units unknown to systemctl and a missing mesh still print every section."""
    result = subprocess.run(["sh", "-c", rp.probe_script("wg-none")], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    probes = rp.probes_from_output({"stdout": result.stdout})
    assert probes["reachable"] is True and "wireguard_handshakes" not in probes
    assert set(probes) <= {"reachable", "containerd_active", "kubelet_active"}


def test_health_members_leave_out_load_balancers_and_carry_the_probes():
    hostvars = {
        "cp-1": {"fleet_roles": ["control_plane", "etcd"], "fleet_addresses": {"private": "10.0.0.1"},
                 "recover_probe": {"stdout": probe_output()}},
        "lb-1": {"fleet_roles": ["load_balancer"], "fleet_addresses": {"private": "10.0.0.9"}},
        "w-1": {"fleet_roles": ["worker", "load_balancer"], "fleet_addresses": {"private": "10.0.0.4"},
                "recover_probe": {"unreachable": True}},
        "w-2": {"fleet_roles": ["worker"], "fleet_addresses": {}},
    }
    members = rp.health_members(["cp-1", "lb-1", "w-1", "w-2"], hostvars)
    assert [m["name"] for m in members] == ["cp-1", "w-1", "w-2"]
    assert members[0]["roles"] == ["control_plane", "etcd"] and members[0]["address"] == "10.0.0.1"
    assert members[0]["probes"]["kubelet_active"] == "active"
    assert members[1] == {"name": "w-1", "roles": ["worker"], "address": "10.0.0.4", "probes": {"reachable": False}}
    assert members[2] == {"name": "w-2", "roles": ["worker"]}


def test_steps_from_skip_the_etcd_step_for_workers_and_start_where_asked():
    assert rp.steps_from("cordon", ["worker"]) == ["cordon", "drain", "reset", "reprovision", "rejoin",
                                                   "wait_ready", "uncordon", "verify"]
    assert rp.steps_from("drain", ["control_plane", "etcd"])[:3] == ["drain", "etcd_remove", "reset"]
    assert rp.steps_from("verify", ["worker"]) == ["verify"]
    assert rp.steps_from("cordon", ["worker"], "replace")[:6] == ["cordon", "fence", "drain", "reset", "replace",
                                                                  "reprovision"]
    with pytest.raises(rp.RecoveryInputError, match="unknown action 'burn'"):
        rp.steps_from("cordon", ["worker"], "burn")


def test_steps_from_an_unknown_step_names_the_steps():
    with pytest.raises(rp.RecoveryInputError, match=r"unknown step .dance.*cordon, fence, drain"):
        rp.steps_from("dance")


def test_summary_has_every_bucket_and_each_outcome():
    plan = {"summary": "1 to reprovision", "halted": False,
            "waiting": [{"node": "w-2", "reason": "within the grace period"}],
            "refused": [{"node": "w-3", "reason": "protected"}],
            "actions": [{"node": "w-1", "action": "reprovision", "attempt": 1},
                        {"node": "w-4", "action": "reprovision", "attempt": 2},
                        {"node": "w-5", "action": "replace", "attempt": 1}]}
    outcomes = {"w-1": {"outcome": "recovered", "seconds": 140},
                "w-4": {"outcome": "stopped", "step": "drain", "error": "PDB web forbids"},
                "w-5": {"outcome": "replaced", "replaced_by": "s-9"},
                "s-9": {"outcome": "recovered", "seconds": 300, "why": "replaces w-5"}}
    assert rp.recovery_summary(plan, outcomes) == [
        "1 to reprovision",
        "waiting w-2: within the grace period",
        "refused w-3: protected",
        "recovered w-1 (reprovision, attempt 1) in 140 s",
        "stopped w-4 (reprovision, attempt 2): stopped at drain: PDB web forbids; the node stays cordoned",
        "replaced w-5 (replace, attempt 1) by s-9",
        "recovered s-9 (replaces w-5) in 300 s",
    ]


def test_summary_of_a_halt_and_of_nothing():
    assert rp.recovery_summary({"summary": "", "halted": True, "halted_reason": "5 of 5 unhealthy"}, {}) == [
        "halted: 5 of 5 unhealthy"]
    assert rp.recovery_summary({}, {}) == ["nothing to do: every node is healthy"]


def test_summary_of_check_mode_lists_the_actions_as_planned():
    plan = {"summary": "1 to reprovision", "actions": [{"node": "w-1", "action": "reprovision", "attempt": 1}]}
    assert rp.recovery_summary(plan, {}) == ["1 to reprovision", "planned w-1 (reprovision, attempt 1)"]


def test_the_join_token_comes_from_a_live_control_plane_not_one_being_rebuilt():
    alive = {"rc": 0, "stdout": "containerd=active\nkubelet=active\n--- wireguard peers\n--- wireguard handshakes\n"}
    dead_kubelet = {"rc": 0, "stdout": "containerd=active\nkubelet=inactive\n--- wireguard peers\n"}
    hostvars = {"cp1": {"recover_probe": {"unreachable": True}}, "cp2": {"recover_probe": dead_kubelet},
                "cp3": {"recover_probe": alive}}
    assert rp.token_host(["cp1", "cp2", "cp3"], hostvars) == "cp3"
    assert rp.token_host(["cp1", "cp2", "cp3"], hostvars, busy=["cp3"]) == "cp1"  # none alive: first not busy
    assert rp.token_host(["cp1", "cp2"], {}, busy=["cp1", "cp2"]) == "cp1"
    with pytest.raises(rp.RecoveryInputError, match="control-plane group is empty"):
        rp.token_host([], hostvars)
