# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""baremetal.k8s.etcd_backups through the ansible CLI on a directory of snapshots made here: the listing and
the newest verified snapshot, full verification, pruning with check mode and diff, what is never deleted."""

from __future__ import annotations

import os

from etcd_gateway import HOUR, NOW, flip, write_snapshot
from fleet_samples import run_module


def backups(path, *flags, **args):
    return run_module("baremetal.k8s.etcd_backups", {"path": str(path), "cluster": "c1", "now": NOW, **args},
                      *flags)


def seven(tmp_path):
    """Seven snapshots an hour apart, newest first; the paths."""
    return [write_snapshot(tmp_path, taken_at=NOW - (h + 1) * HOUR, revision=100 - h) for h in range(7)]


def names(paths):
    return [os.path.basename(p) for p in paths]


def test_list_reports_the_newest_verified(tmp_path):
    paths = seven(tmp_path)
    write_snapshot(tmp_path, taken_at=NOW, revision=200, cluster="other")  # another cluster's: left alone
    (tmp_path / "c1-backup.db").write_text("not ours")
    result = backups(tmp_path)
    assert not result.get("failed"), result
    assert result["changed"] is False and result["count"] == 7 == result["verified_count"]
    assert [s["name"] for s in result["snapshots"]] == names(paths)
    assert result["newest_verified"] == {"name": names(paths)[0], "path": paths[0], "age_seconds": 3600,
                                         "revision": 100, "taken_at": "2027-01-15T07:00:00Z"}
    first = result["snapshots"][0]
    assert first["member"] == "cp2" and first["etcd_version"] == "3.6.16" and first["reasons"] == []
    assert first["decision"] == "keep" and first["pki_bundle"] is None
    assert result["ignored"] == ["c1-backup.db"] and result["exists"] is True


def test_verified_hashes_and_fails_on_flipped_bytes(tmp_path):
    paths = seven(tmp_path)
    assert not backups(tmp_path, action="verify").get("failed")
    flip(paths[0], 100)
    quick = backups(tmp_path)
    assert quick["newest_verified"]["name"] == names(paths)[0]  # the quick check does not hash
    full = backups(tmp_path, action="verify")
    assert full["failed"] and "1 of 7 snapshots of c1 do not verify: %s (" % names(paths)[0] in full["msg"]
    assert "Fix: take a new snapshot" in full["msg"]
    assert full["newest_verified"]["name"] == names(paths)[1] and full["verified_count"] == 6


def test_pruned_keeps_the_last_five_with_check_mode_and_diff(tmp_path):
    paths = seven(tmp_path)
    bundle = tmp_path / (names(paths)[6][:-3] + ".pki")
    bundle.write_bytes(b"sealed")
    (tmp_path / "notes.db").write_text("x")
    before = sorted(os.listdir(tmp_path))

    checked = backups(tmp_path, "--check", "--diff", action="prune", keep_last=5)
    assert not checked.get("failed"), checked
    assert checked["changed"] is True and checked["pruned"] == names(paths)[5:]
    assert checked["diff"]["before"]["snapshots"] == names(paths)
    assert checked["diff"]["after"]["snapshots"] == names(paths)[:5]
    assert str(bundle) in checked["removed_files"]
    assert sorted(os.listdir(tmp_path)) == before

    pruned = backups(tmp_path, action="prune", keep_last=5)
    assert pruned["changed"] is True and pruned["pruned"] == names(paths)[5:]
    assert sorted(pruned["removed_files"]) == sorted([paths[5], paths[5] + ".json", paths[6], paths[6] + ".json",
                                                      str(bundle)])
    kept = names(paths)[:5]
    assert all(s["hashed"] for s in pruned["snapshots"])
    assert sorted(os.listdir(tmp_path)) == sorted(["notes.db", ".bmk8s-verified.json", *kept,
                                                   *(n + ".json" for n in kept)])
    assert oct(os.stat(tmp_path / ".bmk8s-verified.json").st_mode & 0o777) == "0o600"
    # The next run trusts what it hashed before (unchanged since): nothing is read again.
    again = backups(tmp_path, action="prune", keep_last=5)
    assert again["changed"] is False and again["pruned"] == [] and again["removed_files"] == []
    assert again["verified_count"] == 5 and not any(s["hashed"] for s in again["snapshots"])
    rehashed = backups(tmp_path, action="prune", keep_last=5, rehash=True)
    assert rehashed["verified_count"] == 5 and all(s["hashed"] for s in rehashed["snapshots"])
    verified = backups(tmp_path, action="verify")
    assert not verified.get("failed") and all(s["hashed"] for s in verified["snapshots"])


def test_a_broken_newest_never_costs_the_good_ones(tmp_path):
    paths = seven(tmp_path)
    for path in paths[:3]:
        flip(path, 10)
    pruned = backups(tmp_path, action="prune", keep_last=2)
    # The 2 newest verified are the 4th and 5th; the 3 broken newer ones stay for inspection.
    assert pruned["pruned"] == names(paths)[5:]
    assert pruned["newest_verified"]["name"] == names(paths)[3]
    decisions = {s["name"]: s["decision_reason"] for s in pruned["snapshots"]}
    assert "not verified (does not count toward keep_last)" in decisions[names(paths)[0]]


def test_max_age_and_bad_options(tmp_path):
    paths = seven(tmp_path)
    result = backups(tmp_path, action="prune", keep_last=0, max_age="3h")
    assert result["pruned"] == names(paths)[3:]
    bad = backups(tmp_path, max_age="a week")
    assert bad["failed"] and bad["msg"].startswith("max_age: 'a week' is not a duration. Fix: ")
    bad = backups(tmp_path, keep_last=-2)
    assert bad["failed"] and bad["msg"].startswith("keep_last: -2 is not a whole number >= 0")
    bad = backups(tmp_path, now="yesterday")
    assert bad["failed"] and "is not an ISO 8601 time" in bad["msg"]


def test_a_missing_directory_lists_nothing(tmp_path):
    result = backups(tmp_path / "none")
    assert not result.get("failed") and result["exists"] is False and result["newest_verified"] is None
    (tmp_path / "file").write_text("x")
    result = backups(tmp_path / "file")
    assert result["failed"] and result["msg"].endswith("file: not a directory. Fix: give the directory the "
                                                       "snapshots are kept in")
