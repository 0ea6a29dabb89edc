"""TLS at the ingress gateway in the handout's words: the scenario's own CA and certificates
(files named as the handout names them, in a folder of the scenario), the Secrets made of
them, HTTPS requests from this machine with curl (``--resolve``, ``--cacert``,
``--cert``/``--key``), and the certificate the server presented, by its fingerprint."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pytest
from pytest_bdd import given, parsers, then, when

from bookinfo_labs import certs, explain
from bookinfo_labs.certs import (CertificateAuthority, Issued, fingerprint, generic_secret,
                                 tls_secret)
from bookinfo_labs.checks import eventually
from bookinfo_labs.manifests import manifest_from_object
from bookinfo_labs.mesh import HttpRequest, ResourceKey
from bookinfo_labs.samples import sample_manifests

_NAME = r'"(?P<name>[^"]+)"'
#: the handout's root certificate subject organization (``/O=example Inc./CN=example.com``)
ROOT_ORGANIZATION = "example Inc."


@dataclass
class Certificates:
    """The scenario's certificate files under the handout's names (``example.com.crt``,
    ``new_certificates/httpbin.example.com.key``...), and the CAs that can sign more."""

    directory: Path
    authorities: dict[str, CertificateAuthority] = field(default_factory=dict)
    files: dict[str, Issued] = field(default_factory=dict)

    def add(self, name: str, issued: Issued) -> None:
        issued.write(self.directory / PurePosixPath(name).parent)
        self.files[name] = issued

    def get(self, name: str) -> Issued:
        if name not in self.files:
            raise AssertionError(f"no certificate {name!r} was made in this scenario (made: "
                                 f"{', '.join(self.files) or 'none'})")
        return self.files[name]

    def path(self, name: str, suffix: str = ".crt") -> str:
        self.get(name)
        return str(self.directory / f"{name}{suffix}")


@pytest.fixture
def certificates(lab, tmp_path) -> Certificates:
    made = Certificates(tmp_path / "certificates")
    made.directory.mkdir()
    lab.explain(explain.certificates_dir_command, str(made.directory))
    return made


def _organization(host: str) -> str:
    """The handout's organizations: ``httpbin organization``, ``helloworld organization``..."""
    return f"{host.split('.')[0].split('-')[0]} organization"


@given(parsers.re(rf"I make a root certificate {_NAME}"))
@when(parsers.re(rf"I make a root certificate {_NAME}"))
def make_root_certificate(lab, certificates, name):
    common_name = PurePosixPath(name).name
    authority = CertificateAuthority(common_name, ROOT_ORGANIZATION,
                                     name=PurePosixPath(name).name)
    lab.explain(explain.root_certificate_commands, name,
                f"/O={ROOT_ORGANIZATION}/CN={common_name}")
    certificates.authorities[name] = authority
    certificates.add(name, authority.issued)


@given(parsers.re(rf"I make a (?P<client>client )?certificate {_NAME} signed by "
                  r'"(?P<ca>[^"]+)"'))
@when(parsers.re(rf"I make a (?P<client>client )?certificate {_NAME} signed by "
                 r'"(?P<ca>[^"]+)"'))
def make_certificate(lab, certificates, client, name, ca):
    if ca not in certificates.authorities:
        raise AssertionError(f"no root certificate {ca!r} was made in this scenario")
    host = PurePosixPath(name).name
    lab.explain(explain.certificate_commands, name, ca,
                f"/CN={host}/O={_organization(host)}", host)
    certificates.add(name, certificates.authorities[ca].issue(
        host, _organization(host), client=bool(client), name=host))


@given(parsers.re(rf"the certificate {_NAME} and its CA \"(?P<ca>[^\"]+)\" from the secret "
                  r'"(?P<secret>[^"]+)" of the (?P<sample>\w+) sample'))
def sample_certificate(lab, certificates, name, ca, secret, sample):
    """A sample's own certificate (``tls.crt``, ``tls.key``) and CA (``ca.crt``), as files."""
    found = [m for m in sample_manifests(sample, lab.mesh.istio)
             if m.kind == "Secret" and m.name == secret]
    if not found:
        raise AssertionError(f"the {sample} sample has no Secret {secret!r}")
    data = found[0].model.decoded()
    lab.explain(explain.secret_files_commands, secret, {"tls.crt": f"{name}.crt",
                                                        "ca.crt": f"{ca}.crt"})
    certificates.add(name, Issued(PurePosixPath(name).name, data["tls.crt"], data["tls.key"]))
    certificates.add(ca, Issued(PurePosixPath(ca).name, data["ca.crt"], b""))


def _create_secret(lab, secret_type: str, secret: str, namespace: str,
                   files: list[tuple[str, str, bytes]]) -> None:
    """``kubectl create secret``: (key in the secret, file, content) of each file."""
    lab.explain(explain.create_secret_command, secret_type, secret,
                [(key, path) for key, path, _ in files], namespace)
    contents = {key: content for key, _, content in files}
    raw = (tls_secret(secret, namespace, Issued(secret, contents["tls.crt"], contents["tls.key"]))
           if secret_type == "tls" else generic_secret(secret, namespace, contents))
    lab.apply([manifest_from_object(raw, f"<kubectl create secret {secret_type}>")],
              explained=True)


@given(parsers.re(r'I create the TLS secret "(?P<secret>[^"]+)" in (?P<namespace>[\w-]+) '
                  rf"from {_NAME}"))
@when(parsers.re(r'I create the TLS secret "(?P<secret>[^"]+)" in (?P<namespace>[\w-]+) '
                 rf"from {_NAME}"))
def create_tls_secret(lab, certificates, secret, namespace, name):
    issued = certificates.get(name)
    _create_secret(lab, "tls", secret, namespace, [
        ("tls.key", f"{name}.key", issued.key_pem), ("tls.crt", f"{name}.crt", issued.cert_pem)])


@given(parsers.re(r'I create the generic secret "(?P<secret>[^"]+)" in (?P<namespace>[\w-]+) '
                  rf'from {_NAME} and the CA "(?P<ca>[^"]+)"'))
@when(parsers.re(r'I create the generic secret "(?P<secret>[^"]+)" in (?P<namespace>[\w-]+) '
                 rf'from {_NAME} and the CA "(?P<ca>[^"]+)"'))
def create_generic_secret(lab, certificates, secret, namespace, name, ca):
    """The handout's ``--from-file=tls.key=... --from-file=tls.crt=... --from-file=ca.crt=...``."""
    issued, authority = certificates.get(name), certificates.get(ca)
    _create_secret(lab, "generic", secret, namespace, [
        ("tls.key", f"{name}.key", issued.key_pem), ("tls.crt", f"{name}.crt", issued.cert_pem),
        ("ca.crt", f"{ca}.crt", authority.cert_pem)])


@given(parsers.re(r'I create the CA secret "(?P<secret>[^"]+)" in (?P<namespace>[\w-]+) '
                  r'from the CA "(?P<ca>[^"]+)"'))
def create_ca_secret(lab, certificates, secret, namespace, ca):
    """A secret holding only ``ca.crt`` (istiod's ``<credentialName>-cacert``)."""
    _create_secret(lab, "generic", secret, namespace,
                   [("ca.crt", f"{ca}.crt", certificates.get(ca).cert_pem)])


@when(parsers.re(r'I delete the secret "(?P<secret>[^"]+)" in (?P<namespace>[\w-]+)'))
def delete_secret(lab, secret, namespace):
    lab.delete([ResourceKey("Secret", namespace, secret)])


@when(parsers.re(r'I send (?P<count>\d+) HTTPS requests? to "(?P<path>/[^"]*)" for '
                 r'"(?P<host>[^"]+)" through the ingress gateway trusting "(?P<ca>[^"]+)"'
                 r'(?: with the client certificate "(?P<client>[^"]+)")?'),
      converters={"count": int})
def send_https(lab, certificates, count, path, host, ca, client):
    """The handout's ``curl --resolve "<host>:$SECURE_INGRESS_PORT:$INGRESS_HOST" --cacert
    <ca>.crt [--cert <client>.crt --key <client>.key] https://<host>:...<path>``."""
    request = HttpRequest(url=path, cacert=certificates.path(ca),
                          cert=certificates.path(client) if client else None,
                          key=certificates.path(client, ".key") if client else None)
    lab.send_through_ingress(request, count, port_name="https", host=host, scheme="https")


@when(parsers.re(r'I send (?P<count>\d+) plain HTTP requests? to "(?P<path>/[^"]*)" for '
                 r'"(?P<host>[^"]+)" to the ingress gateway\'s HTTPS port'),
      converters={"count": int})
def send_plain_to_https_port(lab, count, path, host):
    lab.send_through_ingress(HttpRequest(url=path), count, port_name="https", host=host)


@then(parsers.re(rf"the certificate served is {_NAME}"))
def certificate_served(lab, certificates, name):
    """Every TLS connection of the batch presented this certificate (by its SHA-256
    fingerprint). curl reports the chain on the transfer that opened the connection; the
    ones that reuse it report none."""
    expected = certificates.get(name).fingerprint
    lab.explain(explain.served_certificate_commands, lab.traffic, certificates.path(name))

    def check(traffic):
        served = Counter(fingerprint(r.certificates[0]) for r in traffic.responses
                         if r.certificates)
        if not served and all(r.exit_code == 0 for r in traffic.responses):
            served = Counter([fingerprint(_handshake(traffic.request))])  # curl < 7.88
        assert served, ("no TLS connection presented a certificate (curl errors: "
                        f"{dict(Counter(r.error for r in traffic.responses))})")
        assert set(served) == {expected}, (
            f"connections presented {dict(served)}; {name} is {expected}")

    lab.expect(f"the certificate served is {name} ({expected})", check)


def _expect_failures(lab, expected: str, failed) -> None:
    """Every request of the batch got no HTTP response and ``failed(exit code, error)``."""
    lab.explain(explain.exit_codes_command, lab.client, lab.traffic)

    def check(traffic):
        seen = Counter((r.status, r.exit_code, r.error) for r in traffic.responses)
        assert all(status == 0 and failed(code, error) for status, code, error in seen), (
            f"(status, curl exit code, curl error) seen: {dict(seen)}")

    lab.expect(expected, check)


def _handshake(request: HttpRequest) -> str:
    """The certificate a handshake like the request's gets (a curl without ``%{certs}``)."""
    address, port, name = request.target()
    return certs.served_certificate(address, port, name, request.cacert, request.cert,
                                    request.key)


@then(parsers.re(r'every request fails with curl exit code (?P<code>\d+) mentioning '
                 r'"(?P<text>[^"]+)"'), converters={"code": int})
def every_request_fails(lab, code, text):
    """No HTTP response: curl's exit code and error message (curl 7.88, OpenSSL 3)."""
    _expect_failures(lab, f"curl exits {code} mentioning {text!r}",
                     lambda exit_code, error: exit_code == code and text in error)


@then("no HTTPS response arrives")
def no_https_response(lab):
    """curl gets no HTTP response, whatever the reason (refused, reset, no certificate)."""
    _expect_failures(lab, "no HTTPS response arrives", lambda exit_code, _: exit_code != 0)


@then(parsers.re(r'the server ends the handshake with the TLS alert "(?P<alert>[^"]+)"'))
def ends_with_alert(lab, alert):
    """The last batch's TLS handshake again (same name, address, CA and client certificate),
    then a read before writing anything: the alert is always read, whichever way curl
    failed (docs/facts.md#tls-at-the-gateway)."""
    request = lab.traffic.request
    address, port, name = request.target()
    lab.explain(explain.handshake_alert_command, request)
    eventually(lambda: certs.handshake_alert(address, port, name, request.cacert,
                                             request.cert, request.key),
               lambda seen: _equal(seen, alert), expected=f"the TLS alert {alert!r}",
               policy=lab.policy)


def _equal(seen: str, wanted: str) -> None:
    assert seen == wanted, f"the server answered the handshake with {seen or 'no alert'!r}"
