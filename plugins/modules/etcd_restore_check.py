#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: etcd_restore_check
short_description: Prove an etcd snapshot restores - restore it into a throwaway etcd and check the keys
version_added: 0.1.0
description:
  - An untested backup is not a backup. This module takes a snapshot written by
    M(baremetal.k8s.etcd_snapshot) and, on the host the task runs on (normally the backup host or the
    controller), in this order, stopping at the first step that fails
  - 1. verifies it like M(baremetal.k8s.etcd_backups) does (etcd's sha256 trailer, the manifest's sha256 and
    size);
  - 2. restores it with C(etcdutl snapshot restore) into a private temporary directory (mode 0700) under
    O(work_dir);
  - 3. starts an C(etcd) alone on the restored data, plain HTTP on free loopback ports, and waits for it to
    be healthy;
  - 4. counts every key or prefix of O(expected_keys) and all keys, and reads the revision, which must not
    be older than the manifest's;
  - 5. stops etcd and removes the directory, always, also when a step failed.
  - It fails, with every problem in the message, when the snapshot does not verify, does not restore, does
    not start, or lacks an expected key; RV(check) is returned in either case.
  - Nothing is left behind, so it runs in check mode too and never reports a change.
author:
  - baremetal.k8s maintainers (@baremetal)
options:
  path:
    description: The snapshot file (its manifest, the file name with C(.json) appended, beside it).
    type: path
    required: true
  etcd_binary:
    description:
      - The etcd server to start on the restored data; it should be the version the cluster runs.
      - Unset - taken from O(etcd_image), else C(etcd) in the PATH.
    type: path
  etcd_image:
    description:
      - A docker image archive holding the etcd server at C(/usr/local/bin/etcd) - the air-gap artifact
        set's C(images/etcd.tar), or C(docker save registry.k8s.io/etcd:TAG). Used when O(etcd_binary) is not
        given; the server is copied out into the temporary directory.
    type: path
  etcdutl:
    description: etcd's offline tool (the air-gap set's C(bin/etcdutl)). Unset - C(etcdutl) in the PATH.
    type: path
  expected_keys:
    description:
      - Keys the restored database must hold; one ending with C(/) is a prefix that must have at least one
        key under it.
      - The default is what every kubeadm cluster holds - the default and kube-system namespaces, the
        kubernetes Service, the kubeadm-config ConfigMap and at least one Node.
    type: list
    elements: str
  min_keys:
    description: The fewest keys the database may hold.
    type: int
    default: 1
  work_dir:
    description:
      - Where the temporary directory is made (it needs room for the restored database). Default is the system's.
    type: path
  timeout:
    description: Seconds etcd may take to become healthy on the restored data.
    type: float
    default: 60
attributes:
  check_mode:
    support: full
    description: Runs the whole check in check mode too; it leaves nothing behind.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to show.
seealso:
  - module: baremetal.k8s.etcd_snapshot
  - module: baremetal.k8s.etcd_backups
"""

EXAMPLES = r"""
- name: Find the newest verified snapshot
  baremetal.k8s.etcd_backups:
    path: /var/backups/baremetal-k8s/etcd
    cluster: prod-1
  register: backups

- name: Restore it into a throwaway etcd and check it holds the cluster
  baremetal.k8s.etcd_restore_check:
    path: "{{ backups.newest_verified.path }}"
    etcd_image: /srv/artifacts/images/etcd.tar
    etcdutl: /srv/artifacts/bin/etcdutl
  register: restore_check
"""

RETURN = r"""
check:
  description: What the check found.
  returned: always
  type: dict
  contains:
    path:
      description: The snapshot.
      type: str
    ok:
      description: Whether it verified, restored, started and holds every expected key.
      type: bool
    problems:
      description: Every problem found, in words; empty when RV(check.ok).
      type: list
      elements: str
    step:
      description: The last step reached - verify, restore, start, read or done.
      type: str
    keys:
      description: Each expected key or prefix and how many keys it matched.
      type: dict
      sample: {"/registry/namespaces/default": 1, "/registry/minions/": 5}
    total_keys:
      description: Keys in the restored database (null when it was not read).
      type: int
    revision:
      description: The restored etcd's revision (null when it was not read).
      type: int
    manifest_revision:
      description: The revision the manifest recorded when the snapshot was taken.
      type: int
    etcd_version:
      description: The version of the etcd that served the restored data.
      type: str
    seconds:
      description: Wall seconds per step (verify, restore, start, read).
      type: dict
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.baremetal.k8s.plugins.module_utils.errors import BaremetalError
from ansible_collections.baremetal.k8s.plugins.module_utils.etcd_restore_check import (
    KUBERNETES_KEYS,
    RestoreCheckError,
    check_snapshot,
    extract_etcd,
)


def argument_spec():
    return dict(
        path=dict(type="path", required=True),
        etcd_binary=dict(type="path"),
        etcd_image=dict(type="path"),
        etcdutl=dict(type="path"),
        expected_keys=dict(type="list", elements="str", no_log=False),
        min_keys=dict(type="int", default=1, no_log=False),
        work_dir=dict(type="path"),
        timeout=dict(type="float", default=60.0),
    )


def tool(module, given, name, option):
    """GIVEN, or NAME found in the PATH; a RestoreCheckError naming OPTION when there is neither."""
    found = given or module.get_bin_path(name)
    if not found:
        raise RestoreCheckError("%s is not in the PATH" % name, "give %s (the air-gap artifact set has it)" % option,
                                where=option)
    return found


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True,
                           mutually_exclusive=[("etcd_binary", "etcd_image")])
    p = module.params
    result = dict(changed=False, check=None)
    try:
        if p["timeout"] <= 0 or p["min_keys"] < 0:
            raise RestoreCheckError("timeout must be above 0 and min_keys at least 0",
                                    "give seconds such as 60 and a key count such as 1", where="timeout/min_keys")
        etcdutl = tool(module, p["etcdutl"], "etcdutl", "etcdutl")
        with tempfile.TemporaryDirectory(prefix="bmk8s-etcd-bin-", dir=p["work_dir"]) as bin_dir:
            if p["etcd_image"]:
                etcd = extract_etcd(p["etcd_image"], os.path.join(bin_dir, "etcd"))
            else:
                etcd = tool(module, p["etcd_binary"], "etcd", "etcd_binary")
            check = check_snapshot(p["path"], etcd=etcd, etcdutl=etcdutl,
                                   expected=KUBERNETES_KEYS if p["expected_keys"] is None else p["expected_keys"],
                                   min_keys=p["min_keys"], work_dir=p["work_dir"], timeout=p["timeout"])
    except BaremetalError as exc:
        module.fail_json(msg=str(exc), **result)
    except OSError as exc:
        module.fail_json(msg="%s: %s. Fix: check work_dir is a writable directory with room for the database"
                         % (exc.filename or p["work_dir"] or tempfile.gettempdir(), exc.strerror or exc), **result)
    result["check"] = check.as_dict()
    if not check.ok:
        module.fail_json(msg="%s: the snapshot did not pass the restore check (step %s): %s. Fix: take a new "
                         "snapshot (etcd_backup.yml) and restore from a snapshot that passes"
                         % (p["path"], check.step, "; ".join(check.problems)), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
