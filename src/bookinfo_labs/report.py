"""The lab report: per lab (feature), which scenarios passed, failed, were skipped or did
not run, and why.

Written as labs.json (for CI artifacts and the nightly matrix), labs.txt (for people) and
labs.html (for people, with pictures: report_html.py renders it from the same data).
Every selected scenario is registered when collection ends, so a run that stops early
(Ctrl-C, SIGTERM) still accounts for all of them. Labs are listed as the README lists
them: by area, and within an area in the order the handouts teach them.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Sequence

import yaml

from .checks.eventually import EventuallyError

if TYPE_CHECKING:
    from .manifests import Manifest

#: the areas in the README's order (also the features/ folders and the markers)
AREAS = ("traffic", "resilience", "gateways", "security", "observability")
#: within an area, the labs (feature file names) in the handouts' order
LAB_ORDER = (
    "request_routing", "destination_rule_subsets", "header_routing", "traffic_shifting",
    "fault_injection", "request_timeouts", "retries", "circuit_breaking",
    "outlier_detection", "mirroring",
)
NOT_RUN = "not run"


@dataclass
class ScenarioResult:
    feature: str
    path: str
    scenario: str
    outcome: str = NOT_RUN
    duration_s: float = 0.0
    reason: str = ""
    figures: list[dict] = field(default_factory=list)  # Lab.figures: what the page draws
    #: a failure's details for the page: step, expected, observed, message, applied, diagnostics
    failure: dict | None = None


def failure_details(exc: BaseException | None, text: str, *, step: str | None = None,
                    manifests: Sequence[Manifest] = (), diagnostics: str = "") -> dict:
    """What the page shows of a failure: the step, what the check waited for and what it
    saw last (an ``eventually`` check says both), the whole message, the YAML the scenario
    applied (in order) and the mesh's diagnostics (proxy config where the mesh gives it)."""
    details: dict = {"step": step or "", "expected": "", "observed": "", "message": text}
    if isinstance(exc, EventuallyError):
        details["expected"], details["observed"] = exc.expected, exc.last
    details["applied"] = [{"source": f"{m.source}:{m.line}", "object": f"{m.kind}/{m.name}",
                           "yaml": yaml.safe_dump(m.raw, sort_keys=False)} for m in manifests]
    details["diagnostics"] = diagnostics
    return details


def lab_order(path: str) -> tuple[int, int, str]:
    """Sort key of a feature file: its area, then its place in the handouts, then its name."""
    parts = PurePosixPath(path).parts
    area = next((AREAS.index(p) for p in parts if p in AREAS), len(AREAS))
    stem = PurePosixPath(path).stem
    place = LAB_ORDER.index(stem) if stem in LAB_ORDER else len(LAB_ORDER)
    return area, place, path


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


@dataclass
class LabReport:
    mesh: str
    istio: str
    scenarios: dict[str, ScenarioResult] = field(default_factory=dict)
    started: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc)
                         .isoformat(timespec="seconds"))
    #: the signal that stopped the run early ("SIGINT", "SIGTERM"), else ""
    interrupted: str = ""
    #: the local mesh's Envoy release ("1.36.4"); a cluster's is Istio's own
    envoy: str = ""

    def register(self, nodeid: str, *, feature: str, path: str, scenario: str) -> None:
        """Known before it runs (at collection) or when it starts; keeps any result."""
        known = self.scenarios.get(nodeid)
        if known is None:
            self.scenarios[nodeid] = ScenarioResult(feature, path, scenario)
        else:
            known.feature, known.path, known.scenario = feature, path, scenario

    def record(self, nodeid: str, when: str, outcome: str, duration_s: float, reason: str) -> None:
        result = self.scenarios[nodeid]
        result.duration_s += duration_s
        # A failure or skip in any phase decides; a pass counts only for the call itself.
        if outcome == "failed":
            result.outcome = "failed" if when == "call" else "error"
            result.reason = result.reason or reason
        elif outcome == "skipped" and result.outcome == NOT_RUN:
            result.outcome, result.reason = "skipped", reason
        elif outcome == "passed" and when == "call" and result.outcome == NOT_RUN:
            result.outcome = "passed"

    def ran(self) -> bool:
        return any(r.outcome != NOT_RUN for r in self.scenarios.values())

    def labs(self) -> dict[str, list[ScenarioResult]]:
        grouped: dict[str, list[ScenarioResult]] = {}
        for result in self.scenarios.values():
            grouped.setdefault(result.path, []).append(result)
        return {path: grouped[path] for path in sorted(grouped, key=lab_order)}

    def as_dict(self) -> dict:
        labs = []
        for path, results in self.labs().items():
            counts = {k: sum(r.outcome == k for r in results)
                      for k in ("passed", "failed", "error", "skipped", NOT_RUN)}
            labs.append({
                "lab": results[0].feature, "feature": path, "result": _lab_result(counts, len(results)),
                "passed": counts["passed"], "failed": counts["failed"], "error": counts["error"],
                "skipped": counts["skipped"], "not_run": counts[NOT_RUN],
                "duration_s": round(sum(r.duration_s for r in results), 3),
                "scenarios": [{"name": r.scenario, "outcome": r.outcome,
                               "duration_s": round(r.duration_s, 3), "reason": r.reason,
                               "figures": r.figures,
                               **({"failure": r.failure} if r.failure else {})}
                              for r in results],
            })
        return {"kind": "LabReport", "mesh": self.mesh, "istioVersion": self.istio,
                "envoyVersion": self.envoy or None, "date": self.started,
                "interrupted": self.interrupted or None, "labs": labs}

    def as_text(self) -> str:
        data = self.as_dict()
        labs = data["labs"]
        not_run = sum(lab["not_run"] for lab in labs)
        envoy = f", Envoy {self.envoy}" if self.envoy else ""
        lines = [f"Istio {self.istio} on the {self.mesh} mesh{envoy} ({self.started})"]
        if self.interrupted:
            lines.append(f"INTERRUPTED by {self.interrupted}: {plural(not_run, 'scenario')} "
                         "did not run")
        lines.append("")
        width = max([len(lab["lab"]) for lab in labs] + [3])
        extra = not_run > 0
        lines.append(f"{'lab':<{width}}  {'result':<11}  pass fail skip"
                     + (" n/r" if extra else "") + "    time")
        for lab in labs:
            lines.append(f"{lab['lab']:<{width}}  {lab['result']:<11}  {lab['passed']:>4} "
                         f"{lab['failed'] + lab['error']:>4} {lab['skipped']:>4}"
                         + (f" {lab['not_run']:>3}" if extra else "")
                         + f" {lab['duration_s']:>6.1f}s")
            for scenario in lab["scenarios"]:
                if scenario["outcome"] in ("failed", "error", "skipped"):
                    lines.append(f"    {scenario['outcome']}: {scenario['name']}"
                                 + (f" ({scenario['reason']})" if scenario["reason"] else ""))
        total = sum(lab["duration_s"] for lab in labs)
        passed = sum(lab["passed"] for lab in labs)
        count = sum(len(lab["scenarios"]) for lab in labs)
        lines += ["", f"{passed}/{plural(count, 'scenario')} passed in "
                      f"{plural(len(labs), 'lab')}, {total:.1f}s"
                  + (f"; {not_run} did not run" if not_run else "")]
        return "\n".join(lines)


def _lab_result(counts: dict[str, int], total: int) -> str:
    if counts["failed"] or counts["error"]:
        return "failed"
    if counts[NOT_RUN] == total:
        return NOT_RUN
    if counts[NOT_RUN]:
        return "incomplete"
    if counts["skipped"] == total:
        return "skipped"
    return "passed"
