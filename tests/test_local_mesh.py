"""The local mesh end to end: real sockets, real curl, Bookinfo behind sidecars."""

import json
import socket
import subprocess
from pathlib import Path

import pytest

from bookinfo_labs.checks import eventually
from bookinfo_labs.checks.backends import reviews_version
from bookinfo_labs.local import LocalMesh
from bookinfo_labs.manifests import ManifestError, load_file, parse_text
from bookinfo_labs.mesh import HttpRequest, MeshError, ResourceKey
from bookinfo_labs.versions import get_version

REVIEWS = "http://reviews:9080/reviews/0"


@pytest.fixture(scope="module")
def mesh():
    mesh = LocalMesh.start(get_version("1.26"))
    mesh.deploy("bookinfo")
    mesh.deploy(mesh.client())
    yield mesh
    mesh.close()


@pytest.fixture
def applied(mesh):
    """Apply manifests for one test and remove them afterwards."""
    keys = []

    def apply(manifests):
        keys.extend(mesh.apply(manifests))
        return keys

    yield apply
    mesh.delete([k for k in keys if k in mesh.owned_resources()])


def proxy_log_line(mesh, workload: str, text: str) -> str:
    """The sidecar's access-log line containing ``text``: Envoy flushes its access log
    every 250 ms (--file-flush-interval-msec), so a line may come a little after the answer."""
    def find():
        return [line for line in mesh.logs(workload, container="istio-proxy") if text in line]

    return eventually(find, lambda lines: bool(lines) or False, expected=f"{text!r} logged",
                      times=1, timeout_s=5, interval_s=0.05, max_backoff_s=0.1)[-1]


def send(mesh, url=REVIEWS, count=1, **kwargs):
    return mesh.send(mesh.client(), HttpRequest(url=url, **kwargs), count)


WIEGHT = """\
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
  - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: v1
      wieght: 50
"""


def test_a_misspelt_field_names_the_file_and_the_route_and_changes_nothing(mesh, tmp_path):
    before = mesh.store.keys()
    bad = tmp_path / "virtual-service-typo.yaml"
    bad.write_text(WIEGHT)
    with pytest.raises(ManifestError) as err:
        mesh.apply(load_file(bad))
    message = str(err.value)
    assert err.value.path == "spec.http[0].route[0]"
    assert str(bad) in message and "spec.http[0].route[0]" in message and "wieght" in message
    assert "did you mean 'weight'" in message and "Nothing from" in message
    assert mesh.store.keys() == before


def test_a_bad_document_later_in_a_file_applies_nothing_of_that_file(mesh):
    text = load_file("virtual-service-all-v1.yaml")[0].raw  # a valid first document
    import yaml

    stream = yaml.safe_dump(text) + "---\n" + WIEGHT
    with pytest.raises(ManifestError):
        mesh.apply(parse_text(stream, "two-documents.yaml"))
    assert mesh.owned_resources() == set()


def test_malformed_yaml_names_the_line():
    with pytest.raises(ManifestError, match=r"broken\.yaml:4: malformed YAML, column 7: expected ',' or ']'"):
        parse_text("kind: VirtualService\nspec:\n  hosts: [reviews\n  http: x\n", "broken.yaml")


def test_a_missing_manifest_file_suggests_close_names():
    with pytest.raises(ManifestError, match="did you mean virtual-service-all-v1.yaml"):
        load_file("virtual-service-all-v2.yaml")


TO_REVEIWS = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reveiws}}]
"""


def test_a_route_to_a_host_that_is_not_a_service_is_applied_warns_and_gets_503_nc(mesh, applied):
    """Istio accepts it; istioctl analyze reports IST0101 (1.26.0 analyzers/virtualservice/
    destinationhosts.go); the route's cluster does not exist, so Envoy answers 503 NC."""
    manifests = parse_text(TO_REVEIWS, "typo-host.yaml")
    applied(manifests)
    [warning] = mesh.warnings_for(manifests)
    assert warning.startswith('typo-host.yaml: VirtualService "reviews": '
                              "spec.http[0].route[0].destination.host: ")
    assert "IST0101" in warning and 'Referenced host not found: "reveiws"' in warning
    assert "503 (NC, cluster_not_found)" in warning
    response = send(mesh)[0]
    assert (response.status, response.body, response.header("server")) == (503, "", "envoy")
    # Envoy logs no upstream cluster: the route names one that does not exist
    line = proxy_log_line(mesh, "curl", " 503 NC cluster_not_found ")
    assert ' "reviews:9080" "-" - - ' in line


def test_a_route_to_an_unknown_host_with_a_subset_also_warns_about_the_subset(mesh, applied):
    manifests = parse_text(TO_REVEIWS.replace("{host: reveiws}", "{host: reveiws, subset: v1}"))
    applied(manifests)
    host, subset = mesh.warnings_for(manifests)
    assert 'Referenced host not found: "reveiws"' in host
    assert "subset 'v1' of host 'reveiws' is not defined by any DestinationRule" in subset


def test_a_mirror_to_a_host_that_is_not_a_service_warns_and_the_route_still_serves(mesh, applied):
    manifests = parse_text(TO_REVEIWS.replace("{host: reveiws}}]", "{host: reviews}}]\n"
                                              "    mirror: {host: reveiws}"))
    applied(manifests)
    [warning] = mesh.warnings_for(manifests)
    assert "spec.http[0].mirror.host: " in warning
    assert 'IST0101 Referenced mirror host not found: "reveiws"' in warning
    assert send(mesh)[0].status == 200


def test_a_destination_rule_for_a_host_that_is_not_a_service_is_applied_and_has_no_effect(
        mesh, applied):
    manifests = parse_text("""\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reveiws}
spec:
  host: reveiws
  subsets: [{name: v1, labels: {version: v1}}]
  trafficPolicy: {connectionPool: {http: {http1MaxPendingRequests: 1, http2MaxRequests: 1}}}
""")
    applied(manifests)
    # istioctl analyze 1.26.0 has no analyzer for a DestinationRule's host
    assert mesh.warnings_for(manifests) == []
    assert [r.status for r in send(mesh, count=3)] == [200, 200, 200]
    # its subset is not one of reviews': a route to reviews v1 still finds no cluster
    route = parse_text(TO_REVEIWS.replace("{host: reveiws}", "{host: reviews, subset: v1}"))
    applied(route)
    assert send(mesh)[0].status == 503


def test_a_field_the_local_mesh_does_not_implement_is_refused_by_name(mesh):
    text = WIEGHT.replace("      wieght: 50\n", "").replace("  http:", "  exportTo: [.]\n  http:")
    with pytest.raises(ManifestError) as err:
        mesh.apply(parse_text(text, "export.yaml"))
    assert err.value.path == "spec.exportTo"
    assert "does not implement" in str(err.value)


def test_a_jwks_uri_is_refused_offline_and_nothing_is_applied(mesh):
    """istiod would fetch the key set; the local mesh has no internet and says to inline it."""
    before = mesh.owned_resources()
    text = ("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a}\n"
            "spec: {}\n---\napiVersion: security.istio.io/v1\nkind: RequestAuthentication\n"
            "metadata: {name: jwt-example}\nspec:\n  jwtRules:\n  - issuer: testing@secure.istio.io\n"
            "    jwksUri: https://raw.githubusercontent.com/istio/istio/release-1.5/security/"
            "tools/jwt/samples/jwks.json\n")
    with pytest.raises(ManifestError) as err:
        mesh.apply(parse_text(text, "jwtra.yaml"))
    assert err.value.path == "spec.jwtRules[0].jwksUri"
    assert "jwks:" in str(err.value) and "jwtra.yaml" in str(err.value)
    assert mesh.owned_resources() == before


def test_failure_diagnostics_name_what_was_applied_and_the_last_requests(mesh, applied):
    manifests = load_file("virtual-service-reviews-v3.yaml")
    applied(manifests)
    send(mesh, count=7)
    text = eventually(lambda: mesh.diagnostics(manifests, since_s=30),
                      lambda t: t.count('"GET /reviews/0 HTTP/1.1"') == 5 or False,
                      expected="the last five requests logged", times=1, timeout_s=5)
    assert ("VirtualService/reviews  (manifests/bookinfo/networking/"
            "virtual-service-reviews-v3.yaml:") in text
    assert "subset: v3" not in text  # the name and file, not the YAML again
    assert text.count("\"GET /reviews/0 HTTP/1.1\"") == 5  # the last five, not all seven


def test_an_undefined_subset_warns_at_apply_and_gets_503_nc(mesh, applied):
    manifests = parse_text(WIEGHT.replace("      wieght: 50\n", ""), "no-dr.yaml")
    applied(manifests)
    [warning] = mesh.warnings_for(manifests)
    assert "subset 'v1' of host 'reviews' is not defined by any DestinationRule" in warning
    assert "spec.http[0].route[0].destination" in warning
    response = send(mesh)[0]
    assert (response.status, response.body, response.header("server")) == (503, "", "envoy")
    assert ' "reviews:9080" "-" - - ' in proxy_log_line(mesh, "curl", " 503 NC cluster_not_found ")


def test_a_subset_without_endpoints_is_503_no_healthy_upstream(mesh, applied):
    applied(parse_text("""\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets: [{name: v9, labels: {version: v9}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews, subset: v9}}]}]
"""))
    response = send(mesh)[0]
    assert (response.status, response.body) == (503, "no healthy upstream")
    assert response.header("content-type") == "text/plain"


def test_without_a_virtual_service_every_version_is_reached(mesh):
    versions = {reviews_version(r) for r in send(mesh, count=60)}
    assert versions == {"v1", "v2", "v3"}


def test_the_sidecar_adds_envoy_headers_and_counts_with_envoy_stat_names(mesh):
    before = mesh.proxy_stats("curl")
    response = send(mesh, "http://ratings:9080/ratings/0")[0]
    assert response.status == 200 and response.body == '{"id":0,"ratings":{"Reviewer1":5,"Reviewer2":4}}'
    assert response.header("server") == "envoy"
    assert response.header("x-envoy-upstream-service-time").isdigit()
    name = "cluster.outbound|9080||ratings.default.svc.cluster.local;.upstream_rq_200"
    assert mesh.proxy_stats("curl")[name] == before.get(name, 0) + 1


def test_a_sidecar_exposes_only_the_stats_istios_bootstrap_keeps(mesh):
    """productpage's sidecar calls reviews and details, but its pod does not ask for
    cluster.outbound stats: as on a cluster, they do not exist there (curl's pod asks)."""
    send(mesh, "http://productpage:9080/productpage")
    productpage = mesh.proxy_stats("productpage-v1")
    assert not [name for name in productpage if name.startswith("cluster.outbound|")]
    assert any(name.startswith("cluster.outbound|9080||productpage") for name in mesh.proxy_stats("curl"))


def test_proxy_stats_matcher_of_a_pod_adds_to_the_bootstrap_list():
    from bookinfo_labs.local.bootstrap import StatsMatcher

    plain = StatsMatcher.for_pod("p", {})
    assert plain("server.live") and plain("cluster_manager.cds.update_success")
    assert plain("vhost.reviews.route.r1.upstream_rq_200") and plain("http.x;.rbac.denied")
    assert not plain("cluster.outbound|8000||httpbin.default.svc.cluster.local;.upstream_rq_retry")
    config = ('proxyStatsMatcher:\n  inclusionPrefixes: ["cluster.outbound"]\n'
              '  inclusionRegexps: [".*http_local_rate_limit.*"]\n')
    asked = StatsMatcher.for_pod("p", {"proxy.istio.io/config": config})
    assert asked("cluster.outbound|8000||httpbin.default.svc.cluster.local;.upstream_rq_retry")
    assert asked("http_local_rate_limiter.http_local_rate_limit.rate_limited")
    with pytest.raises(MeshError, match="pod p: proxy.istio.io/config proxyStatsMatcher"):
        StatsMatcher.for_pod("p", {"proxy.istio.io/config": "proxyStatsMatcher: {inclusionRegexps: ['(']}"})


@pytest.mark.parametrize("client", ["curl", "sleep", "fortio"])
def test_the_clients_ask_for_the_cluster_stats_the_labs_read(client):
    from bookinfo_labs.local.bootstrap import StatsMatcher
    from bookinfo_labs.samples import sample_objects

    (dep,) = [obj for _, obj in sample_objects(client, get_version("1.26")) if obj["kind"] == "Deployment"]
    annotations = dep["spec"]["template"]["metadata"]["annotations"]
    matcher = StatsMatcher.for_pod(client, annotations)
    assert matcher("cluster.outbound|8000||httpbin.default.svc.cluster.local;.upstream_rq_retry")


def test_unknown_names_do_not_resolve_inside_the_mesh(mesh):
    response = send(mesh, "http://no-such-service.invalid:9080/")[0]
    assert response.status == 0 and response.exit_code == 6


def test_deleting_what_is_already_gone_is_not_an_error(mesh, applied):
    [key] = applied(load_file("virtual-service-reviews-v3.yaml"))
    mesh.delete([key, ResourceKey("VirtualService", "default", "never-applied")])
    mesh.delete([key])
    assert mesh.owned_resources() == set()


def test_an_unknown_sample_is_a_clear_error(mesh):
    with pytest.raises(MeshError, match="unknown sample app 'bookinfoo': known samples are bookinfo"):
        mesh.deploy("bookinfoo")


def test_closing_the_mesh_stops_its_envoys_thread_and_ports():
    mesh = LocalMesh.start(get_version("1.26"))
    mesh.deploy("bookinfo")
    pod = mesh.registry.workload_pods("productpage-v1", "default")[0]
    envoys = [p.sidecar.process.pid for p in mesh.registry.pods if p.sidecar is not None]
    # six Bookinfo sidecars and the two gateways (the tracing addon's pod has no sidecar)
    assert len(envoys) == 8 and all(Path(f"/proc/{pid}").exists() for pid in envoys)
    zipkin = mesh.registry.workload_pods("zipkin", "istio-system")[0]
    mesh.apply(load_file("bookinfo-gateway.yaml"))
    ingress = mesh.ingress_address()
    socket.create_connection(ingress, timeout=2).close()
    mesh.close()
    assert not mesh._loop._thread.is_alive()
    assert not any(Path(f"/proc/{pid}").exists() for pid in envoys)
    for address in ((pod.outbound_ip, 9080), (pod.ip, 9080), (pod.app_ip, 9080), ingress,
                    (zipkin.ip, 9411)):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(address, timeout=2)
    mesh.close()  # a second close is harmless


def test_without_curl_the_local_mesh_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(MeshError, match="make deps"):
        LocalMesh.start(get_version("1.26"))


def test_the_service_registry_and_the_envoy_clusters_have_distinct_names(mesh):
    """local/registry.py holds Services and pods (what Kubernetes lists); the control plane
    (local/pilot/clusters.py) makes the Envoy clusters of each proxy. No module is called
    cluster.py, and the Python imitation of Envoy is gone (Envoy routes, retries, ejects)."""
    import importlib.util

    from bookinfo_labs.local.registry import ServiceRegistry

    for gone in ("cluster", "clusters", "sidecar", "routing", "retries", "outlier", "upstream",
                 "envoy"):
        assert importlib.util.find_spec(f"bookinfo_labs.local.{gone}") is None, gone
    assert isinstance(mesh.registry, ServiceRegistry)
    assert "outbound|9080||reviews.default.svc.cluster.local" in json.dumps(
        mesh.proxy_config("curl", "clusters"))


NACKED = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews, subset: v1}}]
"""


def test_a_resource_envoy_rejects_fails_the_apply_with_envoys_reason_and_changes_nothing(
        mesh, applied, monkeypatch):
    """A push Envoy NACKs (here a route regex RE2 refuses, slipped into the translation of
    one VirtualService) fails the apply with Envoy's own reason, puts the previous config
    back on every sidecar, and the previous routes serve again."""
    from bookinfo_labs.local import mesh as local_mesh
    from bookinfo_labs.local.pilot import ROUTE

    translate = local_mesh.pilot.generate

    def with_a_bad_regex(view, proxy):
        resources = translate(view, proxy)
        if "9080" in resources[ROUTE] and any(  # a sidecar's, not a gateway's
                c.kind == "VirtualService" and c.spec.http[0].route[0].destination.subset == "v1"
                for c in view.configs):
            for host in resources[ROUTE]["9080"]["virtual_hosts"]:
                host["routes"][0]["match"] = {"safe_regex": {"regex": "ja++son"}}
        return resources

    monkeypatch.setattr(local_mesh.pilot, "generate", with_a_bad_regex)
    applied(load_file("destination-rule-all.yaml") + load_file("virtual-service-reviews-v3.yaml"))
    before = mesh.owned_resources()
    assert {reviews_version(r) for r in send(mesh, count=4)} == {"v3"}
    with pytest.raises(ManifestError) as info:
        mesh.apply(parse_text(NACKED, "nacked.yaml"))
    message = str(info.value)
    assert message.startswith('nacked.yaml:1: VirtualService "reviews": the sidecars rejected '
                              "the config the control plane made of it (")
    assert "bad repetition operator: ++" in message  # Envoy's (RE2's) own words
    assert "the previous config is back" in message
    assert mesh.owned_resources() == before
    assert {reviews_version(r) for r in send(mesh, count=4)} == {"v3"}  # still served
    assert all(status.synced for status in mesh.proxy_status())


def test_a_regex_re2_rejects_is_refused_before_any_sidecar_sees_it(mesh):
    """Python's re takes a look-ahead and (3.11) a possessive a++; RE2 takes neither, and
    Istio's webhook refuses both: so does the validator, naming the field."""
    for regex in ("(?=x)jason", "ja++son"):
        with pytest.raises(ManifestError, match=r"regex.*RE2") as info:
            mesh.apply(parse_text(NACKED.replace(
                "  - route: [{destination: {host: reviews, subset: v1}}]",
                f"  - match: [{{headers: {{end-user: {{regex: \"{regex}\"}}}}}}]\n"
                "    route: [{destination: {host: reviews}}]"), "re2.yaml"))
        assert info.value.path == "spec.http[0].match[0].headers.end-user.regex"


def test_prometheus_names_and_labels_read_like_a_clusters(mesh):
    """Istio's stats tag rules in the bootstrap: the cluster name becomes a label."""
    send(mesh, "http://ratings:9080/ratings/0")
    text = mesh.registry.workload_pods("curl", "default")[0].sidecar.process.stats_prometheus()
    assert 'envoy_cluster_upstream_rq_total{cluster_name="outbound|9080||ratings.default.svc.' \
           'cluster.local"}' in text


def test_a_service_entry_without_ports_is_applied_and_warned_about(mesh, applied):
    """Istio accepts it (validation.go ValidateServiceEntry asks for no port) and makes
    nothing of it; the warning names the field and what to add."""
    manifests = parse_text("""\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext}
spec:
  hosts: [ext.example.com]
  resolution: DNS
""", "ext.yaml")
    applied(manifests)
    [warning] = mesh.warnings_for(manifests)
    assert warning.startswith('ext.yaml: ServiceEntry "ext": spec.ports: no ports')
    assert "ext.example.com" in warning


def test_a_shell_reaches_bookinfo_through_the_ingress_gateway(mesh, applied):
    """What a learner types while the mesh runs: a plain curl from a shell, outside the
    test process and every pod, to the gateway's port on 127.0.0.1."""
    applied(load_file("bookinfo-gateway.yaml"))
    host, port = mesh.ingress_address()
    assert host == "127.0.0.1"

    def page():
        return subprocess.run(["sh", "-c", f"curl -s http://{host}:{port}/productpage"],
                              capture_output=True, text=True, timeout=30).stdout

    def check(body):
        assert "<title>Simple Bookstore App</title>" in body, body[:200]

    eventually(page, check, expected="the product page through the gateway", times=1,
               timeout_s=10)
