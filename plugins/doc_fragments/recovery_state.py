# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Where the recovery state lives (plugins/module_utils/recovery_state.py, docs/recovery.md)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  recovery_file:
    description:
      - Path of the recovery state for the C(file) store; a relative path is relative to the fleet file.
      - Default C(<fleet stem>.recovery.json) beside the fleet file. With O(allocation_store=kubernetes) the
        state is the ConfigMap named after O(configmap) (C(baremetal-k8s-recovery) by default).
    type: path
"""
