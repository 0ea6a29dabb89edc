"""What the installed package holds and needs (issue #8, point 9): no test doubles, and no
dependency that only the tests use."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "bookinfo_labs"


def test_the_fake_api_server_is_a_test_double_outside_the_package():
    assert importlib.util.find_spec("bookinfo_labs.kube.fakeapi") is None
    assert (ROOT / "tests" / "fakeapi.py").is_file()
    importing = [str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*.py")
                 if re.search(r"^\s*(from|import)\s+\S*fakeapi", p.read_text(), re.M)]
    assert importing == []


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower()


def test_check_jsonschema_is_a_test_extra_not_a_runtime_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "check-jsonschema" not in [_name(r) for r in project["dependencies"]]
    assert "check-jsonschema" in [_name(r) for r in project["optional-dependencies"]["test"]]
