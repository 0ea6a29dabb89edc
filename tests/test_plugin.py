"""The pytest plugin seen from outside: throwaway projects run in a pytest subprocess."""

import os
import re
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    """A lab project using our plugin and steps, with one feature folder."""
    # this checkout's steps and package (the venv's editable install may be another's)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), str(ROOT / "src")]))
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
    result.stdout.fnmatch_lines(["*bookinfo-labs diagnostics*",
                                 "===== applied in this scenario =====",
                                 "VirtualService/productpage  (manifests/bookinfo/networking/*"])


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


# -- failures a person can read -----------------------------------------------------------

def test_a_refused_manifest_is_its_message_first_and_alone(project):
    project.feature('''
        Feature: Typo
          Scenario: a typo
            Given the Bookinfo sample is running
            And I apply:
              """
              apiVersion: networking.istio.io/v1
              kind: VirtualService
              metadata:
                name: reviews
              spec:
                hosts: [reviews]
                http:
                - route:
                  - destination: {host: reviews, subset: v1}
                    wieght: 100
              """
    ''')
    result = project.runpytest_subprocess("features", "--lab-report", "out")
    result.assert_outcomes(failed=1)
    out = result.stdout.lines
    start = next(i for i, line in enumerate(out) if "_ a typo _" in line or "test_a_typo" in line)
    body = [line for line in out[start + 1:] if line.strip()]
    assert re.fullmatch(r"Failed at: And I apply:  \(features/lab\.feature:\d+\)", body[0]), body[0]
    assert body[1] == ("<inline>:1: VirtualService \"reviews\": spec.http[0].route[0]: unknown "
                       "field 'wieght' (did you mean 'weight'?). Nothing from <inline> was applied.")
    text = result.stdout.str()
    assert "Traceback" not in text and "def call_fixture_func" not in text
    assert "bookinfo-labs diagnostics" not in text  # nothing was applied: nothing to show
    assert len(out) < 40, "\n".join(out)
    report = (project.path / "out" / "labs.txt").read_text()
    assert "failed: a typo (<inline>:1: VirtualService \"reviews\": spec.http[0].route[0]" in report


def test_an_unknown_step_is_its_message_with_the_closest_steps_and_no_traceback(project):
    project.feature("""
        Feature: Typo
          Scenario: jason
            Given the Bookinfo sample is running
            When jason log in
    """)
    result = project.runpytest_subprocess("features", "--lab-report", "out")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(['Unknown step "When jason log in" at features/lab.feature:*.',
                                 "  Closest known steps:", "    when {user} logs in"])
    assert "Traceback" not in result.stdout.str() and len(result.stdout.lines) < 40


def test_the_reason_of_a_failed_check_is_the_checks_own_message(project):
    project.feature("""
        Feature: Routing
          Scenario: the wrong version
            Given the Bookinfo sample is running
            And I apply "virtual-service-all-v1.yaml"
            And I apply "destination-rule-all.yaml"
            When I send 2 requests to "http://reviews:9080/reviews/0"
            Then every response is served by reviews v2
    """)
    result = project.runpytest_subprocess("features", "--lab-report", "out",
                                          "--eventually-timeout", "0.5")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "Failed at: Then every response is served by reviews v2  (features/lab.feature:*)",
        "eventually: expected all 2 responses served by reviews v2",
    ])
    report = (project.path / "out" / "labs.txt").read_text()
    assert "failed: the wrong version (reviews versions seen: {'v1': 2})" in report, report
    # the page's account of it: the step, expected and observed, the YAML, the diagnostics
    import json

    [scenario] = json.loads((project.path / "out" / "labs.json").read_text())["labs"][0]["scenarios"]
    failure = scenario["failure"]
    assert failure["step"].startswith("Then every response is served by reviews v2")
    assert failure["expected"] == "all 2 responses served by reviews v2"
    assert failure["observed"].startswith("reviews versions seen: {'v1': 2}")
    applied = {a["object"]: a["yaml"] for a in failure["applied"]}
    assert "VirtualService/reviews" in applied and "subsets:" in applied["DestinationRule/reviews"]
    assert "applied in this scenario" in failure["diagnostics"]
    page = (project.path / "out" / "labs.html").read_text()
    assert "<dt>Observed</dt><dd><pre>reviews versions seen: {&#x27;v1&#x27;: 2}" in page
    result.stdout.fnmatch_lines([f"The lab report as a page: out/labs.html (file://*/out/labs.html)"])


# -- the report tells the truth about the run --------------------------------------------

def test_labs_are_reported_in_the_readmes_order_and_counted_in_words():
    from bookinfo_labs.report import LabReport, lab_order

    report = LabReport(mesh="local", istio="1.26")
    for path in ("features/resilience/retries.feature", "features/traffic/traffic_shifting.feature",
                 "features/resilience/fault_injection.feature", "features/traffic/request_routing.feature"):
        report.register(path, feature=path, path=path, scenario="s")
        report.record(path, "call", "passed", 0.1, "")
    assert list(report.labs()) == ["features/traffic/request_routing.feature",
                                   "features/traffic/traffic_shifting.feature",
                                   "features/resilience/fault_injection.feature",
                                   "features/resilience/retries.feature"]
    assert report.as_text().endswith("4/4 scenarios passed in 4 labs, 0.4s")
    one = LabReport(mesh="local", istio="1.26")
    one.register("a", feature="Retries", path="features/resilience/retries.feature", scenario="s")
    one.record("a", "call", "passed", 0.1, "")
    assert one.as_text().endswith("1/1 scenario passed in 1 lab, 0.1s")
    # the README's lab table lists the features in the same order
    readme = (ROOT / "README.md").read_text()
    titles = {p: p.read_text().split("Feature: ", 1)[1].splitlines()[0]
              for p in (ROOT / "features").rglob("*.feature")}
    ordered = [titles[p] for p in sorted(titles, key=lambda p: lab_order(str(p.relative_to(ROOT))))]
    table = [line.split("|")[2].strip() for line in readme.splitlines()
             if line.startswith("| ") and line.split("|")[2].strip() in titles.values()]
    assert table == ordered


# -- options and environment -------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["--eventually-timeout", "-1"], "*--eventually-timeout: needs a number of seconds above 0, got '-1'*"),
    (["--kube-context", "kind-x"], "*--kube-context is for a cluster: add --mesh kube*"),
    (["--emulated-cluster"], "*--emulated-cluster is for a cluster: add --mesh kube*"),
    (["--mesh", "kube", "--emulated-cluster", "--allow-any-context"],
     "*--emulated-cluster and --allow-any-context contradict each other*"),
    (["--lab-report", "/proc/no-such-place"], "*--lab-report /proc/no-such-place: cannot write*"),
])
def test_options_that_cannot_work_stop_the_run_at_once(project, args, message):
    project.feature("""
        Feature: Anything
          Scenario: never runs
            Given the Bookinfo sample is running
    """)
    result = project.runpytest_subprocess("features", *args)
    assert result.ret in (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.INTERNAL_ERROR)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stderr.str()
    result.stderr.fnmatch_lines([message])
    assert "never runs" not in result.stdout.str()


def test_a_malformed_kubeconfig_is_one_clear_error(project, monkeypatch):
    bad = project.path / "kubeconfig"
    bad.write_text('apiVersion: v1\nclusters: [ {name: x, cluster: {server: "https://127.0.0.1:1"\n')
    monkeypatch.setenv("KUBECONFIG", str(bad))
    project.feature("""
        Feature: Anything
          Scenario: never runs
            Given the Bookinfo sample is running
    """)
    result = project.runpytest_subprocess("features", "--mesh", "kube")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: bookinfo-labs: the kubeconfig {bad} (from $KUBECONFIG) "
                                 "is not valid YAML at line 3*"])
    assert "INTERNALERROR" not in result.stderr.str() + result.stdout.str()


def test_explain_heads_each_scenario_with_its_title(project):
    project.feature("""
        Feature: Explained
          Scenario: nothing to apply
            Then nothing is applied
    """)
    result = project.runpytest_subprocess("features", "--explain")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["# ==== Explained: nothing to apply ====", "# Then nothing is applied"])


def test_the_lab_report_names_the_local_meshs_envoy(project):
    import json

    project.feature("""
        Feature: Versions
          Scenario: nothing to apply
            Given the Bookinfo sample is running
    """)
    project.runpytest_subprocess("features", "--lab-report", "out").assert_outcomes(passed=1)
    report = json.loads((project.path / "out" / "labs.json").read_text())
    assert report["envoyVersion"].count(".") == 2  # e.g. 1.36.4
    assert f"on the local mesh, Envoy {report['envoyVersion']} (" in (
        project.path / "out" / "labs.txt").read_text()


def test_without_envoy_the_run_stops_with_one_message_saying_how_to_get_it(project):
    project.feature("""
        Feature: Anything
          Scenario: never runs
            Given the Bookinfo sample is running
    """)
    result = project.runpytest_subprocess("features", "--envoy", "/no/such/envoy")
    assert result.ret == 4
    text = result.stdout.str() + result.stderr.str()
    assert "bookinfo-labs:" in text and "/no/such/envoy" in text
    assert "never runs" not in text


def test_a_scenario_needing_the_internet_is_skipped_with_its_reason_unless_asked_for(project):
    project.feature("""
        Feature: Outside
          @needs-internet
          Scenario: a public host
            Then the scenario fails
    """)
    result = project.runpytest_subprocess("features", "--lab-report", "out", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*needs the public internet*--internet*"])
    result = project.runpytest_subprocess("features", "--lab-report", "out", "--internet")
    result.assert_outcomes(failed=1)


def test_a_sigterm_whose_interrupt_was_swallowed_still_stops_the_run_after_cleanup(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    """The SIGTERM handler raises KeyboardInterrupt in whatever the main thread runs; in a
    finalizer (``__del__``) Python only prints it. The run still stops, interrupted, once
    the scenario's teardown is done."""
    # this checkout's steps and package (the venv's editable install may be another's)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), str(ROOT / "src")]))
    pytester.makeini("[pytest]\nbdd_features_base_dir = features/\n")
    pytester.makeconftest(textwrap.dedent('''
        from pytest_bdd import given
        from bookinfo_labs import plugin

        pytest_plugins = ["bookinfo_labs.plugin", "steps.common"]

        @given("a SIGTERM arrives while a finalizer runs")
        def swallowed(request):
            request.config.stash[plugin._SIGNAL_KEY] = "SIGTERM"  # what the handler records
    '''))
    pytester.mkdir("features")
    pytester.path.joinpath("features", "test_features.py").write_text(
        "from pytest_bdd import scenarios\nscenarios('.')\n")
    pytester.path.joinpath("features", "lab.feature").write_text(textwrap.dedent("""
        Feature: Stopping
          Scenario: first
            Given a SIGTERM arrives while a finalizer runs
          Scenario: second
            Given a SIGTERM arrives while a finalizer runs
    """))
    result = pytester.runpytest_subprocess("features", "--lab-report", "out")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*KeyboardInterrupt*"])
    assert result.parseoutcomes().get("passed") == 1, result.outlines[-5:]  # "second" never ran
