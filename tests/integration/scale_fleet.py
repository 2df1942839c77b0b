# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A fleet of hundreds of servers and its Nodes on the integration control plane, built fast.

``scale_fleet()`` is a valid fleet dict (docs/fleet-format.md) with one cluster spread over racks: a control
plane per rack and workers, servers named ``<prefix>-<rack>-c1`` and ``<prefix>-<rack>-wNNN``.
``populate()`` creates the matching Node objects through the API from a thread pool: healthy ones are kwok
nodes (kwok keeps them Ready and renews their Leases in kube-node-lease), dead ones are Nodes nobody manages
whose Ready condition is False since a given time and whose Lease was last renewed before that (what a
kubelet that stopped long ago leaves behind). ``wait_healthy()`` waits until kwok has them all Ready with a
fresh heartbeat; ``depopulate()`` deletes everything again.
"""

from __future__ import annotations

import datetime
import time
from concurrent.futures import ThreadPoolExecutor

from controlplane import KWOK_ANNOTATION
from fleet_samples import cluster, server

LEASE_NAMESPACE = "kube-node-lease"
SCALE_LABEL = "bmk8s-scale"  # on every Node populate() creates, value: the fleet's prefix
WORKERS = 8  # parallel API requests: enough to hide latency, few enough for a 2-core machine


def scale_fleet(prefix, *, racks=("a01", "a02", "a03"), workers_per_rack=121, cluster_name="scale"):
    """A fleet dict: one cluster CLUSTER_NAME with one control plane (etcd) per rack and WORKERS_PER_RACK
    workers in each rack, in region eu, datacenter dc1, row r1; pools sized for the node count."""
    control_planes = ["%s-%s-c1" % (prefix, rack) for rack in racks]
    workers = ["%s-%s-w%03d" % (prefix, rack, k) for rack in racks for k in range(1, workers_per_rack + 1)]
    servers = []
    for index, name in enumerate(control_planes + workers):
        rack = name.split("-")[-2]
        location = {"region": "eu", "datacenter": "dc1", "row": "r1", "rack": rack}
        servers.append(server(index, name=name, location=location,
                              addresses={"private": "10.10.%d.%d" % (1 + index // 250, 1 + index % 250)}))
    members = control_planes + workers
    # 366 nodes: a /24 per node needs more than a /16 of pod space and the WireGuard /24 holds 254 addresses.
    group = cluster(cluster_name, members, pod_cidr="10.128.0.0/14", wireguard="10.201.0.0/22",
                    control_planes=len(control_planes))
    return {
        "version": 1,
        "regions": [{"name": "eu", "datacenters": [{"name": "dc1", "rows": [
            {"name": "r1", "racks": [{"name": r} for r in racks]}]}]}],
        "networks": [{"name": "dc1-private", "cidr": "10.10.0.0/16", "kind": "private"}],
        "servers": servers,
        "clusters": [group],
    }  # fmt: skip


def rack_of(name):
    """The rack a scale_fleet() server is in (from its name)."""
    return name.split("-")[-2]


def micro(moment):
    """A MicroTime as the API writes it (Lease renewTime)."""
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def seconds(moment):
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _labels(prefix, name):
    return {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", SCALE_LABEL: prefix}


def _kwok_node(core, prefix, name):
    core.create_node({"metadata": {"name": name, "labels": dict(_labels(prefix, name), type="kwok"),
                                   "annotations": {KWOK_ANNOTATION: "fake"}}})


def _dead_node(core, coord, prefix, name, since, heartbeat_timeout):
    """A Node without kwok: Ready False since SINCE, its Lease renewed last HEARTBEAT_TIMEOUT + 0.5 s before
    SINCE (the heartbeat went stale half a second before Ready flipped, so that is when it became unhealthy).

    The half second also keeps the renewTime's microseconds non-zero: the kubernetes client re-serialises a
    MicroTime without them as ``...+00:00``, which the API server refuses (400).
    """
    core.create_node({"metadata": {"name": name, "labels": _labels(prefix, name)}})
    condition = {"type": "Ready", "status": "False", "reason": "KubeletNotReady",
                 "message": "container runtime network not ready", "lastHeartbeatTime": seconds(since),
                 "lastTransitionTime": seconds(since)}
    core.patch_node_status(name, {"status": {"conditions": [condition], "nodeInfo": {
        "kubeletVersion": "v1.36.3", "machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": "",
        "osImage": "", "containerRuntimeVersion": "", "kubeProxyVersion": "", "operatingSystem": "linux",
        "architecture": "amd64"}}})
    renew = since - datetime.timedelta(seconds=heartbeat_timeout + 0.5)
    coord.create_namespaced_lease(LEASE_NAMESPACE, {"metadata": {"name": name}, "spec": {
        "holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": micro(renew)}})


def _run_all(calls):
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        for future in [pool.submit(fn, *args) for fn, *args in calls]:
            future.result()  # the first error is raised here


def populate(api_client, prefix, healthy, dead, *, heartbeat_timeout=40):
    """Create kwok Nodes for HEALTHY (names) and dead Nodes for DEAD ({name: datetime since NotReady})."""
    from kubernetes import client

    core, coord = client.CoreV1Api(api_client), client.CoordinationV1Api(api_client)
    _run_all([(_kwok_node, core, prefix, name) for name in healthy]
             + [(_dead_node, core, coord, prefix, name, since, heartbeat_timeout) for name, since in dead.items()])


def wait_healthy(api_client, prefix, names, *, fresh=30.0, timeout=240.0):
    """Wait until every Node in NAMES is Ready and its Lease was renewed within FRESH seconds."""
    from kubernetes import client

    core, coord = client.CoreV1Api(api_client), client.CoordinationV1Api(api_client)
    wanted = set(names)
    deadline = time.monotonic() + timeout
    while True:
        ready = {n.metadata.name for n in core.list_node(label_selector="%s=%s" % (SCALE_LABEL, prefix)).items
                 if any(c.type == "Ready" and c.status == "True" for c in (n.status.conditions or []))}
        now = datetime.datetime.now(datetime.timezone.utc)
        renewed = {lease.metadata.name for lease in coord.list_namespaced_lease(LEASE_NAMESPACE).items
                   if lease.spec and lease.spec.renew_time
                   and (now - lease.spec.renew_time).total_seconds() < fresh}
        missing = wanted - (ready & renewed)
        if not missing:
            return
        if time.monotonic() > deadline:
            raise TimeoutError("%d of %d kwok nodes not Ready with a fresh Lease after %.0f s (e.g. %s)"
                               % (len(missing), len(wanted), timeout, ", ".join(sorted(missing)[:5])))
        time.sleep(1.0)


def depopulate(api_client, names):
    """Delete the Nodes and Leases NAMES (missing ones are fine)."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    core, coord = client.CoreV1Api(api_client), client.CoordinationV1Api(api_client)

    def delete(name):
        for call in (core.delete_node, lambda n: coord.delete_namespaced_lease(n, LEASE_NAMESPACE)):
            try:
                call(name)
            except ApiException as exc:
                if exc.status != 404:
                    raise

    _run_all([(delete, name) for name in names])
