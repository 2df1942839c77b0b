# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What etcd_backup.yml says and reads (etcd_backup.py's job words)."""

from __future__ import annotations

import pytest
from ansible_collections.baremetal.k8s.plugins.module_utils import etcd_backup


def test_the_pki_files_are_kubeadms_cluster_wide_secrets():
    files = etcd_backup.pki_files()
    assert files == list(etcd_backup.KUBEADM_PKI_FILES)
    assert {"ca.key", "sa.key", "front-proxy-ca.key", "etcd/ca.key"} <= set(files)


def test_the_summary_line_says_what_where_and_what_retention_did():
    line = etcd_backup.backup_line({
        "cluster": "east", "snapshot": "east-20261201T230000Z-r812.db", "revision": "812", "size": "4759584",
        "member": "east-cp-2", "stored": "localhost:/var/backups/baremetal-k8s/etcd", "pki_bundle": True,
        "kept": "5", "pruned": ["east-20261201T180000Z-r700.db"]})
    assert line == ("cluster east: east-20261201T230000Z-r812.db (revision 812, 4.8 MB) from east-cp-2, stored in "
                    "localhost:/var/backups/baremetal-k8s/etcd with its PKI bundle; 5 kept, 1 pruned "
                    "(east-20261201T180000Z-r700.db)")


def test_a_check_mode_result_without_size_still_reads():
    line = etcd_backup.backup_line({"cluster": "east", "snapshot": "east-x.db", "member": "east-cp-1",
                                    "stored": "backup:/srv", "pki_bundle": False, "kept": 0, "pruned": []})
    assert "size unknown" in line and "PKI" not in line and line.endswith("0 kept, 0 pruned")


MANIFEST = {"cluster": "east", "name": "east-20261201T230000Z-r812.db", "revision": 812,
            "taken_at": "2026-12-01T23:00:00Z", "member": "east-cp-2"}
MEMBERS = [{"name": "east-cp-%d" % i, "peer_url": "https://10.0.0.%d:2380" % i} for i in (1, 2, 3)]


class TestRestorePlan:
    def test_every_member_restores_the_same_snapshot_into_one_new_cluster(self):
        plan = etcd_backup.restore_plan(MANIFEST, MEMBERS, 1_800_000_000.0)
        initial = "east-cp-1=https://10.0.0.1:2380,east-cp-2=https://10.0.0.2:2380,east-cp-3=https://10.0.0.3:2380"
        assert plan["initial_cluster"] == initial
        assert plan["token"] == "bmk8s-restore-east-20270115t080000z"
        assert plan["staging_dir"] == "/var/lib/etcd/.restore-20270115T080000Z"
        assert plan["moved_member_dir"] == "/var/lib/etcd/member.before-restore-20270115T080000Z"
        assert sorted(plan["argv"]) == ["east-cp-1", "east-cp-2", "east-cp-3"]
        assert plan["argv"]["east-cp-2"] == [
            "etcdutl", "snapshot", "restore", "SNAPSHOT", "--name", "east-cp-2", "--initial-cluster", initial,
            "--initial-cluster-token", plan["token"], "--initial-advertise-peer-urls", "https://10.0.0.2:2380",
            "--data-dir", plan["staging_dir"], "--bump-revision", "1000000000", "--mark-compacted"]
        assert "revision 812" in plan["lines"][0] and "never deleted" in plan["lines"][3]

    def test_bad_members_are_all_named(self):
        bad = [{"name": "a", "peer_url": "http://10.0.0.1:2380"}, {"name": "a", "peer_url": "https://10.0.0.2:2380"}]
        with pytest.raises(etcd_backup.EtcdBackupError) as err:
            etcd_backup.restore_plan(MANIFEST, bad, 0.0)
        assert "repeated" in str(err.value) and "is not https://" in str(err.value)
        with pytest.raises(etcd_backup.EtcdBackupError, match="no control plane"):
            etcd_backup.restore_plan(MANIFEST, [], 0.0)
        with pytest.raises(etcd_backup.EtcdBackupError, match="manifest has no cluster"):
            etcd_backup.restore_plan({}, MEMBERS, 0.0)

    def test_members_may_come_as_a_mapping_in_inventory_order(self):
        mapping = {m["name"]: m["peer_url"] for m in MEMBERS}
        assert etcd_backup.restore_plan(MANIFEST, mapping, 0.0) == etcd_backup.restore_plan(MANIFEST, MEMBERS, 0.0)
