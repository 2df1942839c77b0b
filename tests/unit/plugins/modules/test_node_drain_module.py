# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""baremetal.k8s.node_drain's bad credentials are clear errors, never tracebacks (the drain itself runs against
the real control plane in tests/integration/test_node_drain.py)."""

from __future__ import annotations

import pytest
from fleet_samples import run_module


@pytest.mark.parametrize(("text", "words"), [
    ("{{{ not yaml", "is not a kubeconfig"),
    ("- a\n- b\n", "is not a kubeconfig"),
    ("", "cannot load Kubernetes client configuration"),
])
def test_a_kubeconfig_that_is_not_one_is_a_clear_error(tmp_path, text, words):
    path = tmp_path / "kubeconfig"
    path.write_text(text)
    result = run_module("baremetal.k8s.node_drain", {"name": "w1", "kubeconfig": str(path)})
    assert result.get("failed") is True and words in result["msg"], result
    assert "Traceback" not in result.get("module_stderr", "") + result.get("exception", "")


def test_a_missing_kubeconfig_names_the_option(tmp_path):
    result = run_module("baremetal.k8s.node_drain", {"name": "w1", "kubeconfig": str(tmp_path / "nope")})
    assert result.get("failed") is True and "kubeconfig" in result["msg"] and "does not exist" in result["msg"]


@pytest.mark.parametrize(("args", "words"), [
    ({"state": "uncordoned", "cordoned_by": "alice"}, "cordoned_by only applies with state=cordoned or state=drained"),
    ({"state": "uncordoned", "cordon_reason": "why"}, "cordon_reason only applies with state=cordoned"),
    ({"state": "cordoned", "cordoned_by": "  "}, "cordoned_by is empty"),
    ({"cordon_reason": ""}, "cordon_reason is empty"),
])
def test_cordon_annotation_options_are_checked_before_connecting(tmp_path, args, words):
    result = run_module("baremetal.k8s.node_drain", {"name": "w1", "kubeconfig": str(tmp_path / "nope"), **args})
    assert result.get("failed") is True and words in result["msg"], result
