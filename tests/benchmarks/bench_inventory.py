#!/usr/bin/env python3
"""Benchmark: the fleet inventory on 10,000 servers, 50 clusters, 15 regions.

Standalone: ``python tests/benchmarks/bench_inventory.py [--servers N]``.
Prints wall time and peak memory of ``ansible-inventory --list`` (cold: no
ledger; warm: ledger present; cached: inventory cache hit) and the time of the
model and allocation steps alone. No assertions: the numbers are for humans.
Targets: the whole cold process under 2 s, allocation under 200 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, ".collections"))

import yaml  # noqa: E402
from ansible_collections.baremetal.k8s.plugins.module_utils import ipam  # noqa: E402
from ansible_collections.baremetal.k8s.plugins.module_utils.fleet import load_fleet  # noqa: E402

REGIONS, DCS_PER_REGION, ROWS, RACKS_PER_ROW = 15, 2, 4, 10


def generate(servers_total, clusters_total):
    """A fleet dict: every region has 2 datacenters (one private /16 each)."""
    regions, networks, servers, clusters = [], [], [], []
    racks = []  # (region, dc, row, rack)
    for r in range(REGIONS):
        dcs = []
        for d in range(DCS_PER_REGION):
            dc = f"r{r:02d}-dc{d}"
            dc_index = r * DCS_PER_REGION + d
            networks.append({"name": f"{dc}-private", "cidr": f"10.{dc_index}.0.0/16", "kind": "private"})
            rows = []
            for w in range(ROWS):
                names = [f"k{w}{k:02d}" for k in range(RACKS_PER_ROW)]
                rows.append({"name": f"row{w}", "racks": [{"name": n} for n in names]})
                racks += [(f"region-{r:02d}", dc, dc_index, f"row{w}", n) for n in names]
            dcs.append({"name": dc, "rows": rows})
        regions.append({"name": f"region-{r:02d}", "datacenters": dcs})
    per_cluster = servers_total // clusters_total
    racks_per_region = len(racks) // REGIONS
    for c in range(clusters_total):
        region = c % REGIONS
        slot = c // REGIONS  # clusters of one region take different racks
        members = []
        for i in range(per_cluster):
            region_name, dc, dc_index, row, rack = racks[region * racks_per_region + (i + slot * 7) % racks_per_region]
            n = len(servers)
            name = f"{dc}-{rack}-s{n:05d}"
            members.append(name)
            servers.append(
                {
                    "name": name,
                    "state": "active" if i % 50 else "maintenance",
                    "hardware": {
                        "cores": 64,
                        "memory_gb": 512,
                        "disks": [{"type": "nvme", "size_gb": 3840}],
                        "nics": [{"name": "eno1", "speed_gbps": 25}],
                    },
                    "location": {"region": region_name, "datacenter": dc, "row": row, "rack": rack},
                    "addresses": {
                        "private": f"10.{dc_index}.{n // 250}.{n % 250 + 1}",
                        "public": f"100.{64 + n // 65536}.{n // 256 % 256}.{n % 256}",
                    },
                    "labels": {"workload": "general"},
                }
            )
        clusters.append(
            {
                "name": f"cluster-{c:02d}",
                "region": f"region-{region:02d}",
                "kubernetes_version": "1.36.3",
                "api": {"vip": f"10.{region * DCS_PER_REGION}.255.{c + 1}"},
                "pod_cidr": f"10.{64 + c}.0.0/16",
                "service_cidr": f"10.{120 + c}.0.0/16",
                "wireguard": {"cidr": f"10.250.{c}.0/24"},
                "node_groups": [
                    {"name": "control-plane", "roles": ["control_plane", "etcd"], "servers": members[:3]},
                    {"name": "lb", "roles": ["load_balancer"], "servers": members[3:5]},
                    {"name": "workers", "roles": ["worker"], "servers": members[5:]},
                ],
            }
        )
    return {"version": 1, "regions": regions, "networks": networks, "servers": servers, "clusters": clusters}


def measure(cmd, env):
    """Wall time and peak RSS of one fresh process (rusage of a dedicated parent)."""
    probe = (
        "import resource, subprocess, sys, time; t = time.perf_counter();"
        "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE);"
        "w = time.perf_counter() - t;"
        "print(w, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode);"
        "sys.stderr.write(r.stderr.decode()[-2000:] if r.returncode else '')"
    )
    out = subprocess.run([sys.executable, "-c", probe, *cmd], env=env, capture_output=True, text=True, check=False)
    wall, rss, rc = out.stdout.split()
    if rc != "0":
        print("   command failed:", out.stderr)
    return float(wall), int(rss) / 1024.0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=10_000)
    parser.add_argument("--clusters", type=int, default=50)
    parser.add_argument("--merged-list", action="store_true", help="also time a plain --list (slow, big output)")
    args = parser.parse_args()
    bindir = os.path.dirname(sys.executable)
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, ".collections"),
        ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
    )
    with tempfile.TemporaryDirectory(prefix="bench-inventory-") as tmp:
        inv = os.path.join(tmp, "inventory")
        os.makedirs(inv)
        fleet_path = os.path.join(inv, "fleet.yml")
        data = generate(args.servers, args.clusters)
        with open(fleet_path, "w", encoding="utf-8") as handle:
            yaml.dump(data, handle, Dumper=yaml.CSafeDumper, sort_keys=False)
        print(
            f"fleet: {len(data['servers'])} servers, {len(data['clusters'])} clusters, {REGIONS} regions, "
            f"{os.path.getsize(fleet_path) / 1e6:.1f} MB YAML"
        )

        t = time.perf_counter()
        fleet = load_fleet(fleet_path)
        t_load = time.perf_counter() - t
        ledger = ipam.empty_ledger()
        t = time.perf_counter()
        ipam.allocate(fleet, ledger)
        t_alloc = time.perf_counter() - t
        t = time.perf_counter()
        ipam.allocate(fleet, ledger)
        t_again = time.perf_counter() - t
        print(f"load_fleet (YAML parse + validate): {t_load * 1000:7.0f} ms")
        print(f"allocate, empty ledger:             {t_alloc * 1000:7.0f} ms   (target < 200 ms)")
        print(f"allocate, full ledger (no change):  {t_again * 1000:7.0f} ms")

        config = os.path.join(inv, "fleet.baremetal.yml")
        cache_dir = os.path.join(tmp, "cache")
        with open(config, "w", encoding="utf-8") as handle:
            json.dump({"plugin": "baremetal.k8s.fleet", "fleet_file": "fleet.yml"}, handle)
        cached_config = os.path.join(inv, "cached.baremetal.yml")
        base = [os.path.join(bindir, "ansible-inventory"), "-i"]
        # --export keeps group vars on their groups (what AWX runs). A plain --list copies every
        # group var into every host, including its cluster's WireGuard peer table: output grows with
        # hosts x cluster size, so it is only measured with --merged-list.
        runs = [
            ("--list --export, cold (no ledger: allocates + writes)", [*base, config, "--list", "--export"]),
            ("--list --export, warm (ledger present)", [*base, config, "--list", "--export"]),
        ]
        if args.merged_list:
            runs.append(("--list, warm (group vars merged into hostvars)", [*base, config, "--list"]))
        for label, cmd in runs:
            wall, rss = measure(cmd, env)
            print(f"ansible-inventory {label:48s} {wall:6.2f} s  peak RSS {rss:6.0f} MB")
        os.unlink(config)  # the cached runs use their own config (one source in the inventory)
        with open(cached_config, "w", encoding="utf-8") as handle:
            json.dump(
                {
                    "plugin": "baremetal.k8s.fleet",
                    "fleet_file": "fleet.yml",
                    "cache": True,
                    "cache_plugin": "ansible.builtin.jsonfile",
                    "cache_connection": cache_dir,
                    "cache_timeout": 3600,
                },
                handle,
            )
        for label in ("--list --export, cache empty (fills it)", "--list --export, cache hit"):
            cmd = [*base, cached_config, "--list", "--export"]
            wall, rss = measure(cmd, env)
            print(f"ansible-inventory {label:48s} {wall:6.2f} s  peak RSS {rss:6.0f} MB")
        wall, rss = measure([os.path.join(bindir, "ansible-inventory"), "--version"], env)
        print(f"ansible-inventory --version (interpreter + ansible start) {wall:13.2f} s  peak RSS {rss:6.0f} MB")


if __name__ == "__main__":
    main()
