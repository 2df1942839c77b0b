# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet model: the example loads, every validation rule names file + path + fix, fuzzing never crashes."""

from __future__ import annotations

import os

import pytest
from ansible_collections.baremetal.k8s.plugins.module_utils.fleet import (
    FleetError,
    FleetValidationError,
    hop_distance,
    load_fleet,
    parse_fleet,
)
from fleet_samples import EXAMPLE_FLEET, clone, cluster, server, small_fleet, write_fleet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SOURCE = "test-fleet.yml"


def problems(data):
    """Every error of ``data`` as (path, problem, fix); asserts the file name is in each."""
    with pytest.raises(FleetError) as info:
        parse_fleet(data, SOURCE)
    errors = info.value.errors if isinstance(info.value, FleetValidationError) else [info.value]
    for error in errors:
        assert error.file == SOURCE
        assert str(error).startswith(f"{SOURCE}: {error.path}: ")
        assert error.fix and "Fix: " in str(error)
    return [(e.path, e.problem, e.fix) for e in errors]


def only_problem(data, path, words):
    found = problems(data)
    assert [problem[0] for problem in found] == [path], found
    assert words in found[0][1], found
    return found[0]


# --------------------------------------------------------------------------- valid fleets


def test_example_fleet_loads():
    fleet = load_fleet(EXAMPLE_FLEET)
    assert list(fleet.clusters) == ["ams1-prod", "nyc1-dev"]
    assert fleet.servers["ams1-a02-s01"].location.tor == "ams1-a02-tor"
    assert fleet.servers["ams1-a01-s02"].addresses.private_network == "ams1-r1-private"
    assert fleet.servers["ams1-a03-s01"].addresses.private_network == "ams1-r2-private"  # found by CIDR
    assert fleet.cluster_of("ams1-a03-s02").name == "ams1-prod"
    assert fleet.cluster_of("ams1-a03-s03") is None  # spare
    assert fleet.clusters["ams1-prod"].roles_of("ams1-a01-s01") == ["control_plane", "etcd"]
    assert fleet.clusters["nyc1-dev"].api.port == 6443
    assert fleet.clusters["nyc1-dev"].node_prefix_length == 24
    assert fleet.servers["ams1-a03-s02"].hardware.gpu_count == 4


def test_deletion_protection():
    data = small_fleet()
    data["servers"][0]["protection"] = {"deletion": True, "reason": "holds the only replica"}
    fleet = parse_fleet(data, SOURCE)
    first, second = (fleet.servers[s["name"]] for s in data["servers"][:2])
    assert first.protection.deletion and first.protection.reason == "holds the only replica"
    assert not second.protection.deletion and second.protection.reason == ""


def test_hop_distance_follows_the_topology():
    fleet = load_fleet(EXAMPLE_FLEET)
    assert fleet.hop_distance("ams1-a01-s01", "ams1-a01-s01") == 0
    assert fleet.hop_distance("ams1-a01-s01", "ams1-a01-s02") == 1  # same rack / ToR
    assert fleet.hop_distance("ams1-a01-s01", "ams1-a02-s01") == 2  # same row
    assert fleet.hop_distance("ams1-a01-s01", "ams1-a03-s01") == 3  # same datacenter
    assert fleet.hop_distance("ams1-a01-s01", "nyc1-b01-s01") == 5  # other region
    assert hop_distance(fleet.servers["nyc1-b01-s01"], fleet.servers["nyc1-b02-s01"]) == 2


def test_json_fleet_loads(tmp_path):
    import json

    path = tmp_path / "prod.fleet.json"
    path.write_text(json.dumps(small_fleet()))
    assert len(load_fleet(str(path)).servers) == 6


# --------------------------------------------------------------------------- the validation cases of the issue


def test_duplicate_server_name():
    data = small_fleet()
    data["servers"][4]["name"] = "s01"
    found = problems(data)
    assert found[0][:2] == ("servers[4].name", "duplicate server 's01' (also servers[1])")
    assert found[1][:2] == ("clusters[0].node_groups[1].servers[1]", "unknown server 's04'")  # it really is gone


def test_duplicate_private_and_public_addresses():
    data = small_fleet()
    data["servers"][2]["addresses"]["private"] = "10.10.0.10"
    only_problem(data, "servers[2].addresses.private", "already used by s00")
    data = small_fleet()
    data["servers"][3]["addresses"]["public"] = "203.0.113.11"
    only_problem(data, "servers[3].addresses.public", "203.0.113.11 is already used by s01")


def test_unknown_rack_row_datacenter_region():
    data = small_fleet()
    data["servers"][1]["location"]["rack"] = "z99"
    fix = only_problem(data, "servers[1].location.rack", "no rack 'z99'")[2]
    assert "a01" in fix  # the fix lists the racks that exist
    data = small_fleet()
    data["servers"][2]["location"]["region"] = "mars"
    only_problem(data, "servers[2].location.region", "unknown region 'mars'")
    data = small_fleet()
    data["servers"][0]["location"]["datacenter"] = "dc9"
    only_problem(data, "servers[0].location.datacenter", "no datacenter 'dc9'")


def test_unknown_cluster_region():
    data = small_fleet()
    data["clusters"][0]["region"] = "mars"
    only_problem(data, "clusters[0].region", "unknown region 'mars'")


def test_overlapping_cidrs_inside_a_cluster():
    data = small_fleet(service_cidr="10.200.128.0/20")  # inside the pod CIDR
    only_problem(data, "clusters[0].service_cidr", "overlaps clusters[0].pod_cidr")


def test_overlapping_cidrs_between_clusters():
    data = small_fleet(servers=8, members=["s00", "s01", "s02"])
    data["clusters"].append(
        cluster("c2", ["s03", "s04", "s05"], pod_cidr="10.200.64.0/18", service_cidr="10.97.0.0/16",
                wireguard="10.202.0.0/24")
    )  # fmt: skip
    data["clusters"][1]["api"]["vip"] = "10.10.255.2"  # every cluster has its own VIP
    only_problem(data, "clusters[1].pod_cidr", "10.200.64.0/18 overlaps clusters[0].pod_cidr")


def test_overlapping_cidrs_with_host_networks():
    data = small_fleet(wireguard="10.10.200.0/24")  # inside the private host network
    only_problem(data, "clusters[0].wireguard.cidr", "overlaps networks[0].cidr")
    data = small_fleet()
    data["networks"].append({"name": "other", "cidr": "10.10.128.0/17"})
    found = problems(data)
    assert found[0][:2] == ("networks[1].cidr", "10.10.128.0/17 overlaps networks[0].cidr (10.10.0.0/16)")


def test_server_in_two_clusters():
    data = small_fleet(servers=7, members=["s00", "s01", "s02"])
    data["clusters"].append(
        cluster("c2", ["s03", "s02", "s04"], pod_cidr="10.210.0.0/16", service_cidr="10.97.0.0/16",
                wireguard="10.211.0.0/24")
    )  # fmt: skip
    data["clusters"][1]["api"]["vip"] = "10.10.255.2"  # every cluster has its own VIP
    only_problem(data, "clusters[1].node_groups[0].servers[1]", "already serves cluster c1")


def test_server_in_two_node_groups():
    data = small_fleet()
    data["clusters"][0]["node_groups"][1]["servers"].append("s00")
    only_problem(data, "clusters[0].node_groups[1].servers[3]", "already in node group control-plane")


@pytest.mark.parametrize("control_planes", [2, 4])
def test_even_etcd_count(control_planes):
    data = small_fleet(control_planes=control_planes)
    fix = only_problem(data, "clusters[0].node_groups[0]", f"{control_planes} etcd members")[2]
    assert "odd number" in fix


def test_retired_etcd_member_does_not_count():
    data = small_fleet(control_planes=4)
    data["servers"][3]["state"] = "retired"
    assert parse_fleet(data, SOURCE).clusters["c1"].members()[3] == "s03"


def test_exhausted_pod_pool():
    data = small_fleet(pod_cidr="10.200.0.0/22")  # four /24 for six nodes
    only_problem(data, "clusters[0].pod_cidr", "pool exhausted: 10.200.0.0/22 has 4 /24 prefixes for 6 nodes")


def test_exhausted_wireguard_pool():
    data = small_fleet(wireguard="10.201.0.0/29")  # 6 usable addresses: fits 6
    parse_fleet(data, SOURCE)
    data = small_fleet(servers=7, wireguard="10.201.0.0/29")
    only_problem(data, "clusters[0].wireguard.cidr", "pool exhausted: 10.201.0.0/29 has 6 addresses for 7 nodes")


def test_intent_counts_towards_the_pool():
    data = small_fleet(pod_cidr="10.200.0.0/21")  # 8 prefixes
    data["clusters"][0]["node_groups"].append({"name": "more", "roles": ["worker"], "intent": {"count": 5}})
    only_problem(data, "clusters[0].pod_cidr", "8 /24 prefixes for 11 nodes")


@pytest.mark.parametrize(
    ("mutate", "path", "words"),
    [
        (lambda d: d.pop("version"), "version", "required field is missing"),
        (lambda d: d.update(version=2), "version", "unsupported format version 2"),
        (lambda d: d.update(color="blue"), "color", "unknown field 'color'"),
        (lambda d: d["servers"][3].update(state="broken"), "servers[3].state", "invalid value 'broken'"),
        (lambda d: d["servers"][2]["hardware"].update(cores="many"), "servers[2].hardware.cores", "an integer"),
        (lambda d: d["servers"][1]["addresses"].update(private="10.10.0.300"), "servers[1].addresses.private",
         "not an IP address"),
        (lambda d: d["clusters"][0].update(pod_cidr="10.200.0.1/16"), "clusters[0].pod_cidr", "host bits set"),
        (lambda d: d["clusters"][0].update(kubernetes_version=1.36), "clusters[0].kubernetes_version",
         "invalid version"),
        (lambda d: d["clusters"][0]["node_groups"][1]["servers"].append("ghost"),
         "clusters[0].node_groups[1].servers[3]", "unknown server 'ghost'"),
        (lambda d: d["clusters"][0]["node_groups"][1].update(roles=["chef"]), "clusters[0].node_groups[1].roles[0]",
         "invalid value 'chef'"),
        (lambda d: d["clusters"][0].update(node_prefix_length=12), "clusters[0].node_prefix_length",
         "does not fit inside pod_cidr"),
        (lambda d: d["regions"].append(d["regions"][0]), "regions[1].name", "duplicate region 'eu'"),
        (lambda d: d["servers"][0].update(protection={"deletion": "yes"}), "servers[0].protection.deletion",
         "true or false"),
        (lambda d: d["servers"][0].update(protection={"reason": "db"}), "servers[0].protection.deletion",
         "required field is missing"),
        (lambda d: d["servers"][0].update(protection={"deletion": True, "until": "2027"}),
         "servers[0].protection.until", "unknown field 'until'"),
    ],
)  # fmt: skip
def test_field_errors(mutate, path, words):
    data = small_fleet()
    mutate(data)
    found = problems(data)
    assert found[0][0] == path, found
    assert words in found[0][1], found


def test_every_problem_is_reported_at_once():
    data = small_fleet()
    data["servers"][1]["location"]["rack"] = "z99"
    data["servers"][4]["hardware"]["cores"] = 0
    paths = [problem[0] for problem in problems(data)]
    # The broken servers are skipped, so the cluster naming them gets no second error.
    assert paths[:2] == ["servers[1].location.rack", "servers[4].hardware.cores"]


# --------------------------------------------------------------------------- files


def test_load_errors_name_the_file(tmp_path):
    missing = str(tmp_path / "nope.yml")
    with pytest.raises(FleetError, match="cannot read the fleet file"):
        load_fleet(missing)
    bad_yaml = tmp_path / "bad.yml"
    bad_yaml.write_text("version: 1\nservers: [\n")
    with pytest.raises(FleetError) as info:
        load_fleet(str(bad_yaml))
    assert str(info.value).startswith(f"{bad_yaml}: line ")
    latin = tmp_path / "latin.yml"
    latin.write_bytes(b"version: 1\n# caf\xe9\n")
    with pytest.raises(FleetError, match="not UTF-8"):
        load_fleet(str(latin))
    empty = tmp_path / "empty.yml"
    empty.write_text("")
    with pytest.raises(FleetError, match="the fleet file is empty"):
        load_fleet(str(empty))


def test_yaml_anchors_and_a_written_file_roundtrip(tmp_path):
    path = write_fleet(tmp_path, small_fleet())
    assert os.path.exists(path)
    assert load_fleet(path).servers["s05"].location.rack == "a03"


# --------------------------------------------------------------------------- fuzzing: never a traceback

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True), st.text(max_size=20),
    st.sampled_from(["10.0.0.0/8", "10.10.0.1", "::1", "fe80::/64", "eu", "dc1", "a01", "s01", "active", "etcd"]),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.one_of(st.text(max_size=12), st.integers()), children,
                                                        max_size=4)
    ),
    max_leaves=20,
)  # fmt: skip


def assert_clean(data):
    """parse_fleet returns a fleet or raises FleetError naming the file, a path and a fix; nothing else."""
    try:
        parse_fleet(data, SOURCE)
    except FleetError as exc:
        errors = exc.errors if isinstance(exc, FleetValidationError) else [exc]
        for error in errors:
            assert error.file == SOURCE and error.path and error.problem and error.fix
            assert str(error).startswith(SOURCE + ": ")
            assert "none are defined" not in error.fix or "(none are defined yet)" in error.fix


def _containers(data, prefix=()):
    """Every (path, container) inside ``data``, for mutation."""
    yield prefix, data
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in items:
        if isinstance(value, (dict, list)):
            yield from _containers(value, (*prefix, key))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_fuzz_arbitrary_documents(data):
    assert_clean(data)
    assert_clean({"version": 1, "servers": data})
    assert_clean({"version": 1, "clusters": [data]})


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_mutated_valid_fleet(draw):
    """Replace or delete one node anywhere inside a valid fleet."""
    data = small_fleet()
    containers = list(_containers(data))
    target = draw.draw(st.sampled_from(containers))[1]
    keys = list(target.keys()) if isinstance(target, dict) else list(range(len(target)))
    if not keys:
        return
    key = draw.draw(st.sampled_from(keys))
    if draw.draw(st.booleans()):
        target[key] = draw.draw(values)
    else:
        del target[key]
    assert_clean(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_raw_bytes(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("fuzz") / "fleet.yml"
    path.write_bytes(b"version: 1\nservers:\n" + raw)
    try:
        load_fleet(str(path))
    except FleetError as exc:
        assert exc.file == str(path) and exc.fix


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=300))
def test_fuzz_yaml_text(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "fleet.yml"
    path.write_text(text, encoding="utf-8")
    try:
        load_fleet(str(path))
    except FleetError as exc:
        assert exc.file == str(path) and exc.fix


def test_server_helper_builds_valid_servers():
    data = small_fleet(servers=3, members=[], control_planes=0)
    data["servers"].append(server(7, state="spare"))
    assert parse_fleet(data, SOURCE).servers["s07"].state == "spare"
    assert clone(data) == data
