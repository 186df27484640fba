"""The time bank's SQL: schemes, members, activities and claims. The ledger keeps its own tables.

Functions take a sync `Connection`; async callers use `AsyncConnection.run_sync`.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    bindparam,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from ledger import Prepared, entries_naming

from .activities import (
    Activity,
    CoForm,
    Contribution,
    CoSubform,
    Mode,
    RelationToPaidWork,
    ServiceArea,
    Voluntariness,
)
from .claims import Claim, ClaimRules, ClaimStatus, LoggedClaim, SchemeModel
from .consistency import ClaimEntry, ClaimRecord
from .matching import HelpRequest, Offer
from .schemes import Member, Role, Scheme

metadata = MetaData()

schemes = Table(
    "tb_schemes",
    metadata,
    Column("id", String(63), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("model", String(32), nullable=False),
    Column("min_minutes", Integer, nullable=False),
    Column("max_minutes", Integer, nullable=False),
    Column("may_log_for_others", Boolean, nullable=False),
    Column("member_floor", Integer, nullable=False),
    Column("credit_expiry_months", Integer, nullable=True),
    Column("auto_accept_hours", Integer, nullable=True),
    Column("claim_days_back", Integer, nullable=True),  # migration 0005
)
members = Table(
    "tb_members",
    metadata,
    Column("scheme", String(63), nullable=False),
    Column("id", String(40), nullable=False),
    Column("display_name", String(120), nullable=False),
    Column("roles", String(100), nullable=False),
    Column("contact", Text, nullable=False),
    Column("card_number", String(40), nullable=False),
    Column("attributes", Text, nullable=False),
    Column("erased", Boolean, nullable=False, default=False),
    PrimaryKeyConstraint("scheme", "id"),
)
activities = Table(
    "tb_activities",
    metadata,
    Column("scheme", String(63), nullable=False),
    Column("code", String(64), nullable=False),
    Column("title", String(200), nullable=False),
    Column("form", String(32), nullable=False),
    Column("subform", String(32), nullable=True),
    Column("contribution", String(32), nullable=False),
    Column("area", String(32), nullable=False),
    Column("mode", String(16), nullable=False),
    Column("voluntariness", String(16), nullable=False),
    Column("relation", String(32), nullable=False),
    Column("safeguarding_check", Boolean, nullable=False),
    Column("proxy_code", String(64), nullable=False),
    Column("retired", Boolean, nullable=False),
    PrimaryKeyConstraint("scheme", "code"),
)
claims = Table(
    "tb_claims",
    metadata,
    Column("scheme", String(63), nullable=False),
    Column("id", String(32), nullable=False),
    Column("request_hash", LargeBinary(32), nullable=False),
    Column("member", String(40), nullable=False),
    Column("logged_by", String(40), nullable=False),
    Column("on_behalf", Boolean, nullable=False),
    Column("activity", String(64), nullable=False),
    Column("day", String(10), nullable=False),
    Column("minutes", Integer, nullable=False),
    Column("receiver", String(40), nullable=True),
    Column("note", Text, nullable=False),
    Column("note_salt", LargeBinary(16), nullable=True),  # NULL once erased: the hash unlinks
    Column("status", String(16), nullable=False),
    Column("duplicate", Boolean, nullable=False),
    Column("reason", Text, nullable=False),
    Column("decided_by", String(40), nullable=True),
    Column("entry_seq", BigInteger, nullable=True),
    Column("reversal_seq", BigInteger, nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    PrimaryKeyConstraint("scheme", "id"),
    Index("tb_claims_by_member_day", "scheme", "member", "day"),  # the day's total, duplicates
    Index("tb_claims_by_time", "scheme", "created_us", "id"),  # lists, auto-accept
    # Reports' (valuation/reports/storage.py): every column they read, in the order they group.
    # Partial, for confirmed claims: a pending claim costs it nothing, and only a query asking
    # for confirmed claims can use it (a full one, covering, was taken by the day's-total check
    # by member and day, as a scan of the scheme's claims).
    Index(
        "tb_claims_for_reports",
        "scheme",
        "day",
        "activity",
        "member",
        "minutes",
        "entry_seq",
        "reversal_seq",
        "receiver",
        "status",
        sqlite_where=text("status = 'confirmed'"),
        postgresql_where=text("status = 'confirmed'"),
    ),
)

# What reports read besides hours (valuation/reports): recorded once, never edited.
outcome_records = Table(
    "rp_outcomes",
    metadata,
    Column("scheme", String(63), nullable=False),
    Column("id", String(64), nullable=False),
    Column("outcome", String(64), nullable=False),
    Column("start", String(10), nullable=False),
    Column("end", String(10), nullable=False),
    Column("people", Integer, nullable=False),
    Column("evidence", String(16), nullable=False),
    Column("evidence_note", Text, nullable=False),
    Column("change", String(24), nullable=True),  # a Decimal, as text: never a float
    Column("recorded_by", String(40), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    PrimaryKeyConstraint("scheme", "id"),
)
costs = Table(
    "rp_costs",
    metadata,
    Column("scheme", String(63), nullable=False),
    Column("id", String(64), nullable=False),
    Column("funder", String(40), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("start", String(10), nullable=False),
    Column("end", String(10), nullable=False),
    Column("amount", String(24), nullable=False),  # a Decimal, as text
    Column("currency", String(3), nullable=False),
    Column("price_year", String(7), nullable=False),
    Column("note", Text, nullable=False),
    Column("recorded_by", String(40), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    PrimaryKeyConstraint("scheme", "id"),
)
ratings = Table(
    "rp_ratings",
    metadata,
    Column("scheme", String(63), nullable=False),
    Column("id", String(64), nullable=False),
    Column("member", String(40), nullable=False),
    Column("subject", String(16), nullable=False),
    Column("subject_id", String(64), nullable=False),
    Column("score", Integer, nullable=False),
    Column("day", String(10), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    PrimaryKeyConstraint("scheme", "id"),
)


catalogues = Table(  # a scheme's own versions of the valuation catalogue: insert-only
    "tb_catalogues",
    metadata,
    Column("scheme", String(63), nullable=False),
    Column("version", String(64), nullable=False),
    Column("hash", String(71), nullable=False),  # "sha256:" + 64 hex
    Column("based_on", String(71), nullable=False),
    Column("content", Text, nullable=False),  # the canonical JSON the hash is taken over
    Column("created_us", BigInteger, nullable=False),
    PrimaryKeyConstraint("scheme", "version"),
)

# The hot paths' statements, built once: SQLAlchemy then reuses their compiled form instead of
# rebuilding and re-keying a statement per call. Parameters are bound by name at execution.
_P = bindparam
# The statements every claim runs (mostly on the ledger's writer thread): prepared, see
# ledger/prepared.py. Rows come back untyped, so Booleans are read with bool().
READ_MEMBER = Prepared(select(members).where(members.c.scheme == _P("s"), members.c.id == _P("m")))
# In a writer's transaction on PostgreSQL: the member held (FOR SHARE) till COMMIT, so an erasure
# in another process waits for a claim logged for them (and rejects it) or is seen by it.
# SQLite's writers are serialised already; the clause renders as nothing there.
HOLD_MEMBER = Prepared(
    select(members)
    .where(members.c.scheme == _P("s"), members.c.id == _P("m"))
    .with_for_update(read=True)
)
READ_ACTIVITY = Prepared(
    select(activities).where(activities.c.scheme == _P("s"), activities.c.code == _P("code"))
)
READ_CLAIM = Prepared(select(claims).where(claims.c.scheme == _P("s"), claims.c.id == _P("cid")))
CLAIMS_ON_DAY = Prepared(
    select(claims.c.activity, claims.c.minutes, claims.c.status).where(
        claims.c.scheme == _P("s"), claims.c.member == _P("m"), claims.c.day == _P("d")
    )
)
INSERT_CLAIM = Prepared(claims.insert().values({c.name: _P(c.name) for c in claims.c}))
# A claim moves only from the state its writer read: one decision wins, the others find no row.
UPDATE_CLAIM = Prepared(
    update(claims)
    .where(
        claims.c.scheme == _P("s"),
        claims.c.id == _P("cid"),
        claims.c.status == _P("was"),
        claims.c.attempts == _P("was_attempts"),
        claims.c.reversal_seq.is_not_distinct_from(_P("was_reversal")),
    )
    .values(
        status=_P("status"),
        reason=_P("reason"),
        decided_by=_P("decided_by"),
        entry_seq=_P("entry_seq"),
        reversal_seq=_P("reversal_seq"),
        attempts=_P("attempts"),
    )
)


def insert_scheme(conn: Connection, s: Scheme) -> None:
    conn.execute(
        schemes.insert().values(
            id=s.id,
            name=s.name,
            model=s.rules.model.value,
            min_minutes=s.rules.min_minutes,
            max_minutes=s.rules.max_minutes,
            may_log_for_others=s.rules.members_may_log_for_others,
            member_floor=s.member_floor,
            credit_expiry_months=s.credit_expiry_months,
            auto_accept_hours=s.auto_accept_hours,
            claim_days_back=s.rules.days_back,
        )
    )


def read_scheme(conn: Connection, scheme_id: str) -> Scheme | None:
    r = conn.execute(select(schemes).where(schemes.c.id == scheme_id)).first()
    if r is None:
        return None
    rules = ClaimRules(
        SchemeModel(r.model),
        r.min_minutes,
        r.max_minutes,
        r.may_log_for_others,
        r.claim_days_back,
    )
    return Scheme(r.id, r.name, rules, r.member_floor, r.credit_expiry_months, r.auto_accept_hours)


def list_schemes(conn: Connection) -> list[Scheme]:
    ids = conn.execute(select(schemes.c.id).order_by(schemes.c.id)).scalars()
    found = (read_scheme(conn, scheme_id) for scheme_id in ids)
    return [s for s in found if s is not None]


def insert_member(conn: Connection, m: Member) -> None:
    conn.execute(
        members.insert().values(
            scheme=m.scheme,
            id=m.id,
            display_name=m.display_name,
            roles=",".join(sorted(m.roles)),
            contact=m.contact,
            card_number=m.card_number,
            attributes=json.dumps(m.attributes, sort_keys=True),
            erased=m.erased,
        )
    )


def read_member(
    conn: Connection, scheme_id: str, member_id: str, *, hold: bool = False
) -> Member | None:
    """A member; with `hold`, their row is held till the writer's COMMIT (see HOLD_MEMBER)."""
    r = (HOLD_MEMBER if hold else READ_MEMBER).first(conn, {"s": scheme_id, "m": member_id})
    if r is None:
        return None
    roles = frozenset(Role(x) for x in r.roles.split(",") if x)
    attrs = json.loads(r.attributes)
    return Member(
        r.scheme, r.id, r.display_name, roles, r.contact, r.card_number, attrs, bool(r.erased)
    )


def insert_activity(conn: Connection, scheme_id: str, a: Activity) -> None:
    conn.execute(
        activities.insert().values(
            scheme=scheme_id,
            code=a.code,
            title=a.title,
            form=a.form.value,
            subform=a.subform.value if a.subform else None,
            contribution=a.contribution.value,
            area=a.area.value,
            mode=a.mode.value,
            voluntariness=a.voluntariness.value,
            relation=a.relation.value,
            safeguarding_check=a.safeguarding_check,
            proxy_code=a.proxy_code,
            retired=a.retired,
        )
    )


def read_activity(conn: Connection, scheme_id: str, code: str) -> Activity | None:
    r = READ_ACTIVITY.first(conn, {"s": scheme_id, "code": code})
    if r is None:
        return None
    return Activity(
        r.code,
        r.title,
        CoForm(r.form),
        CoSubform(r.subform) if r.subform else None,
        Contribution(r.contribution),
        ServiceArea(r.area),
        Mode(r.mode),
        Voluntariness(r.voluntariness),
        RelationToPaidWork(r.relation),
        bool(r.safeguarding_check),
        r.proxy_code,
        bool(r.retired),
    )


def _claim(r: Any) -> Claim:
    return Claim(
        r.scheme,
        r.id,
        r.member,
        r.logged_by,
        bool(r.on_behalf),
        r.activity,
        date.fromisoformat(r.day),
        r.minutes,
        r.receiver,
        r.note,
        ClaimStatus(r.status),
        bool(r.duplicate),
        r.reason,
        r.decided_by,
        r.entry_seq,
        r.reversal_seq,
        r.attempts,
        bytes(r.note_salt or b""),
    )


def insert_claim(conn: Connection, c: Claim, request_hash: bytes, now_us: int) -> None:
    """Insert a new claim. A twin request in another process that inserted it first is an
    IntegrityError, as Core would raise it (the driver's own error, run raw, is not): the
    ledger's writer then tries again, and the retry finds the twin."""
    try:
        _insert_claim(conn, c, request_hash, now_us)
    except conn.dialect.loaded_dbapi.IntegrityError as clash:
        raise IntegrityError("INSERT INTO tb_claims", None, clash) from clash


def _insert_claim(conn: Connection, c: Claim, request_hash: bytes, now_us: int) -> None:
    INSERT_CLAIM.run(
        conn,
        {
            "scheme": c.scheme,
            "id": c.id,
            "request_hash": request_hash,
            "member": c.member,
            "logged_by": c.logged_by,
            "on_behalf": c.on_behalf,
            "activity": c.activity,
            "day": c.day.isoformat(),
            "minutes": c.minutes,
            "receiver": c.receiver,
            "note": c.note,
            "note_salt": c.note_salt or None,
            "status": c.status.value,
            "duplicate": c.duplicate,
            "reason": c.reason,
            "decided_by": c.decided_by,
            "entry_seq": c.entry_seq,
            "reversal_seq": c.reversal_seq,
            "attempts": c.attempts,
            "created_us": now_us,
        },
    )


def read_claim(conn: Connection, scheme_id: str, claim_id: str) -> tuple[Claim, bytes] | None:
    r = READ_CLAIM.first(conn, {"s": scheme_id, "cid": claim_id})
    return (_claim(r), bytes(r.request_hash)) if r is not None else None


def claims_on_day(conn: Connection, scheme_id: str, member_id: str, day: date) -> list[LoggedClaim]:
    found = CLAIMS_ON_DAY.all(conn, {"s": scheme_id, "m": member_id, "d": day.isoformat()})
    return [
        LoggedClaim(member_id, r.activity, day, r.minutes, ClaimStatus(r.status)) for r in found
    ]


def move_claim(conn: Connection, was: Claim, now: Claim) -> bool:
    """Write `now` over the claim if it is still as `was` read it; False if another decision
    (or a retry) moved it first, so the caller's transaction can refuse its own."""
    assert (was.scheme, was.id) == (now.scheme, now.id)
    cursor = UPDATE_CLAIM.run(
        conn,
        {
            "s": now.scheme,
            "cid": now.id,
            "was": was.status.value,
            "was_attempts": was.attempts,
            "was_reversal": was.reversal_seq,
            "status": now.status.value,
            "reason": now.reason,
            "decided_by": now.decided_by,
            "entry_seq": now.entry_seq,
            "reversal_seq": now.reversal_seq,
            "attempts": now.attempts,
        },
    )
    assert cursor.rowcount in (0, 1)
    return bool(cursor.rowcount == 1)


def list_members(conn: Connection, scheme_id: str, after: str, limit: int) -> list[Member]:
    stmt = (
        select(members.c.id)
        .where(members.c.scheme == scheme_id, members.c.id > after)
        .order_by(members.c.id)
        .limit(limit)
    )
    found = (read_member(conn, scheme_id, member_id) for member_id in conn.execute(stmt).scalars())
    return [m for m in found if m is not None]


def member_by_card(conn: Connection, scheme_id: str, card_number: str) -> Member | None:
    stmt = select(members.c.id).where(
        members.c.scheme == scheme_id, members.c.card_number == card_number
    )
    member_id = conn.execute(stmt).scalars().first()
    return read_member(conn, scheme_id, member_id) if member_id is not None else None


def erase_member(conn: Connection, scheme_id: str, member_id: str) -> None:
    """Right to erasure: blank the person's details, and the notes (and note salts) of claims
    they gave or received.

    The pseudonymous id stays, so the ledger's entries and the claims' history still add up.
    """
    conn.execute(
        update(members)
        .where(members.c.scheme == scheme_id, members.c.id == member_id)
        .values(display_name="(erased)", contact="", card_number="", attributes="{}", erased=True)
    )
    conn.execute(
        update(claims)
        .where(
            claims.c.scheme == scheme_id,
            (claims.c.member == member_id) | (claims.c.receiver == member_id),
        )
        .values(note="", note_salt=None)
    )


ERASED = "the member was erased"  # the reason recorded on their claims still pending


def reject_pending_claims(conn: Connection, scheme_id: str, member_id: str, by: str) -> None:
    """Erasure decides the member's pending claims (given or received): rejected, in the
    erasure's transaction, so a confirmation racing it either committed first or finds none."""
    conn.execute(
        update(claims)
        .where(
            claims.c.scheme == scheme_id,
            (claims.c.member == member_id) | (claims.c.receiver == member_id),
            claims.c.status == ClaimStatus.PENDING.value,
        )
        .values(status=ClaimStatus.REJECTED.value, reason=ERASED, decided_by=by)
    )


def list_activities(conn: Connection, scheme_id: str) -> list[Activity]:
    stmt = select(activities.c.code).where(activities.c.scheme == scheme_id)
    codes = conn.execute(stmt.order_by(activities.c.code)).scalars()
    found = (read_activity(conn, scheme_id, code) for code in codes)
    return [a for a in found if a is not None]


def retire_activity(conn: Connection, scheme_id: str, code: str) -> None:
    conn.execute(
        update(activities)
        .where(activities.c.scheme == scheme_id, activities.c.code == code)
        .values(retired=True)
    )


def list_claims(
    conn: Connection,
    scheme_id: str,
    *,
    member: str | None,
    status: ClaimStatus | None,
    after: tuple[int, str],
    limit: int,
) -> list[tuple[int, Claim]]:
    """(created_us, claim) in the order they were logged, after the cursor `after`."""
    c = claims.c
    stmt = select(claims).where(
        c.scheme == scheme_id,
        (c.created_us > after[0]) | ((c.created_us == after[0]) & (c.id > after[1])),
    )
    if member is not None:
        stmt = stmt.where((c.member == member) | (c.receiver == member))
    if status is not None:
        stmt = stmt.where(c.status == status.value)
    stmt = stmt.order_by(c.created_us, c.id).limit(limit)
    return [(r.created_us, _claim(r)) for r in conn.execute(stmt)]


def pending_claims_before(conn: Connection, scheme_id: str, before_us: int) -> list[str]:
    """Ids of the scheme's claims still pending that were logged before `before_us`."""
    stmt = (
        select(claims.c.id)
        .where(
            claims.c.scheme == scheme_id,
            claims.c.status == ClaimStatus.PENDING.value,
            claims.c.created_us < before_us,
        )
        .order_by(claims.c.created_us)
    )
    return list(conn.execute(stmt).scalars())


def member_ids(conn: Connection, scheme_id: str) -> list[str]:
    stmt = select(members.c.id).where(members.c.scheme == scheme_id).order_by(members.c.id)
    return list(conn.execute(stmt).scalars())


def confirmed_hours_since(
    conn: Connection, scheme_id: str, since: date
) -> list[tuple[str, date, int]]:
    """(member, day, minutes) of the scheme's confirmed, unreversed claims from `since`."""
    stmt = select(claims.c.member, claims.c.day, claims.c.minutes).where(
        claims.c.scheme == scheme_id,
        claims.c.status == ClaimStatus.CONFIRMED.value,
        claims.c.reversal_seq.is_(None),
        claims.c.day >= since.isoformat(),
    )
    return [(r.member, date.fromisoformat(r.day), r.minutes) for r in conn.execute(stmt)]


# ---- offers and requests for help (timebank/matching.py) -------------------------------------

offers = Table(
    "tb_offers",
    metadata,
    Column("scheme", String(63), nullable=False),
    Column("id", String(32), nullable=False),
    Column("request_hash", LargeBinary(32), nullable=False),
    Column("member", String(40), nullable=False),
    Column("skills", Text, nullable=False),  # comma-separated skill slugs
    Column("area", String(40), nullable=False),
    Column("availability", Text, nullable=False),
    Column("note", Text, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    PrimaryKeyConstraint("scheme", "id"),
    Index("ix_tb_offers_member", "scheme", "member"),
)
help_requests = Table(
    "tb_requests",
    metadata,
    Column("scheme", String(63), nullable=False),
    Column("id", String(32), nullable=False),
    Column("request_hash", LargeBinary(32), nullable=False),
    Column("member", String(40), nullable=False),
    Column("skills", Text, nullable=False),
    Column("area", String(40), nullable=False),
    Column("when", Text, nullable=False),
    Column("note", Text, nullable=False),
    Column("open", Boolean, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    PrimaryKeyConstraint("scheme", "id"),
    Index("ix_tb_requests_member", "scheme", "member"),
)


def _offer(r: Any) -> Offer:
    skills = tuple(s for s in r.skills.split(",") if s)
    return Offer(
        r.scheme, r.id, r.member, skills, r.area, r.availability, r.note, r.active, r.created_us
    )


def _help_request(r: Any) -> HelpRequest:
    skills = tuple(s for s in r.skills.split(",") if s)
    return HelpRequest(
        r.scheme, r.id, r.member, skills, r.area, r.when, r.note, r.open, r.created_us
    )


def insert_offer(conn: Connection, o: Offer, request_hash: bytes) -> None:
    conn.execute(
        offers.insert().values(
            scheme=o.scheme,
            id=o.id,
            request_hash=request_hash,
            member=o.member,
            skills=",".join(o.skills),
            area=o.area,
            availability=o.availability,
            note=o.note,
            active=o.active,
            created_us=o.created_us,
        )
    )


def insert_help_request(conn: Connection, r: HelpRequest, request_hash: bytes) -> None:
    conn.execute(
        help_requests.insert().values(
            scheme=r.scheme,
            id=r.id,
            request_hash=request_hash,
            member=r.member,
            skills=",".join(r.skills),
            area=r.area,
            when=r.when,
            note=r.note,
            open=r.open,
            created_us=r.created_us,
        )
    )


def read_offer(conn: Connection, scheme_id: str, offer_id: str) -> tuple[Offer, bytes] | None:
    stmt = select(offers).where(offers.c.scheme == scheme_id, offers.c.id == offer_id)
    r = conn.execute(stmt).first()
    return (_offer(r), r.request_hash) if r is not None else None


def read_help_request(
    conn: Connection, scheme_id: str, request_id: str
) -> tuple[HelpRequest, bytes] | None:
    t = help_requests
    r = conn.execute(select(t).where(t.c.scheme == scheme_id, t.c.id == request_id)).first()
    return (_help_request(r), r.request_hash) if r is not None else None


def _page(
    conn: Connection, t: Table, scheme_id: str, member: str | None, after_id: str, limit: int
) -> list[Any]:
    stmt = select(t).where(t.c.scheme == scheme_id, t.c.id > after_id)
    if member is not None:
        stmt = stmt.where(t.c.member == member)
    return list(conn.execute(stmt.order_by(t.c.id).limit(limit)))


def list_offers(
    conn: Connection,
    scheme_id: str,
    member: str | None = None,
    after_id: str = "",
    limit: int = 50,
) -> list[Offer]:
    """A page of the scheme's offers (withdrawn ones too), by id, after `after_id`."""
    return [_offer(r) for r in _page(conn, offers, scheme_id, member, after_id, limit)]


def list_help_requests(
    conn: Connection,
    scheme_id: str,
    member: str | None = None,
    after_id: str = "",
    limit: int = 50,
) -> list[HelpRequest]:
    """A page of the scheme's requests (closed ones too), by id, after `after_id`."""
    rows = _page(conn, help_requests, scheme_id, member, after_id, limit)
    return [_help_request(r) for r in rows]


def active_offers(conn: Connection, scheme_id: str) -> list[Offer]:
    stmt = select(offers).where(offers.c.scheme == scheme_id, offers.c.active.is_(True))
    return [_offer(r) for r in conn.execute(stmt.order_by(offers.c.id))]


def open_help_requests(conn: Connection, scheme_id: str) -> list[HelpRequest]:
    t = help_requests
    stmt = select(t).where(t.c.scheme == scheme_id, t.c.open.is_(True)).order_by(t.c.id)
    return [_help_request(r) for r in conn.execute(stmt)]


def set_offer_active(conn: Connection, scheme_id: str, offer_id: str, active: bool) -> None:
    stmt = update(offers).where(offers.c.scheme == scheme_id, offers.c.id == offer_id)
    conn.execute(stmt.values(active=active))


def close_help_request(conn: Connection, scheme_id: str, request_id: str) -> None:
    t = help_requests
    conn.execute(update(t).where(t.c.scheme == scheme_id, t.c.id == request_id).values(open=False))


def erase_member_exchanges(conn: Connection, scheme_id: str, member_id: str) -> None:
    """Delete a member's offers and requests (right to erasure: a `TimeBank.erasure_hooks`)."""
    for t in (offers, help_requests):
        conn.execute(t.delete().where(t.c.scheme == scheme_id, t.c.member == member_id))


def claim_records(conn: Connection, scheme_id: str) -> list[ClaimRecord]:
    """Every claim's decision in a scheme, for checking against its ledger."""
    c = claims.c
    stmt = select(c.id, c.status, c.entry_seq, c.reversal_seq).where(c.scheme == scheme_id)
    return [ClaimRecord(r[0], ClaimStatus(r[1]), r[2], r[3]) for r in conn.execute(stmt)]


def claim_entries(conn: Connection, scheme_id: str) -> list[ClaimEntry]:
    """The scheme's ledger entries that name a claim (a ledger holds no claims of another)."""
    return [
        ClaimEntry(seq, kind, ref, claim)
        for seq, kind, ref, claim in entries_naming(conn, scheme_id, "claim")
    ]
