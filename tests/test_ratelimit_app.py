"""The local envoyproxy/ratelimit: its config format, descriptor lookup, fixed windows, and
the gRPC service Envoy calls (docs/facts.md#rate-limits)."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from bookinfo_labs.local.apps.base import AppContext
from bookinfo_labs.local.apps.ratelimit import (ConfigError, RateLimiter, find_limit,
                                                parse_config, ratelimit)
from bookinfo_labs.versions import get_version

#: istio.io's config (manifests/ratelimit/ratelimit-config.yaml), plus a nested descriptor
CONFIG = """\
domain: ratelimit
descriptors:
  - key: PATH
    value: "/productpage"
    rate_limit: {unit: minute, requests_per_unit: 1}
  - key: PATH
    value: "api"
    rate_limit: {unit: minute, requests_per_unit: 2}
  - key: PATH
    rate_limit: {unit: minute, requests_per_unit: 100}
  - key: client
    value: bot
    descriptors:
      - key: PATH
        rate_limit: {unit: second, requests_per_unit: 3}
  - key: free
    rate_limit: {unlimited: true}
"""


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def limiter(now: float = 1_800_000_000.0) -> tuple[RateLimiter, Clock]:
    domain, tree = parse_config(CONFIG, "config.yaml")
    clock = Clock(now)
    return RateLimiter({domain: tree}, clock=clock), clock


def test_a_value_node_wins_over_the_key_node():
    _, tree = parse_config(CONFIG, "config.yaml")
    assert find_limit(tree, [("PATH", "/productpage")]).limit == 1
    assert find_limit(tree, [("PATH", "api")]).limit == 2
    assert find_limit(tree, [("PATH", "/reviews")]).limit == 100
    assert find_limit(tree, [("client", "bot"), ("PATH", "/x")]).limit == 3
    assert find_limit(tree, [("client", "bot")]) is None  # no limit on that node itself
    assert find_limit(tree, [("other", "x")]) is None


def test_fixed_windows_count_per_descriptor_value():
    rl, clock = limiter(1_800_000_000.0 + 10)  # 10 s into a minute
    over = [rl.check("ratelimit", [[("PATH", "/productpage")]], 1)[0][0] for _ in range(3)]
    assert over == [False, True, True]
    # another value of the key-only node has its own count
    assert [rl.check("ratelimit", [[("PATH", "/a")]], 1)[0][0] for _ in range(2)] == [False] * 2
    clock.now += 50  # the next minute: a new window counts from zero
    assert rl.check("ratelimit", [[("PATH", "/productpage")]], 1)[0][0] is False
    over, node, remaining, reset = rl.check("ratelimit", [[("PATH", "api")]], 2)[0]
    assert (over, node.limit, remaining, reset) == (False, 2, 0, 60)


def test_unlimited_and_unknown_domains_never_limit():
    rl, _ = limiter()
    for _ in range(5):
        assert rl.check("ratelimit", [[("free", "x")]], 1)[0][0] is False
        assert rl.check("other-domain", [[("PATH", "/productpage")]], 1)[0][0] is False


@pytest.mark.parametrize("text, message", [
    ("descriptors: []", "config file cannot have empty domain"),
    ("domain: d\ndescriptors: [{key: K, rate_limit: {unit: fortnight, requests_per_unit: 1}}]",
     "invalid rate limit unit 'fortnight'"),
    ("domain: d\ndescriptors: [{key: K}, {key: K}]", "duplicate descriptor composite key 'K'"),
    ("domain: d\ndescriptors: [{value: v}]", "descriptor has empty key"),
    ("domain: d\ndescriptors: [{key: K, rate_limt: {}}]", "unknown key 'rate_limt'"),
    ("domain: d\ndescriptors: [{key: K, rate_limit: {unit: second, requests_per_unit: 1, "
     "replaces: [{name: x}]}}]", "'replaces' is not implemented"),
])
def test_bad_config_is_refused_with_the_services_words(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(text, "config.yaml")


def test_the_grpc_service_answers_over_limit():
    """Envoy's call, through a real gRPC channel: the second /productpage of a minute is
    OVER_LIMIT, with the limit it broke."""
    from envoy.service.ratelimit.v3 import rls_pb2, rls_pb2_grpc

    logs: list[str] = []
    app = ratelimit(AppContext(
        pod_name="ratelimit-0", labels={}, env={"RUNTIME_ROOT": "/data",
                                                 "RUNTIME_SUBDIRECTORY": "ratelimit"},
        outbound=None, istio=get_version("1.26"), log=logs.append,
        files={"/data/ratelimit/config/config.yaml": CONFIG.encode()}))

    async def run() -> list:
        server = grpc.aio.server()
        app.add_services(server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = rls_pb2_grpc.RateLimitServiceStub(channel)
                request = rls_pb2.RateLimitRequest(domain="ratelimit", descriptors=[
                    {"entries": [{"key": "PATH", "value": "/productpage"}]}])
                return [await stub.ShouldRateLimit(request) for _ in range(2)]
        finally:
            await server.stop(0)

    first, second = asyncio.run(run())
    Response = rls_pb2.RateLimitResponse
    assert first.overall_code == Response.OK and second.overall_code == Response.OVER_LIMIT
    assert second.statuses[0].current_limit.requests_per_unit == 1
    assert second.statuses[0].current_limit.unit == Response.RateLimit.MINUTE
    assert "loaded domains ratelimit" in logs[0]
