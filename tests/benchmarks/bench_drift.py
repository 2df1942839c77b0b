#!/usr/bin/env python3
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The drift report's fleet-against-cluster part over 366 kwok nodes: cluster_drift's wall time and its comparison.

The setup of tests/integration/test_drift_scale.py on a control plane of its own
(tests/integration/controlplane.py): one cluster of 366 servers whose workers declare a label and a taint, pod
prefixes allocated by fleet_allocation, a kwok Node per member but five and the drift scale_fleet.plant_drift
plants (kwok's kubelet version is drift on every Node too). Prints the wall time of
``baremetal.k8s.cluster_drift`` through ``ansible localhost -m`` (target: under 10 s), ansible's start-up on the
same CLI, and in process the read of every Node and Lease and the pure comparison (drift.fleet_against_cluster
and metadata_against_fleet), with the load average around each measurement; asserts nothing about them.
``--rounds N`` runs the module N times.

    .venv/bin/python tests/benchmarks/bench_drift.py [--rounds N]   (or: make bench)
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import sys
import tempfile
import time
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
for path in (".collections", os.path.join("tests", "integration"), os.path.join("tests", "unit")):
    sys.path.insert(0, os.path.join(REPO, path))

from controlplane import ControlPlane, ensure_binaries  # noqa: E402
from fleet_samples import run_module  # noqa: E402
from scale_fleet import (  # noqa: E402
    create_nodes,
    drift_fleet,
    drift_in_process,
    plant_drift,
    wait_healthy,
    write_allocated,
)

CLUSTER = "scale"
TARGET_SECONDS = 10.0  # cluster_drift's wall time over 366 nodes


def load() -> str:
    return "%.1f" % os.getloadavg()[0]


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def main(argv: list[str]) -> int:
    from kubernetes import client, config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="run cluster_drift N times")
    rounds = parser.parse_args(argv).rounds
    cp = ControlPlane(ensure_binaries())
    cp.start()
    try:
        cfg = client.Configuration()
        config.load_kube_config(config_file=str(cp.kubeconfig), client_configuration=cfg)
        cfg.connection_pool_maxsize = 16
        api = client.ApiClient(cfg)
        kubeconfig = str(cp.kubeconfig)
        with tempfile.TemporaryDirectory(prefix="bench-drift-") as directory:
            prefix = "bd" + uuid.uuid4().hex[:4]
            fleet = drift_fleet(prefix, workers_per_rack=121, cluster_name=CLUSTER)
            fleet_file, allocations, allocate_seconds = write_allocated(directory, fleet)
            bodies, planted = plant_drift(fleet, prefix, allocations)
            _created, created = timed(create_nodes, api, bodies)
            _settled, settled = timed(wait_healthy, api, prefix, list(bodies))
            print("setup: %d servers in one cluster; fleet_allocation %.1f s; %d kwok Nodes created in %.1f s, Ready "
                  "%.1f s later; %d drift items planted besides kwok's kubelet version"
                  % (len(fleet["servers"]), allocate_seconds, len(bodies), created, settled, len(planted)), flush=True)

            before = load()
            _pinged, baseline = timed(run_module, "ansible.builtin.ping", {})
            print("ansible start-up baseline (ansible.builtin.ping, same CLI): %.2f s (load %s -> %s)"
                  % (baseline, before, load()), flush=True)
            walls = []
            for n in range(1, rounds + 1):
                before = load()
                result, wall = timed(run_module, "baremetal.k8s.cluster_drift",
                                     {"fleet": fleet_file, "cluster": CLUSTER, "kubeconfig": kubeconfig,
                                      "timeout": 30})
                if result.get("failed"):
                    raise RuntimeError("cluster_drift failed: %s" % result.get("msg"))
                report = result["report"]
                found = {(i["target"], i["what"]) for i in report["items"] if i["what"] != "kubelet_version"}
                kinds = collections.Counter(i["what"].split(" ")[0] for i in report["items"])
                print("[%d] cluster_drift (ansible localhost -m, wall): %.2f s (load %s -> %s); %d items (%s); the "
                      "planted drift exactly: %s" % (n, wall, before, load(), report["total"],
                                                    ", ".join("%d %s" % (c, w) for w, c in sorted(kinds.items())),
                                                    "yes" if found == set(planted) else "NO"), flush=True)
                walls.append(wall)

            before = load()
            _items, seconds = drift_in_process(kubeconfig, fleet_file, CLUSTER)
            print("in process: read %.2f s (every Node and Lease), fleet_against_cluster %.3f s, "
                  "metadata_against_fleet %.3f s: comparison %.3f s (load %s -> %s)"
                  % (seconds["read"], seconds["fleet_against_cluster"], seconds["metadata_against_fleet"],
                     seconds["compare"], before, load()))
            wall = statistics.median(walls)
            print("cluster_drift over %d Nodes: %.2f s wall (median of %d; target under %.0f s: %s), of which "
                  "ansible's start-up about %.2f s; the comparison alone %.3f s"
                  % (len(bodies), wall, rounds, TARGET_SECONDS, "met" if wall < TARGET_SECONDS else "NOT met",
                     baseline, seconds["compare"]))
        api.close()
    finally:
        cp.stop()
        cp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
