# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Waiting until evicted pods are gone from the node (bounded, as kubectl drain does)."""

from __future__ import annotations

from .k8s_drain_model import DrainContext, PodRecord, deadline_after
from .k8s_drain_pods import deletion_overdue

POLL_INTERVAL = 0.25  # seconds between two lists of the node's pods


class DeletionWaiter:
    """Polls the node's pods until every waited-for UID has disappeared."""

    def __init__(self, ctx: DrainContext):
        self.ctx = ctx

    def wait(self, recs: list[PodRecord]) -> list[PodRecord]:
        """Wait at most wait_timeout (0: no limit); returns the pods still there then.

        With skip_wait_for_delete_timeout, a pod whose deletionTimestamp is older than that many
        seconds is not waited for any more (kubectl's --skip-wait-for-delete-timeout): on a dead
        node nothing ever finishes deleting it.
        """
        ctx, opts = self.ctx, self.ctx.options
        waiting = {r.uid: r for r in recs if r.gone_after is None}
        deadline = deadline_after(ctx.clock.monotonic(), opts.wait_timeout)
        next_report = ctx.clock.monotonic() + opts.report_interval
        while waiting:
            present = {p["metadata"].get("uid"): p for p in ctx.api.list_pods(ctx.node, opts.pod_selector)}
            now = ctx.clock.monotonic()
            for uid, rec in list(waiting.items()):
                if uid not in present:
                    del waiting[uid]
                    rec.gone_after = ctx.since_start()
                    if rec.outcome == "terminating":
                        rec.outcome = "gone"
                elif deletion_overdue(present[uid], opts.skip_wait_for_delete_timeout, ctx.clock.wall()):
                    del waiting[uid]
                    rec.message = (f"still terminating more than {opts.skip_wait_for_delete_timeout}s after its "
                                   "deletionTimestamp: not waited for (skip_wait_for_delete_timeout)")
                    if rec.outcome == "terminating":
                        rec.outcome = "skipped"
                    ctx.log(f"{rec.key}: {rec.message}")
            if not waiting or now >= deadline:
                break
            if now >= next_report:
                next_report = now + opts.report_interval
                ctx.log(f"waiting for {len(waiting)} pods to terminate on {ctx.node}")
            ctx.clock.sleep(POLL_INTERVAL)
        return sorted(waiting.values(), key=lambda r: r.key)
