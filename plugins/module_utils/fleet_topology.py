# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet file ``regions`` (regions, datacenters, rows, racks, ToR switches) and ``networks`` (host networks)."""

from __future__ import annotations

import bisect

from .fleet_checks import Checker
from .fleet_model import NAME_RE, Datacenter, Network, Rack, Region, Row
from .vocabulary import NETWORK_KINDS, group_name


class Topology(Checker):
    """Parses the topology and host networks; the servers and clusters parts look names up here."""

    def __init__(self, source, errors):
        super().__init__(source, errors, {})
        self.regions, self.datacenters, self.racks = {}, {}, {}
        self.tors = {}  # ToR switch -> datacenter
        self.networks = {}
        self.network_paths = {}  # network name -> path of its cidr, for overlap messages
        self._private_index = []

    def parse(self, regions, networks):
        self.each(self.listof(regions, "regions"), "regions", self.region)
        self.each(self.listof(networks, "networks"), "networks", self.network)
        self.report_overlaps(self.network_spans(), "give every host network its own range")
        self._private_index = sorted((n.first, n.last, n.name) for n in self.networks.values() if n.kind == "private")
        return self

    # -- regions

    def region(self, raw, path, _i):
        raw = self.mapping(raw, path, {"name", "datacenters"}, ("name",))
        name = self.string(raw["name"], path + ".name", NAME_RE)
        if name in self.regions:
            self.fail(path + ".name", f"duplicate region {name!r}", "give every region a unique name")
        self.claim_group(group_name("region", name), path + ".name", f"region {name}")
        region = self.regions[name] = Region(name, [])
        dcs = self.listof(raw.get("datacenters"), path + ".datacenters")
        region.datacenters = self.each(dcs, path + ".datacenters", lambda r, p, i: self.datacenter(r, p, name))
        return region

    def datacenter(self, raw, path, region):
        raw = self.mapping(raw, path, {"name", "rows"}, ("name",))
        name = self.string(raw["name"], path + ".name", NAME_RE)
        if name in self.datacenters:
            self.fail(path + ".name", f"duplicate datacenter {name!r}", "datacenter names are unique in the fleet")
        self.claim_group(group_name("datacenter", name), path + ".name", f"datacenter {name}")
        dc = self.datacenters[name] = Datacenter(name, region, {})
        rows = self.listof(raw.get("rows"), path + ".rows")
        self.each(rows, path + ".rows", lambda r, p, i: self.row(r, p, dc))
        return name

    def row(self, raw, path, dc):
        raw = self.mapping(raw, path, {"name", "racks"}, ("name",))
        name = self.string(raw["name"], path + ".name", NAME_RE)
        if name in dc.rows:
            self.fail(path + ".name", f"duplicate row {name!r} in datacenter {dc.name}", "rename the row")
        self.claim_group(group_name("row", dc.name, name), path + ".name", f"row {dc.name}/{name}")
        row = dc.rows[name] = Row(name, [])
        racks = self.listof(raw.get("racks"), path + ".racks")
        row.racks = self.each(racks, path + ".racks", lambda r, p, i: self.rack(r, p, dc, name))
        return row

    def rack(self, raw, path, dc, row):
        raw = self.mapping(raw, path, {"name", "tor"}, ("name",))
        name = self.string(raw["name"], path + ".name", NAME_RE)
        if (dc.name, name) in self.racks:
            self.fail(path + ".name", f"duplicate rack {name!r} in datacenter {dc.name}", "rename the rack")
        self.claim_group(group_name("rack", dc.name, name), path + ".name", f"rack {dc.name}/{name}")
        tor = raw.get("tor")
        tor = f"{dc.name}-{name}-tor" if tor is None else self.string(tor, path + ".tor", NAME_RE)
        other = self.tors.setdefault(tor, dc.name)
        if other != dc.name:
            self.fail(path + ".tor", f"ToR {tor!r} is already used in datacenter {other}", "rename the switch")
        self.racks[(dc.name, name)] = Rack(name, dc.region, dc.name, row, tor)
        return name

    # -- host networks

    def network(self, raw, path, _i):
        raw = self.mapping(raw, path, {"name", "cidr", "kind"}, ("name", "cidr"))
        name = self.string(raw["name"], path + ".name", NAME_RE)
        if name in self.networks:
            self.fail(path + ".name", f"duplicate network {name!r}", "give every network a unique name")
        net = self.cidr(raw["cidr"], path + ".cidr")
        kind = self.choice(raw.get("kind", "private"), path + ".kind", NETWORK_KINDS)
        self.networks[name] = Network(name, str(net), kind, net.first, net.last, net.version)
        self.network_paths[name] = path + ".cidr"
        return name

    def network_spans(self):
        """(version, first, last, path, cidr) of every host network, for the overlap checks."""
        return [(n.version, n.first, n.last, self.network_paths[n.name], n.cidr) for n in self.networks.values()]

    def private_network_of(self, ip):
        """The private network containing ``ip`` (host networks never overlap)."""
        pos = bisect.bisect_right(self._private_index, (ip.value, float("inf"), "")) - 1
        if pos >= 0:
            first, last, name = self._private_index[pos]
            if first <= ip.value <= last and self.networks[name].version == ip.version:
                return name
        return None
