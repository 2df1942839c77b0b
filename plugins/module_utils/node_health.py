# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Is each fleet member of a cluster a healthy Kubernetes node, and if not, why? Pure core, no clock, no I/O.

``assess(members, nodes, leases, now=..., options=...)`` takes:

* ``members``: the cluster's fleet members (``Member`` or mappings with
  ``name``, ``address``, ``roles``, ``expected_since``, ``probes``);
* ``nodes``: the cluster's Node objects as plain mappings (``node_from_api``
  converts a ``V1Node``): name, internal_ips, unschedulable, annotations,
  kubelet_version, conditions (type, status, reason, message,
  last_transition_time, last_heartbeat_time);
* ``leases``: the kubelets' Leases in ``kube-node-lease`` as plain mappings
  (``lease_from_api``): name, renew_time, lease_duration_seconds;
* ``now``: seconds since the epoch (or ISO 8601, or a datetime);

and returns a ``Report`` with one ``Verdict`` per member (same order): whether
it is ``healthy``, its ``category`` (the one symptom that explains it best),
``reasons`` (short tokens for ``remediation.NodeRecord.reasons``), ``details``
(one sentence per reason, with the numbers), ``unhealthy_since`` and
everything observed. A member is healthy iff it has no reasons.

The categories tell the causes apart (docs/node-health.md has the table):
the host is gone (``host_unreachable``), it is up but the kubelet or
containerd died (``kubelet_down``, ``containerd_down``), it never registered
(``not_registered`` past ``node_startup_timeout``, Cluster API semantics;
``starting`` before), NotReady for a reason the probes do not explain
(``not_ready``), Ready but its heartbeat Lease is stale (``heartbeat_stale``:
the node lifecycle controller has not flipped Ready yet), and the softer
``network_unavailable``, ``wireguard_stale``, ``pressure``,
``controller_unreachable`` (Ready, but the controller cannot reach the host).
A healthy node is ``healthy`` or ``cordoned``.

``read_cluster(api_client, timeout)`` is the small I/O adapter the module
uses: it lists Nodes and Leases through an ApiClient built by k8s_client.
Bad input raises ``NodeHealthError`` naming the field and the fix.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass, field

from .errors import BaremetalError
from .live_state import LiveStateError, ServerRef, match_servers
from .vocabulary import CORDON_REASON_ANNOTATION, CORDONED_BY_ANNOTATION, NODE_ROLES

LEASE_NAMESPACE = "kube-node-lease"
PRESSURE_CONDITIONS = ("MemoryPressure", "DiskPressure", "PIDPressure")
WATCHED_CONDITIONS = ("Ready", *PRESSURE_CONDITIONS, "NetworkUnavailable")

# The categories, most telling first: a verdict's category is the first one whose test holds.
UNHEALTHY_CATEGORIES = (
    "host_unreachable",  # the controller cannot reach the host and the API does not see it alive
    "kubelet_down",  # the host answers, the kubelet is not running
    "containerd_down",  # the host answers, containerd is not running
    "not_registered",  # no Node object, past node_startup_timeout
    "starting",  # no Node object yet, within node_startup_timeout (not counted, not remediated)
    "not_ready",  # Ready is False/Unknown/missing and the probes do not say why
    "heartbeat_stale",  # Ready still True, the kubelet's Lease not renewed in time
    "network_unavailable",  # condition NetworkUnavailable=True
    "wireguard_stale",  # no WireGuard handshake with any peer in time
    "pressure",  # MemoryPressure/DiskPressure/PIDPressure=True
    "controller_unreachable",  # Ready with a fresh heartbeat, but the controller cannot reach the host
)
HEALTHY_CATEGORIES = ("cordoned", "healthy")
CATEGORIES = UNHEALTHY_CATEGORIES + HEALTHY_CATEGORIES

DEFAULT_NODE_STARTUP_TIMEOUT = 600  # Cluster API's nodeStartupTimeout default (10 minutes)
DEFAULT_LEASE_DURATION = 40  # the kubelet's nodeLeaseDurationSeconds default
DEFAULT_WIREGUARD_HANDSHAKE_TIMEOUT = 300  # WireGuard drops a session 180 s after its handshake; rekeys at 120 s

_TRUE_WORDS = ("true", "yes", "on", "1")
_FALSE_WORDS = ("false", "no", "off", "0")
# systemctl is-active's answers: running, and not running (activating: an auto-restart loop, as a crashing kubelet).
SYSTEMD_ACTIVE = ("active", "reloading", "refreshing")
SYSTEMD_NOT_ACTIVE = ("inactive", "failed", "activating", "deactivating", "maintenance", "unknown")
PROBE_KEYS = ("reachable", "containerd_active", "kubelet_active", "wireguard_handshakes")
MEMBER_KEYS = ("name", "address", "roles", "expected_since", "probes")


class NodeHealthError(BaremetalError, ValueError):
    """Bad input to the health assessment. The message reads ``FIELD: PROBLEM. Fix: FIX``."""

    def __init__(self, field_path, problem, fix):
        self.field = field_path
        super().__init__(problem, fix, where=field_path)


# --------------------------------------------------------------------------- times


_YEAR_10000 = 253402300800  # epoch seconds of 10000-01-01: later (or negative) times are typos


def timestamp(value, path, *, allow_none=True):
    """Seconds since the epoch from a number, a datetime or an ISO 8601 string (``Z`` allowed); None stays None."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool):
        pass  # an error below, not 0 or 1
    elif isinstance(value, (int, float)) and math.isfinite(value):
        if 0 <= value < _YEAR_10000:
            return float(value)
    elif isinstance(value, datetime.datetime):
        seconds = (value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)).timestamp()
        if 0 <= seconds < _YEAR_10000:
            return seconds
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            return timestamp(float(text), path)
        except ValueError:
            pass
        try:
            parsed = datetime.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is not None:
            try:
                return timestamp(parsed, path)
            except NodeHealthError:
                pass  # reported with the text as written
    raise NodeHealthError(path, "expected a time, got %r" % (value,),
                          'write seconds since the epoch or an ISO 8601 time like "2026-01-31T12:00:00Z"')


def iso(seconds):
    """``2026-01-31T12:00:00Z`` (whole seconds kept as such), or None."""
    if seconds is None:
        return None
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)
    text = moment.isoformat(timespec="seconds" if moment.microsecond == 0 else "milliseconds")
    return text.replace("+00:00", "Z")


def _age(now, then):
    """Seconds from THEN to NOW, never negative (a clock ahead of ours counts as 0), or None."""
    return None if then is None else round(max(now - then, 0.0), 3)


# --------------------------------------------------------------------------- input


@dataclass(frozen=True)
class HealthOptions:
    """The thresholds.

    ``node_startup_timeout``: seconds a member may be expected without a Node
    before it is unhealthy (Cluster API's nodeStartupTimeout). ``heartbeat_timeout``:
    seconds since the Lease's renewTime before the heartbeat is stale; None: the
    Lease's own leaseDurationSeconds (40 by default). ``wireguard_handshake_timeout``:
    seconds since a peer's latest handshake before it is stale; 0: WireGuard is
    reported, not judged.
    """

    node_startup_timeout: int = DEFAULT_NODE_STARTUP_TIMEOUT
    heartbeat_timeout: int | None = None
    wireguard_handshake_timeout: int = DEFAULT_WIREGUARD_HANDSHAKE_TIMEOUT

    def __post_init__(self):
        _check_seconds(self.node_startup_timeout, "node_startup_timeout", 0)
        if self.heartbeat_timeout is not None:
            _check_seconds(self.heartbeat_timeout, "heartbeat_timeout", 1)
        _check_seconds(self.wireguard_handshake_timeout, "wireguard_handshake_timeout", 0)

    def as_dict(self):
        return {"node_startup_timeout": self.node_startup_timeout, "heartbeat_timeout": self.heartbeat_timeout,
                "wireguard_handshake_timeout": self.wireguard_handshake_timeout}


def _check_seconds(value, path, low):
    if not isinstance(value, int) or isinstance(value, bool):
        raise NodeHealthError(path, "expected a whole number of seconds, got %r" % (value,),
                              "write a number of seconds, e.g. 600")
    if value < low:
        raise NodeHealthError(path, "%d is below %d" % (value, low), "write %d or more seconds" % low)


@dataclass(frozen=True)
class Probes:
    """What the controller found on the host. None: not probed (not known)."""

    reachable: bool | None = None
    containerd_active: bool | None = None
    kubelet_active: bool | None = None
    containerd_state: str | None = None  # systemctl is-active's word, when given as one
    kubelet_state: str | None = None
    wireguard_handshakes: tuple[tuple[str, float | None], ...] = ()  # (peer, latest handshake; None = never)

    @property
    def given(self):
        return (self.reachable, self.containerd_active, self.kubelet_active) != (None, None, None) or bool(
            self.wireguard_handshakes)


@dataclass(frozen=True)
class Member:
    """A fleet member expected to be a node of the cluster."""

    name: str
    address: str | None = None
    roles: tuple[str, ...] = ()
    expected_since: float | None = None  # when it was first expected to register; None: long ago
    probes: Probes = field(default_factory=Probes)


def _flag(value, path, fix):
    """(True/False/None, systemd word or None) from a bool, a yes/no word or systemctl is-active's answer."""
    if value is None or isinstance(value, bool):
        return value, None
    if isinstance(value, str) and value.strip():
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True, None
        if word in _FALSE_WORDS:
            return False, None
        if word in SYSTEMD_ACTIVE:
            return True, word
        if word in SYSTEMD_NOT_ACTIVE:
            return False, word
    raise NodeHealthError(path, "expected true, false or a systemctl is-active answer, got %r" % (value,), fix)


def probes_from_dict(data, path="probes") -> Probes:
    """Probes from a mapping (``reachable``, ``containerd_active``, ``kubelet_active``, ``wireguard_handshakes``)."""
    if data is None:
        return Probes()
    if isinstance(data, Probes):
        return data
    if not isinstance(data, dict):
        raise NodeHealthError(path, "expected a mapping, got %s" % type(data).__name__,
                              "write reachable, containerd_active, kubelet_active and wireguard_handshakes")
    unknown = sorted((k for k in data if k not in PROBE_KEYS), key=str)
    if unknown:
        raise NodeHealthError("%s.%s" % (path, unknown[0]), "unknown probe",
                              "use some of: %s" % ", ".join(PROBE_KEYS))
    reachable = _flag(data.get("reachable"), path + ".reachable",
                      "write whether the controller reached the host, e.g. "
                      "reachable: \"{{ not (probe.unreachable | default(false)) }}\"")[0]
    values = {"reachable": reachable}
    for unit in ("containerd", "kubelet"):
        active, word = _flag(data.get(unit + "_active"), "%s.%s_active" % (path, unit),
                             "write true/false, or the output of systemctl is-active %s" % unit)
        values[unit + "_active"], values[unit + "_state"] = active, word
    handshakes = data.get("wireguard_handshakes") or {}
    if not isinstance(handshakes, dict):
        raise NodeHealthError(path + ".wireguard_handshakes", "expected a mapping of peer to time, got %s"
                              % type(handshakes).__name__, "write {peer: latest handshake} with epoch seconds "
                              "as wg show <interface> latest-handshakes prints them (0: never)")
    peers = []
    for peer in sorted(handshakes, key=str):
        if not isinstance(peer, str) or not peer:
            raise NodeHealthError(path + ".wireguard_handshakes", "peer names must be non-empty strings, got %r"
                                  % (peer,), "name each peer (its node name or public key)")
        when = timestamp(handshakes[peer], "%s.wireguard_handshakes.%s" % (path, peer))
        peers.append((peer, when or None))  # 0 and null: no handshake ever
    values["wireguard_handshakes"] = tuple(peers)
    return Probes(**values)


def member_from_dict(data, path="members[0]") -> Member:
    """A Member from a mapping (module parameters); unknown keys are an error."""
    if isinstance(data, Member):
        return data
    if not isinstance(data, dict):
        raise NodeHealthError(path, "expected a mapping, got %s" % type(data).__name__,
                              "write each member as name: ..., address: ..., roles: [...]")
    unknown = sorted((k for k in data if k not in MEMBER_KEYS), key=str)
    if unknown:
        raise NodeHealthError("%s.%s" % (path, unknown[0]), "unknown field", "use some of: %s" % ", ".join(
            MEMBER_KEYS))
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise NodeHealthError(path + ".name", "required field is missing" if name is None else
                              "expected a non-empty string, got %r" % (name,),
                              "give the fleet member's name (its inventory_hostname, as the Node is named)")
    path = "%s (%s)" % (path, name)
    address = data.get("address")
    if address is not None and (not isinstance(address, str) or not address.strip()):
        raise NodeHealthError(path + ".address", "expected an IP address, got %r" % (address,),
                              "give the member's private address (k8s_private_address), or leave it out")
    roles = data.get("roles") or ()
    if isinstance(roles, str) or not isinstance(roles, (list, tuple)):
        raise NodeHealthError(path + ".roles", "expected a list of roles, got %r" % (roles,),
                              "list some of: %s" % ", ".join(NODE_ROLES))
    for role in roles:
        if role not in NODE_ROLES:
            raise NodeHealthError(path + ".roles", "unknown role %r" % (role,),
                                  "use some of: %s (load balancers are not Kubernetes nodes: leave them out)"
                                  % ", ".join(NODE_ROLES))
    return Member(name=name, address=address or None, roles=tuple(roles),
                  expected_since=timestamp(data.get("expected_since"), path + ".expected_since"),
                  probes=probes_from_dict(data.get("probes"), path + ".probes"))


def members_from_list(members) -> list:
    """Validated Members from a list of mappings (or Members): every entry named, no name twice."""
    if isinstance(members, (str, dict)) or not isinstance(members, (list, tuple)):
        raise NodeHealthError("members", "expected a list of members, got %s" % type(members).__name__,
                              "list the cluster's fleet members: [{name: ..., address: ..., roles: [...]}, ...]")
    checked, seen = [], {}
    for index, raw in enumerate(members):
        member = member_from_dict(raw, "members[%d]" % index)
        if member.name in seen:
            raise NodeHealthError("members[%d].name" % index, "member %s is listed twice (also members[%d])"
                                  % (member.name, seen[member.name]), "list every member once")
        seen[member.name] = index
        checked.append(member)
    return checked


# --------------------------------------------------------------------------- the API objects as plain data


def _time_text(value):
    return value.isoformat() if isinstance(value, datetime.datetime) else value


def node_from_api(node) -> dict:
    """The plain mapping ``assess`` reads, from a kubernetes ``V1Node``."""
    status, spec, meta = node.status, node.spec, node.metadata
    info = status.node_info if status else None
    return {
        "name": meta.name,
        "internal_ips": [a.address for a in ((status.addresses if status else None) or []) if a.type == "InternalIP"],
        "unschedulable": bool(spec and spec.unschedulable),
        "annotations": dict(meta.annotations or {}),
        "labels": dict(meta.labels or {}),
        "resource_version": meta.resource_version,
        "kubelet_version": info.kubelet_version if info else None,
        "pod_cidr": spec.pod_cidr if spec else None,
        "conditions": [
            {"type": c.type, "status": c.status, "reason": c.reason, "message": c.message,
             "last_transition_time": _time_text(c.last_transition_time),
             "last_heartbeat_time": _time_text(c.last_heartbeat_time)}
            for c in ((status.conditions if status else None) or [])
        ],
        "taints": [{"key": t.key, "value": t.value, "effect": t.effect} for t in ((spec and spec.taints) or [])],
    }


def lease_from_api(lease) -> dict:
    """The plain mapping ``assess`` reads, from a kubernetes ``V1Lease``."""
    spec = lease.spec
    return {"name": lease.metadata.name,
            "renew_time": _time_text(spec.renew_time) if spec else None,
            "lease_duration_seconds": spec.lease_duration_seconds if spec else None,
            "holder_identity": spec.holder_identity if spec else None}


def read_cluster(api_client, timeout=10):
    """``(nodes, leases)`` as plain mappings: every Node, and the Leases of ``kube-node-lease``.

    API_CLIENT: a ``kubernetes.client.ApiClient`` from ``k8s_client``. Errors are ``LiveStateError``.
    """
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    from .k8s_client import api_error_text

    def call(what, fix, fn, *args):
        try:
            return fn(*args, _request_timeout=timeout).items
        except ApiException as exc:
            raise LiveStateError("api server", what, "cannot list %s: %s" % (what, api_error_text(exc)),
                                 fix) from None
        except (HTTPError, OSError) as exc:
            raise LiveStateError("api server", what, api_error_text(exc),
                                 "check that the API server runs and that kubeconfig/host point at it "
                                 "(kubectl --kubeconfig ... get --raw /readyz)") from None

    nodes = call("nodes", "grant list on nodes to the credentials in use (RBAC)",
                 client.CoreV1Api(api_client).list_node)
    leases = call("leases in %s" % LEASE_NAMESPACE, "grant list on coordination.k8s.io leases in the %s "
                  "namespace to the credentials in use (RBAC)" % LEASE_NAMESPACE,
                  client.CoordinationV1Api(api_client).list_namespaced_lease, LEASE_NAMESPACE)
    return [node_from_api(n) for n in nodes], [lease_from_api(lease) for lease in leases]


def read_api_servers(api_client, timeout=10):
    """kubeadm's kube-apiserver static pods as ``{node, image}`` (the image's tag is the version it runs)."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    from .k8s_client import api_error_text

    try:
        pods = client.CoreV1Api(api_client).list_namespaced_pod(
            "kube-system", label_selector="component=kube-apiserver", _request_timeout=timeout).items
    except ApiException as exc:
        raise LiveStateError("api server", "pods in kube-system", "cannot list them: %s" % api_error_text(exc),
                             "grant list on pods in kube-system to the credentials in use (RBAC)") from None
    except (HTTPError, OSError) as exc:
        raise LiveStateError("api server", "pods in kube-system", api_error_text(exc),
                             "check that the API server runs and that kubeconfig/host point at it") from None
    return [{"node": p.spec.node_name if p.spec else None,
             "image": p.spec.containers[0].image if p.spec and p.spec.containers else None} for p in pods]


# --------------------------------------------------------------------------- output


@dataclass(frozen=True)
class Verdict:
    """One member's health: the verdict (healthy, category, reasons, unhealthy_since) and what was observed."""

    name: str
    roles: tuple[str, ...]
    healthy: bool
    category: str
    summary: str
    reasons: tuple[str, ...]
    details: tuple[str, ...]
    unhealthy_since: float | None
    observed: dict
    notes: tuple[str, ...] = ()

    @property
    def ready(self):
        return self.observed["ready"]

    def record_fields(self) -> dict:
        """The ``remediation.NodeRecord`` fields health decides (the caller adds cluster, failure_domain,
        state, protected, in_flight from the fleet; docs/node-health.md)."""
        return {"name": self.name, "roles": list(self.roles), "ready": self.ready,
                "unhealthy_since": iso(self.unhealthy_since), "reasons": list(self.reasons)}

    def as_dict(self, now=None) -> dict:
        result = {"name": self.name, "roles": list(self.roles), "healthy": self.healthy, "category": self.category,
                  "summary": self.summary, "reasons": list(self.reasons), "details": list(self.details),
                  "notes": list(self.notes), "unhealthy_since": iso(self.unhealthy_since),
                  "unhealthy_for": None if now is None else _age(now, self.unhealthy_since),
                  "record": self.record_fields()}
        result.update(self.observed)
        return result


@dataclass(frozen=True)
class Report:
    verdicts: tuple[Verdict, ...]
    extra_nodes: tuple[str, ...]  # Nodes of the cluster that no member matches
    now: float
    options: HealthOptions

    def counts(self) -> dict:
        by_category = {c: 0 for c in CATEGORIES}
        for v in self.verdicts:
            by_category[v.category] += 1
        healthy = sum(v.healthy for v in self.verdicts)
        return {"total": len(self.verdicts), "healthy": healthy, "unhealthy": len(self.verdicts) - healthy,
                "registered": sum(v.observed["registered"] for v in self.verdicts),
                "by_category": {c: n for c, n in by_category.items() if n}}

    def as_dict(self) -> dict:
        return {"nodes": [v.as_dict(self.now) for v in self.verdicts],
                "unhealthy": [v.name for v in self.verdicts if not v.healthy],
                "counts": self.counts(), "extra_nodes": list(self.extra_nodes), "now": iso(self.now),
                "options": self.options.as_dict()}


# --------------------------------------------------------------------------- the assessment


def assess(members, nodes, leases, *, now, options=None) -> Report:
    """The health of each of MEMBERS given the cluster's NODES and LEASES (plain mappings) at time NOW."""
    options = HealthOptions() if options is None else options
    if not isinstance(options, HealthOptions):
        raise NodeHealthError("options", "expected HealthOptions, got %s" % type(options).__name__,
                              "build it with HealthOptions(...)")
    now = timestamp(now, "now", allow_none=False)
    checked = members_from_list(members)
    by_name = {}
    for index, node in enumerate(nodes or ()):
        if not isinstance(node, dict) or not isinstance(node.get("name"), str):
            raise NodeHealthError("nodes[%d]" % index, "expected a mapping with a name", "convert Node objects "
                                  "with node_from_api()")
        by_name[node["name"]] = dict(node, registered=True, internal_ips=list(node.get("internal_ips") or []))
    lease_by_name = {}
    for index, lease in enumerate(leases or ()):
        if not isinstance(lease, dict) or not isinstance(lease.get("name"), str):
            raise NodeHealthError("leases[%d]" % index, "expected a mapping with a name", "convert Lease objects "
                                  "with lease_from_api()")
        lease_by_name[lease["name"]] = lease

    # One matching rule for the collection: by Node name, else by an InternalIP equal to the member's address.
    matched = match_servers([ServerRef(m.name, m.address) for m in checked],
                            {name: by_name[name] for name in sorted(by_name)})
    verdicts = []
    for member in checked:
        state = matched[member.name]
        node = state if state.get("registered") else None
        lease = lease_by_name.get(node["name"]) if node else None
        verdicts.append(_verdict(member, node, lease, now, options))
    used = {v.observed["node_name"] for v in verdicts}
    extra = tuple(sorted(n for n in by_name if n not in used))
    return Report(tuple(verdicts), extra, now, options)


def _conditions(node, path):
    found = {}
    for index, cond in enumerate(node.get("conditions") or ()):
        if not isinstance(cond, dict) or cond.get("type") not in WATCHED_CONDITIONS:
            continue
        where = "%s.conditions[%d]" % (path, index)
        found[cond["type"]] = {"status": cond.get("status"), "reason": cond.get("reason") or None,
                               "message": cond.get("message") or None,
                               "since": timestamp(cond.get("last_transition_time"), where + ".last_transition_time"),
                               "heartbeat": timestamp(cond.get("last_heartbeat_time"),
                                                      where + ".last_heartbeat_time")}
    return found


class _Findings:
    """Reasons found so far, each with its sentence and the time it started (if known)."""

    def __init__(self):
        self.reasons, self.details, self.since, self.notes = [], [], [], []

    def add(self, reason, detail, since=None):
        if reason not in self.reasons:
            self.reasons.append(reason)
            self.details.append(detail)
        if since is not None:
            self.since.append(since)


def _verdict(member, node, lease, now, options):
    probes = member.probes
    found = _Findings()
    observed = {"registered": node is not None, "node_name": node["name"] if node else None,
                "address": member.address, "expected_since": iso(member.expected_since),
                "expected_for": _age(now, member.expected_since) if node is None else None}
    observed.update(_observe_probes(probes, now, options))

    if node is None:  # WireGuard is observed, not judged: the node is not there to be cut off
        observed.update(ready=None, ready_status=None, ready_reason="NotRegistered", ready_message=None,
                        ready_since=None, heartbeat=None, conditions={}, pressure=[], network_unavailable=False,
                        cordoned=False, cordoned_by=None, cordon_reason=None, kubelet_version=None, pod_cidr=None,
                        taints=[])
        category, summary = _unregistered(member, probes, now, options, found)
        return _finish(member, category, summary, found, observed)

    path = "nodes[%s]" % node["name"]
    conds = _conditions(node, path)
    ready_cond = conds.get("Ready")
    ready_status = ready_cond["status"] if ready_cond else None
    ready = {"True": True, "False": False}.get(ready_status)
    annotations = node.get("annotations") or {}
    cordoned = bool(node.get("unschedulable"))
    heartbeat = _heartbeat(lease, now, options, path)
    pressure = [c for c in PRESSURE_CONDITIONS if conds.get(c, {}).get("status") == "True"]
    network_unavailable = conds.get("NetworkUnavailable", {}).get("status") == "True"
    if ready_cond is None:
        ready_reason = "NoReadyCondition"
    else:
        ready_reason = ready_cond["reason"] or {True: "Ready", False: "NotReady"}.get(ready, "ReadyUnknown")
    observed.update(
        ready=ready, ready_status=ready_status or None, ready_reason=ready_reason,
        ready_message=ready_cond["message"] if ready_cond else None,
        ready_since=iso(ready_cond["since"]) if ready_cond else None,
        heartbeat=heartbeat,
        conditions={t: {"status": c["status"], "reason": c["reason"], "message": c["message"],
                        "since": iso(c["since"])} for t, c in sorted(conds.items())},
        pressure=pressure, network_unavailable=network_unavailable, cordoned=cordoned,
        cordoned_by=(annotations.get(CORDONED_BY_ANNOTATION) or "unknown") if cordoned else None,
        cordon_reason=(annotations.get(CORDON_REASON_ANNOTATION) or None) if cordoned else None,
        kubelet_version=node.get("kubelet_version"), pod_cidr=node.get("pod_cidr"),
        taints=list(node.get("taints") or []),
    )
    if node["name"] != member.name:
        found.notes.append("registered as Node %s (matched by its InternalIP %s)" % (node["name"], member.address))

    wireguard = _judge_wireguard(observed["probes"]["wireguard"], options, found)
    alive = ready is True and heartbeat["stale"] is False  # the API sees a live kubelet
    not_ready_since = None if ready is True else (ready_cond["since"] if ready_cond else None)
    if ready is not True:
        token = ready_reason
        state = {False: "NotReady", None: "Ready %s" % (ready_status or "missing")}[ready]
        found.add(token, "%s (%s)%s%s" % (
            state, token, " since %s" % iso(not_ready_since) if not_ready_since is not None else "",
            ": %s" % ready_cond["message"] if ready_cond and ready_cond["message"] else ""), not_ready_since)
    if heartbeat["stale"]:
        if heartbeat["renew_time"] is None:
            found.add("NoHeartbeat", "no kubelet heartbeat: %s" % heartbeat["problem"])
        else:
            detail = "the kubelet's Lease %s/%s was last renewed %d s ago (%s), more than the heartbeat timeout " \
                "of %d s" % (LEASE_NAMESPACE, node["name"], heartbeat["age"], heartbeat["renew_time"],
                             heartbeat["timeout"])
            found.add("HeartbeatStale", detail, timestamp(heartbeat["renew_time"], path) + heartbeat["timeout"])
    if probes.reachable is False:
        found.add("HostUnreachable", "the controller cannot reach the host%s" % (
            " although the API sees it Ready with a fresh heartbeat (the controller's path to it is broken, or "
            "the probe failed)" if alive else ""))
    if probes.reachable is not False:
        for unit, active, word in (("kubelet", probes.kubelet_active, probes.kubelet_state),
                                   ("containerd", probes.containerd_active, probes.containerd_state)):
            if active is False:
                found.add("%sInactive" % unit.capitalize(), "%s is not running on the host (systemctl is-active: "
                          "%s)" % (unit, word or "not active"), not_ready_since)
    if network_unavailable:
        cond = conds["NetworkUnavailable"]
        found.add("NetworkUnavailable", "condition NetworkUnavailable is True (%s)%s"
                  % (cond["reason"] or "no reason", " since %s" % iso(cond["since"]) if cond["since"] else ""),
                  cond["since"])
    for kind in pressure:
        cond = conds[kind]
        since = " since %s" % iso(cond["since"]) if cond["since"] else ""
        found.add(kind, "condition %s is True (%s)%s" % (kind, cond["reason"] or "no reason", since), cond["since"])
    if cordoned:
        why = ": %s" % observed["cordon_reason"] if observed["cordon_reason"] else ""
        found.notes.append("cordoned by %s%s" % (observed["cordoned_by"], why))

    category, summary = _categorise(observed, probes, heartbeat, wireguard, found)
    return _finish(member, category, summary, found, observed)


def _unregistered(member, probes, now, options, found):
    expected_for = _age(now, member.expected_since)
    if member.expected_since is not None and expected_for <= options.node_startup_timeout:
        found.add("NotRegistered", "no Node object yet; expected for %d s, within the node_startup_timeout of "
                  "%d s (%d s to go)" % (expected_for, options.node_startup_timeout,
                                         math.ceil(options.node_startup_timeout - expected_for)))
        # Still starting: the kubelet may well not run yet; the probes are observed, not judged.
        return "starting", "not registered yet, within the node startup timeout"
    since = None if member.expected_since is None else member.expected_since + options.node_startup_timeout
    found.add("NotRegistered", "no Node object%s" % (
        ", expected since an unknown time (taken as past the node_startup_timeout)" if since is None else
        "; expected for %d s, past the node_startup_timeout of %d s" % (expected_for, options.node_startup_timeout)),
        since)
    if probes.reachable is False:
        found.add("HostUnreachable", "the controller cannot reach the host", since)
        return "host_unreachable", "not registered: the host or the network to it is gone"
    if probes.kubelet_active is False:
        found.add("KubeletInactive", "kubelet is not running on the host (systemctl is-active: %s)"
                  % (probes.kubelet_state or "not active"), since)
        return "kubelet_down", "not registered: the host is up, the kubelet is not running"
    if probes.containerd_active is False:
        found.add("ContainerdInactive", "containerd is not running on the host (systemctl is-active: %s)"
                  % (probes.containerd_state or "not active"), since)
        return "containerd_down", "not registered: the host is up, containerd is not running"
    return "not_registered", "not registered past the node startup timeout"


def _categorise(observed, probes, heartbeat, wireguard, found):
    ready = observed["ready"]
    down = ready is not True or heartbeat["stale"]
    what = "NotReady" if ready is False else "Ready %s" % (observed["ready_status"] or "missing") \
        if ready is None else "heartbeat stale"
    if probes.reachable is False and down:
        return "host_unreachable", "%s: the host or the network to it is gone (unreachable from the controller)" % what
    if "KubeletInactive" in found.reasons:
        if ready is True and not heartbeat["stale"]:
            return "kubelet_down", "the kubelet is not running (the API has not noticed yet)"
        return "kubelet_down", "%s: the host is up, the kubelet is not running" % what
    if "ContainerdInactive" in found.reasons:
        return "containerd_down", "%s: the host is up, containerd is not running" % (
            what if down else "Ready for now")
    if ready is not True:
        return "not_ready", "%s (%s)%s" % (what, observed["ready_reason"], "; the host answers and its kubelet "
                                           "runs" if probes.reachable and probes.kubelet_active else "")
    if heartbeat["stale"]:
        return "heartbeat_stale", "Ready, but the kubelet's heartbeat is stale: Ready has not flipped yet"
    if observed["network_unavailable"]:
        return "network_unavailable", "Ready, but its network is unavailable (NetworkUnavailable)"
    if wireguard:
        return "wireguard_stale", "Ready, but no WireGuard handshake with any of its peers in time"
    if observed["pressure"]:
        return "pressure", "Ready, under %s" % ", ".join(observed["pressure"])
    if "HostUnreachable" in found.reasons:
        return "controller_unreachable", "Ready with a fresh heartbeat, but unreachable from the controller"
    if observed["cordoned"]:
        return "cordoned", "healthy, cordoned by %s" % observed["cordoned_by"]
    return "healthy", "healthy"


def _finish(member, category, summary, found, observed):
    healthy = not found.reasons
    if healthy != (category in HEALTHY_CATEGORIES):  # a bug in the categories above, never the input
        raise AssertionError("category %s with reasons %s" % (category, found.reasons))
    since = min(found.since) if found.since and not healthy else None
    return Verdict(name=member.name, roles=member.roles, healthy=healthy, category=category, summary=summary,
                   reasons=tuple(found.reasons), details=tuple(found.details), unhealthy_since=since,
                   observed=observed, notes=tuple(found.notes))


def _heartbeat(lease, now, options, path):
    """The kubelet's heartbeat from its Lease: renew_time, age, timeout, stale (True/False)."""
    if lease is None:
        return {"renew_time": None, "age": None, "timeout": options.heartbeat_timeout, "stale": True,
                "lease_duration_seconds": None,
                "problem": "no Lease in %s (kubelets renew one every 10 s)" % LEASE_NAMESPACE}
    duration = lease.get("lease_duration_seconds")
    if not isinstance(duration, int) or isinstance(duration, bool) or duration <= 0:
        duration = None
    timeout = options.heartbeat_timeout or duration or DEFAULT_LEASE_DURATION
    renew = timestamp(lease.get("renew_time"), "leases[%s].renew_time" % lease["name"])
    if renew is None:
        return {"renew_time": None, "age": None, "timeout": timeout, "stale": True,
                "lease_duration_seconds": duration, "problem": "the Lease %s/%s was never renewed"
                % (LEASE_NAMESPACE, lease["name"])}
    age = _age(now, renew)
    return {"renew_time": iso(renew), "age": age, "timeout": timeout, "stale": age > timeout,
            "lease_duration_seconds": duration, "problem": None}


def _observe_probes(probes, now, options):
    peers = [{"peer": peer, "latest_handshake": iso(when), "age": _age(now, when),
              "stale": None if not options.wireguard_handshake_timeout else
              (when is None or now - when > options.wireguard_handshake_timeout)}
             for peer, when in probes.wireguard_handshakes]
    return {"probes": {"given": probes.given, "reachable": probes.reachable,
                       "containerd_active": probes.containerd_active, "kubelet_active": probes.kubelet_active,
                       "containerd_state": probes.containerd_state, "kubelet_state": probes.kubelet_state,
                       "wireguard": peers}}


def _judge_wireguard(peers, options, found):
    """A node cut off from the mesh: no handshake in time with ANY of its peers. Some stale peers are a note:
    it points at those peers (or a quiet pair without PersistentKeepalive), not at this node."""
    if not peers or not options.wireguard_handshake_timeout:
        return False
    stale = [p for p in peers if p["stale"]]
    if not stale:
        return False
    ages = ", ".join("%s %s" % (p["peer"], "never" if p["age"] is None else "%d s ago" % p["age"]) for p in stale)
    if len(stale) < len(peers):
        found.notes.append("WireGuard: no handshake within %d s with %d of %d peers (%s)"
                           % (options.wireguard_handshake_timeout, len(stale), len(peers), ages))
        return False
    known = [p for p in stale if p["latest_handshake"] is not None]
    since = max((timestamp(p["latest_handshake"], "wireguard") for p in known), default=None)
    found.add("WireGuardStale", "no WireGuard handshake within %d s with any of its %d peers (%s)"
              % (options.wireguard_handshake_timeout, len(peers), ages),
              None if since is None or len(known) < len(peers) else since + options.wireguard_handshake_timeout)
    return True
