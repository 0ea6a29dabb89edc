"""Reading a sidecar's config dump as istioctl proxy-config shows it, on both meshes."""

import json

import pytest

from bookinfo_labs import explain
from bookinfo_labs.proxyconfig import cluster_limits, route_shares

from test_kube_parsers import CLUSTERS_DUMP, ROUTES_DUMP


def test_route_shares_of_a_host():
    # the first route of reviews in the quoted dump is jason's, to subset v2
    assert route_shares(ROUTES_DUMP, "reviews") == {"v2": 100}
    weighted = json.loads(json.dumps(ROUTES_DUMP))
    del weighted["configs"][0]["route_config"]["virtual_hosts"][0]["routes"][0]
    assert route_shares(weighted, "reviews") == {"v1": 80, "v3": 20}
    with pytest.raises(AssertionError, match=r"no route for ratings; it routes \['reviews'\]"):
        route_shares(ROUTES_DUMP, "ratings")


def test_cluster_limits_of_a_host():
    assert cluster_limits(CLUSTERS_DUMP, "httpbin") == {"max_connections": 1}
    with pytest.raises(AssertionError, match="no cluster for httpbin subset v1"):
        cluster_limits(CLUSTERS_DUMP, "httpbin", "v1")


def test_the_istioctl_command_a_learner_runs():
    assert explain.proxy_config_command("curl", "routes") == (
        "istioctl proxy-config routes deploy/curl -o json")
    assert explain.proxy_config_command("fortio-deploy", "clusters", namespace="labs") == (
        "istioctl proxy-config clusters deploy/fortio-deploy -n labs -o json")


def test_both_meshes_read_it(tmp_path):
    """The local Envoy's admin and a pod's pilot-agent give the same shape."""
    from bookinfo_labs.local import LocalMesh
    from bookinfo_labs.manifests import load_file
    from bookinfo_labs.versions import get_version

    mesh = LocalMesh.start(get_version("1.26"))
    try:
        mesh.deploy("bookinfo")
        mesh.deploy(mesh.client())
        mesh.apply(load_file("destination-rule-all.yaml") + load_file("virtual-service-reviews-80-20.yaml"))
        assert route_shares(mesh.proxy_config("curl", "routes"), "reviews") == {"v1": 80, "v2": 20}
        assert cluster_limits(mesh.proxy_config("curl", "clusters"), "reviews", "v1") == {
            "max_connections": 4294967295, "max_pending_requests": 4294967295,
            "max_requests": 4294967295, "max_retries": 4294967295}
        assert "dynamic_endpoint_configs" in json.dumps(mesh.proxy_config("curl", "endpoints"))
        with pytest.raises(Exception, match="choose one of routes, clusters"):
            mesh.proxy_config("curl", "filters")
    finally:
        mesh.close()
