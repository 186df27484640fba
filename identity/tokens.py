"""The token book: make, find and revoke bearer tokens, and authenticate a request's header.

Successful lookups are cached in-process for `CACHE_SECONDS`; a revocation made through this
process takes effect at once, one made by another process within that time. An expired token
is refused at once everywhere (the expiry is checked on every request).

Failed authentications are counted per client address (`Throttle`): after `MAX_FAILURES` in
`WINDOW_SECONDS`, every request from that address that needs a token is refused with 429 and
Retry-After, before its token is even looked at, until the window ends. Each process counts in
memory (at most `THROTTLED_CLIENTS` addresses) and checks that first, so a throttled address
costs no query; each failure is also written to the database, and the count every process has
made taken back, so N processes allow at most `MAX_FAILURES` + N - 1 guesses, not N times as
many. Only failures touch the database; a good token never does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ledger import Database, IdempotencyConflict, NotFound

from . import storage
from .auth import (
    ApiRole,
    Principal,
    Throttle,
    TokenRecord,
    a_role,
    digest,
    new_token,
    parse_bearer,
    secret_matches,
)
from .refusals import Forbidden, Throttled, Unauthenticated

CACHE_SECONDS = 30.0
CACHE_SIZE = 10_000
MAX_FAILURES = 20  # failed authentications from one address...
WINDOW_SECONDS = 600  # ...in ten minutes, and it is refused (429) for the rest of them
THROTTLED_CLIENTS = 10_000  # addresses remembered at most

log = logging.getLogger("timebank.api")


class TokenBook:
    def __init__(
        self,
        db: Database,
        clock: Callable[[], int],
        bootstrap_admin: str | None = None,
        *,
        owns_db: bool = False,
    ) -> None:
        self._db = db
        self._owns_db = owns_db  # opened by `open(url)`: closed with the book
        self._engine = db.writer
        self._read = db.reader
        self._clock = clock
        self._bootstrap = digest(bootstrap_admin) if bootstrap_admin else None
        self._cache: dict[str, tuple[float, TokenRecord]] = {}
        self.throttle = Throttle(MAX_FAILURES, WINDOW_SECONDS * 1_000_000, THROTTLED_CLIENTS)

    @classmethod
    async def on(
        cls, db: Database, clock: Callable[[], int], bootstrap_admin: str | None = None
    ) -> TokenBook:
        """The token book on `db` (its tables made if missing)."""
        await db.create_tables(storage.metadata)
        return cls(db, clock, bootstrap_admin)

    @classmethod
    async def open(
        cls, url: str, clock: Callable[[], int], bootstrap_admin: str | None = None
    ) -> TokenBook:
        """The token book on a database of its own at `url`, closed with the book."""
        db = await Database.open(url)
        await db.create_tables(storage.metadata)
        return cls(db, clock, bootstrap_admin, owns_db=True)

    async def close(self) -> None:
        if self._owns_db:
            await self._db.close()

    async def authenticate(self, header: str | None, client: str = "") -> Principal:
        """The principal behind an `Authorization` header; 401 for anything else, 429 while
        `client` (the caller's address) has failed too often (see `Throttle`)."""
        if not header:
            raise Unauthenticated("send Authorization: Bearer <token>", field="authorization")
        now = self._clock()
        wait = self.throttle.wait_seconds(client, now)
        if wait:
            raise Throttled(
                f"too many failed authentications from this address: try again in {wait} s",
                wait,
                field="authorization",
            )
        try:
            return await self._principal(header, now)
        except Unauthenticated:
            self.throttle.failed(client, now)
            await self._count_everywhere(client, now)
            raise

    async def _count_everywhere(self, client: str, now: int) -> None:
        """Record a failure where every process sees it, and take their count for `client`."""
        since = now - WINDOW_SECONDS * 1_000_000
        try:
            async with self._engine.begin() as conn:
                seen = await conn.run_sync(storage.record_failure, client, now, since)
        except SQLAlchemyError:  # the refusal stands; only the count across processes is lost
            log.warning("could not record a failed authentication", exc_info=True)
            return
        self.throttle.at_least(client, seen)

    async def _principal(self, header: str, now: int) -> Principal:
        bootstrap = self._bootstrap and header.startswith("Bearer ")
        if bootstrap and secret_matches(header[7:].strip(), self._bootstrap or ""):
            return Principal("bootstrap", ApiRole.ADMIN, None, None)
        parsed = parse_bearer(header)
        if parsed is None:
            raise Unauthenticated("the bearer token is malformed", field="authorization")
        token_id, secret = parsed
        record = await self._lookup(token_id)
        if record is None or record.revoked_us is not None:
            raise Unauthenticated("the token is unknown or revoked", field="authorization")
        if not secret_matches(secret, record.secret_sha256):
            raise Unauthenticated("the token is unknown or revoked", field="authorization")
        if record.expired(now):
            raise Unauthenticated("the token has expired", field="authorization")
        return record.principal()

    async def _lookup(self, token_id: str) -> TokenRecord | None:
        hit = self._cache.get(token_id)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        async with self._read.connect() as conn:
            record = await conn.run_sync(storage.read_token, token_id)
        if record is not None:
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            self._cache[token_id] = (time.monotonic() + CACHE_SECONDS, record)
        return record

    async def create(
        self,
        role: ApiRole,
        scheme: str | None,
        member: str | None,
        label: str,
        *,
        created_by: str,
        idempotency_key: str,
        partner: str | None = None,
        expires_us: int | None = None,
        first_only: bool = False,
    ) -> tuple[TokenRecord, str | None]:
        """Store a new token; returns its record and the token itself, shown only this once.

        A retry with the same key returns the same record and no token: only its hash is kept.
        With `first_only` (the deployment admin's scheme-admin and partner-staff tokens), 403
        once the scheme (or the partner in it) has had a token of that role: its own people
        make the rest.
        """
        token_id, token, secret_hash = new_token(f"{created_by}\0{idempotency_key}")
        record = TokenRecord(
            token_id,
            secret_hash,
            role,
            scheme,
            member,
            label,
            created_by,
            self._clock(),
            partner=partner,
            expires_us=expires_us,
        )
        try:
            async with self._engine.begin() as conn:
                prior = await conn.run_sync(storage.read_token, token_id)
                if prior is None:
                    if first_only and scheme is not None:
                        await conn.run_sync(_first, scheme, role, partner)
                    await conn.run_sync(storage.insert_token, record)
                    return record, token
        except IntegrityError:  # a twin request (another process) stored it first: its answer
            async with self._engine.begin() as conn:
                prior = await conn.run_sync(storage.read_token, token_id)
        assert prior is not None, token_id
        same = (
            prior.role,
            prior.scheme,
            prior.member,
            prior.label,
            prior.partner,
            prior.expires_us,
        ) == (role, scheme, member, label, partner, expires_us)
        if not same:
            raise IdempotencyConflict(
                "idempotency key already used for another token", field="idempotency_key"
            )
        return prior, None

    async def token(self, token_id: str) -> TokenRecord:
        async with self._read.connect() as conn:
            record = await conn.run_sync(storage.read_token, token_id)
        if record is None:
            raise NotFound(f"no token {token_id!r}", field="token")
        return record

    async def tokens(self, scheme: str | None, *, after: str, limit: int) -> list[TokenRecord]:
        async with self._read.connect() as conn:
            return await conn.run_sync(storage.list_tokens, scheme, after, limit)

    async def revoke(self, token_id: str) -> TokenRecord:
        async with self._engine.begin() as conn:
            await conn.run_sync(storage.revoke_token, token_id, self._clock())
        self._cache.pop(token_id, None)
        return await self.token(token_id)

    async def revoke_member(self, scheme: str, member: str) -> None:
        async with self._engine.begin() as conn:
            ids = await conn.run_sync(storage.revoke_member_tokens, scheme, member, self._clock())
        for token_id in ids:
            self._cache.pop(token_id, None)


def _first(conn: Connection, scheme: str, role: ApiRole, partner: str | None) -> None:
    """403 unless this is the first token of `role` in `scheme` (of `partner`, for staff)."""
    if storage.has_token(conn, scheme, role, partner):
        whose = f"partner {partner}" if partner else f"scheme {scheme}"
        maker = "its partner staff or the scheme admin" if partner else "its scheme admin"
        raise Forbidden(
            f"{whose} already has {a_role(role)} token: {maker} makes the next "
            "(the deployment admin makes only the first)",
            field="role",
        )
