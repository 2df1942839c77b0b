#!/usr/bin/env python3
"""Run every benchmark script (tests/benchmarks/bench_*.py) and show what it prints.

    run_benchmarks.py              # all of them
    run_benchmarks.py inventory    # only bench_inventory.py

Benchmarks print numbers and their targets; they assert nothing about time.
Each script sets up what it needs (lab hosts, control plane) by itself.
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv):
    scripts = sorted(glob.glob(os.path.join(REPO, "tests", "benchmarks", "bench_*.py")))
    if argv:
        scripts = [s for s in scripts if os.path.basename(s)[len("bench_"):-len(".py")] in argv]
    failed = []
    for script in scripts:
        name = os.path.basename(script)
        print("\n==== %s ====" % name, flush=True)
        started = time.monotonic()
        rc = subprocess.run([sys.executable, script], cwd=REPO, check=False).returncode
        print("(%s finished in %.1f s, exit %d)" % (name, time.monotonic() - started, rc), flush=True)
        if rc:
            failed.append(name)
    if failed:
        print("benchmarks that failed to run: " + ", ".join(failed))
    return 1 if failed or not scripts else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
