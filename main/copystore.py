"""`timebank migrate-store`: copy every table of one database into another (SQLite to
PostgreSQL, or back), row for row, so every hash and signature is kept; then verify the copy.

The source is read in one snapshot (a single read transaction), so a live service may go on
writing while it is copied; what it writes after the snapshot is not in the copy. The target
must be empty: it is migrated to this release's schema first.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Integer, Table, create_engine, func, inspect, select, text
from sqlalchemy.engine import Connection

from ledger import to_sync_url
from main.migrate import METADATA, migrate

BATCH = 5_000


class TargetNotEmpty(Exception):
    pass


def copy_store(
    source: str, target: str, progress: Callable[[str, int], None] | None = None
) -> dict[str, int]:
    """Copy every row; returns the row count per table."""
    migrate(target)
    tables = [t for meta in METADATA for t in meta.sorted_tables]
    src = create_engine(to_sync_url(source))
    dst = create_engine(to_sync_url(target))
    counts: dict[str, int] = {}
    try:
        with src.connect() as read, dst.begin() as write:
            if read.dialect.name == "postgresql":
                read.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            else:
                read.exec_driver_sql("SELECT 1")  # opens the snapshot on SQLite
            for table in tables:
                if write.execute(select(func.count()).select_from(table)).scalar_one():
                    raise TargetNotEmpty(f"the target's {table.name} is not empty")
            present = set(inspect(read).get_table_names())
            for table in tables:
                n = 0
                if table.name not in present:  # an older release's database: none of these
                    counts[table.name] = 0
                    continue
                result = read.execute(select(table)).yield_per(BATCH)
                for rows in result.partitions():
                    write.execute(table.insert(), [dict(r._mapping) for r in rows])
                    n += len(rows)
                counts[table.name] = n
                if progress is not None:
                    progress(table.name, n)
                _reset_sequences(write, table)
    finally:
        src.dispose()
        dst.dispose()
    return counts


def _reset_sequences(conn: Connection, table: Table) -> None:
    """PostgreSQL: an autoincrement key copied with its values must carry on after them."""
    if conn.dialect.name != "postgresql":
        return
    for column in table.primary_key.columns:
        if isinstance(column.type, Integer) and column.autoincrement is True:
            conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', '{column.name}'), "
                    f"COALESCE((SELECT max({column.name}) FROM {table.name}), 0) + 1, false)"
                )
            )
