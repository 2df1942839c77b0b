# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every filter plugin of the collection shares: pure functions of module_utils exposed as filters."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.baremetal.k8s.plugins.module_utils.errors import BaremetalError


def as_filter(name, decide):
    """``decide`` as a filter: its errors say which filter failed."""

    def run(*args, **kwargs):
        try:
            return decide(*args, **kwargs)
        except BaremetalError as exc:
            raise AnsibleFilterError("%s: %s" % (name, exc)) from exc

    run.__name__ = name
    return run


def filters_of(decisions):
    """The ``FilterModule.filters()`` mapping for DECISIONS (filter name -> pure function)."""
    return {name: as_filter(name, decide) for name, decide in decisions.items()}
