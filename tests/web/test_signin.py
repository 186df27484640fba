"""Signing in and out, sessions, CSRF, throttling and the language switch."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Awaitable, Callable

import pytest

from tests.api.world import World
from tests.conftest import Clock
from tests.web.conftest import Pages
from web.book import AccountBook

pytestmark = pytest.mark.both_backends

Browser = Callable[[str], Awaitable[Pages]]


async def test_a_member_signs_in_and_lands_on_their_balance(world: World, browser: Browser) -> None:
    pages = await browser("")
    r = await pages.sign_in("taff-member")
    assert r.headers["location"] == "/s/taff/me"
    assert "M1 of taff" in (await pages.get("/s/taff/me")).text


async def test_the_session_cookie_is_httponly_and_samesite(world: World, browser: Browser) -> None:
    pages = await browser("")
    page = await pages.get("/sign-in")
    csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
    r = await pages.client.post("/sign-in", data={"csrf": csrf, "login": "taff-member",
                                                  "password": "correct horse battery"})  # fmt: skip
    cookie = r.headers["set-cookie"]
    assert r.status_code == 303 and "tb_session=" in cookie
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie


async def test_a_wrong_password_is_refused_naming_the_field(world: World, browser: Browser) -> None:
    pages = await browser("")
    r = await pages.submit("/sign-in", {"login": "taff-member", "password": "nope nope nope"},
                           status=401)  # fmt: skip
    assert 'id="e-password"' in r.text and 'aria-invalid="true"' in r.text


async def test_sign_in_is_throttled_after_five_failures(world: World, browser: Browser) -> None:
    pages = await browser("")
    for _ in range(5):
        await pages.submit("/sign-in", {"login": "taff-member", "password": "wrong guess 1"},
                           status=401)  # fmt: skip
    # now even the right password is refused for the rest of the window
    await pages.submit("/sign-in", {"login": "taff-member", "password": "correct horse battery"},
                       status=429)  # fmt: skip


async def test_a_form_without_its_csrf_token_is_refused(world: World, browser: Browser) -> None:
    pages = await browser("taff-member")
    r = await pages.client.post("/sign-out", data={"csrf": "forged"})
    assert r.status_code == 403
    assert (await pages.get("/s/taff/me")).status_code == 200  # still signed in


async def test_a_form_from_another_origin_is_refused(world: World, browser: Browser) -> None:
    pages = await browser("taff-member")
    page = await pages.get("/s/taff/me")
    csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
    r = await pages.client.post("/sign-out", data={"csrf": csrf},
                                headers={"origin": "https://evil.example"})  # fmt: skip
    assert r.status_code == 403


async def test_signing_out_ends_the_session(world: World, browser: Browser) -> None:
    pages = await browser("taff-member")
    await pages.submit("/sign-out", {}, form_page="/s/taff/me")
    r = await pages.client.get("/s/taff/me")
    assert r.status_code == 303 and r.headers["location"].startswith("/sign-in?next=")


async def test_another_schemes_pages_are_not_found(world: World, browser: Browser) -> None:
    pages = await browser("taff-member")
    await pages.get("/s/m2m/me", status=404)


async def test_a_page_for_another_role_is_forbidden(world: World, browser: Browser) -> None:
    pages = await browser("taff-partner-staff")
    await pages.get("/s/taff/me", status=403)


async def test_welsh_is_chosen_by_the_browser_or_the_switch(world: World, browser: Browser) -> None:
    pages = await browser("")
    r = await pages.client.get("/sign-in", headers={"accept-language": "cy-GB,cy;q=0.9,en;q=0.5"})
    assert '<html lang="cy">' in r.text
    r = await pages.client.get("/sign-in")
    assert '<html lang="en">' in r.text
    await pages.submit("/language", {"lang": "cy", "next": "/sign-in"}, form_page="/sign-in")
    r = await pages.client.get("/sign-in")
    assert '<html lang="cy">' in r.text


async def test_every_response_carries_the_security_headers(world: World, browser: Browser) -> None:
    pages = await browser("")
    for path in ("/sign-in", "/api/v1/health", "/s/taff/ledger", "/static/app.css"):
        r = await pages.client.get(path)
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert r.headers["x-frame-options"] == "DENY", path
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"], path


async def test_the_public_ledger_page_shows_its_checkpoint(world: World, browser: Browser) -> None:
    pages = await browser("")
    r = await pages.get("/s/taff/ledger")
    assert "Public ledger" in r.text and "Public keys" in r.text
    await pages.get("/s/nowhere/ledger", status=404)


async def test_old_sessions_failed_sign_ins_and_jobs_are_forgotten_on_schedule(
    world: World, browser: Browser, db_url: str, clock: Clock
) -> None:
    """`forget_old` (run by the service's schedule) deletes failed sign-ins past their window,
    jobs (with their downloads) after 7 days and session records after 30, and nothing newer."""
    await browser("taff-member")  # one session
    pages = await browser("")
    await pages.submit(
        "/sign-in", {"login": "taff-member", "password": "wrong guess 1"}, status=401
    )  # fmt: skip  (one failure for the login, one for the address)
    book = await AccountBook.open(db_url, clock)
    try:
        await book.start_job({
            "id": "j1", "login": "taff-coordinator", "scheme": "taff", "kind": "report",
            "state": "done", "done": 1, "total": 1, "message": "", "result": b"Ann Jones,3",
            "media_type": "text/csv", "filename": "r.csv", "created_us": clock(),
        })  # fmt: skip
        assert await book.forget_old() == {"sessions": 0, "failures": 0, "jobs": 0}
        clock.advance(16 * 60)
        assert await book.forget_old() == {"sessions": 0, "failures": 2, "jobs": 0}
        clock.advance(7 * 86400)
        assert await book.forget_old() == {"sessions": 0, "failures": 0, "jobs": 1}
        assert await book.job("j1") is None
        clock.advance(23 * 86400)
        assert await book.forget_old() == {"sessions": 1, "failures": 0, "jobs": 0}
    finally:
        await book.close()


def test_the_service_hashes_passwords_with_argon2id_at_argon2_cffi_s_defaults() -> None:
    """Outside the tests' process (whose hashes are cheap, tests/conftest.py): Argon2id with
    64 MiB, 3 passes and 4 lanes."""
    made = subprocess.run(
        [
            sys.executable,
            "-c",
            "from web.accounts import hash_password; print(hash_password('x' * 12))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert made.stdout.startswith("$argon2id$v=19$m=65536,t=3,p=4$"), made.stdout
