"""Collect a report's facts from the database, at a signed checkpoint, in one read snapshot."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy.engine import Connection

from ledger import Checkpoint as LedgerCheckpoint
from ledger import InvalidRequest, NotFound, from_us, to_us
from timebank.service import TimeBank

from . import storage
from .facts import Checkpoint, Facts

MAX_DAYS = 366 * 16  # a 15-year horizon and a little: bounded, like everything else
# A period's days lie in these years: financial years, price bases and horizons are labelled
# by four-digit years, and no time bank kept hours before 1900.
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2999, 12, 31)


async def report_checkpoint(bank: TimeBank, scheme: str, size: int | None) -> LedgerCheckpoint:
    """The checkpoint of `size`, or (None) one at the ledger's head, made now if there is none."""
    found = await bank.ledger.checkpoints(scheme)
    if size is not None:
        for cp in found:
            if cp.size == size:
                return cp
        raise NotFound(f"no checkpoint of size {size} in {scheme!r}", field="checkpoint")
    head = await bank.ledger.size(scheme)
    if found and found[-1].size == head:
        return found[-1]
    return await bank.ledger.checkpoint(scheme, idempotency_key=f"checkpoint:{head}")


async def gather(
    bank: TimeBank,
    scheme_id: str,
    start: date,
    end: date,
    *,
    size: int | None = None,
    as_of_us: int | None = None,
) -> Facts:
    """The facts of `scheme_id` for the days `start`..`end`, at checkpoint `size` (None: now),
    with the outcomes, costs and ratings recorded up to `as_of_us` (None: now)."""
    for day, name in ((start, "from"), (end, "to")):
        if not FIRST_DAY <= day <= LAST_DAY:
            raise InvalidRequest(
                f"a report's days lie in {FIRST_DAY.year}-{LAST_DAY.year}", field=name
            )
    if end < start:
        raise InvalidRequest("the period ends before it starts", field="to")
    if (end - start).days > MAX_DAYS:
        raise InvalidRequest(f"a report covers at most {MAX_DAYS} days", field="to")
    scheme = await bank.scheme(scheme_id)
    cp = await report_checkpoint(bank, scheme_id, size)
    as_of = bank.clock() if as_of_us is None else as_of_us

    def read(conn: Connection) -> Facts:
        hours = storage.claim_facts(conn, scheme_id, cp.size, start, end)
        givers = {m.member for m in hours.members if m.given}
        return Facts(
            scheme=scheme_id,
            scheme_name=scheme.name,
            model=scheme.rules.model.value,
            start=start,
            end=end,
            checkpoint=_checkpoint(cp),
            activities=tuple(storage.activity_table(conn, scheme_id)),
            cells=tuple(hours.cells),
            members=tuple(hours.members),
            unique_members=hours.unique_members,
            members_by_activity=hours.members_by_activity,
            members_by_month=hours.members_by_month,
            attributes=storage.monitoring_answers(conn, scheme_id, givers),
            as_of=_iso(as_of),
            outcomes=tuple(storage.outcomes_in(conn, scheme_id, start, end, as_of)),
            costs=tuple(storage.costs_in(conn, scheme_id, start, end, as_of)),
            ratings=tuple(storage.rating_counts(conn, scheme_id, start, end, as_of)),
        )

    return await bank.query(read)


def _checkpoint(cp: LedgerCheckpoint) -> Checkpoint:
    return Checkpoint(cp.size, cp.root.hex(), _iso(cp.time_us), cp.key_id, cp.signature.hex())


def _iso(time_us: int) -> str:
    return from_us(time_us).isoformat().replace("+00:00", "Z")


def as_of_us(iso: str) -> int:
    """The microseconds of a report's `as_of` time."""
    return to_us(datetime.fromisoformat(iso.replace("Z", "+00:00")))
