"""Access loggers: meshConfig ``accessLogFile`` / ``accessLogEncoding`` and, when present,
the Telemetry API's ``accessLogging`` (pilot/pkg/model/telemetry_logging.go,
pilot/pkg/networking/core/accesslog.go)."""

from __future__ import annotations

from ...versions import IstioVersion
from .model import MeshView, ProxyView

FILE_LOG = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"


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


def loggers(mesh: MeshView, proxy: ProxyView, direction: str, *, http: bool) -> list[dict]:
    """meshConfig.accessLogFile's logger in Istio's TEXT format, as every HTTP connection
    manager and every tcp_proxy carries it; none when the file is unset."""
    del direction, http
    if not mesh.mesh_config.get("accessLogFile"):
        return []
    return [{"name": "envoy.access_loggers.file", "typed_config": {
        "@type": FILE_LOG,
        "path": proxy.access_log_path,
        "log_format": {"text_format_source": {"inline_string": text_format(mesh.istio)}},
    }}]
