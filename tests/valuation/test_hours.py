"""Lens A: hours valued at replacement cost, the wage fallback chain, and the sensitivities."""

from __future__ import annotations

from decimal import Decimal, localcontext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from valuation import (
    FALLBACK_GENERALIST,
    FLOOR_NLW,
    JUDGEMENT_MAPPING,
    NOT_REBASED,
    RAISED_TO_FLOOR,
    VALUATION_CONTEXT,
    CurrencyMix,
    HoursLine,
    HoursParameters,
    MissingPricePoint,
    MissingWage,
    NoWageCandidate,
    Range,
    Wage,
    WageMethod,
    choose_wage,
    display,
    sensitivities,
    sum_ranges,
    value_hours,
)

D = Decimal
FY = "2024/25"


def wage(
    rate: str,
    method: WageMethod = "SPECIALIST",
    *,
    period: str = FY,
    currency: str = "GBP",
    series: str = "ASHE_HOURLY_EXCL_OT",
    soc: str | None = "5113",
    low: str | None = None,
    high: str | None = None,
) -> Wage:
    central = D(rate)
    return Wage(
        rate=Range(D(low) if low else central, central, D(high) if high else central),
        currency=currency,
        price_period=period,
        method=method,
        series=series,
        soc_code=soc,
    )


NLW_2024 = wage("11.44", "NLW_FLOOR", series="NLW", soc=None)
GENERALIST_2024 = wage("17.00", "GENERALIST", soc=None)
GARDENER_2024 = wage("13.00")


def test_golden_vector_4_a_thousand_hours_at_the_nlw_floor() -> None:
    # VALUATION 7.6 #4: 1,000 hours x £11.44 (NLW from April 2024) = £11,440.
    lines = [HoursLine(("befriending", FY), "BEFRIEND", FY, 60_000)]
    chosen = choose_wage(specialist=None, generalist=None, floor=NLW_2024)
    valued = value_hours(lines, {("BEFRIEND", FY): chosen}, HoursParameters(price_base=FY))
    assert valued.total_hours == D(1000)
    assert display(valued.total_value.central) == "11,440.00"
    assert valued.lines[0].method == "NLW_FLOOR"
    assert FLOOR_NLW in valued.flags


def test_hours_are_minutes_over_sixty_and_value_is_taken_before_dividing() -> None:
    # 20 minutes at £12.00 = 20 x 12 / 60 = £4.00 exactly, though 20/60 hours is 0.333...
    lines = [HoursLine(("admin",), "ADMIN", FY, 20)]
    valued = value_hours(lines, {("ADMIN", FY): wage("12.00")}, HoursParameters(price_base=FY))
    assert valued.lines[0].value.central == D(4)
    assert display(valued.lines[0].hours) == "0.33"


def test_a_worked_line_with_rebasing_productivity_and_oncost() -> None:
    # 90 minutes at £12.00 in 2022/23 prices, deflator 95 -> 100, pi 0.8, on-cost 12%:
    # 1.5 h x 12.00 = 18.00; x 100/95 = 18.947368...; x 0.8 = 15.157894...; x 1.12 = 16.976842...
    lines = [HoursLine(("gardening", "2022/23"), "GARDEN", "2022/23", 90)]
    params = HoursParameters(
        price_base=FY,
        deflator={"2022/23": D(95), FY: D(100)},
        productivity=D("0.8"),
        oncost=D("0.12"),
    )
    valued = value_hours(lines, {("GARDEN", "2022/23"): wage("12.00", period="2022/23")}, params)
    assert display(valued.total_value.central) == "16.98"
    assert valued.lines[0].price_period == FY
    assert NOT_REBASED not in valued.flags


def test_without_a_deflator_a_wage_stays_in_its_own_prices_and_is_flagged() -> None:
    lines = [HoursLine(("gardening",), "GARDEN", "2022/23", 60)]
    wages = {("GARDEN", "2022/23"): wage("12.00", period="2022/23")}
    valued = value_hours(lines, wages, HoursParameters(price_base=FY))
    assert valued.lines[0].value.central == D(12)
    assert valued.lines[0].price_period == "2022/23"
    assert NOT_REBASED in valued.lines[0].flags


def test_a_deflator_missing_the_wages_period_is_refused() -> None:
    lines = [HoursLine(("gardening",), "GARDEN", "2022/23", 60)]
    wages = {("GARDEN", "2022/23"): wage("12.00", period="2022/23")}
    with pytest.raises(MissingPricePoint, match="2022/23"):
        value_hours(lines, wages, HoursParameters(price_base=FY, deflator={FY: D(100)}))


def test_a_line_without_a_wage_is_refused() -> None:
    lines = [HoursLine(("gardening",), "GARDEN", FY, 60)]
    with pytest.raises(MissingWage, match="GARDEN"):
        value_hours(lines, {}, HoursParameters(price_base=FY))


def test_wages_may_come_from_a_callable() -> None:
    lines = [HoursLine(("a",), "GARDEN", FY, 120), HoursLine(("b",), "ADMIN", FY, 60)]
    valued = value_hours(lines, lambda proxy, year: GARDENER_2024, HoursParameters(price_base=FY))
    assert valued.total_value.central == D(39)  # 3 h x 13.00
    assert valued.total_minutes == 180


def test_a_wage_in_another_currency_is_refused() -> None:
    lines = [HoursLine(("a",), "GARDEN", FY, 60)]
    with pytest.raises(CurrencyMix):
        value_hours(lines, {("GARDEN", FY): wage("20", currency="USD")}, HoursParameters(FY))


def test_choose_wage_prefers_the_specialist() -> None:
    chosen = choose_wage(specialist=GARDENER_2024, generalist=GENERALIST_2024, floor=NLW_2024)
    assert chosen.method == "SPECIALIST" and chosen.rate.central == D("13.00")
    assert chosen.soc_code == "5113" and chosen.flags == frozenset()


def test_choose_wage_falls_back_to_the_generalist_median_then_the_floor() -> None:
    generalist = choose_wage(specialist=None, generalist=GENERALIST_2024, floor=NLW_2024)
    assert generalist.method == "GENERALIST" and FALLBACK_GENERALIST in generalist.flags
    floor = choose_wage(specialist=None, generalist=None, floor=NLW_2024)
    assert floor.method == "NLW_FLOOR" and floor.flags == {FLOOR_NLW}
    with pytest.raises(NoWageCandidate):
        choose_wage(specialist=None, generalist=None, floor=None)


def test_choose_wage_never_goes_below_the_floor_of_its_year() -> None:
    # A specialist range (10.50, 11.00, 12.00) against the £11.44 floor: (11.44, 11.44, 12.00).
    low_paid = wage("11.00", low="10.50", high="12.00", soc="6135")
    chosen = choose_wage(specialist=low_paid, generalist=None, floor=NLW_2024)
    assert chosen.rate == Range(D("11.44"), D("11.44"), D("12.00"))
    assert RAISED_TO_FLOOR in chosen.flags and chosen.method == "SPECIALIST"
    # Above the floor: untouched and unflagged.
    assert (
        RAISED_TO_FLOOR
        not in choose_wage(specialist=GARDENER_2024, generalist=None, floor=NLW_2024).flags
    )


def test_choose_wage_flags_a_judgement_mapping_and_refuses_a_currency_mix() -> None:
    carer = wage("12.50", soc="6135")
    chosen = choose_wage(specialist=carer, generalist=None, floor=None, judgement_mapping=True)
    assert JUDGEMENT_MAPPING in chosen.flags
    with pytest.raises(CurrencyMix):
        choose_wage(specialist=carer, generalist=None, floor=wage("8", "NLW_FLOOR", currency="EUR"))


def test_a_specialist_wage_names_its_soc_code() -> None:
    with pytest.raises(AssertionError, match="SOC"):
        wage("13.00", soc=None)


def test_minutes_are_whole_and_never_negative() -> None:
    with pytest.raises(AssertionError, match="minutes"):
        HoursLine(("a",), "GARDEN", FY, -1)
    with pytest.raises(AssertionError, match="minutes"):
        HoursLine(("a",), "GARDEN", FY, 1.5)  # type: ignore[arg-type]


def test_totals_by_method() -> None:
    lines = [HoursLine(("a",), "GARDEN", FY, 60), HoursLine(("b",), "BEFRIEND", FY, 120)]
    wages = {
        ("GARDEN", FY): GARDENER_2024,
        ("BEFRIEND", FY): choose_wage(specialist=None, generalist=None, floor=NLW_2024),
    }
    valued = value_hours(lines, wages, HoursParameters(price_base=FY))
    # 1 h x 13.00 + 2 h x 11.44 = 13.00 + 22.88 = 35.88
    assert valued.by_method == {
        "SPECIALIST": Range.point(D(13)),
        "NLW_FLOOR": Range.point(D("22.88")),
    }
    assert valued.total_value.central == D("35.88")


def test_sensitivities_value_the_same_hours_under_each_named_alternative() -> None:
    # 10 hours of gardening: specialist 13.00, NLW 11.44, generalist 17.00, RLW 12.60.
    lines = [HoursLine(("gardening", FY), "GARDEN", FY, 600)]
    wages = {("GARDEN", FY): GARDENER_2024}
    params = HoursParameters(price_base=FY)
    rlw = wage("12.60", "FLAT", series="RLW", soc=None)
    result = sensitivities(
        lines, wages, params, floor={FY: NLW_2024}, generalist={FY: GENERALIST_2024}, rlw={FY: rlw}
    )
    totals = {name: display(v.total_value.central) for name, v in result.items()}
    assert totals == {
        "central": "130.00",
        "nlw_floor_only": "114.40",
        "generalist_median": "170.00",
        "oncost_12pct": "145.60",  # 130 x 1.12
        "productivity_0_8": "104.00",  # 130 x 0.8
        "real_living_wage": "126.00",
    }
    assert result["nlw_floor_only"].lines[0].method == "NLW_FLOOR"
    no_rlw = sensitivities(
        lines, wages, params, floor={FY: NLW_2024}, generalist=lambda year: GENERALIST_2024
    )
    assert "real_living_wage" not in no_rlw


@given(st.lists(st.integers(0, 100_000), max_size=10), st.decimals(D(0), D(100), places=2))
def test_total_value_is_the_sum_of_the_lines_and_proportional_to_minutes(
    minutes: list[int], rate: Decimal
) -> None:
    lines = [HoursLine((str(i),), "P", FY, m) for i, m in enumerate(minutes)]
    flat = Wage(Range.point(rate), "GBP", FY, "FLAT", "TEST")
    valued = value_hours(lines, lambda proxy, year: flat, HoursParameters(price_base=FY))
    assert valued.total_value == sum_ranges(line.value for line in valued.lines)
    with localcontext(VALUATION_CONTEXT):
        expected = rate * sum(minutes) / 60
    assert abs(valued.total_value.central - expected) < D("1e-24")
