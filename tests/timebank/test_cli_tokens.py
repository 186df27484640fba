"""The CLI's API commands: init, token create, keys rotate, and the demo's tokens."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from api.app import Config, create_app
from ledger.storage import sqlite_url


def _timebank(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "timebank.cli", *args],
        capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip


async def _me(db: Path, token: str) -> httpx.Response:
    app = create_app(Config(sqlite_url(str(db)), Path(f"{db}.keys"), schedule_seconds=0))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})


async def test_init_prints_an_admin_token_the_api_accepts(tmp_path: Path) -> None:
    db = tmp_path / "tb.db"
    made = _timebank("init", "--db", str(db))
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("tb_") and "shown only now" in made.stderr
    me = await _me(db, token)
    assert me.status_code == 200 and me.json()["role"] == "admin"
    assert token.split("_", 2)[2] not in db.read_bytes().decode("latin-1")  # only its hash kept


async def test_token_create_checks_scheme_member_and_role(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    assert _timebank("demo", "--db", str(db), "--entries", "60").returncode == 0
    made = _timebank("token", "create", "--db", str(db), "--role", "coordinator",
                     "--scheme", "taff-housing", "--member", "C1")  # fmt: skip
    assert made.returncode == 0, made.stderr
    me = await _me(db, made.stdout.strip())
    assert me.json() == {"token_id": me.json()["token_id"], "role": "coordinator",
                         "scheme": "taff-housing", "member": "C1", "partner": None}  # fmt: skip
    refused = [
        ("--role", "coordinator", "--scheme", "taff-housing", "--member", "T0001"),  # not held
        ("--role", "member", "--scheme", "nowhere", "--member", "T0001"),
        ("--role", "member", "--scheme", "taff-housing"),  # a person's token names the member
        ("--role", "admin", "--scheme", "taff-housing"),
        ("--role", "commissioner",),
    ]  # fmt: skip
    for args in refused:
        result = _timebank("token", "create", "--db", str(db), *args)
        assert result.returncode != 0 and not result.stdout, (args, result.stdout)


def test_demo_writes_one_private_token_per_role(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    assert _timebank("demo", "--db", str(db), "--entries", "60").returncode == 0
    path = Path(f"{db}.tokens.json")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    tokens = json.loads(path.read_text())
    assert {"admin", "taff-housing tenant T0001", "member-to-member coordinator C1"} <= set(tokens)


def test_keys_rotate_is_rotate_key(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    assert _timebank("demo", "--db", str(db), "--entries", "60").returncode == 0
    before = _timebank("keys", "--db", str(db), "--ledger", "taff-housing").stdout.splitlines()
    rotated = _timebank("keys", "rotate", "--db", str(db), "--ledger", "taff-housing")
    assert rotated.returncode == 0 and "now signing with key" in rotated.stdout
    after = _timebank("keys", "list", "--db", str(db), "--ledger", "taff-housing")
    assert len(after.stdout.splitlines()) == len(before) + 1
    assert _timebank("verify", "--db", str(db)).returncode == 0


@pytest.mark.parametrize("command", ["verify", "export-log --out x", "checkpoint"])
def test_a_server_that_cannot_be_reached_is_a_plain_error(command: str) -> None:
    url = "postgresql+asyncpg://nobody:secret@127.0.0.1:1/tb"  # nothing listens on port 1
    result = _timebank(*command.split(), "--db", url)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("timebank: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr and "secret" not in result.stderr
