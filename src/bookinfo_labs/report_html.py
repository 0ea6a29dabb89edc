"""The lab report as a page: ``labs.html`` beside ``labs.txt`` and ``labs.json``.

Rendered from the same data as ``labs.json`` (``LabReport.as_dict()``), so a saved
``labs.json`` renders again with ``python -m bookinfo_labs.report_html labs.json``. One
self-contained file: styles inline, pictures as ``data:`` URIs, no script, nothing fetched,
so it opens from a CI artifact or a mail attachment as it does from disk. Per lab, each
scenario with its result and time; a failure with its step, what was expected and what was
observed, the YAML the scenario applied and the mesh's diagnostics (a proxy's routes and
clusters where the mesh gives them); the scenario's figures (``report_figures``), and the
run's service graphs at the top. A figure that cannot be drawn says so in its place: the
page never fails the run.
"""

from __future__ import annotations

import base64
import html
import json
import re
import sys
from pathlib import Path
from typing import Any, Callable

from .report import plural

__all__ = ["render", "write_page"]

FIGURE_TITLES = {"split": "split check", "latency": "latency check", "graph": "service graph"}

_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 72rem; padding: 1rem 2rem;
       color: #212121; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
h2 { font-size: 1.25rem; margin: 2rem 0 .3rem; border-bottom: 1px solid #ddd; }
h3 { font-size: 1rem; margin: 1rem 0 .3rem; }
.meta, .path { color: #616161; margin: .1rem 0; }
.interrupted { background: #fff3e0; border-left: 4px solid #ef6c00; padding: .4rem .8rem; }
table.summary { border-collapse: collapse; }
table.summary td, table.summary th { padding: .15rem .7rem; text-align: right;
                                      white-space: nowrap; }
table.summary td:first-child, table.summary th:first-child { text-align: left; }
table.summary tr:nth-child(even) { background: #fafafa; }
.badge { display: inline-block; min-width: 4.5rem; text-align: center; border-radius: .6rem;
         font-size: .8rem; padding: 0 .5rem; color: white; background: #757575; }
.badge.passed { background: #2e7d32; } .badge.failed, .badge.error { background: #c62828; }
.badge.skipped { background: #f9a825; color: #212121; } .badge.incomplete { background: #ef6c00; }
.scenario { border-left: 4px solid #e0e0e0; padding: .1rem 0 .4rem .8rem; margin: .6rem 0; }
.scenario.failed, .scenario.error { border-left-color: #c62828; }
.scenario.passed { border-left-color: #2e7d32; }
.time { color: #757575; font-weight: normal; font-size: .9rem; }
.failure { background: #ffebee; padding: .4rem .8rem; border-radius: .3rem; }
.failure dt { font-weight: bold; } .failure dd { margin: 0 0 .4rem 1rem; }
pre { background: #f5f5f5; padding: .5rem; overflow-x: auto; font-size: .8rem;
      white-space: pre-wrap; }
figure { display: inline-block; margin: .5rem 1rem .5rem 0; vertical-align: top;
         max-width: calc(50% - 1rem); }
#service-graph figure { max-width: 100%; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #616161; font-size: .85rem; }
.figure-error { color: #c62828; font-style: italic; }
"""


def write_page(data: dict[str, Any], path: Path,
               draw: Callable[[dict], bytes] | None = None) -> None:
    """Render the lab report ``data`` (``LabReport.as_dict()``) to ``path``."""
    path.write_text(render(data, draw), encoding="utf-8")


def render(data: dict[str, Any], draw: Callable[[dict], bytes] | None = None) -> str:
    """The page's HTML; ``draw`` turns a figure into PNG bytes (default: matplotlib's,
    imported only when the report has a figure)."""
    page = _Page(draw)
    title = f"Bookinfo labs: Istio {data.get('istioVersion')} on the {data.get('mesh')} mesh"
    labs = data.get("labs") or []
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
             f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>",
             f"<header><h1>{_e(title)}</h1>{_meta(data, labs)}</header>",
             _summary(labs), page.graphs(labs)]
    parts += [page.lab(index, lab) for index, lab in enumerate(labs)]
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _lab_id(lab: dict) -> str:
    return "lab-" + re.sub(r"[^a-z0-9]+", "-", str(lab.get("feature", "")).lower()).strip("-")


def _seconds(value: Any) -> str:
    return f"{float(value or 0):.1f} s"


def _meta(data: dict, labs: list[dict]) -> str:
    scenarios = [s for lab in labs for s in lab.get("scenarios", [])]
    passed = sum(s.get("outcome") == "passed" for s in scenarios)
    not_run = sum(s.get("outcome") == "not run" for s in scenarios)
    total = sum(float(lab.get("duration_s") or 0) for lab in labs)
    facts = [f"Envoy {data['envoyVersion']}" if data.get("envoyVersion") else "",
             f"started {data.get('date')}",
             f"{passed} of {plural(len(scenarios), 'scenario')} passed in "
             f"{plural(len(labs), 'lab')}, {_seconds(total)}"]
    lines = [f"<p class=\"meta\">{_e(' · '.join(f for f in facts if f))}</p>"]
    if data.get("interrupted"):
        lines.append(f"<p class=\"interrupted\">Interrupted by {_e(data['interrupted'])}: "
                     f"{plural(not_run, 'scenario')} did not run.</p>")
    return "\n".join(lines)


def _summary(labs: list[dict]) -> str:
    rows = ["<table class=\"summary\"><tr><th>lab</th><th>result</th><th>passed</th>"
            "<th>failed</th><th>skipped</th><th>not run</th><th>time</th></tr>"]
    for lab in labs:
        failed = int(lab.get("failed") or 0) + int(lab.get("error") or 0)
        rows.append(
            f"<tr><td><a href=\"#{_lab_id(lab)}\">{_e(lab.get('lab'))}</a></td>"
            f"<td><span class=\"badge {_e(lab.get('result'))}\">{_e(lab.get('result'))}</span></td>"
            f"<td>{lab.get('passed', 0)}</td><td>{failed}</td><td>{lab.get('skipped', 0)}</td>"
            f"<td>{lab.get('not_run', 0)}</td><td>{_seconds(lab.get('duration_s'))}</td></tr>")
    rows.append("</table>")
    return "<nav><h2 id=\"labs\">Labs</h2>\n" + "\n".join(rows) + "</nav>"


class _Page:
    """Draws figures as the page asks for them; a figure that fails is a sentence."""

    def __init__(self, draw: Callable[[dict], bytes] | None):
        self._draw = draw

    def figure(self, figure: dict, caption: str = "") -> str:
        kind = str(figure.get("kind", "?"))
        name = FIGURE_TITLES.get(kind, f"{kind} figure")
        title = str(figure.get("title") or "")
        try:
            png = self._drawer()(figure)
        except Exception as exc:  # noqa: BLE001 - one bad figure must not lose the page
            named = f" &ldquo;{_e(title)}&rdquo;" if title else ""
            return (f"<p class=\"figure-error\">Could not draw the {_e(name)}{named}: "
                    f"{_e(type(exc).__name__)}: {_e(exc)}</p>")
        data = base64.b64encode(png).decode("ascii")
        text = (f"{name}: {title}" if title else name) + (f" ({caption})" if caption else "")
        return (f"<figure class=\"{_e(kind)}\"><img class=\"{_e(kind)}\" alt=\"{_e(text)}\" "
                f"src=\"data:image/png;base64,{data}\"><figcaption>{_e(text)}</figcaption>"
                "</figure>")

    def _drawer(self) -> Callable[[dict], bytes]:
        if self._draw is None:
            from .report_figures import draw  # matplotlib only for a page with figures

            self._draw = draw
        return self._draw

    def graphs(self, labs: list[dict]) -> str:
        """The run's service graphs, each with the scenario that recorded it."""
        shown = []
        for lab in labs:
            for scenario in lab.get("scenarios", []):
                for figure in scenario.get("figures") or []:
                    if figure.get("kind") == "graph":
                        where = f"{lab.get('lab')}: {scenario.get('name')}"
                        shown.append(self.figure(figure, where))
        body = "\n".join(shown) or "<p>No scenario of this run recorded a service graph.</p>"
        return f"<section id=\"service-graph\"><h2>Service graph</h2>\n{body}</section>"

    def lab(self, index: int, lab: dict) -> str:
        scenarios = lab.get("scenarios", [])
        head = (f"<section class=\"lab\" id=\"{_lab_id(lab)}\"><h2>{_e(lab.get('lab'))} "
                f"<span class=\"badge {_e(lab.get('result'))}\">{_e(lab.get('result'))}</span>"
                f"</h2><p class=\"path\">{_e(lab.get('feature'))} · lab {index + 1} · "
                f"{plural(len(scenarios), 'scenario')} · {_seconds(lab.get('duration_s'))}</p>")
        return "\n".join([head, *(self.scenario(s) for s in scenarios), "</section>"])

    def scenario(self, scenario: dict) -> str:
        outcome = str(scenario.get("outcome", ""))
        parts = [f"<article class=\"scenario {_e(outcome)}\"><h3><span class=\"badge "
                 f"{_e(outcome)}\">{_e(outcome)}</span> {_e(scenario.get('name'))} "
                 f"<span class=\"time\">{_seconds(scenario.get('duration_s'))}</span></h3>"]
        if scenario.get("failure"):
            parts.append(_failure(scenario["failure"]))
        elif scenario.get("reason"):
            parts.append(f"<p class=\"reason\">{_e(scenario['reason'])}</p>")
        figures = [f for f in scenario.get("figures") or [] if f.get("kind") != "graph"]
        if figures:
            parts.append("<div class=\"figures\">"
                         + "\n".join(self.figure(f) for f in figures) + "</div>")
        if any(f.get("kind") == "graph" for f in scenario.get("figures") or []):
            parts.append("<p><a href=\"#service-graph\">Its service graph is at the top.</a></p>")
        parts.append("</article>")
        return "\n".join(parts)


def _failure(failure: dict) -> str:
    parts = ["<div class=\"failure\">"]
    if failure.get("step"):
        parts.append(f"<p><strong>Failed at</strong> {_e(failure['step'])}</p>")
    facts = [(label, failure.get(key)) for label, key in
             (("Expected", "expected"), ("Observed", "observed"))]
    if any(value for _, value in facts):
        parts.append("<dl>" + "".join(f"<dt>{label}</dt><dd><pre>{_e(value)}</pre></dd>"
                                      for label, value in facts if value) + "</dl>")
    if failure.get("message"):
        parts.append(_details("The whole message", failure["message"],
                              opened=not any(value for _, value in facts)))
    applied = failure.get("applied") or []
    if applied:
        text = "\n---\n".join(f"# {a.get('source')}\n{a.get('yaml', '')}".rstrip()
                              for a in applied)
        parts.append(_details(f"What the scenario applied ({plural(len(applied), 'object')})",
                              text))
    if failure.get("diagnostics"):
        parts.append(_details("The mesh's view: proxy config, access log", failure["diagnostics"]))
    parts.append("</div>")
    return "\n".join(parts)


def _details(summary: str, text: str, opened: bool = False) -> str:
    return (f"<details{' open' if opened else ''}><summary>{_e(summary)}</summary>"
            f"<pre>{_e(text)}</pre></details>")


def main(argv: list[str]) -> int:
    """``python -m bookinfo_labs.report_html LABS_JSON [OUT_HTML]``: render a saved report."""
    if len(argv) not in (1, 2):
        print("usage: python -m bookinfo_labs.report_html labs.json [labs.html]", file=sys.stderr)
        return 2
    source = Path(argv[0])
    out = Path(argv[1]) if len(argv) == 2 else source.with_suffix(".html")
    try:
        data = json.loads(source.read_text())
    except (OSError, ValueError) as exc:
        print(f"{source}: cannot read a lab report from it ({exc})", file=sys.stderr)
        return 1
    write_page(data, out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
