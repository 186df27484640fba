"""Shared fixtures: a real SQLite file and key directory per test, and a controllable clock."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from hypothesis import settings
from sqlalchemy import create_engine, make_url
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from ledger import KeyRing, LedgerStore
from ledger.storage import sqlite_url
from web import accounts

# Cheap Argon2 in the tests' own process only (a web test's world makes a dozen accounts, at
# about 0.15 s each with argon2-cffi's defaults): a hash names its own parameters, so the app
# verifies either kind. The service, `timebank serve` in the subprocess tests and the demo keep
# the defaults; tests/web/test_signin.py checks what a stored hash is made of.
accounts._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)

# CI explores a fixed set of examples so a run is repeatable; a developer's run explores anew.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


class Clock:
    """Microseconds since the epoch, moved by the test; starts at 2026-01-01T00:00:00Z."""

    def __init__(self) -> None:
        self.now_us = 1_767_225_600_000_000

    def __call__(self) -> int:
        return self.now_us

    def advance(self, seconds: float) -> None:
        self.now_us += int(seconds * 1_000_000)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.db"


@pytest.fixture
def key_dir(tmp_path: Path) -> Path:
    return tmp_path / "keys"


# A PostgreSQL server to run the tests on instead of SQLite files (scripts/test-postgres sets it):
# each test gets a database of its own there, dropped afterwards.
SERVER_URL = os.environ.get("TIMEBANK_TEST_DATABASE_URL", "")


@contextmanager
def server_database(template: str | None = None) -> Iterator[str]:
    """A new database on the test server (a copy of `template`'s, if given), dropped on leaving:
    its URL. For the `db_url` fixture, and for fixtures wider than one test."""
    from ledger.storage import to_sync_url

    assert SERVER_URL, "no test server"
    name = f"t_{uuid.uuid4().hex[:16]}"
    like = f' TEMPLATE "{make_url(template).database}"' if template else ""
    admin = create_engine(to_sync_url(SERVER_URL), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"{like}')
        try:
            yield make_url(SERVER_URL).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


@pytest.fixture
def db_url(db_path: Path) -> Iterator[str]:
    """The test's database: a fresh SQLite file, or a fresh database on the test server."""
    if not SERVER_URL:
        yield sqlite_url(str(db_path))
        return
    with server_database() as url:
        yield url


@pytest.fixture
async def store(db_url: str, key_dir: Path, clock: Clock) -> AsyncIterator[LedgerStore]:
    s = await LedgerStore.open(db_url, KeyRing(key_dir), clock=clock)
    try:
        yield s
    finally:
        await s.close()


def count_rows(url: str, queries: dict[str, str]) -> dict[str, list[tuple[Any, ...]]]:
    """Run each read-only SQL query on `url` (SQLite file or server) and give its rows: for
    tests that look at what is stored, on either backend."""
    from ledger.storage import to_sync_url

    engine = create_engine(to_sync_url(url))
    try:
        with engine.connect() as conn:
            return {
                name: [tuple(r) for r in conn.exec_driver_sql(sql)] for name, sql in queries.items()
            }
    finally:
        engine.dispose()


# What a refusal itself writes: a failed authentication is counted (identity.tokens), on purpose.
REFUSALS_LOG = {"api_auth_failures"}


def snapshot(url: str) -> dict[str, list[str]]:
    """Every row of every table of a database (SQLite file or server), but `REFUSALS_LOG`: to
    show that a refused request changed nothing."""
    from sqlalchemy import inspect

    from ledger.storage import to_sync_url

    engine = create_engine(to_sync_url(url))
    try:
        with engine.connect() as conn:
            names = set(inspect(conn).get_table_names()) - REFUSALS_LOG
            return {n: sorted(repr(tuple(r)) for r in conn.exec_driver_sql(f'SELECT * FROM "{n}"'))
                    for n in names}  # fmt: skip
    finally:
        engine.dispose()


# Every test that uses a database must run on both backends (or be PostgreSQL's own): a test
# reaching one through these fixtures, directly or through another fixture, without a marker
# is a collection error, so a new SQLite-only test cannot slip in unnoticed.
DATABASE_FIXTURES = {"db_url", "db_path", "store"}
BACKEND_MARKERS = {"both_backends", "postgres_only"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    unmarked = sorted({
        item.nodeid.split("::")[0] for item in items
        if DATABASE_FIXTURES & set(getattr(item, "fixturenames", ()))
        and not BACKEND_MARKERS & {m.name for m in item.iter_markers()}
    })  # fmt: skip
    if unmarked:
        raise pytest.UsageError(
            "tests using a database but not marked both_backends (or postgres_only): "
            + ", ".join(unmarked)
        )


class _LifespanState:
    """What a server does with the state an app's lifespan yields (uvicorn does; httpx's ASGI
    transport does not): a copy in each request's scope, where `request.state` reads it."""

    def __init__(self, app: ASGIApp, state: dict[str, Any]) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope["state"] = dict(self.state)  # in place, as uvicorn: outer middleware see it too
        await self.app(scope, receive, send)


@asynccontextmanager
async def started(app: Starlette) -> AsyncIterator[Starlette]:
    """`app` started as a server starts it (its lifespan run, its state given to each request),
    for httpx's ASGI transport; stopped on leaving."""
    async with app.router.lifespan_context(app) as state:
        app.add_middleware(_LifespanState, state=dict(state or {}))
        yield app
