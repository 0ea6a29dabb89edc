"""security.istio.io: PeerAuthentication, AuthorizationPolicy, RequestAuthentication.

The apiVersions v1 and v1beta1 share these models. ``spec`` may be omitted or empty:
an AuthorizationPolicy with ``spec: {}`` is the "allow nothing" policy of the labs.
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from .base import (
    Duration,
    Enum,
    IstioModel,
    PolicySelector,
    PolicyTargetReference,
    Resource,
    fail,
    show,
)

# --------------------------------------------------------------------------- PeerAuthentication


class MutualTLS(IstioModel):
    mode: Enum("UNSET", "DISABLE", "PERMISSIVE", "STRICT") | None = None


def _port_keys(value: Any) -> Any:
    """portLevelMtls keys are port numbers; YAML gives ints, JSON gives strings."""
    if not isinstance(value, dict):
        return value
    converted = {}
    for key, item in value.items():
        if isinstance(key, str) and key.strip().isdigit():
            key = int(key)
        if not isinstance(key, int) or isinstance(key, bool) or not 1 <= key <= 65535:
            fail(f"invalid port {show(key)}: portLevelMtls keys are port numbers (1..65535)")
        converted[key] = item
    return converted


class PeerAuthenticationSpec(IstioModel):
    selector: PolicySelector | None = None
    mtls: MutualTLS | None = None
    port_level_mtls: Annotated[dict[int, MutualTLS], BeforeValidator(_port_keys)] = Field(
        default_factory=dict)

    @model_validator(mode="after")
    def _port_level_needs_selector(self) -> PeerAuthenticationSpec:
        if self.port_level_mtls and (self.selector is None or not self.selector.match_labels):
            fail("mesh/namespace peer authentication cannot have port level mTLS (add a "
                 "selector with matchLabels)", "portLevelMtls")
        if "port_level_mtls" in self.model_fields_set and not self.port_level_mtls:
            fail("port level mTLS, if defined, must have at least one element", "portLevelMtls")
        return self


class PeerAuthentication(Resource):
    kind: Literal["PeerAuthentication"]
    spec: PeerAuthenticationSpec = Field(default_factory=PeerAuthenticationSpec)


# --------------------------------------------------------------------------- AuthorizationPolicy


def _ip_list(name: str):
    def check(values: list[str]) -> list[str]:
        for index, value in enumerate(values):
            try:
                ipaddress.ip_network(value, strict=False)
            except ValueError:
                fail(f"invalid IP address or CIDR block {show(value)} in {name}", index)
        return values

    return AfterValidator(check)


def _port_list(values: list[str]) -> list[str]:
    for index, value in enumerate(values):
        if not (value.isdigit() and 0 <= int(value) <= 65535):
            fail(f"invalid port {show(value)}: ports are numbers written as strings, e.g. \"8080\"",
                 index)
    return values


class Source(IstioModel):
    principals: list[str] = Field(default_factory=list)
    not_principals: list[str] = Field(default_factory=list)
    request_principals: list[str] = Field(default_factory=list)
    not_request_principals: list[str] = Field(default_factory=list)
    namespaces: list[str] = Field(default_factory=list)
    not_namespaces: list[str] = Field(default_factory=list)
    ip_blocks: Annotated[list[str], _ip_list("ipBlocks")] = Field(default_factory=list)
    not_ip_blocks: Annotated[list[str], _ip_list("notIpBlocks")] = Field(default_factory=list)
    remote_ip_blocks: Annotated[list[str], _ip_list("remoteIpBlocks")] = Field(default_factory=list)
    not_remote_ip_blocks: Annotated[list[str], _ip_list("notRemoteIpBlocks")] = Field(
        default_factory=list)
    service_accounts: list[str] = Field(default_factory=list)
    not_service_accounts: list[str] = Field(default_factory=list)


class Operation(IstioModel):
    hosts: list[str] = Field(default_factory=list)
    not_hosts: list[str] = Field(default_factory=list)
    ports: Annotated[list[str], AfterValidator(_port_list)] = Field(default_factory=list)
    not_ports: Annotated[list[str], AfterValidator(_port_list)] = Field(default_factory=list)
    methods: list[str] = Field(default_factory=list)
    not_methods: list[str] = Field(default_factory=list)
    paths: list[str] = Field(default_factory=list)
    not_paths: list[str] = Field(default_factory=list)


def _empty_values(model: IstioModel) -> None:
    """istio's CheckEmptyValues: no "" in the lists of a source or operation."""
    for name, field in type(model).model_fields.items():
        values = getattr(model, name)
        if isinstance(values, list) and "" in values:
            fail(f"empty value not allowed, found in {field.alias or name}", field.alias or name,
                 values.index(""))


class RuleFrom(IstioModel):
    source: Source | None = None

    @model_validator(mode="after")
    def _source(self) -> RuleFrom:
        src = self.source
        if src is None:
            fail("`from.source` must not be nil (e.g. source: {namespaces: [foo]})")
        if not any(getattr(src, name) for name in type(src).model_fields):
            fail("`from.source` must not be empty (e.g. source: {namespaces: [foo]})", "source")
        if (src.principals or src.not_principals or src.namespaces or src.not_namespaces) \
                and (src.service_accounts or src.not_service_accounts):
            fail("cannot set serviceAccounts with namespaces or principals", "source")
        _empty_values(src)
        return self


class RuleTo(IstioModel):
    operation: Operation | None = None

    @model_validator(mode="after")
    def _operation(self) -> RuleTo:
        op = self.operation
        if op is None:
            fail("`to.operation` must not be nil (e.g. operation: {methods: [GET]})")
        if not any(getattr(op, name) for name in type(op).model_fields):
            fail("`to.operation` must not be empty (e.g. operation: {methods: [GET]})", "operation")
        _empty_values(op)
        return self


#: exact condition keys istio accepts (security.ValidateAttribute)
CONDITION_KEYS = (
    "source.ip", "remote.ip", "source.namespace", "source.principal", "source.serviceAccount",
    "request.auth.principal", "request.auth.audiences", "request.auth.presenter",
    "destination.ip", "destination.port", "connection.sni",
)
#: condition key prefixes that take a [name] suffix
CONDITION_MAP_KEYS = ("request.headers", "request.auth.claims")
_MAP_KEY = re.compile(r"(request\.headers|request\.auth\.claims)\[[^\[\]]+\](\[[^\[\]]+\])*")


class Condition(IstioModel):
    key: str
    values: list[str] = Field(default_factory=list)
    not_values: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _attribute(self) -> Condition:
        # istio's ValidateAttribute, with its messages
        key = self.key
        if not key:
            fail("`key` must not be empty", "key")
        if not self.values and not self.not_values:
            fail(f"at least one of `values` or `notValues` must be set for key {key}")
        if key.startswith(CONDITION_MAP_KEYS):
            if not _MAP_KEY.fullmatch(key):
                fail(f"invalid `value` for `key` {key}: invalid key: {key} (write it like "
                     "request.headers[user-agent])", "key")
        elif key.startswith("experimental.envoy.filters."):
            pass
        elif key not in CONDITION_KEYS:
            fail(f"invalid `value` for `key` {key}: unknown attribute: {key} (supported: "
                 f"{', '.join(CONDITION_KEYS)}, request.headers[<name>], "
                 "request.auth.claims[<name>])", "key")
        if key in ("source.ip", "remote.ip", "destination.ip"):
            for field, values in (("values", self.values), ("notValues", self.not_values)):
                for index, value in enumerate(values):
                    try:
                        ipaddress.ip_network(value, strict=False)
                    except ValueError:
                        fail(f"invalid IP address or CIDR block {show(value)} for {key}",
                             field, index)
        if key == "destination.port":
            for field, values in (("values", self.values), ("notValues", self.not_values)):
                for index, value in enumerate(values):
                    if not (value.isdigit() and int(value) <= 65535):
                        fail(f"invalid port {show(value)} for destination.port", field, index)
        return self


class Rule(IstioModel):
    """One rule: all of ``from``, ``to`` and ``when`` must match. ``{}`` matches anything."""

    from_: list[RuleFrom] = Field(default_factory=list, alias="from")
    to: list[RuleTo] = Field(default_factory=list)
    when: list[Condition] = Field(default_factory=list)


class ExtensionProvider(IstioModel):
    name: str


def _one_selector(spec: Any) -> None:
    chosen = [name for name, value in (("selector", spec.selector), ("targetRef", spec.target_ref),
                                       ("targetRefs", spec.target_refs)) if value]
    if len(chosen) > 1:
        fail(f"only one of selector, targetRef or targetRefs can be set (found "
             f"{' and '.join(chosen)})")


class AuthorizationPolicySpec(IstioModel):
    selector: PolicySelector | None = None
    target_ref: PolicyTargetReference | None = None
    target_refs: list[PolicyTargetReference] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)
    action: Enum("ALLOW", "DENY", "AUDIT", "CUSTOM") | None = None
    provider: ExtensionProvider | None = None

    @model_validator(mode="after")
    def _checks(self) -> AuthorizationPolicySpec:
        # istio's ValidateAuthorizationPolicy, with its messages
        _one_selector(self)
        action = self.effective_action
        if action in ("CUSTOM", "DENY") and "rules" not in self.model_fields_set:
            fail(f"{action} action without `rules` is meaningless as it will never be "
                 "triggered, add an empty rule `{}` if you want it be triggered for every request")
        if action == "CUSTOM":
            if self.provider is None or not self.provider.name:
                fail("`provider.name` must not be empty")
            for index, rule in enumerate(self.rules):
                for source in (f.source for f in rule.from_ if f.source is not None):
                    for field in ("namespaces", "not_namespaces", "service_accounts",
                                  "not_service_accounts", "principals", "not_principals",
                                  "request_principals", "not_request_principals"):
                        if getattr(source, field):
                            name = Source.model_fields[field].alias
                            fail(f"From.{name[0].upper()}{name[1:]} is currently not supported "
                                 "with CUSTOM action", "rules", index)
                for condition in rule.when:
                    if condition.key in ("source.namespace", "source.serviceAccount",
                                         "source.principal") \
                            or condition.key.startswith("request.auth."):
                        fail(f"{condition.key} is currently not supported with CUSTOM action",
                             "rules", index)
        elif self.provider is not None:
            fail(f"`provider` must not be with non CUSTOM action, found {action}", "provider")
        for index, rule in enumerate(self.rules):
            for field, alias in (("from_", "from"), ("to", "to")):
                if field in rule.model_fields_set and not getattr(rule, field):
                    fail(f"`{alias}` must not be empty, found at rule {index}", "rules", index, alias)
        return self

    @property
    def effective_action(self) -> str:
        """``action``, defaulting to ALLOW."""
        return self.action or "ALLOW"


class AuthorizationPolicy(Resource):
    kind: Literal["AuthorizationPolicy"]
    spec: AuthorizationPolicySpec = Field(default_factory=AuthorizationPolicySpec)


# --------------------------------------------------------------------------- RequestAuthentication


class JWTHeader(IstioModel):
    name: Annotated[str, AfterValidator(lambda v: v or fail(
        "location header name must be non-empty string"))]
    prefix: str | None = None


class ClaimToHeader(IstioModel):
    header: str
    claim: str

    @model_validator(mode="after")
    def _non_empty(self) -> ClaimToHeader:
        if not self.header or not self.claim:
            fail("outputClaimToHeaders header and claim value must be non-empty string")
        return self


class JWTRule(IstioModel):
    # the RequestAuthentication CRD lists the proto name jwks_uri beside jwksUri
    _legacy_keys: ClassVar[dict[str, str]] = {"jwks_uri": "jwks_uri"}

    issuer: str | None = None
    audiences: list[str] = Field(default_factory=list)
    jwks_uri: str | None = None
    jwks: str | None = None
    from_headers: list[JWTHeader] = Field(default_factory=list)
    from_params: list[str] = Field(default_factory=list)
    from_cookies: list[str] = Field(default_factory=list)
    output_payload_to_header: str | None = None
    forward_original_token: bool | None = None
    output_claim_to_headers: list[ClaimToHeader] = Field(default_factory=list)
    timeout: Duration | None = None
    space_delimited_claims: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _checks(self) -> JWTRule:
        if self.jwks_uri is not None and self.jwks is not None:
            fail("only one of jwks or jwksUri can be set")  # CRD rule on jwtRules[] (1.23.0+)
        if not self.issuer and not self.jwks_uri:
            fail("issuer or jwksUri must be non-empty string")
        if "" in self.audiences:
            fail("audience must be non-empty string", "audiences", self.audiences.index(""))
        if "" in self.from_params:
            fail("location query must be non-empty string", "fromParams")
        if "" in self.from_cookies:
            fail("cookie name must be non-empty string", "fromCookies")
        if self.jwks_uri and not re.match(r"https?://[^/\s]+", self.jwks_uri):
            fail(f"invalid jwksUri {show(self.jwks_uri)}: use an http(s) URL", "jwksUri")
        if self.jwks is not None:
            _check_jwks(self.jwks)
        if self.timeout is not None and self.timeout.seconds < 0.001:
            fail("duration must be greater than 1ms", "timeout")
        return self


def _check_jwks(text: str) -> None:
    """istio's validateJwtRule parses ``jwks`` as a JSON Web Key Set (``jwks parse
    error``): a JSON object with a ``keys`` list of keys, each naming its ``kty``."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        fail(f"jwks parse error: not JSON ({exc}); give the JSON Web Key Set itself, e.g. "
             "jwks: '{\"keys\": [{\"kty\": \"RSA\", ...}]}'", "jwks")
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list) or not keys:
        fail("jwks parse error: a JSON Web Key Set is an object with a non-empty \"keys\" "
             "list", "jwks")
    for index, key in enumerate(keys):
        if not isinstance(key, dict) or not isinstance(key.get("kty"), str):
            fail(f"jwks parse error: key {index} has no \"kty\" (RSA, EC, oct, OKP)", "jwks")


class RequestAuthenticationSpec(IstioModel):
    selector: PolicySelector | None = None
    target_ref: PolicyTargetReference | None = None
    target_refs: list[PolicyTargetReference] = Field(default_factory=list)
    jwt_rules: list[JWTRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _checks(self) -> RequestAuthenticationSpec:
        _one_selector(self)
        return self


class RequestAuthentication(Resource):
    kind: Literal["RequestAuthentication"]
    spec: RequestAuthenticationSpec = Field(default_factory=RequestAuthenticationSpec)
