"""Mutual TLS between sidecars: PeerAuthentication, auto mTLS, and the TLS contexts.

The server side: each inbound port's mode comes from the PeerAuthentications that apply
(mesh-wide in the root namespace, then the namespace's, then the workload's and its
``portLevelMtls``), and decides the inbound filter chains (TLS only, plain text only, or
both behind a TLS inspector). The client side: a cluster to a Service of the mesh carries
Istio's ISTIO_MUTUAL context in a ``tlsMode-istio`` transport socket match, and only the
endpoints that have a sidecar (and do not DISABLE mTLS) are labelled ``tlsMode: istio``,
so a workload without a sidecar gets plain text. The certificates themselves (``default``
and ``ROOTCA``) are the node agent's business, not istiod's: the local mesh's agent serves
them (local/identity.py). Sources: pilot/pkg/security/authn, pilot/pkg/networking/core/
cluster_tls.go and filterchain_options.go (docs/facts.md#mutual-tls).
"""

from __future__ import annotations

from typing import Any, Mapping

from .model import ConfigView, MeshView, ServiceView, WorkloadView
from .names import ROOT_NAMESPACE

#: Istio's root namespace: a PeerAuthentication there without a selector is mesh-wide
#: the SDS names of the workload's key pair and of the mesh's root certificate
CERT_SECRET = "default"
ROOT_SECRET = "ROOTCA"
#: what a client sidecar offers in ALPN without Istio's own istio.alpn filter
CLIENT_ALPN = ["istio-peer-exchange", "istio"]
#: the ALPN values a server's mTLS chain matches (filterchain_options.go)
MTLS_ALPN = ["istio-peer-exchange", "istio", "istio-http/1.0", "istio-http/1.1", "istio-h2"]
TLS_SOCKET = "envoy.transport_sockets.tls"
_TLS_TYPE = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3."
_TLS_PARAMS = {"tls_minimum_protocol_version": "TLSv1_2",
               "tls_maximum_protocol_version": "TLSv1_3"}
_CIPHERS = ["ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
            "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
            "AES256-GCM-SHA384", "AES128-GCM-SHA256"]
ADS = {"ads": {}, "initial_fetch_timeout": "0s", "resource_api_version": "V3"}
TRUST_DOMAIN = "cluster.local"


def spiffe_id(namespace: str, service_account: str) -> str:
    return f"spiffe://{TRUST_DOMAIN}/ns/{namespace}/sa/{service_account}"


def _mode(config: ConfigView | None) -> str | None:
    """A PeerAuthentication's own mode; None when it leaves it UNSET (inherit)."""
    if config is None or config.spec.mtls is None:
        return None
    return None if config.spec.mtls.mode in (None, "UNSET") else config.spec.mtls.mode


def _oldest(configs: list[ConfigView]) -> ConfigView | None:
    return configs[0] if configs else None  # of_kind sorts by creation: the oldest wins


def _selects(config: ConfigView, labels: Mapping[str, str]) -> bool:
    selector = config.spec.selector
    wanted = selector.match_labels if selector is not None else {}
    return bool(wanted) and all(labels.get(k) == v for k, v in wanted.items())


def peer_mode(mesh: MeshView, namespace: str, labels: Mapping[str, str],
              port: int | None = None) -> str:
    """STRICT, PERMISSIVE or DISABLE for a workload's ``port`` (its container port):
    PERMISSIVE, overridden by the mesh-wide, namespace and workload policies in turn where
    they set a mode, then by the workload policy's ``portLevelMtls`` (ComposePeerAuthentication)."""
    policies = mesh.of_kind("PeerAuthentication")
    unselected = [p for p in policies if p.spec.selector is None or not p.spec.selector.match_labels]
    mesh_wide = _oldest([p for p in unselected if p.namespace == ROOT_NAMESPACE])
    namespace_wide = _oldest([p for p in unselected if p.namespace == namespace])
    workload = _oldest([p for p in policies if p.namespace == namespace and _selects(p, labels)])
    mode = "PERMISSIVE"
    for config in (mesh_wide, namespace_wide, workload):
        mode = _mode(config) or mode
    if workload is not None and port in workload.spec.port_level_mtls:
        level = workload.spec.port_level_mtls[port].mode
        mode = level if level not in (None, "UNSET") else mode
    return mode


def service_mode(mesh: MeshView, service: ServiceView) -> str:
    """What auto mTLS infers for a whole Service: only mesh-wide and namespace policies
    count (BestEffortInferServiceMTLSMode); a workload-level DISABLE needs a
    DestinationRule with ``tls: DISABLE``."""
    return peer_mode(mesh, service.namespace, {})


def endpoint_mtls(mesh: MeshView, workload: WorkloadView, port: int) -> bool:
    """Whether a client sidecar should speak mTLS to this endpoint: it has a sidecar (the
    ``security.istio.io/tlsMode: istio`` label) and does not DISABLE mTLS on the port."""
    return workload.sidecar and peer_mode(mesh, workload.namespace, workload.labels,
                                          port) != "DISABLE"


def _sds(name: str) -> dict:
    return {"name": name, "sds_config": ADS}


def upstream_context(sni: str, subject_alt_names: list[str], h2: bool = False) -> dict:
    """ISTIO_MUTUAL: the workload's certificate, the mesh's root, the server's SPIFFE
    identities checked, Istio's SNI (buildIstioMutualTLS)."""
    validation: dict[str, Any] = {}
    if subject_alt_names:
        validation["match_subject_alt_names"] = [{"exact": s} for s in subject_alt_names]
    return {"name": TLS_SOCKET, "typed_config": {
        "@type": _TLS_TYPE + "UpstreamTlsContext",
        "common_tls_context": {
            "tls_params": _TLS_PARAMS,
            "alpn_protocols": CLIENT_ALPN + (["h2"] if h2 else []),
            "tls_certificate_sds_secret_configs": [_sds(CERT_SECRET)],
            "combined_validation_context": {
                "default_validation_context": validation,
                "validation_context_sds_secret_config": _sds(ROOT_SECRET)}},
        "sni": sni}}


def auto_mtls_matches(context: dict) -> list[dict]:
    """The two transport socket matches of an auto-mTLS cluster (cluster_builder.go)."""
    return [{"name": "tlsMode-istio", "match": {"tlsMode": "istio"},
             "transport_socket": context},
            {"name": "tlsMode-disabled", "match": {},
             "transport_socket": {"name": "envoy.transport_sockets.raw_buffer", "typed_config": {
                 "@type": "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer."
                          "v3.RawBuffer"}}}]


def downstream_context(tcp: bool = False) -> dict:
    """The server side of mTLS: any certificate that chains to the root is accepted (RBAC
    enforces identity), a client certificate required (BuildInboundTLS)."""
    return {"name": TLS_SOCKET, "typed_config": {
        "@type": _TLS_TYPE + "DownstreamTlsContext",
        "require_client_certificate": True,
        "common_tls_context": {
            "tls_params": {**_TLS_PARAMS, "cipher_suites": _CIPHERS},
            "alpn_protocols": (["istio-peer-exchange"] if tcp else []) + ["h2", "http/1.1"],
            "tls_certificate_sds_secret_configs": [_sds(CERT_SECRET)],
            "combined_validation_context": {
                "default_validation_context": {},
                "validation_context_sds_secret_config": _sds(ROOT_SECRET)}}}}


def inbound_chains(mode: str, chain: dict, tcp: bool = False) -> list[dict]:
    """A port's filter chains for its mode: mTLS (TLS with Istio's ALPN, or any TLS when
    STRICT) and plain text (raw_buffer), both with the filters of ``chain``, as
    getFilterChainMatchOptions pairs them. A plain-text client of a STRICT port matches no
    chain: Envoy closes the connection."""
    mtls = {**chain, "filter_chain_match": {"transport_protocol": "tls"},
            "transport_socket": downstream_context(tcp)}
    plain = {**chain, "filter_chain_match": {"transport_protocol": "raw_buffer"}}
    if mode == "STRICT":
        return [mtls]
    if mode == "DISABLE":
        return [plain]
    mtls["filter_chain_match"]["application_protocols"] = MTLS_ALPN
    return [mtls, plain]


#: a listener filter that tells TLS from plain text (populateListenerFilters)
TLS_INSPECTOR = {"name": "envoy.filters.listener.tls_inspector", "typed_config": {
    "@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector",
    "initial_read_buffer_size": 512}}
