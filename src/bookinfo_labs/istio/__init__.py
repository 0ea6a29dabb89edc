"""Typed, strict models of the Istio (and a few Kubernetes) resources the labs apply.

``parse_resource(doc)`` turns one YAML document into the model of its kind, or raises
:class:`FieldError` (``.path`` like ``spec.http[0].route[0]``, ``.message`` saying what
to change) for the first problem. ``iter_set_fields(model)`` walks the fields a manifest
actually set, so the local emulator can refuse by name what it does not implement.

Attributes are snake_case (``vs.spec.http[0].match[0].headers``,
``dr.spec.traffic_policy.connection_pool.http.http1_max_pending_requests``); the YAML
names are the camelCase aliases. Durations are :class:`Duration` (``.text``,
``.seconds``), percentages :class:`Percent` (``.value`` 0..100, ``.fraction``).
"""

from .base import (
    Duration,
    FieldError,
    IstioModel,
    KubeModel,
    ObjectMeta,
    Percent,
    PolicySelector,
    PolicyTargetReference,
    Resource,
    iter_set_fields,
)
from .kubernetes import (
    ConfigMap,
    Container,
    ContainerPort,
    Deployment,
    DeploymentSpec,
    EnvVar,
    KubeResource,
    LabelSelector,
    Namespace,
    PodSpec,
    PodTemplateSpec,
    Secret,
    Service,
    ServiceAccount,
    ServiceSpec,
)
from .kubernetes import ServicePort as KubeServicePort
from .networking import (
    ClientTLSSettings,
    ConnectionPoolSettings,
    ConsistentHashLB,
    CorsPolicy,
    Delegate,
    Destination,
    DestinationRule,
    DestinationRuleSpec,
    EnvoyConfigObjectMatch,
    EnvoyConfigObjectPatch,
    EnvoyFilter,
    EnvoyFilterSpec,
    FaultAbort,
    FaultDelay,
    Gateway,
    GatewaySpec,
    HeaderOperations,
    Headers,
    HTTPDirectResponse,
    HTTPFaultInjection,
    HTTPMatchRequest,
    HTTPMirrorPolicy,
    HTTPRedirect,
    HTTPRetry,
    HTTPRewrite,
    HTTPRoute,
    HTTPRouteDestination,
    HTTPSettings,
    IstioEgressListener,
    IstioIngressListener,
    L4MatchAttributes,
    LoadBalancerSettings,
    LocalityLoadBalancerSetting,
    OutboundTrafficPolicy,
    OutlierDetection,
    Patch,
    Port,
    PortSelector,
    PortTrafficPolicy,
    RouteDestination,
    Server,
    ServerTLSSettings,
    ServiceEntry,
    ServiceEntrySpec,
    ServicePort,
    Sidecar,
    SidecarSpec,
    StringMatch,
    Subset,
    TCPRoute,
    TCPSettings,
    TLSMatchAttributes,
    TLSRoute,
    TrafficPolicy,
    VirtualService,
    VirtualServiceSpec,
    WorkloadEntrySpec,
    WorkloadSelector,
)
from .registry import KINDS, parse_resource, supported_kinds
from .security import (
    AuthorizationPolicy,
    AuthorizationPolicySpec,
    Condition,
    JWTRule,
    MutualTLS,
    Operation,
    PeerAuthentication,
    PeerAuthenticationSpec,
    RequestAuthentication,
    RequestAuthenticationSpec,
    Rule,
    RuleFrom,
    RuleTo,
    Source,
)
from .telemetry import AccessLogging, Metrics, Telemetry, TelemetrySpec, Tracing

__all__ = [
    # API
    "FieldError", "parse_resource", "iter_set_fields", "supported_kinds", "KINDS",
    # shared
    "Duration", "Percent", "IstioModel", "KubeModel", "Resource", "ObjectMeta",
    "PolicySelector", "PolicyTargetReference",
    # networking.istio.io
    "VirtualService", "VirtualServiceSpec", "HTTPRoute", "HTTPMatchRequest", "StringMatch",
    "HTTPRouteDestination", "RouteDestination", "Destination", "PortSelector", "Headers",
    "HeaderOperations", "HTTPRedirect", "HTTPDirectResponse", "Delegate", "HTTPRewrite",
    "HTTPRetry", "HTTPFaultInjection", "FaultDelay", "FaultAbort", "HTTPMirrorPolicy",
    "CorsPolicy", "TCPRoute", "TLSRoute", "L4MatchAttributes", "TLSMatchAttributes",
    "DestinationRule", "DestinationRuleSpec", "TrafficPolicy", "Subset",
    "LoadBalancerSettings", "ConsistentHashLB", "LocalityLoadBalancerSetting",
    "ConnectionPoolSettings", "TCPSettings", "HTTPSettings", "OutlierDetection",
    "ClientTLSSettings", "PortTrafficPolicy", "WorkloadSelector",
    "Gateway", "GatewaySpec", "Server", "Port", "ServerTLSSettings",
    "ServiceEntry", "ServiceEntrySpec", "ServicePort", "WorkloadEntrySpec",
    "Sidecar", "SidecarSpec", "IstioIngressListener", "IstioEgressListener",
    "OutboundTrafficPolicy",
    "EnvoyFilter", "EnvoyFilterSpec", "EnvoyConfigObjectPatch", "EnvoyConfigObjectMatch", "Patch",
    # security.istio.io
    "PeerAuthentication", "PeerAuthenticationSpec", "MutualTLS",
    "AuthorizationPolicy", "AuthorizationPolicySpec", "Rule", "RuleFrom", "RuleTo", "Source",
    "Operation", "Condition",
    "RequestAuthentication", "RequestAuthenticationSpec", "JWTRule",
    # telemetry.istio.io
    "Telemetry", "TelemetrySpec", "Tracing", "Metrics", "AccessLogging",
    # Kubernetes
    "KubeResource", "Service", "ServiceSpec", "KubeServicePort", "ServiceAccount", "Secret",
    "ConfigMap", "Namespace", "Deployment", "DeploymentSpec", "LabelSelector", "PodTemplateSpec",
    "PodSpec", "Container", "ContainerPort", "EnvVar",
]
