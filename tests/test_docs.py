"""The project documents itself: the code points at docs/, and every pointer resolves.

``docs/architecture.md`` and ``docs/facts.md`` ship with the repository; the design notes
the project started from do not. So no file of the project may cite them (``DESIGN.md``,
``reference/...``, ``istio-semantics``, ``envoy-translation``, ``labs-*.md``,
``python-ecosystem``, ``prior-art.md``, or a bare ``§`` section mark), and every
``docs/<file>.md#<anchor>`` a file cites must be a heading of that docs file, with the
anchor GitHub gives it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
THIS = Path(__file__).resolve()

#: what is scanned: these folders (recursively) and these top-level files
SCANNED_DIRS = ("src", "steps", "features", "tests", "manifests", "scripts", "docs", ".github")
SCANNED_FILES = ("Makefile", "README.md", "conftest.py", "pyproject.toml")
_SKIPPED_PARTS = {"__pycache__", ".pytest_cache"}

#: citations of notes that live outside the repository
FORBIDDEN = {
    "DESIGN.md": re.compile(r"DESIGN\.md"),
    # "reference/..." as a path of its own; "istio.io/.../docs/reference/..." is a URL
    "reference/": re.compile(r"(?<![\w./-])reference/"),
    "istio-semantics": re.compile(r"istio-semantics"),
    "envoy-translation": re.compile(r"envoy-translation"),
    "labs-*.md": re.compile(r"(?<![\w-])labs-[\w-]*\.md"),
    "python-ecosystem": re.compile(r"python-ecosystem"),
    "prior-art.md": re.compile(r"prior-art\.md"),
    "a § section mark": re.compile("§"),
}

#: ``docs/facts.md#envoy-stats`` anywhere in a file
DOCS_CITATION = re.compile(r"docs/([\w.-]+\.md)#([\w-]+)")
#: a markdown link inside docs/: ``](facts.md#routing)`` or ``](#the-mesh-seam)``
DOCS_LINK = re.compile(r"\]\((?P<file>[\w.-]+\.md)?#(?P<anchor>[\w-]+)\)")
_HEADING = re.compile(r"^(#{1,6})\s+(?P<text>.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to '-'."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """Every heading anchor of a markdown text (a repeated heading gets ``-1``, ``-2``...);
    lines inside fenced code blocks are not headings."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    fenced = False
    for line in markdown.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        match = None if fenced else _HEADING.match(line)
        if match is None:
            continue
        anchor = github_anchor(match.group("text"))
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        found.add(anchor if count == 0 else f"{anchor}-{count}")
    return found


def project_files() -> list[Path]:
    """The text files scanned, this test module excluded."""
    paths = [ROOT / name for name in SCANNED_FILES]
    for folder in SCANNED_DIRS:
        base = ROOT / folder
        if base.is_dir():
            paths += sorted(p for p in base.rglob("*") if p.is_file())
    out = []
    for path in paths:
        relative = path.relative_to(ROOT)
        if (not path.is_file() or path.resolve() == THIS
                or _SKIPPED_PARTS & set(relative.parts)
                or any(part.endswith(".egg-info") for part in relative.parts)):
            continue
        out.append(path)
    return out


def _text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None  # a binary file cites nothing


def _lines(path: Path):
    text = _text(path)
    for number, line in enumerate((text or "").splitlines(), start=1):
        yield number, line


@pytest.fixture(scope="module")
def files() -> list[Path]:
    return project_files()


def test_the_scan_covers_the_project(files):
    scanned = {p.relative_to(ROOT).as_posix() for p in files}
    for expected in ("src/bookinfo_labs/mesh.py", "steps/common.py", "README.md", "Makefile",
                     "manifests/clients/curl.yaml", "docs/facts.md", "docs/architecture.md"):
        assert expected in scanned, f"{expected} is not scanned"
    assert THIS.relative_to(ROOT).as_posix() not in scanned


def test_no_file_cites_notes_outside_the_repository(files):
    found = []
    for path in files:
        for number, line in _lines(path):
            for what, pattern in FORBIDDEN.items():
                if pattern.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{number}: cites {what}: {line.strip()}")
    assert not found, (
        "these lines cite notes that are not in the repository; point them at "
        "docs/architecture.md or docs/facts.md (a heading anchor) instead:\n" + "\n".join(found))


def test_every_docs_anchor_the_code_cites_is_a_heading(files):
    cited = 0
    broken = []
    for path in files:
        for number, line in _lines(path):
            for name, anchor in DOCS_CITATION.findall(line):
                cited += 1
                target = DOCS / name
                if not target.is_file():
                    broken.append(f"{path.relative_to(ROOT)}:{number}: docs/{name} does not exist")
                elif anchor not in anchors(target.read_text(encoding="utf-8")):
                    broken.append(f"{path.relative_to(ROOT)}:{number}: docs/{name} has no "
                                  f"heading with the anchor #{anchor}")
    assert not broken, "\n".join(broken)
    assert cited >= 20, f"only {cited} docs/ citations found: is the scan looking in the code?"


def test_links_inside_the_docs_resolve():
    broken = []
    for page in sorted(DOCS.glob("*.md")):
        for number, line in _lines(page):
            for match in DOCS_LINK.finditer(line):
                target = DOCS / (match.group("file") or page.name)
                anchor = match.group("anchor")
                if not target.is_file():
                    broken.append(f"docs/{page.name}:{number}: {target.name} does not exist")
                elif anchor not in anchors(target.read_text(encoding="utf-8")):
                    broken.append(f"docs/{page.name}:{number}: {target.name} has no #{anchor}")
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize("heading, anchor", [
    ("The Mesh seam", "the-mesh-seam"),
    ("Refuse, never ignore", "refuse-never-ignore"),
    ("Log, nonce and stats oracles", "log-nonce-and-stats-oracles"),
    ("Kind cluster and Istio install", "kind-cluster-and-istio-install"),
    ("`proxy_stats` and stat_names", "proxy_stats-and-stat_names"),
])
def test_anchors_are_githubs(heading, anchor):
    assert github_anchor(heading) == anchor


def test_a_repeated_heading_is_numbered_and_code_blocks_have_no_headings():
    text = "# A\n## Same\n```\n# not a heading\n```\n## Same\n"
    assert anchors(text) == {"a", "same", "same-1"}


def test_the_forbidden_citations_are_found_and_urls_are_not():
    def hits(line: str) -> set[str]:
        return {what for what, pattern in FORBIDDEN.items() if pattern.search(line)}

    assert hits('see DESIGN.md "Checking behaviour"') == {"DESIGN.md"}
    assert hits("(reference/istio-semantics.md B.1)") == {"reference/", "istio-semantics"}
    assert hits("(reference §B.4)") == {"a § section mark"}
    assert hits("labs-workshop.md, 4.1") == {"labs-*.md"}
    assert not hits("the Istio API reference (istio.io/latest/docs/reference/config/)")
    assert not hits('f"@@bookinfo-labs-{token}@@"')
