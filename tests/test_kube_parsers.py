"""Parsers and command builders of the kube backend, on the real outputs the labs show."""

import json
import os
import shutil
import subprocess
import http.server
import threading

import pytest

from bookinfo_labs import curlbatch
from bookinfo_labs.kube import diagnostics
from bookinfo_labs.kube.batch import batch_command, batch_script, config_line
from bookinfo_labs.kube.exec import ExecResult, exit_code_from_status
from bookinfo_labs.kube.fortio import load_argv, result_of
from bookinfo_labs.kube.stats import STATS_COMMAND, matching, parse_stats
from bookinfo_labs.loadgen import LoadResult, parse_fortio_json
from bookinfo_labs.mesh import HttpRequest, MeshError
from bookinfo_labs.proxystats import StatsChange

# --- fortio -------------------------------------------------------------------------

# fortio load -c 2 -qps 0 -n 20 -loglevel Warning -json - http://httpbin:8000/get, with the
# circuit-breaking lab's outcome (17 x 200, 3 x 503); field names per fhttp.HTTPRunnerResults
FORTIO_JSON = json.dumps({
    "RunType": "HTTP", "Labels": "", "StartTime": "2026-11-21T10:00:00.000000000Z",
    "RequestedQPS": "max", "RequestedDuration": "exactly 20 calls",
    "ActualQPS": 185.8, "ActualDuration": 107642000, "NumThreads": 2, "Version": "1.69.5",
    "Exactly": 20, "Jitter": False, "Uniform": False, "RunID": 0,
    "DurationHistogram": {
        "Count": 20, "Min": 0.000411, "Max": 0.02618, "Sum": 0.20816, "Avg": 0.010408,
        "StdDev": 0.0061,
        "Data": [{"Start": 0.000411, "End": 0.001, "Percent": 15, "Count": 3}],
        "Percentiles": [{"Percentile": 50, "Value": 0.0095}, {"Percentile": 75, "Value": 0.0142},
                        {"Percentile": 90, "Value": 0.018}, {"Percentile": 99, "Value": 0.0255},
                        {"Percentile": 99.9, "Value": 0.02611}],
    },
    "ErrorsDurationHistogram": {"Count": 3, "Percentiles": None},
    "Exactly_": None,
    "RetCodes": {"200": 17, "503": 3},
    "Sizes": {"Count": 20}, "HeaderSizes": {"Count": 20},
    "Sockets": [4, 5], "SocketCount": 9,
    "URL": "http://httpbin:8000/get",
})


def test_fortio_json_becomes_a_load_result():
    result = parse_fortio_json(FORTIO_JSON)
    assert result.requests == 20
    assert result.codes == {200: 17, 503: 3}
    assert result.duration_s == pytest.approx(0.107642)
    assert result.qps == pytest.approx(185.8)
    assert (result.p50, result.p90, result.p99) == (0.0095, 0.018, 0.0255)
    assert result.connections == 2 and result.sockets == 9
    assert result.fraction(503) == pytest.approx(0.15)


def test_code_lines_are_fortios_own_format():
    result = parse_fortio_json(FORTIO_JSON)
    # Go: "Code %3d : %d (%.1f %%)", codes ascending
    assert result.code_lines() == ["Code 200 : 17 (85.0 %)", "Code 503 : 3 (15.0 %)"]
    socket_errors = LoadResult(requests=30, duration_s=1, qps=30, codes={-1: 19, 200: 11})
    assert socket_errors.code_lines() == ["Code  -1 : 19 (63.3 %)", "Code 200 : 11 (36.7 %)"]


def test_fortio_bytes_and_missing_percentiles():
    data = json.loads(FORTIO_JSON)
    data["DurationHistogram"]["Percentiles"] = [{"Percentile": 50, "Value": 0.001}]
    result = parse_fortio_json(json.dumps(data).encode())
    assert result.p50 == 0.001 and result.p90 is None and result.p99 is None


def test_fortio_failures_are_explained():
    with pytest.raises(ValueError, match="did not print JSON"):
        parse_fortio_json("Aborting because of lookup httpbin: no such host")
    with pytest.raises(ValueError, match="did not complete"):
        parse_fortio_json('{"Message": "bad url"}')
    run = ExecResult(b"", b"Aborting because of dial tcp: connection refused\n", 1)
    with pytest.raises(MeshError, match="exited 1.*connection refused"):
        result_of(run, "fortio-deploy-abc")


def test_fortio_command_is_the_labs_with_json():
    argv = load_argv("http://httpbin:8000/get", connections=3, requests=30)
    assert argv == ["fortio", "load", "-c", "3", "-qps", "0", "-n", "30", "-loglevel", "Warning",
                    "-json", "-", "http://httpbin:8000/get"]
    assert load_argv("http://x", connections=1, requests=5, qps=2.5)[5] == "2.5"
    with pytest.raises(ValueError):
        load_argv("http://x", connections=0, requests=5)


# --- Envoy stats --------------------------------------------------------------------

# docs/facts.md#envoy-stats: `pilot-agent request GET stats | grep httpbin | grep pending`
STATS_TEXT = """\
cluster.outbound|8000||httpbin.default.svc.cluster.local;.circuit_breakers.default.remaining_pending: 1
cluster.outbound|8000||httpbin.default.svc.cluster.local;.circuit_breakers.default.rq_pending_open: 0
cluster.outbound|8000||httpbin.default.svc.cluster.local;.circuit_breakers.high.rq_pending_open: 0
cluster.outbound|8000||httpbin.default.svc.cluster.local;.upstream_rq_pending_active: 0
cluster.outbound|8000||httpbin.default.svc.cluster.local;.upstream_rq_pending_failure_eject: 0
cluster.outbound|8000||httpbin.default.svc.cluster.local;.upstream_rq_pending_overflow: 21
cluster.outbound|8000||httpbin.default.svc.cluster.local;.upstream_rq_pending_total: 29
cluster.outbound|8000||httpbin.default.svc.cluster.local;.upstream_rq_time: P0(nan,0) P25(nan,1.025) P50(nan,2.05) P99(nan,9.9)
cluster.outbound|9080||reviews.default.svc.cluster.local;.upstream_cx_connect_ms: No recorded values
listener.0.0.0.0_15090.downstream_cx_total: 7
server.state: 0
"""


def test_envoy_stats_text_to_values():
    stats = parse_stats(STATS_TEXT)
    # Istio >= 1.23 ends a cluster's alt_stat_name with ";" (istio.io circuit-breaking output)
    overflow = "cluster.outbound|8000||httpbin.default.svc.cluster.local;.upstream_rq_pending_overflow"
    assert stats[overflow] == 21
    burst = StatsChange("fortio", {overflow: 0}, stats)
    assert burst.cluster_delta("httpbin", "upstream_rq_pending_overflow") == 21
    assert stats["listener.0.0.0.0_15090.downstream_cx_total"] == 7
    assert stats["server.state"] == 0
    # histograms are not numbers
    assert not any(k.endswith(("upstream_rq_time", "upstream_cx_connect_ms")) for k in stats)
    assert len(matching(stats, "httpbin", "pending")) == 7
    assert parse_stats(STATS_TEXT.encode()) == stats
    assert STATS_COMMAND == ["pilot-agent", "request", "GET", "stats"]


# --- exec status --------------------------------------------------------------------

def test_exec_status_channel():
    assert exit_code_from_status(b'{"metadata":{},"status":"Success"}') == 0
    failure = {"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
               "message": "command terminated with non-zero exit code: exit code 56",
               "details": {"causes": [{"reason": "ExitCode", "message": "56"}]}}
    assert exit_code_from_status(json.dumps(failure)) == 56
    with pytest.raises(MeshError, match="container not found"):
        exit_code_from_status('{"status":"Failure","message":"container not found"}')
    with pytest.raises(MeshError, match="without a status"):
        exit_code_from_status(b"")


# --- the curl batch script, run by a real sh and curl ---------------------------------

class _Handler(http.server.BaseHTTPRequestHandler):
    def _reply(self, status, body, cookie=None):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        if cookie:
            self.send_header("Set-Cookie", cookie)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802
        if self.path == "/productpage":
            user = "jason" if "session=jason" in (self.headers.get("Cookie") or "") else "anonymous"
            self._reply(200, f"Simple Bookstore App for {user} {self.headers.get('end-user', '')}\n")
        else:
            self._reply(404, "")

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        form = self.rfile.read(length).decode()
        self._reply(302 if "username=jason" in form else 400, "", cookie="session=jason; Path=/")

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _run_in_shell(request, count, jar_dir):
    """What the client pod does with the exec's argv: here, on this machine."""
    marker = curlbatch.new_marker()
    argv = batch_command(request, count, marker, jar_dir=jar_dir)
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    done = subprocess.run(argv, capture_output=True, timeout=60, env=env)
    return curlbatch.parse_output(done.stdout, marker, count)


needs_curl = pytest.mark.skipif(shutil.which("curl") is None or shutil.which("sh") is None,
                                reason="needs sh and curl")


@needs_curl
def test_batch_script_runs_one_curl_for_the_whole_batch(server, tmp_path):
    request = HttpRequest(url=f"{server}/productpage", headers=(("end-user", "it's me"),))
    responses = _run_in_shell(request, 25, str(tmp_path))
    assert [r.status for r in responses] == [200] * 25
    assert responses[0].body == "Simple Bookstore App for anonymous it's me\n"
    script = batch_script(request, 25, "@@m@@")
    assert script.count("curl ") == 1 and "25" in script


@needs_curl
def test_batch_keeps_the_cookie_jar_between_execs(server, tmp_path):
    login = HttpRequest(url=f"{server}/login", method="POST", data="username=jason&passwd=x",
                        cookie_jar="jason")
    assert _run_in_shell(login, 1, str(tmp_path))[0].status == 302
    assert (tmp_path / "jason.cookies").is_file()
    page = HttpRequest(url=f"{server}/productpage", cookie_jar="jason")
    assert {r.body for r in _run_in_shell(page, 3, str(tmp_path))} == {
        "Simple Bookstore App for jason \n"}
    assert [r.status for r in _run_in_shell(HttpRequest(url=f"{server}/nope"), 2, str(tmp_path))] == [404, 404]


@needs_curl
def test_a_parallel_batch_is_one_exec_of_concurrent_curls_read_back_in_order(server, tmp_path):
    request = HttpRequest(url=f"{server}/productpage", parallel=3)
    responses = _run_in_shell(request, 10, str(tmp_path))
    assert [r.status for r in responses] == [200] * 10
    script = batch_script(request, 10, "@@m@@", jar_dir=str(tmp_path))
    assert script.count("curl ") == 3 and "wait; cat" in script
    assert not list(tmp_path.glob("bookinfo-labs-*"))  # the per-curl files are removed


def test_batch_config_line_is_curl_config():
    request = HttpRequest(url='http://productpage:9080/productpage?u="x"')
    assert config_line(request) + "\n" == curlbatch.curl_config(request, 1)
    script = batch_script(HttpRequest(url="http://productpage:9080/productpage", cookie_jar="jason"),
                          3, "@@m@@")
    assert "-b /tmp/jason.cookies -c /tmp/jason.cookies" in script
    with pytest.raises(ValueError):
        batch_script(request, 0, "@@m@@")


# --- proxy config dumps ---------------------------------------------------------------

ROUTES_DUMP = {"configs": [{
    "@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump.DynamicRouteConfig",
    "version_info": "2026-11-21T10:00:00Z/12",
    "route_config": {
        "@type": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
        "name": "9080",
        "virtual_hosts": [{
            "name": "reviews.default.svc.cluster.local:9080",
            "domains": ["reviews.default.svc.cluster.local", "reviews", "reviews.default.svc",
                        "10.96.12.34"],
            "routes": [
                {"match": {"prefix": "/", "headers": [
                    {"name": "end-user", "string_match": {"exact": "jason"}}]},
                 "route": {"cluster": "outbound|9080|v2|reviews.default.svc.cluster.local"},
                 "metadata": {"filter_metadata": {"istio": {
                     "config": "/apis/networking.istio.io/v1/namespaces/default/virtual-service/reviews"}}}},
                {"match": {"prefix": "/"},
                 "route": {"weighted_clusters": {"clusters": [
                     {"name": "outbound|9080|v1|reviews.default.svc.cluster.local", "weight": 80},
                     {"name": "outbound|9080|v3|reviews.default.svc.cluster.local", "weight": 20}]}},
                 "metadata": {"filter_metadata": {"istio": {
                     "config": "/apis/networking.istio.io/v1/namespaces/default/virtual-service/reviews"}}}},
            ]}],
    }}]}

CLUSTERS_DUMP = {"configs": [
    {"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump.DynamicCluster",
     "cluster": {"name": "outbound|8000||httpbin.default.svc.cluster.local", "type": "EDS",
                 "circuit_breakers": {"thresholds": [{"max_connections": 1}]},
                 "metadata": {"filter_metadata": {"istio": {
                     "config": "/apis/networking.istio.io/v1alpha3/namespaces/default/destination-rule/httpbin"}}}}},
    {"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump.DynamicCluster",
     "cluster": {"name": "outbound|9080||details.default.svc.cluster.local", "type": "EDS"}},
]}


def test_config_refs_find_applied_virtual_services_and_destination_rules():
    refs = diagnostics.config_refs(json.dumps(ROUTES_DUMP)) | diagnostics.config_refs(CLUSTERS_DUMP)
    assert diagnostics.has_config(refs, "VirtualService", "default", "reviews")
    assert diagnostics.has_config(refs, "DestinationRule", "default", "httpbin")
    assert not diagnostics.has_config(refs, "VirtualService", "default", "ratings")
    assert not diagnostics.has_config(refs, "Gateway", "default", "reviews")


def test_route_and_cluster_summaries():
    routes = diagnostics.route_lines(ROUTES_DUMP)
    assert len(routes) == 2
    assert "[end-user=jason]" in routes[0] and "outbound|9080|v2|" in routes[0]
    assert "virtual-service reviews.default" in routes[0]
    assert "v1|reviews.default.svc.cluster.local:80" in routes[1]
    assert "+2 more" in routes[0]
    clusters = diagnostics.cluster_lines(json.dumps(CLUSTERS_DUMP).encode())
    assert clusters[0].startswith("outbound|8000||httpbin") and "circuit_breakers" in clusters[0]
    assert "destination-rule httpbin.default" in clusters[0]
    assert clusters[1].startswith("outbound|9080||details")


def test_sections_never_raise():
    def broken():
        raise RuntimeError("no pod")

    text = diagnostics.section("routes", broken)
    assert text.startswith("===== routes =====") and "RuntimeError: no pod" in text
    events = [{"lastTimestamp": "2026-11-21T10:00:02Z", "type": "Warning", "reason": "BackOff",
               "involvedObject": {"kind": "Pod", "name": "reviews-v2-x"}, "message": "Back-off"},
              {"lastTimestamp": "2026-11-21T10:00:01Z", "type": "Normal", "reason": "Pulled",
               "involvedObject": {"kind": "Pod", "name": "reviews-v2-x"}, "message": "pulled"}]
    lines = diagnostics.event_lines(events)
    assert "Pulled" in lines[0] and "BackOff" in lines[1]
