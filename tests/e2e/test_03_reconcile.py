# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""L3: playbooks/reconcile.yml on the converged lab cluster, for real (docs/reconcile.md).

Drift made by hand on the cluster site.yml converged, of six kinds (a kernel parameter on a worker, an
edit to containerd's configuration, a WireGuard peer removed from a live interface, HAProxy stopped on a
load balancer, a taint added to a Node, a node-group label removed from a Node), is reported exactly,
each item with its desired and observed value, and fail_on_drift fails the job; check.yml turns two of
them into verdicts with their fixes; fix mode repairs it. The next report, over every host and Node of
the cluster as site.yml left it, finds nothing and changes nothing, and check.yml is all ok: the report
has no false positives (one report serves both proofs, which saves a run of the whole report).
"""

from __future__ import annotations

import json
import os
import re

import pytest

pytestmark = [pytest.mark.lab]

# The lab's worker node group declares this label (lab/lab.py's fleet file).
GROUP_LABEL = ("baremetal.k8s/pool", "edge")
TAINT = "reconcile-test=by-hand:NoSchedule"


def reconcile(lab, tmp_path, *args):
    """reconcile.yml on the lab; the run and its JSON report."""
    report_file = tmp_path / ("report-%d.json" % len(list(tmp_path.iterdir())))
    run = lab.playbook("reconcile.yml", "-e", "reconcile_fleet=" + lab.fleet_file,
                       "-e", "reconcile_report_file=%s" % report_file, *args)
    report = json.loads(report_file.read_text()) if report_file.exists() else None
    return run, report


def items(report):
    return [item for cluster in report["clusters"] for item in cluster["items"]]


def check(lab):
    """check.yml on the lab (read-only): the run. The lab has no etcd backups before test_07, so the snapshot
    age is not checked here (an empty check_etcd_backup_dir)."""
    return lab.playbook("check.yml", "-e", "check_fleet=" + lab.fleet_file, "-e", "check_etcd_backup_dir=")


def verdict_line(run, status, name, target):
    """The summary line of one verdict, e.g. CRITICAL haproxy_backends host/node-5: ... Fix: ... (the output's
    YAML wraps long lines: they are joined first; the line ends where the next list item starts)."""
    text = re.sub(r"\n\s+", " ", run.output)
    found = re.search(r"\b%s %s %s: (.*?)(?: - '|\n|$)" % (status, name, re.escape(target)), text)
    return found.group(0) if found else None


def changed(run):
    return {host: counts["changed"] for host, counts in run.recap.items() if counts["changed"]}


@pytest.fixture
def drift_by_hand(lab):
    """Six kinds of drift made on the live lab; whatever a failed test leaves is put back afterwards."""
    worker, lb_worker = lab.hosts()[3], lab.hosts()[4]
    peer_host, peer = lab.hosts()[1], lab.hosts()[2]
    peer_key = lab.sh(peer, "wg show wg0 public-key").stdout.strip()
    made = [
        lab.sh(worker, "sysctl -w net.ipv6.conf.all.forwarding=0"),
        lab.sh(lb_worker, "echo '# tuned by hand' >> /etc/containerd/config.toml"),
        lab.sh(peer_host, "wg set wg0 peer %s remove" % peer_key),
        lab.sh(lb_worker, "systemctl stop haproxy"),
    ]
    assert all(r.returncode == 0 for r in made), [r.stderr for r in made]
    lab.kubectl(lab.hosts()[0], "taint node", worker, TAINT)
    lab.kubectl(lab.hosts()[0], "label node", lb_worker, GROUP_LABEL[0] + "-")
    yield {"worker": worker, "lb_worker": lb_worker, "peer_host": peer_host, "peer": peer}
    lab.sh(worker, "sysctl -w net.ipv6.conf.all.forwarding=1")
    lab.sh(lb_worker, "sed -i '/^# tuned by hand$/d' /etc/containerd/config.toml && systemctl start haproxy")
    lab.sh(peer_host, "systemctl restart wg-quick@wg0")
    lab.kubectl(lab.hosts()[0], "taint node", worker, TAINT + "-", check=False)
    lab.kubectl(lab.hosts()[0], "label --overwrite node", lb_worker, "=".join(GROUP_LABEL), check=False)


def test_drift_made_by_hand_is_reported_exactly_then_fixed(lab, first_run, tmp_path, drift_by_hand):
    hand = drift_by_hand
    run, report = reconcile(lab, tmp_path, "-e", "fail_on_drift=true")
    assert run.rc != 0, "fail_on_drift=true with drift must fail the job"
    assert "fail_on_drift" in run.output
    # Check mode counts what would change as changed, on the drifted hosts only; nothing did change.
    assert set(changed(run)) <= {hand["worker"], hand["lb_worker"], hand["peer_host"]}, changed(run)
    assert lab.sh(hand["lb_worker"], "systemctl is-active haproxy").stdout.strip() != "active"
    assert lab.sh(hand["worker"], "sysctl -n net.ipv6.conf.all.forwarding").stdout.strip() == "0"
    found = items(report)
    print("\n".join("%s %s: %s -> %s" % (i["target"], i["what"], i["observed"], i["desired"]) for i in found))
    expected = {
        ("host/" + hand["worker"], "net.ipv6.conf.all.forwarding"),
        ("host/" + hand["lb_worker"], "Write the containerd configuration"),
        ("host/" + hand["peer_host"], "peer " + hand["peer"]),
        ("host/" + hand["lb_worker"], "(haproxy)"),
        ("node/" + hand["worker"], "taint reconcile-test"),
        ("node/" + hand["lb_worker"], "label " + GROUP_LABEL[0]),
    }
    matched = {key for key in expected for i in found if i["target"] == key[0] and key[1] in i["what"]}
    assert matched == expected, "missing: %s" % (expected - matched)
    assert len(found) == len(expected), "items nobody made: %s" % [
        i for i in found if not any(i["target"] == t and w in i["what"] for t, w in expected)]
    for item in found:
        assert item["desired"] not in (None, "") and item["observed"] not in (None, ""), item
    sysctl = next(i for i in found if "net.ipv6.conf.all.forwarding" in i["what"])
    assert (sysctl["desired"], sysctl["observed"]) == ("1", "0")

    # While they last, the checker turns the HAProxy and WireGuard faults into verdicts with their fixes.
    checked = check(lab)
    assert checked.rc != 0, "a stopped HAProxy is critical: check.yml must fail"
    haproxy = verdict_line(checked, "CRITICAL", "haproxy_backends", "host/" + hand["lb_worker"])
    wireguard = verdict_line(checked, "(WARN|CRITICAL)", "wireguard_handshakes", "host/" + hand["peer_host"])
    assert haproxy and "Fix:" in haproxy, checked.output[-3000:]
    assert wireguard and "Fix:" in wireguard and hand["peer"] in wireguard, checked.output[-3000:]
    assert changed(checked) == {}, "check.yml changed something"

    run, fixed = reconcile(lab, tmp_path, "-e", "reconcile_mode=fix")
    assert run.rc == 0, "reconcile.yml fix failed"
    assert sorted(fixed["fixed_hosts"]) == sorted({hand["worker"], hand["lb_worker"], hand["peer_host"]})
    # The drifted hosts, and the control plane that patches the Nodes' labels and taints.
    assert set(changed(run)) <= {hand["worker"], hand["lb_worker"], hand["peer_host"], lab.hosts()[0]}

    # The cluster is as site.yml converged it again: nothing to report anywhere, nothing changed.
    run, after = reconcile(lab, tmp_path)
    assert run.rc == 0 and after["total"] == 0, items(after)
    assert after["mode"] == "report" and not after["drift"]
    assert changed(run) == {}, "report mode changed something"
    print("report on the converged cluster: %s s" % after["seconds"])
    assert lab.sh(hand["lb_worker"], "systemctl is-active haproxy").stdout.strip() == "active"
    assert lab.sh(hand["worker"], "sysctl -n net.ipv6.conf.all.forwarding").stdout.strip() == "1"
    assert hand["peer"] and lab.sh(hand["peer_host"], "wg show wg0 peers").stdout.count("\n") == len(lab.hosts()) - 1
    node = lab.node(hand["worker"])
    assert not any(t["key"] == "reconcile-test" for t in node["spec"].get("taints") or [])
    assert lab.node(hand["lb_worker"])["metadata"]["labels"].get(GROUP_LABEL[0]) == GROUP_LABEL[1]
    assert os.path.exists(lab.fleet_file)

    checked = check(lab)
    assert checked.rc == 0, "check.yml is not all ok on the converged cluster"
    assert re.search(r"cluster \S+: OK - \d+ verdicts: 0 critical, 0 warn", checked.output), "check.yml not all ok"
    assert changed(checked) == {}, "check.yml changed something"
