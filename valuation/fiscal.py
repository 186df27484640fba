"""Lens C: fiscal savings by agency, and the "wrong pocket" (VALUATION §4.2, §7.3 steps 10-11).

Savings to the public purse (present values, usually the Lens B lines whose value type is
FISCAL_CASHABLE or FISCAL_NONCASHABLE) are summed by the agency that receives them, split into
cashable, non-cashable and unknown. Against the costs by funding agency:

- fiscal ROI[agency] = PV_fiscal[agency] / C[agency]: None when the agency funded nothing;
- public-sector ROI = all savings / all costs;
- the funder x beneficiary matrix: each saving is allocated to the funders in proportion to their
  share of the (central) costs, so row f shows what funder f's money bought and for whom;
- share elsewhere[f]: the part of funder f's row that falls to agencies other than f.

The GMCA CBA model shows these "money flows between organisations that invest ... and those that
derive the benefits". DOMAIN M5-M7: a council spends £1 on parenting classes and £4 comes back to
the public sector, £1 to the council itself and £3 to its partners: the council's own ROI is 1.0,
the public sector's 4.0, and 75% of what the council's money saves falls elsewhere.

Shares (cost share, share elsewhere) are taken from central values; savings and ROIs are Ranges.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from .money import (
    ZERO,
    ZERO_RANGE,
    Range,
    ValuationError,
    divide,
    in_valuation_context,
    sum_ranges,
)
from .social import CostLine, SocialResult

FISCAL_CASHABLE = "FISCAL_CASHABLE"
FISCAL_NONCASHABLE = "FISCAL_NONCASHABLE"


@dataclass(frozen=True, slots=True)
class FiscalLine:
    """A saving (present value) from one outcome or catalogue entry to one `agency`;
    `cashable` None when it is not known whether the saving can be taken as cash."""

    entry_id: str
    agency: str
    cashable: bool | None
    pv: Range

    def __post_init__(self) -> None:
        assert isinstance(self.entry_id, str) and self.entry_id, "entry_id must be named"
        assert isinstance(self.agency, str) and self.agency, "agency must be named"
        assert self.cashable in (True, False, None), "cashable is True, False or None"
        assert isinstance(self.pv, Range), f"pv must be a Range, not {self.pv!r}"


@dataclass(frozen=True, slots=True)
class AgencySavings:
    """One agency's savings, split by whether they are cashable."""

    agency: str
    cashable: Range
    non_cashable: Range
    unknown: Range
    total: Range


@dataclass(frozen=True, slots=True)
class FiscalResult:
    """Lens C: savings by agency, costs by funder, the funder x beneficiary matrix, each
    funder's share of savings falling elsewhere, and ROIs; `undefined` says why any is None."""

    by_agency: dict[str, AgencySavings]
    total_savings: Range
    costs: dict[str, Range]
    total_cost: Range
    cost_share: dict[str, Decimal]
    matrix: dict[str, dict[str, Range]]
    share_elsewhere: dict[str, Decimal | None]
    roi: dict[str, Range | None]
    public_sector_roi: Range | None
    undefined: dict[str, str]


@in_valuation_context
def fiscal_by_agency(lines: Iterable[FiscalLine], costs: Mapping[str, Range]) -> FiscalResult:
    """Lens C from savings `lines` and `costs` (funder agency -> PV of what it spent)."""
    savings = list(lines)
    for line in savings:
        assert isinstance(line, FiscalLine), f"a FiscalLine, not {type(line).__name__}"
    for funder, cost in costs.items():
        assert isinstance(cost, Range) and cost.low >= 0, f"cost of {funder!r} must be >= 0"
    undefined: dict[str, str] = {}

    by_agency: dict[str, AgencySavings] = {}
    for agency in sorted({line.agency for line in savings}):
        mine = [line for line in savings if line.agency == agency]
        cashable = sum_ranges(line.pv for line in mine if line.cashable is True)
        non_cashable = sum_ranges(line.pv for line in mine if line.cashable is False)
        unknown = sum_ranges(line.pv for line in mine if line.cashable is None)
        by_agency[agency] = AgencySavings(
            agency, cashable, non_cashable, unknown, cashable + non_cashable + unknown
        )
    total_savings = sum_ranges(s.total for s in by_agency.values())
    total_cost = sum_ranges(costs.values())

    cost_share: dict[str, Decimal] = {}
    matrix: dict[str, dict[str, Range]] = {}
    share_elsewhere: dict[str, Decimal | None] = {}
    if total_cost.central <= 0:
        undefined["matrix"] = "total cost is zero: savings cannot be allocated to funders"
    for funder in sorted(costs):
        if total_cost.central > 0:
            share = costs[funder].central / total_cost.central
            cost_share[funder] = share
            matrix[funder] = {a: s.total.scale(share) for a, s in by_agency.items()}
        own = by_agency[funder].total.central if funder in by_agency else ZERO
        if funder not in cost_share or cost_share[funder] == 0:
            share_elsewhere[funder] = None
            undefined[f"share_elsewhere:{funder}"] = f"{funder} funded nothing"
        elif total_savings.central == 0:
            share_elsewhere[funder] = None
            undefined[f"share_elsewhere:{funder}"] = "there are no savings to share"
        else:
            # Row f is the savings scaled by f's cost share, so its share elsewhere is the part
            # of all savings that goes to agencies other than f.
            share_elsewhere[funder] = (total_savings.central - own) / total_savings.central

    roi: dict[str, Range | None] = {}
    for agency in sorted(set(by_agency) | set(costs)):
        saved = by_agency[agency].total if agency in by_agency else ZERO_RANGE
        spent = costs.get(agency)
        if spent is None or spent.high == 0:
            roi[agency] = None
            undefined[f"roi:{agency}"] = f"{agency} funded nothing"
            continue
        roi[agency] = divide(saved, spent)
        if roi[agency] is None:
            undefined[f"roi:{agency}"] = f"the cost range of {agency} reaches zero"
    public_sector_roi = divide(total_savings, total_cost)
    if public_sector_roi is None:
        undefined["public_sector_roi"] = "total cost is zero or its range reaches zero"

    return FiscalResult(
        by_agency=by_agency,
        total_savings=total_savings,
        costs=dict(costs),
        total_cost=total_cost,
        cost_share=cost_share,
        matrix=matrix,
        share_elsewhere=share_elsewhere,
        roi=roi,
        public_sector_roi=public_sector_roi,
        undefined=undefined,
    )


@in_valuation_context
def lines_from_social(result: SocialResult) -> list[FiscalLine]:
    """One FiscalLine per Lens B outcome of a fiscal value type (FISCAL_CASHABLE: cashable,
    FISCAL_NONCASHABLE: not), its PV summed over its years; every such outcome must name the
    agency that receives the saving."""
    pv: dict[str, Range] = {}
    kind: dict[str, tuple[str, bool]] = {}
    for line in result.lines:
        if line.value_type not in (FISCAL_CASHABLE, FISCAL_NONCASHABLE):
            continue
        if line.agency is None:
            raise ValuationError(f"fiscal outcome {line.outcome_id!r} names no receiving agency")
        pv[line.outcome_id] = pv.get(line.outcome_id, ZERO_RANGE) + line.pv
        kind[line.outcome_id] = (line.agency, line.value_type == FISCAL_CASHABLE)
    return [FiscalLine(oid, kind[oid][0], kind[oid][1], pv[oid]) for oid in pv]


@in_valuation_context
def costs_by_funder(costs: Iterable[CostLine]) -> dict[str, Range]:
    """The present value of `costs` summed by funder."""
    totals: dict[str, Range] = {}
    for cost in costs:
        totals[cost.funder] = totals.get(cost.funder, ZERO_RANGE) + cost.pv
    return totals
