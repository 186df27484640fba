"""A report's charts: hours by month, by co-production form and by service area, and the
wrong-pocket matrix (who funds, whose budget benefits). Pure: report in, SVG text or PNG out.

Drawn with matplotlib's object API (`Figure`, no pyplot, no display), so it runs headless with
no GUI backend; a lock keeps one chart at a time under the style it is drawn with. The same
report draws the same bytes: SVG ids are salted with a fixed string and no date is written. A
chart whose data is absent or empty is left out, so a report with no lenses draws no matrix.
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import matplotlib
from matplotlib.figure import Figure
from matplotlib.typing import RcKeyType

DPI = 150
# a fixed salt for SVG ids, text as text (searchable, small), and no date or creator written
STYLE: dict[RcKeyType, Any] = {"svg.hashsalt": "timebank", "svg.fonttype": "none", "font.size": 9}
METADATA: dict[str, Any] = {"Date": None, "Creator": None, "Format": None, "Type": None}
BAR = "#2f6690"
_LOCK = threading.Lock()  # matplotlib's rc settings are global: one chart drawn at a time
_REF = re.compile(r'((?:\bid="|href="#|url\(#))([A-Za-z0-9_.:-]+)')


@dataclass(frozen=True, slots=True)
class Chart:
    """One chart: a name (for ids and files), a title, a sentence saying what it shows (for
    screen readers), and how to draw it."""

    name: str
    title: str
    description: str
    draw: Callable[[], Figure]

    def svg(self) -> str:
        """The chart as an SVG document, ready to inline in HTML: no XML prolog or doctype,
        and every id inside prefixed with the chart's name, so charts on one page share none."""
        buf = io.BytesIO()
        with _LOCK, matplotlib.rc_context(STYLE):
            self.draw().savefig(buf, format="svg", metadata=METADATA)
        text = buf.getvalue().decode()
        text = text[text.index("<svg") :]
        return _REF.sub(lambda m: f"{m.group(1)}{self.name}-{m.group(2)}", text)

    def png(self) -> bytes:
        """The chart as a PNG image at `DPI` dots per inch."""
        buf = io.BytesIO()
        with _LOCK, matplotlib.rc_context(STYLE):
            self.draw().savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
        return buf.getvalue()


def charts(report: dict[str, Any]) -> list[Chart]:
    """The charts `report` has data for, in reading order."""
    return list(_charts(report))


def _charts(report: dict[str, Any]) -> Iterator[Chart]:
    out = report.get("outputs") or {}
    by_month = [(r.get("month"), r.get("hours")) for r in _rows(out.get("by_month"))]
    if by_month:
        yield _bars("hours-by-month", "Hours by month", by_month, horizontal=False)
    by_form = [
        (" / ".join(str(p) for p in (r.get("form"), r.get("subform")) if p), r.get("hours"))
        for r in _rows(out.get("by_form"))
    ]
    if by_form:
        yield _bars("hours-by-form", "Hours by co-production form", by_form, horizontal=True)
    by_area = [(r.get("area"), r.get("hours")) for r in _rows(out.get("by_area"))]
    if by_area:
        yield _bars("hours-by-area", "Hours by service area", by_area, horizontal=False)
    lens_c = (report.get("lenses") or {}).get("C") or {}
    matrix = [
        (str(r.get("funder")), str(r.get("agency")), r.get("central"))
        for r in _rows(lens_c.get("matrix"))
    ]
    if matrix:
        currency = str(lens_c.get("currency") or report.get("parameters", {}).get("currency", ""))
        yield _matrix(matrix, currency)


def _rows(value: Any) -> list[dict[str, Any]]:
    return [r for r in value if isinstance(r, dict)] if isinstance(value, list) else []


def _number(value: Any) -> float:
    """A figure of the report as a float, for drawing only (the report keeps the exact one)."""
    try:
        return float(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return 0.0


def _figure(value: Any) -> str:
    """A figure as printed on a chart: the report's own digits, with thousands separators."""
    try:
        return format(Decimal(str(value)), ",")
    except (InvalidOperation, ValueError):
        return str(value)


def _bars(name: str, title: str, data: list[tuple[Any, Any]], *, horizontal: bool) -> Chart:
    labels = [str(k) for k, _ in data]
    values = [_number(v) for _, v in data]
    printed = [_figure(v) for _, v in data]
    said = "; ".join(f"{k}: {v} hours" for k, v in data)

    def draw() -> Figure:
        tall = 0.9 + 0.32 * len(labels) if horizontal else 3.2
        fig = Figure(figsize=(7.0, max(tall, 2.0)), layout="constrained")
        ax = fig.add_subplot()
        if horizontal:
            bars = ax.barh(labels, values, color=BAR)
            ax.invert_yaxis()
            ax.set_xlabel("hours")
        else:
            bars = ax.bar(labels, values, color=BAR)
            ax.set_ylabel("hours")
            if len(labels) > 6:
                ax.tick_params(axis="x", labelrotation=45)
        ax.bar_label(bars, labels=printed, padding=2, fontsize=8)
        if horizontal:
            ax.margins(x=0.12)
        else:
            ax.margins(y=0.12)
        ax.spines[["top", "right"]].set_visible(False)
        ax.set_title(title, loc="left")
        return fig

    return Chart(name, title, f"{title}: {said}.", draw)


def _matrix(cells: list[tuple[str, str, Any]], currency: str) -> Chart:
    funders = list(dict.fromkeys(f for f, _, _ in cells))
    agencies = list(dict.fromkeys(a for _, a, _ in cells))
    grid = [[0.0] * len(agencies) for _ in funders]
    shown = [[""] * len(agencies) for _ in funders]
    for f, a, v in cells:
        i, j = funders.index(f), agencies.index(a)
        grid[i][j], shown[i][j] = _number(v), _figure(v)
    unit = f", {currency}" if currency else ""
    title = f"Who pays, who benefits (central{unit})"
    said = "; ".join(f"{f} funds, {a} benefits: {_figure(v)}{unit}" for f, a, v in cells)

    def draw() -> Figure:
        wide = max(6.0, 2.4 + 1.4 * len(agencies))
        fig = Figure(figsize=(wide, 1.6 + 0.5 * len(funders)), layout="constrained")
        ax = fig.add_subplot()
        top = max((abs(v) for row in grid for v in row), default=0.0) or 1.0
        ax.imshow(grid, cmap="Blues", vmin=0.0, vmax=top, aspect="auto")
        ax.set_xticks(range(len(agencies)), agencies, rotation=20, ha="right")
        ax.set_yticks(range(len(funders)), funders)
        ax.set_xlabel("agency whose budget benefits")
        ax.set_ylabel("funder")
        for i, row in enumerate(grid):
            for j, v in enumerate(row):
                colour = "white" if v > top * 0.6 else "black"
                words = shown[i][j] or "\u2013"  # an en dash: no figure
                ax.text(j, i, words, ha="center", va="center", color=colour, fontsize=8)
        ax.set_title(title, loc="left")
        return fig

    return Chart("wrong-pocket", title, f"Funder by agency whose budget benefits: {said}.", draw)
