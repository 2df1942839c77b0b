# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Connection options shared by every Kubernetes-facing module (plugins/module_utils/k8s_client.py)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Path of the kubeconfig file to use.
      - Without it (and without O(host) or O(in_cluster)), the file named by E(KUBECONFIG) or
        C(~/.kube/config) is used; inside a pod with neither, the pod's service account is used.
    type: path
  context:
    description: Kubeconfig context to use instead of its current context.
    type: str
  host:
    description:
      - URL of the API server, for example C(https://10.0.0.10:6443).
      - Overrides the server of the kubeconfig; alone (no O(kubeconfig)), no kubeconfig is read.
    type: str
  api_key:
    description: Bearer token for the API server (overrides the kubeconfig's credentials).
    type: str
  ca_cert:
    description: Path of the CA certificate bundle that signed the API server's certificate.
    type: path
  client_cert:
    description: Path of a client certificate for authenticating to the API server.
    type: path
  client_key:
    description: Path of the key of O(client_cert).
    type: path
  in_cluster:
    description: Use the service account of the pod the task runs in.
    type: bool
    default: false
  validate_certs:
    description: Verify the API server's certificate. Only turn off for throwaway test clusters.
    type: bool
    default: true
requirements:
  - kubernetes (Python client) >= 24.2.0
notes:
  - The module runs where the task runs; use C(delegate_to=localhost) to run it on the controller.
  - As in kubernetes.core, options not set in the task are taken from the environment variables
    E(K8S_AUTH_KUBECONFIG), E(K8S_AUTH_CONTEXT), E(K8S_AUTH_HOST), E(K8S_AUTH_API_KEY),
    E(K8S_AUTH_SSL_CA_CERT) (O(ca_cert)), E(K8S_AUTH_CERT_FILE) (O(client_cert)),
    E(K8S_AUTH_KEY_FILE) (O(client_key)) and E(K8S_AUTH_VERIFY_SSL) (O(validate_certs)).
"""
