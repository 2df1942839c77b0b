#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: node_drain
short_description: Cordon, drain (PDB-aware, through the Eviction API) or uncordon a Kubernetes node
version_added: 0.1.0
description:
  - With O(state=drained), marks the node unschedulable, then evicts its pods through the Eviction
    API, many at once, so PodDisruptionBudgets are honoured. Mirror (static) pods and DaemonSet pods
    are left alone.
  - Pods that no controller manages are refused unless O(allow_unmanaged=true), and pods with
    C(emptyDir) volumes unless O(delete_emptydir_data=true). The pods are checked before the node is
    cordoned, so a refused drain changes nothing.
  - An eviction that a PodDisruptionBudget forbids (HTTP 429) is retried as soon as that PDB allows a
    disruption again (its namespace's PDBs are watched), and at least every O(backoff_max) seconds,
    until O(timeout). The result names the blocked pods and the PDBs that block them, with the PDBs'
    status. At the timeout, O(on_timeout) decides; V(fail) leaves the node cordoned and reports,
    V(force_delete) deletes the blocked pods directly (bypassing their PDBs).
  - Then waits, at most O(wait_timeout) seconds, until every evicted pod is gone from the node.
    Pods that the scheduler bound to the node before it saw the cordon are drained as well.
  - With O(state=cordoned) only marks the node unschedulable; O(state=uncordoned) makes it
    schedulable again.
  - A cordon (O(state=cordoned) or O(state=drained)) can say who cordoned the node and why
    (O(cordoned_by), O(cordon_reason)). They are recorded as the Node annotations
    C(baremetal.k8s/cordoned-by) and C(baremetal.k8s/cordon-reason), in the same patch as
    C(spec.unschedulable), so the recovery job and operators can tell a recovery cordon from a
    person's (M(baremetal.k8s.node_health) reports them). O(state=uncordoned) removes both
    annotations. RV(previous_cordon) tells what they said before the task.
  - O(pod_selector) limits the drain to the pods it selects (kubectl C(--pod-selector)).
  - In check mode nothing is changed. Each pod's eviction is sent as a server-side dry run, so the
    result lists the pods that would be evicted now (RV(would_evict)) and those whose
    PodDisruptionBudget refuses an eviction right now (RV(would_refuse), with the PDBs in RV(blocked)).
  - See docs/node-drain.md.
author:
  - baremetal.k8s maintainers (@baremetal)
extends_documentation_fragment:
  - baremetal.k8s.k8s_auth
options:
  name:
    description: Name of the node.
    type: str
    required: true
    aliases: [node]
  state:
    description:
      - V(drained) cordons and evicts, V(cordoned) only cordons, V(uncordoned) makes the node
        schedulable again.
    type: str
    choices: [drained, cordoned, uncordoned]
    default: drained
  delete_emptydir_data:
    description: Evict pods with C(emptyDir) volumes, losing that data. Refused otherwise.
    type: bool
    default: false
  allow_unmanaged:
    description:
      - Evict pods that no controller (ReplicaSet, StatefulSet, Job, ...) manages. Nothing recreates
        them. Refused otherwise.
    type: bool
    default: false
  grace_period:
    description:
      - Termination grace period in seconds for the evicted pods.
      - Default is each pod's own C(terminationGracePeriodSeconds).
    type: int
  timeout:
    description:
      - Seconds the eviction phase may take, retries of evictions that PDBs forbid included.
      - V(0) means no limit, as with C(kubectl drain --timeout=0); the drain waits as long as the
        PDBs need.
    type: int
    default: 300
  on_timeout:
    description:
      - What to do with pods still blocked by a PodDisruptionBudget after O(timeout).
      - V(fail) fails the task with the blocked pods and PDBs; the node stays cordoned.
      - V(force_delete) deletes those pods directly, ignoring their PDBs, with
        O(force_delete_grace_period). Only for when losing the availability the PDB protects is
        better than keeping the node.
    type: str
    choices: [fail, force_delete]
    default: fail
  force_delete_grace_period:
    description:
      - Grace period in seconds of the deletions done by O(on_timeout=force_delete).
      - Default is each pod's own C(terminationGracePeriodSeconds).
    type: int
  wait_timeout:
    description:
      - Seconds to wait, after the evictions, until the evicted pods are gone.
      - V(0) means no limit.
    type: int
    default: 120
  skip_wait_for_delete_timeout:
    description:
      - When more than 0, a pod whose C(deletionTimestamp) is more than this many seconds old is not
        waited for, and a pod already terminating that long is left alone (kubectl
        C(--skip-wait-for-delete-timeout)). For nodes that are down, where nothing finishes
        deleting a pod.
      - The API sets C(deletionTimestamp) to the end of the pod's grace period, so this counts from
        there; it is compared with this host's clock.
      - V(0) waits for every pod.
    type: int
    default: 0
  cordoned_by:
    description:
      - Who cordons the node, for example V(recover.yml awx-job-4711) or an operator's name. Recorded
        as the Node annotation C(baremetal.k8s/cordoned-by) when the task cordons the node
        (O(state=cordoned) or O(state=drained)).
      - When O(cordoned_by) or O(cordon_reason) is given, the two annotations are set to exactly the
        values given, in the same patch as C(spec.unschedulable), even on a node someone else
        cordoned (the cordon is kept, the annotations are overwritten; RV(previous_cordon) has what
        they said). One of the two left out is removed, so they always describe the same cordon. A
        node already cordoned with other values is changed (only its annotations).
      - When neither is given, the annotations of a node that was already cordoned are left as they
        are; a node this task cordons loses any left over from an earlier cordon.
      - Not allowed with O(state=uncordoned), which removes both annotations.
    type: str
  cordon_reason:
    description:
      - Why the node is cordoned, one line, for example V(drain before redeploy). Recorded as the Node
        annotation C(baremetal.k8s/cordon-reason); see O(cordoned_by) for when.
      - Not allowed with O(state=uncordoned).
    type: str
  missing:
    description:
      - What to do when the Node object does not exist. V(fail) fails the task; V(ignore) succeeds without a
        change and returns RV(missing=true) (nothing to cordon, drain or uncordon), as the recovery job needs
        for a node whose Node was already deleted.
    type: str
    choices: [fail, ignore]
    default: fail
  pod_selector:
    description:
      - Label selector (kubectl syntax, for example C(app=web,tier!=cache)); only the node's pods it
        selects are drained (kubectl C(--pod-selector)). The others are not looked at and do not
        appear in RV(pods).
      - Default is every pod of the node.
    type: str
  parallel:
    description: Number of eviction requests in flight at once.
    type: int
    default: 16
  backoff_initial:
    description:
      - Seconds before the first retry of a forbidden eviction whose PDB status cannot be read;
        doubles on each retry.
      - While the refusing PDB is watched, the pod is retried as soon as the PDB allows a disruption
        instead.
    type: float
    default: 1.0
  backoff_max:
    description:
      - Longest delay in seconds between two retries of one eviction, whatever the PDB's status says.
    type: float
    default: 10.0
attributes:
  check_mode:
    support: full
    description: Dry-run evictions list the pods that would be evicted and those PDBs refuse now; changes nothing.
  diff_mode:
    support: full
    description:
      - Shows the node's C(spec.unschedulable) before and after, and its annotations
        C(baremetal.k8s/cordoned-by) and C(baremetal.k8s/cordon-reason) when either is involved.
"""

EXAMPLES = r"""
- name: Drain a worker, waiting up to 10 minutes for PodDisruptionBudgets
  baremetal.k8s.node_drain:
    name: worker-3
    timeout: 600
    delete_emptydir_data: true
  delegate_to: localhost

- name: Drain a broken node; after 2 minutes delete what PDBs still protect
  baremetal.k8s.node_drain:
    name: worker-7
    kubeconfig: /etc/kubernetes/admin.conf
    timeout: 120
    on_timeout: force_delete
    force_delete_grace_period: 10

- name: Show what a drain would evict, and which PodDisruptionBudgets refuse now
  baremetal.k8s.node_drain:
    name: worker-3
  check_mode: true
  register: plan

- name: Drain a node that is down, without a limit, not waiting for pods it cannot delete
  baremetal.k8s.node_drain:
    name: worker-9
    timeout: 0
    skip_wait_for_delete_timeout: 30

- name: Drain only one application's pods
  baremetal.k8s.node_drain:
    name: worker-3
    pod_selector: app.kubernetes.io/part-of=shop

- name: Drain for recovery, recording who cordoned the node and why
  baremetal.k8s.node_drain:
    name: worker-3
    cordoned_by: recover.yml awx-job-4711
    cordon_reason: "kubelet down since 08:12, drain and redeploy"
  register: drained

- name: Say when the recovery took over someone else's cordon
  ansible.builtin.debug:
    msg: "worker-3 was cordoned by {{ drained.previous_cordon.cordoned_by }} before"
  when:
    - drained.previous_cordon is not none
    - drained.previous_cordon.cordoned_by != 'recover.yml awx-job-4711'

- name: Put the node back into service (removes the cordon annotations too)
  baremetal.k8s.node_drain:
    name: worker-3
    state: uncordoned
"""

RETURN = r"""
node:
  description: Name of the node.
  returned: always
  type: str
missing:
  description: True when the Node object does not exist and O(missing=ignore) (nothing was done).
  returned: when the node is missing and O(missing=ignore)
  type: bool
  sample: worker-3
unschedulable:
  description: The node's C(spec.unschedulable) after the task (as it would be in check mode).
  returned: success
  type: bool
  sample: true
cordoned:
  description: Whether this task cordoned the node (it was schedulable before).
  returned: state=drained or state=cordoned
  type: bool
was_unschedulable:
  description: Whether the node was already cordoned before the task.
  returned: always
  type: bool
previous_cordon:
  description:
    - The node's cordon annotations before the task, or V(null) when it had neither. With
      RV(was_unschedulable) this tells whose cordon the task took over, kept or ended.
  returned: success, and when a drain fails
  type: dict
  contains:
    cordoned_by:
      description: The annotation C(baremetal.k8s/cordoned-by), V(null) when it was not set.
      type: str
    reason:
      description: The annotation C(baremetal.k8s/cordon-reason), V(null) when it was not set.
      type: str
  sample:
    cordoned_by: alice
    reason: "disk replacement, ticket OPS-118"
pods:
  description:
    - Every pod that was on the node, with what the drain decided and what happened (state=drained).
  returned: state=drained
  type: list
  elements: dict
  contains:
    namespace:
      description: Namespace of the pod.
      type: str
    name:
      description: Name of the pod.
      type: str
    uid:
      description: UID of the pod.
      type: str
    action:
      description:
        - V(evict), V(skip) (mirror or DaemonSet pod, or terminating longer than
          O(skip_wait_for_delete_timeout)), V(refuse) or V(wait) (already terminating).
      type: str
    reason:
      description: Why that action.
      type: str
      sample: managed by ReplicaSet/web-5d8f
    outcome:
      description:
        - V(evicted), V(gone), V(force_deleted), V(blocked) (still forbidden by a PDB at the timeout),
          V(failed), V(skipped), V(refused), V(terminating) (still being deleted when the task failed).
        - In check mode V(would_evict), V(would_refuse) (a PDB refuses the dry-run eviction now) or
          V(would_fail) (the dry run failed otherwise; the task fails).
      type: str
    attempts:
      description: Eviction requests sent for this pod (in check mode, the dry run).
      type: int
    blocked_by:
      description:
        - PodDisruptionBudgets (C(namespace/name)) that refused an eviction of this pod (in check mode,
          the dry run).
      type: list
      elements: str
    message:
      description:
        - The API's message for the last refused or failed request, or why the pod was not waited for.
      type: str
    evicted_after:
      description: Seconds from the start of the task until the eviction was accepted.
      type: float
    gone_after:
      description: Seconds from the start of the task until the pod was gone from the node.
      type: float
  sample:
    - namespace: shop
      name: web-5d8f-x2x9q
      uid: 0b6f2c1e-0d1c-4d7e-9a53-2f5a1c3e0f11
      action: evict
      reason: managed by ReplicaSet/web-5d8f
      outcome: evicted
      attempts: 3
      blocked_by: [shop/web]
      message: Cannot evict pod as it would violate the pod's disruption budget.
      evicted_after: 4.51
      gone_after: 4.93
evicted:
  description: Pods (C(namespace/name)) evicted or deleted (empty in check mode).
  returned: state=drained
  type: list
  elements: str
would_evict:
  description: Pods (C(namespace/name)) whose dry-run eviction the API accepted (check mode).
  returned: state=drained and check mode
  type: list
  elements: str
would_refuse:
  description:
    - Pods (C(namespace/name)) whose dry-run eviction a PodDisruptionBudget refused (check mode). A real
      drain would wait for those PDBs (RV(blocked) has their numbers).
  returned: state=drained and check mode
  type: list
  elements: str
left_alone:
  description: Pods (C(namespace/name)) left alone (mirror and DaemonSet pods).
  returned: state=drained
  type: list
  elements: str
blocked:
  description:
    - Blocked pods grouped by the PodDisruptionBudget that blocks them, with the PDB's status, when
      evictions were still forbidden at the timeout.
    - In check mode, the pods of RV(would_refuse) grouped the same way.
  returned: state=drained
  type: list
  elements: dict
  sample:
    - pdb: shop/web
      pods: [shop/web-5d8f-x2x9q]
      disruptions_allowed: 0
      current_healthy: 2
      desired_healthy: 2
      expected_pods: 2
timings:
  description: Seconds spent in each phase (C(cordon), C(evict), C(wait)) and in C(total).
  returned: state=drained
  type: dict
  sample: {cordon: 0.02, evict: 4.6, wait: 0.5, total: 5.2}
messages:
  description: Progress lines (refusals, retries, PDB reports while waiting).
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.baremetal.k8s.plugins.module_utils.k8s_client import (
    HAS_KUBERNETES,
    KUBERNETES_IMPORT_ERROR,
    K8sClientError,
    client_from_params,
    module_argument_spec,
)
from ansible_collections.baremetal.k8s.plugins.module_utils.k8s_drain import (
    ON_TIMEOUT_CHOICES,
    DrainError,
    DrainOptions,
    NodeDrainer,
    NodeNotFound,
)


def argument_spec():
    spec = module_argument_spec()
    spec.update(
        name=dict(type="str", required=True, aliases=["node"]),
        state=dict(type="str", choices=["drained", "cordoned", "uncordoned"], default="drained"),
        delete_emptydir_data=dict(type="bool", default=False),
        allow_unmanaged=dict(type="bool", default=False),
        grace_period=dict(type="int"),
        timeout=dict(type="int", default=300),
        on_timeout=dict(type="str", choices=list(ON_TIMEOUT_CHOICES), default="fail"),
        force_delete_grace_period=dict(type="int"),
        wait_timeout=dict(type="int", default=120),
        parallel=dict(type="int", default=16),
        backoff_initial=dict(type="float", default=1.0),
        backoff_max=dict(type="float", default=10.0),
        skip_wait_for_delete_timeout=dict(type="int", default=0),
        pod_selector=dict(type="str"),
        cordoned_by=dict(type="str"),
        cordon_reason=dict(type="str"),
        missing=dict(type="str", choices=["fail", "ignore"], default="fail"),
    )
    return spec


def check_params(module):
    p = module.params
    for name in ("timeout", "wait_timeout", "grace_period", "force_delete_grace_period",
                 "skip_wait_for_delete_timeout"):
        if p[name] is not None and p[name] < 0:
            module.fail_json(msg="%s must be 0 or more, not %s" % (name, p[name]))
    if p["parallel"] < 1:
        module.fail_json(msg="parallel must be 1 or more, not %s" % p["parallel"])
    if p["backoff_initial"] <= 0 or p["backoff_max"] < p["backoff_initial"]:
        module.fail_json(msg="backoff_initial must be > 0 and backoff_max >= backoff_initial")
    if p["force_delete_grace_period"] is not None and p["on_timeout"] != "force_delete":
        module.fail_json(msg="force_delete_grace_period only applies with on_timeout=force_delete")
    for name in ("cordoned_by", "cordon_reason"):
        if p[name] is None:
            continue
        if p["state"] == "uncordoned":
            module.fail_json(msg="%s only applies with state=cordoned or state=drained: state=uncordoned "
                                 "removes the cordon annotations" % name)
        if not p[name].strip():
            module.fail_json(msg="%s is empty: leave it out, or say who cordons the node and why" % name)
    if p["pod_selector"] is not None and not p["pod_selector"].strip():
        module.fail_json(msg="pod_selector is empty: leave it out to drain every pod, or give a label "
                             "selector such as app=web")


def drain_options(p):
    return DrainOptions(
        delete_emptydir_data=p["delete_emptydir_data"],
        allow_unmanaged=p["allow_unmanaged"],
        grace_period=p["grace_period"],
        timeout=float(p["timeout"]),
        on_timeout=p["on_timeout"],
        force_delete_grace_period=p["force_delete_grace_period"],
        wait_timeout=float(p["wait_timeout"]),
        parallel=p["parallel"],
        backoff_initial=p["backoff_initial"],
        backoff_max=p["backoff_max"],
        skip_wait_for_delete_timeout=p["skip_wait_for_delete_timeout"],
        pod_selector=p["pod_selector"],
        cordoned_by=p["cordoned_by"],
        cordon_reason=p["cordon_reason"],
    )


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    if not HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=str(KUBERNETES_IMPORT_ERROR))
    check_params(module)
    p = module.params
    messages = []
    try:
        options = drain_options(p)
    except DrainError as exc:
        module.fail_json(msg=str(exc))

    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    node = p["name"]
    try:
        api = client_from_params(p, pool_size=p["parallel"] + 4)
        drainer = NodeDrainer(api, node, options, log=messages.append)
        if p["state"] == "drained":
            result = drainer.drain(check_mode=module.check_mode)
        else:
            change = drainer.cordon(p["state"] == "cordoned", check_mode=module.check_mode)
            result = {"node": node, "changed": change.changed, "was_unschedulable": change.was_unschedulable,
                      "previous_cordon": change.previous}
            if p["state"] == "cordoned":
                result["cordoned"] = change.flips
    except NodeNotFound as exc:
        if p["missing"] != "ignore":
            module.fail_json(msg=str(exc), node=node, messages=messages)
        module.exit_json(changed=False, node=node, missing=True, msg="%s: nothing to do" % exc, messages=messages)
    except DrainError as exc:
        module.fail_json(**dict(exc.result, msg=str(exc), node=node, messages=messages))
    except K8sClientError as exc:
        module.fail_json(msg=str(exc), node=node, messages=messages)
    except ApiException as exc:
        module.fail_json(msg="Kubernetes API error on node %s: HTTP %s %s: %s"
                         % (node, exc.status, exc.reason, (exc.body or "")[:500]),
                         node=node, messages=messages)
    except HTTPError as exc:
        module.fail_json(msg="cannot reach the Kubernetes API server: %s" % exc, node=node, messages=messages)

    result.update(unschedulable=p["state"] != "uncordoned", messages=messages)
    if drainer.last_cordon is not None:
        result["diff"] = drainer.last_cordon.diff()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
