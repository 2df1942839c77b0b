# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Is this cluster working right now? The checker's verdicts (playbooks/check.yml). Pure core, ``now`` passed in.

Every check turns what was gathered (the host probes of cluster_check_probes, the API's Nodes and /readyz,
etcd_info's answer, etcd_backups' listing of the snapshots) into ``Verdict``s: a ``name``, a ``target``, a
``status`` (ok, warn, critical), what was ``observed`` and a ``fix`` (one sentence for an operator).
``assess_cluster`` runs them all for one cluster and returns the report: verdicts, counts, the overall status
(the worst verdict), what was ``not_checked`` and why, and the lines a person reads. docs/check.md says what
each verdict means.

A host that does not answer is one critical ``host_reachable`` verdict; its own host checks are left out
(nothing was observed), the checks that ask other hosts or the API still run.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from . import cluster_check_probes as probes_
from .errors import BaremetalError
from .etcd_backup import human_age
from .node_health import HealthOptions, assess
from .vocabulary import CHECK_STATUSES

NODE_ROLES = ("control_plane", "etcd", "worker")
SKIPPED_STATES = ("spare", "retired", "failed")  # servers that are not expected to serve the cluster
ETCD_DEFAULT_QUOTA = 2 * 1024 ** 3  # etcd's --quota-backend-bytes default
DAY = 86400.0
HOUR = 3600.0
BACKUPS_OFF = ("etcd snapshot age: no snapshot directory was given (check_etcd_backup_dir is empty), so no "
               "snapshot was looked at")

# node_health's categories, as a status of the node_ready check (the rest are critical).
NODE_OK = ("healthy", "controller_unreachable")  # Ready; an unreachable host is host_reachable's verdict
NODE_WARN = ("cordoned", "starting", "pressure", "wireguard_stale")


class CheckError(BaremetalError):
    """Input the checker cannot use (the message names the option and the fix)."""

    def __init__(self, path, problem, fix):
        super().__init__(problem, fix, where="cluster_check", path=path)


@dataclass(frozen=True)
class CheckOptions:
    """The thresholds (docs/check.md)."""

    wireguard_stale_after: int = 180  # seconds since a peer's latest handshake
    cert_warn_days: int = 30
    cert_critical_days: int = 7
    etcd_db_warn_percent: float = 80.0  # of the backend quota
    etcd_db_critical_percent: float = 95.0
    etcd_snapshot_warn_hours: float = 2.0  # age of the newest verified snapshot: hourly backups missed twice
    etcd_snapshot_critical_hours: float = 25.0  # a daily backup missed

    def __post_init__(self):
        for name in ("wireguard_stale_after", "cert_warn_days", "cert_critical_days", "etcd_db_warn_percent",
                     "etcd_db_critical_percent", "etcd_snapshot_warn_hours", "etcd_snapshot_critical_hours"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise CheckError(name, "expected a number of 0 or more, got %r" % (value,),
                                 "give a number (docs/check.md has the defaults)")
        if self.cert_critical_days > self.cert_warn_days:
            raise CheckError("cert_critical_days", "%s is more than cert_warn_days (%s)" % (
                self.cert_critical_days, self.cert_warn_days), "make the critical threshold the smaller one")
        if not self.etcd_db_warn_percent <= self.etcd_db_critical_percent <= 100:
            raise CheckError("etcd_db_critical_percent", "expected warn <= critical <= 100, got %s and %s" % (
                self.etcd_db_warn_percent, self.etcd_db_critical_percent), "e.g. 80 and 95")
        if self.etcd_snapshot_warn_hours > self.etcd_snapshot_critical_hours:
            raise CheckError("etcd_snapshot_critical_hours", "%s is less than etcd_snapshot_warn_hours (%s)" % (
                self.etcd_snapshot_critical_hours, self.etcd_snapshot_warn_hours),
                "make the critical threshold the larger one, e.g. 2 and 25")

    def as_dict(self):
        return {"wireguard_stale_after": self.wireguard_stale_after, "cert_warn_days": self.cert_warn_days,
                "cert_critical_days": self.cert_critical_days, "etcd_db_warn_percent": self.etcd_db_warn_percent,
                "etcd_db_critical_percent": self.etcd_db_critical_percent,
                "etcd_snapshot_warn_hours": self.etcd_snapshot_warn_hours,
                "etcd_snapshot_critical_hours": self.etcd_snapshot_critical_hours}


@dataclass(frozen=True)
class Verdict:
    name: str
    target: str
    status: str
    observed: str
    fix: str = ""  # empty when ok

    def as_dict(self):
        return {"name": self.name, "target": self.target, "status": self.status, "observed": self.observed,
                "fix": self.fix}


def _verdict(name, target, status, observed, fix):
    return Verdict(name, target, status, observed, "" if status == "ok" else fix)


def worst(statuses):
    """The worst of STATUSES (ok when there is none)."""
    return max(statuses, key=CHECK_STATUSES.index, default="ok")


def _iso(seconds):
    return datetime.datetime.fromtimestamp(float(seconds), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _size(n):
    for unit in ("B", "KiB", "MiB"):
        if n < 1024:
            return "%d %s" % (n, unit) if unit == "B" else "%.1f %s" % (n, unit)
        n /= 1024.0
    return "%.1f GiB" % n


def _few(items, limit=4):
    items = list(items)
    return ", ".join(items[:limit]) + (" and %d more" % (len(items) - limit) if len(items) > limit else "")


# --------------------------------------------------------------------------- hosts


def host_reachable(host, results):
    """ok when any of the host's probes ran; critical otherwise (unreachable, or no probe result at all)."""
    if any(probes_.ran(r) for r in results.values()):
        return _verdict("host_reachable", "host/" + host, "ok", "answered the probes", "")
    first = next(iter(results.values()), None)
    return _verdict("host_reachable", "host/" + host, "critical",
                    "the host did not answer, so its host checks were not run: %s" % probes_.why_not_ran(first),
                    "Check that the host is up and that Ansible reaches it (ansible %s -m ansible.builtin.ping); "
                    "recover.yml fences and replaces a node whose host stays gone." % host)


def node_ready(cluster, members, nodes, leases, *, now, api_error="", host_probes=None):
    """One verdict per fleet member that is a Kubernetes node, from node_health's verdict: Ready and fresh
    is ok; cordoned, starting or under pressure is a warning; anything else critical. A member in
    maintenance is at most a warning (it is expected to be down). HOST_PROBES: node_health's ``probes``
    per host (reachable, containerd_active, kubelet_active), for the hosts that were probed."""
    node_members = {name: m for name, m in members.items() if set(m.get("roles") or ()) & set(NODE_ROLES)}
    if not node_members:
        return []
    if api_error:
        return [_verdict("node_ready", "cluster/" + cluster, "critical", "cannot read the Nodes: %s" % api_error,
                         "Check the API VIP (api_vip_ready) and the kubeconfig the job uses (bmk8s_kubeconfig).")]
    health_members = []
    for name, member in node_members.items():
        entry = {"name": name, "roles": [r for r in member.get("roles") or () if r in NODE_ROLES]}
        if member.get("address"):
            entry["address"] = member["address"]
        if name in (host_probes or {}):
            entry["probes"] = host_probes[name]
        health_members.append(entry)
    report = assess(health_members, nodes, leases, now=now, options=HealthOptions(wireguard_handshake_timeout=0))
    verdicts = []
    for verdict in report.verdicts:
        member = node_members[verdict.name]
        category = verdict.category
        status = "ok" if category in NODE_OK else "warn" if category in NODE_WARN else "critical"
        observed = verdict.summary
        if category == "healthy":
            heartbeat = verdict.observed.get("heartbeat") or {}
            observed = "Ready, kubelet %s, heartbeat %s s ago" % (verdict.observed.get("kubelet_version") or "?",
                                                                  int(heartbeat.get("age") or 0))
        if category == "cordoned" and verdict.observed.get("cordon_reason"):
            observed += " (%s)" % verdict.observed["cordon_reason"]
        fix = ("Look at the kubelet and containerd on the host (systemctl status kubelet; journalctl -u kubelet); "
               "recover.yml remediates a node that stays NotReady past its grace period.")
        if category == "cordoned":
            fix = "Uncordon it when the work on it is done (kubectl uncordon %s), or finish its maintenance." % (
                verdict.name)
        elif category == "pressure":
            fix = "Free memory, disk or PIDs on the node (the pressure condition names which)."
        elif category == "starting":
            fix = "Wait for it to register, or look at its kubelet if it does not within node_startup_timeout."
        if member.get("state") == "maintenance" and status != "ok":
            status, observed = "warn", "in maintenance: " + observed
            fix = "Give it back with maintenance.yml when the work on it is done."
        elif member.get("state") == "provisioning" and status == "critical":
            status, observed = "warn", "still being provisioned: " + observed
            fix = "Finish its provisioning (site.yml) or set its state in the fleet file."
        if status == "ok" and category == "controller_unreachable":
            observed = "Ready (its host does not answer the controller: see host_reachable)"
        verdicts.append(_verdict("node_ready", "node/" + verdict.name, status, observed, fix))
    return verdicts


# --------------------------------------------------------------------------- API servers


def api_server_ready(host, result):
    """The control plane's own API server: GET /readyz at its address from the host. 200 is ok."""
    found = probes_.parse_readyz(result)
    target = "host/" + host
    if found["code"] == 200:
        return _verdict("api_server_ready", target, "ok", "/readyz answered 200", "")
    if found["code"] == 0:
        observed = "/readyz did not answer: %s" % (found["error"] or "no HTTP answer")
    else:
        observed = "/readyz answered %d" % found["code"]
        if found["failed"]:
            observed += "; failed checks: %s" % _few(found["failed"], 6)
    return _verdict("api_server_ready", target, "critical", observed,
                    "Look at the kube-apiserver static pod on %s (crictl ps -a --name kube-apiserver; crictl logs), "
                    "and at etcd when the etcd check failed." % host)


def api_vip_ready(cluster, readyz, vip):
    """The API through the kubeconfig's server (the VIP): GET /readyz. Not the VIP: at most a warning."""
    target = "cluster/" + cluster
    server = (readyz or {}).get("server") or ""
    if not readyz:
        return _verdict("api_vip_ready", target, "critical", "not asked", "Run the check with a kubeconfig.")
    fix = ("Check that keepalived holds the VIP and that HAProxy has backends up (vip_holder, haproxy_backends), "
           "and that the kubeconfig's server is the VIP.")
    if readyz.get("error"):
        where = "%s/readyz" % server if server else "cannot ask /readyz"
        return _verdict("api_vip_ready", target, "critical", "%s: %s" % (where, readyz["error"]), fix)
    code = readyz.get("status")
    if code != 200:
        failed = [line[3:].strip() for line in str(readyz.get("body") or "").splitlines() if line.startswith("[-]")]
        observed = "%s/readyz answered %s%s" % (server, code, "; failed checks: " + _few(failed, 6) if failed else "")
        return _verdict("api_vip_ready", target, "critical", observed, fix)
    host = server.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
    if vip and host != vip:
        return _verdict("api_vip_ready", target, "warn",
                        "%s/readyz answered 200, but that is not the VIP %s: the VIP was not asked" % (server, vip),
                        "Point the job's kubeconfig (bmk8s_kubeconfig) at the cluster's VIP, as its clients use it.")
    return _verdict("api_vip_ready", target, "ok", "%s/readyz answered 200" % server, "")


# --------------------------------------------------------------------------- etcd


def _etcd_answer(etcd, control_planes):
    """The first control plane's etcd_info result that lists members, and the errors of the others."""
    errors = []
    for host in list(control_planes) + sorted(set(etcd or {}) - set(control_planes)):
        result = (etcd or {}).get(host)
        if isinstance(result, dict) and isinstance(result.get("members"), list):
            return host, result, errors
        if isinstance(result, dict) and not result.get("skipped"):
            errors.append("%s: %s" % (host, " ".join(str(result.get("msg") or "no answer").split())[:200]))
    return None, None, errors


def etcd_checks(cluster, etcd, control_planes, options):
    """etcd_health, etcd_leader, etcd_alarms and etcd_db_size from the first etcd_info answer; one
    critical etcd_health verdict when no control plane's etcd answered."""
    target = "cluster/" + cluster
    host, info, errors = _etcd_answer(etcd, control_planes)
    if info is None:
        why = "; ".join(errors) or "etcd_info ran on none (no control plane answered the probes)"
        return [_verdict("etcd_health", target, "critical", "no control plane's etcd answered: %s" % why,
                         "Look at the etcd static pods on the control planes (crictl ps -a --name etcd; crictl logs); "
                         "with a majority down, restore from a snapshot.")], \
            ["etcd leader, alarms and database size: no etcd answered"]
    members = info["members"]
    voters = [m for m in members if not m.get("is_learner")]
    sick = [m.get("name") or m.get("id_hex") or "?" for m in voters if not m.get("healthy")]
    learners = [m.get("name") or m.get("id_hex") or "?" for m in members if m.get("is_learner")]
    numbers = "%d of %d voting members healthy, quorum %s, fault tolerance %s (asked on %s)" % (
        info.get("healthy_voters", len(voters) - len(sick)), len(voters), info.get("quorum"),
        info.get("fault_tolerance"), host)
    if sick:
        status = "critical"
        observed = "%s; not healthy: %s" % (numbers, "; ".join(
            "%s (%s)" % (m.get("name") or m.get("id_hex"), " ".join(str(m.get("health_error") or "").split())[:120])
            for m in voters if not m.get("healthy")))
        if not info.get("has_quorum"):
            observed = "NO QUORUM: " + observed
    elif learners:
        status, observed = "warn", "%s; learners not promoted yet: %s" % (numbers, ", ".join(learners))
    else:
        status, observed = "ok", numbers
    verdicts = [_verdict("etcd_health", target, status, observed,
                         "Look at etcd on the members that are not healthy (crictl logs of their etcd container); "
                         "recover.yml rebuilds a control plane whose etcd stays down while quorum allows it.")]

    leader = info.get("leader")
    verdicts.append(_verdict("etcd_leader", target, "ok" if leader else "critical",
                             "leader %s" % leader if leader else "no member names a leader",
                             "Check that a majority of the etcd members run and reach each other on port 2380; "
                             "without a leader the API server cannot write."))

    alarms = info.get("alarms")
    if alarms is None:
        verdicts.append(_verdict("etcd_alarms", target, "warn", "etcd did not list its alarms: %s" % (
            info.get("alarms_error") or "the etcd_info result has no alarms (an older module?)"),
            "Ask by hand on a control plane (etcdctl alarm list) and update the collection on the controller."))
    elif alarms:
        kinds = sorted({a.get("alarm") for a in alarms})
        raised = ["%s on %s" % (a.get("alarm"), a.get("member_name") or a.get("member_id")) for a in alarms]
        observed = "active alarms: %s" % ", ".join(raised)
        fix = ("NOSPACE: compact and defragment etcd, then etcdctl alarm disarm (raise --quota-backend-bytes if "
               "the data needs it)." if kinds == ["NOSPACE"] else
               "CORRUPT: take the member whose data differs out (etcd_member state=absent), reset and rejoin it; "
               "NOSPACE: compact, defragment and disarm.")
        verdicts.append(_verdict("etcd_alarms", target, "critical", observed, fix))
    else:
        verdicts.append(_verdict("etcd_alarms", target, "ok", "no alarms", ""))

    sized = [m for m in members if isinstance(m.get("db_size"), int)]
    if not sized:
        verdicts.append(_verdict("etcd_db_size", target, "warn", "no member reported its database size",
                                 "Look at etcd_health: the members that do not answer cannot say their size."))
        return verdicts, []

    def share(member):
        return member["db_size"] * 100.0 / (member.get("db_size_quota") or ETCD_DEFAULT_QUOTA)

    largest = max(sized, key=share)
    quota = largest.get("db_size_quota")
    percent = share(largest)
    observed = "largest %s: %s of %s (%.1f %%)" % (
        largest.get("name") or largest.get("id_hex"), _size(largest["db_size"]), _size(quota or ETCD_DEFAULT_QUOTA),
        percent)
    if not quota:
        observed += "; the quota is etcd's default 2 GiB (etcd %s does not report it)" % (
            largest.get("version") or "?")
    status = "critical" if percent > options.etcd_db_critical_percent else \
        "warn" if percent > options.etcd_db_warn_percent else "ok"
    verdicts.append(_verdict("etcd_db_size", target, status, observed,
                             "Compact and defragment etcd one member at a time (etcdctl defrag), or raise "
                             "--quota-backend-bytes, before the quota is reached and etcd refuses writes."))
    return verdicts, []


def _hours(hours):
    return "%g h" % hours


def etcd_snapshot_age(cluster, backups, options, *, directory="", host=""):
    """The age of the cluster's newest verified snapshot where etcd_backup.yml keeps them: BACKUPS is the
    registered result of etcd_backups action=list on DIRECTORY of HOST (its ``newest_verified``, ``exists``,
    ``count``; or a failure). Younger than etcd_snapshot_warn_hours is ok, up to etcd_snapshot_critical_hours
    a warning, older critical. No directory there is a warning (backups not set up, or kept elsewhere); a
    directory without a verified snapshot of the cluster, or one that cannot be listed, is critical."""
    target = "cluster/" + cluster
    backups = backups if isinstance(backups, dict) else {}
    directory = directory or str(((backups.get("invocation") or {}).get("module_args") or {}).get("path") or "?")
    where = "%s on %s" % (directory, host) if host else directory
    run = "Run playbooks/etcd_backup.yml -e etcd_backup_cluster=%s now and schedule it (hourly)" % cluster
    if backups.get("unreachable") or backups.get("failed"):
        why = " ".join(str(backups.get("msg") or "no answer").split())[:300]
        return _verdict("etcd_snapshot_age", target, "critical", "cannot list the snapshots in %s: %s" % (where, why),
                        "Check that %s answers and that the directory is readable there, or point "
                        "check_etcd_backup_host and check_etcd_backup_dir at where etcd_backup.yml keeps the "
                        "snapshots." % (host or "the backup host"))
    if not backups.get("exists"):
        return _verdict("etcd_snapshot_age", target, "warn",
                        "no snapshot directory %s: etcd backups are not kept there, so there is no snapshot to "
                        "restore from" % where,
                        "%s, keeping them there; if they are kept elsewhere, point check_etcd_backup_dir and "
                        "check_etcd_backup_host at it (an empty check_etcd_backup_dir turns this check off)." % run)
    count = int(backups.get("count") or 0)
    newest = backups.get("newest_verified")
    if not isinstance(newest, dict) or newest.get("age_seconds") is None:
        observed = ("no snapshot of %s in %s" % (cluster, where) if not count else
                    "none of the %d snapshots of %s in %s verifies" % (count, cluster, where))
        return _verdict("etcd_snapshot_age", target, "critical", observed + ": there is nothing to restore from",
                        run + " (docs/etcd.md).")
    age = float(newest["age_seconds"])
    observed = "newest verified snapshot %s is %s old (revision %s, in %s)" % (
        newest.get("name") or "?", human_age(age), newest.get("revision"), where)
    if age < 0:
        observed += "; taken in the future by the backup host's clock: check the clocks"
    bad = count - int(backups.get("verified_count") or 0)
    if bad > 0:
        observed += "; %d of its %d snapshots there do not verify" % (bad, count)
    if age > options.etcd_snapshot_critical_hours * HOUR:
        status = "critical"
        observed += ", older than %s" % _hours(options.etcd_snapshot_critical_hours)
    elif age >= options.etcd_snapshot_warn_hours * HOUR:
        status = "warn"
        observed += ", older than %s" % _hours(options.etcd_snapshot_warn_hours)
    else:
        status = "ok"
    return _verdict("etcd_snapshot_age", target, status, observed,
                    "The scheduled etcd_backup.yml has not kept a verified snapshot since: look at its last runs "
                    "(its summary names what failed). %s." % run)


# --------------------------------------------------------------------------- load balancers


def haproxy_backends(host, result):
    """HAProxy runs and its API server backends are UP: none up or HAProxy down is critical, some down a
    warning."""
    found = probes_.parse_load_balancer(result)
    target = "host/" + host
    start = "Start HAProxy on %s (systemctl start haproxy) or run the api_lb role (site.yml, reconcile.yml)." % host
    if found["haproxy"] != "active":
        return _verdict("haproxy_backends", target, "critical", "HAProxy is %s" % found["haproxy"], start)
    if found["servers"] is None:
        return _verdict("haproxy_backends", target, "critical", "cannot read HAProxy's stats: %s" % found["stat_error"],
                        start)
    servers = [s for s in found["servers"] if s["proxy"] == "kube-apiserver"] or found["servers"]
    up = [s["server"] for s in servers if s["status"].startswith("UP") or s["status"] == "no check"]
    down = ["%s (%s)" % (s["server"], s["status"]) for s in servers if s["server"] not in up]
    observed = "%d of %d backends up" % (len(up), len(servers))
    if down:
        observed += "; down: %s" % _few(down)
    fix = "Look at the API servers HAProxy marks down (their api_server_ready verdicts)."
    if not servers:
        return _verdict("haproxy_backends", target, "critical", "HAProxy has no API server backend", start)
    status = "ok" if not down else "critical" if not up else "warn"
    return _verdict("haproxy_backends", target, status, observed, fix)


def vip_holder(cluster, vip, load_balancers, lb_results):
    """Exactly one load balancer holds the VIP: none is critical (the API is down for its clients), two or
    more critical (split brain). keepalived stopped on a non-holder is a warning (no failover)."""
    target = "cluster/" + cluster
    holders, stopped, unknown = [], [], []
    for host in load_balancers:
        result = lb_results.get(host)
        if not probes_.ran(result):
            unknown.append(host)
            continue
        found = probes_.parse_load_balancer(result)
        if vip in found["addresses"]:
            holders.append(host)
        if found["keepalived"] != "active":
            stopped.append("%s (%s)" % (host, found["keepalived"]))
    tail = "".join(["; keepalived not running on %s" % ", ".join(stopped) if stopped else "",
                    "; not probed: %s" % ", ".join(unknown) if unknown else ""])
    if not holders:
        return _verdict("vip_holder", target, "critical", "no load balancer holds the VIP %s%s" % (vip, tail),
                        "Start keepalived and HAProxy on the load balancers (systemctl status keepalived haproxy); "
                        "keepalived gives the VIP only to a host whose HAProxy runs.")
    if len(holders) > 1:
        return _verdict("vip_holder", target, "critical", "split brain: %s all hold the VIP %s%s" % (
            ", ".join(holders), vip, tail),
            "Check VRRP between the load balancers (unicast peers, IP protocol 112 allowed, the same "
            "virtual_router_id and password), then restart keepalived on all but one.")
    status = "warn" if stopped else "ok"
    return _verdict("vip_holder", target, status, "%s holds the VIP %s%s" % (holders[0], vip, tail),
                    "Start keepalived on the other load balancers, or the VIP cannot move when its holder fails.")


# --------------------------------------------------------------------------- DNS and the pod network


def coredns_answers(host, result):
    """A DNS query for kubernetes.default.svc.<domain> to the cluster DNS Service from a control plane."""
    found = probes_.parse_dns(result)
    target = "host/" + host
    fix = ("Check the CoreDNS pods (kubectl -n kube-system get pods -l k8s-app=kube-dns) and that kube-proxy "
           "serves the DNS Service on %s." % host)
    if found["error"]:
        return _verdict("coredns_answers", target, "critical", "no answer from %s for %s: %s" % (
            found["server"] or "the cluster DNS", found["name"] or "kubernetes.default.svc", found["error"]), fix)
    if found["rcode"] != 0 or not found["answers"]:
        return _verdict("coredns_answers", target, "critical", "%s answered %s for %s with no address" % (
            found["server"], "rcode %s" % found["rcode"], found["name"]), fix)
    return _verdict("coredns_answers", target, "ok", "%s answered %s -> %s" % (
        found["server"], found["name"], ", ".join(found["answers"])), fix)


def pod_network(host, result):
    """Host to pod over the pod network (CoreDNS's /health on pods of other nodes); None when there was no
    target (then it is not checked)."""
    targets = probes_.parse_pod_network(result)
    if not targets:
        return None
    reached = [t for t in targets if t["code"]]
    missed = ["%s on %s (%s: %s)" % (t["pod"], t["node"], t["ip"], t["error"] or "exit %s" % t["exit"])
              for t in targets if not t["code"]]
    observed = "reached %d of %d CoreDNS pods on other nodes" % (len(reached), len(targets))
    if reached:
        observed += " (%s)" % _few("%s on %s" % (t["pod"], t["node"]) for t in reached)
    if missed:
        observed += "; no answer from %s" % _few(missed)
    status = "ok" if not missed else "critical" if not reached else "warn"
    return _verdict("pod_network", "host/" + host, status, observed,
                    "Check the WireGuard mesh and the pod routes on both nodes (wg show; ip route get POD_IP) and "
                    "the CNI bridge on the pod's node.")


# --------------------------------------------------------------------------- WireGuard and certificates


def wireguard_handshakes(host, result, peers, options):
    """A recent handshake with every peer (judged on the host's clock, right after one ping each): none
    recent is critical, some stale a warning."""
    target = "host/" + host
    found = probes_.parse_node(result)
    now = probes_.host_now(result)
    fix = ("Check the WireGuard endpoints and UDP port between the hosts (wg show; ping the peer's tunnel address), "
           "and run the wireguard role (reconcile.yml) if a peer's key changed.")
    if found["handshakes"] is None:
        return _verdict("wireguard_handshakes", target, "critical", "no WireGuard peers on this host (no mesh "
                        "configuration or interface)", "Run the wireguard role on it (site.yml or reconcile.yml).")
    limit = options.wireguard_stale_after
    recent, stale = [], []
    for peer in peers:
        when = found["handshakes"].get(peer)
        if peer not in found["handshakes"]:
            stale.append("%s (not a peer of the live interface)" % peer)
        elif not when:
            stale.append("%s (never)" % peer)
        elif now is not None and now - when > limit:
            stale.append("%s (%d s ago)" % (peer, now - when))
        else:
            recent.append(peer)
    if not peers:
        return _verdict("wireguard_handshakes", target, "ok", "no other member to reach", "")
    observed = "recent handshake (within %d s) with %d of %d peers" % (limit, len(recent), len(peers))
    if stale:
        observed += "; stale: %s" % _few(stale)
    status = "ok" if not stale else "critical" if not recent else "warn"
    return _verdict("wireguard_handshakes", target, status, observed, fix)


def certificates(host, result, now, options):
    """Every kubeadm and kubelet certificate on the host valid for more than cert_warn_days (warn) and
    cert_critical_days (critical; expired is critical too)."""
    target = "host/" + host
    found = probes_.parse_certificates(result)
    if not found:
        return _verdict("certificates", target, "warn", "no certificate found under /etc/kubernetes/pki or "
                        "/var/lib/kubelet/pki", "Check that the node was joined (site.yml) and that openssl is "
                        "installed on it.")
    unreadable = [path for path, end in found if end is None]
    dated = sorted(((end - now) / DAY, path, end) for path, end in found if end is not None)
    critical = [(d, p, e) for d, p, e in dated if d < options.cert_critical_days]
    warn = [(d, p, e) for d, p, e in dated if options.cert_critical_days <= d < options.cert_warn_days]

    def text(entry):
        days, path, end = entry
        return "%s %s %s (%s)" % (path, "expired" if days < 0 else "expires", _iso(end),
                                  "%d days ago" % -days if days < 0 else "in %d days" % days)

    status = "critical" if critical else "warn" if warn or unreadable else "ok"
    if status == "ok":
        return _verdict("certificates", target, "ok", "%d certificates, the first to expire: %s" % (
            len(dated), text(dated[0])), "")
    parts = []
    if critical:
        parts.append("%d expired or expire within %s days: %s" % (
            len(critical), options.cert_critical_days, _few([text(e) for e in critical], 3)))
    if warn:
        parts.append("%d expire within %s days: %s" % (len(warn), options.cert_warn_days,
                                                       _few([text(e) for e in warn], 3)))
    if unreadable:
        parts.append("unreadable: %s" % _few(unreadable))
    bad = [entry[1] for entry in critical + warn] + unreadable
    if any(p.startswith("/etc/kubernetes") for p in bad):
        fix = ("Renew them on %s with kubeadm certs renew all and restart its control plane static pods "
               "(the kubelet's certificates renew themselves when rotation works)." % host)
    else:
        fix = ("The kubelet renews its client certificate itself: check rotation (journalctl -u kubelet) and "
               "restart the kubelet; remove an expiring self-signed kubelet.crt and restart it for a new one.")
    return _verdict("certificates", target, status, "; ".join(parts), fix)


# --------------------------------------------------------------------------- the report


def assess_cluster(cluster, members, probes, *, now, api=None, etcd=None, vip=None, options=None, etcd_backup=None,
                   etcd_backup_dir="", etcd_backup_host=""):
    """The report of one cluster.

    MEMBERS: ``name -> {roles, state, address}`` (the fleet's members of the cluster, load balancers too);
    PROBES: ``host -> registered probe results`` (cluster_check_probes.results_by_name reads them); API:
    ``{nodes, leases, error, readyz: {server, status, body, error}}``; ETCD: ``host -> etcd_info result``;
    VIP: the cluster's API VIP; ETCD_BACKUP: etcd_backups' listing (action=list) of ETCD_BACKUP_DIR on
    ETCD_BACKUP_HOST for the cluster (None, or a skipped task: the snapshot age is not checked).
    """
    options = options or CheckOptions()
    if not isinstance(members, dict):
        raise CheckError("members", "expected a mapping of name to member", "pass the fleet's members")
    api = api or {}
    members = {n: m for n, m in members.items() if m.get("state") not in SKIPPED_STATES}
    by_host = {host: probes_.results_by_name((probes or {}).get(host)) for host in members}
    answered = {host for host, results in by_host.items() if any(probes_.ran(r) for r in results.values())}
    verdicts, not_checked = [], []

    def roles(host):
        return set(members[host].get("roles") or ())

    for host in members:
        verdicts.append(host_reachable(host, by_host[host]))
    verdicts += node_ready(cluster, members, api.get("nodes") or [], api.get("leases") or [], now=now,
                           api_error=api.get("error") or "",
                           host_probes={h: _health_probes(by_host[h].get("node"), h in answered)
                                        for h in members if by_host[h]})
    control_planes = [h for h in members if "control_plane" in roles(h)]
    for host in control_planes:
        if host in answered:
            verdicts.append(_judged("api_server_ready", host, by_host[host].get("readyz"), api_server_ready))
    verdicts.append(api_vip_ready(cluster, api.get("readyz"), vip))
    if control_planes:
        etcd_verdicts, skipped = etcd_checks(cluster, etcd, control_planes, options)
        verdicts += etcd_verdicts
        not_checked += skipped
    if isinstance(etcd_backup, dict) and not etcd_backup.get("skipped"):
        verdicts.append(etcd_snapshot_age(cluster, etcd_backup, options, directory=etcd_backup_dir,
                                          host=etcd_backup_host))
    else:
        not_checked.append(BACKUPS_OFF)
    load_balancers = [h for h in members if "load_balancer" in roles(h)]
    for host in load_balancers:
        if host in answered:
            verdicts.append(_judged("haproxy_backends", host, by_host[host].get("load_balancer"), haproxy_backends))
    if load_balancers and vip:
        verdicts.append(vip_holder(cluster, vip, load_balancers,
                                   {h: by_host[h].get("load_balancer") for h in load_balancers}))
    else:
        not_checked.append("the API VIP holder: the cluster has no load balancer in the fleet")
    for host in control_planes:
        if host in answered:
            verdicts.append(_judged("coredns_answers", host, by_host[host].get("dns"), coredns_answers))
    for host in members:
        if host not in answered or not roles(host) & set(NODE_ROLES):
            continue
        verdict = _judged("pod_network", host, by_host[host].get("pod_network"), pod_network)
        if verdict is None:
            not_checked.append("pod network from %s: no running CoreDNS pod on another node to reach" % host)
        else:
            verdicts.append(verdict)
    for host in members:
        if host in answered:
            verdicts.append(_judged("wireguard_handshakes", host, by_host[host].get("node"), wireguard_handshakes,
                                    [p for p in members if p != host], options))
    for host in members:
        if host in answered and roles(host) & set(NODE_ROLES):
            verdicts.append(_judged("certificates", host, by_host[host].get("certificates"), certificates, now,
                                    options))
    return report(cluster, verdicts, not_checked)


def _judged(name, host, result, check, *args):
    """CHECK's verdict on HOST's probe RESULT; critical when that probe did not run (the host answered the
    first probe, then not this one)."""
    if not probes_.ran(result):
        return _verdict(name, "host/" + host, "critical", "its probe did not run: %s" % probes_.why_not_ran(result),
                        "Run check.yml again; if it stays so, run the probe by hand on the host (docs/check.md).")
    return check(host, result, *args)


def _health_probes(result, answered):
    """node_health's ``probes`` of a probed host: unreachable, or reachable with its units' states."""
    if not answered or not probes_.ran(result):
        return {"reachable": bool(answered)}
    found = probes_.parse_node(result)
    return {"reachable": True, "containerd_active": found["containerd"], "kubelet_active": found["kubelet"]}


def report(cluster, verdicts, not_checked):
    """Counts, the overall status and the lines: the counts, each non-ok verdict (critical first), the oks."""
    counts = {status: sum(v.status == status for v in verdicts) for status in CHECK_STATUSES}
    overall = worst(v.status for v in verdicts)
    lines = ["cluster %s: %s - %d verdicts: %d critical, %d warn, %d ok" % (
        cluster, overall.upper(), len(verdicts), counts["critical"], counts["warn"], counts["ok"])]
    for status in ("critical", "warn"):
        for v in verdicts:
            if v.status == status:
                lines.append("%s %s %s: %s. Fix: %s" % (status.upper(), v.name, v.target, v.observed, v.fix))
    lines.append("%d ok" % counts["ok"])
    lines += ["not checked: %s" % item for item in not_checked]
    return {"cluster": cluster, "overall": overall, "counts": dict(counts, total=len(verdicts)),
            "verdicts": [dict(v.as_dict(), cluster=cluster) for v in verdicts], "not_checked": list(not_checked),
            "lines": lines}
