"""Identity's SQL: bearer tokens (only the SHA-256 of each secret is stored), and failed
authentications by address, which every process counts (see `identity.tokens`).

Functions take a sync `Connection`; async callers use `AsyncConnection.run_sync`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.engine import Connection

from .auth import ApiRole, TokenRecord

metadata = MetaData()

tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("secret_sha256", String(64), nullable=False),
    Column("role", String(20), nullable=False),
    Column("scheme", String(63), nullable=True, index=True),
    Column("member", String(40), nullable=True),
    Column("partner", String(40), nullable=True),
    Column("label", String(200), nullable=False),
    Column("created_by", String(32), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("revoked_us", BigInteger, nullable=True),
    Column("expires_us", BigInteger, nullable=True),  # None: until revoked (migration 0003)
)

failures = Table(
    "api_auth_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("address", String(64), nullable=False),
    Column("at_us", BigInteger, nullable=False),
    Index("api_auth_failures_by_address", "address", "at_us"),
    Index("api_auth_failures_by_time", "at_us"),
)  # migration 0004


def record_failure(conn: Connection, address: str, now_us: int, since_us: int) -> int:
    """Count a failed authentication from `address` and forget every one made at or before
    `since_us`: how many `address` has made after it, in every process."""
    conn.execute(delete(failures).where(failures.c.at_us <= since_us))
    conn.execute(failures.insert().values(address=address[:64], at_us=now_us))
    mine = (failures.c.address == address[:64]) & (failures.c.at_us > since_us)
    return int(conn.execute(select(func.count()).where(mine)).scalar_one())


def _record(r: Any) -> TokenRecord:
    return TokenRecord(
        r.id,
        r.secret_sha256,
        ApiRole(r.role),
        r.scheme,
        r.member,
        r.label,
        r.created_by,
        r.created_us,
        r.revoked_us,
        r.partner,
        r.expires_us,
    )


def insert_token(conn: Connection, t: TokenRecord) -> None:
    conn.execute(
        tokens.insert().values(
            id=t.id,
            secret_sha256=t.secret_sha256,
            role=t.role.value,
            scheme=t.scheme,
            member=t.member,
            label=t.label,
            created_by=t.created_by,
            created_us=t.created_us,
            revoked_us=t.revoked_us,
            partner=t.partner,
            expires_us=t.expires_us,
        )
    )


def read_token(conn: Connection, token_id: str) -> TokenRecord | None:
    r = conn.execute(select(tokens).where(tokens.c.id == token_id)).first()
    return _record(r) if r is not None else None


def list_tokens(conn: Connection, scheme: str | None, after: str, limit: int) -> list[TokenRecord]:
    stmt = select(tokens).where(tokens.c.id > after).order_by(tokens.c.id).limit(limit)
    if scheme is not None:
        stmt = stmt.where(tokens.c.scheme == scheme)
    return [_record(r) for r in conn.execute(stmt)]


FIRST_TOKEN_LOCK = 7_305_122  # pg_advisory_xact_lock key: the admin's "first token" check


def has_token(conn: Connection, scheme: str, role: ApiRole, partner: str | None) -> bool:
    """Whether `scheme` holds any token of `role` (for a partner's, of that partner), revoked
    or not. On PostgreSQL, callers checking before an insert are serialised till COMMIT (on
    SQLite the writer's BEGIN IMMEDIATE already is)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({FIRST_TOKEN_LOCK})")
    found = select(tokens.c.id).where(tokens.c.scheme == scheme, tokens.c.role == role.value)
    if partner is not None:
        found = found.where(tokens.c.partner == partner)
    return conn.execute(found.limit(1)).first() is not None


def revoke_token(conn: Connection, token_id: str, now_us: int) -> None:
    conn.execute(
        update(tokens)
        .where(tokens.c.id == token_id, tokens.c.revoked_us.is_(None))
        .values(revoked_us=now_us)
    )


def revoke_member_tokens(conn: Connection, scheme: str, member: str, now_us: int) -> list[str]:
    """Revoke every live token of one member (erasure); returns their ids."""
    live = (tokens.c.scheme == scheme) & (tokens.c.member == member) & tokens.c.revoked_us.is_(None)
    ids = list(conn.execute(select(tokens.c.id).where(live)).scalars())
    conn.execute(update(tokens).where(live).values(revoked_us=now_us))
    return ids
