"""EnvoyFilter patches, one operation or match at a time, on what the control plane
generates (pilot/pkg/networking/core/envoyfilter/*_patch.go; docs/facts.md#envoyfilter)."""

from __future__ import annotations

import textwrap

import pytest
from test_pilot import CLIENT, GOLDEN, INGRESS, _compare, _parse_all, mesh_of

from bookinfo_labs.local.pilot import CLUSTER, LISTENER, ROUTE, ProxyView, envoyfilter, generate
from bookinfo_labs.local.pilot import translate

PRODUCTPAGE = ProxyView(pod="productpage-v1-5d8f7c9b6d-x2k4p", namespace="default",
                        labels={"app": "productpage", "version": "v1"}, ip="127.10.0.5",
                        outbound_ip="127.11.0.5", app_ip="127.12.0.5", inbound_ports=(9080,),
                        access_log_path="/tmp/productpage/istio-proxy.log")
HCM = "envoy.filters.network.http_connection_manager"
INBOUND = f"{PRODUCTPAGE.ip}_9080"
LOCAL_RL = "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"


def envoy_filter(patches: str, name: str = "ef", namespace: str = "default",
                 selector: str = "", priority: int | None = None) -> str:
    spec = (f"  workloadSelector: {{labels: {selector}}}\n" if selector else "") + \
        (f"  priority: {priority}\n" if priority is not None else "")
    return (f"apiVersion: networking.istio.io/v1alpha3\nkind: EnvoyFilter\nmetadata:\n"
            f"  name: {name}\n  namespace: {namespace}\nspec:\n{spec}  configPatches:\n"
            + textwrap.indent(textwrap.dedent(patches).strip("\n"), "  ") + "\n")


def http_filter_names(resources: dict, listener: str) -> list[str]:
    chain = resources[LISTENER][listener]["filter_chains"][0]
    return [f["name"] for f in chain["filters"][0]["typed_config"]["http_filters"]]


def inbound_route(resources: dict) -> dict:
    chain = resources[LISTENER][INBOUND]["filter_chains"][0]
    return chain["filters"][0]["typed_config"]["route_config"]["virtual_hosts"][0]["routes"][0]


HTTP_FILTER = """\
- applyTo: HTTP_FILTER
  match:
    context: {context}
    listener:
      {port}filterChain:
        filter:
          name: {network}
          {sub}
  patch:
    operation: {operation}
    {value}
"""
LUA_FREE_FILTER = ("value: {name: envoy.filters.http.local_ratelimit, typed_config: "
                   f"{{'@type': '{LOCAL_RL}', stat_prefix: x}}}}")


def http_filter_patch(operation: str, sub: str | None = None, context: str = "SIDECAR_INBOUND",
                      value: str = LUA_FREE_FILTER, port: int | None = None,
                      network: str = HCM) -> str:
    return HTTP_FILTER.format(
        context=context, operation=operation, value=value if operation != "REMOVE" else "",
        sub=f"subFilter: {{name: {sub}}}" if sub else "", network=network,
        port=f"portNumber: {port}\n      " if port else "")


@pytest.mark.parametrize("operation, sub, expected", [
    ("INSERT_BEFORE", None, ["x", "envoy.filters.http.fault", "envoy.filters.http.cors",
                             "envoy.filters.http.router"]),
    ("INSERT_BEFORE", "envoy.filters.http.router", ["envoy.filters.http.fault",
                                                    "envoy.filters.http.cors", "x",
                                                    "envoy.filters.http.router"]),
    ("INSERT_AFTER", "envoy.filters.http.fault", ["envoy.filters.http.fault", "x",
                                                  "envoy.filters.http.cors",
                                                  "envoy.filters.http.router"]),
    ("INSERT_AFTER", None, ["envoy.filters.http.fault", "envoy.filters.http.cors",
                            "envoy.filters.http.router", "x"]),
    ("INSERT_FIRST", "envoy.filters.http.cors", ["x", "envoy.filters.http.fault",
                                                 "envoy.filters.http.cors",
                                                 "envoy.filters.http.router"]),
    ("ADD", None, ["envoy.filters.http.fault", "envoy.filters.http.cors",
                   "envoy.filters.http.router", "x"]),
    ("REPLACE", "envoy.filters.http.cors", ["envoy.filters.http.fault", "x",
                                            "envoy.filters.http.router"]),
    ("REPLACE", None, ["envoy.filters.http.fault", "envoy.filters.http.cors",
                       "envoy.filters.http.router"]),  # REPLACE needs a filter to replace
    ("REMOVE", "envoy.filters.http.fault", ["envoy.filters.http.cors",
                                            "envoy.filters.http.router"]),
    ("REMOVE", "envoy.fault", ["envoy.filters.http.cors",  # a legacy name, normalised
                               "envoy.filters.http.router"]),
    ("INSERT_BEFORE", "envoy.filters.http.lua", ["envoy.filters.http.fault",  # no such filter
                                                 "envoy.filters.http.cors",
                                                 "envoy.filters.http.router"]),
])
def test_http_filter_operations(operation, sub, expected):
    value = LUA_FREE_FILTER.replace("envoy.filters.http.local_ratelimit", "x")
    mesh = mesh_of(envoy_filter(http_filter_patch(operation, sub, value=value)))
    assert http_filter_names(generate(mesh, PRODUCTPAGE), INBOUND) == expected


def test_context_selects_inbound_outbound_or_gateway():
    mesh = mesh_of(envoy_filter(http_filter_patch("INSERT_FIRST", context="SIDECAR_OUTBOUND"),
                                namespace="istio-system"), gateways=True)
    resources = generate(mesh, PRODUCTPAGE)
    assert http_filter_names(resources, INBOUND)[0] == "envoy.filters.http.fault"
    assert http_filter_names(resources, "0.0.0.0_9080")[0] == "envoy.filters.http.local_ratelimit"
    gateway = generate(mesh_of("bookinfo-gateway.yaml", envoy_filter(
        http_filter_patch("INSERT_FIRST", context="GATEWAY"), namespace="istio-system"),
        gateways=True), INGRESS)
    assert http_filter_names(gateway, "0.0.0.0_8080")[0] == "envoy.filters.http.local_ratelimit"


def test_port_number_is_istios_port_not_the_one_bound():
    """Port 80 listeners bind 20080 locally; a match on 80 still finds them."""
    mesh = mesh_of("bookinfo-gateway.yaml", envoy_filter(
        http_filter_patch("INSERT_FIRST", context="SIDECAR_OUTBOUND", port=8000)))
    resources = generate(mesh, CLIENT)
    assert http_filter_names(resources, "0.0.0.0_8000")[0] == "envoy.filters.http.local_ratelimit"
    assert http_filter_names(resources, "0.0.0.0_9080")[0] == "envoy.filters.http.fault"


def test_selection_and_namespaces():
    """workloadSelector labels; the root namespace applies everywhere, another only in its
    own namespace."""
    patch = http_filter_patch("INSERT_FIRST")
    for config, applies in ((envoy_filter(patch, selector="{app: productpage}"), True),
                            (envoy_filter(patch, selector="{app: reviews}"), False),
                            (envoy_filter(patch, namespace="istio-system"), True),
                            (envoy_filter(patch, namespace="foo"), False)):
        names = http_filter_names(generate(mesh_of(config), PRODUCTPAGE), INBOUND)
        assert (names[0] == "envoy.filters.http.local_ratelimit") is applies, config


def test_order_priority_then_root_namespace_then_age():
    def header(name: str, value: str, **kw) -> str:
        return envoy_filter(f"""\
            - applyTo: VIRTUAL_HOST
              match: {{context: SIDECAR_INBOUND}}
              patch:
                operation: MERGE
                value: {{response_headers_to_add: [{{header: {{key: x, value: {value}}}}}]}}
            """, name=name, **kw)

    mesh = mesh_of(header("b", "local-old"), header("a", "root", namespace="istio-system"),
                   header("c", "early", priority=-1), header("d", "local-new"))
    vhost = generate(mesh, PRODUCTPAGE)[LISTENER][INBOUND]["filter_chains"][0]["filters"][0][
        "typed_config"]["route_config"]["virtual_hosts"][0]
    assert [h["header"]["value"] for h in vhost["response_headers_to_add"]] == \
        ["early", "root", "local-old", "local-new"]


def test_merge_of_a_filter_merges_typed_configs_of_one_type():
    """The HCM's typed config merges field by field, lists appended; a TypedStruct of the
    same type merges into it too."""
    mesh = mesh_of(envoy_filter(f"""\
        - applyTo: NETWORK_FILTER
          match:
            context: SIDECAR_INBOUND
            listener: {{filterChain: {{filter: {{name: {HCM}}}}}}}
          patch:
            operation: MERGE
            value:
              typed_config:
                '@type': type.googleapis.com/udpa.type.v1.TypedStruct
                type_url: type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                value:
                  streamIdleTimeout: 7s
                  upgrade_configs: [{{upgrade_type: CONNECT}}]
        """))
    config = generate(mesh, PRODUCTPAGE)[LISTENER][INBOUND]["filter_chains"][0]["filters"][0][
        "typed_config"]
    assert config["stream_idle_timeout"] == "7s"  # camelCase keys meet the snake_case field
    assert config["upgrade_configs"] == [{"upgrade_type": "websocket"}, {"upgrade_type": "CONNECT"}]
    assert config["@type"].endswith("HttpConnectionManager")


def test_merge_of_another_type_keeps_the_filter():
    mesh = mesh_of(envoy_filter(f"""\
        - applyTo: NETWORK_FILTER
          match:
            context: SIDECAR_INBOUND
            listener: {{filterChain: {{filter: {{name: {HCM}}}}}}}
          patch:
            operation: MERGE
            value: {{typed_config: {{'@type': '{LOCAL_RL}', stat_prefix: x}}}}
        """))
    before = translate(mesh, PRODUCTPAGE)[LISTENER][INBOUND]
    assert generate(mesh, PRODUCTPAGE)[LISTENER][INBOUND] == before


def test_routes_merge_insert_and_remove():
    mesh = mesh_of("""\
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: reviews}
        spec:
          hosts: [reviews]
          http:
          - name: jason
            match: [{headers: {end-user: {exact: jason}}}]
            route: [{destination: {host: reviews}}]
          - name: rest
            route: [{destination: {host: reviews}}]
        """.replace("        ", ""), envoy_filter("""\
        - applyTo: HTTP_ROUTE
          match:
            context: SIDECAR_OUTBOUND
            routeConfiguration: {name: "9080", vhost: {name: "reviews.default.svc.cluster.local:9080", route: {name: jason}}}
          patch: {operation: MERGE, value: {route: {timeout: 3s}}}
        - applyTo: HTTP_ROUTE
          match:
            context: SIDECAR_OUTBOUND
            routeConfiguration: {portNumber: 9080, vhost: {name: "reviews.default.svc.cluster.local:9080", route: {name: rest}}}
          patch: {operation: INSERT_BEFORE, value: {name: teapot, match: {prefix: /teapot}, direct_response: {status: 418}}}
        - applyTo: HTTP_ROUTE
          match:
            context: SIDECAR_OUTBOUND
            routeConfiguration: {vhost: {name: "reviews.default.svc.cluster.local:9080", route: {action: DIRECT_RESPONSE}}}
          patch: {operation: MERGE, value: {direct_response: {body: {inline_string: tea}}}}
        """))
    vhost = next(v for v in generate(mesh, CLIENT)[ROUTE]["9080"]["virtual_hosts"]
                 if v["name"] == "reviews.default.svc.cluster.local:9080")
    routes = {r["name"]: r for r in vhost["routes"]}
    assert [r["name"] for r in vhost["routes"]] == ["jason", "teapot", "rest"]
    assert routes["jason"]["route"]["timeout"] == "3s"
    assert routes["rest"]["route"]["timeout"] == "0s"
    # the MERGE ran before the INSERT in the same pass: the new route is as inserted
    assert routes["teapot"]["direct_response"] == {"status": 418}


def test_a_route_action_set_by_merge_clears_the_other_action():
    """A oneof: setting direct_response drops the route action."""
    mesh = mesh_of(envoy_filter("""\
        - applyTo: HTTP_ROUTE
          match: {context: SIDECAR_INBOUND, routeConfiguration: {vhost: {route: {name: default}}}}
          patch: {operation: MERGE, value: {direct_response: {status: 503}}}
        """))
    route = inbound_route(generate(mesh, PRODUCTPAGE))
    assert route["direct_response"] == {"status": 503} and "route" not in route


def test_virtual_host_remove_add_and_domain_match():
    mesh = mesh_of(envoy_filter("""\
        - applyTo: VIRTUAL_HOST
          match: {context: SIDECAR_OUTBOUND, routeConfiguration: {vhost: {domainName: ratings}}}
          patch: {operation: REMOVE}
        - applyTo: VIRTUAL_HOST
          match: {context: SIDECAR_OUTBOUND, routeConfiguration: {portNumber: 9080}}
          patch: {operation: ADD, value: {name: extra, domains: [extra.example.com], routes: []}}
        """))
    names = [v["name"] for v in generate(mesh, CLIENT)[ROUTE]["9080"]["virtual_hosts"]]
    assert "ratings.default.svc.cluster.local:9080" not in names and names[-1] == "extra"
    assert "reviews.default.svc.cluster.local:9080" in names


def test_gateway_route_configuration_port_is_the_service_port():
    """On a gateway ``portNumber`` is a port of the gateway's Service (80 targets 8080)."""
    def mesh_for(port: int):
        return mesh_of("bookinfo-gateway.yaml", envoy_filter(f"""\
            - applyTo: ROUTE_CONFIGURATION
              match: {{context: GATEWAY, routeConfiguration: {{portNumber: {port}}}}}
              patch: {{operation: MERGE, value: {{request_headers_to_add: [{{header: {{key: x, value: y}}}}]}}}}
            """, namespace="istio-system"), gateways=True)

    assert "request_headers_to_add" in generate(mesh_for(80), INGRESS)[ROUTE]["http.8080"]
    assert "request_headers_to_add" not in generate(mesh_for(8080), INGRESS)[ROUTE]["http.8080"]


def test_clusters_merge_remove_add():
    mesh = mesh_of(envoy_filter("""\
        - applyTo: CLUSTER
          match: {context: SIDECAR_OUTBOUND, cluster: {service: reviews.default.svc.cluster.local, portNumber: 9080}}
          patch: {operation: MERGE, value: {connect_timeout: 1s}}
        - applyTo: CLUSTER
          match: {context: SIDECAR_OUTBOUND, cluster: {name: "outbound|9080||ratings.default.svc.cluster.local"}}
          patch: {operation: REMOVE}
        - applyTo: CLUSTER
          match: {context: SIDECAR_OUTBOUND}
          patch:
            operation: ADD
            value: {name: extra, type: STATIC, connect_timeout: 1s, load_assignment: {cluster_name: extra}}
        - applyTo: CLUSTER
          match: {context: SIDECAR_INBOUND, cluster: {portNumber: 9080}}
          patch: {operation: MERGE, value: {connect_timeout: 2s}}
        """))
    clusters = generate(mesh, PRODUCTPAGE)[CLUSTER]
    assert clusters["outbound|9080||reviews.default.svc.cluster.local"]["connect_timeout"] == "1s"
    assert clusters["outbound|9080||details.default.svc.cluster.local"]["connect_timeout"] == "10s"
    assert "outbound|9080||ratings.default.svc.cluster.local" not in clusters
    assert clusters["extra"]["type"] == "STATIC"
    assert clusters["inbound|9080||"]["connect_timeout"] == "2s"


def test_listener_and_filter_chain_patches():
    mesh = mesh_of(envoy_filter("""\
        - applyTo: LISTENER
          match: {context: SIDECAR_OUTBOUND, listener: {portNumber: 9080}}
          patch: {operation: MERGE, value: {per_connection_buffer_limit_bytes: 1024}}
        - applyTo: LISTENER
          match: {context: SIDECAR_OUTBOUND, listener: {name: 0.0.0.0_8000}}
          patch: {operation: REMOVE}
        - applyTo: LISTENER_FILTER
          match: {context: SIDECAR_OUTBOUND, listener: {portNumber: 9080}}
          patch:
            operation: INSERT_FIRST
            value: {name: envoy.filters.listener.tls_inspector, typed_config: {'@type': type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector}}
        - applyTo: FILTER_CHAIN
          match: {context: SIDECAR_INBOUND}
          patch: {operation: MERGE, value: {name: patched}}
        """))
    listeners = generate(mesh, PRODUCTPAGE)[LISTENER]
    assert listeners["0.0.0.0_9080"]["per_connection_buffer_limit_bytes"] == 1024
    assert "0.0.0.0_8000" not in listeners
    assert listeners["0.0.0.0_9080"]["listener_filters"][0]["name"] == \
        "envoy.filters.listener.tls_inspector"
    assert listeners[INBOUND]["filter_chains"][0]["name"] == "patched"
    _parse_all(generate(mesh, PRODUCTPAGE))


def test_proxy_version_regex():
    def names(regex: str) -> list[str]:
        mesh = mesh_of(envoy_filter(http_filter_patch("INSERT_FIRST").replace(
            "context: SIDECAR_INBOUND", f"context: SIDECAR_INBOUND\n    proxy: {{proxyVersion: "
            f"'{regex}'}}")))
        return http_filter_names(generate(mesh, PRODUCTPAGE), INBOUND)

    assert names(r"^1\.26.*")[0] == "envoy.filters.http.local_ratelimit"
    assert names(r"^1\.25.*")[0] == "envoy.filters.http.fault"


def test_input_is_left_as_it_was_and_trace_says_what_changed():
    mesh = mesh_of(envoy_filter(http_filter_patch("INSERT_FIRST") + http_filter_patch(
        "INSERT_FIRST", port=9999), name="ef"))
    before = translate(mesh, PRODUCTPAGE)
    copy = repr(before)
    generate(mesh, PRODUCTPAGE)
    found = envoyfilter.trace(mesh, PRODUCTPAGE, before)
    assert repr(before) == copy
    assert found.used == {("default/ef", 0)}  # the patch for port 9999 matched nothing
    assert found.touched[(LISTENER, INBOUND)] == {"default/ef"}


def test_merge_follows_proto_merge():
    dst = {"a": {"b": 1, "c": [1]}, "m": {"typed_per_filter_config": 1},
           "typed_per_filter_config": {"x": {"@type": "t", "v": 1}},
           "any": {"@type": "t1", "f": 1}, "route": {"cluster": "c"}}
    envoyfilter.merge(dst, {"a": {"c": [2], "d": 3}, "typed_per_filter_config": {
        "x": {"@type": "t", "w": 2}, "y": {}}, "any": {"@type": "t2", "g": 2},
        "redirect": {"path_redirect": "/"}})
    assert dst["a"] == {"b": 1, "c": [1, 2], "d": 3}  # messages merge, lists append
    assert dst["typed_per_filter_config"] == {"x": {"@type": "t", "w": 2}, "y": {}}  # per key
    assert dst["any"] == {"@type": "t2", "g": 2}  # an Any is replaced whole
    assert "route" not in dst  # one member of the action oneof


#: the istio.io rate limit labs' filters, as each proxy gets them
RATELIMIT_CASES = {
    "local-rate-limit": (PRODUCTPAGE, ("local-rate-limit.yaml",), ("bookinfo", "curl")),
    "local-rate-limit-route": (PRODUCTPAGE, ("local-rate-limit-route.yaml",), ("bookinfo", "curl")),
    "global-rate-limit": (INGRESS, ("bookinfo-gateway.yaml", "bookinfo-api-route.yaml",
                                    "filter-ratelimit.yaml", "filter-ratelimit-svc.yaml",
                                    "filter-ratelimit-api.yaml"), ("bookinfo", "ratelimit")),
}


@pytest.mark.parametrize("case", sorted(RATELIMIT_CASES))
def test_golden_rate_limits(case):
    proxy, files, samples = RATELIMIT_CASES[case]
    resources = generate(mesh_of(*files, samples=samples, gateways=True), proxy)
    # the messages the filters' typed configs name must be in the descriptor pool
    from envoy.extensions.filters.http.local_ratelimit.v3 import local_rate_limit_pb2  # noqa: F401
    from envoy.extensions.filters.http.ratelimit.v3 import rate_limit_pb2  # noqa: F401
    from udpa.type.v1 import typed_struct_pb2  # noqa: F401
    _parse_all(resources)
    _compare(GOLDEN / f"{case}.json", resources)


# -- on a running local mesh: what it refuses, warns about and names on a NACK ------------

@pytest.fixture(scope="module")
def mesh():
    from bookinfo_labs.local import LocalMesh
    from bookinfo_labs.versions import get_version

    mesh = LocalMesh.start(get_version("1.26"), gateways=False)
    try:
        mesh.deploy("bookinfo")
        yield mesh
    finally:
        mesh.close()


@pytest.mark.parametrize("patch, path, message", [
    ("- applyTo: BOOTSTRAP\n  patch: {operation: MERGE, value: {}}",
     "spec.configPatches[0].applyTo", "applyTo BOOTSTRAP"),
    ("- applyTo: CLUSTER\n  match: {proxy: {metadata: {A: b}}}\n  patch: {operation: REMOVE}",
     "spec.configPatches[0].match.proxy.metadata", "does not implement this field"),
    ("- applyTo: LISTENER\n  match: {listener: {portName: http}}\n  patch: {operation: REMOVE}",
     "spec.configPatches[0].match.listener.portName", "does not implement this field"),
])
def test_what_the_local_mesh_does_not_patch_is_refused(mesh, patch, path, message):
    from bookinfo_labs.manifests import ManifestError, parse_text

    with pytest.raises(ManifestError) as err:
        mesh.apply(parse_text(envoy_filter(patch)))
    assert err.value.path == path and message in str(err.value)


def test_a_patch_that_matches_nothing_is_a_warning_of_the_local_mesh(mesh):
    from bookinfo_labs.manifests import parse_text

    manifests = parse_text(envoy_filter(http_filter_patch("INSERT_FIRST") + http_filter_patch(
        "INSERT_FIRST", port=9999), selector="{app: productpage}"))
    keys = mesh.apply(manifests)
    try:
        [warning] = mesh.warnings_for(manifests)
        assert "spec.configPatches[1]: matches nothing" in warning
        assert "not of istioctl analyze" in warning
    finally:
        mesh.delete(keys)


def test_a_rejected_patch_names_its_envoy_filter_and_changes_nothing(mesh):
    from bookinfo_labs.manifests import ManifestError, parse_text

    bad = LUA_FREE_FILTER.replace("stat_prefix: x", "stat_prefix: x, token_bucket: {max_tokens: 1}")
    before = mesh.proxy_config("productpage-v1", "listeners")
    with pytest.raises(ManifestError) as err:
        mesh.apply(parse_text(envoy_filter(http_filter_patch("INSERT_FIRST", value=bad),
                                           name="no-interval"), "bad.yaml"))
    assert "FillInterval: value is required" in str(err.value)
    assert "patched by EnvoyFilter default/no-interval (bad.yaml)" in str(err.value)
    assert mesh.owned_resources() == set()
    assert http_filters_of(mesh.proxy_config("productpage-v1", "listeners")) == \
        http_filters_of(before)


def http_filters_of(dump: dict) -> list[list[str]]:
    from bookinfo_labs.proxyconfig import http_filters

    return http_filters(dump, "INBOUND", 9080)
