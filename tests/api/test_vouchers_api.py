"""Vouchers over HTTP: a member takes one (credits reserved), partner staff settle it at the
till (credits to the partner, once however many tills try) or void it, or it expires; codes
with a typo are refused; offers' daily capacity and agreements' monthly caps hold; partners'
integrations may sign their settle requests with a registered Ed25519 key."""

from __future__ import annotations

import asyncio
import base64
import itertools
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from starlette.applications import Starlette

from ledger import from_us
from partners.codes import display, new_code, normalise
from partners.qr import voucher_qr_svg
from partners.signatures import settle_message
from tests.api.world import OFFER, World
from tests.conftest import Clock

pytestmark = pytest.mark.both_backends

V1 = "/api/v1/schemes"
PROBLEM = "application/problem+json"
SVG = "{http://www.w3.org/2000/svg}svg"
_days_back = itertools.count(1)


# ---- helpers (test_partners_api.py uses them too) --------------------------------------------


async def ok(r: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert isinstance(body, dict)
    return body


def refused(r: httpx.Response, status: int, field: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM, r.headers
    body = r.json()
    assert isinstance(body, dict)
    assert body.get("field") == field, body
    return body


def short(r: httpx.Response) -> None:
    """Refused for want of credits: the member's account would go below its floor."""
    assert r.status_code == 409 and r.headers["content-type"] == PROBLEM, r.text
    assert r.json()["code"] == "floor_breached", r.text


def today(clock: Clock) -> str:
    return from_us(clock()).date().isoformat()


async def give_credits(
    c: httpx.AsyncClient, w: World, clock: Clock, member: str, minutes: int, scheme: str = "taff"
) -> None:
    """`member` earns `minutes`: a claim they log (on a day of its own) that C1 confirms."""
    day = (from_us(clock()).date() - timedelta(days=next(_days_back))).isoformat()
    body: dict[str, Any] = {"activity": "garden" if scheme == "taff" else "lift", "date": day,
                            "minutes": minutes}  # fmt: skip
    if scheme == "m2m":
        body["receiver"] = "A1"
    claim = await ok(await c.post(f"{V1}/{scheme}/claims", json=body,
                                  headers=w.members[(scheme, member)]), 201)  # fmt: skip
    await ok(await c.post(f"{V1}/{scheme}/claims/{claim['id']}/confirm",
                          headers=w.as_(scheme, "coordinator")))  # fmt: skip


async def balance(c: httpx.AsyncClient, w: World, member: str, scheme: str = "taff") -> int:
    r = await c.get(f"{V1}/{scheme}/members/{member}/balance",
                    headers=w.as_(scheme, "coordinator"))  # fmt: skip
    minutes = (await ok(r))["minutes"]
    assert isinstance(minutes, int)
    return minutes


async def take(
    c: httpx.AsyncClient, w: World, member: str = "M1", *, offer: str = "swim",
    partner: str = "p-taff", scheme: str = "taff", status: int = 201, key: str | None = None,
) -> httpx.Response:  # fmt: skip
    """`member` takes a voucher for `offer` with their own token."""
    headers = w.members[(scheme, member)] | ({"Idempotency-Key": key} if key else {})
    r = await c.post(f"{V1}/{scheme}/vouchers", json={"partner": partner, "offer": offer},
                     headers=headers)  # fmt: skip
    assert r.status_code == status, r.text
    return r


async def voucher(c: httpx.AsyncClient, w: World, member: str = "M1", **kw: Any) -> str:
    """A fresh pending voucher's code (as displayed)."""
    code = (await take(c, w, member, **kw)).json()["code"]
    assert isinstance(code, str)
    return code


async def settle(
    c: httpx.AsyncClient, w: World, code: str, *, venue: str = "hall", key: str | None = None,
    scheme: str = "taff", headers: dict[str, str] | None = None,
) -> httpx.Response:  # fmt: skip
    h = (headers or w.as_(scheme, "partner-staff")) | ({"Idempotency-Key": key} if key else {})
    return await c.post(f"{V1}/{scheme}/vouchers/{code}/settle", json={"venue": venue}, headers=h)


async def show(c: httpx.AsyncClient, w: World, code: str, scheme: str = "taff") -> dict[str, Any]:
    r = await c.get(f"{V1}/{scheme}/vouchers/{code}", headers=w.as_(scheme, "coordinator"))
    return await ok(r)


async def partner_minutes(app: Starlette, partner: str = "p-taff", scheme: str = "taff") -> int:
    account = await app.state.services.bank.ledger.account(scheme, f"partner:{partner}")
    held = account.balance
    assert isinstance(held, int)
    return held


async def statement_minutes(c: httpx.AsyncClient, w: World, clock: Clock) -> int:
    r = await c.get(f"{V1}/taff/partner/statement", headers=w.as_("taff", "partner-staff"),
                    params={"start": today(clock), "end": today(clock)})  # fmt: skip
    minutes = (await ok(r))["minutes"]
    assert isinstance(minutes, int)
    return minutes


async def new_offer(c: httpx.AsyncClient, w: World, **fields: Any) -> dict[str, Any]:
    body = OFFER | fields
    return await ok(await c.post("/api/v1/partners/p-taff/offers", json=body, headers=w.admin), 201)


async def agree(c: httpx.AsyncClient, w: World, **fields: Any) -> dict[str, Any]:
    """Change taff's agreement with p-taff (the world's one, with `fields` changed)."""
    body = {"partner": "p-taff", "offers": ["swim"], "venues": ["hall"],
            "starts": "2020-01-01"} | fields  # fmt: skip
    return await ok(await c.post(f"{V1}/taff/agreements", json=body, headers=w.admin), 201)


# ---- issuing -----------------------------------------------------------------------------------


async def test_a_voucher_reserves_its_credits_and_shows_its_code_and_state(
    app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    await give_credits(c, w, clock, "M1", 180)
    assert await balance(c, w, "M1") == 180
    made = (await take(c, w, "M1", key="phone-1")).json()
    assert made["member"] == "M1" and made["partner"] == "p-taff" and made["offer"] == "swim"
    assert made["minutes"] == 60 and made["state"] == "pending" and made["venue"] is None
    assert made["settled_by"] is None and isinstance(made["reservation"], int)
    canonical = normalise(made["code"])
    assert canonical is not None and display(canonical) == made["code"]  # XXXX-XXXX-C
    assert from_us(clock()) + timedelta(hours=48) == datetime.fromisoformat(made["expires"])
    assert await balance(c, w, "M1") == 120  # reserved: not spendable twice
    # the same request retried: the same voucher, nothing more reserved
    again = (await take(c, w, "M1", key="phone-1")).json()
    assert again == made and await balance(c, w, "M1") == 120
    # the member, the scheme's staff and the partner's staff see it, by its code in any case
    for headers in (w.members[("taff", "M1")], w.as_("taff", "coordinator"),
                    w.as_("taff", "scheme-admin"), w.as_("taff", "partner-staff")):  # fmt: skip
        seen = await ok(await c.get(f"{V1}/taff/vouchers/{made['code'].lower()}",
                                    headers=headers))  # fmt: skip
        assert seen == made
    # a coordinator takes one for a member; a member only for themselves
    r = await c.post(f"{V1}/taff/vouchers", headers=w.as_("taff", "coordinator"),
                     json={"partner": "p-taff", "offer": "swim", "member": "M1"})  # fmt: skip
    assert (await ok(r, 201))["member"] == "M1" and await balance(c, w, "M1") == 60
    r = await c.post(f"{V1}/taff/vouchers", headers=w.members[("taff", "M1")],
                     json={"partner": "p-taff", "offer": "swim", "member": "M2"})  # fmt: skip
    refused(r, 403, "member")


async def test_a_voucher_request_retried_later_with_its_key_gets_the_first_voucher(
    app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    await give_credits(c, w, clock, "M1", 120)
    first = (await take(c, w, "M1", key="take-1")).json()
    clock.advance(30)  # the answer was lost; the member's phone retries half a minute later
    again = (await take(c, w, "M1", key="take-1")).json()
    assert again == first  # found by the crash harness: the expiry made it "a different request"
    assert await balance(c, w, "M1") == 60  # one voucher reserved, not two


async def test_no_credits_no_voucher_and_unknown_offers_are_refused(
    app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    short(await take(c, w, "M2", status=409))
    await give_credits(c, w, clock, "M2", 60)
    refused(await take(c, w, "M2", offer="sauna", status=404), 404, "offer")
    refused(await take(c, w, "M2", partner="p-none", status=404), 404, "partner")
    # another scheme's partner: taff has no agreement with it
    refused(await take(c, w, "M2", partner="p-m2m", status=404), 404, "partner")
    assert await balance(c, w, "M2") == 60
    await take(c, w, "M2")
    assert await balance(c, w, "M2") == 0


async def test_the_qr_code_is_an_svg_of_the_voucher(
    app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    await give_credits(c, w, clock, "M1", 60)
    code = await voucher(c, w)
    for headers in (w.members[("taff", "M1")], w.as_("taff", "partner-staff")):
        r = await c.get(f"{V1}/taff/vouchers/{code}/qr", headers=headers)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "image/svg+xml"
        root = ET.fromstring(r.content)
        assert root.tag == SVG
        assert int(root.attrib["width"]) == int(root.attrib["height"]) > 0
        assert r.text == voucher_qr_svg(code)  # the QR code of this voucher's code
    r = await c.get(f"{V1}/taff/vouchers/{code}/qr", headers=w.members[("taff", "M2")])
    refused(r, 404, "code")  # another member's voucher: as if there were none
    await give_credits(c, w, clock, "M1", 60)
    other = await voucher(c, w)
    r = await c.get(f"{V1}/taff/vouchers/{other}/qr", headers=w.members[("taff", "M1")])
    assert r.status_code == 200 and r.text != voucher_qr_svg(code)


# ---- settling ----------------------------------------------------------------------------------


async def test_settling_moves_the_credits_to_the_partner(
    app: Starlette, app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    await give_credits(c, w, clock, "M1", 120)
    code = await voucher(c, w)
    assert await partner_minutes(app) == 0 and await statement_minutes(c, w, clock) == 0
    done = await ok(await settle(c, w, code, key="till-1"))
    assert done["state"] == "posted" and done["venue"] == "hall"
    assert isinstance(done["settled_by"], int) and done["settled_by"] > done["reservation"]
    assert await show(c, w, code) == done
    assert await balance(c, w, "M1") == 60  # spent, not given back
    assert await partner_minutes(app) == 60
    assert await statement_minutes(c, w, clock) == 60
    # and retiring what the partner holds takes exactly what was settled
    r = await c.post(f"{V1}/taff/agreements/p-taff/retire", headers=w.as_("taff", "scheme-admin"))
    assert (await ok(r, 201))["minutes"] == 60


async def test_a_code_settles_once_however_many_tills_try(
    app: Starlette, app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    await give_credits(c, w, clock, "M1", 60)
    code = await voucher(c, w)
    results = await asyncio.gather(
        *(settle(c, w, code, key=f"till-{n}") for n in range(20)), return_exceptions=True
    )
    statuses = [r.status_code if isinstance(r, httpx.Response) else repr(r) for r in results]
    assert sorted(statuses) == [200] + [409] * 19, statuses
    winner = next(n for n, s in enumerate(statuses) if s == 200)
    for r in results:
        assert isinstance(r, httpx.Response)
        if r.status_code == 409:
            refused(r, 409, "code")
            assert "settled" in r.json()["detail"]
    first = results[winner]
    assert isinstance(first, httpx.Response)
    # the winning till retrying its own request gets the same answer; another till a 409
    again = await settle(c, w, code, key=f"till-{winner}")
    assert again.status_code == 200 and again.json() == first.json()
    refused(await settle(c, w, code, key="till-late"), 409, "code")
    refused(await settle(c, w, code), 409, "code")  # no key at all: another request
    assert await partner_minutes(app) == 60 and await balance(c, w, "M1") == 0


async def test_the_same_settle_retried_concurrently_gets_one_answer(
    app: Starlette, app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    await give_credits(c, w, clock, "M1", 60)
    code = await voucher(c, w)
    results = await asyncio.gather(*(settle(c, w, code, key="till-1") for _ in range(10)))
    assert [r.status_code for r in results] == [200] * 10, [r.text for r in results]
    assert len({r.text for r in results}) == 1
    assert await partner_minutes(app) == 60


async def test_no_overspend_under_concurrent_voucher_requests(
    app: Starlette, app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    await give_credits(c, w, clock, "M1", 180)
    headers = w.members[("taff", "M1")]
    results = await asyncio.gather(
        *(c.post(f"{V1}/taff/vouchers", json={"partner": "p-taff", "offer": "swim"},
                 headers=headers | {"Idempotency-Key": f"tap-{n}"}) for n in range(20)),
        return_exceptions=True,
    )  # fmt: skip
    statuses = [r.status_code if isinstance(r, httpx.Response) else repr(r) for r in results]
    assert sorted(statuses) == [201] * 3 + [409] * 17, statuses
    codes = {r.json()["code"] for r in results if isinstance(r, httpx.Response)
             and r.status_code == 201}  # fmt: skip
    assert len(codes) == 3
    for r in results:
        if isinstance(r, httpx.Response) and r.status_code == 409:
            short(r)
    assert await balance(c, w, "M1") == 0
    assert await app.state.services.bank.ledger.pending("taff", "member:M1") == 180


async def test_voiding_gives_the_credits_back_and_a_voided_code_does_not_settle(
    app: Starlette, app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    await give_credits(c, w, clock, "M1", 60)
    code = await voucher(c, w)
    assert await balance(c, w, "M1") == 0
    r = await c.post(f"{V1}/taff/vouchers/{code}/void", headers=w.members[("taff", "M1")])
    assert (await ok(r))["state"] == "voided"
    assert await balance(c, w, "M1") == 60
    r = await c.post(f"{V1}/taff/vouchers/{code}/void", headers=w.members[("taff", "M1")])
    assert (await ok(r))["state"] == "voided"  # voiding again: the same answer
    refused(await settle(c, w, code, key="till-1"), 409, "code")
    assert await partner_minutes(app) == 0 and await balance(c, w, "M1") == 60
    # a settled voucher is not voided by anyone
    code = await voucher(c, w)
    await ok(await settle(c, w, code))
    for headers in (w.members[("taff", "M1")], w.as_("taff", "coordinator"),
                    w.as_("taff", "partner-staff")):  # fmt: skip
        refused(await c.post(f"{V1}/taff/vouchers/{code}/void", headers=headers), 409, "code")
    assert await partner_minutes(app) == 60 and await balance(c, w, "M1") == 0
    # another member may not void M1's voucher; the partner's staff may
    await give_credits(c, w, clock, "M1", 60)
    code = await voucher(c, w)
    r = await c.post(f"{V1}/taff/vouchers/{code}/void", headers=w.members[("taff", "M2")])
    refused(r, 404, "code")  # another member's voucher: as if there were none
    r = await c.post(f"{V1}/taff/vouchers/{code}/void", headers=w.as_("taff", "partner-staff"))
    assert (await ok(r))["state"] == "voided" and await balance(c, w, "M1") == 60


async def test_an_expired_voucher_releases_its_credits_and_does_not_settle(
    app: Starlette, app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    await give_credits(c, w, clock, "M1", 60)
    code = await voucher(c, w)
    clock.advance(47 * 3600)
    expired = await app.state.services.bank.ledger.expire_due("taff", now=from_us(clock()))
    assert expired == [] and (await show(c, w, code))["state"] == "pending"
    clock.advance(3600 + 1)
    ledger = app.state.services.bank.ledger
    expired = await ledger.expire_due("taff", now=from_us(clock()))
    assert len(expired) == 1
    assert (await show(c, w, code))["state"] == "expired"
    assert await balance(c, w, "M1") == 60
    refused(await settle(c, w, code, key="till-1"), 409, "code")
    r = await c.post(f"{V1}/taff/vouchers/{code}/void", headers=w.members[("taff", "M1")])
    refused(r, 409, "code")
    assert await partner_minutes(app) == 0 and await balance(c, w, "M1") == 60


async def test_a_voucher_past_its_expiry_does_not_settle_before_the_sweep_either(
    app: Starlette, app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    await give_credits(c, w, clock, "M1", 60)
    code = await voucher(c, w)
    clock.advance(48 * 3600)  # due now; the sweep has not run
    r = await settle(c, w, code, key="till-1")
    assert r.status_code == 409 and r.headers["content-type"] == PROBLEM, r.text
    assert await partner_minutes(app) == 0 and await balance(c, w, "M1") == 0
    r = await c.post(f"{V1}/taff/vouchers/{code}/void", headers=w.members[("taff", "M1")])
    assert (await ok(r))["state"] == "voided" and await balance(c, w, "M1") == 60


async def test_a_voucher_past_its_expiry_is_refused_by_its_code_before_the_sweep(
    app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    await give_credits(c, w, clock, "M1", 60)
    code = await voucher(c, w)
    clock.advance(48 * 3600)
    refused(await settle(c, w, code, key="till-1"), 409, "code")


async def test_a_code_with_one_wrong_symbol_is_refused_as_a_typo(
    app: Starlette, app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    await give_credits(c, w, clock, "M1", 60)
    code = await voucher(c, w)
    canonical = normalise(code)
    assert canonical is not None
    for i in range(9):  # every position: the check symbol catches one wrong symbol
        wrong_symbol = next(s for s in "0123" if s != canonical[i])
        typo = display(canonical[:i] + wrong_symbol + canonical[i + 1 :])
        refused(await settle(c, w, typo, key=f"till-{i}"), 422, "code")
    pp = w.as_("taff", "partner-staff")
    for bad in (code[:-1], code + "0", "ABCD-EFGH-U", "x"):
        refused(await settle(c, w, bad), 422, "code")
        refused(await c.get(f"{V1}/taff/vouchers/{bad}", headers=pp), 422, "code")
        refused(await c.get(f"{V1}/taff/vouchers/{bad}/qr", headers=pp), 422, "code")
    # a well-formed code nobody was given: 404
    unknown = display(new_code())
    refused(await settle(c, w, unknown), 404, "code")
    assert (await show(c, w, code))["state"] == "pending" and await partner_minutes(app) == 0
    # forgiving where it is safe: lower case, no dashes, O for 0 and I/L for 1
    typed = canonical.lower().replace("0", "o").replace("1", "l")
    assert (await ok(await settle(c, w, typed)))["code"] == code


async def test_settling_at_a_venue_outside_the_agreement_is_refused(
    app: Starlette, app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    await give_credits(c, w, clock, "M1", 60)
    code = await voucher(c, w)
    r = await c.post("/api/v1/partners/p-taff/venues", headers=w.admin,
                     json={"id": "annexe", "name": "The annexe"})  # fmt: skip
    await ok(r, 201)
    refused(await settle(c, w, code, venue="annexe"), 409, "venue")
    refused(await settle(c, w, code, venue="nowhere"), 409, "venue")
    assert (await show(c, w, code))["state"] == "pending" and await partner_minutes(app) == 0


# ---- capacity and caps -------------------------------------------------------------------------


async def test_an_offers_daily_capacity_holds_and_voided_vouchers_free_their_place(
    app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    made = await new_offer(c, w, id="lane", title="A lane swim", per_day=2)
    assert made["per_day"] == 2 and made["partner"] == "p-taff"
    await agree(c, w, offers=["swim", "lane"])
    await give_credits(c, w, clock, "M1", 300)
    first = await voucher(c, w, offer="lane")
    await voucher(c, w, offer="lane")
    refused(await take(c, w, offer="lane", status=409), 409, "offer")
    await take(c, w, offer="swim")  # another offer: no cap
    assert await balance(c, w, "M1") == 120
    await ok(await c.post(f"{V1}/taff/vouchers/{first}/void", headers=w.members[("taff", "M1")]))
    await take(c, w, offer="lane")  # the voided one's place
    refused(await take(c, w, offer="lane", status=409), 409, "offer")
    clock.advance(86_400)  # a new day
    await take(c, w, offer="lane")
    assert await balance(c, w, "M1") == 60


async def test_an_offers_weekly_capacity_holds(
    app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    await new_offer(c, w, id="gym", title="Gym", per_week=2)
    await agree(c, w, offers=["swim", "gym"])
    await give_credits(c, w, clock, "M1", 240)
    # 2026-01-01 is a Thursday: Thursday and Friday, then Sunday is the same ISO week
    await take(c, w, offer="gym")
    clock.advance(86_400)
    await take(c, w, offer="gym")
    clock.advance(2 * 86_400)
    refused(await take(c, w, offer="gym", status=409), 409, "offer")
    clock.advance(86_400)  # Monday
    await take(c, w, offer="gym")


async def test_the_agreements_monthly_cap_refuses_the_voucher_past_it(
    app: Starlette, app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    """The cap counts vouchers not yet used, so a member is never given one the till must
    refuse: the voucher past the cap is refused when it is taken."""
    c, w = app_client, world
    await new_offer(c, w, id="sauna", title="Sauna", credits=2, cash_price_pence=900)
    made = await agree(c, w, offers=["swim", "sauna"], monthly_cap=3)
    assert made["monthly_cap"] == 3 and made["offers"] == ["sauna", "swim"]
    await give_credits(c, w, clock, "M1", 300)
    swim = await voucher(c, w)
    sauna = await voucher(c, w, offer="sauna")  # 3 credits this month: the cap, reached
    over = refused(await take(c, w, status=409), 409, "partner")
    assert "monthly cap" in over["detail"] and await balance(c, w, "M1") == 120
    await ok(await settle(c, w, swim))
    await ok(await settle(c, w, sauna))
    refused(await take(c, w, status=409), 409, "partner")  # settled ones count as well
    assert await partner_minutes(app) == 180 and await balance(c, w, "M1") == 120
    clock.advance(31 * 86_400)  # February: the voucher has expired by now; a new one settles
    await app.state.services.bank.ledger.expire_due("taff", now=from_us(clock()))
    await give_credits(c, w, clock, "M1", 60)
    await ok(await settle(c, w, await voucher(c, w)))
    assert await partner_minutes(app) == 240


# ---- signed settle requests --------------------------------------------------------------------


def key_pair() -> tuple[Ed25519PrivateKey, str]:
    private = Ed25519PrivateKey.generate()
    raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return private, raw.hex()


async def register(c: httpx.AsyncClient, w: World, public: str, scheme: str = "taff") -> str:
    r = await c.post(f"{V1}/{scheme}/partner/keys", json={"public_key": public},
                     headers=w.as_(scheme, "partner-staff"))  # fmt: skip
    body = await ok(r, 201)
    assert body["partner"] == f"p-{scheme}" and len(body["key_id"]) == 16
    return str(body["key_id"])


def signature(private: Ed25519PrivateKey, key_id: str, message: bytes) -> str:
    return f"keyid={key_id}, sig={base64.b64encode(private.sign(message)).decode()}"


async def test_a_signed_settle_request_is_checked_and_accepted(
    app: Starlette, app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    private, public = key_pair()
    key_id = await register(c, w, public)
    await give_credits(c, w, clock, "M1", 60)
    code = await voucher(c, w)
    message = settle_message("taff", normalise(code) or "", "hall", "till-7:0001")
    headers = w.as_("taff", "partner-staff") | {"Signature": signature(private, key_id, message)}
    r = await settle(c, w, code, key="till-7:0001", headers=headers)
    assert (await ok(r))["state"] == "posted"
    assert await partner_minutes(app) == 60
    # the same signed request again: the same answer
    again = await settle(c, w, code, key="till-7:0001", headers=headers)
    assert again.status_code == 200 and again.json() == r.json()
    # base64 registration of the same key names the same key
    raw = bytes.fromhex(public)
    assert await register(c, w, base64.b64encode(raw).decode()) == key_id


async def test_a_bad_signature_settles_nothing(
    app: Starlette, app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    private, public = key_pair()
    key_id = await register(c, w, public)
    stranger, _ = key_pair()  # a key nobody registered
    other_private, other_public = key_pair()
    other_id = await register(c, w, other_public, "m2m")  # p-m2m's key, not p-taff's
    await give_credits(c, w, clock, "M1", 60)
    code = await voucher(c, w)
    canonical = normalise(code) or ""
    key = "till-1"

    def message(scheme: str = "taff", venue: str = "hall", key: str = key) -> bytes:
        return settle_message(scheme, canonical, venue, key)

    good = message()
    bad_headers = {
        "signed by another key": signature(stranger, key_id, good),
        "another partner's key": signature(other_private, other_id, good),
        "another venue": signature(private, key_id, message(venue="pool")),
        "another key sent": signature(private, key_id, message(key="till-2")),
        "another scheme": signature(private, key_id, message(scheme="m2m")),
        "unknown key id": signature(private, "0" * 16, good),
        "truncated": signature(private, key_id, good)[:-4],
        "not base64": f"keyid={key_id}, sig=!!!",
        "no keyid": f"sig={base64.b64encode(private.sign(good)).decode()}",
        "upper-case key id": signature(private, key_id.upper(), good),
        "garbage": "hello",
        "huge": "keyid=" + "a" * 300,
    }
    for name, header in bad_headers.items():
        h = w.as_("taff", "partner-staff") | {"Signature": header}
        r = await settle(c, w, code, key=key, headers=h)
        assert r.status_code == 422 and r.json().get("field") == "signature", (name, r.text)
    assert (await show(c, w, code))["state"] == "pending"
    assert await partner_minutes(app) == 0 and await balance(c, w, "M1") == 0
    h = w.as_("taff", "partner-staff") | {"Signature": signature(private, key_id, good)}
    assert (await ok(await settle(c, w, code, key=key, headers=h)))["state"] == "posted"


async def test_bad_public_keys_are_refused(app_client: httpx.AsyncClient, world: World) -> None:
    c, w = app_client, world
    ps = w.as_("taff", "partner-staff")
    for bad in ("00" * 31, "zz" * 32, "AAAA", "01" + "00" * 31, "00" * 32):
        r = await c.post(f"{V1}/taff/partner/keys", json={"public_key": bad}, headers=ps)
        refused(r, 422, "public_key")
