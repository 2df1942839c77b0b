# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The drain loop (NodeDrainer.drain) against a simulated cluster, on a fake clock.

``SimCluster`` stands in for module_utils/k8s_drain_api.py: it answers
evictions as the API server does for a PodDisruptionBudget with
maxUnavailable (429 naming the PDB when it allows none, else it takes one
disruption), "controllers" make a replacement Ready ``ready_after`` seconds
after each eviction, and its channel delivers PDB status changes. Time only
moves when the drain waits, so timeouts of minutes run in milliseconds and
every number below is exact. The real thing is proven in
tests/integration/test_node_drain.py.
"""

from __future__ import annotations

import datetime
import heapq
import itertools
import json
import math

import pytest
from ansible_collections.baremetal.k8s.plugins.module_utils.k8s_drain import (
    Clock,
    DrainError,
    DrainOptions,
    NodeDrainer,
    selector_matches,
)
from ansible_collections.baremetal.k8s.plugins.module_utils.k8s_drain_api import Answer, Evicted, PdbChanged
from ansible_collections.baremetal.k8s.plugins.module_utils.vocabulary import (
    CORDON_REASON_ANNOTATION,
    CORDONED_BY_ANNOTATION,
)

EPOCH = 1_800_000_000.0  # wall clock at fake time 0
NODE = "worker-1"


class FakeClock:
    """Seconds that pass only when someone waits; timers fire as time reaches them."""

    def __init__(self):
        self.now = 0.0
        self._timers: list = []
        self._seq = itertools.count()

    def at(self, when: float, action) -> None:
        heapq.heappush(self._timers, (when, next(self._seq), action))

    def next_timer(self) -> float:
        return self._timers[0][0] if self._timers else math.inf

    def advance_to(self, when: float) -> None:
        while self._timers and self._timers[0][0] <= when:
            at, _seq, action = heapq.heappop(self._timers)
            self.now = max(self.now, at)
            action()
        self.now = max(self.now, when)

    def clock(self) -> Clock:
        return Clock(monotonic=lambda: self.now, sleep=lambda s: self.advance_to(self.now + s),
                     wall=lambda: EPOCH + self.now)


def stamp(wall: float) -> str:
    return datetime.datetime.fromtimestamp(wall, tz=datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class SimChannel:
    """The EventChannel of the simulation: answers at once, PDB news as the cluster changes."""

    def __init__(self, cluster: SimCluster):
        self.cluster = cluster
        self.queue: list = []
        self.watched: set[str] = set()
        cluster.channels.append(self)

    def evict(self, rec, grace_period, dry_run=False):
        self.queue.append(Evicted(rec, self.cluster.evict(rec, grace_period, dry_run), dry_run))

    def watch_pdbs(self, namespace):
        if namespace not in self.watched:
            self.watched.add(namespace)
            self.cluster.watches += 1
            self.queue += [self.cluster.news(key) for key in self.cluster.pdbs if key.startswith(namespace + "/")]

    def next_events(self, timeout):
        if not self.queue:
            clock = self.cluster.clock
            clock.advance_to(min(clock.now + max(timeout, 0.0), clock.next_timer()))
        events, self.queue = self.queue, []
        return events

    def close(self):
        self.cluster.channels.remove(self)


class SimCluster:
    """Pods, Deployments and maxUnavailable PDBs; the drain's API as module_utils/k8s_drain_api.py has it."""

    def __init__(self, ready_after: float = 1.0, gone_after: float = 0.5):
        self.clock = FakeClock()
        self.ready_after = ready_after  # eviction -> replacement Ready elsewhere (the PDB allows again)
        self.gone_after = gone_after  # eviction -> pod gone from the node (math.inf: the node is down)
        self.unschedulable = False
        self.annotations: dict[str, str] = {}
        self.patches: list[dict] = []  # every patch of the Node, as sent
        self.pods: dict[str, dict] = {}  # uid -> pod
        self.pdbs: dict[str, dict] = {}  # "ns/name" -> {"selector", "allowed", "expected"}
        self.channels: list[SimChannel] = []
        self.requests: list[tuple[float, str, int]] = []  # (time, pod, HTTP status) of every eviction
        self.watches = 0
        self._uids = itertools.count()

    # ---- building the scenario

    def add_pod(self, namespace: str, name: str, labels: dict | None = None, owner: str | None = "ReplicaSet",
                node: str = NODE, **meta) -> dict:
        uid = f"uid-{next(self._uids)}"
        metadata = {"namespace": namespace, "name": name, "uid": uid, "labels": labels or {}, **meta}
        if owner:
            metadata["ownerReferences"] = [{"kind": owner, "name": f"{name}-owner", "controller": True,
                                            "uid": f"owner-{(labels or {}).get('app', name)}"}]
        pod = {"metadata": metadata, "spec": {"nodeName": node, "volumes": []}, "status": {"phase": "Running"}}
        self.pods[uid] = pod
        return pod

    def add_app(self, namespace: str, app: str, replicas: int, max_unavailable: int | None = 1) -> None:
        for i in range(replicas):
            self.add_pod(namespace, f"{app}-{i}", {"app": app})
        if max_unavailable is not None:
            self.add_pdb(namespace, app, {"matchLabels": {"app": app}}, max_unavailable, replicas)

    def add_pdb(self, namespace: str, name: str, selector: dict, allowed: int, expected: int = 1) -> None:
        self.pdbs[f"{namespace}/{name}"] = {"selector": selector, "allowed": allowed, "expected": expected}

    # ---- what the drain sees

    def pdb_status(self, key: str) -> dict:
        pdb = self.pdbs[key]
        return {"disruptionsAllowed": pdb["allowed"], "expectedPods": pdb["expected"]}

    def news(self, key: str) -> PdbChanged:
        return PdbChanged(key, self.pdb_status(key), self.pdbs[key]["selector"])

    def _changed(self, key: str) -> None:
        for channel in self.channels:
            if key.split("/", 1)[0] in channel.watched:
                channel.queue.append(self.news(key))

    def read_node(self, node):
        return {"metadata": {"name": node, "annotations": dict(self.annotations)},
                "spec": {"unschedulable": self.unschedulable}}

    def patch_node(self, node, patch):
        """A strategic merge patch of spec.unschedulable and annotations (null removes one)."""
        self.patches.append(json.loads(json.dumps(patch)))
        if "unschedulable" in patch.get("spec", {}):
            self.unschedulable = patch["spec"]["unschedulable"]
        for key, value in patch.get("metadata", {}).get("annotations", {}).items():
            if value is None:
                self.annotations.pop(key, None)
            else:
                self.annotations[key] = value

    def list_pods(self, node, label_selector=None):
        wanted = dict(term.split("=", 1) for term in label_selector.split(",")) if label_selector else {}
        return [json.loads(json.dumps(p)) for p in self.pods.values()
                if p["spec"]["nodeName"] == node and selector_matches({"matchLabels": wanted}, p["metadata"]["labels"])]

    def _find(self, rec) -> dict | None:
        return next((p for p in self.pods.values()
                     if (p["metadata"]["namespace"], p["metadata"]["name"]) == (rec.namespace, rec.name)), None)

    def pdbs_of(self, pod: dict) -> list[str]:
        ns = pod["metadata"]["namespace"]
        return [key for key, pdb in self.pdbs.items()
                if key.startswith(ns + "/") and selector_matches(pdb["selector"], pod["metadata"]["labels"])]

    def evict(self, rec, grace_period, dry_run=False) -> Answer:
        answer = self._evict(rec, grace_period, dry_run)
        if not dry_run:
            self.requests.append((self.clock.now, rec.name, answer.code))
        return answer

    def _evict(self, rec, grace_period, dry_run) -> Answer:
        pod = self._find(rec)
        if pod is None:
            return Answer(404, "not found")
        if pod["metadata"]["uid"] != rec.uid:
            return Answer(409, "precondition failed")
        pdbs = self.pdbs_of(pod)
        if len(pdbs) > 1:
            return Answer(500, "This pod has more than one PodDisruptionBudget, which the eviction subresource "
                               "does not support.")
        if pdbs and self.pdbs[pdbs[0]]["allowed"] <= 0:
            name = pdbs[0].split("/", 1)[1]
            body = json.dumps({"message": "Cannot evict pod as it would violate the pod's disruption budget.",
                               "details": {"causes": [{"reason": "DisruptionBudget", "message":
                                           f"The disruption budget {name} needs 1 healthy pods"}]}})
            return Answer(429, "Cannot evict pod as it would violate the pod's disruption budget.", body)
        if dry_run:
            return Answer(201)
        grace = 1 if grace_period is None else grace_period
        pod["metadata"]["deletionTimestamp"] = stamp(EPOCH + self.clock.now + grace)
        uid = pod["metadata"]["uid"]
        if self.gone_after != math.inf:
            self.clock.at(self.clock.now + self.gone_after, lambda: self.pods.pop(uid, None))
        for key in pdbs:
            self.pdbs[key]["allowed"] -= 1  # the API server takes the disruption itself
            self._changed(key)
            self.clock.at(self.clock.now + self.ready_after, lambda key=key: self._replacement_ready(key))
        return Answer(201)

    def _replacement_ready(self, key: str) -> None:
        self.pdbs[key]["allowed"] += 1
        self._changed(key)

    def delete_pod(self, rec, grace_period) -> Answer:
        pod = self._find(rec)
        if pod is None:
            return Answer(404)
        del self.pods[pod["metadata"]["uid"]]
        return Answer(200)

    def pod_labels(self, namespace, name):
        pod = next((p for p in self.pods.values() if p["metadata"]["name"] == name), None)
        return None if pod is None else pod["metadata"]["labels"]

    def list_pdbs(self, namespace):
        return {"items": [{"metadata": {"name": key.split("/", 1)[1]}, "spec": {"selector": pdb["selector"]},
                           "status": self.pdb_status(key)}
                          for key, pdb in self.pdbs.items() if key.startswith(namespace + "/")]}

    def channel(self, parallel, retry_interval):
        return SimChannel(self)

    # ---- checks

    def on_node(self) -> list[str]:
        return sorted(p["metadata"]["name"] for p in self.pods.values() if p["spec"]["nodeName"] == NODE)

    def refusals(self) -> int:
        return sum(code == 429 for _at, _pod, code in self.requests)


def drainer(cluster: SimCluster, lines: list | None = None, **options) -> NodeDrainer:
    log = lines.append if lines is not None else None
    return NodeDrainer(None, NODE, DrainOptions(**options), log=log, api=cluster, clock=cluster.clock.clock())


def by_name(result: dict) -> dict[str, dict]:
    return {p["name"]: p for p in result["pods"]}


# --------------------------------------------------------------------------- tests


def test_retries_follow_the_pdbs_and_waste_no_request():
    """3 Deployments x 4 pods, maxUnavailable=1, a replacement Ready 1 s after each eviction.

    The PDBs allow 4 evictions in a row per Deployment, 1 s apart: the drain takes 3 s plus the last
    pod's deletion. First attempts go one per Deployment first; only the pods tried while their
    PDB had no room are refused (3 per Deployment), and no retry is refused.
    """
    cluster = SimCluster(ready_after=1.0, gone_after=0.5)
    for app in ("api", "db", "web"):
        cluster.add_app("shop", app, 4)
    lines: list[str] = []
    result = drainer(cluster, lines).drain()

    assert cluster.on_node() == [] and cluster.unschedulable
    assert result["changed"] and result["cordoned"] and len(result["evicted"]) == 12
    assert [name for _at, name, _code in cluster.requests[:3]] == ["api-0", "db-0", "web-0"]
    assert cluster.refusals() == 9
    assert cluster.watches == 1  # one watch for the namespace, from its first refusal
    pods = by_name(result)
    assert all(p["outcome"] == "evicted" and p["attempts"] <= 2 for p in pods.values())
    assert sorted(pods[f"api-{i}"]["evicted_after"] for i in range(4)) == [0.0, 1.0, 2.0, 3.0]
    assert pods["api-0"]["blocked_by"] == [] and all(pods[f"api-{i}"]["blocked_by"] == ["shop/api"]
                                                     for i in (1, 2, 3))
    assert result["timings"]["total"] == 3.5  # the last eviction at 3 s, gone 0.5 s later
    assert any("api-1: eviction refused (shop/api)" in line for line in lines)


def test_pods_not_tried_yet_wait_for_a_watched_pdb_instead_of_collecting_refusals():
    """With 2 requests in flight, answers come between sends: once the namespace's PDBs are watched
    (from the first refusal on), a pod whose PDB has no room is not sent until it has."""
    cluster = SimCluster(ready_after=1.0, gone_after=0.5)
    for app in ("api", "db", "web"):
        cluster.add_app("shop", app, 4)
    result = drainer(cluster, parallel=2).drain()
    assert cluster.on_node() == [] and len(result["evicted"]) == 12
    # The first pod of each Deployment goes; the second of each is sent before the watch's first list
    # arrives and is refused; after that no pod is sent while its PDB has no room (9 refusals when
    # everything goes at once, test_retries_follow_the_pdbs_and_waste_no_request).
    assert cluster.refusals() == 3
    assert [(name, code) for _at, name, code in cluster.requests[:6]] == [
        ("api-0", 201), ("db-0", 201), ("web-0", 201), ("api-1", 429), ("db-1", 429), ("web-1", 429)]
    assert all(code == 201 for _at, _pod, code in cluster.requests[6:])
    assert sorted(p["evicted_after"] for p in result["pods"] if p["name"].startswith("db-")) == [0.0, 1.0, 2.0, 3.0]
    assert result["timings"]["total"] == 3.5


def test_timeout_fails_with_the_blocking_pdb_and_node_left_cordoned():
    cluster = SimCluster()
    cluster.add_app("shop", "db", 2, max_unavailable=0)  # never allows
    lines: list[str] = []
    with pytest.raises(DrainError) as err:
        drainer(cluster, lines, timeout=30, backoff_max=10, report_interval=10).drain()
    assert str(err.value).startswith("timed out after 30s evicting pods from worker-1 (node left cordoned)")
    assert "PodDisruptionBudget shop/db (disruptions_allowed=0, expected_pods=2)" in str(err.value)
    (blocked,) = err.value.result["blocked"]
    assert blocked["pdb"] == "shop/db" and blocked["pods"] == ["shop/db-0", "shop/db-1"]
    # While the PDB is watched and allows none, a refused pod is retried every backoff_max seconds only.
    assert [p["attempts"] for p in err.value.result["pods"]] == [3, 3]  # at 0, 10 and 20 s; 30 s is the end
    assert sum(line.startswith("still waiting") for line in lines) == 2  # at 10 and 20 s
    assert cluster.unschedulable and cluster.on_node() == ["db-0", "db-1"]


def test_timeout_0_means_no_limit():
    """As kubectl drain --timeout=0: wait as long as the PDBs need (here, 1000 s for a replacement)."""
    cluster = SimCluster(ready_after=1000.0)
    cluster.add_app("shop", "web", 3)
    result = drainer(cluster, timeout=0).drain()
    assert cluster.on_node() == [] and len(result["evicted"]) == 3
    assert result["timings"]["evict"] == 2000.0  # one eviction per 1000 s, as the PDB allows
    assert all(p["outcome"] == "evicted" for p in result["pods"])

    # The same drain with the default timeout (300 s) stops there.
    cluster = SimCluster(ready_after=1000.0)
    cluster.add_app("shop", "web", 3)
    with pytest.raises(DrainError, match="timed out after 300s"):
        drainer(cluster).drain()
    assert len(cluster.on_node()) == 2  # the PDB allowed one eviction in 300 s


def test_wait_timeout_0_waits_as_long_as_deletion_takes():
    cluster = SimCluster(gone_after=500.0)
    cluster.add_app("shop", "web", 1, max_unavailable=None)
    result = drainer(cluster, wait_timeout=0).drain()
    assert by_name(result)["web-0"]["gone_after"] == 500.0


def test_on_timeout_force_delete():
    cluster = SimCluster()
    cluster.add_app("shop", "db", 2, max_unavailable=0)
    result = drainer(cluster, timeout=5, on_timeout="force_delete").drain()
    assert {p["outcome"] for p in result["pods"]} == {"force_deleted"}
    assert all(p["blocked_by"] == ["shop/db"] for p in result["pods"])
    assert cluster.on_node() == []


def test_check_mode_names_the_pdbs_that_refuse_now():
    cluster = SimCluster()
    cluster.add_app("shop", "db", 2, max_unavailable=0)  # refuses now
    cluster.add_app("shop", "web", 2)  # allows one: each dry run stands alone, both pass
    cluster.add_app("shop", "batch", 1, max_unavailable=None)  # no PDB
    cluster.add_pod("kube-system", "agent", owner="DaemonSet")
    lines: list[str] = []
    result = drainer(cluster, lines).drain(check_mode=True)

    assert result["changed"] and result["cordoned"]
    assert result["would_evict"] == ["shop/batch-0", "shop/web-0", "shop/web-1"]
    assert result["would_refuse"] == ["shop/db-0", "shop/db-1"]
    assert result["blocked"] == [{"pdb": "shop/db", "pods": ["shop/db-0", "shop/db-1"], "disruptions_allowed": 0,
                                  "expected_pods": 2}]
    pods = by_name(result)
    assert pods["db-0"]["outcome"] == "would_refuse" and pods["db-0"]["blocked_by"] == ["shop/db"]
    assert "disruption budget" in pods["db-0"]["message"]
    assert result["evicted"] == [] and result["left_alone"] == ["kube-system/agent"]
    assert any(line.startswith("now: PodDisruptionBudget shop/db") for line in lines)
    # Nothing changed: not cordoned, every pod still there, no real eviction sent.
    assert not cluster.unschedulable and len(cluster.on_node()) == 6 and cluster.requests == []


def test_check_mode_fails_when_the_real_drain_would():
    cluster = SimCluster()
    cluster.add_pod("shop", "both-0", {"app": "web", "tier": "front"})
    cluster.add_pdb("shop", "web", {"matchLabels": {"app": "web"}}, 1)
    cluster.add_pdb("shop", "front", {"matchLabels": {"tier": "front"}}, 1)
    with pytest.raises(DrainError) as err:
        drainer(cluster).drain(check_mode=True)
    assert "could not evict 1 pods from worker-1 (check mode, nothing changed)" in str(err.value)
    assert "more than one PodDisruptionBudget" in str(err.value)
    assert by_name(err.value.result)["both-0"]["outcome"] == "would_fail"
    assert not cluster.unschedulable


def test_a_refusal_blocks_the_drain_before_the_cordon():
    cluster = SimCluster()
    cluster.add_pod("shop", "lonely", owner=None)
    with pytest.raises(DrainError, match=r"shop/lonely: not managed by a controller .*\(nothing changed\)"):
        drainer(cluster).drain()
    assert not cluster.unschedulable and cluster.requests == []


def test_skip_wait_for_delete_timeout_on_a_node_that_is_down():
    """Nothing finishes a deletion on a dead node: wait_timeout fails, the option lets the drain finish."""
    def down_node() -> SimCluster:
        cluster = SimCluster(gone_after=math.inf)
        cluster.add_app("shop", "web", 1, max_unavailable=None)
        # Already terminating for an hour: only waited for, or with the option left alone.
        cluster.add_pod("shop", "stuck", {"app": "stuck"}, deletionTimestamp=stamp(EPOCH - 3600))
        return cluster

    cluster = down_node()
    with pytest.raises(DrainError, match=r"pods still present on worker-1 120s after eviction: shop/stuck, shop/web-0"):
        drainer(cluster).drain()

    cluster = down_node()
    lines: list[str] = []
    result = drainer(cluster, lines, skip_wait_for_delete_timeout=30).drain()
    pods = by_name(result)
    assert pods["stuck"]["action"] == "skip" and "skip_wait_for_delete_timeout" in pods["stuck"]["reason"]
    assert "shop/stuck" in result["left_alone"]
    # web-0 was evicted with its 1 s grace period: deletionTimestamp = 1 s, so not waited for after 31 s.
    web = pods["web-0"]
    assert web["outcome"] == "evicted" and web["gone_after"] is None and "not waited for" in web["message"]
    assert 31.0 < result["timings"]["wait"] <= 31.5
    assert any("shop/web-0: still terminating more than 30s" in line for line in lines)


def test_pod_selector_limits_the_drain():
    cluster = SimCluster()
    cluster.add_app("shop", "web", 2, max_unavailable=None)
    cluster.add_app("shop", "db", 1, max_unavailable=None)
    result = drainer(cluster, pod_selector="app=web").drain()
    assert sorted(by_name(result)) == ["web-0", "web-1"]  # db-0 is not looked at
    assert cluster.on_node() == ["db-0"] and cluster.unschedulable


def test_failed_eviction_is_not_retried_and_names_the_pod():
    cluster = SimCluster()
    cluster.add_pod("shop", "both-0", {"app": "web", "tier": "front"})
    cluster.add_pdb("shop", "web", {"matchLabels": {"app": "web"}}, 1)
    cluster.add_pdb("shop", "front", {"matchLabels": {"tier": "front"}}, 1)
    with pytest.raises(DrainError, match="could not evict 1 pods from worker-1: shop/both-0: HTTP 500"):
        drainer(cluster).drain()
    assert len(cluster.requests) == 1


def test_a_refused_pod_goes_when_its_pdb_allows_not_after_a_backoff():
    cluster = SimCluster(ready_after=2.0)
    cluster.add_app("shop", "web", 3)
    result = drainer(cluster, backoff_initial=50, backoff_max=100).drain()
    # Backoff alone would retry after 50 s at the earliest; the PDB's news retries when it allows.
    assert sorted(p["evicted_after"] for p in result["pods"]) == [0.0, 2.0, 4.0]
    assert cluster.refusals() == 2


# --------------------------------------------------------------------------- who cordoned it, and why

BY, REASON = CORDONED_BY_ANNOTATION, CORDON_REASON_ANNOTATION
JOB, WHY = "recover.yml awx-job-4711", "kubelet down, drain and redeploy"


def test_drain_records_who_and_why_in_the_cordon_patch():
    cluster = SimCluster()
    cluster.add_app("shop", "web", 2)
    result = drainer(cluster, cordoned_by=JOB, cordon_reason=WHY).drain()
    assert result["changed"] and result["cordoned"] and result["previous_cordon"] is None
    # One patch: the flag and the annotations together, before any eviction.
    assert cluster.patches == [{"spec": {"unschedulable": True}, "metadata": {"annotations": {BY: JOB, REASON: WHY}}}]
    assert cluster.annotations == {BY: JOB, REASON: WHY} and cluster.on_node() == []
    again = drainer(cluster, cordoned_by=JOB, cordon_reason=WHY).drain()
    assert not again["changed"] and again["previous_cordon"] == {"cordoned_by": JOB, "reason": WHY}
    assert len(cluster.patches) == 1


def test_drain_of_a_node_someone_else_cordoned_takes_over_the_annotations():
    cluster = SimCluster()
    cluster.unschedulable, cluster.annotations = True, {BY: "alice", REASON: "disk swap"}
    result = drainer(cluster, cordoned_by=JOB).drain()
    # Nothing to evict and the cordon was there: the annotations alone make it a change.
    assert result["changed"] and not result["cordoned"] and result["was_unschedulable"]
    assert result["previous_cordon"] == {"cordoned_by": "alice", "reason": "disk swap"}
    assert cluster.patches == [{"metadata": {"annotations": {BY: JOB, REASON: None}}}]
    assert cluster.annotations == {BY: JOB}


def test_drain_check_mode_reports_the_annotations_and_writes_nothing():
    cluster = SimCluster()
    cluster.unschedulable, cluster.annotations = True, {BY: JOB}
    result = drainer(cluster, cordoned_by=JOB, cordon_reason=WHY).drain(check_mode=True)
    assert result["changed"] and not result["cordoned"]
    assert result["previous_cordon"] == {"cordoned_by": JOB, "reason": None}
    assert cluster.patches == [] and cluster.annotations == {BY: JOB}


def test_a_refused_drain_writes_no_annotation():
    cluster = SimCluster()
    cluster.annotations = {BY: "alice"}
    cluster.add_pod("shop", "lonely", owner=None)
    with pytest.raises(DrainError) as err:
        drainer(cluster, cordoned_by=JOB, cordon_reason=WHY).drain()
    assert not err.value.result["changed"]
    assert err.value.result["previous_cordon"] == {"cordoned_by": "alice", "reason": None}
    assert cluster.patches == [] and not cluster.unschedulable
