# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Connection options shared by the etcd modules (plugins/module_utils/etcd_client.py)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  endpoints:
    description:
      - etcd client URLs, tried in order until one answers (for the member list and the removal).
      - On a kubeadm control plane the local member listens on C(https://127.0.0.1:2379). List the other
        control planes' C(https://NODE_IP:2379) as well, so a dead local member does not hide the cluster.
      - Each member's health is asked at the client URL that member advertises, so those URLs must be
        reachable from where the task runs (run it on a control plane).
    type: list
    elements: str
    default: [https://127.0.0.1:2379]
  ca_cert:
    description:
      - CA certificate that signed the etcd servers' certificates.
      - The default is where kubeadm writes its stacked etcd's CA.
    type: path
    default: /etc/kubernetes/pki/etcd/ca.crt
  client_cert:
    description:
      - Client certificate presented to etcd (kubeadm's etcd requires one signed by its CA).
      - The default is the C(healthcheck-client) certificate, the one kubeadm itself uses for its own
        etcd calls (adding and removing members on join and reset), rather than the API server's
        C(/etc/kubernetes/pki/apiserver-etcd-client.crt), which is the API server's identity.
    type: path
    default: /etc/kubernetes/pki/etcd/healthcheck-client.crt
  client_key:
    description: Private key of O(client_cert).
    type: path
    default: /etc/kubernetes/pki/etcd/healthcheck-client.key
  timeout:
    description:
      - Seconds to wait for each answer. Members are probed in parallel, so a frozen member costs one
        timeout.
    type: float
    default: 5.0
notes:
  - Talks to etcd's v3 JSON gateway (on by default on etcd's client URLs) with the Python standard
    library; nothing else needs to be installed and no C(etcdctl) is needed.
  - Plain C(http://) endpoints work too (test clusters); the TLS options are then not used.
"""
