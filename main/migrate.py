"""Schema migrations (Alembic, `main/migrations/`), for SQLite and PostgreSQL alike.

`migrate(url)` brings a database to the newest schema: an empty one from nothing, one at an
earlier release step by step. A database the service made itself before it was ever migrated
(its tables made by `create_all` at startup, no `alembic_version`) is taken to be at the
baseline, 0001, and upgraded from there; every later step is written to be safe on it.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, create_engine, inspect

from identity import storage as identity_storage
from ledger import metadata as ledger_metadata
from ledger import to_sync_url
from partners import storage as partners_storage
from timebank import storage as timebank_storage
from web import storage as web_storage

METADATA: list[MetaData] = [  # every package's tables
    ledger_metadata,
    timebank_storage.metadata,
    partners_storage.metadata,
    identity_storage.metadata,
    web_storage.metadata,
]
SCRIPTS = Path(__file__).parent / "migrations"
BASELINE = "0001"


def _config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPTS))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def head() -> str:
    found = ScriptDirectory.from_config(_config("")).get_current_head()
    assert found is not None
    return found


def current(url: str) -> str | None:
    """The database's revision; None if it was never migrated."""
    engine = create_engine(to_sync_url(url))
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def migrate(url: str, target: str = "head") -> tuple[str | None, str | None]:
    """Upgrade (or, to an earlier `target`, downgrade) the database; (before, after)."""
    cfg = _config(url)
    engine = create_engine(to_sync_url(url))
    try:
        with engine.begin() as conn:
            before = MigrationContext.configure(conn).get_current_revision()
            made_by_service = before is None and inspect(conn).has_table("ledgers")
            cfg.attributes["connection"] = conn
            if made_by_service:
                command.stamp(cfg, BASELINE)
            if target == "head" or _is_ahead(target, before):
                command.upgrade(cfg, target)
            else:
                command.downgrade(cfg, target)
            after = MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
    return before, after


def _is_ahead(target: str, before: str | None) -> bool:
    if before is None:
        return True
    scripts = ScriptDirectory.from_config(_config(""))
    return any(r.revision == before for r in scripts.iterate_revisions(target, "base"))
