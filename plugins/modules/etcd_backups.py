#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: etcd_backups
short_description: List, verify and prune the etcd snapshots of a cluster kept in a directory
version_added: 0.1.0
description:
  - Works on the snapshots M(baremetal.k8s.etcd_snapshot) writes, in O(path) on the host the task runs on
    (normally the controller or the backup host) - files named
    C(<cluster>-<UTC %Y%m%dT%H%M%SZ>-r<revision>.db) with a manifest next to each (the snapshot's file name
    with C(.json) appended). Files whose names do not parse are listed in RV(ignored) and never deleted;
    other clusters' snapshots are left alone.
  - O(action=list) lists the snapshots with their manifests and a quick verification (the file is there, not
    empty, its size is the manifest's, and the manifest says etcd's hash trailer matched when it was
    taken). Nothing is hashed, so it is cheap enough for a checker's "age of the last snapshot".
  - O(action=verify) hashes every snapshot - etcd's sha256 trailer and the manifest's sha256 - and fails
    when any of them does not verify (every result is still returned).
  - O(action=prune) verifies like O(action=verify) - except that a snapshot hashed and verified by an earlier
    run, whose size and modification time have not changed since, gets the quick check (the cache file
    C(.bmk8s-verified.json) in O(path); O(rehash=true) hashes everything) - then deletes what the retention
    rules let go - the
    snapshot, its manifest and its PKI bundle. A snapshot is kept when it is one of the O(keep_last) newest
    verified snapshots or when it is not older than O(max_age) (either rule, when both are set); the newest
    verified snapshot is never deleted; a snapshot that does not verify never counts toward O(keep_last)
    (it is kept while newer than the oldest snapshot O(keep_last) keeps). See docs/etcd.md.
  - Every run returns RV(newest_verified) - the newest snapshot that verified, its age and revision.
author:
  - baremetal.k8s maintainers (@baremetal)
options:
  path:
    description: Directory holding the snapshots.
    type: path
    required: true
  cluster:
    description: Cluster name, the first part of the snapshots' names.
    type: str
    required: true
  keep_last:
    description:
      - How many of the newest verified snapshots to keep. V(0) - no count rule (only O(max_age)).
    type: int
    default: 48
  max_age:
    description:
      - Keep every snapshot at most this old, such as V(7d), V(36h), V(1d12h), V(90m), V(2w), or seconds.
      - Unset - no age rule (only O(keep_last)).
    type: str
  action:
    description: What to do (see the description).
    type: str
    choices: [list, verify, prune]
    default: list
  now:
    description: The time to judge ages at (epoch seconds or ISO 8601). Default is the current time.
    type: raw
  rehash:
    description:
      - With O(action=prune), hash every snapshot again, also those verified before and unchanged since.
      - O(action=verify) always does.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: O(action=prune) reports what it would delete (C(changed), RV(pruned), the diff) and deletes nothing.
  diff_mode:
    support: full
    description: O(action=prune) shows the snapshot names before and after.
seealso:
  - module: baremetal.k8s.etcd_snapshot
"""

EXAMPLES = r"""
- name: Keep the last 48 snapshots, and a week of them whatever the count
  baremetal.k8s.etcd_backups:
    path: /srv/backups/etcd
    cluster: prod-1
    keep_last: 48
    max_age: 7d
    action: prune
  delegate_to: localhost

- name: How old is the last good snapshot?
  baremetal.k8s.etcd_backups:
    path: /srv/backups/etcd
    cluster: prod-1
  register: backups
  delegate_to: localhost

- name: Alarm when it is older than a day
  ansible.builtin.assert:
    that: backups.newest_verified and backups.newest_verified.age_seconds < 86400
    fail_msg: "no verified etcd snapshot of prod-1 in the last 24 hours"
"""

RETURN = r"""
snapshots:
  description: The cluster's snapshots, newest first, each with its verification and the retention decision.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: File name.
      type: str
    path:
      description: Full path.
      type: str
    taken_at:
      description: When it was taken (from its name), ISO 8601 UTC.
      type: str
    age_seconds:
      description: Its age at O(now).
      type: int
    revision:
      description: etcd revision (from its name).
      type: int
    size:
      description: Size in bytes.
      type: int
    verified:
      description: Whether it verified (quick with O(action=list), full otherwise).
      type: bool
    reasons:
      description: Why it did not verify (empty when it did).
      type: list
      elements: str
    member:
      description: Member it was taken from (from the manifest; null without one).
      type: str
    etcd_version:
      description: etcd version (from the manifest).
      type: str
    sha256:
      description: sha256 of the file (computed with a full verification, else the manifest's).
      type: str
    hashed:
      description: Whether this run hashed the file (false - the quick check, or verified before and unchanged).
      type: bool
    pki_bundle:
      description: Name of its PKI bundle (from the manifest; null when none).
      type: str
    decision:
      description: V(keep) or V(prune), what the retention rules say (O(action=prune) acts on it).
      type: str
    decision_reason:
      description: Why.
      type: str
      sample: one of the 48 newest verified snapshots (keep_last 48)
newest_verified:
  description: The newest snapshot that verified; null when none did.
  returned: always
  type: dict
  contains:
    name:
      description: File name.
      type: str
    path:
      description: Full path.
      type: str
    age_seconds:
      description: Its age at O(now).
      type: int
    revision:
      description: Its etcd revision.
      type: int
    taken_at:
      description: When it was taken, ISO 8601 UTC.
      type: str
  sample:
    name: prod-1-20260131T020000Z-r48213.db
    path: /srv/backups/etcd/prod-1-20260131T020000Z-r48213.db
    age_seconds: 3600
    revision: 48213
    taken_at: "2026-01-31T02:00:00Z"
count:
  description: Number of snapshots of the cluster (before pruning).
  returned: always
  type: int
verified_count:
  description: How many of them verified.
  returned: always
  type: int
pruned:
  description: Names of the snapshots deleted (in check mode, that would be); empty unless O(action=prune).
  returned: always
  type: list
  elements: str
removed_files:
  description: Every file deleted (snapshots, manifests, bundles); in check mode, that would be.
  returned: always
  type: list
  elements: str
ignored:
  description: C(.db) files in O(path) whose names are not snapshot names; never deleted.
  returned: always
  type: list
  elements: str
exists:
  description: Whether O(path) exists (a missing directory lists no snapshots).
  returned: always
  type: bool
"""

import datetime
import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.baremetal.k8s.plugins.module_utils.atomic_file import atomic_write_text
from ansible_collections.baremetal.k8s.plugins.module_utils.errors import BaremetalError
from ansible_collections.baremetal.k8s.plugins.module_utils.etcd_backup import (
    PKI_SUFFIX,
    SNAPSHOT_SUFFIX,
    VERIFIED_CACHE,
    EtcdBackupError,
    Snapshot,
    check_cluster,
    iso_utc,
    manifest_path,
    parse_duration,
    parse_iso,
    parse_snapshot_name,
    pki_bundle_name,
    prune_plan,
    read_verified_cache,
    verified_cache_text,
    verify_cached,
    verify_snapshot,
)


def argument_spec():
    return dict(
        path=dict(type="path", required=True),
        cluster=dict(type="str", required=True),
        keep_last=dict(type="int", default=48),
        max_age=dict(type="str"),
        action=dict(type="str", choices=["list", "verify", "prune"], default="list"),
        now=dict(type="raw"),
        rehash=dict(type="bool", default=False),
    )


def read_now(value):
    if value is None or value == "":
        return time.time()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    try:
        return float(value)
    except (TypeError, ValueError):
        return parse_iso(str(value))


def scan(path, cluster):
    """(the cluster's snapshot names -> parsed name, unparsable .db names)."""
    found, ignored = {}, []
    for entry in sorted(os.listdir(path)):
        if not entry.endswith(SNAPSHOT_SUFFIX):
            continue
        parsed = parse_snapshot_name(entry)
        if parsed is None:
            ignored.append(entry)
        elif parsed.cluster == cluster and os.path.isfile(os.path.join(path, entry)):
            found[entry] = parsed
    return found, ignored


def companions(path, name, manifest):
    """The files that go with snapshot NAME: its manifest and its PKI bundle, when there."""
    files = [manifest_path(os.path.join(path, name))]
    bundles = {pki_bundle_name(name)}
    if manifest and isinstance(manifest.get("pki_bundle"), str) and manifest["pki_bundle"]:
        bundles.add(os.path.basename(manifest["pki_bundle"]))  # only ever in this directory
    files += [os.path.join(path, b) for b in sorted(bundles) if b.endswith(PKI_SUFFIX)]
    return [f for f in files if os.path.lexists(f)]


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    p = module.params
    result = dict(changed=False, snapshots=[], newest_verified=None, count=0, verified_count=0, pruned=[],
                  removed_files=[], ignored=[], exists=False)
    try:
        check_cluster(p["cluster"])
        now = read_now(p["now"])
        max_age = parse_duration(p["max_age"])
        if p["keep_last"] < 0:
            raise EtcdBackupError("%d is not a whole number >= 0" % p["keep_last"],
                                  "give how many verified snapshots to keep, e.g. 48 (0: no count rule)",
                                  where="keep_last")
        path = p["path"]
        result["exists"] = os.path.isdir(path)
        if not result["exists"]:
            if os.path.exists(path):
                raise EtcdBackupError("not a directory", "give the directory the snapshots are kept in",
                                      where=path)
            module.exit_json(**result)
        found, result["ignored"] = scan(path, p["cluster"])
        checks, hashed, cache = {}, set(), {}
        old_cache = read_verified_cache(path) if p["action"] == "prune" and not p["rehash"] else {}
        for name in found:
            if p["action"] == "list":
                checks[name] = verify_snapshot(os.path.join(path, name), full=False)
                continue
            checks[name], entry, did_hash = verify_cached(os.path.join(path, name), old_cache)
            if did_hash:
                hashed.add(name)
            if entry:
                cache[name] = entry
        plan = prune_plan([Snapshot(name, parsed.taken_at, parsed.revision, checks[name].ok)
                           for name, parsed in found.items()], p["keep_last"], max_age, now)
    except (BaremetalError, OSError) as exc:
        module.fail_json(msg=str(exc), **result)

    rows = []
    for decision in plan.decisions:
        parsed, check = found[decision.name], checks[decision.name]
        manifest = check.manifest or {}
        rows.append(dict(
            name=decision.name, path=os.path.join(path, decision.name), taken_at=iso_utc(parsed.taken_at),
            age_seconds=int(now - parsed.taken_at), revision=parsed.revision, size=check.size,
            verified=check.ok, reasons=check.reasons, hashed=decision.name in hashed, member=manifest.get("member"),
            etcd_version=manifest.get("etcd_version"), sha256=check.sha256, pki_bundle=manifest.get("pki_bundle"),
            decision=decision.action, decision_reason=decision.reason,
        ))
    newest = next((r for r in rows if r["name"] == plan.newest_verified), None)
    if newest:
        newest = {k: newest[k] for k in ("name", "path", "age_seconds", "revision", "taken_at")}
    result.update(snapshots=rows, count=len(rows), verified_count=sum(1 for r in rows if r["verified"]),
                  newest_verified=newest)

    if p["action"] == "verify":
        bad = [r for r in rows if not r["verified"]]
        if bad:
            module.fail_json(msg="%s: %d of %d snapshots of %s do not verify: %s. Fix: take a new snapshot "
                             "(baremetal.k8s.etcd_snapshot); action=prune removes the bad ones once they age out"
                             % (path, len(bad), len(rows), p["cluster"],
                                "; ".join("%s (%s)" % (r["name"], ", ".join(r["reasons"])) for r in bad)),
                             **result)
    elif p["action"] == "prune":
        doomed = plan.prune
        files = []
        for name in doomed:
            files.append(os.path.join(path, name))
            files += companions(path, name, checks[name].manifest)
        result.update(pruned=doomed, removed_files=files, changed=bool(doomed))
        if module._diff:
            result["diff"] = {"before": {"snapshots": [r["name"] for r in rows]},
                              "after": {"snapshots": [r["name"] for r in rows if r["name"] not in doomed]},
                              "before_header": "%s snapshots in %s" % (p["cluster"], path),
                              "after_header": "%s snapshots in %s" % (p["cluster"], path)}
        if not module.check_mode:
            removed = []
            for file_path in files:
                try:
                    os.unlink(file_path)
                    removed.append(file_path)
                except FileNotFoundError:
                    pass  # gone meanwhile
                except OSError as exc:
                    result["removed_files"] = removed
                    module.fail_json(msg="%s: cannot delete it: %s. Fix: check the backup directory's permissions"
                                     % (file_path, exc.strerror or exc), **result)
            result["removed_files"] = removed
    if p["action"] != "list" and not module.check_mode:
        kept = {name: entry for name, entry in cache.items() if name not in result["pruned"]}
        if kept != read_verified_cache(path):
            try:
                atomic_write_text(os.path.join(path, VERIFIED_CACHE), verified_cache_text(kept), mode=0o600)
            except OSError as exc:
                module.warn("%s: the verification cache was not written (%s): the next run hashes every snapshot "
                            "again" % (os.path.join(path, VERIFIED_CACHE), exc.strerror or exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
