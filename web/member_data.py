"""The member's personal data: what the scheme holds about them, all of it as a JSON download,
and asking for erasure (which signs them out everywhere)."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute

from api.models import dump
from api.problems import Problem

from .member_common import MEMBERS, M, activity_titles, claims, entries, every, me, person_to_person
from .member_offers import my_vouchers
from .visit import SESSION_COOKIE, Visit, page


async def _held(v: Visit) -> dict[str, Any]:
    """Everything the scheme holds about the member, as the API shows it to them."""
    member = await v.act("GET", M, me(v))
    mine = {"member": v.who.member or ""}
    held: dict[str, Any] = {
        "scheme": v.scheme,
        "member": dump(member),
        "balance_minutes": (await v.act("GET", M + "/balance", me(v))).minutes,
        "claims": [dump(c) for c in await claims(v)],
        "entries": [dump(e) for e in await entries(v)],
        "vouchers": [dump(x) for x in await my_vouchers(v)],
    }
    if await person_to_person(v):
        held["offers"] = [
            dump(o) for o in await every(v, "/schemes/{scheme}/offers", {}, mine, size=200)
        ]
        held["requests"] = [
            dump(r) for r in await every(v, "/schemes/{scheme}/requests", {}, mine, size=200)
        ]
    return held


def _word(v: Visit) -> str:
    return v._("ERASE")


async def show(v: Visit) -> Response:
    return v.render(
        "member/data.html", held=await _held(v), word=_word(v), titles=await activity_titles(v)
    )


async def download(v: Visit) -> Response:
    held = await _held(v)
    name = f"my-data-{v.scheme}-{v.who.member}.json"
    return Response(
        json.dumps(held, indent=2, ensure_ascii=False) + "\n",
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


async def erase(v: Visit) -> Response:
    word = _word(v)
    try:
        if v.field("confirm").casefold() != word.casefold():
            message = v._(
                "Type %(word)s to confirm, or leave this page to keep your data.", word=word
            )
            raise Problem(422, message, field="confirm")
        await v.act("POST", M + "/erase", me(v), key=v.field("key"))
    except Problem as p:
        held, titles = await _held(v), await activity_titles(v)
        return v.problem(p, "member/data.html", held=held, word=word, titles=titles)
    assert v.account is not None
    await v.book.revoke_login(v.account.login)
    v.cookies.append((SESSION_COOKIE, "", 0))
    notice = v._("Your personal data has been erased and you have been signed out.")
    return v.redirect("/sign-in", notice)


def routes() -> list[BaseRoute]:
    return [
        page("/s/{scheme}/me/data", show, roles=MEMBERS),
        page("/s/{scheme}/me/data/download", download, roles=MEMBERS),
        page("/s/{scheme}/me/data/erase", erase, roles=MEMBERS, methods=("POST",)),
    ]
