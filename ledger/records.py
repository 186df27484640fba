"""JSON forms of entries, keys, checkpoints, accounts and receipts (binary values in hex).

Parsing is strict: a missing field, a wrong type or a hash of the wrong length is a
`RecordError` naming the field, never a crash, so malformed input is reported, not trusted.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .model import Account, Checkpoint, Entry, EntryKind, Posting, PublicKey, Receipt

_KINDS = {k.value: k for k in EntryKind}
RECEIPT_VERSION = 1  # the receipt format this code writes and reads (docs/ledger-format.md)


class RecordError(ValueError):
    """A JSON record that is not well formed."""


def entry_json(e: Entry) -> dict[str, Any]:
    return {
        "type": "entry",
        "ledger": e.ledger,
        "seq": e.seq,
        "prev_hash": e.prev_hash.hex(),
        "kind": str(e.kind),
        "time_us": e.time_us,
        "key_id": e.key_id,
        "ref": e.ref,
        "expires_us": e.expires_us,
        "target": e.target,
        "postings": [[p.account, p.amount] for p in e.postings],
        "meta": [[k, v] for k, v in e.meta],
        "hash": e.hash.hex(),
        "signature": e.signature.hex(),
    }


def key_json(k: PublicKey) -> dict[str, Any]:
    return {
        "type": "key",
        "ledger": k.ledger,
        "key_id": k.key_id,
        "public_key": k.public_key.hex(),
        "from_seq": k.from_seq,
        "time_us": k.time_us,
        "signer_key_id": k.signer_key_id,
        "signature": k.signature.hex(),
    }


def checkpoint_json(cp: Checkpoint) -> dict[str, Any]:
    return {
        "type": "checkpoint",
        "ledger": cp.ledger,
        "size": cp.size,
        "root": cp.root.hex(),
        "time_us": cp.time_us,
        "key_id": cp.key_id,
        "signature": cp.signature.hex(),
    }


def account_json(a: Account) -> dict[str, Any]:
    return {
        "type": "account",
        "ledger": a.ledger,
        "code": a.code,
        "kind": a.kind,
        "floor": a.floor,
        "balance": a.balance,
    }


def receipt_json(r: Receipt) -> dict[str, Any]:
    """A member's receipt as one JSON object: entry, inclusion proof, checkpoint, key list."""
    return {
        "type": "receipt",
        "version": RECEIPT_VERSION,
        "entry": entry_json(r.entry),
        "leaf_index": r.leaf_index,
        "proof": [h.hex() for h in r.proof],
        "checkpoint": checkpoint_json(r.checkpoint),
        "keys": [key_json(k) for k in r.keys],
    }


# ---- strict parsing ----------------------------------------------------------------------------


I64 = 2**63  # every integer of the format is a signed 64-bit one
_UNSIGNED = frozenset({"seq", "time_us", "ref", "expires_us", "from_seq", "size", "leaf_index"})
LOWER_HEX = re.compile(r"(?:[0-9a-f]{2})*")


def exact(o: dict[str, Any], rebuilt: dict[str, Any]) -> None:
    """Refuse a record that is not written exactly as the format writes it: an unknown or
    missing field, upper-case hex, a value the reader would have had to reinterpret."""
    unknown = sorted(set(o) - set(rebuilt))
    if unknown:
        raise RecordError(f"unknown field {unknown[0]!r}")
    for name, value in rebuilt.items():
        if o.get(name, object()) != value or type(o.get(name)) is not type(value):
            raise RecordError(f"field {name!r} is not written as the format writes it")


def _get(o: dict[str, Any], name: str, kind: type) -> Any:
    if not isinstance(o, dict) or name not in o:
        raise RecordError(f"missing field {name!r}")
    value = o[name]
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise RecordError(f"field {name!r} must be an integer")
    if kind is int and not (0 if name in _UNSIGNED else -I64) <= value < I64:
        low = "0" if name in _UNSIGNED else "-2^63"
        raise RecordError(f"field {name!r} is out of range ({low} to 2^63 - 1)")
    if kind is not int and not isinstance(value, kind):
        raise RecordError(f"field {name!r} must be a {kind.__name__}")
    return value


def _hex(o: dict[str, Any], name: str, size: int) -> bytes:
    text = _get(o, name, str)
    if not LOWER_HEX.fullmatch(text):
        raise RecordError(f"field {name!r} is not lower-case hex")
    raw = bytes.fromhex(text)
    if len(raw) != size:
        raise RecordError(f"field {name!r} must be {size} bytes")
    return raw


def _pairs(o: dict[str, Any], name: str, second: type) -> list[tuple[Any, Any]]:
    out = []
    for item in _get(o, name, list):
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
            raise RecordError(f"field {name!r} must hold [text, value] pairs")
        if second is int and (isinstance(item[1], bool) or not isinstance(item[1], int)):
            raise RecordError(f"field {name!r} amounts must be integers")
        if second is int and not -I64 <= item[1] < I64:
            raise RecordError(f"field {name!r} amounts are out of range")
        if second is str and not isinstance(item[1], str):
            raise RecordError(f"field {name!r} values must be text")
        out.append((item[0], item[1]))
    return out


def parse_entry(o: dict[str, Any]) -> Entry:
    kind = _get(o, "kind", str)
    return Entry(
        ledger=_get(o, "ledger", str),
        seq=_get(o, "seq", int),
        prev_hash=_hex(o, "prev_hash", 32),
        kind=_KINDS.get(kind, kind),  # an unknown kind is reported by verify
        time_us=_get(o, "time_us", int),
        key_id=_get(o, "key_id", str),
        ref=_get(o, "ref", int),
        expires_us=_get(o, "expires_us", int),
        target=_get(o, "target", str),
        postings=tuple(Posting(a, n) for a, n in _pairs(o, "postings", int)),
        meta=tuple(_pairs(o, "meta", str)),
        hash=_hex(o, "hash", 32),
        signature=_hex(o, "signature", 64),
    )


def parse_key(o: dict[str, Any]) -> PublicKey:
    return PublicKey(
        ledger=_get(o, "ledger", str),
        key_id=_get(o, "key_id", str),
        public_key=_hex(o, "public_key", 32),
        from_seq=_get(o, "from_seq", int),
        time_us=_get(o, "time_us", int),
        signer_key_id=_get(o, "signer_key_id", str),
        signature=_hex(o, "signature", 64),
    )


def parse_checkpoint(o: dict[str, Any]) -> Checkpoint:
    return Checkpoint(
        ledger=_get(o, "ledger", str),
        size=_get(o, "size", int),
        root=_hex(o, "root", 32),
        time_us=_get(o, "time_us", int),
        key_id=_get(o, "key_id", str),
        signature=_hex(o, "signature", 64),
    )


def parse_account(o: dict[str, Any]) -> Account:
    floor = o.get("floor") if isinstance(o, dict) else None
    if floor is not None:
        floor = _get(o, "floor", int)
    return Account(
        _get(o, "ledger", str),
        _get(o, "code", str),
        _get(o, "kind", str),
        floor,
        _get(o, "balance", int),
    )


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are unique (for `json.loads`'s `object_pairs_hook`): two
    parsers must not read one object two ways."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"the key {key!r} appears twice in one object")
            seen.add(key)
    return obj


def load_receipt(text: str) -> Receipt:
    """A receipt file's text (docs/ledger-format.md section 9), parsed strictly."""
    try:
        o = json.loads(text, object_pairs_hook=unique_keys)
    except json.JSONDecodeError as exc:
        raise RecordError(f"not JSON ({exc.msg})") from exc
    except (ValueError, RecursionError) as exc:  # a key twice; nesting past the parser's depth
        raise RecordError(str(exc) or "nested too deep") from exc
    return parse_receipt(o)


def check_version(o: dict[str, Any], what: str, version: int) -> None:
    """Refuse, by name, a record of a format version this code does not read. Checked before
    any other field, since another version may have other fields."""
    if not isinstance(o, dict) or "version" not in o:
        return
    found = o["version"]
    if isinstance(found, bool) or not isinstance(found, int):
        raise RecordError(f"field 'version' of a {what} must be an integer")
    if found != version:
        raise RecordError(
            f"unsupported {what} format version {found}; this verifier reads version {version}"
        )


def parse_receipt(o: dict[str, Any]) -> Receipt:
    """A receipt, held to the exact form `receipt_json` writes. One without a `version` field
    is version 1, as written before receipts carried one."""
    check_version(o, "receipt", RECEIPT_VERSION)
    proof = _get(o, "proof", list)
    if not all(isinstance(h, str) for h in proof):
        raise RecordError("field 'proof' must hold hex hashes")
    receipt = Receipt(
        entry=parse_entry(_get(o, "entry", dict)),
        leaf_index=_get(o, "leaf_index", int),
        proof=tuple(_hex({"proof": h}, "proof", 32) for h in proof),
        checkpoint=parse_checkpoint(_get(o, "checkpoint", dict)),
        keys=tuple(parse_key(k) for k in _get(o, "keys", list)),
    )
    rebuilt = receipt_json(receipt)
    if "version" not in o:
        del rebuilt["version"]
    exact(o, rebuilt)
    return receipt
