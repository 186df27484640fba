"""verify checks the claims against the ledger, and repair-decisions mends what the race of
confirm against reject (before issue 16) left: a claim that says rejected, whose entry exists."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from ledger import KeyRing, LedgerStore
from ledger.storage import sqlite_url, to_sync_url
from tests.conftest import SERVER_URL, Clock
from tests.main.test_cli import _cli
from tests.timebank.helpers import activity
from timebank.claims import ClaimDraft, ClaimRules, SchemeModel
from timebank.schemes import Member, Role, Scheme
from timebank.service import TimeBank

pytestmark = pytest.mark.both_backends
TAFF = Scheme("taff", "Taff Housing", ClaimRules(SchemeModel.TIME_CREDITS))
TODAY = date(2026, 1, 1)


async def _bank_with_claims(url: str, keys: Path, clock: Clock) -> tuple[list[str], int]:
    """Three confirmed claims and one rejected; returns the claim ids and A's balance."""
    ledger = await LedgerStore.open(url, KeyRing(keys), clock=clock)
    bank = await TimeBank.open(url, ledger, clock)
    try:
        await bank.create_scheme(TAFF)
        await bank.add_member(Member("taff", "C1", "Cath", frozenset({Role.COORDINATOR})))
        await bank.add_member(Member("taff", "A", "Alys"))
        await bank.add_activity("taff", activity("garden"), by="C1")
        ids = []
        for i in range(4):
            draft = ClaimDraft("A", "A", "garden", TODAY, 60 + i)
            claim = await bank.log_claim("taff", draft, today=TODAY, idempotency_key=f"k{i}")
            if i < 3:
                await bank.confirm_claim("taff", claim.id, by="C1")
            else:
                await bank.reject_claim("taff", claim.id, by="C1", reason="no such session")
            ids.append(claim.id)
        return ids, await bank.balance("taff", "A")
    finally:
        await bank.close()
        await ledger.close()


async def test_a_rejected_claim_with_an_entry_fails_verify_until_repair_reverses_it(
    tmp_path: Path, clock: Clock, db_url: str
) -> None:
    path, keys = tmp_path / "tb.db", tmp_path / "tb.db.keys"
    url, where = (db_url, db_url) if SERVER_URL else (sqlite_url(str(path)), str(path))
    ids, balance = await _bank_with_claims(url, keys, clock)
    assert balance == 60 + 61 + 62
    ok = _cli("verify", "--db", where)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.rstrip().endswith("; 4 claims and 0 vouchers agree with their ledgers")
    # What the race left: the rejection written over the confirmation, the entry kept.
    engine = create_engine(to_sync_url(url))
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE tb_claims SET status = 'rejected', entry_seq = NULL, "
                 "reason = 'not on the rota' WHERE id = :id"),
            {"id": ids[1]},
        )  # fmt: skip
    engine.dispose()

    hurt = _cli("verify", "--db", where)
    assert hurt.returncode == 1 and hurt.stdout == ""
    assert hurt.stderr.splitlines() == [
        f"FAILED taff: claim {ids[1]} is rejected, but entry 2 credits it "
        "(timebank repair-decisions undoes it by a reversal)"
    ]

    repaired = _cli("repair-decisions", "--db", where, "--keys", str(keys))
    assert repaired.returncode == 0, repaired.stderr
    assert repaired.stdout.splitlines() == [
        f"taff: claim {ids[1]} is rejected; its entry 2 is reversed by entry 4",
        "taff: every rejected claim is without credit",
    ]
    again = _cli("repair-decisions", "--db", where, "--keys", str(keys))
    assert again.stdout.splitlines() == ["taff: every rejected claim is without credit"]
    healed = _cli("verify", "--db", where)
    assert healed.returncode == 0, healed.stderr

    ledger = await LedgerStore.open(url, KeyRing(keys), clock=clock)
    bank = await TimeBank.open(url, ledger, clock)
    try:
        assert await bank.balance("taff", "A") == 60 + 62  # the rejected hour's credit is gone
        claim = await bank.claim("taff", ids[1])
        assert (claim.status.value, claim.reason) == ("rejected", "not on the rota")
        assert (claim.entry_seq, claim.reversal_seq) == (2, 4)
        reversal = await ledger.entry("taff", 4)
        assert dict(reversal.meta)["claim"] == ids[1] and reversal.ref == 2
        assert "racing confirmation" in dict(reversal.meta)["repair"]
    finally:
        await bank.close()
        await ledger.close()
