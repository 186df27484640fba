"""The app's pages under test: the real ASGI app on a real SQLite file, over HTTP (httpx), with
the API tests' world (tests/api/world.py) and a sign-in account for every role in it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from starlette.applications import Starlette

from identity.auth import ApiRole
from tests.api.conftest import app, app_client, db_path  # noqa: F401  (fixtures)
from tests.api.world import ROLES, SCHEMES, World, build
from tests.conftest import Clock
from web.book import AccountBook

PASSWORD = "correct horse battery"
MEMBER_OF = {"scheme-admin": "A1", "coordinator": "C1", "member": "M1"}
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_KEY = re.compile(r'name="key" value="([^"]+)"')


def login_of(scheme: str, role: str) -> str:
    """The account for `role` in `scheme` (`<scheme>-<role>`; `<scheme>-m2` is member M2)."""
    return f"{scheme}-{role}"


@pytest.fixture
async def world(app_client: httpx.AsyncClient, db_url: str, clock: Clock) -> World:  # noqa: F811
    """The API tests' world, plus an account (password `PASSWORD`) for every role in it."""
    w = await build(app_client)
    book = await AccountBook.open(db_url, clock)
    try:
        for scheme in SCHEMES:
            for role in ROLES:
                partner = f"p-{scheme}" if role == "partner-staff" else None
                await book.create(login_of(scheme, role), PASSWORD, ApiRole(role), scheme,
                                  member=MEMBER_OF.get(role), partner=partner)  # fmt: skip
            await book.create(f"{scheme}-m2", PASSWORD, ApiRole.MEMBER, scheme, member="M2")
    finally:
        await book.close()
    return w


class Pages:
    """One browser's worth of cookies: get pages, and post their forms with the CSRF token
    and idempotency key the page gave out."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def get(self, path: str, status: int = 200) -> httpx.Response:
        r = await self.client.get(path)
        assert r.status_code == status, (r.status_code, r.text[:2000])
        return r

    async def submit(
        self, path: str, data: dict[str, str | list[str]], *, form_page: str | None = None,
        files: dict[str, tuple[str, bytes, str]] | None = None, status: int | None = None,
    ) -> httpx.Response:  # fmt: skip
        """Open `form_page` (default: `path`), then post `data` to `path` with its tokens.
        Follows a redirect; `status` checks the final status (default: below 400)."""
        page = await self.get(form_page or path)
        fields: dict[str, str | list[str]] = {"csrf": _CSRF.findall(page.text)[0]}
        keys = _KEY.findall(page.text)
        if keys:
            fields["key"] = keys[0]
        r = await self.client.post(path, data=fields | data, files=files)
        if r.status_code == 303:
            r = await self.client.get(r.headers["location"])
        if status is None:
            assert r.status_code < 400, (r.status_code, r.text[:2000])
        else:
            assert r.status_code == status, (r.status_code, r.text[:2000])
        return r

    async def sign_in(self, login: str, password: str = PASSWORD) -> httpx.Response:
        """Sign in; the response is the redirect to the role's home page (not followed)."""
        page = await self.get("/sign-in")
        data = {"csrf": _CSRF.findall(page.text)[0], "login": login, "password": password}
        r = await self.client.post("/sign-in", data=data)
        assert r.status_code == 303, (r.status_code, r.text[:2000])
        return r


@pytest.fixture
async def browser(app: Starlette) -> AsyncIterator[Callable[[str], Awaitable[Pages]]]:  # noqa: F811
    """`await browser(login)`: a fresh cookie jar, signed in as `login` ("" for none)."""
    clients: list[httpx.AsyncClient] = []

    async def open_as(login: str) -> Pages:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                   base_url="http://tb.test")  # fmt: skip
        clients.append(client)
        pages = Pages(client)
        if login:
            await pages.sign_in(login)
        return pages

    yield open_as
    for client in clients:
        await client.aclose()
