"""The pytest plugin seen from outside: throwaway projects run in a pytest subprocess."""

import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    """A lab project using our plugin and steps, with one feature folder."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makeini("[pytest]\nbdd_features_base_dir = features/\n")
    pytester.makeconftest(textwrap.dedent('''
        from pytest_bdd import given, then
        from bookinfo_labs.manifests import load_file

        pytest_plugins = ["bookinfo_labs.plugin", "steps.common", "steps.traffic",
                          "steps.bookinfo"]

        @given("something applies config behind the scenario's back")
        def sneaky(mesh):
            mesh.apply(load_file("virtual-service-reviews-v3.yaml"))

        @then("the scenario fails")
        def fails():
            raise AssertionError("failing on purpose")

        @then("nothing is applied")
        def nothing(mesh):
            assert mesh.owned_resources() == set(), mesh.owned_resources()
    '''))
    pytester.mkdir("features")
    pytester.path.joinpath("features", "test_features.py").write_text(
        "from pytest_bdd import scenarios\nscenarios('.')\n")

    def feature(text: str) -> None:
        pytester.path.joinpath("features", "lab.feature").write_text(textwrap.dedent(text))

    pytester.feature = feature
    return pytester


def test_an_unknown_step_names_the_step_its_line_and_the_closest_known_steps(project):
    project.feature("""
        Feature: Typo
          Scenario: jason
            Given the Bookinfo sample is running
            When jason log in
    """)
    result = project.runpytest_subprocess("features", "--lab-report", "out")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        '*Unknown step "When jason log in" at *lab.feature:5.*',
        "*Closest known steps:*",
        "*{user} logs in*",
    ])


def test_the_leak_check_fails_the_scenario_that_left_config_behind(project):
    project.feature("""
        Feature: Leaky
          Scenario: leaks
            Given the Bookinfo sample is running
            And something applies config behind the scenario's back
    """)
    result = project.runpytest_subprocess("features", "--lab-report", "out")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*the scenario left config behind: VirtualService/reviews*"])


def test_what_a_failed_scenario_applied_is_removed_before_the_next_one(project):
    project.feature("""
        Feature: Cleanup
          Scenario: fails after applying
            Given the Bookinfo sample is running
            And I apply "virtual-service-all-v1.yaml"
            Then the scenario fails

          Scenario: starts clean
            Given the Bookinfo sample is running
            Then nothing is applied
    """)
    result = project.runpytest_subprocess("features", "-p", "no:randomly", "--lab-report", "out")
    result.assert_outcomes(passed=1, failed=1)
    # the failure carries what was applied, for the learner or the nightly job to read
    result.stdout.fnmatch_lines(["*bookinfo-labs diagnostics*", "== applied YAML ==",
                                 "kind: VirtualService"])


def test_the_lab_report_lists_each_lab_with_its_outcome(project):
    project.feature("""
        Feature: Reporting
          Scenario: passes
            Given the Bookinfo sample is running
          Scenario: fails
            Then the scenario fails
    """)
    result = project.runpytest_subprocess("features", "--lab-report", "out")
    result.stdout.fnmatch_lines(["*lab report*", "Reporting*failed*1*1*", "    failed: fails*"])
    import json

    report = json.loads((project.path / "out" / "labs.json").read_text())
    assert report["labs"][0]["lab"] == "Reporting" and report["labs"][0]["failed"] == 1


def test_kube_without_a_cluster_stops_at_once_naming_make_kind_up(project, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(project.path / "no-such-kubeconfig"))
    project.feature("""
        Feature: Anything
          Scenario: never runs
            Given the Bookinfo sample is running
    """)
    result = project.runpytest_subprocess("features", "--mesh", "kube")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: bookinfo-labs: no cluster reachable at context "
                                 "kind-bookinfo-labs: run `make kind-up`*"])
    assert "never runs" not in result.stdout.str() and "passed" not in result.stdout.str()


def test_kube_refuses_a_context_that_is_not_kind_without_allow_any_context(project):
    project.feature("""
        Feature: Anything
          Scenario: never runs
            Given the Bookinfo sample is running
    """)
    result = project.runpytest_subprocess("features", "--mesh", "kube", "--kube-context", "prod")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: bookinfo-labs: refusing kube context 'prod'*--allow-any-context*"])


def test_explain_prints_each_step_and_its_kubectl_and_curl_equivalent(project):
    project.feature("""
        Feature: Explained
          Scenario: jason
            Given the Bookinfo sample is running
            And I apply "virtual-service-reviews-test-v2.yaml"
            When jason logs in
            And jason opens the product page 2 times
    """)
    result = project.runpytest_subprocess("features", "--explain", "-k", "jason")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        "# Given the Bookinfo sample is running",
        "kubectl apply -f manifests/bookinfo/platform/bookinfo.yaml",
        '# And I apply "virtual-service-reviews-test-v2.yaml"',
        "kubectl apply -f manifests/bookinfo/networking/virtual-service-reviews-test-v2.yaml",
        "# When jason logs in",
        "kubectl exec deploy/curl -c curl -- curl * --data 'username=jason&passwd=password'*",
        "# And jason opens the product page 2 times",
        "kubectl exec deploy/curl -c curl -- sh -c *seq 2*http://productpage:9080/productpage*",
    ])


def test_consecutive_passes_sets_the_streak_of_every_check(project):
    project.makeconftest(project.path.joinpath("conftest.py").read_text() + textwrap.dedent('''
        @then("the checks need 3 batches in a row")
        def three(lab):
            assert lab.policy.times == 3, lab.policy
    '''))
    project.feature("""
        Feature: Streak
          Scenario: three in a row
            Then the checks need 3 batches in a row
    """)
    project.runpytest_subprocess("features", "--consecutive-passes", "3",
                                 "--lab-report", "out").assert_outcomes(passed=1)
    result = project.runpytest_subprocess("features", "--consecutive-passes", "0")
    assert result.ret == 4  # a usage error, before anything runs
    result.stderr.fnmatch_lines(["*--consecutive-passes: needs a whole number of at least 1, got '0'*"])


def test_k_selects_labs_by_their_feature_file(project):
    project.feature("""
        Feature: Traffic mirroring
          Scenario: one
            Then nothing is applied
    """)
    project.path.joinpath("features", "lab.feature").rename(
        project.path / "features" / "mirroring.feature")
    project.feature("""
        Feature: Retries
          Scenario: two
            Then nothing is applied
    """)
    result = project.runpytest_subprocess("features", "-k", "mirroring", "--lab-report", "out")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*1 deselected*"])
