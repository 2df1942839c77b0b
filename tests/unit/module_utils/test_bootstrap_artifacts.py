# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which artifacts a node gets, which are fetched again, which images are imported."""

from __future__ import annotations

import pytest
from ansible_collections.baremetal.k8s.plugins.module_utils import bootstrap_artifacts as ba

DIRS = {"binary": "/usr/local/bin", "cni": "/opt/cni/bin", "image": "/var/lib/baremetal-k8s/images"}
BOTH = ("control_plane", "worker")


def artifact(name, kind, path, nodes=BOTH, **extra):
    return dict(name=name, kind=kind, path=path, sha256=name[0] * 64, nodes=list(nodes), **extra)


MANIFEST = [
    artifact("kubelet", "binary", "bin/kubelet"),
    artifact("etcd", "image", "images/etcd.tar", nodes=["control_plane"], image="registry.k8s.io/etcd:3.6.16-0"),
    artifact("bridge", "cni", "cni/bridge"),
    artifact("kube-proxy", "image", "images/kube-proxy.tar", image="registry.k8s.io/kube-proxy:v1.36.3"),
    artifact("Pause", "image", "images/pause.tar", image="registry.k8s.io/pause:3.10.2"),
]


def names(artifacts):
    return [a["name"] for a in artifacts]


def test_a_control_plane_gets_its_artifacts_sorted_by_name_case_insensitively_like_jinja():
    wanted = ba.node_artifacts(MANIFEST, ["control_plane", "etcd"], DIRS)
    assert names(wanted) == ["bridge", "etcd", "kube-proxy", "kubelet", "Pause"]


def test_a_worker_and_a_node_without_roles_get_the_worker_artifacts():
    assert names(ba.node_artifacts(MANIFEST, ["worker"], DIRS)) == ["bridge", "kube-proxy", "kubelet", "Pause"]
    assert names(ba.node_artifacts(MANIFEST, [], DIRS)) == names(ba.node_artifacts(MANIFEST, None, DIRS))


def test_a_control_plane_that_is_also_a_worker_gets_the_control_plane_set():
    # What the Jinja did (one kind per node), unlike k8s_artifacts.for_node, which takes the union.
    only_worker = artifact("worker-only", "binary", "bin/worker-only", nodes=["worker"])
    wanted = ba.node_artifacts([*MANIFEST, only_worker], ["control_plane", "worker"], DIRS)
    assert "worker-only" not in names(wanted)


def test_each_artifact_gets_its_fingerprint_dest_and_mode():
    by_name = {a["name"]: a for a in ba.node_artifacts(MANIFEST, ["control_plane"], DIRS)}
    assert by_name["kubelet"]["fingerprint"] == "k" * 64 + "  bin/kubelet"
    assert by_name["kubelet"]["dest"] == "/usr/local/bin/kubelet"
    assert by_name["kubelet"]["mode"] == "0755"
    assert by_name["bridge"]["dest"] == "/opt/cni/bin/bridge"
    assert by_name["etcd"]["dest"] == "/var/lib/baremetal-k8s/images/etcd.tar"
    assert by_name["etcd"]["mode"] == "0644"
    assert by_name["etcd"]["image"] == "registry.k8s.io/etcd:3.6.16-0"


def test_an_artifact_kind_without_a_directory_is_an_error():
    with pytest.raises(ba.ArtifactPlanError, match="kind 'chart'"):
        ba.node_artifacts([artifact("cilium", "chart", "charts/cilium.tgz")], ["worker"], DIRS)


def test_missing_artifacts_are_fetched_first_then_those_installed_from_another_sha256():
    wanted = ba.node_artifacts(MANIFEST, ["control_plane"], DIRS)
    by_name = {a["name"]: a for a in wanted}
    present = [by_name[n]["dest"] for n in ("bridge", "etcd", "kubelet", "Pause")]
    installed = [by_name[n]["fingerprint"] for n in ("bridge", "kubelet")] + ["e" * 64 + "  images/old-etcd.tar"]
    assert names(ba.artifacts_to_fetch(wanted, present, installed)) == ["kube-proxy", "etcd", "Pause"]


def test_nothing_is_fetched_when_everything_is_installed_as_recorded():
    wanted = ba.node_artifacts(MANIFEST, ["worker"], DIRS)
    assert ba.artifacts_to_fetch(wanted, [a["dest"] for a in wanted], [a["fingerprint"] for a in wanted]) == []


def test_images_are_imported_when_containerd_lacks_them_or_their_archive_was_fetched():
    wanted = ba.node_artifacts(MANIFEST, ["control_plane"], DIRS)
    by_name = {a["name"]: a for a in wanted}
    have = ["registry.k8s.io/etcd:3.6.16-0", "registry.k8s.io/pause:3.10.2"]
    assert names(ba.images_to_import(wanted, have, [by_name["Pause"], by_name["kubelet"]])) == ["kube-proxy", "Pause"]
    assert ba.images_to_import(wanted, [a.get("image") for a in wanted if a["kind"] == "image"], []) == []
