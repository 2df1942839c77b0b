# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Recovery state (module_utils/recovery_state.py): the lock with a TTL and resumable node progress."""

from __future__ import annotations

import copy

import pytest
from ansible_collections.baremetal.k8s.plugins.module_utils import recovery_state as rs
from ansible_collections.baremetal.k8s.plugins.module_utils.fleet import parse_fleet
from ansible_collections.baremetal.k8s.plugins.module_utils.ledger_store import RECOVERY, FileStore
from fleet_samples import small_fleet
from hypothesis import given
from hypothesis import strategies as st

T0 = 1_764_580_000.0


def test_a_second_run_is_refused_while_the_lock_is_live_and_changes_nothing():
    state = rs.empty_state()
    first = rs.acquire_lock(state, "job-1", now=T0, ttl=600)
    assert first.acquired and "took the lock until 2025-12-01T09:16:40Z" in first.reason
    before = copy.deepcopy(state)
    second = rs.acquire_lock(state, "job-2", now=T0 + 60, ttl=600)
    assert not second.acquired and state == before
    assert second.holder == "job-1" and second.expires == T0 + 600
    assert "locked by job-1 since 2025-12-01T09:06:40Z until 2025-12-01T09:16:40Z" in second.reason
    assert "nothing was changed" in second.reason


def test_the_holder_renews_and_an_expired_lock_is_taken_over_with_a_word():
    state = rs.empty_state()
    rs.acquire_lock(state, "job-1", now=T0, ttl=600)
    renewed = rs.acquire_lock(state, "job-1", now=T0 + 300, ttl=600)
    assert renewed.acquired and "renewed" in renewed.reason and state["lock"]["expires"] == T0 + 900
    assert state["lock"]["acquired"] == T0
    taken = rs.acquire_lock(state, "job-2", now=T0 + 901, ttl=600)
    assert taken.acquired and "took over the lock of job-1, which expired at" in taken.reason
    assert state["lock"]["holder"] == "job-2"
    assert not rs.release_lock(state, "job-1") and state["lock"]["holder"] == "job-2"  # only the holder
    assert rs.release_lock(state, "job-2") and state["lock"] is None


@pytest.mark.parametrize(("holder", "ttl", "words"), [("", 60, "holder is empty"), ("j", 0, "ttl 0"),
                                                      ("j", True, "ttl True"), ("j", "60", "ttl '60'")])
def test_bad_lock_arguments_name_the_field(holder, ttl, words):
    with pytest.raises(rs.RecoveryStateError, match=words) as caught:
        rs.acquire_lock(rs.empty_state(), holder, now=T0, ttl=ttl)
    assert caught.value.fix


def test_a_run_that_died_mid_drain_is_resumed_at_its_step_with_the_same_attempt():
    state = rs.empty_state()
    assert rs.resume_step(state, "w1") == "cordon"
    rs.begin_step(state, "w1", "cordon", now=T0, cluster="c1", first_unhealthy=T0 - 400)
    rs.begin_step(state, "w1", "drain", now=T0 + 5)
    # ... the run is killed here. The next run:
    assert rs.in_flight(state) == ["w1"]
    assert rs.resume_step(state, "w1") == "drain"
    rs.begin_step(state, "w1", "drain", now=T0 + 300)
    assert state["nodes"]["w1"]["attempts"] == 1 and state["nodes"]["w1"]["first_unhealthy"] == T0 - 400
    for step in rs.STEPS[2:]:
        rs.begin_step(state, "w1", step, now=T0 + 400)
    rs.finish(state, "w1", now=T0 + 500)
    entry = state["nodes"]["w1"]
    assert entry["status"] == "done" and entry["step"] is None and entry["last_outcome"] == "recovered"
    assert rs.in_flight(state) == [] and rs.resume_step(state, "w1") == "cordon"


def test_a_failed_step_keeps_the_error_counts_attempts_and_escalates_past_the_limit():
    state = rs.empty_state()
    for attempt in (1, 2, 3):
        rs.begin_step(state, "w1", "cordon", now=T0 + attempt)
        rs.begin_step(state, "w1", "rejoin", now=T0 + attempt)
        rs.fail_step(state, "w1", "rejoin", "kubeadm join timed out", now=T0 + attempt)
        assert state["nodes"]["w1"]["attempts"] == attempt
        assert rs.past_retry_limit(state, "w1", 3) is (attempt == 3)
    entry = state["nodes"]["w1"]
    assert entry["error"] == "kubeadm join timed out" and entry["last_outcome"].startswith("failed at rejoin")
    assert rs.resume_step(state, "w1") == "rejoin" and rs.in_flight(state) == ["w1"]


def test_malformed_state_is_a_clear_error():
    for state, words in (([], "not a version 1"), ({"version": 2}, "not a version 1"),
                         ({"lock": {"holder": 3}}, "lock is malformed"),
                         ({"nodes": {"w1": {"step": "dance"}}}, "step 'dance'")):
        with pytest.raises(rs.RecoveryStateError, match=words) as caught:
            rs.check_state(state, "recovery.json")
        assert str(caught.value).startswith("recovery.json") and caught.value.fix
    with pytest.raises(rs.RecoveryStateError, match="unknown step 'dance'"):
        rs.begin_step(rs.empty_state(), "w1", "dance", now=T0)
    with pytest.raises(rs.RecoveryStateError, match="no recovery is recorded for w1"):
        rs.finish(rs.empty_state(), "w1", now=T0)


def test_the_state_lives_in_the_ledger_store(tmp_path):
    store = FileStore(str(tmp_path / "fleet.recovery.json"), kind=RECOVERY)
    assert store.read() == rs.empty_state()
    decision = {}

    def lock(state):
        decision["d"] = rs.acquire_lock(rs.check_state(state), "job-1", now=T0, ttl=60)
        return decision["d"].acquired

    store.update(lock)
    assert store.read()["lock"]["holder"] == "job-1"
    store.update(lambda state: rs.acquire_lock(state, "job-2", now=T0 + 1, ttl=60).acquired)
    assert store.read()["lock"]["holder"] == "job-1"  # refused: nothing written


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.floats(0, 3000), st.integers(1, 900)),
                max_size=30))
def test_at_most_one_live_holder_at_any_time(calls):
    """Whatever the order of attempts, a lock is never granted while another holder's is live."""
    state = rs.empty_state()
    now = T0
    for holder, step, ttl in calls:
        now += step
        live = state["lock"] if state["lock"] and state["lock"]["expires"] > now else None
        decision = rs.acquire_lock(state, holder, now=now, ttl=ttl)
        assert decision.acquired is (live is None or live["holder"] == holder)
        assert state["lock"]["holder"] == (holder if decision.acquired else live["holder"])


def test_marks_apply_over_the_fleet_file_failed_first():
    fleet = parse_fleet(small_fleet(), "fleet.yml")
    state = rs.empty_state()
    rs.mark_maintenance(state, "s01", "firmware", now=T0, by="job")
    rs.mark_maintenance(state, "s02", "firmware", now=T0, by="job")
    rs.mark_failed(state, "s02", "gone", now=T0)
    rs.mark_maintenance(state, "nope", "firmware", now=T0, by="job")
    warnings = rs.apply_marks(fleet, state)
    assert (fleet.servers["s01"].state, fleet.servers["s01"].state_reason) == ("maintenance", "firmware")
    assert fleet.servers["s02"].state == "failed"
    assert warnings == ["recovery state: nope is marked maintenance but the fleet file has no such server; clear "
                        "the mark (recovery_state action=clear_maintenance)"]
    with pytest.raises(rs.RecoveryStateError, match="needs a reason"):
        rs.mark_maintenance(state, "s01", "  ", now=T0, by="job")
