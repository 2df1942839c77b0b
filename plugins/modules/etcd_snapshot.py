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

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.baremetal.k8s.plugins.module_utils.errors import BaremetalError
from ansible_collections.baremetal.k8s.plugins.module_utils.etcd_client import (
    EtcdError,
    client_from_params,
    module_argument_spec,
)
from ansible_collections.baremetal.k8s.plugins.module_utils.etcd_snapshot_take import (
    check_inputs,
    empty_result,
    take_snapshot,
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


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    p = module.params
    result = empty_result(p["cluster"])
    try:
        check_inputs(p["cluster"], p["snapshot_timeout"])  # before the client: a bad name is named first
        client = client_from_params(p)
        take_snapshot(client, p["cluster"], p["dest"], member=p["member"], snapshot_timeout=p["snapshot_timeout"],
                      check=module.check_mode, result=result)
    except (EtcdError, BaremetalError) as exc:
        module.fail_json(msg=str(exc), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
