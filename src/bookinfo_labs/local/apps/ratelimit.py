"""Local ``envoyproxy/ratelimit``: Envoy's global rate limit service (docs/facts.md#rate-limits).

A gRPC server of ``envoy.service.ratelimit.v3.RateLimitService`` on its container's gRPC
port (8081 in Istio's samples/ratelimit). It reads the config the real service reads:
every ``*.yaml`` under ``$RUNTIME_ROOT/$RUNTIME_SUBDIRECTORY/config`` (the ConfigMap
``ratelimit-config`` mounted there), each one ``domain`` with nested ``descriptors``
(``key``, optional ``value``, ``rate_limit: {unit, requests_per_unit}`` or ``unlimited``).

For each descriptor of a request it walks the tree as the real service does
(config_impl.go GetLimit): at each entry the node ``key_value`` if there is one, else the
node ``key`` (any value); the limit is the one on the node of the last entry. The count
is per domain, entries with their actual values, and fixed window: the window starts at
a multiple of the unit since the Unix epoch, as the real service's cache key does, and a
request is over the limit when its window's count (this request included) exceeds
``requests_per_unit``. Difference, said in its log: the counts live in this process's
memory, not in Redis (``REDIS_URL`` is not used), so they start from zero when the pod
starts; the ``redis`` pod of the sample runs the small stand-in below.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import yaml

from .base import AppContext, AppFactory, GrpcApp, TcpApp

#: seconds per unit (envoyproxy/ratelimit utils.UnitToDivider)
UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800,
         "month": 2592000, "year": 31536000}
#: the service's gRPC port unless GRPC_PORT says otherwise (its settings.go)
GRPC_PORT = 8081
#: the config keys the real service knows (config_impl.go validKeys) and those this one
#: counts by; the others change what it counts and are refused rather than ignored
_KNOWN_KEYS = {"domain", "key", "value", "descriptors", "rate_limit", "unit",
               "requests_per_unit", "unlimited", "name", "replaces", "shadow_mode",
               "detailed_metric", "value_to_metric", "share_threshold"}
_NOT_IMPLEMENTED = {"replaces", "value_to_metric", "share_threshold"}


class ConfigError(ValueError):
    """A config the real service refuses to load (it logs it and keeps the previous one)."""


@dataclass
class Node:
    limit: int | None = None  # requests per unit; None: no limit on this node
    unit: str = ""
    unlimited: bool = False
    shadow: bool = False
    children: dict[str, "Node"] = field(default_factory=dict)


def parse_config(text: str, source: str) -> tuple[str, Node]:
    """One config file: its domain and its descriptor tree."""
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: error loading config file: {exc}") from None
    if not isinstance(data, dict) or not data.get("domain"):
        raise ConfigError(f"{source}: config file cannot have empty domain")
    _check_keys(data, source)
    return str(data["domain"]), _node({"descriptors": data.get("descriptors") or []}, source)


def _check_keys(node, where: str) -> None:
    if isinstance(node, list):
        for item in node:
            _check_keys(item, where)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key not in _KNOWN_KEYS:
                raise ConfigError(f"{where}: config error, unknown key '{key}'")
            if key in _NOT_IMPLEMENTED:
                raise ConfigError(f"{where}: '{key}' is not implemented by the local mesh's "
                                  "rate limit service; run this lab with --mesh kube")
            _check_keys(value, where)


def _node(entry: dict, where: str) -> Node:
    node = Node(shadow=bool(entry.get("shadow_mode")))
    limit = entry.get("rate_limit")
    if limit is not None:
        unit = str(limit.get("unit", "")).lower()
        node.unlimited = bool(limit.get("unlimited"))
        if not node.unlimited and unit not in UNITS:
            raise ConfigError(f"{where}: invalid rate limit unit '{limit.get('unit')}'")
        node.unit, node.limit = unit, int(limit.get("requests_per_unit", 0))
    for child in entry.get("descriptors") or []:
        if not child.get("key"):
            raise ConfigError(f"{where}: descriptor has empty key")
        key = f"{child['key']}_{child['value']}" if child.get("value") else str(child["key"])
        if key in node.children:
            raise ConfigError(f"{where}: duplicate descriptor composite key '{key}'")
        node.children[key] = _node(child, f"{where}: {key}")
    return node


def find_limit(root: Node, entries: list[tuple[str, str]]) -> Node | None:
    """The node whose limit applies to a descriptor's entries, or None."""
    children, found = root.children, None
    for i, (key, value) in enumerate(entries):
        node = children.get(f"{key}_{value}") or children.get(key)
        if node is not None and (node.limit is not None or node.unlimited) and \
                i == len(entries) - 1:
            found = node
        if node is None or not node.children:
            break
        children = node.children
    return found


class RateLimiter:
    """Fixed-window counters per domain, descriptor entries and window start."""

    def __init__(self, domains: dict[str, Node], clock=time.time):
        self.domains = domains
        self.clock = clock
        self.counts: dict[str, int] = {}

    def check(self, domain: str, descriptors: list[list[tuple[str, str]]],
              hits: int) -> list[tuple[bool, Node | None, int, int]]:
        """Per descriptor: (over the limit, its node, remaining, seconds until reset)."""
        now = self.clock()
        out = []
        for entries in descriptors:
            node = find_limit(self.domains.get(domain, Node()), entries)
            if node is None or node.unlimited:
                out.append((False, node, 0, 0))
                continue
            window = UNITS[node.unit]
            start = int(now) // window * window
            key = "_".join([domain, *(f"{k}_{v}" for k, v in entries), str(start)])
            self.counts[key] = self.counts.get(key, 0) + hits
            over = self.counts[key] > node.limit and not node.shadow
            out.append((over, node, max(node.limit - self.counts[key], 0),
                        start + window - int(now)))
        return out


def load_domains(ctx: AppContext) -> dict[str, Node]:
    root = PurePosixPath(ctx.env.get("RUNTIME_ROOT", "/srv/runtime_data/current"),
                         ctx.env.get("RUNTIME_SUBDIRECTORY", ""), "config")
    domains: dict[str, Node] = {}
    for path, data in sorted(ctx.files.items()):
        if PurePosixPath(path).parent != root or not path.endswith((".yaml", ".yml")):
            continue
        if PurePosixPath(path).name.startswith(".") and \
                ctx.env.get("RUNTIME_IGNOREDOTFILES", "false") == "true":
            continue
        domain, tree = parse_config(data.decode(), path)
        if domain in domains:
            raise ConfigError(f"{path}: duplicate domain '{domain}' in config file")
        domains[domain] = tree
    return domains


def ratelimit(ctx: AppContext) -> GrpcApp:
    from envoy.service.ratelimit.v3 import rls_pb2, rls_pb2_grpc

    domains = load_domains(ctx)
    limiter = RateLimiter(domains)
    ctx.log(f"loaded domains {', '.join(sorted(domains)) or '(none)'}; counting in memory, "
            "not in Redis (the local mesh's stand-in)")
    Response = rls_pb2.RateLimitResponse

    class Servicer(rls_pb2_grpc.RateLimitServiceServicer):
        async def ShouldRateLimit(self, request, context):  # noqa: N802 - gRPC's name
            descriptors = [[(e.key, e.value) for e in d.entries] for d in request.descriptors]
            results = limiter.check(request.domain, descriptors, request.hits_addend or 1)
            reply = Response(overall_code=Response.OK)
            for entries, (over, node, remaining, reset) in zip(descriptors, results):
                status = reply.statuses.add(code=Response.OVER_LIMIT if over else Response.OK)
                if node is not None and node.limit is not None and not node.unlimited:
                    status.current_limit.requests_per_unit = node.limit
                    status.current_limit.unit = Response.RateLimit.Unit.Value(node.unit.upper())
                    status.limit_remaining = remaining
                    status.duration_until_reset.seconds = reset
                if over:
                    reply.overall_code = Response.OVER_LIMIT
                ctx.log(f"domain {request.domain} descriptor {entries}: "
                        f"{'OVER_LIMIT' if over else 'OK'}")
            return reply

    return GrpcApp(lambda server: rls_pb2_grpc.add_RateLimitServiceServicer_to_server(
        Servicer(), server), ports=(int(ctx.env.get("GRPC_PORT", GRPC_PORT)),))


def redis(ctx: AppContext) -> TcpApp:
    """The sample's ``redis`` pod: answers PING and nothing else, since the local rate
    limit service counts in memory; any other command gets an error saying so."""
    ctx.log("local stand-in for redis: PING only (the local ratelimit counts in memory)")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                if line.startswith((b"*", b"$")):
                    continue  # a RESP array's or bulk string's header: the word follows
                writer.write(b"+PONG\r\n" if line.strip().upper() == b"PING" else
                             b"-ERR the local mesh's redis stand-in implements PING only\r\n")
                await writer.drain()
        except ConnectionError:
            return
        finally:
            writer.close()

    return TcpApp(handle, (6379,))


IMAGES: dict[str, tuple[AppFactory, dict[str, str]]] = {
    "ratelimit": (ratelimit, {}),
    "redis": (redis, {}),
}
