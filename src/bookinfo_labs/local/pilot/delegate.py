"""``http[].delegate``: a root VirtualService's rule stands for another VirtualService's rules.

istiod merges before it translates (pilot/pkg/model/virtualservice.go
mergeVirtualServicesIfNeeded, mergeHTTPRoutes, mergeHTTPRoute, mergeHTTPMatchRequest,
hasConflict): each rule of the delegate (a VirtualService without hosts) is ANDed with the
root rule's matches and takes the root rule's settings it lacks; the root VirtualService is
then translated with the merged rules in place. docs/facts.md#delegation.
"""

from __future__ import annotations

from typing import Any, Iterator

from .model import ConfigView, MeshView

#: what a delegate's rule takes from the root rule when it has none of its own
#: (a root rule has no ``route`` or ``redirect``)
INHERITED = ("rewrite", "direct_response", "timeout", "retries", "fault", "mirror",
             "mirror_percent", "mirror_percentage", "cors_policy", "mirrors", "headers")
#: match fields that must agree (a string match of the delegate's within the root's)
_STRING_MATCHES = ("uri", "scheme", "method", "authority")
_MAP_MATCHES = ("headers", "without_headers", "query_params")


def http_rules(mesh: MeshView, vs: ConfigView) -> Iterator[tuple[Any, ConfigView]]:
    """The rules ``vs``'s routes are built from, in order, each with the VirtualService the
    route is generated from (its ``istio.config`` metadata).

    A rule with ``delegate`` becomes the delegate's rules merged with it; a delegate rule
    whose matches conflict with the root's is dropped, and so is the root rule when the
    delegate does not exist, has hosts, or is not exported to the root's namespace. Like
    istiod, the merged rules belong to the root (their routes name it), with the delegate's
    hosts already resolved in the delegate's own namespace.
    """
    for rule in vs.spec.http or []:
        if rule.delegate is None:
            yield rule, vs
            continue
        delegate = _delegate(mesh, vs, rule.delegate)
        for child in delegate.spec.http if delegate is not None else []:
            merged = merge_rule(rule, _resolved(child, delegate.namespace))
            if merged is not None:
                yield merged, vs


def _delegate(mesh: MeshView, root: ConfigView, ref) -> ConfigView | None:
    namespace = ref.namespace or root.namespace
    for vs in mesh.of_kind("VirtualService"):
        if (vs.name, vs.namespace) == (ref.name, namespace) and not vs.spec.hosts:
            exported = {vs.namespace if e == "." else e for e in vs.spec.export_to} or {"*"}
            return vs if "*" in exported or root.namespace in exported else None
    return None


def _resolved(rule, namespace: str):
    """``rule`` with its destination and mirror hosts as FQDNs of ``namespace``
    (model/virtualservice.go resolveVirtualServiceShortnames, done before merging)."""
    from .routes import fqdn  # routes imports this module

    def full(destination):
        return destination.model_copy(update={"host": fqdn(destination.host, namespace)})

    update: dict[str, Any] = {
        "route": [r.model_copy(update={"destination": full(r.destination)}) for r in rule.route],
        "mirrors": [m.model_copy(update={"destination": full(m.destination)})
                    for m in rule.mirrors]}
    if rule.mirror is not None:
        update["mirror"] = full(rule.mirror)
    return rule.model_copy(update=update)


def _joined(root: str | None, child: str | None) -> str | None:
    """``root-child``; either alone when the other is unset."""
    return f"{root}-{child}" if root and child else (child or root)


def merge_rule(root, child):
    """The delegate's rule as the root rule narrows and completes it, or None when their
    matches conflict (mergeHTTPRoute)."""
    matches = _merge_matches(root.match, child.match)
    if matches is None:
        return None
    update: dict[str, Any] = {"match": matches, "name": _joined(root.name, child.name)}
    for field in INHERITED:
        if getattr(child, field) in (None, []):  # unset (mirrors: none)
            update[field] = getattr(root, field)
    return child.model_copy(update=update)


def _merge_matches(root: list, child: list) -> list | None:
    """Each of the delegate's matches ANDed with every root match it does not conflict
    with; None when one of them fits no root match (mergeHTTPMatchRequests)."""
    if not root or not child:
        return child if not root else root
    out = []
    for leaf in child:
        fitting = [_merge_match(r, leaf) for r in root if not _conflict(r, leaf)]
        if not fitting:
            return None
        out += fitting
    return out


def _merge_match(root, leaf):
    """The leaf's conditions, with the root's where the leaf has none (mergeHTTPMatchRequest)."""
    update: dict[str, Any] = {"name": _joined(root.name, leaf.name)}
    for field in (*_STRING_MATCHES, "port", "source_namespace", "gateways", "stat_prefix"):
        if not getattr(leaf, field):
            update[field] = getattr(root, field)
    for field in (*_MAP_MATCHES, "source_labels"):
        update[field] = {**getattr(root, field), **getattr(leaf, field)}
    return leaf.model_copy(update=update)


def _conflict(root, leaf) -> bool:
    """Whether ``leaf`` can match what ``root`` cannot (hasConflict)."""
    if any(_string_conflict(getattr(root, f), getattr(leaf, f)) for f in _STRING_MATCHES):
        return True
    if any(_string_conflict(getattr(root, f).get(key), value)
           for f in _MAP_MATCHES for key, value in getattr(leaf, f).items()):
        return True
    if bool(root.ignore_uri_case) != bool(leaf.ignore_uri_case):
        return True
    if root.port and leaf.port and root.port != leaf.port:
        return True
    if root.source_namespace and leaf.source_namespace != root.source_namespace:
        return True
    if any(key in root.source_labels and root.source_labels[key] != value
           for key, value in leaf.source_labels.items()):
        return True
    return bool(root.gateways and leaf.gateways) and (
        len(root.gateways) < len(leaf.gateways)
        or any(g not in root.gateways for g in leaf.gateways))


def _string_conflict(root, leaf) -> bool:
    """stringMatchConflict: no conflict when either is unset; a regex agrees with nothing
    but an unset match; an exact root takes only the same exact; a prefix root takes a
    prefix or exact that starts with it; anything else conflicts."""
    if root is None or leaf is None:
        return False
    r_exact, r_prefix, r_regex = root.exact or "", root.prefix or "", root.regex or ""
    l_exact, l_prefix, l_regex = leaf.exact or "", leaf.prefix or "", leaf.regex or ""
    if (r_regex and (l_regex or l_prefix or l_exact)) or (l_regex and (r_exact or r_prefix)):
        return True
    if r_exact:
        return bool(l_prefix) or l_exact != r_exact
    if r_prefix and (l_prefix or l_exact):
        return not (l_prefix or l_exact).startswith(r_prefix)
    return True
