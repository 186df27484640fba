"""What the coordinator pages share: who may see them, where they live, and paged reads."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Any, TypeVar

from api.problems import Problem
from identity.auth import ApiRole

from .visit import Visit

E = TypeVar("E", bound=StrEnum)
STAFF = frozenset({ApiRole.COORDINATOR, ApiRole.SCHEME_ADMIN})
PAGE = 500  # the API's largest page
MAX_PAGES = 20  # bounds a runaway loop: 10,000 items at most


def base(v: Visit) -> str:
    return f"/s/{v.scheme}/coordinate"


async def every(v: Visit, path: str, params: dict[str, str], **query: Any) -> list[Any]:
    """All the items of a paged API list (oldest first), up to MAX_PAGES pages."""
    items: list[Any] = []
    cursor = ""
    for _ in range(MAX_PAGES):
        found = await v.act("GET", path, params, query={**query, "cursor": cursor, "limit": PAGE})
        items.extend(found.items)
        cursor = found.next_cursor or ""
        if not cursor:
            break
    return items


async def activity_choices(v: Visit) -> list[tuple[str, str]]:
    """The scheme's activities still in use, as (code, title) for a select."""
    found = await v.act("GET", "/schemes/{scheme}/activities")
    return [(a.code, a.title) for a in found.items if not a.retired]


async def person_to_person(v: Visit) -> bool:
    scheme = await v.act("GET", "/schemes/{scheme}")
    return str(scheme.model.value) == "person-to-person"


def minutes(v: Visit, name: str = "minutes") -> int:
    """A whole number of minutes from the form, or a 422 naming the field."""
    text = v.field(name)
    if not text.isdigit() or not 1 <= int(text) <= 1440:
        raise Problem(422, v._("Minutes must be a whole number from 1 to 1440."), field=name)
    return int(text)


def claim_status(c: Any) -> str:
    """A claim's state in one word: pending, confirmed, rejected or reversed."""
    return "reversed" if c.reversal_seq is not None else str(c.status.value)


def day(v: Visit, name: str = "date") -> date:
    """A date from the form (today when left empty), or a 422 naming the field."""
    text = v.field(name)
    if not text:
        return v.services.bank.today()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise Problem(422, v._("Give a date as YYYY-MM-DD."), field=name) from None


def choice(v: Visit, kind: type[E], name: str, default: str = "") -> E:
    """One of an enum's values from the form, or a 422 naming the field."""
    try:
        return kind(v.field(name) or default)
    except ValueError:
        raise Problem(422, v._("Choose one of the options."), field=name) from None
