"""Traces: the local Zipkin stand-in's API, the neutral model both backends' answers become,
and the kube backend's Jaeger query (against the fake API server). docs/facts.md#tracing."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bookinfo_labs.local.zipkin import SpanStore, zipkin
from bookinfo_labs.mesh import MeshError
from bookinfo_labs.tracing import from_jaeger, from_zipkin, trace_query_command
from test_kube_mesh import fake, kubeconfig, mesh, productpage  # noqa: F401 - fixtures

TRACE = "e99a38392391403283e5815f56467efc"


def zipkin_span(span_id, parent, kind, service, ts, revision, cluster):
    span = {"traceId": TRACE, "id": span_id, "kind": kind, "name": f"{cluster}/*",
            "timestamp": ts, "duration": 100,
            "localEndpoint": {"serviceName": service, "ipv4": "10.0.0.1"},
            "tags": {"istio.canonical_revision": revision, "upstream_cluster": cluster,
                     "istio.canonical_service": service.split(".")[0]}}
    if parent:
        span["parentId"] = parent
    return span


#: curl → productpage → reviews v2 → ratings, both sides of each call
SPANS = [
    zipkin_span("0000000000000001", None, "CLIENT", "curl.default", 1, "latest", "outbound|9080||productpage"),
    zipkin_span("0000000000000002", "0000000000000001", "SERVER", "productpage.default", 2, "v1", "inbound|9080||"),
    zipkin_span("0000000000000003", "0000000000000002", "CLIENT", "productpage.default", 3, "v1", "outbound|9080||reviews"),
    zipkin_span("0000000000000004", "0000000000000003", "SERVER", "reviews.default", 4, "v2", "inbound|9080||"),
    zipkin_span("0000000000000005", "0000000000000004", "CLIENT", "reviews.default", 5, "v2", "outbound|9080||ratings"),
    zipkin_span("0000000000000006", "0000000000000005", "SERVER", "ratings.default", 6, "v1", "inbound|9080||"),
]


def test_the_collector_keeps_spans_and_answers_zipkins_queries():
    async def scenario():
        async with TestClient(TestServer(zipkin(None))) as client:
            # Envoy flushes spans in batches: two POSTs make one trace
            assert (await client.post("/api/v2/spans", data=json.dumps(SPANS[:3]))).status == 202
            assert (await client.post("/api/v2/spans", data=json.dumps(SPANS[3:]))).status == 202
            bad = await client.post("/api/v2/spans", data=json.dumps([{"traceId": "xyz", "id": "1"}]))
            assert bad.status == 400 and "traceId" in await bad.text()
            services = await (await client.get("/api/v2/services")).json()
            assert services == ["curl.default", "productpage.default", "ratings.default",
                                "reviews.default"]
            traces = await (await client.get("/api/v2/traces",
                                             params={"serviceName": "ratings.default"})).json()
            assert len(traces) == 1 and len(traces[0]) == 6
            none = await (await client.get("/api/v2/traces",
                                           params={"serviceName": "details.default"})).json()
            assert none == []
            one = await client.get(f"/api/v2/trace/{TRACE.upper()}")
            assert one.status == 200 and len(await one.json()) == 6
            assert (await client.get("/api/v2/trace/00000000000000aa")).status == 404

    asyncio.run(scenario())


def test_the_store_forgets_the_oldest_traces_first_and_finds_the_newest():
    store = SpanStore(max_traces=2)
    for n in range(3):
        store.accept([{**SPANS[0], "traceId": f"{n:032x}"}])
    assert list(store.traces) == [f"{1:016x}", f"{2:016x}"]  # zero-padded ids kept short
    assert [t[0]["traceId"] for t in store.find("curl.default", 1)] == [f"{2:032x}"]
    with pytest.raises(ValueError):
        store.accept({"not": "a list"})


def test_a_zipkin_trace_becomes_calls_between_apps_with_the_version_that_answered():
    [trace] = from_zipkin([SPANS])
    assert trace.trace_id == TRACE
    assert trace.edges() == [("curl", "productpage", "v1"), ("productpage", "reviews", "v2"),
                             ("reviews", "ratings", "v1")]


def jaeger_body():
    """The same trace as Jaeger's query API returns it (Zipkin spans ingested on 9411)."""
    processes = {f"p{i}": {"serviceName": s["localEndpoint"]["serviceName"], "tags": []}
                 for i, s in enumerate(SPANS)}
    spans = [{"traceID": TRACE, "spanID": s["id"], "operationName": s["name"],
              "references": ([{"refType": "CHILD_OF", "traceID": TRACE, "spanID": s["parentId"]}]
                             if "parentId" in s else []),
              "startTime": s["timestamp"], "duration": s["duration"], "processID": f"p{i}",
              "tags": [{"key": "span.kind", "type": "string", "value": s["kind"].lower()}] +
                      [{"key": k, "type": "string", "value": v} for k, v in s["tags"].items()]}
             for i, s in enumerate(SPANS)]
    return {"data": [{"traceID": TRACE, "spans": spans, "processes": processes}],
            "total": 0, "limit": 0, "offset": 0, "errors": None}


def test_a_jaeger_trace_becomes_the_same_calls():
    [trace] = from_jaeger(jaeger_body())
    assert trace.edges() == from_zipkin([SPANS])[0].edges()


def test_kube_asks_jaegers_query_api_from_the_client_pod(mesh, fake):  # noqa: F811
    calls = []

    def handler(namespace, pod, container, command):
        calls.append((pod, container, command))
        return json.dumps(jaeger_body()).encode(), b"", 0

    fake.exec_handler = handler
    [trace] = mesh.traces("productpage.default", limit=5)
    assert trace.trace_id == TRACE
    [(pod, container, command)] = calls
    assert pod.startswith("curl-") and container == "curl"
    assert command[-1] == ("http://tracing.istio-system:80/jaeger/api/traces?"
                           "service=productpage.default&limit=5")
    fake.exec_handler = lambda *_: (b"", b"curl: (6) Could not resolve host: tracing.istio-system", 6)
    with pytest.raises(MeshError, match="Jaeger query API did not answer.*make kind-up"):
        mesh.traces("productpage.default")


def test_the_explained_query():
    assert trace_query_command("kube", "curl", TRACE).endswith(
        f"curl -s http://tracing.istio-system:80/jaeger/api/traces/{TRACE}")
    assert trace_query_command("local", "curl", TRACE).endswith(
        f"curl -s http://zipkin.istio-system:9411/api/v2/trace/{TRACE}")


@pytest.fixture(scope="module")
def local_mesh():
    from bookinfo_labs.local import LocalMesh
    from bookinfo_labs.versions import get_version

    mesh = LocalMesh.start(get_version("1.26"), gateways=False)
    try:
        yield mesh
    finally:
        mesh.close()


TELEMETRY = """\
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh-default, namespace: istio-system}
spec:
  tracing:
  - providers: [{name: %s}]
"""


@pytest.mark.parametrize("provider, message", [
    ({"name": "otel", "opentelemetry": {"service": "otel.istio-system.svc.cluster.local",
                                        "port": 4317}},
     "does not implement opentelemetry tracing providers yet"),
    ({"name": "otel", "envoyFileAccessLog": {"path": "/dev/stdout"}},
     "is a envoyFileAccessLog provider, which does not trace"),
])
def test_the_local_mesh_refuses_a_provider_it_does_not_translate(local_mesh, provider, message):
    from bookinfo_labs.manifests import ManifestError, parse_text

    previous = local_mesh.set_mesh_config({"extensionProviders": [provider]})
    try:
        with pytest.raises(ManifestError) as err:
            local_mesh.apply(parse_text(TELEMETRY % "otel"))
        assert err.value.path == "spec.tracing[0].providers[0].name"
        assert message in str(err.value) and "'otel'" in str(err.value)
        assert not local_mesh.owned_resources()  # nothing applied
    finally:
        local_mesh.set_mesh_config(previous)


def test_the_local_mesh_refuses_a_tracing_field_by_name(local_mesh):
    from bookinfo_labs.manifests import ManifestError, parse_text

    text = (TELEMETRY % "zipkin") + "    useRequestIdForTraceSampling: false\n"
    with pytest.raises(ManifestError) as err:
        local_mesh.apply(parse_text(text))
    assert err.value.path == "spec.tracing[0].useRequestIdForTraceSampling"
    assert "does not implement this field" in str(err.value)
