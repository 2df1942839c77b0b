# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every part of the fleet parser shares: the list of problems and the typed field checks.

A check that fails records a ``FleetError`` and raises ``Skip``; the caller skips the broken item
(``each``) and goes on, so one run reports every problem of the file.
"""

from __future__ import annotations

import contextlib
import re

from .fleet_model import NAME_FIX, FleetError

try:
    import netaddr
except ImportError:  # parse_fleet() reports it as a FleetError; the import sanity test has no netaddr
    netaddr = None

# Kubernetes label rules (apimachinery validation): [prefix/]name, the prefix a DNS subdomain.
LABEL_NAME_RE = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
LABEL_PREFIX_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
LABEL_VALUE_FIX = "use at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
LABEL_KEY_FIX = ("write [prefix/]name: a name like " + LABEL_VALUE_FIX[4:]
                 + ", an optional prefix a lower-case DNS name of at most 253 characters")


class Skip(Exception):
    """The current item is broken; its error is already recorded."""


def type_name(value):
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "an integer"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def suggest(known, limit=8):
    known = sorted(known)
    if not known:
        return "a defined one (none are defined yet)"
    shown = ", ".join(known[:limit])
    return "one of: {}{}".format(shown, ", ..." if len(known) > limit else "")


def _is_host_address(version, value):
    """Not unspecified, loopback, multicast or broadcast (integer tests: netaddr's are slower, 20,000 times)."""
    if version == 4:
        return value not in (0, 0xFFFFFFFF) and value >> 24 != 127 and value >> 28 != 0xE
    return value > 1 and value >> 120 != 0xFF


def label_value_ok(value):
    return value == "" or (len(value) <= 63 and LABEL_NAME_RE.fullmatch(value) is not None)


def label_key_ok(key):
    prefix, slash, name = key.rpartition("/")
    if slash and not (len(prefix) <= 253 and LABEL_PREFIX_RE.fullmatch(prefix)):
        return False
    return len(name) <= 63 and LABEL_NAME_RE.fullmatch(name) is not None


class Checker:
    """Typed checks of one fleet file; every part of the parser is a Checker sharing ``errors``."""

    def __init__(self, source, errors=None, groups=None):
        self.source = source
        self.errors = [] if errors is None else errors
        self.groups = {} if groups is None else groups  # inventory group name -> (path, what claimed it)

    def error(self, path, problem, fix):
        self.errors.append(FleetError(self.source, path, problem, fix))

    def fail(self, path, problem, fix):
        self.error(path, problem, fix)
        raise Skip()

    def claim_group(self, group, path, what):
        """Inventory group names replace '-' and '.' by '_': two names that read the same would merge groups."""
        other = self.groups.setdefault(group, (path, what))
        if other[0] != path:
            self.fail(path, f"{what} and {other[1]} ({other[0]}) both give the inventory group {group}",
                      "rename one of them: names that differ only in '-', '.' and '_' give the same group")

    def mapping(self, value, path, allowed, required=()):
        if not isinstance(value, dict):
            self.fail(path, f"expected a mapping, got {type_name(value)}", "write it as key: value pairs")
        unknown = value.keys() - allowed
        if unknown:
            key = sorted(map(str, unknown))[0][:80]
            self.fail(
                f"{path}.{key}" if path else key,
                f"unknown field {key!r}",
                f"remove it or use {suggest(allowed)}",
            )
        for key in required:
            if key not in value:
                self.fail(f"{path}.{key}" if path else key, "required field is missing", f"add {key}")
        return value

    def listof(self, value, path, allow_missing=True):
        if value is None and allow_missing:
            return []
        if not isinstance(value, list):
            self.fail(path, f"expected a list, got {type_name(value)}", "write it as a YAML list (- item)")
        return value

    def string(self, value, path, pattern=None, fix=NAME_FIX):
        if not isinstance(value, str) or not value:
            self.fail(path, f"expected a non-empty string, got {type_name(value)}", fix)
        if pattern is not None and not pattern.match(value):
            self.fail(path, f"invalid value {shown(value)}", fix)
        return value

    def integer(self, value, path, low=None, high=None):
        if not isinstance(value, int) or isinstance(value, bool):
            self.fail(path, f"expected an integer, got {type_name(value)}", "write a whole number")
        if (low is not None and value < low) or (high is not None and value > high):
            rng = f"at least {low}" if high is None else f"between {low} and {high}"
            self.fail(path, f"{value} is out of range", f"use a value {rng}")
        return value

    def choice(self, value, path, choices):
        if not isinstance(value, str) or value not in choices:
            self.fail(path, f"invalid value {shown(value)}", "use one of: {}".format(", ".join(choices)))
        return value

    def label_value(self, value, path):
        """A Kubernetes label value: a string (booleans and numbers must be quoted), at most 63 characters."""
        if value is None:
            self.fail(path, "expected a string, got null", 'write a value, or "" for an empty one')
        if not isinstance(value, str):
            written = str(value).lower() if isinstance(value, bool) else shown(value)
            self.fail(path, f"expected a string, got {type_name(value)} {shown(value)}",
                      f'quote it ("{written}"): Kubernetes label values are strings')
        if not label_value_ok(value):
            self.fail(path, f"invalid label value {shown(value)}", LABEL_VALUE_FIX + ", or empty")
        return value

    def labels(self, raw, path, good=None):
        """Labels become Kubernetes node labels: keys and values follow Kubernetes' rules, values are strings.

        Servers' and node groups' ``labels``. GOOD: (key, value) pairs already checked, skipped (most servers
        share their labels); the pairs found good are added to it.
        """
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            self.fail(path, "labels must be a mapping of names to values", "write labels as key: value")
        good = set() if good is None else good
        for key, value in raw.items():
            if isinstance(value, str) and (key, value) in good:  # (a list value is not hashable)
                continue
            if not isinstance(key, str) or not label_key_ok(key):
                self.fail(f"{path}.{str(key)[:80]}", f"invalid label key {shown(key)}", LABEL_KEY_FIX)
            self.label_value(value, f"{path}.{key}")
            good.add((key, value))
        return raw

    def address(self, value, path):
        """A host's unicast address (a server's, an API VIP)."""
        if not isinstance(value, str):
            self.fail(path, f"expected an IP address, got {type_name(value)}", "write an address like 10.0.0.1")
        try:
            ip = netaddr.IPAddress(value, flags=netaddr.INET_PTON)
        except (netaddr.AddrFormatError, ValueError, TypeError):
            self.fail(path, f"{shown(value)} is not an IP address", "write an address like 10.0.0.1")
        if not _is_host_address(ip.version, ip.value):
            self.fail(path, f"{ip} is not a host address (unspecified, loopback, multicast or broadcast)",
                      "write the address the host has on its network, like 10.0.0.1")
        return ip

    def cidr(self, value, path):
        if not isinstance(value, str) or "/" not in value:
            self.fail(path, f"expected a CIDR, got {shown(value)}", "write a network like 10.0.0.0/16")
        try:
            net = netaddr.IPNetwork(value)
        except (netaddr.AddrFormatError, ValueError, TypeError):
            self.fail(path, f"{shown(value)} is not a CIDR", "write a network like 10.0.0.0/16")
        if net.ip != net.network:
            self.fail(path, f"{value} has host bits set", f"use the network address {net.cidr}")
        return net

    def each(self, items, path, fn):
        """Parse every item; a broken item is recorded and skipped."""
        out = []
        for i, item in enumerate(items):
            with contextlib.suppress(Skip):
                out.append(fn(item, f"{path}[{i}]", i))
        return out

    def report_overlaps(self, spans, fix):
        """``spans``: (version, first, last, path, cidr). Each span overlapping an earlier one is an error."""
        # Sort by start; a span overlaps an earlier one iff it starts before the
        # furthest end seen so far (within one IP version). O(n log n).
        spans.sort()
        reach, owner, version = -1, None, None
        for ver, first, last, path, cidr in spans:
            if ver != version:
                reach, version = -1, ver
            if first <= reach:
                self.error(path, f"{cidr} overlaps {owner[0]} ({owner[1]})", fix)
            if last > reach:
                reach, owner = last, (path, cidr)


def shown(value, limit=80):
    """``repr(value)`` short enough for a message: a 5,000-character value is shown by its start."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
