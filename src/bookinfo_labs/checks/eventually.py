"""``eventually``: poll an observation until a check holds N consecutive times.

Mesh config converges asynchronously (Pilot pushes to each Envoy at its own pace), so one
passing observation may come from an Envoy that already has the new config while the next
request lands on one that does not. Requiring a streak of consecutive passes makes a
scenario fail on flapping instead of passing by luck. See docs/architecture.md#eventually.

Steps never sleep; they call ``eventually`` with an ``observe`` (send traffic, read a page)
and a ``check`` (plain ``assert`` statements).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Callable, TypeVar

from tenacity import (
    RetryCallState,
    RetryError,
    Retrying,
    retry_if_exception_type,
    retry_if_result,
    stop_after_delay,
    wait_random_exponential,
)

__all__ = ["EventuallyError", "EventuallyPolicy", "eventually"]

T = TypeVar("T")

# First backoff window after a failure; it doubles per consecutive failure up to
# ``max_backoff_s``. Small, because on the local mesh a failure is usually a real one and we
# do not want to waste the timeout, while on kube a few doublings reach the cap quickly.
_BACKOFF_MULTIPLIER_S = 0.1
_KEEP_OBSERVATIONS = 5
_REPR_LIMIT = 300


@dataclass(frozen=True)
class EventuallyPolicy:
    """Defaults a mesh carries for ``eventually`` (the local mesh applies config synchronously
    and needs no interval; the kube mesh waits ~0.5 s between observations)."""

    times: int = 3
    timeout_s: float = 30.0
    interval_s: float = 0.0


class EventuallyError(AssertionError):
    """A check that did not hold its streak before the deadline.

    ``last`` is the last failed observation's own message (``back after 1.62 s, expected
    1.25 ± 0.35``): the one line that says what was wrong, for reports; ``expected`` what
    the check waited for (``reviews versions split v1 50% and v3 50%``).
    """

    def __init__(self, message: str, last: str, expected: str = ""):
        super().__init__(message)
        self.last = last
        self.expected = expected


def _short_repr(value: object) -> str:
    text = repr(value)
    if len(text) > _REPR_LIMIT:
        text = f"{text[:_REPR_LIMIT]}... ({len(text)} chars)"
    return text


class _Streak:
    """The bookkeeping of one ``eventually`` call: the streak, and what to report on failure."""

    def __init__(self, times: int) -> None:
        self.times = times
        self.current = 0
        self.best = 0
        self.count = 0
        self.failures_in_a_row = 0
        self.last_error: AssertionError | None = None
        self.recent: deque[tuple[int, bool, str]] = deque(maxlen=_KEEP_OBSERVATIONS)

    def record(self, observation: object, error: AssertionError | None) -> None:
        self.count += 1
        self.recent.append((self.count, error is None, _short_repr(observation)))
        if error is None:
            self.current += 1
            self.failures_in_a_row = 0
            self.best = max(self.best, self.current)
        else:
            self.current = 0
            self.failures_in_a_row += 1
            self.last_error = error

    @property
    def done(self) -> bool:
        return self.current >= self.times


# Returned by one attempt that passed but has not completed the streak yet.
_PENDING = object()


def eventually(
    observe: Callable[[], T],
    check: Callable[[T], None],
    *,
    expected: str,
    times: int | None = None,
    timeout_s: float | None = None,
    interval_s: float | None = None,
    max_backoff_s: float = 2.0,
    max_observations: int | None = None,
    policy: EventuallyPolicy | None = None,
    _sleep: Callable[[float], None] | None = None,
) -> T:
    """Observe until ``check`` holds ``times`` consecutive times; return the last observation.

    ``check`` signals "not (yet)" by raising ``AssertionError`` (a check that returns
    ``False`` counts as failed too, so a bare predicate cannot pass by accident). Any other
    exception from ``observe`` or ``check`` is a bug or an infrastructure error and
    propagates at once.

    Waits ``interval_s`` between passing observations; after a failed one it backs off
    exponentially with full jitter (capped at ``max_backoff_s``) plus ``interval_s``. No wait
    after a failure runs past the deadline, and one last observation is made at the deadline;
    a streak already under way then runs to its end or its first failure (the deadline bounds
    convergence, not how long the observations themselves take). When ``timeout_s`` passes
    without a full streak it raises ``AssertionError`` stating
    ``expected``, the streak needed and reached, the elapsed time, the last assertion
    message and the last observations.

    ``max_observations`` also ends the wait after that many observations (a check whose
    error bounds count its observations, such as a sequential split test, states it).

    ``times``, ``timeout_s`` and ``interval_s`` default to ``policy`` (or
    ``EventuallyPolicy()``); explicit arguments win. ``_sleep`` is for tests only: it
    replaces tenacity's sleep (e.g. with a no-op or a recorder).
    """
    base = policy or EventuallyPolicy()
    times = base.times if times is None else times
    timeout_s = base.timeout_s if timeout_s is None else timeout_s
    interval_s = base.interval_s if interval_s is None else interval_s
    if times < 1:
        raise ValueError(f"times must be at least 1, got {times}")
    if timeout_s < 0 or interval_s < 0 or max_backoff_s < 0:
        raise ValueError("timeout_s, interval_s and max_backoff_s must not be negative")

    streak = _Streak(times)
    backoff = wait_random_exponential(multiplier=_BACKOFF_MULTIPLIER_S, max=max_backoff_s)
    start = time.monotonic()

    def attempt() -> object:
        observation = observe()
        try:
            if check(observation) is False:
                raise AssertionError(f"check returned False for {_short_repr(observation)}")
        except AssertionError as error:
            streak.record(observation, error)
            raise
        streak.record(observation, None)
        return observation if streak.done else _PENDING

    def wait(retry_state: RetryCallState) -> float:
        seconds = interval_s
        if streak.current == 0:
            # The exponent follows failures in a row, not tenacity's attempt count (which
            # also counts passes), so a flap after a long partial streak restarts the
            # backoff small. tenacity's wait strategies only read ``attempt_number``.
            seconds += backoff(SimpleNamespace(attempt_number=streak.failures_in_a_row))
            # Never sleep past the deadline (on tenacity's clock, which its stop also
            # uses): the last attempt at a new streak happens at the deadline.
            remaining = timeout_s - (time.monotonic() - retry_state.start_time)
            seconds = max(0.0, min(seconds, remaining))
        return seconds

    def stop(retry_state: RetryCallState) -> bool:
        # The deadline bounds the wait for the mesh to converge, not the observations: a
        # streak under way at the deadline runs to its end or its first failure, so a
        # batch that itself takes longer than the deadline (a 7 s delay lab) can pass.
        if max_observations is not None and streak.count >= max_observations:
            return True
        return streak.current == 0 and stop_after_delay(timeout_s)(retry_state)

    retrying = Retrying(
        stop=stop,
        wait=wait,
        retry=retry_if_exception_type(AssertionError) | retry_if_result(lambda r: r is _PENDING),
        sleep=_sleep if _sleep is not None else time.sleep,
    )
    try:
        return retrying(attempt)
    except RetryError:
        pass  # reported below, outside the except block so the traceback stays short
    raise EventuallyError(_failure_message(streak, expected, time.monotonic() - start),
                          _last_assertion(streak), expected)


def _last_assertion(streak: _Streak) -> str:
    if streak.last_error is None:
        return "(none: every observation passed, but the deadline came before the streak)"
    # The check's own message; pytest's explanation of a rewritten assert ("assert {'v1'}
    # == {'v2'}", a diff...) follows it and only repeats it, unless there is no message.
    lines = str(streak.last_error).strip().splitlines()
    end = next((i for i, line in enumerate(lines) if i and line.startswith("assert ")), len(lines))
    return "\n".join(lines[:end]) or type(streak.last_error).__name__


def _failure_message(streak: _Streak, expected: str, elapsed_s: float) -> str:
    last = _last_assertion(streak).replace("\n", "\n    ")
    lines = [
        f"eventually: expected {expected}",
        f"  needed {streak.times} consecutive passes; best streak {streak.best} "
        f"of {streak.times}, over {streak.count} observations in {elapsed_s:.2f} s",
        f"  last assertion: {last}",
        f"  last {len(streak.recent)} observations (oldest first):",
    ]
    lines += [
        f"    #{number} {'pass' if passed else 'FAIL'}: {text}"
        for number, passed, text in streak.recent
    ]
    return "\n".join(lines)
