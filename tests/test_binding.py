"""Scenario tests named so that ``-k`` finds a scenario by the numbers in its name."""

from __future__ import annotations

import textwrap

import pytest

from bookinfo_labs.binding import scenario_test_name

FEATURE = """\
Feature: Timeouts
  Scenario: A 0.5 s timeout on reviews
    Given nothing

  Scenario: The fix waits only 2.5 s, v1.2 or not
    Given nothing

  Scenario: The fix waits only 2.5 s, v1.2 or not!
    Given nothing

  Scenario Outline: <n> tries
    Given nothing

    Examples:
      | n |
      | 1 |
      | 3 |
"""


@pytest.mark.parametrize("scenario, name", [
    ("A 0.5 s timeout on reviews", "test_a_0_5_s_timeout_on_reviews"),
    ("Seen directly, reviews answers 504 \"upstream request timeout\" after 0.5 s",
     "test_seen_directly_reviews_answers_504_upstream_request_timeout_after_0_5_s"),
    ("The fix: reviews v3 waits only 2.5 s for ratings",
     "test_the_fix_reviews_v3_waits_only_2_5_s_for_ratings"),
    ("Canary step <old>% v1, <new>% v2", "test_canary_step_old_v1_new_v2"),  # as pytest-bdd
    ("istio.io says 1. then 2.", "test_istioio_says_1_then_2"),  # only a decimal point
])
def test_a_decimal_point_is_kept_as_an_underscore(scenario, name):
    assert scenario_test_name(scenario) == name


@pytest.fixture
def project(pytester: pytest.Pytester):
    pytester.makeini("[pytest]\nbdd_features_base_dir = features/\n")
    pytester.makeconftest(textwrap.dedent("""
        from pytest_bdd import given

        @given("nothing")
        def nothing():
            pass
    """))
    pytester.mkdir("features")
    pytester.path.joinpath("features", "timeouts.feature").write_text(FEATURE)
    pytester.path.joinpath("features", "test_timeouts.py").write_text(
        "from bookinfo_labs.binding import scenarios\n\nscenarios('.')\n")
    return pytester


def test_scenarios_are_bound_under_names_that_keep_the_decimal_point(project):
    result = project.runpytest("--collect-only", "-q", "-p", "no:cacheprovider")
    result.assert_outcomes()
    listed = [line.split("::")[1] for line in result.outlines if "::" in line]
    assert listed == [
        "test_a_0_5_s_timeout_on_reviews",
        "test_the_fix_waits_only_2_5_s_v1_2_or_not",
        "test_the_fix_waits_only_2_5_s_v1_2_or_not_1",  # the same name twice, as pytest-bdd
        "test_n_tries[1]",
        "test_n_tries[3]",
    ]


def test_k_selects_a_scenario_by_its_decimal_number(project):
    result = project.runpytest("-k", "0_5", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, deselected=4)
