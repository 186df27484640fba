"""The demo command: a database of demo ledgers, its API tokens and sign-ins, then verified."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import uuid
from typing import TYPE_CHECKING

from identity.auth import ApiRole
from ledger import KeyRing, sqlite_url, verify_database
from main.cli.common import Command, UsageError, db_args, in_loop, print_report
from main.demo import CREDITS, ELDERS, P2P, TENANTS, build_demo, demo_clock
from main.settings import Settings

if TYPE_CHECKING:
    from identity.tokens import TokenBook
    from main.cli.common import Subparsers
    from web.book import AccountBook


def _demo_parser(sub: Subparsers) -> None:
    p = sub.add_parser("demo", help="create a database with demo ledgers, then verify it")
    db_args(p, keys=True)
    p.add_argument("--entries", type=int, default=3000, help="about how many entries")


async def _demo(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.is_sqlite:
        raise UsageError("demo builds on a SQLite file (migrate-store copies it to a server)")
    settings.db_path.parent.mkdir(parents=True, exist_ok=True)
    from main.bootstrap import bootstrap

    clock = demo_clock()
    url = settings.url
    app = await bootstrap(url, KeyRing.from_env(settings.key_dir), clock=clock)
    bank = app.bank
    try:
        if CREDITS in await app.store.ledgers():
            print(f"{settings.db_path} already holds the demo ledgers; verifying them")
        else:
            await build_demo(bank, clock, args.entries)
            print(
                f"built demo ledgers {CREDITS} and {P2P} in {settings.db_path} "
                f"(signing keys in {settings.key_dir})"
            )
        tokens = await _demo_tokens(app.tokens)
        accounts = await _demo_accounts(app.book)
    finally:
        await app.aclose()
    path = f"{settings.db_path}.tokens.json"
    _write_private(path, json.dumps(tokens, indent=1) + "\n")
    print(f"demo API tokens (one per role) in {path}")
    path = f"{settings.db_path}.accounts.json"
    _write_private(path, json.dumps(accounts, indent=1) + "\n")
    print(f"demo sign-ins for the app (login: password, one per role) in {path}")
    url = sqlite_url(str(settings.db_path), read_only=True)
    return print_report(await verify_database(url))


def _write_private(path: str, text: str) -> None:
    """Write a file only its owner can read."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)


async def _demo_tokens(book: TokenBook) -> dict[str, str]:
    """Fresh bearer tokens for trying the demo's API, one per kind of user (demo only: kept
    in a file beside the database so `scripts/run` can show them)."""
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
    return out


DEMO_ACCOUNTS = {  # login: (role, scheme, member, partner)
    "tenant": (ApiRole.MEMBER, CREDITS, TENANTS[0], None),
    "coordinator": (ApiRole.COORDINATOR, CREDITS, "C1", None),
    "gate-till": (ApiRole.PARTNER_STAFF, CREDITS, None, "gate-arts"),
    "commissioner": (ApiRole.COMMISSIONER, CREDITS, None, None),
    "elder": (ApiRole.MEMBER, P2P, ELDERS[0], None),
    "elder-coordinator": (ApiRole.COORDINATOR, P2P, "C1", None),
}


async def _demo_accounts(book: AccountBook) -> dict[str, str]:
    """Sign-ins for trying the app, one per kind of user, each with a fresh random password
    (demo only: kept beside the database, so `scripts/run` can show them). Run again, the
    demo's accounts get new passwords and their old sessions end."""
    out = {}
    for login, (role, scheme, member, partner) in DEMO_ACCOUNTS.items():
        password = secrets.token_urlsafe(12)
        await book.create(login, password, role, scheme, member=member, partner=partner)
        await book.set_password(login, password)
        out[login] = password
    return out


COMMANDS = {"demo": Command(_demo_parser, in_loop(_demo))}
