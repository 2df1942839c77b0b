# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Certificate renewals and stale bootstrap tokens (hygiene.py), with the clock passed in."""

from __future__ import annotations

import base64

from ansible_collections.baremetal.k8s.plugins.module_utils import hygiene

NOW = 1_800_000_000.0
DAY = hygiene.DAY


def b64(text):
    return base64.b64encode(text.encode()).decode()


class TestCertsDue:
    def test_only_certificates_within_the_days_are_due_each_with_its_static_pod(self):
        lines = ["apiserver\t%d" % (NOW + 400 * DAY), "etcd-peer\t%d" % (NOW + 3 * DAY),
                 "admin.conf\t%d" % (NOW - DAY), "front-proxy-client\tmissing", "unknown\t%d" % NOW]
        due = hygiene.certs_due(lines, NOW, 30)
        assert [(d["name"], d["restart"]) for d in due] == [("etcd-peer", "etcd"), ("admin.conf", None)]
        assert due[0]["observed"] == "expires 2027-01-18T08:00:00Z (in 3.0 days)"
        assert due[1]["observed"].startswith("expired ") and due[0]["desired"] == "valid for more than 30 days"

    def test_every_kubeadm_certificate_is_probed(self):
        names = [c["name"] for c in hygiene.kubeadm_certs()]
        assert "apiserver" in names and "scheduler.conf" in names and len(names) == len(set(names))

    def test_restarts_etcd_before_the_api_server_and_each_once(self):
        due = [{"restart": "kube-apiserver"}, {"restart": None}, {"restart": "etcd"}, {"restart": "kube-apiserver"}]
        assert hygiene.restarts(due) == ["etcd", "kube-apiserver"]


class TestExpiring:
    def test_kubelet_certificates(self):
        lines = ["client\t%d" % (NOW + 10 * DAY), "serving\t%d" % (NOW + 200 * DAY)]
        (item,) = hygiene.expiring(lines, NOW, 30, {"client": "kubelet client certificate"})
        assert item["name"] == "kubelet client certificate" and item["cert"] == "client"


class TestTokensDue:
    def test_expired_and_never_expiring_tokens_are_due(self):
        lines = [b64("abcdef") + "\t" + b64("2027-01-01T00:00:00Z"),      # still valid (NOW is 2027-01-15)
                 b64("expird") + "\t" + b64("2027-01-10T00:00:00Z"),
                 b64("foreva") + "\t",
                 "not-base64!\t"]
        due = hygiene.tokens_due(lines, NOW)
        assert [(d["id"], d["observed"]) for d in due] == [("abcdef", "expired 2027-01-01T00:00:00Z"),
                                                           ("expird", "expired 2027-01-10T00:00:00Z"),
                                                           ("foreva", "never expires")]

    def test_a_token_valid_in_the_future_is_kept(self):
        assert hygiene.tokens_due([b64("abcdef") + "\t" + b64("2030-01-01T00:00:00+00:00")], NOW) == []


class TestSecretsDue:
    def test_only_files_with_a_wrong_mode_or_owner_are_due(self):
        files = [{"path": "/etc/kubernetes/pki/ca.key", "mode": "0600", "uid": 0, "gid": 0},
                 {"path": "/etc/kubernetes/admin.conf", "mode": "0644", "uid": 0, "gid": 0},
                 {"path": "/etc/wireguard/wg0.key", "mode": "0600", "uid": 1000, "gid": 0},
                 {"path": "/var/lib/kubelet/pki/kubelet.key", "mode": "0600", "uid": 0, "gid": 5}]
        assert [f["path"] for f in hygiene.secrets_due(files, "0600")] == [
            "/etc/kubernetes/admin.conf", "/etc/wireguard/wg0.key", "/var/lib/kubelet/pki/kubelet.key"]

    def test_the_mode_may_be_written_without_the_leading_zero_or_as_a_number(self):
        files = [{"path": "/k", "mode": "0600", "uid": 0, "gid": 0}]
        assert hygiene.secrets_due(files, "600") == [] and hygiene.secrets_due(files, 0o600) == []
        assert hygiene.secrets_due(files, "0400") == files
