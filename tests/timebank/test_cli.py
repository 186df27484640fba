"""The CLI end to end: demo, verify, export-log, verify --bundle."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _timebank(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "timebank.cli", *args], capture_output=True, text=True, check=False
    )


def test_demo_database_verifies_and_its_bundle_verifies_offline(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    made = _timebank("demo", "--db", str(db), "--entries", "300")
    assert made.returncode == 0, made.stderr
    assert made.stdout.splitlines()[-1].startswith("OK 2 ledgers")
    bundle = tmp_path / "log.jsonl"
    exported = _timebank("export-log", "--db", str(db), "--out", str(bundle))
    assert exported.returncode == 0, exported.stderr
    checked = _timebank("verify", "--bundle", str(bundle))
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith("OK 2 ledgers")
