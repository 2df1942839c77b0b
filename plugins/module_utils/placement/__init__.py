# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Intent-driven placement: servers to clusters' node groups, tenant workloads to node groups.

Two levels, one call (``plan_placement``):

1. servers to clusters' node groups (``servers``): hard filters (``filters``: hardware, dedicated labels,
   state), then a greedy pick per server ranked by failure-domain spread, reuse of servers that served
   the group before, network locality (``locality``: hops to the group's peers, the ``fleet.hop_distance``
   rule) and best fit;
2. tenant workloads to node groups (``workloads``): least-connection across the clusters of a region,
   capacity checks per node, replicas spread across failure domains, and the scheduling snippet for the
   manifests.

The parts, each importing only the ones above it:

- ``model``: the input model (``Candidate``, ``GroupRequest``, ``WorkloadRequest``, ``PlacementOptions``),
  its validation and ``PlacementError``;
- ``ledger``: ``Ledger`` (from_data/to_data) and its text (``dump_ledger``, ``parse_ledger``);
- ``filters``, ``locality``: an intent's hard constraints and fit; summed hop distances;
- ``servers``, ``workloads``: the two levels;
- ``plan``: ``plan_placement``, ``replace_server`` and the adapters from the fleet model (``model_from_fleet``).

Everything is deterministic: inputs are sorted by name and every ranking ends with the name as the last
tie-break. Already placed servers and workloads are kept unless ``rebalance`` is asked for, so re-running
a plan changes nothing. This package re-exports the public names; import them from here.
"""

from __future__ import annotations

from ansible_collections.baremetal.k8s.plugins.module_utils.placement.ledger import (
    LEDGER_VERSION,
    Ledger,
    dump_ledger,
    parse_ledger,
)
from ansible_collections.baremetal.k8s.plugins.module_utils.placement.model import (
    HISTORY_DEPTH,
    NODE_LABELS,
    UNRESERVED_LABELS,
    Candidate,
    GroupRequest,
    Location,
    PlacementError,
    PlacementOptions,
    WorkloadRequest,
    etcd_quorum_cap,
    share_cap,
    workload_request,
)
from ansible_collections.baremetal.k8s.plugins.module_utils.placement.plan import (
    INTENT_FIELDS,
    PlacementResult,
    candidate_from_server,
    group_request,
    model_from_fleet,
    plan_placement,
    replace_server,
)

__all__ = [
    "HISTORY_DEPTH",
    "INTENT_FIELDS",
    "LEDGER_VERSION",
    "NODE_LABELS",
    "UNRESERVED_LABELS",
    "Candidate",
    "GroupRequest",
    "Ledger",
    "Location",
    "PlacementError",
    "PlacementOptions",
    "PlacementResult",
    "WorkloadRequest",
    "candidate_from_server",
    "dump_ledger",
    "etcd_quorum_cap",
    "group_request",
    "model_from_fleet",
    "parse_ledger",
    "plan_placement",
    "replace_server",
    "share_cap",
    "workload_request",
]
