"""Sign-in accounts for people using the app: passwords, sessions and login throttling. Pure.

A person signs in with a login name and a password (Argon2id, argon2-cffi's defaults). An
account carries the same scope as an API token: one scheme, one role, and the member or partner
it acts as, so pages are authorised exactly as API calls are. A session is a random 256-bit id
in a cookie; only its SHA-256 is stored, with its CSRF token and expiry.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from identity.auth import ApiRole, Principal

SESSION_SECONDS = 12 * 3600  # a session ends 12 hours after sign-in, or on sign-out
IDLE_SECONDS = 2 * 3600  # or after two hours without a request
MAX_FAILURES = 5  # failed sign-ins per login (and per address) in one window...
WINDOW_SECONDS = 15 * 60  # ...before sign-in is refused for the rest of the window
MIN_PASSWORD = 10
LOGIN = re.compile(r"[a-z0-9][a-z0-9._@-]{2,63}")
LANGUAGES = ("en", "cy")

_hasher = PasswordHasher()
_DUMMY = _hasher.hash("not a password anyone has")


@dataclass(frozen=True, slots=True)
class Account:
    login: str
    role: ApiRole
    scheme: str | None  # None only for the deployment admin
    member: str | None
    partner: str | None
    password_hash: str
    lang: str  # "" = follow the browser
    created_us: int
    disabled_us: int | None = None

    def principal(self) -> Principal:
        return Principal(f"web:{self.login}", self.role, self.scheme, self.member, self.partner)


@dataclass(frozen=True, slots=True)
class Session:
    id_sha256: str
    login: str
    csrf: str
    created_us: int
    expires_us: int
    seen_us: int
    revoked_us: int | None = None

    def live(self, now_us: int) -> bool:
        idle_ok = now_us - self.seen_us < IDLE_SECONDS * 1_000_000
        return self.revoked_us is None and now_us < self.expires_us and idle_ok


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a password needs at least {MIN_PASSWORD} characters")
    return _hasher.hash(password)


def password_matches(password: str, stored: str | None) -> bool:
    """Argon2 verification; with no stored hash, a dummy one is checked (same time taken)."""
    try:
        return _hasher.verify(stored or _DUMMY, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def new_session(login: str, now_us: int) -> tuple[str, Session]:
    """A fresh session: (the cookie value, the record to store)."""
    cookie = secrets.token_urlsafe(32)
    record = Session(
        session_digest(cookie),
        login,
        secrets.token_urlsafe(32),
        now_us,
        now_us + SESSION_SECONDS * 1_000_000,
        now_us,
    )
    return cookie, record


def session_digest(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


def throttled(failures_in_window: int) -> bool:
    return failures_in_window >= MAX_FAILURES


def window_start(now_us: int) -> int:
    return now_us - WINDOW_SECONDS * 1_000_000
