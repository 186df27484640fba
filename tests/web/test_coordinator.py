"""The coordinator's pages: the queue (bulk confirm and reject), group sessions, acting for a
member without a phone, members and activities, reversals, burn-out flags and CSV imports with a
line-by-line preview. Every effect is checked through the API, not the page's own word."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests.api.world import World
from tests.conftest import snapshot
from tests.web.conftest import Pages

pytestmark = pytest.mark.both_backends

Form = dict[str, str | list[str]]
Browser = Callable[[str], Awaitable[Pages]]
V1 = "/api/v1/schemes"
DAY = "2025-12-31"
A = "/taff/activities"  # the world's clock reads 2026-01-01


async def api(c: httpx.AsyncClient, method: str, path: str, who: dict[str, str],
              status: int = 200, **kw: Any) -> Any:  # fmt: skip
    r = await c.request(method, V1 + path, headers=who, **kw)
    assert r.status_code == status, r.text
    return r.json()


async def balance(c: httpx.AsyncClient, world: World, member: str) -> int:
    found = await api(c, "GET", f"/taff/members/{member}/balance", world.as_("taff", "coordinator"))
    minutes = found["minutes"]
    assert isinstance(minutes, int)
    return minutes


async def log(c: httpx.AsyncClient, world: World, member: str, minutes: int = 60) -> str:
    """A pending claim logged by the member themself, through the API."""
    body = {"activity": "garden", "date": DAY, "minutes": minutes}
    made = await api(c, "POST", "/taff/claims", world.members[("taff", member)], 201, json=body)
    assert made["status"] == "pending"
    return str(made["id"])


async def claim(c: httpx.AsyncClient, world: World, claim_id: str) -> dict[str, Any]:
    found = await api(c, "GET", f"/taff/claims/{claim_id}", world.as_("taff", "coordinator"))
    assert isinstance(found, dict)
    return found


async def test_bulk_confirm_confirms_each_chosen_claim_and_both_balances_rise(
    world: World, browser: Browser, app_client: httpx.AsyncClient
) -> None:
    c = app_client
    one, two = await log(c, world, "M1", 60), await log(c, world, "M2", 90)
    before = await balance(c, world, "M1"), await balance(c, world, "M2")
    pages = await browser("taff-coordinator")
    queue = await pages.get("/s/taff/coordinate")
    assert one in queue.text and two in queue.text
    r = await pages.submit("/s/taff/coordinate", {"claim": [one, two], "action": "confirm"})
    assert r.text.count("Done") >= 2
    assert (await balance(c, world, "M1"), await balance(c, world, "M2")) == (
        before[0] + 60, before[1] + 90,
    )  # fmt: skip
    assert (await claim(c, world, one))["status"] == "confirmed"


async def test_bulk_reject_needs_a_reason_and_then_rejects_each(
    world: World, browser: Browser, app_client: httpx.AsyncClient
) -> None:
    c = app_client
    one, two = await log(c, world, "M1"), await log(c, world, "M2")
    pages = await browser("taff-coordinator")
    r = await pages.submit("/s/taff/coordinate", {"claim": [one, two], "action": "reject"},
                           status=422)  # fmt: skip
    assert 'id="e-reason"' in r.text and 'aria-invalid="true"' in r.text
    assert (await claim(c, world, one))["status"] == "pending"
    data: Form = {"claim": [one, two], "action": "reject", "reason": "Not at the garden that day"}
    await pages.submit("/s/taff/coordinate", data)
    for claim_id in (one, two):
        found = await claim(c, world, claim_id)
        assert found["status"] == "rejected" and found["reason"] == "Not at the garden that day"


async def test_the_summary_names_a_claim_that_was_refused(
    world: World, browser: Browser, app_client: httpx.AsyncClient
) -> None:
    c = app_client
    one = await log(c, world, "M1")
    coord = world.as_("taff", "coordinator")
    await api(c, "POST", f"/taff/claims/{one}/reject", coord, json={"reason": "no"})
    two = await log(c, world, "M2")
    pages = await browser("taff-coordinator")
    r = await pages.submit("/s/taff/coordinate", {"claim": [one, two], "action": "confirm"})
    assert "Refused" in r.text and "Done" in r.text
    assert (await claim(c, world, two))["status"] == "confirmed"


async def test_a_group_session_logs_a_claim_for_each_chosen_member(
    world: World, browser: Browser, app_client: httpx.AsyncClient
) -> None:
    c = app_client
    before = await balance(c, world, "M1"), await balance(c, world, "M2")
    pages = await browser("taff-coordinator")
    form = await pages.get("/s/taff/coordinate/group")
    assert 'value="M1"' in form.text and 'value="M2"' in form.text
    data: Form = {"activity": "garden", "date": DAY, "minutes": "120", "members": ["M1", "M2"]}
    r = await pages.submit("/s/taff/coordinate/group", data)
    assert "Members in the session: 2." in r.text
    coord = world.as_("taff", "coordinator")
    for member in ("M1", "M2"):
        found = await api(c, "GET", f"/taff/claims?member={member}", coord)
        assert [(x["minutes"], x["logged_by"]) for x in found["items"]] == [(120, "C1")]
    assert (await balance(c, world, "M1"), await balance(c, world, "M2")) == (
        before[0] + 120, before[1] + 120,
    )  # fmt: skip


async def test_a_group_session_sent_twice_logs_its_claims_once(
    world: World, browser: Browser, app_client: httpx.AsyncClient
) -> None:
    pages = await browser("taff-coordinator")
    form = await pages.get("/s/taff/coordinate/group")
    tokens = {n: re.findall(rf'name="{n}" value="([^"]+)"', form.text)[0] for n in ("csrf", "key")}
    data = tokens | {"activity": "garden", "date": DAY, "minutes": "60", "members": ["M1"]}
    for _ in range(2):  # a double tap
        r = await pages.client.post("/s/taff/coordinate/group", data=data)
        assert r.status_code == 303
    found = await api(app_client, "GET", "/taff/claims?member=M1", world.as_("taff", "coordinator"))
    assert len(found["items"]) == 1


async def test_a_group_session_without_members_names_the_field(
    world: World, browser: Browser
) -> None:
    pages = await browser("taff-coordinator")
    data: Form = {"activity": "garden", "date": DAY, "minutes": "120"}
    r = await pages.submit("/s/taff/coordinate/group", data, status=422)
    assert 'id="e-members"' in r.text


async def test_hours_logged_for_a_member_show_on_their_history_as_on_behalf(
    world: World, browser: Browser, app_client: httpx.AsyncClient
) -> None:
    pages = await browser("taff-coordinator")
    data: Form = {"activity": "garden", "date": DAY, "minutes": "45", "note": "No phone"}
    r = await pages.submit("/s/taff/coordinate/members/M2", data)
    assert "C1, on their behalf" in r.text
    found = await api(app_client, "GET", "/taff/claims?member=M2",
                      world.as_("taff", "coordinator"))  # fmt: skip
    [made] = found["items"]
    assert made["on_behalf"] is True and made["logged_by"] == "C1" and made["minutes"] == 45


async def test_a_member_is_found_by_card_number(world: World, browser: Browser) -> None:
    pages = await browser("taff-coordinator")
    r = await pages.submit("/s/taff/coordinate/cards", {"card": "taff-M2"},
                           form_page="/s/taff/coordinate/members")  # fmt: skip
    assert str(r.url) == "http://tb.test/s/taff/coordinate/members/M2"  # no card in any URL
    assert "M2 of taff" in r.text
    r = await pages.submit("/s/taff/coordinate/cards", {"card": "nope"}, status=404,
                           form_page="/s/taff/coordinate/members")  # fmt: skip
    assert 'id="e-card"' in r.text


async def test_a_member_added_on_the_members_page_is_in_the_register(
    world: World, browser: Browser, app_client: httpx.AsyncClient
) -> None:
    pages = await browser("taff-coordinator")
    data: Form = {"id": "N9", "display_name": "Nia", "role": "member", "card_number": "card-9"}
    await pages.submit("/s/taff/coordinate/members", data)
    found = await api(app_client, "GET", "/taff/members/N9", world.as_("taff", "coordinator"))
    assert found["display_name"] == "Nia" and found["card_number"] == "card-9"
    r = await pages.submit("/s/taff/coordinate/members", {"id": "bad id", "display_name": "X"},
                           status=422)  # fmt: skip
    assert 'id="e-id"' in r.text


async def test_text_holding_nul_is_refused_naming_the_field_on_pages_and_changes_nothing(
    world: World, browser: Browser, db_url: str
) -> None:
    """U+0000 (which PostgreSQL cannot store) in a form field, a path, a query or a file."""
    pages = await browser("taff-coordinator")
    before = snapshot(db_url)
    r = await pages.submit("/s/taff/coordinate/members", {"id": "N9", "display_name": "Ni\x00a",
                           "role": "member"}, status=422)  # fmt: skip
    assert "“display_name” must not contain the NUL character" in r.text
    await pages.get("/s/taff/coordinate/members/M%002", status=422)
    await pages.get("/s/taff/coordinate/members?q=M%00", status=422)
    csv = ("members.csv", b"id,display_name\nN1,Ni\x00a\n", "text/csv")
    await pages.submit("/s/taff/coordinate/import", {"kind": "members"}, files={"file": csv},
                       status=422)  # fmt: skip
    assert snapshot(db_url) == before
    visitor = await browser("")
    page = await visitor.get("/sign-in")
    token = re.findall(r'name="csrf" value="([^"]+)"', page.text)[0]
    r = await visitor.client.post("/sign-in", data={"csrf": token, "login": "taff-\x00",
                                                    "password": "x"})  # fmt: skip
    assert r.status_code == 422 and "“login” must not" in r.text


async def test_an_activity_is_added_with_its_classification_and_retired(
    world: World, browser: Browser, app_client: httpx.AsyncClient
) -> None:
    pages = await browser("taff-coordinator")
    data: Form = {
        "code": "litter", "title": "Litter pick", "form": "co-delivery", "subform": "",
        "contribution": "time-and-effort", "area": "environment", "mode": "collective",
        "voluntariness": "voluntary", "relation": "new-activity", "safeguarding_check": "yes",
        "proxy_code": "cleaner",
    }  # fmt: skip
    await pages.submit("/s/taff/coordinate/activities", data)
    coord = world.as_("taff", "coordinator")
    found = {
        a["code"]: a for a in (await api(app_client, "GET", "/taff/activities", coord))["items"]
    }
    assert found["litter"]["area"] == "environment" and found["litter"]["safeguarding_check"]
    await pages.submit("/s/taff/coordinate/activities/litter/retire", {},
                       form_page="/s/taff/coordinate/activities")  # fmt: skip
    found = {
        a["code"]: a for a in (await api(app_client, "GET", "/taff/activities", coord))["items"]
    }
    assert found["litter"]["retired"] is True
    bad: Form = data | {"code": "sub", "form": "co-design", "subform": "mutual-aid"}
    r = await pages.submit("/s/taff/coordinate/activities", bad, status=422)
    assert 'id="e-subform"' in r.text


async def test_reversing_needs_a_reason_and_then_the_balance_returns(
    world: World, browser: Browser, app_client: httpx.AsyncClient
) -> None:
    c = app_client
    before = await balance(c, world, "M1")
    one = await log(c, world, "M1", 30)
    await api(c, "POST", f"/taff/claims/{one}/confirm", world.as_("taff", "coordinator"))
    assert await balance(c, world, "M1") == before + 30
    pages = await browser("taff-coordinator")
    path = f"/s/taff/coordinate/claims/{one}"
    r = await pages.submit(path, {"reason": ""}, status=422)
    assert 'id="e-reason"' in r.text
    assert await balance(c, world, "M1") == before + 30
    await pages.submit(path, {"reason": "Logged twice"})
    assert await balance(c, world, "M1") == before
    assert (await claim(c, world, one))["reversal_seq"] is not None


async def test_burnout_flags_take_their_thresholds_from_the_form(
    world: World, browser: Browser
) -> None:
    pages = await browser("taff-coordinator")
    r = await pages.get("/s/taff/coordinate/burnout?hours_per_week=5&weeks=2")
    assert "No one is over these thresholds." in r.text
    r = await pages.get("/s/taff/coordinate/burnout?hours_per_week=500", status=422)
    assert 'id="e-hours_per_week"' in r.text


MEMBERS_CSV = b"id,display_name,roles,contact,card_number\nN1,Nia,member,,c-1\n" \
    b"bad id,Bob,member,,\nN2,Dai,wizard,,\n"  # fmt: skip


async def _wait_for_job(pages: Pages, url: str) -> str:
    for _ in range(200):
        r = await pages.get(url)
        if "Working on it" not in r.text:
            return r.text
        await asyncio.sleep(0.02)
    raise AssertionError("the job did not finish")


async def test_an_import_is_previewed_line_by_line_and_written_only_when_confirmed(
    world: World, browser: Browser, app_client: httpx.AsyncClient
) -> None:
    coord = world.as_("taff", "coordinator")

    async def register() -> set[str]:
        found = await api(app_client, "GET", "/taff/members?limit=500", coord)
        return {m["id"] for m in found["items"]}

    before = await register()
    pages = await browser("taff-coordinator")
    files = {"file": ("people.csv", MEMBERS_CSV, "text/csv")}
    r = await pages.submit("/s/taff/coordinate/import", {"kind": "members"}, files=files)
    assert "Nothing has been written yet" in r.text
    assert "1-40 characters of letters, digits" in r.text  # line 3's problem, by its field
    assert "roles are member, coordinator, scheme-admin" in r.text  # line 4's
    assert "Import this 1 line" in r.text
    assert await register() == before  # the preview wrote nothing
    data: Form = re.findall(r'name="data" value="([^"]+)"', r.text)[0]
    page = r.text
    csrf = re.findall(r'name="csrf" value="([^"]+)"', page)[0]
    key = re.findall(r'name="key" value="([^"]+)"', page)[0]
    done = await pages.client.post("/s/taff/coordinate/import/run", data={
        "csrf": csrf, "key": key, "kind": "members", "data": data})  # fmt: skip
    assert done.status_code == 303 and "/s/taff/jobs/" in done.headers["location"]
    text = await _wait_for_job(pages, done.headers["location"])
    assert "1 added" in text
    assert await register() == before | {"N1"}


async def test_an_hours_import_previews_a_missing_member_then_imports_the_good_lines(
    world: World, browser: Browser, app_client: httpx.AsyncClient
) -> None:
    c = app_client
    before = await balance(c, world, "M1")
    pages = await browser("taff-coordinator")
    csv = f"member,activity,date,minutes\nM1,garden,{DAY},60\nZZ,garden,{DAY},60\n"
    files = {"file": ("hours.csv", csv.encode(), "text/csv")}
    r = await pages.submit("/s/taff/coordinate/import", {"kind": "hours"}, files=files)
    assert "member: no member &#39;ZZ&#39;" in r.text
    assert "Import this 1 line" in r.text
    assert await balance(c, world, "M1") == before
    data = re.findall(r'name="data" value="([^"]+)"', r.text)[0]
    done = await pages.submit("/s/taff/coordinate/import/run", {"kind": "hours", "data": data},
                              form_page="/s/taff/coordinate/import")  # fmt: skip
    text = (
        done.text if "Working on it" not in done.text else await _wait_for_job(pages, str(done.url))
    )
    assert "1 added" in text
    assert await balance(c, world, "M1") == before + 60


async def test_an_import_without_a_file_names_the_field(world: World, browser: Browser) -> None:
    pages = await browser("taff-coordinator")
    r = await pages.submit("/s/taff/coordinate/import", {"kind": "members"}, status=422)
    assert 'id="e-file"' in r.text


async def test_a_member_account_is_refused_the_coordinator_pages(
    world: World, browser: Browser
) -> None:
    pages = await browser("taff-member")
    for path in ("", "/group", "/members", "/members/M2", "/activities", "/burnout", "/import"):
        await pages.get(f"/s/taff/coordinate{path}", status=403)


async def test_a_coordinator_gets_404_for_another_schemes_pages(
    world: World, browser: Browser
) -> None:
    pages = await browser("taff-coordinator")
    for path in ("", "/group", "/members", "/members/M2", "/activities", "/burnout", "/import"):
        await pages.get(f"/s/m2m/coordinate{path}", status=404)


async def test_a_scheme_admin_sees_the_queue(world: World, browser: Browser) -> None:
    pages = await browser("taff-scheme-admin")
    r = await pages.get("/s/taff/coordinate")
    assert 'aria-current="page"' in r.text


async def test_the_api_previews_an_import_line_by_line_and_writes_nothing(
    world: World, app_client: httpx.AsyncClient
) -> None:
    coord = world.as_("taff", "coordinator") | {"Content-Type": "text/csv"}
    csv = MEMBERS_CSV + b"M1,Someone else,member,,\n"  # M1 exists with other details
    r = await app_client.post(f"{V1}/taff/imports/members", content=csv, headers=coord,
                              params={"preview": "true"})  # fmt: skip
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["ok"], out["refused"]) == (1, 3)
    by_line = {x["line"]: x for x in out["lines"]}
    assert by_line[2]["ok"] and by_line[2]["values"]["display_name"] == "Nia"
    assert [p["field"] for p in by_line[3]["problems"]] == ["id"]
    assert [p["field"] for p in by_line[5]["problems"]] == ["id"]
    listed = await api(app_client, "GET", "/taff/members?limit=500", coord)
    assert "N1" not in {m["id"] for m in listed["items"]}
    r = await app_client.post(f"{V1}/taff/imports/members", content=MEMBERS_CSV, headers=coord)
    assert r.status_code == 422  # without the preview, the same file is refused whole
