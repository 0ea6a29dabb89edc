"""`bookinfo-labs up` as a learner uses it: a real mesh in a subprocess, the other commands
talking to it through its control endpoint, a real browser on the product page, and
nothing left running once it is stopped with SIGTERM or Ctrl-C (SIGINT)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from bookinfo_labs.checks.page import parse_product_page

ROOT = Path(__file__).resolve().parents[1]
TEST_V2 = "manifests/bookinfo/networking/virtual-service-reviews-test-v2.yaml"
CHROMIUM = os.environ.get("BOOKINFO_LABS_CHROMIUM") or shutil.which("chromium") or \
    "/usr/bin/chromium"
#: where the browser test keeps its screenshot (CI keeps reports/ as an artifact)
ARTIFACTS = ROOT / "reports" / "workshop"
#: `up` starts ~15 Envoys and the apps: a few seconds on the 2-core machine, more when
#: other suites run beside it
UP_DEADLINE_S = 90.0


def _descendants(pid: int) -> dict[int, str]:
    """Every process below ``pid`` (its Envoys, its Prometheus), pid -> command line."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = {}, [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            try:
                found[child] = (Path("/proc") / str(child) / "cmdline").read_bytes()
            except OSError:
                continue
            todo.append(child)
    return {p: c.replace(b"\0", b" ").decode(errors="replace") for p, c in found.items()}


def _still_running(processes: dict[int, str]) -> list[str]:
    left = []
    for pid, cmdline in processes.items():
        try:
            now = (Path("/proc") / str(pid) / "cmdline").read_bytes()
            state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if now.replace(b"\0", b" ").decode(errors="replace") == cmdline and state != "Z":
            left.append(f"{pid}: {cmdline}")
    return left


class Up:
    """One `bookinfo-labs up` in a subprocess, with its own control endpoint."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="bl-up-"))  # short: a socket path has a limit
        self.env = {**os.environ, "BOOKINFO_LABS_SOCKET": str(self.dir / "control.sock"),
                    "PYTHONPATH": os.pathsep.join([str(ROOT / "src"),
                                                   os.environ.get("PYTHONPATH", "")])}
        self.log = self.dir / "up.log"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bookinfo_labs.cli", "up"], cwd=ROOT, env=self.env,
            stdout=self.log.open("w"), stderr=subprocess.STDOUT)
        self.output = self._wait_for("Press Ctrl-C")
        found = re.search(r"Open the product page: (\S+)", self.output)
        assert found, self.output
        self.product_page = found.group(1)

    def _wait_for(self, text: str) -> str:
        deadline = time.monotonic() + UP_DEADLINE_S
        while time.monotonic() < deadline:
            output = self.log.read_text()
            if text in output:
                return output
            if self.process.poll() is not None:
                pytest.fail(f"bookinfo-labs up exited with {self.process.returncode}:\n{output}")
            time.sleep(0.1)
        pytest.fail(f"bookinfo-labs up did not get ready in {UP_DEADLINE_S:g} s:\n"
                    f"{self.log.read_text()}")

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "bookinfo_labs.cli", *args], cwd=ROOT,
                              env=self.env, input=stdin, capture_output=True, text=True,
                              timeout=60)

    def stop(self, signum: int) -> list[str]:
        """Send ``signum``; return what is still running once `up` has exited."""
        processes = _descendants(self.process.pid)
        assert any("envoy" in c for c in processes.values()), processes  # it did start them
        self.process.send_signal(signum)
        self.process.wait(timeout=30)
        return _still_running(processes)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def up():
    running = Up()
    yield running
    running.close()


def test_apply_get_curl_and_proxy_config_act_on_the_running_mesh(up: Up):
    assert "kubectl apply -f manifests/bookinfo/networking/bookinfo-gateway.yaml" in up.output

    applied = up.cli("apply", "-f", TEST_V2)
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.strip() == "virtualservice.networking.istio.io/reviews created"
    assert "virtualservice/reviews" in up.cli("get").stdout

    page = up.cli("curl", "http://productpage:9080/productpage", "-s")
    assert page.returncode == 0, page.stderr
    assert parse_product_page(page.stdout).title == "Simple Bookstore App"

    routes = up.cli("proxy-config", "routes", "deploy/productpage-v1")
    assert routes.returncode == 0, routes.stderr
    assert re.search(r"reviews\.default\.svc\.cluster\.local:9080 .* reviews\.default",
                     routes.stdout), routes.stdout
    assert "SYNCED" in up.cli("proxy-status").stdout
    assert f"product page: {up.product_page}" in up.cli("status").stdout

    deleted = up.cli("delete", "-f", TEST_V2)
    assert deleted.stdout.strip() == "virtualservice.networking.istio.io/reviews deleted"
    assert "virtualservice/reviews" not in up.cli("get").stdout


def test_a_bad_manifest_is_refused_by_file_and_field_and_nothing_is_applied(up: Up):
    before = up.cli("get").stdout
    text = ("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n"
            "  name: ratings\nspec:\n  hosts: [ratings]\n  http:\n  - route:\n"
            "    - destination: {host: ratings, subset: v1}\n      wieght: 100\n")
    refused = up.cli("apply", "-f", "-", stdin=text)
    assert refused.returncode == 1
    assert "<stdin>" in refused.stderr and "wieght" in refused.stderr, refused.stderr
    assert "Nothing from <stdin> was applied" in refused.stderr
    assert up.cli("get").stdout == before


def test_jason_sees_black_stars_in_chromium_after_applying_test_v2(up: Up):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: install Debian's chromium "
                    "(scripts/ensure-tools.sh) or set BOOKINFO_LABS_CHROMIUM")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a test extra: "
                                   "pip install -e .[test]")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = browser.new_page()
            page.goto(up.product_page)
            page.get_by_role("button", name="Sign in").first.click()
            page.fill("#username", "jason")
            page.fill('input[name="passwd"]', "password")
            page.locator('form[name="login_form"] button[type="submit"]').click()
            page.wait_for_load_state()
            assert parse_product_page(page.content()).signed_in_user == "jason"

            applied = up.cli("apply", "-f", TEST_V2)
            assert applied.returncode == 0, applied.stderr
            page.reload()
            shown = parse_product_page(page.content())
            page.screenshot(path=str(ARTIFACTS / "productpage-jason-test-v2.png"), full_page=True)
        finally:
            browser.close()
            up.cli("delete", "-f", TEST_V2)
    assert shown.signed_in_user == "jason"
    assert shown.reviews and {r.color for r in shown.reviews} == {"black"}, shown.reviews


def test_labs_run_against_the_running_mesh_and_leave_it_as_up_made_it(up: Up):
    before = up.cli("get").stdout
    report = str(up.dir / "reports")
    ran = up.cli("labs", "-k", "request_routing and jason and black", "--lab-report", report,
                 "features/traffic")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "1 passed" in ran.stdout and "Request routing  passed" in ran.stdout, ran.stdout
    assert "warning" not in ran.stdout.lower(), ran.stdout
    assert up.cli("get").stdout == before  # up's gateway and subsets are back

    up.cli("apply", "-f", TEST_V2)  # config made by hand would change what the labs see
    try:
        refused = up.cli("labs", "-k", "jason", "--lab-report", report)
        assert refused.returncode == 4
        assert "VirtualService/reviews (namespace default)" in refused.stdout, refused.stdout
    finally:
        up.cli("delete", "-f", TEST_V2)


def test_sigterm_stops_up_and_everything_it_started(up: Up):
    left = up.stop(signal.SIGTERM)
    assert up.process.returncode == 0, up.log.read_text()
    assert left == [], left
    assert not Path(up.env["BOOKINFO_LABS_SOCKET"]).exists()
    assert "no workshop mesh runs" in up.cli("get").stderr


def test_ctrl_c_stops_up_and_everything_it_started():
    second = Up()
    try:
        left = second.stop(signal.SIGINT)
        assert "Stopped; nothing is left running." in second.log.read_text()
        assert left == [], left
    finally:
        second.close()
