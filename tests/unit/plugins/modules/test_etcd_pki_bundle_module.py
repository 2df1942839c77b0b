# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""baremetal.k8s.etcd_pki_bundle through the ansible CLI: sealing kubeadm's PKI files (as slurp returns them)
next to a snapshot, the manifest recording the bundle, check mode, a second seal, refusals unless forced, and
opening it in a playbook that puts the files back with ansible.builtin.copy; secrets never in any output."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess

from ansible_collections.baremetal.k8s.plugins.module_utils import etcd_backup as eb
from etcd_gateway import write_snapshot
from fleet_samples import BIN, module_env, run_module

KEY = "correct horse battery staple 42"


def pem(name):
    """Distinct PEM text for NAME, random so that it can be looked for in output."""
    kind = "CERTIFICATE" if name.endswith((".crt", ".pub")) else "PRIVATE KEY"
    body = base64.b64encode(os.urandom(96)).decode()
    return "-----BEGIN %s-----\n%s\n-----END %s-----\n" % (kind, body, kind)


def pki_files():
    """name -> PEM text for every kubeadm PKI file."""
    return {name: pem(name) for name in eb.KUBEADM_PKI_FILES}


def slurped(files):
    """What a playbook passes: name -> base64, as ansible.builtin.slurp returns it in .content."""
    return {name: base64.b64encode(text.encode()).decode() for name, text in files.items()}


def secrets(files):
    """Every string that must never show: the passphrase, the contents as base64 and the PEM bodies."""
    return [KEY, *slurped(files).values(), *(text.splitlines()[1] for text in files.values())]


def assert_no_secret(text, files):
    for secret in secrets(files):
        assert secret not in text


def bundle(path, *flags, **args):
    return run_module("baremetal.k8s.etcd_pki_bundle", {"path": str(path), "key": KEY, **args}, *flags)


def seal(path, files, *flags, **args):
    return bundle(path, *flags, state="sealed", files=slurped(files), **args)


def backup_dir(tmp_path):
    """A backup directory holding one snapshot; (its path, the bundle's path by convention)."""
    directory = tmp_path / "backups"
    directory.mkdir(mode=0o700)
    snapshot = write_snapshot(directory)
    return snapshot, directory / eb.pki_bundle_name(snapshot)


def test_sealed_writes_the_bundle_0600_records_it_in_the_manifest_and_shows_no_secret(tmp_path):
    snapshot, path = backup_dir(tmp_path)
    files = pki_files()
    manifest_before = eb.read_manifest(eb.manifest_path(snapshot))
    listing = sorted(os.listdir(path.parent))

    checked = seal(path, files, "--check", "--diff", snapshot=snapshot)
    assert not checked.get("failed"), checked
    assert checked["changed"] is True and checked["outcome"] == "created"
    assert checked["manifest_changed"] is True and checked["pki_bundle"] == path.name
    assert checked["diff"]["before"] == {"files": None, "manifest_pki_bundle": None}
    assert checked["diff"]["after"] == {"files": sorted(files), "manifest_pki_bundle": path.name}
    assert sorted(os.listdir(path.parent)) == listing  # check mode writes nothing
    assert eb.read_manifest(eb.manifest_path(snapshot)) == manifest_before
    assert_no_secret(json.dumps(checked), files)

    result = seal(path, files, "--diff", snapshot=snapshot)
    assert not result.get("failed"), result
    assert result["changed"] is True and result["outcome"] == "created" and result["path"] == str(path)
    assert result["files"] == result["names"] == sorted(eb.KUBEADM_PKI_FILES)
    assert result["manifest_path"] == eb.manifest_path(snapshot) and result["manifest_changed"] is True
    assert_no_secret(json.dumps(result), files)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sorted(os.listdir(path.parent)) == sorted([*listing, path.name])  # no temporary file left
    opened = eb.open_pki(path.read_bytes(), KEY)
    assert opened == {name: text.encode() for name, text in files.items()}
    # The manifest names the bundle, keeps every other field, and the snapshot still verifies.
    manifest = eb.read_manifest(eb.manifest_path(snapshot))
    assert manifest == {**manifest_before, "pki_bundle": path.name}
    assert stat.S_IMODE(os.stat(eb.manifest_path(snapshot)).st_mode) == 0o600
    assert eb.verify_snapshot(snapshot).ok

    # Sealing the same files again: nothing to do, the bundle is left as it is.
    blob = path.read_bytes()
    again = seal(path, files, snapshot=snapshot)
    assert not again.get("failed"), again
    assert again["changed"] is False and again["outcome"] == "unchanged" and again["manifest_changed"] is False
    assert path.read_bytes() == blob
    # Loosened by hand: the same files, the mode set back.
    path.chmod(0o644)
    fixed = seal(path, files)
    assert fixed["changed"] is True and fixed["outcome"] == "mode" and path.read_bytes() == blob
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_a_bundle_that_differs_or_does_not_open_is_kept_unless_forced(tmp_path):
    path = backup_dir(tmp_path)[1]
    files = pki_files()
    assert not seal(path, files).get("failed")
    blob = path.read_bytes()

    rotated = {**files, "ca.key": pem("ca.key")}
    refused = seal(path, rotated)
    assert refused["failed"] and refused["msg"] == (
        "%s: a bundle is there holding other files or contents (ca.key). Fix: seal into a new path (the "
        "snapshot's), or force: true to replace it" % path)
    assert_no_secret(json.dumps(refused), rotated)
    assert path.read_bytes() == blob

    other_key = bundle(path, state="sealed", files=slurped(files), key="another passphrase entirely")
    assert other_key["failed"], other_key
    assert other_key["msg"].startswith("%s: a bundle is there and does not open with this key: the bundle does not "
                                       "open with this passphrase" % path)
    assert "Fix: give the passphrase it was sealed with, or force: true to replace it" in other_key["msg"]
    assert path.read_bytes() == blob

    forced = seal(path, rotated, "--diff", force=True)
    assert not forced.get("failed"), forced
    assert forced["changed"] is True and forced["outcome"] == "replaced" and "ca.key" in forced["reason"]
    assert eb.open_pki(path.read_bytes(), KEY)["ca.key"] == rotated["ca.key"].encode()
    assert_no_secret(json.dumps(forced), rotated)


def test_bad_files_and_options_fail_naming_the_problem_never_the_content(tmp_path):
    snapshot, path = backup_dir(tmp_path)
    files = pki_files()
    args = slurped(files)
    cases = [
        ({**args, "../ca.key": args["ca.key"]}, KEY,
         "files: '../ca.key' is not one of kubeadm's cluster-wide PKI files. Fix: name them relative to "
         "/etc/kubernetes/pki: ca.crt, ca.key, "),
        ({k: v for k, v in args.items() if k not in ("ca.key", "sa.key")}, KEY,
         "files: ca.key, sa.key missing: a bundle without them does not restore the same cluster. Fix: give all of"),
        ({**args, "sa.key": files["sa.key"]}, KEY,  # the PEM text rather than slurp's base64
         "files: sa.key: the content is not base64. Fix: pass the content field of ansible.builtin.slurp's "),
        (args, "short", "key: the passphrase has 5 characters, fewer than 12. Fix: use a long random passphrase"),
    ]
    for given, key, message in cases:
        result = bundle(path, state="sealed", files=given, key=key)
        assert result["failed"] and result["msg"].startswith(message), result["msg"]
        assert_no_secret(json.dumps(result), files)
    away = bundle(tmp_path / "elsewhere.pki", state="sealed", files=args, snapshot=snapshot)
    assert away["failed"] and away["msg"].startswith("snapshot: the snapshot %s is not in the bundle's directory"
                                                     % snapshot)
    os.unlink(eb.manifest_path(snapshot))
    lost = bundle(path, state="sealed", files=args, snapshot=snapshot)
    assert lost["failed"] and lost["msg"].startswith("%s: the manifest is missing. Fix: " % eb.manifest_path(snapshot))
    assert sorted(os.listdir(path.parent)) == [os.path.basename(snapshot)]  # nothing written by any of them


def test_opened_fails_cleanly_for_a_wrong_key_a_damaged_file_and_without_no_log(tmp_path):
    path = backup_dir(tmp_path)[1]
    files = pki_files()
    assert not seal(path, files).get("failed")

    wrong = bundle(path, state="opened", key="not the passphrase at all")
    assert wrong["failed"] and wrong["msg"] == (
        "%s: the bundle does not open with this passphrase: the passphrase is wrong, or the file was changed or "
        "damaged. Fix: give the passphrase the bundle was sealed with, or use another copy" % path)
    # The right key on a task without no_log: the module refuses to return the keys.
    shown = bundle(path, state="opened")
    assert shown["failed"] and shown["msg"].startswith("%s: the bundle opens, but state: opened returns the CA "
                                                       "private keys" % path)
    assert "Fix: set no_log: true on the task" in shown["msg"] and "files" not in shown
    assert_no_secret(json.dumps(shown), files)

    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    path.write_bytes(bytes(blob))
    damaged = bundle(path, state="opened")
    assert damaged["failed"] and "the bundle does not open with this passphrase" in damaged["msg"]
    path.write_text("-----BEGIN CERTIFICATE-----\n")
    foreign = bundle(path, state="opened")
    assert foreign["failed"] and foreign["msg"].startswith("%s: not a baremetal.k8s PKI bundle. Fix: " % path)
    missing = bundle(tmp_path / "none.pki", state="opened")
    assert missing["failed"] and missing["msg"].startswith("%s: the bundle is missing" % (tmp_path / "none.pki"))


def test_opened_in_a_playbook_puts_the_files_back_with_copy(tmp_path):
    snapshot, path = backup_dir(tmp_path)
    files = pki_files()
    assert not seal(path, files, snapshot=snapshot).get("failed")
    pki = tmp_path / "pki"
    playbook = tmp_path / "restore.yml"
    playbook.write_text(json.dumps([{
        "hosts": "localhost", "gather_facts": False,
        "tasks": [
            {"name": "Open the bundle", "no_log": True, "register": "bundle",
             "baremetal.k8s.etcd_pki_bundle": {"path": str(path), "state": "opened", "key": KEY}},
            {"name": "Directories (copy does not make etcd/)",
             "ansible.builtin.file": {"path": str(pki / "etcd"), "state": "directory", "mode": "0700"}},
            {"name": "Put the files back", "no_log": True, "loop": "{{ bundle.names }}",
             "ansible.builtin.copy": {"content": "{{ bundle.files[item] | b64decode }}",
                                      "dest": str(pki) + "/{{ item }}", "mode": "0600"}},
            {"name": "Keep the result for the test", "no_log": True,
             "ansible.builtin.copy": {"content": "{{ bundle | to_json }}", "dest": str(tmp_path / "result.json"),
                                      "mode": "0600"}},
        ],
    }]))
    proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", "localhost,", "-c", "local", str(playbook)],
                          env=module_env(), capture_output=True, text=True, check=False, timeout=180)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Traceback" not in output, output
    assert_no_secret(output, files)
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["changed"] is False and result["names"] == sorted(files) and result["missing"] == []
    assert result["files"] == slurped(files)
    for name, text in files.items():
        assert (pki / name).read_text() == text, name  # the PEM text as it was, byte for byte
        assert stat.S_IMODE(os.stat(pki / name).st_mode) == 0o600
