"""Discounting: discount factors from a (possibly declining) rate schedule, and present values.

The factor for year t compounds the rate of each year up to it (VALUATION §2.4, §7.3 step 7):

    DF_t = Π_{k=1..t} 1 / (1 + r_k)          (DF_0 = 1)

where r_k is the rate of the band holding year k. A stream of n yearly values starts at year
`start`:

- `start=1`, the SROI Guide convention: the first value is year 1 and is discounted once;
- `start=0`, the Green Book convention: the first value is year 0 (the current year) and is not
  discounted.

Values 10,000, 8,000 and 6,400 at 3.5% have a PV of 22,902.35 with start=1 and 23,703.94 with
start=0 (VALUATION §7.6 #1). The Green Book's declining schedule (3.5% for years 0-30, 3.0% for
31-75, 2.5% for 76-125) is `GREEN_BOOK_STPR`: year 31 is discounted at 3.0% on top of thirty
years at 3.5%. A year no band covers is refused (`NoDiscountRate`), never guessed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import pairwise

from .money import (
    ONE,
    Range,
    ValuationError,
    check_decimal,
    check_fraction,
    in_valuation_context,
    sum_ranges,
)


class NoDiscountRate(ValuationError, LookupError):
    """No band of the schedule covers `year`."""

    def __init__(self, year: int) -> None:
        self.year = year
        super().__init__(f"no discount band covers year {year}")


@dataclass(frozen=True, slots=True)
class DiscountBand:
    """The rate for years `year_from` to `year_to` inclusive (`None`: every later year)."""

    year_from: int
    year_to: int | None
    rate: Decimal

    def __post_init__(self) -> None:
        assert isinstance(self.year_from, int) and self.year_from >= 0, "year_from must be >= 0"
        assert self.year_to is None or (
            isinstance(self.year_to, int) and self.year_to >= self.year_from
        ), f"year_to must be None or >= year_from: {self.year_from}..{self.year_to}"
        check_fraction("rate", self.rate)

    def covers(self, year: int) -> bool:
        """Whether `year` falls in this band."""
        return self.year_from <= year and (self.year_to is None or year <= self.year_to)


GREEN_BOOK_STPR: tuple[DiscountBand, ...] = (
    DiscountBand(0, 30, Decimal("0.035")),
    DiscountBand(31, 75, Decimal("0.030")),
    DiscountBand(76, 125, Decimal("0.025")),
)
"""The Green Book social time preference rate, years 0-125 (VALUATION §2.4, [V])."""

GREEN_BOOK_HEALTH: tuple[DiscountBand, ...] = (DiscountBand(0, None, Decimal("0.015")),)
"""1.5% for non-monetised utility measures (VALUATION §2.4); its long-run decline is unverified
and left out."""


def flat_rate(rate: Decimal) -> tuple[DiscountBand, ...]:
    """One band: `rate` for every year."""
    return (DiscountBand(0, None, rate),)


def check_bands(bands: Sequence[DiscountBand]) -> None:
    """Assert that `bands` is a non-empty schedule of bands in year order that do not overlap."""
    assert bands, "a discount schedule needs at least one band"
    for band in bands:
        assert isinstance(band, DiscountBand), f"a DiscountBand, not {type(band).__name__}"
    for before, after in pairwise(bands):
        assert before.year_to is not None and before.year_to < after.year_from, (
            f"discount bands must be in year order without overlap: {before} then {after}"
        )


def rate_for_year(year: int, bands: Sequence[DiscountBand]) -> Decimal:
    """The rate of the band holding `year`; `NoDiscountRate` when none does."""
    for band in bands:
        if band.covers(year):
            return band.rate
    raise NoDiscountRate(year)


@in_valuation_context
def discount_factors(n_years: int, bands: Sequence[DiscountBand], start: int) -> list[Decimal]:
    """The factors of `n_years` yearly values whose first is year `start` (1: SROI Guide, the
    first year discounted; 0: Green Book, the first year undiscounted): DF_t = Π_{k<=t} 1/(1+r_k)
    for t = start .. start + n_years - 1."""
    assert isinstance(n_years, int) and n_years >= 0, f"n_years must be >= 0, not {n_years}"
    assert start in (0, 1), f"start must be 0 (Green Book) or 1 (SROI Guide), not {start}"
    check_bands(bands)
    factors: list[Decimal] = []
    factor = ONE
    for t in range(start, start + n_years):
        if t >= 1:
            factor = factor / (ONE + rate_for_year(t, bands))
        factors.append(factor)
    return factors


@in_valuation_context
def present_value(values: Sequence[Decimal | Range], factors: Sequence[Decimal]) -> Range:
    """Σ values[i] * factors[i], as a Range (a Decimal value counts as a point range)."""
    assert len(values) == len(factors), (
        f"one factor per value: {len(values)} values, {len(factors)} factors"
    )
    terms: list[Range] = []
    for value, factor in zip(values, factors, strict=True):
        check_decimal("factor", factor)
        assert factor >= 0, f"a discount factor is never negative: {factor}"
        as_range = value if isinstance(value, Range) else Range.point(check_decimal("value", value))
        terms.append(as_range.scale(factor))
    return sum_ranges(terms)
