"""Lens B: social value by SROI / cost-benefit analysis (VALUATION §2.3, §7.3 steps 3-9 and 12).

For each outcome o (one stakeholder group), quantity Q (people meeting the outcome, never hours)
and financial proxy P (value per unit, in base prices):

    G      = Q * P
    I_1    = G * (1 - DW) * (1 - DS) * (1 - AT) * (1 - OB)      successive deductions, never added
    I_t    = I_1 * (1 - DO)^(t - 1)                              t = 1 .. min(T, horizon)
    PV     = Σ_o Σ_t I_t * DF_t                                  DF from `discount.py`

and for the programme, with C the present value of its costs:

    SROI = PV / C     NPSV = PV - C     net SROI = NPSV / C     payback months = C / (Σ_o I_1 / 12)

Every step is kept per outcome and year (`SocialLine`) so a report can show its working. Values
are Ranges: the proxy's low/high carry through; adjustments are point fractions. Ratios of ranges
take the extreme corners (SROI low = PV.low / C.high), and are None, with the reason in
`undefined`, when the cost range reaches zero. Net SROI is computed as SROI - 1, which equals
NPSV / C exactly and does not count the cost's uncertainty twice.

Deadweight (DW), displacement (DS), attribution (AT) and drop-off (DO) have no silent default: an
outcome either carries a value (from evidence) or takes the run's value, and then it is flagged
ASSUMED_DW / ASSUMED_DS / ASSUMED_AT / ASSUMED_DO; with neither the run is refused
(`MissingAdjustment`). Optimism bias (OB) is 0 unless given (see `optimism_bias_for_grade`).

A cost at `year_index` 0 is paid up front and never discounted; a cost at year y >= 1 is
discounted like an outcome's year y.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Literal

from .discount import DiscountBand, check_bands, discount_factors, flat_rate
from .money import (
    ONE,
    ZERO,
    Range,
    ValuationError,
    check_decimal,
    check_fraction,
    divide,
    in_valuation_context,
    sum_ranges,
)

HORIZONS = (1, 3, 5, 10, 15)
"""The usual horizons (years) a run truncates outcomes at; any whole number >= 1 is accepted."""

ADJUSTMENT_CODES = {
    "deadweight": "DW",
    "displacement": "DS",
    "attribution": "AT",
    "drop_off": "DO",
}
TRUNCATED_AT_HORIZON = "TRUNCATED_AT_HORIZON"

OPTIMISM_BIAS_BY_GRADE: dict[int, Decimal] = {
    1: Decimal("0"),
    2: Decimal("0.05"),
    3: Decimal("0.10"),
    4: Decimal("0.15"),
    5: Decimal("0.25"),
    6: Decimal("0.40"),
}
"""HMT/New Economy CBA optimism-bias correction by data-confidence grade (VALUATION §4.2).
Marked [R] there: verify against the guidance tables before relying on it."""

CostKind = Literal["cash", "in-kind", "volunteer-time"]
COST_KINDS: tuple[CostKind, ...] = ("cash", "in-kind", "volunteer-time")

LOW_RATE = Decimal("0.015")
CENTRAL_RATE = Decimal("0.035")


class MissingAdjustment(ValuationError):
    """An outcome has no value for an adjustment and the run supplies none."""

    def __init__(self, adjustment: str, outcome_id: str | None = None) -> None:
        self.adjustment = adjustment
        self.outcome_id = outcome_id
        where = f" for outcome {outcome_id!r}" if outcome_id is not None else ""
        super().__init__(
            f"no {adjustment}{where}: give an evidenced value or a run value (flagged assumed)"
        )


def optimism_bias_for_grade(grade: int) -> Decimal:
    """The optimism-bias reduction to benefits for a confidence grade 1-6 (§4.2, unverified)."""
    assert grade in OPTIMISM_BIAS_BY_GRADE, f"a confidence grade is 1-6, not {grade}"
    return OPTIMISM_BIAS_BY_GRADE[grade]


@dataclass(frozen=True, slots=True)
class Adjustments:
    """Deadweight, displacement, attribution and drop-off as fractions in [0, 1]; None: not
    known here."""

    deadweight: Decimal | None = None
    displacement: Decimal | None = None
    attribution: Decimal | None = None
    drop_off: Decimal | None = None

    def __post_init__(self) -> None:
        for name in ADJUSTMENT_CODES:
            value = getattr(self, name)
            if value is not None:
                check_fraction(name, value)


@dataclass(frozen=True, slots=True)
class ResolvedAdjustments:
    """Every adjustment known, and the ASSUMED_<X> flags of those the run supplied."""

    deadweight: Decimal
    displacement: Decimal
    attribution: Decimal
    drop_off: Decimal
    flags: frozenset[str]


def resolve_adjustments(
    entry_defaults: Adjustments, run_overrides: Adjustments, outcome_id: str | None = None
) -> ResolvedAdjustments:
    """Each adjustment from `run_overrides` when it gives one (flagged ASSUMED_<X>: the run's
    value is user-set, not the entry's evidence), else from `entry_defaults` (unflagged);
    `MissingAdjustment` when neither gives it."""
    values: dict[str, Decimal] = {}
    flags: set[str] = set()
    for name, code in ADJUSTMENT_CODES.items():
        override = getattr(run_overrides, name)
        default = getattr(entry_defaults, name)
        if override is not None:
            values[name] = override
            flags.add(f"ASSUMED_{code}")
        elif default is not None:
            values[name] = default
        else:
            raise MissingAdjustment(name, outcome_id)
    return ResolvedAdjustments(
        deadweight=values["deadweight"],
        displacement=values["displacement"],
        attribution=values["attribution"],
        drop_off=values["drop_off"],
        flags=frozenset(flags),
    )


@dataclass(frozen=True, slots=True)
class OutcomeInput:
    """One outcome for one stakeholder: `quantity` people meeting it (never hours), `proxy` the
    value per person in base prices, the adjustments (None: take the run's, flagged), duration,
    optimism bias, flags; `value_type` and `agency` (who receives a fiscal saving) for Lens C."""

    outcome_id: str
    stakeholder: str
    quantity: Decimal
    proxy: Range
    deadweight: Decimal | None
    displacement: Decimal | None
    attribution: Decimal | None
    drop_off: Decimal | None
    duration_years: int
    optimism_bias: Decimal = ZERO
    flags: frozenset[str] = field(default_factory=frozenset)
    value_type: str | None = None
    agency: str | None = None

    def __post_init__(self) -> None:
        assert isinstance(self.outcome_id, str) and self.outcome_id, "outcome_id must be named"
        assert check_decimal("quantity", self.quantity) >= 0, "quantity must be >= 0"
        assert isinstance(self.proxy, Range), f"proxy must be a Range, not {self.proxy!r}"
        Adjustments(self.deadweight, self.displacement, self.attribution, self.drop_off)
        assert type(self.duration_years) is int and self.duration_years >= 1, (
            f"duration_years must be an int >= 1, not {self.duration_years!r}"
        )
        check_fraction("optimism_bias", self.optimism_bias)
        assert isinstance(self.flags, frozenset), "flags must be a frozenset"

    @property
    def adjustments(self) -> Adjustments:
        """The outcome's own adjustments (None where it has none)."""
        return Adjustments(self.deadweight, self.displacement, self.attribution, self.drop_off)


@dataclass(frozen=True, slots=True)
class Cost:
    """An input to the programme: who paid, what kind, in which year (0: up front,
    undiscounted), and how much in base prices."""

    funder: str
    kind: CostKind
    year_index: int
    amount: Range

    def __post_init__(self) -> None:
        assert isinstance(self.funder, str) and self.funder, "funder must be named"
        assert self.kind in COST_KINDS, f"kind must be one of {COST_KINDS}, not {self.kind!r}"
        assert type(self.year_index) is int and self.year_index >= 0, "year_index must be >= 0"
        assert isinstance(self.amount, Range) and self.amount.low >= 0, "a cost is never negative"


@dataclass(frozen=True, slots=True)
class SocialParameters:
    """The run's choices for Lens B: discount schedule and timing (`discount_start` 1: SROI
    Guide, year 1 discounted; 0: Green Book), the horizon in years, and the run's adjustments,
    used (and flagged ASSUMED_<X>) only where an outcome has none."""

    discount_bands: tuple[DiscountBand, ...]
    discount_start: int
    horizon_years: int
    assumed: Adjustments = field(default_factory=Adjustments)

    def __post_init__(self) -> None:
        check_bands(self.discount_bands)
        assert self.discount_start in (0, 1), "discount_start must be 0 or 1"
        assert type(self.horizon_years) is int and self.horizon_years >= 1, "horizon must be >= 1"


@dataclass(frozen=True, slots=True)
class SocialLine:
    """One outcome in one year (`year` 1 = its first), with every step of the chain."""

    outcome_id: str
    stakeholder: str
    value_type: str | None
    agency: str | None
    year: int
    quantity: Decimal
    proxy: Range
    deadweight: Decimal
    displacement: Decimal
    attribution: Decimal
    optimism_bias: Decimal
    drop_off: Decimal
    gross: Range
    after_deadweight: Range
    after_displacement: Range
    after_attribution: Range
    after_optimism_bias: Range
    after_drop_off: Range
    discount_factor: Decimal
    pv: Range
    flags: frozenset[str]


@dataclass(frozen=True, slots=True)
class CostLine:
    """One cost with its discount factor and present value."""

    funder: str
    kind: CostKind
    year_index: int
    amount: Range
    discount_factor: Decimal
    pv: Range


@dataclass(frozen=True, slots=True)
class SocialResult:
    """Lens B for a programme: the lines, the costs, and the totals; `undefined` names each
    total that is None and why."""

    lines: tuple[SocialLine, ...]
    costs: tuple[CostLine, ...]
    pv_by_outcome: dict[str, Range]
    total_pv: Range
    total_cost: Range
    first_year_impact: Range
    npsv: Range
    sroi: Range | None
    net_sroi: Range | None
    payback_months: Range | None
    undefined: dict[str, str]
    flags: frozenset[str]
    parameters: SocialParameters


@dataclass(frozen=True, slots=True)
class SwitchingValue:
    """The value of one outcome's `parameter` at which NPSV = 0 (SROI 1:1), others held at
    their central values; None, with the reason, when no value in the parameter's range does it
    (a fraction in [0, 1]; a proxy of the current proxy's sign)."""

    outcome_id: str
    parameter: Literal["proxy", "deadweight", "attribution"]
    current: Decimal
    switching: Decimal | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class SensitivityCase:
    """The programme's totals with one assumption changed (`name` says which)."""

    name: str
    total_pv: Range
    total_cost: Range
    npsv: Range
    sroi: Range | None


@in_valuation_context
def wellby_value(delta_ls: Decimal, people: Decimal, wellby: Range) -> Range:
    """The value of a `delta_ls`-point change in life satisfaction for `people` people for one
    year, at `wellby` per WELLBY (HMT: £13,000 in 2019 prices, range £10,000-£16,000)."""
    check_decimal("delta_ls", delta_ls)
    assert check_decimal("people", people) >= 0, "people must be >= 0"
    return wellby.scale(delta_ls * people)


def resolve_outcome(outcome: OutcomeInput, params: SocialParameters) -> OutcomeInput:
    """`outcome` with each missing adjustment taken from the run (flagged ASSUMED_<X>);
    `MissingAdjustment` when the run has none either."""
    own = outcome.adjustments
    fill = Adjustments(
        *(
            getattr(params.assumed, name) if getattr(own, name) is None else None
            for name in ADJUSTMENT_CODES
        )
    )
    resolved = resolve_adjustments(own, fill, outcome.outcome_id)
    return replace(
        outcome,
        deadweight=resolved.deadweight,
        displacement=resolved.displacement,
        attribution=resolved.attribution,
        drop_off=resolved.drop_off,
        flags=outcome.flags | resolved.flags,
    )


@in_valuation_context
def value_outcomes(
    outcomes: Sequence[OutcomeInput], costs: Sequence[Cost], params: SocialParameters
) -> SocialResult:
    """Lens B: every outcome's chain year by year, the costs' present value, and the totals."""
    ids = [o.outcome_id for o in outcomes]
    if len(set(ids)) != len(ids):
        raise ValuationError(f"outcome ids must be unique: {sorted(ids)}")
    for cost in costs:
        assert isinstance(cost, Cost), f"a Cost, not {type(cost).__name__}"
    longest = max([params.horizon_years, *(c.year_index for c in costs)])
    factors = discount_factors(longest, params.discount_bands, params.discount_start)

    lines: list[SocialLine] = []
    pv_by_outcome: dict[str, Range] = {}
    first_year: list[Range] = []
    for outcome in outcomes:
        outcome_lines = _outcome_lines(resolve_outcome(outcome, params), params, factors)
        lines.extend(outcome_lines)
        pv_by_outcome[outcome.outcome_id] = sum_ranges(line.pv for line in outcome_lines)
        first_year.append(outcome_lines[0].after_drop_off)

    cost_lines = [
        CostLine(
            funder=c.funder,
            kind=c.kind,
            year_index=c.year_index,
            amount=c.amount,
            discount_factor=ONE if c.year_index == 0 else factors[c.year_index - 1],
            pv=c.amount if c.year_index == 0 else c.amount.scale(factors[c.year_index - 1]),
        )
        for c in costs
    ]
    total_pv = sum_ranges(pv_by_outcome.values())
    total_cost = sum_ranges(c.pv for c in cost_lines)
    first_year_impact = sum_ranges(first_year)
    undefined: dict[str, str] = {}
    sroi = divide(total_pv, total_cost)
    if sroi is None:
        why = "total cost is zero" if total_cost.high == 0 else "the cost range reaches zero"
        undefined["sroi"] = undefined["net_sroi"] = f"{why}: a ratio to it is unbounded"
    payback: Range | None = None
    if first_year_impact.low <= 0:
        undefined["payback_months"] = (
            "first-year impact is zero or below (at its low end): the cost is never paid back"
        )
    else:
        payback = divide(total_cost.scale(Decimal(12)), first_year_impact)
    return SocialResult(
        lines=tuple(lines),
        costs=tuple(cost_lines),
        pv_by_outcome=pv_by_outcome,
        total_pv=total_pv,
        total_cost=total_cost,
        first_year_impact=first_year_impact,
        npsv=total_pv - total_cost,
        sroi=sroi,
        net_sroi=None if sroi is None else sroi - Range.point(ONE),
        payback_months=payback,
        undefined=undefined,
        flags=frozenset[str]().union(*(line.flags for line in lines)),
        parameters=params,
    )


def _outcome_lines(
    outcome: OutcomeInput, params: SocialParameters, factors: Sequence[Decimal]
) -> list[SocialLine]:
    assert outcome.deadweight is not None and outcome.displacement is not None
    assert outcome.attribution is not None and outcome.drop_off is not None
    years = min(outcome.duration_years, params.horizon_years)
    flags = set(outcome.flags)
    if outcome.duration_years > params.horizon_years:
        flags.add(TRUNCATED_AT_HORIZON)
    gross = outcome.proxy.scale(outcome.quantity)
    after_dw = gross.scale(ONE - outcome.deadweight)
    after_ds = after_dw.scale(ONE - outcome.displacement)
    after_at = after_ds.scale(ONE - outcome.attribution)
    after_ob = after_at.scale(ONE - outcome.optimism_bias)
    retained = ONE - outcome.drop_off
    lines: list[SocialLine] = []
    for year in range(1, years + 1):
        after_do = after_ob if year == 1 else after_ob.scale(retained ** (year - 1))
        factor = factors[year - 1]
        lines.append(
            SocialLine(
                outcome_id=outcome.outcome_id,
                stakeholder=outcome.stakeholder,
                value_type=outcome.value_type,
                agency=outcome.agency,
                year=year,
                quantity=outcome.quantity,
                proxy=outcome.proxy,
                deadweight=outcome.deadweight,
                displacement=outcome.displacement,
                attribution=outcome.attribution,
                optimism_bias=outcome.optimism_bias,
                drop_off=outcome.drop_off,
                gross=gross,
                after_deadweight=after_dw,
                after_displacement=after_ds,
                after_attribution=after_at,
                after_optimism_bias=after_ob,
                after_drop_off=after_do,
                discount_factor=factor,
                pv=after_do.scale(factor),
                flags=frozenset(flags),
            )
        )
    return lines


@in_valuation_context
def switching_values(
    outcomes: Sequence[OutcomeInput], costs: Sequence[Cost], params: SocialParameters
) -> list[SwitchingValue]:
    """For each outcome's proxy, deadweight and attribution: the value at which the programme's
    central NPSV is 0, everything else as given. PV is linear in each of them, so it is solved
    directly: PV_others + k * x = C."""
    resolved = [resolve_outcome(o, params) for o in outcomes]
    base = value_outcomes(resolved, costs, params)
    result: list[SwitchingValue] = []
    for outcome in resolved:
        assert outcome.deadweight is not None and outcome.attribution is not None
        others = base.total_pv.central - base.pv_by_outcome[outcome.outcome_id].central
        needed = base.total_cost.central - others  # this outcome's PV when NPSV = 0
        oid = outcome.outcome_id
        per_unit = _pv_of(replace(outcome, proxy=Range.point(ONE)), params)  # PV = per_unit * p
        result.append(_solve_proxy(oid, outcome.proxy.central, needed, per_unit))
        without_dw = _pv_of(replace(outcome, deadweight=ZERO), params)  # PV = without * (1 - f)
        result.append(_solve_fraction(oid, "deadweight", outcome.deadweight, needed, without_dw))
        without_at = _pv_of(replace(outcome, attribution=ZERO), params)
        result.append(_solve_fraction(oid, "attribution", outcome.attribution, needed, without_at))
    return result


def _pv_of(outcome: OutcomeInput, params: SocialParameters) -> Decimal:
    return value_outcomes([outcome], [], params).total_pv.central


def _solve_proxy(
    outcome_id: str, current: Decimal, needed: Decimal, per_unit: Decimal
) -> SwitchingValue:
    """p with per_unit * p = needed, of the same sign as the current proxy (a benefit does not
    become a disbenefit)."""
    if per_unit == 0:
        return SwitchingValue(
            outcome_id, "proxy", current, None, "this outcome's PV is 0 whatever its proxy"
        )
    proxy = needed / per_unit
    if (proxy < 0 <= current) or (current < 0 < proxy):
        return SwitchingValue(
            outcome_id, "proxy", current, None, f"NPSV = 0 would need a proxy of {proxy}"
        )
    return SwitchingValue(outcome_id, "proxy", current, proxy, None)


def _solve_fraction(
    outcome_id: str,
    parameter: Literal["deadweight", "attribution"],
    current: Decimal,
    needed: Decimal,
    without: Decimal,
) -> SwitchingValue:
    """f in [0, 1] with without * (1 - f) = needed."""
    if without == 0:
        return SwitchingValue(
            outcome_id, parameter, current, None, f"this outcome's PV is 0 whatever its {parameter}"
        )
    fraction = ONE - needed / without
    if not 0 <= fraction <= 1:
        return SwitchingValue(
            outcome_id, parameter, current, None, f"NPSV = 0 would need {parameter} = {fraction}"
        )
    return SwitchingValue(outcome_id, parameter, current, fraction, None)


@in_valuation_context
def one_way_sensitivity(
    outcomes: Sequence[OutcomeInput],
    costs: Sequence[Cost],
    params: SocialParameters,
    *,
    delta: Decimal = Decimal("0.1"),
) -> list[SensitivityCase]:
    """The totals with one assumption changed at a time, for every outcome together: deadweight,
    attribution and drop-off ± `delta` (kept in [0, 1]); duration ± 1 year (at least 1); every
    proxy at its low and at its high; a flat discount rate of 1.5% and of 3.5% (same timing).
    The first case is "central", as given."""
    check_fraction("delta", delta)
    resolved = [resolve_outcome(o, params) for o in outcomes]

    def case(name: str, changed: Sequence[OutcomeInput], run: SocialParameters) -> SensitivityCase:
        totals = value_outcomes(changed, costs, run)
        return SensitivityCase(name, totals.total_pv, totals.total_cost, totals.npsv, totals.sroi)

    def shifted(name: str, by: Decimal) -> list[OutcomeInput]:
        out = []
        for o in resolved:
            value = getattr(o, name)
            assert value is not None
            out.append(replace(o, **{name: min(ONE, max(ZERO, value + by))}))
        return out

    cases = [case("central", resolved, params)]
    for name in ("deadweight", "attribution", "drop_off"):
        cases.append(case(f"{name} -{delta}", shifted(name, -delta), params))
        cases.append(case(f"{name} +{delta}", shifted(name, delta), params))
    cases.append(
        case(
            "duration -1",
            [replace(o, duration_years=max(1, o.duration_years - 1)) for o in resolved],
            params,
        )
    )
    cases.append(
        case(
            "duration +1",
            [replace(o, duration_years=o.duration_years + 1) for o in resolved],
            params,
        )
    )
    cases.append(
        case("proxy low", [replace(o, proxy=Range.point(o.proxy.low)) for o in resolved], params)
    )
    cases.append(
        case("proxy high", [replace(o, proxy=Range.point(o.proxy.high)) for o in resolved], params)
    )
    for label, rate in (("1.5%", LOW_RATE), ("3.5%", CENTRAL_RATE)):
        cases.append(
            case(f"discount {label}", resolved, replace(params, discount_bands=flat_rate(rate)))
        )
    return cases
