"""Hot statements compiled once per dialect and run on the driver's own cursor.

SQLAlchemy Core spends about 8 µs a statement building an execution context and a result
object; the writer thread runs a dozen statements per claim, serially, so that is what limits
throughput. A `Prepared` keeps the Core statement (so the SQL is still written once, in Core,
for every dialect), compiles it the first time a dialect is seen, and then hands the SQL
string and the parameters straight to the DBAPI cursor of the connection's transaction.

What is skipped is type processing: rows come back as the driver gives them (on SQLite a
Boolean is 0 or 1, a LargeBinary is bytes), so callers convert with bool() where they read a
Boolean. Statements with expanding IN parameters are not supported: they are compiled per
call anyway.
"""

from __future__ import annotations

import operator
from collections import namedtuple
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement


class Prepared:
    """A Core statement run without Core's per-execution machinery."""

    def __init__(self, stmt: ClauseElement) -> None:
        self._stmt = stmt
        # by dialect and driver: asyncpg ($1) and psycopg (%(name)s) are both "postgresql"
        self._by_dialect: dict[tuple[str, str], tuple[str, Callable[[Any], Any], Any]] = {}

    def _compile(self, dialect: Dialect) -> tuple[str, Callable[[Any], Any], Any]:
        found = self._by_dialect.get((dialect.name, dialect.driver))
        if found is None:
            compiled = self._stmt.compile(dialect=dialect)
            assert isinstance(compiled, SQLCompiler)
            literal = [name for name, b in compiled.binds.items() if b.value is not None]
            assert not literal, f"only named bindparams, not literals: {literal}"
            order = tuple(getattr(compiled, "positiontup", None) or ())
            # positional (SQLite's qmark): a tuple in the SQL's order; named: the dict itself
            pick = _picker(order) if dialect.positional else dict
            columns = getattr(self._stmt, "selected_columns", None)
            names = [c.key for c in columns] if columns is not None else []
            row = namedtuple("Row", names, rename=True) if names else None
            found = self._by_dialect[dialect.name, dialect.driver] = (compiled.string, pick, row)
        return found

    def run(self, conn: Connection, params: dict[str, Any] | None = None) -> Any:
        """Execute once; the driver's cursor (for rowcount), or rows via first()/all()."""
        _autobegin(conn)
        sql, pick, _row = self._compile(conn.dialect)
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cursor.execute(sql, pick(params or {}))
        return cursor

    def first(self, conn: Connection, params: dict[str, Any] | None = None) -> Any:
        """The first row as a named tuple, or None."""
        found = self.run(conn, params).fetchone()
        return None if found is None else self._compile(conn.dialect)[2]._make(found)

    def all(self, conn: Connection, params: dict[str, Any] | None = None) -> list[Any]:
        """Every row, as named tuples."""
        make = self._compile(conn.dialect)[2]._make
        return [make(r) for r in self.run(conn, params).fetchall()]

    def many(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        """executemany: one statement, many parameter sets (inserts, updates)."""
        if not rows:
            return
        _autobegin(conn)
        sql, pick, _row = self._compile(conn.dialect)
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cursor.executemany(sql, [pick(r) for r in rows])


def _autobegin(conn: Connection) -> None:
    """Begin a transaction if none is open, as Core's execute does: a statement never runs
    outside one (it ends with the caller's, or is rolled back when the connection closes)."""
    if not conn.in_transaction():
        conn.begin()


def raw(conn: Connection, sql: str) -> None:
    """A parameterless statement (SAVEPOINT and the like) on the driver's cursor."""
    conn.connection.dbapi_connection.cursor().execute(sql)  # type: ignore[union-attr]


def _picker(order: tuple[str, ...]) -> Callable[[Any], Any]:
    if not order:
        return lambda _params: ()
    get = operator.itemgetter(*order)
    if len(order) == 1:
        return lambda params: (get(params),)
    return get
