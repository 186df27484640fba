"""What makes an entry well-formed, given the entry it names. Pure; shared by writer and verify."""

from __future__ import annotations

from collections.abc import Mapping

from .model import (
    MAX_AMOUNT,
    MAX_META_ITEMS,
    MAX_META_VALUE_BYTES,
    MAX_POSTINGS,
    META_KEY,
    RESERVED_ACCOUNT,
    Entry,
    EntryKind,
    Posting,
)

KINDS = frozenset(EntryKind)


def reserve_debit(entry: Entry) -> Posting:
    """The account a reservation draws on, with the (negative) amount reserved."""
    return next(p for p in entry.postings if p.account != RESERVED_ACCOUNT)


def reserve_postings(debit: str, amount: int) -> tuple[Posting, ...]:
    return _sorted([Posting(debit, -amount), Posting(RESERVED_ACCOUNT, amount)])


def resolve_postings(reserve: Entry, kind: EntryKind) -> tuple[Posting, ...]:
    """The postings that post (to the target) or release (to the debit account) a reservation."""
    debit = reserve_debit(reserve)
    to = reserve.target if kind is EntryKind.POST else debit.account
    return _sorted([Posting(RESERVED_ACCOUNT, debit.amount), Posting(to, -debit.amount)])


def reverse_postings(entry: Entry) -> tuple[Posting, ...]:
    return tuple(Posting(p.account, -p.amount) for p in entry.postings)


def _sorted(postings: list[Posting]) -> tuple[Posting, ...]:
    return tuple(sorted(postings, key=lambda p: p.account))


def postings_problem(postings: tuple[Posting, ...]) -> str | None:
    """Why postings are not 2..MAX distinct accounts in canonical order summing to zero, or None.

    Canonical order is by UTF-8 bytes, which is the same as Python's code-point order of str.
    """
    if not 2 <= len(postings) <= MAX_POSTINGS:
        return f"has {len(postings)} postings; an entry needs 2 to {MAX_POSTINGS}"
    previous = ""
    total = 0
    for p in postings:
        amount = p.amount
        if type(amount) is not int:
            return f"posting to {p.account} is not an integer number of minutes"
        if amount == 0 or not -MAX_AMOUNT <= amount <= MAX_AMOUNT:
            return f"posting to {p.account} has an out-of-range amount {amount}"
        if previous and not previous < p.account:
            return "postings are not in canonical order of distinct accounts"
        previous = p.account
        total += amount
    if total != 0:
        return f"postings sum to {total}, not zero"
    return None


def meta_problem(meta: tuple[tuple[str, str], ...]) -> str | None:
    """Why metadata is not in canonical form (distinct keys in order, within bounds), or None."""
    if len(meta) > MAX_META_ITEMS:
        return f"has {len(meta)} metadata items; at most {MAX_META_ITEMS}"
    previous = ""
    for key, value in meta:
        if not META_KEY.fullmatch(key) or (previous and not previous < key):
            return "metadata keys are not distinct lower-case names in canonical order"
        if len(value.encode()) > MAX_META_VALUE_BYTES:
            return f"metadata {key} is longer than {MAX_META_VALUE_BYTES} bytes"
        previous = key
    return None


def shape_problem(entry: Entry, referenced: Entry | None) -> str | None:
    """Why `entry` is not a well-formed entry of its kind, or None.

    `referenced` is the earlier entry its `ref` names (None when it names none or it is missing).
    """
    if entry.kind not in KINDS:
        return f"unknown kind {entry.kind!r}"
    problem = postings_problem(entry.postings) or meta_problem(entry.meta)
    if problem:
        return problem
    kind = entry.kind
    if kind in (EntryKind.TRANSFER, EntryKind.RESERVE):
        if entry.ref:
            return f"a {kind} entry must not name another entry"
    elif referenced is None or entry.ref >= entry.seq:
        wanted = "transfer not yet reversed" if kind is EntryKind.REVERSE else "pending reservation"
        return f"a {kind} entry must name an earlier {wanted} (names {entry.ref})"
    if kind is not EntryKind.RESERVE and (entry.expires_us or entry.target):
        return f"a {kind} entry carries no expiry or target"
    if kind is EntryKind.TRANSFER:
        if any(p.account == RESERVED_ACCOUNT for p in entry.postings):
            return f"a transfer may not touch {RESERVED_ACCOUNT}"
        return None
    if kind is EntryKind.RESERVE:
        held = [p for p in entry.postings if p.account == RESERVED_ACCOUNT]
        if len(entry.postings) != 2 or len(held) != 1 or held[0].amount <= 0:
            return f"a reservation moves a positive amount from one account to {RESERVED_ACCOUNT}"
        debit = reserve_debit(entry).account
        if not entry.target or entry.target in (debit, RESERVED_ACCOUNT):
            return "a reservation needs a target other than its debit account"
        if entry.expires_us <= entry.time_us:
            return "a reservation must expire after it is made"
        return None
    assert referenced is not None
    if kind in (EntryKind.POST, EntryKind.VOID, EntryKind.EXPIRE):
        if referenced.kind is not EntryKind.RESERVE:
            return (
                f"a {kind} entry must name a reservation (entry {entry.ref} is a {referenced.kind})"
            )
        if entry.postings != resolve_postings(referenced, kind):
            return f"postings do not {kind} reservation {entry.ref} exactly"
        if kind is EntryKind.EXPIRE and entry.time_us < referenced.expires_us:
            return f"reservation {entry.ref} expired before its expiry time"
        if kind is EntryKind.POST and entry.time_us >= referenced.expires_us:
            return f"reservation {entry.ref} was posted after it expired"
        return None
    # REVERSE
    if referenced.kind is not EntryKind.TRANSFER:
        return f"only transfers can be reversed (entry {entry.ref} is a {referenced.kind})"
    if entry.postings != reverse_postings(referenced):
        return f"postings are not the exact negation of entry {entry.ref}"
    return None


def floor_problem(
    postings: tuple[Posting, ...], balances: Mapping[str, int], floors: Mapping[str, int | None]
) -> tuple[str, str] | None:
    """(account, message) for the first posting that takes an account below its floor."""
    for p in postings:
        floor = floors.get(p.account)
        after = balances.get(p.account, 0) + p.amount
        if p.amount < 0 and floor is not None and after < floor:
            return p.account, f"account {p.account} would go to {after}, below its floor {floor}"
    return None
