# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which air-gap artifacts a node gets, which to fetch again, which images to import. Pure, no I/O.

The role k8s_node calls these through the filter plugins of the same names
(plugins/filter/). Artifacts are the entries of the checked manifest
(module baremetal.k8s.k8s_artifacts, docs/airgap.md): ``{name, kind, path,
sha256, nodes, image?}``. What was installed is recorded on the node as
fingerprints, ``"<sha256>  <path>"`` (sha256sum's format), so a re-run hashes
nothing.
"""

from __future__ import annotations

import posixpath

from ansible_collections.baremetal.k8s.plugins.module_utils.errors import BaremetalError

IMAGE_MODE = "0644"
EXECUTABLE_MODE = "0755"


class ArtifactPlanError(BaremetalError, ValueError):
    """An artifact the plan cannot place."""


def node_artifacts(artifacts, fleet_roles, dest_dirs):
    """The artifacts one node needs, sorted by name, each with ``fingerprint``, ``dest`` and ``mode`` added.

    A control plane gets the artifacts marked for ``control_plane``, any other
    node those marked for ``worker``. ``dest_dirs`` maps an artifact kind
    (binary, cni, image) to its directory on the node.
    """
    kind = "control_plane" if "control_plane" in (fleet_roles or []) else "worker"
    wanted = sorted((a for a in artifacts if kind in a["nodes"]), key=lambda a: a["name"].lower())
    out = []
    for artifact in wanted:
        if artifact["kind"] not in dest_dirs:
            raise ArtifactPlanError("artifact %s has kind %r, which has no directory" % (artifact["name"],
                                                                                         artifact["kind"]),
                                    "rebuild the artifact set with tools/artifacts/build_artifacts.py")
        out.append(dict(
            artifact,
            fingerprint="%s  %s" % (artifact["sha256"], artifact["path"]),
            dest="%s/%s" % (dest_dirs[artifact["kind"]], posixpath.basename(artifact["path"])),
            mode=IMAGE_MODE if artifact["kind"] == "image" else EXECUTABLE_MODE,
        ))
    return out


def artifacts_to_fetch(wanted, present_paths, installed):
    """The wanted artifacts missing on the node, then those installed from another sha256.

    ``present_paths``: the files found at the artifacts' dest paths;
    ``installed``: the fingerprints recorded when they were installed.
    """
    present = set(present_paths)
    installed = set(installed)
    missing = [a for a in wanted if a["dest"] not in present]
    changed = [a for a in wanted if a["dest"] in present and a["fingerprint"] not in installed]
    return missing + changed


def images_to_import(wanted, containerd_images, fetched):
    """The image archives to import into containerd: the image is missing there, or its archive was just fetched."""
    have = set(containerd_images)
    fetched_names = {a["name"] for a in fetched}
    return [a for a in wanted if a["kind"] == "image" and (a["image"] not in have or a["name"] in fetched_names)]
