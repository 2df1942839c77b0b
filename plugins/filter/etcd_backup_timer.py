# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""roles/etcd_backup_timer's decisions as Jinja filters: thin shells over module_utils/etcd_backup_timer.py.

Each filter is documented in its own file beside this one (plugins/filter/<filter>.yml).
"""

from __future__ import annotations

from ansible_collections.baremetal.k8s.plugins.module_utils import etcd_backup_timer
from ansible_collections.baremetal.k8s.plugins.plugin_utils.filters import filters_of

# filter name -> the pure function it exposes
DECISIONS = {
    "etcd_backup_timer_problems": etcd_backup_timer.timer_problems,
    "etcd_backup_timer_config": etcd_backup_timer.timer_config,
}


class FilterModule:
    def filters(self):
        return filters_of(DECISIONS)
