"""A Hypothesis state machine drives one ledger with every kind of write and checks invariants 1-8.

A simple model keeps the balances, floors, open reservations, reversible transfers, the hashes of
the entries seen, the published keys and every request answered. After every step the store must
agree with the model: balances equal and summing to zero, none below its floor, reservations
counted as pending, sequence numbers 1..n linked by hash with no earlier entry changed, and each
retry answered as the first time without a new entry. Each run uses its own temporary directory,
event loop and fake clock, and its own SQLite file (or, on a server run, its own database on the
PostgreSQL server, dropped afterwards); at teardown `verify_database` must pass on it.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from ledger import (
    RESERVED_ACCOUNT,
    Account,
    Checkpoint,
    Conflict,
    Entry,
    EntryKind,
    FloorBreached,
    IdempotencyConflict,
    InvalidRequest,
    KeyRing,
    LedgerStore,
    NotFound,
    NotYetDue,
    Posting,
    PublicKey,
    consistency_problem,
    from_us,
    key_list_problem,
    receipt_problem,
    verify_database,
)
from ledger.merkle import root_of
from ledger.model import ZERO_HASH
from ledger.storage import sqlite_url, to_sync_url
from tests.conftest import SERVER_URL, Clock, server_database

pytestmark = pytest.mark.both_backends
T = TypeVar("T")
L = "scheme"
BANK = "bank"
MAX_ACCOUNTS = 8
Call = Callable[[], Awaitable[object]]
REMEMBERED = (Conflict, FloorBreached, NotFound)


@dataclass(frozen=True)
class Held:
    """An open reservation, as the model sees it."""

    debit: str
    target: str
    amount: int
    expires_us: int


@dataclass(frozen=True)
class Sent:
    """A request the store accepted: how to send it again, and a different body for its key."""

    key: str
    again: Call
    different: Call | None
    result: object


class LedgerMachine(RuleBasedStateMachine):
    accounts = Bundle("accounts")
    transfers = Bundle("transfers")
    reservations = Bundle("reservations")

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="ledger-stateful-"))
        self.db = self.dir / "ledger.db"
        self.databases = ExitStack()  # on a server run, the run's own database there
        self.url = (self.databases.enter_context(server_database()) if SERVER_URL
                    else sqlite_url(str(self.db)))  # fmt: skip
        # what is stored, read on connections of their own (not the store's)
        self.reader = create_engine(to_sync_url(self.url), poolclass=NullPool)
        self.loop = asyncio.new_event_loop()
        self.clock = Clock()
        self.store = self.run(
            LedgerStore.open(self.url, KeyRing(self.dir / "keys"), clock=self.clock)
        )
        self.closed = False
        self.n_keys = 0
        self.balances: dict[str, int] = {RESERVED_ACCOUNT: 0}
        self.floors: dict[str, int | None] = {RESERVED_ACCOUNT: 0}
        self.pending: dict[int, Held] = {}
        self.reserved_from: set[str] = set()
        self.expired: dict[int, Entry] = {}
        self.resolved: set[int] = set()
        self.reversed: set[int] = set()
        self.hashes: list[bytes] = []
        self.keys: list[PublicKey] = []
        self.checkpoints: list[Checkpoint] = []
        self.sent: list[Sent] = []

    # ---- plumbing ----------------------------------------------------------------------------

    def run(self, aw: Awaitable[T]) -> T:
        return self.loop.run_until_complete(aw)

    def key(self) -> str:
        self.n_keys += 1
        return f"req-{self.n_keys}"

    def refused(self, error: type[Exception], call: Call, key: str | None = None) -> None:
        """`call` must raise `error`; a refusal that depends on the ledger's state (Conflict,
        FloorBreached, NotFound) is remembered under its key, so a retry must raise it again."""
        with pytest.raises(error):
            self.run(call())
        if key is not None and error in REMEMBERED:
            self.record(key, call, None, error)

    def breaches(self, postings: list[tuple[str, int]]) -> bool:
        for code, amount in postings:
            floor = self.floors[code]
            if amount < 0 and floor is not None and self.balances[code] + amount < floor:
                return True
        return False

    def appended(self, entry: Entry, kind: EntryKind, postings: dict[str, int]) -> None:
        """Check a new entry against the model, then apply it."""
        assert entry.seq == len(self.hashes) + 1
        assert entry.prev_hash == (self.hashes[-1] if self.hashes else ZERO_HASH)
        assert entry.kind is kind
        assert entry.key_id == self.keys[-1].key_id
        assert {p.account: p.amount for p in entry.postings} == postings
        assert sum(p.amount for p in entry.postings) == 0
        assert all(type(p.amount) is int for p in entry.postings)
        for p in entry.postings:
            self.balances[p.account] += p.amount
        self.hashes.append(entry.hash)

    def others(self, code: str, pick: int, count: int = 1) -> list[str]:
        """`count` distinct accounts other than `code` (and the ledger's own), chosen by `pick`."""
        codes = [c for c in self.floors if c not in (code, RESERVED_ACCOUNT)]
        start = pick % len(codes)
        return [codes[(start + i) % len(codes)] for i in range(count)]

    def record(self, key: str, again: Call, different: Call | None, result: object) -> None:
        self.sent.append(Sent(key, again, different, result))

    # ---- set-up --------------------------------------------------------------------------------

    @initialize(
        target=accounts,
        floors=st.lists(st.sampled_from([None, 0, -60]), min_size=2, max_size=3),
        funds=st.integers(0, 500),
    )
    def create_ledger_and_accounts(self, floors: list[int | None], funds: int) -> Any:
        """The ledger, its issuance account, and two or three members each issued `funds`."""
        key = self.key()
        created = self.run(self.store.create_ledger(L, idempotency_key=key))
        assert created.from_seq == 1 and created.signer_key_id == created.key_id
        self.keys.append(created)
        self.record(key, lambda: self.store.create_ledger(L, idempotency_key=key), None, created)
        bank = self.run(
            self.store.open_account(L, BANK, kind="issuance", floor=None, idempotency_key="bank")
        )
        assert bank == Account(L, BANK, "issuance", None, 0)
        self.balances[BANK], self.floors[BANK] = 0, None
        codes = [self.open_account(floor) for floor in floors]
        if funds:
            for i in range(len(codes)):
                self.issue(i, funds)
        return multiple(BANK, *codes)

    # ---- accounts and transfers ----------------------------------------------------------------

    @precondition(lambda self: len(self.floors) < MAX_ACCOUNTS)
    @rule(target=accounts, floor=st.sampled_from([None, 0, 0, -30, -120]))
    def open_account(self, floor: int | None) -> str:
        code = f"m{len(self.floors)}"
        key = self.key()

        def again(floor: int | None = floor) -> Awaitable[Account]:
            return self.store.open_account(L, code, kind="member", floor=floor, idempotency_key=key)

        account = self.run(again())
        assert account == Account(L, code, "member", floor, 0)
        self.balances[code], self.floors[code] = 0, floor
        self.record(key, again, lambda: again(-1 if floor is None else None), account)
        return code

    @precondition(lambda self: len(self.floors) > 2)
    @rule(target=transfers, pick=st.integers(0, MAX_ACCOUNTS), amount=st.integers(1, 400))
    def issue(self, pick: int, amount: int) -> Any:
        return self.transfer(BANK, pick, amount)  # members are listed in the order opened

    @precondition(lambda self: len(self.floors) > 2)
    @rule(
        target=transfers,
        src=accounts,
        pick=st.integers(0, MAX_ACCOUNTS),
        amount=st.integers(1, 200),
    )
    def transfer(self, src: str, pick: int, amount: int) -> Any:
        key = self.key()
        [dst] = self.others(src, pick)

        def again(amount: int = amount) -> Awaitable[Entry]:
            return self.store.transfer(L, [(src, -amount), (dst, amount)], idempotency_key=key)

        if self.breaches([(src, -amount)]):
            self.refused(FloorBreached, again, key)
            return multiple()
        entry = self.run(again())
        self.appended(entry, EntryKind.TRANSFER, {src: -amount, dst: amount})
        self.record(key, again, lambda: again(amount + 1), entry)
        return entry.seq

    @precondition(lambda self: len(self.floors) > 3)
    @rule(
        target=transfers,
        src=accounts,
        pick=st.integers(0, MAX_ACCOUNTS),
        amount_a=st.integers(1, 100),
        amount_b=st.integers(1, 100),
    )
    def split(self, src: str, pick: int, amount_a: int, amount_b: int) -> Any:
        key = self.key()
        a, b = self.others(src, pick, 2)
        postings = [(src, -amount_a - amount_b), (a, amount_a), (b, amount_b)]

        def again(meta: dict[str, str] | None = None) -> Awaitable[Entry]:
            return self.store.transfer(L, postings, meta=meta, idempotency_key=key)

        if self.breaches(postings[:1]):
            self.refused(FloorBreached, again, key)
            return multiple()
        entry = self.run(again())
        self.appended(entry, EntryKind.TRANSFER, dict(postings))
        self.record(key, again, lambda: again({"note": "different"}), entry)
        return entry.seq

    @rule(
        src=accounts,
        pick=st.integers(0, MAX_ACCOUNTS),
        amount=st.sampled_from([1.5, 2.0, True, 0, 10**9 + 1, -(10**9) - 1]),
        same=st.booleans(),
    )
    def bad_request(self, src: str, pick: int, amount: Any, same: bool) -> None:
        """Malformed input is refused (InvalidRequest), remembered nowhere, and changes nothing."""
        key = self.key()
        if same:  # one account twice, or a reservation to itself
            self.refused(
                InvalidRequest,
                lambda: self.store.transfer(L, [(src, -1), (src, 1)], idempotency_key=key),
            )
            expires = from_us(self.clock() + 60_000_000)
            self.refused(
                InvalidRequest,
                lambda: self.store.reserve(
                    L, debit=src, target=src, amount=1, expires_at=expires, idempotency_key=key
                ),
            )
        else:
            dst = self.others(src, pick)[0] if len(self.floors) > 2 else BANK
            self.refused(
                InvalidRequest,
                lambda: self.store.transfer(L, [(src, -1), (dst, amount)], idempotency_key=key),
            )

    @rule(seq=transfers)
    def reverse(self, seq: int) -> None:
        key = self.key()

        def again(meta: dict[str, str] | None = None) -> Awaitable[Entry]:
            return self.store.reverse(L, seq, meta=meta, idempotency_key=key)

        if seq in self.reversed:
            self.refused(Conflict, again, key)
            return
        original = self.run(self.store.entry(L, seq))
        assert original.kind is EntryKind.TRANSFER
        negated = [(p.account, -p.amount) for p in original.postings]
        if self.breaches(negated):
            self.refused(FloorBreached, again, key)
            return
        entry = self.run(again())
        assert entry.ref == seq
        assert entry.postings == tuple(Posting(a, n) for a, n in negated)
        self.appended(entry, EntryKind.REVERSE, dict(negated))
        self.reversed.add(seq)
        self.record(key, again, lambda: again({"note": "different"}), entry)

    @rule(seq=reservations)
    def reverse_a_reservation(self, seq: int) -> None:
        key = self.key()
        self.refused(Conflict, lambda: self.store.reverse(L, seq, idempotency_key=key), key)

    # ---- reservations --------------------------------------------------------------------------

    @precondition(lambda self: len(self.floors) > 2)
    @rule(
        target=reservations,
        debit=accounts,
        pick=st.integers(0, MAX_ACCOUNTS),
        amount=st.integers(1, 200),
        ttl=st.sampled_from([1, 60, 600, 3600]),
    )
    def reserve(self, debit: str, pick: int, amount: int, ttl: int) -> Any:
        key = self.key()
        [dst] = self.others(debit, pick)
        expires_us = self.clock() + ttl * 1_000_000

        def again(amount: int = amount) -> Awaitable[Entry]:
            return self.store.reserve(
                L,
                debit=debit,
                target=dst,
                amount=amount,
                expires_at=from_us(expires_us),
                idempotency_key=key,
            )

        if self.breaches([(debit, -amount)]):
            self.refused(FloorBreached, again, key)
            return multiple()
        entry = self.run(again())
        assert (entry.target, entry.expires_us) == (dst, expires_us)
        self.appended(entry, EntryKind.RESERVE, {debit: -amount, RESERVED_ACCOUNT: amount})
        self.pending[entry.seq] = Held(debit, dst, amount, expires_us)
        self.reserved_from.add(debit)
        self.record(key, again, lambda: again(amount + 1), entry)
        return entry.seq

    def resolve(self, seq: int, kind: EntryKind) -> None:
        key = self.key()
        post = kind is EntryKind.POST

        def again(post: bool = post) -> Awaitable[Entry]:
            if post:
                return self.store.post(L, seq, idempotency_key=key)
            return self.store.void(L, seq, idempotency_key=key)

        held = self.pending.get(seq)
        if held is None or (post and self.clock() >= held.expires_us):
            self.refused(Conflict, again, key)  # resolved already, or too late to settle
            return
        entry = self.run(again())
        assert entry.ref == seq
        to = held.target if post else held.debit
        self.appended(entry, kind, {RESERVED_ACCOUNT: -held.amount, to: held.amount})
        del self.pending[seq]
        self.resolved.add(seq)
        self.record(key, again, lambda: again(not post), entry)
        state = self.run(self.store.reservation(L, seq))
        assert (state.state, state.resolved_by) == ("posted" if post else "voided", entry.seq)

    @rule(seq=reservations)
    def post(self, seq: int) -> None:
        self.resolve(seq, EntryKind.POST)

    @rule(seq=reservations)
    def void(self, seq: int) -> None:
        self.resolve(seq, EntryKind.VOID)

    @precondition(lambda self: bool(self.pending))
    @rule(pick=st.integers(0, 100), post=st.booleans())
    def settle_a_pending_reservation(self, pick: int, post: bool) -> None:
        seq = sorted(self.pending)[pick % len(self.pending)]
        self.resolve(seq, EntryKind.POST if post else EntryKind.VOID)

    @rule(seconds=st.sampled_from([1, 30, 60, 600, 3600]))
    def advance_clock(self, seconds: int) -> None:
        self.clock.advance(seconds)

    def expired_now(self, seq: int, entry: Entry) -> None:
        held = self.pending.pop(seq)
        assert entry.ref == seq and entry.time_us >= held.expires_us
        self.appended(
            entry, EntryKind.EXPIRE, {RESERVED_ACCOUNT: -held.amount, held.debit: held.amount}
        )
        self.resolved.add(seq)
        self.expired[seq] = entry
        self.record(f"ledger:expire:{seq}", lambda: self.store.expire(L, seq), None, entry)

    @rule(seq=reservations)
    def expire(self, seq: int) -> None:
        held = self.pending.get(seq)
        if seq in self.expired:  # expiring is idempotent by sequence number
            assert self.run(self.store.expire(L, seq)) == self.expired[seq]
        elif held is None:
            self.refused(Conflict, lambda: self.store.expire(L, seq))
        elif self.clock() >= held.expires_us:
            self.expired_now(seq, self.run(self.store.expire(L, seq)))
        else:  # not due yet: refused, and not remembered, so it can expire once due
            self.refused(NotYetDue, lambda: self.store.expire(L, seq))

    @rule()
    def expire_due(self) -> None:
        now = self.clock()
        due = sorted(seq for seq, held in self.pending.items() if held.expires_us <= now)
        done = self.run(self.store.expire_due(L, now=from_us(now)))
        assert [e.ref for e in done] == due
        for entry in done:
            self.expired_now(entry.ref, entry)

    # ---- keys and checkpoints --------------------------------------------------------------------

    @rule()
    def rotate_key(self) -> None:
        key = self.key()
        new = self.run(self.store.rotate_key(L, idempotency_key=key))
        assert new.signer_key_id == self.keys[-1].key_id
        assert new.from_seq == len(self.hashes) + 1
        assert new.key_id not in {k.key_id for k in self.keys}
        self.keys.append(new)
        published = self.run(self.store.public_keys(L))
        assert published == self.keys
        assert key_list_problem(published) is None
        self.record(
            key,
            lambda: self.store.rotate_key(L, idempotency_key=key),
            lambda: self.store.checkpoint(L, idempotency_key=key),
            new,
        )

    @rule()
    def checkpoint(self) -> None:
        key = self.key()
        cp = self.run(self.store.checkpoint(L, idempotency_key=key))
        size = len(self.hashes)
        assert cp.size == size
        assert cp.root == root_of(self.hashes)
        same_size = [c for c in self.checkpoints if c.size == size]
        if same_size:
            assert cp == same_size[0]
        else:
            self.checkpoints.append(cp)
        keys = self.run(self.store.public_keys(L))
        earlier = [c for c in self.checkpoints if 0 < c.size < size]
        if earlier:
            old = earlier[-1]
            proof = self.run(self.store.consistency_proof(L, old.size, size))
            assert consistency_problem(keys, old, cp, proof) is None
        if size:
            for seq in {1, (size + 1) // 2, size}:
                receipt = self.run(self.store.receipt(L, seq, size=size))
                assert receipt.entry.hash == self.hashes[seq - 1]
                assert receipt_problem(receipt, keys) is None
        self.record(
            key,
            lambda: self.store.checkpoint(L, idempotency_key=key),
            lambda: self.store.rotate_key(L, idempotency_key=key),
            cp,
        )

    # ---- retries -------------------------------------------------------------------------------

    @precondition(lambda self: bool(self.sent))
    @rule(pick=st.integers(min_value=0))
    def retry_same(self, pick: int) -> None:
        sent = self.sent[pick % len(self.sent)]
        if isinstance(sent.result, type):  # a remembered refusal is given again
            self.refused(sent.result, sent.again)
            return
        again = self.run(sent.again())
        assert again == sent.result, sent.key  # the original answer, whatever happened since

    @precondition(lambda self: any(s.different for s in self.sent))
    @rule(pick=st.integers(min_value=0))
    def retry_different(self, pick: int) -> None:
        choices = [s for s in self.sent if s.different is not None]
        sent = choices[pick % len(choices)]
        assert sent.different is not None
        self.refused(IdempotencyConflict, sent.different)

    # ---- invariants --------------------------------------------------------------------------

    @invariant()
    def balances_match_the_model_and_sum_to_zero(self) -> None:
        accounts = self.run(self.store.accounts(L))
        got = {a.code: a.balance for a in accounts}
        assert got == self.balances
        assert sum(got.values()) == 0
        assert {a.code: a.floor for a in accounts} == self.floors

    @invariant()
    def no_balance_below_its_floor(self) -> None:
        for code, floor in self.floors.items():
            assert floor is None or self.balances[code] >= floor, code

    @invariant()
    def pending_reservations_are_counted(self) -> None:
        held: dict[str, int] = {}
        for h in self.pending.values():
            held[h.debit] = held.get(h.debit, 0) + h.amount
        assert self.balances[RESERVED_ACCOUNT] == sum(held.values())
        # the accounts that ever had a reservation (the query is slow; the others hold none)
        for code in self.reserved_from:
            assert self.run(self.store.pending(L, code)) == held.get(code, 0), code

    @invariant()
    def sequence_is_gapless_and_hash_linked_and_unchanged(self) -> None:
        if self.closed:
            return
        with self.reader.connect() as con:
            rows = con.execute(
                text("SELECT seq, prev_hash, hash FROM entries WHERE ledger_id = :l ORDER BY seq"),
                {"l": L},
            ).all()
            head = con.execute(text("SELECT head_seq FROM ledgers WHERE id = :l"), {"l": L}).first()
        found = [(seq, bytes(prev), bytes(digest)) for seq, prev, digest in rows]
        assert [seq for seq, _, _ in found] == list(range(1, len(self.hashes) + 1))
        assert [h for _, _, h in found] == self.hashes
        assert [p for _, p, _ in found] == [ZERO_HASH, *self.hashes[:-1]][: len(found)]
        assert head is not None and head[0] == len(self.hashes)

    # ---- teardown ------------------------------------------------------------------------------

    def teardown(self) -> None:
        try:
            self.run(self.store.close())
            self.closed = True
            url = self.url if SERVER_URL else sqlite_url(str(self.db), read_only=True)
            report = self.run(verify_database(url, workers=1))
            assert report.ok, report.summary()
            assert report.entries == len(self.hashes)
        finally:
            self.loop.close()
            self.reader.dispose()
            if SERVER_URL:
                self.databases.close()
            shutil.rmtree(self.dir, ignore_errors=True)


def test_ledger_state_machine() -> None:
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=25,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
