"""Pages for members (phone first): balance and history, logging hours, receipts, offers and
vouchers, and their personal data. The other member pages live in `web/member_*.py`; their
routes are registered here."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import BaseRoute

from . import member_claims, member_data, member_offers, member_receipts
from .member_common import MEMBERS, M, claims, entries, me, person_to_person
from .visit import Visit, page

RECENT = 20  # entries on the home page


async def home(v: Visit) -> Response:
    member = await v.act("GET", M, me(v))
    balance = await v.act("GET", M + "/balance", me(v))
    history = list(reversed(await entries(v)))[:RECENT]
    waiting = await claims(v, "pending")
    pending = [c for c in waiting if c.member == v.who.member]
    p2p = await person_to_person(v)
    to_confirm = sum(1 for c in waiting if c.receiver == v.who.member) if p2p else 0
    return v.render(
        "member/home.html",
        member=member,
        balance=balance,
        entries=history,
        pending=len(pending),
        p2p=p2p,
        to_confirm=to_confirm,
    )


def routes() -> list[BaseRoute]:
    return [
        page("/s/{scheme}/me", home, roles=MEMBERS),
        *member_claims.routes(),
        *member_receipts.routes(),
        *member_offers.routes(),
        *member_data.routes(),
    ]
