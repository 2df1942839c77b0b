# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""lab/lab.py without docker: the lab's fleet (a BMC per host) and its secrets (the BMC credentials)."""

from __future__ import annotations

import os
import sys

import pytest
import yaml
from ansible_collections.baremetal.k8s.plugins.module_utils import ipam
from ansible_collections.baremetal.k8s.plugins.module_utils.fleet import parse_fleet
from ansible_collections.baremetal.k8s.plugins.module_utils.inventory import build_inventory
from fleet_samples import REPO

sys.path.insert(0, os.path.join(REPO, "lab"))
import lab

SUBNET = "172.30.7.0/24"


def test_every_lab_host_has_the_labs_bmc_with_its_container_as_system():
    hosts = lab.host_plan("bmk8s", 6, SUBNET)
    fleet = parse_fleet(lab.lab_fleet("bmk8s", hosts, SUBNET, "/lab/ssh/id_ed25519"), "fleet.yml")
    for host in hosts:
        bmc = fleet.servers[host["name"]].bmc
        assert (bmc.type, bmc.address, bmc.system_id) == ("redfish", "https://172.30.7.1:18443", host["name"])
        assert (bmc.credentials, bmc.validate_certs, bmc.baseuri) == ("lab", False, "172.30.7.1:18443")
    hostvars = build_inventory(fleet, ipam.empty_ledger())["hosts"]["bmk8s-node-4"]
    assert hostvars["fleet_bmc"]["system_id"] == "bmk8s-node-4"


def test_the_secrets_hold_the_bmc_credentials(tmp_path):
    lab.write_lab_secrets(str(tmp_path))
    path = tmp_path / "group_vars" / "all" / "lab_secrets.yml"
    data = yaml.safe_load(path.read_text())
    assert len(data["api_lb_vrrp_auth_pass"]) == 8
    creds = data["bmc_credentials"]["lab"]
    assert creds["username"] == "lab-admin" and len(creds["password"]) == 32
    assert lab.read_bmc_credentials(str(path)) == (creds["username"], creds["password"])
    before = path.read_text()
    lab.write_lab_secrets(str(tmp_path))
    assert path.read_text() == before  # made once


@pytest.mark.parametrize("token", ["12345678", "1e100000", "0000e123"])
def test_a_vrrp_password_of_digits_stays_a_string(tmp_path, monkeypatch, token):
    monkeypatch.setattr(lab.secrets, "token_hex", lambda size: token if size == 4 else "ab" * size)
    lab.write_lab_secrets(str(tmp_path))
    data = yaml.safe_load((tmp_path / "group_vars" / "all" / "lab_secrets.yml").read_text())
    assert data["api_lb_vrrp_auth_pass"] == token


def test_an_older_labs_secrets_get_the_bmc_credentials_added(tmp_path):
    path = tmp_path / "group_vars" / "all" / "lab_secrets.yml"
    path.parent.mkdir(parents=True)
    path.write_text("# Written by lab/lab.py. In production keep these in Ansible Vault.\n"
                    "api_lb_vrrp_auth_pass: 0badc0de\n")
    lab.write_lab_secrets(str(tmp_path))
    data = yaml.safe_load(path.read_text())
    assert data["api_lb_vrrp_auth_pass"] == "0badc0de"  # kept: keepalived already uses it
    assert set(data["bmc_credentials"]["lab"]) == {"username", "password"}


def test_the_bmc_of_a_lab_that_does_not_exist_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(lab, "STATE", str(tmp_path))
    with pytest.raises(SystemExit, match="no lab gone here"):
        lab.lab_bmc_credentials("gone")
    os.makedirs(lab.inventory_dir("old"))  # a lab made before the BMC: its secrets file is made now
    username, password = lab.lab_bmc_credentials("old")
    assert username == "lab-admin" and password


def test_the_lab_reaches_its_hosts_over_ssh_or_docker_exec(monkeypatch):
    host = lab.host_plan("bmk8s", 1, SUBNET)[0]
    monkeypatch.setattr(lab, "CONNECTION", "ssh")
    ssh = lab.connection_vars(host, "/lab/ssh/id_ed25519")
    assert ssh["ansible_connection"] == "ansible.builtin.ssh" and ssh["ansible_host"] == host["address"]
    assert ssh["ansible_ssh_private_key_file"] == "/lab/ssh/id_ed25519" and ssh["ansible_user"] == "root"
    assert "ConnectTimeout=5" in ssh["ansible_ssh_common_args"]
    monkeypatch.setattr(lab, "CONNECTION", "docker")
    docker = lab.connection_vars(host, "/lab/ssh/id_ed25519")
    assert docker == {"ansible_connection": "community.docker.docker", "ansible_host": host["name"],
                      "ansible_python_interpreter": "/usr/bin/python3"}
    for connection in (ssh, docker):  # the fleet file takes them as they are
        assert all(key.startswith("ansible_") for key in connection)
