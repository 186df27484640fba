"""Verifying a database: its ledgers as `LedgerData`, read in one read-only snapshot.

Entries are read on a thread ahead of their checking; the stored Merkle nodes are compared by
one digest computed on another thread, and only on a mismatch located level by level.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from . import merkle, storage
from .model import Checkpoint, Entry, PublicKey
from .verify import LedgerData, Report, verify_sources

NODE_CHUNK = 8192  # Merkle nodes compared per read when locating a wrong one


async def database_sources(
    conn: AsyncConnection, side: Engine | None = None
) -> AsyncIterator[LedgerData]:
    """Each ledger of a database, read inside the caller's (snapshot) transaction.

    `side` is a sync engine on the same database for the Merkle-node digest, read on a thread
    while the entries stream (stored nodes of a log's prefix never change, so another snapshot
    of them is the same)."""
    for ledger in await conn.run_sync(storage.list_ledgers):
        head = await conn.run_sync(storage.read_head, ledger)
        assert head is not None

        async def consistency(old: int, new: int, ledger: str = ledger) -> list[bytes]:
            ranges = merkle.consistency_ranges(old, new)
            needed = [n for s, e in ranges for n in merkle.range_nodes(s, e)]
            try:
                known = await conn.run_sync(storage.read_nodes, ledger, needed)
            except AssertionError:
                return []  # nodes missing: the proof will fail and say so
            return [merkle.range_hash(s, e, known.__getitem__) for s, e in ranges]

        async def nodes_problem(size: int, ledger: str = ledger) -> str | None:
            return await _nodes_problem(conn, ledger, size)

        async def node_digest(size: int, ledger: str = ledger) -> tuple[bytes, int, int]:
            assert side is not None
            return await asyncio.to_thread(_node_digest, side, ledger, size)

        yield LedgerData(
            ledger=ledger,
            keys=await conn.run_sync(storage.read_keys, ledger),
            accounts=await conn.run_sync(storage.list_accounts, ledger),
            checkpoints=await conn.run_sync(storage.list_checkpoints, ledger),
            reversal_refs=await conn.run_sync(storage.reversal_refs, ledger),
            entries=(
                _entries_on_thread(side, ledger, head.seq)
                if side is not None
                else storage.stream_entries(conn, ledger)
            ),
            head=(head.seq, head.hash),
            consistency=consistency,
            nodes_problem=nodes_problem,
            node_digest=node_digest if side is not None else None,
        )


async def _entries_on_thread(side: Engine, ledger: str, until: int) -> AsyncIterator[Entry]:
    """Entries 1..until read on a thread ahead of their checking (a bounded queue between)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[list[Entry] | BaseException | None] = asyncio.Queue(maxsize=4)
    stop = threading.Event()

    def put(item: list[Entry] | BaseException | None) -> None:
        asyncio.run_coroutine_threadsafe(queue.put(item), loop).result()

    def produce() -> None:
        try:
            with side.connect() as conn:
                for chunk in storage.stream_entries_sync(conn, ledger, until):
                    if stop.is_set():
                        return
                    put(chunk)
            put(None)
        except BaseException as exc:  # handed to the reader, which raises it
            put(exc)

    producer = loop.run_in_executor(None, produce)
    try:
        while (chunk := await queue.get()) is not None:
            if isinstance(chunk, BaseException):
                raise chunk
            for entry in chunk:
                yield entry
    finally:
        stop.set()
        while not producer.done():  # unblock a producer waiting on a full queue
            while not queue.empty():
                queue.get_nowait()
            await asyncio.sleep(0.001)
        await producer


def _node_digest(side: Engine, ledger: str, size: int) -> tuple[bytes, int, int]:
    with side.connect() as conn:
        digest, count = storage.node_digest(conn, ledger, size)
        return digest, count, storage.count_nodes(conn, ledger)


async def _nodes_problem(conn: AsyncConnection, ledger: str, size: int) -> str | None:
    """Name the first wrong stored Merkle node, recomputing each level from the one below.

    Receipts and the writer's next checkpoint are built from these nodes, so a changed node must
    be caught even when no checkpoint's consistency proof happens to use it. Run only when the
    quick digest comparison fails; reads level by level in bounded chunks.
    """
    expected_total = 0
    level = 1
    while size >> level:
        count = size >> level  # complete nodes at this level
        expected_total += count
        for start in range(0, count, NODE_CHUNK):
            end = min(start + NODE_CHUNK, count)
            below = await conn.run_sync(storage.read_level, ledger, level - 1, 2 * start, 2 * end)
            above = await conn.run_sync(storage.read_level, ledger, level, start, end)
            if len(below) != 2 * (end - start) or [i for i, _ in above] != list(range(start, end)):
                return f"Merkle nodes of level {level} from {start} are missing"
            for (idx, h), i in zip(above, range(0, len(below), 2), strict=True):
                if h != merkle.node_hash(below[i][1], below[i + 1][1]):
                    return f"stored Merkle node (level {level}, index {idx}) is wrong"
        level += 1
    stored = await conn.run_sync(storage.count_nodes, ledger)
    if stored != expected_total:
        return f"{stored} Merkle nodes stored; a log of {size} entries has {expected_total}"
    return None


async def verify_database(
    url: str,
    *,
    workers: int | None = None,
    trusted: dict[str, list[PublicKey]] | None = None,
    held: dict[str, list[Checkpoint]] | None = None,
) -> Report:
    """Verify every ledger in the database at `url`, opened read-only, in one snapshot
    (`trusted` and `held` as for `verify_sources`)."""
    try:
        return await _verify_url(url, workers, trusted, held)
    except OperationalError:
        if "mode=ro" not in url or "immutable=1" in url:
            raise
        # A WAL database in a read-only directory: SQLite cannot make its shared-memory file.
        # Nothing can be writing to it there, so read it as immutable.
        return await _verify_url(url + "&immutable=1", workers, trusted, held)


async def _verify_url(
    url: str,
    workers: int | None,
    trusted: dict[str, list[PublicKey]] | None,
    held: dict[str, list[Checkpoint]] | None,
) -> Report:
    engine = storage.make_engine(url, read_only=True)
    side = storage.make_sync_engine(url, read_only=True)
    try:
        async with engine.connect() as conn, conn.begin():
            sources = database_sources(conn, side)
            return await verify_sources(sources, workers=workers, trusted=trusted, held=held)
    finally:
        await engine.dispose()
        side.dispose()
