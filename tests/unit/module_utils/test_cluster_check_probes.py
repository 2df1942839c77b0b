# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""L0: the checker's host probes (module_utils/cluster_check_probes.py): which probes a host runs, that each
script is valid shell, the DNS query and the pod-network GET run for real against local stand-ins, and the
outputs read back."""

from __future__ import annotations

import http.server
import socket
import struct
import subprocess
import threading

import pytest
from ansible_collections.baremetal.k8s.plugins.module_utils import cluster_check_probes as cp

MEMBERS = {
    "cp1": {"roles": ["control_plane", "etcd"], "address": "10.0.0.11", "wireguard_address": "10.245.0.1"},
    "w1": {"roles": ["worker"], "address": "10.0.0.12", "wireguard_address": "10.245.0.2"},
    "lb1": {"roles": ["load_balancer"], "address": "10.0.0.13", "wireguard_address": "10.245.0.3"},
}
TARGETS = {"w1": [{"pod": "coredns-a", "node": "cp1", "ip": "10.244.0.3"}]}


def scripts(host, targets=None, **options):
    return {p["name"]: p["cmd"] for p in cp.probe_plan(MEMBERS, targets, **options)[host]}


def test_each_host_runs_the_probes_of_its_roles():
    plan = cp.probe_plan(MEMBERS, TARGETS)
    assert {host: [p["name"] for p in probes] for host, probes in plan.items()} == {
        "cp1": ["node", "certificates", "pod_network", "readyz", "dns"],
        "w1": ["node", "certificates", "pod_network"],
        "lb1": ["node", "load_balancer"]}


def test_the_node_probe_pings_every_other_peer_before_reading_the_handshakes():
    script = scripts("cp1")["node"]
    assert "ping -c 1 -W 2 -q 10.245.0.2" in script and "ping -c 1 -W 2 -q 10.245.0.3" in script
    assert "10.245.0.1 " not in script  # not itself
    assert script.index("wait") < script.index("wg show wg0 latest-handshakes")
    assert script.startswith('echo "now=$(date +%s)"\n')
    assert "wg show wg1 latest-handshakes" in scripts("cp1", interface="wg1")["node"]


def test_the_readyz_probe_asks_the_host_address_with_the_cluster_ca_and_no_credential():
    script = scripts("cp1", api_port=6444)["readyz"]
    assert "--cacert /etc/kubernetes/pki/ca.crt" in script and "https://10.0.0.11:6444/readyz?verbose" in script
    assert "--cert" not in script and "--key" not in script and "token" not in script.lower()


def test_the_pod_network_probe_gets_coredns_health_on_each_target():
    assert "'http://10.244.0.3:8080/health'" in scripts("w1", TARGETS)["pod_network"]
    assert "no targets" in scripts("w1")["pod_network"]


@pytest.mark.parametrize("host", ["cp1", "w1", "lb1"])
def test_every_script_is_valid_posix_shell(host):
    for name, script in scripts(host, TARGETS).items():
        proc = subprocess.run(["sh", "-n"], input=script, text=True, capture_output=True, check=False)
        assert proc.returncode == 0, (name, proc.stderr)


def test_no_script_reads_a_private_key():
    for host in MEMBERS:
        for name, script in scripts(host, TARGETS).items():
            assert ".key" not in script.replace("wg0.key: it is never", ""), name


def test_values_that_would_reach_the_shell_are_checked():
    bad = dict(MEMBERS, lb1=dict(MEMBERS["lb1"], wireguard_address="1.2.3.4; reboot"))
    with pytest.raises(cp.CheckProbeError, match=r"cp1: peer tunnel address: '1\.2\.3\.4; reboot' is not"):
        cp.probe_plan(bad)
    with pytest.raises(cp.CheckProbeError, match=r"pod_targets.w1\[0\].pod"):
        cp.probe_plan(MEMBERS, {"w1": [{"pod": "$(reboot)", "node": "cp1", "ip": "10.244.0.3"}]})
    with pytest.raises(cp.CheckProbeError, match="wireguard_interface"):
        cp.probe_plan(MEMBERS, interface="wg0; reboot")


def test_pod_targets_are_the_running_coredns_pods_of_other_nodes():
    pods = [{"name": "a", "node": "cp1", "ip": "10.244.0.3", "phase": "Running"},
            {"name": "b", "node": "w1", "ip": "10.244.1.2", "phase": "Running"},
            {"name": "c", "node": "w2", "ip": None, "phase": "Pending"}]
    assert cp.pod_targets(["cp1", "w1", "w2"], pods) == {
        "cp1": [{"pod": "b", "node": "w1", "ip": "10.244.1.2"}],
        "w1": [{"pod": "a", "node": "cp1", "ip": "10.244.0.3"}],
        "w2": [{"pod": "a", "node": "cp1", "ip": "10.244.0.3"}, {"pod": "b", "node": "w1", "ip": "10.244.1.2"}]}


def test_results_by_name_reads_what_check_yml_registers():
    first = {"results": [{"item": {"name": "node", "cmd": "..."}, "stdout": "now=1"}]}
    rest = {"results": [{"item": {"name": "dns"}, "stdout": "now=1"}], "skipped": False}
    assert set(cp.results_by_name([first, rest])) == {"node", "dns"}
    assert cp.results_by_name({"node": {"rc": 0, "stdout": "now=1"}}) == {"node": {"rc": 0, "stdout": "now=1"}}
    assert cp.results_by_name(None) == {}
    assert cp.ran({"stdout": "now=1"}) and not cp.ran({"rc": 1, "stdout": ""}) and not cp.ran({"unreachable": True})


# --------------------------------------------------------------------------- the DNS query, for real


def dns_server(answer_ip, rcode=0):
    """A one-shot UDP DNS server on loopback answering type A for any name; its port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))

    def serve():
        query, peer = sock.recvfrom(512)
        question = query[12:]
        answer = query[:2] + struct.pack(">HHHHH", 0x8180 | rcode, 1, 0 if rcode else 1, 0, 0) + question
        if not rcode:
            answer += b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 30, 4) + socket.inet_aton(answer_ip)
        sock.sendto(answer, peer)
        sock.close()

    threading.Thread(target=serve, daemon=True).start()
    return sock.getsockname()[1]


def run_dns(tmp_path, port, config="clusterDNS:\n- 127.0.0.1\nclusterDomain: cluster.local\n"):
    (tmp_path / "config.yaml").write_text(config)
    script = cp.DNS_SCRIPT.format(timeout=2).replace("/var/lib/kubelet/config.yaml", str(tmp_path / "config.yaml"))
    script = script.replace("(server, 53)", "(server, %d)" % port)
    proc = subprocess.run(["sh"], input=script, text=True, capture_output=True, check=True, timeout=30)
    return cp.parse_dns({"stdout": proc.stdout})


def test_the_dns_probe_asks_for_kubernetes_default_and_reads_the_address(tmp_path):
    found = run_dns(tmp_path, dns_server("10.96.0.1"))
    assert found == {"server": "127.0.0.1", "name": "kubernetes.default.svc.cluster.local", "rcode": 0,
                     "answers": ["10.96.0.1"], "error": ""}


def test_the_dns_probe_reports_nxdomain_and_silence(tmp_path):
    assert run_dns(tmp_path, dns_server("0.0.0.0", rcode=3))["rcode"] == 3
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        assert run_dns(tmp_path, silent.getsockname()[1])["error"] == "timed out"
    finally:
        silent.close()


def test_the_dns_probe_without_a_kubelet_config(tmp_path):
    found = run_dns(tmp_path, 9, config="nothing here\n")
    assert found["error"].startswith("cannot read clusterDNS and clusterDomain")


# --------------------------------------------------------------------------- the pod-network GET, for real


def test_the_pod_network_probe_against_a_local_http_server():
    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        targets = {"w1": [{"pod": "up", "node": "cp1", "ip": "127.0.0.1"},
                          {"pod": "down", "node": "cp2", "ip": "127.0.0.1"}]}
        script = scripts("w1", targets, timeout=2)["pod_network"]
        lines = script.splitlines()
        # The first target at the server's port, the second at a closed one.
        lines[1] = lines[1].replace(":8080/", ":%d/" % server.server_port)
        lines[2] = lines[2].replace(":8080/", ":9/")
        proc = subprocess.run(["sh"], input="\n".join(lines), text=True, capture_output=True, check=True, timeout=30)
    finally:
        server.shutdown()
    found = cp.parse_pod_network({"stdout": proc.stdout})
    assert [(t["pod"], t["code"]) for t in found] == [("up", 200), ("down", 0)]
    assert found[1]["exit"] == 7 and found[1]["error"]


# --------------------------------------------------------------------------- reading outputs back


HAPROXY_STAT = """\
# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight
kube-apiserver,FRONTEND,,,7,12,9978,80,229271,3465469,0,0,0,,,,,OPEN,
kube-apiserver,dev-node-1,0,0,3,5,,33,94972,2709050,,0,,0,0,0,0,UP,1
kube-apiserver,dev-node-2,0,0,2,6,,25,74757,392746,,0,,0,0,0,0,DOWN 1/2,1
kube-apiserver,BACKEND,0,0,7,12,998,80,229271,3465469,0,0,,0,1,0,0,UP,3
"""


def test_the_load_balancer_output_as_haproxy_and_ip_print_it():
    stdout = "\n".join(["now=1", "haproxy=active", "keepalived=active", "--- addresses",
                        "245: eth0    inet 172.30.0.14/24 brd 172.30.0.255 scope global eth0\\       valid_lft forever",
                        "245: eth0    inet 172.30.0.100/32 scope global eth0\\       valid_lft forever",
                        "3: wg0    inet6 fd00::4/128 scope global \\       valid_lft forever",
                        "--- stat", HAPROXY_STAT])
    found = cp.parse_load_balancer({"stdout": stdout})
    assert found["addresses"] == ["172.30.0.14", "172.30.0.100", "fd00::4"]
    assert found["servers"] == [{"proxy": "kube-apiserver", "server": "dev-node-1", "status": "UP"},
                                {"proxy": "kube-apiserver", "server": "dev-node-2", "status": "DOWN 1/2"}]
    assert (found["haproxy"], found["keepalived"], found["stat_error"]) == ("active", "active", "")


def test_the_node_output_reads_units_pings_and_named_handshakes():
    stdout = "\n".join(["now=100", "ping=10.245.0.2:0", "ping=10.245.0.3:1", "containerd=active", "kubelet=failed",
                        "--- wireguard peers", "# w1", "PublicKey = KW=", "--- wireguard handshakes", "KW=\t95"])
    found = cp.parse_node({"stdout": stdout, "rc": 0})
    assert found == {"containerd": "active", "kubelet": "failed", "pings": {"10.245.0.2": True, "10.245.0.3": False},
                     "handshakes": {"w1": 95}}
    assert cp.host_now({"stdout": stdout}) == 100.0


def test_the_certificate_output():
    stdout = "now=1\n/etc/kubernetes/pki/ca.crt\t2111510408\n/var/lib/kubelet/pki/kubelet.crt\tunreadable\n"
    assert cp.parse_certificates({"stdout": stdout}) == [("/etc/kubernetes/pki/ca.crt", 2111510408.0),
                                                         ("/var/lib/kubelet/pki/kubelet.crt", None)]
