"""Istio's standard metrics on the local mesh: the loggers the control plane puts on the
proxies, the labels the agent derives from their records, the text it serves, PromQL
answers and the service graph (pure functions, no process)."""

import json

import pytest

from bookinfo_labs import promql
from bookinfo_labs.local import prometheus
from bookinfo_labs.local.metrics import (BUCKETS, HTTP_LABELS, TCP_LABELS, Directory,
                                         MetricsAgent, StandardMetrics, labels)
from bookinfo_labs.local.pilot import (MeshView, ProxyView, ServicePortView, ServiceView,
                                       WorkloadView, meshconfig)
from bookinfo_labs.local.pilot import metrics as pilot_metrics
from bookinfo_labs.mesh import MeshError
from bookinfo_labs.topology import QUERY, ServiceGraph, parse_claims
from bookinfo_labs.versions import get_version

ISTIO = get_version("1.26")
PRODUCTPAGE = WorkloadView("productpage-v1-5d8f7c9b6d-x2k4p", "default", "127.10.0.1",
                           {"app": "productpage", "version": "v1"}, "bookinfo-productpage")
REVIEWS_V2 = WorkloadView("reviews-v2-7bc8d9f6c4-q8w2e", "default", "127.10.0.2",
                          {"app": "reviews", "version": "v2"}, "bookinfo-reviews")
RATINGS = WorkloadView("ratings-v1-6c9d8e7f5b-r4t5y", "default", "127.10.0.3",
                       {"app": "ratings", "version": "v1",
                        "service.istio.io/canonical-name": "ratings-svc"}, "bookinfo-ratings")
MESH = MeshView(ISTIO, services=(
    ServiceView("reviews", "default", (ServicePortView("http", 9080, 9080),), {"app": "reviews"}),
    ServiceView("ratings", "default", (ServicePortView("http", 9080, 9080),), {"app": "ratings"}),
), workloads=(PRODUCTPAGE, REVIEWS_V2, RATINGS))
DIRECTORY = Directory.of(MESH)


def record(**fields):
    base = {"protocol": "http", "response_code": 200, "response_flags": "-", "duration": 7,
            "bytes_received": 0, "bytes_sent": 438, "grpc_status": None, "content_type": None,
            "downstream_peer_uri_san": None, "downstream_local_uri_san": None,
            "upstream_peer_uri_san": None}
    return {**base, **fields}


# -- the control plane's loggers ----------------------------------------------------------

def proxy(path="/tmp/p/istio-metrics.jsonl"):
    return ProxyView(pod=PRODUCTPAGE.name, namespace="default", labels=PRODUCTPAGE.labels,
                     ip=PRODUCTPAGE.ip, outbound_ip="127.11.0.1", app_ip="127.12.0.1",
                     metrics_log_path=path)


def test_the_metrics_logger_follows_the_prometheus_provider():
    demo = MeshView(ISTIO, mesh_config=meshconfig.demo_mesh_config(ISTIO))
    assert demo.mesh_config["defaultProviders"] == {"metrics": ["prometheus"]}
    [logger] = pilot_metrics.loggers(demo, proxy(), "inbound", http=True)
    assert logger["typed_config"]["path"] == "/tmp/p/istio-metrics.jsonl"
    fmt = logger["typed_config"]["log_format"]["json_format"]
    assert fmt["reporter"] == "destination" and fmt["protocol"] == "http"
    assert fmt["upstream_cluster"] == "%UPSTREAM_CLUSTER_RAW%"
    assert fmt["downstream_remote_address"] == "%DOWNSTREAM_DIRECT_REMOTE_ADDRESS%"
    # no provider, or a proxy without a metrics file: no logger
    off = MeshView(ISTIO, mesh_config=meshconfig.merged(demo.mesh_config,
                                                        {"defaultProviders": None}))
    assert pilot_metrics.loggers(off, proxy(), "inbound", http=True) == []
    assert pilot_metrics.loggers(demo, proxy(path=""), "inbound", http=True) == []


@pytest.mark.parametrize("direction, reporter", [("inbound", "destination"),
                                                 ("outbound", "source"), ("gateway", "source")])
def test_the_reporter_is_where_the_filter_sits(direction, reporter):
    fmt = pilot_metrics.record_format(direction, http=False)
    assert fmt["reporter"] == reporter and fmt["protocol"] == "tcp"
    assert "response_code" not in fmt and "authority" not in fmt


# -- labels -------------------------------------------------------------------------------

def test_client_side_labels_in_istios_order():
    got = labels(record(reporter="source",
                        upstream_cluster="outbound|9080|v2|reviews.default.svc.cluster.local",
                        upstream_host="127.10.0.2:9080", authority="reviews:9080",
                        upstream_peer_uri_san="spiffe://cluster.local/ns/default/sa/bookinfo-reviews"),
                 DIRECTORY.peer(PRODUCTPAGE.ip), PRODUCTPAGE.ip, DIRECTORY)
    assert tuple(got) == HTTP_LABELS
    assert got == {
        "reporter": "source",
        "source_workload": "productpage-v1", "source_canonical_service": "productpage",
        "source_canonical_revision": "v1", "source_workload_namespace": "default",
        "source_principal": "spiffe://cluster.local/ns/default/sa/bookinfo-productpage",
        "source_app": "productpage", "source_version": "v1", "source_cluster": "Kubernetes",
        "destination_workload": "reviews-v2", "destination_workload_namespace": "default",
        "destination_principal": "spiffe://cluster.local/ns/default/sa/bookinfo-reviews",
        "destination_app": "reviews", "destination_version": "v2",
        "destination_service": "reviews.default.svc.cluster.local",
        "destination_canonical_service": "reviews", "destination_canonical_revision": "v2",
        "destination_service_name": "reviews", "destination_service_namespace": "default",
        "destination_cluster": "Kubernetes",
        "request_protocol": "http", "response_code": "200", "grpc_response_status": "",
        "response_flags": "-", "connection_security_policy": "unknown",
    }


def test_server_side_labels_name_the_peer_by_its_address_and_the_service_by_the_port():
    got = labels(record(reporter="destination", upstream_cluster="inbound|9080||",
                        downstream_remote_address="127.10.0.2:41265",
                        downstream_local_address="127.10.0.3:9080",
                        downstream_peer_uri_san="spiffe://cluster.local/ns/default/sa/bookinfo-reviews",
                        downstream_local_uri_san="spiffe://cluster.local/ns/default/sa/bookinfo-ratings",
                        content_type="application/grpc", grpc_status=14, response_code=200),
                 DIRECTORY.peer(RATINGS.ip), RATINGS.ip, DIRECTORY)
    assert (got["source_workload"], got["source_version"]) == ("reviews-v2", "v2")
    assert got["source_principal"].endswith("/sa/bookinfo-reviews")
    assert got["destination_principal"].endswith("/sa/bookinfo-ratings")
    assert got["destination_service"] == "ratings.default.svc.cluster.local"
    # the canonical-name label wins over app
    assert got["destination_canonical_service"] == "ratings-svc" and got["destination_app"] == "ratings"
    assert got["connection_security_policy"] == "mutual_tls"
    assert (got["request_protocol"], got["grpc_response_status"]) == ("grpc", "14")


def test_an_abort_in_the_clients_sidecar_names_the_service_by_its_host_header():
    got = labels(record(reporter="source", upstream_cluster=None, upstream_host=None,
                        authority="ratings:9080", response_code=500, response_flags="FI"),
                 DIRECTORY.peer(REVIEWS_V2.ip), REVIEWS_V2.ip, DIRECTORY)
    assert got["destination_service"] == "ratings.default.svc.cluster.local"
    assert got["destination_service_name"] == "ratings"
    assert got["destination_workload"] == got["destination_principal"] == "unknown"
    assert got["source_principal"] == "unknown"  # no upstream: no mTLS seen
    assert (got["response_code"], got["response_flags"]) == ("500", "FI")


def test_passthrough_and_an_unknown_peer():
    got = labels(record(reporter="source", upstream_cluster="PassthroughCluster",
                        upstream_host="93.184.216.34:80", authority="example.com"),
                 DIRECTORY.peer(PRODUCTPAGE.ip), PRODUCTPAGE.ip, DIRECTORY)
    assert got["destination_service"] == got["destination_service_name"] == "PassthroughCluster"
    assert got["destination_workload"] == got["destination_canonical_revision"] == "unknown"
    tcp = labels({"reporter": "destination", "protocol": "tcp", "upstream_cluster": "inbound|9080||",
                  "downstream_remote_address": "10.0.0.9:5000"},
                 DIRECTORY.peer(RATINGS.ip), RATINGS.ip, DIRECTORY)
    assert tuple(tcp) == TCP_LABELS
    assert tcp["source_workload"] == "unknown" and tcp["connection_security_policy"] == "none"


# -- what the agent serves -----------------------------------------------------------------

def test_the_text_keeps_istios_label_order_and_envoys_buckets():
    metrics = StandardMetrics()
    values = labels(record(reporter="source", upstream_cluster="outbound|9080||reviews.default.svc.cluster.local",
                           upstream_host="127.10.0.2:9080", duration=7),
                    DIRECTORY.peer(PRODUCTPAGE.ip), PRODUCTPAGE.ip, DIRECTORY)
    for duration in (7, 30):
        metrics.count({"duration": duration, "bytes_sent": 438}, values)
    lines = metrics.text().splitlines()
    [total] = [line for line in lines if line.startswith("istio_requests_total{")]
    names = [pair.split("=")[0] for pair in total[total.index("{") + 1:total.index("}")].split(",")]
    assert names == list(HTTP_LABELS) and total.endswith("} 2")
    buckets = [line for line in lines if line.startswith("istio_request_duration_milliseconds_bucket")]
    assert len(buckets) == len(BUCKETS) + 1
    by_le = {line.split('le="')[1].split('"')[0]: line.rsplit(" ", 1)[1] for line in buckets}
    assert (by_le["5"], by_le["10"], by_le["25"], by_le["50"], by_le["+Inf"]) == ("0", "1", "1", "2", "2")
    assert any(line.startswith("istio_request_duration_milliseconds_sum{") and line.endswith(" 37")
               for line in lines)
    assert "# TYPE istio_request_duration_milliseconds histogram" in lines


def test_the_agent_counts_whole_records_once(tmp_path):
    path = tmp_path / "istio-metrics.jsonl"
    agent = MetricsAgent(PRODUCTPAGE.ip, path, lambda: DIRECTORY)
    assert agent.collect() == 0  # no file yet
    one = json.dumps(record(reporter="source", upstream_host="127.10.0.2:9080",
                            upstream_cluster="outbound|9080||reviews.default.svc.cluster.local"))
    path.write_text(one + "\n" + one[:20])  # Envoy is still writing the second
    assert agent.collect() == 1
    with path.open("a") as f:
        f.write(one[20:] + "\n")
    assert agent.collect() == 1 and agent.collect() == 0
    [(key, value)] = agent.metrics.counters["istio_requests_total"].items()
    assert value == 2 and dict(key)["destination_workload"] == "reviews-v2"


# -- Prometheus ---------------------------------------------------------------------------

def test_the_local_scrape_job_is_the_addons():
    job = prometheus.config(prometheus.Path("/w/targets.json"))["scrape_configs"][0]
    assert job["honor_labels"] is True and job["metrics_path"] == "/stats/prometheus"
    group = prometheus.target_group("127.10.0.1:15020", "default", "productpage-v1-x",
                                    {"app": "productpage", "app.kubernetes.io/name": "pp"})
    assert group == {"targets": ["127.10.0.1:15020"], "labels": {
        "app": "productpage", "app_kubernetes_io_name": "pp", "namespace": "default",
        "pod": "productpage-v1-x"}}


def test_promql_answers():
    answer = {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"destination_version": "v1"}, "value": [1700000000.1, "12"]},
        {"metric": {"destination_version": "v3"}, "value": [1700000000.1, "8"]}]}}
    samples = promql.vector(answer)
    assert samples == [({"destination_version": "v1"}, 12.0), ({"destination_version": "v3"}, 8.0)]
    before = [({"destination_version": "v1"}, 5.0)]
    assert promql.increase(before, samples) == [({"destination_version": "v1"}, 7.0),
                                                ({"destination_version": "v3"}, 8.0)]
    assert promql.vector({"status": "success", "data": {"resultType": "scalar",
                                                         "result": [1, "0.5"]}}) == [({}, 0.5)]
    with pytest.raises(MeshError, match="bad_data: parse error"):
        promql.vector({"status": "error", "errorType": "bad_data", "error": "parse error"})


def test_every_target_scraped_after_a_moment():
    def targets(*scrapes):
        return {"status": "success", "data": {"activeTargets": [
            {"scrapeUrl": f"http://127.10.0.{i}:15020/stats/prometheus", "health": health,
             "lastScrape": stamp, "scrapePool": "kubernetes-pods"}
            for i, (health, stamp) in enumerate(scrapes)] + [
            # another job of the addon (the API server...) does not hold the checks up
            {"scrapeUrl": "https://10.96.0.1:443/metrics", "health": "down",
             "lastScrape": "0001-01-01T00:00:00Z", "scrapePool": "kubernetes-apiservers"}]}}

    moment = promql._epoch("2026-11-27T04:00:05.5Z")
    assert moment == pytest.approx(1795752005.5)
    ok = targets(("up", "2026-11-27T04:00:06.123456789Z"), ("up", "2026-11-27T04:00:07+00:00"))
    assert promql.scraped_after(ok, moment) == pytest.approx(moment + 1.5)
    with pytest.raises(AssertionError, match="1 of 2 targets not scraped"):
        promql.scraped_after(targets(("up", "2026-11-27T04:00:06Z"),
                                     ("up", "0001-01-01T00:00:00Z")), moment)
    with pytest.raises(AssertionError, match="no pod target is up"):
        promql.scraped_after(targets(("down", "2026-11-27T04:00:06Z")), moment)
    # a pod that failed its scrape (going away) does not stall the others
    assert promql.scraped_after(targets(("up", "2026-11-27T04:00:06Z"),
                                        ("down", "2026-11-27T04:00:07Z")), moment) > moment
    with pytest.raises(AssertionError, match="no kubernetes-pods targets"):
        promql.scraped_after(targets(), moment)


# -- the service graph ----------------------------------------------------------------------

def series(reporter, source, source_version, destination, version, code, value,
           source_workload=None):
    return ({"reporter": reporter, "source_canonical_service": source,
             "source_canonical_revision": source_version,
             "source_workload": source_workload or (f"{source}-{source_version}"
                                                    if source != "unknown" else "unknown"),
             "destination_canonical_service": destination, "destination_service_name": destination,
             "destination_version": version, "response_code": code}, value)


def test_the_graph_counts_what_the_client_reported():
    graph = ServiceGraph.from_requests([
        series("source", "productpage", "v1", "reviews", "v2", "200", 20),
        series("destination", "productpage", "v1", "reviews", "v2", "200", 20),  # same requests
        series("source", "reviews", "v2", "ratings", "v1", "200", 15),
        series("source", "reviews", "v2", "ratings", "unknown", "500", 5),  # aborted: no peer
        series("destination", "unknown", "unknown", "productpage", "v1", "200", 20),
    ], window_s=10)
    assert sorted((e.source, e.destination, e.version, e.requests) for e in graph.edges) == [
        ("productpage", "reviews", "v2", 20), ("reviews", "ratings", "unknown", 5),
        ("reviews", "ratings", "v1", 15), ("unknown", "productpage", "v1", 20)]
    edges = {(e.source, e.destination, e.version): e for e in graph.edges}
    assert edges[("productpage", "reviews", "v2")].requests == 20  # not doubled
    assert edges[("productpage", "reviews", "v2")].rate == 2.0
    assert edges[("reviews", "ratings", "unknown")].error_share == 1.0
    assert edges[("unknown", "productpage", "v1")].requests == 20  # only its server saw it
    assert graph.figure()[0].keys() >= {"source", "destination", "version", "requests",
                                        "error_share"}
    claims = parse_claims("productpage calls reviews v2, reviews v2 calls ratings, "
                          "nothing calls reviews v1")
    assert [c.holds(graph) for c in claims] == [None, None, None]
    [wrong] = parse_claims("nothing calls ratings v1")
    assert "ratings v1" in wrong.holds(graph)
    [missing] = parse_claims("productpage calls reviews v3")
    assert "seen: productpage v1 -> reviews v2" in missing.holds(graph)
    with pytest.raises(ValueError, match="graph claim"):
        parse_claims("productpage talks to reviews")
    assert "istio_requests_total" in QUERY
