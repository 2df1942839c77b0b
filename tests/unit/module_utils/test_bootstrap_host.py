# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""cgroup v1, container and the kubelet's resolv.conf, decided from what was read on the host."""

from __future__ import annotations

import pytest
from ansible_collections.baremetal.k8s.plugins.module_utils import bootstrap_host as bh

ROUTE = "default via 172.30.0.1 dev eth0 proto static"


@pytest.mark.parametrize(("fstype", "expected"), [("cgroup2fs", False), ("tmpfs", True), ("cgroup2fs\n", False)])
def test_auto_reads_the_cgroup_filesystem_type(fstype, expected):
    assert bh.cgroup_v1("auto", fstype) is expected


@pytest.mark.parametrize(("setting", "expected"), [("true", True), ("false", False), (True, True), ("no", False)])
def test_a_cgroup_setting_wins_over_the_host(setting, expected):
    assert bh.cgroup_v1(setting, "cgroup2fs" if expected else "tmpfs") is expected
    assert bh.cgroup_v1(setting, None) is expected


@pytest.mark.parametrize(("rc", "expected"), [(0, True), (1, False), ("0", True)])
def test_auto_asks_systemd_detect_virt(rc, expected):
    assert bh.in_container("auto", rc) is expected


def test_a_container_setting_wins_and_needs_no_probe():
    assert bh.in_container("false", None) is False
    assert bh.in_container("true", 1) is True


def test_auto_without_a_reading_and_a_bad_setting_are_errors():
    with pytest.raises(bh.HostSettingError, match="not read"):
        bh.cgroup_v1("auto", None)
    with pytest.raises(bh.HostSettingError, match="not run"):
        bh.in_container("auto", None)
    with pytest.raises(bh.HostSettingError, match="auto, true or false"):
        bh.cgroup_v1("maybe", "tmpfs")


def test_docker_embedded_dns_gets_the_gateway_in_the_kubelet_resolv_conf():
    expected = {"path": "/etc/kubernetes/resolv.conf", "nameservers": ["172.30.0.1"]}
    assert bh.kubelet_resolv_conf(["127.0.0.11"], [], ROUTE) == expected
    assert bh.kubelet_resolv_conf(["127.0.0.11", "::1"], [], ROUTE)["path"] == "/etc/kubernetes/resolv.conf"


@pytest.mark.parametrize("nameservers", [["10.0.0.2"], ["127.0.0.11", "10.0.0.2"], ["127.0.0.53"],
                                         ["127.0.0.11", "127.0.0.53"], [], ["::1%lo"]])
def test_the_hosts_resolv_conf_is_kept_when_it_does_not_loop(nameservers):
    # systemd-resolved's stub is handled by kubeadm itself; a real resolver anywhere in the list is enough.
    assert bh.kubelet_resolv_conf(nameservers, [], ROUTE)["path"] == ""


def test_given_upstream_nameservers_always_get_their_own_file():
    assert bh.kubelet_resolv_conf(["10.0.0.2"], ["9.9.9.9", "1.1.1.1"], ROUTE) == {
        "path": "/etc/kubernetes/resolv.conf", "nameservers": ["9.9.9.9", "1.1.1.1"]}


def test_no_gateway_is_an_error_only_when_the_gateway_is_needed():
    assert bh.kubelet_resolv_conf(["10.0.0.2"], [], "") == {"path": "", "nameservers": []}
    assert bh.kubelet_resolv_conf(["127.0.0.11"], ["9.9.9.9"], "")["nameservers"] == ["9.9.9.9"]
    with pytest.raises(bh.HostSettingError, match="pod_upstream_dns"):
        bh.kubelet_resolv_conf(["127.0.0.11"], [], "")
