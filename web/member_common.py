"""What the member pages share: who "me" is, and the reads several pages make (every one through
the API, as the signed-in member)."""

from __future__ import annotations

from typing import Any

from api.models import ClaimOut, EntryOut
from identity.auth import ApiRole

from .visit import Visit

MEMBERS = frozenset({ApiRole.MEMBER})
M = "/schemes/{scheme}/members/{member}"
PAGE = 500  # the API's largest page
MAX_PAGES = 20  # a member's history is small; this bounds a runaway loop


def me(v: Visit) -> dict[str, str]:
    """The path parameters naming the signed-in member."""
    return {"member": v.who.member or ""}


def base(v: Visit) -> str:
    return f"/s/{v.scheme}/me"


async def every(
    v: Visit,
    path: str,
    params: dict[str, str],
    query: dict[str, Any] | None = None,
    *,
    size: int = PAGE,
) -> list[Any]:
    """All the items of a paged API list (oldest first), up to MAX_PAGES pages of `size`."""
    items: list[Any] = []
    cursor = ""
    for _ in range(MAX_PAGES):
        page = await v.act(
            "GET", path, params, query={**(query or {}), "cursor": cursor, "limit": size}
        )
        items.extend(page.items)
        cursor = page.next_cursor or ""
        if not cursor:
            break
    return items


async def entries(v: Visit) -> list[EntryOut]:
    """The member's ledger entries, oldest first."""
    return await every(v, M + "/entries", me(v))


async def claims(v: Visit, status: str | None = None) -> list[ClaimOut]:
    """Claims the member gave or received (the API shows a member both), oldest first."""
    query = {"status": status} if status else {}
    return await every(v, "/schemes/{scheme}/claims", {}, query)


async def person_to_person(v: Visit) -> bool:
    scheme = await v.act("GET", "/schemes/{scheme}")
    return str(scheme.model.value) == "person-to-person"


def claim_status(c: ClaimOut) -> str:
    """A claim's state in one word: pending, confirmed, rejected or reversed."""
    return "reversed" if c.reversal_seq is not None else str(c.status.value)


async def activity_titles(v: Visit) -> dict[str, str]:
    """Activity code -> title (retired ones too: old claims name them)."""
    found = await v.act("GET", "/schemes/{scheme}/activities")
    return {a.code: a.title for a in found.items}
