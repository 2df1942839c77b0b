# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the kubelet and kubeadm must be told about a host, from what was read on it. Pure, no I/O.

The role k8s_node reads the host (``stat -fc %T /sys/fs/cgroup``,
``systemd-detect-virt --container``, /etc/resolv.conf, the default route) and
calls these through the filter plugins of the same names (plugins/filter/).
A setting is ``auto`` (decide from what was read) or a boolean that wins.
"""

from __future__ import annotations

import re

from ansible_collections.baremetal.k8s.plugins.module_utils.errors import BaremetalError

KUBELET_RESOLV_CONF = "/etc/kubernetes/resolv.conf"
# systemd-resolved's stub: kubeadm points the kubelet at the real resolv.conf by itself.
RESOLVED_STUB = "127.0.0.53"
_LOOPBACK = re.compile(r"^(127\.|::1$)")
_GATEWAY = re.compile(r"via (\S+)")
_TRUE = ("1", "true", "yes", "on", "y", "t")
_FALSE = ("0", "false", "no", "off", "n", "f")


class HostSettingError(BaremetalError, ValueError):
    """A setting or a reading the host decisions cannot use."""


def _setting(name, value):
    """None for auto, else the boolean the setting forces."""
    text = str(value).strip().lower()
    if text == "auto":
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise HostSettingError("%s is %r" % (name, value), "use auto, true or false")


def cgroup_v1(setting, cgroup_fstype):
    """Whether the host runs cgroup v1: its /sys/fs/cgroup is not cgroup2fs, unless ``setting`` says."""
    forced = _setting("cgroup_v1", setting)
    if forced is not None:
        return forced
    if cgroup_fstype is None:
        raise HostSettingError("cgroup_v1 is auto but the cgroup filesystem type was not read")
    return cgroup_fstype.strip() != "cgroup2fs"


def in_container(setting, detect_virt_rc):
    """Whether the host is a container: ``systemd-detect-virt --container`` exited 0, unless ``setting`` says."""
    forced = _setting("in_container", setting)
    if forced is not None:
        return forced
    if detect_virt_rc is None:
        raise HostSettingError("in_container is auto but systemd-detect-virt --container was not run")
    return int(detect_virt_rc) == 0


def kubelet_resolv_conf(nameservers, upstream_dns, default_route):
    """The kubelet's resolv.conf: ``{"path": path or "", "nameservers": [...]}``.

    Pods with dnsPolicy Default (CoreDNS among them) get the kubelet's
    resolv.conf. When every nameserver of the host is a loopback address other
    than systemd-resolved's stub (Docker's embedded DNS on 127.0.0.11), a pod
    would ask itself and CoreDNS stops with "Loop detected": the kubelet then
    gets its own file (``path``) with the default gateway as nameserver. Given
    ``upstream_dns`` always get their own file. ``nameservers`` are what that
    file holds; ``path`` "" means the host's resolv.conf is used as it is.

    ``nameservers``: the host's, in order; ``default_route``: the output of
    ``ip -4 -o route show default``.
    """
    nameservers = list(nameservers)
    upstream_dns = list(upstream_dns or [])
    loopback_only = bool(nameservers) and all(_LOOPBACK.match(ns) for ns in nameservers)
    own_file = (loopback_only and RESOLVED_STUB not in nameservers) or bool(upstream_dns)
    if upstream_dns:
        servers = upstream_dns
    else:
        gateway = _GATEWAY.search(default_route or "")
        servers = [gateway.group(1)] if gateway else []
    if own_file and not servers:
        raise HostSettingError("the host's nameservers are loopback only (%s) and it has no default gateway to "
                               "use instead" % ", ".join(nameservers),
                               "set the pod upstream nameservers (k8s_control_plane_pod_upstream_dns, "
                               "k8s_worker_pod_upstream_dns)")
    return {"path": KUBELET_RESOLV_CONF if own_file else "", "nameservers": servers}
