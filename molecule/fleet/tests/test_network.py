# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""WireGuard mesh and API load balancer across the 3 hosts of the scenario.

These tests look at the cluster as a whole, so each runs once (for the first
host) and reaches every host itself.
"""

import ipaddress
import time

import pytest
import testinfra
from conftest import group_hosts

FIRST = "bmk8s-mol-1"
VIP = "172.31.61.100"
PORT = 8443


@pytest.fixture(autouse=True)
def once(host):
    if host.backend.get_hostname() != FIRST:
        pytest.skip("a cluster-wide test: runs once, for %s" % FIRST)


@pytest.fixture(scope="module")
def hosts(fleet_inventory):
    names = fleet_inventory["_meta"]["hostvars"].keys()
    return {name: testinfra.get_host("docker://" + name) for name in sorted(names)}


def hostvar(inventory, name, key):
    return inventory["_meta"]["hostvars"][name][key]


def wait_for(check, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("not within %d s: %s" % (timeout, what))
        time.sleep(0.5)


# --- WireGuard ---------------------------------------------------------------


def test_private_keys_stay_on_the_hosts(hosts):
    for name, h in hosts.items():
        key = h.file("/etc/wireguard/wg0.key")
        assert key.mode == 0o600 and key.user == "root", name
        assert not h.file("/etc/wireguard/wg0.conf").contains("PrivateKey"), name


def test_mtu_is_underlay_minus_80(hosts):
    for name, h in hosts.items():
        underlay = int(h.file("/sys/class/net/eth0/mtu").content_string)
        assert int(h.file("/sys/class/net/wg0/mtu").content_string) == underlay - 80, name


def test_handshakes_between_all_hosts(hosts, fleet_inventory):
    for name, h in hosts.items():
        for peer in hosts:
            if peer != name:
                address = hostvar(fleet_inventory, peer, "wireguard_address")
                h.check_output("ping -c 1 -W 2 %s" % address)
    for name, h in hosts.items():
        handshakes = [int(line.split()[1]) for line in h.check_output("wg show wg0 latest-handshakes").splitlines()]
        assert len(handshakes) == len(hosts) - 1 and all(handshakes), (name, handshakes)


def test_pod_prefixes_routed_through_wg0_by_the_unit(hosts, fleet_inventory):
    for name, h in hosts.items():
        assert h.service("wg-quick@wg0").is_enabled, name
        routes = h.check_output("ip route show dev wg0")
        for peer in hosts:
            if peer != name:
                assert hostvar(fleet_inventory, peer, "pod_cidr") in routes, (name, peer, routes)


def make_pod(h, pod_cidr):
    """A network namespace holding the second address of pod_cidr, like a pod the CNI plugin set up."""
    net = ipaddress.ip_network(pod_cidr)
    gateway, pod = net.network_address + 1, net.network_address + 2
    h.run("ip netns del testpod; ip link del testpod-host")
    for command in (
        "ip netns add testpod",
        "ip link add testpod-host type veth peer name eth0 netns testpod",
        "ip addr add %s/%d dev testpod-host" % (gateway, net.prefixlen),
        "ip link set testpod-host up",
        "ip -n testpod link set lo up",
        "ip -n testpod addr add %s/%d dev eth0" % (pod, net.prefixlen),
        "ip -n testpod link set eth0 up",
        "ip -n testpod route add default via %s" % gateway,
    ):
        h.check_output(command)
    return str(pod)


def test_pod_to_pod_across_the_tunnel(hosts, fleet_inventory):
    # Two Kubernetes nodes (host_prep turned forwarding on there).
    a, b = group_hosts(fleet_inventory, "role_control_plane")[:2]
    pod_a = make_pod(hosts[a], hostvar(fleet_inventory, a, "pod_cidr"))
    pod_b = make_pod(hosts[b], hostvar(fleet_inventory, b, "pod_cidr"))
    try:
        assert "dev wg0" in hosts[a].check_output("ip route get %s" % pod_b)
        before = hosts[b].check_output("wg show wg0 transfer")
        hosts[a].check_output("ip netns exec testpod ping -c 3 -W 2 %s" % pod_b)
        assert hosts[b].check_output("wg show wg0 transfer") != before  # the packets came through wg0
    finally:
        for h in (hosts[a], hosts[b]):
            h.run("ip netns del testpod; ip link del testpod-host")
    assert pod_a


# --- API load balancer -------------------------------------------------------

FETCH = (
    "python3 -c \"import urllib.request,sys; "
    "print(urllib.request.urlopen('http://%s:%d/', timeout=3).read().decode().strip())\"" % (VIP, PORT)
)
STAT = (
    "python3 -c \"import socket; s=socket.socket(socket.AF_UNIX); s.connect('/run/haproxy/admin.sock'); "
    "s.sendall(b'show stat\\n'); print(s.makefile().read())\""
)


def backend_status(h):
    """{server: status} of the kube-apiserver backend from HAProxy's admin socket."""
    rows = [line.split(",") for line in h.check_output(STAT).splitlines() if line.startswith("kube-apiserver,")]
    return {row[1]: row[17] for row in rows if row[1] not in ("FRONTEND", "BACKEND")}


def vip_holder(hosts):
    return [name for name, h in hosts.items() if VIP + "/" in h.check_output("ip -4 addr show dev eth0")]


def test_vip_on_the_first_load_balancer(hosts, fleet_inventory):
    lbs = group_hosts(fleet_inventory, "cluster_mol_load_balancer")
    assert wait_for(lambda: vip_holder(hosts) == lbs[:1], 10, "VIP on %s only" % lbs[0])


def test_stopped_backend_marked_down_and_traffic_moves(hosts, fleet_inventory):
    lbs = group_hosts(fleet_inventory, "cluster_mol_load_balancer")
    first, second = group_hosts(fleet_inventory, "cluster_mol_control_plane")[:2]
    client = hosts[second]
    served = {client.check_output(FETCH) for _attempt in range(6)}
    assert served == {first, second}, served
    hosts[second].check_output("systemctl stop test-backend")
    try:
        started = time.monotonic()
        wait_for(lambda: backend_status(hosts[lbs[0]]).get(second) == "DOWN", 10, "%s DOWN" % second)
        print("backend DOWN after %.1f s" % (time.monotonic() - started))
        assert {client.check_output(FETCH) for _attempt in range(6)} == {first}
    finally:
        hosts[second].check_output("systemctl start test-backend || systemd-run --unit=test-backend "
                                   "--working-directory=/srv/backend python3 -m http.server 6443")
    wait_for(lambda: backend_status(hosts[lbs[0]]).get(second) == "UP", 10, "%s UP again" % second)


def test_stopping_haproxy_on_the_master_moves_the_vip(hosts, fleet_inventory):
    master, backup = group_hosts(fleet_inventory, "cluster_mol_load_balancer")[:2]
    client = hosts[group_hosts(fleet_inventory, "cluster_mol_control_plane")[-1]]
    assert vip_holder(hosts) == [master]
    hosts[master].check_output("systemctl stop haproxy")
    try:
        started = time.monotonic()
        wait_for(lambda: vip_holder(hosts) == [backup], 15, "VIP moved to %s" % backup)
        print("VIP moved after %.1f s" % (time.monotonic() - started))
        assert client.check_output(FETCH)  # served through the backup's HAProxy
    finally:
        hosts[master].check_output("systemctl start haproxy")
    wait_for(lambda: vip_holder(hosts) == [master], 15, "VIP back on %s" % master)
