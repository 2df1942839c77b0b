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

For the drift report (issue 13): ``drift_fleet()`` is scale_fleet() whose workers declare a label and a taint,
``plant_drift()`` says which Nodes to create (pod /24 from the ledger, declared labels and taints) with a known
set of drift planted, and the report items that drift must give; ``create_nodes()`` creates them.
``drift_in_process()`` is cluster_drift's fleet-against-cluster comparison in this process, timed.
"""

from __future__ import annotations

import datetime
import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.baremetal.k8s.plugins.module_utils import drift
from ansible_collections.baremetal.k8s.plugins.module_utils.fleet import load_fleet
from ansible_collections.baremetal.k8s.plugins.module_utils.k8s_client import api_client
from ansible_collections.baremetal.k8s.plugins.module_utils.ledger_store import store_for_fleet
from ansible_collections.baremetal.k8s.plugins.module_utils.maintenance import fleet_members
from ansible_collections.baremetal.k8s.plugins.module_utils.node_health import read_cluster
from ansible_collections.baremetal.k8s.plugins.module_utils.node_metadata import CONTROL_PLANE_TAINT, fleet_wanted
from ansible_collections.baremetal.k8s.plugins.module_utils.vocabulary import (
    CORDON_REASON_ANNOTATION,
    CORDONED_BY_ANNOTATION,
    MAINTENANCE_CORDONER,
    MANAGED_LABELS_ANNOTATION,
)
from controlplane import KWOK_ANNOTATION
from fleet_samples import cluster, run_module, server, write_fleet

LEASE_NAMESPACE = "kube-node-lease"
SCALE_LABEL = "bmk8s-scale"  # on every Node populate() creates, value: the fleet's prefix
WORKERS = 8  # parallel API requests: enough to hide latency, few enough for a 2-core machine
# What drift_fleet()'s worker group declares (docs/fleet-format.md).
POOL_LABELS = {"baremetal.k8s/pool": "general"}
POOL_TAINT = {"key": "dedicated", "value": "general", "effect": "PreferNoSchedule"}


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


# --------------------------------------------------------------------------- the drift report at scale


def drift_fleet(prefix, **kwargs):
    """scale_fleet() whose worker node group declares POOL_LABELS and POOL_TAINT."""
    fleet = scale_fleet(prefix, **kwargs)
    for group in fleet["clusters"][0]["node_groups"]:
        if "worker" in group["roles"]:
            group["labels"] = dict(POOL_LABELS)
            group["taints"] = [dict(POOL_TAINT)]
    return fleet


def write_allocated(directory, fleet):
    """Write FLEET and allocate its pod prefixes with fleet_allocation (the file ledger beside the fleet file).

    Returns the fleet file, the allocations by server and fleet_allocation's wall time."""
    fleet_file = write_fleet(directory, fleet)
    start = time.perf_counter()
    result = run_module("baremetal.k8s.fleet_allocation", {"fleet_file": fleet_file})
    seconds = time.perf_counter() - start
    assert not result.get("failed"), result.get("msg")
    return fleet_file, result["allocations"][fleet["clusters"][0]["name"]], seconds


def _declared(fleet):
    """name -> (labels, taints, control plane) as the fleet declares them: server labels with the group's
    (a fresh dict and list per name, so planting may change them)."""
    servers = {s["name"]: s for s in fleet["servers"]}
    declared = {}
    for group in fleet["clusters"][0]["node_groups"]:
        for name in group["servers"]:
            labels = {**group.get("labels", {}), **servers[name].get("labels", {})}
            declared[name] = (labels, list(group.get("taints", [])), "control_plane" in group["roles"])
    return declared


def kwok_node_body(prefix, name, *, labels=None, annotations=None, taints=(), pod_cidr=None, unschedulable=False):
    """A kwok Node (what _kwok_node creates) with more labels, annotations, taints, spec.podCIDR, a cordon."""
    spec = {"taints": [dict(t) for t in taints]}
    if pod_cidr:
        spec["podCIDR"] = pod_cidr  # immutable once set: given at creation, as the kubelet registers it
    if unschedulable:
        spec["unschedulable"] = True
    return {"metadata": {"name": name, "labels": {**_labels(prefix, name), "type": "kwok", **(labels or {})},
                         "annotations": {KWOK_ANNOTATION: "fake", **(annotations or {})}},
            "spec": spec}


def plant_drift(fleet, prefix, allocations):
    """The Nodes to create for drift_fleet() FLEET (ALLOCATIONS: server -> {pod_cidr}) and the drift planted.

    Every member gets a Node as a converged cluster has it (pod /24 from the ledger, declared labels with
    the managed-labels annotation, declared taints, kubeadm's taint on control planes) except these, each
    with one difference: 5 members with no Node, 3 Nodes no member matches, 4 Nodes with another member's
    pod /24, 6 cordoned with no cordoned-by annotation, 7 missing the declared label, 2 with an undeclared
    taint, 2 missing the declared taint. Not drift, planted too: 2 cordoned for maintenance (cordoned-by
    recorded) and one with a taint of the collection's own (baremetal.k8s/maintenance).

    Returns ``(bodies, planted)``: name -> Node body, and (target, what) -> (desired, observed) of every
    item the report must hold besides kubelet_version (kwok reports its own version, see the test).
    """
    cluster_name = fleet["clusters"][0]["name"]
    declared = _declared(fleet)
    control_planes = [n for n, (_l, _t, cp) in declared.items() if cp]
    workers = [n for n, (_l, _t, cp) in declared.items() if not cp]
    picks = iter(workers[::13])  # the 28 workers planted, spread over the racks

    def take(count):
        return [next(picks) for _index in range(count)]

    missing = [control_planes[-1], *take(4)]
    wrong_cidr, cordoned, cordoned_for_maintenance = take(4), take(6), take(2)
    no_label, undeclared_taint, no_declared_taint, system_taint = take(7), take(2), take(2), take(1)
    extra = ["%s-%s-x001" % (prefix, rack) for rack in sorted({rack_of(n) for n in workers})]
    undeclared = {"key": "example.com/gpu", "value": "true", "effect": "NoSchedule"}

    bodies, planted = {}, {}
    for name, (labels, taints, control_plane) in declared.items():
        if name in missing:
            planted["node/" + name, "missing_node"] = ("a Node of cluster %s" % cluster_name, None)
            continue
        annotations = {MANAGED_LABELS_ANNOTATION: ",".join(sorted(labels))}
        pod_cidr = allocations[name]["pod_cidr"]
        unschedulable = name in cordoned or name in cordoned_for_maintenance
        if control_plane:
            taints.append({"key": CONTROL_PLANE_TAINT, "effect": "NoSchedule"})  # kubeadm's, not drift
        if name in wrong_cidr:  # each takes the next one's /24
            pod_cidr = allocations[wrong_cidr[(wrong_cidr.index(name) + 1) % len(wrong_cidr)]]["pod_cidr"]
            planted["node/" + name, "pod_cidr"] = (allocations[name]["pod_cidr"], pod_cidr)
        if name in cordoned:
            planted["node/" + name, "cordon_without_reason"] = (
                "schedulable, or cordoned with a recorded reason", "cordoned by an unknown party")
        if name in cordoned_for_maintenance:
            annotations.update({CORDONED_BY_ANNOTATION: MAINTENANCE_CORDONER, CORDON_REASON_ANNOTATION: "disk"})
        if name in no_label:  # still listed in managed-labels: someone removed it by hand
            for key, value in POOL_LABELS.items():
                del labels[key]
                planted["node/" + name, "label " + key] = (value, "(absent)")
        if name in undeclared_taint:
            taints.append(undeclared)
            planted["node/" + name, "taint example.com/gpu=true:NoSchedule"] = ("(absent)", "present")
        if name in no_declared_taint:
            taints.remove(POOL_TAINT)
            planted["node/" + name, "taint dedicated=general:PreferNoSchedule"] = ("present", "(absent)")
        if name in system_taint:
            taints.append({"key": "baremetal.k8s/maintenance", "effect": "NoSchedule"})
        bodies[name] = kwok_node_body(prefix, name, labels=labels, annotations=annotations, taints=taints,
                                      pod_cidr=pod_cidr, unschedulable=unschedulable)
    for name in extra:
        bodies[name] = kwok_node_body(prefix, name)
        planted["node/" + name, "node_not_in_fleet"] = (None, "a Node of cluster %s" % cluster_name)
    return bodies, planted


def create_nodes(api_client, bodies):
    """Create the Node BODIES (name -> body) from the thread pool."""
    from kubernetes import client

    core = client.CoreV1Api(api_client)
    _run_all([(core.create_node, body) for body in bodies.values()])


def drift_in_process(kubeconfig, fleet_file, cluster_name):
    """cluster_drift's fleet-against-cluster part in this process: ``(items, seconds)``, seconds of the read
    (every Node and Lease) and of the pure comparison, fleet_against_cluster and metadata_against_fleet.

    The module applies the recovery state's marks and the placement ledger first; there are none here."""
    fleet = load_fleet(fleet_file)
    cluster = fleet.clusters[cluster_name]
    members = {m: v for m, v in fleet_members(fleet, store_for_fleet(fleet).read(), cluster_name).items()
               if set(v["roles"]) & {"control_plane", "worker"}}
    wanted = {n: w for n, w in fleet_wanted(fleet, cluster).items() if n in members}
    api = api_client(kubeconfig)
    try:
        start = time.perf_counter()
        nodes, _leases = read_cluster(api, timeout=30)
        read = time.perf_counter() - start
    finally:
        api.close()
    start = time.perf_counter()
    items = drift.fleet_against_cluster(cluster_name, members, drift.node_records(nodes),
                                        kubernetes_version=cluster.kubernetes_version)
    against_cluster = time.perf_counter() - start
    items += drift.metadata_against_fleet(nodes, wanted)
    compare = time.perf_counter() - start
    return items, {"read": read, "fleet_against_cluster": against_cluster,
                   "metadata_against_fleet": compare - against_cluster, "compare": compare}
