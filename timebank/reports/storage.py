"""The SQL behind reports: a scheme's confirmed hours at a checkpoint, summed in the database.

A claim counts when its entry is in the checkpoint (`entry_seq <= size`) and its reversal, if
any, is not (`reversal_seq` null or past the checkpoint): the claims table is written in the
same transaction as the ledger entries, so this is the ledger's own view of the hours, summed
where the rows are instead of streamed through Python. Functions take a sync `Connection`.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    func,
    literal_column,
    or_,
    select,
)
from sqlalchemy.engine import Connection

from ..storage import activities, claims, costs, members, outcome_records, ratings
from .facts import ActivityInfo, ActivityMonth, MemberTotal
from .inputs import Cost, CostKind, Evidence, OutcomeRecord, Rating, Subject

_MONTH = func.substr(claims.c.day, 1, 7)


def _counted(scheme: str, size: int, start: date, end: date) -> ColumnElement[bool]:
    c = claims.c
    return and_(
        c.scheme == scheme,
        c.status == "confirmed",
        c.entry_seq <= size,
        or_(c.reversal_seq.is_(None), c.reversal_seq > size),
        c.day >= start.isoformat(),
        c.day <= end.isoformat(),
    )


def activity_months(
    conn: Connection, scheme: str, size: int, start: date, end: date
) -> list[ActivityMonth]:
    c = claims.c
    stmt = (
        select(
            c.activity,
            _MONTH.label("month"),
            func.sum(c.minutes),
            func.count(),
            func.count(func.distinct(c.member)),
            func.count(func.distinct(c.day)),
        )
        .where(_counted(scheme, size, start, end))
        .group_by(c.activity, literal_column("month"))
        .order_by(c.activity, literal_column("month"))
    )
    return [ActivityMonth(a, m, int(s), n, u, d) for a, m, s, n, u, d in conn.execute(stmt)]


def member_totals(
    conn: Connection, scheme: str, size: int, start: date, end: date
) -> list[MemberTotal]:
    c = claims.c
    where = _counted(scheme, size, start, end)
    given = {
        m: (int(s), n)
        for m, s, n in conn.execute(
            select(c.member, func.sum(c.minutes), func.count()).where(where).group_by(c.member)
        )
    }
    received = {
        r: int(s)
        for r, s in conn.execute(
            select(c.receiver, func.sum(c.minutes))
            .where(where, c.receiver.is_not(None))
            .group_by(c.receiver)
        )
    }
    ids = sorted(given.keys() | received.keys())
    return [
        MemberTotal(m, given.get(m, (0, 0))[0], received.get(m, 0), given.get(m, (0, 0))[1])
        for m in ids
    ]


def unique_members(
    conn: Connection, scheme: str, size: int, start: date, end: date
) -> tuple[int, dict[str, int], dict[str, int]]:
    """Unique members who gave hours: overall, by activity, by month."""
    c = claims.c
    where = _counted(scheme, size, start, end)
    distinct = func.count(func.distinct(c.member))
    overall = conn.execute(select(distinct).where(where)).scalar_one()
    by_activity = {
        str(k): int(v)
        for k, v in conn.execute(select(c.activity, distinct).where(where).group_by(c.activity))
    }
    month = select(_MONTH.label("month"), distinct).where(where).group_by(literal_column("month"))
    by_month = {str(k): int(v) for k, v in conn.execute(month)}
    return int(overall), by_activity, by_month


def activity_table(conn: Connection, scheme: str) -> list[ActivityInfo]:
    a = activities.c
    rows = conn.execute(select(activities).where(a.scheme == scheme).order_by(a.code))
    return [
        ActivityInfo(r.code, r.title, r.form, r.subform, r.contribution, r.area, r.mode,
                     r.voluntariness, r.relation, r.proxy_code)
        for r in rows
    ]  # fmt: skip


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
    conn.execute(outcome_records.insert().values(
        scheme=scheme, id=r.id, outcome=r.outcome, start=r.start.isoformat(),
        end=r.end.isoformat(), people=r.people, evidence=r.evidence.value,
        evidence_note=r.evidence_note, change=None if r.change is None else str(r.change),
        recorded_by=by, created_us=now_us,
    ))  # fmt: skip


def read_outcome(conn: Connection, scheme: str, record_id: str) -> OutcomeRecord | None:
    o = outcome_records.c
    row = conn.execute(select(outcome_records).where(o.scheme == scheme, o.id == record_id)).first()
    return _outcome(row) if row else None


def outcomes_in(
    conn: Connection, scheme: str, start: date, end: date, before_us: int
) -> list[OutcomeRecord]:
    """Outcome records overlapping `start`..`end`, recorded before `before_us`."""
    o = outcome_records.c
    stmt = select(outcome_records).where(
        o.scheme == scheme, o.start <= end.isoformat(), o.end >= start.isoformat(),
        o.created_us <= before_us,
    ).order_by(o.id)  # fmt: skip
    return [_outcome(r) for r in conn.execute(stmt)]


def _outcome(r: Any) -> OutcomeRecord:
    return OutcomeRecord(
        r.id, r.outcome, date.fromisoformat(r.start), date.fromisoformat(r.end), r.people,
        Evidence(r.evidence), r.evidence_note, None if r.change is None else Decimal(r.change),
    )  # fmt: skip


def insert_cost(conn: Connection, scheme: str, c: Cost, by: str, now_us: int) -> None:
    conn.execute(costs.insert().values(
        scheme=scheme, id=c.id, funder=c.funder, kind=c.kind.value, start=c.start.isoformat(),
        end=c.end.isoformat(), amount=str(c.amount), currency=c.currency,
        price_year=c.price_year, note=c.note, recorded_by=by, created_us=now_us,
    ))  # fmt: skip


def read_cost(conn: Connection, scheme: str, cost_id: str) -> Cost | None:
    c = costs.c
    row = conn.execute(select(costs).where(c.scheme == scheme, c.id == cost_id)).first()
    return _cost(row) if row else None


def costs_in(conn: Connection, scheme: str, start: date, end: date, before_us: int) -> list[Cost]:
    c = costs.c
    stmt = select(costs).where(
        c.scheme == scheme, c.start <= end.isoformat(), c.end >= start.isoformat(),
        c.created_us <= before_us,
    ).order_by(c.id)  # fmt: skip
    return [_cost(r) for r in conn.execute(stmt)]


def _cost(r: Any) -> Cost:
    return Cost(
        r.id, r.funder, CostKind(r.kind), date.fromisoformat(r.start), date.fromisoformat(r.end),
        Decimal(r.amount), r.currency, r.price_year, r.note,
    )  # fmt: skip


def insert_rating(conn: Connection, scheme: str, r: Rating, now_us: int) -> None:
    conn.execute(ratings.insert().values(
        scheme=scheme, id=r.id, member=r.member, subject=r.subject.value,
        subject_id=r.subject_id, score=r.score, day=r.day.isoformat(), created_us=now_us,
    ))  # fmt: skip


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
        .where(t.scheme == scheme, t.day >= start.isoformat(), t.day <= end.isoformat(),
               t.created_us <= before_us)
        .group_by(t.subject, t.subject_id, t.score)
        .order_by(t.subject, t.subject_id, t.score)
    )  # fmt: skip
    return [(a, b, int(c), int(d)) for a, b, c, d in conn.execute(stmt)]


def _rating(r: Any) -> Rating:
    return Rating(r.id, r.member, Subject(r.subject), r.subject_id, r.score,
                  date.fromisoformat(r.day))  # fmt: skip
