"""The emulated cluster (tests/emulated): a Kubernetes API whose pods are the local mesh's.

These pin what the kube backend relies on when the whole catalogue runs through it
(`make kube-emulated`): it boots like `make kind-up`, the context guard accepts it only as
the emulated cluster, Istio objects reach real Envoy asynchronously after admission, and
exec and logs happen inside the pod.
"""

from __future__ import annotations

import json

import pytest
import yaml

from emulated.cluster import EmulatedCluster

from bookinfo_labs.checks.eventually import eventually
from bookinfo_labs.kube import KubeMesh
from bookinfo_labs.kube.api import KubeApi, KubeApiError, load_api_client
from bookinfo_labs.kube.context import EMULATED_CONTEXT
from bookinfo_labs.kube.exec import PodExec
from bookinfo_labs.manifests import parse_text
from bookinfo_labs.mesh import HttpRequest, MeshError, ResourceKey
from bookinfo_labs.versions import get_version

ISTIO = get_version("1.26")
VS = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
"""
DR = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
"""


def until(check, what: str, timeout_s: float = 10) -> None:
    """``check`` holds once, within the deadline (the emulation is asynchronous)."""
    eventually(lambda: None, lambda _: check(), expected=what, times=1, timeout_s=timeout_s,
               interval_s=0.05)


@pytest.fixture(scope="module")
def cluster():
    emulated = EmulatedCluster(ISTIO, samples=("bookinfo", ISTIO.client, "fortio")).start()
    yield emulated
    emulated.close()


@pytest.fixture(scope="module")
def kube(cluster):
    mesh = KubeMesh.connect(context=None, allow_any_context=False, istio=ISTIO,
                            kubeconfig=cluster.kubeconfig, emulated=True)
    yield mesh
    mesh.close()


@pytest.fixture
def api(cluster):
    client = load_api_client(EMULATED_CONTEXT, cluster.kubeconfig)
    yield KubeApi(client)
    client.close()


def test_the_kube_backend_connects_only_as_to_an_emulated_cluster(cluster, kube):
    assert kube.context == EMULATED_CONTEXT
    with pytest.raises(MeshError, match="--allow-any-context"):
        KubeMesh.connect(context=EMULATED_CONTEXT, allow_any_context=False, istio=ISTIO,
                         kubeconfig=cluster.kubeconfig)


def test_every_sample_pod_runs_with_a_sidecar_on_a_local_workload(cluster, api):
    pods = api.request("GET", "/api/v1/namespaces/default/pods")["items"]
    names = {p["metadata"]["name"] for p in pods}
    assert {p.name for p in cluster.mesh.registry.pods if p.namespace == "default"} == names
    for pod in pods:
        assert pod["spec"]["containers"][-1]["name"] == "istio-proxy"
        assert pod["status"]["phase"] == "Running"


def test_the_install_s_gateways_run_as_envoy_alone_on_their_node_ports(cluster, api, kube):
    """istio-system's gateway pods are the proxy container only; the ingress gateway's
    NodePort is where this machine reaches it."""
    pods = api.request("GET", "/api/v1/namespaces/istio-system/pods")["items"]
    gateways = sorted(p["metadata"]["labels"]["istio"] for p in pods)
    assert gateways == ["egressgateway", "ingressgateway"]
    for pod in pods:
        assert [c["name"] for c in pod["spec"]["containers"]] == ["istio-proxy"]
    local = next(p for p in cluster.mesh.registry.pods if p.labels.get("istio") == "ingressgateway")

    def published():  # the kubelet writes the nodePorts once the gateway pod has started
        assert kube.ingress_address() == ("127.0.0.1", local.host_ports[8080])

    until(published, "the ingress gateway's http2 nodePort is where the local mesh bound it")


def test_curl_in_the_client_pod_goes_through_its_sidecar(kube, cluster):
    [response] = kube.send(ISTIO.client, HttpRequest(url="http://productpage:9080/productpage"))
    assert response.status == 200
    assert "<title>Simple Bookstore App</title>" in response.body
    until(lambda: _assert_logged(kube, ISTIO.client, "/productpage"), "the request logged")


def _assert_logged(kube, workload, path):
    lines = kube.logs(workload, container="istio-proxy")
    assert any(f"GET {path} " in line for line in lines), lines[-3:]


def test_a_name_that_is_not_a_service_does_not_resolve_in_the_pod(kube):
    [response] = kube.send(ISTIO.client, HttpRequest(url="http://nowhere:9080/"))
    assert response.status == 0 and response.exit_code == 6  # couldn't resolve host


def test_applied_istio_config_reaches_the_client_sidecar_and_leaves_it(kube):
    keys = kube.apply(parse_text(VS + "---\n" + DR))
    try:
        def routed() -> None:
            refs = json.dumps(kube.proxy_config(ISTIO.client, "routes"))
            assert "/namespaces/default/virtual-service/reviews" in refs
        until(routed, "the VirtualService in the client's routes")
    finally:
        kube.delete(keys)

    def gone() -> None:
        refs = json.dumps(kube.proxy_config(ISTIO.client, "routes"))
        assert "virtual-service/reviews" not in refs
    until(gone, "the VirtualService gone from the client's routes")


def test_the_secrets_of_istio_system_reach_the_gateways_control_plane(kube, cluster):
    """istiod serves gateways the Secrets of their namespace: the emulation hands those to
    the local control plane (created, changed, deleted); other namespaces' stay out."""
    def secret(namespace: str, value: str) -> str:
        return (f"apiVersion: v1\nkind: Secret\nmetadata: {{name: cred, namespace: {namespace}}}\n"
                f"type: Opaque\ndata: {{ca.crt: {value}}}\n")

    gateway_key = ResourceKey("Secret", "istio-system", "cred")
    keys = kube.apply(parse_text(secret("istio-system", "b25l") + "---\n" + secret("default", "b25l")))
    try:
        def stored(value: bytes) -> None:
            entry = cluster.mesh.store.get(gateway_key)
            assert entry is not None and entry.manifest.model.decoded() == {"ca.crt": value}
            assert cluster.mesh.store.get(ResourceKey("Secret", "default", "cred")) is None
        until(lambda: stored(b"one"), "the Secret in the control plane's store")
        kube.apply(parse_text(secret("istio-system", "dHdv")))
        until(lambda: stored(b"two"), "the changed Secret in the store")
    finally:
        kube.delete(keys)
    until(lambda: _absent(cluster, gateway_key), "the deleted Secret gone from the store")


def _absent(cluster, key) -> None:
    assert cluster.mesh.store.get(key) is None


def test_strict_validation_and_the_webhook_refuse_before_anything_is_stored(kube, api):
    """Sent as the backend sends them, past the tool's own validation (which catches both
    first): the API server's schema check and Istio's webhook must hold on their own."""
    def server_side_apply(text: str) -> None:
        kube.applier.apply([kube.applier.target(yaml.safe_load(text), "x.yaml")])

    misspelt = VS.replace("subset: v1}", "subset: v1}\n      wieght: 100")
    with pytest.raises(MeshError, match=r"\.spec\.http\[0\]\.route\[0\]\.wieght: field not declared in schema"):
        server_side_apply(misspelt)
    bad_weight = VS.replace("subset: v1}", "subset: v1}\n      weight: -1")
    with pytest.raises(MeshError, match='admission webhook "validation.istio.io" denied'):
        server_side_apply(bad_weight)
    with pytest.raises(KubeApiError) as info:
        api.request("GET", "/apis/networking.istio.io/v1/namespaces/default/virtualservices/reviews")
    assert info.value.not_found


def test_fortio_runs_in_the_fortio_pod_and_prints_fortio_json(kube):
    result = kube.load("fortio", "http://productpage:9080/productpage", connections=2, requests=6)
    assert result.requests == 6 and result.count(200) == 6
    assert result.connections == 2


def test_pilot_agent_answers_from_the_sidecars_envoy_admin(kube):
    stats = kube.proxy_stats(ISTIO.client)
    assert any(name.startswith("cluster.outbound|9080||productpage") for name in stats)


def test_a_tool_the_image_does_not_have_is_not_found(cluster, kube):
    pod = kube._pod("fortio")
    run = PodExec(kube.exec_client).run("default", pod["metadata"]["name"], "fortio",
                                        ["sh", "-c", "echo hi"], 30)
    assert run.exit_code == 127 and b'"sh": executable file not found' in run.stderr


def test_logs_since_seconds_leave_out_older_lines(kube):
    kube.send(ISTIO.client, HttpRequest(url="http://productpage:9080/health"))
    until(lambda: _assert_logged(kube, ISTIO.client, "/health"), "the request logged")

    def aged_out() -> None:
        lines = kube.logs(ISTIO.client, since_s=1, container="istio-proxy")
        assert not any("GET /health " in line for line in lines), lines[-3:]
    until(aged_out, "the line older than sinceSeconds=1 left out", timeout_s=5)
    assert any("GET /health " in line for line in
               kube.logs(ISTIO.client, since_s=3600, container="istio-proxy"))
