"""How far back a claim may be dated (the scheme's `claim_days_back`), on the forms that log
hours: the date field's earliest day and a hint saying so, and the refusal of a date before it
in the visitor's words."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from api.problems import Problem

from .i18n import translations
from .visit import Visit


async def date_limits(v: Visit) -> dict[str, Any]:
    """For a log form's template: `today`, `days_back` (None: any day), `earliest` (ISO, or
    ""), `date_hint` and `date_attrs` (the input's `min`, or "")."""
    scheme = await v.act("GET", "/schemes/{scheme}")
    today = v.services.bank.today()
    days: int | None = scheme.claim_days_back
    earliest = today - timedelta(days=days) if days is not None else None
    return {
        "today": today.isoformat(),
        "days_back": days,
        "earliest": earliest.isoformat() if earliest else "",
        "date_hint": _hint(v, days) if days is not None else "",
        "date_attrs": f'min="{earliest.isoformat()}"' if earliest else "",
    }


def _hint(v: Visit, days: int) -> str:
    if days == 0:
        return v._("You can claim for today only.")
    return translations(v.lang).ngettext(
        "You can claim for up to %(num)d day ago.",
        "You can claim for up to %(num)d days ago.",
        days,
    ) % {"num": days}


def too_far_back(v: Visit, p: Problem, limits: dict[str, Any], name: str = "date") -> Problem:
    """`p`, with a refusal of the date for being before the scheme's limit said on the date
    field (`name`) in the form's words: how far back, and the earliest day allowed."""
    days, earliest = limits["days_back"], limits["earliest"]
    if days is None or not any(e.get("field") == "date" for e in p.errors):
        return p
    try:
        chosen = date.fromisoformat(v.field(name))
    except ValueError:
        return p
    if chosen.isoformat() >= earliest:
        return p  # refused for another reason (a day still to come)
    if days == 0:
        message = v._("The date is too far back. You can claim for today only.")
    else:
        message = translations(v.lang).ngettext(
            "The date is too far back. You can claim for up to %(num)d day ago, from %(date)s.",
            "The date is too far back. You can claim for up to %(num)d days ago, from %(date)s.",
            days,
        ) % {"num": days, "date": earliest}
    errors = [
        e | {"field": name, "message": message} if e.get("field") == "date" else e for e in p.errors
    ]
    detail = message if p.field == "date" else p.detail
    field = name if p.field == "date" else p.field
    return Problem(p.status, detail, code=p.code, field=field, errors=errors, headers=p.headers)
