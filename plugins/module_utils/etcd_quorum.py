# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""When may an etcd member be removed or added without losing quorum? Pure policy, no I/O.

Raft commits an entry (a key write, a membership change) once a majority of
the *voting* members have it: quorum(n) = n // 2 + 1. Learners replicate but
do not vote, so they count neither toward n nor toward the healthy voters.

The rules (docs/etcd.md has the table):

* Nothing is done on a cluster that has already lost quorum: etcd could not
  commit the change anyway, and the members' own view may be stale.
* The last member (or the last voter) is never removed: that destroys the
  cluster, it is not a membership change.
* A removal is allowed only if, afterwards, the healthy voters still reach the
  quorum of the smaller cluster. With 3 voters of which 1 is down, removing a
  healthy one leaves 2 voters with 1 healthy (quorum 2): refused; removing the
  down one leaves 2 healthy of 2: allowed.
* A new *voting* member counts toward n from the moment it is added, but it
  is not healthy until it has started and caught up. So it may be added only
  if the healthy voters already reach quorum(n + 1) (the classic etcd footgun:
  with 2 members of which 1 is down, adding a third makes the cluster
  unavailable). A *learner* (what kubeadm adds on a control-plane join before
  promoting it) does not vote, so adding one only needs quorum now and no
  other learner in the way (etcd allows one learner by default).

``healthy`` maps member id -> bool; a member missing from it is unhealthy.
"""

from __future__ import annotations

from dataclasses import dataclass

ETCD_MAX_LEARNERS = 1  # etcd's default --max-learners


@dataclass(frozen=True)
class Member:
    """One etcd member as the member list reports it (id as a decimal string: JSON has no uint64)."""

    id: str
    name: str = ""
    peer_urls: tuple[str, ...] = ()
    client_urls: tuple[str, ...] = ()
    is_learner: bool = False

    @property
    def label(self) -> str:
        """How messages name the member: its name, or its peer URL before it has started (no name yet)."""
        if self.name:
            return self.name
        return "unstarted member %s (%s)" % (self.id, ", ".join(self.peer_urls) or "no peer URL")


@dataclass(frozen=True)
class Decision:
    """The answer of check_remove/check_add, with the numbers it was based on."""

    allowed: bool  # the change may be made (False when refused, and when nothing needs to be done)
    needed: bool  # False: the member is not in the cluster, nothing to do
    reason: str
    voters: int = 0  # voting members now
    healthy_voters: int = 0
    voters_after: int = 0  # voting members after the change
    healthy_voters_after: int = 0  # counting a newly added member as not healthy yet
    quorum_after: int = 0

    @property
    def refused(self) -> bool:
        return self.needed and not self.allowed

    def as_dict(self) -> dict:
        return {
            "allowed": self.allowed,
            "needed": self.needed,
            "reason": self.reason,
            "voters": self.voters,
            "healthy_voters": self.healthy_voters,
            "voters_after": self.voters_after,
            "healthy_voters_after": self.healthy_voters_after,
            "quorum_after": self.quorum_after,
        }


def quorum(voters: int) -> int:
    """Votes needed to commit in a cluster of VOTERS voting members."""
    return voters // 2 + 1


def voting(members: list[Member]) -> list[Member]:
    return [m for m in members if not m.is_learner]


def healthy_count(members: list[Member], healthy: dict[str, bool]) -> int:
    return sum(1 for m in members if healthy.get(m.id, False))


def has_quorum(members: list[Member], healthy: dict[str, bool]) -> bool:
    voters = voting(members)
    return bool(voters) and healthy_count(voters, healthy) >= quorum(len(voters))


def _no_quorum_reason(members: list[Member], healthy: dict[str, bool], doing: str) -> str:
    voters = voting(members)
    return ("refusing to %s: the cluster has already lost quorum (%d of %d voting members healthy, quorum is %d); "
            "bring members back first (or restore from a snapshot)"
            % (doing, healthy_count(voters, healthy), len(voters), quorum(len(voters))))


def check_remove(members: list[Member], healthy: dict[str, bool], target: Member | None) -> Decision:
    """May TARGET be removed from MEMBERS? A target that is not a member needs nothing (idempotent)."""
    voters = voting(members)
    healthy_voters = healthy_count(voters, healthy)
    now = {"voters": len(voters), "healthy_voters": healthy_voters}
    if target is None or target.id not in {m.id for m in members}:
        label = "member" if target is None else target.label
        return Decision(False, False, "%s is not in the cluster: nothing to remove" % label,
                        voters_after=len(voters), healthy_voters_after=healthy_voters,
                        quorum_after=quorum(len(voters)), **now)
    target = next(m for m in members if m.id == target.id)  # the cluster's view (learner flag) wins
    if not has_quorum(members, healthy):
        return Decision(False, True, _no_quorum_reason(members, healthy, "remove %s" % target.label),
                        voters_after=len(voters), healthy_voters_after=healthy_voters,
                        quorum_after=quorum(len(voters)), **now)
    if len(members) == 1:
        return Decision(False, True, "refusing to remove %s: it is the last member, removing it would destroy the "
                        "cluster (that is a reset, not a membership change)" % target.label,
                        voters_after=0, quorum_after=0, **now)
    if target.is_learner:
        return Decision(True, True, "%s is a learner: it does not vote, %d of %d voting members stay healthy "
                        "(quorum %d)" % (target.label, healthy_voters, len(voters), quorum(len(voters))),
                        voters_after=len(voters), healthy_voters_after=healthy_voters,
                        quorum_after=quorum(len(voters)), **now)
    voters_after = len(voters) - 1
    healthy_after = healthy_voters - (1 if healthy.get(target.id, False) else 0)
    quorum_after = quorum(voters_after)
    after = {"voters_after": voters_after, "healthy_voters_after": healthy_after, "quorum_after": quorum_after}
    if voters_after == 0:
        return Decision(False, True, "refusing to remove %s: it is the last voting member (only learners would "
                        "remain)" % target.label, **after, **now)
    state = "healthy" if healthy.get(target.id, False) else "unhealthy"
    if healthy_after < quorum_after:
        return Decision(False, True, "refusing to remove %s member %s: %d voting members would remain, of which "
                        "only %d healthy, below the quorum of %d; %d of %d voting members are healthy now"
                        % (state, target.label, voters_after, healthy_after, quorum_after, healthy_voters,
                           len(voters)), **after, **now)
    return Decision(True, True, "removing %s member %s leaves %d voting members, %d healthy (quorum %d)"
                    % (state, target.label, voters_after, healthy_after, quorum_after), **after, **now)


def check_add(members: list[Member], healthy: dict[str, bool], as_learner: bool = False) -> Decision:
    """May a new member join now (before it has started, it is not healthy)?"""
    voters = voting(members)
    healthy_voters = healthy_count(voters, healthy)
    now = {"voters": len(voters), "healthy_voters": healthy_voters}
    if not has_quorum(members, healthy):
        return Decision(False, True, _no_quorum_reason(members, healthy, "add a member"),
                        voters_after=len(voters) + (0 if as_learner else 1), healthy_voters_after=healthy_voters,
                        quorum_after=quorum(len(voters) + (0 if as_learner else 1)), **now)
    if as_learner:
        learners = [m for m in members if m.is_learner]
        after = {"voters_after": len(voters), "healthy_voters_after": healthy_voters,
                 "quorum_after": quorum(len(voters))}
        if len(learners) >= ETCD_MAX_LEARNERS:
            return Decision(False, True, "refusing to add a learner: %s is already a learner (a join in progress or "
                            "one that failed before promotion; remove it or let it finish)"
                            % ", ".join(m.label for m in learners), **after, **now)
        return Decision(True, True, "a learner does not vote: %d of %d voting members healthy (quorum %d) and it "
                        "is promoted only once started" % (healthy_voters, len(voters), quorum(len(voters))),
                        **after, **now)
    voters_after = len(voters) + 1
    quorum_after = quorum(voters_after)
    after = {"voters_after": voters_after, "healthy_voters_after": healthy_voters, "quorum_after": quorum_after}
    if healthy_voters < quorum_after:
        return Decision(False, True, "refusing to add a voting member: until it has started there would be %d "
                        "voting members of which %d healthy, below the quorum of %d (add it as a learner, or bring "
                        "the unhealthy members back first)" % (voters_after, healthy_voters, quorum_after),
                        **after, **now)
    return Decision(True, True, "adding a voting member: %d voting members of which %d healthy even before it "
                    "starts (quorum %d)" % (voters_after, healthy_voters, quorum_after), **after, **now)


def find_member(members: list[Member], name: str | None = None, peer_url: str | None = None) -> Member | None:
    """The member named NAME, or with PEER_URL among its peer URLs; None when absent.

    Raises ValueError when two members match (two members with one name: the
    caller must say which one by peer URL).
    """
    if peer_url is not None:
        wanted = peer_url.rstrip("/")
        found = [m for m in members if wanted in (u.rstrip("/") for u in m.peer_urls)]
        what = "peer URL %s" % peer_url
    else:
        found = [m for m in members if m.name == name]
        what = "name %s" % name
    if len(found) > 1:
        raise ValueError("%d members have the %s (%s): name the member by its peer_url instead"
                         % (len(found), what, ", ".join("%s %s" % (m.id, list(m.peer_urls)) for m in found)))
    return found[0] if found else None


def assess(members: list[Member], healthy: dict[str, bool]) -> dict:
    """The cluster's quorum numbers and what may be done now (etcd_info's summary)."""
    voters = voting(members)
    healthy_voters = healthy_count(voters, healthy)
    removals = {m.id: check_remove(members, healthy, m) for m in members}
    refused = [removals[m.id] for m in voters if not removals[m.id].allowed]
    add = check_add(members, healthy)
    add_learner = check_add(members, healthy, as_learner=True)
    if not voters:
        remove_reason = "the cluster has no voting member"
    elif refused:
        remove_reason = refused[0].reason
    else:
        remove_reason = "any one voting member may be removed: %d of %d healthy, quorum %d" % (
            healthy_voters, len(voters), quorum(len(voters)))
    return {
        "member_count": len(members),
        "voting_members": len(voters),
        "learners": len(members) - len(voters),
        "quorum": quorum(len(voters)) if voters else 0,
        "healthy_voters": healthy_voters,
        "has_quorum": has_quorum(members, healthy),
        # How many more healthy voting members may fail before quorum is lost (0 when already lost).
        "fault_tolerance": max(healthy_voters - quorum(len(voters)), 0) if voters else 0,
        # Worst case: ANY one voting member, healthy or not, may be taken out.
        "safe_to_remove_one": bool(voters) and not refused,
        "remove_reason": remove_reason,
        "removable": [m.label for m in members if removals[m.id].allowed],
        "safe_to_add": add.allowed,
        "add_reason": add.reason,
        "safe_to_add_learner": add_learner.allowed,
        "add_learner_reason": add_learner.reason,
        "removals": removals,
    }
