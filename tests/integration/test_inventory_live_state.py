# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Live node state in the fleet inventory, read from the real API server of the session control plane.

Node objects named after fleet servers are created (kwok keeps some Ready), one is cordoned, one is
patched NotReady, one registered under another name is matched by its InternalIP; then the real
``ansible-inventory --list`` must show it in hostvars (``k8s_node``) and in the ``k8s_*`` groups.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import subprocess
import sys
import uuid

import pytest
import yaml
from controlplane import create_kwok_node

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "unit"))
from fleet_samples import BIN, ansible_env, small_fleet, unwrap, write_fleet  # noqa: E402


def rename(data, prefix):
    """Prefix every server name (Node names are cluster-wide; tests must not collide)."""
    for entry in data["servers"]:
        entry["name"] = prefix + entry["name"]
    for group in data["clusters"][0]["node_groups"]:
        group["servers"] = [prefix + s for s in group["servers"]]
    return data


def inventory_list(directory):
    env = ansible_env()
    proc = subprocess.run([os.path.join(BIN, "ansible-inventory"), "-i", str(directory), "--list"], env=env,
                          capture_output=True, text=True, check=False, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return unwrap(json.loads(proc.stdout)), proc.stderr


def plain_node(core, name, ready, internal_ip=None):
    """A Node no kubelet or kwok manages, with a Ready condition patched into its status."""
    taint = {"key": "example.com/dedicated", "value": "gpu", "effect": "NoSchedule"}
    core.create_node({"metadata": {"name": name}, "spec": {"taints": [taint]}})
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    status = {
        "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                        "reason": "KubeletReady" if ready else "KubeletNotReady",
                        "lastHeartbeatTime": now, "lastTransitionTime": now}],
        "nodeInfo": {"kubeletVersion": "v1.36.3", "machineID": "", "systemUUID": "", "bootID": "",
                     "kernelVersion": "", "osImage": "", "containerRuntimeVersion": "", "kubeProxyVersion": "",
                     "operatingSystem": "linux", "architecture": "amd64"},
        "addresses": [{"type": "InternalIP", "address": internal_ip}] if internal_ip else [],
    }  # fmt: skip
    core.patch_node_status(name, {"status": status})


@pytest.fixture
def nodes(k8s_client):
    from kubernetes import client

    core = client.CoreV1Api(k8s_client)
    created = []
    yield core, created
    for name in created:
        with contextlib.suppress(client.exceptions.ApiException):
            core.delete_node(name)


def test_live_state_in_hostvars_and_groups(tmp_path, kubeconfig, k8s_client, nodes):
    core, created = nodes
    prefix = "h7%s-" % uuid.uuid4().hex[:6]
    data = rename(small_fleet(), prefix)
    s = [entry["name"] for entry in data["servers"]]
    inv = tmp_path / "inv"
    inv.mkdir()
    write_fleet(inv, data)
    (inv / "fleet.baremetal.yml").write_text(yaml.safe_dump({
        "plugin": "baremetal.k8s.fleet",
        "live_state": {"c1": kubeconfig},
        "live_state_timeout": 5,
    }))  # fmt: skip

    for name in s[:3]:  # kwok keeps these Ready
        create_kwok_node(k8s_client, name)
        created.append(name)
    core.patch_node(s[2], {"spec": {"unschedulable": True}})  # cordoned
    plain_node(core, s[3], ready=False)
    created.append(s[3])
    # s04's kubelet registered under another hostname: matched by its InternalIP.
    other = prefix + "renamed"
    plain_node(core, other, ready=True, internal_ip=data["servers"][4]["addresses"]["private"])
    created.append(other)
    # s05 never registered.

    listing = inventory_list(inv)[0]
    hostvars = listing["_meta"]["hostvars"]
    assert set(listing["k8s_ready"]["hosts"]) == {s[0], s[1], s[2], s[4]}
    assert set(listing["k8s_not_ready"]["hosts"]) == {s[3]}
    assert set(listing["k8s_cordoned"]["hosts"]) == {s[2]}
    assert set(listing["k8s_unregistered"]["hosts"]) == {s[5]}

    ready = hostvars[s[0]]["k8s_node"]
    assert ready["registered"] is True and ready["ready"] is True and ready["cordoned"] is False
    assert ready["kubelet_version"]  # what kwok reports
    assert hostvars[s[2]]["k8s_node"]["cordoned"] is True
    not_ready = hostvars[s[3]]["k8s_node"]
    assert not_ready["ready"] is False and not_ready["ready_reason"] == "KubeletNotReady"
    assert not_ready["ready_since"].startswith(str(datetime.datetime.now(datetime.timezone.utc).year))
    assert not_ready["kubelet_version"] == "v1.36.3"
    assert {"key": "example.com/dedicated", "value": "gpu", "effect": "NoSchedule"} in not_ready["taints"]
    assert hostvars[s[4]]["k8s_node"]["name"] == other
    assert hostvars[s[5]]["k8s_node"] == {
        "name": None, "registered": False, "ready": None, "cordoned": False, "kubelet_version": None,
        "taints": [], "internal_ips": [], "ready_reason": "NotRegistered", "ready_since": None}  # fmt: skip
    # The fleet part is unchanged by live state.
    assert hostvars[s[0]]["pod_cidr"] == "10.200.0.0/24"

    # Uncordon s02 and make s03 Ready: a new inventory run follows the cluster.
    core.patch_node(s[2], {"spec": {"unschedulable": False}})
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    core.patch_node_status(s[3], {"status": {"conditions": [
        {"type": "Ready", "status": "True", "reason": "KubeletReady", "lastHeartbeatTime": now,
         "lastTransitionTime": now}]}})  # fmt: skip
    listing = inventory_list(inv)[0]
    assert "k8s_cordoned" not in listing or not listing["k8s_cordoned"].get("hosts")
    assert s[3] in listing["k8s_ready"]["hosts"]
    assert "k8s_not_ready" not in listing or not listing["k8s_not_ready"].get("hosts")


def test_unreachable_cluster_is_a_warning(tmp_path, kubeconfig):
    # The session kubeconfig with the API server port changed to one nobody listens on.
    with open(kubeconfig, encoding="utf-8") as handle:
        config = yaml.safe_load(handle)
    server = config["clusters"][0]["cluster"]["server"]
    config["clusters"][0]["cluster"]["server"] = server.rsplit(":", 1)[0] + ":1"
    dead = tmp_path / "dead.kubeconfig"
    dead.write_text(yaml.safe_dump(config))
    inv = tmp_path / "inv"
    inv.mkdir()
    write_fleet(inv, small_fleet())
    (inv / "fleet.baremetal.yml").write_text(yaml.safe_dump({
        "plugin": "baremetal.k8s.fleet", "live_state": {"c1": str(dead)}, "live_state_timeout": 2}))  # fmt: skip
    listing, stderr = inventory_list(inv)
    assert "live state of c1 unavailable" in stderr and "cannot reach the API server" in stderr
    assert len(listing["k8s_unreachable"]["hosts"]) == 6
    assert listing["_meta"]["hostvars"]["s00"]["k8s_node"] is None
    assert listing["_meta"]["hostvars"]["s00"]["pod_cidr"] == "10.200.0.0/24"  # the fleet is still there
