"""The same Mesh-level checks against every available backend.

``local`` always runs. ``kube`` runs when the labs' kind cluster is reachable (``make
kind-up``); otherwise it is skipped with the reason KubeMesh.connect gives.
"""

import pytest

from bookinfo_labs.checks import EventuallyPolicy, eventually
from bookinfo_labs.manifests import load_file
from bookinfo_labs.mesh import HttpRequest, MeshError
from bookinfo_labs.versions import get_version

ISTIO = get_version("1.26")
PRODUCTPAGE = HttpRequest(url="http://productpage:9080/productpage")


@pytest.fixture(scope="module", params=["local", "kube"])
def mesh(request):
    if request.param == "local":
        from bookinfo_labs.local import LocalMesh

        mesh = LocalMesh.start(istio=ISTIO)
    else:
        from bookinfo_labs.kube import KubeMesh

        try:
            mesh = KubeMesh.connect(context=None, allow_any_context=False, istio=ISTIO)
        except MeshError as exc:
            pytest.skip(f"kube backend not available: {exc}")
    try:
        mesh.deploy("bookinfo")
        mesh.deploy(mesh.client())
        yield mesh
    finally:
        mesh.close()


@pytest.fixture
def policy(mesh):
    # the local mesh applies config synchronously; a cluster propagates it through istiod
    if mesh.poll_interval_s == 0:
        return EventuallyPolicy(times=1, timeout_s=5)
    return EventuallyPolicy(times=3, timeout_s=90, interval_s=mesh.poll_interval_s)


@pytest.fixture
def routing(mesh):
    manifests = [*load_file("virtual-service-all-v1.yaml"), *load_file("destination-rule-all.yaml")]
    before = mesh.owned_resources()
    keys = mesh.apply(manifests)
    yield keys
    mesh.delete(keys)
    assert mesh.owned_resources() == before


def test_apply_returns_the_keys_and_owns_them(mesh, routing):
    assert len(routing) == 8
    assert {k.kind for k in routing} == {"VirtualService", "DestinationRule"}
    assert {k.namespace for k in routing} == {mesh.namespace}
    assert set(routing) <= mesh.owned_resources()


def test_productpage_with_all_v1_shows_reviews_v1(mesh, routing, policy):
    def check(responses):
        assert len(responses) == 10
        for r in responses:
            assert r.status == 200, (r.status, r.body[:200])
            assert "Simple Bookstore App" in r.body
            assert "reviews-v1-" in r.body, "a review came from another version"

    eventually(lambda: mesh.send(mesh.client(), PRODUCTPAGE, 10), check,
               expected="10 x 200 from productpage with reviews-v1", policy=policy)


def test_delete_leaves_nothing_owned(mesh):
    manifests = load_file("virtual-service-all-v1.yaml")
    keys = mesh.apply(manifests)
    assert set(keys) <= mesh.owned_resources()
    mesh.delete(keys)
    assert not set(keys) & mesh.owned_resources()


def test_a_missing_path_is_404(mesh):
    (response,) = mesh.send(mesh.client(), HttpRequest(url="http://productpage:9080/no-such-page"))
    assert response.status == 404


def test_the_resilience_verbs(mesh):
    """What the resilience steps use: fortio load, logs by container, cluster stats, and
    concurrent curls."""
    mesh.deploy("httpbin")
    mesh.deploy("fortio")
    result = mesh.load("fortio", "http://httpbin:8000/get", connections=2, requests=10)
    assert result.codes == {200: 10} and result.requests == 10
    assert result.code_lines() == ["Code 200 : 10 (100.0 %)"]
    stats = mesh.proxy_stats("fortio")
    assert any(k.startswith("cluster.outbound|8000||httpbin.") and k.endswith(".upstream_rq_200")
               for k in stats), sorted(stats)[:20]
    responses = mesh.send(mesh.client(), HttpRequest(url="http://httpbin:8000/get?contract=1",
                                                     parallel=2), 4)
    assert [r.status for r in responses] == [200] * 4
    def logged(container=None):
        lines = mesh.logs("httpbin-v1", container=container) + mesh.logs(
            "httpbin-v2", container=container)
        return sum("contract=1" in line for line in lines)

    # a sidecar's access log is flushed every 250 ms on both meshes' Envoys
    for container in (None, "istio-proxy"):
        eventually(lambda: logged(container), lambda n: n == 4 or False,
                   expected=f"4 lines in the {container or 'app'} logs", times=1, timeout_s=10)
