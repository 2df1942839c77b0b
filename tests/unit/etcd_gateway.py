# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A fake etcd v3 JSON gateway on loopback (plain HTTP) and snapshot files, for the unit tests of the etcd
snapshot code.

One HTTP server plays every member: member ``cpN``'s client URL is ``http://127.0.0.1:PORT/cpN``. A member in
``down`` advertises a port where nothing listens. The snapshot stream has the format a real etcd 3.6 sends
(tests/integration/test_etcd_snapshot.py runs the real one): newline-delimited
``{"result":{"remaining_bytes":"N","blob":"<base64>","version":"3.6.0"}}``, ``remaining_bytes`` left out on
the last chunks, the 32-byte sha256 trailer in the last message.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import os
import threading
from dataclasses import dataclass, field

from ansible_collections.baremetal.k8s.plugins.module_utils import etcd_backup as eb

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z: the tests' clock
HOUR = 3600.0


def snapshot_bytes(pages: int = 8, seed: bytes = b"") -> bytes:
    """A database-like file of PAGES 4 KiB pages followed by etcd's sha256 trailer."""
    body = (seed + os.urandom(4096 * pages))[: 4096 * pages]
    return body + hashlib.sha256(body).digest()


def write_snapshot(directory, taken_at=NOW, revision=10, data=None, manifest=True, cluster="c1", **manifest_extra):
    """A snapshot file with a valid etcd trailer and, unless MANIFEST is false, its manifest; the path."""
    name = eb.snapshot_name(cluster, taken_at, revision)
    path = os.path.join(str(directory), name)
    with open(path, "wb") as handle:
        handle.write(snapshot_bytes(4) if data is None else data)
    if manifest:
        fields = dict(cluster=cluster, member="cp2", endpoint="https://10.0.0.12:2379", revision=revision,
                      etcd_version="3.6.16", taken_at=taken_at, digest=eb.digest_file(path))
        fields.update(manifest_extra)
        with open(eb.manifest_path(path), "w", encoding="utf-8") as handle:
            handle.write(eb.manifest_text(eb.build_manifest(**fields)))
    return path


def flip(path, offset):
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0x01]))


@dataclass
class FakeGateway:
    members: list[str] = field(default_factory=lambda: ["cp1", "cp2", "cp3"])
    leader: str = "cp1"
    down: set = field(default_factory=set)
    unhealthy: set = field(default_factory=set)  # answer, but /health says false (no leader)
    data: bytes = field(default_factory=snapshot_bytes)
    revision: int = 4242
    corrupt: bool = False  # flip a byte in the stream
    cut_after: int | None = None  # stop the stream after this many chunks (remaining_bytes still > 0)
    stream_error: bool = False  # end with {"error": ...} after the first chunk
    snapshots_from: list = field(default_factory=list)  # the members asked for a snapshot

    def __post_init__(self):
        gateway = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                gateway.answer(self)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                gateway.answer(self)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def url(self, name: str) -> str:
        if name in self.down:
            return "http://127.0.0.1:1"
        return "http://127.0.0.1:%d/%s" % (self.port, name)

    @property
    def endpoints(self) -> list[str]:
        return [self.url(name) for name in self.members if name not in self.down]

    def member_id(self, name: str) -> str:
        return str(1000 + self.members.index(name))

    def answer(self, handler) -> None:
        name, _sep, path = handler.path.lstrip("/").partition("/")
        path = "/" + path
        if name not in self.members:
            return self.json(handler, 404, {"code": 5, "message": "no such member"})
        if path == "/v3/cluster/member/list":
            return self.json(handler, 200, {"header": {"cluster_id": "77"}, "members": [
                {"ID": self.member_id(m), "name": m, "peerURLs": ["http://10.0.0.%d:2380" % i],
                 "clientURLs": [self.url(m)]} for i, m in enumerate(self.members)]})
        if path == "/health":
            if name in self.unhealthy:
                return self.json(handler, 503, {"health": "false", "reason": "RAFT NO LEADER"})
            return self.json(handler, 200, {"health": "true"})
        if path == "/v3/maintenance/status":
            return self.json(handler, 200, {
                "header": {"cluster_id": "77", "member_id": self.member_id(name), "revision": str(self.revision)},
                "version": "3.6.16", "dbSize": str(len(self.data)), "leader": self.member_id(self.leader),
                "raftIndex": "99"})
        if path == "/v3/maintenance/snapshot":
            return self.stream(handler, name)
        return self.json(handler, 404, {})

    def json(self, handler, status: int, body: dict) -> None:
        raw = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(raw)))
        handler.end_headers()
        handler.wfile.write(raw)

    def stream(self, handler, name: str) -> None:
        self.snapshots_from.append(name)
        data = bytearray(self.data)
        if self.corrupt:
            data[len(data) // 2] ^= 0xFF
        body, trailer = bytes(data[:-32]), bytes(data[-32:])
        chunks = [body[i:i + 5000] for i in range(0, len(body), 5000)] + [trailer]
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Connection", "close")
        handler.end_headers()
        remaining = len(body)
        for index, chunk in enumerate(chunks):
            if self.cut_after is not None and index >= self.cut_after:
                break
            remaining = max(0, remaining - len(chunk)) if index < len(chunks) - 1 else 0
            result = {"blob": base64.b64encode(chunk).decode(), "version": "3.6.0"}
            if remaining:
                result["remaining_bytes"] = str(remaining)
            handler.wfile.write(json.dumps({"result": result}).encode() + b"\n")
            if self.stream_error and index == 0:
                handler.wfile.write(b'{"error":{"code":14,"message":"etcdserver: server stopped"}}\n')
                break
        handler.wfile.flush()
