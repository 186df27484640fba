"""The commissioner's pages: the dashboard shows the API's own report, its charts are images with
their figures as tables, downloads are made by a background job, and no member is named."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import openpyxl
import pypdf
import pytest

from ledger import from_us
from tests.api.world import World, log_hours, period
from tests.conftest import Clock
from tests.web.conftest import Pages

pytestmark = pytest.mark.both_backends

Browser = Callable[[str], Awaitable[Pages]]
V1 = "/api/v1/schemes"
PNG = b"\x89PNG\r\n\x1a\n"
DASH = "/s/taff/commission"
VALUATION = {"deadweight": "0.25", "attribution": "0.25", "displacement": "0", "drop_off": "0"}


def figure(html: str, name: str) -> str:
    """The text of the element marked `data-figure="name"` on a page."""
    found = re.search(rf'data-figure="{name}">([^<]*)<', html)
    assert found, f"no figure {name}"
    return found.group(1).strip()


def shown(value: str) -> str:
    return format(Decimal(value), ",")


async def wait_for_job(pages: Pages, url: str) -> str:
    """Poll the job's page until it has finished (at most 30 s); the download's URL."""
    for _ in range(300):
        page = await pages.get(url)
        if f'href="{url}/download"' in page.text:
            return url + "/download"
        assert "That did not work" not in page.text, page.text[:2000]
        await asyncio.sleep(0.1)
    raise AssertionError("the job did not finish in 30 s")


async def download(pages: Pages, fmt: str, clock: Clock) -> httpx.Response:
    form = "/s/taff/commission/downloads"
    page = await pages.get(form)
    csrf = re.findall(r'name="csrf" value="([^"]+)"', page.text)[0]
    key = re.findall(r'name="key" value="([^"]+)"', page.text)[0]
    data = {"csrf": csrf, "key": key, "format": fmt} | period(clock) | VALUATION
    r = await pages.client.post(form, data=data)
    assert r.status_code == 303, (r.status_code, r.text[:2000])
    job = r.headers["location"]
    assert job.startswith("/s/taff/jobs/")
    got = await pages.get(await wait_for_job(pages, job))
    assert "attachment" in got.headers["content-disposition"]
    return got


async def api_report(c: httpx.AsyncClient, w: World, clock: Clock) -> dict[str, Any]:
    r = await c.get(f"{V1}/taff/reports", params=period(clock) | VALUATION,
                    headers=w.as_("taff", "commissioner"))  # fmt: skip
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body, dict)
    return body


async def test_the_dashboard_shows_the_apis_hours_and_lens_a_for_the_same_period(
    app_client: httpx.AsyncClient, world: World, clock: Clock, browser: Browser
) -> None:
    await log_hours(app_client, world, clock, [60, 90, 30])
    report = await api_report(app_client, world, clock)
    pages = await browser("taff-commissioner")

    page = await pages.client.get(DASH, params=period(clock) | VALUATION)

    assert page.status_code == 200, page.text[:2000]
    assert report["headline"]["hours"] == "3.00"
    assert figure(page.text, "hours") == shown(report["headline"]["hours"])
    assert figure(page.text, "total") == shown(report["lenses"]["A"]["total"]["central"])
    assert report["lenses"]["A"]["total"]["central"] == "57.00"
    assert report["lenses"]["A"]["method"] in page.text.replace("&#39;", "'")
    assert report["checkpoint"]["root"] in page.text and report["catalogue"]["hash"] in page.text
    assert 'href="/s/taff/ledger"' in page.text and "timebank report verify" in page.text


async def test_the_dashboard_defaults_to_the_last_twelve_months(
    app_client: httpx.AsyncClient, world: World, clock: Clock, browser: Browser
) -> None:
    await log_hours(app_client, world, clock, [45])
    pages = await browser("taff-commissioner")

    page = await pages.get(DASH)

    today = from_us(clock()).date()
    assert f'value="{today.isoformat()}"' in page.text
    assert f'value="{(today - timedelta(days=365)).isoformat()}"' in page.text
    assert figure(page.text, "hours") == "0.75"


async def test_no_member_is_named_on_the_dashboard(
    app_client: httpx.AsyncClient, world: World, clock: Clock, browser: Browser
) -> None:
    await log_hours(app_client, world, clock, [60, 30])
    pages = await browser("taff-commissioner")

    page = await pages.get(DASH)

    assert "Hours given" in page.text
    for person in ("M1", "M2", "C1", "A1"):
        assert not re.search(rf"\b{person}\b", page.text), person


async def test_the_charts_are_png_images_with_their_figures_as_tables(
    app_client: httpx.AsyncClient, world: World, clock: Clock, browser: Browser
) -> None:
    await log_hours(app_client, world, clock, [60, 90])
    pages = await browser("taff-commissioner")
    page = await pages.get(DASH)

    sources = re.findall(r'<img src="(/s/taff/commission/charts/[^"]+)" alt="([^"]+)"', page.text)

    names = {re.sub(r".*/charts/([a-z-]+)\.png.*", r"\1", src) for src, _ in sources}
    assert {"hours-by-month", "hours-by-form", "hours-by-area"} <= names
    assert page.text.count("<details>") >= len(sources) and "<caption>Hours by month" in page.text
    for src, alt in sources:
        assert alt.strip()
        r = await pages.get(src.replace("&amp;", "&"))
        assert r.headers["content-type"] == "image/png" and r.content.startswith(PNG)


async def test_an_unknown_chart_is_not_found(world: World, browser: Browser) -> None:
    pages = await browser("taff-commissioner")
    await pages.get(DASH + "/charts/balances.png", status=404)


async def test_a_period_that_ends_before_it_starts_names_the_field(
    world: World, browser: Browser
) -> None:
    pages = await browser("taff-commissioner")
    r = await pages.client.get(DASH, params={"from": "2025-12-01", "to": "2025-11-01"})
    assert r.status_code == 422 and 'id="e-to"' in r.text and 'aria-invalid="true"' in r.text


async def test_a_valuation_parameter_out_of_range_names_the_field(
    world: World, browser: Browser
) -> None:
    pages = await browser("taff-commissioner")
    r = await pages.client.get(DASH, params={"deadweight": "1.5"})
    assert r.status_code == 422 and 'id="e-deadweight"' in r.text


async def test_the_xlsx_download_is_made_by_a_job_and_opens(
    app_client: httpx.AsyncClient, world: World, clock: Clock, browser: Browser
) -> None:
    await log_hours(app_client, world, clock, [60, 90, 30])
    pages = await browser("taff-commissioner")

    got = await download(pages, "xlsx", clock)

    book = openpyxl.load_workbook(io.BytesIO(got.content), read_only=True)
    assert book.sheetnames
    assert got.headers["content-type"].startswith("application/vnd.openxmlformats")


async def test_the_pdf_download_opens_and_names_the_scheme(
    app_client: httpx.AsyncClient, world: World, clock: Clock, browser: Browser
) -> None:
    await log_hours(app_client, world, clock, [60])
    pages = await browser("taff-commissioner")

    got = await download(pages, "pdf", clock)

    pdf = pypdf.PdfReader(io.BytesIO(got.content))
    text = " ".join(p.extract_text() for p in pdf.pages)
    assert "Taff Housing" in text


async def test_the_json_download_matches_the_api_report(
    app_client: httpx.AsyncClient, world: World, clock: Clock, browser: Browser
) -> None:
    await log_hours(app_client, world, clock, [30, 30])
    pages = await browser("taff-commissioner")

    got = await download(pages, "json", clock)

    assert got.json()["headline"]["minutes"] == 60


async def test_a_download_in_an_unknown_format_is_refused_naming_the_field(
    world: World, browser: Browser
) -> None:
    pages = await browser("taff-commissioner")
    r = await pages.submit("/s/taff/commission/downloads", {"format": "docx"}, status=422)
    assert 'id="e-format"' in r.text


async def test_a_member_may_not_see_the_commissioner_pages(world: World, browser: Browser) -> None:
    pages = await browser("taff-member")
    await pages.get(DASH, status=403)
    await pages.get("/s/taff/commission/downloads", status=403)
    await pages.get(DASH + "/charts/hours-by-month.png", status=403)


async def test_another_schemes_dashboard_is_not_found(world: World, browser: Browser) -> None:
    pages = await browser("taff-commissioner")
    await pages.get("/s/m2m/commission", status=404)
    await pages.get("/s/m2m/commission/downloads", status=404)


async def test_staff_may_read_the_dashboard_as_the_api_lets_them(
    world: World, browser: Browser
) -> None:
    pages = await browser("taff-coordinator")
    page = await pages.get(DASH)
    assert "Hours given" in page.text
    await (await browser("taff-partner-staff")).get(DASH, status=403)
