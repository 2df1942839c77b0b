# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""host_prep + containerd on the converged Kubernetes nodes of the scenario."""

import json
import os

import pytest
from conftest import SCENARIO, group_hosts, run_playbook

HOST_PREP_ONLY = os.path.join(SCENARIO, "host_prep_only.yml")
SYSCTL = {
    "net.ipv4.ip_forward": "1",
    "net.ipv6.conf.all.forwarding": "1",
    "net.bridge.bridge-nf-call-iptables": "1",
    "net.bridge.bridge-nf-call-ip6tables": "1",
}


@pytest.fixture(autouse=True)
def only_nodes(host, fleet_inventory):
    nodes = group_hosts(fleet_inventory, "role_control_plane") + group_hosts(fleet_inventory, "role_worker")
    if host.backend.get_hostname() not in nodes:
        pytest.skip("not a Kubernetes node: host_prep and containerd do not run here")


def test_sysctl_live_and_persistent(host):
    for key, value in SYSCTL.items():
        assert host.check_output("sysctl -n %s" % key) == value, key
    conf = host.file("/etc/sysctl.d/90-baremetal-k8s.conf")
    for key, value in SYSCTL.items():
        assert conf.contains("^%s = %s$" % (key.replace(".", r"\."), value))


def test_swap_off_and_masked(host):
    assert host.check_output("swapon --show --noheadings") == ""
    assert host.check_output("systemctl is-enabled swap.target || true") == "masked"


def test_modules_load_file(host):
    conf = host.file("/etc/modules-load.d/90-baremetal-k8s.conf")
    assert conf.is_file
    assert conf.contains("^overlay$") and conf.contains("^br_netfilter$")


def test_containerd_config(host):
    assert host.service("containerd").is_running
    assert host.service("containerd").is_enabled
    # What containerd itself parsed, not just the file we wrote.
    dump = host.check_output("containerd config dump")
    assert "SystemdCgroup = true" in dump
    assert 'sandbox_image = "registry.k8s.io/pause:3.10.2"' in dump
    # The lab's machine lacks CAP_SYS_RESOURCE: detection must have set it.
    assert "restrict_oom_score_adj = true" in dump
    assert host.file("/etc/containerd/certs.d/docker.io/hosts.toml").contains("mirror.lab.invalid:5000")
    assert host.run("ctr --namespace k8s.io version").rc == 0
    assert "cri" in host.check_output("ctr plugins ls -d id==cri")
    assert host.file("/etc/crictl.yaml").contains("unix:///run/containerd/containerd.sock")


def test_crictl_info(host):
    if not host.exists("crictl"):
        pytest.skip("no crictl source given (BMK8S_CRICTL): containerd checked with ctr above")
    info = json.loads(host.check_output("crictl info"))
    assert info["status"]["conditions"][0]["status"] is True
    runc = info["config"]["containerd"]["runtimes"]["runc"]
    assert runc["options"]["SystemdCgroup"] is True
    assert info["config"]["sandboxImage"] == "registry.k8s.io/pause:3.10.2"


def test_check_mode_changes_only_what_differs_and_shows_the_diff(host):
    """--check --diff on converged hosts with one changed input: only that file changes, with its diff."""
    if host.backend.get_hostname() != "bmk8s-mol-2":
        pytest.skip("runs once for the scenario")
    out = run_playbook("--check", "--diff", "-e", "containerd_sandbox_image=registry.k8s.io/pause:9.9")
    assert '+  sandbox_image = "registry.k8s.io/pause:9.9"' in out
    assert '-  sandbox_image = "registry.k8s.io/pause:3.10.2"' in out
    changed = set()
    task = None
    for line in out.splitlines():
        if line.startswith(("TASK [", "RUNNING HANDLER [")):
            task = line.split("[", 1)[1].split("]", 1)[0]
        elif line.startswith("changed:"):
            changed.add(task)
    expected = {"baremetal.k8s.containerd : Write the containerd configuration",
                "baremetal.k8s.containerd : Restart containerd"}
    assert changed == expected, out


@pytest.mark.parametrize(("extra", "expected"), [
    ('{"host_prep_sysctl_extra": {"net.ipv4.ip_fowrard": 1}}',
     "unknown kernel parameter(s) net.ipv4.ip_fowrard"),
    ('{"host_prep_kernel_modules": ["overlay", "no_such_module"]}',
     "Kernel module(s) no_such_module are not built into this kernel"),
])
def test_bad_input_is_a_clear_error(host, extra, expected):
    if host.backend.get_hostname() != "bmk8s-mol-3":
        pytest.skip("runs once for the scenario")
    result = run_playbook("-e", extra, playbook=HOST_PREP_ONLY, expect_rc=2)
    assert expected in result, result
    assert "Traceback" not in result
