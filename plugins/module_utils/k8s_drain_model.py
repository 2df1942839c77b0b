# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every part of the drain shares: its options, its error, one pod's record and the clock.

No Ansible imports, no Kubernetes client imports: plain data.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import BaremetalError

ON_TIMEOUT_CHOICES = ("fail", "force_delete")

# Pod actions decided before anything is evicted.
EVICT, SKIP, REFUSE, WAIT = "evict", "skip", "refuse", "wait"


class DrainError(BaremetalError):
    """The drain could not finish; ``result`` holds the partial result (per-pod outcomes, blockers)."""

    def __init__(self, msg: str, result: dict | None = None, fix: str | None = None):
        super().__init__(msg, fix)
        self.result = result or {}


class NodeNotFound(DrainError):
    """The Node object does not exist (a node that never registered, or was deleted)."""


class DrainOptionError(DrainError, ValueError):
    """A DrainOptions value that cannot work (also a ValueError, as it always was)."""

    def __init__(self, option: str, problem: str, fix: str):
        super().__init__(f"{option}: {problem}", fix=fix)
        self.option = option


@dataclass
class DrainOptions:
    delete_emptydir_data: bool = False
    allow_unmanaged: bool = False  # evict pods that no controller manages (they will not come back)
    grace_period: int | None = None  # eviction's gracePeriodSeconds; None keeps each pod's own
    timeout: float = 300.0  # bound on the eviction phase, PDB retries included; 0: no limit (as kubectl)
    on_timeout: str = "fail"  # or "force_delete"
    force_delete_grace_period: int | None = None  # for on_timeout=force_delete; None keeps each pod's own
    wait_timeout: float = 120.0  # bound on waiting for evicted pods to disappear; 0: no limit
    parallel: int = 16  # concurrent eviction requests
    backoff_initial: float = 1.0  # retry backoff for refusals whose PDB status cannot be watched
    backoff_max: float = 10.0  # cap of that backoff; also the longest a refused pod waits between tries
    report_interval: float = 10.0  # seconds between "still blocked" reports
    pdb_poll_interval: float = 0.5  # seconds before re-reading PDBs when their watch fails
    skip_wait_for_delete_timeout: int = 0  # >0: pods whose deletionTimestamp is older than this are not waited for
    pod_selector: str | None = None  # label selector: only these pods are drained (kubectl --pod-selector)
    # Who cordons the node and why: the Node's cordon annotations (k8s_drain_cordon.py); None: not given.
    cordoned_by: str | None = None
    cordon_reason: str | None = None

    def __post_init__(self) -> None:
        if self.on_timeout not in ON_TIMEOUT_CHOICES:
            raise DrainOptionError("on_timeout", f"must be one of {ON_TIMEOUT_CHOICES}, not {self.on_timeout!r}",
                                   "use fail or force_delete")
        if self.parallel < 1:
            raise DrainOptionError("parallel", f"parallel must be >= 1, not {self.parallel}", "use 1 or more")
        for name in ("timeout", "wait_timeout", "skip_wait_for_delete_timeout"):
            if getattr(self, name) < 0:
                raise DrainOptionError(name, f"must be 0 or more, not {getattr(self, name)}", "0 means no limit")
        for name in ("cordoned_by", "cordon_reason"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise DrainOptionError(name, f"must be a non-empty string, not {value!r}",
                                       "leave it out, or say who (for example recover.yml awx-job-4711) or why")
        if self.backoff_initial <= 0 or self.backoff_max < self.backoff_initial:
            raise DrainOptionError("backoff_initial", "must be > 0 and backoff_max >= backoff_initial",
                                   f"for example backoff_initial=1, backoff_max=10 (got {self.backoff_initial}, "
                                   f"{self.backoff_max})")


def deadline_after(now: float, seconds: float) -> float:
    """NOW + SECONDS, where 0 seconds means no limit (as kubectl drain --timeout=0)."""
    return math.inf if seconds == 0 else now + seconds


@dataclass(frozen=True)
class Clock:
    """Time as the drain sees it. Unit tests pass a fake whose sleep() only moves its numbers."""

    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    wall: Callable[[], float] = time.time  # compared with deletionTimestamps (skip_wait_for_delete_timeout)


@dataclass(frozen=True)
class DrainContext:
    """What every step of one drain works with. ``api`` is a KubeDrainApi or a test's simulated cluster."""

    api: Any
    node: str
    options: DrainOptions
    clock: Clock
    log: Callable[[str], None]
    t0: float  # clock.monotonic() when the drain started

    def since_start(self) -> float:
        return round(self.clock.monotonic() - self.t0, 3)


@dataclass
class PodRecord:
    """One pod of the node: what the drain decided and what happened to it."""

    namespace: str
    name: str
    uid: str
    action: str  # evict | skip | refuse | wait
    reason: str
    # pending | evicted | gone | force_deleted | blocked | failed | skipped | refused | terminating
    # | would_evict | would_refuse | would_fail
    outcome: str = "pending"
    attempts: int = 0
    blocked_by: list[str] = field(default_factory=list)  # "namespace/pdb"
    message: str = ""
    evicted_after: float | None = None  # seconds since the drain started
    gone_after: float | None = None
    # Not part of the result: the controller's UID (first attempts go round-robin over controllers),
    # the pod's labels (which PDBs select it), when the last refusal came and when the backoff retry is due.
    owner: str = field(default="", repr=False)
    labels: dict = field(default_factory=dict, repr=False)
    refused_at: float = field(default=0.0, repr=False)
    next_at: float = field(default=0.0, repr=False)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def as_dict(self) -> dict:
        out = asdict(self)
        for hidden in ("owner", "labels", "refused_at", "next_at"):
            out.pop(hidden)
        return out
