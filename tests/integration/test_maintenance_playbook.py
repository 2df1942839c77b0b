# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/maintenance.yml run for real with ansible-playbook against the integration control plane.

One fleet of a control plane (never put in maintenance here: that needs etcd_info on it) and three workers,
each a Node named as its server with the spec.podCIDR the allocation ledger gives it: c1, w1 and w2 kwok Nodes
(a Deployment of two pods under a PDB runs on w1), w3 a Node nobody manages that is NotReady. The tests run in
order on the same fleet: start (drain and hold w1), the same again (nothing changes), end in check mode
(nothing changes), end (w1 released); w2 held and released through the fleet file's state; w3 held, then
blocked on its way back because it is not Ready. No host is contacted.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml
from controlplane import deployment_manifest, wait_pods_ready
from fleet_samples import ansible_env, small_fleet, unwrap, write_fleet
from scale_fleet import depopulate, populate, wait_healthy

REPO = Path(__file__).resolve().parents[2]
BIN = os.path.dirname(sys.executable)
PLAYBOOK = str(REPO / "playbooks" / "maintenance.yml")
CORDONED_BY, CORDON_REASON = "baremetal.k8s/cordoned-by", "baremetal.k8s/cordon-reason"
MAINTENANCE = "baremetal.k8s/maintenance"
PREFIX = "mt-%s" % uuid.uuid4().hex[:6]
C1 = "%s-c1" % PREFIX
W1, W2, W3 = ("%s-w%d" % (PREFIX, k) for k in (1, 2, 3))
POOL = {"bmk8s-maintenance-pool": PREFIX}  # the Deployment's pods run on w1 and w2 only
APP = "web"


@pytest.fixture(scope="module")
def site(k8s_client, kubeconfig, tmp_path_factory):
    """The inventory dir (fleet plugin, fleet file, ledger), the Nodes, and a namespace with the Deployment."""
    from kubernetes import client

    core = client.CoreV1Api(k8s_client)
    inv = tmp_path_factory.mktemp("maintenance") / "inv"
    (inv / "group_vars" / "all").mkdir(parents=True)
    fleet = small_fleet(4, control_planes=1)
    for entry, name in zip(fleet["servers"], (C1, W1, W2, W3), strict=True):
        entry["name"] = name
    control_plane, workers = fleet["clusters"][0]["node_groups"]
    control_plane["servers"], workers["servers"] = [C1], [W1, W2, W3]
    write_fleet(inv, fleet)
    (inv / "fleet.baremetal.yml").write_text(yaml.safe_dump({"plugin": "baremetal.k8s.fleet",
                                                             "fleet_file": "fleet.yml"}))
    # No host is contacted: etcd_info, delegated to the control plane, fails at once here (the job goes on
    # without etcd, which only control planes in maintenance need).
    (inv / "group_vars" / "all" / "test.yml").write_text(yaml.safe_dump({
        "ansible_connection": "local", "bmk8s_kubeconfig": kubeconfig}))
    # The inventory writes the allocation ledger (fleet.allocations.json) and shows each server's pod /24.
    listing = subprocess.run([os.path.join(BIN, "ansible-inventory"), "-i", str(inv), "--list"], env=ansible_env(),
                             capture_output=True, text=True, check=True, timeout=120)  # fmt: skip
    hostvars = unwrap(json.loads(listing.stdout)["_meta"]["hostvars"])
    cidrs = {name: hostvars[name]["pod_cidr"] for name in (C1, W1, W2, W3)}
    assert (inv / "fleet.allocations.json").exists()

    namespace = "%s-ns" % PREFIX
    core.create_namespace({"metadata": {"name": namespace, "labels": {"bmk8s-test": "true"}}})
    try:
        # w1 alone first, so that both pods land on it; w3 has been NotReady for ten minutes.
        populate(k8s_client, PREFIX, [W1], {})
        core.patch_node(W1, {"metadata": {"labels": POOL}, "spec": {"podCIDR": cidrs[W1], "podCIDRs": [cidrs[W1]]}})
        spec = {"nodeSelector": POOL, "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "app", "image": "registry.invalid/app:1"}]}
        client.AppsV1Api(k8s_client).create_namespaced_deployment(namespace, deployment_manifest(APP, 2, spec))
        client.PolicyV1Api(k8s_client).create_namespaced_pod_disruption_budget(namespace, {
            "metadata": {"name": APP}, "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": APP}}}})
        wait_pods_ready(k8s_client, namespace, "app=%s" % APP, 2, timeout=120, node=W1)
        since = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=10)
        populate(k8s_client, PREFIX, [C1, W2], {W3: since})
        core.patch_node(C1, {"spec": {"podCIDR": cidrs[C1], "podCIDRs": [cidrs[C1]]}})
        core.patch_node(W2, {"metadata": {"labels": POOL}, "spec": {"podCIDR": cidrs[W2], "podCIDRs": [cidrs[W2]]}})
        core.patch_node(W3, {"spec": {"podCIDR": cidrs[W3], "podCIDRs": [cidrs[W3]]}})
        wait_healthy(k8s_client, PREFIX, [C1, W1, W2])
        wait_pdb(k8s_client, namespace)
        yield {"inv": inv, "fleet": fleet, "namespace": namespace}
    finally:
        depopulate(k8s_client, [C1, W1, W2, W3])
        with contextlib.suppress(client.exceptions.ApiException):
            core.delete_collection_namespaced_pod(namespace, grace_period_seconds=0)
            core.delete_namespace(namespace)


def wait_pdb(api, namespace, timeout=60.0):
    """Until the disruption controller allows one eviction (it has counted the pods)."""
    from kubernetes import client

    deadline = time.monotonic() + timeout
    while True:
        status = client.PolicyV1Api(api).read_namespaced_pod_disruption_budget(APP, namespace).status
        if status and status.observed_generation and (status.disruptions_allowed or 0) >= 1:
            return
        assert time.monotonic() < deadline, "PDB %s/%s never allowed a disruption: %s" % (namespace, APP, status)
        time.sleep(0.5)


def run(site, *args):
    """ansible-playbook maintenance.yml on the site's inventory: (rc, output with whitespace collapsed, changed
    count of localhost's PLAY RECAP)."""
    inv = site["inv"]
    proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", str(inv), PLAYBOOK,
                           "-e", "maintenance_fleet=%s" % (inv / "fleet.yml"), *args],
                          env=ansible_env(ANSIBLE_NOCOLOR="1"), capture_output=True, text=True, check=False,
                          timeout=900)  # fmt: skip
    out = " ".join((proc.stdout + proc.stderr).split())
    recap = re.search(r"localhost : ok=\d+ changed=(\d+)", out)
    assert recap, out
    return proc.returncode, out, int(recap.group(1))


def job(action, *names, reason=None):
    """The extra variables of a start or end (JSON: ``-e maintenance_reason=replace DIMM B2`` would say "replace")."""
    extra = {"maintenance_action": action, "maintenance_servers": list(names)}
    if reason is not None:
        extra["maintenance_reason"] = reason
    return ["-e", json.dumps(extra)]


def node(api, name):
    from kubernetes import client

    found = client.CoreV1Api(api).read_node(name)
    return bool(found.spec.unschedulable), dict(found.metadata.annotations or {})


def pods_on(api, namespace, name):
    from kubernetes import client

    return client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector="app=%s" % APP,
                                                     field_selector="spec.nodeName=%s" % name).items


def recovery(site):
    return json.loads((site["inv"] / "fleet.recovery.json").read_text())


def files(site):
    return {p.name: p.read_bytes() for p in site["inv"].iterdir() if p.is_file()}


def set_state(site, name, state, reason=None):
    for entry in site["fleet"]["servers"]:
        if entry["name"] == name:
            entry["state"] = state
            entry.pop("state_reason", None)
            if reason:
                entry["state_reason"] = reason
    write_fleet(site["inv"], site["fleet"])


def test_start_drains_and_holds_the_server(site, k8s_client):
    assert len(pods_on(k8s_client, site["namespace"], W1)) == 2
    rc, out, _changed = run(site, *job("start", W1, reason="replace DIMM B2"))
    assert rc == 0, out
    assert re.search(r"held %s for maintenance: drained 2 pods in [0-9.]+ s, cordoned: replace DIMM B2" % W1, out), out
    cordoned, annotations = node(k8s_client, W1)
    assert cordoned and annotations[CORDONED_BY] == MAINTENANCE and annotations[CORDON_REASON] == "replace DIMM B2"
    assert pods_on(k8s_client, site["namespace"], W1) == []
    wait_pods_ready(k8s_client, site["namespace"], "app=%s" % APP, 2, node=W2)  # the replacements
    state = recovery(site)
    assert state["maintenance"][W1]["reason"] == "replace DIMM B2"
    assert state.get("lock") is None


def test_the_same_start_again_changes_nothing(site, k8s_client):
    rc, out, changed = run(site, *job("start", W1, reason="replace DIMM B2"))
    assert rc == 0 and changed == 0, out
    assert "held %s: cordoned and drained for maintenance: replace DIMM B2" % W1 in out
    assert node(k8s_client, W1)[0]


def test_end_in_check_mode_changes_nothing(site, k8s_client):
    before_node, before_files = node(k8s_client, W1), files(site)
    rc, out, _changed = run(site, "--check", *job("end", W1))
    assert rc == 0, out
    assert "exit %s: back to active and verified" % W1 in out
    assert node(k8s_client, W1) == before_node and before_node[0]
    assert files(site) == before_files


def test_end_releases_the_server(site, k8s_client):
    rc, out, _changed = run(site, *job("end", W1))
    assert rc == 0, out
    assert "released %s from maintenance: verified and uncordoned" % W1 in out
    cordoned, annotations = node(k8s_client, W1)
    assert not cordoned and CORDONED_BY not in annotations and CORDON_REASON not in annotations
    state = recovery(site)
    assert W1 not in (state.get("maintenance") or {}) and state.get("lock") is None


def test_the_fleet_files_state_holds_and_releases(site, k8s_client):
    set_state(site, W2, "maintenance", "rack power work")
    rc, out, _changed = run(site)
    assert rc == 0, out
    assert "held %s for maintenance: drained 2 pods" % W2 in out
    cordoned, annotations = node(k8s_client, W2)
    assert cordoned and annotations[CORDONED_BY] == MAINTENANCE and annotations[CORDON_REASON] == "rack power work"
    assert pods_on(k8s_client, site["namespace"], W2) == []
    wait_pods_ready(k8s_client, site["namespace"], "app=%s" % APP, 2, node=W1)

    set_state(site, W2, "active")
    rc, out, _changed = run(site)
    assert rc == 0, out
    assert "released %s from maintenance" % W2 in out
    cordoned, annotations = node(k8s_client, W2)
    assert not cordoned and CORDONED_BY not in annotations and CORDON_REASON not in annotations


def test_a_server_that_is_not_ready_stays_held(site, k8s_client):
    rc, out, _changed = run(site, *job("start", W3, reason="disk swap"))
    assert rc == 0, out
    cordoned, annotations = node(k8s_client, W3)
    assert cordoned and annotations[CORDONED_BY] == MAINTENANCE and annotations[CORDON_REASON] == "disk swap"

    rc, out, _changed = run(site, *job("end", W3))
    assert rc != 0, out
    assert re.search(r"blocked %s: back to active but held: it is not Ready" % W3, out), out
    assert node(k8s_client, W3)[0]
    assert recovery(site).get("lock") is None
