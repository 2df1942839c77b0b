#!/usr/bin/env bash
# The molecule tier (tools/run_tiers.py molecule): every scenario under
# molecule/ on lab container hosts. Non-zero when any scenario fails.
#
#   tools/run_molecule.sh            # all scenarios
#   tools/run_molecule.sh fleet      # only these
#
# The hosts use the lab's image: lab/lab.py starts dockerd when none answers
# and builds the image when its recipe changed (the one lab recipe). crictl
# is built from its Go module by tools/k8s-build/build.sh (cached; override
# with BMK8S_CRICTL=/path/to/crictl) and installed by the containerd role as
# the air-gap path would; if it cannot be built the scenario checks containerd
# with ctr and skips the crictl test.
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
export PATH="$REPO/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="${ANSIBLE_COLLECTIONS_PATH:-$REPO/.collections}"
export ANSIBLE_CONFIG="${ANSIBLE_CONFIG:-$REPO/ansible.cfg}"
export BMK8S_CACHE="${BMK8S_CACHE:-$HOME/.cache/baremetal-k8s}"

python3 lab/lab.py image >/dev/null || { echo "run_molecule: no Docker daemon or lab image" >&2; exit 1; }

if [ -z "${BMK8S_CRICTL:-}" ]; then
    # The last stdout line of build.sh is the component's directory.
    crictl_dir=$(tools/k8s-build/build.sh crictl | tail -n 1) || crictl_dir=""
    if [ -x "$crictl_dir/crictl" ]; then
        BMK8S_CRICTL="$crictl_dir/crictl"
    else
        echo "run_molecule: WARNING: crictl could not be built; containerd is checked with ctr only" >&2
    fi
fi
export BMK8S_CRICTL
echo "run_molecule: crictl: ${BMK8S_CRICTL:-none (containerd is checked with ctr)}"

if [ $# -gt 0 ]; then
    scenarios=("$@")
else
    scenarios=()
    for file in molecule/*/molecule.yml; do
        scenarios+=("$(basename "$(dirname "$file")")")
    done
fi

cleanup() {
    for scenario in "${scenarios[@]}"; do
        molecule destroy -s "$scenario" >/dev/null 2>&1 || true
    done
}
trap cleanup EXIT

failed=()
for scenario in "${scenarios[@]}"; do
    started=$SECONDS
    echo "==== molecule test -s $scenario"
    if molecule test -s "$scenario"; then
        echo "run_molecule: $scenario passed in $((SECONDS - started)) s"
    else
        echo "run_molecule: $scenario FAILED after $((SECONDS - started)) s"
        failed+=("$scenario")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "run_molecule: failed: ${failed[*]}"
    exit 1
fi
echo "run_molecule: ${#scenarios[@]} scenario(s) passed"
