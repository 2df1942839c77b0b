# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The restore check's pure parts and its refusals; the real restore runs in
tests/integration/test_etcd_restore_check.py (real etcdutl and etcd)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile

import pytest
from ansible_collections.baremetal.k8s.plugins.module_utils import etcd_restore_check as rc
from ansible_collections.baremetal.k8s.plugins.module_utils.errors import BaremetalError
from ansible_collections.baremetal.k8s.plugins.module_utils.etcd_client import prefix_end
from hypothesis import given
from hypothesis import strategies as st

KEYS = {"/registry/namespaces/default": 1, "/registry/minions/": 3}


class TestJudge:
    def test_a_snapshot_with_every_key_passes(self):
        assert rc.judge(KEYS, 120, 900, 880, min_keys=1) == []

    def test_each_missing_key_and_empty_prefix_is_named(self):
        problems = rc.judge({"/registry/namespaces/default": 0, "/registry/minions/": 0}, 2, 900, 880, 1)
        assert problems[0].startswith("the key /registry/namespaces/default is missing")
        assert problems[1].startswith("no key under the prefix /registry/minions/")

    def test_too_few_keys(self):
        assert rc.judge(KEYS, 3, 900, 880, min_keys=100) == [
            "it holds 3 keys, fewer than min_keys=100: an empty or truncated database"]

    def test_a_revision_older_than_the_manifest_is_another_snapshot(self):
        (problem,) = rc.judge(KEYS, 120, 700, 880, 1)
        assert "revision 700 is older than the manifest's 880" in problem

    def test_no_manifest_revision_is_not_judged(self):
        assert rc.judge(KEYS, 120, 1, None, 1) == []


@given(st.binary(min_size=1, max_size=8))
def test_prefix_end_bounds_exactly_the_keys_with_the_prefix(prefix):
    end = prefix_end(prefix)
    if end == b"\0":
        assert set(prefix) == {0xFF}
    else:
        assert prefix < end
        assert prefix + b"\xff" * 4 < end  # every key with the prefix is below the end
        assert not end.startswith(prefix)  # and the end itself is not one of them


def test_prefix_end_of_a_path():
    assert prefix_end(b"/registry/minions/") == b"/registry/minions0"


def layer_with(files: dict) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def archive(path, layers: list[bytes]) -> None:
    names = ["l%d/layer.tar" % i for i in range(len(layers))]
    manifest = json.dumps([{"Config": "c.json", "Layers": names}]).encode()
    with tarfile.open(path, "w") as tar:
        for name, data in [*zip(names, layers, strict=True), ("manifest.json", manifest)]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


class TestExtractEtcd:
    def test_the_last_layer_with_the_server_wins(self, tmp_path):
        image = tmp_path / "etcd.tar"
        archive(image, [layer_with({"usr/local/bin/etcd": b"old"}), layer_with({"etc/x": b""}),
                        layer_with({"./usr/local/bin/etcd": b"new"})])
        dest = rc.extract_etcd(str(image), str(tmp_path / "etcd"))
        with open(dest, "rb") as handle:
            assert handle.read() == b"new"
        assert os.stat(dest).st_mode & 0o777 == 0o755

    def test_an_image_without_etcd(self, tmp_path):
        image = tmp_path / "pause.tar"
        archive(image, [layer_with({"pause": b"x"})])
        with pytest.raises(rc.RestoreCheckError, match=r"no usr/local/bin/etcd in the image\. Fix: give etcd_binary"):
            rc.extract_etcd(str(image), str(tmp_path / "etcd"))

    @pytest.mark.parametrize("content", [None, b"not a tar"])
    def test_a_missing_or_foreign_file(self, tmp_path, content):
        image = tmp_path / "etcd.tar"
        if content is not None:
            image.write_bytes(content)
        with pytest.raises(BaremetalError, match=str(image)):
            rc.extract_etcd(str(image), str(tmp_path / "etcd"))
        assert not (tmp_path / "etcd").exists()


class TestCheckSnapshot:
    def tools(self, tmp_path):
        paths = []
        for name in ("etcd", "etcdutl"):
            path = tmp_path / name
            path.write_text("#!/bin/sh\n")
            path.chmod(0o755)
            paths.append(str(path))
        return paths

    def test_expected_keys_must_be_strings(self, tmp_path):
        etcd, etcdutl = self.tools(tmp_path)
        with pytest.raises(rc.RestoreCheckError, match="expected_keys"):
            rc.check_snapshot("x.db", etcd=etcd, etcdutl=etcdutl, expected=["/a", ""])

    def test_a_tool_that_is_not_there_is_named(self, tmp_path):
        etcd, _etcdutl = self.tools(tmp_path)
        with pytest.raises(rc.RestoreCheckError, match=r"^etcdutl: .*/nope is not an executable file\. Fix: install"):
            rc.check_snapshot("x.db", etcd=etcd, etcdutl=str(tmp_path / "nope"))

    def test_a_snapshot_that_does_not_verify_never_reaches_etcdutl(self, tmp_path):
        etcd, etcdutl = self.tools(tmp_path)
        snap = tmp_path / "c1-20261201T000000Z-r5.db"
        snap.write_bytes(b"\0" * 4128)

        def run(*_args, **_kwargs):
            raise AssertionError("etcdutl must not run")

        result = rc.check_snapshot(str(snap), etcd=etcd, etcdutl=etcdutl, run=run, spawn=run)
        assert not result.ok and result.step == "verify"
        assert any("manifest is missing" in p for p in result.problems)

    def test_a_failed_restore_is_reported_and_cleaned_up(self, tmp_path, monkeypatch):
        etcd, etcdutl = self.tools(tmp_path)
        monkeypatch.setattr(rc, "verify_snapshot", lambda path: type("V", (), {"ok": True, "manifest": {"revision": 5},
                                                                               "reasons": []})())
        work = tmp_path / "work"
        work.mkdir()

        def run(args, **_kwargs):
            assert args[:3] == [etcdutl, "snapshot", "restore"]
            return subprocess.CompletedProcess(args, 1, stdout="Error: expected sha256 [1], got [2]\n")

        result = rc.check_snapshot("s.db", etcd=etcd, etcdutl=etcdutl, work_dir=str(work), run=run)
        assert not result.ok and result.step == "restore"
        assert result.problems == ["etcdutl snapshot restore failed (exit 1): Error: expected sha256 [1], got [2]"]
        assert os.listdir(work) == []

    def test_an_etcd_that_exits_is_reported_with_its_log(self, tmp_path, monkeypatch):
        etcd, etcdutl = self.tools(tmp_path)
        monkeypatch.setattr(rc, "verify_snapshot", lambda path: type("V", (), {"ok": True, "manifest": None,
                                                                               "reasons": []})())
        work = tmp_path / "work"
        work.mkdir()

        class Exited:
            returncode = 2

            def __init__(self, args, stdout, **_kwargs):
                stdout.write(b"panic: the database is corrupt\n")

            def poll(self):
                return self.returncode

        result = rc.check_snapshot("s.db", etcd=etcd, etcdutl=etcdutl, work_dir=str(work), timeout=5,
                                   run=lambda args, **_kw: subprocess.CompletedProcess(args, 0, stdout=""),
                                   spawn=Exited)
        assert not result.ok and result.step == "start"
        assert "it exited with code 2" in result.problems[0]
        assert result.problems[0].endswith("panic: the database is corrupt")
        assert os.listdir(work) == []


class TestCheckLine:
    CHECK = {"ok": True, "step": "done", "problems": [], "keys": {"/registry/minions/": 5}, "total_keys": 1234,
             "revision": 90210, "seconds": {"verify": 0.2, "restore": 1.1, "start": 1.6, "read": 0.1}}

    def test_a_snapshot_that_restores(self):
        line = rc.check_line({"cluster": "east", "snapshot": "east-20261201T230000Z-r90000.db", "age_seconds": 3720,
                              "check": self.CHECK, "error": ""})
        assert line == ("cluster east: east-20261201T230000Z-r90000.db (1h2m old) restores: 1234 keys at revision "
                        "90210, 5 Nodes, checked in 3.0 s (restore 1.1 s, etcd up 1.6 s)")

    def test_a_failed_step_says_which_and_why(self):
        check = {"ok": False, "step": "verify", "problems": ["its sha256 a differs from the manifest's b"]}
        line = rc.check_line({"cluster": "east", "snapshot": "east-x.db", "check": check, "error": "..."})
        assert line == "cluster east: east-x.db FAILED at verify: its sha256 a differs from the manifest's b"

    def test_no_snapshot(self):
        line = rc.check_line({"cluster": "east", "snapshot": None, "check": None,
                              "error": "no snapshot of east verifies in localhost:/srv"})
        assert line == "cluster east: NO VERIFIED SNAPSHOT (no snapshot of east verifies in localhost:/srv)"
