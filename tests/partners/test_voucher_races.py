"""A voucher's transitions raced in pairs (settle at two tills, void, expiry), and vouchers of a
capped offer raced, in one writer and across two (as two processes), on both backends."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from ledger import Conflict, from_us
from ledger import storage as ledger_storage
from partners import storage
from partners.consistency import voucher_problems
from partners.model import Agreement, Offer, Partner, Sector, Venue, Voucher, VoucherState
from partners.service import Partners
from tests.conftest import SERVER_URL, Clock
from tests.timebank.helpers import activity, open_bank
from timebank.claims import ClaimDraft, ClaimRules, SchemeModel
from timebank.schemes import Member, Role, Scheme

pytestmark = pytest.mark.both_backends
S = "taff"


@dataclass
class Two:
    one: Partners
    two: Partners
    clock: Clock
    keys: itertools.count[int]


@pytest.fixture
async def two(tmp_path: Path, clock: Clock, db_url: str) -> AsyncIterator[Two]:
    """Member T1 with 120 credits (T2 with 10); the Gate's cinema ticket (1 credit) and a
    workshop capped at one voucher a day; two services on one database."""
    url = db_url if SERVER_URL else None
    async with open_bank(tmp_path / "v.db", clock, url) as bank:
        p = Partners(bank)
        await p.create_tables()
        await bank.create_scheme(Scheme(S, "Taff", ClaimRules(SchemeModel.TIME_CREDITS)))
        await bank.add_member(Member(S, "C1", "Co", frozenset({Role.COORDINATOR})))
        await bank.add_activity(S, activity("garden"), by="C1")
        today = from_us(clock()).date()
        for who in ("T1", "T2"):
            await bank.add_member(Member(S, who, f"Tenant {who}"))
            for n in range(12 if who == "T1" else 1):  # 10 hours a day
                day = date.fromordinal(today.toordinal() - 1 - n)
                claim = await bank.log_claim(S, ClaimDraft(who, who, "garden", day, 600),
                                             today=today, idempotency_key=f"{who}{n}")  # fmt: skip
                await bank.confirm_claim(S, claim.id, by="C1")
        await p.add_partner(Partner("gate", "The Gate", Sector.THIRD))
        for venue in ("keppoch-st", "annexe"):
            await p.add_venue(Venue("gate", venue, venue.title()))
        await p.add_offer(Offer("gate", "cinema", "Cinema ticket", 1, 750, today))
        await p.add_offer(Offer("gate", "class", "Workshop", 1, 500, today, per_day=1))
        await p.agree(Agreement(S, "gate", frozenset({"cinema", "class"}),
                                frozenset({"keppoch-st", "annexe"}), today))  # fmt: skip
        async with open_bank(tmp_path / "v.db", clock, url) as other:
            yield Two(p, Partners(other), clock, itertools.count())


Move = Callable[[Partners, Voucher, str], Awaitable[Any]]


async def settle_here(p: Partners, v: Voucher, key: str) -> Any:
    return await p.settle(S, v.code, partner_id="gate", venue_id="keppoch-st",
                          idempotency_key=f"till-1:{key}")  # fmt: skip


async def settle_there(p: Partners, v: Voucher, key: str) -> Any:
    return await p.settle(S, v.code, partner_id="gate", venue_id="annexe",
                          idempotency_key=f"till-2:{key}")  # fmt: skip


async def void(p: Partners, v: Voucher, key: str) -> Any:
    return await p.void(S, v.code, idempotency_key=f"void:{key}")


async def expire(p: Partners, v: Voucher, key: str) -> Any:
    return await p.ledger.expire_due(S, now=from_us(p.bank.clock()))


LEAVES: dict[Move, VoucherState] = {
    settle_here: VoucherState.SETTLED, settle_there: VoucherState.SETTLED,
    void: VoucherState.VOIDED, expire: VoucherState.EXPIRED,
}  # fmt: skip
PAIRS = [(a, b) for a, b in itertools.combinations_with_replacement(LEAVES, 2)]


async def race(t: Two, a: Move, b: Move) -> None:
    n = next(t.keys)
    before = await t.one.bank.balance(S, "T1")
    v = await t.one.issue(S, "T1", "gate", "cinema", idempotency_key=f"v{n}")
    if expire in (a, b):
        t.clock.advance(49 * 3600)  # past the agreement's 48 hours: due to expire
    other = t.two if n % 2 else t.one
    outcomes = await asyncio.gather(a(t.one, v, str(n)), b(other, v, str(n)),
                                    return_exceptions=True)  # fmt: skip
    final = await t.one.voucher(S, v.code)
    took = 0  # the moves that answered as having done it
    for move, outcome in zip((a, b), outcomes, strict=True):
        if isinstance(outcome, Conflict):
            assert outcome.field == "code", outcome
        elif isinstance(outcome, BaseException):
            raise outcome
        elif move is expire:
            assert len(outcome) <= 1 and (not outcome or final.state is VoucherState.EXPIRED)
            took += len(outcome)
        else:
            assert outcome.state is final.state, (move.__name__, outcome, final)
            took += 1
    # Two different moves: one wins, one is refused. The same move twice (the same till's
    # retry, a second void): the one decision, answered to both.
    assert took == 1 if a is not b else 1 <= took <= 2, (a.__name__, b.__name__, outcomes)
    assert final.state is not VoucherState.PENDING
    assert final.state in (LEAVES[a], LEAVES[b])
    spent = v.minutes if final.state is VoucherState.SETTLED else 0
    assert await t.one.bank.balance(S, "T1") == before - spent

    def read(conn: Any) -> list[str]:
        resolved = ledger_storage.resolutions(conn, S)
        return voucher_problems(S, storage.voucher_records(conn, S), resolved)

    assert await t.one.bank.query(read) == []


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: f"{p[0].__name__}-{p[1].__name__}")
async def test_two_moves_on_one_voucher_take_effect_once(two: Two, pair: tuple[Move, Move]) -> None:
    for _ in range(4):
        await race(two, *pair)


async def test_a_capped_offers_last_voucher_goes_to_one_member(two: Two) -> None:
    for day in range(4):
        outcomes = await asyncio.gather(
            two.one.issue(S, "T1", "gate", "class", idempotency_key=f"a{day}"),
            (two.two if day % 2 else two.one).issue(S, "T2", "gate", "class",
                                                     idempotency_key=f"b{day}"),
            return_exceptions=True,
        )  # fmt: skip
        issued = [o for o in outcomes if isinstance(o, Voucher)]
        refused = [o for o in outcomes if isinstance(o, Conflict)]
        assert len(issued) == 1 and len(refused) == 1, outcomes
        assert refused[0].field == "offer" and "no more vouchers" in str(refused[0])
        two.clock.advance(24 * 3600)


@pytest.mark.slow
async def test_every_pair_of_voucher_moves_raced_many_times(two: Two) -> None:
    for _ in range(15):
        for pair in PAIRS:
            await race(two, *pair)


async def test_two_retirements_at_once_retire_the_credits_once(two: Two) -> None:
    """The scheme retiring a partner's credits twice at once (two staff, two processes), and
    against a settlement: the credits leave the partner's account once, never below zero."""
    for n in range(4):
        v = await two.one.issue(S, "T1", "gate", "cinema", idempotency_key=f"r{n}")
        await settle_here(two.one, v, f"r{n}")
        other = two.two if n % 2 else two.one
        outcomes = await asyncio.gather(
            two.one.retire(S, "gate", idempotency_key=f"a{n}"),
            other.retire(S, "gate", idempotency_key=f"b{n}"),
            return_exceptions=True,
        )
        done = [o for o in outcomes if not isinstance(o, BaseException)]
        lost = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(done) == 1 and len(lost) == 1, outcomes
        assert isinstance(lost[0], Conflict) and lost[0].field == "partner", lost[0]
        assert (await two.one.ledger.account(S, "partner:gate")).balance == 0
    v = await two.one.issue(S, "T1", "gate", "cinema", idempotency_key="last")
    last: tuple[Any, Any] = await asyncio.gather(
        two.one.retire(S, "gate", idempotency_key="z"),
        settle_here(two.two, v, "last"),
        return_exceptions=True,
    )
    retired, settled = last
    held = (await two.one.ledger.account(S, "partner:gate")).balance
    assert isinstance(settled, Voucher) and held in (0, v.minutes), (retired, settled, held)
