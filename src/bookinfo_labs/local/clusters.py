"""Envoy clusters of one client proxy: settings from DestinationRules, and their state.

A cluster ``outbound|<port>|<subset>|<host>`` takes its traffic policy from the
DestinationRules of its host: the rule's ``trafficPolicy``, overridden per port by
``portLevelSettings`` and then by the subset's own ``trafficPolicy``; Istio merges these
field by field (load balancer, connection pool, outlier detection each replace the whole
field). The state (the pool, ejected hosts, round-robin position) lives as long as the
settings do: a changed DestinationRule gives a fresh cluster, as a CDS update would.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

from .config import ConfigStore
from .envoy import Stats
from .outlier import OutlierDetector, OutlierSettings
from .routing import ClusterRef, destination_rules_for
from .upstream import ConnectionPool, PoolLimits

_POLICY_FIELDS = ("load_balancer", "connection_pool", "outlier_detection")


@dataclass(frozen=True)
class ClusterSettings:
    limits: PoolLimits = PoolLimits()
    outlier: OutlierSettings | None = None
    lb: str = "LEAST_REQUEST"


def _overlay(merged: dict, policy) -> None:
    if policy is None:
        return
    for name in _POLICY_FIELDS:
        value = getattr(policy, name)
        if value is not None:
            merged[name] = value


def _port_policy(policy, port: int):
    if policy is None:
        return None
    return next((p for p in policy.port_level_settings
                 if p.port and p.port.number == port), None)


def cluster_settings(store: ConfigStore, ref: ClusterRef) -> ClusterSettings:
    merged: dict = {}
    rules = destination_rules_for(store, ref.host)
    top = next((r.spec.traffic_policy for r in rules if r.spec.traffic_policy), None)
    _overlay(merged, top)
    _overlay(merged, _port_policy(top, ref.port))
    if ref.subset:
        subset = next((s for r in rules for s in r.spec.subsets if s.name == ref.subset), None)
        if subset is not None:
            _overlay(merged, subset.traffic_policy)
            _overlay(merged, _port_policy(subset.traffic_policy, ref.port))
    lb = merged.get("load_balancer")
    return ClusterSettings(
        limits=PoolLimits.from_connection_pool(merged.get("connection_pool")),
        outlier=OutlierSettings.from_outlier_detection(merged.get("outlier_detection")),
        lb=(lb.simple if lb is not None and lb.simple else "LEAST_REQUEST"),
    )


@dataclass
class ClusterState:
    name: str
    settings: ClusterSettings
    pool: ConnectionPool
    outlier: OutlierDetector | None
    active: dict[str, int] = field(default_factory=dict)  # requests in flight per host
    _round_robin: itertools.count = field(default_factory=itertools.count)

    def pick(self, hosts: list[str], rng: random.Random) -> str:
        """Envoy's load balancer over the healthy hosts."""
        if self.settings.lb == "ROUND_ROBIN":
            return hosts[next(self._round_robin) % len(hosts)]
        if self.settings.lb == "LEAST_REQUEST" and len(hosts) > 1:
            # Power of two choices, Envoy's default for LEAST_REQUEST.
            first, second = rng.sample(hosts, 2)
            return first if self.active.get(first, 0) <= self.active.get(second, 0) else second
        return rng.choice(hosts)


class Clusters:
    """The clusters one proxy has built so far."""

    def __init__(self, store: ConfigStore, stats: Stats, *, track_remaining: bool):
        self.store = store
        self.stats = stats
        self.track_remaining = track_remaining
        self._states: dict[str, ClusterState] = {}

    def get(self, ref: ClusterRef) -> ClusterState:
        name = str(ref)
        settings = cluster_settings(self.store, ref)
        state = self._states.get(name)
        if state is None or state.settings != settings:
            if state is not None:
                state.pool.close()
            outlier = (OutlierDetector(settings.outlier, self.stats, name)
                       if settings.outlier else None)
            state = ClusterState(name, settings, ConnectionPool(
                name, settings.limits, self.stats, track_remaining=self.track_remaining), outlier)
            self._states[name] = state
        return state

    def close(self) -> None:
        for state in self._states.values():
            state.pool.close()
