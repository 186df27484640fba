"""The claim rules: what may be logged, who confirms, and what a confirmed claim posts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from timebank.claims import (
    MINUTES_PER_DAY,
    ClaimDraft,
    ClaimProblem,
    ClaimRules,
    ClaimStatus,
    LoggedClaim,
    SchemeModel,
    claim_postings,
    claim_problems,
    confirmer_problem,
    is_duplicate,
)

TODAY = date(2026, 11, 23)
CREDITS = ClaimRules(SchemeModel.TIME_CREDITS, min_minutes=15, max_minutes=480)
P2P = ClaimRules(SchemeModel.PERSON_TO_PERSON)


def draft(**changes: object) -> ClaimDraft:
    base: dict[str, object] = {
        "member": "T1",
        "logged_by": "T1",
        "activity": "garden",
        "day": TODAY,
        "minutes": 60,
    }
    base.update(changes)
    return ClaimDraft(**base)  # type: ignore[arg-type]


def fields(problems: Sequence[ClaimProblem]) -> list[str]:
    return [p.field for p in problems]


def test_a_plain_claim_for_today_is_accepted() -> None:
    assert claim_problems(draft(), CREDITS, TODAY, []) == []


@pytest.mark.parametrize("minutes", [0, 14, 481, -60])
def test_minutes_outside_the_schemes_bounds_are_refused_naming_the_field(minutes: int) -> None:
    assert "minutes" in fields(claim_problems(draft(minutes=minutes), CREDITS, TODAY, []))


def test_non_integer_minutes_are_refused() -> None:
    problems = claim_problems(draft(minutes=60.5), CREDITS, TODAY, [])
    assert fields(problems) == ["minutes"]


def test_a_future_day_is_refused() -> None:
    problems = claim_problems(draft(day=TODAY + timedelta(days=1)), CREDITS, TODAY, [])
    assert fields(problems) == ["date"]


def test_a_day_cannot_hold_more_than_24_hours_but_rejected_claims_do_not_count() -> None:
    logged = [LoggedClaim("T1", "garden", TODAY, 480, ClaimStatus.CONFIRMED)] * 2 + [
        LoggedClaim("T1", "garden", TODAY, 480, ClaimStatus.PENDING)
    ]
    assert fields(claim_problems(draft(minutes=15), CREDITS, TODAY, logged)) == ["minutes"]
    logged[-1] = LoggedClaim("T1", "garden", TODAY, 480, ClaimStatus.REJECTED)
    assert claim_problems(draft(minutes=480), CREDITS, TODAY, logged) == []


@given(st.lists(st.integers(15, 480), max_size=8), st.integers(15, 480))
def test_the_day_total_never_exceeds_1440_minutes(earlier: list[int], minutes: int) -> None:
    logged = [LoggedClaim("T1", "garden", TODAY, m, ClaimStatus.PENDING) for m in earlier]
    ok = "minutes" not in fields(claim_problems(draft(minutes=minutes), CREDITS, TODAY, logged))
    assert ok == (sum(earlier) + minutes <= MINUTES_PER_DAY)


def test_logging_for_someone_else_needs_a_coordinator_or_the_schemes_permission() -> None:
    other = draft(logged_by="T2")
    assert fields(claim_problems(other, CREDITS, TODAY, [])) == ["member"]
    relaxed = ClaimRules(SchemeModel.TIME_CREDITS, members_may_log_for_others=True)
    assert claim_problems(other, relaxed, TODAY, []) == []


def test_coordinator_logging_on_a_members_behalf_is_accepted() -> None:
    assert (
        claim_problems(draft(logged_by="C1", logged_by_coordinator=True), CREDITS, TODAY, []) == []
    )


def test_person_to_person_claims_name_another_member_as_receiver() -> None:
    assert fields(claim_problems(draft(), P2P, TODAY, [])) == ["receiver"]
    assert fields(claim_problems(draft(receiver="T1"), P2P, TODAY, [])) == ["receiver"]
    assert claim_problems(draft(receiver="E2"), P2P, TODAY, []) == []
    assert fields(claim_problems(draft(receiver="E2"), CREDITS, TODAY, [])) == ["receiver"]


def test_a_claim_like_a_logged_one_is_flagged_as_a_duplicate_unless_that_was_rejected() -> None:
    same = LoggedClaim("T1", "garden", TODAY, 60, ClaimStatus.PENDING)
    assert is_duplicate(draft(), [same])
    assert not is_duplicate(draft(minutes=90), [same])
    assert not is_duplicate(draft(), [LoggedClaim("T1", "garden", TODAY, 60, ClaimStatus.REJECTED)])


def test_nobody_confirms_their_own_hours() -> None:
    assert confirmer_problem(CREDITS, "C1", None, "C1", True) is not None
    assert confirmer_problem(P2P, "E1", "E2", "E1", False) is not None


def test_time_credit_claims_are_confirmed_by_a_coordinator() -> None:
    assert confirmer_problem(CREDITS, "T1", None, "C1", True) is None
    assert confirmer_problem(CREDITS, "T1", None, "T2", False) is not None


def test_person_to_person_claims_are_confirmed_by_the_member_helped_or_a_coordinator() -> None:
    assert confirmer_problem(P2P, "E1", "E2", "E2", False) is None
    assert confirmer_problem(P2P, "E1", "E2", "C1", True) is None
    assert confirmer_problem(P2P, "E1", "E2", "E3", False) is not None


def test_a_confirmed_claim_posts_balanced_minutes_by_scheme_model() -> None:
    issued = claim_postings(CREDITS, "member:T1", 90, "scheme:issuance")
    assert issued == [("scheme:issuance", -90), ("member:T1", 90)]
    moved = claim_postings(P2P, "member:E1", 60, "scheme:issuance", "member:E2")
    assert moved == [("member:E2", -60), ("member:E1", 60)]
    assert sum(m for _, m in issued) == sum(m for _, m in moved) == 0


def test_a_claim_older_than_the_schemes_days_back_is_refused_unless_it_is_history() -> None:
    rules = ClaimRules(SchemeModel.TIME_CREDITS, days_back=7)
    today = date(2026, 3, 10)
    draft = ClaimDraft("M1", "M1", "garden", date(2026, 3, 3), 60)  # seven days ago: the limit
    assert claim_problems(draft, rules, today, []) == []
    old = ClaimDraft("M1", "M1", "garden", date(2026, 3, 2), 60)
    assert [p.field for p in claim_problems(old, rules, today, [])] == ["date"]
    assert claim_problems(old, rules, today, [], history=True) == []
    assert claim_problems(old, ClaimRules(SchemeModel.TIME_CREDITS), today, []) == []
