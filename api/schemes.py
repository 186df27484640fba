"""Routes for the caller, schemes and bearer tokens."""

from __future__ import annotations

from identity.auth import ALL_SCHEME_ROLES, ApiRole, TokenRecord, grant_problem
from ledger import NotFound, from_us, to_us
from timebank.claims import ClaimRules
from timebank.schemes import Scheme

from .endpoints import Call, Endpoint, decode_cursor, encode_cursor
from .models import MeOut, Page, PageQuery, SchemeIn, SchemeOut, TokenIn, TokenOut
from .problems import Problem

ADMIN = frozenset({ApiRole.ADMIN})
EVERYONE = frozenset(ApiRole)
TOKEN_MAKERS = frozenset(
    {ApiRole.ADMIN, ApiRole.SCHEME_ADMIN, ApiRole.COORDINATOR, ApiRole.PARTNER_STAFF}
)
TOKEN_KEEPERS = frozenset({ApiRole.ADMIN, ApiRole.SCHEME_ADMIN})


async def me(call: Call) -> MeOut:
    w = call.who
    return MeOut(
        token_id=w.token_id, role=w.role, scheme=w.scheme, member=w.member, partner=w.partner
    )


async def create_scheme(call: Call) -> SchemeOut:
    b: SchemeIn = call.body
    if b.min_minutes > b.max_minutes:
        raise Problem(422, "min_minutes cannot exceed max_minutes", field="min_minutes")
    rules = ClaimRules(
        b.model, b.min_minutes, b.max_minutes, b.members_may_log_for_others, b.claim_days_back
    )
    scheme = Scheme(
        b.id, b.name, rules, b.member_floor, b.credit_expiry_months, b.auto_accept_hours
    )
    return SchemeOut.of(await call.bank.create_scheme(scheme))


async def list_schemes(call: Call) -> Page[SchemeOut]:
    if call.who.is_admin:
        found = await call.bank.schemes()
    else:
        found = [await call.bank.scheme(call.who.scheme or "")]
    return Page(items=[SchemeOut.of(s) for s in found], next_cursor=None)


async def get_scheme(call: Call) -> SchemeOut:
    return SchemeOut.of(await call.bank.scheme(call.scheme))


async def create_token(call: Call) -> TokenOut:
    b: TokenIn = call.body
    role = ApiRole(b.role)
    roles = None
    if b.member is not None:
        member = await call.bank.member(call.scheme, b.member)
        if member.erased:
            raise Problem(409, f"member {b.member} was erased", code="conflict", field="member")
        roles = frozenset(member.roles)
    scheme = None if role is ApiRole.ADMIN else call.scheme
    why = grant_problem(call.who, role, scheme, roles)
    if why is not None:
        raise Problem(403 if why[0] == "role" else 422, why[1], field=why[0])
    if (role is ApiRole.PARTNER_STAFF) != (b.partner is not None):
        raise Problem(422, "partner-staff tokens, and only they, name a partner", field="partner")
    if b.partner is not None:
        await call.services.partners.agreement(call.scheme, b.partner)  # 404 without one
        if call.who.role is ApiRole.PARTNER_STAFF and b.partner != call.who.partner:
            raise Problem(
                403, "partner staff make their own partner's tokens only", field="partner"
            )
    expires = to_us(b.expires) if b.expires is not None else None
    if expires is not None and expires <= call.bank.clock():
        raise Problem(422, "a token cannot expire in the past", field="expires")
    record, token = await call.services.tokens.create(
        role,
        scheme,
        b.member,
        b.label,
        created_by=call.who.token_id,
        idempotency_key=call.idempotency_key,
        partner=b.partner,
        expires_us=expires,
        first_only=call.who.is_admin,
    )
    return _token_out(record, token)


def _token_out(t: TokenRecord, token: str | None = None) -> TokenOut:
    return TokenOut(
        id=t.id,
        role=t.role,
        scheme=t.scheme,
        member=t.member,
        partner=t.partner,
        label=t.label,
        revoked=t.revoked_us is not None,
        token=token,
        expires=from_us(t.expires_us).isoformat() if t.expires_us is not None else None,
    )


async def list_tokens(call: Call) -> Page[TokenOut]:
    q: PageQuery = call.query
    after = decode_cursor(q.cursor, "")
    found = await call.services.tokens.tokens(call.scheme, after=after, limit=q.limit)
    items = [_token_out(t) for t in found]
    more = encode_cursor(found[-1].id) if len(found) == q.limit else None
    return Page(items=items, next_cursor=more)


async def revoke_token(call: Call) -> TokenOut:
    tokens = call.services.tokens
    record = await tokens.token(call.params["token"])
    if record.scheme != call.scheme:
        raise NotFound(f"no token {record.id!r}", field="token")
    return _token_out(await tokens.revoke(record.id))


ENDPOINTS = [
    Endpoint("GET", "/me", me, "Show who the token acts as", EVERYONE, response=MeOut, tag="auth"),
    Endpoint(
        "POST",
        "/schemes",
        create_scheme,
        "Create a scheme and its ledger",
        ADMIN,
        body=SchemeIn,
        response=SchemeOut,
        status=201,
        tag="schemes",
    ),
    Endpoint(
        "GET",
        "/schemes",
        list_schemes,
        "List the schemes the caller may see",
        EVERYONE,
        response=Page[SchemeOut],
        tag="schemes",
    ),
    Endpoint(
        "GET",
        "/schemes/{scheme}",
        get_scheme,
        "Show a scheme's settings",
        ALL_SCHEME_ROLES | ADMIN,
        response=SchemeOut,
        tag="schemes",
    ),
    Endpoint(
        "POST",
        "/schemes/{scheme}/tokens",
        create_token,
        "Make a bearer token",
        TOKEN_MAKERS,
        body=TokenIn,
        response=TokenOut,
        status=201,
        tag="auth",
    ),
    Endpoint(
        "GET",
        "/schemes/{scheme}/tokens",
        list_tokens,
        "List a scheme's tokens",
        TOKEN_KEEPERS,
        query=PageQuery,
        response=Page[TokenOut],
        tag="auth",
    ),
    Endpoint(
        "POST",
        "/schemes/{scheme}/tokens/{token}/revoke",
        revoke_token,
        "Revoke a token",
        TOKEN_KEEPERS,
        response=TokenOut,
        tag="auth",
    ),
]
