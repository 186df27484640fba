"""Offline checks that need only public keys: key lists, entries, checkpoints and receipts."""

from __future__ import annotations

from collections.abc import Sequence

from . import merkle
from .encoding import checkpoint_digest, entry_hash, key_digest, key_id_for
from .model import Checkpoint, Entry, PublicKey, Receipt
from .signing import point_problem, verify_signature


def key_list_problem(keys: Sequence[PublicKey]) -> str | None:
    """Why a ledger's key list is not a valid certified chain, or None when it is.

    The first key signs its own statement and starts at sequence 1; each later key's statement
    is signed by the key before it, and starts no earlier than that key did.
    """
    if not keys:
        return "the ledger has no public keys"
    seen: set[str] = set()
    for i, key in enumerate(keys):
        if key_id_for(key.public_key) != key.key_id:
            return f"key {key.key_id}: its id does not match its public key"
        weak = point_problem(key.public_key)
        if weak:
            return f"key {key.key_id}: its public key is {weak}"
        if key.key_id in seen:
            return f"key {key.key_id}: listed twice"
        seen.add(key.key_id)
        signer = keys[i - 1] if i else key
        if key.signer_key_id != signer.key_id:
            return f"key {key.key_id}: must be certified by {signer.key_id}"
        if i == 0 and key.from_seq != 1:
            return f"key {key.key_id}: the first key must start at sequence 1"
        if i and key.from_seq < keys[i - 1].from_seq:
            return f"key {key.key_id}: starts before the key it replaces"
        if i and key.ledger != keys[0].ledger:
            return f"key {key.key_id}: belongs to another ledger"
        if not verify_signature(signer.public_key, key_digest(key), key.signature):
            return f"key {key.key_id}: bad certificate signature"
    return None


def key_for_seq(keys: Sequence[PublicKey], seq: int) -> PublicKey | None:
    """The key that must have signed entry `seq`: the last listed key starting at or before it."""
    found = None
    for key in keys:
        if key.from_seq <= seq:
            found = key
    return found


def checkpoint_key(keys: Sequence[PublicKey], cp: Checkpoint) -> PublicKey | None:
    """The listed key that signed `cp`, if it was in service for a log of that size."""
    for i, key in enumerate(keys):
        if key.key_id != cp.key_id:
            continue
        retired = i + 1 < len(keys) and keys[i + 1].from_seq <= cp.size
        return None if key.from_seq > cp.size + 1 or retired else key
    return None


def checkpoint_problem(keys: Sequence[PublicKey], cp: Checkpoint) -> str | None:
    key = checkpoint_key(keys, cp)
    if key is None:
        return f"checkpoint {cp.size}: key {cp.key_id} is not a listed key in service at that size"
    if not verify_signature(key.public_key, checkpoint_digest(cp), cp.signature):
        return f"checkpoint {cp.size}: bad signature"
    return None


def entry_problem(keys: Sequence[PublicKey], entry: Entry) -> str | None:
    """Hash and signature of one entry (not its place in the chain)."""
    if entry_hash(entry) != entry.hash:
        return "hash does not match the entry's content"
    key = key_for_seq(keys, entry.seq)
    if key is None or key.key_id != entry.key_id:
        return f"signed by key {entry.key_id}, which is not the listed key for this sequence"
    if not verify_signature(key.public_key, entry.hash, entry.signature):
        return "bad signature"
    return None


def receipt_problem(receipt: Receipt, keys: Sequence[PublicKey]) -> str | None:
    """Why a member's receipt does not prove their entry is on the record, or None if it does."""
    cp, entry = receipt.checkpoint, receipt.entry
    if any(k.ledger != entry.ledger for k in keys):
        return f"the key list is not ledger {entry.ledger}'s"
    problem = key_list_problem(keys) or checkpoint_problem(keys, cp) or entry_problem(keys, entry)
    if problem:
        return problem
    if entry.ledger != cp.ledger or receipt.leaf_index != entry.seq - 1:
        return "the entry does not belong to this checkpoint's ledger position"
    leaf = merkle.leaf_hash(entry.hash)
    if not merkle.verify_inclusion(receipt.leaf_index, cp.size, leaf, receipt.proof, cp.root):
        return "the inclusion proof does not lead to the checkpoint's root"
    return None


def consistency_problem(
    keys: Sequence[PublicKey], old: Checkpoint, new: Checkpoint, proof: Sequence[bytes]
) -> str | None:
    """Why `new` is not an append-only extension of `old`, or None when it is."""
    for cp in (old, new):
        problem = checkpoint_problem(keys, cp)
        if problem:
            return problem
    if old.ledger != new.ledger:
        return "checkpoints of different ledgers"
    if not merkle.verify_consistency(old.size, new.size, old.root, new.root, proof):
        return f"checkpoint {new.size} is not consistent with checkpoint {old.size}"
    return None
