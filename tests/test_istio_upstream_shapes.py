"""The validator against Istio's own definitions (issue #7, points 7-13).

Each case was checked against the CRD schemas Istio ships
(``manifests/charts/base/files/crd-all.gen.yaml``; ``.../base/crds/`` before 1.24) and the
webhook rules in ``pkg/config/validation/validation.go`` at the release tags 1.22.0 ...
1.28.0. Messages follow the cluster's wording where there is one.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bookinfo_labs.istio import FieldError
from bookinfo_labs.manifests import MANIFESTS_ROOT, ManifestError, load_file, parse_text
from bookinfo_labs.versions import VERSIONS, get_version

from test_istio_models import error, parse


# --------------------------------------------------------------------------- 7. DR workloadSelector

# istio.io, "Egress Gateways with TLS Origination" > "Configure mutual TLS origination for
# egress traffic at sidecar": the DestinationRule originate-mtls-for-nginx
ORIGINATE_MTLS_FOR_NGINX = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: originate-mtls-for-nginx
spec:
  workloadSelector:
    matchLabels:
      app: sleep
  host: my-nginx.mesh-external.svc.cluster.local
  trafficPolicy:
    loadBalancer:
      simple: ROUND_ROBIN
    portLevelSettings:
    - port:
        number: 443
      tls:
        mode: MUTUAL
        credentialName: client-credential
        sni: my-nginx.mesh-external.svc.cluster.local
"""


def test_destination_rule_workload_selector_is_match_labels():
    """DestinationRule.workloadSelector is istio.type.v1beta1.WorkloadSelector (matchLabels),
    unlike the networking WorkloadSelector (labels) of ServiceEntry, Sidecar, EnvoyFilter."""
    dr = parse(ORIGINATE_MTLS_FOR_NGINX)
    assert dr.spec.workload_selector.match_labels == {"app": "sleep"}


def test_destination_rule_workload_selector_labels_points_to_match_labels():
    err = error(ORIGINATE_MTLS_FOR_NGINX.replace("matchLabels:", "labels:"))
    assert err.path == "spec.workloadSelector"
    assert "unknown field 'labels'" in err.message and "'matchLabels'" in err.message


@pytest.mark.parametrize("doc", [
    """
    apiVersion: networking.istio.io/v1
    kind: ServiceEntry
    metadata: {name: vms}
    spec:
      hosts: [vm.example.com]
      ports: [{number: 80, name: http, protocol: HTTP}]
      resolution: STATIC
      workloadSelector: {labels: {app: vm}}
    """,
    """
    apiVersion: networking.istio.io/v1
    kind: Sidecar
    metadata: {name: ratings}
    spec:
      workloadSelector: {labels: {app: ratings}}
      egress: [{hosts: ["./*"]}]
    """,
], ids=["ServiceEntry", "Sidecar"])
def test_networking_workload_selector_stays_labels(doc):
    """The other networking kinds keep ``labels`` (EnvoyFilter is covered by the lab sample)."""
    assert parse(doc).spec.workload_selector.labels


# --------------------------------------------------------------------------- 8. retryBudget

RETRY_BUDGET = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy:
    retryBudget:
      percent: 20
      minRetryConcurrency: 3
"""


def test_retry_budget_percent_is_a_plain_number():
    """TrafficPolicy.RetryBudget (CRD 1.27+): percent is a double 0..100, minRetryConcurrency
    a uint32."""
    budget = parse(RETRY_BUDGET).spec.traffic_policy.retry_budget
    assert budget.percent == 20.0 and budget.min_retry_concurrency == 3


@pytest.mark.parametrize("old, new, path, message", [
    ("percent: 20", "percent: {value: 20}", "spec.trafficPolicy.retryBudget.percent",
     "expected a number, got a mapping"),
    ("percent: 20", "percent: 150", "spec.trafficPolicy.retryBudget.percent", "between 0 and 100"),
    ("minRetryConcurrency: 3", "minRetryConcurrency: -1",
     "spec.trafficPolicy.retryBudget.minRetryConcurrency", "must not be negative"),
    ("minRetryConcurrency: 3", "budgetInterval: 10s", "spec.trafficPolicy.retryBudget",
     "unknown field 'budgetInterval'"),
], ids=["percent-wrapped", "percent-range", "min-negative", "no-budgetInterval"])
def test_retry_budget_rejects_other_shapes(old, new, path, message):
    err = error(RETRY_BUDGET.replace(old, new))
    assert err.path == path and message in err.message


# --------------------------------------------------------------------------- 9. ServiceEntry port protocol


def test_service_entry_port_protocol_is_optional():
    """ServicePort requires only number and name; an empty protocol means protocol sniffing
    (validation.go ValidateProtocol: "Empty string is used for protocol sniffing")."""
    se = parse("""
    apiVersion: networking.istio.io/v1
    kind: ServiceEntry
    metadata: {name: external}
    spec:
      hosts: [api.example.com]
      ports: [{number: 443, name: tls}]
      resolution: DNS
    """)
    assert se.spec.ports[0].protocol is None


def test_service_entry_port_protocol_still_checked_when_set():
    err = error("""
    apiVersion: networking.istio.io/v1
    kind: ServiceEntry
    metadata: {name: external}
    spec:
      hosts: [api.example.com]
      ports: [{number: 443, name: tls, protocol: TLSS}]
      resolution: DNS
    """)
    assert err.path == "spec.ports[0].protocol"


# --------------------------------------------------------------------------- 10. fields the CRDs have

DYNAMIC_DNS = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: wildcard}
spec:
  hosts: ["*.example.com"]
  ports: [{number: 80, name: http, protocol: HTTP}]
  location: MESH_EXTERNAL
  resolution: DYNAMIC_DNS
"""


def test_service_entry_resolution_dynamic_dns():
    """ServiceEntry.Resolution DYNAMIC_DNS (CRD enum from 1.28)."""
    assert parse(DYNAMIC_DNS).spec.resolution == "DYNAMIC_DNS"


@pytest.mark.parametrize("old, new, path, message", [
    ('hosts: ["*.example.com"]', "hosts: [api.example.com]", "spec.hosts[0]",
     "host must be wildcarded for resolution mode DYNAMIC_DNS"),
    ("location: MESH_EXTERNAL", "location: MESH_INTERNAL", "spec.location",
     "location must be MESH_EXTERNAL for resolution type DYNAMIC_DNS"),
    ("protocol: HTTP}", "protocol: TCP}", "spec.ports[0].protocol",
     "only HTTP protocol is supported for resolution type DYNAMIC_DNS"),
    ("location: MESH_EXTERNAL", "location: MESH_EXTERNAL\n  addresses: [10.0.0.1]",
     "spec.addresses", "addresses cannot be set for resolution type DYNAMIC_DNS"),
    ("location: MESH_EXTERNAL", "location: MESH_EXTERNAL\n  endpoints: [{address: 10.0.0.1}]",
     "spec.endpoints", "endpoints cannot be set for resolution type DYNAMIC_DNS"),
], ids=["wildcard-host", "mesh-external", "http-only", "no-addresses", "no-endpoints"])
def test_service_entry_dynamic_dns_rules(old, new, path, message):
    """validation.go (1.28.0) ValidateServiceEntry, case ServiceEntry_DYNAMIC_DNS."""
    err = error(DYNAMIC_DNS.replace(old, new))
    assert err.path == path and message in err.message


GATEWAY_TLS = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: bookinfo}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [bookinfo.example.com]
    tls:
      mode: MUTUAL
      credentialName: bookinfo-credential
"""

SIDECAR_TLS = """
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: ratings}
spec:
  workloadSelector: {labels: {app: ratings}}
  ingress:
  - port: {number: 9443, protocol: HTTPS, name: https}
    defaultEndpoint: 127.0.0.1:9080
    tls:
      mode: SIMPLE
      credentialName: ratings-credential
"""


@pytest.mark.parametrize("doc", [GATEWAY_TLS, SIDECAR_TLS], ids=["Gateway", "Sidecar"])
def test_tls_ca_cert_credential_name(doc):
    """ServerTLSSettings.caCertCredentialName (CRD 1.28, Gateway and Sidecar ingress)."""
    model = parse(doc.replace("credentialName:", "caCertCredentialName: ca-bundle\n      credentialName:"))
    tls = (model.spec.servers[0].tls if model.kind == "Gateway" else model.spec.ingress[0].tls)
    assert tls.ca_cert_credential_name == "ca-bundle"


REQUEST_AUTHENTICATION = """
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt-example, namespace: foo}
spec:
  selector: {matchLabels: {app: httpbin}}
  jwtRules:
  - issuer: testing@secure.istio.io
    jwksUri: https://raw.githubusercontent.com/istio/istio/release-1.26/security/tools/jwt/samples/jwks.json
"""


def test_jwt_rule_space_delimited_claims():
    """JWTRule.spaceDelimitedClaims (CRD 1.28)."""
    rule = parse(REQUEST_AUTHENTICATION + "    spaceDelimitedClaims: [scope, permissions]\n"
                 ).spec.jwt_rules[0]
    assert rule.space_delimited_claims == ["scope", "permissions"]


def test_telemetry_tracing_enable_istio_tags():
    """Tracing.enableIstioTags (CRD 1.25)."""
    telemetry = parse("""
    apiVersion: telemetry.istio.io/v1
    kind: Telemetry
    metadata: {name: mesh-default, namespace: istio-system}
    spec:
      tracing:
      - providers: [{name: zipkin}]
        enableIstioTags: false
    """)
    assert telemetry.spec.tracing[0].enable_istio_tags is False


def test_tcp_match_source_subnet():
    """L4MatchAttributes.sourceSubnet (a string in every CRD 1.22-1.28)."""
    vs = parse("""
    apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata: {name: mongo}
    spec:
      hosts: [mongo.prod.svc.cluster.local]
      tcp:
      - match:
        - port: 27017
          sourceSubnet: 10.1.0.0/16
        route:
        - destination: {host: mongo.backup.svc.cluster.local, port: {number: 5555}}
    """)
    assert vs.spec.tcp[0].match[0].source_subnet == "10.1.0.0/16"


MIRROR_LEGACY = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin}
spec:
  hosts: [httpbin]
  http:
  - route:
    - destination: {host: httpbin, subset: v1}
    mirror: {host: httpbin, subset: v2}
    mirror_percent: 30
"""


def test_legacy_mirror_percent_key():
    """The CRDs list the proto field name mirror_percent next to mirrorPercent."""
    route = parse(MIRROR_LEGACY).spec.http[0]
    assert route.mirror_percent == 30 and route.effective_mirror_percentage == 30.0


def test_legacy_and_current_spelling_together_are_rejected():
    err = error(MIRROR_LEGACY + "    mirrorPercent: 40\n")
    assert err.path == "spec.http[0]"
    assert err.message == "set only one of mirrorPercent or mirror_percent (the same field, spelt two ways)"


def test_legacy_jwks_uri_key():
    """The RequestAuthentication CRD lists jwks_uri next to jwksUri, with the same rules."""
    rule = parse(REQUEST_AUTHENTICATION.replace("jwksUri:", "jwks_uri:")).spec.jwt_rules[0]
    assert rule.jwks_uri.startswith("https://")
    err = error(REQUEST_AUTHENTICATION.replace("jwksUri:", "jwks_uri:")
                .replace("https://raw", "ftp://raw"))
    assert err.path == "spec.jwtRules[0].jwksUri"


def test_jwks_and_jwks_uri_together_are_rejected():
    """CRD (1.23+) jwtRules[]: "only one of jwks or jwksUri can be set"."""
    err = error(REQUEST_AUTHENTICATION + "    jwks: '{\"keys\": []}'\n")
    assert err.path == "spec.jwtRules[0]"
    assert err.message == "only one of jwks or jwksUri can be set"


WORKLOAD_ENTRY = """
apiVersion: networking.istio.io/{version}
kind: WorkloadEntry
metadata: {{name: details-vm, namespace: bookinfo}}
spec:
  address: 10.128.0.12
  labels: {{app: details, version: v1}}
  serviceAccount: bookinfo-details
  ports: {{http: 9080}}
"""


@pytest.mark.parametrize("version", ["v1", "v1beta1", "v1alpha3"])
def test_workload_entry_kind(version):
    """WorkloadEntry is served as networking.istio.io v1, v1beta1 and v1alpha3."""
    we = parse(WORKLOAD_ENTRY.format(version=version))
    assert we.kind == "WorkloadEntry" and we.spec.address == "10.128.0.12"
    assert we.spec.ports == {"http": 9080} and we.spec.service_account == "bookinfo-details"


@pytest.mark.parametrize("old, new, path, message", [
    ("  address: 10.128.0.12\n", "", "spec", "address is required"),
    ("address: 10.128.0.12", "address: unix://var/run/app.sock", "spec.address",
     "UDS must be an absolute path or abstract socket"),
    ("address: 10.128.0.12", "address: unix:///var/run/app.sock", "spec", "UDS may not include ports"),
    ("http: 9080", "http: 0", "spec.ports.http", "between 1 and 65535"),
], ids=["address-required", "uds-absolute", "uds-no-ports", "port-range"])
def test_workload_entry_rules(old, new, path, message):
    """CRD x-kubernetes-validations of WorkloadEntry (and of ServiceEntry endpoints)."""
    err = error(WORKLOAD_ENTRY.format(version="v1").replace(old, new))
    assert err.path == path and message in err.message


# --------------------------------------------------------------------------- 11. rules a cluster enforces


@pytest.mark.parametrize("doc, path", [
    (GATEWAY_TLS, "spec.servers[0].tls"), (SIDECAR_TLS, "spec.ingress[0].tls"),
], ids=["Gateway", "Sidecar"])
def test_tls_credential_name_and_credential_names_conflict(doc, path):
    """CRD 1.26+ servers[].tls: "only one of credentialName or credentialNames can be set"."""
    err = error(doc.replace("credentialName:", "credentialNames: [a, b]\n      credentialName:"))
    assert err.path == path
    assert err.message == "only one of credentialName or credentialNames can be set"


def test_tls_credential_names_and_tls_certificates_conflict():
    err = error(GATEWAY_TLS.replace(
        "credentialName: bookinfo-credential",
        "credentialNames: [a]\n      caCertificates: /etc/ca.pem\n      tlsCertificates:\n"
        "      - {serverCertificate: /etc/cert.pem, privateKey: /etc/key.pem}"))
    assert err.path == "spec.servers[0].tls"
    assert err.message == "only one of credentialNames or tlsCertificates can be set"


def test_envoy_filter_workload_selector_and_target_refs_conflict():
    """CRD 1.24+ EnvoyFilter spec: "only one of targetRefs or workloadSelector can be set"."""
    err = error("""
    apiVersion: networking.istio.io/v1alpha3
    kind: EnvoyFilter
    metadata: {name: lua}
    spec:
      workloadSelector: {labels: {app: productpage}}
      targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]
      configPatches:
      - applyTo: HTTP_FILTER
        patch: {operation: ADD, value: {name: envoy.lua}}
    """)
    assert err.path == "spec"
    assert err.message == "only one of targetRefs or workloadSelector can be set"


DNS_ROUND_ROBIN = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: external}
spec:
  hosts: [api.example.com]
  ports: [{number: 443, name: https, protocol: HTTPS}]
  resolution: DNS_ROUND_ROBIN
  endpoints:
  - address: a.example.com
"""


def test_dns_round_robin_allows_at_most_one_endpoint():
    """CRD 1.24+ ServiceEntry spec: "DNS_ROUND_ROBIN mode cannot have multiple endpoints"
    (validation.go: "there must only be 0 or 1 endpoint for resolution mode DNS_ROUND_ROBIN")."""
    assert parse(DNS_ROUND_ROBIN)
    err = error(DNS_ROUND_ROBIN + "  - address: b.example.com\n")
    assert err.path == "spec.endpoints"
    assert err.message.startswith("DNS_ROUND_ROBIN mode cannot have multiple endpoints")


CONNECTION_POOL = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy:
    connectionPool:
      tcp:
        maxConnectionDuration: 1h
        tcpKeepalive: {time: 7200s, interval: 75s}
    loadBalancer:
      simple: LEAST_REQUEST
      warmupDurationSecs: 60s
"""

TELEMETRY_METRICS = """
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh-default, namespace: istio-system}
spec:
  metrics:
  - providers: [{name: prometheus}]
    reportingInterval: 15s
"""


@pytest.mark.parametrize("doc, old, path, message", [
    (CONNECTION_POOL, "time: 7200s", "spec.trafficPolicy.connectionPool.tcp.tcpKeepalive.time",
     "duration must be greater than 1ms"),
    (CONNECTION_POOL, "interval: 75s", "spec.trafficPolicy.connectionPool.tcp.tcpKeepalive.interval",
     "duration must be greater than 1ms"),
    (CONNECTION_POOL, "maxConnectionDuration: 1h",
     "spec.trafficPolicy.connectionPool.tcp.maxConnectionDuration", "duration must be greater than 1ms"),
    (CONNECTION_POOL, "warmupDurationSecs: 60s", "spec.trafficPolicy.loadBalancer.warmupDurationSecs",
     "must be a valid duration greater than 1ms"),
    (TELEMETRY_METRICS, "reportingInterval: 15s", "spec.metrics[0].reportingInterval",
     "must be a valid duration greater than 1ms"),
], ids=["tcpKeepalive.time", "tcpKeepalive.interval", "maxConnectionDuration",
        "warmupDurationSecs", "reportingInterval"])
def test_durations_must_be_at_least_1ms(doc, old, path, message):
    """CRD rule duration(self) >= duration('1ms') (1.23+); the webhook's ValidateDuration also
    checks tcpKeepalive and maxConnectionDuration (validation.go validateConnectionPool)."""
    assert parse(doc)
    key = old.split(":")[0]
    err = error(doc.replace(old, f"{key}: 500us"))
    assert err.path == path and err.message.startswith(message)


@pytest.mark.parametrize("protocol, ok", [
    ("CONNECT", True), ("POST", True), ("connect", False), ("PUT", False),
])
def test_tunnel_protocol_is_exactly_connect_or_post(protocol, ok):
    """validation.go validateTunnelSettings: protocol "" (default), "CONNECT" or "POST"."""
    text = f"""
    apiVersion: networking.istio.io/v1
    kind: DestinationRule
    metadata: {{name: tunnel}}
    spec:
      host: external.example.com
      trafficPolicy:
        tunnel: {{protocol: {protocol}, targetHost: 192.168.1.2, targetPort: 80}}
    """
    if ok:
        assert parse(text).spec.traffic_policy.tunnel.protocol == protocol
    else:
        err = error(text)
        assert err.path == "spec.trafficPolicy.tunnel.protocol"
        assert err.message.startswith('tunnel protocol must be "CONNECT" or "POST"')


UDS_SIDECAR = """
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: uds}
spec:
  egress:
  - port: {number: 0, protocol: HTTP, name: uds}
    bind: unix:///var/run/app.sock
    hosts: ["istio-system/*"]
"""


def test_sidecar_egress_port_zero_with_unix_bind():
    """validation.go validateSidecarEgressPortBindAndCaptureMode: port 0 is a unix domain
    socket listener."""
    assert parse(UDS_SIDECAR).spec.egress[0].port.number == 0


@pytest.mark.parametrize("old, new, path, message", [
    ("bind: unix:///var/run/app.sock", "bind: 127.0.0.1", "spec.egress[0].port.number",
     "sidecar: ports with 0 value must have a unix domain socket bind address"),
    ("    bind: unix:///var/run/app.sock\n", "", "spec.egress[0].port.number",
     "sidecar: ports with 0 value must have a unix domain socket bind address"),
    ("unix:///var/run/app.sock", "unix://var/run/app.sock", "spec.egress[0].bind",
     "is not an absolute path to a file"),
    ("bind: unix:///var/run/app.sock", "bind: unix:///var/run/app.sock\n    captureMode: IPTABLES",
     "spec.egress[0].captureMode",
     "sidecar: captureMode must be DEFAULT/NONE for unix domain socket listeners"),
    ("egress:\n  - port: {number: 0, protocol: HTTP, name: uds}\n"
     "    bind: unix:///var/run/app.sock\n    hosts: [\"istio-system/*\"]",
     "ingress:\n  - port: {number: 0, protocol: HTTP, name: http}\n"
     "    defaultEndpoint: 127.0.0.1:9080",
     "spec.ingress[0].port.number", "between 1 and 65535"),
], ids=["ip-bind", "no-bind", "relative-path", "capture-mode", "ingress"])
def test_sidecar_port_zero_rules(old, new, path, message):
    err = error(UDS_SIDECAR.replace(old, new))
    assert err.path == path and message in err.message


# --------------------------------------------------------------------------- 12. validation by release

#: (id, kind, document, path the release check names, first release with the field)
RELEASE_CASES = [
    ("corsPolicy.unmatchedPreflights", """
    apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata: {name: reviews}
    spec:
      hosts: [reviews]
      http:
      - route: [{destination: {host: reviews}}]
        corsPolicy:
          allowOrigins: [{exact: "https://example.com"}]
          unmatchedPreflights: IGNORE
    """, "spec.http[0].corsPolicy.unmatchedPreflights", "1.23"),
    ("loadBalancer.warmup", """
    apiVersion: networking.istio.io/v1
    kind: DestinationRule
    metadata: {name: reviews}
    spec:
      host: reviews
      trafficPolicy:
        loadBalancer: {simple: ROUND_ROBIN, warmup: {duration: 60s}}
    """, "spec.trafficPolicy.loadBalancer.warmup", "1.24"),
    ("subset.portLevelSettings.warmup", """
    apiVersion: networking.istio.io/v1
    kind: DestinationRule
    metadata: {name: reviews}
    spec:
      host: reviews
      subsets:
      - name: v1
        labels: {version: v1}
        trafficPolicy:
          portLevelSettings:
          - port: {number: 9080}
            loadBalancer: {simple: LEAST_REQUEST, warmup: {duration: 30s, aggression: 2}}
    """, "spec.subsets[0].trafficPolicy.portLevelSettings[0].loadBalancer.warmup", "1.24"),
    ("source.serviceAccounts", """
    apiVersion: security.istio.io/v1
    kind: AuthorizationPolicy
    metadata: {name: ratings}
    spec:
      rules:
      - from: [{source: {serviceAccounts: [bookinfo/bookinfo-reviews]}}]
    """, "spec.rules[0].from[0].source.serviceAccounts", "1.25"),
    ("source.notServiceAccounts", """
    apiVersion: security.istio.io/v1
    kind: AuthorizationPolicy
    metadata: {name: ratings}
    spec:
      action: DENY
      rules:
      - from: [{source: {notServiceAccounts: [bookinfo/bookinfo-reviews]}}]
    """, "spec.rules[0].from[0].source.notServiceAccounts", "1.25"),
    ("vhost.domainName", """
    apiVersion: networking.istio.io/v1alpha3
    kind: EnvoyFilter
    metadata: {name: vhost}
    spec:
      configPatches:
      - applyTo: VIRTUAL_HOST
        match:
          context: SIDECAR_OUTBOUND
          routeConfiguration: {vhost: {domainName: reviews.bookinfo.svc.cluster.local}}
        patch: {operation: MERGE, value: {include_request_attempt_count: true}}
    """, "spec.configPatches[0].match.routeConfiguration.vhost.domainName", "1.25"),
    ("tracing.enableIstioTags", """
    apiVersion: telemetry.istio.io/v1
    kind: Telemetry
    metadata: {name: mesh-default, namespace: istio-system}
    spec:
      tracing: [{providers: [{name: zipkin}], enableIstioTags: false}]
    """, "spec.tracing[0].enableIstioTags", "1.25"),
    ("Gateway tls.credentialNames", GATEWAY_TLS.replace(
        "credentialName: bookinfo-credential", "credentialNames: [rsa-cred, ecdsa-cred]"),
     "spec.servers[0].tls.credentialNames", "1.26"),
    ("Gateway tls.tlsCertificates", GATEWAY_TLS.replace(
        "credentialName: bookinfo-credential",
        "caCertificates: /etc/ca.pem\n      tlsCertificates:\n"
        "      - {serverCertificate: /etc/cert.pem, privateKey: /etc/key.pem}"),
     "spec.servers[0].tls.tlsCertificates", "1.26"),
    ("Sidecar tls.credentialNames", SIDECAR_TLS.replace(
        "credentialName: ratings-credential", "credentialNames: [rsa-cred, ecdsa-cred]"),
     "spec.ingress[0].tls.credentialNames", "1.26"),
    ("Sidecar tls.tlsCertificates", SIDECAR_TLS.replace(
        "credentialName: ratings-credential",
        "tlsCertificates:\n      - {serverCertificate: /etc/cert.pem, privateKey: /etc/key.pem}"),
     "spec.ingress[0].tls.tlsCertificates", "1.26"),
    ("retries.backoff", """
    apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata: {name: reviews}
    spec:
      hosts: [reviews]
      http:
      - route: [{destination: {host: reviews}}]
        retries: {attempts: 3, backoff: 50ms}
    """, "spec.http[0].retries.backoff", "1.26"),
    ("retries.retryIgnorePreviousHosts", """
    apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata: {name: reviews}
    spec:
      hosts: [reviews]
      http:
      - route: [{destination: {host: reviews}}]
        retries: {attempts: 3, retryIgnorePreviousHosts: true}
    """, "spec.http[0].retries.retryIgnorePreviousHosts", "1.26"),
    ("trafficPolicy.retryBudget", RETRY_BUDGET, "spec.trafficPolicy.retryBudget", "1.27"),
    ("subset.retryBudget", """
    apiVersion: networking.istio.io/v1
    kind: DestinationRule
    metadata: {name: reviews}
    spec:
      host: reviews
      subsets:
      - name: v1
        labels: {version: v1}
        trafficPolicy: {retryBudget: {percent: 25}}
    """, "spec.subsets[0].trafficPolicy.retryBudget", "1.27"),
    ("httpCookie.attributes", """
    apiVersion: networking.istio.io/v1
    kind: DestinationRule
    metadata: {name: productpage}
    spec:
      host: productpage
      trafficPolicy:
        loadBalancer:
          consistentHash:
            httpCookie:
              name: session
              ttl: 0s
              attributes: [{name: SameSite, value: Strict}]
    """, "spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.attributes", "1.28"),
    ("Gateway tls.caCertCredentialName", GATEWAY_TLS.replace(
        "credentialName:", "caCertCredentialName: ca-bundle\n      credentialName:"),
     "spec.servers[0].tls.caCertCredentialName", "1.28"),
    ("Sidecar tls.caCertCredentialName", SIDECAR_TLS.replace(
        "credentialName:", "caCertCredentialName: ca-bundle\n      credentialName:"),
     "spec.ingress[0].tls.caCertCredentialName", "1.28"),
    ("jwtRules.spaceDelimitedClaims",
     REQUEST_AUTHENTICATION + "    spaceDelimitedClaims: [scope]\n",
     "spec.jwtRules[0].spaceDelimitedClaims", "1.28"),
    ("resolution DYNAMIC_DNS", DYNAMIC_DNS, "spec.resolution", "1.28"),
]


@pytest.mark.parametrize("doc, path, added", [c[1:] for c in RELEASE_CASES],
                         ids=[c[0] for c in RELEASE_CASES])
def test_field_is_rejected_by_releases_before_it_was_added(doc, path, added):
    from bookinfo_labs.istio.releases import check_release

    model = parse(doc)
    minor = int(added.split(".")[1])
    check_release(model.kind, model, minor)  # the release that added it, and later ones
    check_release(model.kind, model, 28)
    for older in (22, minor - 1):
        with pytest.raises(FieldError) as info:
            check_release(model.kind, model, older)
        assert info.value.path == path
        assert f"was added in Istio {added}; the selected release 1.{older} does not have it" \
            in info.value.message
        assert f"--istio-version {added} or newer" in info.value.message


def test_release_table_is_the_crd_diff():
    """The table derived by diffing crd-all.gen.yaml of 1.22.0 ... 1.28.0 (only the fields
    the models have; a field's sub-fields arrive with it and are not listed)."""
    from bookinfo_labs.istio.releases import FIELDS_ADDED, VALUES_ADDED

    assert FIELDS_ADDED == {
        ("VirtualService", "spec.http[].corsPolicy.unmatchedPreflights"): "1.23",
        ("DestinationRule", "spec.trafficPolicy.loadBalancer.warmup"): "1.24",
        ("DestinationRule", "spec.trafficPolicy.portLevelSettings[].loadBalancer.warmup"): "1.24",
        ("DestinationRule", "spec.subsets[].trafficPolicy.loadBalancer.warmup"): "1.24",
        ("DestinationRule",
         "spec.subsets[].trafficPolicy.portLevelSettings[].loadBalancer.warmup"): "1.24",
        ("AuthorizationPolicy", "spec.rules[].from[].source.serviceAccounts"): "1.25",
        ("AuthorizationPolicy", "spec.rules[].from[].source.notServiceAccounts"): "1.25",
        ("EnvoyFilter", "spec.configPatches[].match.routeConfiguration.vhost.domainName"): "1.25",
        ("Telemetry", "spec.tracing[].enableIstioTags"): "1.25",
        ("Gateway", "spec.servers[].tls.credentialNames"): "1.26",
        ("Gateway", "spec.servers[].tls.tlsCertificates"): "1.26",
        ("Sidecar", "spec.ingress[].tls.credentialNames"): "1.26",
        ("Sidecar", "spec.ingress[].tls.tlsCertificates"): "1.26",
        ("VirtualService", "spec.http[].retries.backoff"): "1.26",
        ("VirtualService", "spec.http[].retries.retryIgnorePreviousHosts"): "1.26",
        ("DestinationRule", "spec.trafficPolicy.retryBudget"): "1.27",
        ("DestinationRule", "spec.subsets[].trafficPolicy.retryBudget"): "1.27",
        ("DestinationRule",
         "spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.attributes"): "1.28",
        ("DestinationRule", "spec.trafficPolicy.portLevelSettings[].loadBalancer.consistentHash"
                            ".httpCookie.attributes"): "1.28",
        ("DestinationRule",
         "spec.subsets[].trafficPolicy.loadBalancer.consistentHash.httpCookie.attributes"): "1.28",
        ("DestinationRule", "spec.subsets[].trafficPolicy.portLevelSettings[].loadBalancer"
                            ".consistentHash.httpCookie.attributes"): "1.28",
        ("Gateway", "spec.servers[].tls.caCertCredentialName"): "1.28",
        ("Sidecar", "spec.ingress[].tls.caCertCredentialName"): "1.28",
        ("RequestAuthentication", "spec.jwtRules[].spaceDelimitedClaims"): "1.28",
    }
    assert VALUES_ADDED == {("ServiceEntry", "spec.resolution", "DYNAMIC_DNS"): "1.28"}


def test_release_check_leaves_older_fields_alone():
    """Fields every supported release has pass at 1.22."""
    from bookinfo_labs.istio.releases import check_release

    model = parse(ORIGINATE_MTLS_FOR_NGINX)
    check_release(model.kind, model, 22)


def test_manifest_release_check_names_file_resource_field_and_line():
    from bookinfo_labs.manifests import check_release as check_manifests_release

    text = "---\n" + textwrap.dedent(RELEASE_CASES[11][1]).lstrip()  # retries.backoff, 1.26
    manifests = parse_text(text, "labs/retries.yaml")
    check_manifests_release(manifests, get_version("1.26"))
    with pytest.raises(ManifestError) as info:
        check_manifests_release(manifests, get_version("1.24"))
    err = info.value
    assert (err.source, err.resource, err.path) == (
        "labs/retries.yaml", 'VirtualService "reviews"', "spec.http[0].retries.backoff")
    assert err.line == 2
    assert "added in Istio 1.26; the selected release 1.24 does not have it" in str(err)
    assert str(err).endswith("Nothing from labs/retries.yaml was applied.")


NOT_APPLIED = {"istio/istio-operator.yaml"}
FILES = sorted(str(p.relative_to(MANIFESTS_ROOT)) for p in MANIFESTS_ROOT.rglob("*.yaml"))


@pytest.mark.parametrize("name", [f for f in FILES if f not in NOT_APPLIED])
def test_lab_manifests_fit_every_supported_release(name):
    from bookinfo_labs.manifests import check_release as check_manifests_release

    manifests = load_file(Path(MANIFESTS_ROOT, name))
    for istio in VERSIONS.values():
        check_manifests_release(manifests, istio)


# --------------------------------------------------------------------------- 13. other API groups


def test_gateway_api_gateway_is_not_modelled():
    """A Gateway API Gateway is another kind than Istio's Gateway: say the group is not
    modelled instead of suggesting networking.istio.io/v1."""
    err = error("""
    apiVersion: gateway.networking.k8s.io/v1
    kind: Gateway
    metadata: {name: bookinfo-gateway}
    spec:
      gatewayClassName: istio
      listeners: [{name: http, port: 80, protocol: HTTP}]
    """)
    assert err.path == "apiVersion"
    assert "gateway.networking.k8s.io" in err.message and "not modelled" in err.message
    assert "networking.istio.io/v1" not in err.message and "use " not in err.message


def test_other_group_with_an_istio_kind_name_is_not_modelled():
    """Knative's serving.knative.dev Service shares its name with the core Service."""
    err = error("""
    apiVersion: serving.knative.dev/v1
    kind: Service
    metadata: {name: hello}
    """)
    assert err.path == "apiVersion"
    assert "serving.knative.dev" in err.message and "not modelled" in err.message
    assert "use v1" not in err.message


def test_misspelt_istio_group_still_gets_a_suggestion():
    err = error("""
    apiVersion: networking.istio.com/v1
    kind: VirtualService
    metadata: {name: reviews}
    """)
    assert err.path == "apiVersion" and "networking.istio.io/v1" in err.message
