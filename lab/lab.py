#!/usr/bin/env python3
"""The lab: Docker containers that act as bare-metal hosts (systemd as PID 1).

One recipe serves everything that needs hosts: `make lab-up`, the Molecule
scenarios (their create/destroy playbooks call this script) and the
full-cluster tests.

    lab.py up   [--name NAME] [--hosts N] [--subnet CIDR]
    lab.py down [--name NAME | --all]
    lab.py status
    lab.py image            # build (or reuse) the base image only
    lab.py docker           # make sure a Docker daemon answers
    lab.py bmc  [--name NAME] [--port 18443]   # the lab's Redfish BMC, in the foreground (lab/bmc.py)

On a machine without a running Docker daemon the lab installs Debian's
docker.io and starts dockerd itself (recording its PID under .lab/), and stops
it again when the last lab is removed. Where the machine's capability bounding
set lacks CAP_SYS_RESOURCE, privileged containers cannot start; the lab then
registers lab/runc-wrapper as dockerd's default runtime (see that file).

Only the standard library is used: this runs before the venv is needed.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import http.server
import ipaddress
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import bmc as lab_bmc

LAB_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(LAB_DIR)
STATE = os.path.join(REPO, ".lab")
CACHE = os.environ.get("BMK8S_CACHE", os.path.expanduser("~/.cache/baremetal-k8s"))
RECIPE = os.path.join(LAB_DIR, "image", "recipe.sh")
MIRROR = os.environ.get("BMK8S_DEBIAN_MIRROR", "http://deb.debian.org/debian")
IMAGE_REPO = "bmk8s/debian-systemd"
LABEL = "io.baremetal-k8s.lab"
DOCKERD_PIDFILE = os.path.join(STATE, "dockerd.pid")
CAP_SYS_RESOURCE = 24
DEFAULT_NAME = "bmk8s"
# Each lab gets its own /24 out of this range (the first free one), so labs of
# different names (the default, e2e tests, benchmarks) can run side by side.
SUBNET_POOL = "172.30.0.0/16"
# Paths kubeadm hosts keep on volumes: overlay on overlay fails for containerd.
VOLUME_PATHS = ("/var/lib/containerd", "/var/lib/kubelet", "/var/lib/etcd")


def log(message):
    print("lab: " + message, flush=True)


def run(args, check=True, capture=False, **kwargs):
    result = subprocess.run(args, check=False, text=True, capture_output=capture, **kwargs)
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout or "").strip() if capture else ""
        raise SystemExit("lab: command failed (%d): %s\n%s" % (result.returncode, " ".join(args), detail))
    return result


def docker_cli():
    # Prefer the client that matches Debian's daemon; another may sit first in PATH.
    return "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else (shutil.which("docker") or "docker")


def docker(*args, check=True, capture=True):
    return run([docker_cli(), *args], check=check, capture=capture)


# --- Docker daemon ------------------------------------------------------------


def ensure_packages():
    wanted = (("docker.io", "dockerd"), ("debootstrap", "debootstrap"), ("iptables", "iptables"))
    needed = [pkg for pkg, binary in wanted if not shutil.which(binary) and not os.path.exists("/usr/sbin/" + binary)]
    if not needed:
        return
    log("installing " + " ".join(needed))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(["apt-get", "update", "-qq"], env=env)
    run(["apt-get", "install", "-y", "-qq", *needed], env=env, capture=True)


def docker_answers():
    return docker("info", "--format", "{{.ServerVersion}}", check=False).returncode == 0


def machine_lacks_sys_resource():
    """True where the capability bounding set cannot grant CAP_SYS_RESOURCE."""
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("CapBnd:"):
                return not (int(line.split()[1], 16) >> CAP_SYS_RESOURCE) & 1
    return False


def install_runc_wrapper(path):
    """lab/runc-wrapper, run by this very interpreter (resolved: no pyenv-style shim) in isolated mode.

    containerd runs the wrapper for every container start and every `docker
    exec`, several times per Ansible task: through `/usr/bin/env python3` and a
    shim it cost 0.14 CPU-seconds a run, two thirds of a `docker exec`; direct
    and with -IS (no site-packages) it costs 0.02.
    """
    with open(os.path.join(LAB_DIR, "runc-wrapper"), encoding="utf-8") as handle:
        body = handle.read().split("\n", 1)[1]  # without its own shebang
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("#!%s -IS\n%s" % (os.path.realpath(sys.executable), body))
    os.chmod(path, 0o755)


def start_dockerd():
    os.makedirs(STATE, exist_ok=True)
    config = {"storage-driver": "overlay2"}
    if machine_lacks_sys_resource():
        wrapper = os.path.join(STATE, "runc-wrapper")
        install_runc_wrapper(wrapper)
        config["runtimes"] = {"bmk8s-runc": {"path": wrapper}}
        config["default-runtime"] = "bmk8s-runc"
        log("CAP_SYS_RESOURCE missing from the bounding set: using the runc wrapper")
    config_path = os.path.join(STATE, "daemon.json")
    with open(config_path, "w", encoding="utf-8") as handle:
        json.dump(config, handle, indent=2)
    logfile = open(os.path.join(STATE, "dockerd.log"), "ab")  # noqa: SIM115 - handed to the daemon
    process = subprocess.Popen(
        ["dockerd", "--config-file", config_path, "--pidfile", os.path.join(STATE, "dockerd.docker-pid")],
        stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True,
    )
    with open(DOCKERD_PIDFILE, "w", encoding="ascii") as handle:
        handle.write(str(process.pid))
    deadline = time.monotonic() + 60
    while not docker_answers():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("lab: dockerd did not start; see %s" % os.path.join(STATE, "dockerd.log"))
        time.sleep(0.5)
    log("started dockerd (pid %d)" % process.pid)


def ensure_docker():
    if docker_answers():
        return
    ensure_packages()
    start_dockerd()


def our_dockerd_pid():
    try:
        with open(DOCKERD_PIDFILE, encoding="ascii") as handle:
            pid = int(handle.read().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def stop_dockerd():
    pid = our_dockerd_pid()
    if pid is None:
        return
    os.kill(pid, 15)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            break
        time.sleep(0.3)
    os.unlink(DOCKERD_PIDFILE)
    log("stopped dockerd (pid %d)" % pid)


# --- Base image ---------------------------------------------------------------


def recipe_hash():
    digest = hashlib.sha256()
    with open(RECIPE, "rb") as handle:
        digest.update(handle.read())
    digest.update(MIRROR.encode())
    return digest.hexdigest()[:12]


def ensure_image():
    """Return the tag of the base image, building it only when its recipe changed."""
    tag = "%s:%s" % (IMAGE_REPO, recipe_hash())
    if docker("image", "inspect", tag, check=False).returncode == 0:
        return tag
    archive = os.path.join(CACHE, "images", "debian-systemd-%s.tar.gz" % recipe_hash())
    if not os.path.exists(archive):
        ensure_packages()
        started = time.monotonic()
        log("building the base image with debootstrap (about a minute)")
        with tempfile.TemporaryDirectory(prefix="bmk8s-rootfs-") as rootfs:
            run(["bash", RECIPE, rootfs, MIRROR], capture=True)
            os.makedirs(os.path.dirname(archive), exist_ok=True)
            partial = archive + ".partial"
            run(["tar", "-C", rootfs, "--numeric-owner", "-czf", partial, "."])
            os.replace(partial, archive)
        log("base image built in %.0f s" % (time.monotonic() - started))
    rootfs_tag = tag + "-rootfs"
    docker("image", "import", archive, rootfs_tag)
    # `docker import --change` cannot set STOPSIGNAL; a one-step build FROM the
    # imported image can, and needs no registry.
    dockerfile = "\n".join([
        "FROM " + rootfs_tag,
        "ENV container=docker PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "STOPSIGNAL SIGRTMIN+3",
        'CMD ["/lib/systemd/systemd"]',
    ]) + "\n"
    run([docker_cli(), "build", "-q", "-t", tag, "-t", IMAGE_REPO + ":latest", "-"], input=dockerfile, capture=True)
    docker("rmi", rootfs_tag, check=False)
    return tag


# --- Hosts --------------------------------------------------------------------


def lab_state_dir(name):
    return os.path.join(STATE, name)


def ssh_keypair():
    key = os.path.join(STATE, "ssh", "id_ed25519")
    if not os.path.exists(key):
        os.makedirs(os.path.dirname(key), exist_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], capture=True)
    with open(key + ".pub", encoding="ascii") as handle:
        return key, handle.read().strip()


def host_plan(name, count, subnet):
    network = ipaddress.ip_network(subnet)
    hosts = []
    for index in range(1, count + 1):
        hosts.append({"name": "%s-node-%d" % (name, index), "address": str(network.network_address + 10 + index),
                      "rack": "rack-%d" % index})
    return hosts


def start_host(name, host, image, network):
    container = host["name"]
    if docker("container", "inspect", container, check=False).returncode == 0:
        docker("start", container)
        return
    args = ["run", "-d", "--name", container, "--hostname", container, "--network", network,
            "--ip", host["address"], "--privileged", "--cgroupns=private",
            "--tmpfs", "/run", "--tmpfs", "/run/lock", "--tmpfs", "/tmp:exec",
            "--label", "%s=%s" % (LABEL, name)]
    for path in VOLUME_PATHS:
        args += ["--mount", "type=volume,dst=%s,volume-label=%s=%s" % (path, LABEL, name)]
    docker(*args, image)


def wait_for_systemd(hosts, timeout=90):
    deadline = time.monotonic() + timeout
    pending = [host["name"] for host in hosts]
    while pending:
        for container in list(pending):
            state = docker("exec", container, "systemctl", "is-system-running", check=False).stdout.strip()
            if state in ("running", "degraded"):
                pending.remove(container)
        if pending and time.monotonic() > deadline:
            raise SystemExit("lab: systemd did not come up in %s within %d s" % (", ".join(pending), timeout))
        if pending:
            time.sleep(0.5)


def install_ssh_key(hosts, public_key):
    for host in hosts:
        docker("exec", host["name"], "sh", "-c",
               "umask 077; mkdir -p /root/.ssh; echo '%s' > /root/.ssh/authorized_keys" % public_key)


def gateway_of(subnet):
    """The lab network's gateway: the first address of its subnet."""
    return str(ipaddress.ip_network(subnet).network_address + 1)


def network_subnet(network):
    """The subnet of an existing Docker network, or None."""
    result = docker("network", "inspect", network, "--format", "{{range .IPAM.Config}}{{.Subnet}} {{end}}",
                    check=False)
    return result.stdout.split()[0] if result.returncode == 0 and result.stdout.split() else None


def free_subnet():
    """The first /24 of SUBNET_POOL that no Docker network uses."""
    used = []
    for network in docker("network", "ls", "-q").stdout.split():
        subnet = network_subnet(network)
        if subnet:
            used.append(ipaddress.ip_network(subnet))
    for candidate in ipaddress.ip_network(SUBNET_POOL).subnets(new_prefix=24):
        if not any(candidate.overlaps(other) for other in used):
            return str(candidate)
    raise SystemExit("lab: every /24 of %s is in use; remove a lab or pass --subnet" % SUBNET_POOL)


def up(name, count, subnet=None):
    started = time.monotonic()
    ensure_docker()
    image = ensure_image()
    network = name + "-net"
    existing = network_subnet(network)
    if existing and subnet and existing != subnet:
        raise SystemExit("lab: %s already uses %s; run `lab.py down --name %s` to change its subnet"
                         % (name, existing, name))
    subnet = existing or subnet or free_subnet()
    if not existing:
        docker("network", "create", "--driver", "bridge", "--subnet", subnet,
               "--gateway", gateway_of(subnet), "--label", "%s=%s" % (LABEL, name),
               network)
    hosts = host_plan(name, count, subnet)
    for host in hosts:
        start_host(name, host, image, network)
    wait_for_systemd(hosts)
    key, public_key = ssh_keypair()
    install_ssh_key(hosts, public_key)
    write_inventory(name, hosts, subnet, key)
    where = os.path.relpath(inventory_dir(name), os.getcwd())
    log("%d hosts running in %.1f s; inventory: %s" % (count, time.monotonic() - started, where))


def lab_names():
    result = docker("ps", "-a", "--filter", "label=" + LABEL, "--format", '{{.Label "%s"}}' % LABEL, check=False)
    return sorted({line for line in result.stdout.split() if line})


def down(name):
    if not docker_answers():
        log("no Docker daemon answers: nothing to remove")
        return
    containers = docker("ps", "-aq", "--filter", "label=%s=%s" % (LABEL, name)).stdout.split()
    if containers:
        docker("rm", "-f", "-v", *containers)
    volumes = docker("volume", "ls", "-q", "--filter", "label=%s=%s" % (LABEL, name)).stdout.split()
    if volumes:
        docker("volume", "rm", "-f", *volumes)
    networks = docker("network", "ls", "-q", "--filter", "label=%s=%s" % (LABEL, name)).stdout.split()
    if networks:
        docker("network", "rm", *networks)
    shutil.rmtree(lab_state_dir(name), ignore_errors=True)
    log("removed lab %s (%d containers)" % (name, len(containers)))
    # Other containers (Molecule scenarios, a developer's own) keep our dockerd running.
    if not docker("ps", "-aq").stdout.split():
        stop_dockerd()


# --- Inventory ----------------------------------------------------------------


def inventory_dir(name):
    return os.path.join(lab_state_dir(name), "inventory")


WORKERS = 2  # the lab cluster's worker node group
BMC_PORT = lab_bmc.PORT  # the lab's BMC (HTTPS) on the lab gateway, one for all hosts
BMC_CREDENTIALS = "lab"  # the fleet's bmc.credentials: the key of bmc_credentials in the lab's secrets
BMC_USER = "lab-admin"


# How Ansible reaches the lab's hosts: "ssh" (as it reaches real servers; one multiplexed connection per host,
# no process started in the container per task but the module's) or "docker" (docker exec).
CONNECTION = os.environ.get("BMK8S_LAB_CONNECTION", "ssh")


def connection_vars(host, ssh_key):
    """The fleet's connection fields of HOST. The interpreter is named: no discovery round trips per run."""
    if CONNECTION == "docker":
        return {"ansible_connection": "community.docker.docker", "ansible_host": host["name"],
                "ansible_python_interpreter": "/usr/bin/python3"}
    # A rebuilt host has new host keys and a stopped one must fail fast: the lab's hosts come and go.
    return {"ansible_connection": "ansible.builtin.ssh", "ansible_host": host["address"], "ansible_user": "root",
            "ansible_ssh_private_key_file": ssh_key, "ansible_python_interpreter": "/usr/bin/python3",
            "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR "
                                       "-o ConnectTimeout=5 -o ServerAliveInterval=5 -o ServerAliveCountMax=3"}


def lab_fleet(name, hosts, subnet, ssh_key):
    """The fleet file describing the lab: one region, one row, a rack per host.

    Hosts 1-3 are the control plane (named in the fleet file); the worker group "edge" (hosts 4-5) is
    declared by intent only, so placement (playbooks/place.yml) chooses its servers; hosts past the fifth are
    spares that placement can hand out as replacements.
    """
    network = ipaddress.ip_network(subnet)
    bmc_address = "https://%s:%d" % (gateway_of(subnet), BMC_PORT)
    control = hosts[:3] if len(hosts) >= 3 else hosts[:1]
    workers = hosts[len(control):len(control) + WORKERS]
    spares = {h["name"] for h in hosts[len(control) + len(workers):]}
    groups = [{"name": "control-plane", "roles": ["control_plane", "etcd"], "servers": [h["name"] for h in control]}]
    if workers:
        # The label is what the Nodes must carry (the reconcile e2e removes it from one by hand).
        groups.append({"name": "edge", "roles": ["worker", "load_balancer"], "labels": {"baremetal.k8s/pool": "edge"},
                       "intent": {"count": len(workers), "min_cores": 2, "spread": "rack"}})
    return {
        "version": 1,
        "regions": [{"name": "lab", "datacenters": [{"name": "lab1", "rows": [{"name": "row-1", "racks": [
            {"name": host["rack"], "tor": "tor-%s" % host["rack"]} for host in hosts]}]}]}],
        "networks": [{"name": name + "-net", "cidr": subnet, "kind": "private"}],
        "servers": [{
            "name": host["name"],
            "state": "spare" if host["name"] in spares else "active",
            "hardware": {"cores": 2, "memory_gb": 4, "disks": [{"type": "ssd", "size_gb": 40}],
                         "nics": [{"name": "eth0", "speed_gbps": 10}]},
            "location": {"region": "lab", "datacenter": "lab1", "row": "row-1", "rack": host["rack"]},
            "addresses": {"private": host["address"], "private_network": name + "-net"},
            "connection": connection_vars(host, ssh_key),
            # The lab's BMC (lab.py bmc) powers the host container off and on; its certificate is self-signed.
            "bmc": {"type": "redfish", "address": bmc_address, "system_id": host["name"],
                    "credentials": BMC_CREDENTIALS, "validate_certs": False},
        } for host in hosts],
        "clusters": [{
            "name": name,
            "region": "lab",
            "kubernetes_version": "1.36.3",
            "api": {"vip": str(network.network_address + 100), "port": 6443},
            "pod_cidr": "10.244.0.0/16",
            "node_prefix_length": 24,
            "service_cidr": "10.96.0.0/16",
            "wireguard": {"cidr": "10.245.0.0/24", "port": 51820},
            "pod_network": "routed",
            "node_groups": groups,
        }],
    }


def write_inventory(name, hosts, subnet, ssh_key):
    directory = inventory_dir(name)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "fleet.yml"), "w", encoding="utf-8") as handle:
        handle.write("# Written by lab/lab.py: the lab's hosts as a fleet file.\n")
        json.dump(lab_fleet(name, hosts, subnet, ssh_key), handle, indent=2)  # JSON is YAML
        handle.write("\n")
    with open(os.path.join(directory, "lab.baremetal.yml"), "w", encoding="utf-8") as handle:
        handle.write("plugin: baremetal.k8s.fleet\nfleet_file: fleet.yml\n")
    write_lab_secrets(directory)
    write_lab_vars(directory)
    # A plain inventory too, for tools that should not depend on the fleet plugin.
    static = {"all": {"hosts": {h["name"]: {"ansible_connection": "community.docker.docker",
                                            "ansible_host": h["name"], "lab_address": h["address"],
                                            "lab_ssh_key": ssh_key} for h in hosts}}}
    with open(os.path.join(lab_state_dir(name), "hosts.yml"), "w", encoding="utf-8") as handle:
        json.dump(static, handle, indent=2)
        handle.write("\n")


def write_lab_vars(directory):
    """The lab's kubeconfig convention: site.yml saves each cluster's admin kubeconfig beside the inventory, and
    the jobs whose modules talk to the API from this machine (recover.yml, reset_node.yml) use it."""
    path = os.path.join(directory, "group_vars", "all", "lab.yml")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("# Written by lab/lab.py. In AWX the kubeconfig is a credential instead (docs/recovery.md).\n")
        handle.write('bmk8s_kubeconfig: "{{ inventory_dir }}/../kubeconfigs/'
                     '{{ fleet_cluster | default(\'none\') }}.conf"\n')
        handle.write("bmk8s_kubeconfig_save: true\n")
        # Nodes turn NotReady after 20 s without a heartbeat instead of 50: recovery's detection starts
        # sooner (the e2e breakages wait less; the kubelets here report every 10 s).
        handle.write('k8s_control_plane_node_monitor_grace_period: "20s"\n')


def lab_secrets_path(directory):
    return os.path.join(directory, "group_vars", "all", "lab_secrets.yml")


def write_lab_secrets(directory):
    """Secrets the roles and playbooks require from the inventory (in production: Ansible Vault), made once
    per lab; a key added later (bmc_credentials) is appended to an older lab's file."""
    path = lab_secrets_path(directory)
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write("# Written by lab/lab.py. In production keep these in Ansible Vault.\n")
            # VRRP allows 8 characters. Quoted (JSON is YAML): hex like 12345678 or 1e100000 would read as a number.
            handle.write("api_lb_vrrp_auth_pass: %s\n" % json.dumps(secrets.token_hex(4)))
    if read_bmc_credentials(path) is None:
        with open(path, "a", encoding="utf-8") as handle:
            # One line of JSON (JSON is YAML), so read_bmc_credentials needs no YAML parser.
            handle.write("bmc_credentials: %s\n" % json.dumps(
                {BMC_CREDENTIALS: {"username": BMC_USER, "password": secrets.token_hex(16)}}))


def read_bmc_credentials(path):
    """(username, password) of the lab's BMC from a lab secrets file, or None when it has none."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        return None
    for line in lines:
        if line.startswith("bmc_credentials:"):
            entry = json.loads(line.split(":", 1)[1])[BMC_CREDENTIALS]
            return entry["username"], entry["password"]
    return None


def lab_bmc_credentials(name):
    """The BMC credentials of lab ``name`` (written by `lab.py up`; added to an older lab's secrets)."""
    directory = inventory_dir(name)
    if not os.path.isdir(directory):
        raise SystemExit("lab: no lab %s here (%s is missing); run `lab.py up --name %s` first"
                         % (name, directory, name))
    write_lab_secrets(directory)
    return read_bmc_credentials(lab_secrets_path(directory))


def lab_gateway(name):
    """The address of this machine on the lab's network (the hosts reach it there)."""
    return gateway_of(network_subnet(name + "-net"))


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # Ansible's output is what matters
        pass


@contextlib.contextmanager
def serve_directory(name, directory, port=18080):
    """Serve a directory over HTTP on the lab network, as an internal artifact mirror would; yields its URL."""
    gateway = lab_gateway(name)
    handler = functools.partial(QuietHandler, directory=directory)
    server = http.server.ThreadingHTTPServer((gateway, port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield "http://%s:%d" % (gateway, port)
    finally:
        server.shutdown()
        server.server_close()


def bmc_server(name, port=BMC_PORT, *, address=None, docker_runner=None, credentials=None, state_dir=None,
               log=None):
    """The lab's Redfish BMC (lab/bmc.py), bound but not serving: HTTPS on ``address`` (default: the lab
    gateway) and ``port`` (0: any free one); the certificate is self-signed, kept in ``state_dir``
    (default .lab/NAME/bmc). ``docker_runner(*args)`` (default: the docker CLI) and ``credentials``
    ((username, password), default the lab's secrets) are for tests."""
    address = address or lab_gateway(name)
    username, password = credentials or lab_bmc_credentials(name)
    runner = docker_runner or functools.partial(docker, check=False)
    certfile, keyfile = lab_bmc.self_signed_cert(state_dir or os.path.join(lab_state_dir(name), "bmc"), address)
    service = lab_bmc.Bmc(name, LABEL, runner, username=username, password=password, log=log)
    return lab_bmc.Server((address, port), service, tls=lab_bmc.tls_context(certfile, keyfile))


@contextlib.contextmanager
def serve_bmc(name, port=BMC_PORT, *, address=None, docker_runner=None, credentials=None, state_dir=None):
    """Run the lab's Redfish BMC in a thread (see bmc_server); yields its URL, ``https://ADDRESS:PORT``.

    The fleet's ``bmc.baseuri`` is that URL without ``https://``: what community.general's redfish modules take.
    """
    server = bmc_server(name, port, address=address, docker_runner=docker_runner, credentials=credentials,
                        state_dir=state_dir)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield server.url
    finally:
        server.shutdown()
        server.server_close()


def run_bmc(name, port=BMC_PORT):
    """`lab.py bmc`: the BMC in the foreground until interrupted."""
    ensure_docker()
    server = bmc_server(name, port, log=lambda message: log("bmc: " + message))
    log("BMC of lab %s at %s/redfish/v1 (user %s, password in %s)"
        % (name, server.url, BMC_USER, os.path.relpath(lab_secrets_path(inventory_dir(name)), os.getcwd())))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def status():
    if not docker_answers():
        print("no Docker daemon answers")
        return
    for name in lab_names():
        print(docker("ps", "-a", "--filter", "label=%s=%s" % (LABEL, name),
                     "--format", "{{.Names}}\t{{.Status}}").stdout.strip())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    up_parser = sub.add_parser("up", help="start (or reuse) the lab hosts")
    up_parser.add_argument("--name", default=DEFAULT_NAME)
    up_parser.add_argument("--hosts", type=int, default=5)
    up_parser.add_argument("--subnet", help="a /24 for the hosts (default: the lab's own, or the first free one in %s)"
                           % SUBNET_POOL)
    down_parser = sub.add_parser("down", help="remove a lab (and our dockerd when no lab is left)")
    down_parser.add_argument("--name", default=DEFAULT_NAME)
    down_parser.add_argument("--all", action="store_true")
    sub.add_parser("status")
    sub.add_parser("image")
    sub.add_parser("docker")
    bmc_parser = sub.add_parser("bmc", help="run the lab's Redfish BMC in the foreground (lab/bmc.py)")
    bmc_parser.add_argument("--name", default=DEFAULT_NAME)
    bmc_parser.add_argument("--port", type=int, default=BMC_PORT)
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("lab: run as root (it starts dockerd and privileged containers)")
    if args.command == "up":
        if args.hosts < 1:
            raise SystemExit("lab: --hosts must be at least 1")
        up(args.name, args.hosts, args.subnet)
    elif args.command == "down":
        if args.all and docker_answers():
            for name in lab_names():
                down(name)
            stop_dockerd()
        else:
            down(args.name)
    elif args.command == "status":
        status()
    elif args.command == "image":
        ensure_docker()
        print(ensure_image())
    elif args.command == "docker":
        ensure_docker()
    elif args.command == "bmc":
        run_bmc(args.name, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
