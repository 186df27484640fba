"""The ledger as a plain-text accounting journal (hledger format), for auditors' own tools.

`timebank export-journal` writes one transaction per ledger entry, in sequence order, never
aggregated, so that `hledger` (or anything reading its journal format) can recompute balances and
hours by activity and month, and tie every line back to the signed chain:

    2026-03-02=2026-02-27 (#123) claim confirmed  ; seq:123, kind:transfer, activity:..., hash:...
        taff-housing:scheme:issuance         -60 min  ; hours:issued
        taff-housing:member:T0001             60 min  ; hours:given

- **Amounts** are the ledger's integer minutes with the commodity `min`, declared with no
  decimals (`commodity 1. min`), so hledger shows integers and sums them exactly. Each
  transaction's postings are the entry's, which sum to zero: every transaction balances.
- **Dates.** The primary date is the entry's ledger time as a UTC date. A confirmed claim also
  has the day the hours were given as its secondary date, and a reversal of a claim the reversed
  claim's day, so `--date2` reports by the day given (a reversal then cancels its claim in the
  claim's own month).
- **Description and code.** A short label of what the entry is (`claim confirmed`, `reversal of
  #123`, `voucher reserved`, `voucher settled`, `voucher voided`, `voucher expired`, `credits
  expired`, `partner credits retired`, `transfer`, ...) and the code `(#seq)`.
- **Transaction tags**: `seq`, `kind` (the ledger's entry kind), `ref` (the entry a reversal or
  a reservation's resolution names), `activity`, `day` and `claim` (a claim, or the claim a
  reversal undoes), `offer`, `venue`, `partner` (a retirement), `scheme`, and `hash` (the
  entry's SHA-256 in hex: `timebank receipt` and `verify` tie it to the signed chain). Values are
  written with the account escapes below. Postings inherit the transaction's tags, so
  `--pivot activity` works on any of them.
- **Posting tags** on claims and their reversals: `hours:given` on the account of the member
  who gave the hours, `hours:issued` on the scheme's issuance account (time-credit schemes),
  `hours:received` on the member helped (person-to-person schemes). Hours given by activity by
  month, for every scheme, claims net of reversals, by the day the hours were given:

      hledger -f FILE balance --date2 -M --pivot activity tag:hours=given

  (in a time-credit scheme, the same figures negated are `SCHEME:scheme:issuance`'s).
- **Accounts.** `<scheme>:<ledger account code>`, ':' being both the ledger's and hledger's
  hierarchy separator (`taff-housing:member:T0001`, `taff-housing:scheme:issuance`). The
  ledger's own accounts, whose codes start with '@', go under `internal`: `@reserved` ->
  `<scheme>:internal:reserved`. So that every code maps to a valid hledger name, and distinct
  codes to distinct names: a character outside `A-Za-z0-9._:@/+-` (none is allowed in a code
  today; '%', spaces, ';' and the like, should one ever be) is written as `%XX` per UTF-8 byte;
  a ':' that would leave an empty component (doubled, leading or trailing) is written `%3A`; and
  an ordinary code whose first component is `internal` has its first letter written `%69`, so
  it can never meet one of the ledger's own. Every account is declared (`account ...`, so
  `hledger check --strict` passes) with the tags `ledger-code` and `account-kind` (member,
  issuance, partner, ...), which its postings inherit: `tag:account-kind=member` selects them.
- **No personal data.** Member accounts are pseudonymous ids; names, contacts, card numbers and
  notes live in the time bank's tables and never reach the journal. Only the entry's hash stands
  for what else it carries (a note's salted hash, a reason's hash, who logged it).

`header_lines` and `ledger_lines` are pure (values in, lines out). `write_journal` streams a
database's ledgers through them inside the caller's (snapshot) transaction: memory grows with
the number of accounts, open vouchers and reversed entries, never with the number of entries.
"""

from __future__ import annotations

import itertools
from collections.abc import Container, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import IO

from sqlalchemy.engine import Connection

from ledger import (
    Account,
    Entry,
    EntryKind,
    from_us,
    list_accounts,
    list_ledgers,
    read_head,
    reversal_refs,
    stream_entries_sync,
)

from .schemes import ISSUANCE_ACCOUNT

COMMODITY = "min"
INTERNAL = "internal"  # where the ledger's own ('@') accounts go
HOURS_BY_ACTIVITY = "balance --date2 -M --pivot activity tag:hours=given"
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:@/+-")
_ACCOUNT_WIDTH = 48  # posting amounts line up after names up to this long
_AMOUNT_WIDTH = 8


@dataclass(frozen=True, slots=True)
class LedgerHead:
    """A ledger as exported: its id (the scheme's), its size and its head entry's hash."""

    ledger: str
    size: int
    head_hash: bytes


def escape(text: str) -> str:
    """`text` with every character outside `A-Za-z0-9._:@/+-` written `%XX` (per UTF-8 byte) and
    every ':' that would leave an empty hledger component (leading, trailing or doubled) `%3A`."""
    out: list[str] = []
    last = len(text) - 1
    for i, ch in enumerate(text):
        if ch == ":" and (i in (0, last) or text[i + 1] == ":"):
            out.append("%3A")
        elif ch in _SAFE:
            out.append(ch)
        else:
            out.append("".join(f"%{b:02X}" for b in ch.encode()))
    return "".join(out)


def account_name(ledger: str, code: str) -> str:
    """The hledger account name of ledger account `code` of `ledger` (see the module's rules)."""
    if code.startswith("@"):
        path = f"{INTERNAL}:{escape(code[1:])}" if len(code) > 1 else f"{INTERNAL}:%40"
    elif code == INTERNAL or code.startswith(f"{INTERNAL}:"):
        path = "%69" + escape(code[1:])
    else:
        path = escape(code)
    return f"{escape(ledger)}:{path}"


def header_lines(heads: Sequence[LedgerHead], exported_at: datetime) -> Iterator[str]:
    """The journal's opening comment and its commodity directive."""
    yield "; timebank ledger, exported as an hledger journal"
    yield f"; exported at {exported_at.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}"
    for h in heads:
        yield f"; scheme {h.ledger}: {h.size} entries, head hash {h.head_hash.hex()}"
    yield ";"
    yield "; One transaction per ledger entry, in sequence order; amounts in integer minutes."
    yield "; Primary date: the entry's ledger time (UTC); secondary date: the day hours were given."
    yield "; Tags tie each transaction to its signed entry (seq, hash). Hours by activity by month:"
    yield f";   hledger -f THIS-FILE {HOURS_BY_ACTIVITY}"
    yield ""
    yield f"commodity 1. {COMMODITY}"
    yield ""


def ledger_lines(
    head: LedgerHead,
    accounts: Iterable[Account],
    entries: Iterable[Entry],
    *,
    reversed_seqs: Container[int] | None = None,
) -> Iterator[str]:
    """One ledger's account declarations, then a transaction per entry, in the order given.

    A reversal takes its activity and day from the claim it reverses, which came earlier: the
    claims to remember are those in `reversed_seqs` (the reversals' refs), or every claim if it
    is None."""
    names = {a.code: account_name(head.ledger, a.code) for a in accounts}
    kinds = {a.code: a.kind for a in accounts}
    width = min(max((len(n) for n in names.values()), default=0), _ACCOUNT_WIDTH)
    yield f"; ---- scheme {head.ledger} ----"
    for code, name in names.items():
        yield f"account {name}  ; ledger-code:{escape(code)}, account-kind:{escape(kinds[code])}"
    yield ""
    claims: dict[int, tuple[str, str, str]] = {}  # seq -> (claim, activity, day), as needed
    vouchers: set[int] = set()  # open reservations made for vouchers
    for e in entries:
        assert e.ledger == head.ledger, f"entry {e.seq} is of ledger {e.ledger!r}"
        yield from _transaction(e, head.ledger, names, width, claims, vouchers, reversed_seqs)
        yield ""


def _transaction(
    e: Entry,
    ledger: str,
    names: dict[str, str],
    width: int,
    claims: dict[int, tuple[str, str, str]],
    vouchers: set[int],
    remember: Container[int] | None,
) -> Iterator[str]:
    meta = dict(e.meta)
    tags: list[tuple[str, str]] = [("seq", str(e.seq)), ("kind", str(e.kind))]
    if e.ref:
        tags.append(("ref", str(e.ref)))
    day: str | None = None
    hours = 0  # +1: a claim (giver credited), -1: a claim's reversal (giver debited)
    kind = e.kind
    if kind is EntryKind.TRANSFER and "claim" in meta and "activity" in meta:
        label, hours = "claim confirmed", 1
        day = _iso_day(meta.get("day", ""))
        tags += [("activity", meta["activity"]), *_day_tag(day), ("claim", meta["claim"])]
        if remember is None or e.seq in remember:
            claims[e.seq] = (meta["claim"], meta["activity"], day or "")
    elif kind is EntryKind.TRANSFER:
        if "expiry" in meta:
            label = "credits expired"
        elif "settlement" in meta:
            label = "partner credits retired"
            tags.append(("partner", meta["settlement"]))
        else:
            label = "transfer"
    elif kind is EntryKind.REVERSE:
        label = f"reversal of #{e.ref}"
        reversed_claim = claims.pop(e.ref, None)
        if reversed_claim is not None:
            claim, activity, day_given = reversed_claim
            day, hours = day_given or None, -1
            tags += [("activity", activity), *_day_tag(day), ("claim", claim)]
        elif "claim" in meta:
            tags.append(("claim", meta["claim"]))
    elif kind is EntryKind.RESERVE:
        label = "reservation"
        if "offer" in meta:
            label = "voucher reserved"
            vouchers.add(e.seq)
            tags.append(("offer", meta["offer"]))
    elif kind in (EntryKind.POST, EntryKind.VOID, EntryKind.EXPIRE):
        voucher = e.ref in vouchers or "venue" in meta
        vouchers.discard(e.ref)
        done = {EntryKind.POST: "settled" if voucher else "posted", EntryKind.VOID: "voided"}
        label = f"{'voucher' if voucher else 'reservation'} {done.get(kind, 'expired')}"
        if "venue" in meta:
            tags.append(("venue", meta["venue"]))
    else:  # an entry kind this code does not know: written as it is
        label = escape(str(kind))
    tags += [("scheme", ledger), ("hash", e.hash.hex())]
    when = from_us(e.time_us).date().isoformat()
    dates = f"{when}={day}" if day else when
    comment = ", ".join(f"{name}:{escape(value)}" for name, value in tags)
    yield f"{dates} (#{e.seq}) {label}  ; {comment}"
    for p in e.postings:
        line = f"    {names.get(p.account) or account_name(ledger, p.account):<{width}}  "
        line += f"{p.amount:>{_AMOUNT_WIDTH}} {COMMODITY}"
        if hours:
            line += f"  ; hours:{_hours_role(p.account, p.amount * hours)}"
        yield line


def _hours_role(account: str, signed: int) -> str:
    """What a claim's posting is: the giver's (credited), the issuer's or the receiver's."""
    if signed > 0:
        return "given"
    return "issued" if account == ISSUANCE_ACCOUNT else "received"


def _day_tag(day: str | None) -> list[tuple[str, str]]:
    return [("day", day)] if day else []


def _iso_day(text: str) -> str | None:
    try:
        return date.fromisoformat(text).isoformat() if len(text) == 10 else None
    except ValueError:
        return None


def write_journal(
    conn: Connection, out: IO[str], ledgers: Sequence[str] | None, *, exported_at: datetime
) -> int:
    """Write every (or each named) ledger of the database to `out` as one journal, read in the
    caller's transaction (one snapshot), streaming the entries; return the entries written."""
    names = list(ledgers) if ledgers else list_ledgers(conn)
    heads = []
    for name in names:
        head = read_head(conn, name)
        if head is None:
            raise LookupError(f"no ledger {name!r}")
        heads.append(LedgerHead(name, head.seq, head.hash))
    out.writelines(f"{line}\n" for line in header_lines(heads, exported_at))
    for h in heads:
        accounts = list_accounts(conn, h.ledger)
        refs = reversal_refs(conn, h.ledger)
        chunks = stream_entries_sync(conn, h.ledger, h.size)
        entries = itertools.chain.from_iterable(chunks)
        out.writelines(
            f"{line}\n" for line in ledger_lines(h, accounts, entries, reversed_seqs=refs)
        )
    return sum(h.size for h in heads)
