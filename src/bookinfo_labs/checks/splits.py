"""A weighted split checked the way every other traffic check is: through ``Lab.expect``.

Each observation is one sequential test (``sequential.py``): it starts from the batch the
When step sent (or a re-send of it) and sends more of the same kind, a batch at a time,
until the test decides. On a cluster a test run while istiod was still pushing the new
weights sees the old split and fails; ``expect`` starts a new one, and the assertion
passes once ``times`` tests in a row have passed, from at most ``times + RESTARTS`` tests:
the bounds each test is designed for count exactly that. The table of the test that
decided last is printed; a failure carries it.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from .sequential import BATCH, SequentialSplit, step_bounds

__all__ = ["expect_split"]


def expect_split(lab: Any, expected: str, counts: Callable[[Any], Mapping[str, int]],
                 shares: Mapping[str, float],
                 say: Callable[[str], None] = print) -> SequentialSplit:
    """``counts(traffic)`` per category must match ``shares`` (weights, normalised).

    ``counts`` is called once per batch (it may be slow: a mirror count waits for the
    copies to land). The When step's batch is the test's first look; each further look
    sends ``BATCH`` more requests of the same kind (``lab.send_more``).
    """
    bounds = step_bounds(lab.policy.times)
    tests: list[SequentialSplit] = []
    # the designs (exact, ~1 s each the first time) before the clock of ``expect`` starts
    SequentialSplit(shares, bounds, first=lab.traffic.count, batch=BATCH)

    def check(traffic: Any) -> None:
        test = SequentialSplit(shares, bounds, first=traffic.count, batch=BATCH)
        tests.append(test)
        test.add(counts(traffic))
        while test.verdict is None:
            test.add(counts(lab.send_more(BATCH)))
        test.assert_ok()

    try:
        lab.expect(expected, check, max_observations=bounds.max_tests)
    finally:
        if tests:
            _record(lab, expected, tests[-1])
    say(tests[-1].table())  # kept with the test's output, shown when it fails
    return tests[-1]


def _record(lab: Any, expected: str, test: SequentialSplit) -> None:
    """The last test, as the lab report's page draws it."""
    lab.record_figure(
        "split", title=expected, requests=test.n, looks=test.looks,
        verdict=test.verdict or "undecided",
        categories=[{"name": c, "expected_share": test.shares.get(c, 0.0),
                     "observed": test.counts.get(c, 0), "accepted": list(test.accepted(c))}
                    for c in list(test.shares) + [c for c in test.counts
                                                  if c not in test.shares]],
        false_failure=test.false_failure, miss=test.miss)
