"""Istio's names for what it generates, so stats, logs and config dumps read like a cluster's.

docs/facts.md#envoy-stats: clusters ``outbound|9080|v1|<fqdn>``,
route configs ``9080``, virtual hosts ``<fqdn>:9080``, stat prefixes ending in ``;`` from
Istio 1.23.
"""

from __future__ import annotations

from ...versions import IstioVersion

#: istiod's root namespace: mesh-wide policies and Telemetry live there (meshConfig.rootNamespace)
ROOT_NAMESPACE = "istio-system"

LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
ROUTE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ENDPOINT = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
SECRET = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
#: the order Envoy warms them in
TYPES = (CLUSTER, ENDPOINT, LISTENER, ROUTE)

#: the catch-all virtual hosts (and their routes) and the clusters they lead to
ALLOW_ANY = "allow_any"
BLOCK_ALL = "block_all"
PASSTHROUGH_CLUSTER = "PassthroughCluster"
BLACKHOLE_CLUSTER = "BlackHoleCluster"
#: the direct-response body limit istiod sets on every route configuration (Envoy's is 4 KiB)
MAX_DIRECT_RESPONSE_BODY = 1024 * 1024
#: Envoy's and Istio's "no limit" for circuit-breaker thresholds
MAX_UINT32 = 4294967295
#: ports below this need privileges to bind; the local mesh shifts them (see listen_port)
_FIRST_UNPRIVILEGED = 1024
_PRIVILEGED_SHIFT = 20000


def outbound_cluster(port: int, subset: str | None, fqdn: str) -> str:
    return f"outbound|{port}|{subset or ''}|{fqdn}"


def inbound_cluster(port: int) -> str:
    return f"inbound|{port}||"


def delimited(name: str, istio: IstioVersion) -> str:
    """A stat prefix or ``alt_stat_name``: Istio ends them in ``;`` from 1.23 on, so its
    stats tag regexes can find where the name ends."""
    return f"{name};" if istio.stat_delimiter else name


def listen_port(port: int) -> int:
    """The port a local listener really binds for a Service or container port.

    On a cluster every pod has its own network and binds 80 as it likes; here all pods share
    the host's, and an unprivileged user cannot bind below 1024, so those ports move up by
    20000 (80 -> 20080, 443 -> 20443: clear of the gateways' 15000s ports). Names
    (``0.0.0.0_80``, ``outbound|80||...``) keep the real port.
    """
    return port if port >= _FIRST_UNPRIVILEGED else port + _PRIVILEGED_SHIFT


def duration(seconds: float) -> str:
    """A protobuf JSON Duration: ``0s``, ``0.5s``, ``7s``."""
    return f"{seconds:.9f}".rstrip("0").rstrip(".") + "s" if seconds else "0s"
