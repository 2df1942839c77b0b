# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""L3: etcd_backup.yml, etcd_restore.yml and etcd_restore_check.yml on the lab cluster, for real (docs/etcd.md).

A backup while one control plane's etcd is down comes from a healthy member and lands off the node, with
the sealed PKI beside it. Marker ConfigMaps are snapshotted, then deleted and a new object made; the
restore refuses without its confirmation, refuses a snapshot with a flipped byte and changes nothing under
--check, each time before anything stops. Then etcd is destroyed on all three control planes (kubelet
stopped, etcd and the API servers stopped, the data removed) and etcd_restore.yml brings the
cluster back: the markers are there, the new object is gone, three healthy voting members, every node
Ready, the kube-system pods running. The test prints the restore's time to a healthy cluster (RTO).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import time

import pytest
import yaml
from etcd_gateway import flip  # tests/unit, on sys.path: tests/e2e/conftest.py

import lab as lab_tool  # on sys.path: tests/e2e/conftest.py

pytestmark = [pytest.mark.lab]

PKI_KEY = "lab-backup-passphrase-0123456789"  # the operator's passphrase (in production: the vault)
MARKERS = ("bmk8s-marker-1", "bmk8s-marker-2")
AFTER = "bmk8s-made-after-the-snapshot"


@pytest.fixture(scope="module")
def backup_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("etcd-backups"))


def backup(lab, backup_dir, *args):
    return lab.playbook("etcd_backup.yml", "-e", "etcd_backup_dir=" + backup_dir,
                        "-e", "etcd_backup_pki_key=" + PKI_KEY, *args)


def restore(lab, backup_dir, *args):
    return lab.playbook("etcd_restore.yml", "-e", "etcd_restore_cluster=" + lab.name,
                        "-e", "etcd_backup_dir=" + backup_dir, "-e", "etcd_restore_pki_key=" + PKI_KEY, *args)


def text(run):
    """The run's output with the YAML callback's wrapped lines joined."""
    return re.sub(r"\n\s+", " ", run.output)


def snapshots(backup_dir):
    return sorted(name for name in os.listdir(backup_dir) if name.endswith(".db"))


def damaged_copy(backup_dir, good, name):
    """A copy of snapshot GOOD named NAME, its manifest beside it, with a byte flipped; NAME."""
    shutil.copyfile(os.path.join(backup_dir, good), os.path.join(backup_dir, name))
    shutil.copyfile(os.path.join(backup_dir, good + ".json"), os.path.join(backup_dir, name + ".json"))
    flip(os.path.join(backup_dir, name), 8192)
    return name


def running(lab, host, name):
    """The running containers of the static pod NAME (kube-system: test_02's client pod has an etcd container)."""
    return lab.sh(host, "crictl ps -q --state running --name '^%s$' --label io.kubernetes.pod.namespace=kube-system"
                  % name).stdout.split()


def wait_for(what, check, timeout=240):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(3)


def control_planes(lab):
    return lab.hosts()[:3]


def untouched(lab):
    """Nothing was stopped: etcd and the API server run on every control plane, their manifests in place."""
    for host in control_planes(lab):
        assert running(lab, host, "etcd") and running(lab, host, "kube-apiserver"), host
        assert lab.sh(host, "test -f /etc/kubernetes/manifests/etcd.yaml").returncode == 0, host


def test_backup_with_one_etcd_member_down_comes_from_a_healthy_one(lab, first_run, backup_dir):
    first = control_planes(lab)[0]
    assert lab.sh(first, "mv /etc/kubernetes/manifests/etcd.yaml /root/etcd.yaml.held").returncode == 0
    try:
        wait_for("etcd to stop on " + first, lambda: not running(lab, first, "etcd"))
        run = backup(lab, backup_dir)
    finally:
        lab.sh(first, "mv /root/etcd.yaml.held /etc/kubernetes/manifests/etcd.yaml")
    assert run.rc == 0, "etcd_backup.yml failed with one member down"
    line = re.search(r"cluster %s: (\S+) \(revision \d+, [\d.]+ MB\) from (\S+), stored in" % lab.name, text(run))
    assert line, run.output[-3000:]
    assert line.group(2) != first, "the snapshot came from the member that was down"
    name = line.group(1)
    assert snapshots(backup_dir) == [name]
    for suffix in (".db", ".db.json", ".pki"):
        path = os.path.join(backup_dir, name[:-3] + suffix)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    with open(os.path.join(backup_dir, name + ".json"), encoding="utf-8") as handle:
        manifest = json.load(handle)
    assert manifest["etcd_hash_ok"] and manifest["cluster"] == lab.name and manifest["pki_bundle"]
    assert PKI_KEY not in run.output, "the passphrase is in the job's output"
    wait_for("etcd on %s to rejoin" % first, lambda: len(running(lab, first, "etcd")) > 0)
    wait_for("three healthy members", lambda: "false" not in lab.etcdctl(first, "endpoint health --cluster").stdout
             and lab.etcdctl(first, "endpoint health --cluster").returncode == 0)


def test_restore_after_etcd_is_destroyed_everywhere(lab, first_run, backup_dir):
    cp = control_planes(lab)
    # Left by an earlier run on a kept lab (BMK8S_E2E_KEEP): the markers must be made now.
    lab.kubectl(cp[0], "delete configmap --namespace default --ignore-not-found", *MARKERS, AFTER)
    for marker in MARKERS:
        lab.kubectl(cp[0], "create configmap", marker, "--namespace default --from-literal=made=before")
    run = backup(lab, backup_dir, "-e", "etcd_backup_keep_last=1")
    assert run.rc == 0, "etcd_backup.yml failed"
    assert re.search(r"1 kept, 1 pruned", text(run)), "keep_last=1 must prune the older snapshot"
    [good] = snapshots(backup_dir)
    for marker in MARKERS:
        lab.kubectl(cp[0], "delete configmap", marker, "--namespace default")
    lab.kubectl(cp[0], "create configmap", AFTER, "--namespace default --from-literal=made=after")

    # Refusals, each before anything stops.
    refused = restore(lab, backup_dir)
    assert refused.rc != 0 and "without the confirmation" in text(refused)
    untouched(lab)
    damaged = damaged_copy(backup_dir, good, lab.name + "-20200101T000000Z-r1.db")
    refused = restore(lab, backup_dir, "-e", "etcd_restore_confirm=" + lab.name,
                      "-e", "etcd_restore_snapshot=" + damaged)
    assert refused.rc != 0 and "the file is damaged" in text(refused), refused.output[-3000:]
    untouched(lab)
    for path in (damaged, damaged + ".json"):
        os.unlink(os.path.join(backup_dir, path))
    planned = restore(lab, backup_dir, "-e", "etcd_restore_confirm=" + lab.name, "--check")
    assert planned.rc == 0 and "nothing was changed" in text(planned), planned.output[-3000:]
    untouched(lab)

    # The disaster: etcd's data gone on every control plane.
    for host in cp:
        result = lab.sh(host, "systemctl stop kubelet && crictl stop $(crictl ps -q --name '^(etcd|kube-apiserver)$'"
                              " --label io.kubernetes.pod.namespace=kube-system)"
                              " >/dev/null; rm -rf /var/lib/etcd/member")
        assert result.returncode == 0, result.stderr
    assert all(not running(lab, host, "etcd") for host in cp)

    started = time.monotonic()
    run = restore(lab, backup_dir, "-e", "etcd_restore_confirm=" + lab.name)
    rto = time.monotonic() - started
    assert run.rc == 0, "etcd_restore.yml failed"
    print("RTO: %.0f s from the start of etcd_restore.yml to a healthy cluster (%s)" % (rto, os.getloadavg()))
    assert PKI_KEY not in run.output, "the passphrase is in the job's output"
    assert re.search(r"restored from %s .*3 healthy voting etcd members" % re.escape(good), text(run))

    for marker in MARKERS:
        lab.kubectl(cp[0], "get configmap", marker, "--namespace default")
    assert lab.kubectl(cp[0], "get configmap", AFTER, "--namespace default", check=False).returncode != 0
    assert sorted(lab.etcd_members(cp[0])) == sorted(cp)
    health = lab.etcdctl(cp[0], "endpoint health --cluster -w json")
    assert health.returncode == 0 and all(e["health"] for e in json.loads(health.stdout)), health.stdout
    nodes = lab.kubectl(cp[0], "get nodes --no-headers").stdout.splitlines()
    assert nodes and all(line.split()[1].startswith("Ready") for line in nodes), nodes
    pods = lab.kubectl(cp[0], "get pods --namespace kube-system --no-headers").stdout.splitlines()
    assert pods and all(line.split()[2] in ("Running", "Completed") for line in pods), pods

    # The checker on the restored cluster: every verdict ok, the last snapshot's age among them (not "not checked").
    checked = lab.playbook("check.yml", "-e", "check_fleet=" + lab.fleet_file,
                           "-e", "check_etcd_backup_dir=" + backup_dir)
    assert checked.rc == 0, "check.yml is not all ok on the restored cluster"
    assert re.search(r"cluster \S+: OK - \d+ verdicts: 0 critical, 0 warn", text(checked)), checked.output[-3000:]
    assert not re.search(r"not checked: .*snapshot", text(checked)), "the snapshot age was not checked"


def test_restore_check_passes_on_the_lab_snapshot_and_fails_on_a_damaged_one(lab, first_run, backup_dir):
    """etcd_restore_check.yml on the lab's real snapshot, with etcd and etcdutl downloaded from the artifact set
    the cluster was built from; then a newer copy with a flipped byte is what it finds, and fails on."""
    [good] = snapshots(backup_dir)
    run = lab.playbook("etcd_restore_check.yml", "-e", "etcd_backup_dir=" + backup_dir)
    assert run.rc == 0, "etcd_restore_check.yml failed on a good snapshot"
    line = re.search(r"cluster %s: %s \(\S+ old\) restores: (\d+) keys at revision (\d+), (\d+) Nodes, checked in "
                     r"([\d.]+) s" % (lab.name, re.escape(good)), text(run))
    assert line, run.output[-3000:]
    nodes = lab.kubectl(control_planes(lab)[0], "get nodes --no-headers").stdout.splitlines()
    assert int(line.group(1)) > 100 and int(line.group(3)) == len(nodes), line.group(0)
    print("restore check of %s: %s" % (good, line.group(0)))

    damaged = damaged_copy(backup_dir, good, lab.name + "-29990101T000000Z-r1.db")  # the newest: what the job checks
    try:
        failed = lab.playbook("etcd_restore_check.yml", "-e", "etcd_backup_dir=" + backup_dir)
    finally:
        for path in (damaged, damaged + ".json"):
            os.unlink(os.path.join(backup_dir, path))
    assert failed.rc != 0, "etcd_restore_check.yml passed a damaged snapshot"
    assert re.search(r"%s FAILED at verify: .*differs from the manifest" % re.escape(damaged), text(failed)), \
        failed.output[-3000:]


def timer_log(lab, host):
    """What the backup service printed in its last run on HOST."""
    return lab.sh(host, "journalctl -u bmk8s-etcd-backup.service --no-pager -o cat -n 40").stdout


def test_the_backup_timer_on_the_control_planes_copies_off_the_node(lab, first_run):
    """roles/etcd_backup_timer (sites without AWX) on the three control planes, the target a worker reached with
    the lab's SSH key: one control plane takes the snapshot, the others skip; with its etcd down the next one
    takes over; the snapshots land on the target; state=absent removes the timer."""
    cp = control_planes(lab)
    # A worker that test_06 rebuilt and left running (the last one may be the host it left down).
    target = lab.hosts()[3]
    with open(lab.fleet_file, encoding="utf-8") as handle:
        address = next(s["addresses"]["private"] for s in yaml.safe_load(handle)["servers"] if s["name"] == target)
    remote_dir = "/var/backups/etcd-timer"
    assert lab.sh(target, "rm -rf %s && mkdir -p %s" % (remote_dir, remote_dir)).returncode == 0
    with open(os.path.join(lab_tool.STATE, "ssh", "id_ed25519"), encoding="ascii") as handle:
        key = handle.read()
    settings = json.dumps({"etcd_backup_timer_target": "root@%s:%s" % (address, remote_dir),
                           "etcd_backup_timer_ssh_private_key": key})
    run = lab.playbook("etcd_backup_timer.yml", "-e", settings)
    assert run.rc == 0, run.output[-3000:]
    assert "BEGIN OPENSSH PRIVATE KEY" not in run.output and key.strip().splitlines()[1] not in run.output
    again = lab.playbook("etcd_backup_timer.yml", "-e", settings)
    assert again.rc == 0 and again.changed_hosts() == {}, again.changed_hosts()
    for host in cp:
        assert lab.sh(host, "systemctl is-active bmk8s-etcd-backup.timer").stdout.strip() == "active", host
        assert lab.sh(host, "stat -c %a /etc/baremetal-k8s/etcd-backup.json").stdout.strip() == "600", host

    def remote_snapshots():
        return sorted(n for n in lab.sh(target, "ls -1 " + remote_dir).stdout.split() if n.endswith(".db"))

    # Not the first control plane: it skips, and says who takes it.
    skipped = lab.sh(cp[1], "systemctl start bmk8s-etcd-backup.service")
    assert skipped.returncode == 0, timer_log(lab, cp[1])
    assert "%s takes the snapshot" % cp[0] in timer_log(lab, cp[1]) and remote_snapshots() == []
    taken = lab.sh(cp[0], "systemctl start bmk8s-etcd-backup.service")
    assert taken.returncode == 0, timer_log(lab, cp[0])
    first = remote_snapshots()
    assert len(first) == 1 and lab.sh(target, "test -s %s/%s.json" % (remote_dir, first[0])).returncode == 0
    print(timer_log(lab, cp[0]))

    # The first control plane's etcd down: the second takes over.
    assert lab.sh(cp[0], "mv /etc/kubernetes/manifests/etcd.yaml /root/etcd.yaml.held").returncode == 0
    try:
        wait_for("etcd to stop on " + cp[0], lambda: not running(lab, cp[0], "etcd"))
        time.sleep(1)  # the names hold the time to the second
        took_over = lab.sh(cp[1], "systemctl start bmk8s-etcd-backup.service")
    finally:
        lab.sh(cp[0], "mv /root/etcd.yaml.held /etc/kubernetes/manifests/etcd.yaml")
    assert took_over.returncode == 0, timer_log(lab, cp[1])
    assert "%s takes the snapshot" % cp[1] in timer_log(lab, cp[1]), timer_log(lab, cp[1])
    assert len(remote_snapshots()) == 2, remote_snapshots()
    wait_for("etcd on %s to rejoin" % cp[0], lambda: len(running(lab, cp[0], "etcd")) > 0)

    removed = lab.playbook("etcd_backup_timer.yml", "-e", settings, "-e", "etcd_backup_timer_state=absent")
    assert removed.rc == 0, removed.output[-3000:]
    for host in cp:
        assert lab.sh(host, "systemctl cat bmk8s-etcd-backup.timer").returncode != 0, host
        assert lab.sh(host, "test -e /etc/baremetal-k8s/etcd-backup.json").returncode != 0, host
    wait_for("three healthy members", lambda: lab.etcdctl(cp[0], "endpoint health --cluster").returncode == 0)
