# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A play's check_mode keyword wins over --check: every play that sets it from bmk8s_check_only must keep
--check's check mode too (``... or ansible_check_mode``), or `ansible-playbook --check` would change hosts."""

from __future__ import annotations

import glob
import os
import subprocess
import sys

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BIN = os.path.dirname(sys.executable)


def plays():
    for path in sorted(glob.glob(os.path.join(REPO, "playbooks", "*.yml"))):
        with open(path, encoding="utf-8") as handle:
            for play in yaml.safe_load(handle) or []:
                if isinstance(play, dict) and "check_mode" in play:
                    yield os.path.basename(path), play


def test_every_templated_check_mode_keeps_the_command_line_check():
    found = list(plays())
    assert len(found) >= 7  # prepare_hosts (3), install_kubernetes, pod_network, hygiene (2)
    for name, play in found:
        value = str(play["check_mode"])
        if "{{" in value:
            assert "ansible_check_mode" in value, "%s: play %r" % (name, play.get("name"))


def test_check_mode_keyword_keeps_check_mode_under_check(tmp_path):
    """For real: the keyword as the playbooks write it, under --check, writes nothing."""
    target = tmp_path / "written"
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump([{
        "hosts": "localhost", "gather_facts": False, "connection": "local",
        "check_mode": "{{ (bmk8s_check_only | default(false) | bool) or ansible_check_mode }}",
        "tasks": [{"ansible.builtin.copy": {"content": "x\n", "dest": str(target)}}]}]))
    env = dict(os.environ, ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_PYTHON_INTERPRETER=sys.executable)
    for args in (["--check"], ["-e", "bmk8s_check_only=true"]):
        subprocess.run([os.path.join(BIN, "ansible-playbook"), str(playbook), *args], env=env, check=True,
                       capture_output=True)
        assert not target.exists(), args
    subprocess.run([os.path.join(BIN, "ansible-playbook"), str(playbook)], env=env, check=True, capture_output=True)
    assert target.exists()
