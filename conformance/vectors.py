"""Render the test vectors of docs/ledger-format.md section 10 with the reference code.

    python conformance/vectors.py            print every vector block (and the receipt file)
    python conformance/vectors.py --check    exit 1 if a block of the document differs

The vectors form one small ledger, `taff-housing`, made from the format's two seeds and fixed
times, so the values are the same on every run. tests/ledger/test_format_vectors.py checks that
every block in the document is exactly what this module renders, and checks each value again
from the documented primitive encodings and a transcription of RFC 6962 (not this module).
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path

from ledger import merkle
from ledger.encoding import (
    checkpoint_bytes,
    checkpoint_digest,
    entry_bytes,
    entry_hash,
    key_bytes,
    key_digest,
)
from ledger.model import (
    RESERVED_ACCOUNT,
    ZERO_HASH,
    Checkpoint,
    Entry,
    EntryKind,
    Posting,
    PublicKey,
    Receipt,
)
from ledger.records import receipt_json
from ledger.signing import Signer

DOC = Path(__file__).resolve().parents[1] / "docs" / "ledger-format.md"
SEED_1 = bytes(range(1, 33))
SEED_2 = bytes(range(33, 65))
LEDGER = "taff-housing"
T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
HOUR = 3_600_000_000
DAY = 24 * HOUR
GATE = "partner:gate-arts"
ALICE = "member:alice"
T0001 = "member:T0001"

MERKLE_INCLUSIONS = ((0, 7), (3, 7), (5, 7), (6, 7), (2, 5), (4, 5))
MERKLE_CONSISTENCIES = ((1, 7), (2, 7), (3, 7), (4, 7), (6, 7), (3, 5))


@dataclass
class Vectors:
    """The vector ledger: its keys (with the seeds that made them), entries and checkpoints."""

    keys: list[tuple[PublicKey, bytes, bytes]] = field(default_factory=list)  # key, seed, signer
    entries: list[Entry] = field(default_factory=list)
    checkpoints: list[tuple[Checkpoint, bytes]] = field(default_factory=list)  # with its seed

    def key(self, seed: bytes, signer_seed: bytes, from_seq: int, time_us: int) -> None:
        me, signer = Signer(seed), Signer(signer_seed)
        key = PublicKey(LEDGER, me.key_id, me.public_key, from_seq, time_us, signer.key_id)
        self.keys.append((replace(key, signature=signer.sign(key_digest(key))), seed, signer_seed))

    def seed_for(self, seq: int) -> bytes:
        return [seed for key, seed, _ in self.keys if key.from_seq <= seq][-1]

    def entry(
        self,
        kind: EntryKind,
        time_us: int,
        postings: Sequence[tuple[str, int]],
        *,
        ref: int = 0,
        expires_us: int = 0,
        target: str = "",
        meta: tuple[tuple[str, str], ...] = (),
    ) -> None:
        seq = len(self.entries) + 1
        signer = Signer(self.seed_for(seq))
        items = tuple(sorted((Posting(a, n) for a, n in postings), key=lambda p: p.account))
        prev = self.entries[-1].hash if self.entries else ZERO_HASH
        e = Entry(
            LEDGER, seq, prev, kind, time_us, signer.key_id, ref, expires_us, target, items, meta
        )
        digest = entry_hash(e)
        self.entries.append(replace(e, hash=digest, signature=signer.sign(digest)))

    def checkpoint(self, seed: bytes, size: int, time_us: int) -> None:
        signer = Signer(seed)
        root = merkle.root_of([e.hash for e in self.entries[:size]])
        cp = Checkpoint(LEDGER, size, root, time_us, signer.key_id)
        self.checkpoints.append((replace(cp, signature=signer.sign(checkpoint_digest(cp))), seed))

    def receipt(self, seq: int, size: int) -> Receipt:
        cp = next(cp for cp, _ in self.checkpoints if cp.size == size)
        hashes = [e.hash for e in self.entries[:size]]
        ranges = merkle.inclusion_ranges(seq - 1, size)
        proof = tuple(merkle.root_of(hashes[s:e]) for s, e in ranges)
        return Receipt(self.entries[seq - 1], seq - 1, proof, cp, tuple(k for k, _, _ in self.keys))


@cache
def ledger() -> Vectors:
    """The events of section 10, in order."""
    v = Vectors()
    v.key(SEED_1, SEED_1, 1, T0)
    v.entry(
        EntryKind.TRANSFER,
        T0 + HOUR,
        [("scheme:issuance", -90), (T0001, 60), (ALICE, 30)],
        meta=(("activity", "garden"), ("note", "Café helpers")),
    )
    v.checkpoint(SEED_1, 1, T0 + HOUR + HOUR // 2)
    v.entry(
        EntryKind.RESERVE,
        T0 + 2 * HOUR,
        [(T0001, -30), (RESERVED_ACCOUNT, 30)],
        expires_us=T0 + 2 * HOUR + 7 * DAY,
        target=GATE,
    )
    v.key(SEED_2, SEED_1, 3, T0 + 3 * HOUR)
    v.checkpoint(SEED_2, 2, T0 + 4 * HOUR)
    v.entry(EntryKind.POST, T0 + 5 * HOUR, [(RESERVED_ACCOUNT, -30), (GATE, 30)], ref=2)
    v.entry(
        EntryKind.RESERVE,
        T0 + 6 * HOUR,
        [(ALICE, -20), (RESERVED_ACCOUNT, 20)],
        expires_us=T0 + 7 * HOUR,
        target=GATE,
    )
    v.entry(
        EntryKind.VOID, T0 + 6 * HOUR + HOUR // 2, [(RESERVED_ACCOUNT, -20), (ALICE, 20)], ref=4
    )
    v.entry(
        EntryKind.RESERVE,
        T0 + 7 * HOUR,
        [(T0001, -10), (RESERVED_ACCOUNT, 10)],
        expires_us=T0 + 8 * HOUR,
        target=GATE,
    )
    v.entry(EntryKind.EXPIRE, T0 + 8 * HOUR, [(RESERVED_ACCOUNT, -10), (T0001, 10)], ref=6)
    v.entry(EntryKind.TRANSFER, T0 + 9 * HOUR, [(ALICE, -15), (T0001, 15)], meta=(("note", "tea"),))
    v.entry(EntryKind.REVERSE, T0 + 9 * HOUR + HOUR // 2, [(ALICE, 15), (T0001, -15)], ref=8)
    v.checkpoint(SEED_2, 9, T0 + 10 * HOUR)
    return v


# ---- rendering ---------------------------------------------------------------------------------


def _line(name: str, value: object) -> str:
    text = value.hex() if isinstance(value, bytes) else str(value)
    return f"{name}: {text}" if text else f"{name}:"


def _hexes(values: Sequence[bytes]) -> str:
    return " ".join(h.hex() for h in values)


def _u32(n: int) -> bytes:
    return n.to_bytes(4, "big")


def _str(s: str) -> bytes:
    raw = s.encode("utf-8")
    return _u32(len(raw)) + raw


def _parts(canonical: bytes, names_and_sizes: Sequence[tuple[str, int]]) -> list[str]:
    """The canonical bytes cut field by field (each field's size given), as `part.*` lines."""
    out, at = [], 0
    for name, size in names_and_sizes:
        out.append(_line(f"part.{name}", canonical[at : at + size]))
        at += size
    assert at == len(canonical), "the parts do not cover the canonical bytes"
    return out


def key_block(name: str, key: PublicKey, seed: bytes, signer_seed: bytes) -> list[str]:
    canonical = key_bytes(key)
    sizes = [
        ("tag", 23),
        ("ledger", len(_str(key.ledger))),
        ("key_id", len(_str(key.key_id))),
        ("public_key", 32),
        ("from_seq", 8),
        ("time_us", 8),
        ("signer_key_id", len(_str(key.signer_key_id))),
    ]
    return [
        _line("vector", name),
        _line("type", "key"),
        _line("seed", seed),
        _line("signer_seed", signer_seed),
        _line("ledger", key.ledger),
        _line("from_seq", key.from_seq),
        _line("time_us", key.time_us),
        _line("public_key", key.public_key),
        _line("key_id", key.key_id),
        _line("signer_key_id", key.signer_key_id),
        *_parts(canonical, sizes),
        _line("canonical", canonical),
        _line("digest", key_digest(key)),
        _line("signature", key.signature),
    ]


def entry_block(name: str, e: Entry, seed: bytes) -> list[str]:
    canonical = entry_bytes(e)
    lines = [
        _line("vector", name),
        _line("type", "entry"),
        _line("seed", seed),
        _line("ledger", e.ledger),
        _line("seq", e.seq),
        _line("prev_hash", e.prev_hash),
        _line("kind", e.kind),
        _line("time_us", e.time_us),
        _line("key_id", e.key_id),
        _line("ref", e.ref),
        _line("expires_us", e.expires_us),
        _line("target", e.target),
    ]
    sizes = [
        ("tag", 25),
        ("ledger", len(_str(e.ledger))),
        ("seq", 8),
        ("prev_hash", 32),
        ("kind", len(_str(e.kind))),
        ("time_us", 8),
        ("key_id", len(_str(e.key_id))),
        ("ref", 8),
        ("expires_us", 8),
        ("target", len(_str(e.target))),
        ("posting_count", 4),
    ]
    for i, p in enumerate(e.postings):
        lines += [_line(f"posting.{i}.account", p.account), _line(f"posting.{i}.amount", p.amount)]
        sizes += [(f"posting.{i}.account", len(_str(p.account))), (f"posting.{i}.amount", 8)]
    sizes.append(("meta_count", 4))
    for i, (k, value) in enumerate(e.meta):
        lines += [_line(f"meta.{i}.key", k), _line(f"meta.{i}.value", value)]
        sizes += [(f"meta.{i}.key", len(_str(k))), (f"meta.{i}.value", len(_str(value)))]
    return [
        *lines,
        *_parts(canonical, sizes),
        _line("canonical", canonical),
        _line("hash", e.hash),
        _line("signature", e.signature),
        _line("leaf_hash", merkle.leaf_hash(e.hash)),
    ]


def checkpoint_block(
    name: str,
    cp: Checkpoint,
    seed: bytes,
    hashes: Sequence[bytes],
    inclusions: Sequence[int] = (),
    consistencies: Sequence[int] = (),
) -> list[str]:
    canonical = checkpoint_bytes(cp)
    sizes = [
        ("tag", 30),
        ("ledger", len(_str(cp.ledger))),
        ("size", 8),
        ("root", 32),
        ("time_us", 8),
        ("key_id", len(_str(cp.key_id))),
    ]
    lookup = _lookup(hashes)
    return [
        _line("vector", name),
        _line("type", "checkpoint"),
        _line("seed", seed),
        _line("ledger", cp.ledger),
        _line("size", cp.size),
        *(_line(f"entry_hash.{i}", h) for i, h in enumerate(hashes)),
        *(_line(f"leaf_hash.{i}", merkle.leaf_hash(h)) for i, h in enumerate(hashes)),
        _line("root", cp.root),
        _line("time_us", cp.time_us),
        _line("key_id", cp.key_id),
        *_parts(canonical, sizes),
        _line("canonical", canonical),
        _line("digest", checkpoint_digest(cp)),
        _line("signature", cp.signature),
        *(_line(f"inclusion.{i}", _hexes(_inclusion(i, cp.size, lookup))) for i in inclusions),
        *(
            _line(f"consistency.{m}", _hexes(_consistency(m, cp.size, lookup)))
            for m in consistencies
        ),
    ]


def _lookup(data: Sequence[bytes]) -> Callable[[merkle.Node], bytes]:
    def lookup(node: merkle.Node) -> bytes:
        level, index = node
        return merkle.root_of(data[index << level : (index + 1) << level])

    return lookup


def _inclusion(index: int, size: int, lookup: Callable[[merkle.Node], bytes]) -> list[bytes]:
    return [merkle.range_hash(s, e, lookup) for s, e in merkle.inclusion_ranges(index, size)]


def _consistency(old: int, new: int, lookup: Callable[[merkle.Node], bytes]) -> list[bytes]:
    return [merkle.range_hash(s, e, lookup) for s, e in merkle.consistency_ranges(old, new)]


def inclusion_steps(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> list[bytes]:
    """The running hash `r` after each element of an inclusion proof (section 6's algorithm)."""
    fn, sn, r, out = index, size - 1, leaf, []
    for p in proof:
        if fn % 2 == 1 or fn == sn:
            r = merkle.node_hash(p, r)
            if fn % 2 == 0:
                while fn != 0 and fn % 2 == 0:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = merkle.node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
        out.append(r)
    return out


def receipt_block(name: str, r: Receipt, entry_name: str, checkpoint_name: str) -> list[str]:
    leaf = merkle.leaf_hash(r.entry.hash)
    steps = inclusion_steps(r.leaf_index, r.checkpoint.size, leaf, r.proof)
    return [
        _line("vector", name),
        _line("type", "receipt"),
        _line("entry", entry_name),
        _line("checkpoint", checkpoint_name),
        _line("keys", " ".join(f"key-{i + 1}" for i in range(len(r.keys)))),
        _line("ledger", r.entry.ledger),
        _line("seq", r.entry.seq),
        _line("leaf_index", r.leaf_index),
        _line("size", r.checkpoint.size),
        _line("entry_hash", r.entry.hash),
        _line("leaf_hash", leaf),
        _line("proof", _hexes(r.proof)),
        *(_line(f"step.{i}", h) for i, h in enumerate(steps)),
        _line("root", r.checkpoint.root),
        _line("checkpoint_digest", checkpoint_digest(r.checkpoint)),
        _line("checkpoint_signature", r.checkpoint.signature),
    ]


def merkle_block() -> list[str]:
    data = [hashlib.sha256(f"leaf {i}".encode()).digest() for i in range(7)]
    lookup = _lookup(data)
    return [
        _line("vector", "merkle-7"),
        _line("type", "merkle"),
        _line("empty_root", merkle.EMPTY_ROOT),
        *(_line(f"entry_hash.{i}", d) for i, d in enumerate(data)),
        *(_line(f"leaf_hash.{i}", merkle.leaf_hash(d)) for i, d in enumerate(data)),
        *(_line(f"root.{n}", merkle.root_of(data[:n])) for n in range(1, 8)),
        *(
            _line(f"inclusion.{i}.{n}", _hexes(_inclusion(i, n, lookup)))
            for i, n in MERKLE_INCLUSIONS
        ),
        *(
            _line(f"consistency.{m}.{n}", _hexes(_consistency(m, n, lookup)))
            for m, n in MERKLE_CONSISTENCIES
        ),
    ]


RECEIPT_SEQ, RECEIPT_SIZE = 3, 9  # the receipt vector: the post, in checkpoint 3 (size 9)


def blocks() -> dict[str, list[str]]:
    """Every vector block of the document, by name, in the document's order."""
    v = ledger()
    hashes = [e.hash for e in v.entries]
    (k1, s1, g1), (k2, s2, g2) = v.keys
    (c1, cs1), (c2, cs2), (c3, cs3) = v.checkpoints
    out = {"key-1": key_block("key-1", k1, s1, g1)}
    for e in v.entries[:2]:
        out[f"entry-{e.seq}"] = entry_block(f"entry-{e.seq}", e, v.seed_for(e.seq))
    out["key-2"] = key_block("key-2", k2, s2, g2)
    out["checkpoint-1"] = checkpoint_block("checkpoint-1", c1, cs1, hashes[:1])
    out["checkpoint-2"] = checkpoint_block("checkpoint-2", c2, cs2, hashes[:2], (0, 1), (1,))
    for e in v.entries[2:]:
        out[f"entry-{e.seq}"] = entry_block(f"entry-{e.seq}", e, v.seed_for(e.seq))
    out["checkpoint-3"] = checkpoint_block("checkpoint-3", c3, cs3, hashes[:9], (), (2,))
    receipt = v.receipt(RECEIPT_SEQ, RECEIPT_SIZE)
    out["receipt-3"] = receipt_block("receipt-3", receipt, "entry-3", "checkpoint-3")
    out["merkle-7"] = merkle_block()
    return out


def receipt_file() -> str:
    """The receipt vector as `timebank receipt` prints it (the document's `json` block)."""
    return json.dumps(receipt_json(ledger().receipt(RECEIPT_SEQ, RECEIPT_SIZE)), indent=1)


# ---- the document ------------------------------------------------------------------------------


def fenced(text: str, language: str) -> list[list[str]]:
    """The lines of every ```language block of a markdown text."""
    found = re.findall(rf"^```{language}\n(.*?)^```$", text, flags=re.M | re.S)
    return [block.splitlines() for block in found]


def documented() -> dict[str, list[str]]:
    """The document's vector blocks, by name, in the document's order."""
    out: dict[str, list[str]] = {}
    for block in fenced(DOC.read_text(encoding="utf-8"), "text"):
        if block and block[0].startswith("vector:"):
            name = block[0].partition(":")[2].strip()
            assert name not in out, f"two vectors named {name}"
            out[name] = block
    return out


def main(argv: Sequence[str]) -> int:
    expected = blocks()
    if "--check" in argv:
        doc = documented()
        stale = [n for n in expected if doc.get(n) != expected[n]] + sorted(
            set(doc) - set(expected)
        )
        for name in stale:
            print(f"docs/ledger-format.md: vector {name} differs from vectors.py", file=sys.stderr)
        (receipt,) = fenced(DOC.read_text(encoding="utf-8"), "json")
        if "\n".join(receipt) != receipt_file():
            print("docs/ledger-format.md: the receipt file differs", file=sys.stderr)
            stale.append("receipt")
        return 1 if stale else 0
    for lines in expected.values():
        print("```text", *lines, "```", "", sep="\n")
    print("```json", receipt_file(), "```", sep="\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
