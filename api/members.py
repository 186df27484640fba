"""Routes for members: the register, balances, ledger history, receipts and erasure."""

from __future__ import annotations

from identity.auth import STAFF, ApiRole
from ledger import receipt_json
from timebank.schemes import Member, Role

from .endpoints import Call, Endpoint, decode_cursor, encode_cursor
from .models import (
    SEQ,
    BalanceOut,
    EntryOut,
    JsonObject,
    MemberIn,
    MemberOut,
    Page,
    PageQuery,
    ReceiptOut,
)
from .problems import Problem

PEOPLE = frozenset({ApiRole.MEMBER, ApiRole.COORDINATOR, ApiRole.SCHEME_ADMIN})
REGISTRARS = STAFF | {ApiRole.ADMIN}


def self_or_staff(call: Call, member_id: str) -> None:
    """A person sees their own records; coordinators and scheme admins see everyone's."""
    if call.who.role not in STAFF and call.who.member != member_id:
        raise Problem(403, "only your own records, or a coordinator", field="member")


def acting_member(call: Call) -> str:
    assert call.who.member is not None, "person tokens always act as a member"
    return call.who.member


async def add_member(call: Call) -> MemberOut:
    b: MemberIn = call.body
    if Role.SCHEME_ADMIN in b.roles and call.who.role is ApiRole.COORDINATOR:
        raise Problem(403, "a coordinator cannot make scheme admins", field="roles")
    member = Member(
        call.scheme,
        b.id,
        b.display_name,
        frozenset(b.roles),
        b.contact,
        b.card_number,
        dict(b.attributes),
    )
    return MemberOut.of(await call.bank.add_member(member))


async def list_members(call: Call) -> Page[MemberOut]:
    q: PageQuery = call.query
    found = await call.bank.members(call.scheme, after=decode_cursor(q.cursor, ""), limit=q.limit)
    more = encode_cursor(found[-1].id) if len(found) == q.limit else None
    return Page(items=[MemberOut.of(m) for m in found], next_cursor=more)


async def get_member(call: Call) -> MemberOut:
    member_id = call.params["member"]
    self_or_staff(call, member_id)
    return MemberOut.of(await call.bank.member(call.scheme, member_id))


async def by_card(call: Call) -> MemberOut:
    return MemberOut.of(await call.bank.member_by_card(call.scheme, call.params["card"]))


async def balance(call: Call) -> BalanceOut:
    member_id = call.params["member"]
    self_or_staff(call, member_id)
    await call.bank.member(call.scheme, member_id)
    return BalanceOut(member=member_id, minutes=await call.bank.balance(call.scheme, member_id))


async def entries(call: Call) -> Page[EntryOut]:
    member_id = call.params["member"]
    self_or_staff(call, member_id)
    q: PageQuery = call.query
    after = decode_cursor(q.cursor, 0)
    found = await call.bank.history(call.scheme, member_id, after_seq=after, limit=q.limit)
    account = f"member:{member_id}"
    items = [
        EntryOut(
            seq=e.seq,
            time=e.time.isoformat(),
            kind=e.kind.value,
            minutes=e.amount_for(account),
            meta=dict(e.meta),
        )
        for e in found
    ]
    more = encode_cursor(found[-1].seq) if len(found) == q.limit else None
    return Page(items=items, next_cursor=more)


async def receipt(call: Call) -> JsonObject:
    member_id = call.params["member"]
    self_or_staff(call, member_id)
    seq = call.params["seq"]
    if not SEQ.fullmatch(seq) or int(seq) == 0:
        raise Problem(422, "an entry's sequence number", field="seq")
    found = await call.bank.receipt(call.scheme, member_id, int(seq))
    return JsonObject.model_validate(receipt_json(found))


async def erase(call: Call) -> MemberOut:
    member_id = call.params["member"]
    self_or_staff(call, member_id)
    erased = await call.bank.erase_member(call.scheme, member_id, by=acting_member(call))
    await call.services.tokens.revoke_member(call.scheme, member_id)
    for hook in call.services.on_erase:
        await hook(call.scheme, member_id)
    return MemberOut.of(erased)


ENDPOINTS = [
    Endpoint(
        "POST",
        "/schemes/{scheme}/members",
        add_member,
        "Add a member",
        REGISTRARS,
        body=MemberIn,
        response=MemberOut,
        status=201,
        tag="members",
    ),
    Endpoint(
        "GET",
        "/schemes/{scheme}/members",
        list_members,
        "List members",
        STAFF,
        query=PageQuery,
        response=Page[MemberOut],
        tag="members",
    ),
    Endpoint(
        "GET",
        "/schemes/{scheme}/members/{member}",
        get_member,
        "Show a member",
        PEOPLE,
        response=MemberOut,
        tag="members",
    ),
    Endpoint(
        "GET",
        "/schemes/{scheme}/cards/{card}",
        by_card,
        "Find a member by card number",
        STAFF,
        response=MemberOut,
        tag="members",
    ),
    Endpoint(
        "GET",
        "/schemes/{scheme}/members/{member}/balance",
        balance,
        "Show a balance",
        PEOPLE,
        response=BalanceOut,
        tag="members",
    ),
    Endpoint(
        "GET",
        "/schemes/{scheme}/members/{member}/entries",
        entries,
        "List a member's ledger entries",
        PEOPLE,
        query=PageQuery,
        response=Page[EntryOut],
        tag="members",
    ),
    Endpoint(
        "GET",
        "/schemes/{scheme}/members/{member}/entries/{seq}/receipt",
        receipt,
        "Fetch a receipt that verifies offline",
        PEOPLE,
        response=ReceiptOut,
        tag="members",
    ),
    Endpoint(
        "POST",
        "/schemes/{scheme}/members/{member}/erase",
        erase,
        "Erase a member's personal data",
        PEOPLE,
        response=MemberOut,
        tag="members",
    ),
]
