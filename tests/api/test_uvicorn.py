"""The API as deployed: `timebank serve` (uvicorn) in a process of its own, over real HTTP.

A claim is logged and confirmed over a socket; the server stops cleanly on SIGTERM; the database
it leaves verifies and holds the confirmed entry, which a second server on the same database
serves. On a SQLite file, or on a database of its own on the test server (scripts/test-postgres).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.world import ACTIVITY, bearer
from tests.conftest import SERVER_URL, count_rows

pytestmark = pytest.mark.both_backends

ROOT = Path(__file__).resolve().parent.parent.parent
ADMIN = "uvicorn-test-admin-secret"
V1 = "/api/v1"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Served:
    """`python -m main.cli serve` on a free loopback port; its output goes to a file."""

    def __init__(self, db: Path | str, log: Path, key_dir: Path | None = None) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIMEBANK_")}
        env["TIMEBANK_ADMIN_TOKEN"] = ADMIN
        if key_dir is not None:
            env["TIMEBANK_KEY_DIR"] = str(key_dir)
        argv = [sys.executable, "-m", "main.cli", "serve", "--db", str(db)]
        argv += ["--port", str(self.port), "--schedule-seconds", "0"]
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_healthy(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"the server exited:\n{self.output()}"
            try:
                if httpx.get(f"{self.base}{V1}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"not healthy within {timeout} s:\n{self.output()}")

    def terminate(self, timeout: float = 10.0) -> int | None:
        """SIGTERM and wait; the exit code, or None if it had to be killed."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return None
        return self.proc.returncode


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[Path | str], Served]]:
    """Start servers on a database (a SQLite file, its keys beside it; or a server's URL, its
    keys in the test's directory); any still running at the end are stopped."""
    started: list[Served] = []

    def start(db: Path | str) -> Served:
        keys = tmp_path / "keys" if isinstance(db, str) else None
        server = Served(db, tmp_path / f"server{len(started)}.log", keys)
        started.append(server)
        server.wait_healthy()
        return server

    yield start
    for server in started:
        server.terminate()


def _ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body, dict)
    return body


def _verify(db: Path | str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "main.cli", "verify", "--db", str(db)],
        capture_output=True, text=True, check=False, cwd=ROOT, timeout=60,
    )  # fmt: skip


def _sessions(url: str, deadline: float) -> int:
    """Other sessions connected to the server database `url`, waiting up to `deadline`
    (time.monotonic) for them to end."""
    while True:
        sql = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        sql += "AND pid <> pg_backend_pid()"
        (n,) = count_rows(url, {"n": sql})["n"][0]
        if n == 0 or time.monotonic() > deadline:
            return int(n)
        time.sleep(0.05)


def test_a_claim_over_real_http_survives_sigterm(
    tmp_path: Path, serve: Callable[[Path | str], Served], db_url: str
) -> None:
    db: Path | str = db_url if SERVER_URL else tmp_path / "served.db"
    server = serve(db)
    admin = bearer(ADMIN)
    scheme = f"{V1}/schemes/riverside"
    yesterday = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    with httpx.Client(base_url=server.base, timeout=10) as client:
        body = {"id": "riverside", "name": "Riverside", "model": "time-credits"}
        _ok(client.post(f"{V1}/schemes", json=body, headers=admin), 201)
        tokens: dict[str, dict[str, str]] = {}
        # the admin makes the scheme admin's token; the scheme admin makes the others
        for who, role in (("A1", "scheme-admin"), ("C1", "coordinator"), ("M1", "member")):
            person = {"id": who, "display_name": f"Person {who}", "roles": [role]}
            _ok(client.post(f"{scheme}/members", json=person, headers=admin), 201)
            made = _ok(
                client.post(f"{scheme}/tokens", json={"role": role, "member": who},
                            headers=tokens.get("A1", admin)), 201,
            )  # fmt: skip
            tokens[who] = bearer(str(made["token"]))
        _ok(client.post(f"{scheme}/activities", json=ACTIVITY, headers=tokens["C1"]), 201)
        claim = {"activity": ACTIVITY["code"], "date": yesterday, "minutes": 90}
        logged = _ok(
            client.post(f"{scheme}/claims", json=claim,
                        headers=tokens["M1"] | {"Idempotency-Key": "uvicorn-1"}), 201,
        )  # fmt: skip
        assert logged["status"] == "pending" and logged["entry_seq"] is None
        done = _ok(client.post(f"{scheme}/claims/{logged['id']}/confirm", headers=tokens["C1"]))
        assert done["status"] == "confirmed" and done["entry_seq"] == 1
        balance = _ok(client.get(f"{scheme}/members/M1/balance", headers=tokens["M1"]))
        assert balance == {"member": "M1", "minutes": 90}
        spec = client.get(f"{V1}/openapi.json")
        assert spec.status_code == 200 and spec.headers["content-type"] == "application/json"
        assert spec.json()["openapi"].startswith("3.")
        assert f"{V1}/schemes/{{scheme}}/claims/{{claim}}/confirm" in spec.json()["paths"]

    started = time.monotonic()
    code = server.terminate()
    # uvicorn shuts down gracefully (the app's lifespan closes the database), then raises the
    # signal again so that the process exits by it: -SIGTERM is a clean stop, as 0 would be.
    assert code in (0, -signal.SIGTERM), f"exit {code}:\n{server.output()}"
    assert time.monotonic() - started < 5
    assert "Traceback" not in server.output()
    if isinstance(db, Path):
        wal = db.with_name(db.name + "-wal")
        assert not wal.exists() or wal.stat().st_size == 0, "the server closed the database"
    else:  # the server closed its connections: none is left on the database
        assert _sessions(db, time.monotonic() + 2) == 0, "the server closed the database"

    checked = _verify(db)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.startswith("OK 1 ledgers, 1 entries"), checked.stdout

    again = serve(db)  # what was acknowledged is on disk: a new process serves it
    with httpx.Client(base_url=again.base, timeout=10) as client:
        got = _ok(client.get(f"{scheme}/claims/{logged['id']}", headers=tokens["C1"]))
        assert got["status"] == "confirmed" and got["entry_seq"] == 1
        balance = _ok(client.get(f"{scheme}/members/M1/balance", headers=tokens["M1"]))
        assert balance["minutes"] == 90
    assert again.terminate() in (0, -signal.SIGTERM)
