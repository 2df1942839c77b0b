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

import fnmatch
import os
import re
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
    try:
        return subprocess.run(args, cwd=cwd, env=env, check=False).returncode
    except FileNotFoundError:
        print("cannot run %s: not found" % args[0], flush=True)
        return 127


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


def build_ignore():
    import yaml

    with open(os.path.join(REPO, "galaxy.yml"), encoding="utf-8") as handle:
        return yaml.safe_load(handle).get("build_ignore") or []


def shipped_files():
    """The files `ansible-galaxy collection build` would put in the tarball (galaxy.yml build_ignore applied)."""
    patterns = build_ignore()

    def ignored(path):
        parts = path.split("/")
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        return any(fnmatch.fnmatch(prefix, pattern) for prefix in prefixes for pattern in patterns)

    return [path for path in tracked_files() if not ignored(path)]


def copy_tree(destination):
    # Sanity tests what ships; the lab and the dev tools (lab/, tools/) are linted by ruff only.
    for path in shipped_files():
        target = os.path.join(destination, path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(os.path.join(REPO, path), target)


def tier_lint():
    rc = sh([tool("ruff"), "check", "plugins", "tests", "tools", "lab"])
    lintable = [d for d in ("roles", "playbooks", "molecule") if os.path.isdir(os.path.join(REPO, d))]
    if lintable:
        rc |= sh([tool("ansible-lint"), "--profile", "production", *lintable])
    return rc


def install_get_pip_stand_in():
    """Let ansible-test bootstrap its venvs without its download host (see tools/ansible_test_get_pip.py)."""
    import ansible_test

    source = os.path.join(os.path.dirname(ansible_test.__file__), "_internal", "python_requirements.py")
    with open(source, encoding="utf-8") as handle:
        version = re.search(r"pip='([0-9.]+)'", handle.read()).group(1)
    cache = os.path.expanduser("~/.ansible/test/cache")
    os.makedirs(cache, exist_ok=True)
    shutil.copy(os.path.join(REPO, "tools", "ansible_test_get_pip.py"),
                os.path.join(cache, "get_pip_%s.py" % version.replace(".", "_")))
    with open(os.path.join(cache, "bmk8s-pip.conf"), "w", encoding="utf-8") as handle:
        handle.write(pip_settings())


def pip_settings():
    """The calling shell's pip settings as a pip.conf (ansible-test drops PIP_* and CA variables)."""
    sources = {
        "cert": ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"),
        "index-url": ("PIP_INDEX_URL",),
        "extra-index-url": ("PIP_EXTRA_INDEX_URL",),
        "find-links": ("PIP_FIND_LINKS",),
        "trusted-host": ("PIP_TRUSTED_HOST",),
        "timeout": ("PIP_DEFAULT_TIMEOUT",),
    }
    lines = ["[global]"]
    for key, names in sources.items():
        value = next((os.environ[name] for name in names if os.environ.get(name)), None)
        if value:
            lines.append("%s = %s" % (key, value))
    return "\n".join(lines) + "\n"


def tier_sanity():
    # ansible-test needs the collection at .../ansible_collections/<namespace>/<name>,
    # as a git-less copy of exactly the files that would be committed.
    with tempfile.TemporaryDirectory(prefix="bmk8s-sanity-") as root:
        tree = os.path.join(root, "ansible_collections", "baremetal", "k8s")
        copy_tree(tree)
        install_get_pip_stand_in()
        return sh([tool("ansible-test"), "sanity", "--python", "3.11", "--color", "no",
                   "--venv", "--requirements"], cwd=tree)


def tier_unit():
    # One worker per core (pytest-xdist): the unit tests share nothing, and the ones that run
    # ansible-playbook spend most of their time in it.
    return pytest("tests/unit", "-q", "-p", "no:cacheprovider", "-n", "auto", "--durations=10")


def tier_build():
    with tempfile.TemporaryDirectory(prefix="bmk8s-build-") as root:
        rc = sh([tool("ansible-galaxy"), "collection", "build", "--output-path", root, "--force", REPO])
        if rc:
            return rc
        tarball = next(os.path.join(root, f) for f in os.listdir(root) if f.endswith(".tar.gz"))
        installed = os.path.join(root, "collections")
        # Only the installed copy (and the collections bundled with the `ansible` package) is
        # visible: the checkout's own .collections link must not satisfy the install or the listing.
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=installed)
        env.pop("ANSIBLE_CONFIG", None)
        rc = sh([tool("ansible-galaxy"), "collection", "install", "--no-deps", "-p", installed, tarball],
                cwd=root, env=env)
        if rc:
            return rc
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
    return pytest("tests/integration", "-q", "-p", "no:cacheprovider", "--durations=15")


def tier_e2e():
    # --durations: the tier's time per test in the log, to see what a cold run spends.
    return pytest("tests/e2e", "-q", "-p", "no:cacheprovider", "--durations=0")


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
