"""The bank test under load (after Jepsen's bank workload), with a soak and an online backup.

A real `timebank serve` runs for TIMEBANK_BANK_SECONDS (default 180) under concurrent clients:
members of a person-to-person scheme pay each other for help (claims with a receiver, confirmed
by the coordinator: transfers between members), a time-credit scheme issues credits that members
redeem for vouchers settled at a partner's till, and readers keep reading. Every read of a
scheme's books (one read snapshot) must show the member balances summing to zero in the
person-to-person scheme and no balance below its floor in either; every balance read must respect
the floor. Meanwhile the server's memory and open files are sampled (they must stay flat), and
halfway through an online backup is taken (deploy/backup.sh) while the writes go on; it must
restore into an empty database and verify, holding a prefix of the final chain.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledger.storage import sqlite_url
from tests.api.test_uvicorn import ADMIN, ROOT, V1, Served
from tests.api.world import LIFT, bearer
from tests.conftest import SERVER_URL, count_rows, server_database
from tests.reliability.conftest import Figures
from tests.reliability.workload import SCHEME, Workload, check_store, set_up

pytestmark = [pytest.mark.slow, pytest.mark.both_backends]
SECONDS = float(os.environ.get("TIMEBANK_BANK_SECONDS", "180"))
BANK, PEOPLE, FLOOR = "bank", tuple(f"P{i}" for i in range(1, 9)), -600
TIMEBANK = str(Path(sys.executable).parent / "timebank")
BACKUP = ROOT / "deploy" / "backup.sh"
ENTRIES = "SELECT ledger_id, seq, hash FROM entries ORDER BY 1, 2"


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), cwd=ROOT, capture_output=True, text=True, check=False,
                          env=os.environ | {"TIMEBANK": TIMEBANK})  # fmt: skip


def _back_up(db_url: str, db_path: Path, where: Path) -> Path:
    """An online backup as deploy/backup.sh takes it, while the service writes."""
    out = where / "backups"
    if SERVER_URL:
        made = _run(str(BACKUP), "postgres", db_url, str(out))
    else:
        made = _run(str(BACKUP), "sqlite", str(db_path), str(out))
    assert made.returncode == 0, made.stdout + made.stderr
    (backup,) = list(out.iterdir())
    return backup


async def _restore(
    backup: Path, db_url: str, where: Path
) -> tuple[bool, dict[tuple[str, int], bytes]]:
    """Restore `backup` into an empty database (the restore runs `timebank verify`): whether it
    verified, and the entries it holds."""
    if not SERVER_URL:
        target = where / "restored.db"
        back = _run(str(BACKUP), "restore-sqlite", str(backup), str(target))
        assert back.returncode == 0, back.stdout + back.stderr
        rows = count_rows(sqlite_url(str(target)), {"e": ENTRIES})["e"]
        return True, {(ledger, seq): bytes(h) for ledger, seq, h in rows}
    return await _restore_postgres(backup, db_url)


async def _restore_postgres(backup: Path, db_url: str) -> tuple[bool, dict[tuple[str, int], bytes]]:
    with server_database() as target:
        back = await asyncio.to_thread(_run, str(BACKUP), "restore-postgres", str(backup), target)
        assert back.returncode == 0, back.stdout + back.stderr
        rows = count_rows(target, {"e": ENTRIES})["e"]
        return True, {(ledger, seq): bytes(h) for ledger, seq, h in rows}


def _flat(samples: list[tuple[float, int, int]]) -> tuple[tuple[int, int], tuple[int, int]]:
    """Memory and open files must not grow. After a warm-up (the first quarter), the last
    quarter's peak against the second quarter's: memory within 15 % + 16 MiB. Open files may
    climb while the connection pools fill (bounded), but no further by the end: at most one
    more pooled connection's in the last quarter than in the third (3: a SQLite connection
    holds the database, its -wal and its -shm), 16 more than in the second; a leak grows with
    the requests (thousands here) and fails both. Gives the second and last quarters' peaks."""
    n = len(samples)
    assert n >= 8, f"too few samples ({n}) to judge"
    q2, q3, q4 = samples[n // 4 : n // 2], samples[n // 2 : 3 * n // 4], samples[3 * n // 4 :]
    rss = (max(s[1] for s in q2), max(s[1] for s in q4))
    fds = (max(s[2] for s in q2), max(s[2] for s in q4))
    assert rss[1] <= rss[0] * 1.15 + 16_384, f"memory grew: {rss} KiB ({samples})"
    assert fds[1] <= max(s[2] for s in q3) + 3, f"open files still growing: ({samples})"
    assert fds[1] <= fds[0] + 16, f"open files grew: {fds} ({samples})"
    return rss, fds


def _process(pid: int) -> tuple[int, int]:
    """The process's resident memory (KiB) and open file descriptors."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


async def _bank(c: httpx.AsyncClient, base: str) -> dict[str, str]:
    admin = bearer(ADMIN)
    scheme = {"id": BANK, "name": "Bank", "model": "person-to-person", "member_floor": FLOOR}
    for path, body in [("/schemes", scheme)] + [
        (f"/schemes/{BANK}/members", {"id": m, "display_name": m,
                                      "roles": ["coordinator" if m == "C1" else "member"]})
        for m in ("C1", *PEOPLE)
    ] + [(f"/schemes/{BANK}/members", {"id": "A1", "display_name": "A1",
                                       "roles": ["scheme-admin"]})]:  # fmt: skip
        assert (await c.post(base + V1 + path, json=body, headers=admin)).status_code == 201
    r = await c.post(f"{base}{V1}/schemes/{BANK}/tokens", headers=admin,
                     json={"role": "scheme-admin", "member": "A1"})  # fmt: skip
    head = bearer(r.json()["token"])  # the admin makes the first; the scheme admin the rest
    r = await c.post(f"{base}{V1}/schemes/{BANK}/tokens", headers=head,
                     json={"role": "coordinator", "member": "C1"})  # fmt: skip
    staff = bearer(r.json()["token"])
    r = await c.post(f"{base}{V1}/schemes/{BANK}/activities", json=LIFT, headers=staff)
    assert r.status_code == 201, r.text
    return staff


class Tally:
    transfers = refused = reads = books = 0
    samples: list[tuple[float, int, int]]

    def __init__(self) -> None:
        self.samples = []


async def test_balances_sum_to_zero_and_hold_their_floors_under_load_and_a_backup_restores(
    db_url: str, db_path: Path, tmp_path: Path, figures: Figures
) -> None:
    if not SERVER_URL:  # deploy/backup.sh uses the sqlite3 command's online backup
        done = _run(str(ROOT / "scripts" / "install-debian"), "sqlite3")
        assert done.returncode == 0, done.stderr
    server = Served(db_url, tmp_path / "serve.log", tmp_path / "keys")
    server.wait_healthy(30)
    rng, tally, today = random.Random(7), Tally(), datetime.now(UTC).date()
    period = {"start": (today - timedelta(days=400)).isoformat(), "end": today.isoformat()}
    backup: Path | None = None
    deadline = time.monotonic() + SECONDS
    try:
        async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=40)) as c:
            base = server.base
            staff = await _bank(c, base)
            load = Workload(11, await set_up(c, base), today)

            async def transfer() -> None:
                payee, payer = rng.sample(PEOPLE, 2)
                day = today - timedelta(days=rng.randrange(1, 300))
                body = {
                    "member": payee,
                    "receiver": payer,
                    "activity": "lift",
                    "date": day.isoformat(),
                    "minutes": rng.choice((15, 30, 60, 120)),
                }
                key = {"Idempotency-Key": uuid.uuid4().hex}  # fmt: skip
                r = await c.post(f"{base}{V1}/schemes/{BANK}/claims", json=body,
                                 headers=staff | key)  # fmt: skip
                assert r.status_code == 201, r.text
                r = await c.post(f"{base}{V1}/schemes/{BANK}/claims/{r.json()['id']}/confirm",
                                 headers=staff)  # fmt: skip
                assert r.status_code in (200, 409), r.text  # 409: the payer is at the floor
                if r.status_code == 200:
                    tally.transfers += 1
                else:
                    tally.refused += 1
                    assert r.json()["code"] == "floor_breached", r.text

            async def read() -> None:
                for scheme, headers in ((BANK, staff), (SCHEME, load.callers["coordinator"])):
                    r = await c.get(f"{base}{V1}/schemes/{scheme}/books", params=period,
                                    headers=headers)  # fmt: skip
                    books: dict[str, Any] = r.json()
                    assert r.status_code == 200 and books["balanced"], books
                    held = books["by_member"]
                    floor = FLOOR if scheme == BANK else 0
                    assert all(v >= floor for v in held.values()), books
                    if scheme == BANK:
                        assert sum(held.values()) == 0, books
                    else:
                        assert sum(held.values()) == books["closing_outstanding"], books
                    tally.books += 1
                member = rng.choice(PEOPLE)
                r = await c.get(f"{base}{V1}/schemes/{BANK}/members/{member}/balance",
                                headers=staff)  # fmt: skip
                assert r.status_code == 200 and r.json()["minutes"] >= FLOOR, r.text
                tally.reads += 1

            async def redeem() -> None:
                assert await load.send(c, base, load.next_write()), "the server dropped a write"

            async def loop(step: Callable[[], Awaitable[None]]) -> None:
                while time.monotonic() < deadline:
                    await step()

            async def watch() -> None:
                nonlocal backup
                start = time.monotonic()
                while time.monotonic() < deadline:
                    tally.samples.append((time.monotonic() - start, *_process(server.proc.pid)))
                    if backup is None and time.monotonic() - start > SECONDS / 2:
                        backup = await asyncio.to_thread(_back_up, db_url, db_path, tmp_path)
                    await asyncio.sleep(2)

            await asyncio.gather(*(loop(transfer) for _ in range(6)),
                                 *(loop(redeem) for _ in range(4)),
                                 *(loop(read) for _ in range(3)), watch())  # fmt: skip
            assert not load.record.unknown
            taff = check_store(db_url, load.record)
    finally:
        assert server.terminate() is not None, server.output()
    done = _run(TIMEBANK, "verify", "--db", db_url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert backup is not None
    restored, backed_up = await _restore(backup, db_url, tmp_path)
    final = {(ledger, seq): bytes(h) for ledger, seq, h in count_rows(db_url, {"e": ENTRIES})["e"]}
    assert 0 < len(backed_up) < len(final)
    assert all(final.get(at) == h for at, h in backed_up.items()), "the backup is not a prefix"
    rss, fds = _flat(tally.samples)
    figures(
        seconds=SECONDS, transfers=tally.transfers, refused_at_the_floor=tally.refused,
        books_reads=tally.books, balance_reads=tally.reads,
        redemption_writes=len(load.record.acknowledged), taff_rows=taff,
        entries=len(final), backup_entries=len(backed_up), backup_restored_and_verified=restored,
        rss_kib_first_last=rss, open_files_first_last=fds, samples=len(tally.samples),
    )  # fmt: skip
