# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's words, each defined once: the fleet parser, the planners and the
modules' ``choices`` read them from here (docs/architecture.md)."""

from __future__ import annotations

import re

_UNSAFE = re.compile(r"[^A-Za-z0-9_]")

# Lifecycle of a server (docs/fleet-format.md).
SERVER_STATES = ("spare", "provisioning", "active", "maintenance", "failed", "retired")
# Servers placement may hand out; active servers serving no group count as free.
PLACEABLE_STATES = ("spare", "active")
# Servers placement takes out of their group and replaces.
RELEASED_STATES = ("failed", "retired")
# Servers remediation may act on.
REMEDIABLE_STATES = ("active",)
# Servers that count as a cluster's nodes for max_unhealthy: maintenance and failed are capacity already lost.
COUNTED_STATES = ("active", "maintenance", "failed")

# What a node group does. Load balancers are hosts, not Kubernetes nodes.
ROLES = ("control_plane", "etcd", "worker", "load_balancer")
NODE_ROLES = ("control_plane", "etcd", "worker")

# Failure-domain levels, smallest first. A server's failure domain is region/datacenter/row/rack.
FAILURE_DOMAIN_LEVELS = ("rack", "row", "datacenter", "region")
# The levels an intent or a plan may spread over (a region is one cluster's whole world).
SPREAD_LEVELS = FAILURE_DOMAIN_LEVELS[:3]
# Workloads may also spread over nodes only.
WORKLOAD_SPREAD_LEVELS = (*SPREAD_LEVELS, "node")

# etcd keeps quorum with an odd member count; more than 7 only slows writes.
ETCD_SIZES = (1, 3, 5, 7)

# Kubernetes taint effects, as node groups declare them (docs/fleet-format.md).
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")

POD_NETWORKS = ("routed", "cilium")
DISK_TYPES = ("nvme", "ssd", "hdd")
NETWORK_KINDS = ("private", "public")
LEDGER_STORES = ("file", "kubernetes")

# Drift (reconciliation, drift.py): what kind of intent differs, and how much fixing it risks, lowest first.
DRIFT_KINDS = ("host", "fleet", "ledger", "etcd", "security")
RISK_LEVELS = ("low", "medium", "high")
# The checker's verdicts (cluster_check.py), best first: the overall status is the worst one.
CHECK_STATUSES = ("ok", "warn", "critical")

# Node annotations: who cordoned a node for this collection and why (node_drain writes them, node_health reads them).
CORDONED_BY_ANNOTATION = "baremetal.k8s/cordoned-by"
CORDON_REASON_ANNOTATION = "baremetal.k8s/cordon-reason"
# The cordoned-by value of a node held for planned maintenance (maintenance.py, playbooks/maintenance.yml).
MAINTENANCE_CORDONER = "baremetal.k8s/maintenance"
# The node label keys this collection set from the fleet file, comma-separated (node_metadata.py): a key
# listed here and no longer declared is removed; labels others set are left alone.
MANAGED_LABELS_ANNOTATION = "baremetal.k8s/managed-labels"


def cluster_group(cluster, *parts):
    """The inventory group of a cluster (``cluster_<name>``) or of one of its roles (``cluster_<name>_<role>``)."""
    return group_name("cluster", cluster, *parts)


def group_name(*parts):
    """An inventory group name: the parts joined by ``_``, every character but letters, digits and ``_`` as ``_``."""
    return _UNSAFE.sub("_", "_".join(parts))
