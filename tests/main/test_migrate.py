"""Schema migrations on both backends: from an empty database to the newest schema (which then
matches the code's tables exactly), and from an earlier release's database, made by the service
itself before migrations existed."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect
from sqlalchemy.exc import DBAPIError

from ledger import KeyRing, LedgerStore, verify_database
from ledger.storage import to_sync_url
from main.asgi import Config, create_app
from main.migrate import METADATA, current, head, migrate
from tests.conftest import started

pytestmark = pytest.mark.both_backends


def _differences(url: str) -> list[object]:
    engine = create_engine(to_sync_url(url))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn)
            return list(compare_metadata(context, METADATA))  # type: ignore[arg-type]  # a list works (as env.py gives it)
    finally:
        engine.dispose()


def _indexes(url: str, table: str) -> set[str]:
    engine = create_engine(to_sync_url(url))
    try:
        with engine.connect() as conn:
            return {str(i["name"]) for i in inspect(conn).get_indexes(table)}
    finally:
        engine.dispose()


async def _serve_once(url: str, keys: Path) -> None:
    """Start and stop the whole app on `url`: what a service process does to a database."""
    app = create_app(Config(url=url, key_dir=keys, schedule_seconds=0))
    async with started(app):
        pass


def test_an_empty_database_migrates_to_the_code_s_exact_schema(db_url: str) -> None:
    assert current(db_url) is None
    before, after = migrate(db_url)
    assert (before, after) == (None, head())
    assert _differences(db_url) == []
    assert "tb_claims_for_reports" in _indexes(db_url, "tb_claims")


async def test_the_migrated_ledger_is_append_only_and_works(db_url: str, tmp_path: Path) -> None:
    migrate(db_url)
    await _serve_once(db_url, tmp_path / "keys")  # the service starts on it as it is
    async with await LedgerStore.open(db_url, KeyRing(tmp_path / "keys")) as store:
        await store.create_ledger("l", idempotency_key="c")
        await store.open_account("l", "bank", kind="issuance", floor=None, idempotency_key="b")
        await store.open_account("l", "ann", kind="member", floor=0, idempotency_key="a")
        await store.transfer("l", [("bank", -60), ("ann", 60)], idempotency_key="t")
    engine = create_engine(to_sync_url(db_url))
    try:
        with engine.connect() as conn, pytest.raises(DBAPIError, match="append-only"):
            conn.exec_driver_sql("DELETE FROM entries")
    finally:
        engine.dispose()
    assert (await verify_database(db_url)).ok


async def test_a_database_the_service_made_is_stamped_then_upgraded(
    db_url: str, tmp_path: Path
) -> None:
    await _serve_once(db_url, tmp_path / "keys")
    engine = create_engine(to_sync_url(db_url))
    try:  # as the release before the reports' index
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP INDEX tb_claims_for_reports")
    finally:
        engine.dispose()
    assert "tb_claims_for_reports" not in _indexes(db_url, "tb_claims")
    assert migrate(db_url) == (None, head())
    assert "tb_claims_for_reports" in _indexes(db_url, "tb_claims")
    assert _differences(db_url) == []
    assert migrate(db_url) == (head(), head())  # again: nothing to do


def test_a_migration_steps_down_and_up_again(db_url: str) -> None:
    migrate(db_url)
    assert migrate(db_url, "0001") == (head(), "0001")
    assert "tb_claims_for_reports" not in _indexes(db_url, "tb_claims")
    assert migrate(db_url) == ("0001", head())
    assert _differences(db_url) == []
