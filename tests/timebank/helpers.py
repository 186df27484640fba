"""Shared by the time bank's tests: a time bank on a real SQLite file, and an activity."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from ledger import KeyRing, verify_database
from ledger.storage import sqlite_url
from main.bootstrap import bootstrap
from tests.conftest import Clock
from timebank.activities import (
    Activity,
    CoForm,
    Contribution,
    CoSubform,
    Mode,
    RelationToPaidWork,
    ServiceArea,
    Voluntariness,
)
from timebank.service import TimeBank


@asynccontextmanager
async def open_bank(path: Path, clock: Clock, url: str | None = None) -> AsyncIterator[TimeBank]:
    """A time bank on the SQLite file `path` (or on `url`, a server database, with its keys
    beside `path`); on leaving, the ledger must verify."""
    read = url or sqlite_url(str(path), read_only=True)
    url = url or sqlite_url(str(path))
    async with await bootstrap(url, KeyRing(path.with_suffix(".keys")), clock=clock) as app:
        yield app.bank
    report = await verify_database(read)
    assert report.ok, report.summary()


def activity(code: str, subform: CoSubform = CoSubform.CO_PERFORMING) -> Activity:
    return Activity(
        code, code.replace("-", " ").title(), CoForm.CO_DELIVERY, subform,
        Contribution.TIME_AND_EFFORT, ServiceArea.HOUSING, Mode.INDIVIDUAL,
        Voluntariness.VOLUNTARY, RelationToPaidWork.SUPPLEMENTS, False, "gardener",
    )  # fmt: skip
