# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Taking one snapshot: the orchestration behind baremetal.k8s.etcd_snapshot and the backup timer.

``take_snapshot(client, cluster, dest, ...)`` lists and probes the members, chooses one
(``etcd_backup.choose_member``: a healthy follower before the leader, never a learner), reads its revision,
streams the snapshot into ``<name>.part`` (0600, fsynced), checks etcd's sha256 trailer, renames it to its
final name and writes the manifest beside it (0600, atomically). docs/etcd.md ("etcd_snapshot") has the rules.

No Ansible import: the module (plugins/modules/etcd_snapshot.py) and the timer's run
(etcd_backup_timer.py, which runs on the control planes without Ansible) are shells over it. The clock is
passed in. Bad input and failures raise ``BaremetalError`` subclasses (``EtcdBackupError``, ``EtcdError``)
naming what and the fix; an ``OSError`` on the way becomes an ``EtcdBackupError`` located at the file.
"""

from __future__ import annotations

import contextlib
import os
import time

from .atomic_file import atomic_write_text
from .etcd_backup import (
    EtcdBackupError,
    build_manifest,
    check_cluster,
    choose_member,
    digest_file,
    iso_utc,
    manifest_path,
    manifest_text,
    part_path,
    snapshot_name,
    trailer_problem,
)
from .etcd_client import SNAPSHOT_TIMEOUT


def candidates(client):
    """The members as choose_member reads them, and member name -> Member."""
    members = client.member_list()
    probes = client.probe(members)
    answered = sorted((p for p in probes.values() if p.status), key=lambda p: not p.healthy)
    leader_id = next((p.status.get("leader") for p in answered if p.status.get("leader") not in (None, "0")), None)
    rows = [{"name": m.name, "healthy": probes[m.id].healthy, "is_leader": m.id == leader_id,
             "is_learner": m.is_learner, "error": probes[m.id].error} for m in members]
    return rows, {m.name: m for m in members}


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dest(dest):
    if not os.path.isdir(dest):
        os.makedirs(dest, mode=0o700)
        os.chmod(dest, 0o700)  # whatever the umask


def free_bytes(path):
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize


def stream(client, url, part, timeout):
    """Stream the snapshot into PART (0600), fsynced; the bytes written. Removes PART on any failure."""
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            written = client.snapshot(handle, url, timeout=timeout)
            handle.flush()
            os.fsync(handle.fileno())
        return written
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(part)
        raise


def check_inputs(cluster, snapshot_timeout) -> None:
    """The cluster name and the chunk timeout, before anything is asked. Raises EtcdBackupError."""
    check_cluster(cluster)
    if isinstance(snapshot_timeout, bool) or not isinstance(snapshot_timeout, (int, float)) or snapshot_timeout <= 0:
        raise EtcdBackupError("%s is not a number of seconds above 0" % (snapshot_timeout,),
                              "give how long to wait for each chunk, e.g. 120", where="snapshot_timeout")


def empty_result(cluster) -> dict:
    """The fields every result has before anything is known (etcd_snapshot's RETURN)."""
    return dict(changed=False, cluster=cluster, manifest=None, size=None, sha256=None, etcd_hash_ok=None,
                pki_bundle=None, storage_version=None)


def take_snapshot(client, cluster, dest, *, member=None, snapshot_timeout=SNAPSHOT_TIMEOUT, check=False,
                  clock=time.time, result=None) -> dict:
    """A verified snapshot of the cluster CLIENT talks to, into directory DEST; etcd_snapshot's result fields.

    MEMBER: take it from that member (refused when it is not healthy); default a healthy voting follower, else
    the leader. CHECK: ask the members and return the member and the name it would use (``changed`` true),
    writing nothing. CLOCK: seconds since the epoch (the time in the name and the manifest).

    RESULT, when given, is filled in as the steps go (and returned): a caller that catches the error still has
    the member and the name chosen so far (the module fails with them).
    """
    result = {} if result is None else result
    for key, value in empty_result(cluster).items():
        result.setdefault(key, value)
    check_inputs(cluster, snapshot_timeout)
    try:
        rows, members = candidates(client)
        choice = choose_member(rows, member)
        url = members[choice.name].client_urls[0]
        result.update(member=choice.name, member_reason=choice.reason, passed_over=choice.passed_over, endpoint=url)
        started = clock()
        status = client.status(url)  # the revision just before the snapshot
        revision = int(status.get("header", {}).get("revision") or 0)
        raft_index = int(status["raftIndex"]) if "raftIndex" in status else None
        db_size = int(status.get("dbSize") or 0)
        name = snapshot_name(cluster, started, revision)
        final = os.path.join(dest, name)
        result.update(name=name, path=final, manifest_path=manifest_path(final), revision=revision,
                      raft_index=raft_index, etcd_version=status.get("version"), taken_at=iso_utc(started))
        if check:
            result["changed"] = True  # a snapshot would be written
            return result
        make_dest(dest)
        if os.path.exists(final):
            raise EtcdBackupError("the snapshot already exists", "run again in a second (the name holds the time "
                                  "to the second)", where=final)
        if db_size and free_bytes(dest) < db_size:
            raise EtcdBackupError("%d bytes free, the database is %d bytes" % (free_bytes(dest), db_size),
                                  "free space there, or snapshot into another dest", where=dest)
        part = part_path(final)
        stream(client, url, part, snapshot_timeout)
        digest = digest_file(part)
        problem = trailer_problem(digest)
        if problem:
            os.unlink(part)
            raise EtcdBackupError("the snapshot from %s failed verification: %s (deleted)" % (url, problem),
                                  "take it again, or from another member (member option)", where=final)
        os.chmod(part, 0o600)
        os.replace(part, final)
        fsync_dir(dest)
        manifest = build_manifest(cluster=cluster, member=choice.name, endpoint=url, revision=revision,
                                  etcd_version=status.get("version"), taken_at=started, digest=digest,
                                  storage_version=client.snapshot_version, raft_index=raft_index)
        atomic_write_text(manifest_path(final), manifest_text(manifest), mode=0o600)
    except OSError as exc:
        raise EtcdBackupError(exc.strerror or str(exc), "check dest is a writable directory with room for the "
                              "snapshot", where=exc.filename or dest) from None
    result.update(manifest=manifest, size=digest.size, sha256=digest.sha256, etcd_hash_ok=digest.etcd_hash_ok,
                  storage_version=client.snapshot_version, changed=True)
    return result
