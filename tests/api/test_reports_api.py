"""Reports over HTTP: outcomes, costs and ratings recorded through the API, the report in each
format, and what a commissioner may and may not see."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from typing import Any

import httpx
import openpyxl
import pypdf
import pytest
from starlette.applications import Starlette

from ledger import from_us
from tests.api.world import ASHE_ADDITION, World, log_hours, period
from tests.conftest import Clock
from valuation.reports import make_report
from valuation.reports.engine import Parameters

pytestmark = pytest.mark.both_backends

V1 = "/api/v1/schemes"
PROBLEM = "application/problem+json"


async def get_report(
    c: httpx.AsyncClient, w: World, clock: Clock, role: str = "commissioner", **params: str
) -> httpx.Response:
    return await c.get(f"{V1}/taff/reports", params=period(clock) | params,
                       headers=w.as_("taff", role))  # fmt: skip


async def test_a_commissioner_gets_hours_first_then_each_lens_with_its_method(
    app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    await log_hours(c, w, clock, [60, 90, 30])

    r = await get_report(c, w, clock)

    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    report: dict[str, Any] = r.json()
    assert report["headline"]["minutes"] == 180 and report["headline"]["hours"] == "3.00"
    assert list(report["headline"])[:2] == ["hours", "minutes"]
    assert report["lenses"]["A"]["method"].startswith("Replacement cost")
    assert report["lenses"]["A"]["total"]["central"] == "57.00"  # 3 h at the generalist £19
    assert report["checkpoint"]["size"] >= 3 and report["catalogue"]["hash"].startswith("sha256:")
    text = r.text
    assert "M1 of taff" not in text and "C1 of taff" not in text  # no display names


async def test_outcomes_and_costs_recorded_through_the_api_are_valued_in_the_report(
    app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    co = w.as_("taff", "coordinator")
    today = from_us(clock()).date().isoformat()
    start = period(clock)["from"]
    outcome = {"id": "wb", "outcome": "hmt-wellby", "start": start, "end": today, "people": 40,
               "evidence": "survey", "evidence_note": "ONS4, n=40", "change": "0.1"}  # fmt: skip
    r = await c.post(f"{V1}/taff/outcomes", json=outcome, headers=co)
    assert r.status_code == 201, r.text
    again = await c.post(f"{V1}/taff/outcomes", json=outcome, headers=co)
    assert again.status_code == 201 and again.json() == r.json()
    other = await c.post(f"{V1}/taff/outcomes", json=outcome | {"people": 41}, headers=co)
    assert other.status_code == 409 and other.headers["content-type"] == PROBLEM
    cost = {"id": "grant", "funder": "HOUSING_ASSOC", "kind": "cash", "start": start,
            "end": today, "amount": "10000", "price_year": "2025/26"}  # fmt: skip
    assert (await c.post(f"{V1}/taff/costs", json=cost, headers=co)).status_code == 201

    r = await get_report(c, w, clock, deadweight="0.25", attribution="0.25", displacement="0",
                         drop_off="0")  # fmt: skip

    b = r.json()["lenses"]["B"]
    assert b["totals"]["pv"]["central"] == "28260.87"
    assert b["totals"]["sroi"]["central"] == "2.83"
    assert r.json()["parameters"]["deadweight"] == "0.25"


async def test_the_csv_report_has_the_same_figures_as_the_json(
    app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    await log_hours(c, w, clock, [45, 45])
    report = (await get_report(c, w, clock)).json()

    r = await get_report(c, w, clock, format="csv")

    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    headline = {x["measure"]: x["value"] for x in rows if x["view"] == "headline"}
    assert headline["minutes"] == str(report["headline"]["minutes"]) == "90"


async def test_members_rate_services_and_the_report_shows_ratings_only_in_aggregate(
    app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    today = from_us(clock()).date().isoformat()
    rating = {"id": "r1", "subject": "service", "subject_id": "garden", "score": 5, "day": today}
    r = await c.post(f"{V1}/taff/ratings", json=rating, headers=w.as_("taff", "member"))
    assert r.status_code == 201, r.text
    r = await c.post(f"{V1}/taff/ratings", json=rating | {"id": "r2", "member": "M2"},
                     headers=w.as_("taff", "member"))  # fmt: skip
    assert r.status_code == 403 and r.json()["field"] == "member"

    rows = (await get_report(c, w, clock, k="1")).json()["co_assessment"]
    scores = {"1": 0, "2": 0, "3": 0, "4": 0, "5": 1}
    assert rows == [{"subject": "service", "id": "garden", "ratings": 1, "suppressed": False,
                     "mean": "5.00", "scores": scores}]  # fmt: skip
    hidden = (await get_report(c, w, clock)).json()["co_assessment"]
    assert hidden[0]["suppressed"] and hidden[0]["scores"] is None


async def test_a_report_asked_for_wrongly_is_a_problem_naming_the_field(
    app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    cases = [
        ({"from": "2026-02-01", "to": "2026-01-01"}, "to"),
        ({"from": "2026-01-01", "to": "2026-13-01"}, "to"),
        ({"from": "2026-01-01", "to": "2026-02-01", "format": "docx"}, "format"),
        ({"from": "2026-01-01", "to": "2026-02-01", "horizon": "2"}, "horizon"),
        ({"from": "2026-01-01", "to": "2026-02-01", "deadweight": "1.5"}, "deadweight"),
        ({"to": "2026-02-01"}, "from"),
    ]
    for params, field in cases:
        r = await c.get(f"{V1}/taff/reports", params=params, headers=w.as_("taff", "commissioner"))
        assert r.status_code == 422, (params, r.text)
        assert r.headers["content-type"] == PROBLEM and r.json()["field"] == field, r.text


async def test_the_spreadsheet_page_and_pdf_carry_the_reports_figures(
    app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    await log_hours(c, w, clock, [60, 30])
    report = (await get_report(c, w, clock)).json()

    xlsx = await get_report(c, w, clock, format="xlsx")
    html = await get_report(c, w, clock, format="html")
    pdf = await get_report(c, w, clock, format="pdf")

    assert xlsx.headers["content-type"].startswith("application/vnd.openxmlformats")
    book = openpyxl.load_workbook(io.BytesIO(xlsx.content), read_only=True)
    assert book.sheetnames[0] == "Summary" and "All figures" in book.sheetnames
    cells = [str(v) for row in book["Summary"].iter_rows(values_only=True) for v in row if v]
    assert "1.50" in cells or "1.5" in cells  # the headline hours
    assert html.headers["content-type"].startswith("text/html")
    assert "<svg" in html.text and report["scheme"]["name"] in html.text
    assert pdf.headers["content-type"] == "application/pdf"
    text = "".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf.content)).pages)
    assert report["scheme"]["name"] in text and "1.50" in text
    assert str(report["checkpoint"]["size"]) in text
    for body in (html.text, text):
        assert "M1 of taff" not in body


async def test_a_scheme_admin_adds_a_catalogue_version_and_reports_can_name_it(
    app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    body = {"version": "taff.1", "content": ASHE_ADDITION}
    r = await c.post(f"{V1}/taff/catalogues", json=body, headers=w.as_("taff", "scheme-admin"))
    assert r.status_code == 201, r.text
    made = r.json()
    refused = await c.post(f"{V1}/taff/catalogues", json=body | {"version": "taff.2"},
                           headers=w.as_("taff", "coordinator"))  # fmt: skip
    assert refused.status_code == 403

    listed = await c.get(f"{V1}/taff/catalogues", headers=w.as_("taff", "commissioner"))
    shipped, version = (
        await get_report(c, w, clock, catalogue="uk-2026.1"),
        await get_report(c, w, clock),
    )

    assert [v["version"] for v in listed.json()["items"]] == ["uk-2026.1", "taff.1"]
    assert version.json()["catalogue"] == {"version": "taff.1", "hash": made["hash"]}
    assert shipped.json()["catalogue"]["version"] == "uk-2026.1"
    unknown = await get_report(c, w, clock, catalogue="nope")
    assert unknown.status_code == 404 and unknown.json()["field"] == "catalogue"
    wrong = {"version": "x", "content": {"wage_rates": [{}]}}
    bad = await c.post(f"{V1}/taff/catalogues", json=wrong, headers=w.as_("taff", "scheme-admin"))
    assert bad.status_code == 422 and bad.json()["field"].startswith("content.wage_rates[0]")


async def test_discount_timing_and_the_what_if_projection_are_parameters_the_report_states(
    app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    today = from_us(clock()).date().isoformat()
    outcome = {"id": "wb", "outcome": "hmt-wellby", "start": period(clock)["from"],
               "end": today, "people": 40, "evidence": "survey", "evidence_note": "ONS4",
               "change": "0.1"}  # fmt: skip
    r = await c.post(f"{V1}/taff/outcomes", json=outcome, headers=w.as_("taff", "coordinator"))
    assert r.status_code == 201, r.text
    run = {"deadweight": "0.25", "attribution": "0.25", "displacement": "0", "drop_off": "0"}

    green_book = (await get_report(c, w, clock, discount_start="0", **run)).json()
    what_if = {"what_if_population": "681573", "what_if_hours_per_week": "1",
               "what_if_weeks": "39"}  # fmt: skip
    projected = (await get_report(c, w, clock, **what_if)).json()

    assert green_book["lenses"]["B"]["totals"]["pv"]["central"] == "29250.00"  # not discounted
    assert green_book["parameters"]["discount_start"] == 0
    assert "year 0 undiscounted" in green_book["lenses"]["B"]["method"]
    assert projected["what_if"]["hours"] == "26581347"  # DOMAIN.md O11: Learning to Lead


async def test_every_horizon_can_be_asked_for(
    app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    for years in ("1", "3", "5", "10", "15"):
        r = await get_report(app_client, world, clock, horizon=years)
        assert r.status_code == 200 and r.json()["parameters"]["horizon_years"] == int(years)


async def test_hours_older_than_the_catalogue_are_reported_as_not_valued_in_every_format(
    app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    """A claim from 1998 (an import of history, say) has no wage to price it: every format is
    made, the JSON lists the hours as not valued with the reason; never a 500."""
    c, w = app_client, world
    await log_hours(c, w, clock, [60])
    r = await c.post(f"{V1}/taff/claims", headers=w.as_("taff", "member"),
                     json={"activity": "garden", "date": "1998-06-01", "minutes": 90})  # fmt: skip
    assert r.status_code == 201, r.text
    confirmed = await c.post(f"{V1}/taff/claims/{r.json()['id']}/confirm",
                             headers=w.as_("taff", "coordinator"))  # fmt: skip
    assert confirmed.status_code == 200, confirmed.text
    since = {"from": "1998-01-01", "to": "1998-12-31"}
    report = await get_report(c, w, clock, **since)
    assert report.status_code == 200, report.text
    hours = report.json()["lenses"]["A"]
    assert hours["not_valued_hours"] == "1.50" and "NOT_VALUED" in hours["flags"]
    assert hours["not_valued"][0]["month"] == "1998-06"
    assert hours["total"] is None  # nothing could be valued: not computed, never 0
    for fmt in ("csv", "xlsx", "html", "pdf"):
        r = await get_report(c, w, clock, format=fmt, **since)
        assert r.status_code == 200, (fmt, r.text[:300])


async def test_the_json_report_is_make_reports_own(
    app: Starlette, app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    """The API builds the report in a worker process from `make_report`'s own steps: the same
    report, figure for figure."""
    await log_hours(app_client, world, clock, [60, 90, 45])
    r = await get_report(app_client, world, clock)
    assert r.status_code == 200, r.text
    when = period(clock)
    made = await make_report(app.state.services.bank, "taff", date.fromisoformat(when["from"]),
                             date.fromisoformat(when["to"]), Parameters())  # fmt: skip
    ours, theirs = r.json(), json.loads(json.dumps(made))
    assert ours["headline"]["minutes"] == 195
    assert ours == theirs
