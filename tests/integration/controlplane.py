# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real Kubernetes control plane on loopback for the integration tier.

etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok run as
plain processes (built from Go modules by tools/k8s-build/build.sh) with all
state in one work directory. Nodes are kwok fakes: Node objects annotated
``kwok.x-k8s.io/node=fake`` that kwok keeps Ready and whose pods it moves to
Running/Ready and finishes deleting, so drains, PDBs and controllers behave as
on a real cluster without a kubelet or container runtime.

Only the standard library, ``cryptography`` (an ansible-core dependency) and
the ``kubernetes`` client are used, so the benchmarks can import it too.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "tools" / "k8s-build" / "build.sh"
BINARIES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "kubectl",
    "kwok-stages.yaml",  # kwok's default stages, written by the build script next to the binary
)
COMPONENTS = ("kubernetes", "etcd", "kwok")  # of tools/k8s-build/build.sh, for BINARIES
KWOK_ANNOTATION = "kwok.x-k8s.io/node"
SERVICE_CIDR = "10.0.0.0/24"
SERVICE_IP = "10.0.0.1"  # first address of SERVICE_CIDR: the `kubernetes` service
POD_CIDR = "10.244.0.0/16"  # kwok hands out pod IPs from here


def log(msg: str) -> None:
    print(f"[controlplane] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- binaries


def ensure_binaries(build: bool = True) -> Path:
    """Directory holding the binaries; builds the harness's components when any binary is missing.

    Only kubernetes, etcd and kwok are built (not the air-gap extras of the
    build script), in one run of the script. ``BMK8S_BIN_DIR`` points at a
    prebuilt directory instead (nothing is built).
    """
    override = os.environ.get("BMK8S_BIN_DIR")
    if override:
        bin_dir = Path(override)
    else:
        out = subprocess.run([str(BUILD_SCRIPT), "--print-dir"], check=True, capture_output=True, text=True)
        bin_dir = Path(out.stdout.strip().splitlines()[-1])
    missing = [b for b in BINARIES if not (bin_dir / b).exists()]
    if missing and build and not override:
        log(f"building {', '.join(missing)} with {BUILD_SCRIPT} {' '.join(COMPONENTS)} "
            "(cold: 15-25 min, progress below)")
        start = time.monotonic()
        # Progress goes to our stderr so a long cold build is visible (pytest -s).
        subprocess.run([str(BUILD_SCRIPT), *COMPONENTS], check=True, stdout=subprocess.DEVNULL)
        log(f"build finished in {time.monotonic() - start:.0f}s")
        missing = [b for b in BINARIES if not (bin_dir / b).exists()]
    if missing:
        raise FileNotFoundError(f"missing in {bin_dir}: {', '.join(missing)}")
    return bin_dir


# --------------------------------------------------------------------------- PKI


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_key(path: Path, key: rsa.RSAPrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


@dataclass
class Pki:
    """CA, apiserver serving cert, client certs and the service-account key pair."""

    dir: Path

    def __post_init__(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ca_key = _key()
        now = datetime.datetime.now(datetime.timezone.utc)
        self.ca_cert = (
            x509.CertificateBuilder()
            .subject_name(_name("bmk8s-test-ca"))
            .issuer_name(_name("bmk8s-test-ca"))
            .public_key(self.ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
            .sign(self.ca_key, hashes.SHA256())
        )
        _write_key(self.path("ca.key"), self.ca_key)
        self.path("ca.crt").write_bytes(self.ca_cert.public_bytes(serialization.Encoding.PEM))
        sa = _key()
        _write_key(self.path("sa.key"), sa)
        self.path("sa.pub").write_bytes(
            sa.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )

    def path(self, name: str) -> Path:
        return self.dir / name

    def issue(self, name: str, cn: str, org: str | None = None, server_sans: list[str] | None = None,
              client_too: bool = False) -> None:
        """Write NAME.crt/NAME.key signed by the CA (a server cert when SANs are given; CLIENT_TOO: also a client's,
        as etcd's peer certificates are)."""
        key = _key()
        now = datetime.datetime.now(datetime.timezone.utc)
        usages = [x509.oid.ExtendedKeyUsageOID.SERVER_AUTH] if server_sans else []
        if client_too or not server_sans:
            usages.append(x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(cn, org))
            .issuer_name(self.ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        )
        if server_sans:
            sans: list[x509.GeneralName] = []
            for s in server_sans:
                try:
                    sans.append(x509.IPAddress(ipaddress.ip_address(s)))
                except ValueError:
                    sans.append(x509.DNSName(s))
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(self.ca_key, hashes.SHA256())
        _write_key(self.path(f"{name}.key"), key)
        self.path(f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def write_kubeconfig(path: Path, server: str, pki: Pki, user: str, context: str = "bmk8s-test") -> Path:
    """A kubeconfig with file references to the CA and the user's client cert (JSON is valid YAML)."""
    cfg = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": context, "cluster": {"server": server, "certificate-authority": str(pki.path("ca.crt"))}}
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate": str(pki.path(f"{user}.crt")),
                    "client-key": str(pki.path(f"{user}.key")),
                },
            }
        ],
        "contexts": [{"name": context, "context": {"cluster": context, "user": user}}],
        "current-context": context,
    }
    path.write_text(json.dumps(cfg, indent=2))
    path.chmod(0o600)
    return path


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log_path: Path


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"<{exc}>"


class ControlPlaneError(RuntimeError):
    pass


@dataclass
class ControlPlane:
    """Start with :meth:`start`, stop with :meth:`stop` (or use as a context manager)."""

    bin_dir: Path
    work_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bmk8s-cp-")))
    procs: list[Proc] = field(default_factory=list)
    kubeconfig: Path | None = None
    server: str = ""
    start_seconds: float = 0.0

    @property
    def log_dir(self) -> Path:
        return self.work_dir / "logs"

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- start

    def start(self, timeout: float = 90.0) -> None:
        t0 = time.monotonic()
        try:
            self._start(timeout)
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - t0
        log(f"control plane up at {self.server} in {self.start_seconds:.1f}s (work dir {self.work_dir})")

    def _start(self, timeout: float) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        pki = Pki(self.work_dir / "pki")
        api_port, etcd_port, peer_port = free_port(), free_port(), free_port()
        self.server = f"https://127.0.0.1:{api_port}"
        pki.issue(
            "apiserver",
            "kube-apiserver",
            server_sans=[
                "127.0.0.1",
                SERVICE_IP,
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ],
        )
        pki.issue("admin", "kubernetes-admin", org="system:masters")
        pki.issue("controller-manager", "system:kube-controller-manager")
        pki.issue("scheduler", "system:kube-scheduler")
        kc = self.work_dir / "kubeconfig"
        self.kubeconfig = write_kubeconfig(kc, self.server, pki, "admin")
        kcm_kc = write_kubeconfig(
            self.work_dir / "controller-manager.kubeconfig", self.server, pki, "controller-manager"
        )
        sched_kc = write_kubeconfig(self.work_dir / "scheduler.kubeconfig", self.server, pki, "scheduler")

        etcd_url = f"http://127.0.0.1:{etcd_port}"
        peer_url = f"http://127.0.0.1:{peer_port}"
        self._spawn(
            "etcd",
            "--name=default",
            f"--data-dir={self.work_dir / 'etcd'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=default={peer_url}",
            "--listen-metrics-urls=",
            # Throwaway test data: skip fsync, it is most of etcd's latency on CI disks.
            "--unsafe-no-fsync",
            "--log-level=warn",
        )
        self._spawn(
            "kube-apiserver",
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={api_port}",
            f"--cert-dir={self.work_dir / 'apiserver-certs'}",
            f"--tls-cert-file={pki.path('apiserver.crt')}",
            f"--tls-private-key-file={pki.path('apiserver.key')}",
            f"--client-ca-file={pki.path('ca.crt')}",
            f"--service-account-key-file={pki.path('sa.pub')}",
            f"--service-account-signing-key-file={pki.path('sa.key')}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            # No kubelets own an endpoint for the apiserver; don't try to reconcile it.
            "--endpoint-reconciler-type=none",
            "--authorization-mode=Node,RBAC",
            "--allow-privileged=true",
            "--profiling=false",
        )
        self._wait_ready(timeout)
        self._spawn(
            "kube-controller-manager",
            f"--kubeconfig={kcm_kc}",
            f"--authentication-kubeconfig={kcm_kc}",
            f"--authorization-kubeconfig={kcm_kc}",
            "--bind-address=127.0.0.1",
            f"--secure-port={free_port()}",
            f"--cert-dir={self.work_dir / 'kcm-certs'}",
            "--leader-elect=false",
            "--allocate-node-cidrs=false",
            "--use-service-account-credentials=true",
            f"--root-ca-file={pki.path('ca.crt')}",
            f"--service-account-private-key-file={pki.path('sa.key')}",
            f"--cluster-signing-cert-file={pki.path('ca.crt')}",
            f"--cluster-signing-key-file={pki.path('ca.key')}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            # Client-side rate limits (20 qps) would dominate scale-ups of 100+ pods.
            "--kube-api-qps=500",
            "--kube-api-burst=1000",
        )
        self._spawn(
            "kube-scheduler",
            f"--kubeconfig={sched_kc}",
            f"--authentication-kubeconfig={sched_kc}",
            f"--authorization-kubeconfig={sched_kc}",
            "--bind-address=127.0.0.1",
            f"--secure-port={free_port()}",
            f"--cert-dir={self.work_dir / 'scheduler-certs'}",
            "--leader-elect=false",
            "--kube-api-qps=500",
            "--kube-api-burst=1000",
        )
        self._spawn(
            "kwok",
            f"--kubeconfig={self.kubeconfig}",
            f"--config={self.bin_dir / 'kwok-stages.yaml'}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={KWOK_ANNOTATION}=fake",
            f"--cidr={POD_CIDR}",
            "--node-ip=10.255.0.1",
            "--node-lease-duration-seconds=40",
        )
        # Components that die at once (bad flag, port clash) show up here, not as a hang later.
        time.sleep(0.5)
        self._check_alive()

    def _spawn(self, name: str, *args: str) -> Proc:
        log_path = self.log_dir / f"{name}.log"
        with open(log_path, "wb") as out:
            popen = subprocess.Popen(
                [str(self.bin_dir / name), *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.work_dir,
                # Own process group: stop() signals the group, nothing else.
                start_new_session=True,
            )
        proc = Proc(name, popen, log_path)
        self.procs.append(proc)
        return proc

    def _check_alive(self) -> None:
        for p in self.procs:
            if p.popen.poll() is not None:
                raise ControlPlaneError(
                    f"{p.name} exited with {p.popen.returncode}; log {p.log_path}:\n{tail(p.log_path)}"
                )

    def _ssl_context(self) -> ssl.SSLContext:
        pki = self.work_dir / "pki"
        ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        return ctx

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        ctx = self._ssl_context()
        last = ""
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                with urllib.request.urlopen(f"{self.server}/readyz", context=ctx, timeout=5) as resp:
                    if resp.status == 200:
                        return
            except OSError as exc:  # URLError/HTTPError/connection refused while starting
                last = str(exc)
            time.sleep(0.2)
        raise ControlPlaneError(f"kube-apiserver not ready after {timeout:.0f}s ({last}); logs:\n{self.logs_tail()}")

    def readyz(self) -> str:
        with urllib.request.urlopen(f"{self.server}/readyz", context=self._ssl_context(), timeout=5) as resp:
            return resp.read().decode()

    # ---- diagnostics and stop

    def logs_tail(self, lines: int = 30) -> str:
        return "\n".join(f"--- {p.log_path}\n{tail(p.log_path, lines)}" for p in self.procs)

    def rss_mb(self) -> dict[str, float]:
        """Resident memory per component, from /proc (Linux)."""
        out = {}
        for p in self.procs:
            try:
                for line in Path(f"/proc/{p.popen.pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        out[p.name] = int(line.split()[1]) / 1024
            except OSError:
                pass
        return out

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the components newest first, each by SIGTERM to its process group, SIGKILL after TIMEOUT.

        One at a time: the apiserver's graceful shutdown hangs when etcd is
        already gone, and the controllers log noise when the apiserver is.
        """
        for p in reversed(self.procs):
            if p.popen.poll() is not None:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.popen.pid, signal.SIGTERM)
            try:
                p.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                log(f"{p.name} ignored SIGTERM for {timeout:.0f}s; killing")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.popen.pid, signal.SIGKILL)
                p.popen.wait(5)
        self.procs.clear()

    def cleanup(self, keep_logs: bool = False) -> None:
        """Remove the work dir; with KEEP_LOGS only the data (etcd) goes."""
        if keep_logs:
            shutil.rmtree(self.work_dir / "etcd", ignore_errors=True)
            log(f"logs kept in {self.log_dir}")
        else:
            shutil.rmtree(self.work_dir, ignore_errors=True)


# --------------------------------------------------------------------------- cluster helpers
# Small, bounded helpers over the kubernetes client, shared by tests and benchmarks.


def deployment_manifest(name: str, replicas: int, pod_spec: dict) -> dict:
    """A Deployment whose pods (label app=<name>) run ``pod_spec``."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec},
        },
    }


def create_kwok_node(
    api_client,
    name: str,
    labels: dict[str, str] | None = None,
    taints: list[dict] | None = None,
    timeout: float = 30.0,
) -> None:
    """Create a Node that kwok manages and wait until it is Ready and untainted by the node controller."""
    from kubernetes import client

    core = client.CoreV1Api(api_client)
    body = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "type": "kwok", **(labels or {})},
            "annotations": {KWOK_ANNOTATION: "fake"},
        },
        "spec": {"taints": taints or []},
    }
    core.create_node(body)
    wait_node_ready(api_client, name, timeout)


def wait_node_ready(api_client, name: str, timeout: float = 30.0) -> None:
    """Ready=True and the controller-manager's not-ready taint gone (the scheduler honours it)."""
    from kubernetes import client

    core = client.CoreV1Api(api_client)
    deadline = time.monotonic() + timeout
    while True:
        node = core.read_node(name)
        ready = any(c.type == "Ready" and c.status == "True" for c in (node.status.conditions or []))
        not_ready_taint = any(
            t.key.startswith("node.kubernetes.io/not-ready") or t.key.startswith("node.kubernetes.io/unreachable")
            for t in (node.spec.taints or [])
        )
        if ready and not not_ready_taint:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"node {name} not Ready after {timeout:.0f}s (ready={ready}, taints={node.spec.taints})")
        time.sleep(0.2)


def delete_node(api_client, name: str) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    try:
        client.CoreV1Api(api_client).delete_node(name)
    except ApiException as exc:
        if exc.status != 404:
            raise


def pod_ready(pod) -> bool:
    return pod.status.phase == "Running" and any(
        c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or [])
    )


def wait_pods_ready(
    api_client,
    namespace: str,
    label_selector: str = "",
    count: int = 1,
    timeout: float = 60.0,
    node: str | None = None,
) -> list:
    """Wait until COUNT pods (not terminating) matching the selector are Running and Ready; return them."""
    from kubernetes import client

    core = client.CoreV1Api(api_client)
    kwargs = {"label_selector": label_selector}
    if node:
        kwargs["field_selector"] = f"spec.nodeName={node}"
    deadline = time.monotonic() + timeout
    while True:
        pods = [p for p in core.list_namespaced_pod(namespace, **kwargs).items if not p.metadata.deletion_timestamp]
        ready = [p for p in pods if pod_ready(p)]
        if len(ready) >= count:
            return ready
        if time.monotonic() > deadline:
            states = sorted(f"{p.metadata.name}:{p.status.phase}@{p.spec.node_name}" for p in pods)
            raise TimeoutError(
                f"{namespace}: {len(ready)}/{count} pods Ready ({label_selector!r}) after {timeout:.0f}s: {states}"
            )
        time.sleep(0.2)


def main() -> None:
    """`python tests/integration/controlplane.py`: start one, print the kubeconfig, run until Ctrl-C."""
    cp = ControlPlane(ensure_binaries())
    with cp:
        print(f"export KUBECONFIG={cp.kubeconfig}", flush=True)
        print(f"memory (MB): {cp.rss_mb()}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    cp.cleanup()


if __name__ == "__main__":
    main()
