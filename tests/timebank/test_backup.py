"""Backup and restore as deploy/backup.sh does them: an online SQLite backup, or a PostgreSQL
dump, restored into an empty database, passes `timebank verify` with every entry kept."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ledger.storage import sqlite_url
from tests.conftest import SERVER_URL, count_rows, server_database

ROOT = Path(__file__).resolve().parents[2]
BACKUP = ROOT / "deploy" / "backup.sh"
TIMEBANK = str(Path(sys.executable).parent / "timebank")
ENTRIES = {"entries": "SELECT ledger_id, seq, hash, signature FROM entries ORDER BY 1, 2"}


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"TIMEBANK": TIMEBANK}
    return subprocess.run(list(argv), cwd=ROOT, capture_output=True, text=True, check=False,
                          env=env)  # fmt: skip


def _demo(where: Path) -> Path:
    db = where / "demo.db"
    built = _run(TIMEBANK, "demo", "--db", str(db), "--entries", "300")
    assert built.returncode == 0, built.stderr
    return db


def _plain(rows: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
    return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in rows]


@pytest.fixture(scope="module")
def sqlite3_cli() -> None:
    done = _run(str(ROOT / "scripts" / "install-debian"), "sqlite3")
    assert done.returncode == 0, done.stderr


def test_an_online_sqlite_backup_restores_and_verifies(tmp_path: Path, sqlite3_cli: None) -> None:
    db = _demo(tmp_path)
    out = tmp_path / "backups"
    made = _run(str(BACKUP), "sqlite", str(db), str(out))
    assert made.returncode == 0, made.stdout + made.stderr
    (backup,) = list(out.iterdir())
    restored = tmp_path / "restored.db"
    back = _run(str(BACKUP), "restore-sqlite", str(backup), str(restored))
    assert back.returncode == 0, back.stdout + back.stderr
    verified = _run(TIMEBANK, "verify", "--db", str(restored))
    assert verified.returncode == 0 and verified.stdout.startswith("OK"), verified.stdout
    assert _plain(count_rows(sqlite_url(str(restored)), ENTRIES)["entries"]) == _plain(
        count_rows(sqlite_url(str(db)), ENTRIES)["entries"]
    )
    again = _run(str(BACKUP), "restore-sqlite", str(backup), str(restored))
    assert again.returncode != 0  # a restore never overwrites


@pytest.mark.postgres_only
@pytest.mark.skipif(not SERVER_URL, reason="needs a PostgreSQL server (scripts/test-postgres)")
async def test_a_postgres_dump_restores_into_an_empty_database_and_verifies(
    tmp_path: Path, db_url: str
) -> None:
    db = _demo(tmp_path)
    copied = _run(TIMEBANK, "migrate-store", "--from", str(db), "--to", db_url)
    assert copied.returncode == 0, copied.stdout + copied.stderr
    out = tmp_path / "dumps"
    made = _run(str(BACKUP), "postgres", db_url, str(out))
    assert made.returncode == 0, made.stdout + made.stderr
    (dump,) = list(out.iterdir())
    with server_database() as target:
        back = _run(str(BACKUP), "restore-postgres", str(dump), target)
        assert back.returncode == 0, back.stdout + back.stderr
        verified = _run(TIMEBANK, "verify", "--db", target)
        assert verified.returncode == 0 and verified.stdout.startswith("OK"), verified.stdout
        assert _plain(count_rows(target, ENTRIES)["entries"]) == _plain(
            count_rows(db_url, ENTRIES)["entries"]
        )
