#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: etcd_snapshot
short_description: Take a verified snapshot of an etcd cluster from one healthy member
version_added: 0.1.0
description:
  - Streams a snapshot of the etcd database (kubeadm's stacked etcd by default) from one healthy member
    through etcd's v3 JSON gateway (C(/v3/maintenance/snapshot), what C(etcdctl snapshot save) asks for),
    into O(dest) on the host the task runs on.
  - The snapshot is written to C(<name>.part) (its final file name with C(.part) appended) as it
    arrives, never held in memory; its etcd sha256 trailer is checked, and only then is it renamed to its
    final name C(<cluster>-<UTC %Y%m%dT%H%M%SZ>-r<revision>.db) (mode 0600). A manifest next to it, the
    snapshot's file name with C(.json) appended (mode 0600), records the cluster, the member, the endpoint,
    the revision, the etcd version, when, the size, the sha256 of the file and whether etcd's own hash
    matched. A snapshot whose trailer does not match is deleted and the task fails.
  - The member is chosen among the healthy ones, asked in parallel like M(baremetal.k8s.etcd_info) does -
    a cluster with a member down still snapshots from a healthy one. Without O(member), a healthy
    voting follower is used before the leader (a snapshot reads the whole database and sends it over the
    network; on the leader that competes with heartbeats and log replication), the leader only when it is
    the only healthy voter, a learner never.
  - The revision in the name is the chosen member's (its status header) just before the snapshot starts;
    the snapshot holds at least that revision (writes that land during the transfer may be in it too).
  - Retention and verification of the snapshots kept are M(baremetal.k8s.etcd_backups)'. See docs/etcd.md.
author:
  - baremetal.k8s maintainers (@baremetal)
extends_documentation_fragment:
  - baremetal.k8s.etcd_auth
options:
  cluster:
    description:
      - Name of the cluster (the fleet's cluster name); the first part of the snapshot's name.
    type: str
    required: true
  dest:
    description:
      - Directory for the snapshot and its manifest on the host the task runs on.
      - Created with mode 0700 when missing (an existing directory's mode is left alone).
    type: path
    required: true
  member:
    description:
      - Name of the member to take the snapshot from (as M(baremetal.k8s.etcd_info) lists it).
      - The task fails when that member is not healthy; another member is not used instead.
      - Default - a healthy voting follower, else the leader.
    type: str
  snapshot_timeout:
    description:
      - Seconds to wait for each chunk of the snapshot stream (not for the whole transfer); a large database
        on a busy disk may take long to start.
    type: float
    default: 120.0
attributes:
  check_mode:
    support: full
    description:
      - Asks the members and reports the member it would use and the name it would write
        (C(changed) true), and writes nothing.
  diff_mode:
    support: none
    description: A snapshot is new data, not a change of an existing one.
notes:
  - O(dest) needs room for the database (the member's C(dbSize)); the task fails before streaming when it has
    less free space than that.
seealso:
  - module: baremetal.k8s.etcd_backups
  - module: baremetal.k8s.etcd_info
"""

EXAMPLES = r"""
- name: Snapshot the stacked etcd from a control plane into /var/backups/etcd
  baremetal.k8s.etcd_snapshot:
    cluster: prod-1
    dest: /var/backups/etcd
    endpoints: "{{ groups['control_plane'] | map('extract', hostvars, 'ansible_host')
                   | map('regex_replace', '^(.*)$', 'https://\\1:2379') | list }}"
  register: snap

- name: Bring it to the backup host
  ansible.builtin.fetch:
    src: "{{ snap.path }}"
    dest: /srv/backups/etcd/
    flat: true

- name: Take it from one member in particular
  baremetal.k8s.etcd_snapshot:
    cluster: prod-1
    dest: /var/backups/etcd
    member: cp-2
"""

RETURN = r"""
path:
  description: Path of the snapshot (in check mode, the path it would have).
  returned: always
  type: str
  sample: /var/backups/etcd/prod-1-20260131T020000Z-r48213.db
name:
  description: File name of the snapshot, C(<cluster>-<UTC %Y%m%dT%H%M%SZ>-r<revision>.db).
  returned: always
  type: str
  sample: prod-1-20260131T020000Z-r48213.db
manifest_path:
  description: Path of the manifest, the snapshot's path with C(.json) appended.
  returned: always
  type: str
manifest:
  description: The manifest as written (null in check mode); the same values as the keys below.
  returned: always
  type: dict
cluster:
  description: O(cluster).
  returned: always
  type: str
member:
  description: Name of the member the snapshot was (or would be) taken from.
  returned: always
  type: str
  sample: cp-2
member_reason:
  description: Why that member.
  returned: always
  type: str
  sample: the first healthy follower (the leader is spared the extra load)
passed_over:
  description: The members passed over, each with why.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Member name.
      type: str
    reason:
      description: Why it was not used.
      type: str
endpoint:
  description: The client URL of that member the snapshot was streamed from.
  returned: always
  type: str
  sample: https://10.10.0.12:2379
revision:
  description: The member's revision just before the snapshot; the snapshot holds at least this revision.
  returned: always
  type: int
  sample: 48213
raft_index:
  description: The member's raft index just before the snapshot.
  returned: always
  type: int
etcd_version:
  description: etcd version of the member.
  returned: always
  type: str
  sample: 3.6.16
storage_version:
  description: Storage version the snapshot stream named (etcd 3.6+; null before).
  returned: success
  type: str
  sample: 3.6.0
taken_at:
  description: When the snapshot started, ISO 8601 UTC (the time in the name).
  returned: always
  type: str
  sample: "2026-01-31T02:00:00Z"
size:
  description: Size of the snapshot in bytes (null in check mode).
  returned: always
  type: int
sha256:
  description: sha256 of the snapshot file, hex (null in check mode).
  returned: always
  type: str
etcd_hash_ok:
  description: Whether etcd's sha256 trailer matched the data (always true for a written snapshot; null in check mode).
  returned: always
  type: bool
pki_bundle:
  description: Name of the PKI bundle taken with it; null (this module does not write one).
  returned: always
  type: str
"""

import contextlib
import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.baremetal.k8s.plugins.module_utils.atomic_file import atomic_write_text
from ansible_collections.baremetal.k8s.plugins.module_utils.errors import BaremetalError
from ansible_collections.baremetal.k8s.plugins.module_utils.etcd_backup import (
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
from ansible_collections.baremetal.k8s.plugins.module_utils.etcd_client import (
    EtcdError,
    client_from_params,
    module_argument_spec,
)


def argument_spec():
    spec = module_argument_spec()
    spec.update(
        cluster=dict(type="str", required=True),
        dest=dict(type="path", required=True),
        member=dict(type="str"),
        snapshot_timeout=dict(type="float", default=120.0),
    )
    return spec


def candidates(client):
    """The members as choose_member reads them, and member name -> (Member, MemberProbe)."""
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


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    p = module.params
    result = dict(changed=False, cluster=p["cluster"], manifest=None, size=None, sha256=None, etcd_hash_ok=None,
                  pki_bundle=None, storage_version=None)
    try:
        check_cluster(p["cluster"])
        if p["snapshot_timeout"] <= 0:
            raise EtcdBackupError("%s is not a number of seconds above 0" % p["snapshot_timeout"],
                                  "give how long to wait for each chunk, e.g. 120", where="snapshot_timeout")
        client = client_from_params(p)
        rows, members = candidates(client)
        choice = choose_member(rows, p["member"])
        member = members[choice.name]
        url = member.client_urls[0]
        result.update(member=choice.name, member_reason=choice.reason, passed_over=choice.passed_over, endpoint=url)
        started = time.time()
        status = client.status(url)  # the revision just before the snapshot
        revision = int(status.get("header", {}).get("revision") or 0)
        raft_index = int(status["raftIndex"]) if "raftIndex" in status else None
        db_size = int(status.get("dbSize") or 0)
        name = snapshot_name(p["cluster"], started, revision)
        final = os.path.join(p["dest"], name)
        result.update(name=name, path=final, manifest_path=manifest_path(final), revision=revision,
                      raft_index=raft_index, etcd_version=status.get("version"), taken_at=iso_utc(started))
        if module.check_mode:
            result["changed"] = True  # a snapshot would be written
            module.exit_json(**result)
        make_dest(p["dest"])
        if os.path.exists(final):
            raise EtcdBackupError("the snapshot already exists", "run again in a second (the name holds the time "
                                  "to the second)", where=final)
        if db_size and free_bytes(p["dest"]) < db_size:
            raise EtcdBackupError("%d bytes free, the database is %d bytes" % (free_bytes(p["dest"]), db_size),
                                  "free space there, or snapshot into another dest", where=p["dest"])
        part = part_path(final)
        stream(client, url, part, p["snapshot_timeout"])
        digest = digest_file(part)
        problem = trailer_problem(digest)
        if problem:
            os.unlink(part)
            raise EtcdBackupError("the snapshot from %s failed verification: %s (deleted)" % (url, problem),
                                  "take it again, or from another member (member option)", where=final)
        os.chmod(part, 0o600)
        os.replace(part, final)
        fsync_dir(p["dest"])
        manifest = build_manifest(cluster=p["cluster"], member=choice.name, endpoint=url, revision=revision,
                                  etcd_version=status.get("version"), taken_at=started, digest=digest,
                                  storage_version=client.snapshot_version, raft_index=raft_index)
        atomic_write_text(manifest_path(final), manifest_text(manifest), mode=0o600)
    except (EtcdError, BaremetalError) as exc:
        module.fail_json(msg=str(exc), **result)
    except OSError as exc:
        module.fail_json(msg="%s: %s. Fix: check dest is a writable directory with room for the snapshot"
                         % (exc.filename or p["dest"], exc.strerror or exc), **result)
    result.update(manifest=manifest, size=digest.size, sha256=digest.sha256, etcd_hash_ok=digest.etcd_hash_ok,
                  storage_version=client.snapshot_version, changed=True)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
