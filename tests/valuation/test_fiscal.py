"""Lens C: savings by agency, cashable or not, the funder x beneficiary matrix and the wrong
pocket."""

from __future__ import annotations

from decimal import Decimal, localcontext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from valuation import (
    FISCAL_CASHABLE,
    FISCAL_NONCASHABLE,
    GREEN_BOOK_STPR,
    VALUATION_CONTEXT,
    ZERO_RANGE,
    Cost,
    FiscalLine,
    OutcomeInput,
    Range,
    SocialParameters,
    ValuationError,
    costs_by_funder,
    fiscal_by_agency,
    lines_from_social,
    value_outcomes,
)

D = Decimal


def p(x: str) -> Range:
    return Range.point(D(x))


def test_domain_m5_m7_parenting_classes_the_wrong_pocket() -> None:
    # The council spends £1; £4 comes back to the public sector: £1 to the council itself and
    # £3 to its partners (here £2 to the NHS and £1 to the police).
    savings = [
        FiscalLine("parenting", "COUNCIL", True, p("1")),
        FiscalLine("parenting-health", "NHS", False, p("2")),
        FiscalLine("parenting-crime", "POLICE", None, p("1")),
    ]
    result = fiscal_by_agency(savings, {"COUNCIL": p("1")})
    assert result.roi["COUNCIL"] == p("1")  # council ROI 1.0: "we spend £1 to save £1"
    assert result.public_sector_roi == p("4")  # public-sector ROI 4.0
    assert result.share_elsewhere["COUNCIL"] == D("0.75")  # 75% falls to the partners
    assert result.matrix == {"COUNCIL": {"COUNCIL": p("1"), "NHS": p("2"), "POLICE": p("1")}}
    assert result.roi["NHS"] is None and "funded nothing" in result.undefined["roi:NHS"]


def test_savings_split_cashable_non_cashable_and_unknown() -> None:
    savings = [
        FiscalLine("a", "NHS", True, p("10")),
        FiscalLine("b", "NHS", False, p("20")),
        FiscalLine("c", "NHS", None, p("5")),
        FiscalLine("d", "NHS", True, Range(D(1), D(2), D(3))),
    ]
    nhs = fiscal_by_agency(savings, {}).by_agency["NHS"]
    assert nhs.cashable == Range(D(11), D(12), D(13))
    assert nhs.non_cashable == p("20") and nhs.unknown == p("5")
    assert nhs.total == Range(D(36), D(37), D(38))


def test_two_funders_share_every_saving_by_their_share_of_costs() -> None:
    # Council pays 3, NHS 1 (shares 0.75, 0.25); savings: council 2, NHS 6 (total 8).
    # Matrix: council row (1.5, 4.5), NHS row (0.5, 1.5). ROI: council 2/3, NHS 6/1; public 8/4.
    # Share elsewhere: council 6/8 = 0.75, NHS 2/8 = 0.25.
    savings = [FiscalLine("x", "COUNCIL", True, p("2")), FiscalLine("y", "NHS", False, p("6"))]
    result = fiscal_by_agency(savings, {"COUNCIL": p("3"), "NHS": p("1")})
    assert result.cost_share == {"COUNCIL": D("0.75"), "NHS": D("0.25")}
    assert result.matrix == {
        "COUNCIL": {"COUNCIL": p("1.5"), "NHS": p("4.5")},
        "NHS": {"COUNCIL": p("0.5"), "NHS": p("1.5")},
    }
    council_roi = result.roi["COUNCIL"]
    assert council_roi is not None and council_roi.rounded(4) == p("0.6667")
    assert result.roi["NHS"] == p("6")
    assert result.public_sector_roi == p("2")
    assert result.share_elsewhere == {"COUNCIL": D("0.75"), "NHS": D("0.25")}


def test_a_funder_that_saves_nothing_has_roi_zero() -> None:
    result = fiscal_by_agency([FiscalLine("x", "NHS", True, p("5"))], {"HOUSING": p("10")})
    assert result.roi["HOUSING"] == ZERO_RANGE
    assert result.share_elsewhere["HOUSING"] == D(1)


def test_without_costs_nothing_can_be_allocated_and_the_ratios_say_why() -> None:
    result = fiscal_by_agency([FiscalLine("x", "NHS", True, p("5"))], {"COUNCIL": p("0")})
    assert result.matrix == {} and "total cost is zero" in result.undefined["matrix"]
    assert result.roi["COUNCIL"] is None and result.public_sector_roi is None
    assert result.share_elsewhere["COUNCIL"] is None


def test_fiscal_lines_from_lens_b_outcomes() -> None:
    def fiscal(oid: str, value_type: str | None, agency: str | None) -> OutcomeInput:
        # 2 people x £100 a year, for 2 years, halving in the second.
        return OutcomeInput(
            outcome_id=oid,
            stakeholder="state",
            quantity=D(2),
            proxy=p("100"),
            deadweight=D(0),
            displacement=D(0),
            attribution=D(0),
            drop_off=D("0.5"),
            duration_years=2,
            value_type=value_type,
            agency=agency,
        )

    params = SocialParameters(GREEN_BOOK_STPR, discount_start=0, horizon_years=5)
    outcomes = [
        fiscal("gp-visits", FISCAL_CASHABLE, "NHS_PRIMARY"),
        fiscal("arrears", FISCAL_NONCASHABLE, "HOUSING_ASSOC"),
        fiscal("wellbeing", "WELLBEING", None),
    ]
    costs = [
        Cost("HOUSING_ASSOC", "cash", 0, p("300")),
        Cost("HOUSING_ASSOC", "in-kind", 0, p("100")),
    ]
    result = value_outcomes(outcomes, costs, params)
    lines = lines_from_social(result)
    # 200 in year 0 (undiscounted) + 100 in year 1 at 3.5%: 200 + 96.62 = 296.62 each.
    assert [(x.entry_id, x.agency, x.cashable) for x in lines] == [
        ("gp-visits", "NHS_PRIMARY", True),
        ("arrears", "HOUSING_ASSOC", False),
    ]
    assert lines[0].pv == result.pv_by_outcome["gp-visits"]
    assert lines[0].pv.rounded() == p("296.62")
    assert costs_by_funder(result.costs) == {"HOUSING_ASSOC": p("400")}
    lens_c = fiscal_by_agency(lines, costs_by_funder(result.costs))
    assert lens_c.by_agency["HOUSING_ASSOC"].non_cashable == lines[1].pv

    missing_agency = value_outcomes([fiscal("x", FISCAL_CASHABLE, None)], [], params)
    with pytest.raises(ValuationError, match="names no receiving agency"):
        lines_from_social(missing_agency)


amounts = st.decimals(min_value=D(0), max_value=D(10**6), places=2)
agencies = st.sampled_from(["COUNCIL", "NHS", "POLICE", "DWP"])


@given(
    st.lists(st.tuples(agencies, amounts), max_size=8),
    st.dictionaries(agencies, amounts.filter(lambda x: x > 0), min_size=1),
)
def test_the_matrix_allocates_every_saving_exactly_once(
    savings: list[tuple[str, Decimal]], costs: dict[str, Decimal]
) -> None:
    lines = [FiscalLine(f"e{i}", a, True, Range.point(x)) for i, (a, x) in enumerate(savings)]
    result = fiscal_by_agency(lines, {f: Range.point(c) for f, c in costs.items()})
    for agency, saved in result.by_agency.items():
        with localcontext(VALUATION_CONTEXT):
            allocated = sum((row[agency].central for row in result.matrix.values()), D(0))
        assert abs(allocated - saved.total.central) <= D("1e-25")
