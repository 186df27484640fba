"""One report engine: facts + books + catalogue + parameters -> the report, as plain data. Pure.

The report is a JSON-ready dict in a fixed shape; every format (JSON, CSV, XLSX, HTML, PDF) is
rendered from it, and `timebank report verify` recomputes it and compares. Hours and credits
come first and unmonetised; each valuation lens comes after, with its method named, and the
lenses are never added together (VALUATION.md section 7.5).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from ledger import InvalidRequest
from timebank.books import Books

from .. import Adjustments, project_hours
from ..catalogue import Catalogue
from . import outputs
from .facts import Facts
from .lens_hours import sources_used, valued_hours
from .lens_social import social_lenses

FORMAT_VERSION = 1
HORIZONS = (1, 3, 5, 10, 15)
CAVEATS = (
    "Hours are outputs, not outcomes: they count what people gave, not what changed.",
    "A time credit has no cash value; money figures are a reporting overlay, never a balance.",
    "Replacement cost is what the hours would cost to buy, not cash saved.",
    "Outcomes are as recorded by the scheme, with the evidence it names; there is no "
    "counterfactual beyond the deadweight and attribution stated.",
    "Fiscal savings may be non-cashable: they free capacity rather than budget.",
)


@dataclass(frozen=True, slots=True)
class Parameters:
    """The choices a report is run with; every one is stated in the report."""

    k: int = 10  # equality cells with fewer members are suppressed
    price_base: str | None = None  # e.g. "2024/25"; None: each value in its own price year
    currency: str = "GBP"
    discount_schedule: str = "GB_STPR"
    discount_start: int = 1  # 1: year 1 discounted (SROI Guide); 0: year 0 not (Green Book)
    horizon_years: int = 1
    geography: str = "UK"
    productivity: Decimal = Decimal(1)
    oncost: Decimal = Decimal(0)
    allow_unverified: bool = False  # use catalogue values marked "R" (flagged UNVERIFIED)
    # the run's counterfactual adjustments, used only where an outcome's entry has none (and
    # then flagged ASSUMED_<X>); None: not set, so such an outcome is left out, said why
    deadweight: Decimal | None = None
    displacement: Decimal | None = None
    attribution: Decimal | None = None
    drop_off: Decimal | None = None
    # the what-if projection (DOMAIN.md R-C17): population x hours per person per week x weeks
    what_if_population: int = 0
    what_if_hours_per_week: Decimal = Decimal(0)
    what_if_weeks: int = 0

    def __post_init__(self) -> None:
        """Choices a person typed are checked here (the API's models check them first)."""
        if self.k < 1:
            raise InvalidRequest("k is at least 1", field="k")
        if self.horizon_years not in HORIZONS:
            raise InvalidRequest(f"the horizon is one of {HORIZONS} years", field="horizon")
        if self.discount_start not in (0, 1):
            raise InvalidRequest("discounting starts in year 0 or 1", field="discount_start")
        for name in ("deadweight", "displacement", "attribution", "drop_off"):
            value = getattr(self, name)
            if value is not None and not Decimal(0) <= value <= Decimal(1):
                raise InvalidRequest(f"{name} is a fraction from 0 to 1", field=name)
        if not Decimal(0) < self.productivity <= Decimal(1) or self.oncost < 0:
            raise InvalidRequest("productivity in (0, 1], on-cost 0 or more", field="productivity")

    def as_json(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, Decimal) else v for k, v in asdict(self).items()}

    @property
    def assumed(self) -> Adjustments:
        return Adjustments(self.deadweight, self.displacement, self.attribution, self.drop_off)


def co_assessment(facts: Facts, k: int) -> list[dict[str, Any]]:
    """Members' ratings (1-5) of each service and partner, in aggregate; a subject rated by
    fewer than `k` is shown without its scores (DOMAIN.md R-C13, and small-number suppression)."""
    by_subject: dict[tuple[str, str], dict[int, int]] = {}
    for subject, subject_id, score, count in facts.ratings:
        by_subject.setdefault((subject, subject_id), {})[score] = count
    rows: list[dict[str, Any]] = []
    for (subject, subject_id), scores in sorted(by_subject.items()):
        n = sum(scores.values())
        if n < k:
            rows.append(
                {
                    "subject": subject,
                    "id": subject_id,
                    "ratings": None,
                    "suppressed": True,
                    "mean": None,
                    "scores": None,
                }
            )
            continue
        mean = Decimal(sum(s * c for s, c in scores.items())) / n
        rows.append(
            {
                "subject": subject,
                "id": subject_id,
                "ratings": n,
                "suppressed": False,
                "mean": str(mean.quantize(Decimal("0.01"))),
                "scores": {str(s): scores.get(s, 0) for s in range(1, 6)},
            }
        )
    return rows


def what_if(params: Parameters, lens_a: dict[str, Any]) -> dict[str, Any] | None:
    """Population x hours per person per week x weeks: hours, valued at Lens A's average rate."""
    if not (params.what_if_population and params.what_if_weeks):
        return None
    projected = project_hours(
        params.what_if_population, params.what_if_hours_per_week, params.what_if_weeks
    )
    hours = Decimal(lens_a["hours"])
    rate = Decimal(lens_a["total"]["central"]) / hours if hours else None
    value = None if rate is None else str((projected.hours * rate).quantize(Decimal("0.01")))
    return {
        "population": params.what_if_population,
        "hours_per_week": str(params.what_if_hours_per_week),
        "weeks": params.what_if_weeks,
        "hours": str(projected.hours),
        "value_at_average_rate": value,
        "currency": params.currency,
    }


def credits_view(books: Books) -> dict[str, Any]:
    """Credits issued, redeemed, expired, reversed and outstanding (ledger time, in minutes)."""
    return {
        "opening_outstanding": books.opening_outstanding,
        "issued": books.issued,
        "redeemed": books.redeemed,
        "expired": books.expired,
        "reversed": books.reversed,
        "retired": books.retired,
        "closing_outstanding": books.closing_outstanding,
        "balanced": books.balanced,
        "redeemed_by_partner": [
            {"partner": p, "minutes": m, "hours": outputs.hours(m)}
            for p, m in books.redeemed_by_partner.items()
        ],
    }


def build(facts: Facts, books: Books, params: Parameters, catalogue: Catalogue) -> dict[str, Any]:
    """The report for `facts` (and `books`, at the same checkpoint) under `params`, valued with
    `catalogue`."""
    cp = facts.checkpoint
    participation = outputs.participation(facts)
    lens_a = valued_hours(
        facts,
        catalogue,
        currency=params.currency,
        geography=params.geography,
        productivity=params.productivity,
        oncost=params.oncost,
        allow_unverified=params.allow_unverified,
        price_base=params.price_base,
    )

    def lenses_b_c(horizon: int) -> tuple[dict[str, Any], dict[str, Any], set[str]]:
        return social_lenses(
            list(facts.outcomes),
            list(facts.costs),
            catalogue,
            currency=params.currency,
            schedule=params.discount_schedule,
            discount_start=params.discount_start,
            horizon=horizon,
            assumed=params.assumed,
            allow_unverified=params.allow_unverified,
        )

    lens_b, lens_c, social_sources = lenses_b_c(params.horizon_years)
    horizons = [
        {
            "horizon": years,
            "pv": b["totals"]["pv"],
            "npsv": b["totals"]["npsv"],
            "sroi": b["totals"]["sroi"],
        }
        for years, (b, _, _) in ((y, lenses_b_c(y)) for y in HORIZONS)
    ]
    return {
        "report": "valued-contribution",
        "format_version": FORMAT_VERSION,
        "scheme": {"id": facts.scheme, "name": facts.scheme_name, "model": facts.model},
        "period": {"from": facts.start.isoformat(), "to": facts.end.isoformat()},
        "checkpoint": {
            "size": cp.size,
            "root": cp.root,
            "time": cp.time,
            "key_id": cp.key_id,
            "signature": cp.signature,
        },
        "as_of": facts.as_of,
        "catalogue": {"version": catalogue.version, "hash": catalogue.content_hash},
        "parameters": params.as_json(),
        "headline": {
            "hours": participation["hours"],
            "minutes": participation["minutes"],
            "unique_members": participation["unique_members"],
            "participations": participation["participations"],
            "credits_issued": books.issued,
            "credits_redeemed": books.redeemed,
            # copies, not shared objects: each figure has one place in the report's tree
            "lens_a_value_of_hours": None  # no hour had a wage to price it: not computed
            if lens_a["total"] is None
            else dict(lens_a["total"]),
            "lens_b_social_value_pv": dict(lens_b["totals"]["pv"]),
            "lens_b_sroi": None
            if lens_b["totals"]["sroi"] is None
            else dict(lens_b["totals"]["sroi"]),
            "lens_c_fiscal_savings_pv": dict(lens_c["total_savings"]),
        },
        "outputs": {
            "participation": participation,
            "by_activity": outputs.by_activity(facts),
            "by_month": outputs.by_month(facts),
            "by_activity_month": outputs.by_activity_month(facts),
            "by_form": outputs.by_form(facts),
            "by_area": outputs.by_field(facts, "area"),
            "by_contribution": outputs.by_field(facts, "contribution"),
            "by_mode": outputs.by_field(facts, "mode"),
            "by_voluntariness": outputs.by_field(facts, "voluntariness"),
            "by_relation": outputs.by_field(facts, "relation"),
            "shares": outputs.shares(facts),
            "reciprocity": outputs.reciprocity(facts),
            "credits": credits_view(books),
        },
        "lenses": {"A": lens_a, "B": lens_b, "C": lens_c},
        "horizons": horizons,
        "what_if": what_if(params, lens_a),
        "outcomes_recorded": [
            {
                "id": o.id,
                "outcome": o.outcome,
                "from": o.start.isoformat(),
                "to": o.end.isoformat(),
                "people": o.people,
                "evidence": o.evidence.value,
                "evidence_note": o.evidence_note,
            }
            for o in facts.outcomes
        ],
        "co_assessment": co_assessment(facts, params.k),
        "equality": {"k": params.k, "by_question": outputs.equality(facts, params.k)},
        "inventory": {  # map it (DOMAIN.md R-C9): what co-production the scheme runs
            "activities": outputs.inventory(facts),
            "partners": [
                {
                    "partner": p,
                    "holds_minutes": m,
                    "redeemed_minutes_in_period": books.redeemed_by_partner.get(p, 0),
                }
                for p, m in books.by_partner.items()
            ],
        },
        "activities": [asdict(a) for a in facts.activities],
        "sources": sources_used(catalogue, set(lens_a["sources"]) | social_sources),
        "caveats": list(CAVEATS),
    }
