"""The account book: make accounts, sign in and out, find a request's session, run jobs' rows."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from identity.auth import ApiRole
from ledger import Database, IdempotencyConflict, NotFound

from . import storage
from .accounts import (
    LANGUAGES,
    LOGIN,
    Account,
    Session,
    hash_password,
    new_session,
    password_matches,
    session_digest,
    throttled,
    window_start,
)

KEEP_DAYS = {"sessions": 30, "jobs": 7}  # then `forget_old` deletes them


class SignInRefused(Exception):
    """A sign-in that did not succeed; `throttled` when too many attempts failed recently."""

    def __init__(self, throttled: bool) -> None:
        super().__init__("too many failed attempts" if throttled else "wrong login or password")
        self.throttled = throttled


class AccountBook:
    def __init__(self, db: Database, clock: Callable[[], int], *, owns_db: bool = False) -> None:
        self._db = db
        self._owns_db = owns_db  # opened by `open(url)`: closed with the book
        self._engine = db.writer  # on SQLite, takes the write lock at BEGIN
        self._read = db.reader
        self._clock = clock

    @classmethod
    async def on(cls, db: Database, clock: Callable[[], int]) -> AccountBook:
        """The account book on `db` (its tables made if missing)."""
        await db.create_tables(storage.metadata)
        return cls(db, clock)

    @classmethod
    async def open(cls, url: str, clock: Callable[[], int]) -> AccountBook:
        """The account book on a database of its own at `url`, closed with the book."""
        db = await Database.open(url)
        await db.create_tables(storage.metadata)
        return cls(db, clock, owns_db=True)

    async def close(self) -> None:
        if self._owns_db:
            await self._db.close()

    async def create(
        self,
        login: str,
        password: str,
        role: ApiRole,
        scheme: str | None,
        *,
        member: str | None = None,
        partner: str | None = None,
        lang: str = "",
    ) -> Account:
        """A new account; the same call again (same scope) returns it unchanged."""
        if not LOGIN.fullmatch(login):
            raise ValueError("a login is 3-64 of a-z 0-9 . _ @ -, starting with a letter or digit")
        if lang not in ("", *LANGUAGES):
            raise ValueError(f"language is one of {LANGUAGES}")
        digest = await asyncio.to_thread(hash_password, password)  # Argon2 frees the GIL
        account = Account(login, role, scheme, member, partner, digest, lang, self._clock())
        async with self._engine.begin() as conn:
            prior = await conn.run_sync(storage.read_account, login)
            if prior is None:
                await conn.run_sync(storage.insert_account, account)
                return account
        if (prior.role, prior.scheme, prior.member, prior.partner) != (
            role,
            scheme,
            member,
            partner,
        ):
            raise IdempotencyConflict(f"login {login!r} is taken", field="login")
        return prior

    async def account(self, login: str) -> Account:
        async with self._read.connect() as conn:
            found = await conn.run_sync(storage.read_account, login)
        if found is None:
            raise NotFound(f"no account {login!r}", field="login")
        return found

    async def sign_in(self, login: str, password: str, address: str) -> tuple[str, Account]:
        """(the session cookie, the account); SignInRefused after a wrong password or too many
        failures for this login or this address in the window (the password is then not even
        checked, so guessing gains nothing)."""
        now = self._clock()
        keys = (f"login:{login.lower()[:64]}", f"addr:{address[:64]}")
        async with self._engine.begin() as conn:
            counts = [
                await conn.run_sync(storage.count_failures, k, window_start(now)) for k in keys
            ]
            if any(throttled(c) for c in counts):
                raise SignInRefused(throttled=True)
            account = await conn.run_sync(storage.read_account, login.lower())
            stored = account.password_hash if account and account.disabled_us is None else None
            matches = await asyncio.to_thread(password_matches, password, stored)
            if account is None or not matches:
                for k in keys:
                    await conn.run_sync(storage.add_failure, k, now, window_start(now))
                failed = True
            else:
                failed = False
                await conn.run_sync(storage.clear_failures, keys[0])
                cookie, session = new_session(account.login, now)
                await conn.run_sync(storage.insert_session, session)
        if failed:  # raised after the commit, so the failure is counted
            raise SignInRefused(throttled=False)
        assert account is not None
        return cookie, account

    async def session(self, cookie: str) -> tuple[Account, Session] | None:
        """The live session behind a cookie, and its account; None if unknown, expired, idle too
        long, revoked, or its account is disabled. Marks the session as seen."""
        if not cookie or len(cookie) > 100:
            return None
        now = self._clock()
        async with self._read.connect() as conn:
            session = await conn.run_sync(storage.read_session, session_digest(cookie))
            if session is None or not session.live(now):
                return None
            account = await conn.run_sync(storage.read_account, session.login)
            if account is None or account.disabled_us is not None:
                return None
        if now - session.seen_us > 60_000_000:  # at most one write a minute per session
            async with self._engine.begin() as conn:
                await conn.run_sync(storage.touch_session, session.id_sha256, now)
        return account, session

    async def sign_out(self, cookie: str) -> None:
        async with self._engine.begin() as conn:
            await conn.run_sync(
                lambda c: storage.revoke_sessions(
                    c, self._clock(), id_sha256=session_digest(cookie)
                )
            )

    async def revoke_login(self, login: str) -> None:
        """End every session of an account (password change, lost phone, erasure)."""
        async with self._engine.begin() as conn:
            await conn.run_sync(lambda c: storage.revoke_sessions(c, self._clock(), login=login))

    async def disable(self, login: str) -> None:
        """No more sign-ins for this account (erasure, a leaver) and every session ends."""
        now = self._clock()
        async with self._engine.begin() as conn:
            await conn.run_sync(storage.disable_account, login, now)
            await conn.run_sync(lambda c: storage.revoke_sessions(c, now, login=login))

    async def disable_member(self, scheme: str, member: str) -> None:
        """Disable every account acting as this member (their erasure)."""
        now = self._clock()
        async with self._engine.begin() as conn:
            logins = await conn.run_sync(storage.member_logins, scheme, member)
            for login in logins:
                await conn.run_sync(storage.disable_account, login, now)
                await conn.run_sync(storage.revoke_login_sessions, login, now)

    async def set_password(self, login: str, password: str) -> None:
        """A new password; every session of the account ends."""
        digest = await asyncio.to_thread(hash_password, password)
        async with self._engine.begin() as conn:
            await conn.run_sync(storage.set_password, login, digest)
            await conn.run_sync(lambda c: storage.revoke_sessions(c, self._clock(), login=login))

    async def set_lang(self, login: str, lang: str) -> None:
        if lang not in ("", *LANGUAGES):
            raise ValueError(f"language is one of {LANGUAGES}")
        async with self._engine.begin() as conn:
            await conn.run_sync(storage.set_lang, login, lang)

    async def forget_old(self) -> dict[str, int]:
        """Delete what is kept only for a while (`KEEP_DAYS`): session records (ended 12 hours
        after they began, at the latest), failed sign-ins past their window, and finished jobs
        with their downloads (reports can hold members' data). How many of each went."""
        now = self._clock()
        before = {name: now - keep * 86_400_000_000 for name, keep in KEEP_DAYS.items()}
        async with self._engine.begin() as conn:
            return await conn.run_sync(
                storage.forget, before["sessions"], window_start(now), before["jobs"]
            )

    async def start_job(self, row: dict[str, Any]) -> None:
        async with self._engine.begin() as conn:
            await conn.run_sync(storage.insert_job, row)

    async def update_job(self, job_id: str, **values: Any) -> None:
        async with self._engine.begin() as conn:
            await conn.run_sync(lambda c: storage.update_job(c, job_id, **values))

    async def job(self, job_id: str) -> dict[str, Any] | None:
        async with self._read.connect() as conn:
            return await conn.run_sync(storage.read_job, job_id)
