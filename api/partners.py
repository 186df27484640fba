"""Routes for partner organisations, their venues and offers, and schemes' agreements with them.

Partners are the deployment's (one partner may serve several schemes, under a separate agreement
with each): the admin registers them; the admin or the partner's own staff add venues and
offers; a scheme's admin makes the agreement. Partner staff see only their own organisation.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import Field

from identity.auth import ALL_SCHEME_ROLES, STAFF, ApiRole
from ledger import receipt_json
from partners.codes import display
from partners.model import Agreement, Offer, Partner, Sector, Venue
from partners.statements import statement_rows

from .endpoints import Call, Endpoint
from .models import (
    In,
    JsonObject,
    Out,
    Page,
    PartnerId,
    Query,
    RetirementOut,
    StatementOut,
)
from .problems import Problem

ADMIN = frozenset({ApiRole.ADMIN})
PARTNER_KEEPERS = frozenset({ApiRole.ADMIN, ApiRole.PARTNER_STAFF})
AGREERS = frozenset({ApiRole.ADMIN, ApiRole.SCHEME_ADMIN})
Name = Annotated[str, Field(min_length=1, max_length=200)]


class PartnerIn(In):
    id: PartnerId
    name: Name
    sector: Sector


class VenueIn(In):
    id: PartnerId
    name: Name
    area: Annotated[str, Field(max_length=40)] = ""


class PartnerOfferIn(In):
    id: PartnerId
    title: Name
    credits: int = Field(ge=1, le=100, description="whole credits (hours) a voucher costs")
    cash_price_pence: int = Field(ge=0, le=10_000_000, description="the venue's usual price")
    starts: date
    ends: date | None = None
    per_day: int | None = Field(None, ge=1, le=100_000)
    per_week: int | None = Field(None, ge=1, le=100_000)
    eligibility: Annotated[str, Field(max_length=500)] = ""


class AgreementIn(In):
    partner: PartnerId
    offers: list[PartnerId] = Field(min_length=1, max_length=200)
    venues: list[PartnerId] = Field(min_length=1, max_length=200)
    starts: date
    ends: date | None = None
    voucher_hours: int = Field(48, ge=1, le=2160)
    monthly_cap: int | None = Field(None, ge=1, le=1_000_000, description="credits per month")


class PartnerOut(PartnerIn):
    pass


class VenueOut(VenueIn):
    partner: str


class PartnerOfferOut(PartnerOfferIn):
    partner: str

    @classmethod
    def of(cls, o: Offer) -> PartnerOfferOut:
        return cls(
            partner=o.partner,
            id=o.id,
            title=o.title,
            credits=o.credits,
            cash_price_pence=o.cash_price_pence,
            starts=o.starts,
            ends=o.ends,
            per_day=o.per_day,
            per_week=o.per_week,
            eligibility=o.eligibility,
        )


class AgreementOut(AgreementIn):
    scheme: str

    @classmethod
    def of(cls, a: Agreement) -> AgreementOut:
        return cls(
            scheme=a.scheme,
            partner=a.partner,
            offers=sorted(a.offers),
            venues=sorted(a.venues),
            starts=a.starts,
            ends=a.ends,
            voucher_hours=a.voucher_hours,
            monthly_cap=a.monthly_cap,
        )


def _own_partner(call: Call, partner_id: str) -> None:
    """Partner staff act only for their own organisation (another's: as if it did not exist)."""
    if call.who.role is ApiRole.PARTNER_STAFF and call.who.partner != partner_id:
        raise Problem(404, f"no partner {partner_id!r}", code="not_found", field="partner")


def _partner_of(call: Call) -> str:
    """The partner a path names, or, on /schemes/{scheme}/partner/..., the caller's own."""
    named = call.params.get("partner") or call.who.partner
    assert named is not None, "partner-staff tokens always name their partner"
    _own_partner(call, named)
    return named


async def add_partner(call: Call) -> PartnerOut:
    b: PartnerIn = call.body
    await call.services.partners.add_partner(Partner(b.id, b.name, b.sector))
    return PartnerOut(id=b.id, name=b.name, sector=b.sector)


async def add_venue(call: Call) -> VenueOut:
    b: VenueIn = call.body
    partner = _partner_of(call)
    await call.services.partners.add_venue(Venue(partner, b.id, b.name, b.area))
    return VenueOut(partner=partner, id=b.id, name=b.name, area=b.area)


async def add_offer(call: Call) -> PartnerOfferOut:
    b: PartnerOfferIn = call.body
    partner = _partner_of(call)
    offer = Offer(
        partner,
        b.id,
        b.title,
        b.credits,
        b.cash_price_pence,
        b.starts,
        b.ends,
        b.per_day,
        b.per_week,
        b.eligibility,
    )
    return PartnerOfferOut.of(await call.services.partners.add_offer(offer))


async def agree(call: Call) -> AgreementOut:
    b: AgreementIn = call.body
    agreement = Agreement(
        call.scheme,
        b.partner,
        frozenset(b.offers),
        frozenset(b.venues),
        b.starts,
        b.ends,
        b.voucher_hours,
        b.monthly_cap,
    )
    return AgreementOut.of(await call.services.partners.agree(agreement))


async def list_agreements(call: Call) -> Page[AgreementOut]:
    found = await call.services.partners.agreements(call.scheme)
    if call.who.role is ApiRole.PARTNER_STAFF:
        found = [a for a in found if a.partner == call.who.partner]
    return Page(items=[AgreementOut.of(a) for a in found], next_cursor=None)


async def scheme_offers(call: Call) -> Page[PartnerOfferOut]:
    """The offers members of the scheme can take a voucher for today."""
    found = await call.services.partners.offers_available(call.scheme)
    items = [PartnerOfferOut.of(o) for o in found]
    return Page(items=items, next_cursor=None)


ENDPOINTS = [
    Endpoint(
        "POST",
        "/partners",
        add_partner,
        "Register a partner organisation",
        ADMIN,
        body=PartnerIn,
        response=PartnerOut,
        status=201,
        tag="partners",
    ),
    Endpoint(
        "POST",
        "/partners/{partner}/venues",
        add_venue,
        "Add a partner's venue",
        ADMIN,
        body=VenueIn,
        response=VenueOut,
        status=201,
        tag="partners",
    ),
    Endpoint(
        "POST",
        "/partners/{partner}/offers",
        add_offer,
        "Add a partner's offer",
        ADMIN,
        body=PartnerOfferIn,
        response=PartnerOfferOut,
        status=201,
        tag="partners",
    ),
    Endpoint(
        "POST",
        "/schemes/{scheme}/partner/venues",
        add_venue,
        "Add your venue",
        frozenset({ApiRole.PARTNER_STAFF}),
        body=VenueIn,
        response=VenueOut,
        status=201,
        tag="partners",
    ),
    Endpoint(
        "POST",
        "/schemes/{scheme}/partner/offers",
        add_offer,
        "Add your offer",
        frozenset({ApiRole.PARTNER_STAFF}),
        body=PartnerOfferIn,
        response=PartnerOfferOut,
        status=201,
        tag="partners",
    ),
    Endpoint(
        "POST",
        "/schemes/{scheme}/agreements",
        agree,
        "Make or change an agreement",
        AGREERS,
        body=AgreementIn,
        response=AgreementOut,
        status=201,
        tag="partners",
    ),
    Endpoint(
        "GET",
        "/schemes/{scheme}/agreements",
        list_agreements,
        "List agreements",
        STAFF | {ApiRole.ADMIN, ApiRole.PARTNER_STAFF},
        response=Page[AgreementOut],
        tag="partners",
    ),
    Endpoint(
        "GET",
        "/schemes/{scheme}/partner-offers",
        scheme_offers,
        "List the partner offers members can spend credits on",
        ALL_SCHEME_ROLES,
        response=Page[PartnerOfferOut],
        tag="partners",
    ),
]


class PeriodQuery(Query):
    start: date
    end: date
    partner: PartnerId | None = Field(None, description="coordinators: whose statement")


class KeyIn(In):
    public_key: Annotated[str, Field(min_length=1, max_length=100, description="hex or base64")]


class KeyOut(Out):
    partner: str
    key_id: str


class ReconciliationOut(Out):
    new_upload: bool = Field(description="false: this very file was uploaded before")
    matched: int
    mismatches: list[dict[str, str]]
    on_till_not_ledger: list[str]
    on_ledger_not_till: list[str]
    totals: dict[str, dict[str, int | None]]


async def statement(call: Call) -> JsonObject:
    q: PeriodQuery = call.query
    partner = q.partner or call.who.partner
    if partner is None:
        raise Problem(422, "name the partner", field="partner")
    _own_partner(call, partner)
    found = await call.services.partners.statement(call.scheme, partner, q.start, q.end)
    return JsonObject.model_validate(
        {
            "partner": partner,
            "scheme": call.scheme,
            "start": q.start.isoformat(),
            "end": q.end.isoformat(),
            "vouchers": found.vouchers,
            "minutes": found.minutes,
            "credits": found.credits,
            "usual_price_pence": found.usual_price_pence,
            "rows": statement_rows(found),
        }
    )


async def reconcile(call: Call) -> ReconciliationOut:
    partner = _partner_of(call)
    report, new = await call.services.partners.reconcile(call.scheme, partner, call.body)
    t = report.totals
    return ReconciliationOut(
        new_upload=new,
        matched=len(report.matched),
        mismatches=[
            {
                "code": display(m.voucher.code),
                "line": str(m.record.line),
                "fields": ",".join(m.fields),
            }
            for m in report.mismatches
        ],
        on_till_not_ledger=[display(r.code) for r in report.on_till_not_ledger],
        on_ledger_not_till=[display(v.code) for v in report.on_ledger_not_till],
        totals={
            name: {"count": tally.count, "minutes": tally.minutes}
            for name, tally in (
                ("matched", t.matched),
                ("mismatches", t.mismatches),
                ("on_till_not_ledger", t.on_till_not_ledger),
                ("on_ledger_not_till", t.on_ledger_not_till),
            )
        },
    )


async def add_key(call: Call) -> KeyOut:
    b: KeyIn = call.body
    key = await call.services.partners.add_key(_partner_of(call), b.public_key)
    return KeyOut(partner=key.partner, key_id=key.key_id)


async def retire(call: Call) -> JsonObject:
    """Retire what a partner holds; the answer carries the entry's receipt: the signed
    settlement statement, verifiable offline like any receipt."""
    partners = call.services.partners
    entry = await partners.retire(
        call.scheme, call.params["partner"], idempotency_key=call.idempotency_key
    )
    ledger = call.bank.ledger
    await ledger.checkpoint(call.scheme, idempotency_key=f"checkpoint:{entry.seq}")
    receipt = await ledger.receipt(call.scheme, entry.seq)
    return JsonObject.model_validate(
        {
            "partner": call.params["partner"],
            "minutes": -entry.amount_for(f"partner:{call.params['partner']}"),
            "entry": entry.seq,
            "receipt": receipt_json(receipt),
        }
    )


PARTNER_STAFF = frozenset({ApiRole.PARTNER_STAFF})
ENDPOINTS += [
    Endpoint(
        "GET",
        "/schemes/{scheme}/partner/statement",
        statement,
        "Show a partner's statement for a period",
        STAFF | PARTNER_STAFF,
        query=PeriodQuery,
        response=StatementOut,
        tag="partners",
    ),
    Endpoint(
        "POST",
        "/schemes/{scheme}/partner/reconciliations",
        reconcile,
        "Reconcile your till records (CSV)",
        PARTNER_STAFF,
        csv=True,
        response=ReconciliationOut,
        tag="partners",
    ),
    Endpoint(
        "POST",
        "/schemes/{scheme}/partner/keys",
        add_key,
        "Register a key your integrations sign settlements with",
        PARTNER_STAFF,
        body=KeyIn,
        response=KeyOut,
        status=201,
        tag="partners",
    ),
    Endpoint(
        "POST",
        "/schemes/{scheme}/agreements/{partner}/retire",
        retire,
        "Retire the credits a partner holds (a signed settlement)",
        AGREERS,
        response=RetirementOut,
        status=201,
        tag="partners",
    ),
]
