# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PodDisruptionBudgets as the drain sees them: who refused an eviction, what they allow now, reports.

Pure: 429 bodies and PDB statuses come in as the API returns them (JSON).
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass

from .k8s_drain_model import PodRecord
from .k8s_drain_pods import selector_matches

_PDB_IN_MESSAGE = re.compile(r"disruption budget (\S+)")
_STATUS_NUMBERS = (
    ("disruptions_allowed", "disruptionsAllowed"),
    ("current_healthy", "currentHealthy"),
    ("desired_healthy", "desiredHealthy"),
    ("expected_pods", "expectedPods"),
)


def pdbs_from_status(body: str | bytes | None, namespace: str) -> list[str]:
    """PDB names ("ns/name") from a 429 Status body ("The disruption budget web needs 2 healthy pods ...")."""
    try:
        status = json.loads(body or "{}")
    except ValueError:
        return []
    names = []
    for cause in (status.get("details") or {}).get("causes") or []:
        match = _PDB_IN_MESSAGE.search(cause.get("message", ""))
        if match:
            names.append(f"{namespace}/{match.group(1)}")
    return sorted(set(names))


def status_message(body: str | bytes | None, default: str = "") -> str:
    try:
        status = json.loads(body or "{}")
    except ValueError:
        return default
    causes = [c.get("message", "") for c in (status.get("details") or {}).get("causes") or []]
    return "; ".join([status.get("message", default), *[c for c in causes if c]]).strip("; ")


def backoff_delay(attempt: int, initial: float = 1.0, maximum: float = 10.0, rng: Callable[[], float] = random.random):
    """Delay before retry ATTEMPT (1-based): exponential, capped, with 25% jitter so pods spread out."""
    base = min(maximum, initial * (2 ** max(0, attempt - 1)))
    return base * (0.75 + 0.25 * rng())


def pods_to_retry(blocked: list[PodRecord], allowed: dict[str, int],
                  pdbs_of: Callable[[PodRecord], list[str]] | None = None) -> list[PodRecord]:
    """Blocked pods to retry now: per PDB at most as many as it allows disruptions, soonest-due first.

    A pod's PDBs are those that refused it (or what PDBS_OF says); a pod under several PDBs needs
    every one of them to allow (the API refuses such pods anyway).
    """
    budget = dict(allowed)
    chosen = []
    for rec in sorted(blocked, key=lambda r: (r.next_at, r.key)):
        keys = pdbs_of(rec) if pdbs_of else rec.blocked_by
        if keys and all(budget.get(p, 0) > 0 for p in keys):
            for p in keys:
                budget[p] -= 1
            chosen.append(rec)
    return chosen


@dataclass
class _Budget:
    status: dict | None = None  # last status read (None: not read yet)
    selector: dict | None = None  # spec.selector (None: selects no pod)
    version: int = 0  # the ledger's version when that status was read
    deleted: bool = False  # the PDB is gone: it limits nothing any more
    in_flight: int = 0  # our eviction requests under this PDB not answered yet
    spent: int = 0  # our evictions accepted since that status was read
    refused: bool = False  # the API refused one since that status was read


class PdbLedger:
    """What each watched PDB allows right now, counting our own evictions it does not show yet.

    The status comes from the API (a watch); between two statuses, requests in flight and evictions
    accepted are subtracted, and a refusal means none is allowed, so a drain sends an eviction only
    when the PDB can take it.

    A refusal only counts when no newer status arrived while its request was in flight: the server
    may have decided before the change, and a stale "none allowed" would hold the PDB's pods back
    until the next change, which may never come. Versions (a counter of statuses read) order them.
    """

    def __init__(self) -> None:
        self._budgets: dict[str, _Budget] = {}
        self._version = 0

    def observe(self, key: str, status: dict | None, selector: dict | None = None) -> None:
        """A PDB's status as read from the API (None: the PDB was deleted, so it limits nothing)."""
        self._version += 1
        budget = self._budgets.setdefault(key, _Budget())
        budget.status, budget.deleted, budget.version = status or {}, status is None, self._version
        budget.selector = selector
        budget.spent, budget.refused = 0, False

    def selecting(self, namespace: str, labels: dict) -> list[str]:
        """The watched PDBs of NAMESPACE whose selector selects a pod with LABELS."""
        return sorted(key for key, budget in self._budgets.items()
                      if key.startswith(namespace + "/") and budget.selector is not None and not budget.deleted
                      and selector_matches(budget.selector, labels))

    def knows(self, keys: list[str]) -> bool:
        """Whether every one of these PDBs has been read (a refusal naming none is not known)."""
        return bool(keys) and all(self._budgets.get(key, _Budget()).status is not None for key in keys)

    def sent(self, keys: list[str]) -> int:
        """An eviction request under KEYS is sent; returns the ticket to hand to answered()."""
        for key in keys:
            self._budgets.setdefault(key, _Budget()).in_flight += 1
        return self._version

    def answered(self, keys: list[str], ticket: int, accepted: bool, refused_by: list[str]) -> None:
        """The request sent under KEYS with TICKET was answered: ACCEPTED, or refused by REFUSED_BY (a 429)."""
        for key in keys:
            budget = self._budgets.setdefault(key, _Budget())
            budget.in_flight = max(0, budget.in_flight - 1)
            budget.spent += accepted
        for key in refused_by:
            budget = self._budgets.setdefault(key, _Budget())
            if budget.version <= ticket:
                budget.refused = True

    def allowed(self) -> dict[str, float]:
        """Disruptions each known PDB would accept from us now."""
        out: dict[str, float] = {}
        for key, budget in self._budgets.items():
            if budget.status is None:
                continue
            if budget.deleted:
                out[key] = math.inf
            elif budget.refused:
                out[key] = 0
            else:
                out[key] = budget.status.get("disruptionsAllowed", 0) - budget.in_flight - budget.spent
        return out

    def statuses(self) -> dict[str, dict]:
        return {key: budget.status for key, budget in self._budgets.items() if budget.status is not None}


def blocked_report(records: list[PodRecord], pdb_status: dict[str, dict] | None = None,
                   outcome: str = "blocked") -> list[dict]:
    """Pods with OUTCOME grouped by the PDB that blocks them, with the PDB's status numbers when known."""
    groups: dict[str, list[str]] = {}
    for rec in records:
        if rec.outcome != outcome:
            continue
        for pdb in rec.blocked_by or [""]:
            groups.setdefault(pdb, []).append(rec.key)
    report = []
    for pdb, pods in sorted(groups.items()):
        entry = {"pdb": pdb or None, "pods": sorted(pods)}
        st = (pdb_status or {}).get(pdb) or {}
        for k_out, k_in in _STATUS_NUMBERS:
            if k_in in st:
                entry[k_out] = st[k_in]
        report.append(entry)
    return report


def format_blocked(report: list[dict]) -> list[str]:
    lines = []
    for entry in report:
        pods = ", ".join(entry["pods"])
        if entry["pdb"]:
            nums = ", ".join(f"{k}={entry[k]}" for k, _api_name in _STATUS_NUMBERS if k in entry)
            lines.append(f"PodDisruptionBudget {entry['pdb']} ({nums or 'status unknown'}) blocks eviction of {pods}")
        else:
            lines.append(f"eviction of {pods} refused with 429 (no PodDisruptionBudget named; API throttling?)")
    return lines
