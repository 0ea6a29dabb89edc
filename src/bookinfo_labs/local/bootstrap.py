"""What Istio's proxy bootstrap decides per pod that the local mesh must decide the same way.

Today: which statistics a sidecar exposes. Istio's bootstrap
(``tools/packaging/common/envoy_bootstrap.json``, ``stats_config.stats_matcher``) keeps
only an inclusion list; every other stat, ``cluster.outbound|...`` among them, does not
exist in ``pilot-agent request GET stats``. A pod adds to the list with the annotation

    proxy.istio.io/config: |
      proxyStatsMatcher:
        inclusionPrefixes: ["cluster.outbound"]

(``inclusionSuffixes`` and ``inclusionRegexps`` too), as upstream's fortio-deploy.yaml
does. A local sidecar that exposed everything would let a scenario pass here and read 0
on a cluster.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

import yaml

from ..mesh import MeshError

PROXY_CONFIG_ANNOTATION = "proxy.istio.io/config"

#: the bootstrap's own inclusion list (Istio 1.22-1.28)
DEFAULT_PREFIXES = ("reporter=", "cluster_manager", "listener_manager", "server",
                    "cluster.xds-grpc", "wasm", "component", "istio")
DEFAULT_SUFFIXES = ("rbac.allowed", "rbac.denied", "shadow_allowed", "shadow_denied")
DEFAULT_REGEXPS = (r"vhost\..*\.route\..*",)


@dataclass(frozen=True)
class StatsMatcher:
    """Envoy's ``stats_matcher.inclusion_list``: a stat exists if any matcher matches it."""

    prefixes: tuple[str, ...] = DEFAULT_PREFIXES
    suffixes: tuple[str, ...] = DEFAULT_SUFFIXES
    regexps: tuple[str, ...] = DEFAULT_REGEXPS

    @classmethod
    def for_pod(cls, pod: str, annotations: Mapping[str, str]) -> "StatsMatcher":
        """The bootstrap's list plus what the pod's ``proxyStatsMatcher`` adds."""
        text = annotations.get(PROXY_CONFIG_ANNOTATION)
        if not text:
            return cls()
        try:
            config = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise MeshError(f"pod {pod}: annotation {PROXY_CONFIG_ANNOTATION} is not YAML: "
                            f"{exc}") from None
        matcher = (config.get("proxyStatsMatcher") or {}) if isinstance(config, dict) else {}
        try:
            extra = {key: tuple(str(v) for v in matcher.get(key) or ())
                     for key in ("inclusionPrefixes", "inclusionSuffixes", "inclusionRegexps")}
            for pattern in extra["inclusionRegexps"]:
                re.compile(pattern)
        except (TypeError, AttributeError, re.error) as exc:
            raise MeshError(f"pod {pod}: {PROXY_CONFIG_ANNOTATION} proxyStatsMatcher: {exc}; "
                            "expected lists of strings under inclusionPrefixes, "
                            "inclusionSuffixes and inclusionRegexps") from None
        return cls(DEFAULT_PREFIXES + extra["inclusionPrefixes"],
                   DEFAULT_SUFFIXES + extra["inclusionSuffixes"],
                   DEFAULT_REGEXPS + extra["inclusionRegexps"])

    def __call__(self, name: str) -> bool:
        # An Envoy string matcher's regex must match the whole stat name.
        return (name.startswith(self.prefixes) or name.endswith(self.suffixes)
                or any(re.fullmatch(pattern, name) for pattern in self.regexps))

    def envoy_config(self) -> dict:
        """Envoy's ``stats_config.stats_matcher`` for this list (whole-name regexes)."""
        patterns = ([{"prefix": p} for p in self.prefixes]
                    + [{"suffix": s} for s in self.suffixes]
                    + [{"safe_regex": {"regex": r}} for r in self.regexps])
        return {"inclusion_list": {"patterns": patterns}}


#: Istio's ``stats_tags`` (tools/packaging/common/envoy_bootstrap.json): how a stat name
#: becomes a Prometheus name and labels (``envoy_cluster_upstream_rq{cluster_name=...}``).
#: From 1.23 the cluster and connection-manager names end in ";" and the regexes use it.
_DIGITS_OR_V6 = r"(?:[_.[:digit:]]*|[_\[\]aAbBcCdDeEfF[:digit:]]*)"
_TAGS_1_23 = [
    ("cluster_name", r"^cluster(\.(.+);)"),
    ("http_conn_manager_prefix", r"^http\.(((?:[_.[:digit:]\w]*|[_\[\]aAbBcCdDeEfF[:digit:]\w\:]*));\.)"),
    ("tcp_prefix", r"^tcp\.((.*?)\.)\w+?$"),
    ("response_code", r"_rq(_(\d{3}))$"),
    ("response_code_class", r"_rq(_(\dxx))$"),
    ("http_conn_manager_listener_prefix", r"^listener(?=\.).*?\.http\.((" + _DIGITS_OR_V6 + r")\.)"),
    ("listener_address", r"^listener\.((" + _DIGITS_OR_V6 + r")\.)"),
]
_TAGS_1_22 = [
    ("cluster_name", r"^cluster\.((.+?(\..+?\.svc\.cluster\.local)?)\.)"),
    ("tcp_prefix", r"^tcp\.((.*?)\.)\w+?$"),
    ("response_code", r"_rq(_(\d{3}))$"),
    ("response_code_class", r"_rq(_(\dxx))$"),
    ("http_conn_manager_listener_prefix", r"^listener(?=\.).*?\.http\.((" + _DIGITS_OR_V6 + r")\.)"),
    ("http_conn_manager_prefix", r"^http\.((" + _DIGITS_OR_V6 + r")\.)"),
    ("listener_address", r"^listener\.((" + _DIGITS_OR_V6 + r")\.)"),
]


def stats_tags(delimited: bool) -> list[dict]:
    return [{"tag_name": name, "regex": regex}
            for name, regex in (_TAGS_1_23 if delimited else _TAGS_1_22)]


def envoy_bootstrap(*, node_id: str, node_cluster: str, namespace: str, labels: Mapping[str, str],
                    source_ip: str, xds_port: int, stats: StatsMatcher,
                    istio_version: str, delimited_stats: bool = True) -> dict:
    """The bootstrap of one sidecar, as Istio's (tools/packaging/common/envoy_bootstrap.json)
    in what the local mesh needs: the node as istiod names it, the admin on a free
    loopback port, ADS to our control plane, Istio's stats config, and the pod's address
    as the source of every upstream connection (servers see pod IPs)."""
    return {
        "node": {"id": node_id, "cluster": node_cluster, "metadata": {
            "NAMESPACE": namespace, "LABELS": dict(labels), "ISTIO_VERSION": istio_version,
            "INTERCEPTION_MODE": "NONE"}},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {"clusters": [{
            "name": "xds-grpc", "type": "STATIC", "connect_timeout": "1s",
            "load_assignment": {"cluster_name": "xds-grpc", "endpoints": [{"lb_endpoints": [
                {"endpoint": {"address": {"socket_address": {
                    "address": "127.0.0.1", "port_value": xds_port}}}}]}]},
            "typed_extension_protocol_options": {
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                    "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3."
                             "HttpProtocolOptions",
                    "explicit_http_config": {"http2_protocol_options": {}}}},
        }]},
        "dynamic_resources": {
            "ads_config": {"api_type": "GRPC", "transport_api_version": "V3",
                           "set_node_on_first_message_only": True,
                           "grpc_services": [{"envoy_grpc": {"cluster_name": "xds-grpc"}}]},
            "cds_config": {"ads": {}, "initial_fetch_timeout": "0s", "resource_api_version": "V3"},
            "lds_config": {"ads": {}, "initial_fetch_timeout": "0s", "resource_api_version": "V3"},
        },
        "cluster_manager": {"upstream_bind_config": {"source_address": {
            "address": source_ip, "port_value": 0}}},
        "stats_config": {"use_all_default_tags": False, "stats_tags": stats_tags(delimited_stats),
                         "stats_matcher": stats.envoy_config()},
    }
