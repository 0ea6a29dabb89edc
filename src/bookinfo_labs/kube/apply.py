"""Server-side apply with strict field validation, ownership labels, delete-and-wait.

Every object this tool applies carries ``app.kubernetes.io/managed-by: bookinfo-labs``.
Listing, cleanup and deletion only ever touch objects with that label, and an object
that exists without it is never overwritten or deleted: the message says what to do.
A batch is all or nothing: every object is first applied as a server-side dry run
(the API server and Istio's validating webhook both check it), then for real.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from ..mesh import MeshError, ResourceKey
from .api import TYPES_BY_KIND, KubeApi, KubeApiError, ResourceType

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "bookinfo-labs"
#: set on the objects of a deployed sample app (bookinfo, httpbin, clients): they are
#: ours, but they are the lab's furniture, not config a scenario applied
SAMPLE_LABEL = "bookinfo-labs.io/sample"
FIELD_MANAGER = "bookinfo-labs"
OWNED_SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE},!{SAMPLE_LABEL}"
APPLY_CONTENT_TYPE = "application/apply-patch+yaml"

_SERVER_FIELDS = ("resourceVersion", "uid", "creationTimestamp", "managedFields",
                  "generation", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds")


@dataclass
class Target:
    """One object to apply: its type, where it goes, and the body sent."""

    rtype: ResourceType
    namespace: str  # "" for cluster-scoped kinds
    name: str
    body: dict[str, Any]
    source: str = "<inline>"

    @property
    def key(self) -> ResourceKey:
        return ResourceKey(self.rtype.kind, self.namespace, self.name)

    def describe(self) -> str:
        where = f" in namespace {self.namespace}" if self.namespace else ""
        return f'{self.rtype.kind} "{self.name}"{where}'


def is_ours(obj: dict | None) -> bool:
    labels = ((obj or {}).get("metadata") or {}).get("labels") or {}
    return labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE


def labelled(raw: dict[str, Any], namespace: str | None,
             extra_labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A copy of a manifest ready to apply: our labels, no server-owned fields."""
    obj = copy.deepcopy(raw)
    obj.pop("status", None)
    meta = obj.setdefault("metadata", {})
    for key in _SERVER_FIELDS:
        meta.pop(key, None)
    if namespace:
        meta["namespace"] = namespace
    else:
        meta.pop("namespace", None)
    labels = dict(meta.get("labels") or {})
    labels[MANAGED_BY_LABEL] = MANAGED_BY_VALUE
    labels.update(extra_labels or {})
    meta["labels"] = labels
    return obj


class Applier:
    """Apply, list and delete our objects through a KubeApi."""

    def __init__(self, api: KubeApi, namespace: str = "default",
                 delete_timeout_s: float = 60.0, poll_s: float = 0.25):
        self.api = api
        self.namespace = namespace
        self.delete_timeout_s = delete_timeout_s
        self.poll_s = poll_s
        #: the type of each object applied, so delete() finds its API path
        self.types: dict[ResourceKey, ResourceType] = {}
        #: the keys the last ``apply`` created or changed
        self.changed: set[ResourceKey] = set()
        self._unserved: set[ResourceType] = set()

    # -- apply ---------------------------------------------------------------------
    def target(self, raw: dict[str, Any], source: str = "<inline>",
               extra_labels: dict[str, str] | None = None) -> Target:
        try:
            api_version, kind = raw["apiVersion"], raw["kind"]
            name = raw["metadata"]["name"]
        except (KeyError, TypeError):
            raise MeshError(f"{source}: an object needs apiVersion, kind and metadata.name") from None
        try:
            rtype = self.api.resource_type(api_version, kind)
        except KubeApiError as exc:
            raise MeshError(f"{source}: {kind} \"{name}\": {exc.message}") from None
        namespace = (raw["metadata"].get("namespace") or self.namespace) if rtype.namespaced else ""
        return Target(rtype, namespace, name, labelled(raw, namespace, extra_labels), source)

    def apply(self, targets: Sequence[Target], *, sample: str | None = None) -> list[ResourceKey]:
        """Apply a batch, all or nothing; return the keys in the order given.

        Lab config (``sample`` None) never touches a sample app's object; a sample's
        objects (``sample`` its name) never touch another sample's. Neither ever takes over
        an object bookinfo-labs did not create. ``changed`` then holds the keys whose
        object the API server created or changed (a same-content re-apply changes nothing).
        """
        previous: dict[int, dict | None] = {}
        for i, t in enumerate(targets):
            existing = self._get(t)
            if existing is not None:
                self._check_may_change(t, existing, sample)
            elif sample is None and SAMPLE_LABEL in ((t.body.get("metadata") or {}).get("labels") or {}):
                raise MeshError(f"{t.source}: {t.describe()}: the label {SAMPLE_LABEL} marks the "
                                "objects of the sample apps; lab config must not carry it. "
                                "Nothing was applied.")
            previous[i] = existing

        # Namespaces go first; an object in a namespace this batch creates cannot be
        # dry-run before that namespace exists, so it is checked by the real apply only.
        order = sorted(range(len(targets)), key=lambda i: targets[i].rtype.kind != "Namespace")
        new_namespaces = {t.name for i, t in enumerate(targets)
                          if t.rtype.kind == "Namespace" and previous[i] is None}
        for i in order:
            t = targets[i]
            if t.rtype.kind == "Namespace" or t.namespace in new_namespaces:
                continue
            self._ssa(t, dry_run=True)

        done: list[int] = []
        changed: set[ResourceKey] = set()
        try:
            for i in order:
                result = self._ssa(targets[i], dry_run=False)
                done.append(i)
                self.types[targets[i].key] = targets[i].rtype
                if _version(result) is None or _version(result) != _version(previous[i]):
                    changed.add(targets[i].key)
        except MeshError:
            self._roll_back([(targets[i], previous[i]) for i in reversed(done)])
            raise
        self.changed = changed
        return [t.key for t in targets]

    @staticmethod
    def _check_may_change(t: Target, existing: dict, sample: str | None) -> None:
        labels = (existing.get("metadata") or {}).get("labels") or {}
        kubectl = (f"kubectl delete {t.rtype.kind.lower()} {t.name}"
                   f"{' -n ' + t.namespace if t.namespace else ''}")
        if not is_ours(existing):
            raise MeshError(
                f"{t.source}: {t.describe()} already exists and was not created by "
                f"bookinfo-labs (it has no label {MANAGED_BY_LABEL}={MANAGED_BY_VALUE}); "
                f"delete it yourself ({kubectl}) or use another namespace. Nothing was applied."
            )
        owner = labels.get(SAMPLE_LABEL)
        if sample is None and owner is not None:
            raise MeshError(
                f"{t.source}: {t.describe()} belongs to the {owner} sample app; lab config "
                "must not change a sample's objects (give the object another name). "
                "Nothing was applied."
            )
        if sample is not None and owner != sample:
            what = f"the {owner} sample app" if owner else "a lab's config"
            raise MeshError(
                f"{t.source}: {t.describe()} already exists as part of {what}, not of the "
                f"{sample} sample; delete it ({kubectl}) before deploying {sample}. "
                "Nothing was applied."
            )

    def _ssa(self, t: Target, dry_run: bool) -> dict:
        query: list[tuple[str, Any]] = [("fieldManager", FIELD_MANAGER),
                                        ("fieldValidation", "Strict"), ("force", True)]
        if dry_run:
            query.append(("dryRun", "All"))
        try:
            return self.api.request("PATCH", t.rtype.path(t.namespace or None, t.name),
                                    query=query, body=t.body, content_type=APPLY_CONTENT_TYPE)
        except KubeApiError as exc:
            raise MeshError(
                f"{t.source}: {t.describe()}: the API server rejected it: {exc.message}. "
                "Nothing from this batch was applied."
            ) from None

    def _roll_back(self, applied: list[tuple[Target, dict | None]]) -> None:
        for t, before in applied:
            try:
                if before is None:
                    self.api.request("DELETE", t.rtype.path(t.namespace or None, t.name))
                    self.types.pop(t.key, None)
                else:
                    restored = labelled(before, t.namespace or None)
                    restored["metadata"]["labels"] = (before.get("metadata") or {}).get("labels") or {}
                    self._ssa(Target(t.rtype, t.namespace, t.name, restored, t.source), False)
            except (KubeApiError, MeshError):
                pass  # best effort: the original error is what the user needs to see

    def _get(self, t: Target) -> dict | None:
        try:
            return self.api.get(t.rtype, t.namespace or None, t.name)
        except KubeApiError as exc:
            raise MeshError(f"{t.source}: cannot read {t.describe()}: {exc.message}") from None

    # -- list ----------------------------------------------------------------------
    def list_owned(self, types: Iterable[ResourceType],
                   selector: str = OWNED_SELECTOR) -> set[ResourceKey]:
        """Our objects of these types, in every namespace (or ours when listing all is denied)."""
        keys: set[ResourceKey] = set()
        for rtype in dict.fromkeys(types):
            if rtype in self._unserved:
                continue
            try:
                items = self.api.list(rtype, None, selector)
            except KubeApiError as exc:
                if exc.not_found:  # the CRD is not installed: nothing of that kind exists
                    self._unserved.add(rtype)
                    continue
                if exc.status == 403 and rtype.namespaced:
                    items = self.api.list(rtype, self.namespace, selector)
                else:
                    raise MeshError(f"cannot list {rtype.kind} objects: {exc.message}") from None
            for obj in items:
                if not is_ours(obj):  # never trust a selector we did not check
                    continue
                meta = obj.get("metadata") or {}
                key = ResourceKey(rtype.kind, meta.get("namespace") or "", meta["name"])
                self.types.setdefault(key, rtype)
                keys.add(key)
        return keys

    # -- delete --------------------------------------------------------------------
    def delete(self, keys: Iterable[ResourceKey]) -> None:
        """Delete our objects and wait until they are gone; refuse anything not ours."""
        keys = list(keys)
        pending: list[tuple[ResourceKey, ResourceType]] = []
        for key in keys:
            rtype = self.types.get(key) or _type_for(key)
            ns = key.namespace or None
            try:
                obj = self.api.get(rtype, ns, key.name)
            except KubeApiError as exc:
                raise MeshError(f"cannot read {key}: {exc.message}") from None
            if obj is None:
                self.types.pop(key, None)
                continue
            if not is_ours(obj):
                raise MeshError(
                    f"refusing to delete {key}: it was not created by bookinfo-labs "
                    f"(no label {MANAGED_BY_LABEL}={MANAGED_BY_VALUE})"
                )
            sample = ((obj.get("metadata") or {}).get("labels") or {}).get(SAMPLE_LABEL)
            if sample is not None:
                raise MeshError(f"refusing to delete {key}: it belongs to the {sample} sample "
                                "app, which the labs share")
            pending.append((key, rtype))
        for key, rtype in pending:
            try:
                self.api.request("DELETE", rtype.path(key.namespace or None, key.name))
            except KubeApiError as exc:
                if not exc.not_found:
                    raise MeshError(f"cannot delete {key}: {exc.message}") from None
        deadline = time.monotonic() + self.delete_timeout_s
        while pending:
            pending = [(k, t) for k, t in pending if self.api.get(t, k.namespace or None, k.name)]
            if not pending:
                break
            if time.monotonic() > deadline:
                left = ", ".join(str(k) for k, _ in pending)
                raise MeshError(f"still there {self.delete_timeout_s:.0f} s after delete: {left}")
            time.sleep(self.poll_s)
        for key in keys:
            self.types.pop(key, None)


def _version(obj: dict | None) -> str | None:
    return ((obj or {}).get("metadata") or {}).get("resourceVersion")


def _type_for(key: ResourceKey) -> ResourceType:
    try:
        return TYPES_BY_KIND[key.kind]
    except KeyError:
        raise MeshError(f"cannot delete {key}: unknown kind {key.kind} (it was not applied "
                        "by this run)") from None
