"""Partners, venues, agreements, offers and vouchers: what a scheme's credits can be spent on.
Pure: no I/O.

A partner organisation takes a scheme's credits only under an agreement with that scheme
(dates, the offers and venues it covers); each partner has one ledger account per scheme,
`partner:<id>`, where settled vouchers land. A voucher is a ledger reservation: its state
(pending, posted, voided, expired) is the ledger's, never a copy kept here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
MAX_CREDITS = 100  # per offer
MAX_PENCE = 10_000_000  # £100,000: an offer's usual cash price


class Sector(StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"
    THIRD = "third-sector"


class VoucherState(StrEnum):
    PENDING = "pending"  # credits reserved, not yet used
    SETTLED = "posted"  # used at the till: the credits moved to the partner
    VOIDED = "voided"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Partner:
    id: str
    name: str
    sector: Sector


@dataclass(frozen=True, slots=True)
class Venue:
    partner: str
    id: str
    name: str
    area: str = ""


@dataclass(frozen=True, slots=True)
class Offer:
    partner: str
    id: str
    title: str
    credits: int  # whole credits (hours) a voucher costs
    cash_price_pence: int  # the venue's usual price: what members received, never a credit's value
    starts: date
    ends: date | None = None
    per_day: int | None = None  # vouchers issued per day at most (voided ones don't count)
    per_week: int | None = None  # ... per ISO week (Monday to Sunday)
    eligibility: str = ""  # who may take it, in words shown to members


@dataclass(frozen=True, slots=True)
class Agreement:
    """A partner takes `scheme`'s credits for these offers at these venues, between the dates."""

    scheme: str
    partner: str
    offers: frozenset[str]
    venues: frozenset[str]
    starts: date
    ends: date | None = None
    voucher_hours: int = 48  # how long a voucher is valid
    monthly_cap: int | None = None  # credits the partner takes per calendar month at most

    def covers(self, offer: str, day: date) -> bool:
        return (
            offer in self.offers and self.starts <= day and (self.ends is None or day <= self.ends)
        )


@dataclass(frozen=True, slots=True)
class Voucher:
    scheme: str
    code: str
    member: str
    partner: str
    offer: str
    minutes: int
    reservation: int  # the ledger entry that reserved the credits
    expires_us: int
    state: VoucherState = VoucherState.PENDING
    venue: str | None = None  # where it was settled
    settled_by: int | None = None  # the ledger entry that settled it
    settled_us: int | None = None  # when (the settling entry's time)


def partner_account(partner_id: str) -> str:
    return f"partner:{partner_id}"


def id_problem(value: str, field: str) -> tuple[str, str] | None:
    return None if _ID.fullmatch(value) else (field, "1-40 characters of a-z, 0-9 and '-'")


def offer_problems(o: Offer) -> list[tuple[str, str]]:
    out = [p for p in (id_problem(o.id, "id"), id_problem(o.partner, "partner")) if p]
    if not o.title.strip() or len(o.title) > 200:
        out.append(("title", "a title of 1 to 200 characters"))
    if not 1 <= o.credits <= MAX_CREDITS:
        out.append(("credits", f"1 to {MAX_CREDITS} credits"))
    if not 0 <= o.cash_price_pence <= MAX_PENCE:
        out.append(("cash_price_pence", f"0 to {MAX_PENCE} pence"))
    if o.ends is not None and o.ends < o.starts:
        out.append(("ends", "ends before it starts"))
    for name, cap in (("per_day", o.per_day), ("per_week", o.per_week)):
        if cap is not None and not 1 <= cap <= 100_000:
            out.append((name, "1 to 100000, or none"))
    if len(o.eligibility) > 500:
        out.append(("eligibility", "at most 500 characters"))
    return out


def agreement_problems(a: Agreement) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if not a.offers:
        out.append(("offers", "at least one offer"))
    if not a.venues:
        out.append(("venues", "at least one venue"))
    if a.ends is not None and a.ends < a.starts:
        out.append(("ends", "ends before it starts"))
    if not 1 <= a.voucher_hours <= 24 * 90:
        out.append(("voucher_hours", "1 to 2160 hours"))
    if a.monthly_cap is not None and not 1 <= a.monthly_cap <= 1_000_000:
        out.append(("monthly_cap", "1 to 1000000 credits, or none"))
    return out


def day_bounds_us(day: date, days: int = 1) -> tuple[int, int]:
    """[start, end) of `days` days from `day`, in µs since the epoch (UTC)."""
    start = (day.toordinal() - date(1970, 1, 1).toordinal()) * 86_400_000_000
    return start, start + days * 86_400_000_000


def month_bounds_us(day: date) -> tuple[int, int]:
    first = day.replace(day=1)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return day_bounds_us(first)[0], day_bounds_us(following)[0]
