# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared helpers of the molecule scenario "fleet": the fleet inventory's view of the hosts."""

import json
import os
import subprocess

import pytest

SCENARIO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INVENTORY = os.path.join(SCENARIO, "inventory")
PLAYBOOK = os.path.join(SCENARIO, "..", "..", "playbooks", "prepare_hosts.yml")


@pytest.fixture(scope="session")
def fleet_inventory():
    """`ansible-inventory --list` of the scenario's fleet inventory (groups and hostvars)."""
    out = subprocess.run(["ansible-inventory", "-i", INVENTORY, "--list"], capture_output=True, text=True,
                         check=True).stdout
    return plain(json.loads(out))


def plain(data):
    """The data without ansible-core's {"__ansible_unsafe": value} wrappers."""
    if isinstance(data, dict):
        if set(data) == {"__ansible_unsafe"}:
            return data["__ansible_unsafe"]
        return {key: plain(value) for key, value in data.items()}
    if isinstance(data, list):
        return [plain(value) for value in data]
    return data


def group_hosts(inventory, group):
    entry = inventory.get(group, {})
    hosts = list(entry.get("hosts", []))
    for child in entry.get("children", []):
        hosts.extend(h for h in group_hosts(inventory, child) if h not in hosts)
    return hosts


def run_playbook(*args, playbook=PLAYBOOK, expect_rc=0):
    """Output of ansible-playbook (prepare_hosts.yml by default) on the scenario's inventory."""
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1", ANSIBLE_PIPELINING="True")
    result = subprocess.run(["ansible-playbook", "-i", INVENTORY, playbook, *args],
                            capture_output=True, text=True, check=False, env=env)
    assert result.returncode == expect_rc, result.stdout + result.stderr
    return result.stdout + result.stderr
