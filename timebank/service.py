"""The time bank's service functions: schemes, members, activities and the life of a claim.

Each function checks its request with the pure rules, then writes. A confirmed claim becomes one
ledger entry whose idempotency key is the claim's, so a confirmation retried after a crash
between the ledger write and the claim update finds the same entry and finishes the job.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any, TypeVar

from sqlalchemy.engine import Connection

from ledger import (
    Conflict,
    Database,
    Entry,
    FloorBreached,
    IdempotencyConflict,
    InvalidRequest,
    LedgerError,
    LedgerStore,
    NotFound,
    Receipt,
    account_history,
    from_us,
    refuse,
)

from . import offload, storage
from .activities import Activity, activity_problems
from .claims import (
    Claim,
    ClaimDraft,
    ClaimStatus,
    LoggedClaim,
    claim_postings,
    claim_problems,
    confirmer_problem,
    is_duplicate,
)
from .imports import (
    HoursRow,
    ImportRefused,
    LineProblem,
    PackedRefusal,
    line_map,
    packed_hours,
    packed_members,
    packed_timeoverflow_members,
    timeoverflow_hours_csv,
    unpack_hours,
    unpack_members,
    unpack_problems,
)
from .market import Market
from .policies import burnout_flags, expiring_minutes, week_start
from .schemes import (
    EXPIRED_ACCOUNT,
    ISSUANCE_ACCOUNT,
    Member,
    Role,
    Scheme,
    member_account,
    member_problems,
    scheme_problems,
)

T = TypeVar("T")
AUTO = "auto"  # who confirms a claim that was accepted automatically
# On the ledger, in plain words, with each reversal `repair_decisions` makes.
REPAIR_REASON = "the claim was rejected while a racing confirmation wrote this entry"


class Forbidden(LedgerError):
    """The person asking may not do this."""

    code = "forbidden"


def _claim_id(scheme_id: str, idempotency_key: str) -> str:
    return hashlib.sha256(f"{scheme_id}\0{idempotency_key}".encode()).hexdigest()[:24]


def _replayed(stored: tuple[Claim, bytes], digest: bytes) -> Claim:
    """The claim a repeated request made, if it really is the same request."""
    if stored[1] != digest:
        raise Conflict("idempotency key already used for another claim", field="idempotency_key")
    return stored[0]


class ClaimMoved(Conflict):
    """Raised inside a decision's transaction when the claim is no longer as the decision read
    it: the transaction (and any entry in it) is undone, and the decision looks again."""

    def __init__(self, claim_id: str) -> None:
        super().__init__(f"claim {claim_id} was decided meanwhile", field="claim")


class Unlogged(LedgerError):
    """One of several claims logged together (`TimeBank._log_all`) was refused, so none was."""

    def __init__(self, index: int, refused: LedgerError) -> None:
        super().__init__(refused.message, field=refused.field)
        self.code = refused.code
        self.index = index  # which claim
        self.refused = refused


class HistoryMoved(Conflict):
    """Raised inside an expiry's transaction when an entry moved the account after the job
    read its history: the expiry is undone, and the job reads again."""

    def __init__(self, account: str) -> None:
        super().__init__(f"account {account} moved meanwhile", field="account")


def _state(claim: Claim) -> str:
    return "reversed" if claim.reversal_seq is not None else claim.status.value


def _same_reversal(claim: Claim, reason: str) -> Claim:
    """A reversed claim is the answer to a retry of its reversal; another reason loses."""
    if claim.reason != reason:
        raise Conflict(f"claim {claim.id} is reversed", field="claim")
    return claim


def _same_member(existing: Member, member: Member) -> Member:
    """The member a repeated registration finds: the same, or a 409 naming what differs (an
    erasure is never undone by registering them again)."""
    if existing.erased and not member.erased:
        raise Conflict(f"member {member.id!r} is erased", field="id")
    if existing != member:
        raise Conflict(f"member {member.id!r} exists with other details", field="id")
    return existing


def _must_be_pending(claim: Claim) -> None:
    if claim.status is not ClaimStatus.PENDING:
        raise Conflict(f"claim {claim.id} is {_state(claim)}", field="claim")


IMPORT_YIELD_EVERY = 500  # an import's claims readied between turns of the event loop


def _read_members(conn: Connection, scheme_id: str, ids: list[str]) -> dict[str, Member]:
    """The register's members of these ids (an import's chunk), in one snapshot."""
    found = {i: storage.read_member(conn, scheme_id, i) for i in dict.fromkeys(ids)}
    return {i: m for i, m in found.items() if m is not None}


@dataclass(frozen=True, slots=True)
class _HoursFacts:
    """What an hours import's chunk of rows needs from the database (`_read_hours_facts`)."""

    imported: set[str]  # ids of the claims imported before
    members: dict[str, bool]  # whether each id is a member now (registered, not erased)
    codes: dict[str, bool]  # whether each activity exists
    day_totals: dict[tuple[str, date], int]  # minutes logged and not rejected, by member, day


def _read_hours_facts(
    conn: Connection,
    scheme_id: str,
    rows: list[HoursRow],
    known_members: set[str],
    known_codes: set[str],
    known_days: set[tuple[str, date]],
) -> _HoursFacts:
    """The facts `rows` need and the `known_` ones (read for an earlier chunk) do not, in one
    snapshot: one hop to a reader thread for a chunk, not three for each line."""
    imported = {
        claim_id
        for r in rows
        if storage.read_claim(conn, scheme_id, claim_id := _claim_id(scheme_id, r.key))
    }
    members: dict[str, bool] = {}
    codes: dict[str, bool] = {}
    days: dict[tuple[str, date], int] = {}
    for r in rows:
        if _claim_id(scheme_id, r.key) in imported:
            continue
        for who in (r.member, r.receiver):
            if who is not None and who not in known_members and who not in members:
                m = storage.read_member(conn, scheme_id, who)
                members[who] = m is not None and not m.erased
        if r.activity not in known_codes and r.activity not in codes:
            codes[r.activity] = storage.read_activity(conn, scheme_id, r.activity) is not None
        if (r.member, r.day) not in known_days and (r.member, r.day) not in days:
            logged = storage.claims_on_day(conn, scheme_id, r.member, r.day)
            days[(r.member, r.day)] = sum(
                c.minutes for c in logged if c.status is not ClaimStatus.REJECTED
            )
    return _HoursFacts(imported, members, codes, days)


async def _unpacked(
    refused: PackedRefusal, at: Callable[[int], int] = lambda n: n
) -> ImportRefused:
    """A worker's refusal, its problems unpacked a chunk at a time (a file may have 100,000)."""
    problems: list[LineProblem] = []
    for chunk in refused.problems:
        await asyncio.sleep(0)
        problems += [LineProblem(at(p.line), p.field, p.message) for p in unpack_problems(chunk)]
    return ImportRefused(problems)


def _log_units(units: list[Callable[[Connection], Claim]]) -> Callable[[Connection], list[Claim]]:
    """One transaction for an import's claims: all logged or, one refused, none (`Unlogged`)."""

    def log_all(conn: Connection) -> list[Claim]:
        done = []
        for i, unit in enumerate(units):
            try:
                done.append(unit(conn))
            except LedgerError as refused:
                raise Unlogged(i, refused) from None
        return done

    return log_all


class TimeBank:
    def __init__(self, db: Database, ledger: LedgerStore, clock: Callable[[], int]) -> None:
        self.db = db  # its engines and reader threads, shared with the other services
        self.ledger = ledger
        # A request's reads run in one call to a reader thread (`db.read`, not one hop per
        # statement); its writes go to the ledger's writer, in its group commit (`ledger.run`).
        self._clock = clock
        self._schemes: dict[str, Scheme] = {}
        self.market = Market(db, clock)  # offers and requests for help
        # personal data to erase with a member, beyond the register: sync (conn, scheme, id)
        self.erasure_hooks: list[Callable[[Connection, str, str], None]] = [
            storage.erase_member_exchanges
        ]

    @classmethod
    async def on(
        cls, db: Database, ledger: LedgerStore, clock: Callable[[], int] | None = None
    ) -> TimeBank:
        """The time bank on `db` (its tables made if missing), writing through `ledger`."""
        await db.create_tables(storage.metadata)
        return cls(db, ledger, clock or (lambda: time.time_ns() // 1000))

    @classmethod
    async def open(
        cls, url: str, ledger: LedgerStore, clock: Callable[[], int] | None = None
    ) -> TimeBank:
        """The time bank on the ledger's database (which `url` must name)."""
        if url != ledger.db.url:
            raise ValueError("a time bank lives in its ledger's database")
        return await cls.on(ledger.db, ledger, clock)

    def clock(self) -> int:
        """Now, in µs since the epoch, by the time bank's clock."""
        return self._clock()

    def today(self) -> date:
        """Today by the time bank's clock (UTC)."""
        return from_us(self._clock()).date()

    async def close(self) -> None:
        """Nothing of its own to close: its database is closed by whoever opened it."""

    async def query(self, read: Callable[..., T], *args: Any) -> T:
        """`read(conn, *args)` on a reader thread, in one snapshot (`Database.read`)."""
        return await self.db.read(read, *args)

    # ---- schemes, members, activities ------------------------------------------------------

    async def create_scheme(self, scheme: Scheme) -> Scheme:
        """Create a scheme and its ledger (with its issuance and expiry accounts). Idempotent."""
        refuse(scheme_problems(scheme))
        found = await self.query(storage.read_scheme, scheme.id)
        if found is not None:
            if found != scheme:
                raise Conflict(f"scheme {scheme.id!r} exists with other settings", field="id")
            return found
        key = f"scheme:{scheme.id}"
        await self.ledger.create_ledger(scheme.id, idempotency_key=key)
        for account, kind in ((ISSUANCE_ACCOUNT, "issuance"), (EXPIRED_ACCOUNT, "expired")):
            await self.ledger.open_account(
                scheme.id, account, kind=kind, floor=None, idempotency_key=f"{key}:{account}"
            )

        def insert(conn: Connection) -> Scheme | None:  # a twin request may have got here first
            found = storage.read_scheme(conn, scheme.id)
            if found is None:
                storage.insert_scheme(conn, scheme)
            return found

        found = await self.ledger.run(insert)
        if found is not None and found != scheme:
            raise Conflict(f"scheme {scheme.id!r} exists with other settings", field="id")
        return scheme

    async def schemes(self) -> list[Scheme]:
        return await self.query(storage.list_schemes)

    async def scheme(self, scheme_id: str) -> Scheme:
        """A scheme's settings. They never change once made, so each process caches them."""
        found = self._schemes.get(scheme_id)
        if found is not None:
            return found
        found = await self.query(storage.read_scheme, scheme_id)
        if found is None:
            raise NotFound(f"no scheme {scheme_id!r}", field="scheme")
        self._schemes[scheme_id] = found
        return found

    async def add_member(self, member: Member) -> Member:
        """Add a member and open their (pseudonymous) ledger account. Idempotent."""
        refuse(member_problems(member))
        scheme = await self.scheme(member.scheme)
        existing = await self._member(member.scheme, member.id)
        if existing is not None:
            return _same_member(existing, member)
        await self.ledger.open_account(
            scheme.id,
            member.account,
            kind="member",
            floor=scheme.member_floor,
            idempotency_key=f"member:{member.id}",
        )

        def insert(conn: Connection) -> Member | None:  # a twin request may have got here first
            existing = storage.read_member(conn, member.scheme, member.id)
            if existing is None:
                storage.insert_member(conn, member)
            return existing

        existing = await self.ledger.run(insert)
        return member if existing is None else _same_member(existing, member)

    async def _member(self, scheme_id: str, member_id: str) -> Member | None:
        return await self.query(storage.read_member, scheme_id, member_id)

    async def _is_member(self, scheme_id: str, member_id: str) -> bool:
        """Whether they are a member now: registered and not erased."""
        found = await self._member(scheme_id, member_id)
        return found is not None and not found.erased

    async def member(self, scheme_id: str, member_id: str) -> Member:
        found = await self._member(scheme_id, member_id)
        if found is None:
            raise NotFound(f"no member {member_id!r} in scheme {scheme_id!r}", field="member")
        return found

    async def add_activity(self, scheme_id: str, activity: Activity, *, by: str) -> Activity:
        """Add an activity to a scheme's catalogue: coordinators only. Idempotent."""
        await self._require_coordinator(scheme_id, by)
        refuse(activity_problems(activity))

        def insert(conn: Connection) -> Activity | None:
            found = storage.read_activity(conn, scheme_id, activity.code)
            if found is None:
                storage.insert_activity(conn, scheme_id, activity)
            return found

        found = await self.ledger.run(insert)
        if found is None:
            return activity
        if found != activity:
            raise Conflict(f"activity {activity.code!r} exists with other details", field="code")
        return found

    async def _require_coordinator(self, scheme_id: str, who: str) -> Member:
        person = await self.member(scheme_id, who)
        if not person.roles & {Role.COORDINATOR, Role.SCHEME_ADMIN}:
            raise Forbidden(f"{who} is not a coordinator of {scheme_id}", field="by")
        return person

    # ---- claims ------------------------------------------------------------------------------

    async def log_claim(
        self,
        scheme_id: str,
        draft: ClaimDraft,
        *,
        today: date,
        idempotency_key: str,
        note: str = "",
        history: bool = False,
    ) -> Claim:
        """Log hours as a pending claim. The same key and request returns the same claim.
        `history` (an import's): not held to how far back the scheme lets claims be dated."""
        scheme = await self.scheme(scheme_id)
        return await self.ledger.run(
            self._logger(scheme, draft, today, idempotency_key, note, history)
        )

    async def _log_all(
        self,
        scheme_id: str,
        drafts: list[tuple[ClaimDraft, str, str]],
        *,
        today: date,
        history: bool,
    ) -> list[Claim]:
        """Log several claims, each (draft, idempotency key, note), in one transaction: all of
        them or, one refused, none (`Unlogged` says which); an erasure comes before or after."""
        scheme = await self.scheme(scheme_id)
        units = [self._logger(scheme, d, today, key, note, history) for d, key, note in drafts]

        def log_all(conn: Connection) -> list[Claim]:
            done = []
            for i, unit in enumerate(units):
                try:
                    done.append(unit(conn))
                except LedgerError as refused:
                    raise Unlogged(i, refused) from None
            return done

        return await self.ledger.run(log_all)

    def _logger(
        self,
        scheme: Scheme,
        draft: ClaimDraft,
        today: date,
        idempotency_key: str,
        note: str,
        history: bool,
    ) -> Callable[[Connection], Claim]:
        """The unit of work that logs one claim on the ledger's writer, in its group commit:
        every check and the insert in one hop, in the transaction that writes."""
        scheme_id = scheme.id
        content = [
            draft.member,
            draft.logged_by,
            draft.activity,
            draft.day.isoformat(),
            draft.minutes,
            draft.receiver,
            draft.logged_by_coordinator,
            note,
        ]
        digest = hashlib.sha256(json.dumps(content).encode()).digest()
        claim_id = _claim_id(scheme_id, idempotency_key)
        people = {"member": draft.member, "logged_by": draft.logged_by, "receiver": draft.receiver}

        coordinator = {Role.COORDINATOR, Role.SCHEME_ADMIN}

        def check_people(conn: Connection) -> None:
            ids = {w for w in people.values() if w}
            by_id = {w: storage.read_member(conn, scheme_id, w, hold=True) for w in sorted(ids)}
            found = {r: by_id[w] for r, w in people.items() if w}
            for role, person in found.items():
                if person is None or person.erased:
                    raise NotFound(f"no member {people[role]!r}", field=role)
            logger = found["logged_by"]
            if draft.logged_by_coordinator and not (logger and logger.roles & coordinator):
                raise Forbidden(
                    f"{draft.logged_by} is not a coordinator of {scheme_id}", field="by"
                )

        salt = secrets.token_bytes(16) if note else b""
        now = self._clock()

        def insert(conn: Connection) -> Claim:
            twin = storage.read_claim(conn, scheme_id, claim_id)
            if twin is not None:  # logged before (or by a twin request in flight with it)
                return _replayed(twin, digest)
            check_people(conn)
            activity = storage.read_activity(conn, scheme_id, draft.activity)
            if activity is None or activity.retired:
                raise NotFound(f"no current activity {draft.activity!r}", field="activity")
            same_day = storage.claims_on_day(conn, scheme_id, draft.member, draft.day)
            problems = claim_problems(draft, scheme.rules, today, same_day, history=history)
            if problems:
                raise InvalidRequest(problems[0].message, field=problems[0].field)
            claim = Claim(
                scheme_id,
                claim_id,
                draft.member,
                draft.logged_by,
                draft.logged_by != draft.member,
                draft.activity,
                draft.day,
                draft.minutes,
                draft.receiver,
                note,
                ClaimStatus.PENDING,
                is_duplicate(draft, same_day),
                note_salt=salt,
            )
            storage.insert_claim(conn, claim, digest, now)
            return claim

        return insert

    async def claim(self, scheme_id: str, claim_id: str) -> Claim:
        found = await self.query(storage.read_claim, scheme_id, claim_id)
        if found is None:
            raise NotFound(f"no claim {claim_id!r} in scheme {scheme_id!r}", field="claim")
        return found[0]

    async def confirm_claim(
        self, scheme_id: str, claim_id: str, *, by: str, involved_only: bool = False
    ) -> Claim:
        """Confirm a pending claim: its hours become one signed ledger entry. With
        `involved_only`, `by` must be the claim's member or receiver (a member, not staff)."""
        scheme = await self.scheme(scheme_id)

        def look(conn: Connection) -> tuple[tuple[Claim, bytes] | None, Member | None]:
            claim = storage.read_claim(conn, scheme_id, claim_id)
            return claim, storage.read_member(conn, scheme_id, by)

        found, confirmer = await self.query(look)  # one hop for both
        if found is None:
            raise NotFound(f"no claim {claim_id!r} in scheme {scheme_id!r}", field="claim")
        claim = found[0]
        if involved_only and by not in (claim.member, claim.receiver):
            # as for a claim that does not exist: nothing learnt of others' claims
            raise NotFound(f"no claim {claim_id!r} in scheme {scheme_id!r}", field="claim")
        if claim.status is ClaimStatus.CONFIRMED:
            return claim
        _must_be_pending(claim)
        if confirmer is None:
            raise NotFound(f"no member {by!r} in scheme {scheme_id!r}", field="member")
        coordinator = bool(confirmer.roles & {Role.COORDINATOR, Role.SCHEME_ADMIN})
        why = confirmer_problem(scheme.rules, claim.member, claim.receiver, by, coordinator)
        if why:
            raise Forbidden(why, field="by")
        return await self._confirm(scheme, claim, by)

    async def _confirm_logged(self, scheme_id: str, claim: Claim, *, by: str) -> Claim:
        """Confirm a claim just logged by coordinator `by`; if the erasure of its member
        rejected it meanwhile, that decision is the answer."""
        try:
            return await self.confirm_claim(scheme_id, claim.id, by=by)
        except Conflict:
            now = await self.claim(scheme_id, claim.id)
            if now.status is ClaimStatus.REJECTED and now.reason == storage.ERASED:
                return now
            raise

    async def auto_accept_due(self, scheme_id: str, *, now_us: int) -> list[Claim]:
        """Person-to-person: accept claims the member helped left unanswered for the scheme's
        `auto_accept_hours` (a scheduled job). Recorded as confirmed by "auto"."""
        scheme = await self.scheme(scheme_id)
        if scheme.auto_accept_hours is None:
            return []
        before = now_us - scheme.auto_accept_hours * 3_600_000_000
        due = await self.query(storage.pending_claims_before, scheme_id, before)
        done = []
        for claim_id in due:
            claim = await self.claim(scheme_id, claim_id)
            if claim.status is not ClaimStatus.PENDING:
                continue  # decided since the job looked
            with contextlib.suppress(FloorBreached, Conflict, NotFound):
                done.append(await self._confirm(scheme, claim, AUTO))
        return done

    async def _confirm(self, scheme: Scheme, claim: Claim, by: str) -> Claim:
        """Write the claim's entry and mark it confirmed in one transaction, if it is still as
        read: a decision that got there first (a reject, an erasure) refuses this one."""
        scheme_id = scheme.id
        postings = claim_postings(
            scheme.rules,
            member_account(claim.member),
            claim.minutes,
            ISSUANCE_ACCOUNT,
            member_account(claim.receiver) if claim.receiver else None,
        )
        meta = {"claim": claim.id, "activity": claim.activity, "day": claim.day.isoformat()}
        if claim.on_behalf:
            meta["logged-by"] = claim.logged_by  # a coordinator acting for a member
        if claim.note:  # salted, so a guessed note can't be checked once the salt is erased
            salted = claim.note_salt + claim.note.encode()
            meta["note-sha256"] = hashlib.sha256(salted).hexdigest()
        # The key is stable across a crash (a retry finds the entry already written) but moves
        # on after a refusal, which the ledger remembers under its key: a claim refused for the
        # receiver's floor can be confirmed once they have the hours.
        done = replace(claim, status=ClaimStatus.CONFIRMED, decided_by=by)

        def record(conn: Connection, entry: Entry) -> None:  # committed with the entry, or
            if not storage.move_claim(conn, claim, replace(done, entry_seq=entry.seq)):
                raise ClaimMoved(claim.id)  # neither is written

        try:
            entry = await self.ledger.transfer(
                scheme_id,
                postings,
                meta=meta,
                idempotency_key=f"claim:{claim.id}:{claim.attempts}",
                then=record,
            )
        except ClaimMoved:
            return await self._decided(claim, ClaimStatus.CONFIRMED)
        except (FloorBreached, Conflict, NotFound) as refused:
            await self._move(claim, replace(claim, attempts=claim.attempts + 1))
            if isinstance(refused, FloorBreached) and claim.receiver:  # the ledger names its
                raise FloorBreached(  # account; the caller knows the member who was helped
                    f"{claim.receiver} would go below the scheme's limit", field="receiver"
                ) from None
            raise
        stored = await self.claim(scheme_id, claim.id)  # a twin request's answer, if it won
        assert stored.entry_seq == entry.seq, (claim.id, stored.entry_seq, entry.seq)
        return stored

    async def _move(self, was: Claim, now: Claim) -> bool:
        """Write `now` over the claim if it is still as `was`; False if it had moved on."""
        return await self.ledger.run(lambda conn: storage.move_claim(conn, was, now))

    async def _decided(self, claim: Claim, wanted: ClaimStatus) -> Claim:
        """The claim as another decision left it: the answer if that decision was this one
        (a twin request won the race), else a 409 naming the state it is in."""
        now = await self.claim(claim.scheme, claim.id)
        same = wanted is not ClaimStatus.REJECTED or now.reason == claim.reason
        if now.status is wanted and same:
            return now
        raise Conflict(f"claim {claim.id} is {_state(now)}", field="claim")

    async def reject_claim(self, scheme_id: str, claim_id: str, *, by: str, reason: str) -> Claim:
        if not reason.strip():
            raise InvalidRequest("say why the claim is rejected", field="reason")
        claim = await self.claim(scheme_id, claim_id)
        if claim.status is ClaimStatus.REJECTED and claim.reason == reason:
            return claim  # a retry
        _must_be_pending(claim)
        if by == claim.member:
            raise Forbidden("nobody decides on their own hours", field="by")
        await self._require_coordinator(scheme_id, by)
        done = replace(claim, status=ClaimStatus.REJECTED, decided_by=by, reason=reason)
        if not await self._move(claim, done):
            return await self._decided(done, ClaimStatus.REJECTED)
        return done

    async def reverse_claim(self, scheme_id: str, claim_id: str, *, by: str, reason: str) -> Claim:
        """Undo a confirmed claim by a reversal entry that names it; the claim keeps its history.
        The reversal and the claim's record of it commit together."""
        if not reason.strip():
            raise InvalidRequest("say why the claim is reversed", field="reason")
        await self._require_coordinator(scheme_id, by)
        claim = await self.claim(scheme_id, claim_id)
        if claim.reversal_seq is not None:
            return _same_reversal(claim, reason)
        if claim.status is not ClaimStatus.CONFIRMED or claim.entry_seq is None:
            raise Conflict(
                f"claim {claim_id} is {_state(claim)}: only a confirmed claim is reversed",
                field="claim",
            )
        return await self._reverse(claim, reason)

    async def _reverse(self, claim: Claim, reason: str) -> Claim:
        assert claim.entry_seq is not None and claim.reversal_seq is None

        def record(conn: Connection, entry: Entry) -> None:
            now = replace(claim, reversal_seq=entry.seq, reason=reason)
            if not storage.move_claim(conn, claim, now):
                raise ClaimMoved(claim.id)

        # another reversal may get there first: then the same one's answer, or a 409
        try:
            await self.ledger.reverse(
                claim.scheme,
                claim.entry_seq,
                then=record,
                meta={
                    "claim": claim.id,
                    "reason-sha256": hashlib.sha256(reason.encode()).hexdigest(),
                },
                idempotency_key=f"claim:{claim.id}:reverse",
            )
        except (ClaimMoved, Conflict, IdempotencyConflict):
            pass
        except FloorBreached:  # the ledger names an account; the caller knows the member
            raise FloorBreached(
                f"{claim.member} has spent these hours: reversing them would take "
                f"{claim.member} below the scheme's limit",
                field="member",
            ) from None
        now = await self.claim(claim.scheme, claim.id)
        if now.reversal_seq is None:
            raise Conflict(f"claim {claim.id} is {_state(now)}", field="claim")
        return _same_reversal(now, reason)

    async def repair_decisions(self, scheme_id: str) -> list[Claim]:
        """Undo the credit of each claim that says rejected but whose entry was written (a
        confirmation racing the rejection, before issue 16): a reversal naming the claim, which
        keeps its rejection and records both entries. Nothing is edited; a re-run does nothing."""

        def look(conn: Connection) -> list[tuple[Claim, int]]:
            credited = {
                e.claim: e.seq
                for e in storage.claim_entries(conn, scheme_id)
                if e.kind != "reverse"
            }
            out = []
            for r in storage.claim_records(conn, scheme_id):
                if r.status is ClaimStatus.REJECTED and r.reversal_seq is None and r.id in credited:
                    found = storage.read_claim(conn, scheme_id, r.id)
                    assert found is not None
                    out.append((found[0], credited[r.id]))
            return out

        return [await self._repair(claim, seq) for claim, seq in await self.query(look)]

    async def _repair(self, claim: Claim, seq: int) -> Claim:
        def record(conn: Connection, entry: Entry) -> None:
            if not storage.move_claim(
                conn, claim, replace(claim, entry_seq=seq, reversal_seq=entry.seq)
            ):
                raise ClaimMoved(claim.id)

        await self.ledger.reverse(
            claim.scheme,
            seq,
            meta={"claim": claim.id, "repair": REPAIR_REASON},
            idempotency_key=f"claim:{claim.id}:repair",
            then=record,
        )
        return await self.claim(claim.scheme, claim.id)

    async def expire_credits(self, scheme_id: str, *, today: date) -> dict[str, int]:
        """Move credit older than the scheme's expiry period to its expiry account, oldest credit
        spent first (a scheduled job; run again, or in two processes at once, it expires
        nothing twice)."""
        scheme = await self.scheme(scheme_id)
        months = scheme.credit_expiry_months
        if months is None:
            return {}
        ids = await self.query(storage.member_ids, scheme_id)
        expired: dict[str, int] = {}
        for member_id in ids:
            minutes = await self._expire(scheme_id, member_account(member_id), today, months)
            if minutes > 0:
                expired[member_id] = minutes
        return expired

    async def _history(self, scheme_id: str, account: str) -> tuple[list[tuple[date, int]], int]:
        """An account's movements as (day, signed minutes), and the last entry's seq (or 0)."""
        movements: list[tuple[date, int]] = []
        after = 0
        while page := await self.ledger.history(scheme_id, account, after_seq=after, limit=1000):
            movements += [(e.time.date(), e.amount_for(account)) for e in page]
            after = page[-1].seq
        return movements, after

    async def _expire(self, scheme_id: str, account: str, today: date, months: int) -> int:
        """Expire what is due of one account's credit by its history, written only if no entry
        moved the account since the history was read (a spend, a reversal, another run's
        expiry): else read again. The key names the history read, so two runs that read the
        same one write one expiry."""
        while True:
            movements, after = await self._history(scheme_id, account)
            minutes = expiring_minutes(movements, today, months)
            if minutes <= 0:
                return 0

            def unmoved(conn: Connection, entry: Entry, after: int = after) -> None:
                since = account_history(conn, scheme_id, account, after, 1)
                if since[0].seq != entry.seq:
                    raise HistoryMoved(account)  # the entry is undone with the transaction

            try:
                await self.ledger.transfer(
                    scheme_id,
                    [(account, -minutes), (EXPIRED_ACCOUNT, minutes)],
                    meta={"expiry": f"credits before {months} months"},
                    idempotency_key=f"expiry:{account}:{today.isoformat()}:{after}",
                    then=unmoved,
                )
            except HistoryMoved:
                continue
            except FloorBreached:  # spent since it was read? then read again; else refused
                if (await self._history(scheme_id, account))[1] == after:
                    raise
                continue
            return minutes

    async def import_members(self, scheme_id: str, text: str) -> int:
        """Add the members of a CSV file, all checked first; returns how many were new."""
        try:
            packed = await offload.run(packed_members, scheme_id, text)
        except PackedRefusal as refused:
            raise await _unpacked(refused) from None
        return await self._add_members(scheme_id, packed)

    async def import_timeoverflow_members(self, scheme_id: str, text: str) -> int:
        """Add the members of TimeOverflow's "Users" export; returns how many were new."""
        try:
            packed = await offload.run(packed_timeoverflow_members, scheme_id, text)
        except PackedRefusal as refused:
            raise await _unpacked(refused) from None
        return await self._add_members(scheme_id, packed)

    async def import_timeoverflow_transfers(
        self, scheme_id: str, text: str, *, activity: str, by: str, today: date
    ) -> list[Claim]:
        """Hours from TimeOverflow's "All transfers" export, booked to `activity`, confirmed by
        coordinator `by`; problems are reported by the export's own line numbers."""
        try:
            hours, lines = await offload.run(timeoverflow_hours_csv, text, activity=activity)
        except PackedRefusal as refused:
            raise await _unpacked(refused) from None
        return await self._import_hours(scheme_id, hours, by, today, line_map(lines))

    async def _add_members(self, scheme_id: str, packed: list[bytes]) -> int:
        """The members of a worker's packed chunks (`imports.pack_members`): all checked against
        the register, then the new ones added. A chunk at a time, each read in one snapshot, so
        the event loop is never held for long."""
        await self.scheme(scheme_id)
        conflicts, new = [], []
        for chunk in packed:
            wanted = unpack_members(chunk)
            there = await self.query(_read_members, scheme_id, [m.id for _, m in wanted])
            for line, m in wanted:
                found = there.get(m.id)
                if found is None:
                    new.append(m)
                elif found != m:
                    message = f"member {m.id} exists with other details"
                    conflicts.append(LineProblem(line, "id", message))
        if conflicts:
            raise ImportRefused(conflicts)
        for m in new:
            await self.add_member(m)
        return len(new)

    async def import_hours(self, scheme_id: str, text: str, *, by: str, today: date) -> list[Claim]:
        """Historic hours from a CSV file, logged and confirmed by coordinator `by`; returns the
        claims this run confirmed.

        Every line is checked against the scheme's rules (and against the file's own earlier
        lines) before anything is written; a re-run of the same file writes nothing new.
        The file is parsed in a worker process, which gives the rows back packed
        (`imports.pack_hours`); they are checked a chunk at a time, each chunk's facts read in
        one snapshot, so the event loop is never held for long.
        """
        return await self._import_hours(scheme_id, text, by, today, line_map(None))

    async def _import_hours(
        self, scheme_id: str, text: str, by: str, today: date, at: Callable[[int], int]
    ) -> list[Claim]:
        """`import_hours`, its problems numbered by `at` of the file's lines."""
        await self._require_coordinator(scheme_id, by)
        try:
            packed = await offload.run(packed_hours, text)
        except PackedRefusal as refused:
            raise await _unpacked(refused, at) from None
        scheme = await self.scheme(scheme_id)
        problems: list[LineProblem] = []
        day_totals: dict[tuple[str, date], int] = {}  # minutes not rejected, by member and day
        members: dict[str, bool] = {}  # whether each id is a member now
        codes: dict[str, bool] = {}  # whether each activity exists
        rows: list[HoursRow] = []
        for chunk in packed:
            part = unpack_hours(chunk)
            rows += part
            facts = await self.query(
                _read_hours_facts, scheme_id, part, set(members), set(codes), set(day_totals)
            )
            members |= facts.members
            codes |= facts.codes
            day_totals |= facts.day_totals
            for r in part:
                if _claim_id(scheme_id, r.key) in facts.imported:
                    continue  # imported before: a re-run replays it
                for who, name in ((r.member, "member"), (r.receiver, "receiver")):
                    if who is not None and not members[who]:
                        problems.append(LineProblem(at(r.line), name, f"no member {who!r}"))
                if not codes[r.activity]:
                    problems.append(
                        LineProblem(at(r.line), "activity", f"no activity {r.activity!r}")
                    )
                draft = ClaimDraft(r.member, by, r.activity, r.day, r.minutes, r.receiver, True)
                so_far = day_totals[(r.member, r.day)]  # one running total: linear in the file
                same_day = [LoggedClaim(r.member, "", r.day, so_far, ClaimStatus.PENDING)]
                found = claim_problems(
                    draft, scheme.rules, today, same_day if so_far else [], history=True
                )
                problems += [LineProblem(at(r.line), p.field, p.message) for p in found]
                day_totals[(r.member, r.day)] = so_far + r.minutes
        if problems:
            raise ImportRefused(problems)
        units: list[Callable[[Connection], Claim]] = []
        for n, r in enumerate(rows):
            if n % IMPORT_YIELD_EVERY == 0:
                await asyncio.sleep(0)  # a long file: let other requests in between the lines
            draft = ClaimDraft(r.member, by, r.activity, r.day, r.minutes, r.receiver, True)
            units.append(self._logger(scheme, draft, today, r.key, r.note, True))
        try:  # the whole file or, a line refused since it was checked (its member erased), none
            written = await self.ledger.run(_log_units(units))
        except Unlogged as refused:
            line = at(rows[refused.index].line)
            raise ImportRefused([LineProblem(line, refused.field or "", refused.message)]) from None
        done = []
        for claim in written:
            if claim.status is ClaimStatus.PENDING:  # not confirmed by an earlier run
                claim = await self._confirm_logged(scheme_id, claim, by=by)
                if claim.status is ClaimStatus.CONFIRMED:
                    done.append(claim)
        return done

    async def burnout_flags(
        self, scheme_id: str, *, by: str, today: date, hours_per_week: int = 20, weeks: int = 3
    ) -> set[str]:
        """Members who gave more than `hours_per_week` in each of the last `weeks` weeks: for
        coordinators only, never shown publicly."""
        await self._require_coordinator(scheme_id, by)
        since = week_start(today) - timedelta(weeks=weeks - 1)
        hours = await self.query(storage.confirmed_hours_since, scheme_id, since)
        return burnout_flags(hours, today, hours_per_week * 60, weeks)

    async def balance(self, scheme_id: str, member_id: str) -> int:
        """A member's balance in minutes (pending reservations already taken out)."""
        return (await self.ledger.account(scheme_id, member_account(member_id))).balance

    # ---- lists, lookups, group sessions, receipts and erasure ---------------------------------

    async def members(self, scheme_id: str, *, after: str = "", limit: int = 50) -> list[Member]:
        return await self.query(storage.list_members, scheme_id, after, min(limit, 500))

    async def member_by_card(self, scheme_id: str, card_number: str) -> Member:
        """Find a member by their printed card number (members without a phone)."""
        found = await self.query(storage.member_by_card, scheme_id, card_number)
        if found is None or not card_number:
            raise NotFound("no member holds that card", field="card_number")
        return found

    async def activities(self, scheme_id: str) -> list[Activity]:
        return await self.query(storage.list_activities, scheme_id)

    async def retire_activity(self, scheme_id: str, code: str, *, by: str) -> Activity:
        """Stop new claims for an activity; it stays in the catalogue for history."""
        await self._require_coordinator(scheme_id, by)

        def retire(conn: Connection) -> Activity:
            found = storage.read_activity(conn, scheme_id, code)
            if found is None:
                raise NotFound(f"no activity {code!r}", field="code")
            storage.retire_activity(conn, scheme_id, code)
            return replace(found, retired=True)

        return await self.ledger.run(retire)

    async def claims(
        self,
        scheme_id: str,
        *,
        member: str | None = None,
        status: ClaimStatus | None = None,
        after: tuple[int, str] = (0, ""),
        limit: int = 50,
    ) -> list[tuple[int, Claim]]:
        """Claims in the order logged, as (logged at µs, claim): the position is the cursor."""
        return await self.query(
            lambda c: storage.list_claims(
                c, scheme_id, member=member, status=status, after=after, limit=min(limit, 500)
            )
        )

    async def log_group(
        self,
        scheme_id: str,
        members: list[str],
        activity: str,
        day: date,
        minutes: int,
        *,
        by: str,
        today: date,
        idempotency_key: str,
        note: str = "",
    ) -> list[Claim]:
        """A coordinator logs one session for many members: one claim (and, confirmed by the
        coordinator, one entry) each. Every member is checked before anything is written; the
        coordinator's own claim, if they took part, waits for another coordinator."""
        await self._require_coordinator(scheme_id, by)
        if not 1 <= len(members) <= 200 or len(set(members)) != len(members):
            raise InvalidRequest("1 to 200 different members", field="members")
        scheme = await self.scheme(scheme_id)
        for member_id in members:
            if not await self._is_member(scheme_id, member_id):
                raise NotFound(f"no member {member_id!r}", field="members")
            draft = ClaimDraft(member_id, by, activity, day, minutes, None, True)
            same_day = await self.query(storage.claims_on_day, scheme_id, member_id, day)
            refuse(
                [(p.field, p.message) for p in claim_problems(draft, scheme.rules, today, same_day)]
            )
        drafts = [
            (ClaimDraft(m, by, activity, day, minutes, None, True), f"{idempotency_key}:{m}", note)
            for m in members
        ]
        try:  # the whole group or, one refused since it was checked (erased), none
            logged = await self._log_all(scheme_id, drafts, today=today, history=False)
        except Unlogged as refused:
            field = "members" if refused.field == "member" else refused.field
            raise type(refused.refused)(refused.message, field=field) from None
        return [
            c if c.member == by else await self._confirm_logged(scheme_id, c, by=by) for c in logged
        ]

    async def history(
        self, scheme_id: str, member_id: str, *, after_seq: int = 0, limit: int = 50
    ) -> list[Entry]:
        """The ledger entries that moved a member's hours, oldest first."""
        await self.member(scheme_id, member_id)
        return await self.ledger.history(
            scheme_id, member_account(member_id), after_seq=after_seq, limit=limit
        )

    async def receipt(self, scheme_id: str, member_id: str, seq: int) -> Receipt:
        """A receipt for one of a member's entries that verifies offline. When no checkpoint
        covers the entry yet, one is made now (checkpoints are also made on a schedule)."""
        await self.member(scheme_id, member_id)
        # One answer whether the entry does not exist or is somebody else's: a member probing
        # sequence numbers learns neither the ledger's length nor other members' entries.
        hidden = NotFound(f"no entry {seq} among this member's entries", field="seq")
        try:
            entry = await self.ledger.entry(scheme_id, seq)
        except NotFound:
            raise hidden from None
        if entry.amount_for(member_account(member_id)) == 0:
            raise hidden
        size = await self.ledger.size(scheme_id)
        checkpoints = await self.ledger.checkpoints(scheme_id)
        if not checkpoints or checkpoints[-1].size < seq:
            await self.ledger.checkpoint(scheme_id, idempotency_key=f"checkpoint:{size}")
        return await self.ledger.receipt(scheme_id, seq)

    async def erase_member(self, scheme_id: str, member_id: str, *, by: str) -> Member:
        """Right to erasure: the member's name, contact, card, monitoring answers, claim notes
        and offers go; their pseudonymous account and the ledger stay whole and verifiable."""
        target = await self.member(scheme_id, member_id)
        if by != member_id:
            actor = await self._require_coordinator(scheme_id, by)
            staff = target.roles & {Role.COORDINATOR, Role.SCHEME_ADMIN}
            if staff and Role.SCHEME_ADMIN not in actor.roles:
                raise Forbidden("only a scheme admin erases a coordinator or admin", field="by")

        def erase(conn: Connection) -> None:
            storage.erase_member(conn, scheme_id, member_id)
            storage.reject_pending_claims(conn, scheme_id, member_id, by)
            for hook in self.erasure_hooks:
                hook(conn, scheme_id, member_id)

        await self.ledger.run(erase)
        return await self.member(scheme_id, member_id)
