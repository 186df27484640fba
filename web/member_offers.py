"""Spending credits: partner offers (filtered by a venue's area), taking a voucher, the
member's vouchers with their code and QR code; and person-to-person offers and requests."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute

from partners import storage as partner_storage
from partners.model import Venue

from .member_common import MEMBERS, base, entries, every, person_to_person
from .visit import Visit, page

VOUCHER = "/schemes/{scheme}/vouchers/{code}"


async def _venues(v: Visit) -> dict[str, list[Venue]]:
    """The venues where each partner's vouchers can be used in this scheme (a read of the
    partner register: the API shows members offers but not venues)."""
    out: dict[str, list[Venue]] = {}
    for agreement in await v.services.partners.agreements(v.scheme):
        every_venue = await v.services.bank.query(partner_storage.list_venues, agreement.partner)
        out[agreement.partner] = [x for x in every_venue if x.id in agreement.venues]
    return out


async def offers(v: Visit) -> Response:
    area = v.request.query_params.get("area", "").strip()
    found = await v.act("GET", "/schemes/{scheme}/partner-offers")
    venues = await _venues(v)
    names = {p: (await v.services.partners.partner(p)).name for p in venues}
    areas = sorted({x.area for vs in venues.values() for x in vs if x.area})
    rows: list[dict[str, Any]] = []
    for o in found.items:
        where = venues.get(o.partner, [])
        if area and not any(x.area == area for x in where):
            continue
        rows.append({"offer": o, "partner": names.get(o.partner, o.partner), "venues": where})
    p2p = await person_to_person(v)
    help_offers: list[Any] = []
    help_requests: list[Any] = []
    if p2p:
        help_offers = [
            o for o in await every(v, "/schemes/{scheme}/offers", {}, size=200) if o.active
        ]
        help_requests = [
            r for r in await every(v, "/schemes/{scheme}/requests", {}, size=200) if r.open
        ]
        areas = sorted(set(areas) | {x.area for x in help_offers + help_requests})
        if area:
            help_offers = [o for o in help_offers if o.area == area]
            help_requests = [r for r in help_requests if r.area == area]
    return v.render(
        "member/offers.html",
        offers=rows,
        area=area,
        areas=areas,
        p2p=p2p,
        help_offers=help_offers,
        help_requests=help_requests,
    )


async def take(v: Visit) -> Response:
    body = {"partner": v.field("partner"), "offer": v.field("offer")}
    voucher = await v.act("POST", "/schemes/{scheme}/vouchers", body=body, key=v.field("key"))
    notice = v._("Here is your voucher. Show the code or the QR code at the venue.")
    return v.redirect(f"{base(v)}/vouchers/{voucher.code}", notice)


async def my_vouchers(v: Visit) -> list[Any]:
    """The member's vouchers, most recent first, found from their ledger: each voucher reserved
    its credits in one of their entries. (The API has no list of a member's vouchers, so the
    voucher register is read for the code; the voucher itself is shown through the API.)"""
    found = []
    for e in reversed(await entries(v)):
        if e.kind != "reserve":
            continue
        row = await v.services.bank.query(partner_storage.read_voucher, v.scheme, "", e.seq)
        if row is not None:
            found.append(await v.act("GET", VOUCHER, {"code": row.code}))
    return found


async def vouchers(v: Visit) -> Response:
    found = await v.act("GET", "/schemes/{scheme}/partner-offers")
    titles = {f"{o.partner}/{o.id}": o.title for o in found.items}
    return v.render("member/vouchers.html", vouchers=await my_vouchers(v), titles=titles)


async def voucher(v: Visit) -> Response:
    code = str(v.request.path_params["code"])
    shown = await v.act("GET", VOUCHER, {"code": code})
    offer = None
    for o in (await v.act("GET", "/schemes/{scheme}/partner-offers")).items:
        if (o.partner, o.id) == (shown.partner, shown.offer):
            offer = o
    return v.render("member/voucher.html", voucher=shown, offer=offer)


async def qr(v: Visit) -> Response:
    code = str(v.request.path_params["code"])
    image = await v.act("GET", VOUCHER + "/qr", {"code": code})
    return Response(
        image.body, media_type=image.media_type, headers={"Cache-Control": "private, no-store"}
    )


def routes() -> list[BaseRoute]:
    return [
        page("/s/{scheme}/me/offers", offers, roles=MEMBERS),
        page("/s/{scheme}/me/vouchers", take, roles=MEMBERS, methods=("POST",)),
        page("/s/{scheme}/me/vouchers", vouchers, roles=MEMBERS),
        page("/s/{scheme}/me/vouchers/{code}", voucher, roles=MEMBERS),
        page("/s/{scheme}/me/vouchers/{code}/qr", qr, roles=MEMBERS),
    ]
