"""Both kinds of scheme end to end on a real SQLite file: log, confirm, reject, reverse."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from ledger import Conflict, FloorBreached, InvalidRequest, NotFound
from tests.conftest import SERVER_URL, Clock
from tests.timebank.helpers import activity, open_bank
from timebank.activities import CoSubform
from timebank.claims import ClaimDraft, ClaimRules, ClaimStatus, SchemeModel
from timebank.schemes import Member, Role, Scheme
from timebank.service import Forbidden, TimeBank

pytestmark = pytest.mark.both_backends

TODAY = date(2026, 1, 1)
TAFF = Scheme("taff-housing", "Taff Housing", ClaimRules(SchemeModel.TIME_CREDITS))
M2M = Scheme("member-to-member", "Member to Member", ClaimRules(SchemeModel.PERSON_TO_PERSON), -600)


@pytest.fixture
async def bank(tmp_path: Path, clock: Clock, db_url: str) -> AsyncIterator[TimeBank]:
    async with open_bank(tmp_path / "tb.db", clock, db_url if SERVER_URL else None) as tb:
        for scheme in (TAFF, M2M):
            await tb.create_scheme(scheme)
            await tb.add_member(Member(scheme.id, "C1", "Cath", frozenset({Role.COORDINATOR})))
            for who in ("A", "B"):
                await tb.add_member(Member(scheme.id, who, f"Member {who}"))
        await tb.add_activity(TAFF.id, activity("residents-garden"), by="C1")
        await tb.add_activity(M2M.id, activity("lifts", CoSubform.MUTUAL_AID), by="C1")
        yield tb


def logged(member: str = "A", **changes: object) -> ClaimDraft:
    base: dict[str, object] = {
        "member": member,
        "logged_by": member,
        "activity": "residents-garden",
        "day": TODAY,
        "minutes": 90,
    }
    base.update(changes)
    return ClaimDraft(**base)  # type: ignore[arg-type]


async def test_a_confirmed_time_credit_claim_issues_credits_on_the_ledger(bank: TimeBank) -> None:
    claim = await bank.log_claim(TAFF.id, logged(), today=TODAY, idempotency_key="k1")
    assert claim.status is ClaimStatus.PENDING and await bank.balance(TAFF.id, "A") == 0
    done = await bank.confirm_claim(TAFF.id, claim.id, by="C1")
    assert done.status is ClaimStatus.CONFIRMED and done.entry_seq is not None
    assert await bank.balance(TAFF.id, "A") == 90
    entry = await bank.ledger.entry(TAFF.id, done.entry_seq)
    assert dict(entry.meta)["claim"] == claim.id and "Member A" not in str(entry)
    assert await bank.confirm_claim(TAFF.id, claim.id, by="C1") == done  # idempotent


async def test_person_to_person_hours_move_from_the_member_helped_to_the_helper(
    bank: TimeBank,
) -> None:
    draft = logged("A", activity="lifts", receiver="B", minutes=60)
    claim = await bank.log_claim(M2M.id, draft, today=TODAY, idempotency_key="k1")
    with pytest.raises(Forbidden):
        await bank.confirm_claim(M2M.id, claim.id, by="A")  # not your own hours
    await bank.confirm_claim(M2M.id, claim.id, by="B")
    assert (await bank.balance(M2M.id, "A"), await bank.balance(M2M.id, "B")) == (60, -60)


async def test_retrying_a_log_returns_the_same_claim_and_a_reused_key_is_refused(
    bank: TimeBank,
) -> None:
    first = await bank.log_claim(TAFF.id, logged(), today=TODAY, idempotency_key="k1")
    assert await bank.log_claim(TAFF.id, logged(), today=TODAY, idempotency_key="k1") == first
    with pytest.raises(Conflict):
        await bank.log_claim(TAFF.id, logged(minutes=30), today=TODAY, idempotency_key="k1")


async def test_bad_claims_are_refused_naming_the_field(bank: TimeBank) -> None:
    cases: list[tuple[ClaimDraft, type[Exception], str]] = [
        (logged(day=TODAY + timedelta(days=1)), InvalidRequest, "date"),
        (logged(minutes=5), InvalidRequest, "minutes"),
        (logged(activity="unknown"), NotFound, "activity"),
        (logged("Z"), NotFound, "member"),
        (logged(logged_by="B"), InvalidRequest, "member"),
    ]
    for i, (draft, error, field) in enumerate(cases):
        with pytest.raises(error) as err:
            await bank.log_claim(TAFF.id, draft, today=TODAY, idempotency_key=f"bad{i}")
        assert err.value.field == field  # type: ignore[attr-defined]


async def test_a_coordinator_logs_for_a_member_without_a_phone_and_it_is_recorded(
    bank: TimeBank,
) -> None:
    draft = logged("A", logged_by="C1", logged_by_coordinator=True)
    claim = await bank.log_claim(TAFF.id, draft, today=TODAY, idempotency_key="k1")
    assert claim.on_behalf
    done = await bank.confirm_claim(TAFF.id, claim.id, by="C1")
    assert done.entry_seq is not None
    meta = dict((await bank.ledger.entry(TAFF.id, done.entry_seq)).meta)
    assert meta["logged-by"] == "C1"


async def test_a_rejected_claim_writes_nothing_to_the_ledger(bank: TimeBank) -> None:
    claim = await bank.log_claim(TAFF.id, logged(), today=TODAY, idempotency_key="k1")
    with pytest.raises(InvalidRequest):
        await bank.reject_claim(TAFF.id, claim.id, by="C1", reason=" ")
    done = await bank.reject_claim(TAFF.id, claim.id, by="C1", reason="not a scheme activity")
    assert done.status is ClaimStatus.REJECTED and done.entry_seq is None
    with pytest.raises(Conflict):
        await bank.confirm_claim(TAFF.id, claim.id, by="C1")
    assert await bank.balance(TAFF.id, "A") == 0


async def test_a_mistake_is_undone_by_a_reversal_with_its_reason_kept_off_the_ledger(
    bank: TimeBank,
) -> None:
    claim = await bank.log_claim(TAFF.id, logged(), today=TODAY, idempotency_key="k1")
    await bank.confirm_claim(TAFF.id, claim.id, by="C1")
    with pytest.raises(Forbidden):
        await bank.reverse_claim(TAFF.id, claim.id, by="A", reason="mine")
    done = await bank.reverse_claim(TAFF.id, claim.id, by="C1", reason="logged twice by Ann")
    assert done.reversal_seq is not None and await bank.balance(TAFF.id, "A") == 0
    entry = await bank.ledger.entry(TAFF.id, done.reversal_seq)
    assert entry.ref == done.entry_seq and "Ann" not in str(entry.meta)


async def test_a_reversal_of_hours_already_spent_names_the_member_not_their_account(
    bank: TimeBank,
) -> None:
    claim = await bank.log_claim(TAFF.id, logged(), today=TODAY, idempotency_key="k1")
    await bank.confirm_claim(TAFF.id, claim.id, by="C1")
    await bank.ledger.transfer(TAFF.id, [("member:A", -90), ("scheme:expired", 90)],
                               idempotency_key="spent")  # fmt: skip
    with pytest.raises(FloorBreached) as refused:
        await bank.reverse_claim(TAFF.id, claim.id, by="C1", reason="logged twice")
    assert refused.value.field == "member" and "member:" not in refused.value.message
    assert refused.value.message.startswith("A has spent these hours")
    assert (await bank.claim(TAFF.id, claim.id)).reversal_seq is None


async def test_a_person_to_person_member_stops_at_the_schemes_floor(bank: TimeBank) -> None:
    for i in range(10):
        draft = logged("A", activity="lifts", receiver="B", minutes=60, day=TODAY - timedelta(i))
        claim = await bank.log_claim(M2M.id, draft, today=TODAY, idempotency_key=f"k{i}")
        await bank.confirm_claim(M2M.id, claim.id, by="B")
    draft = logged("A", activity="lifts", receiver="B", minutes=60, day=TODAY - timedelta(11))
    claim = await bank.log_claim(M2M.id, draft, today=TODAY, idempotency_key="k-over")
    with pytest.raises(FloorBreached) as refused:
        await bank.confirm_claim(M2M.id, claim.id, by="B")
    assert refused.value.field == "receiver"
    assert await bank.balance(M2M.id, "B") == -600
    # once B has given an hour back, the same claim can be confirmed
    back = logged("B", activity="lifts", receiver="A", minutes=60, day=TODAY)
    help_back = await bank.log_claim(M2M.id, back, today=TODAY, idempotency_key="k-back")
    await bank.confirm_claim(M2M.id, help_back.id, by="A")
    done = await bank.confirm_claim(M2M.id, claim.id, by="B")
    assert done.status is ClaimStatus.CONFIRMED and await bank.balance(M2M.id, "B") == -600


async def test_an_unanswered_person_to_person_claim_is_accepted_after_the_schemes_delay(
    tmp_path: Path, clock: Clock, db_url: str
) -> None:
    async with open_bank(tmp_path / "auto.db", clock, db_url if SERVER_URL else None) as tb:
        bank = Scheme("m2m", "M2M", ClaimRules(SchemeModel.PERSON_TO_PERSON), -600, None, 48)
        await tb.create_scheme(bank)
        await tb.add_member(Member("m2m", "C1", "Cath", frozenset({Role.COORDINATOR})))
        for who in ("A", "B"):
            await tb.add_member(Member("m2m", who, who))
        await tb.add_activity("m2m", activity("lifts", CoSubform.MUTUAL_AID), by="C1")
        draft = logged("A", activity="lifts", receiver="B", minutes=60)
        claim = await tb.log_claim("m2m", draft, today=TODAY, idempotency_key="k")
        clock.advance(47 * 3600)
        assert await tb.auto_accept_due("m2m", now_us=clock()) == []
        clock.advance(2 * 3600)
        [done] = await tb.auto_accept_due("m2m", now_us=clock())
        assert done.id == claim.id and done.decided_by == "auto"
        assert await tb.balance("m2m", "A") == 60


async def test_credit_older_than_the_expiry_period_moves_to_the_expiry_account(
    tmp_path: Path, clock: Clock, db_url: str
) -> None:
    async with open_bank(tmp_path / "expiry.db", clock, db_url if SERVER_URL else None) as tb:
        scheme = Scheme("taff", "Taff", ClaimRules(SchemeModel.TIME_CREDITS), 0, 6)
        await tb.create_scheme(scheme)
        await tb.add_member(Member("taff", "C1", "Cath", frozenset({Role.COORDINATOR})))
        await tb.add_member(Member("taff", "A", "Ann"))
        await tb.add_activity("taff", activity("residents-garden"), by="C1")
        first = await tb.log_claim("taff", logged(minutes=120), today=TODAY, idempotency_key="k1")
        await tb.confirm_claim("taff", first.id, by="C1")
        clock.advance(200 * 86400)  # about six and a half months later
        later = clock_day(clock)
        second = await tb.log_claim(
            "taff", logged(minutes=60, day=later), today=later, idempotency_key="k2"
        )
        await tb.confirm_claim("taff", second.id, by="C1")
        assert await tb.expire_credits("taff", today=later) == {"A": 120}
        assert await tb.balance("taff", "A") == 60
        assert await tb.expire_credits("taff", today=later) == {}  # nothing left to expire
        assert (await tb.ledger.account("taff", "scheme:expired")).balance == 120


def clock_day(clock: Clock) -> date:
    from ledger import from_us

    return from_us(clock()).date()


async def test_coordinators_see_who_has_given_too_many_hours_week_after_week(
    bank: TimeBank,
) -> None:
    day = TODAY
    for week in range(3):
        for d in range(3):
            when = day - timedelta(weeks=week, days=d)
            draft = logged("A", minutes=480, day=when)
            claim = await bank.log_claim(TAFF.id, draft, today=TODAY, idempotency_key=f"{week}{d}")
            await bank.confirm_claim(TAFF.id, claim.id, by="C1")
    claim = await bank.log_claim(TAFF.id, logged("B"), today=TODAY, idempotency_key="b")
    await bank.confirm_claim(TAFF.id, claim.id, by="C1")
    assert await bank.burnout_flags(TAFF.id, by="C1", today=TODAY, hours_per_week=20) == {"A"}
    with pytest.raises(Forbidden):
        await bank.burnout_flags(TAFF.id, by="B", today=TODAY)
