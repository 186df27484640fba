"""The reports' commands: report, report verify FILE, and export-journal."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncConnection

from ledger import LedgerStore
from main.cli.common import Command, UsageError, db_args, in_loop, read_snapshot, with_store
from main.settings import Settings
from timebank.journal import write_journal
from timebank.service import TimeBank
from valuation.reports import FORMATS as REPORT_FORMATS
from valuation.reports import make_report, render, verify_report
from valuation.reports.bundle_check import NOT_CHECKABLE, check_against_bundle
from valuation.reports.engine import HORIZONS, Parameters

if TYPE_CHECKING:
    from main.cli.common import Subparsers


def _export_journal_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "export-journal",
        help="write the ledger as a plain-text accounting journal that hledger reads",
    )
    db_args(p, keys=True)
    p.add_argument("--scheme", action="append", help="only this scheme (repeatable; default: all)")
    p.add_argument("-o", "--out", required=True, help="journal file to write ('-': stdout)")


async def _export_journal(args: argparse.Namespace, settings: Settings) -> int:
    schemes = list(dict.fromkeys(args.scheme or []))

    async def write(conn: AsyncConnection) -> int:
        return await _write_journal(conn, args.out, schemes)

    return await read_snapshot(settings, args.scheme, "scheme", write)


async def _write_journal(conn: AsyncConnection, out: str, schemes: list[str]) -> int:
    """Write the journal to a temporary file renamed into place once whole (or to stdout)."""
    now = datetime.now(UTC)
    if out == "-":
        count = await conn.run_sync(write_journal, sys.stdout, schemes, exported_at=now)
        print(f"wrote {count} entries to standard output", file=sys.stderr)
        return 0
    path = Path(out)
    _check_directory(path)
    partial = path.with_name(f".{path.name}.partial")
    try:
        with partial.open("w", encoding="utf-8") as handle:
            count = await conn.run_sync(write_journal, handle, schemes, exported_at=now)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    print(f"wrote {count} entries to {path}")
    return 0


def _check_directory(path: Path) -> None:
    if not path.parent.is_dir():
        raise UsageError(f"no directory {path.parent} for {path.name}")


def _report_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "report",
        help="write a scheme's valued-contribution report, or (report verify FILE) recompute "
        "a JSON report from the database and compare every number",
    )
    p.add_argument("action", nargs="?", choices=["verify"], help="verify FILE instead")
    p.add_argument("file", nargs="?", type=Path, help="the JSON report to verify")
    p.add_argument("--bundle", type=Path, help="verify against an exported bundle, no database")
    db_args(p, keys=True)
    p.add_argument("--scheme")
    p.add_argument("--from", dest="start", type=date.fromisoformat, help="first day (YYYY-MM-DD)")
    p.add_argument("--to", dest="end", type=date.fromisoformat, help="last day (YYYY-MM-DD)")
    p.add_argument("--format", default="json", choices=list(REPORT_FORMATS))
    p.add_argument("-o", "--out", help="file to write ('-' or none: standard output)")
    p.add_argument("--k", type=int, default=10, help="suppress equality cells under k members")
    p.add_argument("--horizon", type=int, default=1, choices=list(HORIZONS), help="years")
    p.add_argument("--currency", default="GBP", choices=["GBP", "USD"])
    p.add_argument("--price-base", help="rebase money to this year's prices, e.g. 2025/26")
    p.add_argument(
        "--discount-start",
        type=int,
        default=1,
        choices=[0, 1],
        help="1: year 1 discounted (SROI Guide); 0: year 0 not (Green Book)",
    )
    p.add_argument(
        "--what-if",
        nargs=3,
        metavar=("PEOPLE", "HOURS_A_WEEK", "WEEKS"),
        help="project hours (and their value) for a population",
    )
    p.add_argument("--geography", default="UK", help="where wages are looked up (UK, Wales, US)")
    for name in ("deadweight", "displacement", "attribution", "drop-off"):
        p.add_argument(
            f"--{name}",
            type=Decimal,
            metavar="FRACTION",
            help=f"the run's {name} where an outcome's value has none (flagged)",
        )


async def _report(args: argparse.Namespace, settings: Settings) -> int:
    """report verify FILE --bundle B reads only the bundle; the rest, the database."""
    if args.action == "verify" and args.bundle is not None:
        return await _report_against_bundle(args.file, args.bundle)
    return await with_store(_report_command)(args, settings)


async def _report_against_bundle(file: Path | None, bundle: Path) -> int:
    """report verify FILE --bundle B: the figures the ledger decides, from the bundle alone."""
    if file is None:
        raise UsageError("report verify takes the JSON report's file")
    report = json.loads(await asyncio.to_thread(file.read_text, encoding="utf-8"))
    found, read = await check_against_bundle(report, bundle)
    for line in found:
        print(f"DIFFERS {line}")
    if found:
        print(f"FAILED {file}: {len(found)} differences against {bundle}")
        return 1
    print(
        f"OK {file}: every figure the ledger decides matches {bundle} ({read} entries read); "
        f"not checkable from a bundle: {'; '.join(NOT_CHECKABLE)}"
    )
    return 0


async def _report_command(args: argparse.Namespace, store: LedgerStore, _: list[str]) -> int:
    """report (write one) and report verify FILE (recompute it and compare)."""
    bank = await TimeBank.on(store.db, store)
    try:
        if args.action == "verify":
            if args.file is None:
                raise UsageError("report verify takes the JSON report's file")
            report = json.loads(await asyncio.to_thread(args.file.read_text, encoding="utf-8"))
            found = await verify_report(bank, report)
            for line in found:
                print(f"DIFFERS {line}")
            size = report["checkpoint"]["size"]
            if found:
                print(f"FAILED {args.file}: {len(found)} differences at checkpoint {size}")
                return 1
            print(f"OK {args.file}: every number matches, recomputed at checkpoint {size}")
            return 0
        if not (args.scheme and args.start and args.end):
            raise UsageError("report needs --scheme, --from and --to")
        if args.scheme not in await store.ledgers():
            raise UsageError(f"no scheme {args.scheme!r}")
        params = Parameters(
            k=args.k,
            horizon_years=args.horizon,
            currency=args.currency,
            geography=args.geography,
            deadweight=args.deadweight,
            displacement=args.displacement,
            attribution=args.attribution,
            drop_off=args.drop_off,
            price_base=args.price_base,
            discount_start=args.discount_start,
            **_what_if(args.what_if),
        )
        data = render(
            await make_report(bank, args.scheme, args.start, args.end, params), args.format
        )
    finally:
        await bank.close()
    if args.out in (None, "-"):
        sys.stdout.buffer.write(data)
        return 0
    path = Path(args.out)
    _check_directory(path)
    await asyncio.to_thread(path.write_bytes, data)
    print(f"wrote the {args.format} report to {path}", file=sys.stderr)
    return 0


def _what_if(given: list[str] | None) -> dict[str, Any]:
    if not given:
        return {}
    try:
        people, per_week, weeks = int(given[0]), Decimal(given[1]), int(given[2])
    except (ValueError, ArithmeticError):
        raise UsageError("--what-if takes PEOPLE HOURS_A_WEEK WEEKS, e.g. 300000 3 52") from None
    return {
        "what_if_population": people,
        "what_if_hours_per_week": per_week,
        "what_if_weeks": weeks,
    }


COMMANDS = {
    "export-journal": Command(_export_journal_parser, in_loop(_export_journal)),
    "report": Command(_report_parser, in_loop(_report)),
}
