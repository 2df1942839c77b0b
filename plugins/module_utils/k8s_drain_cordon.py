# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cordon and uncordon as one patch of the Node: ``spec.unschedulable`` and who cordoned it and why.

Pure (no I/O): ``plan_cordon(node, cordon, cordoned_by, reason)`` reads a Node
(a JSON dict) and returns the ``CordonChange`` that makes it so, with the
strategic merge patch to send (``None``: nothing to change).

The rules, so that a recovery cordon can be told from a person's:

- cordoning with ``cordoned_by`` and/or ``reason`` sets the annotations
  ``CORDONED_BY_ANNOTATION`` / ``CORDON_REASON_ANNOTATION`` (vocabulary.py) to
  exactly those values, whoever cordoned the node before; one left out is
  removed, so the two always describe the same cordon;
- cordoning without either leaves the annotations of a node that is already
  cordoned alone (the task does not claim that cordon), and removes them
  from a node it cordons itself (they were left by a cordon that is over);
- uncordoning removes both.

``previous`` tells what the annotations said before, so a caller sees whose
cordon it took over or ended.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .vocabulary import CORDON_REASON_ANNOTATION, CORDONED_BY_ANNOTATION

# The annotations a cordon mark consists of, and the name of each in results.
MARK_ANNOTATIONS = (CORDONED_BY_ANNOTATION, CORDON_REASON_ANNOTATION)
MARK_KEYS = {CORDONED_BY_ANNOTATION: "cordoned_by", CORDON_REASON_ANNOTATION: "reason"}


def node_marks(node: dict) -> dict[str, str]:
    """The cordon annotations present on NODE (a Node as JSON), by annotation name."""
    annotations = (node.get("metadata") or {}).get("annotations") or {}
    return {name: annotations[name] for name in MARK_ANNOTATIONS if annotations.get(name) is not None}


def mark_summary(marks: dict[str, str]) -> dict | None:
    """``{"cordoned_by": ..., "reason": ...}`` (None for one absent) of MARKS; None when neither is there."""
    if not marks:
        return None
    return {key: marks.get(name) for name, key in MARK_KEYS.items()}


@dataclass(frozen=True)
class CordonChange:
    """What a cordon or uncordon finds on the Node, what it leaves there, and the patch between the two."""

    node: str
    was_unschedulable: bool
    unschedulable: bool  # after
    marks_before: dict = field(default_factory=dict)
    marks_after: dict = field(default_factory=dict)

    @property
    def flips(self) -> bool:
        """Whether ``spec.unschedulable`` changes (for a cordon: this task cordoned the node)."""
        return self.was_unschedulable != self.unschedulable

    @property
    def marks_changed(self) -> bool:
        return self.marks_before != self.marks_after

    @property
    def changed(self) -> bool:
        return self.flips or self.marks_changed

    @property
    def previous(self) -> dict | None:
        """The cordon annotations before the task, as ``{"cordoned_by", "reason"}``; None when neither was set."""
        return mark_summary(self.marks_before)

    @property
    def patch(self) -> dict | None:
        """The strategic merge patch: only what changes (null removes an annotation); None when nothing does."""
        out: dict = {}
        if self.flips:
            out["spec"] = {"unschedulable": self.unschedulable}
        changes = {name: self.marks_after.get(name) for name in MARK_ANNOTATIONS
                   if self.marks_before.get(name) != self.marks_after.get(name)}
        if changes:
            out["metadata"] = {"annotations": changes}
        return out or None

    def diff(self) -> dict:
        """Ansible's diff: ``spec.unschedulable`` before and after, and the cordon annotations when any is involved."""
        def side(unschedulable: bool, marks: dict) -> dict:
            out: dict = {"spec": {"unschedulable": unschedulable}}
            if self.marks_before or self.marks_after:
                out["metadata"] = {"annotations": dict(marks)}
            return out

        header = f"node/{self.node}"
        return {"before": side(self.was_unschedulable, self.marks_before),
                "after": side(self.unschedulable, self.marks_after),
                "before_header": header, "after_header": header}

    def describe(self) -> str:
        """One progress line: what the patch does."""
        if self.flips:
            what = "cordoned" if self.unschedulable else "uncordoned"
        else:
            what = "kept cordoned" if self.unschedulable else "kept schedulable"
        if not self.marks_changed:
            return f"node {self.node} {what}"
        if self.marks_after:
            who = self.marks_after.get(CORDONED_BY_ANNOTATION)
            why = self.marks_after.get(CORDON_REASON_ANNOTATION)
            mark = ", ".join(part for part in (f"by {who}" if who else "", f"reason: {why}" if why else "") if part)
            return f"node {self.node} {what} ({mark})"
        return f"node {self.node} {what}, cordon annotations removed"


def plan_cordon(node: dict, cordon: bool, cordoned_by: str | None = None, reason: str | None = None) -> CordonChange:
    """The change that cordons (CORDON true) or uncordons NODE, a Node as JSON, marked with CORDONED_BY and REASON.

    CORDONED_BY and REASON only apply to a cordon; see the module docstring for the rules.
    """
    name = (node.get("metadata") or {}).get("name") or "?"
    was = bool((node.get("spec") or {}).get("unschedulable"))
    before = node_marks(node)
    if not cordon:
        after: dict = {}
    elif cordoned_by is not None or reason is not None:
        after = {n: v for n, v in zip(MARK_ANNOTATIONS, (cordoned_by, reason), strict=True) if v is not None}
    else:
        after = before if was else {}
    return CordonChange(name, was, cordon, before, after)
