# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Small fleets built in code, shared by the fleet, IPAM, store and inventory tests.

``small_fleet()`` is a valid fleet dict: one region, one datacenter, three
racks, one private network, servers s00..sNN and one cluster ``c1`` whose first
three servers are the control plane (etcd) and the rest workers. Tests change
one field to make it invalid, so each error case stays one line.
"""

from __future__ import annotations

import copy
import os
import sys

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLE_DIR = os.path.join(REPO, "inventory", "example")
EXAMPLE_FLEET = os.path.join(EXAMPLE_DIR, "fleet.yml")
RACKS = ("a01", "a02", "a03")


def server(index, state="active", **extra):
    entry = {
        "name": "s%02d" % index,
        "state": state,
        "hardware": {
            "cores": 32,
            "memory_gb": 128,
            "disks": [{"type": "nvme", "size_gb": 960}],
            "nics": [{"name": "eno1", "speed_gbps": 25}],
        },
        "location": {"region": "eu", "datacenter": "dc1", "row": "r1", "rack": RACKS[index % len(RACKS)]},
        "addresses": {"private": "10.10.0.%d" % (index + 10), "public": "203.0.113.%d" % (index + 10)},
        "labels": {"workload": "general"},
    }
    entry.update(extra)
    return entry


def cluster(name="c1", members=(), *, pod_cidr="10.200.0.0/16", service_cidr="10.96.0.0/16",
            wireguard="10.201.0.0/24", control_planes=3):
    members = list(members)
    groups = []
    if control_planes:
        groups.append({"name": "control-plane", "roles": ["control_plane", "etcd"],
                       "servers": members[:control_planes]})
    if members[control_planes:]:
        groups.append({"name": "workers", "roles": ["worker"], "servers": members[control_planes:]})
    return {
        "name": name,
        "region": "eu",
        "kubernetes_version": "1.36.3",
        "api": {"vip": "10.10.255.1"},
        "pod_cidr": pod_cidr,
        "service_cidr": service_cidr,
        "wireguard": {"cidr": wireguard},
        "node_groups": groups,
    }  # fmt: skip


def small_fleet(servers=6, members=None, **cluster_args):
    """A valid fleet dict; ``members`` defaults to every server."""
    entries = [server(i) for i in range(servers)]
    names = [s["name"] for s in entries] if members is None else list(members)
    return {
        "version": 1,
        "regions": [
            {
                "name": "eu",
                "datacenters": [{"name": "dc1", "rows": [{"name": "r1", "racks": [{"name": r} for r in RACKS]}]}],
            }
        ],
        "networks": [{"name": "dc1-private", "cidr": "10.10.0.0/16", "kind": "private"}],
        "servers": entries,
        "clusters": [cluster("c1", names, **cluster_args)],
    }


def clone(data):
    return copy.deepcopy(data)


def write_fleet(directory, data, name="fleet.yml"):
    path = os.path.join(str(directory), name)
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(data, handle, sort_keys=False)
    return path


def unwrap(value):
    """ansible-inventory marks plugin strings as untrusted ({"__ansible_unsafe": ...}): read the plain value."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


# The venv's bin directory: ansible-inventory, ansible and ansible-playbook run from there.
BIN = os.path.dirname(sys.executable)


def ansible_env(**extra):
    """The environment to run Ansible's CLIs on this checkout's collection (extra: more variables)."""
    env = dict(
        os.environ,
        PATH=BIN + os.pathsep + os.environ.get("PATH", ""),
        ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, ".collections"),
        ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
    )
    env.update(extra)
    return env


def module_env(**extra):
    """ansible_env() for running one module on localhost with the JSON callback, whose output tests parse."""
    return ansible_env(ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
                       ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_LOCALHOST_WARNING="0", **extra)


def run_module(module, args, *flags, env=None):
    """Run one module once on localhost through the ``ansible`` CLI; returns its task result (a dict)."""
    import json
    import subprocess

    proc = subprocess.run([os.path.join(BIN, "ansible"), "localhost", "-i", "localhost,", "-c", "local", "-m", module,
                           "-a", json.dumps(args), *flags], env=module_env(**(env or {})), capture_output=True,
                          text=True, check=False, timeout=180)  # fmt: skip
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]


def unreachable_kubeconfig(path):
    """A valid kubeconfig whose API server never answers (port 1 on loopback); returns the path as a string."""
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "c",
            "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
            "users": [{"name": "u", "user": {"token": "t"}}],
            "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}, handle)  # fmt: skip
    return str(path)
