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
from datetime import date, timedelta
from typing import TypeVar

from sqlalchemy.engine import Connection

from ledger import (
    Conflict,
    Database,
    Entry,
    FloorBreached,
    InvalidRequest,
    NotFound,
    from_us,
    refuse,
    reservation_states,
)
from timebank import offload
from timebank import storage as tb_storage
from timebank.books import RETIRED_ACCOUNT
from timebank.schemes import Member, member_account
from timebank.service import TimeBank

from . import reconcile, signatures, statements, storage
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


class Partners:
    def __init__(self, bank: TimeBank, db: Database | None = None) -> None:
        self.db = db or bank.db  # the time bank's database: its tables are beside the bank's
        self.bank = bank
        self.ledger = bank.ledger

    @classmethod
    async def on(cls, db: Database, bank: TimeBank) -> Partners:
        """The partners on `db` (their tables made if missing), spending `bank`'s credits."""
        partners = cls(bank, db)
        await partners.create_tables()
        return partners

    async def create_tables(self) -> None:
        await self.db.create_tables(storage.metadata)

    # ---- partners, venues, offers, agreements ---------------------------------------------

    async def add_partner(self, partner: Partner) -> Partner:
        refuse([p for p in [id_problem(partner.id, "id")] if p])

        def add(conn: Connection) -> Partner | None:
            found = storage.read_partner(conn, partner.id)
            if found is None:
                storage.insert_partner(conn, partner)
            return found

        return _same(await self.ledger.run(add), partner, "partner")

    async def add_venue(self, venue: Venue) -> Venue:
        refuse([p for p in [id_problem(venue.id, "id")] if p])
        await self.partner(venue.partner)

        def add(conn: Connection) -> Venue | None:
            found = storage.read_venue(conn, venue.partner, venue.id)
            if found is None:
                storage.insert_venue(conn, venue)
            return found

        return _same(await self.ledger.run(add), venue, "venue")

    async def add_offer(self, offer: Offer) -> Offer:
        refuse(offer_problems(offer))
        await self.partner(offer.partner)

        def add(conn: Connection) -> Offer | None:
            found = storage.read_offer(conn, offer.partner, offer.id)
            if found is None:
                storage.insert_offer(conn, offer)
            return found

        return _same(await self.ledger.run(add), offer, "offer")

    async def agree(self, agreement: Agreement) -> Agreement:
        """Make or change a scheme's agreement with a partner; opens the partner's account."""
        refuse(agreement_problems(agreement))
        await self.bank.scheme(agreement.scheme)
        await self.partner(agreement.partner)
        for offer_id in agreement.offers:
            if await self.db.read(storage.read_offer, agreement.partner, offer_id) is None:
                raise NotFound(f"no offer {offer_id!r}", field="offers")
        for venue_id in agreement.venues:
            if await self.db.read(storage.read_venue, agreement.partner, venue_id) is None:
                raise NotFound(f"no venue {venue_id!r}", field="venues")
        await self.ledger.open_account(
            agreement.scheme,
            partner_account(agreement.partner),
            kind="partner",
            floor=0,
            idempotency_key=f"partner:{agreement.partner}",
        )
        await self.ledger.run(lambda conn: storage.upsert_agreement(conn, agreement))
        return agreement

    async def agreements(self, scheme_id: str) -> list[Agreement]:
        return await self.db.read(storage.list_agreements, scheme_id)

    async def offers_available(self, scheme_id: str) -> list[Offer]:
        """Offers members can take a voucher for today, under the scheme's agreements."""
        today = from_us(self.bank.clock()).date()
        out = []
        for agreement in await self.agreements(scheme_id):
            for offer_id in sorted(agreement.offers):
                offer = await self.db.read(storage.read_offer, agreement.partner, offer_id)
                if offer is not None and agreement.covers(offer_id, today) and _on(offer, today):
                    out.append(offer)
        return out

    async def partner(self, partner_id: str) -> Partner:
        found = await self.db.read(storage.read_partner, partner_id)
        if found is None:
            raise NotFound(f"no partner {partner_id!r}", field="partner")
        return found

    async def offer(self, partner_id: str, offer_id: str) -> Offer:
        found = await self.db.read(storage.read_offer, partner_id, offer_id)
        if found is None:
            raise NotFound(f"no offer {offer_id!r}", field="offer")
        return found

    # ---- vouchers ------------------------------------------------------------------------

    async def issue(
        self,
        scheme_id: str,
        member_id: str,
        partner_id: str,
        offer_id: str,
        *,
        idempotency_key: str,
    ) -> Voucher:
        """Reserve an offer's credits for a member: a voucher to use at the partner's venues."""
        member, offer, agreement = await self.db.read(
            _issue_reads, scheme_id, member_id, partner_id, offer_id
        )  # one hop for all three
        if member is None or member.erased:
            raise NotFound(f"no member {member_id!r}", field="member")
        if agreement is None:  # an unknown partner too: the field at fault is the partner
            raise NotFound(f"no agreement with partner {partner_id!r}", field="partner")
        if offer is None:
            raise NotFound(f"no offer {offer_id!r}", field="offer")
        today = from_us(self.bank.clock()).date()
        if not agreement.covers(offer.id, today) or not _on(offer, today):
            raise Conflict(f"offer {offer_id!r} is not available in this scheme now", field="offer")
        code = new_code()
        minutes = offer.credits * 60

        made: list[Voucher] = []

        def record(conn: Connection, entry: Entry) -> None:  # committed with the reservation
            _check_capacity(conn, offer, today)  # in the writer's transaction: no race
            if agreement.monthly_cap is not None:  # what the till could still be asked to take
                start, end = month_bounds_us(today)
                taken = storage.minutes_settled(conn, scheme_id, partner_id, start, end)
                taken += storage.minutes_outstanding(conn, scheme_id, partner_id, entry.time_us)
                if taken + minutes > agreement.monthly_cap * 60:
                    raise Conflict(
                        "the partner's monthly cap for this scheme is reached "
                        "(vouchers not yet used count)",
                        field="partner",
                    )
            voucher = Voucher(
                scheme_id,
                code,
                member_id,
                partner_id,
                offer_id,
                minutes,
                entry.seq,
                entry.expires_us,
            )
            storage.insert_voucher(conn, voucher, entry.time_us)
            made.append(voucher)

        try:
            entry = await self.ledger.reserve(
                scheme_id,
                debit=member_account(member_id),
                target=partner_account(partner_id),
                amount=minutes,
                lifetime=timedelta(hours=agreement.voucher_hours),
                meta={"offer": f"{partner_id}/{offer_id}"},
                idempotency_key=f"voucher:{member_id}:{idempotency_key}",
                then=record,
            )
        except FloorBreached:  # the ledger names its account; the caller knows a member
            raise FloorBreached(
                f"{member_id} has not enough credits for {offer.title!r}", field="member"
            ) from None
        if made:  # written just now (a retry instead finds the first attempt's voucher)
            return made[0]
        found = await self.db.read(_voucher_with_state, scheme_id, "", entry.seq)
        assert found is not None, "the voucher's row commits with its reservation"
        return found

    async def voucher(self, scheme_id: str, typed_code: str) -> Voucher:
        code = normalise(typed_code)
        if code is None:
            raise InvalidRequest("not a voucher code (check the characters)", field="code")
        found = await self.db.read(_voucher_with_state, scheme_id, code, 0)
        if found is None:
            raise NotFound("no voucher with that code", field="code")
        return found

    async def settle(
        self,
        scheme_id: str,
        typed_code: str,
        *,
        partner_id: str,
        venue_id: str,
        idempotency_key: str,
        signature_header: str = "",
        signed_key: str = "",
    ) -> Voucher:
        """Use a voucher at the till: its credits move to the partner. Once only: another till
        (another idempotency key) gets a Conflict; the same request retried gets the same answer.

        A partner's integration may sign the request (`signatures.settle_message` over the
        scheme, code, venue and `signed_key`, the Idempotency-Key it sent) with a key it
        registered; the signature is checked and kept with the settlement as evidence.
        """
        code = normalise(typed_code)
        if code is None:
            raise InvalidRequest("not a voucher code (check the characters)", field="code")
        voucher, agreement = await self.db.read(_settle_reads, scheme_id, code, partner_id)
        if voucher is None or voucher.partner != partner_id:  # none, or another partner's
            raise NotFound("no voucher with that code", field="code")
        if agreement is None:
            raise NotFound(f"no agreement with partner {partner_id!r}", field="partner")
        signature = ""
        if signature_header:
            signature = await self._checked_signature(
                scheme_id, voucher.code, partner_id, venue_id, signed_key, signature_header
            )
        if venue_id not in agreement.venues:
            raise Conflict(f"venue {venue_id!r} is not under the agreement", field="venue")

        def record(conn: Connection, entry: Entry) -> None:  # committed with the posting
            if agreement.monthly_cap is not None:
                start, end = month_bounds_us(from_us(entry.time_us).date())
                taken = storage.minutes_settled(conn, scheme_id, partner_id, start, end)
                if taken + voucher.minutes > agreement.monthly_cap * 60:
                    raise Conflict(
                        "the partner's monthly cap for this scheme is reached", field="code"
                    )
            storage.insert_settlement(conn, scheme_id, voucher.code, venue_id, entry, signature)

        try:
            entry = await self.ledger.post(
                scheme_id,
                voucher.reservation,
                meta={"venue": venue_id},
                idempotency_key=f"settle:{voucher.code}:{idempotency_key}",
                then=record,
            )
        except Conflict:
            done = await self.voucher(scheme_id, voucher.code)
            if done.state is VoucherState.PENDING and done.expires_us <= self.bank.clock():
                raise Conflict("the voucher has expired", field="code") from None
            if done.state is VoucherState.PENDING:
                raise  # refused for another reason: the partner's cap
            raise Conflict(f"the voucher is already {_WORD[done.state]}", field="code") from None
        return replace(
            voucher,
            state=VoucherState.SETTLED,
            venue=venue_id,
            settled_by=entry.seq,
            settled_us=entry.time_us,
        )

    async def _checked_signature(
        self, scheme_id: str, code: str, partner_id: str, venue_id: str, key: str, header: str
    ) -> str:
        try:
            key_id, sig = signatures.parse_signature_header(header)
            message = signatures.settle_message(scheme_id, code, venue_id, key)
        except ValueError as exc:
            raise InvalidRequest(str(exc), field="signature") from None
        keys = [signatures.PartnerKey.of(partner_id, k) for _, k in await self.keys(partner_id)]
        why = signatures.verify(keys, partner_id, message, key_id, sig)
        if why is not None:
            raise InvalidRequest(f"the request's signature: {why}", field="signature")
        return signatures.evidence(key_id, sig)

    async def add_key(self, partner_id: str, text: str) -> signatures.PartnerKey:
        """Register a public key the partner's integrations sign settle requests with."""
        await self.partner(partner_id)
        try:
            key = signatures.PartnerKey.of(partner_id, signatures.parse_public_key(text))
        except ValueError as exc:
            raise InvalidRequest(str(exc), field="public_key") from None
        await self.ledger.run(
            lambda conn: storage.insert_key(conn, partner_id, key.key_id, key.public_key)
        )
        return key

    async def keys(self, partner_id: str) -> list[tuple[str, bytes]]:
        return await self.db.read(storage.read_keys, partner_id)

    # ---- statements, reconciliation, retirement ----------------------------------------------

    async def statement(
        self, scheme_id: str, partner_id: str, start: date, end: date
    ) -> statements.Statement:
        await self.agreement(scheme_id, partner_id)
        if end < start:
            raise InvalidRequest("the period ends before it starts", field="end")
        first, last = statements.period_bounds_us(start, end)
        settled = await self.db.read(storage.settled_vouchers, scheme_id, partner_id, first, last)
        offers = {o.id: o for o in await self.db.read(storage.list_offers, partner_id)}
        venues = {v.id: v for v in await self.db.read(storage.list_venues, partner_id)}
        return statements.statement(partner_id, scheme_id, start, end, settled, offers, venues)

    async def reconcile(
        self, scheme_id: str, partner_id: str, text: str
    ) -> tuple[reconcile.Reconciliation, bool]:
        """Match a partner's till records (CSV) against the ledger's settlements. Returns the
        report and whether the file is new (the same file again is recognised, not re-counted).
        """
        await self.agreement(scheme_id, partner_id)
        records = await offload.run(reconcile.parse_till_csv, text)
        margin = 2 * 86_400_000_000  # the tolerance either side, and a day more
        times = [r.at_us for r in records] or [self.bank.clock()]
        settled = await self.db.read(
            storage.settled_vouchers,
            scheme_id,
            partner_id,
            min(times) - margin,
            max(times) + margin,
        )
        offers = {o.id: o for o in await self.db.read(storage.list_offers, partner_id)}
        report = reconcile.reconcile(records, settled, offers=offers)
        digest = reconcile.records_digest(records)
        now = self.bank.clock()
        new = await self.ledger.run(
            lambda conn: storage.record_upload(conn, scheme_id, partner_id, digest, now)
        )
        return report, new

    async def retire(self, scheme_id: str, partner_id: str, *, idempotency_key: str) -> Entry:
        """The scheme retires the credits a partner holds (after paying or thanking it as the
        agreement says): one settlement entry from the partner's account to `scheme:retired`."""
        await self.agreement(scheme_id, partner_id)
        key = f"retire:{idempotency_key}"
        done = await self.db.read(storage.read_retirement, scheme_id, key)
        if done is not None:  # a retry: the same answer, though the partner now holds nothing
            return await self.ledger.entry(scheme_id, done)
        held = (await self.ledger.account(scheme_id, partner_account(partner_id))).balance
        if held <= 0:
            raise Conflict("the partner holds no credits to retire", field="partner")
        await self.ledger.open_account(
            scheme_id,
            RETIRED_ACCOUNT,
            kind="retired",
            floor=None,
            idempotency_key=f"account:{RETIRED_ACCOUNT}",
        )
        try:
            return await self.ledger.transfer(
                scheme_id,
                [(partner_account(partner_id), -held), (RETIRED_ACCOUNT, held)],
                meta={"settlement": partner_id},
                idempotency_key=key,
                then=lambda conn, e: storage.record_retirement(conn, scheme_id, key, e.seq),
            )
        except FloorBreached:  # another retirement took the credits between our read and now
            raise Conflict(
                "the partner's credits were retired meanwhile (by another request)", field="partner"
            ) from None

    async def void(self, scheme_id: str, typed_code: str, *, idempotency_key: str) -> Voucher:
        """Cancel an unused voucher: the credits go back to the member."""
        voucher = await self.voucher(scheme_id, typed_code)
        try:
            await self.ledger.void(
                scheme_id,
                voucher.reservation,
                idempotency_key=f"void:{voucher.code}",
                then=lambda conn, _entry: storage.mark_voided(conn, scheme_id, voucher.code),
            )
        except Conflict:
            done = await self.voucher(scheme_id, voucher.code)
            if done.state is not VoucherState.VOIDED:
                why = f"the voucher is already {_WORD[done.state]}"
                raise Conflict(why, field="code") from None
        return await self.voucher(scheme_id, voucher.code)

    async def agreement(self, scheme_id: str, partner_id: str) -> Agreement:
        found = await self.db.read(storage.read_agreement, scheme_id, partner_id)
        if found is None:
            raise NotFound(f"no agreement with partner {partner_id!r}", field="partner")
        return found


def _issue_reads(
    conn: Connection, scheme_id: str, member_id: str, partner_id: str, offer_id: str
) -> tuple[Member | None, Offer | None, Agreement | None]:
    return (
        tb_storage.read_member(conn, scheme_id, member_id),
        storage.read_offer(conn, partner_id, offer_id),
        storage.read_agreement(conn, scheme_id, partner_id),
    )


def _settle_reads(
    conn: Connection, scheme_id: str, code: str, partner_id: str
) -> tuple[Voucher | None, Agreement | None]:
    voucher = _voucher_with_state(conn, scheme_id, code, 0)
    return voucher, storage.read_agreement(conn, scheme_id, partner_id)


def _voucher_with_state(
    conn: Connection, scheme_id: str, code: str, reservation: int
) -> Voucher | None:
    """A voucher, its state read from the ledger's own record of its reservation."""
    found = storage.read_voucher(conn, scheme_id, code, reservation)
    if found is None:
        return None
    states = reservation_states(conn, scheme_id, [found.reservation])
    return replace(found, state=VoucherState(states.get(found.reservation, "pending")))


def _check_capacity(conn: Connection, offer: Offer, day: date) -> None:
    """Refuse a voucher past the offer's vouchers per day or per ISO week."""
    week_start = date.fromordinal(day.toordinal() - day.weekday())
    if offer.per_day is not None or offer.per_week is not None:
        storage.hold_offer(conn, offer.partner, offer.id)  # other schemes' writers count too
    for cap, (start, end), period in (
        (offer.per_day, day_bounds_us(day), "today"),
        (offer.per_week, day_bounds_us(week_start, 7), "this week"),
    ):
        if (
            cap is not None
            and storage.vouchers_issued(conn, offer.partner, offer.id, start, end) >= cap
        ):
            raise Conflict(f"no more vouchers for {offer.title!r} {period}", field="offer")


_WORD = {
    VoucherState.PENDING: "pending",
    VoucherState.SETTLED: "settled",
    VoucherState.VOIDED: "voided",
    VoucherState.EXPIRED: "expired",
}


def _on(offer: Offer, day: date) -> bool:
    return offer.starts <= day and (offer.ends is None or day <= offer.ends)


def _same(found: T | None, wanted: T, noun: str) -> T:
    if found is not None and found != wanted:
        raise Conflict(f"{noun} exists with other details", field="id")
    return wanted
