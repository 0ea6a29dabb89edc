"""Exact binomial acceptance bands for weighted splits, mirror and fault percentages.

A correct mesh routing each of n requests to a backend with probability p produces a
Binomial(n, p) count. We accept the count when it lies in a band whose exact tail
probabilities are each at most alpha/2, so a correct mesh fails the assertion with
probability at most alpha (1e-6 by default) and the step can say so. Shares of 0 % and
100 % are exact checks: one stray request is a real bug, not noise.

The pmf is computed in log space with ``math.lgamma`` (accurate to ~1e-11 relative for n up
to several thousand, far finer than the alpha we compare against); no scipy needed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping

__all__ = [
    "SplitCheck",
    "SplitRow",
    "binomial_band",
    "check_split",
    "false_failure_probability",
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


@dataclass(frozen=True)
class SplitRow:
    """One category of a split check."""

    category: str
    expected_share: float
    band: tuple[int, int]
    observed: int
    observed_share: float
    ok: bool

    def band_text(self) -> str:
        lo, hi = self.band
        if self.expected_share in (0.0, 1.0):
            return f"exactly {lo}"
        return f"{lo}..{hi}"


@dataclass(frozen=True)
class SplitCheck:
    """The outcome of ``check_split``: per-category rows and the stated error bound."""

    rows: tuple[SplitRow, ...]
    n: int
    alpha: float
    false_failure_bound: float
    tested: int  # categories with 0 < share < 1, the Bonferroni divisor

    @property
    def ok(self) -> bool:
        return all(row.ok for row in self.rows)

    def table(self) -> str:
        header = ("category", "expected", "observed", "acceptance band", "verdict")
        body = [
            (
                row.category,
                f"{row.expected_share:.1%}",
                f"{row.observed} ({row.observed_share:.1%})",
                row.band_text(),
                "ok" if row.ok else "FAIL",
            )
            for row in self.rows
        ]
        widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
        lines = [
            " | ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip()
            for line in [header, *body]
        ]
        lines.insert(1, "-+-".join("-" * w for w in widths))
        if self.tested:
            method = f"exact binomial, Bonferroni over {self.tested}"
        else:
            method = "exact checks only"
        lines.append(
            f"{self.n} requests; false-failure probability of this check "
            f"<= {_round_up(self.false_failure_bound)} ({method})"
        )
        return "\n".join(lines)

    def assert_ok(self) -> None:
        if not self.ok:
            raise AssertionError("traffic split outside its acceptance band:\n" + self.table())


def _round_up(probability: float) -> str:
    """Two significant digits, rounded up so the stated bound stays a bound."""
    if probability <= 0.0:
        return "0"
    exponent = math.floor(math.log10(probability)) - 1
    return f"{math.ceil(probability / 10**exponent) * 10**exponent:.2g}"


def check_split(
    observed: Mapping[str, int],
    expected_weights: Mapping[str, float],
    alpha: float = DEFAULT_ALPHA,
) -> SplitCheck:
    """Test observed per-category counts against expected weights.

    Weights are normalised to shares (Envoy routes weight/sum, so 1 and 3 mean 25 % / 75 %).
    Categories observed but not expected have share 0. Each category with 0 < share < 1 gets
    a band at alpha/k (k such categories, Bonferroni), so the whole check falsely fails with
    probability at most alpha; shares 0 and 1 are exact. Raises ValueError for no requests or
    unusable weights (a broken step, not a broken mesh).
    """
    if any(count < 0 for count in observed.values()):
        raise ValueError(f"observed counts must not be negative: {dict(observed)}")
    if any(weight < 0 for weight in expected_weights.values()):
        raise ValueError(f"weights must not be negative: {dict(expected_weights)}")
    total_weight = sum(expected_weights.values())
    if total_weight <= 0:
        raise ValueError(f"weights must have a positive sum: {dict(expected_weights)}")
    n = sum(observed.values())
    if n == 0:
        raise ValueError("no requests observed: a split check needs traffic")

    categories = list(expected_weights) + [c for c in observed if c not in expected_weights]
    shares = {c: expected_weights.get(c, 0.0) / total_weight for c in categories}
    tested = sum(1 for share in shares.values() if 0.0 < share < 1.0)

    rows, bound = [], 0.0
    for category in categories:
        share, count = shares[category], observed.get(category, 0)
        if share == 0.0:
            band = (0, 0)
        elif share == 1.0:
            band = (n, n)
        else:
            band = binomial_band(n, share, alpha / tested)
            bound += false_failure_probability(n, share, band)
        ok = band[0] <= count <= band[1]
        rows.append(SplitRow(category, share, band, count, count / n, ok))
    return SplitCheck(tuple(rows), n, alpha, bound, tested)


def parse_shares(spec: str) -> dict[str, float]:
    """``"v1 90% and v2 10%"`` -> ``{"v1": 90.0, "v2": 10.0}``: a split as a feature states it."""
    shares: dict[str, float] = {}
    for part in spec.split(" and "):
        category, _, percent = part.strip().rpartition(" ")
        if not category or not percent.endswith("%"):
            raise ValueError(f"cannot read {part!r} as '<category> <percent>%' in {spec!r}")
        shares[category] = float(percent[:-1])
    return shares
