"""How a failed scenario reads: the message first and alone, then only what bears on it.

A lab fails for one of a few reasons the tool itself has put into words: a manifest it
refused (``ManifestError``), a mesh that cannot do what was asked (``MeshError``), a check
that did not hold (``AssertionError``, ``EventuallyError``), a step nobody wrote. For those
the words are the report; pytest's traceback through fixtures and pytest-bdd internals only
buries them. Any other exception is a bug in the tool, and keeps its traceback.
"""

from __future__ import annotations

from .checks.eventually import EventuallyError
from .manifests import ManifestError
from .mesh import MeshError

try:  # pytest-bdd's own error for a step no definition matches
    from pytest_bdd.exceptions import StepDefinitionNotFoundError
except ImportError:  # pragma: no cover - a pytest-bdd without it
    StepDefinitionNotFoundError = LookupError  # type: ignore[misc,assignment]

#: failures whose message says everything
TOLD = (ManifestError, MeshError, AssertionError, StepDefinitionNotFoundError)
#: failures before anything reached the mesh: diagnostics of the mesh would be noise
NOTHING_APPLIED = (ManifestError, StepDefinitionNotFoundError)


def is_told(exc: BaseException) -> bool:
    return isinstance(exc, TOLD)


def failure_text(exc: BaseException, step: str | None = None, hint: str | None = None) -> str:
    """The failure as a person reads it: which step, then the message."""
    lines = [f"Failed at: {step}"] if step else []
    lines.append(hint or str(exc).strip() or type(exc).__name__)
    return "\n".join(lines)


def reason(exc: BaseException) -> str:
    """One line for the lab report: what was wrong, in the check's own words."""
    if isinstance(exc, EventuallyError):
        text = exc.last
    elif is_told(exc):
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}"
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return first or type(exc).__name__
