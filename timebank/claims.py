"""Claims: the rules hours must pass before they become ledger entries. Pure: no I/O.

A claim is hours a member says they gave. It waits until a coordinator (in a time-credit scheme)
or the member who was helped (in a person-to-person time bank) confirms it; a confirmed claim
becomes one ledger entry. These functions decide whether a claim may be logged, who may confirm
it, and which postings it makes; storage and HTTP come later (issue 3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

MINUTES_PER_DAY = 24 * 60
MAX_DAYS_BACK = 3660  # the longest a scheme may set: ten years


class SchemeModel(StrEnum):
    TIME_CREDITS = "time-credits"  # the scheme issues credits for hours given in its services
    PERSON_TO_PERSON = "person-to-person"  # the hour moves from the member helped to the helper


class ClaimStatus(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class ClaimRules:
    """A scheme's settings for logging hours."""

    model: SchemeModel
    min_minutes: int = 15
    max_minutes: int = 12 * 60
    members_may_log_for_others: bool = False
    days_back: int | None = None  # a claim dated at most this many days ago; None: any day

    def __post_init__(self) -> None:
        assert 1 <= self.min_minutes <= self.max_minutes <= MINUTES_PER_DAY
        assert self.days_back is None or 0 <= self.days_back <= MAX_DAYS_BACK


@dataclass(frozen=True, slots=True)
class ClaimDraft:
    """What someone asks to log. `receiver` is the member helped (person-to-person only)."""

    member: str
    logged_by: str
    activity: str
    day: date
    minutes: int
    receiver: str | None = None
    logged_by_coordinator: bool = False


@dataclass(frozen=True, slots=True)
class LoggedClaim:
    """A claim already on the books, as far as the rules need it."""

    member: str
    activity: str
    day: date
    minutes: int
    status: ClaimStatus


@dataclass(frozen=True, slots=True)
class ClaimProblem:
    field: str
    message: str


def claim_problems(
    draft: ClaimDraft,
    rules: ClaimRules,
    today: date,
    same_day: Sequence[LoggedClaim],
    *,
    history: bool = False,
) -> list[ClaimProblem]:
    """Why `draft` cannot be logged (empty when it can). `same_day` is the member's claims that
    day; rejected ones do not count towards the day's total. An import of `history` is not
    held to the scheme's `days_back` (it brings in hours from before the scheme used this)."""
    out: list[ClaimProblem] = []
    minutes = draft.minutes
    if isinstance(minutes, bool) or not isinstance(minutes, int):
        return [ClaimProblem("minutes", "minutes must be a whole number")]
    if not rules.min_minutes <= minutes <= rules.max_minutes:
        out.append(
            ClaimProblem(
                "minutes",
                f"a claim is {rules.min_minutes} to {rules.max_minutes} minutes in this scheme",
            )
        )
    if draft.day > today:
        out.append(ClaimProblem("date", "hours cannot be logged for a day still to come"))
    elif not history and rules.days_back is not None and (today - draft.day).days > rules.days_back:
        out.append(
            ClaimProblem(
                "date",
                f"in this scheme hours are logged within "
                f"{rules.days_back} days of the day they were given",
            )
        )
    counted = sum(c.minutes for c in same_day if c.status is not ClaimStatus.REJECTED)
    if counted + minutes > MINUTES_PER_DAY:
        out.append(
            ClaimProblem(
                "minutes",
                f"{draft.member} already has {counted} minutes on {draft.day.isoformat()}; "
                "a day has 1440",
            )
        )
    if draft.logged_by != draft.member and not (
        draft.logged_by_coordinator or rules.members_may_log_for_others
    ):
        out.append(ClaimProblem("member", "members may log only their own hours here"))
    if rules.model is SchemeModel.PERSON_TO_PERSON:
        if draft.receiver is None:
            out.append(ClaimProblem("receiver", "say which member was helped"))
        elif draft.receiver == draft.member:
            out.append(ClaimProblem("receiver", "a member cannot help themselves"))
    elif draft.receiver is not None:
        out.append(ClaimProblem("receiver", "this scheme issues credits; there is no receiver"))
    return out


def is_duplicate(draft: ClaimDraft, same_day: Sequence[LoggedClaim]) -> bool:
    """A claim like one already logged (same member, day, activity and minutes, not rejected):
    flagged for the coordinator, not refused, since two real sessions can look alike."""
    return any(
        c.member == draft.member
        and c.day == draft.day
        and c.activity == draft.activity
        and c.minutes == draft.minutes
        and c.status is not ClaimStatus.REJECTED
        for c in same_day
    )


def confirmer_problem(
    rules: ClaimRules,
    member: str,
    receiver: str | None,
    confirmer: str,
    confirmer_is_coordinator: bool,
) -> str | None:
    """Why `confirmer` may not confirm this claim, or None. Nobody approves their own hours."""
    if confirmer == member:
        return "nobody confirms their own hours"
    if rules.model is SchemeModel.PERSON_TO_PERSON:
        if confirmer == receiver or confirmer_is_coordinator:
            return None
        return "the member who was helped (or a coordinator) confirms"
    return None if confirmer_is_coordinator else "a coordinator confirms"


def claim_postings(
    rules: ClaimRules,
    member_account: str,
    minutes: int,
    issuance_account: str,
    receiver_account: str | None = None,
) -> list[tuple[str, int]]:
    """The postings a confirmed claim makes: issued by the scheme, or moved from the receiver."""
    assert minutes > 0
    if rules.model is SchemeModel.TIME_CREDITS:
        return [(issuance_account, -minutes), (member_account, minutes)]
    assert receiver_account is not None and receiver_account != member_account
    return [(receiver_account, -minutes), (member_account, minutes)]


@dataclass(frozen=True, slots=True)
class Claim:
    """A logged claim and what became of it. `entry_seq` is its ledger entry once confirmed."""

    scheme: str
    id: str
    member: str
    logged_by: str
    on_behalf: bool
    activity: str
    day: date
    minutes: int
    receiver: str | None
    note: str  # free text stays here, off the ledger; the entry carries only its hash
    status: ClaimStatus
    duplicate: bool
    reason: str = ""
    decided_by: str | None = None
    entry_seq: int | None = None
    reversal_seq: int | None = None
    attempts: int = 0  # confirmations the ledger refused (e.g. the receiver's floor)
    note_salt: bytes = b""  # the note's hash on the ledger is salted; erasure drops the salt
