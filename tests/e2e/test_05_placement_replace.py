"""L3: a replacement chosen by placement (its replace path, as recovery will use it) reaches the inventory.

The lab's worker group is declared by intent; host 6 is a spare. Replacing worker 2 through place.yml puts the
spare in the worker groups of the next inventory run, with its own pod /24 and WireGuard address, and takes
worker 2 out. The ledger is put back afterwards: building the replacement is recovery's job (not this file's).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytestmark = [pytest.mark.lab]


def test_a_replacement_shows_up_in_the_next_inventory(lab, tmp_path):
    ledger = os.path.join(lab.inventory, "fleet.placement.yml")
    shutil.copy(ledger, tmp_path / "placement.yml")
    old, spare = lab.hosts()[4], lab.spares()[0]
    try:
        preview = lab.playbook("place.yml", "-e", "place_fleet=" + lab.fleet_file, "-e",
                               '{"place_replace": ["%s"]}' % old, "--check")
        assert preview.rc == 0
        assert Path(ledger).read_text() == (tmp_path / "placement.yml").read_text(), "check mode wrote the ledger"
        run = lab.playbook("place.yml", "-e", "place_fleet=" + lab.fleet_file, "-e",
                           '{"place_replace": ["%s"]}' % old)
        assert run.rc == 0 and run.changed_hosts() == {"localhost": 1}
        inventory = lab.inventory_list()
        assert sorted(inventory["cluster_e2e_worker"]["hosts"]) == sorted([lab.hosts()[3], spare])
        assert sorted(inventory["cluster_e2e_load_balancer"]["hosts"]) == sorted([lab.hosts()[3], spare])
        hostvars = inventory["_meta"]["hostvars"]
        assert hostvars[spare]["fleet_cluster"] == "e2e" and hostvars[spare]["fleet_node_groups"] == ["edge"]
        others = {hostvars[h]["pod_cidr"] for h in lab.hosts() if h != old}
        assert hostvars[spare]["pod_cidr"] and hostvars[spare]["pod_cidr"] not in others
        assert hostvars[spare]["wireguard_address"]
        assert "fleet_cluster" not in hostvars[old]  # out of the cluster (its addresses stay in the ledger)
    finally:
        shutil.copy(tmp_path / "placement.yml", ledger)
    assert sorted(lab.inventory_list()["cluster_e2e_worker"]["hosts"]) == lab.hosts()[3:]
