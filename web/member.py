"""Pages for members (phone first): balance and history, logging hours, receipts, offers and
vouchers, and their personal data."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import BaseRoute

from api.auth import ApiRole

from .visit import Box, Visit, page

MEMBERS = frozenset({ApiRole.MEMBER})
M = "/schemes/{scheme}/members/{member}"


async def home(v: Visit) -> Response:
    me = {"member": v.who.member or ""}
    member = await v.act("GET", M, me)
    balance = await v.act("GET", M + "/balance", me)
    entries = await v.act("GET", M + "/entries", me, query={"limit": 10})
    return v.render("member/home.html", member=member, balance=balance, entries=entries.items)


def routes(box: Box) -> list[BaseRoute]:
    return [
        page("/s/{scheme}/me", home, box, roles=MEMBERS),
    ]
