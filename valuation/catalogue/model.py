"""The valuation catalogue's records: sourced money values with their provenance. Pure, no I/O.

A catalogue is one immutable, versioned set of sources, price points, discount bands, wage rates,
occupation proxies, outcomes and valuation entries (../shared/VALUATION.md section 7.2). Every
number names its source, price year and verification tag: "V" seen in the source, "S" second-
hand, "R" recalled and unverified (a calculation refuses "R" unless a run allows it). A `None`
adjustment (deadweight, attribution, displacement, drop-off, duration) means "not evidenced": the
run must supply it and flag it ASSUMED. Money is `Decimal`, never float.

`content_hash` is "sha256:" and the hex SHA-256 of `canonical_json`: sorted keys, no whitespace,
decimals as strings. A report names that hash, so anyone can recompute it from the same catalogue.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, fields, is_dataclass
from decimal import Decimal
from typing import Literal, TypeVar

Verification = Literal["V", "S", "R"]
Licence = Literal["OGL-2.0", "OGL-3.0", "CC-BY-4.0", "CC-BY-NC-ND-4.0", "proprietary", "quotation"]
EvidenceTier = Literal[
    "official-statistic", "peer-reviewed", "grey-literature", "practitioner", "case-study"
]
PeriodType = Literal["FY", "CY"]
PriceSeries = Literal["HMT_GDP_DEFLATOR", "NHSCII", "CPIH"]
DiscountScheduleName = Literal["GB_STPR", "GB_HEALTH"]
WageSeries = Literal[
    "NLW", "RLW", "ASHE_HOURLY_EXCL_OT", "AWE_DIV35", "IS_VOLUNTEER_HOUR", "LOCAL_RATE"
]
WageStatistic = Literal["median", "mean", "set-rate", "derived"]
SocVersion = Literal["SOC2010", "SOC2020"]
Fallback = Literal["GENERALIST_MEDIAN", "NLW_FLOOR"]
StakeholderType = Literal["giver", "receiver", "carer", "community", "state", "organisation"]
Lens = Literal["A", "B", "C"]
ValueType = Literal[
    "ECON_REPLACEMENT",
    "WELLBEING",
    "FISCAL_CASHABLE",
    "FISCAL_NONCASHABLE",
    "ECONOMIC_OTHER",
    "PROGRAMME_COST",
]
Agency = Literal[
    "NHS_PRIMARY",
    "NHS_ACUTE",
    "NHS_MH",
    "NHS_OTHER",
    "LA_ASC",
    "LA_CHILDREN",
    "LA_HOUSING",
    "COUNCIL",
    "HOUSING_ASSOC",
    "DWP",
    "HMRC",
    "POLICE",
    "JUSTICE",
    "INSURER",
    "INDIVIDUAL",
    "SOCIETY",
    "PUBLIC_SECTOR_OTHER",
    "PROGRAMME_FUNDER",
]
Qualifier = Literal["exact", "about", "up-to", "more-than", "less-than", "between"]
EvidenceType = Literal[
    "evaluation", "estimate", "case-study", "scenario", "official-statistic", "simulation"
]

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Source:
    """Where figures come from, under what licence, and whether they may ship in the software."""

    id: str
    title: str
    publisher: str
    authors: str
    published: str  # "2010", "2010-12" or "2024-04-18"
    data_year: str | None  # the period the figures describe, when it differs from `published`
    url: str | None
    licence: Licence
    licence_constraints: str
    bundle_allowed: bool
    evidence_tier: EvidenceTier
    country: str
    notes: str


@dataclass(frozen=True, slots=True)
class PricePoint:
    """One value of a price index (e.g. the GDP deflator) for a period, from one vintage."""

    series: PriceSeries
    period: str
    period_type: PeriodType
    value: Decimal
    vintage: str
    source: str
    verification: Verification


@dataclass(frozen=True, slots=True)
class DiscountBand:
    """The discount rate for years `year_from` to `year_to` inclusive (`None`: every later year)."""

    schedule: DiscountScheduleName
    year_from: int
    year_to: int | None
    rate: Decimal
    source: str
    verification: Verification


@dataclass(frozen=True, slots=True)
class WageRate:
    """An hourly rate: a statutory floor, a survey statistic (for a SOC code, or all employees
    when `soc_code` is None), or a published flat rate, for one geography and period."""

    series: WageSeries
    soc_code: str | None
    soc_version: SocVersion | None
    geography: str
    year: str
    period_type: PeriodType
    statistic: WageStatistic
    basis: str
    currency: str
    value: Decimal
    source: str
    verification: Verification
    notes: str


@dataclass(frozen=True, slots=True)
class OccupationProxy:
    """The paid occupation whose wage prices hours of an activity's `proxy_code` (1 = primary)."""

    proxy_code: str
    label: str
    priority: int
    soc_code: str | None
    soc_version: SocVersion | None
    soc_title: str | None
    rationale: str
    fallback: Fallback
    judgement: bool  # the mapping is a judgement that reports must flag
    source: str
    verification: Verification


@dataclass(frozen=True, slots=True)
class Outcome:
    """A measurable change for one kind of stakeholder, which valuation entries price."""

    id: str
    label: str
    definition: str
    stakeholder_type: StakeholderType
    indicator: str
    instrument: str | None


@dataclass(frozen=True, slots=True)
class ValuationEntry:
    """One money value: what it prices, to whom it falls, how sure it is and where it is from."""

    id: str
    label: str
    outcome: str | None
    lens: Lens
    value_type: ValueType
    agency: Agency
    cashable: bool | None  # None: the source does not say
    amount: Decimal
    low: Decimal | None
    high: Decimal | None
    qualifier: Qualifier
    unit: str
    currency: str
    price_year: str
    price_year_type: PeriodType
    confidence_grade: int
    evidence_type: EvidenceType
    country: str
    default_duration_years: Decimal | None
    drop_off: Decimal | None
    deadweight: Decimal | None
    attribution: Decimal | None
    displacement: Decimal | None
    source: str
    seed_ref: str
    verification: Verification
    licensed_external: bool
    notes: str


@dataclass(frozen=True, slots=True)
class ExchangeRate:
    """One unit of `from_currency` is `rate` units of `to_currency` on `date` (ISO 8601)."""

    from_currency: str
    to_currency: str
    rate: Decimal
    date: str
    source: str


@dataclass(frozen=True, slots=True)
class OptimismBand:
    """The optimism-bias uplift for one data-confidence grade (costs up, benefits down)."""

    grade: int
    uplift: Decimal
    data_basis: str


@dataclass(frozen=True, slots=True)
class OptimismBias:
    """The optimism-bias table by confidence grade, with its source and verification tag."""

    bands: tuple[OptimismBand, ...]
    source: str
    verification: Verification


@dataclass(frozen=True, slots=True)
class Catalogue:
    """One immutable catalogue version. `scheme` None is the shipped catalogue; a scheme's own
    derivation names it, and `based_on` is the content hash of the version it extends."""

    version: str
    scheme: str | None
    based_on: str | None
    currency: str
    sources: tuple[Source, ...]
    price_points: tuple[PricePoint, ...]
    discount_bands: tuple[DiscountBand, ...]
    wage_rates: tuple[WageRate, ...]
    proxies: tuple[OccupationProxy, ...]
    outcomes: tuple[Outcome, ...]
    entries: tuple[ValuationEntry, ...]
    exchange_rates: tuple[ExchangeRate, ...]
    optimism_bias: OptimismBias

    @property
    def content_hash(self) -> str:
        """ "sha256:" + hex SHA-256 of the canonical JSON encoding of the whole catalogue."""
        digest = hashlib.sha256(canonical_json(self).encode("utf-8")).hexdigest()
        return f"sha256:{digest}"

    def source(self, source_id: str) -> Source:
        """The source with this id; KeyError if there is none."""
        return _the((s for s in self.sources if s.id == source_id), source_id)

    def entry(self, entry_id: str) -> ValuationEntry:
        """The valuation entry with this id; KeyError if there is none."""
        return _the((e for e in self.entries if e.id == entry_id), entry_id)

    def outcome(self, outcome_id: str) -> Outcome:
        """The outcome with this id; KeyError if there is none."""
        return _the((o for o in self.outcomes if o.id == outcome_id), outcome_id)

    def proxies_for(self, proxy_code: str) -> tuple[OccupationProxy, ...]:
        """The occupation proxies for an activity's `proxy_code`, primary first (may be empty)."""
        found = (p for p in self.proxies if p.proxy_code == proxy_code)
        return tuple(sorted(found, key=lambda p: p.priority))

    def wage(
        self,
        series: WageSeries,
        year: str,
        soc_code: str | None = None,
        geography: str = "UK",
        *,
        soc_version: SocVersion | None = None,
        statistic: WageStatistic | None = None,
    ) -> WageRate | None:
        """The rate of `series` for `year` (a period word) and `geography`; `soc_code` None asks
        for the all-employee or flat rate. None when absent; LookupError when several rows fit
        (name `soc_version` or `statistic`)."""
        found = [
            w
            for w in self.wage_rates
            if w.series == series
            and w.year == year
            and w.soc_code == soc_code
            and w.geography == geography
            and (soc_version is None or w.soc_version == soc_version)
            and (statistic is None or w.statistic == statistic)
        ]
        if len(found) > 1:
            raise LookupError(f"{len(found)} {series} rates fit {year} {soc_code} {geography}")
        return found[0] if found else None

    def deflator(
        self, series: PriceSeries, period: str, vintage: str | None = None
    ) -> PricePoint | None:
        """The price point of `series` for `period`; None when absent; LookupError when several
        vintages hold it and none is named."""
        found = [
            p
            for p in self.price_points
            if p.series == series
            and p.period == period
            and (vintage is None or p.vintage == vintage)
        ]
        if len(found) > 1:
            raise LookupError(f"{len(found)} vintages of {series} hold {period}: name one")
        return found[0] if found else None

    def discount_schedule(self, name: DiscountScheduleName) -> tuple[DiscountBand, ...]:
        """The bands of a discount schedule in year order; KeyError if the catalogue has none."""
        bands = sorted((b for b in self.discount_bands if b.schedule == name), key=_year_from)
        if not bands:
            raise KeyError(name)
        return tuple(bands)

    def optimism_uplift(self, grade: int) -> Decimal:
        """The optimism-bias uplift for a confidence grade (1-6); KeyError for another grade."""
        for band in self.optimism_bias.bands:
            if band.grade == grade:
                return band.uplift
        raise KeyError(grade)


def _year_from(band: DiscountBand) -> int:
    return band.year_from


def _the(items: Iterable[_T], key: str) -> _T:
    """The first (ids are unique, so the only) item of `items`, or KeyError naming `key`."""
    for item in items:
        return item
    raise KeyError(key)


def plain(value: object, *, canonical: bool = True) -> object:
    """A record as JSON-ready values, fields in declaration order, tuples as lists. Decimals
    become strings: `decimal_text` when `canonical`, else as written ("12.50" stays "12.50")."""
    if isinstance(value, Decimal):
        return decimal_text(value) if canonical else format(value, "f")
    if isinstance(value, tuple):
        return [plain(item, canonical=canonical) for item in value]
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name), canonical=canonical) for f in fields(value)}
    return value


def decimal_text(value: Decimal) -> str:
    """One spelling per value: plain notation, no exponent, no trailing zeros ("0.030" and
    "0.03" are both "0.03"; "100" stays "100"), so equal catalogues have equal hashes."""
    if value.is_zero():
        return "0"
    return format(value.normalize(), "f")


def canonical_json(catalogue: Catalogue) -> str:
    """The catalogue as canonical JSON: sorted keys, no whitespace, decimals as strings."""
    return json.dumps(plain(catalogue), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
