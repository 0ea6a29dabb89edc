"""Shared machinery of the resource models: base classes, scalar types, errors.

Every model is a pydantic v2 model with snake_case attributes and the camelCase YAML
names as aliases. The Istio models are strict, like the API server with
``fieldValidation=Strict`` plus Istio's validating webhook: an unknown field, a wrong
type or an invalid value is an error. A pydantic ``ValidationError`` never leaves this
package; :func:`to_field_error` turns the first problem into one :class:`FieldError`
whose path reads like the YAML (``spec.http[0].route[0]``) and whose message says what
to change.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, NoReturn

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError, core_schema

#: validation context that marks input as YAML: only the camelCase names are accepted
YAML_CONTEXT = {"yaml": True}


class FieldError(ValueError):
    """One problem in a resource: where (``path``) and what to do (``message``)."""

    def __init__(self, path: str, message: str):
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


# --------------------------------------------------------------------------- errors

_ERROR_TYPE = "bookinfo_labs_invalid"


def fail(message: str, *at: str | int) -> NoReturn:
    """Reject the value being validated, optionally pointing below it (``at`` = path parts).

    Used inside validators; :func:`to_field_error` turns it into a :class:`FieldError`.
    """
    raise PydanticCustomError(_ERROR_TYPE, "{message}", {"message": message, "at": tuple(at)})


def show(value: Any) -> str:
    """A value as a learner wrote it in YAML, for error messages."""
    if value is None:
        return "null (nothing)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        return f"'{text}'"
    if isinstance(value, dict):
        keys = ", ".join(str(k) for k in list(value)[:4])
        return f"a mapping ({keys}{', ...' if len(value) > 4 else ''})" if value else "an empty mapping {}"
    if isinstance(value, (list, tuple)):
        return "a list" if value else "an empty list []"
    return f"a {type(value).__name__}"


_SIMPLE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def join_path(path: str, part: str | int) -> str:
    """Append a field name, map key or list index to a ``spec.http[0].route`` style path."""
    if isinstance(part, int):
        return f"{path}[{part}]"
    if _SIMPLE_KEY.fullmatch(part):
        return f"{path}.{part}" if path else part
    return f'{path}["{part}"]'


def format_path(parts: Sequence[str | int]) -> str:
    path = ""
    for part in parts:
        path = join_path(path, part)
    return path


def _scalar_hint(value: Any) -> str:
    if isinstance(value, bool):
        return f' (put it in quotes: "{show(value)}")'
    if isinstance(value, (int, float)):
        return f' (put it in quotes: "{value}")'
    return ""


def _describe(error: dict[str, Any]) -> tuple[list[str | int], str]:
    loc: list[str | int] = [p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
    kind = error["type"]
    value = error.get("input")
    ctx = error.get("ctx") or {}
    if kind == _ERROR_TYPE:
        return loc + list(ctx.get("at", ())), ctx["message"]
    if loc and loc[-1] == "[key]":
        loc.pop()
        key = loc.pop() if loc else value
        return loc, f"invalid key {show(key)}: {_describe({**error, 'loc': ()})[1]}"
    if kind == "missing":
        field = loc.pop() if loc else "?"
        return loc, f"required field '{field}' is missing"
    if kind == "extra_forbidden":
        field = loc.pop() if loc else "?"
        return loc, f"unknown field '{field}'"
    if kind in ("int_type", "int_parsing", "int_from_float", "int_parsing_size"):
        hint = " (remove the quotes)" if isinstance(value, str) and value.strip().isdigit() else ""
        return loc, f"expected an integer, got {show(value)}{hint}"
    if kind in ("float_type", "float_parsing", "finite_number"):
        hint = " (remove the quotes)" if isinstance(value, str) and re.fullmatch(r"\s*[0-9.]+\s*", value) else ""
        return loc, f"expected a number, got {show(value)}{hint}"
    if kind in ("string_type", "string_unicode"):
        return loc, f"expected a string, got {show(value)}{_scalar_hint(value)}"
    if kind in ("bool_type", "bool_parsing"):
        return loc, f"expected true or false, got {show(value)}"
    if kind in ("dict_type", "model_type", "model_attributes_type", "dataclass_type", "mapping_type"):
        return loc, f"expected a mapping (key: value pairs), got {show(value)}"
    if kind in ("list_type", "tuple_type", "set_type", "iterable_type"):
        return loc, (f"expected a list, got {show(value)} "
                     "(write each item on its own line, starting with '- ')")
    if kind == "literal_error":
        return loc, f"invalid value {show(value)} (expected one of {ctx.get('expected')})"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        return loc, f"{error['msg'].lower()}, got {show(value)}"
    if kind == "value_error":
        return loc, str(ctx.get("error", error["msg"]))
    return loc, error["msg"]


def to_field_error(exc: ValidationError, prefix: Sequence[str | int] = ()) -> FieldError:
    """The first problem of a pydantic ``ValidationError`` as one :class:`FieldError`."""
    errors = exc.errors(include_url=False)
    loc, message = _describe(errors[0])
    return FieldError(format_path([*prefix, *loc]), message)


# --------------------------------------------------------------------------- base models


def suggest(word: Any, choices: Sequence[str]) -> str | None:
    """The closest allowed name to a misspelt one, or None."""
    if not isinstance(word, str):
        return None
    lower = {c.lower(): c for c in choices}
    if word.lower() in lower:
        return lower[word.lower()]
    camel = to_camel(word)
    if camel in choices:
        return camel
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if not close:
        close = difflib.get_close_matches(word.lower(), list(lower), n=1, cutoff=0.6)
        close = [lower[c] for c in close]
    return close[0] if close else None


def unknown_field_message(key: Any, allowed: Sequence[str]) -> str:
    name = f"'{key}'" if isinstance(key, str) else show(key)
    close = suggest(key, allowed)
    if close:
        return f"unknown field {name} (did you mean '{close}'?)"
    return f"unknown field {name} (allowed here: {', '.join(allowed)})"


class IstioModel(BaseModel):
    """Base of every Istio API object: strict types, unknown fields are errors.

    YAML input (validated with :data:`YAML_CONTEXT`) must use the camelCase names;
    Python code may also pass the snake_case attribute names.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        serialize_by_alias=True,
        extra="forbid",
        strict=True,
        validate_default=False,
    )

    #: False for the Kubernetes kinds, which ignore fields the emulator does not read
    _reject_unknown: ClassVar[bool] = True
    #: old spellings a CRD still lists beside the camelCase name (the proto field name,
    #: e.g. ``mirror_percent`` beside ``mirrorPercent``): YAML key -> attribute name. The
    #: value is read into that attribute, so paths name the field by its camelCase alias.
    _legacy_keys: ClassVar[dict[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _screen_keys(cls, data: Any, info: ValidationInfo) -> Any:
        """Reject unknown (misspelt) fields with a suggestion; treat ``null`` as absent."""
        if not isinstance(data, dict):
            return data
        fields = cls.model_fields
        by_alias = {(f.alias or name): name for name, f in fields.items()}
        yaml_only = bool(info.context and info.context.get("yaml"))
        cleaned = {}
        for key, value in data.items():
            name = by_alias.get(key) if isinstance(key, str) else None
            if name is None and not yaml_only and isinstance(key, str) and key in fields:
                name = key
            if name is None and key in cls._legacy_keys:
                name = cls._legacy_keys[key]
                alias = fields[name].alias or name
                if alias in data or (not yaml_only and name in data):
                    fail(f"set only one of {alias} or {key} (the same field, spelt two ways)")
                key = alias
            if name is None:
                if cls._reject_unknown:
                    fail(unknown_field_message(key, list(by_alias)))
                continue  # ignored field of a built-in Kubernetes kind
            if value is None:
                # Kubernetes treats an explicit null like an absent field
                if fields[name].is_required():
                    fail(f"required field '{fields[name].alias or name}' has no value")
                continue
            cleaned[key] = value
        return cleaned


class KubeModel(IstioModel):
    """Base of the built-in Kubernetes kinds (Service, Deployment, ...).

    The labs apply the stock sample YAML of Istio and Kubernetes, which uses many fields
    the local emulator never reads (probes, resources, securityContext, volumes ...).
    Modelling the whole Kubernetes API would add nothing: on a real cluster the API
    server itself validates these kinds (the kube backend applies with
    ``fieldValidation=Strict``), and locally only the fields modelled here matter. So
    unknown fields of these kinds are ignored, while the modelled ones are type-checked.
    """

    model_config = ConfigDict(extra="ignore")
    _reject_unknown: ClassVar[bool] = False


# --------------------------------------------------------------------------- scalar types


def _range(lo: float | None = None, hi: float | None = None, what: str = "",
           type_name: str = "") -> AfterValidator:
    """Refuse a value outside ``lo..hi``; ``type_name`` (``int32``...) is named when the
    upper bound is the type's, so a learner sees why a big number is too big."""
    def check(value: Any) -> Any:
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            label = f"{what} " if what else ""
            if lo == 0 and value < 0 and (hi is None or type_name):
                fail(f"{label}must not be negative, got {show(value)}")
            if hi is None:
                fail(f"{label}must be at least {lo:g}, got {show(value)}")
            kind = f" ({_article(type_name)} {type_name})" if type_name else ""
            fail(f"{label}must be between {_number(lo)} and {_number(hi)}{kind}, got {show(value)}")
        return value

    return AfterValidator(check)


def _number(value: float | None) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


# The integer types of Istio's API (and Kubernetes'), as the CRDs give them
# (manifests/charts/base/files/crd-all.gen.yaml, 1.26.0): "format: int32" for a proto
# int32; "minimum: 0, maximum: 4294967295" for a uint32 or UInt32Value; "minimum: 0" alone
# for a uint64. Istio's webhook decodes the spec into these proto types
# (pilot/pkg/config/kube/crd/conversion.go ConvertObject, 1.26.0), so a value out of the
# type's range is refused, e.g. "weight: 99999999999999999999". Every integer field of the
# models is one of these (or narrower, like PortNumber); tests/test_istio_integer_ranges.py
# checks that none is unbounded.
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
UINT32_MAX = 2**32 - 1
UINT64_MAX = 2**64 - 1
#: a proto int32 (``priority``)
Int32 = Annotated[int, _range(INT32_MIN, INT32_MAX, type_name="int32")]
#: a proto int32 that Istio's webhook requires to be >= 0 (``weight``: validateWeight,
#: ``attempts``: validateHTTPRetry, the connection pool limits: validateConnectionPool)
NonNegativeInt32 = Annotated[int, _range(0, INT32_MAX, type_name="int32")]
#: a proto uint32 or UInt32Value
UInt32 = Annotated[int, _range(0, UINT32_MAX, type_name="uint32")]
#: a proto uint64
UInt64 = Annotated[int, _range(0, UINT64_MAX, type_name="uint64")]
#: a TCP/UDP port number
PortNumber = Annotated[int, _range(1, 65535, "a port number")]
#: a percentage, 0..100
PercentValue = Annotated[float, _range(0, 100, "a percentage")]


def _http_status(value: int) -> int:
    if not 200 <= value <= 600:  # istio's validateHTTPStatus accepts 200..600
        fail(f"HTTP status {value} is not in range 200-599")
    return value


#: an HTTP status code
HTTPStatus = Annotated[int, AfterValidator(_http_status)]


def Enum(*values: str, case_insensitive: bool = False) -> Any:  # noqa: N802 (a type factory)
    """A string restricted to ``values``, with a message listing them and a suggestion."""
    lowered = {v.lower(): v for v in values}

    def check(value: Any) -> Any:
        if isinstance(value, str):
            if value in values or (case_insensitive and value.lower() in lowered):
                return value
            close = suggest(value, values)
            hint = ""
            if close and close.lower() == value.lower():
                hint = f"values are case-sensitive: did you mean '{close}'? "
            elif close:
                hint = f"did you mean '{close}'? "
            fail(f"invalid value {show(value)} ({hint}expected one of {', '.join(values)})")
        fail(f"expected one of {', '.join(values)}, got {show(value)}")

    if case_insensitive:
        return Annotated[str, BeforeValidator(check)]
    return Annotated[Literal[values], BeforeValidator(check)]  # type: ignore[valid-type]


# --------------------------------------------------------------------------- Duration

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True)
class Duration:
    """A duration as written in the YAML (Go/protobuf syntax: ``7s``, ``0.5s``, ``100ms``,
    ``1m``, ``1h30m``), keeping the text and exposing ``seconds``."""

    text: str
    seconds: float

    @classmethod
    def parse(cls, text: str) -> Duration:
        """Parse Go duration syntax; raise ValueError with a learner-facing message."""
        raw = text.strip()
        sign = ""
        if raw[:1] in ("+", "-"):
            sign, raw = raw[0], raw[1:]
        if raw == "0":
            return cls(text, 0.0)
        pos, total = 0, 0.0
        while pos < len(raw):
            match = _DURATION_PART.match(raw, pos)
            if not match:
                raise ValueError(f"invalid duration {show(text)} (use e.g. 7s, 0.5s, 100ms)")
            total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
            pos = match.end()
        if not raw:
            raise ValueError(f"invalid duration {show(text)} (use e.g. 7s, 0.5s, 100ms)")
        if sign == "-" and total > 0:
            raise ValueError(f"invalid duration {show(text)}: a duration cannot be negative")
        return cls(text, total)

    @property
    def milliseconds(self) -> float:
        return self.seconds * 1000.0

    def __str__(self) -> str:
        return self.text

    @classmethod
    def _validate(cls, value: Any) -> Duration:
        if isinstance(value, Duration):
            return value
        if isinstance(value, str):
            try:
                return cls.parse(value)
            except ValueError as exc:
                fail(str(exc))
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            fail(f"invalid duration {show(value)}: a duration needs a unit "
                 f"(write e.g. {value:g}s, 0.5s, 100ms)")
        fail(f"expected a duration such as 7s, 0.5s or 100ms, got {show(value)}")

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls._validate,
            serialization=core_schema.plain_serializer_function_ser_schema(lambda d: d.text),
        )


def _at_least_1ms(value: Duration) -> Duration:
    # the CRD rule duration(self) >= duration('1ms') (crd-all.gen.yaml, 1.23.0 and later)
    if value.seconds < 0.001 - 1e-12:
        fail(f"must be a valid duration greater than 1ms, got {show(value.text)}")
    return value


#: a duration the CRD requires to be at least 1ms, without the webhook's whole-millisecond
#: rule (``warmupDurationSecs``, Telemetry ``reportingInterval``)
AtLeast1msDuration = Annotated[Duration, AfterValidator(_at_least_1ms)]


# --------------------------------------------------------------------------- shared messages


class Percent(IstioModel):
    """``percentage: {value: 50}``: a double between 0 and 100."""

    value: PercentValue = 0.0

    @property
    def fraction(self) -> float:
        """The percentage as a fraction, 0..1."""
        return self.value / 100.0


_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")


def is_dns1123_label(name: str) -> bool:
    return len(name) <= 63 and bool(_DNS1123_LABEL.fullmatch(name))


def is_dns1123_subdomain(name: str) -> bool:
    return len(name) <= 253 and all(_DNS1123_LABEL.fullmatch(part) for part in name.split("."))


def is_dns1035_label(name: str) -> bool:
    return len(name) <= 63 and bool(_DNS1035_LABEL.fullmatch(name))


DNS1123_SUBDOMAIN_RULE = ("lowercase letters, digits, '-' and '.', starting and ending with a "
                          "letter or digit, at most 253 characters")
DNS1123_LABEL_RULE = ("lowercase letters, digits and '-', starting and ending with a letter "
                      "or digit, at most 63 characters")
DNS1035_LABEL_RULE = ("lowercase letters, digits and '-', starting with a letter and ending "
                      "with a letter or digit, at most 63 characters")


def _check_name(value: str) -> str:
    if not is_dns1123_subdomain(value):
        fail(f"invalid name {show(value)}: use {DNS1123_SUBDOMAIN_RULE}")
    return value


def _check_namespace(value: str) -> str:
    if not is_dns1123_label(value):
        fail(f"invalid namespace {show(value)}: use {DNS1123_LABEL_RULE}")
    return value


class ObjectMeta(IstioModel):
    """``metadata``. Also accepts the fields the API server adds, so that the output of
    ``kubectl get -o yaml`` parses (they are kept but never interpreted)."""

    name: Annotated[str, AfterValidator(_check_name)]
    namespace: Annotated[str, AfterValidator(_check_namespace)] | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    # server-populated / rarely written fields, tolerated as they are
    generate_name: str | None = None
    uid: Any = None
    resource_version: Any = None
    generation: Any = None
    creation_timestamp: Any = None
    deletion_timestamp: Any = None
    deletion_grace_period_seconds: Any = None
    self_link: Any = None
    managed_fields: Any = None
    owner_references: Any = None
    finalizers: Any = None


class PolicySelector(IstioModel):
    """``selector: {matchLabels: ...}`` of security and telemetry policies
    (istio.type.v1beta1.WorkloadSelector)."""

    match_labels: dict[str, str] = Field(default_factory=dict)


class PolicyTargetReference(IstioModel):
    """``targetRef`` / ``targetRefs[]``: a Gateway API resource a policy attaches to."""

    group: str | None = None
    kind: str
    name: str
    namespace: str | None = None


class Resource(IstioModel):
    """A whole Kubernetes object: apiVersion, kind, metadata (and spec in subclasses)."""

    api_version: str
    kind: str
    metadata: ObjectMeta
    #: written by the control plane; tolerated so ``kubectl get -o yaml`` output parses
    status: Any = None

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str | None:
        return self.metadata.namespace

    @property
    def group(self) -> str:
        """The API group: ``networking.istio.io``, ``apps``, or ``""`` for the core group."""
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]


# --------------------------------------------------------------------------- walking


def iter_set_fields(model: BaseModel, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Yield ``(path, value)`` for every field the YAML actually set, depth first.

    Paths use the YAML (camelCase) names: ``spec.http[0].fault.delay.fixedDelay``.
    Map entries whose values are objects are walked with the key as a path part
    (``spec.http[0].match[0].headers.end-user.exact``; keys with other characters than
    letters, digits, '-' and '_' are written ``labels["app.kubernetes.io/name"]``).
    List items and map entries are not yielded themselves, only their fields; the list
    or map is yielded as the value of its field.
    """
    for name, field in type(model).model_fields.items():
        if name not in model.model_fields_set:
            continue
        path = join_path(prefix, field.alias or name)
        value = getattr(model, name)
        yield path, value
        yield from _iter_nested(value, path)


def _iter_nested(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, BaseModel):
        yield from iter_set_fields(value, path)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, (BaseModel, list, dict)):
                yield from _iter_nested(item, join_path(path, index))
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, BaseModel):
                yield from iter_set_fields(item, join_path(path, key if isinstance(key, str) else str(key)))
