"""Who is asking: bearer tokens, roles per scheme, and the deployment admin. Pure: no I/O.

A token reads `tb_<id>_<secret>`. Only the SHA-256 of the secret is stored; the secret is shown
once, when the token is made. Secrets are 256 random bits, so a plain hash (not a password hash)
is the right tool: nothing is there to brute-force. Each token acts in one scheme with one role;
a person in two schemes holds two tokens. The deployment admin's token has no scheme.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field
from enum import StrEnum

_TOKEN = re.compile(r"tb_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")


class ApiRole(StrEnum):
    ADMIN = "admin"  # the deployment's administrator: makes schemes and their first tokens
    SCHEME_ADMIN = "scheme-admin"
    COORDINATOR = "coordinator"
    MEMBER = "member"
    PARTNER_STAFF = "partner-staff"
    COMMISSIONER = "commissioner"


def a_role(role: ApiRole | str) -> str:
    """The role with its article, for messages: "an admin", "a coordinator"."""
    return f"{'an' if str(role)[0] in 'aeiou' else 'a'} {role}"


PERSON_ROLES = frozenset({ApiRole.MEMBER, ApiRole.COORDINATOR, ApiRole.SCHEME_ADMIN})
STAFF = frozenset({ApiRole.COORDINATOR, ApiRole.SCHEME_ADMIN})
ALL_SCHEME_ROLES = frozenset(ApiRole) - {ApiRole.ADMIN}
ADMIN_MAKES = frozenset({ApiRole.SCHEME_ADMIN, ApiRole.PARTNER_STAFF})  # the first of each


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of one request."""

    token_id: str
    role: ApiRole
    scheme: str | None  # None only for the deployment admin
    member: str | None  # the member a person's token acts as
    partner: str | None = None  # the partner organisation a partner-staff token acts for

    @property
    def is_admin(self) -> bool:
        return self.role is ApiRole.ADMIN


@dataclass(frozen=True, slots=True)
class TokenRecord:
    id: str
    secret_sha256: str
    role: ApiRole
    scheme: str | None
    member: str | None
    label: str
    created_by: str
    created_us: int
    revoked_us: int | None = None
    partner: str | None = None
    expires_us: int | None = None  # None: until revoked

    def principal(self) -> Principal:
        return Principal(self.id, self.role, self.scheme, self.member, self.partner)

    def expired(self, now_us: int) -> bool:
        return self.expires_us is not None and now_us >= self.expires_us


@dataclass
class Throttle:
    """Failed attempts per client (its address), counted in a fixed window that opens at the
    client's first failure: after `limit` failures every attempt is refused until the window
    ends. Memory is bounded: beyond `clients` entries the least recently failing is forgotten.
    """

    limit: int
    window_us: int
    clients: int = 10_000
    _seen: OrderedDict[str, tuple[int, int]] = field(default_factory=OrderedDict)  # start, n

    def wait_seconds(self, client: str, now_us: int) -> int:
        """How long `client` must wait before trying again (0: it may try now)."""
        hit = self._seen.get(client)
        if hit is None:
            return 0
        start, failures = hit
        if now_us >= start + self.window_us:
            del self._seen[client]
            return 0
        if failures < self.limit:
            return 0
        return max(1, -(-(start + self.window_us - now_us) // 1_000_000))

    def failed(self, client: str, now_us: int) -> None:
        hit = self._seen.pop(client, None)
        if hit is None or now_us >= hit[0] + self.window_us:
            hit = (now_us, 0)
        self._seen[client] = (hit[0], hit[1] + 1)  # now the most recent
        while len(self._seen) > self.clients:
            self._seen.popitem(last=False)

    def at_least(self, client: str, failures: int) -> None:
        """Raise the count of `client`'s current window to `failures`, as counted by every
        process (`TokenBook`), once this one has counted a failure of its own."""
        hit = self._seen.get(client)
        if hit is not None and failures > hit[1]:
            self._seen[client] = (hit[0], failures)

    def __len__(self) -> int:
        return len(self._seen)


def new_token(scope: str) -> tuple[str, str, str]:
    """A fresh token: (id, the whole token to hand over, the secret's hash to store).

    The id is derived from `scope` (creator and idempotency key), so a retried request finds
    the token it made; the secret is always fresh.
    """
    token_id = hashlib.sha256(scope.encode()).hexdigest()[:16]
    secret = secrets.token_urlsafe(32)
    return token_id, f"tb_{token_id}_{secret}", digest(secret)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_bearer(header: str) -> tuple[str, str] | None:
    """(token id, secret) from an `Authorization: Bearer tb_...` header, or None."""
    scheme, _, value = header.partition(" ")
    match = _TOKEN.fullmatch(value.strip()) if scheme.lower() == "bearer" else None
    return (match.group(1), match.group(2)) if match else None


def secret_matches(secret: str, stored_sha256: str) -> bool:
    return hmac.compare_digest(digest(secret), stored_sha256)


def grant_problem(
    creator: Principal, role: ApiRole, scheme: str | None, member_roles: frozenset[str] | None
) -> tuple[str, str] | None:
    """Why `creator` may not make a token with `role` in `scheme`, as (field, message), or None.

    `member_roles` is the roles held by the member the token is for (None: no member named).
    The deployment admin makes admin tokens, and scheme-admin and partner-staff tokens (only the
    first of each: `TokenBook.create(first_only=...)`), never a person's other tokens, so it
    cannot act as a member; a scheme admin makes any scheme token in their scheme; a coordinator
    member tokens in theirs; partner staff their own partner's staff tokens. A person's token
    needs a member who holds that role.
    """
    if role is ApiRole.ADMIN:
        if not creator.is_admin:
            return "role", "only the deployment admin makes admin tokens"
        return ("scheme", "an admin token has no scheme") if scheme else None
    if scheme is None:
        return "scheme", "a scheme token needs its scheme"
    if creator.is_admin:
        if role not in ADMIN_MAKES:
            return "role", (
                "the deployment admin makes only scheme-admin and partner-staff "
                "tokens; the scheme admin makes the others"
            )
    elif creator.role is ApiRole.SCHEME_ADMIN:
        pass
    elif creator.role is ApiRole.COORDINATOR:
        if role is not ApiRole.MEMBER:
            return "role", "coordinators make member tokens only"
    elif creator.role is ApiRole.PARTNER_STAFF:
        if role is not ApiRole.PARTNER_STAFF:
            return "role", "partner staff make partner-staff tokens only"
    else:
        return "role", "only admins, coordinators and partner staff make tokens"
    if role in PERSON_ROLES:
        if member_roles is None:
            return "member", f"{a_role(role)} token acts as a member: name them"
        if role.value not in member_roles:
            return "role", f"that member does not hold the role {role}"
    elif member_roles is not None:
        return "member", f"{a_role(role)} token does not act as a member"
    return None
