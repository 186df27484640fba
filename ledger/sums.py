"""Sums over a ledger's postings in one read snapshot, done in the database: balances at an
entry, postings between two entries, by entry kind, open reservations (a scheme's books)."""

from __future__ import annotations

from sqlalchemy import ColumnElement, bindparam, exists, func, literal_column, select
from sqlalchemy.engine import Connection

from . import storage
from .model import RESERVED_ACCOUNT, EntryKind
from .prepared import Prepared

_E, _P, _A = storage.entries, storage.postings, storage.accounts
_ZERO: ColumnElement[int] = literal_column("0")  # `seq + 0`: found by kind, not by seq range
_ENTRY_TIME = Prepared(
    select(_E.c.time_us).where(_E.c.ledger_id == bindparam("l"), _E.c.seq == bindparam("s"))
)
_SUMS = Prepared(  # each account's postings in entries a+1..b
    select(_P.c.account, func.sum(_P.c.amount))
    .where(_P.c.ledger_id == bindparam("l"), _P.c.seq > bindparam("a"), _P.c.seq <= bindparam("b"))
    .group_by(_P.c.account)
)
_FIRST = (  # the first entry that posted to the account (None: none did)
    select(func.min(_P.c.seq))
    .where(_P.c.ledger_id == _A.c.ledger_id, _P.c.account == _A.c.code)
    .scalar_subquery()
)
_ACCOUNTS = Prepared(
    select(_A.c.code, _A.c.balance, _FIRST).where(_A.c.ledger_id == bindparam("l"))
)
_OF_KIND = (  # the entries of one kind in a+1..b: by the kind's index, never a seq-range scan
    select(_E.c.seq)
    .where(
        _E.c.ledger_id == bindparam("l"),
        _E.c.kind == bindparam("k"),
        _E.c.seq + _ZERO > bindparam("a"),
        _E.c.seq + _ZERO <= bindparam("b"),
    )
    .scalar_subquery()
)
_BY_KIND = Prepared(  # their postings (summed here: a GROUP BY would scan every posting)
    select(_P.c.account, _P.c.amount).where(
        _P.c.ledger_id == bindparam("l"), _P.c.seq.in_(_OF_KIND)
    )
)
_RESOLVER = _E.alias("resolver")
_OPEN = Prepared(  # reservations (kind k) in a+1..b not resolved by b: (seq, debit, -minutes)
    select(_P.c.seq, _P.c.account, _P.c.amount).where(
        _P.c.ledger_id == bindparam("l"),
        _P.c.seq.in_(_OF_KIND),
        _P.c.account != bindparam("r"),
        ~exists().where(
            _RESOLVER.c.ledger_id == _P.c.ledger_id,
            _RESOLVER.c.ref == _P.c.seq,
            _RESOLVER.c.seq <= bindparam("b"),
        ),
    )
)


class LedgerSums:
    """Sums over one ledger's postings in the caller's read snapshot (a scheme's books)."""

    def __init__(self, conn: Connection, scheme: str, head: int) -> None:
        self.conn, self.scheme, self.head = conn, scheme, head
        # account -> (stored balance, first entry that posted to it or None)
        self.accounts: dict[str, tuple[int, int | None]] = {
            code: (balance, first)
            for code, balance, first in _ACCOUNTS.run(conn, {"l": scheme}).fetchall()
        }

    def time_us(self, seq: int) -> int:
        found = _ENTRY_TIME.run(self.conn, {"l": self.scheme, "s": seq}).fetchone()
        assert found is not None, f"entry {seq} of {self.scheme} is missing"
        return int(found[0])

    def last_before(self, top: int, time_us: int) -> int:
        """The last entry in 1..`top` dated before `time_us` (0: none); times never go back."""
        lo, hi = 0, top
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.time_us(mid) < time_us:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def postings(self, after: int, upto: int) -> dict[str, int]:
        """Each account's postings in entries `after`+1..`upto`."""
        if upto <= after:
            return {}
        rows = _SUMS.run(self.conn, {"l": self.scheme, "a": after, "b": upto}).fetchall()
        return {account: int(total) for account, total in rows}

    def balances(self, upto: int) -> dict[str, int]:
        """The balance after entry `upto` of every account an entry up to it touched."""
        if upto <= self.head - upto:
            return self.postings(0, upto)
        later = self.postings(upto, self.head)
        return {
            code: balance - later.get(code, 0)
            for code, (balance, first) in self.accounts.items()
            if first is not None and first <= upto
        }

    def of_kind(self, kind: EntryKind, after: int, upto: int) -> dict[str, int]:
        """Each account's postings in the entries of `kind` among `after`+1..`upto`."""
        params = {"l": self.scheme, "k": kind.value, "a": after, "b": upto}
        out: dict[str, int] = {}
        for account, amount in _BY_KIND.run(self.conn, params):
            out[account] = out.get(account, 0) + amount
        return out

    def open_reservations(self, upto: int) -> list[tuple[int, str, int]]:
        """Reservations in 1..`upto` not resolved by `upto`: (seq, debited account, -minutes)."""
        kind = EntryKind.RESERVE.value
        params = {"l": self.scheme, "k": kind, "a": 0, "b": upto, "r": RESERVED_ACCOUNT}
        return [(int(q), str(a), int(m)) for q, a, m in _OPEN.run(self.conn, params).fetchall()]
