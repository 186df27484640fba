"""What a valued-contribution report is computed from: counts and sums, no money. Pure.

Hours are confirmed claims that were not reversed at the checkpoint the report names, dated by
the day the hours were given (not the day they were confirmed), for the days `start`..`end`.
A *participation* is one confirmed claim; a *session* is an activity on a day with at least one
participation (a group session logged by a coordinator is one session, whoever came).
Member ids are the ledger's pseudonyms; nothing here names a person.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from .inputs import Cost, OutcomeRecord


@dataclass(frozen=True, slots=True)
class ActivityMonth:
    """Confirmed minutes of one activity in one calendar month (YYYY-MM of the day given)."""

    activity: str
    month: str
    minutes: int
    participations: int
    members: int  # unique members in this cell
    sessions: int


@dataclass(frozen=True, slots=True)
class MemberTotal:
    """One member's confirmed minutes in the period: given (as the claim's member) and, in a
    person-to-person scheme, received (as the claim's receiver)."""

    member: str
    given: int
    received: int
    participations: int


@dataclass(frozen=True, slots=True)
class ActivityInfo:
    """How an activity is classified, as the report used it (the activity table's row)."""

    code: str
    title: str
    form: str
    subform: str | None
    contribution: str
    area: str
    mode: str
    voluntariness: str
    relation: str
    proxy_code: str


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The signed checkpoint a report is computed at."""

    size: int
    root: str  # hex
    time: str  # ISO 8601 UTC
    key_id: str
    signature: str  # hex


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything from the database a report needs, for one scheme and period."""

    scheme: str
    scheme_name: str
    model: str  # time-credits or person-to-person
    start: date
    end: date
    checkpoint: Checkpoint
    activities: tuple[ActivityInfo, ...]
    cells: tuple[ActivityMonth, ...]
    members: tuple[MemberTotal, ...]
    unique_members: int  # who gave hours in the period (receivers not counted)
    members_by_activity: dict[str, int] = field(default_factory=dict)
    members_by_month: dict[str, int] = field(default_factory=dict)
    # member id -> consented monitoring answers (only members who gave hours in the period)
    attributes: dict[str, dict[str, str]] = field(default_factory=dict)
    # recorded up to `as_of`: outcome records and costs overlapping the period, and ratings
    # given in it as (subject, subject id, score, count)
    as_of: str = ""  # ISO 8601 UTC
    outcomes: tuple[OutcomeRecord, ...] = ()
    costs: tuple[Cost, ...] = ()
    ratings: tuple[tuple[str, str, int, int], ...] = ()

    def __post_init__(self) -> None:
        assert self.start <= self.end, "a period ends on or after its start"
        assert sum(c.minutes for c in self.cells) == sum(m.given for m in self.members), (
            "the activity cells and the member totals count the same claims"
        )
