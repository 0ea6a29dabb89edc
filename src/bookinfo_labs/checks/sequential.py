"""Weighted splits checked sequentially, with both error bounds stated and met.

A split check must not fail a correct mesh (false failure at most 1e-6 per assertion) and
must not pass a mesh whose split is off by the lab's resolution (10 percentage points: no
lab's steps are closer; tests/test_sequential.py checks that against the features) with
probability above 1e-3. A fixed sample big enough for both needs ~1,700 requests for a
50/50 split; a sequential test needs ~250 on average when the split is right, because it
stops as soon as the evidence is clear.

The test is Wald's sequential probability ratio test (A. Wald, "Sequential Tests of
Statistical Hypotheses", Ann. Math. Statist. 16(2), 1945) for each category's count
against its two neighbours, the expected share plus and minus the resolution, looked at
after every batch (a group-sequential test). Wald's thresholds are approximations, so the
thresholds are tuned and the error probabilities computed exactly: the probability of each
decision is propagated batch by batch over the binomial distribution of the count (the
recursion of Armitage, McPherson and Rowe, "Repeated significance tests on accumulating
data", J. R. Stat. Soc. A 132(2), 1969, done exactly for a discrete count). Nothing here
samples: the stated bounds are the design's exact operating characteristic.

One assertion may run several tests: ``Lab.expect`` re-sends while config propagates and
wants ``times`` passing checks in a row, from at most ``times + RESTARTS`` tests. A correct
mesh fails the assertion only if one of those tests fails, a wrong one passes only if
``times`` tests in a row pass, so each test gets ``alpha / max_tests`` and
``(beta / windows) ** (1 / times)`` (the union bound over tests and over windows).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Mapping

import numpy as np

__all__ = [
    "BATCH", "FALSE_FAILURE", "MISS", "RESOLUTION", "RESTARTS", "Design", "SequentialSplit",
    "StepBounds", "design", "operating_characteristic", "step_bounds",
]

#: how far off (as a share) a split must be for the check to catch it
RESOLUTION = 0.10
#: per assertion: a correct mesh fails it at most this often
FALSE_FAILURE = 1e-6
#: per assertion: a split RESOLUTION off passes it at most this often
MISS = 1e-3
#: requests per look (the When step's first batch, then each further one)
BATCH = 50
#: at most this many looks per test (3,000 requests at 50 a batch): a test that has not
#: decided by then passes unless it fails there; the exact errors include that last look
MAX_LOOKS = 60
#: failing tests an assertion tolerates before its streak (config still propagating)
RESTARTS = 4


@lru_cache(maxsize=1024)
def _pmf(n: int, p: float) -> np.ndarray:
    """P(X = k), k = 0..n, X ~ Binomial(n, p), in log space (``math.lgamma``)."""
    if p <= 0.0 or p >= 1.0:
        out = np.zeros(n + 1)
        out[0 if p <= 0.0 else n] = 1.0
        return out
    k = np.arange(n + 1)
    log_fact = np.array([math.lgamma(i + 1) for i in range(n + 1)])
    log_comb = log_fact[n] - log_fact - log_fact[::-1]
    return np.exp(log_comb + k * math.log(p) + (n - k) * math.log1p(-p))


def _llr(k: np.ndarray, n: int, p0: float, q: float) -> np.ndarray:
    """log P(k | q) / P(k | p0) for a Binomial(n, .) count; a neighbour at 0 or 1 makes
    every count but one impossible under it (-inf)."""
    if q <= 0.0:
        return np.where(k == 0, n * -math.log1p(-p0), -np.inf)
    if q >= 1.0:
        return np.where(k == n, n * -math.log(p0), -np.inf)
    return k * math.log(q / p0) + (n - k) * math.log((1 - q) / (1 - p0))


@lru_cache(maxsize=4096)
def _statistic(p0: float, neighbours: tuple[float, ...], n: int) -> np.ndarray:
    k = np.arange(n + 1)
    out = np.max([_llr(k, n, p0, q) for q in neighbours], axis=0)
    out.setflags(write=False)
    return out


@dataclass(frozen=True)
class Design:
    """One category's sequential test: expected share ``p0``, the neighbours it must tell
    apart, the looks (cumulative request counts) and the thresholds on the larger of the
    two log-likelihood ratios: fail at ``fail_at`` or above, pass at ``pass_at`` or below;
    at the last look, pass unless failing. ``false_failure`` and ``miss`` are exact."""

    p0: float
    neighbours: tuple[float, ...]
    looks: tuple[int, ...]
    fail_at: float
    pass_at: float
    false_failure: float = 0.0
    miss: float = 0.0
    expected_requests: float = 0.0  # mean requests when the split is right

    def statistic(self, k: np.ndarray | int, n: int) -> np.ndarray:
        """The larger log-likelihood ratio (neighbour against ``p0``) of count ``k``."""
        return _statistic(self.p0, self.neighbours, n)[k]

    def verdict(self, k: int, n: int, last: bool) -> str | None:
        """"fail", "pass" or None (look again) for ``k`` of ``n`` requests."""
        m = float(self.statistic(k, n))
        if m >= self.fail_at:
            return "fail"
        if m <= self.pass_at or last:
            return "pass"
        return None

    def pass_range(self, n: int) -> tuple[int, int]:
        """The counts out of ``n`` the test passes at a look that is not its last."""
        k = np.arange(n + 1)
        ok = np.nonzero(self.statistic(k, n) <= self.pass_at)[0]
        return (int(ok[0]), int(ok[-1])) if ok.size else (0, -1)


def operating_characteristic(d: Design, p: float) -> tuple[float, float, float]:
    """Exactly, when the true share is ``p``: (P(pass), P(fail), E[requests])."""
    dist, n, passed, failed, mean = np.ones(1), 0, 0.0, 0.0, 0.0
    for i, look in enumerate(d.looks):
        dist = np.convolve(dist, _pmf(look - n, p))
        n = look
        m = _statistic(d.p0, d.neighbours, n)
        fail = m >= d.fail_at
        done = fail | (m <= d.pass_at) if i < len(d.looks) - 1 else np.ones(n + 1, bool)
        f, s = math.fsum(dist[fail]), math.fsum(dist[done & ~fail])
        failed, passed, mean = failed + f, passed + s, mean + n * (f + s)
        dist = np.where(done, 0.0, dist)
        undecided = math.fsum(dist)
        if undecided < 1e-15:  # counted as both, so both error bounds stay bounds
            return passed + undecided, failed + undecided, mean + look * undecided
    return passed, failed, mean


def _errors(d: Design) -> tuple[float, float]:
    _, false_failure, _ = operating_characteristic(d, d.p0)
    miss = max(operating_characteristic(d, q)[0] for q in d.neighbours)
    return false_failure, miss


def _largest(lo: float, hi: float, ok, steps: int = 16) -> float:
    """The largest x in [lo, hi] with ok(x), given ok(lo) and ok true up to a point."""
    for _ in range(steps):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return lo


def _smallest(lo: float, hi: float, ok, steps: int = 16) -> float:
    """The smallest x in [lo, hi] with ok(x), given ok(hi) and ok true from a point on."""
    for _ in range(steps):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi


@lru_cache(maxsize=256)
def design(p0: float, alpha: float, beta: float, first: int = BATCH, batch: int = BATCH,
           resolution: float = RESOLUTION, max_looks: int = MAX_LOOKS) -> Design:
    """The cheapest thresholds (fail as low, pass as high as the bounds allow) for a
    category of expected share ``p0`` whose test may falsely fail with probability at most
    ``alpha`` and pass a neighbour ``resolution`` away with probability at most ``beta``."""
    if not 0.0 < p0 < 1.0:
        raise ValueError(f"a sequential test needs a share strictly between 0 and 1, got {p0}")
    neighbours = tuple(min(max(q, 0.0), 1.0) for q in (p0 - resolution, p0 + resolution))
    looks = tuple(first + i * batch for i in range(max_looks))
    base = Design(p0, neighbours, looks, math.log(1 / alpha), math.log(beta))

    def with_(fail_at: float, pass_at: float) -> Design:
        return Design(p0, neighbours, looks, fail_at, pass_at)

    # Wald's fail threshold is about right; the pass threshold is the one that costs
    # requests: raise it as far as the miss bound allows, then lower the fail threshold
    # as far as the false-failure bound allows (and back up if the first step broke it).
    fail_at = base.fail_at
    while _errors(with_(fail_at, base.pass_at))[0] > alpha:
        fail_at += 1.0
    pass_at = _largest(base.pass_at - 10.0, 0.0,
                       lambda b: _errors(with_(fail_at, b))[1] <= beta)
    fail_at = _smallest(max(pass_at, 0.0), fail_at,
                        lambda a: _errors(with_(a, pass_at))[0] <= alpha)
    final = with_(fail_at, pass_at)
    false_failure, miss = _errors(final)
    if false_failure > alpha or miss > beta:
        raise AssertionError(f"no sequential design for share {p0} within {max_looks} looks "
                             f"(false failure {false_failure:.3g}, miss {miss:.3g})")
    _, _, mean = operating_characteristic(final, p0)
    return Design(p0, neighbours, looks, fail_at, pass_at, false_failure, miss, mean)


@dataclass(frozen=True)
class StepBounds:
    """What one assertion promises: tests allowed, and each test's own targets."""

    times: int  # passing tests in a row the assertion needs
    max_tests: int
    alpha: float  # per test, before splitting over categories
    beta: float  # per test and category

    @property
    def false_failure(self) -> float:
        return self.max_tests * self.alpha

    def miss(self, beta: float) -> float:
        """The assertion's miss probability when each test misses with ``beta``."""
        return (self.max_tests - self.times + 1) * beta ** self.times


def step_bounds(times: int, false_failure: float = FALSE_FAILURE, miss: float = MISS,
                restarts: int = RESTARTS) -> StepBounds:
    max_tests = times + restarts
    windows = max_tests - times + 1
    return StepBounds(times, max_tests, false_failure / max_tests,
                      (miss / windows) ** (1 / times))


def _normalised(weights: Mapping[str, float]) -> dict[str, float]:
    if any(w < 0 for w in weights.values()):
        raise ValueError(f"weights must not be negative: {dict(weights)}")
    total = sum(weights.values())
    if total <= 0:
        raise ValueError(f"weights must have a positive sum: {dict(weights)}")
    return {c: w / total for c, w in weights.items()}


@dataclass
class SequentialSplit:
    """One sequential test of observed counts against expected weights, fed batch by batch.

    Categories with a share of 0 or 1 are exact (one stray request is a real bug). Of the
    others, each gets its own test at ``alpha / tested``; with exactly two, one test decides
    both (the second count is the first's complement).
    """

    weights: Mapping[str, float]
    bounds: StepBounds
    first: int = BATCH
    batch: int = BATCH
    counts: dict[str, int] = field(default_factory=dict)
    n: int = 0
    looks: int = 0
    decided: dict[str, str] = field(default_factory=dict)  # category -> "pass" | "fail"

    def __post_init__(self) -> None:
        self.shares = _normalised(self.weights)
        partial = [c for c, s in self.shares.items() if 0.0 < s < 1.0]
        self.tested = partial[:1] if len(partial) == 2 and len(self.shares) == 2 else partial
        self.designs = {c: design(round(self.shares[c], 12), self.bounds.alpha / len(self.tested),
                                  self.bounds.beta, self.first, self.batch)
                        for c in self.tested}

    def add(self, counts: Mapping[str, int]) -> None:
        """One more batch's counts per category."""
        if any(v < 0 for v in counts.values()):
            raise ValueError(f"observed counts must not be negative: {dict(counts)}")
        added = sum(counts.values())
        expected = self.first if self.looks == 0 else self.batch
        if added != expected:
            raise ValueError(f"a look of this test takes {expected} requests, got {added}")
        for c, v in counts.items():
            self.counts[c] = self.counts.get(c, 0) + v
        self.n += added
        self.looks += 1
        last = self.looks >= MAX_LOOKS
        for c, share in self.shares.items():
            if c in self.tested and c not in self.decided:
                verdict = self.designs[c].verdict(self.counts.get(c, 0), self.n, last)
                if verdict:
                    self.decided[c] = verdict
        for c in self.counts:
            share = self.shares.get(c, 0.0)
            exact = share in (0.0, 1.0)
            if exact and self.counts[c] != (self.n if share == 1.0 else 0):
                self.decided[c] = "fail"

    @property
    def verdict(self) -> str | None:
        if "fail" in self.decided.values():
            return "fail"
        if all(self.decided.get(c) == "pass" for c in self.tested):
            return "pass"
        return None

    @property
    def false_failure(self) -> float:
        """This test's exact false-failure probability (summed over its categories)."""
        return math.fsum(d.false_failure for d in self.designs.values())

    @property
    def miss(self) -> float:
        """The largest exact probability that a category's test passes a neighbour."""
        return max((d.miss for d in self.designs.values()), default=0.0)

    def accepted(self, category: str) -> tuple[int, int]:
        """The counts of ``category`` out of ``n`` a look would pass (lo > hi: none)."""
        share = self.shares.get(category, 0.0)
        if share in (0.0, 1.0):
            exact = self.n if share == 1.0 else 0
            return (exact, exact)
        tested = category if category in self.designs else self.tested[0]
        lo, hi = self.designs[tested].pass_range(self.n)
        return (lo, hi) if tested == category else (self.n - hi, self.n - lo)

    def table(self) -> str:
        header = ("category", "expected", "observed", "passes at this n", "verdict")
        categories = list(self.shares) + [c for c in self.counts if c not in self.shares]
        body = []
        for c in categories:
            count, (lo, hi) = self.counts.get(c, 0), self.accepted(c)
            verdict = self.decided.get(c) or ("fail" if self.verdict == "fail" else
                                              self.verdict or "open")
            if c not in self.tested and c in self.shares and 0 < self.shares[c] < 1:
                verdict = self.decided.get(self.tested[0], verdict)
            body.append((c, f"{self.shares.get(c, 0.0):.1%}",
                         f"{count} ({count / self.n:.1%})" if self.n else "0",
                         "none" if lo > hi else f"exactly {lo}" if lo == hi else f"{lo}..{hi}",
                         "ok" if verdict == "pass" else verdict.upper()))
        widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
        lines = [" | ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
                 for row in [header, *body]]
        lines.insert(1, "-+-".join("-" * w for w in widths))
        b = self.bounds
        lines += [
            f"{self.n} requests in {self.looks} looks of a sequential probability ratio test "
            f"(Wald), exact error probabilities:",
            f"  this test: false failure <= {_round_up(self.false_failure)}, a split "
            f"{RESOLUTION:.0%} off passes <= {_round_up(self.miss)}",
            f"  the assertion ({b.times} passing tests in a row, at most {b.max_tests} tests): "
            f"false failure <= {_round_up(b.max_tests * self.false_failure)}, "
            f"miss <= {_round_up(b.miss(self.miss))}",
        ]
        return "\n".join(lines)

    def assert_ok(self) -> None:
        if self.verdict != "pass":
            raise AssertionError("traffic split outside what the test accepts:\n" + self.table())


def _round_up(probability: float) -> str:
    """Two significant digits, rounded up so the stated bound stays a bound."""
    if probability <= 0.0:
        return "0"
    exponent = math.floor(math.log10(probability)) - 1
    return f"{math.ceil(probability / 10**exponent) * 10**exponent:.2g}"
