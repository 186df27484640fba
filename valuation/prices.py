"""Price-basing: moving an amount from the prices of one period to those of another.

VALUATION §6: `cost_B = cost_y * (D_B / D_y)`, where D is a price index (the HM Treasury GDP
deflator by default) for the base period B and the amount's own period y. NHS Digital's example:
£100 in 2008/09 is £100 * (100 / 84.421) = £118.45 in 2018/19 prices.

Periods are words: a UK financial year "2023/24" (1 April 2023 to 31 March 2024) or a calendar
year "2023". An index is keyed by one kind or the other; `rebase` refuses to mix them and raises
`MissingPricePoint` for a period the index lacks (it never skips or guesses).

Calendar and financial years differ, and the sources mix them (deflators, PSSRU and GMCA costs
are financial-year; the Independent Sector is calendar-year; ONS HHSA treats one as the other).
`cy_to_fy_assumption` maps a calendar year to the financial year that holds most of it: calendar
year 2023 has 275 of its 365 days (April to December) in 2023/24 and 90 in 2022/23, so "2023"
becomes "2023/24". That is an assumption, not a conversion: the function returns the flag
`ASSUMED_CY_AS_FY` with the period, and the caller must carry it into the report.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Literal

from .money import Range, ValuationError, check_decimal, in_valuation_context

PeriodKind = Literal["FY", "CY"]

CY_AS_FY_FLAG = "ASSUMED_CY_AS_FY"
FY_START_MONTH = 4  # the UK financial year starts on 1 April

_FY = re.compile(r"^(\d{4})/(\d{2})$")
_CY = re.compile(r"^\d{4}$")


class MissingPricePoint(ValuationError, LookupError):
    """The price index has no value for `period`."""

    def __init__(self, period: str) -> None:
        self.period = period
        super().__init__(f"the price index has no value for period {period!r}")


def period_kind(period: str) -> PeriodKind:
    """ "FY" for a financial year like "2023/24", "CY" for a calendar year like "2023"; a
    ValueError for anything else (including "2023/25", whose years do not follow on)."""
    match = _FY.match(period)
    if match is not None:
        start, end = int(match.group(1)), int(match.group(2))
        if (start + 1) % 100 != end:
            raise ValueError(f"financial year {period!r}: the second year must follow the first")
        return "FY"
    if _CY.match(period) is not None:
        return "CY"
    raise ValueError(
        f"a period is a financial year '2023/24' or a calendar year '2023': {period!r}"
    )


def fy_label(start_year: int) -> str:
    """The financial year starting 1 April of `start_year`: 2023 -> "2023/24"."""
    assert isinstance(start_year, int) and 1000 <= start_year <= 9998, f"a year, not {start_year}"
    return f"{start_year}/{(start_year + 1) % 100:02d}"


def fy_start_year(period: str) -> int:
    """The year in which financial year `period` starts: "2023/24" -> 2023."""
    if period_kind(period) != "FY":
        raise ValueError(f"not a financial year: {period!r}")
    return int(period[:4])


def fy_for_date(day: date) -> str:
    """The UK financial year holding `day`: 31 March 2024 -> "2023/24", 1 April -> "2024/25"."""
    assert isinstance(day, date), f"a date, not {day!r}"
    return fy_label(day.year if day.month >= FY_START_MONTH else day.year - 1)


def cy_to_fy_assumption(year: str) -> tuple[str, str]:
    """(the financial year holding most of calendar year `year`, `ASSUMED_CY_AS_FY`):
    "2023" -> ("2023/24", "ASSUMED_CY_AS_FY"). Call it only to opt in to that assumption, and
    carry the flag into the report."""
    if period_kind(year) != "CY":
        raise ValueError(f"not a calendar year: {year!r}")
    return fy_label(int(year)), CY_AS_FY_FLAG


@in_valuation_context
def price_factor(from_period: str, to_period: str, index: Mapping[str, Decimal]) -> Decimal:
    """D_to / D_from: what one unit of `from_period` prices is in `to_period` prices."""
    _check_same_kind(from_period, to_period)
    d_from = _index_value(index, from_period)
    d_to = _index_value(index, to_period)
    return d_to / d_from


@in_valuation_context
def rebase(
    amount: Decimal, from_period: str, to_period: str, index: Mapping[str, Decimal]
) -> Decimal:
    """`amount` in `from_period` prices, expressed in `to_period` prices: amount * D_to / D_from."""
    check_decimal("amount", amount)
    _check_same_kind(from_period, to_period)
    d_from = _index_value(index, from_period)
    d_to = _index_value(index, to_period)
    return amount * d_to / d_from


@in_valuation_context
def rebase_range(
    amount: Range, from_period: str, to_period: str, index: Mapping[str, Decimal]
) -> Range:
    """Each end of `amount` rebased from `from_period` to `to_period` prices."""
    return Range(
        rebase(amount.low, from_period, to_period, index),
        rebase(amount.central, from_period, to_period, index),
        rebase(amount.high, from_period, to_period, index),
    )


def _check_same_kind(from_period: str, to_period: str) -> None:
    if period_kind(from_period) != period_kind(to_period):
        raise ValueError(
            f"cannot rebase between a financial and a calendar year ({from_period!r} -> "
            f"{to_period!r}): convert the period explicitly first"
        )


def _index_value(index: Mapping[str, Decimal], period: str) -> Decimal:
    if period not in index:
        raise MissingPricePoint(period)
    value = check_decimal(f"index[{period!r}]", index[period])
    assert value > 0, f"a price index value must be positive: index[{period!r}] = {value}"
    return value
