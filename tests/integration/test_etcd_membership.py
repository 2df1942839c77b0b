# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""baremetal.k8s.etcd_info and etcd_member against a real 3-member etcd cluster on loopback.

The cluster is TLS-only with client certificates, like kubeadm's stacked etcd
(tests/integration/etcd_cluster.py). Members fail the two ways a control plane
does: frozen (SIGSTOP, like ``docker pause``: sockets open, no answer) and
killed (connections refused). The modules run for real through
``ansible localhost -m``; some cases drive the core (module_utils/etcd_client.py
and etcd_quorum.py) directly, as the recovery playbooks' helpers will.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from ansible_collections.baremetal.k8s.plugins.module_utils.etcd_client import (
    EtcdClient,
    EtcdError,
    cluster_facts,
)
from ansible_collections.baremetal.k8s.plugins.module_utils.etcd_quorum import check_remove, find_member
from controlplane import ensure_binaries
from etcd_cluster import EtcdCluster, EtcdPki

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "unit"))
from fleet_samples import BIN, ansible_env  # noqa: E402

# The json callback gives each task's result; the venv's Python runs the modules.
ANSIBLE_ENV = {"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json", "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
               "ANSIBLE_PYTHON_INTERPRETER": sys.executable, "ANSIBLE_LOCALHOST_WARNING": "0"}
TIMEOUT = 2.0  # seconds per request: what a frozen member costs


# --------------------------------------------------------------------------- helpers


def run_module(module: str, args: dict, check: bool = False) -> dict:
    """Run baremetal.k8s.MODULE through `ansible localhost -m`; the task's result."""
    cmd = [os.path.join(BIN, "ansible"), "localhost", "-i", "localhost,",
           "-c", "local", "-m", "baremetal.k8s." + module, "-a", json.dumps(args)]
    if check:
        cmd += ["--check", "--diff"]
    proc = subprocess.run(cmd, env=ansible_env(**ANSIBLE_ENV), capture_output=True, text=True, timeout=120, check=False)
    try:
        return json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except (ValueError, KeyError, IndexError):
        pytest.fail(f"ansible rc={proc.returncode}, unparsable output:\n{proc.stdout}\n{proc.stderr}")


def client(cluster: EtcdCluster, endpoints: list[str] | None = None) -> EtcdClient:
    auth = cluster.auth
    return EtcdClient(endpoints or auth.pop("endpoints"), timeout=TIMEOUT,
                      **{k: v for k, v in auth.items() if k != "endpoints"})


def by_name(facts: dict) -> dict[str, dict]:
    return {m["name"]: m for m in facts["members"]}


def no_traceback(result: dict) -> None:
    # ansible-core 2.19 adds "exception": "(traceback unavailable)" to every fail_json: not a traceback.
    text = json.dumps(result)
    assert "Traceback" not in text, text
    assert result.get("exception", "(traceback unavailable)") == "(traceback unavailable)", text


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def etcd_bin():
    return ensure_binaries()


@pytest.fixture(scope="session")
def etcd_pki(tmp_path_factory):
    return EtcdPki(tmp_path_factory.mktemp("etcd-pki"))


@pytest.fixture
def etcd3(etcd_bin, etcd_pki):
    """A fresh, healthy 3-member TLS etcd cluster for one test."""
    with EtcdCluster(etcd_bin, etcd_pki, size=3) as cluster:
        yield cluster


def freeze_leader(cluster: EtcdCluster) -> str:
    """Freeze the leader (the hardest member to lose) and wait until the other two elect a new one."""
    name = cluster.leader()
    cluster.freeze(name)
    cluster.wait_healthy(timeout=30)
    return name


# --------------------------------------------------------------------------- tests


def test_info_reports_three_healthy_members(etcd3):
    facts = run_module("etcd_info", {**etcd3.auth, "timeout": TIMEOUT})
    assert not facts.get("failed"), facts
    assert facts["changed"] is False
    assert sorted(by_name(facts)) == ["etcd-0", "etcd-1", "etcd-2"]
    assert all(m["healthy"] and m["started"] and not m["is_learner"] for m in facts["members"]), facts["members"]
    assert (facts["member_count"], facts["voting_members"], facts["quorum"], facts["healthy_voters"]) == (3, 3, 2, 3)
    assert facts["has_quorum"] and facts["fault_tolerance"] == 1
    assert facts["safe_to_remove_one"] and facts["safe_to_add"] and facts["safe_to_add_learner"]
    assert facts["leader"] == etcd3.leader()
    assert [m["name"] for m in facts["members"] if m["is_leader"]] == [facts["leader"]]
    leader = by_name(facts)[facts["leader"]]
    assert leader["raft_index"] > 0 and leader["db_size"] > 0 and leader["version"].startswith("3.")
    assert int(leader["id"]) == int(leader["id_hex"], 16)
    # Check mode changes nothing and reports the same.
    checked = run_module("etcd_info", {**etcd3.auth, "timeout": TIMEOUT}, check=True)
    assert checked["changed"] is False and checked["healthy_voters"] == 3


def test_frozen_member_remove_refused_for_healthy_allowed_for_frozen(etcd3):
    frozen = freeze_leader(etcd3)
    healthy_names = sorted(m.name for m in etcd3.running())
    args = {**etcd3.auth, "timeout": TIMEOUT}

    started = time.monotonic()
    facts = run_module("etcd_info", args)
    info_seconds = time.monotonic() - started
    members = by_name(facts)
    assert not members[frozen]["healthy"] and "no answer within the timeout" in members[frozen]["health_error"]
    assert all(members[name]["healthy"] for name in healthy_names)
    assert (facts["healthy_voters"], facts["quorum"], facts["fault_tolerance"]) == (2, 2, 0)
    assert facts["has_quorum"] and facts["leader"] in healthy_names
    assert facts["safe_to_add"] is False
    assert "4 voting members of which 2 healthy, below the quorum of 3" in facts["add_reason"]
    assert facts["safe_to_add_learner"] is True
    assert facts["safe_to_remove_one"] is False and facts["removable"] == [frozen]
    # The frozen member is probed in parallel with the others: about one timeout, not one per member.
    print(f"etcd_info with a frozen member: {info_seconds:.1f}s (timeout {TIMEOUT}s)")

    # A healthy member: refused, nothing changed, the reason gives the numbers.
    refused = run_module("etcd_member", {**args, "name": healthy_names[0]})
    no_traceback(refused)
    assert refused["failed"] and refused["changed"] is False and refused["removed"] is False
    assert "2 voting members would remain, of which only 1 healthy, below the quorum of 2" in refused["msg"]
    assert refused["decision"]["allowed"] is False
    assert etcd3.member_names() == ["etcd-0", "etcd-1", "etcd-2"]

    # Check mode on the frozen member: would remove, removes nothing, shows the diff.
    planned = run_module("etcd_member", {**args, "name": frozen}, check=True)
    assert planned["changed"] is True and planned["removed"] is False, planned
    assert frozen in planned["diff"]["before"]["members"] and frozen not in planned["diff"]["after"]["members"]
    assert etcd3.member_names() == ["etcd-0", "etcd-1", "etcd-2"]

    # For real: the frozen member goes, 2 remain; a second run changes nothing.
    removed = run_module("etcd_member", {**args, "name": frozen})
    assert removed["changed"] is True and removed["removed"] is True, removed
    assert sorted(removed["members"]) == healthy_names
    assert removed["decision"]["healthy_voters_after"] == 2
    assert etcd3.member_names() == healthy_names
    again = run_module("etcd_member", {**args, "name": frozen})
    assert again["changed"] is False and again["removed"] is False and again["member"] is None
    assert not again.get("failed"), again

    # The cluster of 2 is fully healthy again: a voter may join, any one member may go.
    after = run_module("etcd_info", {**args, "endpoints": [etcd3.member(n).client_url for n in healthy_names]})
    assert (after["member_count"], after["healthy_voters"], after["quorum"]) == (2, 2, 2)
    assert after["safe_to_add"] and after["safe_to_remove_one"]


def test_killed_member_through_the_core_by_peer_url(etcd3):
    victim = next(m for m in etcd3.members if m.name != etcd3.leader())
    etcd3.kill(victim.name)
    etcd = client(etcd3)
    members = etcd.member_list()
    probes = etcd.probe(members)
    healthy = {k: p.healthy for k, p in probes.items()}
    target = find_member(members, peer_url=victim.peer_url)
    assert target is not None and target.name == victim.name
    assert not healthy[target.id] and "nothing listens there" in probes[target.id].error
    for member in members:
        decision = check_remove(members, healthy, member)
        assert decision.allowed is (member.id == target.id), decision
    left = etcd.member_remove(target.id)
    assert sorted(m.name for m in left) == sorted(m.name for m in etcd3.running())
    # Removing it again: etcd says NOT_FOUND (code 5); the module turns that into changed=false.
    with pytest.raises(EtcdError) as err:
        etcd.member_remove(target.id)
    assert err.value.code == 5 and "member not found" in str(err.value)


def test_lost_quorum_nothing_is_removed(etcd3):
    survivor, *down = [m.name for m in etcd3.members]
    for name in down:
        etcd3.kill(name)
    args = {**etcd3.auth, "timeout": TIMEOUT}
    facts = run_module("etcd_info", args)
    no_traceback(facts)
    assert not facts.get("failed"), facts
    # The survivor has no leader: its /health fails (no quorum for its read), it is not healthy either.
    print("survivor:", by_name(facts)[survivor]["health_error"])
    assert facts["has_quorum"] is False and facts["healthy_voters"] == 0
    assert facts["safe_to_add"] is False and facts["safe_to_add_learner"] is False
    assert facts["safe_to_remove_one"] is False and facts["removable"] == []
    refused = run_module("etcd_member", {**args, "name": down[0]})
    assert refused["failed"] and refused["changed"] is False
    assert "already lost quorum" in refused["msg"], refused["msg"]
    assert etcd3.member_names() == ["etcd-0", "etcd-1", "etcd-2"]
    assert survivor in refused["members"]


def test_first_endpoint_frozen_the_next_one_answers(etcd3):
    frozen = freeze_leader(etcd3)
    endpoints = [etcd3.member(frozen).client_url] + [m.client_url for m in etcd3.running()]
    etcd = client(etcd3, endpoints)
    started = time.monotonic()
    facts = cluster_facts(etcd)
    seconds = time.monotonic() - started
    assert facts["endpoint"] != endpoints[0] and facts["healthy_voters"] == 2
    # One timeout for the frozen endpoint in the list, one for its probe (in parallel with the others).
    print(f"frozen first endpoint: {seconds:.1f}s (timeout {TIMEOUT}s)")


def test_single_member_over_plain_http(etcd_bin, etcd_pki):
    with EtcdCluster(etcd_bin, etcd_pki, size=1, tls=False) as single:
        args = {"endpoints": single.endpoints, "timeout": TIMEOUT}
        facts = run_module("etcd_info", args)
        assert (facts["member_count"], facts["healthy_voters"], facts["quorum"]) == (1, 1, 1), facts
        assert facts["safe_to_remove_one"] is False and "last member" in facts["remove_reason"]
        # A second voter would stall the cluster until it starts; a learner (kubeadm's join) would not.
        assert facts["safe_to_add"] is False and facts["safe_to_add_learner"] is True
        refused = run_module("etcd_member", {**args, "name": "etcd-0"})
        assert refused["failed"] and "last member" in refused["msg"]
        assert single.member_names() == ["etcd-0"]


def test_bad_connection_options_are_clear_errors(etcd3, tmp_path):
    base = {"endpoints": etcd3.endpoints[:1], "timeout": TIMEOUT}
    auth = etcd3.pki.auth
    other = EtcdPki(tmp_path / "other-pki")  # a CA etcd does not trust

    cases = [
        # (options, words the message must contain)
        ({**base, **auth, "ca_cert": str(tmp_path / "nope.crt")}, ["ca_cert", "nope.crt", "does not exist"]),
        ({**base, "name": "x"}, ["/etc/kubernetes/pki/etcd/ca.crt does not exist", "control plane"]),
        ({**base, **auth, "ca_cert": str(other.path("ca.crt"))}, [etcd3.endpoints[0], "not signed by ca_cert"]),
        ({**base, **auth, "client_cert": str(other.path("healthcheck-client.crt")),
          "client_key": str(other.path("healthcheck-client.key"))}, ["rejected the client certificate", "client_cert"]),
        ({**base, **auth, "endpoints": [etcd3.endpoints[0].replace("https://", "http://")]},
         ["https:// etcd reached over http://"]),
        ({**base, **auth, "endpoints": ["https://127.0.0.1:1"]}, ["nothing listens there", "127.0.0.1:1"]),
        ({**base, **auth, "endpoints": ["127.0.0.1:2379"]}, ["is not a URL", "https://HOST:2379"]),
    ]
    for options, words in cases:
        module = "etcd_member" if "name" in options else "etcd_info"
        result = run_module(module, options)
        no_traceback(result)
        assert result.get("failed"), (options, result)
        for word in words:
            assert word in result["msg"], (word, result["msg"])
    # The modules' own argument checks.
    both = run_module("etcd_member", {**base, **auth, "name": "etcd-0", "peer_url": "https://127.0.0.1:1"})
    assert both["failed"] and "mutually exclusive" in both["msg"]


PLAYBOOK = """
- name: Take a control plane out of etcd, as a reset playbook does
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Read etcd
      baremetal.k8s.etcd_info:
        endpoints: {endpoints}
        ca_cert: {ca_cert}
        client_cert: {client_cert}
        client_key: {client_key}
        timeout: {timeout}
      register: etcd

    - name: Stop unless the cluster has quorum
      ansible.builtin.assert:
        that: etcd.has_quorum
        fail_msg: "{{{{ etcd.remove_reason }}}}"

    - name: Remove the member (refused if quorum would be lost)
      baremetal.k8s.etcd_member:
        name: {name}
        state: absent
        endpoints: {endpoints}
        ca_cert: {ca_cert}
        client_cert: {client_cert}
        client_key: {client_key}
        timeout: {timeout}
"""


def test_playbook_removes_once_then_changes_nothing(etcd3, tmp_path):
    """ansible-playbook, as the reset playbook will run it: first run changed=1, second changed=0."""
    frozen = freeze_leader(etcd3)
    playbook = tmp_path / "remove.yml"
    playbook.write_text(PLAYBOOK.format(name=frozen, timeout=TIMEOUT, endpoints=json.dumps(etcd3.endpoints),
                                        **etcd3.pki.auth))
    cmd = [os.path.join(BIN, "ansible-playbook"), "-i", "localhost,", "-c", "local",
           str(playbook)]
    stats = []
    for _run in range(2):
        proc = subprocess.run(cmd, env=ansible_env(**ANSIBLE_ENV), capture_output=True, text=True, timeout=180,
                              check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        stats.append(json.loads(proc.stdout)["stats"]["localhost"])
    assert stats[0]["changed"] == 1 and stats[1]["changed"] == 0, stats
    assert frozen not in etcd3.member_names() and len(etcd3.member_names()) == 2
