#!/usr/bin/env bash
# Build the Kubernetes binaries from Go modules (no release downloads): the
# integration tier runs them, and the air-gap artifact set ships them.
#
#   tools/k8s-build/build.sh                     # build everything missing, print the combined dir
#   tools/k8s-build/build.sh etcd kwok           # only these components
#   tools/k8s-build/build.sh --print-dir         # print the combined dir, build nothing
#   tools/k8s-build/build.sh --print-dir etcd    # print one component's dir, build nothing
#   tools/k8s-build/build.sh --list              # component names
#
# Each component has its own directory under ${BMK8S_CACHE:-~/.cache/baremetal-k8s}/bin/:
# <component>-<key>/, where the key hashes that component's module directory
# (go.mod, go.sum, *.go), its build_<name> function, the shared go_build helper
# and the versions it uses. Editing one recipe rebuilds only that component
# (a cold kubernetes build is 10-20 minutes on 2 cores, so this matters).
# The combined dir all-<key>/ holds symlinks to every component's binaries
# (the integration harness reads it). Progress goes to stderr; the last stdout
# line is the printed dir. GOCACHE is the normal Go build cache (shared).
#
# Adding a component: give it a Go module directory here (go.mod + tools.go or
# main.go + go.sum), add its name to COMPONENTS and write a build_<name>
# function that calls go_build.
set -euo pipefail

KUBE_VERSION=v1.36.3
# The commit of the v1.36.3 tag; the module proxy does not record it, so it can
# be overridden from the environment (kubectl version shows it, nothing checks it).
KUBE_GIT_COMMIT=${KUBE_GIT_COMMIT:-}
COMPONENTS=(kubernetes etcd kwok crictl coredns pause cni-plugins)

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${BMK8S_CACHE:-$HOME/.cache/baremetal-k8s}
export PATH=/usr/local/go/bin:$PATH
# Static binaries; never switch toolchains behind our back.
export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=${GOFLAGS:--buildvcs=false}

log() { echo "[k8s-build] $*" >&2; }

# component_key NAME: hash of everything that decides the component's binaries.
component_key() {
  local c=$1
  {
    (cd "$HERE/$c" && find . -name go.mod -o -name go.sum -o -name '*.go' | LC_ALL=C sort | xargs sha256sum)
    declare -f go_build mod_field "build_$c"
    # Versions the function reads from the environment.
    if declare -f "build_$c" | grep -q KUBE_; then echo "$KUBE_VERSION $KUBE_GIT_COMMIT"; fi
  } | sha256sum | cut -c1-12
}
component_dir() { echo "$CACHE/bin/$1-$(component_key "$1")"; }

# The combined dir: keyed by every component's dir, so it changes with any.
combined_dir() {
  local c
  for c in "${COMPONENTS[@]}"; do component_dir "$c"; done | sha256sum | cut -c1-12 |
    sed "s|^|$CACHE/bin/all-${KUBE_VERSION}-|"
}

# link_combined: symlink every built binary into the combined dir.
link_combined() {
  local all c f
  all=$(combined_dir)
  mkdir -p "$all"
  for c in "${COMPONENTS[@]}"; do
    for f in "$(component_dir "$c")"/*; do
      [[ -e $f ]] && ln -sfn "$f" "$all/${f##*/}"
    done
  done
  return 0
}

# go_build MODULE_DIR LDFLAGS TAGS OUT_NAME=PACKAGE...
# Builds every missing binary of one module in ONE `go build` (shared packages
# compile once), into a staging dir, then moves each one into BIN_DIR so a
# half-written binary is never picked up. BIN_DIR is the current component's dir.
go_build() {
  local moddir=$1 ldflags=$2 tags=$3
  shift 3
  local pkgs=() names=() spec name pkg
  for spec in "$@"; do
    name=${spec%%=*} pkg=${spec#*=}
    if [[ -x "$BIN_DIR/$name" ]]; then
      log "  $name: up to date"
      continue
    fi
    names+=("$name") pkgs+=("$pkg")
  done
  ((${#pkgs[@]})) || return 0
  local stage
  stage=$(mktemp -d "$BIN_DIR/.stage.XXXXXX")
  log "  go build ${names[*]}"
  (cd "$HERE/$moddir" && go build -trimpath -tags "$tags" -ldflags "$ldflags" -o "$stage/" "${pkgs[@]}")
  # go build names each binary after the last path element; rename to ours.
  local i
  for i in "${!pkgs[@]}"; do
    pkg=${pkgs[$i]}
    local built=${pkg##*/}
    [[ $built =~ ^v[0-9]+$ ]] && built=$(basename "$(dirname "$pkg")") # .../server/v3 -> server
    mv -f "$stage/$built" "$BIN_DIR/${names[$i]}"
  done
  rm -rf "$stage"
}

# Module version and tag time, from the module proxy metadata.
mod_field() { (cd "$HERE/$1" && go list -m -f "{{.$3}}" "$2"); }

build_kubernetes() {
  # Same -X variables as hack/lib/version.sh; kubeadm and the kubelet compare
  # these versions, so they must be exact.
  # buildDate is the tag time, so the same recipe gives the same binaries.
  local date minor=${KUBE_VERSION#v1.}
  minor=${minor%%.*}
  date=$(mod_field kubernetes k8s.io/kubernetes 'Time.UTC.Format "2006-01-02T15:04:05Z"')
  local ld="-s -w" pkg kv
  for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    for kv in "gitVersion=$KUBE_VERSION" gitMajor=1 "gitMinor=$minor" "gitCommit=$KUBE_GIT_COMMIT" \
      gitTreeState=clean "buildDate=$date"; do
      ld+=" -X '$pkg.$kv'"
    done
  done
  # Upstream's non-debug build tags (hack/lib/golang.sh).
  local cmd specs=()
  for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl kubeadm kubelet kube-proxy; do
    specs+=("$cmd=k8s.io/kubernetes/cmd/$cmd")
  done
  go_build kubernetes "$ld" selinux,notest,grpcnotrace "${specs[@]}"
}

build_etcd() {
  # etcd's version is a constant in go.etcd.io/etcd/api/v3/version; only the git sha is -X.
  go_build etcd "-s -w" "" etcd=go.etcd.io/etcd/server/v3 etcdctl=go.etcd.io/etcd/etcdctl/v3 \
    etcdutl=go.etcd.io/etcd/etcdutl/v3
}

build_kwok() {
  local v
  v=$(mod_field kwok sigs.k8s.io/kwok Version)
  go_build kwok "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${v#v} -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${KUBE_VERSION#v}" "" \
    kwok=sigs.k8s.io/kwok/cmd/kwok
  # kwok (v0.4+) does nothing without Stage objects. Ship the defaults kwokctl
  # uses (node init + lease heartbeat, pod ready/complete/delete) from the same
  # module version, next to the binary.
  local dir f out=$BIN_DIR/kwok-stages.yaml
  [[ -s $out ]] && return 0
  (cd "$HERE/kwok" && go mod download sigs.k8s.io/kwok)
  dir=$(mod_field kwok sigs.k8s.io/kwok Dir)/kustomize/stage
  for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
    pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    echo "---"
    cat "$dir/$f"
  done >"$out.tmp"
  mv "$out.tmp" "$out"
}

build_crictl() {
  local v
  v=$(mod_field crictl sigs.k8s.io/cri-tools Version)
  go_build crictl "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=${v#v}" "" crictl=sigs.k8s.io/cri-tools/cmd/crictl
}

build_coredns() {
  # The plugin set is upstream's default (core/plugin/zplugin.go in the module).
  go_build coredns "-s -w" "" coredns=github.com/coredns/coredns
}

build_pause() {
  go_build pause "-s -w" "" pause=baremetal.k8s/tools/k8s-build/pause
}

build_cni-plugins() {
  local v p specs=()
  v=$(mod_field cni-plugins github.com/containernetworking/plugins Version)
  for p in ipam/host-local main/bridge main/loopback meta/portmap; do
    specs+=("${p#*/}=github.com/containernetworking/plugins/plugins/$p")
  done
  go_build cni-plugins "-s -w -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=$v" "" \
    "${specs[@]}"
}

main() {
  local wanted=()
  case ${1:-} in
    --print-dir)
      if (($# > 1)); then component_dir "$2"; else combined_dir; fi
      return ;;
    --list) printf '%s\n' "${COMPONENTS[@]}"; return ;;
    -h | --help) sed -n '2,26p' "$0"; return ;;
  esac
  if (($#)); then wanted=("$@"); else wanted=("${COMPONENTS[@]}"); fi
  log "$(go version)"
  local c start total_start=$SECONDS
  for c in "${wanted[@]}"; do
    declare -F "build_$c" >/dev/null || { log "unknown component: $c (have: ${COMPONENTS[*]})"; return 2; }
    BIN_DIR=$(component_dir "$c")
    mkdir -p "$BIN_DIR"
    start=$SECONDS
    log "$c: building into $BIN_DIR"
    "build_$c"
    log "$c: done in $((SECONDS - start))s"
  done
  link_combined
  log "all done in $((SECONDS - total_start))s"
  if ((${#wanted[@]} == 1)); then component_dir "${wanted[0]}"; else combined_dir; fi
}

main "$@"
