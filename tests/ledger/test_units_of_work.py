"""A caller's own rows written in the ledger's transaction: `LedgerStore.run` and
`transfer(then=...)`, on a real SQLite file or (on a server run) a PostgreSQL database."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection

from ledger import Entry, FloorBreached, InvalidRequest, LedgerStore
from tests.conftest import count_rows

pytestmark = pytest.mark.both_backends
NOTES = "CREATE TABLE notes (k TEXT PRIMARY KEY, v INTEGER NOT NULL)"
INSERT_NOTE = text("INSERT INTO notes VALUES (:k, :v)")  # either driver's parameter style


def _rows(url: str) -> dict[str, int]:
    """The notes committed, read on a connection of their own."""
    return {k: v for k, v in count_rows(url, {"notes": "SELECT k, v FROM notes"})["notes"]}


@pytest.fixture
async def ledger(store: LedgerStore) -> LedgerStore:
    await store.create_ledger("bank", idempotency_key="l")
    await store.open_account("bank", "issuer", kind="issuance", floor=None, idempotency_key="i")
    await store.open_account("bank", "ann", kind="member", floor=0, idempotency_key="a")
    await store.run(lambda c: c.exec_driver_sql(NOTES))
    return store


def _note(key: str, value: int) -> Callable[[Connection], int]:
    def work(conn: Connection) -> int:
        conn.execute(INSERT_NOTE, {"k": key, "v": value})
        return value

    return work


async def test_run_returns_its_value_and_its_rows_are_durable(
    ledger: LedgerStore, db_url: str
) -> None:
    assert await ledger.run(_note("a", 1)) == 1
    assert _rows(db_url) == {"a": 1}  # committed before run returned


async def test_a_failing_unit_undoes_only_its_own_writes_in_a_shared_batch(
    ledger: LedgerStore, db_url: str
) -> None:
    def bad(conn: Connection) -> None:
        conn.exec_driver_sql("INSERT INTO notes VALUES ('bad', 0)")
        raise InvalidRequest("refused after writing", field="x")

    first, refused, entry, last = await asyncio.gather(
        ledger.run(_note("before", 1)),
        ledger.run(bad),
        ledger.transfer("bank", [("issuer", -60), ("ann", 60)], idempotency_key="t"),
        ledger.run(_note("after", 2)),
        return_exceptions=True,
    )
    assert (first, last) == (1, 2) and isinstance(entry, Entry)
    assert isinstance(refused, InvalidRequest)
    assert _rows(db_url) == {"before": 1, "after": 2}
    assert (await ledger.account("bank", "ann")).balance == 60


async def test_then_commits_with_its_entry_and_not_on_a_retry(
    ledger: LedgerStore, db_url: str
) -> None:
    seen: list[int] = []

    def then(conn: Connection, entry: Entry) -> None:
        seen.append(entry.seq)
        conn.execute(INSERT_NOTE, {"k": f"entry-{entry.seq}", "v": 1})

    first = await ledger.transfer("bank", [("issuer", -60), ("ann", 60)],
                                  idempotency_key="x", then=then)  # fmt: skip
    again = await ledger.transfer("bank", [("issuer", -60), ("ann", 60)],
                                  idempotency_key="x", then=then)  # fmt: skip
    assert first.seq == again.seq and seen == [first.seq]
    assert first.signature and _rows(db_url) == {f"entry-{first.seq}": 1}


async def test_then_is_not_run_for_a_refused_entry(ledger: LedgerStore, db_url: str) -> None:
    def then(conn: Connection, entry: Entry) -> None:
        conn.exec_driver_sql("INSERT INTO notes VALUES ('no', 1)")

    with pytest.raises(FloorBreached):
        await ledger.transfer("bank", [("ann", -60), ("issuer", 60)],
                              idempotency_key="y", then=then)  # fmt: skip
    assert _rows(db_url) == {}


async def test_a_failing_then_fails_its_entry_alone(ledger: LedgerStore, db_url: str) -> None:
    def broken(conn: Connection, entry: Entry) -> None:
        conn.exec_driver_sql("INSERT INTO no_such_table VALUES (1)")

    bad, good = await asyncio.gather(
        ledger.transfer("bank", [("issuer", -30), ("ann", 30)], idempotency_key="b",
                        then=broken),
        ledger.transfer("bank", [("issuer", -60), ("ann", 60)], idempotency_key="g"),
        return_exceptions=True,
    )  # fmt: skip
    assert isinstance(bad, Exception) and isinstance(good, Entry)
    assert (await ledger.account("bank", "ann")).balance == 60
    assert await ledger.size("bank") == good.seq
