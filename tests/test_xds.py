"""The ADS server with real Envoys: push, ACK, serve; NACK with Envoy's reason; roll back."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from bookinfo_labs.local.envoyproc import EnvoyProcess
from bookinfo_labs.local.xds import (
    CLUSTER,
    ENDPOINT,
    LISTENER,
    ROUTE,
    XdsRejected,
    XdsServer,
    format_status,
)

HCM = ("type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
       "HttpConnectionManager")
ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
ADS = {"ads": {}, "resource_api_version": "V3"}


class Backend:
    """A tiny HTTP server on 127.0.0.1 answering ``<name> <path>``."""

    def __init__(self, name: str) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                body = f"{name} {self.path}".encode()
                self.send_response(200)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def backends():
    one, two = Backend("backend-one"), Backend("backend-two")
    yield one, two
    one.close()
    two.close()


@pytest.fixture(scope="module")
def xds():
    server = XdsServer()
    assert server.start() == server.port > 0
    yield server
    server.stop()


@pytest.fixture
def start_envoy(xds, tmp_path):
    started = []

    def start(node_id: str) -> EnvoyProcess:
        proc = EnvoyProcess(xds.ads_bootstrap(node_id, "test"), tmp_path, name=node_id)
        started.append(proc)
        return proc.start()

    yield start
    for proc in started:
        proc.stop()


def resources(backend_port: int, *, regex: str | None = None,
              connect_timeout: str = "1s") -> dict[str, list[dict]]:
    """A listener (routes over RDS), its route config, an EDS cluster and its endpoints."""
    match = {"safe_regex": {"regex": regex}} if regex else {"prefix": "/"}
    return {
        "Listener": [{
            "name": "outbound",
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
            "stat_prefix": "outbound",
            "filter_chains": [{"filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "@type": HCM,
                    "stat_prefix": "outbound_0.0.0.0_9080;",
                    "rds": {"route_config_name": "9080", "config_source": ADS},
                    "http_filters": [{"name": "envoy.filters.http.router",
                                      "typed_config": {"@type": ROUTER}}],
                }}]}],
        }],
        "RouteConfiguration": [{"name": "9080", "virtual_hosts": [{
            "name": "backend", "domains": ["*"],
            "routes": [{"match": match, "route": {"cluster": "backend"}}]}]}],
        "Cluster": [{"name": "backend", "type": "EDS", "connect_timeout": connect_timeout,
                     "eds_cluster_config": {"eds_config": ADS}}],
        "ClusterLoadAssignment": [{"cluster_name": "backend", "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": {"socket_address": {
                "address": "127.0.0.1", "port_value": backend_port}}}}]}]}],
    }


def curl(proc: EnvoyProcess, path: str = "/hello") -> str:
    port = proc.listeners()["outbound"]
    done = subprocess.run(
        ["curl", "-sS", "--noproxy", "*", "--max-time", "5", "-w", " %{http_code}",
         f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, timeout=10)
    assert done.returncode == 0, done.stderr
    return done.stdout


def timed_ack(xds: XdsServer, node_id: str, snapshot: dict) -> tuple[str, float]:
    version = xds.set_snapshot(node_id, snapshot)
    start = time.monotonic()
    xds.wait_acked(node_id, version, timeout_s=10)
    return version, time.monotonic() - start


def status_of(xds: XdsServer, node_id: str):
    return next(s for s in xds.status() if s.node_id == node_id)


def test_push_ack_serve_then_a_nack_and_a_rollback(xds, backends, start_envoy):
    proxy = start_envoy("proxy-a")

    v1, push_to_ack = timed_ack(xds, "proxy-a", resources(backends[0].port))
    print(f"\npush to ACK, first config (CDS, EDS, LDS, RDS): {push_to_ack * 1000:.1f} ms")
    assert curl(proxy) == "backend-one /hello 200"
    status = status_of(xds, "proxy-a")
    assert status.connected and status.cluster == "test" and status.version == v1
    assert {k: t.state for k, t in status.types.items()} == {
        "CDS": "SYNCED", "EDS": "SYNCED", "LDS": "SYNCED", "RDS": "SYNCED", "SDS": "NOT SENT"}

    # A look-ahead passes protobuf parsing; Envoy's RE2 rejects it: a NACK, not a crash.
    v2 = xds.set_snapshot("proxy-a", resources(backends[0].port, regex="(?=x).*"))
    start = time.monotonic()
    with pytest.raises(XdsRejected) as rejected:
        xds.wait_acked("proxy-a", v2, timeout_s=10)
    print(f"push to NACK: {(time.monotonic() - start) * 1000:.1f} ms")
    assert (rejected.value.node_id, rejected.value.type_url, rejected.value.version) == (
        "proxy-a", ROUTE, v2)
    assert "invalid perl operator: (?=" in rejected.value.reason
    assert str(rejected.value).startswith(f"Envoy proxy-a rejected RDS version {v2}: ")
    rds = status_of(xds, "proxy-a").types["RDS"]
    assert (rds.sent, rds.acked, rds.state) == (v2, v1, "STALE")
    assert "invalid perl operator" in rds.error
    assert curl(proxy) == "backend-one /hello 200"  # the old route keeps serving

    previous = xds.previous("proxy-a")
    assert previous.version == v1
    v3, rollback = timed_ack(xds, "proxy-a", previous.resources)
    print(f"push to ACK, rollback: {rollback * 1000:.1f} ms")
    assert int(v3) > int(v2)
    assert curl(proxy) == "backend-one /hello 200"
    status = status_of(xds, "proxy-a")
    assert status.synced
    assert {k: (t.state, t.acked) for k, t in status.types.items() if k != "SDS"} == {
        k: ("SYNCED", v3) for k in ("CDS", "EDS", "LDS", "RDS")}
    print(format_status(xds.status()))


def test_endpoint_and_cluster_changes_apply(xds, backends, start_envoy):
    proxy = start_envoy("proxy-b")
    timed_ack(xds, "proxy-b", resources(backends[0].port))
    assert curl(proxy, "/one") == "backend-one /one 200"

    _, moved = timed_ack(xds, "proxy-b", resources(backends[1].port))
    print(f"\npush to ACK, endpoints moved: {moved * 1000:.1f} ms")
    assert curl(proxy, "/two") == "backend-two /two 200"

    # A changed EDS cluster warms again and needs its endpoints: it must not hang.
    _, changed = timed_ack(xds, "proxy-b", resources(backends[1].port, connect_timeout="2s"))
    print(f"push to ACK, cluster changed: {changed * 1000:.1f} ms")
    assert curl(proxy, "/three") == "backend-two /three 200"
    clusters = proxy.config_dump("dynamic_active_clusters")["configs"]
    assert [c["cluster"]["connect_timeout"] for c in clusters
            if c["cluster"]["name"] == "backend"] == ["2s"]


def test_a_snapshot_set_before_the_envoy_starts_is_served_when_it_connects(
        xds, backends, start_envoy):
    version = xds.set_snapshot("proxy-c", resources(backends[0].port))
    start = time.monotonic()
    proxy = start_envoy("proxy-c")
    admin_up = time.monotonic() - start
    xds.wait_acked("proxy-c", version, timeout_s=10)
    print(f"\none Envoy: admin up in {admin_up * 1000:.0f} ms, its first config ACKed "
          f"{(time.monotonic() - start) * 1000:.0f} ms after the start")
    assert curl(proxy) == "backend-one /hello 200"
    assert proxy.ready() == "LIVE"


def test_ten_envoys_become_ready_and_ack(xds, backends, tmp_path):
    nodes = [f"proxy-{i}" for i in range(10)]
    procs = [EnvoyProcess(xds.ads_bootstrap(node, "test"), tmp_path, name=node)
             for node in nodes]
    try:
        start = time.monotonic()
        with ThreadPoolExecutor(len(procs)) as pool:
            list(pool.map(lambda p: p.start(), procs))
        ready = time.monotonic() - start
        versions = {node: xds.set_snapshot(node, resources(backends[0].port)) for node in nodes}
        for node, version in versions.items():
            xds.wait_acked(node, version, timeout_s=20)
        acked = time.monotonic() - start
        print(f"\n10 Envoys: admin up in {ready:.2f} s, every snapshot ACKed after "
              f"{acked:.2f} s")
        assert all(status_of(xds, node).synced for node in nodes)
        assert curl(procs[-1]) == "backend-one /hello 200"
    finally:
        for proc in procs:
            proc.stop()


# --- the cache without an Envoy ----------------------------------------------------------


def test_a_dict_that_does_not_parse_names_resource_and_field_and_changes_nothing(xds):
    bad_route = {"RouteConfiguration": [{"name": "9080", "virtual_hosts": [
        {"name": "a", "domain": ["*"]}]}]}
    with pytest.raises(ValueError) as failure:
        xds.set_snapshot("cache-only", bad_route)
    message = str(failure.value)
    assert message.startswith("RDS '9080': ")
    assert '"domain"' in message and "RouteConfiguration.virtual_hosts[0]" in message
    assert xds.snapshot("cache-only") is None

    hcm_typo = resources(1)
    hcm_typo["Listener"][0]["filter_chains"][0]["filters"][0]["typed_config"]["stat_prefx"] = "x"
    with pytest.raises(ValueError, match=r"^LDS 'outbound': .*\"stat_prefx\""):
        xds.set_snapshot("cache-only", hcm_typo)
    with pytest.raises(ValueError, match=r"^CDS resource without a 'name'"):
        xds.set_snapshot("cache-only", {"Cluster": [{"type": "EDS"}]})
    with pytest.raises(ValueError, match=r"^CDS 'a' is defined twice"):
        xds.set_snapshot("cache-only", {"Cluster": [{"name": "a"}, {"name": "a"}]})
    with pytest.raises(ValueError, match=r"^unknown resource type 'Route'"):
        xds.set_snapshot("cache-only", {"Route": []})
    assert xds.snapshot("cache-only") is None


def test_snapshots_take_type_urls_or_names_and_versions_increase(xds):
    snapshot = resources(1)
    by_url = {LISTENER: snapshot["Listener"], ROUTE: snapshot["RouteConfiguration"],
              CLUSTER: snapshot["Cluster"], ENDPOINT: snapshot["ClusterLoadAssignment"]}
    assert xds.set_snapshot("versions", by_url) == "1"
    assert xds.set_snapshot("versions", {"CDS": snapshot["Cluster"]}) == "2"
    assert xds.set_snapshot("versions", snapshot) == "3"
    by_name = {CLUSTER: {"backend": snapshot["Cluster"][0]}}  # as pilot.generate gives them
    assert xds.set_snapshot("versions", by_name) == "4"
    with pytest.raises(ValueError, match=r"^CDS 'backend' is filed under 'other'"):
        xds.set_snapshot("versions", {CLUSTER: {"other": snapshot["Cluster"][0]}})
    assert xds.set_snapshot("versions", snapshot) == "5"
    current = xds.snapshot("versions")
    assert current.references(ROUTE) == {"9080"} and current.references(ENDPOINT) == {"backend"}
    assert [s.version for s in xds.history("versions")] == ["1", "2", "3", "4", "5"]
    assert xds.previous("versions").resources[LISTENER] == []
    assert xds.previous("versions").resources[CLUSTER] == snapshot["Cluster"]


def test_any_extension_of_xds_protos_is_imported_on_demand(xds):
    snapshot = resources(1)
    hcm = snapshot["Listener"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    lua_module = "envoy.extensions.filters.http.lua.v3.lua_pb2"
    sys.modules.pop(lua_module, None)
    hcm["http_filters"].insert(0, {"name": "envoy.filters.http.lua", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
        "default_source_code": {"inline_string": "function envoy_on_request(h) end"}}})
    assert xds.set_snapshot("lua", snapshot)


def test_wait_acked_says_what_is_pending(xds):
    version = xds.set_snapshot("ghost", resources(1))
    with pytest.raises(TimeoutError, match=r"^Envoy ghost did not ACK version 1 within 0.1 s: "
                                           r"the proxy is not connected$"):
        xds.wait_acked("ghost", version, timeout_s=0.1)
    with pytest.raises(ValueError, match="no version 7 was set for node 'ghost'"):
        xds.wait_acked("ghost", "7", timeout_s=0.1)
    assert status_of(xds, "ghost").types["CDS"].state == "NOT SENT"


def test_a_timeout_names_what_the_snapshot_refers_to_but_lacks(xds, start_envoy):
    # An EDS cluster without its ClusterLoadAssignment warms until Envoy's
    # initial_fetch_timeout (15 s here): LDS is not even asked for meanwhile.
    start_envoy("proxy-d")
    snapshot = resources(1)
    del snapshot["ClusterLoadAssignment"]
    version = xds.set_snapshot("proxy-d", snapshot)
    with pytest.raises(TimeoutError) as failure:
        xds.wait_acked("proxy-d", version, timeout_s=0.5)
    assert str(failure.value) == (
        f"Envoy proxy-d did not ACK version {version} within 0.5 s: LDS not requested yet; "
        "RDS not requested yet; the snapshot refers to EDS backend but has none by that name")
