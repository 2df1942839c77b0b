# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The etcd backup timer's run (issue 14): sites without AWX back up etcd from the control planes themselves.

Every control plane runs ``bmk8s-etcd-backup`` hourly (roles/etcd_backup_timer installs it: these files copied
under /usr/local/lib/baremetal-k8s/python, a systemd timer and a oneshot service). One run:

1. asks etcd which members are healthy (``EtcdClient.member_list`` and ``probe``);
2. ``choose_runner``: the first control plane of the config's ``order`` whose etcd member is healthy takes the
   snapshot, every other one logs why it does not and exits 0 - one snapshot per cluster per hour, and the next
   one takes over when the first is down;
3. ``take_snapshot`` (etcd_snapshot_take.py) into ``node_dir``; the local snapshots pruned to ``keep_local``;
4. the snapshot, then its manifest (last: a manifest on the target means its snapshot is complete) copied to
   the ``target`` with ``scp``; the target listed (``ssh ... ls -1 DIR``) and what ``remote_prune_plan`` says
   deleted (``ssh ... rm -f -- FILES``).

Pure where it can be: ``check_config``, ``choose_runner``, ``remote_prune_plan`` and the role's
``timer_config``/``timer_problems`` (the filters of plugins/filter/etcd_backup_timer.py) decide; ``run`` gets
etcd (``client_factory``), the commands (``runner``, ``subprocess.run``-like), the clock and the log passed in.
Every step logs one line (host, step, what, how long); a failure logs what failed and the fix, and the exit
code is not 0, so systemd marks the unit failed. The private key is a file the config names; it is never read
or logged here. Bad config raises ``TimerConfigError`` with every problem at once. docs/etcd.md ("The backup
timer") has the rules.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time

from .errors import BaremetalError, format_error
from .etcd_backup import (
    CLUSTER_RE,
    MANIFEST_SUFFIX,
    EtcdBackupError,
    Snapshot,
    parse_duration,
    parse_snapshot_name,
    pki_bundle_name,
    prune_plan,
    verify_snapshot,
)
from .etcd_client import (
    KUBEADM_ETCD_CA,
    KUBEADM_ETCD_CLIENT_CERT,
    KUBEADM_ETCD_CLIENT_KEY,
    SNAPSHOT_TIMEOUT,
    EtcdClient,
)
from .etcd_snapshot_take import take_snapshot

DEFAULT_CONFIG = "/etc/baremetal-k8s/etcd-backup.json"
DEFAULT_NODE_DIR = "/var/lib/baremetal-k8s/etcd-snapshots"
PROG = "bmk8s-etcd-backup"

EXIT_OK = 0  # a snapshot stored on the target, or another control plane takes it
EXIT_FAILED = 1  # a step failed (the log says which and the fix)
EXIT_CONFIG = 2  # the config (or --me) cannot be used

# Seconds a command may take: a copy of a large database over a slow link, a listing or a removal.
SCP_TIMEOUT = 3000.0
SSH_TIMEOUT = 300.0

# The config's fields: the optional ones with their defaults.
REQUIRED = ("cluster", "endpoints", "order", "target", "ssh_key")
DEFAULTS = {
    "ca_cert": KUBEADM_ETCD_CA,
    "client_cert": KUBEADM_ETCD_CLIENT_CERT,
    "client_key": KUBEADM_ETCD_CLIENT_KEY,
    "node_dir": DEFAULT_NODE_DIR,
    "keep_local": 3,
    "keep_last": 48,
    "max_age": "",
    "ssh_options": [],
    "snapshot_timeout": SNAPSHOT_TIMEOUT,
}
FIELDS = (*REQUIRED, *DEFAULTS)

TARGET_RE = re.compile(r"^(?:(?P<user>[A-Za-z0-9_][A-Za-z0-9._-]*)@)?"
                       r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]*):(?P<dir>/[A-Za-z0-9._+/-]*)\Z")
SSH_OPTION_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*=[^\r\n]+\Z")
TARGET_FORM = "[user@]host:/absolute/dir"


class TimerConfigError(EtcdBackupError):
    """The timer's config (or the role's variables) cannot be used; every problem at once.

    ``problems``: [(field, problem, fix)]; each line of the message reads ``SOURCE: FIELD: PROBLEM. Fix: FIX``.
    """

    def __init__(self, source, problems):
        self.problems = list(problems)
        self.lines = [format_error(source, field, problem, fix) for field, problem, fix in self.problems]
        field, problem, fix = self.problems[0]
        super().__init__(problem, fix, where=source, path=field)
        if len(self.problems) > 1:
            self.args = ("%d problems in %s:\n%s" % (len(self.problems), source, "\n".join(self.lines)),)

    def __str__(self):
        return self.args[0]


# --------------------------------------------------------------------------- the config


def _whole(value, minimum):
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _absolute(value):
    return isinstance(value, str) and value.startswith("/") and "\n" not in value


def parse_target(target):
    """``[user@]host:/absolute/dir`` -> (user or None, host without brackets, dir without a trailing slash).

    Raises EtcdBackupError when it is not of that form.
    """
    match = TARGET_RE.match(target) if isinstance(target, str) else None
    if not match:
        raise EtcdBackupError("%r is not %s" % (target, TARGET_FORM),
                              "write the backup host's account, name and directory, e.g. "
                              "backup@backup-1:/srv/backups/etcd (letters, digits and ._+/- in the directory)",
                              where="target")
    directory = match["dir"].rstrip("/") or "/"
    return match["user"], match["host"].strip("[]"), directory


def _config_problems(data):
    """(the config with its defaults, [(field, problem, fix)])."""
    if not isinstance(data, dict):
        return {}, [("(top level)", "not a JSON object (%s)" % type(data).__name__,
                     "write the fields as one object: {\"cluster\": ..., \"target\": ...}")]
    problems = []

    def problem(field, text, fix):
        problems.append((field, text, fix))

    for field in sorted(set(data) - set(FIELDS)):
        problem(field, "unknown field", "remove it, or correct its spelling (the fields: %s)" % ", ".join(FIELDS))
    config = dict(DEFAULTS)
    config.update({k: v for k, v in data.items() if k in FIELDS})
    for field in REQUIRED:
        if field not in data or data[field] is None:
            config[field] = None
    # cluster
    cluster = config["cluster"]
    if not isinstance(cluster, str) or not CLUSTER_RE.match(cluster):
        problem("cluster", "missing" if cluster in (None, "") else "%r is not a cluster name" % (cluster,),
                "give the fleet's cluster name: letters, digits, '.', '_', '-', up to 63 characters")
    # endpoints
    endpoints = config["endpoints"]
    if not isinstance(endpoints, list) or not endpoints:
        problem("endpoints", "missing or empty" if not endpoints else "not a list",
                "list the control planes' etcd client URLs, https://ADDRESS:2379 each")
    else:
        bad = [url for url in endpoints if not isinstance(url, str) or not re.match(r"^https://[^/\s]+", url)]
        if bad:
            problem("endpoints", "not an https:// URL: %s" % ", ".join(repr(u) for u in bad),
                    "give each control plane's etcd client URL as https://ADDRESS:2379 (kubeadm's etcd is "
                    "TLS only)")
        else:
            config["endpoints"] = [url.rstrip("/") for url in endpoints]
    # files
    for field, fix in (("ca_cert", "the etcd CA (kubeadm: %s)" % KUBEADM_ETCD_CA),
                       ("client_cert", "a client certificate of the etcd CA (kubeadm: %s)" % KUBEADM_ETCD_CLIENT_CERT),
                       ("client_key", "its key (kubeadm: %s)" % KUBEADM_ETCD_CLIENT_KEY),
                       ("ssh_key", "the private key file the target's account accepts (the role writes "
                                   "/etc/baremetal-k8s/etcd-backup.key)"),
                       ("node_dir", "the directory the control plane keeps its snapshots in (default %s)"
                                    % DEFAULT_NODE_DIR)):
        if not _absolute(config[field]):
            problem(field, "missing" if config[field] in (None, "") else "%r is not an absolute path"
                    % (config[field],), "give the absolute path of " + fix)
    # order
    order = config["order"]
    if not isinstance(order, list) or not order:
        problem("order", "missing or empty" if not order else "not a list",
                "list the cluster's control planes (their etcd member names) in the order they take the snapshot")
    elif not all(isinstance(name, str) and name for name in order) or len(set(order)) != len(order):
        problem("order", "names must be non-empty and listed once: %s" % (order,),
                "list each control plane (its etcd member name) once")
    # retention
    if not _whole(config["keep_local"], 1):
        problem("keep_local", "%r is not a whole number >= 1" % (config["keep_local"],),
                "give how many snapshots the control plane keeps itself, e.g. 3 (the new one is always kept)")
    if not _whole(config["keep_last"], 0):
        problem("keep_last", "%r is not a whole number >= 0" % (config["keep_last"],),
                "give how many verified snapshots the target keeps, e.g. 48 (0: no count rule)")
    if config["max_age"] is None:
        config["max_age"] = ""
    try:
        parse_duration(config["max_age"])
    except EtcdBackupError as exc:
        problem("max_age", exc.problem, exc.fix)
    # the target
    target = config["target"]
    if target in (None, ""):
        problem("target", "empty: the snapshots would stay only on the control planes, and be lost with them",
                "give %s of a backup host the key can scp to, e.g. backup@backup-1:/srv/backups/etcd" % TARGET_FORM)
    else:
        try:
            parse_target(target)
        except EtcdBackupError as exc:
            problem("target", exc.problem, exc.fix)
    options = config["ssh_options"]
    if not isinstance(options, list) or not all(isinstance(o, str) and SSH_OPTION_RE.match(o) for o in options):
        problem("ssh_options", "not a list of Name=value ssh options: %r" % (options,),
                "give ssh_config options as ssh -o takes them, e.g. [\"Port=2222\"]")
    timeout = config["snapshot_timeout"]
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        problem("snapshot_timeout", "%r is not a number of seconds above 0" % (timeout,),
                "give how long etcd may take to send each part of the snapshot, e.g. 120")
    return config, problems


def check_config(data, source) -> dict:
    """The timer's config (the JSON file's content) with its defaults; raises TimerConfigError naming SOURCE
    (the file) and every problem at once. Checking a checked config again returns it unchanged."""
    config, problems = _config_problems(data)
    if problems:
        raise TimerConfigError(source, problems)
    return config


# --------------------------------------------------------------------------- the role's view of the config

ROLE_PREFIX = "etcd_backup_timer_"
# ssh options the role always adds after the operator's (ssh takes the first value given for an option): a dead
# connection is given up on within a minute instead of holding the hourly run.
ROLE_SSH_OPTIONS = ("ConnectTimeout=30", "ServerAliveInterval=15", "ServerAliveCountMax=4")


def _role_variable(field):
    if field.startswith("_"):  # the role's own paths (vars/main.yml)
        return "_" + ROLE_PREFIX + field[1:]
    return ROLE_PREFIX + ("ssh_private_key" if field == "ssh_key" else field)


def _coerce(value, kind):
    """'48' -> 48 (extra variables arrive as text); anything else unchanged, for the check to name."""
    if isinstance(value, str) and value.strip():
        try:
            return kind(value.strip())
        except ValueError:
            return value
    return value


def _role_config(variables):
    if not isinstance(variables, dict):
        return {}, [("(top level)", "the role's variables are not a mapping", "pass them as roles/etcd_backup_timer's "
                     "vars/main.yml does")]
    known_hosts_file = variables.get("known_hosts_file") or ""
    options = variables.get("ssh_options")
    options = list(options) if isinstance(options, (list, tuple)) else options
    strict = "yes" if variables.get("known_hosts") else "accept-new"
    data = {
        "cluster": variables.get("cluster"),
        "endpoints": variables.get("endpoints"),
        "ca_cert": variables.get("ca_cert"),
        "client_cert": variables.get("client_cert"),
        "client_key": variables.get("client_key"),
        "order": variables.get("order"),
        "node_dir": variables.get("node_dir"),
        "keep_local": _coerce(variables.get("keep_local"), int),
        "keep_last": _coerce(variables.get("keep_last"), int),
        "max_age": variables.get("max_age") or "",
        "target": variables.get("target"),
        "ssh_key": variables.get("ssh_key"),
        "ssh_options": [*options, "StrictHostKeyChecking=" + strict, "UserKnownHostsFile=" + known_hosts_file,
                        *ROLE_SSH_OPTIONS] if isinstance(options, list) else options,
        "snapshot_timeout": _coerce(variables.get("snapshot_timeout"), float),
    }
    config, problems = _config_problems(data)
    if not variables.get("ssh_private_key"):
        problems.append(("ssh_key", "empty: scp to the target needs the private key of an account there",
                         "give the private key's content (from the vault); its public key goes into that "
                         "account's ~/.ssh/authorized_keys on the target"))
    if not _absolute(known_hosts_file):
        problems.append(("_known_hosts_file", "%r is not an absolute path" % (known_hosts_file,),
                         "leave the role's internal paths as vars/main.yml sets them"))
    named = [(field if field.startswith("(") else _role_variable(field), text, fix) for field, text, fix in problems]
    return config, named


def timer_problems(variables) -> list:
    """Every problem of the role's variables, as ``VARIABLE: PROBLEM. Fix: FIX`` lines; empty when none.

    VARIABLES: the config's fields as the role passes them (roles/etcd_backup_timer/vars/main.yml): the role
    variables' values, ``ssh_options`` the operator's extra ones, ``ssh_key`` and ``known_hosts_file`` the paths
    the role writes, and ``ssh_private_key``/``known_hosts`` only whether they are set (never the key).
    """
    return [format_error(None, field, text, fix) for field, text, fix in _role_config(variables)[1]]


def timer_config(variables) -> dict:
    """The config file's content from the role's variables (see ``timer_problems``): the operator's ssh
    options, then host key checking (``StrictHostKeyChecking=yes`` against the known_hosts file the role
    writes, ``accept-new`` when none is given) and the connection timeouts. Raises TimerConfigError naming the
    role's variables."""
    config, problems = _role_config(variables)
    if problems:
        raise TimerConfigError("roles/etcd_backup_timer", problems)
    return config


# --------------------------------------------------------------------------- decisions


def choose_runner(order, healthy):
    """(the control plane that takes the snapshot, or None; the reason, a sentence).

    The first of ORDER (control plane names: their etcd member names) whose member is healthy in HEALTHY
    (member name -> bool, or the names of the healthy members). Every control plane's timer fires; each one
    decides the same way, so a cluster gets one snapshot, and the next one takes over when the first is down.
    """
    if not isinstance(healthy, dict):
        healthy = dict.fromkeys(healthy, True)
    passed = []
    listed = ", ".join(order) if order else "(none)"
    for name in order:
        state = healthy.get(name)
        if state:
            return name, "%s takes the snapshot: the first control plane in order (%s) whose etcd member is " \
                         "healthy%s." % (name, listed, " (passed over: %s)" % "; ".join(passed) if passed else "")
        passed.append("%s: %s" % (name, "no etcd member of that name" if state is None
                                  else "its etcd member is not healthy"))
    return None, "no control plane of %s has a healthy etcd member (%s): no snapshot is taken." % (
        listed, "; ".join(passed) if passed else "the order is empty")


def _names(listing):
    lines = listing.splitlines() if isinstance(listing, str) else list(listing or [])
    return [os.path.basename(line.strip()) for line in lines if line and line.strip()]


def _companions(name, present):
    """The files that go with snapshot NAME: its manifest and its PKI bundle, when listed."""
    return [c for c in (name + MANIFEST_SUFFIX, pki_bundle_name(name)) if c in present]


def _remote_plan(listing, cluster, keep_last, max_age_seconds, now):
    names = _names(listing)
    present = set(names)
    snapshots = []
    for name in names:
        parsed = parse_snapshot_name(name)
        if parsed and parsed.cluster == cluster:
            # On the target, a snapshot counts as verified when its manifest is there: the manifest is copied
            # last, so it means the snapshot arrived whole (it was verified on the control plane).
            snapshots.append(Snapshot(name, parsed.taken_at, parsed.revision, name + MANIFEST_SUFFIX in present))
    plan = prune_plan(snapshots, keep_last, max_age_seconds, now)
    delete = []
    for name in plan.prune:
        delete += [name, *_companions(name, present)]
    return plan, delete


def remote_prune_plan(listing, cluster, keep_last, max_age_seconds, now) -> list:
    """The files to delete on the target: each pruned snapshot of CLUSTER with its manifest and PKI bundle.

    LISTING: ``ls -1`` of the target directory (text or lines). ``etcd_backup.prune_plan`` decides (the newest
    verified snapshot is never pruned; an unverified one never counts toward KEEP_LAST); a snapshot is verified
    there when its ``.json`` manifest is listed beside it. Other clusters' files and names that are not
    snapshots are never touched.
    """
    return _remote_plan(listing, cluster, keep_last, max_age_seconds, now)[1]


# --------------------------------------------------------------------------- the run


def client_from_config(config):
    """The etcd client of the config (the control planes' client URLs, kubeadm's certificates)."""
    return EtcdClient(config["endpoints"], ca_cert=config["ca_cert"], client_cert=config["client_cert"],
                      client_key=config["client_key"])


def _tail(text, lines=3, limit=500):
    kept = [line.strip() for line in (text or "").splitlines() if line.strip()][-lines:]
    joined = " | ".join(kept)
    return joined[-limit:] if joined else "no message"


def _ssh_fix(stderr, run):
    """The fix for a failed scp or ssh of RUN (a _Run), from what it said."""
    text = (stderr or "").lower()
    me, key, destination, user, host, directory = run.me, run.key, run.ssh_destination, run.user, run.host, run.dir
    who = "%s@%s" % (user, host) if user else host
    if "host key verification failed" in text or "remote host identification has changed" in text:
        return ("give the target's host key (ssh-keyscan %s) in etcd_backup_timer_ssh_known_hosts, or check "
                "whether %s was replaced" % (host, host))
    if "permission denied (publickey" in text or "permission denied (" in text:
        return "put the public key of %s into ~/.ssh/authorized_keys of %s" % (key, who)
    if "no such file or directory" in text:
        return "create %s on %s, writable by %s" % (directory, host, user or "that account")
    if "permission denied" in text:
        return "make %s on %s writable by %s" % (directory, host, user or "that account")
    if any(word in text for word in ("could not resolve", "connection refused", "timed out", "no route",
                                     "network is unreachable", "connection closed", "broken pipe")):
        return "check that %s answers ssh from %s (its name, its port, a firewall between them)" % (host, me)
    return ("check as root on %s that 'ssh -i %s %s true' works, and that %s exists on %s and %s may write "
            "there" % (me, key, destination, directory, host, user or "that account"))


class _Failed(Exception):
    """A step failed; its line is logged already."""


class _Run:
    def __init__(self, config, me, *, client_factory, runner, clock, log):
        self.config, self.me = config, me
        self.client_factory, self.runner, self.clock, self.log = client_factory, runner, clock, log
        self.user, self.host, self.dir = parse_target(config["target"])
        self.key = config["ssh_key"]
        self.ssh_base = ["-i", self.key, "-o", "BatchMode=yes"]
        for option in config["ssh_options"]:
            self.ssh_base += ["-o", option]
        self.ssh_destination = "%s@%s" % (self.user, self.host) if self.user else self.host
        scp_host = "[%s]" % self.host if ":" in self.host else self.host
        self.scp_destination = "%s@%s" % (self.user, scp_host) if self.user else scp_host

    def say(self, step, text, since=None):
        took = " (%.1f s)" % max(0.0, self.clock() - since) if since is not None else ""
        self.log("host %s: %s: %s%s" % (self.me, step, text, took))

    def fail(self, step, text, fix):
        message = text.rstrip(".") if fix is None or "Fix:" in text else "%s. Fix: %s" % (text.rstrip("."), fix)
        self.say(step, "FAILED: " + message)
        raise _Failed(step)

    def command(self, step, argv, timeout, what, note=""):
        """Run ARGV (scp or ssh: WHAT it does, for the log); its stdout. A failure is logged with what it said
        and the fix (then NOTE)."""
        started = self.clock()
        try:
            done = self.runner(argv, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL,
                               timeout=timeout)
        except FileNotFoundError:
            self.fail(step, "%s is not installed on %s" % (argv[0], self.me), "install openssh-client")
        except subprocess.TimeoutExpired:
            self.fail(step, "%s to %s gave no result within %.0f s" % (argv[0], self.ssh_destination, timeout),
                      "check that %s answers ssh from %s and is not overloaded" % (self.host, self.me))
        except (OSError, subprocess.SubprocessError) as exc:
            self.fail(step, "%s could not run: %s" % (argv[0], exc), "check %s on %s" % (argv[0], self.me))
        if done.returncode != 0:
            took = max(0.0, self.clock() - started)
            problem = "%s %s exited %s after %.1f s: %s" % (argv[0], what, done.returncode, took, _tail(done.stderr))
            self.fail(step, problem, _ssh_fix(done.stderr, self) + note)
        return done.stdout or ""

    def etcd(self):
        started = self.clock()
        try:
            client = self.client_factory(self.config)
            members = client.member_list()
            probes = client.probe(members)
        except BaremetalError as exc:
            self.fail("etcd", "cannot ask etcd which members are healthy: %s" % exc,
                      "check etcd on the control planes (baremetal.k8s.etcd_info) and the endpoints and "
                      "certificates in the config")
        healthy = {m.name: probes[m.id].healthy for m in members if m.name}
        names = ", ".join(sorted(n for n, ok in healthy.items() if ok)) or "none"
        self.say("etcd", "%d members, healthy: %s" % (len(members), names), started)
        return client, healthy

    def snapshot(self, client):
        started = self.clock()
        config = self.config
        try:
            taken = take_snapshot(client, config["cluster"], config["node_dir"],
                                  snapshot_timeout=float(config["snapshot_timeout"]), clock=self.clock)
        except BaremetalError as exc:
            self.fail("snapshot", "no snapshot of cluster %s: %s" % (config["cluster"], exc),
                      "see the members' health with baremetal.k8s.etcd_info; the next run tries again")
        self.say("snapshot", "%s from %s (%s), %.1f MB, revision %s, in %s" % (
            taken["name"], taken["member"], taken["member_reason"], taken["size"] / 1e6, taken["revision"],
            config["node_dir"]), started)
        return taken

    def prune_local(self):
        """Keep the newest keep_local snapshots on the node; False when that failed (the run goes on)."""
        started = self.clock()
        node_dir, cluster = self.config["node_dir"], self.config["cluster"]
        try:
            names = sorted(os.listdir(node_dir))
            present = set(names)
            snapshots = []
            for name in names:
                parsed = parse_snapshot_name(name)
                if parsed and parsed.cluster == cluster:
                    ok = verify_snapshot(os.path.join(node_dir, name), full=False).ok
                    snapshots.append(Snapshot(name, parsed.taken_at, parsed.revision, ok))
            plan = prune_plan(snapshots, self.config["keep_local"], None, self.clock())
            for name in plan.prune:
                for file_name in [name, *_companions(name, present)]:
                    os.unlink(os.path.join(node_dir, file_name))
        except (OSError, BaremetalError) as exc:
            self.say("local", "FAILED: cannot prune %s: %s. Fix: check that directory (root, 0700) and its "
                     "disk; the snapshot is still copied" % (node_dir, exc))
            return False
        self.say("local", "kept %d in %s (keep_local %d), pruned %d%s" % (
            len(plan.keep), node_dir, self.config["keep_local"], len(plan.prune),
            ": " + ", ".join(plan.prune) if plan.prune else ""), started)
        return True

    def copy(self, taken):
        started = self.clock()
        target = self.config["target"]
        # The snapshot first, its manifest last: a manifest on the target means its snapshot is complete.
        for path in (taken["path"], taken["manifest_path"]):
            name = os.path.basename(path)
            self.command("copy", ["scp", *self.ssh_base, path, "%s:%s/%s" % (self.scp_destination,
                                                                             self.dir.rstrip("/"), name)],
                         SCP_TIMEOUT, "of %s to %s" % (name, target),
                         "; the snapshot stays in %s, the next run copies its own" % self.config["node_dir"])
        self.say("copy", "%s and its manifest to %s" % (taken["name"], target), started)

    def prune_remote(self):
        started = self.clock()
        config = self.config
        listing = self.command("remote", ["ssh", *self.ssh_base, self.ssh_destination,
                                          "ls -1 " + shlex.quote(self.dir)],
                               SSH_TIMEOUT, "listing %s on %s" % (self.dir, self.host),
                               "; the snapshot was stored, old ones were not pruned")
        try:
            plan, delete = _remote_plan(listing, config["cluster"], config["keep_last"],
                                        parse_duration(config["max_age"]), self.clock())
        except BaremetalError as exc:
            self.fail("remote", "cannot plan the retention on %s: %s" % (config["target"], exc), None)
        if delete:
            files = " ".join(shlex.quote(self.dir.rstrip("/") + "/" + name) for name in delete)
            self.command("remote", ["ssh", *self.ssh_base, self.ssh_destination, "rm -f -- " + files],
                         SSH_TIMEOUT, "removing %d old files in %s on %s" % (len(delete), self.dir, self.host),
                         "; the snapshot was stored, old ones were not pruned")
        rules = "keep_last %d%s" % (config["keep_last"],
                                    ", max_age %s" % config["max_age"] if config["max_age"] else "")
        newest = plan.newest_verified or "none"
        self.say("remote", "%d snapshots of %s kept on %s (%s; newest verified %s), pruned %d%s" % (
            len(plan.keep), config["cluster"], config["target"], rules, newest, len(plan.prune),
            ": " + ", ".join(plan.prune) if plan.prune else ""), started)


def run(config, me, *, client_factory, runner, clock, log) -> int:
    """One timer run on control plane ME; the exit code (EXIT_OK, EXIT_FAILED, EXIT_CONFIG).

    CONFIG: the timer's config (checked again here). CLIENT_FACTORY(config) -> an EtcdClient; RUNNER: a
    ``subprocess.run``-like callable for scp and ssh; CLOCK: seconds since the epoch; LOG: one line at a time.
    """
    started = clock()
    try:
        config = check_config(config, "config")
    except TimerConfigError as exc:
        log("host %s: config: FAILED: %s" % (me, exc))
        return EXIT_CONFIG
    if me not in config["order"]:
        log("host %s: config: FAILED: %s is not one of the control planes in order (%s). Fix: run with --me "
            "NAME, this control plane's inventory name (the etcd member name); the role's unit does"
            % (me, me, ", ".join(config["order"])))
        return EXIT_CONFIG
    steps = _Run(config, me, client_factory=client_factory, runner=runner, clock=clock, log=log)
    try:
        client, healthy = steps.etcd()
        name, reason = choose_runner(config["order"], healthy)
        if name is None:
            steps.fail("runner", reason, "bring an etcd member back (baremetal.k8s.etcd_info shows each member's "
                       "health); every control plane's timer reports this")
        if name != me:
            steps.say("runner", "%s Nothing to do on %s." % (reason, me))
            return EXIT_OK
        steps.say("runner", reason)
        taken = steps.snapshot(client)
        local_ok = steps.prune_local()
        steps.copy(taken)
        steps.prune_remote()
    except _Failed:
        return EXIT_FAILED
    steps.say("done", "%s of cluster %s stored on %s" % (taken["name"], config["cluster"], config["target"]),
              started)
    return EXIT_OK if local_ok else EXIT_FAILED


# --------------------------------------------------------------------------- the command


def _stdout(line):
    sys.stdout.write(line + "\n")  # the journal's line: systemd reads the service's stdout
    sys.stdout.flush()


def main(argv=None) -> int:
    """``bmk8s-etcd-backup [--config PATH] [--me NAME]``: one run with the real scp/ssh, clock and etcd."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="One run of the etcd backup timer (baremetal.k8s, roles/etcd_backup_timer): the "
        "first control plane of the config's order whose etcd member is healthy takes a snapshot, keeps the "
        "newest keep_local on the node, copies it to the target with scp and prunes the target to keep_last; "
        "the others exit 0. docs/etcd.md, 'The backup timer'.")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="the JSON config (default %(default)s)")
    parser.add_argument("--me", default=socket.gethostname().split(".")[0],
                        help="this control plane's name in the config's order (default the short hostname: "
                             "%(default)s)")
    args = parser.parse_args(argv)
    try:
        with open(args.config, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as exc:
        _stdout("host %s: config: FAILED: %s: cannot read it: %s. Fix: apply the role baremetal.k8s."
                "etcd_backup_timer (it writes it), or give --config PATH" % (args.me, args.config, exc.strerror or exc))
        return EXIT_CONFIG
    except ValueError as exc:
        _stdout("host %s: config: FAILED: %s: not JSON: %s. Fix: apply the role baremetal.k8s.etcd_backup_timer "
                "again (it writes it)" % (args.me, args.config, exc))
        return EXIT_CONFIG
    try:
        config = check_config(data, args.config)
    except TimerConfigError as exc:
        _stdout("host %s: config: FAILED: %s" % (args.me, exc))
        return EXIT_CONFIG
    return run(config, args.me, client_factory=client_from_config, runner=subprocess.run, clock=time.time,
               log=_stdout)
