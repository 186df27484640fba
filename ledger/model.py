"""The ledger's value types and the bounds every input is held to. Pure: no I/O."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from .errors import InvalidRequest

# Bounds (TigerStyle: everything has a limit, checked at the edge).
MAX_AMOUNT = 10**9  # minutes in one posting: ~1,900 years
MAX_POSTINGS = 64
MAX_META_ITEMS = 32
MAX_META_VALUE_BYTES = 1024
MAX_TIME_US = 253402300799_999999  # 9999-12-31T23:59:59.999999Z
ZERO_HASH = bytes(32)
RESERVED_ACCOUNT = "@reserved"

_LEDGER_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_ACCOUNT = re.compile(r"[A-Za-z0-9@][A-Za-z0-9._:@/+-]{0,127}")
_KIND = re.compile(r"[a-z][a-z0-9_-]{0,31}")
META_KEY = re.compile(r"[a-z][a-z0-9_.-]{0,63}")
_IDEM_KEY = re.compile(r"[\x21-\x7e]{1,255}")
KEY_ID = re.compile(r"[0-9a-f]{16}")


class EntryKind(StrEnum):
    TRANSFER = "transfer"  # free postings between ordinary accounts
    RESERVE = "reserve"  # debit -> @reserved, pending a post, void or expiry
    POST = "post"  # @reserved -> the reservation's target
    VOID = "void"  # @reserved -> back to the reservation's debit account
    EXPIRE = "expire"  # as void, once the reservation's expiry has passed
    REVERSE = "reverse"  # the exact negation of an earlier transfer


RESOLVING_KINDS = frozenset({EntryKind.POST, EntryKind.VOID, EntryKind.EXPIRE})


@dataclass(frozen=True, slots=True)
class Posting:
    account: str
    amount: int  # signed integer minutes, never zero


@dataclass(frozen=True, slots=True)
class Entry:
    """One signed, hash-chained record; `ref`, `expires_us` and `target` are 0/'' when unused."""

    ledger: str
    seq: int
    prev_hash: bytes
    kind: EntryKind
    time_us: int
    key_id: str
    ref: int
    expires_us: int
    target: str
    postings: tuple[Posting, ...]
    meta: tuple[tuple[str, str], ...]
    hash: bytes = b""
    signature: bytes = b""

    @property
    def time(self) -> datetime:
        return from_us(self.time_us)

    def amount_for(self, account: str) -> int:
        return sum(p.amount for p in self.postings if p.account == account)


@dataclass(frozen=True, slots=True)
class Account:
    ledger: str
    code: str
    kind: str
    floor: int | None  # None: no floor (an issuance account may go as low as it likes)
    balance: int = 0


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement of a ledger's size and Merkle root."""

    ledger: str
    size: int
    root: bytes
    time_us: int
    key_id: str
    signature: bytes = b""


@dataclass(frozen=True, slots=True)
class PublicKey:
    """One entry of a ledger's published key list, certified by the key before it (or by itself)."""

    ledger: str
    key_id: str
    public_key: bytes
    from_seq: int  # the first sequence number this key signs
    time_us: int
    signer_key_id: str
    signature: bytes = b""


@dataclass(frozen=True, slots=True)
class Reservation:
    """A pending two-phase transfer, as the ledger sees it."""

    ledger: str
    seq: int
    debit: str
    target: str
    amount: int
    expires_us: int
    state: str  # pending, posted, voided, expired
    resolved_by: int | None = None


@dataclass(frozen=True, slots=True)
class Receipt:
    """What a member keeps: the entry, its inclusion proof and the checkpoint it is proved in."""

    entry: Entry
    leaf_index: int
    proof: tuple[bytes, ...]
    checkpoint: Checkpoint
    keys: tuple[PublicKey, ...] = field(default=())


def to_us(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise InvalidRequest("times must carry a time zone (UTC)", field="time")
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(us: int) -> datetime:
    return datetime.fromtimestamp(us // 1_000_000, UTC).replace(microsecond=us % 1_000_000)


def check_ledger_id(value: str, name: str = "ledger") -> str:
    if not isinstance(value, str) or not _LEDGER_ID.fullmatch(value):
        raise InvalidRequest(
            f"{name} must be 1-64 characters of a-z, 0-9, '.', '_' or '-'", field=name
        )
    return value


_seen_accounts: set[str] = set()  # codes already checked: the hot path skips the regex


def check_account(value: str, name: str = "account") -> str:
    if isinstance(value, str) and value in _seen_accounts:
        return value
    if not isinstance(value, str) or not _ACCOUNT.fullmatch(value):
        raise InvalidRequest(
            f"{name} must be 1-128 characters of letters, digits and ._:@/+-", field=name
        )
    if len(_seen_accounts) >= 100_000:  # bounded
        _seen_accounts.clear()
    _seen_accounts.add(value)
    return value


def check_kind(value: str, name: str = "kind") -> str:
    if not isinstance(value, str) or not _KIND.fullmatch(value):
        raise InvalidRequest(f"{name} must be a short lower-case word", field=name)
    return value


def check_amount(value: int, name: str = "amount", *, positive: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{name} must be an integer number of minutes", field=name)
    if value == 0 or abs(value) > MAX_AMOUNT or (positive and value < 0):
        sign = "a positive" if positive else "a non-zero"
        raise InvalidRequest(f"{name} must be {sign} integer up to {MAX_AMOUNT}", field=name)
    return value


def check_floor(value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > MAX_AMOUNT:
        raise InvalidRequest(f"floor must be an integer within ±{MAX_AMOUNT}", field="floor")
    return value


def check_idempotency_key(value: str) -> str:
    if not isinstance(value, str) or not _IDEM_KEY.fullmatch(value):
        raise InvalidRequest(
            "idempotency key must be 1-255 printable ASCII characters", field="idempotency_key"
        )
    return value


def normalise_meta(meta: dict[str, str] | None) -> tuple[tuple[str, str], ...]:
    """Sort metadata by key and check its bounds; the ledger treats it as opaque text."""
    items = sorted((meta or {}).items())
    if len(items) > MAX_META_ITEMS:
        raise InvalidRequest(f"at most {MAX_META_ITEMS} metadata items", field="meta")
    for key, value in items:
        if not isinstance(key, str) or not META_KEY.fullmatch(key):
            raise InvalidRequest(f"metadata key {key!r} is not a lower-case name", field="meta")
        if not isinstance(value, str) or len(value.encode()) > MAX_META_VALUE_BYTES:
            raise InvalidRequest(
                f"metadata {key!r} must be text of at most {MAX_META_VALUE_BYTES} bytes",
                field=f"meta.{key}",
            )
    return tuple(items)


def normalise_postings(postings: Sequence[tuple[str, int] | Posting]) -> tuple[Posting, ...]:
    """Check and sort postings: distinct accounts, non-zero bounded amounts, summing to zero."""
    out: list[Posting] = []
    for i, item in enumerate(postings):
        if isinstance(item, Posting):
            account, amount = item.account, item.amount
        else:
            account, amount = item
        out.append(
            Posting(
                check_account(account, f"postings[{i}].account"),
                check_amount(amount, f"postings[{i}].amount"),
            )
        )
    if not 2 <= len(out) <= MAX_POSTINGS:
        raise InvalidRequest(f"an entry needs 2 to {MAX_POSTINGS} postings", field="postings")
    out.sort(key=lambda p: p.account)  # code-point order == UTF-8 byte order
    if len({p.account for p in out}) != len(out):
        raise InvalidRequest("each account may appear once in an entry", field="postings")
    if sum(p.amount for p in out) != 0:
        raise InvalidRequest("postings must sum to zero", field="postings")
    return tuple(out)
