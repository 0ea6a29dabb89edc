"""The context guard with --emulated-cluster: it accepts the test suite's emulated cluster
and nothing else, and without the option an emulated context is refused like any other
non-kind context."""

import pytest

from bookinfo_labs.kube.context import (EMULATED_CONTEXT, check_kind_nodes, check_kind_server,
                                        fix_hint, resolve_context)
from bookinfo_labs.mesh import MeshError

EMULATED_NODE = {"spec": {"providerID": "emulated://bookinfo-labs-emulated"}}
KIND_NODE = {"spec": {"providerID": "kind://docker/bookinfo-labs/bookinfo-labs-control-plane"}}


def test_the_emulated_context_is_the_default_with_the_option_and_refused_without_it():
    assert resolve_context(None, False, emulated=True) == EMULATED_CONTEXT
    assert resolve_context("emulated-other", False, emulated=True) == "emulated-other"
    with pytest.raises(MeshError, match="--allow-any-context"):
        resolve_context(EMULATED_CONTEXT, False)


@pytest.mark.parametrize("context", ["kind-bookinfo-labs", "prod", "kind-emulated"])
def test_the_option_refuses_every_context_that_is_not_emulated(context):
    with pytest.raises(MeshError, match="only takes an emulated-\\* context"):
        resolve_context(context, False, emulated=True)


def test_an_emulated_cluster_must_be_served_on_this_machine_and_its_nodes_are_checked():
    assert check_kind_server(EMULATED_CONTEXT, "http://127.0.0.1:40000", False, emulated=True)
    with pytest.raises(MeshError, match="not on this machine"):
        check_kind_server(EMULATED_CONTEXT, "https://10.1.2.3:6443", False, emulated=True)


def test_a_kind_cluster_is_not_taken_for_the_emulated_one():
    check_kind_nodes(EMULATED_CONTEXT, [EMULATED_NODE], emulated=True)
    with pytest.raises(MeshError, match="not the emulated cluster's"):
        check_kind_nodes(EMULATED_CONTEXT, [KIND_NODE], emulated=True)
    with pytest.raises(MeshError, match="not the emulated cluster's"):
        check_kind_nodes(EMULATED_CONTEXT, [], emulated=True)
    with pytest.raises(MeshError, match="not kind nodes"):
        check_kind_nodes("kind-bookinfo-labs", [EMULATED_NODE])


def test_the_hint_for_an_emulated_context_says_how_to_get_one():
    assert "make kube-emulated" in fix_hint(EMULATED_CONTEXT)
