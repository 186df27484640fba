"""Shared fixtures: a real SQLite file and key directory per test, and a controllable clock."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import settings

from ledger import KeyRing, LedgerStore
from ledger.storage import sqlite_url

# CI explores a fixed set of examples so a run is repeatable; a developer's run explores anew.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


class Clock:
    """Microseconds since the epoch, moved by the test; starts at 2026-01-01T00:00:00Z."""

    def __init__(self) -> None:
        self.now_us = 1_767_225_600_000_000

    def __call__(self) -> int:
        return self.now_us

    def advance(self, seconds: float) -> None:
        self.now_us += int(seconds * 1_000_000)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.db"


@pytest.fixture
def key_dir(tmp_path: Path) -> Path:
    return tmp_path / "keys"


@pytest.fixture
async def store(db_path: Path, key_dir: Path, clock: Clock) -> AsyncIterator[LedgerStore]:
    s = await LedgerStore.open(sqlite_url(str(db_path)), KeyRing(key_dir), clock=clock)
    try:
        yield s
    finally:
        await s.close()
