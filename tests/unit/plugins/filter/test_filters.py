# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The filter plugins (bootstrap, recovery, maintenance, node_metadata, drift, hygiene, etcd_backup,
etcd_backup_timer) expose the pure functions by name, found by FQCN."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys

import pytest
import yaml
from ansible.errors import AnsibleFilterError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
BIN = os.path.dirname(sys.executable)
FILTER_DIR = os.path.join(REPO, "plugins", "filter")
# filter name -> (module_utils module, function)
FILTERS = {
    "kubeadm_bootstrap_order": ("bootstrap_kubeadm", "bootstrap_order"),
    "kubeadm_reset_peer": ("bootstrap_kubeadm", "reset_peer"),
    "kubeadm_join_credentials": ("bootstrap_kubeadm", "join_credentials"),
    "cgroup_v1": ("bootstrap_host", "cgroup_v1"),
    "in_container": ("bootstrap_host", "in_container"),
    "kubelet_resolv_conf": ("bootstrap_host", "kubelet_resolv_conf"),
    "node_artifacts": ("bootstrap_artifacts", "node_artifacts"),
    "artifacts_to_fetch": ("bootstrap_artifacts", "artifacts_to_fetch"),
    "images_to_import": ("bootstrap_artifacts", "images_to_import"),
    "lb_backends": ("bootstrap_lb", "lb_backends"),
    "vrrp_priority": ("bootstrap_lb", "vrrp_priority"),
    "recovery_probe_script": ("recovery_probes", "probe_script"),
    "recovery_probes": ("recovery_probes", "probes_from_output"),
    "recovery_health_members": ("recovery_probes", "health_members"),
    "recovery_steps_from": ("recovery_probes", "steps_from"),
    "recovery_summary": ("recovery_probes", "recovery_summary"),
    "recovery_token_host": ("recovery_probes", "token_host"),
    "maintenance_etcd_by_cluster": ("maintenance", "etcd_by_cluster"),
    "maintenance_line": ("maintenance", "decision_line"),
    "maintenance_outcome": ("maintenance", "outcome"),
    "node_metadata_changes": ("node_metadata", "changes_from_kubectl"),
    "live_rows": ("drift_host", "live_rows"),
    "live_drift": ("drift_host", "live_drift"),
    "wireguard_live_drift": ("drift_host", "wireguard_live_drift"),
    "hygiene_kubeadm_certs": ("hygiene", "kubeadm_certs"),
    "hygiene_certs_due": ("hygiene", "certs_due"),
    "hygiene_restarts": ("hygiene", "restarts"),
    "hygiene_expiring": ("hygiene", "expiring"),
    "hygiene_tokens_due": ("hygiene", "tokens_due"),
    "hygiene_secrets_due": ("hygiene", "secrets_due"),
    "etcd_backup_pki_files": ("etcd_backup", "pki_files"),
    "etcd_backup_line": ("etcd_backup", "backup_line"),
    "etcd_restore_plan": ("etcd_backup", "restore_plan"),
    "etcd_restore_check_line": ("etcd_restore_check", "check_line"),
    "etcd_backup_timer_problems": ("etcd_backup_timer", "timer_problems"),
    "etcd_backup_timer_config": ("etcd_backup_timer", "timer_config"),
}
PLUGINS = ("bootstrap", "recovery", "maintenance", "node_metadata", "drift", "hygiene", "etcd_backup",
           "etcd_backup_timer")


def plugin(name):
    return importlib.import_module("ansible_collections.baremetal.k8s.plugins.filter." + name)


def filters():
    out = {}
    for name in PLUGINS:
        out.update(plugin(name).FilterModule().filters())
    return out


def test_every_filter_is_listed_here_and_documented_beside_the_plugin():
    assert set(filters()) == set(FILTERS)
    docs = {f[:-4] for f in os.listdir(FILTER_DIR) if f.endswith(".yml")}
    assert docs == set(FILTERS)


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_each_filter_is_documented_under_its_name_and_exposes_its_pure_function(name):
    with open(os.path.join(FILTER_DIR, name + ".yml"), encoding="utf-8") as handle:
        sidecar = yaml.safe_load(handle)
    docs = sidecar["DOCUMENTATION"]
    assert docs["name"] == name
    assert set(docs["options"]) >= {"_input"}
    assert all(isinstance(line, str) for line in docs["description"])
    assert all(isinstance(option["description"], str) for option in docs["options"].values())
    assert yaml.safe_load(sidecar["EXAMPLES"])
    assert "_value" in sidecar["RETURN"]
    pure_module, function = FILTERS[name]
    pure = importlib.import_module("ansible_collections.baremetal.k8s.plugins.module_utils." + pure_module)
    decisions = {}
    for plugin_name in PLUGINS:
        decisions.update(plugin(plugin_name).DECISIONS)
    assert decisions[name] is getattr(pure, function)


def test_the_filters_return_what_the_pure_functions_return():
    filters_ = filters()
    assert filters_["kubeadm_bootstrap_order"](["a", "b"], ["b"], ["a", "b"]) == {"first": "b", "joiners": ["a"]}
    assert filters_["kubeadm_reset_peer"](["a", "b"], "a") == "b"
    assert filters_["vrrp_priority"](["a", "b"], "b") == 140
    assert filters_["cgroup_v1"]("auto", "tmpfs") is True
    assert filters_["kubelet_resolv_conf"](["10.0.0.2"], [], "") == {"path": "", "nameservers": []}
    items = [{"metadata": {"name": "w1", "resourceVersion": "7", "labels": {"env": "dev"}}, "spec": {}}]
    (change,) = filters_["node_metadata_changes"](items, {"w1": {"labels": {"env": "prod"}, "taints": []}})
    assert change["name"] == "w1" and change["labels"] == {"env": "prod"}
    assert change["patch"][:2] == [{"op": "test", "path": "/metadata/resourceVersion", "value": "7"},
                                   {"op": "add", "path": "/metadata/labels/env", "value": "prod"}]


@pytest.mark.parametrize(("name", "args", "message"), [
    ("kubeadm_join_credentials", ("no token here",), "kubeadm_join_credentials: .*print-join-command"),
    ("kubeadm_bootstrap_order", ([], [], []), "kubeadm_bootstrap_order: .*control_plane role"),
    ("cgroup_v1", ("sometimes", None), "cgroup_v1: .*auto, true or false"),
    ("vrrp_priority", (["a"], "b"), "vrrp_priority: .*api_lb_peers"),
    ("recovery_steps_from", ("dance",), "recovery_steps_from: unknown step"),
    ("node_metadata_changes", ({"items": []}, {}), "node_metadata_changes: nodes: expected the items list"),
    ("etcd_backup_timer_config", ({"target": ""},), "etcd_backup_timer_config: (?s:.*)etcd_backup_timer_target: empty"),
])
def test_errors_become_ansible_filter_errors_naming_the_filter(name, args, message):
    with pytest.raises(AnsibleFilterError, match=message):
        filters()[name](*args)


def test_ansible_finds_the_filters_by_fqcn():
    expression = ("{{ {'order': ['cp-1', 'cp-2'] | baremetal.k8s.kubeadm_bootstrap_order([], ['cp-1', 'cp-2']),"
                  " 'priority': ['lb-1', 'lb-2'] | baremetal.k8s.vrrp_priority('lb-2')} | to_json }}")
    proc = subprocess.run([os.path.join(BIN, "ansible"), "localhost", "-m", "ansible.builtin.debug",
                           "-a", "msg=%s" % expression, "-o"],
                          env=dict(os.environ, PATH=BIN + os.pathsep + os.environ.get("PATH", ""),
                                   ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, ".collections"),
                                   ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                                   ANSIBLE_LOCALHOST_WARNING="0"),
                          capture_output=True, text=True, check=False, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    msg = json.loads(proc.stdout.split("=>", 1)[1])["msg"]
    if isinstance(msg, str):
        msg = json.loads(msg)
    assert msg == {"order": {"first": "cp-1", "joiners": ["cp-2"]}, "priority": 140}


def test_ansible_doc_reads_the_sidecar_docs():
    env = dict(os.environ, PATH=BIN + os.pathsep + os.environ.get("PATH", ""),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, ".collections"),
               ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([os.path.join(BIN, "ansible-doc"), "-t", "filter", "--json", *("baremetal.k8s." + name
                           for name in sorted(FILTERS))], env=env, capture_output=True, text=True, check=False,
                          timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    docs = json.loads(proc.stdout)
    assert set(docs) == {"baremetal.k8s." + name for name in FILTERS}
    assert all(entry["doc"]["short_description"] for entry in docs.values())
