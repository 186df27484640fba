"""Lens A: the value of hours given, at replacement cost (VALUATION §1, §7.3 steps 1-2).

    V_A = Σ H[a, y] * w[a, y] * π * (1 + oncost) * (D_B / D_y)

Hours come from the ledger's minutes (hours = minutes / 60, exact until divided); the wage w for
each (proxy code, year) is chosen by the caller, usually with `choose_wage`, which follows the ILO
specialist approach and its fallbacks: the occupation's median wage (SPECIALIST) -> the all-
employee median (GENERALIST, flagged FALLBACK_GENERALIST) -> the National Living Wage for the year
(NLW_FLOOR, flagged FLOOR_NLW); and never below that year's NLW when it is known (flagged
RAISED_TO_FLOOR). Productivity π defaults to 1 and the on-cost uplift to 0, as ONS and ILO
practice does.

A wage is rebased from its own price period to the run's price base when a deflator is given; a
missing price point raises, never skips. Without a deflator a wage stays in its own prices and its
line is flagged NOT_REBASED. Every line keeps its wage, method and flags so a report can show its
working; `sensitivities` values the same hours under the named alternatives of §7.3.

Replacement cost is what the hours would cost to buy, not cash saved: a report must say so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Literal

from .money import (
    ONE,
    ZERO,
    Range,
    ValuationError,
    check_decimal,
    check_fraction,
    in_valuation_context,
    same_currency,
    sum_ranges,
)
from .prices import price_factor

WageMethod = Literal["SPECIALIST", "GENERALIST", "NLW_FLOOR", "FLAT"]
WAGE_METHODS: tuple[WageMethod, ...] = ("SPECIALIST", "GENERALIST", "NLW_FLOOR", "FLAT")

FALLBACK_GENERALIST = "FALLBACK_GENERALIST"
FLOOR_NLW = "FLOOR_NLW"
RAISED_TO_FLOOR = "RAISED_TO_FLOOR"
JUDGEMENT_MAPPING = "JUDGEMENT_MAPPING"
NOT_REBASED = "NOT_REBASED"

IS_ONCOST = Decimal("0.12")  # the Independent Sector's fringe-benefit uplift (VALUATION §1.3)
SENSITIVITY_PRODUCTIVITY = Decimal("0.8")  # Social Value Ireland's pro-rating (VALUATION §1.5)
MINUTES_PER_HOUR = Decimal(60)


class MissingWage(ValuationError, LookupError):
    """No wage was supplied for a line's (proxy code, year)."""

    def __init__(self, proxy_code: str, year: str) -> None:
        self.proxy_code = proxy_code
        self.year = year
        super().__init__(f"no wage for proxy {proxy_code!r} in year {year!r}")


class NoWageCandidate(ValuationError):
    """`choose_wage` was given no specialist, generalist or floor wage."""


@dataclass(frozen=True, slots=True)
class HoursLine:
    """Minutes given under one key (e.g. (activity, period)), priced by `proxy_code` in `year`."""

    key: tuple[str, ...]
    proxy_code: str
    year: str
    minutes: int

    def __post_init__(self) -> None:
        assert isinstance(self.key, tuple) and all(isinstance(k, str) for k in self.key), (
            f"key must be a tuple of str: {self.key!r}"
        )
        assert isinstance(self.proxy_code, str) and self.proxy_code, "proxy_code must be named"
        assert isinstance(self.year, str) and self.year, "year must be named"
        assert type(self.minutes) is int and self.minutes >= 0, (
            f"minutes must be an int >= 0, not {self.minutes!r}"
        )


@dataclass(frozen=True, slots=True)
class Wage:
    """An hourly wage chosen for a (proxy code, year): its rate (in `currency`, at
    `price_period` prices), how it was chosen, the series it comes from, the SOC code of a
    specialist wage, and flags."""

    rate: Range
    currency: str
    price_period: str
    method: WageMethod
    series: str
    soc_code: str | None = None
    flags: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        assert isinstance(self.rate, Range), f"rate must be a Range, not {self.rate!r}"
        assert self.rate.low >= 0, f"a wage is never negative: {self.rate}"
        assert self.method in WAGE_METHODS, f"method must be one of {WAGE_METHODS}"
        assert self.method != "SPECIALIST" or self.soc_code, "a specialist wage names its SOC code"
        assert isinstance(self.flags, frozenset), "flags must be a frozenset"


WageLookup = Callable[[str, str], Wage] | Mapping[tuple[str, str], Wage]
"""The wage for (proxy code, year)."""

YearWageLookup = Callable[[str], Wage] | Mapping[str, Wage]
"""The wage for a year (a floor, a generalist median, a living wage)."""


@dataclass(frozen=True, slots=True)
class HoursParameters:
    """The run's choices for Lens A: price base and deflator (None: leave wages in their own
    prices, flagged NOT_REBASED), productivity π in (0, 1], on-cost uplift >= 0, currency."""

    price_base: str
    deflator: Mapping[str, Decimal] | None = None
    productivity: Decimal = ONE
    oncost: Decimal = ZERO
    currency: str = "GBP"

    def __post_init__(self) -> None:
        assert check_fraction("productivity", self.productivity) > 0, "productivity must be > 0"
        assert check_decimal("oncost", self.oncost) >= 0, "oncost must be >= 0"


@dataclass(frozen=True, slots=True)
class ValuedHoursLine:
    """One line's working: hours, the wage used, the factor applied (π * (1 + oncost) *
    D_B/D_y), and the value, in `price_period` prices."""

    key: tuple[str, ...]
    proxy_code: str
    year: str
    minutes: int
    hours: Decimal
    wage: Wage
    method: WageMethod
    price_factor: Decimal
    value: Range
    price_period: str
    flags: frozenset[str]


@dataclass(frozen=True, slots=True)
class ValuedHours:
    """Lens A for a set of lines: the lines, total hours and value, value by method, and every
    flag any line raised."""

    lines: tuple[ValuedHoursLine, ...]
    total_minutes: int
    total_hours: Decimal
    total_value: Range
    by_method: dict[str, Range]
    currency: str
    price_base: str
    productivity: Decimal
    oncost: Decimal
    flags: frozenset[str]


def choose_wage(
    *,
    specialist: Wage | None,
    generalist: Wage | None,
    floor: Wage | None,
    judgement_mapping: bool = False,
) -> Wage:
    """The wage for one (proxy, year, geography), by the ILO fallback chain: `specialist` (the
    occupation's median for the proxy's SOC code), else `generalist` (the all-employee median,
    flagged FALLBACK_GENERALIST), else `floor` (the NLW of the year, flagged FLOOR_NLW); then
    raised to `floor` end by end where below it (flagged RAISED_TO_FLOOR). `judgement_mapping`
    flags an activity -> occupation mapping that is a judgement (e.g. befriending -> care work).
    """
    present = [w for w in (specialist, generalist, floor) if w is not None]
    if not present:
        raise NoWageCandidate("no specialist, generalist or floor wage to choose from")
    same_currency(*(w.currency for w in present))
    chosen: Wage
    if specialist is not None:
        chosen = replace(specialist, method="SPECIALIST")
    elif generalist is not None:
        chosen = replace(
            generalist, method="GENERALIST", flags=generalist.flags | {FALLBACK_GENERALIST}
        )
    else:
        assert floor is not None
        chosen = replace(floor, method="NLW_FLOOR", flags=floor.flags | {FLOOR_NLW})
    if floor is not None:
        raised = chosen.rate.at_least(floor.rate)
        if raised != chosen.rate:
            chosen = replace(chosen, rate=raised, flags=chosen.flags | {RAISED_TO_FLOOR})
    if judgement_mapping:
        chosen = replace(chosen, flags=chosen.flags | {JUDGEMENT_MAPPING})
    return chosen


@in_valuation_context
def value_hours(
    lines: Sequence[HoursLine], wages: WageLookup, params: HoursParameters
) -> ValuedHours:
    """Each line's hours * its wage * π * (1 + oncost), rebased to the price base; the totals."""
    uplift = params.productivity * (ONE + params.oncost)
    valued: list[ValuedHoursLine] = []
    for line in lines:
        assert isinstance(line, HoursLine), f"an HoursLine, not {type(line).__name__}"
        wage = _lookup(wages, line)
        same_currency(params.currency, wage.currency)
        flags = set(wage.flags)
        if wage.price_period == params.price_base:
            rebase_by, price_period = ONE, params.price_base
        elif params.deflator is None:
            rebase_by, price_period = ONE, wage.price_period
            flags.add(NOT_REBASED)
        else:
            rebase_by = price_factor(wage.price_period, params.price_base, params.deflator)
            price_period = params.price_base
        factor = uplift * rebase_by
        value = wage.rate.scale(Decimal(line.minutes) * factor / MINUTES_PER_HOUR)
        valued.append(
            ValuedHoursLine(
                key=line.key,
                proxy_code=line.proxy_code,
                year=line.year,
                minutes=line.minutes,
                hours=Decimal(line.minutes) / MINUTES_PER_HOUR,
                wage=wage,
                method=wage.method,
                price_factor=factor,
                value=value,
                price_period=price_period,
                flags=frozenset(flags),
            )
        )
    by_method: dict[str, Range] = {
        method: sum_ranges(v.value for v in valued if v.method == method)
        for method in WAGE_METHODS
        if any(v.method == method for v in valued)
    }
    total_minutes = sum(v.minutes for v in valued)
    return ValuedHours(
        lines=tuple(valued),
        total_minutes=total_minutes,
        total_hours=Decimal(total_minutes) / MINUTES_PER_HOUR,
        total_value=sum_ranges(v.value for v in valued),
        by_method=by_method,
        currency=params.currency,
        price_base=params.price_base,
        productivity=params.productivity,
        oncost=params.oncost,
        flags=frozenset().union(*(v.flags for v in valued)),
    )


def sensitivities(
    lines: Sequence[HoursLine],
    wages: WageLookup,
    params: HoursParameters,
    *,
    floor: YearWageLookup,
    generalist: YearWageLookup,
    rlw: YearWageLookup | None = None,
) -> dict[str, ValuedHours]:
    """The same hours valued under the named alternatives of VALUATION §7.3:

    - "central": `wages` and `params` as given;
    - "nlw_floor_only": every line at the NLW of its year (`floor`);
    - "generalist_median": every line at the all-employee median of its year (`generalist`);
    - "oncost_12pct": on-cost set to 12%, the Independent Sector's fringe-benefit uplift;
    - "productivity_0_8": π = 0.8;
    - "real_living_wage": every line at the Real Living Wage of its year, when `rlw` is given.
    """
    result = {
        "central": value_hours(lines, wages, params),
        "nlw_floor_only": value_hours(
            lines, _by_year(floor, "NLW_FLOOR", frozenset({FLOOR_NLW})), params
        ),
        "generalist_median": value_hours(
            lines, _by_year(generalist, "GENERALIST", frozenset()), params
        ),
        "oncost_12pct": value_hours(lines, wages, replace(params, oncost=IS_ONCOST)),
        "productivity_0_8": value_hours(
            lines, wages, replace(params, productivity=SENSITIVITY_PRODUCTIVITY)
        ),
    }
    if rlw is not None:
        result["real_living_wage"] = value_hours(lines, _by_year(rlw, "FLAT", frozenset()), params)
    return result


def _lookup(wages: WageLookup, line: HoursLine) -> Wage:
    if isinstance(wages, Mapping):
        wage = wages.get((line.proxy_code, line.year))
        if wage is None:
            raise MissingWage(line.proxy_code, line.year)
    else:
        wage = wages(line.proxy_code, line.year)
    assert isinstance(wage, Wage), f"a Wage for {line.proxy_code!r} {line.year!r}, not {wage!r}"
    return wage


def _by_year(
    source: YearWageLookup, method: WageMethod, flags: frozenset[str]
) -> Callable[[str, str], Wage]:
    def wage_for(proxy_code: str, year: str) -> Wage:
        if isinstance(source, Mapping):
            wage = source.get(year)
            if wage is None:
                raise MissingWage(proxy_code, year)
        else:
            wage = source(year)
        return replace(wage, method=method, flags=wage.flags | flags)

    return wage_for
