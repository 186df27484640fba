"""Attackers (2 of 3): guessing credentials, and credentials that should have stopped working.

- Bearer tokens: failed authentications from one client address are throttled (api/tokens.py:
  after `MAX_FAILURES` in `WINDOW_SECONDS`, 429 with Retry-After on every route that needs a
  token, a good token included, until the window ends), the admin's bootstrap token too; other
  addresses are unaffected; memory stays bounded.
- Sign-ins: guessing one login's password from many addresses, and many logins' from one
  address, are both throttled (web/accounts.py: `MAX_FAILURES` per login and per address in
  `WINDOW_SECONDS`); an unknown login looks exactly like a wrong password.
- Tokens expire (`expires`, optional, when made) and are refused at once on every route after;
  a revocation made by another process is seen within the cache time.
- Sessions end after 2 idle hours and 12 hours after sign-in however busy, and a stolen cookie
  (and its CSRF token) is worthless after sign-out, a password change, disabling or erasure.

Proven elsewhere and not repeated here: a revoked token (revoked in this process) is refused
with 401 on every API route, and so are unknown, malformed and truncated ones
(tests/api/test_authorization.py::test_requests_without_a_good_token_are_401_before_anything_else);
an erased member's tokens stop working (test_an_erased_members_tokens_stop_working there) and
their account is disabled (tests/web/test_member.py); sign-in throttling as a user sees it, and
sign-out (tests/web/test_signin.py).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from api.routes import ENDPOINTS
from identity import tokens as token_book
from identity.auth import Throttle
from identity.refusals import Unauthenticated
from identity.tokens import MAX_FAILURES, THROTTLED_CLIENTS, WINDOW_SECONDS, TokenBook
from ledger import from_us
from main.asgi import Config, create_app
from tests.api.conftest import ADMIN, app, app_client, db_path  # noqa: F401  (fixtures)
from tests.api.world import World, bearer
from tests.conftest import Clock, started
from tests.reliability.conftest import Figures
from tests.web.conftest import PASSWORD, Pages, browser, world  # noqa: F401  (fixtures)
from web import accounts
from web.book import AccountBook

pytestmark = [pytest.mark.slow, pytest.mark.both_backends]  # about 25 s on SQLite

V1 = "/api/v1"
PROBLEM = "application/problem+json"
PARAMS = {"scheme": "taff", "member": "M1", "card": "taff-M1", "seq": "1", "code": "garden",
          "claim": "0" * 24, "offer": "x", "request": "x", "partner": "p-taff",
          "token": "0" * 16}  # fmt: skip
Browser = Callable[[str], Awaitable[Pages]]


class Clients:
    """httpx clients of the app, each from a client address of its own choosing."""

    def __init__(self, asgi: Starlette) -> None:
        self.app = asgi
        self.made: dict[str, httpx.AsyncClient] = {}

    def at(self, address: str) -> httpx.AsyncClient:
        if address not in self.made:
            transport = httpx.ASGITransport(app=self.app, client=(address, 50000))
            self.made[address] = httpx.AsyncClient(transport=transport, base_url="http://tb.test")
        return self.made[address]

    async def close(self) -> None:
        for client in self.made.values():
            await client.aclose()


@pytest.fixture
async def clients(app: Starlette) -> AsyncIterator[Clients]:  # noqa: F811
    made = Clients(app)
    yield made
    await made.close()


def wrong_secret(headers: dict[str, str]) -> dict[str, str]:
    """A real token's id with a guessed secret."""
    token_id = headers["Authorization"].split("_")[1]
    return bearer(f"tb_{token_id}_{'A' * 43}")


async def failures_until_refused(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    """Failed authentications sent until the first 429 (at most 1,000)."""
    for sent in range(1000):
        r = await client.get(f"{V1}/me", headers=headers)
        if r.status_code == 429:
            return sent
        assert r.status_code == 401, r.text
    raise AssertionError("never throttled")


def every_route() -> list[tuple[str, str]]:
    return [(ep.method, V1 + ep.path.format(**PARAMS)) for ep in ENDPOINTS]


# ---- bearer tokens: guessing ----------------------------------------------------------------


async def test_guessing_bearer_tokens_from_one_address_is_throttled_until_the_window_ends(
    world: World,  # noqa: F811
    clients: Clients,
    clock: Clock,
    figures: Figures,
) -> None:
    good = world.as_("taff", "coordinator")
    attacker, neighbour = clients.at("198.51.100.20"), clients.at("198.51.100.21")
    allowed = await failures_until_refused(attacker, wrong_secret(good))
    r = await attacker.get(f"{V1}/me", headers=wrong_secret(good))
    assert (r.status_code, r.headers["content-type"]) == (429, PROBLEM), r.text
    assert r.json()["field"] == "authorization" and r.json()["code"] == "too_many_requests"
    retry_after = int(r.headers["retry-after"])
    assert 0 < retry_after <= WINDOW_SECONDS
    # now a good token from that address is refused too: guessing right would show nothing
    assert (await attacker.get(f"{V1}/me", headers=good)).status_code == 429
    # another address is not held up, and its own failures count for itself
    assert (await neighbour.get(f"{V1}/me", headers=good)).status_code == 200
    assert (await neighbour.get(f"{V1}/me", headers=wrong_secret(good))).status_code == 401
    # just before the window ends: still refused; at its end, free again
    clock.advance(retry_after - 1)
    assert (await attacker.get(f"{V1}/me", headers=good)).status_code == 429
    clock.advance(1)
    assert (await attacker.get(f"{V1}/me", headers=good)).status_code == 200
    assert (await attacker.get(f"{V1}/me", headers=wrong_secret(good))).status_code == 401
    figures(failures_before_429=allowed, retry_after_s=retry_after, window_s=WINDOW_SECONDS)
    assert allowed == MAX_FAILURES


async def test_a_throttled_address_is_refused_on_every_route_even_with_a_good_token(
    world: World,  # noqa: F811
    clients: Clients,
    figures: Figures,
) -> None:
    attacker = clients.at("198.51.100.30")
    good = world.as_("taff", "scheme-admin")
    await failures_until_refused(attacker, wrong_secret(good))
    wrong = []
    for method, url in every_route():
        for headers in (good, world.admin, wrong_secret(good)):
            r = await attacker.request(method, url, headers=headers)
            if r.status_code != 429 or "retry-after" not in r.headers:
                wrong.append(f"  {method} {url}: {r.status_code} {r.text[:120]}")
    for url in ("/api/v1/health", "/api/v1/openapi.json", "/api/v1/docs", "/sign-in"):
        r = await attacker.get(url)
        if r.status_code != 200:  # what needs no token is not held up
            wrong.append(f"  GET {url}: {r.status_code}")
    figures(routes_refused=len(ENDPOINTS), requests=3 * len(ENDPOINTS))
    assert not wrong, "\n" + "\n".join(wrong)


async def test_guessing_the_admin_token_is_throttled_like_any_other(
    world: World,  # noqa: F811
    clients: Clients,
    figures: Figures,
) -> None:
    """TIMEBANK_ADMIN_TOKEN is a secret the operator chose, perhaps a weak one: the likeliest
    thing to guess. After the failures allowed, even the right guess is refused."""
    attacker = clients.at("198.51.100.40")
    guesses = [bearer(f"password{n}") for n in range(MAX_FAILURES)]
    for guess in guesses:
        assert (await attacker.get(f"{V1}/schemes", headers=guess)).status_code == 401
    r = await attacker.get(f"{V1}/schemes", headers=bearer(ADMIN))
    assert r.status_code == 429, r.text
    assert (await clients.at("198.51.100.41").get(f"{V1}/schemes", headers=world.admin)).is_success
    figures(guesses_before_429=len(guesses))


async def test_processes_share_the_count_so_n_of_them_allow_only_n_minus_1_more_guesses(
    world: World,  # noqa: F811
    clients: Clients,
    db_url: str,
    tmp_path: Path,
    clock: Clock,
    figures: Figures,
) -> None:
    """Behind a balancer each process counts in memory first; each failure is also written to
    the database and the count of all of them taken back. After `MAX_FAILURES` at one process,
    another allows one guess (its own first failure) and then refuses that address too."""
    good = world.as_("taff", "coordinator")
    address = "198.51.100.50"
    allowed_first = await failures_until_refused(clients.at(address), wrong_secret(good))
    config = Config(url=db_url, key_dir=tmp_path / "keys", bootstrap_admin=ADMIN,
                    schedule_seconds=0, clock=clock)  # fmt: skip
    second = create_app(config)
    async with started(second):
        other = Clients(second)
        try:
            allowed_second = await failures_until_refused(other.at(address), wrong_secret(good))
            assert (await other.at(address).get(f"{V1}/me", headers=good)).status_code == 429
            neighbour = other.at("198.51.100.51")
            assert (await neighbour.get(f"{V1}/me", headers=good)).status_code == 200
        finally:
            await other.close()
    figures(first_process=allowed_first, second_process=allowed_second,
            per_process_alone=MAX_FAILURES)  # fmt: skip
    assert (allowed_first, allowed_second) == (MAX_FAILURES, 1)


async def test_the_throttle_remembers_a_bounded_number_of_addresses(
    app: Starlette,  # noqa: F811
    world: World,  # noqa: F811
    clients: Clients,
    figures: Figures,
) -> None:
    """Failures from ever more addresses (an attacker with many) cannot grow the memory
    without bound: the least recently failing address is forgotten first."""
    pure = Throttle(MAX_FAILURES, WINDOW_SECONDS * 1_000_000, THROTTLED_CLIENTS)
    for n in range(THROTTLED_CLIENTS * 2 + 500):
        pure.failed(f"2001:db8::{n:x}", 0)
    assert len(pure) == THROTTLED_CLIENTS
    live = app.state.services.tokens.throttle
    live.clients = 50  # the same bound, small enough to reach over HTTP
    bad = wrong_secret(world.as_("taff", "member"))
    for n in range(80):
        r = await clients.at(f"203.0.113.{n}").get(f"{V1}/me", headers=bad)
        assert r.status_code == 401
    assert len(live) == 50
    figures(
        bound=THROTTLED_CLIENTS,
        addresses_failed=THROTTLED_CLIENTS * 2 + 500,
        remembered=len(pure),
        http_bound=50,
        http_addresses=80,
        http_remembered=len(live),
    )


# ---- sign-ins: guessing ---------------------------------------------------------------------

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def sign_in(client: httpx.AsyncClient, login: str, password: str) -> httpx.Response:
    page = await client.get("/sign-in")
    csrf = _CSRF.findall(page.text)[0]
    return await client.post("/sign-in", data={"csrf": csrf, "login": login,
                                               "password": password})  # fmt: skip


def message(r: httpx.Response) -> str:
    return r.text.split('class="error"', 1)[-1].split(">", 1)[-1].split("<", 1)[0]


async def test_guessing_one_logins_password_from_many_addresses_is_throttled(
    world: World,  # noqa: F811
    clients: Clients,
    clock: Clock,
    figures: Figures,
) -> None:
    victim = "taff-member"
    for n in range(accounts.MAX_FAILURES):
        r = await sign_in(clients.at(f"198.51.100.{100 + n}"), victim, f"guess number {n}")
        assert r.status_code == 401, r.text[:300]
    fresh = clients.at("198.51.100.199")  # an address that never failed
    r = await sign_in(fresh, victim, PASSWORD)
    assert r.status_code == 429, r.text[:300]  # even the right password
    other = await sign_in(clients.at("198.51.100.198"), "taff-coordinator", PASSWORD)
    assert other.status_code == 303  # other logins are not held up
    clock.advance(accounts.WINDOW_SECONDS)  # the window counts the failures at its start
    assert (await sign_in(fresh, victim, PASSWORD)).status_code == 429
    clock.advance(1)  # all of them over 15 minutes old
    assert (await sign_in(fresh, victim, PASSWORD)).status_code == 303
    figures(addresses=accounts.MAX_FAILURES, failures_before_429=accounts.MAX_FAILURES,
            window_s=accounts.WINDOW_SECONDS)  # fmt: skip


async def test_guessing_many_logins_from_one_address_is_throttled(
    world: World,  # noqa: F811
    clients: Clients,
    figures: Figures,
) -> None:
    attacker = clients.at("198.51.100.50")
    logins = ["taff-coordinator", "nobody-here", "taff-commissioner", "m2m-member", "no-such-one"]
    seen = set()
    for login in logins[: accounts.MAX_FAILURES]:
        r = await sign_in(attacker, login, "Summer2026!")
        assert r.status_code == 401, r.text[:300]
        seen.add(message(r))
    assert len(seen) == 1, seen  # an unknown login reads exactly like a wrong password
    r = await sign_in(attacker, "taff-m2", PASSWORD)
    assert r.status_code == 429, r.text[:300]  # from this address, even a right password
    r = await sign_in(clients.at("198.51.100.51"), "taff-m2", PASSWORD)
    assert r.status_code == 303  # the login itself is not locked
    figures(logins_tried=len(logins), failures_before_429=accounts.MAX_FAILURES)


# ---- tokens: expiry and revocation ----------------------------------------------------------


async def make_token(c: httpx.AsyncClient, w: World, body: dict[str, Any],
                     key: str | None = None) -> httpx.Response:  # fmt: skip
    """A taff token made by its scheme admin (the deployment admin makes only the first)."""
    headers = w.as_("taff", "scheme-admin") | ({"Idempotency-Key": key} if key else {})
    return await c.post(f"{V1}/schemes/taff/tokens", json=body, headers=headers)


async def test_an_expiring_token_works_until_its_expiry_then_is_refused_on_every_route(
    app: Starlette,  # noqa: F811
    app_client: httpx.AsyncClient,  # noqa: F811
    world: World,  # noqa: F811
    clock: Clock,
    figures: Figures,
) -> None:
    expires = from_us(clock()) + timedelta(hours=1)
    r = await make_token(app_client, world, {"role": "scheme-admin", "member": "A1",
                                             "expires": expires.isoformat()})  # fmt: skip
    assert r.status_code == 201, r.text
    assert r.json()["expires"] == expires.isoformat()
    token = bearer(r.json()["token"])
    listed = await app_client.get(f"{V1}/schemes/taff/tokens", headers=world.admin)
    assert [t["expires"] for t in listed.json()["items"] if t["id"] == r.json()["id"]] == [
        expires.isoformat()
    ]
    clock.advance(3599)
    assert (await app_client.get(f"{V1}/me", headers=token)).status_code == 200
    clock.advance(1)
    wrong = []
    many = _each_from_its_own_address(app)
    for method, url in every_route():
        got = await many.request(method, url, headers=token)
        if got.status_code != 401 or got.json().get("detail") != "the token has expired":
            wrong.append(f"  {method} {url}: {got.status_code} {got.text[:120]}")
    await many.aclose()
    figures(valid_s=3600, routes_refused_after=len(ENDPOINTS))
    assert not wrong, "\n" + "\n".join(wrong)


def _each_from_its_own_address(asgi: Starlette) -> httpx.AsyncClient:
    from tests.api.test_authorization import EachFromAnAddressOfItsOwn

    return httpx.AsyncClient(transport=EachFromAnAddressOfItsOwn(asgi), base_url="http://tb.test")


async def test_a_token_cannot_be_made_already_expired_or_its_expiry_changed_by_a_retry(
    app_client: httpx.AsyncClient,  # noqa: F811
    world: World,  # noqa: F811
    clock: Clock,
) -> None:
    now = from_us(clock())
    body = {"role": "commissioner"}
    for when in (now, now - timedelta(days=1)):
        r = await make_token(app_client, world, body | {"expires": when.isoformat()})
        assert (r.status_code, r.json().get("field")) == (422, "expires"), r.text
    naive = (now + timedelta(days=1)).replace(tzinfo=None).isoformat()
    r = await make_token(app_client, world, body | {"expires": naive})
    assert r.status_code == 422, r.text  # a time without its offset is ambiguous
    later = (now + timedelta(days=30)).isoformat()
    r = await make_token(app_client, world, body | {"expires": later}, key="k1")
    assert r.status_code == 201 and r.json()["token"], r.text
    r = await make_token(app_client, world, body | {"expires": None}, key="k1")
    assert r.status_code == 409, r.text  # the same key cannot make it last for ever
    r = await make_token(app_client, world, body)
    assert r.status_code == 201 and r.json()["expires"] is None  # by default: until revoked


async def test_a_revocation_made_by_another_process_is_seen_within_the_cache_time(
    app_client: httpx.AsyncClient,  # noqa: F811
    world: World,  # noqa: F811
    db_url: str,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
    figures: Figures,
) -> None:
    """The process that revokes refuses the token at once (tests/api/test_authorization.py);
    another process's cache may answer for it until its entry is CACHE_SECONDS old (30 s,
    shortened here to 0.5 s), and not a moment longer."""
    documented = token_book.CACHE_SECONDS
    monkeypatch.setattr(token_book, "CACHE_SECONDS", 0.5)
    r = await make_token(app_client, world, {"role": "commissioner", "label": "lost tablet"})
    token, token_id = bearer(r.json()["token"]), r.json()["id"]
    before = time.monotonic()  # the entry is made after this...
    assert (await app_client.get(f"{V1}/me", headers=token)).status_code == 200  # now cached
    cached = time.monotonic()  # ...and before this
    other = await TokenBook.open(db_url, clock)  # another service process on the database
    try:
        await other.revoke(token_id)
        with pytest.raises(Unauthenticated, match="unknown or revoked"):
            await other.authenticate(token["Authorization"], "198.51.100.60")
    finally:
        await other.close()
    answered = 0
    while True:
        sent = time.monotonic()
        if (await app_client.get(f"{V1}/me", headers=token)).status_code != 200:
            break
        answered += 1
        assert sent < cached + 0.5, "served from the cache after its time"
        await asyncio.sleep(0.02)
    refused_after = time.monotonic() - before
    figures(cache_seconds=documented, cache_seconds_in_test=0.5,
            refused_after_s=round(refused_after, 3), served_from_cache=answered)  # fmt: skip
    assert refused_after >= 0.5  # not before the entry's time was up


# ---- sessions: expiry and revocation -------------------------------------------------------


async def test_a_session_ends_after_two_idle_hours(
    world: World,  # noqa: F811
    browser: Browser,  # noqa: F811
    clock: Clock,
    figures: Figures,
) -> None:
    pages = await browser("taff-member")
    for _ in range(3):  # a request every 2 hours less a second keeps it alive
        clock.advance(accounts.IDLE_SECONDS - 1)
        assert (await pages.client.get("/s/taff/me")).status_code == 200
    clock.advance(accounts.IDLE_SECONDS)
    r = await pages.client.get("/s/taff/me")
    assert r.status_code == 303 and r.headers["location"].startswith("/sign-in?next=")
    figures(idle_s=accounts.IDLE_SECONDS)


async def test_a_session_ends_twelve_hours_after_sign_in_however_busy(
    world: World,  # noqa: F811
    browser: Browser,  # noqa: F811
    clock: Clock,
    figures: Figures,
) -> None:
    pages = await browser("taff-coordinator")
    used = 0
    while used + 3600 < accounts.SESSION_SECONDS:
        clock.advance(3600)
        used += 3600
        assert (await pages.client.get("/s/taff/coordinate")).status_code == 200, used
    clock.advance(accounts.SESSION_SECONDS - used - 1)
    assert (await pages.client.get("/s/taff/coordinate")).status_code == 200
    clock.advance(1)
    r = await pages.client.get("/s/taff/coordinate")
    assert r.status_code == 303 and r.headers["location"].startswith("/sign-in?next=")
    figures(session_s=accounts.SESSION_SECONDS, hourly_requests=used // 3600)


async def test_a_stolen_session_cookie_is_worthless_once_the_session_is_ended(
    app: Starlette,  # noqa: F811
    app_client: httpx.AsyncClient,  # noqa: F811
    world: World,  # noqa: F811
    browser: Browser,  # noqa: F811
    db_url: str,
    clock: Clock,
    figures: Figures,
) -> None:
    """An attacker who copied the cookie (and a page's CSRF token) replays them from a browser
    of their own after each way a session ends: refused, on pages and on forms."""

    async def stolen(login: str) -> tuple[str, str]:
        victim = await browser(login)
        page = await victim.get("/sign-in", status=303)  # signed in: sent home
        page = await victim.get(page.headers["location"])
        return victim.client.cookies["tb_session"], _CSRF.findall(page.text)[0]

    async def replay(cookie: str, csrf: str, home: str) -> list[str]:
        thief = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                  base_url="http://tb.test",
                                  cookies={"tb_session": cookie})  # fmt: skip
        try:
            got = []
            r = await thief.get(home)
            if r.status_code != 303 or not r.headers["location"].startswith("/sign-in?"):
                got.append(f"GET {home}: {r.status_code}")
            r = await thief.post("/sign-out", data={"csrf": csrf})
            if r.status_code != 401:
                got.append(f"POST /sign-out: {r.status_code}")
            return got
        finally:
            await thief.aclose()

    book = await AccountBook.open(db_url, clock)
    wrong: dict[str, list[str]] = {}
    try:
        # alive: the thief gets in (the control)
        cookie, csrf = await stolen("taff-commissioner")
        assert await replay(cookie, csrf, "/s/taff/commission") != []
        # sign-out
        victim = await browser("taff-member")
        cookie = victim.client.cookies["tb_session"]
        me = await victim.get("/s/taff/me")
        await victim.submit("/sign-out", {}, form_page="/s/taff/me")
        wrong["sign-out"] = await replay(cookie, _CSRF.findall(me.text)[0], "/s/taff/me")
        # a password change
        cookie, csrf = await stolen("taff-coordinator")
        await book.set_password("taff-coordinator", "a new password, long")
        wrong["password change"] = await replay(cookie, csrf, "/s/taff/coordinate")
        # the account disabled (a leaver)
        cookie, csrf = await stolen("taff-partner-staff")
        await book.disable("taff-partner-staff")
        wrong["disabled"] = await replay(cookie, csrf, "/s/taff/till")
        # the member erased (by a coordinator, through the API)
        cookie, csrf = await stolen("taff-m2")
        r = await app_client.post(f"{V1}/schemes/taff/members/M2/erase",
                                  headers=world.as_("taff", "coordinator"))  # fmt: skip
        assert r.status_code == 200, r.text
        wrong["erased"] = await replay(cookie, csrf, "/s/taff/me")
    finally:
        await book.close()
    figures(endings=sorted(wrong))
    assert not any(wrong.values()), wrong
