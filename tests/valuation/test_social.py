"""Lens B: the SROI chain per outcome and year, the totals and ratios as ranges, no silent
adjustment defaults, switching values and one-way sensitivity."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from valuation import (
    GREEN_BOOK_STPR,
    TRUNCATED_AT_HORIZON,
    ZERO_RANGE,
    Adjustments,
    Cost,
    MissingAdjustment,
    OutcomeInput,
    Range,
    SocialParameters,
    ValuationError,
    display,
    flat_rate,
    one_way_sensitivity,
    optimism_bias_for_grade,
    resolve_adjustments,
    sum_ranges,
    switching_values,
    value_outcomes,
    wellby_value,
)

D = Decimal
WELLBY_2019 = Range(D(10_000), D(13_000), D(16_000))
SROI_GUIDE = SocialParameters(GREEN_BOOK_STPR, discount_start=1, horizon_years=5)
UNDISCOUNTED = SocialParameters(flat_rate(D(0)), discount_start=0, horizon_years=5)


def outcome(
    proxy: Range | str,
    *,
    oid: str = "o1",
    quantity: str = "1",
    dw: str | None = "0",
    ds: str | None = "0",
    at: str | None = "0",
    do: str | None = "0",
    years: int = 1,
    ob: str = "0",
) -> OutcomeInput:
    return OutcomeInput(
        outcome_id=oid,
        stakeholder="members",
        quantity=D(quantity),
        proxy=proxy if isinstance(proxy, Range) else Range.point(D(proxy)),
        deadweight=None if dw is None else D(dw),
        displacement=None if ds is None else D(ds),
        attribution=None if at is None else D(at),
        drop_off=None if do is None else D(do),
        duration_years=years,
        optimism_bias=D(ob),
    )


def up_front(amount: Range | str, funder: str = "COUNCIL") -> Cost:
    value = amount if isinstance(amount, Range) else Range.point(D(amount))
    return Cost(funder, "cash", 0, value)


def test_golden_vector_2_wellby() -> None:
    # VALUATION 7.6 #2: 40 people x 0.1 LS x £13,000 = £52,000; x 0.75 (DW) x 0.75 (AT) =
    # £29,250; one year discounted from year 1 at 3.5%: 29,250 / 1.035 = £28,260.87.
    assert wellby_value(D("0.1"), D(40), WELLBY_2019) == Range(D(40_000), D(52_000), D(64_000))
    per_person = wellby_value(D("0.1"), D(1), WELLBY_2019)
    wellbeing = outcome(per_person, quantity="40", dw="0.25", at="0.25")
    result = value_outcomes([wellbeing], [], SROI_GUIDE)
    (line,) = result.lines
    assert display(line.gross.central) == "52,000.00"
    assert display(line.after_deadweight.central) == "39,000.00"
    assert display(line.after_displacement.central) == "39,000.00"
    assert display(line.after_attribution.central) == "29,250.00"
    assert display(line.after_optimism_bias.central) == "29,250.00"
    assert display(line.after_drop_off.central) == "29,250.00"
    assert display(line.pv.central) == "28,260.87"
    # The WELLBY's range carries through: 40,000 x 0.5625 / 1.035 and 64,000 x 0.5625 / 1.035.
    assert [display(line.pv.low), display(line.pv.high)] == ["21,739.13", "34,782.61"]
    assert display(result.total_pv.central) == "28,260.87"


def test_golden_vector_1_drop_off_then_discounting_both_timings() -> None:
    # £10,000 a year for 3 years with 20% drop-off: 10,000, 8,000, 6,400.
    stream = outcome("10000", do="0.2", years=3)
    sroi_guide = value_outcomes([stream], [], SROI_GUIDE)
    assert [x.after_drop_off.central for x in sroi_guide.lines] == [D(10000), D(8000), D(6400)]
    assert display(sroi_guide.total_pv.central) == "22,902.35"
    green_book = value_outcomes([stream], [], SocialParameters(GREEN_BOOK_STPR, 0, 5))
    assert green_book.lines[0].discount_factor == 1
    assert display(green_book.total_pv.central) == "23,703.94"


def test_totals_sroi_npsv_net_sroi_and_payback() -> None:
    # PV 22,902.35 against £10,000 paid up front: SROI 2.29, NPSV 12,902.35, net SROI 1.29,
    # payback 10,000 / (10,000 / 12) = 12 months.
    result = value_outcomes([outcome("10000", do="0.2", years=3)], [up_front("10000")], SROI_GUIDE)
    assert result.total_cost == Range.point(D(10000))
    assert result.sroi is not None and result.net_sroi is not None
    assert display(result.sroi.central) == "2.29"
    assert display(result.npsv.central) == "12,902.35"
    assert display(result.net_sroi.central) == "1.29"
    assert result.payback_months == Range.point(D(12))
    assert result.undefined == {}


def test_ratio_ranges_take_the_extreme_corners() -> None:
    # PV (8,000, 10,000, 12,000) undiscounted; cost (4,000, 5,000, 6,000) up front.
    # SROI: 8,000/6,000 = 1.33, 2, 12,000/4,000 = 3.  NPSV: 8,000 - 6,000, 5,000, 12,000 - 4,000.
    # Net SROI = SROI - 1.  Payback 12 x C / I1: 12 x 4,000/12,000 = 4, 6, 12 x 6,000/8,000 = 9.
    proxy = Range(D(8000), D(10000), D(12000))
    result = value_outcomes(
        [outcome(proxy)], [up_front(Range(D(4000), D(5000), D(6000)))], UNDISCOUNTED
    )
    assert result.sroi is not None and result.net_sroi is not None
    assert result.sroi.rounded() == Range(D("1.33"), D(2), D(3)).rounded()
    assert result.npsv == Range(D(2000), D(5000), D(8000))
    assert result.net_sroi.rounded() == Range(D("0.33"), D(1), D(2)).rounded()
    assert result.payback_months == Range(D(4), D(6), D(9))


def test_without_costs_the_ratios_are_none_and_say_why() -> None:
    result = value_outcomes([outcome("100")], [], SROI_GUIDE)
    assert result.sroi is None and result.net_sroi is None
    assert "total cost is zero" in result.undefined["sroi"]
    assert result.npsv == result.total_pv
    zero_cost = value_outcomes([outcome("100")], [up_front("0")], SROI_GUIDE)
    assert zero_cost.sroi is None


def test_a_cost_range_reaching_zero_leaves_the_ratio_undefined() -> None:
    result = value_outcomes([outcome("100")], [up_front(Range(D(0), D(5), D(10)))], SROI_GUIDE)
    assert result.sroi is None
    assert "reaches zero" in result.undefined["sroi"]


def test_deadweight_of_100_percent_gives_zero_and_no_payback() -> None:
    result = value_outcomes([outcome("1000", dw="1")], [up_front("100")], SROI_GUIDE)
    assert result.total_pv == ZERO_RANGE
    assert result.payback_months is None
    assert "never paid back" in result.undefined["payback_months"]


def test_deductions_are_successive_never_added() -> None:
    # 1,000 x 0.5 x 0.5 x 0.5 = 125 (added, 150% of deductions would leave less than nothing).
    (line,) = value_outcomes(
        [outcome("1000", dw="0.5", ds="0.5", at="0.5")], [], UNDISCOUNTED
    ).lines
    assert [x.central for x in (line.after_deadweight, line.after_displacement)] == [
        D(500),
        D(250),
    ]
    assert line.after_attribution.central == D(125)


def test_optimism_bias_reduces_benefits() -> None:
    # Grade 6 (unsupported judgement): 40% off. 125 x 0.6 = 75.
    assert optimism_bias_for_grade(6) == D("0.40")
    (line,) = value_outcomes(
        [outcome("1000", dw="0.5", ds="0.5", at="0.5", ob=str(optimism_bias_for_grade(6)))],
        [],
        UNDISCOUNTED,
    ).lines
    assert line.after_optimism_bias.central == D(75)


def test_a_missing_adjustment_without_a_run_value_is_refused() -> None:
    with pytest.raises(MissingAdjustment, match="deadweight for outcome 'o1'"):
        value_outcomes([outcome("100", dw=None)], [], SROI_GUIDE)


def test_a_missing_adjustment_takes_the_run_value_and_is_flagged_assumed() -> None:
    params = SocialParameters(
        GREEN_BOOK_STPR, 1, 5, assumed=Adjustments(deadweight=D("0.3"), attribution=D("0.9"))
    )
    result = value_outcomes([outcome("100", dw=None, at="0.1")], [], params)
    (line,) = result.lines
    assert line.deadweight == D("0.3") and "ASSUMED_DW" in line.flags
    assert line.attribution == D("0.1") and "ASSUMED_AT" not in line.flags  # evidence wins
    assert result.flags == {"ASSUMED_DW"}


def test_resolve_adjustments_prefers_the_run_and_flags_what_it_supplied() -> None:
    entry = Adjustments(D("0.1"), D(0), D("0.2"), None)
    run = Adjustments(drop_off=D("0.5"), attribution=D("0.3"))
    resolved = resolve_adjustments(entry, run)
    assert (resolved.deadweight, resolved.displacement) == (D("0.1"), D(0))
    assert (resolved.attribution, resolved.drop_off) == (D("0.3"), D("0.5"))
    assert resolved.flags == {"ASSUMED_AT", "ASSUMED_DO"}
    with pytest.raises(MissingAdjustment, match="drop_off"):
        resolve_adjustments(entry, Adjustments())


def test_outcomes_are_truncated_at_the_horizon_and_flagged() -> None:
    params = SocialParameters(GREEN_BOOK_STPR, 1, horizon_years=3)
    result = value_outcomes([outcome("100", years=5)], [], params)
    assert [line.year for line in result.lines] == [1, 2, 3]
    assert TRUNCATED_AT_HORIZON in result.flags


def test_costs_are_discounted_like_outcomes_except_up_front() -> None:
    # £1,035 in year 1 under the SROI Guide is 1,035 / 1.035 = £1,000; up front it is £1,035.
    year_1 = Cost("NHS", "in-kind", 1, Range.point(D(1035)))
    result = value_outcomes([], [year_1, up_front("1035")], SROI_GUIDE)
    assert [display(c.pv.central) for c in result.costs] == ["1,000.00", "1,035.00"]
    # Under the Green Book year 1 is t = 0: undiscounted.
    green_book = value_outcomes([], [year_1], SocialParameters(GREEN_BOOK_STPR, 0, 1))
    assert green_book.costs[0].pv == Range.point(D(1035))


def test_inputs_are_checked() -> None:
    with pytest.raises(AssertionError, match="quantity"):
        outcome("100", quantity="-1")
    with pytest.raises(AssertionError, match="fraction"):
        outcome("100", dw="1.2")
    with pytest.raises(AssertionError, match="duration_years"):
        outcome("100", years=0)
    with pytest.raises(ValuationError, match="unique"):
        value_outcomes([outcome("1"), outcome("2")], [], SROI_GUIDE)


def test_switching_values_for_proxy_deadweight_and_attribution() -> None:
    # PV = 1,000 x (1 - 0.2) = 800 undiscounted, against a cost of 400:
    # proxy: p x 0.8 = 400 -> p = 500;
    # deadweight: 1,000 x (1 - f) = 400 -> 0.6; attribution: 800 x (1 - f) = 400 -> 0.5.
    values = switching_values([outcome("1000", dw="0.2")], [up_front("400")], UNDISCOUNTED)
    found = {v.parameter: (v.current, v.switching) for v in values}
    assert found == {
        "proxy": (D(1000), D(500)),
        "deadweight": (D("0.2"), D("0.6")),
        "attribution": (D(0), D("0.5")),
    }


def test_switching_values_are_none_when_no_value_in_range_reaches_one_to_one() -> None:
    # Cost 2,000: the proxy must be 2,500, but deadweight would have to be -1 and attribution -1.5.
    values = switching_values([outcome("1000", dw="0.2")], [up_front("2000")], UNDISCOUNTED)
    found = {v.parameter: v for v in values}
    assert found["proxy"].switching == D(2500)
    assert found["deadweight"].switching is None and found["attribution"].switching is None
    assert "deadweight = -1" in (found["deadweight"].reason or "")


def test_switching_values_hold_the_other_outcomes() -> None:
    # A: 800 as above; B: 2 x 100 = 200; cost 600. A must give 400 (proxy 500, DW 0.6, AT 0.5);
    # B would need -200: no proxy of its sign, no deadweight in [0, 1].
    a = outcome("1000", oid="A", dw="0.2")
    b = outcome("100", oid="B", quantity="2")
    values = switching_values([a, b], [up_front("600")], UNDISCOUNTED)
    found = {(v.outcome_id, v.parameter): v.switching for v in values}
    assert found[("A", "proxy")] == D(500) and found[("A", "deadweight")] == D("0.6")
    assert found[("B", "proxy")] is None and found[("B", "deadweight")] is None


def test_one_way_sensitivity_names_each_case() -> None:
    stream = outcome("10000", dw="0.2", at="0.1", do="0.2", years=3)
    stream_range = replace(stream, proxy=Range(D(8000), D(10000), D(12000)))
    cases = one_way_sensitivity([stream_range], [up_front("5000")], SROI_GUIDE)
    by_name = {case.name: case for case in cases}
    assert [case.name for case in cases] == [
        "central",
        "deadweight -0.1",
        "deadweight +0.1",
        "attribution -0.1",
        "attribution +0.1",
        "drop_off -0.1",
        "drop_off +0.1",
        "duration -1",
        "duration +1",
        "proxy low",
        "proxy high",
        "discount 1.5%",
        "discount 3.5%",
    ]
    central = by_name["central"].total_pv
    assert central == value_outcomes([stream_range], [], SROI_GUIDE).total_pv
    assert by_name["deadweight +0.1"].total_pv.central < central.central
    assert by_name["deadweight -0.1"].total_pv.central > central.central
    assert by_name["duration +1"].total_pv.central > central.central
    assert by_name["proxy low"].total_pv == Range.point(central.low)
    assert by_name["proxy high"].total_pv == Range.point(central.high)
    assert by_name["discount 3.5%"].total_pv == central  # STPR is 3.5% for the first 30 years
    assert by_name["discount 1.5%"].total_pv.central > central.central


fractions = st.decimals(min_value=D(0), max_value=D(1), places=2)
proxies = st.decimals(min_value=D(0), max_value=D(100_000), places=2)


@st.composite
def outcomes(draw: st.DrawFn, oid: str = "o1") -> OutcomeInput:
    low, central, high = sorted(draw(st.lists(proxies, min_size=3, max_size=3)))
    return OutcomeInput(
        outcome_id=oid,
        stakeholder="members",
        quantity=draw(st.decimals(min_value=D(0), max_value=D(1000), places=0)),
        proxy=Range(low, central, high),
        deadweight=draw(fractions),
        displacement=draw(fractions),
        attribution=draw(fractions),
        drop_off=draw(fractions),
        duration_years=draw(st.integers(1, 10)),
        optimism_bias=draw(fractions),
    )


@given(outcomes(), st.sampled_from([0, 1]))
def test_pv_with_all_zero_rates_is_the_plain_sum_of_the_impacts(
    o: OutcomeInput, start: int
) -> None:
    result = value_outcomes([o], [], SocialParameters(flat_rate(D(0)), start, 15))
    assert result.total_pv == sum_ranges(x.after_drop_off for x in result.lines)


@given(outcomes())
def test_deadweight_of_100_percent_always_gives_zero(o: OutcomeInput) -> None:
    o = replace(o, deadweight=D(1))
    assert value_outcomes([o], [], SROI_GUIDE).total_pv == ZERO_RANGE


@given(outcomes())
def test_each_step_of_the_chain_keeps_or_lowers_a_benefit(o: OutcomeInput) -> None:
    for line in value_outcomes([o], [], SROI_GUIDE).lines:
        chain = [
            line.gross,
            line.after_deadweight,
            line.after_displacement,
            line.after_attribution,
            line.after_optimism_bias,
            line.after_drop_off,
            line.pv,
        ]
        for before, after in pairwise(chain):
            assert after.low <= before.low and after.high <= before.high
            assert after.low <= after.central <= after.high


@given(outcomes(), st.decimals(min_value=D(1), max_value=D(10**6), places=2))
def test_npsv_is_zero_at_each_switching_value(o: OutcomeInput, cost: Decimal) -> None:
    costs = [up_front(str(cost))]
    for value in switching_values([o], costs, SROI_GUIDE):
        if value.switching is None:
            continue
        if value.parameter == "proxy":
            at_switch = replace(o, proxy=Range.point(value.switching))
        elif value.parameter == "deadweight":
            at_switch = replace(o, deadweight=value.switching)
        else:
            at_switch = replace(o, attribution=value.switching)
        npsv = value_outcomes([at_switch], costs, SROI_GUIDE).npsv.central
        assert abs(npsv) <= D("1e-20") * cost
