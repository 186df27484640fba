"""The self-contained export bundle: JSON Lines that `verify --bundle` checks with no database.

One JSON object per line, each with a "type". Per ledger, in this order: "ledger", its "key"s
(in list order), "account"s (with stored balances), "checkpoint"s (by size), "entry"s (by
sequence) and an "end" line with the entry count; the file closes with {"type": "end-bundle"}.
Binary values are lower-case hex. The format is documented in docs/ledger-format.md.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import IO, Any

from sqlalchemy.ext.asyncio import AsyncConnection

from . import storage
from .model import Account, Checkpoint, Entry, EntryKind, Posting, PublicKey, Receipt
from .verify import LedgerData

FORMAT = "timebank-ledger-bundle"
VERSION = 1


class BundleError(Exception):
    """The bundle file is malformed (not a tampering verdict: that is verify's job)."""


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


def _line(out: IO[str], obj: dict[str, Any]) -> None:
    out.write(json.dumps(obj, separators=(",", ":"), ensure_ascii=False))
    out.write("\n")


async def export_bundle(
    conn: AsyncConnection, out: IO[str], ledgers: list[str] | None = None
) -> int:
    """Stream every (or the named) ledger of the database into `out`; return entries written."""
    _line(out, {"type": "bundle", "format": FORMAT, "version": VERSION})
    total = 0
    for ledger in ledgers or await storage.list_ledgers(conn):
        _line(out, {"type": "ledger", "ledger": ledger})
        for k in await storage.read_keys(conn, ledger):
            _line(out, key_json(k))
        for a in await storage.list_accounts(conn, ledger):
            _line(out, account_json(a))
        for cp in await storage.list_checkpoints(conn, ledger):
            _line(out, checkpoint_json(cp))
        count = 0
        async for e in storage.stream_entries(conn, ledger):
            _line(out, entry_json(e))
            count += 1
        _line(out, {"type": "end", "ledger": ledger, "entries": count})
        total += count
    _line(out, {"type": "end-bundle"})
    return total


# ---- reading ----------------------------------------------------------------------------------


def _records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BundleError(f"line {number}: not JSON ({exc.msg})") from exc
            if not isinstance(obj, dict) or "type" not in obj:
                raise BundleError(f"line {number}: not a bundle record")
            yield number, obj


def parse_entry(o: dict[str, Any]) -> Entry:
    kinds = {k.value: k for k in EntryKind}
    return Entry(
        o["ledger"],
        int(o["seq"]),
        bytes.fromhex(o["prev_hash"]),
        kinds.get(o["kind"], o["kind"]),
        int(o["time_us"]),
        o["key_id"],
        int(o["ref"]),
        int(o["expires_us"]),
        o["target"],
        tuple(Posting(a, int(n)) for a, n in o["postings"]),
        tuple((k, v) for k, v in o["meta"]),
        bytes.fromhex(o["hash"]),
        bytes.fromhex(o["signature"]),
    )


def parse_key(o: dict[str, Any]) -> PublicKey:
    return PublicKey(
        o["ledger"],
        o["key_id"],
        bytes.fromhex(o["public_key"]),
        int(o["from_seq"]),
        int(o["time_us"]),
        o["signer_key_id"],
        bytes.fromhex(o["signature"]),
    )


def parse_checkpoint(o: dict[str, Any]) -> Checkpoint:
    return Checkpoint(
        o["ledger"],
        int(o["size"]),
        bytes.fromhex(o["root"]),
        int(o["time_us"]),
        o["key_id"],
        bytes.fromhex(o["signature"]),
    )


def parse_account(o: dict[str, Any]) -> Account:
    floor = o["floor"]
    return Account(
        o["ledger"], o["code"], o["kind"], None if floor is None else int(floor), int(o["balance"])
    )


def read_public_keys(path: Path) -> dict[str, list[PublicKey]]:
    """Every ledger's key list from a bundle (or a published key file of "key" lines)."""
    out: dict[str, list[PublicKey]] = {}
    for _, o in _records(path):
        if o["type"] == "key":
            out.setdefault(o["ledger"], []).append(parse_key(o))
    return out


async def bundle_sources(path: Path) -> AsyncIterator[LedgerData]:
    """Each ledger of a bundle, for `verify_sources`. Reads the file twice, holding no entries."""
    sections: list[dict[str, Any]] = []
    ended = False
    with path.open("rb") as handle:
        offset = 0
        for number, raw in enumerate(handle, 1):
            start, offset = offset, offset + len(raw)
            line = raw.decode("utf-8", errors="replace")
            if line.startswith('{"type":"entry"') and '"reverse"' not in line:
                if sections and sections[-1]["offset"] is None:
                    sections[-1]["offset"] = start
                continue  # the common case, parsed only on the second pass
            try:
                o = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BundleError(f"line {number}: not JSON ({exc.msg})") from exc
            kind = o.get("type") if isinstance(o, dict) else None
            if kind == "ledger":
                sections.append(
                    {
                        "ledger": o["ledger"],
                        "keys": [],
                        "accounts": [],
                        "checkpoints": [],
                        "refs": set(),
                        "offset": None,
                    }
                )
            elif kind == "end-bundle":
                ended = True
            elif kind in ("key", "account", "checkpoint", "entry", "end"):
                if not sections or o.get("ledger") != sections[-1]["ledger"]:
                    raise BundleError(f"line {number}: {kind} outside its ledger's section")
                s = sections[-1]
                if kind == "key":
                    s["keys"].append(parse_key(o))
                elif kind == "account":
                    s["accounts"].append(parse_account(o))
                elif kind == "checkpoint":
                    s["checkpoints"].append(parse_checkpoint(o))
                elif kind == "entry" and o.get("kind") == "reverse":
                    s["refs"].add(int(o["ref"]))
                if kind == "entry" and s["offset"] is None:
                    s["offset"] = start
                if kind == "end" and s["offset"] is None:
                    s["offset"] = start
            elif kind != "bundle":
                raise BundleError(f"line {number}: unknown record type {kind!r}")
    if not ended:
        raise BundleError("the bundle is truncated: no end-bundle line")
    for s in sections:
        yield LedgerData(
            ledger=s["ledger"],
            keys=s["keys"],
            accounts=s["accounts"],
            checkpoints=sorted(s["checkpoints"], key=lambda cp: cp.size),
            reversal_refs=s["refs"],
            entries=_entries(path, s["ledger"], s["offset"]),
        )


async def _entries(path: Path, ledger: str, offset: int | None) -> AsyncIterator[Entry]:
    if offset is None:
        raise BundleError(f"ledger {ledger}: section has no end line")
    count = 0
    with path.open("rb") as handle:
        handle.seek(offset)
        for raw in handle:
            o = json.loads(raw)
            if o["type"] == "end":
                if int(o["entries"]) != count:
                    raise BundleError(
                        f"ledger {ledger}: end line says {o['entries']} entries, found {count}"
                    )
                return
            if o["type"] != "entry" or o["ledger"] != ledger:
                raise BundleError(f"ledger {ledger}: unexpected {o['type']} among entries")
            count += 1
            yield parse_entry(o)
    raise BundleError(f"ledger {ledger}: section has no end line")


def receipt_json(r: Receipt) -> dict[str, Any]:
    """A member's receipt as one JSON object: entry, inclusion proof, checkpoint, key list."""
    return {
        "type": "receipt",
        "entry": entry_json(r.entry),
        "leaf_index": r.leaf_index,
        "proof": [h.hex() for h in r.proof],
        "checkpoint": checkpoint_json(r.checkpoint),
        "keys": [key_json(k) for k in r.keys],
    }


def parse_receipt(o: dict[str, Any]) -> Receipt:
    try:
        return Receipt(
            entry=parse_entry(o["entry"]),
            leaf_index=int(o["leaf_index"]),
            proof=tuple(bytes.fromhex(h) for h in o["proof"]),
            checkpoint=parse_checkpoint(o["checkpoint"]),
            keys=tuple(parse_key(k) for k in o.get("keys", [])),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"not a receipt: {exc}") from exc
