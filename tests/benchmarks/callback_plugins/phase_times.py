# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Callback for bench_site.py: writes each task's wall time, play, role and file as JSON lines.

Enabled by bench_site.py through ANSIBLE_CALLBACK_PLUGINS and
ANSIBLE_CALLBACKS_ENABLED; writes to the file named by BMK8S_PHASE_TIMES.
A task lasts from its start until the next task (or the end of the run)
starts, which is what a person waiting on the run sees.
"""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: phase_times
type: aggregate
short_description: Task wall times as JSON lines, for bench_site.py
description: Writes one JSON object per task (play, role, task name, file, seconds) to the file in BMK8S_PHASE_TIMES.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "phase_times"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._current = None
        self._started = 0.0
        self._out = open(os.environ["BMK8S_PHASE_TIMES"], "a", encoding="utf-8")  # noqa: SIM115 (closed at stats)

    def _finish(self):
        if self._current is not None:
            self._current["seconds"] = round(time.monotonic() - self._started, 3)
            self._out.write(json.dumps(self._current) + "\n")
        self._current = None

    def v2_playbook_on_play_start(self, play):
        self._play = play.get_name()

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._finish()
        role = task._role.get_name(include_role_fqcn=False) if task._role else ""
        self._current = {"play": getattr(self, "_play", ""), "role": role, "task": task.get_name(),
                         "path": task.get_path() or ""}
        self._started = time.monotonic()

    def v2_playbook_on_handler_task_start(self, task):
        self.v2_playbook_on_task_start(task, False)

    def v2_playbook_on_stats(self, stats):
        self._finish()
        self._out.close()
