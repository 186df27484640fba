"""The scheduled jobs, in one list: what `timebank serve` runs on its schedule and `timebank
expire` runs once.

Each job is safe to run again, late, or in several processes at once: it acts only on what is
due by `now` and writes nothing twice (the ledger's idempotency keys name what each did).
Credit expiry reads every member's history, so the schedule runs it once a day, not each round.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from ledger import to_us
from timebank.service import TimeBank


@dataclass(frozen=True, slots=True)
class JobsDone:
    """What one run of the jobs did to one ledger."""

    ledger: str
    reservations_expired: int  # vouchers past their expiry, released
    claims_accepted: int | None  # unanswered claims accepted (None: the ledger is no scheme's)
    minutes_expired: int | None  # old credit expired (None: not run this time)
    checkpoint: int | None  # the size of the checkpoint signed (None: none signed)


@dataclass
class Schedule:
    """The jobs' own state between rounds of one process's schedule."""

    credit_expired_on: date | None = None  # the day credit expiry last ran

    def credit_expiry_due(self, today: date) -> bool:
        return self.credit_expired_on != today


async def run_jobs(
    bank: TimeBank,
    now: datetime,
    *,
    ledgers: list[str] | None = None,
    schedule: Schedule | None = None,
    checkpoints: bool = True,
) -> list[JobsDone]:
    """Run every job on each of `ledgers` (default: every scheme's), in order: release vouchers
    past their expiry, accept unanswered claims, expire old credit (once a day when given the
    `schedule`), and sign a checkpoint of each ledger that grew (unless `checkpoints` is off)."""
    schemes = {s.id for s in await bank.schemes()}
    names = sorted(schemes) if ledgers is None else ledgers
    today = now.date()
    expire_credit = schedule is None or schedule.credit_expiry_due(today)
    done: list[JobsDone] = []
    for ledger in names:
        released = len(await bank.ledger.expire_due(ledger, now=now))
        accepted = minutes = None
        if ledger in schemes:
            accepted = len(await bank.auto_accept_due(ledger, now_us=to_us(now)))
            if expire_credit:
                minutes = sum((await bank.expire_credits(ledger, today=today)).values())
        signed = await _checkpoint(bank, ledger) if checkpoints else None
        done.append(JobsDone(ledger, released, accepted, minutes, signed))
    if schedule is not None and expire_credit:
        schedule.credit_expired_on = today
    return done


async def _checkpoint(bank: TimeBank, ledger: str) -> int | None:
    """Sign a checkpoint of `ledger` if it grew since the last one; the new size, or None."""
    size = await bank.ledger.size(ledger)
    signed = await bank.ledger.checkpoints(ledger)
    if not size or (signed and signed[-1].size >= size):
        return None
    await bank.ledger.checkpoint(ledger, idempotency_key=f"checkpoint:{size}")
    return size
