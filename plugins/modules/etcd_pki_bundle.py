#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: etcd_pki_bundle
short_description: Seal kubeadm's CA keys into an encrypted PKI bundle next to an etcd snapshot, or open one
version_added: 0.1.0
description:
  - A snapshot alone does not rebuild the same cluster - every certificate, kubeconfig and service-account
    token chains to kubeadm's CAs and signing key under C(/etc/kubernetes/pki). This module keeps them in one
    file, sealed with AES-256-GCM under a key derived with scrypt from the operator's passphrase O(key)
    (docs/etcd.md, "The PKI bundle").
  - Runs where the backups are kept - the controller or a backup host. It needs the Python C(cryptography)
    package, which ansible-core itself depends on, so the controller always has it; kubeadm's control-plane
    hosts usually do not. Read the files there with M(ansible.builtin.slurp) and pass their C(content).
  - O(state=sealed) writes the bundle O(path) atomically, mode 0600 (a missing directory is created 0700),
    from O(files). Every name must be one of kubeadm's cluster-wide PKI files and all of them must be given
    (C(ca.crt), C(ca.key), C(sa.key), C(sa.pub), C(front-proxy-ca.crt), C(front-proxy-ca.key),
    C(etcd/ca.crt), C(etcd/ca.key)) - a bundle without a CA key would restore a different cluster.
  - When O(path) already exists, it is opened with O(key). Holding exactly the same files, it is left as it is
    (C(changed=false); sealing again would only change the random salt and nonce). Holding other files or
    contents, or not opening with O(key), the task fails and the bundle is kept, unless O(force=true), which
    replaces it.
  - With O(snapshot), the snapshot's manifest (the snapshot's path with C(.json) appended) records the bundle
    (its C(pki_bundle) becomes the file name of O(path)), written atomically with every other field kept, so
    the snapshot still verifies and M(baremetal.k8s.etcd_backups) prunes the bundle with its snapshot. The
    bundle must then be in the snapshot's directory.
  - O(state=opened) opens O(path) with O(key) and returns the files in RV(files), relative name to base64
    content (the form M(ansible.builtin.slurp) returns; C(b64decode) gives the PEM text back). The result holds
    the CA private keys - the task must set C(no_log=true) (the module fails without it) and whatever is
    registered must never be printed.
  - A wrong passphrase, or a bundle changed or damaged, fails with a message saying so, never with a traceback.
author:
  - baremetal.k8s maintainers (@baremetal)
options:
  path:
    description:
      - The bundle file. By convention the snapshot's name with C(.pki) instead of C(.db)
        (C(<cluster>-<UTC %Y%m%dT%H%M%SZ>-r<revision>.pki)) in the snapshot's directory.
    type: path
    required: true
  state:
    description:
      - V(sealed) - write the bundle from O(files) (see the description for an existing bundle).
      - V(opened) - read the bundle and return its files in RV(files).
    type: str
    choices: [sealed, opened]
    required: true
  key:
    description:
      - The passphrase the bundle is sealed with (from a vault). Never shown in output.
      - Sealing takes at least 12 characters; opening takes whatever the bundle was sealed with.
    type: str
    required: true
  files:
    description:
      - For O(state=sealed) (required there) - the relative PKI file name (under C(/etc/kubernetes/pki)) to its
        content in base64, exactly what M(ansible.builtin.slurp) returns in C(content) (C(ca.key) mapped to
        C({{ ca_key_slurp.content }}), and so on). Never shown in output.
    type: dict
  snapshot:
    description:
      - For O(state=sealed) - the path of the snapshot the bundle belongs to; its manifest's C(pki_bundle) is set
        to the bundle's file name. The snapshot's manifest must exist and O(path) must be in the same directory.
    type: path
  force:
    description:
      - For O(state=sealed) - replace an existing O(path) that does not open with O(key) or holds other files
        or contents. Without it such a bundle is kept and the task fails.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: O(state=sealed) checks everything, reports RV(outcome), C(changed) and the diff, and writes nothing.
  diff_mode:
    support: full
    description:
      - O(state=sealed) shows the file names in the bundle and the manifest's C(pki_bundle), before and after
        (never contents).
notes:
  - Keep the passphrase somewhere other than the backups; a bundle is only as safe as its passphrase.
seealso:
  - module: baremetal.k8s.etcd_snapshot
  - module: baremetal.k8s.etcd_backups
  - module: ansible.builtin.slurp
"""

EXAMPLES = r"""
- name: Read kubeadm's CA keys on the first control plane
  ansible.builtin.slurp:
    src: "/etc/kubernetes/pki/{{ item }}"
  loop: [ca.crt, ca.key, sa.key, sa.pub, front-proxy-ca.crt, front-proxy-ca.key, etcd/ca.crt, etcd/ca.key]
  register: pki
  no_log: true

- name: Seal them next to the snapshot, and record the bundle in its manifest
  baremetal.k8s.etcd_pki_bundle:
    path: "/srv/backups/etcd/{{ snap.name | regex_replace('\\.db$', '.pki') }}"
    state: sealed
    key: "{{ etcd_backup_pki_key }}"
    files: "{{ dict(pki.results | map(attribute='item') | zip(pki.results | map(attribute='content'))) }}"
    snapshot: "/srv/backups/etcd/{{ snap.name }}"
  delegate_to: localhost

- name: Open the bundle (the result holds the CA keys)
  baremetal.k8s.etcd_pki_bundle:
    path: /srv/backups/etcd/prod-1-20260131T020000Z-r48213.pki
    state: opened
    key: "{{ etcd_backup_pki_key }}"
  delegate_to: localhost
  register: bundle
  no_log: true

- name: The pki directories (ansible.builtin.copy does not create etcd/)
  ansible.builtin.file:
    path: /etc/kubernetes/pki/etcd
    state: directory
    mode: "0700"

- name: Put the CA keys back on a control plane
  ansible.builtin.copy:
    content: "{{ bundle.files[item] | b64decode }}"
    dest: "/etc/kubernetes/pki/{{ item }}"
    mode: "0600"
  loop: "{{ bundle.names }}"
  no_log: true
"""

RETURN = r"""
path:
  description: The bundle file.
  returned: always
  type: str
  sample: /srv/backups/etcd/prod-1-20260131T020000Z-r48213.pki
names:
  description: The relative file names in the bundle, sorted (sealed - the names given; opened - the names in it).
  returned: success
  type: list
  elements: str
  sample: [ca.crt, ca.key, etcd/ca.crt, etcd/ca.key, front-proxy-ca.crt, front-proxy-ca.key, sa.key, sa.pub]
files:
  description:
    - O(state=sealed) - the relative file names sealed, sorted (the same as RV(names); never any content).
    - O(state=opened) - relative file name to its content in base64. Secret, hence C(no_log=true) on the task.
  returned: success
  type: raw
  sample: {"ca.crt": "LS0tLS1CRUdJTi...", "ca.key": "LS0tLS1CRUdJTi..."}
missing:
  description: O(state=opened) - kubeadm's PKI files the bundle does not hold (empty for a bundle this module sealed).
  returned: when O(state=opened)
  type: list
  elements: str
outcome:
  description:
    - O(state=sealed) - V(created) (no bundle was there), V(replaced) (O(force=true) over one that did not open
      with O(key) or held other files), V(unchanged) (it holds the same files) or V(mode) (the same files, its
      mode set back to 0600). In check mode, what would be done.
  returned: when O(state=sealed)
  type: str
  sample: created
reason:
  description: O(state=sealed) - why RV(outcome).
  returned: when O(state=sealed)
  type: str
  sample: no bundle at the path
manifest_path:
  description: O(state=sealed) - the manifest recording the bundle (null without O(snapshot)).
  returned: when O(state=sealed)
  type: str
  sample: /srv/backups/etcd/prod-1-20260131T020000Z-r48213.db.json
manifest_changed:
  description: O(state=sealed) - whether the manifest's C(pki_bundle) was (in check mode, would be) set.
  returned: when O(state=sealed)
  type: bool
pki_bundle:
  description: O(state=sealed) - the file name recorded in the manifest (null without O(snapshot)).
  returned: when O(state=sealed)
  type: str
  sample: prod-1-20260131T020000Z-r48213.pki
"""

import base64
import binascii
import os
import stat

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.baremetal.k8s.plugins.module_utils.atomic_file import atomic_write_bytes, atomic_write_text
from ansible_collections.baremetal.k8s.plugins.module_utils.errors import BaremetalError
from ansible_collections.baremetal.k8s.plugins.module_utils.etcd_backup import (
    KUBEADM_PKI_FILES,
    EtcdBackupError,
    PkiBundleError,
    manifest_path,
    manifest_text,
    open_pki,
    read_manifest,
    seal_pki,
)

MIN_KEY_LENGTH = 12
BUNDLE_MODE = 0o600


def argument_spec():
    return dict(
        path=dict(type="path", required=True),
        state=dict(type="str", choices=["sealed", "opened"], required=True),
        key=dict(type="str", required=True, no_log=True),
        files=dict(type="dict", no_log=True),
        snapshot=dict(type="path"),
        force=dict(type="bool", default=False),
    )


def decode_files(files):
    """FILES (name -> base64, as slurp returns it) -> name -> bytes. Errors name the file, never its content."""
    if not files:
        raise EtcdBackupError("no files given", "give every kubeadm PKI file read with ansible.builtin.slurp, "
                              "name -> content: %s" % ", ".join(KUBEADM_PKI_FILES), where="files")
    decoded = {}
    for name in sorted(files):
        if name not in KUBEADM_PKI_FILES:
            raise EtcdBackupError("%r is not one of kubeadm's cluster-wide PKI files" % (name,),
                                  "name them relative to /etc/kubernetes/pki: %s" % ", ".join(KUBEADM_PKI_FILES),
                                  where="files")
        content = files[name]
        if not isinstance(content, str):
            raise EtcdBackupError("%s: the content is not a base64 string" % name,
                                  "pass the content field of ansible.builtin.slurp's result", where="files")
        try:
            data = base64.b64decode(content.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise EtcdBackupError("%s: the content is not base64" % name,
                                  "pass the content field of ansible.builtin.slurp's result (base64), not the "
                                  "file's text", where="files") from None
        if not data:
            raise EtcdBackupError("%s: the content is empty" % name,
                                  "read the file on a kubeadm control plane (kubeadm init writes it)",
                                  where="files")
        decoded[name] = data
    missing = [n for n in KUBEADM_PKI_FILES if n not in decoded]
    if missing:
        raise EtcdBackupError("%s missing: a bundle without them does not restore the same cluster"
                              % ", ".join(missing), "give all of %s" % ", ".join(KUBEADM_PKI_FILES),
                              where="files")
    return decoded


def check_key_for_sealing(key):
    if len(key) < MIN_KEY_LENGTH:
        raise PkiBundleError("the passphrase has %d characters, fewer than %d" % (len(key), MIN_KEY_LENGTH),
                             "use a long random passphrase from the vault (at least %d characters)"
                             % MIN_KEY_LENGTH, where="key")


def read_bundle(path):
    if not os.path.lexists(path):
        raise PkiBundleError("the bundle is missing", "give the .pki file written with the snapshot", where=path)
    if not os.path.isfile(path):
        raise PkiBundleError("not a regular file", "give the .pki file written with the snapshot", where=path)
    with open(path, "rb") as handle:
        return handle.read()


def open_bundle(path, key):
    """The files in the bundle at PATH; PkiBundleError (located at PATH) when it does not open."""
    blob = read_bundle(path)
    try:
        return open_pki(blob, key)
    except PkiBundleError as exc:
        raise PkiBundleError(exc.problem, exc.fix, where=path) from None


def plan_seal(path, key, files, force):
    """(outcome, reason, names in the existing bundle or None) for sealing FILES into PATH."""
    if not os.path.lexists(path):
        return "created", "no bundle at the path", None
    if not os.path.isfile(path) or os.path.islink(path):
        raise EtcdBackupError("not a regular file", "give the path of a bundle file (or remove what is there)",
                              where=path)
    try:
        existing = open_bundle(path, key)
    except PkiBundleError as exc:
        if force:
            return "replaced", "the bundle there did not open with this key (%s); force: true" % exc.problem, None
        raise EtcdBackupError("a bundle is there and does not open with this key: %s" % exc.problem,
                              "give the passphrase it was sealed with, or force: true to replace it",
                              where=path) from None
    before = sorted(existing)
    if existing == files:
        if stat.S_IMODE(os.stat(path).st_mode) != BUNDLE_MODE:
            return "mode", "it holds the same files; its mode was %o" % stat.S_IMODE(os.stat(path).st_mode), before
        return "unchanged", "it holds the same files", before
    differ = sorted(set(existing) ^ set(files) | {n for n in set(existing) & set(files) if existing[n] != files[n]})
    if force:
        return "replaced", "it held other files or contents (%s); force: true" % ", ".join(differ), before
    raise EtcdBackupError("a bundle is there holding other files or contents (%s)" % ", ".join(differ),
                          "seal into a new path (the snapshot's), or force: true to replace it", where=path)


def plan_manifest(path, snapshot):
    """(manifest path, manifest, the pki_bundle it should name) for recording the bundle PATH with SNAPSHOT."""
    bundle_dir = os.path.dirname(os.path.abspath(path))
    if os.path.dirname(os.path.abspath(snapshot)) != bundle_dir:
        raise EtcdBackupError("the snapshot %s is not in the bundle's directory %s" % (snapshot, bundle_dir),
                              "write the bundle next to its snapshot (etcd_backups prunes them together)",
                              where="snapshot")
    if not os.path.isfile(snapshot):
        raise EtcdBackupError("the snapshot is missing", "give the path of the snapshot the bundle belongs to "
                              "(etcd_snapshot's path)", where=snapshot)
    where = manifest_path(snapshot)
    return where, read_manifest(where), os.path.basename(path)


def seal(module, p, result):
    check_key_for_sealing(p["key"])
    files = decode_files(p["files"])
    names = sorted(files)
    result.update(names=names, files=names)
    manifest_where = manifest = None
    if p["snapshot"]:
        manifest_where, manifest, bundle_name = plan_manifest(p["path"], p["snapshot"])
        result.update(manifest_path=manifest_where, pki_bundle=bundle_name)
        result["manifest_changed"] = manifest.get("pki_bundle") != bundle_name
    outcome, reason, before = plan_seal(p["path"], p["key"], files, p["force"])
    result.update(outcome=outcome, reason=reason, changed=outcome != "unchanged" or result["manifest_changed"])
    if module._diff:
        result["diff"] = {"before": {"files": before, "manifest_pki_bundle": manifest.get("pki_bundle")
                                     if manifest else None},
                          "after": {"files": names, "manifest_pki_bundle": result["pki_bundle"]},
                          "before_header": p["path"], "after_header": p["path"]}
    if module.check_mode:
        return
    if outcome in ("created", "replaced"):
        directory = os.path.dirname(os.path.abspath(p["path"]))
        if not os.path.isdir(directory):
            os.makedirs(directory, mode=0o700)
            os.chmod(directory, 0o700)  # whatever the umask
        atomic_write_bytes(p["path"], seal_pki(files, p["key"]), mode=BUNDLE_MODE)
    elif outcome == "mode":
        os.chmod(p["path"], BUNDLE_MODE)
    if result["manifest_changed"]:
        atomic_write_text(manifest_where, manifest_text(dict(manifest, pki_bundle=result["pki_bundle"])),
                          mode=BUNDLE_MODE)


def unseal(module, p, result):
    if p["files"] is not None or p["snapshot"] or p["force"]:
        raise EtcdBackupError("files, snapshot and force are for state: sealed", "leave them out to open a bundle",
                              where="state")
    files = open_bundle(p["path"], p["key"])  # first: a wrong key or a damaged bundle says so, whatever no_log
    if not module.no_log:
        raise EtcdBackupError("the bundle opens, but state: opened returns the CA private keys in its result and "
                              "this task does not hide it", "set no_log: true on the task (and never print what "
                              "it registers)", where=p["path"])
    result.update(names=sorted(files), files={n: base64.b64encode(c).decode("ascii") for n, c in files.items()},
                  missing=[n for n in KUBEADM_PKI_FILES if n not in files])


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True,
                           required_if=[("state", "sealed", ("files",))])
    p = module.params
    result = dict(changed=False, path=p["path"])
    if p["state"] == "sealed":
        result.update(outcome=None, reason=None, manifest_path=None, manifest_changed=False, pki_bundle=None)
    try:
        if p["state"] == "sealed":
            seal(module, p, result)
        else:
            unseal(module, p, result)
    except ImportError as exc:
        module.fail_json(msg="%s: the Python cryptography package is missing here (%s). Fix: run the task on the "
                         "controller or the backup host (delegate_to), where ansible-core's cryptography is "
                         "installed" % (p["path"], exc), **strip(result))
    except BaremetalError as exc:
        module.fail_json(msg=str(exc), **strip(result))
    except OSError as exc:
        module.fail_json(msg="%s: %s. Fix: check the directory exists and is writable by the user the task runs as"
                         % (exc.filename or p["path"], exc.strerror or exc), **strip(result))
    module.exit_json(**result)


def strip(result):
    """A failed result without any file content."""
    return {k: v for k, v in result.items() if k != "files" or isinstance(v, list)}


if __name__ == "__main__":
    main()
