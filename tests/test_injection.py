"""The injector's decision (istio/injection.py) against the chart's webhooks and
injectRequired, and what the samples and the kube backend make of it."""

import pytest

from bookinfo_labs.istio.injection import decide
from bookinfo_labs.kube.samples import pod_summary
from bookinfo_labs.samples import Placement

ENABLED = {"istio-injection": "enabled"}
DISABLED = {"istio-injection": "disabled"}
REV = {"istio.io/rev": "default"}
ASK = {"sidecar.istio.io/inject": "true"}
REFUSE = {"sidecar.istio.io/inject": "false"}


@pytest.mark.parametrize("ns, pod, injected", [
    (ENABLED, {}, True),
    (ENABLED, ASK, True),
    (ENABLED, REFUSE, False),                 # the objectSelector leaves the pod out
    (DISABLED, {}, False),
    (DISABLED, ASK, False),                   # disabled beats the pod label
    ({"istio-injection": "yes"}, ASK, False),  # any value but enabled matches no webhook
    ({}, {}, False),                          # enableNamespacesByDefault is off
    ({}, ASK, True),                          # the pod label alone, in an unlabelled namespace
    ({}, {"sidecar.istio.io/inject": "True"}, False),  # the selector wants "true" exactly
    (REV, {}, True),
    (REV, REFUSE, False),
    ({"istio.io/rev": "canary"}, {}, False),  # a revision that is not installed
    ({"istio.io/rev": "canary"}, ASK, False),
    ({}, {"istio.io/rev": "default"}, True),  # the revision as a pod label
    ({}, {**ASK, "istio.io/rev": "canary"}, False),
    ({**ENABLED, **REV}, {}, True),           # istio-injection takes precedence over the rev
])
def test_the_webhooks_selectors_then_inject_required(ns, pod, injected):
    decision = decide("apps", ns, pod)
    assert decision.injected is injected, decision.reason
    assert decision.reason


def test_the_pod_label_wins_over_the_annotation_and_yaml_booleans_count():
    assert not decide("apps", ENABLED, {}, {"sidecar.istio.io/inject": "false"})
    assert decide("apps", ENABLED, {"sidecar.istio.io/inject": "true"},
                  {"sidecar.istio.io/inject": "false"})
    assert decide("apps", ENABLED, {}, {"sidecar.istio.io/inject": "on"})
    # the label "no" passes the webhook's NotIn [false] but injectRequired refuses it
    refused = decide("apps", ENABLED, {"sidecar.istio.io/inject": "no"})
    assert not refused and "inject=no" in refused.reason


def test_ignored_namespaces_never_get_a_sidecar():
    assert not decide("kube-system", ENABLED, {})


def test_a_disabled_namespace_says_why():
    assert "istio-injection=disabled" in decide("off", DISABLED, ASK).reason


def test_a_placement_labels_its_namespace_and_its_pod_templates():
    placement = Placement("off", namespace_labels=(("istio-injection", "disabled"),),
                          pod_labels=(("sidecar.istio.io/inject", "true"),))
    assert placement.namespace_object()["metadata"]["labels"] == {"istio-injection": "disabled"}
    dep = placement.place({"kind": "Deployment", "metadata": {"name": "sleep"},
                           "spec": {"template": {"metadata": {"labels": {"app": "sleep"}}}}})
    assert dep["spec"]["template"]["metadata"]["labels"] == {
        "app": "sleep", "sidecar.istio.io/inject": "true"}
    assert dep["metadata"]["namespace"] == "off"
    assert not placement.injection()
    # the plain forms keep their meaning: with a sidecar, or as `kubectl create ns legacy`
    assert Placement("foo").injection() and not Placement("legacy", sidecar=False).injection()
    assert "labels" not in Placement("legacy", sidecar=False).namespace_object()["metadata"]


def test_ready_counts_native_sidecars_as_kubectl_does():
    classic = {"metadata": {"name": "p"},
               "spec": {"containers": [{"name": "sleep"}, {"name": "istio-proxy"}],
                        "initContainers": [{"name": "istio-init"}]},
               "status": {"containerStatuses": [{"name": "sleep", "ready": True},
                                                {"name": "istio-proxy", "ready": True}]}}
    summary = pod_summary(classic)
    assert summary.has_sidecar() and summary.ready == "2/2"
    assert summary.init_containers == ("istio-init",) and summary.native_sidecars == ()
    native = {"metadata": {"name": "p"},
              "spec": {"containers": [{"name": "sleep"}],
                       "initContainers": [{"name": "istio-validation"},
                                          {"name": "istio-proxy", "restartPolicy": "Always"}]},
              "status": {"containerStatuses": [{"name": "sleep", "ready": True}],
                         "initContainerStatuses": [
                             {"name": "istio-validation", "ready": False},
                             {"name": "istio-proxy", "ready": False}]}}
    summary = pod_summary(native)
    assert summary.has_sidecar() and summary.ready == "1/2"
    bare = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "sleep"}]},
            "status": {"containerStatuses": [{"name": "sleep", "ready": True}]}}
    assert not pod_summary(bare).has_sidecar() and pod_summary(bare).ready == "1/1"
