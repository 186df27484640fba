"""Build the conformance suite: bundles, receipts and key files, each with its expected verdict.

    python conformance/make.py            write every case into conformance/cases/ and cases.json
    python conformance/make.py --check    exit 1 if any file differs from what would be written

Everything is made from fixed seeds and fixed times, so the output is the same on every run
(Ed25519 signing is deterministic). Each negative case breaks one rule of docs/ledger-format.md
and is otherwise valid: an entry that breaks a rule is hashed and signed like an honest one, so
only that rule can refuse it. See conformance/README.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

import nacl.bindings

from ledger import merkle
from ledger.encoding import checkpoint_digest, entry_hash, key_digest, key_id_for
from ledger.model import (
    RESERVED_ACCOUNT,
    ZERO_HASH,
    Account,
    Checkpoint,
    Entry,
    EntryKind,
    Posting,
    PublicKey,
    Receipt,
)
from ledger.records import account_json, checkpoint_json, entry_json, key_json, receipt_json
from ledger.signing import L, Signer

HERE = Path(__file__).resolve().parent
CASES = HERE / "cases"
MANIFEST = HERE / "cases.json"

SEED_1 = bytes(range(1, 33))  # the seeds of the format's own test vectors
SEED_2 = bytes(range(33, 65))
SEED_3 = bytes(range(65, 97))  # a key nobody published: a forger's
IDENTITY_POINT = b"\x01" + bytes(31)  # the neutral element, encoded: a public key of order 1
NON_CANONICAL_POINT = (2**255 - 19 + 3).to_bytes(32, "little")  # y = p + 3: not of small order
T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
MINUTE = 60_000_000
HOUR = 60 * MINUTE
LEDGER = "conf"

ACCOUNTS: dict[str, tuple[str, int | None]] = {
    RESERVED_ACCOUNT: ("internal", 0),
    "member:a": ("member", 0),
    "member:b": ("member", 0),
    "partner:p": ("partner", 0),
    "scheme:issuance": ("issuance", None),
}


# ---- forged signatures: each passes a naive verifier, none a strict one ------------------------


def s_plus_l(signature: bytes) -> bytes:
    """The same signature with S replaced by S + L: the same scalar mod L, not canonical."""
    s = int.from_bytes(signature[32:], "little")
    return signature[:32] + (s + L).to_bytes(32, "little")


def identity_key_signature(r: int = 12345) -> bytes:
    """A "signature" of any message under the identity public key: R = [r]B, S = r. The
    cofactorless equation [S]B = R + [h]A holds for every h, since A is the identity."""
    scalar = r.to_bytes(32, "little")
    return bytes(nacl.bindings.crypto_scalarmult_ed25519_base_noclamp(scalar)) + scalar


def identity_r_signature(seed: bytes, message: bytes) -> bytes:
    """A signature whose R is the identity point, by the holder of `seed`: S = h * a mod L, so
    [S]B = [h]A = R + [h]A. Valid but for R being of small order."""
    digest = hashlib.sha512(seed).digest()
    clamped = bytearray(digest[:32])
    clamped[0] &= 248
    clamped[31] = (clamped[31] & 127) | 64
    a = int.from_bytes(clamped, "little")
    public_key = Signer(seed).public_key
    h = hashlib.sha512(IDENTITY_POINT + public_key + message).digest()
    s = int.from_bytes(h, "little") % L * a % L
    return IDENTITY_POINT + s.to_bytes(32, "little")


# ---- building a ledger -------------------------------------------------------------------------

SignFn = Callable[[bytes], bytes]


@dataclass
class Book:
    """One ledger as it is built: keys, accounts, checkpoints and signed entries. Nothing here
    checks a rule, so a case can write an entry that breaks one, hashed and signed."""

    ledger: str = LEDGER
    keys: list[PublicKey] = field(default_factory=list)
    signers: dict[str, SignFn] = field(default_factory=dict)  # key id -> its signing function
    accounts: dict[str, tuple[str, int | None]] = field(default_factory=lambda: dict(ACCOUNTS))
    entries: list[Entry] = field(default_factory=list)
    checkpoints: list[Checkpoint] = field(default_factory=list)

    def add_key(
        self, from_seq: int, time_us: int, seed: bytes = b"", public_key: bytes = b""
    ) -> PublicKey:
        """Append a key, certified by the last key (or by itself when it is the first)."""
        sign: SignFn = Signer(seed).sign if seed else (lambda _: identity_key_signature())
        public = Signer(seed).public_key if seed else public_key
        key_id = key_id_for(public)
        signer_id = self.keys[-1].key_id if self.keys else key_id
        self.signers[key_id] = sign
        key = PublicKey(self.ledger, key_id, public, from_seq, time_us, signer_id)
        key = replace(key, signature=self.signers[signer_id](key_digest(key)))
        self.keys.append(key)
        return key

    def key_for(self, seq: int) -> PublicKey:
        return [k for k in self.keys if k.from_seq <= seq][-1]

    def add(
        self,
        kind: EntryKind,
        time_us: int,
        postings: Iterable[tuple[str, int]],
        *,
        ref: int = 0,
        expires_us: int = 0,
        target: str = "",
        meta: tuple[tuple[str, str], ...] = (),
        ordered: bool = True,
    ) -> Entry:
        """Append an entry, chained, hashed and signed by the key for its sequence number."""
        seq = len(self.entries) + 1
        prev = self.entries[-1].hash if self.entries else ZERO_HASH
        items = [Posting(a, n) for a, n in postings]
        if ordered:
            items.sort(key=lambda p: p.account.encode())
        key = self.key_for(seq)
        entry = Entry(
            self.ledger,
            seq,
            prev,
            kind,
            time_us,
            key.key_id,
            ref,
            expires_us,
            target,
            tuple(items),
            meta,
        )
        self.entries.append(self.sign(entry))
        return self.entries[-1]

    def sign(self, entry: Entry) -> Entry:
        """The entry with its hash and signature made afresh (by the key its key_id names)."""
        digest = entry_hash(entry)
        return replace(entry, hash=digest, signature=self.signers[entry.key_id](digest))

    def checkpoint(self, time_us: int, size: int | None = None, key_id: str = "") -> Checkpoint:
        """Sign a checkpoint of the first `size` entries (all of them by default)."""
        n = len(self.entries) if size is None else size
        root = merkle.root_of([e.hash for e in self.entries[:n]])
        cp = Checkpoint(self.ledger, n, root, time_us, key_id or self.keys[-1].key_id)
        cp = replace(cp, signature=self.signers[cp.key_id](checkpoint_digest(cp)))
        self.checkpoints.append(cp)
        return cp

    def balances(self) -> dict[str, int]:
        out = dict.fromkeys(self.accounts, 0)
        for e in self.entries:
            for p in e.postings:
                out[p.account] = out.get(p.account, 0) + p.amount
        return out

    def records(self) -> list[dict[str, Any]]:
        """The ledger's section of a bundle, in the order the format fixes."""
        balances = self.balances()
        out: list[dict[str, Any]] = [{"type": "ledger", "ledger": self.ledger}]
        out += [key_json(k) for k in self.keys]
        for code in sorted(self.accounts):
            kind, floor = self.accounts[code]
            out.append(account_json(Account(self.ledger, code, kind, floor, balances[code])))
        out += [checkpoint_json(cp) for cp in sorted(self.checkpoints, key=lambda c: c.size)]
        out += [entry_json(e) for e in self.entries]
        out.append({"type": "end", "ledger": self.ledger, "entries": len(self.entries)})
        return out

    def receipt(self, seq: int, size: int | None = None) -> Receipt:
        """A receipt for entry `seq` in the checkpoint of `size` (the newest by default)."""
        cp = (
            max(self.checkpoints, key=lambda c: c.size)
            if size is None
            else next(c for c in self.checkpoints if c.size == size)
        )
        hashes = [e.hash for e in self.entries[: cp.size]]
        ranges = merkle.inclusion_ranges(seq - 1, cp.size)
        proof = tuple(merkle.root_of(hashes[s:e]) for s, e in ranges)
        return Receipt(self.entries[seq - 1], seq - 1, proof, cp, tuple(self.keys))


def every_kind(ledger: str = LEDGER) -> Book:
    """The suite's main ledger: every entry kind, a key rotation, two checkpoints.

    1 transfer (issuance), 2 reserve, 3 post 2, checkpoint 3 (key 1), key 2 from 4,
    4 reserve, 5 reserve, 6 void 5, 7 expire 4, 8 transfer, 9 reverse 8, checkpoint 9 (key 2).
    """
    b = Book(ledger)
    b.add_key(1, T0, SEED_1)
    b.add(
        EntryKind.TRANSFER,
        T0 + HOUR,
        [("scheme:issuance", -300), ("member:a", 200), ("member:b", 100)],
        meta=(("note", "Café"),),
    )
    b.add(
        EntryKind.RESERVE,
        T0 + 2 * HOUR,
        [("member:a", -30), (RESERVED_ACCOUNT, 30)],
        expires_us=T0 + 24 * HOUR,
        target="partner:p",
    )
    b.add(EntryKind.POST, T0 + 3 * HOUR, [(RESERVED_ACCOUNT, -30), ("partner:p", 30)], ref=2)
    b.checkpoint(T0 + 3 * HOUR + MINUTE)
    b.add_key(4, T0 + 4 * HOUR, SEED_2)
    b.add(
        EntryKind.RESERVE,
        T0 + 5 * HOUR,
        [("member:b", -20), (RESERVED_ACCOUNT, 20)],
        expires_us=T0 + 6 * HOUR,
        target="partner:p",
    )
    b.add(
        EntryKind.RESERVE,
        T0 + 5 * HOUR,
        [("member:a", -10), (RESERVED_ACCOUNT, 10)],
        expires_us=T0 + 7 * HOUR,
        target="partner:p",
    )
    b.add(
        EntryKind.VOID,
        T0 + 5 * HOUR + 30 * MINUTE,
        [(RESERVED_ACCOUNT, -10), ("member:a", 10)],
        ref=5,
    )
    b.add(EntryKind.EXPIRE, T0 + 6 * HOUR, [(RESERVED_ACCOUNT, -20), ("member:b", 20)], ref=4)
    b.add(EntryKind.TRANSFER, T0 + 7 * HOUR, [("member:a", -50), ("member:b", 50)])
    b.add(EntryKind.REVERSE, T0 + 8 * HOUR, [("member:a", 50), ("member:b", -50)], ref=8)
    b.checkpoint(T0 + 8 * HOUR + MINUTE)
    return b


def short(ledger: str = LEDGER, seed: bytes = SEED_1) -> Book:
    """A one-key ledger holding one issuance transfer, ready for one more entry."""
    b = Book(ledger)
    b.add_key(1, T0, seed)
    b.add(EntryKind.TRANSFER, T0 + HOUR, [("scheme:issuance", -100), ("member:a", 100)])
    return b


# ---- writing files -----------------------------------------------------------------------------


def _compact(o: dict[str, Any]) -> str:
    return json.dumps(o, separators=(",", ":"), ensure_ascii=False)


HEADER: dict[str, Any] = {"type": "bundle", "format": "timebank-ledger-bundle", "version": 1}


def bundle_text(*books: Book, header: dict[str, Any] | None = None) -> str:
    records = [header or HEADER, *(r for b in books for r in b.records()), {"type": "end-bundle"}]
    return "".join(_compact(r) + "\n" for r in records)


def keys_text(keys: Sequence[PublicKey]) -> str:
    """A published key file, as `timebank keys` writes it."""
    return "".join(_compact(key_json(k)) + "\n" for k in keys)


def checkpoints_text(cps: Sequence[Checkpoint]) -> str:
    """A held-checkpoint file: checkpoint records, one per line."""
    return "".join(_compact(checkpoint_json(cp)) + "\n" for cp in cps)


def receipt_text(o: dict[str, Any]) -> str:
    """A receipt file, as `timebank receipt` prints it."""
    return json.dumps(o, indent=1) + "\n"


def edit_lines(text: str, change: Callable[[list[str]], None]) -> str:
    lines = text.splitlines()
    change(lines)
    return "".join(line + "\n" for line in lines)


def _drop_last(lines: list[str]) -> None:
    lines.pop()


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) >= 1, old
    return text.replace(old, new, 1)


# ---- the cases ---------------------------------------------------------------------------------


@dataclass
class Case:
    """One file and what a verifier must say of it."""

    name: str
    kind: str  # bundle or receipt
    verdict: str  # ok or fail
    message: str  # a substring of the reference verifier's output
    text: str
    rule: str  # the section of docs/ledger-format.md it exercises
    trusted_keys: str = ""  # text of a --trusted-keys file, if any
    held_checkpoints: str = ""  # text of a --held-checkpoints file, if any
    failing_ledgers: tuple[str, ...] = ()  # each reported on a line of its own
    rules: tuple[str, ...] = ()  # the ids of RULES it breaks (docs/ledger-format.md section 10)

    @property
    def file(self) -> str:
        return f"cases/{self.name}.{'jsonl' if self.kind == 'bundle' else 'json'}"

    def files(self) -> dict[str, str]:
        out = {self.file: self.text}
        if self.trusted_keys:
            out[f"cases/{self.name}.trusted-keys.jsonl"] = self.trusted_keys
        if self.held_checkpoints:
            out[f"cases/{self.name}.held-checkpoints.jsonl"] = self.held_checkpoints
        return out

    def manifest(self, exit_code: int, output: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "file": self.file,
            "kind": self.kind,
            "verdict": self.verdict,
            "message": self.message,
            "rule": self.rule,
            "rules": list(self.rules),
            "exit": exit_code,
            "output": output,
        }
        if self.trusted_keys:
            out["trusted_keys"] = f"cases/{self.name}.trusted-keys.jsonl"
        if self.held_checkpoints:
            out["held_checkpoints"] = f"cases/{self.name}.held-checkpoints.jsonl"
        if self.failing_ledgers:
            out["failing_ledgers"] = list(self.failing_ledgers)
        return out


def bad_bundle(name: str, book: Book, message: str, rule: str) -> Case:
    return Case(name, "bundle", "fail", message, bundle_text(book), rule)


def with_entry(book: Book, kind: EntryKind, postings: Iterable[tuple[str, int]], **kw: Any) -> Book:
    book.add(kind, T0 + 2 * HOUR, postings, **kw)
    return book


def positive_cases() -> list[Case]:
    b = every_kind()
    ok = "OK 1 ledgers, 9 entries, 2 checkpoints, 2 keys, 5 accounts"
    two = every_kind("conf-2")
    cases = [
        Case("ok-every-kind", "bundle", "ok", ok, bundle_text(b), "7, 8"),
        Case(
            "ok-two-ledgers",
            "bundle",
            "ok",
            "OK 2 ledgers, 18 entries",
            bundle_text(b, two),
            "8, 9",
        ),
        Case(
            "ok-empty-ledger", "bundle", "ok", "OK 1 ledgers, 0 entries", bundle_text(_empty()), "8"
        ),
        Case(
            "ok-pinned-keys",
            "bundle",
            "ok",
            ok,
            bundle_text(b),
            "8 (--trusted-keys)",
            trusted_keys=keys_text(b.keys[:1]),
        ),
        Case(
            "ok-held-checkpoint",
            "bundle",
            "ok",
            ok,
            bundle_text(b),
            "8 (--held-checkpoints)",
            held_checkpoints=checkpoints_text(b.checkpoints[:1]),
        ),
    ]
    for seq, size, what in (
        (1, 9, "transfer"),
        (3, 9, "post"),
        (6, 9, "void"),
        (7, 9, "expire"),
        (9, 9, "reverse"),
        (2, 3, "reserve"),
    ):
        receipt = receipt_json(b.receipt(seq, size))
        says = f"OK entry {seq} of ledger conf is in checkpoint {size}"
        cases.append(
            Case(
                f"ok-receipt-{what}",
                "receipt",
                "ok",
                says,
                receipt_text(receipt),
                "6 (receipts), 9",
            )
        )
    legacy = {k: v for k, v in receipt_json(b.receipt(1)).items() if k != "version"}
    cases.append(
        Case(
            "ok-receipt-without-version",
            "receipt",
            "ok",
            "OK entry 1 of ledger conf",
            receipt_text(legacy),
            "9 (format version)",
        )
    )
    cases.append(
        Case(
            "ok-receipt-pinned-keys",
            "receipt",
            "ok",
            "signed by the trusted key list",
            receipt_text(receipt_json(b.receipt(3))),
            "9 (--trusted-keys)",
            trusted_keys=keys_text(b.keys),
        )
    )
    return cases


def _empty() -> Book:
    b = Book()
    b.add_key(1, T0, SEED_1)
    b.checkpoint(T0 + MINUTE)
    return b


def signature_cases() -> list[Case]:
    """Section 3: non-canonical S, small-order R, a small-order (identity) public key."""
    b = short()
    b.entries[0] = replace(b.entries[0], signature=s_plus_l(b.entries[0].signature))
    cases = [bad_bundle("fail-signature-s-plus-l", b, "at sequence 1: bad signature", "3")]
    b = short()
    e = b.entries[0]
    b.entries[0] = replace(e, signature=identity_r_signature(SEED_1, e.hash))
    cases.append(bad_bundle("fail-signature-small-order-r", b, "at sequence 1: bad signature", "3"))
    b = short()  # R written as y = p + 3: nobody can sign with it, so the rule decides the message
    e = b.entries[0]
    b.entries[0] = replace(e, signature=NON_CANONICAL_POINT + e.signature[32:])
    message = "at sequence 1: bad signature"
    cases.append(bad_bundle("fail-signature-non-canonical-r", b, message, "3"))
    forged = Book()
    forged.add_key(1, T0, public_key=IDENTITY_POINT)
    forged.add(EntryKind.TRANSFER, T0 + HOUR, [("scheme:issuance", -100), ("member:a", 100)])
    forged.checkpoint(T0 + 2 * HOUR)
    small = "its public key is a point of small order"
    cases.append(bad_bundle("fail-key-identity-point", forged, small, "3, 4"))
    odd = Book()  # the point whose y is 3, written as y = p + 3: nobody can sign for it
    odd.add_key(1, T0, public_key=NON_CANONICAL_POINT)
    odd.add(EntryKind.TRANSFER, T0 + HOUR, [("scheme:issuance", -100), ("member:a", 100)])
    message = "its public key is a non-canonical point encoding (y >= p)"
    cases.append(bad_bundle("fail-key-non-canonical", odd, message, "3, 4"))
    forged_receipt = receipt_text(receipt_json(forged.receipt(1)))
    cases.append(
        Case("fail-receipt-identity-key", "receipt", "fail", small, forged_receipt, "3, 4")
    )
    b = every_kind()
    receipt = receipt_json(b.receipt(1))
    receipt["entry"]["signature"] = s_plus_l(b.entries[0].signature).hex()
    cases.append(
        Case(
            "fail-receipt-s-plus-l", "receipt", "fail", "bad signature", receipt_text(receipt), "3"
        )
    )
    return cases


def key_list_cases() -> list[Case]:
    """Section 4: each key-list rule, broken once."""
    cases = []

    def case(name: str, change: Callable[[Book], None], message: str) -> None:
        b = every_kind()
        change(b)
        cases.append(bad_bundle(f"fail-keys-{name}", b, message, "4"))

    def resign_key(b: Book, i: int, **fields: Any) -> None:
        key = replace(b.keys[i], **fields)
        b.keys[i] = replace(key, signature=b.signers[key.signer_key_id](key_digest(key)))

    case("none", lambda b: b.keys.clear(), "the ledger has no public keys")
    case(
        "id-mismatch",
        lambda b: resign_key(b, 1, key_id="0123456789abcdef"),
        "its id does not match its public key",
    )
    case("listed-twice", lambda b: b.keys.append(b.keys[1]), "listed twice")
    case("not-certified-by-previous", lambda b: b.keys.reverse(), "must be certified by")
    case(
        "first-not-at-1",
        lambda b: resign_key(b, 0, from_seq=2),
        "the first key must start at sequence 1",
    )
    case(
        "starts-before-previous",
        lambda b: resign_key(b, 1, from_seq=0),
        "starts before the key it replaces",
    )
    # a key of another ledger can only be written outside its section, which the reader refuses
    case(
        "other-ledger",
        lambda b: resign_key(b, 1, ledger="other"),
        "line 4: key outside its ledger's section",
    )
    case("bad-certificate", lambda b: _set_key(b, 1, time_us=T0), "bad certificate signature")
    b = every_kind()  # key 2 certified by key 1, but its statement names another ledger
    resign_key(b, 1, ledger="other")
    receipt = receipt_text(receipt_json(b.receipt(3)))
    message = "the key list is not ledger conf's"
    cases.append(
        Case("fail-receipt-key-of-other-ledger", "receipt", "fail", message, receipt, "4, 6")
    )
    return cases


def _set_key(b: Book, i: int, **fields: Any) -> None:
    """Change a key statement without certifying it again."""
    b.keys[i] = replace(b.keys[i], **fields)


def entry_cases() -> list[Case]:
    """Sections 3, 7 and 8: one broken rule per bundle, the entry otherwise hashed and signed."""
    cases = []

    def case(name: str, book: Book, message: str, rule: str = "7, 8") -> None:
        cases.append(bad_bundle(f"fail-entry-{name}", book, message, rule))

    transfer = EntryKind.TRANSFER
    b = short()
    b.entries.append(b.sign(replace(b.entries[0], seq=3, prev_hash=b.entries[0].hash)))
    case("gap", b, "at sequence 2: expected sequence 2, found 3", "3, 8")
    b = short()
    b.add(transfer, T0 + 2 * HOUR, [("member:a", -1), ("member:b", 1)])
    b.entries[1] = b.sign(replace(b.entries[1], prev_hash=bytes(32)))
    case("prev-hash", b, "at sequence 2: previous-hash link broken", "3, 8")
    b = short()
    b.add(transfer, T0 + 2 * HOUR, [("member:a", -1), ("member:b", 1)])
    b.entries[1] = replace(b.entries[1], postings=(Posting("member:a", -2), Posting("member:b", 2)))
    case("content-changed", b, "at sequence 2: stored hash does not match", "3, 8")
    b = short()
    b.add(transfer, T0 + 2 * HOUR, [("member:a", -1), ("member:b", 1)])
    b.entries[1] = replace(b.entries[1], signature=b.entries[0].signature)
    case("bad-signature", b, "at sequence 2: bad signature", "3, 8")
    b = short()
    b.signers[Signer(SEED_3).key_id] = Signer(SEED_3).sign
    b.add(transfer, T0 + 2 * HOUR, [("member:a", -1), ("member:b", 1)])
    b.entries[1] = b.sign(replace(b.entries[1], key_id=Signer(SEED_3).key_id))
    case("wrong-key", b, "at sequence 2: signed with key", "4, 8")
    b = every_kind()  # entry 4 is key 2's first; key 1 signs it
    b.entries[3:] = []
    b.add(EntryKind.TRANSFER, T0 + 5 * HOUR, [("member:a", -1), ("member:b", 1)])
    b.entries[3] = b.sign(replace(b.entries[3], key_id=b.keys[0].key_id))
    b.checkpoints[1:] = []
    case("retired-key", b, "at sequence 4: signed with key", "4, 8")
    b = short()
    b.add(transfer, T0, [("member:a", -1), ("member:b", 1)])
    case("time-backwards", b, "at sequence 2: time goes backwards", "7, 8")
    b = short()
    b.entries.append(b.sign(replace(b.entries[0], seq=2, prev_hash=b.entries[0].hash, kind="gift")))  # type: ignore[arg-type]
    case("unknown-kind", b, "at sequence 2: unknown entry kind 'gift'", "2, 8")
    for name, postings, message in (
        ("one-posting", [("member:a", 0)], "has 1 postings"),
        (
            "zero-amount",
            [("member:a", 0), ("member:b", 0)],
            "posting to member:a has an out-of-range amount 0",
        ),
        (
            "amount-too-large",
            [("member:a", -(10**9) - 1), ("member:b", 10**9 + 1)],
            "posting to member:a has an out-of-range amount -1000000001",
        ),
        ("not-zero-sum", [("member:a", -2), ("member:b", 1)], "postings sum to -1"),
        (
            "postings-same-account",
            [("member:a", -1), ("member:a", 1)],
            "postings are not in canonical order of distinct accounts",
        ),
        (
            "touches-reserved",
            [("member:a", -1), (RESERVED_ACCOUNT, 1)],
            "a transfer may not touch @reserved",
        ),
        (
            "unknown-account",
            [("member:a", -1), ("member:zz", 1)],
            "posting to unknown account member:zz",
        ),
        (
            "floor-breached",
            [("member:a", -101), ("member:b", 101)],
            "account member:a would go to -1, below its floor 0",
        ),
    ):
        case(name, with_entry(short(), transfer, postings), f"at sequence 2: {message}")
    b = with_entry(short(), transfer, [("member:b", 1), ("member:a", -1)], ordered=False)
    case("postings-order", b, "postings are not in canonical order")
    b = with_entry(
        short(),
        transfer,
        [("member:a", -1), ("member:b", 1)],
        meta=(("note", "x"), ("activity", "y")),
    )
    case("meta-order", b, "metadata keys are not distinct lower-case names in canonical order")
    b = with_entry(short(), transfer, [("member:a", -1), ("member:b", 1)], ref=1)
    case("transfer-with-ref", b, "a transfer entry must not name another entry")
    b = with_entry(short(), transfer, [("member:a", -1), ("member:b", 1)], target="partner:p")
    case("transfer-with-target", b, "a transfer entry carries no expiry or target")
    many = [(f"member:{i:02d}", 1) for i in range(64)] + [("member:a", -64)]
    case(
        "too-many-postings", with_entry(short(), transfer, many), "has 65 postings; an entry needs"
    )
    one = [("member:a", -1), ("member:b", 1)]
    long_note = (("note", "x" * 1025),)
    case(
        "meta-too-long",
        with_entry(short(), transfer, one, meta=long_note),
        "metadata note is longer than 1024 bytes",
    )
    crowd = tuple((f"k{i:02d}", "v") for i in range(33))
    case(
        "meta-too-many",
        with_entry(short(), transfer, one, meta=crowd),
        "has 33 metadata items; at most 32",
    )
    case(
        "meta-key-not-a-name",
        with_entry(short(), transfer, one, meta=(("Note", "x"),)),
        "metadata keys are not distinct lower-case names in canonical order",
    )
    b = with_entry(
        short(),
        EntryKind.RESERVE,
        [("member:a", -30), (RESERVED_ACCOUNT, 30)],
        expires_us=T0 + 24 * HOUR,
        target="partner:p",
    )
    b.add(transfer, T0 + 3 * HOUR, [("member:a", -80), ("member:b", 80)])
    message = "at sequence 3: account member:a would go to -10, below its floor 0"
    case("floor-counts-reservations", b, message)
    _reservation_cases(case)
    return cases


def _reservation_cases(case: Callable[[str, Book, str], None]) -> None:
    """The rules of reserve, post, void, expire and reverse (section 7)."""
    reserve, hold = EntryKind.RESERVE, [("member:a", -30), (RESERVED_ACCOUNT, 30)]
    release = [(RESERVED_ACCOUNT, -30), ("member:a", 30)]
    pay = [(RESERVED_ACCOUNT, -30), ("partner:p", 30)]
    day = T0 + 24 * HOUR

    def reserved() -> Book:
        return with_entry(short(), reserve, hold, expires_us=day, target="partner:p")

    def then(
        b: Book, kind: EntryKind, time_us: int, postings: list[tuple[str, int]], ref: int = 2
    ) -> Book:
        b.add(kind, time_us, postings, ref=ref)
        return b

    case(
        "reserve-target-is-debit",
        with_entry(short(), reserve, hold, expires_us=day, target="member:a"),
        "a reservation needs a target other than its debit account",
    )
    case(
        "reserve-expires-at-once",
        with_entry(short(), reserve, hold, expires_us=T0 + 2 * HOUR, target="partner:p"),
        "a reservation must expire after it is made",
    )
    case(
        "reserve-with-ref",
        with_entry(short(), reserve, hold, ref=1, expires_us=day, target="partner:p"),
        "at sequence 2: a reserve entry must not name another entry",
    )
    case(
        "reserve-no-target",
        with_entry(short(), reserve, hold, expires_us=day),
        "at sequence 2: a reservation needs a target other than its debit account",
    )
    case(
        "reserve-three-postings",
        with_entry(
            short(),
            reserve,
            [("member:a", -20), ("member:b", -10), (RESERVED_ACCOUNT, 30)],
            expires_us=day,
            target="partner:p",
        ),
        "at sequence 2: a reservation moves a positive amount from one account to @reserved",
    )
    b = reserved()
    b.add(EntryKind.POST, day - 1, pay, ref=2, target="partner:p")
    case("post-with-target", b, "at sequence 3: a post entry carries no expiry or target")
    case(
        "post-partial",
        then(reserved(), EntryKind.POST, day - 1, [(RESERVED_ACCOUNT, -20), ("partner:p", 20)]),
        "at sequence 3: postings do not post reservation 2 exactly",
    )
    case(
        "expire-wrong-account",
        then(reserved(), EntryKind.EXPIRE, day, pay),
        "at sequence 3: postings do not expire reservation 2 exactly",
    )
    case(
        "reserve-negative",
        with_entry(
            short(),
            reserve,
            [("member:a", 30), (RESERVED_ACCOUNT, -30)],
            expires_us=day,
            target="partner:p",
        ),
        "a reservation moves a positive amount",
    )
    case(
        "post-after-expiry",
        then(reserved(), EntryKind.POST, day, pay),
        "at sequence 3: reservation 2 was posted after it expired",
    )
    case(
        "expire-before-expiry",
        then(reserved(), EntryKind.EXPIRE, day - 1, release),
        "at sequence 3: reservation 2 expired before its expiry time",
    )
    case(
        "post-wrong-target",
        then(reserved(), EntryKind.POST, day - 1, [(RESERVED_ACCOUNT, -30), ("member:b", 30)]),
        "at sequence 3: postings do not post reservation 2 exactly",
    )
    case(
        "reserve-target-reserved",
        with_entry(short(), reserve, hold, expires_us=day, target=RESERVED_ACCOUNT),
        "a reservation needs a target other than its debit account",
    )
    case(
        "void-wrong-account",
        then(reserved(), EntryKind.VOID, day, pay),
        "at sequence 3: postings do not void reservation 2 exactly",
    )
    case(
        "post-names-a-transfer",
        then(reserved(), EntryKind.POST, day - 1, pay, ref=1),
        "at sequence 3: a post entry must name an earlier pending reservation (names 1)",
    )
    b = then(then(reserved(), EntryKind.VOID, day - 2, release), EntryKind.EXPIRE, day, release)
    case(
        "double-resolution",
        b,
        "at sequence 4: a expire entry must name an earlier pending reservation",
    )
    case(
        "ref-to-later",
        then(reserved(), EntryKind.VOID, day, release, ref=3),
        "at sequence 3: a void entry must name an earlier pending reservation (names 3)",
    )
    b = reserved()
    b.add(EntryKind.REVERSE, day, [("member:a", 30), (RESERVED_ACCOUNT, -30)], ref=2)
    case(
        "reverse-a-reservation",
        b,
        "at sequence 3: only transfers can be reversed (entry 2 is a reserve)",
    )
    b = then(
        short(),
        EntryKind.REVERSE,
        T0 + 2 * HOUR,
        [("member:a", -100), ("scheme:issuance", 100)],
        ref=1,
    )
    b.add(EntryKind.REVERSE, T0 + 3 * HOUR, [("member:a", -100), ("scheme:issuance", 100)], ref=1)
    case(
        "double-reversal",
        b,
        "at sequence 3: a reverse entry must name an earlier transfer not yet reversed (names 1)",
    )
    b = then(
        short(),
        EntryKind.REVERSE,
        T0 + 2 * HOUR,
        [("member:a", -99), ("scheme:issuance", 99)],
        ref=1,
    )
    case("reverse-not-negation", b, "at sequence 2: postings are not the exact negation")


def checkpoint_cases() -> list[Case]:
    """Sections 5, 6 and 8: checkpoint roots, keys and signatures; removed entries."""
    cases = []
    b = every_kind()
    b.checkpoints[0] = replace(b.checkpoints[0], signature=b.checkpoints[1].signature)
    cases.append(
        bad_bundle("fail-checkpoint-bad-signature", b, "checkpoint 3: bad signature", "5, 8")
    )
    b = every_kind()
    b.checkpoints[1:] = []
    b.checkpoint(T0 + 9 * HOUR, key_id=b.keys[0].key_id)  # key 1 retired at size 9
    cases.append(
        bad_bundle(
            "fail-checkpoint-retired-key",
            b,
            "checkpoint 9: key 65b60673d6ed884b is not a listed key in service",
            "4, 5, 8",
        )
    )
    b = every_kind()
    b.checkpoint(T0 + 9 * HOUR, size=2, key_id=b.keys[1].key_id)  # key 2 signs sizes 3 on
    cases.append(
        bad_bundle(
            "fail-checkpoint-key-not-yet-in-service",
            b,
            f"at sequence 2: checkpoint 2: key {b.keys[1].key_id} is not a listed key in service",
            "4, 5, 8",
        )
    )
    b = every_kind()
    cp = b.checkpoints[0]
    b.checkpoints[0] = replace(cp, root=b.checkpoints[1].root)
    b.checkpoints[0] = replace(
        b.checkpoints[0], signature=b.signers[cp.key_id](checkpoint_digest(b.checkpoints[0]))
    )
    cases.append(
        bad_bundle(
            "fail-checkpoint-root",
            b,
            "at sequence 3: checkpoint 3 root does not match the log",
            "6, 8",
        )
    )
    b = _empty()
    zero = replace(b.checkpoints[0], root=ZERO_HASH)
    b.checkpoints[0] = replace(zero, signature=b.signers[zero.key_id](checkpoint_digest(zero)))
    message = "ledger conf: checkpoint 0 root is not the empty root"
    cases.append(bad_bundle("fail-checkpoint-0-root", b, message, "5, 6, 8"))
    b = every_kind()
    b.entries[8:] = []
    cases.append(
        bad_bundle(
            "fail-checkpoint-beyond-end",
            b,
            "at sequence 9: checkpoint 9 is beyond the log's end (8)",
            "8",
        )
    )
    b = every_kind()
    held = b.balances()["member:a"]
    text = replace_once(
        bundle_text(b),
        f'"code":"member:a","kind":"member","floor":0,"balance":{held}',
        f'"code":"member:a","kind":"member","floor":0,"balance":{held + 1}',
    )
    cases.append(
        Case(
            "fail-stored-balance",
            "bundle",
            "fail",
            f"stored balance of member:a is {held + 1}, its postings sum to {held}",
            text,
            "8",
        )
    )
    return cases


def pinning_cases() -> list[Case]:
    """Section 8, --trusted-keys and --held-checkpoints (section 9 gives the files)."""
    b = every_kind()
    forger = short(seed=SEED_3)
    rewritten = every_kind()
    rewritten.entries[0] = rewritten.sign(replace(rewritten.entries[0], meta=(("note", "x"),)))
    _rechain(rewritten)
    loose_key = keys_text(b.keys[:1]).replace('{"type":"key",', '{"type":"key","note":"x",')
    twice = checkpoints_text(b.checkpoints[:1]).replace('"size":3,', '"size":3,"size":9,')
    key_twice = keys_text(b.keys[:1]).replace(
        '"ledger":"conf",', '"ledger":"conf","ledger":"conf",'
    )
    root = b.checkpoints[0].root.hex()
    upper = checkpoints_text(b.checkpoints[:1]).replace(root, root.upper())
    return [
        Case(
            "fail-trusted-keys-file-duplicate-key",
            "bundle",
            "fail",
            "line 1: the key 'ledger' appears twice in one object",
            bundle_text(b),
            "9 (published key file)",
            trusted_keys=key_twice,
        ),
        Case(
            "fail-held-checkpoints-file-upper-case-hex",
            "bundle",
            "fail",
            "line 1: field 'root' is not lower-case hex",
            bundle_text(b),
            "9 (held-checkpoint file)",
            held_checkpoints=upper,
        ),
        Case(
            "fail-trusted-keys-file-unknown-field",
            "bundle",
            "fail",
            "line 1: unknown field 'note'",
            bundle_text(b),
            "9 (published key file)",
            trusted_keys=loose_key,
        ),
        Case(
            "fail-held-checkpoints-file-duplicate-key",
            "bundle",
            "fail",
            "line 1: the key 'size' appears twice in one object",
            bundle_text(b),
            "9 (held-checkpoint file)",
            held_checkpoints=twice,
        ),
        Case(
            "fail-trusted-keys-substituted",
            "bundle",
            "fail",
            "ledger conf: its key list does not begin with the trusted keys",
            bundle_text(forger),
            "8 (--trusted-keys)",
            trusted_keys=keys_text(b.keys[:1]),
        ),
        Case(
            "fail-trusted-keys-none-for-ledger",
            "bundle",
            "fail",
            "ledger conf: no trusted keys for this ledger",
            bundle_text(b),
            "8 (--trusted-keys)",
            trusted_keys=keys_text(every_kind("elsewhere").keys),
        ),
        Case(
            "fail-held-checkpoint-rewritten",
            "bundle",
            "fail",
            "at sequence 3: the log's first 3 entries are not those of the checkpoint you hold",
            bundle_text(rewritten),
            "8 (--held-checkpoints)",
            held_checkpoints=checkpoints_text(b.checkpoints[:1]),
        ),
        Case(
            "fail-held-checkpoint-beyond-end",
            "bundle",
            "fail",
            "the checkpoint you hold has 9 entries; the log has 3: entries were removed",
            bundle_text(_cut(every_kind(), 3)),
            "8 (--held-checkpoints)",
            held_checkpoints=checkpoints_text(b.checkpoints[1:]),
        ),
        Case(
            "fail-held-checkpoint-forged",
            "bundle",
            "fail",
            "the checkpoint you hold: checkpoint 3: bad signature",
            bundle_text(b),
            "8 (--held-checkpoints)",
            held_checkpoints=checkpoints_text(
                [replace(b.checkpoints[0], signature=b.checkpoints[1].signature)]
            ),
        ),
        Case(
            "fail-receipt-trusted-keys-substituted",
            "receipt",
            "fail",
            "is not a listed key in service",
            receipt_text(receipt_json(forger_receipt())),
            "6 (receipts), 9 (--trusted-keys)",
            trusted_keys=keys_text(b.keys),
        ),
    ]


def forger_receipt() -> Receipt:
    """A self-consistent receipt made under a forger's key: it verifies with the keys it carries."""
    forger = short(seed=SEED_3)
    forger.checkpoint(T0 + 2 * HOUR)
    return forger.receipt(1)


def _cut(b: Book, size: int) -> Book:
    b.entries[size:] = []
    b.checkpoints[:] = [cp for cp in b.checkpoints if cp.size <= size]
    return b


def _rechain(b: Book) -> None:
    """Re-link and re-sign every entry after a change, and re-sign the checkpoints: a rewrite by
    someone who holds the keys."""
    prev = ZERO_HASH
    for i, e in enumerate(b.entries):
        b.entries[i] = b.sign(replace(e, prev_hash=prev))
        prev = b.entries[i].hash
    sizes = [(cp.size, cp.time_us, cp.key_id) for cp in b.checkpoints]
    b.checkpoints.clear()
    for size, time_us, key_id in sizes:
        b.checkpoint(time_us, size, key_id)


def receipt_cases() -> list[Case]:
    """Section 6 (receipts) and 9 (their exact form and version)."""
    b = every_kind()
    good = receipt_json(b.receipt(3))
    cases = []

    def case(name: str, o: dict[str, Any], message: str, rule: str) -> None:
        cases.append(
            Case(f"fail-receipt-{name}", "receipt", "fail", message, receipt_text(o), rule)
        )

    def bent(**fields: Any) -> dict[str, Any]:
        return json.loads(json.dumps(good)) | fields  # type: ignore[no-any-return]

    proof = list(good["proof"])
    proof[0] = ("0" if proof[0][0] != "0" else "1") + proof[0][1:]
    case(
        "proof-changed",
        bent(proof=proof),
        "the inclusion proof does not lead to the checkpoint's root",
        "6",
    )
    case(
        "leaf-index",
        bent(leaf_index=4),
        "the entry does not belong to this checkpoint's ledger position",
        "6",
    )
    entry = dict(good["entry"]) | {"time_us": good["entry"]["time_us"] + 1}
    case("entry-changed", bent(entry=entry), "hash does not match the entry's content", "6")
    cp = dict(good["checkpoint"]) | {"signature": good["entry"]["signature"]}
    case("checkpoint-signature", bent(checkpoint=cp), "checkpoint 9: bad signature", "5, 6")
    case(
        "other-ledger-keys",
        bent(keys=[key_json(k) for k in every_kind("other").keys]),
        "the key list is not ledger conf's",
        "6",
    )
    case(
        "version-2",
        bent(version=2),
        "unsupported receipt format version 2; this verifier reads version 1",
        "9",
    )
    case("unknown-field", bent(extra=1), "unknown field 'extra'", "9")
    case(
        "upper-case-hex",
        bent(proof=[h.upper() for h in good["proof"]]),
        "field 'proof' is not lower-case hex",
        "9",
    )
    case("boolean-index", bent(leaf_index=True), "field 'leaf_index' must be an integer", "9")
    missing = bent()
    del missing["leaf_index"]
    case("missing-field", missing, "missing field 'leaf_index'", "9")
    w = every_kind()  # entry 3 signed by key 2, which serves from sequence 4; all else honest
    w.entries[2] = replace(w.entries[2], key_id=w.keys[1].key_id)
    _rechain(w)
    case(
        "entry-wrong-key",
        receipt_json(w.receipt(3)),
        f"signed by key {w.keys[1].key_id}, which is not the listed key for this sequence",
        "4, 6",
    )
    other = replace(b.checkpoints[1], ledger="other")  # signed by conf's key 2
    other = replace(other, signature=b.signers[other.key_id](checkpoint_digest(other)))
    case(
        "checkpoint-of-other-ledger",
        bent(checkpoint=checkpoint_json(other)),
        "the entry does not belong to this checkpoint's ledger position",
        "6",
    )
    twice = replace_once(
        receipt_text(good), '"leaf_index": 2,', '"leaf_index": 2,\n "leaf_index": 2,'
    )
    message = "the key 'leaf_index' appears twice in one object"
    cases.append(Case("fail-receipt-duplicate-key", "receipt", "fail", message, twice, "9"))
    return cases


def bundle_format_cases() -> list[Case]:
    """Section 9: the bundle file's own rules."""
    text = bundle_text(every_kind())
    cases = []

    def case(name: str, new: str, message: str) -> None:
        cases.append(Case(f"fail-bundle-{name}", "bundle", "fail", message, new, "9"))

    case(
        "version-2",
        bundle_text(every_kind(), header=HEADER | {"version": 2}),
        "line 1: unsupported bundle format version 2; this verifier reads version 1",
    )
    case(
        "not-a-bundle",
        bundle_text(every_kind(), header=HEADER | {"format": "x"}),
        "line 1: not a timebank-ledger-bundle version 1 file",
    )
    case("truncated", edit_lines(text, _drop_last), "truncated: no end-bundle line")
    case(
        "duplicate-json-key",
        replace_once(
            text,
            '{"type":"ledger","ledger":"conf"}',
            '{"type":"ledger","ledger":"conf","ledger":"conf"}',
        ),
        "line 2: the key 'ledger' appears twice",
    )
    case(
        "unknown-field",
        replace_once(text, '"kind":"member","floor":0', '"kind":"member","colour":"red","floor":0'),
        "unknown field 'colour'",
    )
    first_hash = every_kind().entries[0].hash.hex()
    case(
        "upper-case-hex",
        replace_once(text, f'"hash":"{first_hash}"', f'"hash":"{first_hash.upper()}"'),
        "field 'hash' is not lower-case hex",
    )
    case(
        "integer-out-of-range",
        replace_once(text, '"floor":null,"balance":-300', f'"floor":null,"balance":{2**63}'),
        "field 'balance' is out of range",
    )
    case(
        "end-count",
        replace_once(text, '"entries":9}', '"entries":8}'),
        "end line says 8 entries, found 9",
    )
    case(
        "section-twice",
        bundle_text(every_kind(), every_kind()),
        "ledger conf appears a second time (first at line 2)",
    )
    b = every_kind()
    fork = replace(b.checkpoints[0], root=b.checkpoints[1].root, time_us=T0 + 9 * HOUR)
    b.checkpoints.append(replace(fork, signature=b.signers[fork.key_id](checkpoint_digest(fork))))
    case("forked-checkpoint", bundle_text(b), "a second checkpoint of size 3 with another root")
    lines = text.splitlines()
    moved = [lines[0], lines[1], lines[4], lines[2], lines[3], *lines[5:]]  # account before keys
    case("out-of-order", "".join(line + "\n" for line in moved), "key out of order")

    def edited(change: Callable[[list[str]], None]) -> str:
        return edit_lines(text, change)

    def at(lines: list[str], start: str) -> int:
        return next(i for i, line in enumerate(lines) if line.startswith(start))

    def garbled(lines: list[str]) -> None:
        lines[1] = "{"

    def untyped(lines: list[str]) -> None:
        lines[1] = '{"ledger":"conf"}'

    def noted(lines: list[str]) -> None:
        lines.insert(2, '{"type":"note","ledger":"conf"}')

    def account_among_entries(lines: list[str]) -> None:
        account = lines.pop(at(lines, '{"type":"account"'))
        lines.insert(at(lines, '{"type":"entry"') + 1, account)

    def endless(lines: list[str]) -> None:
        del lines[at(lines, '{"type":"end",')]

    def swapped_accounts(lines: list[str]) -> None:
        i = at(lines, '{"type":"account","ledger":"conf","code":"member:a"')
        lines[i], lines[i + 1] = lines[i + 1], lines[i]

    case("not-json", edited(garbled), "line 2: not JSON")
    case("no-type", edited(untyped), "line 2: not a bundle record")
    case("unknown-type", edited(noted), "line 3: unexpected 'note' record")
    case("record-among-entries", edited(account_among_entries), "account out of order")
    case("no-end", edited(endless), "unexpected 'end-bundle' record")
    case(
        "missing-field",
        replace_once(text, '"floor":null,"balance":-300', '"floor":null'),
        "missing field 'balance'",
    )
    case(
        "number-as-string",
        replace_once(text, '"size":3,', '"size":"3",'),
        "field 'size' must be an integer",
    )
    case(
        "negative-time",
        replace_once(text, f'"time_us":{T0},', '"time_us":-1,'),
        "field 'time_us' is out of range (0 to 2^63 - 1)",
    )
    b = every_kind()
    b.checkpoints.append(b.checkpoints[0])
    case("checkpoint-twice", bundle_text(b), "checkpoint 3 out of order (checkpoints go by size)")
    case(
        "accounts-out-of-order",
        edited(swapped_accounts),
        "account member:a out of order (accounts go by code)",
    )
    b = short()  # an entry of another ledger, hashed and signed, in conf's section
    b.add(EntryKind.TRANSFER, T0 + 2 * HOUR, [("member:a", -1), ("member:b", 1)])
    b.entries[1] = b.sign(replace(b.entries[1], ledger="other"))
    case("entry-outside-section", bundle_text(b), "entry outside its ledger's section")
    return cases


def multi_ledger_cases() -> list[Case]:
    """Section 8: every failing ledger is reported, one line each."""
    good, first, second = every_kind("conf-a"), every_kind("conf-b"), every_kind("conf-c")
    first.entries[4] = replace(first.entries[4], signature=first.entries[3].signature)
    second.entries[1] = replace(second.entries[1], time_us=0)
    return [
        Case(
            "fail-two-ledgers-at-fault",
            "bundle",
            "fail",
            "ledger conf-b at sequence 5: bad signature",
            bundle_text(good, first, second),
            "8",
            failing_ledgers=("conf-b", "conf-c"),
        ),
    ]


# ---- the rules, and the cases that break each ------------------------------------------------

DATABASE_ONLY = "(database only)"

# Every rule a verifier MUST apply, by id: where docs/ledger-format.md states it, and what it
# says. The document's section 10 prints this table with each rule's cases (rule_table);
# tests/ledger/test_conformance.py checks that every numbered rule of the document has an id
# here, and every id a negative case (but for the two a file cannot reach).
RULES: tuple[tuple[str, str, str], ...] = (
    ("sig.1", "3, rule 1", "S is canonical (S < L), never reduced"),
    ("sig.2.key", "3, rule 2", "a public key is canonically encoded (y < p)"),
    ("sig.2.r", "3, rule 2", "a signature's R is canonically encoded (y < p)"),
    ("sig.3.key", "3, rule 3", "a public key is not of small order"),
    ("sig.3.r", "3, rule 3", "a signature's R is not of small order"),
    ("sig.4", "3, rule 4", "the cofactorless equation holds"),
    ("keys.1", "4, rule 1", "the key list is not empty"),
    ("keys.2", "4, rule 2", "a key's id is the id of its public key"),
    ("keys.3", "4, rule 3", "a key is a canonical point not of small order"),
    ("keys.4", "4, rule 4", "no key id is listed twice"),
    (
        "keys.5",
        "4, rule 5",
        "the first key signs itself; each later key is certified by the one before",
    ),
    ("keys.6", "4, rule 6", "the first key starts at sequence 1"),
    ("keys.7", "4, rule 7", "a key starts no earlier than the key it replaces"),
    ("keys.8", "4, rule 8", "every key is of the first key's ledger"),
    ("keys.9", "4, rule 9", "each key statement's signature verifies"),
    ("keys.entry", "4", "entry s is signed by the last key with from_seq <= s"),
    ("keys.checkpoint", "4", "a checkpoint of size n is signed by a key in service at n"),
    ("receipt.1", "6, step 1", "every key of a receipt names the entry's ledger"),
    ("receipt.2", "6, step 2", "a receipt's key list is valid"),
    (
        "receipt.3",
        "6, step 3",
        "a receipt's checkpoint key is in service and its signature verifies",
    ),
    ("receipt.4", "6, step 4", "a receipt's entry hash, key and signature hold"),
    ("receipt.5", "6, step 5", "the entry is of the checkpoint's ledger, at leaf seq - 1"),
    ("receipt.6", "6, step 6", "the inclusion proof leads to the checkpoint's root"),
    ("entry.postings", "7", "an entry has 2 to 64 postings"),
    ("entry.amounts", "7", "each amount is non-zero, at most 10^9 either way"),
    ("entry.order", "7", "postings are in canonical order, each account once"),
    ("entry.sum", "7", "an entry's amounts sum to zero"),
    (
        "entry.meta",
        "2, 3, 7",
        "metadata: at most 32 pairs, keys names in canonical order, values at most 1024 bytes",
    ),
    ("kind.transfer", "7", "a transfer: ref 0, no target or expiry, no @reserved posting"),
    (
        "kind.reserve",
        "7",
        "a reserve: ref 0, a target, a later expiry, @reserved +a and one debit -a",
    ),
    ("kind.post", "7", "a post: a pending reservation, before expiry, @reserved -a to the target"),
    ("kind.void", "7", "a void: a pending reservation, @reserved -a back to the debit account"),
    ("kind.expire", "7", "an expire: a pending reservation, at or after expiry, as a void"),
    ("kind.reverse", "7", "a reverse: a transfer not yet reversed, its postings negated"),
    (
        "entry.references",
        "7",
        "ref names an earlier entry, named once; only transfers are reversed",
    ),
    ("entry.timing", "7", "post only before expiry; expire only at or after it"),
    ("entry.time", "7", "time never goes backwards"),
    ("entry.floors", "7", "no negative posting takes an account below its floor"),
    ("A.1", "8, phase A 1", "the key list rules of section 4"),
    ("A.2", "8, phase A 2", "no two checkpoints of one size"),
    ("A.3", "8, phase A 3", "every key names the ledger"),
    ("A.4", "8, phase A 4", "with --trusted-keys, the key list begins with the trusted keys"),
    (
        "A.5",
        "8, phase A 5",
        "with --held-checkpoints, each held checkpoint is signed by a key in service",
    ),
    ("B.1", "8, phase B 1", "sequence numbers run on without a gap"),
    ("B.2", "8, phase B 2", "each entry is of the ledger and links to the previous hash"),
    ("B.3", "8, phase B 3", "the kind is one of the six"),
    ("B.4", "8, phase B 4", "the stored hash is the hash of the content"),
    ("B.5", "8, phase B 5", "key_id is the listed key for the seq"),
    ("B.6", "8, phase B 6", "time never goes backwards"),
    (
        "B.7",
        "8, phase B 7",
        "each entry is well formed for its kind (the entry.* and kind.* rules)",
    ),
    ("B.8", "8, phase B 8", "every posting's account is known"),
    ("B.9", "8, phase B 9", "no account goes below its floor"),
    ("B.10", "8, phase B 10", "a checkpoint's root is the root of the log's first size entries"),
    (
        "B.11",
        "8, phase B 11",
        "a held checkpoint's root is the root of the log's first size entries",
    ),
    ("B.signatures", "8, phase B", "each entry's signature verifies; the lowest bad seq is named"),
    ("C.1", "8, phase C 1", "a database's stored head is the last entry " + DATABASE_ONLY),
    ("C.2", "8, phase C 2", "no held checkpoint is beyond the log's end"),
    ("C.3", "8, phase C 3", "no checkpoint is beyond the log's end; size 0 has the empty root"),
    ("C.4", "8, phase C 4", "each stored balance is the sum of its account's postings"),
    ("C.5", "8, phase C 5", "balances sum to zero (implied by entry.sum, which refuses first)"),
    (
        "C.6",
        "8, phase C 6",
        "@reserved holds the pending total (implied by the kind rules, which refuse first)",
    ),
    ("D", "8, phase D", "every checkpoint's key is in service and its signature verifies"),
    ("E", "8, phase E", "consistency proofs and stored Merkle nodes " + DATABASE_ONLY),
    ("output", "8, output", "every failing ledger is reported, one line each"),
    ("bundle.order", "9", "records come in the exporter's order"),
    ("bundle.1", "9, reader 1", "each line is a JSON object with a type"),
    ("bundle.2", "9, reader 2", "no unknown type"),
    ("bundle.3", "9, reader 3", "no record outside its own ledger's section"),
    ("bundle.4", "9, reader 4", "no other record among a section's entries"),
    ("bundle.5", "9, reader 5", "the end count is the number of entries"),
    ("bundle.6", "9, reader 6", "every section has its end line"),
    ("bundle.7", "9, reader 7", "the file has its end-bundle line"),
    ("bundle.8", "9, reader 8", "no JSON object holds one key twice"),
    (
        "bundle.9",
        "9, reader 9",
        "each record has exactly its fields, written as the exporter writes them",
    ),
    (
        "bundle.10",
        "9, reader 10",
        "integers are signed 64-bit; seq, times, ref and sizes not negative",
    ),
    ("bundle.11", "9, reader 11", "no ledger's section appears twice"),
    (
        "bundle.12",
        "9, reader 12",
        "no forked or repeated checkpoint; checkpoints by size, accounts by code",
    ),
    (
        "bundle.version",
        "9, format version",
        "the first line is version 1 of the format; another is refused by name",
    ),
    ("receipt-file.version", "9, receipt file", "a receipt of another version is refused by name"),
    (
        "receipt-file.exact",
        "9, receipt file",
        "a receipt has exactly its fields, written as the writer writes them",
    ),
    ("receipt-file.json", "9, receipt file", "no JSON object holds one key twice"),
    (
        "key-file",
        "9, published key file",
        "key lines held to the bundle's form; no key twice in an object",
    ),
    (
        "held-file",
        "9, held-checkpoint file",
        "checkpoint lines of the bundle's types; no key twice in an object",
    ),
)

# The rules each negative case breaks (every fail case is here; see RULES).
CASE_RULES: dict[str, tuple[str, ...]] = {
    "fail-signature-s-plus-l": ("sig.1",),
    "fail-signature-small-order-r": ("sig.3.r",),
    "fail-signature-non-canonical-r": ("sig.2.r",),
    "fail-key-identity-point": ("sig.3.key", "keys.3", "A.1"),
    "fail-key-non-canonical": ("sig.2.key", "keys.3", "A.1"),
    "fail-receipt-identity-key": ("sig.3.key", "keys.3", "receipt.2"),
    "fail-receipt-s-plus-l": ("sig.1", "receipt.4"),
    "fail-keys-none": ("keys.1", "A.1"),
    "fail-keys-id-mismatch": ("keys.2",),
    "fail-keys-listed-twice": ("keys.4",),
    "fail-keys-not-certified-by-previous": ("keys.5",),
    "fail-keys-first-not-at-1": ("keys.6",),
    "fail-keys-starts-before-previous": ("keys.7",),
    "fail-keys-other-ledger": ("keys.8", "A.3", "bundle.3"),
    "fail-receipt-key-of-other-ledger": ("keys.8", "receipt.1"),
    "fail-keys-bad-certificate": ("keys.9", "sig.4"),
    "fail-entry-gap": ("B.1",),
    "fail-entry-prev-hash": ("B.2",),
    "fail-entry-content-changed": ("B.4",),
    "fail-entry-bad-signature": ("sig.4", "B.signatures"),
    "fail-entry-wrong-key": ("keys.entry", "B.5"),
    "fail-entry-retired-key": ("keys.entry", "B.5"),
    "fail-entry-time-backwards": ("entry.time", "B.6"),
    "fail-entry-unknown-kind": ("B.3",),
    "fail-entry-one-posting": ("entry.postings", "B.7"),
    "fail-entry-too-many-postings": ("entry.postings",),
    "fail-entry-zero-amount": ("entry.amounts",),
    "fail-entry-amount-too-large": ("entry.amounts",),
    "fail-entry-postings-order": ("entry.order",),
    "fail-entry-postings-same-account": ("entry.order",),
    "fail-entry-not-zero-sum": ("entry.sum", "B.7", "C.5"),
    "fail-entry-meta-order": ("entry.meta",),
    "fail-entry-meta-key-not-a-name": ("entry.meta",),
    "fail-entry-meta-too-long": ("entry.meta",),
    "fail-entry-meta-too-many": ("entry.meta",),
    "fail-entry-touches-reserved": ("kind.transfer", "C.6"),
    "fail-entry-transfer-with-ref": ("kind.transfer",),
    "fail-entry-transfer-with-target": ("kind.transfer",),
    "fail-entry-unknown-account": ("B.8",),
    "fail-entry-floor-breached": ("entry.floors", "B.9"),
    "fail-entry-floor-counts-reservations": ("entry.floors", "B.9"),
    "fail-entry-reserve-with-ref": ("kind.reserve",),
    "fail-entry-reserve-no-target": ("kind.reserve",),
    "fail-entry-reserve-target-is-debit": ("kind.reserve",),
    "fail-entry-reserve-target-reserved": ("kind.reserve",),
    "fail-entry-reserve-expires-at-once": ("kind.reserve",),
    "fail-entry-reserve-negative": ("kind.reserve", "C.6"),
    "fail-entry-reserve-three-postings": ("kind.reserve",),
    "fail-entry-post-after-expiry": ("kind.post", "entry.timing", "B.7"),
    "fail-entry-post-wrong-target": ("kind.post",),
    "fail-entry-post-partial": ("kind.post", "C.6"),
    "fail-entry-post-with-target": ("kind.post",),
    "fail-entry-post-names-a-transfer": ("kind.post", "entry.references"),
    "fail-entry-void-wrong-account": ("kind.void",),
    "fail-entry-ref-to-later": ("kind.void", "entry.references"),
    "fail-entry-expire-before-expiry": ("kind.expire", "entry.timing"),
    "fail-entry-expire-wrong-account": ("kind.expire",),
    "fail-entry-double-resolution": ("kind.expire", "entry.references"),
    "fail-entry-reverse-a-reservation": ("kind.reverse", "entry.references"),
    "fail-entry-double-reversal": ("kind.reverse", "entry.references"),
    "fail-entry-reverse-not-negation": ("kind.reverse",),
    "fail-checkpoint-bad-signature": ("sig.4", "D"),
    "fail-checkpoint-retired-key": ("keys.checkpoint", "D"),
    "fail-checkpoint-key-not-yet-in-service": ("keys.checkpoint", "D"),
    "fail-checkpoint-root": ("B.10",),
    "fail-checkpoint-0-root": ("C.3",),
    "fail-checkpoint-beyond-end": ("C.3",),
    "fail-stored-balance": ("C.4",),
    "fail-trusted-keys-file-unknown-field": ("key-file",),
    "fail-trusted-keys-file-duplicate-key": ("key-file",),
    "fail-held-checkpoints-file-duplicate-key": ("held-file",),
    "fail-held-checkpoints-file-upper-case-hex": ("held-file",),
    "fail-trusted-keys-substituted": ("A.4",),
    "fail-trusted-keys-none-for-ledger": ("A.4",),
    "fail-held-checkpoint-rewritten": ("B.11",),
    "fail-held-checkpoint-beyond-end": ("C.2",),
    "fail-held-checkpoint-forged": ("A.5",),
    "fail-receipt-trusted-keys-substituted": ("receipt.3",),
    "fail-receipt-checkpoint-signature": ("receipt.3", "sig.4"),
    "fail-receipt-entry-changed": ("receipt.4",),
    "fail-receipt-entry-wrong-key": ("receipt.4", "keys.entry"),
    "fail-receipt-leaf-index": ("receipt.5",),
    "fail-receipt-checkpoint-of-other-ledger": ("receipt.5",),
    "fail-receipt-proof-changed": ("receipt.6",),
    "fail-receipt-other-ledger-keys": ("receipt.1",),
    "fail-receipt-version-2": ("receipt-file.version",),
    "fail-receipt-unknown-field": ("receipt-file.exact",),
    "fail-receipt-upper-case-hex": ("receipt-file.exact",),
    "fail-receipt-boolean-index": ("receipt-file.exact",),
    "fail-receipt-missing-field": ("receipt-file.exact",),
    "fail-receipt-duplicate-key": ("receipt-file.json",),
    "fail-bundle-out-of-order": ("bundle.order",),
    "fail-bundle-not-json": ("bundle.1",),
    "fail-bundle-no-type": ("bundle.1",),
    "fail-bundle-unknown-type": ("bundle.2",),
    "fail-bundle-entry-outside-section": ("bundle.3", "B.2"),
    "fail-bundle-record-among-entries": ("bundle.4",),
    "fail-bundle-end-count": ("bundle.5",),
    "fail-bundle-no-end": ("bundle.6",),
    "fail-bundle-truncated": ("bundle.7",),
    "fail-bundle-duplicate-json-key": ("bundle.8",),
    "fail-bundle-unknown-field": ("bundle.9",),
    "fail-bundle-upper-case-hex": ("bundle.9",),
    "fail-bundle-missing-field": ("bundle.9",),
    "fail-bundle-number-as-string": ("bundle.9",),
    "fail-bundle-integer-out-of-range": ("bundle.10",),
    "fail-bundle-negative-time": ("bundle.10",),
    "fail-bundle-section-twice": ("bundle.11",),
    "fail-bundle-forked-checkpoint": ("bundle.12", "A.2"),
    "fail-bundle-checkpoint-twice": ("bundle.12", "A.2"),
    "fail-bundle-accounts-out-of-order": ("bundle.12",),
    "fail-bundle-version-2": ("bundle.version",),
    "fail-bundle-not-a-bundle": ("bundle.version",),
    "fail-two-ledgers-at-fault": ("output", "B.signatures"),
}


def cases_of_rule(cases: Sequence[Case]) -> dict[str, list[str]]:
    """Each rule id of RULES with the negative cases that break it, in suite order."""
    out: dict[str, list[str]] = {rule: [] for rule, _, _ in RULES}
    for c in cases:
        for rule in c.rules:
            out[rule].append(c.name)
    return out


def rule_table() -> list[str]:
    """The table of docs/ledger-format.md section 10: every rule and its negative cases."""
    of = cases_of_rule(all_cases())
    lines = ["| rule | section | what | negative cases |", "|---|---|---|---|"]
    for rule, where, what in RULES:
        names = ", ".join(f"`{name}`" for name in of[rule]) or "none: a file cannot reach it"
        lines.append(f"| `{rule}` | {where} | {what} | {names} |")
    return lines


def all_cases() -> list[Case]:
    cases = [
        *positive_cases(),
        *signature_cases(),
        *key_list_cases(),
        *entry_cases(),
        *checkpoint_cases(),
        *pinning_cases(),
        *receipt_cases(),
        *bundle_format_cases(),
        *multi_ledger_cases(),
    ]
    names = [c.name for c in cases]
    assert len(set(names)) == len(names), "two cases of one name"
    failing = {c.name for c in cases if c.verdict == "fail"}
    assert failing == set(CASE_RULES), sorted(failing ^ set(CASE_RULES))
    known = {rule for rule, _, _ in RULES}
    assert all(set(rules) <= known for rules in CASE_RULES.values()), "a rule not in RULES"
    return [replace(c, rules=CASE_RULES.get(c.name, ())) for c in cases]


def argv_for(case: dict[str, Any], here: Path) -> list[str]:
    """The command line README.md gives for a case (its files under `here`)."""
    path = str(here / case["file"])
    if case["kind"] == "bundle":
        argv = ["verify", "--bundle", path, "--workers", "1"]
    else:
        argv = ["verify-receipt", path]
    if "trusted_keys" in case:
        argv += ["--trusted-keys", str(here / case["trusted_keys"])]
    if "held_checkpoints" in case:
        argv += ["--held-checkpoints", str(here / case["held_checkpoints"])]
    return argv


def reference(case: dict[str, Any], here: Path) -> tuple[int, str, str]:
    """The reference verifier's exit status, standard output and standard error on a case,
    with `here` (where its files are) left out of the text."""
    from main.cli import main as timebank

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = timebank(argv_for(case, here))
    prefix = f"{here}{os.sep}"
    return code, out.getvalue().replace(prefix, ""), err.getvalue().replace(prefix, "")


@cache
def _outcomes() -> tuple[tuple[int, str], ...]:
    """(exit status, output) of the reference on every case: what cases.json records."""
    cases = all_cases()
    with tempfile.TemporaryDirectory() as tmp:
        here = Path(tmp)
        (here / "cases").mkdir()
        for c in cases:
            for name, text in c.files().items():
                (here / name).write_text(text, encoding="utf-8")
        found = []
        for c in cases:
            code, out, err = reference(c.manifest(0, ""), here)
            found.append((code, out if c.verdict == "ok" else err))
    return tuple(found)


def expected_files() -> dict[str, str]:
    """Every file of the suite (paths relative to conformance/), with its text."""
    cases = all_cases()
    out: dict[str, str] = {}
    for c in cases:
        out |= c.files()
    manifest = [c.manifest(*outcome) for c, outcome in zip(cases, _outcomes(), strict=True)]
    out["cases.json"] = json.dumps(manifest, indent=1) + "\n"
    return out


def main(argv: Sequence[str]) -> int:
    expected = expected_files()
    written = {str(p.relative_to(HERE)) for p in CASES.glob("*")} | {"cases.json"}
    if "--check" in argv:
        stale = sorted(
            name
            for name in expected
            if not (HERE / name).exists()
            or (HERE / name).read_text(encoding="utf-8") != expected[name]
        ) + sorted(written - set(expected))
        for name in stale:
            print(f"conformance/{name} differs from what make.py writes", file=sys.stderr)
        return 1 if stale else 0
    CASES.mkdir(exist_ok=True)
    for name in written - set(expected):
        (HERE / name).unlink()
    for name, text in expected.items():
        (HERE / name).write_text(text, encoding="utf-8")
    print(f"wrote {len(expected)} files for {len(all_cases())} cases")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
