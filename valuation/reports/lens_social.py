"""Lenses B and C in a report: recorded outcomes valued with the catalogue, programme costs
netted, and fiscal savings split by the agency that receives them. Pure.

An outcome record counts people who met an outcome and names the catalogue entry that prices
it. It is left out of the sums, with the reason stated, when the entry is unknown, is not an
outcome value (Lens A replacement costs and programme costs are not), is in another currency
(never converted without a dated rate), or is unverified and the run does not allow that; or
when an adjustment (deadweight, displacement, attribution, drop-off) is neither evidenced in the
entry nor set for the run. A value set by the run is flagged ASSUMED_<X>. Optimism bias by the
entry's confidence grade is applied only when the catalogue's grade table is verified or the
run allows unverified values (flagged OPTIMISM_BIAS_NOT_APPLIED otherwise). Costs are taken as
paid up front (year 0). Values stay in each entry's own price year (flagged NOT_REBASED).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, cast

from .. import (
    Adjustments,
    DiscountBand,
    OutcomeInput,
    Range,
    SocialParameters,
    costs_by_funder,
    fiscal_by_agency,
    lines_from_social,
    switching_values,
    value_outcomes,
)
from .. import Cost as CostInput
from ..catalogue import Catalogue, ValuationEntry
from ..catalogue.model import DiscountScheduleName
from ..social import CostKind, MissingAdjustment
from .inputs import Cost, OutcomeRecord

OUTCOME_TYPES = frozenset({"WELLBEING", "FISCAL_CASHABLE", "FISCAL_NONCASHABLE", "ECONOMIC_OTHER"})
FISCAL_TYPES = frozenset({"FISCAL_CASHABLE", "FISCAL_NONCASHABLE"})
COST_KIND: dict[str, CostKind] = {"cash": "cash", "in-kind": "in-kind", "coordination": "in-kind"}


def _inputs(
    records: list[OutcomeRecord], catalogue: Catalogue, currency: str, allow_unverified: bool
) -> tuple[list[OutcomeInput], list[dict[str, Any]], set[str]]:
    """The records the lens can value, those it cannot (with why), and the sources used."""
    used: list[OutcomeInput] = []
    left_out: list[dict[str, Any]] = []
    sources: set[str] = set()
    bias_ok = allow_unverified or catalogue.optimism_bias.verification != "R"
    for r in records:
        entry: ValuationEntry | None
        try:
            entry = catalogue.entry(r.outcome)
        except KeyError:
            entry = None
        why = _unusable(entry, currency, allow_unverified)
        if why or entry is None:
            left_out.append({"id": r.id, "outcome": r.outcome, "people": r.people, "why": why})
            continue
        sources.add(entry.source)
        per_change = "WELLBY" in entry.unit.upper() or "QALY" in entry.unit.upper()
        quantity = Decimal(r.people) * (r.change if per_change and r.change else Decimal(1))
        flags = {"NOT_REBASED", f"EVIDENCE:{r.evidence.value}"}
        if entry.verification == "R":
            flags.add("UNVERIFIED")
        bias = Decimal(0)
        if bias_ok:
            bias = catalogue.optimism_uplift(entry.confidence_grade)
        else:
            flags.add("OPTIMISM_BIAS_NOT_APPLIED")
        duration = int(entry.default_duration_years or 1)
        used.append(
            OutcomeInput(
                r.id,
                entry.outcome or entry.id,
                quantity,
                Range(entry.low or entry.amount, entry.amount, entry.high or entry.amount),
                entry.deadweight,
                entry.displacement,
                entry.attribution,
                entry.drop_off,
                max(duration, 1),
                bias,
                frozenset(flags),
                entry.value_type,
                entry.agency,
            )
        )
    return used, left_out, sources


def _unusable(entry: ValuationEntry | None, currency: str, allow_unverified: bool) -> str:
    if entry is None:
        return "no such entry in the catalogue"
    if entry.value_type not in OUTCOME_TYPES:
        return f"a {entry.value_type} value does not price an outcome"
    if entry.unit.startswith("ratio"):
        return "a ratio from a study is context, not a value per person"
    if entry.currency != currency:
        return f"valued in {entry.currency}, the report in {currency}: no dated rate to convert"
    if entry.verification == "R" and not allow_unverified:
        return "unverified value (R): allowed only when the run says so"
    return ""


def social_lenses(
    records: list[OutcomeRecord],
    costs: list[Cost],
    catalogue: Catalogue,
    *,
    currency: str,
    schedule: str,
    discount_start: int,
    horizon: int,
    assumed: Adjustments,
    allow_unverified: bool,
) -> tuple[dict[str, Any], dict[str, Any], set[str]]:
    """The report's `lenses.B` and `lenses.C` sections, and the catalogue sources they used."""
    inputs, left_out, sources = _inputs(records, catalogue, currency, allow_unverified)
    schedule_bands = catalogue.discount_schedule(cast(DiscountScheduleName, schedule))
    bands = tuple(DiscountBand(b.year_from, b.year_to, b.rate) for b in schedule_bands)
    sources |= {b.source for b in schedule_bands}
    params = SocialParameters(bands, discount_start, horizon, assumed)
    valued, missing = [], []
    for outcome in inputs:
        try:
            value_outcomes([outcome], [], params)  # refuses a missing adjustment, by name
            valued.append(outcome)
        except MissingAdjustment as exc:
            missing.append({"id": outcome.outcome_id, "why": str(exc)})
    paid = [c for c in costs if c.currency == currency]
    left_out += [
        {"id": c.id, "why": f"a cost in {c.currency}, the report in {currency}"}
        for c in costs
        if c.currency != currency
    ]
    cost_inputs = [
        CostInput(c.funder, COST_KIND[c.kind.value], 0, Range.point(c.amount)) for c in paid
    ]
    result = value_outcomes(valued, cost_inputs, params)
    lens_b = {
        "title": "Social value (SROI / cost-benefit)",
        "method": "Outcomes x financial proxies, less deadweight, displacement, attribution and "
        f"optimism bias, with drop-off, discounted on the {schedule} schedule "
        f"({'year 1 discounted' if discount_start == 1 else 'year 0 undiscounted'}), "
        f"over {horizon} year(s); programme costs netted.",
        "currency": currency,
        "lines": [_line(x) for x in result.lines],
        "costs": [{"funder": c.funder, "kind": c.kind, "pv": _range(c.pv)} for c in result.costs],
        "totals": {
            "pv": _range(result.total_pv),
            "cost": _range(result.total_cost),
            "npsv": _range(result.npsv),
            "sroi": _opt(result.sroi),
            "net_sroi": _opt(result.net_sroi),
            "payback_months": _opt(result.payback_months),
        },
        "undefined": dict(sorted(result.undefined.items())),
        "switching_values": [
            {
                "outcome": s.outcome_id,
                "parameter": s.parameter,
                "current": str(s.current),
                "switching": None if s.switching is None else str(s.switching),
                "reason": s.reason,
            }
            for s in switching_values(valued, cost_inputs, params)
        ]
        if valued
        else [],
        "left_out": left_out + missing,
        "flags": sorted(result.flags),
    }
    fiscal = fiscal_by_agency(lines_from_social(result), costs_by_funder(result.costs))
    lens_c = {
        "title": "Fiscal savings by agency (who pays, who saves)",
        "currency": currency,
        "by_agency": [
            {
                "agency": a.agency,
                "cashable": _range(a.cashable),
                "non_cashable": _range(a.non_cashable),
                "unknown": _range(a.unknown),
                "total": _range(a.total),
            }
            for a in sorted(fiscal.by_agency.values(), key=lambda a: a.agency)
        ],
        "total_savings": _range(fiscal.total_savings),
        "matrix": [
            {"funder": f, "agency": a, "central": _money(v.central)}
            for f, row in sorted(fiscal.matrix.items())
            for a, v in sorted(row.items())
        ],
        "share_elsewhere": [
            {"funder": f, "share": None if s is None else str(s.quantize(Decimal("0.0001")))}
            for f, s in sorted(fiscal.share_elsewhere.items())
        ],
        "roi": [{"agency": a, "roi": _opt(r)} for a, r in sorted(fiscal.roi.items())],
        "public_sector_roi": _opt(fiscal.public_sector_roi),
        "undefined": dict(sorted(fiscal.undefined.items())),
    }
    return lens_b, lens_c, sources


def _line(x: Any) -> dict[str, Any]:
    return {
        "id": x.outcome_id,
        "stakeholder": x.stakeholder,
        "value_type": x.value_type,
        "agency": x.agency,
        "year": x.year,
        "quantity": str(x.quantity),
        "proxy": _range(x.proxy),
        "deadweight": str(x.deadweight),
        "displacement": str(x.displacement),
        "attribution": str(x.attribution),
        "optimism_bias": str(x.optimism_bias),
        "drop_off": str(x.drop_off),
        "gross": _range(x.gross),
        "after_deadweight": _range(x.after_deadweight),
        "after_displacement": _range(x.after_displacement),
        "after_attribution": _range(x.after_attribution),
        "after_optimism_bias": _range(x.after_optimism_bias),
        "after_drop_off": _range(x.after_drop_off),
        "discount_factor": str(x.discount_factor.quantize(Decimal("0.000001"))),
        "pv": _range(x.pv),
        "flags": sorted(x.flags),
    }


def _range(r: Range) -> dict[str, str]:
    return {"low": _money(r.low), "central": _money(r.central), "high": _money(r.high)}


def _opt(r: Range | None) -> dict[str, str] | None:
    return None if r is None else _range(r)


def _money(d: Decimal) -> str:
    return str(d.quantize(Decimal("0.01")))
