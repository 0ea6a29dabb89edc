"""AuthorizationPolicy -> Envoy's RBAC filters, on inbound listeners and gateways.

A policy selects a proxy by its namespace (the root namespace, istio-system, is every
namespace) and ``selector.matchLabels``. The policies of one action make one filter, in
Istio's order AUDIT, DENY, ALLOW; a rule is the RBAC policy ``ns[<ns>]-policy[<name>]-
rule[<i>]``: one permission per ``to`` (its fields ANDed, their values ORed), one principal
per ``from``, the ``when`` conditions ANDed onto both. Envoy evaluates them and answers a
denial itself (403 ``RBAC: access denied``). Sources: pilot/pkg/security/authz/builder/
builder.go, authz/model/{model,generator}.go, authz/matcher/*.go
(docs/facts.md#authorization).
"""

from __future__ import annotations

import copy
import ipaddress
import re
from typing import Any, Callable

from .model import ConfigView, MeshView, ProxyView
from .names import ROOT_NAMESPACE

JWT_FILTER = "envoy.filters.http.jwt_authn"
_HTTP_RBAC = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
_TCP_RBAC = "type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC"
_URI_TEMPLATE = "type.googleapis.com/envoy.extensions.path.match.uri_template.v3." \
                "UriTemplateMatchConfig"
#: the RBAC action of each Istio action, in the order the filters run
_ACTIONS = (("AUDIT", "LOG"), ("DENY", "DENY"), ("ALLOW", "ALLOW"))
#: an ALLOW policy without rules: a policy that never matches, so nothing is allowed
_MATCH_NEVER = {"permissions": [{"not_rule": {"any": True}}],
                "principals": [{"not_id": {"any": True}}]}


class HttpOnly(Exception):
    """An HTTP attribute in a rule for a TCP filter chain (generator.go ``is HTTP only``)."""


def selecting(mesh: MeshView, proxy: ProxyView, kind: str) -> list[ConfigView]:
    """The ``kind`` policies (AuthorizationPolicy, RequestAuthentication) that apply to
    ``proxy``: the root namespace's and its own namespace's, without a selector or with
    one its labels match; oldest first."""
    def applies(config: ConfigView) -> bool:
        if config.namespace not in (ROOT_NAMESPACE, proxy.namespace):
            return False
        selector = config.spec.selector
        labels = (selector.match_labels if selector is not None else None) or {}
        return all(proxy.labels.get(k) == v for k, v in labels.items())

    return [c for c in mesh.of_kind(kind) if applies(c)]


def http_filters(mesh: MeshView, proxy: ProxyView) -> list[dict]:
    """The ``envoy.filters.http.rbac`` filters of the policies selecting ``proxy``."""
    return [{"name": "envoy.filters.http.rbac",
             "typed_config": {"@type": _HTTP_RBAC, "rules": rules}}
            for rules in _rules(mesh, proxy, for_tcp=False)]


def network_filters(mesh: MeshView, proxy: ProxyView) -> list[dict]:
    """The ``envoy.filters.network.rbac`` filters of a TCP filter chain: the same policies,
    the HTTP-only attributes handled as istiod does (an ALLOW rule using one never
    matches; in a DENY or AUDIT rule the attribute is left out)."""
    return [{"name": "envoy.filters.network.rbac",
             "typed_config": {"@type": _TCP_RBAC, "rules": rules, "stat_prefix": "tcp."}}
            for rules in _rules(mesh, proxy, for_tcp=True)]


def _rules(mesh: MeshView, proxy: ProxyView, *, for_tcp: bool) -> list[dict]:
    policies = [p for p in selecting(mesh, proxy, "AuthorizationPolicy")
                if not p.spec.target_ref and not p.spec.target_refs]
    out = []
    for action, rbac_action in _ACTIONS:
        chosen = [p for p in policies if p.spec.effective_action == action]
        if not chosen:
            continue
        built: dict[str, dict] = {}
        for policy in chosen:
            if not policy.spec.rules:
                built[_key(policy, 0)] = copy.deepcopy(_MATCH_NEVER)
            for index, rule in enumerate(policy.spec.rules):
                try:
                    built[_key(policy, index)] = _policy(policy, rule, for_tcp, action)
                except HttpOnly:  # builder.go: the rule is skipped on this chain
                    continue
        rules: dict[str, Any] = {"policies": dict(sorted(built.items()))}
        if rbac_action != "ALLOW":  # ALLOW is the enum's zero value, left out of JSON
            rules = {"action": rbac_action, **rules}
        out.append(rules)
    return out


def _key(policy: ConfigView, index: int) -> str:
    return f"ns[{policy.namespace}]-policy[{policy.name}]-rule[{index}]"


# -- one rule -> one RBAC policy (authz/model/model.go New and Generate) ------------------

_PRINCIPAL = ("or_ids", "ids", "not_id")
_PERMISSION = ("or_rules", "rules", "not_rule")


def _policy(policy: ConfigView, rule: Any, for_tcp: bool, action: str) -> dict:
    when = [(c.key, c.values, c.not_values) for c in rule.when]
    base_principal = [w for w in when if _CONDITIONS[_attribute(w[0])][0] is _PRINCIPAL]
    base_permission = [w for w in when if _CONDITIONS[_attribute(w[0])][0] is _PERMISSION]

    def principal(fields: list[tuple]) -> dict:
        return _and("and_ids", "ids", [
            m for key, values, not_values in fields + base_principal
            for m in _matchers(key, values, not_values, for_tcp, action, policy.namespace)])

    def permission(fields: list[tuple]) -> dict:
        return _and("and_rules", "rules", [
            m for key, values, not_values in fields + base_permission
            for m in _matchers(key, values, not_values, for_tcp, action, policy.namespace)])

    principals = [principal([  # Istio inserts each at the front: this is its final order
        ("source.principal", s.principals, s.not_principals),
        ("request.auth.principal", s.request_principals, s.not_request_principals),
        ("source.serviceAccount", s.service_accounts, s.not_service_accounts),
        ("source.namespace", s.namespaces, s.not_namespaces),
        ("remote.ip", s.remote_ip_blocks, s.not_remote_ip_blocks),
        ("source.ip", s.ip_blocks, s.not_ip_blocks),
    ]) for s in (f.source for f in rule.from_)] or [principal([])]
    permissions = [permission([
        ("operation.hosts", o.hosts, o.not_hosts),
        ("operation.methods", o.methods, o.not_methods),
        ("operation.paths", o.paths, o.not_paths),
        ("destination.port", o.ports, o.not_ports),
    ]) for o in (t.operation for t in rule.to)] or [permission([])]
    return {"permissions": permissions, "principals": principals}


def _and(kind: str, items: str, matchers: list[dict]) -> dict:
    return {kind: {items: matchers or [{"any": True}]}}


def _matchers(key: str, values: list[str], not_values: list[str], for_tcp: bool, action: str,
              namespace: str) -> list[dict]:
    """One field's matchers: its values ORed, its not-values ORed and negated. An HTTP-only
    field on a TCP chain drops the whole rule for ALLOW, only itself for DENY and AUDIT
    (model.go checkError)."""
    side, generator, per_value = _CONDITIONS[_attribute(key)]
    or_kind, items, not_kind = side
    out = []
    try:
        for chosen, negate in ((values, False), (not_values, True)):
            if not chosen:
                continue
            if for_tcp and _attribute(key) in _HTTP_ONLY:
                raise HttpOnly(key)
            if per_value:
                matcher = {or_kind: {items: [generator(key, v, namespace) for v in chosen]}}
            else:  # the JWT attributes: one matcher for all the values
                matcher = generator(key, chosen, namespace)
            out.append({not_kind: matcher} if negate else matcher)
    except HttpOnly:
        if action == "ALLOW":
            raise
        return []
    return out


def _attribute(key: str) -> str:
    """A condition key without its ``[name]``: ``request.headers[user-agent]`` ->
    ``request.headers``."""
    return key.split("[", 1)[0]


def _names(key: str) -> list[str]:
    """The bracketed names of ``request.auth.claims[a][b]``: ``["a", "b"]``."""
    return re.findall(r"\[([^\[\]]+)\]", key)


# -- matchers (authz/matcher: string.go, header.go, metadata.go) ---------------------------

def _string(value: str, prefix: str = "") -> dict:
    """StringMatcherWithPrefix: ``*`` any, ``*x`` suffix, ``x*`` prefix, else exact."""
    if value == "*":
        return {"safe_regex": {"regex": ".+"}}
    if value.startswith("*"):
        return {"safe_regex": {"regex": prefix + ".*" + value[1:]}} if prefix else \
            {"suffix": value[1:]}
    if value.endswith("*"):
        return {"prefix": prefix + value[:-1]}
    return {"exact": prefix + value}


def _header_matcher(name: str, value: str, ignore_case: bool = False) -> dict:
    if value == "*":
        return {"name": name, "present_match": True}
    match = _string(value)
    if ignore_case:
        match["ignore_case"] = True
    return {"name": name, "string_match": match}


def _cidr(value: str) -> dict:
    network = ipaddress.ip_network(value, strict=False)
    address = value.split("/", 1)[0]
    return {"address_prefix": address, "prefix_len": network.prefixlen}


def _jwt_claim(path: list[str], values: list[str]) -> dict:
    """A claim of the jwt_authn payload equal to one of ``values``, or a list containing
    one (MetadataListValueMatcher with the extended JWT form)."""
    strings = [{"string_match": _string(v)} for v in values]
    value = strings[0] if len(strings) == 1 else {"or_match": {"value_matchers": strings}}
    return {"metadata": {"filter": JWT_FILTER, "path": [{"key": "payload"}] + [
        {"key": k} for k in path], "value": {"or_match": {"value_matchers": [
            {"list_match": {"one_of": value}}, value]}}}}


def _claim_string(claim: str, match: dict) -> dict:
    return {"metadata": {"filter": JWT_FILTER, "path": [{"key": "payload"}, {"key": claim}],
                         "value": {"string_match": match}}}


def _request_principal(_key: str, values: list[str], _ns: str) -> dict:
    """``<iss>/<sub>`` (split at the last ``/``): the jwt_authn payload's iss AND sub."""
    any_ = {"safe_regex": {"regex": ".+"}}
    out = []
    for value in values:
        iss, found, sub = value.rpartition("/")
        if not found:
            iss, sub = value, ""
        if value == "*":
            match_iss, match_sub = any_, any_
        elif value.startswith("*"):
            if found:
                match_iss = any_ if iss == "*" else {"suffix": iss[1:]}
                match_sub = {"exact": sub}
            else:
                match_iss, match_sub = any_, {"suffix": value[1:]}
        elif value.endswith("*"):
            if found:
                match_iss = {"exact": iss}
                match_sub = any_ if sub == "*" else {"prefix": sub[:-1]}
            else:
                match_iss, match_sub = {"prefix": value[:-1]}, any_
        else:
            match_iss, match_sub = {"exact": iss}, {"exact": sub}
        out.append({"and_ids": {"ids": [_claim_string("iss", match_iss),
                                        _claim_string("sub", match_sub)]}})
    return out[0] if len(out) == 1 else {"or_ids": {"ids": out}}


def _service_account_regex(policy_namespace: str, value: str) -> str:
    namespace, found, account = value.partition("/")
    if not found:
        namespace, account = policy_namespace, value
    return f"spiffe://.+/ns/{namespace}/(.+/|)sa/{account}(/.+)?"


#: attribute -> (side, generator, per value?). Per-value generators give one matcher per
#: value (ORed); the JWT ones take all the values at once (generator.go extended*).
_CONDITIONS: dict[str, tuple[tuple, Callable, bool]] = {
    "source.principal": (_PRINCIPAL, lambda k, v, ns: {"authenticated": {
        "principal_name": _string(v, "spiffe://")}}, True),
    "source.namespace": (_PRINCIPAL, lambda k, v, ns: {"authenticated": {"principal_name": {
        "safe_regex": {"regex": f".*/ns/{v.replace('*', '.*')}/.*"}}}}, True),
    "source.serviceAccount": (_PRINCIPAL, lambda k, v, ns: {"authenticated": {
        "principal_name": {"safe_regex": {"regex": _service_account_regex(ns, v)}}}}, True),
    "source.ip": (_PRINCIPAL, lambda k, v, ns: {"direct_remote_ip": _cidr(v)}, True),
    "remote.ip": (_PRINCIPAL, lambda k, v, ns: {"remote_ip": _cidr(v)}, True),
    "request.headers": (_PRINCIPAL, lambda k, v, ns: {"header": _header_matcher(
        _names(k)[0], v)}, True),
    "request.auth.principal": (_PRINCIPAL, _request_principal, False),
    "request.auth.audiences": (_PRINCIPAL, lambda k, vs, ns: _jwt_claim(["aud"], vs), False),
    "request.auth.presenter": (_PRINCIPAL, lambda k, vs, ns: _jwt_claim(["azp"], vs), False),
    "request.auth.claims": (_PRINCIPAL, lambda k, vs, ns: _jwt_claim(_names(k), vs), False),
    "operation.hosts": (_PERMISSION, lambda k, v, ns: {"header": _header_matcher(
        ":authority", v, ignore_case=True)}, True),
    "operation.methods": (_PERMISSION, lambda k, v, ns: {"header": _header_matcher(
        ":method", v)}, True),
    "operation.paths": (_PERMISSION, lambda k, v, ns: _path(v), True),
    "destination.port": (_PERMISSION, lambda k, v, ns: {"destination_port": int(v)}, True),
    "destination.ip": (_PERMISSION, lambda k, v, ns: {"destination_ip": _cidr(v)}, True),
    "connection.sni": (_PERMISSION, lambda k, v, ns: {"requested_server_name": _string(v)},
                       True),
}
#: what a TCP chain cannot see (generator.go: ``is HTTP only``)
_HTTP_ONLY = {"request.headers", "request.auth.principal", "request.auth.audiences",
              "request.auth.presenter", "request.auth.claims", "operation.hosts",
              "operation.methods", "operation.paths"}


def _path(value: str) -> dict:
    """``{*}`` and ``{**}`` make a URI template (1.22+), else exact, prefix or suffix."""
    if "{*}" in value or "{**}" in value:
        return {"uri_template": {"name": "uri-template", "typed_config": {
            "@type": _URI_TEMPLATE,
            "path_template": value.replace("{**}", "**").replace("{*}", "*")}}}
    return {"url_path": {"path": _string(value)}}
