"""Tests for the check primitives: ``eventually`` and the exact binomial bands.

Deterministic: ``eventually`` is driven by scripted observation sequences with tenacity's
sleep replaced (``_sleep``), and the bands are compared against exact Fraction arithmetic.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from fractions import Fraction

import pytest

from bookinfo_labs.checks import (
    EventuallyPolicy,
    binomial_band,
    eventually,
    false_failure_probability,
)

# --------------------------------------------------------------------------- eventually


def no_sleep(seconds: float) -> None:
    pass


class Script:
    """An ``observe`` that returns scripted values in order and remembers what it returned."""

    def __init__(self, values):
        self._values = iter(values)
        self.returned: list = []

    def __call__(self):
        value = next(self._values)
        self.returned.append(value)
        return value


def check_ok(observation) -> None:
    assert observation[0] == "ok", f"{observation} is not ok"


def test_eventually_returns_the_last_observation_of_the_streak():
    observe = Script([("ok", 1), ("ok", 2), ("ok", 3), ("ok", 4)])
    result = eventually(observe, check_ok, expected="ok", _sleep=no_sleep)
    assert result == ("ok", 3)
    assert len(observe.returned) == 3


def test_a_failure_resets_the_streak():
    values = [("ok", 1), ("ok", 2), ("bad", 3), ("ok", 4), ("ok", 5), ("bad", 6)]
    values += [("ok", 7), ("ok", 8), ("ok", 9), ("ok", 10)]
    observe = Script(values)
    assert eventually(observe, check_ok, expected="ok", _sleep=no_sleep) == ("ok", 9)
    assert len(observe.returned) == 9


def test_times_one_returns_the_first_pass():
    observe = Script([("bad", 1), ("ok", 2), ("ok", 3)])
    assert eventually(observe, check_ok, expected="ok", times=1, _sleep=no_sleep) == ("ok", 2)


def test_check_returning_false_counts_as_a_failure():
    observe = Script([0, 1, 1, 1])
    assert eventually(observe, lambda v: v == 1, expected="one", _sleep=no_sleep) == 1
    assert observe.returned == [0, 1, 1, 1]


def test_deadline_reports_expected_streak_last_assertion_and_last_observations():
    observe = Script(("bad", i) for i in itertools.count())
    with pytest.raises(AssertionError) as failure:
        eventually(observe, check_ok, expected="all reviews v1", timeout_s=0.2, _sleep=no_sleep)
    message = str(failure.value)
    last = observe.returned[-1]
    assert "expected all reviews v1" in message
    assert "needed 3 consecutive passes; best streak 0 of 3" in message
    assert re.search(r"observations in \d+\.\d+ s", message)  # the elapsed time is stated
    assert f"last assertion: {last} is not ok" in message
    for value in observe.returned[-5:]:
        assert repr(value) in message
    if len(observe.returned) > 5:
        assert f"#{len(observe.returned) - 5} " not in message  # only the last five are shown


def test_deadline_reports_the_best_streak_reached():
    observe = Script(itertools.cycle([("ok", 1), ("ok", 2), ("bad", 3)]))
    with pytest.raises(AssertionError, match="best streak 2 of 3"):
        eventually(observe, check_ok, expected="ok", timeout_s=0.2, _sleep=no_sleep)


def test_a_streak_under_way_at_the_deadline_runs_to_its_end():
    """A batch can take longer than the deadline (a 7 s fault delay with a 5 s deadline):
    the deadline stops new attempts after a failure, not a streak that keeps passing."""
    observe = Script([("ok", 1), ("ok", 2), ("ok", 3), ("ok", 4)])
    assert eventually(observe, check_ok, expected="ok", timeout_s=0.0, _sleep=no_sleep) == ("ok", 3)


def test_past_the_deadline_the_first_failure_ends_the_check():
    observe = Script([("ok", 1), ("bad", 2), ("ok", 3), ("ok", 4), ("ok", 5)])
    with pytest.raises(AssertionError, match="best streak 1 of 3"):
        eventually(observe, check_ok, expected="ok", timeout_s=0.0, _sleep=no_sleep)
    assert len(observe.returned) == 2


def test_deadline_truncates_long_observations():
    observe = Script(itertools.repeat(("bad", "x" * 10_000)))
    with pytest.raises(AssertionError) as failure:
        eventually(observe, check_ok, expected="ok", timeout_s=0.2, _sleep=no_sleep)
    assert all(len(line) < 400 for line in str(failure.value).splitlines()[3:])


def test_other_exceptions_propagate_immediately():
    def observe():
        calls.append(1)
        if len(calls) == 3:
            raise ConnectionError("kubectl exec failed")
        return ("bad", len(calls))

    calls: list = []
    with pytest.raises(ConnectionError):
        eventually(observe, check_ok, expected="ok", _sleep=no_sleep)
    assert len(calls) == 3

    def broken_check(observation):
        raise KeyError("podname")

    with pytest.raises(KeyError):
        eventually(lambda: ("ok", 1), broken_check, expected="ok", _sleep=no_sleep)


def test_waits_interval_between_passes_and_backs_off_after_failures():
    slept: list[float] = []
    observe = Script([("bad", 1), ("bad", 2), ("ok", 3), ("ok", 4), ("ok", 5)])
    eventually(observe, check_ok, expected="ok", interval_s=0.5, max_backoff_s=1.0,
               _sleep=slept.append)
    # Requested durations, not wall-clock time: after a failure interval + jittered backoff
    # (bounded by the cap), between passes exactly the interval.
    assert len(slept) == 4
    assert all(0.5 <= seconds <= 1.5 for seconds in slept[:2])
    assert slept[2:] == [0.5, 0.5]


def test_policy_supplies_defaults_and_explicit_arguments_win():
    policy = EventuallyPolicy(times=2, timeout_s=5.0, interval_s=0.0)
    observe = Script([("ok", i) for i in range(10)])
    assert eventually(observe, check_ok, expected="ok", policy=policy, _sleep=no_sleep) == ("ok", 1)
    observe = Script([("ok", i) for i in range(10)])
    result = eventually(observe, check_ok, expected="ok", policy=policy, times=4, _sleep=no_sleep)
    assert result == ("ok", 3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.times = 5  # type: ignore[misc]


def test_times_must_be_positive():
    with pytest.raises(ValueError):
        eventually(lambda: ("ok", 1), check_ok, expected="ok", times=0)


# --------------------------------------------------------------------------- binomial bands

ALPHA = Fraction(1, 10**6)


def exact_pmf(n: int, p: Fraction) -> list[Fraction]:
    q = 1 - p
    return [math.comb(n, k) * p**k * q ** (n - k) for k in range(n + 1)]


def exact_tails(pmf: list[Fraction], lo: int, hi: int) -> tuple[Fraction, Fraction]:
    return sum(pmf[:lo], Fraction(0)), sum(pmf[hi + 1 :], Fraction(0))


def brute_force_band(n: int, p: Fraction, alpha: Fraction) -> tuple[int, int]:
    """The definition, checked candidate by candidate in exact arithmetic."""
    pmf = exact_pmf(n, p)
    below = list(itertools.accumulate(pmf, initial=Fraction(0)))  # below[l] = P(X < l)
    above = [1 - below[h + 1] for h in range(n + 1)]  # above[h] = P(X > h); sum(pmf) == 1
    lo = max(l for l in range(n + 1) if below[l] <= alpha / 2)
    hi = min(h for h in range(n + 1) if above[h] <= alpha / 2)
    return lo, hi


BAND_CASES = [(200, "0.5"), (200, "0.1"), (100, "0.2"), (1000, "0.9"), (50, "0.5"), (30, "0.25")]


@pytest.fixture(scope="module")
def exact_bands():
    return {(n, p): brute_force_band(n, Fraction(p), ALPHA) for n, p in BAND_CASES}


@pytest.mark.parametrize(("n", "p"), BAND_CASES)
def test_band_matches_brute_force(n, p, exact_bands):
    assert binomial_band(n, float(p), float(ALPHA)) == exact_bands[(n, p)]


@pytest.mark.parametrize(("n", "p"), BAND_CASES)
def test_band_tails_are_within_alpha_and_tight(n, p):
    lo, hi = binomial_band(n, float(p), float(ALPHA))
    pmf = exact_pmf(n, Fraction(p))
    below, above = exact_tails(pmf, lo, hi)
    assert below <= ALPHA / 2 and above <= ALPHA / 2
    # Tight: a narrower band on either side would exceed alpha/2 on that side.
    if lo < n:
        assert exact_tails(pmf, lo + 1, hi)[0] > ALPHA / 2
    if hi > 0:
        assert exact_tails(pmf, lo, hi - 1)[1] > ALPHA / 2


@pytest.mark.parametrize(("n", "p"), BAND_CASES)
def test_false_failure_probability_is_exact(n, p):
    band = binomial_band(n, float(p), float(ALPHA))
    below, above = exact_tails(exact_pmf(n, Fraction(p)), *band)
    assert false_failure_probability(n, float(p), band) == pytest.approx(float(below + above), rel=1e-9)


def test_band_for_large_n_contains_the_mean():
    lo, hi = binomial_band(5000, 0.3)
    assert lo < 1500 < hi
    assert false_failure_probability(5000, 0.3, (lo, hi)) <= 1e-6


def test_zero_and_one_are_exact():
    assert binomial_band(100, 0.0) == (0, 0)
    assert binomial_band(100, 1.0) == (100, 100)
    assert false_failure_probability(100, 0.0, (0, 0)) == 0.0
    assert false_failure_probability(100, 1.0, (100, 100)) == 0.0


# --------------------------------------------------------------------------- splits


def test_parse_shares_reads_a_split_as_features_state_it():
    from bookinfo_labs.checks import parse_shares

    assert parse_shares("v1 90% and v2 10%") == {"v1": 90.0, "v2": 10.0}
    assert parse_shares("503 12.5% and 200 87.5%") == {"503": 12.5, "200": 87.5}
    with pytest.raises(ValueError, match="cannot read 'v1 90'"):
        parse_shares("v1 90 and v2 10%")


def test_a_deadline_failure_carries_the_last_assertion_alone():
    """Reports show the one line that says what was wrong, not the whole account."""
    from bookinfo_labs.checks.eventually import EventuallyError

    observe = Script(itertools.repeat(("bad", 1)))
    with pytest.raises(EventuallyError) as failure:
        eventually(observe, check_ok, expected="ok", timeout_s=0.0, _sleep=no_sleep)
    assert failure.value.last == "('bad', 1) is not ok"  # without pytest's assert explanation
    assert str(failure.value).startswith("eventually: expected ok")
