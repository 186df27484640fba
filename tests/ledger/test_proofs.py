"""ledger.proofs: the offline checks an auditor runs with nothing but the published public keys.

Most tests build keys, entries and checkpoints by hand (pure, no database) so each check can be
fed exactly the fault it must catch; the last ones take receipts and consistency proofs from a
real store (a SQLite file, or on a server run a PostgreSQL database of the test's own).
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from ledger import LedgerStore, from_us
from ledger.encoding import checkpoint_digest, entry_hash, key_digest
from ledger.merkle import Frontier, consistency_ranges, inclusion_ranges, root_of
from ledger.model import ZERO_HASH, Checkpoint, Entry, EntryKind, Posting, PublicKey, Receipt
from ledger.proofs import (
    checkpoint_key,
    checkpoint_problem,
    consistency_problem,
    entry_problem,
    key_for_seq,
    key_list_problem,
    receipt_problem,
)
from ledger.signing import Signer

pytestmark = pytest.mark.both_backends  # the last test uses a store; the pure ones cost nothing
LEDGER = "scheme-a"
K1, K2, K3, OUTSIDER = (Signer(bytes([n]) * 32) for n in (1, 2, 3, 9))
ROTATIONS = (10, 25)  # K2 signs from entry 10, K3 from entry 25


def certify(
    new: Signer,
    by: Signer,
    from_seq: int,
    *,
    ledger: str = LEDGER,
    key_id: str | None = None,
    signer_key_id: str | None = None,
) -> PublicKey:
    key = PublicKey(
        ledger,
        key_id or new.key_id,
        new.public_key,
        from_seq,
        1_767_225_600_000_000 + from_seq,
        signer_key_id or by.key_id,
    )
    return dataclasses.replace(key, signature=by.sign(key_digest(key)))


def chain() -> list[PublicKey]:
    return [
        certify(K1, K1, 1),
        certify(K2, K1, ROTATIONS[0]),
        certify(K3, K2, ROTATIONS[1]),
    ]


KEYS = chain()


def signer_for(seq: int) -> Signer:
    return K1 if seq < ROTATIONS[0] else K2 if seq < ROTATIONS[1] else K3


def sign_entry(e: Entry, by: Signer) -> Entry:
    e = dataclasses.replace(e, key_id=by.key_id)
    digest = entry_hash(e)
    return dataclasses.replace(e, hash=digest, signature=by.sign(digest))


def build_entries(count: int) -> list[Entry]:
    out: list[Entry] = []
    prev = ZERO_HASH
    for seq in range(1, count + 1):
        e = Entry(
            LEDGER,
            seq,
            prev,
            EntryKind.TRANSFER,
            1_767_225_600_000_000 + seq * 60_000_000,
            "",
            0,
            0,
            "",
            (Posting("member:a", 30 + seq), Posting("scheme:issuance", -30 - seq)),
            (("n", str(seq)),),
        )
        e = sign_entry(e, signer_for(seq))
        out.append(e)
        prev = e.hash
    return out


ENTRIES = build_entries(30)
HASHES = [e.hash for e in ENTRIES]


def sign_checkpoint(size: int, by: Signer, root: bytes | None = None) -> Checkpoint:
    cp = Checkpoint(LEDGER, size, root_of(HASHES[:size]) if root is None else root, 7, by.key_id)
    return dataclasses.replace(cp, signature=by.sign(checkpoint_digest(cp)))


def proof_for(index: int, size: int) -> tuple[bytes, ...]:
    return tuple(root_of(HASHES[s:e]) for s, e in inclusion_ranges(index, size))


def receipt(seq: int, cp: Checkpoint) -> Receipt:
    return Receipt(ENTRIES[seq - 1], seq - 1, proof_for(seq - 1, cp.size), cp, tuple(KEYS))


CP20 = sign_checkpoint(20, K2)
CP30 = sign_checkpoint(30, K3)


def flipped(b: bytes, at: int = 0) -> bytes:
    return b[:at] + bytes([b[at] ^ 0x01]) + b[at + 1 :]


# ---- key lists --------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [1, 2, 3])
def test_a_certified_key_chain_passes(length: int) -> None:
    assert key_list_problem(KEYS[:length]) is None


def test_rotating_twice_before_any_entry_is_allowed() -> None:
    keys = [certify(K1, K1, 1), certify(K2, K1, 5), certify(K3, K2, 5)]
    assert key_list_problem(keys) is None
    assert key_for_seq(keys, 5) == keys[2]


def test_an_empty_key_list_is_refused() -> None:
    assert key_list_problem([]) == "the ledger has no public keys"


def _bad_chains() -> dict[str, tuple[list[PublicKey], str]]:
    k1, k2, _ = KEYS
    return {
        "second key self-signed": (
            [k1, certify(K2, K2, 10)],
            f"key {K2.key_id}: must be certified by {K1.key_id}",
        ),
        "second key signed by an outsider claiming the first": (
            [k1, certify(K2, OUTSIDER, 10, signer_key_id=K1.key_id)],
            f"key {K2.key_id}: bad certificate signature",
        ),
        "third key certified by the first, skipping the second": (
            [k1, k2, certify(K3, K1, 25)],
            f"key {K3.key_id}: must be certified by {K2.key_id}",
        ),
        "first key certified by another key": (
            [certify(K1, K2, 1), certify(K2, K1, 10)],
            f"key {K1.key_id}: must be certified by {K1.key_id}",
        ),
        "first key's signature flipped": (
            [dataclasses.replace(k1, signature=flipped(k1.signature)), k2],
            f"key {K1.key_id}: bad certificate signature",
        ),
        "second key's signature flipped": (
            [k1, dataclasses.replace(k2, signature=flipped(k2.signature, 63))],
            f"key {K2.key_id}: bad certificate signature",
        ),
        "signature truncated": (
            [k1, dataclasses.replace(k2, signature=k2.signature[:63])],
            f"key {K2.key_id}: bad certificate signature",
        ),
        "certified statement altered (from_seq)": (
            [k1, dataclasses.replace(k2, from_seq=11)],
            f"key {K2.key_id}: bad certificate signature",
        ),
        "public key swapped under the same id": (
            [k1, dataclasses.replace(k2, public_key=K3.public_key)],
            f"key {K2.key_id}: its id does not match its public key",
        ),
        "id does not match the public key": (
            [k1, certify(K2, K1, 10, key_id=K3.key_id)],
            f"key {K3.key_id}: its id does not match its public key",
        ),
        "first key not from sequence 1": (
            [certify(K1, K1, 2)],
            f"key {K1.key_id}: the first key must start at sequence 1",
        ),
        "first key from sequence 0": (
            [certify(K1, K1, 0)],
            f"key {K1.key_id}: the first key must start at sequence 1",
        ),
        "key listed twice": (
            [k1, certify(K1, K1, 10)],
            f"key {K1.key_id}: listed twice",
        ),
        "later key starts before the one it replaces": (
            [k1, k2, certify(K3, K2, 9)],
            f"key {K3.key_id}: starts before the key it replaces",
        ),
        "key of another ledger": (
            [k1, certify(K2, K1, 10, ledger="scheme-b")],
            f"key {K2.key_id}: belongs to another ledger",
        ),
    }


@pytest.mark.parametrize("case", list(_bad_chains()))
def test_a_broken_key_chain_is_refused(case: str) -> None:
    keys, expected = _bad_chains()[case]
    assert key_list_problem(keys) == expected


def test_an_outsider_cannot_append_their_key_to_the_list() -> None:
    for claimed in (K3.key_id, OUTSIDER.key_id):
        forged = certify(OUTSIDER, OUTSIDER, 40, signer_key_id=claimed)
        problem = key_list_problem([*KEYS, forged])
        assert problem is not None and OUTSIDER.key_id in problem


# ---- which key signs what ---------------------------------------------------------------------


def test_key_for_seq_picks_the_last_key_in_service() -> None:
    assert key_for_seq(KEYS, 0) is None
    assert key_for_seq([], 1) is None
    for seq in range(1, 60):
        key = key_for_seq(KEYS, seq)
        assert key is not None and key.key_id == signer_for(seq).key_id, seq


@pytest.mark.parametrize(
    ("signer", "sizes_ok", "sizes_refused"),
    [
        # a key may sign a checkpoint from the size just before its first entry ...
        (K1, [0, 1, 5, 9], [10, 11, 24, 30]),
        (K2, [9, 10, 20, 24], [0, 8, 25, 30]),
        (K3, [24, 25, 30, 1000], [0, 10, 23]),
    ],
)
def test_checkpoint_key_is_the_key_in_service_at_that_size(
    signer: Signer, sizes_ok: list[int], sizes_refused: list[int]
) -> None:
    # ... until its successor starts: a retired key cannot sign a later checkpoint
    for size in sizes_ok:
        cp = Checkpoint(LEDGER, size, bytes(32), 1, signer.key_id)
        key = checkpoint_key(KEYS, cp)
        assert key is not None and key.key_id == signer.key_id, size
    for size in sizes_refused:
        cp = Checkpoint(LEDGER, size, bytes(32), 1, signer.key_id)
        assert checkpoint_key(KEYS, cp) is None, size


def test_checkpoint_key_refuses_an_unlisted_key() -> None:
    assert checkpoint_key(KEYS, Checkpoint(LEDGER, 30, bytes(32), 1, OUTSIDER.key_id)) is None


def test_checkpoint_problem() -> None:
    assert checkpoint_problem(KEYS, CP20) is None
    assert checkpoint_problem(KEYS, CP30) is None
    retired = sign_checkpoint(30, K1)  # a genuine signature, by a key retired at 10
    assert checkpoint_problem(KEYS, retired) == (
        f"checkpoint 30: key {K1.key_id} is not a listed key in service at that size"
    )
    outsider = sign_checkpoint(30, OUTSIDER)
    assert "not a listed key" in (checkpoint_problem(KEYS, outsider) or "")
    posing = dataclasses.replace(sign_checkpoint(30, OUTSIDER), key_id=K3.key_id)
    assert checkpoint_problem(KEYS, posing) == "checkpoint 30: bad signature"
    for altered in [
        dataclasses.replace(CP30, root=bytes(32)),
        dataclasses.replace(CP30, size=29),
        dataclasses.replace(CP30, time_us=8),
    ]:
        problem = checkpoint_problem(KEYS, altered)
        assert problem is not None and "bad signature" in problem, altered


def test_entry_problem() -> None:
    for e in ENTRIES:
        assert entry_problem(KEYS, e) is None, e.seq
    e = ENTRIES[14]
    assert entry_problem(KEYS, dataclasses.replace(e, meta=())) == (
        "hash does not match the entry's content"
    )
    by_outsider = sign_entry(e, OUTSIDER)
    assert "not the listed key for this sequence" in (entry_problem(KEYS, by_outsider) or "")
    by_retired = sign_entry(e, K1)
    assert "not the listed key for this sequence" in (entry_problem(KEYS, by_retired) or "")
    posing = dataclasses.replace(e, signature=OUTSIDER.sign(e.hash))  # listed id, wrong signer
    assert entry_problem(KEYS, posing) == "bad signature"


# ---- receipts ---------------------------------------------------------------------------------


@pytest.mark.parametrize("cp", [CP20, CP30], ids=["size-20", "size-30"])
def test_every_receipt_proves_its_entry(cp: Checkpoint) -> None:
    for seq in range(1, cp.size + 1):
        assert receipt_problem(receipt(seq, cp), KEYS) is None, seq


def scaled(e: Entry) -> Entry:
    return dataclasses.replace(
        e, postings=tuple(Posting(p.account, p.amount * 2) for p in e.postings)
    )


def _bad_receipts() -> dict[str, tuple[Receipt, list[PublicKey], str | tuple[str, ...]]]:
    good = receipt(12, CP30)
    e = good.entry
    root_signed_wrong = sign_checkpoint(30, K3, root=flipped(CP30.root))
    other_ledger = sign_entry(dataclasses.replace(e, ledger="scheme-b"), K2)
    other_checkpoint = Checkpoint("scheme-b", 30, CP30.root, 7, K3.key_id)
    other_checkpoint = dataclasses.replace(
        other_checkpoint, signature=K3.sign(checkpoint_digest(other_checkpoint))
    )
    return {
        "proof element flipped": (
            dataclasses.replace(good, proof=(flipped(good.proof[0]), *good.proof[1:])),
            KEYS,
            "the inclusion proof does not lead to the checkpoint's root",
        ),
        "proof cut short": (
            dataclasses.replace(good, proof=good.proof[:-1]),
            KEYS,
            "the inclusion proof does not lead",
        ),
        "another entry's proof": (
            dataclasses.replace(good, proof=proof_for(12, 30)),
            KEYS,
            "the inclusion proof does not lead",
        ),
        "wrong leaf index": (
            dataclasses.replace(good, leaf_index=12),
            KEYS,
            "the entry does not belong to this checkpoint's ledger position",
        ),
        "entry from another ledger": (
            dataclasses.replace(good, entry=other_ledger),
            KEYS,
            ("does not belong", "not ledger scheme-b"),
        ),
        "checkpoint of another ledger": (
            dataclasses.replace(good, checkpoint=other_checkpoint),
            KEYS,
            "the entry does not belong to this checkpoint's ledger position",
        ),
        "entry content changed": (
            dataclasses.replace(good, entry=scaled(e)),
            KEYS,
            "hash does not match the entry's content",
        ),
        "entry re-signed by an outsider": (
            dataclasses.replace(good, entry=sign_entry(scaled(e), OUTSIDER)),
            KEYS,
            f"signed by key {OUTSIDER.key_id}, which is not the listed key",
        ),
        "entry re-signed with the right key after a change": (
            dataclasses.replace(good, entry=sign_entry(scaled(e), K2)),
            KEYS,
            "the inclusion proof does not lead",
        ),
        "entry signature flipped": (
            dataclasses.replace(good, entry=dataclasses.replace(e, signature=flipped(e.signature))),
            KEYS,
            "bad signature",
        ),
        "checkpoint root changed": (
            dataclasses.replace(good, checkpoint=dataclasses.replace(CP30, root=bytes(32))),
            KEYS,
            "checkpoint 30: bad signature",
        ),
        "checkpoint of a wrong root, validly signed": (
            dataclasses.replace(good, checkpoint=root_signed_wrong),
            KEYS,
            "the inclusion proof does not lead",
        ),
        "checkpoint by the retired key": (
            dataclasses.replace(good, checkpoint=sign_checkpoint(30, K1)),
            KEYS,
            "is not a listed key in service",
        ),
        "entry beyond the checkpoint": (
            Receipt(ENTRIES[24], 24, proof_for(19, 20), CP20, tuple(KEYS)),
            KEYS,
            "the inclusion proof does not lead",
        ),
        "key list broken": (good, [KEYS[0], certify(K2, K2, 10), KEYS[2]], "must be certified"),
        "key list of an outsider": (good, [certify(OUTSIDER, OUTSIDER, 1)], "not a listed key"),
    }


@pytest.mark.parametrize("case", list(_bad_receipts()))
def test_a_bad_receipt_is_refused(case: str) -> None:
    r, keys, expected = _bad_receipts()[case]
    problem = receipt_problem(r, keys)
    assert problem is not None
    wanted = expected if isinstance(expected, tuple) else (expected,)
    assert any(fragment in problem for fragment in wanted), problem


# ---- consistency between checkpoints -------------------------------------------------------


def consistency_proof(old: int, new: int) -> list[bytes]:
    return [root_of(HASHES[s:e]) for s, e in consistency_ranges(old, new)]


def test_consistency_problem_accepts_an_extension() -> None:
    cp9 = sign_checkpoint(9, K1)
    cp24 = sign_checkpoint(24, K2)
    cps = [cp9, CP20, cp24, CP30]
    for i, old in enumerate(cps):
        for new in cps[i:]:
            proof = consistency_proof(old.size, new.size) if old.size < new.size else []
            assert consistency_problem(KEYS, old, new, proof) is None, (old.size, new.size)


def test_consistency_problem_refuses() -> None:
    proof = consistency_proof(20, 30)
    altered = [flipped(proof[0]), *proof[1:]]
    assert consistency_problem(KEYS, CP20, CP30, altered) == (
        "checkpoint 30 is not consistent with checkpoint 20"
    )
    assert "not consistent" in (consistency_problem(KEYS, CP30, CP20, proof) or "")
    assert "not consistent" in (consistency_problem(KEYS, CP20, CP30, []) or "")
    bad_old = dataclasses.replace(CP20, signature=flipped(CP20.signature))
    assert consistency_problem(KEYS, bad_old, CP30, proof) == "checkpoint 20: bad signature"
    bad_new = dataclasses.replace(CP30, signature=flipped(CP30.signature))
    assert consistency_problem(KEYS, CP20, bad_new, proof) == "checkpoint 30: bad signature"
    retired = sign_checkpoint(30, K2)
    assert "not a listed key in service" in (consistency_problem(KEYS, CP20, retired, proof) or "")
    # a rewritten history, signed by the right key: the new root cannot extend the old one
    forked = sign_checkpoint(30, K3, root=root_of([*HASHES[:5], bytes(32), *HASHES[6:30]]))
    assert "not consistent" in (consistency_problem(KEYS, CP20, forked, proof) or "")
    other = Checkpoint("scheme-b", 30, CP30.root, 7, K3.key_id)
    other = dataclasses.replace(other, signature=K3.sign(checkpoint_digest(other)))
    assert consistency_problem(KEYS, CP20, other, proof) == "checkpoints of different ledgers"


def test_frontier_roots_are_what_checkpoints_sign() -> None:
    f = Frontier()
    for h in HASHES[:20]:
        f.append(h)
    assert f.root() == CP20.root


# ---- receipts and proofs from a real store ------------------------------------------------------


async def test_store_receipts_and_consistency_proofs_verify_offline(store: LedgerStore) -> None:
    first = await store.create_ledger(LEDGER, idempotency_key="l")
    await store.open_account(LEDGER, "scheme:issuance", kind="i", floor=None, idempotency_key="a1")
    await store.open_account(LEDGER, "member:a", kind="m", floor=0, idempotency_key="a2")
    await store.open_account(LEDGER, "partner:p", kind="p", floor=0, idempotency_key="a3")
    sizes = []
    for i in range(1, 24):
        if i == 9:
            await store.rotate_key(LEDGER, idempotency_key="rotate")
        if i % 7 == 0:
            res = await store.reserve(
                LEDGER,
                debit="member:a",
                target="partner:p",
                amount=5,
                expires_at=from_us(1_767_225_600_000_000) + timedelta(days=1),
                idempotency_key=f"r{i}",
            )
            await store.post(LEDGER, res.seq, idempotency_key=f"p{i}")
        else:
            await store.transfer(
                LEDGER, [("scheme:issuance", -i), ("member:a", i)], idempotency_key=f"t{i}"
            )
        if i in (3, 8, 13, 23):
            sizes.append((await store.checkpoint(LEDGER, idempotency_key=f"c{i}")).size)
    keys = await store.public_keys(LEDGER)
    assert len(keys) == 2 and keys[0] == first
    assert key_list_problem(keys) is None
    cps = await store.checkpoints(LEDGER)
    assert [cp.size for cp in cps] == sizes
    for cp in cps:
        assert checkpoint_problem(keys, cp) is None
        for seq in range(1, cp.size + 1):
            r = await store.receipt(LEDGER, seq, size=cp.size)
            assert list(r.keys) == keys
            assert receipt_problem(r, r.keys) is None, (seq, cp.size)
    latest = await store.receipt(LEDGER, 1)
    assert latest.checkpoint == cps[-1]
    for i, old in enumerate(cps):
        for new in cps[i:]:
            proof = await store.consistency_proof(LEDGER, old.size, new.size)
            assert consistency_problem(keys, old, new, proof) is None, (old.size, new.size)
    proof = await store.consistency_proof(LEDGER, cps[0].size, cps[-1].size)
    assert consistency_problem(keys, cps[0], cps[-1], proof[:-1]) is not None
    r = await store.receipt(LEDGER, 2)
    assert receipt_problem(dataclasses.replace(r, proof=r.proof[1:]), keys) is not None
    assert receipt_problem(r, keys[:1]) is not None  # without the rotated-in key
