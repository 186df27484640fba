"""ledger/prepared.py: Core statements run on the driver's cursor, on a real SQLite file (or, on
a server run, a database of the test's own on PostgreSQL: the psycopg driver's named style)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import (
    Boolean,
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    bindparam,
    select,
    update,
)
from sqlalchemy.engine import Engine

from ledger import storage
from ledger.prepared import Prepared, raw
from tests.conftest import SERVER_URL

pytestmark = pytest.mark.both_backends
metadata = MetaData()
things = Table(
    "things",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(40), nullable=False),
    Column("flag", Boolean, nullable=False),
    Column("blob", LargeBinary, nullable=True),
)
INSERT = Prepared(things.insert().values({c.name: bindparam(c.name) for c in things.c}))
BY_NAME = Prepared(select(things).where(things.c.name == bindparam("n")).order_by(things.c.id))
RENAME = Prepared(update(things).where(things.c.id == bindparam("i")).values(name=bindparam("n")))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    made = storage.make_sync_engine(db_url)
    metadata.create_all(made)
    yield made
    made.dispose()


def test_rows_round_trip_with_named_columns(engine: Engine) -> None:
    with engine.begin() as conn:
        INSERT.many(conn, [{"id": 1, "name": "a", "flag": True, "blob": b"\x00\x01"},
                           {"id": 2, "name": "a", "flag": False, "blob": None}])  # fmt: skip
    with engine.begin() as conn:
        rows = BY_NAME.all(conn, {"n": "a"})
        assert [(r.id, bool(r.flag), r.blob) for r in rows] == [
            (1, True, b"\x00\x01"),
            (2, False, None),
        ]
        assert BY_NAME.first(conn, {"n": "nobody"}) is None


def test_updates_report_their_rowcount_and_commit_with_the_transaction(engine: Engine) -> None:
    with engine.begin() as conn:
        INSERT.run(conn, {"id": 1, "name": "a", "flag": True, "blob": None})
        assert RENAME.run(conn, {"i": 1, "n": "b"}).rowcount == 1
        assert RENAME.run(conn, {"i": 99, "n": "b"}).rowcount == 0
    with engine.begin() as conn:
        assert BY_NAME.first(conn, {"n": "b"}).id == 1


def test_a_rolled_back_transaction_takes_prepared_writes_with_it(engine: Engine) -> None:
    with pytest.raises(RuntimeError), engine.begin() as conn:
        INSERT.run(conn, {"id": 1, "name": "a", "flag": True, "blob": None})
        raise RuntimeError("refused")
    with engine.begin() as conn:
        assert BY_NAME.all(conn, {"n": "a"}) == []


def test_a_savepoint_undoes_only_its_own_writes(engine: Engine) -> None:
    with engine.begin() as conn:
        INSERT.run(conn, {"id": 1, "name": "a", "flag": True, "blob": None})
        raw(conn, "SAVEPOINT s")
        INSERT.run(conn, {"id": 2, "name": "a", "flag": True, "blob": None})
        raw(conn, "ROLLBACK TO SAVEPOINT s")
        raw(conn, "RELEASE SAVEPOINT s")
    with engine.begin() as conn:
        assert [r.id for r in BY_NAME.all(conn, {"n": "a"})] == [1]


def test_a_missing_parameter_is_an_error_not_a_null(engine: Engine) -> None:
    # SQLite's positional style picks the values by name (KeyError); psycopg's named style
    # hands the dict to the driver, which refuses the statement itself
    error: type[Exception] = psycopg.ProgrammingError if SERVER_URL else KeyError
    with engine.begin() as conn, pytest.raises(error, match="flag"):
        INSERT.run(conn, {"id": 1, "name": "a"})
    with engine.begin() as conn:
        assert BY_NAME.all(conn, {"n": "a"}) == []


def test_like_core_a_statement_outside_a_transaction_begins_one_that_close_rolls_back(
    engine: Engine,
) -> None:
    with engine.connect() as conn:
        INSERT.run(conn, {"id": 1, "name": "a", "flag": True, "blob": None})
        assert conn.in_transaction()
    with engine.begin() as conn:
        assert BY_NAME.all(conn, {"n": "a"}) == []
    with engine.connect() as conn:
        INSERT.run(conn, {"id": 2, "name": "a", "flag": True, "blob": None})
        conn.commit()
    with engine.connect() as conn:
        assert [r.id for r in BY_NAME.all(conn, {"n": "a"})] == [2]


def test_a_literal_in_the_statement_is_refused_when_first_compiled(engine: Engine) -> None:
    literal = Prepared(select(things).where(things.c.id == 1))
    with engine.begin() as conn, pytest.raises(AssertionError, match="named bindparams"):
        literal.all(conn)
