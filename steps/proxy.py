"""Steps that read a sidecar's own config, as ``istioctl proxy-config`` shows it."""

import re

from pytest_bdd import parsers, then

from bookinfo_labs import explain
from bookinfo_labs.checks import eventually
from bookinfo_labs.proxyconfig import cluster_limits, route_shares

_WORKLOAD = r"(?P<workload>client's|[a-z][\w-]*)"


def _workload(lab, text: str) -> str:
    return lab.client if text == "client's" else text


@then(parsers.re(rf"the {_WORKLOAD} sidecar routes (?P<host>[a-z][\w-]*) "
                 r"(?P<spec>\d+ % to subset [\w-]+(?: and \d+ % to subset [\w-]+)*)"))
def sidecar_routes(lab, workload, host, spec):
    """The weighted clusters of the host's route in the sidecar's RDS (what Envoy got)."""
    workload = _workload(lab, workload)
    lab.explain(explain.proxy_config_command, workload, "routes")
    expected = {subset: int(share) for share, subset in re.findall(r"(\d+) % to subset ([\w-]+)", spec)}

    def check(shares):
        assert shares == expected, f"the {workload} sidecar routes {host} {shares}, expected {expected}"

    eventually(lambda: route_shares(lab.mesh.proxy_config(workload, "routes"), host), check,
               expected=f"{host} routed {expected}", policy=lab.policy)


@then(parsers.re(rf"the {_WORKLOAD} sidecar's (?P<host>[a-z][\w.-]*) cluster allows "
                 r"(?P<connections>\d+) connections? and (?P<pending>\d+) pending requests?"),
      converters={"connections": int, "pending": int})
def cluster_allows(lab, workload, host, connections, pending):
    """The circuit breakers of the host's cluster in the sidecar's CDS."""
    workload = _workload(lab, workload)
    lab.explain(explain.proxy_config_command, workload, "clusters")
    expected = {"max_connections": connections, "max_pending_requests": pending}

    def check(limits):
        seen = {k: limits.get(k) for k in expected}
        assert seen == expected, f"the {workload} sidecar's {host} cluster has {limits}"

    eventually(lambda: cluster_limits(lab.mesh.proxy_config(workload, "clusters"), host), check,
               expected=f"{host} limited to {expected}", policy=lab.policy)
