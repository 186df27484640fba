"""The app's SQL: accounts, sessions, failed sign-ins and background jobs.

Functions take a sync `Connection`; async callers use `AsyncConnection.run_sync`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.engine import Connection

from identity.auth import ApiRole

from .accounts import Account, Session

metadata = MetaData()

accounts = Table(
    "web_accounts",
    metadata,
    Column("login", String(64), primary_key=True),
    Column("role", String(20), nullable=False),
    Column("scheme", String(63), nullable=True, index=True),
    Column("member", String(40), nullable=True),
    Column("partner", String(40), nullable=True),
    Column("password_hash", String(200), nullable=False),
    Column("lang", String(8), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("disabled_us", BigInteger, nullable=True),
)

sessions = Table(
    "web_sessions",
    metadata,
    Column("id_sha256", String(64), primary_key=True),
    Column("login", String(64), nullable=False, index=True),
    Column("csrf", String(64), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("expires_us", BigInteger, nullable=False),
    Column("seen_us", BigInteger, nullable=False),
    Column("revoked_us", BigInteger, nullable=True),
)

failures = Table(
    "web_login_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(200), nullable=False),  # "login:<name>" or "addr:<ip>"
    Column("at_us", BigInteger, nullable=False),
    Index("web_login_failures_by_key", "key", "at_us"),
)

jobs = Table(
    "web_jobs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("login", String(64), nullable=False),
    Column("scheme", String(63), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("state", String(12), nullable=False),  # running, done, failed
    Column("done", Integer, nullable=False),
    Column("total", Integer, nullable=False),
    Column("message", Text, nullable=False),
    Column("result", LargeBinary, nullable=True),
    Column("media_type", String(100), nullable=False),
    Column("filename", String(200), nullable=False),
    Column("created_us", BigInteger, nullable=False),
)


def _account(r: Any) -> Account:
    return Account(
        r.login,
        ApiRole(r.role),
        r.scheme,
        r.member,
        r.partner,
        r.password_hash,
        r.lang,
        r.created_us,
        r.disabled_us,
    )


def insert_account(conn: Connection, a: Account) -> None:
    conn.execute(
        accounts.insert().values(
            login=a.login,
            role=a.role.value,
            scheme=a.scheme,
            member=a.member,
            partner=a.partner,
            password_hash=a.password_hash,
            lang=a.lang,
            created_us=a.created_us,
            disabled_us=a.disabled_us,
        )
    )


def read_account(conn: Connection, login: str) -> Account | None:
    r = conn.execute(select(accounts).where(accounts.c.login == login)).first()
    return _account(r) if r is not None else None


def set_password(conn: Connection, login: str, password_hash: str) -> None:
    conn.execute(
        update(accounts).where(accounts.c.login == login).values(password_hash=password_hash)
    )


def disable_account(conn: Connection, login: str, now_us: int) -> None:
    live = accounts.c.disabled_us.is_(None)
    conn.execute(update(accounts).where(accounts.c.login == login, live).values(disabled_us=now_us))


def member_logins(conn: Connection, scheme: str, member: str) -> list[str]:
    where = (accounts.c.scheme == scheme) & (accounts.c.member == member)
    return list(conn.execute(select(accounts.c.login).where(where)).scalars())


def set_lang(conn: Connection, login: str, lang: str) -> None:
    conn.execute(update(accounts).where(accounts.c.login == login).values(lang=lang))


def insert_session(conn: Connection, s: Session) -> None:
    conn.execute(
        sessions.insert().values(
            id_sha256=s.id_sha256,
            login=s.login,
            csrf=s.csrf,
            created_us=s.created_us,
            expires_us=s.expires_us,
            seen_us=s.seen_us,
            revoked_us=s.revoked_us,
        )
    )


def read_session(conn: Connection, id_sha256: str) -> Session | None:
    r = conn.execute(select(sessions).where(sessions.c.id_sha256 == id_sha256)).first()
    if r is None:
        return None
    return Session(
        r.id_sha256, r.login, r.csrf, r.created_us, r.expires_us, r.seen_us, r.revoked_us
    )


def touch_session(conn: Connection, id_sha256: str, now_us: int) -> None:
    conn.execute(update(sessions).where(sessions.c.id_sha256 == id_sha256).values(seen_us=now_us))


def revoke_sessions(conn: Connection, now_us: int, *, id_sha256: str = "", login: str = "") -> None:
    """Revoke one session, or every live session of a login."""
    live = sessions.c.revoked_us.is_(None)
    which = sessions.c.id_sha256 == id_sha256 if id_sha256 else sessions.c.login == login
    conn.execute(update(sessions).where(live, which).values(revoked_us=now_us))


def revoke_login_sessions(conn: Connection, login: str, now_us: int) -> None:
    revoke_sessions(conn, now_us, login=login)


def count_failures(conn: Connection, key: str, since_us: int) -> int:
    stmt = select(func.count()).where(failures.c.key == key, failures.c.at_us >= since_us)
    return int(conn.execute(stmt).scalar_one())


def add_failure(conn: Connection, key: str, now_us: int, forget_before_us: int) -> None:
    conn.execute(failures.insert().values(key=key, at_us=now_us))
    conn.execute(delete(failures).where(failures.c.key == key, failures.c.at_us < forget_before_us))


def clear_failures(conn: Connection, key: str) -> None:
    conn.execute(delete(failures).where(failures.c.key == key))


def insert_job(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(jobs.insert().values(**row))


def update_job(conn: Connection, job_id: str, **values: Any) -> None:
    conn.execute(update(jobs).where(jobs.c.id == job_id).values(**values))


def read_job(conn: Connection, job_id: str) -> dict[str, Any] | None:
    r = conn.execute(select(jobs).where(jobs.c.id == job_id)).first()
    return dict(r._mapping) if r is not None else None


def forget(
    conn: Connection, sessions_before_us: int, failures_before_us: int, jobs_before_us: int
) -> dict[str, int]:
    """Delete sessions begun, failed sign-ins made and jobs started before the given times:
    how many of each went."""
    gone = {}
    for name, table, column, before in (
        ("sessions", sessions, sessions.c.created_us, sessions_before_us),
        ("failures", failures, failures.c.at_us, failures_before_us),
        ("jobs", jobs, jobs.c.created_us, jobs_before_us),
    ):
        gone[name] = conn.execute(delete(table).where(column < before)).rowcount
    return gone
