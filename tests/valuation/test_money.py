"""Ranges, display rounding, minor units and the currency guard of `valuation.money`."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, localcontext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from valuation import (
    VALUATION_CONTEXT,
    ZERO_RANGE,
    CurrencyMix,
    Range,
    convert,
    display,
    divide,
    minor_units,
    same_currency,
    sum_ranges,
)

D = Decimal

amounts = st.decimals(
    min_value=D("-1000000"), max_value=D("1000000"), places=4, allow_nan=False, allow_infinity=False
)


@st.composite
def ranges(draw: st.DrawFn) -> Range:
    low, central, high = sorted(draw(st.lists(amounts, min_size=3, max_size=3)))
    return Range(low, central, high)


@st.composite
def range_and_member(draw: st.DrawFn) -> tuple[Range, Decimal]:
    r = draw(ranges())
    return r, draw(st.sampled_from([r.low, r.central, r.high, (r.low + r.high) / 2]))


def r(low: str, central: str, high: str) -> Range:
    return Range(D(low), D(central), D(high))


def test_a_range_refuses_ends_out_of_order() -> None:
    with pytest.raises(AssertionError, match="low <= central <= high"):
        r("2", "1", "3")
    with pytest.raises(AssertionError, match="low <= central <= high"):
        r("1", "4", "3")


def test_a_range_refuses_floats_and_ints() -> None:
    with pytest.raises(AssertionError, match="must be a Decimal"):
        Range(1.0, D(1), D(1))  # type: ignore[arg-type]
    with pytest.raises(AssertionError, match="must be a Decimal"):
        Range.point(1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        r("1", "2", "3") * 2.0  # type: ignore[operator]


def test_point_is_a_range_of_one_value() -> None:
    p = Range.point(D("11.44"))
    assert (p.low, p.central, p.high) == (D("11.44"),) * 3
    assert p.is_point and p.width == 0


def test_addition_adds_end_to_end() -> None:
    assert r("1", "2", "3") + r("10", "20", "30") == r("11", "22", "33")


def test_subtraction_takes_the_opposite_ends_and_may_go_negative() -> None:
    # (10, 20, 30) - (1, 2, 3) = (10 - 3, 20 - 2, 30 - 1)
    assert r("10", "20", "30") - r("1", "2", "3") == r("7", "18", "29")
    # A net value: PV (5, 8, 9) - cost (6, 7, 10) = (-5, 1, 3).
    assert r("5", "8", "9") - r("6", "7", "10") == r("-5", "1", "3")


def test_a_negative_scalar_swaps_the_ends() -> None:
    assert r("1", "2", "3") * D(-2) == r("-6", "-4", "-2")
    assert D(3) * r("1", "2", "3") == r("3", "6", "9")
    assert r("1", "2", "3").scale(D("0.5")) == r("0.5", "1.0", "1.5")


def test_the_product_of_two_ranges_takes_the_extreme_corners() -> None:
    # Corners of (-1..3) x (4..6): -4, -6, 12, 18; central 2 x 5 = 10.
    assert r("-1", "2", "3") * r("4", "5", "6") == r("-6", "10", "18")


def test_sum_of_no_ranges_is_zero() -> None:
    assert sum_ranges([]) == ZERO_RANGE
    assert sum_ranges([r("1", "2", "3"), r("1", "1", "1")]) == r("2", "3", "4")


def test_division_takes_extreme_corners_and_refuses_a_denominator_reaching_zero() -> None:
    # (10, 20, 30) / (2, 4, 5): low 10 / 5 = 2, central 20 / 4 = 5, high 30 / 2 = 15.
    assert divide(r("10", "20", "30"), r("2", "4", "5")) == r("2", "5", "15")
    assert divide(r("10", "20", "30"), ZERO_RANGE) is None
    assert divide(r("10", "20", "30"), r("0", "4", "5")) is None


def test_comparison_helpers() -> None:
    a = r("1", "2", "3")
    assert a.contains(D(1)) and a.contains(D(3)) and not a.contains(D("3.01"))
    assert a.above(D("0.99")) and not a.above(D(1))
    assert a.below(D("3.01")) and not a.below(D(3))
    assert a.overlaps(r("3", "4", "5")) and not a.overlaps(r("3.5", "4", "5"))
    assert a.at_least(Range.point(D(2))) == r("2", "2", "3")


def test_display_rounds_half_up_with_thousands_commas() -> None:
    assert display(D("1234.565")) == "1,234.57"  # half-even would give 1,234.56
    assert display(D("1234567.891")) == "1,234,567.89"
    assert display(D("2.5"), places=0) == "3"
    assert display(D("-1234.565")) == "-1,234.57"
    assert display(D("-0.004")) == "0.00"  # never "-0.00"
    assert display(D(11440)) == "11,440.00"


def test_display_does_not_depend_on_the_callers_decimal_context() -> None:
    with localcontext() as ctx:
        ctx.prec = 5
        assert display(D("1234567.891")) == "1,234,567.89"
        assert (r("1", "2", "3") * D("1.23456789")).central == D("2.46913578")
        assert (-Range.point(D("1.23456789"))).low == D("-1.23456789")


def test_minor_units_round_half_up() -> None:
    assert minor_units(D("1.005")) == 101
    assert minor_units(D("0.125")) == 13
    assert minor_units(D("11440")) == 1_144_000
    assert minor_units(D("-2.345")) == -235


def test_rounded_range_is_for_display_only() -> None:
    assert r("1.005", "2.004", "3.115").rounded() == r("1.01", "2.00", "3.12")


def test_same_currency_refuses_a_mix() -> None:
    assert same_currency("GBP", "GBP") == "GBP"
    with pytest.raises(CurrencyMix, match="EUR"):
        same_currency("GBP", "EUR", "GBP")


def test_convert_needs_an_explicit_dated_rate() -> None:
    assert convert(D(100), D("1.17"), date(2024, 4, 1)) == D("117.00")
    with pytest.raises(AssertionError, match="rate_date"):
        convert(D(100), D("1.17"), None)  # type: ignore[arg-type]
    with pytest.raises(AssertionError, match="positive"):
        convert(D(100), D(0), date(2024, 4, 1))


@given(ranges(), ranges())
def test_range_arithmetic_keeps_low_le_central_le_high(a: Range, b: Range) -> None:
    for result in (a + b, a - b, a * b, -a, a.scale(D("-1.5")), a.scale(D("0.3")), b * a):
        assert result.low <= result.central <= result.high


@given(range_and_member(), range_and_member())
def test_range_arithmetic_bounds_every_value_the_inputs_allow(
    a: tuple[Range, Decimal], b: tuple[Range, Decimal]
) -> None:
    (ra, x), (rb, y) = a, b
    assert (ra + rb).contains(x + y)
    assert (ra - rb).contains(x - y)
    assert (ra * rb).contains(x * y)
    quotient = divide(ra, rb)
    if quotient is not None:
        with localcontext(VALUATION_CONTEXT):  # the digits the valuation divides with
            assert quotient.low <= x / y <= quotient.high


@given(st.lists(ranges(), max_size=8))
def test_sum_of_ranges_is_the_sum_of_each_end(rs: list[Range]) -> None:
    total = sum_ranges(rs)
    assert total.low == sum((x.low for x in rs), D(0))
    assert total.high == sum((x.high for x in rs), D(0))
