"""Unit tests of the typed Istio/Kubernetes resource models (bookinfo_labs.istio)."""

from __future__ import annotations

import textwrap

import pytest
import yaml

from bookinfo_labs.istio import (
    AuthorizationPolicy,
    ConfigMap,
    Deployment,
    DestinationRule,
    Duration,
    EnvoyFilter,
    FieldError,
    Gateway,
    HTTPRouteDestination,
    Namespace,
    PeerAuthentication,
    RequestAuthentication,
    Secret,
    Service,
    ServiceAccount,
    ServiceEntry,
    Sidecar,
    Telemetry,
    VirtualService,
    iter_set_fields,
    parse_resource,
)
from bookinfo_labs.istio import Destination as IstioDestination


def load(text: str) -> dict:
    return yaml.safe_load(textwrap.dedent(text))


def parse(text: str):
    return parse_resource(load(text))


def error(text: str) -> FieldError:
    with pytest.raises(FieldError) as info:
        parse(text)
    return info.value


# --------------------------------------------------------------------------- realistic manifests

REVIEWS_TEST_V2 = """
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
    - reviews
  http:
  - match:
    - headers:
        end-user:
          exact: jason
    route:
    - destination:
        host: reviews
        subset: v2
  - route:
    - destination:
        host: reviews
        subset: v1
"""

REVIEWS_50_V3 = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
    - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: v1
      weight: 50
    - destination:
        host: reviews
        subset: v3
      weight: 50
"""

RATINGS_FAULTS = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ratings
spec:
  hosts:
  - ratings
  http:
  - match:
    - headers:
        end-user:
          exact: jason
    fault:
      delay:
        percentage:
          value: 100.0
        fixedDelay: 7s
    route:
    - destination:
        host: ratings
        subset: v1
  - fault:
      delay:
        percent: 10
        fixedDelay: 0.5s
      abort:
        percentage:
          value: 50
        httpStatus: 500
    route:
    - destination:
        host: ratings
        subset: v1
"""

TIMEOUT_RETRIES = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
  - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: v2
    timeout: 0.5s
    retries:
      attempts: 3
      perTryTimeout: 2s
      retryOn: 5xx,connect-failure,refused-stream
"""

MIRROR = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: httpbin
spec:
  hosts:
    - httpbin
  http:
  - route:
    - destination:
        host: httpbin
        subset: v1
      weight: 100
    mirror:
      host: httpbin
      subset: v2
    mirrorPercent: 40
"""

CIRCUIT_BREAKER = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: httpbin
spec:
  host: httpbin
  trafficPolicy:
    connectionPool:
      tcp:
        maxConnections: 1
        connectTimeout: 30ms
      http:
        http1MaxPendingRequests: 1
        maxRequestsPerConnection: 1
    outlierDetection:
      consecutive5xxErrors: 1
      interval: 1s
      baseEjectionTime: 3m
      maxEjectionPercent: 100
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
    trafficPolicy:
      loadBalancer:
        simple: ROUND_ROBIN
"""

GATEWAY_MUTUAL = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: mygateway
spec:
  selector:
    istio: ingressgateway
  servers:
  - port:
      number: 443
      name: https
      protocol: HTTPS
    tls:
      mode: MUTUAL
      credentialName: httpbin-credential
    hosts:
    - httpbin.example.com
  - port:
      number: 80
      name: http
      protocol: HTTP
    hosts:
    - "*"
    tls:
      httpsRedirect: true
"""

SERVICE_ENTRY = """
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata:
  name: httpbin-ext
spec:
  hosts:
  - httpbin.org
  ports:
  - number: 80
    name: http
    protocol: HTTP
  resolution: DNS
  location: MESH_EXTERNAL
"""

SIDECAR = """
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: default
  namespace: istio-system
spec:
  egress:
  - hosts:
    - "./*"
    - "istio-system/*"
  outboundTrafficPolicy:
    mode: REGISTRY_ONLY
"""

PEER_AUTHENTICATION = """
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: istio-system
spec:
  mtls:
    mode: STRICT
"""

PEER_AUTHENTICATION_PORTS = """
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata:
  name: httpbin
  namespace: foo
spec:
  selector:
    matchLabels:
      app: httpbin
  mtls:
    mode: STRICT
  portLevelMtls:
    8080:
      mode: DISABLE
"""

DENY_ALL = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: deny-all
  namespace: istio-system
spec:
  action: DENY
  rules:
  - {}
"""

ALLOW_NOTHING = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: allow-nothing
  namespace: default
spec: {}
"""

REQUIRE_JWT = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: require-jwt
  namespace: foo
spec:
  selector:
    matchLabels:
      app: httpbin
  action: ALLOW
  rules:
  - from:
    - source:
        requestPrincipals: ["testing@secure.istio.io/testing@secure.istio.io"]
    to:
    - operation:
        methods: ["GET"]
        paths: ["/headers"]
        ports: ["8000"]
    when:
    - key: request.auth.claims[groups]
      values: ["group1"]
"""

REQUEST_AUTHENTICATION = """
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata:
  name: jwt-example
  namespace: foo
spec:
  selector:
    matchLabels:
      app: httpbin
  jwtRules:
  - issuer: "testing@secure.istio.io"
    jwksUri: "https://raw.githubusercontent.com/istio/istio/release-1.26/security/tools/jwt/samples/jwks.json"
    forwardOriginalToken: true
"""

TELEMETRY = """
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata:
  name: mesh-default
  namespace: istio-system
spec:
  tracing:
  - providers:
    - name: jaeger
    randomSamplingPercentage: 100.0
  accessLogging:
  - providers:
    - name: envoy
"""

LOCAL_RATE_LIMIT = """
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata:
  name: filter-local-ratelimit-svc
  namespace: istio-system
spec:
  workloadSelector:
    labels:
      app: productpage
  configPatches:
    - applyTo: HTTP_FILTER
      match:
        context: SIDECAR_INBOUND
        listener:
          filterChain:
            filter:
              name: "envoy.filters.network.http_connection_manager"
      patch:
        operation: INSERT_BEFORE
        value:
          name: envoy.filters.http.local_ratelimit
          typed_config:
            "@type": type.googleapis.com/udpa.type.v1.TypedStruct
            type_url: type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
            value:
              stat_prefix: http_local_rate_limiter
              token_bucket:
                max_tokens: 4
                tokens_per_fill: 4
                fill_interval: 60s
"""

BOOKINFO_REVIEWS = """
apiVersion: v1
kind: Service
metadata:
  name: reviews
  labels:
    app: reviews
    service: reviews
spec:
  ports:
  - port: 9080
    name: http
  selector:
    app: reviews
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: bookinfo-reviews
  labels:
    account: reviews
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: reviews-v2
  labels:
    app: reviews
    version: v2
spec:
  replicas: 1
  selector:
    matchLabels:
      app: reviews
      version: v2
  template:
    metadata:
      labels:
        app: reviews
        version: v2
    spec:
      serviceAccountName: bookinfo-reviews
      containers:
      - name: reviews
        image: docker.io/istio/examples-bookinfo-reviews-v2:1.20.3
        imagePullPolicy: IfNotPresent
        env:
        - name: LOG_DIR
          value: "/tmp/logs"
        ports:
        - containerPort: 9080
        volumeMounts:
        - name: tmp
          mountPath: /tmp
        securityContext:
          runAsUser: 1000
      volumes:
      - name: tmp
        emptyDir: {}
"""

OTHER_KUBE = """
apiVersion: v1
kind: Namespace
metadata:
  name: foo
  labels:
    istio-injection: enabled
---
apiVersion: v1
kind: Secret
metadata:
  name: httpbin-credential
  namespace: istio-system
type: kubernetes.io/tls
data:
  tls.crt: Y2VydA==
stringData:
  tls.key: key
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: ca
data:
  ca.crt: pem
"""


@pytest.mark.parametrize("text, model", [
    (REVIEWS_TEST_V2, VirtualService),
    (REVIEWS_50_V3, VirtualService),
    (RATINGS_FAULTS, VirtualService),
    (TIMEOUT_RETRIES, VirtualService),
    (MIRROR, VirtualService),
    (CIRCUIT_BREAKER, DestinationRule),
    (GATEWAY_MUTUAL, Gateway),
    (SERVICE_ENTRY, ServiceEntry),
    (SIDECAR, Sidecar),
    (PEER_AUTHENTICATION, PeerAuthentication),
    (PEER_AUTHENTICATION_PORTS, PeerAuthentication),
    (DENY_ALL, AuthorizationPolicy),
    (ALLOW_NOTHING, AuthorizationPolicy),
    (REQUIRE_JWT, AuthorizationPolicy),
    (REQUEST_AUTHENTICATION, RequestAuthentication),
    (TELEMETRY, Telemetry),
    (LOCAL_RATE_LIMIT, EnvoyFilter),
])
def test_lab_manifests_parse_into_their_model(text, model):
    assert isinstance(parse(text), model)


def test_header_routing_model():
    vs = parse(REVIEWS_TEST_V2)
    assert vs.name == "reviews" and vs.namespace is None
    assert vs.group == "networking.istio.io" and vs.version == "v1alpha3"
    assert vs.spec.hosts == ["reviews"]
    first, second = vs.spec.http
    header = first.match[0].headers["end-user"]
    assert header.exact == "jason" and header.match_type == "exact" and header.match_value == "jason"
    assert first.route[0].destination.host == "reviews"
    assert first.route[0].destination.subset == "v2"
    assert second.match == [] and second.route[0].destination.subset == "v1"
    assert first.route[0].weight is None


def test_weighted_routes():
    vs = parse(REVIEWS_50_V3)
    assert [(r.destination.subset, r.weight) for r in vs.spec.http[0].route] == [("v1", 50), ("v3", 50)]


def test_fault_percentages_new_and_deprecated():
    vs = parse(RATINGS_FAULTS)
    delay = vs.spec.http[0].fault.delay
    assert delay.fixed_delay.seconds == 7.0 and delay.fixed_delay.text == "7s"
    assert delay.percentage.value == 100.0 and delay.effective_percentage == 100.0
    second = vs.spec.http[1].fault
    assert second.delay.percentage is None and second.delay.percent == 10
    assert second.delay.effective_percentage == 10.0
    assert second.abort.http_status == 500
    assert second.abort.percentage.value == 50.0 and second.abort.percentage.fraction == 0.5
    assert isinstance(second.abort.percentage.value, float)
    # an absent percentage means no request is faulted
    bare = parse(RATINGS_FAULTS.replace("        percentage:\n          value: 100.0\n", ""))
    assert bare.spec.http[0].fault.delay.effective_percentage == 0.0


def test_timeout_and_retries():
    route = parse(TIMEOUT_RETRIES).spec.http[0]
    assert route.timeout.seconds == 0.5
    assert route.retries.attempts == 3
    assert route.retries.per_try_timeout.seconds == 2.0
    assert route.retries.retry_on == "5xx,connect-failure,refused-stream"


def test_mirror_with_deprecated_mirror_percent():
    route = parse(MIRROR).spec.http[0]
    assert route.mirror.host == "httpbin" and route.mirror.subset == "v2"
    assert route.mirror_percent == 40 and route.mirror_percentage is None
    assert route.effective_mirror_percentage == 40.0


def test_circuit_breaker_destination_rule():
    dr = parse(CIRCUIT_BREAKER)
    pool = dr.spec.traffic_policy.connection_pool
    assert pool.tcp.max_connections == 1 and pool.tcp.connect_timeout.seconds == pytest.approx(0.03)
    assert pool.http.http1_max_pending_requests == 1
    assert pool.http.max_requests_per_connection == 1
    outlier = dr.spec.traffic_policy.outlier_detection
    assert outlier.consecutive_5xx_errors == 1
    assert outlier.interval.seconds == 1.0 and outlier.base_ejection_time.seconds == 180.0
    assert outlier.max_ejection_percent == 100
    assert [s.name for s in dr.spec.subsets] == ["v1", "v2"]
    assert dr.spec.subset("v2").labels == {"version": "v2"}
    assert dr.spec.subset("v2").traffic_policy.load_balancer.simple == "ROUND_ROBIN"
    assert dr.spec.subset("v3") is None


def test_gateway_tls():
    gw = parse(GATEWAY_MUTUAL)
    https, http = gw.spec.servers
    assert gw.spec.selector == {"istio": "ingressgateway"}
    assert https.port.number == 443 and https.port.protocol == "HTTPS"
    assert https.tls.mode == "MUTUAL" and https.tls.credential_name == "httpbin-credential"
    assert http.tls.https_redirect is True and http.hosts == ["*"]


def test_security_models():
    deny = parse(DENY_ALL)
    assert deny.spec.action == "DENY" and len(deny.spec.rules) == 1
    assert deny.spec.rules[0].from_ == [] and deny.spec.rules[0].when == []
    nothing = parse(ALLOW_NOTHING)
    assert nothing.spec.rules == [] and nothing.spec.effective_action == "ALLOW"
    jwt = parse(REQUIRE_JWT).spec.rules[0]
    assert jwt.from_[0].source.request_principals == ["testing@secure.istio.io/testing@secure.istio.io"]
    assert jwt.to[0].operation.ports == ["8000"]
    assert jwt.when[0].key == "request.auth.claims[groups]"
    ports = parse(PEER_AUTHENTICATION_PORTS).spec
    assert ports.mtls.mode == "STRICT" and ports.port_level_mtls[8080].mode == "DISABLE"
    ra = parse(REQUEST_AUTHENTICATION).spec.jwt_rules[0]
    assert ra.issuer == "testing@secure.istio.io" and ra.forward_original_token is True


def test_telemetry_and_envoy_filter():
    telemetry = parse(TELEMETRY).spec
    assert telemetry.tracing[0].providers[0].name == "jaeger"
    assert telemetry.tracing[0].random_sampling_percentage == 100.0
    assert telemetry.access_logging[0].providers[0].name == "envoy"
    patch = parse(LOCAL_RATE_LIMIT).spec.config_patches[0]
    assert patch.apply_to == "HTTP_FILTER" and patch.match.context == "SIDECAR_INBOUND"
    assert patch.match.listener.filter_chain.filter.name == "envoy.filters.network.http_connection_manager"
    assert patch.patch.operation == "INSERT_BEFORE"
    assert patch.patch.value["typed_config"]["value"]["token_bucket"]["max_tokens"] == 4


def test_kubernetes_kinds_read_what_the_emulator_needs_and_ignore_the_rest():
    service, account, deployment = (parse_resource(d) for d in yaml.safe_load_all(BOOKINFO_REVIEWS))
    assert isinstance(service, Service) and isinstance(account, ServiceAccount)
    assert isinstance(deployment, Deployment)
    assert service.spec.ports[0].port == 9080 and service.spec.ports[0].name == "http"
    assert service.spec.selector == {"app": "reviews"}
    assert deployment.spec.replicas == 1
    assert deployment.spec.template.metadata.labels == {"app": "reviews", "version": "v2"}
    assert deployment.spec.template.spec.service_account_name == "bookinfo-reviews"
    container = deployment.spec.template.spec.containers[0]
    assert container.ports[0].container_port == 9080
    assert container.env[0].name == "LOG_DIR" and container.env[0].value == "/tmp/logs"
    namespace, secret, config = (parse_resource(d) for d in yaml.safe_load_all(OTHER_KUBE))
    assert isinstance(namespace, Namespace) and namespace.metadata.labels["istio-injection"] == "enabled"
    assert isinstance(secret, Secret) and secret.decoded() == {"tls.crt": b"cert", "tls.key": b"key"}
    assert isinstance(config, ConfigMap) and config.data == {"ca.crt": "pem"}


def test_kubernetes_kinds_still_type_check_modelled_fields():
    doc = next(yaml.safe_load_all(BOOKINFO_REVIEWS))
    doc["spec"]["ports"][0]["port"] = "http"
    with pytest.raises(FieldError) as info:
        parse_resource(doc)
    assert info.value.path == "spec.ports[0].port"
    assert "expected an integer" in info.value.message


def test_kubectl_get_output_parses():
    vs = parse("""
    apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata:
      annotations:
        kubectl.kubernetes.io/last-applied-configuration: |
          {"apiVersion":"networking.istio.io/v1","kind":"VirtualService"}
      creationTimestamp: "2025-05-09T10:00:00Z"
      generation: 1
      name: reviews
      namespace: default
      resourceVersion: "12345"
      uid: 3c9d7f5e-1111-2222-3333-444455556666
      managedFields:
      - apiVersion: networking.istio.io/v1
        fieldsType: FieldsV1
        manager: kubectl-client-side-apply
        operation: Update
    spec:
      hosts: [reviews]
      http:
      - route:
        - destination: {host: reviews, subset: v1}
    status: {}
    """)
    assert vs.metadata.namespace == "default" and vs.spec.http[0].route[0].destination.subset == "v1"


# --------------------------------------------------------------------------- errors


def test_acceptance_misspelt_weight_names_the_route_and_the_field():
    err = error("""
    apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata: {name: reviews}
    spec:
      hosts: [reviews]
      http:
      - route:
        - destination: {host: reviews, subset: v1}
          wieght: 50
    """)
    assert err.path == "spec.http[0].route[0]"
    assert "wieght" in err.message
    assert err.message == "unknown field 'wieght' (did you mean 'weight'?)"


def test_wrong_type_points_at_the_field():
    err = error("""
    apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata: {name: reviews}
    spec:
      hosts: [reviews]
      http:
      - route:
        - destination: {host: reviews, subset: v1}
          weight: 50
        - destination: {host: reviews, subset: v3}
          weight: fifty
    """)
    assert err.path == "spec.http[0].route[1].weight"
    assert err.message == "expected an integer, got 'fifty'"


def test_string_field_given_a_number_suggests_quotes():
    err = error(REQUIRE_JWT.replace('ports: ["8000"]', "ports: [8000]"))
    assert err.path == "spec.rules[0].to[0].operation.ports[0]"
    assert err.message == 'expected a string, got 8000 (put it in quotes: "8000")'


def test_bad_duration():
    err = error(TIMEOUT_RETRIES.replace("timeout: 0.5s", "timeout: 7 seconds"))
    assert err.path == "spec.http[0].timeout"
    assert err.message == "invalid duration '7 seconds' (use e.g. 7s, 0.5s, 100ms)"
    err = error(TIMEOUT_RETRIES.replace("timeout: 0.5s", "timeout: 10"))
    assert err.path == "spec.http[0].timeout" and "needs a unit" in err.message


def test_bad_enum_lists_allowed_values():
    err = error(PEER_AUTHENTICATION.replace("mode: STRICT", "mode: STRIKT"))
    assert err.path == "spec.mtls.mode"
    assert "expected one of UNSET, DISABLE, PERMISSIVE, STRICT" in err.message
    assert "did you mean 'STRICT'?" in err.message
    err = error(CIRCUIT_BREAKER.replace("ROUND_ROBIN", "round_robin"))
    assert err.path == "spec.subsets[1].trafficPolicy.loadBalancer.simple"
    assert "case-sensitive" in err.message
    err = error(DENY_ALL.replace("action: DENY", "action: REJECT"))
    assert err.path == "spec.action" and "ALLOW, DENY, AUDIT, CUSTOM" in err.message


def test_string_match_takes_exactly_one_kind():
    err = error(REVIEWS_TEST_V2.replace("exact: jason", "exact: jason\n          prefix: ja"))
    assert err.path == "spec.http[0].match[0].headers.end-user"
    assert err.message == "set only one of exact, prefix or regex (found exact and prefix)"
    # an empty match in a header map means "present"; for uri it is an error
    vs = parse(REVIEWS_TEST_V2.replace("exact: jason", "{}").replace("end-user:\n", "end-user: "))
    assert vs.spec.http[0].match[0].headers["end-user"].match_type is None
    err = error(REVIEWS_TEST_V2.replace("- headers:\n        end-user:\n          exact: jason",
                                        "- uri: {}"))
    assert err.path == "spec.http[0].match[0].uri"
    assert err.message == "set one of exact, prefix or regex"


def test_missing_required_field():
    err = error(REVIEWS_TEST_V2.replace("host: reviews\n        subset: v2", "subset: v2"))
    assert err.path == "spec.http[0].route[0].destination"
    assert err.message == "required field 'host' is missing"
    err = error(REVIEWS_TEST_V2.replace("host: reviews\n        subset: v2", "host:\n        subset: v2"))
    assert err.path == "spec.http[0].route[0].destination"
    assert err.message == "required field 'host' has no value"
    err = error(REVIEWS_TEST_V2.replace("metadata:\n  name: reviews", "metadata:\n  namespace: default"))
    assert (err.path, err.message) == ("metadata", "required field 'name' is missing")


def test_http_route_needs_an_action_like_istio_says():
    err = error("""
    apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata: {name: service-a}
    spec:
      hosts: [service-a]
      http:
      - match:
        - uri: {prefix: /}
        fault:
          abort:
            percentage: {value: 100}
            httpStatus: 404
    """)
    assert err.path == "spec.http[0]"
    assert "HTTP route, redirect or direct_response is required" in err.message



HTTPBIN_ROUTE = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin}
spec:
  hosts: [httpbin]
  http:
  - route: [{destination: {host: httpbin}}]
"""


@pytest.mark.parametrize("field, path, message", [
    ("headers: {request: {set: {':path': /x}}}", 'headers.request.set[":path"]',
     'invalid header ":path": header cannot have ":" prefix'),
    ("headers: {response: {add: {Host: b}}}", "headers.response.add.Host",
     'invalid header "Host": cannot set Host header'),
    ("headers: {request: {remove: [':authority']}}", "headers.request.remove[0]",
     'invalid header ":authority": header cannot have ":" prefix'),
    ("headers: {request: {set: {x-share: '100%'}}}", "headers.request.set.x-share",
     "header value configuration: invalid header configuration. Un-escaped %"),
    ("rewrite: {authority: a}\n    headers: {request: {set: {host: b}}}", "headers",
     'authority header cannot be set multiple times: have "a", attempting to set "b"'),
    ("corsPolicy: {allowOrigins: [{exact: ''}]}", "corsPolicy.allowOrigins[0]",
     "'' is not a valid match type for CORS allow origins"),
    ("corsPolicy: {allowMethods: [get]}", "corsPolicy.allowMethods[0]",
     '"get" is not a supported HTTP method'),
    ("corsPolicy: {exposeHeaders: ['x y']}", "corsPolicy.exposeHeaders[0]",
     "header name x y is not a valid header name"),
    ("corsPolicy: {maxAge: 1500ms}", "corsPolicy.maxAge",
     "max_age duration is accurate only to seconds precision"),
])
def test_istio_refuses_these_headers_and_cors_policies(field, path, message):
    err = error(HTTPBIN_ROUTE + f"    {field}\n")
    assert err.path == f"spec.http[0].{path}" and err.message.startswith(message)
    # what the same fields may say
    parse(HTTPBIN_ROUTE + "    headers: {request: {set: {':authority': a, x: '%HOSTNAME% 100%%'}}}\n"
          "    corsPolicy: {allowOrigins: [{prefix: 'https://'}], allowMethods: ['*', GET],"
          " allowHeaders: ['*'], maxAge: 24h}\n")


@pytest.mark.parametrize("action, message", [
    ("redirect: {uri: /x}\n    fault: {abort: {httpStatus: 500}}",
     "HTTP route cannot contain both fault and redirect"),
    ("redirect: {uri: /x}\n    route: [{destination: {host: httpbin}}]",
     "HTTP route cannot contain both route and redirect"),
    ("directResponse: {status: 404}\n    fault: {abort: {httpStatus: 500}}",
     "HTTP route cannot contain both fault and direct_response"),
    ("directResponse: {status: 404}\n    rewrite: {uri: /x}",
     "HTTP route rule cannot contain both rewrite and direct_response"),
    ("directResponse: {status: 404, body: {string: '" + "x" * (1024 * 1024 + 1) + "'}}",
     "large direct_responses may impact control plane performance, must be less than 1MB"),
    ("directResponse: {status: 404, body: {bytes: 'not base64!'}}", "invalid bytes"),
    ("redirect: {redirectCode: 200, uri: /x}", "200 is not a valid redirect code, must be 3xx"),
])
def test_istio_refuses_these_redirects_and_direct_responses(action, message):
    text = HTTPBIN_ROUTE.replace("  - route: [{destination: {host: httpbin}}]\n", f"  - {action}\n")
    assert message in error(text).message
    assert parse(HTTPBIN_ROUTE.replace("route: [{destination: {host: httpbin}}]",
                                       "directResponse: {status: 404, body: {bytes: aGk=}}"))

def test_virtual_service_needs_a_host_unless_it_is_a_delegate():
    no_hosts = REVIEWS_50_V3.replace("  hosts:\n    - reviews\n", "")
    err = error(no_hosts.replace("  http:", "  gateways: [bookinfo-gateway]\n  http:"))
    assert err.path == "spec" and "needs at least one host" in err.message
    assert "delegate virtual service must have no gateways specified" in err.message
    # like istio, a VirtualService without hosts and gateways is a delegate
    delegate = parse(no_hosts)
    assert delegate.spec.is_delegate and not parse(REVIEWS_50_V3).spec.is_delegate
    root = parse("""
    apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata: {name: root}
    spec:
      hosts: [reviews]
      http:
      - name: to-delegate
        delegate: {name: reviews, namespace: default}
        route:
        - destination: {host: reviews}
    """.replace("        route:\n        - destination: {host: reviews}\n", ""))
    assert root.spec.http[0].delegate.name == "reviews"
    err = error(REVIEWS_50_V3.replace("  - route:", "  - delegate: {name: r}\n    route:"))
    assert (err.path, err.message) == ("spec.http[0].route",
                                       "root HTTP route  must not specify route")


def test_more_istio_webhook_checks():
    err = error(TIMEOUT_RETRIES.replace("attempts: 3", "attempts: 0"))
    assert err.path == "spec.http[0].retries"
    assert err.message.startswith("http retry policy configured when attempts are set to 0")
    err = error(TIMEOUT_RETRIES.replace("timeout: 0.5s", "timeout: 0s"))
    assert (err.path, err.message) == ("spec.http[0].timeout",
                                       "duration must be greater than 1ms, got '0s'")
    err = error(REVIEWS_50_V3.replace("weight: 50", "weight: 0"))
    assert err.path == "spec.http[0].route"
    assert err.message.startswith("total destination weight = 0")
    err = error(DENY_ALL.replace("  rules:\n  - {}\n", ""))
    assert err.path == "spec" and err.message.startswith("DENY action without `rules` is meaningless")
    err = error(REQUIRE_JWT.replace('requestPrincipals: ["testing@secure.istio.io/testing@secure.istio.io"]',
                                    "requestPrincipals: []"))
    assert err.path == "spec.rules[0].from[0].source"
    assert err.message.startswith("`from.source` must not be empty")
    err = error(GATEWAY_MUTUAL.replace("    tls:\n      mode: MUTUAL\n      credentialName: httpbin-credential\n", ""))
    assert err.path == "spec.servers[0]"
    assert err.message.startswith("server must have TLS settings for HTTPS/TLS protocols")
    err = error(GATEWAY_MUTUAL.replace("      credentialName: httpbin-credential\n", ""))
    assert err.path == "spec.servers[0].tls"
    assert err.message.startswith("MUTUAL TLS requires a server certificate")
    err = error(GATEWAY_MUTUAL.replace("- httpbin.example.com", "- httpbin"))
    assert err.path == "spec.servers[0].hosts[0]" and "short names" in err.message
    err = error(GATEWAY_MUTUAL.replace("name: https", "name: ''"))
    assert err.path == "spec.servers[0].port.name"
    err = error(SIDECAR.replace('"./*"', '"reviews"'))
    assert err.path == "spec.egress[0].hosts[0]" and "namespace/dnsName" in err.message
    err = error(PEER_AUTHENTICATION.replace("spec:", "spec:\n  portLevelMtls:\n    8080: {mode: DISABLE}"))
    assert err.path == "spec.portLevelMtls"
    assert "mesh/namespace peer authentication cannot have port level mTLS" in err.message
    err = error(CIRCUIT_BREAKER.replace("      loadBalancer:\n        simple: ROUND_ROBIN\n", "      {}\n"))
    assert (err.path, err.message) == ("spec.subsets[1].trafficPolicy",
                                       "traffic policy must have at least one field")
    err = error(LOCAL_RATE_LIMIT.replace("operation: INSERT_BEFORE", "operation: INSERT_BEFOR"))
    assert err.path == "spec.configPatches[0].patch.operation"
    assert "did you mean 'INSERT_BEFORE'?" in err.message
    err = error(REVIEWS_TEST_V2.replace("exact: jason", "regex: '(?=jason)'"))
    assert err.path == "spec.http[0].match[0].headers.end-user.regex"
    assert "RE2" in err.message


def test_subset_names_are_required_and_unique():
    err = error(CIRCUIT_BREAKER.replace("name: v2", "name: v1"))
    assert err.path == "spec.subsets[1].name"
    assert "duplicate subset names: v1" in err.message
    err = error(CIRCUIT_BREAKER.replace("  - name: v2\n    labels", "  - labels"))
    assert (err.path, err.message) == ("spec.subsets[1]", "required field 'name' is missing")


def test_unknown_condition_attribute_is_rejected_like_istio():
    err = error("""
    apiVersion: security.istio.io/v1beta1
    kind: AuthorizationPolicy
    metadata: {name: rate-limit-by-ip, namespace: foo}
    spec:
      selector:
        matchLabels: {app: my-service}
      action: DENY
      rules:
      - from:
        - source:
            ipBlocks: ["1.2.3.4"]
        when:
        - key: request.count
          values: ["100"]
    """)
    assert err.path == "spec.rules[0].when[0].key"
    assert "unknown attribute: request.count" in err.message


def test_bad_name_and_null_as_absent():
    err = error(REVIEWS_50_V3.replace("name: reviews", "name: Reviews_VS"))
    assert err.path == "metadata.name" and "invalid name 'Reviews_VS'" in err.message
    # an explicit null is an absent field (a lone "spec:" of a policy = allow nothing)
    policy = parse(ALLOW_NOTHING.replace("spec: {}", "spec:"))
    assert policy.spec.rules == [] and "spec" not in policy.model_fields_set


def test_yaml_must_use_camel_case_names():
    err = error(TIMEOUT_RETRIES.replace("perTryTimeout", "per_try_timeout"))
    assert err.path == "spec.http[0].retries"
    assert err.message == "unknown field 'per_try_timeout' (did you mean 'perTryTimeout'?)"
    err = error(REVIEWS_50_V3.replace("  http:", "  foo: 1\n  http:"))
    assert err.path == "spec" and err.message.startswith("unknown field 'foo' (allowed here: hosts,")


def test_list_and_mapping_shape_errors():
    err = error(REVIEWS_50_V3.replace("    - destination:\n        host: reviews\n        subset: v1\n"
                                      "      weight: 50\n", "    - destination: reviews\n"))
    assert err.path == "spec.http[0].route[0].destination"
    assert err.message == "expected a mapping (key: value pairs), got 'reviews'"
    err = error(REVIEWS_50_V3.replace("  hosts:\n    - reviews", "  hosts: reviews"))
    assert err.path == "spec.hosts" and err.message.startswith("expected a list, got 'reviews'")


def test_percentage_range():
    err = error(RATINGS_FAULTS.replace("value: 100.0", "value: 150"))
    assert err.path == "spec.http[0].fault.delay.percentage.value"
    assert "between 0 and 100" in err.message


@pytest.mark.parametrize("version", ["v1", "v1beta1", "v1alpha3"])
def test_networking_versions_are_equivalent(version):
    doc = load(REVIEWS_TEST_V2)
    doc["apiVersion"] = f"networking.istio.io/{version}"
    vs = parse_resource(doc)
    assert isinstance(vs, VirtualService) and vs.api_version == doc["apiVersion"]
    assert vs.spec == parse(REVIEWS_TEST_V2).spec


@pytest.mark.parametrize("api_version, kind", [
    ("security.istio.io/v1beta1", "AuthorizationPolicy"),
    ("security.istio.io/v1", "AuthorizationPolicy"),
    ("telemetry.istio.io/v1alpha1", "Telemetry"),
    ("networking.istio.io/v1beta1", "DestinationRule"),
])
def test_other_served_versions(api_version, kind):
    doc = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}}
    if kind == "DestinationRule":
        doc["spec"] = {"host": "reviews"}
    assert type(parse_resource(doc)).__name__ == kind


def test_unknown_kind_and_api_version_say_what_is_supported():
    err = error("""
    apiVersion: networking.istio.io/v1
    kind: VirtualServce
    metadata: {name: reviews}
    """)
    assert err.path == "kind"
    assert "unsupported kind 'VirtualServce'" in err.message and "did you mean 'VirtualService'?" in err.message
    assert "AuthorizationPolicy" in err.message and "networking.istio.io/v1, v1beta1, v1alpha3" in err.message
    err = error("""
    apiVersion: networking.istio.io/v1beta2
    kind: VirtualService
    metadata: {name: reviews}
    """)
    assert err.path == "apiVersion"
    assert "networking.istio.io/v1 or networking.istio.io/v1beta1 or networking.istio.io/v1alpha3" in err.message
    err = error("""
    apiVersion: networking.istio.io/v1
    kind: EnvoyFilter
    metadata: {name: f}
    """)
    assert err.path == "apiVersion" and "networking.istio.io/v1alpha3" in err.message
    err = error("kind: Gateway\nmetadata: {name: g}\n")
    assert (err.path, err.message) == ("", "required field 'apiVersion' is missing")


def test_errors_surface_through_the_manifest_loader():
    from bookinfo_labs.manifests import ManifestError, parse_text

    with pytest.raises(ManifestError) as info:
        parse_text(textwrap.dedent(REVIEWS_50_V3).replace("weight: 50\n    -", "wieght: 50\n    -"))
    assert info.value.path == "spec.http[0].route[0]"
    assert "unknown field 'wieght'" in str(info.value)


# --------------------------------------------------------------------------- iter_set_fields, Duration


def test_iter_set_fields_yields_what_the_yaml_set():
    vs = parse("""
    apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata: {name: ratings}
    spec:
      hosts: [ratings]
      http:
      - match:
        - headers:
            end-user: {exact: jason}
        fault:
          delay:
            fixedDelay: 7s
            percentage: {value: 100}
        route:
        - destination: {host: ratings, subset: v1}
    """)
    paths = [path for path, _ in iter_set_fields(vs)]
    assert paths == [
        "apiVersion", "kind", "metadata", "metadata.name",
        "spec", "spec.hosts", "spec.http",
        "spec.http[0].match", "spec.http[0].match[0].headers",
        "spec.http[0].match[0].headers.end-user.exact",
        "spec.http[0].route", "spec.http[0].route[0].destination",
        "spec.http[0].route[0].destination.host", "spec.http[0].route[0].destination.subset",
        "spec.http[0].fault", "spec.http[0].fault.delay",
        "spec.http[0].fault.delay.fixedDelay",
        "spec.http[0].fault.delay.percentage", "spec.http[0].fault.delay.percentage.value",
    ]
    values = dict(iter_set_fields(vs.spec, "spec"))
    assert values["spec.http[0].fault.delay.fixedDelay"] == Duration("7s", 7.0)
    assert values["spec.http[0].fault.delay.percentage.value"] == 100.0


@pytest.mark.parametrize("text, seconds", [
    ("0.5s", 0.5), ("1m30s", 90.0), ("100ms", 0.1), ("7s", 7.0), ("1h30m", 5400.0),
    ("1.5h", 5400.0), ("250us", 0.00025), ("0", 0.0), ("2m", 120.0),
])
def test_duration_seconds(text, seconds):
    duration = Duration.parse(text)
    assert duration.seconds == pytest.approx(seconds)
    assert duration.text == text and str(duration) == text


@pytest.mark.parametrize("text", ["7 seconds", "7", "s", "1.5.s", "-1s", "", "1d"])
def test_duration_rejects(text):
    with pytest.raises(ValueError):
        Duration.parse(text)


def test_models_can_be_built_in_python_with_snake_case_names():
    route = HTTPRouteDestination(destination=IstioDestination(host="reviews", subset="v1"), weight=20)
    assert route.model_dump(exclude_unset=True) == {
        "destination": {"host": "reviews", "subset": "v1"}, "weight": 20}
