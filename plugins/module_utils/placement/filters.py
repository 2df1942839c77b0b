# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An intent's hard constraints on a server, and how well a server fits it.

``hard_filters`` is the one statement of the constraints: the funnel of the server placement applies them
in this order, ``unmet_constraints`` names the ones a kept server no longer meets, and the benchmark's
first-fit baseline uses the same predicates.
"""

from __future__ import annotations

from ansible_collections.baremetal.k8s.plugins.module_utils.fleet import Intent
from ansible_collections.baremetal.k8s.plugins.module_utils.placement.model import UNRESERVED_LABELS, Candidate

__all__ = ["fit_key", "hard_filters", "unmet_constraints"]


def hard_filters(intent: Intent) -> list[tuple[str, object]]:
    """(label, predicate) for every hard constraint of an intent, in funnel order."""
    filters = []
    if intent.min_cores:
        filters.append(("cores >= %d" % intent.min_cores, lambda c: c.cores >= intent.min_cores))
    if intent.min_memory_gb:
        filters.append(("memory_gb >= %d" % intent.min_memory_gb, lambda c: c.memory_gb >= intent.min_memory_gb))
    if intent.disk_type or intent.min_disk_gb:
        label = "a%s disk" % (" " + intent.disk_type if intent.disk_type else "")
        if intent.min_disk_gb:
            label += " >= %d GB" % intent.min_disk_gb
        filters.append((label, lambda c: c.largest_disk(intent.disk_type) >= max(intent.min_disk_gb, 1)))
    if intent.min_nic_gbps:
        filters.append(("NIC >= %d Gbps" % intent.min_nic_gbps, lambda c: c.nic_gbps >= intent.min_nic_gbps))
    if intent.gpus:
        filters.append(("gpus >= %d" % intent.gpus, lambda c: c.gpus >= intent.gpus))
    if intent.dedicated:
        filters.append(
            ("labels.workload == %s" % intent.dedicated, lambda c: c.workload_label == intent.dedicated)
        )
    else:
        # Dedicated hardware stays free for the workload type it is labelled for.
        filters.append(("not dedicated to another workload", lambda c: c.workload_label in UNRESERVED_LABELS))
    return filters


def unmet_constraints(intent: Intent, server: Candidate) -> list[str]:
    return [label for label, test in hard_filters(intent) if not test(server)]


def fit_key(intent: Intent, server: Candidate) -> tuple[int, ...]:
    """Hardware above the intent's minimum: smaller strands less capacity."""
    disk = server.largest_disk(intent.disk_type) if intent.disk_type or intent.min_disk_gb else 0
    return (
        server.gpus - intent.gpus,
        server.cores - intent.min_cores,
        server.memory_gb - intent.min_memory_gb,
        disk - intent.min_disk_gb,
        server.nic_gbps - intent.min_nic_gbps,
    )
