"""Charts as inline SVG, drawn on the server (no script, no chart library, nothing fetched).

Each chart is an ``<svg role="img">`` with a title naming what it shows, so a
screen reader hears the chart's point; the numbers are in a table beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from stream_app.serve.dashboard.html import Html, esc

WIDTH, HEIGHT = 640, 220
PAD_LEFT, PAD_BOTTOM, PAD_TOP, PAD_RIGHT = 48, 28, 12, 12


def _frame(label: str, inner: str, width: int = WIDTH, height: int = HEIGHT) -> Html:
    return Html(
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" '
        f'aria-label="{esc(label)}"><title>{esc(label)}</title>{inner}</svg>'
    )


def bars(label: str, items: Sequence[tuple[str, float]], *, series: str = "a") -> Html:
    """Vertical bars, one per (label, value), the value written above each."""
    top = max((v for _, v in items), default=0) or 1
    plot_w, plot_h = WIDTH - PAD_LEFT - PAD_RIGHT, HEIGHT - PAD_BOTTOM - PAD_TOP
    step = plot_w / max(len(items), 1)
    out = [_axis(top, plot_h)]
    for i, (name, value) in enumerate(items):
        h = plot_h * max(value, 0) / top
        x = PAD_LEFT + i * step + step * 0.15
        y = PAD_TOP + plot_h - h
        out.append(
            f'<rect class="bar {series}" x="{x:.1f}" y="{y:.1f}" width="{step * 0.7:.1f}" '
            f'height="{h:.1f}"><title>{esc(name)}: {value:g}</title></rect>'
            f'<text x="{x + step * 0.35:.1f}" y="{y - 3:.1f}" class="val">{value:g}</text>'
            f'<text x="{x + step * 0.35:.1f}" y="{HEIGHT - 10}" class="lbl">{esc(name)}</text>'
        )
    return _frame(label, "".join(out))


def paired_bars(
    label: str, items: Sequence[tuple[str, float, float]], names: tuple[str, str]
) -> Html:
    """Two bars per label (e.g. MQLs and SQLs of a week), with a legend."""
    top = max((max(a, b) for _, a, b in items), default=0) or 1
    plot_w, plot_h = WIDTH - PAD_LEFT - PAD_RIGHT, HEIGHT - PAD_BOTTOM - PAD_TOP
    step = plot_w / max(len(items), 1)
    out = [_axis(top, plot_h)]
    for i, (name, a, b) in enumerate(items):
        for j, (value, cls) in enumerate(((a, "a"), (b, "b"))):
            h = plot_h * value / top
            x = PAD_LEFT + i * step + step * (0.1 + 0.4 * j)
            out.append(
                f'<rect class="bar {cls}" x="{x:.1f}" y="{PAD_TOP + plot_h - h:.1f}" '
                f'width="{step * 0.38:.1f}" height="{h:.1f}">'
                f"<title>{esc(name)}: {value:g} {esc(names[j])}</title></rect>"
            )
        out.append(
            f'<text x="{PAD_LEFT + i * step + step / 2:.1f}" y="{HEIGHT - 10}" class="lbl">'
            f"{esc(name)}</text>"
        )
    out.append(
        f'<rect class="bar a" x="{WIDTH - 150}" y="4" width="10" height="10"/>'
        f'<text x="{WIDTH - 136}" y="13" class="legend">{esc(names[0])}</text>'
        f'<rect class="bar b" x="{WIDTH - 80}" y="4" width="10" height="10"/>'
        f'<text x="{WIDTH - 66}" y="13" class="legend">{esc(names[1])}</text>'
    )
    return _frame(label, "".join(out))


def _axis(top: float, plot_h: float) -> str:
    return (
        f'<line class="axis" x1="{PAD_LEFT}" y1="{PAD_TOP + plot_h}" x2="{WIDTH - PAD_RIGHT}" '
        f'y2="{PAD_TOP + plot_h}"/><text class="tick" x="{PAD_LEFT - 6}" y="{PAD_TOP + 8}">'
        f"{top:g}</text>"
        f'<text class="tick" x="{PAD_LEFT - 6}" y="{PAD_TOP + plot_h}">0</text>'
    )


@dataclass(frozen=True)
class Line:
    """A horizontal line across a time chart (the MQL or SQL line)."""

    value: float
    name: str


@dataclass(frozen=True)
class Mark:
    """A point in time marked on the chart (a transition)."""

    t: float
    value: float
    name: str


def timeline(
    label: str,
    points: Sequence[tuple[float, float]],
    lines: Sequence[Line],
    marks: Sequence[Mark],
    projected: Sequence[tuple[float, float]] = (),
) -> Html:
    """A score over time: the points as a line, the stage lines, marks, and a dashed projection."""
    everything = [*points, *projected, *((m.t, m.value) for m in marks)]
    if not everything:
        return _frame(label, '<text x="20" y="40" class="lbl">no score history yet</text>')
    t0 = min(t for t, _ in everything)
    t1 = max(t for t, _ in everything)
    span = (t1 - t0) or 1.0
    low = min(0.0, *(v for _, v in everything))
    high = max([*(v for _, v in everything), *(line.value for line in lines)]) * 1.1 or 1.0
    plot_w, plot_h = WIDTH - PAD_LEFT - PAD_RIGHT, HEIGHT - PAD_BOTTOM - PAD_TOP

    def x(t: float) -> float:
        return PAD_LEFT + plot_w * (t - t0) / span

    def y(v: float) -> float:
        return PAD_TOP + plot_h * (1 - (v - low) / ((high - low) or 1))

    out = [
        f'<line class="axis" x1="{PAD_LEFT}" y1="{y(low):.1f}" x2="{WIDTH - PAD_RIGHT}" '
        f'y2="{y(low):.1f}"/><text class="tick" x="{PAD_LEFT - 6}" y="{y(high) + 8:.1f}">'
        f"{high:.0f}</text>"
    ]
    for t, anchor in ((t0, "start"), (t1, "end")):
        day = datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d")
        out.append(f'<text class="tick t-{anchor}" x="{x(t):.1f}" y="{HEIGHT - 8}">{day}</text>')
    for line in lines:
        out.append(
            f'<line class="stage-line" x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" '
            f'y1="{y(line.value):.1f}" y2="{y(line.value):.1f}"/>'
            f'<text class="line-name" x="{WIDTH - PAD_RIGHT - 4}" y="{y(line.value) - 3:.1f}">'
            f"{esc(line.name)} {line.value:g}</text>"
        )
    if points:
        path = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in points)
        out.append(f'<polyline class="score" points="{path}"/>')
    if projected:
        path = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in projected)
        out.append(f'<polyline class="projected" points="{path}"/>')
    for mark in marks:
        out.append(
            f'<circle class="mark" cx="{x(mark.t):.1f}" cy="{y(mark.value):.1f}" r="5">'
            f"<title>{esc(mark.name)}</title></circle>"
        )
    return _frame(label, "".join(out))
