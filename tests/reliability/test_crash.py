"""Crash consistency: `timebank serve` killed with SIGKILL at random moments under a seeded
mixed workload (claims, confirmations, vouchers, settlements, and clients' retries with the same
Idempotency-Key), then restarted, again and again. After every restart: each write that had no
answer is retried with its key and gets exactly one outcome, every acknowledged write is in the
database with the numbers its answer gave, the chain has no gap or fork, postings balance,
balances sum to zero, no account is below its floor, and the ledger verifies.

TIMEBANK_CRASH_CYCLES sets the number of kills (default 50).
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from ledger import verify_database
from ledger.storage import sqlite_url
from tests.api.test_uvicorn import ROOT, Served
from tests.conftest import SERVER_URL
from tests.reliability.conftest import Figures
from tests.reliability.workload import Workload, check_store, set_up

pytestmark = [pytest.mark.slow, pytest.mark.both_backends]
CYCLES = int(os.environ.get("TIMEBANK_CRASH_CYCLES", "50"))
WRITERS = 12  # concurrent clients: enough that most kills land with writes in flight
SEED = 20261123


def _read_url(db_url: str, db_path: Path) -> str:
    return db_url if SERVER_URL else sqlite_url(str(db_path), read_only=True)


async def test_sigkill_at_random_moments_loses_no_acknowledged_write(
    db_url: str, db_path: Path, tmp_path: Path, figures: Figures
) -> None:
    keys, rng = tmp_path / "keys", random.Random(SEED)
    load: Workload | None = None
    cut, busy_kills, rows = 0, 0, {}
    for cycle in range(CYCLES + 1):
        server = Served(db_url, tmp_path / f"serve-{cycle}.log", keys)
        server.wait_healthy(30)
        async with httpx.AsyncClient(timeout=30) as c:
            if load is None:
                load = Workload(SEED, await set_up(c, server.base), datetime.now(UTC).date())
            for w in list(load.record.unknown.values()):  # the client retries: same key
                assert await load.send(c, server.base, w), server.output()
            rows = check_store(db_url, load.record)
            report = await verify_database(_read_url(db_url, db_path), workers=1)
            assert report.ok, f"after kill {cycle}: {report.summary()}"
            if cycle == CYCLES:
                assert server.terminate() is not None
                break
            stop = asyncio.Event()

            async def writer(w: Workload = load, base: str = server.base, halt: asyncio.Event = stop
                             ) -> None:  # fmt: skip
                while not halt.is_set() and await w.send(c, base, w.next_write()):
                    pass

            writers = [asyncio.create_task(writer()) for _ in range(WRITERS)]
            await asyncio.sleep(rng.uniform(0.05, 0.8))
            stop.set()
            in_flight = len(load.inflight)
            server.proc.kill()  # SIGKILL: no drain, no shutdown hook
            server.proc.wait()
            await asyncio.gather(*writers)
            busy_kills += in_flight > 0
            cut += len(load.record.unknown)
    assert load is not None
    argv = [sys.executable, "-m", "main.cli", "verify", "--db", db_url]
    done = await asyncio.to_thread(
        subprocess.run, argv, cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    acknowledged = sum(1 for (_, s, _) in load.record.acknowledged.values() if s < 300)
    figures(
        cycles=CYCLES, writes_sent=load.record.sent, acknowledged_writes=acknowledged,
        refused_writes=len(load.record.acknowledged) - acknowledged,
        writes_cut_off_by_a_kill=cut, kills_with_writes_in_flight=busy_kills,
        retries_with_same_key=load.record.retries, lost_writes=0, **rows,
    )  # fmt: skip
