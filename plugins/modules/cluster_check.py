#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cluster_check
short_description: Is a cluster working right now - verdicts with what was observed and a fix hint
version_added: 0.1.0
description:
  - The self-correction checker of playbooks/check.yml. For one cluster of the fleet file it turns the host probes
    the playbook gathered (O(probes), O(etcd)) and what it reads from the API itself into verdicts, each with a
    C(name), a C(target), a C(status) (V(ok), V(warn), V(critical)), what was C(observed) and a C(fix) (one
    sentence for an operator). The overall status is the worst verdict.
  - Read from the API - every Node and kubelet Lease (the fleet members' Ready condition and heartbeat, as
    M(baremetal.k8s.node_health) judges them) and C(/readyz) through the kubeconfig's server (the API VIP).
  - From the probes - the hosts that answered, each control plane's own API server C(/readyz), the etcd members'
    health, leader, alarms and database size against the quota (M(baremetal.k8s.etcd_info)), HAProxy's backends
    and the keepalived VIP holder on the load balancers, a DNS query to CoreDNS, host-to-pod traffic across nodes,
    the WireGuard handshakes and the certificates' expiry.
  - From O(etcd_backup) - the age of the cluster's newest verified etcd snapshot where playbooks/etcd_backup.yml
    keeps them (M(baremetal.k8s.etcd_backups) lists them; the playbook runs it on the backup host).
  - With O(stage=probes) it returns the read-only probe scripts each member runs (the playbook runs this stage
    first) - a Kubernetes node's include an HTTP GET of CoreDNS's health endpoint on the CoreDNS pods of other
    nodes, which it reads from the API.
  - Cluster problems are verdicts, never a failure; the module fails only on bad input (an unknown cluster,
    an unreadable fleet file or recovery state).
  - The fleet file's states and the recovery state's marks (maintenance, failed) and the placement ledger are
    applied first, so a server in maintenance is at most a warning and a failed or retired one is not expected.
    The members' WireGuard addresses come from the allocation ledger. The ledger store is the one the fleet
    file's C(allocations) section names.
  - Read-only; check mode runs the same reads. See docs/check.md for every verdict and threshold.
author:
  - baremetal.k8s maintainers (@baremetal)
options:
  fleet:
    description: Path of the fleet file (docs/fleet-format.md).
    type: path
    required: true
  cluster:
    description: The cluster to check.
    type: str
    required: true
  stage:
    description:
      - V(verdicts) - the whole check (the default).
      - V(probes) - only RV(probes), the probe scripts of every member, and RV(pod_targets).
    type: str
    choices: [probes, verdicts]
    default: verdicts
  probes:
    description:
      - Host name to its probe results - the registered result of playbooks/check.yml's probe loop (C(results),
        each with C(item.name), C(rc) and C(stdout)), or a mapping of probe name to a result with C(rc) and
        C(stdout). The probes are the scripts O(stage=probes) returns - V(node), V(certificates),
        V(pod_network), V(readyz), V(dns) and V(load_balancer).
      - A member with no entry was not probed; its host checks are not run and it is not reachable.
    type: dict
    default: {}
  etcd:
    description:
      - Control plane name to the registered result of M(baremetal.k8s.etcd_info) run on it. The first that
        lists members (control planes in fleet order) is judged; the others' errors are quoted when none did.
    type: dict
    default: {}
  etcd_backup:
    description:
      - The registered result of M(baremetal.k8s.etcd_backups) with O(baremetal.k8s.etcd_backups#module:action=list)
        for this cluster on the directory where the snapshots are kept (C(newest_verified), C(exists), C(count),
        C(verified_count); a failed or unreachable result is a critical verdict).
      - Unset, or a skipped task - the snapshot age is not checked (listed in RV(not_checked)).
    type: dict
  etcd_backup_dir:
    description: The directory O(etcd_backup) listed, quoted in the verdict (default - the listing's C(path)).
    type: str
  etcd_backup_host:
    description: The host O(etcd_backup) listed on, quoted in the verdict.
    type: str
  etcd_snapshot_warn_hours:
    description: The newest verified etcd snapshot at least this many hours old is a warning.
    type: float
    default: 2
  etcd_snapshot_critical_hours:
    description: The newest verified etcd snapshot more than this many hours old is critical.
    type: float
    default: 25
  wireguard_stale_after:
    description:
      - Seconds since a peer's latest WireGuard handshake (on the host's clock, after one ping) before it is stale.
    type: int
    default: 180
  cert_warn_days:
    description: A certificate that expires within this many days is a warning.
    type: int
    default: 30
  cert_critical_days:
    description: A certificate that expires within this many days (or has expired) is critical.
    type: int
    default: 7
  etcd_db_warn_percent:
    description: An etcd database above this share of its quota is a warning.
    type: float
    default: 80
  etcd_db_critical_percent:
    description: An etcd database above this share of its quota is critical.
    type: float
    default: 95
  recovery_file:
    description:
      - Path of the recovery state for the C(file) store; a relative path is relative to the fleet file.
      - Default C(<fleet stem>.recovery.json) beside the fleet file; with the fleet's C(kubernetes) store, its
        ConfigMap.
    type: path
  wireguard_interface:
    description: The WireGuard interface of the mesh (O(stage=probes)).
    type: str
    default: wg0
  api_server_port:
    description: The port the API servers listen on at their private addresses (O(stage=probes)).
    type: int
    default: 6443
  probe_timeout:
    description: Seconds each network probe (ping, curl, the DNS query) waits for an answer (O(stage=probes)).
    type: int
    default: 3
  now:
    description: The time to judge at (epoch seconds or ISO 8601). Default is the current time.
    type: raw
  timeout:
    description: Seconds each API request may take.
    type: int
    default: 10
extends_documentation_fragment:
  - baremetal.k8s.k8s_auth
attributes:
  check_mode:
    support: full
    description: The module only reads; check mode does the same.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to show.
"""

EXAMPLES = r"""
- name: The probes every member runs
  baremetal.k8s.cluster_check:
    fleet: inventory/prod/fleet.yml
    cluster: ams1-prod
    stage: probes
    kubeconfig: /etc/baremetal-k8s/ams1-prod.kubeconfig
  register: plan
  delegate_to: localhost

- name: Run them on a member (read-only)
  ansible.builtin.shell: "{{ item.cmd }}"
  loop: "{{ hostvars['localhost'].plan.probes[inventory_hostname] }}"
  loop_control:
    label: "{{ item.name }}"
  register: check_probe
  changed_when: false
  failed_when: false

- name: The snapshots of the cluster where etcd_backup.yml keeps them
  baremetal.k8s.etcd_backups:
    path: /var/backups/baremetal-k8s/etcd
    cluster: ams1-prod
  register: backups
  failed_when: false  # a failure is a verdict
  delegate_to: localhost

- name: The verdicts, from the probes registered on every member and etcd_info on the control planes
  baremetal.k8s.cluster_check:
    fleet: inventory/prod/fleet.yml
    cluster: ams1-prod
    kubeconfig: /etc/baremetal-k8s/ams1-prod.kubeconfig
    probes: "{{ dict(members | zip(members | map('extract', hostvars) | map(attribute='check_probe', default={}))) }}"
    etcd: "{{ dict(members | zip(members | map('extract', hostvars) | map(attribute='check_etcd', default={}))) }}"
    cert_warn_days: 45
    etcd_backup: "{{ backups }}"  # baremetal.k8s.etcd_backups action=list on the backup host
    etcd_backup_dir: /var/backups/baremetal-k8s/etcd
    etcd_backup_host: localhost
  register: check
  delegate_to: localhost

- name: Show the summary
  ansible.builtin.debug:
    msg: "{{ check.lines }}"
"""

RETURN = r"""
cluster:
  description: The cluster checked.
  returned: always
  type: str
overall:
  description: The worst verdict's status - V(ok), V(warn) or V(critical).
  returned: stage=verdicts
  type: str
  sample: warn
counts:
  description: How many verdicts of each status, and C(total).
  returned: stage=verdicts
  type: dict
  sample: {ok: 27, warn: 1, critical: 0, total: 28}
verdicts:
  description: Every verdict, in the order of the checks (docs/check.md).
  returned: stage=verdicts
  type: list
  elements: dict
  contains:
    name:
      description:
        - The check - V(host_reachable), V(node_ready), V(api_server_ready), V(api_vip_ready), V(etcd_health),
          V(etcd_leader), V(etcd_alarms), V(etcd_db_size), V(etcd_snapshot_age), V(haproxy_backends), V(vip_holder),
          V(coredns_answers), V(pod_network), V(wireguard_handshakes) or V(certificates).
      type: str
    target:
      description: What was checked - C(host/NAME), C(node/NAME) or C(cluster/NAME).
      type: str
      sample: host/ams1-a01-s01
    status:
      description: V(ok), V(warn) or V(critical).
      type: str
    observed:
      description: What was found, with the numbers.
      type: str
      sample: "recent handshake (within 180 s) with 4 of 5 peers; stale - ams1-a02-s03 (never)"
    fix:
      description: One sentence saying what an operator does about it (empty when ok).
      type: str
not_checked:
  description: What was not checked, each with why (so nobody reads it as green).
  returned: stage=verdicts
  type: list
  elements: str
lines:
  description:
    - The summary a person reads - the counts, each critical then each warning verdict, the oks, what was not
      checked.
  returned: stage=verdicts
  type: list
  elements: str
probes:
  description: Member name to its probes, each a mapping with C(name) and C(cmd) (a shell script that only reads).
  returned: stage=probes
  type: dict
pod_targets:
  description: Node name to the running CoreDNS pods on other nodes (C(pod), C(node), C(ip)) its host GETs.
  returned: stage=probes
  type: dict
  sample: {ams1-a01-s02: [{pod: coredns-7c9f8-x2v4q, node: ams1-a01-s01, ip: 10.244.0.3}]}
api_error:
  description: Why the API could not be read in O(stage=probes) (then RV(pod_targets) is empty).
  returned: stage=probes
  type: str
options:
  description: The thresholds used.
  returned: stage=verdicts
  type: dict
now:
  description: The time the verdicts were made at (epoch seconds).
  returned: stage=verdicts
  type: float
"""

import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.baremetal.k8s.plugins.module_utils import cluster_check, recovery_state
from ansible_collections.baremetal.k8s.plugins.module_utils.cluster_check_probes import pod_targets, probe_plan
from ansible_collections.baremetal.k8s.plugins.module_utils.errors import BaremetalError
from ansible_collections.baremetal.k8s.plugins.module_utils.fleet import load_fleet
from ansible_collections.baremetal.k8s.plugins.module_utils.ipam import lookup
from ansible_collections.baremetal.k8s.plugins.module_utils.k8s_client import (
    HAS_KUBERNETES,
    KUBERNETES_IMPORT_ERROR,
    K8sClientError,
    api_error_text,
    client_from_params,
    module_argument_spec,
)
from ansible_collections.baremetal.k8s.plugins.module_utils.ledger_store import (
    ALLOCATIONS,
    PLACEMENT,
    RECOVERY,
    store_for_fleet,
)
from ansible_collections.baremetal.k8s.plugins.module_utils.node_health import read_cluster, timestamp
from ansible_collections.baremetal.k8s.plugins.module_utils.placement.ledger import apply_placement
from ansible_collections.baremetal.k8s.plugins.module_utils.recovery_plan import fleet_members


def members_of(params):
    """The cluster's members (name -> roles, state, address, wireguard_address) with the recovery marks and
    placement applied, the VIP, and the warnings of reading the stores."""
    fleet = load_fleet(params["fleet"])
    cluster = fleet.clusters.get(params["cluster"])
    if cluster is None:
        raise cluster_check.CheckError("cluster", "%r is not a cluster of %s" % (params["cluster"], params["fleet"]),
                                       "use one of: %s" % ", ".join(sorted(fleet.clusters)))
    recovery = store_for_fleet(fleet, {"file": params["recovery_file"]}, ledger=RECOVERY)
    warnings = recovery_state.apply_marks(fleet, recovery_state.check_state(recovery.read(), recovery.description))
    warnings += apply_placement(fleet, store_for_fleet(fleet, {}, ledger=PLACEMENT))
    members = fleet_members(fleet, cluster.name)
    ledger = store_for_fleet(fleet, {}, ledger=ALLOCATIONS).read()
    for name, member in members.items():
        member["address"] = fleet.servers[name].addresses.private
        member["wireguard_address"] = lookup(ledger, cluster.name, name).get("wireguard_address")
    return members, cluster.api.vip, warnings


def read_api(api, timeout, problem=""):
    """Nodes and Leases (or why not), and /readyz through the kubeconfig's server. Without a client (PROBLEM
    says why) both are that problem."""
    if api is None:
        return {"nodes": [], "leases": [], "error": problem,
                "readyz": {"server": "", "status": None, "body": "", "error": problem}}
    out = {"nodes": [], "leases": [], "error": ""}
    try:
        out["nodes"], out["leases"] = read_cluster(api, timeout=timeout)
    except BaremetalError as exc:
        out["error"] = str(exc)
    server = api.configuration.host
    try:
        request = api.param_serialize(method="GET", resource_path="/readyz", query_params=[("verbose", "")],
                                      auth_settings=["BearerToken"])
        response = api.call_api(*request, _request_timeout=timeout)
        response.read()
        body = response.data.decode(errors="replace") if isinstance(response.data, bytes) else str(response.data)
        out["readyz"] = {"server": server, "status": response.status, "body": body[-4000:], "error": ""}
    except Exception as exc:  # urllib3 and socket errors of every kind: a verdict, not a traceback
        out["readyz"] = {"server": server, "status": None, "body": "", "error": api_error_text(exc)}
    return out


def read_coredns(api, timeout):
    from kubernetes import client

    pods = client.CoreV1Api(api).list_namespaced_pod("kube-system", label_selector="k8s-app=kube-dns",
                                                     _request_timeout=timeout).items
    return [{"name": p.metadata.name, "node": p.spec.node_name if p.spec else None,
             "ip": p.status.pod_ip if p.status else None, "phase": p.status.phase if p.status else None}
            for p in pods]


def main():
    spec = module_argument_spec()
    spec.update(
        fleet=dict(type="path", required=True),
        cluster=dict(type="str", required=True),
        recovery_file=dict(type="path"),
        stage=dict(type="str", choices=["probes", "verdicts"], default="verdicts"),
        probes=dict(type="dict", default={}),
        etcd=dict(type="dict", default={}),
        etcd_backup=dict(type="dict"),
        etcd_backup_dir=dict(type="str"),
        etcd_backup_host=dict(type="str"),
        etcd_snapshot_warn_hours=dict(type="float", default=2.0),
        etcd_snapshot_critical_hours=dict(type="float", default=25.0),
        wireguard_stale_after=dict(type="int", default=180),
        cert_warn_days=dict(type="int", default=30),
        cert_critical_days=dict(type="int", default=7),
        etcd_db_warn_percent=dict(type="float", default=80.0),
        etcd_db_critical_percent=dict(type="float", default=95.0),
        wireguard_interface=dict(type="str", default="wg0"),
        api_server_port=dict(type="int", default=6443),
        probe_timeout=dict(type="int", default=3),
        now=dict(type="raw"),
        timeout=dict(type="int", default=10),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    if not HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=str(KUBERNETES_IMPORT_ERROR))
    p = module.params
    try:
        # Bad input fails before anything is asked.
        options = cluster_check.CheckOptions(**{name: p[name] for name in cluster_check.CheckOptions().as_dict()})
        now = time.time() if p["now"] in (None, "") else timestamp(p["now"], "now", allow_none=False)
        members, vip, warnings = members_of(p)
        # No usable kubeconfig is a finding about the cluster's access, reported with everything else.
        try:
            api, problem = client_from_params(p, pool_size=2), ""
        except K8sClientError as exc:
            api, problem = None, str(exc)
        try:
            if p["stage"] == "probes":
                members = {n: m for n, m in members.items() if m["state"] not in cluster_check.SKIPPED_STATES}
                nodes = [n for n, m in members.items() if set(m["roles"]) & set(cluster_check.NODE_ROLES)]
                result = {"cluster": p["cluster"], "pod_targets": {}, "api_error": problem}
                if api is not None:
                    try:
                        result["pod_targets"] = pod_targets(nodes, read_coredns(api, p["timeout"]))
                    except Exception as exc:  # the verdicts stage reports the API; the probes go on without
                        result["api_error"] = api_error_text(exc)
                result["probes"] = probe_plan(members, result["pod_targets"], interface=p["wireguard_interface"],
                                              api_port=p["api_server_port"], timeout=p["probe_timeout"])
            else:
                result = cluster_check.assess_cluster(p["cluster"], members, p["probes"], now=now,
                                                      api=read_api(api, p["timeout"], problem), etcd=p["etcd"],
                                                      vip=vip, options=options, etcd_backup=p["etcd_backup"],
                                                      etcd_backup_dir=p["etcd_backup_dir"] or "",
                                                      etcd_backup_host=p["etcd_backup_host"] or "")
                result.update(options=options.as_dict(), now=now)
        finally:
            if api is not None:
                api.close()
    except BaremetalError as exc:
        module.fail_json(msg=str(exc))
    for warning in warnings:
        module.warn(warning)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
