"""Money arithmetic for the valuation: Decimal only, ranges of low/central/high, display rounding.

Every value the valuation computes is a `Range` (low <= central <= high): the central estimate and
the bounds that the inputs' own ranges imply (a WELLBY of £10,000-£16,000 around £13,000, a
proxy's low and high amounts). Arithmetic is interval arithmetic, so the bounds stay bounds:

    a + b = (a.low + b.low,  a.central + b.central,  a.high + b.high)
    a - b = (a.low - b.high, a.central - b.central,  a.high - b.low)
    a * k = (a.low * k, a.central * k, a.high * k)      k >= 0 (a negative k swaps the ends)
    a * b = (min of the four corner products, a.central * b.central, max of them)

Net values (PV - cost) may be negative. Nothing here rounds: `display` and `minor_units` round
(ROUND_HALF_UP) only to show or store a result. Floats are refused at every boundary.

All arithmetic runs in `VALUATION_CONTEXT` (34 significant digits, half-even), whatever the
caller's decimal context, so a report recomputes to the same digits anywhere.

Amounts in different currencies are never added: `same_currency` refuses a mix, and `convert` is
the only way across, and it needs an explicit, dated rate.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from decimal import (
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    localcontext,
)
from typing import ParamSpec, TypeVar

VALUATION_CONTEXT = Context(
    prec=34,
    rounding=ROUND_HALF_EVEN,
    Emin=-999_999,
    Emax=999_999,
    traps=[InvalidOperation, DivisionByZero, Overflow],
)

_P = ParamSpec("_P")
_R = TypeVar("_R")


def in_valuation_context(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run `fn` under `VALUATION_CONTEXT`, so its digits do not depend on the caller's context."""

    @functools.wraps(fn)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with localcontext(VALUATION_CONTEXT):
            return fn(*args, **kwargs)

    return run


class ValuationError(ValueError):
    """Base of the valuation's refusals: each names what is wrong or missing."""


class CurrencyMix(ValuationError):
    """Amounts in different currencies met where they would be added."""

    def __init__(self, currencies: Iterable[str]) -> None:
        self.currencies = tuple(sorted(set(currencies)))
        super().__init__(f"amounts in different currencies cannot be combined: {self.currencies}")


def check_decimal(name: str, value: object) -> Decimal:
    """`value` itself, asserted to be a finite Decimal (never a float, int or bool)."""
    assert isinstance(value, Decimal), f"{name} must be a Decimal, not {type(value).__name__}"
    assert value.is_finite(), f"{name} must be finite, not {value}"
    return value


def check_fraction(name: str, value: object) -> Decimal:
    """`value` itself, asserted to be a Decimal fraction in [0, 1]."""
    fraction = check_decimal(name, value)
    assert 0 <= fraction <= 1, f"{name} must be a fraction in [0, 1], not {fraction}"
    return fraction


@dataclass(frozen=True, slots=True)
class Range:
    """A money (or ratio) value with its bounds: low <= central <= high, all Decimal."""

    low: Decimal
    central: Decimal
    high: Decimal

    def __post_init__(self) -> None:
        check_decimal("Range.low", self.low)
        check_decimal("Range.central", self.central)
        check_decimal("Range.high", self.high)
        assert self.low <= self.central <= self.high, (
            f"a Range needs low <= central <= high: {self.low}, {self.central}, {self.high}"
        )

    @classmethod
    def point(cls, x: Decimal) -> Range:
        """The range of a value known exactly: low = central = high = x."""
        return cls(x, x, x)

    @property
    @in_valuation_context
    def width(self) -> Decimal:
        """high - low."""
        return self.high - self.low

    @property
    def is_point(self) -> bool:
        """Whether low = central = high."""
        return self.low == self.high

    @in_valuation_context
    def __add__(self, other: Range) -> Range:
        if not isinstance(other, Range):
            return NotImplemented
        return Range(self.low + other.low, self.central + other.central, self.high + other.high)

    @in_valuation_context
    def __sub__(self, other: Range) -> Range:
        if not isinstance(other, Range):
            return NotImplemented
        return Range(self.low - other.high, self.central - other.central, self.high - other.low)

    @in_valuation_context
    def __neg__(self) -> Range:
        return Range(-self.high, -self.central, -self.low)

    @in_valuation_context
    def __mul__(self, other: Range | Decimal) -> Range:
        if isinstance(other, Decimal):
            return self.scale(other)
        if not isinstance(other, Range):
            return NotImplemented
        corners = (
            self.low * other.low,
            self.low * other.high,
            self.high * other.low,
            self.high * other.high,
        )
        return Range(min(corners), self.central * other.central, max(corners))

    def __rmul__(self, other: Decimal) -> Range:
        if not isinstance(other, Decimal):
            return NotImplemented
        return self.scale(other)

    @in_valuation_context
    def scale(self, factor: Decimal) -> Range:
        """Each end times `factor`; a negative factor swaps the ends."""
        check_decimal("factor", factor)
        if factor < 0:
            return Range(self.high * factor, self.central * factor, self.low * factor)
        return Range(self.low * factor, self.central * factor, self.high * factor)

    def contains(self, x: Decimal) -> bool:
        """Whether low <= x <= high."""
        return self.low <= check_decimal("x", x) <= self.high

    def above(self, x: Decimal) -> bool:
        """Whether the whole range lies strictly above x (low > x)."""
        return self.low > check_decimal("x", x)

    def below(self, x: Decimal) -> bool:
        """Whether the whole range lies strictly below x (high < x)."""
        return self.high < check_decimal("x", x)

    def overlaps(self, other: Range) -> bool:
        """Whether the two ranges share at least one value."""
        return self.low <= other.high and other.low <= self.high

    def at_least(self, floor: Range) -> Range:
        """Each end raised to the matching end of `floor` where it is below it."""
        return Range(
            max(self.low, floor.low), max(self.central, floor.central), max(self.high, floor.high)
        )

    @in_valuation_context
    def rounded(self, places: int = 2) -> Range:
        """Each end rounded ROUND_HALF_UP to `places` decimals: for display and export only."""
        return Range(
            _round(self.low, places), _round(self.central, places), _round(self.high, places)
        )


ZERO = Decimal(0)
ONE = Decimal(1)
ZERO_RANGE = Range.point(ZERO)


@in_valuation_context
def sum_ranges(ranges: Iterable[Range]) -> Range:
    """The sum of `ranges`, end by end; the zero range when there are none."""
    low = central = high = ZERO
    for r in ranges:
        assert isinstance(r, Range), f"sum_ranges takes Ranges, not {type(r).__name__}"
        low, central, high = low + r.low, central + r.central, high + r.high
    return Range(low, central, high)


@in_valuation_context
def divide(numerator: Range, denominator: Range) -> Range | None:
    """numerator / denominator as an interval (min/max of the corner quotients, central over
    central); None when the denominator's range reaches zero, where the quotient is unbounded.

    With both positive: low = numerator.low / denominator.high, high = numerator.high /
    denominator.low.
    """
    if denominator.low <= 0 <= denominator.high:
        return None
    corners = (
        numerator.low / denominator.low,
        numerator.low / denominator.high,
        numerator.high / denominator.low,
        numerator.high / denominator.high,
    )
    return Range(min(corners), numerator.central / denominator.central, max(corners))


def _round(d: Decimal, places: int) -> Decimal:
    assert isinstance(places, int) and places >= 0, f"places must be an int >= 0, not {places}"
    rounded = check_decimal("amount", d).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)
    return rounded if rounded != 0 else abs(rounded)  # never "-0.00"


@in_valuation_context
def display(d: Decimal, places: int = 2) -> str:
    """`d` rounded ROUND_HALF_UP to `places` decimals with thousands commas: "1,234.57"."""
    return f"{_round(d, places):,.{places}f}"


@in_valuation_context
def minor_units(d: Decimal, places: int = 2) -> int:
    """`d` in minor units (pence, cents: `places` = 2), rounded ROUND_HALF_UP."""
    return int(_round(d, places).scaleb(places))


def same_currency(*currencies: str) -> str:
    """The one currency all of `currencies` name; `CurrencyMix` when they differ."""
    assert currencies, "same_currency needs at least one currency"
    for currency in currencies:
        assert isinstance(currency, str) and currency, f"a currency code, not {currency!r}"
    if len(set(currencies)) != 1:
        raise CurrencyMix(currencies)
    return currencies[0]


@in_valuation_context
def convert(amount: Decimal, rate: Decimal, rate_date: date) -> Decimal:
    """`amount` times an explicit exchange `rate` (target units per source unit) observed on
    `rate_date`. There is no other way to move an amount between currencies: the caller must
    name the rate and its date, and report both.
    """
    check_decimal("amount", amount)
    assert check_decimal("rate", rate) > 0, f"an exchange rate must be positive, not {rate}"
    assert isinstance(rate_date, date), f"rate_date must be a date, not {rate_date!r}"
    return amount * rate
