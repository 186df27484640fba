"""Demo ledgers: a time-credit scheme (Taff Housing style) and a person-to-person time bank."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from ledger import Conflict, FloorBreached, LedgerStore

CREDITS = "taff-housing"
P2P = "member-to-member"
PARTNERS = ("partner:cardiff-leisure", "partner:cardiff-blues", "partner:gate-arts")


class SimClock:
    """A clock that starts in the past and moves forward a little with every reading."""

    def __init__(self, start: datetime, rng: random.Random) -> None:
        self.now_us = int(start.timestamp() * 1_000_000)
        self.rng = rng

    def __call__(self) -> int:
        self.now_us += self.rng.randint(1, 40) * 60_000_000
        return self.now_us

    @property
    def now(self) -> datetime:
        return datetime.fromtimestamp(self.now_us / 1_000_000, UTC)


def demo_clock(seed: int = 7) -> SimClock:
    return SimClock(datetime.now(UTC) - timedelta(days=120), random.Random(seed))


async def build_demo(store: LedgerStore, clock: SimClock, entries: int = 3000) -> int:
    """Fill two ledgers with about `entries` entries; idempotent, so a re-run adds nothing."""
    rng = random.Random(2009)
    made = 0
    await store.create_ledger(CREDITS, idempotency_key="demo:ledger")
    await store.create_ledger(P2P, idempotency_key="demo:ledger")
    await store.open_account(
        CREDITS,
        "scheme:issuance",
        kind="issuance",
        floor=None,
        idempotency_key="demo:acct:issuance",
    )
    await store.open_account(
        CREDITS, "scheme:expired", kind="expired", floor=None, idempotency_key="demo:acct:expired"
    )
    for partner in PARTNERS:
        await store.open_account(
            CREDITS, partner, kind="partner", floor=0, idempotency_key=f"demo:acct:{partner}"
        )
    tenants = [f"member:T{n:04d}" for n in range(1, 61)]
    elders = [f"member:E{n:04d}" for n in range(1, 41)]
    for m in tenants:
        await store.open_account(CREDITS, m, kind="member", floor=0, idempotency_key=f"demo:{m}")
    for m in elders:
        await store.open_account(P2P, m, kind="member", floor=-600, idempotency_key=f"demo:{m}")
    step = 0
    while made < entries:
        step += 1
        key = f"demo:{step}"
        roll = rng.random()
        try:
            if roll < 0.45:  # a tenant's confirmed hours become credits
                member = rng.choice(tenants)
                minutes = rng.choice([30, 60, 90, 120, 180])
                await store.transfer(
                    CREDITS,
                    [("scheme:issuance", -minutes), (member, minutes)],
                    meta={"activity": rng.choice(["garden", "newsletter", "tenant-panel"])},
                    idempotency_key=key,
                )
            elif roll < 0.75:  # an elder helps another, hour for hour
                giver, receiver = rng.sample(elders, 2)
                minutes = rng.choice([30, 60, 120])
                await store.transfer(
                    P2P,
                    [(receiver, -minutes), (giver, minutes)],
                    meta={"activity": rng.choice(["lift", "shopping", "call"])},
                    idempotency_key=key,
                )
            elif roll < 0.93:  # a voucher at a partner venue: reserve, then settle or void
                member, partner = rng.choice(tenants), rng.choice(PARTNERS)
                res = await store.reserve(
                    CREDITS,
                    debit=member,
                    target=partner,
                    amount=60,
                    expires_at=clock.now + timedelta(days=2),
                    idempotency_key=key,
                )
                made += 1
                if rng.random() < 0.8:
                    await store.post(CREDITS, res.seq, idempotency_key=f"{key}:settle")
                elif rng.random() < 0.5:
                    await store.void(CREDITS, res.seq, idempotency_key=f"{key}:void")
            elif roll < 0.97:  # a coordinator's mistake, corrected by reversal
                mistake = await store.transfer(
                    CREDITS,
                    [("scheme:issuance", -60), (rng.choice(tenants), 60)],
                    meta={"activity": "garden"},
                    idempotency_key=key,
                )
                await store.reverse(
                    CREDITS,
                    mistake.seq,
                    meta={"reason": "logged twice"},
                    idempotency_key=f"{key}:reverse",
                )
                made += 1
            else:
                for ledger in (CREDITS, P2P):
                    await store.checkpoint(ledger, idempotency_key=f"{key}:{ledger}")
        except (FloorBreached, Conflict):
            continue
        made += 1
        if step % 997 == 0:
            await store.rotate_key(CREDITS, idempotency_key=f"{key}:rotate")
        if step % 100 == 0:
            for ledger in (CREDITS, P2P):
                made += len(await store.expire_due(ledger, now=clock.now))
    for ledger in (CREDITS, P2P):
        await store.checkpoint(ledger, idempotency_key=f"demo:final:{ledger}")
    return made
