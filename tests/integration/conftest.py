# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures for the integration tier: one real control plane per session.

``control_plane`` builds the binaries when they are missing (tools/k8s-build),
so ``.venv/bin/pytest tests/integration`` works on a fresh machine; it never
skips. Other engineers' tests rely on the ``kubeconfig`` and ``namespace``
fixture names.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import uuid

import pytest

# The unit tier's shared samples and Ansible helpers (fleet_samples.py) serve this tier too.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "unit"))
from controlplane import (
    ControlPlane,
    create_kwok_node,
    delete_node,
    ensure_binaries,
    wait_pods_ready,
)

# The running control plane, for the failure-report hook.
_STATE: dict[str, ControlPlane | None] = {"cp": None}


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/integration/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.controlplane)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    # Component logs next to a failure: most "the drain hung" failures are
    # explained by the controller-manager or kwok log.
    report = yield
    cp = _STATE["cp"]
    if report.failed and cp is not None and cp.procs:
        report.sections.append(("control plane logs (tails)", cp.logs_tail(20)))
    return report


@pytest.fixture(scope="session")
def control_plane(request):
    capman = request.config.pluginmanager.getplugin("capturemanager")
    # A cold build takes 15-25 minutes; let its progress reach the terminal.
    with capman.global_and_fixture_disabled() if capman else contextlib.nullcontext():
        bin_dir = ensure_binaries()
        cp = ControlPlane(bin_dir)
        cp.start()
    _STATE["cp"] = cp
    yield cp
    _STATE["cp"] = None
    cp.stop()
    cp.cleanup(keep_logs=request.session.testsfailed > 0)


@pytest.fixture(scope="session")
def kubeconfig(control_plane) -> str:
    """Path to the admin kubeconfig (system:masters) of the session control plane."""
    return str(control_plane.kubeconfig)


@pytest.fixture(scope="session")
def k8s_client(kubeconfig):
    """A kubernetes.client.ApiClient for the admin kubeconfig."""
    from kubernetes import client, config

    cfg = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    cfg.connection_pool_maxsize = 32
    api = client.ApiClient(cfg)
    yield api
    api.close()


def _dns_name(text: str, limit: int) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:limit].strip("-")


@pytest.fixture
def namespace(request, k8s_client) -> str:
    """A fresh namespace for one test, deleted afterwards (without waiting)."""
    from kubernetes import client

    core = client.CoreV1Api(k8s_client)
    name = f"{_dns_name(request.node.name, 40)}-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": name, "labels": {"bmk8s-test": "true"}}})
    yield name
    with contextlib.suppress(client.exceptions.ApiException):
        # Grace 0: pods on nodes that are gone would otherwise stay Terminating.
        core.delete_collection_namespaced_pod(name, grace_period_seconds=0)
        core.delete_namespace(name)


@pytest.fixture
def kwok_nodes(request, k8s_client):
    """Factory: ``kwok_nodes(count, labels=..., taints=...)`` creates Ready kwok nodes, deleted after the test."""
    created: list[str] = []
    prefix = f"kwok-{_dns_name(request.node.name, 30)}-{uuid.uuid4().hex[:4]}"

    def make(count: int = 1, labels: dict | None = None, taints: list[dict] | None = None) -> list[str]:
        names = []
        for _index in range(count):
            name = f"{prefix}-{len(created)}"
            create_kwok_node(k8s_client, name, labels=labels, taints=taints)
            created.append(name)
            names.append(name)
        return names

    yield make
    for name in created:
        delete_node(k8s_client, name)


@pytest.fixture
def pods_ready(k8s_client):
    """``pods_ready(namespace, selector, count, timeout=60, node=None)`` -> Ready pods (bounded wait)."""

    def wait(namespace: str, label_selector: str = "", count: int = 1, timeout: float = 60.0, node: str | None = None):
        return wait_pods_ready(k8s_client, namespace, label_selector, count, timeout, node)

    return wait
