"""Offers of help and requests for it over HTTP: posting, matching by skill and area,
withdrawing and closing (by their member or a coordinator), and needs by area for coordinators."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.world import World

pytestmark = pytest.mark.both_backends

V1 = "/api/v1/schemes/taff"
PROBLEM = "application/problem+json"


async def post(
    c: httpx.AsyncClient, what: str, who: dict[str, str], status: int = 201, **body: Any
) -> dict[str, Any]:
    r = await c.post(f"{V1}/{what}", json=body, headers=who)
    assert r.status_code == status, r.text
    if status >= 400:
        assert r.headers["content-type"] == PROBLEM
    out = r.json()
    assert isinstance(out, dict)
    return out


async def matches(c: httpx.AsyncClient, who: dict[str, str], request_id: str) -> list[Any]:
    r = await c.get(f"{V1}/requests/{request_id}/matches", headers=who)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert isinstance(items, list)
    return items


async def test_offers_and_requests_are_normalised_and_listed(
    app_client: httpx.AsyncClient, world: World
) -> None:
    c, w = app_client, world
    m1 = w.as_("taff", "member")
    offer = await post(c, "offers", m1, skills=[" Home  Repairs", "DIY", "diy"], area=" cf10 ",
                       availability="weekends", note="bring own tools")  # fmt: skip
    assert offer["member"] == "M1" and offer["active"] is True
    assert offer["skills"] == ["diy", "home-repairs"] and offer["area"] == "CF10"
    request = await post(c, "requests", w.members[("taff", "M2")], skills=["Gardening"],
                         area="CF11", when="Saturday")  # fmt: skip
    assert request["member"] == "M2" and request["open"] is True
    assert request["skills"] == ["gardening"]

    offers = (await c.get(f"{V1}/offers", headers=m1)).json()
    assert [o["id"] for o in offers["items"]] == [offer["id"]]
    assert offers["next_cursor"] is None
    requests = (await c.get(f"{V1}/requests", params={"member": "M2"}, headers=m1)).json()
    assert [r["id"] for r in requests["items"]] == [request["id"]]
    assert (await c.get(f"{V1}/requests", params={"member": "M1"}, headers=m1)).json()[
        "items"
    ] == []
    # another scheme sees none of it
    other = await c.get("/api/v1/schemes/m2m/offers", headers=w.as_("m2m", "member"))
    assert other.json()["items"] == []


async def test_members_post_only_their_own_but_coordinators_post_for_anyone(
    app_client: httpx.AsyncClient, world: World
) -> None:
    c, w = app_client, world
    p = await post(c, "offers", w.as_("taff", "member"), 403, member="M2", skills=["diy"],
                   area="CF10")  # fmt: skip
    assert p["field"] == "member"
    p = await post(c, "requests", w.as_("taff", "member"), 403, member="M2", skills=["diy"],
                   area="CF10")  # fmt: skip
    assert p["field"] == "member"
    done = await post(c, "offers", w.as_("taff", "coordinator"), member="M2", skills=["diy"],
                      area="CF10")  # fmt: skip
    assert done["member"] == "M2"
    p = await post(c, "offers", w.as_("taff", "coordinator"), 404, member="Z9", skills=["diy"],
                   area="CF10")  # fmt: skip
    assert p["field"] == "member"
    for role in ("partner-staff", "commissioner"):
        await post(c, "offers", w.as_("taff", role), 403, skills=["diy"], area="CF10")
    offers = (await c.get(f"{V1}/offers", headers=w.as_("taff", "coordinator"))).json()["items"]
    assert [o["member"] for o in offers] == ["M2"]


async def test_matches_rank_shared_skills_then_same_area_and_skip_own_offers(
    app_client: httpx.AsyncClient, world: World
) -> None:
    c, w = app_client, world
    coord = w.as_("taff", "coordinator")
    m1, m2 = w.as_("taff", "member"), w.members[("taff", "M2")]
    far_two = await post(c, "offers", coord, member="A1", skills=["gardening", "diy"],
                         area="NP20")  # fmt: skip
    near_one = await post(c, "offers", m1, skills=["gardening"], area="CF10")
    far_one = await post(c, "offers", coord, skills=["gardening", "cooking"], area="NP20")
    await post(c, "offers", m1, skills=["cooking"], area="CF10")  # no shared skill
    await post(c, "offers", m2, skills=["gardening", "diy"], area="CF10")  # the asker's own
    request = await post(c, "requests", m2, skills=["gardening", "diy"], area="cf10")

    found = await matches(c, m2, request["id"])
    assert [m["offer"]["id"] for m in found] == [far_two["id"], near_one["id"], far_one["id"]]
    assert found[0]["shared_skills"] == ["diy", "gardening"] and found[0]["same_area"] is False
    assert found[1]["shared_skills"] == ["gardening"] and found[1]["same_area"] is True
    assert found[2]["same_area"] is False
    r = await c.get(f"{V1}/requests/{request['id']}/matches", params={"limit": 1}, headers=m2)
    assert [m["offer"]["id"] for m in r.json()["items"]] == [far_two["id"]]
    r = await c.get(f"{V1}/requests/nope/matches", headers=m2)
    assert r.status_code == 404 and r.json()["field"] == "request"


async def test_withdraw_and_close_by_owner_or_coordinator_only(
    app_client: httpx.AsyncClient, world: World
) -> None:
    c, w = app_client, world
    coord = w.as_("taff", "coordinator")
    m1, m2 = w.as_("taff", "member"), w.members[("taff", "M2")]
    mine = await post(c, "offers", m1, skills=["gardening"], area="CF10")
    theirs = await post(c, "offers", m1, skills=["gardening", "diy"], area="CF10")
    request = await post(c, "requests", m2, skills=["gardening"], area="CF10")
    other_request = await post(c, "requests", m2, skills=["diy"], area="CF10")

    p = await post(c, f"offers/{mine['id']}/withdraw", m2, 403)
    assert p["field"] == "member"
    assert len(await matches(c, m2, request["id"])) == 2
    withdrawn = await post(c, f"offers/{mine['id']}/withdraw", m1, 200)
    assert withdrawn["active"] is False
    again = await post(c, f"offers/{mine['id']}/withdraw", m1, 200)  # idempotent
    assert again["active"] is False
    by_staff = await post(c, f"offers/{theirs['id']}/withdraw", coord, 200)
    assert by_staff["active"] is False
    assert await matches(c, m2, request["id"]) == []
    listed = (await c.get(f"{V1}/offers", headers=m1)).json()["items"]
    assert sorted(o["active"] for o in listed) == [False, False]  # still listed, inactive
    await post(c, "offers/nope/withdraw", m1, 404)

    await post(c, "offers", coord, member="A1", skills=["gardening"], area="CF10")
    assert len(await matches(c, m2, request["id"])) == 1
    p = await post(c, f"requests/{request['id']}/close", m1, 403)
    assert p["field"] == "member"
    closed = await post(c, f"requests/{request['id']}/close", m2, 200)
    assert closed["open"] is False
    assert await matches(c, m2, request["id"]) == []  # a closed request has no matches
    closed_by_staff = await post(c, f"requests/{other_request['id']}/close", coord, 200)
    assert closed_by_staff["open"] is False


async def test_same_idempotency_key_returns_the_same_offer(
    app_client: httpx.AsyncClient, world: World
) -> None:
    c, w = app_client, world
    m1 = w.as_("taff", "member") | {"Idempotency-Key": "offer-1"}
    body = {"skills": ["diy"], "area": "CF10"}
    a = await c.post(f"{V1}/offers", json=body, headers=m1)
    b = await c.post(f"{V1}/offers", json=body, headers=m1)
    assert a.status_code == b.status_code == 201
    assert a.json() == b.json()
    r = await c.post(f"{V1}/offers", json=body | {"area": "CF11"}, headers=m1)
    assert r.status_code == 409 and r.json()["field"] == "idempotency_key"
    assert len((await c.get(f"{V1}/offers", headers=m1)).json()["items"]) == 1


async def test_offers_cursor_walks_every_page_once(
    app_client: httpx.AsyncClient, world: World
) -> None:
    c, w = app_client, world
    m1 = w.as_("taff", "member")
    made = {(await post(c, "offers", m1, skills=[f"skill-{i}"], area="CF10"))["id"]
            for i in range(7)}  # fmt: skip
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 3}
    for _ in range(10):
        page = (await c.get(f"{V1}/offers", params=params, headers=m1)).json()
        seen += [o["id"] for o in page["items"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert sorted(seen) == sorted(made) and len(seen) == len(set(seen))


async def test_needs_and_capabilities_by_area_for_coordinators_only(
    app_client: httpx.AsyncClient, world: World
) -> None:
    c, w = app_client, world
    coord = w.as_("taff", "coordinator")
    m1, m2 = w.as_("taff", "member"), w.members[("taff", "M2")]
    await post(c, "offers", m1, skills=["gardening", "diy"], area="CF10")
    withdrawn = await post(c, "offers", m1, skills=["cooking"], area="CF10")
    await post(c, f"offers/{withdrawn['id']}/withdraw", m1, 200)
    await post(c, "requests", m2, skills=["gardening"], area="CF10")
    await post(c, "requests", m2, skills=["gardening", "shopping"], area="CF10")
    await post(c, "requests", m2, skills=["lifts"], area="NP20")
    closed = await post(c, "requests", m2, skills=["cooking"], area="NP20")
    await post(c, f"requests/{closed['id']}/close", m2, 200)

    for role in ("member", "partner-staff", "commissioner"):
        r = await c.get(f"{V1}/needs", headers=w.as_("taff", role))
        assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    r = await c.get(f"{V1}/needs", headers=coord)
    assert r.status_code == 200, r.text
    areas = {a["area"]: a for a in r.json()["items"]}
    assert list(areas) == ["CF10", "NP20"]
    assert areas["CF10"] == {
        "area": "CF10", "open_requests": 2, "active_offers": 1,
        "needed": {"gardening": 2, "shopping": 1}, "offered": {"diy": 1, "gardening": 1},
        "unmet": ["shopping"],
    }  # fmt: skip
    assert areas["NP20"]["open_requests"] == 1 and areas["NP20"]["active_offers"] == 0
    assert areas["NP20"]["unmet"] == ["lifts"]
    r = await c.get(f"{V1}/needs", headers=w.as_("taff", "scheme-admin"))
    assert r.status_code == 200
