# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Live node state from a cluster's API server, for the inventory.

``cluster_live_state(core_v1, servers)`` lists the cluster's Node objects once
and returns, per fleet server, what the inventory adds to its hostvars
(``k8s_node``) and the groups it joins (``k8s_ready``, ``k8s_not_ready``,
``k8s_cordoned``, ``k8s_unregistered``). A Node matches a server by name, or by
an InternalIP equal to the server's private address (kubelets registered
under another hostname).
"""

from __future__ import annotations

from typing import NamedTuple

from .errors import LocatedError
from .k8s_client import api_error_text


class LiveStateError(LocatedError):
    """The API server could not be read."""


def node_state(node):
    """The facts the inventory keeps about one ``V1Node``."""
    status = node.status
    ready, reason, since = None, "NoReadyCondition", None
    for condition in (status.conditions if status else None) or []:
        if condition.type == "Ready":
            ready = {"True": True, "False": False}.get(condition.status)  # "Unknown" stays None
            reason = condition.reason or condition.status
            # When Ready last changed: how long a node has been unhealthy (remediation's grace period).
            if condition.last_transition_time:
                since = condition.last_transition_time.isoformat()
    info = status.node_info if status else None
    addresses = (status.addresses if status else None) or []
    return {
        "name": node.metadata.name,
        "registered": True,
        "ready": ready,
        "ready_reason": reason,
        "ready_since": since,
        "cordoned": bool(node.spec and node.spec.unschedulable),
        "kubelet_version": info.kubelet_version if info else None,
        "taints": [
            {"key": t.key, "value": t.value, "effect": t.effect} for t in ((node.spec and node.spec.taints) or [])
        ],
        "internal_ips": [a.address for a in addresses if a.type == "InternalIP"],
    }


def read_nodes(core_v1, timeout=10):
    """All Node objects of a cluster as ``{name: node_state}``."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        nodes = core_v1.list_node(_request_timeout=timeout).items
    except ApiException as exc:
        raise LiveStateError(
            "api server", "nodes", f"cannot list nodes: {exc.status} {exc.reason}", "check RBAC"
        ) from None
    except (HTTPError, OSError) as exc:
        raise LiveStateError("api server", "nodes", api_error_text(exc), "check the kubeconfig") from None
    return {n.metadata.name: node_state(n) for n in nodes}


class ServerRef(NamedTuple):
    """A fleet server as live state matches it: by Node name, else by its private address."""

    name: str
    address: str


def match_servers(servers, nodes):
    """``{server name: node_state}`` for each ``ServerRef``; unregistered ones get a stub."""
    by_ip = {ip: state for state in nodes.values() for ip in state["internal_ips"]}
    result = {}
    for server in servers:
        state = nodes.get(server.name) or by_ip.get(server.address)
        result[server.name] = state or {"name": None, "registered": False, "ready": None, "cordoned": False,
                                        "kubelet_version": None, "taints": [], "internal_ips": [],
                                        "ready_reason": "NotRegistered", "ready_since": None}  # fmt: skip
    return result


def live_groups(state):
    """Inventory groups a server joins given its node state."""
    if not state["registered"]:
        return ["k8s_unregistered"]
    groups = ["k8s_ready" if state["ready"] else "k8s_not_ready"]
    if state["cordoned"]:
        groups.append("k8s_cordoned")
    return groups


def cluster_live_state(core_v1, servers, timeout=10):
    """Read the cluster once and return ``{server name: node_state}``."""
    return match_servers(servers, read_nodes(core_v1, timeout))
