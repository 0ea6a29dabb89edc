"""Where a long run is: which lab, which scenario of how many.

pytest's own progress says how far the run is (``[ 40%]``) but not in which lab; a full run
takes a quarter of an hour. Two signs that leave pytest's output as it is:

- at normal verbosity and above, a line as each lab starts (``lab 4 of 16: Traffic
  shifting, scenarios 9 to 11 of 40``), written by pytest's terminal reporter like its own
  lines; ``-q`` stays as terse as pytest makes it;
- on a terminal (never in a log or a pipe), the terminal's title names the scenario under
  way (``bookinfo-labs: lab 4/16 Traffic shifting, scenario 10/40``), at every verbosity;
  the title the terminal had is pushed first and put back at the end (xterm's title stack:
  terminals without it ignore the request).

Scenarios are numbered in the order pytest runs them, as collected.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Iterable

import pytest

__all__ = ["Position", "Progress", "ProgressReporter"]

#: xterm control sequences: set the window title, push and pop the title stack
TITLE = "\x1b]2;{}\x07"
PUSH_TITLE = "\x1b[22;2t"
POP_TITLE = "\x1b[23;2t"


@dataclass(frozen=True)
class Position:
    """One scenario's place in the run."""

    lab: str  # the feature's name
    path: str  # the feature file
    lab_number: int  # 1-based, in run order
    labs: int
    scenario_number: int  # 1-based, over the whole run
    scenarios: int
    first_of_lab: bool
    lab_first: int  # the lab's scenario numbers: lab_first..lab_last
    lab_last: int

    def lab_line(self) -> str:
        count = self.lab_last - self.lab_first + 1
        scenarios = (f"scenario {self.lab_first}" if count == 1
                     else f"scenarios {self.lab_first} to {self.lab_last}")
        return (f"lab {self.lab_number} of {self.labs}: {self.lab} ({self.path}), "
                f"{scenarios} of {self.scenarios}")

    def title(self) -> str:
        return (f"bookinfo-labs: lab {self.lab_number}/{self.labs} {self.lab}, "
                f"scenario {self.scenario_number}/{self.scenarios}")


class Progress:
    """Built from the collected scenarios, in run order: ``(nodeid, lab, path)``."""

    def __init__(self, scenarios: Iterable[tuple[str, str, str]]):
        ordered = list(scenarios)
        numbers: dict[str, list[int]] = {}  # per lab (feature file), its scenarios' numbers
        for number, (_, _, path) in enumerate(ordered, start=1):
            numbers.setdefault(path, []).append(number)
        labs = list(numbers)
        self._positions: dict[str, Position] = {
            nodeid: Position(lab=lab, path=path, lab_number=labs.index(path) + 1,
                             labs=len(labs), scenario_number=number, scenarios=len(ordered),
                             first_of_lab=False, lab_first=numbers[path][0],
                             lab_last=numbers[path][-1])
            for number, (nodeid, lab, path) in enumerate(ordered, start=1)}
        self._started: set[str] = set()

    def start(self, nodeid: str) -> Position | None:
        """The place of the scenario starting now (None for a test that is no scenario);
        ``first_of_lab`` on the first scenario of its lab to start."""
        position = self._positions.get(nodeid)
        if position is None:
            return None
        first = position.path not in self._started
        self._started.add(position.path)
        if first:
            return dataclasses.replace(position, first_of_lab=True)
        return position


class ProgressReporter:
    """The pytest side: registered by the plugin once the scenarios are collected."""

    def __init__(self, progress: Progress, reporter, verbosity: int):
        self._progress = progress
        self._reporter = reporter  # pytest's terminal reporter
        self._verbosity = verbosity
        self._lines = verbosity >= 0  # not under -q
        self._title = bool(reporter.isatty())  # a terminal, not a log or a pipe
        self._title_pushed = False

    @pytest.hookimpl(tryfirst=True)  # before pytest's own line for the test starts
    def pytest_runtest_logstart(self, nodeid: str, location) -> None:
        position = self._progress.start(nodeid)
        if position is None:
            return
        if self._lines and position.first_of_lab:
            self._end_line_of_dots()
            self._reporter.write_line(position.lab_line(), bold=True)
        if self._title:
            if not self._title_pushed:
                self._write_raw(PUSH_TITLE)
                self._title_pushed = True
            self._write_raw(TITLE.format(position.title()))

    def _end_line_of_dots(self) -> None:
        """At normal verbosity pytest ends a line of dots with the run's percentage
        (``[ 40%]``) when the test file changes or the line is full; end the line so before
        ours, as pytest would. (Its own method for it is private: without it, no percentage.)"""
        reporter = self._reporter
        fill = getattr(reporter, "_write_progress_information_filling_space", None)
        if (self._verbosity == 0 and fill is not None and getattr(reporter, "currentfspath", None)
                and getattr(reporter, "_show_progress_info", False)):
            fill()

    def close(self) -> None:
        """Put the terminal's own title back."""
        if self._title_pushed:
            self._write_raw(POP_TITLE)
            self._title_pushed = False

    def _write_raw(self, sequence: str) -> None:
        # Past the writer's line bookkeeping: a control sequence takes no column, and
        # counting it would shift pytest's "[ 40%]" column.
        writer = self._reporter._tw
        writer.write_raw(sequence, flush=True)
