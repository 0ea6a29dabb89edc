"""A scenario's own certificates: a CA, server and client certificates signed by it, PEM files,
fingerprints, and the Kubernetes Secrets the TLS labs make of them.

What the handout does with ``openssl`` (lab 6.1: a root certificate ``/O=example Inc./
CN=example.com``, then ``httpbin.example.com`` signed by it, RSA 2048, SHA-256, 365 days),
done with the ``cryptography`` library so a scenario needs no openssl and no fixed files.
The server and client certificates also name their host as a DNS subjectAltName (the
handout's are CN only; curl checks either). Secrets have the shape ``kubectl create secret
tls`` and ``kubectl create secret generic --from-file`` give them: base64 ``data``.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: the handout's validity (``-days 365``) and key size (``-newkey rsa:2048``)
VALIDITY = datetime.timedelta(days=365)
KEY_BITS = 2048
#: Istio's default workload certificate lifetime (SECRET_TTL, 24 h)
WORKLOAD_VALIDITY = datetime.timedelta(hours=24)
#: ``type`` of the Secret ``kubectl create secret tls`` makes; ``generic`` makes Opaque
TLS_SECRET_TYPE = "kubernetes.io/tls"


def fingerprint(cert_pem: bytes | str) -> str:
    """The SHA-256 fingerprint of a PEM certificate, as ``openssl x509 -fingerprint
    -sha256`` prints it (``AB:CD:...``)."""
    data = cert_pem.encode() if isinstance(cert_pem, str) else cert_pem
    der = x509.load_pem_x509_certificate(data).public_bytes(serialization.Encoding.DER)
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def subject(cert_pem: bytes | str) -> str:
    """The certificate's subject as curl prints it (``CN=httpbin.example.com; O=...``)."""
    data = cert_pem.encode() if isinstance(cert_pem, str) else cert_pem
    cert = x509.load_pem_x509_certificate(data)
    return "; ".join(f"{a.rfc4514_attribute_name}={a.value}" for a in cert.subject)


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key (PEM), filed as ``<name>.crt`` and ``<name>.key``."""

    name: str
    cert_pem: bytes
    key_pem: bytes

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.cert_pem)

    def write(self, directory: Path) -> tuple[Path, Path]:
        """Write ``<name>.crt`` and ``<name>.key`` into ``directory``; return both paths."""
        directory.mkdir(parents=True, exist_ok=True)
        cert, key = directory / f"{self.name}.crt", directory / f"{self.name}.key"
        cert.write_bytes(self.cert_pem)
        key.write_bytes(self.key_pem)
        key.chmod(0o600)
        return cert, key


def _name(common_name: str, organization: str, organization_first: bool) -> x509.Name:
    cn = x509.NameAttribute(NameOID.COMMON_NAME, common_name)
    o = x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization)
    return x509.Name([o, cn] if organization_first else [cn, o])


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _builder(subject: x509.Name, issuer: x509.Name, public_key,
             validity: datetime.timedelta) -> x509.CertificateBuilder:
    """What every certificate here shares: names, key, a random serial, valid from five
    minutes ago (clock skew) for ``validity``."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(issuer)
            .public_key(public_key).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + validity))


class CertificateAuthority:
    """A root certificate and its key (``openssl req -x509 -subj '/O=<org>/CN=<cn>'``); it
    signs server and client certificates."""

    def __init__(self, common_name: str = "example.com", organization: str = "example Inc.",
                 name: str | None = None, validity: datetime.timedelta = VALIDITY):
        self._key = _key()
        self.subject = _name(common_name, organization, organization_first=True)
        public = self._key.public_key()
        cert = (_builder(self.subject, self.subject, public, validity)
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(
                    digital_signature=True, key_cert_sign=True, crl_sign=True,
                    content_commitment=False, key_encipherment=False, data_encipherment=False,
                    key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
                .sign(self._key, hashes.SHA256()))
        self._cert = cert
        self.issued = Issued(name or common_name, cert.public_bytes(serialization.Encoding.PEM),
                             _pem_key(self._key))

    @property
    def cert_pem(self) -> bytes:
        return self.issued.cert_pem

    def issue(self, common_name: str, organization: str, *, client: bool = False,
              name: str | None = None, validity: datetime.timedelta = VALIDITY) -> Issued:
        """A certificate for ``common_name`` (also its DNS subjectAltName) signed by this CA
        (``openssl x509 -req -CA ...``; a random serial where the handout sets 0 or 1, which
        the library refuses): for a server, or with ``client`` for a client (extendedKeyUsage
        clientAuth)."""
        key = _key()
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        cert = (_builder(_name(common_name, organization, organization_first=False),
                         self.subject, key.public_key(), validity)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(common_name)]),
                               critical=False)
                .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                .sign(self._key, hashes.SHA256()))
        return Issued(name or common_name, cert.public_bytes(serialization.Encoding.PEM),
                      _pem_key(key))

    def issue_workload(self, spiffe_id: str, validity: datetime.timedelta = WORKLOAD_VALIDITY
                       ) -> Issued:
        """A workload certificate as Istio's CA signs one: an empty subject, the SPIFFE ID
        as its only (URI) subjectAltName, for both ends of mTLS; an EC P-256 key, as
        pilot-agent generates (ECC_SIGNATURE_ALGORITHM is RSA by default; EC is faster to
        make and the handshake does not care)."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (_builder(x509.Name([]), self.subject, key.public_key(), validity)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(
                    digital_signature=True, key_encipherment=True, key_cert_sign=False,
                    crl_sign=False, content_commitment=False, data_encipherment=False,
                    key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                      ExtendedKeyUsageOID.CLIENT_AUTH]),
                               critical=False)
                .add_extension(x509.SubjectAlternativeName(
                    [x509.UniformResourceIdentifier(spiffe_id)]), critical=True)
                .sign(self._key, hashes.SHA256()))
        return Issued(spiffe_id, cert.public_bytes(serialization.Encoding.PEM),
                      key.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))


def uri_sans(cert_pem: bytes | str) -> list[str]:
    """The URI subjectAltNames of a certificate (a workload's SPIFFE identity)."""
    data = cert_pem.encode() if isinstance(cert_pem, str) else cert_pem
    cert = x509.load_pem_x509_certificate(data)
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return names.get_values_for_type(x509.UniformResourceIdentifier)


def _secret(name: str, namespace: str, secret_type: str, files: Mapping[str, bytes]) -> dict:
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace}, "type": secret_type,
            "data": {key: base64.b64encode(value).decode() for key, value in files.items()}}


def tls_secret(name: str, namespace: str, issued: Issued) -> dict:
    """``kubectl create -n <namespace> secret tls <name> --key=<key> --cert=<cert>``."""
    return _secret(name, namespace, TLS_SECRET_TYPE,
                   {"tls.crt": issued.cert_pem, "tls.key": issued.key_pem})


def generic_secret(name: str, namespace: str, files: Mapping[str, bytes]) -> dict:
    """``kubectl create -n <namespace> secret generic <name> --from-file=<key>=<file>...``."""
    return _secret(name, namespace, "Opaque", files)


def served_certificate(address: str, port: int, server_name: str, cafile: str,
                       cert: str | None = None, key: str | None = None,
                       timeout_s: float = 5.0) -> str:
    """The certificate (PEM) a TLS server presents for ``server_name`` in a real handshake
    verified against ``cafile`` (with the client certificate if given): for a curl older
    than 7.88, whose ``%{certs}`` is empty."""
    context = ssl.create_default_context(cafile=cafile)
    if cert is not None:
        context.load_cert_chain(cert, key)
    with socket.create_connection((address, port), timeout=timeout_s) as raw:
        with context.wrap_socket(raw, server_hostname=server_name) as tls:
            return ssl.DER_cert_to_PEM_cert(tls.getpeercert(binary_form=True))


def handshake_alert(address: str, port: int, server_name: str, cafile: str,
                    cert: str | None = None, key: str | None = None,
                    read_timeout_s: float = 2.0) -> str:
    """A real TLS handshake (SNI ``server_name``, the server verified against ``cafile``,
    with the client certificate if given), then one read before sending anything: the TLS
    alert the server ends the session with, in words (``certificate required``, ``unknown
    ca``), or ``""`` when it waits for a request instead (it accepted the client).

    In TLS 1.3 a server that refuses the client's certificate says so after the client's
    side of the handshake is done; a client that writes first may fail on the write
    instead, before it reads the alert (what curl often does against Envoy). Reading
    first always gets it.
    """
    context = ssl.create_default_context(cafile=cafile)
    context.set_alpn_protocols(["http/1.1"])
    if cert is not None:
        context.load_cert_chain(cert, key)
    try:
        with socket.create_connection((address, port), timeout=read_timeout_s) as raw:
            with context.wrap_socket(raw, server_hostname=server_name) as tls:
                try:
                    tls.recv(1)
                except (TimeoutError, socket.timeout):
                    return ""
                return "connection closed"
    except ssl.SSLError as exc:
        reason = exc.reason or str(exc)
        return reason.split("ALERT_", 1)[-1].replace("_", " ").lower()
