# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet file ``servers``: hardware, location (checked against the topology), addresses, labels, connection,
protection and BMC."""

from __future__ import annotations

import contextlib
import re
from urllib.parse import urlsplit

from .fleet_checks import Checker, Skip, shown, suggest, type_name
from .fleet_model import (
    BMC_TYPES,
    NAME_RE,
    STATES,
    Addresses,
    Bmc,
    Disk,
    Gpu,
    Hardware,
    Location,
    Nic,
    Protection,
    Server,
)
from .vocabulary import DISK_TYPES

BMC_FIELDS = frozenset(("type", "address", "system_id", "credentials", "validate_certs"))
BMC_REQUIRED = {"type": "add type: redfish", "address": "add the address of the server's BMC",
                "credentials": None}
# Keys that would put a secret into the fleet file (which is committed and shown in the inventory).
BMC_SECRET_FIELDS = frozenset(("password", "passwd", "pass", "pswd", "username", "user", "token", "auth_token",
                               "secret"))
BMC_CREDENTIALS_FIX = ("write credentials: NAME and keep the username and password in bmc_credentials[NAME] in "
                       "Ansible Vault (or an AWX credential), never in the fleet file")
BMC_ADDRESS_FIX = "write the BMC's host name or address, e.g. bmc-s01.example.com, 10.0.9.11:443 or https://10.0.9.11"
_HOST_JUNK = re.compile(r"[\s\\]")
# A Redfish Id: no '/', no spaces (it becomes part of a URI).
_SYSTEM_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:~-]{0,254}\Z")


def _empty_or(value):
    return "an empty string" if isinstance(value, str) else type_name(value)


class Servers(Checker):
    """Parses ``servers``; ``addresses`` (ip key -> (server, path)) lets the clusters part check API VIPs."""

    SERVER_FIELDS = frozenset(("name", "state", "hardware", "location", "addresses", "labels", "connection",
                               "protection", "bmc", "state_reason"))
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
        self.bmcs = {}  # BMC baseuri (lower case) -> {system_id or None: (server, path)}

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
        labels = self.labels(raw.get("labels"), path + ".labels", self.good_labels)
        connection = raw.get("connection") or {}
        if not isinstance(connection, dict) or not all(isinstance(k, str) for k in connection):
            self.fail(path + ".connection", "connection must be a mapping", "write e.g. ansible_user: root")
        for key in connection:
            if not key.startswith("ansible_"):
                self.fail(f"{path}.connection.{key[:80]}", "not an Ansible connection variable",
                          "use ansible_* names")
        protection = self.protection(raw.get("protection"), path + ".protection")
        bmc = self.bmc(raw.get("bmc"), path + ".bmc", name)
        state_reason = raw.get("state_reason", "")
        if not isinstance(state_reason, str) or len(state_reason) > 256:
            self.fail(path + ".state_reason", "state_reason must be a sentence of at most 256 characters",
                      "quote it, e.g. state_reason: \"replace DIMM B2, ticket OPS-123\"")
        return Server(name, state, hardware, location, addresses, labels, connection, index, protection, bmc,
                      state_reason)

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

    def bmc(self, raw, path, server):
        """``bmc``: how recovery fences the server. Every problem of the block is reported at once."""
        if raw is None:
            return None
        if not isinstance(raw, dict):
            self.fail(path, f"expected a mapping, got {type_name(raw)}",
                      "write e.g. bmc: {type: redfish, address: bmc-s01.example.com, credentials: NAME}")
        before = len(self.errors)
        for key in raw:
            if str(key).lower() in BMC_SECRET_FIELDS:
                self.error(f"{path}.{str(key)[:80]}", f"a BMC {str(key).lower()} does not belong in the fleet file",
                           BMC_CREDENTIALS_FIX)
            elif key not in BMC_FIELDS:
                self.error(f"{path}.{str(key)[:80]}", f"unknown field {shown(key)}",
                           f"remove it or use {suggest(BMC_FIELDS)}")
        values = {}
        for key, check in (("type", self._bmc_type), ("address", self._bmc_address),
                           ("credentials", self._bmc_credentials), ("system_id", self._bmc_system_id),
                           ("validate_certs", self._bmc_validate_certs)):
            if key not in raw:
                if key in BMC_REQUIRED:
                    self.error(f"{path}.{key}", "required field is missing",
                               BMC_CREDENTIALS_FIX if key == "credentials" else BMC_REQUIRED[key])
            elif not (key == "system_id" and raw[key] is None):  # an empty system_id: none
                with contextlib.suppress(Skip):
                    values[key] = check(raw[key], f"{path}.{key}")
        if len(self.errors) > before:
            raise Skip()
        bmc = Bmc(**values)
        self._unique_bmc(bmc, path, server)
        return bmc

    def _bmc_type(self, value, path):
        return self.choice(value, path, BMC_TYPES)

    def _bmc_address(self, value, path):
        if not isinstance(value, str) or not value.strip():
            self.fail(path, f"expected a host name, host:port or https:// URL, got {_empty_or(value)}",
                      BMC_ADDRESS_FIX)
        scheme, has_scheme, rest = value.partition("://")
        if not has_scheme:
            rest = value
        elif scheme.lower() != "https":
            self.fail(path, f"{shown(scheme)} is not a BMC scheme: Redfish is spoken over HTTPS only",
                      "write https://HOST[:PORT] or HOST[:PORT]")
        if "@" in rest.partition("/")[0]:  # user:password@host: the secret itself is not repeated in the message
            self.fail(path, "the address carries credentials (user@ or user:password@)", BMC_CREDENTIALS_FIX)
        try:
            parts = urlsplit("https://" + rest)
            port = parts.port
        except ValueError as exc:
            if "out of range" in str(exc):
                self.fail(path, f"the port of {shown(value)} is out of range", "use a port between 1 and 65535")
            parts = port = None
        if (parts is None or not parts.hostname or parts.path not in ("", "/") or parts.query or parts.fragment
                or _HOST_JUNK.search(rest) or "?" in rest or "#" in rest):
            self.fail(path, f"{shown(value)} is not a host name, host:port or https:// URL", BMC_ADDRESS_FIX)
        if port == 0:
            self.fail(path, "port 0 is out of range", "use a port between 1 and 65535")
        return value

    def _bmc_credentials(self, value, path):
        return self.string(value, path, NAME_RE, BMC_CREDENTIALS_FIX)

    def _bmc_system_id(self, value, path):
        if not isinstance(value, str):
            self.fail(path, f"expected a string, got {type_name(value)} {shown(value)}",
                      f'quote it (system_id: "{value}"): Redfish system ids are strings')
        if not _SYSTEM_ID_RE.match(value):
            self.fail(path, f"invalid Redfish system id {shown(value)}",
                      "write the Id of /redfish/v1/Systems/<Id> as the BMC shows it, e.g. 1 or System.Embedded.1")
        return value

    def _bmc_validate_certs(self, value, path):
        if not isinstance(value, bool):
            self.fail(path, "validate_certs must be true or false",
                      "write validate_certs: true (or false for a BMC with a self-signed certificate)")
        return value

    def _unique_bmc(self, bmc, path, server):
        """Fencing one server must never power off another: servers sharing a BMC need distinct system ids."""
        systems = self.bmcs.setdefault(bmc.baseuri.lower(), {})
        if bmc.system_id is None:
            other = next(iter(systems.values()), None)
        else:
            other = systems.get(bmc.system_id) or systems.get(None)
        if other is not None:
            same = (f"the same system_id {shown(bmc.system_id)}" if bmc.system_id in systems
                    else "no system_id to tell them apart")
            self.fail(path, f"BMC {bmc.baseuri} is also the BMC of {other[0]} ({other[1]}) with {same}",
                      "give each server its own BMC, or the system_id of its Redfish system where one BMC "
                      "manages several")
        systems[bmc.system_id] = (server, path)

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
