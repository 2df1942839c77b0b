# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Level 1 placement: physical servers to clusters' node groups.

For each node group with an intent, in a fixed order (etcd groups first, then
groups asking for scarce hardware, then by name):

1. keep what is already placed (pinned servers from the fleet file, the
   ledger's assignments), releasing failed, retired, vanished or replaced
   servers and any surplus;
2. filter the free servers of the cluster's region through the hard
   constraints, counting how many are left after each filter (the funnel);
3. pick the missing servers one at a time. Failure-domain caps (the intent's
   max_share_per_domain, etcd quorum, the cluster's blast radius) exclude a
   candidate; the rest are ranked by, in order: inside the cluster's home
   datacenter (where most of its nodes are; unless the group spreads over
   datacenters), members of the group already in the candidate's failure
   domain (spread), reuse (served this group, then this cluster, before),
   hops to the group's peers (locality), best fit (least hardware above the
   minimum), name. So a group spreads evenly over the racks of one
   datacenter and only overflows to another when those racks are at a cap.

Candidates in one rack share every rack-level key, so each rack keeps its
candidates sorted by (reuse, fit, name) and a pick compares one head per rack:
a pick costs O(racks), not O(servers).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ansible_collections.baremetal.k8s.plugins.module_utils.placement import (
    HISTORY_DEPTH,
    LEVELS,
    RELEASE_STATES,
    UNRESERVED_LABELS,
    USABLE_STATES,
    Candidate,
    GroupRequest,
    Intent,
    Ledger,
    Location,
    PlacementOptions,
    etcd_quorum_cap,
    share_cap,
)

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


def hard_filters(intent: Intent) -> list[tuple[str, object]]:
    """(label, predicate) for every hard constraint of an intent, in funnel order."""
    filters = []
    if intent.min_cores:
        filters.append(("cores >= %d" % intent.min_cores, lambda c: c.cores >= intent.min_cores))
    if intent.min_memory_gb:
        filters.append(("memory_gb >= %d" % intent.min_memory_gb, lambda c: c.memory_gb >= intent.min_memory_gb))
    if intent.disk_type or intent.min_disk_gb:
        label = "a%s disk" % (" " + intent.disk_type if intent.disk_type else "")
        if intent.min_disk_gb:
            label += " >= %d GB" % intent.min_disk_gb
        filters.append((label, lambda c: c.largest_disk(intent.disk_type) >= max(intent.min_disk_gb, 1)))
    if intent.min_nic_gbps:
        filters.append(("NIC >= %d Gbps" % intent.min_nic_gbps, lambda c: c.nic_gbps >= intent.min_nic_gbps))
    if intent.gpus:
        filters.append(("gpus >= %d" % intent.gpus, lambda c: c.gpus >= intent.gpus))
    if intent.dedicated:
        filters.append(
            ("labels.workload == %s" % intent.dedicated, lambda c: c.workload_label == intent.dedicated)
        )
    else:
        # Dedicated hardware stays free for the workload type it is labelled for.
        filters.append(("not dedicated to another workload", lambda c: c.workload_label in UNRESERVED_LABELS))
    return filters


def unmet_constraints(intent: Intent, server: Candidate) -> list[str]:
    return [label for label, test in hard_filters(intent) if not test(server)]


def fit_key(intent: Intent, server: Candidate) -> tuple[int, ...]:
    """Hardware above the intent's minimum: smaller strands less capacity."""
    disk = server.largest_disk(intent.disk_type) if intent.disk_type or intent.min_disk_gb else 0
    return (
        server.gpus - intent.gpus,
        server.cores - intent.min_cores,
        server.memory_gb - intent.min_memory_gb,
        disk - intent.min_disk_gb,
        server.nic_gbps - intent.min_nic_gbps,
    )


HOP_LEVELS = ("tor", "row", "datacenter", "region")


class PeerCounter:
    """Members per ToR, row, datacenter, region: the summed hop distance of a location to all of them
    in O(1), with the same rule as fleet.hop_distance (1 same ToR, 2 same row, 3 same datacenter,
    4 same region, 5 otherwise)."""

    def __init__(self):
        self.total = 0
        self.counts: Counter = Counter()

    def add(self, location: Location, delta: int = 1) -> None:
        self.total += delta
        for level in HOP_LEVELS:
            self.counts[location.domain(level)] += delta

    def hop_sum(self, location: Location) -> int:
        tor, row, dc, region = (self.counts[location.domain(level)] for level in HOP_LEVELS)
        return tor + 2 * (row - tor) + 3 * (dc - row) + 4 * (region - dc) + 5 * (self.total - region)


def bump(counter: Counter, location: Location, delta: int) -> None:
    for level in LEVELS:
        counter[location.domain(level)] += delta


def group_priority(group: GroupRequest) -> tuple:
    """etcd first (quorum spread is the hardest), then scarce hardware, then by name."""
    scarce = group.has_intent and bool(group.intent.gpus or group.intent.dedicated)
    return (not group.is_etcd, not scarce, group.key)


class ServerPlacer:
    def __init__(self, candidates, groups, ledger: Ledger, options: PlacementOptions):
        self.candidates: dict[str, Candidate] = candidates
        self.groups: dict[str, GroupRequest] = {g.key: g for g in sorted(groups, key=lambda g: g.key)}
        self.ledger = ledger
        self.options = options
        self.replace = set(options.replace)
        self.owner: dict[str, str] = {}  # server -> group key, for every member
        self.engine_owned: set[str] = set()  # members the ledger records (not pinned)
        self.previous: dict[str, str] = {}  # rebalance: server -> group it served until now
        self.release_reason: dict[str, str] = {}
        self.placed_why: dict[str, list[str]] = {}
        self.members: dict[str, list[str]] = {key: [] for key in self.groups}
        self.group_domains: dict[str, Counter] = {key: Counter() for key in self.groups}
        self.group_peers: dict[str, PeerCounter] = {key: PeerCounter() for key in self.groups}
        self.cluster_peers: dict[str, PeerCounter] = {}
        self.cluster_domains: dict[str, Counter] = {}
        self.etcd_domains: dict[str, Counter] = {}
        self.cluster_total: Counter = Counter()
        self.etcd_total: Counter = Counter()
        for group in self.groups.values():
            self.cluster_peers.setdefault(group.cluster, PeerCounter())
            self.cluster_domains.setdefault(group.cluster, Counter())
            self.etcd_domains.setdefault(group.cluster, Counter())
            self.cluster_total[group.cluster] += group.target
            if group.is_etcd:
                self.etcd_total[group.cluster] += group.target
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
            for key, g in self.groups.items()
        }
        self.by_region: dict[str, list[Candidate]] = {}
        for server in sorted(candidates.values(), key=lambda c: c.name):
            self.by_region.setdefault(server.location.region, []).append(server)
        self.drift: list[str] = []
        self.warnings: list[str] = []
        self.failures: list[str] = []

    # -- membership bookkeeping --

    def add_member(self, group: GroupRequest, server: Candidate, engine: bool) -> None:
        self.owner[server.name] = group.key
        if engine:
            self.engine_owned.add(server.name)
        self.members[group.key].append(server.name)
        self._count(group, server.location, 1)

    def remove_member(self, group: GroupRequest, server: Candidate) -> None:
        del self.owner[server.name]
        self.engine_owned.discard(server.name)
        self.members[group.key].remove(server.name)
        self._count(group, server.location, -1)

    def _count(self, group: GroupRequest, location: Location, delta: int) -> None:
        bump(self.group_domains[group.key], location, delta)
        bump(self.cluster_domains[group.cluster], location, delta)
        if group.is_etcd:
            bump(self.etcd_domains[group.cluster], location, delta)
        self.group_peers[group.key].add(location, delta)
        self.cluster_peers[group.cluster].add(location, delta)

    def release(self, server: str, key: str, reason: str) -> None:
        self.release_reason[server] = reason
        if key in self.explanations:
            self.explanations[key]["released"].append({"server": server, "reason": reason})

    # -- step 1: what stays --

    def reconcile(self) -> None:
        for group in self.groups.values():
            for name in group.pinned:
                server = self.candidates.get(name)
                if server is None:
                    self.warnings.append("%s: pinned server %s is not in the fleet" % (group.key, name))
                elif name in self.owner:
                    self.warnings.append("%s: pinned server %s already serves %s" % (group.key, name, self.owner[name]))
                elif server.state in RELEASE_STATES or name in self.replace:
                    why = "marked for replacement" if name in self.replace else "in state %s" % server.state
                    fill = "the intent's count is filled from free servers" if group.has_intent else (
                        "the group has no intent, so nothing replaces it")
                    self.warnings.append(
                        "%s: pinned server %s is %s and not counted (%s); remove it from the node group's "
                        "servers in the fleet file" % (group.key, name, why, fill)
                    )
                    self.explanations[group.key]["released"].append({"server": name, "reason": why})
                else:
                    self.add_member(group, server, engine=False)
                    self.explanations[group.key]["pinned"].append(name)
        for name, (cluster, group_name) in sorted(self.ledger.servers.items()):
            key = "%s/%s" % (cluster, group_name)
            reason = self.stale_reason(name, key)
            if reason:
                self.release(name, key, reason)
                continue
            group, server = self.groups[key], self.candidates[name]  # stale_reason: the group has an intent
            unmet = unmet_constraints(group.intent, server)
            if self.options.rebalance:
                # Re-placed below like everything else, but ranked first as "served this group before".
                self.previous[name] = key
                continue
            if unmet:
                self.warnings.append(
                    "%s: %s kept although it no longer meets %s; rebalance=true moves it"
                    % (key, name, ", ".join(unmet))
                )
            self.add_member(group, server, engine=True)
            self.explanations[key]["kept"].append(name)
        for group in self.groups.values():
            self.release_surplus(group)

    def stale_reason(self, name: str, key: str) -> str:
        server, group = self.candidates.get(name), self.groups.get(key)
        if server is None:
            self.drift.append("ledger: %s is no longer in the fleet; released from %s" % (name, key))
            return "server no longer in the fleet"
        if group is None or not group.has_intent:
            self.drift.append("ledger: %s has no intent in the fleet any more; %s released" % (key, name))
            return "node group has no intent any more"
        if name in self.owner:
            self.drift.append(
                "ledger: %s is pinned to %s in the fleet file; ledger entry dropped" % (name, self.owner[name])
            )
            return "pinned to %s in the fleet file" % self.owner[name]
        if server.state in RELEASE_STATES:
            return "server is %s" % server.state
        if name in self.replace:
            return "replacement requested"
        if server.location.region != group.region:
            return "server is not in region %s" % group.region
        return ""

    def release_surplus(self, group: GroupRequest) -> None:
        """Shrink a group to its count: drop engine-placed members from its most crowded domain."""
        # Only a group with an intent has engine-placed members (stale_reason releases the others).
        while len(self.members[group.key]) > group.target:
            removable = [n for n in self.members[group.key] if n in self.engine_owned]
            if not removable:
                self.warnings.append(
                    "%s: the fleet file pins %d servers, more than the intent's count %d"
                    % (group.key, len(self.members[group.key]), group.target)
                )
                return
            domains = self.group_domains[group.key]
            spread = group.intent.spread
            victim = max(removable, key=lambda n: (domains[self.candidates[n].location.domain(spread)], n))
            self.remove_member(group, self.candidates[victim])
            self.explanations[group.key]["kept"].remove(victim)
            self.release(victim, group.key, "surplus: count is %d" % group.target)

    # -- steps 2 and 3: filter, then pick --

    def reuse_rank(self, name: str, group: GroupRequest) -> int:
        past = self.ledger.history.get(name, ())
        if self.previous.get(name) == group.key or group.key in past:
            return 0
        prefix = group.cluster + "/"
        previous = self.previous.get(name, "")
        if previous.startswith(prefix) or any(item.startswith(prefix) for item in past):
            return 1
        return 2

    def funnel(self, group: GroupRequest) -> tuple[list[Candidate], list[dict]]:
        pool = self.by_region.get(group.region, [])
        steps = [{"filter": "servers in region %s" % group.region, "left": len(pool)}]
        pool = [c for c in pool if c.state in USABLE_STATES]
        steps.append({"filter": "state %s" % "|".join(USABLE_STATES), "left": len(pool)})
        pool = [c for c in pool if c.name not in self.owner and c.name not in self.replace]
        steps.append({"filter": "free (serving no other group)", "left": len(pool)})
        for label, test in hard_filters(group.intent):
            pool = [c for c in pool if test(c)]
            steps.append({"filter": label, "left": len(pool)})
        return pool, steps

    def place_group(self, group: GroupRequest) -> None:
        """Fill a group with an intent up to its target."""
        intent = group.intent
        need = group.target - len(self.members[group.key])
        if need <= 0:
            return
        explanation = self.explanations[group.key]
        pool, steps = self.funnel(group)
        explanation["funnel"] = steps
        if len(pool) < need:
            short = next(s for s in steps if s["left"] < need)
            self.fail(group, "needs %d more server(s) but only %d are left after '%s'"
                      % (need, short["left"], short["filter"]), steps)
            return
        buckets: dict[tuple, list] = {}
        row_density: Counter = Counter()
        for server in pool:
            entry = (self.reuse_rank(server.name, group), fit_key(intent, server), server.name, server)
            buckets.setdefault(server.location.domain("rack"), []).append(entry)
            row_density[server.location.domain("row")] += 1
        for entries in buckets.values():
            entries.sort(key=lambda e: e[:3])
        heads = dict.fromkeys(buckets, 0)
        home = self.home_datacenter(group, pool)
        # A share of 1 (the default) never binds: the group has fewer than its target members while placing.
        group_cap = share_cap(intent.max_share_per_domain, group.target) if intent.max_share_per_domain < 1 else None
        etcd_cap = etcd_quorum_cap(self.etcd_total[group.cluster])
        cluster_cap = share_cap(self.options.max_share_per_domain, self.cluster_total[group.cluster])
        level = self.options.failure_domain
        placed: list[Candidate] = []
        while len(placed) < need:
            best = None
            blocked: Counter = Counter()
            peers = self.group_peers[group.key]
            peer_kind = "group's"
            if not peers.total:
                peers, peer_kind = self.cluster_peers[group.cluster], "cluster's"
            for rack in sorted(buckets):
                entries, head = buckets[rack], heads[rack]
                if head >= len(entries):
                    continue
                reuse, fit, name, server = entries[head]
                loc = server.location
                spread_domain = loc.domain(intent.spread)
                limits = []  # (kind, description): caps this pick would break
                if group_cap is not None and self.group_domains[group.key][spread_domain] >= group_cap:
                    blocked["intent max_share_per_domain %s: at most %d per %s"
                            % (intent.max_share_per_domain, group_cap, intent.spread)] += len(entries) - head
                    continue
                if group.is_etcd:
                    etcd = self.etcd_domains[group.cluster]
                    if etcd[loc.domain(level)] >= 1:
                        limits.append("etcd: at most 1 member per %s" % level)
                    elif etcd[spread_domain] >= etcd_cap:
                        limits.append("etcd quorum: at most %d of %d members per %s"
                                      % (etcd_cap, self.etcd_total[group.cluster], intent.spread))
                if self.cluster_domains[group.cluster][loc.domain(level)] >= cluster_cap:
                    limits.append("blast radius: at most %d of cluster %s's %d nodes per %s (max_share_per_domain %s)"
                                  % (cluster_cap, group.cluster, self.cluster_total[group.cluster], level,
                                     self.options.max_share_per_domain))
                if limits and not self.options.allow_blast_radius:
                    for limit in limits:
                        blocked[limit] += len(entries) - head
                    continue
                load = (self.etcd_domains[group.cluster] if group.is_etcd else self.group_domains[group.key])[
                    spread_domain
                ]
                away = home is not None and loc.datacenter != home
                key = (len(limits), away, load, reuse, peers.hop_sum(loc), -row_density[loc.domain("row")], fit,
                       name)
                if best is None or key < best[0]:
                    best = (key, rack, server, limits)
            if best is None:
                for server in placed:
                    self.remove_member(group, server)
                detail = "; ".join("%s (blocks %d)" % (k, n) for k, n in sorted(blocked.items()))
                self.fail(group, "placed %d of %d more server(s); every one of the %d eligible servers left is in a "
                          "failure domain at its limit: %s. Add servers in other failure domains, or set "
                          "allow_blast_radius=true" % (len(placed), need, len(pool) - len(placed), detail), steps)
                return
            key, rack, server, limits = best
            heads[rack] += 1
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
            self.add_member(group, server, engine=True)
            placed.append(server)
            self.placed_why[server.name] = why
            explanation["placed"].append({"server": server.name, "why": why})
        explanation["funnel"].append({"filter": "failure-domain caps and ranking", "left": len(placed)})

    def home_datacenter(self, group: GroupRequest, pool: list[Candidate]) -> str | None:
        """The datacenter a group fills first: where its cluster already has the most nodes, else the one with
        the most eligible servers (then by name). None when the group spreads over datacenters."""
        datacenters = Counter(server.location.datacenter for server in pool)
        if group.intent.spread == "datacenter" or len(datacenters) < 2:
            return None
        members = self.cluster_domains[group.cluster]
        return max(sorted(datacenters), key=lambda dc: (members[("datacenter", dc)], datacenters[dc]))

    def fail(self, group: GroupRequest, reason: str, steps: list[dict]) -> None:
        explanation = self.explanations[group.key]
        explanation["status"] = "unsatisfiable"
        explanation["reason"] = reason
        explanation["placed"] = []
        funnel = " -> ".join("%s: %d" % (s["filter"], s["left"]) for s in steps)
        self.failures.append("%s: unsatisfiable: %s (funnel: %s)" % (group.key, reason, funnel))

    # -- step 4: the whole plan against the blast-radius limits --

    def check_blast_radius(self) -> None:
        level, share = self.options.failure_domain, self.options.max_share_per_domain
        for cluster in sorted(self.cluster_domains):
            members = [(n, g) for key, names in self.members.items() for n in names
                       for g in (self.groups[key],) if g.cluster == cluster]
            cap = share_cap(share, len(members))
            per_domain: dict[tuple, list[str]] = {}
            etcd_per_domain: dict[tuple, list[str]] = {}
            for name, group in members:
                domain = self.candidates[name].location.domain(level)
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
                if self.options.allow_blast_radius:
                    self.warnings.append("cluster %s: blast radius allowed: %s" % (cluster, problem))
                else:
                    self.failures.append("cluster %s: blast radius refused: %s; spread the servers over more %ss "
                                         "or set allow_blast_radius=true" % (cluster, problem, level))

    # -- the result --

    def run(self) -> ServerPlan:
        self.reconcile()
        for group in sorted(self.groups.values(), key=group_priority):
            if group.has_intent:
                self.place_group(group)
        if not self.failures:
            self.check_blast_radius()
        assignments = {}
        for name in sorted(self.engine_owned):
            group = self.groups[self.owner[name]]
            assignments[name] = (group.cluster, group.group)
        changes = []
        history = {k: list(v) for k, v in self.ledger.history.items()}
        for name in sorted(set(self.ledger.servers) | set(assignments)):
            before, after = self.ledger.servers.get(name), assignments.get(name)
            if before == after:
                continue
            change: dict = {"server": name}
            if before:
                change["from"] = "%s/%s" % before
                past = [item for item in history.get(name, []) if item != change["from"]]
                history[name] = [*past, change["from"]][-HISTORY_DEPTH:]
            if after:
                change["to"] = "%s/%s" % after
                change["why"] = self.placed_why.get(name, [])
            if before and after:
                change["action"] = "moved"
            else:
                change["action"] = "placed" if after else "released"
            if before:
                change["reason"] = self.release_reason.get(name, "rebalance: a better placement exists")
            changes.append(change)
        members = {key: sorted(names) for key, names in self.members.items()}
        for key, explanation in self.explanations.items():
            explanation["members"] = members[key]
        return ServerPlan(
            assignments=assignments,
            history=history,
            members=members,
            explanations=[self.explanations[key] for key in sorted(self.explanations)],
            changes=changes,
            drift=self.drift,
            warnings=self.warnings,
            failures=self.failures,
        )


def place_servers(candidates, groups, ledger: Ledger, options: PlacementOptions) -> ServerPlan:
    return ServerPlacer(candidates, groups, ledger, options).run()
