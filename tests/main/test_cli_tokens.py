"""The CLI's API commands: init, token create, keys rotate, and the demo's tokens; on a SQLite
file, or on a database of the test server's (keys on disk either way)."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ledger.storage import sqlite_url
from main.asgi import Config, create_app
from tests.conftest import SERVER_URL, count_rows, snapshot, started

pytestmark = pytest.mark.both_backends


def _timebank(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "main.cli", *args],
        capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip


def _target(db: Path, db_url: str) -> tuple[str, ...]:
    """--db (and, for a server database, whose keys have no default beside it, --keys) for
    the database of the test: the SQLite file `db`, or the server's, keys at `<db>.keys`."""
    return ("--db", db_url, "--keys", f"{db}.keys") if SERVER_URL else ("--db", str(db))


def _demo(db: Path, db_url: str) -> tuple[str, ...]:
    """The demo (60 entries) on the database of the test: `demo` builds on a SQLite file by
    design, so on a server run it is built beside `db` and copied to the server."""
    built = db.with_name(f"built-{db.name}") if SERVER_URL else db
    made = _timebank("demo", "--db", str(built), "--entries", "60")
    assert made.returncode == 0, made.stderr
    if SERVER_URL:
        copied = _timebank("migrate-store", "--from", str(built), "--to", db_url)
        assert copied.returncode == 0, copied.stdout + copied.stderr
        Path(f"{built}.keys").rename(f"{db}.keys")
    return _target(db, db_url)


async def _me(db: Path, db_url: str, token: str) -> httpx.Response:
    url = db_url if SERVER_URL else sqlite_url(str(db))
    app = create_app(Config(url, Path(f"{db}.keys"), schedule_seconds=0))
    async with started(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})


async def test_init_prints_an_admin_token_the_api_accepts(tmp_path: Path, db_url: str) -> None:
    db = tmp_path / "tb.db"
    made = _timebank("init", *_target(db, db_url))
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("tb_") and "shown only now" in made.stderr
    me = await _me(db, db_url, token)
    assert me.status_code == 200 and me.json()["role"] == "admin"
    secret = token.split("_", 2)[2]
    if not SERVER_URL:
        assert secret not in db.read_bytes().decode("latin-1")  # only its hash kept
    rows = snapshot(db_url if SERVER_URL else sqlite_url(str(db)))
    assert rows["api_tokens"] and secret not in repr(rows)  # only its hash kept


async def test_token_create_checks_scheme_member_and_role(tmp_path: Path, db_url: str) -> None:
    db = tmp_path / "demo.db"
    target = _demo(db, db_url)
    made = _timebank("token", "create", *target, "--role", "coordinator",
                     "--scheme", "taff-housing", "--member", "C1")  # fmt: skip
    assert made.returncode == 0, made.stderr
    me = await _me(db, db_url, made.stdout.strip())
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
        result = _timebank("token", "create", *target, *args)
        assert result.returncode != 0 and not result.stdout, (args, result.stdout)


async def test_a_token_made_to_expire_says_when_and_a_bad_lifetime_is_refused(
    tmp_path: Path, db_url: str
) -> None:
    db = tmp_path / "tb.db"
    assert _timebank("init", *_target(db, db_url)).returncode == 0
    before = time.time()
    made = _timebank("token", "create", *_target(db, db_url), "--role", "admin",
                     "--expires-days", "30")  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert (await _me(db, db_url, made.stdout.strip())).status_code == 200
    rows = count_rows(
        db_url if SERVER_URL else sqlite_url(str(db)),
        {"t": "SELECT expires_us FROM api_tokens WHERE expires_us IS NOT NULL"},
    )
    ((expires_us,),) = rows["t"]  # fmt: skip
    assert before + 30 * 86_400 <= expires_us / 1e6 <= time.time() + 30 * 86_400
    for days in ("0", "-1", "9999"):
        bad = _timebank("token", "create", *_target(db, db_url), "--role", "admin",
                        "--expires-days", days)  # fmt: skip
        assert bad.returncode == 2 and not bad.stdout and "--expires-days" in bad.stderr


@pytest.mark.skipif(bool(SERVER_URL), reason="the demo builds on a SQLite file, by design")
def test_demo_writes_one_private_token_per_role(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    assert _timebank("demo", "--db", str(db), "--entries", "60").returncode == 0
    path = Path(f"{db}.tokens.json")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    tokens = json.loads(path.read_text())
    assert {"admin", "taff-housing tenant T0001", "member-to-member coordinator C1"} <= set(tokens)


@pytest.mark.skipif(not SERVER_URL, reason="needs a PostgreSQL server (server run)")
def test_demo_refuses_a_server_database_and_says_to_copy_one(db_url: str) -> None:
    refused = _timebank("demo", "--db", db_url, "--entries", "60")
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr == (
        "timebank: demo builds on a SQLite file (migrate-store copies it to a server)\n"
    )
    assert snapshot(db_url) == {}  # not a table made


def test_keys_rotate_is_rotate_key(tmp_path: Path, db_url: str) -> None:
    db = tmp_path / "demo.db"
    target = _demo(db, db_url)
    before = _timebank("keys", *target, "--ledger", "taff-housing").stdout.splitlines()
    rotated = _timebank("keys", "rotate", *target, "--ledger", "taff-housing")
    assert rotated.returncode == 0 and "now signing with key" in rotated.stdout
    after = _timebank("keys", "list", *target, "--ledger", "taff-housing")
    assert len(after.stdout.splitlines()) == len(before) + 1
    assert _timebank("verify", "--db", target[1]).returncode == 0


@pytest.mark.parametrize("command", ["verify", "export-log --out x", "checkpoint"])
def test_a_server_that_cannot_be_reached_is_a_plain_error(command: str) -> None:
    url = "postgresql+asyncpg://nobody:secret@127.0.0.1:1/tb"  # nothing listens on port 1
    result = _timebank(*command.split(), "--db", url)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("timebank: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr and "secret" not in result.stderr
