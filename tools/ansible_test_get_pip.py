"""Stand-in for the get-pip.py script ansible-test downloads to bootstrap its venvs.

ansible-test fetches get-pip.py from a host this machine cannot reach, but it
first looks for a cached copy (~/.ansible/test/cache/get_pip_<version>.py).
tools/run_tiers.py puts this file there: it bootstraps the pip bundled with
Python (ensurepip) and lets that pip install exactly what ansible-test asked for.

ansible-test runs its commands with a scrubbed environment (no PIP_CERT, no
proxy CA), so run_tiers.py also saves the pip settings of the calling shell to
~/.ansible/test/cache/bmk8s-pip.conf; this script copies them into the new
venv (sys.prefix/pip.conf), where every later pip call in that venv reads them.
"""

import ensurepip
import os
import shutil
import subprocess
import sys

# --no-setuptools and --no-wheel are get-pip.py's own options, not pip's.
GET_PIP_ONLY = ("--no-setuptools", "--no-wheel")
SETTINGS = os.path.expanduser("~/.ansible/test/cache/bmk8s-pip.conf")

if os.path.exists(SETTINGS):
    shutil.copy(SETTINGS, os.path.join(sys.prefix, "pip.conf"))
ensurepip.bootstrap(upgrade=True)
# ensurepip points PIP_CONFIG_FILE at /dev/null for its own run; our pip must read pip.conf.
os.environ.pop("PIP_CONFIG_FILE", None)
args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", *args]))
