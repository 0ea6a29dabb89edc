"""The lab report's pictures, drawn by matplotlib from what the checks recorded.

``Lab.record_figure`` keeps plain dicts in the lab report; each kind here turns one into a
PNG: a split check's observed versus expected shares with its acceptance band, a latency
check's answer times with its band, a run's service graph. matplotlib is imported here
only, and this module only when the page has a figure to draw, so a run without figures
pays nothing for it. Drawing goes through the Agg canvas of a ``Figure`` of its own, never
pyplot: no global state, no GUI backend chosen from the environment.

A figure whose data cannot be drawn raises ``FigureError`` saying what is wrong; the page
shows that message in the figure's place.
"""

from __future__ import annotations

import io
from typing import Any, Callable

__all__ = ["FigureError", "KINDS", "draw"]

_DPI = 100
_OK, _FAIL, _BAND, _EXPECTED, _MUTED = "#2e7d32", "#c62828", "#90caf9", "#0d47a1", "#9e9e9e"


class FigureError(ValueError):
    """Recorded data a figure cannot be drawn from (what is missing or wrong)."""


def draw(figure: dict[str, Any]) -> bytes:
    """The PNG of one recorded figure; ``FigureError`` when its data does not fit its kind."""
    kind = figure.get("kind")
    painter = KINDS.get(kind)
    if painter is None:
        raise FigureError(f"no drawing for figures of kind {kind!r} (known: {', '.join(KINDS)})")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 3.4), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    painter(fig, figure)
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


def _field(figure: dict, name: str, kind: type | tuple[type, ...]) -> Any:
    value = figure.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise FigureError(f"a {figure.get('kind')} figure needs {name!r}, got {value!r}")
    return value


# -- a split check ------------------------------------------------------------------------

def _split(fig, figure: dict) -> None:
    """Per category: the observed share as a bar (green where a look at this many requests
    passes, red where not), the expected share as a dark tick, the counts a look passes
    (the acceptance band at the test's last look) as a shaded span. The title gives the
    verdict, the requests and the looks of the sequential test (checks/sequential.py)."""
    categories = _field(figure, "categories", list)
    n = _field(figure, "requests", int)
    if not categories or n <= 0:
        raise FigureError(f"a split figure needs categories and requests > 0, got "
                          f"{len(categories)} categories, requests={n}")
    ax = fig.add_subplot()
    for i, category in enumerate(categories):
        try:
            lo, hi = category["accepted"]
            observed, expected = category["observed"], float(category["expected_share"])
            str(category["name"])
        except (KeyError, TypeError, ValueError) as exc:
            raise FigureError(f"split category {i} needs name, observed, expected_share and "
                              f"accepted [lo, hi]: {category!r}") from exc
        inside = lo <= observed <= hi
        ax.bar(i, observed / n, width=0.5, color=_OK if inside else _FAIL, zorder=2,
               label="observed share" if i == 0 else None)
        if lo <= hi:  # lo > hi: no count passes at this many requests (the test went on)
            ax.bar(i, max(hi - lo, n * 0.004) / n, bottom=lo / n, width=0.8, color=_BAND,
                   alpha=0.6, zorder=1, label="acceptance band" if i == 0 else None)
        ax.hlines(expected, i - 0.4, i + 0.4, colors=_EXPECTED, linewidth=2.5, zorder=3,
                  label="expected share" if i == 0 else None)
        ax.annotate(f"{observed}", (i, observed / n), xytext=(0, 3), textcoords="offset points",
                    ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(categories)), [str(c["name"]) for c in categories])
    ax.set_ylim(0, 1.08)
    ax.yaxis.set_major_formatter(lambda y, _: f"{y:.0%}")
    looks = figure.get("looks")
    ax.set_ylabel(f"share of {n} requests")
    ax.grid(axis="y", alpha=0.3, zorder=0)
    ax.legend(loc="upper right", fontsize=8)
    verdict = figure.get("verdict")
    detail = ", ".join(part for part in (
        f"{verdict}" if verdict else "",
        f"{n} requests in {looks} looks" if looks else "") if part)
    ax.set_title(str(figure.get("title", "split")) + (f"\n({detail})" if detail else ""),
                 fontsize=10)


# -- a latency check ----------------------------------------------------------------------

def _latency(fig, figure: dict) -> None:
    """A histogram of the answers' times, the band [low, high] shaded, times outside it red."""
    samples = _field(figure, "samples_s", list)
    band = _field(figure, "band_s", list)
    if not samples or len(band) != 2 or not all(isinstance(s, (int, float)) for s in samples):
        raise FigureError(f"a latency figure needs samples_s (numbers) and band_s [low, high], "
                          f"got {len(samples)} samples, band {band!r}")
    low, high = float(band[0]), float(band[1])
    ax = fig.add_subplot()
    # The band and every sample, with a margin: a 2 s band drawn from 0 would squeeze the
    # samples into a sliver. Bins a fortieth of that, to tell a sample from the band's edge.
    first, last = min(low, min(samples)), max(high, max(samples))
    pad = max((last - first) * 0.25, 0.01)
    start, top = max(0.0, first - pad), last + pad
    width = (top - start) / 40
    edges = [start + k * width for k in range(41)]
    inside = [s for s in samples if low <= s <= high]
    outside = [s for s in samples if not low <= s <= high]
    ax.axvspan(low, high, color=_BAND, alpha=0.5, label=f"band {low:g} to {high:g} s")
    ax.hist([inside, outside], bins=edges, stacked=True, color=[_OK, _FAIL],
            label=["inside the band", "outside the band"])
    ax.set_xlim(start, top)
    ax.set_xlabel("time to the answer (s)")
    ax.set_ylabel("answers")
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.legend(loc="best", fontsize=8)
    ax.set_title(str(figure.get("title", "latency")), fontsize=10)


# -- the service graph --------------------------------------------------------------------

def _graph(fig, figure: dict) -> None:
    """Workloads as boxes in layers (callers left of callees), one arrow per edge labelled
    with its requests and error share; red where errors were seen, dashed where no request
    went."""
    edges = _field(figure, "edges", list)
    if not edges:
        raise FigureError("a graph figure needs edges, got none")
    arrows = []
    for i, edge in enumerate(edges):
        try:
            source, destination = str(edge["source"]), str(edge["destination"])
            requests, error_share = float(edge["requests"]), float(edge.get("error_share") or 0)
        except (KeyError, TypeError, ValueError) as exc:
            raise FigureError(f"graph edge {i} needs source, destination, requests "
                              f"(and error_share): {edge!r}") from exc
        arrows.append((_node(source, edge.get("source_version")),
                       _node(destination, edge.get("version")), requests, error_share))
    arrows = _merge_callers(arrows)
    place = _layers(arrows)
    columns = max(x for x, _ in place.values()) + 1
    rows = max(y for _, y in place.values()) + 1
    fig.set_size_inches(max(6.4, 2.3 * columns), max(3.4, 0.75 * rows + 1.2))
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_xlim(-0.6, columns - 0.4)
    ax.set_ylim(-0.7, rows - 0.3)
    ax.invert_yaxis()
    boxes = {name: ax.text(x, y, name, ha="center", va="center", fontsize=8, zorder=2,
                           bbox=dict(boxstyle="round,pad=0.4", facecolor="#e3f2fd",
                                     edgecolor=_EXPECTED))
             for name, (x, y) in place.items()}
    for source, target, requests, error_share in arrows:
        colour = _FAIL if error_share > 0 else (_MUTED if requests == 0 else _EXPECTED)
        # From the caller's box to the callee's, each arrow's ends clipped at the boxes.
        ax.annotate("", xy=place[target], xytext=place[source], zorder=1,
                    arrowprops=dict(arrowstyle="-|>", color=colour, shrinkA=2, shrinkB=2,
                                    patchA=boxes[source].get_bbox_patch(),
                                    patchB=boxes[target].get_bbox_patch(),
                                    linestyle="--" if requests == 0 else "-",
                                    linewidth=1 + 2 * (requests > 0)))
        (x0, y0), (x1, y1) = place[source], place[target]
        label = f"{requests:g} req" + (f", {error_share:.0%} errors" if error_share else "")
        # Nearer the callee than the caller: arrows fanning out of one box part there.
        ax.text(x0 + 0.6 * (x1 - x0), y0 + 0.6 * (y1 - y0), label, ha="center",
                va="center", fontsize=7, color=colour, zorder=3,
                bbox=dict(boxstyle="round,pad=0.15", facecolor="white", edgecolor="none"))
    ax.set_title(str(figure.get("title", "service graph")), fontsize=10)


def _node(workload: str, version: object) -> str:
    """A box, named as Kiali names workloads: ``reviews-v2`` (given as ``reviews`` with
    version ``v2``, or as ``reviews-v2`` already); a workload without a version label
    (Istio's ``unknown``) is its name alone."""
    version = str(version or "")
    if version in ("", "unknown") or workload.endswith(f"-{version}"):
        return workload
    return f"{workload}-{version}"


def _merge_callers(arrows: list[tuple[str, str, float, float]]) -> list[tuple[str, str, float, float]]:
    """A caller named by its app alone (``productpage``) is the box of that app's one
    version when exactly one version of it is called (``productpage-v1``)."""
    targets = {target for _, target, _, _ in arrows}

    def box(name: str) -> str:
        if name in targets:
            return name
        versions = [t for t in targets if t.rsplit("-", 1)[0] == name]
        return versions[0] if len(versions) == 1 else name

    return [(box(source), target, requests, errors) for source, target, requests, errors in arrows]


def _layers(arrows: list[tuple[str, str, float, float]]) -> dict[str, tuple[float, float]]:
    """Each box's (column, row): a box's column is its longest call chain from a caller
    nobody calls (cycles cut), rows in order of first appearance."""
    names: list[str] = []
    for source, target, _, _ in arrows:
        names += [n for n in (source, target) if n not in names]
    callees: dict[str, list[str]] = {n: [] for n in names}
    for source, target, _, _ in arrows:
        callees[source].append(target)
    depth = {n: 0 for n in names}
    for _ in names:  # longest paths by relaxation; |names| rounds settle any DAG
        for source, target, _, _ in arrows:
            if source != target and depth[target] < depth[source] + 1 <= len(names):
                depth[target] = depth[source] + 1
    columns: dict[int, list[str]] = {}
    for n in names:
        columns.setdefault(depth[n], []).append(n)
    used = sorted(columns)
    place = {}
    for x, column in enumerate(used):
        members = columns[column]
        tallest = max(len(c) for c in columns.values())
        offset = (tallest - len(members)) / 2
        for y, n in enumerate(members):
            place[n] = (float(x), y + offset)
    return place


KINDS: dict[str, Callable[[Any, dict], None]] = {
    "split": _split,
    "latency": _latency,
    "graph": _graph,
}
