"""Envoy's retry policy for a route, as Istio configures it (docs/facts.md#retries).

Without ``retries`` in the VirtualService Istio installs a default on every route: 2
retries on ``connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes``,
where the retriable status codes were ``[503]`` up to Istio 1.23 and are empty since 1.24.
``retries.attempts`` replaces the count, ``retryOn`` the conditions (integers become
retriable status codes), ``perTryTimeout`` bounds each try (ignored when not shorter than
the route timeout).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..versions import IstioVersion

DEFAULT_RETRY_ON = ("connect-failure", "refused-stream", "unavailable", "cancelled",
                    "retriable-status-codes")
BACKOFF_BASE_S = 0.025

# Failures that are not an HTTP status: what each retry_on condition covers.
CONNECT_FAILURE = "connect-failure"
RESET = "reset"  # the upstream broke the connection before answering
PER_TRY_TIMEOUT = "per-try-timeout"

_FAILURES_RETRIED_BY = {
    "5xx": {CONNECT_FAILURE, RESET, PER_TRY_TIMEOUT},
    "gateway-error": {CONNECT_FAILURE, RESET, PER_TRY_TIMEOUT},
    "reset": {CONNECT_FAILURE, RESET, PER_TRY_TIMEOUT},
    "connect-failure": {CONNECT_FAILURE},
}


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int  # retries on top of the first try
    retry_on: frozenset[str]
    retriable_status_codes: frozenset[int]
    per_try_timeout_s: float | None = None
    backoff_base_s: float = BACKOFF_BASE_S

    @classmethod
    def istio_default(cls, istio: IstioVersion) -> "RetryPolicy":
        codes = frozenset({503}) if istio.default_retry_503 else frozenset()
        return cls(attempts=2, retry_on=frozenset(DEFAULT_RETRY_ON), retriable_status_codes=codes)

    @classmethod
    def for_route(cls, retries, route_timeout_s: float | None, istio: IstioVersion) -> "RetryPolicy":
        """From a VirtualService ``http[].retries`` block (None: Istio's default)."""
        default = cls.istio_default(istio)
        if retries is None:
            return default
        if retries.attempts == 0:
            return cls(attempts=0, retry_on=frozenset(), retriable_status_codes=frozenset())
        conditions, codes = set(), set()
        if retries.retry_on:
            for item in retries.retry_on.split(","):
                item = item.strip()
                if item.isdigit():
                    codes.add(int(item))
                    conditions.add("retriable-status-codes")
                elif item:
                    conditions.add(item)
        else:
            conditions, codes = set(default.retry_on), set(default.retriable_status_codes)
        per_try = retries.per_try_timeout.seconds if retries.per_try_timeout else None
        if per_try is not None and route_timeout_s is not None and per_try >= route_timeout_s:
            per_try = None  # Istio drops a per-try timeout that the route timeout covers
        return cls(
            attempts=retries.attempts if retries.attempts is not None else default.attempts,
            retry_on=frozenset(conditions), retriable_status_codes=frozenset(codes),
            per_try_timeout_s=per_try,
            backoff_base_s=retries.backoff.seconds if retries.backoff else BACKOFF_BASE_S)

    def retries_status(self, status: int) -> bool:
        if "5xx" in self.retry_on and status >= 500:
            return True
        if "gateway-error" in self.retry_on and status in (502, 503, 504):
            return True
        if "retriable-4xx" in self.retry_on and status == 409:
            return True
        return "retriable-status-codes" in self.retry_on and status in self.retriable_status_codes

    def retries_failure(self, failure: str) -> bool:
        return any(failure in _FAILURES_RETRIED_BY.get(c, ()) for c in self.retry_on)

    def backoff_s(self, retry: int, rng: random.Random) -> float:
        """Fully jittered exponential back-off before retry number ``retry`` (1-based)."""
        ceiling = min((2**retry - 1) * self.backoff_base_s, 10 * self.backoff_base_s)
        return rng.uniform(0, ceiling)
