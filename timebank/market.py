"""Members' offers of help and requests for it, stored and matched (rules in matching.py).

The market does not check who may do what: its caller (the time bank or the API) checks
membership and roles (and that a member withdraws only their own offer). It does check that
the member named exists and is not erased. Nothing here touches the ledger; a match becomes an
exchange or a claim through the time bank.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TypeVar

from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger import Conflict, Database, InvalidRequest, NotFound, refuse

from . import storage
from .matching import (
    AreaSummary,
    HelpRequest,
    Match,
    Offer,
    matches,
    needs_and_capabilities,
    normalise_area,
    normalise_skills,
    offer_problems,
    request_problems,
)

MAX_PAGE = 200
MAX_MATCHES = 100
T = TypeVar("T")
Listed = TypeVar("Listed", Offer, HelpRequest)  # what a member lists: help offered or asked


def _id(scheme_id: str, kind: str, idempotency_key: str) -> str:
    if not 1 <= len(idempotency_key) <= 200:
        raise InvalidRequest("an idempotency key of 1 to 200 characters", field="idempotency_key")
    return hashlib.sha256(f"{scheme_id}\0{kind}\0{idempotency_key}".encode()).hexdigest()[:24]


def _digest(*content: object) -> bytes:
    return hashlib.sha256(json.dumps(content).encode()).digest()


def _check_limit(limit: int, most: int) -> None:
    if not 1 <= limit <= most:
        raise InvalidRequest(f"a limit of 1 to {most}", field="limit")


class Market:
    def __init__(self, db: Database, clock: Callable[[], int]) -> None:
        self._engine = db.writer  # writes: the write lock at BEGIN
        self._read = db.reader  # reads: deferred transactions
        self._clock = clock  # microseconds since the epoch

    # ---- offers ----------------------------------------------------------------------------

    async def add_offer(
        self,
        scheme_id: str,
        member_id: str,
        skills: Iterable[str],
        area: str,
        availability: str,
        note: str,
        *,
        idempotency_key: str,
    ) -> Offer:
        """Offer help. The same key and offer returns the same offer; another offer under a key
        already used is a Conflict."""
        offer = Offer(
            scheme_id,
            _id(scheme_id, "offer", idempotency_key),
            member_id,
            normalise_skills(skills),
            normalise_area(area),
            availability.strip(),
            note.strip(),
            True,
            0,
        )
        refuse(offer_problems(offer))
        digest = _digest(member_id, offer.skills, offer.area, offer.availability, offer.note)
        return await self._add_once(
            offer, digest, "offer", storage.read_offer, storage.insert_offer
        )

    async def withdraw_offer(self, scheme_id: str, offer_id: str) -> Offer:
        """Take an offer out of matching (it stays listed as inactive). Idempotent."""
        async with self._engine.begin() as conn:
            found = await conn.run_sync(storage.read_offer, scheme_id, offer_id)
            if found is None:
                raise NotFound(f"no offer {offer_id!r} in scheme {scheme_id!r}", field="offer")
            await conn.run_sync(storage.set_offer_active, scheme_id, offer_id, False)
        return replace(found[0], active=False)

    async def offer(self, scheme_id: str, offer_id: str) -> Offer:
        async with self._read.connect() as conn:
            found = await conn.run_sync(storage.read_offer, scheme_id, offer_id)
        if found is None:
            raise NotFound(f"no offer {offer_id!r} in scheme {scheme_id!r}", field="offer")
        return found[0]

    async def offers(
        self, scheme_id: str, *, member: str | None = None, after: str = "", limit: int = 50
    ) -> list[Offer]:
        """A page of the scheme's offers, withdrawn ones included, by id; pass the last id
        of a page as `after` for the next."""
        _check_limit(limit, MAX_PAGE)
        async with self._read.connect() as conn:
            return await conn.run_sync(storage.list_offers, scheme_id, member, after, limit)

    # ---- requests ----------------------------------------------------------------------------

    async def add_request(
        self,
        scheme_id: str,
        member_id: str,
        skills: Iterable[str],
        area: str,
        when: str,
        note: str,
        *,
        idempotency_key: str,
    ) -> HelpRequest:
        """Ask for help. The same key and request returns the same request; another request
        under a key already used is a Conflict."""
        request = HelpRequest(
            scheme_id,
            _id(scheme_id, "request", idempotency_key),
            member_id,
            normalise_skills(skills),
            normalise_area(area),
            when.strip(),
            note.strip(),
            True,
            0,
        )
        refuse(request_problems(request))
        digest = _digest(member_id, request.skills, request.area, request.when, request.note)
        return await self._add_once(
            request, digest, "request", storage.read_help_request, storage.insert_help_request
        )

    async def close_request(self, scheme_id: str, request_id: str) -> HelpRequest:
        """Close a request (met, or no longer needed): it has no more matches. Idempotent."""
        async with self._engine.begin() as conn:
            found = await conn.run_sync(storage.read_help_request, scheme_id, request_id)
            if found is None:
                raise NotFound(f"no request {request_id!r} in {scheme_id!r}", field="request")
            await conn.run_sync(storage.close_help_request, scheme_id, request_id)
        return replace(found[0], open=False)

    async def request(self, scheme_id: str, request_id: str) -> HelpRequest:
        async with self._read.connect() as conn:
            found = await conn.run_sync(storage.read_help_request, scheme_id, request_id)
        if found is None:
            raise NotFound(f"no request {request_id!r} in {scheme_id!r}", field="request")
        return found[0]

    async def requests(
        self, scheme_id: str, *, member: str | None = None, after: str = "", limit: int = 50
    ) -> list[HelpRequest]:
        """A page of the scheme's requests, closed ones included, by id; pass the last id of
        a page as `after` for the next."""
        _check_limit(limit, MAX_PAGE)
        async with self._read.connect() as conn:
            return await conn.run_sync(storage.list_help_requests, scheme_id, member, after, limit)

    # ---- matching ------------------------------------------------------------------------------

    async def matches_for(self, scheme_id: str, request_id: str, limit: int = 20) -> list[Match]:
        """Other members' active offers for a request, best first (none for a closed one)."""
        _check_limit(limit, MAX_MATCHES)
        request = await self.request(scheme_id, request_id)
        if not request.open:
            return []
        async with self._read.connect() as conn:
            found = await conn.run_sync(storage.active_offers, scheme_id)
        return matches(request, found, limit)

    async def needs_and_capabilities(self, scheme_id: str) -> list[AreaSummary]:
        """Per area, the scheme's open requests and active offers counted by skill."""
        async with self._read.connect() as conn:
            found = await conn.run_sync(storage.active_offers, scheme_id)
            wanted = await conn.run_sync(storage.open_help_requests, scheme_id)
        return needs_and_capabilities(found, wanted)

    # ---- helpers -------------------------------------------------------------------------------

    async def _add_once(
        self,
        item: Listed,
        digest: bytes,
        kind: str,
        read: Callable[[Connection, str, str], tuple[Listed, bytes] | None],
        insert: Callable[[Connection, Listed, bytes], None],
    ) -> Listed:
        """Insert a new offer or request, its member held; the same one again (same key, same
        digest) is the first's answer, also when a twin in another process inserted it first."""
        try:
            async with self._engine.begin() as conn:
                prior = await conn.run_sync(read, item.scheme, item.id)
                if prior is not None:
                    return self._replay(prior, digest, kind)
                await self._require_member(conn, item.scheme, item.member)
                item = replace(item, created_us=self._clock())
                await conn.run_sync(insert, item, digest)
        except IntegrityError:  # a twin request in another process inserted it first
            async with self._read.connect() as conn:
                prior = await conn.run_sync(read, item.scheme, item.id)
            if prior is None:
                raise
            return self._replay(prior, digest, kind)
        return item

    @staticmethod
    def _replay(prior: tuple[T, bytes], digest: bytes, kind: str) -> T:
        if prior[1] != digest:
            raise Conflict(
                f"idempotency key already used for another {kind}", field="idempotency_key"
            )
        return prior[0]

    @staticmethod
    async def _require_member(conn: AsyncConnection, scheme_id: str, member_id: str) -> None:
        # held till COMMIT on PostgreSQL: an erasure in another process waits, then takes this
        found = await conn.run_sync(storage.read_member, scheme_id, member_id, hold=True)
        if found is None or found.erased:
            raise NotFound(f"no member {member_id!r} in scheme {scheme_id!r}", field="member")
