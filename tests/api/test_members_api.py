"""Members over HTTP: card lookup, consented monitoring answers, erasure, receipts that verify
offline, and bearer tokens (make, list, revoke, idempotent make)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest

from ledger import from_us, receipt_problem, verify_database
from ledger.records import RecordError, parse_receipt
from tests.api.world import World
from tests.conftest import Clock

pytestmark = pytest.mark.both_backends

V1 = "/api/v1/schemes"
PROBLEM = "application/problem+json"


def yesterday(clock: Clock) -> str:
    return (from_us(clock()).date() - timedelta(days=1)).isoformat()


async def confirmed_claim(
    c: httpx.AsyncClient, w: World, clock: Clock, member: str, minutes: int, note: str = ""
) -> dict[str, Any]:
    """A taff claim logged by `member` and confirmed by the coordinator."""
    who = w.members[("taff", member)]
    r = await c.post(f"{V1}/taff/claims", headers=who, json={
        "activity": "garden", "date": yesterday(clock), "minutes": minutes, "note": note,
    })  # fmt: skip
    assert r.status_code == 201, r.text
    r = await c.post(f"{V1}/taff/claims/{r.json()['id']}/confirm",
                     headers=w.as_("taff", "coordinator"))  # fmt: skip
    assert r.status_code == 200, r.text
    out = r.json()
    assert isinstance(out, dict)
    return out


async def verify(db_url: str) -> None:
    report = await verify_database(db_url)
    assert report.ok, report.summary()


def problem(r: httpx.Response, status: int, field: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["field"] == field, r.text


# ---- register ---------------------------------------------------------------------------------


async def test_card_number_finds_the_member_for_staff_only(
    app_client: httpx.AsyncClient, world: World
) -> None:
    c, w = app_client, world
    r = await c.get(f"{V1}/taff/cards/taff-M2", headers=w.as_("taff", "coordinator"))
    assert r.status_code == 200, r.text
    assert r.json()["id"] == "M2" and r.json()["card_number"] == "taff-M2"
    problem(await c.get(f"{V1}/taff/cards/no-such-card", headers=w.as_("taff", "coordinator")),
            404, "card_number")  # fmt: skip
    # another scheme's card is not found in this one
    problem(await c.get(f"{V1}/taff/cards/m2m-M2", headers=w.as_("taff", "coordinator")),
            404, "card_number")  # fmt: skip
    problem(await c.get(f"{V1}/taff/cards/taff-M2", headers=w.as_("taff", "member")), 403, "role")
    problem(await c.get(f"{V1}/m2m/cards/m2m-M2", headers=w.as_("taff", "coordinator")),
            404, "scheme")  # fmt: skip


async def test_monitoring_attributes_are_kept_only_with_consent(
    app_client: httpx.AsyncClient, world: World
) -> None:
    c, w = app_client, world
    coord = w.as_("taff", "coordinator")
    base = {"id": "P1", "display_name": "Pat"}
    for attributes in ({"age_band": "25-34"}, {"age_band": "25-34", "consent": "no"}):
        r = await c.post(f"{V1}/taff/members", json=base | {"attributes": attributes},
                         headers=coord)  # fmt: skip
        problem(r, 422, "attributes.consent")
    r2 = await c.post(f"{V1}/taff/members", headers=coord, json={"id": "P2", "display_name": "Pip",
                      "attributes": {"age_band": "ancient", "consent": "yes"}})  # fmt: skip
    problem(r2, 422, "attributes.age_band")
    problem(await c.get(f"{V1}/taff/members/P1", headers=coord), 404, "member")
    r = await c.post(f"{V1}/taff/members", headers=coord, json=base | {
        "attributes": {"age_band": "25-34", "consent": "yes"}})  # fmt: skip
    assert r.status_code == 201, r.text
    got = await c.get(f"{V1}/taff/members/P1", headers=coord)
    assert got.json()["attributes"] == {"age_band": "25-34", "consent": "yes"}
    # the refused one was not added
    problem(await c.get(f"{V1}/taff/members/P2", headers=coord), 404, "member")


async def test_concurrent_identical_registrations_add_the_member_once(
    app_client: httpx.AsyncClient, world: World
) -> None:
    c, w = app_client, world
    coord = w.as_("taff", "coordinator")
    for n in range(3):
        body = {"id": f"R{n}", "display_name": "Rhys"}
        results = await asyncio.gather(
            *(c.post(f"{V1}/taff/members", json=body, headers=coord) for _ in range(4)),
            return_exceptions=True,
        )
        statuses = [r.status_code if isinstance(r, httpx.Response) else repr(r) for r in results]
        assert statuses == [201] * 4


# ---- erasure ----------------------------------------------------------------------------------


async def test_erasure_blanks_personal_data_revokes_tokens_and_keeps_the_ledger(
    app_client: httpx.AsyncClient, world: World, clock: Clock, db_url: str
) -> None:
    c, w = app_client, world
    coord, m2 = w.as_("taff", "coordinator"), w.members[("taff", "M2")]
    r = await c.post(f"{V1}/taff/members", headers=coord, json={
        "id": "E1", "display_name": "Eve Example", "contact": "eve@example.org",
        "card_number": "card-E1", "attributes": {"gender": "woman", "consent": "yes"},
    })  # fmt: skip
    assert r.status_code == 201, r.text
    made = await c.post(f"{V1}/taff/tokens", json={"role": "member", "member": "E1"},
                        headers=w.as_("taff", "scheme-admin"))  # fmt: skip
    e1 = {"Authorization": f"Bearer {made.json()['token']}"}
    claim = await c.post(f"{V1}/taff/claims", headers=e1, json={
        "activity": "garden", "date": yesterday(clock), "minutes": 75,
        "note": "helped Eve's neighbour at 4 Elm Road"})  # fmt: skip
    assert claim.status_code == 201, claim.text
    cid = claim.json()["id"]
    assert (await c.post(f"{V1}/taff/claims/{cid}/confirm", headers=coord)).status_code == 200
    offer = await c.post(
        f"{V1}/taff/offers",
        headers=e1,
        json={"skills": ["sewing"], "area": "CF10", "note": "call Eve"},
    )
    assert offer.status_code == 201, offer.text
    before = (await c.get(f"{V1}/taff/members/E1/entries", headers=coord)).json()["items"]
    assert (await c.get("/api/v1/me", headers=e1)).status_code == 200

    # another member may not erase E1
    problem(await c.post(f"{V1}/taff/members/E1/erase", headers=m2), 403, "member")
    erased = await c.post(f"{V1}/taff/members/E1/erase", headers=coord)
    assert erased.status_code == 200, erased.text
    out = erased.json()
    assert out["erased"] is True and out["display_name"] == "(erased)"
    assert (out["contact"], out["card_number"], out["attributes"]) == ("", "", {})
    assert out["id"] == "E1" and out["roles"] == ["member"]

    # the member's tokens no longer work, at once
    r = await c.get("/api/v1/me", headers=e1)
    assert r.status_code == 401 and r.headers["content-type"] == PROBLEM
    problem(await c.get(f"{V1}/taff/cards/card-E1", headers=coord), 404, "card_number")
    got = (await c.get(f"{V1}/taff/members/E1", headers=coord)).json()
    assert got["display_name"] == "(erased)" and got["contact"] == ""
    assert (await c.get(f"{V1}/taff/claims/{cid}", headers=coord)).json()["note"] == ""
    offers = (await c.get(f"{V1}/taff/offers", headers=coord)).json()["items"]
    assert offers == []
    # balance and entries stay, and the ledger still verifies
    r = await c.get(f"{V1}/taff/members/E1/balance", headers=coord)
    assert r.json()["minutes"] == 75
    after = (await c.get(f"{V1}/taff/members/E1/entries", headers=coord)).json()["items"]
    assert after == before
    await verify(db_url)
    # and the ledger keeps working after it
    await confirmed_claim(c, w, clock, "M1", 30)
    await verify(db_url)


async def test_a_member_may_erase_themselves(
    app_client: httpx.AsyncClient, world: World, clock: Clock, db_url: str
) -> None:
    c, w = app_client, world
    m2 = w.members[("taff", "M2")]
    await confirmed_claim(c, w, clock, "M2", 60)
    r = await c.post(f"{V1}/taff/members/M2/erase", headers=m2)
    assert r.status_code == 200, r.text
    assert r.json()["erased"] is True
    assert (await c.get(f"{V1}/taff/members/M2/balance", headers=m2)).status_code == 401
    r = await c.get(f"{V1}/taff/members/M2/balance", headers=w.as_("taff", "coordinator"))
    assert r.json()["minutes"] == 60
    # M2's token in the other scheme is another membership, untouched
    assert (await c.get("/api/v1/me", headers=w.members[("m2m", "M2")])).status_code == 200
    await verify(db_url)


# ---- receipts -------------------------------------------------------------------------------


async def receipt(c: httpx.AsyncClient, who: dict[str, str], member: str, seq: int) -> Any:
    r = await c.get(f"{V1}/taff/members/{member}/entries/{seq}/receipt", headers=who)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    parsed = parse_receipt(r.json())
    assert receipt_problem(parsed, parsed.keys) is None
    assert parsed.entry.seq == seq and parsed.checkpoint.size >= seq
    loose = r.json() | {"checkpoint": r.json()["checkpoint"] | {"extra": 1}}
    for bent in (loose, r.json() | {"leaf_index": True}):  # written otherwise: refused
        with pytest.raises(RecordError):
            parse_receipt(bent)
    return parsed


async def test_receipt_verifies_offline_even_before_any_checkpoint(
    app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    m1, coord = w.as_("taff", "member"), w.as_("taff", "coordinator")
    done = await confirmed_claim(c, w, clock, "M1", 90)
    seq = done["entry_seq"]
    problem(await c.get(f"{V1}/taff/checkpoints/latest", headers=coord), 404, "checkpoint")
    got = await receipt(c, m1, "M1", seq)
    assert dict(got.entry.meta)["claim"] == done["id"]
    assert (await c.get(f"{V1}/taff/checkpoints/latest", headers=coord)).status_code == 200
    # the coordinator may fetch it too; the same checkpoint serves a second request
    again = await receipt(c, coord, "M1", seq)
    assert again.checkpoint == got.checkpoint

    # a later entry is past that checkpoint: a new one is made for its receipt
    later = await confirmed_claim(c, w, clock, "M1", 30)
    assert later["entry_seq"] > got.checkpoint.size
    newer = await receipt(c, m1, "M1", later["entry_seq"])
    assert newer.checkpoint.size >= later["entry_seq"] > got.checkpoint.size
    # and the old entry's receipt against the newer checkpoint still verifies
    await receipt(c, m1, "M1", seq)


async def test_receipt_for_an_entry_not_touching_the_member_is_not_found(
    app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    m1, m2 = w.as_("taff", "member"), w.members[("taff", "M2")]
    m2_entry = (await confirmed_claim(c, w, clock, "M2", 45))["entry_seq"]
    m1_entry = (await confirmed_claim(c, w, clock, "M1", 45))["entry_seq"]
    problem(await c.get(f"{V1}/taff/members/M1/entries/{m2_entry}/receipt", headers=m1),
            404, "seq")  # fmt: skip
    problem(await c.get(f"{V1}/taff/members/M1/entries/1/receipt", headers=m1), 404, "seq")
    problem(await c.get(f"{V1}/taff/members/M1/entries/99999/receipt", headers=m1), 404, "seq")
    # nor may a member fetch another member's receipts
    problem(await c.get(f"{V1}/taff/members/M1/entries/{m1_entry}/receipt", headers=m2),
            403, "member")  # fmt: skip
    for bad in ("0", "-1", "x", "1.0"):
        problem(await c.get(f"{V1}/taff/members/M1/entries/{bad}/receipt", headers=m1), 422,
                "seq")  # fmt: skip
    await receipt(c, m1, "M1", m1_entry)


# ---- tokens -----------------------------------------------------------------------------------


async def test_tokens_are_made_listed_and_revoked(
    app_client: httpx.AsyncClient, world: World
) -> None:
    c, w = app_client, world
    admin = w.as_("taff", "scheme-admin")
    r = await c.post(
        f"{V1}/taff/tokens",
        headers=admin,
        json={"role": "member", "member": "M2", "label": "M2's tablet"},
    )
    assert r.status_code == 201, r.text
    made = r.json()
    token = made["token"]
    assert isinstance(token, str) and token.startswith(f"tb_{made['id']}_")
    assert (made["role"], made["scheme"], made["member"]) == ("member", "taff", "M2")
    me = await c.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json() == {"token_id": made["id"], "role": "member", "scheme": "taff",
                         "member": "M2", "partner": None}  # fmt: skip

    listed: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 3}
    while True:
        page = (await c.get(f"{V1}/taff/tokens", params=params, headers=admin)).json()
        listed += page["items"]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    ids = [t["id"] for t in listed]
    assert made["id"] in ids and len(ids) == len(set(ids))
    assert all(t["token"] is None and t["scheme"] == "taff" for t in listed)  # secrets shown once
    assert token not in (await c.get(f"{V1}/taff/tokens", headers=admin)).text
    problem(await c.get(f"{V1}/taff/tokens", headers=w.as_("taff", "coordinator")), 403, "role")

    r = await c.post(f"{V1}/taff/tokens/{made['id']}/revoke", headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["revoked"] is True
    r = await c.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and r.headers["content-type"] == PROBLEM
    assert r.headers["www-authenticate"].startswith("Bearer")
    # other tokens of M2 keep working; another scheme's admin can't see this token
    assert (await c.get("/api/v1/me", headers=w.members[("taff", "M2")])).status_code == 200
    r = await c.post(f"{V1}/m2m/tokens/{made['id']}/revoke", headers=w.as_("m2m", "scheme-admin"))
    problem(r, 404, "token")


async def test_token_grants_follow_roles(app_client: httpx.AsyncClient, world: World) -> None:
    c, w = app_client, world
    coord = w.as_("taff", "coordinator")
    r = await c.post(f"{V1}/taff/tokens", headers=coord, json={"role": "member", "member": "M2"})
    assert r.status_code == 201, r.text
    problem(await c.post(f"{V1}/taff/tokens", headers=coord,
                         json={"role": "coordinator", "member": "C1"}), 403, "role")  # fmt: skip
    problem(await c.post(f"{V1}/taff/tokens", headers=w.as_("taff", "scheme-admin"),
                         json={"role": "coordinator", "member": "M1"}), 403, "role")  # fmt: skip
    problem(await c.post(f"{V1}/taff/tokens", headers=w.as_("taff", "scheme-admin"),
                         json={"role": "member"}), 422, "member")  # fmt: skip
    problem(await c.post(f"{V1}/taff/tokens", headers=w.as_("taff", "member"),
                         json={"role": "member", "member": "M1"}), 403, "role")  # fmt: skip


async def test_the_deployment_admin_makes_only_the_first_scheme_admin_and_staff_tokens(
    app_client: httpx.AsyncClient, world: World
) -> None:
    """The admin reads nobody's personal data, so it cannot make a token that could: not a
    member's, coordinator's or commissioner's, and only the first scheme-admin token of a
    scheme and the first partner-staff token of a partner. Those roles make the rest."""
    c, w = app_client, world
    admin = w.admin
    for body in ({"role": "member", "member": "M2"}, {"role": "coordinator", "member": "C1"},
                 {"role": "commissioner"}):  # fmt: skip
        problem(await c.post(f"{V1}/taff/tokens", headers=admin, json=body), 403, "role")
    # the world's first ones were the admin's: no second
    r = await c.post(f"{V1}/taff/tokens", headers=admin,
                     json={"role": "scheme-admin", "member": "A1"})  # fmt: skip
    problem(r, 403, "role")
    assert r.json()["type"].endswith("/forbidden") and "scheme taff already" in r.json()["detail"]
    r = await c.post(f"{V1}/taff/tokens", headers=admin,
                     json={"role": "partner-staff", "partner": "p-taff"})  # fmt: skip
    problem(r, 403, "role")
    assert "partner p-taff already" in r.json()["detail"]
    # ...which the scheme admin and the partner's own staff make
    sa, staff = w.as_("taff", "scheme-admin"), w.as_("taff", "partner-staff")
    for headers, body in ((sa, {"role": "scheme-admin", "member": "A1"}),
                          (sa, {"role": "partner-staff", "partner": "p-taff"}),
                          (staff, {"role": "partner-staff", "partner": "p-taff"})):  # fmt: skip
        made = await c.post(f"{V1}/taff/tokens", headers=headers, json=body)
        assert made.status_code == 201, made.text
    problem(await c.post(f"{V1}/taff/tokens", headers=staff,
                         json={"role": "member", "member": "M1"}), 403, "role")  # fmt: skip


async def test_two_admins_racing_for_a_schemes_first_token_make_exactly_one(
    app_client: httpx.AsyncClient, world: World
) -> None:
    c, w = app_client, world
    for n in range(4):
        scheme = f"fresh{n}"
        body = {"id": scheme, "name": "Fresh", "model": "time-credits"}
        assert (await c.post(V1, headers=w.admin, json=body)).status_code == 201
        person = {"id": "A1", "display_name": "Head", "roles": ["scheme-admin"]}
        assert (await c.post(f"{V1}/{scheme}/members", headers=w.admin, json=person)).is_success
        grant = {"role": "scheme-admin", "member": "A1"}
        racing = await asyncio.gather(*(
            c.post(f"{V1}/{scheme}/tokens", json=grant,
                   headers=w.admin | {"Idempotency-Key": f"first-{n}-{i}"})
            for i in range(3)
        ))  # fmt: skip
        assert sorted(r.status_code for r in racing) == [201, 403, 403], [r.text for r in racing]
        winner = next(r for r in racing if r.status_code == 201)
        key = f"first-{n}-{racing.index(winner)}"
        again = await c.post(f"{V1}/{scheme}/tokens", json=grant,
                             headers=w.admin | {"Idempotency-Key": key})  # fmt: skip
        assert again.status_code == 201 and again.json()["id"] == winner.json()["id"]
        assert again.json()["token"] is None  # the winner's answer, its secret shown once


async def test_same_idempotency_key_makes_one_token_shown_once(
    app_client: httpx.AsyncClient, world: World
) -> None:
    c, w = app_client, world
    admin = w.as_("taff", "scheme-admin") | {"Idempotency-Key": "enrol-M2-1"}
    body = {"role": "member", "member": "M2", "label": "kiosk"}
    first = await c.post(f"{V1}/taff/tokens", headers=admin, json=body)
    second = await c.post(f"{V1}/taff/tokens", headers=admin, json=body)
    assert first.status_code == 201 and second.status_code == 201, second.text
    assert first.json()["id"] == second.json()["id"]
    assert isinstance(first.json()["token"], str) and second.json()["token"] is None
    count = sum(
        t["id"] == first.json()["id"]
        for t in (await c.get(f"{V1}/taff/tokens", params={"limit": 500},
                              headers=w.as_("taff", "scheme-admin"))).json()["items"]
    )  # fmt: skip
    assert count == 1
    # the first token still works: the retry did not replace its secret
    me = await c.get("/api/v1/me", headers={"Authorization": f"Bearer {first.json()['token']}"})
    assert me.status_code == 200
    # the same key for another token is a conflict
    problem(await c.post(f"{V1}/taff/tokens", headers=admin, json=body | {"label": "other"}),
            409, "idempotency_key")  # fmt: skip
