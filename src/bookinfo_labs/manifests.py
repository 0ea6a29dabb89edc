"""Reading the labs' YAML: files, multi-document streams, inline docstrings.

Every document is validated against the typed Istio models before any mesh sees it, so a
typo fails with the file, the resource and the field path, and nothing is half-applied.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from .istio import FieldError, parse_resource, releases

if TYPE_CHECKING:
    from .versions import IstioVersion

#: where the labs' manifests live, as the handouts name them
MANIFESTS_ROOT = Path(__file__).resolve().parents[2] / "manifests"


class ManifestError(Exception):
    """A manifest cannot be applied. Says which file, which resource, which field, what to do."""

    def __init__(self, source: str, message: str, *, resource: str | None = None,
                 path: str | None = None, line: int | None = None):
        self.source = source
        self.resource = resource
        self.path = path
        self.line = line
        self.reason = message
        where = source + (f":{line}" if line else "")
        parts = [where]
        if resource:
            parts.append(resource)
        if path:
            parts.append(path)
        super().__init__(": ".join(parts) + f": {message}. Nothing from {source} was applied.")


@dataclass(frozen=True)
class Manifest:
    """One YAML document: where it came from, the raw object, and its typed model."""

    source: str  # file path relative to the project, or "<inline>"
    line: int  # line of the document's start in that file
    raw: dict[str, Any]
    model: Any  # the pydantic model of its kind

    @property
    def kind(self) -> str:
        return self.raw["kind"]

    @property
    def name(self) -> str:
        return self.raw["metadata"]["name"]

    @property
    def namespace(self) -> str | None:
        return self.raw["metadata"].get("namespace")

    def describe(self) -> str:
        return f'{self.kind} "{self.name}"'


def parse_text(text: str, source: str = "<inline>") -> list[Manifest]:
    """Parse a YAML stream into validated manifests; raise ManifestError on the first problem."""
    documents = _load_documents(text, source)
    manifests = []
    for line, doc in documents:
        if doc is None:  # an empty document, e.g. after a trailing "---"
            continue
        manifests.append(_validate(doc, source, line))
    if not manifests:
        raise ManifestError(source, "no Kubernetes objects found (the file is empty)")
    _refuse_duplicates(manifests, source)
    return manifests


def _refuse_duplicates(manifests: list[Manifest], source: str) -> None:
    """Refuse one object (API group, kind, namespace, name) written twice in one stream.

    kubectl apply would apply both, the second overwriting the first, so a lab would run
    with only the second; refusing says so at once. A document without a namespace counts
    as a namespace of its own here: the namespace it lands in is the mesh's to decide.
    """
    first: dict[tuple[str, str, str | None, str], Manifest] = {}
    for m in manifests:
        group = str(m.raw.get("apiVersion", "")).rpartition("/")[0]
        key = (group, m.kind, m.namespace, m.name)
        if key in first:
            where = f" (namespace {m.namespace})" if m.namespace else ""
            raise ManifestError(
                source, f"defined twice{where}, at lines {first[key].line} and {m.line}; "
                "kubectl apply would apply both, the second overwriting the first, so this "
                "is refused rather than run with one of them silently lost: keep one",
                resource=m.describe(), line=m.line)
        first[key] = m


def load_file(name: str | Path) -> list[Manifest]:
    """Load a manifest by path, or by its lab file name anywhere under ``manifests/``."""
    path = find_manifest(name)
    try:
        shown = str(path.relative_to(MANIFESTS_ROOT.parent))
    except ValueError:
        shown = str(path)
    return parse_text(path.read_text(encoding="utf-8"), shown)


def find_manifest(name: str | Path) -> Path:
    """Resolve ``virtual-service-all-v1.yaml`` or ``bookinfo/networking/...`` to one file."""
    candidate = Path(name)
    for base in (Path.cwd(), MANIFESTS_ROOT):
        path = candidate if candidate.is_absolute() else base / candidate
        if path.is_file():
            return path.resolve()
    matches = sorted(MANIFESTS_ROOT.rglob(candidate.name))
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        listed = ", ".join(str(m.relative_to(MANIFESTS_ROOT)) for m in matches)
        raise ManifestError(str(name), f"the name is ambiguous; say which one: {listed}")
    known = [p.name for p in MANIFESTS_ROOT.rglob("*.yaml")]
    close = difflib.get_close_matches(candidate.name, known, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ManifestError(str(name), f"no such manifest file under manifests/{hint}")


def _load_documents(text: str, source: str) -> list[tuple[int, Any]]:
    loader = yaml.SafeLoader(text)
    documents = []
    try:
        while loader.check_node():
            node = loader.get_node()
            documents.append((node.start_mark.line + 1, loader.construct_document(node)))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        problem = getattr(exc, "problem", None) or str(exc)
        col = f", column {mark.column + 1}" if mark else ""
        raise ManifestError(source, f"malformed YAML{col}: {problem}", line=line) from None
    finally:
        loader.dispose()
    return documents


def manifest_from_object(doc: Any, source: str, line: int = 1) -> Manifest:
    """Validate one already-parsed object (e.g. a sample adjusted for an Istio release)."""
    return _validate(doc, source, line)


def check_release(manifests: list[Manifest], istio: IstioVersion) -> None:
    """Raise ManifestError for the first manifest that uses a field (or enum value) the
    selected Istio release does not have yet (see :mod:`bookinfo_labs.istio.releases`)."""
    for m in manifests:
        try:
            releases.check_release(m.kind, m.model, istio.minor)
        except FieldError as exc:
            raise ManifestError(m.source, exc.message, resource=m.describe(), path=exc.path,
                                line=m.line) from None


def webhook_warnings(manifests: list[Manifest]) -> list[str]:
    """The warnings Istio's validating webhook returns with an accepted object (kubectl
    prints them as ``Warning: ...``); the object is applied all the same."""
    found = []
    for m in manifests:
        if m.kind != "DestinationRule":
            continue
        spec = m.model.spec
        policies = [("spec.trafficPolicy", spec.traffic_policy)]
        policies += [(f"spec.subsets[{i}].trafficPolicy", s.traffic_policy)
                     for i, s in enumerate(spec.subsets or [])]
        for path, policy in policies:
            od = getattr(policy, "outlier_detection", None) if policy else None
            if od is not None and od.consecutive_errors:
                # validation.go (1.22.0-1.28.0) validateOutlierDetection warns; istiod then
                # ignores the field (cluster_traffic_policy.go applyOutlierDetection)
                found.append(f"{m.source}: {m.describe()}: {path}.outlierDetection."
                             "consecutiveErrors: outlier detection consecutive errors is "
                             "deprecated, use consecutiveGatewayErrors or consecutive5xxErrors "
                             "instead (istiod ignores it: the hosts are ejected after Envoy's "
                             "default of 5 consecutive 5xx)")
    return found


def _validate(doc: Any, source: str, line: int) -> Manifest:
    if not isinstance(doc, dict):
        raise ManifestError(source, f"a document must be a mapping, not {type(doc).__name__}",
                            line=line)
    name = (doc.get("metadata") or {}).get("name") if isinstance(doc.get("metadata"), dict) else None
    resource = f'{doc.get("kind", "<no kind>")} "{name or "<no name>"}"'
    try:
        model = parse_resource(doc)
    except FieldError as exc:
        raise ManifestError(source, exc.message, resource=resource, path=exc.path,
                            line=line) from None
    return Manifest(source=source, line=line, raw=doc, model=model)
