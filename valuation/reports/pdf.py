"""A report as a PDF board paper: the HTML page's content, in its order, on A4. Pure.

Printed with fpdf2 in its core Helvetica (Latin-1: "£" prints; any other character is replaced
by its nearest Latin-1 spelling or "?"), with numbered pages ("Page 2 of 9"), an outline of
the sections, charts as PNG and each view as a table (on a landscape page when it is wide).
The same report prints the same bytes: the document's date is the checkpoint's time.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

from fpdf import FPDF
from fpdf.enums import PageOrientation
from fpdf.fonts import FontFace

from .charts import DPI, charts
from .document import Table, headline, is_number, label, statement, text, title, views

FONT = "Helvetica"
CHAR = 0.22  # mm per character per point of font size, about, in Helvetica (bold headings)
PORTRAIT_WIDTH = 190.0  # A4 less 10 mm margins: a table that needs more goes on a landscape page
BLUE = (47, 102, 144)
SHADE = (230, 237, 243)
# dashes, quotes, ellipsis, angle quote, euro, bullet, <=, >=, minus sign, no-break space
PLAIN = {
    "\u2013": "-",
    "\u2014": "-",
    "\u2018": "'",
    "\u2019": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u2026": "...",
    "\u203a": ">",
    "\u20ac": "EUR ",
    "\u2022": "-",
    "\u2264": "<=",
    "\u2265": ">=",
    "\u2212": "-",
    "\u00a0": " ",
}
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def latin1(s: str) -> str:
    """`s` in the core fonts' Latin-1: common punctuation spelt plainly, the rest as "?"."""
    for k, v in PLAIN.items():
        s = s.replace(k, v)
    return s.encode("latin-1", "replace").decode("latin-1")


class _Paper(FPDF):
    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(FONT, "", 8)
        self.set_text_color(90, 90, 90)
        self.cell(0, 6, f"Page {self.page_no()} of {{nb}}", align="C")
        self.set_text_color(0, 0, 0)


def to_pdf(report: dict[str, Any]) -> bytes:
    """The report as a PDF document."""
    pdf = _Paper(orientation="portrait", unit="mm", format="A4")
    pdf.set_creation_date(_when(report))
    pdf.set_title(latin1(title(report)))
    pdf.set_author("timebank")
    pdf.set_lang("en-GB")
    pdf.set_auto_page_break(auto=True, margin=16)
    pdf.add_page()
    pdf.set_font(FONT, "B", 16)
    pdf.multi_cell(0, 8, latin1(title(report)), new_x="LMARGIN", new_y="NEXT")
    _heading(pdf, "About this report")
    _para(pdf, statement(report))
    _heading(pdf, "Headline")
    _para(pdf, ["Hours and credits come first and are not money: one hour given is one credit."])
    rows = tuple((name, shown) for name, shown, _ in headline(report))
    _table(pdf, Table(("headline",), "Headline", ("figure", "value"), rows))
    drawn = charts(report)
    if drawn:
        _heading(pdf, "Charts")
        for c in drawn:
            png = c.png()
            width = min(pdf.epw, int.from_bytes(png[16:20], "big") / DPI * 25.4)
            pdf.image(io.BytesIO(png), w=width, alt_text=latin1(c.description))
            pdf.ln(3)
    section = None
    for t in views(report):
        _orient(pdf, wide=_layout(t)[2] > PORTRAIT_WIDTH)
        if t.path[0] != section:
            section = t.path[0]
            _heading(pdf, label(section))
        if len(t.path) > 1:
            _heading(pdf, t.heading, level=1)
        _table(pdf, t)
    _orient(pdf, wide=False)
    if "assumptions" in report:
        _heading(pdf, "Assumptions")
        for t in views({"assumptions": report["assumptions"]}, skip=()):
            _table(pdf, t)
    if report.get("sources"):
        _heading(pdf, "Sources")
        _sources(pdf, report["sources"])
    _heading(pdf, "Caveats")
    _para(pdf, [f"- {c}" for c in report.get("caveats") or []])
    return bytes(pdf.output())


def _when(report: dict[str, Any]) -> datetime:
    try:
        t = datetime.fromisoformat(str(report["checkpoint"]["time"]))
    except (KeyError, TypeError, ValueError):
        return EPOCH
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _heading(pdf: FPDF, words: str, level: int = 0) -> None:
    words = latin1(words)
    if pdf.will_page_break(24):
        pdf.add_page(same=True)
    pdf.ln(4 if level else 6)
    pdf.start_section(words[:120], level=level)
    pdf.set_font(FONT, "B", 13 if level == 0 else 10.5)
    pdf.set_text_color(*BLUE)
    pdf.multi_cell(0, 6.5 if level == 0 else 5.5, words, new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0, 0, 0)
    pdf.ln(1)


def _para(pdf: FPDF, lines: list[str]) -> None:
    pdf.set_font(FONT, "", 9.5)
    for line in lines:
        pdf.multi_cell(0, 5, latin1(line), align="L", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)


def _layout(t: Table) -> tuple[float, list[float], float]:
    """Font size, column widths (mm) and the width (mm) `t` needs, before any squeezing."""
    cols = len(t.columns)
    size = 8.0 if cols <= 6 else 7.0 if cols <= 10 else 6.0
    chars = [
        min(max(3, *(len(w) for w in label(c).split()), *(len(text(r[j])) for r in t.rows)), 34)
        for j, c in enumerate(t.columns)
    ]
    widths = [n * size * CHAR + 2.5 for n in chars]
    return size, widths, sum(widths)


def _orient(pdf: FPDF, *, wide: bool) -> None:
    """A landscape page for a table too wide for a portrait one, and back after it."""
    if wide and pdf.cur_orientation != PageOrientation.LANDSCAPE:
        pdf.add_page(orientation="L")
    elif not wide and pdf.cur_orientation != PageOrientation.PORTRAIT:
        pdf.add_page(orientation="P")


def _table(pdf: FPDF, t: Table) -> None:
    if not t.rows:
        _para(pdf, ["None in this period."])
        return
    size, widths, need = _layout(t)
    cols = len(t.columns)
    numeric = [all(r[j] is None or is_number(r[j]) for r in t.rows) for j in range(cols)]
    pdf.set_font(FONT, "", size)
    with pdf.table(
        col_widths=widths,
        width=min(pdf.epw, need),  # the widths are relative: squeezed to fit when need be
        align="LEFT",
        text_align=tuple("RIGHT" if n else "LEFT" for n in numeric),
        headings_style=FontFace(emphasis="BOLD", fill_color=SHADE),
        line_height=pdf.font_size * 1.5,
        padding=0.8,
    ) as table:
        table.row([latin1(label(c)) for c in t.columns])
        for row in t.rows:
            table.row([latin1(text(v)) for v in row])
    pdf.ln(3)


def _sources(pdf: FPDF, sources: Any) -> None:
    pdf.set_font(FONT, "", 9.5)
    for n, s in enumerate(sources if isinstance(sources, list) else [], start=1):
        if not isinstance(s, dict):
            _para(pdf, [f"{n}. {s}"])
            continue
        url = str(s.get("url") or "")
        said = f"{n}. [{s.get('id', '')}] {s.get('title', '')}. {s.get('publisher', '')}. "
        pdf.write(5, latin1(said))
        if url:
            pdf.write(5, latin1(url), link=url if url.startswith(("https://", "http://")) else "")
            pdf.write(5, ". ")
        pdf.write(5, latin1(f"Licence: {s.get('licence') or 'not stated'}."))
        pdf.ln(6)
