"""The single writer: applies write requests in group commits and answers only after COMMIT.

Callers submit requests concurrently; the writer drains whatever has queued (up to MAX_BATCH)
and hands the batch to its own thread, which in one transaction holding the database's write
lock checks each request against the ledger's state (a request that fails is answered with its
error and writes nothing), builds and signs the entries, inserts everything, and commits
durably. Only then are the callers answered. If the transaction fails, each request is retried
alone so one bad request cannot sink its neighbours.

One call to the writer thread per batch, not one hop per statement: the writer's SQL runs
through SQLAlchemy's synchronous engine on that thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError

from . import merkle, rules, storage
from .encoding import checkpoint_digest, entry_hash, key_digest
from .errors import (
    Conflict,
    FloorBreached,
    IdempotencyConflict,
    InvalidRequest,
    LedgerError,
    NotFound,
    NotYetDue,
)
from .keystore import KeyRing
from .model import (
    MAX_TIME_US,
    RESERVED_ACCOUNT,
    ZERO_HASH,
    Account,
    Checkpoint,
    Entry,
    EntryKind,
    Posting,
    PublicKey,
)
from .prepared import raw
from .signing import Signer

MAX_BATCH = 512
TRIES = 3  # times a request alone is tried when another process's write clashed with it
SIGN_SPLIT = 16  # batches of at least twice this many entries are signed in two threads
# Refusals that depend on the ledger's state are remembered under the idempotency key, so a
# retry gets the same answer even if the state has changed since (invariant 8).
REMEMBERED_REFUSALS = (Conflict, FloorBreached, NotFound)
REFUSAL_BY_CODE: dict[str, type[LedgerError]] = {c.code: c for c in REMEMBERED_REFUSALS}


@dataclass(frozen=True, slots=True)
class Ran:
    """What a caller's unit of work (op "run") returned."""

    value: Any


Result = Entry | Account | PublicKey | Checkpoint | Ran


@dataclass(frozen=True, slots=True)
class Request:
    """One write. `kind` is create_ledger, open_account, rotate_key, checkpoint or an EntryKind."""

    op: str
    ledger: str
    idempotency_key: str
    postings: tuple[Posting, ...] = ()
    account: str = ""
    account_kind: str = ""
    floor: int | None = None
    target: str = ""
    amount: int = 0
    expires_us: int = 0
    lifetime_us: int = 0  # a reservation's expiry counted from its entry's time, instead
    ref: int = 0
    meta: tuple[tuple[str, str], ...] = ()
    # Not part of the request's content: work of the caller's done in the same transaction.
    work: Callable[[Connection], Any] | None = field(default=None, compare=False)  # op "run"
    then: Callable[[Connection, Entry], None] | None = field(default=None, compare=False)

    @property
    def scope(self) -> str:
        """Where the key is unique: its ledger, or one global scope for creating ledgers."""
        return "" if self.op == "create_ledger" else self.ledger

    def digest(self) -> bytes:
        """SHA-256 of the request's content (not its key): what a retry must repeat exactly."""
        body = [
            self.op,
            self.ledger,
            [[p.account, p.amount] for p in self.postings],
            self.account,
            self.account_kind,
            self.floor,
            self.target,
            self.amount,
            self.expires_us,
            self.ref,
            *([self.lifetime_us] if self.lifetime_us else []),
            [list(kv) for kv in self.meta],
        ]
        return hashlib.sha256(json.dumps(body, separators=(",", ":")).encode()).digest()


@dataclass
class _State:
    """What the writer knows of one ledger as of its head."""

    ledger: str
    head: storage.Head
    frontier: merkle.Frontier
    keys: list[PublicKey]
    accounts: dict[str, Account] = field(default_factory=dict)


@dataclass
class _Item:
    request: Request
    future: asyncio.Future[Result]
    result: Result | None = None
    error: BaseException | None = None


class _Batch:
    """One transaction's working state: what it read, what it will write, what it answers."""

    def __init__(self) -> None:
        self.writes = storage.Batch()
        self.states: dict[str, _State] = {}
        self.idem: dict[tuple[str, str], tuple[bytes, Result | LedgerError | str]] = {}
        self.entries: dict[tuple[str, int], Entry] = {}
        self.referenced: dict[tuple[str, int], int] = {}
        self.checkpoints: dict[tuple[str, int], Checkpoint] = {}
        self.unsigned: list[tuple[Entry, Signer]] = []  # new entries, in order, to sign
        self.then: list[tuple[Callable[[Connection, Entry], None], Entry]] = []  # after insert


class Writer:
    def __init__(self, url: str, keyring: KeyRing, clock: Callable[[], int] | None = None) -> None:
        self._engine = storage.make_sync_engine(url)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="ledger-writer")
        self._signing = ThreadPoolExecutor(1, thread_name_prefix="ledger-signer")
        self._keyring = keyring
        self._clock = clock or (lambda: time.time_ns() // 1000)
        self._queue: asyncio.Queue[_Item | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._states: dict[str, _State] = {}  # touched only on the writer thread

    async def submit(self, request: Request) -> Result:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="ledger-writer")
        item = _Item(request, asyncio.get_running_loop().create_future())
        await self._queue.put(item)
        return await item.future

    async def close(self) -> None:
        if self._task is not None:
            await self._queue.put(None)
            await self._task
            self._task = None
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._engine.dispose)
        self._thread.shutdown()
        self._signing.shutdown()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self._queue.get()
            if first is None:
                return
            items = [first]
            stop = False
            while len(items) < MAX_BATCH and not self._queue.empty():
                nxt = self._queue.get_nowait()
                if nxt is None:
                    stop = True
                    break
                items.append(nxt)
            try:
                await loop.run_in_executor(self._thread, self._process, items)
            except BaseException as exc:  # never leave a caller waiting
                for item in items:
                    item.result, item.error = None, item.error or exc
            for item in items:  # answered on the event loop, after COMMIT
                if item.future.done():
                    continue
                if item.result is not None and item.error is None:
                    item.future.set_result(item.result)
                else:
                    item.future.set_exception(item.error or RuntimeError("no answer"))
            if stop:
                return

    def _process(self, items: list[_Item], tries: int = TRIES) -> None:
        """On the writer thread: commit the batch, or each request alone if the batch fails
        (and a request alone again, a bounded number of times, if another process's write
        clashed with it: a key or ledger made meanwhile, a deadlock the server broke)."""
        try:
            self._commit(items)
        except Exception as exc:  # the transaction failed: nothing of it was written
            self._states.clear()
            if len(items) > 1:
                for item in items:
                    self._process([item])
            elif tries > 1 and _clashed(exc):
                self._process(items, tries - 1)
            else:
                items[0].result, items[0].error = None, exc

    def _sign(self, unsigned: list[tuple[Entry, Signer]]) -> dict[tuple[str, int], Entry]:
        """Sign a batch's new entries, in two threads when it is big enough: signing is
        independent of the chain (which covers hashes, not signatures) and releases the GIL."""

        def sign(part: list[tuple[Entry, Signer]]) -> list[Entry]:
            return [_with_proof(e, e.hash, signer.sign(e.hash)) for e, signer in part]

        half = len(unsigned) // 2
        if half < SIGN_SPLIT:
            done = sign(unsigned)
        else:
            other = self._signing.submit(sign, unsigned[half:])
            done = sign(unsigned[:half]) + other.result()
        return {(e.ledger, e.seq): e for e in done}

    def _commit(self, items: list[_Item]) -> None:
        batch = _Batch()
        with self._engine.begin() as conn:
            self._preload(conn, batch, [i.request for i in items])
            for item in items:
                item.result, item.error = None, None
                try:
                    item.result = self._apply(conn, batch, item.request)
                except LedgerError as exc:
                    item.error = exc
            signed = self._sign(batch.unsigned)
            batch.writes.entries = [storage.entry_values(e) for e in signed.values()]
            for item in items:
                if isinstance(item.result, Entry) and not item.result.signature:
                    item.result = signed[(item.result.ledger, item.result.seq)]
            storage.write_batch(conn, batch.writes)
            for then, entry in batch.then:  # callers' work on their new entries, same commit
                then(conn, signed.get((entry.ledger, entry.seq), entry))
        self._states.update(batch.states)  # committed: the batch's view is now the truth

    # ---- loading -------------------------------------------------------------------------

    def _preload(self, conn: Connection, batch: _Batch, reqs: list[Request]) -> None:
        reqs = [r for r in reqs if r.op != "run"]
        by_ledger: dict[str, list[Request]] = {}
        for r in reqs:
            by_ledger.setdefault(r.ledger, []).append(r)
        # Each ledger's head first (on PostgreSQL, locked till COMMIT, in one order), then the
        # idempotency keys: a twin request in another process that committed while this one
        # waited for the lock is then seen, and replayed rather than written again.
        states = {ledger: self._state(conn, ledger) for ledger in sorted(by_ledger)}
        by_scope: dict[str, list[str]] = {}
        for r in reqs:
            by_scope.setdefault(r.scope, []).append(r.idempotency_key)
        for scope, idem_keys in by_scope.items():
            for key, seen in storage.read_idempotency(conn, scope, idem_keys).items():
                batch.idem[(scope, key)] = seen
        for ledger, group in by_ledger.items():
            state = states[ledger]
            if state is None:
                continue
            batch.states[ledger] = state
            codes = {p.account for r in group for p in r.postings} | {RESERVED_ACCOUNT}
            codes |= {c for r in group for c in (r.account, r.target) if c}
            refs = {r.ref for r in group if r.ref}
            if refs:
                for seq, entry in storage.read_entries(conn, ledger, refs).items():
                    batch.entries[(ledger, seq)] = entry
                    codes |= {p.account for p in entry.postings}  # what a resolve will touch
                    codes |= {entry.target} if entry.target else set()
                for seq, by in storage.read_referrers(conn, ledger, refs).items():
                    batch.referenced[(ledger, seq)] = by
            missing = codes - state.accounts.keys()
            if missing:
                state.accounts.update(storage.read_accounts(conn, ledger, missing))

    def _state(self, conn: Connection, ledger: str) -> _State | None:
        cached = self._states.get(ledger)
        head = storage.read_head(conn, ledger)
        if head is None:
            return None
        if cached is not None and cached.head == head:
            return cached
        nodes = merkle.frontier_nodes(head.seq)
        hashes = storage.read_nodes(conn, ledger, nodes)
        frontier = merkle.Frontier(head.seq, [(lvl, hashes[(lvl, i)]) for lvl, i in nodes])
        return _State(ledger, head, frontier, storage.read_keys(conn, ledger))

    # ---- applying one request --------------------------------------------------------------

    def _apply(self, conn: Connection, batch: _Batch, req: Request) -> Result:
        if req.work is not None:  # a caller's unit of work: rolled back alone if it fails
            return Ran(_in_savepoint(conn, req.work))
        digest = req.digest()
        seen = batch.idem.get((req.scope, req.idempotency_key))
        if seen is not None:
            if seen[0] != digest:
                raise IdempotencyConflict(
                    f"idempotency key {req.idempotency_key!r} was used for a different request",
                    field="idempotency_key",
                )
            prior = seen[1]
            if isinstance(prior, LedgerError):
                raise prior
            return prior if not isinstance(prior, str) else self._load(conn, req, prior)
        try:
            result = self._dispatch(conn, batch, req)
        except REMEMBERED_REFUSALS as exc:
            # A refusal is an answer too: a retry gets it again. Not for expiry, whose key the
            # ledger derives from the reservation: it must work once the time has come.
            if req.ledger in batch.states and req.op != EntryKind.EXPIRE.value:
                self._remember(batch, req, digest, exc)
            raise
        self._remember(batch, req, digest, result)
        if req.then is not None and isinstance(result, Entry):
            batch.then.append((req.then, result))
        return result

    def _remember(
        self, batch: _Batch, req: Request, digest: bytes, result: Result | LedgerError
    ) -> None:
        batch.idem[(req.scope, req.idempotency_key)] = (digest, result)
        batch.writes.idempotency.append(
            (req.scope, req.idempotency_key, digest, _result_ref(result), self._clock())
        )

    def _dispatch(self, conn: Connection, batch: _Batch, req: Request) -> Result:
        if req.op == "create_ledger":
            result: Result = self._create_ledger(batch, req)
        else:
            state = batch.states.get(req.ledger)
            if state is None:
                raise NotFound(f"no ledger {req.ledger!r}", field="ledger")
            if req.op == "open_account":
                result = self._open_account(batch, state, req)
            elif req.op == "rotate_key":
                result = self._rotate_key(batch, state, req)
            elif req.op == "checkpoint":
                made = batch.checkpoints.get((req.ledger, state.head.seq))
                made = made or storage.read_checkpoint(conn, req.ledger, state.head.seq)
                result = made or self._checkpoint(batch, state, req)
            else:
                result = self._append(batch, state, req)
        return result

    def _load(self, conn: Connection, req: Request, ref: str) -> Result:
        """The original answer to a repeated request, read back from the database."""
        kind, _, value = ref.partition(":")
        if kind == "refused":
            code, field_name, message = json.loads(value)
            raise REFUSAL_BY_CODE[code](message, field=field_name)
        if kind == "entry":
            return storage.read_entries(conn, req.ledger, [int(value)])[int(value)]
        if kind == "account":  # as it was opened: no balance yet
            found = storage.read_account(conn, req.ledger, value)
            assert found is not None
            return Account(found.ledger, found.code, found.kind, found.floor, 0)
        if kind == "key":
            return next(k for k in storage.read_keys(conn, req.ledger) if k.key_id == value)
        cp = storage.read_checkpoint(conn, req.ledger, int(value))
        assert cp is not None
        return cp

    def _now(self, state: _State | None) -> int:
        now = self._clock()
        return max(now, state.head.time_us) if state else now

    def _create_ledger(self, batch: _Batch, req: Request) -> PublicKey:
        if req.ledger in batch.states:
            raise Conflict(f"ledger {req.ledger!r} already exists", field="ledger")
        signer = self._keyring.create(req.ledger)
        now = self._now(None)
        key = _certify(req.ledger, signer, signer, 1, now)
        head = storage.Head(0, ZERO_HASH, now, 1)
        batch.writes.ledgers.append(
            {
                "id": req.ledger,
                "created_us": now,
                "head_seq": 0,
                "head_hash": ZERO_HASH,
                "head_time_us": now,
                "key_count": 1,
            }
        )
        batch.writes.keys.append(storage.key_row(key, 0))
        reserved = Account(req.ledger, RESERVED_ACCOUNT, "internal", 0, 0)
        batch.writes.accounts.append(_account_row(reserved, now))
        batch.states[req.ledger] = _State(
            req.ledger, head, merkle.Frontier(), [key], {RESERVED_ACCOUNT: reserved}
        )
        return key

    def _open_account(self, batch: _Batch, state: _State, req: Request) -> Account:
        if req.account in state.accounts:
            raise Conflict(f"account {req.account!r} already exists", field="account")
        account = Account(req.ledger, req.account, req.account_kind, req.floor, 0)
        batch.writes.accounts.append(_account_row(account, self._now(state)))
        state.accounts[req.account] = account
        return account

    def _signer(self, state: _State, ledger: str) -> Signer:
        return self._keyring.get(ledger, state.keys[-1].key_id)

    def _rotate_key(self, batch: _Batch, state: _State, req: Request) -> PublicKey:
        old = self._signer(state, req.ledger)
        new = self._keyring.create(req.ledger)
        key = _certify(req.ledger, new, old, state.head.seq + 1, self._now(state))
        batch.writes.keys.append(storage.key_row(key, len(state.keys)))
        state.keys.append(key)
        h = state.head
        _move_head(batch, state, storage.Head(h.seq, h.hash, h.time_us, len(state.keys)))
        return key

    def _checkpoint(self, batch: _Batch, state: _State, req: Request) -> Checkpoint:
        signer = self._signer(state, req.ledger)
        cp = Checkpoint(
            req.ledger, state.head.seq, state.frontier.root(), self._now(state), signer.key_id
        )
        cp = Checkpoint(
            cp.ledger, cp.size, cp.root, cp.time_us, cp.key_id, signer.sign(checkpoint_digest(cp))
        )
        batch.writes.checkpoints.append(storage.checkpoint_row(cp))
        batch.checkpoints[(cp.ledger, cp.size)] = cp
        return cp

    def _append(self, batch: _Batch, state: _State, req: Request) -> Entry:
        kind = EntryKind(req.op)
        ledger = req.ledger
        referenced = batch.entries.get((ledger, req.ref)) if req.ref else None
        if req.ref:
            if referenced is None:
                raise NotFound(f"no entry {req.ref} in ledger {ledger!r}", field="ref")
            by = batch.referenced.get((ledger, req.ref))
            if by is not None:
                done = "resolved" if referenced.kind is EntryKind.RESERVE else "reversed"
                raise Conflict(f"entry {req.ref} was already {done} by entry {by}", field="ref")
        now = self._now(state)
        if kind is EntryKind.TRANSFER:
            posts = req.postings
            if any(p.account.startswith("@") for p in posts):
                raise InvalidRequest(
                    "accounts starting with '@' are the ledger's own", field="postings"
                )
        elif kind is EntryKind.RESERVE:
            expires_us = now + req.lifetime_us if req.lifetime_us else req.expires_us
            if expires_us <= now or expires_us > MAX_TIME_US:
                raise InvalidRequest("expiry must be in the future", field="expires_at")
            if req.account not in state.accounts:
                raise NotFound(f"no account {req.account!r}", field="debit")
            if req.target not in state.accounts:
                raise NotFound(f"no account {req.target!r}", field="target")
            if req.account == req.target or req.account.startswith("@"):
                raise InvalidRequest("a reservation's debit and target must differ", field="target")
            posts = rules.reserve_postings(req.account, req.amount)
        else:
            assert referenced is not None
            if kind is EntryKind.REVERSE:
                if referenced.kind is not EntryKind.TRANSFER:
                    raise Conflict(
                        f"entry {req.ref} is a {referenced.kind}; only transfers can "
                        "be reversed (void a reservation; refund a post by a transfer)",
                        field="ref",
                    )
                posts = rules.reverse_postings(referenced)
            else:
                if referenced.kind is not EntryKind.RESERVE:
                    raise Conflict(f"entry {req.ref} is not a reservation", field="ref")
                if kind is EntryKind.EXPIRE and now < referenced.expires_us:
                    raise NotYetDue(f"reservation {req.ref} has not expired yet", field="ref")
                if kind is EntryKind.POST and now >= referenced.expires_us:
                    raise Conflict(f"reservation {req.ref} has expired", field="ref")
                posts = rules.resolve_postings(referenced, kind)
        for i, p in enumerate(posts):
            if p.account not in state.accounts:
                raise NotFound(
                    f"no account {p.account!r} in ledger {ledger!r}", field=f"postings[{i}].account"
                )
        accounts = state.accounts
        balances = {p.account: accounts[p.account].balance for p in posts}
        floors = {p.account: accounts[p.account].floor for p in posts}
        breach = rules.floor_problem(posts, balances, floors)
        if breach:
            raise FloorBreached(breach[1], field=breach[0])
        signer = self._signer(state, ledger)
        entry = Entry(
            ledger,
            state.head.seq + 1,
            state.head.hash,
            kind,
            now,
            signer.key_id,
            req.ref,
            expires_us if kind is EntryKind.RESERVE else 0,
            req.target if kind is EntryKind.RESERVE else "",
            posts,
            req.meta,
        )
        problem = rules.shape_problem(entry, referenced)
        assert problem is None, problem  # the writer only builds well-formed entries
        digest = entry_hash(entry)
        entry = _with_proof(entry, digest, b"")  # signed with the rest of the batch
        batch.unsigned.append((entry, signer))
        for p in posts:
            old = accounts[p.account]
            accounts[p.account] = Account(
                ledger, old.code, old.kind, old.floor, balances[p.account] + p.amount
            )
            batch.writes.balances[(ledger, p.account)] = old.balance + p.amount
        batch.writes.postings.extend(storage.posting_values(entry))
        made = state.frontier.append(digest)
        batch.writes.nodes.extend((ledger, lvl, idx, h) for lvl, idx, h in made[1:])
        batch.entries[(ledger, entry.seq)] = entry
        if req.ref:
            batch.referenced[(ledger, req.ref)] = entry.seq
        _move_head(batch, state, storage.Head(entry.seq, digest, now, state.head.key_count))
        return entry


def _clashed(exc: Exception) -> bool:
    """A failure another process's concurrent write caused, which a new transaction can pass:
    a unique key it took first, or (PostgreSQL) a deadlock or serialisation failure."""
    if isinstance(exc, IntegrityError):
        return True
    return isinstance(exc, OperationalError) and getattr(exc.orig, "sqlstate", "") in (
        "40001",
        "40P01",
    )


def _in_savepoint(conn: Connection, work: Callable[[Connection], Any]) -> Any:
    """`work(conn)`, its writes undone if it raises. Plain SQL savepoints (the same in SQLite
    and PostgreSQL): a fraction of the cost of a nested transaction object per unit."""
    raw(conn, "SAVEPOINT caller_work")
    try:
        value = work(conn)
    except BaseException:
        raw(conn, "ROLLBACK TO SAVEPOINT caller_work")
        raw(conn, "RELEASE SAVEPOINT caller_work")
        raise
    raw(conn, "RELEASE SAVEPOINT caller_work")
    return value


def _move_head(batch: _Batch, state: _State, head: storage.Head) -> None:
    state.head = head
    batch.writes.heads[state.ledger] = head


def _with_proof(entry: Entry, digest: bytes, signature: bytes) -> Entry:
    return Entry(
        entry.ledger,
        entry.seq,
        entry.prev_hash,
        entry.kind,
        entry.time_us,
        entry.key_id,
        entry.ref,
        entry.expires_us,
        entry.target,
        entry.postings,
        entry.meta,
        digest,
        signature,
    )


def _certify(ledger: str, new: Signer, by: Signer, from_seq: int, now: int) -> PublicKey:
    key = PublicKey(ledger, new.key_id, new.public_key, from_seq, now, by.key_id)
    return PublicKey(
        key.ledger,
        key.key_id,
        key.public_key,
        key.from_seq,
        key.time_us,
        key.signer_key_id,
        by.sign(key_digest(key)),
    )


def _account_row(a: Account, now: int) -> dict[str, Any]:
    return {
        "ledger_id": a.ledger,
        "code": a.code,
        "kind": a.kind,
        "floor": a.floor,
        "balance": a.balance,
        "created_us": now,
    }


def _result_ref(result: Result | LedgerError) -> str:
    if isinstance(result, LedgerError):
        return "refused:" + json.dumps([result.code, result.field, result.message])
    if isinstance(result, Entry):
        return f"entry:{result.seq}"
    if isinstance(result, Account):
        return f"account:{result.code}"
    if isinstance(result, PublicKey):
        return f"key:{result.key_id}"
    assert isinstance(result, Checkpoint), "a caller's own work is never remembered"
    return f"checkpoint:{result.size}"
