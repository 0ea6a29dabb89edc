"""networking.istio.io: VirtualService, DestinationRule, Gateway, ServiceEntry, Sidecar,
EnvoyFilter, WorkloadEntry.

Field names and types follow the Istio API reference (istio.io/latest/docs/reference/
config/networking/); the semantic checks are the ones Istio's validating webhook makes
that a learner is likely to trip over, with Istio's wording where it is well known.
The three apiVersions v1, v1beta1 and v1alpha3 share these models.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, Field, model_validator

from .base import (
    DNS1123_LABEL_RULE,
    AtLeast1msDuration,
    Duration,
    Enum,
    HTTPStatus,
    IstioModel,
    Percent,
    PercentValue,
    PolicySelector,
    PolicyTargetReference,
    PortNumber,
    Int32,
    NonNegativeInt32,
    Resource,
    UInt32,
    UInt64,
    fail,
    is_dns1123_label,
    show,
)

# --------------------------------------------------------------------------- shared pieces

#: protocol names Istio accepts on ports (case-insensitive, as istio's protocol.Parse)
PROTOCOLS = ("HTTP", "HTTPS", "GRPC", "GRPC-WEB", "HTTP2", "MONGO", "REDIS", "MYSQL",
             "TCP", "TLS", "UDP", "HTTP_PROXY")
Protocol = Enum(*PROTOCOLS, case_insensitive=True)


def _non_empty(value: str) -> str:
    if not value.strip():
        fail("must not be empty")
    return value


NonEmptyStr = Annotated[str, AfterValidator(_non_empty)]


def _check_host(value: str) -> str:
    if not value.strip():
        fail("a host must not be empty")
    if value == "*":
        return value
    if "://" in value or "/" in value:
        fail(f"invalid host {show(value)}: a host is a name such as reviews or "
             "reviews.default.svc.cluster.local, not a URL or a path")
    if re.fullmatch(r"[^:]+:\d+", value):
        fail(f"invalid host {show(value)}: a host does not include a port "
             "(set the port separately, e.g. port: {number: 9080})")
    if any(c.isspace() for c in value):
        fail(f"invalid host {show(value)}: a host cannot contain spaces")
    return value


Host = Annotated[str, AfterValidator(_check_host)]


def _check_subset_name(value: str) -> str:
    if not value:
        fail("subset name cannot be empty")
    if not is_dns1123_label(value):
        fail(f"subset name is invalid: {value} (use {DNS1123_LABEL_RULE})")
    return value


SubsetName = Annotated[str, AfterValidator(_check_subset_name)]


def _istio_duration(value: Duration) -> Duration:
    """istio's ValidateDuration: at least 1ms, whole milliseconds."""
    if value.seconds < 0.001 - 1e-12:
        fail(f"duration must be greater than 1ms, got {show(value.text)}")
    millis = value.seconds * 1000
    if abs(millis - round(millis)) > 1e-6:
        fail(f"only durations to ms precision are supported, got {show(value.text)}")
    return value


#: a duration istio validates (timeout, perTryTimeout, fixedDelay, interval, ...): >= 1ms,
#: whole milliseconds
PositiveDuration = Annotated[Duration, AfterValidator(_istio_duration)]


def _only_one(model: IstioModel, names: tuple[str, ...], *, required: bool = False,
              what: str | None = None) -> str | None:
    """Check a protobuf oneof: at most (or, if required, exactly) one of ``names`` is set."""
    fields = type(model).model_fields
    aliases = [fields[n].alias or n for n in names]
    present = [fields[n].alias or n for n in names if getattr(model, n) is not None]
    listing = ", ".join(aliases[:-1]) + f" or {aliases[-1]}"
    if len(present) > 1:
        fail(f"set only one of {listing}{f' in {what}' if what else ''} "
             f"(found {' and '.join(present)})")
    if required and not present:
        fail(f"set one of {listing}{f' in {what}' if what else ''}")
    return present[0] if present else None


class WorkloadSelector(IstioModel):
    """``workloadSelector: {labels: ...}`` of ServiceEntry, Sidecar and EnvoyFilter
    (istio.networking.v1alpha3.WorkloadSelector). DestinationRule's ``workloadSelector`` is
    the ``matchLabels`` kind instead (:class:`PolicySelector`)."""

    labels: dict[str, str] = Field(default_factory=dict)


class PortSelector(IstioModel):
    """``port: {number: 9080}``."""

    number: PortNumber


class Destination(IstioModel):
    """Where a route sends traffic: a service host, an optional subset and port."""

    host: Host
    subset: SubsetName | None = None
    port: PortSelector | None = None

    @model_validator(mode="after")
    def _not_wildcard(self) -> Destination:
        if self.host == "*":
            fail("invalid destination host *", "host")
        return self


# --------------------------------------------------------------------------- VirtualService


class StringMatch(IstioModel):
    """``exact`` | ``prefix`` | ``regex`` (RE2, full match). An empty ``{}`` is allowed
    only in header and query parameter maps, where it means "present"."""

    exact: str | None = None
    prefix: str | None = None
    regex: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> StringMatch:
        _only_one(self, ("exact", "prefix", "regex"))
        if self.regex is not None and self.regex != "*":  # "*" = presence in withoutHeaders
            _check_regex(self.regex, "regex")
        return self

    @property
    def match_type(self) -> Literal["exact", "prefix", "regex"] | None:
        """Which of exact/prefix/regex is set, or None for a presence match ``{}``."""
        for name in ("exact", "prefix", "regex"):
            if getattr(self, name) is not None:
                return name  # type: ignore[return-value]
        return None

    @property
    def match_value(self) -> str | None:
        kind = self.match_type
        return getattr(self, kind) if kind else None


def _check_regex(pattern: str, *at: str) -> None:
    """The part of istio's RE2 check that Python can do: not empty, not too long, and no
    construct RE2 lacks (lookaround, backreferences)."""
    if pattern == "":
        fail("regex string match should not be empty", *at)
    if len(pattern) > 1024:
        fail("regex is too large, max length allowed is 1024", *at)
    if re.search(r"\(\?<?[=!]", pattern) or re.search(r"(?<!\\)\\[1-9]", pattern):
        fail(f"invalid regex {show(pattern)}: lookarounds and backreferences are not "
             "supported; Istio uses RE2 style regex-based match "
             "(https://github.com/google/re2/wiki/Syntax)", *at)
    # Python 3.11 also knows possessive quantifiers (a++) and atomic groups ((?>...)); RE2
    # does not ("bad repetition operator: ++"), so Istio's webhook refuses them too
    if re.search(r"(?<!\\)[*+?}]\+", pattern) or "(?>" in pattern:
        fail(f"invalid regex {show(pattern)}: possessive quantifiers and atomic groups are "
             "not supported; Istio uses RE2 style regex-based match "
             "(https://github.com/google/re2/wiki/Syntax)", *at)
    try:
        re.compile(pattern)
    except re.error as exc:
        if "bad escape" not in str(exc):  # RE2 has escapes Python lacks, e.g. \pL
            fail(f"invalid regex {show(pattern)}: {exc}; Istio uses RE2 style regex-based "
                 "match (https://github.com/google/re2/wiki/Syntax)", *at)


def _non_empty_prefix(match: StringMatch) -> StringMatch:
    if match.prefix == "":
        fail("prefix string match should not be empty", "prefix")
    return match


#: a StringMatch in headers/queryParams/withoutHeaders maps: {} means "present"
MapStringMatch = Annotated[StringMatch, AfterValidator(_non_empty_prefix)]


def _needs_kind(match: StringMatch) -> StringMatch:
    if match.match_type is None:
        fail("set one of exact, prefix or regex")
    return match


#: a StringMatch that must say how to match (uri, scheme, method, authority, allowOrigins)
RequiredStringMatch = Annotated[StringMatch, AfterValidator(_needs_kind)]


class HTTPMatchRequest(IstioModel):
    name: str | None = None
    uri: RequiredStringMatch | None = None
    scheme: Annotated[RequiredStringMatch, AfterValidator(_non_empty_prefix)] | None = None
    method: Annotated[RequiredStringMatch, AfterValidator(_non_empty_prefix)] | None = None
    authority: Annotated[RequiredStringMatch, AfterValidator(_non_empty_prefix)] | None = None
    headers: dict[str, MapStringMatch] = Field(default_factory=dict)
    port: PortNumber | None = None
    source_labels: dict[str, str] = Field(default_factory=dict)
    gateways: list[str] = Field(default_factory=list)
    query_params: dict[str, MapStringMatch] = Field(default_factory=dict)
    ignore_uri_case: bool | None = None
    without_headers: dict[str, StringMatch] = Field(default_factory=dict)
    source_namespace: str | None = None
    stat_prefix: str | None = None

    @model_validator(mode="after")
    def _source_namespace(self) -> HTTPMatchRequest:
        if self.source_namespace is not None and not is_dns1123_label(self.source_namespace):
            fail(f"sourceNamespace match {self.source_namespace} is invalid", "sourceNamespace")
        return self


#: a header name's characters (RFC 7230 tchar), as istio's validHeaderNameRegex
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~A-Za-z0-9]+")


def _is_authority(name: str) -> bool:
    return name.lower() in (":authority", "host")


def _check_operation_name(name: str, *at: str, authority_allowed: bool = False) -> None:
    """istio's ValidateHTTPHeaderWithAuthorityOperationName (a request set/add, where
    ``:authority`` and ``host`` rewrite the authority) and ValidateHTTPHeaderOperationName
    (the other operations)."""
    if not name:
        fail("header name cannot be empty", *at)
    if authority_allowed and _is_authority(name):
        return
    if not authority_allowed and name.lower() == "host":
        fail(f'invalid header "{name}": cannot set Host header', *at)
    if name.startswith(":"):
        fail(f'invalid header "{name}": header cannot have ":" prefix', *at)


def _header_value_problem(value: str) -> str | None:
    """What Envoy's header formatter would refuse in a header value (istio's
    ValidateHTTPHeaderValue): control characters, a lone ``%``, a ``%VARIABLE%`` left open."""
    if re.search(r"[\x00-\x08\x0a-\x1f\x7f]", value):
        return f"header value configuration {value} is invalid"
    literal = re.sub(r"%%", "", value)
    # %NAME% or %NAME(args)%, where a ")" may sit inside quoted args
    literal = re.sub(r'%[^%(]*\((?:"(?:\\.|[^"\\])*"|[^)"])*\) *%|%[^%(]*%', "", literal)
    if literal.endswith("%") and literal.count("%") == 1:
        return "header value configuration: invalid header configuration. Un-escaped %"
    if "%" in literal:
        return ("header value configuration: invalid header configuration. Un-terminated "
                f"variable expression '{value}'")
    return None


class HeaderOperations(IstioModel):
    set: dict[str, str] = Field(default_factory=dict)
    add: dict[str, str] = Field(default_factory=dict)
    remove: list[str] = Field(default_factory=list)

    def check(self, side: str) -> None:
        """istio's checks of the names and values of one side's operations (``side``:
        request or response, where the problem is reported)."""
        for verb in ("set", "add"):
            for name, value in getattr(self, verb).items():
                _check_operation_name(name, side, verb, name, authority_allowed=side == "request")
                problem = _header_value_problem(value)
                if problem:
                    fail(problem, side, verb, name)
        for index, name in enumerate(self.remove):
            _check_operation_name(name, side, "remove", index)


class Headers(IstioModel):
    """``headers: {request: {set, add, remove}, response: {...}}``."""

    request: HeaderOperations | None = None
    response: HeaderOperations | None = None

    @model_validator(mode="after")
    def _operations(self) -> Headers:
        for side in ("request", "response"):
            if getattr(self, side) is not None:
                getattr(self, side).check(side)
        return self

    def authorities(self) -> list[str]:
        """The authorities a request set/add asks for (``:authority`` or ``host``)."""
        request = self.request or HeaderOperations()
        return [v for ops in (request.set, request.add) for k, v in ops.items() if _is_authority(k)]


class HTTPRouteDestination(IstioModel):
    destination: Destination
    weight: NonNegativeInt32 | None = None
    headers: Headers | None = None


class RouteDestination(IstioModel):
    destination: Destination
    weight: NonNegativeInt32 | None = None


class HTTPRedirect(IstioModel):
    uri: str | None = None
    authority: str | None = None
    port: PortNumber | None = None
    derive_port: Enum("FROM_PROTOCOL_DEFAULT", "FROM_REQUEST_PORT") | None = None
    scheme: str | None = None
    redirect_code: UInt32 | None = None

    @model_validator(mode="after")
    def _checks(self) -> HTTPRedirect:
        _only_one(self, ("port", "derive_port"))
        if not (self.uri or self.authority or self.scheme or self.port is not None
                or self.derive_port is not None):
            fail("redirect must specify URI, authority, scheme, or port")
        if self.redirect_code is not None and self.redirect_code != 0 \
                and not 300 <= self.redirect_code <= 399:
            fail(f"{self.redirect_code} is not a valid redirect code, must be 3xx", "redirectCode")
        if self.scheme and self.scheme not in ("http", "https"):
            fail('invalid redirect scheme, must be "http" or "https"', "scheme")
        return self


class HTTPBody(IstioModel):
    string: str | None = None
    bytes: str | None = None  # base64, as the protobuf JSON of a bytes field

    @model_validator(mode="after")
    def _one_kind(self) -> HTTPBody:
        _only_one(self, ("string", "bytes"))
        if self.bytes is not None and self.size is None:
            fail(f"invalid bytes {show(self.bytes)}: the response body is written base64 "
                 "encoded (or use string)", "bytes")
        return self

    @property
    def size(self) -> int | None:
        """The body's length in bytes (None: ``bytes`` that is not base64)."""
        if self.bytes is None:
            return len((self.string or "").encode())
        text = self.bytes.replace("-", "+").replace("_", "/")  # standard or URL-safe
        try:
            return len(base64.b64decode(text + "=" * (-len(text) % 4), validate=True))
        except binascii.Error:
            return None


class HTTPDirectResponse(IstioModel):
    status: HTTPStatus
    body: HTTPBody | None = None

    @model_validator(mode="after")
    def _size(self) -> HTTPDirectResponse:
        # istio's validateHTTPDirectResponse; Envoy's RouteConfiguration is told the same limit
        if self.body is not None and (self.body.size or 0) > 1024 * 1024:
            fail("large direct_responses may impact control plane performance, must be less "
                 "than 1MB", "body")
        return self


class Delegate(IstioModel):
    name: str
    namespace: str | None = None


class RegexRewrite(IstioModel):
    match: NonEmptyStr
    rewrite: NonEmptyStr


class HTTPRewrite(IstioModel):
    uri: str | None = None
    authority: str | None = None
    uri_regex_rewrite: RegexRewrite | None = None

    @model_validator(mode="after")
    def _one_uri(self) -> HTTPRewrite:
        if self.uri and self.uri_regex_rewrite is not None:
            fail("rewrite may only contain one of URI or UriRegexRewrite")
        if not self.uri and self.uri_regex_rewrite is None and not self.authority:
            fail("rewrite must specify at least one of URI, UriRegexRewrite, or authority. "
                 "Only one of URI or UriRegexRewrite may be specified")
        if self.uri_regex_rewrite is not None:
            _check_regex(self.uri_regex_rewrite.match, "uriRegexRewrite", "match")
        return self


#: retry conditions istio accepts in retryOn (besides HTTP status codes)
RETRY_ON_POLICIES = (
    "5xx", "gateway-error", "reset", "reset-before-request", "connect-failure",
    "envoy-ratelimited", "retriable-4xx", "refused-stream", "retriable-status-codes",
    "retriable-headers", "http3-post-connect-failure",
    "cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable",
)


def _check_retry_on(value: str) -> str:
    # like istio: split on "," only, so "5xx, reset" has an invalid policy " reset"
    for policy in value.split(","):
        if policy in RETRY_ON_POLICIES:
            continue
        if policy.isdigit() and 100 <= int(policy) <= 599:
            continue
        wanted = policy.strip().lower().replace("_", "-")
        close = [p for p in RETRY_ON_POLICIES if p == wanted]
        if close and policy.strip() != policy:
            hint = "no spaces around the commas; "
        elif close:
            hint = f"did you mean '{close[0]}'? "
        else:
            hint = ""
        fail(f'"{policy}" is not a valid retryOn policy ({hint}use a comma-separated list of '
             f"{', '.join(RETRY_ON_POLICIES)} or HTTP status codes)")
    return value


class HTTPRetry(IstioModel):
    attempts: NonNegativeInt32 | None = None
    per_try_timeout: PositiveDuration | None = None
    retry_on: Annotated[str, AfterValidator(_check_retry_on)] | None = None
    retry_remote_localities: bool | None = None
    retry_ignore_previous_hosts: bool | None = None
    backoff: PositiveDuration | None = None

    @model_validator(mode="after")
    def _disabled(self) -> HTTPRetry:
        if not self.attempts and (self.per_try_timeout is not None or self.retry_on
                                  or self.retry_remote_localities is not None):
            fail("http retry policy configured when attempts are set to 0 (disabled); "
                 "set attempts (e.g. attempts: 3)")
        return self


#: methods istio accepts in ``allowMethods`` (Go's net/http method names, and "*")
CORS_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE",
                "*")


class CorsPolicy(IstioModel):
    allow_origins: list[RequiredStringMatch] = Field(default_factory=list)
    allow_origin: list[str] = Field(default_factory=list)  # deprecated
    allow_methods: list[str] = Field(default_factory=list)
    allow_headers: list[str] = Field(default_factory=list)
    expose_headers: list[str] = Field(default_factory=list)
    max_age: PositiveDuration | None = None
    allow_credentials: bool | None = None
    unmatched_preflights: Enum("UNSPECIFIED", "FORWARD", "IGNORE") | None = None

    @model_validator(mode="after")
    def _checks(self) -> CorsPolicy:
        # istio's validateCORSPolicy, with its messages
        for index, origin in enumerate(self.allow_origins):
            if not origin.match_value:
                fail("'' is not a valid match type for CORS allow origins", "allowOrigins", index)
        for index, method in enumerate(self.allow_methods):
            if method not in CORS_METHODS:
                fail(f'"{method}" is not a supported HTTP method (use one of '
                     f"{', '.join(CORS_METHODS)})", "allowMethods", index)
        for field, names in (("allowHeaders", self.allow_headers),
                             ("exposeHeaders", self.expose_headers)):
            for index, name in enumerate(names):
                if not name:
                    fail("header name cannot be empty", field, index)
                if name != "*" and not _HEADER_NAME.fullmatch(name):
                    fail(f"header name {name} is not a valid header name", field, index)
        seconds = self.max_age.seconds if self.max_age is not None else 0
        if abs(seconds - round(seconds)) > 1e-9:
            fail("max_age duration is accurate only to seconds precision", "maxAge")
        return self


class FaultDelay(IstioModel):
    """``fault.delay``: ``fixedDelay`` for ``percentage.value`` % of requests (or the
    deprecated integer ``percent``)."""

    fixed_delay: PositiveDuration | None = None
    exponential_delay: PositiveDuration | None = None
    percentage: Percent | None = None
    percent: Annotated[int, AfterValidator(lambda v: v if 0 <= v <= 100 else fail(
        f"percent must be between 0 and 100, got {v}"))] | None = None  # deprecated

    @model_validator(mode="after")
    def _delay_kind(self) -> FaultDelay:
        _only_one(self, ("fixed_delay", "exponential_delay"), what="a delay fault")
        if self.exponential_delay is not None:
            fail("exponentialDelay not supported yet (use fixedDelay)", "exponentialDelay")
        return self

    @property
    def effective_percentage(self) -> float:
        """The share of requests delayed, 0..100: ``percentage.value``, else the deprecated
        ``percent``, else 0 ("if left unspecified, no request will be delayed")."""
        if self.percentage is not None:
            return self.percentage.value
        if self.percent is not None:
            return float(self.percent)
        return 0.0


GRPC_STATUSES = ("OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
                 "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
                 "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
                 "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED")


class FaultAbort(IstioModel):
    """``fault.abort``: answer ``httpStatus`` (or a gRPC status) for ``percentage.value`` %
    of requests."""

    http_status: HTTPStatus | None = None
    grpc_status: str | None = None
    http2_error: str | None = None
    percentage: Percent | None = None

    @model_validator(mode="after")
    def _error_kind(self) -> FaultAbort:
        kind = _only_one(self, ("http_status", "grpc_status", "http2_error"), what="an abort fault")
        if kind == "http2Error":
            fail("HTTP/2 abort fault injection not supported yet", "http2Error")
        if kind == "grpcStatus" and self.grpc_status not in GRPC_STATUSES:
            fail(f"gRPC status {self.grpc_status!r} is not supported. See "
                 "https://github.com/grpc/grpc/blob/master/doc/statuscodes.md for a list of "
                 "supported codes, for example 'NOT_FOUND'", "grpcStatus")
        return self

    @property
    def effective_percentage(self) -> float:
        """The share of requests aborted, 0..100 (0 when no percentage is given: "if left
        unspecified, no request will be aborted")."""
        return self.percentage.value if self.percentage is not None else 0.0


class HTTPFaultInjection(IstioModel):
    delay: FaultDelay | None = None
    abort: FaultAbort | None = None

    @model_validator(mode="after")
    def _something(self) -> HTTPFaultInjection:
        if self.delay is None and self.abort is None:
            fail("HTTP fault injection must have an abort and/or a delay")
        return self


class HTTPMirrorPolicy(IstioModel):
    destination: Destination
    percentage: Percent | None = None


class HTTPRoute(IstioModel):
    """One entry of ``spec.http``: matches, then where to send the request and how."""

    # the VirtualService CRD lists the proto name mirror_percent beside mirrorPercent
    _legacy_keys: ClassVar[dict[str, str]] = {"mirror_percent": "mirror_percent"}

    name: str | None = None
    match: list[HTTPMatchRequest] = Field(default_factory=list)
    route: list[HTTPRouteDestination] = Field(default_factory=list)
    redirect: HTTPRedirect | None = None
    direct_response: HTTPDirectResponse | None = None
    delegate: Delegate | None = None
    rewrite: HTTPRewrite | None = None
    timeout: PositiveDuration | None = None
    retries: HTTPRetry | None = None
    fault: HTTPFaultInjection | None = None
    mirror: Destination | None = None
    mirrors: list[HTTPMirrorPolicy] = Field(default_factory=list)
    mirror_percent: Annotated[int, AfterValidator(lambda v: v if 0 <= v <= 100 else fail(
        f"mirror_percent must have a max value of 100 (it has {v})"))] | None = None  # deprecated
    mirror_percentage: Percent | None = None
    cors_policy: CorsPolicy | None = None
    headers: Headers | None = None

    @model_validator(mode="after")
    def _actions(self) -> HTTPRoute:
        # istio's validateHTTPRouteConflict, with its messages
        if self.delegate is not None:  # a root route: only the delegate decides
            name = self.name or ""
            if self.redirect is not None:
                fail(f"root HTTP route {name} must not specify redirect", "redirect")
            if "route" in self.model_fields_set:
                fail(f"root HTTP route {name} must not specify route", "route")
            return self
        if self.redirect is not None:
            if self.route:
                fail("HTTP route cannot contain both route and redirect")
            if self.fault is not None:
                fail("HTTP route cannot contain both fault and redirect")
            if self.rewrite is not None:
                fail("HTTP route rule cannot contain both rewrite and redirect")
            if self.direct_response is not None:
                fail("HTTP route rule cannot contain both direct_response and redirect")
        elif self.direct_response is not None:
            if self.route:
                fail("HTTP route cannot contain both route and direct_response")
            if self.fault is not None:
                fail("HTTP route cannot contain both fault and direct_response")
            if self.rewrite is not None:
                fail("HTTP route rule cannot contain both rewrite and direct_response")
        elif not self.route:
            fail("HTTP route, redirect or direct_response is required "
                 "(add route, redirect, directResponse or delegate to this http entry)")
        if self.mirror is not None and self.mirrors:
            fail("HTTP route cannot contain both mirror and mirrors")
        # Weights need not sum to 100: the only check on their total, in Istio 1.22 to 1.28
        # (pkg/config/validation/validation.go validateHTTPRouteDestinations, and
        # validateRouteDestinations for tcp/tls, tags 1.22.0 ... 1.28.0), refuses a total of
        # 0 with more than one destination. Envoy's weighted_clusters share traffic as
        # weight/total, so 30 and 30 mean 50/50 (tests/test_routing.py).
        if len(self.route) > 1 and sum(r.weight or 0 for r in self.route) == 0:
            fail("total destination weight = 0 (give the destinations weights, e.g. 50 and 50)",
                 "route")
        return self

    @model_validator(mode="after")
    def _one_authority(self) -> HTTPRoute:
        # istio's validateAuthorityRewrite: rewrite.authority, or one request header
        authorities = [self.rewrite.authority] if self.rewrite and self.rewrite.authority else []
        authorities += self.headers.authorities() if self.headers is not None else []
        if len(authorities) > 1:
            fail(f'authority header cannot be set multiple times: have "{authorities[0]}", '
                 f'attempting to set "{authorities[1]}"', "headers")
        return self

    @property
    def effective_mirror_percentage(self) -> float | None:
        """Share of requests mirrored to ``mirror`` (0..100): ``mirrorPercentage.value``,
        else the deprecated ``mirrorPercent``, else 100; None without ``mirror``."""
        if self.mirror is None:
            return None
        if self.mirror_percentage is not None:
            return self.mirror_percentage.value
        if self.mirror_percent is not None:
            return float(self.mirror_percent)
        return 100.0


class L4MatchAttributes(IstioModel):
    destination_subnets: list[str] = Field(default_factory=list)
    port: PortNumber | None = None
    source_labels: dict[str, str] = Field(default_factory=dict)
    gateways: list[str] = Field(default_factory=list)
    source_namespace: str | None = None
    source_subnet: str | None = None  # deprecated, still in every CRD 1.22-1.28


class TLSMatchAttributes(IstioModel):
    sni_hosts: list[NonEmptyStr]
    destination_subnets: list[str] = Field(default_factory=list)
    port: PortNumber | None = None
    source_labels: dict[str, str] = Field(default_factory=dict)
    gateways: list[str] = Field(default_factory=list)
    source_namespace: str | None = None

    @model_validator(mode="after")
    def _sni(self) -> TLSMatchAttributes:
        if not self.sni_hosts:
            fail("TLS match must have at least one SNI host", "sniHosts")
        return self


class TCPRoute(IstioModel):
    match: list[L4MatchAttributes] = Field(default_factory=list)
    route: list[RouteDestination] = Field(default_factory=list)

    @model_validator(mode="after")
    def _route(self) -> TCPRoute:
        if not self.route:
            fail("TCP route is required (add a route with a destination)")
        # validation.go validateRouteDestinations: only a total of 0 is refused (see HTTPRoute)
        if len(self.route) > 1 and sum(r.weight or 0 for r in self.route) == 0:
            fail("total destination weight = 0", "route")
        return self


class TLSRoute(IstioModel):
    match: list[TLSMatchAttributes] = Field(default_factory=list)
    route: list[RouteDestination] = Field(default_factory=list)

    @model_validator(mode="after")
    def _match_and_route(self) -> TLSRoute:
        if not self.match:
            fail("TLS route must have at least one match condition")
        if not self.route:
            fail("TLS route is required (add a route with a destination)")
        # validation.go validateRouteDestinations: only a total of 0 is refused (see HTTPRoute)
        if len(self.route) > 1 and sum(r.weight or 0 for r in self.route) == 0:
            fail("total destination weight = 0", "route")
        return self


class VirtualServiceSpec(IstioModel):
    hosts: list[Host] = Field(default_factory=list)
    gateways: list[str] = Field(default_factory=list)
    http: list[HTTPRoute] = Field(default_factory=list)
    tls: list[TLSRoute] = Field(default_factory=list)
    tcp: list[TCPRoute] = Field(default_factory=list)
    export_to: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _hosts_and_routes(self) -> VirtualServiceSpec:
        if not self.hosts:
            # istio treats a VirtualService without hosts as a delegate (one that another
            # VirtualService's http[].delegate points to), with these restrictions
            for field, what in (("gateways", "gateways"), ("tls", "tls route"), ("tcp", "tcp route")):
                if getattr(self, field):
                    fail(f"a VirtualService needs at least one host (e.g. hosts: [reviews]); "
                         f"without hosts it is a delegate VirtualService, and a delegate "
                         f"virtual service must have no {what} specified")
            for index, route in enumerate(self.http):
                if route.delegate is not None:
                    fail("delegate HTTP route cannot contain delegate", "http", index, "delegate")
        applies_to_mesh = not self.gateways or "mesh" in self.gateways
        for index, host in enumerate(self.hosts):
            if host == "*" and applies_to_mesh:
                fail("wildcard host * is not allowed for virtual services bound to the mesh "
                     "gateway", "hosts", index)
            if host in self.hosts[:index]:
                fail(f"duplicate hosts in virtual service: {host} & {host}", "hosts", index)
        if not (self.http or self.tls or self.tcp):
            fail("http, tcp or tls must be provided in virtual service")
        return self

    @property
    def is_delegate(self) -> bool:
        """A VirtualService without hosts, used through another one's ``http[].delegate``."""
        return not self.hosts


class VirtualService(Resource):
    kind: Literal["VirtualService"]
    spec: VirtualServiceSpec


# --------------------------------------------------------------------------- DestinationRule


class HTTPCookie(IstioModel):
    class Attribute(IstioModel):
        name: str
        value: str | None = None

    name: str
    path: str | None = None
    ttl: Duration | None = None
    attributes: list[Attribute] = Field(default_factory=list)


class RingHash(IstioModel):
    minimum_ring_size: UInt64 | None = None


class MagLev(IstioModel):
    table_size: UInt64 | None = None


class ConsistentHashLB(IstioModel):
    http_header_name: str | None = None
    http_cookie: HTTPCookie | None = None
    use_source_ip: bool | None = None
    http_query_parameter_name: str | None = None
    ring_hash: RingHash | None = None
    maglev: MagLev | None = None
    minimum_ring_size: UInt64 | None = None  # deprecated

    @model_validator(mode="after")
    def _oneofs(self) -> ConsistentHashLB:
        _only_one(self, ("http_header_name", "http_cookie", "use_source_ip",
                         "http_query_parameter_name"), what="consistentHash")
        _only_one(self, ("ring_hash", "maglev"))
        return self


class LocalityDistribute(IstioModel):
    from_: str | None = Field(None, alias="from")
    to: dict[str, UInt32] = Field(default_factory=dict)


class LocalityFailover(IstioModel):
    from_: str | None = Field(None, alias="from")
    to: str | None = None


class LocalityLoadBalancerSetting(IstioModel):
    distribute: list[LocalityDistribute] = Field(default_factory=list)
    failover: list[LocalityFailover] = Field(default_factory=list)
    failover_priority: list[str] = Field(default_factory=list)
    enabled: bool | None = None


class WarmupConfiguration(IstioModel):
    duration: PositiveDuration
    minimum_percent: float | None = None
    aggression: float | None = None


LB_SIMPLE = ("UNSPECIFIED", "LEAST_CONN", "RANDOM", "PASSTHROUGH", "ROUND_ROBIN", "LEAST_REQUEST")


class LoadBalancerSettings(IstioModel):
    simple: Enum(*LB_SIMPLE) | None = None
    consistent_hash: ConsistentHashLB | None = None
    locality_lb_setting: LocalityLoadBalancerSetting | None = None
    warmup_duration_secs: AtLeast1msDuration | None = None
    warmup: WarmupConfiguration | None = None

    @model_validator(mode="after")
    def _policy(self) -> LoadBalancerSettings:
        _only_one(self, ("simple", "consistent_hash"), what="loadBalancer")
        return self


class TcpKeepalive(IstioModel):
    probes: UInt32 | None = None
    # validation.go validateConnectionPool: agent.ValidateDuration on time and interval
    time: PositiveDuration | None = None
    interval: PositiveDuration | None = None


class TCPSettings(IstioModel):
    max_connections: NonNegativeInt32 | None = None
    connect_timeout: PositiveDuration | None = None
    tcp_keepalive: TcpKeepalive | None = None
    max_connection_duration: PositiveDuration | None = None
    # not checked: "0s" disables it (validation.go 1.26+; the 1.23-1.25 CRDs wanted >= 1ms)
    idle_timeout: Duration | None = None


class HTTPSettings(IstioModel):
    http1_max_pending_requests: NonNegativeInt32 | None = None
    http2_max_requests: NonNegativeInt32 | None = None
    max_requests_per_connection: NonNegativeInt32 | None = None
    max_retries: NonNegativeInt32 | None = None
    idle_timeout: PositiveDuration | None = None
    h2_upgrade_policy: Enum("DEFAULT", "DO_NOT_UPGRADE", "UPGRADE") | None = None
    use_client_protocol: bool | None = None
    max_concurrent_streams: NonNegativeInt32 | None = None

    @model_validator(mode="after")
    def _upgrade(self) -> HTTPSettings:
        if self.h2_upgrade_policy == "UPGRADE" and self.use_client_protocol:
            fail("use client protocol must not be true when H2UpgradePolicy is UPGRADE")
        return self


class ConnectionPoolSettings(IstioModel):
    tcp: TCPSettings | None = None
    http: HTTPSettings | None = None

    @model_validator(mode="after")
    def _something(self) -> ConnectionPoolSettings:
        if self.tcp is None and self.http is None:
            fail("connection pool must have at least one field (tcp or http)")
        return self


class OutlierDetection(IstioModel):
    split_external_local_origin_errors: bool | None = None
    consecutive_local_origin_failures: UInt32 | None = None
    consecutive_gateway_errors: UInt32 | None = None
    consecutive_5xx_errors: UInt32 | None = Field(None, alias="consecutive5xxErrors")
    interval: PositiveDuration | None = None
    base_ejection_time: PositiveDuration | None = None
    max_ejection_percent: Annotated[int, AfterValidator(lambda v: v if 0 <= v <= 100 else fail(
        f"max ejection percent must be between 0 and 100, got {v}"))] | None = None
    min_health_percent: Annotated[int, AfterValidator(lambda v: v if 0 <= v <= 100 else fail(
        f"min health percent must be between 0 and 100, got {v}"))] | None = None
    # deprecated; an int32 whose sign Istio's webhook does not check (validation.go
    # validateOutlierDetection, 1.26.0, only warns), refused below 0 here: Envoy's
    # consecutive_gateway_failure it becomes is a uint32
    consecutive_errors: NonNegativeInt32 | None = None

    @model_validator(mode="after")
    def _local_origin(self) -> OutlierDetection:
        if self.consecutive_local_origin_failures and not self.split_external_local_origin_errors:
            fail("outlier detection consecutive local origin failures is specified, but split "
                 "external local origin errors is set to false")
        return self


class ClientTLSSettings(IstioModel):
    mode: Enum("DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL") | None = None
    client_certificate: str | None = None
    private_key: str | None = None
    ca_certificates: str | None = None
    credential_name: str | None = None
    subject_alt_names: list[str] = Field(default_factory=list)
    sni: str | None = None
    insecure_skip_verify: bool | None = None
    ca_crl: str | None = None

    @model_validator(mode="after")
    def _mutual(self) -> ClientTLSSettings:
        if self.mode in ("SIMPLE", "MUTUAL") and self.credential_name:
            if self.client_certificate or self.ca_certificates or self.private_key:
                fail("cannot specify client certificates or CA certificate If credentialName is set")
        elif self.mode == "MUTUAL":
            if not self.client_certificate:
                fail("client certificate required for mutual tls "
                     "(set credentialName, or clientCertificate and privateKey)")
            if not self.private_key:
                fail("private key required for mutual tls")
        return self


class PortTrafficPolicy(IstioModel):
    port: PortSelector
    load_balancer: LoadBalancerSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None
    outlier_detection: OutlierDetection | None = None
    tls: ClientTLSSettings | None = None

    @model_validator(mode="after")
    def _something(self) -> PortTrafficPolicy:
        if not self.model_fields_set - {"port"}:
            fail("port traffic policy must have at least one field")
        return self


def _tunnel_protocol(value: str) -> str:
    # validation.go validateTunnelSettings: "" (the default, CONNECT), "CONNECT" or "POST"
    if value not in ("", "CONNECT", "POST"):
        fail(f'tunnel protocol must be "CONNECT" or "POST", got {show(value)} '
             "(the value is case-sensitive)")
    return value


class TunnelSettings(IstioModel):
    protocol: Annotated[str, AfterValidator(_tunnel_protocol)] | None = None
    target_host: NonEmptyStr
    target_port: PortNumber


class ProxyProtocol(IstioModel):
    version: Enum("V1", "V2") | None = None


class RetryBudget(IstioModel):
    """``trafficPolicy.retryBudget`` (CRD 1.27+): ``percent`` is a plain double 0..100 (a
    DoubleValue, written ``percent: 20``), ``minRetryConcurrency`` a uint32."""

    percent: PercentValue | None = None
    min_retry_concurrency: UInt32 | None = None


class TrafficPolicy(IstioModel):
    load_balancer: LoadBalancerSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None
    outlier_detection: OutlierDetection | None = None
    tls: ClientTLSSettings | None = None
    port_level_settings: list[PortTrafficPolicy] = Field(default_factory=list)
    tunnel: TunnelSettings | None = None
    proxy_protocol: ProxyProtocol | None = None
    retry_budget: RetryBudget | None = None

    @model_validator(mode="after")
    def _something(self) -> TrafficPolicy:
        if not self.model_fields_set:
            fail("traffic policy must have at least one field")
        return self


class Subset(IstioModel):
    name: SubsetName
    labels: dict[str, str] = Field(default_factory=dict)
    traffic_policy: TrafficPolicy | None = None


class DestinationRuleSpec(IstioModel):
    host: Host
    traffic_policy: TrafficPolicy | None = None
    subsets: list[Subset] = Field(default_factory=list)
    export_to: list[str] = Field(default_factory=list)
    #: istio.type.v1beta1.WorkloadSelector: ``matchLabels``, not ``labels``
    workload_selector: PolicySelector | None = None

    @model_validator(mode="after")
    def _unique_subsets(self) -> DestinationRuleSpec:
        seen: set[str] = set()
        for index, subset in enumerate(self.subsets):
            if subset.name in seen:
                fail(f"duplicate subset names: {subset.name} (subset names must be unique "
                     "within a DestinationRule)", "subsets", index, "name")
            seen.add(subset.name)
        return self

    def subset(self, name: str) -> Subset | None:
        """The subset called ``name``, or None."""
        return next((s for s in self.subsets if s.name == name), None)


class DestinationRule(Resource):
    kind: Literal["DestinationRule"]
    spec: DestinationRuleSpec


# --------------------------------------------------------------------------- Gateway

TLS_VERSIONS = ("TLS_AUTO", "TLSV1_0", "TLSV1_1", "TLSV1_2", "TLSV1_3")
SERVER_TLS_MODES = ("PASSTHROUGH", "SIMPLE", "MUTUAL", "AUTO_PASSTHROUGH", "ISTIO_MUTUAL",
                    "OPTIONAL_MUTUAL")


class Port(IstioModel):
    """A Gateway server port: number, protocol, name."""

    number: PortNumber
    protocol: Protocol
    name: NonEmptyStr
    target_port: PortNumber | None = None


class TLSCertificate(IstioModel):
    server_certificate: str | None = None
    private_key: str | None = None
    ca_certificates: str | None = None


class ServerTLSSettings(IstioModel):
    https_redirect: bool | None = None
    mode: Enum(*SERVER_TLS_MODES) | None = None
    server_certificate: str | None = None
    private_key: str | None = None
    ca_certificates: str | None = None
    ca_crl: str | None = None
    credential_name: str | None = None
    credential_names: list[str] = Field(default_factory=list)
    tls_certificates: list[TLSCertificate] = Field(default_factory=list)
    ca_cert_credential_name: str | None = None
    subject_alt_names: list[str] = Field(default_factory=list)
    verify_certificate_spki: list[str] = Field(default_factory=list)
    verify_certificate_hash: list[str] = Field(default_factory=list)
    min_protocol_version: Enum(*TLS_VERSIONS) | None = None
    max_protocol_version: Enum(*TLS_VERSIONS) | None = None
    cipher_suites: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _certificates(self) -> ServerTLSSettings:
        # the CRD rules on servers[].tls and ingress[].tls (crd-all.gen.yaml 1.26.0+)
        given = self.model_fields_set
        if self.credential_name is not None and "credential_names" in given:
            fail("only one of credentialName or credentialNames can be set")
        if "credential_names" in given and "tls_certificates" in given:
            fail("only one of credentialNames or tlsCertificates can be set")
        # istio's validateTLSOptions, with its messages
        mode = self.effective_mode
        if mode == "ISTIO_MUTUAL":
            for field, what in (("server_certificate", "server certificate"),
                                ("private_key", "private key"), ("ca_certificates", "CA bundle"),
                                ("credential_name", "credentialName")):
                if getattr(self, field):
                    fail(f"ISTIO_MUTUAL TLS cannot have associated {what}")
            return self
        from_secret = self.credential_name or self.credential_names or self.tls_certificates
        if mode in ("SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL") and not from_secret:
            if not self.server_certificate:
                fail(f"{mode} TLS requires a server certificate (set credentialName to a "
                     "Kubernetes TLS secret, or serverCertificate and privateKey)")
            if not self.private_key:
                fail(f"{mode} TLS requires a private key")
            if mode != "SIMPLE" and not self.ca_certificates:
                fail(f"{mode} TLS requires a client CA bundle (caCertificates)")
        return self

    @property
    def effective_mode(self) -> str:
        """``mode``, defaulting to PASSTHROUGH as in the API."""
        return self.mode or "PASSTHROUGH"


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


class Server(IstioModel):
    port: Port
    bind: str | None = None
    hosts: list[NonEmptyStr] = Field(default_factory=list)
    tls: ServerTLSSettings | None = None
    default_endpoint: str | None = None
    name: str | None = None

    @model_validator(mode="after")
    def _hosts(self) -> Server:
        if not self.hosts:
            fail("server config must contain at least one host (e.g. hosts: ['*'])")
        for index, host in enumerate(self.hosts):
            dns_name = host.split("/", 1)[-1]
            if "/" in host and not host.split("/", 1)[0]:
                fail("config namespace and dnsName in host entry cannot be empty", "hosts", index)
            if dns_name != "*" and "." not in dns_name and not _is_ip(dns_name):
                fail(f"invalid host {show(host)}: short names (non FQDN) are not allowed "
                     "(use e.g. '*' or bookinfo.example.com)", "hosts", index)
        protocol = self.port.protocol.upper()
        is_tls = protocol in ("HTTPS", "TLS")
        if is_tls and self.tls is None:
            fail(f"server must have TLS settings for HTTPS/TLS protocols (add tls: {{mode: SIMPLE, "
                 f"credentialName: ...}} or use protocol HTTP)")
        if not is_tls and self.tls is not None:
            if protocol in ("HTTP", "HTTP2", "GRPC", "GRPC-WEB"):
                passthrough = self.tls.effective_mode in ("PASSTHROUGH", "AUTO_PASSTHROUGH")
                if not passthrough or self.tls.ca_certificates or self.tls.private_key \
                        or self.tls.server_certificate:
                    fail("server cannot have TLS settings for plain text HTTP ports", "tls")
            else:
                fail("server cannot have TLS settings for non HTTPS/TLS ports", "tls")
        return self


class GatewaySpec(IstioModel):
    servers: list[Server] = Field(default_factory=list)
    selector: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _servers(self) -> GatewaySpec:
        if not self.servers:
            fail("gateway must have at least one server")
        return self


class Gateway(Resource):
    kind: Literal["Gateway"]
    spec: GatewaySpec


# --------------------------------------------------------------------------- ServiceEntry


def _check_port_name(value: str) -> str:
    if not is_dns1123_label(value):
        fail(f"invalid port name: {show(value)} (use {DNS1123_LABEL_RULE})")
    return value


class ServicePort(IstioModel):
    """A ServiceEntry (or Sidecar) port."""

    number: PortNumber
    #: optional: empty means protocol sniffing (validation.go ValidateProtocol)
    protocol: Protocol | None = None
    name: Annotated[str, AfterValidator(_check_port_name)]
    target_port: PortNumber | None = None


UNIX_PREFIX = "unix://"


def unix_address_problem(path: str) -> str | None:
    """What is wrong with the path of a ``unix://`` address, or None (validation.go
    ValidateUnixAddress: an absolute path to a file, or an abstract socket ``@name``)."""
    if not path:
        return "unix address must not be empty"
    if path.startswith("@"):
        return None
    if not path.startswith("/") or path.endswith("/"):
        return f"{path} is not an absolute path to a file"
    return None


class WorkloadEntrySpec(IstioModel):
    """A WorkloadEntry's spec, and a ServiceEntry endpoint (the same message)."""

    address: str | None = None
    ports: dict[str, PortNumber] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    network: str | None = None
    locality: str | None = None
    weight: UInt32 | None = None
    service_account: str | None = None

    @model_validator(mode="after")
    def _address(self) -> WorkloadEntrySpec:
        # the CRD rules of WorkloadEntry spec and ServiceEntry endpoints[] (1.23.0+), in the
        # webhook's words where it has some (validation.go validateWorkloadEntry)
        if not self.address and not self.network:
            fail("address is required (or network, for an endpoint reached through that "
                 "network's gateway)")
        if self.address and self.address.startswith(UNIX_PREFIX):
            path = self.address[len(UNIX_PREFIX):]
            if not path.startswith(("/", "@")):
                fail(f"UDS must be an absolute path or abstract socket: {show(self.address)}",
                     "address")
            if path.endswith("/"):
                fail(f"UDS may not be a dir: {show(self.address)}", "address")
            if "ports" in self.model_fields_set:
                fail(f"UDS may not include ports (unix endpoint {self.address} must not "
                     "include ports)")
        return self


class WorkloadEntry(Resource):
    """A VM or other non-Kubernetes workload (networking.istio.io WorkloadEntry)."""

    kind: Literal["WorkloadEntry"]
    spec: WorkloadEntrySpec


class ServiceEntrySpec(IstioModel):
    hosts: list[Host] = Field(default_factory=list)
    addresses: list[str] = Field(default_factory=list)
    ports: list[ServicePort] = Field(default_factory=list)
    location: Enum("MESH_EXTERNAL", "MESH_INTERNAL") | None = None
    resolution: Enum("NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN", "DYNAMIC_DNS") | None = None
    endpoints: list[WorkloadEntrySpec] = Field(default_factory=list)
    workload_selector: WorkloadSelector | None = None
    export_to: list[str] = Field(default_factory=list)
    subject_alt_names: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _checks(self) -> ServiceEntrySpec:
        if not self.hosts:
            fail("service entry must have at least one host")
        for index, host in enumerate(self.hosts):
            if host == "*":
                fail("invalid host *", "hosts", index)
        for index, address in enumerate(self.addresses):
            try:
                ipaddress.ip_network(address, strict=False)
            except ValueError:
                fail(f"invalid IP address or CIDR block {show(address)}", "addresses", index)
        resolution = self.resolution or "NONE"
        if any("/" in a for a in self.addresses) and resolution not in ("NONE", "STATIC"):
            fail("CIDR addresses are allowed only for NONE/STATIC resolution types", "addresses")
        names: set[str] = set()
        numbers: set[int] = set()
        for index, port in enumerate(self.ports):
            if port.name in names:
                fail(f"service entry port name {port.name!r} already defined", "ports", index, "name")
            if port.number in numbers:
                fail(f"service entry port {port.number} already defined", "ports", index, "number")
            names.add(port.name)
            numbers.add(port.number)
        if self.endpoints and self.workload_selector is not None:
            fail("only one of WorkloadSelector or Endpoints is allowed in Service Entry")
        if resolution == "NONE" and self.endpoints:
            fail("no endpoints should be provided for resolution type none", "endpoints")
        if resolution == "STATIC":
            for index, endpoint in enumerate(self.endpoints):
                if endpoint.address and not endpoint.address.startswith("unix://") \
                        and not _is_ip(endpoint.address):
                    fail(f"endpoint address {show(endpoint.address)} is not a valid IP address "
                         "(STATIC resolution needs IP addresses)", "endpoints", index, "address")
                for name in endpoint.ports:
                    if name not in names:
                        fail(f"endpoint port {name} is not defined by the service entry",
                             "endpoints", index, "ports")
        if resolution in ("DNS", "DNS_ROUND_ROBIN") and not self.endpoints:
            for index, host in enumerate(self.hosts):
                if "*" in host:
                    fail(f"hosts must be FQDN if no endpoints are provided for resolution mode "
                         f"{resolution}", "hosts", index)
        if resolution == "DNS_ROUND_ROBIN" and len(self.endpoints) > 1:
            # the CRD rule (1.24.0+); the webhook says "there must only be 0 or 1 endpoint"
            fail("DNS_ROUND_ROBIN mode cannot have multiple endpoints (there must only be 0 or 1 "
                 "endpoint for resolution mode DNS_ROUND_ROBIN)", "endpoints")
        if resolution == "DYNAMIC_DNS":
            self._dynamic_dns()
        return self

    def _dynamic_dns(self) -> None:
        """validation.go (1.28.0) ValidateServiceEntry, case DYNAMIC_DNS (ztunnel and
        waypoints resolve the wildcard host per request)."""
        what = "for resolution type DYNAMIC_DNS"
        for index, host in enumerate(self.hosts):
            if not host.startswith("*"):
                fail("host must be wildcarded for resolution mode DYNAMIC_DNS "
                     "(e.g. *.example.com)", "hosts", index)
        if self.addresses:
            fail(f"addresses cannot be set {what}: HTTP route domains are generated from the "
                 "hosts only", "addresses")
        if self.endpoints:
            fail(f"endpoints cannot be set {what}: the destination IP address is resolved from "
                 "the hosts", "endpoints")
        for index, port in enumerate(self.ports):
            if (port.protocol or "").upper() != "HTTP":
                fail(f"only HTTP protocol is supported {what}", "ports", index, "protocol")
        if self.location != "MESH_EXTERNAL":
            fail(f"location must be MESH_EXTERNAL {what}", "location")


class ServiceEntry(Resource):
    kind: Literal["ServiceEntry"]
    spec: ServiceEntrySpec


# --------------------------------------------------------------------------- Sidecar


class SidecarPort(IstioModel):
    #: 0 only on an egress listener bound to a unix domain socket (checked by the listener)
    number: UInt32
    protocol: Protocol | None = None
    name: str | None = None
    target_port: PortNumber | None = None


CaptureMode = Enum("DEFAULT", "IPTABLES", "NONE")


def _port_range(port: SidecarPort) -> None:
    if not 1 <= port.number <= 65535:
        fail(f"a port number must be between 1 and 65535, got {port.number}", "port", "number")


class IstioIngressListener(IstioModel):
    port: SidecarPort
    bind: str | None = None
    capture_mode: CaptureMode | None = None
    default_endpoint: str | None = None
    tls: ServerTLSSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None

    @model_validator(mode="after")
    def _port(self) -> IstioIngressListener:
        _port_range(self.port)  # validation.go validateSidecarIngressPortAndBind
        return self


class IstioEgressListener(IstioModel):
    port: SidecarPort | None = None
    bind: str | None = None
    capture_mode: CaptureMode | None = None
    hosts: list[NonEmptyStr] = Field(default_factory=list)

    @model_validator(mode="after")
    def _hosts(self) -> IstioEgressListener:
        self._port_and_bind()
        if not self.hosts:
            fail("sidecar: egress listener must contain at least one host (e.g. hosts: ['./*'])")
        for index, host in enumerate(self.hosts):
            namespace, slash, dns_name = host.partition("/")
            if not slash:
                fail(f"invalid egress host {show(host)}: host must be of form namespace/dnsName "
                     "(e.g. ./* or istio-system/*)", "hosts", index)
            if not namespace or not dns_name:
                fail("config namespace and dnsName in host entry cannot be empty", "hosts", index)
            if namespace not in ("*", ".", "~") and not is_dns1123_label(namespace):
                fail(f"invalid namespace value {namespace!r} in sidecar", "hosts", index)
            if dns_name != "*" and "." not in dns_name:
                fail(f"invalid egress host {show(host)}: short names (non FQDN) are not allowed",
                     "hosts", index)
        return self

    def _port_and_bind(self) -> None:
        """validation.go validateSidecarEgressPortBindAndCaptureMode: port 0 is a listener
        on the unix domain socket named by ``bind``."""
        if self.port is None or self.port.number != 0:
            if self.port is not None:
                _port_range(self.port)
            return
        if not (self.bind or "").startswith(UNIX_PREFIX):
            fail("sidecar: ports with 0 value must have a unix domain socket bind address "
                 "(e.g. bind: unix:///var/run/app.sock)", "port", "number")
        problem = unix_address_problem(self.bind[len(UNIX_PREFIX):])
        if problem:
            fail(problem, "bind")
        if self.capture_mode not in (None, "DEFAULT", "NONE"):
            fail("sidecar: captureMode must be DEFAULT/NONE for unix domain socket listeners",
                 "captureMode")


class OutboundTrafficPolicy(IstioModel):
    mode: Enum("REGISTRY_ONLY", "ALLOW_ANY") | None = None
    egress_proxy: Destination | None = None

    @model_validator(mode="after")
    def _egress_proxy(self) -> OutboundTrafficPolicy:
        if self.egress_proxy is not None:
            if self.mode != "ALLOW_ANY":
                fail("sidecar: egress_proxy must be set only with ALLOW_ANY "
                     "outbound_traffic_policy mode", "egressProxy")
            if self.egress_proxy.port is None:
                fail("sidecar: egress_proxy port must be non-nil", "egressProxy")
        return self


class SidecarSpec(IstioModel):
    workload_selector: WorkloadSelector | None = None
    ingress: list[IstioIngressListener] = Field(default_factory=list)
    egress: list[IstioEgressListener] = Field(default_factory=list)
    inbound_connection_pool: ConnectionPoolSettings | None = None
    outbound_traffic_policy: OutboundTrafficPolicy | None = None

    @model_validator(mode="after")
    def _something(self) -> SidecarSpec:
        if not (self.egress or self.ingress or self.outbound_traffic_policy is not None
                or self.inbound_connection_pool is not None):
            fail("sidecar: empty configuration provided")
        return self


class Sidecar(Resource):
    kind: Literal["Sidecar"]
    spec: SidecarSpec = Field(default_factory=SidecarSpec)


# --------------------------------------------------------------------------- EnvoyFilter

APPLY_TO = ("LISTENER", "FILTER_CHAIN", "NETWORK_FILTER", "HTTP_FILTER", "ROUTE_CONFIGURATION",
            "VIRTUAL_HOST", "HTTP_ROUTE", "CLUSTER", "EXTENSION_CONFIG", "BOOTSTRAP",
            "LISTENER_FILTER")
PATCH_OPERATIONS = ("MERGE", "ADD", "REMOVE", "INSERT_BEFORE", "INSERT_AFTER", "INSERT_FIRST",
                    "REPLACE")


class ProxyMatch(IstioModel):
    proxy_version: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)


class SubFilterMatch(IstioModel):
    name: str | None = None


class FilterMatch(IstioModel):
    name: str | None = None
    sub_filter: SubFilterMatch | None = None


class FilterChainMatch(IstioModel):
    name: str | None = None
    sni: str | None = None
    transport_protocol: str | None = None
    application_protocols: str | None = None
    filter: FilterMatch | None = None
    destination_port: UInt32 | None = None


class ListenerMatch(IstioModel):
    port_number: UInt32 | None = None
    port_name: str | None = None  # deprecated
    filter_chain: FilterChainMatch | None = None
    listener_filter: str | None = None
    name: str | None = None


class EnvoyRouteMatch(IstioModel):
    name: str | None = None
    action: Enum("ANY", "ROUTE", "REDIRECT", "DIRECT_RESPONSE") | None = None


class VirtualHostMatch(IstioModel):
    name: str | None = None
    domain_name: str | None = None
    route: EnvoyRouteMatch | None = None


class RouteConfigurationMatch(IstioModel):
    port_number: UInt32 | None = None
    port_name: str | None = None
    gateway: str | None = None
    vhost: VirtualHostMatch | None = None
    name: str | None = None


class ClusterMatch(IstioModel):
    port_number: UInt32 | None = None
    service: str | None = None
    subset: str | None = None
    name: str | None = None


class EnvoyConfigObjectMatch(IstioModel):
    context: Enum("ANY", "SIDECAR_INBOUND", "SIDECAR_OUTBOUND", "GATEWAY") | None = None
    proxy: ProxyMatch | None = None
    listener: ListenerMatch | None = None
    route_configuration: RouteConfigurationMatch | None = None
    cluster: ClusterMatch | None = None

    @model_validator(mode="after")
    def _one_object(self) -> EnvoyConfigObjectMatch:
        _only_one(self, ("listener", "route_configuration", "cluster"))
        return self


class Patch(IstioModel):
    operation: Enum(*PATCH_OPERATIONS)
    value: dict[str, Any] | None = None
    filter_class: Enum("UNSPECIFIED", "AUTHN", "AUTHZ", "STATS") | None = None

    @model_validator(mode="after")
    def _value(self) -> Patch:
        if self.operation != "REMOVE" and self.value is None:
            fail(f"Envoy filter: missing patch value for non-remove operation ({self.operation})")
        return self


class EnvoyConfigObjectPatch(IstioModel):
    apply_to: Enum(*APPLY_TO)
    match: EnvoyConfigObjectMatch | None = None
    patch: Patch

    @model_validator(mode="after")
    def _match_fits(self) -> EnvoyConfigObjectPatch:
        match = self.match
        if match is None:
            return self
        has_object = (match.listener, match.route_configuration, match.cluster) != (None, None, None)
        if self.apply_to in ("LISTENER", "FILTER_CHAIN", "NETWORK_FILTER", "HTTP_FILTER") and has_object:
            if match.listener is None:
                fail("Envoy filter: applyTo for listener class objects cannot have non listener "
                     "match", "match")
            chain = match.listener.filter_chain
            if chain is not None and chain.filter is not None:
                if not chain.filter.name:
                    fail("Envoy filter: filter match has no name to match on",
                         "match", "listener", "filterChain", "filter")
                if chain.filter.sub_filter is not None and self.apply_to != "HTTP_FILTER":
                    fail("Envoy filter: subfilter match can be used with applyTo HTTP_FILTER only",
                         "match", "listener", "filterChain", "filter", "subFilter")
        if self.apply_to in ("ROUTE_CONFIGURATION", "VIRTUAL_HOST", "HTTP_ROUTE") and has_object \
                and match.route_configuration is None:
            fail("Envoy filter: applyTo for http route class objects cannot have non route "
                 "configuration match", "match")
        if self.apply_to == "CLUSTER" and has_object and match.cluster is None:
            fail("Envoy filter: applyTo for cluster class objects cannot have non cluster match",
                 "match")
        return self


class EnvoyFilterSpec(IstioModel):
    workload_selector: WorkloadSelector | None = None
    target_refs: list[PolicyTargetReference] = Field(default_factory=list)
    config_patches: list[EnvoyConfigObjectPatch] = Field(default_factory=list)
    priority: Int32 | None = None

    @model_validator(mode="after")
    def _one_selector(self) -> EnvoyFilterSpec:
        # the CRD rule on EnvoyFilter spec (crd-all.gen.yaml 1.24.0+)
        if self.workload_selector is not None and "target_refs" in self.model_fields_set:
            fail("only one of targetRefs or workloadSelector can be set")
        return self


class EnvoyFilter(Resource):
    kind: Literal["EnvoyFilter"]
    spec: EnvoyFilterSpec
