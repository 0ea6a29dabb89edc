"""The sequential split tests: every split the features check is told from its lab's
neighbouring split, with both error bounds computed exactly (no sampling) and met."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from bookinfo_labs.checks import binomial_band, parse_shares
from bookinfo_labs.checks.eventually import EventuallyPolicy
from bookinfo_labs.checks.sequential import (
    BATCH, FALSE_FAILURE, MISS, RESOLUTION, SequentialSplit, design, operating_characteristic,
    step_bounds,
)
from bookinfo_labs.checks.splits import expect_split

FEATURES = Path(__file__).resolve().parent.parent / "features"
_SPLIT = re.compile(r"(?:are split|logged about) (?P<spec>.+?)(?: of the tagged requests)?$")


def _feature_splits() -> dict[str, list[dict[str, float]]]:
    """Every split a feature checks, Scenario Outline rows expanded, by feature file."""
    out: dict[str, list[dict[str, float]]] = {}
    for path in sorted(FEATURES.rglob("*.feature")):
        lines = [line.strip() for line in path.read_text().splitlines()]
        for i, line in enumerate(lines):
            match = _SPLIT.search(line)
            if not match or not line.startswith(("Then", "And")):
                continue
            spec = match.group("spec")
            if spec.startswith("about "):
                spec = spec[len("about "):]
            rows = _examples(lines, i) if "<" in spec else [{}]
            for row in rows:
                text = spec
                for key, value in row.items():
                    text = text.replace(f"<{key}>", value)
                shares = (parse_shares(text) if " and " in text
                          else {"mirrored": float(text[:-1]), "not mirrored": 100 - float(text[:-1])})
                out.setdefault(path.name, []).append(shares)
    return out


def _examples(lines: list[str], start: int) -> list[dict[str, str]]:
    """The rows of the first Examples table after line ``start``."""
    at = next(i for i in range(start, len(lines)) if lines[i].startswith("Examples:"))
    table = []
    for line in lines[at + 1:]:
        if not line.startswith("|"):
            if table:
                break
            continue
        table.append([cell.strip() for cell in line.strip("|").split("|")])
    header, *rows = table
    return [dict(zip(header, row)) for row in rows]


SPLITS = _feature_splits()
CASES = [(name, shares) for name, splits in SPLITS.items() for shares in splits]


def test_the_features_check_splits_in_every_weighted_lab():
    assert {"traffic_shifting.feature", "tcp_traffic_shifting.feature", "fault_injection.feature",
            "mirroring.feature", "retries.feature"} <= set(SPLITS)


def _normalised(shares: dict[str, float]) -> dict[str, float]:
    total = sum(shares.values())
    return {c: s / total for c, s in shares.items()}


@pytest.mark.parametrize("feature,shares", CASES, ids=[f"{n}:{s}" for n, s in CASES])
def test_no_lab_has_steps_closer_than_the_resolution(feature, shares):
    """The neighbour a check must reject is the lab's nearest other step, or 10 points:
    checking at 10 points covers both when no two steps of a lab are closer."""
    mine = _normalised(shares)
    for other in SPLITS[feature]:
        theirs = _normalised(other)
        if set(theirs) == set(mine) and theirs != mine:
            distance = max(abs(theirs[c] - mine[c]) for c in mine)
            assert distance >= RESOLUTION - 1e-12, (feature, shares, other)


@pytest.mark.parametrize("times", [3, 1])
@pytest.mark.parametrize("feature,shares", CASES, ids=[f"{n}:{s}" for n, s in CASES])
def test_every_feature_split_meets_both_bounds_exactly(feature, shares, times):
    """Exact operating characteristics: a correct mesh passes the assertion with probability
    at least 1 - 1e-6, and a split 10 points off (both sides; the lab's own neighbouring
    steps are at least that far, see above) passes it with probability at most 1e-3."""
    bounds = step_bounds(times)
    test = SequentialSplit(shares, bounds)
    if not test.tested:  # 0 % / 100 %: an exact check, no chance involved
        return
    assert len(test.tested) == 1  # every lab split has two categories
    d = test.designs[test.tested[0]]
    _, false_failure, _ = operating_characteristic(d, d.p0)
    assert bounds.max_tests * false_failure <= FALSE_FAILURE
    for neighbour in d.neighbours:
        passed, _, _ = operating_characteristic(d, neighbour)
        assert bounds.miss(passed) <= MISS, (neighbour, passed)
    for other in SPLITS[feature]:  # the lab's actual neighbouring steps, where it has them
        share = _normalised(other).get(test.tested[0])
        if share is not None and abs(share - d.p0) >= RESOLUTION - 1e-12:
            passed, _, _ = operating_characteristic(d, share)
            assert bounds.miss(passed) <= MISS, (other, passed)


def test_farther_splits_are_caught_more_often_than_the_neighbour():
    """The miss probability falls as the true share moves away (the bound at 10 points is
    the worst case of everything at least that far)."""
    d = design(0.5, step_bounds(3).alpha, step_bounds(3).beta)
    passes = [operating_characteristic(d, 0.5 + delta)[0] for delta in (0.1, 0.15, 0.2, 0.3)]
    assert passes == sorted(passes, reverse=True) and passes[-1] < 1e-6


def test_a_fixed_200_request_band_cannot_tell_neighbouring_steps_apart():
    """The issue's measurement: with 200 requests, 90/10's band also holds 80/20's mean."""
    lo, hi = binomial_band(200, 0.10, 5e-7)
    assert lo <= 0.20 * 200 <= hi  # 80/20 passes as 90/10


def _draw(rng: random.Random, share: float, n: int) -> int:
    return sum(rng.random() < share for _ in range(n))


def _run(rng: random.Random, weights: dict[str, float], truth: dict[str, float]) -> str:
    test = SequentialSplit(weights, step_bounds(3))
    categories = list(truth)
    while test.verdict is None:
        counts = dict.fromkeys(categories, 0)
        for _ in range(BATCH):
            counts[rng.choices(categories, [truth[c] for c in categories])[0]] += 1
        test.add(counts)
    return test.verdict


def test_seeded_simulation_agrees_with_the_exact_figures():
    """A sanity check only (the bounds come from the exact computation): the right split
    always passes, the neighbouring one passes about as often as the design says."""
    rng = random.Random(20261127)
    right = [_run(rng, {"v1": 90, "v2": 10}, {"v1": 0.9, "v2": 0.1}) for _ in range(200)]
    assert right.count("pass") == 200
    wrong = [_run(rng, {"v1": 90, "v2": 10}, {"v1": 0.8, "v2": 0.2}) for _ in range(200)]
    d = design(0.9, step_bounds(3).alpha, step_bounds(3).beta)
    expected = operating_characteristic(d, 0.8)[0]
    lo, hi = binomial_band(200, expected, 1e-6)
    assert lo <= wrong.count("pass") <= hi


def test_an_unexpected_category_fails_at_once():
    test = SequentialSplit({"v1": 50, "v3": 50}, step_bounds(3))
    test.add({"v1": 24, "v3": 25, "v2": 1})
    assert test.verdict == "fail" and test.looks == 1


def test_all_traffic_to_one_version_is_an_exact_check():
    test = SequentialSplit({"v1": 0, "v2": 100}, step_bounds(3))
    test.add({"v2": BATCH})
    assert test.verdict == "pass" and test.false_failure == 0.0
    wrong = SequentialSplit({"v1": 0, "v2": 100}, step_bounds(3))
    wrong.add({"v2": BATCH - 1, "v1": 1})
    assert wrong.verdict == "fail"


def test_a_look_takes_the_batch_it_was_designed_for():
    test = SequentialSplit({"v1": 50, "v3": 50}, step_bounds(3))
    with pytest.raises(ValueError, match="takes 50 requests, got 49"):
        test.add({"v1": 24, "v3": 25})


def test_the_table_states_both_bounds_for_the_test_and_the_assertion():
    test = SequentialSplit({"v1": 50, "v3": 50}, step_bounds(3))
    while test.verdict is None:
        test.add({"v1": 25, "v3": 25})
    table = test.table()
    assert test.verdict == "pass"
    for text in ("category", "expected", "observed", "passes at this n", "v1", "v3",
                 "sequential probability ratio test", "false failure <=",
                 "a split 10% off passes <=", "3 passing tests in a row, at most 7 tests"):
        assert text in table
    assert f"{test.n} requests in {test.looks} looks" in table


class _Traffic:
    def __init__(self, count: int):
        self.count = count


class _Lab:
    """Sends batches whose v2 share is ``share``, counted deterministically."""

    def __init__(self, share: float, times: int = 3):
        self.policy = EventuallyPolicy(times=times, timeout_s=5.0)
        self.share, self.sent, self.figures, self.rng = share, [], [], random.Random(7)
        self.traffic = _Traffic(BATCH)

    def send_more(self, count):
        self.sent.append(count)
        self.traffic = _Traffic(count)
        return self.traffic

    def counts(self, traffic):
        v2 = _draw(self.rng, self.share, traffic.count)
        return {"v1": traffic.count - v2, "v2": v2}

    def expect(self, expected, check, max_observations=None):
        from bookinfo_labs.checks import eventually
        pending = [self.traffic]
        return eventually(lambda: pending.pop() if pending else self.send_more(BATCH), check,
                          expected=expected, policy=self.policy,
                          max_observations=max_observations, _sleep=lambda s: None)

    def record_figure(self, kind, **data):
        self.figures.append({"kind": kind, **data})


def test_expect_split_sends_more_until_each_test_decides_and_records_the_figure():
    lab = _Lab(0.1)
    said = []
    test = expect_split(lab, "reviews split", lab.counts, {"v1": 90, "v2": 10}, say=said.append)
    assert test.verdict == "pass" and set(lab.sent) == {BATCH}
    assert said and "sequential probability ratio test" in said[0]
    figure = lab.figures[-1]
    assert figure["kind"] == "split" and figure["requests"] == test.n
    assert {c["name"] for c in figure["categories"]} == {"v1", "v2"}


def test_expect_split_fails_a_wrong_split_within_its_test_budget():
    lab = _Lab(0.3)
    with pytest.raises(AssertionError, match="traffic split outside what the test accepts"):
        expect_split(lab, "reviews split", lab.counts, {"v1": 90, "v2": 10}, say=lambda s: None)
    assert lab.figures[-1]["verdict"] == "fail"
