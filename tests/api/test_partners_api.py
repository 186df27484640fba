"""Partners over HTTP: statements per period and venue, reconciling a till's CSV with the
ledger, retiring the credits a partner holds (a receipt anyone can check), and the offers a
scheme's members can take a voucher for today."""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from ledger import from_us, receipt_problem
from ledger.model import Posting
from ledger.records import parse_receipt
from partners.codes import display, new_code, normalise
from tests.api.test_vouchers_api import (
    V1,
    agree,
    give_credits,
    new_offer,
    ok,
    partner_minutes,
    refused,
    settle,
    today,
    voucher,
)
from tests.api.world import World
from tests.conftest import Clock, snapshot

pytestmark = pytest.mark.both_backends

STATEMENT = f"{V1}/taff/partner/statement"
RECONCILE = f"{V1}/taff/partner/reconciliations"
RETIRE = f"{V1}/taff/agreements/p-taff/retire"
CSV = {"Content-Type": "text/csv"}


async def with_pool_and_sauna(c: httpx.AsyncClient, w: World) -> None:
    """p-taff gains a venue (pool) and an offer (sauna, 2 credits, usual price £9), agreed."""
    r = await c.post("/api/v1/partners/p-taff/venues", headers=w.admin,
                     json={"id": "pool", "name": "The pool", "area": "CF24"})  # fmt: skip
    await ok(r, 201)
    await new_offer(c, w, id="sauna", title="Sauna", credits=2, cash_price_pence=900)
    await agree(c, w, offers=["swim", "sauna"], venues=["hall", "pool"])


async def statement(
    c: httpx.AsyncClient, headers: dict[str, str], start: str, end: str, **extra: str
) -> dict[str, Any]:
    return await ok(await c.get(STATEMENT, headers=headers,
                                params={"start": start, "end": end} | extra))  # fmt: skip


def table(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(r["row"], r["venue"], r["offer"], r["vouchers"], r["minutes"],
             r["usual_price_pence"]) for r in rows]  # fmt: skip


def db_rows(db_url: str, table_name: str) -> list[str]:
    return snapshot(db_url)[table_name]


# ---- statements --------------------------------------------------------------------------------


async def test_a_statement_counts_the_periods_settlements_by_venue_and_offer(
    app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    await with_pool_and_sauna(c, w)
    await give_credits(c, w, clock, "M1", 600)
    for offer, venue in (("swim", "hall"), ("swim", "hall"), ("swim", "pool"), ("sauna", "pool")):
        await ok(await settle(c, w, await voucher(c, w, offer=offer), venue=venue))
    await voucher(c, w)  # pending: not on any statement
    voided = await voucher(c, w)
    await ok(
        await c.post(f"{V1}/taff/vouchers/{voided}/void", headers=w.as_("taff", "coordinator"))
    )
    ps, co = w.as_("taff", "partner-staff"), w.as_("taff", "coordinator")
    day1 = today(clock)
    got = await statement(c, ps, day1, day1)
    assert (got["partner"], got["scheme"], got["start"], got["end"]) == ("p-taff", "taff", day1,
                                                                          day1)  # fmt: skip
    assert (got["vouchers"], got["minutes"], got["credits"], got["usual_price_pence"]) == (
        4, 300, "5.00", 3 * 450 + 900,
    )  # fmt: skip
    assert table(got["rows"]) == [
        ("line", "hall", "swim", 2, 120, 900),
        ("line", "pool", "sauna", 1, 120, 900),
        ("line", "pool", "swim", 1, 60, 450),
        ("total", "", "", 4, 300, 2250),
    ]
    assert {r["venue_name"] for r in got["rows"]} == {"The hall", "The pool", ""}
    # the scheme's coordinators and admins see it too, naming the partner
    assert await statement(c, co, day1, day1, partner="p-taff") == got
    assert await statement(c, w.as_("taff", "scheme-admin"), day1, day1, partner="p-taff") == got
    refused(await c.get(STATEMENT, headers=co, params={"start": day1, "end": day1}), 422,
            "partner")  # fmt: skip
    # a period that leaves the settlements out: nothing
    for start, end in (("2025-12-01", "2025-12-31"), ("2026-01-02", "2026-01-31")):
        empty = await statement(c, ps, start, end)
        assert (empty["vouchers"], empty["minutes"], empty["usual_price_pence"]) == (0, 0, 0)
        assert empty["credits"] == "0.00"
        assert table(empty["rows"]) == [("total", "", "", 0, 0, 0)]
    # the next day's settlement is the next day's
    clock.advance(86_400)
    await ok(await settle(c, w, await voucher(c, w), venue="hall"))
    day2 = today(clock)
    assert (await statement(c, ps, day2, day2))["vouchers"] == 1
    assert (await statement(c, ps, day1, day1))["vouchers"] == 4
    both = await statement(c, ps, day1, day2)
    assert (both["vouchers"], both["minutes"], both["usual_price_pence"]) == (5, 360, 2700)
    assert table(both["rows"])[0] == ("line", "hall", "swim", 3, 180, 1350)


async def test_statement_queries_are_checked(
    app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    ps, co = w.as_("taff", "partner-staff"), w.as_("taff", "coordinator")
    day = today(clock)
    for params, field in (
        ({"start": "2026-01-02", "end": "2026-01-01"}, "end"),
        ({"start": "2026-02-30", "end": day}, "start"),
        ({"start": day}, "end"),
        ({"start": day, "end": day, "venue": "hall"}, "venue"),
        ({"start": day, "end": day, "partner": "Not An Id"}, "partner"),
    ):
        refused(await c.get(STATEMENT, headers=ps, params=params), 422, field)
    # a partner the scheme has no agreement with: as if there were none
    for partner in ("p-m2m", "p-none"):
        r = await c.get(STATEMENT, headers=co, params={"start": day, "end": day,
                                                       "partner": partner})  # fmt: skip
        refused(r, 404, "partner")


# ---- reconciliation ----------------------------------------------------------------------------


async def test_reconciling_a_till_file_sorts_every_record_into_one_category(
    app_client: httpx.AsyncClient, world: World, clock: Clock, db_url: str
) -> None:
    c, w = app_client, world
    await with_pool_and_sauna(c, w)
    await give_credits(c, w, clock, "M1", 300)
    a, b, d, e = [await voucher(c, w) for _ in range(4)]
    for code in (a, b, d, e):
        await ok(await settle(c, w, code))  # all at the hall, 2026-01-01T00:00:00Z
    unknown = display(new_code())  # on the till, never issued
    till = (
        "code,datetime,offer,venue,cashier\n"
        f"{(normalise(a) or '').lower()},2026-01-01T01:00:00,swim,hall,ann\n"  # matched
        f"{b},2026-01-01T00:10:00+00:00,swim,pool,ann\n"  # the venue differs
        f"{d},2026-01-02T12:00:00,sauna,hall,bob\n"  # the offer and the time differ
        f"{unknown},2026-01-01T02:00:00,swim,hall,bob\n"  # not on the ledger
    )  # e: on the ledger, not on the till
    ps = w.as_("taff", "partner-staff") | CSV
    got = await ok(await c.post(RECONCILE, content=till.encode(), headers=ps))
    assert got["new_upload"] is True and got["matched"] == 1
    assert got["mismatches"] == [
        {"code": b, "line": "3", "fields": "venue"},
        {"code": d, "line": "4", "fields": "offer,datetime"},
    ]
    assert got["on_till_not_ledger"] == [unknown]
    assert got["on_ledger_not_till"] == [e]
    assert got["totals"] == {
        "matched": {"count": 1, "minutes": 60},
        "mismatches": {"count": 2, "minutes": 120},
        "on_till_not_ledger": {"count": 1, "minutes": 60},
        "on_ledger_not_till": {"count": 1, "minutes": 60},
    }
    assert len(db_rows(db_url, "pt_reconciliations")) == 1
    # the same file again is recognised (the same records, however written and ordered)
    again = await ok(await c.post(RECONCILE, content=till.encode(), headers=ps))
    assert again == got | {"new_upload": False}
    lines = till.splitlines()
    as_shown = lines[1].replace((normalise(a) or "").lower(), a)
    shuffled = "\n".join([lines[0], lines[4], lines[2].replace("+00:00", "Z"), lines[3],
                          as_shown]) + "\n"  # fmt: skip
    assert (await ok(await c.post(RECONCILE, content=shuffled.encode(),
                                  headers=ps)))["new_upload"] is False  # fmt: skip
    assert len(db_rows(db_url, "pt_reconciliations")) == 1
    # another file is another upload; an empty one (no sales) finds everything missing
    fixed = till.replace(",pool,", ",hall,")
    assert (await ok(await c.post(RECONCILE, content=fixed.encode(), headers=ps)))[
        "matched"] == 2  # fmt: skip
    empty = await ok(await c.post(RECONCILE, content=b"code,datetime,offer,venue\n", headers=ps))
    assert empty["new_upload"] is True and empty["matched"] == 0
    assert sorted(empty["on_ledger_not_till"]) == sorted([a, b, d, e])
    assert len(db_rows(db_url, "pt_reconciliations")) == 3


async def test_a_malformed_till_file_is_refused_line_by_line_and_nothing_is_recorded(
    app_client: httpx.AsyncClient, world: World, clock: Clock, db_url: str
) -> None:
    c, w = app_client, world
    await give_credits(c, w, clock, "M1", 60)
    code = await voucher(c, w)
    await ok(await settle(c, w, code))
    canonical = normalise(code) or ""
    typo = display(canonical[:3] + ("0" if canonical[3] != "0" else "1") + canonical[4:])
    till = (
        "code,datetime,offer,venue\n"
        f"{code},2026-01-01T00:05:00,swim,hall\n"  # a good line
        f"{typo},2026-01-01T00:05:00,swim,hall\n"  # 3: one wrong symbol
        f"{display(new_code())},yesterday,swim,hall\n"  # 4: not a time
        f"{display(new_code())},2026-01-01,swim,hall\n"  # 5: a date alone
        f"{display(new_code())},2026-01-01T09:00:00,Swim!,hall\n"  # 6: not an offer id
        f"{code},2026-01-01T00:06:00,swim,hall\n"  # 7: the same code as line 2
        f"{display(new_code())},2026-01-01T09:00:00,swim\n"  # 8: a field short
    )
    ps = w.as_("taff", "partner-staff") | CSV
    before = db_rows(db_url, "pt_reconciliations")
    r = await c.post(RECONCILE, content=till.encode(), headers=ps)
    body = refused(r, 422, "code")
    assert body["code"] == "import_refused"
    assert [(e["line"], e["field"]) for e in body["errors"]] == [
        ("3", "code"), ("4", "datetime"), ("5", "datetime"), ("6", "offer"), ("7", "code"),
        ("8", ""),
    ]  # fmt: skip
    assert "line 2" in body["errors"][4]["message"]
    for bad, errors in (
        ("code,offer,venue\n", [("1", "datetime")]),
        ("", [("1", "code"), ("1", "datetime"), ("1", "offer"), ("1", "venue")]),
        ('code,datetime,offer,venue\n"unclosed,2026-01-01T00:00:00,swim,hall\n', None),
    ):
        r = await c.post(RECONCILE, content=bad.encode(), headers=ps)
        assert r.status_code == 422, r.text
        if errors is not None:
            assert [(e["line"], e["field"]) for e in r.json()["errors"]] == errors
    assert db_rows(db_url, "pt_reconciliations") == before == []
    # the good line alone goes through
    r = await c.post(RECONCILE, content="\n".join(till.splitlines()[:2]).encode(), headers=ps)
    assert (await ok(r))["matched"] == 1


# ---- retirement --------------------------------------------------------------------------------


async def test_retiring_a_partners_credits_gives_a_receipt_anyone_can_check(
    app: Starlette, app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    await give_credits(c, w, clock, "M1", 180)
    for _ in range(2):
        await ok(await settle(c, w, await voucher(c, w)))
    assert await partner_minutes(app) == 120
    sa = w.as_("taff", "scheme-admin")
    got = await ok(await c.post(RETIRE, headers=sa | {"Idempotency-Key": "march"}), 201)
    assert (got["partner"], got["minutes"]) == ("p-taff", 120)
    receipt = parse_receipt(got["receipt"])
    assert receipt_problem(receipt, receipt.keys) is None
    entry = receipt.entry
    assert entry.ledger == "taff" and entry.seq == got["entry"]
    assert set(entry.postings) == {Posting("partner:p-taff", -120),
                                   Posting("scheme:retired", 120)}  # fmt: skip
    assert dict(entry.meta) == {"settlement": "p-taff"}
    assert receipt.checkpoint.size >= entry.seq
    # a receipt altered in any way no longer checks out
    forged = dataclasses.replace(entry, postings=(Posting("partner:p-taff", -60),
                                                  Posting("scheme:retired", 60)))  # fmt: skip
    assert receipt_problem(dataclasses.replace(receipt, entry=forged), receipt.keys) is not None
    # the partner holds nothing now: nothing more to retire
    assert await partner_minutes(app) == 0
    refused(await c.post(RETIRE, headers=sa | {"Idempotency-Key": "april"}), 409, "partner")
    refused(await c.post(RETIRE, headers=w.admin), 409, "partner")
    # what is settled later is retired later
    await ok(await settle(c, w, await voucher(c, w)))
    later = await ok(await c.post(RETIRE, headers=w.admin), 201)
    assert later["minutes"] == 60 and later["entry"] > got["entry"]
    assert receipt_problem(parse_receipt(later["receipt"]), receipt.keys) is None
    assert await partner_minutes(app) == 0
    # a partner without an agreement here
    r = await c.post(f"{V1}/taff/agreements/p-m2m/retire", headers=sa)
    refused(r, 404, "partner")


async def test_a_retried_retirement_gets_the_same_answer(
    app: Starlette, app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    await give_credits(c, w, clock, "M1", 60)
    await ok(await settle(c, w, await voucher(c, w)))
    headers = w.as_("taff", "scheme-admin") | {"Idempotency-Key": "march"}
    first = await ok(await c.post(RETIRE, headers=headers), 201)
    again = await c.post(RETIRE, headers=headers)
    assert again.status_code == 201, again.text
    assert again.json()["entry"] == first["entry"]


# ---- the offers members can take ---------------------------------------------------------------


async def test_partner_offers_lists_only_agreed_offers_available_today(
    app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    tomorrow = "2026-01-02"
    await new_offer(c, w, id="later", title="Opens tomorrow", starts=tomorrow)
    await new_offer(c, w, id="gone", title="Closed", ends="2025-12-31")
    await new_offer(c, w, id="spare", title="Not agreed")
    await agree(c, w, offers=["swim", "later", "gone"])
    for partner, starts, ends in (
        ("p-old", "2020-01-01", "2025-12-31"),
        ("p-new", tomorrow, None),
        ("p-now", "2026-01-01", None),
    ):
        await ok(
            await c.post(
                "/api/v1/partners",
                headers=w.admin,
                json={"id": partner, "name": partner, "sector": "private"},
            ),
            201,
        )
        await ok(
            await c.post(
                f"/api/v1/partners/{partner}/venues",
                headers=w.admin,
                json={"id": "shop", "name": "Shop"},
            ),
            201,
        )
        await ok(
            await c.post(
                f"/api/v1/partners/{partner}/offers",
                headers=w.admin,
                json={
                    "id": "deal",
                    "title": "A deal",
                    "credits": 2,
                    "cash_price_pence": 1000,
                    "starts": "2020-01-01",
                },
            ),
            201,
        )
        await ok(await c.post(f"{V1}/taff/agreements", headers=w.admin,
                              json={"partner": partner, "offers": ["deal"], "venues": ["shop"],
                                    "starts": starts, "ends": ends}), 201)  # fmt: skip

    async def listed(scheme: str = "taff") -> list[tuple[str, str]]:
        r = await c.get(f"{V1}/{scheme}/partner-offers", headers=w.members[(scheme, "M1")])
        got = await ok(r)
        assert got["next_cursor"] is None
        return [(o["partner"], o["id"]) for o in got["items"]]

    assert sorted(await listed()) == [("p-now", "deal"), ("p-taff", "swim")]
    offer = next(o for o in (await ok(await c.get(
        f"{V1}/taff/partner-offers", headers=w.as_("taff", "commissioner"))))["items"]
        if o["id"] == "swim")  # fmt: skip
    assert offer == {"partner": "p-taff", "id": "swim", "title": "A swim", "credits": 1,
                     "cash_price_pence": 450, "starts": "2020-01-01", "ends": None,
                     "per_day": None, "per_week": None, "eligibility": ""}  # fmt: skip
    assert await listed("m2m") == [("p-m2m", "swim")]
    # what is listed is what can be taken, and what is not listed cannot
    await give_credits(c, w, clock, "M1", 600)
    for partner, offer_id in (("p-taff", "later"), ("p-taff", "gone"), ("p-new", "deal")):
        r = await c.post(f"{V1}/taff/vouchers", headers=w.members[("taff", "M1")],
                         json={"partner": partner, "offer": offer_id})  # fmt: skip
        refused(r, 409, "offer")
    r = await c.post(f"{V1}/taff/vouchers", headers=w.members[("taff", "M1")],
                     json={"partner": "p-taff", "offer": "spare"})  # fmt: skip
    refused(r, 409, "offer")
    r = await c.post(f"{V1}/taff/vouchers", headers=w.members[("taff", "M1")],
                     json={"partner": "p-old", "offer": "deal"})  # fmt: skip
    refused(r, 409, "offer")
    # tomorrow: what opens tomorrow
    clock.advance(86_400)
    assert from_us(clock()).date().isoformat() == tomorrow
    assert sorted(await listed()) == [("p-new", "deal"), ("p-now", "deal"), ("p-taff", "later"),
                                      ("p-taff", "swim")]  # fmt: skip
    r = await c.post(f"{V1}/taff/vouchers", headers=w.members[("taff", "M1")],
                     json={"partner": "p-new", "offer": "deal"})  # fmt: skip
    assert (await ok(r, 201))["minutes"] == 120
