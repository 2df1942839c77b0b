# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Small placement inputs built in code, shared by the placement engine tests."""

from __future__ import annotations

from ansible_collections.baremetal.k8s.plugins.module_utils.fleet import Intent
from ansible_collections.baremetal.k8s.plugins.module_utils.placement import (
    Candidate,
    GroupRequest,
    Ledger,
    Location,
    PlacementOptions,
    WorkloadRequest,
    plan_placement,
)


def make_servers(racks=("a01", "a02", "a03", "a04"), per_rack=4, rows=2, region="eu", dc="dc1", **hardware):
    """Servers named <rack>-sNN; racks are dealt round-robin over rows r1..rN."""
    servers = {}
    for i, rack in enumerate(racks):
        location = Location(region, dc, "r%d" % (i % rows + 1), rack)
        for n in range(1, per_rack + 1):
            name = "%s-s%02d" % (rack, n)
            servers[name] = Candidate(
                name=name,
                location=location,
                cores=hardware.get("cores", 64),
                memory_gb=hardware.get("memory_gb", 256),
                disks=hardware.get("disks", (("nvme", 2000),)),
                nic_gbps=hardware.get("nic_gbps", 25),
            )
    return servers


def group(name="workers", cluster="c1", count=3, roles=("worker",), region="eu", **intent):
    return GroupRequest(cluster=cluster, group=name, region=region, roles=roles, intent=Intent(count=count, **intent))


def etcd_group(count=3, cluster="c1", **intent):
    return group("control-plane", cluster=cluster, count=count, roles=("control_plane", "etcd"), **intent)


def plan(servers, groups, ledger=None, workloads=None, **options):
    return plan_placement(servers, groups, ledger or Ledger(), PlacementOptions(**options), workloads)


def racks_of(servers, names):
    return [servers[n].location.rack for n in names]


def two_clusters():
    """Two clusters of 3 workers on 6 racks of 2 servers with 18 cores and 72 GB (16 and 64 usable)."""
    servers = make_servers(racks=("a01", "a02", "a03", "a04", "a05", "a06"), per_rack=2, cores=18, memory_gb=72)
    groups = [group(cluster="c1", count=3), group(cluster="c2", count=3)]
    return servers, groups


def wl(name, **kw):
    kw.setdefault("region", "eu")
    return WorkloadRequest(name=name, **kw)
