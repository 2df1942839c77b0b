# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""etcd_backup.yml's and etcd_restore.yml's refusals, run for real with ansible-playbook on an inventory whose
hosts do not answer: bad input names every problem and writes nothing; a damaged snapshot and a restore
without its confirmation are refused before any control plane is touched. The lab proves the backup and the
restore (tests/e2e/test_07_etcd_backup_restore.py)."""

from __future__ import annotations

import os
import subprocess
import sys

from etcd_gateway import flip, write_snapshot
from test_recover_playbook import inventory

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BIN = os.path.dirname(sys.executable)
KEY = "a-passphrase-of-some-length"


def playbook(inv, name, *args):
    from fleet_samples import ansible_env

    proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", str(inv),
                           os.path.join(REPO, "playbooks", name), *args],
                          env=ansible_env(ANSIBLE_NOCOLOR="1"), capture_output=True, text=True, check=False,
                          cwd=str(inv), timeout=300)  # fmt: skip
    return proc.returncode, " ".join((proc.stdout + proc.stderr).split())


def test_backup_bad_input_names_every_problem_and_writes_nothing(tmp_path):
    inv = inventory(tmp_path)
    rc, out = playbook(inv, "etcd_backup.yml", "-e", "etcd_backup_cluster=nope", "-e", "etcd_backup_dir=backups",
                       "-e", "etcd_backup_keep_last=many", "-e", "etcd_backup_host=nas")
    assert rc != 0
    assert "etcd_backup_cluster=nope is not a cluster of the inventory" in out
    assert "etcd_backup_dir=backups is not an absolute path" in out
    assert "etcd_backup_host=nas is not a host of the inventory" in out
    assert "etcd_backup_keep_last=many is not a whole number" in out
    assert "etcd_backup_pki_key is empty or shorter than 16 characters" in out
    assert "Nothing was changed" in out and not (inv / "backups").exists()


def test_backup_with_no_control_plane_answering_fails_and_says_so(tmp_path):
    inv = inventory(tmp_path)
    backups = tmp_path / "backups"
    rc, out = playbook(inv, "etcd_backup.yml", "-e", "etcd_backup_dir=%s" % backups, "-e", "etcd_backup_pki_key=" + KEY)
    assert rc != 0 and "cluster c1: NO SNAPSHOT" in out and "no snapshot of c1" in out
    assert KEY not in out
    assert not backups.exists() or not os.listdir(backups)


def test_restore_refuses_before_any_control_plane_is_touched(tmp_path):
    inv = inventory(tmp_path)
    backups = tmp_path / "backups"
    backups.mkdir()
    rc, out = playbook(inv, "etcd_restore.yml")
    assert rc != 0 and "name the cluster: -e etcd_restore_cluster=NAME" in out and "Nothing was changed" in out

    rc, out = playbook(inv, "etcd_restore.yml", "-e", "etcd_restore_cluster=c1", "-e", "etcd_backup_dir=%s" % backups)
    assert rc != 0 and "no snapshot of cluster c1 verifies" in out and "Nothing was changed" in out

    good = write_snapshot(backups, revision=42)
    rc, out = playbook(inv, "etcd_restore.yml", "-e", "etcd_restore_cluster=c1", "-e", "etcd_backup_dir=%s" % backups)
    assert rc != 0 and "without the confirmation" in out and "Nothing was changed" in out
    assert "revision 42" in out and "--bump-revision" not in out and "new cluster token bmk8s-restore-c1-" in out
    assert "PLAY [Restore etcd - the snapshot on every control plane" not in out

    flip(good, 100)
    rc, out = playbook(inv, "etcd_restore.yml", "-e", "etcd_restore_cluster=c1", "-e", "etcd_restore_confirm=c1",
                       "-e", "etcd_backup_dir=%s" % backups, "-e", "etcd_restore_snapshot=" + os.path.basename(good))
    assert rc != 0 and "the file is damaged" in out and "Nothing was stopped or changed" in out
    assert "PLAY [Restore etcd - the snapshot on every control plane" not in out


def test_restore_check_refuses_bad_input_and_fails_without_a_snapshot_that_restores(tmp_path):
    inv = inventory(tmp_path)
    rc, out = playbook(inv, "etcd_restore_check.yml", "-e", "etcd_restore_check_cluster=nope", "-e",
                       "etcd_backup_dir=backups", "-e", "etcd_restore_check_artifacts=", "-e",
                       "etcd_restore_check_min_keys=some")
    assert rc != 0
    assert "etcd_restore_check_cluster=nope is not a cluster of the inventory" in out
    assert "etcd_backup_dir=backups is not an absolute path" in out
    assert "no etcd to check with: set etcd_restore_check_artifacts" in out
    assert "etcd_restore_check_min_keys=some is not a whole number" in out and "Nothing was changed" in out

    backups = tmp_path / "backups"
    backups.mkdir()
    tools = []
    for name in ("etcd", "etcdutl"):
        tool = tmp_path / name
        tool.write_text("#!/bin/sh\necho must not run >&2\nexit 1\n")
        tool.chmod(0o755)
        tools += ["-e", "etcd_restore_check_%s=%s" % (name, tool)]
    rc, out = playbook(inv, "etcd_restore_check.yml", "-e", "etcd_backup_dir=%s" % backups, *tools)
    assert rc != 0 and "cluster c1: NO VERIFIED SNAPSHOT" in out and "0 of 1 clusters have a snapshot" in out

    # Listed as verified (the quick check), but its bytes changed: the full check refuses it before etcdutl runs.
    flip(write_snapshot(backups, revision=42), 100)
    rc, out = playbook(inv, "etcd_restore_check.yml", "-e", "etcd_backup_dir=%s" % backups, *tools)
    assert rc != 0 and "-r42.db FAILED at verify" in out and "differs from the manifest" in out
    assert "must not run" not in out
    assert not [p for p in os.listdir("/tmp") if p.startswith("bmk8s-etcd-check-")]
