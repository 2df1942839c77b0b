# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The recovery job's glue as Jinja filters: thin shells over module_utils/recovery_probes.py.

Each filter is documented in its own file beside this one (plugins/filter/<filter>.yml).
"""

from __future__ import annotations

from ansible_collections.baremetal.k8s.plugins.module_utils import recovery_probes
from ansible_collections.baremetal.k8s.plugins.plugin_utils.filters import filters_of

# filter name -> the pure function it exposes
DECISIONS = {
    "recovery_probe_script": recovery_probes.probe_script,
    "recovery_probes": recovery_probes.probes_from_output,
    "recovery_health_members": recovery_probes.health_members,
    "recovery_steps_from": recovery_probes.steps_from,
    "recovery_summary": recovery_probes.recovery_summary,
    "recovery_token_host": recovery_probes.token_host,
}


class FilterModule:
    def filters(self):
        return filters_of(DECISIONS)
