"""An in-process fake Kubernetes API server on 127.0.0.1: the kube backend's test double,
and the API server of the emulated cluster (tests/emulated/).

It speaks the real wire formats, so the real kubernetes client code runs end to end
(kubeconfig loading, bearer auth, urllib3, JSON, the exec websocket with its channel
protocol), and it has Kubernetes' own semantics where the kube backend could depend on
them:

- ``GET /version``; discovery ``GET /api/v1``, ``GET /apis/<group>/<version>``;
- objects of the kinds in ``KNOWN_TYPES`` (and Node): ``PATCH`` as server-side apply
  (``fieldManager``, ``force``, conflicts, ``managedFields``, fields a manager stops
  applying are removed) or as a merge patch (an "Update" by ``fieldManager``);
  ``POST`` (create) and ``PUT`` (replace); ``GET`` one, or a list with ``labelSelector``
  (the full selector syntax) in a namespace or everywhere; ``DELETE`` (the object lingers
  with a ``deletionTimestamp`` for ``delete_lag`` reads if its kind is in ``lag_kinds``,
  like a finalizer would keep it);
- ``metadata.resourceVersion`` from one counter, new on every real write and checked when
  a write's body carries one; ``metadata.generation`` bumped only by changes outside
  ``metadata`` and ``status``; ``status`` ignored in writes to the object itself;
- ``fieldValidation`` (Strict, Warn: the default, Ignore) against ``validator``;
  ``dryRun=All``; admission (``deny``, ``admission``) of every create, update and delete;
- pod ``exec`` (websocket, ``v5``/``v4.channel.k8s.io``) answered by ``exec_handler``, and
  pod ``log`` answered by ``log_handler`` or from ``pod_logs``, with the API server's
  container and ``sinceSeconds`` checks;
- for controllers, thread-safe while the server runs: ``watch`` callbacks, ``create``,
  ``update_status``, ``mutate``, ``remove``, ``list_objects``.

Every request is recorded in ``requests`` for assertions. Not emulated: watch streams over
HTTP (controllers use ``watch``), field selectors (refused), JSON patches (refused),
subresources other than pod exec and log, list paging, defaulting and schemas (only
``validator``), finalizers (only ``delete_lag``), a namespace's deletion removing its
objects. Apply treats every list as atomic (the default for CRD lists; built-in kinds merge
some lists by key, e.g. containers by name) and a strategic merge patch is merged as a JSON
merge patch (no list merge keys, no ``$patch`` directives). ``put`` seeds objects without
a write: no watch event, no admission, no managed fields.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

import yaml
from aiohttp import web
from multidict import CIMultiDict

from bookinfo_labs.kube.api import KNOWN_TYPES, ResourceType

TOKEN = "fake-token"
ExecHandler = Callable[[str, str, str, list[str]], tuple[bytes, bytes, int]]
#: an object -> the paths of the fields its schema does not declare (".spec.x[0].y")
Validator = Callable[[dict], list[str]]
#: (operation, new object, old object, dry run) -> a denial message, or None to admit
Admission = Callable[[str, dict, dict | None, bool], str | None]
#: (namespace, pod, container, sinceSeconds) -> the log text
LogHandler = Callable[[str, str, str, int | None], str]
#: (event, object): "ADDED", "MODIFIED" or "DELETED", and a deep copy of the object
Watcher = Callable[[str, dict], None]
Key = tuple[str, str, str, str]  # group, plural, namespace ("" when cluster-scoped), name
Path = tuple[str, ...]  # a field: ("spec", "hosts")

#: the kube backend reads nodes (the kind check) though it never applies one
NODE = ResourceType("", "v1", "Node", "nodes", namespaced=False)
TYPES: dict[tuple[str, str], ResourceType] = {**KNOWN_TYPES, ("", "Node"): NODE}
#: the group/version a request's path names (what an "Update" manager entry records)
API_VERSION = web.RequestKey("api_version", str)


@dataclass
class Recorded:
    method: str
    path: str
    query: list[tuple[str, str]]
    content_type: str
    body: Any

    def q(self, name: str) -> str | None:
        for key, value in self.query:
            if key == name:
                return value
        return None


def _status(code: int, reason: str, message: str, details: dict | None = None) -> web.Response:
    status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
              "message": message, "reason": reason, "code": code}
    if details:
        status["details"] = details
    return web.json_response(status, status=code)


class ApiError(Exception):
    """A refused request; the handler turns it into the API server's Status answer."""

    def __init__(self, code: int, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def response(self) -> web.Response:
        return _status(self.code, self.reason, self.message, self.details)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _what(rtype: ResourceType) -> str:
    """How the API server names a resource in messages: ``virtualservices.networking.istio.io``."""
    return f"{rtype.plural}.{rtype.group}" if rtype.group else rtype.plural


# -- label selectors (k8s.io/apimachinery/pkg/labels, its lexer, parser and messages) ---------

class SelectorError(ValueError):
    """A label selector the API server cannot parse, in its words."""


_SELECTOR_SYMBOLS = {"!": "!", "!=": "!=", "(": "(", ")": ")", ",": ",", "=": "=", "==": "==",
                     ">": "gt", "<": "lt"}
_SPECIAL = frozenset("=!(),<>")
_BLANK = frozenset(" \t\r\n")
_OPERATORS = {"in": "in", "notin": "notin", "=": "=", "==": "==", "!=": "!=",
              "gt": "gt", "lt": "lt"}
_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_NAME_RULE = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and "
              "end with an alphanumeric character")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "exists", "!", "=", "==", "!=", "in", "notin", "gt", "lt"
    values: frozenset[str] = frozenset()

    def matches(self, labels: dict[str, str]) -> bool:
        has, value = self.key in labels, labels.get(self.key)
        if self.op in ("=", "==", "in"):
            return has and value in self.values
        if self.op in ("!=", "notin"):
            return not has or value not in self.values
        if self.op == "exists":
            return has
        if self.op == "!":
            return not has
        try:  # gt, lt: the label's value must be an integer too
            number = int(value) if has else None
        except ValueError:
            return False
        bound = int(next(iter(self.values)))
        return number is not None and (number > bound if self.op == "gt" else number < bound)


def _lex_selector(text: str) -> list[tuple[str, str]]:
    """(kind, literal) tokens, split as Kubernetes' selector lexer splits them."""
    tokens: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in _BLANK:
            i += 1
        if i == n:
            tokens.append(("end", ""))
            return tokens
        j = i
        if text[i] in _SPECIAL:
            end = i + 1  # every special character alone is a symbol; take the longest one
            while j < n and text[j] in _SPECIAL:
                if text[i:j + 1] in _SELECTOR_SYMBOLS:
                    end = j + 1
                else:
                    break
                j += 1
            tokens.append((_SELECTOR_SYMBOLS[text[i:end]], text[i:end]))
            i = end
        else:
            while j < n and text[j] not in _SPECIAL and text[j] not in _BLANK:
                j += 1
            word = text[i:j]
            tokens.append((word if word in ("in", "notin") else "id", word))
            i = j


def _invalid(where: str, value: str, why: str) -> str:
    return f"{where}: Invalid value: {json.dumps(value)}: {why}"


def _key_errors(key: str) -> list[str]:
    """IsQualifiedName: an optional DNS subdomain prefix and '/', then a name."""
    prefix, slash, name = key.rpartition("/")
    if slash and "/" in prefix:
        return [f"a qualified name {_NAME_RULE} with an optional DNS subdomain prefix and '/' "
                "(e.g. 'example.com/MyName')"]
    errors = []
    if slash and not prefix:
        errors.append("prefix part must be non-empty")
    elif slash and (len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix)):
        errors.append("prefix part a lowercase RFC 1123 subdomain must consist of lower case "
                      "alphanumeric characters, '-' or '.', and must start and end with an "
                      "alphanumeric character")
    if not name:
        errors.append("name part must be non-empty")
    elif len(name) > 63:
        errors.append("name part must be no more than 63 characters")
    elif not _NAME.fullmatch(name):
        errors.append(f"name part {_NAME_RULE}")
    return errors


def _value_errors(value: str) -> list[str]:
    if len(value) > 63:
        return ["must be no more than 63 characters"]
    if value and not _NAME.fullmatch(value):
        return [f"a valid label must be an empty string or {_NAME_RULE.removeprefix('must ')}"]
    return []


def _requirement(key: str, op: str, values: set[str]) -> Requirement:
    """NewRequirement's checks; several errors read as one aggregate, like Go's."""
    errors = []
    if _key_errors(key):
        errors.append(_invalid("key", key, "; ".join(_key_errors(key))))
    if op in ("gt", "lt"):
        errors += [_invalid("values[0]", v,
                            "for 'Gt', 'Lt' operators, the value must be an integer")
                   for v in values if not re.fullmatch(r"[-+]?\d+", v)]
    errors += [_invalid(f"values[{i}]", v, "; ".join(_value_errors(v)))
               for i, v in enumerate(sorted(values)) if _value_errors(v)]
    if errors:
        raise SelectorError(errors[0] if len(errors) == 1 else f"[{', '.join(errors)}]")
    return Requirement(key, op, frozenset(values))


class _SelectorParser:
    def __init__(self, text: str):
        self.tokens = _lex_selector(text)
        self.pos = 0

    def look(self, values: bool = True) -> tuple[str, str]:
        kind, literal = self.tokens[self.pos]
        # "in" and "notin" are plain words where a key or a value is expected
        return ("id" if values and kind in ("in", "notin") else kind), literal

    def take(self, values: bool = True) -> tuple[str, str]:
        token = self.look(values)
        self.pos = min(self.pos + 1, len(self.tokens) - 1)
        return token

    def parse(self) -> list[Requirement]:
        found = []
        while True:
            kind, literal = self.look()
            if kind == "end":
                return found
            if kind not in ("id", "!"):
                raise SelectorError(
                    f"found '{literal}', expected: !, identifier, or 'end of string'")
            try:
                found.append(self.requirement())
            except SelectorError as exc:
                raise SelectorError(f"unable to parse requirement: {exc}") from None
            kind, literal = self.take()
            if kind == "end":
                return found
            if kind != ",":
                raise SelectorError(f"found '{literal}', expected: ',' or 'end of string'")
            kind, literal = self.look()
            if kind not in ("id", "!"):
                raise SelectorError(f"found '{literal}', expected: identifier after ','")

    def requirement(self) -> Requirement:
        kind, literal = self.take()
        negated = kind == "!"
        if negated:
            kind, literal = self.take()
        if kind != "id":
            raise SelectorError(f"found '{literal}', expected: identifier")
        key = literal
        if _key_errors(key):
            raise SelectorError(_invalid("<nil>", key, "; ".join(_key_errors(key))))
        if negated:
            return Requirement(key, "!")
        if self.look()[0] in ("end", ","):
            return Requirement(key, "exists")
        kind, literal = self.take(values=False)
        op = _OPERATORS.get(kind)
        if op is None:
            raise SelectorError(f"found '{literal}', expected: in, notin, =, ==, !=, gt, lt")
        values = self.value_set() if op in ("in", "notin") else self.exact_value()
        return _requirement(key, op, values)

    def value_set(self) -> set[str]:
        kind, literal = self.take()
        if kind != "(":
            raise SelectorError(f"found '{literal}', expected: '('")
        kind, literal = self.look()
        if kind == ")":
            self.take()
            return {""}
        if kind not in ("id", ","):
            raise SelectorError(f"found '{literal}', expected: ',', ')' or identifier")
        values = self.identifiers()
        if self.take()[0] != ")":
            raise SelectorError(f"found '{literal}', expected: ')'")
        return values

    def identifiers(self) -> set[str]:
        values: set[str] = set()
        while True:
            kind, literal = self.take()
            if kind == "id":
                values.add(literal)
                after, text = self.look()
                if after == ")":
                    return values
                if after != ",":
                    raise SelectorError(f"found '{text}', expected: ',' or ')'")
            elif kind == ",":  # "(,x", "(x,)" and "(x,,y)" hold an empty value
                if not values:
                    values.add("")
                after, _ = self.look()
                if after == ")":
                    values.add("")
                    return values
                if after == ",":
                    self.take()
                    values.add("")
            else:
                raise SelectorError(f"found '{literal}', expected: ',', or identifier")

    def exact_value(self) -> set[str]:
        if self.look()[0] in ("end", ","):
            return {""}
        kind, literal = self.take()
        if kind != "id":
            raise SelectorError(f"found '{literal}', expected: identifier")
        return {literal}


def parse_selector(text: str | None) -> list[Requirement]:
    """A label selector's requirements (all must match); SelectorError when unparseable."""
    return _SelectorParser(text or "").parse()


def _selected(obj: dict, requirements: list[Requirement]) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(r.matches(labels) for r in requirements)


# -- fields: paths, ownership, validation -----------------------------------------------------

_MISSING: Any = object()
#: metadata the server sets: never taken from a body, never owned by a manager
_SERVER_META = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields",
                "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds")
_IDENTITY_META = ("name", "namespace")


def _leaves(value: Any, prefix: Path = ()) -> dict[Path, Any]:
    """Every field that is not a non-empty map, by path; a list is one field (atomic)."""
    if isinstance(value, dict) and value:
        out: dict[Path, Any] = {}
        for key, child in value.items():
            out.update(_leaves(child, prefix + (str(key),)))
        return out
    return {prefix: value}


def _owned_leaves(obj: dict) -> dict[Path, Any]:
    """The fields a manager can own: not apiVersion and kind, not the name, not what the
    server sets, not status (the status subresource's writers are not tracked)."""
    out = {}
    for path, value in _leaves(obj).items():
        if not path or path == ("metadata",) or path[0] in ("apiVersion", "kind", "status"):
            continue
        if path[0] == "metadata" and path[1] in _SERVER_META + _IDENTITY_META:
            continue
        out[path] = value
    return out


def _get(obj: Any, path: Path) -> Any:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return _MISSING
        obj = obj[key]
    return obj


def _set(obj: dict, path: Path, value: Any) -> None:
    for key in path[:-1]:
        if not isinstance(obj.get(key), dict):
            obj[key] = {}
        obj = obj[key]
    obj[path[-1]] = value


def _remove(obj: dict, path: Path, keep: set[Path]) -> None:
    """Remove a field, then the maps it leaves empty (unless a manager owns them)."""
    parents = [obj]
    for key in path[:-1]:
        node = parents[-1].get(key)
        if not isinstance(node, dict):
            return
        parents.append(node)
    parents[-1].pop(path[-1], None)
    for depth in range(len(path) - 1, 0, -1):
        if parents[depth] or path[:depth] in keep or path[:depth] == ("metadata",):
            break
        parents[depth - 1].pop(path[depth - 1], None)


def _changed(before: dict, after: dict, path: Path) -> bool:
    """Whether a write changes a field (a map that stays a map is not changed by its fields)."""
    old, new = _get(before, path), _get(after, path)
    if isinstance(old, dict) and isinstance(new, dict):
        return False
    return old is not new and old != new


def _path_text(path: Path) -> str:
    return "".join(f".{key}" for key in path)


@dataclass
class _Manager:
    """One ``managedFields`` entry, with its fields as paths."""

    manager: str
    operation: str  # "Apply" or "Update"
    api_version: str
    time: str
    paths: set[Path]
    extra: dict = field(default_factory=dict)  # what else the entry had (subresource)

    def describe(self) -> str:
        """As the API server names a manager in a conflict."""
        name = json.dumps(self.manager)
        if self.operation != "Update":
            return name
        return f"{name} using {self.api_version}" + (f" at {self.time}" if self.time else "")


def _fields_v1(paths: set[Path]) -> dict:
    tree: dict = {}
    for path in paths:
        node = tree
        for key in path:
            node = node.setdefault(f"f:{key}", {})
    for path in paths:  # a field owned as a whole whose own fields are owned too
        node = tree
        for key in path:
            node = node[f"f:{key}"]
        if node and "." not in node:
            node["."] = {}
    return tree


def _paths_of(tree: dict, prefix: Path = ()) -> set[Path]:
    paths: set[Path] = set()
    for key, child in tree.items():
        if not key.startswith("f:"):
            # ".", or a list item ("k:", "v:", "i:") of a seeded real object: lists are
            # atomic here, so the field holding it is what is owned
            paths.add(prefix)
            continue
        here = prefix + (key[2:],)
        paths |= _paths_of(child, here) if child else {here}
    return {p for p in paths if p}


def _managers(obj: dict | None) -> list[_Manager]:
    found = []
    for entry in ((obj or {}).get("metadata") or {}).get("managedFields") or []:
        extra = {k: v for k, v in entry.items()
                 if k not in ("manager", "operation", "apiVersion", "time", "fieldsType",
                              "fieldsV1")}
        found.append(_Manager(entry.get("manager", ""), entry.get("operation", "Update"),
                              entry.get("apiVersion", ""), entry.get("time", ""),
                              _paths_of(entry.get("fieldsV1") or {}), extra))
    return found


def _settle(managers: list[_Manager], obj: dict) -> None:
    """Write the managers into the object: fields no longer there are owned by no one, and
    a manager that owns nothing is dropped, as the API server does."""
    entries = []
    for m in managers:
        m.paths = {p for p in m.paths if _get(obj, p) is not _MISSING}
        if m.paths:
            entries.append({"manager": m.manager, "operation": m.operation,
                            "apiVersion": m.api_version, "time": m.time,
                            "fieldsType": "FieldsV1", "fieldsV1": _fields_v1(m.paths), **m.extra})
    meta = obj.setdefault("metadata", {})
    if entries:
        meta["managedFields"] = entries
    else:
        meta.pop("managedFields", None)


def _conflict(conflicts: list[tuple[_Manager, Path]]) -> ApiError:
    """409 in the API server's words (k8s.io/apimachinery managedfields, conflict.go)."""
    causes = [{"type": "FieldManagerConflict", "message": f"conflict with {m.describe()}",
               "field": _path_text(p)} for m, p in conflicts]
    if len(conflicts) == 1:
        m, p = conflicts[0]
        message = f"Apply failed with 1 conflict: conflict with {m.describe()}: {_path_text(p)}"
    else:
        by_manager: dict[str, list[str]] = {}
        for m, p in conflicts:
            by_manager.setdefault(m.describe(), []).append(_path_text(p))
        lines = []
        for name in sorted(by_manager):
            lines += [f"conflicts with {name}:", *(f"- {p}" for p in by_manager[name])]
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return ApiError(409, "Conflict", message, {"causes": causes})


def _applied(live: dict | None, body: dict, manager: str, force: bool) -> dict:
    """Server-side apply of ``body`` by ``manager`` onto ``live`` (None: a create).

    The manager then owns exactly the fields it applied; a field another manager owns
    that the apply would change is a conflict unless ``force`` (then ownership moves); a
    field the manager applied before and omits now is removed unless another manager
    owns it (or something inside it). The fields of an object seeded by ``put`` (no
    managedFields) are owned by no one: an apply neither conflicts with them nor removes
    them (a real API server would first give them to a "before-first-apply" manager)."""
    applied = _owned_leaves(body)
    managers = _managers(live)
    mine = next((m for m in managers if m.manager == manager and m.operation == "Apply"), None)
    merged = copy.deepcopy(live) if live is not None else {"metadata": {}}
    for path, value in applied.items():
        if value == {} and isinstance(_get(merged, path), dict):
            continue  # an empty map adds nothing to the one there
        _set(merged, path, copy.deepcopy(value))
    merged["apiVersion"], merged["kind"] = body["apiVersion"], body["kind"]
    if live is not None:
        conflicts = [(m, p) for m in managers if m is not mine
                     for p in sorted(m.paths) if _changed(live, merged, p)]
        if conflicts and not force:
            raise _conflict(conflicts)
        for m, p in conflicts:
            m.paths.discard(p)
        others = {p for m in managers if m is not mine for p in m.paths}
        for path in sorted((mine.paths if mine else set()) - applied.keys()):
            if not any(o[:len(path)] == path for o in others):
                _remove(merged, path, others | set(applied))
    if mine is None:
        mine = _Manager(manager, "Apply", body["apiVersion"], "", set())
        managers.append(mine)
    mine.paths, mine.api_version, mine.time = set(applied), body["apiVersion"], _now()
    _settle(managers, merged)
    return merged


def _record_update(before: dict | None, after: dict, manager: str, api_version: str) -> None:
    """An "Update" (create, replace, merge patch): the fields it changes move to its manager."""
    managers = _managers(before)
    old = before or {}
    changed = {p for p in set(_owned_leaves(old)) | set(_owned_leaves(after))
               if _changed(old, after, p)}
    for m in managers:
        m.paths = {p for p in m.paths if not _changed(old, after, p)}
    gained = {p for p in changed if _get(after, p) is not _MISSING}
    if gained:
        mine = next((m for m in managers if m.manager == manager and m.operation == "Update"), None)
        if mine is None:
            mine = _Manager(manager, "Update", api_version, "", set())
            managers.append(mine)
        mine.paths |= gained
        mine.api_version, mine.time = api_version, _now()
    _settle(managers, after)


def _agent_manager(user_agent: str) -> str:
    # The API server names a write without fieldManager after the User-Agent's first
    # segment ("OpenAPI-Generator" for the Python client, "kubectl" for kubectl); "unknown"
    # stands in only when a request has no User-Agent at all.
    return user_agent.split("/", 1)[0][:128] or "unknown"


def _client_part(body: dict) -> dict:
    """What a client may write to an object: no status, no server-set metadata."""
    obj = {k: copy.deepcopy(v) for k, v in body.items() if k != "status"}
    meta = dict(obj.get("metadata") or {})
    for key in _SERVER_META + _IDENTITY_META:
        meta.pop(key, None)
    obj["metadata"] = meta
    return obj


def _keep_server_part(old: dict, new: dict) -> None:
    """Carry over what the client cannot write: the server's metadata and the status."""
    meta = new.setdefault("metadata", {})
    for key in _SERVER_META:
        if key in old.get("metadata", {}) and key != "managedFields":
            meta[key] = old["metadata"][key]
    if "status" in old:
        new["status"] = copy.deepcopy(old["status"])
    else:
        new.pop("status", None)


def _spec_part(obj: dict) -> dict:
    """What ``generation`` counts the changes of: everything but metadata and status."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


def _same_object(a: dict, b: dict) -> bool:
    """Equal but for what the server stamps on every write (resourceVersion, the managers'
    timestamps): such a write is a no-op, as on a real API server."""
    def content(obj: dict) -> dict:
        meta = {k: v for k, v in (obj.get("metadata") or {}).items()
                if k not in ("resourceVersion", "managedFields")}
        managers = [{k: v for k, v in e.items() if k != "time"}
                    for e in (obj.get("metadata") or {}).get("managedFields") or []]
        return {**obj, "metadata": meta, "managers": managers}

    return content(a) == content(b)


def _merge(base: Any, patch: Any) -> Any:
    """A JSON merge patch (RFC 7386)."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            if v is None:
                out.pop(k, None)
            else:
                out[k] = _merge(base.get(k), v)
        return out
    if isinstance(patch, dict):
        return _merge({}, patch)
    return copy.deepcopy(patch)


def _without_nulls(value: Any) -> Any:
    # an applied null means "not set by this manager", not a value
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _named_fields(obj: Any, names: set[str], path: str = "") -> list[str]:
    """The paths of the fields called one of ``names`` (the default validator)."""
    found: list[str] = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            here = f"{path}.{key}"
            if key in names:
                found.append(here)
            else:
                found.extend(_named_fields(value, names, here))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            found.extend(_named_fields(value, names, f"{path}[{i}]"))
    return found


_FIELD_STEP = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")


def _drop_field(obj: dict, path: str) -> None:
    """Remove the field at a validator's path (``.spec.http[0].route[0].wieght``)."""
    steps: list[Any] = [m.group(1) if m.group(1) is not None else int(m.group(2))
                        for m in _FIELD_STEP.finditer(path)]
    node: Any = obj
    for step in steps[:-1]:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            return
    if steps and isinstance(node, dict):
        node.pop(steps[-1], None)


def _warning(text: str) -> str:
    """A ``Warning`` header value: code 299, no agent, the text quoted."""
    return '299 - "' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _object_response(obj: dict, status: int = 200, warnings: list[str] = ()) -> web.Response:
    headers = CIMultiDict(("Warning", _warning(w)) for w in warnings)
    return web.json_response(obj, status=status, headers=headers)


def _pod_container(pod: dict, name: str, container: str) -> str:
    """The container a log or exec request means, checked as the API server checks it."""
    spec = pod.get("spec") or {}
    main = [c["name"] for c in spec.get("containers") or []]
    every = [c["name"] for group in ("initContainers", "containers", "ephemeralContainers")
             for c in spec.get(group) or []]
    if container:
        if container not in every:
            raise ApiError(400, "BadRequest", f"container {container} is not valid for pod {name}")
        return container
    if len(main) == 1:
        return main[0]
    if not main:
        raise ApiError(400, "BadRequest", f"a container name must be specified for pod {name}")
    raise ApiError(400, "BadRequest", f"a container name must be specified for pod {name}, "
                                      f"choose one of: [{' '.join(every)}]")


def _since_seconds(raw: str | None, pod: str) -> int | None:
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "BadRequest",
                       f'sinceSeconds: strconv.ParseInt: parsing "{raw}": invalid syntax') from None
    if value < 1:  # PodLogOptions validation: an Invalid (422), as the API server answers
        raise ApiError(422, "Invalid", f'PodLogOptions "{pod}" is invalid: sinceSeconds: '
                                       f"Invalid value: {value}: must be greater than 0")
    return value


@dataclass
class FakeApiServer:
    served_groups: set[str] = field(default_factory=lambda: {
        "", "apps", "batch", "policy", "autoscaling", "rbac.authorization.k8s.io",
        "networking.istio.io", "security.istio.io", "telemetry.istio.io"})
    unknown_fields: set[str] = field(default_factory=lambda: {"wieght", "bogus"})
    deny: dict[str, str] = field(default_factory=dict)  # object name -> webhook message
    delete_lag: int = 2
    exec_handler: ExecHandler | None = None
    pod_logs: dict[tuple[str, str, str], str] = field(default_factory=dict)
    require_token: bool = True
    auto_rollout: bool = True  # an applied Deployment is rolled out at once, with a pod
    #: the unknown fields of an object; None: the fields named in ``unknown_fields``
    validator: Validator | None = None
    #: a validating webhook: (operation, new, old, dry_run) -> denial message or None
    admission: Admission | None = None
    #: the kinds that linger ``delete_lag`` reads after a delete; None: every kind
    lag_kinds: set[str] | None = None
    #: the kubelet's side of ``pods/log``; None: ``pod_logs`` answers
    log_handler: LogHandler | None = None

    def __post_init__(self) -> None:
        self.objects: dict[Key, dict] = {}
        self.requests: list[Recorded] = []
        self.namespaces: set[str] = {"default", "istio-system", "kube-system"}
        #: exceptions raised by watch callbacks (the server carries on without them)
        self.watch_errors: list[BaseException] = []
        self._lag: dict[Key, int] = {}
        # Reentrant: a validator or an admission hook (called under it) may list objects.
        self._lock = threading.RLock()
        self._local = threading.local()  # per thread: how deep in _transaction
        self._events: collections.deque[tuple[str, dict]] = collections.deque()
        self._watchers: list[Watcher] = []
        self._delivering = threading.Lock()
        self._rv = 100
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0
        for ns in sorted(self.namespaces):
            self.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

    # -- lifecycle -------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "FakeApiServer":
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            app = web.Application(client_max_size=64 * 1024 * 1024)
            app.router.add_route("*", "/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-kube-api", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fake API server did not start")
        return self

    def stop(self) -> None:
        if self._loop and self._thread:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = None

    def write_kubeconfig(self, path: str, context: str = "kind-bookinfo-labs") -> str:
        cluster = context.removeprefix("kind-")
        doc = {
            "apiVersion": "v1", "kind": "Config", "current-context": context,
            "clusters": [{"name": cluster, "cluster": {"server": self.url}}],
            "users": [{"name": cluster, "user": {"token": TOKEN}}],
            "contexts": [{"name": context, "context": {"cluster": cluster, "user": cluster}}],
        }
        with open(path, "w", encoding="utf-8") as fh:
            yaml.safe_dump(doc, fh)
        return path

    # -- seeding and inspection ----------------------------------------------------------
    def put(self, obj: dict) -> dict:
        """Store an object as if it had been created (kind looked up in the known table).

        Seeding, not a write: the object itself is stored, no watcher hears of it."""
        rtype, key = self._locate(obj)
        meta = obj["metadata"]
        meta.setdefault("generation", 1)
        with self._lock:
            self._bump(meta)
            meta.setdefault("uid", f"uid-{self._rv}")
            meta.setdefault("creationTimestamp", "2026-11-21T10:00:00Z")
            self.objects[key] = obj
            self._lag.pop(key, None)
            if rtype.kind == "Namespace":
                self.namespaces.add(key[3])
        return obj

    def get_object(self, group: str, plural: str, namespace: str, name: str) -> dict | None:
        """The stored object itself (not a copy: treat it as read-only)."""
        return self.objects.get((group, plural, namespace, name))

    def add_deployment(self, name: str, *, labels: dict[str, str] | None = None,
                       namespace: str = "default", containers: list[str] | None = None,
                       ready: bool = True, image_tag: str = "1.26.0",
                       sidecar: bool = True, sample: str | None = None) -> None:
        """A Deployment and its one pod (``<name>-5d8f7c9b6d-x2k4p``); ``sample`` labels the
        Deployment as bookinfo-labs' own, part of that sample app."""
        labels = labels or {"app": name}
        ours = ({"app.kubernetes.io/managed-by": "bookinfo-labs", "bookinfo-labs.io/sample": sample}
                if sample else {})
        containers = containers or [name]
        images = {c: f"docker.io/istio/{c}:{image_tag}" for c in containers}
        replicas = 1
        self.put({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "labels": {**labels, **ours},
                         "generation": 1},
            "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels)},
                     "template": {"metadata": {"labels": dict(labels)},
                                  "spec": {"containers": [{"name": c, "image": images[c]}
                                                          for c in containers]}}},
            "status": {"observedGeneration": 1, "replicas": replicas,
                       "updatedReplicas": replicas,
                       "readyReplicas": replicas if ready else 0,
                       "availableReplicas": replicas if ready else 0},
        })
        pod_containers = [{"name": c, "image": images[c]} for c in containers]
        if sidecar:
            pod_containers.append({"name": "istio-proxy",
                                   "image": f"docker.io/istio/proxyv2:{image_tag}"})
        self.put({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"{name}-5d8f7c9b6d-x2k4p", "namespace": namespace,
                         "labels": dict(labels),
                         "annotations": {"kubectl.kubernetes.io/default-container": containers[0]}},
            "spec": {"containers": pod_containers, "nodeName": "bookinfo-labs-control-plane"},
            "status": {"phase": "Running" if ready else "Pending", "hostIP": "172.18.0.2",
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                       "containerStatuses": [
                           {"name": c["name"], "ready": ready, "restartCount": 0,
                            "image": c["image"], "imageID": "", "started": ready}
                           for c in pod_containers]},
        })

    def requests_to(self, method: str, contains: str = "") -> list[Recorded]:
        return [r for r in self.requests if r.method == method and contains in r.path]

    # -- for controllers (any thread) ------------------------------------------------------
    def watch(self, callback: Watcher) -> Callable[[], None]:
        """Call ``callback(event, obj)`` after every committed write, in commit order.

        Events: "ADDED", "MODIFIED" (also when a delete marks a lingering object),
        "DELETED" (when it is gone, also when its lag runs out during a read). ``obj`` is
        a deep copy. No event for ``put``, dry runs and writes that change nothing.
        Callbacks run outside the server's lock but on a writing thread, often the
        server's own: they must be quick and must not wait for an API request (they may
        call the controller-side methods); a controller enqueues work for its own thread.
        An exception a callback raises goes to ``watch_errors``. Returns a function that
        stops the calls."""
        with self._lock:
            self._watchers.append(callback)

        def unwatch() -> None:
            with self._lock:
                if callback in self._watchers:
                    self._watchers.remove(callback)

        return unwatch

    def create(self, obj: dict) -> dict:
        """Create an object as a controller does (no admission): uid, resourceVersion,
        creationTimestamp now, generation 1. ValueError if it exists or its namespace
        does not."""
        rtype, key = self._locate(copy.deepcopy(obj))
        new = copy.deepcopy(obj)
        meta = new.setdefault("metadata", {})
        for k in _SERVER_META:
            meta.pop(k, None)
        if key[2]:
            meta["namespace"] = key[2]
        with self._transaction():
            if key in self.objects:
                raise ValueError(f'{_what(rtype)} "{key[3]}" already exists')
            if rtype.namespaced and key[2] not in self.namespaces:
                raise ValueError(f'namespaces "{key[2]}" not found')
            return copy.deepcopy(self._commit(key, None, new))

    def update_status(self, group: str, plural: str, namespace: str, name: str,
                      status: dict) -> dict:
        """Replace ``.status`` (a new resourceVersion, the same generation); the same status
        again is a no-op, as on a real API server. KeyError if there is no such object."""
        with self._transaction():
            key, old = self._existing(group, plural, namespace, name)
            new = copy.deepcopy(old)
            new["status"] = copy.deepcopy(status)
            return copy.deepcopy(self._commit(key, old, new))

    def mutate(self, group: str, plural: str, namespace: str, name: str,
               fn: Callable[[dict], None]) -> dict:
        """A controller's update: ``fn`` changes a copy in place (under the server's lock:
        keep it quick); name, uid and the other server-set metadata stay. The generation
        counts changes outside metadata and status; no change is a no-op. KeyError if
        there is no such object."""
        with self._transaction():
            key, old = self._existing(group, plural, namespace, name)
            new = copy.deepcopy(old)
            fn(new)
            new["apiVersion"], new["kind"] = old["apiVersion"], old["kind"]
            meta = new.setdefault("metadata", {})
            for k in _SERVER_META + _IDENTITY_META:
                if k in old["metadata"]:
                    meta[k] = copy.deepcopy(old["metadata"][k])
                else:
                    meta.pop(k, None)
            return copy.deepcopy(self._commit(key, old, new))

    def remove(self, group: str, plural: str, namespace: str, name: str) -> None:
        """Delete at once (no lag, no admission). KeyError if there is no such object."""
        with self._transaction():
            key, _ = self._existing(group, plural, namespace, name)
            self._remove(key)

    def list_objects(self, group: str, plural: str, namespace: str | None = None,
                     selector: str | None = None) -> list[dict]:
        """Deep copies of the objects of a type (lingering ones too), in key order;
        SelectorError (a ValueError) for a selector the API server would refuse."""
        if self._type(group, plural) is None:
            raise ValueError(f"no type {plural} in group {group!r}")
        requirements = parse_selector(selector)
        with self._lock:
            return [copy.deepcopy(self.objects[k]) for k in sorted(self.objects)
                    if k[:2] == (group, plural) and (namespace is None or k[2] == namespace)
                    and _selected(self.objects[k], requirements)]

    # -- writes and their events -------------------------------------------------------------
    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """Hold the lock; when the outermost transaction of this thread ends, deliver the
        events its writes queued (outside the lock)."""
        local = self._local
        local.depth = getattr(local, "depth", 0) + 1
        try:
            with self._lock:
                yield
        finally:
            local.depth -= 1
            if local.depth == 0:
                self._deliver()

    def _deliver(self) -> None:
        # One thread delivers at a time, so events keep their commit order. A thread that
        # finds another delivering leaves its events to it (that one looks at the queue
        # again after letting go), so a callback that writes, or a write made while a
        # callback waits for the server, never deadlocks.
        while True:
            if not self._delivering.acquire(blocking=False):
                return
            try:
                while True:
                    with self._lock:
                        if not self._events:
                            break
                        event, obj = self._events.popleft()
                        watchers = list(self._watchers)
                    for callback in watchers:
                        try:
                            callback(event, copy.deepcopy(obj))
                        except Exception as exc:  # noqa: BLE001 - a watcher's bug is its own
                            self.watch_errors.append(exc)
            finally:
                self._delivering.release()
            with self._lock:
                if not self._events:
                    return

    def _emit(self, event: str, obj: dict) -> None:
        if self._watchers:
            self._events.append((event, copy.deepcopy(obj)))

    def _bump(self, meta: dict) -> None:
        self._rv += 1
        meta["resourceVersion"] = str(self._rv)

    def _commit(self, key: Key, old: dict | None, new: dict, *, rollout: bool = False) -> dict:
        """Store a create (``old`` None) or an update and tell the watchers; an update that
        changes nothing is not a write (the stored object is returned as it was)."""
        if old is not None and _same_object(old, new):
            return old
        meta = new.setdefault("metadata", {})
        if old is None:
            meta.update(uid=str(uuid.uuid4()), creationTimestamp=_now(), generation=1)
        else:
            generation = int(old["metadata"].get("generation") or 1)
            if _spec_part(old) != _spec_part(new):
                generation += 1
            meta["generation"] = generation
        self._bump(meta)
        self.objects[key] = new
        if new.get("kind") == "Namespace":
            self.namespaces.add(key[3])
        rolled = (rollout and self.auto_rollout and new.get("kind") == "Deployment"
                  and (new.get("status") or {}).get("observedGeneration") != meta["generation"])
        if rolled:
            new["status"] = self._rolled_out_status(new)
        self._emit("ADDED" if old is None else "MODIFIED", new)
        if rolled:
            self._replace_pods(new)
        return new

    def _remove(self, key: Key) -> None:
        obj = self.objects.pop(key)
        self._lag.pop(key, None)
        if key[1] == "namespaces":
            self.namespaces.discard(key[3])
        gone = copy.deepcopy(obj)
        self._bump(gone["metadata"])  # the removal is a write: watchers see its version
        self._emit("DELETED", gone)

    def _locate(self, obj: dict) -> tuple[ResourceType, Key]:
        group, _, _ = obj["apiVersion"].rpartition("/")
        rtype = TYPES[(group, obj["kind"])]
        meta = obj.setdefault("metadata", {})
        ns = meta.get("namespace", "default") if rtype.namespaced else ""
        if rtype.namespaced:
            meta["namespace"] = ns
        return rtype, (group, rtype.plural, ns, meta["name"])

    def _existing(self, group: str, plural: str, namespace: str, name: str) -> tuple[Key, dict]:
        key = (group, plural, namespace, name)
        if key not in self.objects:
            raise KeyError(f'{plural}.{group} "{name}" not found in namespace "{namespace}"')
        return key, self.objects[key]

    # -- request handling ------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = yaml.safe_load(raw)
        self.requests.append(Recorded(request.method, request.path,
                                      list(request.query.items()),
                                      request.headers.get("Content-Type", ""), body))
        if self.require_token and request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return _status(401, "Unauthorized", "Unauthorized")
        parts = [p for p in request.path.split("/") if p]
        if parts == ["version"]:
            return web.json_response({
                "major": "1", "minor": "32", "gitVersion": "v1.32.5", "gitCommit": "abc",
                "gitTreeState": "clean", "buildDate": "2025-05-20T00:00:00Z",
                "goVersion": "go1.23.8", "compiler": "gc", "platform": "linux/amd64"})
        if not parts or parts[0] not in ("api", "apis"):
            return _status(404, "NotFound", "the server could not find the requested resource")
        if parts[0] == "api":
            group, version, rest = "", parts[1] if len(parts) > 1 else "", parts[2:]
        else:
            if len(parts) < 3:
                return _status(404, "NotFound", "the server could not find the requested resource")
            group, version, rest = parts[1], parts[2], parts[3:]
        if group not in self.served_groups:
            return _status(404, "NotFound", "the server could not find the requested resource")
        if not rest:
            return self._discovery(group, version)
        if rest[0] == "namespaces" and len(rest) >= 3:
            ns, plural, tail = rest[1], rest[2], rest[3:]
        else:
            ns, plural, tail = "", rest[0], rest[1:]
        name = tail[0] if tail else None
        sub = tail[1] if len(tail) > 1 else None
        if plural == "pods" and sub == "exec":
            return await self._exec(request, ns, name or "")
        if plural == "pods" and sub == "log":
            return await self._log(request, ns, name or "")
        rtype = self._type(group, plural)
        if rtype is None or len(tail) > 1:
            return _status(404, "NotFound", "the server could not find the requested resource")
        request[API_VERSION] = f"{group}/{version}" if group else version
        try:
            with self._transaction():
                return self._serve(request, rtype, (group, plural, ns, name or ""), body)
        except ApiError as exc:
            return exc.response()

    def _serve(self, request: web.Request, rtype: ResourceType, key: Key,
               body: Any) -> web.Response:
        method, named = request.method, bool(key[3])
        if method == "GET" and not named:
            return self._list(rtype, key[2], request)
        if method == "GET":
            return self._get(rtype, key)
        if method == "POST" and not named:
            return self._create(request, rtype, key, body)
        if method == "PUT" and named:
            return self._replace(request, rtype, key, body)
        if method == "PATCH" and named:
            return self._patch(request, rtype, key, body)
        if method == "DELETE" and named:
            return self._delete(request, rtype, key, body)
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported here")

    def _type(self, group: str, plural: str) -> ResourceType | None:
        for t in TYPES.values():
            if t.group == group and t.plural == plural:
                return t
        return None

    def _discovery(self, group: str, version: str) -> web.Response:
        resources = [{"name": t.plural, "kind": t.kind, "namespaced": t.namespaced,
                      "singularName": t.kind.lower(),
                      "verbs": ["create", "delete", "get", "list", "patch", "update"]}
                     for t in TYPES.values() if t.group == group]
        return web.json_response({"kind": "APIResourceList", "apiVersion": "v1",
                                  "groupVersion": f"{group}/{version}" if group else version,
                                  "resources": resources})

    def _not_found(self, rtype: ResourceType, name: str) -> ApiError:
        return ApiError(404, "NotFound", f'{_what(rtype)} "{name}" not found')

    def _visible(self, key: Key) -> dict | None:
        """The object as a read sees it; each read of a deleted object uses up its lag."""
        obj = self.objects.get(key)
        if obj is None:
            return None
        if key in self._lag:
            self._lag[key] -= 1
            if self._lag[key] < 0:
                self._remove(key)
                return None
        return obj

    def _get(self, rtype: ResourceType, key: Key) -> web.Response:
        obj = self._visible(key)
        if obj is None:
            raise self._not_found(rtype, key[3])
        return web.json_response(obj)

    def _list(self, rtype: ResourceType, ns: str, request: web.Request) -> web.Response:
        query = request.query
        if query.get("watch") in ("true", "1"):
            raise ApiError(405, "MethodNotAllowed",
                           "this fake API server serves no watch streams (controllers use watch())")
        if query.get("fieldSelector"):
            raise ApiError(400, "BadRequest",
                           "this fake API server does not evaluate field selectors")
        try:
            requirements = parse_selector(query.get("labelSelector"))
        except SelectorError as exc:
            raise ApiError(400, "BadRequest", str(exc)) from None
        items = []
        for key in sorted(self.objects):
            if key[0] != rtype.group or key[1] != rtype.plural or (ns and key[2] != ns):
                continue
            obj = self._visible(key)
            if obj is not None and _selected(obj, requirements):
                items.append(obj)
        return web.json_response({"apiVersion": rtype.api_version, "kind": f"{rtype.kind}List",
                                  "metadata": {"resourceVersion": str(self._rv)}, "items": items})

    # -- mutating requests -------------------------------------------------------------------
    @staticmethod
    def _options(request: web.Request) -> tuple[str, bool]:
        """fieldValidation (the API server's default is Warn) and whether it is a dry run."""
        mode = request.query.get("fieldValidation") or "Warn"
        if mode not in ("Strict", "Warn", "Ignore"):
            raise ApiError(400, "BadRequest", f'fieldValidation: Unsupported value: "{mode}": '
                                              'supported values: "Ignore", "Strict", "Warn"')
        dry_run = request.query.get("dryRun")
        if dry_run not in (None, "All"):
            raise ApiError(400, "BadRequest",
                           f'dryRun: Unsupported value: "{dry_run}": supported values: "All"')
        return mode, dry_run == "All"

    def _validated(self, obj: dict, mode: str) -> tuple[dict, list[str]]:
        """The object without its unknown fields and the warnings; Strict refuses them."""
        unknown = list(self.validator(obj) if self.validator
                       else _named_fields(obj, self.unknown_fields))
        if not unknown:
            return obj, []
        if mode == "Strict":
            raise ApiError(400, "BadRequest",
                           ", ".join(f"{p}: field not declared in schema" for p in unknown))
        obj = copy.deepcopy(obj)
        for path in unknown:
            _drop_field(obj, path)
        return obj, ([f'unknown field "{p}"' for p in unknown] if mode == "Warn" else [])

    def _admit(self, operation: str, new: dict, old: dict | None, dry_run: bool) -> None:
        name = (new.get("metadata") or {}).get("name", "")
        message = self.deny.get(name) if operation != "DELETE" else None
        if message is None and self.admission is not None:
            message = self.admission(operation, copy.deepcopy(new),
                                     copy.deepcopy(old) if old is not None else None, dry_run)
        if message:
            raise ApiError(400, "BadRequest",
                           f'admission webhook "validation.istio.io" denied the request: {message}')

    def _check_version(self, rtype: ResourceType, key: Key, old: dict | None, body: dict) -> None:
        """A resourceVersion in the body is a precondition: the client's copy is current."""
        wanted = (body.get("metadata") or {}).get("resourceVersion")
        if wanted and old is not None and str(wanted) != old["metadata"].get("resourceVersion"):
            raise ApiError(409, "Conflict",
                           f'Operation cannot be fulfilled on {_what(rtype)} "{key[3]}": the '
                           "object has been modified; please apply your changes to the latest "
                           "version and try again")

    def _check_body(self, rtype: ResourceType, key: Key, body: Any) -> dict:
        if not isinstance(body, dict) or body.get("kind") != rtype.kind:
            raise ApiError(400, "BadRequest", f"the body of the request must be a {rtype.kind}")
        meta = body.get("metadata") or {}
        if key[3] and meta.get("name") not in (None, key[3]):
            raise ApiError(400, "BadRequest", f"the name of the object ({meta['name']}) does "
                                              f"not match the name on the URL ({key[3]})")
        if key[2] and meta.get("namespace") not in (None, "", key[2]):
            raise ApiError(400, "BadRequest", "the namespace of the provided object does not "
                                              "match the namespace sent on the request")
        if rtype.namespaced and key[2] not in self.namespaces:
            raise ApiError(404, "NotFound", f'namespaces "{key[2]}" not found')
        return body

    def _admit_and_commit(self, key: Key, old: dict | None, new: dict, dry_run: bool,
                          warnings: list[str]) -> web.Response:
        new["metadata"]["name"] = key[3]
        if key[2]:
            new["metadata"]["namespace"] = key[2]
        self._admit("CREATE" if old is None else "UPDATE", new, old, dry_run)
        if not dry_run:  # a dry run answers with the object as it would be, and stops there
            new = self._commit(key, old, new, rollout=True)
        return _object_response(new, 201 if old is None else 200, warnings)

    def _manager(self, request: web.Request) -> str:
        return (request.query.get("fieldManager")
                or _agent_manager(request.headers.get("User-Agent", "")))

    def _create(self, request: web.Request, rtype: ResourceType, key: Key,
                body: Any) -> web.Response:
        mode, dry_run = self._options(request)
        name = ((body or {}).get("metadata") or {}).get("name") if isinstance(body, dict) else None
        if not name:
            raise ApiError(422, "Invalid", f'{rtype.kind} "" is invalid: metadata.name: '
                                           "Required value: name or generateName is required")
        key = (*key[:3], name)
        self._check_body(rtype, key, body)
        if self._visible(key) is not None:
            raise ApiError(409, "AlreadyExists", f'{_what(rtype)} "{name}" already exists')
        body, warnings = self._validated(body, mode)
        new = _client_part(body)
        _record_update(None, new, self._manager(request), request[API_VERSION])
        return self._admit_and_commit(key, None, new, dry_run, warnings)

    def _replace(self, request: web.Request, rtype: ResourceType, key: Key,
                 body: Any) -> web.Response:
        mode, dry_run = self._options(request)
        self._check_body(rtype, key, body)
        existing = self._visible(key)
        if existing is None:
            raise self._not_found(rtype, key[3])
        self._check_version(rtype, key, existing, body)
        body, warnings = self._validated(body, mode)
        new = _client_part(body)
        _keep_server_part(existing, new)
        _record_update(existing, new, self._manager(request), request[API_VERSION])
        return self._admit_and_commit(key, existing, new, dry_run, warnings)

    def _patch(self, request: web.Request, rtype: ResourceType, key: Key,
               body: Any) -> web.Response:
        ctype = request.headers.get("Content-Type", "").split(";")[0].strip()
        mode, dry_run = self._options(request)
        if ctype.startswith("application/apply-patch"):
            return self._apply(request, rtype, key, body, mode, dry_run)
        if ctype in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
            return self._merge_patch(request, rtype, key, body, mode, dry_run)
        raise ApiError(415, "UnsupportedMediaType",
                       f"the body of the request was in an unknown format - this fake accepts "
                       "application/apply-patch+yaml, application/merge-patch+json, "
                       "application/strategic-merge-patch+json")

    def _apply(self, request: web.Request, rtype: ResourceType, key: Key, body: Any,
               mode: str, dry_run: bool) -> web.Response:
        if rtype.namespaced and key[2] not in self.namespaces:
            raise ApiError(404, "NotFound", f'namespaces "{key[2]}" not found')
        manager = request.query.get("fieldManager")
        if not manager:
            raise ApiError(400, "BadRequest", "PATCH for apply requires fieldManager")
        if not isinstance(body, dict) or body.get("kind") != rtype.kind:
            raise ApiError(400, "BadRequest", "the body of an apply patch must be the object")
        self._check_body(rtype, key, body)
        body, warnings = self._validated(_without_nulls(body), mode)
        existing = self._visible(key)
        self._check_version(rtype, key, existing, body)
        new = _applied(existing, body, manager, force=request.query.get("force") == "true")
        return self._admit_and_commit(key, existing, new, dry_run, warnings)

    def _merge_patch(self, request: web.Request, rtype: ResourceType, key: Key, body: Any,
                     mode: str, dry_run: bool) -> web.Response:
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "a merge patch must be a JSON object")
        existing = self._visible(key)
        if existing is None:
            raise self._not_found(rtype, key[3])
        self._check_version(rtype, key, existing, body)
        merged = _merge(copy.deepcopy(existing), _client_part(body))
        new, warnings = self._validated(merged, mode)
        _keep_server_part(existing, new)
        _record_update(existing, new, self._manager(request), request[API_VERSION])
        return self._admit_and_commit(key, existing, new, dry_run, warnings)

    def _delete(self, request: web.Request, rtype: ResourceType, key: Key,
                body: Any) -> web.Response:
        options = body if isinstance(body, dict) else {}
        dry_run = request.query.get("dryRun") == "All" or "All" in (options.get("dryRun") or [])
        obj = self._visible(key)
        if obj is None:
            raise self._not_found(rtype, key[3])
        self._admit("DELETE", obj, obj, dry_run)
        if not dry_run and not obj["metadata"].get("deletionTimestamp"):
            kinds = self.lag_kinds
            if self.delete_lag > 0 and (kinds is None or rtype.kind in kinds):
                marked = copy.deepcopy(obj)
                marked["metadata"].update(deletionTimestamp=_now(), deletionGracePeriodSeconds=0)
                self._bump(marked["metadata"])
                self.objects[key] = marked
                self._lag[key] = self.delete_lag
                self._emit("MODIFIED", marked)
            else:
                self._remove(key)
        return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Success",
                                  "details": {"name": key[3], "kind": rtype.plural}})

    # -- what the deployment controller and the sidecar injector would do, at once -------
    @staticmethod
    def _rolled_out_status(dep: dict) -> dict:
        replicas = int((dep.get("spec") or {}).get("replicas", 1))
        return {"observedGeneration": dep["metadata"]["generation"], "replicas": replicas,
                "updatedReplicas": replicas, "readyReplicas": replicas,
                "availableReplicas": replicas}

    def _replace_pods(self, dep: dict) -> None:
        meta, spec = dep["metadata"], dep.get("spec") or {}
        template = spec.get("template") or {}
        labels = dict((template.get("metadata") or {}).get("labels") or {})
        containers = [dict(c) for c in (template.get("spec") or {}).get("containers") or []]
        annotations = (template.get("metadata") or {}).get("annotations") or {}
        # the injector leaves alone a pod that opts out (the addons' pods do)
        if "false" not in (labels.get("sidecar.istio.io/inject"),
                           annotations.get("sidecar.istio.io/inject")):
            containers.append({"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.26.0"})
        ns, name = meta["namespace"], meta["name"]
        for key in [k for k in self.objects if k[:3] == ("", "pods", ns)
                    and k[3].startswith(f"{name}-")]:
            self._remove(key)
        pod_name = f"{name}-{meta['generation']:x}6f7c9b6d-x2k4p"
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": pod_name, "namespace": ns, "labels": labels,
                            "annotations": {"kubectl.kubernetes.io/default-container":
                                            containers[0]["name"]}},
               "spec": {"containers": containers},
               "status": {"phase": "Running", "hostIP": "172.18.0.2",
                          "conditions": [{"type": "Ready", "status": "True"}],
                          "containerStatuses": [{"name": c["name"], "ready": True,
                                                 "restartCount": 0, "image": c.get("image", ""),
                                                 "imageID": "", "started": True}
                                                for c in containers]}}
        self._commit(("", "pods", ns, pod_name), None, pod)

    # -- the kubelet's side: logs and exec -----------------------------------------------
    def _pod(self, ns: str, name: str, container: str) -> str:
        """The container a request on a pod means; ApiError when there is none."""
        with self._lock:
            pod = self.objects.get(("", "pods", ns, name))
            if pod is None:
                raise ApiError(404, "NotFound", f'pods "{name}" not found')
            return _pod_container(pod, name, container)

    async def _log(self, request: web.Request, ns: str, name: str) -> web.Response:
        try:
            since = _since_seconds(request.query.get("sinceSeconds"), name)
            container = self._pod(ns, name, request.query.get("container", ""))
        except ApiError as exc:
            return exc.response()
        if self.log_handler is not None:  # may read real logs: off the server's thread
            loop = asyncio.get_running_loop()
            text = await loop.run_in_executor(None, self.log_handler, ns, name, container, since)
        else:
            text = self.pod_logs.get((ns, name, container), "")
        return web.Response(text=text, content_type="text/plain")

    async def _exec(self, request: web.Request, ns: str, name: str) -> web.StreamResponse:
        try:
            container = self._pod(ns, name, request.query.get("container", ""))
        except ApiError as exc:
            return exc.response()
        if request.query.get("tty") == "true":
            return _status(400, "BadRequest", "this fake refuses a TTY: the backend must not ask")
        command = request.query.getall("command", [])
        ws = web.WebSocketResponse(protocols=("v5.channel.k8s.io", "v4.channel.k8s.io"))
        await ws.prepare(request)
        handler = self.exec_handler or (lambda *_: (b"", b"no exec handler\n", 127))
        loop = asyncio.get_running_loop()
        # in the default executor: a long command holds up no other request
        stdout, stderr, code = await loop.run_in_executor(None, handler, ns, name, container,
                                                          command)
        for channel, data in ((1, stdout), (2, stderr)):
            for i in range(0, len(data), 4096):  # several frames, like the real server
                await ws.send_bytes(bytes([channel]) + data[i:i + 4096])
        if code == 0:
            status = {"metadata": {}, "status": "Success"}
        else:
            status = {"metadata": {}, "status": "Failure",
                      "message": f"command terminated with non-zero exit code: exit code {code}",
                      "reason": "NonZeroExitCode",
                      "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}
        await ws.send_bytes(b"\x03" + json.dumps(status).encode())
        await ws.close()
        return ws


def wait_until(predicate: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    """Poll a predicate (for tests of background behaviour)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()
