#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: recovery_state
short_description: Take the recovery lock and record each node's remediation steps
version_added: 0.1.0
description:
  - The memory of the recovery job (docs/recovery.md), kept in the fleet's ledger store as the C(recovery)
    ledger (a file beside the fleet file by hand, a ConfigMap of the management cluster in AWX), so it outlives
    an AWX job and its execution environment.
  - O(action=lock) takes (or renews) the recovery lock for O(ttl) seconds. While another holder's lock is live
    it changes nothing and returns C(acquired=false) with who holds it and until when; a lock whose holder died
    is taken over after its TTL. O(action=unlock) gives it back (only its holder can).
  - O(action=begin) records that O(step) of O(node) is about to run (before it runs, so a run killed half way
    is found by the next one); O(action=fail) records that it failed (the node stays where it stopped) with
    O(error); O(action=finish) records the whole remediation done. O(action=read) returns the state.
  - O(action=mark_failed) marks server O(node) failed with O(error) as the reason and O(replaced_by). The
    inventory, placement and the plan then treat it as C(state=failed) in the fleet file, so it leaves its node
    group and is never handed out again. After the repair an operator runs O(action=clear_failed).
  - O(action=mark_maintenance) puts server O(node) in maintenance for O(reason) (O(holder) records who); every
    reader then treats it as C(state=maintenance) in the fleet file with that reason, so recovery leaves it
    alone and the maintenance job (C(playbooks/maintenance.yml)) drains and holds it. O(action=clear_maintenance)
    ends it. A server the fleet file does not have is refused.
  - Writes are guarded like the other ledgers (a lock file, or the ConfigMap's resourceVersion), so two runs
    racing for the lock cannot both get it.
author:
  - baremetal.k8s maintainers (@baremetal)
options:
  fleet:
    description: Path of the fleet file (its C(allocations) section names the store).
    type: path
    required: true
  action:
    description: What to do (see the description).
    type: str
    choices: [lock, unlock, begin, fail, finish, mark_failed, clear_failed, mark_maintenance, clear_maintenance, read]
    default: read
  holder:
    description:
      - Who takes or gives back the lock, e.g. the AWX job id (C(awx-job-{{ tower_job_id }})).
      - With O(action=mark_maintenance), who starts the maintenance (recorded with the mark).
    type: str
  ttl:
    description: Seconds the lock lasts; longer than one node's remediation. The holder renews it between nodes.
    type: int
    default: 1800
  node:
    description: The node (fleet server name) for O(action=begin), O(action=fail) and O(action=finish).
    type: str
  cluster:
    description: The node's cluster, recorded with O(action=begin).
    type: str
  step:
    description: The step for O(action=begin) and O(action=fail).
    type: str
    choices: [cordon, fence, drain, etcd_remove, reset, replace, reprovision, rejoin, wait_ready, uncordon, verify]
  remediation:
    description: The remediation the node gets (from M(baremetal.k8s.remediation_plan)), recorded with O(action=begin).
    type: str
    choices: [reprovision, replace]
  first_unhealthy:
    description: When the node was first seen unhealthy (seconds since the epoch), recorded once with O(action=begin).
    type: float
  error:
    description: Why the step failed, for O(action=fail); why the server failed, for O(action=mark_failed).
    type: str
  replaced_by:
    description: The spare that replaces O(node), recorded with O(action=mark_failed).
    type: str
  reason:
    description: Why O(node) goes into maintenance, for O(action=mark_maintenance); recorded on its Node.
    type: str
  outcome:
    description: What O(action=finish) records as the last outcome.
    type: str
    default: recovered
  now:
    description: The time to record, seconds since the epoch (tests); default the controller's clock.
    type: float
extends_documentation_fragment:
  - baremetal.k8s.ledger_store
  - baremetal.k8s.recovery_state
attributes:
  check_mode:
    description: Says what would be recorded (and whether the lock would be granted) without writing.
    support: full
  diff_mode:
    description: No diff.
    support: none
notes:
  - Runs on the controller (C(delegate_to=localhost) or a localhost play).
"""

EXAMPLES = r"""
- name: Take the recovery lock
  baremetal.k8s.recovery_state:
    fleet: inventory/prod/fleet.yml
    action: lock
    holder: "awx-job-{{ tower_job_id | default('manual') }}"
    ttl: 1800
  register: recovery_lock
  delegate_to: localhost

- name: Stop when another recovery runs
  ansible.builtin.meta: end_play
  when: not recovery_lock.acquired

- name: Record the drain before it runs
  baremetal.k8s.recovery_state:
    fleet: inventory/prod/fleet.yml
    action: begin
    node: ams1-a02-s03
    cluster: ams1-prod
    step: drain
    remediation: reprovision
  delegate_to: localhost
"""

RETURN = r"""
acquired:
  description: With O(action=lock), whether this run holds the lock now.
  returned: action is lock
  type: bool
reason:
  description: With O(action=lock) and O(action=unlock), what happened in one sentence (who holds it, until when).
  returned: action is lock or unlock
  type: str
holder:
  description: Who holds the lock after the call (null when nobody does).
  returned: always
  type: str
expires:
  description: When the lock expires, seconds since the epoch (null when nobody holds it).
  returned: always
  type: float
entry:
  description: The node's record after the call (step, status, attempts, remediation, error, ...).
  returned: action is begin, fail or finish
  type: dict
state:
  description: The whole recovery state (lock, nodes, halts, failed and maintenance marks).
  returned: always
  type: dict
recovery_state:
  description: Where the state lives (a file path or C(configmap NAMESPACE/NAME)).
  returned: always
  type: str
"""

import copy
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.baremetal.k8s.plugins.module_utils import recovery_state as rs
from ansible_collections.baremetal.k8s.plugins.module_utils.errors import BaremetalError
from ansible_collections.baremetal.k8s.plugins.module_utils.fleet import load_fleet
from ansible_collections.baremetal.k8s.plugins.module_utils.ledger_store import (
    STORE_ARGUMENT_SPEC,
    recovery_store,
)
from ansible_collections.baremetal.k8s.plugins.module_utils.recovery_plan import REPLACE, REPROVISION

# Options each action needs.
REQUIRED = {"lock": ("holder",), "unlock": ("holder",), "begin": ("node", "step"), "fail": ("node", "step", "error"),
            "finish": ("node",), "mark_failed": ("node", "error"), "clear_failed": ("node",),
            "mark_maintenance": ("node", "reason", "holder"), "clear_maintenance": ("node",), "read": ()}


def change(params, now, where):
    """The store's mutate callback for the action, and a dict it fills with what happened."""
    outcome = {}

    def mutate(state):
        rs.check_state(state, where)
        action = params["action"]
        if action == "lock":
            decision = rs.acquire_lock(state, params["holder"], now=now, ttl=params["ttl"])
            outcome.update(acquired=decision.acquired, reason=decision.reason)
            return decision.acquired
        if action == "unlock":
            released = rs.release_lock(state, params["holder"])
            outcome["reason"] = "released the lock" if released else "%s holds no lock: nothing to release" % (
                params["holder"],)
            return released
        if action == "mark_failed":
            return rs.mark_failed(state, params["node"], params["error"], now=now, replaced_by=params["replaced_by"])
        if action == "clear_failed":
            return rs.clear_failed(state, params["node"])
        if action == "mark_maintenance":
            return rs.mark_maintenance(state, params["node"], params["reason"], now=now, by=params["holder"])
        if action == "clear_maintenance":
            return rs.clear_maintenance(state, params["node"])
        if action == "begin":
            entry = rs.begin_step(state, params["node"], params["step"], now=now, cluster=params["cluster"],
                                  first_unhealthy=params["first_unhealthy"], action=params["remediation"])
        elif action == "fail":
            entry = rs.fail_step(state, params["node"], params["step"], params["error"], now=now)
        else:
            entry = rs.finish(state, params["node"], now=now, outcome=params["outcome"])
        outcome["entry"] = copy.deepcopy(entry)
        return True

    return mutate, outcome


def run(module):
    params = module.params
    missing = [name for name in REQUIRED[params["action"]] if not params[name]]
    if missing:
        module.fail_json(msg="action=%s needs %s. Fix: add %s" % (params["action"], ", ".join(missing),
                                                                  " and ".join(missing)))
    now = params["now"] if params["now"] is not None else time.time()
    fleet = load_fleet(params["fleet"])
    if params["action"] in ("mark_maintenance", "mark_failed") and params["node"] not in fleet.servers:
        module.fail_json(msg="%s: servers: no server named %r. Fix: name one of the fleet file's servers in node "
                             "(e.g. %s)" % (params["fleet"], params["node"], ", ".join(list(fleet.servers)[:5])))
    store = recovery_store(fleet, params)
    mutate, outcome = change(params, now, store.description)
    before = rs.check_state(store.read(), store.description)
    if params["action"] == "read":
        state, changed = before, False
    elif module.check_mode:
        state = copy.deepcopy(before)
        changed = mutate(state)
    else:
        state = store.update(mutate)
        changed = state != before
    lock = state.get("lock") or {}
    result = dict(changed=changed, state=state, recovery_state=store.description, holder=lock.get("holder"),
                  expires=lock.get("expires"), **outcome)
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            fleet=dict(type="path", required=True),
            action=dict(type="str", choices=list(REQUIRED), default="read"),
            holder=dict(type="str"),
            ttl=dict(type="int", default=1800),
            node=dict(type="str"),
            cluster=dict(type="str"),
            step=dict(type="str", choices=list(rs.STEPS)),
            remediation=dict(type="str", choices=[REPROVISION, REPLACE]),
            first_unhealthy=dict(type="float"),
            error=dict(type="str"),
            outcome=dict(type="str", default="recovered"),
            replaced_by=dict(type="str"),
            reason=dict(type="str"),
            now=dict(type="float"),
            recovery_file=dict(type="path"),
            **STORE_ARGUMENT_SPEC,
        ),
        supports_check_mode=True,
    )
    try:
        result = run(module)
    except BaremetalError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
