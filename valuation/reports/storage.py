"""The SQL behind reports: a scheme's confirmed hours at a checkpoint, summed in the database.

A claim counts when its entry is in the checkpoint (`entry_seq <= size`) and its reversal, if
any, is not (`reversal_seq` null or past the checkpoint): the claims table is written in the
same transaction as the ledger entries, so this is the ledger's own view of the hours, summed
where the rows are instead of streamed through Python. Functions take a sync `Connection`.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from decimal import Decimal
from typing import Any, NamedTuple, cast

from sqlalchemy import ColumnElement, and_, bindparam, func, literal_column, or_, select
from sqlalchemy.engine import Connection

from ledger import Prepared
from timebank.claims import ClaimStatus
from timebank.storage import activities, claims, costs, members, outcome_records, ratings

from .facts import ActivityInfo, ActivityMonth, MemberTotal
from .inputs import Cost, CostKind, Evidence, OutcomeRecord, Rating, Subject

SEPARATOR = ","  # never in a member id (timebank/schemes.py)


_c = claims.c
# group_concat (SQLite) or string_agg (PostgreSQL); the separator as SQL text, since prepared
# statements take no literal parameters (its stub wants a str: the same thing, said later)
_SEPARATOR = cast(str, literal_column(repr(SEPARATOR)))
_COUNTED: ColumnElement[bool] = and_(  # see the module's docstring; parameters by name
    _c.scheme == bindparam("s"),
    _c.status == literal_column(f"'{ClaimStatus.CONFIRMED.value}'"),  # as the index says
    _c.entry_seq <= bindparam("size"),
    or_(_c.reversal_seq.is_(None), _c.reversal_seq > bindparam("size")),
    _c.day >= bindparam("start"),
    _c.day <= bindparam("end"),
)
# One streamed pass over the reports' covering index (timebank/storage.py), in its order: each
# activity's counted claims on each day, with the members who gave them.
_DAYS = Prepared(
    select(
        _c.day,
        _c.activity,
        func.sum(_c.minutes),
        func.count(),
        func.aggregate_strings(_c.member, _SEPARATOR),
    )
    .where(_COUNTED)
    .group_by(_c.day, _c.activity)
    .order_by(_c.day, _c.activity)
)
_GIVEN = Prepared(
    select(_c.member, func.sum(_c.minutes), func.count())
    .where(_COUNTED)
    .group_by(_c.member)
    .order_by(_c.member)
)
_RECEIVED = Prepared(
    select(_c.receiver, func.sum(_c.minutes))
    .where(_COUNTED, _c.receiver.is_not(None))
    .group_by(_c.receiver)
)


class ClaimFacts(NamedTuple):
    """A scheme's counted claims for a period at a checkpoint, summed (see `claim_facts`)."""

    cells: list[ActivityMonth]  # by activity, then month
    members: list[MemberTotal]  # by member id
    unique_members: int  # who gave hours
    members_by_activity: dict[str, int]
    members_by_month: dict[str, int]


def claim_facts(conn: Connection, scheme: str, size: int, start: date, end: date) -> ClaimFacts:
    """The hours of `scheme`'s claims counted at checkpoint `size` (see the module's
    docstring) given on days `start`..`end`: by activity and month (minutes, participations,
    members, sessions), by member (given and received), and who gave them, overall, by activity
    and by month.

    Three passes over the confirmed claims' covering index (timebank/storage.py: partial, so
    `status = 'confirmed'` is written out: the plan never hangs on a bound value), none of
    which reads a claim's row: the
    activities' days (in the index's order, so nothing is sorted), the givers and the receivers
    (each a GROUP BY of the database's). The distinct members are counted here from the days'
    member lists, a month of cells at a time: memory grows with the members and activities
    (sets of interned ids), never with the claims.
    """
    params = {"s": scheme, "size": size, "start": start.isoformat(), "end": end.isoformat()}
    intern = sys.intern
    cells: list[ActivityMonth] = []
    by_activity: dict[str, set[str]] = {}
    by_month: dict[str, int] = {}
    month = ""
    open_cells: dict[str, list[Any]] = {}  # this month's: activity -> [minutes, n, days, who]

    def close_month() -> None:
        who_in_month: set[str] = set()
        for activity, (minutes, n, days, who) in open_cells.items():
            cells.append(ActivityMonth(activity, month, minutes, n, len(who), days))
            who_in_month |= who
            by_activity.setdefault(activity, set()).update(who)
        by_month[month] = len(who_in_month)
        open_cells.clear()

    for day, activity, minutes, n, givers in _DAYS.run(conn, params):
        if day[:7] != month:
            if open_cells:
                close_month()
            month = day[:7]
        cell = open_cells.get(activity)
        if cell is None:
            cell = open_cells[activity] = [0, 0, 0, set()]
        cell[0] += int(minutes)
        cell[1] += n
        cell[2] += 1  # a session: an activity on a day with hours
        cell[3].update(map(intern, givers.split(SEPARATOR)))
    if open_cells:
        close_month()
    cells.sort(key=lambda c: (c.activity, c.month))
    everyone: set[str] = set().union(*by_activity.values())
    given = {m: (int(total), n) for m, total, n in _GIVEN.run(conn, params)}
    received = {r: int(total) for r, total in _RECEIVED.run(conn, params)}
    members = [
        MemberTotal(m, given.get(m, (0, 0))[0], received.get(m, 0), given.get(m, (0, 0))[1])
        for m in sorted(given.keys() | received.keys())
    ]
    return ClaimFacts(
        cells,
        members,
        len(everyone),
        {a: len(who) for a, who in sorted(by_activity.items())},
        dict(sorted(by_month.items())),
    )


def activity_table(conn: Connection, scheme: str) -> list[ActivityInfo]:
    a = activities.c
    rows = conn.execute(select(activities).where(a.scheme == scheme).order_by(a.code))
    return [
        ActivityInfo(
            r.code,
            r.title,
            r.form,
            r.subform,
            r.contribution,
            r.area,
            r.mode,
            r.voluntariness,
            r.relation,
            r.proxy_code,
        )
        for r in rows
    ]


def monitoring_answers(conn: Connection, scheme: str, ids: set[str]) -> dict[str, dict[str, str]]:
    """Consented monitoring answers of the given members (erased members have none)."""
    m = members.c
    out: dict[str, dict[str, str]] = {}
    rows = conn.execute(select(m.id, m.attributes).where(m.scheme == scheme, m.erased.is_(False)))
    for member_id, text in rows:
        if member_id in ids:
            answers: dict[str, Any] = json.loads(text)
            if answers.get("consent") == "yes":
                out[member_id] = {k: str(v) for k, v in answers.items() if k != "consent"}
    return out


# ---- outcomes, costs and ratings: recorded once, never edited (a correction is a new record) --


def insert_outcome(conn: Connection, scheme: str, r: OutcomeRecord, by: str, now_us: int) -> None:
    conn.execute(
        outcome_records.insert().values(
            scheme=scheme,
            id=r.id,
            outcome=r.outcome,
            start=r.start.isoformat(),
            end=r.end.isoformat(),
            people=r.people,
            evidence=r.evidence.value,
            evidence_note=r.evidence_note,
            change=None if r.change is None else str(r.change),
            recorded_by=by,
            created_us=now_us,
        )
    )


def read_outcome(conn: Connection, scheme: str, record_id: str) -> OutcomeRecord | None:
    o = outcome_records.c
    row = conn.execute(select(outcome_records).where(o.scheme == scheme, o.id == record_id)).first()
    return _outcome(row) if row else None


def outcomes_in(
    conn: Connection, scheme: str, start: date, end: date, before_us: int
) -> list[OutcomeRecord]:
    """Outcome records overlapping `start`..`end`, recorded before `before_us`."""
    o = outcome_records.c
    stmt = (
        select(outcome_records)
        .where(
            o.scheme == scheme,
            o.start <= end.isoformat(),
            o.end >= start.isoformat(),
            o.created_us <= before_us,
        )
        .order_by(o.id)
    )
    return [_outcome(r) for r in conn.execute(stmt)]


def _outcome(r: Any) -> OutcomeRecord:
    return OutcomeRecord(
        r.id,
        r.outcome,
        date.fromisoformat(r.start),
        date.fromisoformat(r.end),
        r.people,
        Evidence(r.evidence),
        r.evidence_note,
        None if r.change is None else Decimal(r.change),
    )


def insert_cost(conn: Connection, scheme: str, c: Cost, by: str, now_us: int) -> None:
    conn.execute(
        costs.insert().values(
            scheme=scheme,
            id=c.id,
            funder=c.funder,
            kind=c.kind.value,
            start=c.start.isoformat(),
            end=c.end.isoformat(),
            amount=str(c.amount),
            currency=c.currency,
            price_year=c.price_year,
            note=c.note,
            recorded_by=by,
            created_us=now_us,
        )
    )


def read_cost(conn: Connection, scheme: str, cost_id: str) -> Cost | None:
    c = costs.c
    row = conn.execute(select(costs).where(c.scheme == scheme, c.id == cost_id)).first()
    return _cost(row) if row else None


def costs_in(conn: Connection, scheme: str, start: date, end: date, before_us: int) -> list[Cost]:
    c = costs.c
    stmt = (
        select(costs)
        .where(
            c.scheme == scheme,
            c.start <= end.isoformat(),
            c.end >= start.isoformat(),
            c.created_us <= before_us,
        )
        .order_by(c.id)
    )
    return [_cost(r) for r in conn.execute(stmt)]


def _cost(r: Any) -> Cost:
    return Cost(
        r.id,
        r.funder,
        CostKind(r.kind),
        date.fromisoformat(r.start),
        date.fromisoformat(r.end),
        Decimal(r.amount),
        r.currency,
        r.price_year,
        r.note,
    )


def insert_rating(conn: Connection, scheme: str, r: Rating, now_us: int) -> None:
    conn.execute(
        ratings.insert().values(
            scheme=scheme,
            id=r.id,
            member=r.member,
            subject=r.subject.value,
            subject_id=r.subject_id,
            score=r.score,
            day=r.day.isoformat(),
            created_us=now_us,
        )
    )


def read_rating(conn: Connection, scheme: str, rating_id: str) -> Rating | None:
    t = ratings.c
    row = conn.execute(select(ratings).where(t.scheme == scheme, t.id == rating_id)).first()
    return _rating(row) if row else None


def rating_counts(
    conn: Connection, scheme: str, start: date, end: date, before_us: int
) -> list[tuple[str, str, int, int]]:
    """(subject, subject id, score, how many) for ratings given in the period: no member ids."""
    t = ratings.c
    stmt = (
        select(t.subject, t.subject_id, t.score, func.count())
        .where(
            t.scheme == scheme,
            t.day >= start.isoformat(),
            t.day <= end.isoformat(),
            t.created_us <= before_us,
        )
        .group_by(t.subject, t.subject_id, t.score)
        .order_by(t.subject, t.subject_id, t.score)
    )
    return [(a, b, int(c), int(d)) for a, b, c, d in conn.execute(stmt)]


def _rating(r: Any) -> Rating:
    return Rating(
        r.id, r.member, Subject(r.subject), r.subject_id, r.score, date.fromisoformat(r.day)
    )
