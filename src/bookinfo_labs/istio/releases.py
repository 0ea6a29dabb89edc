"""Which Istio release first has each field: validation by the selected release.

The models accept every field of the newest supported release. An older cluster's CRDs
reject the newer fields (the API server applies with ``fieldValidation=Strict``), so with
``--istio-version 1.24`` a manifest using ``retries.backoff`` (1.26) must fail here too.

The tables are data, derived by diffing the CRD schemas Istio ships at the tags 1.22.0,
1.23.0, 1.24.0, 1.25.0, 1.26.0, 1.27.0 and 1.28.0 (``manifests/charts/base/crds/
crd-all.gen.yaml`` up to 1.23, ``manifests/charts/base/files/crd-all.gen.yaml`` from 1.24);
the last patch of each minor adds no field over its ``.0``. Listed: every field the models
have that is absent from the 1.22 schema, by kind and generalised path (list indices
written ``[]``), with the first minor release whose CRD has it. A field's sub-fields arrive
with it and are not listed separately (``warmup`` covers ``warmup.duration``). Enum values
added later are in :data:`VALUES_ADDED`.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from .base import FieldError, iter_set_fields

_WARMUP = "loadBalancer.warmup"
_COOKIE_ATTRIBUTES = "loadBalancer.consistentHash.httpCookie.attributes"
#: the four places of a DestinationRule that hold a load balancer
_DR_POLICIES = ("spec.trafficPolicy", "spec.trafficPolicy.portLevelSettings[]",
                "spec.subsets[].trafficPolicy", "spec.subsets[].trafficPolicy.portLevelSettings[]")

#: (kind, generalised field path) -> the first release whose CRD has the field
FIELDS_ADDED: dict[tuple[str, str], str] = {
    ("VirtualService", "spec.http[].corsPolicy.unmatchedPreflights"): "1.23",
    **{("DestinationRule", f"{place}.{_WARMUP}"): "1.24" for place in _DR_POLICIES},
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
    # a retry budget is not a port-level setting: only these two places
    ("DestinationRule", "spec.trafficPolicy.retryBudget"): "1.27",
    ("DestinationRule", "spec.subsets[].trafficPolicy.retryBudget"): "1.27",
    **{("DestinationRule", f"{place}.{_COOKIE_ATTRIBUTES}"): "1.28" for place in _DR_POLICIES},
    ("Gateway", "spec.servers[].tls.caCertCredentialName"): "1.28",
    ("Sidecar", "spec.ingress[].tls.caCertCredentialName"): "1.28",
    ("RequestAuthentication", "spec.jwtRules[].spaceDelimitedClaims"): "1.28",
}

#: (kind, generalised field path, enum value) -> the first release whose CRD allows it
VALUES_ADDED: dict[tuple[str, str, str], str] = {
    ("ServiceEntry", "spec.resolution", "DYNAMIC_DNS"): "1.28",
}

_INDEX = re.compile(r"\[\d+\]")


def general_path(path: str) -> str:
    """``spec.http[0].retries.backoff`` -> ``spec.http[].retries.backoff``."""
    return _INDEX.sub("[]", path)


def _minor(release: str) -> int:
    return int(release.split(".")[1])


def check_release(kind: str, model: BaseModel, minor: int) -> None:
    """Raise :class:`FieldError` for the first field (or enum value) ``model`` sets that the
    Istio release ``1.<minor>`` does not have yet; return quietly otherwise."""
    selected = f"1.{minor}"
    advice = "choose --istio-version {added} or newer, or leave the field out"
    for path, value in iter_set_fields(model):
        general = general_path(path)
        added = FIELDS_ADDED.get((kind, general))
        if added is not None and _minor(added) > minor:
            name = path.rsplit(".", 1)[-1]
            raise FieldError(path, f"'{name}' was added in Istio {added}; the selected release "
                                   f"{selected} does not have it ({advice.format(added=added)})")
        added = _value_added(kind, general, value)
        if added is not None and _minor(added) > minor:
            raise FieldError(path, f"the value {value} was added in Istio {added}; the selected "
                                   f"release {selected} does not have it (choose --istio-version "
                                   f"{added} or newer, or use another value)")


def _value_added(kind: str, general: str, value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return VALUES_ADDED.get((kind, general, value))
