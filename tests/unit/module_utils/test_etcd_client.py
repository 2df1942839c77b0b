# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""L0: etcd_info's result (etcd_client.cluster_facts) over a fake v3 gateway: the alarms and the database quota
it added, and that every value it returned before is still there. The real etcd is tests/integration's."""

from __future__ import annotations

from ansible_collections.baremetal.k8s.plugins.module_utils import etcd_client as ec

MEMBERS = {"header": {"cluster_id": "77"}, "members": [
    {"ID": "1", "name": "cp1", "peerURLs": ["https://10.0.0.11:2380"], "clientURLs": ["https://10.0.0.11:2379"]},
    {"ID": "2", "name": "cp2", "peerURLs": ["https://10.0.0.12:2380"], "clientURLs": ["https://10.0.0.12:2379"]},
    {"ID": "3", "name": "cp3", "peerURLs": ["https://10.0.0.13:2380"], "clientURLs": ["https://10.0.0.13:2379"]}]}


class FakeEtcd(ec.EtcdClient):
    """Answers from a table by path; a member in DOWN does not answer."""

    def __init__(self, alarms=None, quota=True, down=(), alarm_error=None):
        super().__init__(["https://127.0.0.1:2379"], ca_cert=None, client_cert=None, client_key=None, timeout=1)
        self.alarms_answer = {"header": {}, "alarms": alarms} if alarms else {"header": {}}
        self.quota, self.down, self.alarm_error = quota, set(down), alarm_error
        self.asked = []

    def _request(self, url, body=None, timeout=None):
        self.asked.append(url)
        host = url.split("//", 1)[1].split(":", 1)[0]
        if host in self.down:
            raise ec.EtcdError("cannot reach etcd at %s: timed out" % url)
        if url.endswith("/v3/cluster/member/list"):
            return MEMBERS
        if url.endswith("/v3/maintenance/alarm"):
            assert body == {"action": "GET"}
            if self.alarm_error:
                raise ec.EtcdError(self.alarm_error)
            return self.alarms_answer
        if url.endswith("/v3/maintenance/status"):
            status = {"version": "3.6.16", "dbSize": "3133440", "leader": "1", "raftIndex": "5400"}
            if self.quota:
                status["dbSizeQuota"] = "2147483648"
            return status
        if url.endswith("/health"):
            return {"health": "true"}
        raise AssertionError(url)


def test_no_alarms_and_the_quota_of_each_member():
    facts = ec.cluster_facts(FakeEtcd())
    assert facts["alarms"] == [] and facts["alarms_error"] == ""
    assert [m["db_size_quota"] for m in facts["members"]] == [2147483648] * 3
    # What etcd_info returned before is unchanged.
    assert facts["leader"] == "cp1" and facts["has_quorum"] and facts["endpoint"] == "https://127.0.0.1:2379"
    assert facts["members"][0]["db_size"] == 3133440 and facts["members"][0]["raft_index"] == 5400
    assert {"quorum", "healthy_voters", "fault_tolerance", "safe_to_remove_one", "removable", "safe_to_add",
            "safe_to_add_learner", "cluster_id", "member_count", "voting_members", "learners"} <= set(facts)


def test_alarms_name_their_member():
    facts = ec.cluster_facts(FakeEtcd(alarms=[{"memberID": "2", "alarm": "NOSPACE"}]))
    assert facts["alarms"] == [{"member_id": "2", "alarm": "NOSPACE", "member_name": "cp2"}]


def test_an_etcd_that_does_not_report_its_quota():
    facts = ec.cluster_facts(FakeEtcd(quota=False))
    assert [m["db_size_quota"] for m in facts["members"]] == [None] * 3


def test_alarms_that_cannot_be_read_do_not_fail_the_report():
    facts = ec.cluster_facts(FakeEtcd(alarm_error="https://127.0.0.1:2379 answered HTTP 500: boom"))
    assert facts["alarms"] is None and "boom" in facts["alarms_error"] and facts["members"]


def test_without_quorum_the_alarms_are_not_asked():
    client = FakeEtcd(down={"10.0.0.12", "10.0.0.13"})
    facts = ec.cluster_facts(client)
    assert not facts["has_quorum"]
    assert facts["alarms"] is None and facts["alarms_error"] == "not asked: etcd has no quorum"
    assert not [url for url in client.asked if url.endswith("/alarm")]
