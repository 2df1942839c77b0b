# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host-configuration drift: what the roles would change, from their check-mode results. Pure, no I/O.

Report mode runs the host roles site.yml uses in check mode (docs/reconcile.md). The callback
``baremetal.k8s.drift_record`` turns every task result that would change a host into a record with
``record_from_result``; ``host_drift`` turns the records into ``Drift`` items. A record is:

``host``, ``role``, ``task`` (the task's name), ``item`` (a loop item's label or None), ``desired`` and
``observed`` (short texts). They come, best first, from the loop item itself when a role loops over the
differences it found (items with ``desired`` and ``observed``, as ``live_rows``/``live_drift`` and
``wireguard_live_drift`` build them), from the task's diff, from what systemd reports, or from the
task's arguments.

Nothing secret is kept: results of ``no_log`` tasks give no values, and lines that look like keys,
passwords or tokens are masked.
"""

from __future__ import annotations

import difflib
import re

from .drift import Drift

WOULD_RUN = "Command would have run if not in check mode"
MAX_LINES = 6  # per side of a file diff: a report line is read by a person
MAX_TEXT = 300
HIDDEN = "(not shown: the task handles a secret)"

# A role's drift is as risky as what a wrong value breaks: the API's reachability, the pod network,
# certificates about to expire.
ROLE_RISK = {"api_lb": "high", "wireguard": "high", "pod_network": "high", "k8s_hygiene": "high"}
DEFAULT_RISK = "medium"
# What the secret and certificate hygiene finds is security drift; the other roles' is host drift.
ROLE_KIND = {"k8s_hygiene": "security"}

# key = value, key: value and keepalived's "auth_pass value".
_SECRET = re.compile(r"(?i)(private_?key|auth_pass|pass(?:word)?|secret|token|certificate_?key)(?:\s*[=:]\s*|\s+)\S+")
# Module arguments that say what a task wants; the rest are options of how.
_WANT_ARGS = ("name", "path", "dest", "state", "enabled", "masked", "value", "line", "regexp", "replace",
              "mode", "owner", "group", "src")


def _mask(text):
    return _SECRET.sub(lambda m: "%s=***" % m.group(1), str(text))


def _clip(text):
    text = " ".join(str(text).split()) if "\n" not in str(text) else str(text)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 3] + "..."


def _side(lines):
    if not lines:
        return "(nothing)"
    shown = [_mask(line.rstrip()) for line in lines[:MAX_LINES]]
    if len(lines) > MAX_LINES:
        shown.append("... %d more lines" % (len(lines) - MAX_LINES))
    return _clip("\n".join(shown))


def _from_diff(diffs):
    """(desired, observed) from Ansible's diff (one mapping or a list): lines added are what the role wants,
    lines removed what the host has; mappings (the file module's state, mode, owner) are shown as key: value."""
    wanted, found = [], []
    for diff in diffs if isinstance(diffs, list) else [diffs]:
        if not isinstance(diff, dict):
            continue
        before, after = diff.get("before"), diff.get("after")
        if isinstance(before, dict) or isinstance(after, dict):
            before, after = before or {}, after or {}
            for key in sorted(set(before) | set(after)):
                if key != "path" and before.get(key) != after.get(key):
                    found.append("%s: %s" % (key, before.get(key, "(absent)")))
                    wanted.append("%s: %s" % (key, after.get(key, "(absent)")))
            continue
        if before is None and after is None:
            continue
        old = str(before or "").splitlines()
        new = str(after or "").splitlines()
        if not old and new:
            found.append("(no file)" if "before_header" in diff else "(nothing)")
        for line in difflib.unified_diff(old, new, lineterm="", n=0):
            if line.startswith(("---", "+++", "@@")):
                continue
            (wanted if line.startswith("+") else found).append(line[1:])
    if not wanted and not found:
        return None
    return _side(wanted), _side(found)


def _from_args(args):
    want = ["%s=%s" % (k, args[k]) for k in _WANT_ARGS if args.get(k) not in (None, "", [], {})]
    command = args.get("_raw_params") or args.get("cmd") or args.get("argv")
    if command:
        want.append("run: %s" % (" ".join(command) if isinstance(command, list) else command))
    return _mask(_clip(", ".join(want))) if want else "as the role sets it"


def is_drift(result, check_mode, changed_when):
    """Whether a task result in check mode says the host differs: the module would change it, or a command
    (skipped in check mode) would run and is not declared never to change anything."""
    if not check_mode or not isinstance(result, dict):
        return False
    if result.get("changed"):
        return True
    would_run = result.get("msg") == WOULD_RUN
    return bool(would_run and list(changed_when or []) not in ([False], ["false"], ["False"]))


def record_from_result(*, host, role, task, item, result, no_log, item_value=None):
    """The record for one task result that would change HOST (see ``is_drift``); ITEM is a loop item's
    label, ITEM_VALUE the item itself."""
    record = {"host": host, "role": role or "(playbook)", "task": task, "item": item}
    if no_log or result.get("censored"):
        record.update(desired=HIDDEN, observed=HIDDEN)
        record["item"] = None  # a loop item of a no_log task may be the secret itself
        return record
    args = (result.get("invocation") or {}).get("module_args") or {}
    from_diff = _from_diff(result["diff"]) if result.get("diff") else None
    if isinstance(item_value, dict) and "desired" in item_value and "observed" in item_value:
        record["desired"] = _mask(_clip(_shown(item_value["desired"])))
        record["observed"] = _mask(_clip(_shown(item_value["observed"])))
        record["item"] = item_value.get("name", item)
    elif from_diff:
        record["desired"], record["observed"] = from_diff
    elif isinstance(result.get("status"), dict) and "ActiveState" in result["status"]:
        status = result["status"]
        record["desired"] = _from_args(args)
        record["observed"] = "ActiveState=%s, UnitFileState=%s" % (
            status.get("ActiveState"), status.get("UnitFileState", "?"))
    else:
        record["desired"] = _from_args(args)
        record["observed"] = "differs (the task would run)" if result.get("msg") == WOULD_RUN else "differs"
    return record


def _shown(value):
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or "(none)"
    return "(none)" if value in (None, "") else str(value)


# --------------------------------------------------------------------------- live state the roles compare


def live_rows(lines):
    """A role's live probe output, one ``NAME<TAB>STATE[<TAB>OBSERVED]`` line per thing it manages, as
    rows ``{name, state, observed}`` (observed is None when the probe printed none)."""
    rows = []
    for line in lines or []:
        parts = str(line).split("\t")
        if len(parts) < 2 or not parts[0]:
            continue
        rows.append({"name": parts[0], "state": parts[1], "observed": parts[2] if len(parts) > 2 else None})
    return rows


def live_drift(rows, desired):
    """The rows whose state is ``drift``, with the DESIRED value (a mapping of name to value) beside the
    observed one: what the role loops over to fix, and what the drift report shows."""
    return [{"name": row["name"], "desired": desired.get(row["name"]), "observed": row["observed"]}
            for row in rows if row["state"] == "drift"]


def _route(text):
    text = str(text).strip()
    return text if "/" in text else text + ("/128" if ":" in text else "/32")


def wireguard_live_drift(dump_lines, route_lines, peers, public_keys, interface):
    """What the live WireGuard INTERFACE lacks or has extra against PEERS (name -> {allowed_ips, endpoint},
    the fleet inventory's ``wireguard_peers`` without the host itself) and their PUBLIC_KEYS (name -> key):
    DUMP_LINES are ``wg show INTERFACE dump`` without its first line (the private key never leaves the
    host), ROUTE_LINES the first field of ``ip -o route show dev INTERFACE``.

    wg-quick applies the configuration file once, so a peer or a route removed by hand stays gone until
    the interface restarts. Each difference comes with the command that repairs it without a restart.
    Endpoints are not compared: WireGuard updates them when a peer roams."""
    live = {}
    for line in dump_lines or []:
        fields = str(line).split("\t")
        if len(fields) >= 4 and fields[0]:
            allowed = [] if fields[3] in ("(none)", "") else sorted(_route(a) for a in fields[3].split(","))
            live[fields[0]] = allowed
    wanted_by_key = {}
    items = []
    for name, peer in sorted((peers or {}).items()):
        key = (public_keys or {}).get(name) or ""
        allowed = sorted(_route(a) for a in peer.get("allowed_ips") or [])
        wanted_by_key[key] = name
        if live.get(key) == allowed:
            continue
        items.append({"name": "peer %s" % name, "desired": "allowed-ips %s" % ", ".join(allowed),
                      "observed": "no such peer" if key not in live else "allowed-ips %s" % (
                          ", ".join(live[key]) or "(none)"),
                      "command": ["wg", "set", interface, "peer", key, "endpoint", peer.get("endpoint") or "",
                                  "allowed-ips", ",".join(allowed)]})
    for key in sorted(set(live) - set(wanted_by_key)):
        items.append({"name": "peer %s..." % key[:8], "desired": "no such peer",
                      "observed": "allowed-ips %s" % (", ".join(live[key]) or "(none)"),
                      "command": ["wg", "set", interface, "peer", key, "remove"]})
    routes = {_route(r) for r in route_lines or [] if str(r).strip()}
    wanted_routes = {_route(a) for peer in (peers or {}).values() for a in peer.get("allowed_ips") or []}
    for cidr in sorted(wanted_routes - routes):
        items.append({"name": "route %s" % cidr, "desired": "via %s" % interface, "observed": "no route",
                      "command": ["ip", "route", "replace", cidr, "dev", interface]})
    for cidr in sorted(routes - wanted_routes):
        items.append({"name": "route %s" % cidr, "desired": "no route via %s" % interface,
                      "observed": "via %s" % interface,
                      "command": ["ip", "route", "del", cidr, "dev", interface]})
    return items


# --------------------------------------------------------------------------- drift items


def host_drift(records):
    """``Drift`` items (kind host) from the records, one per task and loop item, in host order."""
    items = []
    seen = set()
    for record in records:
        what = "%s: %s" % (record.get("role"), record.get("task"))
        if record.get("item") not in (None, ""):
            what += " (%s)" % _mask(_clip(record["item"]))
        key = (record.get("host"), what)
        if key in seen:  # a handler or a retried task says the same twice
            continue
        seen.add(key)
        role = str(record.get("role") or "")
        short = role.rsplit(".", 1)[-1]
        items.append(Drift(ROLE_KIND.get(short, "host"), "host/%s" % record.get("host"), what, record.get("desired"),
                           record.get("observed"),
                           "converge %s on %s (reconcile_mode=fix)" % (role, record.get("host")),
                           ROLE_RISK.get(short, DEFAULT_RISK)))
    return items
