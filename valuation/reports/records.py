"""Recording what reports read besides hours: outcomes (one at a time or a CSV file), programme
costs and members' ratings. Each write is idempotent on its id: the same record again returns
it, a different record under the same id is refused. Nothing is ever edited."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import TypeVar

from sqlalchemy.engine import Connection

from ledger import Conflict, InvalidRequest, NotFound, refuse
from timebank.imports import ImportRefused, LineProblem, _rows
from timebank.schemes import Role
from timebank.service import Forbidden, TimeBank

from ..catalogue import shipped_catalogue
from . import storage
from .inputs import (
    Cost,
    Evidence,
    OutcomeRecord,
    Rating,
    cost_problems,
    outcome_problems,
    rating_problems,
)
from .lens_social import OUTCOME_TYPES

T = TypeVar("T")
OUTCOME_COLUMNS = ("id", "outcome", "from", "to", "people", "evidence", "evidence_note", "change")


async def _staff(bank: TimeBank, scheme: str, by: str) -> None:
    person = await bank.member(scheme, by)
    if not person.roles & {Role.COORDINATOR, Role.SCHEME_ADMIN}:
        raise Forbidden(f"{by} is not a coordinator of {scheme}", field="by")


def _check_outcome(record: OutcomeRecord) -> None:
    refuse(outcome_problems(record))
    try:
        entry = shipped_catalogue().entry(record.outcome)
    except KeyError:
        raise NotFound(f"no valuation entry {record.outcome!r}", field="outcome") from None
    if entry.value_type not in OUTCOME_TYPES:
        raise InvalidRequest(
            f"{record.outcome!r} is a {entry.value_type} value, not an outcome's", field="outcome"
        )


async def _once(
    bank: TimeBank,
    read: Callable[[Connection], T | None],
    write: Callable[[Connection], None],
    record: T,
) -> T:
    """Insert `record` unless a record of its id exists: then return it if it is the same."""

    def work(conn: Connection) -> T:
        found = read(conn)
        if found is None:
            write(conn)
            return record
        if found != record:
            raise Conflict("a different record has this id", field="id")
        return found

    return await bank.ledger.run(work)


async def record_outcome(
    bank: TimeBank, scheme: str, record: OutcomeRecord, *, by: str
) -> OutcomeRecord:
    await _staff(bank, scheme, by)
    _check_outcome(record)
    now = bank.clock()
    return await _once(
        bank,
        lambda c: storage.read_outcome(c, scheme, record.id),
        lambda c: storage.insert_outcome(c, scheme, record, by, now),
        record,
    )


async def record_cost(bank: TimeBank, scheme: str, cost: Cost, *, by: str) -> Cost:
    await _staff(bank, scheme, by)
    refuse(cost_problems(cost))
    now = bank.clock()
    return await _once(
        bank,
        lambda c: storage.read_cost(c, scheme, cost.id),
        lambda c: storage.insert_cost(c, scheme, cost, by, now),
        cost,
    )


async def record_rating(bank: TimeBank, scheme: str, rating: Rating) -> Rating:
    member = await bank.member(scheme, rating.member)
    if member.erased:
        raise NotFound(f"no member {rating.member!r}", field="member")
    refuse(rating_problems(rating))
    if rating.day > bank.today():
        raise InvalidRequest("a rating is given on or before today", field="day")
    now = bank.clock()
    return await _once(
        bank,
        lambda c: storage.read_rating(c, scheme, rating.id),
        lambda c: storage.insert_rating(c, scheme, rating, now),
        rating,
    )


def parse_outcomes(text: str) -> list[OutcomeRecord]:
    """Outcome records from CSV (header: id,outcome,from,to,people,evidence,evidence_note and
    optionally change), checked whole: `ImportRefused` lists every bad row by line and column."""
    records: list[OutcomeRecord] = []
    problems: list[LineProblem] = []
    seen: dict[str, int] = {}
    for line, row in _rows(text, OUTCOME_COLUMNS[:-1]):
        try:
            change = row.get("change", "")
            record = OutcomeRecord(
                row["id"],
                row["outcome"],
                date.fromisoformat(row["from"]),
                date.fromisoformat(row["to"]),
                int(row["people"]),
                Evidence(row["evidence"]),
                row["evidence_note"],
                Decimal(change) if change else None,
            )
        except (ValueError, InvalidOperation) as exc:
            problems.append(LineProblem(line, "", str(exc)))
            continue
        try:
            _check_outcome(record)
        except (InvalidRequest, NotFound) as exc:
            problems.append(LineProblem(line, exc.field or "", exc.message))
            continue
        if record.id in seen:
            problems.append(LineProblem(line, "id", f"the same id as line {seen[record.id]}"))
        seen[record.id] = line
        records.append(record)
    if problems:
        raise ImportRefused(problems)
    return records


async def import_outcomes(bank: TimeBank, scheme: str, text: str, *, by: str) -> int:
    """Record every outcome of a CSV file, or none: it is checked whole first; a re-run of the
    same file records nothing new. The number of records in the file."""
    await _staff(bank, scheme, by)
    records = parse_outcomes(text)
    now = bank.clock()

    def work(conn: Connection) -> None:
        for r in records:
            found = storage.read_outcome(conn, scheme, r.id)
            if found is None:
                storage.insert_outcome(conn, scheme, r, by, now)
            elif found != r:
                raise Conflict(f"a different record has the id {r.id!r}", field="id")

    await bank.ledger.run(work)
    return len(records)
