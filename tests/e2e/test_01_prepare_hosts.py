"""L3: playbooks/prepare_hosts.yml converges the lab's 5 hosts through the fleet inventory, then changes nothing."""

from __future__ import annotations

import json
import os


def test_fleet_inventory_describes_the_lab(lab):
    inventory = lab.inventory_list()
    hostvars = inventory["_meta"]["hostvars"]
    assert sorted(hostvars) == sorted(lab.hosts() + lab.spares())
    assert sorted(inventory["cluster_e2e"]["children"]) == [
        "cluster_e2e_control_plane", "cluster_e2e_etcd", "cluster_e2e_load_balancer", "cluster_e2e_worker",
        "node_group_e2e_control_plane", "node_group_e2e_edge", "wireguard_e2e_e2e_net"]
    pod_cidrs = [hostvars[host]["pod_cidr"] for host in lab.hosts()]
    assert len(set(pod_cidrs)) == 5, pod_cidrs
    assert "pod_cidr" not in hostvars[lab.spares()[0]]  # a spare serves no cluster


def test_the_worker_group_is_declared_by_intent_and_filled_by_placement(lab):
    """The fleet file names no server for the workers; place.yml (run by the lab fixture) chose them."""
    with open(lab.fleet_file, encoding="utf-8") as handle:
        handle.readline()  # lab.py's comment header
        fleet = json.load(handle)
    edge = next(g for g in fleet["clusters"][0]["node_groups"] if g["name"] == "edge")
    assert "servers" not in edge and edge["intent"]["count"] == 2
    inventory = lab.inventory_list()
    assert sorted(inventory["cluster_e2e_worker"]["hosts"]) == lab.hosts()[3:]
    assert inventory["_meta"]["hostvars"][lab.hosts()[3]]["fleet_node_groups"] == ["edge"]
    with open(os.path.join(lab.inventory, "fleet.placement.yml"), encoding="utf-8") as handle:
        ledger = handle.read()
    assert all(f"{host}:" in ledger for host in lab.hosts()[3:])
    again = lab.playbook("place.yml", "-e", "place_fleet=" + lab.fleet_file)
    assert again.rc == 0 and again.changed_hosts() == {}, "a second placement changed the ledger"


def test_prepare_hosts_converges(lab):
    run = lab.playbook("prepare_hosts.yml")
    assert run.rc == 0, "prepare_hosts.yml failed"
    assert sorted(run.recap) == lab.hosts()
    assert all(counts["failed"] == 0 and counts["unreachable"] == 0 for counts in run.recap.values())


def test_prepare_hosts_is_idempotent(lab):
    run = lab.playbook("prepare_hosts.yml")
    assert run.rc == 0
    assert run.changed_hosts() == {}, "a second run changed something"


def test_hosts_are_ready_for_kubeadm(lab):
    for host in lab.hosts():
        swap = lab.sh(host, "swapon --show --noheadings | wc -l").stdout.strip()
        assert swap == "0", host
        forward = lab.sh(host, "sysctl -n net.ipv4.ip_forward").stdout.strip()
        assert forward == "1", host
        containerd = lab.sh(host, "systemctl is-active containerd").stdout.strip()
        assert containerd == "active", host
