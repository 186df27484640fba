"""Canonical byte encodings of entries, checkpoints and key statements (docs/ledger-format.md).

Integers are big-endian; a string is a u32 byte length then its UTF-8 bytes. Each encoding
starts with a fixed domain tag, so an entry can never be mistaken for a checkpoint. What is
hashed and signed is always SHA-256 of these bytes.
"""

from __future__ import annotations

import functools
import hashlib
import struct

from .model import Checkpoint, Entry, PublicKey

ENTRY_TAG = b"timebank-ledger/entry/v1\n"
CHECKPOINT_TAG = b"timebank-ledger/checkpoint/v1\n"
KEY_TAG = b"timebank-ledger/key/v1\n"

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_I64 = struct.Struct(">q")


def _str(value: str) -> bytes:
    raw = value.encode("utf-8")
    return _U32.pack(len(raw)) + raw


_cached_str = functools.lru_cache(maxsize=16384)(_str)  # ledger ids, kinds, key ids, accounts
_SEQ_PREV = struct.Struct(">Q32s")
_REF_EXPIRES = struct.Struct(">Qq")


def entry_bytes(entry: Entry) -> bytes:
    """The canonical encoding of an entry's content (everything but its hash and signature)."""
    assert len(entry.prev_hash) == 32
    parts = [
        ENTRY_TAG,
        _cached_str(entry.ledger),
        _SEQ_PREV.pack(entry.seq, entry.prev_hash),
        _cached_str(str(entry.kind)),
        _I64.pack(entry.time_us),
        _cached_str(entry.key_id),
        _REF_EXPIRES.pack(entry.ref, entry.expires_us),
        _cached_str(entry.target),
        _U32.pack(len(entry.postings)),
    ]
    for posting in entry.postings:
        parts.append(_cached_str(posting.account))
        parts.append(_I64.pack(posting.amount))
    parts.append(_U32.pack(len(entry.meta)))
    for key, value in entry.meta:
        parts.append(_cached_str(key))
        parts.append(_str(value))
    return b"".join(parts)


def entry_hash(entry: Entry) -> bytes:
    return hashlib.sha256(entry_bytes(entry)).digest()


def checkpoint_bytes(cp: Checkpoint) -> bytes:
    assert len(cp.root) == 32
    return b"".join(
        [
            CHECKPOINT_TAG,
            _str(cp.ledger),
            _U64.pack(cp.size),
            cp.root,
            _I64.pack(cp.time_us),
            _str(cp.key_id),
        ]
    )


def checkpoint_digest(cp: Checkpoint) -> bytes:
    return hashlib.sha256(checkpoint_bytes(cp)).digest()


def key_bytes(key: PublicKey) -> bytes:
    assert len(key.public_key) == 32
    return b"".join(
        [
            KEY_TAG,
            _str(key.ledger),
            _str(key.key_id),
            key.public_key,
            _U64.pack(key.from_seq),
            _I64.pack(key.time_us),
            _str(key.signer_key_id),
        ]
    )


def key_digest(key: PublicKey) -> bytes:
    return hashlib.sha256(key_bytes(key)).digest()


def key_id_for(public_key: bytes) -> str:
    """A key's id: the first 16 hex digits of SHA-256 of its raw 32-byte public key."""
    return hashlib.sha256(public_key).hexdigest()[:16]
