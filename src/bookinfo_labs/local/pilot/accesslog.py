"""Access loggers: meshConfig ``accessLogFile`` / ``accessLogEncoding`` / ``accessLogFormat``
and, when present, the Telemetry API's ``accessLogging`` (pilot/pkg/model/telemetry.go
AccessLogging and mergeLogs, telemetry_logging.go, pilot/pkg/networking/core/accesslog.go;
docs/facts.md#access-logs-and-the-telemetry-api).

Selection, as istiod's: the Telemetry objects that apply to a proxy (the root namespace's
namespace-wide one, its own namespace's, then those whose selector matches its labels)
name providers per mode (CLIENT for outbound and gateway listeners, SERVER for inbound);
when none applies, or what applies names no provider istiod can build a logger for,
``meshConfig.accessLogFile`` decides. The built-in ``envoy`` provider is a file logger
on ``/dev/stdout`` formatted by the mesh settings. Envoy evaluates a ``filter.expression``
itself (its CEL access-log filter); a proxy's ``/dev/stdout`` is its istio-proxy log.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from ...versions import IstioVersion
from .meshconfig import extension_provider
from .model import MeshView, ProxyView
from .scope import applicable_telemetries

FILE_LOG = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"
FILE_LOGGER = "envoy.access_loggers.file"
CEL_FILTER = "envoy.access_loggers.extension_filters.cel"
_CEL_TYPE = "type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter"
DEV_STDOUT = "/dev/stdout"
#: where a proxy's own output goes: what ``kubectl logs -c istio-proxy`` shows
_CONTAINER_LOG = (DEV_STDOUT, "/dev/stderr")
ENCODINGS = ("TEXT", "JSON")
#: Telemetry's mode for each place a logger sits (telemetry.go workloadMode)
_MODES = {"inbound": "SERVER", "outbound": "CLIENT", "gateway": "CLIENT"}
#: the formatter extensions a format's operators need (accessLogTextFormatters); from 1.26
#: %CEL% and %METADATA% are Envoy built-ins and istiod names only the first
_FORMATTERS = (("%REQ_WITHOUT_QUERY", "envoy.formatter.req_without_query",
                "type.googleapis.com/envoy.extensions.formatter.req_without_query.v3."
                "ReqWithoutQuery"),
               ("%METADATA", "envoy.formatter.metadata",
                "type.googleapis.com/envoy.extensions.formatter.metadata.v3.Metadata"),
               ("%CEL", "envoy.formatter.cel",
                "type.googleapis.com/envoy.extensions.formatter.cel.v3.Cel"))


def text_format(istio: IstioVersion) -> str:
    """Istio's TEXT access-log format (telemetry_logging.go EnvoyTextLogFormat);
    ``%UPSTREAM_CLUSTER_RAW%`` from 1.23, ``%UPSTREAM_CLUSTER%`` before."""
    cluster = "%UPSTREAM_CLUSTER_RAW%" if istio.stat_delimiter else "%UPSTREAM_CLUSTER%"
    return ('[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" '
            "%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% "
            '%CONNECTION_TERMINATION_DETAILS% "%UPSTREAM_TRANSPORT_FAILURE_REASON%" '
            "%BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "
            '"%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" '
            f'"%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" {cluster} %UPSTREAM_LOCAL_ADDRESS% '
            "%DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% "
            "%ROUTE_NAME%\n")


def json_format(istio: IstioVersion) -> dict[str, str]:
    """Istio's JSON access-log keys (telemetry_logging.go EnvoyJSONLogFormatIstio), in its
    declaration order; ``upstream_cluster`` is ``%UPSTREAM_CLUSTER_RAW%`` from 1.25."""
    cluster = "%UPSTREAM_CLUSTER_RAW%" if istio.json_log_cluster_raw else "%UPSTREAM_CLUSTER%"
    return {
        "start_time": "%START_TIME%", "route_name": "%ROUTE_NAME%",
        "method": "%REQ(:METHOD)%", "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
        "protocol": "%PROTOCOL%", "response_code": "%RESPONSE_CODE%",
        "response_flags": "%RESPONSE_FLAGS%", "response_code_details": "%RESPONSE_CODE_DETAILS%",
        "connection_termination_details": "%CONNECTION_TERMINATION_DETAILS%",
        "bytes_received": "%BYTES_RECEIVED%", "bytes_sent": "%BYTES_SENT%",
        "duration": "%DURATION%", "upstream_service_time": "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
        "x_forwarded_for": "%REQ(X-FORWARDED-FOR)%", "user_agent": "%REQ(USER-AGENT)%",
        "request_id": "%REQ(X-REQUEST-ID)%", "authority": "%REQ(:AUTHORITY)%",
        "upstream_host": "%UPSTREAM_HOST%", "upstream_cluster": cluster,
        "upstream_local_address": "%UPSTREAM_LOCAL_ADDRESS%",
        "downstream_local_address": "%DOWNSTREAM_LOCAL_ADDRESS%",
        "downstream_remote_address": "%DOWNSTREAM_REMOTE_ADDRESS%",
        "requested_server_name": "%REQUESTED_SERVER_NAME%",
        "upstream_transport_failure_reason": "%UPSTREAM_TRANSPORT_FAILURE_REASON%",
    }


def check_mesh_config(config: Mapping[str, Any]) -> None:
    """ValueError for access-log settings the local mesh cannot honour, before any is
    applied: an encoding istiod does not know, or a file other than the proxy's own output
    (a file inside the istio-proxy container, which the local mesh does not have)."""
    encoding = config.get("accessLogEncoding") or "TEXT"
    if encoding not in ENCODINGS:
        raise ValueError(f"meshConfig.accessLogEncoding {encoding!r}: use TEXT or JSON")
    path = config.get("accessLogFile") or ""
    if path and path not in _CONTAINER_LOG:
        raise ValueError(f"meshConfig.accessLogFile {path!r}: the local mesh writes access logs "
                         f"to the istio-proxy log only; use {DEV_STDOUT} (or \"\" for none)")


# -- the loggers ------------------------------------------------------------------------

def loggers(mesh: MeshView, proxy: ProxyView, direction: str, *, http: bool) -> list[dict]:
    """The access loggers of a connection manager or a tcp_proxy (setHTTPAccessLog,
    setTCPAccessLog: the same for both)."""
    del http
    return _loggers(mesh, proxy, direction, listener_filter=None)


def listener_loggers(mesh: MeshView, proxy: ProxyView, direction: str) -> list[dict]:
    """The access loggers of a listener itself (setListenerAccessLog): only connections
    no filter chain took, response flag ``NR``, which no connection manager sees."""
    if mesh.mesh_config.get("disableEnvoyListenerLog"):
        return []
    return _loggers(mesh, proxy, direction, listener_filter={
        "response_flag_filter": {"flags": ["NR"]}})


def _loggers(mesh: MeshView, proxy: ProxyView, direction: str, *,
             listener_filter: dict | None) -> list[dict]:
    chosen = telemetry_logging(mesh, proxy, direction)
    if not chosen:  # no Telemetry logging: the mesh config's file, if any
        path = mesh.mesh_config.get("accessLogFile") or ""
        if not path:
            return []
        logger = mesh_config_logger(mesh, proxy, path)
        return [{**logger, "filter": listener_filter} if listener_filter else logger]
    out = []
    for logging in chosen:
        if logging.disabled:
            continue
        filters = [f for f in (listener_filter, _cel(logging.expression)) if f]
        logger = _provider_logger(mesh, proxy, logging.provider)
        if filters:
            logger["filter"] = filters[0] if len(filters) == 1 else {
                "and_filter": {"filters": filters}}
        out.append(logger)
    return out


def mesh_config_logger(mesh: MeshView, proxy: ProxyView, path: str) -> dict:
    """A file logger formatted as meshConfig says: ``accessLogEncoding`` TEXT or JSON,
    ``accessLogFormat`` in place of Istio's default (``\\n`` appended to a TEXT one; a JSON
    one that does not parse is left for the default, as istiod logs and does)
    (FileAccessLogFromMeshConfig)."""
    config = mesh.mesh_config
    custom = config.get("accessLogFormat") or ""
    if (config.get("accessLogEncoding") or "TEXT") == "JSON":
        labels = json_format(mesh.istio)
        if custom:
            try:
                parsed = json.loads(custom)
            except ValueError:
                parsed = None
            labels = parsed if isinstance(parsed, dict) else labels
        log_format = _json_log_format(labels, mesh.istio)
    else:
        log_format = _text_log_format(_text(custom, mesh.istio), mesh.istio)
    return {"name": FILE_LOGGER, "typed_config": {
        "@type": FILE_LOG, "path": _path(path, proxy), "log_format": log_format}}


def _text(custom: str, istio: IstioVersion) -> str:
    if not custom:
        return text_format(istio)
    return custom if custom.endswith("\n") else custom + "\n"


def _text_log_format(text: str, istio: IstioVersion) -> dict:
    out: dict[str, Any] = {"text_format_source": {"inline_string": text}}
    formatters = _formatters([text], istio)
    return {**out, "formatters": formatters} if formatters else out


def _json_log_format(labels: Mapping[str, Any], istio: IstioVersion) -> dict:
    out: dict[str, Any] = {"json_format": dict(labels),
                           "json_format_options": {"sort_properties": False}}
    formatters = _formatters([v for v in labels.values() if isinstance(v, str)], istio)
    return {**out, "formatters": formatters} if formatters else out


def _formatters(values: Iterable[str], istio: IstioVersion) -> list[dict]:
    values = list(values)
    built_in = istio.minor >= 26  # %CEL% / %METADATA% need no extension from 1.26
    return [{"name": name, "typed_config": {"@type": type_url}}
            for operator, name, type_url in _FORMATTERS
            if any(operator in v for v in values)
            and not (built_in and name != "envoy.formatter.req_without_query")]


def _path(path: str, proxy: ProxyView) -> str:
    """The file Envoy writes: the proxy's own output is its istio-proxy log."""
    if path in _CONTAINER_LOG:
        return proxy.access_log_path
    raise ValueError(f"access log file {path!r}: the local mesh writes access logs to the "
                     f"istio-proxy log only ({DEV_STDOUT})")


def _cel(expression: str | None) -> dict | None:
    if not expression:
        return None
    return {"extension_filter": {"name": CEL_FILTER, "typed_config": {
        "@type": _CEL_TYPE, "expression": expression}}}


# -- Telemetry: which providers log, with which filter ---------------------------------

@dataclass(frozen=True)
class Logging:
    """One provider chosen for a proxy and mode: its extension provider (from meshConfig),
    dropped at a lower scope (``disabled``), or filtered by a CEL ``expression``."""

    provider: Mapping[str, Any]
    disabled: bool = False
    expression: str | None = None


@dataclass(frozen=True)
class _Spec:
    disabled: bool = False
    expression: str | None = None


def telemetry_logging(mesh: MeshView, proxy: ProxyView, direction: str) -> list[Logging]:
    """The Telemetry API's access logging for ``proxy`` where ``direction`` says, by
    provider name; empty when Telemetry decides nothing there and the mesh config does
    (Telemetries.AccessLogging, then setHTTPAccessLog's fallback on an empty list)."""
    levels = applicable(mesh, proxy)
    defaults = _default_providers(mesh.mesh_config)
    if not levels and not defaults:
        return []
    specs = merge_logs(levels, defaults, _MODES[direction])
    out = []
    for name, spec in specs.items():
        provider = extension_provider(mesh.mesh_config, name)
        # istiod skips a name meshConfig does not define; a provider that is no file
        # logger was refused when its Telemetry was applied (LocalMesh.check_supported)
        if provider is not None and "envoyFileAccessLog" in provider:
            out.append(Logging(provider, spec.disabled, spec.expression))
    return sorted(out, key=lambda logging: logging.provider["name"])  # as istiod sorts


def applicable(mesh: MeshView, proxy: ProxyView) -> list[list[Any]]:
    """The ``accessLogging`` lists of the Telemetry resources that apply to ``proxy``,
    broadest first."""
    return [list(t.spec.access_logging) for t in applicable_telemetries(mesh, proxy)
            if t.spec.access_logging]


def merge_logs(levels: list[list[Any]], defaults: list[str], mode: str) -> dict[str, _Spec]:
    """Provider name -> how it logs, for one mode (telemetry.go mergeLogs): the providers
    in scope are the lowest level's that names some for this mode (else the mesh's
    default providers); each level then sets, for its providers (or its parent's, when it
    names none), disabled or the filter that level's entry carries."""
    if not levels:
        return {name: _Spec() for name in defaults}
    names_in_scope: Iterable[str] = defaults
    filters: dict[str, _Spec] = {}
    for level in levels:
        named: set[str] = set()
        for entry in level:
            if not _matches(entry, mode):
                continue
            for ref in entry.providers:
                named.add(ref.name)
                filters[ref.name] = _Spec(expression=entry.filter.expression if entry.filter
                                          else None)
        if named:
            names_in_scope = named
    in_scope = set(names_in_scope)
    parent = list(defaults)
    out: dict[str, _Spec] = {}
    for level in levels:
        for entry in level:
            names = [ref.name for ref in entry.providers] or parent
            parent = names
            for name in names:
                if name not in in_scope or not _matches(entry, mode):
                    continue
                out[name] = _Spec(disabled=True) if entry.disabled else filters.get(name, _Spec())
    return out


def _matches(entry: Any, mode: str) -> bool:
    """An entry's ``match.mode`` (CLIENT_AND_SERVER when unset) covers ``mode``."""
    wanted = entry.match.mode if entry.match is not None else None
    return wanted in (None, "CLIENT_AND_SERVER") or wanted == mode


def _default_providers(config: Mapping[str, Any]) -> list[str]:
    return list(((config.get("defaultProviders") or {}).get("accessLogging")) or [])


def _provider_logger(mesh: MeshView, proxy: ProxyView, provider: Mapping[str, Any]) -> dict:
    """A file provider's logger (telemetryAccessLog): the built-in ``envoy`` without a
    ``logFormat`` of its own is formatted by the mesh config; any other by its
    ``logFormat`` (``text``, or ``labels`` as JSON), Istio's TEXT format when it has none."""
    spec = provider["envoyFileAccessLog"] or {}
    path = spec.get("path") or DEV_STDOUT
    log_format = spec.get("logFormat")
    if provider["name"] == "envoy" and not log_format and not spec.get("omitEmptyValues"):
        return mesh_config_logger(mesh, proxy, path)
    if log_format and "labels" in log_format:
        formatted = _json_log_format(log_format["labels"] or json_format(mesh.istio), mesh.istio)
    else:
        formatted = _text_log_format(_text((log_format or {}).get("text") or "", mesh.istio),
                                     mesh.istio)
    if spec.get("omitEmptyValues"):
        formatted["omit_empty_values"] = True
    return {"name": FILE_LOGGER, "typed_config": {
        "@type": FILE_LOG, "path": _path(path, proxy), "log_format": formatted}}
