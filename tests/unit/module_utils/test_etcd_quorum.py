# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The etcd quorum policy (plugins/module_utils/etcd_quorum.py): cases and properties."""

from __future__ import annotations

import pytest
from ansible_collections.baremetal.k8s.plugins.module_utils.etcd_quorum import (
    Member,
    assess,
    check_add,
    check_remove,
    find_member,
    quorum,
)
from hypothesis import given
from hypothesis import strategies as st


def cluster(healthy_flags, learners=()):
    """Members cp-0.. (healthy_flags[i] says whether cp-i is healthy) and the health map."""
    members = [
        Member(id=str(1000 + i), name="cp-%d" % i, peer_urls=("https://10.0.0.%d:2380" % i,),
               client_urls=("https://10.0.0.%d:2379" % i,), is_learner=i in learners)
        for i in range(len(healthy_flags))
    ]
    return members, {m.id: healthy_flags[i] for i, m in enumerate(members)}


@pytest.mark.parametrize("voters, expected", [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (6, 4), (7, 4)])
def test_quorum(voters, expected):
    assert quorum(voters) == expected


def test_three_healthy_any_one_may_go():
    members, healthy = cluster([True, True, True])
    decision = check_remove(members, healthy, members[1])
    assert decision.allowed and decision.needed
    assert (decision.voters_after, decision.healthy_voters_after, decision.quorum_after) == (2, 2, 2)


def test_one_down_removing_a_healthy_member_is_refused_with_the_numbers():
    members, healthy = cluster([True, True, False])
    decision = check_remove(members, healthy, members[0])
    assert decision.refused and not decision.allowed
    assert "cp-0" in decision.reason
    assert "2 voting members would remain, of which only 1 healthy, below the quorum of 2" in decision.reason
    assert "2 of 3 voting members are healthy now" in decision.reason


def test_one_down_removing_the_down_member_is_allowed():
    members, healthy = cluster([True, True, False])
    decision = check_remove(members, healthy, members[2])
    assert decision.allowed
    assert "unhealthy member cp-2" in decision.reason
    assert (decision.voters_after, decision.healthy_voters_after) == (2, 2)


def test_not_a_member_is_a_no_op():
    members, healthy = cluster([True, True, True])
    stranger = Member(id="42", name="cp-9")
    for target in (stranger, None):
        decision = check_remove(members, healthy, target)
        assert not decision.needed and not decision.allowed and not decision.refused
        assert "not in the cluster" in decision.reason


def test_no_quorum_nothing_is_removed_even_a_down_member():
    members, healthy = cluster([True, False, False])
    for target in members:
        decision = check_remove(members, healthy, target)
        assert decision.refused
        assert "already lost quorum (1 of 3 voting members healthy, quorum is 2)" in decision.reason


def test_last_member_is_never_removed():
    members, healthy = cluster([True])
    decision = check_remove(members, healthy, members[0])
    assert decision.refused and "last member" in decision.reason


def test_last_voter_with_only_a_learner_left_is_refused():
    members, healthy = cluster([True, True], learners=(1,))
    decision = check_remove(members, healthy, members[0])
    assert decision.refused and "last voting member" in decision.reason


def test_two_members_one_down():
    members, healthy = cluster([True, False])
    # 1 of 2 healthy: quorum of 2 is 2, the cluster is already unavailable.
    assert check_remove(members, healthy, members[1]).refused
    assert not check_add(members, healthy).allowed


def test_five_members_two_down():
    members, healthy = cluster([True, True, True, False, False])
    assert check_remove(members, healthy, members[3]).allowed  # 4 left, 3 healthy, quorum 3
    assert check_remove(members, healthy, members[0]).refused  # 4 left, 2 healthy, quorum 3
    assert not check_add(members, healthy).allowed  # 6 voters, 3 healthy, quorum 4


def test_learners_do_not_count_toward_quorum():
    # 2 voters healthy + 1 learner down: quorum is that of 2 voters.
    members, healthy = cluster([True, True, False], learners=(2,))
    summary = assess(members, healthy)
    assert (summary["voting_members"], summary["learners"], summary["quorum"], summary["healthy_voters"]) == (
        2, 1, 2, 2)
    removal = check_remove(members, healthy, members[2])
    assert removal.allowed and "learner" in removal.reason
    # A healthy learner does not rescue a cluster whose voters lost quorum.
    members, healthy = cluster([True, False, True], learners=(2,))
    assert not assess(members, healthy)["has_quorum"]


def test_add_voter_footgun_two_members_one_down():
    members, healthy = cluster([True, True, False])
    decision = check_add(members, healthy)
    assert not decision.allowed
    assert "4 voting members of which 2 healthy, below the quorum of 3" in decision.reason


def test_add_voter_allowed_when_the_healthy_reach_the_new_quorum():
    members, healthy = cluster([True, True, True])
    decision = check_add(members, healthy)
    assert decision.allowed and (decision.voters_after, decision.quorum_after) == (4, 3)


def test_add_second_member_to_a_single_member_cluster():
    members, healthy = cluster([True])
    # As a voter, the cluster would stall until the new member starts (1 of 2 healthy, quorum 2) ...
    assert not check_add(members, healthy).allowed
    # ... as a learner (kubeadm's control-plane join) it is safe.
    assert check_add(members, healthy, as_learner=True).allowed


def test_add_learner_refused_when_a_learner_is_pending_or_quorum_lost():
    members, healthy = cluster([True, True, True], learners=(2,))
    decision = check_add(members, healthy, as_learner=True)
    assert not decision.allowed and "cp-2 is already a learner" in decision.reason
    members, healthy = cluster([True, False, False])
    assert "already lost quorum" in check_add(members, healthy, as_learner=True).reason


def test_unstarted_member_counts_as_an_unhealthy_voter():
    # A voter added but never started: no name, no client URL (etcd's member list says so).
    members, healthy = cluster([True, True])
    ghost = Member(id="77", peer_urls=("https://10.0.0.9:2380",))
    members.append(ghost)
    assert check_remove(members, healthy, members[0]).refused  # 2 voters left, 1 healthy
    removal = check_remove(members, healthy, ghost)
    assert removal.allowed and "unstarted member 77 (https://10.0.0.9:2380)" in removal.reason
    assert find_member(members, peer_url="https://10.0.0.9:2380/") == ghost


def test_find_member_by_name_and_ambiguity():
    members, _healthy = cluster([True, True])
    assert find_member(members, name="cp-1") == members[1]
    assert find_member(members, name="cp-7") is None
    twin = Member(id="99", name="cp-1", peer_urls=("https://10.0.0.99:2380",))
    with pytest.raises(ValueError, match=r"2 members have the name cp-1.*peer_url"):
        find_member([*members, twin], name="cp-1")


def test_assess_three_with_one_down():
    members, healthy = cluster([True, True, False])
    summary = assess(members, healthy)
    assert summary["has_quorum"] and summary["fault_tolerance"] == 0
    assert not summary["safe_to_remove_one"] and "refusing to remove healthy member" in summary["remove_reason"]
    assert summary["removable"] == ["cp-2"]
    assert not summary["safe_to_add"] and summary["safe_to_add_learner"]


def test_assess_three_healthy():
    members, healthy = cluster([True, True, True])
    summary = assess(members, healthy)
    assert summary["safe_to_remove_one"] and summary["safe_to_add"] and summary["fault_tolerance"] == 1
    assert summary["removable"] == ["cp-0", "cp-1", "cp-2"]


# --------------------------------------------------------------------------- properties


@st.composite
def clusters(draw):
    size = draw(st.integers(min_value=1, max_value=9))
    flags = draw(st.lists(st.booleans(), min_size=size, max_size=size))
    learners = draw(st.sets(st.integers(min_value=0, max_value=size - 1), max_size=2))
    return cluster(flags, learners=learners)


@given(clusters(), st.data())
def test_an_allowed_removal_never_leaves_healthy_voters_below_quorum(members_and_health, data):
    members, healthy = members_and_health
    target = data.draw(st.sampled_from(members))
    decision = check_remove(members, healthy, target)
    if decision.allowed:
        after = [m for m in members if m.id != target.id]
        voters = [m for m in after if not m.is_learner]
        assert voters, "an allowed removal never removes the last voter"
        assert sum(healthy[m.id] for m in voters) >= quorum(len(voters))
    else:
        assert decision.reason


@given(clusters(), st.booleans())
def test_an_allowed_add_never_leaves_healthy_voters_below_quorum(members_and_health, as_learner):
    members, healthy = members_and_health
    decision = check_add(members, healthy, as_learner=as_learner)
    voters = [m for m in members if not m.is_learner]
    healthy_voters = sum(healthy[m.id] for m in voters)
    if decision.allowed:
        # The new member is not healthy until it has started; a learner does not vote.
        new_voters = len(voters) + (0 if as_learner else 1)
        assert healthy_voters >= quorum(new_voters)
    # A cluster that lost quorum never gets a change.
    if voters and healthy_voters < quorum(len(voters)):
        assert not decision.allowed


@given(clusters())
def test_safe_to_remove_one_means_every_voter_is_removable(members_and_health):
    members, healthy = members_and_health
    summary = assess(members, healthy)
    voters = [m for m in members if not m.is_learner]
    if summary["safe_to_remove_one"]:
        assert all(check_remove(members, healthy, m).allowed for m in voters)
