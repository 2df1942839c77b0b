#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: k8s_artifacts
short_description: Read and check the air-gap artifact manifest of a cluster
version_added: 0.1.0
description:
  - Reads C(manifest.json) from an artifact source (a directory on the controller or an http(s) URL) and checks
    that it fits the cluster of the inventory (Kubernetes version, CPU architecture, pod network mode) and lists
    every artifact that cluster needs (binaries, image archives, CNI plugins), each with its sha256.
  - The artifact set is built with C(tools/artifacts/build_artifacts.py); see docs/airgap.md.
  - Reads only; runs on the controller (use C(delegate_to=localhost) and C(run_once=true)).
options:
  source:
    description:
      - The artifact source, a directory on the controller or an C(http://) / C(https://) URL; the manifest is
        C(<source>/manifest.json).
    type: str
    required: true
  kubernetes_version:
    description: The cluster's Kubernetes version, with or without the leading C(v).
    type: str
    required: true
  arch:
    description: CPU architecture of the nodes.
    type: str
    default: amd64
    choices: [amd64, arm64]
  pod_network:
    description: The cluster's pod network mode.
    type: str
    default: routed
    choices: [routed, cilium]
  validate_certs:
    description: Verify the TLS certificate of an https source.
    type: bool
    default: true
author:
  - baremetal.k8s maintainers (@baremetal)
"""

EXAMPLES = r"""
- name: Read the artifact manifest for this cluster
  baremetal.k8s.k8s_artifacts:
    source: /srv/k8s-artifacts/k8s-1.36.3-amd64-routed
    kubernetes_version: "{{ k8s_cluster['kubernetes_version'] }}"
    pod_network: "{{ k8s_cluster['pod_network'] }}"
  delegate_to: localhost
  run_once: true
  register: artifacts
"""

RETURN = r"""
artifacts:
  description: Every artifact of the manifest, by name.
  returned: success
  type: dict
  sample:
    kubeadm: {name: kubeadm, kind: binary, path: bin/kubeadm, sha256: "9f8...", size: 73076898,
              nodes: [control_plane, worker]}
images:
  description: Image reference of each image artifact, by name (what kubeadm's configuration uses).
  returned: success
  type: dict
  sample: {etcd: "registry.k8s.io/etcd:3.6.16-0", pause: "registry.k8s.io/pause:3.10.2"}
image_tags:
  description: Tag of each image artifact, by name (kubeadm's C(etcd.local.imageTag) and C(dns.imageTag)).
  returned: success
  type: dict
  sample: {etcd: 3.6.16-0, coredns: v1.14.2}
manifest_url:
  description: Where the manifest was read.
  returned: success
  type: str
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import fetch_url
from ansible_collections.baremetal.k8s.plugins.module_utils import k8s_artifacts


def read_manifest(module, source):
    if source.startswith(("http://", "https://")):
        url = source.rstrip("/") + "/" + k8s_artifacts.MANIFEST_NAME
        response, info = fetch_url(module, url)
        if info.get("status") != 200:
            module.fail_json(msg="%s: HTTP %s (%s); check the artifact source URL"
                             % (url, info.get("status"), info.get("msg")))
        text = response.read()
    else:
        url = os.path.join(source, k8s_artifacts.MANIFEST_NAME)
        if not os.path.isfile(url):
            module.fail_json(msg="%s: no such file; build the artifact set with tools/artifacts/build_artifacts.py "
                                 "--out %s, or point the artifact source elsewhere" % (url, source))
        with open(url, "rb") as handle:
            text = handle.read()
    try:
        return url, json.loads(text)
    except ValueError as exc:
        module.fail_json(msg="%s: not valid JSON (%s); rebuild it with tools/artifacts/build_artifacts.py" % (url, exc))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            source=dict(type="str", required=True),
            kubernetes_version=dict(type="str", required=True),
            arch=dict(type="str", default="amd64", choices=list(k8s_artifacts.ARCHES)),
            pod_network=dict(type="str", default="routed", choices=list(k8s_artifacts.POD_NETWORKS)),
            validate_certs=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    url, manifest = read_manifest(module, params["source"])
    try:
        artifacts = k8s_artifacts.check_manifest(manifest, params["kubernetes_version"], params["arch"],
                                                 params["pod_network"], source=url)
    except k8s_artifacts.ArtifactError as exc:
        module.fail_json(msg=str(exc))
    images = {name: a["image"] for name, a in artifacts.items() if a.get("kind") == "image"}
    tags = {name: ref.rsplit(":", 1)[1] for name, ref in images.items()}
    module.exit_json(changed=False, artifacts=artifacts, images=images, image_tags=tags, manifest_url=url)


if __name__ == "__main__":
    main()
