# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: drift_record
type: aggregate
short_description: Records what the roles would change in check mode, for the drift report
version_added: 0.1.0
description:
  - Writes one JSON line per task result that ran in check mode and would change a host (the module
    reports a change, or a command that is not declared C(changed_when=false) would run) - the host,
    the role, the task, the loop item and the desired and observed values (docs/reconcile.md).
  - Results of C(no_log) tasks are recorded without values.
  - The file is named by the environment variable E(BMK8S_DRIFT_RECORD); when it is unset the callback
    creates a private temporary file and sets the variable for the rest of the run, so the playbook's
    tasks find the file with C(lookup('ansible.builtin.env', 'BMK8S_DRIFT_RECORD')).
  - Needs enabling, as the collection's C(ansible.cfg) does (C(callbacks_enabled = baremetal.k8s.drift_record)).
author:
  - baremetal.k8s maintainers (@baremetal)
requirements:
  - enabled in C(callbacks_enabled)
options: {}
"""

import json
import os
import tempfile

from ansible.playbook.handler import Handler
from ansible.plugins.callback import CallbackBase
from ansible_collections.baremetal.k8s.plugins.module_utils.drift_host import is_drift, record_from_result

ENV = "BMK8S_DRIFT_RECORD"


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "baremetal.k8s.drift_record"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.path = None
        self.created = False

    def v2_playbook_on_start(self, playbook):
        # Set before any worker forks, so every task of the run sees it.
        self.path = os.environ.get(ENV)
        if not self.path:
            handle, self.path = tempfile.mkstemp(prefix="bmk8s-drift-", suffix=".jsonl")
            os.close(handle)
            os.environ[ENV] = self.path
            self.created = True
        with open(self.path, "w", encoding="utf-8"):
            pass  # each run starts with an empty record
        os.chmod(self.path, 0o600)

    def _record(self, result, item=None, item_value=None):
        fields = result._task_fields or {}
        if self.path is None or not is_drift(result._result, fields.get("check_mode"), fields.get("changed_when")):
            return
        task = result._task
        if isinstance(task, Handler):  # a handler follows from a change already recorded
            return
        role = task._role.get_name() if task._role else None
        record = record_from_result(host=result._host.get_name(), role=role,
                                    task=fields.get("name") or task.action, item=item,
                                    result=result._result, no_log=bool(fields.get("no_log")),
                                    item_value=item_value)
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(json.dumps(record, sort_keys=True, default=str) + "\n")

    def _item(self, result):
        """The loop item's label and the item itself."""
        data = result._result if isinstance(result._result, dict) else {}
        value = data.get(data.get("ansible_loop_var") or "item")
        label = data.get("_ansible_item_label", value)
        return (None if label is None else str(label)), value

    def v2_runner_on_ok(self, result):
        if "results" not in result._result:  # a loop's items are recorded one by one
            self._record(result)

    def v2_runner_on_skipped(self, result):
        if "results" not in result._result:
            self._record(result)

    def v2_runner_item_on_ok(self, result):
        self._record(result, *self._item(result))

    def v2_runner_item_on_skipped(self, result):
        self._record(result, *self._item(result))

    def v2_playbook_on_stats(self, stats):
        if self.created and os.path.exists(self.path):
            os.remove(self.path)  # the playbook has read it; a file it was given is the caller's to keep
