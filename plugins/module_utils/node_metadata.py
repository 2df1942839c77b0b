# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a live Node lacks against the labels and taints the fleet file declares for it (docs/reconcile.md).

Pure: nodes come in as plain mappings ``{name, labels, annotations, taints: [{key, value, effect}],
resource_version}`` (``nodes_from_kubectl`` makes them from ``kubectl get nodes -o json``); what to change
goes out as a JSON patch for ``kubectl patch node NAME --type=json -p PATCH`` and as items a person reads.

- Labels: a declared label that is missing or has another value is set; a label this collection set earlier
  (listed in the managed-labels annotation) and no longer declared is removed; every other label is left
  alone (kubeadm, the kubelet and controllers set many).
- Taints: a declared taint that is missing is added; a taint not declared is removed, unless its owner is
  someone else (``system_taint``).
"""

from __future__ import annotations

from .errors import BaremetalError
from .vocabulary import MANAGED_LABELS_ANNOTATION

# Taints other parties own, never removed for not being declared: the node lifecycle controller's
# (not-ready, unreachable, unschedulable, out-of-service), cloud providers', and this collection's own
# (recovery, maintenance).
# Cilium taints a node until its agent runs (pod_network: cilium).
SYSTEM_TAINT_PREFIXES = ("node.kubernetes.io/", "node.cloudprovider.kubernetes.io/", "baremetal.k8s/",
                         "node.cilium.io/")
# The cluster autoscaler's.
SYSTEM_TAINT_KEYS = frozenset(("ToBeDeletedByClusterAutoscaler", "DeletionCandidateOfClusterAutoscaler"))
# kubeadm's, on control planes only: on a worker it is an ordinary taint.
CONTROL_PLANE_TAINT = "node-role.kubernetes.io/control-plane"
ABSENT = "(absent)"


class NodeMetadataError(BaremetalError):
    """Bad input to the node labels and taints comparison (a field and its fix)."""


def system_taint(key, control_plane=False):
    """Whether a taint with KEY belongs to someone else, so an undeclared one is left on the node."""
    return (key.startswith(SYSTEM_TAINT_PREFIXES) or key in SYSTEM_TAINT_KEYS
            or (control_plane and key == CONTROL_PLANE_TAINT))


def declared(server, node_groups):
    """The Kubernetes labels and taints of SERVER's node: its labels with its NODE_GROUPS' labels, and their taints.

    The fleet file refuses a server label that conflicts with its group's; a placed server may still have one
    (fleet.place_members warns), and its own value wins. Without group labels the server's own mapping is
    returned, not a copy: the inventory of a big fleet stays small.
    """
    labels = server.labels
    group_labels = {}
    for group in node_groups:
        group_labels.update(group.labels)
    if group_labels:
        labels = {**group_labels, **server.labels}
    return labels, [taint.as_dict() for group in node_groups for taint in group.taints]


def fleet_wanted(fleet, cluster):
    """``cluster_changes``'s WANTED for CLUSTER's members (a ``fleet.Fleet``): name -> {labels, taints,
    control_plane}, what the inventory gives each host as fleet_node_labels and fleet_node_taints."""
    wanted = {}
    for name in cluster.members():
        groups = [g for g in cluster.node_groups if name in g.members]
        labels, taints = declared(fleet.servers[name], groups)
        wanted[name] = {"labels": labels, "taints": taints, "control_plane": "control_plane" in cluster.roles_of(name)}
    return wanted


def nodes_from_kubectl(items):
    """The plain node mappings ``node_changes`` reads, from the ``items`` of ``kubectl get nodes -o json``."""
    if not isinstance(items, list):
        raise NodeMetadataError("expected the items list of kubectl get nodes -o json",
                                "pass (output.stdout | from_json)['items']", where="nodes")
    nodes = []
    for index, item in enumerate(items):
        meta = item.get("metadata") if isinstance(item, dict) else None
        if not isinstance(meta, dict) or not meta.get("name"):
            raise NodeMetadataError("a node has no metadata.name", "pass the items of kubectl get nodes -o json",
                                    where="nodes", path=f"[{index}]")
        spec = item.get("spec") or {}
        nodes.append({
            "name": meta["name"],
            "labels": dict(meta.get("labels") or {}),
            "annotations": dict(meta.get("annotations") or {}),
            "taints": [_observed_taint(t) for t in spec.get("taints") or ()],
            "resource_version": meta.get("resourceVersion"),
        })
    return nodes


def _observed_taint(raw):
    taint = {"key": raw.get("key"), "value": raw.get("value") or "", "effect": raw.get("effect")}
    if raw.get("timeAdded"):  # kept, so a taint the patch gives back is unchanged (NoExecute eviction timing)
        taint["timeAdded"] = raw["timeAdded"]
    return taint


def node_changes(node, want_labels, want_taints, *, control_plane=False):
    """What NODE lacks against WANT_LABELS (key -> value) and WANT_TAINTS ([{key, value, effect}]).

    Returns ``labels`` (key -> new value, None to remove), ``taints`` (the complete new list, None when
    unchanged), ``annotations`` (the new managed-labels annotation, None when unchanged), ``items`` (one
    ``{what, desired, observed}`` per difference) and ``patch`` (the JSON patch; empty when nothing changes).
    CONTROL_PLANE: kubeadm's control-plane taint is kubeadm's to keep.
    """
    labels = node.get("labels") or {}
    annotations = node.get("annotations") or {}
    want_labels = dict(want_labels or {})
    items = []

    label_changes = {}
    for key, value in sorted(want_labels.items()):
        if labels.get(key) != value:
            label_changes[key] = value
            items.append(_item("label " + key, value, labels.get(key)))
    for key in sorted(_managed_keys(annotations) - want_labels.keys()):
        if key in labels:  # set by us earlier, no longer declared
            label_changes[key] = None
            items.append(_item("label " + key, None, labels[key]))

    managed = ",".join(sorted(want_labels))
    observed_managed = annotations.get(MANAGED_LABELS_ANNOTATION)
    annotation = None
    if (observed_managed or "") != managed:  # no annotation and nothing declared: nothing to write
        annotation = managed
        items.append(_item("annotation " + MANAGED_LABELS_ANNOTATION, managed, observed_managed))

    taints = _taint_changes(node.get("taints") or [], want_taints or [], control_plane, items)
    patch = []
    if items:
        # A node changed since it was read (its resourceVersion moved) fails the patch instead of losing that change.
        patch.append({"op": "test", "path": "/metadata/resourceVersion", "value": node.get("resource_version")})
        patch.extend(_object_ops("/metadata/labels", labels, label_changes))
        if annotation is not None:
            patch.extend(_object_ops("/metadata/annotations", annotations, {MANAGED_LABELS_ANNOTATION: annotation}))
        if taints is not None:
            patch.append({"op": "add", "path": "/spec/taints", "value": [_taint_doc(t) for t in taints]})
    return {"labels": label_changes, "taints": taints, "annotations": annotation, "items": items, "patch": patch}


def cluster_changes(nodes, wanted):
    """``node_changes`` of every node of NODES named in WANTED (name -> {labels, taints, control_plane}).

    Returns, by node name, one result per node that changes, with ``name`` and ``desired`` and ``observed``
    (its items in one line each, what the drift record shows). Nodes WANTED names that do not exist yet are
    skipped: they get their labels and taints once they join.
    """
    results = []
    for node in sorted(nodes, key=lambda n: n["name"]):
        want = wanted.get(node["name"])
        if want is None:
            continue
        changes = node_changes(node, want.get("labels"), want.get("taints"),
                               control_plane=bool(want.get("control_plane")))
        if changes["patch"]:
            items = changes["items"]
            results.append({"name": node["name"],
                            "desired": ", ".join(f"{i['what']}: {i['desired']}" for i in items),
                            "observed": ", ".join(f"{i['what']}: {i['observed']}" for i in items),
                            **changes})
    return results


def changes_from_kubectl(items, wanted):
    """``cluster_changes`` over the ``items`` of ``kubectl get nodes -o json`` (the filter node_metadata_changes)."""
    return cluster_changes(nodes_from_kubectl(items), wanted or {})


# --------------------------------------------------------------------------- helpers


def _managed_keys(annotations):
    return {key.strip() for key in (annotations.get(MANAGED_LABELS_ANNOTATION) or "").split(",") if key.strip()}


def _taint_changes(observed, wanted, control_plane, items):
    """The complete new taint list (None when unchanged); an item for each taint added or removed."""
    wanted = [{"key": t["key"], "value": t.get("value") or "", "effect": t["effect"]} for t in wanted]
    wanted_ids = {_taint_id(t) for t in wanted}
    wanted_slots = {(t["key"], t["effect"]) for t in wanted}
    kept, changed = [], False
    for taint in observed:
        if _taint_id(taint) in wanted_ids:
            kept.append(taint)
        elif (taint["key"], taint["effect"]) not in wanted_slots and system_taint(taint["key"], control_plane):
            kept.append(taint)  # someone else's (a declared taint of the same key and effect replaces it)
        else:
            changed = True
            items.append(_item("taint " + _taint_text(taint), ABSENT, "present"))
    have = {_taint_id(t) for t in kept}
    for taint in wanted:
        if _taint_id(taint) not in have:
            have.add(_taint_id(taint))
            kept.append(taint)
            changed = True
            items.append(_item("taint " + _taint_text(taint), "present", ABSENT))
    return kept if changed else None


def _taint_id(taint):
    return taint["key"], taint.get("value") or "", taint["effect"]


def _taint_text(taint):
    value = taint.get("value") or ""
    return f"{taint['key']}={value}:{taint['effect']}" if value else f"{taint['key']}:{taint['effect']}"


def _taint_doc(taint):
    """A taint as the API writes it: no empty value."""
    doc = {"key": taint["key"], "effect": taint["effect"]}
    if taint.get("value"):
        doc["value"] = taint["value"]
    if taint.get("timeAdded"):
        doc["timeAdded"] = taint["timeAdded"]
    return doc


def _object_ops(path, current, changes):
    """JSON patch ops that set (value) or remove (None) CHANGES' keys of the object at PATH, now CURRENT."""
    if not changes:
        return []
    if not current:  # the object may be absent: write it whole (only additions can apply to it)
        return [{"op": "add", "path": path, "value": {k: v for k, v in sorted(changes.items()) if v is not None}}]
    ops = []
    for key, value in sorted(changes.items()):
        pointer = f"{path}/{_escape(key)}"
        if value is None:
            ops.append({"op": "remove", "path": pointer})
        else:
            ops.append({"op": "add", "path": pointer, "value": value})
    return ops


def _escape(key):
    """A JSON pointer token (RFC 6901): '~' as ~0, then '/' as ~1."""
    return key.replace("~", "~0").replace("/", "~1")


def _item(what, desired, observed):
    return {"what": what, "desired": _shown(desired), "observed": _shown(observed)}


def _shown(value):
    if value is None:
        return ABSENT
    return value if value else '""'
