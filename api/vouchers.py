"""Routes for vouchers: a member takes one for an offer (credits reserved); partner staff settle
or void it at the till by its code; it expires by itself otherwise.

Who sees a voucher: its member, the scheme's coordinators and admins, and the staff of the
partner it is for (any other partner: 404, as if it did not exist).
"""

from __future__ import annotations

from pydantic import Field
from starlette.responses import Response

from identity.auth import STAFF, ApiRole
from ledger import NotFound, from_us
from partners.codes import display
from partners.model import Voucher

from .endpoints import Call, Endpoint
from .members import acting_member
from .models import In, MemberId, Out, PartnerId
from .problems import Problem

MEMBERS = STAFF | {ApiRole.MEMBER}
AT_THE_TILL = frozenset({ApiRole.PARTNER_STAFF})
SEERS = MEMBERS | AT_THE_TILL


class VoucherIn(In):
    partner: PartnerId
    offer: PartnerId
    member: MemberId | None = Field(None, description="default: the caller (coordinators: any)")


class SettleIn(In):
    venue: PartnerId


class VoucherOut(Out):
    code: str = Field(description="as printed and typed: XXXX-XXXX-C")
    member: str
    partner: str
    offer: str
    minutes: int
    state: str
    expires: str
    venue: str | None
    settled_by: int | None = Field(description="the ledger entry that settled it")
    reservation: int = Field(description="the ledger entry that reserved the credits")

    @classmethod
    def of(cls, v: Voucher) -> VoucherOut:
        return cls(
            code=display(v.code),
            member=v.member,
            partner=v.partner,
            offer=v.offer,
            minutes=v.minutes,
            state=v.state.value,
            expires=from_us(v.expires_us).isoformat(),
            venue=v.venue,
            settled_by=v.settled_by,
            reservation=v.reservation,
        )


async def _seen(call: Call) -> Voucher:
    voucher = await call.services.partners.voucher(call.scheme, call.params["code"])
    who = call.who
    if who.role is ApiRole.PARTNER_STAFF and who.partner != voucher.partner:
        raise NotFound("no voucher with that code", field="code")
    if who.role is ApiRole.MEMBER and who.member != voucher.member:  # as if there were none
        raise NotFound("no voucher with that code", field="code")
    return voucher


async def issue(call: Call) -> VoucherOut:
    b: VoucherIn = call.body
    me = acting_member(call)
    member = b.member or me
    if member != me and call.who.role not in STAFF:
        raise Problem(403, "members take vouchers for themselves", field="member")
    voucher = await call.services.partners.issue(
        call.scheme, member, b.partner, b.offer, idempotency_key=call.idempotency_key
    )
    return VoucherOut.of(voucher)


async def show(call: Call) -> VoucherOut:
    return VoucherOut.of(await _seen(call))


async def qr(call: Call) -> Response:
    """The voucher's code as a QR code (SVG), to show on a phone or print."""
    from partners.qr import voucher_qr_svg

    voucher = await _seen(call)
    return Response(voucher_qr_svg(voucher.code), media_type="image/svg+xml")


async def settle(call: Call) -> VoucherOut:
    b: SettleIn = call.body
    partner = call.who.partner
    assert partner is not None, "partner-staff tokens always name their partner"
    voucher = await call.services.partners.settle(
        call.scheme,
        call.params["code"],
        partner_id=partner,
        venue_id=b.venue,
        idempotency_key=call.idempotency_key,
        signed_key=call.client_key,
        signature_header=call.headers.get("signature", ""),
    )
    return VoucherOut.of(voucher)


async def void(call: Call) -> VoucherOut:
    voucher = await _seen(call)
    done = await call.services.partners.void(
        call.scheme, voucher.code, idempotency_key=call.idempotency_key
    )
    return VoucherOut.of(done)


ENDPOINTS = [
    Endpoint(
        "POST",
        "/schemes/{scheme}/vouchers",
        issue,
        "Take a voucher for an offer",
        MEMBERS,
        body=VoucherIn,
        response=VoucherOut,
        status=201,
        tag="vouchers",
    ),
    Endpoint(
        "GET",
        "/schemes/{scheme}/vouchers/{code}",
        show,
        "Show a voucher",
        SEERS,
        response=VoucherOut,
        tag="vouchers",
    ),
    Endpoint(
        "GET",
        "/schemes/{scheme}/vouchers/{code}/qr",
        qr,
        "A voucher's QR code (SVG)",
        SEERS,
        media=("image/svg+xml",),
        tag="vouchers",
    ),
    Endpoint(
        "POST",
        "/schemes/{scheme}/vouchers/{code}/settle",
        settle,
        "Settle a voucher at the till",
        AT_THE_TILL,
        body=SettleIn,
        response=VoucherOut,
        tag="vouchers",
    ),
    Endpoint(
        "POST",
        "/schemes/{scheme}/vouchers/{code}/void",
        void,
        "Void a voucher",
        SEERS,
        response=VoucherOut,
        tag="vouchers",
    ),
]
