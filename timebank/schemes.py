"""Schemes and members: the time bank's tenants and people. Pure: no I/O.

A scheme is one time bank or time-credit programme and owns one ledger of the same id. A member's
ledger account is pseudonymous (`member:<id>`): names, contacts and equality-monitoring answers
live in the time bank's tables, never in the ledger, so erasing a person leaves the ledger whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from .claims import ClaimRules, SchemeModel

ISSUANCE_ACCOUNT = "scheme:issuance"
EXPIRED_ACCOUNT = "scheme:expired"
_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{1,62}")
_MEMBER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,39}")


class Role(StrEnum):
    MEMBER = "member"
    COORDINATOR = "coordinator"
    SCHEME_ADMIN = "scheme-admin"


@dataclass(frozen=True, slots=True)
class Scheme:
    id: str  # also its ledger's id
    name: str
    rules: ClaimRules
    member_floor: int = 0  # minutes; negative in a person-to-person bank (e.g. -600)
    credit_expiry_months: int | None = None
    auto_accept_hours: int | None = None  # person-to-person: unanswered claims accept after


@dataclass(frozen=True, slots=True)
class Member:
    scheme: str
    id: str
    display_name: str
    roles: frozenset[Role] = frozenset({Role.MEMBER})
    contact: str = ""
    card_number: str = ""  # printed card, for members without a phone
    attributes: dict[str, str] = field(default_factory=dict)  # consented monitoring answers
    erased: bool = False  # right to erasure exercised: details blanked, id kept as a pseudonym

    @property
    def account(self) -> str:
        return member_account(self.id)


# Equality-monitoring questions (all optional) and the answers each allows (None: short text).
MONITORING: dict[str, frozenset[str] | None] = {
    "age_band": frozenset(
        {
            "under-18",
            "18-24",
            "25-34",
            "35-44",
            "45-54",
            "55-64",
            "65-74",
            "75-plus",
            "prefer-not-to-say",
        }
    ),
    "area_code": None,  # e.g. a postcode district or LSOA code
    "gender": None,
    "disability": frozenset({"yes", "no", "prefer-not-to-say"}),
    "ethnicity": None,
    "deprivation_decile": frozenset(str(n) for n in range(1, 11)),
    "participant_role": frozenset({"tenant", "patient", "carer", "volunteer", "community-group"}),
}
CONSENT = "consent"  # attributes["consent"] == "yes": the member agreed to the answers kept


def member_account(member_id: str) -> str:
    return f"member:{member_id}"


def scheme_problems(s: Scheme) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if not _SLUG.fullmatch(s.id):
        out.append(("id", "2-63 characters of a-z, 0-9 and '-'"))
    if not s.name.strip() or len(s.name) > 200:
        out.append(("name", "a name of 1 to 200 characters"))
    if s.rules.model is SchemeModel.TIME_CREDITS and s.member_floor != 0:
        out.append(("member_floor", "members of a time-credit scheme cannot go below 0"))
    if s.member_floor > 0 or s.member_floor < -100 * 60:
        out.append(("member_floor", "a floor from -6000 minutes (100 hours) to 0"))
    if s.credit_expiry_months is not None and not 1 <= s.credit_expiry_months <= 120:
        out.append(("credit_expiry_months", "1 to 120 months, or none"))
    if s.auto_accept_hours is not None and not 1 <= s.auto_accept_hours <= 24 * 90:
        out.append(("auto_accept_hours", "1 to 2160 hours, or none"))
    return out


def member_problems(m: Member) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if not _MEMBER_ID.fullmatch(m.id):
        out.append(("id", "1-40 characters of letters, digits and '-'"))
    if not m.display_name.strip() or len(m.display_name) > 120:
        out.append(("display_name", "a name of 1 to 120 characters"))
    if not m.roles:
        out.append(("roles", "at least one role"))
    if len(m.contact) > 200 or len(m.card_number) > 40:
        out.append(("contact" if len(m.contact) > 200 else "card_number", "too long"))
    out += monitoring_problems(m.attributes)
    return out


def monitoring_problems(answers: dict[str, str]) -> list[tuple[str, str]]:
    """Equality-monitoring answers: known questions, allowed answers, and the member's consent."""
    out: list[tuple[str, str]] = []
    for question, answer in answers.items():
        if question == CONSENT:
            continue
        allowed = MONITORING.get(question, frozenset())
        where = f"attributes.{question}"
        if question not in MONITORING:
            out.append((where, "not an equality-monitoring question"))
        elif allowed is None and not 0 < len(answer) <= 60:
            out.append((where, "an answer of 1 to 60 characters"))
        elif allowed is not None and answer not in allowed:
            out.append((where, f"one of {', '.join(sorted(allowed))}"))
    if set(answers) - {CONSENT} and answers.get(CONSENT) != "yes":
        out.append(("attributes.consent", "monitoring answers are kept only with consent: yes"))
    return out
