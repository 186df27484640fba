"""Routes for offers of help, requests for help, matches, and needs and capabilities by area.

A match leads to a claim: the helper logs hours naming the member helped as `receiver` (or a
coordinator logs them), and the request is closed.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from identity.auth import STAFF
from timebank.matching import AreaSummary, HelpRequest, Match, Offer

from .endpoints import Call, Endpoint, decode_cursor, encode_cursor
from .members import PEOPLE, acting_member
from .models import In, MemberId, Out, Page, PageQuery, Place, Query, Skills
from .problems import Problem

Words = Annotated[str, Field(max_length=500)]


class OfferIn(In):
    member: MemberId | None = Field(None, description="default: the caller")
    skills: Skills
    area: Place
    availability: Words = ""
    note: Words = ""


class RequestIn(In):
    member: MemberId | None = Field(None, description="default: the caller")
    skills: Skills
    area: Place
    when: Words = ""
    note: Words = ""


class OfferOut(Out):
    id: str
    member: str
    skills: list[str]
    area: str
    availability: str
    note: str
    active: bool

    @classmethod
    def of(cls, o: Offer) -> OfferOut:
        return cls(
            id=o.id,
            member=o.member,
            skills=list(o.skills),
            area=o.area,
            availability=o.availability,
            note=o.note,
            active=o.active,
        )


class RequestOut(Out):
    id: str
    member: str
    skills: list[str]
    area: str
    when: str
    note: str
    open: bool

    @classmethod
    def of(cls, r: HelpRequest) -> RequestOut:
        return cls(
            id=r.id,
            member=r.member,
            skills=list(r.skills),
            area=r.area,
            when=r.when,
            note=r.note,
            open=r.open,
        )


class MatchOut(Out):
    offer: OfferOut
    shared_skills: list[str]
    same_area: bool

    @classmethod
    def of(cls, m: Match) -> MatchOut:
        return cls(
            offer=OfferOut.of(m.offer), shared_skills=list(m.shared_skills), same_area=m.same_area
        )


class AreaOut(Out):
    area: str
    open_requests: int
    active_offers: int
    needed: dict[str, int]
    offered: dict[str, int]
    unmet: list[str]

    @classmethod
    def of(cls, a: AreaSummary) -> AreaOut:
        return cls(
            area=a.area,
            open_requests=a.open_requests,
            active_offers=a.active_offers,
            needed=a.needed,
            offered=a.offered,
            unmet=list(a.unmet),
        )


class ListQuery(PageQuery):
    member: MemberId | None = None
    limit: int = Field(50, ge=1, le=200)


class MatchQuery(Query):
    limit: int = Field(20, ge=1, le=100)


def _for_whom(call: Call, named: str | None) -> str:
    me = acting_member(call)
    if named not in (None, me) and call.who.role not in STAFF:
        raise Problem(403, "members post only their own offers and requests", field="member")
    return named or me


def _owner_or_staff(call: Call, owner: str) -> None:
    if call.who.role not in STAFF and call.who.member != owner:
        raise Problem(403, "only its member or a coordinator", field="member")


async def add_offer(call: Call) -> OfferOut:
    b: OfferIn = call.body
    offer = await call.bank.market.add_offer(
        call.scheme,
        _for_whom(call, b.member),
        b.skills,
        b.area,
        b.availability,
        b.note,
        idempotency_key=call.idempotency_key,
    )
    return OfferOut.of(offer)


async def list_offers(call: Call) -> Page[OfferOut]:
    q: ListQuery = call.query
    found = await call.bank.market.offers(
        call.scheme, member=q.member, after=decode_cursor(q.cursor, ""), limit=q.limit
    )
    more = encode_cursor(found[-1].id) if len(found) == q.limit else None
    return Page(items=[OfferOut.of(o) for o in found], next_cursor=more)


async def withdraw_offer(call: Call) -> OfferOut:
    market = call.bank.market
    found = await market.offer(call.scheme, call.params["offer"])
    _owner_or_staff(call, found.member)
    return OfferOut.of(await market.withdraw_offer(call.scheme, found.id))


async def add_request(call: Call) -> RequestOut:
    b: RequestIn = call.body
    request = await call.bank.market.add_request(
        call.scheme,
        _for_whom(call, b.member),
        b.skills,
        b.area,
        b.when,
        b.note,
        idempotency_key=call.idempotency_key,
    )
    return RequestOut.of(request)


async def list_requests(call: Call) -> Page[RequestOut]:
    q: ListQuery = call.query
    found = await call.bank.market.requests(
        call.scheme, member=q.member, after=decode_cursor(q.cursor, ""), limit=q.limit
    )
    more = encode_cursor(found[-1].id) if len(found) == q.limit else None
    return Page(items=[RequestOut.of(r) for r in found], next_cursor=more)


async def close_request(call: Call) -> RequestOut:
    market = call.bank.market
    found = await market.request(call.scheme, call.params["request"])
    _owner_or_staff(call, found.member)
    return RequestOut.of(await market.close_request(call.scheme, found.id))


async def matches(call: Call) -> Page[MatchOut]:
    q: MatchQuery = call.query
    found = await call.bank.market.matches_for(call.scheme, call.params["request"], q.limit)
    return Page(items=[MatchOut.of(m) for m in found], next_cursor=None)


async def needs(call: Call) -> Page[AreaOut]:
    found = await call.bank.market.needs_and_capabilities(call.scheme)
    return Page(items=[AreaOut.of(a) for a in found], next_cursor=None)


ENDPOINTS = [
    Endpoint(
        "POST",
        "/schemes/{scheme}/offers",
        add_offer,
        "Offer help",
        PEOPLE,
        body=OfferIn,
        response=OfferOut,
        status=201,
        tag="offers",
    ),
    Endpoint(
        "GET",
        "/schemes/{scheme}/offers",
        list_offers,
        "List offers of help",
        PEOPLE,
        query=ListQuery,
        response=Page[OfferOut],
        tag="offers",
    ),
    Endpoint(
        "POST",
        "/schemes/{scheme}/offers/{offer}/withdraw",
        withdraw_offer,
        "Withdraw an offer",
        PEOPLE,
        response=OfferOut,
        tag="offers",
    ),
    Endpoint(
        "POST",
        "/schemes/{scheme}/requests",
        add_request,
        "Ask for help",
        PEOPLE,
        body=RequestIn,
        response=RequestOut,
        status=201,
        tag="offers",
    ),
    Endpoint(
        "GET",
        "/schemes/{scheme}/requests",
        list_requests,
        "List requests for help",
        PEOPLE,
        query=ListQuery,
        response=Page[RequestOut],
        tag="offers",
    ),
    Endpoint(
        "POST",
        "/schemes/{scheme}/requests/{request}/close",
        close_request,
        "Close a request",
        PEOPLE,
        response=RequestOut,
        tag="offers",
    ),
    Endpoint(
        "GET",
        "/schemes/{scheme}/requests/{request}/matches",
        matches,
        "Find offers that match a request",
        PEOPLE,
        query=MatchQuery,
        response=Page[MatchOut],
        tag="offers",
    ),
    Endpoint(
        "GET",
        "/schemes/{scheme}/needs",
        needs,
        "Show needs and capabilities by area",
        STAFF,
        response=Page[AreaOut],
        tag="offers",
    ),
]
