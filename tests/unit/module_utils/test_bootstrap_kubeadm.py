# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who bootstraps, who joins in which order, who resets, and what a join needs from kubeadm's output."""

from __future__ import annotations

import pytest
from ansible_collections.baremetal.k8s.plugins.module_utils import bootstrap_kubeadm as bk

CPS = ["cp-1", "cp-2", "cp-3"]
CA_HASH = "sha256:" + "ab" * 32
KEY = "0123456789abcdef" * 4
JOIN = "kubeadm join 10.10.255.1:6443 --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash %s \n" % CA_HASH
UPLOAD = ("[upload-certs] Storing the certificates in Secret \"kubeadm-certs\" in the \"kube-system\" Namespace\n"
          "[upload-certs] Using certificate key:\n%s\n" % KEY)


def test_a_new_cluster_is_bootstrapped_by_the_first_control_plane_and_the_others_join_in_group_order():
    assert bk.bootstrap_order(CPS, [], CPS) == {"first": "cp-1", "joiners": ["cp-2", "cp-3"]}


def test_an_existing_cluster_is_joined_through_its_first_member_never_initialised_again():
    # cp-1 was rebuilt (not a member): it joins the cluster cp-2 holds.
    assert bk.bootstrap_order(CPS, ["cp-2", "cp-3"], CPS) == {"first": "cp-2", "joiners": ["cp-1"]}
    assert bk.bootstrap_order(CPS, ["cp-3"], CPS) == {"first": "cp-3", "joiners": ["cp-1", "cp-2"]}


def test_members_do_not_join_again_and_control_planes_outside_the_play_are_left_alone():
    assert bk.bootstrap_order(CPS, CPS, CPS) == {"first": "cp-1", "joiners": []}
    assert bk.bootstrap_order(CPS, ["cp-1"], ["cp-1", "cp-3"]) == {"first": "cp-1", "joiners": ["cp-3"]}


def test_the_first_control_plane_bootstraps_even_when_it_is_not_in_the_play():
    # What the Jinja did: the first of the group, whatever the play.
    assert bk.bootstrap_order(CPS, [], ["cp-2"]) == {"first": "cp-1", "joiners": ["cp-2"]}


def test_members_outside_the_group_do_not_count():
    assert bk.bootstrap_order(CPS, ["w-1"], CPS) == {"first": "cp-1", "joiners": ["cp-2", "cp-3"]}


def test_a_cluster_without_control_planes_is_an_error_naming_the_fix():
    with pytest.raises(bk.BootstrapError, match="control_plane role"):
        bk.bootstrap_order([], [], [])


def test_reset_is_done_from_the_first_other_control_plane():
    assert bk.reset_peer(CPS, "cp-1") == "cp-2"
    assert bk.reset_peer(CPS, "cp-2") == "cp-1"
    assert bk.reset_peer(CPS, "w-1") == "cp-1"
    assert bk.reset_peer(["cp-1"], "cp-1") == ""
    assert bk.reset_peer([], "w-1") == ""


def test_join_credentials_of_a_control_plane():
    assert bk.join_credentials(JOIN, UPLOAD) == {"token": "abcdef.0123456789abcdef", "ca_cert_hash": CA_HASH,
                                                 "certificate_key": KEY}


def test_join_credentials_of_a_worker_have_no_certificate_key():
    assert bk.join_credentials(JOIN) == {"token": "abcdef.0123456789abcdef", "ca_cert_hash": CA_HASH,
                                         "certificate_key": ""}


def test_the_certificate_key_is_the_last_64_hex_word():
    other = "f" * 64
    assert bk.join_credentials(JOIN, "%s\n%s\n" % (other, KEY))["certificate_key"] == KEY


@pytest.mark.parametrize("join_command", ["", "kubeadm join 10.0.0.1:6443 --token abc", "error: no admin.conf"])
def test_a_join_command_without_token_or_hash_is_an_error(join_command):
    with pytest.raises(bk.BootstrapError, match="print-join-command"):
        bk.join_credentials(join_command)


def test_upload_certs_output_without_a_key_is_an_error():
    with pytest.raises(bk.BootstrapError, match="upload-certs"):
        bk.join_credentials(JOIN, "[upload-certs] nothing here")
