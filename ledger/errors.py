"""Exceptions raised by the ledger: each has a stable `code` and, where it applies, a field."""

from __future__ import annotations


class LedgerError(Exception):
    """Base class: a request the ledger refused. Nothing was written."""

    code = "ledger_error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidRequest(LedgerError):
    """The request is malformed: a bad name, amount, or shape."""

    code = "invalid_request"


def refuse(problems: list[tuple[str, str]]) -> None:
    """Raise `InvalidRequest` for the first of a validator's (field, message) problems, if any."""
    if problems:
        field, message = problems[0]
        raise InvalidRequest(message, field=field)


class NotFound(LedgerError):
    """A ledger, account, entry or checkpoint that does not exist."""

    code = "not_found"


class Conflict(LedgerError):
    """The request clashes with what exists: a duplicate account, an entry already reversed."""

    code = "conflict"


class FloorBreached(LedgerError):
    """The entry would take an account below its floor (pending reservations counted)."""

    code = "floor_breached"


class NotYetDue(LedgerError):
    """Too early: a reservation cannot be expired before its expiry time."""

    code = "not_yet_due"


class IdempotencyConflict(LedgerError):
    """The idempotency key was used before with a different request."""

    code = "idempotency_conflict"


class KeyUnavailable(LedgerError):
    """No usable private signing key for the ledger's current key id."""

    code = "key_unavailable"
