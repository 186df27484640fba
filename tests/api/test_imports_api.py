"""CSV imports over HTTP: members and historic hours in our format, and TimeOverflow's users and
transfers exports. A file with problems comes back as one problem+json listing each problem by
line and field, and writes nothing; sending the same file again writes nothing new."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import httpx
import pytest

from ledger import from_us
from tests.api.world import World
from tests.conftest import Clock, snapshot

pytestmark = pytest.mark.both_backends

V1 = "/api/v1/schemes"
PROBLEM = "application/problem+json"
CSV = {"Content-Type": "text/csv"}


def dated(text: str, clock: Clock) -> str:
    """`text` with each "@N" as the date N days before the clock's today ("@+N": after)."""
    today = from_us(clock()).date()
    return re.sub(
        r"@([+]?)(\d+)",
        lambda m: (today + timedelta(days=int(m[2]) * (1 if m[1] else -1))).isoformat(),
        text,
    )


async def send(
    c: httpx.AsyncClient, clock: Clock, scheme: str, kind: str, who: dict[str, str], text: str,
    status: int = 200, **params: str,
) -> dict[str, Any]:  # fmt: skip
    """POST a CSV file (its "@N" dates filled in from the clock) to an import endpoint."""
    content = dated(text, clock).encode()
    r = await c.post(f"{V1}/{scheme}/imports/{kind}", content=content, params=params,
                     headers=who | CSV)  # fmt: skip
    assert r.status_code == status, r.text
    if status >= 400:
        assert r.headers["content-type"] == PROBLEM
    out = r.json()
    assert isinstance(out, dict)
    return out


def problems(p: dict[str, Any]) -> set[tuple[str, str]]:
    assert p["code"] == "import_refused", p
    return {(e["line"], e["field"]) for e in p["errors"]}


async def balance(c: httpx.AsyncClient, w: World, scheme: str, member: str) -> int:
    r = await c.get(f"{V1}/{scheme}/members/{member}/balance", headers=w.as_(scheme, "coordinator"))
    assert r.status_code == 200, r.text
    minutes = r.json()["minutes"]
    assert isinstance(minutes, int)
    return minutes


# ---- our own formats ----------------------------------------------------------------------------

MEMBERS = """id,display_name,roles,contact,card_number
N1,Nia Jones,member,nia@example.org,card-N1
N2,Ned Price,coordinator;member,,
"""


async def test_members_csv_adds_members_once(
    app_client: httpx.AsyncClient, world: World, clock: Clock, db_url: str
) -> None:
    c, w = app_client, world
    coord = w.as_("taff", "coordinator")
    assert (await send(c, clock, "taff", "members", coord, MEMBERS)) == {"added": 2}
    n2 = (await c.get(f"{V1}/taff/members/N2", headers=coord)).json()
    assert n2["roles"] == ["coordinator", "member"] and n2["display_name"] == "Ned Price"
    found = await c.get(f"{V1}/taff/cards/card-N1", headers=coord)
    assert found.json()["id"] == "N1" and found.json()["contact"] == "nia@example.org"
    before = snapshot(db_url)
    assert (await send(c, clock, "taff", "members", coord, MEMBERS)) == {"added": 0}
    assert snapshot(db_url) == before
    # the scheme admin may import too; members, partners and commissioners may not
    await send(c, clock, "taff", "members", w.as_("taff", "scheme-admin"), MEMBERS)
    for role in ("member", "partner-staff", "commissioner"):
        p = await send(c, clock, "taff", "members", w.as_(role=role, scheme="taff"), MEMBERS, 403)
        assert p["field"] == "role"


async def test_members_csv_with_problems_lists_them_by_line_and_writes_nothing(
    app_client: httpx.AsyncClient, world: World, clock: Clock, db_url: str
) -> None:
    c, w = app_client, world
    coord = w.as_("taff", "coordinator")
    before = snapshot(db_url)
    bad = (
        "id,display_name,roles\n"
        "ok1,Fine,member\n"
        "bad id,Space In Id,member\n"
        "N3,,member\n"
        "N4,Role,king\n"
        "ok1,Again,member\n"
    )
    p = await send(c, clock, "taff", "members", coord, bad, 422)
    assert problems(p) == {("3", "id"), ("4", "display_name"), ("5", "roles"), ("6", "id")}
    assert p["field"] == "id"
    p = await send(c, clock, "taff", "members", coord, "name,email\nNia,nia@example.org\n", 422)
    assert problems(p) == {("1", "id"), ("1", "display_name")}
    p = await send(c, clock, "taff", "members", coord, "", 422)
    assert problems(p) == {("1", "id"), ("1", "display_name")}
    r = await c.post(f"{V1}/taff/imports/members", content=MEMBERS.encode(),
                     headers=coord | {"Content-Type": "application/json"})  # fmt: skip
    assert r.status_code == 415 and r.json()["field"] == "content-type"
    r = await c.post(f"{V1}/taff/imports/members", content=b"id,display_name\nX,\xff\xfe\n",
                     headers=coord | CSV)  # fmt: skip
    assert r.status_code == 422 and r.json()["field"] == "body"
    assert snapshot(db_url) == before


HOURS = """member,activity,date,minutes,receiver,note
M1,garden,@31,60,,first session
M2,garden,@30,90,,
M1,garden,@31,60,,first session
"""


async def test_hours_csv_logs_and_confirms_once(
    app_client: httpx.AsyncClient, world: World, clock: Clock, db_url: str
) -> None:
    c, w = app_client, world
    coord = w.as_("taff", "coordinator")
    # two identical lines are two sessions
    assert (await send(c, clock, "taff", "hours", coord, HOURS)) == {"added": 3}
    assert await balance(c, w, "taff", "M1") == 120
    assert await balance(c, w, "taff", "M2") == 90
    claims = (await c.get(f"{V1}/taff/claims", headers=coord)).json()["items"]
    assert len(claims) == 3
    assert all(x["status"] == "confirmed" and x["logged_by"] == "C1" for x in claims)
    assert sorted(x["note"] for x in claims) == ["", "first session", "first session"]
    before = snapshot(db_url)
    await send(c, clock, "taff", "hours", coord, HOURS)
    assert snapshot(db_url) == before
    # one more line: only it is new
    await send(c, clock, "taff", "hours", coord, HOURS + "M2,garden,@29,30,,\n")
    assert await balance(c, w, "taff", "M1") == 120
    assert await balance(c, w, "taff", "M2") == 120
    assert len((await c.get(f"{V1}/taff/claims", headers=coord)).json()["items"]) == 4


async def test_hours_csv_rerun_reports_only_the_lines_added(
    app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    c, w = app_client, world
    coord = w.as_("taff", "coordinator")
    assert (await send(c, clock, "taff", "hours", coord, HOURS)) == {"added": 3}
    more = HOURS + "M2,garden,@29,30,,\n"
    assert (await send(c, clock, "taff", "hours", coord, more)) == {"added": 1}
    assert (await send(c, clock, "taff", "hours", coord, more)) == {"added": 0}


async def test_hours_csv_with_problems_lists_them_by_line_and_writes_nothing(
    app_client: httpx.AsyncClient, world: World, clock: Clock, db_url: str
) -> None:
    c, w = app_client, world
    coord = w.as_("taff", "coordinator")
    before = snapshot(db_url)
    unreadable = (
        "member,activity,date,minutes\n"
        "M1,garden,@31,60\n"
        "M1,garden,@31,sixty\n"
        "M1,garden,01/12/2025,60\n"
        "M1,garden,@31,-5\n"
        ",garden,@31,60\n"
    )
    p = await send(c, clock, "taff", "hours", coord, unreadable, 422)
    assert problems(p) == {("3", "minutes"), ("4", "date"), ("5", "minutes"), ("6", "member")}
    against_rules = (
        "member,activity,date,minutes,receiver\n"
        "M1,garden,@31,60,\n"
        "Z9,garden,@31,60,\n"
        "M1,knitting,@31,60,\n"
        "M1,garden,@+30,60,\n"
        "M1,garden,@30,800,\n"
        "M2,garden,@27,720,\n"
        "M2,garden,@27,720,\n"
        "M2,garden,@27,15,\n"
        "M1,garden,@31,60,M2\n"
        "M1,garden,@31,5,\n"
    )
    p = await send(c, clock, "taff", "hours", coord, against_rules, 422)
    assert problems(p) == {
        ("3", "member"), ("4", "activity"), ("5", "date"), ("6", "minutes"), ("9", "minutes"),
        ("10", "receiver"), ("11", "minutes"),
    }  # fmt: skip
    p = await send(c, clock, "taff", "hours", w.as_("taff", "member"), HOURS, 403)
    assert p["field"] == "role"
    assert snapshot(db_url) == before


async def test_hours_preview_flags_a_line_naming_an_erased_member_as_the_import_refuses_it(
    app_client: httpx.AsyncClient, world: World, clock: Clock, db_url: str
) -> None:
    """An erased member is no member: the preview flags their lines by line, with the message
    the import itself refuses the file with, and the file is refused whole."""
    c, w = app_client, world
    coord = w.as_("taff", "coordinator")
    assert (await c.post(f"{V1}/taff/members/M2/erase", headers=coord)).status_code == 200
    text = HOURS + "M2,garden,@29,30,,\n"
    before = snapshot(db_url)
    preview = await send(c, clock, "taff", "hours", coord, text, preview="true")
    flagged = {(str(x["line"]), p["field"], p["message"])
               for x in preview["lines"] for p in x["problems"]}  # fmt: skip
    assert flagged == {("3", "member", "no member 'M2'"), ("5", "member", "no member 'M2'")}
    assert [x["ok"] for x in preview["lines"]] == [True, False, True, False]
    assert (preview["ok"], preview["refused"]) == (2, 2)
    refused = await send(c, clock, "taff", "hours", coord, text, 422)
    assert {(e["line"], e["field"], e["message"]) for e in refused["errors"]} == flagged
    assert snapshot(db_url) == before


async def test_members_csv_conflict_with_an_existing_member_names_its_line(
    app_client: httpx.AsyncClient, world: World, clock: Clock, db_url: str
) -> None:
    c, w = app_client, world
    coord = w.as_("taff", "coordinator")
    before = snapshot(db_url)
    text = "id,display_name\nN9,New Person\nM2,Someone Else\n"  # M2 exists as "M2 of taff"
    p = await send(c, clock, "taff", "members", coord, text, 422)
    assert snapshot(db_url) == before
    assert problems(p) == {("3", "id")}


async def test_members_csv_with_an_overlong_field_is_a_line_problem_not_a_500(
    app_client: httpx.AsyncClient, world: World, clock: Clock, db_url: str
) -> None:
    c, w = app_client, world
    before = snapshot(db_url)
    text = "id,display_name\nN1," + "a" * 140_000 + "\n"  # well under the 8 MiB body limit
    p = await send(c, clock, "taff", "members", w.as_("taff", "coordinator"), text, 422)
    assert p["errors"][0]["line"] == "2"
    assert snapshot(db_url) == before


@pytest.mark.parametrize("minutes", ["²", "9" * 5000])
async def test_hours_csv_with_odd_digits_in_minutes_is_a_line_problem_not_a_500(
    app_client: httpx.AsyncClient, world: World, clock: Clock, db_url: str, minutes: str
) -> None:
    c, w = app_client, world
    before = snapshot(db_url)
    text = f"member,activity,date,minutes\nM1,garden,@31,{minutes}\n"
    p = await send(c, clock, "taff", "hours", w.as_("taff", "coordinator"), text, 422)
    assert problems(p) == {("2", "minutes")}
    assert snapshot(db_url) == before


async def test_hours_csv_line_with_more_fields_than_columns_is_refused(
    app_client: httpx.AsyncClient, world: World, clock: Clock, db_url: str
) -> None:
    c, w = app_client, world
    before = snapshot(db_url)
    text = "member,activity,date,minutes,receiver,note\nM1,garden,@31,60,,Weeding, then tea\n"
    p = await send(c, clock, "taff", "hours", w.as_("taff", "coordinator"), text, 422)
    assert [e["line"] for e in p["errors"]] == ["2"]
    assert snapshot(db_url) == before


# ---- TimeOverflow -----------------------------------------------------------------------------

TO_MEMBERS = """N,Name,Email,Phone,Alternative Phone,Created,Last login,Locale,Balance
1,Ann Jones,ann@example.org,029 2000 0001,,2024-01-02 10:00:00 UTC,,en,-1:30
2,Bob Smith,,07700 900002,,2024-01-03 10:00:00 UTC,,en,1:30
3,Cai Evans,cai@example.org,,,2024-01-04 10:00:00 UTC,,cy,0
"""
# newest first, as TimeOverflow lists them; From pays, To did the work
TO_TRANSFERS = """Date,From,To,Post,Quantity
@12 09:00:00 +0100,Bob Smith (2),Ann Jones (1),Shopping,0:45
@22 14:22:01 UTC,Ann Jones (1),Bob Smith (2),Fixing   a shelf,2:15
"""


async def test_timeoverflow_members_and_transfers_import_into_person_to_person(
    app_client: httpx.AsyncClient, world: World, clock: Clock, db_url: str
) -> None:
    c, w = app_client, world
    coord = w.as_("m2m", "coordinator")
    assert (await send(c, clock, "m2m", "timeoverflow-members", coord, TO_MEMBERS)) == {"added": 3}
    ann = (await c.get(f"{V1}/m2m/members/to-1", headers=coord)).json()
    assert ann["display_name"] == "Ann Jones" and ann["roles"] == ["member"]
    assert ann["contact"] == "ann@example.org; 029 2000 0001"
    assert (await send(c, clock, "m2m", "timeoverflow-members", coord, TO_MEMBERS)) == {"added": 0}

    done = await send(
        c, clock, "m2m", "timeoverflow-transfers", coord, TO_TRANSFERS, activity="lift"
    )
    assert done == {"added": 2}
    assert await balance(c, w, "m2m", "to-1") == -135 + 45
    assert await balance(c, w, "m2m", "to-2") == 135 - 45
    assert await balance(c, w, "m2m", "to-3") == 0
    claims = (await c.get(f"{V1}/m2m/claims", headers=coord)).json()["items"]
    claims.sort(key=lambda x: str(x["date"]))
    assert [(x["member"], x["receiver"], x["minutes"], x["date"], x["note"]) for x in claims] == [
        ("to-2", "to-1", 135, dated("@22", clock), "Fixing a shelf"),
        ("to-1", "to-2", 45, dated("@12", clock), "Shopping"),
    ]
    assert all(x["status"] == "confirmed" and x["activity"] == "lift" for x in claims)
    before = snapshot(db_url)
    await send(c, clock, "m2m", "timeoverflow-transfers", coord, TO_TRANSFERS, activity="lift")
    assert snapshot(db_url) == before
    # the scheme's balances still sum to zero
    ids = [m["id"] for m in (await c.get(f"{V1}/m2m/members", headers=coord)).json()["items"]]
    assert sum([await balance(c, w, "m2m", m) for m in ids]) == 0


async def test_timeoverflow_files_with_problems_list_them_by_export_line(
    app_client: httpx.AsyncClient, world: World, clock: Clock, db_url: str
) -> None:
    c, w = app_client, world
    coord = w.as_("m2m", "coordinator")
    before = snapshot(db_url)
    bad_members = TO_MEMBERS + "x7,Dee,,,,,,,\n3,Cai Again,,,,,,,\n"
    p = await send(c, clock, "m2m", "timeoverflow-members", coord, bad_members, 422)
    assert problems(p) == {("5", "N"), ("6", "N")}
    p = await send(
        c, clock, "m2m", "timeoverflow-members", coord, "Nombre,Correo\nAna,a@b.c\n", 422
    )
    assert ("1", "N") in problems(p) and ("1", "Name") in problems(p)
    assert snapshot(db_url) == before

    await send(c, clock, "m2m", "timeoverflow-members", coord, TO_MEMBERS)
    before = snapshot(db_url)
    bad_transfers = (
        "Date,From,To,Post,Quantity\n"
        "@10 10:00:00 UTC,Ann Jones (1),Dai Jones (9),,1:00\n"
        "@11 10:00:00 UTC,Cardiff Time Bank,Ann Jones (1),,1:00\n"
        "@12 10:00:00 UTC,The user isn't active,Ann Jones (1),,1:00\n"
        "@13 10:00:00 UTC,Ann Jones (1),Bob Smith (2),,0\n"
        "19/12/2025,Ann Jones (1),Bob Smith (2),,1:00\n"
        "@14 10:00:00 UTC,Ann Jones (1),Bob Smith (2),,1:00,extra\n"
    )
    p = await send(
        c, clock, "m2m", "timeoverflow-transfers", coord, bad_transfers, 422, activity="lift"
    )
    assert problems(p) == {("3", "From"), ("4", "From"), ("5", "Quantity"), ("6", "Date"),
                           ("7", "")}  # fmt: skip
    # once the file reads, what breaks the scheme's rules is reported by the export's lines
    unknown = (
        "Date,From,To,Post,Quantity\n"
        "@10 10:00:00 UTC,Ann Jones (1),Dai Jones (9),,1:00\n"
        "@31 10:00:00 UTC,Ann Jones (1),Bob Smith (2),,1:00\n"
        "@30 10:00:00 UTC,Ann Jones (1),Bob Smith (2),,13:00\n"
    )
    p = await send(c, clock, "m2m", "timeoverflow-transfers", coord, unknown, 422, activity="lift")
    assert problems(p) == {("2", "member"), ("4", "minutes")}
    p = await send(c, clock, "m2m", "timeoverflow-transfers", coord, TO_TRANSFERS, 422,
                   activity="knitting")  # fmt: skip
    assert problems(p) == {("2", "activity"), ("3", "activity")}
    r = await c.post(f"{V1}/m2m/imports/timeoverflow-transfers", content=TO_TRANSFERS.encode(),
                     headers=coord | CSV)  # fmt: skip
    assert r.status_code == 422 and r.json()["field"] == "activity"
    assert snapshot(db_url) == before
