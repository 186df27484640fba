"""LedgerStore's behaviour, one test per behaviour, each against a real SQLite file.

Every test is followed by a full `verify_database` of its file (the autouse fixture below), so
each scenario also proves the chain, signatures, balances, floors and checkpoints still verify.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

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
    consistency_problem,
    from_us,
    key_list_problem,
    receipt_problem,
    verify_database,
)
from ledger.storage import sqlite_url
from tests.conftest import SERVER_URL, Clock, count_rows

pytestmark = pytest.mark.both_backends
L = "scheme"
MINUTE_US = 60_000_000
TABLES = (
    "ledgers",
    "ledger_keys",
    "accounts",
    "entries",
    "postings",
    "merkle_nodes",
    "checkpoints",
    "idempotency_keys",
)
APPEND_ONLY = ("entries", "postings", "checkpoints", "ledger_keys", "merkle_nodes")


# ---- helpers --------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
async def _verified_afterwards(db_url: str, db_path: Path) -> AsyncIterator[None]:
    """After each scenario (and after the store has closed) the whole database verifies."""
    yield
    if SERVER_URL:
        report = await verify_database(db_url, workers=1)
        assert report.ok, report.summary()
    elif await asyncio.to_thread(db_path.exists):
        report = await verify_database(sqlite_url(str(db_path), read_only=True), workers=1)
        assert report.ok, report.summary()


@pytest.fixture
async def ready(store: LedgerStore) -> LedgerStore:
    """A ledger with an issuance account (no floor) and two members (floor 0); alice holds 100."""
    await store.create_ledger(L, idempotency_key="create")
    await store.open_account(L, "bank", kind="issuance", floor=None, idempotency_key="open-bank")
    await store.open_account(L, "alice", kind="member", floor=0, idempotency_key="open-alice")
    await store.open_account(L, "bob", kind="member", floor=0, idempotency_key="open-bob")
    await store.transfer(L, [("bank", -100), ("alice", 100)], idempotency_key="issue-alice")
    return store


def rows(db_url: str, *, answers: bool = True) -> dict[str, int]:
    """Row counts of every ledger table, the heads, and the stored balances.

    `answers=False` leaves out the idempotency table: a refusal that depends on the ledger's
    state (Conflict, FloorBreached, NotFound) is remembered there so a retry gets it again.
    """
    tables = TABLES if answers else tuple(t for t in TABLES if t != "idempotency_keys")
    found = count_rows(db_url, {
        **{t: f"SELECT count(*) FROM {t}" for t in tables},
        "heads": "SELECT 'head:' || id, head_seq FROM ledgers",
        "balances": "SELECT 'balance:' || ledger_id || ':' || code, balance FROM accounts",
    })  # fmt: skip
    out = {t: int(found[t][0][0]) for t in tables}
    for name, value in found["heads"] + found["balances"]:
        out[str(name)] = int(value)
    return out


def key_files(key_dir: Path) -> int:
    return sum(1 for _ in key_dir.rglob("*.ed25519")) if key_dir.exists() else 0


async def balance(store: LedgerStore, code: str) -> int:
    return (await store.account(L, code)).balance


async def balances(store: LedgerStore) -> dict[str, int]:
    return {a.code: a.balance for a in await store.accounts(L)}


def later(clock: Clock, minutes: int) -> datetime:
    return from_us(clock() + minutes * MINUTE_US)


# ---- invariant 1: integer minutes, zero-sum entries ----------------------------------------


async def test_entry_postings_sum_to_zero_and_move_balances(ready: LedgerStore) -> None:
    entry = await ready.transfer(
        L, [("alice", -30), ("bob", 20), ("bank", 10)], idempotency_key="split"
    )
    assert entry.kind is EntryKind.TRANSFER
    assert sum(p.amount for p in entry.postings) == 0
    assert {p.account: p.amount for p in entry.postings} == {"alice": -30, "bob": 20, "bank": 10}
    assert await balances(ready) == {"alice": 70, "bob": 20, "bank": -90, RESERVED_ACCOUNT: 0}
    assert sum((await balances(ready)).values()) == 0


async def test_unbalanced_postings_are_refused_naming_postings(
    ready: LedgerStore, db_url: str
) -> None:
    before = rows(db_url)
    with pytest.raises(InvalidRequest) as err:
        await ready.transfer(L, [("alice", -30), ("bob", 20)], idempotency_key="unbalanced")
    assert err.value.field == "postings"
    assert rows(db_url) == before


@pytest.mark.parametrize(
    "amount",
    [1.5, 30.0, True, 0, 10**9 + 1, -(10**9) - 1, "30", None],
    ids=["float", "integral-float", "bool", "zero", "too-big", "too-small", "str", "none"],
)
async def test_transfer_amount_must_be_non_zero_bounded_integer_minutes(
    ready: LedgerStore, db_url: str, amount: Any
) -> None:
    before = rows(db_url)
    with pytest.raises(InvalidRequest) as err:
        await ready.transfer(L, [("alice", -30), ("bob", amount)], idempotency_key="bad-amount")
    assert err.value.field == "postings[1].amount"
    assert rows(db_url) == before


@pytest.mark.parametrize(
    "amount",
    [1.5, 30.0, True, 0, -5, 10**9 + 1],
    ids=["float", "integral-float", "bool", "zero", "negative", "too-big"],
)
async def test_reserve_amount_must_be_positive_bounded_integer_minutes(
    ready: LedgerStore, clock: Clock, db_url: str, amount: Any
) -> None:
    before = rows(db_url)
    with pytest.raises(InvalidRequest) as err:
        await ready.reserve(
            L,
            debit="alice",
            target="bob",
            amount=amount,
            expires_at=later(clock, 5),
            idempotency_key="bad-reserve",
        )
    assert err.value.field == "amount"
    assert rows(db_url) == before


@pytest.mark.parametrize("floor", [1.5, True, 10**9 + 1], ids=["float", "bool", "too-big"])
async def test_floor_must_be_bounded_integer_minutes(
    ready: LedgerStore, db_url: str, floor: Any
) -> None:
    before = rows(db_url)
    with pytest.raises(InvalidRequest) as err:
        await ready.open_account(L, "carol", kind="member", floor=floor, idempotency_key="carol")
    assert err.value.field == "floor"
    assert rows(db_url) == before


async def test_amounts_are_stored_as_integers(ready: LedgerStore, db_url: str) -> None:
    await ready.transfer(L, [("alice", -7), ("bob", 7)], idempotency_key="seven")
    typeof = "pg_typeof" if SERVER_URL else "typeof"
    found = count_rows(db_url, {
        "p": f"SELECT DISTINCT {typeof}(amount) FROM postings",
        "a": f"SELECT DISTINCT {typeof}(balance) FROM accounts",
    })  # fmt: skip
    types = {str(t) for rows_ in found.values() for (t,) in rows_}
    assert types == ({"bigint"} if SERVER_URL else {"integer"})


async def test_one_account_may_appear_once_in_an_entry(ready: LedgerStore) -> None:
    with pytest.raises(InvalidRequest) as err:
        await ready.transfer(L, [("alice", -10), ("alice", 5), ("bob", 5)], idempotency_key="twice")
    assert err.value.field == "postings"


async def test_transfers_may_not_touch_the_ledgers_own_accounts(ready: LedgerStore) -> None:
    with pytest.raises(InvalidRequest) as err:
        await ready.transfer(L, [("alice", -10), (RESERVED_ACCOUNT, 10)], idempotency_key="at")
    assert err.value.field == "postings"
    with pytest.raises(InvalidRequest) as err:
        await ready.open_account(L, "@mine", kind="member", floor=0, idempotency_key="at-open")
    assert err.value.field == "account"


# ---- not found, conflicts --------------------------------------------------------------------


async def test_unknown_ledger_is_not_found(ready: LedgerStore, clock: Clock) -> None:
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: ready.open_account("nope", "x", kind="member", floor=0, idempotency_key="k1"),
        lambda: ready.transfer("nope", [("a", -1), ("b", 1)], idempotency_key="k2"),
        lambda: ready.reserve(
            "nope",
            debit="a",
            target="b",
            amount=1,
            expires_at=later(clock, 1),
            idempotency_key="k3",
        ),
        lambda: ready.post("nope", 1, idempotency_key="k4"),
        lambda: ready.reverse("nope", 1, idempotency_key="k5"),
        lambda: ready.checkpoint("nope", idempotency_key="k6"),
        lambda: ready.rotate_key("nope", idempotency_key="k7"),
    ]
    for call in calls:
        with pytest.raises(NotFound) as err:
            await call()
        assert err.value.field == "ledger"


async def test_unknown_account_is_not_found(ready: LedgerStore, clock: Clock) -> None:
    with pytest.raises(NotFound) as err:
        await ready.transfer(L, [("alice", -10), ("ghost", 10)], idempotency_key="ghost")
    assert err.value.field is not None and err.value.field.startswith("postings[")
    with pytest.raises(NotFound) as err:
        await ready.reserve(
            L,
            debit="alice",
            target="ghost",
            amount=5,
            expires_at=later(clock, 5),
            idempotency_key="ghost-target",
        )
    assert err.value.field == "target"
    with pytest.raises(NotFound) as err:
        await ready.account(L, "ghost")
    assert err.value.field == "account"


async def test_reserve_from_unknown_account_names_the_debit_field(
    ready: LedgerStore, clock: Clock
) -> None:
    with pytest.raises(NotFound) as err:
        await ready.reserve(
            L,
            debit="ghost",
            target="bob",
            amount=5,
            expires_at=later(clock, 5),
            idempotency_key="ghost-debit",
        )
    assert err.value.field == "debit"


async def test_unknown_entry_is_not_found(ready: LedgerStore) -> None:
    for call in (ready.post, ready.void, ready.reverse):
        with pytest.raises(NotFound) as err:
            await call(L, 999, idempotency_key=f"missing-{call.__name__}")
        assert err.value.field == "ref"
    with pytest.raises(NotFound):
        await ready.expire(L, 999)
    with pytest.raises(NotFound):
        await ready.entry(L, 999)
    with pytest.raises(NotFound):
        await ready.reservation(L, 1)  # entry 1 exists but is a transfer


async def test_duplicate_ledger_and_account_are_conflicts(ready: LedgerStore) -> None:
    with pytest.raises(Conflict) as err:
        await ready.create_ledger(L, idempotency_key="create-again")
    assert err.value.field == "ledger"
    with pytest.raises(Conflict) as err:
        await ready.open_account(L, "alice", kind="member", floor=0, idempotency_key="alice-2")
    assert err.value.field == "account"


# ---- invariant 7: floors -------------------------------------------------------------------


async def test_floor_refuses_overdraft(ready: LedgerStore, db_url: str) -> None:
    before = rows(db_url, answers=False)
    with pytest.raises(FloorBreached) as err:
        await ready.transfer(L, [("alice", -101), ("bob", 101)], idempotency_key="overdraw")
    assert err.value.field == "alice"
    assert rows(db_url, answers=False) == before
    await ready.transfer(L, [("alice", -100), ("bob", 100)], idempotency_key="to-zero")
    assert await balance(ready, "alice") == 0


async def test_negative_floor_allows_overdraft_down_to_it(ready: LedgerStore) -> None:
    await ready.open_account(L, "carol", kind="member", floor=-30, idempotency_key="carol")
    await ready.transfer(L, [("carol", -30), ("bob", 30)], idempotency_key="carol-30")
    assert await balance(ready, "carol") == -30
    with pytest.raises(FloorBreached):
        await ready.transfer(L, [("carol", -1), ("bob", 1)], idempotency_key="carol-31")


async def test_no_floor_means_any_balance(ready: LedgerStore) -> None:
    await ready.transfer(L, [("bank", -(10**9)), ("bob", 10**9)], idempotency_key="big")
    assert await balance(ready, "bank") == -100 - 10**9


async def test_pending_reservation_counts_against_the_floor(
    ready: LedgerStore, clock: Clock
) -> None:
    await ready.reserve(
        L, debit="alice", target="bob", amount=70, expires_at=later(clock, 5), idempotency_key="r"
    )
    assert await ready.pending(L, "alice") == 70
    assert await balance(ready, "alice") == 30
    with pytest.raises(FloorBreached):
        await ready.transfer(L, [("alice", -31), ("bob", 31)], idempotency_key="too-much")
    with pytest.raises(FloorBreached):
        await ready.reserve(
            L,
            debit="alice",
            target="bob",
            amount=31,
            expires_at=later(clock, 5),
            idempotency_key="r2",
        )
    await ready.transfer(L, [("alice", -30), ("bob", 30)], idempotency_key="just-enough")
    assert await balance(ready, "alice") == 0


# ---- two-phase reservations ------------------------------------------------------------------


async def test_reserve_then_post_moves_minutes_to_the_target(
    ready: LedgerStore, clock: Clock
) -> None:
    r = await ready.reserve(
        L, debit="alice", target="bob", amount=40, expires_at=later(clock, 5), idempotency_key="r"
    )
    assert r.kind is EntryKind.RESERVE and r.target == "bob"
    assert await balances(ready) == {"alice": 60, "bob": 0, "bank": -100, RESERVED_ACCOUNT: 40}
    assert (await ready.reservation(L, r.seq)).state == "pending"
    p = await ready.post(L, r.seq, idempotency_key="p")
    assert p.kind is EntryKind.POST and p.ref == r.seq
    assert await balances(ready) == {"alice": 60, "bob": 40, "bank": -100, RESERVED_ACCOUNT: 0}
    res = await ready.reservation(L, r.seq)
    assert (res.state, res.resolved_by, res.amount, res.debit) == ("posted", p.seq, 40, "alice")
    assert await ready.pending(L, "alice") == 0


async def test_reserve_then_void_returns_the_minutes(ready: LedgerStore, clock: Clock) -> None:
    r = await ready.reserve(
        L, debit="alice", target="bob", amount=40, expires_at=later(clock, 5), idempotency_key="r"
    )
    v = await ready.void(L, r.seq, idempotency_key="v")
    assert v.kind is EntryKind.VOID and v.ref == r.seq
    assert await balances(ready) == {"alice": 100, "bob": 0, "bank": -100, RESERVED_ACCOUNT: 0}
    assert (await ready.reservation(L, r.seq)).state == "voided"


async def test_a_reservation_for_a_lifetime_expires_after_it_and_a_late_retry_repeats_it(
    ready: LedgerStore, clock: Clock
) -> None:
    def reserve() -> Awaitable[Entry]:
        return ready.reserve(L, debit="alice", target="bob", amount=40,
                             lifetime=timedelta(hours=48), idempotency_key="r")  # fmt: skip

    r = await reserve()
    assert r.expires_us == r.time_us + 48 * 3_600_000_000
    clock.advance(90)  # the client's retry comes later: the same request, the same entry
    assert (await reserve()).seq == r.seq
    with pytest.raises(InvalidRequest):
        await ready.reserve(L, debit="alice", target="bob", amount=40, lifetime=timedelta(0),
                            idempotency_key="zero")  # fmt: skip
    with pytest.raises(InvalidRequest):  # one of expires_at and lifetime, not both
        await ready.reserve(L, debit="alice", target="bob", amount=40, idempotency_key="none")


async def test_expire_is_refused_before_expiry(ready: LedgerStore, clock: Clock) -> None:
    r = await ready.reserve(
        L, debit="alice", target="bob", amount=40, expires_at=later(clock, 5), idempotency_key="r"
    )
    clock.advance(5 * 60 - 1)
    with pytest.raises(NotYetDue) as err:
        await ready.expire(L, r.seq)
    assert err.value.field == "ref"
    assert (await ready.reservation(L, r.seq)).state == "pending"
    assert await balance(ready, "alice") == 60


async def test_expire_is_allowed_at_expiry_and_is_idempotent(
    ready: LedgerStore, clock: Clock
) -> None:
    r = await ready.reserve(
        L, debit="alice", target="bob", amount=40, expires_at=later(clock, 5), idempotency_key="r"
    )
    clock.advance(5 * 60)
    e = await ready.expire(L, r.seq)
    assert e.kind is EntryKind.EXPIRE and e.ref == r.seq and e.time_us >= r.expires_us
    assert await balance(ready, "alice") == 100
    assert (await ready.reservation(L, r.seq)).state == "expired"
    assert await ready.expire(L, r.seq) == e  # expiring is idempotent


async def test_premature_expire_does_not_block_expiry_once_due(
    ready: LedgerStore, clock: Clock
) -> None:
    r = await ready.reserve(
        L, debit="alice", target="bob", amount=40, expires_at=later(clock, 5), idempotency_key="r"
    )
    with pytest.raises(NotYetDue):
        await ready.expire(L, r.seq)
    clock.advance(5 * 60)
    done = await ready.expire_due(L, now=from_us(clock()))
    assert [e.ref for e in done] == [r.seq]
    assert (await ready.reservation(L, r.seq)).state == "expired"


async def test_expire_due_expires_only_due_reservations(ready: LedgerStore, clock: Clock) -> None:
    made = [
        await ready.reserve(
            L,
            debit="alice",
            target="bob",
            amount=10,
            expires_at=later(clock, minutes),
            idempotency_key=f"r{minutes}",
        )
        for minutes in (1, 2, 10)
    ]
    clock.advance(2 * 60)
    done = await ready.expire_due(L, now=from_us(clock()))
    assert [e.ref for e in done] == [made[0].seq, made[1].seq]
    assert all(e.kind is EntryKind.EXPIRE for e in done)
    assert (await ready.reservation(L, made[2].seq)).state == "pending"
    assert await ready.pending(L, "alice") == 10
    assert await ready.expire_due(L, now=from_us(clock())) == []


async def test_client_idempotency_key_cannot_block_an_expiry(
    ready: LedgerStore, clock: Clock
) -> None:
    with pytest.raises(InvalidRequest) as err:  # the ledger's own keys are not for clients
        await ready.transfer(L, [("bank", -1), ("bob", 1)], idempotency_key="ledger:expire:3")
    assert err.value.field == "idempotency_key"
    await ready.transfer(L, [("bank", -1), ("bob", 1)], idempotency_key="client:3")
    r = await ready.reserve(
        L, debit="alice", target="bob", amount=5, expires_at=later(clock, 1), idempotency_key="r"
    )
    assert r.seq == 3
    clock.advance(60)
    done = await ready.expire_due(L, now=from_us(clock()))
    assert [e.ref for e in done] == [r.seq]


async def test_reservation_is_resolved_at_most_once(ready: LedgerStore, clock: Clock) -> None:
    r = await ready.reserve(
        L, debit="alice", target="bob", amount=40, expires_at=later(clock, 5), idempotency_key="r"
    )
    p = await ready.post(L, r.seq, idempotency_key="p")
    clock.advance(10 * 60)
    calls: list[Callable[[], Awaitable[Entry]]] = [
        lambda: ready.post(L, r.seq, idempotency_key="p-again"),
        lambda: ready.void(L, r.seq, idempotency_key="v"),
        lambda: ready.expire(L, r.seq),
    ]
    for call in calls:
        with pytest.raises(Conflict) as err:
            await call()
        assert err.value.field == "ref"
    assert (await ready.reservation(L, r.seq)).resolved_by == p.seq
    assert await balance(ready, "bob") == 40


async def test_only_reservations_can_be_posted_or_voided(ready: LedgerStore) -> None:
    with pytest.raises(Conflict):
        await ready.post(L, 1, idempotency_key="post-transfer")
    with pytest.raises(Conflict):
        await ready.void(L, 1, idempotency_key="void-transfer")


async def test_reservation_needs_future_expiry_and_distinct_target(
    ready: LedgerStore, clock: Clock
) -> None:
    with pytest.raises(InvalidRequest) as err:
        await ready.reserve(
            L,
            debit="alice",
            target="bob",
            amount=5,
            expires_at=from_us(clock()),
            idempotency_key="past",
        )
    assert err.value.field == "expires_at"
    with pytest.raises(InvalidRequest) as err:
        await ready.reserve(
            L,
            debit="alice",
            target="alice",
            amount=5,
            expires_at=later(clock, 5),
            idempotency_key="self",
        )
    assert err.value.field == "target"


# ---- reversal ------------------------------------------------------------------------------


async def test_reversal_is_the_exact_negation_naming_the_entry(ready: LedgerStore) -> None:
    t = await ready.transfer(L, [("alice", -30), ("bob", 20), ("bank", 10)], idempotency_key="t")
    before = await ready.transfer(L, [("bank", -1), ("bob", 1)], idempotency_key="other")
    assert before.seq == t.seq + 1
    r = await ready.reverse(L, t.seq, meta={"reason": "logged twice"}, idempotency_key="rev")
    assert r.kind is EntryKind.REVERSE and r.ref == t.seq
    assert r.postings == tuple(Posting(p.account, -p.amount) for p in t.postings)
    assert dict(r.meta) == {"reason": "logged twice"}
    assert await balances(ready) == {"alice": 100, "bob": 1, "bank": -101, RESERVED_ACCOUNT: 0}


async def test_reversal_happens_at_most_once(ready: LedgerStore) -> None:
    t = await ready.transfer(L, [("alice", -30), ("bob", 30)], idempotency_key="t")
    r = await ready.reverse(L, t.seq, idempotency_key="rev")
    with pytest.raises(Conflict) as err:
        await ready.reverse(L, t.seq, idempotency_key="rev-again")
    assert err.value.field == "ref"
    assert str(r.seq) in err.value.message


async def test_only_transfers_can_be_reversed(ready: LedgerStore, clock: Clock) -> None:
    t = await ready.transfer(L, [("alice", -30), ("bob", 30)], idempotency_key="t")
    rev = await ready.reverse(L, t.seq, idempotency_key="rev")
    r1 = await ready.reserve(
        L, debit="alice", target="bob", amount=5, expires_at=later(clock, 5), idempotency_key="r1"
    )
    r2 = await ready.reserve(
        L, debit="alice", target="bob", amount=5, expires_at=later(clock, 5), idempotency_key="r2"
    )
    p = await ready.post(L, r1.seq, idempotency_key="p")
    v = await ready.void(L, r2.seq, idempotency_key="v")
    for seq in (rev.seq, r1.seq, p.seq, v.seq):
        with pytest.raises(Conflict) as err:
            await ready.reverse(L, seq, idempotency_key=f"reverse-{seq}")
        assert err.value.field == "ref"


async def test_pending_reservation_cannot_be_reversed(ready: LedgerStore, clock: Clock) -> None:
    r = await ready.reserve(
        L, debit="alice", target="bob", amount=5, expires_at=later(clock, 5), idempotency_key="r"
    )
    with pytest.raises(Conflict):
        await ready.reverse(L, r.seq, idempotency_key="reverse-pending")
    assert (await ready.reservation(L, r.seq)).state == "pending"


async def test_reversal_that_would_break_a_floor_is_refused(ready: LedgerStore) -> None:
    t = await ready.transfer(L, [("alice", -100), ("bob", 100)], idempotency_key="t")
    await ready.transfer(L, [("bob", -100), ("bank", 100)], idempotency_key="spent")
    with pytest.raises(FloorBreached) as err:
        await ready.reverse(L, t.seq, idempotency_key="rev")
    assert err.value.field == "bob"


# ---- invariant 8: idempotency ----------------------------------------------------------------

Call = Callable[[], Awaitable[object]]
Scenario = Callable[[LedgerStore, Clock], Awaitable[tuple[Call, Call]]]


async def _create_ledger(s: LedgerStore, c: Clock) -> tuple[Call, Call]:
    return (
        lambda: s.create_ledger("other", idempotency_key="k"),
        lambda: s.create_ledger("another", idempotency_key="k"),
    )


async def _open_account(s: LedgerStore, c: Clock) -> tuple[Call, Call]:
    return (
        lambda: s.open_account(L, "carol", kind="member", floor=0, idempotency_key="k"),
        lambda: s.open_account(L, "carol", kind="member", floor=-60, idempotency_key="k"),
    )


async def _transfer(s: LedgerStore, c: Clock) -> tuple[Call, Call]:
    return (
        lambda: s.transfer(L, [("alice", -10), ("bob", 10)], idempotency_key="k"),
        lambda: s.transfer(L, [("alice", -11), ("bob", 11)], idempotency_key="k"),
    )


async def _reserve(s: LedgerStore, c: Clock) -> tuple[Call, Call]:
    at = later(c, 5)
    return (
        lambda: s.reserve(
            L, debit="alice", target="bob", amount=10, expires_at=at, idempotency_key="k"
        ),
        lambda: s.reserve(
            L, debit="alice", target="bob", amount=10, expires_at=later(c, 6), idempotency_key="k"
        ),
    )


async def _two_reservations(s: LedgerStore, c: Clock) -> tuple[int, int]:
    a = await s.reserve(
        L, debit="alice", target="bob", amount=10, expires_at=later(c, 5), idempotency_key="ra"
    )
    b = await s.reserve(
        L, debit="alice", target="bob", amount=10, expires_at=later(c, 5), idempotency_key="rb"
    )
    return a.seq, b.seq


async def _post(s: LedgerStore, c: Clock) -> tuple[Call, Call]:
    a, b = await _two_reservations(s, c)
    return (
        lambda: s.post(L, a, idempotency_key="k"),
        lambda: s.post(L, b, idempotency_key="k"),
    )


async def _void(s: LedgerStore, c: Clock) -> tuple[Call, Call]:
    a, _ = await _two_reservations(s, c)
    return (
        lambda: s.void(L, a, idempotency_key="k"),
        lambda: s.post(L, a, idempotency_key="k"),
    )


async def _reverse(s: LedgerStore, c: Clock) -> tuple[Call, Call]:
    t = await s.transfer(L, [("alice", -10), ("bob", 10)], idempotency_key="t")
    return (
        lambda: s.reverse(L, t.seq, idempotency_key="k"),
        lambda: s.reverse(L, t.seq, meta={"why": "changed"}, idempotency_key="k"),
    )


async def _rotate_key(s: LedgerStore, c: Clock) -> tuple[Call, Call]:
    return (
        lambda: s.rotate_key(L, idempotency_key="k"),
        lambda: s.checkpoint(L, idempotency_key="k"),
    )


async def _checkpoint(s: LedgerStore, c: Clock) -> tuple[Call, Call]:
    return (
        lambda: s.checkpoint(L, idempotency_key="k"),
        lambda: s.rotate_key(L, idempotency_key="k"),
    )


SCENARIOS: dict[str, Scenario] = {
    "create_ledger": _create_ledger,
    "open_account": _open_account,
    "transfer": _transfer,
    "reserve": _reserve,
    "post": _post,
    "void": _void,
    "reverse": _reverse,
    "rotate_key": _rotate_key,
    "checkpoint": _checkpoint,
}


async def _first_then_more(
    ready: LedgerStore, clock: Clock, kind: str
) -> tuple[Call, Call, object]:
    same, different = await SCENARIOS[kind](ready, clock)
    first = await same()
    # later writes move the head and balances; a retry must still answer as the first time
    await ready.transfer(L, [("bank", -5), ("bob", 5)], idempotency_key="after")
    clock.advance(1)
    return same, different, first


@pytest.mark.parametrize("kind", list(SCENARIOS))
async def test_same_key_same_request_returns_the_original_and_writes_nothing(
    ready: LedgerStore, clock: Clock, db_url: str, key_dir: Path, kind: str
) -> None:
    same, _, first = await _first_then_more(ready, clock, kind)
    before, keys_before = rows(db_url), key_files(key_dir)
    again = await same()
    if isinstance(first, Account):  # see test_retried_open_account_returns_the_original_account
        assert isinstance(again, Account)
        again = dataclasses.replace(again, balance=first.balance)
    assert again == first
    assert rows(db_url) == before
    assert key_files(key_dir) == keys_before


@pytest.mark.parametrize("kind", SCENARIOS)
async def test_same_key_different_request_is_refused_and_writes_nothing(
    ready: LedgerStore, clock: Clock, db_url: str, key_dir: Path, kind: str
) -> None:
    _, different, _ = await _first_then_more(ready, clock, kind)
    before, keys_before = rows(db_url), key_files(key_dir)
    with pytest.raises(IdempotencyConflict) as err:
        await different()
    assert err.value.field == "idempotency_key"
    assert rows(db_url) == before
    assert key_files(key_dir) == keys_before


async def test_retried_open_account_returns_the_original_account(ready: LedgerStore) -> None:
    first = await ready.open_account(L, "carol", kind="member", floor=0, idempotency_key="k")
    await ready.transfer(L, [("bank", -5), ("carol", 5)], idempotency_key="pay-carol")
    assert (
        await ready.open_account(L, "carol", kind="member", floor=0, idempotency_key="k") == first
    )


async def test_concurrent_duplicates_write_once(ready: LedgerStore, db_url: str) -> None:
    before = rows(db_url)["entries"]
    got = await asyncio.gather(
        *(
            ready.transfer(L, [("alice", -10), ("bob", 10)], idempotency_key="dup")
            for _ in range(20)
        )
    )
    assert len({e.seq for e in got}) == 1 and all(e == got[0] for e in got)
    assert rows(db_url)["entries"] == before + 1
    assert await balance(ready, "bob") == 10


async def test_state_dependent_refusal_is_remembered_under_its_key(
    ready: LedgerStore, db_url: str
) -> None:
    with pytest.raises(FloorBreached) as first:
        await ready.transfer(L, [("alice", -500), ("bob", 500)], idempotency_key="k")
    await ready.transfer(L, [("bank", -500), ("alice", 500)], idempotency_key="top-up")
    before = rows(db_url)
    with pytest.raises(FloorBreached) as again:  # the same answer, though it would pass now
        await ready.transfer(L, [("alice", -500), ("bob", 500)], idempotency_key="k")
    assert (again.value.field, again.value.message) == (first.value.field, first.value.message)
    with pytest.raises(IdempotencyConflict):
        await ready.transfer(L, [("alice", -400), ("bob", 400)], idempotency_key="k")
    assert rows(db_url) == before
    assert await balance(ready, "bob") == 0


async def test_invalid_request_does_not_use_up_its_key(ready: LedgerStore, db_url: str) -> None:
    before = rows(db_url)
    with pytest.raises(InvalidRequest):
        await ready.transfer(L, [("alice", -5), ("bob", 4)], idempotency_key="k")
    assert rows(db_url) == before
    done = await ready.transfer(L, [("alice", -5), ("bob", 5)], idempotency_key="k")
    assert await ready.transfer(L, [("alice", -5), ("bob", 5)], idempotency_key="k") == done


async def test_idempotency_key_must_be_printable_ascii(ready: LedgerStore) -> None:
    for key in ("", "has space", "é", "x" * 256):
        with pytest.raises(InvalidRequest) as err:
            await ready.transfer(L, [("alice", -1), ("bob", 1)], idempotency_key=key)
        assert err.value.field == "idempotency_key"


async def test_retry_after_reopening_returns_the_original_result(
    db_url: str, key_dir: Path, clock: Clock
) -> None:
    url = db_url
    async with await LedgerStore.open(url, KeyRing(key_dir), clock=clock) as s:
        created = await s.create_ledger(L, idempotency_key="create")
        await s.open_account(L, "bank", kind="issuance", floor=None, idempotency_key="o1")
        await s.open_account(L, "bob", kind="member", floor=0, idempotency_key="o2")
        t = await s.transfer(L, [("bank", -10), ("bob", 10)], idempotency_key="t")
        at = later(clock, 5)
        r = await s.reserve(
            L, debit="bob", target="bank", amount=4, expires_at=at, idempotency_key="r"
        )
        with pytest.raises(FloorBreached):
            await s.transfer(L, [("bob", -50), ("bank", 50)], idempotency_key="over")
        cp = await s.checkpoint(L, idempotency_key="cp")
        key = await s.rotate_key(L, idempotency_key="rot")
    before = rows(db_url)
    clock.advance(60)
    async with await LedgerStore.open(url, KeyRing(key_dir), clock=clock) as s:
        assert await s.transfer(L, [("bank", -10), ("bob", 10)], idempotency_key="t") == t
        again = await s.reserve(
            L, debit="bob", target="bank", amount=4, expires_at=at, idempotency_key="r"
        )
        assert again == r
        assert await s.checkpoint(L, idempotency_key="cp") == cp
        assert await s.rotate_key(L, idempotency_key="rot") == key
        assert await s.create_ledger(L, idempotency_key="create") == created
        with pytest.raises(IdempotencyConflict):
            await s.transfer(L, [("bank", -11), ("bob", 11)], idempotency_key="t")
        assert rows(db_url) == before
        await s.transfer(L, [("bank", -90), ("bob", 90)], idempotency_key="top-up")
        after = rows(db_url)
        with pytest.raises(FloorBreached):  # remembered, though bob could afford it now
            await s.transfer(L, [("bob", -50), ("bank", 50)], idempotency_key="over")
    assert rows(db_url) == after


async def test_reserve_resolve_and_reverse_work_after_reopening(
    db_url: str, key_dir: Path, clock: Clock
) -> None:
    url = db_url

    def reopen() -> Awaitable[LedgerStore]:
        return LedgerStore.open(url, KeyRing(key_dir), clock=clock)

    async with await reopen() as s:
        await s.create_ledger(L, idempotency_key="create")
        await s.open_account(L, "bank", kind="issuance", floor=None, idempotency_key="o1")
        await s.open_account(L, "bob", kind="member", floor=0, idempotency_key="o2")
        await s.transfer(L, [("bank", -60), ("bob", 60)], idempotency_key="t")
        t = await s.transfer(L, [("bank", -10), ("bob", 10)], idempotency_key="t2")
        r1 = await s.reserve(
            L,
            debit="bob",
            target="bank",
            amount=5,
            expires_at=later(clock, 10),
            idempotency_key="r1",
        )
        r2 = await s.reserve(
            L,
            debit="bob",
            target="bank",
            amount=5,
            expires_at=later(clock, 1),
            idempotency_key="r2",
        )
        r3 = await s.reserve(
            L,
            debit="bob",
            target="bank",
            amount=5,
            expires_at=later(clock, 1),
            idempotency_key="r3",
        )
    clock.advance(120)
    async with await reopen() as s:
        await s.reserve(
            L,
            debit="bob",
            target="bank",
            amount=5,
            expires_at=later(clock, 1),
            idempotency_key="r4",
        )
    async with await reopen() as s:
        await s.post(L, r1.seq, idempotency_key="p")
    async with await reopen() as s:
        await s.void(L, r2.seq, idempotency_key="v")
    async with await reopen() as s:
        await s.expire(L, r3.seq)
    async with await reopen() as s:
        await s.reverse(L, t.seq, idempotency_key="rev")
        assert await balance(s, "bob") == 60 - 5 - 5  # r1 posted, r4 pending


# ---- invariant 4: keys and rotation ----------------------------------------------------------


async def test_entries_after_rotation_carry_the_new_key_id(ready: LedgerStore) -> None:
    old = (await ready.public_keys(L))[0]
    before = await ready.transfer(L, [("alice", -1), ("bob", 1)], idempotency_key="before")
    new = await ready.rotate_key(L, idempotency_key="rotate")
    after = await ready.transfer(L, [("alice", -1), ("bob", 1)], idempotency_key="after")
    assert before.key_id == old.key_id
    assert new.key_id != old.key_id
    assert after.key_id == new.key_id
    assert new.from_seq == before.seq + 1 == after.seq


async def test_public_key_list_grows_and_each_key_is_certified_by_the_previous(
    ready: LedgerStore,
) -> None:
    first = await ready.public_keys(L)
    assert len(first) == 1 and first[0].signer_key_id == first[0].key_id
    await ready.rotate_key(L, idempotency_key="rot-1")
    await ready.transfer(L, [("alice", -1), ("bob", 1)], idempotency_key="t")
    await ready.rotate_key(L, idempotency_key="rot-2")
    keys = await ready.public_keys(L)
    assert len(keys) == 3 and keys[0] == first[0]
    assert [k.signer_key_id for k in keys] == [keys[0].key_id, keys[0].key_id, keys[1].key_id]
    assert key_list_problem(keys) is None
    forged = dataclasses.replace(keys[2], signer_key_id=keys[2].key_id)
    assert key_list_problem([*keys[:2], forged]) is not None
    resigned = dataclasses.replace(keys[1], signature=keys[2].signature)
    assert key_list_problem([keys[0], resigned, keys[2]]) is not None
    assert key_list_problem([keys[0], keys[2]]) is not None  # a key dropped from the chain


async def test_old_entries_still_verify_after_rotation(ready: LedgerStore) -> None:
    t = await ready.transfer(L, [("alice", -1), ("bob", 1)], idempotency_key="t")
    await ready.rotate_key(L, idempotency_key="rotate")
    await ready.transfer(L, [("alice", -1), ("bob", 1)], idempotency_key="t2")
    await ready.checkpoint(L, idempotency_key="cp")
    keys = await ready.public_keys(L)
    receipt = await ready.receipt(L, t.seq)
    assert receipt.entry.key_id == keys[0].key_id
    assert receipt_problem(receipt, keys) is None


# ---- invariant 5: checkpoints, receipts, consistency ----------------------------------------


async def test_receipt_verifies_offline_and_fails_if_the_entry_is_altered(
    ready: LedgerStore,
) -> None:
    t = await ready.transfer(L, [("alice", -30), ("bob", 30)], idempotency_key="t")
    for i in range(4):
        await ready.transfer(L, [("bank", -1), ("bob", 1)], idempotency_key=f"more-{i}")
    cp = await ready.checkpoint(L, idempotency_key="cp")
    keys = await ready.public_keys(L)
    receipt = await ready.receipt(L, t.seq)
    assert receipt.checkpoint == cp and receipt.entry == t
    assert receipt_problem(receipt, keys) is None
    assert receipt_problem(receipt, list(receipt.keys)) is None

    altered = dataclasses.replace(t, postings=(Posting("alice", -40), Posting("bob", 40)))
    assert receipt_problem(dataclasses.replace(receipt, entry=altered), keys) is not None
    other = await ready.entry(L, t.seq + 1)
    assert receipt_problem(dataclasses.replace(receipt, entry=other), keys) is not None
    bad_root = dataclasses.replace(cp, root=bytes(32))
    assert receipt_problem(dataclasses.replace(receipt, checkpoint=bad_root), keys) is not None
    if receipt.proof:
        bent = (bytes(32), *receipt.proof[1:])
        assert receipt_problem(dataclasses.replace(receipt, proof=bent), keys) is not None


async def test_receipt_needs_a_checkpoint_covering_the_entry(ready: LedgerStore) -> None:
    with pytest.raises(NotFound):
        await ready.receipt(L, 1)
    await ready.checkpoint(L, idempotency_key="cp")
    t = await ready.transfer(L, [("alice", -1), ("bob", 1)], idempotency_key="t")
    with pytest.raises(NotFound):
        await ready.receipt(L, t.seq)


async def test_receipt_against_an_earlier_checkpoint(ready: LedgerStore) -> None:
    cp1 = await ready.checkpoint(L, idempotency_key="cp1")
    for i in range(3):
        await ready.transfer(L, [("bank", -1), ("bob", 1)], idempotency_key=f"t{i}")
    await ready.checkpoint(L, idempotency_key="cp2")
    receipt = await ready.receipt(L, 1, size=cp1.size)
    assert receipt.checkpoint == cp1
    assert receipt_problem(receipt, await ready.public_keys(L)) is None


async def test_consistency_proof_between_two_checkpoints_verifies(ready: LedgerStore) -> None:
    for i in range(2):
        await ready.transfer(L, [("bank", -1), ("bob", 1)], idempotency_key=f"a{i}")
    old = await ready.checkpoint(L, idempotency_key="cp-old")
    await ready.rotate_key(L, idempotency_key="rotate")
    for i in range(4):
        await ready.transfer(L, [("bank", -1), ("bob", 1)], idempotency_key=f"b{i}")
    new = await ready.checkpoint(L, idempotency_key="cp-new")
    assert (old.size, new.size) == (3, 7)
    assert new.key_id != old.key_id
    keys = await ready.public_keys(L)
    proof = await ready.consistency_proof(L, old.size, new.size)
    assert consistency_problem(keys, old, new, proof) is None
    assert await ready.checkpoints(L) == [old, new]

    assert consistency_problem(keys, old, new, [bytes(32), *proof[1:]]) is not None
    forked = dataclasses.replace(new, root=bytes(32))
    assert consistency_problem(keys, old, forked, proof) is not None
    assert consistency_problem(keys, new, old, proof) is not None
    with pytest.raises(InvalidRequest):
        await ready.consistency_proof(L, new.size, new.size + 1)


async def test_checkpoint_of_an_unchanged_log_is_the_same_checkpoint(ready: LedgerStore) -> None:
    cp = await ready.checkpoint(L, idempotency_key="cp")
    assert isinstance(cp, Checkpoint) and cp.size == 1
    assert await ready.checkpoint(L, idempotency_key="cp-again") == cp
    assert await ready.checkpoints(L) == [cp]


# ---- invariant 2: append-only, enforced by the database --------------------------------------


@pytest.mark.parametrize("table", APPEND_ONLY)
@pytest.mark.parametrize(
    "statement",
    ["UPDATE {table} SET ledger_id = ledger_id", "DELETE FROM {table}"],
    ids=["update", "delete"],
)
async def test_database_refuses_update_and_delete(
    ready: LedgerStore, db_url: str, table: str, statement: str
) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.exc import DBAPIError

    from ledger.storage import to_sync_url

    for i in range(3):
        await ready.transfer(L, [("bank", -1), ("bob", 1)], idempotency_key=f"t{i}")
    await ready.checkpoint(L, idempotency_key="cp")
    await ready.rotate_key(L, idempotency_key="rotate")
    before = rows(db_url)
    engine = create_engine(to_sync_url(db_url))
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one() > 0
            with pytest.raises(DBAPIError, match="append-only"):
                conn.exec_driver_sql(statement.format(table=table))
            conn.rollback()
            if SERVER_URL:  # PostgreSQL refuses TRUNCATE too
                with pytest.raises(DBAPIError, match="append-only"):
                    conn.exec_driver_sql(f"TRUNCATE {table} CASCADE")
                conn.rollback()
    finally:
        engine.dispose()
    assert rows(db_url) == before


# ---- a scenario with everything, then a receipt for each entry -------------------------------


async def test_every_entry_of_a_busy_ledger_has_a_verifying_receipt(
    ready: LedgerStore, clock: Clock
) -> None:
    r1 = await ready.reserve(
        L, debit="alice", target="bob", amount=10, expires_at=later(clock, 1), idempotency_key="r1"
    )
    r2 = await ready.reserve(
        L, debit="alice", target="bob", amount=10, expires_at=later(clock, 1), idempotency_key="r2"
    )
    r3 = await ready.reserve(
        L, debit="alice", target="bob", amount=10, expires_at=later(clock, 1), idempotency_key="r3"
    )
    await ready.post(L, r1.seq, idempotency_key="p")
    await ready.void(L, r2.seq, idempotency_key="v")
    await ready.rotate_key(L, idempotency_key="rotate")
    clock.advance(120)
    await ready.expire(L, r3.seq)
    t = await ready.transfer(L, [("bob", -5), ("alice", 5)], idempotency_key="t")
    await ready.reverse(L, t.seq, idempotency_key="rev")
    cp = await ready.checkpoint(L, idempotency_key="cp")
    keys = await ready.public_keys(L)
    kinds = set()
    for seq in range(1, cp.size + 1):
        receipt = await ready.receipt(L, seq)
        kinds.add(receipt.entry.kind)
        assert isinstance(receipt.entry, Entry)
        assert receipt_problem(receipt, keys) is None, seq
    assert kinds == set(EntryKind)
    assert sum((await balances(ready)).values()) == 0
