"""A scheme's books for a period: credits issued, redeemed, expired and reversed, and what is
outstanding, by member and by partner.

The identity the books keep, for every scheme and period (all in integer minutes):

    opening outstanding + issued - redeemed - expired - reversed = closing outstanding

Outstanding is what members hold: the balances of the `member:<id>` accounts plus the ledger's
`@reserved` account (minutes held by pending vouchers are still the members'). Every posting of
every entry is classified by its account, and since each entry sums to zero, an entry's change
to the outstanding is exactly the minutes it moved to or from the accounts outside it:

- `scheme:issuance`: minutes leaving it are issued (a confirmed time-credit claim);
- `scheme:expired`: minutes into it are expired (credit older than the scheme's expiry period);
- `partner:<id>` and `scheme:retired`: minutes into them are redeemed (a voucher's reservation
  posted to the partner); a transfer from a partner to `scheme:retired` (the scheme retiring the
  partner's credits) moves nothing out of the outstanding and is counted as `retired`;
- a `reverse` entry's whole effect on the outstanding is `reversed` (the reversal of a claim's
  credits moves them back to issuance), whatever the entry it negates.

A reservation (member -> `@reserved`), its void and its expiry (back to the member) leave the
outstanding as it was; a person-to-person scheme moves minutes member to member, so it issues
nothing and its outstanding (members' balances, some below zero) stays 0. An account of any
other kind fails loudly, as does a fold that does not balance.

`books_from_entries` is pure; `scheme_books` streams a scheme's ledger (read-only, in one
snapshot, keeping no entries) through the same fold.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import cast

from ledger import InvalidRequest, LedgerStore, NotFound
from ledger import storage as ledger_storage
from ledger.model import RESERVED_ACCOUNT, Entry, EntryKind, check_ledger_id

from .schemes import EXPIRED_ACCOUNT, ISSUANCE_ACCOUNT

RETIRED_ACCOUNT = "scheme:retired"  # partners' redeemed credits, retired by the scheme
MEMBER_PREFIX = "member:"
PARTNER_PREFIX = "partner:"
DAY_US = 86_400_000_000
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


@dataclass(frozen=True, slots=True)
class Books:
    """A scheme's books for the UTC days `start` to `end` inclusive, in minutes.

    `by_member` (member id -> minutes) is what each member holds at the close, their pending
    vouchers' minutes included; `by_partner` (partner id -> minutes) is each partner's balance at
    the close: credits redeemed and not yet retired. Both name every account that any entry up to
    the close touched (zeros included).
    """

    scheme: str
    start: date
    end: date
    opening_outstanding: int
    issued: int
    redeemed: int
    expired: int
    reversed: int
    retired: int
    closing_outstanding: int
    balanced: bool
    by_member: dict[str, int]
    by_partner: dict[str, int]
    redeemed_by_partner: dict[str, int] = field(default_factory=dict)  # in the period

    def __post_init__(self) -> None:
        assert self.balanced == (
            self.opening_outstanding + self.issued - self.redeemed - self.expired - self.reversed
            == self.closing_outstanding
        ), "`balanced` must say whether the books' identity holds"


def day_start_us(day: date) -> int:
    """The first microsecond of a UTC day, since the epoch."""
    return (day.toordinal() - _EPOCH_ORDINAL) * DAY_US


class _Fold:
    """The books folded from a ledger's entries in sequence order, one entry at a time."""

    def __init__(self, scheme: str, start: date, end: date, size: int | None = None) -> None:
        check_ledger_id(scheme, "scheme")
        if end < start:
            raise InvalidRequest("the period ends before it starts", field="end")
        self.scheme, self.start, self.end = scheme, start, end
        self.start_us = day_start_us(start)
        self.end_us = day_start_us(end) + DAY_US  # exclusive
        self.last_seq = 0
        self.size = size  # fold entries up to this sequence number only (a checkpoint's size)
        self.partner_flows: dict[str, int] = {}  # minutes each partner redeemed in the period
        self.last_time_us = 0
        self.outstanding = 0
        self.opening: int | None = None  # fixed at the first entry of (or after) the period
        self.issued = self.redeemed = self.expired = self.reversed = self.retired = 0
        self.members: dict[str, int] = {}  # account -> balance
        self.partners: dict[str, int] = {}
        self.reserved = 0  # the @reserved account's balance
        self.open: dict[int, tuple[str, int]] = {}  # pending reservation seq -> (debit, minutes)

    def add(self, e: Entry) -> bool:
        """Fold in the next entry; False (nothing folded) once the entry is past the period."""
        assert e.ledger == self.scheme, f"entry {e.seq} is of ledger {e.ledger!r}"
        assert e.seq > self.last_seq, f"entries out of order: {e.seq} after {self.last_seq}"
        assert e.time_us >= self.last_time_us, f"entry {e.seq} is dated before entry {e.seq - 1}"
        if e.time_us >= self.end_us or (self.size is not None and e.seq > self.size):
            return False
        if self.opening is None and e.time_us >= self.start_us:
            self.opening = self.outstanding
        self.last_seq, self.last_time_us = e.seq, e.time_us
        held = issuance = expired = redeemed = retired = reserved = 0  # this entry's flows
        for p in e.postings:
            account, amount = p.account, p.amount
            if account.startswith(MEMBER_PREFIX):
                self.members[account] = self.members.get(account, 0) + amount
                held += amount
            elif account == RESERVED_ACCOUNT:
                reserved += amount
                held += amount
            elif account.startswith(PARTNER_PREFIX):
                self.partners[account] = self.partners.get(account, 0) + amount
                redeemed += amount
            elif account == ISSUANCE_ACCOUNT:
                issuance -= amount  # leaving issuance: issued
            elif account == EXPIRED_ACCOUNT:
                expired += amount
            elif account == RETIRED_ACCOUNT:
                retired += amount
                redeemed += amount  # out of the outstanding, as a partner's would be
            else:
                raise ValueError(
                    f"entry {e.seq} of {self.scheme} posts to {account!r}, an account the "
                    "books do not classify"
                )
        assert held == issuance - expired - redeemed, f"entry {e.seq} does not balance"
        self._check_reserved(e, reserved)
        self.reserved += reserved
        self.outstanding += held
        if e.time_us < self.start_us:
            return True  # before the period: only the opening balances move
        for p in e.postings if e.kind is EntryKind.POST else ():  # vouchers settled
            if p.account.startswith(PARTNER_PREFIX):
                self.partner_flows[p.account] = self.partner_flows.get(p.account, 0) + p.amount
        if e.kind is EntryKind.REVERSE:
            self.reversed -= held
        else:
            self.issued += issuance
            self.expired += expired
            self.redeemed += redeemed
        self.retired += retired
        return True

    def _check_reserved(self, e: Entry, reserved: int) -> None:
        """What the entry's kind says it does to @reserved, it does: the ledger's rules."""
        if e.kind is EntryKind.RESERVE:
            debits = [p for p in e.postings if p.account != RESERVED_ACCOUNT]
            assert reserved > 0 and len(debits) == 1 and debits[0].amount == -reserved, e.seq
            self.open[e.seq] = (debits[0].account, reserved)
        elif e.kind in (EntryKind.POST, EntryKind.VOID, EntryKind.EXPIRE):
            found = self.open.pop(e.ref, None)
            assert found is not None, f"entry {e.seq} resolves {e.ref}, not a pending reservation"
            debit, minutes = found
            assert reserved == -minutes, f"entry {e.seq} releases {-reserved} of {minutes}"
            if e.kind is not EntryKind.POST:
                assert e.amount_for(debit) == minutes, f"entry {e.seq} does not give back {debit}"
        else:
            assert reserved == 0, f"a {e.kind} entry ({e.seq}) moves @reserved"

    def books(self) -> Books:
        assert self.reserved == sum(m for _, m in self.open.values()), "@reserved disagrees"
        opening = self.outstanding if self.opening is None else self.opening
        closing = self.outstanding
        assert closing == sum(self.members.values()) + self.reserved
        balanced = opening + self.issued - self.redeemed - self.expired - self.reversed == closing
        assert balanced, (
            f"{self.scheme} {self.start}..{self.end}: {opening} + {self.issued} - "
            f"{self.redeemed} - {self.expired} - {self.reversed} != {closing}"
        )
        by_member = {a.removeprefix(MEMBER_PREFIX): b for a, b in self.members.items()}
        others = 0  # reserved for a debit that is not a member's (still outstanding)
        for debit, minutes in self.open.values():
            if debit.startswith(MEMBER_PREFIX):
                by_member[debit.removeprefix(MEMBER_PREFIX)] += minutes
            else:
                others += minutes
        assert sum(by_member.values()) + others == closing
        return Books(
            self.scheme, self.start, self.end, opening, self.issued, self.redeemed,
            self.expired, self.reversed, self.retired, closing, balanced,
            dict(sorted(by_member.items())),
            {a.removeprefix(PARTNER_PREFIX): b for a, b in sorted(self.partners.items())},
            {a.removeprefix(PARTNER_PREFIX): b for a, b in sorted(self.partner_flows.items())},
        )  # fmt: skip


def books_from_entries(scheme: str, start: date, end: date, entries: Iterable[Entry]) -> Books:
    """The books of `scheme` for UTC days `start`..`end` (inclusive), from its ledger's entries
    in sequence order from the first (later entries may follow; they are not read)."""
    fold = _Fold(scheme, start, end)
    for e in entries:
        if not fold.add(e):
            break
    return fold.books()


async def scheme_books(
    ledger: LedgerStore, scheme: str, start: date, end: date, *, size: int | None = None
) -> Books:
    """The books of `scheme` for UTC days `start`..`end` (inclusive), streamed from its ledger
    in one read snapshot; memory is bounded by the accounts and pending reservations, not by
    the entries. The stream stops at the period's end (entry times never go back), or after
    entry `size` when given (a report's checkpoint)."""
    fold = _Fold(scheme, start, end, size)
    engine = ledger_storage.make_engine(ledger.url, deferred=True)
    try:
        async with engine.connect() as conn:
            if await conn.run_sync(ledger_storage.read_head, scheme) is None:
                raise NotFound(f"no scheme ledger {scheme!r}", field="scheme")
            stream = cast(AsyncGenerator[Entry, None], ledger_storage.stream_entries(conn, scheme))
            async with contextlib.aclosing(stream):
                async for e in stream:
                    if not fold.add(e):
                        break
    finally:
        await engine.dispose()
    return fold.books()
