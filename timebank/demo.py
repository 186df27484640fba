"""Demo ledgers: a time-credit scheme (Taff Housing style) and a person-to-person time bank."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

from ledger import Conflict, FloorBreached, LedgerStore

CREDITS = "taff-housing"
P2P = "member-to-member"
PARTNERS = ("partner:cardiff-leisure", "partner:cardiff-blues", "partner:gate-arts")
TENANTS = tuple(f"member:T{n:04d}" for n in range(1, 61))
ELDERS = tuple(f"member:E{n:04d}" for n in range(1, 41))
GROUP = 64  # steps run concurrently, so the writer can group-commit them


class SimClock:
    """A clock that starts in the past and moves forward a little with every reading."""

    def __init__(self, start: datetime, rng: random.Random) -> None:
        self.now_us = int(start.timestamp() * 1_000_000)
        self.rng = rng

    def __call__(self) -> int:
        self.now_us += self.rng.randint(1, 60) * 1_000_000
        return self.now_us

    @property
    def now(self) -> datetime:
        return datetime.fromtimestamp(self.now_us / 1_000_000, UTC)


def demo_clock(seed: int = 7) -> SimClock:
    return SimClock(datetime.now(UTC) - timedelta(days=120), random.Random(seed))


async def _open_accounts(store: LedgerStore) -> None:
    for ledger in (CREDITS, P2P):
        await store.create_ledger(ledger, idempotency_key=f"demo:ledger:{ledger}")
    opening = [
        (CREDITS, "scheme:issuance", "issuance", None),
        (CREDITS, "scheme:expired", "expired", None),
        *((CREDITS, p, "partner", 0) for p in PARTNERS),
        *((CREDITS, m, "member", 0) for m in TENANTS),
        *((P2P, m, "member", -600) for m in ELDERS),  # up to 10 hours in debt to the bank
    ]
    await asyncio.gather(
        *(
            store.open_account(lg, code, kind=kind, floor=floor, idempotency_key=f"demo:{code}")
            for lg, code, kind, floor in opening
        )
    )


async def _step(store: LedgerStore, clock: SimClock, rng: random.Random, key: str) -> int:
    """One thing that happens in a scheme; returns how many entries it wrote."""
    roll = rng.random()
    if roll < 0.45:  # a tenant's confirmed hours become credits
        minutes = rng.choice([30, 60, 90, 120, 180])
        activity = rng.choice(["residents-garden", "newsletter", "tenant-panel"])
        await store.transfer(
            CREDITS,
            [("scheme:issuance", -minutes), (rng.choice(TENANTS), minutes)],
            meta={"activity": activity},
            idempotency_key=key,
        )
        return 1
    if roll < 0.75:  # an older member helps another, hour for hour
        giver, receiver = rng.sample(ELDERS, 2)
        minutes = rng.choice([30, 60, 120])
        await store.transfer(
            P2P,
            [(receiver, -minutes), (giver, minutes)],
            meta={"activity": rng.choice(["lift", "shopping", "phone-call"])},
            idempotency_key=key,
        )
        return 1
    if roll < 0.95:  # a voucher at a partner venue: reserve, then settle, void or let expire
        res = await store.reserve(
            CREDITS,
            debit=rng.choice(TENANTS),
            target=rng.choice(PARTNERS),
            amount=60,
            expires_at=clock.now + timedelta(hours=6),
            idempotency_key=key,
        )
        fate = rng.random()
        if fate < 0.75:
            await store.post(CREDITS, res.seq, idempotency_key=f"{key}:settle")
            return 2
        if fate < 0.9:
            await store.void(CREDITS, res.seq, idempotency_key=f"{key}:void")
            return 2
        return 1
    # a coordinator's mistake, corrected by a reversal that names it
    mistake = await store.transfer(
        CREDITS,
        [("scheme:issuance", -60), (rng.choice(TENANTS), 60)],
        meta={"activity": "residents-garden"},
        idempotency_key=key,
    )
    await store.reverse(
        CREDITS, mistake.seq, meta={"reason": "logged twice"}, idempotency_key=f"{key}:rev"
    )
    return 2


async def _guarded(store: LedgerStore, clock: SimClock, seed: int, key: str) -> int:
    try:
        return await _step(store, clock, random.Random(seed), key)
    except (FloorBreached, Conflict):
        return 0  # a member without enough credit, as happens


async def build_demo(store: LedgerStore, clock: SimClock, entries: int = 3000) -> int:
    """Fill two ledgers with about `entries` entries, with checkpoints and a key rotation."""
    await _open_accounts(store)
    made, step = 0, 0
    while made < entries:
        results = await asyncio.gather(
            *(_guarded(store, clock, step + i, f"demo:{step + i}") for i in range(GROUP))
        )
        step += GROUP
        made += sum(results)
        for ledger in (CREDITS, P2P):
            made += len(await store.expire_due(ledger, now=clock.now))
            if step % (GROUP * 8) == 0:
                await store.checkpoint(ledger, idempotency_key=f"demo:cp:{step}:{ledger}")
        if step == GROUP * 24:
            await store.rotate_key(CREDITS, idempotency_key="demo:rotate")
    for ledger in (CREDITS, P2P):
        await store.checkpoint(ledger, idempotency_key=f"demo:final:{ledger}")
    return made
