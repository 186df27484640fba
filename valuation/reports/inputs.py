"""What a scheme records for its reports besides hours: outcomes, programme costs and members'
ratings of services and venues (co-assessment). Pure: the records and their checks.

Hours are never outcomes (DOMAIN.md R-C6): an outcome record counts *people* who met an outcome
in a period, names the catalogue value that prices it and the evidence behind the count.
Costs are what the programme cost its funders (DOMAIN.md R-C5: co-production is not free), so
reports can net them. Ratings are members' own assessments (R-C13), reported in aggregate only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
_AGENCY = re.compile(r"[A-Z][A-Z0-9_]{1,39}")
_CURRENCY = re.compile(r"[A-Z]{3}")
MAX_PEOPLE = 10_000_000
MAX_AMOUNT = Decimal(10) ** 12


class Evidence(StrEnum):
    SURVEY = "survey"  # e.g. ONS4 life satisfaction at baseline and follow-up
    ADMIN_DATA = "admin-data"  # the service's own records (GP visits, arrears, ...)
    EVALUATION = "evaluation"  # an independent evaluation
    CASE_STUDY = "case-study"
    ESTIMATE = "estimate"  # a coordinator's estimate: the weakest, and said so


class CostKind(StrEnum):
    CASH = "cash"
    IN_KIND = "in-kind"
    COORDINATION = "coordination"  # staff time brokering exchanges: a transaction cost


class Subject(StrEnum):
    SERVICE = "service"  # an activity of the scheme (its code)
    PARTNER = "partner"  # a partner venue organisation (its id)


@dataclass(frozen=True, slots=True)
class OutcomeRecord:
    """`people` met `outcome` (a catalogue entry id) in `start`..`end`, as `evidence` shows."""

    id: str
    outcome: str
    start: date
    end: date
    people: int
    evidence: Evidence
    evidence_note: str  # what the evidence is: the survey, its size, the data source
    change: Decimal | None = None  # per person, when the value is per unit of change (WELLBY)


@dataclass(frozen=True, slots=True)
class Cost:
    """What the programme cost one funder in a period, in its currency and price year."""

    id: str
    funder: str  # agency code, as in the catalogue (COUNCIL, NHS_PRIMARY, HOUSING_ASSOC, ...)
    kind: CostKind
    start: date
    end: date
    amount: Decimal
    currency: str
    price_year: str  # "2025/26" or "2025"
    note: str = ""


@dataclass(frozen=True, slots=True)
class Rating:
    """One member's rating (1-5) of a service or partner, on a day. Reported in aggregate."""

    id: str
    member: str
    subject: Subject
    subject_id: str
    score: int
    day: date


def outcome_problems(r: OutcomeRecord) -> list[tuple[str, str]]:
    out = _period(r.id, r.start, r.end)
    if not _ID.fullmatch(r.outcome.lower()) and not re.fullmatch(
        r"[A-Za-z0-9._-]{1,64}", r.outcome
    ):
        out.append(("outcome", "the id of a valuation entry in the scheme's catalogue"))
    if not 0 <= r.people <= MAX_PEOPLE:
        out.append(("people", f"a count of people, 0 to {MAX_PEOPLE}"))
    if not r.evidence_note.strip() or len(r.evidence_note) > 2000:
        out.append(("evidence_note", "say what the evidence is (1 to 2000 characters)"))
    if r.change is not None and not Decimal(-10) <= r.change <= Decimal(10):
        out.append(("change", "a change per person between -10 and 10 (e.g. life satisfaction)"))
    return out


def cost_problems(c: Cost) -> list[tuple[str, str]]:
    out = _period(c.id, c.start, c.end)
    if not _AGENCY.fullmatch(c.funder):
        out.append(("funder", "an agency code in capitals, e.g. COUNCIL or NHS_PRIMARY"))
    if not Decimal(0) <= c.amount < MAX_AMOUNT:
        out.append(("amount", "an amount of money, 0 or more"))
    if not _CURRENCY.fullmatch(c.currency):
        out.append(("currency", "a three-letter currency code, e.g. GBP"))
    if not re.fullmatch(r"\d{4}(/\d{2})?", c.price_year):
        out.append(("price_year", "a calendar year (2025) or a financial year (2025/26)"))
    return out


def rating_problems(r: Rating) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if not 1 <= r.score <= 5:
        out.append(("score", "a score from 1 to 5"))
    if not _ID.fullmatch(r.subject_id):
        out.append(("subject_id", "the code of the activity or the id of the partner"))
    return out


def _period(record_id: str, start: date, end: date) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if not _ID.fullmatch(record_id):
        out.append(("id", "a short lower-case id: letters, digits and '-'"))
    if end < start:
        out.append(("end", "the period ends on or after its start"))
    return out
