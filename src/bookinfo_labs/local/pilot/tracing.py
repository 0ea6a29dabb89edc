"""Tracing: meshConfig ``enableTracing`` / ``defaultConfig.tracing`` and the Telemetry API's
``tracing`` (pilot/pkg/networking/core/tracing.go, pilot/pkg/model/telemetry.go Tracing).

Without a Telemetry ``tracing`` (and no ``defaultProviders.tracing``), every connection
manager gets sampling only (``PILOT_TRACE_SAMPLING``, 1 %, or
``defaultConfig.tracing.sampling``) and Istio's tags; the tracer is the bootstrap's, which
Istio's chart configures only up to 1.21 (``global.proxy.tracer: zipkin``). With one, the
selected provider's tracer sits on the connection manager itself. Facts:
docs/facts.md#tracing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from .meshconfig import extension_provider, provider_kind
from .model import MeshView, ProxyView
from .names import outbound_cluster
from .scope import applicable_telemetries

#: PILOT_TRACE_SAMPLING's default, in percent (pilot/pkg/features/telemetry.go)
TRACE_SAMPLING = 1.0
ZIPKIN_TRACER = "envoy.tracers.zipkin"
ZIPKIN_CONFIG = "type.googleapis.com/envoy.config.trace.v3.ZipkinConfig"
#: Zipkin's v2 JSON endpoint (zipkinConfig's default path)
ZIPKIN_ENDPOINT = "/api/v2/spans"
#: the chart's tracer up to 1.21 (``global.tracer.zipkin.address``'s default)
DEFAULT_ZIPKIN_ADDRESS = "zipkin.istio-system:9411"
#: extension provider kinds that trace, as meshConfig names them; the local mesh translates
#: only ``zipkin``
TRACING_PROVIDER_KINDS = ("zipkin", "datadog", "lightstep", "skywalking", "opentelemetry",
                          "stackdriver")
TRANSLATED_PROVIDER_KINDS = ("zipkin",)
#: what an injected sidecar's node metadata says when nothing else is set (MESH_ID is the
#: trust domain, CLUSTER_ID the chart's ``global.multiCluster.clusterName``)
MESH_ID = "cluster.local"
CLUSTER_ID = "Kubernetes"
_RBAC = "envoy.filters.http.rbac"


@dataclass
class TracingSpec:
    """What Telemetry resources leave for one side (client or server) of a proxy."""

    provider: Mapping[str, Any] | None = None  # a meshConfig extensionProviders entry
    disabled: bool = False
    random_sampling_percentage: float | None = None
    custom_tags: dict[str, Any] | None = None  # Telemetry CustomTag models, by tag name
    enable_istio_tags: bool = True


def connection_manager_tracing(mesh: MeshView, proxy: ProxyView, direction: str) -> dict | None:
    """The connection manager's ``tracing`` field, or None for none
    (configureTracingFromTelemetry)."""
    client = direction in ("outbound", "gateway")  # ListenerClassSidecarOutbound / Gateway
    spec = telemetry_spec(mesh, proxy, client=client)
    config = mesh.mesh_config
    if spec is None:
        if not config.get("enableTracing", True):
            return None
        out: dict[str, Any] = {}
        provider = legacy_zipkin(mesh)
        if provider is not None:
            out["provider"] = provider
        out.update(_sampling(proxy_sampling(config)))
        out["custom_tags"] = _sorted(istio_tags(proxy) + _proxy_config_tags(config))
        return out
    if spec.disabled:
        return None
    out = {}
    if spec.provider is not None:
        provider = provider_tracer(mesh, spec.provider)
        if provider is None:  # istiod: "Not able to configure requested tracing provider"
            return None
        out.update(provider)
    sampling = (spec.random_sampling_percentage if spec.random_sampling_percentage is not None
                else proxy_sampling(config))
    out.update(_sampling(sampling))
    tags = istio_tags(proxy) if spec.enable_istio_tags else []
    tags += (telemetry_tags(spec.custom_tags) if spec.custom_tags
             else _proxy_config_tags(config))
    out["custom_tags"] = _sorted(tags)
    return out


# -- which Telemetry applies -----------------------------------------------------------------

def applicable_tracing(mesh: MeshView, proxy: ProxyView) -> list:
    """The ``tracing`` entries of the Telemetry resources that apply to ``proxy``, the later
    overriding the earlier."""
    return [entry for t in applicable_telemetries(mesh, proxy) for entry in t.spec.tracing]


def telemetry_spec(mesh: MeshView, proxy: ProxyView, *, client: bool) -> TracingSpec | None:
    """The merged tracing of one side of ``proxy``, or None when neither a Telemetry nor
    ``defaultProviders.tracing`` says anything (Telemetries.Tracing)."""
    entries = applicable_tracing(mesh, proxy)
    defaults = (mesh.mesh_config.get("defaultProviders") or {}).get("tracing") or []
    if not entries and not defaults:
        return None
    spec = TracingSpec()
    if defaults:  # only the first default provider counts
        spec.provider = extension_provider(mesh.mesh_config, defaults[0])
    wanted = "CLIENT" if client else "SERVER"
    for entry in entries:
        mode = entry.match.mode if entry.match is not None else None
        if mode not in (None, "CLIENT_AND_SERVER", wanted):
            continue
        if entry.providers:  # one provider per mode: the first
            spec.provider = extension_provider(mesh.mesh_config, entry.providers[0].name)
        if entry.disable_span_reporting is not None:
            spec.disabled = entry.disable_span_reporting
        if entry.custom_tags:
            spec.custom_tags = dict(entry.custom_tags)
        if entry.random_sampling_percentage is not None:
            spec.random_sampling_percentage = float(entry.random_sampling_percentage)
        if entry.enable_istio_tags is not None:
            spec.enable_istio_tags = entry.enable_istio_tags
    if spec.provider is None:  # no provider found: tracing off on this side
        spec.disabled = True
    return spec


def provider_tracer(mesh: MeshView, provider: Mapping[str, Any]) -> dict | None:
    """``provider`` (and ``max_path_tag_length``) of the connection manager's tracing for a
    Zipkin extension provider, or None when its service is not in the registry or its kind is
    not translated (the local mesh refuses a Telemetry naming such a provider at apply)."""
    if provider_kind(provider) != "zipkin":
        return None
    zipkin = provider["zipkin"] or {}
    found = lookup_cluster(mesh, zipkin.get("service", ""), int(zipkin.get("port") or 0))
    if found is None:
        return None
    out: dict[str, Any] = {"provider": zipkin_tracer(mesh, *found, zipkin.get("path") or "",
                                                     not zipkin.get("enable64bitTraceId"))}
    if zipkin.get("maxTagLength"):
        out["max_path_tag_length"] = int(zipkin["maxTagLength"])
    return out


def zipkin_tracer(mesh: MeshView, hostname: str, cluster: str, path: str,
                  trace_id_128bit: bool) -> dict:
    """Envoy's Zipkin tracer sending v2 JSON spans to ``cluster`` (zipkinConfig). From 1.29
    Istio names the collector as an ``http_service`` URI instead."""
    endpoint = path or ZIPKIN_ENDPOINT
    config: dict[str, Any] = {"@type": ZIPKIN_CONFIG}
    if mesh.istio.minor >= 29:
        config["collector_service"] = {"http_uri": {
            "uri": f"http://{hostname}{endpoint}", "cluster": cluster, "timeout": "5s"}}
    else:
        config.update({"collector_cluster": cluster, "collector_endpoint": endpoint,
                       "collector_hostname": hostname})
    config.update({"collector_endpoint_version": "HTTP_JSON",
                   "trace_id_128bit": trace_id_128bit, "shared_span_context": False})
    return {"name": ZIPKIN_TRACER, "typed_config": config}


def lookup_cluster(mesh: MeshView, service: str, port: int) -> tuple[str, str] | None:
    """(hostname, cluster) of a provider's ``service`` (``<host>`` or ``<namespace>/<host>``),
    as model.LookupCluster finds it: by the registry's hostname; None when it is not there
    or a bare host is in several namespaces."""
    namespace, _, host = service.rpartition("/")
    matches = [s for s in mesh.all_services
               if s.fqdn == host.lower() and (not namespace or s.namespace == namespace)]
    if len(matches) != 1:
        return None
    return matches[0].fqdn, outbound_cluster(port, None, matches[0].fqdn)


def legacy_zipkin(mesh: MeshView) -> dict | None:
    """The tracer of ``defaultConfig.tracing.zipkin.address`` (the chart's default up to
    1.21): Istio puts it in the bootstrap; the local mesh, whose bootstraps are fixed when
    a sidecar starts, puts the same Zipkin tracer on the connection manager."""
    tracing = ((mesh.mesh_config.get("defaultConfig") or {}).get("tracing") or {})
    address = (tracing.get("zipkin") or {}).get("address")
    if address is None and mesh.istio.default_tracing and not tracing:
        address = DEFAULT_ZIPKIN_ADDRESS
    if not address:
        return None
    host, _, port = address.rpartition(":")
    fqdn = host if host.endswith(".svc.cluster.local") or host.count(".") != 1 \
        else f"{host}.svc.cluster.local"
    found = lookup_cluster(mesh, fqdn, int(port))
    return None if found is None else zipkin_tracer(mesh, *found, "", True)


# -- sampling and tags ---------------------------------------------------------------------

def proxy_sampling(config: Mapping[str, Any]) -> float:
    """``defaultConfig.tracing.sampling`` when set (above 100 counts as 1), else
    PILOT_TRACE_SAMPLING (proxyConfigSamplingValue)."""
    sampling = float(((config.get("defaultConfig") or {}).get("tracing") or {}).get(
        "sampling") or 0.0)
    if sampling == 0.0:
        return TRACE_SAMPLING
    return 1.0 if sampling > 100.0 else sampling


def _sampling(random: float) -> dict:
    return {"client_sampling": {"value": 100.0}, "random_sampling": {"value": random},
            "overall_sampling": {"value": 100.0}}


def canonical_service(proxy: ProxyView) -> tuple[str, str]:
    """The pod's canonical service name and revision, as the injector labels it
    (pkg/kube/labels CanonicalService): its own labels, else ``app``/``version``."""
    labels = proxy.labels
    name = next((labels[k] for k in ("service.istio.io/canonical-name",
                                     "app.kubernetes.io/name", "app") if k in labels), "unknown")
    revision = next((labels[k] for k in ("service.istio.io/canonical-revision",
                                         "app.kubernetes.io/version", "version")
                     if k in labels), "latest")
    return name, revision


def istio_tags(proxy: ProxyView) -> list[dict]:
    """The tags istiod adds to every span: the proxy's canonical service, revision, mesh,
    namespace and cluster (buildServiceTags), and the dry-run authorization results
    (optionalPolicyTags)."""
    name, revision = canonical_service(proxy)
    literal = {"istio.canonical_revision": revision, "istio.canonical_service": name,
               "istio.mesh_id": MESH_ID, "istio.namespace": proxy.namespace or "default",
               "istio.cluster_id": CLUSTER_ID}
    tags = [{"tag": tag, "literal": {"value": value}} for tag, value in literal.items()]
    for action in ("allow", "deny"):
        for what, key in (("name", "shadow_effective_policy_id"),
                          ("result", "shadow_engine_result")):
            tags.append({"tag": f"istio.authorization.dry_run.{action}_policy.{what}",
                         "metadata": {"kind": {"request": {}}, "metadata_key": {
                             "key": _RBAC, "path": [{"key": f"istio_dry_run_{action}_{key}"}]}}})
    return tags


def telemetry_tags(custom: Mapping[str, Any]) -> list[dict]:
    """A Telemetry's ``customTags`` as Envoy's (buildCustomTagsFromProvider)."""
    tags = []
    for name, tag in custom.items():
        if tag.literal is not None:
            tags.append({"tag": name, "literal": {"value": tag.literal.value}})
        elif tag.environment is not None:
            tags.append({"tag": name, "environment": _without_none(
                {"name": tag.environment.name, "default_value": tag.environment.default_value})})
        elif tag.header is not None:
            tags.append({"tag": name, "request_header": _without_none(
                {"name": tag.header.name, "default_value": tag.header.default_value})})
    return tags


def _proxy_config_tags(config: Mapping[str, Any]) -> list[dict]:
    """``defaultConfig.tracing.custom_tags`` (buildCustomTagsFromProxyConfig): literal,
    environment and header tags, in ProxyConfig's JSON names."""
    custom = (((config.get("defaultConfig") or {}).get("tracing") or {}).get("custom_tags")
              or ((config.get("defaultConfig") or {}).get("tracing") or {}).get("customTags")
              or {})
    tags = []
    for name, tag in custom.items():
        if "literal" in tag:
            tags.append({"tag": name, "literal": {"value": tag["literal"].get("value", "")}})
        elif "environment" in tag:
            env = tag["environment"]
            tags.append({"tag": name, "environment": _without_none(
                {"name": env.get("name"), "default_value": env.get("defaultValue")})})
        elif "header" in tag:
            header = tag["header"]
            tags.append({"tag": name, "request_header": _without_none(
                {"name": header.get("name"), "default_value": header.get("defaultValue")})})
    return tags


def _without_none(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None}


def _sorted(tags: list[dict]) -> list[dict]:
    return sorted(tags, key=lambda t: t["tag"])
