"""The lab report: per lab (feature), which scenarios passed, failed or were skipped, and why.

Written as labs.json (for CI artifacts and the nightly matrix) and labs.txt (for people).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field


@dataclass
class ScenarioResult:
    feature: str
    path: str
    scenario: str
    outcome: str = "not run"
    duration_s: float = 0.0
    reason: str = ""


@dataclass
class LabReport:
    mesh: str
    istio: str
    scenarios: dict[str, ScenarioResult] = field(default_factory=dict)
    started: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc)
                         .isoformat(timespec="seconds"))

    def register(self, nodeid: str, *, feature: str, path: str, scenario: str) -> None:
        self.scenarios[nodeid] = ScenarioResult(feature, path, scenario)

    def record(self, nodeid: str, when: str, outcome: str, duration_s: float, reason: str) -> None:
        result = self.scenarios[nodeid]
        result.duration_s += duration_s
        # A failure or skip in any phase decides; a pass counts only for the call itself.
        if outcome == "failed":
            result.outcome = "failed" if when == "call" else "error"
            result.reason = result.reason or reason
        elif outcome == "skipped" and result.outcome == "not run":
            result.outcome, result.reason = "skipped", reason
        elif outcome == "passed" and when == "call" and result.outcome == "not run":
            result.outcome = "passed"

    def ran(self) -> bool:
        return any(r.outcome != "not run" for r in self.scenarios.values())

    def labs(self) -> dict[str, list[ScenarioResult]]:
        grouped: dict[str, list[ScenarioResult]] = {}
        for result in self.scenarios.values():
            if result.outcome != "not run":
                grouped.setdefault(result.path, []).append(result)
        return dict(sorted(grouped.items()))

    def as_dict(self) -> dict:
        labs = []
        for path, results in self.labs().items():
            counts = {k: sum(r.outcome == k for r in results)
                      for k in ("passed", "failed", "error", "skipped")}
            labs.append({
                "lab": results[0].feature, "feature": path,
                "result": "failed" if counts["failed"] or counts["error"] else
                          "skipped" if counts["skipped"] == len(results) else "passed",
                **counts, "duration_s": round(sum(r.duration_s for r in results), 3),
                "scenarios": [{"name": r.scenario, "outcome": r.outcome,
                               "duration_s": round(r.duration_s, 3), "reason": r.reason}
                              for r in results],
            })
        return {"kind": "LabReport", "mesh": self.mesh, "istioVersion": self.istio,
                "date": self.started, "labs": labs}

    def as_text(self) -> str:
        data = self.as_dict()
        lines = [f"Istio {self.istio} on the {self.mesh} mesh ({self.started})", ""]
        width = max([len(lab["lab"]) for lab in data["labs"]] + [3])
        lines.append(f"{'lab':<{width}}  result   pass fail skip   time")
        for lab in data["labs"]:
            lines.append(f"{lab['lab']:<{width}}  {lab['result']:<7}  {lab['passed']:>4} "
                         f"{lab['failed'] + lab['error']:>4} {lab['skipped']:>4} "
                         f"{lab['duration_s']:>6.1f}s")
            for scenario in lab["scenarios"]:
                if scenario["outcome"] in ("failed", "error", "skipped"):
                    lines.append(f"    {scenario['outcome']}: {scenario['name']}"
                                 + (f" ({scenario['reason']})" if scenario["reason"] else ""))
        total = sum(lab["duration_s"] for lab in data["labs"])
        passed = sum(lab["passed"] for lab in data["labs"])
        count = sum(len(lab["scenarios"]) for lab in data["labs"])
        lines += ["", f"{passed}/{count} scenarios passed in {len(data['labs'])} labs, {total:.1f}s"]
        return "\n".join(lines)
