"""Routes for valued-contribution reports and what they read besides hours: outcomes (one at a
time or a CSV file), programme costs and members' ratings of services and partners."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import Field
from starlette.responses import Response

from identity.auth import STAFF, ApiRole
from timebank import offload
from timebank.books import Books
from valuation.catalogue import Catalogue
from valuation.reports import render, report_inputs
from valuation.reports.catalogues import add_version, scheme_catalogue, versions
from valuation.reports.engine import HORIZONS, Parameters, build
from valuation.reports.facts import Facts
from valuation.reports.inputs import Cost, CostKind, Evidence, OutcomeRecord, Rating, Subject
from valuation.reports.records import import_outcomes, record_cost, record_outcome, record_rating

from .endpoints import Call, Endpoint
from .headers import DOCUMENT_CSP
from .imports import ImportOut
from .members import acting_member
from .models import In, MemberId, Out, Page, Query, ReportOut, Slug
from .problems import Problem

READERS = STAFF | {ApiRole.COMMISSIONER}
Fraction = Annotated[str, Field(pattern=r"^(0(\.\d{1,4})?|1(\.0{1,4})?)$")]
Money = Annotated[str, Field(pattern=r"^\d{1,12}(\.\d{1,2})?$")]
MEDIA = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
}


class ReportQuery(Query):
    from_: date = Field(alias="from", description="first day (YYYY-MM-DD)")
    to: date = Field(description="last day (YYYY-MM-DD)")
    format: Literal["json", "csv", "xlsx", "html", "pdf"] = "json"
    horizon: int = Field(1, description=f"years: one of {HORIZONS}")
    k: int = Field(10, ge=1, le=1000, description="equality and rating cells under k suppressed")
    deadweight: Fraction | None = None
    displacement: Fraction | None = None
    attribution: Fraction | None = None
    drop_off: Fraction | None = None
    price_base: str | None = Field(
        None,
        pattern=r"^\d{4}(/\d{2})?$",
        description="rebase money to this year's prices (e.g. 2025/26)",
    )
    discount_start: int = Field(
        1, ge=0, le=1, description="1: year 1 discounted (SROI Guide); 0: year 0 not (Green Book)"
    )
    what_if_population: int = Field(0, ge=0, le=100_000_000)
    what_if_hours_per_week: str = Field("0", pattern=r"^\d{1,3}(\.\d{1,2})?$")
    what_if_weeks: int = Field(0, ge=0, le=520)
    currency: Literal["GBP", "USD"] = "GBP"
    geography: str = Field(
        "UK",
        pattern=r"^[A-Za-z][A-Za-z -]{1,39}$",
        description="where wages are looked up first (UK, Wales, US, ...)",
    )
    catalogue: str | None = Field(
        None,
        max_length=64,
        description="a catalogue version; default: the scheme's latest (else the shipped one)",
    )


class OutcomeIn(In):
    id: Slug
    outcome: str = Field(min_length=1, max_length=64, description="a valuation entry's id")
    start: date
    end: date
    people: int = Field(ge=0, le=10_000_000)
    evidence: Evidence
    evidence_note: str = Field(min_length=1, max_length=2000)
    change: str | None = Field(None, pattern=r"^-?\d{1,2}(\.\d{1,4})?$")


class OutcomeOut(Out):
    id: str
    outcome: str
    start: date
    end: date
    people: int
    evidence: Evidence
    evidence_note: str
    change: str | None


class CostIn(In):
    id: Slug
    funder: str = Field(pattern=r"^[A-Z][A-Z0-9_]{1,39}$")
    kind: CostKind
    start: date
    end: date
    amount: Money
    currency: str = Field("GBP", pattern=r"^[A-Z]{3}$")
    price_year: str = Field(pattern=r"^\d{4}(/\d{2})?$")
    note: str = Field("", max_length=1000)


class CostOut(Out):
    id: str
    funder: str
    kind: CostKind
    amount: str
    currency: str
    price_year: str


class CatalogueIn(In):
    version: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    licensed: bool = Field(False, description="a licensee's values, never redistributed")
    content: dict[str, Any] = Field(description="the additions: sources, wage_rates, entries...")


class CatalogueOut(Out):
    version: str
    hash: str
    based_on: str | None
    scheme: str | None


class RatingIn(In):
    id: Slug
    member: MemberId | None = Field(None, description="staff rate on a member's behalf")
    subject: Subject
    subject_id: Slug
    score: int = Field(ge=1, le=5)
    day: date


class RatingOut(Out):
    id: str
    subject: Subject
    subject_id: str
    score: int
    day: date


def _d(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


async def report(call: Call) -> Any:
    q: ReportQuery = call.query
    if q.horizon not in HORIZONS:
        raise Problem(422, f"the horizon is one of {HORIZONS} years", field="horizon")
    params = Parameters(
        k=q.k,
        horizon_years=q.horizon,
        currency=q.currency,
        geography=q.geography,
        price_base=q.price_base,
        discount_start=q.discount_start,
        what_if_population=q.what_if_population,
        what_if_hours_per_week=Decimal(q.what_if_hours_per_week),
        what_if_weeks=q.what_if_weeks,
        deadweight=_d(q.deadweight),
        displacement=_d(q.displacement),
        attribution=_d(q.attribution),
        drop_off=_d(q.drop_off),
    )
    catalogue = None
    if q.catalogue is not None:
        catalogue = await scheme_catalogue(call.bank, call.scheme, q.catalogue)
    # `make_report`'s inputs read here, the report built (and rendered) in a worker process.
    # Building took 0.3 s on a scheme of 5,000 members, and a PDF seconds: off the event loop;
    # the facts go to the worker in about 10 ms of pickling.
    facts, books, catalogue = await report_inputs(
        call.bank, call.scheme, q.from_, q.to, catalogue=catalogue
    )
    body = await offload.run(_made, facts, books, params, catalogue, q.format)
    if q.format == "json":
        return Response(body, 200, media_type="application/json")
    name = f"{call.scheme}-{q.from_}-{q.to}.{q.format}"
    headers = {"content-disposition": f'attachment; filename="{name}"'}
    if q.format == "html":
        headers["content-security-policy"] = DOCUMENT_CSP
    return Response(body, 200, media_type=MEDIA[q.format], headers=headers)


def _made(facts: Facts, books: Books, params: Parameters, catalogue: Catalogue, fmt: str) -> bytes:
    """In a worker process: the report built, as the JSON answer (compact) or rendered."""
    made = build(facts, books, params, catalogue)
    return json.dumps(made).encode() if fmt == "json" else render(made, fmt)


async def add_outcome(call: Call) -> OutcomeOut:
    b: OutcomeIn = call.body
    record = OutcomeRecord(
        b.id, b.outcome, b.start, b.end, b.people, b.evidence, b.evidence_note, _d(b.change)
    )
    done = await record_outcome(call.bank, call.scheme, record, by=acting_member(call))
    return OutcomeOut(
        id=done.id,
        outcome=done.outcome,
        start=done.start,
        end=done.end,
        people=done.people,
        evidence=done.evidence,
        evidence_note=done.evidence_note,
        change=None if done.change is None else str(done.change),
    )


async def outcomes_csv(call: Call) -> ImportOut:
    added = await import_outcomes(call.bank, call.scheme, call.body, by=acting_member(call))
    return ImportOut(added=added)


async def add_cost(call: Call) -> CostOut:
    b: CostIn = call.body
    cost = Cost(
        b.id, b.funder, b.kind, b.start, b.end, Decimal(b.amount), b.currency, b.price_year, b.note
    )
    done = await record_cost(call.bank, call.scheme, cost, by=acting_member(call))
    return CostOut(
        id=done.id,
        funder=done.funder,
        kind=done.kind,
        amount=str(done.amount),
        currency=done.currency,
        price_year=done.price_year,
    )


async def add_catalogue(call: Call) -> CatalogueOut:
    b: CatalogueIn = call.body
    made = await add_version(
        call.bank,
        call.scheme,
        json.dumps(b.content),
        version=b.version,
        licensed=b.licensed,
        by=acting_member(call),
    )
    return CatalogueOut(
        version=made.version, hash=made.content_hash, based_on=made.based_on, scheme=made.scheme
    )


async def list_catalogues(call: Call) -> Page[CatalogueOut]:
    found = await versions(call.bank, call.scheme)
    items = [
        CatalogueOut(version=v.version, hash=v.hash, based_on=v.based_on, scheme=v.scheme)
        for v in found
    ]
    return Page(items=items, next_cursor=None)


async def add_rating(call: Call) -> RatingOut:
    b: RatingIn = call.body
    me = acting_member(call)
    if call.who.role is ApiRole.MEMBER and b.member not in (None, me):
        raise Problem(403, "a member rates as themselves", field="member")
    rating = Rating(b.id, b.member or me, b.subject, b.subject_id, b.score, b.day)
    done = await record_rating(call.bank, call.scheme, rating)
    return RatingOut(
        id=done.id, subject=done.subject, subject_id=done.subject_id, score=done.score, day=done.day
    )


ENDPOINTS = [
    Endpoint(
        "GET",
        "/schemes/{scheme}/reports",
        report,
        "Get a valued-contribution report (json, csv, xlsx, html or pdf)",
        READERS,
        query=ReportQuery,
        response=ReportOut,
        media=tuple(MEDIA.values()),
        tag="reports",
    ),
    Endpoint(
        "POST",
        "/schemes/{scheme}/outcomes",
        add_outcome,
        "Record an outcome",
        STAFF,
        body=OutcomeIn,
        response=OutcomeOut,
        status=201,
        tag="reports",
    ),
    Endpoint(
        "POST",
        "/schemes/{scheme}/imports/outcomes",
        outcomes_csv,
        "Import outcome records (CSV)",
        STAFF,
        csv=True,
        response=ImportOut,
        tag="reports",
    ),
    Endpoint(
        "POST",
        "/schemes/{scheme}/costs",
        add_cost,
        "Record a programme cost",
        STAFF,
        body=CostIn,
        response=CostOut,
        status=201,
        tag="reports",
    ),
    Endpoint(
        "POST",
        "/schemes/{scheme}/catalogues",
        add_catalogue,
        "Add a version of the scheme's valuation catalogue",
        frozenset({ApiRole.SCHEME_ADMIN}),
        body=CatalogueIn,
        response=CatalogueOut,
        status=201,
        tag="reports",
    ),
    Endpoint(
        "GET",
        "/schemes/{scheme}/catalogues",
        list_catalogues,
        "List the valuation catalogue's versions",
        READERS,
        response=Page[CatalogueOut],
        tag="reports",
    ),
    Endpoint(
        "POST",
        "/schemes/{scheme}/ratings",
        add_rating,
        "Rate a service or partner (co-assessment)",
        STAFF | {ApiRole.MEMBER},
        body=RatingIn,
        response=RatingOut,
        status=201,
        tag="reports",
    ),
]
