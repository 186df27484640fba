"""A report's unmonetised views, from a real database: hours by activity and month, unique
members against participations, reciprocity, equality with small cells suppressed, shares, the
inventory, and the checkpoint the report is pinned to.

The expected figures are computed in the test from the claims it made, not from the report.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from ledger import to_us
from tests.conftest import SERVER_URL, Clock
from tests.timebank.helpers import activity, open_bank
from timebank.activities import RelationToPaidWork, Voluntariness
from timebank.books import scheme_books
from timebank.claims import ClaimDraft, ClaimRules, SchemeModel
from timebank.schemes import Member, Role, Scheme
from timebank.service import TimeBank
from valuation.catalogue import shipped_catalogue
from valuation.reports import outputs
from valuation.reports.engine import Parameters, build
from valuation.reports.gather import gather

pytestmark = pytest.mark.both_backends

TAFF = Scheme("taff", "Taff", ClaimRules(SchemeModel.TIME_CREDITS))
M2M = Scheme("m2m", "Member to Member", ClaimRules(SchemeModel.PERSON_TO_PERSON), -600)
PEOPLE = [f"M{n:02d}" for n in range(1, 25)]
JAN1, FEB28 = date(2026, 1, 1), date(2026, 2, 28)


def answers(n: int) -> dict[str, str]:
    """Monitoring answers: the first 20 consented (12 in CF10, 8 in CF24), the rest none."""
    if n >= 20:
        return {}
    return {"consent": "yes", "area_code": "CF10" if n < 12 else "CF24",
            "age_band": "65-74" if n < 3 else "25-34"}  # fmt: skip


@pytest.fixture
async def bank(tmp_path: Path, clock: Clock, db_url: str) -> AsyncIterator[TimeBank]:
    clock.now_us = to_us(datetime(2026, 3, 10, tzinfo=UTC))
    async with open_bank(tmp_path / "report.db", clock, db_url if SERVER_URL else None) as bank:
        for scheme in (TAFF, M2M):
            await bank.create_scheme(scheme)
            await bank.add_member(Member(scheme.id, "C1", "Co", frozenset({Role.COORDINATOR})))
            for n, who in enumerate(PEOPLE):
                await bank.add_member(
                    Member(scheme.id, who, f"Person {who}", attributes=answers(n))
                )
        garden = activity("garden")
        panel = replace(activity("inspection"), relation=RelationToPaidWork.SUBSTITUTES)
        court = replace(activity("youth-court"), voluntariness=Voluntariness.MANDATED)
        for a in (garden, panel, court):
            await bank.add_activity(TAFF.id, a, by="C1")
        await bank.add_activity(M2M.id, activity("lifts"), by="C1")
        yield bank


async def confirmed(bank: TimeBank, scheme: str, draft: ClaimDraft, key: str) -> str:
    logged = await bank.log_claim(scheme, draft, today=bank.today(), idempotency_key=key)
    by = draft.receiver or "C1"
    return (await bank.confirm_claim(scheme, logged.id, by=by)).id


async def test_hours_by_activity_and_month_count_confirmed_unreversed_claims_by_day_given(
    bank: TimeBank,
) -> None:
    rng = random.Random(5)
    expected: Counter[tuple[str, str]] = Counter()
    members: defaultdict[str, set[str]] = defaultdict(set)
    sessions: defaultdict[str, set[date]] = defaultdict(set)
    for i in range(120):
        who, act = rng.choice(PEOPLE), rng.choice(["garden", "inspection", "youth-court"])
        day = date(2026, rng.choice([1, 2]), rng.randint(1, 28))
        minutes = rng.choice([30, 60, 90, 120])
        claim = await confirmed(bank, TAFF.id, ClaimDraft(who, who, act, day, minutes), f"k{i}")
        if i % 10 == 0:  # every tenth undone by a reversal: not counted
            await bank.reverse_claim(TAFF.id, claim, by="C1", reason="logged twice")
            continue
        expected[(act, day.isoformat()[:7])] += minutes
        members[act].add(who)
        sessions[act].add(day)
    # outside the counted set: a pending claim, and a claim given in December
    await bank.log_claim(TAFF.id, ClaimDraft("M01", "M01", "garden", date(2026, 1, 5), 60),
                         today=bank.today(), idempotency_key="pending")  # fmt: skip
    await confirmed(
        bank, TAFF.id, ClaimDraft("M01", "M01", "garden", date(2025, 12, 30), 45), "dec"
    )

    facts = await gather(bank, TAFF.id, JAN1, FEB28)

    assert {(c.activity, c.month): c.minutes for c in facts.cells} == dict(expected)
    rows = {r["activity"]: r for r in outputs.by_activity(facts)}
    for act, people in members.items():
        assert rows[act]["members"] == len(people)
        assert rows[act]["sessions"] == len(sessions[act])
        assert rows[act]["minutes"] == sum(m for (a, _), m in expected.items() if a == act)
    assert facts.unique_members == len(set().union(*members.values()))
    part = outputs.participation(facts)
    assert part["participations"] == 108 and part["minutes"] == sum(expected.values())
    shares = outputs.shares(facts)
    panel = sum(m for (a, _), m in expected.items() if a == "inspection")
    court = sum(m for (a, _), m in expected.items() if a == "youth-court")
    assert shares["substitutes_staff"]["minutes"] == panel
    assert shares["mandated"]["minutes"] == court
    assert shares["voluntary"]["minutes"] == sum(expected.values()) - court


async def test_a_report_pinned_to_an_earlier_checkpoint_leaves_out_later_claims_and_reversals(
    bank: TimeBank,
) -> None:
    kept = await confirmed(bank, TAFF.id, ClaimDraft("M01", "M01", "garden", JAN1, 60), "a")
    early = await gather(bank, TAFF.id, JAN1, FEB28)
    await confirmed(bank, TAFF.id, ClaimDraft("M02", "M02", "garden", JAN1, 90), "b")
    await bank.reverse_claim(TAFF.id, kept, by="C1", reason="mistake")

    again = await gather(bank, TAFF.id, JAN1, FEB28, size=early.checkpoint.size)
    now = await gather(bank, TAFF.id, JAN1, FEB28)

    assert again == early
    assert [(c.activity, c.minutes) for c in again.cells] == [("garden", 60)]
    assert [(c.activity, c.minutes) for c in now.cells] == [("garden", 90)]
    assert now.checkpoint.size > early.checkpoint.size


async def test_equality_suppresses_groups_smaller_than_k_and_never_names_members(
    bank: TimeBank,
) -> None:
    for n, who in enumerate(PEOPLE):
        await confirmed(bank, TAFF.id, ClaimDraft(who, who, "garden", JAN1, 60 + n), f"e{n}")
    facts = await gather(bank, TAFF.id, JAN1, FEB28)

    view = outputs.equality(facts, k=10)

    areas = {r["answer"]: r for r in view["area_code"]}
    assert areas["CF10"] == {"answer": "CF10", "suppressed": False, "members": 12,
                             "minutes": 786, "hours": "13.10"}  # fmt: skip
    assert areas["CF24"]["suppressed"] and areas["CF24"]["minutes"] is None  # 8 < 10
    assert areas["(not answered)"]["suppressed"]  # 4 without consent
    ages = {r["answer"]: r for r in view["age_band"]}
    assert ages["65-74"]["suppressed"] and ages["65-74"]["members"] is None  # 3 people
    assert ages["25-34"]["members"] == 17
    older = [r for r in outputs.equality(facts, k=3)["age_band"] if r["answer"] == "65-74"]
    assert older[0]["members"] == 3 and older[0]["minutes"] == 60 + 61 + 62
    assert not any(p in str(view) for p in PEOPLE) and "Person" not in str(view)


async def test_reciprocity_counts_who_gave_and_who_received_in_a_person_to_person_scheme(
    bank: TimeBank,
) -> None:
    pairs = [("M01", "M02", 60), ("M02", "M01", 30), ("M03", "M04", 120), ("M03", "M05", 45)]
    for i, (giver, receiver, minutes) in enumerate(pairs):
        draft = ClaimDraft(giver, giver, "lifts", JAN1, minutes, receiver=receiver)
        await confirmed(bank, M2M.id, draft, f"p{i}")
    facts = await gather(bank, M2M.id, JAN1, FEB28)

    view = outputs.reciprocity(facts)

    assert view == {"members_gave_and_received": 2, "members_only_gave": 1,
                    "members_only_received": 2, "minutes_received": 255,
                    "hours_received": "4.25"}  # fmt: skip


async def test_the_report_states_its_checkpoint_and_puts_hours_and_credits_first(
    bank: TimeBank,
) -> None:
    await confirmed(bank, TAFF.id, ClaimDraft("M01", "M01", "garden", JAN1, 90), "a")
    facts = await gather(bank, TAFF.id, JAN1, FEB28)
    books = await scheme_books(bank.ledger, TAFF.id, JAN1, date(2026, 3, 10),
                               size=facts.checkpoint.size)  # fmt: skip

    report = build(facts, books, Parameters(), shipped_catalogue())

    checkpoints = await bank.ledger.checkpoints(TAFF.id)
    assert report["checkpoint"]["size"] == checkpoints[-1].size == facts.checkpoint.size
    assert report["checkpoint"]["root"] == checkpoints[-1].root.hex()
    assert list(report["headline"])[:2] == ["hours", "minutes"]
    assert report["headline"]["hours"] == "1.50" and report["headline"]["credits_issued"] == 90
    assert report["outputs"]["credits"]["balanced"] is True
    inventory = {r["activity"]: r["active"] for r in report["inventory"]["activities"]}
    assert inventory == {"garden": True, "inspection": False, "youth-court": False}


async def test_a_period_that_ends_before_it_starts_is_refused_naming_the_field(
    bank: TimeBank,
) -> None:
    from ledger import InvalidRequest

    with pytest.raises(InvalidRequest) as refused:
        await gather(bank, TAFF.id, FEB28, JAN1)
    assert refused.value.field == "to"
