# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Where the fleet's ledgers live (plugins/module_utils/ledger_store.py, docs/ipam.md)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  allocation_store:
    description:
      - Where the fleet's ledgers (allocations and placement) live. Default C(allocations.store) of the fleet
        file, else C(file).
      - Use C(kubernetes) in AWX, where the job's checkout is thrown away after each run.
    type: str
    choices: [file, kubernetes]
  kubeconfig:
    description:
      - Kubeconfig of the management cluster for the C(kubernetes) store.
      - Default C(allocations.kubernetes.kubeconfig) of the fleet file; without either the pod's service account
        is used (AWX execution environments), then C(~/.kube/config).
    type: path
    aliases: [allocation_kubeconfig]
  context:
    description:
      - Kubeconfig context for the C(kubernetes) store (default C(allocations.kubernetes.context)).
    type: str
    aliases: [allocation_context]
  namespace:
    description:
      - Namespace of the ledger ConfigMaps.
      - Default C(allocations.kubernetes.namespace) of the fleet file, else C(baremetal-k8s).
    type: str
    aliases: [allocation_namespace]
  configmap:
    description:
      - Name of the allocation ledger's ConfigMap; the placement ledger's is named after it
        (C(baremetal-k8s-allocations) -> C(baremetal-k8s-placement), C(NAME) -> C(NAME-placement)).
      - Default C(allocations.kubernetes.name) of the fleet file, else C(baremetal-k8s-allocations).
    type: str
    aliases: [allocation_configmap]
notes:
  - The ledger options accept the inventory plugin's option names (C(allocation_kubeconfig) and so on are
    aliases), so the ledger settings of a plugin config can be copied as they are (docs/ipam.md).
"""
