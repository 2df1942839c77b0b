# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Level 1 placement: physical servers to clusters' node groups.

For each node group with an intent, in a fixed order (etcd groups first, then
groups asking for scarce hardware, then by name):

1. keep what is already placed (pinned servers from the fleet file, the
   ledger's assignments), releasing failed, retired, vanished or replaced
   servers and any surplus (``Reconciler``);
2. filter the free servers of the cluster's region through the hard
   constraints, counting how many are left after each filter (the funnel);
3. pick the missing servers one at a time (``GroupFiller``). Failure-domain caps
   (the intent's max_share_per_domain, etcd quorum, the cluster's blast radius)
   exclude a candidate; the rest are ranked by, in order: inside the cluster's
   home datacenter (where most of its nodes are; unless the group spreads over
   datacenters), members of the group already in the candidate's failure
   domain (spread), reuse (served this group, then this cluster, before),
   hops to the group's peers (locality), best fit (least hardware above the
   minimum), name. So a group spreads evenly over the racks of one
   datacenter and only overflows to another when those racks are at a cap;
4. check the whole plan against the blast-radius limits (``check_blast_radius``).

``Membership`` is the state all steps share: who serves which group, and the
counts per failure domain and per peer location that the caps and the ranking
read. ``ServerReport`` collects what was decided and why.

Candidates in one rack share every rack-level key, so each rack keeps its
candidates sorted by (reuse, fit, name) and a pick compares one head per rack:
a pick costs O(racks), not O(servers).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ansible_collections.baremetal.k8s.plugins.module_utils.placement.filters import (
    fit_key,
    hard_filters,
    unmet_constraints,
)
from ansible_collections.baremetal.k8s.plugins.module_utils.placement.ledger import Ledger
from ansible_collections.baremetal.k8s.plugins.module_utils.placement.locality import PeerCounter, peer_keys
from ansible_collections.baremetal.k8s.plugins.module_utils.placement.model import (
    HISTORY_DEPTH,
    Candidate,
    GroupRequest,
    Location,
    PlacementOptions,
    etcd_quorum_cap,
    share_cap,
)
from ansible_collections.baremetal.k8s.plugins.module_utils.vocabulary import (
    FAILURE_DOMAIN_LEVELS,
    PLACEABLE_STATES,
    RELEASED_STATES,
)

__all__ = ["ServerPlacer", "ServerPlan", "place_servers"]

REUSE_WHY = {0: "served this group before", 1: "served this cluster before", 2: "fresh server"}


@dataclass
class ServerPlan:
    assignments: dict[str, tuple[str, str]]  # the ledger's servers: engine-placed only
    history: dict[str, list[str]]
    members: dict[str, list[str]]  # "cluster/group" -> pinned + placed servers, sorted
    explanations: list[dict]
    changes: list[dict]
    drift: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def group_priority(group: GroupRequest) -> tuple:
    """etcd first (quorum spread is the hardest), then scarce hardware, then by name."""
    scarce = group.has_intent and bool(group.intent.gpus or group.intent.dedicated)
    return (not group.is_etcd, not scarce, group.key)


def bump(counter: Counter, location: Location, delta: int) -> None:
    for level in FAILURE_DOMAIN_LEVELS:
        counter[location.domain(level)] += delta


class Membership:
    """Who serves which group, and the counts per failure domain and peer location the caps and ranking read."""

    def __init__(self, groups: dict[str, GroupRequest]):
        self.owner: dict[str, str] = {}  # server -> group key, for every member
        self.engine_owned: set[str] = set()  # members the ledger records (not pinned)
        self.members: dict[str, list[str]] = {key: [] for key in groups}
        self.group_domains: dict[str, Counter] = {key: Counter() for key in groups}
        self.group_peers: dict[str, PeerCounter] = {key: PeerCounter() for key in groups}
        self.cluster_peers: dict[str, PeerCounter] = {}
        self.cluster_domains: dict[str, Counter] = {}
        self.etcd_domains: dict[str, Counter] = {}
        self.cluster_total: Counter = Counter()  # the clusters' target sizes
        self.etcd_total: Counter = Counter()
        self._keys: dict[str, tuple] = {}  # server -> peer_keys of its location
        for group in groups.values():
            self.cluster_peers.setdefault(group.cluster, PeerCounter())
            self.cluster_domains.setdefault(group.cluster, Counter())
            self.etcd_domains.setdefault(group.cluster, Counter())
            self.cluster_total[group.cluster] += group.target
            if group.is_etcd:
                self.etcd_total[group.cluster] += group.target

    def peer_keys(self, server: Candidate) -> tuple:
        keys = self._keys.get(server.name)
        if keys is None:
            keys = self._keys[server.name] = peer_keys(server.location)
        return keys

    def add(self, group: GroupRequest, server: Candidate, engine: bool) -> None:
        self.owner[server.name] = group.key
        if engine:
            self.engine_owned.add(server.name)
        self.members[group.key].append(server.name)
        self._count(group, server, 1)

    def remove(self, group: GroupRequest, server: Candidate) -> None:
        del self.owner[server.name]
        self.engine_owned.discard(server.name)
        self.members[group.key].remove(server.name)
        self._count(group, server, -1)

    def _count(self, group: GroupRequest, server: Candidate, delta: int) -> None:
        location = server.location
        bump(self.group_domains[group.key], location, delta)
        bump(self.cluster_domains[group.cluster], location, delta)
        if group.is_etcd:
            bump(self.etcd_domains[group.cluster], location, delta)
        keys = self.peer_keys(server)
        self.group_peers[group.key].add_keys(keys, delta)
        self.cluster_peers[group.cluster].add_keys(keys, delta)


class ServerReport:
    """What level 1 decided and why: per-group explanations, release reasons, drift, warnings, failures."""

    def __init__(self, groups: dict[str, GroupRequest]):
        self.explanations: dict[str, dict] = {
            key: {
                "group": key,
                "cluster": g.cluster,
                "status": "ok" if g.has_intent else "no intent",
                "target": g.target,
                "pinned": [],
                "kept": [],
                "placed": [],
                "released": [],
                "funnel": [],
            }
            for key, g in groups.items()
        }
        self.release_reason: dict[str, str] = {}
        self.placed_why: dict[str, list[str]] = {}
        self.drift: list[str] = []
        self.warnings: list[str] = []
        self.failures: list[str] = []

    def release(self, server: str, key: str, reason: str) -> None:
        self.release_reason[server] = reason
        if key in self.explanations:
            self.explanations[key]["released"].append({"server": server, "reason": reason})

    def fail(self, group: GroupRequest, reason: str, steps: list[dict]) -> None:
        explanation = self.explanations[group.key]
        explanation["status"] = "unsatisfiable"
        explanation["reason"] = reason
        explanation["placed"] = []
        funnel = " -> ".join("%s: %d" % (s["filter"], s["left"]) for s in steps)
        self.failures.append("%s: unsatisfiable: %s (funnel: %s)" % (group.key, reason, funnel))


class Reconciler:
    """Step 1: what stays. Pinned servers and the ledger's assignments become members unless they are stale;
    then groups over their count shed engine-placed members from their most crowded domain."""

    def __init__(self, candidates, groups, ledger: Ledger, options: PlacementOptions, *, membership: Membership,
                 report: ServerReport):
        self.candidates: dict[str, Candidate] = candidates
        self.groups: dict[str, GroupRequest] = groups
        self.ledger = ledger
        self.options = options
        self.replace = set(options.replace)
        self.membership = membership
        self.report = report
        self.previous: dict[str, str] = {}  # rebalance: server -> group it served until now

    def run(self) -> dict[str, str]:
        """Reconcile; return the rebalanced servers' previous groups (ranked first for them again)."""
        for group in self.groups.values():
            self.keep_pinned(group)
        for name, (cluster, group_name) in sorted(self.ledger.servers.items()):
            self.keep_placed(name, "%s/%s" % (cluster, group_name))
        for group in self.groups.values():
            self.release_surplus(group)
        return self.previous

    def keep_pinned(self, group: GroupRequest) -> None:
        report, owner = self.report, self.membership.owner
        for name in group.pinned:
            server = self.candidates.get(name)
            if server is None:
                report.warnings.append("%s: pinned server %s is not in the fleet" % (group.key, name))
            elif name in owner:
                report.warnings.append("%s: pinned server %s already serves %s" % (group.key, name, owner[name]))
            elif server.state in RELEASED_STATES or name in self.replace:
                why = "marked for replacement" if name in self.replace else "in state %s" % server.state
                fill = "the intent's count is filled from free servers" if group.has_intent else (
                    "the group has no intent, so nothing replaces it")
                report.warnings.append(
                    "%s: pinned server %s is %s and not counted (%s); remove it from the node group's "
                    "servers in the fleet file" % (group.key, name, why, fill)
                )
                report.explanations[group.key]["released"].append({"server": name, "reason": why})
            else:
                self.membership.add(group, server, engine=False)
                report.explanations[group.key]["pinned"].append(name)

    def keep_placed(self, name: str, key: str) -> None:
        reason = self.stale_reason(name, key)
        if reason:
            self.report.release(name, key, reason)
            return
        group, server = self.groups[key], self.candidates[name]  # stale_reason: the group has an intent
        if self.options.rebalance:
            # Re-placed below like everything else, but ranked first as "served this group before".
            self.previous[name] = key
            return
        unmet = unmet_constraints(group.intent, server)
        if unmet:
            self.report.warnings.append(
                "%s: %s kept although it no longer meets %s; rebalance=true moves it" % (key, name, ", ".join(unmet))
            )
        self.membership.add(group, server, engine=True)
        self.report.explanations[key]["kept"].append(name)

    def stale_reason(self, name: str, key: str) -> str:
        server, group = self.candidates.get(name), self.groups.get(key)
        drift, owner = self.report.drift, self.membership.owner
        if server is None:
            drift.append("ledger: %s is no longer in the fleet; released from %s" % (name, key))
            return "server no longer in the fleet"
        if group is None or not group.has_intent:
            drift.append("ledger: %s has no intent in the fleet any more; %s released" % (key, name))
            return "node group has no intent any more"
        if name in owner:
            drift.append("ledger: %s is pinned to %s in the fleet file; ledger entry dropped" % (name, owner[name]))
            return "pinned to %s in the fleet file" % owner[name]
        if server.state in RELEASED_STATES:
            return "server is %s" % server.state
        if name in self.replace:
            return "replacement requested"
        if server.location.region != group.region:
            return "server is not in region %s" % group.region
        return ""

    def release_surplus(self, group: GroupRequest) -> None:
        """Shrink a group to its count: drop engine-placed members from its most crowded domain."""
        # Only a group with an intent has engine-placed members (stale_reason releases the others).
        membership = self.membership
        members = membership.members[group.key]
        while len(members) > group.target:
            removable = [n for n in members if n in membership.engine_owned]
            if not removable:
                self.report.warnings.append(
                    "%s: the fleet file pins %d servers, more than the intent's count %d"
                    % (group.key, len(members), group.target)
                )
                return
            domains = membership.group_domains[group.key]
            spread = group.intent.spread
            victim = max(removable, key=lambda n: (domains[self.candidates[n].location.domain(spread)], n))
            membership.remove(group, self.candidates[victim])
            self.report.explanations[group.key]["kept"].remove(victim)
            self.report.release(victim, group.key, "surplus: count is %d" % group.target)


class GroupFiller:
    """Steps 2 and 3 for the groups with an intent: the funnel of free servers, then one pick at a time under
    the failure-domain caps, ranked (see the module docstring)."""

    def __init__(self, by_region: dict[str, list[Candidate]], ledger: Ledger, options: PlacementOptions, *,
                 membership: Membership, report: ServerReport, previous: dict[str, str]):
        self.by_region = by_region  # servers by region, sorted by name
        self.ledger = ledger
        self.options = options
        self.replace = set(options.replace)
        self.membership = membership
        self.report = report
        self.previous = previous

    def reuse_rank(self, name: str, group: GroupRequest) -> int:
        past = self.ledger.history.get(name, ())
        previous = self.previous.get(name, "")
        if previous == group.key or group.key in past:
            return 0
        prefix = group.cluster + "/"
        if previous.startswith(prefix) or any(item.startswith(prefix) for item in past):
            return 1
        return 2

    def funnel(self, group: GroupRequest) -> tuple[list[Candidate], list[dict]]:
        pool = self.by_region.get(group.region, [])
        steps = [{"filter": "servers in region %s" % group.region, "left": len(pool)}]
        pool = [c for c in pool if c.state in PLACEABLE_STATES]
        steps.append({"filter": "state %s" % "|".join(PLACEABLE_STATES), "left": len(pool)})
        owner = self.membership.owner
        pool = [c for c in pool if c.name not in owner and c.name not in self.replace]
        steps.append({"filter": "free (serving no other group)", "left": len(pool)})
        for label, test in hard_filters(group.intent):
            pool = [c for c in pool if test(c)]
            steps.append({"filter": label, "left": len(pool)})
        return pool, steps

    def home_datacenter(self, group: GroupRequest, pool: list[Candidate]) -> str | None:
        """The datacenter a group fills first: where its cluster already has the most nodes, else the one with
        the most eligible servers (then by name). None when the group spreads over datacenters."""
        datacenters = Counter(server.location.datacenter for server in pool)
        if group.intent.spread == "datacenter" or len(datacenters) < 2:
            return None
        members = self.membership.cluster_domains[group.cluster]
        return max(sorted(datacenters), key=lambda dc: (members[("datacenter", dc)], datacenters[dc]))

    def fill(self, group: GroupRequest) -> None:
        """Fill a group with an intent up to its target, or record why it cannot be filled."""
        membership = self.membership
        intent = group.intent
        need = group.target - len(membership.members[group.key])
        if need <= 0:
            return
        explanation = self.report.explanations[group.key]
        pool, steps = self.funnel(group)
        explanation["funnel"] = steps
        if len(pool) < need:
            short = next(s for s in steps if s["left"] < need)
            self.report.fail(group, "needs %d more server(s) but only %d are left after '%s'"
                             % (need, short["left"], short["filter"]), steps)
            return
        buckets: dict[tuple, list] = {}
        row_density: Counter = Counter()
        for server in pool:
            entry = (self.reuse_rank(server.name, group), fit_key(intent, server), server.name, server,
                     membership.peer_keys(server))
            buckets.setdefault(server.location.domain("rack"), []).append(entry)
            row_density[server.location.domain("row")] += 1
        for entries in buckets.values():
            entries.sort(key=lambda e: e[:3])
        heads = dict.fromkeys(buckets, 0)
        racks = sorted(buckets)
        home = self.home_datacenter(group, pool)
        options = self.options
        # A share of 1 (the default) never binds: the group has fewer than its target members while placing.
        group_cap = share_cap(intent.max_share_per_domain, group.target) if intent.max_share_per_domain < 1 else None
        etcd_total = membership.etcd_total[group.cluster]
        etcd_cap = etcd_quorum_cap(etcd_total)
        cluster_total = membership.cluster_total[group.cluster]
        cluster_cap = share_cap(options.max_share_per_domain, cluster_total)
        level = options.failure_domain
        group_domains = membership.group_domains[group.key]
        cluster_domains = membership.cluster_domains[group.cluster]
        etcd_domains = membership.etcd_domains[group.cluster]
        spread_load = etcd_domains if group.is_etcd else group_domains
        placed: list[Candidate] = []
        while len(placed) < need:
            best = None
            blocked: Counter = Counter()
            peers = membership.group_peers[group.key]
            peer_kind = "group's"
            if not peers.total:
                peers, peer_kind = membership.cluster_peers[group.cluster], "cluster's"
            for rack in racks:
                entries, head = buckets[rack], heads[rack]
                if head >= len(entries):
                    continue
                reuse, fit, name, server, keys = entries[head]
                loc = server.location
                spread_domain = loc.domain(intent.spread)
                limits = []  # descriptions of the caps this pick would break
                if group_cap is not None and group_domains[spread_domain] >= group_cap:
                    blocked["intent max_share_per_domain %s: at most %d per %s"
                            % (intent.max_share_per_domain, group_cap, intent.spread)] += len(entries) - head
                    continue
                if group.is_etcd:
                    if etcd_domains[loc.domain(level)] >= 1:
                        limits.append("etcd: at most 1 member per %s" % level)
                    elif etcd_domains[spread_domain] >= etcd_cap:
                        limits.append("etcd quorum: at most %d of %d members per %s"
                                      % (etcd_cap, etcd_total, intent.spread))
                if cluster_domains[loc.domain(level)] >= cluster_cap:
                    limits.append("blast radius: at most %d of cluster %s's %d nodes per %s (max_share_per_domain %s)"
                                  % (cluster_cap, group.cluster, cluster_total, level, options.max_share_per_domain))
                if limits and not options.allow_blast_radius:
                    for limit in limits:
                        blocked[limit] += len(entries) - head
                    continue
                away = home is not None and loc.datacenter != home
                key = (len(limits), away, spread_load[spread_domain], reuse, peers.hop_sum_keys(keys),
                       -row_density[loc.domain("row")], fit, name)
                if best is None or key < best[0]:
                    best = (key, rack, server, limits)
            if best is None:
                for server in placed:
                    membership.remove(group, server)
                detail = "; ".join("%s (blocks %d)" % (k, n) for k, n in sorted(blocked.items()))
                self.report.fail(group, "placed %d of %d more server(s); every one of the %d eligible servers left "
                                 "is in a failure domain at its limit: %s. Add servers in other failure domains, or "
                                 "set allow_blast_radius=true" % (len(placed), need, len(pool) - len(placed), detail),
                                 steps)
                return
            key, rack, server, limits = best
            heads[rack] += 1
            why = self.why(group, server, key, limits=limits, peers=peers, peer_kind=peer_kind, home=home)
            membership.add(group, server, engine=True)
            placed.append(server)
            self.report.placed_why[server.name] = why
            explanation["placed"].append({"server": server.name, "why": why})
        explanation["funnel"].append({"filter": "failure-domain caps and ranking", "left": len(placed)})

    @staticmethod
    def why(group: GroupRequest, server: Candidate, key: tuple, *, limits: list[str], peers: PeerCounter,
            peer_kind: str, home: str | None) -> list[str]:
        """The ranking key of a pick, in words, in ranking order."""
        intent = group.intent
        why = [
            "%s held %d of the %s members before (least loaded with room)"
            % (server.location.describe(intent.spread), key[2], "etcd" if group.is_etcd else "group's"),
            REUSE_WHY[key[3]],
            "mean %.2f hops to the %s %d peers" % (key[4] / peers.total, peer_kind, peers.total)
            if peers.total else "no peers yet: densest row (%d eligible servers)" % -key[5],
            "%d cores, %d GB, %d GPUs: tightest fit left" % (server.cores, server.memory_gb, server.gpus),
        ]
        if home is not None:
            why.append("home datacenter %s of cluster %s" % (home, group.cluster) if not key[1] else
                       "outside home datacenter %s: its racks are at their limits" % home)
        why += ["exceeds %s (allowed by allow_blast_radius)" % limit for limit in limits]
        return why


def check_blast_radius(candidates, groups: dict[str, GroupRequest], membership: Membership,
                       options: PlacementOptions, report: ServerReport) -> None:
    """Step 4: the whole plan, pinned servers included, against the blast-radius limits of each cluster."""
    level, share = options.failure_domain, options.max_share_per_domain
    for cluster in sorted(membership.cluster_domains):
        members = [(n, g) for key, names in membership.members.items() for n in names
                   for g in (groups[key],) if g.cluster == cluster]
        cap = share_cap(share, len(members))
        per_domain: dict[tuple, list[str]] = {}
        etcd_per_domain: dict[tuple, list[str]] = {}
        for name, group in members:
            domain = candidates[name].location.domain(level)
            per_domain.setdefault(domain, []).append(name)
            if group.is_etcd:
                etcd_per_domain.setdefault(domain, []).append(name)
        problems = []
        for domain, names in sorted(per_domain.items()):
            if len(names) > cap:
                problems.append("%d of its %d nodes in %s %s (limit %d, max_share_per_domain %s): %s"
                                % (len(names), len(members), level, "/".join(domain[1:]), cap, share,
                                   ", ".join(sorted(names))))
        for domain, names in sorted(etcd_per_domain.items()):
            if len(names) > 1:
                problems.append("%d etcd members in %s %s: %s"
                                % (len(names), level, "/".join(domain[1:]), ", ".join(sorted(names))))
        for problem in problems:
            if options.allow_blast_radius:
                report.warnings.append("cluster %s: blast radius allowed: %s" % (cluster, problem))
            else:
                report.failures.append("cluster %s: blast radius refused: %s; spread the servers over more %ss "
                                       "or set allow_blast_radius=true" % (cluster, problem, level))


def ledger_changes(ledger: Ledger, assignments: dict[str, tuple[str, str]],
                   report: ServerReport) -> tuple[list[dict], dict[str, list[str]]]:
    """What moves compared with the ledger, and the history with every server's past group appended."""
    changes = []
    history = {k: list(v) for k, v in ledger.history.items()}
    for name in sorted(set(ledger.servers) | set(assignments)):
        before, after = ledger.servers.get(name), assignments.get(name)
        if before == after:
            continue
        change: dict = {"server": name}
        if before:
            change["from"] = "%s/%s" % before
            past = [item for item in history.get(name, []) if item != change["from"]]
            history[name] = [*past, change["from"]][-HISTORY_DEPTH:]
        if after:
            change["to"] = "%s/%s" % after
            change["why"] = report.placed_why.get(name, [])
        if before and after:
            change["action"] = "moved"
        else:
            change["action"] = "placed" if after else "released"
        if before:
            change["reason"] = report.release_reason.get(name, "rebalance: a better placement exists")
        changes.append(change)
    return changes, history


class ServerPlacer:
    """Level 1 from start to end: reconcile, fill the groups in priority order, check the blast radius, and
    turn the members into the ledger's assignments and the changes."""

    def __init__(self, candidates, groups, ledger: Ledger, options: PlacementOptions):
        self.candidates: dict[str, Candidate] = candidates
        self.groups: dict[str, GroupRequest] = {g.key: g for g in sorted(groups, key=lambda g: g.key)}
        self.ledger = ledger
        self.options = options
        self.membership = Membership(self.groups)
        self.report = ServerReport(self.groups)
        self.by_region: dict[str, list[Candidate]] = {}
        for server in sorted(candidates.values(), key=lambda c: c.name):
            self.by_region.setdefault(server.location.region, []).append(server)

    def run(self) -> ServerPlan:
        membership, report = self.membership, self.report
        previous = Reconciler(self.candidates, self.groups, self.ledger, self.options, membership=membership,
                              report=report).run()
        filler = GroupFiller(self.by_region, self.ledger, self.options, membership=membership, report=report,
                             previous=previous)
        for group in sorted(self.groups.values(), key=group_priority):
            if group.has_intent:
                filler.fill(group)
        if not report.failures:
            check_blast_radius(self.candidates, self.groups, membership, self.options, report)
        assignments = {}
        for name in sorted(membership.engine_owned):
            group = self.groups[membership.owner[name]]
            assignments[name] = (group.cluster, group.group)
        changes, history = ledger_changes(self.ledger, assignments, report)
        members = {key: sorted(names) for key, names in membership.members.items()}
        for key, explanation in report.explanations.items():
            explanation["members"] = members[key]
        return ServerPlan(
            assignments=assignments,
            history=history,
            members=members,
            explanations=[report.explanations[key] for key in sorted(report.explanations)],
            changes=changes,
            drift=report.drift,
            warnings=report.warnings,
            failures=report.failures,
        )


def place_servers(candidates, groups, ledger: Ledger, options: PlacementOptions) -> ServerPlan:
    return ServerPlacer(candidates, groups, ledger, options).run()
