"""--explain for Then steps: the command that shows by hand what the check looks at.

Each kind of Then step gets its command checked as text, as valid shell (``bash -n``), and
run: a fake ``kubectl`` runs the pod's side on this machine and a fake ``curl`` answers
with a product page the local app renders, so the greps are proven to count what the
check counts on the real markup of each UI flavour.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from bookinfo_labs import explain
from bookinfo_labs.local.apps.productpage_html import product_page
from bookinfo_labs.mesh import HttpRequest
from bookinfo_labs.versions import get_version

ROOT = Path(__file__).resolve().parents[1]
ISTIO = get_version("1.26")  # Tailwind page, star glyph id
needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")

PAGE = HttpRequest(url="http://productpage:9080/productpage")
REVIEWS = HttpRequest(url="http://reviews:9080/reviews/0", headers=(("end-user", "jason"),))
TAGGED = HttpRequest(url="http://httpbin:8000/status/503?nonce=0a1b2c3d4e5f6789")
PARALLEL = HttpRequest(url="http://httpbin:8000/get", parallel=3)
HTTPS = HttpRequest(url="https://a.example.com:8443/status/418", cacert="/tmp/example.com.crt",
                    resolve=("a.example.com:8443:127.0.0.1",), cert="/tmp/c.crt", key="/tmp/c.key")
TCP = SimpleNamespace(host="127.0.0.1", port=31400)  # a tcpclient.TcpRequest's address


def batch(request: HttpRequest, count: int) -> SimpleNamespace:
    return SimpleNamespace(request=request, count=count)


def every_then_command() -> dict[str, str]:
    """One command of each kind a Then step prints."""
    return {
        "statuses": explain.statuses_command("curl", batch(PAGE, 20)),
        "statuses, one": explain.statuses_command("curl", batch(TAGGED, 1)),
        "statuses, parallel": explain.statuses_command("curl", batch(PARALLEL, 30)),
        "bodies": explain.bodies_command("curl", batch(REVIEWS, 3)),
        "latencies": explain.latencies_command("curl", batch(PAGE, 5)),
        "versions": explain.versions_command("curl", batch(PAGE, 20)),
        "stars": explain.stars_command("curl", batch(PAGE, 20), ISTIO),
        "star colours": explain.star_colors_command("curl", batch(PAGE, 20), ISTIO),
        "star colours by version": explain.star_colors_command(
            "curl", batch(PAGE, 20), ISTIO, with_version=True),
        "signed in": explain.signed_in_command(
            "curl", batch(HttpRequest(url=PAGE.url, cookie_jar="jason-abc"), 5), ISTIO),
        "page text": explain.page_text_command("curl", batch(PAGE, 3), "Ratings service is currently unavailable"),
        "replies": explain.replies_command("curl", batch(PARALLEL, 30), "x-envoy-overloaded",
                                           "upstream connect error or disconnect/reset before "
                                           "headers. reset reason: overflow"),
        "reply headers": explain.replies_command("curl", batch(PAGE, 3), "x-block-reason"),
        "log count": explain.log_grep_command("httpbin-v1", "0a1b2c3d4e5f6789"),
        "proxy log": explain.log_grep_command("httpbin-v2", "0a1b2c3d4e5f6789", "istio-proxy",
                                              count=False),
        "stat": explain.stat_command("fortio", "httpbin", "upstream_rq_pending_overflow", ISTIO),
        "fortio codes": explain.fortio_codes_command("fortio", "http://httpbin:8000/get", ISTIO,
                                                     connections=2, requests=20),
        "answers again": explain.answers_again_command("curl", "http://httpbin:8000/get"),
        "validate": explain.validate_command("manifests/workshop/httpbinvs.yaml"),
        "analyze": explain.analyze_command("labs"),
        "served certificate": "\n".join(explain.served_certificate_commands(
            SimpleNamespace(request=HTTPS, count=1), "/tmp/a.example.com.crt")),
        "exit codes": explain.exit_codes_command("curl", SimpleNamespace(
            request=HTTPS, count=2, from_host=True)),
        "handshake alert": explain.handshake_alert_command(HTTPS),
        "tcp replies": explain.tcp_replies_command(batch(TCP, 200)),
    }


# -- the text of each kind ---------------------------------------------------------------

def test_statuses_and_latencies_are_curl_write_outs():
    assert explain.statuses_command("curl", batch(PAGE, 20)) == (
        "kubectl exec deploy/curl -c curl -- sh -c \"for i in \\$(seq 20); do curl -s -o /dev/null "
        "-w '%{http_code}\\n' http://productpage:9080/productpage; done\" | sort | uniq -c"
        "  # how many, status")
    assert explain.latencies_command("curl", batch(REVIEWS, 1)) == (
        "kubectl exec deploy/curl -c curl -- curl -s -H 'end-user: jason' -o /dev/null "
        "-w '%{http_code} %{time_total}\\n' http://reviews:9080/reviews/0  # status, seconds")


def test_a_parallel_batch_is_sent_through_xargs():
    assert ("sh -c \"seq 30 | xargs -P 3 -I{} curl -s -o /dev/null -w '%{http_code}\\n' "
            "http://httpbin:8000/get\"") in explain.statuses_command("curl", batch(PARALLEL, 30))


def test_the_nonce_is_left_out_so_looking_again_never_adds_to_a_log_count():
    command = explain.statuses_command("curl", batch(TAGGED, 1))
    assert command.endswith(" http://httpbin:8000/status/503") and "nonce" not in command
    tagged = HttpRequest(url="http://httpbin:8000/anything?a=1&nonce=ff00")
    assert explain.statuses_command("curl", batch(tagged, 1)).endswith(" 'http://httpbin:8000/anything?a=1'")


def test_logs_stats_fortio_and_config_commands():
    commands = every_then_command()
    assert commands["log count"] == "kubectl logs deploy/httpbin-v1 | grep -c 0a1b2c3d4e5f6789"
    assert commands["proxy log"] == "kubectl logs deploy/httpbin-v2 -c istio-proxy | grep 0a1b2c3d4e5f6789"
    assert commands["stat"] == (
        "kubectl exec deploy/fortio-deploy -c istio-proxy -- pilot-agent request GET stats | "
        "grep httpbin | grep upstream_rq_pending_overflow  # before and after: the difference is the growth")
    assert commands["fortio codes"] == (
        "kubectl exec deploy/fortio-deploy -c fortio -- fortio load -c 2 -qps 0 -n 20 -loglevel "
        "Warning http://httpbin:8000/get | grep '^Code '")
    assert commands["validate"] == "kubectl apply --dry-run=server -f manifests/workshop/httpbinvs.yaml"
    assert commands["analyze"] == "istioctl analyze -n labs"
    assert explain.stat_command("curl", "httpbin", "pending", ISTIO, growth=False).endswith(
        "deploy/curl -c istio-proxy -- pilot-agent request GET stats | grep httpbin | grep pending")


def test_the_tcp_commands_are_the_tasks_nc_loop():
    nc = "(date; sleep 1) | nc $INGRESS_HOST $TCP_INGRESS_PORT"
    assert explain.tcp_ingress_commands("kube", "tcp", TCP, 20) == [
        "export INGRESS_HOST=$(kubectl get po -l istio=ingressgateway -n istio-system "
        "-o jsonpath='{.items[0].status.hostIP}')",
        "export TCP_INGRESS_PORT=$(kubectl -n istio-system get service istio-ingressgateway "
        "-o jsonpath='{.spec.ports[?(@.name==\"tcp\")].nodePort}')",
        f"for i in $(seq 20); do {nc}; done"]
    assert explain.tcp_ingress_commands("local", "tcp", TCP, 1) == [
        "# the local mesh binds the ingress gateway's tcp port on 127.0.0.1:31400",
        "export INGRESS_HOST=127.0.0.1 TCP_INGRESS_PORT=31400", nc]
    assert every_then_command()["tcp replies"] == (
        f"for i in $(seq 200); do {nc}; done | cut -d' ' -f1 | sort | uniq -c"
        "  # how many, first word of the reply")


def test_the_page_patterns_follow_the_ui_flavour():
    assert "'glyphicon glyphicon-star\\\"'" in explain.stars_command("curl", batch(PAGE, 2), ISTIO)
    no_id = explain.stars_command("curl", batch(PAGE, 2), get_version("1.23"))
    assert 'fill=\\"currentColor\\"' in no_id
    legacy = explain.star_colors_command("curl", batch(PAGE, 2), get_version("1.22"))
    assert "'<font color=\\\"[a-z]*\\\"'" in legacy


def test_tls_commands_reach_the_gateway_as_curl_does():
    commands = every_then_command()
    assert commands["served certificate"].startswith(
        "openssl s_client -connect 127.0.0.1:8443 -servername a.example.com </dev/null")
    assert commands["exit codes"] == (
        "for i in $(seq 2); do curl -s --resolve a.example.com:8443:127.0.0.1 --cacert "
        "/tmp/example.com.crt --cert /tmp/c.crt --key /tmp/c.key -S -o /dev/null "
        "https://a.example.com:8443/status/418; echo \"curl exit $?\"; done  # curl's error and exit code")
    assert commands["handshake alert"] == (
        "sleep 1 | openssl s_client -connect 127.0.0.1:8443 -servername a.example.com -alpn "
        "http/1.1 -CAfile /tmp/example.com.crt -cert /tmp/c.crt -key /tmp/c.key 2>&1 | grep -i alert")


def test_scenario_heading_is_one_comment_line():
    assert explain.scenario_heading("Request routing", "Route all traffic to v1") == (
        "# ==== Request routing: Route all traffic to v1 ====")
    assert explain.scenario_heading("A\nB", "  two  spaces ") == "# ==== A B: two spaces ===="


# -- valid shell, and quoted for the pod's shell ------------------------------------------

@needs_bash
@pytest.mark.parametrize("kind", sorted(every_then_command()))
def test_every_then_command_is_valid_shell(kind):
    command = every_then_command()[kind]
    result = subprocess.run(["bash", "-n", "-c", command], capture_output=True, text=True, timeout=10)
    assert result.returncode == 0, f"{kind}: {command}\n{result.stderr}"


@needs_bash
@pytest.mark.parametrize("script", [
    "for i in $(seq 3); do curl -s -w '%{http_code}\\n' http://x/; done",
    'grep -o \'text-gray-50">[^<]*\' || echo nobody',
    "echo `date` \"$HOME\" \\\\ end\\",
    "echo 'wow!'",
])
def test_a_script_reaches_sh_c_unchanged(script):
    word = explain._sh_c_word(script)
    out = subprocess.run(["bash", "-c", f"printf %s {word}"], capture_output=True, text=True,
                         timeout=10).stdout
    assert out == script


# -- the commands, run: a fake kubectl, a fake curl, the real page markup -----------------

FAKE_KUBECTL = """\
#!/bin/sh
# kubectl exec ... -- CMD: run CMD here; kubectl logs ...: the fake log
if [ "$1" = logs ]; then cat "$FAKE_LOG"; exit; fi
while [ "$1" != "--" ]; do shift; done
shift
exec "$@"
"""

FAKE_CURL = f"""\
#!{sys.executable}
import os, sys
args, body, out, fmt, head = sys.argv[1:], open(os.environ["FAKE_BODY"]).read(), True, "", False
for i, arg in enumerate(args):
    if arg == "-o" and args[i + 1] == "/dev/null":
        out = False
    elif arg == "-w":
        fmt = args[i + 1]
    elif arg == "-i":
        head = True
status = os.environ.get("FAKE_STATUS", "200")
if head:
    sys.stdout.write(f"HTTP/1.1 {{status}} X\\r\\n" + os.environ.get("FAKE_HEADERS", "") + "\\r\\n")
if out:
    sys.stdout.write(body)
sys.stdout.write(fmt.replace("%{{http_code}}", status).replace("%{{time_total}}", "0.501")
                 .replace("\\\\n", "\\n"))
"""


def _page(istio, *, user=None, color="red", version="v3", reviews_ok=True) -> str:
    rating = {"stars": None} if version == "v1" else None
    reviews = {
        "podname": f"reviews-{version}-7d8f9c6b5d-x2k4p", "clustername": "null",
        "reviews": [
            {"reviewer": "Reviewer1", "text": "An extremely entertaining play by Shakespeare.",
             "rating": rating or {"stars": 5, "color": color}},
            {"reviewer": "Reviewer2", "text": "Absolutely fun and entertaining.",
             "rating": rating or {"stars": 4, "color": color}},
        ],
    }
    return product_page(istio.productpage_ui, star_svg_id=istio.star_svg_id, user=user,
                        product={"title": "The Comedy of Errors"}, details_status=200,
                        details={"ISBN-10": "1234567890"},
                        reviews_status=200 if reviews_ok else 503,
                        reviews=reviews if reviews_ok else {"error": "Sorry, product reviews are "
                                                            "currently unavailable for this book."})


@pytest.fixture
def run(tmp_path):
    for name, text in (("kubectl", FAKE_KUBECTL), ("curl", FAKE_CURL)):
        (tmp_path / name).write_text(text)
        (tmp_path / name).chmod(0o755)

    def run(command: str, body: str = "", **env: str) -> list[str]:
        (tmp_path / "body").write_text(body)
        result = subprocess.run(
            ["bash", "-c", command], capture_output=True, text=True, timeout=30,
            env={"PATH": f"{tmp_path}:/usr/bin:/bin", "FAKE_BODY": str(tmp_path / "body"), **env})
        assert result.returncode == 0, result.stderr
        return [" ".join(line.split()) for line in result.stdout.splitlines()]

    return run


@needs_bash
@pytest.mark.parametrize("istio", ["1.26", "1.23", "1.22"])  # glyph id, Tailwind without, Bootstrap
def test_the_page_commands_count_what_the_checks_count(run, istio):
    istio = get_version(istio)
    pages = batch(PAGE, 3)
    red_v3 = _page(istio)
    assert run(explain.versions_command("curl", pages), red_v3) == ["3 reviews-v3"]
    assert run(explain.stars_command("curl", pages, istio), red_v3) == ["3 9"]  # 5 + 4 filled
    assert run(explain.stars_command("curl", pages, istio), _page(istio, version="v1")) == ["3 0"]
    color = "gap-x-1 text-red-500" if istio.productpage_ui == "tailwind" else '<font color="red"'
    assert run(explain.star_colors_command("curl", pages, istio, with_version=True), red_v3) == [
        f"3 {color} reviews-v3"]
    jason = run(explain.signed_in_command("curl", pages, istio), _page(istio, user="jason"))
    assert len(jason) == 1 and jason[0].startswith("3 ") and "jason" in jason[0]
    assert run(explain.signed_in_command("curl", pages, istio), red_v3) == ["3 nobody"]
    error = _page(istio, reviews_ok=False)
    text = "Sorry, product reviews are currently unavailable for this book."
    assert run(explain.page_text_command("curl", pages, text), error) == ["3 1"]


@needs_bash
def test_the_status_body_latency_reply_and_log_commands_run(run, tmp_path):
    api = batch(REVIEWS, 4)
    assert run(explain.statuses_command("curl", api), "x", FAKE_STATUS="504") == ["4 504"]
    assert run(explain.bodies_command("curl", api), "upstream request timeout",
               FAKE_STATUS="504") == ["4 upstream request timeout (504)"]
    assert run(explain.bodies_command("curl", api), "", FAKE_STATUS="503") == ["4 (503)"]
    assert run(explain.latencies_command("curl", api), "x", FAKE_STATUS="200") == ["200 0.501"] * 4
    body = "upstream connect error or disconnect/reset before headers. reset reason: overflow"
    replies = run(every_then_command()["replies"], body, FAKE_STATUS="503",
                  FAKE_HEADERS="x-envoy-overloaded: true\r\n")
    assert replies == ["30 HTTP/1.1 503 X", f"30 {body}", "30 x-envoy-overloaded: true"]
    headers = run(every_then_command()["reply headers"], "path not allowed", FAKE_STATUS="404",
                  FAKE_HEADERS="x-block-reason: path-not-allowed\r\nserver: envoy\r\n")
    assert headers == ["3 HTTP/1.1 404 X", "3 x-block-reason: path-not-allowed"]
    (tmp_path / "log").write_text("GET /get?nonce=0a1b2c3d4e5f6789\nGET /get?nonce=ffff\n" * 2)
    assert run(every_then_command()["log count"], FAKE_LOG=str(tmp_path / "log")) == ["2"]


# -- the steps print them -----------------------------------------------------------------

def _then_steps_without_explanation() -> list[str]:
    """Then step functions that neither call ``lab.explain`` nor a step function that does."""
    functions, then_steps = {}, set()
    for path in sorted((ROOT / "steps").glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef):
                functions[node.name] = node
                if any(isinstance(d, ast.Call) and getattr(d.func, "id", "") == "then"
                       for d in node.decorator_list):
                    then_steps.add(node.name)

    def shows(name: str, seen: frozenset = frozenset()) -> bool:
        calls = [n for n in ast.walk(functions[name]) if isinstance(n, ast.Call)]
        if any(getattr(c.func, "attr", "") == "explain" for c in calls):
            return True
        called = {getattr(c.func, "id", "") for c in calls} & set(functions) - seen - {name}
        return any(shows(other, seen | {name}) for other in called)

    return sorted(name for name in then_steps if not shows(name))


def test_every_then_step_prints_its_command():
    assert _then_steps_without_explanation() == []


def test_explain_prints_a_then_steps_command_in_a_real_run(tmp_path):
    """The real features, one scenario, with --explain: the Then steps' commands follow
    their lines."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "features/", "--explain", "-p", "no:cacheprovider",
         "-k", "jason_is_routed_to_reviews_v2", "--lab-report", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    lines = result.stdout.splitlines()
    for step, command in [
        ("# Then every page shows jason signed in", "grep -o 'text-gray-50\\\">[^<]*' || echo nobody"),
        ("# And every page is served by reviews v2", "grep -o 'reviews-v[0-9]*' | sort -u"),
        ("# And every page shows black stars", "gap-x-1 text-[a-z]*-500"),
    ]:
        assert step in lines, textwrap.shorten(result.stdout, 3000)
        after = lines[lines.index(step) + 1]
        assert after.startswith("kubectl exec deploy/") and command in after, (step, after)


@needs_bash
def test_the_tcp_replies_command_counts_the_first_words(tmp_path):
    """A fake nc answers like tcp-echo v1; a fake sleep keeps the loop quick."""
    for name, text in (("nc", '#!/bin/sh\nread line; echo "one $line"\n'),
                       ("sleep", "#!/bin/sh\nexit 0\n")):
        (tmp_path / name).write_text(text)
        (tmp_path / name).chmod(0o755)
    command = ("export INGRESS_HOST=127.0.0.1 TCP_INGRESS_PORT=31400; "
               + explain.tcp_replies_command(batch(TCP, 3)))
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30,
                            env={"PATH": f"{tmp_path}:/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert [" ".join(line.split()) for line in result.stdout.splitlines()] == ["3 one"]
