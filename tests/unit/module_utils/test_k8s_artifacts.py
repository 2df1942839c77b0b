# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The air-gap artifact list and manifest checks: right set per mode, clear errors naming the fix."""

from __future__ import annotations

import pytest
from ansible_collections.baremetal.k8s.plugins.module_utils import k8s_artifacts as ka
from ansible_collections.baremetal.k8s.plugins.module_utils.bootstrap_artifacts import node_artifacts

SHA = "0" * 64


def manifest(pod_network="routed", **overrides):
    entries = []
    for item in ka.required("1.36.3", "amd64", pod_network):
        entry = dict(item, sha256=SHA, size=1)
        if item["kind"] == "image":
            entry["image"] = ka.image_ref(item["name"], "v1")
        entries.append(entry)
    data = {"format": 1, "kubernetes_version": "1.36.3", "arch": "amd64", "pod_network": pod_network,
            "artifacts": entries}
    data.update(overrides)
    return data


def test_routed_needs_bridge_cni_and_cilium_does_not():
    routed = {a["name"] for a in ka.required("v1.36.3", "amd64", "routed")}
    cilium = {a["name"] for a in ka.required("1.36.3", "amd64", "cilium")}
    assert {"bridge", "host-local", "portmap"} <= routed
    assert not {"bridge", "host-local", "portmap"} & cilium
    assert {"kubeadm", "kubelet", "kubectl", "etcd", "coredns", "pause", "kube-proxy", "loopback"} <= cilium


def test_paths_are_stable_and_images_are_tars():
    by_name = {a["name"]: a for a in ka.required("1.36.3", "amd64", "routed")}
    assert by_name["kubeadm"]["path"] == "bin/kubeadm"
    assert by_name["etcd"]["path"] == "images/etcd.tar"
    assert by_name["bridge"]["path"] == "cni/bridge"
    assert by_name["etcd"]["nodes"] == ["control_plane"]


@pytest.mark.parametrize("args, words", [
    (("1.35.0", "amd64", "routed"), "not supported"),
    (("1.36", "amd64", "routed"), "release version"),
    (("1.36.3", "s390x", "routed"), "arch"),
    (("1.36.3", "amd64", "flannel"), "pod_network"),
])
def test_bad_requests_name_the_field(args, words):
    with pytest.raises(ka.ArtifactError, match=words):
        ka.required(*args)


def test_image_ref_matches_kubeadm_layout():
    assert ka.image_ref("coredns", "v1.14.2") == "registry.k8s.io/coredns/coredns:v1.14.2"
    assert ka.image_ref("pause", "3.10.2") == "registry.k8s.io/pause:3.10.2"


def test_check_manifest_accepts_a_complete_set():
    artifacts = ka.check_manifest(manifest(), "1.36.3", "amd64", "routed")
    assert "kube-apiserver" in artifacts


@pytest.mark.parametrize("change, words", [
    ({"kubernetes_version": "1.36.2"}, "kubernetes_version is '1.36.2' but the inventory wants '1.36.3'"),
    ({"pod_network": "cilium"}, "pod_network"),
    ({"format": 2}, "format is 2"),
    ({"artifacts": "x"}, "must be a list"),
])
def test_check_manifest_mismatches_say_how_to_fix(change, words):
    with pytest.raises(ka.ArtifactError, match=words) as info:
        ka.check_manifest(manifest(**change), "1.36.3", "amd64", "routed", source="/srv/k8s/manifest.json")
    assert "/srv/k8s/manifest.json" in str(info.value)


def test_check_manifest_reports_missing_and_bad_entries():
    data = manifest()
    data["artifacts"] = [a for a in data["artifacts"] if a["name"] != "etcd"]
    with pytest.raises(ka.ArtifactError, match="missing etcd"):
        ka.check_manifest(data, "1.36.3", "amd64", "routed")
    data = manifest()
    data["artifacts"][0]["sha256"] = "nothex"
    with pytest.raises(ka.ArtifactError, match=r"artifacts\[0\] \(kubeadm\): sha256"):
        ka.check_manifest(data, "1.36.3", "amd64", "routed")


@pytest.mark.parametrize(("change", "words"), [
    ({"image": "registry.k8s.io/pause"}, "needs its image reference with a tag"),
    ({"image": "registry:5000/pause"}, "needs its image reference with a tag"),  # a port is not a tag
    ({"image": ["x"]}, "needs its image reference with a tag"),
    ({"name": ["etcd"]}, "name must be a string, not list"),
])  # fmt: skip
def test_check_manifest_refuses_untagged_images_and_odd_names(change, words):
    data = manifest()
    index = next(i for i, a in enumerate(data["artifacts"]) if a["kind"] == "image")
    data["artifacts"][index].update(change)
    with pytest.raises(ka.ArtifactError, match=words):
        ka.check_manifest(data, "1.36.3", "amd64", "routed")


def test_a_checked_manifest_gives_workers_no_control_plane_images():
    """The manifest as the role uses it: checked here, then cut per node by bootstrap_artifacts.node_artifacts."""
    artifacts = list(ka.check_manifest(manifest(), "1.36.3", "amd64", "routed").values())
    dirs = {"binary": "/usr/local/bin", "image": "/var/lib/images", "cni": "/opt/cni/bin"}
    worker = {a["name"] for a in node_artifacts(artifacts, ["worker", "load_balancer"], dirs)}
    control = {a["name"] for a in node_artifacts(artifacts, ["control_plane", "etcd"], dirs)}
    assert "kube-apiserver" not in worker and "kube-proxy" in worker
    assert {"kube-apiserver", "etcd", "kube-proxy", "bridge"} <= control
