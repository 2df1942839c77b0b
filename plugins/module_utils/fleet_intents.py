# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Node group intents: the one place their fields are checked (fleet file and placement module alike)."""

from __future__ import annotations

import contextlib
import dataclasses

from .fleet_checks import Checker, Skip, shown, suggest, type_name
from .fleet_model import FleetValidationError, Intent
from .vocabulary import DISK_TYPES, SPREAD_LEVELS

INTENT_FIELDS = frozenset(Intent.__dataclass_fields__)
# Counts and minimums: whole numbers >= 0.
WHOLE_NUMBER_FIELDS = ("count", "min_cores", "min_memory_gb", "min_disk_gb", "min_nic_gbps", "gpus")


def intent_from_mapping(raw, source, path, base=None):
    """The ``Intent`` of ``raw`` (a mapping of intent fields); raises ``FleetValidationError`` with every problem.

    ``source`` and ``path`` locate the problems (``FILE: PATH.FIELD: PROBLEM. Fix: FIX``). Fields not
    given keep their value in ``base`` (default ``Intent()``), so a partial mapping overrides an intent.

    This is the only validation of intents: the fleet parser uses it for ``node_groups[].intent``, and the
    placement module's ``intents`` option must call it too (with the option's intent fields only, and
    without the fields Ansible left unset as None), e.g.
    ``intent_from_mapping(fields, "placement", f"intents[{i}]", base=group.intent)``.
    """
    checker = Checker(source)
    with contextlib.suppress(Skip):
        return read_intent(checker, raw, path, base)
    raise FleetValidationError(checker.errors)


def read_intent(check, raw, path, base=None):
    """``intent_from_mapping`` for a parser: problems go to ``check.errors``, and it raises Skip if any."""
    if not isinstance(raw, dict):
        check.fail(path, f"expected a mapping, got {type_name(raw)}", "write it as key: value pairs")
    before = len(check.errors)
    values = {}
    for key, value in raw.items():
        field_path = f"{path}.{str(key)[:80]}"
        if key not in INTENT_FIELDS:
            check.error(field_path, f"unknown field {shown(key)}", f"remove it or use {suggest(INTENT_FIELDS)}")
            continue
        with contextlib.suppress(Skip):
            values[key] = _field(check, key, value, field_path)
    if len(check.errors) > before:
        raise Skip()
    return dataclasses.replace(base or Intent(), **values)


def _field(check, key, value, path):
    if key in WHOLE_NUMBER_FIELDS:
        return check.integer(value, path, 0)
    if key == "disk_type":  # empty: any disk type
        return "" if value in ("", None) else check.choice(value, path, DISK_TYPES)
    if key == "dedicated":  # matched against the servers' labels.workload, so it is a label value
        return "" if value is None else check.label_value(value, path)
    if key == "spread":
        return check.choice(value, path, SPREAD_LEVELS)
    # max_share_per_domain
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        check.fail(path, f"expected a number in (0, 1], got {shown(value)}", "write e.g. 0.34")
    return float(value)
