"""The scheduled jobs run by hand: expire, and the one-off repair-decisions."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ledger import LedgerStore, to_us
from main.cli.common import Command, db_args, in_loop, with_store
from main.jobs import run_jobs
from timebank.service import TimeBank

if TYPE_CHECKING:
    from main.cli.common import Subparsers


def _expire_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "expire",
        help="scheduled job: release reservations past their expiry, accept unanswered "
        "person-to-person claims, expire old credit",
    )
    db_args(p, keys=True)


async def _expire(args: argparse.Namespace, store: LedgerStore, ledgers: list[str]) -> int:
    now = datetime.now(UTC)
    await _jobs(store, ledgers, now)
    await _forget_old(store, now)
    return 0


async def _jobs(store: LedgerStore, ledgers: list[str], now: datetime) -> None:
    """The scheduled jobs (`main.jobs`, as `serve` runs them) but checkpoints, which have
    a command of their own."""
    bank = await TimeBank.on(store.db, store)
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


async def _forget_old(store: LedgerStore, now: datetime) -> None:
    """The app's records kept only for a while: sessions, failed sign-ins, finished jobs."""
    from web.book import AccountBook

    book = await AccountBook.on(store.db, lambda: to_us(now))
    gone = await book.forget_old()
    print(
        f"forgot {gone['sessions']} session records, {gone['failures']} failed sign-ins and "
        f"{gone['jobs']} background jobs"
    )


def _repair_decisions_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "repair-decisions",
        help="reverse the entry of each claim that says rejected (a confirmation that raced "
        "its rejection, before 0.16); verify passes again",
    )
    db_args(p, keys=True)


async def _repair_decisions(
    args: argparse.Namespace, store: LedgerStore, ledgers: list[str]
) -> int:
    bank = await TimeBank.on(store.db, store)
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
    return 0


async def _schemes_among(bank: TimeBank, ledgers: list[str]) -> list[str]:
    """The ledgers that are a scheme's (a database may hold ledgers of no scheme)."""
    schemes = {s.id for s in await bank.schemes()}
    return [ledger for ledger in ledgers if ledger in schemes]


COMMANDS = {
    "expire": Command(_expire_parser, in_loop(with_store(_expire))),
    "repair-decisions": Command(_repair_decisions_parser, in_loop(with_store(_repair_decisions))),
}
