# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""L0: module_utils/etcd_backup.py (names, manifest, verification, retention, PKI bundle) and
EtcdClient.snapshot over a fake gateway. The real etcd is tests/integration/test_etcd_snapshot.py's."""

from __future__ import annotations

import hashlib
import io
import json
import os

import pytest
from ansible_collections.baremetal.k8s.plugins.module_utils import etcd_backup as eb
from ansible_collections.baremetal.k8s.plugins.module_utils.errors import BaremetalError
from ansible_collections.baremetal.k8s.plugins.module_utils.etcd_client import EtcdClient, EtcdError
from etcd_gateway import HOUR, NOW, FakeGateway, flip, snapshot_bytes, write_snapshot
from hypothesis import given
from hypothesis import strategies as st

# --------------------------------------------------------------------------- names


def test_a_name_and_back():
    name = eb.snapshot_name("prod-1", NOW, 48213)
    assert name == "prod-1-20270115T080000Z-r48213.db"
    parsed = eb.parse_snapshot_name(name)
    assert (parsed.cluster, parsed.taken_at, parsed.revision) == ("prod-1", NOW, 48213)
    assert parsed.name == name
    assert eb.parse_snapshot_name("/srv/backups/" + name) == parsed
    assert eb.pki_bundle_name(name) == "prod-1-20270115T080000Z-r48213.pki"
    assert eb.manifest_path("/b/" + name) == "/b/" + name + ".json"


@given(cluster=st.from_regex(eb.CLUSTER_RE, fullmatch=True), seconds=st.integers(0, 4_000_000_000),
       revision=st.integers(0, 2**63))
def test_names_round_trip(cluster, seconds, revision):
    parsed = eb.parse_snapshot_name(eb.snapshot_name(cluster, seconds, revision))
    assert (parsed.cluster, parsed.taken_at, parsed.revision) == (cluster, seconds, revision)


@pytest.mark.parametrize("name", ["notes.db", "c1-20270115T080000Z-r5.db.part", "c1-20270115T080000Z-r5.db.json",
                                  "c1-20271315T080000Z-r5.db", "c1-20270115T080000Z-5.db", "-20270115T080000Z-r5.db",
                                  "c1-20270115T080000-r5.db", "c1-20270115T080000Z-r5.db.bak"])
def test_names_that_are_not_snapshots(name):
    assert eb.parse_snapshot_name(name) is None


def test_bad_names_are_refused():
    with pytest.raises(eb.EtcdBackupError, match=r"^cluster: 'a/b' is not a cluster name\. Fix: "):
        eb.snapshot_name("a/b", NOW, 1)
    with pytest.raises(eb.EtcdBackupError, match="revision: -1 is not a revision"):
        eb.snapshot_name("c1", NOW, -1)


@pytest.mark.parametrize(("text", "seconds"), [("7d", 604800), ("36h", 129600), ("1d12h", 129600), ("90m", 5400),
                                               ("2w", 1209600), ("3600", 3600), (600, 600), (None, None), ("", None)])
def test_durations(text, seconds):
    assert eb.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["7 days", "d7", "1.5d", "0", "0d", "-3h", "7x"])
def test_bad_durations(text):
    with pytest.raises(eb.EtcdBackupError, match=r"^max_age: .*Fix: "):
        eb.parse_duration(text)


# --------------------------------------------------------------------------- verification


def test_digest_checks_etcds_trailer():
    data = snapshot_bytes(3)
    assert len(data) % 512 == 32
    assert hashlib.sha256(data[:-32]).digest() == data[-32:]


@pytest.mark.parametrize("pages", [1, 3, 300])  # 300 pages: more than one read chunk
def test_a_good_snapshot_verifies(tmp_path, pages):
    path = write_snapshot(tmp_path, data=snapshot_bytes(pages))
    digest = eb.digest_file(path)
    assert digest.has_trailer and digest.etcd_hash_ok and digest.size == 4096 * pages + 32
    result = eb.verify_snapshot(path)
    assert result.ok and result.reasons == [] and result.etcd_hash_ok
    assert result.manifest["sha256"] == digest.sha256 == result.sha256
    assert result.manifest["taken_at"] == "2027-01-15T08:00:00Z" and result.manifest["pki_bundle"] is None
    assert eb.verify_snapshot(path, full=False).ok


@pytest.mark.parametrize("where", ["start", "middle", "trailer"])
def test_flipped_bytes_fail(tmp_path, where):
    path = write_snapshot(tmp_path, data=snapshot_bytes(300))
    size = os.path.getsize(path)
    flip(path, {"start": 0, "middle": size // 2, "trailer": size - 1}[where])
    result = eb.verify_snapshot(path)
    assert not result.ok
    assert any("trailer does not match" in r for r in result.reasons), result.reasons
    assert any("differs from the manifest" in r for r in result.reasons), result.reasons
    # The quick check does not hash: it cannot see flipped bytes (docs/etcd.md says so).
    assert eb.verify_snapshot(path, full=False).ok


def test_missing_empty_cut_short_and_without_manifest(tmp_path):
    missing = eb.verify_snapshot(str(tmp_path / "c1-20270115T080000Z-r1.db"))
    assert not missing.ok and missing.reasons == ["the snapshot file is missing"]

    empty = write_snapshot(tmp_path, revision=2, data=b"")
    result = eb.verify_snapshot(empty)
    assert not result.ok and "the file is empty (size 0)" in result.reasons

    cut = write_snapshot(tmp_path, revision=3, data=snapshot_bytes(4))
    with open(cut, "r+b") as handle:
        handle.truncate(4096 * 2)
    reasons = eb.verify_snapshot(cut).reasons
    assert any("no etcd hash trailer" in r for r in reasons) and any("size 8192 differs" in r for r in reasons)
    assert any("size 8192 differs" in r for r in eb.verify_snapshot(cut, full=False).reasons)

    bare = write_snapshot(tmp_path, revision=4, manifest=False)
    result = eb.verify_snapshot(bare)
    assert not result.ok and result.etcd_hash_ok  # the data is fine, but nothing to check it against
    assert result.reasons == ["the manifest is missing (%s.json)" % bare]


def test_a_manifest_that_is_not_one(tmp_path):
    path = write_snapshot(tmp_path)
    with open(eb.manifest_path(path), "w") as handle:
        handle.write('{"version": 1, "size": "big"}')
    assert any("size is missing or not a int" in r for r in eb.verify_snapshot(path).reasons)
    with open(eb.manifest_path(path), "w") as handle:
        handle.write("{not json")
    assert any("the manifest cannot be read" in r for r in eb.verify_snapshot(path).reasons)
    with pytest.raises(eb.EtcdBackupError, match=r"\.json: the manifest cannot be read: .*Fix: take the snapshot"):
        eb.read_manifest(eb.manifest_path(path))


# --------------------------------------------------------------------------- which member


def row(name, healthy=True, leader=False, learner=False, error=""):
    return {"name": name, "healthy": healthy, "is_leader": leader, "is_learner": learner, "error": error}


def test_a_follower_before_the_leader():
    choice = eb.choose_member([row("cp1", leader=True), row("cp2"), row("cp3")])
    assert choice.name == "cp2" and "follower" in choice.reason
    assert choice.passed_over == [{"name": "cp1", "reason": "the leader: a healthy follower is used instead"}]


def test_unhealthy_and_learners_are_passed_over():
    choice = eb.choose_member([row("cp1", healthy=False, error="timed out"), row("cp2", leader=True),
                               row("cp4", learner=True)])
    assert choice.name == "cp2" and choice.reason == "the leader: no healthy follower"
    assert [p["name"] for p in choice.passed_over] == ["cp1", "cp4"]
    assert "not healthy: timed out" in choice.passed_over[0]["reason"]


def test_no_healthy_member():
    with pytest.raises(eb.EtcdBackupError, match=r"^etcd: no healthy voting member to take a snapshot from "
                                                 r"\(cp1: not healthy: refused; cp2: not healthy: no answer\)\. Fix"):
        eb.choose_member([row("cp1", healthy=False, error="refused"), row("cp2", healthy=False)])


def test_a_named_member():
    rows = [row("cp1", leader=True), row("cp2", healthy=False, error="timed out")]
    assert eb.choose_member(rows, "cp1").name == "cp1"  # even the leader, when asked for
    with pytest.raises(eb.EtcdBackupError, match=r"member: member cp2 is not healthy: timed out\. Fix: leave member"):
        eb.choose_member(rows, "cp2")
    with pytest.raises(eb.EtcdBackupError, match=r"no etcd member is named 'cp9' \(members: cp1, cp2\)"):
        eb.choose_member(rows, "cp9")


# --------------------------------------------------------------------------- retention


def snap(hours_ago, verified=True, revision=None):
    taken = NOW - hours_ago * HOUR
    return eb.Snapshot(eb.snapshot_name("c1", taken, revision or int(1000 - hours_ago)), taken,
                       revision or int(1000 - hours_ago), verified)


def test_keep_last_keeps_the_newest_verified():
    snaps = [snap(h) for h in range(7)]
    plan = eb.prune_plan(snaps, keep_last=5, max_age_seconds=None, now=NOW)
    assert plan.keep == [s.name for s in snaps[:5]] and plan.prune == [s.name for s in snaps[5:]]
    assert plan.decision(snaps[0].name).reason == "the newest verified snapshot: never pruned"
    assert plan.decision(snaps[1].name).reason == "one of the 5 newest verified snapshots (keep_last 5)"
    assert plan.decision(snaps[6].name).reason == "not among the 5 newest verified snapshots (keep_last 5)"


def test_unverified_snapshots_do_not_count():
    # Newest first: 0 bad, 1 good, 2 bad, 3 good, 4 good, 5 bad, 6 good.
    snaps = [snap(h, verified=h not in (0, 2, 5)) for h in range(7)]
    plan = eb.prune_plan(snaps, keep_last=2, max_age_seconds=None, now=NOW)
    assert plan.newest_verified == snaps[1].name
    # The 2 newest verified are 1 and 3; 0 and 2 are newer than 3 (inside the window) and kept for inspection.
    assert plan.keep == [snaps[i].name for i in (0, 1, 2, 3)]
    assert "not verified (does not count toward keep_last)" in plan.decision(snaps[2].name).reason
    assert plan.prune == [snaps[i].name for i in (4, 5, 6)]
    assert plan.decision(snaps[5].name).reason.endswith(", and not verified")


def test_fewer_verified_than_keep_last_prunes_nothing_by_count():
    snaps = [snap(h, verified=h < 2) for h in range(6)]
    plan = eb.prune_plan(snaps, keep_last=3, max_age_seconds=None, now=NOW)
    assert plan.prune == []
    assert "only 2 of keep_last 3 snapshots verify" in plan.decision(snaps[5].name).reason


def test_max_age_alone_and_both_rules():
    snaps = [snap(h * 24) for h in range(10)]  # one a day
    by_age = eb.prune_plan(snaps, keep_last=0, max_age_seconds=3 * 86400, now=NOW)
    assert by_age.keep == [s.name for s in snaps[:4]]
    assert by_age.decision(snaps[2].name).reason == "2d old, within max_age 3d"
    assert by_age.decision(snaps[9].name).reason == "9d old, past max_age 3d"
    # Both: kept when either keeps it.
    both = eb.prune_plan(snaps, keep_last=6, max_age_seconds=3 * 86400, now=NOW)
    assert both.keep == [s.name for s in snaps[:6]]
    assert both.decision(snaps[8].name).reason == ("not among the 6 newest verified snapshots (keep_last 6); "
                                                   "8d old, past max_age 3d")
    assert eb.prune_plan(snaps, keep_last=2, max_age_seconds=5 * 86400, now=NOW).keep == [s.name for s in snaps[:6]]


def test_the_newest_verified_survives_every_rule():
    snaps = [snap(h * 24, verified=h >= 5) for h in range(10)]  # the last 5 days broken
    plan = eb.prune_plan(snaps, keep_last=0, max_age_seconds=86400, now=NOW)
    assert snaps[5].name in plan.keep and plan.newest_verified == snaps[5].name
    assert plan.keep == [s.name for s in snaps[:2]] + [snaps[5].name]


def test_no_rule_keeps_everything_and_bad_input():
    snaps = [snap(h * 100) for h in range(3)]
    assert eb.prune_plan(snaps, keep_last=0, max_age_seconds=None, now=NOW).prune == []
    assert eb.prune_plan([], keep_last=5, max_age_seconds=None, now=NOW).decisions == []
    with pytest.raises(eb.EtcdBackupError, match="keep_last: -1 is not a whole number >= 0"):
        eb.prune_plan(snaps, keep_last=-1, max_age_seconds=None, now=NOW)
    with pytest.raises(eb.EtcdBackupError, match="max_age: 0 is not a number of seconds above 0"):
        eb.prune_plan(snaps, keep_last=1, max_age_seconds=0, now=NOW)
    with pytest.raises(eb.EtcdBackupError, match="a snapshot name appears twice"):
        eb.prune_plan(snaps + snaps[:1], keep_last=1, max_age_seconds=None, now=NOW)


SNAPSHOT_SETS = st.lists(
    st.tuples(st.integers(0, 2000), st.integers(0, 50), st.booleans()),  # hours ago, revision, verified
    max_size=40, unique_by=lambda t: (t[0], t[1]),
).map(lambda rows: [eb.Snapshot(eb.snapshot_name("c1", NOW - h * HOUR, r), NOW - h * HOUR, r, v)
                    for h, r, v in rows])
KEEP_LAST = st.one_of(st.none(), st.integers(0, 12))
MAX_AGE = st.one_of(st.none(), st.integers(1, 2000).map(lambda h: h * HOUR))


@given(snaps=SNAPSHOT_SETS, keep_last=KEEP_LAST, max_age=MAX_AGE)
def test_property_newest_verified_is_always_kept(snaps, keep_last, max_age):
    plan = eb.prune_plan(snaps, keep_last, max_age, NOW)
    verified = sorted((s for s in snaps if s.verified), key=lambda s: (s.taken_at, s.revision), reverse=True)
    assert plan.newest_verified == (verified[0].name if verified else None)
    if verified:
        assert verified[0].name in plan.keep
    assert sorted(plan.keep + plan.prune) == sorted(s.name for s in snaps)  # one decision each
    assert all(d.reason for d in plan.decisions)
    if keep_last:  # the keep_last newest verified are kept
        assert {s.name for s in verified[:keep_last]} <= set(plan.keep)
    if max_age is not None:  # nothing within max_age is pruned
        assert not [s for s in snaps if s.name in plan.prune and NOW - s.taken_at <= max_age]
    if not keep_last and max_age is None:
        assert plan.prune == []


@given(snaps=SNAPSHOT_SETS, keep_last=KEEP_LAST, max_age=MAX_AGE)
def test_property_the_plan_is_stable(snaps, keep_last, max_age):
    plan = eb.prune_plan(snaps, keep_last, max_age, NOW)
    left = [s for s in snaps if s.name in plan.keep]
    again = eb.prune_plan(left, keep_last, max_age, NOW)
    assert again.prune == []
    assert again.newest_verified == plan.newest_verified


# --------------------------------------------------------------------------- PKI bundle


def pki_files():
    return {name: os.urandom(64) + name.encode() for name in eb.KUBEADM_PKI_FILES}


def test_the_kubeadm_pki_list():
    assert eb.KUBEADM_PKI_FILES == ("ca.crt", "ca.key", "sa.key", "sa.pub", "front-proxy-ca.crt",
                                    "front-proxy-ca.key", "etcd/ca.crt", "etcd/ca.key")


def test_seal_and_open():
    files = pki_files()
    blob = eb.seal_pki(files, "correct horse battery staple")
    assert blob.startswith(eb.PKI_MAGIC) and blob[8] == eb.PKI_VERSION
    assert b"ca.key" not in blob and files["ca.key"] not in blob
    assert eb.open_pki(blob, "correct horse battery staple") == files
    # Random salt and nonce: the same files sealed twice differ.
    assert eb.seal_pki(files, "correct horse battery staple") != blob


def test_a_wrong_key_is_a_clear_error():
    blob = eb.seal_pki(pki_files(), "right")
    with pytest.raises(eb.PkiBundleError, match=r"^bundle: the bundle does not open with this passphrase: .*Fix: "):
        eb.open_pki(blob, "wrong")
    assert issubclass(eb.PkiBundleError, eb.EtcdBackupError) and issubclass(eb.EtcdBackupError, BaremetalError)


@pytest.mark.parametrize("damage", ["header", "body", "tag"])
def test_a_changed_bundle_does_not_open(damage):
    blob = bytearray(eb.seal_pki(pki_files(), "k"))
    blob[{"header": 20, "body": eb.PKI_HEADER.size + 5, "tag": len(blob) - 1}[damage]] ^= 1
    with pytest.raises(eb.PkiBundleError, match="does not open with this passphrase"):
        eb.open_pki(bytes(blob), "k")


def test_bundle_bad_input():
    with pytest.raises(eb.PkiBundleError, match=r"not a baremetal\.k8s PKI bundle"):
        eb.open_pki(b"-----BEGIN CERTIFICATE-----" + b"x" * 100, "k")
    blob = bytearray(eb.seal_pki({"ca.crt": b"x"}, "k"))
    blob[8] = 9
    with pytest.raises(eb.PkiBundleError, match="bundle format version 9, this collection reads version 1"):
        eb.open_pki(bytes(blob), "k")
    with pytest.raises(eb.PkiBundleError, match="key: the passphrase is empty"):
        eb.seal_pki({"ca.crt": b"x"}, "")
    with pytest.raises(eb.PkiBundleError, match=r"'\.\./ca\.key' is not a relative file name"):
        eb.seal_pki({"../ca.key": b"x"}, "k")
    with pytest.raises(eb.PkiBundleError, match="no files to seal"):
        eb.seal_pki({}, "k")


def test_collect_pki(tmp_path):
    for name, content in pki_files().items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(content)
    assert sorted(eb.collect_pki(str(tmp_path))) == sorted(eb.KUBEADM_PKI_FILES)
    (tmp_path / "etcd" / "ca.key").unlink()
    with pytest.raises(eb.EtcdBackupError, match=r"etcd/ca\.key: cannot read it: No such file or directory\. Fix: "):
        eb.collect_pki(str(tmp_path))


# --------------------------------------------------------------------------- EtcdClient.snapshot


def test_the_stream_is_written_chunk_by_chunk():
    with FakeGateway(data=snapshot_bytes(30)) as gateway:
        out = io.BytesIO()
        client = EtcdClient(gateway.endpoints, timeout=5)
        written = client.snapshot(out, gateway.url("cp2"))
        assert written == len(gateway.data) and out.getvalue() == gateway.data
        assert client.snapshot_version == "3.6.0" and gateway.snapshots_from == ["cp2"]


def test_a_stream_cut_short_or_stopped_by_etcd():
    cut_short = r"the snapshot stream ended after 15000 bytes with \d+ bytes still to"
    with FakeGateway(data=snapshot_bytes(30), cut_after=3) as gateway, pytest.raises(EtcdError, match=cut_short):
        EtcdClient(gateway.endpoints).snapshot(io.BytesIO(), gateway.url("cp1"))
    stopped = "etcd stopped the snapshot after 5000 bytes: etcdserver: server stopped"
    with FakeGateway(stream_error=True) as gateway, pytest.raises(EtcdError, match=stopped):
        EtcdClient(gateway.endpoints).snapshot(io.BytesIO(), gateway.url("cp1"))


def test_a_snapshot_from_nowhere():
    nowhere = r"cannot reach etcd at http://127\.0\.0\.1:1/v3/maintenance/snapshot: .*refused"
    with pytest.raises(EtcdError, match=nowhere):
        EtcdClient(["http://127.0.0.1:1"]).snapshot(io.BytesIO())


def test_the_status_answer_is_still_json():
    with FakeGateway() as gateway:
        status = EtcdClient(gateway.endpoints).status(gateway.url("cp1"))
        assert json.dumps(status) and status["header"]["revision"] == "4242"


class TestVerifiedCache:
    def test_a_snapshot_hashed_once_is_trusted_while_unchanged(self, tmp_path):
        path = write_snapshot(tmp_path)
        first, entry, hashed = eb.verify_cached(path, {})
        assert first.ok and hashed and first.full
        assert entry == {"size": os.path.getsize(path), "mtime_ns": os.stat(path).st_mtime_ns, "sha256": first.sha256}
        again, kept, hashed = eb.verify_cached(path, {os.path.basename(path): entry})
        assert again.ok and not hashed and not again.full and kept == entry

    def test_a_changed_file_is_hashed_again_and_fails(self, tmp_path):
        path = write_snapshot(tmp_path)
        _check, entry, _hashed = eb.verify_cached(path, {})
        flip(path, 100)
        os.utime(path, ns=(entry["mtime_ns"] + 10**9, entry["mtime_ns"] + 10**9))
        check, new_entry, hashed = eb.verify_cached(path, {os.path.basename(path): entry})
        assert hashed and not check.ok and new_entry is None

    def test_an_entry_for_another_sha256_is_not_trusted(self, tmp_path):
        path = write_snapshot(tmp_path)
        stat = os.stat(path)
        entry = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": "0" * 64}
        check, new_entry, hashed = eb.verify_cached(path, {os.path.basename(path): entry})
        assert hashed and check.ok and new_entry["sha256"] == check.sha256

    def test_the_cache_file_round_trips_and_a_bad_one_is_empty(self, tmp_path):
        assert eb.read_verified_cache(str(tmp_path)) == {}
        entries = {"c1-x.db": {"size": 1, "mtime_ns": 2, "sha256": "ab"}}
        (tmp_path / eb.VERIFIED_CACHE).write_text(eb.verified_cache_text(entries))
        assert eb.read_verified_cache(str(tmp_path)) == entries
        (tmp_path / eb.VERIFIED_CACHE).write_text("{not json")
        assert eb.read_verified_cache(str(tmp_path)) == {}
        (tmp_path / eb.VERIFIED_CACHE).write_text('{"verified": ["x"]}')
        assert eb.read_verified_cache(str(tmp_path)) == {}
