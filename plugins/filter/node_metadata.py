# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The node labels and taints the fleet declares, as a Jinja filter: a thin shell over module_utils/node_metadata.py.

Each filter is documented in its own file beside this one (plugins/filter/<filter>.yml).
"""

from __future__ import annotations

from ansible_collections.baremetal.k8s.plugins.module_utils import node_metadata
from ansible_collections.baremetal.k8s.plugins.plugin_utils.filters import filters_of

# filter name -> the pure function it exposes
DECISIONS = {
    "node_metadata_changes": node_metadata.changes_from_kubectl,
}


class FilterModule:
    def filters(self):
        return filters_of(DECISIONS)
