"""``consistently``: a check that must keep holding until a moment, for "nothing arrives".

``eventually`` waits for something to become true; a negative check ("v2 logged none of
the tagged requests") is the opposite: one look right after the answers proves nothing if
the thing can still arrive. ``consistently`` keeps observing until a stated moment and
fails at the first observation that breaks the check, so a late arrival is caught as
soon as it shows, and a pass means the whole window was watched.
"""

from __future__ import annotations

import time
from typing import Callable, Protocol, Sequence, TypeVar

__all__ = ["MIRROR_LAG_S", "consistently", "mirror_copies_landed_by"]

T = TypeVar("T")

#: What a mirrored copy may lag behind the request it copies, beyond that request's own
#: time: Envoy opens a connection to the mirror cluster (the original reused a warm one),
#: the mirror's app writes its log line when it answers, and the log reader (``kubectl
#: logs`` on a cluster) sees the line. Each is well under a second; 1 s covers them.
MIRROR_LAG_S = 1.0


class _Response(Protocol):
    elapsed_s: float


class _Batch(Protocol):
    responses: Sequence[_Response]
    finished_at: float


def _short(value: object, limit: int = 500) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"


def mirror_copies_landed_by(traffic: _Batch) -> float:
    """The moment (monotonic clock) by which every mirrored copy of ``traffic`` has landed.

    Envoy sends the copy of a request in parallel with the request itself and does not
    wait for it (fire-and-forget), to another version of the same app. So the copy of a
    request lands about when the request was answered, and no later than the slowest
    answer of the batch after its last answer (a copy as slow as the slowest request,
    started when the last one was, at the latest), plus ``MIRROR_LAG_S`` for what the
    copy pays and the original did not. After that, a copy that has not shown never will.
    """
    slowest = max((r.elapsed_s for r in traffic.responses), default=0.0)
    return traffic.finished_at + slowest + MIRROR_LAG_S


def consistently(
    observe: Callable[[], T],
    check: Callable[[T], None],
    *,
    expected: str,
    until: float,
    interval_s: float = 0.1,
    _sleep: Callable[[float], None] = time.sleep,
    _clock: Callable[[], float] = time.monotonic,
) -> T:
    """Observe until one observation starts at or after ``until`` (monotonic clock); return it.

    ``check`` raises ``AssertionError`` (or returns ``False``) when an observation breaks
    it; the first such observation fails at once with an ``AssertionError`` stating
    ``expected``, when it was made relative to ``until``, the check's message and the
    observation. Observations are ``interval_s`` apart (never past ``until``); there is
    always at least one. ``_sleep`` and ``_clock`` are for tests.
    """
    if interval_s <= 0:
        raise ValueError(f"interval_s must be above 0, got {interval_s}")
    count = 0
    while True:
        started = _clock()
        observation = observe()
        count += 1
        try:
            if check(observation) is False:
                raise AssertionError(f"check returned False for {observation!r}")
        except AssertionError as error:
            when = started - until
            at = f"{-when:.2f} s before the window ended" if when < 0 else "at the window's end"
            raise AssertionError(
                f"consistently: expected {expected} until the window ends\n"
                f"  observation #{count} ({at}) broke it: {str(error).strip()}\n"
                f"  observed: {_short(observation)}") from None
        if started >= until:
            return observation
        _sleep(max(0.0, min(interval_s, until - _clock())))
