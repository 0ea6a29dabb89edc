"""The local mesh's DNS: what kube-dns answers a pod, for the Envoys that resolve names.

On a cluster a sidecar's passthrough and DNS-resolved ServiceEntry clusters resolve
through the pod's resolv.conf (kube-dns, or Istio's DNS proxy on port 15053). Locally
the Envoys are configured to ask this server instead: it answers A records for every
Service name of the registry (``httpbin.external``, ``...svc``, the FQDN; short names
in the labs' namespace) with the address of a pod behind it, the local mesh's stand-in
for a ClusterIP. Any other name is NXDOMAIN: the local mesh reaches no internet.
"""

from __future__ import annotations

import logging

from dnslib import QTYPE, RCODE, RR, A
from dnslib.server import BaseResolver, DNSLogger, DNSServer

from .registry import ServiceRegistry

#: where Istio's DNS proxy listens in a pod; locally on the mesh's own address
DNS_PORT = 15053
log = logging.getLogger(__name__)


class _Resolver(BaseResolver):
    def __init__(self, registry: ServiceRegistry, namespace: str):
        self.registry = registry
        self.namespace = namespace

    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname).rstrip(".")
        address = lookup(self.registry, name, self.namespace)
        if address is None or request.q.qtype not in (QTYPE.A, QTYPE.ANY):
            if address is None:
                reply.header.rcode = RCODE.NXDOMAIN
            return reply
        reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(address), ttl=5))
        return reply


def lookup(registry: ServiceRegistry, name: str, namespace: str) -> str | None:
    """The address a Service name resolves to: its first pod's."""
    service = registry.resolve(name, namespace)
    if service is None:
        return None
    pods = registry.endpoints(service)
    return pods[0].ip if pods else None


class MeshDns:
    """A UDP DNS server on ``address``:15053, on its own thread."""

    def __init__(self, registry: ServiceRegistry, namespace: str, address: str):
        self.address = (address, DNS_PORT)
        quiet = DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data",
                          logf=lambda text: log.debug("%s", text))
        self._server = DNSServer(_Resolver(registry, namespace), address=address,
                                 port=DNS_PORT, logger=quiet)

    def start(self) -> "MeshDns":
        self._server.start_thread()
        return self

    def stop(self) -> None:
        self._server.stop()
        self._server.server.server_close()
