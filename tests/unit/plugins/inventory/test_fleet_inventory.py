# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The inventory plugin, through build_inventory() and through the real ansible-inventory CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
import yaml
from ansible_collections.baremetal.k8s.plugins.inventory.fleet import DATA_RE, InventoryModule
from ansible_collections.baremetal.k8s.plugins.module_utils import ipam
from ansible_collections.baremetal.k8s.plugins.module_utils.fleet import load_fleet
from ansible_collections.baremetal.k8s.plugins.module_utils.inventory import build_inventory
from ansible_collections.baremetal.k8s.plugins.module_utils.vocabulary import group_name
from fleet_samples import (
    BIN,
    EXAMPLE_DIR,
    EXAMPLE_FLEET,
    ansible_env,
    small_fleet,
    unreachable_kubeconfig,
    unwrap,
    write_fleet,
)


def run_inventory(source, *args, env_extra=None, check=True):
    env = ansible_env(ANSIBLE_NOCOLOR="1")
    env.update(env_extra or {})
    proc = subprocess.run([os.path.join(BIN, "ansible-inventory"), "-i", str(source), *args], env=env,
                          capture_output=True, text=True, check=False, timeout=120)  # fmt: skip
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def listing(source, *args, **kwargs):
    return unwrap(json.loads(run_inventory(source, "--list", *args, **kwargs).stdout))


def hosts_of(data, group):
    return set(data.get(group, {}).get("hosts", []))


def small_inventory(tmp_path, **config):
    """An inventory directory: small_fleet() and a plugin config with CONFIG's options."""
    inv = tmp_path / "inv"
    inv.mkdir()
    write_fleet(inv, small_fleet())
    (inv / "fleet.baremetal.yml").write_text(yaml.safe_dump({"plugin": "baremetal.k8s.fleet", **config}))
    return inv


@pytest.fixture
def example(tmp_path):
    """A copy of inventory/example (the tests may write a ledger or a cache)."""
    target = tmp_path / "inventory"
    shutil.copytree(EXAMPLE_DIR, target, ignore=shutil.ignore_patterns("*.lock"))
    return target


# --------------------------------------------------------------------------- pure


def test_group_names_are_safe():
    assert group_name("rack", "ams1", "a-01.x") == "rack_ams1_a_01_x"


@pytest.mark.parametrize(
    ("name", "claimed"),
    [("fleet.baremetal.yml", True), ("lab.baremetal.yaml", True), ("fleet.yml", True), ("prod.fleet.json", True),
     ("fleet.allocations.json", True), ("fleet.allocations.json.lock", True), ("fleet.placement.yml", True),
     ("hosts.yml", False), ("fleet.yml.orig", False)],
)  # fmt: skip
def test_verify_file(tmp_path, name, claimed):
    path = tmp_path / name
    path.write_text("plugin: baremetal.k8s.fleet\n")
    assert InventoryModule().verify_file(str(path)) is claimed
    assert bool(DATA_RE.search(name)) is (claimed and ".baremetal." not in name)


def test_build_inventory_groups_and_hostvars():
    fleet = load_fleet(EXAMPLE_FLEET)
    ledger = ipam.empty_ledger()
    ipam.allocate(fleet, ledger)
    data = build_inventory(fleet, ledger)
    groups, hosts = data["groups"], data["hosts"]
    assert groups["region_eu_west"]["children"] == ["datacenter_ams1"]
    assert groups["datacenter_ams1"]["children"] == ["row_ams1_r1", "row_ams1_r2"]
    assert groups["rack_ams1_a03"]["hosts"] == ["ams1-a03-s01", "ams1-a03-s02", "ams1-a03-s03", "ams1-a03-s04"]
    assert groups["state_retired"]["hosts"] == ["ams1-a03-s04"]
    assert "cluster_ams1_prod_etcd" in groups["role_etcd"]["children"]
    assert groups["cluster_ams1_prod_etcd"]["hosts"] == ["ams1-a01-s01", "ams1-a02-s01", "ams1-a03-s01"]
    assert groups["node_group_ams1_prod_gpu"]["hosts"] == ["ams1-a03-s02"]
    assert groups["cluster_ams1_prod"]["vars"]["k8s_cluster"]["api_endpoint"] == "10.10.0.10:6443"
    host = hosts["ams1-a03-s02"]
    assert host["pod_cidr"] == "10.200.5.0/24" and host["wireguard_address"] == "10.201.0.6"  # retired s04 skipped
    assert host["fleet_failure_domain"] == "eu-west/ams1/r2/a03"
    assert host["fleet_hardware"]["gpu_count"] == 4
    assert host["fleet_roles"] == ["worker"] and host["fleet_node_groups"] == ["gpu"]
    assert hosts["ams1-a01-s01"]["ansible_user"] == "root"  # connection settings pass through
    assert hosts["ams1-a01-s01"]["fleet_protection"] == {"deletion": False, "reason": ""}
    assert "pod_cidr" not in hosts["ams1-a03-s03"]  # a spare serves no cluster
    assert hosts["ams1-a03-s04"]["pod_cidr"] is None  # retired, never allocated


# --------------------------------------------------------------------------- the real CLI


def test_cli_graph_on_the_shipped_example_writes_nothing():
    """The command of the README, on the checkout itself: the shipped ledger is complete, nothing is written."""
    ledger = os.path.join(EXAMPLE_DIR, "fleet.allocations.json")
    before = os.stat(ledger).st_mtime_ns
    out = run_inventory(EXAMPLE_DIR, "--graph").stdout
    for group in ("@cluster_ams1_prod:", "@rack_ams1_a01:", "@role_etcd:", "@state_retired:", "@workload_gpu:"):
        assert group in out
    assert os.stat(ledger).st_mtime_ns == before


def test_cli_list_groups_hostvars_and_wireguard_peers(example):
    os.unlink(example / "fleet.allocations.json")  # cold: the plugin allocates and writes the ledger
    data = listing(example)
    hostvars = data["_meta"]["hostvars"]
    assert len(hostvars) == 15
    assert hosts_of(data, "cluster_nyc1_dev_worker") == {
        "nyc1-b01-s01", "nyc1-b02-s01", "nyc1-b01-s02", "nyc1-b02-s02", "nyc1-b02-s03"}  # fmt: skip
    assert hosts_of(data, "state_maintenance") == {"nyc1-b01-s02"}
    assert hosts_of(data, "workload_gpu") == {"ams1-a03-s02"}  # keyed_groups of fleet.baremetal.yml
    assert set(data["role_worker"]["children"]) == {"cluster_ams1_prod_worker", "cluster_nyc1_dev_worker"}
    host = hostvars["ams1-a01-s02"]
    assert host["ansible_host"] == "10.10.1.12"
    assert host["pod_cidr"] == "10.200.3.0/24" and host["wireguard_address"] == "10.201.0.4"
    assert host["fleet_location"] == {"region": "eu-west", "datacenter": "ams1", "row": "r1", "rack": "a01",
                                      "tor": "ams1-a01-tor"}  # fmt: skip
    # The same allocations as the shipped ledger: allocation is deterministic.
    with open(os.path.join(EXAMPLE_DIR, "fleet.allocations.json"), encoding="utf-8") as handle:
        assert json.load(handle) == json.loads((example / "fleet.allocations.json").read_text())
    # WireGuard endpoints: private inside the shared network, public across networks.
    peers = hostvars["ams1-a01-s02"]["wireguard_peers"]  # a group var, merged into hostvars by --list
    assert hosts_of(data, "wireguard_ams1_prod_ams1_r1_private") >= {"ams1-a01-s02", "ams1-a02-s01"}
    assert peers["ams1-a02-s01"]["endpoint"] == "10.10.2.11:51820"
    assert peers["ams1-a03-s01"]["endpoint"] == "203.0.113.17:51820"
    # Second run: same answer, the ledger is not rewritten.
    mtime = os.stat(example / "fleet.allocations.json").st_mtime_ns
    assert listing(example)["_meta"]["hostvars"]["ams1-a01-s02"]["pod_cidr"] == "10.200.3.0/24"
    assert os.stat(example / "fleet.allocations.json").st_mtime_ns == mtime


def test_cli_constructable_and_cacheable(tmp_path):
    inv = tmp_path / "inv"
    inv.mkdir()
    write_fleet(inv, small_fleet())
    cache = tmp_path / "cache"
    config = {
        "plugin": "baremetal.k8s.fleet",
        "compose": {"node_ip": "fleet_addresses.private", "wg_port_plus_one": "wireguard_port + 1"},
        "groups": {"big_boxes": "fleet_hardware.cores >= 32", "none_yet": "false"},
        "keyed_groups": [{"key": "fleet_location.rack", "prefix": "in_rack"}],
        "cache": True,
        "cache_plugin": "ansible.builtin.jsonfile",
        "cache_connection": str(cache),
        "cache_timeout": 3600,
    }
    (inv / "small.baremetal.yml").write_text(yaml.safe_dump(config))
    data = listing(inv)
    host = data["_meta"]["hostvars"]["s01"]
    assert host["node_ip"] == "10.10.0.11" and host["wg_port_plus_one"] == 51821
    assert hosts_of(data, "big_boxes") == {"s00", "s01", "s02", "s03", "s04", "s05"}
    assert hosts_of(data, "in_rack_a02") == {"s01", "s04"}
    assert os.listdir(cache), "the cache was not filled"

    # While nothing changes the cache answers: the fleet file is not even parsed (a same-size edit with its
    # old mtime would be a parse error).
    fleet_path = inv / "fleet.yml"
    text, stat = fleet_path.read_text(), fleet_path.stat()
    fleet_path.write_text(text.replace("version: 1", "version: [", 1))
    os.utime(fleet_path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert listing(inv)["_meta"]["hostvars"]["s01"]["wireguard_address"] == "10.201.0.2"
    fleet_path.write_text(text)
    os.utime(fleet_path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    # A ledger changed behind the plugin's back is seen at once: the cache is keyed on the ledgers too ...
    ledger_path = inv / "fleet.allocations.json"
    ledger = json.loads(ledger_path.read_text())
    ledger["clusters"]["c1"]["nodes"]["s01"]["wireguard_address"] = "10.201.0.99"
    ledger_path.write_text(json.dumps(ledger))
    assert listing(inv)["_meta"]["hostvars"]["s01"]["wireguard_address"] == "10.201.0.99"
    # ... and so is any change of the fleet file.
    ledger["clusters"]["c1"]["nodes"]["s01"]["wireguard_address"] = "10.201.0.98"
    ledger_path.write_text(json.dumps(ledger))
    write_fleet(inv, small_fleet(servers=7))
    data = listing(inv)
    assert data["_meta"]["hostvars"]["s01"]["wireguard_address"] == "10.201.0.98"
    assert data["_meta"]["hostvars"]["s06"]["pod_cidr"] == "10.200.6.0/24"


def test_cli_bad_fleet_is_a_clear_error_without_traceback(tmp_path):
    inv = tmp_path / "inv"
    inv.mkdir()
    data = small_fleet()
    data["servers"][3]["location"]["rack"] = "z99"
    fleet_path = write_fleet(inv, data)
    (inv / "fleet.baremetal.yml").write_text("plugin: baremetal.k8s.fleet\n")
    proc = run_inventory(inv, "--list", env_extra={"ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "true"}, check=False)
    assert proc.returncode != 0
    assert f"{fleet_path}: servers[3].location.rack: no rack 'z99'" in proc.stderr
    assert "Fix: use one of: a01, a02, a03" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_unknown_option_value(tmp_path):
    inv = small_inventory(tmp_path, live_state={"nope": "/x"})
    proc = run_inventory(inv, "--list", env_extra={"ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "true"}, check=False)
    assert proc.returncode != 0
    assert "live_state: unknown cluster 'nope'; use one of: c1" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_malformed_live_state_kubeconfig_is_a_warning(tmp_path):
    """A live-state kubeconfig that is a YAML list: the docs promise a warning, not a failed inventory."""
    (tmp_path / "list.conf").write_text("- a\n- b\n")
    inv = small_inventory(tmp_path, live_state={"c1": str(tmp_path / "list.conf")})
    proc = run_inventory(inv, "--list")
    assert "live state of c1 unavailable" in proc.stderr and "is not a kubeconfig" in proc.stderr
    data = unwrap(json.loads(proc.stdout))
    assert hosts_of(data, "k8s_unreachable") == {"s00", "s01", "s02", "s03", "s04", "s05"}


def test_cli_unreachable_kubernetes_store_is_one_clear_sentence(tmp_path):
    dead = unreachable_kubeconfig(tmp_path / "dead.conf")
    inv = small_inventory(tmp_path, allocation_store="kubernetes", allocation_kubeconfig=dead)
    proc = run_inventory(inv, "--list", env_extra={"ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "true"}, check=False)
    assert proc.returncode != 0
    assert "configmap baremetal-k8s/baremetal-k8s-placement: (top level): cannot read the ledger: cannot reach" \
           " the API server" in proc.stderr.replace("\n", " ")
    assert "MaxRetryError" not in proc.stderr and "Traceback" not in proc.stderr


def test_a_server_the_recovery_job_marked_failed_is_failed_in_the_inventory(tmp_path):
    """The recovery state's failed marks are applied on top of the fleet file (docs/recovery.md)."""
    inv = small_inventory(tmp_path)
    (inv / "fleet.recovery.json").write_text(json.dumps(
        {"version": 1, "failed": {"s01": {"reason": "host does not answer", "since": 1.0, "replaced_by": "s05"}}}))
    data = listing(inv)
    assert "s01" in data["state_failed"]["hosts"] and "s01" not in data["state_active"]["hosts"]
    assert data["_meta"]["hostvars"]["s01"]["fleet_state"] == "failed"


def test_a_server_the_maintenance_job_marked_is_in_maintenance_with_its_reason(tmp_path):
    inv = small_inventory(tmp_path)
    (inv / "fleet.recovery.json").write_text(json.dumps(
        {"version": 1, "maintenance": {"s04": {"reason": "replace DIMM B2", "by": "awx-job-9", "since": 1.0}}}))
    data = listing(inv)
    assert "s04" in data["state_maintenance"]["hosts"] and "s04" not in data["state_active"]["hosts"]
    assert data["_meta"]["hostvars"]["s04"]["fleet_state"] == "maintenance"
    assert data["_meta"]["hostvars"]["s04"]["fleet_state_reason"] == "replace DIMM B2"
    assert "fleet_state_reason" not in data["_meta"]["hostvars"]["s03"]
