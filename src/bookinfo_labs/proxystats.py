"""A sidecar's Envoy statistics across a burst of traffic, read as the labs read them.

Cluster stats are named after the cluster, with the ``;`` Istio ends ``alt_stat_name``
with since 1.23: ``cluster.outbound|8000||httpbin.default.svc.cluster.local;.upstream_rq_retry``
(``...cluster.local.upstream_rq_retry`` up to 1.22). A stat the sidecar does not expose
at all (Istio's bootstrap drops ``cluster.outbound|...`` unless the pod's
``proxyStatsMatcher`` asks for it) is an error here, never a silent 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class StatsChange:
    """One sidecar's stats before and after a burst."""

    workload: str
    before: dict[str, int] = field(default_factory=dict)
    after: dict[str, int] = field(default_factory=dict)

    def delta(self) -> dict[str, int]:
        """Every stat that changed, by how much."""
        return {name: value - self.before.get(name, 0) for name, value in self.after.items()
                if value != self.before.get(name, 0)}

    def cluster_delta(self, host: str, stat: str) -> int:
        """The change of ``stat`` summed over the outbound clusters of ``host`` (every
        subset and port); AssertionError when the sidecar exposes no such stat."""
        names = [name for name in self.after if is_cluster_stat(name, host, stat)]
        if not names:
            raise AssertionError(
                f"the {self.workload} sidecar does not expose {stat} for {host}: Istio's "
                "bootstrap keeps no cluster.outbound stats unless the pod asks for them; its "
                "pod needs the annotation proxy.istio.io/config with proxyStatsMatcher "
                "inclusionPrefixes [\"cluster.outbound\"]")
        return sum(self.after[name] - self.before.get(name, 0) for name in names)


def is_cluster_stat(name: str, host: str, stat: str) -> bool:
    """``cluster.outbound|<port>|<subset>|<host>.<ns>.svc.cluster.local;.<stat>``."""
    if not name.startswith("cluster.outbound|"):
        return False
    cluster, delimited, rest = name.partition(";.")
    if delimited:
        return rest == stat and cluster.split("|")[-1].split(".")[0] == host
    return name.endswith("." + stat) and f"|{host}." in name  # Istio <= 1.22
