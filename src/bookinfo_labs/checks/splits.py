"""A weighted split checked the way every other traffic check is: through ``Lab.expect``.

On a cluster a batch sent while istiod was still pushing the new weights shows the old
split; ``expect`` sends the same kind of batch again until the split holds its streak.
Each batch is an independent exact binomial check (false failure at most 1e-6 each), so a
re-send only lowers the chance of failing a correct mesh. The table of the batch that
passed is printed; a failure carries the table of the last batch (the one that failed).
Either way that batch is recorded for the lab report's chart (``Lab.record_figure``).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from .stats import SplitCheck, check_split

__all__ = ["expect_split", "split_figure"]


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

    try:
        lab.expect(expected, check)
    finally:
        if results:  # the batch checked last, passed or failed, for the report's chart
            lab.record_figure("split", **split_figure(expected, results[-1]))
    say(results[-1].table())  # expect returns the batch it checked last
    return results[-1]


def split_figure(title: str, split: SplitCheck) -> dict:
    """What the report's chart of a split check draws: per category the count, the
    expected share and the acceptance band (counts) the check used."""
    return {"title": title, "n": split.n, "alpha": split.alpha,
            "rows": [{"category": row.category, "observed": row.observed,
                      "expected_share": row.expected_share, "band": list(row.band)}
                     for row in split.rows]}
