"""TLS at the ingress gateway, without processes: what the control plane makes of a
Gateway's HTTPS and TLS servers, of tls routes and of the Secrets credentialName names
(what istiod makes of them, docs/facts.md#tls-at-the-gateway). A golden file pins a
gateway's whole config; each test reads the one place a field decides."""

from __future__ import annotations

import base64
import dataclasses
import json
import os

import pytest

from bookinfo_labs.local.pilot import (LISTENER, ROUTE, SECRET, ProxyView, SecretView,
                                       ServicePortView, ServiceView, generate)

from test_pilot import CLIENT, GOLDEN, _parse_all, mesh_of

GATEWAY = ProxyView(pod="istio-ingressgateway-5d8f7c9b6d-x2k4p", namespace="istio-system",
                    labels={"app": "istio-ingressgateway", "istio": "ingressgateway"},
                    ip="127.10.0.200", outbound_ip="127.11.0.200", app_ip="127.12.0.200",
                    access_log_path="/tmp/istio-ingressgateway/istio-proxy.log", kind="router",
                    host_ports={8080: 8080, 8443: 8443})
INGRESS = ServiceView("istio-ingressgateway", "istio-system", (
    ServicePortView("http2", 80, 8080), ServicePortView("https", 443, 8443)),
    {"app": "istio-ingressgateway", "istio": "ingressgateway"})
NGINX = ServiceView("my-nginx", "default", (ServicePortView("https", 443, 443),), {"run": "my-nginx"})
CERT, KEY, CA = (f"-----BEGIN {what}-----\nfake\n-----END {what}-----\n".encode()
                 for what in ("CERTIFICATE", "PRIVATE KEY", "CA CERTIFICATE"))
TLS_SECRET = {"tls.crt": CERT, "tls.key": KEY}
HTTPS_PORT = "0.0.0.0_8443"


def secret(name: str, data: dict[str, bytes] = TLS_SECRET, namespace: str = "istio-system"):
    return SecretView(namespace, name, data)


def gateway(servers: str, name: str = "mygateway") -> str:
    return (f"apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: {name}}}\n"
            f"spec:\n  selector: {{istio: ingressgateway}}\n  servers:\n{servers}")


def https_server(host: str, mode: str = "SIMPLE", credential: str = "httpbin-credential",
                 port_name: str = "https", protocol: str = "HTTPS") -> str:
    tls = f"{{mode: {mode}, credentialName: {credential}}}" if mode != "PASSTHROUGH" \
        else "{mode: PASSTHROUGH}"
    return (f"  - port: {{number: 443, name: {port_name}, protocol: {protocol}}}\n"
            f"    tls: {tls}\n    hosts: [{host}]\n")


HTTPBIN_VS = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin}
spec:
  hosts: [httpbin.example.com]
  gateways: [mygateway]
  http:
  - match: [{uri: {prefix: /status}}]
    route: [{destination: {host: httpbin, port: {number: 8000}}}]
"""
NGINX_VS = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: nginx}
spec:
  hosts: [nginx.example.com]
  gateways: [mygateway]
  tls:
  - match: [{port: 443, sniHosts: [nginx.example.com]}]
    route: [{destination: {host: my-nginx, port: {number: 443}}}]
"""


def generated(*config: str, secrets=(secret("httpbin-credential"),), proxy=GATEWAY) -> dict:
    mesh = mesh_of(*config)
    mesh = dataclasses.replace(mesh, services=mesh.services + (INGRESS, NGINX),
                               secrets=tuple(secrets))
    out = generate(mesh, proxy)
    _parse_all(out)
    return out


def chains(out: dict, listener: str = HTTPS_PORT) -> list[dict]:
    return out[LISTENER][listener]["filter_chains"]


def tls_context(chain: dict) -> dict:
    return chain["transport_socket"]["typed_config"]


def manager(chain: dict) -> dict:
    [hcm] = chain["filters"]
    return hcm["typed_config"]


# -- the golden file ----------------------------------------------------------------------

#: lab 6's servers in one Gateway (a redirect on 80, SIMPLE and MUTUAL on 443) and a
#: PASSTHROUGH server of a second Gateway on the same port, told apart by SNI
GOLDEN_CONFIG = (
    gateway("  - port: {number: 80, name: http, protocol: HTTP}\n"
            "    tls: {httpsRedirect: true}\n    hosts: [httpbin.example.com]\n"
            + https_server("httpbin.example.com")
            + https_server("helloworld-v1.example.com", "MUTUAL", "helloworld-credential",
                           "https-helloworld")),
    gateway(https_server("nginx.example.com", "PASSTHROUGH", protocol="TLS", port_name="tls"),
            name="nginx-gateway"),
    HTTPBIN_VS,
    NGINX_VS.replace("[mygateway]", "[nginx-gateway]"),
)


def test_golden_gateway_tls():
    out = generated(*GOLDEN_CONFIG, secrets=(
        secret("httpbin-credential"),
        secret("helloworld-credential", {**TLS_SECRET, "ca.crt": CA})))
    path = GOLDEN / "gateway-tls.json"
    text = json.dumps(out, indent=1, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.exists(), f"no golden file {path}: UPDATE_GOLDEN=1 writes it"
    assert text == path.read_text(), f"{path} differs: UPDATE_GOLDEN=1 regenerates it"


# -- HTTPS servers that terminate TLS ------------------------------------------------------

def test_simple_is_a_filter_chain_matched_by_sni_with_the_credential_over_sds():
    out = generated(gateway(https_server("httpbin.example.com")), HTTPBIN_VS)
    listener = out[LISTENER][HTTPS_PORT]
    assert listener["listener_filters"][0]["name"] == "envoy.filters.listener.tls_inspector"
    assert listener["additional_addresses"] == [
        {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 8443}}}]
    [chain] = chains(out)
    assert chain["filter_chain_match"] == {"server_names": ["httpbin.example.com"]}
    context = tls_context(chain)
    assert context["require_client_certificate"] is False
    assert context["common_tls_context"] == {
        "alpn_protocols": ["h2", "http/1.1"],
        "tls_certificate_sds_secret_configs": [{
            "name": "kubernetes://httpbin-credential",
            "sds_config": {"ads": {}, "resource_api_version": "V3"}}]}
    hcm = manager(chain)
    assert hcm["rds"]["route_config_name"] == "https.443.https.mygateway.default"
    assert hcm["stat_prefix"] == "outbound_0.0.0.0_8443;"
    assert hcm["forward_client_cert_details"] == "SANITIZE_SET"
    [vhost] = out[ROUTE]["https.443.https.mygateway.default"]["virtual_hosts"]
    assert vhost["name"] == "httpbin.example.com:443" and vhost["domains"] == ["httpbin.example.com"]


def test_a_wildcard_host_matches_any_sni_and_a_server_name_is_the_stat_prefix():
    servers = https_server("'*'").replace("  - port:", "  - name: secure\n    port:")
    [chain] = chains(generated(gateway(servers)))
    assert "filter_chain_match" not in chain
    assert manager(chain)["stat_prefix"] == "secure"


def test_mutual_requires_a_client_certificate_checked_against_the_credentials_ca():
    context = tls_context(chains(generated(gateway(https_server("httpbin.example.com",
                                                                "MUTUAL"))))[0])
    assert context["require_client_certificate"] is True
    assert context["common_tls_context"]["combined_validation_context"] == {
        "default_validation_context": {},
        "validation_context_sds_secret_config": {
            "name": "kubernetes://httpbin-credential-cacert",
            "sds_config": {"ads": {}, "resource_api_version": "V3"}}}


def test_two_https_servers_on_one_port_have_their_own_chain_certificate_and_routes():
    out = generated(gateway(https_server("httpbin.example.com", port_name="https-httpbin")
                            + https_server("helloworld-v1.example.com",
                                           credential="helloworld-credential",
                                           port_name="https-helloworld")), HTTPBIN_VS)
    names = [(c["filter_chain_match"]["server_names"],
              tls_context(c)["common_tls_context"]["tls_certificate_sds_secret_configs"][0]["name"],
              manager(c)["rds"]["route_config_name"]) for c in chains(out)]
    assert names == [
        (["httpbin.example.com"], "kubernetes://httpbin-credential",
         "https.443.https-httpbin.mygateway.default"),
        (["helloworld-v1.example.com"], "kubernetes://helloworld-credential",
         "https.443.https-helloworld.mygateway.default")]
    # helloworld-v1.example.com has no VirtualService: its route configuration answers 404
    assert out[ROUTE]["https.443.https-helloworld.mygateway.default"]["virtual_hosts"] == [
        {"name": "blackhole:443", "domains": ["*"], "routes": []}]


def test_a_host_another_tls_server_has_on_the_port_skips_the_server():
    out = generated(gateway(https_server("httpbin.example.com")),
                    gateway(https_server("httpbin.example.com", port_name="other"), name="second"))
    assert len(chains(out)) == 1 and "https.443.other.second.default" not in out[ROUTE]


def test_a_plain_text_port_keeps_its_http_servers_only():
    plain = "  - port: {number: 443, name: http, protocol: HTTP}\n    hosts: ['*']\n"
    out = generated(gateway(plain), gateway(https_server("httpbin.example.com"), name="tls"))
    [chain] = chains(out)
    assert "transport_socket" not in chain and manager(chain)["rds"]["route_config_name"] == "http.8443"
    assert SECRET not in out  # no TLS server, no SDS


# -- the secrets served --------------------------------------------------------------------

def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_the_credential_is_served_inline_from_its_secret():
    out = generated(gateway(https_server("httpbin.example.com")))
    assert out[SECRET] == {"kubernetes://httpbin-credential": {
        "name": "kubernetes://httpbin-credential",
        "tls_certificate": {"certificate_chain": {"inline_bytes": _b64(CERT)},
                            "private_key": {"inline_bytes": _b64(KEY)}}}}


@pytest.mark.parametrize("secrets, trusted", [
    ((secret("httpbin-credential", {**TLS_SECRET, "ca.crt": CA}),), CA),
    # a secret of its own, <credentialName>-cacert, wins over the credential's ca.crt
    ((secret("httpbin-credential", {**TLS_SECRET, "ca.crt": b"old"}),
      secret("httpbin-credential-cacert", {"ca.crt": CA})), CA),
    # the generic keys (cert, key, cacert) come before the kubernetes.io/tls ones
    ((secret("httpbin-credential", {"cert": b"c", "key": b"k", "cacert": CA, "ca.crt": b"x"}),),
     CA),
])
def test_mutual_also_gets_the_ca_as_a_validation_context(secrets, trusted):
    out = generated(gateway(https_server("httpbin.example.com", "MUTUAL")), secrets=secrets)
    assert out[SECRET]["kubernetes://httpbin-credential-cacert"] == {
        "name": "kubernetes://httpbin-credential-cacert",
        "validation_context": {"trusted_ca": {"inline_bytes": _b64(trusted)}}}


@pytest.mark.parametrize("secrets", [
    (),  # no such secret: istiod sends nothing, Envoy keeps waiting for it
    (secret("httpbin-credential", namespace="default"),),  # not the gateway's namespace
    (secret("httpbin-credential", {"tls.crt": CERT}),),  # no key
])
def test_a_credential_without_its_secret_is_not_served(secrets):
    out = generated(gateway(https_server("httpbin.example.com")), secrets=secrets)
    assert SECRET not in out
    [chain] = chains(out)  # the chain is there all the same
    assert tls_context(chain)["common_tls_context"]["tls_certificate_sds_secret_configs"]


# -- PASSTHROUGH ---------------------------------------------------------------------------

@pytest.mark.parametrize("protocol", ["HTTPS", "TLS"])
def test_passthrough_is_a_tcp_proxy_chain_per_sni_host_of_a_tls_route(protocol):
    out = generated(gateway(https_server("nginx.example.com", "PASSTHROUGH", protocol=protocol)),
                    NGINX_VS)
    [chain] = chains(out)
    assert chain["filter_chain_match"] == {"server_names": ["nginx.example.com"]}
    assert "transport_socket" not in chain
    [proxy] = chain["filters"]
    assert proxy["name"] == "envoy.filters.network.tcp_proxy"
    cluster = "outbound|443||my-nginx.default.svc.cluster.local"
    assert proxy["typed_config"]["cluster"] == proxy["typed_config"]["stat_prefix"] == cluster
    assert out[LISTENER][HTTPS_PORT]["listener_filters"][0]["name"] == \
        "envoy.filters.listener.tls_inspector"
    assert not out[ROUTE]  # nothing for RDS: no route name for a passthrough server


@pytest.mark.parametrize("match", [
    "{port: 8443, sniHosts: [nginx.example.com]}",  # another port
    "{gateways: [other], sniHosts: [nginx.example.com]}",  # another gateway
])
def test_a_tls_match_for_another_port_or_gateway_makes_no_chain(match):
    vs = NGINX_VS.replace("{port: 443, sniHosts: [nginx.example.com]}", match)
    out = generated(gateway(https_server("nginx.example.com", "PASSTHROUGH")), vs)
    assert HTTPS_PORT not in out[LISTENER]  # no chain, no listener


def test_a_second_tls_route_for_the_same_sni_host_is_skipped():
    second = NGINX_VS.replace("name: nginx", "name: nginx-2").replace("my-nginx", "httpbin")
    out = generated(gateway(https_server("nginx.example.com", "PASSTHROUGH")), NGINX_VS, second)
    [chain] = chains(out)
    assert "my-nginx" in chain["filters"][0]["typed_config"]["cluster"]


# -- httpsRedirect, and the sidecars ------------------------------------------------------

def test_https_redirect_makes_every_host_of_the_server_require_tls():
    redirect = ("  - port: {number: 80, name: http, protocol: HTTP}\n"
                "    tls: {httpsRedirect: true}\n    hosts: [httpbin.example.com, a.example.com]\n")
    out = generated(gateway(redirect), HTTPBIN_VS)
    vhosts = {v["name"]: v for v in out[ROUTE]["http.8080"]["virtual_hosts"]}
    assert vhosts["httpbin.example.com:80"]["require_tls"] == "ALL"
    assert vhosts["httpbin.example.com:80"]["routes"]  # the VirtualService's, never reached
    assert vhosts["a.example.com:80"] == {"name": "a.example.com:80", "domains": ["a.example.com"],
                                          "routes": [], "include_request_attempt_count": True,
                                          "require_tls": "ALL"}


def test_a_sidecar_carries_a_tls_port_of_its_pod_as_bytes():
    nginx = ProxyView(pod="my-nginx-5d8f7c9b6d-x2k4p", namespace="default",
                      labels={"run": "my-nginx"}, ip="127.10.0.50", outbound_ip="127.11.0.50",
                      app_ip="127.12.0.50", inbound_ports=(443,))
    out = generated(proxy=nginx)
    chains = out[LISTENER]["127.10.0.50_443"]["filter_chains"]  # mTLS, then plain bytes
    assert [c["filters"][0]["typed_config"]["cluster"] for c in chains] == ["inbound|443||"] * 2
    assert SECRET not in generated(proxy=CLIENT)  # sidecars get no SDS from the gateways' config
