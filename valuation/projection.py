"""What-if projection (DOMAIN R-C17): a population giving hours, and what those hours are worth.

    hours = population * hours per person per period * periods

exact in Decimal, optionally valued at a wage Range per hour. DOMAIN's scenarios: Learning to Lead
scaled to Scotland's schools, 681,573 pupils * 1 hour a week * 39 weeks = 26,581,347 hours (O11);
a KeyRing-style give-back, 300,000 adults * 3 hours a year = 900,000 hours (O12).

A projection is a scenario, not a record: it never touches the ledger and a report must label it
as a projection.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .money import ONE, Range, check_decimal, in_valuation_context


@dataclass(frozen=True, slots=True)
class Projection:
    """A scenario's inputs, its hours, and their value (None when no wage was given)."""

    population: Decimal
    hours_per_person: Decimal
    periods: Decimal
    period: str
    hours: Decimal
    wage: Range | None
    value: Range | None


@in_valuation_context
def project_hours(
    population: int | Decimal,
    hours_per_person: int | Decimal,
    periods: int | Decimal = ONE,
    *,
    period: str = "week",
    wage: Range | None = None,
) -> Projection:
    """`population` people each giving `hours_per_person` hours a `period` for `periods` periods:
    the hours, and (with a `wage` per hour) their value."""
    counts = {"population": population, "hours_per_person": hours_per_person, "periods": periods}
    as_decimal: dict[str, Decimal] = {}
    for name, value in counts.items():
        assert type(value) is int or isinstance(value, Decimal), (
            f"{name} must be an int or a Decimal, not {type(value).__name__}"
        )
        number = check_decimal(name, Decimal(value))
        assert number >= 0, f"{name} must be >= 0, not {number}"
        as_decimal[name] = number
    assert isinstance(period, str) and period, "period must be named"
    hours = as_decimal["population"] * as_decimal["hours_per_person"] * as_decimal["periods"]
    if wage is not None:
        assert isinstance(wage, Range) and wage.low >= 0, "a wage is a Range >= 0"
    return Projection(
        population=as_decimal["population"],
        hours_per_person=as_decimal["hours_per_person"],
        periods=as_decimal["periods"],
        period=period,
        hours=hours,
        wage=wage,
        value=None if wage is None else wage.scale(hours),
    )
