"""Spending credits: partners and their offers, agreements with schemes, and vouchers.

A voucher is a two-phase ledger transfer. Issuing it reserves the offer's credits on the member's
account (the ledger's floor, which counts reservations, makes overspending impossible whatever
the concurrency); settling it at the till posts the reservation to the partner's account, and
the ledger resolves a reservation at most once, so a code settles once however many tills try;
voiding or expiry releases it. The voucher's own row and its settlement's row are written in the
same transaction as the ledger entry (`then=`), so they can never disagree.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import TypeVar

from sqlalchemy.engine import Connection

from ledger import Conflict, Entry, InvalidRequest, NotFound, from_us
from timebank.schemes import member_account
from timebank.service import TimeBank

from . import storage
from .codes import new_code, normalise
from .model import (
    Agreement,
    Offer,
    Partner,
    Venue,
    Voucher,
    VoucherState,
    agreement_problems,
    day_bounds_us,
    id_problem,
    month_bounds_us,
    offer_problems,
    partner_account,
)

T = TypeVar("T")


def _refuse(problems: list[tuple[str, str]]) -> None:
    if problems:
        raise InvalidRequest(problems[0][1], field=problems[0][0])


class Partners:
    def __init__(self, bank: TimeBank) -> None:
        self.bank = bank
        self.ledger = bank.ledger

    async def create_tables(self) -> None:
        await self.ledger.run(storage.metadata.create_all)

    # ---- partners, venues, offers, agreements ---------------------------------------------

    async def add_partner(self, partner: Partner) -> Partner:
        _refuse([p for p in [id_problem(partner.id, "id")] if p])

        def add(conn: Connection) -> Partner | None:
            found = storage.read_partner(conn, partner.id)
            if found is None:
                storage.insert_partner(conn, partner)
            return found

        return _same(await self.ledger.run(add), partner, "partner")

    async def add_venue(self, venue: Venue) -> Venue:
        _refuse([p for p in [id_problem(venue.id, "id")] if p])
        await self.partner(venue.partner)

        def add(conn: Connection) -> Venue | None:
            found = storage.read_venue(conn, venue.partner, venue.id)
            if found is None:
                storage.insert_venue(conn, venue)
            return found

        return _same(await self.ledger.run(add), venue, "venue")

    async def add_offer(self, offer: Offer) -> Offer:
        _refuse(offer_problems(offer))
        await self.partner(offer.partner)

        def add(conn: Connection) -> Offer | None:
            found = storage.read_offer(conn, offer.partner, offer.id)
            if found is None:
                storage.insert_offer(conn, offer)
            return found

        return _same(await self.ledger.run(add), offer, "offer")

    async def agree(self, agreement: Agreement) -> Agreement:
        """Make or change a scheme's agreement with a partner; opens the partner's account."""
        _refuse(agreement_problems(agreement))
        await self.bank.scheme(agreement.scheme)
        await self.partner(agreement.partner)
        for offer_id in agreement.offers:
            await self.offer(agreement.partner, offer_id)
        for venue_id in agreement.venues:
            if await self.bank.query(storage.read_venue, agreement.partner, venue_id) is None:
                raise NotFound(f"no venue {venue_id!r}", field="venues")
        await self.ledger.open_account(
            agreement.scheme, partner_account(agreement.partner), kind="partner", floor=0,
            idempotency_key=f"partner:{agreement.partner}",
        )  # fmt: skip
        await self.ledger.run(lambda conn: storage.upsert_agreement(conn, agreement))
        return agreement

    async def partner(self, partner_id: str) -> Partner:
        found = await self.bank.query(storage.read_partner, partner_id)
        if found is None:
            raise NotFound(f"no partner {partner_id!r}", field="partner")
        return found

    async def offer(self, partner_id: str, offer_id: str) -> Offer:
        found = await self.bank.query(storage.read_offer, partner_id, offer_id)
        if found is None:
            raise NotFound(f"no offer {offer_id!r}", field="offer")
        return found

    # ---- vouchers ------------------------------------------------------------------------

    async def issue(
        self, scheme_id: str, member_id: str, partner_id: str, offer_id: str, *,
        idempotency_key: str,
    ) -> Voucher:  # fmt: skip
        """Reserve an offer's credits for a member: a voucher to use at the partner's venues."""
        member = await self.bank.member(scheme_id, member_id)
        if member.erased:
            raise NotFound(f"no member {member_id!r}", field="member")
        offer = await self.offer(partner_id, offer_id)
        now_us = self.bank.clock()
        today = from_us(now_us).date()
        agreement = await self._agreement(scheme_id, partner_id)
        if not agreement.covers(offer.id, today) or not _on(offer, today):
            raise Conflict(f"offer {offer_id!r} is not available in this scheme now", field="offer")
        code = new_code()
        expires_us = now_us + agreement.voucher_hours * 3_600_000_000
        minutes = offer.credits * 60

        def record(conn: Connection, entry: Entry) -> None:  # committed with the reservation
            _check_capacity(conn, offer, today)  # in the writer's transaction: no race
            voucher = Voucher(scheme_id, code, member_id, partner_id, offer_id, minutes,
                              entry.seq, expires_us)  # fmt: skip
            storage.insert_voucher(conn, voucher, entry.time_us)

        entry = await self.ledger.reserve(
            scheme_id, debit=member_account(member_id), target=partner_account(partner_id),
            amount=minutes, expires_at=from_us(expires_us),
            meta={"offer": f"{partner_id}/{offer_id}"},
            idempotency_key=f"voucher:{member_id}:{idempotency_key}", then=record,
        )  # fmt: skip
        found = await self.bank.query(storage.read_voucher, scheme_id, "", entry.seq)
        assert found is not None, "the voucher's row commits with its reservation"
        return await self._with_state(found)

    async def voucher(self, scheme_id: str, typed_code: str) -> Voucher:
        code = normalise(typed_code)
        if code is None:
            raise InvalidRequest("not a voucher code (check the characters)", field="code")
        found = await self.bank.query(storage.read_voucher, scheme_id, code)
        if found is None:
            raise NotFound("no voucher with that code", field="code")
        return await self._with_state(found)

    async def settle(
        self, scheme_id: str, typed_code: str, *, partner_id: str, venue_id: str,
        idempotency_key: str, signature: str = "",
    ) -> Voucher:  # fmt: skip
        """Use a voucher at the till: its credits move to the partner. Once only: another till
        (another idempotency key) gets a Conflict; the same request retried gets the same answer.
        """
        voucher = await self.voucher(scheme_id, typed_code)
        if voucher.partner != partner_id:
            raise NotFound("no voucher with that code", field="code")  # another partner's
        agreement = await self._agreement(scheme_id, partner_id)
        if venue_id not in agreement.venues:
            raise Conflict(f"venue {venue_id!r} is not under the agreement", field="venue")

        def record(conn: Connection, entry: Entry) -> None:  # committed with the posting
            if agreement.monthly_cap is not None:
                start, end = month_bounds_us(from_us(entry.time_us).date())
                taken = storage.minutes_settled(conn, scheme_id, partner_id, start, end)
                if taken + voucher.minutes > agreement.monthly_cap * 60:
                    raise Conflict("the partner's monthly cap for this scheme is reached",
                                   field="code")  # fmt: skip
            storage.insert_settlement(conn, scheme_id, voucher.code, venue_id, entry, signature)

        try:
            await self.ledger.post(
                scheme_id, voucher.reservation, meta={"venue": venue_id},
                idempotency_key=f"settle:{voucher.code}:{idempotency_key}", then=record,
            )  # fmt: skip
        except Conflict:
            done = await self.voucher(scheme_id, voucher.code)
            if done.state is VoucherState.PENDING:
                raise  # refused for another reason: the partner's cap
            raise Conflict(f"the voucher is already {done.state}", field="code") from None
        return await self.voucher(scheme_id, voucher.code)

    async def void(self, scheme_id: str, typed_code: str, *, idempotency_key: str) -> Voucher:
        """Cancel an unused voucher: the credits go back to the member."""
        voucher = await self.voucher(scheme_id, typed_code)
        try:
            await self.ledger.void(
                scheme_id, voucher.reservation, idempotency_key=f"void:{voucher.code}",
                then=lambda conn, _entry: storage.mark_voided(conn, scheme_id, voucher.code),
            )  # fmt: skip
        except Conflict:
            done = await self.voucher(scheme_id, voucher.code)
            if done.state is not VoucherState.VOIDED:
                raise Conflict(f"the voucher is already {done.state}", field="code") from None
        return await self.voucher(scheme_id, voucher.code)

    async def _agreement(self, scheme_id: str, partner_id: str) -> Agreement:
        found = await self.bank.query(storage.read_agreement, scheme_id, partner_id)
        if found is None:
            raise NotFound(f"no agreement with partner {partner_id!r}", field="partner")
        return found

    async def _with_state(self, voucher: Voucher) -> Voucher:
        reservation = await self.ledger.reservation(voucher.scheme, voucher.reservation)
        return replace(voucher, state=VoucherState(reservation.state))


def _check_capacity(conn: Connection, offer: Offer, day: date) -> None:
    """Refuse a voucher past the offer's vouchers per day or per ISO week."""
    week_start = date.fromordinal(day.toordinal() - day.weekday())
    for cap, (start, end), period in (
        (offer.per_day, day_bounds_us(day), "today"),
        (offer.per_week, day_bounds_us(week_start, 7), "this week"),
    ):
        if cap is not None and storage.vouchers_issued(conn, offer.partner, offer.id,
                                                       start, end) >= cap:  # fmt: skip
            raise Conflict(f"no more vouchers for {offer.title!r} {period}", field="offer")


def _on(offer: Offer, day: date) -> bool:
    return offer.starts <= day and (offer.ends is None or day <= offer.ends)


def _same(found: T | None, wanted: T, noun: str) -> T:
    if found is not None and found != wanted:
        raise Conflict(f"{noun} exists with other details", field="id")
    return wanted
