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


def test_state_reason_says_why_and_must_be_a_sentence():
    data = small_fleet()
    data["servers"][0].update(state="maintenance", state_reason="replace DIMM B2, ticket OPS-123")
    fleet = parse_fleet(data, SOURCE)
    assert fleet.servers[data["servers"][0]["name"]].state_reason == "replace DIMM B2, ticket OPS-123"
    assert fleet.servers[data["servers"][1]["name"]].state_reason == ""
    data["servers"][1]["state_reason"] = 42
    with pytest.raises(FleetValidationError, match=r"servers\[1\]\.state_reason: state_reason must be a sentence"):
        parse_fleet(data, SOURCE)


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


# --------------------------------------------------------------------------- bad input found by new users

import json  # noqa: E402
import re  # noqa: E402
import time  # noqa: E402

import yaml  # noqa: E402
from ansible_collections.baremetal.k8s.plugins.module_utils.fleet import Intent, intent_from_mapping  # noqa: E402
from ansible_collections.baremetal.k8s.plugins.module_utils.fleet_yaml import ALIAS_LIMIT  # noqa: E402


def load_error(tmp_path, text, name="fleet.yml"):
    """The FleetError of a fleet file with ``text``; asserts the message shape."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(FleetError) as info:
        load_fleet(str(path))
    error = info.value
    assert str(error).startswith(f"{path}: ") and error.fix, str(error)
    return error


def yaml_text(data):
    return yaml.safe_dump(data, sort_keys=False)


def test_duplicate_yaml_key_at_the_top_is_an_error(tmp_path):
    text = yaml_text(small_fleet()) + "clusters: []\n"  # a trailing edit that used to drop every cluster
    lines = text.splitlines()
    first = lines.index("clusters:") + 1
    error = load_error(tmp_path, text)
    assert error.path == f"line {first} and line {len(lines)}"
    assert "key 'clusters' is written twice" in error.problem
    assert "keep one of them" in error.fix


def test_duplicate_yaml_key_inside_a_server_is_an_error(tmp_path):
    text = yaml_text(small_fleet()).replace("  state: active\n", "  state: active\n  state: retired\n", 1)
    lines = text.splitlines()
    first = lines.index("  state: active") + 1
    error = load_error(tmp_path, text)
    assert error.path == f"line {first} and line {first + 1}"
    assert "key 'state' is written twice" in error.problem


def test_duplicate_json_key_is_an_error(tmp_path):
    text = json.dumps(small_fleet(), indent=1)[:-2] + ',\n "clusters": []\n}'
    error = load_error(tmp_path, text, name="fleet.json")
    written = len(text.splitlines()) - 1  # the line before the closing brace
    assert re.fullmatch(rf"line \d+ and line {written}", error.path), error.path
    assert "key 'clusters' is written twice" in error.problem
    one_line = json.dumps(small_fleet())[:-1] + ', "version": 1}'
    error = load_error(tmp_path, one_line, name="fleet.json")
    assert error.path == f"line 1, column 2 and column {len(one_line) - 12}", error.path


def test_yaml_merge_keys_may_be_overridden(tmp_path):
    text = """\
version: 1
regions: [{name: eu, datacenters: [{name: dc1, rows: [{name: r1, racks: [{name: a01}]}]}]}]
servers:
  - &s00
    name: s00
    state: spare
    hardware: {cores: 8, memory_gb: 32}
    location: {region: eu, datacenter: dc1, row: r1, rack: a01}
    addresses: {private: 10.0.0.1}
  - <<: *s00
    name: s01
    state: active
    addresses: {private: 10.0.0.2}
"""
    path = tmp_path / "fleet.yml"
    path.write_text(text, encoding="utf-8")
    s00, s01 = load_fleet(str(path)).servers.values()
    assert (s00.state, s01.state) == ("spare", "active")  # a key written beside << overrides, it is no duplicate
    assert s01.hardware.cores == 8 and s01.addresses.private == "10.0.0.2"


def test_alias_bomb_is_refused_quickly(tmp_path):
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 8)]
    text = "version: 1\nanchors:\n" + "".join(f"  {line}\n" for line in levels)
    text += "servers:\n  - name: s00\n    connection: {ansible_host: *a7}\n"
    started = time.monotonic()
    error = load_error(tmp_path, text)
    assert time.monotonic() - started < 5
    assert re.fullmatch(r"line \d+", error.path), error.path
    assert "YAML aliases expand the document to" in error.problem
    assert f"the limit is {ALIAS_LIMIT:,}" in error.problem
    assert "fewer nested aliases" in error.fix


def test_alias_cycle_is_refused(tmp_path):
    error = load_error(tmp_path, "version: 1\nservers: &s [*s]\n")
    assert error.path == "line 2" and "refers to the block it is in" in error.problem


def test_many_small_aliases_still_load(tmp_path):
    data = small_fleet(servers=60, pod_cidr="10.200.0.0/16")
    hardware = data["servers"][0]["hardware"]
    for entry in data["servers"]:
        entry["hardware"] = hardware  # safe_dump writes one anchor and 59 aliases
    path = write_fleet(tmp_path, data)
    with open(path, encoding="utf-8") as handle:
        assert handle.read().count("*id") == 59
    assert load_fleet(path).servers["s59"].hardware.cores == 32


def test_api_vip_shared_by_two_clusters():
    data = small_fleet(servers=8, members=["s00", "s01", "s02"])
    data["clusters"].append(
        cluster("c2", ["s03", "s04", "s05"], pod_cidr="10.210.0.0/16", service_cidr="10.97.0.0/16",
                wireguard="10.211.0.0/24")
    )  # fmt: skip
    _path, problem, _fix = only_problem(data, "clusters[1].api.vip", "already the VIP of cluster c1")
    assert "clusters[0].api.vip" in problem


@pytest.mark.parametrize("kind", ["private", "public"])
def test_api_vip_that_is_a_server_address(kind):
    data = small_fleet()
    data["clusters"][0]["api"]["vip"] = data["servers"][2]["addresses"][kind]
    _path, problem, _fix = only_problem(data, "clusters[0].api.vip", "is the address of server s02")
    assert f"servers[2].addresses.{kind}" in problem


def test_addresses_inside_cluster_networks():
    data = small_fleet()
    data["clusters"][0]["api"]["vip"] = "10.96.0.1"  # the service network
    only_problem(data, "clusters[0].api.vip", "an API VIP is inside clusters[0].service_cidr")
    data = small_fleet()
    data["networks"] = []
    data["servers"][1]["addresses"]["public"] = "10.200.3.4"  # the pod network
    only_problem(data, "servers[1].addresses.public", "a server address is inside clusters[0].pod_cidr")


@pytest.mark.parametrize(
    "key",
    ["k" * 5000, "k" * 64, "-gpu", "gpu-", "a b", "Example.com/gpu", "x" * 254 + "/gpu", "example.com/", "a/b/c", ""],
)
def test_invalid_label_keys(key):
    data = small_fleet()
    data["servers"][1]["labels"] = {key: "yes"}
    path, problem, fix = problems(data)[0]
    assert path.startswith("servers[1].labels.") and len(path) < 120
    assert "invalid label key" in problem and len(problem) < 150
    assert "prefix" in fix


@pytest.mark.parametrize("value", ["v" * 64, "-a", "a b", "a/b", "é"])
def test_invalid_label_values(value):
    data = small_fleet()
    data["servers"][1]["labels"] = {"rack-pos": value}
    only_problem(data, "servers[1].labels.rack-pos", "invalid label value")


@pytest.mark.parametrize(("value", "quoted"), [(True, '"true"'), (3, '"3"'), (1.5, '"1.5"')])
def test_label_values_are_strings(value, quoted):
    data = small_fleet()
    data["servers"][1]["labels"] = {"gpu": value}
    _path, _problem, fix = only_problem(data, "servers[1].labels.gpu", "expected a string")
    assert quoted in fix


def test_valid_labels():
    data = small_fleet()
    labels = {"example.com/gpu": "a100", "topology.example.com/zone": "z1", "k" * 63: "v" * 63, "empty": "",
              "A_b.c-d": "X.y_z-0"}  # fmt: skip
    data["servers"][1]["labels"] = labels
    assert parse_fleet(data, SOURCE).servers["s01"].labels == labels


# --------------------------------------------------------------------------- node group labels and taints


def workers(data):
    return data["clusters"][0]["node_groups"][1]  # s03.. in small_fleet()


def test_node_group_labels_and_taints():
    data = small_fleet()
    workers(data)["labels"] = {"example.com/pool": "general", "workload": "general"}  # as its servers say
    workers(data)["taints"] = [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"},
                               {"key": "dedicated", "value": "gpu", "effect": "NoExecute"},  # another effect
                               {"key": "example.com/batch", "effect": "PreferNoSchedule"}]
    group = parse_fleet(data, SOURCE).clusters["c1"].node_groups[1]
    assert group.labels == {"example.com/pool": "general", "workload": "general"}
    assert [t.as_dict() for t in group.taints] == [
        {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"},
        {"key": "dedicated", "value": "gpu", "effect": "NoExecute"},
        {"key": "example.com/batch", "value": "", "effect": "PreferNoSchedule"}]
    assert parse_fleet(small_fleet(), SOURCE).clusters["c1"].node_groups[1].taints == []


def test_node_group_labels_follow_the_server_label_rules():
    data = small_fleet()
    workers(data)["labels"] = {"gpu": True}
    _path, _problem, fix = only_problem(data, "clusters[0].node_groups[1].labels.gpu", "expected a string")
    assert '"true"' in fix
    workers(data)["labels"] = {"-bad": "x"}
    only_problem(data, "clusters[0].node_groups[1].labels.-bad", "invalid label key")
    workers(data)["labels"] = ["a"]
    only_problem(data, "clusters[0].node_groups[1].labels", "labels must be a mapping")


def test_a_group_label_conflicting_with_a_server_label_names_both():
    data = small_fleet()
    workers(data)["labels"] = {"workload": "gpu"}
    found = problems(data)
    assert [p[0] for p in found] == ["clusters[0].node_groups[1].labels.workload"] * 3  # s03, s04, s05
    assert "workload='gpu' conflicts with workload='general' of server s03 (servers[3].labels.workload)" in found[0][1]
    assert "remove it from the server or the node group" in found[0][2]
    workers(data)["taints"] = [{"key": "dedicated", "effect": "Never"}]  # reported beside the conflicts
    assert len(problems(data)) == 4


def test_every_problem_of_every_taint_is_reported():
    data = small_fleet()
    workers(data)["taints"] = [
        {"key": "Bad Key", "value": "a b", "effect": "Sometimes"},
        {"key": "ok", "value": 3, "effect": "NoSchedule"},
        {"key": "dup", "effect": "NoSchedule"},
        {"key": "dup", "value": "other", "effect": "NoSchedule"},
        {"key": "x", "effect": "NoSchedule", "toleration": 5},
        {"value": "v"},
        "dedicated=gpu:NoSchedule",
    ]
    found = {(path, problem.split(" ")[0]): fix for path, problem, fix in problems(data)}
    base = "clusters[0].node_groups[1].taints"
    assert set(found) == {(f"{base}[0].key", "invalid"), (f"{base}[0].value", "invalid"),
                          (f"{base}[0].effect", "invalid"), (f"{base}[1].value", "expected"),
                          (f"{base}[3]", "taint"), (f"{base}[4].toleration", "unknown"),
                          (f"{base}[5].key", "required"), (f"{base}[6]", "expected")}
    assert "NoSchedule, PreferNoSchedule, NoExecute" in found[(f"{base}[0].effect", "invalid")]
    assert "one taint per key and effect" in found[(f"{base}[3]", "taint")]
    assert "prefix" in found[(f"{base}[0].key", "invalid")]


def test_unknown_node_group_fields_are_still_refused():
    data = small_fleet()
    workers(data)["annotations"] = {"a": "b"}
    _path, _problem, fix = only_problem(data, "clusters[0].node_groups[1].annotations", "unknown field")
    assert "labels" in fix and "taints" in fix


def _fits(fix, pod):
    """Every prefix length the fix suggests fits inside ``pod`` (a /N)."""
    example = int(re.search(r"e\.g\. (\d+)", fix).group(1))
    return pod < example <= 32


@pytest.mark.parametrize(("pod_cidr", "node_prefix"), [("10.200.0.0/30", 24), ("10.200.0.0/25", None),
                                                       ("10.200.0.0/16", 12), ("10.200.0.0/31", 31)])
def test_node_prefix_fix_always_fits(pod_cidr, node_prefix):
    data = small_fleet(servers=1, members=["s00"], control_planes=1, pod_cidr=pod_cidr)
    if node_prefix:
        data["clusters"][0]["node_prefix_length"] = node_prefix
    _path, problem, fix = only_problem(data, "clusters[0].node_prefix_length", "does not fit inside pod_cidr")
    assert ("(the default)" in problem) == (node_prefix is None)
    assert _fits(fix, int(pod_cidr.split("/")[1])), fix


def test_node_prefix_fix_for_a_single_address_pod_cidr():
    data = small_fleet(servers=1, members=["s00"], control_planes=1, pod_cidr="10.200.0.0/32")
    _path, _problem, fix = only_problem(data, "clusters[0].node_prefix_length", "does not fit")
    assert fix == "use a larger pod_cidr, such as a /16 with the default /24"


def test_exhausted_pool_fixes_name_sizes_that_fit():
    _path, _problem, fix = only_problem(small_fleet(pod_cidr="10.200.0.0/22"), "clusters[0].pod_cidr", "pool exhausted")
    assert fix == "use a pod_cidr of /21 or larger or node_prefix_length 25 (each node a smaller prefix)"
    data = small_fleet(servers=7, wireguard="10.201.0.0/29")
    _path, _problem, fix = only_problem(data, "clusters[0].wireguard.cidr", "pool exhausted")
    assert fix == "use a larger wireguard cidr: a /28 or larger"


def test_intent_from_mapping_reports_every_problem():
    with pytest.raises(FleetValidationError) as info:
        intent_from_mapping({"count": -1, "spread": "planet", "colour": "red", "max_share_per_domain": 2},
                            "placement", "intents[0]")
    paths = sorted(e.path for e in info.value.errors)
    assert paths == ["intents[0].colour", "intents[0].count", "intents[0].max_share_per_domain",
                     "intents[0].spread"]  # fmt: skip
    assert all(str(e).startswith("placement: intents[0].") and e.fix for e in info.value.errors)
    with pytest.raises(FleetValidationError, match="expected a mapping"):
        intent_from_mapping(["count", 3], "placement", "intents[0]")


def test_intent_from_mapping_overrides_a_base():
    base = Intent(count=3, min_cores=16, spread="row")
    intent = intent_from_mapping({"count": 5, "disk_type": "ssd"}, "placement", "intents[0]", base=base)
    assert intent == Intent(count=5, min_cores=16, disk_type="ssd", spread="row")
    assert intent_from_mapping({}, "x", "y") == Intent()


def test_fleet_intents_use_the_same_rules():
    data = small_fleet()
    data["clusters"][0]["node_groups"][1]["intent"] = {"count": 3, "gpus": "many", "dedicated": "not ok!"}
    paths = [found[0] for found in problems(data)]
    assert paths == ["clusters[0].node_groups[1].intent.gpus", "clusters[0].node_groups[1].intent.dedicated"]


@pytest.mark.parametrize(
    ("mutate", "path", "words"),
    [
        (lambda d: d["servers"][2].update(name="s02\n"), "servers[2].name", "invalid value"),
        (lambda d: d["clusters"][0].update(kubernetes_version="1.36.3\n"), "clusters[0].kubernetes_version",
         "invalid version"),
        (lambda d: d["regions"][0]["datacenters"][0]["rows"][0]["racks"].append({"name": "a.01"}),
         "regions[0].datacenters[0].rows[0].racks[4].name", "both give the inventory group rack_dc1_a_01"),
    ],
)  # fmt: skip
def test_names_that_break_inventory_groups(mutate, path, words):
    data = small_fleet()
    data["regions"][0]["datacenters"][0]["rows"][0]["racks"].append({"name": "a_01"})
    mutate(data)
    found = problems(data)
    assert found[0][0] == path and words in found[0][1], found


def test_cluster_names_that_read_as_another_clusters_role_group():
    data = small_fleet(servers=8, members=["s00", "s01", "s02"])
    data["clusters"].append(
        cluster("c1_etcd", ["s03", "s04", "s05"], pod_cidr="10.210.0.0/16", service_cidr="10.97.0.0/16",
                wireguard="10.211.0.0/24")
    )  # fmt: skip
    data["clusters"][1]["api"]["vip"] = "10.10.255.2"
    _path, problem, _fix = only_problem(data, "clusters[1].name", "both give the inventory group cluster_c1_etcd")
    assert "cluster c1 (clusters[0].name)" in problem


def test_json_number_too_long_is_a_fleet_error(tmp_path):
    error = load_error(tmp_path, '{"version": ' + "1" * 5000 + "}", name="fleet.json")
    assert "invalid JSON" in error.problem


@pytest.mark.parametrize("address", ["0.0.0.0", "127.0.0.1", "224.0.0.5", "255.255.255.255", "::", "::1", "ff02::1"])
def test_addresses_are_host_addresses(address):
    data = small_fleet()
    data["servers"][1]["addresses"]["private"] = address
    data["networks"] = []
    only_problem(data, "servers[1].addresses.private", "is not a host address")
    data = small_fleet()
    data["clusters"][0]["api"]["vip"] = address
    only_problem(data, "clusters[0].api.vip", "is not a host address")


def test_a_null_label_value_needs_a_value():
    data = small_fleet()
    data["servers"][1]["labels"] = {"gpu": None}
    assert only_problem(data, "servers[1].labels.gpu", "got null")[2] == 'write a value, or "" for an empty one'


def test_duplicate_json_key_the_yaml_reader_cannot_locate(tmp_path):
    # U+FFFE is fine in JSON but not in YAML: the key is still named, without lines.
    text = '{"version": 1, "servers": [], "note\ufffe": 1, "servers": []}'
    error = load_error(tmp_path, text, name="fleet.json")
    assert error.path == "(top level)" and "key 'servers' is written twice in one object" in error.problem


def test_a_list_label_value_is_an_error_not_a_crash():
    data = small_fleet()
    data["servers"][1]["labels"] = {"gpu": ["a100"]}
    only_problem(data, "servers[1].labels.gpu", "expected a string, got a list")


# --------------------------------------------------------------------------- BMC (fencing)

from ansible_collections.baremetal.k8s.plugins.module_utils.fleet_model import Bmc  # noqa: E402

BMC = {"type": "redfish", "address": "https://10.0.9.11", "system_id": "1", "credentials": "dc1-bmc"}


def with_bmc(index=1, **fields):
    data = small_fleet()
    data["servers"][index]["bmc"] = {**BMC, **fields}
    return data


def test_bmc_fields():
    fleet = parse_fleet(with_bmc(address="bmc-s01.example.com:8443", validate_certs=False), SOURCE)
    assert fleet.servers["s01"].bmc == Bmc("redfish", "bmc-s01.example.com:8443", "dc1-bmc", "1", False)
    assert fleet.servers["s01"].bmc.baseuri == "bmc-s01.example.com:8443"
    assert fleet.servers["s00"].bmc is None
    bmc = parse_fleet(with_bmc(system_id=None), SOURCE).servers["s01"].bmc
    assert (bmc.system_id, bmc.validate_certs, bmc.baseuri) == (None, True, "10.0.9.11")
    assert parse_fleet(with_bmc(address="HTTPS://[fd00::9]:443/"), SOURCE).servers["s01"].bmc.baseuri == "[fd00::9]:443"


@pytest.mark.parametrize(
    ("fields", "path", "words"),
    [
        ({"type": "ipmi"}, "servers[1].bmc.type", "invalid value 'ipmi'"),
        ({"address": ""}, "servers[1].bmc.address", "got an empty string"),
        ({"address": None}, "servers[1].bmc.address", "got null"),
        ({"address": "http://10.0.9.11"}, "servers[1].bmc.address", "Redfish is spoken over HTTPS only"),
        ({"address": "10.0.9.11/redfish/v1"}, "servers[1].bmc.address", "is not a host name, host:port or https://"),
        ({"address": "bmc s01"}, "servers[1].bmc.address", "is not a host name"),
        ({"address": "10.0.9.11:70000"}, "servers[1].bmc.address", "out of range"),
        ({"credentials": "a b"}, "servers[1].bmc.credentials", "invalid value 'a b'"),
        ({"system_id": 1}, "servers[1].bmc.system_id", "expected a string, got an integer 1"),
        ({"system_id": "a/b"}, "servers[1].bmc.system_id", "invalid Redfish system id"),
        ({"validate_certs": "no"}, "servers[1].bmc.validate_certs", "true or false"),
        ({"vendor": "dell"}, "servers[1].bmc.vendor", "unknown field 'vendor'"),
    ],
)  # fmt: skip
def test_bmc_field_errors(fields, path, words):
    only_problem(with_bmc(**fields), path, words)


def test_bmc_required_fields_and_a_bmc_that_is_no_mapping():
    data = small_fleet()
    data["servers"][1]["bmc"] = {"system_id": "1"}
    found = problems(data)
    assert [p[:2] for p in found] == [("servers[1].bmc.type", "required field is missing"),
                                      ("servers[1].bmc.address", "required field is missing"),
                                      ("servers[1].bmc.credentials", "required field is missing")]
    assert "credentials: NAME" in found[2][2]
    data["servers"][1]["bmc"] = "10.0.9.11"
    assert "bmc: {type: redfish" in only_problem(data, "servers[1].bmc", "expected a mapping, got a string")[2]


@pytest.mark.parametrize("key", ["password", "username", "Password", "token"])
def test_bmc_secrets_are_refused_and_never_repeated(key):
    path, problem, fix = only_problem(with_bmc(**{key: "hunter2"}), f"servers[1].bmc.{key}", "does not belong")
    assert "credentials: NAME" in fix and "Vault" in fix
    assert "hunter2" not in path + problem + fix


def test_bmc_credentials_in_the_address_are_refused_and_never_repeated():
    path, problem, fix = only_problem(with_bmc(address="https://root:hunter2@10.0.9.11"), "servers[1].bmc.address",
                                      "carries credentials")
    assert "hunter2" not in path + problem + fix and "credentials: NAME" in fix


def test_every_bmc_problem_is_reported_at_once():
    data = with_bmc(type="ipmi", address="", password="x", colour="red", system_id=7)
    data["servers"][3]["bmc"] = {**BMC, "address": "http://h"}
    assert [p[0] for p in problems(data)] == [
        "servers[1].bmc.password", "servers[1].bmc.colour", "servers[1].bmc.type", "servers[1].bmc.address",
        "servers[1].bmc.system_id", "servers[3].bmc.address"]  # fmt: skip


def test_servers_sharing_a_bmc_need_their_own_system_ids():
    data = with_bmc(1, system_id="s01")
    data["servers"][2]["bmc"] = {**BMC, "address": "HTTPS://10.0.9.11/", "system_id": "s02"}  # the same BMC
    parse_fleet(data, SOURCE)
    data["servers"][3]["bmc"] = {**BMC, "system_id": "s01"}
    _path, problem, fix = only_problem(data, "servers[3].bmc", "is also the BMC of s01 (servers[1].bmc)")
    assert "the same system_id 's01'" in problem and "system_id" in fix
    data["servers"][3]["bmc"] = {**BMC, "system_id": None}
    _path, problem, _fix = only_problem(data, "servers[3].bmc", "is also the BMC of s01")
    assert "no system_id to tell them apart" in problem
    data = with_bmc(1, system_id=None)
    data["servers"][2]["bmc"] = {**BMC, "system_id": "2"}
    only_problem(data, "servers[2].bmc", "is also the BMC of s01")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(values, st.dictionaries(st.sampled_from([*sorted(BMC), "validate_certs", "password"]), values,
                                         max_size=5)))
def test_fuzz_bmc_blocks(bmc):
    data = small_fleet()
    data["servers"][0]["bmc"] = bmc
    assert_clean(data)
