# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: the placement engine against a naive first-fit baseline, on the same generated fleets.

Standalone: ``python tests/benchmarks/bench_placement.py [--seed N] [--only small|large]``.

Fleets (generated, deterministic for a seed):
  small: 366 servers in 15 regions, 15 clusters, 5,000 tenant workloads (target: under 1 s)
  large: 10,000 servers in 15 regions, 60 clusters, 5,000 tenant workloads (target: under 5 s)

Level 1 (servers to node groups): the engine (``plan_placement``) against first-fit
(servers in name order, the first free ones that pass the same hard filters).
Level 2 (workloads to node groups): both place the same workloads on the node groups the
engine chose at level 1, so only the workload algorithm differs; first-fit takes clusters,
node groups and nodes in name order and the first nodes with room.

Printed per fleet and algorithm: wall time; failure-domain spread (largest share of a
node group, of a cluster's etcd members, of a workload's replicas in one rack); stranded
capacity; mean hop distance (fleet.hop_distance rule). No assertions: numbers for humans.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections import Counter

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, ".collections"))

from ansible_collections.baremetal.k8s.plugins.module_utils.fleet import Intent  # noqa: E402
from ansible_collections.baremetal.k8s.plugins.module_utils.placement import (  # noqa: E402
    Candidate,
    GroupRequest,
    Ledger,
    Location,
    PlacementOptions,
    WorkloadRequest,
    plan_placement,
)
from ansible_collections.baremetal.k8s.plugins.module_utils.placement.filters import hard_filters  # noqa: E402
from ansible_collections.baremetal.k8s.plugins.module_utils.placement.locality import (  # noqa: E402
    HOP_WEIGHTS,
    PeerCounter,
)
from ansible_collections.baremetal.k8s.plugins.module_utils.placement.workloads import (  # noqa: E402
    Node,
    node_eligible,
)
from ansible_collections.baremetal.k8s.plugins.module_utils.vocabulary import PLACEABLE_STATES  # noqa: E402

REGIONS = 15
# Hardware kinds and how many of every 24 servers of a region are of each kind (dealt in this cycle).
GENERAL = {"cores": 64, "memory_gb": 512, "disks": (("nvme", 3840),), "nic_gbps": 25}
SMALL = {"cores": 32, "memory_gb": 128, "disks": (("nvme", 960),), "nic_gbps": 25}
STORAGE = {"cores": 32, "memory_gb": 256, "disks": (("nvme", 960), ("hdd", 16000)), "nic_gbps": 25}
BIG = {"cores": 96, "memory_gb": 1024, "disks": (("nvme", 7680),), "nic_gbps": 100}
GPU = dict(BIG, gpus=4)
CYCLE = [(GENERAL, "")] * 15 + [(SMALL, "")] * 3 + [(STORAGE, "storage")] * 3 + [(BIG, "")] * 2 + [(GPU, "gpu")]
FLEETS = {
    # name: (servers, clusters per region, workers per cluster, workloads)
    "small": (366, 1, 13, 5000),
    "large": (10_000, 4, 90, 5000),
}


# --- generated fleets ---------------------------------------------------------------------


def generate(total: int, clusters_per_region: int, workers: int, workloads: int, seed: int):
    """Candidates, node groups and workloads. Servers are named <dc>-<rack>-sNN so that name order
    walks rack after rack (what a first-fit over a sorted inventory does)."""
    rng = random.Random(seed)
    candidates: dict[str, Candidate] = {}
    for r in range(REGIONS):
        count = total // REGIONS + (1 if r < total % REGIONS else 0)
        racks = max(6, round(count / 16))
        dcs = 2 if racks >= 20 else 1
        racks_per_row = 5 if racks >= 20 else 3
        for i in range(count):
            rack = i % racks  # servers are dealt over racks, so every rack gets a hardware mix
            dc = "r%02d-dc%d" % (r, rack % dcs)
            local = rack // dcs
            location = Location("region-%02d" % r, dc, "row%d" % (local // racks_per_row), "k%03d" % local)
            hardware, label = CYCLE[i % len(CYCLE)]
            name = "%s-k%03d-s%02d" % (dc, local, i // racks)
            state = "maintenance" if i % 40 == 39 else rng.choice(PLACEABLE_STATES)
            candidates[name] = Candidate(name=name, location=location, state=state, workload_label=label, **hardware)
    groups = []
    for r in range(REGIONS):
        for c in range(clusters_per_region):
            cluster, region = "region-%02d-c%d" % (r, c), "region-%02d" % r
            groups += [
                GroupRequest(cluster, "control-plane", region, ("control_plane", "etcd"),
                             intent=Intent(count=3, min_cores=32, min_memory_gb=128)),
                GroupRequest(cluster, "workers", region, ("worker",),
                             intent=Intent(count=workers, min_cores=32, min_memory_gb=256, disk_type="nvme")),
                GroupRequest(cluster, "storage", region, ("worker",),
                             intent=Intent(count=3 if workers < 30 else workers // 10, disk_type="hdd",
                                           dedicated="storage")),
            ]
            if c == 0:
                groups.append(GroupRequest(cluster, "gpu", region, ("worker",),
                                           intent=Intent(count=1, gpus=4, dedicated="gpu")))
    requests = []
    for i in range(workloads):
        storage = rng.random() < 0.05
        requests.append(WorkloadRequest(
            name="tenant-%05d" % i,
            region="region-%02d" % rng.randrange(REGIONS),
            replicas=rng.choice((1, 2, 3) if storage else (1, 2, 3, 3, 3, 5)),  # 3 storage nodes per cluster
            cpu=rng.choice((0.25, 0.5, 0.5, 0.5, 1.0, 1.0)),
            memory_gb=rng.choice((1.0, 2.0, 2.0, 4.0, 4.0, 8.0)),
            node_group="storage" if storage else "",
            dedicated="storage" if storage else "",
            disk_type="hdd" if storage else "",
        ))
    return candidates, groups, requests


# --- the naive baseline -------------------------------------------------------------------


def first_fit_servers(candidates, groups):
    """Each group in name order takes the first free servers (by name) of its region passing its filters."""
    by_region: dict[str, list[Candidate]] = {}
    for server in sorted(candidates.values(), key=lambda c: c.name):
        if server.state in PLACEABLE_STATES:
            by_region.setdefault(server.location.region, []).append(server)
    used: set[str] = set()
    members: dict[str, list[str]] = {}
    failed = 0
    for group in sorted(groups, key=lambda g: g.key):
        tests = [step[1] for step in hard_filters(group.intent)]  # (label, predicate)
        chosen = []
        for server in by_region.get(group.region, []):
            if len(chosen) == group.target:
                break
            if server.name not in used and all(test(server) for test in tests):
                chosen.append(server.name)
        used.update(chosen)
        members[group.key] = chosen
        failed += len(chosen) < group.target
    return members, failed


def first_fit_workloads(candidates, groups, members, workloads, options):
    """Each workload in name order: clusters, groups and nodes in name order, the first nodes with room."""
    nodes: dict[str, list[Node]] = {}
    region_groups: dict[str, list[GroupRequest]] = {}
    for group in sorted(groups, key=lambda g: g.key):
        nodes[group.key] = [Node(candidates[n], group.cluster, group.group, options) for n in members[group.key]]
        region_groups.setdefault(group.region, []).append(group)
    placed, failed = {}, 0
    for workload in sorted(workloads, key=lambda w: w.name):
        for group in region_groups.get(workload.region, []):
            if workload.node_group and group.group != workload.node_group:
                continue
            if not workload.node_group and "worker" not in group.roles:
                continue
            room = [n for n in nodes[group.key] if node_eligible(n, workload) and n.fits(workload)]
            if len(room) >= workload.replicas:
                for node in room[: workload.replicas]:
                    node.cpu_free -= workload.cpu
                    node.mem_free -= workload.memory_gb
                placed[workload.name] = (group.key, [n.name for n in room[: workload.replicas]])
                break
        else:
            failed += 1
    return placed, failed


# --- metrics ------------------------------------------------------------------------------


def rack(candidates, name):
    loc = candidates[name].location
    return (loc.datacenter, loc.rack)


def largest_rack_share(candidates, names):
    return max(Counter(rack(candidates, n) for n in names).values()) / len(names)


def mean_pair_hops(candidates, names):
    """Mean hop distance over all pairs of ``names`` (PeerCounter: the fleet.hop_distance rule, O(n))."""
    if len(names) < 2:
        return None
    peers = PeerCounter()
    for name in names:
        peers.add(candidates[name].location)
    # hop_sum(own location) counts the server itself as a peer in its own rack: remove it.
    own = HOP_WEIGHTS["same ToR and row"]
    total = sum(peers.hop_sum(candidates[n].location) - own for n in names)
    return total / (len(names) * (len(names) - 1))


def mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else float("nan")


def server_metrics(candidates, groups, members):
    by_key = {g.key: g for g in groups}
    spread = [largest_rack_share(candidates, m) for m in members.values() if len(m) >= 2]
    etcd_piled = 0
    stranded_cores = assigned_cores = stranded_gpus = 0
    clusters: dict[str, list[str]] = {}
    for key, names in members.items():
        group = by_key[key]
        clusters.setdefault(group.cluster, []).extend(names)
        if group.is_etcd and names and max(Counter(rack(candidates, n) for n in names).values()) > 1:
            etcd_piled += 1
        for name in names:
            server = candidates[name]
            assigned_cores += server.cores
            stranded_cores += server.cores - group.intent.min_cores  # held beyond what the intent asked for
            stranded_gpus += server.gpus - group.intent.gpus
    return {
        "spread_mean": mean(spread),
        "spread_worst": max(spread, default=0.0),
        "etcd_piled": etcd_piled,
        "stranded_cores": stranded_cores / assigned_cores if assigned_cores else 0.0,
        "stranded_gpus": stranded_gpus,
        "hops": mean(mean_pair_hops(candidates, names) for names in clusters.values()),
    }


def workload_metrics(candidates, groups, members, placements, workloads, options):
    """``placements``: name -> (group key, nodes). Stranded: free cores on nodes whose free memory cannot
    take the smallest request any more, plus the converse, as a share of all capacity."""
    by_name = {w.name: w for w in workloads}
    nodes = {}
    for group in groups:
        for name in members[group.key]:
            nodes[name] = Node(candidates[name], group.cluster, group.group, options)
    for name, (_group, names) in placements.items():
        for node_name in names:
            nodes[node_name].cpu_free -= by_name[name].cpu
            nodes[node_name].mem_free -= by_name[name].memory_gb
    min_cpu = min(w.cpu for w in workloads)
    min_mem = min(w.memory_gb for w in workloads)
    cpu_cap = sum(n.cpu_cap for n in nodes.values()) or 1.0
    mem_cap = sum(n.mem_cap for n in nodes.values()) or 1.0
    stranded_cpu = sum(n.cpu_free for n in nodes.values() if n.mem_free < min_mem and n.cpu_free >= min_cpu)
    stranded_mem = sum(n.mem_free for n in nodes.values() if n.cpu_free < min_cpu and n.mem_free >= min_mem)
    multi = [entry[1] for entry in placements.values() if len(entry[1]) >= 2]
    spread = [largest_rack_share(candidates, names) for names in multi]
    # Least-connection quality: the spread of cpu utilisation over the clusters of each region.
    cluster_used, cluster_cap = Counter(), Counter()
    for node in nodes.values():
        cluster_used[node.cluster] += node.cpu_cap - node.cpu_free
        cluster_cap[node.cluster] += node.cpu_cap
    region_of = {g.cluster: g.region for g in groups}
    by_region: dict[str, list[float]] = {}
    for cluster, capacity in cluster_cap.items():
        by_region.setdefault(region_of[cluster], []).append(cluster_used[cluster] / capacity if capacity else 0)
    imbalance = max((max(v) - min(v) for v in by_region.values()), default=0.0)
    return {
        "spread_mean": mean(spread),
        "spread_worst": max(spread, default=0.0),
        "rack_doubled": sum(1 for s in spread if s > 0.5),
        "stranded": (stranded_cpu / cpu_cap + stranded_mem / mem_cap) / 2,
        "cpu_used": sum(cluster_used.values()) / cpu_cap,
        "imbalance": imbalance,
        "hops": mean(mean_pair_hops(candidates, names) for names in multi),
    }


# --- the run ------------------------------------------------------------------------------


def timed(fn, *args, **kwargs):
    """Result, wall seconds and CPU seconds of this process (the machine is shared: CPU shows the work)."""
    started, cpu = time.perf_counter(), time.process_time()
    result = fn(*args, **kwargs)
    return result, (time.perf_counter() - started, time.process_time() - cpu)


def ms(seconds):
    return "%5.0f|%-5.0f" % (seconds[0] * 1000, seconds[1] * 1000)


def bench(label, servers_total, clusters_per_region, workers, workload_total, seed, target):
    candidates, groups, workloads = generate(servers_total, clusters_per_region, workers, workload_total, seed)
    options = PlacementOptions()
    racks = {(c.location.datacenter, c.location.rack) for c in candidates.values()}
    print("\n== %s fleet: %d servers, %d racks, %d regions, %d clusters, %d node groups (%d servers asked), "
          "%d workloads (%d replicas) ==" % (label, len(candidates), len(racks), REGIONS,
                                             len({g.cluster for g in groups}), len(groups),
                                             sum(g.target for g in groups), len(workloads),
                                             sum(w.replicas for w in workloads)))
    engine1, t_engine1 = timed(plan_placement, candidates, groups, Ledger(), options)
    if not engine1.ok:
        print("engine refused the server plan:\n  " + "\n  ".join(engine1.failures[:5]))
        return
    (ff_members, ff_failed), t_ff1 = timed(first_fit_servers, candidates, groups)
    engine2, t_engine2 = timed(plan_placement, candidates, groups, Ledger(), options, workloads)
    again, t_again = timed(plan_placement, candidates, groups, engine2.ledger, options, workloads)
    (ff_placed, ff_wl_failed), t_ff2 = timed(first_fit_workloads, candidates, groups, engine1.members, workloads,
                                             options)

    s_engine = server_metrics(candidates, groups, engine1.members)
    s_ff = server_metrics(candidates, groups, ff_members)
    print("level 1, servers -> node groups          %12s %12s" % ("engine", "first-fit"))
    print("  time, wall|cpu ms                        %12s %12s" % (ms(t_engine1), ms(t_ff1)))
    print("  node groups not filled                  %12d %12d" % (len(engine1.failures), ff_failed))
    print("  largest share of a group in one rack    %11.0f%% %11.0f%%   (mean over groups)"
          % (100 * s_engine["spread_mean"], 100 * s_ff["spread_mean"]))
    print("  ... worst group                         %11.0f%% %11.0f%%"
          % (100 * s_engine["spread_worst"], 100 * s_ff["spread_worst"]))
    print("  clusters with 2+ etcd members in a rack %12d %12d" % (s_engine["etcd_piled"], s_ff["etcd_piled"]))
    print("  stranded cores (above intent minimum)   %11.1f%% %11.1f%%"
          % (100 * s_engine["stranded_cores"], 100 * s_ff["stranded_cores"]))
    print("  stranded GPUs (in groups not asking)    %12d %12d" % (s_engine["stranded_gpus"], s_ff["stranded_gpus"]))
    print("  mean hop distance inside a cluster      %12.2f %12.2f" % (s_engine["hops"], s_ff["hops"]))

    if not engine2.ok:
        print("engine refused the workload plan:\n  " + "\n  ".join(engine2.failures[:5]))
        return
    placements = {name: ("%s/%s" % (w["cluster"], w["group"]), w["nodes"])
                  for name, w in engine2.ledger.workloads.items()}
    w_engine = workload_metrics(candidates, groups, engine1.members, placements, workloads, options)
    w_ff = workload_metrics(candidates, groups, engine1.members, ff_placed, workloads, options)
    print("level 2, workloads -> node groups (same node groups for both)")
    print("  time, wall|cpu ms (engine: both levels)  %12s %12s" % (ms(t_engine2), ms(t_ff2)))
    print("  workloads not placed                    %12d %12d" % (len(workloads) - len(placements), ff_wl_failed))
    print("  largest share of replicas in one rack   %11.0f%% %11.0f%%   (mean over multi-replica workloads)"
          % (100 * w_engine["spread_mean"], 100 * w_ff["spread_mean"]))
    print("  workloads with 2+ replicas in one rack  %12d %12d" % (w_engine["rack_doubled"], w_ff["rack_doubled"]))
    print("  stranded capacity (cpu|mem left unusable) %9.1f%% %11.1f%%"
          % (100 * w_engine["stranded"], 100 * w_ff["stranded"]))
    print("  cpu used / cluster imbalance in region  %5.0f%%/%4.0f%% %5.0f%%/%4.0f%%"
          % (100 * w_engine["cpu_used"], 100 * w_engine["imbalance"], 100 * w_ff["cpu_used"],
             100 * w_ff["imbalance"]))
    print("  mean hop distance between replicas      %12.2f %12.2f   (higher = more spread)"
          % (w_engine["hops"], w_ff["hops"]))
    print("engine, re-run with its own ledger: %s ms wall|cpu, %d change(s)" % (ms(t_again), len(again.changes)))
    # 5 workloads that fit nowhere (more cores per replica than any server has): partial_workloads places the rest.
    huge = [WorkloadRequest(name="zz-huge-%d" % i, region="region-%02d" % i, replicas=3, cpu=500.0)
            for i in range(5)]
    for partial in (True, False):
        mixed, t_mixed = timed(plan_placement, candidates, groups, Ledger(),
                               PlacementOptions(partial_workloads=partial), [*workloads, *huge])
        print("engine, %d workloads of which 5 fit nowhere, partial_workloads=%s: %s ms wall|cpu, ok=%s, "
              "%d placed, %d unplaced" % (len(workloads) + 5, str(partial).lower(), ms(t_mixed), mixed.ok,
                                          len(mixed.ledger.workloads), len(mixed.unplaced)))
    print("engine, both levels: %.2f s wall, %.2f s cpu; target < %.0f s (load average now %.1f on %d cores)"
          % (*t_engine2, target, os.getloadavg()[0], os.cpu_count()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", choices=sorted(FLEETS))
    args = parser.parse_args()
    targets = {"small": 1.0, "large": 5.0}
    for label, (servers, clusters, workers, workloads) in FLEETS.items():
        if args.only in (None, label):
            bench(label, servers, clusters, workers, workloads, args.seed, targets[label])


if __name__ == "__main__":
    main()
