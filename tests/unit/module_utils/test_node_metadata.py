# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Node labels and taints (module_utils/node_metadata.py): what a Node lacks, as items and a JSON patch; a
patch applied and compared again leaves nothing to change."""

from __future__ import annotations

import copy

import pytest
from ansible_collections.baremetal.k8s.plugins.module_utils.node_metadata import (
    MANAGED_LABELS_ANNOTATION,
    NodeMetadataError,
    changes_from_kubectl,
    cluster_changes,
    node_changes,
    nodes_from_kubectl,
)
from hypothesis import given
from hypothesis import strategies as st

MANAGED = MANAGED_LABELS_ANNOTATION


def node(labels=None, annotations=None, taints=None, name="w1"):
    return {"name": name, "labels": labels or {}, "annotations": annotations or {}, "taints": taints or [],
            "resource_version": "42"}


def taint(key, effect="NoSchedule", value=""):
    return {"key": key, "value": value, "effect": effect}


def doc(name="w1", labels=None, annotations=None, taints=None, rv="42"):
    """A Node as kubectl get nodes -o json shows it; None leaves the field out."""
    meta = {"name": name, "resourceVersion": rv}
    if labels is not None:
        meta["labels"] = labels
    if annotations is not None:
        meta["annotations"] = annotations
    spec = {"podCIDR": "10.244.1.0/24"}
    if taints is not None:
        spec["taints"] = taints
    return {"apiVersion": "v1", "kind": "Node", "metadata": meta, "spec": spec}


# --------------------------------------------------------------------------- a tiny RFC 6902 applier


class PatchFailed(Exception):
    pass


def _tokens(pointer):
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]


def apply_patch(document, patch):
    """DOCUMENT with PATCH applied (test, add and remove on objects, as the API server does); the input is kept."""
    document = copy.deepcopy(document)
    for op in patch:
        *parents, last = _tokens(op["path"])
        target = document
        for token in parents:
            if not isinstance(target, dict) or token not in target:
                raise PatchFailed(f"{op['path']}: no parent {token!r}")
            target = target[token]
        if op["op"] == "test":
            if target.get(last) != op["value"]:
                raise PatchFailed(f"test {op['path']}: {target.get(last)!r} != {op['value']!r}")
        elif op["op"] == "add":
            target[last] = copy.deepcopy(op["value"])
        elif op["op"] == "remove":
            if last not in target:
                raise PatchFailed(f"remove {op['path']}: absent")
            del target[last]
        else:
            raise PatchFailed(f"unexpected op {op['op']}")
    return document


def test_the_applier_follows_the_rfc():
    patch = [{"op": "remove", "path": "/a/b~1c"}, {"op": "add", "path": "/a/d~0e", "value": 3}]
    assert apply_patch({"a": {"b/c": 1, "d~e": 2}}, patch) == {"a": {"d~e": 3}}
    with pytest.raises(PatchFailed):
        apply_patch({"a": 1}, [{"op": "test", "path": "/a", "value": 2}])
    with pytest.raises(PatchFailed):
        apply_patch({}, [{"op": "add", "path": "/x/y", "value": 2}])


# --------------------------------------------------------------------------- labels


def test_a_node_as_declared_has_no_changes():
    n = node({"env": "prod", "kubernetes.io/hostname": "w1"}, {MANAGED: "env"}, [taint("dedicated", value="gpu")])
    assert node_changes(n, {"env": "prod"}, [taint("dedicated", value="gpu")]) == {
        "labels": {}, "taints": None, "annotations": None, "items": [], "patch": []}


def test_nothing_declared_and_nothing_managed_changes_nothing():
    n = node({"kubernetes.io/hostname": "w1"}, taints=[taint("node.kubernetes.io/unreachable", "NoExecute")])
    assert node_changes(n, {}, [])["patch"] == []


def test_a_missing_or_different_label_is_set_and_recorded_in_the_annotation():
    n = node({"env": "dev", "kubernetes.io/hostname": "w1"}, {"other": "x"})
    changes = node_changes(n, {"env": "prod", "example.com/gpu": "a100"}, [])
    assert changes["labels"] == {"env": "prod", "example.com/gpu": "a100"}
    assert changes["annotations"] == "env,example.com/gpu"
    assert changes["items"] == [
        {"what": "label env", "desired": "prod", "observed": "dev"},
        {"what": "label example.com/gpu", "desired": "a100", "observed": "(absent)"},
        {"what": "annotation " + MANAGED, "desired": "env,example.com/gpu", "observed": "(absent)"},
    ]
    assert changes["patch"] == [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "42"},
        {"op": "add", "path": "/metadata/labels/env", "value": "prod"},
        {"op": "add", "path": "/metadata/labels/example.com~1gpu", "value": "a100"},
        {"op": "add", "path": "/metadata/annotations/baremetal.k8s~1managed-labels", "value": "env,example.com/gpu"},
    ]


def test_a_label_we_set_and_no_longer_declare_is_removed_others_are_left_alone():
    n = node({"env": "prod", "team": "a", "kubernetes.io/hostname": "w1", "gone": "x"}, {MANAGED: "env,team,old"})
    changes = node_changes(n, {"env": "prod"}, [])
    assert changes["labels"] == {"team": None}  # "old" is not on the node, hostname and "gone" are not ours
    assert changes["annotations"] == "env"
    assert {"op": "remove", "path": "/metadata/labels/team"} in changes["patch"]
    assert changes["items"][0] == {"what": "label team", "desired": "(absent)", "observed": "a"}


def test_an_empty_label_value_is_a_value():
    changes = node_changes(node({"empty": "x"}, {MANAGED: "empty"}), {"empty": ""}, [])
    assert changes["labels"] == {"empty": ""}
    assert changes["items"] == [{"what": "label empty", "desired": '""', "observed": "x"}]


def test_labels_and_annotations_absent_from_the_node_are_written_whole():
    document = doc()  # no metadata.labels, no metadata.annotations
    (n,) = nodes_from_kubectl([document])
    changes = node_changes(n, {"env": "prod"}, [])
    assert changes["patch"][1:] == [{"op": "add", "path": "/metadata/labels", "value": {"env": "prod"}},
                                    {"op": "add", "path": "/metadata/annotations", "value": {MANAGED: "env"}}]
    patched = apply_patch(document, changes["patch"])
    assert patched["metadata"]["labels"] == {"env": "prod"}


def test_only_the_annotation_missing_writes_it():
    changes = node_changes(node({"env": "prod"}), {"env": "prod"}, [])
    assert changes["labels"] == {} and changes["annotations"] == "env"
    assert [i["what"] for i in changes["items"]] == ["annotation " + MANAGED]


def test_the_annotation_is_emptied_when_nothing_is_declared_any_more():
    changes = node_changes(node({"env": "prod"}, {MANAGED: "env"}), {}, [])
    assert changes["labels"] == {"env": None} and changes["annotations"] == ""


# --------------------------------------------------------------------------- taints


def test_a_missing_taint_is_added_and_kept_taints_are_given_back_as_they_were():
    unreachable = {"key": "node.kubernetes.io/unreachable", "value": "", "effect": "NoExecute",
                   "timeAdded": "2026-01-01T00:00:00Z"}
    changes = node_changes(node(taints=[unreachable]), {}, [taint("dedicated", value="gpu")])
    assert changes["taints"] == [unreachable, taint("dedicated", value="gpu")]
    assert changes["items"] == [{"what": "taint dedicated=gpu:NoSchedule", "desired": "present",
                                 "observed": "(absent)"}]
    assert changes["patch"][-1] == {"op": "add", "path": "/spec/taints", "value": [
        {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute", "timeAdded": "2026-01-01T00:00:00Z"},
        {"key": "dedicated", "effect": "NoSchedule", "value": "gpu"}]}


def test_an_undeclared_taint_is_removed_and_someone_elses_are_kept():
    kept = [taint("node.kubernetes.io/unschedulable"), taint("node.cloudprovider.kubernetes.io/uninitialized"),
            taint("ToBeDeletedByClusterAutoscaler"), taint("DeletionCandidateOfClusterAutoscaler", "PreferNoSchedule"),
            taint("baremetal.k8s/recovering", "NoExecute")]
    changes = node_changes(node(taints=[*kept, taint("old", value="x")]), {}, [])
    assert changes["taints"] == kept
    assert changes["items"] == [{"what": "taint old=x:NoSchedule", "desired": "(absent)", "observed": "present"}]


def test_kubeadms_control_plane_taint_is_kept_on_control_planes_only():
    cp = taint("node-role.kubernetes.io/control-plane")
    assert node_changes(node(taints=[cp]), {}, [], control_plane=True)["patch"] == []
    assert node_changes(node(taints=[cp]), {}, [])["taints"] == []


def test_a_taint_with_another_value_is_replaced():
    changes = node_changes(node(taints=[taint("dedicated", value="cpu")]), {}, [taint("dedicated", value="gpu")])
    assert changes["taints"] == [taint("dedicated", value="gpu")]
    assert [i["what"] for i in changes["items"]] == ["taint dedicated=cpu:NoSchedule", "taint dedicated=gpu:NoSchedule"]


def test_a_declared_taint_replaces_a_system_taint_of_the_same_key_and_effect():
    # Kubernetes keeps one taint per key and effect: keeping both would make the API refuse the patch.
    changes = node_changes(node(taints=[taint("baremetal.k8s/pool", value="a")]), {},
                           [taint("baremetal.k8s/pool", value="b")])
    assert changes["taints"] == [taint("baremetal.k8s/pool", value="b")]


def test_a_taint_without_value_matches_one_kubectl_shows_without_value():
    (n,) = nodes_from_kubectl([doc(taints=[{"key": "dedicated", "effect": "NoSchedule"}])])
    assert node_changes(n, {}, [{"key": "dedicated", "effect": "NoSchedule"}])["patch"] == []
    assert node_changes(n, {}, [taint("dedicated")])["patch"] == []


# --------------------------------------------------------------------------- clusters and kubectl


def test_cluster_changes_skips_nodes_not_wanted_missing_or_unchanged():
    nodes = [node({"env": "dev"}, name="w2"), node({"env": "prod"}, {MANAGED: "env"}, name="w1"),
             node(name="stranger")]
    wanted = {"w1": {"labels": {"env": "prod"}, "taints": []},
              "w2": {"labels": {"env": "prod"}, "taints": [], "control_plane": False},
              "w9": {"labels": {"env": "prod"}, "taints": []}}  # not joined yet
    (result,) = cluster_changes(nodes, wanted)
    assert result["name"] == "w2"
    assert result["desired"] == f"label env: prod, annotation {MANAGED}: env"
    assert result["observed"] == f"label env: dev, annotation {MANAGED}: (absent)"
    assert result["patch"] == node_changes(nodes[0], {"env": "prod"}, [])["patch"]


def test_cluster_changes_passes_control_plane():
    nodes = [node(taints=[taint("node-role.kubernetes.io/control-plane")], name="cp1")]
    assert cluster_changes(nodes, {"cp1": {"labels": {}, "taints": [], "control_plane": True}}) == []
    assert len(cluster_changes(nodes, {"cp1": {"labels": {}, "taints": []}})) == 1


def test_nodes_from_kubectl_reduces_each_item():
    taints = [{"key": "k", "value": "v", "effect": "NoExecute", "timeAdded": "t"}]
    item = doc(labels={"a": "b"}, annotations={"x": "y"}, taints=taints)
    assert nodes_from_kubectl([item]) == [{"name": "w1", "labels": {"a": "b"}, "annotations": {"x": "y"},
                                           "taints": [{"key": "k", "value": "v", "effect": "NoExecute",
                                                       "timeAdded": "t"}],
                                           "resource_version": "42"}]
    assert nodes_from_kubectl([]) == []


@pytest.mark.parametrize("items, words", [({"items": []}, "expected the items list"),
                                          ([{"spec": {}}], "no metadata.name"), (["w1"], "no metadata.name")])
def test_nodes_from_kubectl_refuses_what_is_not_kubectls_items(items, words):
    with pytest.raises(NodeMetadataError, match=words) as info:
        nodes_from_kubectl(items)
    assert "Fix: " in str(info.value)


def test_changes_from_kubectl_is_cluster_changes_over_the_items():
    items = [doc(labels={"env": "dev"})]
    wanted = {"w1": {"labels": {"env": "prod"}, "taints": [taint("t")]}}
    assert changes_from_kubectl(items, wanted) == cluster_changes(nodes_from_kubectl(items), wanted)


def test_a_concurrent_change_fails_the_patch_instead_of_being_overwritten():
    document = doc(labels={"env": "dev"})
    patch = node_changes(nodes_from_kubectl([document])[0], {"env": "prod"}, [])["patch"]
    document["metadata"]["resourceVersion"] = "43"  # someone changed the node after we read it
    with pytest.raises(PatchFailed, match="resourceVersion"):
        apply_patch(document, patch)


# --------------------------------------------------------------------------- properties

KEYS = st.sampled_from(["env", "zone", "example.com/gpu", "kubernetes.io/hostname", "a~b/c", "team"])
VALUES = st.sampled_from(["", "a", "b"])
TAINT_KEYS = st.sampled_from(["dedicated", "example.com/pool", "node.kubernetes.io/unreachable",
                              "node-role.kubernetes.io/control-plane", "baremetal.k8s/recovering",
                              "ToBeDeletedByClusterAutoscaler"])
EFFECTS = st.sampled_from(["NoSchedule", "PreferNoSchedule", "NoExecute"])


def taint_lists():
    """Taints with one per key and effect, as the API (and the fleet file) allows; some without a value."""
    entries = st.dictionaries(st.tuples(TAINT_KEYS, EFFECTS), st.one_of(st.none(), VALUES), max_size=5)
    return entries.map(lambda d: [{"key": k, "effect": e, **({} if v is None else {"value": v})}
                                  for (k, e), v in d.items()])


@st.composite
def documents(draw):
    labels = draw(st.one_of(st.none(), st.dictionaries(KEYS, VALUES, max_size=6)))
    annotations = draw(st.one_of(st.none(), st.dictionaries(st.sampled_from([MANAGED, "other"]),
                                                            st.lists(KEYS, max_size=4).map(",".join), max_size=2)))
    taints = draw(st.one_of(st.none(), taint_lists()))
    return doc(labels=labels, annotations=annotations, taints=taints)


@given(documents(), st.dictionaries(KEYS, VALUES, max_size=4), taint_lists(), st.booleans())
def test_a_patch_applied_leaves_nothing_to_change(document, want_labels, want_taints, control_plane):
    before = nodes_from_kubectl([document])[0]
    changes = node_changes(before, want_labels, want_taints, control_plane=control_plane)
    assert bool(changes["patch"]) == bool(changes["items"])
    after = nodes_from_kubectl([apply_patch(document, changes["patch"])])[0]
    assert node_changes(after, want_labels, want_taints, control_plane=control_plane)["patch"] == []
    # Declared labels are there; labels that are neither declared nor ours are untouched.
    ours = {k for k in (before["annotations"].get(MANAGED) or "").split(",") if k}
    assert all(after["labels"].get(k) == v for k, v in want_labels.items())
    assert {k: v for k, v in after["labels"].items() if k not in want_labels} == {
        k: v for k, v in before["labels"].items() if k not in want_labels and k not in ours}
    # One taint per key and effect; someone else's stay unless a declared one takes their key and effect.
    slots = [(t["key"], t["effect"]) for t in after["taints"]]
    assert len(slots) == len(set(slots))
    declared = {(t["key"], t["effect"]) for t in want_taints}
    for t in before["taints"]:
        foreign = t["key"].startswith(("node.kubernetes.io/", "baremetal.k8s/")) or t["key"] in (
            "ToBeDeletedByClusterAutoscaler",) or (control_plane and t["key"].startswith("node-role."))
        if foreign and (t["key"], t["effect"]) not in declared:
            assert t in after["taints"]
