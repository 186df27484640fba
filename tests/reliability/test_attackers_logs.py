"""Attackers (3 of 3): no secret and no personal data in the logs, nor in any URL.

A real `timebank serve` (tests/api/test_uvicorn.py `Served`, its stdout and stderr captured to
a file) is driven over HTTP with everything an operator's logs could leak: the admin's
bootstrap token, bearer tokens (good, guessed, malformed), passwords (right and wrong), session
cookies, CSRF tokens, members' names, contacts (email addresses, a phone number), card numbers
and claim notes, an email address typed as a login, and a throttled client. Then every one of
those values is looked for in the captured output and in every other file the server wrote:
none may be there. uvicorn's access log is off (`timebank serve` logs at warning), but nginx's
(deploy/nginx) records each request line and Referer: so no URL the app is asked for or sends
a browser to (Location) may carry any of them either. (By design, `GET /api/v1/schemes/{scheme}
/cards/{card}` holds a card number in its path: it is not used here, and docs/deployment.md
says so.)

An unexpected error is logged with its traceback: its log line names the route, not the ids in
the path (a card number, a voucher code); only the path is logged, never its query.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import httpx
import pytest
from starlette.applications import Starlette

from identity.auth import ApiRole
from ledger.storage import sqlite_url
from tests.api.conftest import app, app_client, db_path  # noqa: F401  (fixtures)
from tests.api.test_uvicorn import ADMIN, V1, Served
from tests.api.world import ACTIVITY, World, bearer
from tests.conftest import SERVER_URL
from tests.reliability.conftest import Figures
from tests.web.conftest import world  # noqa: F401  (fixtures)
from web.book import AccountBook

pytestmark = pytest.mark.both_backends

SCHEME = "rivers"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_KEY = re.compile(r'name="key" value="([^"]+)"')
PEOPLE = {  # id: (role, name, contact, card); the scheme admin first: it makes the others' tokens
    "A1": ("scheme-admin", "Gwenllian Ap-Rhydderch", "gwen.ap.r@example.org", "CARD-AR44-7T"),
    "C1": ("coordinator", "Perpetua Quillfeather", "perpetua.quill@example.org", "CARD-QX7K-2R"),
    "M1": ("member", "Bartholomew Ystradgynlais", "+44 7700 900123", "CARD-MZ19-8P"),
}
ADDED = ("N1", "Wilhelmina Cadwaladr", "wil.cadwaladr@example.net", "CARD-NW77-QQ")
PASSWORDS = {"perpetua.q": "Tr0ub4dor&3-horse-staple", "bart.y": "oyster-Lantern-5-crumpet"}
NOTES = ("Drove Mrs Ystrad to her oncology appointment", "Counselling visit after the fall",
         "Helped with a housing benefit appeal")  # fmt: skip


class Recorder:
    """Every secret and personal value the workload used, and every URL it saw."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.urls: list[str] = []

    def keep(self, name: str, value: str) -> str:
        self.values[name] = value
        return value

    def seen(self, response: httpx.Response) -> None:
        self.urls.append(str(response.request.url))
        if "location" in response.headers:
            self.urls.append(response.headers["location"])
        for name, value in response.cookies.items():
            if name in ("tb_session", "tb_csrf") and value:
                self.keep(f"session cookie {len(self.values)}", value)
        for token in _CSRF.findall(response.text) if "html" in response.headers.get(
                "content-type", "") else ():  # fmt: skip
            self.keep(f"csrf {token[:6]}", token)

    async def aseen(self, response: httpx.Response) -> None:
        await response.aread()
        self.seen(response)


def _ok(r: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text[:500])
    body = r.json()
    assert isinstance(body, dict)
    return body


def _client(base: str, rec: Recorder) -> httpx.Client:
    return httpx.Client(base_url=base, timeout=30, event_hooks={"response": [_sync(rec)]})


def _sync(rec: Recorder) -> Any:
    def hook(response: httpx.Response) -> None:
        response.read()
        rec.seen(response)

    return hook


def _submit(c: httpx.Client, form_page: str, path: str, data: dict[str, str]) -> httpx.Response:
    page = c.get(form_page)
    assert page.status_code == 200, (form_page, page.status_code, page.text[:300])
    fields = {"csrf": _CSRF.findall(page.text)[0]} | data
    keys = _KEY.findall(page.text)
    if keys:
        fields["key"] = keys[0]
    r = c.post(path, data=fields)
    if r.status_code == 303:
        r = c.get(r.headers["location"])
    return r


def _api_workload(c: httpx.Client, rec: Recorder) -> dict[str, dict[str, str]]:
    admin = bearer(rec.keep("admin token", ADMIN))
    _ok(c.post(f"{V1}/schemes", json={"id": SCHEME, "name": "Rivers", "model": "time-credits"},
               headers=admin), 201)  # fmt: skip
    s = f"{V1}/schemes/{SCHEME}"
    tokens: dict[str, dict[str, str]] = {}
    for member, (role, name, contact, card) in PEOPLE.items():
        rec.keep(f"name of {member}", name)
        rec.keep(f"contact of {member}", contact)
        rec.keep(f"card of {member}", card)
        body = {"id": member, "display_name": name, "roles": [role], "contact": contact,
                "card_number": card}  # fmt: skip
        _ok(c.post(f"{s}/members", json=body, headers=admin), 201)
        made = _ok(c.post(f"{s}/tokens", json={"role": role, "member": member},
                          headers=tokens.get("A1", admin)), 201)  # fmt: skip
        token = rec.keep(f"token of {member}", str(made["token"]))
        rec.keep(f"token secret of {member}", token.split("_", 2)[2])  # tb_<id>_<secret>
        tokens[member] = bearer(token)
    _ok(c.post(f"{s}/activities", json=ACTIVITY, headers=tokens["C1"]), 201)
    yesterday = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 86400))
    claim = {"activity": ACTIVITY["code"], "date": yesterday, "minutes": 60,
             "note": rec.keep("note 0", NOTES[0])}  # fmt: skip
    made = _ok(c.post(f"{s}/claims", json=claim, headers=tokens["M1"]), 201)
    _ok(c.post(f"{s}/claims/{made['id']}/confirm", headers=tokens["C1"]))
    _ok(c.get(f"{s}/members/M1", headers=tokens["M1"]))
    _ok(c.get(f"{s}/members", headers=tokens["C1"], params={"limit": 10}))
    # refusals that carry secrets or personal data in what was sent
    token_id = tokens["M1"]["Authorization"].split("_")[1]
    guessed = rec.keep("guessed secret", "GuessedSecretGuessedSecretGuessedSecretGue")
    assert c.get(f"{V1}/me", headers=bearer(f"tb_{token_id}_{guessed}")).status_code == 401
    malformed = rec.keep("a guess at the admin token", "hunter2-admin-guess")
    assert c.get(f"{V1}/me", headers=bearer(malformed)).status_code == 401
    bad = {
        "id": "X1",
        "display_name": rec.keep("rejected name", "Ignatius Refusedname" * 3),
        "contact": rec.keep("rejected email", "ignatius@example.com"),
        "roles": ["king"],
    }
    assert c.post(f"{s}/members", json=bad, headers=tokens["C1"]).status_code == 422
    return tokens


def _web_workload(base: str, rec: Recorder) -> None:
    with _client(base, rec) as coordinator:
        assert _submit(coordinator, "/sign-in", "/sign-in",
                       {"login": "perpetua.q", "password": PASSWORDS["perpetua.q"]}
                       ).status_code == 200  # fmt: skip
        member, name, contact, card = ADDED
        r = _submit(coordinator, f"/s/{SCHEME}/coordinate/members",
                    f"/s/{SCHEME}/coordinate/members",
                    {"id": member, "display_name": rec.keep("name of N1", name), "role": "member",
                     "contact": rec.keep("contact of N1", contact),
                     "card_number": rec.keep("card of N1", card)})  # fmt: skip
        assert r.status_code == 200 and name in r.text, r.text[:500]  # the notice names them
        r = _submit(
            coordinator,
            f"/s/{SCHEME}/coordinate/members",
            f"/s/{SCHEME}/coordinate/cards",
            {"card": PEOPLE["M1"][3]},
        )
        assert r.status_code == 200 and PEOPLE["M1"][1] in r.text, r.text[:500]
        r = _submit(coordinator, f"/s/{SCHEME}/coordinate/members/{member}",
                    f"/s/{SCHEME}/coordinate/members/{member}",
                    {"activity": ACTIVITY["code"], "date": "", "minutes": "45",
                     "note": rec.keep("note 1", NOTES[1])})  # fmt: skip
        assert r.status_code == 200, r.text[:500]
        assert _submit(coordinator, f"/s/{SCHEME}/coordinate", "/sign-out", {}).status_code == 200
    with _client(base, rec) as person:
        wrong = rec.keep("a wrong password", "WrongPassword-for-bart-8812")
        r = _submit(person, "/sign-in", "/sign-in", {"login": "bart.y", "password": wrong})
        assert r.status_code == 401
        email = rec.keep("an email typed as a login", "bart.ystrad@example.com")
        r = _submit(person, "/sign-in", "/sign-in", {"login": email, "password": wrong})
        assert r.status_code == 401
        r = _submit(person, "/sign-in", "/sign-in",
                    {"login": "bart.y", "password": PASSWORDS["bart.y"]})  # fmt: skip
        assert r.status_code == 200, r.text[:500]
        r = _submit(person, f"/s/{SCHEME}/me/log", f"/s/{SCHEME}/me/log",
                    {"activity": ACTIVITY["code"], "minutes": "30",
                     "note": rec.keep("note 2", NOTES[2])})  # fmt: skip
        assert r.status_code == 200, r.text[:500]
        assert person.get(f"/s/{SCHEME}/me/data").status_code == 200
        assert person.get(f"/s/{SCHEME}/me/data/download").status_code == 200
        assert person.get(f"/s/{SCHEME}/nothing-here").status_code == 404


def _throttled(c: httpx.Client, rec: Recorder, token: dict[str, str]) -> int:
    """Failures until the throttle answers (this client's address is then held up)."""
    for n in range(100):
        guess = rec.keep(f"guess {n}", f"tb_{'0' * 16}_{n:043d}")
        if c.get(f"{V1}/me", headers=bearer(guess)).status_code == 429:
            assert c.get(f"{V1}/me", headers=token).status_code == 429
            return n
    raise AssertionError("never throttled")


def _written(where: Path) -> list[str]:
    """The files under `where` besides the database and the signing keys."""
    return sorted(
        str(p.relative_to(where)) for p in where.rglob("*") if p.is_file()
        and not p.relative_to(where).parts[0].startswith(("served.db", "keys"))
    )  # fmt: skip


def _leaks(text: str, values: dict[str, str]) -> list[str]:
    plain = unquote_plus(text)
    return sorted(name for name, value in values.items() if value in text or value in plain)


@pytest.fixture
def served(tmp_path: Path, db_url: str) -> Iterator[tuple[Served, str]]:
    """`timebank serve` on the test's database; its output captured to server.log."""
    db: Path | str = db_url if SERVER_URL else tmp_path / "served.db"
    keys = tmp_path / "keys" if SERVER_URL else None
    server = Served(db, tmp_path / "server.log", keys)
    url = db_url if SERVER_URL else sqlite_url(str(db))
    try:
        server.wait_healthy()
        yield server, url
    finally:
        server.terminate()


async def _accounts(url: str) -> None:
    book = await AccountBook.open(url, lambda: time.time_ns() // 1000)
    try:
        await book.create("perpetua.q", PASSWORDS["perpetua.q"], ApiRole.COORDINATOR, SCHEME,
                          member="C1")  # fmt: skip
        await book.create("bart.y", PASSWORDS["bart.y"], ApiRole.MEMBER, SCHEME, member="M1")
    finally:
        await book.close()


async def test_no_secret_or_personal_data_reaches_the_logs_or_any_url(
    served: tuple[Served, str], tmp_path: Path, figures: Figures
) -> None:
    server, url = served
    rec = Recorder()
    for login, password in PASSWORDS.items():
        rec.keep(f"password of {login}", password)
    with _client(server.base, rec) as c:
        tokens = await asyncio.to_thread(_api_workload, c, rec)
    await _accounts(url)
    await asyncio.to_thread(_web_workload, server.base, rec)
    with _client(server.base, rec) as c:
        failures = await asyncio.to_thread(_throttled, c, rec, tokens["C1"])
    server.terminate()
    log = server.output()
    written = await asyncio.to_thread(_written, tmp_path)
    in_log = _leaks(log, rec.values)
    in_urls = {u: _leaks(u, rec.values) for u in rec.urls}
    figures(values_looked_for=len(rec.values), log_bytes=len(log.encode()),
            log_lines=len(log.splitlines()), urls_checked=len(rec.urls),
            further_failures_before_429=failures,
            files_written_besides_the_database=written)  # fmt: skip
    assert written == ["server.log"], written  # no other log file
    assert not in_log, f"in the server's output: {in_log}\n{log}"
    leaked = {u: n for u, n in in_urls.items() if n}
    assert not leaked, f"in URLs: {leaked}"
    assert not re.search(r'"(GET|POST|HEAD) /', log), "an access log line:\n" + log
    assert "Traceback" not in log, log


async def test_an_unexpected_error_logs_the_route_not_the_ids_in_its_path(
    app: Starlette,  # noqa: F811
    world: World,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    figures: Figures,
) -> None:
    from timebank.service import TimeBank

    async def boom(*_args: Any, **_kw: Any) -> Any:
        raise RuntimeError("an unexpected failure")

    monkeypatch.setattr(TimeBank, "member_by_card", boom)
    monkeypatch.setattr(TimeBank, "member", boom)
    card = "CARD-SECRET-4711"
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://tb.test") as c:
        headers = world.as_("taff", "coordinator")
        for path in (f"/cards/{card}", "/members/M2"):
            r = await c.get(f"{V1}/schemes/taff{path}", headers=headers)
            assert r.status_code == 500, r.text
    lines = [r.getMessage() for r in caplog.records
             if r.name == "timebank.api" and r.levelno >= logging.ERROR]  # fmt: skip
    figures(error_lines=lines)
    assert lines, "the error was logged"
    assert not [line for line in lines if card in line], lines
    assert any("/schemes/taff/members/{member}" in line for line in lines), lines
