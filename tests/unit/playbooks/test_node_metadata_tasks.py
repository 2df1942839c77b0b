# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/tasks/node_metadata.yml run for real with ansible-playbook against a fake kubectl: the wanted labels
and taints are built from the members' host vars, one patch runs per node that lacks them, none in check mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BIN = os.path.dirname(sys.executable)
TASKS = os.path.join(REPO, "playbooks", "tasks", "node_metadata.yml")

# The fake kubectl prints nodes.json for "get nodes -o json" and logs each "patch node NAME --type=json -p PATCH".
KUBECTL = """#!/bin/sh
here=$(dirname "$0")
case "$*" in
  *"get nodes -o json"*) cat "$here/nodes.json" ;;
  *"patch node"*) shift 4; printf '%s %s\\n' "$1" "$4" >> "$here/patches.log" ;;
  *) echo "unexpected: $*" >&2; exit 2 ;;
esac
"""


def node(name, labels, taints=None, annotations=None):
    return {"metadata": {"name": name, "resourceVersion": "1", "labels": labels, "annotations": annotations or {}},
            "spec": {"taints": taints or []}}


def run(tmp_path, *args):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "kubectl").write_text(KUBECTL)
    (fake / "kubectl").chmod(0o755)
    cp_taint = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
    (fake / "nodes.json").write_text(json.dumps({"items": [
        node("cp1", {"env": "prod"}, [cp_taint], {"baremetal.k8s/managed-labels": "env"}),  # as declared
        node("w1", {"kubernetes.io/hostname": "w1"}),
    ]}))
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory = {"all": {"children": {"cluster_c1": {
        "vars": {"k8s_cluster": {"groups": {"cluster": "cluster_c1"}}, **local},
        "hosts": {
            "cp1": {"fleet_node_labels": {"env": "prod"}, "fleet_node_taints": [],
                    "fleet_roles": ["control_plane", "etcd"]},
            "w1": {"fleet_node_labels": {"example.com/gpu": "a100"},
                   "fleet_node_taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}],
                   "fleet_roles": ["worker"]},
            "w9": {"fleet_node_labels": {}, "fleet_node_taints": [], "fleet_roles": ["worker"]},  # not joined
            "lb1": {"fleet_roles": ["load_balancer"]},
        }}}}}
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "play.yml").write_text(yaml.safe_dump([{
        "name": "Apply", "hosts": "cp1", "gather_facts": False,
        "tasks": [{"name": "Apply", "ansible.builtin.include_tasks": TASKS}]}]))
    from fleet_samples import ansible_env

    proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", str(tmp_path / "inventory.yml"),
                           str(tmp_path / "play.yml"), *args],
                          env=ansible_env(PATH=f"{fake}{os.pathsep}{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
                                          ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0"),
                          capture_output=True, text=True, check=False, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    log = fake / "patches.log"
    patches = [line.split(" ", 1) for line in log.read_text().splitlines()] if log.exists() else []
    return proc.stdout, {name: json.loads(patch) for name, patch in patches}


def test_the_node_that_lacks_its_labels_and_taints_is_patched(tmp_path):
    out, patches = run(tmp_path)
    assert list(patches) == ["w1"]
    assert patches["w1"] == [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "1"},
        {"op": "add", "path": "/metadata/labels/example.com~1gpu", "value": "a100"},
        {"op": "add", "path": "/metadata/annotations", "value": {"baremetal.k8s/managed-labels": "example.com/gpu"}},
        {"op": "add", "path": "/spec/taints", "value": [{"key": "dedicated", "effect": "NoSchedule", "value": "gpu"}]},
    ]
    assert "changed: [cp1] => (item=w1)" in out


def test_check_mode_patches_nothing(tmp_path):
    out, patches = run(tmp_path, "--check")
    assert patches == {}
    assert "(item=w1)" in out
