"""Several service processes appending to one scheme's chain at once (PostgreSQL): four
`timebank serve` processes against one database, hammered with claims and confirmations spread
over all four, must never fork the chain, skip a number or break a floor; `timebank verify`
then passes on the database and every acknowledged confirmation is in it.

The processes connect as a service role that may not UPDATE, DELETE or TRUNCATE the ledger's
tables (docs/deployment.md, "PostgreSQL"): the schema is made by `timebank migrate` as the
owner first.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import uuid
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, make_url
from sqlalchemy.exc import DBAPIError

from ledger.storage import APPEND_ONLY, to_sync_url
from main.migrate import migrate
from tests.api.test_uvicorn import ADMIN, ROOT, V1, Served
from tests.api.world import ACTIVITY, bearer
from tests.conftest import SERVER_URL, count_rows

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.skipif(not SERVER_URL, reason="needs a PostgreSQL server (scripts/test-postgres)"),
]
PROCESSES = 4
CLAIMS = 240  # logged for 4 members over 60 days, 15 minutes each, then confirmed


async def _ok(r: httpx.Response, status: int = 200) -> dict[str, object]:
    assert r.status_code == status, r.text
    body = r.json()
    assert isinstance(body, dict)
    return body


async def _set_up(c: httpx.AsyncClient, base: str) -> dict[str, str]:
    """A time-credit scheme with a coordinator, four members and an activity; the coordinator's
    headers."""
    admin = bearer(ADMIN)
    scheme = {"id": "taff", "name": "Taff", "model": "time-credits"}
    await _ok(await c.post(f"{base}/schemes", headers=admin, json=scheme), 201)
    for m in ("A1", "C1", "M1", "M2", "M3", "M4"):
        role = {"A1": "scheme-admin", "C1": "coordinator"}.get(m, "member")
        person = {"id": m, "display_name": m, "roles": [role]}
        await _ok(await c.post(f"{base}/schemes/taff/members", headers=admin, json=person), 201)
    grant = {"role": "scheme-admin", "member": "A1"}  # the admin's one; the scheme admin's next
    made = await _ok(await c.post(f"{base}/schemes/taff/tokens", headers=admin, json=grant), 201)
    head = bearer(str(made["token"]))
    grant = {"role": "coordinator", "member": "C1"}
    made = await _ok(await c.post(f"{base}/schemes/taff/tokens", headers=head, json=grant), 201)
    staff = bearer(str(made["token"]))
    await _ok(await c.post(f"{base}/schemes/taff/activities", headers=staff, json=ACTIVITY), 201)
    return staff


def _service_role(owner_url: str) -> str:
    """A login role with the privileges docs/deployment.md's PostgreSQL section grants; its URL."""
    role = f"svc_{uuid.uuid4().hex[:12]}"
    tables = ", ".join(APPEND_ONLY)
    engine = create_engine(to_sync_url(owner_url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for sql in (
                f"CREATE ROLE {role} LOGIN",
                f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
                f"REVOKE UPDATE, DELETE, TRUNCATE ON {tables} FROM {role}",
                f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}",
            ):
                conn.exec_driver_sql(sql)
    finally:
        engine.dispose()
    return make_url(owner_url).set(username=role).render_as_string(hide_password=False)


def _refused(url: str, sql: str) -> str:
    engine = create_engine(to_sync_url(url))
    try:
        with engine.connect() as conn, pytest.raises(DBAPIError) as err:
            conn.exec_driver_sql(sql)
        return str(err.value)
    finally:
        engine.dispose()


async def test_four_processes_on_one_scheme_never_fork_the_chain(
    db_url: str, tmp_path: Path
) -> None:
    keys = tmp_path / "keys"
    migrate(db_url)  # as the owner
    service_url = _service_role(db_url)
    servers = [Served(service_url, tmp_path / f"serve{i}.log", keys) for i in range(PROCESSES)]
    bases = [s.base + V1 for s in servers]
    try:
        for s in servers:
            s.wait_healthy(30)
        async with httpx.AsyncClient(timeout=60) as c:
            staff = await _set_up(c, bases[0])
            today = date.today()
            gate = asyncio.Semaphore(32)

            async def claim_and_confirm(i: int) -> int:
                """Claim i: logged on one process, confirmed on the next."""
                member, day = f"M{1 + i % 4}", today - timedelta(days=1 + i // 4)
                body = {"member": member, "activity": "garden", "date": day.isoformat(),
                        "minutes": 15}  # fmt: skip
                async with gate:
                    made = await _ok(await c.post(
                        f"{bases[i % PROCESSES]}/schemes/taff/claims", json=body,
                        headers=staff | {"Idempotency-Key": f"claim-{i}"}), 201)  # fmt: skip
                    confirm = f"{bases[(i + 1) % PROCESSES]}/schemes/taff/claims/{made['id']}"
                    done = await _ok(await c.post(f"{confirm}/confirm", headers=staff))
                assert done["status"] == "confirmed" and isinstance(done["entry_seq"], int)
                return done["entry_seq"]

            seqs = await asyncio.gather(*(claim_and_confirm(i) for i in range(CLAIMS)))
            assert len(set(seqs)) == CLAIMS  # each confirmation its own entry
            for k, m in enumerate(("M1", "M2", "M3", "M4")):
                url = f"{bases[k]}/schemes/taff/members/{m}/balance"
                assert (await _ok(await c.get(url, headers=staff)))["minutes"] == CLAIMS // 4 * 15
    finally:
        codes = [s.terminate() for s in servers]
    # a clean stop: uvicorn drains, then exits by the signal it caught (see test_uvicorn.py)
    assert all(code in (0, -signal.SIGTERM) for code in codes), [s.output() for s in servers]
    rows = count_rows(db_url, {
        "seqs": "SELECT seq FROM entries WHERE ledger_id = 'taff' ORDER BY seq",
        "sum": "SELECT sum(balance) FROM accounts WHERE ledger_id = 'taff'",
    })  # fmt: skip
    stored = [seq for (seq,) in rows["seqs"]]
    assert stored == list(range(1, len(stored) + 1))  # no gap, no duplicate, no fork
    assert rows["sum"][0][0] == 0
    argv = [sys.executable, "-m", "main.cli", "verify", "--db", db_url]
    verify = await asyncio.to_thread(
        subprocess.run, argv, cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert verify.stdout.startswith("OK")
    # the service's role cannot rewrite history, even with the triggers out of its reach
    for sql in ("DELETE FROM entries", "UPDATE postings SET amount = 0", "TRUNCATE checkpoints",
                "DROP TRIGGER entries_append_only_rows ON entries"):  # fmt: skip
        assert "InsufficientPrivilege" in _refused(service_url, sql), sql


DECIDED = 48  # claims, each confirmed on one process while rejected (or reversed) on another


async def test_decisions_raced_across_processes_take_effect_once(
    db_url: str, tmp_path: Path
) -> None:
    """Confirm against reject, then reverse against reverse, each pair sent at once to two
    `serve` processes: one 200, one 409 naming `claim` and the state it found, and the claim,
    the ledger and `timebank verify` agree."""
    migrate(db_url)
    service_url = _service_role(db_url)
    servers = [Served(service_url, tmp_path / f"serve{i}.log", tmp_path / "keys")
               for i in range(2)]  # fmt: skip
    bases = [s.base + V1 for s in servers]
    try:
        for s in servers:
            s.wait_healthy(30)
        async with httpx.AsyncClient(timeout=60) as c:
            staff = await _set_up(c, bases[0])
            today = date.today()

            async def both(i: int, paths: tuple[str, str], reasons: tuple[str, str]) -> list[int]:
                sent = [c.post(f"{bases[k]}/schemes/taff/claims/{paths[k]}", headers=staff,
                               json={"reason": reasons[k]} if reasons[k] else None)
                        for k in (i % 2, 1 - i % 2)]  # fmt: skip
                answers = await asyncio.gather(*sent)
                codes = sorted(r.status_code for r in answers)
                assert codes == [200, 409], [r.text for r in answers]
                lost = next(r for r in answers if r.status_code == 409).json()
                assert lost["field"] == "claim" and lost["detail"].startswith("claim "), lost
                return [r.status_code for r in answers]

            for i in range(DECIDED):
                body = {"member": f"M{1 + i % 4}", "activity": "garden", "minutes": 15,
                        "date": (today - timedelta(days=1 + i // 4)).isoformat()}  # fmt: skip
                key = staff | {"Idempotency-Key": f"d{i}"}
                made = await _ok(
                    await c.post(f"{bases[0]}/schemes/taff/claims", json=body, headers=key), 201
                )
                cid = made["id"]
                await both(i, (f"{cid}/confirm", f"{cid}/reject"), ("", "not on the rota"))
                claim = await _ok(await c.get(f"{bases[1]}/schemes/taff/claims/{cid}",
                                              headers=staff))  # fmt: skip
                if claim["status"] == "confirmed":
                    assert isinstance(claim["entry_seq"], int)
                    await both(i, (f"{cid}/reverse", f"{cid}/reverse"), ("twice", "wrong"))
                else:
                    assert claim["status"] == "rejected" and claim["entry_seq"] is None
    finally:
        codes = [s.terminate() for s in servers]
    assert all(code in (0, -signal.SIGTERM) for code in codes), [s.output() for s in servers]
    argv = [sys.executable, "-m", "main.cli", "verify", "--db", db_url]
    verify = await asyncio.to_thread(
        subprocess.run, argv, cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert f"; {DECIDED} claims and 0 vouchers agree" in verify.stdout
