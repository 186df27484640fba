"""The `timebank` command: demo data, verification, export, and the ledger's scheduled jobs."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import time
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from api.auth import ApiRole, Principal, grant_problem
from ledger import (
    BundleError,
    KeyRing,
    LedgerError,
    LedgerStore,
    bundle_sources,
    export_bundle,
    storage,
    to_us,
    verify_database,
    verify_sources,
)
from ledger.bundle import read_checkpoints, read_public_keys
from ledger.proofs import receipt_problem
from ledger.records import RecordError, key_json, load_receipt, receipt_json
from ledger.verify import Report
from main.crosscheck import check_records
from main.demo import CREDITS, ELDERS, P2P, TENANTS, build_demo, demo_clock
from main.jobs import run_jobs
from main.settings import Settings
from timebank.journal import write_journal
from timebank.reports import FORMATS as REPORT_FORMATS
from timebank.reports import make_report, render, verify_report
from timebank.reports.bundle_check import NOT_CHECKABLE, check_against_bundle
from timebank.reports.engine import HORIZONS, Parameters
from timebank.service import TimeBank


class UsageError(Exception):
    """A command that cannot run as asked (exit 2)."""


def _db_args(p: argparse.ArgumentParser, keys: bool = False) -> None:
    p.add_argument(
        "--db",
        help="SQLite file or database URL (default: $TIMEBANK_DATABASE_URL, $TIMEBANK_DB, "
        "timebank.db)",
    )
    if keys:
        p.add_argument("--keys", help="key directory (default: $TIMEBANK_KEY_DIR or <db>.keys)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="timebank", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="create a database with demo ledgers, then verify it")
    _db_args(p, keys=True)
    p.add_argument("--entries", type=int, default=3000, help="about how many entries")
    p = sub.add_parser(
        "verify",
        help="check every ledger invariant, then the claims and vouchers against the ledgers; "
        "exit 1 on a fault",
    )
    _db_args(p)
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
    p = sub.add_parser("export-log", help="write a self-contained bundle for offline verification")
    _db_args(p)
    p.add_argument("--out", type=Path, required=True, help="bundle file to write (JSON Lines)")
    p.add_argument("--ledger", action="append", help="only this ledger (repeatable)")
    p = sub.add_parser(
        "export-journal",
        help="write the ledger as a plain-text accounting journal that hledger reads",
    )
    _db_args(p, keys=True)
    p.add_argument("--scheme", action="append", help="only this scheme (repeatable; default: all)")
    p.add_argument("-o", "--out", required=True, help="journal file to write ('-': stdout)")
    p = sub.add_parser(
        "report",
        help="write a scheme's valued-contribution report, or (report verify FILE) recompute "
        "a JSON report from the database and compare every number",
    )
    p.add_argument("action", nargs="?", choices=["verify"], help="verify FILE instead")
    p.add_argument("file", nargs="?", type=Path, help="the JSON report to verify")
    p.add_argument("--bundle", type=Path, help="verify against an exported bundle, no database")
    _db_args(p, keys=True)
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
    p = sub.add_parser("checkpoint", help="sign a checkpoint of every ledger (a scheduled job)")
    _db_args(p, keys=True)
    p = sub.add_parser(
        "expire",
        help="scheduled job: release reservations past their expiry, accept unanswered "
        "person-to-person claims, expire old credit",
    )
    _db_args(p, keys=True)
    p = sub.add_parser(
        "repair-decisions",
        help="reverse the entry of each claim that says rejected (a confirmation that raced "
        "its rejection, before 0.16); verify passes again",
    )
    _db_args(p, keys=True)
    p = sub.add_parser("rotate-key", help="start signing a ledger with a new key (= keys rotate)")
    _db_args(p, keys=True)
    p.add_argument("--ledger", required=True)
    p = sub.add_parser("serve", help="run the HTTP API (uvicorn)")
    _db_args(p, keys=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--schedule-seconds",
        type=float,
        default=300.0,
        help="how often to run the scheduled jobs (main.jobs) (0: never)",
    )
    p = sub.add_parser("init", help="create the database's tables and a deployment admin token")
    _db_args(p, keys=True)
    p = sub.add_parser("token", help="bearer tokens for the API")
    tok = p.add_subparsers(dest="action", required=True)
    p = tok.add_parser("create", help="make a token and print it (shown only this once)")
    _db_args(p, keys=True)
    p.add_argument("--role", required=True, choices=[r.value for r in ApiRole])
    p.add_argument("--scheme", help="the scheme it acts in (not for --role admin)")
    p.add_argument("--member", help="the member it acts as (member, coordinator, scheme-admin)")
    p.add_argument("--partner", help="the partner organisation (partner-staff)")
    p.add_argument("--label", default="", help="a note of who holds it")
    p.add_argument(
        "--expires-days",
        type=int,
        default=None,
        help="refuse the token this many days from now (default: until revoked)",
    )
    p = sub.add_parser("migrate-store", help="copy a database into an empty one, then verify it")
    p.add_argument("--from", dest="source", required=True, help="a SQLite path or database URL")
    p.add_argument("--to", dest="target", required=True, help="an empty database's URL or path")
    p = sub.add_parser("migrate", help="bring the database's schema up to this release")
    _db_args(p)
    p.add_argument("--to", default="head", help="a revision (default: the newest)")
    p = sub.add_parser("account", help="sign-in accounts for the app's pages")
    acc = p.add_subparsers(dest="action", required=True)
    p = acc.add_parser("create", help="make an account; prints a new password unless given one")
    _db_args(p, keys=True)
    p.add_argument("--login", required=True, help="3-64 of a-z 0-9 . _ @ -")
    p.add_argument(
        "--role", required=True, choices=[r.value for r in ApiRole if r.value != "admin"]
    )
    p.add_argument("--scheme", required=True)
    p.add_argument("--member", help="the member it acts as (member, coordinator, scheme-admin)")
    p.add_argument("--partner", help="the partner organisation (partner-staff)")
    p.add_argument("--lang", default="", choices=["", "en", "cy"], help="default: the browser's")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p = sub.add_parser("receipt", help="print a member's receipt for one entry (JSON)")
    _db_args(p)
    p.add_argument("--ledger", required=True)
    p.add_argument("--seq", type=int, required=True, help="the entry's sequence number")
    p = sub.add_parser("verify-receipt", help="check a receipt offline with only public keys")
    p.add_argument("receipt", type=Path, help="receipt file (JSON) from `timebank receipt`")
    p.add_argument(
        "--trusted-keys", type=Path, help="trusted key list (JSON Lines from `timebank keys`)"
    )
    p = sub.add_parser(
        "keys", help="print a ledger's public keys as JSON Lines, or rotate its signing key"
    )
    p.add_argument("action", nargs="?", choices=["list", "rotate"], default="list")
    _db_args(p, keys=True)
    p.add_argument("--ledger", required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if getattr(args, "action", None) == "rotate":
        args.command = "rotate-key"
    try:
        if args.command == "serve":
            return _serve(args)
        return asyncio.run(_run(args))
    except (BundleError, RecordError) as exc:
        print(f"FAILED bundle: {exc}", file=sys.stderr)
        return 1
    except LedgerError as exc:  # a request the ledger refused: an argument at fault
        print(f"timebank: {exc.message}", file=sys.stderr)
        return 2
    except ConnectionError as exc:  # (an OSError) a server that does not answer
        print(f"timebank: cannot reach the database server: {_line(exc)}", file=sys.stderr)
        return 2
    except (UsageError, OSError, ValueError) as exc:  # bad arguments, unreadable input
        print(f"timebank: {_line(exc)}", file=sys.stderr)
        return 2
    except DBAPIError as exc:
        # a server that refuses the connection (no such database, login refused), a file that
        # is not a database, a database without this service's tables: one line naming
        # neither the URL nor its password
        why = _line(exc.orig or exc)
        if isinstance(exc, OperationalError) and why.lower().startswith("connection"):
            print(f"timebank: cannot reach the database server: {why}", file=sys.stderr)
        else:
            print(f"timebank: cannot use the database: {why}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a fault of ours: one line, the traceback only when asked
        if os.environ.get("TIMEBANK_DEBUG"):
            raise
        print(
            f"timebank: unexpected error ({type(exc).__name__}: {_line(exc)}); "
            "TIMEBANK_DEBUG=1 shows the traceback",
            file=sys.stderr,
        )
        return 3


def _line(exc: BaseException) -> str:
    """An exception's message as one line."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# The commands that may make a database where there is none; every other one refuses a missing
# SQLite file rather than quietly making an empty one under a mistyped name. (`serve` makes its
# tables on a deployment's first start, as `init` does.)
CREATES = ("init", "demo", "serve")


def _existing(settings: Settings, command: str) -> Settings:
    if settings.is_sqlite:
        if settings.db_path.is_dir():
            raise UsageError(f"{settings.db_path} is a directory, not a database file")
        if command not in CREATES and not settings.db_path.exists():
            raise UsageError(f"no database at {settings.db_path} (timebank init makes one)")
    return settings


async def _run(args: argparse.Namespace) -> int:
    settings = Settings.from_env(getattr(args, "db", None), getattr(args, "keys", None))
    offline = args.command == "verify-receipt" or getattr(args, "bundle", None) is not None
    if not offline and args.command != "migrate-store":  # which checks its own two
        _existing(settings, args.command)
    if args.command == "demo":
        if not settings.is_sqlite:
            raise UsageError("demo builds on a SQLite file (migrate-store copies it to a server)")
        return await _demo(settings, args.entries)
    if args.command == "migrate-store":
        return await _migrate_store(args.source, args.target)
    if args.command == "migrate":
        from main.migrate import migrate

        before, after = migrate(settings.url, args.to)
        print(f"schema {before or 'unversioned'} -> {after}")
        return 0
    if args.command in ("init", "token", "account"):
        return await _tokens(args, settings)
    if args.command == "verify-receipt":
        return _verify_receipt(args.receipt, args.trusted_keys)
    if args.command == "report" and args.action == "verify" and args.bundle is not None:
        return await _report_against_bundle(args.file, args.bundle)
    trusted, held = _pinned(args)
    if args.command == "verify" and args.bundle is not None:
        source = bundle_sources(args.bundle)
        return _report(
            await verify_sources(source, workers=args.workers, trusted=trusted, held=held)
        )
    # reads open a SQLite file read-only; a server database is read in a read-only transaction
    read_url = (
        storage.sqlite_url(str(settings.db_path), read_only=True)
        if settings.is_sqlite
        else settings.url
    )
    if args.command == "verify":
        report = await verify_database(read_url, workers=args.workers, trusted=trusted, held=held)
        if not report.ok:
            return _report(report)
        records = await asyncio.to_thread(check_records, read_url)
        for problem in records.problems:  # every one, each naming its claim or voucher
            print(f"FAILED {problem}", file=sys.stderr)
        if not records.problems:
            print(f"{report.summary()}; {records.summary()}")
        return 1 if records.problems else 0
    if args.command in ("export-log", "export-journal", "keys"):
        shown = str(settings.db_path) if settings.is_sqlite else _shown(settings.url)
        return await _read_only(args, read_url, shown)
    store = await LedgerStore.open(settings.url, KeyRing.from_env(settings.key_dir))
    try:
        return await _with_store(args, store)
    finally:
        await store.close()


def _pinned(args: argparse.Namespace) -> tuple[Any, Any]:
    """--trusted-keys and --held-checkpoints, read; a file at fault is named as itself, never
    blamed on the bundle."""
    out: list[Any] = []
    for option, path, read in (
        ("--trusted-keys", getattr(args, "trusted_keys", None), read_public_keys),
        ("--held-checkpoints", getattr(args, "held_checkpoints", None), read_checkpoints),
    ):
        try:
            out.append(read(path) if path else None)
        except (RecordError, BundleError, UnicodeDecodeError) as exc:
            raise UsageError(f"{option} {path}: {exc}") from None
    return out[0], out[1]


async def _migrate_store(source: str, target: str) -> int:
    from main.copystore import TargetNotEmpty, copy_store

    src = _existing(Settings.from_env(source), "migrate-store").url
    to = Settings.from_env(target)
    dst = to.url
    made = to.is_sqlite and not to.db_path.exists()  # a file this run makes: gone if it fails
    if to.is_sqlite and not to.db_path.parent.is_dir():
        raise UsageError(f"--to: no directory {to.db_path.parent}")
    try:
        counts = await asyncio.to_thread(
            copy_store, src, dst, lambda table, n: print(f"copied {n} rows of {table}")
        )
    except BaseException as exc:
        if made:
            _remove_sqlite(to.db_path)
        if isinstance(exc, TargetNotEmpty):
            raise UsageError(str(exc)) from None
        raise
    print(f"copied {sum(counts.values())} rows in {len(counts)} tables; verifying the copy")
    return _report(await verify_database(dst))


def _remove_sqlite(path: Path) -> None:
    """A SQLite file and its journals (a half-made copy)."""
    for leftover in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{leftover}").unlink(missing_ok=True)


def _shown(url: str) -> str:
    """A database URL as it may be printed: never its password."""
    from sqlalchemy import make_url

    return make_url(url).render_as_string(hide_password=True)


async def _read_only(args: argparse.Namespace, url: str, db: str) -> int:
    """export-log, export-journal and keys: read one snapshot of the database, opened
    read-only; `db` names it in messages."""
    engine = storage.make_engine(url, read_only=True)
    try:
        async with engine.connect() as conn, conn.begin():
            journal = args.command == "export-journal"
            if args.command == "export-log":
                wanted = args.ledger
            else:
                wanted = args.scheme if journal else [args.ledger]
            unknown = sorted(set(wanted or []) - set(await conn.run_sync(storage.list_ledgers)))
            if unknown:
                noun = "scheme" if journal else "ledger"
                raise UsageError(f"no {noun} {', '.join(map(repr, unknown))} in {db}")
            if journal:
                return await _export_journal(conn, args.out, list(dict.fromkeys(wanted or [])))
            if args.command == "keys":
                for key in await conn.run_sync(storage.read_keys, args.ledger):
                    print(json.dumps(key_json(key), separators=(",", ":")))
                return 0
            with args.out.open("w", encoding="utf-8") as out:
                count = await export_bundle(conn, out, args.ledger)
    finally:
        await engine.dispose()
    print(f"wrote {count} entries to {args.out}")
    return 0


async def _export_journal(conn: AsyncConnection, out: str, schemes: list[str]) -> int:
    """Write the journal to a temporary file renamed into place once whole (or to stdout)."""
    now = datetime.now(UTC)
    if out == "-":
        count = await conn.run_sync(write_journal, sys.stdout, schemes, exported_at=now)
        print(f"wrote {count} entries to standard output", file=sys.stderr)
        return 0
    path = Path(out)
    if not path.parent.is_dir():
        raise UsageError(f"no directory {path.parent} for {path.name}")
    partial = path.with_name(f".{path.name}.partial")
    try:
        with partial.open("w", encoding="utf-8") as handle:
            count = await conn.run_sync(write_journal, handle, schemes, exported_at=now)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    print(f"wrote {count} entries to {path}")
    return 0


async def _with_store(args: argparse.Namespace, store: LedgerStore) -> int:
    """The commands that write (checkpoint, expire, rotate-key) or build proofs (receipt)."""
    ledgers = await store.ledgers()
    named: str = getattr(args, "ledger", None) or ""
    if named and named not in ledgers:
        raise UsageError(f"no ledger {named!r}")
    if args.command == "report":
        return await _report_command(args, store)
    if args.command == "receipt":
        if args.seq < 1:
            raise UsageError(f"--seq {args.seq}: a sequence number is 1 or more")
        receipt = await store.receipt(named, args.seq)
        print(json.dumps(receipt_json(receipt), indent=1))
    elif args.command == "rotate-key":
        key = await store.rotate_key(named, idempotency_key=f"cli:{uuid.uuid4()}")
        print(f"{named}: now signing with key {key.key_id} from sequence {key.from_seq}")
    elif args.command == "checkpoint":
        for ledger in ledgers:
            cp = await store.checkpoint(ledger, idempotency_key=f"cli:{uuid.uuid4()}")
            print(f"{ledger}: checkpoint {cp.size} root {cp.root.hex()}")
    elif args.command == "expire":
        now = datetime.now(UTC)
        await _jobs(store, ledgers, now)
        await _forget_old(store.url, now)
    elif args.command == "repair-decisions":
        await _repair_decisions(store, ledgers)
    return 0


async def _schemes_among(bank: TimeBank, ledgers: list[str]) -> list[str]:
    """The ledgers that are a scheme's (a database may hold ledgers of no scheme)."""
    schemes = {s.id for s in await bank.schemes()}
    return [ledger for ledger in ledgers if ledger in schemes]


async def _repair_decisions(store: LedgerStore, ledgers: list[str]) -> None:
    bank = await TimeBank.open(store.url, store)
    try:
        for ledger in await _schemes_among(bank, ledgers):
            for claim in await bank.repair_decisions(ledger):
                print(
                    f"{ledger}: claim {claim.id} is rejected; its entry {claim.entry_seq} "
                    f"is reversed by entry {claim.reversal_seq}"
                )
            print(f"{ledger}: every rejected claim is without credit")
    finally:
        await bank.close()


async def _forget_old(url: str, now: datetime) -> None:
    """The app's records kept only for a while: sessions, failed sign-ins, finished jobs."""
    from web.book import AccountBook

    book = await AccountBook.open(url, lambda: to_us(now))
    try:
        gone = await book.forget_old()
    finally:
        await book.close()
    print(
        f"forgot {gone['sessions']} session records, {gone['failures']} failed sign-ins and "
        f"{gone['jobs']} background jobs"
    )


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


async def _report_command(args: argparse.Namespace, store: LedgerStore) -> int:
    """report (write one) and report verify FILE (recompute it and compare)."""
    bank = await TimeBank.open(store.url, store)
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
    if not path.parent.is_dir():
        raise UsageError(f"no directory {path.parent} for {path.name}")
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


async def _jobs(store: LedgerStore, ledgers: list[str], now: datetime) -> None:
    """The scheduled jobs (`main.jobs`, as `serve` runs them) but checkpoints, which have
    a command of their own."""
    bank = await TimeBank.open(store.url, store)
    try:
        for done in await run_jobs(bank, now, ledgers=ledgers, checkpoints=False):
            print(f"{done.ledger}: {done.reservations_expired} reservations expired")
            if done.claims_accepted is not None:
                print(
                    f"{done.ledger}: {done.claims_accepted} claims accepted unanswered, "
                    f"{done.minutes_expired} minutes of old credit expired"
                )
    finally:
        await bank.close()


async def _demo(settings: Settings, entries: int) -> int:
    settings.db_path.parent.mkdir(parents=True, exist_ok=True)
    clock = demo_clock()
    url = settings.url
    store = await LedgerStore.open(url, KeyRing.from_env(settings.key_dir), clock=clock)
    bank = await TimeBank.open(url, store, clock)
    try:
        if CREDITS in await store.ledgers():
            print(f"{settings.db_path} already holds the demo ledgers; verifying them")
        else:
            await build_demo(bank, clock, entries)
            print(
                f"built demo ledgers {CREDITS} and {P2P} in {settings.db_path} "
                f"(signing keys in {settings.key_dir})"
            )
        tokens = await _demo_tokens(bank)
        accounts = await _demo_accounts(bank)
    finally:
        await bank.close()
        await store.close()
    path = f"{settings.db_path}.tokens.json"
    _write_private(path, json.dumps(tokens, indent=1) + "\n")
    print(f"demo API tokens (one per role) in {path}")
    path = f"{settings.db_path}.accounts.json"
    _write_private(path, json.dumps(accounts, indent=1) + "\n")
    print(f"demo sign-ins for the app (login: password, one per role) in {path}")
    return _report(await verify_database(storage.sqlite_url(str(settings.db_path), read_only=True)))


def _write_private(path: str, text: str) -> None:
    """Write a file only its owner can read."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)


async def _demo_tokens(bank: TimeBank) -> dict[str, str]:
    """Fresh bearer tokens for trying the demo's API, one per kind of user (demo only: kept
    in a file beside the database so `scripts/run` can show them)."""
    from api.tokens import TokenBook

    book = await TokenBook.open(bank.ledger.url, bank.clock)
    wanted = {
        "admin": (ApiRole.ADMIN, None, None),
        f"{CREDITS} coordinator C1": (ApiRole.COORDINATOR, CREDITS, "C1"),
        f"{CREDITS} tenant {TENANTS[0]}": (ApiRole.MEMBER, CREDITS, TENANTS[0]),
        f"{CREDITS} commissioner": (ApiRole.COMMISSIONER, CREDITS, None),
        f"{CREDITS} partner staff gate-arts": (ApiRole.PARTNER_STAFF, CREDITS, None),
        f"{P2P} coordinator C1": (ApiRole.COORDINATOR, P2P, "C1"),
        f"{P2P} member {ELDERS[0]}": (ApiRole.MEMBER, P2P, ELDERS[0]),
    }
    out = {}
    try:
        for label, (role, scheme, member) in wanted.items():
            partner = "gate-arts" if role is ApiRole.PARTNER_STAFF else None
            _, token = await book.create(
                role,
                scheme,
                member,
                f"demo: {label}",
                created_by="demo",
                idempotency_key=str(uuid.uuid4()),
                partner=partner,
            )
            assert token is not None
            out[label] = token
    finally:
        await book.close()
    return out


DEMO_ACCOUNTS = {  # login: (role, scheme, member, partner)
    "tenant": (ApiRole.MEMBER, CREDITS, TENANTS[0], None),
    "coordinator": (ApiRole.COORDINATOR, CREDITS, "C1", None),
    "gate-till": (ApiRole.PARTNER_STAFF, CREDITS, None, "gate-arts"),
    "commissioner": (ApiRole.COMMISSIONER, CREDITS, None, None),
    "elder": (ApiRole.MEMBER, P2P, ELDERS[0], None),
    "elder-coordinator": (ApiRole.COORDINATOR, P2P, "C1", None),
}


async def _demo_accounts(bank: TimeBank) -> dict[str, str]:
    """Sign-ins for trying the app, one per kind of user, each with a fresh random password
    (demo only: kept beside the database, so `scripts/run` can show them). Run again, the
    demo's accounts get new passwords and their old sessions end."""
    from web.book import AccountBook

    book = await AccountBook.open(bank.ledger.url, bank.clock)
    out = {}
    try:
        for login, (role, scheme, member, partner) in DEMO_ACCOUNTS.items():
            password = secrets.token_urlsafe(12)
            await book.create(login, password, role, scheme, member=member, partner=partner)
            await book.set_password(login, password)
            out[login] = password
    finally:
        await book.close()
    return out


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from main.asgi import Config, create_app

    settings = Settings.from_env(args.db, args.keys)
    if settings.is_sqlite and not settings.db_path.parent.exists():
        raise UsageError(f"no directory {settings.db_path.parent}")
    from web import WebConfig

    config = Config(
        settings.url,
        settings.key_dir,
        settings.admin_token,
        args.schedule_seconds,
        web=WebConfig(cookie_secure=settings.cookie_secure),
    )
    print(
        f"timebank on http://{args.host}:{args.port}/ (the app; API under /api/v1, docs: "
        "/api/v1/docs)"
    )
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level="warning")
    return 0


async def _tokens(args: argparse.Namespace, settings: Settings) -> int:
    """init (tables and an admin token), token create and account create."""
    from api.tokens import TokenBook
    from partners.service import Partners
    from web.book import AccountBook

    store = await LedgerStore.open(settings.url, KeyRing.from_env(settings.key_dir))
    bank = await TimeBank.open(settings.url, store)
    await Partners(bank).create_tables()
    book = await TokenBook.open(settings.url, bank.clock)
    accounts = await AccountBook.open(settings.url, bank.clock)
    try:
        partner = None if args.command == "init" else args.partner
        if args.command == "init":
            role, scheme, member, label = ApiRole.ADMIN, None, None, "timebank init"
        else:
            role, scheme, member = ApiRole(args.role), args.scheme, args.member
            label = getattr(args, "label", "")
            await _check_scope(bank, role, scheme, member, partner)
        if args.command == "account":
            password = sys.stdin.readline().rstrip("\n") if args.password_stdin else ""
            made = password or secrets.token_urlsafe(12)
            try:
                await accounts.create(
                    args.login, made, role, scheme, member=member, partner=partner, lang=args.lang
                )
            except ValueError as exc:
                raise UsageError(str(exc)) from None
            print(
                f"account {args.login} ({role}{f' in {scheme}' if scheme else ''})", file=sys.stderr
            )
            if not password:
                print("password (shown only now):", file=sys.stderr)
                print(made)
            return 0
        days = getattr(args, "expires_days", None)
        if days is not None and not 0 < days <= 3660:
            raise UsageError("--expires-days must be 1 to 3660")
        expires_us = None if days is None else int((time.time() + days * 86_400) * 1_000_000)
        _, token = await book.create(
            role,
            scheme,
            member,
            label,
            created_by="cli",
            idempotency_key=str(uuid.uuid4()),
            partner=partner,
            expires_us=expires_us,
        )
    finally:
        await accounts.close()
        await book.close()
        await bank.close()
        await store.close()
    where = f" in {scheme}" if scheme else ""
    print(f"{role} token{where} (shown only now; keep it secret):", file=sys.stderr)
    print(token)
    return 0


async def _check_scope(
    bank: TimeBank, role: ApiRole, scheme: str | None, member: str | None, partner: str | None
) -> None:
    """What a token or an account may be given: the same rules as the API's token route."""
    from partners.service import Partners

    if role is ApiRole.ADMIN and scheme:
        raise UsageError("an admin has no --scheme")
    if role is not ApiRole.ADMIN:
        if not scheme:
            raise UsageError(f"a {role} needs --scheme")
        await bank.scheme(scheme)
        person = await bank.member(scheme, member) if member else None
        if person is not None and person.erased:
            raise UsageError(f"member {member} was erased")
        roles = frozenset(person.roles) if person else None
        # whoever holds the database file stands in for the scheme's admin: any scheme token
        owner = Principal("cli", ApiRole.SCHEME_ADMIN, scheme, None)
        why = grant_problem(owner, role, scheme, roles)
        if why:
            raise UsageError(why[1])
    if (role is ApiRole.PARTNER_STAFF) != (partner is not None):
        raise UsageError("partner staff, and only they, take --partner")
    if partner is not None:
        await Partners(bank).agreement(scheme or "", partner)


def _verify_receipt(path: Path, keys_file: Path | None) -> int:
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


def _report(report: Report) -> int:
    if report.ok:
        print(report.summary())
        return 0
    print(report.summary(), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
