"""Progress of a long run (progress.py): a line per lab at normal verbosity, none under -q,
and the scenario under way in the terminal's title on a terminal only."""

from __future__ import annotations

import io

from bookinfo_labs.progress import POP_TITLE, PUSH_TITLE, Progress, ProgressReporter

RUN = [("f::a1", "Request routing", "traffic/request_routing.feature"),
       ("f::a2", "Request routing", "traffic/request_routing.feature"),
       ("f::b1", "Traffic shifting", "traffic/traffic_shifting.feature"),
       ("f::c1", "Fault injection", "resilience/fault_injection.feature"),
       ("f::c2", "Fault injection", "resilience/fault_injection.feature"),
       ("f::c3", "Fault injection", "resilience/fault_injection.feature")]


class FakeWriter:
    def __init__(self):
        self.raw = io.StringIO()

    def write_raw(self, text, flush=False):
        self.raw.write(text)


class FakeReporter:
    """pytest's terminal reporter, as far as progress uses it."""

    def __init__(self, tty: bool):
        self.lines: list[str] = []
        self._tw = FakeWriter()
        self._tty = tty

    def isatty(self):
        return self._tty

    def write_line(self, line, **markup):
        self.lines.append(line)


def _run(reporter, verbosity, nodeids=None):
    progress = ProgressReporter(Progress(RUN), reporter, verbosity)
    for nodeid in nodeids or [n for n, _, _ in RUN]:
        progress.pytest_runtest_logstart(nodeid, ("features/x.py", 0, nodeid))
    progress.close()
    return reporter


def test_each_lab_gets_a_line_as_its_first_scenario_starts_with_its_scenario_numbers():
    assert _run(FakeReporter(tty=False), verbosity=0).lines == [
        "lab 1 of 3: Request routing (traffic/request_routing.feature), scenarios 1 to 2 of 6",
        "lab 2 of 3: Traffic shifting (traffic/traffic_shifting.feature), scenario 3 of 6",
        "lab 3 of 3: Fault injection (resilience/fault_injection.feature), scenarios 4 to 6 of 6",
    ]


def test_quiet_runs_get_no_lines_and_a_log_gets_no_control_sequences():
    reporter = _run(FakeReporter(tty=False), verbosity=-1)
    assert reporter.lines == [] and reporter._tw.raw.getvalue() == ""


def test_on_a_terminal_the_title_names_each_scenario_and_is_put_back_at_the_end():
    raw = _run(FakeReporter(tty=True), verbosity=-1)._tw.raw.getvalue()
    assert raw.startswith(PUSH_TITLE) and raw.endswith(POP_TITLE)
    assert raw.count(PUSH_TITLE) == 1
    assert "\x1b]2;bookinfo-labs: lab 2/3 Traffic shifting, scenario 3/6\x07" in raw
    assert "\x1b]2;bookinfo-labs: lab 3/3 Fault injection, scenario 6/6\x07" in raw


def test_a_test_that_is_no_scenario_changes_nothing():
    reporter = _run(FakeReporter(tty=True), verbosity=1, nodeids=["tests/test_x.py::test_y"])
    assert reporter.lines == [] and reporter._tw.raw.getvalue() == ""
