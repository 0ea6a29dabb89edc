"""``consistently``: keep observing until a moment; the first breaking observation fails."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from bookinfo_labs.checks.consistently import MIRROR_LAG_S, consistently, mirror_copies_landed_by


class Clock:
    """A fake monotonic clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _empty(lines):
    assert not lines, f"found {lines}"


def test_watches_until_the_moment_then_returns_the_last_observation():
    clock, seen = Clock(), []

    def observe():
        seen.append(clock.now)
        return []

    assert consistently(observe, _empty, expected="nothing", until=101.0, interval_s=0.3,
                        _sleep=clock.sleep, _clock=lambda: clock.now) == []
    assert seen[-1] >= 101.0 and seen[-2] < 101.0  # watched up to the end, not past it
    assert max(clock.sleeps) <= 0.3 and clock.now <= 101.0 + 1e-9  # never slept past it


def test_the_first_breaking_observation_fails_at_once_saying_what_it_saw():
    clock, script = Clock(), iter([[], [], ["GET /headers?nonce=ab12"], []])
    with pytest.raises(AssertionError) as failure:
        consistently(lambda: next(script), _empty, expected="v2 logs nothing", until=105.0,
                     interval_s=0.5, _sleep=clock.sleep, _clock=lambda: clock.now)
    message = str(failure.value)
    assert "expected v2 logs nothing" in message
    assert "observation #3 (4.00 s before the window ended)" in message
    assert "nonce=ab12" in message
    assert clock.now == 101.0  # it did not wait out the window


def test_a_moment_already_past_still_gets_one_observation():
    clock, calls = Clock(), []
    consistently(lambda: calls.append(1) or [], _empty, expected="x", until=50.0,
                 _sleep=clock.sleep, _clock=lambda: clock.now)
    assert calls == [1] and clock.sleeps == []
    with pytest.raises(AssertionError, match="at the window's end"):
        consistently(lambda: ["late"], _empty, expected="x", until=50.0,
                     _sleep=clock.sleep, _clock=lambda: clock.now)


def test_a_check_returning_false_breaks_it():
    with pytest.raises(AssertionError, match="check returned False"):
        consistently(lambda: 1, lambda value: False, expected="x", until=0.0)


def test_interval_must_be_positive():
    with pytest.raises(ValueError):
        consistently(lambda: [], _empty, expected="x", until=0.0, interval_s=0)


def test_mirror_copies_land_by_the_slowest_answer_after_the_last_plus_the_lag():
    batch = SimpleNamespace(finished_at=10.0,
                            responses=[SimpleNamespace(elapsed_s=t) for t in (0.1, 1.2, 0.4)])
    assert mirror_copies_landed_by(batch) == pytest.approx(10.0 + 1.2 + MIRROR_LAG_S)
    assert mirror_copies_landed_by(SimpleNamespace(finished_at=3.0, responses=[])) == 3.0 + MIRROR_LAG_S
