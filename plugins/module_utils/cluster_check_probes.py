# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The checker's host probes (playbooks/check.yml): the read-only shell each host runs, and its output read back.

Pure functions, no I/O:

- ``probe_commands`` lists the probes one host runs (``{name, cmd}``), chosen by its roles, and
  ``probe_plan`` those of every member (cluster_check's ``stage=probes``);
- ``pod_targets`` chooses, from the API's CoreDNS pods, the ones each node reaches over the pod network;
- ``results_by_name`` turns a host's registered probe results into ``name -> result``;
- one ``parse_*`` per probe reads its stdout into plain data for cluster_check's verdicts.

Every probe prints ``now=EPOCH`` first: a host that printed nothing never ran it (the connection failed),
and the WireGuard handshakes are judged against the host's own clock. No probe prints a key or a token.
"""

from __future__ import annotations

import ipaddress
import re

from .errors import BaremetalError
from .recovery_probes import probe_script as recovery_probe_script
from .recovery_probes import probes_from_output

NODE_ROLES = ("control_plane", "etcd", "worker")
NAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,251}[A-Za-z0-9])?$")
INTERFACE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
COREDNS_HEALTH_PORT = 8080  # CoreDNS's health plugin: GET /health answers OK while the process runs

# kubeadm's certificates on a control plane (the CAs, the leaves and the kubeconfigs' client certificates)
# and the kubelet's on every node. A kubelet with serverTLSBootstrap has kubelet-server-current.pem;
# otherwise its serving certificate is the self-signed kubelet.crt.
CERT_FILES = (
    "/etc/kubernetes/pki/*.crt",
    "/etc/kubernetes/pki/etcd/*.crt",
    "/var/lib/kubelet/pki/kubelet-client-current.pem",
    "/var/lib/kubelet/pki/kubelet-server-current.pem",
)
KUBELET_SELF_SIGNED = "/var/lib/kubelet/pki/kubelet.crt"
KUBECONFIG_FILES = (
    "/etc/kubernetes/admin.conf",
    "/etc/kubernetes/super-admin.conf",
    "/etc/kubernetes/controller-manager.conf",
    "/etc/kubernetes/scheduler.conf",
    "/etc/kubernetes/kubelet.conf",
)

NOW_LINE = 'echo "now=$(date +%s)"\n'

# The end date of each certificate as epoch seconds (GNU date reads openssl's notAfter), never the file.
# A kubeconfig's embedded client certificate is decoded into the pipe only.
CERTS_SCRIPT = NOW_LINE + """\
end_of() {{ openssl x509 -noout -enddate 2>/dev/null | sed -n 's/^notAfter=//p'; }}
show() {{
  if [ -n "$2" ]; then printf '%s\\t%s\\n' "$1" "$(date -d "$2" +%s)"; else printf '%s\\tunreadable\\n' "$1"; fi
}}
for f in {files}; do
  [ -f "$f" ] && show "$f" "$(end_of < "$f")"
done
if [ ! -f /var/lib/kubelet/pki/kubelet-server-current.pem ] && [ -f {self_signed} ]; then
  show {self_signed} "$(end_of < {self_signed})"
fi
for f in {kubeconfigs}; do
  [ -f "$f" ] || continue
  data=$(sed -n 's/^ *client-certificate-data: *//p' "$f" | head -n 1)
  [ -n "$data" ] && show "$f" "$(echo "$data" | base64 -d 2>/dev/null | end_of)"
done
true
"""

# The API server's /readyz at the control plane's own address (in its certificate, unlike 127.0.0.1),
# anonymously as HAProxy's health check asks it: no credential leaves the controller.
READYZ_SCRIPT = NOW_LINE + """\
curl -sS -m {timeout} --cacert /etc/kubernetes/pki/ca.crt -w '\\nhttp_code=%{{http_code}}\\n' \
'https://{address}:{port}/readyz?verbose' 2>&1
true
"""

# One UDP DNS query (type A) for kubernetes.default.svc.<cluster domain> to the cluster DNS Service,
# both as the kubelet gives them to every pod. Standard library only (the hosts have no dig).
DNS_SCRIPT = NOW_LINE + """\
python3 - <<'EOF'
import random, re, socket, struct
try:
    cfg = open("/var/lib/kubelet/config.yaml").read()
    server = re.search(r"clusterDNS:\\s*\\n\\s*-\\s*['\\"]?([0-9a-fA-F.:]+)", cfg).group(1)
    domain = re.search(r"clusterDomain:\\s*['\\"]?([A-Za-z0-9.-]+)", cfg).group(1).rstrip(".")
except (OSError, AttributeError) as exc:
    print("error=cannot read clusterDNS and clusterDomain from /var/lib/kubelet/config.yaml: %s" % exc)
    raise SystemExit(0)
name = "kubernetes.default.svc." + domain
query = struct.pack(">HHHHHH", random.randrange(65536), 0x0100, 1, 0, 0, 0)
query += b"".join(bytes([len(part)]) + part.encode() for part in name.split(".")) + b"\\0" + struct.pack(">HH", 1, 1)
print("server=%s\\nname=%s" % (server, name))
try:
    sock = socket.socket(socket.AF_INET6 if ":" in server else socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout({timeout})
    sock.sendto(query, (server, 53))
    answer = sock.recv(4096)
except OSError as exc:
    print("error=%s" % (exc or type(exc).__name__))
    raise SystemExit(0)

def skip(offset):  # past a (possibly compressed) name
    while answer[offset]:
        if answer[offset] >= 0xC0:
            return offset + 2
        offset += answer[offset] + 1
    return offset + 1

try:
    flags, _, count = struct.unpack(">HHH", answer[2:8])
    offset, addresses = skip(12) + 4, []
    for _ in range(count):
        offset = skip(offset)
        rtype, _, _, length = struct.unpack(">HHIH", answer[offset:offset + 10])
        offset += 10
        if rtype == 1 and length == 4:
            addresses.append(socket.inet_ntoa(answer[offset:offset + 4]))
        offset += length
except (IndexError, struct.error):
    print("error=a malformed answer of %d bytes" % len(answer))
    raise SystemExit(0)
print("rcode=%d\\nanswers=%s" % (flags & 0xF, ",".join(addresses)))
EOF
true
"""

# HAProxy's and keepalived's units, the host's addresses (the VIP) and HAProxy's `show stat` (CSV) through
# the admin socket the api_lb role configures.
LOAD_BALANCER_SCRIPT = NOW_LINE + """\
echo "haproxy=$(systemctl is-active haproxy 2>/dev/null)"
echo "keepalived=$(systemctl is-active keepalived 2>/dev/null)"
echo "--- addresses"
ip -o addr show 2>&1
echo "--- stat"
python3 -c '
import socket
sock = socket.socket(socket.AF_UNIX)
sock.settimeout({timeout})
sock.connect("{socket}")
sock.sendall(b"show stat\\n")
print(sock.makefile().read())
' 2>&1
true
"""

# Host to pod over the pod network: an HTTP GET of CoreDNS's health endpoint on a pod of another node. Any
# HTTP answer means the packets crossed the mesh both ways.
POD_NETWORK_LINE = ("printf 'target\\t{pod}\\t{node}\\t{ip}\\t'; curl -s -m {timeout} -o /dev/null "
                    "-w '%{{http_code}}\\t%{{exitcode}}\\t%{{errormsg}}\\n' 'http://{url_ip}:{port}/health'\n")

HAPROXY_SOCKET = "/run/haproxy/admin.sock"


class CheckProbeError(BaremetalError):
    """Input of the checker's probes that cannot be used (the message names the field)."""


def _ip(value, where):
    try:
        return str(ipaddress.ip_address(str(value)))
    except ValueError:
        raise CheckProbeError("%r is not an IP address" % (value,), "fix the fleet, the allocation ledger or the "
                              "API data it came from", where="cluster_check", path=where) from None


def _name(value, where):
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise CheckProbeError("%r is not a host or pod name" % (value,), "use Kubernetes names",
                              where="cluster_check", path=where)
    return value


def _quoted(paths):
    # Globs stay unquoted so the shell expands them; none of these paths has a space.
    return " ".join(paths)


def node_probe(peer_addresses, interface="wg0"):
    """Units, WireGuard peers and handshakes (recover.yml's probe), after one ping to every peer's tunnel
    address: WireGuard only shakes hands when traffic flows, so an idle mesh would look stale."""
    if not INTERFACE_RE.match(str(interface)):
        raise CheckProbeError("%r is not an interface name" % (interface,), "set check_wireguard_interface to "
                              "the mesh's interface (wg0)", where="cluster_check", path="wireguard_interface")
    pings = "".join('(ping -c 1 -W 2 -q %s >/dev/null 2>&1; echo "ping=%s:$?") &\n' % (address, address)
                    for address in peer_addresses)
    return NOW_LINE + pings + ("wait\n" if pings else "") + recovery_probe_script(interface)


def probe_commands(host, member, peer_addresses=(), pod_targets=(), *, interface="wg0", api_port=6443, timeout=3):
    """The probes HOST runs, as ``[{name, cmd}]``: every host ``node`` (units, the WireGuard mesh, after one
    ping to each of PEER_ADDRESSES); a Kubernetes node ``certificates`` and ``pod_network`` (a GET to each
    of POD_TARGETS); a control plane ``readyz`` and ``dns``; a load balancer ``load_balancer``. MEMBER:
    ``{roles, address}`` (its private address)."""
    roles = list(member.get("roles") or ())
    addresses = [_ip(a, "%s: peer tunnel address" % host) for a in peer_addresses]
    timeout = int(timeout)
    probes = [{"name": "node", "cmd": node_probe(addresses, interface)}]
    if set(roles) & set(NODE_ROLES):
        probes.append({"name": "certificates", "cmd": CERTS_SCRIPT.format(
            files=_quoted(CERT_FILES), self_signed=KUBELET_SELF_SIGNED, kubeconfigs=_quoted(KUBECONFIG_FILES))})
        lines = []
        for index, target in enumerate(pod_targets or ()):
            where = "pod_targets.%s[%d]" % (host, index)
            ip = _ip(target.get("ip"), where + ".ip")
            lines.append(POD_NETWORK_LINE.format(
                pod=_name(target.get("pod"), where + ".pod"), node=_name(target.get("node"), where + ".node"),
                ip=ip, url_ip="[%s]" % ip if ":" in ip else ip, port=COREDNS_HEALTH_PORT, timeout=timeout))
        probes.append({"name": "pod_network", "cmd": NOW_LINE + ("".join(lines) or "echo 'no targets'\n") + "true\n"})
    if "control_plane" in roles:
        address = _ip(member.get("address"), "%s: private address" % host)
        probes.append({"name": "readyz", "cmd": READYZ_SCRIPT.format(
            address="[%s]" % address if ":" in address else address, port=int(api_port), timeout=timeout + 2)})
        probes.append({"name": "dns", "cmd": DNS_SCRIPT.format(timeout=timeout)})
    if "load_balancer" in roles:
        script = LOAD_BALANCER_SCRIPT.format(timeout=timeout, socket=HAPROXY_SOCKET)
        probes.append({"name": "load_balancer", "cmd": script})
    return probes


def probe_plan(members, pod_targets=None, **options):
    """``host -> probes`` for every one of MEMBERS (``name -> {roles, address, wireguard_address}``): each pings
    the tunnel address of every other member. OPTIONS: probe_commands' interface, api_port and timeout."""
    tunnels = {name: m.get("wireguard_address") for name, m in members.items() if m.get("wireguard_address")}
    return {host: probe_commands(host, member, [a for peer, a in sorted(tunnels.items()) if peer != host],
                                 (pod_targets or {}).get(host) or (), **options)
            for host, member in members.items()}


def pod_targets(nodes, coredns_pods):
    """For each of NODES, the running CoreDNS pods (``{name, node, ip}``) on other nodes: what its host GETs."""
    running = [p for p in coredns_pods or [] if p.get("ip") and p.get("node") and p.get("phase") == "Running"]
    return {node: [{"pod": p["name"], "node": p["node"], "ip": p["ip"]} for p in running if p["node"] != node]
            for node in nodes}


# --------------------------------------------------------------------------- reading the results back


def results_by_name(registered):
    """``name -> result`` of one host's probes from what check.yml registered: a probe loop's result (its
    ``results``, each with ``item.name``), a list of those, or already a mapping of name to result."""
    if isinstance(registered, (list, tuple)):
        out = {}
        for entry in registered:
            out.update(results_by_name(entry))
        return out
    if not isinstance(registered, dict):
        return {}
    if isinstance(registered.get("results"), list):
        out = {}
        for result in registered["results"]:
            item = result.get("item") if isinstance(result, dict) else None
            if isinstance(item, dict) and item.get("name"):
                out[item["name"]] = result
        return out
    return {name: result for name, result in registered.items() if isinstance(result, dict)}


def ran(result):
    """Whether the probe ran on the host: every probe prints its ``now=`` line first."""
    return isinstance(result, dict) and not result.get("unreachable") and \
        str(result.get("stdout") or "").startswith("now=")


def host_now(result):
    """The host's clock when it ran the probe (epoch seconds), or None."""
    match = re.match(r"now=(\d+)", str((result or {}).get("stdout") or ""))
    return float(match.group(1)) if match else None


def _lines(result):
    return str((result or {}).get("stdout") or "").splitlines()


def why_not_ran(result):
    """A sentence for a probe that did not run (unreachable, a module error)."""
    if not isinstance(result, dict) or not result:
        return "not probed in this run"
    text = result.get("msg") or result.get("module_stderr") or result.get("stderr") or "no output"
    return " ".join(str(text).split())[:300]


def parse_node(result):
    """The node probe: ``units`` (containerd, kubelet), ``pings`` (address -> ok), ``handshakes`` (peer name
    -> epoch, 0 never) and ``peer_names`` (the names the WireGuard configuration gives its peers)."""
    probes = probes_from_output(dict(result, rc=0))
    pings = {}
    for line in _lines(result):
        if line.startswith("ping=") and ":" in line:
            address, _sep, rc = line[5:].rpartition(":")
            pings[address] = rc.strip() == "0"
    return {"containerd": probes.get("containerd_active"), "kubelet": probes.get("kubelet_active"),
            "pings": pings, "handshakes": probes.get("wireguard_handshakes")}


def parse_certificates(result):
    """``[(path, not_after epoch or None when unreadable)]``."""
    out = []
    for line in _lines(result):
        path, sep, end = line.partition("\t")
        if sep and path.startswith("/"):
            end = end.strip()
            out.append((path, float(end) if end.lstrip("-").isdigit() else None))
    return out


def parse_readyz(result):
    """``{code, failed, error}``: the HTTP code (0: no answer), the checks marked ``[-]``, curl's error."""
    lines = _lines(result)[1:]
    code = 0
    for line in lines:
        if line.startswith("http_code="):
            code = int(line.split("=", 1)[1] or 0) if line.split("=", 1)[1].isdigit() else 0
    failed = [line[3:].strip() for line in lines if line.startswith("[-]")]
    errors = [line for line in lines if line.startswith("curl:")]
    return {"code": code, "failed": failed, "error": errors[0] if errors else ""}


def _keyed(lines):
    out = {}
    for line in lines:
        key, sep, value = line.partition("=")
        if sep and key and " " not in key:
            out.setdefault(key, value.strip())
    return out


def parse_dns(result):
    """``{server, name, rcode, answers, error}`` of the DNS probe."""
    found = _keyed(_lines(result)[1:])
    rcode = found.get("rcode")
    return {"server": found.get("server", ""), "name": found.get("name", ""),
            "rcode": int(rcode) if rcode and rcode.isdigit() else None,
            "answers": [a for a in found.get("answers", "").split(",") if a], "error": found.get("error", "")}


def _sections(lines):
    section, out = "units", {"units": []}
    for line in lines:
        if line.startswith("--- "):
            section = line[4:].strip()
            out.setdefault(section, [])
        else:
            out.setdefault(section, []).append(line)
    return out


def parse_load_balancer(result):
    """``{haproxy, keepalived, addresses, servers, stat_error}``: the units' states, the host's IP addresses
    and HAProxy's servers (``{proxy, server, status}``; null when the stats could not be read)."""
    sections = _sections(_lines(result)[1:])
    units = _keyed(sections["units"])
    addresses = []
    for line in sections.get("addresses", []):
        match = re.search(r"\binet6?\s+([0-9a-fA-F.:]+)/", line)
        if match:
            addresses.append(match.group(1))
    stat = [line for line in sections.get("stat", []) if line.strip()]
    servers, error = None, ""
    if stat and stat[0].startswith("# "):
        header = stat[0][2:].split(",")
        servers = []
        for line in stat[1:]:
            row = dict(zip(header, line.split(","), strict=False))
            if row.get("svname") not in (None, "FRONTEND", "BACKEND"):
                servers.append({"proxy": row.get("pxname", ""), "server": row["svname"],
                                "status": row.get("status", "")})
    else:
        error = " ".join(" ".join(stat[-3:]).split())[:300] or "no answer from %s" % HAPROXY_SOCKET
    return {"haproxy": units.get("haproxy") or "unknown", "keepalived": units.get("keepalived") or "unknown",
            "addresses": addresses, "servers": servers, "stat_error": error}


def parse_pod_network(result):
    """``[{pod, node, ip, code, exit, error}]`` (code 0: no HTTP answer); empty when there was no target."""
    out = []
    for line in _lines(result):
        parts = line.split("\t")
        if parts[0] == "target" and len(parts) >= 6:
            code = int(parts[4]) if parts[4].isdigit() else 0
            out.append({"pod": parts[1], "node": parts[2], "ip": parts[3], "code": code,
                        "exit": int(parts[5]) if parts[5].isdigit() else None,
                        "error": "\t".join(parts[6:]).strip()})
    return out
