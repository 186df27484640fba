"""The register for coordinators: members (paged), adding one, finding one by card number; a
member's own page (balance, history, hours logged on their behalf); and a group session."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute

from api.problems import Problem
from identity.auth import ApiRole
from timebank.schemes import Role

from .claim_dates import date_limits, too_far_back
from .coordinator_common import (
    STAFF,
    activity_choices,
    base,
    choice,
    claim_status,
    day,
    every,
    minutes,
    person_to_person,
)
from .visit import Visit, page

M = "/schemes/{scheme}/members/{member}"
LISTED = 50  # members on one page of the register
CHOOSABLE = 100  # members on one page of the group session's checklist


def _roles(v: Visit) -> list[tuple[str, str]]:
    """The roles this visitor may give (a coordinator cannot make scheme admins)."""
    out = [("member", v._("Member")), ("coordinator", v._("Coordinator"))]
    if v.who.role is ApiRole.SCHEME_ADMIN:
        out.append(("scheme-admin", v._("Scheme admin")))
    return out


async def _members_context(v: Visit) -> dict[str, Any]:
    cursor = v.request.query_params.get("cursor", "")
    found = await v.act(
        "GET", "/schemes/{scheme}/members", query={"cursor": cursor, "limit": LISTED}
    )
    return {
        "members": found.items,
        "next_cursor": found.next_cursor,
        "cursor": cursor,
        "roles": _roles(v),
    }


async def members(v: Visit) -> Response:
    return v.render("coordinator/members.html", card="", **await _members_context(v))


async def find_by_card(v: Visit) -> Response:
    """A member by card number, posted (a card number is personal data: never in a URL, where
    access logs, history and Referer headers would keep it)."""
    card = v.field("card")
    try:
        if not card:
            raise Problem(422, v._("No member has that card number."), field="card")
        found = await v.act("GET", "/schemes/{scheme}/cards/{card}", {"card": card})
    except Problem as p:
        shown = Problem(p.status, v._("No member has that card number."), field="card")
        return v.problem(shown, "coordinator/members.html", card=card, **await _members_context(v))
    return v.redirect(f"{base(v)}/members/{found.id}")


async def add_member(v: Visit) -> Response:
    try:
        body = {
            "id": v.field("id"),
            "display_name": v.field("display_name"),
            "roles": [choice(v, Role, "role", "member")],
            "contact": v.field("contact"),
            "card_number": v.field("card_number"),
        }
        added = await v.act("POST", "/schemes/{scheme}/members", body=body, key=v.field("key"))
    except Problem as p:
        return v.problem(p, "coordinator/members.html", card="", **await _members_context(v))
    notice = v._("%(name)s is now a member.", name=added.display_name)
    return v.redirect(f"{base(v)}/members/{added.id}", notice)


async def _member_context(v: Visit) -> dict[str, Any]:
    who = {"member": v.request.path_params["member"]}
    member = await v.act("GET", M, who)
    balance = await v.act("GET", M + "/balance", who)
    entries = await every(v, M + "/entries", who)
    claims = await every(v, "/schemes/{scheme}/claims", {}, member=who["member"])
    return {
        "member": member,
        "balance": balance,
        "entries": list(reversed(entries))[:20],
        "claims": [(c, claim_status(c)) for c in reversed(claims)][:50],
        "activities": await activity_choices(v),
        "p2p": await person_to_person(v),
        **await date_limits(v),  # today, and how far back a claim may be dated
    }


async def member_page(v: Visit) -> Response:
    return v.render("coordinator/member.html", **await _member_context(v))


async def log_for(v: Visit) -> Response:
    """Hours logged for a member without a phone: on their behalf, by this coordinator."""
    ctx = await _member_context(v)
    try:
        body: dict[str, Any] = {
            "member": ctx["member"].id,
            "activity": v.field("activity"),
            "date": day(v),
            "minutes": minutes(v),
            "note": v.field("note"),
        }
        if ctx["p2p"]:
            body["receiver"] = v.field("receiver") or None
        await v.act("POST", "/schemes/{scheme}/claims", body=body, key=v.field("key"))
    except Problem as p:
        return v.problem(too_far_back(v, p, ctx), "coordinator/member.html", **ctx)
    notice = v._("The hours are logged for %(name)s.", name=ctx["member"].display_name)
    return v.redirect(f"{base(v)}/members/{ctx['member'].id}", notice)


async def _group_context(v: Visit) -> dict[str, Any]:
    cursor = v.request.query_params.get("cursor", "")
    found = await v.act(
        "GET", "/schemes/{scheme}/members", query={"cursor": cursor, "limit": CHOOSABLE}
    )
    return {
        "members": [m for m in found.items if not m.erased],
        "next_cursor": found.next_cursor,
        "activities": await activity_choices(v),
        **await date_limits(v),
    }


async def group_form(v: Visit) -> Response:
    return v.render("coordinator/group.html", **await _group_context(v))


async def group(v: Visit) -> Response:
    try:
        chosen = list(dict.fromkeys(v.fields("members")))
        if not chosen:
            raise Problem(422, v._("Choose at least one member."), field="members")
        body = {
            "members": chosen,
            "activity": v.field("activity"),
            "date": day(v),
            "minutes": minutes(v),
            "note": v.field("note"),
        }
        done = await v.act("POST", "/schemes/{scheme}/claims/group", body=body, key=v.field("key"))
    except Problem as p:
        ctx = await _group_context(v)
        return v.problem(too_far_back(v, p, ctx), "coordinator/group.html", **ctx)
    notice = v._("Hours logged. Members in the session: %(n)s.", n=len(done.items))
    return v.redirect(base(v), notice)


def routes() -> list[BaseRoute]:
    return [
        page("/s/{scheme}/coordinate/members", members, roles=STAFF),
        page("/s/{scheme}/coordinate/members", add_member, roles=STAFF, methods=("POST",)),
        page("/s/{scheme}/coordinate/cards", find_by_card, roles=STAFF, methods=("POST",)),
        page("/s/{scheme}/coordinate/members/{member}", member_page, roles=STAFF),
        page("/s/{scheme}/coordinate/members/{member}", log_for, roles=STAFF, methods=("POST",)),
        page("/s/{scheme}/coordinate/group", group_form, roles=STAFF),
        page("/s/{scheme}/coordinate/group", group, roles=STAFF, methods=("POST",)),
    ]
