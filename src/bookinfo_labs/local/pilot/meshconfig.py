"""istiod's mesh config (meshConfig) as the demo profile installs it, and how a change to it
is merged.

The demo profile (manifests/profiles/demo.yaml and the istio-discovery chart's
files/profile-demo.yaml) sets ``accessLogFile: /dev/stdout``; everything else keeps
Istio's defaults (pkg/config/mesh/mesh.go): ``accessLogEncoding`` TEXT, ``enableTracing``
true. Facts: docs/facts.md#mesh-config.
"""

from __future__ import annotations

import copy
from typing import Any, Mapping

from ...versions import IstioVersion


#: istiod's defaults for the fields the local mesh reads (mesh.go DefaultMeshConfig)
MESH_DEFAULTS: dict[str, Any] = {
    "accessLogFile": "", "accessLogEncoding": "TEXT", "enableTracing": True,
    "outboundTrafficPolicy": {"mode": "ALLOW_ANY"},
}
#: what the demo profile's ConfigMap sets on top of them; the chart's configmap.yaml adds
#: ``defaultProviders.metrics: [prometheus]`` whenever telemetry v2 is on (its default)
DEMO_PROFILE: dict[str, Any] = {"accessLogFile": "/dev/stdout",
                                "defaultProviders": {"metrics": ["prometheus"]}}


def effective(configmap_mesh: Mapping[str, Any]) -> dict[str, Any]:
    """The mesh config istiod works with: its defaults, then the ConfigMap's fields."""
    return merged(MESH_DEFAULTS, configmap_mesh)


def demo_mesh_config(istio: IstioVersion) -> dict[str, Any]:
    """The meshConfig a demo-profile install of ``istio`` works with."""
    del istio  # the fields the local mesh reads have the same defaults in every release
    return effective(DEMO_PROFILE)


def merged(config: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with ``changes``' top-level fields replacing its own (a field set to None
    is removed), as ``istioctl install --set meshConfig.<field>=...`` or an edit of the
    ConfigMap's field leaves it."""
    out = copy.deepcopy(dict(config))
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = copy.deepcopy(value)
    return out


#: istiod's built-in extension providers (mesh.go DefaultMeshConfig): a meshConfig
#: provider of the same name replaces one
BUILT_IN_PROVIDERS = (
    {"name": "prometheus", "prometheus": {}},
    {"name": "stackdriver", "stackdriver": {}},
    {"name": "envoy", "envoyFileAccessLog": {"path": "/dev/stdout"}},
)


def extension_provider(config: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    """meshConfig's extension provider called ``name``, the built-ins included; names
    compare in any case, as istiod's fetchProvider does (strings.EqualFold)."""
    providers = {p["name"]: p for p in BUILT_IN_PROVIDERS}
    for provider in config.get("extensionProviders") or []:
        providers[provider.get("name")] = provider
    return next((p for n, p in providers.items() if str(n).lower() == name.lower()), None)


def provider_kind(provider: Mapping[str, Any]) -> str:
    """The kind of an extension provider: its one field besides ``name``."""
    return next((k for k in provider if k != "name"), "")


def outbound_policy(config: Mapping[str, Any]) -> str:
    """meshConfig.outboundTrafficPolicy.mode (ALLOW_ANY when unset)."""
    return ((config.get("outboundTrafficPolicy") or {}).get("mode")) or "ALLOW_ANY"
