# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""L0: module_utils/etcd_backup_timer.py (the backup timer's run) and roles/etcd_backup_timer.

The config check, which control plane takes the snapshot, the target's retention from its ``ls -1``, and whole
runs against the fake gateway (tests/unit/etcd_gateway.py) with a fake scp/ssh that copies into a directory
standing for the target. The entry script runs from a copy of exactly the files the role installs; the role
itself runs through playbooks/etcd_backup_timer.yml on localhost with its paths moved into a temporary directory
(systemd is not asked: no systemd runs here). No host runs the real timer in the unit tier."""

from __future__ import annotations

import ast
import json
import os
import shlex
import shutil
import stat
import subprocess
import sys

import jinja2
import pytest
import yaml
from ansible_collections.baremetal.k8s.plugins.module_utils import etcd_backup as eb
from ansible_collections.baremetal.k8s.plugins.module_utils import etcd_backup_timer as ebt
from ansible_collections.baremetal.k8s.plugins.module_utils.etcd_client import EtcdClient
from etcd_gateway import HOUR, NOW, FakeGateway, write_snapshot
from fleet_samples import ansible_env, small_fleet, write_fleet
from hypothesis import given
from hypothesis import strategies as st

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ROLE = os.path.join(REPO, "roles", "etcd_backup_timer")
MODULE_UTILS = os.path.join(REPO, "plugins", "module_utils")
BIN = os.path.dirname(sys.executable)
SECRET = "SECRET-KEY-MATERIAL-4f1c"
KEY_TEXT = "-----BEGIN OPENSSH PRIVATE KEY-----\n%s\n-----END OPENSSH PRIVATE KEY-----\n" % SECRET


def raw_config(**over):
    data = {
        "cluster": "c1",
        "endpoints": ["https://10.0.0.11:2379", "https://10.0.0.12:2379", "https://10.0.0.13:2379"],
        "ca_cert": "/etc/kubernetes/pki/etcd/ca.crt",
        "client_cert": "/etc/kubernetes/pki/etcd/healthcheck-client.crt",
        "client_key": "/etc/kubernetes/pki/etcd/healthcheck-client.key",
        "order": ["cp1", "cp2", "cp3"],
        "node_dir": "/var/lib/baremetal-k8s/etcd-snapshots",
        "keep_local": 3,
        "target": "backup@bk1:/srv/etcd",
        "keep_last": 5,
        "max_age": "",
        "ssh_key": "/etc/baremetal-k8s/etcd-backup.key",
        "ssh_options": ["StrictHostKeyChecking=accept-new"],
        "snapshot_timeout": 10,
    }
    data.update(over)
    return data


# --------------------------------------------------------------------------- the config


def test_a_good_config_gets_its_defaults_and_checks_the_same_again():
    minimal = {k: raw_config()[k] for k in ebt.REQUIRED}
    config = ebt.check_config(minimal, "etcd-backup.json")
    assert config["keep_local"] == 3 and config["keep_last"] == 48 and config["max_age"] == ""
    assert config["node_dir"] == "/var/lib/baremetal-k8s/etcd-snapshots" and config["ssh_options"] == []
    assert config["ca_cert"] == "/etc/kubernetes/pki/etcd/ca.crt" and config["snapshot_timeout"] == 120.0
    assert ebt.check_config(config, "again") == config
    assert ebt.check_config(raw_config(max_age=None), "x")["max_age"] == ""


def test_every_problem_is_named_at_once():
    data = raw_config(endpoints=["http://10.0.0.11:2379"], keep_local=0, keep_last=-1, target="", max_age="soon",
                      order=[], ssh_key="key", ssh_options="Port=2222", snapshot_timeout=0, keep_lats=4,
                      cluster="a b")
    data.pop("ca_cert")  # a default: not a problem
    with pytest.raises(ebt.TimerConfigError) as caught:
        ebt.check_config(data, "/etc/baremetal-k8s/etcd-backup.json")
    text = str(caught.value)
    lines = text.splitlines()
    assert lines[0] == "11 problems in /etc/baremetal-k8s/etcd-backup.json:"
    assert all(line.startswith("/etc/baremetal-k8s/etcd-backup.json: ") and ". Fix: " in line for line in lines[1:])
    fields = [line.split(": ")[1] for line in lines[1:]]
    assert fields == ["keep_lats", "cluster", "endpoints", "ssh_key", "order", "keep_local", "keep_last", "max_age",
                      "target", "ssh_options", "snapshot_timeout"]
    assert ("/etc/baremetal-k8s/etcd-backup.json: target: empty: the snapshots would stay only on the control "
            "planes, and be lost with them. Fix: give [user@]host:/absolute/dir of a backup host") in text
    assert "endpoints: not an https:// URL: 'http://10.0.0.11:2379'. Fix: " in text
    assert "keep_lats: unknown field. Fix: remove it, or correct its spelling" in text
    assert "max_age: 'soon' is not a duration. Fix: " in text
    assert [p[0] for p in caught.value.problems] == fields


def test_one_problem_is_one_line():
    with pytest.raises(ebt.TimerConfigError) as caught:
        ebt.check_config(raw_config(target="bk1:srv"), "cfg.json")
    assert str(caught.value) == ("cfg.json: target: 'bk1:srv' is not [user@]host:/absolute/dir. Fix: write the "
                                 "backup host's account, name and directory, e.g. backup@backup-1:/srv/backups/etcd "
                                 "(letters, digits and ._+/- in the directory)")
    with pytest.raises(ebt.TimerConfigError, match=r"^cfg.json: \(top level\): not a JSON object \(list\)"):
        ebt.check_config([], "cfg.json")
    with pytest.raises(ebt.TimerConfigError, match=r"^3 problems in cfg.json:\ncfg.json: cluster: missing"):
        ebt.check_config({"cluster": None, "target": "", "endpoints": ["https://a:2379"], "order": ["a"],
                          "ssh_key": None}, "cfg.json")
    assert isinstance(caught.value, eb.EtcdBackupError)


@pytest.mark.parametrize(("target", "parts"), [
    ("backup@bk1:/srv/etcd/", ("backup", "bk1", "/srv/etcd")),
    ("bk1.example.org:/srv/etcd", (None, "bk1.example.org", "/srv/etcd")),
    ("b@[fd00::1]:/x", ("b", "fd00::1", "/x")),
    ("b@10.0.0.9:/", ("b", "10.0.0.9", "/")),
])
def test_targets(target, parts):
    assert ebt.parse_target(target) == parts


@pytest.mark.parametrize("target", ["bk1", "bk1:relative", "a b@bk1:/x", "bk1:/dir with space", "bk1:/a;rm",
                                    "-oProxyCommand=x:/d", "@bk1:/x", "bk1:/x\n"])
def test_bad_targets(target):
    with pytest.raises(eb.EtcdBackupError, match="is not \\[user@\\]host:/absolute/dir"):
        ebt.parse_target(target)


# --------------------------------------------------------------------------- the role's variables


def role_settings(**over):
    settings = {k: v for k, v in raw_config().items() if k not in ("ssh_options", "ssh_key")}
    settings.update(ssh_options=[], ssh_key="/etc/baremetal-k8s/etcd-backup.key",
                    known_hosts_file="/etc/baremetal-k8s/etcd-backup.known_hosts", ssh_private_key=True,
                    known_hosts=False)
    settings.update(over)
    return settings


def test_the_role_config_adds_host_key_checking_and_timeouts():
    config = ebt.timer_config(role_settings(keep_last="24", snapshot_timeout="60", ssh_options=["Port=2222"]))
    assert config["keep_last"] == 24 and config["snapshot_timeout"] == 60.0
    assert config["ssh_options"] == ["Port=2222", "StrictHostKeyChecking=accept-new",
                                     "UserKnownHostsFile=/etc/baremetal-k8s/etcd-backup.known_hosts",
                                     "ConnectTimeout=30", "ServerAliveInterval=15", "ServerAliveCountMax=4"]
    assert ebt.check_config(config, "written") == config  # what the role writes, the timer reads
    strict = ebt.timer_config(role_settings(known_hosts=True))
    assert "StrictHostKeyChecking=yes" in strict["ssh_options"]
    assert ebt.timer_problems(role_settings()) == []


def test_the_role_problems_name_its_variables():
    problems = ebt.timer_problems(role_settings(target="", ssh_private_key=False, keep_local="many"))
    assert problems == [
        "etcd_backup_timer_keep_local: 'many' is not a whole number >= 1. Fix: give how many snapshots the control "
        "plane keeps itself, e.g. 3 (the new one is always kept)",
        "etcd_backup_timer_target: empty: the snapshots would stay only on the control planes, and be lost with "
        "them. Fix: give [user@]host:/absolute/dir of a backup host the key can scp to, e.g. "
        "backup@backup-1:/srv/backups/etcd",
        "etcd_backup_timer_ssh_private_key: empty: scp to the target needs the private key of an account there. "
        "Fix: give the private key's content (from the vault); its public key goes into that account's "
        "~/.ssh/authorized_keys on the target"]
    with pytest.raises(ebt.TimerConfigError, match=r"^3 problems in roles/etcd_backup_timer:\n"):
        ebt.timer_config(role_settings(target="", ssh_private_key=False, keep_local="many"))


# --------------------------------------------------------------------------- who takes the snapshot


def test_the_first_healthy_control_plane_in_order_takes_it():
    name, reason = ebt.choose_runner(["cp1", "cp2", "cp3"], {"cp1": True, "cp2": True, "cp3": True})
    assert name == "cp1"
    assert reason == ("cp1 takes the snapshot: the first control plane in order (cp1, cp2, cp3) whose etcd member "
                      "is healthy.")


def test_the_first_down_the_second_takes_over():
    name, reason = ebt.choose_runner(["cp1", "cp2", "cp3"], {"cp1": False, "cp2": True, "cp3": True})
    assert name == "cp2"
    assert reason.startswith("cp2 takes the snapshot: ") and "(passed over: cp1: its etcd member is not healthy)" \
        in reason
    name, reason = ebt.choose_runner(["cp1", "cp2", "cp3"], {"cp2": False, "cp3": True})  # cp1: no member
    assert name == "cp3" and "cp1: no etcd member of that name; cp2: its etcd member is not healthy" in reason
    assert ebt.choose_runner(["cp1", "cp2"], {"cp2"})[0] == "cp2"  # the healthy names will do


def test_none_healthy_no_runner_and_why():
    name, reason = ebt.choose_runner(["cp1", "cp2", "cp3"], {"cp1": False, "cp2": False})
    assert name is None
    assert reason == ("no control plane of cp1, cp2, cp3 has a healthy etcd member (cp1: its etcd member is not "
                      "healthy; cp2: its etcd member is not healthy; cp3: no etcd member of that name): no snapshot "
                      "is taken.")
    assert ebt.choose_runner([], {"cp1": True}) == (None, "no control plane of (none) has a healthy etcd member (the "
                                                          "order is empty): no snapshot is taken.")


# --------------------------------------------------------------------------- the target's retention


def names(count, cluster="c1", start=NOW - 6 * HOUR):
    return [eb.snapshot_name(cluster, start + i * HOUR, 100 + i) for i in range(count)]  # oldest first


def test_seven_snapshots_keep_five_prunes_the_two_oldest_with_their_companions():
    snaps = names(7)
    listing = []
    for name in snaps:
        listing += [name, name + ".json", eb.pki_bundle_name(name)]
    listing += ["notes.txt", "c1-20270115T080000Z-r5.db.part", ".bmk8s-verified.json", *names(2, cluster="c2")]
    delete = ebt.remote_prune_plan("\n".join(listing) + "\n", "c1", 5, None, NOW)
    assert sorted(delete) == sorted([snaps[0], snaps[0] + ".json", eb.pki_bundle_name(snaps[0]),
                                     snaps[1], snaps[1] + ".json", eb.pki_bundle_name(snaps[1])])
    assert ebt.remote_prune_plan(sorted(set(listing) - set(delete)), "c1", 5, None, NOW) == []  # applied: stable


def test_a_snapshot_without_its_manifest_does_not_count_toward_keep_last():
    snaps = names(7)
    listing = [n for name in snaps for n in (name, name + ".json") if n != snaps[5] + ".json"]
    # 6 verified: the 5 newest of them are kept, the unverified one is newer than the oldest kept: kept too.
    assert ebt.remote_prune_plan(listing, "c1", 5, None, NOW) == [snaps[0], snaps[0] + ".json"]
    # An unverified one older than the 5 kept is pruned (alone: it has no companions).
    listing = [snaps[1]] + [n for name in snaps[2:] for n in (name, name + ".json")]
    assert ebt.remote_prune_plan(listing, "c1", 5, None, NOW) == [snaps[1]]


def test_never_the_newest_verified():
    snaps = names(4)
    listing = [*snaps, snaps[0] + ".json"]  # only the oldest arrived whole
    assert ebt.remote_prune_plan(listing, "c1", 1, None, NOW) == []
    delete = ebt.remote_prune_plan(listing, "c1", 0, 60.0, NOW + 30 * HOUR)  # everything past max_age
    assert snaps[0] not in delete and snaps[0] + ".json" not in delete
    assert sorted(delete) == sorted(snaps[1:])
    assert ebt.remote_prune_plan(listing, "c1", 0, None, NOW) == []  # no rule: nothing pruned


@given(verified=st.lists(st.booleans(), min_size=1, max_size=12), keep_last=st.integers(0, 6),
       max_age=st.one_of(st.none(), st.integers(1, 12)))
def test_retention_properties(verified, keep_last, max_age):
    snaps = names(len(verified))
    listing = [n for name, ok in zip(snaps, verified, strict=True) for n in ([name, name + ".json"] if ok else [name])]
    delete = ebt.remote_prune_plan(listing, "c1", keep_last, max_age * HOUR if max_age else None, NOW)
    assert set(delete) <= set(listing)
    newest = next((name for name, ok in reversed(list(zip(snaps, verified, strict=True))) if ok), None)
    assert newest not in delete
    for name in delete:  # a manifest goes only with its snapshot
        if name.endswith(".json"):
            assert name[:-len(".json")] in delete


# --------------------------------------------------------------------------- whole runs


class Clock:
    def __init__(self, now=NOW):
        self.now = now

    def __call__(self):
        return self.now


class FakeTarget:
    """scp and ssh as subprocess.run sees them, against a directory standing for the target's."""

    def __init__(self, directory, remote_dir="/srv/etcd", fail=None, stderr=""):
        self.directory = directory
        self.remote_dir = remote_dir
        self.fail = fail  # "scp", "ls", "rm" or None
        self.stderr = stderr
        self.calls = []

    def __call__(self, argv, **kwargs):
        assert kwargs["capture_output"] is True and kwargs["text"] is True and kwargs["check"] is False
        assert kwargs["stdin"] == subprocess.DEVNULL and kwargs["timeout"] > 0
        self.calls.append(list(argv))
        program = argv[0]
        if program == "scp":
            if self.fail == "scp":
                return subprocess.CompletedProcess(argv, 1, "", self.stderr)
            source, destination = argv[-2], argv[-1]
            host, _sep, path = destination.rpartition(":")
            assert host == "backup@bk1" and os.path.dirname(path) == self.remote_dir
            shutil.copy(source, os.path.join(self.directory, os.path.basename(path)))
            return subprocess.CompletedProcess(argv, 0, "", "")
        assert program == "ssh" and argv[-2] == "backup@bk1"
        words = shlex.split(argv[-1])
        if words[0] == "ls":
            assert words == ["ls", "-1", self.remote_dir]
            if self.fail == "ls":
                return subprocess.CompletedProcess(argv, 255, "", self.stderr)
            return subprocess.CompletedProcess(argv, 0, "\n".join(sorted(os.listdir(self.directory))) + "\n", "")
        assert words[:3] == ["rm", "-f", "--"]
        if self.fail == "rm":
            return subprocess.CompletedProcess(argv, 1, "", self.stderr)
        for path in words[3:]:
            assert os.path.dirname(path) == self.remote_dir
            os.unlink(os.path.join(self.directory, os.path.basename(path)))
        return subprocess.CompletedProcess(argv, 0, "", "")


def setup(tmp_path, **over):
    node_dir, remote = tmp_path / "node", tmp_path / "remote"
    node_dir.mkdir(mode=0o700)
    remote.mkdir()
    key = tmp_path / "key"
    key.write_text(KEY_TEXT)
    key.chmod(0o600)
    config = raw_config(node_dir=str(node_dir), ssh_key=str(key), **over)
    return config, node_dir, remote


def timer_run(config, me, gateway, target, clock=None):
    lines = []
    code = ebt.run(config, me, client_factory=lambda cfg: EtcdClient(gateway.endpoints, timeout=2), runner=target,
                   clock=clock or Clock(), log=lines.append)
    return code, lines


def test_not_the_runner_exits_0_without_a_snapshot(tmp_path):
    config, node_dir, remote = setup(tmp_path)
    target = FakeTarget(str(remote))
    with FakeGateway() as gateway:
        code, lines = timer_run(config, "cp2", gateway, target)
        assert gateway.snapshots_from == []
    assert code == 0 and target.calls == [] and os.listdir(node_dir) == []
    assert lines[0].startswith("host cp2: etcd: 3 members, healthy: cp1, cp2, cp3 (")
    assert lines[1] == ("host cp2: runner: cp1 takes the snapshot: the first control plane in order (cp1, cp2, cp3) "
                        "whose etcd member is healthy. Nothing to do on cp2.")
    assert len(lines) == 2


def test_the_runner_snapshots_prunes_copies_the_manifest_last_and_prunes_the_target(tmp_path):
    config, node_dir, remote = setup(tmp_path)
    old_local = [write_snapshot(node_dir, taken_at=NOW - i * HOUR, revision=4000 + i) for i in (1, 2, 3)]
    old_remote = [os.path.basename(write_snapshot(remote, taken_at=NOW - i * HOUR, revision=3000 + i))
                  for i in range(1, 7)]
    (remote / eb.pki_bundle_name(old_remote[-1])).write_bytes(b"sealed")  # the oldest has a PKI bundle
    target = FakeTarget(str(remote))
    with FakeGateway(leader="cp1") as gateway:
        code, lines = timer_run(config, "cp1", gateway, target)
        assert gateway.snapshots_from == ["cp2"]
    assert code == 0, lines
    new = "c1-20270115T080000Z-r4242.db"
    # Locally: the new snapshot and manifest 0600, the newest 3 kept, the oldest pruned with its manifest.
    assert stat.S_IMODE(os.stat(node_dir / new).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(node_dir / (new + ".json")).st_mode) == 0o600
    kept = [*sorted(os.path.basename(p) for p in old_local[:2]), new]
    assert sorted(os.listdir(node_dir)) == sorted(kept + [n + ".json" for n in kept])
    assert eb.verify_snapshot(str(node_dir / new)).ok
    # The commands: the snapshot, then its manifest, then the listing and the removal of the two oldest.
    assert [c[0] for c in target.calls] == ["scp", "scp", "ssh", "ssh"]
    scp_db, scp_json, ls, rm = target.calls
    assert scp_db[:5] == ["scp", "-i", config["ssh_key"], "-o", "BatchMode=yes"]
    assert scp_db[5:7] == ["-o", "StrictHostKeyChecking=accept-new"]
    assert scp_db[-2:] == [str(node_dir / new), "backup@bk1:/srv/etcd/" + new]
    assert scp_json[-2:] == [str(node_dir / (new + ".json")), "backup@bk1:/srv/etcd/" + new + ".json"]
    assert ls[-1] == "ls -1 /srv/etcd" and ls[:5] == ["ssh", "-i", config["ssh_key"], "-o", "BatchMode=yes"]
    pruned = [old_remote[-1], old_remote[-1] + ".json", eb.pki_bundle_name(old_remote[-1]),
              old_remote[-2], old_remote[-2] + ".json"]
    assert sorted(shlex.split(rm[-1])[3:]) == sorted("/srv/etcd/" + n for n in pruned)
    remaining = [new, *old_remote[:4]]
    assert sorted(os.listdir(remote)) == sorted(remaining + [n + ".json" for n in remaining])
    # One line per step, each naming the host.
    steps = [line.split(": ")[1] for line in lines]
    assert steps == ["etcd", "runner", "snapshot", "local", "copy", "remote", "done"]
    assert all(line.startswith("host cp1: ") for line in lines)
    assert lines[2].startswith("host cp1: snapshot: %s from cp2 (the first healthy follower" % new)
    assert "kept 3 in %s (keep_local 3), pruned 1: %s" % (node_dir, os.path.basename(old_local[2])) in lines[3]
    assert lines[5].startswith("host cp1: remote: 5 snapshots of c1 kept on backup@bk1:/srv/etcd (keep_last 5; "
                               "newest verified %s), pruned 2: " % new)
    assert lines[6].startswith("host cp1: done: %s of cluster c1 stored on backup@bk1:/srv/etcd (" % new)
    assert all(line.endswith(" s)") for line in lines if ": runner: " not in line)
    assert SECRET not in "\n".join(lines)


def test_the_first_down_the_second_takes_it(tmp_path):
    config, _node_dir, remote = setup(tmp_path)
    target = FakeTarget(str(remote))
    with FakeGateway(leader="cp3", down={"cp1"}) as gateway:
        code, lines = timer_run(config, "cp1", gateway, target)  # cp1's own timer: not its turn (it is down)
        assert code == 0 and gateway.snapshots_from == [] and "cp2 takes the snapshot" in lines[1]
        code, lines = timer_run(config, "cp2", gateway, target)
        assert code == 0, lines
        assert gateway.snapshots_from == ["cp2"]
    assert "(passed over: cp1: its etcd member is not healthy)" in lines[1]
    assert sorted(os.listdir(remote)) == ["c1-20270115T080000Z-r4242.db", "c1-20270115T080000Z-r4242.db.json"]


def test_an_scp_failure_names_the_target_and_the_fix_and_prunes_nothing_there(tmp_path):
    config, node_dir, remote = setup(tmp_path)
    old = os.path.basename(write_snapshot(remote, taken_at=NOW - 100 * HOUR, revision=1))
    target = FakeTarget(str(remote), fail="scp",
                        stderr="backup@bk1: Permission denied (publickey).\r\nscp: Connection closed\n")
    with FakeGateway() as gateway:
        code, lines = timer_run(config, "cp1", gateway, target)
    assert code == ebt.EXIT_FAILED
    assert [c[0] for c in target.calls] == ["scp"]  # not the manifest, no listing, no removal
    assert lines[-1] == (
        "host cp1: copy: FAILED: scp of c1-20270115T080000Z-r4242.db to backup@bk1:/srv/etcd exited 1 after 0.0 s: "
        "backup@bk1: Permission denied (publickey). | scp: Connection closed. Fix: put the public key of %s into "
        "~/.ssh/authorized_keys of backup@bk1; the snapshot stays in %s, the next run copies its own"
        % (config["ssh_key"], node_dir))
    assert sorted(os.listdir(remote)) == [old, old + ".json"]
    assert "c1-20270115T080000Z-r4242.db" in os.listdir(node_dir)
    assert SECRET not in "\n".join(lines)


@pytest.mark.parametrize(("stderr", "fix"), [
    ("Host key verification failed.", "give the target's host key (ssh-keyscan bk1) in "
                                      "etcd_backup_timer_ssh_known_hosts"),
    ("scp: /srv/etcd/c1.db: No such file or directory", "create /srv/etcd on bk1, writable by backup"),
    ("scp: /srv/etcd/c1.db: Permission denied", "make /srv/etcd on bk1 writable by backup"),
    ("ssh: Could not resolve hostname bk1: Name or service not known", "check that bk1 answers ssh from cp1"),
    ("something else", "check as root on cp1 that 'ssh -i "),
])
def test_the_fix_follows_what_scp_said(tmp_path, stderr, fix):
    config, _node_dir, remote = setup(tmp_path)
    with FakeGateway() as gateway:
        code, lines = timer_run(config, "cp1", gateway, FakeTarget(str(remote), fail="scp", stderr=stderr))
    assert code == 1 and ("Fix: " + fix) in lines[-1]


def test_a_failed_listing_or_removal_says_the_snapshot_was_stored(tmp_path):
    config, _node_dir, remote = setup(tmp_path, keep_last=1)
    write_snapshot(remote, taken_at=NOW - 5 * HOUR, revision=1)
    with FakeGateway() as gateway:
        code, lines = timer_run(config, "cp1", gateway, FakeTarget(str(remote), fail="ls", stderr="Connection "
                                                                                                  "timed out"))
        assert code == 1 and lines[-1].startswith("host cp1: remote: FAILED: ssh listing /srv/etcd on bk1 exited 255")
        assert lines[-1].endswith("; the snapshot was stored, old ones were not pruned")
        code, lines = timer_run(config, "cp1", gateway, FakeTarget(str(remote), fail="rm", stderr="rm: denied"),
                                clock=Clock(NOW + HOUR))
    # The old one and the first run's (listed but never pruned) go, with their manifests.
    assert code == 1 and "remote: FAILED: ssh removing 4 old files in /srv/etcd on bk1 exited 1" in lines[-1]


def test_scp_not_installed(tmp_path):
    config, _node_dir, _remote = setup(tmp_path)

    def missing(argv, **kwargs):
        raise FileNotFoundError(2, "No such file or directory", argv[0])

    with FakeGateway() as gateway:
        code, lines = timer_run(config, "cp1", gateway, missing)
    assert code == 1 and lines[-1] == ("host cp1: copy: FAILED: scp is not installed on cp1. Fix: install "
                                       "openssh-client")


def test_no_healthy_member_fails_on_every_control_plane(tmp_path):
    config, _node_dir, remote = setup(tmp_path)
    target = FakeTarget(str(remote))
    with FakeGateway(down={"cp1"}, unhealthy={"cp2", "cp3"}) as gateway:
        for me in ("cp1", "cp2", "cp3"):
            code, lines = timer_run(config, me, gateway, target)
            assert code == 1 and lines[-1].startswith("host %s: runner: FAILED: no control plane of cp1, cp2, cp3 "
                                                      "has a healthy etcd member" % me)
            assert "Fix: bring an etcd member back" in lines[-1]
        assert gateway.snapshots_from == [] and target.calls == []


def test_etcd_not_answering_and_a_failed_snapshot(tmp_path):
    config, node_dir, remote = setup(tmp_path)
    lines = []
    code = ebt.run(config, "cp1", client_factory=lambda cfg: EtcdClient(["http://127.0.0.1:1"], timeout=1),
                   runner=FakeTarget(str(remote)), clock=Clock(), log=lines.append)
    assert code == 1 and lines[-1].startswith("host cp1: etcd: FAILED: cannot ask etcd which members are healthy: "
                                              "no etcd endpoint answered /v3/cluster/member/list")
    assert lines[-1].endswith("Fix: check etcd on the control planes (baremetal.k8s.etcd_info) and the endpoints "
                              "and certificates in the config")
    with FakeGateway(corrupt=True) as gateway:
        code, lines = timer_run(config, "cp1", gateway, FakeTarget(str(remote)))
    assert code == 1 and lines[-1].startswith("host cp1: snapshot: FAILED: no snapshot of cluster c1: ")
    assert "failed verification" in lines[-1] and os.listdir(node_dir) == [] and os.listdir(remote) == []


def test_bad_config_and_a_stranger_exit_2(tmp_path):
    config, _node_dir, remote = setup(tmp_path)
    with FakeGateway() as gateway:
        code, lines = timer_run(dict(config, target=""), "cp1", gateway, FakeTarget(str(remote)))
        assert code == 2 and lines == ["host cp1: config: FAILED: config: target: empty: the snapshots would stay "
                                       "only on the control planes, and be lost with them. Fix: give "
                                       "[user@]host:/absolute/dir of a backup host the key can scp to, e.g. "
                                       "backup@backup-1:/srv/backups/etcd"]
        code, lines = timer_run(config, "cp9", gateway, FakeTarget(str(remote)))
        assert gateway.snapshots_from == []
    assert code == 2 and lines[0].startswith("host cp9: config: FAILED: cp9 is not one of the control planes in "
                                             "order (cp1, cp2, cp3). Fix: run with --me NAME")


def test_main_reads_the_file_and_says_what_is_wrong(tmp_path, capsys):
    assert ebt.main(["--config", str(tmp_path / "absent.json"), "--me", "cp1"]) == 2
    out = capsys.readouterr().out
    assert out == ("host cp1: config: FAILED: %s: cannot read it: No such file or directory. Fix: apply the role "
                   "baremetal.k8s.etcd_backup_timer (it writes it), or give --config PATH\n"
                   % (tmp_path / "absent.json"))
    (tmp_path / "bad.json").write_text("{")
    assert ebt.main(["--config", str(tmp_path / "bad.json"), "--me", "cp1"]) == 2
    assert "bad.json: not JSON: " in capsys.readouterr().out
    (tmp_path / "cfg.json").write_text(json.dumps(raw_config(keep_local=0, target="x")))
    assert ebt.main(["--config", str(tmp_path / "cfg.json"), "--me", "cp1"]) == 2
    out = capsys.readouterr().out
    assert out.startswith("host cp1: config: FAILED: 2 problems in %s:\n" % (tmp_path / "cfg.json"))


# --------------------------------------------------------------------------- what the role installs


def role_vars():
    with open(os.path.join(ROLE, "vars", "main.yml"), encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def relative_imports(name):
    with open(os.path.join(MODULE_UTILS, name), encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    return {node.module + ".py" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 1}


def test_the_role_installs_etcd_backup_timer_and_everything_it_imports():
    files = set(role_vars()["_etcd_backup_timer_python_files"])
    closure, todo = set(), ["etcd_backup_timer.py"]
    while todo:
        name = todo.pop()
        if name not in closure:
            closure.add(name)
            todo += sorted(relative_imports(name))
    assert files == closure


def install_copy(root, python=sys.executable):
    """What the role installs, done by hand: the files it lists, the __init__.py files, the entry script."""
    variables = role_vars()
    lib = root / "lib"
    for directory in variables["_etcd_backup_timer_package_dirs"]:
        (lib / directory).mkdir(parents=True, exist_ok=True)
        (lib / directory / "__init__.py").write_text("")
    for name in variables["_etcd_backup_timer_python_files"]:
        shutil.copy(os.path.join(MODULE_UTILS, name), lib / variables["_etcd_backup_timer_package"] / name)
    env = jinja2.Environment(trim_blocks=True, keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    with open(os.path.join(ROLE, "templates", "bmk8s-etcd-backup.j2"), encoding="utf-8") as handle:
        text = env.from_string(handle.read()).render(_etcd_backup_timer_python=python,
                                                     _etcd_backup_timer_lib_dir=str(lib))
    script = root / "bmk8s-etcd-backup"
    script.write_text(text)
    script.chmod(0o755)
    return script


def test_the_entry_script_runs_from_a_copy_of_the_installed_files_alone(tmp_path):
    script = install_copy(tmp_path / "host")
    lines = script.read_text().splitlines()
    assert lines[0] == "#!" + sys.executable and len(lines) == 6
    # -I -S: no site-packages (no Ansible, no collection), no PYTHONPATH: only the standard library and the copy.
    run = [sys.executable, "-I", "-S", str(script)]
    done = subprocess.run([*run, "--help"], capture_output=True, text=True, check=False, cwd=str(tmp_path),
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: bmk8s-etcd-backup [-h] [--config CONFIG] [--me ME]")
    (tmp_path / "cfg.json").write_text(json.dumps(raw_config(target="")))
    done = subprocess.run([*run, "--config", str(tmp_path / "cfg.json"), "--me", "cp1"], capture_output=True,
                          text=True, check=False, cwd=str(tmp_path), timeout=60)
    assert done.returncode == 2 and "target: empty" in done.stdout and "Traceback" not in done.stderr


def role_playbook(tmp_path, *args):
    inv = tmp_path / "inv"
    (inv / "group_vars" / "all").mkdir(parents=True)
    write_fleet(inv, small_fleet())
    (inv / "fleet.baremetal.yml").write_text(yaml.safe_dump({"plugin": "baremetal.k8s.fleet",
                                                             "fleet_file": "fleet.yml"}))
    (inv / "group_vars" / "all" / "test.yml").write_text(yaml.safe_dump({
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable, "ansible_become": False}))
    proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", str(inv),
                           os.path.join(REPO, "playbooks", "etcd_backup_timer.yml"), "--limit", "s00", *args],
                          env=ansible_env(ANSIBLE_NOCOLOR="1"), capture_output=True, text=True, check=False,
                          cwd=str(tmp_path), timeout=300)  # fmt: skip
    return proc.returncode, proc.stdout + proc.stderr


def moved_paths(root):
    """The role's internal paths moved under ROOT (extra variables win over role vars)."""
    return {
        "_etcd_backup_timer_unit_dir": str(root / "systemd"),
        "_etcd_backup_timer_config_dir": str(root / "etc"),
        "_etcd_backup_timer_config_file": str(root / "etc" / "etcd-backup.json"),
        "_etcd_backup_timer_key_file": str(root / "etc" / "etcd-backup.key"),
        "_etcd_backup_timer_known_hosts_file": str(root / "etc" / "etcd-backup.known_hosts"),
        "_etcd_backup_timer_script": str(root / "sbin" / "bmk8s-etcd-backup"),
        "_etcd_backup_timer_lib_dir": str(root / "lib"),
        "_etcd_backup_timer_python": sys.executable,
        "etcd_backup_timer_node_dir": str(root / "snapshots"),
    }


def test_the_role_refuses_an_empty_target_and_changes_nothing(tmp_path):
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps(moved_paths(tmp_path / "host")))
    code, out = role_playbook(tmp_path, "-e", "@%s" % extra)
    flat = " ".join(out.split())
    assert code != 0
    assert ("s00: etcd_backup_timer: etcd_backup_timer_target: empty: the snapshots would stay only on the control "
            "planes, and be lost with them. Fix: give [user@]host:/absolute/dir") in flat
    assert "etcd_backup_timer_ssh_private_key: empty: " in flat and "Nothing was changed." in flat
    assert not (tmp_path / "host").exists()


def test_the_role_writes_what_the_timer_reads(tmp_path):
    root = tmp_path / "host"
    variables = dict(moved_paths(root), etcd_backup_timer_target="backup@bk1:/srv/etcd",
                     etcd_backup_timer_ssh_private_key=KEY_TEXT.strip(),
                     etcd_backup_timer_ssh_known_hosts="bk1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample",
                     # No systemd here: the role's own switch skips the systemd steps as under --check.
                     _etcd_backup_timer_check_mode=True)
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps(variables))
    for directory in ("sbin", "systemd"):  # /usr/local/sbin and /etc/systemd/system are there on a host
        (root / directory).mkdir(parents=True)
    code, out = role_playbook(tmp_path, "-e", "@%s" % extra)
    assert code == 0, out
    assert SECRET not in out
    config = json.loads((root / "etc" / "etcd-backup.json").read_text())
    assert ebt.check_config(config, "written") == config
    assert config["cluster"] == "c1" and config["order"] == ["s00", "s01", "s02"]
    assert config["endpoints"] == ["https://10.10.0.10:2379", "https://10.10.0.11:2379", "https://10.10.0.12:2379"]
    assert config["keep_last"] == 48 and config["keep_local"] == 3 and config["max_age"] == ""
    assert config["ssh_key"] == str(root / "etc" / "etcd-backup.key")
    assert "StrictHostKeyChecking=yes" in config["ssh_options"]
    assert "UserKnownHostsFile=%s" % (root / "etc" / "etcd-backup.known_hosts") in config["ssh_options"]
    modes = {p: stat.S_IMODE(os.stat(root / p).st_mode) for p in (
        "etc/etcd-backup.json", "etc/etcd-backup.key", "etc/etcd-backup.known_hosts", "sbin/bmk8s-etcd-backup",
        "snapshots", "systemd/bmk8s-etcd-backup.service", "systemd/bmk8s-etcd-backup.timer")}
    assert modes == {"etc/etcd-backup.json": 0o600, "etc/etcd-backup.key": 0o600, "etc/etcd-backup.known_hosts": 0o644,
                     "sbin/bmk8s-etcd-backup": 0o755, "snapshots": 0o700, "systemd/bmk8s-etcd-backup.service": 0o644,
                     "systemd/bmk8s-etcd-backup.timer": 0o644}
    assert (root / "etc" / "etcd-backup.key").read_text() == KEY_TEXT
    service = (root / "systemd" / "bmk8s-etcd-backup.service").read_text()
    assert "Type=oneshot" in service
    assert "ExecStart=%s --config %s --me s00\n" % (root / "sbin" / "bmk8s-etcd-backup",
                                                    root / "etc" / "etcd-backup.json") in service
    timer = (root / "systemd" / "bmk8s-etcd-backup.timer").read_text()
    assert "OnCalendar=hourly\nRandomizedDelaySec=5m\nPersistent=true\nUnit=bmk8s-etcd-backup.service\n" in timer
    # The installed code runs on its own (-I -S: no site-packages, no Ansible).
    done = subprocess.run([sys.executable, "-I", "-S", str(root / "sbin" / "bmk8s-etcd-backup"), "--config",
                           str(root / "etc" / "etcd-backup.json"), "--me", "s09"], capture_output=True, text=True,
                          check=False, timeout=60)
    assert done.returncode == 2 and "s09 is not one of the control planes in order (s00, s01, s02)" in done.stdout
    assert (root / "sbin" / "bmk8s-etcd-backup").read_text().startswith("#!%s\n" % sys.executable)
