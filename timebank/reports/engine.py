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

from ..books import Books
from ..catalogue import Catalogue
from . import outputs
from .facts import Facts
from .lens_hours import sources_used, valued_hours

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

    def __post_init__(self) -> None:
        assert self.k >= 1 and self.discount_start in (0, 1)
        assert self.horizon_years in HORIZONS, f"horizon is one of {HORIZONS}"

    def as_json(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, Decimal) else v for k, v in asdict(self).items()}


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
        facts, catalogue, currency=params.currency, geography=params.geography,
        productivity=params.productivity, oncost=params.oncost,
        allow_unverified=params.allow_unverified,
    )  # fmt: skip
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
        "catalogue": {"version": catalogue.version, "hash": catalogue.content_hash},
        "parameters": params.as_json(),
        "headline": {
            "hours": participation["hours"],
            "minutes": participation["minutes"],
            "unique_members": participation["unique_members"],
            "participations": participation["participations"],
            "credits_issued": books.issued,
            "credits_redeemed": books.redeemed,
            "lens_a_value_of_hours": lens_a["total"],
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
        "lenses": {"A": lens_a},
        "equality": {"k": params.k, "by_question": outputs.equality(facts, params.k)},
        "inventory": outputs.inventory(facts),
        "activities": [asdict(a) for a in facts.activities],
        "sources": sources_used(catalogue, lens_a["sources"]),
        "caveats": list(CAVEATS),
    }
