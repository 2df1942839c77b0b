# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who bootstraps a kubeadm cluster, who joins, and what a join needs. Pure, no I/O.

The roles k8s_control_plane, k8s_worker and k8s_reset call these through the
filter plugins of the same names (plugins/filter/); docs/bootstrap.md has the
rules in prose:

* The control plane that bootstraps (``kubeadm init``) and hands out join
  tokens is the first member of the control-plane group, in group order; when
  none is a member yet, the first of the group.
* The joiners are the control planes in this run that are not members, in
  group order, without that first one. They join one after another.
* A reset is done from the first other control plane of the group.
"""

from __future__ import annotations

import re

from ansible_collections.baremetal.k8s.plugins.module_utils.errors import BaremetalError

_TOKEN = re.compile(r"--token\s+(\S+)")
_CA_HASH = re.compile(r"--discovery-token-ca-cert-hash\s+(\S+)")
_CERTIFICATE_KEY = re.compile(r"[0-9a-f]{64}")


class BootstrapError(BaremetalError, ValueError):
    """An input the bootstrap decisions cannot use (what is wrong and the fix)."""


def bootstrap_order(control_planes, members, play_hosts):
    """``{"first": host, "joiners": [host, ...]}`` for one cluster's control-plane group.

    ``control_planes`` is the group in inventory order, ``members`` the control
    planes that already have /etc/kubernetes/kubelet.conf, ``play_hosts`` the
    hosts of this run.
    """
    control_planes = list(control_planes)
    if not control_planes:
        raise BootstrapError("the cluster has no control plane", "give a node group the control_plane role")
    members = set(members)
    play_hosts = set(play_hosts)
    first = next((host for host in control_planes if host in members), control_planes[0])
    joiners = [host for host in control_planes if host in play_hosts and host not in members and host != first]
    return {"first": first, "joiners": joiners}


def reset_peer(control_planes, host):
    """The control plane that does the API and etcd work of resetting ``host``; "" when there is none."""
    return next((peer for peer in control_planes if peer != host), "")


def join_credentials(join_command, upload_certs_output=""):
    """Token, CA certificate hash and certificate key from kubeadm's output.

    ``join_command`` is what ``kubeadm token create --print-join-command``
    prints, ``upload_certs_output`` what ``kubeadm init phase upload-certs
    --upload-certs`` prints (its last 64-hex-digit word is the key); without it
    the certificate key is "" (a worker join).
    """
    token = _TOKEN.search(join_command or "")
    ca_hash = _CA_HASH.search(join_command or "")
    if not token or not ca_hash:
        raise BootstrapError("the output of kubeadm token create --print-join-command has no --token and "
                             "--discovery-token-ca-cert-hash", "run it by hand on the first control plane and check it")
    keys = _CERTIFICATE_KEY.findall(upload_certs_output or "")
    if upload_certs_output and not keys:
        raise BootstrapError("the output of kubeadm init phase upload-certs has no certificate key",
                             "run it by hand on the first control plane and check it")
    return {"token": token.group(1), "ca_cert_hash": ca_hash.group(1), "certificate_key": keys[-1] if keys else ""}
