# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/check.yml run for real with ansible-playbook on an inventory whose hosts do not answer (ssh to a
closed port) and whose kubeconfig does not exist: every problem is a critical verdict in the summary, the
verdicts are published, the job fails only at its end, and nothing changes (also under --check). The etcd
snapshots are listed in a directory made here: none there is a warning, a fresh one ok, an empty
check_etcd_backup_dir is not checked. The dev lab proves the healthy path (docs/check.md)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import yaml
from etcd_gateway import write_snapshot
from fleet_samples import ansible_env, small_fleet, write_fleet

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BIN = os.path.dirname(sys.executable)


def inventory(tmp_path):
    inv = tmp_path / "inv"
    (inv / "group_vars" / "all").mkdir(parents=True)
    write_fleet(inv, small_fleet(servers=4))
    config = {"plugin": "baremetal.k8s.fleet", "fleet_file": "fleet.yml"}
    (inv / "fleet.baremetal.yml").write_text(yaml.safe_dump(config))
    (inv / "group_vars" / "all" / "test.yml").write_text(yaml.safe_dump({
        "ansible_host": "127.0.0.1", "ansible_port": 1, "ansible_connection": "ssh", "ansible_timeout": 3,
        "bmk8s_kubeconfig": str(tmp_path / "absent.kubeconfig")}))
    return inv


def check(inv, *args):
    proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", str(inv),
                           os.path.join(REPO, "playbooks", "check.yml"), *args],
                          env=ansible_env(ANSIBLE_NOCOLOR="1", ANSIBLE_SHOW_CUSTOM_STATS="1",
                                          ANSIBLE_CALLBACK_RESULT_FORMAT="json"),
                          capture_output=True, text=True, check=False, timeout=300)  # fmt: skip
    return proc.returncode, proc.stdout + proc.stderr


def changed_total(out):
    return sum(int(n) for n in re.findall(r"changed=(\d+)", out))


def published_verdict(out, name):
    """The verdict NAME as set_stats published it (the custom stats at the end of the output)."""
    stats = json.loads(out[out.rindex("CUSTOM STATS"):].split(":", 1)[1].split("RUN:", 1)[1].strip())
    return next(v for v in stats["check"]["verdicts"] if v["name"] == name)


def test_hosts_that_do_not_answer_are_critical_verdicts_not_a_crash(tmp_path):
    inv = inventory(tmp_path)
    before = sorted(os.listdir(inv))
    rc, out = check(inv, "-e", "check_fleet=%s" % (inv / "fleet.yml"),
                    "-e", "check_etcd_backup_dir=%s" % (tmp_path / "backups"))
    assert rc != 0, out
    flat = " ".join(out.split())
    assert "cluster c1: CRITICAL" in flat
    for host in ("s00", "s01", "s02", "s03"):
        assert "CRITICAL host_reachable host/%s: the host did not answer" % host in flat
    assert "CRITICAL node_ready cluster/c1: cannot read the Nodes: kubeconfig: file" in flat
    assert "CRITICAL etcd_health cluster/c1: no control plane's etcd answered" in flat
    assert ("WARN etcd_snapshot_age cluster/c1: no snapshot directory %s on localhost: etcd backups are not kept "
            "there" % (tmp_path / "backups")) in flat
    assert "Fix: Run playbooks/etcd_backup.yml -e etcd_backup_cluster=c1 now and schedule it" in flat
    assert "not checked: etcd snapshot age" not in flat
    assert "check.yml: " in flat and "critical verdicts: host_reachable host/s00" in flat
    # Published for AWX before the job failed.
    assert '"overall": "critical"' in flat and '"not_checked"' in flat
    assert changed_total(out) == 0
    # Only the inventory plugin writes: its allocation ledger on the first read of a new fleet.
    assert set(os.listdir(inv)) - set(before) <= {"fleet.allocations.json", "fleet.allocations.json.lock"}


def test_check_mode_runs_the_same_checks(tmp_path):
    inv = inventory(tmp_path)
    (tmp_path / "backups").mkdir()
    snapshot = write_snapshot(tmp_path / "backups", taken_at=time.time() - 1800, revision=77)
    rc, out = check(inv, "-e", "check_fleet=%s" % (inv / "fleet.yml"), "--check",
                    "-e", "check_etcd_backup_dir=%s" % (tmp_path / "backups"))
    assert rc != 0 and "CRITICAL host_reachable host/s00" in " ".join(out.split())
    assert changed_total(out) == 0
    age = published_verdict(out, "etcd_snapshot_age")
    assert (age["status"], age["target"], age["fix"]) == ("ok", "cluster/c1", ""), age
    assert age["observed"].startswith("newest verified snapshot %s is 30m" % os.path.basename(snapshot)), age
    assert age["observed"].endswith("(revision 77, in %s on localhost)" % (tmp_path / "backups")), age


def test_a_backup_host_that_does_not_answer_is_a_critical_verdict(tmp_path):
    inv = inventory(tmp_path)
    rc, out = check(inv, "-e", "check_fleet=%s" % (inv / "fleet.yml"), "-e", "check_etcd_backup_host=s00",
                    "-e", "check_etcd_backup_dir=/srv/etcd")
    assert rc != 0 and "cluster c1: CRITICAL" in " ".join(out.split()), out
    age = published_verdict(out, "etcd_snapshot_age")
    assert age["status"] == "critical", age
    assert age["observed"].startswith("cannot list the snapshots in /srv/etcd on s00: "), age
    assert "Check that s00 answers" in age["fix"]
    assert changed_total(out) == 0


def test_an_empty_backup_dir_is_not_checked(tmp_path):
    inv = inventory(tmp_path)
    rc, out = check(inv, "-e", "check_fleet=%s" % (inv / "fleet.yml"), "-e", "check_etcd_backup_dir=")
    flat = " ".join(out.split())
    assert rc != 0 and "not checked: etcd snapshot age: no snapshot directory was given" in flat
    assert "etcd_snapshot_age" not in flat
    rc, out = check(inv, "-e", "check_fleet=%s" % (inv / "fleet.yml"), "-e", "check_etcd_backup_dir=backups",
                    "-e", "check_etcd_backup_host=nowhere")
    assert rc != 0 and "check_etcd_backup_dir=backups is not an absolute path" in out
    assert "check_etcd_backup_host=nowhere is not a host of the inventory" in out


def test_the_fleet_file_must_be_named_and_the_cluster_known(tmp_path):
    inv = inventory(tmp_path)
    rc, out = check(inv)
    assert rc != 0 and "check.yml: name the fleet file: -e check_fleet=PATH" in out
    rc, out = check(inv, "-e", "check_fleet=%s" % (inv / "fleet.yml"), "-e", "check_cluster=nope")
    assert rc != 0 and "check_cluster=nope is not a cluster of the inventory" in out
    assert json.dumps("Nothing was checked")[1:-1] in out
