"""Lens A in a report: the scheme's confirmed hours valued at replacement cost. Pure.

For each activity and month the wage is chosen from the catalogue by the ILO specialist approach
and its fallbacks (`valuation.hours.choose_wage`): the ASHE median for the activity's proxy
occupation, else the generalist median (AWE/35 in the shipped catalogue), else the National
Living Wage, never below the NLW of the year. A month is priced in the UK financial year it falls
in. Where the catalogue has no rate for that year, the latest earlier rate is used and the line is
flagged STALE_RATE with the year it took; an activity whose proxy code the catalogue does not
know is priced at the generalist median (flagged NO_PROXY); a rate tagged unverified ("R") is
used only when the run allows it (flagged UNVERIFIED). A report in US dollars is valued at the
Independent Sector's value of a volunteer hour (a flat rate), the US convention.

Values stay in the prices of the year the hours were given unless the catalogue holds the GDP
deflator for every year involved and the run names a price base; otherwise lines are flagged
NOT_REBASED and the report says so.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

from .. import (
    HoursLine,
    HoursParameters,
    NoWageCandidate,
    Range,
    ValuedHours,
    Wage,
    WageMethod,
    choose_wage,
    fy_for_date,
    sensitivities,
    sum_ranges,
    value_hours,
)
from ..catalogue import Catalogue, WageRate
from ..prices import fy_start_year
from .facts import Facts

STALE_RATE = "STALE_RATE"
NO_PROXY = "NO_PROXY"
UNVERIFIED = "UNVERIFIED"
NOT_VALUED = "NOT_VALUED"  # some hours had no wage to price them: listed under not_valued
DEFLATOR = "HMT_GDP_DEFLATOR"
METHOD = (
    "Replacement cost (ILO specialist approach): hours x the median hourly pay of the closest "
    "paid occupation, falling back to the generalist median and then the National Living Wage "
    "of the year; productivity {productivity}, on-cost {oncost}."
)


class _Rates:
    """Wage lookups against one catalogue, remembering every source used."""

    def __init__(self, catalogue: Catalogue, geography: str, allow_unverified: bool) -> None:
        self.catalogue = catalogue
        self.geography = geography
        self.allow_unverified = allow_unverified
        self.sources: set[str] = set()

    def latest(self, series: str, year: str, soc: str | None = None) -> tuple[WageRate, str] | None:
        """The rate of `series` for `year`, or the latest before it; and the year it is for."""
        wanted = _start(year)
        found: list[WageRate] = []
        for place in dict.fromkeys((self.geography, "UK")):  # local rates first, then the UK's
            found = found or [
                w
                for w in self.catalogue.wage_rates
                if w.series == series
                and w.soc_code == soc
                and w.geography == place
                and _start(w.year) <= wanted
                and (self.allow_unverified or w.verification != "R")
            ]
        if not found:
            return None
        best = max(found, key=lambda w: _start(w.year))
        self.sources.add(best.source)
        return best, best.year

    def wage(
        self, series: str, year: str, method: WageMethod, soc: str | None = None
    ) -> Wage | None:
        hit = self.latest(series, year, soc)
        if hit is None:
            return None
        rate, used = hit
        flags = set()
        if _start(used) != _start(year):
            flags.add(f"{STALE_RATE}:{used}")
        if rate.verification == "R":
            flags.add(UNVERIFIED)
        return Wage(
            Range.point(rate.value), rate.currency, used, method, series, soc, frozenset(flags)
        )


def _hours(minutes: int) -> str:
    return str((Decimal(minutes) / 60).quantize(Decimal("0.01")))


def _start(period: str) -> int:
    return fy_start_year(period) if "/" in period else int(period)


def valued_hours(
    facts: Facts,
    catalogue: Catalogue,
    *,
    currency: str,
    geography: str,
    productivity: Decimal,
    oncost: Decimal,
    allow_unverified: bool,
    price_base: str | None = None,
) -> dict[str, Any]:
    """The report's `lenses.A` section."""
    info = {a.code: a for a in facts.activities}
    lines = [
        HoursLine(
            (c.activity, c.month),
            info[c.activity].proxy_code,
            fy_for_date(date.fromisoformat(c.month + "-01")),
            c.minutes,
        )
        for c in facts.cells
    ]
    rates = _Rates(catalogue, geography, allow_unverified)
    us = currency == "USD"

    def wage_for(proxy_code: str, year: str) -> Wage:
        if us:  # the US convention: the Independent Sector's flat value of a volunteer hour
            flat = rates.wage("IS_VOLUNTEER_HOUR", str(_start(year)), "FLAT")
            if flat is None:
                raise LookupError(f"no Independent Sector rate for {year}")
            return flat
        specialist = None
        judgement = False
        proxies = catalogue.proxies_for(proxy_code)
        for proxy in proxies:
            judgement = judgement or proxy.judgement
            rates.sources.add(proxy.source)
            if proxy.soc_code and specialist is None:
                specialist = rates.wage("ASHE_HOURLY_EXCL_OT", year, "SPECIALIST", proxy.soc_code)
        generalist = rates.wage("AWE_DIV35", str(_start(year)), "GENERALIST")
        floor = rates.wage("NLW", year, "NLW_FLOOR")
        chosen = choose_wage(
            specialist=specialist, generalist=generalist, floor=floor, judgement_mapping=judgement
        )
        if not proxies:  # the activity names a proxy the catalogue does not know
            chosen = replace(chosen, flags=chosen.flags | {NO_PROXY})
        return chosen

    # Hours the catalogue holds no wage for (a month before its first rate): not valued, and
    # said so with the reason, never priced at 0 nor a 500 for the whole report.
    unpriced: dict[tuple[str, ...], str] = {}
    for line in lines:
        try:
            wage_for(line.proxy_code, line.year)
        except (NoWageCandidate, LookupError) as why:
            unpriced[line.key] = f"no wage in the catalogue for {line.year} ({why})"
    not_valued = [
        {
            "activity": line.key[0],
            "month": line.key[1],
            "hours": _hours(line.minutes),
            "reason": unpriced[line.key],
        }
        for line in lines
        if line.key in unpriced
    ]
    lines = [line for line in lines if line.key not in unpriced]
    latest = max((line.year for line in lines), key=_start, default=fy_for_date(facts.end))
    base = price_base or latest
    wage_periods = {wage_for(line.proxy_code, line.year).price_period for line in lines}
    deflator, why_not = _deflator(catalogue, wage_periods, base) if price_base else (None, "")
    params = HoursParameters(base, deflator, productivity, oncost, currency)
    central = value_hours(lines, wage_for, params)
    try:
        alternatives = _sensitivities(lines, wage_for, params, rates, us)
    except (ValueError, LookupError):  # an alternative's wage has no deflator point: unrebased
        alternatives = _sensitivities(lines, wage_for, replace(params, deflator=None), rates, us)
    return {
        "title": "Value of hours (replacement cost)",
        "method": METHOD.format(productivity=productivity, oncost=oncost),
        "currency": currency,
        "price_base": (
            f"{base} prices (HM Treasury GDP deflator)"
            if deflator is not None or "NOT_REBASED" not in central.flags
            else "the prices of the year each wage is for (not rebased"
            + (f": {why_not})" if why_not else ")")
        ),
        "total": _range(central.total_value) if lines or not not_valued else None,
        "hours": str(central.total_hours.quantize(Decimal("0.01"))),
        "by_method": [{"method": m, "value": _range(v)} for m, v in central.by_method.items()],
        "by_activity": _by_activity(central, info),
        "sensitivities": [
            {
                "sensitivity": name,
                "central": _money(result.total_value.central),
                "rebased": "NOT_REBASED" not in result.flags,
            }
            for name, result in alternatives.items()
        ],
        "flags": sorted(central.flags | ({NOT_VALUED} if not_valued else set())),
        "not_valued": not_valued,
        "not_valued_hours": _hours(sum(c.minutes for c in facts.cells) - central.total_minutes),
        "sources": sorted(rates.sources),
        "note": "Replacement cost is what the hours would cost to buy, not cash saved.",
    }


def _sensitivities(
    lines: list[HoursLine], wage_for: Any, params: HoursParameters, rates: _Rates, us: bool
) -> dict[str, ValuedHours]:
    if us or not lines:
        return {"central": value_hours(lines, wage_for, params)}

    def floor(year: str) -> Wage:
        found = rates.wage("NLW", year, "NLW_FLOOR")
        if found is None:
            raise LookupError(f"no NLW for {year}")
        return found

    def generalist(year: str) -> Wage:
        return rates.wage("AWE_DIV35", str(_start(year)), "GENERALIST") or floor(year)

    def rlw(year: str) -> Wage:
        return rates.wage("RLW", year, "FLAT") or floor(year)

    return sensitivities(lines, wage_for, params, floor=floor, generalist=generalist, rlw=rlw)


def _deflator(
    catalogue: Catalogue, periods: set[str], base: str
) -> tuple[dict[str, Decimal] | None, str]:
    """The GDP deflator by period, when the catalogue holds every period needed (and the
    base); else None and why. Calendar-year wage periods are not rebased onto financial years."""
    points: dict[str, Decimal] = {}
    for p in sorted(catalogue.price_points, key=lambda p: p.vintage):  # the latest vintage wins
        if p.series == DEFLATOR:
            points[p.period] = p.value
    needed = periods | {base}
    if any(("/" in x) != ("/" in base) for x in needed):
        return None, "wages for calendar and financial years are not rebased onto one base"
    missing = sorted(needed - points.keys())
    if missing:
        return None, f"the catalogue has no GDP deflator for {', '.join(missing)}"
    return points, ""


def _by_activity(result: ValuedHours, info: dict[str, Any]) -> list[dict[str, Any]]:
    groups: defaultdict[str, list[Any]] = defaultdict(list)
    for line in result.lines:
        groups[line.key[0]].append(line)
    return [
        {
            "activity": code,
            "title": info[code].title,
            "proxy_code": info[code].proxy_code,
            "minutes": sum(x.minutes for x in found),
            "methods": sorted({x.method for x in found}),
            "rates": sorted(
                {f"{_money(x.wage.rate.central)} ({x.wage.price_period})" for x in found}
            ),
            "value": _range(sum_ranges(x.value for x in found)),
            "flags": sorted(set().union(*(x.flags for x in found))),
        }
        for code, found in sorted(groups.items())
    ]


def _range(r: Range) -> dict[str, str]:
    return {"low": _money(r.low), "central": _money(r.central), "high": _money(r.high)}


def _money(d: Decimal) -> str:
    return str(d.quantize(Decimal("0.01")))


def sources_used(catalogue: Catalogue, ids: Iterable[str]) -> list[dict[str, Any]]:
    """The report's provenance list: each source used, with its licence."""
    out = []
    for source_id in sorted(set(ids)):
        s = catalogue.source(source_id)
        out.append(
            {
                "id": s.id,
                "title": s.title,
                "publisher": s.publisher,
                "year": s.published,
                "url": s.url,
                "licence": s.licence,
            }
        )
    return out
