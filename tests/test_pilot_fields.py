"""One Istio field at a time: what the control plane makes of it (what istiod makes of it).

Each test applies a small VirtualService or DestinationRule to Bookinfo and httpbin and
reads the one place of the generated Envoy config that field decides (docs/facts.md).
"""

from __future__ import annotations

import pytest

from bookinfo_labs.local.pilot import (CLUSTER, ENDPOINT, LISTENER, ROUTE, ServicePortView,
                                       generate, tcp)

from test_pilot import CLIENT, INGRESS, TCP_ECHO as TCP_ECHO_POD, mesh_of

REVIEWS = "reviews.default.svc.cluster.local"
HTTPBIN = "httpbin.default.svc.cluster.local"
DR_ALL = "destination-rule-all.yaml"


def vs(http: str, host: str = "reviews") -> str:
    return (f"apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: {host}}}\n"
            f"spec:\n  hosts: [{host}]\n  http:\n{http}")


def dr(policy: str, host: str = "httpbin", subsets: str = "") -> str:
    return (f"apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: {host}}}\n"
            f"spec:\n  host: {host}\n{subsets}  trafficPolicy:\n{policy}")


def routes(*config: str, host: str = REVIEWS, port: int = 9080, version: str = "1.26",
           proxy=CLIENT) -> list[dict]:
    out = generate(mesh_of(*config, version=version), proxy)
    [vhost] = [v for v in out[ROUTE][str(port)]["virtual_hosts"] if v["name"] == f"{host}:{port}"]
    return vhost["routes"]


def cluster(*config: str, name: str = f"outbound|8000||{HTTPBIN}", version: str = "1.26") -> dict:
    return generate(mesh_of(*config, version=version), CLIENT)[CLUSTER][name]


ROUTE_TO_V1 = "  - route: [{destination: {host: reviews, subset: v1}}]\n"


# -- VirtualService ----------------------------------------------------------------------

def test_hosts_replace_the_services_default_route():
    [default] = routes()
    assert default["name"] == "default" and default["route"]["cluster"] == f"outbound|9080||{REVIEWS}"
    [route] = routes(DR_ALL, vs(ROUTE_TO_V1))
    assert route["route"]["cluster"] == f"outbound|9080|v1|{REVIEWS}"
    assert route["metadata"]["filter_metadata"]["istio"]["config"].endswith(
        "/namespaces/default/virtual-service/reviews")


def test_gateways_without_mesh_leave_the_sidecars_alone():
    config = vs(ROUTE_TO_V1).replace("  http:", "  gateways: [bookinfo-gateway]\n  http:")
    assert [r["name"] for r in routes(config)] == ["default"]


def test_http_name_and_match_name_name_the_route():
    config = vs("  - name: jason\n    match: [{name: user, headers: {end-user: {exact: jason}}}]\n"
                "    route: [{destination: {host: reviews, subset: v2}}]\n" + ROUTE_TO_V1)
    assert [r.get("name") for r in routes(DR_ALL, config)] == ["jason.user", None]


@pytest.mark.parametrize("uri, envoy", [
    ("{exact: /reviews/0}", {"path": "/reviews/0"}),
    ("{prefix: /reviews}", {"prefix": "/reviews"}),
    ("{regex: '/reviews/[0-9]+'}", {"safe_regex": {"regex": "/reviews/[0-9]+"}}),
])
def test_uri_match(uri, envoy):
    config = vs(f"  - match: [{{uri: {uri}}}]\n    route: [{{destination: {{host: reviews}}}}]\n")
    match = routes(config)[0]["match"]
    assert {k: v for k, v in match.items() if k != "case_sensitive"} == envoy
    assert match["case_sensitive"] is True


def test_ignore_uri_case():
    config = vs("  - match: [{uri: {prefix: /R}, ignoreUriCase: true}]\n"
                "    route: [{destination: {host: reviews}}]\n")
    assert routes(config)[0]["match"]["case_sensitive"] is False


@pytest.mark.parametrize("match, envoy", [
    ("{exact: jason}", {"name": "end-user", "string_match": {"exact": "jason"}}),
    ("{prefix: ja}", {"name": "end-user", "string_match": {"prefix": "ja"}}),
    ("{regex: 'j.*n'}", {"name": "end-user", "string_match": {"safe_regex": {"regex": "j.*n"}}}),
    ("{}", {"name": "end-user", "present_match": True}),
])
def test_header_match(match, envoy):
    config = vs(f"  - match: [{{headers: {{end-user: {match}}}}}]\n"
                "    route: [{destination: {host: reviews}}]\n" + ROUTE_TO_V1)
    assert routes(DR_ALL, config)[0]["match"]["headers"] == [envoy]


def test_without_headers_inverts_and_treats_missing_as_empty():
    config = vs("  - match: [{withoutHeaders: {end-user: {exact: jason}}}]\n"
                "    route: [{destination: {host: reviews}}]\n")
    assert routes(config)[0]["match"]["headers"] == [{
        "name": "end-user", "string_match": {"exact": "jason"}, "invert_match": True,
        "treat_missing_header_as_empty": True}]


def test_query_params_and_method():
    config = vs("  - match: [{queryParams: {u: {exact: jason}}, method: {exact: GET}}]\n"
                "    route: [{destination: {host: reviews}}]\n")
    match = routes(config)[0]["match"]
    assert match["query_parameters"] == [{"name": "u", "string_match": {"exact": "jason"}}]
    assert match["headers"] == [{"name": ":method", "string_match": {"exact": "GET"}}]


@pytest.mark.parametrize("condition, applies", [
    ("port: 9080", True), ("port: 8000", False),
    ("sourceLabels: {app: curl}", True), ("sourceLabels: {app: productpage}", False),
    ("sourceNamespace: default", True), ("sourceNamespace: other", False),
])
def test_conditions_istiod_decides_per_proxy(condition, applies):
    config = vs(f"  - match: [{{{condition}}}]\n    route: [{{destination: {{host: reviews, subset: v2}}}}]\n"
                + ROUTE_TO_V1)
    first = routes(DR_ALL, config)[0]["route"]["cluster"]
    assert first == f"outbound|9080|{'v2' if applies else 'v1'}|{REVIEWS}"


def test_destination_port_and_weights():
    config = vs("  - route:\n    - {destination: {host: reviews, subset: v1, port: {number: 9080}}, weight: 80}\n"
                "    - {destination: {host: reviews, subset: v3}, weight: 20}\n"
                "    - {destination: {host: reviews, subset: v2}, weight: 0}\n")
    assert routes(DR_ALL, config)[0]["route"]["weighted_clusters"] == {"clusters": [
        {"name": f"outbound|9080|v1|{REVIEWS}", "weight": 80},
        {"name": f"outbound|9080|v3|{REVIEWS}", "weight": 20}]}


def test_timeout():
    assert routes(vs("  - route: [{destination: {host: reviews}}]\n    timeout: 0.5s\n"))[0][
        "route"]["timeout"] == "0.5s"
    assert routes(vs("  - route: [{destination: {host: reviews}}]\n"))[0]["route"]["timeout"] == "0s"


def test_retries():
    policy = routes(vs("  - route: [{destination: {host: reviews}}]\n    retries: {attempts: 3, "
                       "perTryTimeout: 0.5s, retryOn: 'gateway-error,503', backoff: 50ms, "
                       "retryIgnorePreviousHosts: false}\n"))[0]["route"]["retry_policy"]
    assert policy["num_retries"] == 3 and policy["per_try_timeout"] == "0.5s"
    assert policy["retry_on"] == "gateway-error,retriable-status-codes"
    assert policy["retriable_status_codes"] == [503]
    assert policy["retry_back_off"] == {"base_interval": "0.05s"}
    assert "retry_host_predicate" not in policy
    assert "retry_policy" not in routes(vs("  - route: [{destination: {host: reviews}}]\n"
                                           "    retries: {attempts: 0}\n"))[0]["route"]


@pytest.mark.parametrize("version, codes", [("1.23", [503]), ("1.26", None)])
def test_the_default_retry_policy_by_release(version, codes):
    policy = routes(version=version)[0]["route"]["retry_policy"]
    assert policy["num_retries"] == 2 and policy["retry_on"].startswith("connect-failure,")
    assert policy.get("retriable_status_codes") == codes


def test_fault_delay_and_abort():
    config = vs("  - route: [{destination: {host: reviews}}]\n    fault:\n"
                "      delay: {fixedDelay: 7s, percentage: {value: 12.5}}\n"
                "      abort: {httpStatus: 500, percentage: {value: 100}}\n")
    fault = routes(config)[0]["typed_per_filter_config"]["envoy.filters.http.fault"]
    assert fault["delay"] == {"fixed_delay": "7s", "percentage": {"numerator": 125000,
                                                                  "denominator": "MILLION"}}
    assert fault["abort"] == {"http_status": 500, "percentage": {"numerator": 1000000,
                                                                 "denominator": "MILLION"}}


def test_the_deprecated_integer_percent_of_a_delay():
    config = vs("  - route: [{destination: {host: reviews}}]\n    fault:\n"
                "      delay: {fixedDelay: 2s, percent: 100}\n")
    fault = routes(config)[0]["typed_per_filter_config"]["envoy.filters.http.fault"]
    assert fault["delay"]["percentage"] == {"numerator": 100, "denominator": "HUNDRED"}


@pytest.mark.parametrize("field, share", [
    ("", {"numerator": 100, "denominator": "HUNDRED"}),
    ("    mirrorPercentage: {value: 50}\n", {"numerator": 500000, "denominator": "MILLION"}),
    ("    mirrorPercent: 30\n", {"numerator": 30, "denominator": "HUNDRED"}),
    ("    mirror_percent: 20\n", {"numerator": 20, "denominator": "HUNDRED"}),
])
def test_mirror_and_its_percentage(field, share):
    config = vs("  - route: [{destination: {host: httpbin, subset: v1}}]\n"
                "    mirror: {host: httpbin, subset: v2}\n" + field, host="httpbin")
    [policy] = routes(config, host=HTTPBIN, port=8000)[0]["route"]["request_mirror_policies"]
    assert policy["cluster"] == f"outbound|8000|v2|{HTTPBIN}"
    assert policy["runtime_fraction"]["default_value"] == share
    assert "disable_shadow_host_suffix_append" not in policy  # 1.26: Host gets -shadow


def test_mirrors_and_the_shadow_host_from_1_28():
    config = vs("  - route: [{destination: {host: httpbin, subset: v1}}]\n"
                "    mirrors: [{destination: {host: httpbin, subset: v2}, percentage: {value: 0}},"
                " {destination: {host: httpbin, subset: v2}}]\n", host="httpbin")
    [policy] = routes(config, host=HTTPBIN, port=8000, version="1.28")[0]["route"][
        "request_mirror_policies"]  # a 0 % mirror is no mirror
    assert policy["disable_shadow_host_suffix_append"] is True



@pytest.mark.parametrize("redirect, envoy", [
    ("{uri: /api/not-found, authority: error.example.com}",
     {"host_redirect": "error.example.com", "path_redirect": "/api/not-found",
      "response_code": "MOVED_PERMANENTLY"}),
    ("{uri: /v2, redirectCode: 302}", {"path_redirect": "/v2", "response_code": "FOUND"}),
    ("{scheme: https, port: 443, redirectCode: 308}",
     {"scheme_redirect": "https", "response_code": "PERMANENT_REDIRECT"}),  # :443 left out
    ("{port: 80, redirectCode: 307}", {"response_code": "TEMPORARY_REDIRECT"}),  # http's :80
    ("{port: 443, redirectCode: 303}", {"port_redirect": 443, "response_code": "SEE_OTHER"}),
    ("{derivePort: FROM_REQUEST_PORT}", {"port_redirect": 9080, "response_code": "MOVED_PERMANENTLY"}),
])
def test_redirect(redirect, envoy):
    [route] = routes(vs(f"  - redirect: {redirect}\n"))
    assert route["redirect"] == envoy and "route" not in route


def test_a_redirect_code_envoy_has_no_name_for_leaves_the_route_without_an_action():
    [route] = routes(vs("  - redirect: {uri: /v2, redirectCode: 304}\n"))
    assert not {"route", "redirect", "direct_response"} & set(route)  # Envoy refuses it


@pytest.mark.parametrize("body, envoy", [
    ("", {"status": 404}),
    (", body: {string: path not allowed}", {"status": 404, "body": {"inline_string": "path not allowed"}}),
    (", body: {bytes: aGk=}", {"status": 404, "body": {"inline_bytes": "aGk="}}),
])
def test_direct_response(body, envoy):
    [route] = routes(vs(f"  - directResponse: {{status: 404{body}}}\n"))
    assert route["direct_response"] == envoy and "route" not in route


@pytest.mark.parametrize("rewrite, envoy", [
    ("{uri: /anything}", {"prefix_rewrite": "/anything"}),
    ("{uriRegexRewrite: {match: '^/api/(.*)', rewrite: '/\\1'}}",
     {"regex_rewrite": {"pattern": {"regex": "^/api/(.*)"}, "substitution": "/\\1"}}),
    ("{authority: echo.example.com}", {"host_rewrite_literal": "echo.example.com"}),
])
def test_rewrite(rewrite, envoy):
    config = vs(f"  - match: [{{uri: {{prefix: /api}}}}]\n    rewrite: {rewrite}\n"
                "    route: [{destination: {host: httpbin}}]\n", host="httpbin")
    action = routes(config, host=HTTPBIN, port=8000)[0]["route"]
    assert {k: v for k, v in action.items() if k in envoy} == envoy
    assert action["cluster"] == f"outbound|8000||{HTTPBIN}"


def _set(key: str, value: str) -> dict:
    return {"header": {"key": key, "value": value}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}


def _add(key: str, value: str) -> dict:
    return {"header": {"key": key, "value": value}, "append_action": "APPEND_IF_EXISTS_OR_ADD"}


def test_headers_on_the_rule():
    config = vs("  - headers:\n"
                "      request: {set: {x-b: '2', x-a: '1'}, add: {x-c: '3', host: h.example},"
                " remove: [x-gone]}\n"
                "      response: {set: {x-block-reason: path-not-allowed}, remove: [server]}\n"
                "    route: [{destination: {host: httpbin}}]\n", host="httpbin")
    [route] = routes(config, host=HTTPBIN, port=8000)
    # set before add, each sorted by name; the authority never in the lists
    assert route["request_headers_to_add"] == [_set("x-a", "1"), _set("x-b", "2"), _add("x-c", "3")]
    assert route["request_headers_to_remove"] == ["x-gone"]
    assert route["response_headers_to_add"] == [_set("x-block-reason", "path-not-allowed")]
    assert route["response_headers_to_remove"] == ["server"]
    assert route["route"]["host_rewrite_literal"] == "h.example"  # a request host is the authority


def test_headers_go_with_a_direct_response_too():
    [route] = routes(vs("  - directResponse: {status: 404}\n"
                        "    headers: {response: {set: {x-block-reason: path-not-allowed}}}\n"))
    assert route["response_headers_to_add"] == [_set("x-block-reason", "path-not-allowed")]


def test_one_destinations_headers_join_the_routes_several_keep_their_own():
    one = vs("  - headers: {request: {set: {x-rule: r}}}\n"
             "    route: [{destination: {host: reviews, subset: v1}, headers: {request: {add: {x-dest: d,"
             " ':authority': reviews.example}}, response: {remove: [x-gone]}}}]\n")
    [route] = routes(DR_ALL, one)
    assert route["request_headers_to_add"] == [_set("x-rule", "r"), _add("x-dest", "d")]
    assert route["response_headers_to_remove"] == ["x-gone"]
    assert route["route"]["host_rewrite_literal"] == "reviews.example"
    several = vs("  - headers: {request: {set: {x-rule: r}}}\n    route:\n"
                 "    - {destination: {host: reviews, subset: v1}, weight: 50,"
                 " headers: {response: {set: {x-version: v1}}, request: {set: {host: v1.example}}}}\n"
                 "    - {destination: {host: reviews, subset: v2}, weight: 50}\n")
    [route] = routes(DR_ALL, several)
    assert route["request_headers_to_add"] == [_set("x-rule", "r")]
    assert route["route"]["weighted_clusters"]["clusters"] == [
        {"name": f"outbound|9080|v1|{REVIEWS}", "weight": 50,
         "response_headers_to_add": [_set("x-version", "v1")], "host_rewrite_literal": "v1.example"},
        {"name": f"outbound|9080|v2|{REVIEWS}", "weight": 50}]
    assert "host_rewrite_literal" not in route["route"]


def test_the_rules_authority_beats_its_destinations():
    config = vs("  - rewrite: {authority: rule.example}\n"
                "    route: [{destination: {host: reviews}, headers: {request: {set: {host: dest.example}}}}]\n")
    assert routes(config)[0]["route"]["host_rewrite_literal"] == "rule.example"


@pytest.mark.parametrize("version, forward", [("1.22", None), ("1.23", True), ("1.28", True)])
def test_cors_policy(version, forward):
    config = vs("  - corsPolicy:\n      allowOrigins: [{exact: 'https://example.com'}, {regex: '.*\\.example'}]\n"
                "      allowMethods: [GET, POST]\n      allowHeaders: [x-a, x-b]\n"
                "      exposeHeaders: [x-c]\n      maxAge: 24h\n      allowCredentials: false\n"
                "    route: [{destination: {host: reviews}}]\n")
    cors = routes(config, version=version)[0]["typed_per_filter_config"]["envoy.filters.http.cors"]
    assert cors == {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy",
        "allow_origin_string_match": [{"exact": "https://example.com"},
                                      {"safe_regex": {"regex": ".*\\.example"}}],
        "allow_methods": "GET,POST", "allow_headers": "x-a,x-b", "expose_headers": "x-c",
        "max_age": "86400", "allow_credentials": False,
        "filter_enabled": {"default_value": {"numerator": 100, "denominator": "HUNDRED"}},
        **({"forward_not_matching_preflights": forward} if forward is not None else {})}


def test_cors_unmatched_preflights_ignore_and_the_deprecated_allow_origin():
    config = vs("  - corsPolicy: {allowOrigin: ['https://a.example'], unmatchedPreflights: IGNORE}\n"
                "    route: [{destination: {host: reviews}}]\n")
    cors = routes(config)[0]["typed_per_filter_config"]["envoy.filters.http.cors"]
    assert cors["forward_not_matching_preflights"] is False
    assert cors["allow_origin_string_match"] == [{"exact": "https://a.example"}]


def delegate_vs(http: str, name: str = "reviews-child", namespace: str = "default",
                extra: str = "") -> str:
    return ("apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
            f"metadata: {{name: {name}, namespace: {namespace}}}\nspec:\n{extra}  http:\n{http}")


ROOT = vs("  - name: root\n    match: [{name: api, uri: {prefix: /reviews}}]\n"
          "    timeout: 3s\n    headers: {response: {set: {x-root: r}}}\n"
          "    delegate: {name: reviews-child}\n")


def test_a_virtual_service_without_hosts_binds_no_host():
    [route] = routes(DR_ALL, delegate_vs(ROUTE_TO_V1))
    assert route["name"] == "default"


def test_delegate_rules_are_merged_with_the_root_rule():
    child = delegate_vs(
        "  - name: zero\n    match: [{name: one, uri: {exact: /reviews/0}}]\n"
        "    headers: {response: {set: {x-child: c}}}\n"
        "    route: [{destination: {host: reviews, subset: v3}}]\n"
        "  - match: [{uri: {prefix: /ratings}}]\n"  # not within /reviews: dropped
        "    route: [{destination: {host: reviews, subset: v1}}]\n"
        "  - route: [{destination: {host: reviews, subset: v2}}]\n")
    zero, rest = routes(DR_ALL, ROOT, child)
    assert (zero["name"], zero["match"]["path"]) == ("root-zero.api-one", "/reviews/0")
    assert zero["route"]["cluster"] == f"outbound|9080|v3|{REVIEWS}"
    assert zero["route"]["timeout"] == "3s"  # the root fills what the child leaves unset
    assert zero["response_headers_to_add"] == [_set("x-child", "c")]  # the child's own win
    assert (rest["name"], rest["match"]["prefix"]) == ("root.api", "/reviews")
    assert rest["route"]["cluster"] == f"outbound|9080|v2|{REVIEWS}"
    assert rest["response_headers_to_add"] == [_set("x-root", "r")]
    # as istiod's merged VirtualService, the routes name the root
    assert {r["metadata"]["filter_metadata"]["istio"]["config"] for r in (zero, rest)} == {
        "/apis/networking.istio.io/v1/namespaces/default/virtual-service/reviews"}


def test_a_delegates_hosts_are_its_own_namespaces():
    child = delegate_vs("  - route: [{destination: {host: reviews}}]\n", namespace="team")
    root = ROOT.replace("delegate: {name: reviews-child}", "delegate: {name: reviews-child, namespace: team}")
    [route] = routes(root, child)
    assert route["route"]["cluster"] == "outbound|9080||reviews.team.svc.cluster.local"


@pytest.mark.parametrize("child", [
    delegate_vs(ROUTE_TO_V1, name="other"),  # no such delegate
    delegate_vs(ROUTE_TO_V1, namespace="team"),  # in another namespace than the root's
    delegate_vs(ROUTE_TO_V1, namespace="default", extra="  exportTo: [other]\n"),
    vs(ROUTE_TO_V1, host="reviews-child"),  # has hosts: not a delegate
])
def test_without_its_delegate_the_root_rule_yields_nothing(child):
    assert [r["name"] for r in routes(DR_ALL, ROOT, child)] == ["default"]


# -- DestinationRule ---------------------------------------------------------------------

def test_subsets_are_clusters_of_the_labelled_endpoints():
    out = generate(mesh_of(DR_ALL), CLIENT)
    assert f"outbound|9080|v2|{REVIEWS}" in out[CLUSTER]
    endpoints = out[ENDPOINT][f"outbound|9080|v2|{REVIEWS}"]["endpoints"][0]["lb_endpoints"]
    everything = out[ENDPOINT][f"outbound|9080||{REVIEWS}"]["endpoints"][0]["lb_endpoints"]
    assert len(endpoints) == 1 and len(everything) == 3


def test_connection_pool():
    limits = cluster(dr("    connectionPool:\n      tcp: {maxConnections: 1, connectTimeout: 2s}\n"
                        "      http: {http1MaxPendingRequests: 2, http2MaxRequests: 3, maxRetries: 4,"
                        " maxRequestsPerConnection: 5}\n"))
    assert limits["circuit_breakers"]["thresholds"][0] == {
        "max_connections": 1, "max_pending_requests": 2, "max_requests": 3, "max_retries": 4,
        "track_remaining": True}
    assert limits["connect_timeout"] == "2s"
    options = limits["typed_extension_protocol_options"][
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
    assert options["common_http_protocol_options"] == {"max_requests_per_connection": 5}


def test_without_a_connection_pool_there_is_no_limit():
    thresholds = cluster()["circuit_breakers"]["thresholds"][0]
    assert thresholds["max_connections"] == thresholds["max_pending_requests"] == 4294967295
    assert "typed_extension_protocol_options" not in cluster()


def test_outlier_detection_disables_panic_routing():
    out = cluster(dr("    outlierDetection: {consecutive5xxErrors: 1, consecutiveGatewayErrors: 2,"
                     " interval: 1s, baseEjectionTime: 3m, maxEjectionPercent: 100}\n"))
    assert out["outlier_detection"] == {
        "enforcing_success_rate": 0, "consecutive_5xx": 1, "enforcing_consecutive_5xx": 100,
        "consecutive_gateway_failure": 2, "enforcing_consecutive_gateway_failure": 100,
        "interval": "1s", "base_ejection_time": "180s", "max_ejection_percent": 100}
    assert out["common_lb_config"] == {"healthy_panic_threshold": {"value": 0.0}}
    assert "outlier_detection" not in cluster()


@pytest.mark.parametrize("simple, envoy", [("ROUND_ROBIN", "ROUND_ROBIN"), ("RANDOM", "RANDOM"),
                                           ("LEAST_CONN", "LEAST_REQUEST")])
def test_load_balancer(simple, envoy):
    assert cluster(dr(f"    loadBalancer: {{simple: {simple}}}\n"))["lb_policy"] == envoy
    assert cluster()["lb_policy"] == "LEAST_REQUEST"


def test_port_level_settings_replace_the_top_level_and_subsets_override():
    subsets = "  subsets:\n  - name: v1\n    labels: {version: v1}\n    trafficPolicy:\n" \
              "      connectionPool: {tcp: {maxConnections: 7}}\n"
    config = dr("    connectionPool: {tcp: {maxConnections: 1}}\n    portLevelSettings:\n"
                "    - port: {number: 8000}\n      loadBalancer: {simple: RANDOM}\n", subsets=subsets)
    top = cluster(config)
    assert top["lb_policy"] == "RANDOM"  # the port entry replaces the top level wholly
    assert top["circuit_breakers"]["thresholds"][0]["max_connections"] == 4294967295
    v1 = cluster(config, name=f"outbound|8000|v1|{HTTPBIN}")
    assert v1["circuit_breakers"]["thresholds"][0]["max_connections"] == 7
    assert v1["metadata"]["filter_metadata"]["istio"]["subset"] == "v1"


# -- release differences and names -------------------------------------------------------

@pytest.mark.parametrize("version, suffix", [("1.22", ""), ("1.23", ";"), ("1.28", ";")])
def test_stat_names_end_in_a_semicolon_from_1_23(version, suffix):
    out = generate(mesh_of(version=version), CLIENT)
    assert out[CLUSTER][f"outbound|9080||{REVIEWS}"]["alt_stat_name"] == f"outbound|9080||{REVIEWS}{suffix}"
    manager = out[LISTENER]["0.0.0.0_9080"]["filter_chains"][0]["filters"][0]["typed_config"]
    assert manager["stat_prefix"] == f"outbound_0.0.0.0_9080{suffix}"


@pytest.mark.parametrize("version, absolute", [("1.26", False), ("1.27", True)])
def test_virtual_host_domains(version, absolute):
    out = generate(mesh_of(version=version), CLIENT)
    [vhost] = [v for v in out[ROUTE]["9080"]["virtual_hosts"] if v["name"] == f"{REVIEWS}:9080"]
    assert vhost["domains"] == [REVIEWS, *([REVIEWS + "."] if absolute else []), "reviews",
                                "reviews.default.svc", "reviews.default"]


def test_inbound_listener_fronts_the_app():
    proxy = type(CLIENT)(**{**CLIENT.__dict__, "inbound_ports": (9080,)})
    out = generate(mesh_of(), proxy)
    listener = out[LISTENER]["127.10.0.100_9080"]
    assert listener["address"]["socket_address"] == {"address": "127.10.0.100", "port_value": 9080}
    inbound = out[CLUSTER]["inbound|9080||"]
    assert inbound["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"][
        "socket_address"] == {"address": "127.12.0.100", "port_value": 9080}


def test_ports_below_1024_move_up_but_keep_their_names():
    out = generate(mesh_of(), CLIENT)
    assert out[LISTENER]["0.0.0.0_80"]["address"]["socket_address"]["port_value"] == 20080


# -- TCP ----------------------------------------------------------------------------------

TCP_ECHO = "tcp-echo.default.svc.cluster.local"


@pytest.mark.parametrize("name, app_protocol, port, protocol", [
    ("tcp", None, 9000, "TCP"), ("tcp-other", None, 9001, "TCP"), ("TCP-x", None, 1, "TCP"),
    ("http", None, 9080, "HTTP"), ("grpc-web-x", None, 1, "GRPC-WEB"), ("mongo", None, 1, "MONGO"),
    ("web", "tcp", 1, "TCP"), ("tcp", "http", 1, "HTTP"), ("x", "kubernetes.io/h2c", 1, "HTTP2"),
    ("", None, 9080, ""), ("status-port", None, 15021, ""), ("", None, 3306, "TCP"),
])
def test_port_protocol_from_app_protocol_else_the_name(name, app_protocol, port, protocol):
    assert tcp.protocol(ServicePortView(name, port, port, app_protocol or "")) == protocol


def tcp_mesh(*config: str):
    """tcp-echo and the client, with the demo profile's gateways."""
    return mesh_of(*config, samples=("tcp-echo", "curl"), gateways=True)


def tcp_vs(rules: str, gateways: str = "") -> str:
    hosts = "'*'" if gateways else "tcp-echo"
    return ("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: tcp-echo}\n"
            f"spec:\n  hosts: [{hosts}]\n{gateways}  tcp:\n{rules}")


TCP_DR = ("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: tcp-echo}\n"
          "spec:\n  host: tcp-echo\n  subsets:\n  - {name: v1, labels: {version: v1}}\n"
          "  - {name: v2, labels: {version: v2}}\n")


def tcp_proxy(out: dict, listener: str) -> dict:
    """The listener's tcp_proxy: the same on each of its filter chains (an inbound
    listener has an mTLS chain and a plain-text one)."""
    proxies = []
    for chain in out[LISTENER][listener]["filter_chains"]:
        [proxy] = chain["filters"]
        assert proxy["name"] == "envoy.filters.network.tcp_proxy"
        proxies.append({k: v for k, v in proxy["typed_config"].items()
                        if k not in ("@type", "access_log")})
    assert all(p == proxies[0] for p in proxies), proxies
    return proxies[0]


def test_a_tcp_port_gets_a_tcp_proxy_to_its_service():
    out = generate(tcp_mesh(), CLIENT)
    for port in (9000, 9001):
        cluster = f"outbound|{port}||{TCP_ECHO}"
        assert tcp_proxy(out, f"0.0.0.0_{port}") == {"stat_prefix": cluster, "cluster": cluster}
    assert "access_log" in out[LISTENER]["0.0.0.0_9000"]["filter_chains"][0]["filters"][0][
        "typed_config"]


def test_tcp_routes_on_a_sidecar_single_and_weighted():
    single = tcp_vs("  - route: [{destination: {host: tcp-echo, subset: v2}}]\n")
    out = generate(tcp_mesh(TCP_DR, single), CLIENT)
    cluster = f"outbound|9000|v2|{TCP_ECHO}"  # no port: the listener's
    assert tcp_proxy(out, "0.0.0.0_9000") == {"stat_prefix": cluster, "cluster": cluster}
    assert out[LISTENER]["0.0.0.0_9000"]["filter_chains"][0]["metadata"]["filter_metadata"][
        "istio"]["config"].endswith("/namespaces/default/virtual-service/tcp-echo")
    weighted = tcp_vs("  - route:\n    - {destination: {host: tcp-echo, subset: v1}, weight: 80}\n"
                      "    - {destination: {host: tcp-echo, subset: v2}, weight: 20}\n"
                      "    - {destination: {host: tcp-echo, subset: v2}, weight: 0}\n")
    assert tcp_proxy(generate(tcp_mesh(TCP_DR, weighted), CLIENT), "0.0.0.0_9001") == {
        "stat_prefix": "tcp-echo.default", "weighted_clusters": {"clusters": [
            {"name": f"outbound|9001|v1|{TCP_ECHO}", "weight": 80},
            {"name": f"outbound|9001|v2|{TCP_ECHO}", "weight": 20}]}}


@pytest.mark.parametrize("condition, applies", [
    ("port: 9000", True), ("port: 9001", False),
    ("sourceLabels: {app: curl}", True), ("sourceLabels: {app: other}", False),
    ("sourceNamespace: other", False), ("gateways: [mesh]", True),
    ("gateways: [tcp-echo-gateway]", False),
])
def test_tcp_match_conditions_on_a_sidecar(condition, applies):
    config = tcp_vs(f"  - match: [{{{condition}}}]\n"
                    "    route: [{destination: {host: tcp-echo, subset: v2}}]\n")
    subset = "v2" if applies else ""
    assert tcp_proxy(generate(tcp_mesh(TCP_DR, config), CLIENT), "0.0.0.0_9000")["cluster"] == \
        f"outbound|9000|{subset}|{TCP_ECHO}"


def test_a_tcp_port_of_the_pod_is_proxied_to_the_app_as_tcp():
    out = generate(tcp_mesh(), TCP_ECHO_POD)
    assert tcp_proxy(out, "127.10.0.1_9000") == {"stat_prefix": "inbound|9000||",
                                                 "cluster": "inbound|9000||"}


TCP_GATEWAY = ("apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: tcp-echo-gateway}\n"
               "spec:\n  selector: {istio: ingressgateway}\n  servers:\n"
               "  - port: {number: 31400, name: tcp, protocol: TCP}\n    hosts: ['*']\n")
AT_GATEWAY = "  gateways: [tcp-echo-gateway]\n"


def ingress_resources(*config: str) -> dict:
    return generate(tcp_mesh(*config), INGRESS)


def test_a_tcp_server_without_a_tcp_route_opens_no_port():
    assert ingress_resources(TCP_GATEWAY)[LISTENER] == {}
    elsewhere = tcp_vs("  - match: [{port: 31401}]\n    route: [{destination: {host: tcp-echo}}]\n",
                       AT_GATEWAY)
    assert ingress_resources(TCP_GATEWAY, elsewhere)[LISTENER] == {}
    other = tcp_vs("  - match: [{gateways: [other-gateway]}]\n"
                   "    route: [{destination: {host: tcp-echo}}]\n", AT_GATEWAY)
    assert ingress_resources(TCP_GATEWAY, other)[LISTENER] == {}


def test_a_tcp_server_proxies_to_the_first_matching_tcp_route():
    config = tcp_vs("  - match: [{port: 31401}]\n    route: [{destination: {host: tcp-echo, subset: v2}}]\n"
                    "  - match: [{port: 31400, sourceLabels: {app: nobody}}]\n"
                    "    route: [{destination: {host: tcp-echo, subset: v1, port: {number: 9001}}}]\n",
                    AT_GATEWAY)
    out = ingress_resources(TCP_GATEWAY, TCP_DR, config)
    cluster = f"outbound|9001|v1|{TCP_ECHO}"  # a gateway ignores source labels
    assert tcp_proxy(out, "0.0.0.0_31400") == {"stat_prefix": cluster, "cluster": cluster}
    assert out[LISTENER]["0.0.0.0_31400"]["additional_addresses"] == [
        {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 31400}}}]
    # a destination without a port, to a Service of two ports: the server's number
    config = tcp_vs("  - route: [{destination: {host: tcp-echo}}]\n", AT_GATEWAY)
    assert tcp_proxy(ingress_resources(TCP_GATEWAY, config), "0.0.0.0_31400")["cluster"] == \
        f"outbound|31400||{TCP_ECHO}"


def test_the_first_server_on_a_port_decides_its_protocol():
    http = TCP_GATEWAY.replace("tcp-echo-gateway", "http-first").replace(
        "name: tcp, protocol: TCP", "name: http, protocol: HTTP")
    route = tcp_vs("  - route: [{destination: {host: tcp-echo, port: {number: 9000}}}]\n",
                   "  gateways: [tcp-echo-gateway, http-first]\n")
    web = ("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: web}\n"
           "spec:\n  hosts: ['*']\n  gateways: [http-first, tcp-echo-gateway]\n"
           "  http:\n  - route: [{destination: {host: tcp-echo, port: {number: 9000}}}]\n")
    http_first = ingress_resources(http, TCP_GATEWAY, route, web)[LISTENER]["0.0.0.0_31400"]
    assert http_first["filter_chains"][0]["filters"][0]["name"] == \
        "envoy.filters.network.http_connection_manager"
    tcp_first = ingress_resources(TCP_GATEWAY, http, route, web)
    assert tcp_proxy(tcp_first, "0.0.0.0_31400")["cluster"] == f"outbound|9000||{TCP_ECHO}"
