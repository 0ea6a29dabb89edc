"""KubeMesh against an in-process fake API server: the real kubernetes client code runs.

The fake (tests/fakeapi.py) listens on 127.0.0.1 and speaks the API server's
wire formats: server-side apply PATCH, label-selected lists, DELETE with a lingering
object, the exec websocket channels and pod logs. Exec commands are answered by running
them here (sh + curl against a loopback server) or with the outputs the labs quote.
"""

import copy
import http.server
import json
import os
import shutil
import subprocess
import threading
import time

import pytest

from bookinfo_labs.kube.apply import MANAGED_BY_LABEL, SAMPLE_LABEL
from fakeapi import FakeApiServer
from bookinfo_labs.kube.mesh import KubeMesh, installed_istio_version
from bookinfo_labs.kube.stats import STATS_COMMAND
from bookinfo_labs.manifests import Manifest, load_file, parse_text
from bookinfo_labs.mesh import HttpRequest, MeshError, ResourceKey
from bookinfo_labs.versions import get_version

from test_kube_parsers import FORTIO_JSON, ROUTES_DUMP, STATS_TEXT

ISTIO = get_version("1.26")
BOOKINFO = ["details-v1", "ratings-v1", "reviews-v1", "reviews-v2", "reviews-v3", "productpage-v1"]
VS = ("networking.istio.io", "virtualservices")


class _Productpage(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        if self.path != "/productpage":
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b"<title>Simple Bookstore App</title> reviews-v1-5d8f7c9b6d-x2k4p\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def productpage():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Productpage)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


class Pod:
    """Answers exec commands the way the cluster's containers would."""

    def __init__(self, productpage_url):
        self.productpage_url = productpage_url
        self.execs = []
        self.route_dump = {"configs": []}
        self.route_dumps: list = []  # served first, one per config dump, as istiod pushes

    def __call__(self, namespace, pod, container, command):
        self.execs.append((pod, container, command))
        if command[:2] == ["sh", "-c"]:
            script = command[2].replace("http://productpage:9080", self.productpage_url)
            env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
            done = subprocess.run(["sh", "-c", script], capture_output=True, timeout=60, env=env)
            return done.stdout, done.stderr, done.returncode
        if command[:2] == ["fortio", "load"]:
            return FORTIO_JSON.encode(), b"Code 200 : 17 (85.0 %)\n", 0
        if command == STATS_COMMAND and container == "istio-proxy":
            return STATS_TEXT.encode(), b"", 0
        if command[-1].startswith("config_dump?resource=dynamic_route_configs"):
            if self.route_dumps:
                self.route_dump = self.route_dumps.pop(0)
            return json.dumps(self.route_dump).encode(), b"", 0
        if command[-1].startswith("config_dump?resource=dynamic_active_clusters"):
            return b'{"configs": []}', b"", 0
        return b"", f"sh: {command[0]}: not found\n".encode(), 127


def seed(fake, *, istiod_tag="1.26.0", samples=True):
    if istiod_tag:
        fake.add_deployment("istiod", namespace="istio-system", labels={"app": "istiod"},
                            containers=["discovery"], image_tag=istiod_tag, sidecar=False)
        fake.put({"apiVersion": "v1", "kind": "Service",
                  "metadata": {"name": "istio-ingressgateway", "namespace": "istio-system"},
                  "spec": {"type": "NodePort", "ports": [
                      {"name": "status-port", "port": 15021, "nodePort": 31021},
                      {"name": "http2", "port": 80, "nodePort": 30080},
                      {"name": "https", "port": 443, "nodePort": 30443}]}})
    if samples:
        for name in BOOKINFO:
            app, _, version = name.rpartition("-")
            fake.add_deployment(name, labels={"app": app, "version": version},
                                containers=[app])
        fake.add_deployment("curl", labels={"app": "curl"})


@pytest.fixture
def fake():
    server = FakeApiServer(delete_lag=2).start()
    yield server
    server.stop()


@pytest.fixture
def kubeconfig(fake, tmp_path):
    return fake.write_kubeconfig(str(tmp_path / "kubeconfig"))


@pytest.fixture
def mesh(fake, kubeconfig, productpage):
    seed(fake)
    fake.exec_handler = Pod(productpage)
    mesh = KubeMesh.connect(context=None, allow_any_context=False, istio=ISTIO,
                            kubeconfig=kubeconfig)
    mesh.propagation_timeout_s = 0.5
    mesh.propagation_poll_s = 0.01
    mesh.applier.poll_s = 0.01
    mesh.samples.poll_s = 0.01
    yield mesh
    mesh.close()


def lab_manifests(text):
    """Manifests as the loader would hand them over, without its model validation."""
    import yaml
    return [Manifest(source="<inline>", line=1, raw=doc, model=None)
            for doc in yaml.safe_load_all(text) if doc]


# --- connect: the guard and the checks, in order ------------------------------------------

def test_connect_checks_cluster_istio_and_samples(mesh, fake):
    assert mesh.name == "kube" and mesh.context == "kind-bookinfo-labs"
    assert 0.3 <= mesh.poll_interval_s <= 1
    assert fake.requests_to("GET", "/version")
    assert fake.requests_to("GET", "/namespaces/istio-system/deployments/istiod")


def test_a_non_kind_context_is_refused_without_allow_any_context(kubeconfig):
    with pytest.raises(MeshError, match="--allow-any-context") as info:
        KubeMesh.connect(context="prod", allow_any_context=False, istio=ISTIO,
                         kubeconfig=kubeconfig)
    assert "'prod'" in str(info.value)
    with pytest.raises(MeshError, match="no cluster reachable at context prod"):
        KubeMesh.connect(context="prod", allow_any_context=True, istio=ISTIO,
                         kubeconfig=kubeconfig)


def test_no_kubeconfig_stops_at_once_naming_make_kind_up(tmp_path):
    started = time.monotonic()
    with pytest.raises(MeshError) as info:
        KubeMesh.connect(context=None, allow_any_context=False, istio=ISTIO,
                         kubeconfig=str(tmp_path / "none"))
    assert str(info.value) == ("no cluster reachable at context kind-bookinfo-labs: "
                               "run `make kind-up` (needs Docker and kind)")
    assert time.monotonic() - started < 2


def test_a_stopped_cluster_stops_at_once(fake, kubeconfig):
    fake.stop()  # the kubeconfig still names it, nothing listens
    started = time.monotonic()
    with pytest.raises(MeshError, match=r"no cluster reachable at context kind-bookinfo-labs: "
                                        r"run `make kind-up`"):
        KubeMesh.connect(context=None, allow_any_context=False, istio=ISTIO, kubeconfig=kubeconfig)
    assert time.monotonic() - started < 4


def test_missing_istio_and_missing_samples_name_make_kind_up(fake, kubeconfig):
    with pytest.raises(MeshError, match=r"Istio is not installed .*no istiod.*`make kind-up`"):
        KubeMesh.connect(context=None, allow_any_context=False, istio=ISTIO, kubeconfig=kubeconfig)
    seed(fake, samples=False)
    with pytest.raises(MeshError, match=r"sample app bookinfo is not deployed .*`make kind-up`"):
        KubeMesh.connect(context=None, allow_any_context=False, istio=ISTIO, kubeconfig=kubeconfig)


def test_an_other_istio_release_is_named(fake, kubeconfig):
    seed(fake, istiod_tag="1.25.5")
    with pytest.raises(MeshError, match=r"runs Istio 1\.25\.5 but the labs expect 1\.26: "
                                        r"pass --istio-version 1\.25"):
        KubeMesh.connect(context=None, allow_any_context=False, istio=ISTIO, kubeconfig=kubeconfig)


def test_installed_version_from_the_istiod_image():
    def dep(image):
        return {"spec": {"template": {"spec": {"containers": [{"image": image}]}}}}
    assert installed_istio_version(dep("docker.io/istio/pilot:1.26.0")) == "1.26.0"
    assert installed_istio_version(dep("localhost:5000/istio/pilot:1.27.3-distroless")) == "1.27.3"
    assert installed_istio_version(dep("localhost:5000/istio/pilot")) is None


# --- apply / owned_resources / delete --------------------------------------------------------

def test_apply_is_server_side_strict_labelled_and_dry_run_first(mesh, fake):
    manifests = load_file("virtual-service-all-v1.yaml")
    keys = mesh.apply(manifests)
    assert keys == [ResourceKey("VirtualService", "default", n)
                    for n in ("productpage", "reviews", "ratings", "details")]
    patches = fake.requests_to("PATCH", "/virtualservices/")
    assert len(patches) == 8  # a dry run of each, then each for real
    assert [p.q("dryRun") for p in patches] == ["All"] * 4 + [None] * 4
    for p in patches:
        assert p.content_type == "application/apply-patch+yaml"
        assert (p.q("fieldManager"), p.q("fieldValidation"), p.q("force")) == (
            "bookinfo-labs", "Strict", "true")
        assert p.body["metadata"]["labels"][MANAGED_BY_LABEL] == "bookinfo-labs"
    assert patches[4].path == "/apis/networking.istio.io/v1alpha3/namespaces/default/virtualservices/productpage"
    stored = fake.get_object(*VS, "default", "reviews")
    assert stored["spec"]["http"][0]["route"][0]["destination"]["subset"] == "v1"
    assert mesh.owned_resources() == set(keys)


def test_an_unknown_field_is_rejected_by_the_server_and_nothing_is_applied(mesh, fake):
    bad = lab_manifests("""
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec: {host: reviews}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      wieght: 100
""")
    with pytest.raises(MeshError) as info:
        mesh.apply(bad)
    assert str(info.value) == (
        '<inline>: VirtualService "reviews" in namespace default: the API server rejected it: '
        ".spec.http[0].route[0].wieght: field not declared in schema. "
        "Nothing from this batch was applied.")
    assert not [p for p in fake.requests_to("PATCH") if p.q("dryRun") is None]
    assert mesh.owned_resources() == set()


def test_a_webhook_denial_leaves_nothing_applied(mesh, fake):
    fake.deny["ratings"] = "configuration is invalid: weights must sum to 100"
    with pytest.raises(MeshError, match='VirtualService "ratings".*validation.istio.io.*sum to 100'):
        mesh.apply(load_file("virtual-service-all-v1.yaml"))
    assert mesh.owned_resources() == set()


def test_objects_not_ours_are_never_overwritten_or_deleted(mesh, fake):
    fake.put({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
              "metadata": {"name": "reviews", "namespace": "default"},
              "spec": {"hosts": ["reviews"]}})
    with pytest.raises(MeshError, match=r'VirtualService "reviews" in namespace default already '
                                        r"exists and was not created by bookinfo-labs"):
        mesh.apply(load_file("virtual-service-all-v1.yaml"))
    assert not fake.requests_to("PATCH")
    with pytest.raises(MeshError, match="refusing to delete VirtualService/reviews"):
        mesh.delete([ResourceKey("VirtualService", "default", "reviews")])
    assert not fake.requests_to("DELETE")
    assert mesh.owned_resources() == set()  # not ours, so not listed either


def test_delete_waits_until_gone_and_missing_is_fine(mesh, fake):
    keys = mesh.apply(load_file("virtual-service-all-v1.yaml"))
    fake.delete_lag = 3
    mesh.delete(keys + [ResourceKey("VirtualService", "default", "never-applied")])
    assert len(fake.requests_to("DELETE")) == 4
    for key in keys:
        assert fake.get_object(*VS, "default", key.name) is None
    assert mesh.owned_resources() == set()


def test_owned_resources_spans_namespaces_and_skips_missing_crds(mesh, fake):
    mtls = lab_manifests("""
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
""")
    keys = mesh.apply(mtls)
    assert keys == [ResourceKey("PeerAuthentication", "istio-system", "default")]
    assert mesh.owned_resources() == set(keys)
    lists = fake.requests_to("GET", "/peerauthentications")
    assert lists[-1].path == "/apis/security.istio.io/v1/peerauthentications"
    assert lists[-1].q("labelSelector") == f"{MANAGED_BY_LABEL}=bookinfo-labs,!{SAMPLE_LABEL}"
    # the Gateway API CRDs are not installed: listed once, then no longer asked
    assert len(fake.requests_to("GET", "/apis/gateway.networking.k8s.io/v1/httproutes")) == 1
    mesh.delete(keys)
    assert mesh.owned_resources() == set()


def test_a_gateway_credential_is_lab_config_and_no_sidecar_is_waited_for(mesh, fake):
    """A Secret in istio-system (kubectl create secret tls): applied, listed as ours from
    the start (a killed run's is found), deleted; the gate waits for no sidecar route."""
    secret = lab_manifests("""
apiVersion: v1
kind: Secret
metadata: {name: httpbin-credential, namespace: istio-system}
type: kubernetes.io/tls
data: {tls.crt: Y2VydA==, tls.key: a2V5}
""")
    execs = len(fake.exec_handler.execs)
    keys = mesh.apply(secret)
    assert keys == [ResourceKey("Secret", "istio-system", "httpbin-credential")]
    stored = fake.get_object("", "secrets", "istio-system", "httpbin-credential")
    assert stored["metadata"]["labels"][MANAGED_BY_LABEL] == "bookinfo-labs"
    fresh = KubeMesh(context=mesh.context, api_client=mesh.api_client,
                     exec_client=mesh.exec_client, istio=ISTIO)  # a later run: no session types
    assert fresh.owned_resources() == set(keys)
    mesh.delete(keys)
    assert fake.get_object("", "secrets", "istio-system", "httpbin-credential") is None
    assert len(fake.exec_handler.execs) == execs  # no config dump: nothing to wait for
    assert mesh.owned_resources() == set()


# --- samples ------------------------------------------------------------------------------

def test_deploy_applies_a_sample_once_and_waits_for_its_rollout(mesh, fake):
    mesh.deploy("httpbin")
    for name in ("httpbin-v1", "httpbin-v2"):
        dep = fake.get_object("apps", "deployments", "default", name)
        assert dep["metadata"]["labels"][SAMPLE_LABEL] == "httpbin"
        assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == (
            "docker.io/mccutchen/go-httpbin:v2.15.0")
    svc = fake.get_object("", "services", "default", "httpbin")
    assert svc["spec"]["ports"][0] == {"name": "http", "port": 8000, "targetPort": 8080}
    before = len(fake.requests_to("PATCH"))
    mesh.deploy("httpbin")  # already running: nothing is applied
    assert len(fake.requests_to("PATCH")) == before
    assert mesh.owned_resources() == set()  # samples are not scenario config


def test_deploy_bookinfo_already_running_is_left_alone(mesh, fake):
    mesh.deploy("bookinfo")
    mesh.deploy(mesh.client())
    assert not fake.requests_to("PATCH")


def test_unknown_sample_is_named(mesh):
    with pytest.raises(MeshError, match="unknown sample app 'nope'"):
        mesh.deploy("nope")


# --- traffic --------------------------------------------------------------------------------

needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")


@needs_curl
def test_send_is_one_exec_in_the_client_pod(mesh, fake):
    pod = fake.exec_handler
    responses = mesh.send(mesh.client(), HttpRequest(url="http://productpage:9080/productpage"), 10)
    assert len(responses) == 10
    assert all(r.status == 200 and "Simple Bookstore App" in r.body and "reviews-v1-" in r.body
               for r in responses)
    assert len(pod.execs) == 1
    name, container, command = pod.execs[0]
    assert (name, container) == ("curl-5d8f7c9b6d-x2k4p", "curl")
    assert command[:2] == ["sh", "-c"] and command[2].count("curl ") == 1
    (exec_request,) = fake.requests_to("GET", "/pods/curl-5d8f7c9b6d-x2k4p/exec")
    assert exec_request.q("tty") == "false" and exec_request.q("stdin") == "false"
    missing = mesh.send("curl", HttpRequest(url="http://productpage:9080/nope"), 2)
    assert [r.status for r in missing] == [404, 404]


def test_send_reports_a_client_without_curl(mesh, fake):
    fake.exec_handler = lambda *_: (b"", b"sh: curl: not found\n", 127)
    with pytest.raises(MeshError, match=r"curl in pod curl-.* exited 127.*curl: not found"):
        mesh.send("curl", HttpRequest(url="http://productpage:9080/productpage"), 3)


def test_load_runs_fortio_with_json(mesh, fake):
    fake.add_deployment("fortio-deploy", labels={"app": "fortio"}, containers=["fortio"])
    result = mesh.load("fortio-deploy", "http://httpbin:8000/get", connections=2, requests=20)
    assert result.codes == {200: 17, 503: 3}
    assert result.code_lines()[0] == "Code 200 : 17 (85.0 %)"
    pod, container, command = fake.exec_handler.execs[-1]
    assert container == "fortio" and command[-3:] == ["-json", "-", "http://httpbin:8000/get"]
    # by app label too, as the lab's FORTIO_POD lookup does
    assert mesh.load("fortio", "http://httpbin:8000/get", connections=2, requests=20).requests == 20


def test_proxy_stats_and_logs(mesh, fake):
    fake.add_deployment("httpbin-v1", labels={"app": "httpbin", "version": "v1"},
                        containers=["httpbin"])
    stats = mesh.proxy_stats("httpbin-v1")
    assert stats["cluster.outbound|8000||httpbin.default.svc.cluster.local"
                 ";.upstream_rq_pending_overflow"] == 21
    assert fake.exec_handler.execs[-1][1] == "istio-proxy"
    fake.pod_logs[("default", "httpbin-v1-5d8f7c9b6d-x2k4p", "httpbin")] = (
        'time=2026-11-21T10:00:00Z level=INFO msg="200 GET /headers 0.1ms"\n'
        'time=2026-11-21T10:00:01Z level=INFO msg="200 GET /get 0.1ms"\n')
    lines = mesh.logs("httpbin-v1", since_s=4.2)
    assert len(lines) == 2 and "GET /headers" in lines[0]
    (log_request,) = fake.requests_to("GET", "/log")
    assert log_request.q("container") == "httpbin" and log_request.q("sinceSeconds") == "5"


def test_logs_of_the_sidecar_container(mesh, fake):
    fake.add_deployment("httpbin-v2", labels={"app": "httpbin", "version": "v2"},
                        containers=["httpbin"])
    pod = next(k[3] for k in fake.objects if k[1] == "pods" and k[3].startswith("httpbin-v2"))
    fake.pod_logs[("default", pod, "istio-proxy")] = (
        '[2026-11-21T10:00:00.000Z] "GET /headers?nonce=1 HTTP/1.1" 200 - via_upstream - "-" '
        '0 10 1 1 "-" "curl/8.16.0" "r" "httpbin-shadow:8000" "127.0.0.1:8080" inbound|8080|| '
        "- - - - default\n")
    [line] = mesh.logs("httpbin-v2", container="istio-proxy")
    assert "httpbin-shadow:8000" in line
    assert fake.requests_to("GET", "/log")[-1].q("container") == "istio-proxy"


def test_no_running_pod_is_a_clear_error(mesh):
    with pytest.raises(MeshError, match="no running pod for ghost in namespace default"):
        mesh.proxy_stats("ghost")


def test_ingress_address_on_kind_is_loopback_and_the_node_port(mesh):
    assert mesh.ingress_address() == ("127.0.0.1", 30080)
    assert mesh.ingress_address("https") == ("127.0.0.1", 30443)
    with pytest.raises(MeshError, match="no port named tcp"):
        mesh.ingress_address("tcp")


# --- propagation and diagnostics -------------------------------------------------------------

REVIEWS_V2 = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v2}
"""


def _routes_to(subset: str) -> dict:
    """ROUTES_DUMP (from VirtualService reviews) with every route sent to one subset."""
    dump = copy.deepcopy(ROUTES_DUMP)
    for route in dump["configs"][0]["route_config"]["virtual_hosts"][0]["routes"]:
        route["route"] = {"cluster": f"outbound|9080|{subset}|reviews.default.svc.cluster.local"}
    return dump


def _route_dumps_served(pod) -> int:
    return sum(1 for *_, command in pod.execs if "dynamic_route_configs" in command[-1])


def test_apply_waits_until_the_sidecar_config_differs_from_before(mesh, fake):
    """A previous scenario's reviews VirtualService is still in Envoy: its name alone must
    not open the gate for the re-applied one; the new routes must arrive."""
    pod = fake.exec_handler
    mesh.propagation_timeout_s = 10
    pod.route_dumps = [_routes_to("v1")] * 4 + [_routes_to("v2")]
    mesh.apply(parse_text(REVIEWS_V2))
    assert pod.route_dumps == []  # the gate read on until the new config was served
    assert _route_dumps_served(pod) == 5


def test_delete_waits_until_the_routes_have_left_the_sidecar(mesh, fake):
    pod = fake.exec_handler
    keys = mesh.apply(parse_text(REVIEWS_V2))  # the gate gives up: the dump never changes
    mesh.propagation_timeout_s = 10
    pod.route_dumps = [_routes_to("v2")] * 3 + [{"configs": []}]
    mesh.delete(keys)
    assert pod.route_dumps == []


def test_a_same_content_re_apply_is_not_waited_for(mesh, fake):
    pod = fake.exec_handler
    pod.route_dump = _routes_to("v2")
    mesh.apply(parse_text(REVIEWS_V2))  # new object: waited for, never changes, gives up
    served = _route_dumps_served(pod)
    mesh.apply(parse_text(REVIEWS_V2))  # unchanged: the API server kept its resourceVersion
    assert _route_dumps_served(pod) == served + 1  # the snapshot only


def test_a_delegate_is_not_waited_for_by_its_own_name(mesh, fake):
    """The routes made of a delegate VirtualService (no hosts) name its root only."""
    pod = fake.exec_handler
    mesh.propagation_timeout_s = 10
    pod.route_dumps = [{"configs": []}, _routes_to("v2")]
    delegate = ("---\napiVersion: networking.istio.io/v1\nkind: VirtualService\n"
                "metadata: {name: reviews-v2}\nspec:\n  http:\n"
                "  - route: [{destination: {host: reviews, subset: v2}}]\n")
    root = REVIEWS_V2.replace("  - route:\n    - destination: {host: reviews, subset: v2}\n",
                              "  - delegate: {name: reviews-v2}\n")
    mesh.apply(parse_text(root + delegate))
    assert _route_dumps_served(pod) == 2  # the snapshot, then the root's routes: done


def test_a_gate_that_timed_out_still_gates_the_next_apply(mesh, fake):
    pod = fake.exec_handler
    mesh.apply(load_file("virtual-service-all-v1.yaml"))  # the dump never mentions them
    pod.route_dumps = [{"configs": []}] * 2 + [_routes_to("v1")]
    mesh.propagation_timeout_s = 10
    mesh.apply(parse_text(REVIEWS_V2.replace("v2", "v1")))
    assert pod.route_dumps == []


def test_diagnostics_for_a_failed_scenario(mesh, fake):
    fake.exec_handler.route_dump = ROUTES_DUMP
    fake.put({"apiVersion": "v1", "kind": "Event",
              "metadata": {"name": "reviews-v2.1", "namespace": "default"},
              "involvedObject": {"kind": "Pod", "name": "reviews-v2-x"}, "reason": "BackOff",
              "type": "Warning", "message": "Back-off restarting failed container",
              "lastTimestamp": "2026-11-21T10:00:00Z"})
    fake.put({"apiVersion": "v1", "kind": "Event",
              "metadata": {"name": "reviews-v2.2", "namespace": "default"},
              "involvedObject": {"kind": "Pod", "name": "reviews-v2-x"}, "reason": "Pulled",
              "type": "Normal", "message": "Container image already present",
              "lastTimestamp": "2026-11-21T10:00:01Z"})
    pod = next(k[3] for k in fake.objects if k[1] == "pods" and k[3].startswith("curl"))
    fake.pod_logs[("default", pod, "istio-proxy")] = "".join(
        f'[2026-11-21T10:00:0{i}.000Z] "GET /reviews/0 HTTP/1.1" 200 - via_upstream\n'
        for i in range(8))
    manifests = load_file("virtual-service-all-v1.yaml")
    mesh.apply(manifests)
    report = mesh.diagnostics(manifests, since_s=3)
    # what was applied, one line each, not its YAML
    assert ("===== applied in this scenario =====\nVirtualService/productpage  "
            "(manifests/bookinfo/networking/virtual-service-all-v1.yaml:") in report
    assert "kind: VirtualService" not in report
    # the last requests: at most five access-log lines, of the last batch
    assert report.count('"GET /reviews/0 HTTP/1.1"') == 5
    assert fake.requests_to("GET", "/log")[-1].q("sinceSeconds") == "3"
    assert "===== istioctl analyze -n default, about these objects =====" in report
    assert "outbound|9080|v2|reviews.default.svc.cluster.local" in report
    assert "BackOff" in report and "Back-off restarting" in report
    assert "Pulled" not in report  # warnings only


def test_deploy_restarts_a_sample_that_runs_without_sidecar(mesh, fake):
    # deployed by us before the namespace had the injection label
    fake.add_deployment("httpbin-v1", labels={"app": "httpbin", "version": "v1"},
                        containers=["httpbin"], sidecar=False, sample="httpbin")
    mesh.deploy("httpbin")
    (restart,) = [p for p in fake.requests_to("PATCH", "/deployments/httpbin-v1")
                  if p.content_type == "application/strategic-merge-patch+json"]
    annotations = restart.body["spec"]["template"]["metadata"]["annotations"]
    assert "kubectl.kubernetes.io/restartedAt" in annotations
    assert mesh.samples.not_ready("httpbin") == {}


def test_logs_of_a_missing_container_is_a_clear_error(mesh, fake):
    fake.add_deployment("httpbin-v1", labels={"app": "httpbin", "version": "v1"},
                        containers=["httpbin"])
    del fake.objects[("", "pods", "default", "httpbin-v1-5d8f7c9b6d-x2k4p")]
    with pytest.raises(MeshError, match="no running pod for httpbin-v1"):
        mesh.logs("httpbin-v1")


# --- the context guard: a kind-* name is not enough -----------------------------------------

def _kubeconfig_for(path, context, server):
    import yaml
    doc = {"apiVersion": "v1", "kind": "Config", "current-context": context,
           "clusters": [{"name": "c", "cluster": {"server": server}}],
           "users": [{"name": "u", "user": {"token": "t"}}],
           "contexts": [{"name": context, "context": {"cluster": "c", "user": "u"}}]}
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def test_a_kind_named_context_elsewhere_is_refused_without_connecting(tmp_path, monkeypatch):
    import socket
    attempts = []

    def no_network(*args, **kwargs):
        attempts.append(args)
        raise OSError("no connection may be attempted")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    config = _kubeconfig_for(tmp_path / "kubeconfig", "kind-prod", "https://prod.example.invalid:6443")
    with pytest.raises(MeshError, match="--allow-any-context") as info:
        KubeMesh.connect(context="kind-prod", allow_any_context=False, istio=ISTIO,
                         kubeconfig=config)
    assert "'kind-prod'" in str(info.value) and "prod.example.invalid" in str(info.value)
    assert attempts == []


def test_check_kind_server_accepts_loopback_and_asks_for_nodes_of_a_kind_node_name():
    from bookinfo_labs.kube.context import check_kind_nodes, check_kind_server
    for server in ("https://127.0.0.1:41234", "https://localhost:6443", "https://[::1]:6443"):
        assert check_kind_server("kind-x", server, False) is False
    assert check_kind_server("kind-x", "https://bookinfo-labs-control-plane:6443", False) is True
    assert check_kind_server("kind-x", "https://10.0.0.1:6443", True) is False  # allowed
    with pytest.raises(MeshError, match="not on this machine"):
        check_kind_server("kind-x", "https://10.0.0.1:6443", False)
    check_kind_nodes("kind-x", [{"spec": {"providerID": "kind://docker/bookinfo-labs/n1"}}])
    with pytest.raises(MeshError, match=r"not kind nodes \(providerID aws:///eu-west-1a/i-1\)"):
        check_kind_nodes("kind-x", [{"spec": {"providerID": "aws:///eu-west-1a/i-1"}}])
    with pytest.raises(MeshError, match="not kind nodes"):
        check_kind_nodes("kind-x", [{"spec": {}}])


def test_the_run_retries_once_while_the_checks_never_retry(mesh):
    """urllib3 reads ``retries`` when the client builds its pool; setting it afterwards on the
    configuration is silently ignored, so the run's clients must be built with it."""
    for api_client in (mesh.api_client, mesh.exec_client):
        assert api_client.rest_client.pool_manager.connection_pool_kw["retries"].total == 1


def test_a_dropped_exec_websocket_is_a_mesh_error(monkeypatch):
    from websocket import WebSocketConnectionClosedException

    from bookinfo_labs.kube import exec as kexec

    class Dropped:
        def run_forever(self, timeout):
            raise WebSocketConnectionClosedException("Connection to remote host was lost.")

        def close(self):
            pass

    monkeypatch.setattr(kexec, "stream", lambda *args, **kwargs: Dropped())
    runner = kexec.PodExec(api_client=None)
    with pytest.raises(MeshError, match=r"exec connection to pod curl-1 container curl was lost"):
        runner.run("default", "curl-1", "curl", ["sh", "-c", "curl ..."])


# --- samples and lab config never take each other's objects ---------------------------------

def test_deploying_a_sample_never_takes_over_a_users_object(mesh, fake):
    fake.put({"apiVersion": "v1", "kind": "Service",
              "metadata": {"name": "httpbin", "namespace": "default"},
              "spec": {"ports": [{"port": 80}]}})
    with pytest.raises(MeshError, match=r'Service "httpbin" in namespace default already exists '
                                        r"and was not created by bookinfo-labs"):
        mesh.deploy("httpbin")
    assert not [p for p in fake.requests_to("PATCH") if p.q("dryRun") is None]
    assert fake.get_object("", "services", "default", "httpbin")["spec"]["ports"] == [{"port": 80}]


def test_lab_config_never_changes_or_deletes_a_samples_object(mesh, fake):
    mesh.deploy("httpbin")
    service = lab_manifests("""
apiVersion: v1
kind: Service
metadata: {name: httpbin}
spec:
  ports: [{name: http, port: 8000, targetPort: 9999}]
  selector: {app: httpbin}
""")
    with pytest.raises(MeshError, match=r"belongs to the httpbin sample app"):
        mesh.apply(service)
    with pytest.raises(MeshError, match=r"refusing to delete Service/httpbin .*httpbin sample"):
        mesh.delete([ResourceKey("Service", "default", "httpbin")])
    svc = fake.get_object("", "services", "default", "httpbin")
    assert svc["spec"]["ports"][0]["targetPort"] == 8080
    labelled = lab_manifests(f"""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: sneaky
  labels: {{{SAMPLE_LABEL}: httpbin}}
spec: {{hosts: [httpbin]}}
""")
    with pytest.raises(MeshError, match="lab config must not carry it"):
        mesh.apply(labelled)


def test_proxy_config_is_pilot_agents_config_dump(mesh, fake):
    from bookinfo_labs.proxyconfig import route_shares

    fake.exec_handler.route_dump = ROUTES_DUMP
    assert route_shares(mesh.proxy_config("curl", "routes"), "reviews") == {"v2": 100}
    _, container, command = fake.exec_handler.execs[-1]
    assert (container, command) == ("istio-proxy", ["pilot-agent", "request", "GET",
                                                    "config_dump?resource=dynamic_route_configs"])
    with pytest.raises(MeshError, match="choose one of routes"):
        mesh.proxy_config("curl", "filters")


class _Prometheus(http.server.BaseHTTPRequestHandler):
    """The addon's HTTP API: one series for any instant query."""

    asked: list = []

    def do_GET(self):  # noqa: N802
        type(self).asked.append(self.path)
        body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"destination_version": "v3"}, "value": [1795752005.5, "8"]}]}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@needs_curl
def test_prometheus_is_asked_with_curl_from_the_client_pod(mesh, fake):
    from bookinfo_labs.kube.addons import PROMETHEUS_URL

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Prometheus)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    pod = fake.exec_handler
    here = f"http://127.0.0.1:{httpd.server_address[1]}"
    fake.exec_handler = lambda ns, name, container, command: pod(
        ns, name, container, [*command[:2], command[2].replace(PROMETHEUS_URL, here)])
    try:
        query = 'sum by (destination_version) (istio_requests_total{destination_service=~"reviews.*"})'
        assert mesh.prometheus_query(query, at=1795752000.25) == [({"destination_version": "v3"}, 8.0)]
    finally:
        httpd.shutdown()
    name, container, command = pod.execs[-1]
    assert (name, container) == ("curl-5d8f7c9b6d-x2k4p", "curl")
    assert here + "/api/v1/query?query=sum+by" in command[2]  # was PROMETHEUS_URL
    [path] = _Prometheus.asked
    assert "time=1795752000.250" in path and "destination_service%3D~%22reviews" in path
