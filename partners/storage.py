"""The partners' SQL: organisations, venues, offers, agreements, vouchers and settlements.

Functions take a sync `Connection`; they run on the time bank's reader threads (`TimeBank.query`)
or in the ledger writer's transaction (`LedgerStore.run`, or `then=` on a voucher's entry).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    false,
    func,
    literal_column,
    select,
    update,
)
from sqlalchemy.engine import Connection

from ledger import Entry, Prepared

from .consistency import VoucherRecord
from .model import Agreement, Offer, Partner, Sector, Venue, Voucher, VoucherState

metadata = MetaData()

partners = Table(
    "pt_partners",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("sector", String(20), nullable=False),
)
venues = Table(
    "pt_venues",
    metadata,
    Column("partner", String(40), nullable=False),
    Column("id", String(40), nullable=False),
    Column("name", String(200), nullable=False),
    Column("area", String(40), nullable=False),
    PrimaryKeyConstraint("partner", "id"),
)
offers = Table(
    "pt_offers",
    metadata,
    Column("partner", String(40), nullable=False),
    Column("id", String(40), nullable=False),
    Column("title", String(200), nullable=False),
    Column("credits", Integer, nullable=False),
    Column("cash_price_pence", Integer, nullable=False),
    Column("starts", String(10), nullable=False),
    Column("ends", String(10), nullable=True),
    Column("per_day", Integer, nullable=True),
    Column("per_week", Integer, nullable=True),
    Column("eligibility", Text, nullable=False),
    PrimaryKeyConstraint("partner", "id"),
)
agreements = Table(
    "pt_agreements",
    metadata,
    Column("scheme", String(63), nullable=False),
    Column("partner", String(40), nullable=False),
    Column("offers", Text, nullable=False),  # ids, comma-separated
    Column("venues", Text, nullable=False),
    Column("starts", String(10), nullable=False),
    Column("ends", String(10), nullable=True),
    Column("voucher_hours", Integer, nullable=False),
    Column("monthly_cap", Integer, nullable=True),
    PrimaryKeyConstraint("scheme", "partner"),
)
vouchers = Table(
    "pt_vouchers",
    metadata,
    Column("scheme", String(63), nullable=False),
    Column("code", String(9), nullable=False),
    Column("member", String(40), nullable=False),
    Column("partner", String(40), nullable=False),
    Column("offer", String(40), nullable=False),
    Column("minutes", Integer, nullable=False),
    Column("reservation", BigInteger, nullable=False),
    Column("expires_us", BigInteger, nullable=False),
    Column("issued_us", BigInteger, nullable=False),
    Column("voided", Boolean, nullable=False),
    PrimaryKeyConstraint("scheme", "code"),
    UniqueConstraint("scheme", "reservation"),
    Index("pt_vouchers_by_offer", "partner", "offer", "issued_us"),
)
settlements = Table(
    "pt_settlements",
    metadata,
    Column("scheme", String(63), nullable=False),
    Column("code", String(9), nullable=False),
    Column("venue", String(40), nullable=False),
    Column("entry_seq", BigInteger, nullable=False),
    Column("settled_us", BigInteger, nullable=False),
    Column("signature", Text, nullable=False),  # the partner's detached signature, if it sent one
    PrimaryKeyConstraint("scheme", "code"),
)


partner_keys = Table(
    "pt_partner_keys",
    metadata,
    Column("partner", String(40), nullable=False),
    Column("key_id", String(16), nullable=False),
    Column("public_key", String(64), nullable=False),  # hex of the raw 32 bytes
    PrimaryKeyConstraint("partner", "key_id"),
)
uploads = Table(
    "pt_reconciliations",
    metadata,
    Column("scheme", String(63), nullable=False),
    Column("partner", String(40), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("uploaded_us", BigInteger, nullable=False),
    PrimaryKeyConstraint("scheme", "partner", "digest"),
)


retirements = Table(
    "pt_retirements",
    metadata,
    Column("scheme", String(63), nullable=False),
    Column("request", String(300), nullable=False),  # the retire request's idempotency key
    Column("entry_seq", BigInteger, nullable=False),
    PrimaryKeyConstraint("scheme", "request"),
)


# The busy statements: prepared (ledger/prepared.py), so rows come back untyped; parameters
# bound by name at execution.
_P = bindparam
READ_OFFER = Prepared(select(offers).where(offers.c.partner == _P("p"), offers.c.id == _P("o")))
# The offer's row held till COMMIT on PostgreSQL (nothing on SQLite, whose writers take turns):
# vouchers of one offer are counted in every scheme, whose ledgers' writers lock separately.
HOLD_OFFER = Prepared(
    select(offers.c.id).where(offers.c.partner == _P("p"), offers.c.id == _P("o")).with_for_update()
)
READ_AGREEMENT = Prepared(
    select(agreements).where(agreements.c.scheme == _P("s"), agreements.c.partner == _P("p"))
)
VOUCHER_BY_CODE = Prepared(
    select(vouchers).where(vouchers.c.scheme == _P("s"), vouchers.c.code == _P("c"))
)
VOUCHER_BY_RESERVATION = Prepared(
    select(vouchers).where(vouchers.c.scheme == _P("s"), vouchers.c.reservation == _P("r"))
)
READ_SETTLEMENT = Prepared(
    select(settlements).where(settlements.c.scheme == _P("s"), settlements.c.code == _P("c"))
)
INSERT_VOUCHER = Prepared(vouchers.insert().values({c.name: _P(c.name) for c in vouchers.c}))
INSERT_SETTLEMENT = Prepared(
    settlements.insert().values({c.name: _P(c.name) for c in settlements.c})
)
VOUCHERS_ISSUED = Prepared(
    select(func.count()).where(
        vouchers.c.partner == _P("p"),
        vouchers.c.offer == _P("o"),
        vouchers.c.issued_us >= _P("start"),
        vouchers.c.issued_us < _P("end"),
        vouchers.c.voided == false(),
    )
)
MINUTES_SETTLED = Prepared(
    select(func.coalesce(func.sum(vouchers.c.minutes), literal_column("0")))
    .select_from(
        vouchers.join(
            settlements,
            (vouchers.c.scheme == settlements.c.scheme) & (vouchers.c.code == settlements.c.code),
        )
    )
    .where(
        vouchers.c.scheme == _P("s"),
        vouchers.c.partner == _P("p"),
        settlements.c.settled_us >= _P("start"),
        settlements.c.settled_us < _P("end"),
    )
)


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def insert_partner(conn: Connection, p: Partner) -> None:
    conn.execute(partners.insert().values(id=p.id, name=p.name, sector=p.sector.value))


def read_partner(conn: Connection, partner_id: str) -> Partner | None:
    r = conn.execute(select(partners).where(partners.c.id == partner_id)).first()
    return Partner(r.id, r.name, Sector(r.sector)) if r else None


def insert_venue(conn: Connection, v: Venue) -> None:
    conn.execute(venues.insert().values(partner=v.partner, id=v.id, name=v.name, area=v.area))


def read_venue(conn: Connection, partner_id: str, venue_id: str) -> Venue | None:
    stmt = select(venues).where(venues.c.partner == partner_id, venues.c.id == venue_id)
    r = conn.execute(stmt).first()
    return Venue(r.partner, r.id, r.name, r.area) if r else None


def insert_offer(conn: Connection, o: Offer) -> None:
    conn.execute(
        offers.insert().values(
            partner=o.partner,
            id=o.id,
            title=o.title,
            credits=o.credits,
            cash_price_pence=o.cash_price_pence,
            starts=o.starts.isoformat(),
            ends=o.ends.isoformat() if o.ends else None,
            per_day=o.per_day,
            per_week=o.per_week,
            eligibility=o.eligibility,
        )
    )


def hold_offer(conn: Connection, partner_id: str, offer_id: str) -> None:
    """Take the offer's lock (PostgreSQL) before counting its vouchers against its capacity."""
    HOLD_OFFER.first(conn, {"p": partner_id, "o": offer_id})


def read_offer(conn: Connection, partner_id: str, offer_id: str) -> Offer | None:
    r = READ_OFFER.first(conn, {"p": partner_id, "o": offer_id})
    if r is None:
        return None
    return Offer(
        r.partner,
        r.id,
        r.title,
        r.credits,
        r.cash_price_pence,
        date.fromisoformat(r.starts),
        _day(r.ends),
        r.per_day,
        r.per_week,
        r.eligibility,
    )


def upsert_agreement(conn: Connection, a: Agreement) -> None:
    conn.execute(
        agreements.delete().where(
            agreements.c.scheme == a.scheme, agreements.c.partner == a.partner
        )
    )
    conn.execute(
        agreements.insert().values(
            scheme=a.scheme,
            partner=a.partner,
            offers=",".join(sorted(a.offers)),
            venues=",".join(sorted(a.venues)),
            starts=a.starts.isoformat(),
            ends=a.ends.isoformat() if a.ends else None,
            voucher_hours=a.voucher_hours,
            monthly_cap=a.monthly_cap,
        )
    )


def read_agreement(conn: Connection, scheme: str, partner_id: str) -> Agreement | None:
    r = READ_AGREEMENT.first(conn, {"s": scheme, "p": partner_id})
    if r is None:
        return None
    return Agreement(
        r.scheme,
        r.partner,
        frozenset(r.offers.split(",")),
        frozenset(r.venues.split(",")),
        date.fromisoformat(r.starts),
        _day(r.ends),
        r.voucher_hours,
        r.monthly_cap,
    )


def list_agreements(conn: Connection, scheme: str) -> list[Agreement]:
    c = agreements.c
    ids = conn.execute(select(c.partner).where(c.scheme == scheme).order_by(c.partner)).scalars()
    found = (read_agreement(conn, scheme, partner_id) for partner_id in ids)
    return [a for a in found if a is not None]


def insert_voucher(conn: Connection, v: Voucher, issued_us: int) -> None:
    INSERT_VOUCHER.run(
        conn,
        {
            "scheme": v.scheme,
            "code": v.code,
            "member": v.member,
            "partner": v.partner,
            "offer": v.offer,
            "minutes": v.minutes,
            "reservation": v.reservation,
            "expires_us": v.expires_us,
            "issued_us": issued_us,
            "voided": False,
        },
    )


def mark_voided(conn: Connection, scheme: str, code: str) -> None:
    c = vouchers.c
    conn.execute(update(vouchers).where(c.scheme == scheme, c.code == code).values(voided=True))


def vouchers_issued(conn: Connection, partner: str, offer: str, start_us: int, end_us: int) -> int:
    """Vouchers for an offer issued in [start, end), in every scheme, voided ones not counted."""
    found = VOUCHERS_ISSUED.first(
        conn, {"p": partner, "o": offer, "start": start_us, "end": end_us}
    )
    return int(found[0])


def minutes_settled(conn: Connection, scheme: str, partner: str, start_us: int, end_us: int) -> int:
    """Minutes a partner took from a scheme in settlements in [start, end)."""
    params = {"s": scheme, "p": partner, "start": start_us, "end": end_us}
    return int(MINUTES_SETTLED.first(conn, params)[0])


def minutes_outstanding(conn: Connection, scheme: str, partner: str, now_us: int) -> int:
    """Minutes in a scheme's vouchers for a partner that may still be settled: not settled,
    not voided, not past their expiry."""
    v, s = vouchers.c, settlements.c
    unsettled = ~select(s.code).where(s.scheme == v.scheme, s.code == v.code).exists()
    stmt = select(func.coalesce(func.sum(v.minutes), literal_column("0"))).where(
        v.scheme == scheme,
        v.partner == partner,
        v.voided == false(),
        v.expires_us > now_us,
        unsettled,
    )
    return int(conn.execute(stmt).scalar_one())


def _voucher(r: Any, settled: Any) -> Voucher:
    return Voucher(
        r.scheme,
        r.code,
        r.member,
        r.partner,
        r.offer,
        r.minutes,
        r.reservation,
        r.expires_us,
        venue=settled.venue if settled else None,
        settled_by=settled.entry_seq if settled else None,
        settled_us=settled.settled_us if settled else None,
    )


def read_voucher(conn: Connection, scheme: str, code: str, reservation: int = 0) -> Voucher | None:
    """A voucher by its code or by its reservation's sequence number (state not filled in)."""
    if code:
        r = VOUCHER_BY_CODE.first(conn, {"s": scheme, "c": code})
    else:
        r = VOUCHER_BY_RESERVATION.first(conn, {"s": scheme, "r": reservation})
    if r is None:
        return None
    settled = READ_SETTLEMENT.first(conn, {"s": scheme, "c": r.code})
    return _voucher(r, settled)


def insert_settlement(
    conn: Connection, scheme: str, code: str, venue: str, entry: Entry, signature: str
) -> None:
    INSERT_SETTLEMENT.run(
        conn,
        {
            "scheme": scheme,
            "code": code,
            "venue": venue,
            "entry_seq": entry.seq,
            "settled_us": entry.time_us,
            "signature": signature,
        },
    )


def list_venues(conn: Connection, partner_id: str) -> list[Venue]:
    stmt = select(venues).where(venues.c.partner == partner_id).order_by(venues.c.id)
    return [Venue(r.partner, r.id, r.name, r.area) for r in conn.execute(stmt)]


def list_offers(conn: Connection, partner_id: str) -> list[Offer]:
    ids = conn.execute(select(offers.c.id).where(offers.c.partner == partner_id)).scalars()
    found = (read_offer(conn, partner_id, offer_id) for offer_id in ids)
    return [o for o in found if o is not None]


def settled_vouchers(
    conn: Connection, scheme: str, partner: str, start_us: int, end_us: int
) -> list[Voucher]:
    """A partner's vouchers settled in [start, end] (their state: posted)."""
    v, s = vouchers.c, settlements.c
    stmt = (
        select(vouchers, s.venue, s.entry_seq, s.settled_us)
        .select_from(vouchers.join(settlements, (v.scheme == s.scheme) & (v.code == s.code)))
        .where(
            v.scheme == scheme,
            v.partner == partner,
            s.settled_us >= start_us,
            s.settled_us <= end_us,
        )
        .order_by(s.settled_us)
    )
    return [replace(_voucher(r, r), state=VoucherState.SETTLED) for r in conn.execute(stmt)]


def insert_key(conn: Connection, partner: str, key_id: str, public_key: bytes) -> None:
    c = partner_keys.c
    found = conn.execute(select(c.key_id).where(c.partner == partner, c.key_id == key_id)).first()
    if found is None:
        conn.execute(
            partner_keys.insert().values(
                partner=partner, key_id=key_id, public_key=public_key.hex()
            )
        )


def read_keys(conn: Connection, partner: str) -> list[tuple[str, bytes]]:
    c = partner_keys.c
    stmt = select(c.key_id, c.public_key).where(c.partner == partner).order_by(c.key_id)
    return [(r.key_id, bytes.fromhex(r.public_key)) for r in conn.execute(stmt)]


def record_upload(conn: Connection, scheme: str, partner: str, digest: str, now_us: int) -> bool:
    """Remember an uploaded till file; False if the same file was uploaded before."""
    c = uploads.c
    where = (c.scheme == scheme) & (c.partner == partner) & (c.digest == digest)
    if conn.execute(select(c.digest).where(where)).first() is not None:
        return False
    conn.execute(
        uploads.insert().values(scheme=scheme, partner=partner, digest=digest, uploaded_us=now_us)
    )
    return True


def record_retirement(conn: Connection, scheme: str, request: str, entry_seq: int) -> None:
    conn.execute(retirements.insert().values(scheme=scheme, request=request, entry_seq=entry_seq))


def read_retirement(conn: Connection, scheme: str, request: str) -> int | None:
    c = retirements.c
    stmt = select(c.entry_seq).where(c.scheme == scheme, c.request == request)
    found = conn.execute(stmt).scalar()
    return int(found) if found is not None else None


def voucher_records(conn: Connection, scheme: str) -> list[VoucherRecord]:
    """Every voucher of a scheme with its settlement's entry, for checking against the ledger."""
    v, s = vouchers.c, settlements.c
    stmt = (
        select(v.code, v.reservation, v.voided, s.entry_seq)
        .select_from(vouchers.outerjoin(settlements, (s.scheme == v.scheme) & (s.code == v.code)))
        .where(v.scheme == scheme)
    )
    return [VoucherRecord(r[0], int(r[1]), bool(r[2]), r[3]) for r in conn.execute(stmt)]
