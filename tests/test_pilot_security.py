"""AuthorizationPolicy and RequestAuthentication: what the control plane makes of them
(docs/facts.md#authorization, docs/facts.md#jwt), and the bad input refused before any
proxy sees it."""

from __future__ import annotations

import json

import pytest

from bookinfo_labs.local.pilot import LISTENER, ProxyView, generate
from bookinfo_labs.local.pilot import authz, jwt
from bookinfo_labs.manifests import ManifestError, parse_text
from bookinfo_labs.tokens import Issuer, claims_of, forged

from test_pilot import GOLDEN, INGRESS, TCP_ECHO, _compare, _parse_all, mesh_of

HTTPBIN = ProxyView(pod="httpbin-5d8f7c9b6d-x2k4p", namespace="default",
                    labels={"app": "httpbin", "version": "v1"}, ip="127.10.0.3",
                    outbound_ip="127.11.0.3", app_ip="127.12.0.3", inbound_ports=(8080,),
                    service_account="httpbin", access_log_path="/tmp/httpbin/istio-proxy.log")
FOO_HTTPBIN = ProxyView(**{**HTTPBIN.__dict__, "namespace": "foo", "ip": "127.10.0.4"})
JWKS = json.dumps({"keys": [{"kty": "RSA", "kid": "k1", "n": "AQAB", "e": "AQAB"}]})


def policy(spec: str, name: str = "p", namespace: str = "default",
           kind: str = "AuthorizationPolicy") -> str:
    return (f"apiVersion: security.istio.io/v1\nkind: {kind}\n"
            f"metadata: {{name: {name}, namespace: {namespace}}}\nspec:\n{spec}")


def request_authentication(rules: str, name: str = "jwt", namespace: str = "default",
                           selector: str = "  selector: {matchLabels: {app: httpbin}}\n") -> str:
    return policy(f"{selector}  jwtRules:\n{rules}", name, namespace, "RequestAuthentication")


def filters(*config: str, proxy: ProxyView = HTTPBIN, port: int = 8080) -> list[dict]:
    """The HTTP filters of the proxy's inbound listener (a gateway's first listener)."""
    out = generate(mesh_of(*config, gateways=proxy.is_gateway), proxy)[LISTENER]
    name = next(n for n in out if n.endswith(f"_{port}")) if not proxy.is_gateway \
        else sorted(out)[0]
    chain = out[name]["filter_chains"][-1]
    [hcm] = [f for f in chain["filters"] if f["name"].endswith("http_connection_manager")]
    return hcm["typed_config"]["http_filters"]


def rbac(*config: str, proxy: ProxyView = HTTPBIN) -> list[dict]:
    return [f["typed_config"]["rules"] for f in filters(*config, proxy=proxy)
            if f["name"] == "envoy.filters.http.rbac"]


def the_rule(*config: str, key: str = "ns[default]-policy[p]-rule[0]") -> dict:
    [rules] = rbac(*config)
    return rules["policies"][key]


def _descriptors() -> None:
    from envoy.extensions.filters.http.jwt_authn.v3 import config_pb2  # noqa: F401
    from envoy.extensions.filters.http.rbac.v3 import rbac_pb2  # noqa: F401
    from envoy.extensions.filters.network.rbac.v3 import rbac_pb2 as _  # noqa: F401,F811


#: the labs' policies on httpbin, the ingress gateway and tcp-echo, in one mesh
SECURITY = "\n---\n".join([
    request_authentication(f"  - issuer: testing@secure.istio.io\n    jwks: '{JWKS}'\n"),
    policy("  selector: {matchLabels: {app: httpbin}}\n  rules:\n"
           "  - from: [{source: {requestPrincipals: [testing@secure.istio.io/testing@secure.istio.io]}}]\n"
           "    when: [{key: 'request.auth.claims[groups]', values: [group1]}]\n"
           "  - to: [{operation: {methods: [GET], paths: [/ip, /status/*], notPaths: [/status/418]}}]\n",
           "require-jwt"),
    policy("  action: DENY\n  rules:\n  - when: [{key: 'request.headers[user-agent]', values: [Bot]}]\n",
           "rate-limit-bots"),
    policy("  action: AUDIT\n  rules:\n  - from: [{source: {ipBlocks: [10.0.0.0/8]}}]\n", "audit"),
    policy("  selector: {matchLabels: {istio: ingressgateway}}\n  rules:\n"
           "  - from: [{source: {remoteIpBlocks: [1.2.3.4]}}]\n", "allow-remote-ip", "istio-system"),
    policy("  selector: {matchLabels: {app: tcp-echo}}\n  rules:\n"
           "  - from: [{source: {principals: [cluster.local/ns/default/sa/curl]}}]\n"
           "  - from: [{source: {namespaces: [default]}}]\n"
           "    to: [{operation: {methods: [GET]}}]\n", "tcp-echo"),
    policy("  selector: {matchLabels: {app: tcp-echo}}\n  action: DENY\n  rules:\n"
           "  - from: [{source: {notNamespaces: [default]}}]\n    to: [{operation: {paths: [/admin]}}]\n",
           "tcp-echo-deny"),
])


def test_golden_security():
    """The listeners of httpbin (jwt_authn, then RBAC AUDIT, DENY and ALLOW), of the
    ingress gateway (remoteIpBlocks) and of tcp-echo (network RBAC)."""
    _descriptors()
    mesh = mesh_of(SECURITY, "bookinfo-gateway.yaml", samples=("httpbin", "tcp-echo", "curl"),
                   gateways=True)
    resources = {name: generate(mesh, proxy)
                 for name, proxy in (("httpbin", HTTPBIN), ("ingressgateway", INGRESS),
                                     ("tcp-echo-v1", TCP_ECHO))}
    for by_type in resources.values():
        _parse_all(by_type)
    _compare(GOLDEN / "security.json", {name: r[LISTENER] for name, r in resources.items()})


# -- AuthorizationPolicy -----------------------------------------------------------------

def test_one_filter_per_action_in_istios_order_after_jwt_and_before_the_router():
    names = [f["name"] for f in filters(SECURITY)]
    assert names == ["envoy.filters.http.jwt_authn"] + ["envoy.filters.http.rbac"] * 3 + [
        "envoy.filters.http.fault", "envoy.filters.http.cors", "envoy.filters.http.router"]
    assert [r.get("action", "ALLOW") for r in rbac(SECURITY)] == ["LOG", "DENY", "ALLOW"]


def test_no_policy_no_filter_and_outbound_never_gets_one():
    assert not rbac()
    from test_pilot import CLIENT
    out = generate(mesh_of(policy("  rules: [{}]\n")), CLIENT)[LISTENER]
    # (the tracing tags name the rbac filter's dry-run metadata: look at the filters only)
    filters = [f["name"] for chain in out["0.0.0.0_8000"]["filter_chains"]
               for hcm in chain["filters"]
               for f in hcm.get("typed_config", {}).get("http_filters", [])]
    assert filters and not any("rbac" in name for name in filters)


def test_allow_nothing_never_matches_and_rule_any_matches_everything():
    nothing = the_rule("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
                       "metadata: {name: p}\nspec: {}\n")
    assert nothing == {"permissions": [{"not_rule": {"any": True}}],
                       "principals": [{"not_id": {"any": True}}]}
    everything = the_rule(policy("  action: DENY\n  rules: [{}]\n"))
    assert everything == {"permissions": [{"and_rules": {"rules": [{"any": True}]}}],
                          "principals": [{"and_ids": {"ids": [{"any": True}]}}]}


def test_which_policies_select_a_proxy():
    root = policy("  rules: [{}]\n", "mesh-wide", "istio-system")
    other = policy("  rules: [{}]\n", "other", "foo")
    mismatch = policy("  selector: {matchLabels: {app: ratings}}\n  rules: [{}]\n", "ratings")
    [rules] = rbac(root, other, mismatch)
    assert list(rules["policies"]) == ["ns[istio-system]-policy[mesh-wide]-rule[0]"]
    [rules] = rbac(root, other, mismatch, proxy=FOO_HTTPBIN)
    assert sorted(rules["policies"]) == ["ns[foo]-policy[other]-rule[0]",
                                         "ns[istio-system]-policy[mesh-wide]-rule[0]"]
    # the ingress gateway (istio-system) is selected by the root namespace's policies too
    assert authz.http_filters(mesh_of(root, gateways=True), INGRESS)


@pytest.mark.parametrize("value, matcher", [
    ("cluster.local/ns/default/sa/sleep", {"exact": "spiffe://cluster.local/ns/default/sa/sleep"}),
    ("*", {"safe_regex": {"regex": ".+"}}),
    ("*/sa/sleep", {"safe_regex": {"regex": "spiffe://.*/sa/sleep"}}),
    ("cluster.local/ns/default/*", {"prefix": "spiffe://cluster.local/ns/default/"}),
])
def test_principals_match_the_peers_spiffe_identity(value, matcher):
    rule = the_rule(policy(f"  rules:\n  - from: [{{source: {{principals: ['{value}']}}}}]\n"))
    assert rule["principals"] == [{"and_ids": {"ids": [{"or_ids": {"ids": [
        {"authenticated": {"principal_name": matcher}}]}}]}}]


def test_namespaces_ip_blocks_and_their_negations():
    rule = the_rule(policy("  rules:\n  - from: [{source: {namespaces: [foo], notIpBlocks: "
                           "[10.1.2.3], remoteIpBlocks: [192.168.0.0/16]}}]\n"))
    ids = rule["principals"][0]["and_ids"]["ids"]
    assert ids == [
        {"or_ids": {"ids": [{"authenticated": {"principal_name": {
            "safe_regex": {"regex": ".*/ns/foo/.*"}}}}]}},
        {"or_ids": {"ids": [{"remote_ip": {"address_prefix": "192.168.0.0", "prefix_len": 16}}]}},
        {"not_id": {"or_ids": {"ids": [{"direct_remote_ip": {"address_prefix": "10.1.2.3",
                                                               "prefix_len": 32}}]}}},
    ]


def test_operations_hosts_methods_paths_ports():
    rule = the_rule(policy("  rules:\n  - to: [{operation: {hosts: ['*.example.com'], methods: "
                           "[GET, POST], paths: [/ip, '/status/*', '*/json', '/a/{*}/b'], "
                           "ports: ['8080']}}]\n"))
    rules = rule["permissions"][0]["and_rules"]["rules"]
    assert rules[0] == {"or_rules": {"rules": [{"header": {"name": ":authority", "string_match": {
        "suffix": ".example.com", "ignore_case": True}}}]}}
    assert [r["header"]["string_match"]["exact"] for r in rules[1]["or_rules"]["rules"]] == [
        "GET", "POST"]
    assert rules[2]["or_rules"]["rules"][:3] == [{"url_path": {"path": {"exact": "/ip"}}},
                                                 {"url_path": {"path": {"prefix": "/status/"}}},
                                                 {"url_path": {"path": {"suffix": "/json"}}}]
    assert rules[2]["or_rules"]["rules"][3]["uri_template"]["typed_config"]["path_template"] \
        == "/a/*/b"
    assert rules[3] == {"or_rules": {"rules": [{"destination_port": 8080}]}}


def test_request_principals_are_the_jwt_payloads_iss_and_sub():
    rule = the_rule(policy("  rules:\n  - from: [{source: {requestPrincipals: "
                           "[testing@secure.istio.io/testing@secure.istio.io, '*']}}]\n"))
    [principal] = rule["principals"][0]["and_ids"]["ids"]
    exact, anything = principal["or_ids"]["ids"]
    assert [m["metadata"]["path"] for m in exact["and_ids"]["ids"]] == [
        [{"key": "payload"}, {"key": "iss"}], [{"key": "payload"}, {"key": "sub"}]]
    assert {m["metadata"]["filter"] for m in exact["and_ids"]["ids"]} == {
        "envoy.filters.http.jwt_authn"}
    assert [m["metadata"]["value"] for m in exact["and_ids"]["ids"]] == [
        {"string_match": {"exact": "testing@secure.istio.io"}}] * 2
    assert [m["metadata"]["value"] for m in anything["and_ids"]["ids"]] == [
        {"string_match": {"safe_regex": {"regex": ".+"}}}] * 2


def test_when_conditions_join_the_principal_and_permission_sides():
    rule = the_rule(policy("  rules:\n  - when:\n    - {key: 'request.auth.claims[groups]', "
                           "values: [group1, group2]}\n    - {key: source.ip, notValues: [10.0.0.1]}\n"
                           "    - {key: destination.port, values: ['8080']}\n"))
    claims, source_ip = rule["principals"][0]["and_ids"]["ids"]
    value = claims["metadata"]["value"]["or_match"]["value_matchers"]
    either = {"or_match": {"value_matchers": [{"string_match": {"exact": "group1"}},
                                              {"string_match": {"exact": "group2"}}]}}
    assert value == [{"list_match": {"one_of": either}}, either]
    assert "not_id" in source_ip
    assert rule["permissions"] == [{"and_rules": {"rules": [
        {"or_rules": {"rules": [{"destination_port": 8080}]}}]}}]


def test_a_tcp_chain_skips_an_allow_rule_with_http_fields_and_drops_them_from_deny():
    mesh = mesh_of(SECURITY, samples=("tcp-echo", "curl"))
    allow = authz.network_filters(mesh, TCP_ECHO)[-1]["typed_config"]
    assert allow["stat_prefix"] == "tcp."
    # the rule with methods never matches on TCP: left out; the principals rule stays
    assert list(allow["rules"]["policies"]) == ["ns[default]-policy[tcp-echo]-rule[0]"]
    deny = authz.network_filters(mesh, TCP_ECHO)[0]["typed_config"]["rules"]
    [rule] = deny["policies"].values()
    assert rule["permissions"] == [{"and_rules": {"rules": [{"any": True}]}}]  # paths dropped
    listeners = generate(mesh, TCP_ECHO)[LISTENER]
    for chain in listeners["127.10.0.1_9000"]["filter_chains"]:
        assert [f["name"] for f in chain["filters"]][-3:] == [
            "envoy.filters.network.rbac", "envoy.filters.network.rbac",
            "envoy.filters.network.tcp_proxy"]


def test_target_refs_are_not_selectors():
    assert not rbac(policy("  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, "
                           "name: gw}]\n  rules: [{}]\n"))


# -- RequestAuthentication ---------------------------------------------------------------

def test_jwt_rules_become_providers_origins_i_sorted_by_issuer():
    rules = (f"  - {{issuer: z.example.com, jwks: '{JWKS}', audiences: [a], "
             "forwardOriginalToken: true, outputPayloadToHeader: x-payload, "
             "fromHeaders: [{name: x-jwt, prefix: 'Token '}], fromParams: [token], "
             "outputClaimToHeaders: [{header: x-sub, claim: sub}]}\n"
             f"  - {{issuer: a.example.com, jwks: '{JWKS}'}}\n")
    [jwt_filter] = [f for f in filters(request_authentication(rules))
                    if f["name"] == "envoy.filters.http.jwt_authn"]
    config = jwt_filter["typed_config"]
    assert config["providers"]["origins-0"]["issuer"] == "a.example.com"
    z = config["providers"]["origins-1"]
    assert z == {"issuer": "z.example.com", "audiences": ["a"], "forward": True,
                 "forward_payload_header": "x-payload",
                 "claim_to_headers": [{"header_name": "x-sub", "claim_name": "sub"}],
                 "from_headers": [{"name": "x-jwt", "value_prefix": "Token "}],
                 "from_params": ["token"], "payload_in_metadata": "payload",
                 "normalize_payload_in_metadata": {"space_delimited_claims": ["scope",
                                                                              "permission"]},
                 "local_jwks": {"inline_string": JWKS}}
    optional = [{"requires_any": {"requirements": [{"provider_name": f"origins-{i}"},
                                                   {"allow_missing": {}}]}} for i in (0, 1)]
    assert config["rules"] == [{"match": {"prefix": "/"}, "requires": {"requires_any": {
        "requirements": [{"provider_name": "origins-0"}, {"provider_name": "origins-1"},
                         {"requires_all": {"requirements": optional}}]}}}]
    assert config["bypass_cors_preflight"] is True


def test_one_jwt_rule_is_optional_and_a_gateway_clears_the_route_cache():
    ra = request_authentication(f"  - {{issuer: x, jwks: '{JWKS}'}}\n", namespace="istio-system",
                                selector="")
    [gateway] = jwt.http_filters(mesh_of(ra, gateways=True), INGRESS)
    assert gateway["typed_config"]["providers"]["origins-0"]["clear_route_cache"] is True
    assert gateway["typed_config"]["rules"][0]["requires"] == {"requires_any": {"requirements": [
        {"provider_name": "origins-0"}, {"allow_missing": {}}]}}
    [sidecar] = jwt.http_filters(mesh_of(ra), HTTPBIN)  # root namespace: mesh-wide
    assert "clear_route_cache" not in sidecar["typed_config"]["providers"]["origins-0"]


# -- gateway topology --------------------------------------------------------------------

def test_a_gateways_trusted_proxies_come_from_its_proxy_config_annotation():
    def hops(proxy: ProxyView) -> set[int]:
        listeners = generate(mesh_of("bookinfo-gateway.yaml", gateways=True), proxy)[LISTENER]
        return {c["filters"][0]["typed_config"]["xff_num_trusted_hops"]
                for listener in listeners.values() for c in listener["filter_chains"]}

    assert hops(INGRESS) == {0}
    trusting = ProxyView(**{**INGRESS.__dict__, "annotations": {
        "proxy.istio.io/config": '{"gatewayTopology":{"numTrustedProxies":1}}'}})
    assert hops(trusting) == {1}


# -- bad input ---------------------------------------------------------------------------

def _refused(text: str) -> ManifestError:
    with pytest.raises(ManifestError) as err:
        parse_text(text, "policy.yaml")
    return err.value


def test_request_count_is_no_attribute():
    err = _refused(policy("  action: DENY\n  rules:\n  - when:\n"
                          "    - {key: 'request.headers[user-agent]', values: [Bot]}\n"
                          "    - {key: request.count, values: ['20']}\n", "rate-limit-bots"))
    assert err.path == "spec.rules[0].when[1].key"
    assert "unknown attribute: request.count" in str(err) and "policy.yaml" in str(err)


def test_a_misspelt_key_is_refused_with_the_right_name():
    err = _refused(policy("  rules:\n  - form: [{source: {namespaces: [foo]}}]\n"))
    assert err.path == "spec.rules[0]" and "'from'" in str(err)


@pytest.mark.parametrize("jwks, why", [
    ("https://example.com/jwks.json", "not JSON"),
    ('{"issuer": "x"}', '"keys"'),
    ('{"keys": [{"n": "AQAB"}]}', '"kty"'),
])
def test_a_key_set_that_is_not_one_is_refused(jwks, why):
    err = _refused(request_authentication(f"  - issuer: x\n    jwks: '{jwks}'\n"))
    assert err.path == "spec.jwtRules[0].jwks"
    assert "jwks parse error" in str(err) and why in str(err)


# -- the scenario's tokens ---------------------------------------------------------------

def test_tokens_verify_against_the_issuers_key_set_only():
    import jwt as pyjwt

    issuer = Issuer()
    keys = pyjwt.PyJWKSet.from_json(issuer.jwks)
    token = issuer.token(groups=["group1"])
    claims = pyjwt.decode(token, keys[issuer.kid].key, algorithms=["RS256"])
    assert claims["iss"] == claims["sub"] == "testing@secure.istio.io"
    assert claims["groups"] == ["group1"]
    with pytest.raises(pyjwt.ExpiredSignatureError):  # no leeway: an hour is far beyond 60 s
        pyjwt.decode(issuer.token(expired=True), keys[issuer.kid].key, algorithms=["RS256"])
    with pytest.raises(pyjwt.InvalidSignatureError):
        pyjwt.decode(forged(issuer).token(), keys[issuer.kid].key, algorithms=["RS256"])
    assert claims_of(token)["groups"] == ["group1"]
