"""The service's scheduled jobs (`main.jobs`): checkpoints of ledgers that grew, unanswered
claims accepted, vouchers past their expiry released, old credit expired once a day."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from ledger import from_us
from main.asgi import Config, create_app
from main.jobs import Schedule, run_jobs
from tests.api.world import World
from tests.conftest import SERVER_URL, Clock, started
from tests.timebank.helpers import activity, open_bank
from timebank.claims import ClaimDraft, ClaimRules, SchemeModel
from timebank.schemes import Member, Role, Scheme
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
    await run_jobs(bank, from_us(bank.clock()))
    assert await bank.ledger.checkpoints("m2m") == []  # nothing on the ledger yet
    clock.advance(73 * 3600)  # past the scheme's auto_accept_hours (72)
    await run_jobs(bank, from_us(bank.clock()))
    claim = await app_client.get(f"/api/v1/schemes/m2m/claims/{made.json()['id']}",
                                 headers=world.as_("m2m", "coordinator"))  # fmt: skip
    assert claim.json()["status"] == "confirmed" and claim.json()["decided_by"] == "auto"
    await run_jobs(bank, from_us(bank.clock()))  # the entry the last run made is now checkpointed
    checkpoints = await bank.ledger.checkpoints("m2m")
    assert [cp.size for cp in checkpoints] == [1]
    await run_jobs(bank, from_us(bank.clock()))
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
    await run_jobs(bank, from_us(bank.clock()))
    seen = await app_client.get(f"/api/v1/schemes/m2m/vouchers/{code}", headers=member)
    assert seen.json()["state"] == "pending"
    clock.advance(49 * 3600)  # past the agreement's 48 hours
    await run_jobs(bank, from_us(bank.clock()))
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
        async with started(scheduled):
            for _ in range(100):
                if await book.job("j1") is None:
                    break
                await asyncio.sleep(0.05)
        assert await book.job("j1") is None
    finally:
        await book.close()


async def _expiring_credit(tb: TimeBank, clock: Clock) -> None:
    """A scheme whose credit expires after 6 months, and a member's 2 hours, confirmed, then 200
    days gone by."""
    scheme = Scheme("taff", "Taff", ClaimRules(SchemeModel.TIME_CREDITS), 0, 6)
    await tb.create_scheme(scheme)
    await tb.add_member(Member("taff", "C1", "Cath", frozenset({Role.COORDINATOR})))
    await tb.add_member(Member("taff", "A", "Ann"))
    await tb.add_activity("taff", activity("residents-garden"), by="C1")
    day = from_us(clock()).date()
    draft = ClaimDraft("A", "A", "residents-garden", day, 120)
    claim = await tb.log_claim("taff", draft, today=day, idempotency_key="k1")
    await tb.confirm_claim("taff", claim.id, by="C1")
    clock.advance(200 * 86400)


async def test_the_jobs_expire_old_credit_once_a_day_on_a_schedule(
    tmp_path: Path, clock: Clock, db_url: str
) -> None:
    async with open_bank(tmp_path / "jobs.db", clock, db_url if SERVER_URL else None) as tb:
        await _expiring_credit(tb, clock)
        schedule = Schedule()
        [done] = await run_jobs(tb, from_us(clock()), schedule=schedule)
        assert (done.ledger, done.minutes_expired, done.claims_accepted) == ("taff", 120, 0)
        assert await tb.balance("taff", "A") == 0
        clock.advance(300)
        [again] = await run_jobs(tb, from_us(clock()), schedule=schedule)
        assert again.minutes_expired is None  # not run again the same day
        clock.advance(86400)
        [next_day] = await run_jobs(tb, from_us(clock()), schedule=schedule)
        assert next_day.minutes_expired == 0  # run, and nothing left to expire
        assert (await tb.ledger.account("taff", "scheme:expired")).balance == 120


async def test_the_services_schedule_expires_old_credit_as_timebank_expire_does(
    db_path: Path, clock: Clock, db_url: str
) -> None:
    """Before, only `timebank expire` expired credit; `serve`'s own schedule never did."""
    async with open_bank(db_path, clock, db_url if SERVER_URL else None) as tb:  # on db_url
        await _expiring_credit(tb, clock)
    config = Config(url=db_url, key_dir=db_path.with_suffix(".keys"), schedule_seconds=0.05,
                    clock=clock)  # fmt: skip
    served = create_app(config)
    async with started(served):
        bank: TimeBank = served.state.services.bank
        for _ in range(200):
            if await bank.balance("taff", "A") == 0:
                break
            await asyncio.sleep(0.05)
        assert await bank.balance("taff", "A") == 0
        assert (await bank.ledger.account("taff", "scheme:expired")).balance == 120
