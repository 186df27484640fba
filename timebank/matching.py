"""Offers and requests for help ("capabilities and needs") and how they match. Pure: no I/O.

A member offers skills in an area (a short place code such as a postcode district, "CF10"; not
the public-service `ServiceArea` of an activity) and asks for help the same way. A request is
matched to other members' active offers by shared skills, then same area, then the oldest offer
first. A match leads to an exchange or a claim; none of this goes on the ledger, and the free-text
notes are personal: kept out of reprs, they are only ever stored in the time bank's own tables.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

MAX_SKILLS = 10
MAX_TEXT = 500
_SKILL = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
_AREA = re.compile(r"[A-Z0-9](?:[A-Z0-9 -]{0,38}[A-Z0-9])?")
_SEPARATORS = re.compile(r"[\s_]+")


@dataclass(frozen=True, slots=True)
class Offer:
    """What a member can do, where and when."""

    scheme: str
    id: str
    member: str
    skills: tuple[str, ...]
    area: str
    availability: str
    note: str = field(repr=False)
    active: bool
    created_us: int


@dataclass(frozen=True, slots=True)
class HelpRequest:
    """Help a member asks for, where and when."""

    scheme: str
    id: str
    member: str
    skills: tuple[str, ...]
    area: str
    when: str
    note: str = field(repr=False)
    open: bool
    created_us: int


@dataclass(frozen=True, slots=True)
class Match:
    """An offer that can meet a request: the skills they share and whether the area is the same."""

    offer: Offer
    shared_skills: tuple[str, ...]
    same_area: bool


@dataclass(frozen=True, slots=True)
class AreaSummary:
    """One area's open requests and active offers, counted per skill (for coordinators)."""

    area: str
    open_requests: int
    active_offers: int
    needed: dict[str, int]  # skill -> open requests asking for it
    offered: dict[str, int]  # skill -> active offers of it

    @property
    def unmet(self) -> tuple[str, ...]:
        """Skills asked for in this area that nobody here offers."""
        return tuple(sorted(s for s in self.needed if s not in self.offered))


def normalise_skill(skill: str) -> str:
    """Lower case, with runs of spaces and '_' as one '-': " Home  Repairs" -> "home-repairs"."""
    return _SEPARATORS.sub("-", skill.strip().lower()).strip("-")


def normalise_skills(skills: Iterable[str]) -> tuple[str, ...]:
    """Each skill normalised, blanks and repeats dropped, sorted: the canonical form. A single
    string is read as a comma-separated list ("DIY, gardening")."""
    if isinstance(skills, str):
        skills = skills.split(",")
    return tuple(sorted({s for s in (normalise_skill(x) for x in skills) if s}))


def normalise_area(area: str) -> str:
    """Upper case, with runs of spaces as one: " cf10 " -> "CF10"."""
    return " ".join(area.upper().split())


def _common_problems(
    skills: tuple[str, ...], area: str, texts: tuple[tuple[str, str], ...]
) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if not 1 <= len(skills) <= MAX_SKILLS:
        out.append(("skills", f"1 to {MAX_SKILLS} skills"))
    if skills != normalise_skills(skills) or not all(_SKILL.fullmatch(s) for s in skills):
        out.append(("skills", "skills of up to 40 characters of a-z, 0-9 and '-'"))
    if not _AREA.fullmatch(area):
        out.append(("area", "an area code of 1 to 40 characters of A-Z, 0-9, ' ' and '-'"))
    for name, text in texts:
        if len(text) > MAX_TEXT:
            out.append((name, f"at most {MAX_TEXT} characters"))
    return out


def offer_problems(o: Offer) -> list[tuple[str, str]]:
    """What is wrong with an offer, as (field, message); empty when it may be stored."""
    texts = (("availability", o.availability), ("note", o.note))
    return _common_problems(o.skills, o.area, texts)


def request_problems(r: HelpRequest) -> list[tuple[str, str]]:
    """What is wrong with a request, as (field, message); empty when it may be stored."""
    return _common_problems(r.skills, r.area, (("when", r.when), ("note", r.note)))


def matches(request: HelpRequest, offers: Iterable[Offer], limit: int = 20) -> list[Match]:
    """Other members' active offers in the request's scheme sharing at least one skill, best
    first: most shared skills, then the same area, then the oldest offer. A closed request has
    no matches."""
    if not request.open or limit < 1:
        return []
    wanted = set(request.skills)
    found = []
    for o in offers:
        if not o.active or o.member == request.member or o.scheme != request.scheme:
            continue
        shared = tuple(s for s in o.skills if s in wanted)
        if shared:
            found.append(Match(o, shared, o.area == request.area))
    found.sort(
        key=lambda m: (-len(m.shared_skills), not m.same_area, m.offer.created_us, m.offer.id)
    )
    return found[:limit]


def needs_and_capabilities(
    offers: Iterable[Offer], requests: Iterable[HelpRequest]
) -> list[AreaSummary]:
    """Per area (sorted), the open requests and active offers and their skills; closed requests
    and withdrawn offers are left out."""
    needed: dict[str, Counter[str]] = {}
    offered: dict[str, Counter[str]] = {}
    n_requests: Counter[str] = Counter()
    n_offers: Counter[str] = Counter()
    for r in requests:
        if r.open:
            n_requests[r.area] += 1
            needed.setdefault(r.area, Counter()).update(r.skills)
    for o in offers:
        if o.active:
            n_offers[o.area] += 1
            offered.setdefault(o.area, Counter()).update(o.skills)
    out = []
    for area in sorted(set(n_requests) | set(n_offers)):
        need = dict(sorted(needed.get(area, Counter()).items()))
        have = dict(sorted(offered.get(area, Counter()).items()))
        out.append(AreaSummary(area, n_requests[area], n_offers[area], need, have))
    return out
