"""What the command groups share: the database options, the settings, a store or snapshot opened."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, NamedTuple

from sqlalchemy.ext.asyncio import AsyncConnection

from ledger import KeyRing, LedgerStore, Report, list_ledgers, make_engine, sqlite_url
from main.settings import Settings

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]

Handler = Callable[[argparse.Namespace], int]
AsyncHandler = Callable[[argparse.Namespace, Settings], Awaitable[int]]


class UsageError(Exception):
    """A command that cannot run as asked (exit 2)."""


class Command(NamedTuple):
    """A subcommand: what adds its parser to `timebank`'s, and what runs it."""

    add_parser: Callable[[Subparsers], None]
    run: Handler


def db_args(p: argparse.ArgumentParser, keys: bool = False) -> None:
    p.add_argument(
        "--db",
        help="SQLite file or database URL (default: $TIMEBANK_DATABASE_URL, $TIMEBANK_DB, "
        "timebank.db)",
    )
    if keys:
        p.add_argument("--keys", help="key directory (default: $TIMEBANK_KEY_DIR or <db>.keys)")


def in_loop(handler: AsyncHandler, *, db: bool = True) -> Handler:
    """An async command as a handler run in an event loop, given the settings (--db, --keys or
    the environment); with `db`, a database that must exist unless the command reads a bundle
    (or is one of those that make it, CREATES)."""

    def run(args: argparse.Namespace) -> int:
        return asyncio.run(_start(handler, args, db))

    return run


async def _start(handler: AsyncHandler, args: argparse.Namespace, db: bool) -> int:
    settings = Settings.from_env(getattr(args, "db", None), getattr(args, "keys", None))
    if db and getattr(args, "bundle", None) is None:
        existing(settings, args.command)
    return await handler(args, settings)


# The commands that may make a database where there is none; every other one refuses a missing
# SQLite file rather than quietly making an empty one under a mistyped name. (`serve` makes its
# tables on a deployment's first start, as `init` does.)
CREATES = ("init", "demo", "serve")


def existing(settings: Settings, command: str) -> Settings:
    if settings.is_sqlite:
        if settings.db_path.is_dir():
            raise UsageError(f"{settings.db_path} is a directory, not a database file")
        if command not in CREATES and not settings.db_path.exists():
            raise UsageError(f"no database at {settings.db_path} (timebank init makes one)")
    return settings


def read_url(settings: Settings) -> str:
    """The URL reads open: a SQLite file read-only; a server database is read in a read-only
    transaction."""
    if settings.is_sqlite:
        return sqlite_url(str(settings.db_path), read_only=True)
    return settings.url


def shown(url: str) -> str:
    """A database URL as it may be printed: never its password."""
    from sqlalchemy import make_url

    return make_url(url).render_as_string(hide_password=True)


async def read_snapshot(
    settings: Settings,
    wanted: list[str] | None,
    noun: str,
    read: Callable[[AsyncConnection], Awaitable[int]],
) -> int:
    """export-log, export-journal and keys: `read` one snapshot of the database, opened
    read-only, once every `wanted` ledger (a `noun`) is known to be there."""
    db = str(settings.db_path) if settings.is_sqlite else shown(settings.url)
    engine = make_engine(read_url(settings), read_only=True)
    try:
        async with engine.connect() as conn, conn.begin():
            unknown = sorted(set(wanted or []) - set(await conn.run_sync(list_ledgers)))
            if unknown:
                raise UsageError(f"no {noun} {', '.join(map(repr, unknown))} in {db}")
            return await read(conn)
    finally:
        await engine.dispose()


StoreHandler = Callable[[argparse.Namespace, LedgerStore, list[str]], Awaitable[int]]


def with_store(handler: StoreHandler) -> AsyncHandler:
    """The commands that write (checkpoint, expire, rotate-key) or build proofs (receipt) or
    reports: `handler` given the store opened, its ledgers, and --ledger (if any) among them."""

    async def run(args: argparse.Namespace, settings: Settings) -> int:
        store = await LedgerStore.open(settings.url, KeyRing.from_env(settings.key_dir))
        try:
            ledgers = await store.ledgers()
            named: str = getattr(args, "ledger", None) or ""
            if named and named not in ledgers:
                raise UsageError(f"no ledger {named!r}")
            return await handler(args, store, ledgers)
        finally:
            await store.close()

    return run


def print_report(report: Report) -> int:
    if report.ok:
        print(report.summary())
        return 0
    print(report.summary(), file=sys.stderr)
    return 1
