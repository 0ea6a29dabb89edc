"""Mutual TLS in the control plane (docs/facts.md#mutual-tls): which mode a workload's port
has, the inbound chains it gets, the clusters' TLS and the endpoints' tlsMode label; and the
node agent's certificates. Pure: no Envoy runs here (the features run the handshakes)."""

from __future__ import annotations

import dataclasses

from cryptography import x509

from bookinfo_labs.certs import uri_sans
from bookinfo_labs.local.identity import NodeAgent
from bookinfo_labs.local.pilot import CLUSTER, ENDPOINT, LISTENER, WorkloadView, generate
from bookinfo_labs.local.pilot.mtls import peer_mode

from test_pilot import CLIENT, HTTPBIN, mesh_of

HTTPBIN_CLUSTER = "outbound|8000||httpbin.default.svc.cluster.local"


def policy(name: str, namespace: str, mode: str | None, selector: dict | None = None,
           ports: dict[int, str] | None = None) -> str:
    lines = ["apiVersion: security.istio.io/v1", "kind: PeerAuthentication",
             f"metadata: {{name: {name}, namespace: {namespace}}}", "spec:"]
    if selector:
        lines.append(f"  selector: {{matchLabels: {selector}}}")
    if mode:
        lines.append(f"  mtls: {{mode: {mode}}}")
    if ports:
        lines.append("  portLevelMtls:")
        lines += [f"    {port}: {{mode: {m}}}" for port, m in ports.items()]
    return "\n".join(lines) + "\n"


MESH_STRICT = policy("default", "istio-system", "STRICT")
LABELS = {"app": "httpbin"}


def test_no_policy_is_permissive():
    assert peer_mode(mesh_of(), "default", LABELS, 8080) == "PERMISSIVE"


def test_the_most_specific_policy_that_sets_a_mode_wins():
    namespace_permissive = policy("default", "default", "PERMISSIVE")
    workload_disable = policy("httpbin", "default", "DISABLE", {"app": "httpbin"})
    assert peer_mode(mesh_of(MESH_STRICT), "default", LABELS, 8080) == "STRICT"
    assert peer_mode(mesh_of(MESH_STRICT, namespace_permissive), "default", LABELS, 8080) == \
        "PERMISSIVE"
    assert peer_mode(mesh_of(MESH_STRICT, namespace_permissive, workload_disable), "default",
                     LABELS, 8080) == "DISABLE"
    # the workload policy selects by labels, in its own namespace only
    assert peer_mode(mesh_of(MESH_STRICT, workload_disable), "default", {"app": "curl"},
                     8080) == "STRICT"
    assert peer_mode(mesh_of(MESH_STRICT, workload_disable), "foo", LABELS, 8080) == "STRICT"


def test_unset_inherits_and_a_port_overrides_its_workload():
    unset = policy("httpbin", "default", "UNSET", {"app": "httpbin"}, {8080: "DISABLE"})
    mesh = mesh_of(MESH_STRICT, unset)
    assert peer_mode(mesh, "default", LABELS, 8080) == "DISABLE"
    assert peer_mode(mesh, "default", LABELS, 9090) == "STRICT"


def test_a_namespace_policy_outside_the_root_namespace_is_not_mesh_wide():
    assert peer_mode(mesh_of(policy("default", "foo", "STRICT")), "default", LABELS) == \
        "PERMISSIVE"


def _inbound_chains(*config: str) -> list[dict]:
    listener = generate(mesh_of(*config), HTTPBIN)[LISTENER]["127.10.0.50_8080"]
    assert listener["listener_filters"][0]["name"] == "envoy.filters.listener.tls_inspector"
    return listener["filter_chains"]


def test_inbound_chains_follow_the_mode():
    permissive = _inbound_chains()
    assert [c["filter_chain_match"]["transport_protocol"] for c in permissive] == \
        ["tls", "raw_buffer"]
    assert "istio-peer-exchange" in permissive[0]["filter_chain_match"]["application_protocols"]
    tls = permissive[0]["transport_socket"]["typed_config"]
    assert tls["require_client_certificate"] is True
    assert [c["filter_chain_match"] for c in _inbound_chains(MESH_STRICT)] == \
        [{"transport_protocol": "tls"}]
    disable = policy("default", "istio-system", "DISABLE")
    assert [c["filter_chain_match"] for c in _inbound_chains(disable)] == \
        [{"transport_protocol": "raw_buffer"}]
    # both chains hand the app the peer's identity
    manager = permissive[1]["filters"][0]["typed_config"]
    assert manager["forward_client_cert_details"] == "APPEND_FORWARD"


def _cluster(*config: str) -> dict:
    return generate(mesh_of(*config), CLIENT)[CLUSTER][HTTPBIN_CLUSTER]


def test_auto_mtls_checks_the_servers_identity_and_falls_back_to_plain_text():
    cluster = _cluster()
    istio, plain = cluster["transport_socket_matches"]
    assert (istio["match"], plain["match"]) == ({"tlsMode": "istio"}, {})
    context = istio["transport_socket"]["typed_config"]
    assert context["sni"] == "outbound_.8000_._.httpbin.default.svc.cluster.local"
    validation = context["common_tls_context"]["combined_validation_context"]
    # the test mesh's pods run as the default service account
    assert validation["default_validation_context"]["match_subject_alt_names"] == [
        {"exact": "spiffe://cluster.local/ns/default/sa/default"}]


def test_a_destination_rule_tls_mode_wins_over_auto_mtls():
    def rule(mode: str) -> str:
        return ("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: "
                "{name: httpbin}\nspec:\n  host: httpbin\n  trafficPolicy:\n"
                f"    tls: {{mode: {mode}}}\n")
    disabled = _cluster(rule("DISABLE"))
    assert "transport_socket_matches" not in disabled and "transport_socket" not in disabled
    mutual = _cluster(rule("ISTIO_MUTUAL"))
    assert "transport_socket_matches" not in mutual
    assert mutual["transport_socket"]["name"] == "envoy.transport_sockets.tls"
    # a namespace that DISABLEs mTLS turns auto mTLS off for its Services
    assert "transport_socket_matches" not in _cluster(policy("default", "default", "DISABLE"))


def test_only_endpoints_with_a_sidecar_that_takes_mtls_are_labelled():
    mesh = mesh_of()
    bare = WorkloadView("httpbin-bare", "default", "127.10.0.99", {"app": "httpbin"},
                        sidecar=False)
    mesh = dataclasses.replace(mesh, workloads=mesh.workloads + (bare,))
    endpoints = generate(mesh, CLIENT)[ENDPOINT][HTTPBIN_CLUSTER]["endpoints"][0]["lb_endpoints"]
    labelled = {e["endpoint"]["address"]["socket_address"]["address"]:
                e.get("metadata", {}).get("filter_metadata", {})
                .get("envoy.transport_socket_match") for e in endpoints}
    assert labelled["127.10.0.99"] is None
    others = [v for k, v in labelled.items() if k != "127.10.0.99"]
    assert others and all(v == {"tlsMode": "istio"} for v in others)
    port_disabled = policy("httpbin", "default", "STRICT", {"app": "httpbin"}, {8080: "DISABLE"})
    endpoints = generate(mesh_of(port_disabled), CLIENT)[ENDPOINT][HTTPBIN_CLUSTER]
    assert all("metadata" not in e for e in endpoints["endpoints"][0]["lb_endpoints"])


def test_the_node_agent_signs_one_spiffe_certificate_per_service_account():
    agent = NodeAgent()
    secrets = agent.secrets("foo", "sleep")
    issued = agent.certificate("foo", "sleep")
    assert agent.certificate("foo", "sleep") is issued  # kept, not re-signed per push
    assert uri_sans(issued.cert_pem) == ["spiffe://cluster.local/ns/foo/sa/sleep"]
    cert = x509.load_pem_x509_certificate(issued.cert_pem)
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(agent.ca.cert_pem))
    assert cert.subject == x509.Name([])
    assert set(secrets) == {"default", "ROOTCA"}
    assert "trusted_ca" in secrets["ROOTCA"]["validation_context"]
