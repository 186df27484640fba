"""The API under test: the real ASGI app on a real SQLite file, driven over HTTP by httpx."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from starlette.applications import Starlette

from ledger import verify_database
from ledger.storage import sqlite_url
from main.asgi import Config, create_app
from tests.conftest import SERVER_URL, Clock, started

if TYPE_CHECKING:
    from tests.api.world import World

ADMIN = "admin-bootstrap-secret"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "api.db"


@pytest.fixture
async def app(db_url: str, tmp_path: Path, clock: Clock) -> AsyncIterator[Starlette]:
    """The app, started, on a SQLite file (or the test server's database); on leaving, the
    ledger must verify."""
    config = Config(
        url=db_url, key_dir=tmp_path / "keys", bootstrap_admin=ADMIN,
        schedule_seconds=0, clock=clock,
    )  # fmt: skip
    async with started(create_app(config)) as running:
        yield running
    read = db_url if SERVER_URL else sqlite_url(str(tmp_path / "api.db"), read_only=True)
    report = await verify_database(read)
    assert report.ok, report.summary()


@pytest.fixture
async def app_client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app over HTTP (httpx's ASGI transport)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tb.test") as client:
        yield client


@pytest.fixture
async def world(app_client: httpx.AsyncClient) -> World:
    """Two schemes with a token for every role (see tests/api/world.py)."""
    from tests.api.world import build

    return await build(app_client)
