"""Price-basing by a deflator, and the words for financial and calendar years."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from valuation import (
    CY_AS_FY_FLAG,
    MissingPricePoint,
    Range,
    cy_to_fy_assumption,
    display,
    fy_for_date,
    fy_label,
    fy_start_year,
    period_kind,
    price_factor,
    rebase,
    rebase_range,
)

D = Decimal
NHS_DIGITAL = {"2008/09": D("84.421"), "2018/19": D(100)}


def test_golden_vector_3_nhs_digital_deflator_example() -> None:
    # VALUATION 7.6 #3: £100 in 2008/09 x (100 / 84.421) = £118.45 in 2018/19 prices.
    assert display(rebase(D(100), "2008/09", "2018/19", NHS_DIGITAL)) == "118.45"


def test_rebase_to_the_same_period_changes_nothing() -> None:
    assert rebase(D("123.45"), "2018/19", "2018/19", NHS_DIGITAL) == D("123.45")


def test_a_worked_rebase_backwards() -> None:
    # £118.45 in 2018/19 prices is 118.45 x 84.421 / 100 = 99.9966... = £100.00 in 2008/09.
    assert display(rebase(D("118.45"), "2018/19", "2008/09", NHS_DIGITAL)) == "100.00"
    assert price_factor("2018/19", "2008/09", NHS_DIGITAL) == D("0.84421")


def test_a_missing_price_point_is_refused_not_skipped() -> None:
    with pytest.raises(MissingPricePoint) as raised:
        rebase(D(100), "2010/11", "2018/19", NHS_DIGITAL)
    assert raised.value.period == "2010/11"
    with pytest.raises(MissingPricePoint, match="2024/25"):
        rebase(D(100), "2018/19", "2024/25", NHS_DIGITAL)


def test_a_financial_and_a_calendar_year_are_never_mixed() -> None:
    index = {"2018/19": D(100), "2018": D(99)}
    with pytest.raises(ValueError, match="financial and a calendar year"):
        rebase(D(100), "2018", "2018/19", index)


def test_rebase_range_rebases_every_end() -> None:
    # x 100 / 84.421 = 1.18454...: 50 -> 59.23, 100 -> 118.45, 150 -> 177.68
    rebased = rebase_range(Range(D(50), D(100), D(150)), "2008/09", "2018/19", NHS_DIGITAL)
    assert [display(x) for x in (rebased.low, rebased.central, rebased.high)] == [
        "59.23",
        "118.45",
        "177.68",
    ]


def test_period_words() -> None:
    assert period_kind("2023/24") == "FY"
    assert period_kind("2023") == "CY"
    assert period_kind("1999/00") == "FY"
    for bad in ("2023/25", "23/24", "2023-24", "FY2023", ""):
        with pytest.raises(ValueError):
            period_kind(bad)
    assert fy_label(2023) == "2023/24"
    assert fy_label(1999) == "1999/00"
    assert fy_start_year("2023/24") == 2023
    with pytest.raises(ValueError, match="not a financial year"):
        fy_start_year("2023")


def test_the_uk_financial_year_starts_on_1_april() -> None:
    assert fy_for_date(date(2024, 3, 31)) == "2023/24"
    assert fy_for_date(date(2024, 4, 1)) == "2024/25"
    assert fy_for_date(date(2024, 12, 31)) == "2024/25"
    assert fy_for_date(date(2025, 1, 1)) == "2024/25"


def test_a_calendar_year_maps_to_the_financial_year_holding_most_of_it_with_a_flag() -> None:
    # Calendar 2023: 275 days (April-December) in 2023/24, 90 (January-March) in 2022/23.
    assert cy_to_fy_assumption("2023") == ("2023/24", CY_AS_FY_FLAG)
    assert CY_AS_FY_FLAG == "ASSUMED_CY_AS_FY"
    with pytest.raises(ValueError, match="not a calendar year"):
        cy_to_fy_assumption("2023/24")


def test_amounts_and_index_values_must_be_decimals() -> None:
    with pytest.raises(AssertionError, match="Decimal"):
        rebase(100.0, "2008/09", "2018/19", NHS_DIGITAL)  # type: ignore[arg-type]
    with pytest.raises(AssertionError, match="Decimal"):
        rebase(D(1), "2008/09", "2018/19", {"2008/09": 84.421, "2018/19": D(100)})  # type: ignore[dict-item]


index_values = st.decimals(min_value=D("0.001"), max_value=D("10000"), places=3)


@given(
    st.decimals(min_value=D(-(10**9)), max_value=D(10**9), places=4),
    index_values,
    index_values,
)
def test_rebase_there_and_back_is_identity_within_1e_20(
    amount: Decimal, d_from: Decimal, d_to: Decimal
) -> None:
    index = {"2010/11": d_from, "2024/25": d_to}
    there = rebase(amount, "2010/11", "2024/25", index)
    back = rebase(there, "2024/25", "2010/11", index)
    assert abs(back - amount) <= D("1e-20")
