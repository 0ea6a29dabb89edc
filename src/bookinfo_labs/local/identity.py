"""The node agent's half of workload identity: a mesh CA and each workload's certificate.

On a cluster, pilot-agent in each pod asks istiod's CA to sign the workload's key for its
service account, and serves the result to its Envoy over SDS (``default``: the key pair;
``ROOTCA``: the mesh's root) on the pod's own socket. The local mesh has one agent for
every proxy: a self-signed root (``O=cluster.local``, like istiod's) and one certificate per
service account, served over the same ADS stream as the rest of the proxy's config (the
control plane's TLS contexts name these secrets with an ADS config source).
"""

from __future__ import annotations

import base64
import threading

from ..certs import CertificateAuthority, Issued
from .pilot import mtls


def _inline(pem: bytes) -> dict:
    return {"inline_bytes": base64.b64encode(pem).decode()}


class NodeAgent:
    """Signs and keeps one certificate per (namespace, service account)."""

    def __init__(self) -> None:
        self.ca = CertificateAuthority(common_name="cluster.local", organization="cluster.local",
                                       name="istio-ca-root-cert")
        self._issued: dict[str, Issued] = {}
        self._lock = threading.Lock()  # pushes and pod starts run on different threads

    def certificate(self, namespace: str, service_account: str) -> Issued:
        identity = mtls.spiffe_id(namespace, service_account)
        with self._lock:
            if identity not in self._issued:
                self._issued[identity] = self.ca.issue_workload(identity)
            return self._issued[identity]

    def secrets(self, namespace: str, service_account: str) -> dict[str, dict]:
        """The SDS resources a proxy of that service account is served."""
        issued = self.certificate(namespace, service_account)
        return {
            mtls.CERT_SECRET: {"name": mtls.CERT_SECRET, "tls_certificate": {
                "certificate_chain": _inline(issued.cert_pem),
                "private_key": _inline(issued.key_pem)}},
            mtls.ROOT_SECRET: {"name": mtls.ROOT_SECRET, "validation_context": {
                "trusted_ca": _inline(self.ca.cert_pem)}},
        }
