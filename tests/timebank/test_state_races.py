"""Every other state machine of the time bank raced pair by pair (issue 16): members and their
erasure, the market's offers and requests, activities and their retirement, imports, and the
scheduled jobs (credit expiry, auto-acceptance), in one writer's group commit and across two
writers (as two `serve` processes), on both backends. Claims are raced in test_decisions.py.

Whatever the interleaving, each transition takes effect once; a loser gets 409 naming the field
and the state it found (or, if it asked for the same thing, the winner's answer); nothing is
left half done; and the claims agree with the ledger (`timebank.consistency`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from ledger import Conflict, FloorBreached, NotFound
from tests.conftest import SERVER_URL, Clock
from tests.timebank.helpers import activity, open_bank
from tests.timebank.test_decisions import agree
from timebank.claims import Claim, ClaimDraft, ClaimRules, ClaimStatus, SchemeModel
from timebank.imports import ImportRefused
from timebank.policies import expiring_minutes
from timebank.schemes import Member, Role, Scheme, member_account
from timebank.service import AUTO, TimeBank
from timebank.storage import ERASED

pytestmark = pytest.mark.both_backends

TAFF = Scheme("taff", "Taff Housing", ClaimRules(SchemeModel.TIME_CREDITS))
CO = "C1"
DAY = 400 * 24 * 3600  # seconds: past a 12-month expiry
SHORT, LONG = 3, 40  # rounds of each race: in the default suite, and marked slow


@dataclass
class Banks:
    """Two time banks on one database, each with its own ledger writer: two processes."""

    one: TimeBank
    two: TimeBank
    clock: Clock
    made: int = 0

    def fresh(self) -> int:
        self.made += 1
        return self.made

    @property
    def other(self) -> TimeBank:
        """The bank to race `one` with: itself (one writer's group commit) on even rounds,
        the other process on odd ones."""
        return self.two if self.made % 2 else self.one

    async def scheme(self, rules: ClaimRules, **settings: Any) -> Scheme:
        """A scheme of the round's own (for the jobs, which work through a whole scheme)."""
        scheme = Scheme(f"s{self.fresh()}", "Round", rules, **settings)
        await self.one.create_scheme(scheme)
        await self.one.add_member(Member(scheme.id, CO, "Cath", frozenset({Role.COORDINATOR})))
        await self.one.add_activity(scheme.id, activity("garden"), by=CO)
        return scheme

    async def member(self, scheme: Scheme = TAFF, prefix: str = "M") -> str:
        who = f"{prefix}{self.fresh()}"
        await self.one.add_member(Member(scheme.id, who, f"Person {who}", contact="a@b.org"))
        return who

    async def pending(self, scheme: Scheme, who: str, minutes: int = 60, **kw: Any) -> Claim:
        draft = ClaimDraft(who, who, "garden", self.one.today(), minutes, **kw)
        key = f"k{self.fresh()}"
        return await self.one.log_claim(
            scheme.id, draft, today=self.one.today(), idempotency_key=key
        )

    async def credit(self, scheme: Scheme, who: str, minutes: int) -> Claim:
        claim = await self.pending(scheme, who, minutes)
        return await self.one.confirm_claim(scheme.id, claim.id, by=CO)


@pytest.fixture
async def banks(tmp_path: Path, clock: Clock, db_url: str) -> AsyncIterator[Banks]:
    url = db_url if SERVER_URL else None
    async with open_bank(tmp_path / "d.db", clock, url) as one:
        await one.create_scheme(TAFF)
        await one.add_member(Member(TAFF.id, CO, "Cath", frozenset({Role.COORDINATOR})))
        await one.add_activity(TAFF.id, activity("garden"), by=CO)
        async with open_bank(tmp_path / "d.db", clock, url) as two:
            yield Banks(one, two, clock)


async def both(a: Coroutine[Any, Any, Any], b: Coroutine[Any, Any, Any]) -> list[Any]:
    """Two transitions at once: their answers, or what they raised."""
    return list(await asyncio.gather(a, b, return_exceptions=True))


def refused(outcome: object, kind: type[Exception], field: str, *messages: str) -> bool:
    """Whether `outcome` is a clean refusal of `kind` naming `field` (and one of `messages`,
    if given); anything else raised (a 500, a stray exception) fails the test here."""
    if not isinstance(outcome, BaseException):
        return False
    if not isinstance(outcome, kind) or getattr(outcome, "field", None) != field:
        raise outcome
    assert not messages or str(outcome) in messages, outcome
    return True


# ---- members and erasure ------------------------------------------------------------------


async def two_erasures_of_one_member_erase_once(b: Banks) -> None:
    who = await b.member()
    claim = await b.pending(TAFF, who)
    await b.one.market.add_offer(TAFF.id, who, ["diy"], "CF10", "", "", idempotency_key=who)
    outcomes = await both(
        b.one.erase_member(TAFF.id, who, by=CO), b.other.erase_member(TAFF.id, who, by=who)
    )
    final = await b.one.member(TAFF.id, who)
    assert final.erased and final.display_name == "(erased)" and final.contact == ""
    assert outcomes == [final, final]  # the second erasure answers as the first left it
    rejected = await b.one.claim(TAFF.id, claim.id)
    assert (rejected.status, rejected.reason) == (ClaimStatus.REJECTED, ERASED)
    assert rejected.decided_by in (CO, who)
    assert await b.one.market.offers(TAFF.id, member=who) == []
    await agree(b.one, TAFF)


async def adding_a_member_again_while_they_are_erased_is_refused_or_before(b: Banks) -> None:
    who = await b.member()
    them = await b.one.member(TAFF.id, who)
    added, erased = await both(b.one.add_member(them), b.other.erase_member(TAFF.id, who, by=CO))
    assert isinstance(erased, Member) and erased.erased, erased
    # the retry of the registration saw them before the erasure, or was refused after it
    assert added == them or refused(added, Conflict, "id", f"member {who!r} is erased"), added
    assert (await b.one.member(TAFF.id, who)).erased
    with pytest.raises(Conflict, match="is erased"):  # and never brings them back
        await b.two.add_member(them)


async def a_member_erased_as_they_are_added_is_erased_or_not_found(b: Banks) -> None:
    who = f"N{b.fresh()}"
    them = Member(TAFF.id, who, "New", contact="new@b.org")
    added, erased = await both(b.one.add_member(them), b.other.erase_member(TAFF.id, who, by=CO))
    assert added == them, added
    final = await b.one.member(TAFF.id, who)
    if refused(erased, NotFound, "member"):  # the erasure looked first: nobody to erase
        assert final == them
    else:
        assert erased == final and final.erased
    assert (await b.one.ledger.account(TAFF.id, member_account(who))).balance == 0


async def one_member_added_twice_at_once_is_added_once(b: Banks) -> None:
    who = f"T{b.fresh()}"
    them = Member(TAFF.id, who, "Twice", contact="t@b.org")
    outcomes = await both(b.one.add_member(them), b.other.add_member(them))
    assert outcomes == [them, them]  # the same request: the same answer
    listed = [m for m in await b.one.members(TAFF.id, after=who[:1], limit=500) if m.id == who]
    assert listed == [them]


async def one_id_added_twice_at_once_with_other_details_is_added_once(b: Banks) -> None:
    who = f"D{b.fresh()}"
    first, second = Member(TAFF.id, who, "First"), Member(TAFF.id, who, "Second")
    outcomes = await both(b.one.add_member(first), b.other.add_member(second))
    stored = await b.one.member(TAFF.id, who)
    message = f"member {who!r} exists with other details"
    losers = [o for o in outcomes if refused(o, Conflict, "id", message)]
    assert len(losers) == 1 and stored in outcomes, outcomes


async def a_group_session_logged_as_a_member_is_erased_is_refused_or_whole(b: Banks) -> None:
    """The group is checked whole before anything is written: refused whole if the erasure
    came first; else written whole, the erased member's claim confirmed or, still pending
    when the erasure came, rejected by it."""
    stays, goes = await b.member(), await b.member()
    n = b.fresh()
    logged, erased = await both(
        b.one.log_group(TAFF.id, [stays, goes], "garden", b.one.today(), 90, by=CO,
                        today=b.one.today(), idempotency_key=f"g{n}", note="hi"),
        b.other.erase_member(TAFF.id, goes, by=CO),
    )  # fmt: skip
    assert isinstance(erased, Member) and erased.erased, erased
    mine = await b.one.claims(TAFF.id, member=stays)
    if refused(logged, NotFound, "members", f"no member {goes!r}"):
        assert mine == [] and await b.one.claims(TAFF.id, member=goes) == []
    else:
        assert [c.member for c in logged] == [stays, goes], logged
        assert [c.status for _, c in mine] == [ClaimStatus.CONFIRMED]
        theirs = await b.one.claim(TAFF.id, logged[1].id)  # its note erased since, if it ran
        unnoted = [replace(c, note="", note_salt=b"") for c in (theirs, logged[1])]
        assert unnoted[0] == unnoted[1], (theirs, logged)
        if theirs.status is ClaimStatus.REJECTED:
            assert theirs.reason == ERASED, theirs
        else:
            assert theirs.status is ClaimStatus.CONFIRMED, theirs
        assert theirs.note == "", theirs
    await agree(b.one, TAFF)


# ---- the market ----------------------------------------------------------------------------


async def an_offer_withdrawn_twice_at_once_is_withdrawn(b: Banks) -> None:
    who = await b.member()
    offer = await b.one.market.add_offer(TAFF.id, who, ["diy"], "CF10", "", "",
                                         idempotency_key=who)  # fmt: skip
    outcomes = await both(
        b.one.market.withdraw_offer(TAFF.id, offer.id),
        b.other.market.withdraw_offer(TAFF.id, offer.id),
    )
    stored = await b.one.market.offer(TAFF.id, offer.id)
    assert not stored.active and outcomes == [stored, stored], outcomes


async def a_request_closed_twice_at_once_is_closed(b: Banks) -> None:
    who = await b.member()
    asked = await b.one.market.add_request(TAFF.id, who, ["diy"], "CF10", "", "",
                                           idempotency_key=who)  # fmt: skip
    outcomes = await both(
        b.one.market.close_request(TAFF.id, asked.id),
        b.other.market.close_request(TAFF.id, asked.id),
    )
    stored = await b.one.market.request(TAFF.id, asked.id)
    assert not stored.open and outcomes == [stored, stored], outcomes


async def an_offer_sent_twice_at_once_is_made_once(b: Banks) -> None:
    who = await b.member()
    outcomes = await both(
        b.one.market.add_offer(TAFF.id, who, ["diy"], "CF10", "", "", idempotency_key=who),
        b.other.market.add_offer(TAFF.id, who, ["diy"], "CF10", "", "", idempotency_key=who),
    )
    stored = await b.one.market.offers(TAFF.id, member=who)
    assert len(stored) == 1 and outcomes == [stored[0], stored[0]], outcomes


async def two_offers_under_one_key_at_once_make_one(b: Banks) -> None:
    who = await b.member()
    outcomes = await both(
        b.one.market.add_offer(TAFF.id, who, ["diy"], "CF10", "", "", idempotency_key=who),
        b.other.market.add_offer(TAFF.id, who, ["sewing"], "CF10", "", "", idempotency_key=who),
    )
    stored = await b.one.market.offers(TAFF.id, member=who)
    message = "idempotency key already used for another offer"
    losers = [o for o in outcomes if refused(o, Conflict, "idempotency_key", message)]
    assert len(losers) == 1 and len(stored) == 1 and stored[0] in outcomes, outcomes


async def an_offer_withdrawn_as_it_is_matched_is_matched_before_or_never(b: Banks) -> None:
    helper, asker = await b.member(), await b.member()
    offer = await b.one.market.add_offer(TAFF.id, helper, ["diy"], "CF10", "", "",
                                         idempotency_key=helper)  # fmt: skip
    asked = await b.one.market.add_request(TAFF.id, asker, ["diy"], "CF10", "", "",
                                           idempotency_key=asker)  # fmt: skip
    withdrawn, found = await both(
        b.one.market.withdraw_offer(TAFF.id, offer.id),
        b.other.market.matches_for(TAFF.id, asked.id, limit=100),
    )
    assert isinstance(withdrawn, type(offer)) and not withdrawn.active, withdrawn
    assert [m.offer.id for m in found if m.offer.id == offer.id] in ([], [offer.id]), found
    after = await b.one.market.matches_for(TAFF.id, asked.id, limit=100)
    assert offer.id not in {m.offer.id for m in after}
    await b.one.market.close_request(TAFF.id, asked.id)  # out of later rounds' matches


async def an_offer_made_as_its_member_is_erased_does_not_outlive_them(b: Banks) -> None:
    who = await b.member()
    offered, erased = await both(
        b.one.market.add_offer(TAFF.id, who, ["diy"], "CF10", "", "", idempotency_key=who),
        b.other.erase_member(TAFF.id, who, by=CO),
    )
    assert isinstance(erased, Member) and erased.erased, erased
    refused(offered, NotFound, "member")  # else it was made first, and the erasure took it
    assert await b.one.market.offers(TAFF.id, member=who) == []


async def a_request_made_as_its_member_is_erased_does_not_outlive_them(b: Banks) -> None:
    who = await b.member()
    asked, erased = await both(
        b.one.market.add_request(TAFF.id, who, ["diy"], "CF10", "", "", idempotency_key=who),
        b.other.erase_member(TAFF.id, who, by=CO),
    )
    assert isinstance(erased, Member) and erased.erased, erased
    refused(asked, NotFound, "member")
    assert await b.one.market.requests(TAFF.id, member=who) == []


# ---- activities ----------------------------------------------------------------------------


async def a_claim_logged_as_its_activity_is_retired_is_pending_or_refused(b: Banks) -> None:
    who, code = await b.member(), f"act-{b.fresh()}"
    await b.one.add_activity(TAFF.id, activity(code), by=CO)
    draft = ClaimDraft(who, who, code, b.one.today(), 60)
    logged, retired, again = await asyncio.gather(
        b.one.log_claim(TAFF.id, draft, today=b.one.today(), idempotency_key=code),
        b.other.retire_activity(TAFF.id, code, by=CO),
        b.one.retire_activity(TAFF.id, code, by=CO),
        return_exceptions=True,
    )
    assert retired == again == replace(activity(code), retired=True), (retired, again)
    if not refused(logged, NotFound, "activity", f"no current activity {code!r}"):
        assert isinstance(logged, Claim) and logged.status is ClaimStatus.PENDING, logged
    assert [a.retired for a in await b.one.activities(TAFF.id) if a.code == code] == [True]


async def one_claim_logged_twice_at_once_is_logged_once(b: Banks) -> None:
    who, key = await b.member(), f"twin{b.fresh()}"
    draft = ClaimDraft(who, who, "garden", b.one.today(), 75)
    outcomes = await both(
        b.one.log_claim(TAFF.id, draft, today=b.one.today(), idempotency_key=key),
        b.other.log_claim(TAFF.id, draft, today=b.one.today(), idempotency_key=key),
    )
    stored = [c for _, c in await b.one.claims(TAFF.id, member=who)]
    assert len(stored) == 1 and outcomes == [stored[0], stored[0]], outcomes


# ---- imports -------------------------------------------------------------------------------


def _hours(rows: list[tuple[str, int]], day: str) -> str:
    lines = [f"{who},garden,{day},{minutes},,imported" for who, minutes in rows]
    return "member,activity,date,minutes,receiver,note\n" + "\n".join(lines) + "\n"


async def one_hours_file_imported_twice_at_once_is_imported_once(b: Banks) -> None:
    people = [await b.member() for _ in range(3)]
    text = _hours([(who, 30 + 15 * i) for i, who in enumerate(people)], "2025-06-01")
    outcomes = await both(
        b.one.import_hours(TAFF.id, text, by=CO, today=b.one.today()),
        b.other.import_hours(TAFF.id, text, by=CO, today=b.one.today()),
    )
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    for who in people:  # each line once: one claim, confirmed, with its one entry
        claims = [c for _, c in await b.one.claims(TAFF.id, member=who)]
        assert [c.status for c in claims] == [ClaimStatus.CONFIRMED], claims
        assert all(c in claims for o in outcomes for c in o if c.member == who), outcomes
    assert {c.id for o in outcomes for c in o} == {
        c.id for who in people for _, c in await b.one.claims(TAFF.id, member=who)
    }  # every claim confirmed by one run or the other, and answered as stored
    await agree(b.one, TAFF)


async def one_members_file_imported_twice_at_once_adds_each_once(b: Banks) -> None:
    ids = [f"I{b.fresh()}" for _ in range(3)]
    text = "id,display_name,contact\n" + "".join(f"{i},Person {i},{i}@b.org\n" for i in ids)
    outcomes = await both(
        b.one.import_members(TAFF.id, text), b.other.import_members(TAFF.id, text)
    )
    assert all(isinstance(o, int) and 0 <= o <= len(ids) for o in outcomes), outcomes
    assert max(outcomes) >= 1  # the first to look found them new
    for i in ids:
        assert await b.one.member(TAFF.id, i) == Member(
            TAFF.id, i, f"Person {i}", contact=f"{i}@b.org"
        )


async def one_timeoverflow_file_imported_twice_at_once_adds_each_once(b: Banks) -> None:
    numbers = [b.fresh() for _ in range(3)]
    text = "N,Name,Email,Phone,Alternative Phone\n" + "".join(f"{n},P {n},,,\n" for n in numbers)
    outcomes = await both(
        b.one.import_timeoverflow_members(TAFF.id, text),
        b.other.import_timeoverflow_members(TAFF.id, text),
    )
    assert all(isinstance(o, int) and 0 <= o <= len(numbers) for o in outcomes), outcomes
    for n in numbers:
        assert (await b.one.member(TAFF.id, f"to-{n}")).display_name == f"P {n}"


async def hours_imported_as_a_member_they_name_is_erased_are_refused_or_whole(b: Banks) -> None:
    """The file is checked whole before anything is written: refused whole (naming the line)
    if the erasure came first; else imported whole, the erased member's claim confirmed or,
    still pending when the erasure came, rejected by it."""
    stays, goes = await b.member(), await b.member()
    text = _hours([(stays, 45), (goes, 60)], "2025-06-02")
    imported, erased = await both(
        b.one.import_hours(TAFF.id, text, by=CO, today=b.one.today()),
        b.other.erase_member(TAFF.id, goes, by=CO),
    )
    assert isinstance(erased, Member) and erased.erased, erased
    mine = [c for _, c in await b.one.claims(TAFF.id, member=stays)]
    theirs = [c for _, c in await b.one.claims(TAFF.id, member=goes)]
    if isinstance(imported, ImportRefused):
        assert [(p.line, p.field) for p in imported.problems] == [(3, "member")], imported
        assert mine == theirs == [], (mine, theirs)
    elif isinstance(imported, BaseException):
        raise imported
    else:
        assert [c.status for c in mine] == [ClaimStatus.CONFIRMED], mine
        assert len(theirs) == 1 and theirs[0].note == "", theirs
        if theirs[0].status is ClaimStatus.REJECTED:
            assert theirs[0].reason == ERASED, theirs
        else:
            assert theirs[0].status is ClaimStatus.CONFIRMED, theirs
        assert {c.id for c in imported} <= {c.id for c in mine + theirs}, imported
    await agree(b.one, TAFF)


# ---- the scheduled jobs --------------------------------------------------------------------


EXPIRING = ClaimRules(SchemeModel.TIME_CREDITS)


async def expiries_as_due(bank: TimeBank, scheme: Scheme) -> None:
    """Every expiry on the ledger moved what was due when it was written, by the ledger
    before it (oldest credit spent first), and each member's credit expired at most once a
    day: whatever ran alongside the job, it expired neither too much nor twice."""
    assert scheme.credit_expiry_months is not None
    for member in await bank.members(scheme.id, limit=500):
        seen: list[tuple[Any, int]] = []
        days = []
        for e in await bank.history(scheme.id, member.id, limit=1000):
            amount = e.amount_for(member_account(member.id))
            if "expiry" in dict(e.meta):
                due = expiring_minutes(seen, e.time.date(), scheme.credit_expiry_months)
                assert -amount == due, (member.id, e.seq, -amount, due)
                days.append(e.time.date())
            seen.append((e.time.date(), amount))
        assert len(days) == len(set(days)), (member.id, days)


async def old_credit(b: Banks) -> tuple[Scheme, str, Claim, Claim]:
    """A scheme of the round's own whose credit expires after 12 months, and a member in it
    with an hour of credit older than that (its claim) and half an hour of new (its claim)."""
    scheme = await b.scheme(EXPIRING, credit_expiry_months=12)
    who = await b.member(scheme)
    old = await b.credit(scheme, who, 60)
    b.clock.advance(DAY)
    return scheme, who, old, await b.credit(scheme, who, 30)


async def credit_expired_by_two_jobs_at_once_expires_once(b: Banks) -> None:
    scheme, who, _, _ = await old_credit(b)
    other = await b.member(scheme)
    await b.credit(scheme, other, 45)
    b.clock.advance(DAY)  # now both members' credit is old
    today = b.one.today()
    outcomes = await both(
        b.one.expire_credits(scheme.id, today=today),
        b.other.expire_credits(scheme.id, today=today),
    )
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
        assert set(outcome.items()) <= {(who, 90), (other, 45)}, outcome
    assert await b.one.balance(scheme.id, who) == await b.one.balance(scheme.id, other) == 0
    await expiries_as_due(b.one, scheme)
    await agree(b.one, scheme)


async def credit_expired_as_new_hours_are_reversed_expires_what_is_due(b: Banks) -> None:
    scheme, who, _, new = await old_credit(b)
    expired, reversed_ = await both(
        b.one.expire_credits(scheme.id, today=b.one.today()),
        b.other.reverse_claim(scheme.id, new.id, by=CO, reason="logged twice"),
    )
    if isinstance(expired, BaseException):
        raise expired
    assert isinstance(reversed_, Claim) and reversed_.reversal_seq is not None, reversed_
    # reversed first: its half hour comes out of the oldest credit, and half an hour expires;
    # expired first: the hour expires, and the reversal takes the half hour left
    assert (expired, await b.one.balance(scheme.id, who)) in (({who: 30}, 30), ({who: 60}, 0))
    await expiries_as_due(b.one, scheme)
    await agree(b.one, scheme)


async def credit_expired_as_old_hours_are_reversed_expires_what_is_due(b: Banks) -> None:
    scheme, who, old, _ = await old_credit(b)
    expired, reversed_ = await both(
        b.one.expire_credits(scheme.id, today=b.one.today()),
        b.other.reverse_claim(scheme.id, old.id, by=CO, reason="logged twice"),
    )
    if isinstance(expired, BaseException):
        raise expired  # never the job refused for a floor the reversal reached first
    if refused(reversed_, FloorBreached, "member"):  # expired first: the hour is gone
        assert (expired, await b.one.balance(scheme.id, who)) == ({who: 60}, 30)
    else:  # reversed first: nothing old is left to expire
        assert isinstance(reversed_, Claim) and reversed_.reversal_seq is not None, reversed_
        assert (expired, await b.one.balance(scheme.id, who)) == ({}, 30)
    await expiries_as_due(b.one, scheme)
    await agree(b.one, scheme)


async def claims_accepted_by_two_jobs_at_once_are_confirmed_once(b: Banks) -> None:
    rules = ClaimRules(SchemeModel.PERSON_TO_PERSON)
    scheme = await b.scheme(rules, member_floor=-600, auto_accept_hours=1)
    due = []
    for _ in range(3):
        helper, helped = await b.member(scheme), await b.member(scheme)
        due.append(await b.pending(scheme, helper, 45, receiver=helped))
    b.clock.advance(2 * 3600)
    now = b.clock()
    outcomes = await both(
        b.one.auto_accept_due(scheme.id, now_us=now), b.other.auto_accept_due(scheme.id, now_us=now)
    )
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    for claim in due:
        final = await b.one.claim(scheme.id, claim.id)
        assert (final.status, final.decided_by) == (ClaimStatus.CONFIRMED, AUTO), final
        answers = [c for o in outcomes for c in o if c.id == claim.id]
        assert answers and all(a == final for a in answers), (final, answers)
    await agree(b.one, scheme)


Race = Callable[[Banks], Awaitable[None]]
RACES: list[Race] = [
    two_erasures_of_one_member_erase_once,
    adding_a_member_again_while_they_are_erased_is_refused_or_before,
    a_member_erased_as_they_are_added_is_erased_or_not_found,
    one_member_added_twice_at_once_is_added_once,
    one_id_added_twice_at_once_with_other_details_is_added_once,
    a_group_session_logged_as_a_member_is_erased_is_refused_or_whole,
    an_offer_withdrawn_twice_at_once_is_withdrawn,
    a_request_closed_twice_at_once_is_closed,
    an_offer_sent_twice_at_once_is_made_once,
    two_offers_under_one_key_at_once_make_one,
    an_offer_withdrawn_as_it_is_matched_is_matched_before_or_never,
    an_offer_made_as_its_member_is_erased_does_not_outlive_them,
    a_request_made_as_its_member_is_erased_does_not_outlive_them,
    a_claim_logged_as_its_activity_is_retired_is_pending_or_refused,
    one_claim_logged_twice_at_once_is_logged_once,
    one_hours_file_imported_twice_at_once_is_imported_once,
    one_members_file_imported_twice_at_once_adds_each_once,
    one_timeoverflow_file_imported_twice_at_once_adds_each_once,
    hours_imported_as_a_member_they_name_is_erased_are_refused_or_whole,
    credit_expired_by_two_jobs_at_once_expires_once,
    credit_expired_as_new_hours_are_reversed_expires_what_is_due,
    credit_expired_as_old_hours_are_reversed_expires_what_is_due,
    claims_accepted_by_two_jobs_at_once_are_confirmed_once,
]


@pytest.mark.parametrize("race", RACES, ids=lambda race: race.__name__)
async def test_each_pair_of_transitions_raced_takes_effect_once(banks: Banks, race: Race) -> None:
    for _ in range(SHORT):
        await race(banks)


@pytest.mark.slow
async def test_every_pair_raced_many_times_leaves_no_disagreement(banks: Banks) -> None:
    for _ in range(LONG):
        for race in RACES:
            await race(banks)
