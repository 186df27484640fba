"""Bad input gets a 4xx problem+json naming the field, and changes nothing; no input is a 500.

Each write endpoint with a body is driven through a table of bad bodies (wrong types, unknown
fields, bad dates, zero or negative minutes, unknown activities and members, out-of-range
values), then through the checks every endpoint shares: body size (413), media type (415),
JSON syntax (422), query parameters, cursors and Idempotency-Keys (422). After each request the
whole database is compared with a snapshot taken before it. Two Hypothesis properties then throw
generated JSON and arbitrary bytes at the API and require that nothing answers 5xx.
"""

from __future__ import annotations

import base64
import json
import os
import string
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.endpoints import MAX_CSV_BYTES, MAX_JSON_BYTES
from api.routes import ENDPOINTS
from ledger import from_us
from main.asgi import Config, create_app
from partners.codes import check_symbol, display
from tests.api.conftest import ADMIN
from tests.api.world import ACTIVITY, ASHE_ADDITION, World
from tests.conftest import Clock, snapshot, started

pytestmark = pytest.mark.both_backends

V1 = "/api/v1"
PROBLEM = "application/problem+json"
JSON = {"Content-Type": "application/json"}


# ---- helpers ----------------------------------------------------------------------------------


def who(w: World, role: str) -> dict[str, str]:
    """Headers for "admin", "taff:coordinator" (a role's token) or "m2m:M2" (a member's)."""
    if role == "admin":
        return w.admin
    scheme, name = role.split(":")
    if name in ("M1", "M2"):
        return w.members[(scheme, name)]
    return w.as_(scheme, name)


def refusal(r: httpx.Response, status: int, field: str | None) -> str | None:
    """Why `r` is not the expected problem, or None."""
    if r.status_code != status:
        return f"status {r.status_code}, not {status}: {r.text[:300]}"
    if r.headers.get("content-type") != PROBLEM:
        return f"content-type {r.headers.get('content-type')}"
    body = r.json()
    if body.get("status") != status or not body.get("detail") or not body.get("type"):
        return f"not a problem document: {body}"
    if field is not None and body.get("field") != field:
        return f"field {body.get('field')!r}, not {field!r}: {body.get('detail')}"
    return None


def cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def day(clock: Clock, offset: int) -> str:
    return (from_us(clock()).date() + timedelta(days=offset)).isoformat()


@dataclass(frozen=True)
class Case:
    role: str
    path: str  # under /api/v1; "{pending}" and "{confirmed}" stand for claim ids, "{code}" for
    # a pending voucher's code
    body: Any
    status: int
    field: str | None


@dataclass
class Targets:
    pending: str
    confirmed: str
    code: str  # a pending voucher of M1's for p-taff's swim

    def fill(self, template: str) -> str:
        return template.format(pending=self.pending, confirmed=self.confirmed, code=self.code)


async def claims_to_act_on(c: httpx.AsyncClient, w: World, clock: Clock) -> Targets:
    """A pending claim and a confirmed one in taff, for the reject and reverse cases, and a
    pending voucher (M1 earns 2 hours first, on a day of their own)."""
    ids = []
    for minutes, when in ((30, -1), (45, -1), (120, -2)):
        r = await c.post(f"{V1}/schemes/taff/claims", headers=w.members[("taff", "M1")],
                         json={"activity": "garden", "date": day(clock, when),
                               "minutes": minutes})  # fmt: skip
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    for confirmed in ids[1:]:
        r = await c.post(f"{V1}/schemes/taff/claims/{confirmed}/confirm",
                         headers=w.as_("taff", "coordinator"))  # fmt: skip
        assert r.status_code == 200, r.text
    r = await c.post(f"{V1}/schemes/taff/vouchers", headers=w.members[("taff", "M1")],
                     json={"partner": "p-taff", "offer": "swim"})  # fmt: skip
    assert r.status_code == 201, r.text
    return Targets(ids[0], ids[1], r.json()["code"])


async def run_cases(
    c: httpx.AsyncClient, w: World, db_url: str, cases: list[Case], targets: Targets
) -> None:
    failures = []
    for case in cases:
        path = V1 + targets.fill(case.path)
        before = snapshot(db_url)
        r = await c.post(path, content=json.dumps(case.body).encode(),
                         headers=who(w, case.role) | JSON)  # fmt: skip
        why = refusal(r, case.status, case.field)
        if why is None and snapshot(db_url) != before:
            why = "the database changed"
        if why:
            failures.append(f"{case.path} {json.dumps(case.body)[:120]}: {why}")
    assert failures == []


@pytest.fixture
async def targets(app_client: httpx.AsyncClient, world: World, clock: Clock) -> Targets:
    return await claims_to_act_on(app_client, world, clock)


# ---- bodies, endpoint by endpoint -------------------------------------------------------------

SCHEME = {"id": "new-scheme", "name": "New", "model": "time-credits"}
MEMBER = {"id": "N1", "display_name": "New Member"}
OFFER = {"skills": ["diy"], "area": "CF10"}


def scheme_cases() -> list[Case]:
    def c(body: Any, field: str | None, status: int = 422) -> Case:
        return Case("admin", "/schemes", body, status, field)

    return [
        c(SCHEME | {"name": 5}, "name"),
        c(SCHEME | {"colour": "red"}, "colour"),
        c(SCHEME | {"model": "barter"}, "model"),
        c(SCHEME | {"min_minutes": 0}, "min_minutes"),
        c(SCHEME | {"min_minutes": "15"}, "min_minutes"),
        c(SCHEME | {"min_minutes": 60, "max_minutes": 30}, "min_minutes"),
        c(SCHEME | {"max_minutes": 1441}, "max_minutes"),
        c(SCHEME | {"id": "Bad Id"}, "id"),
        c(SCHEME | {"member_floor": -60}, "member_floor"),  # a time-credit scheme has no credit
        c(SCHEME | {"member_floor": 60, "model": "person-to-person"}, "member_floor"),
        c(SCHEME | {"auto_accept_hours": 0}, "auto_accept_hours"),
        c({"id": "new-scheme"}, "name"),
        c(SCHEME | {"id": "taff", "name": "Another Taff"}, "id", 409),
        Case("taff:scheme-admin", "/schemes", SCHEME, 403, "role"),
    ]


def member_cases() -> list[Case]:
    def c(body: Any, field: str | None, status: int = 422) -> Case:
        return Case("taff:coordinator", "/schemes/taff/members", body, status, field)

    return [
        c(MEMBER | {"id": 7}, "id"),
        c(MEMBER | {"id": "has space"}, "id"),
        c(MEMBER | {"id": "x" * 41}, "id"),
        c(MEMBER | {"display_name": ""}, "display_name"),
        c(MEMBER | {"display_name": None}, "display_name"),
        c(MEMBER | {"roles": ["king"]}, "roles.0"),
        c(MEMBER | {"roles": []}, "roles"),
        c(MEMBER | {"roles": "member"}, "roles"),
        c(MEMBER | {"contact": "x" * 201}, "contact"),
        c(MEMBER | {"attributes": {"gender": "woman"}}, "attributes.consent"),
        c(MEMBER | {"attributes": {"shoe_size": "9", "consent": "yes"}}, "attributes.shoe_size"),
        c(MEMBER | {"attributes": {"age_band": 30, "consent": "yes"}}, "attributes.age_band"),
        c(MEMBER | {"email": "n@example.org"}, "email"),
        c(MEMBER | {"roles": ["scheme-admin"]}, "roles", 403),
        c({"id": "M1", "display_name": "Someone Else"}, "id", 409),
        Case("taff:member", "/schemes/taff/members", MEMBER, 403, "role"),
        Case("m2m:coordinator", "/schemes/taff/members", MEMBER, 404, "scheme"),
    ]


def activity_cases() -> list[Case]:
    new = ACTIVITY | {"code": "painting"}

    def c(body: Any, field: str | None, status: int = 422) -> Case:
        return Case("taff:coordinator", "/schemes/taff/activities", body, status, field)

    return [
        c(new | {"form": "co-dancing"}, "form"),
        c(new | {"code": "Painting"}, "code"),
        c(new | {"form": "co-design"}, "subform"),  # co-design takes no co-performing
        c(new | {"safeguarding_check": "yes"}, "safeguarding_check"),
        c(new | {"proxy_code": "Not A Code"}, "proxy_code"),
        c({k: v for k, v in new.items() if k != "title"}, "title"),
        c(new | {"cost": 5}, "cost"),
        c(ACTIVITY | {"title": "Another garden"}, "code", 409),
        Case("taff:member", "/schemes/taff/activities", new, 403, "role"),
    ]


def claim_cases(clock: Clock) -> list[Case]:
    ok = {"activity": "garden", "date": day(clock, -1), "minutes": 60}
    lift = {"activity": "lift", "date": day(clock, -1), "minutes": 60}

    def c(body: Any, field: str | None, status: int = 422, role: str = "taff:M1") -> Case:
        scheme = role.split(":")[0]
        return Case(role, f"/schemes/{scheme}/claims", body, status, field)

    return [
        c(ok | {"minutes": "60"}, "minutes"),
        c(ok | {"minutes": 0}, "minutes"),
        c(ok | {"minutes": -30}, "minutes"),
        c(ok | {"minutes": 60.0}, "minutes"),
        c(ok | {"minutes": 60.5}, "minutes"),
        c(ok | {"minutes": True}, "minutes"),
        c(ok | {"minutes": None}, "minutes"),
        c(ok | {"minutes": 10}, "minutes"),  # under the scheme's 15
        c(ok | {"minutes": 721}, "minutes"),  # over the scheme's 720
        c(ok | {"minutes": 1441}, "minutes"),
        c(ok | {"minutes": 10**30}, "minutes"),
        c({k: v for k, v in ok.items() if k != "minutes"}, "minutes"),
        c(ok | {"date": "2025-13-01"}, "date"),
        c(ok | {"date": "2025-02-30"}, "date"),
        c(ok | {"date": "01/12/2025"}, "date"),
        c(ok | {"date": "2025-12-01T10:30:00"}, "date"),
        c(ok | {"date": 20251201}, "date"),
        c(ok | {"date": ""}, "date"),
        c(ok | {"date": day(clock, 1)}, "date"),  # tomorrow
        c(ok | {"date": day(clock, 400)}, "date"),
        c(ok | {"activity": "knitting"}, "activity", 404),
        c(ok | {"activity": "lift"}, "activity", 404),  # the other scheme's activity
        c(ok | {"activity": ""}, "activity"),
        c(ok | {"activity": 5}, "activity"),
        c({k: v for k, v in ok.items() if k != "activity"}, "activity"),
        c(ok | {"hours": 1}, "hours"),
        c(ok | {"receiver": "M2"}, "receiver"),  # a time-credit scheme has no receiver
        c(ok | {"member": "M2"}, "member"),  # members log their own hours here
        c(ok | {"member": "bad id!"}, "member"),
        c(ok | {"member": "Z9"}, "member", 404, "taff:coordinator"),
        c(ok | {"note": "x" * 1001}, "note"),
        c([ok], "body"),
        c(None, "body"),
        c("garden", "body"),
        c(lift, "receiver", role="m2m:M1"),
        c(lift | {"receiver": "M1"}, "receiver", role="m2m:M1"),
        c(lift | {"receiver": "Z9"}, "receiver", 404, "m2m:M1"),
        c(lift | {"receiver": ["M2"]}, "receiver", role="m2m:M1"),
        c(ok, "activity", 404, "m2m:M1"),
        Case("taff:partner-staff", "/schemes/taff/claims", ok, 403, "role"),
        Case("taff:commissioner", "/schemes/taff/claims", ok, 403, "role"),
        Case("admin", "/schemes/taff/claims", ok, 403, "role"),
        Case("m2m:M1", "/schemes/taff/claims", ok, 404, "scheme"),
    ]


def group_cases(clock: Clock) -> list[Case]:
    ok = {"members": ["M1", "M2"], "activity": "garden", "date": day(clock, -1), "minutes": 60}

    def c(body: Any, field: str | None, status: int = 422) -> Case:
        return Case("taff:coordinator", "/schemes/taff/claims/group", body, status, field)

    return [
        c(ok | {"members": []}, "members"),
        c(ok | {"members": ["M1", "M1"]}, "members"),
        c(ok | {"members": [5]}, "members.0"),
        c(ok | {"members": "M1"}, "members"),
        c(ok | {"members": [f"X{i}" for i in range(201)]}, "members"),
        c(ok | {"members": ["M1", "Z9"]}, "members", 404),
        c(ok | {"minutes": 0}, "minutes"),
        c(ok | {"minutes": 5}, "minutes"),
        c(ok | {"date": day(clock, 1)}, "date"),
        c(ok | {"date": "yesterday"}, "date"),
        c(ok | {"activity": "knitting"}, "activity", 404),
        c(ok | {"receiver": "M2"}, "receiver"),
        Case("taff:M1", "/schemes/taff/claims/group", ok, 403, "role"),
        Case("m2m:coordinator", "/schemes/m2m/claims/group", ok | {"activity": "lift"}, 422,
             "receiver"),  # a person-to-person scheme needs a receiver per claim
    ]  # fmt: skip


def decision_cases() -> list[Case]:
    out = []
    for verb, claim in (("reject", "{pending}"), ("reverse", "{confirmed}")):
        path = f"/schemes/taff/claims/{claim}/{verb}"
        for body, field in (({}, "reason"), ({"reason": ""}, "reason"),
                            ({"reason": "   "}, "reason"), ({"reason": 5}, "reason"),
                            ({"reason": None}, "reason"), ({"reason": "x" * 1001}, "reason"),
                            ({"reason": "ok", "notify": True}, "notify"),
                            (["reason"], "body")):  # fmt: skip
            out.append(Case("taff:coordinator", path, body, 422, field))
        out.append(Case("taff:M1", path, {"reason": "mine"}, 403, "role"))
        out.append(Case("taff:coordinator", f"/schemes/taff/claims/nope/{verb}",
                        {"reason": "x"}, 404, "claim"))  # fmt: skip
    return out


def token_cases() -> list[Case]:
    def c(body: Any, field: str | None, status: int = 422) -> Case:
        return Case("taff:scheme-admin", "/schemes/taff/tokens", body, status, field)

    return [
        c({"role": "god"}, "role"),
        c({"role": "member"}, "member"),
        c({"role": "partner-staff", "member": "M1"}, "member"),
        c({"role": "coordinator", "member": "M1"}, "role", 403),
        c({"role": "admin"}, "role", 403),
        c({"role": "member", "member": "Z9"}, "member", 404),
        c({"role": "member", "member": "M1", "label": "x" * 201}, "label"),
        c({"role": "member", "member": "M1", "expires": "never"}, "expires"),
        c({"role": "member", "member": 1}, "member"),
        Case("taff:coordinator", "/schemes/taff/tokens", {"role": "partner-staff"}, 403, "role"),
        Case("taff:M1", "/schemes/taff/tokens", {"role": "member", "member": "M1"}, 403, "role"),
    ]


def market_cases() -> list[Case]:
    out = []
    for what, extra in (("offers", "availability"), ("requests", "when")):

        def c(body: Any, field: str | None, status: int = 422, what: str = what) -> Case:
            return Case("taff:M1", f"/schemes/taff/{what}", body, status, field)

        out += [
            c(OFFER | {"skills": []}, "skills"),
            c(OFFER | {"skills": "diy"}, "skills"),
            c(OFFER | {"skills": [""]}, "skills.0"),
            c(OFFER | {"skills": ["x" * 41]}, "skills.0"),
            c(OFFER | {"skills": ["é"]}, "skills"),
            c(OFFER | {"skills": ["___"]}, "skills"),
            c(OFFER | {"skills": [f"s{i}" for i in range(11)]}, "skills"),
            c(OFFER | {"area": ""}, "area"),
            c(OFFER | {"area": "cf10!"}, "area"),
            c(OFFER | {"area": 10}, "area"),
            c(OFFER | {extra: "x" * 501}, extra),
            c(OFFER | {"note": "x" * 501}, "note"),
            c(OFFER | {"price": 1}, "price"),
            c(OFFER | {"member": "M2"}, "member", 403),
            Case("taff:coordinator", f"/schemes/taff/{what}", OFFER | {"member": "Z9"}, 404,
                 "member"),
            Case("taff:partner-staff", f"/schemes/taff/{what}", OFFER, 403, "role"),
        ]  # fmt: skip
    return out


PARTNER = {"id": "p-new", "name": "New partner", "sector": "private"}
VENUE = {"id": "pool", "name": "The pool"}
PARTNER_OFFER = {"id": "sauna", "title": "Sauna", "credits": 2, "cash_price_pence": 900,
                 "starts": "2026-01-01"}  # fmt: skip
AGREEMENT = {"partner": "p-taff", "offers": ["swim"], "venues": ["hall"], "starts": "2020-01-01"}
VOUCHER = {"partner": "p-taff", "offer": "swim"}
KEY = {"public_key": "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"}


def partner_cases() -> list[Case]:
    def c(body: Any, field: str | None, status: int = 422) -> Case:
        return Case("admin", "/partners", body, status, field)

    return [
        c(PARTNER | {"id": "Bad Id"}, "id"),
        c(PARTNER | {"id": "x" * 41}, "id"),
        c(PARTNER | {"id": "-lead"}, "id"),
        c(PARTNER | {"name": ""}, "name"),
        c(PARTNER | {"name": "x" * 201}, "name"),
        c(PARTNER | {"sector": "charity"}, "sector"),
        c({"id": "p-new", "name": "New"}, "sector"),
        c(PARTNER | {"vat": "GB1"}, "vat"),
        c(PARTNER | {"id": "p-taff"}, "id", 409),  # exists, with other details
        c([PARTNER], "body"),
        Case("taff:scheme-admin", "/partners", PARTNER, 403, "role"),
        Case("taff:partner-staff", "/partners", PARTNER, 403, "role"),
    ]


def venue_and_offer_cases() -> list[Case]:
    out = []
    for role, base in (
        ("admin", "/partners/p-taff"),
        ("taff:partner-staff", "/schemes/taff/partner"),
    ):

        def v(body: Any, field: str | None, status: int = 422, role: str = role,
              base: str = base) -> Case:  # fmt: skip
            return Case(role, f"{base}/venues", body, status, field)

        def o(body: Any, field: str | None, status: int = 422, role: str = role,
              base: str = base) -> Case:  # fmt: skip
            return Case(role, f"{base}/offers", body, status, field)

        out += [
            v(VENUE | {"id": ""}, "id"),
            v(VENUE | {"id": "Pool"}, "id"),
            v(VENUE | {"name": ""}, "name"),
            v(VENUE | {"area": "x" * 41}, "area"),
            v(VENUE | {"capacity": 5}, "capacity"),
            v({"id": "hall", "name": "Another hall"}, "id", 409),
            o(PARTNER_OFFER | {"credits": 0}, "credits"),
            o(PARTNER_OFFER | {"credits": 101}, "credits"),
            o(PARTNER_OFFER | {"credits": 1.5}, "credits"),
            o(PARTNER_OFFER | {"credits": "2"}, "credits"),
            o(PARTNER_OFFER | {"cash_price_pence": -1}, "cash_price_pence"),
            o(PARTNER_OFFER | {"cash_price_pence": 10_000_001}, "cash_price_pence"),
            o(PARTNER_OFFER | {"starts": "2026-02-30"}, "starts"),
            o(PARTNER_OFFER | {"starts": "soon"}, "starts"),
            o({k: v for k, v in PARTNER_OFFER.items() if k != "starts"}, "starts"),
            o(PARTNER_OFFER | {"ends": "2025-12-31"}, "ends"),  # before it starts
            o(PARTNER_OFFER | {"per_day": 0}, "per_day"),
            o(PARTNER_OFFER | {"per_week": 100_001}, "per_week"),
            o(PARTNER_OFFER | {"eligibility": "x" * 501}, "eligibility"),
            o(PARTNER_OFFER | {"title": ""}, "title"),
            o(PARTNER_OFFER | {"id": "Sauna"}, "id"),
            o(PARTNER_OFFER | {"id": "swim"}, "id", 409),  # exists, with other details
        ]
    out += [
        Case("admin", "/partners/p-none/venues", VENUE, 404, "partner"),
        Case("admin", "/partners/p-none/offers", PARTNER_OFFER, 404, "partner"),
        Case("taff:coordinator", "/schemes/taff/partner/venues", VENUE, 403, "role"),
        Case("admin", "/schemes/taff/partner/offers", PARTNER_OFFER, 403, "role"),
    ]
    return out


def agreement_cases() -> list[Case]:
    def c(body: Any, field: str | None, status: int = 422) -> Case:
        return Case("taff:scheme-admin", "/schemes/taff/agreements", body, status, field)

    return [
        c(AGREEMENT | {"offers": []}, "offers"),
        c(AGREEMENT | {"venues": []}, "venues"),
        c(AGREEMENT | {"offers": "swim"}, "offers"),
        c(AGREEMENT | {"offers": ["Swim!"]}, "offers.0"),
        c(AGREEMENT | {"venues": ["pool"]}, "venues", 404),
        c(AGREEMENT | {"partner": "p-none"}, "partner", 404),
        c(AGREEMENT | {"partner": "Bad"}, "partner"),
        c(AGREEMENT | {"ends": "2019-12-31"}, "ends"),
        c(AGREEMENT | {"starts": "2020-13-01"}, "starts"),
        c(AGREEMENT | {"voucher_hours": 0}, "voucher_hours"),
        c(AGREEMENT | {"voucher_hours": 2161}, "voucher_hours"),
        c(AGREEMENT | {"monthly_cap": 0}, "monthly_cap"),
        c(AGREEMENT | {"monthly_cap": -5}, "monthly_cap"),
        c(AGREEMENT | {"scheme": "m2m"}, "scheme"),
        c({k: v for k, v in AGREEMENT.items() if k != "partner"}, "partner"),
        Case("taff:coordinator", "/schemes/taff/agreements", AGREEMENT, 403, "role"),
        Case("taff:partner-staff", "/schemes/taff/agreements", AGREEMENT, 403, "role"),
        Case("m2m:scheme-admin", "/schemes/taff/agreements", AGREEMENT, 404, "scheme"),
    ]


def voucher_cases() -> list[Case]:
    def c(body: Any, field: str | None, status: int = 422, role: str = "taff:M1") -> Case:
        return Case(role, "/schemes/taff/vouchers", body, status, field)

    settle = "/schemes/taff/vouchers/{code}/settle"

    def s(body: Any, field: str | None, status: int = 422, path: str = settle) -> Case:
        return Case("taff:partner-staff", path, body, status, field)

    return [
        c({"offer": "swim"}, "partner"),
        c({"partner": "p-taff"}, "offer"),
        c(VOUCHER | {"partner": "P-TAFF"}, "partner"),
        c(VOUCHER | {"offer": 5}, "offer"),
        c(VOUCHER | {"member": "bad id!"}, "member"),
        c(VOUCHER | {"member": "M2"}, "member", 403),  # members take vouchers for themselves
        c(VOUCHER | {"credits": 1}, "credits"),
        c(VOUCHER | {"offer": "sauna"}, "offer", 404),
        c(VOUCHER | {"partner": "p-m2m"}, "partner", 404),  # no agreement with this scheme
        c(VOUCHER | {"member": "Z9"}, "member", 404, "taff:coordinator"),
        c(None, "body"),
        Case("taff:partner-staff", "/schemes/taff/vouchers", VOUCHER, 403, "role"),
        s({}, "venue"),
        s({"venue": "Hall"}, "venue"),
        s({"venue": 5}, "venue"),
        s({"venue": "hall", "minutes": 60}, "minutes"),
        s({"venue": "nowhere"}, "venue", 409),  # not under the agreement
        s({"venue": "hall"}, "code", path="/schemes/taff/vouchers/ABCD-EFGH-U/settle"),
        s({"venue": "hall"}, "code", path="/schemes/taff/vouchers/x/settle"),
        s({"venue": "hall"}, "code", 404, "/schemes/taff/vouchers/0000-0000-0/settle"),
        Case("taff:coordinator", settle, {"venue": "hall"}, 403, "role"),
        Case("taff:M1", settle, {"venue": "hall"}, 403, "role"),
    ]


def key_cases() -> list[Case]:
    def c(body: Any, field: str | None, status: int = 422) -> Case:
        return Case("taff:partner-staff", "/schemes/taff/partner/keys", body, status, field)

    return [
        c({}, "public_key"),
        c({"public_key": ""}, "public_key"),
        c({"public_key": 5}, "public_key"),
        c({"public_key": "x" * 101}, "public_key"),
        c({"public_key": "zz" * 32}, "public_key"),
        c({"public_key": "00" * 31}, "public_key"),
        c({"public_key": "00" * 32}, "public_key"),  # a weak (small-order) key
        c({"public_key": "AAAA"}, "public_key"),
        c(KEY | {"partner": "p-m2m"}, "partner"),
        Case("taff:scheme-admin", "/schemes/taff/partner/keys", KEY, 403, "role"),
    ]


async def test_bad_partner_agreement_voucher_and_key_bodies_are_refused_and_change_nothing(
    app_client: httpx.AsyncClient, world: World, db_url: str, targets: Targets
) -> None:
    cases = (partner_cases() + venue_and_offer_cases() + agreement_cases() + voucher_cases()
             + key_cases())  # fmt: skip
    await run_cases(app_client, world, db_url, cases, targets)


async def test_an_agreement_naming_an_unknown_offer_names_the_offers_field(
    app_client: httpx.AsyncClient, world: World, db_url: str, targets: Targets
) -> None:
    case = Case("taff:scheme-admin", "/schemes/taff/agreements",
                AGREEMENT | {"offers": ["swim", "sauna"]}, 404, "offers")  # fmt: skip
    await run_cases(app_client, world, db_url, [case], targets)


async def test_bad_till_files_are_refused_line_by_line_and_change_nothing(
    app_client: httpx.AsyncClient, world: World, db_url: str
) -> None:
    c, w = app_client, world
    h = w.as_("taff", "partner-staff") | {"Content-Type": "text/csv"}
    good = "0000-0000-0,2026-01-01T10:00:00,swim,hall"
    other = display("00000001" + check_symbol("00000001"))
    failures = []
    for text, errors in (
        ("", [("1", "code"), ("1", "datetime"), ("1", "offer"), ("1", "venue")]),
        ("code,offer,venue\n", [("1", "datetime")]),
        ("code,datetime,offer,venue,code\n", [("1", "code")]),
        (f"code,datetime,offer,venue\n{good}\n0000-0000-1,2026-01-01T10:00:00,swim,hall\n",
         [("3", "code")]),
        (f"code,datetime,offer,venue\n{good}\n{good}\n", [("3", "code")]),
        (f"code,datetime,offer,venue\n{good}\n{other},01/01/2026 10:00,swim,hall\n",
         [("3", "datetime")]),
        (f"code,datetime,offer,venue\n\n{good},extra\n", [("3", "")]),
        (f"code,datetime,offer,venue\n{other},2026-01-01T25:00:00,Swim,hall hall\n",
         [("2", "datetime"), ("2", "offer"), ("2", "venue")]),
    ):  # fmt: skip
        before = snapshot(db_url)
        r = await c.post(f"{V1}/schemes/taff/partner/reconciliations", content=text.encode(),
                         headers=h)  # fmt: skip
        why = refusal(r, 422, errors[0][1] or None)
        if why is None:
            got = [(e["line"], e["field"]) for e in r.json()["errors"]]
            if got != errors:
                why = f"errors {got}, not {errors}"
        if why is None and snapshot(db_url) != before:
            why = "the database changed"
        if why:
            failures.append(f"{text[:60]!r}: {why}")
    assert failures == []


async def test_bad_scheme_member_and_activity_bodies_are_refused_and_change_nothing(
    app_client: httpx.AsyncClient, world: World, db_url: str, targets: Targets
) -> None:
    cases = scheme_cases() + member_cases() + activity_cases()
    await run_cases(app_client, world, db_url, cases, targets)


async def test_bad_claim_bodies_are_refused_and_change_nothing(
    app_client: httpx.AsyncClient, world: World, db_url: str, clock: Clock, targets: Targets
) -> None:
    cases = claim_cases(clock) + group_cases(clock) + decision_cases()
    await run_cases(app_client, world, db_url, cases, targets)


async def test_bad_token_offer_and_request_bodies_are_refused_and_change_nothing(
    app_client: httpx.AsyncClient, world: World, db_url: str, targets: Targets
) -> None:
    await run_cases(app_client, world, db_url, token_cases() + market_cases(), targets)


# ---- what every endpoint checks ---------------------------------------------------------------


OUTCOME = {
    "id": "w1",
    "outcome": "hmt-wellby",
    "start": "2025-01-01",
    "end": "2025-12-31",
    "people": 4,
    "evidence": "survey",
    "evidence_note": "ONS4, n=4",
    "change": "0.1",
}
COST = {
    "id": "c1",
    "funder": "COUNCIL",
    "kind": "cash",
    "start": "2025-01-01",
    "end": "2025-12-31",
    "amount": "1000.00",
    "price_year": "2025/26",
}
RATING = {"id": "r1", "subject": "service", "subject_id": "garden", "score": 4,
          "day": "2025-12-31"}  # fmt: skip


def json_writes(clock: Clock) -> list[tuple[str, str, dict[str, Any]]]:
    """(role, path, a valid body) for each write endpoint that takes a JSON body."""
    return [
        ("admin", "/schemes", SCHEME),
        ("taff:coordinator", "/schemes/taff/members", MEMBER),
        ("taff:coordinator", "/schemes/taff/activities", ACTIVITY | {"code": "painting"}),
        ("taff:M1", "/schemes/taff/claims",
         {"activity": "garden", "date": day(clock, -1), "minutes": 60}),
        ("taff:coordinator", "/schemes/taff/claims/group",
         {"members": ["M1"], "activity": "garden", "date": day(clock, -1), "minutes": 60}),
        ("taff:coordinator", "/schemes/taff/claims/{pending}/reject", {"reason": "no"}),
        ("taff:coordinator", "/schemes/taff/claims/{confirmed}/reverse", {"reason": "no"}),
        ("taff:scheme-admin", "/schemes/taff/tokens", {"role": "member", "member": "M2"}),
        ("taff:M1", "/schemes/taff/offers", OFFER),
        ("taff:M1", "/schemes/taff/requests", OFFER),
        ("admin", "/partners", PARTNER),
        ("admin", "/partners/p-taff/venues", VENUE),
        ("admin", "/partners/p-taff/offers", PARTNER_OFFER),
        ("taff:partner-staff", "/schemes/taff/partner/venues", VENUE),
        ("taff:partner-staff", "/schemes/taff/partner/offers", PARTNER_OFFER),
        ("taff:scheme-admin", "/schemes/taff/agreements", AGREEMENT),
        ("taff:partner-staff", "/schemes/taff/partner/keys", KEY),
        ("taff:M1", "/schemes/taff/vouchers", VOUCHER),
        ("taff:partner-staff", "/schemes/taff/vouchers/{code}/settle", {"venue": "hall"}),
        ("taff:coordinator", "/schemes/taff/outcomes", OUTCOME),
        ("taff:coordinator", "/schemes/taff/costs", COST),
        ("taff:M1", "/schemes/taff/ratings", RATING),
        ("taff:scheme-admin", "/schemes/taff/catalogues",
         {"version": "local.1", "content": ASHE_ADDITION}),
    ]  # fmt: skip


def test_the_json_write_table_covers_every_json_endpoint() -> None:
    clock = Clock()
    covered = {
        path.replace("{pending}", "{claim}")
        .replace("{confirmed}", "{claim}")
        .replace("/p-taff/", "/{partner}/")
        for _, path, _ in json_writes(clock)
    }
    with_body = {ep.path.replace("{scheme}", "taff") for ep in ENDPOINTS if ep.body is not None}
    assert covered == with_body


async def chunks(data: bytes, size: int = 8192) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def test_every_json_endpoint_refuses_bad_framing_and_changes_nothing(
    app_client: httpx.AsyncClient, world: World, db_url: str, clock: Clock, targets: Targets
) -> None:
    c, w = app_client, world
    failures = []
    for role, template, valid in json_writes(clock):
        path = V1 + targets.fill(template)
        h = who(w, role)
        good = json.dumps(valid).encode()
        huge = json.dumps(valid | {"note": "x" * MAX_JSON_BYTES}).encode()
        attempts: list[tuple[str, dict[str, Any], int, str]] = [
            ("huge", {"content": huge, "headers": h | JSON}, 413, "body"),
            ("huge, chunked", {"content": chunks(huge), "headers": h | JSON}, 413, "body"),
            ("text/plain", {"content": good, "headers": h | {"Content-Type": "text/plain"}},
             415, "content-type"),
            ("form", {"data": {"reason": "no"}, "headers": h}, 415, "content-type"),
            ("no media type", {"content": good, "headers": h}, 415, "content-type"),
            ("truncated", {"content": good[:-1], "headers": h | JSON}, 422, "body"),
            ("single quotes", {"content": b"{'a': 1}", "headers": h | JSON}, 422, "body"),
            ("not UTF-8", {"content": b'{"a": "\xff"}', "headers": h | JSON}, 422, "body"),
            ("empty", {"content": b"", "headers": h | JSON}, 422, "body"),
            ("query", {"content": good, "headers": h | JSON, "params": {"debug": "1"}},
             422, "debug"),
        ]  # fmt: skip
        for key in ("k" * 201, "", "has space", "tab\there", "ledger:expire:1"):
            attempts.append((f"key {key[:10]!r}", {
                "content": good, "headers": h | JSON | {"Idempotency-Key": key}},
                422, "idempotency-key"))  # fmt: skip
        twice = [*(h | JSON).items(), ("Idempotency-Key", "a"), ("Idempotency-Key", "b")]
        attempts.append(("two keys", {"content": good, "headers": twice}, 400, "idempotency-key"))
        two_tokens = [*(h | JSON).items(), *h.items()]
        attempts.append(("two tokens", {"content": good, "headers": two_tokens}, 400,
                         "authorization"))  # fmt: skip
        if valid:  # {"minutes": 30, "minutes": 700}: the last would win; refused instead
            first = next(iter(valid))
            doubled = b"{" + json.dumps(first).encode() + b": " + json.dumps(valid[first]).encode()
            attempts.append(("duplicated key", {"content": doubled + b", " + good[1:],
                                                "headers": h | JSON}, 422, first))  # fmt: skip
        for name, kwargs, status, field in attempts:
            before = snapshot(db_url)
            r = await c.post(path, **kwargs)
            why = refusal(r, status, field)
            if why is None and snapshot(db_url) != before:
                why = "the database changed"
            if why:
                failures.append(f"{template} [{name}]: {why}")
    assert failures == []


def with_nul(body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(field, body) with U+0000 added to each top-level string of `body` (or a list's first),
    one field at a time."""
    found = []
    for name, value in body.items():
        if isinstance(value, str):
            found.append((name, body | {name: value + "\x00"}))
        elif isinstance(value, list) and value and isinstance(value[0], str):
            found.append((name, body | {name: [value[0] + "\x00", *value[1:]]}))
    return found


async def test_text_holding_nul_is_refused_naming_its_field_on_every_json_endpoint(
    app_client: httpx.AsyncClient, world: World, db_url: str, clock: Clock, targets: Targets
) -> None:
    """PostgreSQL can't store U+0000 (a 500 there, once found by the live schemathesis run):
    every text field of every JSON body refuses it, on SQLite too, and nothing changes."""
    c, w = app_client, world
    failures, tried = [], 0
    for role, template, valid in json_writes(clock):
        for field, body in with_nul(valid):
            tried += 1
            before = snapshot(db_url)
            r = await c.post(V1 + targets.fill(template), json=body, headers=who(w, role))
            why = refusal(r, 422, None)
            if why is None and r.json()["field"] not in (field, f"{field}.0"):  # a list's item
                why = f"field {r.json()['field']!r}: {r.json()['detail']}"
            if why is None and snapshot(db_url) != before:
                why = "the database changed"
            if why:
                failures.append(f"{template} {field}: {why}")
    assert tried > 40
    assert failures == []


async def test_nul_in_a_path_query_cursor_or_csv_file_is_a_422_naming_where(
    app_client: httpx.AsyncClient, world: World, db_url: str
) -> None:
    c, w = app_client, world
    coordinator = w.as_("taff", "coordinator")
    csv = {"Content-Type": "text/csv"}
    before = snapshot(db_url)
    for request, field in (
        (c.build_request("GET", f"{V1}/schemes/taff/members/M%001", headers=coordinator),
         "member"),
        (c.build_request("GET", f"{V1}/schemes/ta%00ff/members", headers=coordinator),
         "scheme"),
        (c.build_request("GET", f"{V1}/schemes/taff/offers", params={"member": "M\x001"},
                         headers=coordinator), "member"),
        (c.build_request("GET", f"{V1}/schemes/taff/members",
                         params={"cursor": cursor("M\x001")}, headers=coordinator), "cursor"),
        (c.build_request("POST", f"{V1}/schemes/taff/imports/members", headers=coordinator | csv,
                         content=b"id,display_name\nN1,Nia\x00\n"), "body"),
    ):  # fmt: skip
        r = await c.send(request)
        assert refusal(r, 422, field) is None, (request.url, r.text)
    assert snapshot(db_url) == before


async def test_bodyless_writes_refuse_bodies_query_parameters_and_bad_keys(
    app_client: httpx.AsyncClient, world: World, db_url: str, targets: Targets
) -> None:
    c, w = app_client, world
    writes = {  # endpoint: (role, a path to it)
        "/schemes/{scheme}/claims/{claim}/confirm":
            ("taff:coordinator", f"/schemes/taff/claims/{targets.pending}/confirm"),
        "/schemes/{scheme}/activities/{code}/retire":
            ("taff:coordinator", "/schemes/taff/activities/garden/retire"),
        "/schemes/{scheme}/members/{member}/erase":
            ("taff:coordinator", "/schemes/taff/members/M2/erase"),
        "/schemes/{scheme}/checkpoints": ("taff:coordinator", "/schemes/taff/checkpoints"),
        "/schemes/{scheme}/offers/{offer}/withdraw":
            ("taff:M1", "/schemes/taff/offers/nope/withdraw"),
        "/schemes/{scheme}/requests/{request}/close":
            ("taff:M1", "/schemes/taff/requests/nope/close"),
        "/schemes/{scheme}/tokens/{token}/revoke":
            ("taff:scheme-admin", "/schemes/taff/tokens/nope/revoke"),
        "/schemes/{scheme}/vouchers/{code}/void":
            ("taff:M1", f"/schemes/taff/vouchers/{targets.code}/void"),
        "/schemes/{scheme}/agreements/{partner}/retire":
            ("taff:scheme-admin", "/schemes/taff/agreements/p-taff/retire"),
    }  # fmt: skip
    assert set(writes) == {ep.path for ep in ENDPOINTS if ep.writes and ep.body is None
                           and not ep.csv}  # fmt: skip
    failures = []
    for role, path in writes.values():
        h = who(w, role)
        for name, kwargs, field in (
            ("body", {"json": {"a": 1}, "headers": h}, "body"),
            ("text body", {"content": b"confirm please", "headers": h}, "body"),
            ("huge body", {"content": b"x" * (MAX_JSON_BYTES + 1), "headers": h}, "body"),
            ("query", {"params": {"force": "1"}, "headers": h}, "force"),
            ("key", {"headers": h | {"Idempotency-Key": "x" * 300}}, "idempotency-key"),
        ):
            status = 413 if name == "huge body" else 422
            before = snapshot(db_url)
            r = await c.post(V1 + path, **kwargs)
            why = refusal(r, status, field)
            if why is None and snapshot(db_url) != before:
                why = "the database changed"
            if why:
                failures.append(f"{path} [{name}]: {why}")
    assert failures == []


async def test_csv_endpoints_refuse_huge_files_other_media_types_and_bad_text(
    app_client: httpx.AsyncClient, world: World, db_url: str
) -> None:
    c, w = app_client, world
    csv_paths = ["/schemes/m2m" + ep.path.removeprefix("/schemes/{scheme}")
                 for ep in ENDPOINTS if ep.csv]  # fmt: skip
    assert len(csv_paths) == 6
    huge = b"id,display_name\n" + b"N1,x\n" * (MAX_CSV_BYTES // 5 + 1)
    failures = []
    for path in csv_paths:
        till = path.endswith("/partner/reconciliations")  # the partner's staff upload these
        h = w.as_("m2m", "partner-staff" if till else "coordinator")
        params = {"activity": "lift"} if "transfers" in path else {}
        attempts: list[tuple[str, dict[str, Any], int, str]] = [
            ("huge", {"content": huge, "headers": h | {"Content-Type": "text/csv"}}, 413,
             "body"),
            ("json", {"content": b"id,display_name\n", "headers": h | JSON}, 415,
             "content-type"),
            ("no media type", {"content": b"id,display_name\n", "headers": h}, 415,
             "content-type"),
            ("latin-1", {"content": "id,display_name\nN1,Siân\n".encode("latin-1"),
                         "headers": h | {"Content-Type": "text/csv"}}, 422, "body"),
            ("key", {"content": b"id\n", "headers": h | {"Content-Type": "text/csv",
                                                           "Idempotency-Key": ""}},
             422, "idempotency-key"),
        ]  # fmt: skip
        for name, kwargs, status, field in attempts:
            before = snapshot(db_url)
            r = await c.post(V1 + path, params=params, **kwargs)
            why = refusal(r, status, field)
            if why is None and snapshot(db_url) != before:
                why = "the database changed"
            if why:
                failures.append(f"{path} [{name}]: {why}")
        r = await c.post(V1 + path, content=b"x\n", params=params | {"dry_run": "1"},
                         headers=h | {"Content-Type": "text/csv"})  # fmt: skip
        if why := refusal(r, 422, "dry_run"):
            failures.append(f"{path} [query]: {why}")
    assert failures == []


CURSORED = [
    ("taff:coordinator", "/schemes/taff/claims"),
    ("taff:coordinator", "/schemes/taff/members"),
    ("taff:M1", "/schemes/taff/members/M1/entries"),
    ("taff:scheme-admin", "/schemes/taff/tokens"),
    ("taff:M1", "/schemes/taff/offers"),
    ("taff:M1", "/schemes/taff/requests"),
]


async def test_reads_refuse_bad_cursors_limits_and_unknown_query_parameters(
    app_client: httpx.AsyncClient, world: World, targets: Targets
) -> None:
    c, w = app_client, world
    failures = []
    bad_cursors = ["!!!", "bm90IGpzb24", cursor(None), cursor({"a": 1}), cursor([1]),
                   cursor(["1", ""]), cursor([1.5, ""]), cursor([True, ""]), cursor(True),
                   cursor([[1], ""]), "A" * 201, "%%%", "é"]  # fmt: skip
    for role, path in CURSORED:
        for bad in bad_cursors:
            r = await c.get(V1 + path, params={"cursor": bad}, headers=who(w, role))
            if why := refusal(r, 422, "cursor"):
                failures.append(f"{path} cursor {bad[:20]!r}: {why}")
        for limit in ("0", "-1", "abc", "1.5", "501", "9" * 40, ""):
            r = await c.get(V1 + path, params={"limit": limit}, headers=who(w, role))
            if why := refusal(r, 422, "limit"):
                failures.append(f"{path} limit {limit[:10]!r}: {why}")
        r = await c.get(V1 + path, params={"sort": "name"}, headers=who(w, role))
        if why := refusal(r, 422, "sort"):
            failures.append(f"{path} sort: {why}")
        r = await c.get(V1 + path + "?limit=1&limit=2", headers=who(w, role))
        if why := refusal(r, 422, "query"):
            failures.append(f"{path} repeated: {why}")
    for role, path, params, field in (
        ("taff:coordinator", "/schemes/taff/claims", {"status": "lost"}, "status"),
        ("taff:coordinator", "/schemes/taff/claims", {"member": "bad id!"}, "member"),
        ("taff:coordinator", "/schemes/taff/burnout", {"weeks": "0"}, "weeks"),
        ("taff:coordinator", "/schemes/taff/burnout", {"hours_per_week": "169"},
         "hours_per_week"),
        ("taff:coordinator", "/schemes/taff/needs", {"area": "CF10"}, "area"),
        ("taff:M1", f"/schemes/taff/claims/{targets.pending}", {"x": "1"}, "x"),
        ("taff:M1", "/schemes/taff/requests/nope/matches", {"limit": "101"}, "limit"),
        ("admin", "/schemes", {"all": "1"}, "all"),
        ("taff:M1", "/me", {"verbose": "1"}, "verbose"),
        ("taff:M1", "/schemes/taff/members/M1/entries/1/receipt", {"size": "1"}, "size"),
        ("taff:M1", "/schemes/taff/members/M1/entries/0/receipt", {}, "seq"),
        ("taff:M1", "/schemes/taff/members/M1/entries/abc/receipt", {}, "seq"),
        ("taff:M1", f"/schemes/taff/members/M1/entries/{2**53}/receipt", {}, "seq"),
    ):  # fmt: skip
        r = await c.get(V1 + path, params=params, headers=who(w, role))
        if why := refusal(r, 422, field):
            failures.append(f"{path} {params}: {why}")
    assert failures == []


async def test_checks_run_in_order_auth_scheme_role_input(
    app_client: httpx.AsyncClient, world: World, db_url: str
) -> None:
    c, w = app_client, world
    bad = {"Content-Type": "text/plain"}
    before = snapshot(db_url)
    r = await c.post(f"{V1}/schemes/taff/claims", content=b"{not json", headers=bad)
    assert refusal(r, 401, "authorization") is None, r.text
    r = await c.post(
        f"{V1}/schemes/taff/claims",
        content=b"{not json",
        headers={"Authorization": "Bearer tb_0000000000000000_" + "A" * 43},
    )
    assert refusal(r, 401, "authorization") is None, r.text
    r = await c.post(f"{V1}/schemes/nope/claims", content=b"{", headers=who(w, "taff:M1") | bad)
    assert refusal(r, 404, "scheme") is None, r.text
    r = await c.post(f"{V1}/schemes/m2m/claims", content=b"{", headers=who(w, "taff:M1") | bad)
    assert refusal(r, 404, "scheme") is None, r.text  # another scheme's looks like none
    r = await c.post(f"{V1}/schemes/taff/claims", content=b"{",
                     headers=who(w, "taff:commissioner") | bad)  # fmt: skip
    assert refusal(r, 403, "role") is None, r.text
    r = await c.post(f"{V1}/schemes/taff/claims", content=b"{", headers=who(w, "taff:M1") | bad)
    assert refusal(r, 415, "content-type") is None, r.text
    r = await c.put(f"{V1}/schemes/taff/claims", headers=who(w, "taff:M1"))
    assert refusal(r, 405, None) is None, r.text
    r = await c.get(f"{V1}/no/such/thing", headers=who(w, "taff:M1"))
    assert refusal(r, 404, None) is None, r.text
    assert snapshot(db_url) == before


# ---- once 500s, now refused plainly ----------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "position"),
    [("/schemes/taff/claims", [10**40, ""]), ("/schemes/taff/members/M1/entries", 10**40)],
)
async def test_cursor_holding_a_huge_number_is_a_422_not_a_500(
    app_client: httpx.AsyncClient, world: World, path: str, position: Any
) -> None:
    r = await app_client.get(V1 + path, params={"cursor": cursor(position)},
                             headers=world.as_("taff", "coordinator"))  # fmt: skip
    assert refusal(r, 422, "cursor") is None, r.text


@pytest.mark.parametrize("seq", ["%C2%B2", "9" * 5000])
async def test_receipt_seq_that_only_looks_like_digits_is_a_422_not_a_500(
    app_client: httpx.AsyncClient, world: World, seq: str
) -> None:
    r = await app_client.get(f"{V1}/schemes/taff/members/M1/entries/{seq}/receipt",
                             headers=world.as_("taff", "member"))  # fmt: skip
    assert refusal(r, 422, "seq") is None, r.text


# ---- properties: nothing answers 5xx ----------------------------------------------------------

LEAVES = (
    st.none() | st.booleans() | st.integers() | st.text(max_size=30)
    | st.floats(allow_nan=False, allow_infinity=False)
)  # fmt: skip


def _nested(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Lists and objects of `inner`. A named function: Hypothesis misread the multi-line lambda
    this was and warned that it could not recurse (it did: the warning was noise)."""
    return st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)


ANY_JSON = st.recursive(LEAVES, _nested, max_leaves=12)


def plausible(options: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """Objects with some of the fields an endpoint knows, each a likely or an arbitrary value,
    sometimes with an unknown field; or any JSON value at all."""
    fields = {k: v | ANY_JSON for k, v in options.items()}
    extra = st.dictionaries(st.text(max_size=8), ANY_JSON, max_size=1)
    objects = st.builds(lambda a, b: a | b, st.fixed_dictionaries({}, optional=fields), extra)
    return objects | ANY_JSON


DAYS = st.dates(date(2025, 1, 1), date(2026, 2, 1)).map(date.isoformat) | st.text(max_size=12)
MEMBERS = st.sampled_from(["M1", "M2", "C1", "A1", "Z9", "", "m1"])
SKILLS = st.lists(st.text(max_size=12) | st.sampled_from(["diy", "Gardening", "home repairs"]),
                  max_size=4)  # fmt: skip
PARTNERS = st.sampled_from(["p-taff", "p-m2m", "p-none", "", "P-TAFF"])
CLAIM = plausible({
    "member": MEMBERS, "activity": st.sampled_from(["garden", "lift", "knitting"]),
    "date": DAYS, "minutes": st.integers(-10, 1500), "receiver": MEMBERS,
    "note": st.text(max_size=40),
})  # fmt: skip
BODIES: list[tuple[str, str, st.SearchStrategy[Any]]] = [
    ("/schemes/{s}/claims", "member", CLAIM),
    ("/schemes/{s}/claims/group", "coordinator", plausible({
        "members": st.lists(MEMBERS, max_size=3), "activity": st.sampled_from(["garden", "lift"]),
        "date": DAYS, "minutes": st.integers(-10, 1500), "note": st.text(max_size=20)})),
    ("/schemes/{s}/members", "coordinator", plausible({
        "id": st.from_regex(r"[A-Za-z0-9-]{1,12}", fullmatch=True) | MEMBERS,
        "display_name": st.text(max_size=20),
        "roles": st.lists(st.sampled_from(["member", "coordinator", "scheme-admin", "x"]),
                          max_size=3),
        "contact": st.text(max_size=20), "card_number": st.text(max_size=12),
        "attributes": st.dictionaries(
            st.sampled_from(["consent", "age_band", "gender", "disability", "x"]),
            st.text(max_size=10) | st.sampled_from(["yes", "18-24", "no"]), max_size=3)})),
    ("/schemes/{s}/offers", "member", plausible({
        "member": MEMBERS, "skills": SKILLS, "area": st.text(max_size=12),
        "availability": st.text(max_size=20), "note": st.text(max_size=20)})),
    ("/schemes/{s}/requests", "member", plausible({
        "member": MEMBERS, "skills": SKILLS, "area": st.text(max_size=12),
        "when": st.text(max_size=20)})),
    ("/schemes/{s}/tokens", "scheme-admin", plausible({
        "role": st.sampled_from(["member", "coordinator", "admin", "partner-staff", "x"]),
        "member": MEMBERS, "label": st.text(max_size=20), "partner": PARTNERS})),
    ("/schemes/{s}/vouchers", "member", plausible({
        "partner": PARTNERS, "offer": st.sampled_from(["swim", "sauna", "", "Swim"]),
        "member": MEMBERS})),
    ("/schemes/{s}/agreements", "scheme-admin", plausible({
        "partner": PARTNERS, "offers": st.lists(st.sampled_from(["swim", "x", ""]), max_size=3),
        "venues": st.lists(st.sampled_from(["hall", "x", ""]), max_size=3), "starts": DAYS,
        "ends": DAYS, "voucher_hours": st.integers(-5, 3000),
        "monthly_cap": st.integers(-5, 5)})),
    ("/schemes/{s}/partner/keys", "partner-staff", plausible({
        "public_key": st.text(max_size=70) | st.binary(min_size=30, max_size=34).map(bytes.hex)
        | st.binary(min_size=30, max_size=34).map(lambda b: base64.b64encode(b).decode())})),
]  # fmt: skip


def answered_properly(r: httpx.Response) -> str | None:
    """Why `r` breaks the API's promises for any input, or None."""
    if r.status_code >= 500:
        return f"{r.status_code}: {r.text[:300]}"
    if r.status_code >= 400:
        if r.headers.get("content-type") != PROBLEM:
            return f"{r.status_code} as {r.headers.get('content-type')}"
        body = r.json()
        if body.get("status") != r.status_code or not isinstance(body.get("detail"), str):
            return f"not a problem document: {body}"
    return None


# API_FUZZ_EXAMPLES=5000 explores further (about 10 s per 1000 examples)
FUZZ = settings(
    max_examples=int(os.environ.get("API_FUZZ_EXAMPLES", "50")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@FUZZ
@given(
    target=st.sampled_from(BODIES).flatmap(lambda t: st.tuples(st.just(t[0]), st.just(t[1]), t[2])),
    scheme=st.sampled_from(["taff", "m2m"]),
    role=st.sampled_from(["same", "member", "coordinator", "commissioner"]),
)
async def test_generated_json_bodies_never_get_a_5xx(
    app_client: httpx.AsyncClient,
    world: World,
    target: tuple[str, str, Any],
    scheme: str,
    role: str,
) -> None:
    path, usual_role, body = target
    headers = world.as_(scheme, usual_role if role == "same" else role)
    r = await app_client.post(V1 + path.format(s=scheme), json=body, headers=headers)
    assert (why := answered_properly(r)) is None, why


KEY_CHARS = string.ascii_letters + string.digits + string.punctuation + " "
SEGMENT = st.text(string.ascii_letters + string.digits + "-_.~ %:@!$'()*+,;=é", max_size=12)


# Path parameters stay short: a 5000-digit receipt seq is a known 500, tested above.
@st.composite
def requests_(draw: st.DrawFn) -> tuple[str, str, dict[str, str], bytes]:
    """A method, a path (an endpoint's with arbitrary parameters, or anything under /api/v1),
    headers and an arbitrary body."""
    if draw(st.booleans()):
        ep = draw(st.sampled_from(ENDPOINTS))
        parts = []
        for part in ep.path.split("/"):
            if part == "{scheme}":
                part = draw(st.sampled_from(["taff", "m2m", "nope"]))
            elif part.startswith("{"):
                part = quote(draw(st.sampled_from(["M1", "garden", "1"]) | SEGMENT), safe="")
            parts.append(part)
        path = V1 + "/".join(parts)
        method = draw(st.sampled_from([ep.method, ep.method, "GET", "POST", "DELETE"]))
    else:
        path = V1 + "/" + "/".join(quote(s, safe="") for s in draw(st.lists(SEGMENT, max_size=5)))
        method = draw(st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]))
    query = draw(st.dictionaries(st.sampled_from(["cursor", "limit", "member", "status", "x",
                                                  "activity", "weeks"]),
                                 st.text(max_size=10), max_size=2))  # fmt: skip
    if query:
        path += "?" + "&".join(f"{quote(k)}={quote(v, safe='')}" for k, v in query.items())
    headers = {"Content-Type": draw(st.sampled_from(
        ["application/json", "text/csv", "text/plain", "application/octet-stream",
         "application/json; charset=utf-8", ""]))}  # fmt: skip
    if draw(st.booleans()):
        headers["Idempotency-Key"] = draw(st.text(KEY_CHARS, max_size=30))
    body = draw(st.binary(max_size=200) | st.text(max_size=200).map(
        lambda t: t.encode("utf-8", "surrogatepass")))  # fmt: skip
    return method, path, headers, body


@FUZZ
@given(request=requests_(), role=st.sampled_from(["admin", "taff:coordinator", "taff:M1",
                                                  "m2m:scheme-admin", "none"]))  # fmt: skip
async def test_arbitrary_requests_never_get_a_5xx(
    app_client: httpx.AsyncClient, world: World, request: tuple[str, str, dict[str, str], bytes],
    role: str,
) -> None:  # fmt: skip
    method, path, headers, body = request
    if role != "none":
        headers = headers | who(world, role)
    r = await app_client.request(method, path, content=body, headers=headers)
    assert (why := answered_properly(r)) is None, why


async def test_a_write_without_its_signing_key_is_a_documented_503_and_changes_nothing(
    world: World, targets: Targets, db_url: str, clock: Clock, tmp_path: Path
) -> None:
    """The same database served with a key directory lacking the ledger's key (a lost key
    volume): writes answer 503, as the OpenAPI document says, and nothing is written."""
    config = Config(url=db_url, key_dir=tmp_path / "elsewhere", bootstrap_admin=ADMIN,
                    schedule_seconds=0, clock=clock)  # fmt: skip
    keyless = create_app(config)
    async with started(keyless):
        transport = httpx.ASGITransport(app=keyless)
        async with httpx.AsyncClient(transport=transport, base_url="http://tb.test") as c:
            before = snapshot(db_url)
            r = await c.post(f"{V1}/schemes/taff/claims/{targets.pending}/confirm",
                             headers=world.as_("taff", "coordinator"))  # fmt: skip
            assert refusal(r, 503, None) is None, r.text
            assert snapshot(db_url) == before
            document = (await c.get(f"{V1}/openapi.json")).json()
    confirm = document["paths"]["/api/v1/schemes/{scheme}/claims/{claim}/confirm"]["post"]
    assert "503" in confirm["responses"]
