"""LedgerStore: the ledger's public API. Writes go through the group-commit writer; reads don't."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar, cast

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from . import merkle, storage
from .database import Database
from .errors import Conflict, InvalidRequest, NotFound, NotYetDue
from .keystore import KeyRing
from .model import (
    Account,
    Checkpoint,
    Entry,
    EntryKind,
    PublicKey,
    Receipt,
    Reservation,
    check_account,
    check_amount,
    check_floor,
    check_idempotency_key,
    check_kind,
    check_ledger_id,
    normalise_meta,
    normalise_postings,
    to_us,
)
from .rules import reserve_debit
from .writer import Ran, Request, Result, Writer

T = TypeVar("T")
Then = Callable[[Connection, Entry], None]  # a caller's rows, written with the new entry

INTERNAL_KEYS = "ledger:"  # idempotency keys the ledger itself uses (expiry)


class LedgerStore:
    """Signed, append-only, double-entry hour ledgers (one per scheme) in one database."""

    def __init__(
        self,
        db: Database,
        keyring: KeyRing,
        clock: Callable[[], int] | None = None,
        *,
        owns_db: bool = False,
    ) -> None:
        self.db = db
        self.url = db.url
        self._read = db.reader
        self.keyring = keyring
        self._writer = Writer(db.url, keyring, clock)  # the group commit's own connection
        self._owns_db = owns_db  # opened by `open(url)`: closed with the store

    @classmethod
    async def on(
        cls, db: Database, keyring: KeyRing, *, clock: Callable[[], int] | None = None
    ) -> LedgerStore:
        """The store on `db` (creating the schema if needed); closing it leaves `db` open."""
        await storage.create_schema(db.writer)
        return cls(db, keyring, clock)

    @classmethod
    async def open(
        cls, url: str, keyring: KeyRing, *, clock: Callable[[], int] | None = None
    ) -> LedgerStore:
        """Open (creating the schema if needed) the database at `url`, closed with the store."""
        db = await Database.open(url)
        try:
            await storage.create_schema(db.writer)
        except BaseException:
            await db.close()
            raise
        return cls(db, keyring, clock, owns_db=True)

    @classmethod
    async def open_sqlite(
        cls, path: Path | str, key_dir: Path | str | None, *, clock: Callable[[], int] | None = None
    ) -> LedgerStore:
        return await cls.open(storage.sqlite_url(str(path)), KeyRing.from_env(key_dir), clock=clock)

    async def close(self) -> None:
        await self._writer.close()
        if self._owns_db:
            await self.db.close()

    async def __aenter__(self) -> LedgerStore:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    # ---- writes ---------------------------------------------------------------------------

    async def _submit(self, request: Request, *, internal: bool = False) -> Result:
        check_idempotency_key(request.idempotency_key)
        if request.idempotency_key.startswith(INTERNAL_KEYS) and not internal:
            raise InvalidRequest(
                f"idempotency keys starting {INTERNAL_KEYS!r} are the ledger's own",
                field="idempotency_key",
            )
        return await self._writer.submit(request)

    async def create_ledger(self, ledger: str, *, idempotency_key: str) -> PublicKey:
        """Create a ledger with a new signing key (its first published key)."""
        req = Request("create_ledger", check_ledger_id(ledger), idempotency_key)
        return cast(PublicKey, await self._submit(req))

    async def open_account(
        self, ledger: str, account: str, *, kind: str, floor: int | None, idempotency_key: str
    ) -> Account:
        """Open an account. `floor` is the lowest balance allowed; None means no floor."""
        if account.startswith("@"):
            raise InvalidRequest("accounts starting with '@' are the ledger's own", field="account")
        req = Request(
            "open_account",
            check_ledger_id(ledger),
            idempotency_key,
            account=check_account(account),
            account_kind=check_kind(kind),
            floor=check_floor(floor),
        )
        return cast(Account, await self._submit(req))

    async def transfer(
        self,
        ledger: str,
        postings: list[tuple[str, int]],
        *,
        meta: dict[str, str] | None = None,
        idempotency_key: str,
        then: Then | None = None,
    ) -> Entry:
        """Append a balanced entry: `postings` are (account, signed minutes) summing to zero.

        `then(conn, entry)`, if given, runs in the same transaction once the entry is written
        (not when a retry finds it already there): the caller's own rows commit with it or not
        at all. It must be quick. It may refuse the entry by raising a `LedgerError` (a cap
        reached, say): nothing is written and the caller gets that error; the batch it was in
        is then retried request by request, so such refusals should be the exception.
        """
        req = Request(
            EntryKind.TRANSFER.value,
            check_ledger_id(ledger),
            idempotency_key,
            postings=normalise_postings(postings),
            meta=normalise_meta(meta),
            then=then,
        )
        return cast(Entry, await self._submit(req))

    async def run(self, work: Callable[[Connection], T]) -> T:
        """Run `work(conn)` on the writer's thread in its next group commit: the caller's own
        tables written in the ledger's transaction, durable when this returns. `work` runs in a
        savepoint, so an exception undoes only its writes (and is raised here). It holds up
        every other write while it runs: keep it to a few indexed statements."""
        ran = await self._writer.submit(Request("run", "", "", work=work))
        assert isinstance(ran, Ran)
        return cast(T, ran.value)

    async def reserve(
        self,
        ledger: str,
        *,
        debit: str,
        target: str,
        amount: int,
        expires_at: datetime | None = None,
        lifetime: timedelta | None = None,
        meta: dict[str, str] | None = None,
        idempotency_key: str,
        then: Then | None = None,
    ) -> Entry:
        """Reserve `amount` minutes of `debit` for `target` until `expires_at`, or for
        `lifetime` from the entry's own time (phase one): give one. A retry of a `lifetime`
        reservation repeats the request exactly however late it comes. `then` as for
        `transfer`."""
        if (expires_at is None) == (lifetime is None):
            raise InvalidRequest("give expires_at or lifetime", field="expires_at")
        lifetime_us = 0 if lifetime is None else lifetime // timedelta(microseconds=1)
        if lifetime is not None and lifetime_us <= 0:
            raise InvalidRequest("a reservation's lifetime must be positive", field="lifetime")
        req = Request(
            EntryKind.RESERVE.value,
            check_ledger_id(ledger),
            idempotency_key,
            account=check_account(debit, "debit"),
            target=check_account(target, "target"),
            amount=check_amount(amount, positive=True),
            expires_us=0 if expires_at is None else to_us(expires_at),
            lifetime_us=lifetime_us,
            meta=normalise_meta(meta),
            then=then,
        )
        return cast(Entry, await self._submit(req))

    async def _resolve(
        self,
        kind: EntryKind,
        ledger: str,
        ref: int,
        meta: dict[str, str] | None,
        key: str,
        internal: bool = False,
        then: Then | None = None,
    ) -> Entry:
        if isinstance(ref, bool) or not isinstance(ref, int) or ref < 1:
            raise InvalidRequest("must be the sequence number of an entry", field="ref")
        req = Request(
            kind.value, check_ledger_id(ledger), key, ref=ref, meta=normalise_meta(meta), then=then
        )
        return cast(Entry, await self._submit(req, internal=internal))

    async def post(
        self,
        ledger: str,
        reservation: int,
        *,
        meta: dict[str, str] | None = None,
        idempotency_key: str,
        then: Then | None = None,
    ) -> Entry:
        """Complete a reservation: its minutes move to the target. `then` as for `transfer`."""
        return await self._resolve(
            EntryKind.POST, ledger, reservation, meta, idempotency_key, then=then
        )

    async def void(
        self,
        ledger: str,
        reservation: int,
        *,
        meta: dict[str, str] | None = None,
        idempotency_key: str,
        then: Then | None = None,
    ) -> Entry:
        """Cancel a reservation: its minutes return to the debit account (`then`: see
        `transfer`)."""
        return await self._resolve(
            EntryKind.VOID, ledger, reservation, meta, idempotency_key, then=then
        )

    async def expire(self, ledger: str, reservation: int) -> Entry:
        """Release a reservation whose expiry has passed (idempotent by its sequence number)."""
        key = f"{INTERNAL_KEYS}expire:{reservation}"
        return await self._resolve(EntryKind.EXPIRE, ledger, reservation, None, key, True)

    async def expire_due(self, ledger: str, *, now: datetime, limit: int = 1000) -> list[Entry]:
        """Expire every reservation of `ledger` due by `now`, up to `limit` of them."""
        async with self._read.connect() as conn:
            due = await conn.run_sync(storage.due_reservations, ledger, to_us(now), limit)
        done = await asyncio.gather(*(self.expire(ledger, s) for s in due), return_exceptions=True)
        for outcome in done:  # settled meanwhile (Conflict) or due by `now` only: fine
            if isinstance(outcome, BaseException) and not isinstance(outcome, Conflict | NotYetDue):
                raise outcome
        return [e for e in done if isinstance(e, Entry)]

    async def reverse(
        self,
        ledger: str,
        seq: int,
        *,
        meta: dict[str, str] | None = None,
        idempotency_key: str,
        then: Then | None = None,
    ) -> Entry:
        """Append the exact negation of transfer `seq`, naming it. Each is reversed at most once.
        `then` as for `transfer`."""
        return await self._resolve(EntryKind.REVERSE, ledger, seq, meta, idempotency_key, then=then)

    async def rotate_key(self, ledger: str, *, idempotency_key: str) -> PublicKey:
        """Start signing with a new key, certified by the current one; the old one retires."""
        req = Request("rotate_key", check_ledger_id(ledger), idempotency_key)
        return cast(PublicKey, await self._submit(req))

    async def checkpoint(self, ledger: str, *, idempotency_key: str) -> Checkpoint:
        """Sign the ledger's size and Merkle root (or return the checkpoint of that size)."""
        req = Request("checkpoint", check_ledger_id(ledger), idempotency_key)
        return cast(Checkpoint, await self._submit(req))

    # ---- reads ----------------------------------------------------------------------------

    async def ledgers(self) -> list[str]:
        async with self._read.connect() as conn:
            return await conn.run_sync(storage.list_ledgers)

    async def size(self, ledger: str) -> int:
        """How many entries the ledger holds (its head's sequence number)."""
        async with self._read.connect() as conn:
            head = await conn.run_sync(storage.read_head, ledger)
        if head is None:
            raise NotFound(f"no ledger {ledger!r}", field="ledger")
        return head.seq

    async def account(self, ledger: str, code: str) -> Account:
        async with self._read.connect() as conn:
            found = await conn.run_sync(storage.read_account, ledger, code)
        if found is None:
            raise NotFound(f"no account {code!r} in ledger {ledger!r}", field="account")
        return found

    async def accounts(self, ledger: str) -> list[Account]:
        async with self._read.connect() as conn:
            return await conn.run_sync(storage.list_accounts, ledger)

    async def pending(self, ledger: str, code: str) -> int:
        """Minutes of `code` held by open reservations (already out of its balance)."""
        async with self._read.connect() as conn:
            return await conn.run_sync(storage.pending_total, ledger, code)

    async def entry(self, ledger: str, seq: int) -> Entry:
        async with self._read.connect() as conn:
            found = await conn.run_sync(storage.read_entries, ledger, [seq])
        if seq not in found:
            raise NotFound(f"no entry {seq} in ledger {ledger!r}", field="seq")
        return found[seq]

    async def history(
        self, ledger: str, account: str, *, after_seq: int = 0, limit: int = 100
    ) -> list[Entry]:
        async with self._read.connect() as conn:
            return await conn.run_sync(
                storage.account_history, ledger, account, after_seq, min(limit, 1000)
            )

    async def reservation(self, ledger: str, seq: int) -> Reservation:
        async with self._read.connect() as conn:
            found = await conn.run_sync(storage.read_entries, ledger, [seq])
            by = (await conn.run_sync(storage.read_referrers, ledger, [seq])).get(seq)
            resolver = (
                (await conn.run_sync(storage.read_entries, ledger, [by])).get(by) if by else None
            )
        entry = found.get(seq)
        if entry is None or entry.kind is not EntryKind.RESERVE:
            raise NotFound(f"no reservation {seq} in ledger {ledger!r}", field="reservation")
        debit = reserve_debit(entry)
        states = {EntryKind.POST: "posted", EntryKind.VOID: "voided", EntryKind.EXPIRE: "expired"}
        state = states[resolver.kind] if resolver else "pending"
        return Reservation(
            ledger, seq, debit.account, entry.target, -debit.amount, entry.expires_us, state, by
        )

    async def public_keys(self, ledger: str) -> list[PublicKey]:
        async with self._read.connect() as conn:
            return await conn.run_sync(storage.read_keys, ledger)

    async def checkpoints(self, ledger: str) -> list[Checkpoint]:
        async with self._read.connect() as conn:
            return await conn.run_sync(storage.list_checkpoints, ledger)

    async def receipt(self, ledger: str, seq: int, *, size: int | None = None) -> Receipt:
        """Entry `seq` with its inclusion proof against checkpoint `size` (default: the latest)."""
        async with self._read.connect() as conn:
            if size is None:
                cp = await conn.run_sync(storage.latest_checkpoint, ledger)
            else:
                cp = await conn.run_sync(storage.read_checkpoint, ledger, size)
            if cp is None or cp.size < seq:
                raise NotFound(
                    f"no checkpoint of ledger {ledger!r} covers entry {seq} yet", field="seq"
                )
            found = await conn.run_sync(storage.read_entries, ledger, [seq])
            if seq not in found:
                raise NotFound(f"no entry {seq} in ledger {ledger!r}", field="seq")
            proof = await self._hashes(conn, ledger, merkle.inclusion_ranges(seq - 1, cp.size))
            keys = await conn.run_sync(storage.read_keys, ledger)
        return Receipt(found[seq], seq - 1, tuple(proof), cp, tuple(keys))

    async def consistency_proof(self, ledger: str, old: int, new: int) -> list[bytes]:
        """PROOF(old, new) for two sizes of the ledger (RFC 6962 2.1.2)."""
        async with self._read.connect() as conn:
            head = await conn.run_sync(storage.read_head, ledger)
            if head is None or not 0 < old <= new <= head.seq:
                raise InvalidRequest(
                    f"need 0 < old <= new <= {head.seq if head else 0}", field="size"
                )
            return await self._hashes(conn, ledger, merkle.consistency_ranges(old, new))

    @staticmethod
    async def _hashes(
        conn: AsyncConnection, ledger: str, ranges: list[tuple[int, int]]
    ) -> list[bytes]:
        needed = [n for start, end in ranges for n in merkle.range_nodes(start, end)]
        known = await conn.run_sync(storage.read_nodes, ledger, needed)
        return [merkle.range_hash(s, e, known.__getitem__) for s, e in ranges]
