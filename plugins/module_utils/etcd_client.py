# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A minimal etcd v3 client over etcd's JSON gRPC gateway, standard library only.

etcd serves its v3 API as JSON on every client URL (the gRPC gateway is on by
default): ``POST /v3/cluster/member/list``, ``/v3/cluster/member/remove``,
``/v3/maintenance/status``, ``/v3/maintenance/snapshot`` (a stream, see
``EtcdClient.snapshot``); plus ``GET /health``. uint64 fields (member ids,
raft index, db size) come back as decimal strings, and ids are sent back the
same way so no precision is lost.

Requests go to the configured endpoints in order; the first that answers wins
(a dead local member must not hide the rest of the cluster). Health and status
are asked of each member at its own advertised client URL, in parallel, so a
frozen member costs one timeout, not one per member. Every failure is an
EtcdError naming the endpoint and what to check; no traceback reaches the user.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import json
import os
import socket
import ssl
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .errors import BaremetalError
from .etcd_quorum import Member, assess

# Where kubeadm keeps the stacked etcd's CA and the client certificate it uses
# itself for etcd membership calls (kubeadm join/reset: util/etcd NewFromCluster).
KUBEADM_ETCD_CA = "/etc/kubernetes/pki/etcd/ca.crt"
KUBEADM_ETCD_CLIENT_CERT = "/etc/kubernetes/pki/etcd/healthcheck-client.crt"
KUBEADM_ETCD_CLIENT_KEY = "/etc/kubernetes/pki/etcd/healthcheck-client.key"
DEFAULT_ENDPOINTS = ["https://127.0.0.1:2379"]

# Options of every etcd module (merged into its argument_spec); documented once
# in plugins/doc_fragments/etcd_auth.py.
ETCD_ARGUMENT_SPEC = {
    "endpoints": {"type": "list", "elements": "str", "default": DEFAULT_ENDPOINTS},
    "ca_cert": {"type": "path", "default": KUBEADM_ETCD_CA},
    "client_cert": {"type": "path", "default": KUBEADM_ETCD_CLIENT_CERT},
    "client_key": {"type": "path", "default": KUBEADM_ETCD_CLIENT_KEY, "no_log": False},
    "timeout": {"type": "float", "default": 5.0},
}

# Seconds to wait for each chunk of a snapshot stream (a large database on a busy disk is slow to start).
SNAPSHOT_TIMEOUT = 120.0

# gRPC status codes etcd's gateway puts in its error bodies.
GRPC_NOT_FOUND = 5


class EtcdError(BaremetalError):
    """A request failed; the message names the endpoint and what to check."""

    def __init__(self, msg: str, code: int | None = None, http_status: int | None = None):
        super().__init__(msg)
        self.code = code  # the gRPC status code when etcd answered with an error
        self.http_status = http_status  # the HTTP status when the endpoint answered at all


class EtcdConfigError(EtcdError):
    """The options are wrong (bad URL, missing certificate file): no member was asked anything."""


@dataclass
class MemberProbe:
    """What one member says about itself: /health and its maintenance status."""

    healthy: bool
    error: str = ""  # why it is not healthy
    status: dict | None = None  # /v3/maintenance/status (None when it did not answer)


def module_argument_spec() -> dict:
    """A copy of ETCD_ARGUMENT_SPEC, for AnsibleModule."""
    return {name: dict(option) for name, option in ETCD_ARGUMENT_SPEC.items()}


def client_from_params(params: dict) -> EtcdClient:
    return EtcdClient(params["endpoints"], ca_cert=params["ca_cert"], client_cert=params["client_cert"],
                      client_key=params["client_key"], timeout=params["timeout"])


def _hint(exc: BaseException, url: str) -> str:
    """What to check for a connection-level failure on URL, in words."""
    text = str(getattr(exc, "reason", exc))
    lowered = text.lower()
    tls = url.startswith("https://")
    rejected_cert = ("etcd rejected the client certificate; check client_cert/client_key are signed by etcd's CA "
                     "(kubeadm: %s)" % KUBEADM_ETCD_CLIENT_CERT)
    if "certificate verify failed" in lowered:
        return ("%s: the server's certificate is not signed by ca_cert, or does not name this host/IP; check "
                "ca_cert is etcd's CA (kubeadm: %s) and that the URL uses an address in the server certificate"
                % (text, KUBEADM_ETCD_CA))
    if any(word in lowered for word in ("certificate required", "bad certificate", "unknown ca", "alert")):
        return "%s: %s" % (text, rejected_cert)
    if "wrong version number" in lowered or "record layer failure" in lowered:
        return "%s: the endpoint does not speak TLS; use http:// for a plain-HTTP etcd" % text
    if "refused" in lowered:
        return "%s: nothing listens there; is etcd running, and is the URL (host, port 2379) right?" % text
    if isinstance(exc, (socket.timeout, TimeoutError)) or "timed out" in lowered:
        return "%s: no answer within the timeout; the member may be frozen, overloaded or unreachable" % text
    if any(word in lowered for word in ("eof occurred", "unexpected_eof", "reset", "remote end closed",
                                        "badstatusline", "broken pipe")):
        if tls:
            # TLS 1.3: the server checks the client certificate after the handshake and just hangs up.
            return "%s: etcd hung up during TLS, most often because %s" % (text, rejected_cert)
        return "%s: the endpoint does not speak plain HTTP; an https:// etcd reached over http:// does this" % text
    return text


class EtcdClient:
    """Talks to the cluster through ENDPOINTS (client URLs); TLS options as etcdctl's."""

    def __init__(self, endpoints: list[str], ca_cert: str | None = None, client_cert: str | None = None,
                 client_key: str | None = None, timeout: float = 5.0):
        if not endpoints:
            raise EtcdConfigError("endpoints is empty: give at least one etcd client URL, e.g. https://127.0.0.1:2379")
        for url in endpoints:
            if not url.startswith(("http://", "https://")):
                raise EtcdConfigError("endpoint %r is not a URL: write it as https://HOST:2379 (or http:// for "
                                      "a plain-HTTP etcd)" % url)
        if timeout <= 0:
            raise EtcdConfigError("timeout must be more than 0 seconds, not %s" % timeout)
        self.endpoints = [url.rstrip("/") for url in endpoints]
        self.ca_cert, self.client_cert, self.client_key = ca_cert, client_cert, client_key
        self.timeout = timeout
        self.answered_by = ""  # the endpoint that answered the last cluster call
        self.cluster_id = ""  # from the last member list
        self.snapshot_version = None  # the storage version the last snapshot stream named
        self._ssl = None

    # ---- transport

    def _context(self) -> ssl.SSLContext:
        """One SSL context for every https request: CA and client certificate, checked for presence first."""
        if self._ssl is None:
            for option, path in (("ca_cert", self.ca_cert), ("client_cert", self.client_cert),
                                 ("client_key", self.client_key)):
                if path and not os.path.isfile(path):
                    raise EtcdConfigError("%s %s does not exist: run on a control plane (kubeadm writes etcd's "
                                          "certificates under /etc/kubernetes/pki/etcd) or set %s"
                                          % (option, path, option))
            if bool(self.client_cert) != bool(self.client_key):
                raise EtcdConfigError("client_cert and client_key go together: set both or neither")
            try:
                ctx = ssl.create_default_context(cafile=self.ca_cert or None)
                if self.client_cert:
                    ctx.load_cert_chain(self.client_cert, self.client_key)
            except (ssl.SSLError, OSError) as exc:
                raise EtcdConfigError("cannot load the TLS files (ca_cert %s, client_cert %s, client_key %s): %s; "
                                      "check they are PEM files and the key matches the certificate"
                                      % (self.ca_cert, self.client_cert, self.client_key, exc)) from None
            self._ssl = ctx
        return self._ssl

    def _open(self, url: str, body: dict | None, timeout: float):
        """The open HTTP response of a POST of BODY as JSON (GET without one) to URL. Raises EtcdError."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST",
                                         headers={"Content-Type": "application/json"})
        # Never through http(s)_proxy from the environment: etcd is on the node's own network.
        handlers = [urllib.request.ProxyHandler({})]
        if url.startswith("https://"):
            handlers.append(urllib.request.HTTPSHandler(context=self._context()))
        try:
            return urllib.request.build_opener(*handlers).open(request, timeout=timeout)
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                answer = json.loads(raw)
            except ValueError:
                answer = {}
            if not isinstance(answer, dict):
                answer = {}
            message = (answer.get("message") or answer.get("error") or answer.get("reason")
                       or raw[:200].decode(errors="replace"))
            hint = " (is this an etcd client URL with the v3 gateway?)" if exc.code == 404 and not answer else ""
            raise EtcdError("%s answered HTTP %s: %s%s" % (url, exc.code, message, hint),
                            code=answer.get("code"), http_status=exc.code) from None
        except (urllib.error.URLError, OSError, ssl.SSLError) as exc:
            raise EtcdError("cannot reach etcd at %s: %s" % (url, _hint(exc, url))) from None

    def _request(self, url: str, body: dict | None = None, timeout: float | None = None) -> dict:
        """POST BODY as JSON (GET without one) to URL; the answer's JSON. Raises EtcdError."""
        try:
            with self._open(url, body, timeout or self.timeout) as resp:
                raw = resp.read()
        except (OSError, ssl.SSLError, http.client.HTTPException) as exc:  # the answer broke off
            raise EtcdError("cannot reach etcd at %s: %s" % (url, _hint(exc, url))) from None
        try:
            return json.loads(raw)
        except ValueError:
            raise EtcdError("%s answered something that is not JSON (%r...): is this an etcd client URL?"
                            % (url, raw[:80])) from None

    def _call(self, path: str, body: dict) -> dict:
        """The v3 gateway call on the first endpoint that answers; an etcd error answer is final."""
        failures = []
        for endpoint in self.endpoints:
            try:
                answer = self._request(endpoint + path, body)
                self.answered_by = endpoint
                return answer
            except EtcdError as exc:
                if exc.code is not None or isinstance(exc, EtcdConfigError):
                    raise  # etcd itself answered (another endpoint would say the same), or our options are wrong
                failures.append(str(exc))
        raise EtcdError("no etcd endpoint answered %s:\n  %s\ncheck endpoints (etcd client URLs, port 2379) and, for "
                        "https, ca_cert/client_cert/client_key" % (path, "\n  ".join(failures)))

    # ---- API

    def member_list(self) -> list[Member]:
        answer = self._call("/v3/cluster/member/list", {})
        self.cluster_id = answer.get("header", {}).get("cluster_id", "")
        return [_member(m) for m in answer.get("members", [])]

    def member_remove(self, member_id: str) -> list[Member]:
        """Remove the member; the members left. Raises EtcdError (code GRPC_NOT_FOUND when it is gone)."""
        answer = self._call("/v3/cluster/member/remove", {"ID": str(member_id)})
        return [_member(m) for m in answer.get("members", [])]

    def alarms(self) -> list[dict]:
        """The cluster's active alarms (NOSPACE, CORRUPT) as ``{member_id, alarm}``; empty when there are none."""
        answer = self._call("/v3/maintenance/alarm", {"action": "GET"})
        return [{"member_id": str(a.get("memberID", "")), "alarm": a.get("alarm", "NONE")}
                for a in answer.get("alarms") or []]

    def health(self, client_url: str) -> tuple[bool, str]:
        """(healthy, why not) of the member at CLIENT_URL; unreachable is unhealthy."""
        try:
            answer = self._request(client_url.rstrip("/") + "/health")
        except EtcdError as exc:
            if isinstance(exc, EtcdConfigError):
                raise  # our own configuration, not the member's health
            return False, str(exc)
        if answer.get("health") == "true":
            return True, ""
        return False, "%s/health: %s" % (client_url, answer.get("reason") or answer)

    def status(self, client_url: str) -> dict:
        """/v3/maintenance/status of the member at CLIENT_URL: leader, raftIndex, dbSize, version..."""
        return self._request(client_url.rstrip("/") + "/v3/maintenance/status", {})

    def snapshot(self, out_file, client_url: str | None = None, timeout: float = SNAPSHOT_TIMEOUT) -> int:
        """Stream a snapshot of ONE member's database into OUT_FILE (a path or a binary file); bytes written.

        ``POST /v3/maintenance/snapshot`` at CLIENT_URL (default: the first endpoint). The gateway answers a
        stream of newline-delimited JSON objects, ``{"result": {"remaining_bytes": "N", "blob": "<base64>",
        "version": "3.6.0"}}``, 32 KiB of the database each (``remaining_bytes`` left out once it is 0; the
        last object carries the 32-byte sha256 trailer etcd appends), or ``{"error": {...}}`` when it fails
        midway. Each chunk is written as it comes, never the whole database in memory. TIMEOUT bounds each
        wait for the next chunk, not the whole transfer. The storage version the stream names is kept in
        ``snapshot_version``. Raises EtcdError (a stream that ends early included).
        """
        url = (client_url or self.endpoints[0]).rstrip("/") + "/v3/maintenance/snapshot"
        self.snapshot_version = None
        if isinstance(out_file, (str, bytes, os.PathLike)):
            with open(out_file, "wb") as handle:
                return self.snapshot(handle, client_url, timeout)
        written, remaining, chunks = 0, None, 0
        try:
            with self._open(url, {}, timeout) as resp:
                while True:
                    line = resp.readline()
                    if not line:
                        break
                    if not line.strip():
                        continue
                    try:
                        message = json.loads(line)
                    except ValueError:
                        raise EtcdError("%s: the snapshot stream has a line that is not JSON (%r...) after %d "
                                        "bytes: is this etcd's v3 gateway?" % (url, line[:80], written)) from None
                    if not isinstance(message, dict):
                        message = {}
                    if message.get("error"):
                        error = message["error"]
                        error = error if isinstance(error, dict) else {"message": str(error)}
                        raise EtcdError("%s: etcd stopped the snapshot after %d bytes: %s; check the member's log "
                                        "and disk, or take it from another member"
                                        % (url, written, error.get("message") or error),
                                        code=error.get("code", error.get("grpc_code")))
                    result = message.get("result")
                    if not isinstance(result, dict):
                        raise EtcdError("%s: unexpected snapshot stream message %r: is this etcd's v3 gateway?"
                                        % (url, line[:80]))
                    try:
                        blob = base64.b64decode(result.get("blob") or "", validate=True)
                        remaining = int(result.get("remaining_bytes") or 0)
                    except (binascii.Error, ValueError):
                        raise EtcdError("%s: a snapshot chunk is not base64 after %d bytes" % (url, written)) \
                            from None
                    self.snapshot_version = result.get("version") or self.snapshot_version
                    out_file.write(blob)
                    written += len(blob)
                    chunks += 1
        except EtcdError:
            raise
        except (OSError, ssl.SSLError, http.client.HTTPException) as exc:
            raise EtcdError("%s: the snapshot stream broke off after %d bytes: %s; the member may have restarted or "
                            "the network dropped, take it again (or from another member)"
                            % (url, written, _hint(exc, url))) from None
        if not chunks or remaining:
            raise EtcdError("%s: the snapshot stream ended after %d bytes%s; take it again (or from another member)"
                            % (url, written, " with %d bytes still to come" % remaining if remaining else
                               " without any data"))
        return written

    def count(self, key: str, prefix: bool = False) -> int:
        """How many keys are KEY (0 or 1) or, with PREFIX, start with it; only the count is sent back."""
        raw = key.encode()
        body = {"key": _b64(raw), "count_only": True}
        if prefix:
            body["range_end"] = _b64(prefix_end(raw))
        return int(self._call("/v3/kv/range", body).get("count") or 0)

    def count_all(self) -> int:
        """How many keys the database holds (etcd's whole key space: from "\\0" to "\\0")."""
        return int(self._call("/v3/kv/range", {"key": _b64(b"\0"), "range_end": _b64(b"\0"),
                                               "count_only": True}).get("count") or 0)

    def probe_member(self, member: Member) -> MemberProbe:
        if not member.client_urls:
            return MemberProbe(False, "no client URL: the member has not started yet")
        url = member.client_urls[0]
        # Status first: a member answers it from its own state, even without quorum. When it does not
        # answer at all (frozen, down), /health would only cost a second timeout.
        try:
            status = self.status(url)
        except EtcdError as exc:
            if isinstance(exc, EtcdConfigError):
                raise
            if exc.http_status is None:  # no answer at all
                return MemberProbe(False, str(exc))
            status = None
        healthy, error = self.health(url)
        return MemberProbe(healthy, error, status)

    def probe(self, members: list[Member]) -> dict[str, MemberProbe]:
        """Health and status of every member, asked in parallel: member id -> MemberProbe."""
        if not members:
            return {}
        with ThreadPoolExecutor(max_workers=min(len(members), 16)) as pool:
            futures = {m.id: pool.submit(self.probe_member, m) for m in members}
            return {member_id: future.result() for member_id, future in futures.items()}


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def prefix_end(prefix: bytes) -> bytes:
    """The range end that selects every key starting with PREFIX (etcd's clientv3.GetPrefixRangeEnd)."""
    end = bytearray(prefix)
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return bytes(end)
        end.pop()
    return b"\0"  # every byte 0xff (or empty): to the end of the key space


def _member(raw: dict) -> Member:
    return Member(
        id=str(raw.get("ID", "")),
        name=raw.get("name", ""),
        peer_urls=tuple(raw.get("peerURLs", [])),
        client_urls=tuple(raw.get("clientURLs", [])),
        is_learner=bool(raw.get("isLearner", False)),
    )


def member_facts(member: Member, probe: MemberProbe | None = None) -> dict:
    """A member as modules return it (JSON-friendly)."""
    facts = {
        "id": member.id,
        "id_hex": "%x" % int(member.id) if member.id.isdigit() else member.id,  # as etcdctl prints it
        "name": member.name,
        "peer_urls": list(member.peer_urls),
        "client_urls": list(member.client_urls),
        "is_learner": member.is_learner,
        "started": bool(member.name),
    }
    if probe is not None:
        status = probe.status or {}
        facts.update(
            healthy=probe.healthy,
            health_error=probe.error,
            version=status.get("version"),
            raft_index=int(status["raftIndex"]) if "raftIndex" in status else None,
            db_size=int(status["dbSize"]) if "dbSize" in status else None,
            # etcd 3.6+ reports its backend quota; older ones do not (null: the default or --quota-backend-bytes).
            db_size_quota=int(status["dbSizeQuota"]) if "dbSizeQuota" in status else None,
        )
    return facts


def cluster_facts(client: EtcdClient) -> dict:
    """Members with health and status, the leader and the quorum assessment (etcd_info's result)."""
    members = client.member_list()
    endpoint = client.answered_by  # the member list's (the alarm call below may be answered elsewhere)
    probes = client.probe(members)
    healthy = {member_id: probe.healthy for member_id, probe in probes.items()}
    summary = assess(members, healthy)
    removals = summary.pop("removals")
    # The leader as the members see it: the healthy ones first (a partitioned member may name an old one).
    answered = sorted((p for p in probes.values() if p.status), key=lambda p: not p.healthy)
    leader_id = next((p.status.get("leader") for p in answered if p.status.get("leader") not in (None, "0")), None)
    names = {m.id: m.name for m in members}
    # Alarms are an extra: a cluster that lists its members but will not say its alarms is still reported.
    # The alarm list goes through raft, so without quorum it could only time out.
    alarms, alarms_error = None, "not asked: etcd has no quorum"
    if summary["has_quorum"]:
        try:
            alarms, alarms_error = client.alarms(), ""
        except EtcdConfigError:
            raise
        except EtcdError as exc:
            alarms, alarms_error = None, str(exc)
    if alarms:
        alarms = [dict(a, member_name=names.get(a["member_id"], "")) for a in alarms]
    facts = []
    for member in members:
        entry = member_facts(member, probes[member.id])
        entry["is_leader"] = member.id == leader_id
        entry["remove_allowed"] = removals[member.id].allowed
        entry["remove_reason"] = removals[member.id].reason
        facts.append(entry)
    return dict(summary, members=facts, leader=names.get(leader_id) if leader_id else None,
                cluster_id=client.cluster_id, endpoint=endpoint, alarms=alarms, alarms_error=alarms_error)
