# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every Kubernetes API request of the drain, over a ``kubernetes.client.ApiClient``.

The rest of the drain only sees plain dicts and ``Answer``s, so unit tests
replace this file's two classes with a simulated cluster (tests/unit).
``KubeDrainApi`` makes the calls; ``EventChannel`` runs eviction requests on
a thread pool and watches PodDisruptionBudgets, and hands both kinds of news
to the drain loop through one queue.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple

from .k8s_drain_model import DrainError, NodeNotFound, PodRecord
from .k8s_drain_pdb import status_message

WATCH_SECONDS = 30  # server-side bound of one PDB watch request; the watch is then resumed


class Answer(NamedTuple):
    """An API answer to a write: HTTP status (201/200 on success), message, raw Status body."""

    code: int
    message: str = ""
    body: str | bytes | None = None


@dataclass
class Evicted:
    """Event: the API answered an eviction request for REC (or the request raised ERROR)."""

    rec: PodRecord
    answer: Answer | None
    dry_run: bool = False
    error: Exception | None = None


@dataclass
class PdbChanged:
    """Event: PodDisruptionBudget KEY ("ns/name") has this STATUS (None: deleted) and SELECTOR."""

    key: str
    status: dict | None
    selector: dict | None = None


def _json(resp) -> dict:
    return json.loads(resp.data)


class KubeDrainApi:
    """The drain's requests. Reads return JSON dicts; writes that may be refused return an Answer."""

    def __init__(self, api_client):
        from kubernetes import client

        self.core = client.CoreV1Api(api_client)
        self.policy = client.PolicyV1Api(api_client)

    def read_node(self, node: str) -> dict:
        from kubernetes.client.exceptions import ApiException

        try:
            return _json(self.core.read_node(node, _preload_content=False))
        except ApiException as exc:
            if exc.status == 404:
                raise NodeNotFound(f"node {node} not found") from exc
            raise

    def patch_node(self, node: str, patch: dict) -> None:
        """One strategic merge patch of the Node (``spec.unschedulable`` and annotations; null removes one)."""
        self.core.patch_node(node, patch, _content_type="application/strategic-merge-patch+json",
                             _preload_content=False)

    def list_pods(self, node: str, label_selector: str | None = None) -> list[dict]:
        from kubernetes.client.exceptions import ApiException

        kwargs = {"label_selector": label_selector} if label_selector else {}
        try:
            resp = self.core.list_pod_for_all_namespaces(
                field_selector=f"spec.nodeName={node}", _preload_content=False, **kwargs
            )
        except ApiException as exc:
            if exc.status == 400 and label_selector:
                raise DrainError(
                    f"pod_selector: {label_selector!r} is not a label selector the API accepts "
                    f"({status_message(exc.body, str(exc.reason))})",
                    fix="write it as kubectl's --selector, for example app=web,tier!=cache or 'env in (a,b)'",
                ) from exc
            raise
        return _json(resp).get("items", [])

    def evict(self, rec: PodRecord, grace_period: int | None, dry_run: bool = False) -> Answer:
        """One eviction request, with a UID precondition so a new pod that took the name is never evicted."""
        from kubernetes.client.exceptions import ApiException

        delete_options: dict = {"preconditions": {"uid": rec.uid}}
        if grace_period is not None:
            delete_options["gracePeriodSeconds"] = grace_period
        body = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": rec.name, "namespace": rec.namespace},
            "deleteOptions": delete_options,
        }
        kwargs = {"dry_run": "All"} if dry_run else {}
        try:
            self.core.create_namespaced_pod_eviction(rec.name, rec.namespace, body, _preload_content=False, **kwargs)
            return Answer(201)
        except ApiException as exc:
            return Answer(exc.status, status_message(exc.body, str(exc.reason)), exc.body)

    def delete_pod(self, rec: PodRecord, grace_period: int | None) -> Answer:
        from kubernetes.client.exceptions import ApiException

        body: dict = {"preconditions": {"uid": rec.uid}}
        if grace_period is not None:
            body["gracePeriodSeconds"] = grace_period
        try:
            self.core.delete_namespaced_pod(rec.name, rec.namespace, body=body, _preload_content=False)
            return Answer(200)
        except ApiException as exc:
            return Answer(exc.status, status_message(exc.body, str(exc.reason)), exc.body)

    def pod_labels(self, namespace: str, name: str) -> dict | None:
        """The pod's labels, or None when it cannot be read (it may be gone by now)."""
        try:
            pod = _json(self.core.read_namespaced_pod(name, namespace, _preload_content=False))
        except Exception:
            return None
        return pod.get("metadata", {}).get("labels") or {}

    def list_pdbs(self, namespace: str) -> dict:
        """The namespace's PDB list as JSON (items and metadata.resourceVersion)."""
        return _json(self.policy.list_namespaced_pod_disruption_budget(namespace, _preload_content=False))

    def pdb_updates(self, namespace: str, stop: threading.Event, retry_interval: float) -> Iterator[PdbChanged]:
        """Every PDB of NAMESPACE now, then each change, until STOP is set (list, then watch from there).

        When the watch cannot be used (an error, RBAC without "watch"), it lists again every
        RETRY_INTERVAL seconds instead: slower news, same answers.
        """
        from kubernetes.watch.watch import iter_resp_lines

        version = None
        while not stop.is_set():
            try:
                if version is None:
                    listing = self.list_pdbs(namespace)
                    version = listing.get("metadata", {}).get("resourceVersion")
                    for pdb in listing.get("items", []):
                        yield PdbChanged(f"{namespace}/{pdb['metadata']['name']}", pdb.get("status") or {},
                                         (pdb.get("spec") or {}).get("selector"))
                resp = self.policy.list_namespaced_pod_disruption_budget(
                    namespace, watch=True, resource_version=version, timeout_seconds=WATCH_SECONDS,
                    allow_watch_bookmarks=True, _preload_content=False,
                )
                for line in iter_resp_lines(resp):
                    event = json.loads(line)
                    obj = event.get("object") or {}
                    if event.get("type") == "ERROR":  # typically 410 Gone: the version is too old, list again
                        version = None
                        break
                    version = obj.get("metadata", {}).get("resourceVersion", version)
                    if event.get("type") == "BOOKMARK":
                        continue
                    key = f"{namespace}/{obj['metadata']['name']}"
                    status = None if event["type"] == "DELETED" else obj.get("status") or {}
                    yield PdbChanged(key, status, (obj.get("spec") or {}).get("selector"))
                    if stop.is_set():
                        return
            except Exception:  # best effort: the drain still retries on backoff without news
                version = None
                stop.wait(retry_interval)

    def channel(self, parallel: int, retry_interval: float) -> EventChannel:
        return EventChannel(self, parallel, retry_interval)


class EventChannel:
    """Eviction requests on PARALLEL threads and PDB watches, all reporting to one queue.

    The drain loop sends requests, asks for PDB news of a namespace, and waits for
    ``next_events`` - a single place to wait, so it wakes for whichever comes first.
    """

    def __init__(self, api: KubeDrainApi, parallel: int, retry_interval: float):
        self._api = api
        self._retry_interval = retry_interval
        self._pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="evict")
        self._events: queue.Queue = queue.Queue()
        self._watched: set[str] = set()
        self._stop = threading.Event()

    def evict(self, rec: PodRecord, grace_period: int | None, dry_run: bool = False) -> None:
        self._pool.submit(self._evict, rec, grace_period, dry_run)

    def _evict(self, rec: PodRecord, grace_period: int | None, dry_run: bool) -> None:
        try:
            self._events.put(Evicted(rec, self._api.evict(rec, grace_period, dry_run), dry_run))
        except Exception as exc:  # handed to the drain loop, which raises it
            self._events.put(Evicted(rec, None, dry_run, error=exc))

    def watch_pdbs(self, namespace: str) -> None:
        """Start reporting NAMESPACE's PDBs (once per namespace)."""
        if namespace in self._watched:
            return
        self._watched.add(namespace)
        # A daemon thread: a watch blocked on the socket must not keep the process alive after the drain.
        threading.Thread(target=self._watch, args=(namespace,), name=f"pdb-watch-{namespace}", daemon=True).start()

    def _watch(self, namespace: str) -> None:
        for change in self._api.pdb_updates(namespace, self._stop, self._retry_interval):
            if self._stop.is_set():
                return
            self._events.put(change)

    def next_events(self, timeout: float) -> list:
        """The events that arrived, waiting at most TIMEOUT seconds for the first one."""
        try:
            events = [self._events.get(timeout=max(0.0, timeout))]
        except queue.Empty:
            return []
        while True:
            try:
                events.append(self._events.get_nowait())
            except queue.Empty:
                return events

    def close(self) -> None:
        """Stop the watches; requests already sent finish, queued ones are dropped (the loop is over)."""
        self._stop.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
