#!/usr/bin/env python3
"""Run the test tiers and print a summary: each tier, pass/fail, seconds.

    run_tiers.py fast molecule integration e2e   # what `make test` runs
    run_tiers.py unit                            # one tier alone

Tiers (a tier name may also be one of the steps of `fast`):
    fast         = lint + sanity + unit + build
    lint         ruff, ansible-lint (production profile)
    sanity       ansible-test sanity on a copy of the tree under ansible_collections/baremetal/k8s
    unit         L0 pytest (plugins, module_utils, filters)
    build        ansible-galaxy collection build, install into an empty path, ansible-doc -l
    molecule     L1 Molecule scenarios on lab container hosts
    integration  L2 modules against a real control plane (kwok nodes)
    e2e          L3 the lab converged by the playbooks

A pytest run that collects no test fails its tier (pytest exit code 5): a
tier that silently tests nothing is worse than a red one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_BIN = os.path.join(REPO, ".venv", "bin")
PYTEST_NO_TESTS = 5
FAST = ("lint", "sanity", "unit", "build")


def tool(name):
    path = os.path.join(VENV_BIN, name)
    return path if os.path.exists(path) else name


def sh(args, cwd=REPO, env=None):
    print("+ " + " ".join(args), flush=True)
    return subprocess.run(args, cwd=cwd, env=env, check=False).returncode


def pytest(*args):
    rc = sh([tool("pytest"), *args])
    if rc == PYTEST_NO_TESTS:
        print("no test was collected: this tier fails rather than pass on nothing", flush=True)
    return rc


def tracked_files():
    """Files git tracks plus untracked files it does not ignore (the working tree as it will be committed)."""
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, check=True,
                         capture_output=True, text=True).stdout
    return [path for path in out.splitlines() if os.path.isfile(os.path.join(REPO, path))]


def copy_tree(destination):
    for path in tracked_files():
        target = os.path.join(destination, path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(os.path.join(REPO, path), target)


def tier_lint():
    rc = sh([tool("ruff"), "check", "plugins", "tests", "tools", "lab"])
    lintable = [d for d in ("roles", "playbooks", "molecule") if os.path.isdir(os.path.join(REPO, d))]
    if lintable:
        rc |= sh([tool("ansible-lint"), "--profile", "production", *lintable])
    return rc


def tier_sanity():
    # ansible-test needs the collection at .../ansible_collections/<namespace>/<name>,
    # as a git-less copy of exactly the files that would be committed.
    with tempfile.TemporaryDirectory(prefix="bmk8s-sanity-") as root:
        tree = os.path.join(root, "ansible_collections", "baremetal", "k8s")
        copy_tree(tree)
        return sh([tool("ansible-test"), "sanity", "--python", "3.11", "--color", "no",
                   "--venv", "--requirements"], cwd=tree)


def tier_unit():
    return pytest("tests/unit", "-q", "-p", "no:cacheprovider")


def tier_build():
    with tempfile.TemporaryDirectory(prefix="bmk8s-build-") as root:
        rc = sh([tool("ansible-galaxy"), "collection", "build", "--output-path", root, "--force", REPO])
        if rc:
            return rc
        tarball = next(os.path.join(root, f) for f in os.listdir(root) if f.endswith(".tar.gz"))
        installed = os.path.join(root, "collections")
        rc = sh([tool("ansible-galaxy"), "collection", "install", "--no-deps", "-p", installed, tarball])
        if rc:
            return rc
        # Only the installed copy (and the collections bundled with the `ansible` package) is visible.
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=installed)
        env.pop("ANSIBLE_CONFIG", None)
        listing = subprocess.run([tool("ansible-doc"), "-l", "baremetal.k8s"], cwd=root, env=env,
                                 capture_output=True, text=True, check=False)
        print(listing.stdout + listing.stderr, flush=True)
        if listing.returncode or "baremetal.k8s." not in listing.stdout:
            print("ansible-doc -l baremetal.k8s listed no plugin of the installed collection", flush=True)
            return 1
        return 0


def tier_molecule():
    return sh([os.path.join(REPO, "tools", "run_molecule.sh")])


def tier_integration():
    return pytest("tests/integration", "-q", "-p", "no:cacheprovider")


def tier_e2e():
    return pytest("tests/e2e", "-q", "-p", "no:cacheprovider")


TIERS = {
    "lint": tier_lint,
    "sanity": tier_sanity,
    "unit": tier_unit,
    "build": tier_build,
    "molecule": tier_molecule,
    "integration": tier_integration,
    "e2e": tier_e2e,
}


def main(argv):
    names = []
    for name in argv or ["fast"]:
        names.extend(FAST if name == "fast" else [name])
    unknown = [name for name in names if name not in TIERS]
    if unknown:
        print("unknown tier(s): %s; known: fast, %s" % (", ".join(unknown), ", ".join(TIERS)), file=sys.stderr)
        return 2
    os.environ.setdefault("ANSIBLE_COLLECTIONS_PATH", os.path.join(REPO, ".collections"))
    os.environ.setdefault("ANSIBLE_CONFIG", os.path.join(REPO, "ansible.cfg"))
    os.environ["PATH"] = VENV_BIN + os.pathsep + os.environ.get("PATH", "")
    results = []
    for name in names:
        print("\n==== tier %s ====" % name, flush=True)
        started = time.monotonic()
        rc = TIERS[name]()
        results.append((name, rc, time.monotonic() - started))
    print("\n==== summary ====")
    for name, rc, seconds in results:
        print("%-12s %-4s %7.1f s" % (name, "ok" if rc == 0 else "FAIL", seconds))
    failed = sum(1 for _, rc, _ in results if rc)
    print("tiers: %d passed, %d failed" % (len(results) - failed, failed), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
