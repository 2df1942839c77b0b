#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cluster_drift
short_description: The drift report of one cluster - where the live cluster and its hosts differ from the fleet
version_added: 0.1.0
description:
  - Compares one cluster of the fleet file with what is live and returns the drift report of
    docs/reconcile.md, each item with its host or object, what differs, the desired and observed values,
    the action C(reconcile_mode=fix) would take and a risk level.
  - Fleet against cluster (read from the API server) - members with no Node, Nodes not in the fleet,
    C(spec.podCIDR) not the allocation ledger's, kubelet and API server versions not the cluster's
    C(kubernetes_version), cordons with no recorded reason, the labels and taints the node groups declare
    (docs/fleet-format.md).
  - The allocation ledger against the fleet - orphans and retired servers not released.
  - etcd membership (O(etcd)) against the cluster's control planes.
  - Host configuration - the records of O(host_records), what the roles would change in check mode.
  - The fleet file's states and the recovery state's marks (failed, maintenance) are applied first, so a
    failed or retired server is not expected to have a Node.
  - Read-only; check mode runs the same reads.
author:
  - baremetal.k8s maintainers (@baremetal)
options:
  fleet:
    description: Path of the fleet file (docs/fleet-format.md).
    type: path
    required: true
  cluster:
    description: The cluster to compare.
    type: str
    required: true
  etcd:
    description:
      - The result of M(baremetal.k8s.etcd_info) on one of the cluster's control planes (its C(members)).
      - Without it etcd membership is not compared (the result's C(skipped) says so).
    type: dict
  host_records:
    description:
      - The host-configuration records of this run for the cluster's hosts, as the callback
        C(baremetal.k8s.drift_record) writes them (C(host), C(role), C(task), C(item), C(desired), C(observed)).
    type: list
    elements: dict
    default: []
  fleet_revision:
    description:
      - What the report names as the fleet's revision, such as the project's git commit in AWX.
      - Default C(sha256:) and the first 12 hex digits of the fleet file's sha256.
    type: str
  timeout:
    description: Seconds each API request may take.
    type: int
    default: 10
extends_documentation_fragment:
  - baremetal.k8s.k8s_auth
  - baremetal.k8s.ledger_store
  - baremetal.k8s.recovery_state
requirements:
  - kubernetes (the Python client)
  - netaddr (read by the fleet model)
attributes:
  check_mode:
    description: Reads only, in check mode as in a run.
    support: full
  diff_mode:
    description: No diff; the report is the result.
    support: none
notes:
  - Runs on the controller (C(delegate_to=localhost) or a localhost play), like the other fleet modules.
"""

EXAMPLES = r"""
- name: The drift report of cluster ams1-prod
  baremetal.k8s.cluster_drift:
    fleet: inventory/prod/fleet.yml
    cluster: ams1-prod
    kubeconfig: /etc/baremetal-k8s/ams1-prod.kubeconfig
    etcd: "{{ etcd_members }}"
    host_records: "{{ records | selectattr('host', 'in', groups['cluster_ams1_prod']) | list }}"
  delegate_to: localhost
  register: drift

- name: Show it
  ansible.builtin.debug:
    msg: "{{ drift.lines }}"
"""

RETURN = r"""
report:
  description: The drift report (docs/reconcile.md).
  returned: always
  type: dict
  contains:
    drift:
      description: Whether anything differs.
      type: bool
    total:
      description: How many items.
      type: int
    counts:
      description: C(by_kind) (host, fleet, ledger, etcd, security) and C(by_risk) (low, medium, high).
      type: dict
    items:
      description:
        - Highest risk first, each with C(kind), C(target), C(what), C(desired), C(observed), C(action)
          and C(risk).
      type: list
      elements: dict
    fleet_revision:
      description: The fleet's revision the report was made against.
      type: str
    cluster:
      description: The cluster.
      type: str
    skipped:
      description: Comparisons not made, each with why.
      type: list
      elements: str
lines:
  description: The report as lines a person reads - the counts, then one line per item.
  returned: always
  type: list
  elements: str
"""

import hashlib

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.baremetal.k8s.plugins.module_utils import drift, drift_host, recovery_state
from ansible_collections.baremetal.k8s.plugins.module_utils.errors import BaremetalError
from ansible_collections.baremetal.k8s.plugins.module_utils.fleet import load_fleet
from ansible_collections.baremetal.k8s.plugins.module_utils.k8s_client import (
    HAS_KUBERNETES,
    KUBERNETES_IMPORT_ERROR,
    client_from_params,
    module_argument_spec,
)
from ansible_collections.baremetal.k8s.plugins.module_utils.ledger_store import (
    ALLOCATIONS,
    STORE_ARGUMENT_SPEC,
    apply_operations,
    recovery_store,
    store_for_fleet,
    store_overrides,
)
from ansible_collections.baremetal.k8s.plugins.module_utils.maintenance import fleet_members
from ansible_collections.baremetal.k8s.plugins.module_utils.node_health import read_api_servers, read_cluster
from ansible_collections.baremetal.k8s.plugins.module_utils.node_metadata import fleet_wanted


def fleet_revision(path):
    with open(path, "rb") as handle:
        return "sha256:" + hashlib.sha256(handle.read()).hexdigest()[:12]


def run(params, read_live):
    """The report; READ_LIVE() gives ``(nodes, api_server_pods)`` of the cluster (the API is asked last, so
    bad input fails before)."""
    fleet = load_fleet(params["fleet"])
    name = params["cluster"]
    cluster = fleet.clusters.get(name)
    if cluster is None:
        raise drift.DriftError("cluster %r is not in the fleet file" % name,
                               "use one of: %s" % ", ".join(sorted(fleet.clusters)), where=params["fleet"],
                               path="clusters")
    store = recovery_store(fleet, params)
    warnings = apply_operations(fleet, params, recovery_state.check_state(store.read(), store.description))
    ledger = store_for_fleet(fleet, store_overrides(params), ledger=ALLOCATIONS).read()
    members = fleet_members(fleet, ledger, name)
    hosts = set(members)
    # Load balancers that are neither control plane nor worker have no Node.
    members = {m: v for m, v in members.items() if set(v["roles"]) & {"control_plane", "worker"}}
    control_planes = [m for m, member in members.items()
                      if "control_plane" in member["roles"] and member["state"] not in ("retired", "spare")]
    items, skipped = [], []
    items += drift_host.host_drift([r for r in params["host_records"] if r.get("host") in hosts])
    items += drift.ledger_against_fleet(fleet, {"clusters": {name: (ledger.get("clusters") or {}).get(name) or {}}})
    if params["etcd"]:
        etcd_members = params["etcd"].get("members")
        if not isinstance(etcd_members, list):
            raise drift.DriftError("etcd has no members list", "pass the registered result of "
                                   "baremetal.k8s.etcd_info", where="cluster_drift", path="etcd")
        items += drift.etcd_against_fleet(name, control_planes, etcd_members)
    else:
        skipped.append("etcd membership: no etcd_info result given")
    nodes, api_servers = read_live()
    kubernetes_version = cluster.kubernetes_version
    items += drift.fleet_against_cluster(name, members, drift.node_records(nodes),
                                         kubernetes_version=kubernetes_version)
    wanted = fleet_wanted(fleet, cluster)
    items += drift.metadata_against_fleet(nodes, {n: w for n, w in wanted.items() if n in members})
    items += drift.api_servers_against_fleet(name, control_planes, api_servers,
                                             kubernetes_version=kubernetes_version)
    report = drift.drift_report(items, fleet_revision=params["fleet_revision"] or fleet_revision(params["fleet"]))
    report.update(cluster=name, skipped=skipped)
    lines = ["cluster %s: %s" % (name, line) for line in drift.report_lines(report)]
    return {"report": report, "lines": lines + ["cluster %s: not compared: %s" % (name, s) for s in skipped]}, \
        warnings


def main():
    spec = module_argument_spec()
    spec.update(
        fleet=dict(type="path", required=True),
        cluster=dict(type="str", required=True),
        etcd=dict(type="dict"),
        host_records=dict(type="list", elements="dict", default=[]),
        fleet_revision=dict(type="str"),
        timeout=dict(type="int", default=10),
        recovery_file=dict(type="path"),
        **STORE_ARGUMENT_SPEC,
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    if not HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=str(KUBERNETES_IMPORT_ERROR))
    params = module.params

    def read_live():
        api = client_from_params(params, pool_size=2)
        try:
            nodes, _leases = read_cluster(api, timeout=params["timeout"])
            return nodes, read_api_servers(api, timeout=params["timeout"])
        finally:
            api.close()

    try:
        result, warnings = run(params, read_live)
    except BaremetalError as exc:
        module.fail_json(msg=str(exc))
    for warning in warnings:
        module.warn(warning)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
