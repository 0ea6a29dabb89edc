"""The known-issues register: which scenarios are skipped where, and the reason shown."""

import json
import os
import textwrap
from pathlib import Path

import pytest

from bookinfo_labs.known_issues import KNOWN_ISSUES, KnownIssue, skip_reason

ROOT = Path(__file__).resolve().parents[1]


def test_an_entry_matches_by_tag_or_scenario_then_mesh_then_version():
    register = (
        KnownIssue("iptables", "no iptables here", meshes=("local",)),
        KnownIssue("retries.feature: Istio's default retries", "changed in 1.24",
                   versions=("1.22", "1.23")),
    )
    assert skip_reason(["iptables"], "", "local", "1.26", register) == "no iptables here"
    assert skip_reason(["iptables"], "", "kube", "1.26", register) is None
    assert skip_reason(["traffic"], "", "local", "1.26", register) is None
    scenario = "retries.feature: Istio's default retries"
    assert skip_reason([], scenario, "kube", "1.23", register) == "changed in 1.24"
    assert skip_reason([], scenario, "kube", "1.23.6", register) == "changed in 1.24"
    assert skip_reason([], scenario, "local", "1.26", register) is None


@pytest.mark.parametrize("kwargs, message", [
    ({"meshes": ("kind",)}, "unknown mesh 'kind'"),
    ({"versions": ("1",)}, "version '1' is not an Istio minor release"),
    ({"reason": " "}, "a skip needs its reason"),
])
def test_a_malformed_entry_is_refused_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        KnownIssue(**{"scenarios": "iptables", "reason": "r", **kwargs})


def test_the_register_holds_the_local_mesh_only_and_iptables_entries():
    assert skip_reason(["local-mesh"], "", "kube", "1.26") and not skip_reason(
        ["local-mesh"], "", "local", "1.26")
    assert skip_reason(["iptables"], "", "local", "1.26") and not skip_reason(
        ["iptables"], "", "kube", "1.26")
    assert all(issue.reason for issue in KNOWN_ISSUES)


def test_a_registered_scenario_is_skipped_with_its_reason_in_the_lab_report(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    # this checkout's engine first (a shared virtualenv may have another one installed)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT / "src"), str(ROOT)]))
    pytester.makeini("[pytest]\nbdd_features_base_dir = features/\n")
    pytester.makeconftest(textwrap.dedent('''
        from pytest_bdd import then

        pytest_plugins = ["bookinfo_labs.plugin"]

        @then("the scenario fails")
        def fails():
            raise AssertionError("failing on purpose")
    '''))
    pytester.mkdir("features")
    pytester.path.joinpath("features", "test_features.py").write_text(
        "from pytest_bdd import scenarios\nscenarios('.')\n")
    pytester.path.joinpath("features", "capture.feature").write_text(textwrap.dedent("""
        Feature: Capture
          @iptables
          Scenario: the iptables rules
            Then the scenario fails
    """))
    result = pytester.runpytest_subprocess("features", "--lab-report", "out", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*the local mesh captures by address instead*"])
    report = json.loads((pytester.path / "out" / "labs.json").read_text())
    assert "captures by address" in json.dumps(report)
