"""The service's scheduled jobs: checkpoints of ledgers that grew, unanswered claims accepted."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from api.app import Config, create_app, run_jobs
from ledger import from_us
from tests.api.world import World
from tests.conftest import Clock
from timebank.service import TimeBank
from web.book import AccountBook

pytestmark = pytest.mark.both_backends


async def test_jobs_sign_a_checkpoint_only_when_a_ledger_grew_and_accept_unanswered_claims(
    app: Starlette, app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    bank: TimeBank = app.state.services.bank
    day = (from_us(clock()) - timedelta(days=1)).date().isoformat()
    body = {"activity": "lift", "date": day, "minutes": 60, "receiver": "M2"}
    made = await app_client.post("/api/v1/schemes/m2m/claims", json=body,
                                 headers=world.as_("m2m", "member"))  # fmt: skip
    assert made.status_code == 201, made.text
    await run_jobs(bank)
    assert await bank.ledger.checkpoints("m2m") == []  # nothing on the ledger yet
    clock.advance(73 * 3600)  # past the scheme's auto_accept_hours (72)
    await run_jobs(bank)
    claim = await app_client.get(f"/api/v1/schemes/m2m/claims/{made.json()['id']}",
                                 headers=world.as_("m2m", "coordinator"))  # fmt: skip
    assert claim.json()["status"] == "confirmed" and claim.json()["decided_by"] == "auto"
    await run_jobs(bank)  # the entry the last run made is now checkpointed
    checkpoints = await bank.ledger.checkpoints("m2m")
    assert [cp.size for cp in checkpoints] == [1]
    await run_jobs(bank)
    assert len(await bank.ledger.checkpoints("m2m")) == 1  # no growth, no new checkpoint
    latest = await app_client.get("/api/v1/schemes/m2m/checkpoints/latest",
                                  headers=world.as_("m2m", "commissioner"))  # fmt: skip
    assert latest.json()["size"] == 1


async def test_jobs_release_vouchers_past_their_expiry(
    app: Starlette, app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    bank: TimeBank = app.state.services.bank
    member = world.as_("m2m", "member")  # a person-to-person bank: M1 may go to -600
    made = await app_client.post("/api/v1/schemes/m2m/vouchers", headers=member,
                                 json={"partner": "p-m2m", "offer": "swim"})  # fmt: skip
    assert made.status_code == 201, made.text
    code = made.json()["code"]
    await run_jobs(bank)
    seen = await app_client.get(f"/api/v1/schemes/m2m/vouchers/{code}", headers=member)
    assert seen.json()["state"] == "pending"
    clock.advance(49 * 3600)  # past the agreement's 48 hours
    await run_jobs(bank)
    seen = await app_client.get(f"/api/v1/schemes/m2m/vouchers/{code}", headers=member)
    assert seen.json()["state"] == "expired"
    balance = await app_client.get("/api/v1/schemes/m2m/members/M1/balance", headers=member)
    assert balance.json()["minutes"] == 0


async def test_the_services_schedule_forgets_old_jobs(
    db_url: str, tmp_path: Path, clock: Clock
) -> None:
    """`timebank serve`'s schedule runs `AccountBook.forget_old` too (tests/web/test_signin.py
    shows what it forgets): a week-old job is gone within a few rounds."""
    book = await AccountBook.open(db_url, clock)
    try:
        await book.start_job({
            "id": "j1", "login": "someone", "scheme": "taff", "kind": "report", "state": "done",
            "done": 1, "total": 1, "message": "", "result": b"x", "media_type": "text/csv",
            "filename": "r.csv", "created_us": clock(),
        })  # fmt: skip
        clock.advance(8 * 86400)
        config = Config(url=db_url, key_dir=tmp_path / "keys", schedule_seconds=0.05, clock=clock)
        scheduled = create_app(config)
        async with scheduled.router.lifespan_context(scheduled):
            for _ in range(100):
                if await book.job("j1") is None:
                    break
                await asyncio.sleep(0.05)
        assert await book.job("j1") is None
    finally:
        await book.close()
