"""The emulated Envoy's resilience pieces on their own: outlier detection, retry policy,
the connection pool's circuit breaker."""

import asyncio
import random
from types import SimpleNamespace

import pytest

from bookinfo_labs.istio.base import Duration
from bookinfo_labs.local.envoy import Stats
from bookinfo_labs.local.outlier import OutlierDetector, OutlierSettings
from bookinfo_labs.local.retries import CONNECT_FAILURE, PER_TRY_TIMEOUT, RESET, RetryPolicy
from bookinfo_labs.local.upstream import ConnectionPool, Overflow, PoolLimits
from bookinfo_labs.versions import get_version


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def detector(clock, **settings):
    values = dict(consecutive_5xx=1, interval_s=1.0, base_ejection_s=10.0, max_ejection_percent=100)
    values.update(settings)
    return OutlierDetector(OutlierSettings(**values), Stats(), "c", clock=clock)


def test_an_ejection_lasts_base_time_times_count_and_ends_at_a_sweep():
    clock = Clock()
    od = detector(clock)
    clock.now = 0.4
    od.record("a", 500, ["a"])
    assert od.healthy(["a"]) == []
    clock.now = 10.9  # 0.4 + 10 s has passed, but the next sweep is at 11 s
    assert od.healthy(["a"]) == []
    clock.now = 11.0
    assert od.healthy(["a"]) == ["a"]
    od.record("a", 503, ["a"])  # ejected again before a healthy sweep forgave it: 2 x 10 s
    clock.now = 30.9
    assert od.healthy(["a"]) == []
    clock.now = 31.0
    assert od.healthy(["a"]) == ["a"]


def test_healthy_sweeps_forgive_earlier_ejections():
    clock = Clock()
    od = detector(clock)
    od.record("a", 500, ["a"])
    clock.now = 10.0
    assert od.healthy(["a"]) == ["a"]
    clock.now = 12.0  # two healthy sweeps: the multiplier is back to 0
    od.record("a", 500, ["a"])
    clock.now = 21.9
    assert od.healthy(["a"]) == []
    clock.now = 22.0
    assert od.healthy(["a"]) == ["a"]


def test_consecutive_means_in_a_row_and_a_success_resets_it():
    clock = Clock()
    od = detector(clock, consecutive_5xx=3)
    for status in (500, 500, 200, 500, 500):
        od.record("a", status, ["a"])
    assert od.healthy(["a"]) == ["a"]
    od.record("a", 502, ["a"])
    assert od.healthy(["a"]) == []


def test_gateway_errors_count_only_502_503_504_and_local_failures():
    clock = Clock()
    od = detector(clock, consecutive_5xx=None, consecutive_gateway=1)
    od.record("a", 500, ["a"])
    assert od.healthy(["a"]) == ["a"]
    od.record("a", None, ["a"])  # a refused connection
    assert od.healthy(["a"]) == []


def test_max_ejection_percent_still_ejects_one_host():
    clock = Clock()
    od = detector(clock, max_ejection_percent=10)
    hosts = ["a", "b", "c"]
    od.record("a", 500, hosts)
    od.record("b", 500, hosts)
    assert od.healthy(hosts) == ["b", "c"]
    assert od.stats.snapshot()["cluster.c;.outlier_detection.ejections_overflow"] == 1


def test_outlier_settings_from_a_destination_rule_block():
    od = SimpleNamespace(consecutive_5xx_errors=None, consecutive_gateway_errors=None,
                         consecutive_errors=None, interval=Duration.parse("2s"),
                         base_ejection_time=None, max_ejection_percent=None)
    settings = OutlierSettings.from_outlier_detection(od)
    assert (settings.consecutive_5xx, settings.interval_s, settings.base_ejection_s,
            settings.max_ejection_percent) == (5, 2.0, 30.0, 10.0)
    assert OutlierSettings.from_outlier_detection(None) is None


def retries(**fields):
    values = dict(attempts=None, per_try_timeout=None, retry_on=None, backoff=None)
    values.update(fields)
    return SimpleNamespace(**values)


def test_istio_default_retry_policy_by_version():
    old, new = (RetryPolicy.for_route(None, None, get_version(v)) for v in ("1.23", "1.26"))
    assert old.attempts == new.attempts == 2
    assert old.retries_status(503) and not new.retries_status(503)
    assert old.retries_failure(CONNECT_FAILURE) and not new.retries_failure(PER_TRY_TIMEOUT)


def test_retry_on_conditions():
    policy = RetryPolicy.for_route(retries(attempts=3, retry_on="gateway-error,418"), None,
                                   get_version("1.26"))
    assert [policy.retries_status(s) for s in (500, 502, 503, 504, 418, 404)] == [
        False, True, True, True, True, False]
    assert policy.retries_failure(PER_TRY_TIMEOUT) and policy.retries_failure(RESET)
    assert RetryPolicy.for_route(retries(attempts=0), None, get_version("1.26")).attempts == 0


def test_a_per_try_timeout_the_route_timeout_covers_is_dropped():
    policy = RetryPolicy.for_route(retries(attempts=2, per_try_timeout=Duration.parse("2s")),
                                   1.0, get_version("1.26"))
    assert policy.per_try_timeout_s is None


def test_backoff_is_jittered_under_the_exponential_ceiling():
    policy = RetryPolicy.istio_default(get_version("1.26"))
    rng = random.Random(7)
    for retry, ceiling in ((1, 0.025), (2, 0.075), (3, 0.175), (8, 0.25)):
        assert all(0 <= policy.backoff_s(retry, rng) < ceiling + 1e-9 for _ in range(200))


async def _slow_server(release: asyncio.Event, arrived: asyncio.Event | None = None):
    async def handle(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        if arrived is not None:
            arrived.set()
        await release.wait()
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[:2]


def test_a_request_waiting_for_a_new_connection_is_already_pending():
    async def scenario():
        server, address = await _slow_server(asyncio.Event())
        pool = ConnectionPool("c", PoolLimits(max_connections=1, max_pending=1), Stats(),
                              track_remaining=False)
        first = asyncio.ensure_future(pool.request(address, "GET", "/", [("host", "x")], b""))
        await asyncio.sleep(0)  # the first is pending while its connection opens
        with pytest.raises(Overflow):
            await pool.request(address, "GET", "/", [("host", "x")], b"")
        first.cancel()
        server.close()

    asyncio.run(scenario())


def test_the_pool_queues_one_pending_request_and_overflows_the_next():
    async def scenario():
        release, arrived = asyncio.Event(), asyncio.Event()
        server, address = await _slow_server(release, arrived)
        stats = Stats()
        pool = ConnectionPool("c", PoolLimits(max_connections=1, max_pending=1,
                                              max_requests_per_connection=1), stats,
                              track_remaining=True)
        send = lambda: pool.request(address, "GET", "/", [("host", "x")], b"")  # noqa: E731
        first = asyncio.ensure_future(send())
        await asyncio.wait_for(arrived.wait(), 5)  # the first is on its connection
        second = asyncio.ensure_future(send())
        await asyncio.sleep(0)  # the second waits for the only connection: pending
        with pytest.raises(Overflow):
            await send()
        release.set()
        replies = await asyncio.gather(first, second)
        server.close()
        return [r.status for r in replies], stats.snapshot()

    statuses, stats = asyncio.run(scenario())
    assert statuses == [200, 200]
    assert stats["cluster.c;.upstream_rq_pending_overflow"] == 1
    assert stats["cluster.c;.upstream_rq_pending_total"] == 2
    assert stats["cluster.c;.upstream_cx_total"] == 2  # one request per connection
    assert stats["cluster.c;.circuit_breakers.default.remaining_pending"] == 1


def test_without_limits_nothing_overflows():
    async def scenario():
        release = asyncio.Event()
        server, address = await _slow_server(release)
        pool = ConnectionPool("c", PoolLimits(), Stats(), track_remaining=False)
        calls = [asyncio.ensure_future(pool.request(address, "GET", "/", [("host", "x")], b""))
                 for _ in range(20)]
        await asyncio.sleep(0)
        release.set()
        replies = await asyncio.gather(*calls)
        server.close()
        return replies

    assert [r.status for r in asyncio.run(scenario())] == [200] * 20
