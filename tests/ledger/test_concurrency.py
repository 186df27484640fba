"""Invariants 3, 7 and 8 under concurrency: many requests at once, two writers, several processes.

Whatever the interleaving, the chain has no fork and no gap (sequence numbers are exactly 1..n,
each linked to the one before), no account goes below its floor, a reservation settles once, and
`verify_database` passes on the database afterwards. On a server run (TIMEBANK_TEST_DATABASE_URL)
every test runs against a PostgreSQL database of its own: there the writers, stores and processes
queue on the ledger's head row instead of SQLite's write lock, and must keep the same invariants.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
from collections import Counter
from collections.abc import Awaitable, Sequence
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import make_url

from ledger import (
    RESERVED_ACCOUNT,
    Conflict,
    Entry,
    EntryKind,
    FloorBreached,
    IdempotencyConflict,
    KeyRing,
    LedgerStore,
    NotFound,
    from_us,
    verify_database,
)
from ledger.model import ZERO_HASH
from ledger.storage import sqlite_url
from tests.conftest import Clock, count_rows

pytestmark = pytest.mark.both_backends
T = TypeVar("T")
L = "scheme"
HOUR_US = 3_600_000_000


async def setup_ledger(store: LedgerStore, members: Sequence[tuple[str, int | None, int]]) -> None:
    """A ledger with a bank (no floor) and members (code, floor, minutes issued to it)."""
    await store.create_ledger(L, idempotency_key="create")
    await store.open_account(L, "bank", kind="issuance", floor=None, idempotency_key="bank")
    for code, floor, funds in members:
        await store.open_account(L, code, kind="member", floor=floor, idempotency_key=f"o-{code}")
        if funds:
            await store.transfer(L, [("bank", -funds), (code, funds)], idempotency_key=f"f-{code}")


def chain(url: str) -> list[tuple[int, bytes, bytes]]:
    """(seq, prev_hash, hash) of every entry of the ledger, in sequence order, as stored."""
    sql = f"SELECT seq, prev_hash, hash FROM entries WHERE ledger_id = '{L}' ORDER BY seq"
    return [
        (seq, bytes(prev), bytes(digest)) for seq, prev, digest in count_rows(url, {"c": sql})["c"]
    ]


def assert_one_gapless_chain(url: str, expected: int) -> None:
    found = chain(url)
    assert [seq for seq, _, _ in found] == list(range(1, expected + 1))
    previous = ZERO_HASH
    for seq, prev, digest in found:
        assert prev == previous, f"entry {seq} does not link to entry {seq - 1}: a fork"
        previous = digest
    assert len({digest for _, _, digest in found}) == len(found)


async def assert_verifies(url: str) -> None:
    """The whole database verifies: a SQLite file opened read-only, or the server's database."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        assert parsed.database is not None
        url = sqlite_url(parsed.database, read_only=True)
    report = await verify_database(url, workers=1)
    assert report.ok, report.summary()


async def balances(store: LedgerStore) -> dict[str, int]:
    found = {a.code: a.balance for a in await store.accounts(L)}
    assert sum(found.values()) == 0
    return found


def outcomes(results: Sequence[object]) -> Counter[str]:
    return Counter(type(r).__name__ for r in results)


async def gather(*calls: Awaitable[T]) -> list[T | BaseException]:
    return list(await asyncio.gather(*calls, return_exceptions=True))


# ---- one store, hundreds of requests at once ----------------------------------------------------


async def test_concurrent_reservations_never_break_the_floor(
    store: LedgerStore, clock: Clock, db_url: str
) -> None:
    # alice may go to -20 and holds 80: exactly 100 one-minute reservations fit
    await setup_ledger(store, [("alice", -20, 80), ("bob", 0, 0)])
    expires = from_us(clock() + HOUR_US)
    results = await gather(
        *(
            store.reserve(
                L,
                debit="alice",
                target="bob",
                amount=1,
                expires_at=expires,
                idempotency_key=f"r{i}",
            )
            for i in range(300)
        )
    )
    assert outcomes(results) == {"Entry": 100, "FloorBreached": 200}
    assert await store.pending(L, "alice") == 100
    assert await balances(store) == {"bank": -80, "alice": -20, "bob": 0, RESERVED_ACCOUNT: 100}
    assert_one_gapless_chain(db_url, 1 + 100)
    await assert_verifies(db_url)


async def test_concurrent_transfers_and_reservations_on_one_account(
    store: LedgerStore, clock: Clock, db_url: str
) -> None:
    await setup_ledger(store, [("alice", 0, 150), ("bob", 0, 0), ("carol", None, 0)])
    expires = from_us(clock() + HOUR_US)

    def request(i: int) -> Awaitable[Entry]:
        if i % 4 == 0:  # 100 top-ups of alice from the bank, racing the spending
            return store.transfer(L, [("bank", -1), ("alice", 1)], idempotency_key=f"in{i}")
        if i % 4 == 1:
            return store.transfer(L, [("alice", -2), ("bob", 2)], idempotency_key=f"t{i}")
        return store.reserve(
            L, debit="alice", target="carol", amount=1, expires_at=expires, idempotency_key=f"r{i}"
        )

    async def client(c: int) -> list[Entry | BaseException]:
        """Ten requests one after another; forty such clients make many interleaved batches."""
        return [(await gather(request(c * 10 + j)))[0] for j in range(10)]

    per_client = await asyncio.gather(*(client(c) for c in range(40)))
    results = [r for rs in per_client for r in rs]
    assert len(results) == 400
    assert set(outcomes(results)) <= {"Entry", "FloorBreached"}
    done = [r for r in results if isinstance(r, Entry)]
    spent = sum(-r.amount_for("alice") for r in done if r.amount_for("alice") < 0)
    topped = sum(r.amount_for("alice") for r in done if r.amount_for("alice") > 0)
    assert topped == 100  # top-ups never fail
    final = await balances(store)
    assert final["alice"] == 150 + topped - spent >= 0
    held = sum(1 for r in done if r.kind is EntryKind.RESERVE)
    assert final[RESERVED_ACCOUNT] == held == await store.pending(L, "alice")
    assert final["bob"] == 2 * sum(1 for r in done if r.amount_for("bob") > 0)
    assert len(done) < 400  # more was asked of alice than she ever had: some were refused
    assert_one_gapless_chain(db_url, 1 + len(done))
    assert sorted(r.seq for r in done) == list(range(2, 2 + len(done)))
    await assert_verifies(db_url)


async def test_hundreds_of_concurrent_appends_leave_no_gap(store: LedgerStore, db_url: str) -> None:
    members = [(f"m{i}", 0, 0) for i in range(10)]
    await setup_ledger(store, members)
    results = await gather(
        *(
            store.transfer(L, [("bank", -(i + 1)), (f"m{i % 10}", i + 1)], idempotency_key=f"t{i}")
            for i in range(500)
        )
    )
    assert outcomes(results) == {"Entry": 500}
    seqs = sorted(r.seq for r in results if isinstance(r, Entry))
    assert seqs == list(range(1, 501))
    assert_one_gapless_chain(db_url, 500)
    final = await balances(store)
    assert final["bank"] == -sum(range(1, 501))
    for m in range(10):
        assert final[f"m{m}"] == sum(i + 1 for i in range(500) if i % 10 == m)
    await assert_verifies(db_url)


async def test_concurrent_posts_settle_a_reservation_exactly_once(
    store: LedgerStore, clock: Clock, db_url: str
) -> None:
    await setup_ledger(store, [("alice", 0, 60), ("bob", 0, 0)])
    r = await store.reserve(
        L,
        debit="alice",
        target="bob",
        amount=45,
        expires_at=from_us(clock() + HOUR_US),
        idempotency_key="r",
    )
    results = await gather(*(store.post(L, r.seq, idempotency_key=f"p{i}") for i in range(200)))
    assert outcomes(results) == {"Entry": 1, "Conflict": 199}
    [posted] = [x for x in results if isinstance(x, Entry)]
    assert (await store.reservation(L, r.seq)).resolved_by == posted.seq
    assert await balances(store) == {"bank": -60, "alice": 15, "bob": 45, RESERVED_ACCOUNT: 0}
    assert_one_gapless_chain(db_url, posted.seq)
    await assert_verifies(db_url)


async def test_racing_post_void_and_expiry_settle_a_reservation_once(
    store: LedgerStore, clock: Clock, db_url: str
) -> None:
    await setup_ledger(store, [("alice", 0, 60), ("bob", 0, 0)])
    r = await store.reserve(
        L,
        debit="alice",
        target="bob",
        amount=45,
        expires_at=from_us(clock() + 60_000_000),
        idempotency_key="r",
    )
    clock.advance(60)
    calls: list[Awaitable[object]] = []
    for i in range(60):
        calls.append(store.post(L, r.seq, idempotency_key=f"p{i}"))
        calls.append(store.void(L, r.seq, idempotency_key=f"v{i}"))
        calls.append(store.expire(L, r.seq))
    calls.append(store.expire_due(L, now=from_us(clock())))
    results = await gather(*calls)
    settled = [x for x in results if isinstance(x, Entry)]
    settled += [e for x in results if isinstance(x, list) for e in x]
    assert len({e.seq for e in settled}) == 1, "settled more than once"
    assert set(outcomes(results)) <= {"Entry", "Conflict", "list"}
    state = await store.reservation(L, r.seq)
    assert state.state in {"posted", "voided", "expired"}
    assert state.resolved_by == settled[0].seq
    final = await balances(store)
    assert final[RESERVED_ACCOUNT] == 0 and final["alice"] + final["bob"] == 60
    assert_one_gapless_chain(db_url, settled[0].seq)
    await assert_verifies(db_url)


async def test_concurrent_retries_with_one_key_write_once(
    store: LedgerStore, clock: Clock, db_url: str
) -> None:
    await setup_ledger(store, [("alice", 0, 60), ("bob", 0, 0)])
    expires = from_us(clock() + HOUR_US)
    results = await gather(
        *(
            store.reserve(
                L, debit="alice", target="bob", amount=50, expires_at=expires, idempotency_key="k"
            )
            for _ in range(100)
        ),
        *(store.transfer(L, [("alice", -1), ("bob", 1)], idempotency_key="k") for _ in range(20)),
    )
    first = results[0]
    assert isinstance(first, Entry)
    assert all(x == first for x in results[:100])
    assert outcomes(results[100:]) == {"IdempotencyConflict": 20}
    assert await store.pending(L, "alice") == 50
    assert_one_gapless_chain(db_url, first.seq)
    await assert_verifies(db_url)


# ---- two writers on one database, as two processes would be --------------------------------------


async def test_two_stores_appending_concurrently_never_fork(
    db_url: str, key_dir: Path, clock: Clock
) -> None:
    async with (
        await LedgerStore.open(db_url, KeyRing(key_dir), clock=clock) as one,
        await LedgerStore.open(db_url, KeyRing(key_dir), clock=clock) as two,
    ):
        await setup_ledger(one, [("alice", 0, 100), ("bob", 0, 100)])
        writers = (two, one)

        async def client(c: int) -> list[tuple[int, Entry | FloorBreached]]:
            """Ten requests one after another, alternating writers: the batches interleave."""
            out: list[tuple[int, Entry | FloorBreached]] = []
            for j in range(10):
                i, w = c * 10 + j, (c + j) % 2
                postings = [("alice", -1), ("bob", 1)] if i % 3 else [("bank", -2), ("alice", 2)]
                try:
                    out.append((w, await writers[w].transfer(L, postings, idempotency_key=f"t{i}")))
                except FloorBreached as exc:
                    out.append((w, exc))
            return out

        by_writer = [x for xs in await asyncio.gather(*(client(c) for c in range(30))) for x in xs]
        results = [r for _, r in by_writer]
        done = [r for r in results if isinstance(r, Entry)]
        assert {w for w, r in by_writer if isinstance(r, Entry)} == {0, 1}  # both wrote
        assert sorted(r.seq for r in done) == list(range(3, 3 + len(done)))
        assert len(done) >= 200  # the 100 top-ups never fail; alice affords >= 100 of 200 spends
        # a retry reaching the other writer gets the same answer (t2 went through `two`)
        original = results[2]
        if isinstance(original, Entry):
            again = await one.transfer(L, [("alice", -1), ("bob", 1)], idempotency_key="t2")
            assert again == original
        else:
            with pytest.raises(FloorBreached):
                await one.transfer(L, [("alice", -1), ("bob", 1)], idempotency_key="t2")
        final = await balances(one)
        assert final == await balances(two)
        assert final["alice"] + final["bob"] == 200 + 2 * sum(
            1 for r in done if r.amount_for("bank")
        )
    assert_one_gapless_chain(db_url, 2 + len(done))
    await assert_verifies(db_url)


async def test_two_stores_reserving_concurrently_respect_one_floor(
    db_url: str, key_dir: Path, clock: Clock
) -> None:
    async with (
        await LedgerStore.open(db_url, KeyRing(key_dir), clock=clock) as one,
        await LedgerStore.open(db_url, KeyRing(key_dir), clock=clock) as two,
    ):
        await setup_ledger(one, [("alice", 0, 100), ("bob", 0, 0)])
        expires = from_us(clock() + HOUR_US)
        results = await gather(
            *(
                (one if i % 2 else two).reserve(
                    L,
                    debit="alice",
                    target="bob",
                    amount=1,
                    expires_at=expires,
                    idempotency_key=f"r{i}",
                )
                for i in range(300)
            )
        )
        assert not any(isinstance(r, NotFound) for r in results), outcomes(results)
        assert outcomes(results) == {"Entry": 100, "FloorBreached": 200}
        assert await one.pending(L, "alice") == 100
    await assert_verifies(db_url)


# ---- several processes on one database -----------------------------------------------------------


def _append_from_process(url: str, key_dir: str, tag: str, rounds: int, start: Event) -> None:
    """Run in a child process: its own LedgerStore on the shared database, appending in bursts."""

    async def main() -> None:
        async with await LedgerStore.open(url, KeyRing(key_dir)) as store:
            for r in range(rounds):
                await asyncio.gather(
                    *(
                        store.transfer(
                            L, [("bank", -1), (f"m-{tag}", 1)], idempotency_key=f"{tag}-{r}-{i}"
                        )
                        for i in range(20)
                    )
                )
                # and one conflicting retry per round: refused, never a second entry
                with contextlib.suppress(IdempotencyConflict):
                    await store.transfer(
                        L, [("bank", -9), (f"m-{tag}", 9)], idempotency_key=f"{tag}-{r}-0"
                    )
                    raise AssertionError("a used key with a different body was accepted")

    start.wait(30)
    asyncio.run(main())


async def test_processes_appending_to_one_file_never_fork(db_url: str, key_dir: Path) -> None:
    """Three processes, each with its own store (its own writer), on one SQLite file; or, on a
    server run, on one PostgreSQL database: one chain, no fork, no gap, nothing lost."""
    tags = ["a", "b", "c"]
    rounds = 8
    async with await LedgerStore.open(db_url, KeyRing(key_dir)) as store:
        await setup_ledger(store, [(f"m-{t}", 0, 0) for t in tags])
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    procs = [
        ctx.Process(target=_append_from_process, args=(db_url, str(key_dir), t, rounds, start))
        for t in tags
    ]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        await asyncio.to_thread(p.join, 120)
        assert p.exitcode == 0, f"writer process failed with exit code {p.exitcode}"
    per_process = rounds * 20
    assert_one_gapless_chain(db_url, len(tags) * per_process)
    async with await LedgerStore.open(db_url, KeyRing(key_dir)) as store:
        final = await balances(store)
    assert final == {
        "bank": -len(tags) * per_process,
        RESERVED_ACCOUNT: 0,
        **{f"m-{t}": per_process for t in tags},
    }
    await assert_verifies(db_url)


# ---- a conflict is never mistaken for success -------------------------------------------------


async def test_concurrent_reversals_of_one_transfer_happen_once(
    store: LedgerStore, db_url: str
) -> None:
    await setup_ledger(store, [("alice", 0, 60), ("bob", 0, 0)])
    t = await store.transfer(L, [("alice", -30), ("bob", 30)], idempotency_key="t")
    results = await gather(*(store.reverse(L, t.seq, idempotency_key=f"x{i}") for i in range(100)))
    assert outcomes(results) == {"Entry": 1, "Conflict": 99}
    assert all(isinstance(r, (Entry, Conflict)) for r in results)
    assert await balances(store) == {"bank": -60, "alice": 60, "bob": 0, RESERVED_ACCOUNT: 0}
    assert_one_gapless_chain(db_url, t.seq + 1)
    await assert_verifies(db_url)


async def test_floor_refusals_under_concurrency_are_floor_breaches(
    store: LedgerStore, db_url: str
) -> None:
    await setup_ledger(store, [("alice", 0, 10), ("bob", 0, 0)])
    results = await gather(
        *(
            store.transfer(L, [("alice", -1), ("bob", 1)], idempotency_key=f"t{i}")
            for i in range(50)
        )
    )
    assert outcomes(results) == {"Entry": 10, "FloorBreached": 40}
    assert all(r.field == "alice" for r in results if isinstance(r, FloorBreached))
    assert_one_gapless_chain(db_url, 1 + 10)
    await assert_verifies(db_url)
