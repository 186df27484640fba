"""Routes for activities and the life of a claim: log, confirm, reject, reverse; burn-out flags."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from identity.auth import ALL_SCHEME_ROLES, STAFF
from ledger import NotFound
from timebank.claims import ClaimDraft

from .endpoints import Call, Endpoint, decode_cursor, encode_cursor
from .members import PEOPLE, acting_member, self_or_staff
from .models import (
    ActivityIn,
    ActivityOut,
    BurnoutQuery,
    ClaimIn,
    ClaimOut,
    ClaimsQuery,
    GroupClaimIn,
    Out,
    Page,
    ReasonIn,
)


async def list_activities(call: Call) -> Page[ActivityOut]:
    found = await call.bank.activities(call.scheme)
    return Page(items=[ActivityOut.of(a) for a in found], next_cursor=None)


async def add_activity(call: Call) -> ActivityOut:
    b: ActivityIn = call.body
    added = await call.bank.add_activity(call.scheme, b.activity(), by=acting_member(call))
    return ActivityOut.of(added)


async def retire_activity(call: Call) -> ActivityOut:
    code = call.params["code"]
    return ActivityOut.of(
        await call.bank.retire_activity(call.scheme, code, by=acting_member(call))
    )


async def log_claim(call: Call) -> ClaimOut:
    b: ClaimIn = call.body
    me = acting_member(call)
    member = b.member or me
    staff = call.who.role in STAFF
    draft = ClaimDraft(
        member, me, b.activity, b.date, b.minutes, b.receiver, staff and member != me
    )
    claim = await call.bank.log_claim(
        call.scheme,
        draft,
        today=call.bank.today(),
        idempotency_key=call.idempotency_key,
        note=b.note,
    )
    return ClaimOut.of(claim)


async def log_group(call: Call) -> Page[ClaimOut]:
    b: GroupClaimIn = call.body
    done = await call.bank.log_group(
        call.scheme,
        b.members,
        b.activity,
        b.date,
        b.minutes,
        by=acting_member(call),
        today=call.bank.today(),
        idempotency_key=call.idempotency_key,
        note=b.note,
    )
    return Page(items=[ClaimOut.of(c) for c in done], next_cursor=None)


async def list_claims(call: Call) -> Page[ClaimOut]:
    q: ClaimsQuery = call.query
    member = q.member
    if call.who.role not in STAFF:
        member = acting_member(call)  # a member sees claims they gave or received
        self_or_staff(call, q.member or member)
    after = decode_cursor(q.cursor, [0, ""])
    found = await call.bank.claims(
        call.scheme, member=member, status=q.status, after=(after[0], after[1]), limit=q.limit
    )
    more = encode_cursor([found[-1][0], found[-1][1].id]) if len(found) == q.limit else None
    return Page(items=[ClaimOut.of(c) for _, c in found], next_cursor=more)


async def _claim_seen_by(call: Call) -> Any:
    claim = await call.bank.claim(call.scheme, call.params["claim"])
    if call.who.role not in STAFF and call.who.member not in (claim.member, claim.receiver):
        # as for a claim that does not exist: a member learns nothing of others' claim ids
        raise NotFound(f"no claim {claim.id!r} in scheme {call.scheme!r}", field="claim")
    return claim


async def get_claim(call: Call) -> ClaimOut:
    return ClaimOut.of(await _claim_seen_by(call))


async def confirm(call: Call) -> ClaimOut:
    done = await call.bank.confirm_claim(
        call.scheme,
        call.params["claim"],
        by=acting_member(call),
        involved_only=call.who.role not in STAFF,
    )
    return ClaimOut.of(done)


async def reject(call: Call) -> ClaimOut:
    b: ReasonIn = call.body
    by = acting_member(call)
    return ClaimOut.of(
        await call.bank.reject_claim(call.scheme, call.params["claim"], by=by, reason=b.reason)
    )


async def reverse(call: Call) -> ClaimOut:
    b: ReasonIn = call.body
    by = acting_member(call)
    return ClaimOut.of(
        await call.bank.reverse_claim(call.scheme, call.params["claim"], by=by, reason=b.reason)
    )


class BurnoutOut(Out):
    members: list[str] = Field(description="members over the threshold, by id")


async def burnout(call: Call) -> BurnoutOut:
    q: BurnoutQuery = call.query
    flagged = await call.bank.burnout_flags(
        call.scheme,
        by=acting_member(call),
        today=call.bank.today(),
        hours_per_week=q.hours_per_week,
        weeks=q.weeks,
    )
    return BurnoutOut(members=sorted(flagged))


ENDPOINTS = [
    Endpoint(
        "POST",
        "/schemes/{scheme}/claims",
        log_claim,
        "Log hours",
        PEOPLE,
        body=ClaimIn,
        response=ClaimOut,
        status=201,
        tag="claims",
    ),
    Endpoint(
        "POST",
        "/schemes/{scheme}/claims/{claim}/confirm",
        confirm,
        "Confirm a claim",
        PEOPLE,
        response=ClaimOut,
        tag="claims",
    ),
    Endpoint(
        "GET",
        "/schemes/{scheme}/activities",
        list_activities,
        "List activities",
        ALL_SCHEME_ROLES,
        response=Page[ActivityOut],
        tag="activities",
    ),
    Endpoint(
        "POST",
        "/schemes/{scheme}/activities",
        add_activity,
        "Add an activity",
        STAFF,
        body=ActivityIn,
        response=ActivityOut,
        status=201,
        tag="activities",
    ),
    Endpoint(
        "POST",
        "/schemes/{scheme}/activities/{code}/retire",
        retire_activity,
        "Retire an activity",
        STAFF,
        response=ActivityOut,
        tag="activities",
    ),
    Endpoint(
        "POST",
        "/schemes/{scheme}/claims/group",
        log_group,
        "Log a group session",
        STAFF,
        body=GroupClaimIn,
        response=Page[ClaimOut],
        status=201,
        tag="claims",
    ),
    Endpoint(
        "GET",
        "/schemes/{scheme}/claims",
        list_claims,
        "List claims",
        PEOPLE,
        query=ClaimsQuery,
        response=Page[ClaimOut],
        tag="claims",
    ),
    Endpoint(
        "GET",
        "/schemes/{scheme}/claims/{claim}",
        get_claim,
        "Show a claim",
        PEOPLE,
        response=ClaimOut,
        tag="claims",
    ),
    Endpoint(
        "POST",
        "/schemes/{scheme}/claims/{claim}/reject",
        reject,
        "Reject a claim",
        STAFF,
        body=ReasonIn,
        response=ClaimOut,
        tag="claims",
    ),
    Endpoint(
        "POST",
        "/schemes/{scheme}/claims/{claim}/reverse",
        reverse,
        "Reverse a claim",
        STAFF,
        body=ReasonIn,
        response=ClaimOut,
        tag="claims",
    ),
    Endpoint(
        "GET",
        "/schemes/{scheme}/burnout",
        burnout,
        "List burn-out flags",
        STAFF,
        query=BurnoutQuery,
        response=BurnoutOut,
        tag="claims",
    ),
]
