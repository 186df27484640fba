"""Logging hours, the member's own claims (My hours), and confirming help received."""

from __future__ import annotations

from datetime import date
from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute

from api.problems import Problem

from .claim_dates import date_limits, too_far_back
from .member_common import (
    MEMBERS,
    activity_titles,
    base,
    claim_status,
    claims,
    person_to_person,
)
from .visit import Visit, page

PRESETS = (15, 30, 60, 90, 120, 180)
STATUSES = ("pending", "confirmed", "rejected", "reversed")


async def _log_context(v: Visit) -> dict[str, Any]:
    found = await v.act("GET", "/schemes/{scheme}/activities")
    activities = [(a.code, a.title) for a in found.items if not a.retired]
    return {
        "activities": activities,
        "presets": _presets(v),
        "p2p": await person_to_person(v),
        **await date_limits(v),  # today, and how far back a claim may be dated
    }


def _presets(v: Visit) -> list[tuple[int, str]]:
    words = {
        15: v._("15 minutes"),
        30: v._("30 minutes"),
        60: v._("1 hour"),
        90: v._("1 and a half hours"),
        120: v._("2 hours"),
        180: v._("3 hours"),
    }
    return [(m, words[m]) for m in PRESETS]


async def log_form(v: Visit) -> Response:
    return v.render("member/log.html", **await _log_context(v))


def _minutes(v: Visit) -> int:
    """The minutes chosen: the custom field when filled in, else the preset picked."""
    custom, preset = v.field("custom_minutes"), v.field("minutes")
    text, name = (custom, "custom_minutes") if custom else (preset, "minutes")
    if not text:
        raise Problem(422, v._("Choose how long you gave, or type the minutes."), field="minutes")
    if not text.isdigit() or not 1 <= int(text) <= 1440:
        raise Problem(422, v._("Minutes must be a whole number from 1 to 1440."), field=name)
    return int(text)


def _on_custom(p: Problem) -> Problem:
    errors = [
        e | {"field": "custom_minutes"} if e.get("field") == "minutes" else e for e in p.errors
    ]
    field = "custom_minutes" if p.field == "minutes" else p.field
    return Problem(p.status, p.detail, code=p.code, field=field, errors=errors)


def _day(v: Visit, today: str) -> date:
    try:
        return date.fromisoformat(v.field("date") or today)
    except ValueError:
        raise Problem(422, v._("Enter the date as year-month-day."), field="date") from None


async def log(v: Visit) -> Response:
    ctx = await _log_context(v)
    try:
        body: dict[str, Any] = {
            "activity": v.field("activity"),
            "date": _day(v, ctx["today"]),
            "minutes": _minutes(v),
            "note": v.field("note"),
        }
        if ctx["p2p"]:
            body["receiver"] = v.field("receiver") or None
        await v.act("POST", "/schemes/{scheme}/claims", body=body, key=v.field("key"))
    except Problem as p:
        if v.field("custom_minutes"):  # the minutes were typed: show the error there
            p = _on_custom(p)
        p = too_far_back(v, p, ctx)
        return v.problem(p, "member/log.html", **ctx)
    notice = v._("Your hours are logged. They are pending until someone confirms them.")
    return v.redirect(f"{base(v)}/claims", notice)


async def my_hours(v: Visit) -> Response:
    status = v.request.query_params.get("status", "")
    if status not in STATUSES:
        status = ""
    mine = [c for c in await claims(v) if c.member == v.who.member]
    shown = [c for c in reversed(mine) if not status or claim_status(c) == status]
    return v.render(
        "member/claims.html",
        claims=[(c, claim_status(c)) for c in shown],
        chosen=status,
        statuses=STATUSES,
        p2p=await person_to_person(v),
        titles=await activity_titles(v),
    )


async def received(v: Visit) -> Response:
    p2p = await person_to_person(v)
    waiting = []
    if p2p:
        found = await claims(v, "pending")
        waiting = [c for c in reversed(found) if c.receiver == v.who.member]
    titles = await activity_titles(v)
    return v.render("member/received.html", claims=waiting, p2p=p2p, titles=titles)


async def confirm(v: Visit) -> Response:
    claim = v.field("claim")
    shown = await v.act("GET", "/schemes/{scheme}/claims/{claim}", {"claim": claim})
    if shown.receiver != v.who.member:
        raise Problem(403, v._("You can confirm only help you received."), field="claim")
    await v.act(
        "POST", "/schemes/{scheme}/claims/{claim}/confirm", {"claim": claim}, key=v.field("key")
    )
    notice = v._("Thank you. You confirmed %(member)s's help.", member=shown.member)
    return v.redirect(f"{base(v)}/received", notice)


def routes() -> list[BaseRoute]:
    return [
        page("/s/{scheme}/me/log", log_form, roles=MEMBERS),
        page("/s/{scheme}/me/log", log, roles=MEMBERS, methods=("POST",)),
        page("/s/{scheme}/me/claims", my_hours, roles=MEMBERS),
        page("/s/{scheme}/me/received", received, roles=MEMBERS),
        page("/s/{scheme}/me/received", confirm, roles=MEMBERS, methods=("POST",)),
    ]
