"""The deployment's commands: serve, init, migrate, migrate-store, token create, account create."""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from identity.auth import ApiRole, Principal, grant_problem
from ledger import KeyRing, verify_database
from main.cli.common import Command, UsageError, db_args, existing, in_loop, print_report
from main.settings import Settings
from timebank.service import TimeBank

if TYPE_CHECKING:
    from main.cli.common import Subparsers


def _serve_parser(sub: Subparsers) -> None:
    p = sub.add_parser("serve", help="run the HTTP API (uvicorn)")
    db_args(p, keys=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--schedule-seconds",
        type=float,
        default=300.0,
        help="how often to run the scheduled jobs (main.jobs) (0: never)",
    )


def _serve(args: argparse.Namespace) -> int:
    """serve: uvicorn runs its own event loop."""
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


def _init_parser(sub: Subparsers) -> None:
    p = sub.add_parser("init", help="create the database's tables and a deployment admin token")
    db_args(p, keys=True)


def _token_parser(sub: Subparsers) -> None:
    p = sub.add_parser("token", help="bearer tokens for the API")
    tok = p.add_subparsers(dest="action", required=True)
    p = tok.add_parser("create", help="make a token and print it (shown only this once)")
    db_args(p, keys=True)
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


def _account_parser(sub: Subparsers) -> None:
    p = sub.add_parser("account", help="sign-in accounts for the app's pages")
    acc = p.add_subparsers(dest="action", required=True)
    p = acc.add_parser("create", help="make an account; prints a new password unless given one")
    db_args(p, keys=True)
    p.add_argument("--login", required=True, help="3-64 of a-z 0-9 . _ @ -")
    p.add_argument(
        "--role", required=True, choices=[r.value for r in ApiRole if r.value != "admin"]
    )
    p.add_argument("--scheme", required=True)
    p.add_argument("--member", help="the member it acts as (member, coordinator, scheme-admin)")
    p.add_argument("--partner", help="the partner organisation (partner-staff)")
    p.add_argument("--lang", default="", choices=["", "en", "cy"], help="default: the browser's")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")


async def _tokens(args: argparse.Namespace, settings: Settings) -> int:
    """init (tables and an admin token), token create and account create."""
    from main.bootstrap import bootstrap

    app = await bootstrap(settings.url, KeyRing.from_env(settings.key_dir))
    bank, book, accounts = app.bank, app.tokens, app.book
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
        await app.aclose()
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


def _migrate_store_parser(sub: Subparsers) -> None:
    p = sub.add_parser("migrate-store", help="copy a database into an empty one, then verify it")
    p.add_argument("--from", dest="source", required=True, help="a SQLite path or database URL")
    p.add_argument("--to", dest="target", required=True, help="an empty database's URL or path")


async def _migrate_store(args: argparse.Namespace, settings: Settings) -> int:
    """migrate-store --from A --to B: checks its own two databases."""
    from main.copystore import TargetNotEmpty, copy_store

    src = existing(Settings.from_env(args.source), "migrate-store").url
    to = Settings.from_env(args.target)
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
    return print_report(await verify_database(dst))


def _remove_sqlite(path: Path) -> None:
    """A SQLite file and its journals (a half-made copy)."""
    for leftover in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{leftover}").unlink(missing_ok=True)


def _migrate_parser(sub: Subparsers) -> None:
    p = sub.add_parser("migrate", help="bring the database's schema up to this release")
    db_args(p)
    p.add_argument("--to", default="head", help="a revision (default: the newest)")


async def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    from main.migrate import migrate

    before, after = migrate(settings.url, args.to)
    print(f"schema {before or 'unversioned'} -> {after}")
    return 0


COMMANDS = {
    "serve": Command(_serve_parser, _serve),
    "init": Command(_init_parser, in_loop(_tokens)),
    "token": Command(_token_parser, in_loop(_tokens)),
    "migrate-store": Command(_migrate_store_parser, in_loop(_migrate_store, db=False)),
    "migrate": Command(_migrate_parser, in_loop(_migrate)),
    "account": Command(_account_parser, in_loop(_tokens)),
}
