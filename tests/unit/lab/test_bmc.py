# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab's Redfish BMC (lab/bmc.py through lab.serve_bmc) with a fake docker: over HTTPS with urllib, and
through community.general's redfish_command and redfish_info, the modules the recovery playbook fences with."""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from fleet_samples import BIN, REPO, module_env

sys.path.insert(0, os.path.join(REPO, "lab"))
import lab

LAB = "t"
USER, PASSWORD = "lab-admin", "s3cret"
HOSTS = ("t-node-1", "t-node-2", "t-node-3")


class FakeDocker:
    """The docker CLI calls the BMC makes, on made-up containers; ``actions`` records what changed power."""

    def __init__(self):
        self.containers = {name: {"labels": {lab.LABEL: LAB}, "running": True} for name in HOSTS}
        self.containers["t-node-3"]["running"] = False
        self.containers["other-node-1"] = {"labels": {lab.LABEL: "other"}, "running": True}  # another lab's host
        self.containers["dev-node-1"] = {"labels": {}, "running": True}  # not a lab host at all
        self.actions = []
        self.fail = None  # a command name that fails

    def __call__(self, *args):
        if args[0] == "ps":
            wanted = args[args.index("--filter") + 1].removeprefix("label=")
            key, value = wanted.split("=", 1)
            names = [n for n, c in self.containers.items() if c["labels"].get(key) == value]
            return self.result(args, "\n".join(names) + "\n")
        if args[:2] == ("container", "inspect"):
            name = args[2]
            matches = [n for n in self.containers if n == name or n.startswith(name)]  # docker matches ID prefixes
            if not matches:
                return self.result(args, "[]\n", 1, "Error: No such container: " + name)
            found = self.containers[matches[0]]
            return self.result(args, json.dumps([{"Name": "/" + matches[0], "Config": {"Labels": found["labels"]},
                                                  "State": {"Running": found["running"], "Restarting": False}}]))
        name = args[-1]
        self.actions.append(args)
        if args[0] == self.fail:
            return self.result(args, "", 1, "Error response from daemon: it broke")
        self.containers[name]["running"] = args[0] in ("start", "restart")
        return self.result(args, name + "\n")

    @staticmethod
    def result(args, stdout, returncode=0, stderr=""):
        return subprocess.CompletedProcess(args, returncode, stdout, stderr)


@pytest.fixture(scope="module")
def cert_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("bmc")  # one certificate for every test (openssl takes a moment)


@pytest.fixture
def bmc(cert_dir):
    """(url, fake docker) of a running BMC on loopback, any free port."""
    docker = FakeDocker()
    with lab.serve_bmc(LAB, 0, address="127.0.0.1", docker_runner=docker, credentials=(USER, PASSWORD),
                       state_dir=str(cert_dir)) as url:
        yield url, docker


INSECURE = ssl.create_default_context()
INSECURE.check_hostname = False
INSECURE.verify_mode = ssl.CERT_NONE  # the lab BMC's certificate is self-signed, as a real BMC's often is


def request(url, path, body=None, auth=(USER, PASSWORD), method=None):
    """(status, JSON or None, headers)."""
    req = urllib.request.Request(url + path, method=method or ("POST" if body is not None else "GET"),
                                 data=None if body is None else json.dumps(body).encode())
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(("%s:%s" % auth).encode()).decode())
    try:
        with urllib.request.urlopen(req, context=INSECURE, timeout=10) as resp:
            status, data, headers = resp.status, resp.read(), resp.headers
    except urllib.error.HTTPError as exc:
        status, data, headers = exc.code, exc.read(), exc.headers
    return status, json.loads(data) if data else None, headers


def reset(url, system, reset_type):
    return request(url, "/redfish/v1/Systems/%s/Actions/ComputerSystem.Reset" % system, {"ResetType": reset_type})


# --------------------------------------------------------------------------- over HTTPS


def test_the_service_root_needs_no_credentials_and_everything_else_does(bmc):
    url, _docker = bmc
    assert url.startswith("https://127.0.0.1:")
    status, root, headers = request(url, "/redfish/v1/", auth=None)
    assert status == 200 and headers["OData-Version"] == "4.0"
    assert root["Systems"] == {"@odata.id": "/redfish/v1/Systems"}
    assert root["Links"]["Sessions"] == {"@odata.id": "/redfish/v1/SessionService/Sessions"}
    for auth in (None, (USER, "wrong"), ("root", PASSWORD)):
        status, body, headers = request(url, "/redfish/v1/Systems", auth=auth)
        assert status == 401 and headers["WWW-Authenticate"].startswith("Basic ")
        assert body["error"]["@Message.ExtendedInfo"][0]["Message"]


def test_the_systems_are_this_labs_hosts_with_their_power_state(bmc):
    url, _docker = bmc
    status, systems, _headers = request(url, "/redfish/v1/Systems")
    assert status == 200
    assert systems["Members"] == [{"@odata.id": "/redfish/v1/Systems/%s" % n} for n in HOSTS]
    on = request(url, "/redfish/v1/Systems/t-node-1")[1]
    off = request(url, "/redfish/v1/Systems/t-node-3")[1]
    assert (on["Id"], on["PowerState"], off["PowerState"]) == ("t-node-1", "On", "Off")
    action = on["Actions"]["#ComputerSystem.Reset"]
    assert action["target"] == "/redfish/v1/Systems/t-node-1/Actions/ComputerSystem.Reset"
    assert set(action["ResetType@Redfish.AllowableValues"]) == {"On", "ForceOff", "GracefulShutdown",
                                                                "ForceRestart", "GracefulRestart"}


@pytest.mark.parametrize(("system", "reset_type", "command"), [
    ("t-node-1", "ForceOff", ("kill", "t-node-1")),
    ("t-node-1", "GracefulShutdown", ("stop", "t-node-1")),
    ("t-node-3", "On", ("start", "t-node-3")),
    ("t-node-3", "ForceOn", ("start", "t-node-3")),
    ("t-node-2", "ForceRestart", ("restart", "-t", "0", "t-node-2")),
    ("t-node-2", "GracefulRestart", ("restart", "t-node-2")),
])  # fmt: skip
def test_reset_types_run_their_docker_command(bmc, system, reset_type, command):
    url, docker = bmc
    status, body, _headers = reset(url, system, reset_type)
    assert (status, body) == (204, None)
    assert docker.actions == [command]
    expected = "Off" if reset_type in ("ForceOff", "GracefulShutdown") else "On"
    assert request(url, "/redfish/v1/Systems/" + system)[1]["PowerState"] == expected


def test_a_system_already_in_the_state_asked_for_is_left_alone(bmc):
    url, docker = bmc
    assert reset(url, "t-node-3", "ForceOff")[0] == 204
    assert reset(url, "t-node-1", "On")[0] == 204
    assert docker.actions == []


@pytest.mark.parametrize("system", ["other-node-1", "dev-node-1", "t-node", "nope", "-rf", "..", "t-node-1%2F.."])
def test_containers_that_are_not_this_labs_hosts_are_not_found_and_never_touched(bmc, system):
    url, docker = bmc
    assert request(url, "/redfish/v1/Systems/" + system)[0] == 404
    assert request(url, "/redfish/v1/Chassis/" + system)[0] == 404
    status, body, _headers = reset(url, system, "ForceOff")
    assert status == 404 and "no resource" in body["error"]["message"]
    assert docker.actions == []


def test_bad_reset_requests(bmc):
    url, docker = bmc
    status, body, _headers = reset(url, "t-node-1", "Nmi")
    assert status == 400 and "'Nmi' is not one of On, ForceOff" in body["error"]["message"]
    req = urllib.request.Request(url + "/redfish/v1/Systems/t-node-1/Actions/ComputerSystem.Reset", data=b"{",
                                 method="POST")
    req.add_header("Authorization", "Basic " + base64.b64encode(b"lab-admin:s3cret").decode())
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, context=INSECURE, timeout=10)
    assert info.value.code == 400
    assert request(url, "/redfish/v1/Systems/t-node-1", method="DELETE")[0] == 405
    assert request(url, "/redfish/v1/Systems/t-node-1/Actions/ComputerSystem.Reset")[0] == 405  # a GET
    assert docker.actions == []


def test_a_failing_docker_command_is_a_500_that_says_why(bmc):
    url, docker = bmc
    docker.fail = "kill"
    status, body, _headers = reset(url, "t-node-1", "ForceOff")
    assert status == 500 and "docker kill t-node-1 failed: Error response from daemon: it broke" in \
        body["error"]["message"]


def test_chassis_managers_and_sessions(bmc):
    url, _docker = bmc
    chassis = request(url, "/redfish/v1/Chassis")[1]
    assert [m["@odata.id"] for m in chassis["Members"]] == ["/redfish/v1/Chassis/%s" % n for n in HOSTS]
    assert request(url, "/redfish/v1/Chassis/t-node-3")[1]["PowerState"] == "Off"
    managers = request(url, "/redfish/v1/Managers")[1]
    assert managers["Members"] == [{"@odata.id": "/redfish/v1/Managers/bmc"}]
    manager = request(url, "/redfish/v1/Managers/bmc")[1]
    assert manager["ManagerType"] == "BMC" and len(manager["Links"]["ManagerForServers"]) == 3
    assert request(url, "/redfish/v1/SessionService")[1]["ServiceEnabled"] is False
    assert request(url, "/redfish/v1/SessionService/Sessions")[1]["Members"] == []
    assert request(url, "/redfish/v1/SessionService/Sessions", {"UserName": USER, "Password": PASSWORD})[0] == 405
    assert request(url, "/redfish/v1/UpdateService")[0] == 404


def test_plain_http_is_refused(bmc):
    url, _docker = bmc
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        urllib.request.urlopen(url.replace("https://", "http://") + "/redfish/v1", timeout=5)


# --------------------------------------------------------------------------- community.general's modules


def run_tasks(tmp_path, url, tasks):
    """Run ``tasks`` ((module, args) pairs, failures ignored) as one play on localhost; their results in order.

    Every task gets the BMC's baseuri and credentials unless it names its own: one ansible-playbook run,
    not one ``ansible`` run per module (each costs seconds).
    """
    common = {"baseuri": url.removeprefix("https://"), "username": USER, "password": PASSWORD,
              "validate_certs": False}
    play = [{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "task %d" % i, "community.general." + module: {**common, **args}, "ignore_errors": True}
        for i, (module, args) in enumerate(tasks)]}]
    playbook = tmp_path / "redfish.yml"
    playbook.write_text(json.dumps(play))
    proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", "localhost,", "-c", "local", str(playbook)],
                          env=module_env(no_proxy="127.0.0.1", NO_PROXY="127.0.0.1"), capture_output=True, text=True,
                          check=False, timeout=300)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    results = [task["hosts"]["localhost"] for task in json.loads(proc.stdout)["plays"][0]["tasks"]]
    assert len(results) == len(tasks), proc.stdout
    return results


def power(command, system=None, **args):
    args = dict(category="Systems", command=[command], **args)
    if system:
        args["resource_id"] = system
    return ("redfish_command", args)


INVENTORY = ("redfish_info", {"category": ["Systems"], "command": ["GetSystemInventory"]})


def power_states(facts):
    assert facts.get("failed") is not True, facts
    return {entry["Id"]: entry["PowerState"] for _uri, entry in facts["redfish_facts"]["system"]["entries"]}


def test_redfish_command_and_redfish_info_fence_a_host_and_bring_it_back(bmc, tmp_path):
    url, docker = bmc
    off, seen_off, again, on, seen_on, unnamed, wrong, foreign = run_tasks(tmp_path, url, [
        power("PowerForceOff", "t-node-2"), INVENTORY,
        power("PowerForceOff", "t-node-2"),  # already off: nothing to do
        power("PowerOn", "t-node-2"), INVENTORY,
        power("PowerForceOff"),  # three systems: which one?
        power("PowerForceOff", "t-node-1", password="wrong"),
        power("PowerForceOff", "dev-node-1"),  # a container that is no host of this lab
    ])  # fmt: skip
    assert off.get("failed") is not True and off["changed"] is True, off
    assert power_states(seen_off) == {"t-node-1": "On", "t-node-2": "Off", "t-node-3": "Off"}
    assert again.get("failed") is not True and again["changed"] is False, again
    assert on.get("failed") is not True and on["changed"] is True, on
    assert power_states(seen_on) == {"t-node-1": "On", "t-node-2": "On", "t-node-3": "Off"}
    assert unnamed["failed"] is True and "resource_id" in unnamed["msg"]
    assert wrong["failed"] is True and "HTTP Error 401" in wrong["msg"]
    assert foreign["failed"] is True and "System resource dev-node-1 not found" in foreign["msg"]
    assert docker.actions == [("kill", "t-node-2"), ("start", "t-node-2")]
