"""Passive outlier detection of one cluster in one client proxy (docs/facts.md#outlier-detection).

- ``consecutive5xxErrors: N``: the N-th 5xx in a row from a host (locally originated
  failures such as a refused connection count too) ejects it at once;
  ``consecutiveGatewayErrors`` (not the deprecated ``consecutiveErrors``: istiod ignores it) count only
  502/503/504 and local failures.
- An ejection lasts ``baseEjectionTime`` x the number of times the host was ejected
  (capped at 300 s); hosts return at the first ``interval`` sweep after that, and each
  sweep that finds a host healthy lowers its ejection count by one.
- ``maxEjectionPercent`` (default 10 %) caps ejected hosts, but at least one is ejected.
- Istio disables the panic threshold: with every host ejected there is no healthy
  upstream (503, UH).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

from .envoy import Stats

MAX_EJECTION_S = 300.0


@dataclass(frozen=True)
class OutlierSettings:
    consecutive_5xx: int | None = None
    consecutive_gateway: int | None = None
    interval_s: float = 10.0
    base_ejection_s: float = 30.0
    max_ejection_percent: float = 10.0

    @classmethod
    def from_outlier_detection(cls, od) -> "OutlierSettings | None":
        """From a DestinationRule ``outlierDetection`` block; None: no detection at all."""
        if od is None:
            return None
        # The deprecated consecutiveErrors is not translated: istiod (1.22-1.28,
        # cluster_traffic_policy.go applyOutlierDetection) reads only these two.
        gateway = od.consecutive_gateway_errors
        five_xx = od.consecutive_5xx_errors
        if five_xx is None and gateway is None:
            five_xx = 5  # Envoy's default, present once the block exists
        return cls(
            consecutive_5xx=five_xx or None,  # 0 disables
            consecutive_gateway=gateway or None,
            interval_s=od.interval.seconds if od.interval else 10.0,
            base_ejection_s=od.base_ejection_time.seconds if od.base_ejection_time else 30.0,
            max_ejection_percent=(od.max_ejection_percent
                                  if od.max_ejection_percent is not None else 10.0),
        )


@dataclass
class _Host:
    consecutive_5xx: int = 0
    consecutive_gateway: int = 0
    times_ejected: int = 0
    ejected_until: float | None = None  # the moment the ejection ends (a sweep time)


@dataclass
class OutlierDetector:
    settings: OutlierSettings
    stats: Stats
    cluster: str
    clock: Callable[[], float] = time.monotonic
    hosts: dict[str, _Host] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._started = self.clock()
        self._swept = 0  # sweeps processed so far

    def _stat(self, suffix: str) -> str:
        return f"{self.stats.cluster(self.cluster)}outlier_detection.{suffix}"

    def _sweep(self) -> None:
        """Process the interval sweeps that have passed since the last call."""
        due = math.floor((self.clock() - self._started) / self.settings.interval_s)
        for sweep in range(self._swept + 1, due + 1):
            at = self._started + sweep * self.settings.interval_s
            for host in self.hosts.values():
                if host.ejected_until is not None:
                    if at >= host.ejected_until:
                        host.ejected_until = None
                elif host.times_ejected:
                    host.times_ejected -= 1
        self._swept = max(self._swept, due)
        self.stats.set(self._stat("ejections_active"), len(self.ejected()))

    def ejected(self) -> set[str]:
        return {name for name, h in self.hosts.items() if h.ejected_until is not None}

    def healthy(self, hosts: list[str]) -> list[str]:
        self._sweep()
        ejected = self.ejected()
        return [h for h in hosts if h not in ejected]

    def record(self, host: str, status: int | None, all_hosts: list[str]) -> None:
        """One response from ``host`` (``None``: a locally originated failure)."""
        self._sweep()
        state = self.hosts.setdefault(host, _Host())
        is_5xx = status is None or status >= 500
        is_gateway = status is None or status in (502, 503, 504)
        state.consecutive_5xx = state.consecutive_5xx + 1 if is_5xx else 0
        state.consecutive_gateway = state.consecutive_gateway + 1 if is_gateway else 0
        if state.ejected_until is not None:
            return
        if self.settings.consecutive_5xx and state.consecutive_5xx >= self.settings.consecutive_5xx:
            self._eject(host, state, "consecutive_5xx", all_hosts)
        elif (self.settings.consecutive_gateway
              and state.consecutive_gateway >= self.settings.consecutive_gateway):
            self._eject(host, state, "consecutive_gateway_failure", all_hosts)

    def _eject(self, host: str, state: _Host, kind: str, all_hosts: list[str]) -> None:
        self.stats.inc(self._stat(f"ejections_detected_{kind}"))
        allowed = max(1, math.floor(len(all_hosts) * self.settings.max_ejection_percent / 100))
        if len(self.ejected()) >= allowed:
            self.stats.inc(self._stat("ejections_overflow"))
            return
        state.times_ejected += 1
        duration = min(self.settings.base_ejection_s * state.times_ejected,
                       max(MAX_EJECTION_S, self.settings.base_ejection_s))
        # The host comes back at the first sweep after its ejection time has passed.
        end = self.clock() + duration
        sweeps = math.ceil((end - self._started) / self.settings.interval_s)
        state.ejected_until = self._started + sweeps * self.settings.interval_s
        state.consecutive_5xx = state.consecutive_gateway = 0
        self.stats.inc(self._stat("ejections_enforced_total"))
        self.stats.inc(self._stat(f"ejections_enforced_{kind}"))
        self.stats.inc(self._stat("ejections_total"))
        self.stats.set(self._stat("ejections_active"), len(self.ejected()))
