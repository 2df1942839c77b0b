#!/usr/bin/env python3
"""README's main command (`make site`): the lab's hosts converged by playbooks/site.yml.

    lab/site.py [--name bmk8s] [ansible-playbook options...]

Brings the lab up (lab.py up), builds the air-gap artifact set from the Go
modules (tools/artifacts/build_artifacts.py; cached), places the worker group
(declared by intent) with playbooks/place.yml, serves the artifacts over HTTP on
the lab network as an internal mirror would, and runs playbooks/site.yml through
the lab's fleet inventory with BMK8S_ARTIFACTS pointing at it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import lab

BUILD_ARTIFACTS = os.path.join(lab.REPO, "tools", "artifacts", "build_artifacts.py")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", default=lab.DEFAULT_NAME)
    args, playbook_args = parser.parse_known_args(argv)
    started = time.monotonic()
    lab.up(args.name, 5)
    artifacts = subprocess.run([sys.executable, BUILD_ARTIFACTS], check=True, stdout=subprocess.PIPE,
                               text=True).stdout.split()[-1]
    inventory = lab.inventory_dir(args.name)
    # The worker group is declared by intent: placement chooses its servers first.
    place = ["ansible-playbook", "-i", inventory, os.path.join(lab.REPO, "playbooks", "place.yml"),
             "-e", "place_fleet=" + os.path.join(inventory, "fleet.yml")]
    lab.log("+ " + " ".join(place))
    rc = subprocess.run(place, check=False).returncode
    if rc:
        return rc
    with lab.serve_directory(args.name, artifacts) as url:
        env = dict(os.environ, BMK8S_ARTIFACTS=url)
        command = ["ansible-playbook", "-i", inventory, os.path.join(lab.REPO, "playbooks", "site.yml"),
                   *playbook_args]
        lab.log("+ BMK8S_ARTIFACTS=%s %s" % (url, " ".join(command)))
        rc = subprocess.run(command, env=env, check=False).returncode
    lab.log("site: %s in %.0f s" % ("done" if rc == 0 else "FAILED", time.monotonic() - started))
    return rc


if __name__ == "__main__":
    sys.exit(main())
