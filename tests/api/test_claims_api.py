"""The life of a claim over HTTP, in both kinds of scheme: log, confirm, reject, reverse; the
rules a claim must pass; idempotent logging; paging; retired activities; burn-out flags."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from ledger import from_us
from tests.api.world import ACTIVITY, World
from tests.conftest import Clock

pytestmark = pytest.mark.both_backends

V1 = "/api/v1/schemes"
PROBLEM = "application/problem+json"


def today(clock: Clock) -> date:
    return from_us(clock()).date()


def ago(clock: Clock, days: int) -> str:
    return (today(clock) - timedelta(days=days)).isoformat()


async def log(
    client: httpx.AsyncClient,
    scheme: str,
    who: dict[str, str],
    status: int = 201,
    key: str | None = None,
    **body: Any,
) -> dict[str, Any]:
    headers = who | ({"Idempotency-Key": key} if key else {})
    r = await client.post(f"{V1}/{scheme}/claims", json=body, headers=headers)
    assert r.status_code == status, r.text
    out = r.json()
    assert isinstance(out, dict)
    return out


async def act(
    client: httpx.AsyncClient,
    scheme: str,
    claim_id: str,
    verb: str,
    who: dict[str, str],
    status: int = 200,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    path = f"{V1}/{scheme}/claims/{claim_id}/{verb}"
    if body is None:
        r = await client.post(path, headers=who)
    else:
        r = await client.post(path, json=body, headers=who)
    assert r.status_code == status, r.text
    if status >= 400:
        assert r.headers["content-type"] == PROBLEM
    out = r.json()
    assert isinstance(out, dict)
    return out


async def balance(client: httpx.AsyncClient, w: World, scheme: str, member: str) -> int:
    r = await client.get(
        f"{V1}/{scheme}/members/{member}/balance", headers=w.as_(scheme, "coordinator")
    )
    assert r.status_code == 200, r.text
    minutes = r.json()["minutes"]
    assert isinstance(minutes, int)
    return minutes


async def entries(client: httpx.AsyncClient, w: World, scheme: str, member: str) -> list[Any]:
    r = await client.get(
        f"{V1}/{scheme}/members/{member}/entries", headers=w.as_(scheme, "coordinator")
    )
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert isinstance(items, list)
    return items


async def all_claims(
    client: httpx.AsyncClient, who: dict[str, str], scheme: str, limit: int = 500, **q: str
) -> list[dict[str, Any]]:
    """Every claim the caller may see, page by page, following next_cursor."""
    out: list[dict[str, Any]] = []
    params: dict[str, str | int] = {"limit": limit, **q}
    for _ in range(100):
        r = await client.get(f"{V1}/{scheme}/claims", params=params, headers=who)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= limit
        out += page["items"]
        if page["next_cursor"] is None:
            return out
        params["cursor"] = page["next_cursor"]
    raise AssertionError("the cursor never ran out")


# ---- time credits -------------------------------------------------------------------------------


async def test_time_credit_claim_confirmed_by_coordinator_credits_the_member(
    app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    claim = await log(c, "taff", w.as_("taff", "member"), activity="garden", date=ago(clock, 1),
                      minutes=90, note="weeding")  # fmt: skip
    assert claim["status"] == "pending" and claim["member"] == "M1"
    assert claim["on_behalf"] is False and claim["entry_seq"] is None
    assert await balance(c, w, "taff", "M1") == 0

    done = await act(c, "taff", claim["id"], "confirm", w.as_("taff", "coordinator"))
    assert done["status"] == "confirmed" and done["decided_by"] == "C1"
    assert isinstance(done["entry_seq"], int)
    assert await balance(c, w, "taff", "M1") == 90
    [entry] = await entries(c, w, "taff", "M1")
    assert entry["seq"] == done["entry_seq"] and entry["minutes"] == 90
    assert entry["meta"]["claim"] == claim["id"] and entry["meta"]["activity"] == "garden"
    assert "logged-by" not in entry["meta"]
    assert "weeding" not in str(entry["meta"])  # only a salted hash of the note is on the ledger
    # a second confirmation changes nothing
    again = await act(c, "taff", claim["id"], "confirm", w.as_("taff", "coordinator"))
    assert again["entry_seq"] == done["entry_seq"]
    assert await balance(c, w, "taff", "M1") == 90


async def test_reversal_with_a_reason_returns_the_balance_and_keeps_both_entries(
    app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    coord = w.as_("taff", "coordinator")
    claim = await log(c, "taff", w.as_("taff", "member"), activity="garden", date=ago(clock, 2),
                      minutes=60)  # fmt: skip
    pending = await act(c, "taff", claim["id"], "reverse", coord, 409, {"reason": "mistake"})
    assert pending["field"] == "claim"
    done = await act(c, "taff", claim["id"], "confirm", coord)
    assert await balance(c, w, "taff", "M1") == 60

    for body in ({}, {"reason": ""}, {"reason": "   "}):
        p = await act(c, "taff", claim["id"], "reverse", coord, 422, body)
        assert p["field"] == "reason"
    member = await act(c, "taff", claim["id"], "reverse", w.as_("taff", "member"), 403,
                       {"reason": "mine"})  # fmt: skip
    assert member["status"] == 403
    assert await balance(c, w, "taff", "M1") == 60

    reversed_ = await act(c, "taff", claim["id"], "reverse", coord, 200,
                          {"reason": "logged twice"})  # fmt: skip
    assert reversed_["reversal_seq"] is not None and reversed_["reason"] == "logged twice"
    assert reversed_["status"] == "confirmed" and reversed_["entry_seq"] == done["entry_seq"]
    assert await balance(c, w, "taff", "M1") == 0
    history = await entries(c, w, "taff", "M1")
    assert [(e["seq"], e["minutes"]) for e in history] == [
        (done["entry_seq"], 60), (reversed_["reversal_seq"], -60),
    ]  # fmt: skip
    assert history[1]["kind"] == "reverse"
    # reversing again is a retry: no third entry
    again = await act(c, "taff", claim["id"], "reverse", coord, 200, {"reason": "logged twice"})
    assert again["reversal_seq"] == reversed_["reversal_seq"]
    assert len(await entries(c, w, "taff", "M1")) == 2


async def test_rejection_needs_a_reason_and_a_rejected_claim_cannot_be_confirmed(
    app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    coord = w.as_("taff", "coordinator")
    claim = await log(c, "taff", w.as_("taff", "member"), activity="garden", date=ago(clock, 1),
                      minutes=45)  # fmt: skip
    for body in ({}, {"reason": ""}, {"reason": "  \t "}, {"reason": 7}):
        p = await act(c, "taff", claim["id"], "reject", coord, 422, body)
        assert p["field"] == "reason", p
    p = await act(c, "taff", claim["id"], "reject", w.as_("taff", "member"), 403, {"reason": "x"})
    assert p["field"] == "role"
    still = await c.get(f"{V1}/taff/claims/{claim['id']}", headers=coord)
    assert still.json()["status"] == "pending"

    done = await act(c, "taff", claim["id"], "reject", coord, 200, {"reason": "not on the rota"})
    assert done["status"] == "rejected" and done["reason"] == "not on the rota"
    assert done["decided_by"] == "C1"
    p = await act(c, "taff", claim["id"], "confirm", w.as_("taff", "scheme-admin"), 409)
    assert p["field"] == "claim"
    assert await balance(c, w, "taff", "M1") == 0
    assert await entries(c, w, "taff", "M1") == []


async def test_nobody_confirms_their_own_hours(
    app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    coord, admin = w.as_("taff", "coordinator"), w.as_("taff", "scheme-admin")
    own = await log(c, "taff", coord, activity="garden", date=ago(clock, 1), minutes=120)
    assert own["member"] == "C1" and own["on_behalf"] is False
    p = await act(c, "taff", own["id"], "confirm", coord, 403)
    assert p["code"] == "forbidden" and p["field"] == "by"
    p = await act(c, "taff", own["id"], "reject", coord, 403, {"reason": "changed my mind"})
    assert p["code"] == "forbidden"
    assert await balance(c, w, "taff", "C1") == 0
    # a member can't confirm their own claim either, nor another member's in a time-credit scheme
    mine = await log(c, "taff", w.as_("taff", "member"), activity="garden", date=ago(clock, 1),
                     minutes=30)  # fmt: skip
    await act(c, "taff", mine["id"], "confirm", w.as_("taff", "member"), 403)
    await act(c, "taff", mine["id"], "confirm", w.members[("taff", "M2")], 404)  # not theirs
    assert await balance(c, w, "taff", "M1") == 0
    # another coordinator (the scheme admin) may confirm the coordinator's hours
    done = await act(c, "taff", own["id"], "confirm", admin)
    assert done["decided_by"] == "A1"
    assert await balance(c, w, "taff", "C1") == 120


async def test_claims_for_days_still_to_come_are_refused(
    app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    tomorrow = (today(clock) + timedelta(days=1)).isoformat()
    p = await log(c, "taff", w.as_("taff", "member"), 422, activity="garden", date=tomorrow,
                  minutes=60)  # fmt: skip
    assert p["field"] == "date"
    assert await all_claims(c, w.as_("taff", "coordinator"), "taff") == []
    ok = await log(c, "taff", w.as_("taff", "member"), activity="garden",
                   date=today(clock).isoformat(), minutes=60)  # fmt: skip
    assert ok["date"] == today(clock).isoformat()
    clock.advance(86_400)  # tomorrow has come
    later = await log(c, "taff", w.as_("taff", "member"), activity="garden", date=tomorrow,
                      minutes=60)  # fmt: skip
    assert later["date"] == tomorrow


async def test_a_day_holds_at_most_24_hours_and_rejected_claims_do_not_count(
    app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    m1, coord, day = w.as_("taff", "member"), w.as_("taff", "coordinator"), ago(clock, 3)
    first = await log(c, "taff", m1, activity="garden", date=day, minutes=720)
    await log(c, "taff", m1, activity="garden", date=day, minutes=700)
    p = await log(c, "taff", m1, 422, activity="garden", date=day, minutes=30)
    assert p["field"] == "minutes" and "1440" in p["detail"]
    await log(c, "taff", m1, activity="garden", date=day, minutes=20)  # exactly 1440
    p = await log(c, "taff", m1, 422, activity="garden", date=day, minutes=15)
    assert p["field"] == "minutes"
    # another member's day is their own; another day is a new day
    await log(c, "taff", w.members[("taff", "M2")], activity="garden", date=day, minutes=720)
    await log(c, "taff", m1, activity="garden", date=ago(clock, 4), minutes=720)
    assert len(await all_claims(c, coord, "taff")) == 5
    await act(c, "taff", first["id"], "reject", coord, 200, {"reason": "duplicate"})
    await log(c, "taff", m1, activity="garden", date=day, minutes=720)


async def test_a_claim_like_one_already_logged_is_flagged_as_duplicate_not_refused(
    app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    m1, day = w.as_("taff", "member"), ago(clock, 1)
    a = await log(c, "taff", m1, activity="garden", date=day, minutes=60)
    b = await log(c, "taff", m1, activity="garden", date=day, minutes=60)
    other_minutes = await log(c, "taff", m1, activity="garden", date=day, minutes=75)
    other_day = await log(c, "taff", m1, activity="garden", date=ago(clock, 2), minutes=60)
    other_member = await log(c, "taff", w.members[("taff", "M2")], activity="garden", date=day,
                             minutes=60)  # fmt: skip
    assert a["duplicate"] is False and b["duplicate"] is True
    assert a["id"] != b["id"]
    assert not (other_minutes["duplicate"] or other_day["duplicate"] or other_member["duplicate"])
    listed = {x["id"]: x["duplicate"] for x in await all_claims(c, w.as_("taff", "coordinator"),
                                                                 "taff")}  # fmt: skip
    assert listed[b["id"]] is True and listed[a["id"]] is False


async def test_coordinator_logs_on_behalf_and_the_entry_names_who_logged(
    app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    coord = w.as_("taff", "coordinator")
    claim = await log(c, "taff", coord, member="M2", activity="garden", date=ago(clock, 1),
                      minutes=150)  # fmt: skip
    assert claim["member"] == "M2" and claim["logged_by"] == "C1" and claim["on_behalf"] is True
    done = await act(c, "taff", claim["id"], "confirm", coord)
    assert done["status"] == "confirmed"
    r = await c.get(f"{V1}/taff/members/M2/entries", headers=w.members[("taff", "M2")])
    assert r.status_code == 200, r.text
    [entry] = r.json()["items"]
    assert entry["meta"]["logged-by"] == "C1" and entry["minutes"] == 150
    assert await balance(c, w, "taff", "M2") == 150
    # a member may not log someone else's hours in this scheme
    p = await log(c, "taff", w.as_("taff", "member"), 422, member="M2", activity="garden",
                  date=ago(clock, 1), minutes=30)  # fmt: skip
    assert p["field"] == "member"


async def test_group_session_makes_one_claim_and_one_entry_per_member(
    app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    coord, day = w.as_("taff", "coordinator"), ago(clock, 1)
    body = {"members": ["M1", "M2", "C1"], "activity": "garden", "date": day, "minutes": 120}
    r = await c.post(f"{V1}/taff/claims/group", json=body,
                     headers=coord | {"Idempotency-Key": "session-1"})  # fmt: skip
    assert r.status_code == 201, r.text
    items = {x["member"]: x for x in r.json()["items"]}
    assert set(items) == {"M1", "M2", "C1"}
    assert len({x["id"] for x in items.values()}) == 3
    for m in ("M1", "M2"):
        assert items[m]["status"] == "confirmed" and items[m]["on_behalf"] is True
        assert await balance(c, w, "taff", m) == 120
        [entry] = await entries(c, w, "taff", m)
        assert entry["seq"] == items[m]["entry_seq"] and entry["meta"]["logged-by"] == "C1"
    assert items["M1"]["entry_seq"] != items["M2"]["entry_seq"]
    # the coordinator's own hours wait for another coordinator
    assert items["C1"]["status"] == "pending" and await balance(c, w, "taff", "C1") == 0
    # retried with the same key: the same claims, nothing new
    again = await c.post(f"{V1}/taff/claims/group", json=body,
                         headers=coord | {"Idempotency-Key": "session-1"})  # fmt: skip
    assert again.status_code == 201, again.text
    assert {x["id"] for x in again.json()["items"]} == {x["id"] for x in items.values()}
    assert len(await all_claims(c, coord, "taff")) == 3
    assert await balance(c, w, "taff", "M1") == 120
    # members may not log group sessions
    r = await c.post(f"{V1}/taff/claims/group", json=body, headers=w.as_("taff", "member"))
    assert r.status_code == 403


# ---- person to person ---------------------------------------------------------------------------


async def test_person_to_person_hour_moves_from_receiver_to_giver_and_sums_to_zero(
    app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    m1, m2 = w.members[("m2m", "M1")], w.members[("m2m", "M2")]
    p = await log(c, "m2m", m1, 422, activity="lift", date=ago(clock, 1), minutes=60)
    assert p["field"] == "receiver"
    p = await log(c, "m2m", m1, 422, activity="lift", date=ago(clock, 1), minutes=60,
                  receiver="M1")  # fmt: skip
    assert p["field"] == "receiver"
    claim = await log(c, "m2m", m1, activity="lift", date=ago(clock, 1), minutes=90,
                      receiver="M2")  # fmt: skip
    assert claim["receiver"] == "M2"
    # the receiver sees it; the giver can't confirm it
    seen = await c.get(f"{V1}/m2m/claims", headers=m2)
    assert [x["id"] for x in seen.json()["items"]] == [claim["id"]]
    p = await act(c, "m2m", claim["id"], "confirm", m1, 403)
    assert p["code"] == "forbidden"
    done = await act(c, "m2m", claim["id"], "confirm", m2)
    assert done["decided_by"] == "M2"
    assert await balance(c, w, "m2m", "M1") == 90
    assert await balance(c, w, "m2m", "M2") == -90
    [given] = await entries(c, w, "m2m", "M1")
    [taken] = await entries(c, w, "m2m", "M2")
    assert given["seq"] == taken["seq"] == done["entry_seq"]
    assert (given["minutes"], taken["minutes"]) == (90, -90)
    balances = [await balance(c, w, "m2m", m) for m in ("A1", "C1", "M1", "M2")]
    assert sum(balances) == 0
    # the time-credit scheme saw nothing of it
    assert await balance(c, w, "taff", "M1") == 0


async def test_person_to_person_floor_of_minus_600_is_enforced(
    app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    m1, m2 = w.members[("m2m", "M1")], w.members[("m2m", "M2")]
    first = await log(c, "m2m", m1, activity="lift", date=ago(clock, 2), minutes=90,
                      receiver="M2")  # fmt: skip
    to_floor = await log(c, "m2m", m1, activity="lift", date=ago(clock, 1), minutes=510,
                         receiver="M2")  # fmt: skip
    over = await log(c, "m2m", m1, activity="lift", date=ago(clock, 1), minutes=15,
                     receiver="M2")  # fmt: skip
    await act(c, "m2m", first["id"], "confirm", m2)
    await act(c, "m2m", to_floor["id"], "confirm", m2)
    assert await balance(c, w, "m2m", "M2") == -600  # exactly at the floor is allowed
    p = await act(c, "m2m", over["id"], "confirm", m2, 409)
    assert (p["code"], p["field"]) == ("floor_breached", "receiver")
    # nothing moved, and the claim waits
    assert await balance(c, w, "m2m", "M2") == -600
    assert await balance(c, w, "m2m", "M1") == 600
    assert len(await entries(c, w, "m2m", "M2")) == 2
    r = await c.get(f"{V1}/m2m/claims/{over['id']}", headers=m2)
    assert r.json()["status"] == "pending" and r.json()["entry_seq"] is None
    # once M2 has earned some hours back, the same claim goes through
    back = await log(c, "m2m", m2, activity="lift", date=ago(clock, 1), minutes=30,
                     receiver="M1")  # fmt: skip
    await act(c, "m2m", back["id"], "confirm", m1)
    done = await act(c, "m2m", over["id"], "confirm", m2)
    assert done["status"] == "confirmed"
    assert await balance(c, w, "m2m", "M2") == -585
    balances = [await balance(c, w, "m2m", m) for m in ("A1", "C1", "M1", "M2")]
    assert sum(balances) == 0


# ---- idempotency, paging ------------------------------------------------------------------------


async def test_same_idempotency_key_and_body_returns_the_same_claim_and_logs_once(
    app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    m1 = w.as_("taff", "member")
    body: dict[str, Any] = {"activity": "garden", "date": ago(clock, 1), "minutes": 60,
                            "note": "hedges"}  # fmt: skip
    a = await log(c, "taff", m1, key="phone-42", **body)
    clock.advance(30)
    b = await log(c, "taff", m1, key="phone-42", **body)
    assert a == b
    claims = await all_claims(c, w.as_("taff", "coordinator"), "taff")
    assert [x["id"] for x in claims] == [a["id"]]
    # the same key with another body is a conflict, and writes nothing
    p = await log(c, "taff", m1, 409, key="phone-42", **(body | {"minutes": 61}))
    assert p["field"] == "idempotency_key"
    assert len(await all_claims(c, w.as_("taff", "coordinator"), "taff")) == 1
    # without a key, each request is a new claim
    await log(c, "taff", m1, **body)
    await log(c, "taff", m1, **body)
    assert len(await all_claims(c, w.as_("taff", "coordinator"), "taff")) == 3


async def test_concurrent_retries_with_one_idempotency_key_get_the_same_claim(
    app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    body = {"activity": "garden", "date": ago(clock, 1), "minutes": 60}
    for attempt in range(3):
        headers = w.as_("taff", "member") | {"Idempotency-Key": f"retry-{attempt}"}
        results = await asyncio.gather(
            *(c.post(f"{V1}/taff/claims", json=body, headers=headers) for _ in range(4)),
            return_exceptions=True,
        )
        statuses = [r.status_code if isinstance(r, httpx.Response) else repr(r) for r in results]
        assert statuses == [201] * 4
        assert len({r.json()["id"] for r in results if isinstance(r, httpx.Response)}) == 1
    assert len(await all_claims(c, w.as_("taff", "coordinator"), "taff")) == 3


async def test_idempotency_keys_of_different_members_do_not_collide(
    app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    body: dict[str, Any] = {"activity": "garden", "date": ago(clock, 1), "minutes": 60}
    mine = await log(c, "taff", w.members[("taff", "M1")], key="1", **body)
    theirs = await log(c, "taff", w.members[("taff", "M2")], key="1", **body)
    assert (mine["member"], theirs["member"]) == ("M1", "M2")


async def test_claims_cursor_walks_every_page_once_in_logged_order(
    app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    logged: list[str] = []
    for i in range(11):
        who = w.as_("taff", "member") if i % 3 else w.members[("taff", "M2")]
        claim = await log(c, "taff", who, activity="garden", date=ago(clock, 1 + i % 5),
                          minutes=15 + i)  # fmt: skip
        logged.append(claim["id"])
        if i % 4 == 0:  # several claims share a timestamp: the id breaks the tie
            clock.advance(1)
    coord = w.as_("taff", "coordinator")
    everything = await all_claims(c, coord, "taff")
    assert len(everything) == 11 and {x["id"] for x in everything} == set(logged)
    for limit in (1, 2, 3, 11, 12):
        walked = await all_claims(c, coord, "taff", limit=limit)
        assert [x["id"] for x in walked] == [x["id"] for x in everything], limit
    # filtered walks, and a member's own view
    m1_ids = [x["id"] for x in everything if x["member"] == "M1"]
    assert [x["id"] for x in await all_claims(c, coord, "taff", limit=2, member="M1")] == m1_ids
    mine = await all_claims(c, w.as_("taff", "member"), "taff", limit=3)
    assert [x["id"] for x in mine] == m1_ids
    assert await all_claims(c, coord, "taff", limit=4, status="confirmed") == []
    # a member can't list another member's claims
    r = await c.get(f"{V1}/taff/claims", params={"member": "M2"}, headers=w.as_("taff", "member"))
    assert r.status_code == 403


async def test_retired_activity_refuses_new_claims_but_keeps_its_history(
    app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    coord, m1 = w.as_("taff", "coordinator"), w.as_("taff", "member")
    old = await log(c, "taff", m1, activity="garden", date=ago(clock, 1), minutes=60)
    r = await c.post(f"{V1}/taff/activities/garden/retire", headers=m1)
    assert r.status_code == 403
    r = await c.post(f"{V1}/taff/activities/garden/retire", headers=coord)
    assert r.status_code == 200, r.text
    assert r.json()["retired"] is True
    p = await log(c, "taff", m1, 404, activity="garden", date=ago(clock, 1), minutes=30)
    assert p["field"] == "activity"
    listed = await c.get(f"{V1}/taff/activities", headers=m1)
    assert [(a["code"], a["retired"]) for a in listed.json()["items"]] == [("garden", True)]
    # the claim logged before still goes through
    done = await act(c, "taff", old["id"], "confirm", coord)
    assert done["status"] == "confirmed"
    assert len(await all_claims(c, coord, "taff")) == 1


async def test_burnout_flags_members_over_the_threshold_every_week(
    app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    coord = w.as_("taff", "coordinator")
    now = today(clock)
    monday = now - timedelta(days=now.weekday())
    confirmed: dict[str, list[str]] = {"M1": [], "M2": []}

    async def give(who: str, day: date, minutes: int) -> None:
        claim = await log(c, "taff", coord, member=who, activity="garden", date=day.isoformat(),
                          minutes=minutes)  # fmt: skip
        await act(c, "taff", claim["id"], "confirm", coord)
        confirmed[who].append(claim["id"])

    def two_days(start: date) -> tuple[date, date]:
        """The Monday of a week and the day after, unless that is still to come."""
        return start, min(start + timedelta(days=1), today(clock))

    for week in range(3):  # this week and the two before: 24 hours a week for M1
        for d in two_days(monday - timedelta(weeks=week)):
            await give("M1", d, 720)
            if week < 2:  # M2 gives as much, but not in the third week back
                await give("M2", d, 720)

    async def flagged(**q: int) -> list[str]:
        r = await c.get(f"{V1}/taff/burnout", params=q, headers=coord)
        assert r.status_code == 200, r.text
        members = r.json()["members"]
        assert isinstance(members, list)
        return members

    assert await flagged() == ["M1"]
    assert await flagged(weeks=2) == ["M1", "M2"]
    assert await flagged(hours_per_week=24) == []  # over the threshold, not at it
    assert await flagged(hours_per_week=23) == ["M1"]
    r = await c.get(f"{V1}/taff/burnout", headers=w.as_("taff", "member"))
    assert r.status_code == 403
    # a week later the oldest week drops out, and this week has nothing yet
    clock.advance(7 * 86_400)
    assert await flagged() == []
    assert await flagged(weeks=1) == []
    for d in two_days(monday + timedelta(weeks=1)):
        await give("M1", d, 720)
    assert await flagged() == ["M1"]
    # reversed hours don't count
    r = await c.post(f"{V1}/taff/claims/{confirmed['M1'][-1]}/reverse",
                     json={"reason": "logged in error"}, headers=coord)  # fmt: skip
    assert r.status_code == 200, r.text
    assert await flagged() == []


async def test_a_scheme_limits_how_far_back_a_claim_is_dated_but_not_an_import_of_history(
    app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, admin = app_client, world.admin
    scheme = {"id": "recent", "name": "Recent", "model": "time-credits", "claim_days_back": 30}
    made = await c.post(V1, headers=admin, json=scheme)
    assert made.status_code == 201 and made.json()["claim_days_back"] == 30, made.text
    assert (await c.get(f"{V1}/taff", headers=admin)).json()["claim_days_back"] is None
    for who, role in (("A1", "scheme-admin"), ("C1", "coordinator"), ("M1", "member")):
        body = {"id": who, "display_name": who, "roles": [role]}
        assert (await c.post(f"{V1}/recent/members", headers=admin, json=body)).is_success
    tokens: dict[str, dict[str, str]] = {}
    for who, role in (("A1", "scheme-admin"), ("C1", "coordinator"), ("M1", "member")):
        maker = tokens.get("A1", admin)
        r = await c.post(f"{V1}/recent/tokens", headers=maker, json={"role": role, "member": who})
        assert r.status_code == 201, r.text
        tokens[who] = {"Authorization": f"Bearer {r.json()['token']}"}
    r = await c.post(f"{V1}/recent/activities", headers=tokens["C1"], json=ACTIVITY)
    assert r.status_code == 201, r.text
    await log(c, "recent", tokens["M1"], activity="garden", date=ago(clock, 30), minutes=60)
    refused = await log(c, "recent", tokens["M1"], 422, activity="garden",
                        date=ago(clock, 31), minutes=60)  # fmt: skip
    assert refused["field"] == "date" and "within 30 days" in refused["detail"], refused
    # a coordinator bringing in the scheme's history is not held to it
    csv = f"member,activity,date,minutes\nM1,garden,{ago(clock, 400)},90\n"
    r = await c.post(f"{V1}/recent/imports/hours", content=csv.encode(),
                     headers=tokens["C1"] | {"Content-Type": "text/csv"})  # fmt: skip
    assert r.status_code == 200 and r.json() == {"added": 1}, r.text
    bad = {**scheme, "id": "recent2", "claim_days_back": -1}
    r = await c.post(V1, headers=admin, json=bad)
    assert r.status_code == 422 and r.json()["field"] == "claim_days_back", r.text
