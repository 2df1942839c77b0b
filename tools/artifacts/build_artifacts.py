#!/usr/bin/env python3
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build the air-gap artifact set of a cluster, without a registry or Docker.

    tools/artifacts/build_artifacts.py [--kubernetes-version 1.36.3] [--arch amd64]
                                       [--pod-network routed] [--out DIR]

Binaries come from tools/k8s-build/build.sh (Go modules through the module
proxy). Image archives are Docker-archive tars (what `docker save` writes and
`ctr -n k8s.io images import` reads) written here directly: one layer holding
the static binary, tagged as kubeadm expects. kube-proxy's image also holds
iptables (nft backend, as on Debian hosts) unpacked from Debian's packages
(apt-get download; no root filesystem needed). The list of artifacts comes from
plugins/module_utils/k8s_artifacts.py, and manifest.json records every file
with its sha256. The last stdout line is the output directory.
Default output: ${BMK8S_CACHE:-~/.cache/baremetal-k8s}/artifacts/k8s-<version>-<arch>-<pod network>/
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The collection's module_utils by its namespace path (no Ansible needed): the checkout is linked as
# .collections/ansible_collections/baremetal/k8s, as the Makefile and the tests link it.
COLLECTIONS = os.path.join(REPO, ".collections")
LINK = os.path.join(COLLECTIONS, "ansible_collections", "baremetal", "k8s")
if not os.path.islink(LINK):
    os.makedirs(os.path.dirname(LINK), exist_ok=True)
    os.symlink(REPO, LINK)
sys.path.insert(0, COLLECTIONS)
from ansible_collections.baremetal.k8s.plugins.module_utils import k8s_artifacts  # noqa: E402

BUILD_SH = os.path.join(REPO, "tools", "k8s-build", "build.sh")
CACHE = os.environ.get("BMK8S_CACHE", os.path.expanduser("~/.cache/baremetal-k8s"))
PATH_ENV = "PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"
# Debian packages kube-proxy's iptables needs (iptables and its shared libraries).
IPTABLES_DEBS = ("iptables", "libip4tc2", "libip6tc2", "libxtables12", "libnftnl11", "libmnl0",
                 "libnetfilter-conntrack3", "libnfnetlink0", "libc6", "libgcc-s1")
IPTABLES_LINKS = ("iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore")
# What each image holds (in-image path: built binary) and its entrypoint, as
# upstream's images do: kubeadm's manifests call the programs by these names.
IMAGE_LAYOUT = {
    "kube-apiserver": ({"usr/local/bin/kube-apiserver": "kube-apiserver"}, None),
    "kube-controller-manager": ({"usr/local/bin/kube-controller-manager": "kube-controller-manager"}, None),
    "kube-scheduler": ({"usr/local/bin/kube-scheduler": "kube-scheduler"}, None),
    "kube-proxy": ({"usr/local/bin/kube-proxy": "kube-proxy"}, None),
    "etcd": ({"usr/local/bin/etcd": "etcd", "usr/local/bin/etcdctl": "etcdctl"}, None),
    "coredns": ({"coredns": "coredns"}, ["/coredns"]),
    "pause": ({"pause": "pause"}, ["/pause"]),
}
GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


def log(message):
    print("[artifacts] " + message, file=sys.stderr, flush=True)


def fail(message):
    raise SystemExit("build_artifacts: " + message)


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run(args, **kwargs):
    result = subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)
    if result.returncode:
        fail("%s failed (%d): %s" % (" ".join(args), result.returncode, (result.stderr or result.stdout).strip()))
    return result.stdout


# --- image archives -------------------------------------------------------------


def _info(name, kind=tarfile.REGTYPE, mode=0o644, size=0, link=""):
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.linkname = kind, mode, size, link
    info.mtime = 0  # reproducible archives: same inputs, same digests
    return info


def write_layer(path, files, rootfs=None):
    """An uncompressed layer tar: ``files`` maps in-image paths to host files; ``rootfs`` is a tree to include."""
    dirs = set()
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
        def add_dirs(member):
            parts = member.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    tar.addfile(_info(d, tarfile.DIRTYPE, 0o755))
        for d in ("etc", "tmp", "var/run"):
            add_dirs(d + "/")
        if rootfs:
            for root, subdirs, names in os.walk(rootfs):
                subdirs.sort()
                for name in sorted(names) + [s for s in subdirs if os.path.islink(os.path.join(root, s))]:
                    full = os.path.join(root, name)
                    member = os.path.relpath(full, rootfs)
                    add_dirs(member)
                    if os.path.islink(full):
                        tar.addfile(_info(member, tarfile.SYMTYPE, 0o777, link=os.readlink(full)))
                    elif os.path.isfile(full):
                        mode = os.stat(full).st_mode & 0o7777
                        with open(full, "rb") as handle:
                            tar.addfile(_info(member, mode=mode, size=os.path.getsize(full)), handle)
        for member, source in sorted(files.items()):
            add_dirs(member)
            with open(source, "rb") as handle:
                tar.addfile(_info(member, mode=0o755, size=os.path.getsize(source)), handle)


def write_image(path, ref, arch, layer, entrypoint):
    """A Docker-archive tar (manifest.json + config + one layer) tagged ``ref``."""
    layer_sha = sha256_file(layer)
    config = {
        "architecture": arch,
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {"Env": [PATH_ENV], "Entrypoint": entrypoint, "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + layer_sha]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "baremetal.k8s build_artifacts.py"}],
    }
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    manifest = [{"Config": config_name, "RepoTags": [ref], "Layers": [layer_sha + "/layer.tar"]}]
    manifest_bytes = json.dumps(manifest, separators=(",", ":")).encode()
    tmp = path + ".tmp"
    with tarfile.open(tmp, "w", format=tarfile.GNU_FORMAT) as tar:
        tar.addfile(_info(layer_sha, tarfile.DIRTYPE, 0o755))
        with open(layer, "rb") as handle:
            tar.addfile(_info(layer_sha + "/layer.tar", size=os.path.getsize(layer)), handle)
        tar.addfile(_info(config_name, size=len(config_bytes)), io.BytesIO(config_bytes))
        tar.addfile(_info("manifest.json", size=len(manifest_bytes)), io.BytesIO(manifest_bytes))
    os.replace(tmp, path)


def iptables_rootfs(work):
    """Debian's iptables and its libraries unpacked into a tree, iptables -> the nft backend."""
    debs = os.path.join(work, "debs")
    os.makedirs(debs)
    run(["apt-get", "download", *IPTABLES_DEBS], cwd=debs)
    root = os.path.join(work, "iptables-root")
    versions = {}
    for deb in sorted(os.listdir(debs)):
        run(["dpkg-deb", "-x", os.path.join(debs, deb), root])
        package, version = deb.split("_")[:2]
        versions[package] = version.replace("%3a", ":")
    for sub in ("usr/share", "etc/ld.so.conf.d"):
        shutil.rmtree(os.path.join(root, sub), ignore_errors=True)
    for link in IPTABLES_LINKS:
        target = os.path.join(root, "usr", "sbin", link)
        if not os.path.lexists(target):
            os.symlink("xtables-nft-multi", target)
    # iptables resolves protocol names (-p tcp) through /etc/protocols.
    if os.path.exists("/etc/protocols"):
        shutil.copy("/etc/protocols", os.path.join(root, "etc", "protocols"))
    return root, versions


def tool_version(binary, *args, pattern):
    out = subprocess.run([binary, *args], capture_output=True, text=True, check=False)
    match = re.search(pattern, out.stdout + out.stderr)
    if not match:
        fail("cannot read the version of %s from: %s" % (binary, (out.stdout + out.stderr).strip()))
    return match.group(1)


def image_tags(bins, version):
    """Image references: kubeadm's own list, except etcd and CoreDNS, tagged with the versions really built."""
    listed = run([os.path.join(bins, "kubeadm"), "config", "images", "list", "--kubernetes-version", "v" + version])
    tags = {}
    for ref in listed.split():
        name = ref.split("/")[-1].split(":")[0]
        tags[name] = ref.rsplit(":", 1)[1]
    tags["etcd"] = tool_version(os.path.join(bins, "etcd"), "--version", pattern=r"etcd Version: (\S+)") + "-0"
    tags["coredns"] = "v" + tool_version(os.path.join(bins, "coredns"), "-version", pattern=r"CoreDNS-(\S+)")
    return {name: k8s_artifacts.image_ref(name, tag) for name, tag in tags.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kubernetes-version", default="1.36.3")
    parser.add_argument("--arch", default=GO_ARCH.get(platform.machine(), platform.machine()))
    parser.add_argument("--pod-network", default="routed")
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    try:
        version = k8s_artifacts.normalize_version(args.kubernetes_version)
        wanted = k8s_artifacts.required(version, args.arch, args.pod_network)
    except k8s_artifacts.ArtifactError as exc:
        fail(str(exc))
    host_arch = GO_ARCH.get(platform.machine(), platform.machine())
    if args.arch != host_arch:
        fail("--arch %s: this machine builds %s only; run the tool on a %s machine" % (args.arch, host_arch, args.arch))
    with open(BUILD_SH, encoding="utf-8") as handle:
        built = re.search(r"^KUBE_VERSION=v(\S+)", handle.read(), re.MULTILINE).group(1)
    if built != version:
        fail("--kubernetes-version %s: tools/k8s-build/build.sh builds %s; change KUBE_VERSION there (and the "
             "k8s.io/kubernetes version in tools/k8s-build/kubernetes/go.mod) first" % (version, built))
    out = args.out or os.path.join(CACHE, "artifacts", "k8s-%s-%s-%s" % (version, args.arch, args.pod_network))

    log("building binaries (tools/k8s-build/build.sh)")
    proc = subprocess.run([BUILD_SH, "kubernetes", "etcd", "crictl", "coredns", "pause", "cni-plugins"],
                          stdout=subprocess.PIPE, text=True, check=False)
    if proc.returncode:
        fail("tools/k8s-build/build.sh failed (%d); see its output above" % proc.returncode)
    bins = proc.stdout.strip().splitlines()[-1]
    refs = image_tags(bins, version)

    os.makedirs(out, exist_ok=True)
    entries, sources = [], {}
    with tempfile.TemporaryDirectory(prefix="bmk8s-artifacts-") as work:
        for item in wanted:
            target = os.path.join(out, item["path"])
            os.makedirs(os.path.dirname(target), exist_ok=True)
            entry = dict(item)
            if item["kind"] == "image":
                members, entrypoint = IMAGE_LAYOUT[item["name"]]
                rootfs = None
                if item["name"] == "kube-proxy":
                    rootfs, sources["debian"] = iptables_rootfs(work)
                layer = os.path.join(work, item["name"] + ".layer.tar")
                write_layer(layer, {path: os.path.join(bins, b) for path, b in members.items()}, rootfs)
                write_image(target, refs[item["name"]], args.arch, layer, entrypoint)
                os.unlink(layer)
                entry["image"] = refs[item["name"]]
            else:
                shutil.copyfile(os.path.join(bins, item["name"]), target + ".tmp")
                os.chmod(target + ".tmp", 0o755)
                os.replace(target + ".tmp", target)
            entry["sha256"] = sha256_file(target)
            entry["size"] = os.path.getsize(target)
            entries.append(entry)
            log("  %-24s %s" % (item["path"], entry.get("image", "")))
    manifest = {"format": k8s_artifacts.FORMAT, "kubernetes_version": version, "arch": args.arch,
                "pod_network": args.pod_network, "artifacts": entries, "sources": sources}
    tmp = os.path.join(out, k8s_artifacts.MANIFEST_NAME + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(tmp, os.path.join(out, k8s_artifacts.MANIFEST_NAME))
    log("%d artifacts, %.0f MB" % (len(entries), sum(e["size"] for e in entries) / 1e6))
    print(out)


if __name__ == "__main__":
    main()
