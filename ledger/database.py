"""Database: one URL's engines, opened once and shared by every service on that database."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import MetaData
from sqlalchemy.engine import Connection

from . import storage

T = TypeVar("T")
READERS = 2  # reader threads (and connections) per database


class Database:
    """The async writer engine (on SQLite, the write lock at BEGIN), the async reader engine
    (deferred transactions, never waiting on writers) and the sync reader pool (`read`)."""

    def __init__(self, url: str, *, readers: int = READERS) -> None:
        self.url = url
        self.writer = storage.make_engine(url)
        self.reader = storage.make_engine(url, deferred=True)
        # A request's reads run in one call to a reader thread (not one hop per statement).
        self._sync = storage.make_sync_engine(url, readers=readers)
        self._threads = ThreadPoolExecutor(readers, thread_name_prefix="db-read")
        self._local = threading.local()
        self._conns: list[Connection] = []
        self._closed = False

    @classmethod
    async def open(cls, url: str, *, readers: int = READERS) -> Database:
        """The database at `url` (the ledger's schema is made by `LedgerStore`)."""
        return cls(url, readers=readers)

    async def create_tables(self, metadata: MetaData) -> None:
        """`metadata`'s tables made if missing (one process at a time on PostgreSQL)."""
        async with self.writer.begin() as conn:
            await conn.run_sync(storage.create_tables(metadata))

    async def read(self, read: Callable[..., T], *args: Any) -> T:
        """`read(conn, *args)` on a reader thread, in one snapshot."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, self._in_snapshot, read, args)

    def _in_snapshot(self, read: Callable[..., T], args: tuple[Any, ...]) -> T:
        conn = getattr(self._local, "conn", None)
        if conn is None:  # each reader thread keeps one connection: no pool round trip per read
            conn = self._local.conn = self._sync.connect()
            self._conns.append(conn)
        with conn.begin():
            return read(conn, *args)

    async def close(self) -> None:
        """Every engine disposed, once (reads in progress finish first)."""
        if self._closed:
            return
        self._closed = True
        await self.writer.dispose()
        await self.reader.dispose()
        self._threads.shutdown()
        for conn in self._conns:
            conn.close()
        self._sync.dispose()
