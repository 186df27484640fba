"""The unmonetised views of a report: hours, people, sessions, by each dimension. Pure.

Outputs, never outcomes (DOMAIN.md R-C6): these count what people gave, not what changed. Every
figure is integer minutes (with hours alongside for reading) or a count. Small cells in the
equality view are suppressed: a group with fewer than `k` members shows neither its members nor
its minutes, so no one can be picked out (DOMAIN.md R-C11).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from .facts import ActivityInfo, ActivityMonth, Facts

MONITORING_QUESTIONS = (
    "age_band",
    "area_code",
    "gender",
    "disability",
    "ethnicity",
    "deprivation_decile",
    "participant_role",
)
NOT_ANSWERED = "(not answered)"


def hours(minutes: int) -> str:
    """Minutes as hours with two decimals, for reading (the minutes stay the figure of record)."""
    return str((Decimal(minutes) / 60).quantize(Decimal("0.01"), ROUND_HALF_UP))


def _row(key: dict[str, Any], cells: Iterable[ActivityMonth]) -> dict[str, Any]:
    cells = list(cells)
    minutes = sum(c.minutes for c in cells)
    return {
        **key,
        "minutes": minutes,
        "hours": hours(minutes),
        "participations": sum(c.participations for c in cells),
        "sessions": sum(c.sessions for c in cells),
    }


def _grouped(
    facts: Facts, key: Callable[[ActivityMonth, ActivityInfo], tuple[tuple[str, Any], ...]]
) -> list[dict[str, Any]]:
    info = {a.code: a for a in facts.activities}
    groups: dict[tuple[tuple[str, Any], ...], list[ActivityMonth]] = defaultdict(list)
    for c in facts.cells:
        groups[key(c, info[c.activity])].append(c)
    return [_row(dict(k), groups[k]) for k in sorted(groups, key=lambda k: [str(v) for _, v in k])]


def by_activity(facts: Facts) -> list[dict[str, Any]]:
    rows = _grouped(facts, lambda c, a: (("activity", a.code), ("title", a.title)))
    for r in rows:
        r["members"] = facts.members_by_activity.get(r["activity"], 0)
    return rows


def by_month(facts: Facts) -> list[dict[str, Any]]:
    rows = _grouped(facts, lambda c, a: (("month", c.month),))
    for r in rows:
        r["members"] = facts.members_by_month.get(r["month"], 0)
    return rows


def by_activity_month(facts: Facts) -> list[dict[str, Any]]:
    return [
        _row({"activity": c.activity, "month": c.month}, [c]) | {"members": c.members}
        for c in facts.cells
    ]


def by_form(facts: Facts) -> list[dict[str, Any]]:
    return _grouped(facts, lambda c, a: (("form", a.form), ("subform", a.subform or "")))


def by_field(facts: Facts, name: str) -> list[dict[str, Any]]:
    """By one classification of the activity: area, contribution, mode, voluntariness, relation."""
    return _grouped(facts, lambda c, a: ((name, getattr(a, name)),))


def participation(facts: Facts) -> dict[str, Any]:
    """Unique members against participations (DOMAIN.md R-C12)."""
    minutes = sum(m.given for m in facts.members)
    return {
        "unique_members": facts.unique_members,
        "participations": sum(m.participations for m in facts.members),
        "sessions": sum(c.sessions for c in facts.cells),
        "minutes": minutes,
        "hours": hours(minutes),
    }


def reciprocity(facts: Facts) -> dict[str, Any]:
    """Hours given against hours received: how many members did both, only gave, only received."""
    both = sum(1 for m in facts.members if m.given and m.received)
    gave = sum(1 for m in facts.members if m.given and not m.received)
    got = sum(1 for m in facts.members if m.received and not m.given)
    received = sum(m.received for m in facts.members)
    return {
        "members_gave_and_received": both,
        "members_only_gave": gave,
        "members_only_received": got,
        "minutes_received": received,
        "hours_received": hours(received),
    }


def equality(facts: Facts, k: int) -> dict[str, list[dict[str, Any]]]:
    """Participation and minutes by each monitoring answer; cells under `k` members suppressed."""
    assert k >= 1, "k is at least 1"
    given = {m.member: m for m in facts.members if m.given}
    out: dict[str, list[dict[str, Any]]] = {}
    for question in MONITORING_QUESTIONS:
        groups: dict[str, list[str]] = defaultdict(list)
        for member in given:
            answer = facts.attributes.get(member, {}).get(question, NOT_ANSWERED)
            groups[answer].append(member)
        rows = []
        for answer in sorted(groups):
            people = groups[answer]
            if len(people) < k:
                rows.append(
                    {"answer": answer, "suppressed": True, "members": None, "minutes": None}
                )
            else:
                minutes = sum(given[m].given for m in people)
                rows.append(
                    {
                        "answer": answer,
                        "suppressed": False,
                        "members": len(people),
                        "minutes": minutes,
                        "hours": hours(minutes),
                    }
                )
        out[question] = rows
    return out


def shares(facts: Facts) -> dict[str, Any]:
    """The share of hours that substitute paid staff, and mandated against voluntary hours."""
    info = {a.code: a for a in facts.activities}
    total = sum(c.minutes for c in facts.cells)

    def part(test: Callable[[ActivityInfo], bool]) -> dict[str, Any]:
        minutes = sum(c.minutes for c in facts.cells if test(info[c.activity]))
        share = (Decimal(minutes) / total).quantize(Decimal("0.0001")) if total else None
        return {
            "minutes": minutes,
            "hours": hours(minutes),
            "share": None if share is None else str(share),
        }

    return {
        "substitutes_staff": part(lambda a: a.relation == "substitutes-staff"),
        "mandated": part(lambda a: a.voluntariness == "mandated"),
        "voluntary": part(lambda a: a.voluntariness == "voluntary"),
    }


def inventory(facts: Facts) -> list[dict[str, Any]]:
    """Map it (DOMAIN.md R-C9): every activity the scheme runs, by co-production form and area,
    with whether it had hours in the period."""
    active = {c.activity for c in facts.cells}
    return [
        {
            "activity": a.code,
            "title": a.title,
            "form": a.form,
            "subform": a.subform,
            "area": a.area,
            "mode": a.mode,
            "relation": a.relation,
            "active": a.code in active,
        }
        for a in sorted(facts.activities, key=lambda a: (a.form, a.area, a.code))
    ]
