# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host-configuration drift from check-mode results, and the roles' live comparisons (drift_host.py)."""

from __future__ import annotations

from ansible_collections.baremetal.k8s.plugins.module_utils import drift_host as dh

KEY2 = "B" * 43 + "="
KEY3 = "C" * 43 + "="


def record(result, **kw):
    args = dict(host="w1", role="baremetal.k8s.containerd", task="Write the containerd configuration", item=None,
                result=result, no_log=False)
    args.update(kw)
    return dh.record_from_result(**args)


class TestIsDrift:
    def test_a_change_in_check_mode_is_drift(self):
        assert dh.is_drift({"changed": True}, True, [])

    def test_nothing_outside_check_mode_is_drift(self):
        # fix mode and site.yml change hosts for real: those are not drift reports
        assert not dh.is_drift({"changed": True}, False, [])

    def test_a_command_that_would_run_is_drift_unless_it_never_changes_anything(self):
        would = {"changed": False, "msg": dh.WOULD_RUN}
        assert dh.is_drift(would, True, [True])
        assert dh.is_drift(would, True, [])
        assert not dh.is_drift(would, True, [False])

    def test_a_task_skipped_by_its_condition_is_not_drift(self):
        assert not dh.is_drift({"changed": False, "skip_reason": "Conditional result was False"}, True, [])


class TestRecordFromResult:
    def test_a_file_diff_gives_the_lines_wanted_and_the_lines_found(self):
        diff = {"before": "a\nSystemdCgroup = false\nc\n", "after": "a\nSystemdCgroup = true\nc\n",
                "before_header": "/etc/containerd/config.toml", "after_header": "dynamically generated"}
        rec = record({"changed": True, "diff": [diff]})
        assert rec["desired"] == "SystemdCgroup = true"
        assert rec["observed"] == "SystemdCgroup = false"

    def test_a_missing_file(self):
        rec = record({"changed": True, "diff": {"before": "", "after": "x=1\n", "before_header": "/etc/f"}})
        assert rec["desired"] == "x=1"
        assert rec["observed"].startswith("(no file)")

    def test_file_attributes(self):
        rec = record({"changed": True, "diff": {"before": {"path": "/k", "mode": "0644"},
                                                "after": {"path": "/k", "mode": "0600"}}})
        assert (rec["desired"], rec["observed"]) == ("mode: 0600", "mode: 0644")

    def test_long_diffs_are_clipped(self):
        rec = record({"changed": True, "diff": {"before": "", "after": "".join("l%d\n" % i for i in range(40))}})
        assert rec["desired"].endswith("... 34 more lines")

    def test_a_systemd_unit_shows_what_systemd_reports(self):
        rec = record({"changed": True, "status": {"ActiveState": "inactive", "UnitFileState": "enabled"},
                      "invocation": {"module_args": {"name": "haproxy", "state": "started", "enabled": True}}},
                     role="baremetal.k8s.api_lb", task="Start HAProxy and keepalived", item="haproxy")
        assert rec["desired"] == "name=haproxy, state=started, enabled=True"
        assert rec["observed"] == "ActiveState=inactive, UnitFileState=enabled"
        assert rec["item"] == "haproxy"

    def test_a_command_shows_what_it_would_run(self):
        rec = record({"changed": False, "msg": dh.WOULD_RUN,
                      "invocation": {"module_args": {"_raw_params": "swapoff --all"}}})
        assert rec["desired"] == "run: swapoff --all"
        assert rec["observed"] == "differs (the task would run)"

    def test_an_item_that_names_its_own_drift_wins(self):
        item = {"name": "net.ipv4.ip_forward", "desired": "1", "observed": "0"}
        rec = record({"changed": False, "msg": dh.WOULD_RUN}, item="net.ipv4.ip_forward", item_value=item)
        assert (rec["item"], rec["desired"], rec["observed"]) == ("net.ipv4.ip_forward", "1", "0")

    def test_no_log_results_keep_no_value_and_no_item(self):
        rec = record({"censored": "the output has been hidden"}, no_log=True, item="the-secret")
        assert rec["desired"] == rec["observed"] == dh.HIDDEN
        assert rec["item"] is None

    def test_secrets_in_a_diff_are_masked(self):
        rec = record({"changed": True, "diff": {"before": "", "after": "auth_pass s3cr3t\npassword: hunter2\n"}})
        assert "s3cr3t" not in rec["desired"]
        assert "hunter2" not in rec["desired"]


class TestLiveRows:
    def test_rows_with_and_without_an_observed_value(self):
        rows = dh.live_rows(["net.ipv4.ip_forward\tdrift\t0", "vm.swappiness\tok", "", "garbage"])
        assert rows == [{"name": "net.ipv4.ip_forward", "state": "drift", "observed": "0"},
                        {"name": "vm.swappiness", "state": "ok", "observed": None}]

    def test_live_drift_puts_the_desired_value_beside_the_observed_one(self):
        rows = dh.live_rows(["a\tdrift\t0", "b\tok", "c\tmissing"])
        assert dh.live_drift(rows, {"a": 1, "b": 2}) == [{"name": "a", "desired": 1, "observed": "0"}]


class TestWireguardLiveDrift:
    PEERS = {"node-2": {"endpoint": "10.0.0.2:51820", "allowed_ips": ["10.201.0.2/32", "10.244.2.0/24"]},
             "node-3": {"endpoint": "10.0.0.3:51820", "allowed_ips": ["10.201.0.3/32", "10.244.3.0/24"]}}
    KEYS = {"node-2": KEY2, "node-3": KEY3}
    DUMP = [KEY2 + "\t(none)\t10.0.0.2:51820\t10.201.0.2/32,10.244.2.0/24\t1700000000\t1\t2\toff",
            KEY3 + "\t(none)\t10.0.0.3:51820\t10.244.3.0/24,10.201.0.3/32\t1700000000\t1\t2\toff"]
    ROUTES = ["10.201.0.2", "10.201.0.3", "10.244.2.0/24", "10.244.3.0/24"]

    def drift(self, dump=None, routes=None):
        return dh.wireguard_live_drift(self.DUMP if dump is None else dump,
                                       self.ROUTES if routes is None else routes, self.PEERS, self.KEYS, "wg0")

    def test_a_live_interface_as_configured_has_no_drift(self):
        assert self.drift() == []

    def test_a_removed_peer_is_restored_without_a_restart(self):
        (item,) = self.drift(dump=self.DUMP[:1])
        assert item["name"] == "peer node-3" and item["observed"] == "no such peer"
        assert item["desired"] == "allowed-ips 10.201.0.3/32, 10.244.3.0/24"
        assert item["command"] == ["wg", "set", "wg0", "peer", KEY3, "endpoint", "10.0.0.3:51820",
                                   "allowed-ips", "10.201.0.3/32,10.244.3.0/24"]

    def test_a_peer_with_other_allowed_ips(self):
        dump = [self.DUMP[0], KEY3 + "\t(none)\t10.0.0.3:51820\t10.201.0.3/32\t0\t0\t0\toff"]
        (item,) = self.drift(dump=dump)
        assert item["observed"] == "allowed-ips 10.201.0.3/32"

    def test_a_peer_nobody_configured_is_removed(self):
        stranger = "D" * 43 + "="
        (item,) = self.drift(dump=[*self.DUMP, stranger + "\t(none)\t(none)\t(none)\t0\t0\t0\toff"])
        assert item["command"] == ["wg", "set", "wg0", "peer", stranger, "remove"]

    def test_missing_and_extra_routes(self):
        items = self.drift(routes=["10.201.0.2", "10.201.0.3", "10.244.3.0/24", "192.168.9.0/24"])
        assert [(i["name"], i["command"][:3]) for i in items] == [
            ("route 10.244.2.0/24", ["ip", "route", "replace"]), ("route 192.168.9.0/24", ["ip", "route", "del"])]


class TestHostDrift:
    def test_items_per_task_and_item_with_the_role_s_risk(self):
        records = [
            {"host": "w1", "role": "baremetal.k8s.host_prep", "task": "Set the kernel parameters whose live value "
             "differs", "item": "net.ipv4.ip_forward", "desired": "1", "observed": "0"},
            {"host": "lb1", "role": "baremetal.k8s.api_lb", "task": "Start HAProxy and keepalived",
             "item": "haproxy", "desired": "state=started", "observed": "ActiveState=inactive"},
            {"host": "lb1", "role": "baremetal.k8s.api_lb", "task": "Start HAProxy and keepalived",
             "item": "haproxy", "desired": "state=started", "observed": "ActiveState=inactive"},
        ]
        items = dh.host_drift(records)
        assert [(i.target, i.what, i.risk) for i in items] == [
            ("host/w1", "baremetal.k8s.host_prep: Set the kernel parameters whose live value differs "
             "(net.ipv4.ip_forward)", "medium"),
            ("host/lb1", "baremetal.k8s.api_lb: Start HAProxy and keepalived (haproxy)", "high")]
        assert items[0].action == "converge baremetal.k8s.host_prep on w1 (reconcile_mode=fix)"
