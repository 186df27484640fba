"""What-if projections: a population giving hours, and their value."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from valuation import Range, display, project_hours

D = Decimal


def test_domain_o11_learning_to_lead_across_scotlands_schools() -> None:
    # 681,573 pupils x 1 hour a week x 39 weeks = 26,581,347 hours ("26.6 million").
    projection = project_hours(681_573, 1, 39, period="week")
    assert projection.hours == D(26_581_347)


def test_domain_o12_keyring_style_give_back() -> None:
    # 300,000 adults x 3 hours a year = 900,000 hours.
    projection = project_hours(300_000, 3, period="year")
    assert projection.hours == D(900_000)
    assert projection.value is None


def test_a_projection_is_valued_at_a_wage_range() -> None:
    # 900,000 hours at the 2024 NLW (£11.44) = £10,296,000; at (11.44, 12.00, 13.15):
    # 10,296,000, 10,800,000, 11,835,000.
    wage = Range(D("11.44"), D("12.00"), D("13.15"))
    projection = project_hours(300_000, 3, period="year", wage=wage)
    assert projection.value is not None
    assert [display(x) for x in (projection.value.low, projection.value.high)] == [
        "10,296,000.00",
        "11,835,000.00",
    ]
    assert projection.value.central == D(10_800_000)


def test_fractional_hours_stay_exact() -> None:
    # 7 people x 1.25 hours x 4.5 weeks = 39.375 hours.
    assert project_hours(7, D("1.25"), D("4.5")).hours == D("39.375")


def test_floats_and_negatives_are_refused() -> None:
    with pytest.raises(AssertionError, match="int or a Decimal"):
        project_hours(100, 1.5, 39)  # type: ignore[arg-type]
    with pytest.raises(AssertionError, match="int or a Decimal"):
        project_hours(True, 1, 39)
    with pytest.raises(AssertionError, match=">= 0"):
        project_hours(-1, 1, 39)


@given(st.integers(0, 10**7), st.integers(0, 168), st.integers(0, 52))
def test_hours_are_the_exact_product(population: int, per_week: int, weeks: int) -> None:
    assert project_hours(population, per_week, weeks).hours == population * per_week * weeks
