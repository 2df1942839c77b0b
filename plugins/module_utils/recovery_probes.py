# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The recovery job's glue between what the hosts say and what the modules take (playbooks/recover.yml).

Pure functions, exposed as the filters of plugins/filter/recovery.py:

- ``probes_from_output`` reads the output of the job's host probe (the script below) into the
  ``probes`` mapping of node_health's members;
- ``health_members`` builds node_health's ``members`` from the inventory's host variables;
- ``steps_from`` lists the remediation steps still to run for a node resumed at a step;
- ``recovery_summary`` turns the plan and each node's outcome into the job's closing lines.
"""

from __future__ import annotations

from .errors import BaremetalError
from .recovery_state import STEPS

# The probe the job runs on every member (ansible.builtin.shell); its sections are read back below.
# The WireGuard configuration names each peer in the comment above its PublicKey (roles/wireguard).
PROBE_SCRIPT = """\
echo "containerd=$(systemctl is-active containerd 2>/dev/null)"
echo "kubelet=$(systemctl is-active kubelet 2>/dev/null)"
echo "--- wireguard peers"
grep -E '^(# |PublicKey)' /etc/wireguard/{interface}.conf 2>/dev/null
echo "--- wireguard handshakes"
wg show {interface} latest-handshakes 2>/dev/null
true
"""

# Steps that only control planes and etcd members take, and the replacement's own.
ETCD_STEPS = ("etcd_remove",)
REPLACE_STEPS = ("fence", "replace")


class RecoveryInputError(BaremetalError):
    """Input of the recovery job that the filters cannot use (the message names the field)."""


def probe_script(interface="wg0"):
    """The host probe for WireGuard interface INTERFACE."""
    return PROBE_SCRIPT.format(interface=interface)


def _sections(stdout):
    section, out = "units", {"units": [], "wireguard peers": [], "wireguard handshakes": []}
    for line in stdout.splitlines():
        if line.startswith("--- "):
            section = line[4:].strip()
            out.setdefault(section, [])
            continue
        out.setdefault(section, []).append(line)
    return out


def _peer_keys(lines):
    """Public key -> peer name, from the comment right above each PublicKey line."""
    keys, last_comment = {}, None
    for line in lines:
        if line.startswith("# "):
            last_comment = line[2:].strip()
        elif line.startswith("PublicKey") and "=" in line and last_comment:
            keys[line.split("=", 1)[1].strip()] = last_comment
            last_comment = None
    return keys


def _handshakes(lines, names):
    out = {}
    for line in lines:
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            out[names.get(parts[0], parts[0])] = int(parts[1])
    return out


def probes_from_output(result):
    """node_health's ``probes`` from the registered result of the probe task.

    An unreachable host is ``{"reachable": False}``; a probe that failed to run (no shell, no python) says
    nothing beyond reachability. WireGuard handshakes are left out when the host has no mesh yet.
    """
    if not isinstance(result, dict):
        raise RecoveryInputError("the probe result must be a mapping (a registered task result), got %s"
                                 % type(result).__name__)
    if result.get("unreachable"):
        return {"reachable": False}
    if result.get("skipped"):
        return {"reachable": True}
    # The script always prints its sections and exits 0: anything else means it never ran on the host
    # (a connection that fails as a module error, as `docker exec` into a stopped container does).
    if result.get("rc", 0) != 0 and "containerd=" not in (result.get("stdout") or ""):
        return {"reachable": False}
    probes = {"reachable": True}
    if "stdout" not in result:
        return probes
    sections = _sections(result.get("stdout") or "")
    for line in sections["units"]:
        unit, sep, state = line.partition("=")
        if sep and unit in ("containerd", "kubelet"):
            probes[unit + "_active"] = state.strip() or "unknown"
    names = _peer_keys(sections["wireguard peers"])
    handshakes = _handshakes(sections["wireguard handshakes"], names)
    if names or handshakes:
        probes["wireguard_handshakes"] = handshakes
    return probes


def health_members(hosts, hostvars, probe_var="recover_probe"):
    """node_health's ``members`` for HOSTS: the Kubernetes nodes among them, with address, roles and probes.

    Hosts whose only role is load_balancer are not nodes and are left out. ``probe_var`` names the host
    variable that holds the registered probe result (absent: not probed).
    """
    members = []
    for name in hosts:
        hv = hostvars[name]
        roles = [role for role in (hv.get("fleet_roles") or []) if role != "load_balancer"]
        if not roles:
            continue
        member = {"name": name, "roles": roles}
        address = (hv.get("fleet_addresses") or {}).get("private")
        if address:
            member["address"] = address
        probe = hv.get(probe_var)
        if probe is not None:
            member["probes"] = probes_from_output(dict(probe))
        members.append(member)
    return members


def token_host(control_planes, hostvars, busy=(), probe_var="recover_probe"):
    """The control plane that hands out the join token in a recovery: the first of CONTROL_PLANES that is not
    BUSY (being rebuilt or replaced) and whose probe found it reachable with its kubelet active. Without
    such a one, the first not busy (the join then says why it cannot get a token)."""
    busy = set(busy or ())
    idle = [name for name in control_planes if name not in busy]
    for name in idle:
        probe = (hostvars.get(name) or {}).get(probe_var)
        if isinstance(probe, dict):
            found = probes_from_output(dict(probe))
            if found.get("reachable") and found.get("kubelet_active") in ("active", "reloading", "refreshing"):
                return name
    if idle:
        return idle[0]
    if control_planes:
        return control_planes[0]
    raise RecoveryInputError("no control plane to ask for a join token: the cluster's control-plane group is empty")


def steps_from(resume_at, roles=(), action="reprovision"):
    """The steps from RESUME_AT to the end: without the etcd steps for a node that is neither control plane nor
    etcd, and without fence and replace unless ACTION is ``replace``."""
    if resume_at not in STEPS:
        raise RecoveryInputError("unknown step %r; the steps are: %s" % (resume_at, ", ".join(STEPS)))
    if action not in ("reprovision", "replace"):
        raise RecoveryInputError("unknown action %r; the actions are: reprovision, replace" % (action,))
    steps = list(STEPS[STEPS.index(resume_at):])
    if action != "replace":
        steps = [step for step in steps if step not in REPLACE_STEPS]
    if not {"control_plane", "etcd"} & set(roles or ()):
        steps = [step for step in steps if step not in ETCD_STEPS]
    return steps


def recovery_summary(plan, outcomes):
    """The job's closing lines: the plan's buckets with their reasons, then what happened to each acted-on node.

    ``outcomes`` maps a node to ``{"outcome": "recovered"|"replaced"|"stopped", "step": ..., "error": ...,
    "seconds": ...}``.
    """
    lines = [plan.get("summary", "")] if plan.get("summary") else []
    if plan.get("halted"):
        lines.append("halted: %s" % plan.get("halted_reason", ""))
    for bucket in ("waiting", "deferred", "refused"):
        for entry in plan.get(bucket) or []:
            lines.append("%s %s: %s" % (bucket, entry.get("node", entry.get("name", "?")), entry.get("reason", "")))
    for action in plan.get("actions") or []:
        node = action.get("node")
        outcome = (outcomes or {}).get(node) or {"outcome": "planned"}  # not acted on in this run (check mode)
        what = "%s %s (%s, attempt %s)" % (outcome.get("outcome"), node, action.get("action"), action.get("attempt"))
        if outcome.get("outcome") == "stopped":
            what += ": stopped at %s: %s" % (outcome.get("step"), outcome.get("error", ""))
            if outcome.get("step") not in ("uncordon", "verify"):
                what += "; the node stays cordoned"
        elif outcome.get("outcome") == "replaced":
            what += " by %s" % outcome.get("replaced_by")
        elif outcome.get("seconds") is not None:
            what += " in %s s" % outcome["seconds"]
        lines.append(what)
    acted = {action.get("node") for action in plan.get("actions") or []}
    for node, outcome in sorted((outcomes or {}).items()):
        if node in acted or not outcome:  # the spares that replace a server
            continue
        what = "%s %s (%s)" % (outcome.get("outcome"), node, outcome.get("why", "a replacement"))
        if outcome.get("outcome") == "stopped":
            what += ": stopped at %s: %s" % (outcome.get("step"), outcome.get("error", ""))
        elif outcome.get("seconds") is not None:
            what += " in %s s" % outcome["seconds"]
        lines.append(what)
    if not lines:
        lines.append("nothing to do: every node is healthy")
    return lines
