"""--explain: the commands shown are the lab's own, and they run as shown."""

import shlex
import shutil
import subprocess

import pytest

from bookinfo_labs import explain
from bookinfo_labs.manifests import load_file, parse_text
from bookinfo_labs.mesh import HttpRequest, ResourceKey

INLINE = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v2}
"""


def test_apply_a_lab_file_is_kubectl_apply_f():
    manifests = load_file("virtual-service-all-v1.yaml")
    assert explain.apply_commands(manifests) == [
        "kubectl apply -f manifests/bookinfo/networking/virtual-service-all-v1.yaml"]
    assert explain.apply_commands(manifests, "labs") == [
        "kubectl apply -n labs -f manifests/bookinfo/networking/virtual-service-all-v1.yaml"]


def test_inline_yaml_and_part_of_a_file_are_heredocs():
    (command,) = explain.apply_commands(parse_text(INLINE))
    assert command.startswith("kubectl apply -f - <<'EOF'\n") and command.endswith("\nEOF")
    assert "subset: v2" in command
    part = load_file("virtual-service-all-v1.yaml")[1:2]
    (command,) = explain.apply_commands(part)
    assert "name: reviews" in command and "name: ratings" not in command


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_heredoc_hands_the_yaml_to_kubectl_unchanged(tmp_path):
    (command,) = explain.apply_commands(parse_text(INLINE))
    fake = tmp_path / "kubectl"
    fake.write_text("#!/bin/sh\ncat\n")
    fake.chmod(0o755)
    out = subprocess.run(["bash", "-c", command], capture_output=True, text=True,
                         env={"PATH": f"{tmp_path}:/usr/bin:/bin"}, timeout=10).stdout
    assert parse_text(out)[0].raw == parse_text(INLINE)[0].raw


def test_delete_commands():
    manifests = load_file("virtual-service-all-v1.yaml")
    assert explain.delete_commands(manifests) == [
        "kubectl delete --ignore-not-found -f manifests/bookinfo/networking/virtual-service-all-v1.yaml"]
    keys = [ResourceKey("VirtualService", "default", "reviews"),
            ResourceKey("VirtualService", "default", "ratings"),
            ResourceKey("PeerAuthentication", "istio-system", "default")]
    assert explain.delete_commands(keys) == [
        "kubectl delete --ignore-not-found virtualservice reviews ratings",
        "kubectl delete -n istio-system --ignore-not-found peerauthentication default",
    ]


def test_send_one_and_a_batch():
    page = HttpRequest(url="http://productpage:9080/productpage")
    assert explain.send_command("curl", page) == (
        "kubectl exec deploy/curl -c curl -- curl -sS -i http://productpage:9080/productpage")
    batch = explain.send_command("curl", page, 20)
    assert batch == ('kubectl exec deploy/curl -c curl -- sh -c "for i in \\$(seq 20); do '
                     'curl -sS -i http://productpage:9080/productpage; echo; done"')


def test_send_with_headers_and_cookie_jar_is_valid_shell():
    login = HttpRequest(url="http://productpage:9080/login", method="POST",
                        data="username=jason&passwd=jason", cookie_jar="jason")
    command = explain.send_command("sleep", login, 1, namespace="labs")
    words = shlex.split(command)
    assert words[:7] == ["kubectl", "exec", "-n", "labs", "deploy/sleep", "-c", "sleep"]
    assert words[words.index("-b") + 1] == "/tmp/jason.cookies"
    assert words[words.index("--data") + 1] == "username=jason&passwd=jason"
    jason = HttpRequest(url="http://productpage:9080/productpage",
                        headers=(("end-user", "jason"),))
    words = shlex.split(explain.send_command("curl", jason, 5))
    assert words[-3:-1] == ["sh", "-c"]
    inner = shlex.split(words[-1].replace("$(seq 5)", "1 2 3 4 5"))
    assert "end-user: jason" in inner
    # a quote inside forces the fully quoted form, still one word for sh -c
    odd = HttpRequest(url='http://httpbin:8000/anything?q="x"')
    words = shlex.split(explain.send_command("curl", odd, 3))
    assert words[-1].startswith("for i in $(seq 3); do curl") and '"x"' in words[-1]


def test_logs_stats_and_load():
    assert explain.logs_command("httpbin-v1", "httpbin", 9.2) == (
        "kubectl logs deploy/httpbin-v1 -c httpbin --since=10s")
    assert explain.logs_command("productpage-v1") == "kubectl logs deploy/productpage-v1"
    assert explain.stats_command("fortio-deploy", grep="httpbin") == (
        "kubectl exec deploy/fortio-deploy -c istio-proxy -- pilot-agent request GET stats"
        " | grep httpbin")
    assert explain.load_command("fortio-deploy", "http://httpbin:8000/get", connections=2,
                                requests=20) == (
        "kubectl exec deploy/fortio-deploy -c fortio -- fortio load -c 2 -qps 0 -n 20 "
        "-loglevel Warning http://httpbin:8000/get")
