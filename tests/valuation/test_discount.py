"""Discount factors (SROI Guide and Green Book timing, declining schedules) and present values."""

from __future__ import annotations

from decimal import Decimal, localcontext
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from valuation import (
    GREEN_BOOK_HEALTH,
    GREEN_BOOK_STPR,
    VALUATION_CONTEXT,
    DiscountBand,
    NoDiscountRate,
    Range,
    discount_factors,
    display,
    flat_rate,
    present_value,
    rate_for_year,
)

D = Decimal
STREAM = [D(10_000), D(8_000), D(6_400)]  # 20% drop-off a year
AT_3_5 = flat_rate(D("0.035"))


def test_golden_vector_1_year_one_discounted_sroi_guide() -> None:
    # VALUATION 7.6 #1: 10,000/1.035 + 8,000/1.035^2 + 6,400/1.035^3
    #                 = 9,661.84 + 7,468.09 + 5,772.43 = 22,902.35
    factors = discount_factors(3, AT_3_5, start=1)
    terms = [display(v * f) for v, f in zip(STREAM, factors, strict=True)]
    assert terms == ["9,661.84", "7,468.09", "5,772.43"]
    assert display(present_value(STREAM, factors).central) == "22,902.35"


def test_golden_vector_1_year_zero_undiscounted_green_book() -> None:
    # 10,000 + 8,000/1.035 + 6,400/1.035^2 = 10,000 + 7,729.47 + 5,974.47 = 23,703.94
    factors = discount_factors(3, AT_3_5, start=0)
    assert factors[0] == 1
    assert display(present_value(STREAM, factors).central) == "23,703.94"


def test_the_first_factor_is_one_discount_under_the_sroi_guide() -> None:
    with localcontext(VALUATION_CONTEXT):
        assert discount_factors(1, AT_3_5, start=1) == [1 / D("1.035")]


def test_a_declining_schedule_applies_the_rate_of_each_years_band() -> None:
    # Year 31 = thirty years at 3.5%, then one at 3.0%; year 76 adds 45 at 3.0% and one at 2.5%.
    factors = discount_factors(76, GREEN_BOOK_STPR, start=1)
    with localcontext(VALUATION_CONTEXT):
        year_30 = 1 / D("1.035") ** 30
        year_31 = year_30 / D("1.03")
        year_76 = year_31 / D("1.03") ** 44 / D("1.025")
    assert abs(factors[29] - year_30) < D("1e-30")
    assert abs(factors[30] - year_31) < D("1e-30")
    assert abs(factors[75] - year_76) < D("1e-30")
    assert rate_for_year(30, GREEN_BOOK_STPR) == D("0.035")
    assert rate_for_year(31, GREEN_BOOK_STPR) == D("0.030")
    assert rate_for_year(125, GREEN_BOOK_STPR) == D("0.025")


def test_a_year_no_band_covers_is_refused() -> None:
    with pytest.raises(NoDiscountRate, match="year 126"):
        discount_factors(126, GREEN_BOOK_STPR, start=1)
    assert len(discount_factors(125, GREEN_BOOK_STPR, start=1)) == 125


def test_the_health_rate_is_one_and_a_half_percent_for_every_year() -> None:
    assert rate_for_year(0, GREEN_BOOK_HEALTH) == rate_for_year(500, GREEN_BOOK_HEALTH)
    assert rate_for_year(0, GREEN_BOOK_HEALTH) == D("0.015")


def test_overlapping_or_unordered_bands_are_refused() -> None:
    overlapping = (DiscountBand(0, 30, D("0.035")), DiscountBand(30, None, D("0.03")))
    with pytest.raises(AssertionError, match="without overlap"):
        discount_factors(3, overlapping, start=1)
    with pytest.raises(AssertionError, match="fraction"):
        DiscountBand(0, None, D("1.5"))
    with pytest.raises(AssertionError, match="start must be 0"):
        discount_factors(3, AT_3_5, start=2)


def test_present_value_carries_ranges_and_needs_one_factor_per_value() -> None:
    values: list[Decimal | Range] = [Range(D(90), D(100), D(110)), D(50)]
    factors = [D(1), D("0.5")]
    # (90 + 25, 100 + 25, 110 + 25)
    assert present_value(values, factors) == Range(D(115), D(125), D(135))
    with pytest.raises(AssertionError, match="one factor per value"):
        present_value(values, [D(1)])


rates = st.decimals(min_value=D(0), max_value=D("0.2"), places=3)


@st.composite
def schedules(draw: st.DrawFn) -> tuple[DiscountBand, ...]:
    cuts = sorted(set(draw(st.lists(st.integers(1, 40), max_size=3))))
    starts = [0, *cuts]
    ends: list[int | None] = [c - 1 for c in cuts] + [None]
    return tuple(DiscountBand(a, b, draw(rates)) for a, b in zip(starts, ends, strict=True))


@given(st.lists(st.decimals(-(10**6), 10**6, places=2), max_size=20), st.sampled_from([0, 1]))
def test_pv_with_all_zero_rates_is_the_plain_sum(values: list[Decimal], start: int) -> None:
    factors = discount_factors(len(values), flat_rate(D(0)), start)
    assert all(f == 1 for f in factors)
    assert present_value(values, factors).central == sum(values, D(0))


@given(schedules(), st.integers(1, 60), st.sampled_from([0, 1]))
def test_discount_factors_never_increase_and_stay_in_0_1(
    bands: tuple[DiscountBand, ...], n: int, start: int
) -> None:
    factors = discount_factors(n, bands, start)
    assert len(factors) == n
    assert all(0 < f <= 1 for f in factors)
    for year, (before, after) in enumerate(pairwise(factors), start + 1):
        if rate_for_year(year, bands) > 0:
            assert after < before
        else:
            assert after == before


@given(st.sampled_from([0, 1]), st.integers(1, 30))
def test_factors_at_a_positive_rate_are_strictly_decreasing(start: int, n: int) -> None:
    factors = discount_factors(n, AT_3_5, start)
    assert all(a > b for a, b in pairwise(factors))
