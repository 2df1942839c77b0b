# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet file ``servers``: hardware, location (checked against the topology), addresses, labels, connection."""

from __future__ import annotations

from .fleet_checks import LABEL_KEY_FIX, Checker, Skip, label_key_ok, shown, suggest
from .fleet_model import (
    NAME_RE,
    STATES,
    Addresses,
    Disk,
    Gpu,
    Hardware,
    Location,
    Nic,
    Protection,
    Server,
)
from .vocabulary import DISK_TYPES


class Servers(Checker):
    """Parses ``servers``; ``addresses`` (ip key -> (server, path)) lets the clusters part check API VIPs."""

    SERVER_FIELDS = frozenset(("name", "state", "hardware", "location", "addresses", "labels", "connection",
                               "protection"))
    PROTECTION_FIELDS = frozenset(("deletion", "reason"))
    HARDWARE_FIELDS = frozenset(("cores", "memory_gb", "disks", "nics", "gpus"))
    LOCATION_FIELDS = frozenset(("region", "datacenter", "row", "rack"))
    ADDRESS_FIELDS = frozenset(("private", "private_network", "public"))

    def __init__(self, source, errors, topology):
        super().__init__(source, errors)
        self.topology = topology
        self.servers = {}  # fleet-file order
        self.addresses = {}  # (version, int) -> (server, path)
        self.broken = set()  # names of servers whose entry has an error
        self.good_labels = set()  # (key, value) pairs already checked: most servers share their labels

    def parse(self, servers):
        self.each(self.listof(servers, "servers"), "servers", self.server)
        return self

    def server(self, raw, path, index):
        raw = self.mapping(raw, path, self.SERVER_FIELDS, ("name", "hardware", "location", "addresses"))
        name = self.string(raw["name"], path + ".name", NAME_RE)
        if name in self.servers:
            first = self.servers[name].index
            self.fail(path + ".name", f"duplicate server {name!r} (also servers[{first}])", "rename one of them")
        try:
            server = self._server_body(raw, path, name, index)
        except Skip:
            self.broken.add(name)  # clusters naming it get no second "unknown server" error
            raise
        self.servers[name] = server
        return server

    def _server_body(self, raw, path, name, index):
        state = self.choice(raw.get("state", "active"), path + ".state", STATES)
        hardware = self.hardware(raw["hardware"], path + ".hardware")
        location = self.location(raw["location"], path + ".location")
        addresses = self.server_addresses(raw["addresses"], path + ".addresses", name)
        labels = self.labels(raw.get("labels"), path + ".labels")
        connection = raw.get("connection") or {}
        if not isinstance(connection, dict) or not all(isinstance(k, str) for k in connection):
            self.fail(path + ".connection", "connection must be a mapping", "write e.g. ansible_user: root")
        for key in connection:
            if not key.startswith("ansible_"):
                self.fail(f"{path}.connection.{key[:80]}", "not an Ansible connection variable",
                          "use ansible_* names")
        protection = self.protection(raw.get("protection"), path + ".protection")
        return Server(name, state, hardware, location, addresses, labels, connection, index, protection)

    def labels(self, raw, path):
        """Labels become Kubernetes node labels: keys and values follow Kubernetes' rules, values are strings."""
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            self.fail(path, "labels must be a mapping of names to values", "write labels as key: value")
        good = self.good_labels
        for key, value in raw.items():
            if isinstance(value, str) and (key, value) in good:  # (a list value is not hashable)
                continue
            if not isinstance(key, str) or not label_key_ok(key):
                self.fail(f"{path}.{str(key)[:80]}", f"invalid label key {shown(key)}", LABEL_KEY_FIX)
            self.label_value(value, f"{path}.{key}")
            good.add((key, value))
        return raw

    def protection(self, raw, path):
        if raw is None:
            return Protection()
        raw = self.mapping(raw, path, self.PROTECTION_FIELDS, ("deletion",))
        if not isinstance(raw["deletion"], bool):
            self.fail(path + ".deletion", "deletion must be true or false", "write deletion: true (or false)")
        reason = raw.get("reason", "")
        if not isinstance(reason, str):
            self.fail(path + ".reason", "reason must be a sentence", "quote the reason")
        return Protection(raw["deletion"], reason)

    def hardware(self, raw, path):
        raw = self.mapping(raw, path, self.HARDWARE_FIELDS, ("cores", "memory_gb"))
        cores = self.integer(raw["cores"], path + ".cores", 1)
        memory = self.integer(raw["memory_gb"], path + ".memory_gb", 1)
        disks, nics, gpus = [], [], []
        for i, item in enumerate(self.listof(raw.get("disks"), path + ".disks")):
            p = f"{path}.disks[{i}]"
            d = self.mapping(item, p, {"type", "size_gb"}, ("type", "size_gb"))
            disks.append(
                Disk(self.choice(d["type"], p + ".type", DISK_TYPES), self.integer(d["size_gb"], p + ".size_gb", 1))
            )
        for i, item in enumerate(self.listof(raw.get("nics"), path + ".nics")):
            p = f"{path}.nics[{i}]"
            n = self.mapping(item, p, {"name", "speed_gbps"}, ("name", "speed_gbps"))
            nics.append(
                Nic(self.string(n["name"], p + ".name", NAME_RE), self.integer(n["speed_gbps"], p + ".speed_gbps", 1))
            )
        for i, item in enumerate(self.listof(raw.get("gpus"), path + ".gpus")):
            p = f"{path}.gpus[{i}]"
            g = self.mapping(item, p, {"model", "count"}, ("model", "count"))
            gpus.append(Gpu(self.string(g["model"], p + ".model", NAME_RE), self.integer(g["count"], p + ".count", 1)))
        return Hardware(cores, memory, disks, nics, gpus)

    def location(self, raw, path):
        top = self.topology
        raw = self.mapping(raw, path, self.LOCATION_FIELDS, tuple(sorted(self.LOCATION_FIELDS)))
        region = self.string(raw["region"], path + ".region")
        if region not in top.regions:
            self.fail(path + ".region", f"unknown region {shown(region)}", f"use {suggest(top.regions)}")
        dc_name = self.string(raw["datacenter"], path + ".datacenter")
        dc = top.datacenters.get(dc_name)
        if dc is None or dc.region != region:
            known = [d.name for d in top.datacenters.values() if d.region == region]
            self.fail(path + ".datacenter", f"no datacenter {shown(dc_name)} in region {region}",
                      f"use {suggest(known)}")
        row = self.string(raw["row"], path + ".row")
        if row not in dc.rows:
            self.fail(path + ".row", f"no row {shown(row)} in datacenter {dc_name}", f"use {suggest(dc.rows)}")
        rack_name = self.string(raw["rack"], path + ".rack")
        rack = top.racks.get((dc_name, rack_name))
        if rack is None or rack.row != row:
            self.fail(
                path + ".rack",
                f"no rack {shown(rack_name)} in row {row} of datacenter {dc_name}",
                f"use {suggest(dc.rows[row].racks)}, or add the rack under regions",
            )
        return Location(region, dc_name, row, rack_name, rack.tor)

    def server_addresses(self, raw, path, server):
        raw = self.mapping(raw, path, self.ADDRESS_FIELDS, ("private",))
        private = self.address(raw["private"], path + ".private")
        self._unique_address(private, path + ".private", server)
        network = raw.get("private_network")
        if network is not None:
            self.string(network, path + ".private_network")
            net = self.topology.networks.get(network)
            if net is None or net.kind != "private":
                known = [n.name for n in self.topology.networks.values() if n.kind == "private"]
                self.fail(path + ".private_network", f"unknown private network {shown(network)}",
                          f"use {suggest(known)}")
            if not net.first <= private.value <= net.last or net.version != private.version:
                self.fail(
                    path + ".private",
                    f"{private} is not in {network} ({net.cidr})",
                    "fix the address or the network",
                )
        else:
            network = self.topology.private_network_of(private)
        public = raw.get("public")
        if public is not None:
            public = self.address(public, path + ".public")
            self._unique_address(public, path + ".public", server)
            public = str(public)
        return Addresses(str(private), network, public)

    def _unique_address(self, ip, path, server):
        key = (ip.version, ip.value)
        other = self.addresses.setdefault(key, (server, path))
        if other != (server, path):
            self.fail(
                path,
                f"address {ip} is already used by {other[0]} ({other[1]})",
                "give every server its own address",
            )
