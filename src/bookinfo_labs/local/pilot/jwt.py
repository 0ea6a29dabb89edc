"""RequestAuthentication -> Envoy's ``jwt_authn`` filter, on inbound listeners and
gateways.

Every jwtRule of the RequestAuthentications selecting the proxy (sorted by issuer) is a
provider ``origins-<i>``; one rule on ``/`` accepts a request with no token or with one
any provider verifies. Envoy verifies the token and answers 401 itself; what it verified
lands in the ``payload`` dynamic metadata, where the RBAC filter reads ``iss``, ``sub``
and the claims (the requestPrincipals of an AuthorizationPolicy). The JWKS is inline:
istiod fetches a ``jwksUri`` itself and inlines it; the local mesh has no internet, so it
takes ``jwks`` only (LocalMesh refuses ``jwksUri``). Sources: pilot/pkg/security/authn/
policy_applier.go (convertToEnvoyJwtConfig), plugin/authn/authentication.go
(docs/facts.md#jwt).
"""

from __future__ import annotations

from typing import Any

from .authz import selecting
from .model import MeshView, ProxyView

_JWT_AUTHN = "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication"


def http_filters(mesh: MeshView, proxy: ProxyView) -> list[dict]:
    """The ``envoy.filters.http.jwt_authn`` filter of the RequestAuthentications selecting
    ``proxy``; none without a jwtRule."""
    rules = sorted((rule for config in selecting(mesh, proxy, "RequestAuthentication")
                    if not config.spec.target_ref and not config.spec.target_refs
                    for rule in config.spec.jwt_rules), key=lambda r: r.issuer or "")
    if not rules:
        return []
    # a gateway's routes may depend on the claims, so it re-picks the route after verifying
    providers = {f"origins-{i}": _provider(rule, clear_route_cache=proxy.is_gateway)
                 for i, rule in enumerate(rules)}
    optional = [{"requires_any": {"requirements": [{"provider_name": name},
                                                   {"allow_missing": {}}]}}
                for name in providers]
    if len(optional) == 1:
        requires = optional[0]
    else:  # any one provider, or each one's token valid or missing
        requires = {"requires_any": {"requirements": [
            *({"provider_name": name} for name in providers),
            {"requires_all": {"requirements": optional}}]}}
    return [{"name": "envoy.filters.http.jwt_authn", "typed_config": {
        "@type": _JWT_AUTHN, "providers": providers,
        "rules": [{"match": {"prefix": "/"}, "requires": requires}],
        "bypass_cors_preflight": True}}]


def _provider(rule: Any, *, clear_route_cache: bool) -> dict:
    provider: dict[str, Any] = {"issuer": rule.issuer or ""}
    if rule.audiences:
        provider["audiences"] = list(rule.audiences)
    if rule.forward_original_token:
        provider["forward"] = True
    if rule.output_payload_to_header:
        provider["forward_payload_header"] = rule.output_payload_to_header
    if rule.output_claim_to_headers:
        provider["claim_to_headers"] = [{"header_name": c.header, "claim_name": c.claim}
                                        for c in rule.output_claim_to_headers]
    if rule.from_headers:
        provider["from_headers"] = [{"name": h.name, **({"value_prefix": h.prefix}
                                                          if h.prefix else {})}
                                    for h in rule.from_headers]
    if rule.from_params:
        provider["from_params"] = list(rule.from_params)
    if rule.from_cookies:
        provider["from_cookies"] = list(rule.from_cookies)
    provider["payload_in_metadata"] = "payload"
    provider["normalize_payload_in_metadata"] = {"space_delimited_claims": ["scope",
                                                                            "permission"]}
    if clear_route_cache:
        provider["clear_route_cache"] = True
    provider["local_jwks"] = {"inline_string": rule.jwks or ""}
    return provider
