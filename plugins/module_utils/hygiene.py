# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Secret and certificate hygiene: which key files to restrict, which certificates to renew and which
bootstrap tokens to remove.
Pure, with ``now`` passed in (the role k8s_hygiene probes the hosts and acts; docs/reconcile.md).

Each decision is an item the role loops over: ``name``, ``desired`` and ``observed`` (what the drift
report shows) and what to do about it.
"""

from __future__ import annotations

import base64
import datetime

DAY = 86400.0

# kubeadm's leaf certificates (``kubeadm certs renew NAME``): where each lives, whether it is a file or
# a kubeconfig's embedded client certificate, and the static pod that must restart to load it.
KUBEADM_CERTS = (
    ("apiserver", "/etc/kubernetes/pki/apiserver.crt", "file", "kube-apiserver"),
    ("apiserver-kubelet-client", "/etc/kubernetes/pki/apiserver-kubelet-client.crt", "file", "kube-apiserver"),
    ("apiserver-etcd-client", "/etc/kubernetes/pki/apiserver-etcd-client.crt", "file", "kube-apiserver"),
    ("front-proxy-client", "/etc/kubernetes/pki/front-proxy-client.crt", "file", "kube-apiserver"),
    ("etcd-server", "/etc/kubernetes/pki/etcd/server.crt", "file", "etcd"),
    ("etcd-peer", "/etc/kubernetes/pki/etcd/peer.crt", "file", "etcd"),
    ("etcd-healthcheck-client", "/etc/kubernetes/pki/etcd/healthcheck-client.crt", "file", None),
    ("admin.conf", "/etc/kubernetes/admin.conf", "kubeconfig", None),
    ("super-admin.conf", "/etc/kubernetes/super-admin.conf", "kubeconfig", None),
    ("controller-manager.conf", "/etc/kubernetes/controller-manager.conf", "kubeconfig", "kube-controller-manager"),
    ("scheduler.conf", "/etc/kubernetes/scheduler.conf", "kubeconfig", "kube-scheduler"),
)
# Restart order: etcd before the API server that talks to it.
RESTART_ORDER = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")


def iso(seconds):
    return datetime.datetime.fromtimestamp(float(seconds), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def kubeadm_certs(_unused=None):
    """The certificates the role probes on a control plane: ``name``, ``path``, ``kind`` (file | kubeconfig).
    (The argument is ignored: a filter needs an input.)"""
    return [{"name": name, "path": path, "kind": kind} for name, path, kind, _restart in KUBEADM_CERTS]


def _expiry_text(not_after, now):
    days = (not_after - now) / DAY
    if days < 0:
        return "expired %s (%d days ago)" % (iso(not_after), int(-days))
    return "expires %s (in %.1f days)" % (iso(not_after), days)


def certs_due(lines, now, renew_days):
    """The kubeadm certificates to renew: those that expire within RENEW_DAYS of NOW (epoch seconds).

    LINES: the probe's ``NAME<TAB>NOT_AFTER`` per certificate (NOT_AFTER in epoch seconds; ``missing``
    for a file that is not there, which kubeadm does not renew either, so it is left out)."""
    restart = {name: component for name, _path, _kind, component in KUBEADM_CERTS}
    return [{"name": name, "desired": desired, "observed": observed, "restart": restart[name]}
            for name, desired, observed in _expiring_rows(lines, now, renew_days) if name in restart]


def restarts(due):
    """The static pods to restart after renewing DUE, in a safe order (etcd first)."""
    wanted = {item.get("restart") for item in due or []}
    return [component for component in RESTART_ORDER if component in wanted]


def expiring(lines, now, renew_days, what):
    """Other certificates (the kubelet's) by the same rule, as items named after WHAT[name]."""
    return [{"name": what.get(name, name), "desired": desired, "observed": observed, "cert": name}
            for name, desired, observed in _expiring_rows(lines, now, renew_days)]


def _expiring_rows(lines, now, renew_days):
    """``(name, desired, observed)`` of the ``NAME<TAB>NOT_AFTER`` lines that expire within RENEW_DAYS of NOW;
    lines without an epoch NOT_AFTER (``missing``) are skipped."""
    for line in lines or []:
        name, _sep, not_after = str(line).partition("\t")
        if not not_after.strip().lstrip("-").isdigit():
            continue
        not_after = float(not_after)
        if not_after - now < renew_days * DAY:
            yield name, "valid for more than %d days" % renew_days, _expiry_text(not_after, now)


def _decoded(text):
    try:
        return base64.b64decode(text.strip(), validate=True).decode("utf-8").strip()
    except (ValueError, UnicodeDecodeError):
        return ""


def tokens_due(lines, now):
    """Bootstrap tokens to remove: expired ones the token cleaner has not removed yet, and tokens that
    never expire (a join credential that lasts for ever).

    LINES: ``TOKEN_ID<TAB>EXPIRATION`` per bootstrap token Secret, each base64 as the Secret's data has
    them (EXPIRATION RFC 3339, empty when the token never expires). Only the token id is read: the
    secret half never leaves the cluster."""
    due = []
    for line in lines or []:
        token_id, _sep, expiration = str(line).partition("\t")
        token_id, expiration = _decoded(token_id), _decoded(expiration)
        if not token_id:
            continue
        if not expiration:
            due.append({"name": "bootstrap token %s" % token_id, "id": token_id,
                        "desired": "no token that never expires", "observed": "never expires"})
            continue
        try:
            when = datetime.datetime.fromisoformat(expiration.replace("Z", "+00:00")).timestamp()
        except ValueError:
            continue  # not ours to judge: a person wrote it
        if when <= now:
            due.append({"name": "bootstrap token %s" % token_id, "id": token_id,
                        "desired": "no expired token", "observed": "expired %s" % iso(when)})
    return due


def _octal(mode):
    """A file mode as find returns it ('0600') or a role default gives it ('0600', '600', 384): an int."""
    if isinstance(mode, int):
        return mode
    try:
        return int(str(mode), 8)
    except ValueError:
        return None


def secrets_due(files, mode):
    """The private keys and kubeconfigs whose owner or mode is not root:root and MODE.

    FILES: ansible.builtin.find's ``files`` (``path``, ``mode``, ``uid``, ``gid``). Only these get a
    file task: one round trip per wrong file, not one per key on every host and every run."""
    wanted = _octal(mode)
    return [entry for entry in files or []
            if _octal(entry.get("mode", "")) != wanted or entry.get("uid") != 0 or entry.get("gid") != 0]
