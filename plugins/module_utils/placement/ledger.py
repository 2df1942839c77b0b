# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The placement ledger: what the engine decided earlier (``<fleet>.placement.yml`` or a ConfigMap).

The ledger is stored through ``ledger_store`` (kind ``PLACEMENT``); this module only converts between the
stored dict and ``Ledger`` and renders the text a file store writes (for diffs).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ansible_collections.baremetal.k8s.plugins.module_utils.placement.model import PlacementError

LEDGER_VERSION = 1

__all__ = ["LEDGER_VERSION", "Ledger", "apply_placement", "dump_ledger", "parse_ledger"]


@dataclass
class Ledger:
    """Engine-placed servers, their history, and the tenant workloads."""

    servers: dict[str, tuple[str, str]] = field(default_factory=dict)  # server -> (cluster, group)
    history: dict[str, list[str]] = field(default_factory=dict)  # server -> ["cluster/group", ...] oldest first
    workloads: dict[str, dict] = field(default_factory=dict)  # name -> {cluster, group, nodes, spec}

    @classmethod
    def from_data(cls, data, source: str = "ledger") -> Ledger:
        if not data:
            return cls()
        if not isinstance(data, dict) or data.get("version", LEDGER_VERSION) != LEDGER_VERSION:
            raise PlacementError("%s: not a version %d placement ledger" % (source, LEDGER_VERSION),
                                 "restore it from a backup, or remove it to plan from scratch")
        ledger = cls()
        for server, entry in sorted((data.get("servers") or {}).items()):
            if not isinstance(entry, dict) or not entry.get("cluster") or not entry.get("group"):
                raise PlacementError("%s: servers.%s needs cluster and group" % (source, server),
                                     "restore the ledger from a backup")
            ledger.servers[str(server)] = (str(entry["cluster"]), str(entry["group"]))
        for server, past in sorted((data.get("history") or {}).items()):
            ledger.history[str(server)] = [str(item) for item in past or []]
        for name, entry in sorted((data.get("workloads") or {}).items()):
            if not isinstance(entry, dict) or not entry.get("cluster") or not entry.get("nodes"):
                raise PlacementError("%s: workloads.%s needs cluster and nodes" % (source, name),
                                     "restore the ledger from a backup")
            ledger.workloads[str(name)] = {
                "cluster": str(entry["cluster"]),
                "group": str(entry.get("group", "")),
                "nodes": [str(node) for node in entry["nodes"]],
                "spec": dict(entry.get("spec") or {}),
            }
        return ledger

    def to_data(self) -> dict:
        return {
            "version": LEDGER_VERSION,
            "servers": {s: {"cluster": c, "group": g} for s, (c, g) in sorted(self.servers.items())},
            "history": {s: list(h) for s, h in sorted(self.history.items()) if h},
            "workloads": {
                name: {"cluster": w["cluster"], "group": w["group"], "nodes": list(w["nodes"]), "spec": dict(w["spec"])}
                for name, w in sorted(self.workloads.items())
            },
        }


def dump_ledger(ledger: Ledger) -> str:
    """The ledger as its file store writes it (YAML with a header), for diffs and comparisons."""
    # Imported here: ledger_store brings the Kubernetes client's transport (urllib3, ssl) when installed,
    # thousands of objects the engine itself never needs (they slow its garbage collections).
    from ansible_collections.baremetal.k8s.plugins.module_utils.ledger_store import PLACEMENT, encode

    return encode(ledger.to_data(), "placement.yml", PLACEMENT)


def parse_ledger(text: str, source: str = "ledger") -> Ledger:
    import yaml

    try:
        return Ledger.from_data(yaml.safe_load(text) if text else None, source)
    except yaml.YAMLError as exc:
        raise PlacementError("%s: not valid YAML: %s" % (source, exc), "restore it from a backup") from exc


def apply_placement(fleet, store):
    """Make the servers of the placement ledger in ``store`` members of their node groups
    (``fleet.place_members``), as the inventory does, so every reader sees the same clusters.
    Returns the warnings for entries that no longer fit the fleet file."""
    from ansible_collections.baremetal.k8s.plugins.module_utils.fleet import place_members

    return place_members(fleet, Ledger.from_data(store.read(), store.description).servers)
