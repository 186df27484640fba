"""The test vectors of docs/ledger-format.md: the code reproduces every value, byte for byte.

Each vector's inputs are rebuilt into ledger objects, encoded, hashed, signed and proved by the
ledger code, and every documented value is compared. The field-by-field `part.*` lines are also
rebuilt from the documented primitive encodings alone, and the Merkle values from a direct
transcription of RFC 6962, so the document, the code and the RFC must all agree. Changing any one
byte must then break verification. Every block must also be exactly what conformance/vectors.py
renders from the reference code, so no line can be stale, missing or unchecked.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import struct
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace
from functools import cache
from pathlib import Path

import pytest

from conformance import vectors as rendered
from ledger import merkle, proofs
from ledger.bundle import BundleError, bundle_sources
from ledger.encoding import (
    CHECKPOINT_TAG,
    ENTRY_TAG,
    KEY_TAG,
    checkpoint_bytes,
    checkpoint_digest,
    entry_bytes,
    entry_hash,
    key_bytes,
    key_digest,
    key_id_for,
)
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
    normalise_meta,
    normalise_postings,
)
from ledger.records import load_receipt, receipt_json
from ledger.rules import postings_problem, shape_problem
from ledger.signing import Signer, verify_signature
from ledger.verify import LedgerData, verify_sources

DOC = Path(__file__).resolve().parents[2] / "docs" / "ledger-format.md"
Vector = dict[str, str]
TYPES = ("key", "entry", "checkpoint", "receipt", "merkle")


# ---- reading the document ----------------------------------------------------------------------


def _fenced(language: str) -> list[list[str]]:
    blocks: list[list[str]] = []
    current: list[str] | None = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if current is None:
            if line.strip() == f"```{language}":
                current = []
        elif line.strip() == "```":
            blocks.append(current)
            current = None
        else:
            current.append(line)
    assert current is None, f"unclosed ```{language} block in {DOC}"
    return blocks


@cache
def vectors() -> dict[str, Vector]:
    out: dict[str, Vector] = {}
    for block in _fenced("text"):
        if not block or not block[0].startswith("vector:"):
            continue
        vector: Vector = {}
        for line in block:
            name, sep, value = line.partition(":")
            assert sep, f"not a 'name: value' line: {line!r}"
            assert name not in vector, f"{name} given twice"
            vector[name.strip()] = value.strip()
        out[vector["vector"]] = vector
    return out


def vector(name: str) -> Vector:
    return vectors()[name]


def named(kind: str) -> list[str]:
    """The document's vectors of one type, in document order (entries by seq, keys by position)."""
    found = [name for name, v in vectors().items() if v.get("type") == kind]
    if kind == "entry":
        found.sort(key=lambda name: int(vector(name)["seq"]))
    return found


ENTRY_VECTORS = named("entry")
KEY_VECTORS = named("key")
CHECKPOINT_VECTORS = named("checkpoint")
RECEIPT_VECTORS = named("receipt")
SIGNED_VECTORS = KEY_VECTORS + ENTRY_VECTORS + CHECKPOINT_VECTORS
BUNDLE_VECTORS = ["key-1", "key-2", "entry-1", "entry-2", "checkpoint-1", "checkpoint-2"]


@cache
def bundle_lines() -> tuple[str, ...]:
    (block,) = _fenced("jsonl")
    return tuple(block)


@cache
def receipt_text() -> str:
    """The document's one `json` block: the receipt file of the receipt vector."""
    (block,) = _fenced("json")
    return "\n".join(block)


def _hex(v: Vector, name: str) -> bytes:
    return bytes.fromhex(v[name])


def _hexes(v: Vector, name: str) -> list[bytes]:
    return [bytes.fromhex(h) for h in v[name].split()]


def _indexed(v: Vector, prefix: str) -> list[str]:
    """The values of `prefix.0`, `prefix.1`, ... in order."""
    out: list[str] = []
    while f"{prefix}.{len(out)}" in v:
        out.append(v[f"{prefix}.{len(out)}"])
    return out


def _count(v: Vector, prefix: str) -> int:
    n = 0
    while f"{prefix}.{n}.{'account' if prefix == 'posting' else 'key'}" in v:
        n += 1
    return n


def entry_of(v: Vector) -> Entry:
    postings = tuple(
        Posting(v[f"posting.{i}.account"], int(v[f"posting.{i}.amount"]))
        for i in range(_count(v, "posting"))
    )
    meta = tuple((v[f"meta.{i}.key"], v[f"meta.{i}.value"]) for i in range(_count(v, "meta")))
    return Entry(
        v["ledger"],
        int(v["seq"]),
        _hex(v, "prev_hash"),
        EntryKind(v["kind"]),
        int(v["time_us"]),
        v["key_id"],
        int(v["ref"]),
        int(v["expires_us"]),
        v["target"],
        postings,
        meta,
        _hex(v, "hash"),
        _hex(v, "signature"),
    )


def key_of(v: Vector) -> PublicKey:
    return PublicKey(
        v["ledger"],
        v["key_id"],
        _hex(v, "public_key"),
        int(v["from_seq"]),
        int(v["time_us"]),
        v["signer_key_id"],
        _hex(v, "signature"),
    )


def checkpoint_of(v: Vector) -> Checkpoint:
    return Checkpoint(
        v["ledger"],
        int(v["size"]),
        _hex(v, "root"),
        int(v["time_us"]),
        v["key_id"],
        _hex(v, "signature"),
    )


def keys() -> list[PublicKey]:
    return [key_of(vector(name)) for name in KEY_VECTORS]


# ---- the documented primitives and RFC 6962, written out independently of the code -----------


def u32(n: int) -> bytes:
    return struct.pack(">I", n)


def u64(n: int) -> bytes:
    return struct.pack(">Q", n)


def i64(n: int) -> bytes:
    return struct.pack(">q", n)


def text(s: str) -> bytes:
    raw = s.encode("utf-8")
    return u32(len(raw)) + raw


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d: Sequence[bytes]) -> bytes:
    if not d:
        return sha256(b"")
    if len(d) == 1:
        return sha256(b"\x00" + d[0])
    k = _split(len(d))
    return sha256(b"\x01" + mth(d[:k]) + mth(d[k:]))


def path(m: int, d: Sequence[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _split(len(d))
    if m < k:
        return [*path(m, d[:k]), mth(d[k:])]
    return [*path(m - k, d[k:]), mth(d[:k])]


def subproof(m: int, d: Sequence[bytes], whole: bool) -> list[bytes]:
    if m == len(d):
        return [] if whole else [mth(d)]
    k = _split(len(d))
    if m <= k:
        return [*subproof(m, d[:k], whole), mth(d[k:])]
    return [*subproof(m - k, d[k:], False), mth(d[:k])]


def expected_parts(v: Vector) -> dict[str, bytes]:
    """What each `part.*` line must hold, from the inputs and the documented primitives."""
    kind = v["type"]
    if kind == "key":
        return {
            "part.tag": KEY_TAG,
            "part.ledger": text(v["ledger"]),
            "part.key_id": text(v["key_id"]),
            "part.public_key": _hex(v, "public_key"),
            "part.from_seq": u64(int(v["from_seq"])),
            "part.time_us": i64(int(v["time_us"])),
            "part.signer_key_id": text(v["signer_key_id"]),
        }
    if kind == "checkpoint":
        return {
            "part.tag": CHECKPOINT_TAG,
            "part.ledger": text(v["ledger"]),
            "part.size": u64(int(v["size"])),
            "part.root": _hex(v, "root"),
            "part.time_us": i64(int(v["time_us"])),
            "part.key_id": text(v["key_id"]),
        }
    parts = {
        "part.tag": ENTRY_TAG,
        "part.ledger": text(v["ledger"]),
        "part.seq": u64(int(v["seq"])),
        "part.prev_hash": _hex(v, "prev_hash"),
        "part.kind": text(v["kind"]),
        "part.time_us": i64(int(v["time_us"])),
        "part.key_id": text(v["key_id"]),
        "part.ref": u64(int(v["ref"])),
        "part.expires_us": i64(int(v["expires_us"])),
        "part.target": text(v["target"]),
        "part.posting_count": u32(_count(v, "posting")),
    }
    for i in range(_count(v, "posting")):
        parts[f"part.posting.{i}.account"] = text(v[f"posting.{i}.account"])
        parts[f"part.posting.{i}.amount"] = i64(int(v[f"posting.{i}.amount"]))
    parts["part.meta_count"] = u32(_count(v, "meta"))
    for i in range(_count(v, "meta")):
        parts[f"part.meta.{i}.key"] = text(v[f"meta.{i}.key"])
        parts[f"part.meta.{i}.value"] = text(v[f"meta.{i}.value"])
    return parts


def flipped(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


# ---- the document itself -----------------------------------------------------------------------


def test_the_document_holds_every_vector_and_the_example_bundle() -> None:
    assert list(vectors()) == list(rendered.blocks())
    assert {v["type"] for v in vectors().values()} == set(TYPES)
    assert {vector(name)["kind"] for name in ENTRY_VECTORS} == {str(k) for k in EntryKind}
    assert [int(vector(name)["seq"]) for name in ENTRY_VECTORS] == list(range(1, 10))
    assert RECEIPT_VECTORS == ["receipt-3"] and "merkle-7" in vectors()
    assert bundle_lines()[0].startswith('{"type":"bundle"')
    assert bundle_lines()[-1] == '{"type":"end-bundle"}'


@pytest.mark.parametrize("name", list(rendered.blocks()))
def test_each_block_is_exactly_what_the_reference_code_renders(name: str) -> None:
    """Every line of every block, so none is stale, missing or unchecked."""
    (block,) = [b for b in _fenced("text") if b and b[0] == f"vector: {name}"]
    assert block == rendered.blocks()[name]


def test_vectors_py_check_agrees_with_the_document() -> None:
    assert rendered.main(["--check"]) == 0
    assert receipt_text() == rendered.receipt_file()


@pytest.mark.parametrize("name", SIGNED_VECTORS)
def test_each_part_is_its_field_in_the_documented_primitive_encoding(name: str) -> None:
    v = vector(name)
    documented = {k: bytes.fromhex(value) for k, value in v.items() if k.startswith("part.")}
    assert documented == expected_parts(v)
    assert list(documented) == list(expected_parts(v)), "parts out of field order"
    assert b"".join(documented.values()) == _hex(v, "canonical")


# ---- keys --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", KEY_VECTORS)
def test_key_id_is_the_first_16_hex_digits_of_sha256_of_the_raw_public_key(name: str) -> None:
    v = vector(name)
    signer = Signer(_hex(v, "seed"))
    assert signer.public_key == _hex(v, "public_key")
    assert signer.key_id == v["key_id"] == key_id_for(signer.public_key)
    assert v["key_id"] == hashlib.sha256(signer.public_key).hexdigest()[:16]


@pytest.mark.parametrize("name", KEY_VECTORS)
def test_key_statement_bytes_digest_and_certifying_signature_match(name: str) -> None:
    v = vector(name)
    key = key_of(v)
    certifier = Signer(_hex(v, "signer_seed"))
    assert certifier.key_id == v["signer_key_id"]
    assert key_bytes(key) == _hex(v, "canonical")
    assert key_digest(key) == sha256(_hex(v, "canonical")) == _hex(v, "digest")
    assert certifier.sign(key_digest(key)) == _hex(v, "signature")
    assert verify_signature(certifier.public_key, _hex(v, "digest"), _hex(v, "signature"))


def test_first_key_is_self_signed_and_the_second_is_certified_by_the_first() -> None:
    first, second = keys()
    assert first.signer_key_id == first.key_id and first.from_seq == 1
    assert second.signer_key_id == first.key_id and second.from_seq == 3
    assert proofs.key_list_problem([first, second]) is None


def test_key_list_is_refused_out_of_order_or_with_the_second_key_alone() -> None:
    first, second = keys()
    assert proofs.key_list_problem([second, first]) is not None
    assert proofs.key_list_problem([second]) is not None
    assert proofs.key_list_problem([]) is not None


def test_each_sequence_number_is_signed_by_the_key_whose_range_covers_it() -> None:
    first, second = keys()
    assert [proofs.key_for_seq([first, second], s) for s in (1, 2, 3, 4)] == [
        first,
        first,
        second,
        second,
    ]


def test_checkpoint_keys_follow_the_documented_table() -> None:
    first, second = keys()

    def signers(size: int) -> set[str]:
        out = set()
        for key in (first, second):
            cp = Checkpoint("taff-housing", size, ZERO_HASH, 0, key.key_id)
            if proofs.checkpoint_key([first, second], cp) is not None:
                out.add(key.key_id)
        return out

    assert signers(0) == signers(1) == {first.key_id}
    assert signers(2) == {first.key_id, second.key_id}
    assert signers(3) == signers(4) == {second.key_id}


# ---- entries -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ENTRY_VECTORS)
def test_entry_canonical_bytes_hash_signature_and_leaf_hash_match(name: str) -> None:
    v = vector(name)
    entry = entry_of(v)
    signer = Signer(_hex(v, "seed"))
    assert signer.key_id == entry.key_id
    assert entry_bytes(entry) == _hex(v, "canonical")
    assert entry_hash(entry) == sha256(_hex(v, "canonical")) == entry.hash
    assert signer.sign(entry.hash) == entry.signature
    assert verify_signature(signer.public_key, entry.hash, entry.signature)
    assert merkle.leaf_hash(entry.hash) == sha256(b"\x00" + entry.hash) == _hex(v, "leaf_hash")
    assert proofs.entry_problem(keys(), entry) is None


@pytest.mark.parametrize("name", ENTRY_VECTORS)
def test_vector_postings_and_metadata_are_in_canonical_order(name: str) -> None:
    entry = entry_of(vector(name))
    assert postings_problem(entry.postings) is None
    assert normalise_postings(list(reversed(entry.postings))) == entry.postings
    assert normalise_meta(dict(reversed(entry.meta))) == entry.meta


def test_postings_sort_by_utf8_bytes_so_upper_case_comes_first() -> None:
    accounts = [p.account for p in entry_of(vector("entry-1")).postings]
    assert accounts == ["member:T0001", "member:alice", "scheme:issuance"]
    assert sorted(accounts, key=str.lower) != accounts  # not a case-insensitive order


def test_entries_chain_from_the_zero_hash() -> None:
    entries = [entry_of(vector(name)) for name in ENTRY_VECTORS]
    assert entries[0].seq == 1 and entries[0].prev_hash == ZERO_HASH == bytes(32)
    for before, after in itertools.pairwise(entries):
        assert after.seq == before.seq + 1 and after.prev_hash == before.hash


def test_vector_entries_are_well_formed_each_of_its_kind() -> None:
    entries = [entry_of(vector(name)) for name in ENTRY_VECTORS]
    for e in entries:
        referenced = entries[e.ref - 1] if e.ref else None
        assert shape_problem(e, referenced) is None, e.seq
        if e.kind is EntryKind.RESERVE:
            assert e.ref == 0 and e.expires_us > e.time_us and e.target
        else:
            assert (e.expires_us, e.target) == (0, "")
    transfer, reserve = entries[0], entries[1]
    assert transfer.kind is EntryKind.TRANSFER and (transfer.ref, transfer.target) == (0, "")
    assert reserve.kind is EntryKind.RESERVE
    assert vector("entry-2")["part.meta_count"] == "00000000"
    by_kind = {str(e.kind): e for e in entries}
    assert by_kind["post"].time_us < entries[by_kind["post"].ref - 1].expires_us
    assert by_kind["expire"].time_us == entries[by_kind["expire"].ref - 1].expires_us
    assert by_kind["reverse"].postings == tuple(
        Posting(p.account, -p.amount) for p in entries[by_kind["reverse"].ref - 1].postings
    )


async def _noted(entries: list[Entry]) -> AsyncIterator[Entry]:
    for e in entries:
        yield e


async def test_the_vector_ledger_passes_the_reference_verifier_whole() -> None:
    """All nine entries, both keys and the three checkpoints, replayed as `timebank verify`
    does: chain, keys by sequence, references, floors and checkpoint roots."""
    entries = [entry_of(vector(name)) for name in ENTRY_VECTORS]
    floors: dict[str, int | None] = {RESERVED_ACCOUNT: 0, "member:T0001": 0, "member:alice": 0}
    floors |= {"partner:gate-arts": 0, "scheme:issuance": None}
    balances = dict.fromkeys(floors, 0)
    for e in entries:
        for p in e.postings:
            balances[p.account] += p.amount
    assert balances == {RESERVED_ACCOUNT: 0, "member:T0001": 30, "member:alice": 30,
                        "partner:gate-arts": 30, "scheme:issuance": -90}  # fmt: skip
    accounts = [Account("taff-housing", a, "x", f, balances[a]) for a, f in floors.items()]

    async def one() -> AsyncIterator[LedgerData]:
        yield LedgerData(
            "taff-housing",
            keys(),
            accounts,
            [checkpoint_of(vector(name)) for name in CHECKPOINT_VECTORS],
            {e.ref for e in entries if e.kind is EntryKind.REVERSE},
            _noted(entries),
        )

    report = await verify_sources(one(), workers=1)
    assert report.ok, report.summary()
    assert report.summary().startswith("OK 1 ledgers, 9 entries, 3 checkpoints, 2 keys")


# ---- checkpoints and proofs --------------------------------------------------------------------


def _entry_hashes(size: int | None = None) -> list[bytes]:
    return [_hex(vector(e), "hash") for e in ENTRY_VECTORS][:size]


@pytest.mark.parametrize("name", CHECKPOINT_VECTORS)
def test_checkpoint_leaves_root_bytes_digest_and_signature_match(name: str) -> None:
    v = vector(name)
    cp = checkpoint_of(v)
    entries = _entry_hashes(cp.size)
    assert [bytes.fromhex(h) for h in _indexed(v, "entry_hash")] == entries
    leaves = [merkle.leaf_hash(h) for h in entries]
    assert [bytes.fromhex(h) for h in _indexed(v, "leaf_hash")] == leaves
    assert merkle.root_of(entries) == mth(entries) == cp.root
    assert checkpoint_bytes(cp) == _hex(v, "canonical")
    assert checkpoint_digest(cp) == sha256(_hex(v, "canonical")) == _hex(v, "digest")
    signer = Signer(_hex(v, "seed"))
    assert signer.key_id == cp.key_id
    assert signer.sign(checkpoint_digest(cp)) == cp.signature
    assert proofs.checkpoint_problem(keys(), cp) is None


@pytest.mark.parametrize("name", CHECKPOINT_VECTORS)
def test_a_checkpoint_vectors_proofs_are_rfc_proofs_that_verify(name: str) -> None:
    v = vector(name)
    cp = checkpoint_of(v)
    hashes = _entry_hashes(cp.size)
    for index in (int(k.split(".")[1]) for k in v if re.fullmatch(r"inclusion\.\d+", k)):
        proof = _hexes(v, f"inclusion.{index}")
        assert proof == path(index, hashes)
        entry = entry_of(vector(ENTRY_VECTORS[index]))
        receipt = Receipt(entry, index, tuple(proof), cp, tuple(keys()))
        assert proofs.receipt_problem(receipt, keys()) is None
    for old_size in (int(k.split(".")[1]) for k in v if re.fullmatch(r"consistency\.\d+", k)):
        proof = _hexes(v, f"consistency.{old_size}")
        assert proof == subproof(old_size, hashes, True)
        (old,) = [checkpoint_of(vector(n)) for n in CHECKPOINT_VECTORS if
                  int(vector(n)["size"]) == old_size]  # fmt: skip
        assert proofs.consistency_problem(keys(), old, cp, proof) is None


def test_checkpoint_vectors_carry_inclusion_and_consistency_proofs() -> None:
    assert {"inclusion.0", "inclusion.1", "consistency.1"} <= set(vector("checkpoint-2"))
    assert "consistency.2" in vector("checkpoint-3")


# ---- the receipt -------------------------------------------------------------------------------


def inclusion_steps(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> list[bytes]:
    """RFC 9162 section 2.1.3.2 as section 6 writes it, keeping `r` after each element."""
    fn, sn, r, out = index, size - 1, leaf, []
    for p in proof:
        assert sn != 0
        if fn % 2 == 1 or fn == sn:
            r = sha256(b"\x01" + p + r)
            if fn % 2 == 0:
                while fn != 0 and fn % 2 == 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = sha256(b"\x01" + r + p)
        fn >>= 1
        sn >>= 1
        out.append(r)
    assert sn == 0
    return out


def receipt_of(v: Vector) -> Receipt:
    cp = checkpoint_of(vector(v["checkpoint"]))
    listed = [key_of(vector(name)) for name in v["keys"].split()]
    entry = entry_of(vector(v["entry"]))
    return Receipt(entry, int(v["leaf_index"]), tuple(_hexes(v, "proof")), cp, tuple(listed))


@pytest.mark.parametrize("name", RECEIPT_VECTORS)
def test_a_receipt_vector_is_the_entrys_path_to_its_checkpoints_root(name: str) -> None:
    v = vector(name)
    receipt = receipt_of(v)
    entry, cp = receipt.entry, receipt.checkpoint
    assert (entry.ledger, entry.seq, cp.size) == (v["ledger"], int(v["seq"]), int(v["size"]))
    assert receipt.leaf_index == entry.seq - 1
    assert _hex(v, "entry_hash") == entry.hash == sha256(entry_bytes(entry))
    leaf = sha256(b"\x00" + entry.hash)
    assert _hex(v, "leaf_hash") == leaf
    hashes = _entry_hashes(cp.size)
    assert list(receipt.proof) == path(receipt.leaf_index, hashes)
    steps = inclusion_steps(receipt.leaf_index, cp.size, leaf, receipt.proof)
    assert [bytes.fromhex(h) for h in _indexed(v, "step")] == steps
    assert steps[-1] == _hex(v, "root") == cp.root == mth(hashes)
    assert _hex(v, "checkpoint_digest") == sha256(checkpoint_bytes(cp))
    assert _hex(v, "checkpoint_signature") == cp.signature
    assert proofs.receipt_problem(receipt, list(receipt.keys)) is None


def test_the_receipt_file_is_the_receipt_vector_as_timebank_receipt_writes_it() -> None:
    (name,) = RECEIPT_VECTORS
    receipt = receipt_of(vector(name))
    assert receipt_text() == json.dumps(receipt_json(receipt), indent=1)
    parsed = load_receipt(receipt_text())
    assert parsed == receipt
    assert proofs.receipt_problem(parsed, list(parsed.keys)) is None


def test_the_receipt_file_passes_verify_receipt_and_fails_with_any_hash_changed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from main.cli import main

    path_ = tmp_path / "receipt.json"
    path_.write_text(receipt_text() + "\n", encoding="utf-8")
    assert main(["verify-receipt", str(path_)]) == 0
    assert "OK entry 3 of ledger taff-housing is in checkpoint 9" in capsys.readouterr().out
    o = json.loads(receipt_text())
    for value in [*o["proof"], o["entry"]["hash"], o["checkpoint"]["root"]]:
        bad = f"{int(value[:2], 16) ^ 0x01:02x}{value[2:]}"
        path_.write_text(receipt_text().replace(value, bad), encoding="utf-8")
        assert main(["verify-receipt", str(path_)]) == 1, value
        assert "FAILED receipt for ledger taff-housing entry 3" in capsys.readouterr().err


def _tree_lookup(data: Sequence[bytes]) -> Callable[[merkle.Node], bytes]:
    def lookup(node: merkle.Node) -> bytes:
        level, index = node
        return merkle.root_of(data[index << level : (index + 1) << level])

    return lookup


def _proof_names(v: Vector, prefix: str) -> list[tuple[int, int]]:
    found = [re.fullmatch(rf"{prefix}\.(\d+)\.(\d+)", name) for name in v]
    return [(int(m[1]), int(m[2])) for m in found if m]


def test_merkle_vector_roots_follow_rfc_6962_and_the_code() -> None:
    v = vector("merkle-7")
    data = [bytes.fromhex(h) for h in _indexed(v, "entry_hash")]
    assert data == [sha256(f"leaf {i}".encode()) for i in range(7)]
    assert _hex(v, "empty_root") == merkle.EMPTY_ROOT == mth([]) == merkle.root_of([])
    assert [bytes.fromhex(h) for h in _indexed(v, "leaf_hash")] == [
        merkle.leaf_hash(d) for d in data
    ]
    frontier = merkle.Frontier()
    for n in range(1, 8):
        frontier.append(data[n - 1])
        assert _hex(v, f"root.{n}") == mth(data[:n]) == merkle.root_of(data[:n]) == frontier.root()


def test_merkle_vector_inclusion_proofs_are_rfc_paths_that_verify() -> None:
    v = vector("merkle-7")
    data = [bytes.fromhex(h) for h in _indexed(v, "entry_hash")]
    lookup = _tree_lookup(data)
    cases = _proof_names(v, "inclusion")
    assert len(cases) >= 5
    for index, size in cases:
        proof = _hexes(v, f"inclusion.{index}.{size}")
        assert proof == path(index, data[:size])
        ranges = merkle.inclusion_ranges(index, size)
        assert proof == [merkle.range_hash(s, e, lookup) for s, e in ranges]
        root = _hex(v, f"root.{size}")
        assert merkle.verify_inclusion(index, size, merkle.leaf_hash(data[index]), proof, root)


def test_merkle_vector_consistency_proofs_are_rfc_proofs_that_verify() -> None:
    v = vector("merkle-7")
    data = [bytes.fromhex(h) for h in _indexed(v, "entry_hash")]
    lookup = _tree_lookup(data)
    cases = _proof_names(v, "consistency")
    assert len(cases) >= 5
    for old, new in cases:
        proof = _hexes(v, f"consistency.{old}.{new}")
        assert proof == subproof(old, data[:new], True)
        ranges = merkle.consistency_ranges(old, new)
        assert proof == [merkle.range_hash(s, e, lookup) for s, e in ranges]
        old_root, new_root = _hex(v, f"root.{old}"), _hex(v, f"root.{new}")
        assert merkle.verify_consistency(old, new, old_root, new_root, proof)


# ---- one changed byte breaks verification ------------------------------------------------------


def _signer_public_key(v: Vector) -> bytes:
    seed = v["signer_seed"] if v["type"] == "key" else v["seed"]
    return Signer(bytes.fromhex(seed)).public_key


def _digest_name(v: Vector) -> str:
    return "hash" if v["type"] == "entry" else "digest"


@pytest.mark.parametrize("name", SIGNED_VECTORS)
def test_changing_any_byte_of_the_canonical_bytes_breaks_hash_and_signature(name: str) -> None:
    v = vector(name)
    canonical, public_key = _hex(v, "canonical"), _signer_public_key(v)
    digest, signature = _hex(v, _digest_name(v)), _hex(v, "signature")
    assert verify_signature(public_key, digest, signature)
    for i in range(len(canonical)):
        changed = sha256(flipped(canonical, i))
        assert changed != digest
        assert not verify_signature(public_key, changed, signature), f"byte {i}"


@pytest.mark.parametrize("name", SIGNED_VECTORS)
def test_changing_any_byte_of_the_signature_breaks_it(name: str) -> None:
    v = vector(name)
    public_key, digest = _signer_public_key(v), _hex(v, _digest_name(v))
    signature = _hex(v, "signature")
    for i in range(len(signature)):
        assert not verify_signature(public_key, digest, flipped(signature, i)), f"byte {i}"


@pytest.mark.parametrize(
    "change",
    [
        {"time_us": 1767229200000001},
        {"ref": 1},
        {"target": "x"},
        {"meta": (("activity", "gardem"), ("note", "Café helpers"))},
        {"postings": (Posting("member:T0001", 61), Posting("member:alice", 29))},
        {"prev_hash": flipped(ZERO_HASH, 31)},
    ],
    ids=["time", "ref", "target", "meta", "postings", "prev_hash"],
)
def test_changing_an_entry_field_is_caught_by_the_entry_check(change: dict[str, object]) -> None:
    entry = entry_of(vector("entry-1"))
    assert proofs.entry_problem(keys(), entry) is None
    assert proofs.entry_problem(keys(), replace(entry, **change)) is not None  # type: ignore[arg-type]


def test_changing_a_key_statement_or_checkpoint_is_caught() -> None:
    first, second = keys()
    cp = checkpoint_of(vector("checkpoint-2"))
    assert proofs.key_list_problem([first, replace(second, from_seq=2)]) is not None
    assert proofs.key_list_problem([first, replace(second, time_us=0)]) is not None
    assert (
        proofs.checkpoint_problem([first, second], replace(cp, root=flipped(cp.root, 0)))
        is not None
    )
    assert proofs.checkpoint_problem([first, second], replace(cp, size=3)) is not None
    # key-1 is retired for size 3 and beyond, even with a valid signature over the same fields
    assert proofs.checkpoint_problem([first, second], replace(cp, key_id=first.key_id)) is not None


def test_changing_any_byte_of_a_proof_or_leaf_breaks_it() -> None:
    v = vector("merkle-7")
    data = [bytes.fromhex(h) for h in _indexed(v, "entry_hash")]
    for index, size in _proof_names(v, "inclusion"):
        proof, root = _hexes(v, f"inclusion.{index}.{size}"), _hex(v, f"root.{size}")
        leaf = merkle.leaf_hash(data[index])
        assert not merkle.verify_inclusion(index, size, flipped(leaf, 0), proof, root)
        for j, node in enumerate(proof):
            for b in (0, 31):
                bad = [*proof[:j], flipped(node, b), *proof[j + 1 :]]
                assert not merkle.verify_inclusion(index, size, leaf, bad, root)
    for old, new in _proof_names(v, "consistency"):
        proof = _hexes(v, f"consistency.{old}.{new}")
        old_root, new_root = _hex(v, f"root.{old}"), _hex(v, f"root.{new}")
        for j, node in enumerate(proof):
            for b in (0, 31):
                bad = [*proof[:j], flipped(node, b), *proof[j + 1 :]]
                assert not merkle.verify_consistency(old, new, old_root, new_root, bad)


def test_a_receipt_with_a_changed_proof_or_index_is_refused() -> None:
    cp = checkpoint_of(vector("checkpoint-2"))
    entry = entry_of(vector("entry-1"))
    proof = tuple(_hexes(vector("checkpoint-2"), "inclusion.0"))
    good = Receipt(entry, 0, proof, cp)
    assert proofs.receipt_problem(good, keys()) is None
    bad_proof = (flipped(proof[0], 5),)
    assert proofs.receipt_problem(replace(good, proof=bad_proof), keys()) is not None
    assert proofs.receipt_problem(replace(good, leaf_index=1), keys()) is not None


# ---- the example bundle ------------------------------------------------------------------------


async def _verify_bundle(tmp_path: Path, lines: Sequence[str]) -> str:
    path = tmp_path / "bundle.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = await verify_sources(bundle_sources(path), workers=1)
    return report.summary()


async def test_the_example_bundle_verifies(tmp_path: Path) -> None:
    summary = await _verify_bundle(tmp_path, bundle_lines())
    assert summary.startswith("OK 1 ledgers, 2 entries, 2 checkpoints, 2 keys, 5 accounts")


def test_the_example_bundle_carries_the_vector_values() -> None:
    text_ = "\n".join(bundle_lines())
    for name in BUNDLE_VECTORS:
        assert vector(name)["signature"] in text_
        assert vector(name).get("hash", vector(name).get("root", "")) in text_
    for name in set(SIGNED_VECTORS) - set(BUNDLE_VECTORS):  # later than checkpoint 2
        assert vector(name)["signature"] not in text_


def _bundle_with_changed_byte(value: str) -> list[str]:
    """The bundle with the first byte of hex `value` changed wherever it is the field value."""
    bad = f"{int(value[:2], 16) ^ 0x01:02x}{value[2:]}"
    lines = [line.replace(f'"{value}"', f'"{bad}"') for line in bundle_lines()]
    assert list(bundle_lines()) != lines
    return lines


@pytest.mark.parametrize(
    "name, field, reason",
    [
        ("key-1", "signature", "bad certificate signature"),
        ("key-2", "public_key", "its id does not match its public key"),
        ("entry-1", "signature", "at sequence 1: bad signature"),
        ("entry-2", "signature", "at sequence 2: bad signature"),
        ("checkpoint-1", "root", "checkpoint 1 root does not match the log"),
        ("checkpoint-2", "signature", "checkpoint 2: bad signature"),
    ],
)
async def test_the_example_bundle_fails_with_one_byte_changed(
    tmp_path: Path, name: str, field: str, reason: str
) -> None:
    lines = _bundle_with_changed_byte(vector(name)[field])
    summary = await _verify_bundle(tmp_path, lines)
    assert summary.startswith("FAILED") and reason in summary


@pytest.mark.parametrize(
    "old, new, reason",
    [
        ('["member:alice",30]', '["member:alice",31]', "at sequence 1: stored hash"),
        ('["activity","garden"]', '["activity","gardem"]', "at sequence 1: stored hash"),
        ('"expires_us":1767837600000000', '"expires_us":1767837600000001', "at sequence 2"),
        (
            'alice","kind":"member","floor":0,"balance":30',
            'alice","kind":"member","floor":0,"balance":29',
            "stored balance of member:alice",
        ),
        ('"entries":2}', '"entries":1}', "end line says 1 entries"),
    ],
    ids=["amount", "meta", "expiry", "stored-balance", "end-count"],
)
async def test_the_example_bundle_fails_with_one_field_changed(
    tmp_path: Path, old: str, new: str, reason: str
) -> None:
    lines = [line.replace(old, new) for line in bundle_lines()]
    assert list(bundle_lines()) != lines
    try:
        summary = await _verify_bundle(tmp_path, lines)
    except BundleError as exc:
        summary = f"FAILED bundle: {exc}"
    assert summary.startswith("FAILED") and reason in summary
