"""The ledger's commands: verify, verify-receipt, export-log, receipt, keys and checkpoint."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncConnection

from ledger import (
    BundleError,
    LedgerStore,
    RecordError,
    bundle_sources,
    export_bundle,
    key_json,
    load_receipt,
    read_checkpoints,
    read_keys,
    read_public_keys,
    receipt_json,
    receipt_problem,
    verify_database,
    verify_sources,
)
from main.cli.common import (
    Command,
    UsageError,
    db_args,
    in_loop,
    print_report,
    read_snapshot,
    read_url,
    with_store,
)
from main.crosscheck import check_bundle_claims, check_records
from main.settings import Settings

if TYPE_CHECKING:
    from main.cli.common import Subparsers


def _verify_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "verify",
        help="check every ledger invariant, then the claims and vouchers against the ledgers; "
        "exit 1 on a fault",
    )
    db_args(p)
    p.add_argument("--bundle", type=Path, help="verify an exported bundle instead of a database")
    p.add_argument("--workers", type=int, default=None, help="signature-checking processes")
    p.add_argument(
        "--trusted-keys",
        type=Path,
        help="pin each ledger's keys to a published key list (JSON Lines from `timebank keys`)",
    )
    p.add_argument(
        "--held-checkpoints",
        type=Path,
        help="checkpoints you kept from before (JSON Lines: the API's checkpoints/latest "
        "answers, or a bundle's): the log must be an append-only extension of each",
    )


async def _verify(args: argparse.Namespace, settings: Settings) -> int:
    trusted, held = _pinned(args)
    if args.bundle is not None:
        source = bundle_sources(args.bundle)
        checked = await verify_sources(source, workers=args.workers, trusted=trusted, held=held)
        if not checked.ok:
            return print_report(checked)
        claims = await check_bundle_claims(args.bundle)  # what the entries alone say of them
        for problem in claims.problems:
            print(f"FAILED {problem}", file=sys.stderr)
        if not claims.problems:  # a ledger of no time bank names no claims: verify's own line
            named = f"; {claims.claims} claims named by its entries, each credited once and "
            print(checked.summary() + (named + "reversed at most once" if claims.claims else ""))
        return 1 if claims.problems else 0
    url = read_url(settings)
    report = await verify_database(url, workers=args.workers, trusted=trusted, held=held)
    if not report.ok:
        return print_report(report)
    records = await asyncio.to_thread(check_records, url)
    for problem in records.problems:  # every one, each naming its claim or voucher
        print(f"FAILED {problem}", file=sys.stderr)
    if not records.problems:
        print(f"{report.summary()}; {records.summary()}")
    return 1 if records.problems else 0


def _pinned(args: argparse.Namespace) -> tuple[Any, Any]:
    """--trusted-keys and --held-checkpoints, read; a file at fault is named as itself, never
    blamed on the bundle."""
    out: list[Any] = []
    for option, path, read in (
        ("--trusted-keys", args.trusted_keys, read_public_keys),
        ("--held-checkpoints", args.held_checkpoints, read_checkpoints),
    ):
        try:
            out.append(read(path) if path else None)
        except (RecordError, BundleError, UnicodeDecodeError) as exc:
            raise UsageError(f"{option} {path}: {exc}") from None
    return out[0], out[1]


def _export_log_parser(sub: Subparsers) -> None:
    p = sub.add_parser("export-log", help="write a self-contained bundle for offline verification")
    db_args(p)
    p.add_argument("--out", type=Path, required=True, help="bundle file to write (JSON Lines)")
    p.add_argument("--ledger", action="append", help="only this ledger (repeatable)")


async def _export_log(args: argparse.Namespace, settings: Settings) -> int:
    async def write(conn: AsyncConnection) -> int:
        with args.out.open("w", encoding="utf-8") as out:
            return await export_bundle(conn, out, args.ledger)

    count = await read_snapshot(settings, args.ledger, "ledger", write)
    print(f"wrote {count} entries to {args.out}")
    return 0


def _checkpoint_parser(sub: Subparsers) -> None:
    p = sub.add_parser("checkpoint", help="sign a checkpoint of every ledger (a scheduled job)")
    db_args(p, keys=True)


async def _checkpoint(args: argparse.Namespace, store: LedgerStore, ledgers: list[str]) -> int:
    for ledger in ledgers:
        cp = await store.checkpoint(ledger, idempotency_key=f"cli:{uuid.uuid4()}")
        print(f"{ledger}: checkpoint {cp.size} root {cp.root.hex()}")
    return 0


def _rotate_key_parser(sub: Subparsers) -> None:
    p = sub.add_parser("rotate-key", help="start signing a ledger with a new key (= keys rotate)")
    db_args(p, keys=True)
    p.add_argument("--ledger", required=True)


async def _rotate_key(args: argparse.Namespace, store: LedgerStore, ledgers: list[str]) -> int:
    key = await store.rotate_key(args.ledger, idempotency_key=f"cli:{uuid.uuid4()}")
    print(f"{args.ledger}: now signing with key {key.key_id} from sequence {key.from_seq}")
    return 0


def _receipt_parser(sub: Subparsers) -> None:
    p = sub.add_parser("receipt", help="print a member's receipt for one entry (JSON)")
    db_args(p)
    p.add_argument("--ledger", required=True)
    p.add_argument("--seq", type=int, required=True, help="the entry's sequence number")


async def _receipt(args: argparse.Namespace, store: LedgerStore, ledgers: list[str]) -> int:
    if args.seq < 1:
        raise UsageError(f"--seq {args.seq}: a sequence number is 1 or more")
    receipt = await store.receipt(args.ledger, args.seq)
    print(json.dumps(receipt_json(receipt), indent=1))
    return 0


def _verify_receipt_parser(sub: Subparsers) -> None:
    p = sub.add_parser("verify-receipt", help="check a receipt offline with only public keys")
    p.add_argument("receipt", type=Path, help="receipt file (JSON) from `timebank receipt`")
    p.add_argument(
        "--trusted-keys", type=Path, help="trusted key list (JSON Lines from `timebank keys`)"
    )


async def _verify_receipt(args: argparse.Namespace, settings: Settings) -> int:
    return _check_receipt(args.receipt, args.trusted_keys)


def _check_receipt(path: Path, keys_file: Path | None) -> int:
    try:
        receipt = load_receipt(path.read_text(encoding="utf-8"))
    except (ValueError, RecordError) as exc:  # not JSON, not UTF-8, not a receipt
        raise UsageError(f"{path} is not a receipt: {exc}") from None
    ledger = receipt.entry.ledger
    keys = list(receipt.keys)
    if keys_file is not None:
        try:
            keys = read_public_keys(keys_file).get(ledger, [])
        except (RecordError, BundleError, UnicodeDecodeError) as exc:
            raise UsageError(f"--trusted-keys {keys_file}: {exc}") from None
    problem = receipt_problem(receipt, keys)
    if problem:
        print(
            f"FAILED receipt for ledger {ledger} entry {receipt.entry.seq}: {problem}",
            file=sys.stderr,
        )
        return 1
    trust = "the trusted key list" if keys_file else "the keys it carries"
    print(
        f"OK entry {receipt.entry.seq} of ledger {ledger} is in checkpoint "
        f"{receipt.checkpoint.size} (root {receipt.checkpoint.root.hex()[:16]}...), "
        f"signed by {trust}"
    )
    return 0


def _keys_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "keys", help="print a ledger's public keys as JSON Lines, or rotate its signing key"
    )
    p.add_argument("action", nargs="?", choices=["list", "rotate"], default="list")
    db_args(p, keys=True)
    p.add_argument("--ledger", required=True)


async def _keys(args: argparse.Namespace, settings: Settings) -> int:
    """keys (list): the ledger's public keys; `keys rotate` runs as rotate-key."""

    async def show(conn: AsyncConnection) -> int:
        for key in await conn.run_sync(read_keys, args.ledger):
            print(json.dumps(key_json(key), separators=(",", ":")))
        return 0

    return await read_snapshot(settings, [args.ledger], "ledger", show)


COMMANDS = {
    "verify": Command(_verify_parser, in_loop(_verify)),
    "export-log": Command(_export_log_parser, in_loop(_export_log)),
    "checkpoint": Command(_checkpoint_parser, in_loop(with_store(_checkpoint))),
    "rotate-key": Command(_rotate_key_parser, in_loop(with_store(_rotate_key))),
    "receipt": Command(_receipt_parser, in_loop(with_store(_receipt))),
    "verify-receipt": Command(_verify_receipt_parser, in_loop(_verify_receipt, db=False)),
    "keys": Command(_keys_parser, in_loop(_keys)),
}
