"""The pytest side: options, the session's mesh, the per-scenario ``lab``, the lab report."""

from __future__ import annotations

import argparse
import difflib
import json
from pathlib import Path

import pytest

from .checks import EventuallyPolicy
from .mesh import Mesh, MeshError
from .report import LabReport
from .scenario import Lab
from .versions import DEFAULT_VERSION, VERSIONS, get_version

_MESH_KEY = pytest.StashKey[Mesh]()
_REPORT_KEY = pytest.StashKey[LabReport]()
_LAB_KEY = pytest.StashKey[Lab]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("bookinfo-labs", "Istio Bookinfo labs")
    group.addoption("--mesh", choices=("local", "kube"), default="local",
                    help="run against the embedded local mesh (default) or a real cluster")
    group.addoption("--istio-version", default=DEFAULT_VERSION, choices=sorted(VERSIONS),
                    help=f"the Istio release whose behaviour is expected (default {DEFAULT_VERSION})")
    group.addoption("--kube-context", default=None,
                    help="kubeconfig context for --mesh kube (default: the kind cluster's)")
    group.addoption("--allow-any-context", action="store_true",
                    help="let --mesh kube use a context whose name does not start with kind-")
    group.addoption("--explain", action="store_true",
                    help="print the kubectl/curl command equivalent to each step")
    group.addoption("--lab-report", default="reports", metavar="DIR",
                    help="where to write labs.json and labs.txt (default: reports)")
    group.addoption("--eventually-timeout", type=float, default=None, metavar="SECONDS",
                    help="deadline of each eventually check (default 5 s locally, 90 s on kube)")
    group.addoption("--consecutive-passes", type=_positive_int, default=None, metavar="N",
                    help="batches in a row an eventually check must pass (default 1 locally, "
                         "3 on kube, where istiod pushes config to each proxy in its own time)")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"needs a whole number of at least 1, got {text!r}")
    return value


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_REPORT_KEY] = LabReport(
        mesh=config.getoption("--mesh"), istio=config.getoption("--istio-version"))


def pytest_sessionstart(session: pytest.Session) -> None:
    # Asking for a cluster explicitly connects at once, so a missing cluster is one clear
    # message before anything runs, not an error per scenario.
    if session.config.getoption("--mesh") == "kube":
        try:
            _open_mesh(session.config)
        except MeshError as exc:
            raise pytest.UsageError(f"bookinfo-labs: {exc}") from None


def _open_mesh(config: pytest.Config) -> Mesh:
    if _MESH_KEY in config.stash:
        return config.stash[_MESH_KEY]
    """Connect to (or start) the mesh once per session; raises MeshError with the fix."""
    istio = get_version(config.getoption("--istio-version"))
    if config.getoption("--mesh") == "kube":
        from .kube import KubeMesh

        mesh: Mesh = KubeMesh.connect(
            context=config.getoption("--kube-context"),
            allow_any_context=config.getoption("--allow-any-context"), istio=istio)
    else:
        from .local import LocalMesh

        mesh = LocalMesh.start(istio)
    config.stash[_MESH_KEY] = mesh
    config.add_cleanup(mesh.close)
    return mesh


@pytest.fixture(scope="session")
def mesh(request: pytest.FixtureRequest) -> Mesh:
    """The mesh under test, shared by the whole session."""
    try:
        return _open_mesh(request.config)
    except MeshError as exc:
        pytest.exit(f"bookinfo-labs: {exc}", returncode=4)


@pytest.fixture
def lab(mesh: Mesh, request: pytest.FixtureRequest):
    """One scenario: removes what it applied at the end, then fails it if config leaked."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    explain = request.config.getoption("--explain")

    def say(text: str) -> None:
        if explain and reporter is not None:
            with capture.global_and_fixture_disabled():  # straight to the learner's terminal
                reporter.write_line(text)
        else:
            print(text)  # kept with the test's output, shown when it fails

    # A cluster needs time for istiod to push config; locally config applies at once, so
    # a failing check has little to wait for.
    timeout = request.config.getoption("--eventually-timeout") or (
        90.0 if mesh.name == "kube" else 5.0)
    # One batch is one observation. Locally config applies synchronously, so one batch shows
    # the state; on a cluster the check must hold three batches in a row.
    times = request.config.getoption("--consecutive-passes") or (1 if mesh.name == "local" else 3)
    policy = EventuallyPolicy(times=times, timeout_s=timeout, interval_s=mesh.poll_interval_s)
    scenario = Lab(mesh, say=say, explain=explain, policy=policy)
    request.node.stash[_LAB_KEY] = scenario
    yield scenario
    scenario.cleanup()
    leaked = scenario.leaks()
    if leaked:
        listed = ", ".join(sorted(str(k) for k in leaked))
        pytest.fail(f"the scenario left config behind: {listed}", pytrace=False)


@pytest.hookimpl(tryfirst=True)  # before pytest's own -k deselection
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """``-k`` also matches a lab by its feature file's name: ``-k "retries or mirroring"``.

    pytest-bdd documents a scenario's test as "<feature file path>: <scenario name>"."""
    for item in items:
        doc = getattr(getattr(item, "obj", None), "__doc__", None) or ""
        path, sep, _ = doc.partition(".feature: ")
        if sep:
            item.extra_keyword_matches.add(Path(path).name)


def pytest_bdd_before_step(request, feature, scenario, step, step_func) -> None:
    if request.config.getoption("--explain"):
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        capture = request.config.pluginmanager.get_plugin("capturemanager")
        if reporter is not None:
            with capture.global_and_fixture_disabled():
                reporter.write_line(f"\n# {step.keyword} {step.name}")


# -- unknown steps: say which step, and what was probably meant -------------------------

def pytest_bdd_step_func_lookup_error(request, feature, scenario, step, exception) -> None:
    known = _known_step_texts(request)
    wanted = f"{step.type} {step.name}"
    close = difflib.get_close_matches(wanted, known, n=3, cutoff=0.5)
    hint = ("\n  Closest known steps:\n" + "\n".join(f"    {c}" for c in close)) if close else ""
    request.node.add_report_section(
        "call", "bookinfo-labs",
        f'Unknown step "{step.keyword} {step.name}" at {feature.filename}:{step.line_number}.'
        f"{hint}\n  Steps live in steps/*.py; add one there or reword the feature.")


def _known_step_texts(request) -> list[str]:
    """Every step definition's text; pytest-bdd keeps them in a registry of its own."""
    try:
        from pytest_bdd.steps import step_function_context_registry
    except ImportError:  # a future pytest-bdd: no hint is better than a crash
        return []
    return sorted({f"{c.type or 'step'} {c.parser.name}".strip()
                   for c in list(step_function_context_registry.values())})


# -- the lab report ---------------------------------------------------------------------

def pytest_bdd_before_scenario(request, feature, scenario) -> None:
    # Every scenario gets the contract (cleanup and leak check), also one whose steps
    # only ask for the mesh itself.
    request.getfixturevalue("lab")
    report = request.config.stash[_REPORT_KEY]
    report.register(request.node.nodeid, feature=feature.name, path=feature.rel_filename,
                    scenario=scenario.name)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    rep = yield
    lab_report = item.config.stash[_REPORT_KEY]
    if item.nodeid in lab_report.scenarios:
        reason = ""
        if rep.skipped and isinstance(rep.longrepr, tuple):
            reason = rep.longrepr[2]
        elif rep.failed:
            reason = rep.longreprtext.strip().splitlines()[-1] if rep.longreprtext else ""
        lab_report.record(item.nodeid, rep.when, rep.outcome, rep.duration, reason)
    lab = item.stash.get(_LAB_KEY, None)
    if rep.when == "call" and rep.failed and lab is not None:
        try:
            rep.sections.append(("bookinfo-labs diagnostics", lab.mesh.diagnostics(lab.manifests)))
        except Exception as exc:  # diagnostics must never hide the real failure
            rep.sections.append(("bookinfo-labs diagnostics", f"could not collect: {exc}"))
    return rep


def pytest_sessionfinish(session: pytest.Session) -> None:
    report = session.config.stash.get(_REPORT_KEY, None)
    if report is None or not report.scenarios or hasattr(session.config, "workerinput"):
        return
    out = Path(session.config.getoption("--lab-report"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "labs.json").write_text(json.dumps(report.as_dict(), indent=2) + "\n")
    (out / "labs.txt").write_text(report.as_text() + "\n")


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    report = config.stash.get(_REPORT_KEY, None)
    if report is None or not report.ran():
        return
    terminalreporter.section("lab report")
    for line in report.as_text().splitlines():
        terminalreporter.write_line(line)
    out = Path(config.getoption("--lab-report"))
    terminalreporter.write_line(f"(written to {out / 'labs.txt'} and {out / 'labs.json'})")
