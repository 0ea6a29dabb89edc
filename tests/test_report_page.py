"""The lab report as a page (labs.html): what the checks record for it, the pictures
matplotlib draws from that, the page around them, and the page as Chromium shows it."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from bookinfo_labs.checks.eventually import EventuallyError
from bookinfo_labs.manifests import parse_text
from bookinfo_labs.mesh import HttpRequest, HttpResponse
from bookinfo_labs.report import LabReport, failure_details
from bookinfo_labs.report_figures import FigureError, draw
from bookinfo_labs.report_html import render, write_page
from steps import resilience
from test_then_checks import ScriptedMesh, _lab

ROOT = Path(__file__).resolve().parents[1]
#: where the browser test leaves the page and its screenshot (reports/ is an artifact)
ARTIFACTS = ROOT / "reports" / "test-artifacts"
CHROMIUM = os.environ.get("BOOKINFO_LABS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"

#: as checks/splits.py records a sequential split test
SPLIT = {"kind": "split", "title": "reviews versions split v1 50% and v3 50%", "requests": 250,
         "looks": 5, "verdict": "pass", "false_failure": 2e-7, "miss": 0.03, "categories": [
             {"name": "v1", "expected_share": 0.5, "observed": 121, "accepted": [105, 145]},
             {"name": "v3", "expected_share": 0.5, "observed": 129, "accepted": [105, 145]},
             {"name": "v2", "expected_share": 0.0, "observed": 0, "accepted": [0, 0]}]}
LATENCY = {"kind": "latency", "title": "every response in 1.99 to 2.25 s",
           "samples_s": [2.004, 2.011, 2.006, 2.02, 2.31], "band_s": [1.99, 2.25]}
#: as steps/metrics.py records the service graph (topology.py)
GRAPH = {"kind": "graph", "edges": [
    {"source": "productpage", "source_version": "v1", "destination": "reviews", "version": "v2",
     "requests": 15, "rate": 0.25, "error_share": 0.0},
    {"source": "productpage", "source_version": "v1", "destination": "reviews", "version": "v1",
     "requests": 0, "rate": 0.0, "error_share": 0.0},
    {"source": "reviews", "source_version": "v2", "destination": "ratings", "version": "v1",
     "requests": 15, "rate": 0.25, "error_share": 0.2},
    {"source": "productpage", "source_version": "v1", "destination": "details", "version": "v1",
     "requests": 15, "rate": 0.25, "error_share": 0.0},
    {"source": "curl", "source_version": "unknown", "destination": "productpage",
     "version": "v1", "requests": 15, "rate": 0.25, "error_share": 0.0}]}


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n", png[:8]
    return struct.unpack(">II", png[16:24])  # IHDR: width, height


# -- what the latency checks record (the split's record: tests/test_sequential.py) ---------

@pytest.mark.parametrize("step, args, band", [
    (resilience.took_between, (1.99, 2.25), [1.99, 2.25]),
    (resilience.took_under, (1.0,), [0.0, 1.0]),
])
def test_a_latency_check_records_the_times_and_its_band(step, args, band):
    times = [0.5, 0.6, 0.7] if band[0] == 0 else [2.0, 2.01, 2.1]
    mesh = ScriptedMesh([[HttpResponse(status=200, elapsed_s=t) for t in times]])
    lab = _lab(mesh)
    lab.send(HttpRequest(url="http://productpage:9080/productpage"), 3)
    step(lab, *args)
    [figure] = lab.figures
    assert figure["kind"] == "latency"
    assert figure["samples_s"] == times and figure["band_s"] == band


def test_a_failed_latency_check_records_the_times_that_failed():
    mesh = ScriptedMesh([[HttpResponse(status=200, elapsed_s=t) for t in (0.01, 0.02)]])
    lab = _lab(mesh, timeout_s=0.2)
    lab.send(HttpRequest(url="http://productpage:9080/productpage"), 2)
    with pytest.raises(AssertionError):
        resilience.took_between(lab, 1.99, 2.25)
    assert lab.figures[-1]["samples_s"] == [0.01, 0.02]


# -- the pictures -------------------------------------------------------------------------

@pytest.mark.parametrize("figure", [SPLIT, LATENCY, GRAPH], ids=["split", "latency", "graph"])
def test_each_kind_of_figure_is_drawn_as_a_png(figure):
    width, height = _png_size(draw(figure))
    assert width >= 600 and height >= 300


@pytest.mark.parametrize("figure, says", [
    ({"kind": "pie"}, "no drawing for figures of kind 'pie'"),
    ({"kind": "split", "requests": 0, "categories": []}, "needs categories and requests > 0"),
    ({"kind": "split", "requests": 10, "categories": [{"name": "v1"}]}, "split category 0 needs"),
    ({"kind": "latency", "samples_s": [], "band_s": [0, 1]}, "samples_s"),
    ({"kind": "graph", "edges": [{"source": "a"}]}, "graph edge 0 needs"),
])
def test_a_figure_with_data_that_does_not_fit_says_what_is_wrong(figure, says):
    with pytest.raises(FigureError, match=says.replace("(", r"\(")):
        draw(figure)


def test_the_service_graph_joins_a_caller_to_the_callee_of_the_same_workload():
    """productpage calling without its version and called as productpage v1 is one box."""
    from bookinfo_labs.report_figures import _layers, _merge_callers, _node

    arrows = _merge_callers([
        ("ingress", _node("productpage", "v1"), 3.0, 0.0),
        ("productpage", _node("reviews", "v2"), 3.0, 0.0),
        ("reviews-v2", _node("ratings", "v1"), 3.0, 0.0)])
    assert [a[:2] for a in arrows] == [("ingress", "productpage-v1"),
                                       ("productpage-v1", "reviews-v2"),
                                       ("reviews-v2", "ratings-v1")]
    columns = {name: x for name, (x, _) in _layers(arrows).items()}
    assert columns == {"ingress": 0, "productpage-v1": 1, "reviews-v2": 2, "ratings-v1": 3}


# -- the page -----------------------------------------------------------------------------

def _report_with_figures() -> dict:
    """A run of two labs: a split and a failed latency check, a graph, a skip, a bad figure."""
    report = LabReport(mesh="local", istio="1.26", envoy="1.36.4")
    for nodeid, lab, path, name in [
            ("t::shift", "Traffic shifting", "traffic/traffic_shifting.feature", "Shift <half>"),
            ("t::graph", "Traffic shifting", "traffic/traffic_shifting.feature", "The graph"),
            ("t::delay", "Fault injection", "resilience/fault_injection.feature", "A 2 s delay"),
            ("t::skip", "Fault injection", "resilience/fault_injection.feature", "Skipped one")]:
        report.register(nodeid, feature=lab, path=path, scenario=name)
    report.record("t::shift", "call", "passed", 3.2, "")
    report.scenarios["t::shift"].figures = [SPLIT, {"kind": "split", "title": "broken"}]
    report.record("t::graph", "call", "passed", 1.0, "")
    report.scenarios["t::graph"].figures = [GRAPH]
    report.record("t::skip", "setup", "skipped", 0.0, "needs the public internet")
    error = EventuallyError("eventually: expected every response in 1.99 to 2.25 s\n  ...",
                            "times [2.004, 2.31] s, expected each 1.99 to 2.25 s",
                            "every response in 1.99 to 2.25 s")
    manifests = parse_text("apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
                           "metadata: {name: ratings}\nspec:\n  hosts: [ratings]\n  http:\n"
                           "  - fault: {delay: {fixedDelay: 2s, percentage: {value: 100}}}\n"
                           "    route: [{destination: {host: ratings, subset: v1}}]\n",
                           "manifests/istio/ratings-delay.yaml")
    report.record("t::delay", "call", "failed", 12.5, "times [2.004, 2.31] s")
    report.scenarios["t::delay"].figures = [LATENCY]
    report.scenarios["t::delay"].failure = failure_details(
        error, str(error), step="Then every page took 1.99 to 2.25 seconds (x.feature:9)",
        manifests=manifests, diagnostics="--- routes of the curl sidecar ---\n"
                                         "ratings.default.svc.cluster.local:9080  <fault>")
    return report.as_dict()


def test_the_page_shows_each_lab_and_scenario_with_its_result_and_time():
    page = render(_report_with_figures(), draw=lambda figure: draw(figure))
    assert "<h1>Bookinfo labs: Istio 1.26 on the local mesh</h1>" in page
    assert page.index("Traffic shifting") < page.index("Fault injection")  # the report's order
    assert "Shift &lt;half&gt;" in page and "Shift <half>" not in page  # escaped
    assert "needs the public internet" in page
    assert "3.2 s" in page and "12.5 s" in page
    assert 'href="#lab-traffic-traffic-shifting-feature"' in page


def test_a_failure_shows_its_step_expected_observed_yaml_and_diagnostics():
    page = render(_report_with_figures(), draw=lambda figure: b"\x89PNG")
    assert "Failed at</strong> Then every page took 1.99 to 2.25 seconds" in page
    assert "<dt>Expected</dt><dd><pre>every response in 1.99 to 2.25 s" in page
    assert "<dt>Observed</dt><dd><pre>times [2.004, 2.31] s, expected each" in page
    assert "# manifests/istio/ratings-delay.yaml:1" in page and "fixedDelay: 2s" in page
    assert "routes of the curl sidecar" in page


def test_a_figure_that_cannot_be_drawn_is_said_in_its_place_and_the_rest_is_drawn():
    page = render(_report_with_figures())
    assert "Could not draw the split check &ldquo;broken&rdquo;: FigureError" in page
    assert page.count('<img class="split"') == 1
    assert page.count('<img class="latency"') == 1 and page.count('<img class="graph"') == 1


def test_the_page_is_self_contained():
    page = render(_report_with_figures())
    assert "<script" not in page.lower()
    for attribute in ("src=", "href="):
        for value in page.split(attribute)[1:]:
            assert value[1:].startswith(("data:image/png;base64,", "#")), value[:60]
    assert "@import" not in page and "url(" not in page


def test_a_saved_labs_json_renders_again_from_the_command_line(tmp_path):
    (tmp_path / "labs.json").write_text(json.dumps(_report_with_figures()))
    run = subprocess.run([sys.executable, "-m", "bookinfo_labs.report_html",
                          str(tmp_path / "labs.json")], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert run.returncode == 0, run.stderr
    assert '<img class="graph"' in (tmp_path / "labs.html").read_text()


# -- the page in a browser ------------------------------------------------------------------

def _chromium():
    """Playwright driving the system's Chromium (no browser download), or a skip saying why."""
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}: install Debian's chromium (scripts/"
                    "ensure-tools.sh does) or set BOOKINFO_LABS_CHROMIUM")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright package is a test extra: "
                                      "pip install -e '.[test]'")
    return sync_api


def _look_at(page_path: Path, screenshot: Path) -> dict:
    sync_api = _chromium()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(page_path.resolve().as_uri())
            page.wait_for_load_state("load")
            seen = page.evaluate("""() => ({
                headings: Array.from(document.querySelectorAll('h1, h2'), h => h.textContent),
                images: Array.from(document.images, i => ({
                    kind: i.className, complete: i.complete,
                    width: i.naturalWidth, height: i.naturalHeight,
                    shown: i.getBoundingClientRect().width})),
                errors: Array.from(document.querySelectorAll('.figure-error'),
                                   e => e.textContent)})""")
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return seen


def _loaded(seen: dict, kind: str) -> list[dict]:
    return [i for i in seen["images"] if i["kind"] == kind and i["complete"]
            and i["width"] > 0 and i["height"] > 0 and i["shown"] > 0]


def test_the_page_in_chromium_shows_a_split_chart_a_latency_histogram_and_the_graph():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page_path, screenshot = ARTIFACTS / "labs.html", ARTIFACTS / "labs.png"
    write_page(_report_with_figures(), page_path)
    seen = _look_at(page_path, screenshot)
    assert seen["headings"][0] == "Bookinfo labs: Istio 1.26 on the local mesh"
    assert "Service graph" in seen["headings"]
    assert any(h.startswith("Traffic shifting") for h in seen["headings"])
    assert any(h.startswith("Fault injection") for h in seen["headings"])
    for kind in ("split", "latency", "graph"):
        assert _loaded(seen, kind), (kind, seen["images"])
    assert len(seen["errors"]) == 1 and "broken" in seen["errors"][0]
    assert screenshot.stat().st_size > 10_000  # a page with pictures, kept as an artifact


def test_a_real_traffic_shifting_run_writes_a_page_chromium_shows_with_its_split_chart(
        tmp_path):
    """One canary step of the traffic-shifting lab and one request-routing scenario, at
    normal verbosity: a line per lab as it starts, and a page with the split's chart."""
    _chromium()
    out = tmp_path / "report"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "features/traffic",
         "-k", "Canary and 90 or route_all_traffic_to_v1", "--lab-report", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    lines = run.stdout.splitlines()
    assert "lab 1 of 2: Request routing (traffic/request_routing.feature), scenario 1 of 2" in lines
    assert ("lab 2 of 2: Traffic shifting (traffic/traffic_shifting.feature), scenario 2 of 2"
            in lines)
    # pytest's own percentage still ends each line of dots
    assert [line.split()[-1] for line in lines if line.startswith("features/traffic/")] == [
        "50%]", "[100%]"], run.stdout
    assert f"The lab report as a page: {out / 'labs.html'}" in run.stdout
    figures = [f for lab in json.loads((out / "labs.json").read_text())["labs"]
               for s in lab["scenarios"] for f in s["figures"]]
    assert [f["kind"] for f in figures] == ["split"] and figures[0]["verdict"] == "pass"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    seen = _look_at(out / "labs.html", ARTIFACTS / "traffic-shifting.png")
    assert len(_loaded(seen, "split")) == 1, seen["images"]
