"""`timebank migrate-store` copies a live scheme's ledger and data, every hash and signature
kept, into an empty database (a server's, when the tests have one), and the copy verifies."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ledger.storage import sqlite_url
from tests.conftest import SERVER_URL, count_rows

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.both_backends
SIGNED = {
    "entries": "SELECT ledger_id, seq, hash, signature FROM entries ORDER BY ledger_id, seq",
    "checkpoints": "SELECT ledger_id, size, root, signature FROM checkpoints ORDER BY 1, 2",
    "claims": "SELECT scheme, id, status, entry_seq FROM tb_claims ORDER BY scheme, id",
    "vouchers": "SELECT scheme, code, reservation FROM pt_vouchers ORDER BY scheme, code",
}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "main.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, check=False)  # fmt: skip


def test_a_copied_store_keeps_every_hash_and_signature_and_verifies(
    tmp_path: Path, db_url: str
) -> None:
    demo = tmp_path / "demo.db"
    built = _cli("demo", "--db", str(demo), "--entries", "300")
    assert built.returncode == 0, built.stderr
    target = db_url if SERVER_URL else str(tmp_path / "copy.db")
    copied = _cli("migrate-store", "--from", str(demo), "--to", target)
    assert copied.returncode == 0, copied.stdout + copied.stderr
    assert "OK" in copied.stdout and "entries" in copied.stdout
    source_rows = count_rows(sqlite_url(str(demo)), SIGNED)
    target_url = db_url if SERVER_URL else sqlite_url(target)
    target_rows = count_rows(target_url, SIGNED)
    assert len(source_rows["entries"]) > 300
    for name in SIGNED:
        assert [tuple(map(_plain, r)) for r in target_rows[name]] == [
            tuple(map(_plain, r)) for r in source_rows[name]
        ], name
    verified = _cli("verify", "--db", target)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_store_is_copied_only_into_an_empty_database(tmp_path: Path) -> None:
    demo = tmp_path / "demo.db"
    assert _cli("demo", "--db", str(demo), "--entries", "100").returncode == 0
    again = _cli("migrate-store", "--from", str(demo), "--to", str(demo))
    assert again.returncode == 2 and "not empty" in again.stderr


def _plain(value: object) -> object:
    return bytes(value) if isinstance(value, memoryview) else value
