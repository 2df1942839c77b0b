# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real multi-member etcd cluster on loopback, TLS-only like kubeadm's stacked etcd.

Every member serves clients and peers over HTTPS and requires client
certificates signed by the cluster's CA (``--client-cert-auth``,
``--peer-client-cert-auth``), as kubeadm's etcd static pod does. The CA and the
certificates are made once per test session (:class:`EtcdPki`); clusters are
cheap (3 members are healthy in well under a second) so each test gets a fresh
one. The etcd binary is the integration harness's (controlplane.ensure_binaries).

Members are stopped the two ways a control plane dies: :meth:`EtcdCluster.freeze`
(SIGSTOP: the process holds its sockets but answers nothing, like
``docker pause``) and :meth:`EtcdCluster.kill` (SIGKILL: connections refused).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from controlplane import Pki, free_port, tail


class EtcdPki(Pki):
    """The harness's CA plus etcd's certificates, named as kubeadm names them under pki/etcd/.

    ``server`` and ``peer`` carry both server and client auth (a peer dials
    other peers with it), SANs 127.0.0.1 and localhost; ``healthcheck-client``
    is the client certificate kubeadm uses for its own etcd calls.
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        loopback = ["127.0.0.1", "localhost"]
        self.issue("server", "kube-etcd", server_sans=loopback, client_too=True)
        self.issue("peer", "kube-etcd-peer", server_sans=loopback, client_too=True)
        self.issue("healthcheck-client", "kube-etcd-healthcheck-client")

    @property
    def auth(self) -> dict[str, str]:
        """The connection options of the etcd modules for this PKI."""
        return {
            "ca_cert": str(self.path("ca.crt")),
            "client_cert": str(self.path("healthcheck-client.crt")),
            "client_key": str(self.path("healthcheck-client.key")),
        }


@dataclass
class EtcdMember:
    name: str
    client_url: str
    peer_url: str
    data_dir: Path
    log_path: Path
    popen: subprocess.Popen | None = None
    frozen: bool = False


class EtcdClusterError(RuntimeError):
    pass


@dataclass
class EtcdCluster:
    """``size`` members named etcd-0.. on loopback ports; use as a context manager.

    ``tls=False`` serves plain HTTP (clients and peers), for the http:// path.
    """

    bin_dir: Path
    pki: EtcdPki
    size: int = 3
    tls: bool = True
    work_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bmk8s-etcd-")))
    members: list[EtcdMember] = field(default_factory=list)

    def __enter__(self) -> EtcdCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        shutil.rmtree(self.work_dir, ignore_errors=True)

    # ---- start

    def start(self, timeout: float = 30.0) -> None:
        scheme = "https" if self.tls else "http"
        for index in range(self.size):
            name = f"etcd-{index}"
            self.members.append(EtcdMember(
                name=name,
                client_url=f"{scheme}://127.0.0.1:{free_port()}",
                peer_url=f"{scheme}://127.0.0.1:{free_port()}",
                data_dir=self.work_dir / name,
                log_path=self.work_dir / f"{name}.log",
            ))
        initial = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        for member in self.members:
            self._spawn(member, initial)
        self.wait_healthy(timeout)

    def _spawn(self, member: EtcdMember, initial_cluster: str) -> None:
        pki = self.pki
        args = [
            str(self.bin_dir / "etcd"),
            f"--name={member.name}",
            f"--data-dir={member.data_dir}",
            f"--listen-client-urls={member.client_url}",
            f"--advertise-client-urls={member.client_url}",
            f"--listen-peer-urls={member.peer_url}",
            f"--initial-advertise-peer-urls={member.peer_url}",
            f"--initial-cluster={initial_cluster}",
            "--initial-cluster-state=new",
            "--initial-cluster-token=bmk8s-test",
            "--listen-metrics-urls=",
            # Short raft timings: a frozen leader is replaced in about a second.
            "--heartbeat-interval=100",
            "--election-timeout=1000",
            # Throwaway test data: skip fsync, most of etcd's latency on CI disks.
            "--unsafe-no-fsync",
            "--log-level=warn",
        ]
        if self.tls:
            # TLS everywhere with client certificates, as kubeadm's etcd manifest.
            args += [
                f"--trusted-ca-file={pki.path('ca.crt')}",
                f"--cert-file={pki.path('server.crt')}",
                f"--key-file={pki.path('server.key')}",
                "--client-cert-auth=true",
                f"--peer-trusted-ca-file={pki.path('ca.crt')}",
                f"--peer-cert-file={pki.path('peer.crt')}",
                f"--peer-key-file={pki.path('peer.key')}",
                "--peer-client-cert-auth=true",
            ]
        with open(member.log_path, "ab") as out:
            member.popen = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def _context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.pki.path("ca.crt")))
        ctx.load_cert_chain(str(self.pki.path("healthcheck-client.crt")),
                            str(self.pki.path("healthcheck-client.key")))
        return ctx

    def healthy(self, member: EtcdMember, timeout: float = 1.0) -> bool:
        """etcd's own /health of one member (the harness's check, independent of the code under test)."""
        try:
            context = self._context() if self.tls else None
            with urllib.request.urlopen(f"{member.client_url}/health", context=context, timeout=timeout) as resp:
                return json.loads(resp.read()).get("health") == "true"
        except (OSError, ValueError):
            return False

    def _post(self, member: EtcdMember, path: str, timeout: float = 2.0) -> dict:
        request = urllib.request.Request(member.client_url + path, data=b"{}", method="POST")
        context = self._context() if self.tls else None
        with urllib.request.urlopen(request, context=context, timeout=timeout) as resp:
            return json.loads(resp.read())

    def member_names(self) -> list[str]:
        """The member list as a running member reports it (the harness's own check)."""
        answer = self._post(self.running()[0], "/v3/cluster/member/list")
        return sorted(m.get("name", "") for m in answer["members"])

    def leader(self) -> str:
        """Name of the raft leader, as a running member reports it."""
        member = self.running()[0]
        leader_id = self._post(member, "/v3/maintenance/status")["leader"]
        answer = self._post(member, "/v3/cluster/member/list")
        return next(m["name"] for m in answer["members"] if m["ID"] == leader_id)

    def wait_healthy(self, timeout: float = 30.0, members: list[EtcdMember] | None = None) -> None:
        members = self.running() if members is None else members
        deadline = time.monotonic() + timeout
        while True:
            for member in self.members:
                if member.popen is not None and member.popen.poll() is not None and member in members:
                    raise EtcdClusterError(f"{member.name} exited with {member.popen.returncode}:\n"
                                           f"{tail(member.log_path)}")
            if all(self.healthy(m) for m in members):
                return
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {m.name}\n{tail(m.log_path, 15)}" for m in self.members)
                raise EtcdClusterError(f"etcd members not healthy after {timeout:.0f}s:\n{logs}")
            time.sleep(0.1)

    # ---- failures

    def running(self) -> list[EtcdMember]:
        return [m for m in self.members if m.popen is not None and m.popen.poll() is None and not m.frozen]

    @property
    def endpoints(self) -> list[str]:
        return [m.client_url for m in self.members]

    @property
    def auth(self) -> dict:
        """Connection options of the etcd modules for this cluster."""
        return {"endpoints": self.endpoints, **(self.pki.auth if self.tls else {})}

    def member(self, name: str) -> EtcdMember:
        return next(m for m in self.members if m.name == name)

    def freeze(self, name: str) -> None:
        """SIGSTOP: the member keeps its sockets open but answers nothing (``docker pause``)."""
        member = self.member(name)
        os.killpg(member.popen.pid, signal.SIGSTOP)
        member.frozen = True

    def thaw(self, name: str) -> None:
        member = self.member(name)
        os.killpg(member.popen.pid, signal.SIGCONT)
        member.frozen = False

    def kill(self, name: str) -> None:
        """SIGKILL: the member is gone, its ports refuse connections."""
        member = self.member(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(member.popen.pid, signal.SIGKILL)
        member.popen.wait(10)
        member.frozen = False

    def stop(self) -> None:
        for member in self.members:
            if member.popen is None or member.popen.poll() is not None:
                continue
            with contextlib.suppress(ProcessLookupError):
                if member.frozen:
                    os.killpg(member.popen.pid, signal.SIGCONT)
                os.killpg(member.popen.pid, signal.SIGTERM)
            try:
                member.popen.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(member.popen.pid, signal.SIGKILL)
                member.popen.wait(5)

    def logs_tail(self, lines: int = 15) -> str:
        return "\n".join(f"--- {m.name} ({m.log_path})\n{tail(m.log_path, lines)}" for m in self.members)
