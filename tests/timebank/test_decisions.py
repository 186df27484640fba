"""One decision per claim: every pair of decisions raced on one claim, in one writer's group
commit and across two writers (as two `serve` processes), on both backends.

Whatever the interleaving, exactly one decision takes effect, atomically with its entry; the
other gets 409 naming `claim` and the state it found (or, if it was the same decision, the
winner's answer); and the claims agree with the ledger (`timebank.consistency`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from ledger import Conflict
from tests.conftest import SERVER_URL, Clock
from tests.timebank.helpers import activity, open_bank
from timebank import storage
from timebank.activities import CoSubform
from timebank.claims import Claim, ClaimDraft, ClaimRules, ClaimStatus, SchemeModel
from timebank.consistency import claim_problems
from timebank.schemes import Member, Role, Scheme
from timebank.service import TimeBank

pytestmark = pytest.mark.both_backends

TODAY = date(2026, 1, 1)
TAFF = Scheme("taff", "Taff Housing", ClaimRules(SchemeModel.TIME_CREDITS))
M2M = Scheme("m2m", "M2M", ClaimRules(SchemeModel.PERSON_TO_PERSON), -600, None, 1)
CO = "C1"


@dataclass
class Banks:
    """Two time banks on one database, each with its own ledger writer: two processes."""

    one: TimeBank
    two: TimeBank
    clock: Clock
    made: int = 0

    async def pending(self, scheme: Scheme) -> Claim:
        """A new member's new pending claim (a new member, so erasing them hurts no other)."""
        self.made += 1
        who = f"M{self.made}"
        await self.one.add_member(Member(scheme.id, who, f"Member {self.made}"))
        helped = f"H{self.made}" if scheme is M2M else None
        if helped:
            await self.one.add_member(Member(scheme.id, helped, f"Helped {self.made}"))
        act = "lifts" if scheme is M2M else "garden"
        draft = ClaimDraft(who, who, act, TODAY, 30 + self.made % 60, helped)
        return await self.one.log_claim(
            scheme.id, draft, today=TODAY, idempotency_key=f"k{self.made}"
        )


@pytest.fixture
async def banks(tmp_path: Path, clock: Clock, db_url: str) -> AsyncIterator[Banks]:
    url = db_url if SERVER_URL else None
    async with open_bank(tmp_path / "d.db", clock, url) as one:
        for scheme in (TAFF, M2M):
            await one.create_scheme(scheme)
            await one.add_member(Member(scheme.id, CO, "Cath", frozenset({Role.COORDINATOR})))
        await one.add_activity(TAFF.id, activity("garden"), by=CO)
        await one.add_activity(M2M.id, activity("lifts", CoSubform.MUTUAL_AID), by=CO)
        async with open_bank(tmp_path / "d.db", clock, url) as two:
            yield Banks(one, two, clock)


Decision = Callable[[TimeBank, Claim], Awaitable[Any]]


async def confirm(bank: TimeBank, c: Claim) -> Any:
    return await bank.confirm_claim(c.scheme, c.id, by=CO)


async def confirm_as_helped(bank: TimeBank, c: Claim) -> Any:
    assert c.receiver is not None
    return await bank.confirm_claim(c.scheme, c.id, by=c.receiver, involved_only=True)


async def reject(bank: TimeBank, c: Claim) -> Any:
    return await bank.reject_claim(c.scheme, c.id, by=CO, reason="not on the rota")


async def reject_otherwise(bank: TimeBank, c: Claim) -> Any:
    return await bank.reject_claim(c.scheme, c.id, by=CO, reason="a duplicate")


async def erase(bank: TimeBank, c: Claim) -> Any:
    return await bank.erase_member(c.scheme, c.member, by=CO)


async def auto_accept(bank: TimeBank, c: Claim) -> Any:
    return await bank.auto_accept_due(c.scheme, now_us=bank.clock())


async def reverse(bank: TimeBank, c: Claim) -> Any:
    return await bank.reverse_claim(c.scheme, c.id, by=CO, reason="logged twice")


async def reverse_otherwise(bank: TimeBank, c: Claim) -> Any:
    return await bank.reverse_claim(c.scheme, c.id, by=CO, reason="wrong member")


# What each decision leaves the claim as, if it is the one that takes effect.
LEAVES: dict[Decision, str] = {
    confirm: "confirmed", confirm_as_helped: "confirmed", auto_accept: "confirmed",
    reject: "rejected:not on the rota", reject_otherwise: "rejected:a duplicate",
    erase: "rejected:the member was erased",
    reverse: "reversed:logged twice", reverse_otherwise: "reversed:wrong member",
}  # fmt: skip
ON_PENDING = [
    (TAFF, confirm, reject), (TAFF, confirm, erase), (TAFF, reject, erase),
    (TAFF, confirm, confirm), (TAFF, reject, reject_otherwise), (TAFF, reject, reject),
    (M2M, confirm_as_helped, reject), (M2M, auto_accept, reject), (M2M, auto_accept, erase),
    (M2M, auto_accept, confirm_as_helped), (M2M, confirm_as_helped, erase),
]  # fmt: skip
ON_CONFIRMED = [
    (TAFF, reverse, reverse_otherwise), (TAFF, reverse, reverse), (TAFF, reverse, erase),
    (TAFF, reverse, confirm), (TAFF, reverse, reject),
]  # fmt: skip
PAIRS = [(s, a, b, False) for s, a, b in ON_PENDING] + [(s, a, b, True) for s, a, b in ON_CONFIRMED]


def _shown(state: str) -> str:
    return state.partition(":")[0]


def _state(c: Claim) -> str:
    if c.reversal_seq is not None:
        return f"reversed:{c.reason}"
    return c.status.value if c.status is not ClaimStatus.REJECTED else f"rejected:{c.reason}"


async def race(banks: Banks, scheme: Scheme, a: Decision, b: Decision, confirmed: bool) -> None:
    """One round: a fresh claim, both decisions at once, then the rules every outcome keeps."""
    claim = await banks.pending(scheme)
    if confirmed:
        claim = await banks.one.confirm_claim(scheme.id, claim.id, by=CO)
    if auto_accept in (a, b):
        banks.clock.advance(2 * 3600)  # past the scheme's hour: the claim is due
    two = banks.two if banks.made % 2 else banks.one  # odd rounds: two writers
    outcomes = await asyncio.gather(a(banks.one, claim), b(two, claim), return_exceptions=True)
    final = await banks.one.claim(scheme.id, claim.id)
    state = _state(final)
    # A loser names the state it found: the final one (or, on a claim confirmed before the
    # race, "confirmed" if it looked before the winner committed).
    seen = {_shown(state)} | ({"confirmed"} if confirmed else set())
    made_it = False
    for decision, outcome in zip((a, b), outcomes, strict=True):
        if isinstance(outcome, Conflict):
            assert outcome.field == "claim", outcome
            assert str(outcome) in {f"claim {claim.id} is {s}" for s in seen}, (outcome, state)
            continue
        if isinstance(outcome, BaseException):
            raise outcome
        answers = outcome if isinstance(outcome, list) else [outcome]
        for answer in answers:
            if isinstance(answer, Claim):  # the claim as its decision left it
                assert answer.entry_seq == final.entry_seq, (answer, final)
        if LEAVES[decision] == state and (answers or decision is not auto_accept):
            made_it = True  # this is the decision that took effect (or its twin)
        else:  # a success that decided nothing: an erasure or the job finding it decided,
            no_op = decision is erase or (decision is auto_accept and answers == [])
            no_op |= confirmed and decision is confirm  # or confirming a confirmed claim
            assert no_op, f"{decision.__name__} answered 200 but the claim is {state}: {outcomes}"
    assert made_it, f"no decision took effect: {state}, {outcomes}"
    await agree(banks.one, scheme)


async def agree(bank: TimeBank, scheme: Scheme) -> None:
    def read(conn: Any) -> list[str]:
        records = storage.claim_records(conn, scheme.id)
        return claim_problems(scheme.id, records, storage.claim_entries(conn, scheme.id))

    assert await bank.query(read) == []


def _id(pair: tuple[Scheme, Decision, Decision, bool]) -> str:
    scheme, a, b, confirmed = pair
    return f"{scheme.id}-{'confirmed' if confirmed else 'pending'}-{a.__name__}-{b.__name__}"


@pytest.mark.parametrize("pair", PAIRS, ids=_id)
async def test_two_decisions_on_one_claim_take_effect_once(
    banks: Banks, pair: tuple[Scheme, Decision, Decision, bool]
) -> None:
    for _ in range(6):
        await race(banks, *pair)


@pytest.mark.slow
async def test_every_pair_of_decisions_raced_many_times_leaves_no_disagreement(
    banks: Banks,
) -> None:
    for _ in range(40):
        for pair in PAIRS:
            await race(banks, *pair)


async def test_a_claim_logged_while_its_member_is_erased_is_refused_or_rejected(
    banks: Banks,
) -> None:
    """Erasure against logging: the claim is refused (the member is gone) or, logged first,
    rejected by the erasure; never left pending for an erased member."""
    for n in range(8):
        who = f"E{n}"
        await banks.one.add_member(Member(TAFF.id, who, f"Leaving {n}"))
        draft = ClaimDraft(who, who, "garden", TODAY, 45)
        other = banks.two if n % 2 else banks.one
        logged, _ = await asyncio.gather(
            banks.one.log_claim(TAFF.id, draft, today=TODAY, idempotency_key=f"e{n}", note="hi"),
            other.erase_member(TAFF.id, who, by=CO),
            return_exceptions=True,
        )
        if isinstance(logged, Claim):
            now = await banks.one.claim(TAFF.id, logged.id)
            assert now.status is ClaimStatus.REJECTED and now.note == "", now
        else:
            assert getattr(logged, "field", None) == "member", logged
    await agree(banks.one, TAFF)
