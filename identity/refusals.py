"""Identity's refusals: not signed in, too many failures, not allowed. The API maps each to its
problem+json response (`api.problems.from_exception`)."""

from __future__ import annotations


class Refused(Exception):
    """A request identity will not let through; `field` names what was wrong."""

    def __init__(self, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class Unauthenticated(Refused):
    """No usable credential (401)."""


class Throttled(Refused):
    """Too many failed attempts from this client: try again in `retry_after` seconds (429)."""

    def __init__(self, detail: str, retry_after: int, field: str | None = None) -> None:
        super().__init__(detail, field)
        self.retry_after = retry_after


class Forbidden(Refused):
    """The caller may not do this (403)."""
