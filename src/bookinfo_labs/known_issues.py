"""The known-issues register: scenarios that cannot run on a mesh (or an Istio release),
and why. The plugin turns a matching scenario into a skip with the reason, which the lab
report shows. One table, so what cannot run where is read in one place.

An entry matches a scenario by one of its tags (a marker, ``@local-mesh``), or by
``<feature file name>: <scenario name>`` for a single scenario; ``meshes`` and ``versions``
(Istio minor releases, "1.26") narrow it, empty meaning every one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

MESHES = ("local", "kube")


@dataclass(frozen=True)
class KnownIssue:
    #: a tag without "@", or "<feature file name>: <scenario name>"
    scenarios: str
    reason: str
    meshes: tuple[str, ...] = ()
    versions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = [m for m in self.meshes if m not in MESHES]
        if unknown:
            raise ValueError(f"known issue {self.scenarios!r}: unknown mesh {unknown[0]!r} "
                             f"(choose from {', '.join(MESHES)})")
        bad = [v for v in self.versions if v.count(".") != 1]
        if bad:
            raise ValueError(f"known issue {self.scenarios!r}: version {bad[0]!r} is not an "
                             "Istio minor release such as 1.26")
        if not self.reason.strip():
            raise ValueError(f"known issue {self.scenarios!r}: a skip needs its reason")

    def matches(self, tags: Iterable[str], scenario: str, mesh: str, version: str) -> bool:
        minor = ".".join(version.split(".")[:2])
        return ((self.scenarios in set(tags) or self.scenarios == scenario)
                and (not self.meshes or mesh in self.meshes)
                and (not self.versions or minor in self.versions))


#: the register
KNOWN_ISSUES: tuple[KnownIssue, ...] = (
    KnownIssue(
        "local-mesh", meshes=("kube",),
        reason="checks a warning or an error of the local mesh's own control plane, which "
               "istiod does not give (on a cluster the config is accepted, and a proxy's "
               "NACK shows only in istioctl proxy-status)"),
    KnownIssue(
        "iptables", meshes=("local",),
        reason="reads the pod's iptables capture (istio-init's rules, the 15001/15006 "
               "virtual listeners); the local mesh captures by address instead, each pod "
               "reaching every Service through its sidecar's own outbound address (README: "
               "How the local mesh captures traffic)"),
)


def skip_reason(tags: Iterable[str], scenario: str, mesh: str, version: str,
                register: Iterable[KnownIssue] = KNOWN_ISSUES) -> str | None:
    """The reason of the first entry matching the scenario here, or None (it runs)."""
    tags = list(tags)
    for issue in register:
        if issue.matches(tags, scenario, mesh, version):
            return issue.reason
    return None
