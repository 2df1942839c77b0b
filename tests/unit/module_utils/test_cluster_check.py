# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""L0: the checker's verdicts (module_utils/cluster_check.py), one group of tests per check, and the report."""

from __future__ import annotations

import pytest
from ansible_collections.baremetal.k8s.plugins.module_utils import cluster_check as cc

NOW = 1_800_000_000.0
OPTIONS = cc.CheckOptions()
DAY = 86400


def out(*lines, now=NOW):
    """A probe's registered result: the now= line first, as every probe prints it."""
    return {"rc": 0, "stdout": "\n".join(["now=%d" % now, *lines])}


def statuses(verdicts):
    return [(v.name, v.target, v.status) for v in verdicts]


# --------------------------------------------------------------------------- options


def test_options_refuse_a_critical_threshold_above_the_warning_one():
    with pytest.raises(cc.CheckError, match="cert_critical_days: 40 is more than cert_warn_days"):
        cc.CheckOptions(cert_critical_days=40)
    with pytest.raises(cc.CheckError, match="etcd_db_critical_percent"):
        cc.CheckOptions(etcd_db_warn_percent=90, etcd_db_critical_percent=85)
    with pytest.raises(cc.CheckError, match="wireguard_stale_after: expected a number"):
        cc.CheckOptions(wireguard_stale_after=-1)


# --------------------------------------------------------------------------- host_reachable


def test_a_host_that_ran_a_probe_is_reachable():
    assert cc.host_reachable("n1", {"node": out("containerd=active")}).status == "ok"


def test_an_unreachable_host_is_critical_with_the_connection_error():
    verdict = cc.host_reachable("n1", {"node": {"unreachable": True, "msg": "Failed to connect to the host via ssh"}})
    assert verdict.status == "critical"
    assert "Failed to connect to the host via ssh" in verdict.observed and "ansible n1 -m" in verdict.fix


def test_a_probe_that_never_ran_and_a_host_not_probed_are_critical():
    # docker exec into a stopped container: a module error with no output, not "unreachable".
    broken = {"node": {"rc": 1, "stdout": "", "msg": "Module result deserialization failed"}}
    assert "deserialization" in cc.host_reachable("n1", broken).observed
    assert cc.host_reachable("n1", {}).observed.endswith("not probed in this run")


# --------------------------------------------------------------------------- node_ready


def node(name, ready="True", cordoned=False, annotations=None):
    return {"name": name, "internal_ips": [], "unschedulable": cordoned, "annotations": annotations or {},
            "kubelet_version": "v1.36.3",
            "conditions": [{"type": "Ready", "status": ready, "reason": "KubeletReady",
                            "last_transition_time": NOW - 3600}]}


def lease(name, age=3):
    return {"name": name, "renew_time": NOW - age, "lease_duration_seconds": 40}


MEMBERS = {"cp1": {"roles": ["control_plane", "etcd"], "state": "active"},
           "w1": {"roles": ["worker"], "state": "active"},
           "lb1": {"roles": ["load_balancer"], "state": "active"}}


def test_ready_nodes_are_ok_and_load_balancers_are_not_nodes():
    verdicts = cc.node_ready("c1", MEMBERS, [node("cp1"), node("w1")], [lease("cp1"), lease("w1")], now=NOW)
    assert statuses(verdicts) == [("node_ready", "node/cp1", "ok"), ("node_ready", "node/w1", "ok")]
    assert verdicts[0].observed == "Ready, kubelet v1.36.3, heartbeat 3 s ago" and verdicts[0].fix == ""


def test_a_dead_kubelet_is_critical_with_node_healths_words():
    verdicts = cc.node_ready("c1", MEMBERS, [node("cp1"), node("w1", ready="False")], [lease("cp1"), lease("w1", 300)],
                             now=NOW, host_probes={"w1": {"reachable": True, "kubelet_active": "inactive"}})
    assert verdicts[1].status == "critical"
    assert "the kubelet is not running" in verdicts[1].observed and "journalctl -u kubelet" in verdicts[1].fix


def test_a_missing_node_is_critical_a_cordoned_one_a_warning():
    annotations = {"baremetal.k8s/cordoned-by": "awx-job-7", "baremetal.k8s/cordon-reason": "disk swap"}
    verdicts = cc.node_ready("c1", MEMBERS, [node("cp1", cordoned=True, annotations=annotations)], [lease("cp1")],
                             now=NOW)
    assert statuses(verdicts) == [("node_ready", "node/cp1", "warn"), ("node_ready", "node/w1", "critical")]
    assert "cordoned by awx-job-7 (disk swap)" in verdicts[0].observed and "kubectl uncordon cp1" in verdicts[0].fix


def test_a_member_in_maintenance_is_at_most_a_warning():
    members = dict(MEMBERS, w1={"roles": ["worker"], "state": "maintenance"})
    verdict = cc.node_ready("c1", members, [node("cp1"), node("w1", ready="False")], [lease("cp1"), lease("w1")],
                            now=NOW)[1]
    assert verdict.status == "warn" and verdict.observed.startswith("in maintenance: ")
    assert "maintenance.yml" in verdict.fix


def test_an_unreadable_api_is_one_critical_verdict_for_the_cluster():
    verdicts = cc.node_ready("c1", MEMBERS, [], [], now=NOW, api_error="cannot reach the API server (timeout)")
    assert statuses(verdicts) == [("node_ready", "cluster/c1", "critical")]
    assert "cannot reach the API server" in verdicts[0].observed


def test_a_ready_node_whose_host_does_not_answer_is_still_ready():
    verdict = cc.node_ready("c1", {"w1": MEMBERS["w1"]}, [node("w1")], [lease("w1")], now=NOW,
                            host_probes={"w1": {"reachable": False}})[0]
    assert verdict.status == "ok" and "see host_reachable" in verdict.observed


# --------------------------------------------------------------------------- API servers


READYZ_FAILING = out("[+]ping ok", "[-]etcd failed: reason withheld", "[+]log ok",
                     "readyz check failed", "http_code=500")


def test_api_server_readyz():
    assert cc.api_server_ready("cp1", out("[+]ping ok", "readyz check passed", "http_code=200")).status == "ok"
    verdict = cc.api_server_ready("cp1", READYZ_FAILING)
    assert verdict.status == "critical" and verdict.observed == "/readyz answered 500; failed checks: etcd failed: " \
        "reason withheld"
    verdict = cc.api_server_ready("cp1", out("curl: (7) Failed to connect to 10.0.0.1 port 6443", "http_code=000"))
    assert verdict.observed == "/readyz did not answer: curl: (7) Failed to connect to 10.0.0.1 port 6443"


def test_api_vip_through_the_kubeconfig():
    ok = {"server": "https://10.0.0.100:6443", "status": 200, "body": "readyz check passed", "error": ""}
    assert cc.api_vip_ready("c1", ok, "10.0.0.100").status == "ok"
    assert cc.api_vip_ready("c1", dict(ok, status=500, body="[-]etcd failed"), "10.0.0.100").observed.endswith(
        "answered 500; failed checks: etcd failed")
    down = cc.api_vip_ready("c1", dict(ok, status=None, error="cannot reach the API server (timed out)"), "10.0.0.100")
    assert down.status == "critical" and "vip_holder" in down.fix
    other = cc.api_vip_ready("c1", dict(ok, server="https://10.0.0.11:6443"), "10.0.0.100")
    assert other.status == "warn" and "not the VIP 10.0.0.100" in other.observed


# --------------------------------------------------------------------------- etcd


def member(name, healthy=True, db_size=3_000_000, quota=2 * 1024 ** 3, learner=False, **extra):
    return dict({"name": name, "id_hex": name, "healthy": healthy, "health_error": "" if healthy else "no answer",
                 "is_learner": learner, "db_size": db_size, "db_size_quota": quota, "version": "3.6.16"}, **extra)


def etcd_info(members, **extra):
    voters = [m for m in members if not m["is_learner"]]
    healthy = sum(m["healthy"] for m in voters)
    quorum = len(voters) // 2 + 1
    return dict({"members": members, "leader": "cp1", "healthy_voters": healthy, "quorum": quorum,
                 "fault_tolerance": max(healthy - quorum, 0), "has_quorum": healthy >= quorum,
                 "alarms": [], "alarms_error": ""}, **extra)


def etcd(info, host="cp1"):
    return cc.etcd_checks("c1", {host: info}, ["cp1", "cp2", "cp3"], OPTIONS)


def test_a_healthy_etcd_is_four_oks():
    verdicts, skipped = etcd(etcd_info([member("cp1"), member("cp2"), member("cp3")]))
    assert [(v.name, v.status) for v in verdicts] == [("etcd_health", "ok"), ("etcd_leader", "ok"),
                                                      ("etcd_alarms", "ok"), ("etcd_db_size", "ok")]
    assert verdicts[0].observed == "3 of 3 voting members healthy, quorum 2, fault tolerance 1 (asked on cp1)"
    assert verdicts[3].observed == "largest cp1: 2.9 MiB of 2.0 GiB (0.1 %)" and skipped == []


def test_an_unhealthy_member_is_critical_and_no_quorum_says_so():
    verdicts = etcd(etcd_info([member("cp1"), member("cp2", healthy=False), member("cp3")]))[0]
    assert verdicts[0].status == "critical" and "not healthy: cp2 (no answer)" in verdicts[0].observed
    verdicts = etcd(etcd_info([member("cp1"), member("cp2", healthy=False), member("cp3", healthy=False)],
                              leader=None, alarms=None, alarms_error="not asked: etcd has no quorum"))[0]
    assert verdicts[0].observed.startswith("NO QUORUM: 1 of 3")
    assert [(v.name, v.status) for v in verdicts[1:3]] == [("etcd_leader", "critical"), ("etcd_alarms", "warn")]
    assert "not asked: etcd has no quorum" in verdicts[2].observed


def test_a_pending_learner_is_a_warning():
    verdicts = etcd(etcd_info([member("cp1"), member("cp2"), member("cp3", learner=True)]))[0]
    assert verdicts[0].status == "warn" and "learners not promoted yet: cp3" in verdicts[0].observed


def test_alarms_are_critical_with_the_fix_for_their_kind():
    nospace = [{"member_id": "1", "member_name": "cp2", "alarm": "NOSPACE"}]
    verdict = etcd(etcd_info([member("cp1")], alarms=nospace))[0][2]
    assert verdict.status == "critical" and verdict.observed == "active alarms: NOSPACE on cp2"
    assert verdict.fix.startswith("NOSPACE: compact and defragment")
    corrupt = etcd(etcd_info([member("cp1")], alarms=[*nospace, dict(nospace[0], alarm="CORRUPT")]))[0][2]
    assert corrupt.fix.startswith("CORRUPT:")


@pytest.mark.parametrize(("percent", "status"), [(79, "ok"), (81, "warn"), (95, "warn"), (96, "critical")])
def test_database_size_against_the_quota(percent, status):
    quota = 1000 * 1024 ** 2
    verdict = etcd(etcd_info([member("cp1", db_size=quota * percent // 100, quota=quota)]))[0][3]
    assert verdict.status == status


def test_the_default_quota_is_assumed_and_said_when_etcd_does_not_report_it():
    verdict = etcd(etcd_info([member("cp1", db_size=1800 * 1024 ** 2, quota=None, version="3.5.21")]))[0][3]
    assert verdict.status == "warn"
    assert verdict.observed == "largest cp1: 1.8 GiB of 2.0 GiB (87.9 %); the quota is etcd's default 2 GiB " \
        "(etcd 3.5.21 does not report it)"


def test_no_etcd_answer_is_one_critical_verdict_quoting_the_errors():
    answers = {"cp1": {"failed": True, "msg": "no etcd endpoint answered /v3/cluster/member/list"},
               "cp2": {"skipped": True}}
    verdicts, skipped = cc.etcd_checks("c1", answers, ["cp1", "cp2"], OPTIONS)
    assert statuses(verdicts) == [("etcd_health", "cluster/c1", "critical")]
    assert "cp1: no etcd endpoint answered" in verdicts[0].observed and "cp2" not in verdicts[0].observed
    assert skipped == ["etcd leader, alarms and database size: no etcd answered"]


def test_the_first_control_plane_that_answered_speaks():
    answers = {"cp1": {"failed": True, "msg": "x"}, "cp2": etcd_info([member("cp1")])}
    verdicts = cc.etcd_checks("c1", answers, ["cp1", "cp2"], OPTIONS)[0]
    assert verdicts[0].observed.endswith("(asked on cp2)")


# --------------------------------------------------------------------------- etcd_snapshot_age


HOUR = 3600


def listing(age=None, count=None, verified=None, exists=True, name="c1-20270115T070000Z-r100.db"):
    """etcd_backups action=list's registered result: the newest verified snapshot AGE seconds old (None: none)."""
    newest = None if age is None else {"name": name, "path": "/b/" + name, "age_seconds": age, "revision": 100,
                                       "taken_at": "2027-01-15T07:00:00Z"}
    count = (0 if age is None else 1) if count is None else count
    return {"changed": False, "exists": exists, "newest_verified": newest, "count": count,
            "verified_count": count if verified is None else verified,
            "invocation": {"module_args": {"path": "/b", "cluster": "c1", "action": "list"}}}


def age_verdict(backups, options=OPTIONS, **where):
    return cc.etcd_snapshot_age("c1", backups, options, **dict({"directory": "/b", "host": "bk1"}, **where))


@pytest.mark.parametrize("age, status", [
    (0, "ok"), (3900, "ok"), (2 * HOUR - 1, "ok"), (2 * HOUR, "warn"), (10 * HOUR, "warn"), (25 * HOUR, "warn"),
    (25 * HOUR + 1, "critical"), (9 * DAY, "critical")])
def test_snapshot_age_against_the_thresholds(age, status):
    verdict = age_verdict(listing(age))
    assert (verdict.name, verdict.target, verdict.status) == ("etcd_snapshot_age", "cluster/c1", status)
    assert "newest verified snapshot c1-20270115T070000Z-r100.db is " in verdict.observed
    assert "(revision 100, in /b on bk1)" in verdict.observed
    assert (verdict.fix == "") == (status == "ok")
    if status != "ok":
        assert "etcd_backup.yml -e etcd_backup_cluster=c1" in verdict.fix


def test_snapshot_age_reads_in_human_units_and_says_the_threshold():
    assert " is 1h5m old " in age_verdict(listing(3900)).observed
    warn = age_verdict(listing(3 * HOUR + 120))
    assert " is 3h2m old " in warn.observed and warn.observed.endswith(", older than 2 h")
    critical = age_verdict(listing(2 * DAY + 5 * HOUR))
    assert " is 2d5h old " in critical.observed and critical.observed.endswith(", older than 25 h")


def test_custom_snapshot_thresholds_and_their_order():
    options = cc.CheckOptions(etcd_snapshot_warn_hours=0.5, etcd_snapshot_critical_hours=1.5)
    assert age_verdict(listing(1800), options).status == "warn"
    assert age_verdict(listing(2 * HOUR), options).observed.endswith("older than 1.5 h")
    with pytest.raises(cc.CheckError, match="etcd_snapshot_critical_hours: 1 is less than etcd_snapshot_warn_hours"):
        cc.CheckOptions(etcd_snapshot_warn_hours=2, etcd_snapshot_critical_hours=1)
    with pytest.raises(cc.CheckError, match="etcd_snapshot_warn_hours: expected a number"):
        cc.CheckOptions(etcd_snapshot_warn_hours=-1)


def test_no_directory_is_a_warning_saying_where_and_how_to_set_backups_up():
    verdict = age_verdict(listing(exists=False))
    assert verdict.status == "warn"
    assert verdict.observed.startswith("no snapshot directory /b on bk1: etcd backups are not kept there")
    assert "Run playbooks/etcd_backup.yml -e etcd_backup_cluster=c1 now and schedule it" in verdict.fix
    assert "check_etcd_backup_dir" in verdict.fix and "check_etcd_backup_host" in verdict.fix


def test_no_verified_snapshot_is_critical():
    none = age_verdict(listing())
    assert none.status == "critical" and none.observed == "no snapshot of c1 in /b on bk1: there is nothing to " \
        "restore from"
    assert none.fix.startswith("Run playbooks/etcd_backup.yml -e etcd_backup_cluster=c1 now and schedule it")
    bad = age_verdict(listing(count=3, verified=0))
    assert bad.status == "critical" and bad.observed.startswith("none of the 3 snapshots of c1 in /b on bk1 verifies")


def test_snapshots_that_do_not_verify_are_said_beside_a_good_one():
    verdict = age_verdict(listing(600, count=5, verified=3))
    assert verdict.status == "ok" and verdict.observed.endswith("; 2 of its 5 snapshots there do not verify")


def test_a_listing_that_failed_or_a_backup_host_that_did_not_answer_is_critical():
    failed = age_verdict({"failed": True, "msg": "/b: not a directory. Fix: give the directory", "exists": False})
    assert failed.status == "critical"
    assert failed.observed == "cannot list the snapshots in /b on bk1: /b: not a directory. Fix: give the directory"
    assert "Check that bk1 answers" in failed.fix
    gone = age_verdict({"unreachable": True, "msg": "ssh: connect to host bk1 port 22: No route to host"})
    assert gone.status == "critical" and "No route to host" in gone.observed


def test_the_directory_defaults_to_the_listings_path():
    verdict = cc.etcd_snapshot_age("c1", listing(exists=False), OPTIONS)
    assert verdict.observed.startswith("no snapshot directory /b: ")


# --------------------------------------------------------------------------- load balancers

STAT_HEADER = "# pxname,svname,qcur,status,weight"


def lb(haproxy="active", keepalived="active", addresses=("172.30.0.14",), stat=None):
    rows = stat if stat is not None else [STAT_HEADER, "kube-apiserver,FRONTEND,,OPEN,", "kube-apiserver,cp1,0,UP,1",
                                          "kube-apiserver,cp2,0,UP,1", "kube-apiserver,BACKEND,0,UP,2"]
    return out("haproxy=" + haproxy, "keepalived=" + keepalived, "--- addresses",
               *["2: eth0    inet %s/24 brd x scope global eth0\\       valid_lft forever" % a for a in addresses],
               "--- stat", *rows, "")


def test_haproxy_backends():
    assert cc.haproxy_backends("lb1", lb()).observed == "2 of 2 backends up"
    some = cc.haproxy_backends("lb1", lb(stat=[STAT_HEADER, "kube-apiserver,cp1,0,UP,1",
                                               "kube-apiserver,cp2,0,DOWN,1"]))
    assert (some.status, some.observed) == ("warn", "1 of 2 backends up; down: cp2 (DOWN)")
    none = cc.haproxy_backends("lb1", lb(stat=[STAT_HEADER, "kube-apiserver,cp1,0,DOWN,1",
                                               "kube-apiserver,cp2,0,MAINT,1"]))
    assert none.status == "critical"
    stopped = cc.haproxy_backends("lb1", lb(haproxy="inactive", stat=["ConnectionRefusedError: [Errno 111]"]))
    assert (stopped.status, stopped.observed) == ("critical", "HAProxy is inactive")
    assert "systemctl start haproxy" in stopped.fix
    unreadable = cc.haproxy_backends("lb1", lb(stat=["FileNotFoundError: [Errno 2] No such file or directory"]))
    assert unreadable.observed == "cannot read HAProxy's stats: FileNotFoundError: [Errno 2] No such file or directory"


def test_exactly_one_vip_holder():
    vip = "172.30.0.100"
    one = cc.vip_holder("c1", vip, ["lb1", "lb2"], {"lb1": lb(addresses=("172.30.0.14", vip)), "lb2": lb()})
    assert (one.status, one.observed) == ("ok", "lb1 holds the VIP 172.30.0.100")
    none = cc.vip_holder("c1", vip, ["lb1", "lb2"], {"lb1": lb(), "lb2": lb(keepalived="failed")})
    assert none.status == "critical" and none.observed == \
        "no load balancer holds the VIP 172.30.0.100; keepalived not running on lb2 (failed)"
    both = cc.vip_holder("c1", vip, ["lb1", "lb2"], {"lb1": lb(addresses=(vip,)), "lb2": lb(addresses=(vip,))})
    assert both.status == "critical" and both.observed.startswith("split brain: lb1, lb2 all hold")
    no_failover = cc.vip_holder("c1", vip, ["lb1", "lb2"],
                                {"lb1": lb(addresses=(vip,)), "lb2": lb(keepalived="inactive")})
    assert no_failover.status == "warn"
    gone = cc.vip_holder("c1", vip, ["lb1", "lb2"], {"lb1": lb(addresses=(vip,)), "lb2": {"unreachable": True}})
    assert (gone.status, gone.observed) == ("ok", "lb1 holds the VIP 172.30.0.100; not probed: lb2")


# --------------------------------------------------------------------------- DNS and the pod network


def test_coredns_answers():
    ok = cc.coredns_answers("cp1", out("server=10.96.0.10", "name=kubernetes.default.svc.cluster.local", "rcode=0",
                                       "answers=10.96.0.1"))
    assert (ok.status, ok.observed) == ("ok", "10.96.0.10 answered kubernetes.default.svc.cluster.local -> 10.96.0.1")
    timeout = cc.coredns_answers("cp1", out("server=10.96.0.10", "name=kubernetes.default.svc.cluster.local",
                                            "error=timed out"))
    assert timeout.status == "critical" and timeout.observed.endswith(": timed out")
    nxdomain = cc.coredns_answers("cp1", out("server=10.96.0.10", "name=kubernetes.default.svc.x", "rcode=3",
                                             "answers="))
    assert nxdomain.status == "critical" and "rcode 3" in nxdomain.observed


def test_pod_network():
    line = "target\tcoredns-a\tcp1\t10.244.0.3\t%s\t%s\t%s"
    ok = cc.pod_network("w1", out(line % (200, 0, "")))
    assert (ok.status, ok.observed) == ("ok", "reached 1 of 1 CoreDNS pods on other nodes (coredns-a on cp1)")
    half = cc.pod_network("w1", out(line % (200, 0, ""), (line % ("000", 28, "Connection timed out after 3001 ms"))
                                    .replace("coredns-a", "coredns-b")))
    assert half.status == "warn"
    assert "no answer from coredns-b on cp1 (10.244.0.3: Connection timed out" in half.observed
    # Any HTTP answer is traffic that crossed the mesh both ways, even a 503.
    assert cc.pod_network("w1", out(line % (503, 0, ""))).status == "ok"
    assert cc.pod_network("w1", out(line % ("000", 7, "Failed to connect"))).status == "critical"
    assert cc.pod_network("w1", out("no targets")) is None


# --------------------------------------------------------------------------- WireGuard and certificates


def node_out(handshakes, now=NOW, peers=("n2", "n3")):
    config = [line for peer in peers for line in ("# %s" % peer, "PublicKey = K%s=" % peer)]
    return out("ping=10.245.0.2:0", "containerd=active", "kubelet=active", "--- wireguard peers", *config,
               "--- wireguard handshakes", *("K%s=\t%d" % item for item in handshakes.items()), now=now)


def test_wireguard_handshakes_on_the_hosts_clock():
    recent = cc.wireguard_handshakes("n1", node_out({"n2": NOW - 5, "n3": NOW - 100}), ["n2", "n3"], OPTIONS)
    assert (recent.status, recent.observed) == ("ok", "recent handshake (within 180 s) with 2 of 2 peers")
    some = cc.wireguard_handshakes("n1", node_out({"n2": NOW - 5, "n3": 0}), ["n2", "n3"], OPTIONS)
    assert (some.status, some.observed) == ("warn", "recent handshake (within 180 s) with 1 of 2 peers; "
                                                    "stale: n3 (never)")
    stale = cc.wireguard_handshakes("n1", node_out({"n2": NOW - 500, "n3": NOW - 600}), ["n2", "n3"], OPTIONS)
    assert stale.status == "critical" and "n2 (500 s ago)" in stale.observed
    # A host whose clock is off still judges its own handshakes right.
    skewed = cc.wireguard_handshakes("n1", node_out({"n2": NOW + 3595, "n3": NOW + 3500}, now=NOW + 3600),
                                     ["n2", "n3"], OPTIONS)
    assert skewed.status == "ok"


def test_a_peer_missing_from_the_mesh_and_a_host_without_a_mesh():
    missing = cc.wireguard_handshakes("n1", node_out({"n2": NOW}, peers=("n2",)), ["n2", "n3"], OPTIONS)
    assert missing.status == "warn" and "n3 (not a peer of the live interface)" in missing.observed
    none = cc.wireguard_handshakes("n1", out("containerd=active", "kubelet=active", "--- wireguard peers",
                                             "--- wireguard handshakes"), ["n2"], OPTIONS)
    assert none.status == "critical" and "wireguard role" in none.fix


def certs(*entries):
    return out(*("%s\t%s" % entry for entry in entries))


def test_certificates_expiry():
    ok = cc.certificates("cp1", certs(("/etc/kubernetes/pki/apiserver.crt", int(NOW + 300 * DAY)),
                                      ("/etc/kubernetes/pki/ca.crt", int(NOW + 3000 * DAY))), NOW, OPTIONS)
    assert ok.status == "ok" and ok.observed.startswith("2 certificates, the first to expire: "
                                                        "/etc/kubernetes/pki/apiserver.crt expires ")
    soon = cc.certificates("cp1", certs(("/etc/kubernetes/admin.conf", int(NOW + 20 * DAY))), NOW, OPTIONS)
    assert soon.status == "warn" and "in 20 days" in soon.observed and "kubeadm certs renew all" in soon.fix
    week = cc.certificates("w1", certs(("/var/lib/kubelet/pki/kubelet-client-current.pem", int(NOW + 3 * DAY))),
                           NOW, OPTIONS)
    assert week.status == "critical" and "rotation" in week.fix
    expired = cc.certificates("w1", certs(("/var/lib/kubelet/pki/kubelet.crt", int(NOW - 2 * DAY))), NOW, OPTIONS)
    assert expired.status == "critical" and "expired" in expired.observed and "2 days ago" in expired.observed


def test_unreadable_and_missing_certificates_are_warnings():
    unreadable = cc.certificates("w1", certs(("/var/lib/kubelet/pki/kubelet.crt", "unreadable")), NOW, OPTIONS)
    assert unreadable.status == "warn" and "unreadable: /var/lib/kubelet/pki/kubelet.crt" in unreadable.observed
    assert cc.certificates("w1", out(), NOW, OPTIONS).status == "warn"


def test_custom_thresholds():
    options = cc.CheckOptions(cert_warn_days=60, cert_critical_days=45)
    verdict = cc.certificates("w1", certs(("/var/lib/kubelet/pki/kubelet.crt", int(NOW + 50 * DAY))), NOW, options)
    assert verdict.status == "warn"


# --------------------------------------------------------------------------- the whole cluster and the report


def cluster_probes(host, roles):
    probes = {"node": node_out({p: NOW for p in ("cp1", "w1", "lb1") if p != host}, peers=[
        p for p in ("cp1", "w1", "lb1") if p != host])}
    if "load_balancer" in roles:
        probes["load_balancer"] = lb(addresses=("10.0.0.100",))
    if set(roles) & set(cc.NODE_ROLES):
        probes["certificates"] = certs(("/var/lib/kubelet/pki/kubelet.crt", int(NOW + 300 * DAY)))
        probes["pod_network"] = out("target\tcoredns-a\tcp1\t10.244.0.3\t200\t0\t") if host != "cp1" else \
            out("no targets")
    if "control_plane" in roles:
        probes["readyz"] = out("readyz check passed", "http_code=200")
        probes["dns"] = out("server=10.96.0.10", "name=kubernetes.default.svc.cluster.local", "rcode=0",
                            "answers=10.96.0.1")
    # As check.yml registers them: loop results with item.name.
    return [{"results": [dict(result, item={"name": name}) for name, result in probes.items()]}]


API = {"nodes": [node("cp1"), node("w1")], "leases": [lease("cp1"), lease("w1")], "error": "",
       "readyz": {"server": "https://10.0.0.100:6443", "status": 200, "body": "ok", "error": ""}}


def test_a_healthy_cluster_is_all_ok_and_says_what_was_not_checked():
    probes = {host: cluster_probes(host, m["roles"]) for host, m in MEMBERS.items()}
    report = cc.assess_cluster("c1", MEMBERS, probes, now=NOW, api=API, etcd={"cp1": etcd_info([member("cp1")])},
                               vip="10.0.0.100")
    assert report["overall"] == "ok" and report["counts"] == {"ok": 20, "warn": 0, "critical": 0, "total": 20}
    names = [v["name"] for v in report["verdicts"]]
    assert sorted(set(names)) == sorted(["host_reachable", "node_ready", "api_server_ready", "api_vip_ready",
                                         "etcd_health", "etcd_leader", "etcd_alarms", "etcd_db_size",
                                         "haproxy_backends", "vip_holder", "coredns_answers", "pod_network",
                                         "wireguard_handshakes", "certificates"])
    assert report["not_checked"] == [cc.BACKUPS_OFF, "pod network from cp1: no running CoreDNS pod on another "
                                     "node to reach"]
    assert report["not_checked"][0].startswith("etcd snapshot age: no snapshot directory was given")
    assert report["lines"][:2] == ["cluster c1: OK - 20 verdicts: 0 critical, 0 warn, 20 ok", "20 ok"]
    assert all(v["cluster"] == "c1" for v in report["verdicts"])


def test_the_snapshot_age_is_a_verdict_of_the_cluster_when_the_listing_is_given():
    probes = {host: cluster_probes(host, m["roles"]) for host, m in MEMBERS.items()}
    report = cc.assess_cluster("c1", MEMBERS, probes, now=NOW, api=API, etcd={"cp1": etcd_info([member("cp1")])},
                               vip="10.0.0.100", etcd_backup=listing(600), etcd_backup_dir="/b",
                               etcd_backup_host="localhost")
    ages = [v for v in report["verdicts"] if v["name"] == "etcd_snapshot_age"]
    assert [(v["target"], v["status"]) for v in ages] == [("cluster/c1", "ok")]
    assert "in /b on localhost" in ages[0]["observed"]
    assert report["counts"]["total"] == 21 and not any("snapshot" in n for n in report["not_checked"])
    late = cc.assess_cluster("c1", MEMBERS, probes, now=NOW, api=API, etcd={"cp1": etcd_info([member("cp1")])},
                             vip="10.0.0.100", etcd_backup=listing(30 * HOUR),
                             options=cc.CheckOptions(etcd_snapshot_critical_hours=48))
    assert late["overall"] == "warn" and late["lines"][1].startswith("WARN etcd_snapshot_age cluster/c1: newest")
    skipped = cc.assess_cluster("c1", MEMBERS, probes, now=NOW, api=API, etcd={"cp1": etcd_info([member("cp1")])},
                                vip="10.0.0.100", etcd_backup={"skipped": True, "changed": False})
    assert cc.BACKUPS_OFF in skipped["not_checked"]


def test_an_unreachable_host_is_one_critical_verdict_and_its_host_checks_are_left_out():
    probes = {host: cluster_probes(host, m["roles"]) for host, m in MEMBERS.items()}
    probes["w1"] = [{"results": [{"item": {"name": "node"}, "unreachable": True, "msg": "ssh: connect refused"}]}]
    report = cc.assess_cluster("c1", MEMBERS, probes, now=NOW, api=API, etcd={"cp1": etcd_info([member("cp1")])},
                               vip="10.0.0.100")
    w1 = [(v["name"], v["status"]) for v in report["verdicts"] if v["target"] in ("host/w1", "node/w1")]
    assert w1 == [("host_reachable", "critical"), ("node_ready", "ok")]
    assert report["overall"] == "critical"
    assert report["lines"][1].startswith("CRITICAL host_reachable host/w1: the host did not answer")


def test_the_report_lists_critical_then_warnings_then_the_oks():
    verdicts = [cc.Verdict("a", "x", "warn", "w", "fix w"), cc.Verdict("b", "y", "ok", "fine"),
                cc.Verdict("c", "z", "critical", "down", "fix c")]
    report = cc.report("c1", verdicts, ["snapshots: not built"])
    assert report["lines"] == ["cluster c1: CRITICAL - 3 verdicts: 1 critical, 1 warn, 1 ok",
                               "CRITICAL c z: down. Fix: fix c", "WARN a x: w. Fix: fix w", "1 ok",
                               "not checked: snapshots: not built"]
    assert cc.worst([]) == "ok" and cc.worst(["ok", "warn"]) == "warn"


def test_spare_retired_and_failed_servers_are_not_expected():
    members = dict(MEMBERS, s1={"roles": ["worker"], "state": "retired"}, s2={"roles": ["worker"], "state": "failed"})
    probes = {host: cluster_probes(host, m["roles"]) for host, m in MEMBERS.items()}
    report = cc.assess_cluster("c1", members, probes, now=NOW, api=API, etcd={"cp1": etcd_info([member("cp1")])},
                               vip="10.0.0.100")
    assert not [v for v in report["verdicts"] if v["target"].endswith(("/s1", "/s2"))]


def test_a_probe_that_did_not_run_on_a_host_that_answered_is_critical():
    probes = {host: cluster_probes(host, m["roles"]) for host, m in MEMBERS.items()}
    results = probes["cp1"][0]["results"]
    probes["cp1"] = [{"results": [r if r["item"]["name"] != "readyz" else
                                  {"item": {"name": "readyz"}, "unreachable": True, "msg": "connection reset"}
                                  for r in results]}]
    report = cc.assess_cluster("c1", MEMBERS, probes, now=NOW, api=API, etcd={"cp1": etcd_info([member("cp1")])},
                               vip="10.0.0.100")
    readyz = next(v for v in report["verdicts"] if v["name"] == "api_server_ready")
    assert (readyz["status"], readyz["observed"]) == ("critical", "its probe did not run: connection reset")
