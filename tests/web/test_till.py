"""The till pages for partner staff: a voucher found by its typed code, settled or voided once;
today's redemptions, statements and their CSV; reconciling the till's file; and who may not."""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Awaitable, Callable

import httpx
import pytest
from starlette.applications import Starlette

from partners.codes import display, new_code, normalise
from tests.api.test_vouchers_api import (
    agree,
    balance,
    give_credits,
    ok,
    partner_minutes,
    settle,
    show,
    statement_minutes,
    voucher,
)
from tests.api.world import World
from tests.conftest import Clock
from tests.web.conftest import Pages
from timebank.spreadsheets import safe_cell

pytestmark = pytest.mark.both_backends

Browser = Callable[[str], Awaitable[Pages]]
TILL = "/s/taff/till"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_KEY = re.compile(r'name="key" value="([^"]+)"')


def typed_badly(code: str) -> str:
    """The code as a hurried person types it: small letters, spaces for some dashes."""
    return code.lower().replace("-", " ", 1)


def tokens(html: str) -> tuple[str, str]:
    """The CSRF token and idempotency key of the first form on a page."""
    return _CSRF.findall(html)[0], _KEY.findall(html)[0]


async def test_a_typed_code_finds_the_voucher_and_settling_it_spends_the_credits(
    app_client: httpx.AsyncClient, world: World, clock: Clock, browser: Browser, app: Starlette
) -> None:
    c, w = app_client, world
    await give_credits(c, w, clock, "M1", 120)
    code = await voucher(c, w)
    assert await balance(c, w, "M1") == 60  # reserved when taken
    till = await browser("taff-partner-staff")
    found = await till.submit(TILL, {"code": typed_badly(code)})
    assert str(found.url).endswith(f"{TILL}/v/{code}")
    assert code in found.text and "A swim" in found.text and "Ready to use" in found.text
    assert "1:00" in found.text and 'name="venue" value="hall"' in found.text  # its only venue
    done = await till.submit(f"{TILL}/v/{code}/settle", {"venue": "hall"},
                             form_page=f"{TILL}/v/{code}")  # fmt: skip
    assert str(done.url) == f"http://tb.test{TILL}"  # the notice travels in a cookie
    assert f"Voucher {code} is settled" in done.text and 'role="status"' in done.text
    seen = await show(c, w, code)
    assert seen["state"] == "posted" and seen["venue"] == "hall"
    assert await balance(c, w, "M1") == 60  # spent: not given back
    assert await partner_minutes(app) == 60
    # the voucher's page now says it was used, and offers no settle button
    again = await till.get(f"{TILL}/v/{code}")
    assert "Already used" in again.text and "/settle" not in again.text


async def test_settling_twice_with_the_same_form_settles_once(
    app_client: httpx.AsyncClient, world: World, clock: Clock, browser: Browser, app: Starlette
) -> None:
    c, w = app_client, world
    await give_credits(c, w, clock, "M1", 60)
    code = await voucher(c, w)
    till = await browser("taff-partner-staff")
    form = await till.get(f"{TILL}/v/{code}")
    csrf, key = tokens(form.text)
    data = {"csrf": csrf, "key": key, "venue": "hall"}
    for _ in range(2):  # a double tap: the same form posted twice
        r = await till.client.post(f"{TILL}/v/{code}/settle", data=data)
        assert r.status_code == 303 and r.headers["location"] == TILL
    assert (await show(c, w, code))["state"] == "posted"
    assert await partner_minutes(app) == 60 and await statement_minutes(c, w, clock) == 60
    # another form (another till): refused, the voucher is already settled
    fresh = data | {"key": uuid.uuid4().hex}
    r = await till.client.post(f"{TILL}/v/{code}/settle", data=fresh)
    assert r.status_code == 409 and "already settled" in r.text
    assert await partner_minutes(app) == 60


async def test_voiding_at_the_till_gives_the_credits_back(
    app_client: httpx.AsyncClient, world: World, clock: Clock, browser: Browser
) -> None:
    c, w = app_client, world
    await give_credits(c, w, clock, "M1", 60)
    code = await voucher(c, w)
    assert await balance(c, w, "M1") == 0
    till = await browser("taff-partner-staff")
    done = await till.submit(f"{TILL}/v/{code}/void", {}, form_page=f"{TILL}/v/{code}")
    assert f"Voucher {code} is void" in done.text
    assert (await show(c, w, code))["state"] == "voided"
    assert await balance(c, w, "M1") == 60
    # a void voucher cannot then be settled from the till
    page = await till.get(f"{TILL}/v/{code}")
    assert "Void: cancelled" in page.text and "/settle" not in page.text
    csrf = _CSRF.findall(page.text)[0]
    r = await till.client.post(f"{TILL}/v/{code}/settle",
                               data={"csrf": csrf, "key": "k1", "venue": "hall"})  # fmt: skip
    assert r.status_code == 409 and (await show(c, w, code))["state"] == "voided"


async def test_an_expired_voucher_shows_as_expired_with_nothing_to_press(
    app_client: httpx.AsyncClient, world: World, clock: Clock, browser: Browser
) -> None:
    c, w = app_client, world
    await give_credits(c, w, clock, "M1", 60)
    code = await voucher(c, w)
    clock.advance(49 * 3600)  # vouchers last 48 hours under the world's agreement
    till = await browser("taff-partner-staff")
    page = await till.get(f"{TILL}/v/{code}")
    assert "Expired" in page.text and "/settle" not in page.text and "/void" not in page.text


async def test_an_unknown_or_mistyped_code_is_refused_naming_the_code_field(
    app_client: httpx.AsyncClient, world: World, clock: Clock, browser: Browser
) -> None:
    till = await browser("taff-partner-staff")
    unknown = display(new_code())
    r = await till.submit(TILL, {"code": unknown}, status=404)
    assert 'id="e-code"' in r.text and 'aria-invalid="true"' in r.text
    assert f"No voucher {unknown} was found" in r.text and 'href="#f-code"' in r.text
    assert f'value="{unknown}"' in r.text  # what was typed stays, to correct it
    r = await till.submit(TILL, {"code": "ABCD-123"}, status=422)
    assert 'id="e-code"' in r.text and "That is not a voucher code" in r.text
    # a voucher of another scheme's partner is not found from this till either
    c, w = app_client, world
    await give_credits(c, w, clock, "M1", 60, scheme="m2m")
    theirs = await voucher(c, w, scheme="m2m", partner="p-m2m")
    r = await till.submit(TILL, {"code": theirs}, status=404)
    assert 'id="e-code"' in r.text


async def test_the_statement_lists_the_settlement_and_downloads_as_csv(
    app_client: httpx.AsyncClient, world: World, clock: Clock, browser: Browser
) -> None:
    c, w = app_client, world
    pool = {"id": "pool", "name": '=HYPERLINK("http://evil.example","pool")'}
    await ok(await c.post("/api/v1/partners/p-taff/venues", json=pool, headers=w.admin), 201)
    await agree(c, w, venues=["hall", "pool"])
    await give_credits(c, w, clock, "M1", 180)
    codes = [await voucher(c, w) for _ in range(3)]
    till = await browser("taff-partner-staff")
    # with two venues the till asks which one
    form = await till.get(f"{TILL}/v/{codes[0]}")
    assert '<select id="f-venue" name="venue">' in form.text and 'value="pool"' in form.text
    await till.submit(f"{TILL}/v/{codes[0]}/settle", {"venue": "pool"},
                      form_page=f"{TILL}/v/{codes[0]}")  # fmt: skip
    await ok(await settle(c, w, codes[1]))  # codes[2] stays pending: on no statement
    remembered = await till.get(f"{TILL}/v/{codes[2]}")  # this till's venue is chosen again
    assert '<option value="pool" selected>' in remembered.text
    day = "2026-01-01"
    today = await till.get(f"{TILL}/today")
    assert day in today.text and "A swim" in today.text and "The hall" in today.text
    page = await till.get(f"{TILL}/statement")  # this month so far
    assert "<caption>Vouchers settled from 2026-01-01 to 2026-01-01" in page.text
    assert "The hall" in page.text and "£9.00" in page.text  # two swims at £4.50
    clock.advance(86_400)  # the next day (and a new session: the last one timed out)
    tomorrow = await (await browser("taff-partner-staff")).get(f"{TILL}/today")
    assert "2026-01-02" in tomorrow.text and "No vouchers have been settled today" in tomorrow.text
    till = await browser("taff-partner-staff")
    r = await till.get(f"{TILL}/statement.csv?start={day}&end={day}")
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(x["row"], x["venue"], x["vouchers"], x["minutes"]) for x in rows] == [
        ("line", "hall", "1", "60"), ("line", "pool", "1", "60"), ("total", "", "2", "120"),
    ]  # fmt: skip
    assert rows[1]["venue_name"] == "'" + pool["name"]  # no formula runs in a spreadsheet
    empty = await till.get(f"{TILL}/statement.csv?start=2025-12-01&end=2025-12-31")
    assert [x["row"] for x in csv.DictReader(io.StringIO(empty.text))] == ["total"]
    bad = await till.get(f"{TILL}/statement?start=2026-02-01&end=2026-01-01", status=422)
    assert 'id="e-end"' in bad.text


def test_csv_cells_that_would_start_a_formula_are_neutralised() -> None:
    for cell in ("=1+1", "+44 20", "-2", "@SUM(A1)", "\t=x"):
        assert safe_cell(cell) == "'" + cell
    assert safe_cell("The hall") == "The hall" and safe_cell(60) == "60"


async def test_uploading_the_tills_file_shows_what_matches_and_what_does_not(
    app_client: httpx.AsyncClient, world: World, clock: Clock, browser: Browser
) -> None:
    c, w = app_client, world
    await give_credits(c, w, clock, "M1", 120)
    a, b = await voucher(c, w), await voucher(c, w)
    for code in (a, b):
        await ok(await settle(c, w, code))
    unknown = display(new_code())
    text = (
        "code,datetime,offer,venue,cashier\n"
        f"{(normalise(a) or '').lower()},2026-01-01T00:05:00,swim,hall,ann\n"
        f"{unknown},2026-01-01T00:07:00,swim,hall,ann\n"
    )
    till = await browser("taff-partner-staff")
    files = {"file": ("till.csv", text.encode(), "text/csv")}
    r = await till.submit(f"{TILL}/reconcile", {}, files=files)
    assert "Result for till.csv" in r.text and "Some records do not match" in r.text
    matched = re.search(r"Matched</th><td class=\"num\">(\d+)</td>", r.text)
    assert matched is not None and matched.group(1) == "1"
    till_only = r.text.split("On the till, not on the ledger</h3>")[1].split("</ul>")[0]
    ledger_only = r.text.split("On the ledger, not on the till</h3>")[1].split("</ul>")[0]
    assert unknown in till_only and b in ledger_only and a not in till_only + ledger_only
    # the same file again is recognised as such
    r = await till.submit(f"{TILL}/reconcile", {}, files=files)
    assert "This file was uploaded before" in r.text
    # a malformed file is refused line by line; no file at all names the file field
    bad = text + "NOT-A-CODE,yesterday,swim,hall,bob\n"
    r = await till.submit(f"{TILL}/reconcile", {}, status=422,
                          files={"file": ("till.csv", bad.encode(), "text/csv")})  # fmt: skip
    assert 'id="e-file"' in r.text and "<caption>Problems in the file</caption>" in r.text
    assert '<td class="num">4</td><td>code</td>' in r.text
    assert '<td class="num">4</td><td>datetime</td>' in r.text
    r = await till.submit(f"{TILL}/reconcile", {}, status=422,
                          files={"file": ("", b"", "application/octet-stream")})  # fmt: skip
    assert 'id="e-file"' in r.text and "Choose the CSV file" in r.text


async def test_a_member_may_not_use_the_till(world: World, browser: Browser) -> None:
    member = await browser("taff-member")
    for path in ("", "/today", "/statement", "/statement.csv", "/reconcile"):
        await member.get(TILL + path, status=403)


async def test_another_schemes_till_is_not_found(world: World, browser: Browser) -> None:
    till = await browser("taff-partner-staff")
    for path in ("", "/today", "/statement", "/statement.csv", "/reconcile"):
        await till.get("/s/m2m/till" + path, status=404)


async def test_the_till_loads_its_camera_script_but_needs_none(
    world: World, browser: Browser
) -> None:
    till = await browser("taff-partner-staff")
    page = await till.get(TILL)
    assert '<script src="/static/till.js" defer></script>' in page.text
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page.text) is None  # nothing inline
    assert '<form method="post" action="/s/taff/till"' in page.text
    assert re.search(r'<button type="button" id="till-scan"[^>]*\bhidden>', page.text)
    assert 'aria-current="page"' in page.text
    script = await till.get("/static/till.js")
    assert "BarcodeDetector" in script.text and "getUserMedia" in script.text
    assert "requestSubmit" in script.text
