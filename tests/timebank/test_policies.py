"""Credit expiry (first in, first out) and the burn-out guard."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from timebank.policies import add_months, burnout_flags, expiring_minutes, week_start

TODAY = date(2026, 11, 23)


def test_add_months_clamps_to_the_end_of_a_shorter_month() -> None:
    assert add_months(date(2026, 3, 31), -1) == date(2026, 2, 28)
    assert add_months(date(2026, 1, 15), 12) == date(2027, 1, 15)
    assert add_months(date(2026, 1, 15), -13) == date(2024, 12, 15)


def test_only_credit_older_than_the_cutoff_expires() -> None:
    old, recent = date(2026, 1, 10), date(2026, 10, 1)
    assert expiring_minutes([(old, 120), (recent, 60)], TODAY, 6) == 120


def test_spending_uses_the_oldest_credit_first() -> None:
    old, recent = date(2026, 1, 10), date(2026, 10, 1)
    movements = [(old, 120), (recent, 60), (recent, -90)]  # 90 of the old 120 spent
    assert expiring_minutes(movements, TODAY, 6) == 30


def test_an_earlier_expiry_is_not_expired_again() -> None:
    old = date(2026, 1, 10)
    movements = [(old, 120), (date(2026, 8, 1), -120)]
    assert expiring_minutes(movements, TODAY, 6) == 0


@given(st.lists(st.tuples(st.integers(0, 400), st.integers(-200, 200)), max_size=30))
def test_expiry_never_exceeds_the_balance_or_goes_negative(raw: list[tuple[int, int]]) -> None:
    movements = sorted(((TODAY - timedelta(days=d), a) for d, a in raw if a), key=lambda m: m[0])
    balance = sum(a for _, a in movements)
    assert 0 <= expiring_minutes(movements, TODAY, 6) <= max(balance, 0)


def test_credit_first_pays_off_a_debt_and_only_the_rest_can_expire() -> None:
    old = date(2026, 1, 10)
    assert expiring_minutes([(old, -100), (old, 160)], TODAY, 6) == 60


def test_weeks_start_on_monday() -> None:
    assert week_start(TODAY) == date(2026, 11, 23)  # a Monday
    assert week_start(date(2026, 11, 29)) == date(2026, 11, 23)


def test_burnout_flags_members_over_the_threshold_every_recent_week() -> None:
    hours = []
    for k in range(3):
        monday = week_start(TODAY) - timedelta(weeks=k)
        hours.append(("busy", monday, 25 * 60))
        hours.append(("steady", monday, 5 * 60))
    hours.append(("spike", TODAY, 30 * 60))  # one heavy week only
    assert burnout_flags(hours, TODAY, 20 * 60, 3) == {"busy"}
    assert burnout_flags(hours, TODAY, 20 * 60, 1) == {"busy", "spike"}
