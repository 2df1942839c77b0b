# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""etcd_backup.yml's, etcd_restore.yml's and etcd_restore_check.yml's words as Jinja filters: thin shells over
module_utils/etcd_backup.py and etcd_restore_check.py.

Each filter is documented in its own file beside this one (plugins/filter/<filter>.yml).
"""

from __future__ import annotations

from ansible_collections.baremetal.k8s.plugins.module_utils import etcd_backup, etcd_restore_check
from ansible_collections.baremetal.k8s.plugins.plugin_utils.filters import filters_of

# filter name -> the pure function it exposes
DECISIONS = {
    "etcd_backup_pki_files": etcd_backup.pki_files,
    "etcd_backup_line": etcd_backup.backup_line,
    "etcd_restore_plan": etcd_backup.restore_plan,
    "etcd_restore_check_line": etcd_restore_check.check_line,
}


class FilterModule:
    def filters(self):
        return filters_of(DECISIONS)
