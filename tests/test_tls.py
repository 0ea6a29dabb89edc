"""TLS for the gateway labs: the scenario's certificates and Secrets, curl's TLS options and
the chain it reports, the apps that serve TLS, and the local mesh's TLS config, with real
handshakes (docs/facts.md#tls-at-the-gateway)."""

from __future__ import annotations

import asyncio
import base64
import http.server
import shutil
import ssl
import subprocess
import threading
from pathlib import Path

import pytest

from bookinfo_labs import certs, curlbatch, explain
from bookinfo_labs.local import LocalMesh
from bookinfo_labs.local.apps.base import TLS_CONTEXTS, AppContext
from bookinfo_labs.local.apps.helloworld import helloworld
from bookinfo_labs.local.apps.nginx import nginx, servers
from bookinfo_labs.local.mesh import mounted_files
from bookinfo_labs.local.xds import SECRET, _build
from bookinfo_labs.manifests import ManifestError, manifest_from_object, parse_text
from bookinfo_labs.mesh import HttpRequest, MeshError, ResourceKey
from bookinfo_labs.samples import sample_manifests
from bookinfo_labs.versions import get_version

from test_curlbatch import _Handler

ISTIO = get_version("1.26")
needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, a server certificate for a.example.com and a client certificate, as files."""
    directory = tmp_path_factory.mktemp("pki")
    ca = certs.CertificateAuthority()
    server = ca.issue("a.example.com", "a organization")
    client = ca.issue("client.example.com", "client organization", client=True)
    for issued in (ca.issued, server, client):
        issued.write(directory)
    return {"dir": directory, "ca": ca, "server": server, "client": client}


@pytest.fixture(scope="module")
def https_server(pki):
    """An HTTPS server on 127.0.0.1 with the server certificate; it asks for a client
    certificate signed by the CA and refuses a handshake without one."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)  # curlbatch's own
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=pki["dir"] / "example.com.crt")
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_cert_chain(pki["dir"] / "a.example.com.crt", pki["dir"] / "a.example.com.key")
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()


# -- certificates and secrets -------------------------------------------------------------

def test_certificates_are_the_handouts_subjects_signed_by_the_ca(pki):
    assert certs.subject(pki["ca"].cert_pem) == "O=example Inc.; CN=example.com"
    assert certs.subject(pki["server"].cert_pem) == "CN=a.example.com; O=a organization"
    assert certs.fingerprint(pki["server"].cert_pem.decode()) == pki["server"].fingerprint
    assert len(pki["server"].fingerprint.split(":")) == 32
    if shutil.which("openssl"):
        out = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in",
                              str(pki["dir"] / "a.example.com.crt")], capture_output=True, text=True)
        assert out.stdout.strip().endswith("=" + pki["server"].fingerprint)
        verify = subprocess.run(["openssl", "verify", "-CAfile", str(pki["dir"] / "example.com.crt"),
                                 str(pki["dir"] / "a.example.com.crt")], capture_output=True, text=True)
        assert verify.returncode == 0, verify.stdout + verify.stderr


def test_secrets_have_kubectl_create_secrets_shape(pki):
    tls = certs.tls_secret("cred", "istio-system", pki["server"])
    assert tls["type"] == "kubernetes.io/tls" and tls["metadata"] == {"name": "cred",
                                                                     "namespace": "istio-system"}
    model = manifest_from_object(tls, "<test>").model
    assert model.decoded() == {"tls.crt": pki["server"].cert_pem, "tls.key": pki["server"].key_pem}
    generic = certs.generic_secret("cred", "istio-system", {"ca.crt": b"x"})
    assert generic["type"] == "Opaque" and generic["data"] == {"ca.crt": base64.b64encode(b"x").decode()}


def test_the_handshake_alert_is_read_before_anything_is_written(pki, https_server):
    ca = str(pki["dir"] / "example.com.crt")
    assert certs.handshake_alert("127.0.0.1", https_server, "a.example.com", ca) == \
        "certificate required"
    accepted = certs.handshake_alert("127.0.0.1", https_server, "a.example.com", ca,
                                     str(pki["dir"] / "client.example.com.crt"),
                                     str(pki["dir"] / "client.example.com.key"),
                                     read_timeout_s=0.3)
    assert accepted == ""


# -- curl over TLS ------------------------------------------------------------------------

def test_tls_options_become_curls_and_the_target_follows_resolve():
    request = HttpRequest(url="https://a.example.com:8443/x", resolve=("a.example.com:8443:127.0.0.1",),
                          cacert="/ca.crt", cert="/c.crt", key="/c.key")
    assert request.curl_args()[-8:] == ["--resolve", "a.example.com:8443:127.0.0.1", "--cacert",
                                        "/ca.crt", "--cert", "/c.crt", "--key", "/c.key"]
    assert request.target() == ("127.0.0.1", 8443, "a.example.com")
    assert HttpRequest(url="https://b.example.com/").target() == ("b.example.com", 443, "b.example.com")


@needs_curl
def test_curl_reports_the_chain_the_server_presented(pki, https_server, tmp_path):
    d = pki["dir"]
    request = HttpRequest(url=f"https://a.example.com:{https_server}/", cacert=str(d / "example.com.crt"),
                          resolve=(f"a.example.com:{https_server}:127.0.0.1",),
                          cert=str(d / "client.example.com.crt"), key=str(d / "client.example.com.key"))
    [first, second] = curlbatch.run_here(request, 2, tmp_path)
    assert (first.status, first.body) == (200, "hello nobody\n")
    assert certs.fingerprint(first.certificates[0]) == pki["server"].fingerprint  # leaf first
    assert second.status == 200  # a reused connection: curl reports no chain again
    served = certs.served_certificate("127.0.0.1", https_server, "a.example.com",
                                      str(d / "example.com.crt"), request.cert, request.key)
    assert certs.fingerprint(served) == pki["server"].fingerprint  # for a curl before 7.88
    other = certs.CertificateAuthority("other.example.com")  # another subject: no issuer found
    (tmp_path / "other.crt").write_bytes(other.cert_pem)
    [refused] = curlbatch.run_here(HttpRequest(url=request.url, resolve=request.resolve,
                                               cacert=str(tmp_path / "other.crt")), 1, tmp_path)
    assert refused.status == 0 and refused.exit_code == 60 and not refused.certificates


def test_ingress_commands_spell_the_secure_port_and_resolve_as_the_handout():
    request = HttpRequest(url="https://a.example.com:8443/status/418", cacert="/c/example.com.crt",
                          resolve=("a.example.com:8443:127.0.0.1",))
    lines = explain.ingress_commands("kube", "https", request, address=("127.0.0.1", 8443))
    assert "export SECURE_INGRESS_PORT=" in lines[1] and "==\"https\"" in lines[1]
    assert lines[2] == ('curl -sS -i --resolve "a.example.com:$SECURE_INGRESS_PORT:$INGRESS_HOST" '
                        '--cacert /c/example.com.crt "https://a.example.com:$SECURE_INGRESS_PORT/status/418"')
    plain = explain.ingress_commands("local", "http2", HttpRequest(url="http://127.0.0.1:8080/p"))
    assert plain[1:] == ["export INGRESS_HOST=127.0.0.1 INGRESS_PORT=8080",
                         'curl -sS -i "http://$INGRESS_HOST:$INGRESS_PORT/p"']


def test_the_sds_names_a_listener_refers_to_are_waited_for():
    context = {"@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3."
                        "DownstreamTlsContext",
               "common_tls_context": {"tls_certificate_sds_secret_configs": [
                   {"name": "kubernetes://cred", "sds_config": {"ads": {}}}]}}
    listener = {"name": "l", "address": {"socket_address": {"address": "127.0.0.1", "port_value": 1}},
                "filter_chains": [{"filters": [], "transport_socket": {
                    "name": "envoy.transport_sockets.tls", "typed_config": context}}]}
    assert _build("1", {"Listener": [listener]}).references(SECRET) == {"kubernetes://cred"}


# -- the apps -------------------------------------------------------------------------------

def _ctx(files=None, env=None, options=None) -> AppContext:
    return AppContext(pod_name="p-1", labels={}, env=env or {}, outbound=None, istio=ISTIO,
                      log=lambda line: None, options=options or {}, files=files or {})


def test_nginx_serves_tls_on_the_ports_its_config_says_with_the_mounted_certificate(pki):
    [nginx_sample] = [m for m in sample_manifests("nginx", ISTIO) if m.kind == "Deployment"]
    mountable = {(m.kind, "default", m.name): m for m in sample_manifests("nginx", ISTIO)}
    spec = nginx_sample.raw["spec"]["template"]["spec"]
    files = mounted_files(nginx_sample, spec, spec["containers"][0], mountable, "default")
    assert set(files) == {"/etc/nginx/nginx.conf", "/etc/nginx-server-certs/tls.crt",
                          "/etc/nginx-server-certs/tls.key", "/etc/nginx-server-certs/ca.crt"}
    assert servers(files["/etc/nginx/nginx.conf"].decode()) == [{
        "listen": "443 ssl", "ssl_certificate": "/etc/nginx-server-certs/tls.crt",
        "ssl_certificate_key": "/etc/nginx-server-certs/tls.key", "port": "443", "ssl": "ssl"}]
    app = nginx(_ctx(files))
    assert set(app[TLS_CONTEXTS]) == {443}
    assert nginx(_ctx())[TLS_CONTEXTS] == {}  # the image's default: plain HTTP on 80
    with pytest.raises(RuntimeError, match="cannot load certificate"):
        nginx(_ctx({"/etc/nginx/nginx.conf": files["/etc/nginx/nginx.conf"]}))


def test_a_volume_of_a_missing_object_fails_unless_optional():
    [deployment] = parse_text("""
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  selector: {matchLabels: {app: d}}
  template:
    metadata: {labels: {app: d}}
    spec:
      containers: [{name: c, volumeMounts: [{name: v, mountPath: /x}, {name: t, mountPath: /tmp}]}]
      volumes: [{name: v, secret: {secretName: s}}, {name: t, emptyDir: {}}]
""")
    spec = deployment.raw["spec"]["template"]["spec"]
    with pytest.raises(MeshError, match="mounts Secret 's', which is not among"):
        mounted_files(deployment, spec, spec["containers"][0], {}, "default")
    spec["volumes"][0]["secret"]["optional"] = True
    assert mounted_files(deployment, spec, spec["containers"][0], {}, "default") == {}


def test_helloworld_answers_with_its_version_and_pod():
    from aiohttp.test_utils import TestClient, TestServer

    async def main():
        app = helloworld(_ctx(env={"HOSTNAME": "helloworld-v1-abc"}, options={"service_version": "v1"}))
        async with TestClient(TestServer(app)) as client:
            hello = await client.get("/hello")
            missing = await client.get("/nope")
            return (hello.status, hello.headers["Content-Type"], await hello.text(),
                    missing.status)

    assert asyncio.run(main()) == (200, "text/html; charset=utf-8",
                                   "Hello version: v1, instance: helloworld-v1-abc\n", 404)


# -- the local mesh -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def mesh():
    mesh = LocalMesh.start(ISTIO)
    mesh.deploy("httpbin")
    yield mesh
    mesh.close()


GATEWAY = """\
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: tls-test}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: %s}
    tls: {mode: %s, credentialName: tls-test-credential}
    hosts: [a.example.com]
"""
ROUTE_TO_HTTPBIN = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: tls-test}
spec:
  hosts: [a.example.com]
  gateways: [tls-test]
  http: [{route: [{destination: {host: httpbin, port: {number: 8000}}}]}]
"""


@pytest.mark.parametrize("text, path, message", [
    (GATEWAY % ("HTTPS", "OPTIONAL_MUTUAL"), "spec.servers[0].tls.mode",
     "HTTPS servers with TLS mode OPTIONAL_MUTUAL"),
    (GATEWAY % ("TLS", "SIMPLE"), "spec.servers[0].tls.mode", "TLS servers with TLS mode SIMPLE"),
    (GATEWAY.replace("credentialName: tls-test-credential", "credentialName: 'configmap://ns/x'")
     % ("HTTPS", "SIMPLE"), "spec.servers[0].tls.credentialName", "Kubernetes Secrets only"),
    (ROUTE_TO_HTTPBIN.replace("  gateways: [tls-test]\n", "").replace(
        "http: [{route:", "tls: [{match: [{sniHosts: [a.example.com]}], route:"),
     "spec.tls", "tls routes at gateways only"),
    (GATEWAY.replace("    tls: {mode: %s, credentialName: tls-test-credential}\n",
                     "    tls: {mode: SIMPLE, credentialName: x, minProtocolVersion: TLSV1_3}\n")
     % "HTTPS", "spec.servers[0].tls.minProtocolVersion", "does not implement this field"),
])
def test_what_the_gateway_translation_lacks_is_refused(mesh, text, path, message):
    with pytest.raises(ManifestError) as err:
        mesh.apply(parse_text(text))
    assert err.value.path == path and message in str(err.value)


def test_a_secret_outside_the_gateways_namespace_is_refused(mesh, pki):
    secret = manifest_from_object(certs.tls_secret("cred", "default", pki["server"]), "<test>")
    with pytest.raises(ManifestError, match="create it with -n istio-system"):
        mesh.apply([secret])


def test_a_credential_name_without_its_secret_warns_like_istioctl_analyze(mesh, pki):
    gateway = parse_text(GATEWAY % ("HTTPS", "SIMPLE"))
    keys = mesh.apply(gateway)
    try:
        [warning] = mesh.warnings_for(gateway)
        assert 'IST0101 Referenced credentialName not found: "tls-test-credential"' in warning
        assert warning.split(": ")[2] == "spec.servers[0].tls.credentialName"
        keys += mesh.apply([manifest_from_object(certs.tls_secret(
            "tls-test-credential", "istio-system", pki["server"]), "<test>")])
        assert mesh.warnings_for(gateway) == []
        nowhere = parse_text((GATEWAY % ("HTTPS", "SIMPLE")).replace("ingressgateway", "nowhere"))
        [selector] = mesh.warnings_for(nowhere)
        assert 'IST0101 Referenced selector not found: "istio=nowhere"' in selector
    finally:
        mesh.delete(keys)


@needs_curl
def test_reapplying_a_secret_rotates_the_certificate_served(mesh, pki, tmp_path):
    """A Secret changed in place (kubectl apply) reaches the gateway over SDS: the next
    handshake presents the new certificate, whose CA the old one does not verify."""
    new_ca = certs.CertificateAuthority()
    rotated = new_ca.issue("a.example.com", "a organization")
    (tmp_path / "new-ca.crt").write_bytes(new_ca.cert_pem)
    address, port = mesh.ingress_address("https")

    def served(cafile: Path):
        request = HttpRequest(url=f"https://a.example.com:{port}/status/200", cacert=str(cafile),
                              resolve=(f"a.example.com:{port}:{address}",))
        [response] = mesh.send_from_host(request)
        return response

    def credential(issued):
        return manifest_from_object(certs.tls_secret("tls-test-credential", "istio-system", issued),
                                    "<test>")

    keys = mesh.apply([credential(pki["server"]), *parse_text(GATEWAY % ("HTTPS", "SIMPLE")),
                       *parse_text(ROUTE_TO_HTTPBIN)])
    try:
        first = served(pki["dir"] / "example.com.crt")
        assert first.status == 200
        assert [certs.fingerprint(c) for c in first.certificates] == [pki["server"].fingerprint]
        mesh.apply([credential(rotated)])  # returns once the gateway ACKed the new secret
        second = served(tmp_path / "new-ca.crt")
        assert second.status == 200
        assert [certs.fingerprint(c) for c in second.certificates] == [rotated.fingerprint]
        assert served(pki["dir"] / "example.com.crt").exit_code == 35
        assert ResourceKey("Secret", "istio-system", "tls-test-credential") in mesh.owned_resources()
    finally:
        mesh.delete(keys)
    assert mesh.owned_resources() == set()
