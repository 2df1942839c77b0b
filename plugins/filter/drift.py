# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The roles' live-state comparisons as Jinja filters: thin shells over module_utils/drift_host.py.

Each filter is documented in its own file beside this one (plugins/filter/<filter>.yml).
"""

from __future__ import annotations

from ansible_collections.baremetal.k8s.plugins.module_utils import drift_host
from ansible_collections.baremetal.k8s.plugins.plugin_utils.filters import filters_of

# filter name -> the pure function it exposes
DECISIONS = {
    "live_rows": drift_host.live_rows,
    "live_drift": drift_host.live_drift,
    "wireguard_live_drift": drift_host.wireguard_live_drift,
}


class FilterModule:
    def filters(self):
        return filters_of(DECISIONS)
