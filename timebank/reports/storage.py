"""The SQL behind reports: a scheme's confirmed hours at a checkpoint, summed in the database.

A claim counts when its entry is in the checkpoint (`entry_seq <= size`) and its reversal, if
any, is not (`reversal_seq` null or past the checkpoint): the claims table is written in the
same transaction as the ledger entries, so this is the ledger's own view of the hours, summed
where the rows are instead of streamed through Python. Functions take a sync `Connection`.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, and_, func, literal_column, or_, select
from sqlalchemy.engine import Connection

from ..storage import activities, claims, members
from .facts import ActivityInfo, ActivityMonth, MemberTotal

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
