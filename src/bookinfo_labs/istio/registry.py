"""Dispatch a YAML document to the model of its kind: :func:`parse_resource`."""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import ValidationError

from .base import YAML_CONTEXT, FieldError, Resource, show, suggest, to_field_error
from .kubernetes import ConfigMap, Deployment, Namespace, Secret, Service, ServiceAccount
from .networking import (
    DestinationRule,
    EnvoyFilter,
    Gateway,
    ServiceEntry,
    Sidecar,
    VirtualService,
    WorkloadEntry,
)
from .security import AuthorizationPolicy, PeerAuthentication, RequestAuthentication
from .telemetry import Telemetry

_NETWORKING = ("v1", "v1beta1", "v1alpha3")
_SECURITY = ("v1", "v1beta1")
_TELEMETRY = ("v1", "v1alpha1")

#: (API group, kind) -> (model, served versions); "" is the core group of apiVersion v1
KINDS: dict[tuple[str, str], tuple[type[Resource], tuple[str, ...]]] = {
    ("networking.istio.io", "VirtualService"): (VirtualService, _NETWORKING),
    ("networking.istio.io", "DestinationRule"): (DestinationRule, _NETWORKING),
    ("networking.istio.io", "Gateway"): (Gateway, _NETWORKING),
    ("networking.istio.io", "ServiceEntry"): (ServiceEntry, _NETWORKING),
    ("networking.istio.io", "Sidecar"): (Sidecar, _NETWORKING),
    ("networking.istio.io", "WorkloadEntry"): (WorkloadEntry, _NETWORKING),
    ("networking.istio.io", "EnvoyFilter"): (EnvoyFilter, ("v1alpha3",)),
    ("security.istio.io", "PeerAuthentication"): (PeerAuthentication, _SECURITY),
    ("security.istio.io", "AuthorizationPolicy"): (AuthorizationPolicy, _SECURITY),
    ("security.istio.io", "RequestAuthentication"): (RequestAuthentication, _SECURITY),
    ("telemetry.istio.io", "Telemetry"): (Telemetry, _TELEMETRY),
    ("", "Service"): (Service, ("v1",)),
    ("", "ServiceAccount"): (ServiceAccount, ("v1",)),
    ("", "Secret"): (Secret, ("v1",)),
    ("", "ConfigMap"): (ConfigMap, ("v1",)),
    ("", "Namespace"): (Namespace, ("v1",)),
    ("apps", "Deployment"): (Deployment, ("v1",)),
}


def _api_versions(group: str, versions: tuple[str, ...]) -> list[str]:
    return [f"{group}/{v}" if group else v for v in versions]


def supported_kinds() -> str:
    """A one-line listing of the supported kinds with their apiVersions."""
    grouped: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for (group, kind), (_, versions) in KINDS.items():
        grouped.setdefault((group, versions), []).append(kind)
    parts = []
    for (group, versions), kinds in grouped.items():
        shown = _api_versions(group, versions)
        shown = [shown[0], *versions[1:]]  # networking.istio.io/v1, v1beta1, v1alpha3
        parts.append(f"{', '.join(kinds)} ({', '.join(shown)})")
    return "; ".join(parts)


def _other_group(api_version: str, group: str, kind: str) -> FieldError | None:
    """The error for an API group the validator does not model, or None when ``group`` is
    modelled or looks like a misspelling of a modelled one (then the usual advice helps).

    A kind name may exist in several groups (the Gateway API's Gateway, Knative's
    Service): what decides which kind a document is, is its group, so another group is
    never answered with "use networking.istio.io/v1".
    """
    groups = sorted({g for (g, _) in KINDS if g})
    if group in groups or group == "":
        return None
    if difflib.get_close_matches(group, groups, n=1, cutoff=0.85):
        return None  # e.g. networking.istio.com for networking.istio.io
    same_name = [g or "core" for (g, k) in KINDS if k == kind]
    other = (f" (it is another kind than the {kind} of {' and '.join(same_name)} that the "
             f"validator models)") if same_name else ""
    return FieldError("apiVersion", f"the API group {group} (apiVersion {show(api_version)}) is "
                                    f"not modelled by the validator, so this {kind} cannot be "
                                    f"checked{other}; modelled groups: {', '.join(groups)} and "
                                    "the core group (apiVersion v1)")


def parse_resource(doc: dict[str, Any]) -> Resource:
    """Validate one YAML document and return the model of the whole object.

    Raises :class:`FieldError` for the first problem found: an unknown apiVersion or
    kind, an unknown (misspelt) field, a wrong type, a missing required field or a value
    Istio's validation would reject.
    """
    if not isinstance(doc, dict):
        raise FieldError("", f"a Kubernetes object must be a mapping, got {show(doc)}")
    for field in ("apiVersion", "kind"):
        if doc.get(field) is None:
            raise FieldError("", f"required field '{field}' is missing")
        if not isinstance(doc[field], str):
            raise FieldError(field, f"expected a string, got {show(doc[field])}")
    api_version: str = doc["apiVersion"]
    kind: str = doc["kind"]
    group, _, version = api_version.rpartition("/")

    entry = KINDS.get((group, kind))
    if entry is None:
        other = _other_group(api_version, group, kind)
        if other is not None:
            raise other
        groups = [g for (g, k) in KINDS if k == kind]
        if groups:
            served = [av for g in groups for av in _api_versions(g, KINDS[(g, kind)][1])]
            raise FieldError("apiVersion", f"{kind} is not served by apiVersion "
                                           f"{show(api_version)}; use {' or '.join(served)}")
        names = sorted({k for (_, k) in KINDS})
        close = suggest(kind, names)
        hint = f" (did you mean '{close}'?)" if close else ""
        raise FieldError("kind", f"unsupported kind {show(kind)} with apiVersion "
                                 f"{show(api_version)}{hint}; supported kinds: {supported_kinds()}")
    model, versions = entry
    if version not in versions:
        raise FieldError("apiVersion", f"{kind} is not served by apiVersion {show(api_version)}; "
                                       f"use {' or '.join(_api_versions(group, versions))}")
    try:
        return model.model_validate(doc, context=YAML_CONTEXT)
    except ValidationError as exc:
        raise to_field_error(exc) from None
