"""Pages for partner staff at the till (a cheap tablet: big targets, few steps): find a voucher
by its code (typed, or scanned with the camera where the browser can), then settle or void it.

Today's redemptions, statements and reconciliation are in `web.till_books`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute

from api.problems import Problem
from identity.auth import ApiRole
from ledger import NotFound, from_us
from partners import storage as partner_storage
from partners.codes import display, normalise

from . import till_books
from .render import hours
from .visit import Visit, page

TILL = frozenset({ApiRole.PARTNER_STAFF})
VOUCHER = "/schemes/{scheme}/vouchers/{code}"
VENUE_COOKIE = "tb_till_venue"  # the venue this till last settled at: chosen again next time


def _partner(v: Visit) -> str:
    partner = v.who.partner
    assert partner is not None, "partner-staff accounts always name their partner"
    return partner


def _home(v: Visit) -> str:
    return f"/s/{v.scheme}/till"


async def till(v: Visit) -> Response:
    """The till: one field for the code. Posting it opens the voucher (or says what is wrong)."""
    if v.request.method == "GET":
        return v.render("till/till.html", code="")
    typed = v.field("code")
    code = normalise(typed)
    if code is None:
        message = v._(
            "That is not a voucher code. A code looks like ABCD-EFGH-J: check each character."
        )
        return _till_error(v, typed, 422, message)
    try:
        await v.act("GET", VOUCHER, {"code": code})
    except Problem as p:
        if p.status != 404:
            raise
        message = v._(
            "No voucher %(code)s was found for your organisation. Check the code.",
            code=display(code),
        )
        return _till_error(v, typed, 404, message)
    return v.redirect(f"{_home(v)}/v/{display(code)}")


def _till_error(v: Visit, typed: str, status: int, message: str) -> Response:
    return v.render("till/till.html", status, code=typed, errors={"code": message})


async def voucher_page(v: Visit) -> Response:
    return await _voucher(v)


async def _voucher(v: Visit, status: int = 200, errors: dict[str, str] | None = None) -> Response:
    """The voucher found at the till: its offer, credits, state and expiry, with the buttons
    that fit its state (settle and void while it is pending and unexpired)."""
    typed = str(v.request.path_params["code"])
    if normalise(typed) is None:
        raise Problem(404, v._("That is not a voucher code."), field="code")
    voucher = await v.act("GET", VOUCHER, {"code": typed})
    offer_title = await _title(v, voucher)
    now = from_us(v.services.bank.clock())
    expired = datetime.fromisoformat(voucher.expires) <= now
    usable = voucher.state == "pending" and not expired
    venues = await _venues(v) if usable else []
    return v.render(
        "till/voucher.html",
        status,
        voucher=voucher,
        offer_title=offer_title,
        expired=expired,
        usable=usable,
        venues=venues,
        errors=errors or {},
        venue=v.field("venue") or v.request.cookies.get(VENUE_COOKIE, ""),
    )


async def _venues(v: Visit) -> list[tuple[str, str]]:
    """(id, name) of the venues the scheme's agreement with this partner covers."""
    partner = _partner(v)
    agreements = await v.act("GET", "/schemes/{scheme}/agreements")
    agreed: set[str] = {
        venue for a in agreements.items if a.partner == partner for venue in a.venues
    }
    named = await v.services.bank.query(partner_storage.list_venues, partner)
    names = {x.id: x.name for x in named}
    return sorted(((venue, names.get(venue, venue)) for venue in agreed), key=lambda x: x[1])


async def settle(v: Visit) -> Response:
    code = str(v.request.path_params["code"])
    try:
        done = await v.act(
            "POST",
            VOUCHER + "/settle",
            {"code": code},
            body={"venue": v.field("venue")},
            key=v.field("key"),
        )
    except Problem as p:
        return await _refused(v, p)
    notice = v._(
        "Voucher %(code)s is settled: %(offer)s, %(time)s hours. Ready for the next one.",
        code=done.code,
        offer=await _title(v, done),
        time=hours(done.minutes),
    )
    response = v.redirect(_home(v), notice=notice)
    if done.venue:
        response.set_cookie(
            VENUE_COOKIE,
            done.venue,
            max_age=90 * 86_400,
            path=_home(v),
            httponly=True,
            samesite="lax",
            secure=v.request.url.scheme == "https",
        )
    return response


async def void(v: Visit) -> Response:
    code = str(v.request.path_params["code"])
    try:
        done = await v.act("POST", VOUCHER + "/void", {"code": code}, key=v.field("key"))
    except Problem as p:
        return await _refused(v, p)
    notice = v._("Voucher %(code)s is void: its credits went back to the member.", code=done.code)
    return v.redirect(_home(v), notice=notice)


async def _refused(v: Visit, p: Problem) -> Response:
    """A settle or void refused: the voucher again, with why (a venue's under the venue)."""
    if p.status == 404 and p.field in ("code", "scheme"):
        raise p
    errors = {e.get("field", "") or "": e.get("message", "") for e in p.errors}
    return await _voucher(v, p.status, errors or {p.field or "": p.detail})


async def _title(v: Visit, voucher: Any) -> str:
    try:
        return (await v.services.partners.offer(voucher.partner, voucher.offer)).title
    except NotFound:
        return str(voucher.offer)


def routes() -> list[BaseRoute]:
    base = "/s/{scheme}/till"
    return [
        page(base, till, roles=TILL, methods=("GET", "POST")),
        page(base + "/v/{code}", voucher_page, roles=TILL),
        page(base + "/v/{code}/settle", settle, roles=TILL, methods=("POST",)),
        page(base + "/v/{code}/void", void, roles=TILL, methods=("POST",)),
        *till_books.routes(),
    ]
