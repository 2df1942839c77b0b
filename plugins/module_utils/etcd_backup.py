# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""etcd data protection: snapshot names, manifests, verification, retention, the PKI bundle.

Pure Python, no Ansible import; the clock is passed in (``now``, seconds
since the epoch). docs/etcd.md ("Snapshots and retention") has the rules.

- Names: ``<cluster>-<UTC %Y%m%dT%H%M%SZ>-r<revision>.db`` (``snapshot_name``,
  ``parse_snapshot_name``). A file whose name does not parse is not a snapshot
  of ours: retention ignores it, never deletes it.
- Manifest: ``<snapshot file name>.json`` next to the snapshot (``build_manifest``,
  ``read_manifest``): where it came from, its revision, size, sha256 and whether
  etcd's own hash trailer matched.
- ``verify_snapshot(path)``: the file exists, is not empty, its etcd trailer
  matches and its sha256 and size are the manifest's. A snapshot streamed from
  etcd's API (``/v3/maintenance/snapshot``, what ``etcdctl snapshot save``
  does) ends with the sha256 of everything before it, 32 bytes, after a bbolt
  file of whole 4 KiB pages: ``size % 512 == 32`` is how ``etcdutl snapshot
  restore`` tells it has one, and it refuses a mismatch.
- ``prune_plan(snapshots, keep_last, max_age_seconds, now)``: a keep/prune
  decision with its reason for every snapshot.
- ``seal_pki(files, key)`` / ``open_pki(blob, key)``: kubeadm's CA keys in one
  AES-256-GCM bundle, the key derived with scrypt from the operator's passphrase.

Bad input raises ``EtcdBackupError`` (``PkiBundleError`` for a bundle that will
not open), naming what and the fix.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import re
import struct
from dataclasses import dataclass, field

from .errors import BaremetalError

SNAPSHOT_SUFFIX = ".db"
MANIFEST_SUFFIX = ".json"  # appended to the snapshot's file name
PART_SUFFIX = ".part"  # appended to the snapshot's file name while it streams in
PKI_SUFFIX = ".pki"  # a PKI bundle: the snapshot's name with .db replaced
MANIFEST_VERSION = 1
TIME_FORMAT = "%Y%m%dT%H%M%SZ"
HASH_SIZE = 32  # etcd's trailer: sha256 of the snapshot before it
CLUSTER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}\Z")  # the fleet's name rule (fleet_model.NAME_RE)
NAME_RE = re.compile(r"^(?P<cluster>[A-Za-z0-9][A-Za-z0-9._-]{0,62})-(?P<stamp>\d{8}T\d{6}Z)-r(?P<revision>\d+)"
                     r"\.db\Z")
DURATION_RE = re.compile(r"(\d+)([smhdw])")
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
CHUNK = 1 << 20

# kubeadm's cluster-wide secrets under /etc/kubernetes/pki: what a control plane rebuilt from a snapshot needs
# to be the same cluster (the CAs every certificate and kubeconfig chains to, the service-account signing key).
KUBEADM_PKI_DIR = "/etc/kubernetes/pki"
KUBEADM_PKI_FILES = (
    "ca.crt",
    "ca.key",
    "sa.key",
    "sa.pub",
    "front-proxy-ca.crt",
    "front-proxy-ca.key",
    "etcd/ca.crt",
    "etcd/ca.key",
)

# The PKI bundle: MAGIC, version, scrypt log2(n), r, p, salt, nonce; then AES-256-GCM of a JSON document, the
# header as associated data (a header changed by hand fails like a wrong key).
PKI_MAGIC = b"BMK8SPKI"
PKI_VERSION = 1
PKI_HEADER = struct.Struct(">8sBBBB16s12s")
SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P = 15, 8, 1  # 32 MiB, about 0.1-0.3 s: once per bundle, not per request


class EtcdBackupError(BaremetalError):
    """Bad input to the snapshot, retention or PKI bundle code; names what and the fix."""


class PkiBundleError(EtcdBackupError):
    """A PKI bundle that will not open: a wrong passphrase, a damaged or foreign file."""


# --------------------------------------------------------------------------- names


@dataclass(frozen=True)
class SnapshotName:
    cluster: str
    taken_at: float  # seconds since the epoch (UTC, whole seconds)
    revision: int

    @property
    def name(self) -> str:
        return snapshot_name(self.cluster, self.taken_at, self.revision)


def check_cluster(cluster) -> str:
    if not isinstance(cluster, str) or not CLUSTER_RE.match(cluster):
        raise EtcdBackupError("%r is not a cluster name" % (cluster,),
                              "use the fleet's cluster name: letters, digits, '.', '_', '-', up to 63 characters",
                              where="cluster")
    return cluster


def snapshot_name(cluster: str, taken_at: float, revision: int) -> str:
    """``<cluster>-<UTC %Y%m%dT%H%M%SZ>-r<revision>.db``."""
    check_cluster(cluster)
    if not isinstance(revision, int) or isinstance(revision, bool) or revision < 0:
        raise EtcdBackupError("%r is not a revision" % (revision,), "give etcd's revision, a whole number >= 0",
                              where="revision")
    stamp = datetime.datetime.fromtimestamp(int(taken_at), tz=datetime.timezone.utc).strftime(TIME_FORMAT)
    return "%s-%s-r%d%s" % (cluster, stamp, revision, SNAPSHOT_SUFFIX)


def parse_snapshot_name(name: str) -> SnapshotName | None:
    """The parts of a snapshot's file name; None when it is not one of ours (retention leaves it alone)."""
    match = NAME_RE.match(os.path.basename(name))
    if not match:
        return None
    try:
        stamp = datetime.datetime.strptime(match["stamp"], TIME_FORMAT).replace(tzinfo=datetime.timezone.utc)
    except ValueError:  # 20261399T..., a month that does not exist
        return None
    return SnapshotName(match["cluster"], stamp.timestamp(), int(match["revision"]))


def manifest_path(snapshot_path: str) -> str:
    return snapshot_path + MANIFEST_SUFFIX


def part_path(snapshot_path: str) -> str:
    return snapshot_path + PART_SUFFIX


def pki_bundle_name(snapshot: str) -> str:
    """The conventional name of the PKI bundle taken with SNAPSHOT: ``<cluster>-<stamp>-r<rev>.pki``."""
    base = os.path.basename(snapshot)
    return (base[:-len(SNAPSHOT_SUFFIX)] if base.endswith(SNAPSHOT_SUFFIX) else base) + PKI_SUFFIX


def iso_utc(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(int(seconds), tz=datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> float:
    try:
        stamp = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        raise EtcdBackupError("%r is not an ISO 8601 time" % (text,), "write it as 2026-01-31T02:00:00Z",
                              where="taken_at") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=datetime.timezone.utc)
    return stamp.timestamp()


def parse_duration(text, where="max_age") -> float | None:
    """'7d', '36h', '1d12h', '90m', '3600' (seconds) -> seconds; None or '' -> None."""
    if text is None or text == "":
        return None
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        value = str(text).strip().lower()
        if value.isdigit():
            seconds = float(value)
        else:
            parts = DURATION_RE.findall(value)
            if not parts or "".join(n + u for n, u in parts) != value:
                raise EtcdBackupError("%r is not a duration" % (text,),
                                      "write it as a number with a unit: 7d, 36h, 1d12h, 90m, 2w (or seconds)",
                                      where=where)
            seconds = float(sum(int(n) * DURATION_UNITS[u] for n, u in parts))
    if seconds <= 0:
        raise EtcdBackupError("%r is not a duration above 0" % (text,), "give a positive age such as 7d, or leave "
                              "it unset", where=where)
    return seconds


# --------------------------------------------------------------------------- hashing and verification


@dataclass(frozen=True)
class FileDigest:
    size: int
    sha256: str  # of the whole file, hex
    has_trailer: bool  # size % 512 == 32: etcd appended its hash
    etcd_hash_ok: bool  # the trailer is the sha256 of what comes before it


def digest_file(path: str) -> FileDigest:
    """One pass over PATH: its sha256 and whether etcd's trailer matches (never the whole file in memory)."""
    size = os.path.getsize(path)
    whole, body = hashlib.sha256(), hashlib.sha256()
    body_size = size - HASH_SIZE
    done = 0
    trailer = b""
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(CHUNK)
            if not chunk:
                break
            whole.update(chunk)
            if done < body_size:
                body.update(chunk[:body_size - done])
            if done + len(chunk) > body_size:
                trailer += chunk[max(0, body_size - done):]
            done += len(chunk)
    has_trailer = size > HASH_SIZE and size % 512 == HASH_SIZE
    return FileDigest(size, whole.hexdigest(), has_trailer, has_trailer and body.digest() == trailer)


def trailer_problem(digest: FileDigest) -> str:
    """Why etcd's hash check fails, in words; empty when it passes."""
    if digest.size == 0:
        return "the file is empty (size 0)"
    if not digest.has_trailer:
        return ("it has no etcd hash trailer (size %d, size %% 512 is %d, not 32): not a snapshot streamed from "
                "etcd's API, or cut short" % (digest.size, digest.size % 512))
    if not digest.etcd_hash_ok:
        return ("etcd's sha256 trailer does not match the data before it: the file is damaged (etcdutl snapshot "
                "restore would refuse it)")
    return ""


@dataclass
class Verification:
    path: str
    ok: bool
    reasons: list[str] = field(default_factory=list)  # empty when ok
    size: int | None = None
    sha256: str | None = None
    etcd_hash_ok: bool | None = None
    manifest: dict | None = None
    full: bool = True  # False: the quick check (manifest and size only, no hashing)

    def as_dict(self) -> dict:
        return {"ok": self.ok, "reasons": list(self.reasons), "size": self.size, "sha256": self.sha256,
                "etcd_hash_ok": self.etcd_hash_ok, "full": self.full}


def read_manifest(path: str) -> dict:
    """The manifest at PATH (``<snapshot>.json``). Raises EtcdBackupError when it is missing or malformed."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise EtcdBackupError("the manifest is missing", "take the snapshot again with baremetal.k8s.etcd_snapshot "
                              "(it writes the manifest after the snapshot)", where=path) from None
    except (OSError, ValueError) as exc:
        raise EtcdBackupError("the manifest cannot be read: %s" % exc, "take the snapshot again",
                              where=path) from None
    if not isinstance(data, dict) or data.get("version") != MANIFEST_VERSION:
        raise EtcdBackupError("not a version %d snapshot manifest" % MANIFEST_VERSION,
                              "take the snapshot again with baremetal.k8s.etcd_snapshot", where=path)
    for key, kind in (("size", int), ("sha256", str), ("revision", int), ("cluster", str)):
        if not isinstance(data.get(key), kind) or isinstance(data.get(key), bool):
            raise EtcdBackupError("%s is missing or not a %s" % (key, kind.__name__),
                                  "take the snapshot again", where=path)
    return data


def verify_snapshot(path: str, full: bool = True) -> Verification:
    """Whether the snapshot at PATH can be trusted for a restore, with every reason it cannot.

    ``full`` (the default) hashes the file: etcd's trailer and the manifest's sha256. ``full=False`` is the quick
    check for listings: the file is there, its size is the manifest's and the manifest says etcd's hash matched
    when it was taken.
    """
    result = Verification(path, ok=False, full=full)
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        result.reasons.append("the snapshot file is missing")
        return result
    except OSError as exc:
        result.reasons.append("the snapshot cannot be read: %s" % exc)
        return result
    result.size = size
    if size == 0:
        result.reasons.append("the file is empty (size 0)")
    try:
        result.manifest = read_manifest(manifest_path(path))
    except EtcdBackupError as exc:
        result.reasons.append(exc.problem + " (" + manifest_path(path) + ")")
    manifest = result.manifest
    if full and size:
        try:
            digest = digest_file(path)
        except OSError as exc:
            result.reasons.append("the snapshot cannot be read: %s" % exc)
            return result
        result.sha256, result.etcd_hash_ok = digest.sha256, digest.etcd_hash_ok
        problem = trailer_problem(digest)
        if problem:
            result.reasons.append(problem)
        if manifest and manifest["sha256"] != digest.sha256:
            result.reasons.append("its sha256 %s differs from the manifest's %s: the file changed after it was "
                                  "taken" % (digest.sha256, manifest["sha256"]))
    elif manifest:
        result.sha256, result.etcd_hash_ok = manifest["sha256"], manifest.get("etcd_hash_ok")
        if manifest.get("etcd_hash_ok") is not True:
            result.reasons.append("the manifest says etcd's hash trailer did not match when it was taken")
    if manifest and manifest["size"] != size:
        result.reasons.append("its size %d differs from the manifest's %d" % (size, manifest["size"]))
    result.ok = not result.reasons
    return result


# Retention hashes every snapshot it keeps; 48 hourly snapshots of a 1 GB database would be 48 GB read every
# hour. A snapshot hashed once is trusted with the quick check while its size and mtime are what they were when
# it verified (the cache file in the backup directory); etcd_backups action=verify always hashes everything.
VERIFIED_CACHE = ".bmk8s-verified.json"


def read_verified_cache(directory: str) -> dict:
    """The verification cache of DIRECTORY: snapshot name -> {size, mtime_ns, sha256}; {} when absent or bad."""
    try:
        with open(os.path.join(directory, VERIFIED_CACHE), encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    entries = data.get("verified") if isinstance(data, dict) else None
    return {k: v for k, v in entries.items() if isinstance(v, dict)} if isinstance(entries, dict) else {}


def verified_cache_text(entries: dict) -> str:
    return json.dumps({"version": 1, "verified": entries}, indent=1, sort_keys=True) + "\n"


def verify_cached(path: str, cache: dict) -> tuple:
    """(Verification, the cache entry to keep or None, whether the file was hashed) for the snapshot at PATH.

    A cache entry with the file's size and mtime and the manifest's sha256 means it was hashed and verified
    before: the quick check is enough. Anything else is hashed (``verify_snapshot(full=True)``).
    """
    name = os.path.basename(path)
    try:
        stat = os.stat(path)
    except OSError:
        return verify_snapshot(path, full=True), None, True
    hit = cache.get(name)
    if hit and hit.get("size") == stat.st_size and hit.get("mtime_ns") == stat.st_mtime_ns:
        quick = verify_snapshot(path, full=False)
        if quick.ok and quick.manifest and quick.manifest["sha256"] == hit.get("sha256"):
            return quick, hit, False
    full = verify_snapshot(path, full=True)
    entry = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": full.sha256} if full.ok else None
    return full, entry, True


def build_manifest(*, cluster: str, member: str, endpoint: str, revision: int, etcd_version: str | None,
                   taken_at: float, digest: FileDigest, storage_version: str | None = None,
                   pki_bundle: str | None = None, raft_index: int | None = None) -> dict:
    """The manifest written next to a snapshot (JSON-friendly)."""
    return {
        "version": MANIFEST_VERSION,
        "cluster": check_cluster(cluster),
        "member": member,
        "endpoint": endpoint,
        "revision": revision,
        "raft_index": raft_index,
        "etcd_version": etcd_version,
        "storage_version": storage_version,
        "taken_at": iso_utc(taken_at),
        "size": digest.size,
        "sha256": digest.sha256,
        "etcd_hash_ok": digest.etcd_hash_ok,
        "pki_bundle": pki_bundle,
    }


def manifest_text(manifest: dict) -> str:
    return json.dumps(manifest, indent=2, sort_keys=True) + "\n"


# --------------------------------------------------------------------------- which member


@dataclass(frozen=True)
class MemberChoice:
    name: str
    reason: str
    passed_over: list  # [{"name", "reason"}] of the members not used, in member-list order


def choose_member(candidates, wanted: str | None = None) -> MemberChoice:
    """The member to stream a snapshot from. CANDIDATES: dicts with name, healthy, is_leader, is_learner, error.

    Named (WANTED): that member, refused when it is not healthy (another member is not silently used). Else a
    healthy voting follower, in member-list order, before the leader: a snapshot reads the whole database and
    sends it over the network, and on the leader that competes with heartbeats and log replication (a slow disk
    there costs an election); every voter has applied the same committed data. The leader when it is the only
    healthy voter. Learners never (they may still be catching up). Raises EtcdBackupError when none fits.
    """
    candidates = list(candidates)
    if wanted:
        match = [c for c in candidates if c.get("name") == wanted]
        if not match:
            raise EtcdBackupError("no etcd member is named %r (members: %s)"
                                  % (wanted, ", ".join(c.get("name") or "(not started)" for c in candidates)),
                                  "give a member name as etcd_info lists it, or leave member unset", where="member")
        chosen = match[0]
        if not chosen.get("healthy"):
            raise EtcdBackupError("member %s is not healthy: %s" % (wanted, chosen.get("error") or "no answer"),
                                  "leave member unset to use any healthy member, or bring %s back" % wanted,
                                  where="member")
        return MemberChoice(wanted, "asked for (member: %s)" % wanted, [])
    skipped, followers, leaders = [], [], []
    for candidate in candidates:
        name = candidate.get("name") or "(not started)"
        if not candidate.get("healthy"):
            skipped.append({"name": name, "reason": "not healthy: %s" % (candidate.get("error") or "no answer")})
        elif candidate.get("is_learner"):
            skipped.append({"name": name, "reason": "a learner (it may still be catching up)"})
        elif candidate.get("is_leader"):
            leaders.append(name)
        else:
            followers.append(name)
    if followers:
        skipped += [{"name": name, "reason": "the leader: a healthy follower is used instead"} for name in leaders]
        return MemberChoice(followers[0], "the first healthy follower (the leader is spared the extra load)",
                            skipped)
    if leaders:
        return MemberChoice(leaders[0], "the leader: no healthy follower", skipped)
    raise EtcdBackupError("no healthy voting member to take a snapshot from (%s)"
                          % "; ".join("%s: %s" % (s["name"], s["reason"]) for s in skipped) if skipped else
                          "the member list is empty",
                          "bring a member back (baremetal.k8s.etcd_info shows each member's health)",
                          where="etcd")


# --------------------------------------------------------------------------- retention


@dataclass(frozen=True)
class Snapshot:
    """A snapshot as retention sees it: its name, when, its revision, whether it verified."""

    name: str
    taken_at: float
    revision: int
    verified: bool


@dataclass(frozen=True)
class RetentionDecision:
    name: str
    action: str  # "keep" or "prune"
    reason: str

    def as_dict(self) -> dict:
        return {"name": self.name, "action": self.action, "reason": self.reason}


@dataclass
class PrunePlan:
    decisions: list[RetentionDecision]  # newest first
    newest_verified: str | None

    @property
    def keep(self) -> list[str]:
        return [d.name for d in self.decisions if d.action == "keep"]

    @property
    def prune(self) -> list[str]:
        return [d.name for d in self.decisions if d.action == "prune"]

    def decision(self, name: str) -> RetentionDecision:
        return next(d for d in self.decisions if d.name == name)


def _check_retention(keep_last, max_age_seconds) -> None:
    if keep_last is not None and (not isinstance(keep_last, int) or isinstance(keep_last, bool) or keep_last < 0):
        raise EtcdBackupError("%r is not a whole number >= 0" % (keep_last,),
                              "give how many verified snapshots to keep, e.g. 48 (0: no count rule)",
                              where="keep_last")
    if max_age_seconds is not None and (isinstance(max_age_seconds, bool)
                                        or not isinstance(max_age_seconds, (int, float)) or max_age_seconds <= 0):
        raise EtcdBackupError("%r is not a number of seconds above 0" % (max_age_seconds,),
                              "give an age such as 7d, or leave it unset", where="max_age")


def _order(snapshot: Snapshot):
    return (snapshot.taken_at, snapshot.revision, snapshot.name)


def prune_plan(snapshots, keep_last: int | None, max_age_seconds: float | None, now: float) -> PrunePlan:
    """A keep/prune decision with its reason for every snapshot (newest first).

    The rules (docs/etcd.md, "Snapshots and retention"):

    * the newest verified snapshot is always kept;
    * ``keep_last`` N (None or 0: no count rule): the N newest *verified* snapshots are kept; an unverified
      one never counts toward N, so a run of broken snapshots cannot push the good ones out. An unverified
      snapshot newer than the oldest of those N is kept too (for inspection; it is inside the window), and
      while fewer than N snapshots verify, the count rule prunes nothing;
    * ``max_age_seconds`` (None: no age rule): a snapshot at most that old is kept, verified or not;
    * both set: a snapshot is kept when either rule keeps it. Neither set: everything is kept;
    * everything else is pruned, with the rule that let it go.

    Applying the plan and planning again (same ``now``) prunes nothing.
    """
    _check_retention(keep_last, max_age_seconds)
    ordered = sorted(snapshots, key=_order, reverse=True)
    names = [s.name for s in ordered]
    if len(set(names)) != len(names):
        raise EtcdBackupError("a snapshot name appears twice", "list each snapshot once", where="snapshots")
    verified = [s for s in ordered if s.verified]
    newest = verified[0] if verified else None
    count_rule = bool(keep_last)
    window_full = count_rule and len(verified) >= keep_last
    by_count = {s.name for s in verified[:keep_last]} if count_rule else set()
    oldest_counted = verified[keep_last - 1] if window_full else None
    decisions = []
    for snap in ordered:
        age = now - snap.taken_at
        young = max_age_seconds is not None and age <= max_age_seconds
        if newest is not None and snap.name == newest.name:
            decisions.append(RetentionDecision(snap.name, "keep", "the newest verified snapshot: never pruned"))
        elif snap.name in by_count:
            decisions.append(RetentionDecision(snap.name, "keep", "one of the %d newest verified snapshots "
                                               "(keep_last %d)" % (keep_last, keep_last)))
        elif young:
            decisions.append(RetentionDecision(snap.name, "keep", "%s old, within max_age %s"
                                               % (human_age(age), human_age(max_age_seconds))))
        elif count_rule and not window_full:
            decisions.append(RetentionDecision(snap.name, "keep", "only %d of keep_last %d snapshots verify: the "
                                               "count rule prunes nothing yet" % (len(verified), keep_last)))
        elif count_rule and not snap.verified and _order(snap) > _order(oldest_counted):
            decisions.append(RetentionDecision(snap.name, "keep", "not verified (does not count toward keep_last), "
                                               "kept while newer than %s, the oldest snapshot keep_last keeps"
                                               % oldest_counted.name))
        elif not count_rule and max_age_seconds is None:
            decisions.append(RetentionDecision(snap.name, "keep", "no retention rule is set (keep_last 0, no "
                                               "max_age)"))
        else:
            why = []
            if count_rule:
                why.append("not among the %d newest verified snapshots (keep_last %d)%s"
                           % (keep_last, keep_last, "" if snap.verified else ", and not verified"))
            if max_age_seconds is not None:
                why.append("%s old, past max_age %s" % (human_age(age), human_age(max_age_seconds)))
            decisions.append(RetentionDecision(snap.name, "prune", "; ".join(why)))
    return PrunePlan(decisions, newest.name if newest else None)


def human_age(seconds: float) -> str:
    """3d4h, 2h5m, 40s: for reasons."""
    seconds = int(max(0, seconds))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            parts.append("%d%s" % (seconds // size, unit))
            seconds %= size
    if seconds or not parts:
        parts.append("%ds" % seconds)
    return "".join(parts[:2])


# --------------------------------------------------------------------------- PKI bundle


def _derive(key: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    return Scrypt(salt=salt, length=32, n=1 << log2_n, r=r, p=p).derive(key.encode("utf-8"))


def _check_key(key) -> None:
    if not isinstance(key, str) or not key:
        raise PkiBundleError("the passphrase is empty", "give the PKI bundle passphrase (from the vault)",
                             where="key")


def _check_file_name(name) -> None:
    parts = name.split("/") if isinstance(name, str) else []
    if not parts or name.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise PkiBundleError("%r is not a relative file name" % (name,),
                             "name files relative to the pki directory, such as etcd/ca.key", where="files")


def seal_pki(files: dict, key: str) -> bytes:
    """FILES (relative name -> content) sealed with AES-256-GCM under a key derived from the passphrase KEY."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    _check_key(key)
    if not isinstance(files, dict) or not files:
        raise PkiBundleError("no files to seal", "give the pki files, e.g. KUBEADM_PKI_FILES", where="files")
    payload = {}
    for name, content in files.items():
        _check_file_name(name)
        if not isinstance(content, (bytes, bytearray)):
            raise PkiBundleError("%s: the content is not bytes" % name, "read the files in binary mode",
                                 where="files")
        payload[name] = base64.b64encode(bytes(content)).decode("ascii")
    salt, nonce = os.urandom(16), os.urandom(12)
    header = PKI_HEADER.pack(PKI_MAGIC, PKI_VERSION, SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P, salt, nonce)
    plain = json.dumps({"files": payload}, sort_keys=True).encode("utf-8")
    aead = AESGCM(_derive(key, salt, SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P))
    return header + aead.encrypt(nonce, plain, header)


def open_pki(blob: bytes, key: str) -> dict:
    """The files of a bundle made by seal_pki. Raises PkiBundleError for a wrong passphrase or a damaged file."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    _check_key(key)
    if not isinstance(blob, (bytes, bytearray)) or len(blob) < PKI_HEADER.size + 16 \
            or bytes(blob[:len(PKI_MAGIC)]) != PKI_MAGIC:
        raise PkiBundleError("not a baremetal.k8s PKI bundle", "give the .pki file written with the snapshot",
                             where="bundle")
    blob = bytes(blob)
    version, log2_n, r, p, salt, nonce = PKI_HEADER.unpack(blob[:PKI_HEADER.size])[1:]
    if version != PKI_VERSION:
        raise PkiBundleError("bundle format version %d, this collection reads version %d" % (version, PKI_VERSION),
                             "open it with the collection version that wrote it", where="bundle")
    if not (1 <= log2_n <= 22 and 1 <= r <= 32 and 1 <= p <= 16):
        raise PkiBundleError("the key derivation parameters are out of range: the file is damaged",
                             "use another copy of the bundle", where="bundle")
    try:
        plain = AESGCM(_derive(key, salt, log2_n, r, p)).decrypt(nonce, blob[PKI_HEADER.size:], blob[:PKI_HEADER.size])
    except InvalidTag:
        raise PkiBundleError("the bundle does not open with this passphrase: the passphrase is wrong, or the file "
                             "was changed or damaged", "give the passphrase the bundle was sealed with, or use "
                             "another copy", where="bundle") from None
    try:
        payload = json.loads(plain.decode("utf-8"))["files"]
        return {name: base64.b64decode(content) for name, content in payload.items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        raise PkiBundleError("the bundle opened but its content is malformed", "use another copy",
                             where="bundle") from None


def collect_pki(root: str = KUBEADM_PKI_DIR, names=KUBEADM_PKI_FILES) -> dict:
    """The pki files under ROOT as seal_pki takes them. Raises EtcdBackupError naming a missing one."""
    files = {}
    for name in names:
        _check_file_name(name)
        path = os.path.join(root, name)
        try:
            with open(path, "rb") as handle:
                files[name] = handle.read()
        except OSError as exc:
            raise EtcdBackupError("cannot read it: %s" % (exc.strerror or exc),
                                  "run on a kubeadm control plane (kubeadm init writes it) as root", where=path) \
                from None
    return files


# --------------------------------------------------------------------------- the backup job's words


def pki_files(_unused=None) -> list:
    """KUBEADM_PKI_FILES as a list (etcd_backup.yml reads them with slurp)."""
    return list(KUBEADM_PKI_FILES)


def backup_line(result: dict) -> str:
    """One summary line of etcd_backup.yml for one cluster's result (the play's etcd_backup_result)."""
    size = result.get("size")
    size_text = "%.1f MB" % (int(size) / 1e6) if str(size or "").isdigit() else "size unknown"
    pruned = result.get("pruned") or []
    return ("cluster %s: %s (revision %s, %s) from %s, stored in %s%s; %s kept, %d pruned%s" % (
        result.get("cluster"), result.get("snapshot"), result.get("revision"), size_text, result.get("member"),
        result.get("stored"), " with its PKI bundle" if result.get("pki_bundle") in (True, "True", "true") else "",
        result.get("kept"), len(pruned), (" (%s)" % ", ".join(pruned)) if pruned else ""))


# Far past any revision the cluster can have reached since the snapshot: watchers never see revisions go back
# (etcd's own advice for restoring a Kubernetes etcd; --mark-compacted makes them re-list).
RESTORE_BUMP_REVISION = 1_000_000_000
RESTORE_DATA_DIR = "/var/lib/etcd"  # kubeadm's stacked etcd


def restore_plan(manifest: dict, members: list, now: float, data_dir: str = RESTORE_DATA_DIR) -> dict:
    """How etcd_restore.yml restores the snapshot of MANIFEST onto MEMBERS ([{name, peer_url}] or
    {name: peer_url}, every control plane of the cluster): one ``etcdutl snapshot restore`` per member with
    the same initial cluster and a new cluster token, the old data directory moved aside (never deleted),
    and the plan's lines for the job log."""
    if not isinstance(manifest, dict) or not manifest.get("cluster"):
        raise EtcdBackupError("the snapshot's manifest has no cluster", "restore a snapshot taken by etcd_backup.yml "
                              "(its <name>.db.json names the cluster)", where="manifest")
    if isinstance(members, dict):  # {name: peer_url}, in the inventory's order
        members = [{"name": name, "peer_url": url} for name, url in members.items()]
    problems = []
    names = [str(m.get("name") or "") for m in members or []]
    if not names:
        problems.append("no control plane to restore onto")
    if len(set(names)) != len(names) or "" in names:
        problems.append("member names are empty or repeated: %s" % names)
    for member in members or []:
        if not str(member.get("peer_url", "")).startswith("https://"):
            problems.append("%s: peer URL %r is not https://ADDRESS:2380"
                            % (member.get("name"), member.get("peer_url")))
    if problems:
        raise EtcdBackupError("; ".join(problems), "give every control plane of the cluster with its private address",
                              where="members")
    stamp = datetime.datetime.fromtimestamp(now, datetime.timezone.utc).strftime(TIME_FORMAT)
    token = "bmk8s-restore-%s-%s" % (manifest["cluster"], stamp.lower())
    initial = ",".join("%s=%s" % (m["name"], m["peer_url"]) for m in members)
    data_dir = data_dir.rstrip("/")
    # Inside the data directory, so every step is a rename on one file system: /var/lib/etcd is often a disk
    # of its own (a mount point cannot be moved), and etcdutl only restores into an empty or new directory.
    staging = "%s/.restore-%s" % (data_dir, stamp)
    moved = "%s/member.before-restore-%s" % (data_dir, stamp)
    argv = {}
    for member in members:
        argv[member["name"]] = [
            "etcdutl", "snapshot", "restore", "SNAPSHOT", "--name", member["name"], "--initial-cluster", initial,
            "--initial-cluster-token", token, "--initial-advertise-peer-urls", member["peer_url"],
            "--data-dir", staging, "--bump-revision", str(RESTORE_BUMP_REVISION), "--mark-compacted"]
    lines = [
        "restore %s (cluster %s, revision %s, taken %s from %s)" % (
            manifest.get("name") or "the snapshot", manifest["cluster"], manifest.get("revision"),
            manifest.get("taken_at"), manifest.get("member")),
        "stop kube-apiserver and etcd on %s (their static pod manifests held aside)" % ", ".join(names),
        "restore the same snapshot on every member into %s: initial cluster %s, new cluster token %s, revisions "
        "bumped by %d and marked compacted" % (staging, initial, token, RESTORE_BUMP_REVISION),
        "move the old %s/member aside to %s (kept, never deleted) and the restored one into its place"
        % (data_dir, moved),
        "start etcd on all, wait for quorum; start kube-apiserver; verify the members, the API through the VIP, "
        "every node Ready and the kube-system pods running",
    ]
    return {"token": token, "initial_cluster": initial, "data_dir": data_dir, "staging_dir": staging,
            "moved_member_dir": moved, "argv": argv, "lines": lines, "members": names}
