"""A report rendered as XLSX, HTML and PDF, from a real database, and each file read back.

The spreadsheet is opened with openpyxl, the page parsed with the standard library's HTML
parser and the PDF's text extracted with pypdf; each is checked against the report's own
figures. A hand-made `lenses` section (the valuation lenses' shape) checks that the matrix chart
and the lens tables render; the report without one renders what it has.
"""

from __future__ import annotations

import asyncio
import copy
import io
import re
import zipfile
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader

from ledger import to_us
from tests.conftest import SERVER_URL, Clock, server_database
from tests.timebank.helpers import activity, open_bank
from timebank.activities import CoForm, CoSubform, ServiceArea
from timebank.claims import ClaimDraft, ClaimRules, SchemeModel
from timebank.schemes import Member, Role, Scheme
from valuation.reports import make_report, tables
from valuation.reports.charts import charts
from valuation.reports.engine import Parameters
from valuation.reports.html import to_html
from valuation.reports.pdf import to_pdf
from valuation.reports.xlsx import sheet_name, to_xlsx

pytestmark = pytest.mark.both_backends

TAFF = Scheme("taff", "Taff & Ely Housing", ClaimRules(SchemeModel.TIME_CREDITS))
PEOPLE = {f"M{n:02d}": f"Zelda Quincey-{n:02d}" for n in range(1, 13)}
TRICKY = 'Tenants\' <panel> & "review"'
START, END = date(2026, 1, 1), date(2026, 3, 31)
MONTHS = (1, 2, 3)


def activities() -> list[Any]:
    from dataclasses import replace

    return [
        activity("garden"),
        replace(activity("panel"), title=TRICKY, form=CoForm.CO_ASSESSMENT,
                subform=CoSubform.CO_MONITORING, area=ServiceArea.HEALTH),
        replace(activity("design-day"), form=CoForm.CO_DESIGN, subform=None,
                area=ServiceArea.COMMUNITY_SAFETY),
        replace(activity("budget-jury"), form=CoForm.CO_COMMISSIONING,
                subform=CoSubform.CO_PLANNING, area=ServiceArea.EDUCATION),
    ]  # fmt: skip


async def _make(path: Path) -> dict[str, Any]:
    """The report, from the SQLite file `path` or, on a server run, from a database of its own
    on the test server (dropped afterwards)."""
    if not SERVER_URL:
        return await _report(path, None)
    with server_database() as url:
        return await _report(path, url)


async def _report(path: Path, url: str | None) -> dict[str, Any]:
    clock = Clock()
    clock.now_us = to_us(datetime(2026, 4, 10, tzinfo=UTC))
    async with open_bank(path, clock, url) as bank:
        await bank.create_scheme(TAFF)
        await bank.add_member(
            Member(TAFF.id, "C1", "Coordinator Co", frozenset({Role.COORDINATOR}))
        )
        for who, name in PEOPLE.items():
            await bank.add_member(Member(TAFF.id, who, name))
        acts = activities()
        for a in acts:
            await bank.add_activity(TAFF.id, a, by="C1")
        n = 0
        for month in MONTHS:
            for i, who in enumerate(PEOPLE):
                a = acts[(i + month) % len(acts)]
                draft = ClaimDraft(who, who, a.code, date(2026, month, 1 + i), 30 + 15 * (i % 5))
                logged = await bank.log_claim(TAFF.id, draft, today=bank.today(),
                                              idempotency_key=f"k{n}")  # fmt: skip
                await bank.confirm_claim(TAFF.id, logged.id, by="C1")
                n += 1
        return await make_report(bank, TAFF.id, START, END, Parameters(price_base="2024/25"))


def range_(low: str, central: str, high: str) -> dict[str, str]:
    return {"low": low, "central": central, "high": high}


LENSES: dict[str, Any] = {
    "A": {
        "title": "Value of hours (replacement cost)", "method": "hours x wage x on-cost",
        "currency": "GBP", "price_base": "2024/25",
        "total": range_("1200.00", "1500.50", "1810.25"),
        "by_activity": [
            {"activity": "garden", "hours": "12.50", "rate": range_("11.44", "12.21", "14.00"),
             "value": range_("143.00", "152.63", "175.00"), "method": "ASHE p50",
             "flags": ["UNVERIFIED", "OLD_PRICE"]},
            {"activity": "panel", "hours": "9.75", "rate": range_("15.00", "18.00", "21.00"),
             "value": range_("146.25", "175.50", "204.75"), "method": "ASHE p50", "flags": []},
        ],
        "sensitivities": [{"sensitivity": "productivity 0.8", "central": "1200.40"}],
        "flags": [],
    },
    "B": {
        "title": "Social value (SROI)", "method": "outcomes x proxy, less deadweight",
        "lines": [
            {"outcome": "loneliness reduced", "stakeholder": "tenants", "year": 1,
             "gross": range_("100", "200", "300"), "pv": range_("90.10", "180.20", "270.30"),
             "flags": []},
        ],
        "totals": {"pv": range_("90.10", "180.20", "270.30"), "cost": range_("50", "60", "70"),
                   "npsv": range_("40.10", "120.20", "200.30"), "sroi": None},
    },
    "C": {
        "title": "Fiscal savings by agency", "currency": "GBP",
        "by_agency": [
            {"agency": "NHS", "cashable": range_("10", "20", "30"),
             "non_cashable": range_("40", "50", "60"), "total": range_("50", "70", "90")},
            {"agency": "Local authority", "cashable": range_("5", "6", "7"),
             "non_cashable": range_("1", "2", "3"), "total": range_("6", "8", "10")},
        ],
        "matrix": [
            {"funder": "Housing association", "agency": "NHS", "central": "70.00"},
            {"funder": "Housing association", "agency": "Local authority", "central": "8.00"},
            {"funder": "Council", "agency": "NHS", "central": "1234.56"},
        ],
        "share_elsewhere": [{"funder": "Housing association", "share": "0.75"}],
    },
}  # fmt: skip
EXTRA: dict[str, Any] = {
    "catalogue": {"version": "2026.10", "hash": "ab" * 32},
    "lenses": LENSES,
    "assumptions": ["Wages are the 2024/25 median, uprated by the GDP deflator."],
    "sources": [
        {"id": "ashe", "title": "Annual Survey of Hours and Earnings", "publisher": "ONS",
         "url": "https://www.ons.gov.uk/ashe", "licence": "OGL v3.0"},
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The report as the engine builds it."""
    return asyncio.run(_make(tmp_path_factory.mktemp("formats") / "bank.db"))


@pytest.fixture
def report(real: dict[str, Any]) -> dict[str, Any]:
    """The report with hand-made lenses (a wrong-pocket matrix), catalogue, assumptions and
    sources in place of the engine's."""
    return copy.deepcopy(real) | copy.deepcopy(EXTRA)


@pytest.fixture
def plain(real: dict[str, Any]) -> dict[str, Any]:
    """The report without lenses."""
    return {k: copy.deepcopy(v) for k, v in real.items() if k != "lenses"}


def test_the_fixture_has_hours_in_every_month_form_and_area(report: dict[str, Any]) -> None:
    out = report["outputs"]
    assert [r["month"] for r in out["by_month"]] == ["2026-01", "2026-02", "2026-03"]
    assert len(out["by_form"]) == 4 and len(out["by_area"]) == 4
    assert report["headline"]["minutes"] == sum(r["minutes"] for r in out["by_activity"]) > 0


# --- the spreadsheet ---------------------------------------------------------------------------


def _sheet_rows(ws: Any) -> list[tuple[Any, ...]]:
    return list(ws.iter_rows(values_only=True))


def test_the_workbook_has_a_summary_a_sheet_per_view_and_every_figure(
    report: dict[str, Any],
) -> None:
    wb = load_workbook(io.BytesIO(to_xlsx(report)))

    names = wb.sheetnames
    assert names[0] == "Summary" and names[-1] == "All figures"
    for view in ("outputs.by_activity", "outputs.by_month", "outputs.shares",
                 "inventory.activities", "lenses.A", "lenses.A.by_activity", "lenses.C.matrix",
                 "sources"):  # fmt: skip
        assert view in names
    assert all(len(n) <= 31 for n in names) and len(set(names)) == len(names)
    assert "by_question.deprivation_decile" in names  # the tail of a path too long for Excel

    summary = {r[0]: r[1] for r in _sheet_rows(wb["Summary"]) if r[0] is not None}
    assert summary["Minutes given"] == report["headline"]["minutes"]
    assert summary["Hours given"] == pytest.approx(float(report["headline"]["hours"]))
    assert summary["Credits issued"] == report["headline"]["credits_issued"]
    assert summary["Checkpoint size"] == report["checkpoint"]["size"]
    assert summary["Checkpoint root"] == report["checkpoint"]["root"]
    assert summary["Catalogue version"] == "2026.10"  # a name, not a number
    texts = [str(r[0]) for r in _sheet_rows(wb["Summary"]) if r[0]]
    assert all(c in texts for c in report["caveats"])

    ws = wb["outputs.by_activity"]
    header, *body = _sheet_rows(ws)
    assert ws.freeze_panes == "A2" and all(c.font.b for c in ws[1])
    got = {r[header.index("activity")]: r for r in body}
    for row in report["outputs"]["by_activity"]:
        cells = got[row["activity"]]
        assert cells[header.index("minutes")] == row["minutes"]
        assert cells[header.index("title")] == row["title"]
        assert cells[header.index("hours")] == pytest.approx(float(row["hours"]))

    header, *body = _sheet_rows(wb["lenses.C.by_agency"])
    assert body[0][header.index("total.central")] == 70  # a decimal string, written as a number
    assert _sheet_rows(wb["lenses.A"])[1:3] == [("title", LENSES["A"]["title"]),
                                                 ("method", LENSES["A"]["method"])]  # fmt: skip

    header, *body = _sheet_rows(wb["All figures"])
    assert header == tables.HEADER
    assert len(body) == len(list(tables.rows(report)))


def test_sheet_names_are_short_unique_and_free_of_forbidden_characters() -> None:
    used = {"Summary"}
    assert sheet_name(("summary",), used) == "summary (2)"
    assert sheet_name(("a", "b/c:d"), used) == "a.b-c-d"
    long = ("x" * 40,)
    assert sheet_name(long, used) == "x" * 31
    assert sheet_name(long, used) == "x" * 27 + " (2)"


# --- the page ----------------------------------------------------------------------------------


class Page(HTMLParser):
    """What a reader (and a browser) would get from the page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.stack: list[str] = []
        self.links: list[tuple[str, str]] = []  # (section, href)
        self.section = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "section":
            self.section = a.get("aria-labelledby") or ""
        if "href" in a or "src" in a:
            self.links.append((self.section, a.get("href") or a.get("src") or ""))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def words(self) -> str:
        return " ".join(" ".join(self.text).split())


def _page(report: dict[str, Any]) -> tuple[str, Page]:
    html = to_html(report)
    page = Page()
    page.feed(html)
    page.close()
    return html, page


def test_the_page_has_the_headline_a_chart_each_and_every_view_escaped(
    report: dict[str, Any],
) -> None:
    html, page = _page(report)

    words = page.words()
    head = report["headline"]
    assert f"Hours given {head['hours']}" in words
    assert f"Minutes given {head['minutes']}" in words
    assert sum(1 for tag, _ in page.tags if tag == "svg") == 4  # month, form, area, matrix
    assert [a.get("lang") for t, a in page.tags if t == "html"] == ["en-GB"]
    assert [t for t, _ in page.tags].count("h1") == 1
    assert "Taff & Ely Housing" in words and "Taff &amp; Ely Housing" in html
    for row in report["outputs"]["by_activity"]:
        assert row["title"] in words
    assert "<panel>" not in html and "&lt;panel&gt; &amp; &quot;review&quot;" in html
    assert str(report["checkpoint"]["size"]) in words and report["checkpoint"]["root"] in words
    assert "Fiscal savings by agency" in words and "Local authority" in words
    assert "Annual Survey of Hours and Earnings" in words and "OGL v3.0" in words
    assert all(c in words for c in report["caveats"])


def test_the_page_loads_nothing_from_outside_and_links_only_to_its_sources(
    report: dict[str, Any],
) -> None:
    html, page = _page(report)

    assert not {"script", "link", "img", "iframe", "object"} & {t for t, _ in page.tags}
    outside = [(s, h) for s, h in page.links if not h.startswith("#")]
    assert outside == [("sources", "https://www.ons.gov.uk/ashe")]
    assert "url(http" not in html and "@import" not in html


# --- the PDF -----------------------------------------------------------------------------------


def _pdf_text(data: bytes) -> tuple[PdfReader, str]:
    reader = PdfReader(io.BytesIO(data))
    return reader, " ".join(" ".join(p.extract_text() or "" for p in reader.pages).split())


def test_the_pdf_has_the_scheme_the_headline_every_activity_and_numbered_pages(
    report: dict[str, Any],
) -> None:
    reader, words = _pdf_text(to_pdf(report))

    pages = len(reader.pages)
    assert pages >= 2
    assert "Taff & Ely Housing" in words
    assert report["headline"]["hours"] in words
    assert str(report["checkpoint"]["size"]) in words
    for row in report["outputs"]["by_activity"]:
        assert row["title"] in words
    assert all(f"Page {n} of {pages}" in words for n in range(1, pages + 1))
    assert "Fiscal savings by agency" in words and "OGL v3.0" in words
    assert reader.metadata is not None and reader.metadata.title is not None
    assert sum(len(p.images) for p in reader.pages) == 4  # the charts


def test_characters_outside_latin_1_are_printed_safely(report: dict[str, Any]) -> None:
    dash, quotes, euro = "\u2013", ("\u201c", "\u201d"), "\u20ac"
    said = (
        f"Costs {dash} in £ or {euro} {dash} are {quotes[0]}estimates{quotes[1]} \u2265 0 \u2713."
    )
    report["caveats"] = [*report["caveats"], said]

    _, words = _pdf_text(to_pdf(report))

    assert 'Costs - in £ or EUR - are "estimates" >= 0 ?.' in words


# --- every format ------------------------------------------------------------------------------


def test_each_format_renders_the_same_bytes_twice(report: dict[str, Any]) -> None:
    assert to_xlsx(report) == to_xlsx(copy.deepcopy(report))
    assert to_html(report) == to_html(copy.deepcopy(report))
    assert to_pdf(report) == to_pdf(copy.deepcopy(report))
    for chart in charts(report):
        assert chart.svg() == chart.svg() and chart.png() == chart.png()


def test_the_files_are_dated_by_the_checkpoint_not_the_clock(report: dict[str, Any]) -> None:
    when = datetime.fromisoformat(report["checkpoint"]["time"])

    data = to_xlsx(report)
    props = load_workbook(io.BytesIO(data)).properties
    members = zipfile.ZipFile(io.BytesIO(data)).infolist()
    reader = PdfReader(io.BytesIO(to_pdf(report)))

    assert props.created == props.modified == when.replace(tzinfo=None)
    assert {m.date_time for m in members} == {when.timetuple()[:6]}
    assert reader.metadata is not None and reader.metadata.creation_date == when
    assert "Date" not in "".join(c.svg() for c in charts(report))


def test_a_report_without_lenses_renders_what_it_has(plain: dict[str, Any]) -> None:
    assert "lenses" not in plain
    assert [c.name for c in charts(plain)] == ["hours-by-month", "hours-by-form", "hours-by-area"]

    _, page = _page(plain)
    wb = load_workbook(io.BytesIO(to_xlsx(plain)))
    reader, words = _pdf_text(to_pdf(plain))

    assert sum(1 for tag, _ in page.tags if tag == "svg") == 3
    assert not any(n.startswith("lenses") for n in wb.sheetnames)
    assert plain["headline"]["hours"] in words and len(reader.pages) >= 1


def test_the_engines_own_report_renders_in_every_format(real: dict[str, Any]) -> None:
    _, page = _page(real)
    wb = load_workbook(io.BytesIO(to_xlsx(real)))
    _, words = _pdf_text(to_pdf(real))

    for lens in real.get("lenses", {}).values():
        assert lens["title"] in page.words() and lens["title"] in words
    assert len(list(wb["All figures"].iter_rows())) == len(list(tables.rows(real))) + 1
    assert to_pdf(real) == to_pdf(real) and to_xlsx(real) == to_xlsx(real)


def test_an_empty_report_still_renders() -> None:
    bare: dict[str, Any] = {"report": "valued-contribution", "scheme": {"id": "x"}}

    assert charts(bare) == []
    assert "<h1>" in to_html(bare)
    assert load_workbook(io.BytesIO(to_xlsx(bare))).sheetnames == ["Summary", "All figures"]
    assert PdfReader(io.BytesIO(to_pdf(bare))).pages


def test_no_format_names_a_member(report: dict[str, Any]) -> None:
    wb = load_workbook(io.BytesIO(to_xlsx(report)))
    cells = " ".join(str(v) for ws in wb for r in ws.iter_rows(values_only=True) for v in r)
    _, page = _page(report)
    _, pdf_words = _pdf_text(to_pdf(report))
    html = to_html(report)

    for said in (cells, page.words(), pdf_words, html):
        assert "Zelda" not in said and "Quincey" not in said and "Coordinator Co" not in said
    for said in (cells, page.words(), pdf_words):
        assert not re.search(r"\bM\d\d\b", said)
