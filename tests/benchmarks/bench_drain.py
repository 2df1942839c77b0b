#!/usr/bin/env python3
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Drain of a kwok node carrying 110 pods of 20 Deployments under PDBs: node_drain vs `kubectl drain`.

One control plane (tests/integration/controlplane.py), one run, the same
setup for both: a target node holding all the pods, two spare nodes that take
the replacements, every Deployment under a PDB with maxUnavailable=1, so each
Deployment's pods can only leave one at a time, each time after its
replacement is Ready elsewhere. Prints wall times, their ratio against the
target (node_drain at least 2x faster than kubectl drain) and the load
average around each measurement; asserts nothing about them. With
``--rounds N`` the two tools take turns N times, so load drift hits both;
``--baseline DIR`` adds a turn for another checkout's module (for example
``git archive <commit> | tar -x -C DIR``), to compare versions.

The floor is the control plane's: after each eviction the PDB allows the next
one only once the disruption controller (one worker for every PDB) has seen
the replacement Ready. node_drain retries a refused pod as soon as the PDB
says so (it watches PDBs); kubectl drain retries every 5 s.

    .venv/bin/python tests/benchmarks/bench_drain.py [--rounds N]   (or: make bench)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

from controlplane import ControlPlane, create_kwok_node, ensure_binaries, wait_pods_ready  # noqa: E402

DEPLOYMENTS = 20
PODS = 110
TIMEOUT = 900  # seconds either tool may take
TARGET_SPEEDUP = 2.0  # kubectl drain wall / node_drain wall


def replicas() -> list[int]:
    base, extra = divmod(PODS, DEPLOYMENTS)
    return [base + (1 if i < extra else 0) for i in range(DEPLOYMENTS)]


def setup(api, namespace: str, target: str, spares: list[str]) -> None:
    """All pods on TARGET (spares cordoned meanwhile), PDBs in place, then the spares open."""
    from kubernetes import client

    core, apps, policy = client.CoreV1Api(api), client.AppsV1Api(api), client.PolicyV1Api(api)
    for spare in spares:
        core.patch_node(spare, {"spec": {"unschedulable": True}})
    core.create_namespace({"metadata": {"name": namespace}})
    for i, count in enumerate(replicas()):
        name = f"app-{i:02d}"
        apps.create_namespaced_deployment(namespace, {
            "metadata": {"name": name},
            "spec": {
                "replicas": count,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"nodeSelector": {"pool": "bench"}, "terminationGracePeriodSeconds": 1,
                             "containers": [{"name": "app", "image": "registry.invalid/app:1"}]},
                },
            },
        })
        policy.create_namespaced_pod_disruption_budget(namespace, {
            "metadata": {"name": name},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": name}}},
        })
    wait_pods_ready(api, namespace, "", PODS, timeout=300, node=target)
    # Every PDB must have counted its pods before the drain starts, or the first evictions get 429s
    # that only measure the disruption controller's start.
    deadline = time.monotonic() + 120
    while True:
        pdbs = policy.list_namespaced_pod_disruption_budget(namespace).items
        if all(p.status and p.status.disruptions_allowed == 1 for p in pdbs):
            break
        if time.monotonic() > deadline:
            raise TimeoutError("PDB status not computed after 120s")
        time.sleep(0.5)
    for spare in spares:
        core.patch_node(spare, {"spec": {"unschedulable": False}})


def teardown(api, namespace: str) -> None:
    from kubernetes import client

    core = client.CoreV1Api(api)
    core.delete_collection_namespaced_pod(namespace, grace_period_seconds=0)
    core.delete_namespace(namespace)
    deadline = time.monotonic() + 120
    while core.list_namespaced_pod(namespace).items and time.monotonic() < deadline:
        time.sleep(0.5)


def collections_path(repo: str) -> str:
    """A collections path holding REPO as baremetal.k8s (the checkout's own .collections, or one made for it)."""
    path = os.path.join(repo, ".collections")
    link = os.path.join(path, "ansible_collections", "baremetal", "k8s")
    if not os.path.exists(link):
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(os.path.abspath(repo), link)
    return path


def run_module(kubeconfig: str, node: str, repo: str = REPO) -> tuple[float, dict]:
    env = dict(os.environ,
               ANSIBLE_COLLECTIONS_PATH=collections_path(repo),
               ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
               ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
               ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_PYTHON_INTERPRETER=sys.executable)
    args = {"name": node, "kubeconfig": kubeconfig, "timeout": TIMEOUT}
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible"), "localhost", "-i", "localhost,", "-c", "local",
           "-m", "baremetal.k8s.node_drain", "-a", json.dumps(args)]
    start = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, timeout=TIMEOUT + 120)
    wall = time.monotonic() - start
    result = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    if result.get("failed"):
        raise RuntimeError(f"node_drain failed: {result.get('msg')}")
    return wall, result


def run_kubectl(bin_dir, kubeconfig: str, node: str) -> float:
    cmd = [str(bin_dir / "kubectl"), "--kubeconfig", kubeconfig, "drain", node, "--ignore-daemonsets",
           "--delete-emptydir-data", f"--timeout={TIMEOUT}s"]
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=TIMEOUT + 120)
    wall = time.monotonic() - start
    if proc.returncode:
        raise RuntimeError(f"kubectl drain failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return wall


def load() -> str:
    return "%.1f" % os.getloadavg()[0]


def only_schedulable(core, nodes: list[str], target: str) -> None:
    """TARGET takes the setup's pods: the other targets are cordoned meanwhile."""
    for node in nodes:
        core.patch_node(node, {"spec": {"unschedulable": node != target}})


def main(argv: list[str]) -> int:
    from kubernetes import client, config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="node_drain and kubectl drain take turns N times")
    parser.add_argument("--baseline", metavar="DIR", help="also drain with the module of this checkout, each round")
    args = parser.parse_args(argv)
    rounds = args.rounds
    bin_dir = ensure_binaries()
    cp = ControlPlane(bin_dir)
    cp.start()
    try:
        cfg = client.Configuration()
        config.load_kube_config(config_file=str(cp.kubeconfig), client_configuration=cfg)
        cfg.connection_pool_maxsize = 16
        api = client.ApiClient(cfg)
        spares = ["spare-1", "spare-2"]
        targets = ["target-module", "target-kubectl", *(["target-baseline"] if args.baseline else [])]
        for name in [*targets, *spares]:
            create_kwok_node(api, name, labels={"pool": "bench"})
        core = client.CoreV1Api(api)

        print(f"setup: {PODS} pods in {DEPLOYMENTS} Deployments (maxUnavailable=1 PDB each) on one kwok node, "
              f"{len(spares)} spare kwok nodes; {rounds} round(s)", flush=True)
        module_walls, inside, kubectl_walls = [], [], []
        for n in range(1, rounds + 1):
            only_schedulable(core, targets, "target-module")
            setup(api, f"bench-module-{n}", "target-module", spares)
            before = load()
            module_wall, result = run_module(str(cp.kubeconfig), "target-module")
            refused = sum(max(0, p["attempts"] - 1) for p in result["pods"])
            t = result["timings"]
            print(f"[{n}] node_drain (ansible localhost -m, wall): {module_wall:6.1f} s  (load {before} -> {load()}; "
                  f"inside the module {t['total']:.1f} s: evict {t['evict']:.1f} s, wait {t['wait']:.1f} s; "
                  f"{len(result['evicted'])} pods evicted, {refused} evictions refused by PDBs "
                  f"= {refused / max(1, len(result['pods'])):.2f} per pod)", flush=True)
            teardown(api, f"bench-module-{n}")

            if args.baseline:
                only_schedulable(core, targets, "target-baseline")
                setup(api, f"bench-baseline-{n}", "target-baseline", spares)
                before = load()
                base_wall, base = run_module(str(cp.kubeconfig), "target-baseline", args.baseline)
                refused = sum(max(0, p["attempts"] - 1) for p in base["pods"])
                print(f"[{n}] baseline node_drain ({args.baseline}, wall): {base_wall:6.1f} s  (load {before} -> "
                      f"{load()}; inside the module {base['timings']['total']:.1f} s; "
                      f"{refused / max(1, len(base['pods'])):.2f} refused evictions per pod)", flush=True)
                teardown(api, f"bench-baseline-{n}")

            only_schedulable(core, targets, "target-kubectl")
            setup(api, f"bench-kubectl-{n}", "target-kubectl", spares)
            before = load()
            kubectl_wall = run_kubectl(bin_dir, str(cp.kubeconfig), "target-kubectl")
            print(f"[{n}] kubectl drain v1.36.3 (wall):             {kubectl_wall:6.1f} s  "
                  f"(load {before} -> {load()})", flush=True)
            teardown(api, f"bench-kubectl-{n}")
            module_walls.append(module_wall)
            inside.append(t["total"])
            kubectl_walls.append(kubectl_wall)

        module_wall, kubectl_wall = statistics.median(module_walls), statistics.median(kubectl_walls)
        speedup = kubectl_wall / module_wall
        print(f"node_drain {module_wall:.1f} s vs kubectl drain {kubectl_wall:.1f} s (median of {rounds}): "
              f"ratio node_drain / kubectl drain {module_wall / kubectl_wall:.2f}, node_drain {speedup:.2f}x faster "
              f"(target: {TARGET_SPEEDUP:.0f}x, {'met' if speedup >= TARGET_SPEEDUP else 'NOT met'}); "
              f"without ansible's start (inside the module, {statistics.median(inside):.1f} s) "
              f"{kubectl_wall / statistics.median(inside):.2f}x")
    finally:
        cp.stop()
        cp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
