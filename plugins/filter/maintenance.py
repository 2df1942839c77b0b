# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The maintenance job's glue as Jinja filters: thin shells over module_utils/maintenance.py.

Each filter is documented in its own file beside this one (plugins/filter/<filter>.yml).
"""

from __future__ import annotations

from ansible_collections.baremetal.k8s.plugins.module_utils import maintenance
from ansible_collections.baremetal.k8s.plugins.plugin_utils.filters import filters_of

# filter name -> the pure function it exposes
DECISIONS = {
    "maintenance_etcd_by_cluster": maintenance.etcd_by_cluster,
    "maintenance_line": maintenance.decision_line,
    "maintenance_outcome": maintenance.outcome,
}


class FilterModule:
    def filters(self):
        return filters_of(DECISIONS)
