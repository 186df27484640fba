"""The self-contained export bundle: JSON Lines that `verify --bundle` checks with no database.

One JSON object per line, each with a "type": first {"type": "bundle", "format": ..., "version":
1}; then per ledger, in this order, "ledger", its "key"s (in list order), "account"s (with
stored balances), "checkpoint"s, "entry"s (by sequence) and an "end" line with the entry count;
last {"type": "end-bundle"}. Binary values are lower-case hex. See docs/ledger-format.md.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy.ext.asyncio import AsyncConnection

from . import storage
from .model import Account, Checkpoint, Entry, PublicKey, to_us
from .records import (
    RecordError,
    account_json,
    check_version,
    checkpoint_json,
    entry_json,
    exact,
    key_json,
    parse_account,
    parse_checkpoint,
    parse_entry,
    parse_key,
    parse_receipt,
    receipt_json,
    unique_keys,
)
from .verify import LedgerData

FORMAT = "timebank-ledger-bundle"
VERSION = 1

__all__ = [
    "BundleError",
    "bundle_sources",
    "checkpoint_json",
    "entry_json",
    "export_bundle",
    "key_json",
    "parse_checkpoint",
    "parse_entry",
    "parse_key",
    "parse_receipt",
    "read_public_keys",
    "receipt_json",
]


class BundleError(Exception):
    """The bundle file is malformed: reported as a failure, never trusted."""


def _line(out: IO[str], obj: dict[str, Any]) -> None:
    out.write(json.dumps(obj, separators=(",", ":"), ensure_ascii=False))
    out.write("\n")


async def export_bundle(
    conn: AsyncConnection, out: IO[str], ledgers: list[str] | None = None
) -> int:
    """Stream every (or the named) ledger of the database into `out`; return entries written."""
    _line(out, {"type": "bundle", "format": FORMAT, "version": VERSION})
    total = 0
    names: list[str] = list(ledgers) if ledgers else await conn.run_sync(storage.list_ledgers)
    for ledger in names:
        _line(out, {"type": "ledger", "ledger": ledger})
        for k in await conn.run_sync(storage.read_keys, ledger):
            _line(out, key_json(k))
        for a in await conn.run_sync(storage.list_accounts, ledger):
            _line(out, account_json(a))
        for cp in await conn.run_sync(storage.list_checkpoints, ledger):
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

_ORDER = {"key": 1, "account": 2, "checkpoint": 3, "entry": 4, "end": 5}


@dataclass
class _Section:
    ledger: str
    keys: list[PublicKey] = field(default_factory=list)
    accounts: list[Account] = field(default_factory=list)
    checkpoints: list[Checkpoint] = field(default_factory=list)
    refs: set[int] = field(default_factory=set)
    checkpoint_lines: list[int] = field(default_factory=list)
    first_entry: tuple[int, int] | None = None  # (byte offset, line number) of its entries
    stage: int = 0


def _lines(path: Path) -> Iterator[tuple[int, int, str]]:
    """(line number, byte offset, text) of each line."""
    with path.open("rb") as handle:
        offset = 0
        for number, raw in enumerate(handle, 1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise BundleError(f"line {number}: not UTF-8") from exc
            yield number, offset, text
            offset += len(raw)


_once = unique_keys  # two parsers must not read one line two ways


def _parse(number: int, text: str) -> dict[str, Any]:
    try:
        obj = json.loads(text, object_pairs_hook=_once)
    except json.JSONDecodeError as exc:
        raise BundleError(f"line {number}: not JSON ({exc.msg})") from exc
    except (ValueError, RecursionError) as exc:  # a key twice; nesting past the parser's depth
        raise BundleError(f"line {number}: {exc or 'nested too deep'}") from exc
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        raise BundleError(f"line {number}: not a bundle record")
    return obj


def _scan(path: Path) -> list[_Section]:
    """First pass: everything but the entries, which are only located (and reversals noted)."""
    sections: list[_Section] = []
    starts: dict[str, int] = {}  # each ledger's section: the line it starts on
    state = "start"
    for number, offset, text in _lines(path):
        quick = text.startswith('{"type":"entry"') and '"reverse"' not in text and "\\" not in text
        o = {"type": "entry"} if quick else _parse(number, text)
        kind = o["type"]
        if state == "start":
            _header(number, o)
            state = "between"
            continue
        if state == "done":
            raise BundleError(f"line {number}: records after the end-bundle line")
        if kind == "end-bundle" and state == "between":
            state = "done"
        elif kind == "ledger" and state == "between":
            name = o.get("ledger")
            if not isinstance(name, str) or set(o) != {"type", "ledger"}:
                raise BundleError(f"line {number}: a ledger record is its type and its name")
            if name in starts:  # two sections of one ledger: which one is the ledger?
                raise BundleError(
                    f"line {number}: ledger {name} appears a second time (first "
                    f"at line {starts[name]})"
                )
            starts[name] = number
            sections.append(_Section(name))
            state = "section"
        elif kind in _ORDER and state == "section":
            s = sections[-1]
            if _ORDER[kind] < s.stage:
                raise BundleError(f"line {number}: {kind} out of order in ledger {s.ledger}")
            s.stage = _ORDER[kind]
            if not quick and o.get("ledger") != s.ledger:
                raise BundleError(f"line {number}: {kind} outside its ledger's section")
            if kind in ("entry", "end") and s.first_entry is None:
                s.first_entry = (offset, number)
            try:
                _collect(s, kind, o, number)
            except RecordError as exc:
                raise BundleError(f"line {number}: {exc}") from exc
            if kind == "end":
                state = "between"
        else:
            raise BundleError(f"line {number}: unexpected {kind!r} record")
    if state != "done":
        raise BundleError("the bundle is truncated: no end-bundle line")
    return sections


def _header(number: int, o: dict[str, Any]) -> None:
    """The first line: this format, this version. Another version is refused by name."""
    if o.get("type") == "bundle" and o.get("format") == FORMAT:
        try:
            check_version(o, "bundle", VERSION)
        except RecordError as exc:
            raise BundleError(f"line {number}: {exc}") from exc
    if o != {"type": "bundle", "format": FORMAT, "version": VERSION}:
        raise BundleError(f"line {number}: not a {FORMAT} version {VERSION} file")


def _collect(s: _Section, kind: str, o: dict[str, Any], number: int) -> None:
    """A record of the section, parsed and held to the exact form the format writes."""
    if kind == "key":
        key = parse_key(o)
        exact(o, key_json(key))
        s.keys.append(key)
    elif kind == "account":
        account = parse_account(o)
        exact(o, account_json(account))
        if s.accounts and s.accounts[-1].code >= account.code:
            raise RecordError(f"account {account.code} out of order (accounts go by code)")
        s.accounts.append(account)
    elif kind == "checkpoint":
        cp = parse_checkpoint(o)
        exact(o, checkpoint_json(cp))
        if s.checkpoints and s.checkpoints[-1].size >= cp.size:
            last = s.checkpoints[-1]
            if last.size == cp.size and last.root != cp.root:  # a fork, signed
                first = s.checkpoint_lines[-1]
                raise RecordError(
                    f"a second checkpoint of size {cp.size} with another root "
                    f"(a fork: the first is at line {first})"
                )
            raise RecordError(f"checkpoint {cp.size} out of order (checkpoints go by size)")
        s.checkpoints.append(cp)
        s.checkpoint_lines.append(number)
    elif kind == "end" and set(o) != {"type", "ledger", "entries"}:
        raise RecordError("an end record is its type, its ledger and its entry count")
    elif kind == "entry" and o.get("kind") == "reverse":
        ref = o.get("ref")
        if isinstance(ref, int):
            s.refs.add(ref)


async def bundle_sources(path: Path) -> AsyncIterator[LedgerData]:
    """Each ledger of a bundle, for `verify_sources`. Reads the file twice, holding no entries."""
    for s in _scan(path):
        assert s.first_entry is not None  # every section closed with its end line
        yield LedgerData(
            ledger=s.ledger,
            keys=s.keys,
            accounts=s.accounts,
            checkpoints=sorted(s.checkpoints, key=lambda cp: cp.size),
            reversal_refs=s.refs,
            entries=_entries(path, s.ledger, s.first_entry),
        )


async def _entries(path: Path, ledger: str, start: tuple[int, int]) -> AsyncIterator[Entry]:
    offset, number = start
    count = 0
    with path.open("rb") as handle:
        handle.seek(offset)
        for number, raw in enumerate(handle, number):  # noqa: B020 - continue the numbering
            o = _parse(number, raw.decode("utf-8"))
            if o["type"] == "end":
                if o.get("entries") != count:
                    raise BundleError(
                        f"line {number}: ledger {ledger}: end line says {o.get('entries')} "
                        f"entries, found {count}"
                    )
                return
            if o.get("ledger") != ledger:  # a fast-scanned line's ledger is first read here
                raise BundleError(f"line {number}: entry outside its ledger's section")
            try:
                entry = parse_entry(o)
                exact(o, entry_json(entry))
            except RecordError as exc:
                raise BundleError(f"line {number}: {exc}") from exc
            count += 1
            yield entry


def read_public_keys(path: Path) -> dict[str, list[PublicKey]]:
    """Every ledger's key list from a key file (`timebank keys`) or a bundle's "key" lines."""
    out: dict[str, list[PublicKey]] = {}
    for number, _, text in _lines(path):
        if not text.strip():
            continue
        o = _parse(number, text)
        if o["type"] == "key":
            try:
                key = parse_key(o)
                exact(o, key_json(key))
            except RecordError as exc:
                raise BundleError(f"line {number}: {exc}") from exc
            out.setdefault(key.ledger, []).append(key)
    return out


def read_checkpoints(path: Path) -> dict[str, list[Checkpoint]]:
    """Every ledger's checkpoints from a file of them, one JSON object per line: a bundle's
    "checkpoint" lines, or checkpoints as the API gives them (`GET .../checkpoints/latest`,
    whose time is an ISO 8601 string rather than `time_us`). What an auditor kept."""
    out: dict[str, list[Checkpoint]] = {}
    for number, _, text in _lines(path):
        if not text.strip():
            continue
        try:
            o = json.loads(text, object_pairs_hook=_once)
        except json.JSONDecodeError as exc:
            raise BundleError(f"line {number}: not JSON ({exc.msg})") from exc
        except (ValueError, RecursionError) as exc:  # a key twice; nesting past the parser's depth
            raise BundleError(f"line {number}: {exc or 'nested too deep'}") from exc
        if not isinstance(o, dict) or o.get("type", "checkpoint") != "checkpoint":
            continue  # a bundle's other lines
        if "time_us" not in o and isinstance(o.get("time"), str):
            try:
                o = o | {"time_us": to_us(datetime.fromisoformat(o["time"]))}
            except ValueError as exc:
                raise BundleError(f"line {number}: time: {exc}") from exc
        try:
            cp = parse_checkpoint(o)
        except RecordError as exc:
            raise BundleError(f"line {number}: {exc}") from exc
        out.setdefault(cp.ledger, []).append(cp)
    return out
