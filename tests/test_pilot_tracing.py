"""Tracing as istiod translates it (pilot/pkg/networking/core/tracing.go): the release's
defaults, meshConfig's Zipkin extension provider selected by a Telemetry, and a golden file
of a Bookinfo sidecar with the lab's mesh-wide Telemetry. docs/facts.md#tracing."""

from __future__ import annotations

import dataclasses

import pytest
from google.protobuf import json_format

from bookinfo_labs.local.pilot import LISTENER, ProxyView, generate, tracing
from bookinfo_labs.local.pilot.meshconfig import demo_mesh_config, merged
from bookinfo_labs.versions import get_version
from test_pilot import CLIENT, INGRESS, _check_golden, mesh_of

REVIEWS = ProxyView(pod="reviews-v2-5d8f7c9b6d-x2k4p", namespace="default",
                    labels={"app": "reviews", "version": "v2"}, ip="127.10.0.60",
                    outbound_ip="127.11.0.60", app_ip="127.12.0.60", inbound_ports=(9080,),
                    service_account="bookinfo-reviews",
                    access_log_path="/tmp/reviews-v2/istio-proxy.log")
ZIPKIN_PROVIDER = {"name": "zipkin", "zipkin": {
    "service": "zipkin.istio-system.svc.cluster.local", "port": 9411}}
ZIPKIN_SERVICE = """\
apiVersion: v1
kind: Service
metadata: {name: zipkin, namespace: istio-system}
spec:
  selector: {app: zipkin}
  ports: [{name: http-query, port: 9411}]
"""
MESH_DEFAULT = """\
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh-default, namespace: istio-system}
spec:
  tracing:
  - providers: [{name: zipkin}]
    randomSamplingPercentage: 100
"""


def mesh(*configs: str, gateways: bool = False, **mesh_config):
    """Bookinfo, the client (and the demo gateways) and the zipkin Service, the demo
    profile's meshConfig with the Zipkin provider (and ``mesh_config``'s fields), and
    ``configs``."""
    view = mesh_of(*configs, gateways=gateways, mesh_config=merged(
        demo_mesh_config(get_version("1.26")),
        {"extensionProviders": [ZIPKIN_PROVIDER], **mesh_config}))
    return dataclasses.replace(view, services=view.services + _services(ZIPKIN_SERVICE))


def _services(text: str):
    from bookinfo_labs.local.pilot import ServicePortView, ServiceView
    from bookinfo_labs.manifests import parse_text

    [m] = parse_text(text)
    spec = m.raw["spec"]
    return (ServiceView(m.name, m.namespace, tuple(ServicePortView(p["name"], p["port"], p["port"])
                                                    for p in spec["ports"]),
                        dict(spec["selector"])),)


def hcm_tracing(view, proxy, listener: str) -> dict | None:
    """The ``tracing`` of the first connection manager of a listener."""
    chain = generate(view, proxy)[LISTENER][listener]["filter_chains"][-1]
    [hcm] = [f for f in chain["filters"] if f["name"].endswith("http_connection_manager")]
    return hcm["typed_config"].get("tracing")


def _tags(trace: dict) -> dict[str, str]:
    return {t["tag"]: t["literal"]["value"] for t in trace["custom_tags"] if "literal" in t}


def test_release_default_samples_one_percent_and_has_no_tracer():
    """enableTracing (true) without a Telemetry: PILOT_TRACE_SAMPLING's 1 % and Istio's tags,
    no provider: since 1.22 the chart configures no tracer."""
    trace = hcm_tracing(mesh(), CLIENT, "0.0.0.0_9080")
    assert "provider" not in trace
    assert trace["random_sampling"] == {"value": 1.0}
    assert trace["client_sampling"] == trace["overall_sampling"] == {"value": 100.0}
    assert _tags(trace) == {"istio.canonical_revision": "latest",
                            "istio.canonical_service": "curl", "istio.mesh_id": "cluster.local",
                            "istio.namespace": "default", "istio.cluster_id": "Kubernetes"}
    assert [t["tag"] for t in trace["custom_tags"]] == sorted(t["tag"] for t in trace["custom_tags"])


def test_enable_tracing_false_and_proxy_config_sampling():
    assert hcm_tracing(mesh(enableTracing=False), CLIENT, "0.0.0.0_9080") is None
    sampled = mesh(defaultConfig={"tracing": {"sampling": 10}})
    assert hcm_tracing(sampled, CLIENT, "0.0.0.0_9080")["random_sampling"] == {"value": 10.0}
    # above 100 counts as 1 % (proxyConfigSamplingValue)
    odd = mesh(defaultConfig={"tracing": {"sampling": 250}})
    assert hcm_tracing(odd, CLIENT, "0.0.0.0_9080")["random_sampling"] == {"value": 1.0}


def test_legacy_zipkin_address_puts_the_zipkin_tracer_on_the_connection_manager():
    view = mesh(defaultConfig={"tracing": {"zipkin": {"address": "zipkin.istio-system:9411"}}})
    provider = hcm_tracing(view, CLIENT, "0.0.0.0_9080")["provider"]
    assert provider["typed_config"]["collector_cluster"] == \
        "outbound|9411||zipkin.istio-system.svc.cluster.local"
    # up to 1.21 the chart's tracer is this one; from 1.22 there is none
    old = dataclasses.replace(mesh(), istio=dataclasses.replace(get_version("1.22"),
                                                                 default_tracing=True))
    assert "provider" in hcm_tracing(old, CLIENT, "0.0.0.0_9080")


def test_telemetry_selects_the_zipkin_provider_on_both_sides():
    view = mesh(MESH_DEFAULT)
    outbound = hcm_tracing(view, REVIEWS, "0.0.0.0_9080")
    inbound = hcm_tracing(view, REVIEWS, "127.10.0.60_9080")
    for trace in (outbound, inbound):
        assert trace["random_sampling"] == {"value": 100.0}
        assert trace["provider"] == {"name": "envoy.tracers.zipkin", "typed_config": {
            "@type": "type.googleapis.com/envoy.config.trace.v3.ZipkinConfig",
            "collector_cluster": "outbound|9411||zipkin.istio-system.svc.cluster.local",
            "collector_endpoint": "/api/v2/spans",
            "collector_hostname": "zipkin.istio-system.svc.cluster.local",
            "collector_endpoint_version": "HTTP_JSON", "trace_id_128bit": True,
            "shared_span_context": False}}
        assert _tags(trace)["istio.canonical_revision"] == "v2"
    # the collector's cluster is one the sidecar has
    assert "outbound|9411||zipkin.istio-system.svc.cluster.local" in \
        generate(view, REVIEWS)["type.googleapis.com/envoy.config.cluster.v3.Cluster"]


def test_a_gateway_traces_as_a_client():
    view = mesh(MESH_DEFAULT.replace("  - providers", "  - match: {mode: CLIENT}\n    providers"),
                "bookinfo-gateway.yaml", gateways=True)
    trace = hcm_tracing(view, INGRESS, "0.0.0.0_8080")
    assert trace["provider"]["name"] == "envoy.tracers.zipkin"
    assert _tags(trace)["istio.canonical_service"] == "istio-ingressgateway"


def test_match_mode_disable_span_reporting_and_workload_override():
    client_only = MESH_DEFAULT.replace("  - providers", "  - match: {mode: CLIENT}\n    providers")
    view = mesh(client_only)
    assert "provider" in hcm_tracing(view, REVIEWS, "0.0.0.0_9080")
    assert hcm_tracing(view, REVIEWS, "127.10.0.60_9080") is None  # no provider: off
    off_for_reviews = MESH_DEFAULT + """\
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: reviews, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  tracing:
  - disableSpanReporting: true
"""
    view = mesh(off_for_reviews)
    assert hcm_tracing(view, REVIEWS, "0.0.0.0_9080") is None
    assert hcm_tracing(view, REVIEWS, "127.10.0.60_9080") is None
    assert "provider" in hcm_tracing(view, CLIENT, "0.0.0.0_9080")


def test_custom_tags_replace_the_proxy_configs():
    tagged = MESH_DEFAULT + """\
    customTags:
      lab: {literal: {value: tracing}}
      user: {header: {name: end-user, defaultValue: none}}
"""
    trace = hcm_tracing(mesh(tagged), CLIENT, "0.0.0.0_9080")
    by_tag = {t["tag"]: t for t in trace["custom_tags"]}
    assert by_tag["lab"] == {"tag": "lab", "literal": {"value": "tracing"}}
    assert by_tag["user"] == {"tag": "user", "request_header": {"name": "end-user",
                                                                "default_value": "none"}}


def test_a_provider_whose_service_is_not_in_the_registry_traces_nothing():
    """istiod: "could not find cluster for tracing provider" and no tracing at all; the
    service must be the registry's hostname (a short name is not looked up)."""
    view = mesh(MESH_DEFAULT, extensionProviders=[
        {"name": "zipkin", "zipkin": {"service": "zipkin.istio-system", "port": 9411}}])
    assert hcm_tracing(view, CLIENT, "0.0.0.0_9080") is None


def test_collector_service_from_1_29():
    view = mesh(MESH_DEFAULT)
    view = dataclasses.replace(view, istio=dataclasses.replace(view.istio, version="1.29"))
    config = hcm_tracing(view, CLIENT, "0.0.0.0_9080")["provider"]["typed_config"]
    assert config["collector_service"] == {"http_uri": {
        "uri": "http://zipkin.istio-system.svc.cluster.local/api/v2/spans",
        "cluster": "outbound|9411||zipkin.istio-system.svc.cluster.local", "timeout": "5s"}}
    assert "collector_cluster" not in config
    from envoy.config.trace.v3 import zipkin_pb2
    json_format.ParseDict({k: v for k, v in config.items() if k != "@type"},
                          zipkin_pb2.ZipkinConfig())


@pytest.mark.parametrize("kind", ["opentelemetry", "datadog"])
def test_untranslated_provider_kinds_are_named(kind):
    provider = {"name": "p", kind: {"service": "x", "port": 1}}
    assert tracing.provider_kind(provider) == kind
    assert kind not in tracing.TRANSLATED_PROVIDER_KINDS


def test_golden_tracing_telemetry():
    """reviews v2's sidecar with the lab's mesh-wide Telemetry: every resource."""
    from envoy.config.trace.v3 import zipkin_pb2  # noqa: F401 - the typed config's message
    _check_golden("tracing-telemetry", generate(mesh(MESH_DEFAULT), REVIEWS))
