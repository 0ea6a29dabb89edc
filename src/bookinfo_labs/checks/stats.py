"""Exact binomial acceptance bands, and how a feature states a split.

A correct mesh routing each of n requests to a backend with probability p produces a
Binomial(n, p) count; the band whose exact tails are each at most alpha/2 is what a
fixed-size check of that count accepts. Split checks are sequential (``sequential.py``);
the band is what ``make bench`` compares them with: the fixed sample that would meet the
same bounds.

The pmf is computed in log space with ``math.lgamma`` (accurate to ~1e-11 relative for n up
to several thousand, far finer than the alpha we compare against); no scipy needed.
"""

from __future__ import annotations

import math
from functools import lru_cache

__all__ = [
    "binomial_band",
    "false_failure_probability",
    "parse_shares",
]

DEFAULT_ALPHA = 1e-6


@lru_cache(maxsize=64)
def _pmf(n: int, p: float) -> tuple[float, ...]:
    """P(X = k) for k = 0..n, X ~ Binomial(n, p)."""
    if n < 0:
        raise ValueError(f"n must not be negative, got {n}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p}")
    if p in (0.0, 1.0):  # log(0) would blow up; the distribution is a point mass
        return tuple(1.0 if k == (0 if p == 0.0 else n) else 0.0 for k in range(n + 1))
    log_p, log_q, log_n_fact = math.log(p), math.log1p(-p), math.lgamma(n + 1)

    def log_pmf(k: int) -> float:
        log_comb = log_n_fact - math.lgamma(k + 1) - math.lgamma(n - k + 1)
        return log_comb + k * log_p + (n - k) * log_q

    return tuple(math.exp(log_pmf(k)) for k in range(n + 1))


def _tails(n: int, p: float, band: tuple[int, int]) -> tuple[float, float]:
    """(P(X < lo), P(X > hi)), each summed with fsum so tiny terms are not lost."""
    lo, hi = band
    pmf = _pmf(n, p)
    return math.fsum(pmf[: max(lo, 0)]), math.fsum(pmf[max(hi + 1, 0) :])


def binomial_band(n: int, p: float, alpha: float = DEFAULT_ALPHA) -> tuple[int, int]:
    """The tightest [lo, hi] with P(X < lo) <= alpha/2 and P(X > hi) <= alpha/2, X ~ Bin(n, p).

    p == 0 gives (0, 0) and p == 1 gives (n, n): exact checks.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    pmf = _pmf(n, p)
    if p == 0.0:
        return (0, 0)
    if p == 1.0:
        return (n, n)
    half = alpha / 2
    # Walk in from each end while the tail (cumulated from the small end, so accurately)
    # stays within alpha/2; the first count that would push it over is the band's edge.
    lo, tail = 0, 0.0
    while lo < n and tail + pmf[lo] <= half:
        tail += pmf[lo]
        lo += 1
    hi, tail = n, 0.0
    while hi > 0 and tail + pmf[hi] <= half:
        tail += pmf[hi]
        hi -= 1
    return (lo, hi)


def false_failure_probability(n: int, p: float, band: tuple[int, int]) -> float:
    """The probability that a correct mesh (Binomial(n, p) count) lands outside ``band``."""
    below, above = _tails(n, p, band)
    return below + above


def parse_shares(spec: str) -> dict[str, float]:
    """``"v1 90% and v2 10%"`` -> ``{"v1": 90.0, "v2": 10.0}``: a split as a feature states it."""
    shares: dict[str, float] = {}
    for part in spec.split(" and "):
        category, _, percent = part.strip().rpartition(" ")
        if not category or not percent.endswith("%"):
            raise ValueError(f"cannot read {part!r} as '<category> <percent>%' in {spec!r}")
        shares[category] = float(percent[:-1])
    return shares
