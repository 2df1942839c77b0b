# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The air-gap artifact set: what a cluster needs, and its manifest.

``required(version, arch, pod_network)`` lists the artifacts a cluster of that
Kubernetes version, CPU architecture and pod network mode needs (binaries,
image archives, CNI plugins) and which nodes need each one. The build tool
(tools/artifacts/build_artifacts.py) builds exactly that list and writes a
``manifest.json`` beside the files with their sha256; ``check_manifest`` reads
such a manifest back and says precisely what is wrong when it does not fit the
inventory. No Ansible imports: the build tool and the unit tests use it too.

Manifest format (version 1)::

    {"format": 1, "kubernetes_version": "1.36.3", "arch": "amd64", "pod_network": "routed",
     "artifacts": [{"name": "kubeadm", "kind": "binary", "path": "bin/kubeadm",
                    "sha256": "...", "size": 123, "nodes": ["control_plane", "worker"]},
                   {"name": "etcd", "kind": "image", "path": "images/etcd.tar",
                    "image": "registry.k8s.io/etcd:3.6.16-0", ...}, ...]}
"""

from __future__ import annotations

import re

from .errors import BaremetalError
from .vocabulary import POD_NETWORKS

FORMAT = 1
MANIFEST_NAME = "manifest.json"
ARCHES = ("amd64", "arm64")
# Kubernetes minors this collection knows how to bootstrap.
SUPPORTED_MINORS = ("1.36",)
REGISTRY = "registry.k8s.io"
ALL_NODES = ("control_plane", "worker")

# (name, kind, nodes, pod networks that need it)
_CATALOG = (
    ("kubeadm", "binary", ALL_NODES, POD_NETWORKS),
    ("kubelet", "binary", ALL_NODES, POD_NETWORKS),
    ("kubectl", "binary", ALL_NODES, POD_NETWORKS),
    ("crictl", "binary", ALL_NODES, POD_NETWORKS),
    # etcd's offline tool: etcd_restore.yml restores a snapshot with it (Debian's etcd 3.4 is too old).
    ("etcdutl", "binary", ("control_plane",), POD_NETWORKS),
    ("kube-apiserver", "image", ("control_plane",), POD_NETWORKS),
    ("kube-controller-manager", "image", ("control_plane",), POD_NETWORKS),
    ("kube-scheduler", "image", ("control_plane",), POD_NETWORKS),
    ("etcd", "image", ("control_plane",), POD_NETWORKS),
    ("kube-proxy", "image", ALL_NODES, POD_NETWORKS),
    ("coredns", "image", ALL_NODES, POD_NETWORKS),
    ("pause", "image", ALL_NODES, POD_NETWORKS),
    # Cilium brings its own CNI binary; loopback is still the kubelet's.
    ("loopback", "cni", ALL_NODES, POD_NETWORKS),
    ("bridge", "cni", ALL_NODES, ("routed",)),
    ("host-local", "cni", ALL_NODES, ("routed",)),
    ("portmap", "cni", ALL_NODES, ("routed",)),
)
_DIRS = {"binary": "bin", "image": "images", "cni": "cni"}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ArtifactError(BaremetalError, ValueError):
    """The request or the manifest does not fit; the message says what to change."""


def normalize_version(version):
    """``v1.36.3`` or ``1.36.3`` -> ``1.36.3``; anything else is an ArtifactError."""
    text = str(version or "").strip()
    match = re.match(r"^v?(\d+)\.(\d+)\.(\d+)$", text)
    if not match:
        raise ArtifactError("kubernetes_version %r is not a release version like 1.36.3" % (version,))
    return "%s.%s.%s" % match.groups()


def _check_request(version, arch, pod_network):
    version = normalize_version(version)
    minor = version.rsplit(".", 1)[0]
    if minor not in SUPPORTED_MINORS:
        raise ArtifactError("kubernetes_version %s is not supported (supported minors: %s); set the cluster's "
                            "kubernetes_version to one of them" % (version, ", ".join(SUPPORTED_MINORS)))
    if arch not in ARCHES:
        raise ArtifactError("arch %r is not supported; use one of %s" % (arch, ", ".join(ARCHES)))
    if pod_network not in POD_NETWORKS:
        raise ArtifactError("pod_network %r is not supported; use one of %s" % (pod_network, ", ".join(POD_NETWORKS)))
    return version


def required(version, arch, pod_network):
    """The artifacts a cluster needs: [{name, kind, path, nodes}] in a stable order."""
    _check_request(version, arch, pod_network)
    out = []
    for name, kind, nodes, networks in _CATALOG:
        if pod_network not in networks:
            continue
        path = "%s/%s%s" % (_DIRS[kind], name, ".tar" if kind == "image" else "")
        out.append({"name": name, "kind": kind, "path": path, "nodes": list(nodes)})
    return out


def image_ref(name, tag):
    """Where kubeadm looks for an image: registry.k8s.io/<name>:<tag> (CoreDNS has its own path)."""
    repo = "coredns/coredns" if name == "coredns" else name
    return "%s/%s:%s" % (REGISTRY, repo, tag)


def _tagged(ref):
    """``registry.k8s.io/pause:3.10.2`` has a tag; ``registry:5000/pause`` (a port, no tag) does not."""
    return isinstance(ref, str) and ":" in ref.rsplit("/", 1)[-1] and not ref.endswith(":")


def check_manifest(manifest, version, arch, pod_network, source="manifest.json"):
    """Validate a manifest against the inventory; returns its artifacts keyed by name.

    Every problem is an ArtifactError naming ``source``, the field and the fix.
    """
    version = _check_request(version, arch, pod_network)
    if not isinstance(manifest, dict):
        raise ArtifactError("%s: not a JSON object; rebuild it with tools/artifacts/build_artifacts.py" % source)
    if manifest.get("format") != FORMAT:
        raise ArtifactError("%s: format is %r, expected %d; rebuild it with tools/artifacts/build_artifacts.py"
                            % (source, manifest.get("format"), FORMAT))
    wanted = {"kubernetes_version": version, "arch": arch, "pod_network": pod_network}
    for field, value in wanted.items():
        have = manifest.get(field)
        if field == "kubernetes_version" and have:
            have = normalize_version(have)
        if have != value:
            raise ArtifactError("%s: %s is %r but the inventory wants %r; build the set with "
                                "tools/artifacts/build_artifacts.py --kubernetes-version %s --arch %s "
                                "--pod-network %s" % (source, field, manifest.get(field), value, version, arch,
                                                      pod_network))
    entries = manifest.get("artifacts")
    if not isinstance(entries, list):
        raise ArtifactError("%s: artifacts must be a list" % source)
    by_name = {}
    for index, entry in enumerate(entries):
        where = "%s: artifacts[%d]" % (source, index)
        if not isinstance(entry, dict) or not entry.get("name"):
            raise ArtifactError("%s: needs at least a name" % where)
        if not isinstance(entry["name"], str):
            raise ArtifactError("%s: name must be a string, not %s; rebuild the set with "
                                "tools/artifacts/build_artifacts.py" % (where, type(entry["name"]).__name__))
        if not _SHA256.match(str(entry.get("sha256", ""))):
            raise ArtifactError("%s (%s): sha256 must be 64 lowercase hex digits" % (where, entry["name"]))
        if entry.get("kind") == "image" and not _tagged(entry.get("image")):
            raise ArtifactError("%s (%s): an image archive needs its image reference with a tag (image: "
                                "registry/name:tag), not %r" % (where, entry["name"], entry.get("image")))
        by_name[entry["name"]] = entry
    missing = [a["name"] for a in required(version, arch, pod_network) if a["name"] not in by_name]
    if missing:
        raise ArtifactError("%s: missing %s; rebuild the set with tools/artifacts/build_artifacts.py"
                            % (source, ", ".join(missing)))
    return by_name
