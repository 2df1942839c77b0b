# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who cordoned a node and why (module_utils/k8s_drain_cordon.py): the patch ``plan_cordon`` makes for each
starting Node, and ``NodeDrainer.cordon`` against a fake API that keeps one Node.

The drain with these annotations runs on the simulated cluster in test_k8s_drain_loop.py, and against the
real control plane in tests/integration/test_node_drain.py.
"""

from __future__ import annotations

import json

import pytest
from ansible_collections.baremetal.k8s.plugins.module_utils import node_health, vocabulary
from ansible_collections.baremetal.k8s.plugins.module_utils.k8s_drain import (
    DrainOptionError,
    DrainOptions,
    NodeDrainer,
    plan_cordon,
)
from ansible_collections.baremetal.k8s.plugins.module_utils.k8s_drain_cordon import MARK_ANNOTATIONS
from ansible_collections.baremetal.k8s.plugins.module_utils.vocabulary import (
    CORDON_REASON_ANNOTATION as REASON,
)
from ansible_collections.baremetal.k8s.plugins.module_utils.vocabulary import (
    CORDONED_BY_ANNOTATION as BY,
)

OTHER = "example.com/owner"  # an annotation that is not ours: never in a patch


def node(unschedulable: bool = False, **annotations) -> dict:
    """A Node as JSON; keyword ``by``/``reason`` are our annotations, ``other`` someone else's."""
    names = {"by": BY, "reason": REASON, "other": OTHER}
    meta = {"name": "w1", "annotations": {names[k]: v for k, v in annotations.items()}}
    return {"metadata": meta, "spec": {"unschedulable": True} if unschedulable else {}}


def apply(the_node: dict, patch: dict | None) -> dict:
    """What the API server makes of a strategic merge patch of spec and annotations."""
    out = json.loads(json.dumps(the_node))
    if patch is None:
        return out
    out["spec"].update(patch.get("spec", {}))
    annotations = out["metadata"].setdefault("annotations", {})
    for key, value in patch.get("metadata", {}).get("annotations", {}).items():
        if value is None:
            annotations.pop(key, None)
        else:
            annotations[key] = value
    return out


def test_the_annotation_names_are_defined_once():
    assert (BY, REASON) == ("baremetal.k8s/cordoned-by", "baremetal.k8s/cordon-reason")
    assert MARK_ANNOTATIONS == (vocabulary.CORDONED_BY_ANNOTATION, vocabulary.CORDON_REASON_ANNOTATION)
    assert node_health.CORDONED_BY_ANNOTATION is vocabulary.CORDONED_BY_ANNOTATION
    assert node_health.CORDON_REASON_ANNOTATION is vocabulary.CORDON_REASON_ANNOTATION


JOB = "recover.yml awx-job-4711"
WHY = "kubelet down: drain and redeploy"


@pytest.mark.parametrize(
    ("start", "cordon", "by", "reason", "patch", "previous"),
    [
        # A schedulable node cordoned with both: one patch carries the flag and the annotations.
        (node(), True, JOB, WHY, {"spec": {"unschedulable": True},
                                  "metadata": {"annotations": {BY: JOB, REASON: WHY}}}, None),
        # Without either: only the flag, as before.
        (node(), True, None, None, {"spec": {"unschedulable": True}}, None),
        # Only one given: the other is not written.
        (node(), True, JOB, None, {"spec": {"unschedulable": True}, "metadata": {"annotations": {BY: JOB}}}, None),
        # Already cordoned with the same values: nothing to do.
        (node(True, by=JOB, reason=WHY), True, JOB, WHY, None, {"cordoned_by": JOB, "reason": WHY}),
        # Already cordoned by someone else: the cordon stays, the annotations are overwritten.
        (node(True, by="alice", reason="disk swap"), True, JOB, WHY,
         {"metadata": {"annotations": {BY: JOB, REASON: WHY}}}, {"cordoned_by": "alice", "reason": "disk swap"}),
        # Only a reason differs: only it is sent.
        (node(True, by=JOB, reason="old"), True, JOB, WHY, {"metadata": {"annotations": {REASON: WHY}}},
         {"cordoned_by": JOB, "reason": "old"}),
        # One left out is removed, so the two describe the same cordon.
        (node(True, by="alice", reason="disk swap"), True, JOB, None,
         {"metadata": {"annotations": {BY: JOB, REASON: None}}}, {"cordoned_by": "alice", "reason": "disk swap"}),
        # A cordon by kubectl (no annotations), now claimed.
        (node(True), True, JOB, WHY, {"metadata": {"annotations": {BY: JOB, REASON: WHY}}}, None),
        # Cordoning a cordoned node without either: its annotations are not ours to change.
        (node(True, by="alice"), True, None, None, None, {"cordoned_by": "alice", "reason": None}),
        # Cordoning a schedulable node without either: annotations left by an old cordon go.
        (node(by="alice", reason="old"), True, None, None,
         {"spec": {"unschedulable": True}, "metadata": {"annotations": {BY: None, REASON: None}}},
         {"cordoned_by": "alice", "reason": "old"}),
        # Uncordon: the flag and both annotations in one patch.
        (node(True, by=JOB, reason=WHY), False, None, None,
         {"spec": {"unschedulable": False}, "metadata": {"annotations": {BY: None, REASON: None}}},
         {"cordoned_by": JOB, "reason": WHY}),
        # Uncordon of a schedulable node with a left-over annotation: changed, only it removed.
        (node(reason="old"), False, None, None, {"metadata": {"annotations": {REASON: None}}},
         {"cordoned_by": None, "reason": "old"}),
        # Uncordon of a cordon without annotations: the flag only.
        (node(True), False, None, None, {"spec": {"unschedulable": False}}, None),
        # Nothing to uncordon.
        (node(), False, None, None, None, None),
    ],
)
def test_plan_cordon(start, cordon, by, reason, patch, previous):
    start["metadata"]["annotations"][OTHER] = "kept"
    change = plan_cordon(start, cordon, by, reason)
    assert change.patch == patch
    assert change.changed is (patch is not None)
    assert change.previous == previous
    assert change.was_unschedulable is bool(start["spec"].get("unschedulable"))
    after = apply(start, change.patch)
    assert bool(after["spec"].get("unschedulable")) is cordon
    assert after["metadata"]["annotations"][OTHER] == "kept"
    # The same task again finds nothing to do.
    again = plan_cordon(after, cordon, by, reason)
    assert again.patch is None and not again.changed


def test_flips_and_marks_changed_tell_the_cordon_from_the_annotations():
    taken_over = plan_cordon(node(True, by="alice"), True, JOB, WHY)
    assert not taken_over.flips and taken_over.marks_changed and taken_over.changed
    fresh = plan_cordon(node(), True, None, None)
    assert fresh.flips and not fresh.marks_changed


def test_diff_shows_the_annotations_only_when_they_are_involved():
    plain = plan_cordon(node(), True).diff()
    assert plain["before"] == {"spec": {"unschedulable": False}}
    assert plain["after"] == {"spec": {"unschedulable": True}}
    assert plain["before_header"] == plain["after_header"] == "node/w1"
    marked = plan_cordon(node(True, by="alice", other="x"), True, JOB, WHY).diff()
    assert marked["before"] == {"spec": {"unschedulable": True}, "metadata": {"annotations": {BY: "alice"}}}
    assert marked["after"] == {"spec": {"unschedulable": True},
                               "metadata": {"annotations": {BY: JOB, REASON: WHY}}}
    ended = plan_cordon(node(True, by=JOB), False).diff()
    assert ended["after"] == {"spec": {"unschedulable": False}, "metadata": {"annotations": {}}}


def test_describe_says_who_and_why():
    assert plan_cordon(node(), True, JOB, WHY).describe() == f"node w1 cordoned (by {JOB}, reason: {WHY})"
    assert plan_cordon(node(), True).describe() == "node w1 cordoned"
    assert plan_cordon(node(True, by="alice"), True, JOB).describe() == f"node w1 kept cordoned (by {JOB})"
    assert plan_cordon(node(True, by=JOB), False).describe() == "node w1 uncordoned, cordon annotations removed"


def test_node_health_reads_what_the_cordon_writes():
    cordoned = apply(node(), plan_cordon(node(), True, JOB, WHY).patch)
    observed = {"name": "w1", "internal_ips": [], "unschedulable": cordoned["spec"]["unschedulable"],
                "annotations": cordoned["metadata"]["annotations"], "kubelet_version": "v1.36.3", "taints": [],
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": None,
                                "last_transition_time": 0.0, "last_heartbeat_time": 0.0}]}
    report = node_health.assess([{"name": "w1"}], [observed], [], now=10.0).as_dict()["nodes"][0]
    assert report["cordoned_by"] == JOB and report["cordon_reason"] == WHY


class OneNode:
    """The drain's API for one Node: reads and strategic merge patches (a test's stand-in for KubeDrainApi)."""

    def __init__(self, the_node: dict):
        self.node = the_node
        self.patches: list[dict] = []

    def read_node(self, name):
        return json.loads(json.dumps(self.node))

    def patch_node(self, name, patch):
        self.patches.append(patch)
        self.node = apply(self.node, patch)


def drainer(api: OneNode, lines: list, **options) -> NodeDrainer:
    return NodeDrainer(None, "w1", DrainOptions(**options), log=lines.append, api=api)


def test_cordon_sends_one_patch_and_a_second_run_none():
    api, lines = OneNode(node(by="alice", reason="old")), []
    change = drainer(api, lines, cordoned_by=JOB, cordon_reason=WHY).cordon(True)
    assert change.flips and change.previous == {"cordoned_by": "alice", "reason": "old"}
    assert api.patches == [{"spec": {"unschedulable": True}, "metadata": {"annotations": {BY: JOB, REASON: WHY}}}]
    assert lines == [f"node w1 cordoned (by {JOB}, reason: {WHY})"]
    again = drainer(api, lines, cordoned_by=JOB, cordon_reason=WHY)
    assert not again.cordon(True).changed and len(api.patches) == 1
    assert again.last_cordon is not None and not again.last_cordon.changed
    # Uncordon removes both, whatever the options say.
    assert drainer(api, lines).cordon(False).changed
    assert api.node["spec"]["unschedulable"] is False and api.node["metadata"]["annotations"] == {}
    assert not drainer(api, lines).set_unschedulable(False)


def test_cordon_in_check_mode_writes_nothing():
    api, lines = OneNode(node(True, by="alice")), []
    change = drainer(api, lines, cordoned_by=JOB).cordon(True, check_mode=True)
    assert change.changed and change.patch == {"metadata": {"annotations": {BY: JOB}}}
    assert api.patches == [] and lines == []
    assert drainer(api, lines).cordon(False, check_mode=True).changed and api.patches == []


@pytest.mark.parametrize("name", ["cordoned_by", "cordon_reason"])
@pytest.mark.parametrize("value", ["", "   ", 4711])
def test_blank_marks_are_refused(name, value):
    with pytest.raises(DrainOptionError) as err:
        DrainOptions(**{name: value})
    assert err.value.option == name and "non-empty string" in str(err.value)
