"""A weighted split checked the way every other traffic check is: through ``Lab.expect``.

On a cluster a batch sent while istiod was still pushing the new weights shows the old
split; ``expect`` sends the same kind of batch again until the split holds its streak.
Each batch is an independent exact binomial check (false failure at most 1e-6 each), so a
re-send only lowers the chance of failing a correct mesh. The table of the batch that
passed is printed; a failure carries the table of the last batch (the one that failed).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from .stats import SplitCheck, check_split

__all__ = ["expect_split"]


def expect_split(lab: Any, expected: str, counts: Callable[[Any], Mapping[str, int]],
                 shares: Mapping[str, float],
                 say: Callable[[str], None] = print) -> SplitCheck:
    """``counts(traffic)`` per category must match ``shares`` (weights, normalised).

    ``counts`` is called once per batch (it may be slow: a mirror count waits for the
    copies to land); the result of the batch ``expect`` returns is the one shown.
    """
    results: list[SplitCheck] = []

    def check(traffic: Any) -> None:
        results.append(check_split(counts(traffic), shares))
        results[-1].assert_ok()

    lab.expect(expected, check)
    say(results[-1].table())  # expect returns the batch it checked last
    return results[-1]
