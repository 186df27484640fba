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
snapshot, keeping no entries) through the same fold. `scheme_books_sql` (`books_at` on a sync
connection) gets the same numbers from the database without reading every entry, which is what
reports use: the fold's sums are linear, so

- the entries folded are those up to `hi`, the last entry of the checkpoint dated before the
  period's end, and the period's are those after `lo`, the last one dated before its start
  (entry times never go back, so both are found by bisecting the sequence numbers);
- each account's balance after entry `x` is the sum of its postings up to `x`, or, when fewer
  entries follow `x` than precede it, its stored balance (a cache of that sum which `verify`
  recomputes, invariant 6) less the postings after `x`: a report at the head reads a handful;
- the period's flows by account class are the differences of the class's balances at `hi` and
  `lo`, less what its `reverse` entries posted (read by their kind, as are the settlements
  that make `redeemed_by_partner` and the reservations still open at `hi`).

An account that no entry up to `hi` touched is left out, as the fold leaves it out.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import cast

from sqlalchemy.engine import Connection

from ledger import (
    RESERVED_ACCOUNT,
    Entry,
    EntryKind,
    InvalidRequest,
    LedgerStore,
    LedgerSums,
    NotFound,
    check_ledger_id,
    make_engine,
    read_head,
    stream_entries,
)

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


class Fold:
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
            self.scheme,
            self.start,
            self.end,
            opening,
            self.issued,
            self.redeemed,
            self.expired,
            self.reversed,
            self.retired,
            closing,
            balanced,
            dict(sorted(by_member.items())),
            {a.removeprefix(PARTNER_PREFIX): b for a, b in sorted(self.partners.items())},
            {a.removeprefix(PARTNER_PREFIX): b for a, b in sorted(self.partner_flows.items())},
        )


def books_from_entries(scheme: str, start: date, end: date, entries: Iterable[Entry]) -> Books:
    """The books of `scheme` for UTC days `start`..`end` (inclusive), from its ledger's entries
    in sequence order from the first (later entries may follow; they are not read)."""
    fold = Fold(scheme, start, end)
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
    fold = Fold(scheme, start, end, size)
    engine = make_engine(ledger.url, deferred=True)
    try:
        async with engine.connect() as conn:
            if await conn.run_sync(read_head, scheme) is None:
                raise NotFound(f"no scheme ledger {scheme!r}", field="scheme")
            stream = cast(AsyncGenerator[Entry, None], stream_entries(conn, scheme))
            async with contextlib.aclosing(stream):
                async for e in stream:
                    if not fold.add(e):
                        break
    finally:
        await engine.dispose()
    return fold.books()


# ---- the same books, summed in the database ------------------------------------------------


def _account_class(account: str) -> str | None:
    """How the fold classifies an account's postings (None: it does not)."""
    if account.startswith(MEMBER_PREFIX):
        return "member"
    if account.startswith(PARTNER_PREFIX):
        return "partner"
    return {
        RESERVED_ACCOUNT: "reserved",
        ISSUANCE_ACCOUNT: "issuance",
        EXPIRED_ACCOUNT: "expired",
        RETIRED_ACCOUNT: "retired",
    }.get(account)


def _by_class(sums: dict[str, int]) -> dict[str | None, int]:
    out: dict[str | None, int] = {}
    for account, amount in sums.items():
        kind = _account_class(account)
        out[kind] = out.get(kind, 0) + amount
    return out


def books_at(
    conn: Connection, scheme: str, start: date, end: date, *, size: int | None = None
) -> Books:
    """What `scheme_books` says, summed in the database in the caller's (read) transaction
    instead of folded entry by entry (see the module's docstring): the same `Books`, the
    same refusals."""
    check_ledger_id(scheme, "scheme")
    if end < start:
        raise InvalidRequest("the period ends before it starts", field="end")
    head = read_head(conn, scheme)
    if head is None:
        raise NotFound(f"no scheme ledger {scheme!r}", field="scheme")
    sums = LedgerSums(conn, scheme, head.seq)
    top = head.seq if size is None else min(size, head.seq)
    hi = sums.last_before(top, day_start_us(end) + DAY_US)  # the fold's last entry
    lo = sums.last_before(hi, day_start_us(start))  # the last before the period
    unknown = sorted(
        (first, code)
        for code, (_, first) in sums.accounts.items()
        if first is not None and first <= hi and _account_class(code) is None
    )
    if unknown:
        raise ValueError(
            f"entry {unknown[0][0]} of {scheme} posts to {unknown[0][1]!r}, an account the "
            "books do not classify"
        )
    close = sums.balances(hi)
    at_close, at_open = _by_class(close), _by_class(sums.balances(lo))
    undone = _by_class(sums.of_kind(EntryKind.REVERSE, lo, hi))  # reversals in the period

    def moved(kind: str) -> int:  # by the period's entries other than reversals
        return at_close.get(kind, 0) - at_open.get(kind, 0) - undone.get(kind, 0)

    opening = at_open.get("member", 0) + at_open.get("reserved", 0)
    closing = at_close.get("member", 0) + at_close.get("reserved", 0)
    issued, expired = -moved("issuance"), moved("expired")
    redeemed = moved("partner") + moved("retired")
    reversed_ = -(undone.get("member", 0) + undone.get("reserved", 0))
    retired = at_close.get("retired", 0) - at_open.get("retired", 0)
    balanced = opening + issued - redeemed - expired - reversed_ == closing
    assert balanced, (
        f"{scheme} {start}..{end}: {opening} + {issued} - {redeemed} - {expired} - "
        f"{reversed_} != {closing}"
    )
    by_member = {
        a.removeprefix(MEMBER_PREFIX): b for a, b in close.items() if a.startswith(MEMBER_PREFIX)
    }
    held = others = 0  # minutes of the reservations open at the close, and of non-members'
    for _seq, debit, amount in sums.open_reservations(hi):
        held -= amount
        if debit.startswith(MEMBER_PREFIX):
            by_member[debit.removeprefix(MEMBER_PREFIX)] -= amount
        else:
            others -= amount
    assert held == close.get(RESERVED_ACCOUNT, 0), "@reserved disagrees"
    assert sum(by_member.values()) + others == closing
    settled = sums.of_kind(EntryKind.POST, lo, hi)
    return Books(
        scheme,
        start,
        end,
        opening,
        issued,
        redeemed,
        expired,
        reversed_,
        retired,
        closing,
        balanced,
        dict(sorted(by_member.items())),
        {
            a.removeprefix(PARTNER_PREFIX): b
            for a, b in sorted(close.items())
            if a.startswith(PARTNER_PREFIX)
        },
        {
            a.removeprefix(PARTNER_PREFIX): b
            for a, b in sorted(settled.items())
            if a.startswith(PARTNER_PREFIX)
        },
    )


async def scheme_books_sql(
    ledger: LedgerStore, scheme: str, start: date, end: date, *, size: int | None = None
) -> Books:
    """`scheme_books`'s books summed in the database, in one read snapshot (`books_at`): the
    time it takes grows with the accounts and the period's reversals and settlements, not with
    the entries (what reports use)."""
    engine = make_engine(ledger.url, deferred=True)
    try:
        async with engine.connect() as conn, conn.begin():
            return await conn.run_sync(books_at, scheme, start, end, size=size)
    finally:
        await engine.dispose()
