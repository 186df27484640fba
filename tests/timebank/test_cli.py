"""The CLI end to end: demo, verify, export-log, verify --bundle."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ledger import KeyRing, LedgerStore, PublicKey, from_us, verify_database
from ledger.merkle import root_of
from ledger.proofs import key_list_problem
from ledger.records import parse_key
from ledger.storage import sqlite_url

ROOT = Path(__file__).resolve().parents[2]


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


# ---- a small database of two ledgers, built through the library -----------------------------

NORTH, SOUTH = "north", "south"
SETPRIV = shutil.which("setpriv")
NO_DAC = "--bounding-set=-dac_override,-dac_read_search,-fowner"  # root obeys file modes


@dataclass(frozen=True)
class Db:
    path: Path
    keys: Path
    heads: dict[str, int]
    due: int  # a reservation of NORTH whose expiry has passed
    later: int  # one that expires in a month


def _cli(*args: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIMEBANK_")}
    return subprocess.run(
        [*prefix, sys.executable, "-m", "timebank.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd=ROOT,
    )


def _open(db: Db) -> Awaitable[LedgerStore]:
    return LedgerStore.open(sqlite_url(str(db.path)), KeyRing(db.keys))


async def _verified(db: Db) -> bool:
    report = await verify_database(sqlite_url(str(db.path), read_only=True), workers=1)
    return report.ok


@pytest.fixture
async def db(tmp_path: Path) -> Db:
    path, keys = tmp_path / "bank.db", tmp_path / "bank.db.keys"
    start = int((datetime.now(UTC) - timedelta(days=10)).timestamp() * 1_000_000)
    ticks = itertools.count()
    store = await LedgerStore.open(
        sqlite_url(str(path)), KeyRing(keys), clock=lambda: start + next(ticks) * 60_000_000
    )
    try:
        for ledger in (NORTH, SOUTH):
            await store.create_ledger(ledger, idempotency_key=f"{ledger}:create")
            await store.open_account(
                ledger,
                "scheme:issuance",
                kind="issuance",
                floor=None,
                idempotency_key=f"{ledger}:i",
            )
            for code in ("member:a", "member:b", "partner:pool"):
                await store.open_account(
                    ledger, code, kind="member", floor=0, idempotency_key=f"{ledger}:{code}"
                )
            for i in range(4):
                await store.transfer(
                    ledger,
                    [("scheme:issuance", -60), ("member:a" if i % 2 else "member:b", 60)],
                    idempotency_key=f"{ledger}:t{i}",
                )
        soon = from_us(start) + timedelta(days=1)  # already past
        due = await store.reserve(
            NORTH,
            debit="member:a",
            target="partner:pool",
            amount=30,
            expires_at=soon,
            idempotency_key="due",
        )
        later = await store.reserve(
            NORTH,
            debit="member:b",
            target="partner:pool",
            amount=30,
            expires_at=datetime.now(UTC) + timedelta(days=30),
            idempotency_key="later",
        )
        await store.checkpoint(NORTH, idempotency_key="cp")
        heads = {NORTH: later.seq, SOUTH: 4}
    finally:
        await store.close()
    return Db(path, keys, heads, due.seq, later.seq)


def _tamper(db: Db, sql: str, *params: object) -> None:
    con = sqlite3.connect(db.path)
    try:
        for table in ("entries", "postings", "checkpoints", "ledger_keys", "merkle_nodes"):
            for action in ("update", "delete"):
                con.execute(f"DROP TRIGGER {table}_no_{action}")
        con.execute(sql, params)
        con.commit()
    finally:
        con.close()


def _fingerprint(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return hashlib.sha256(path.read_bytes()).hexdigest(), st.st_mtime_ns, st.st_size


# ---- verify ----------------------------------------------------------------------------------


def test_verify_intact_database_exits_0_with_one_ok_line(db: Db) -> None:
    done = _cli("verify", "--db", str(db.path))  # default workers: the process pool
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("OK 2 ledgers, 10 entries"), lines


@pytest.mark.parametrize(
    ("ledger", "seq", "sql", "what"),
    [
        (
            SOUTH,
            2,
            "UPDATE postings SET amount = amount * 2 WHERE ledger_id = 'south' AND seq = 2",
            "hash does not match",
        ),
        (
            NORTH,
            3,
            "DELETE FROM entries WHERE ledger_id = 'north' AND seq = 3",
            "gap or reorder",
        ),
        (
            NORTH,
            7,
            "UPDATE checkpoints SET root = zeroblob(32) WHERE ledger_id = 'north'",
            "checkpoint 7 root does not match",
        ),
    ],
    ids=["amount", "deleted", "checkpoint"],
)
def test_verify_tampered_database_exits_1_naming_ledger_and_sequence(
    db: Db, ledger: str, seq: int, sql: str, what: str
) -> None:
    if "checkpoint" in what:
        seq = db.heads[NORTH]
        what = f"checkpoint {seq} root does not match"
    _tamper(db, sql)
    done = _cli("verify", "--db", str(db.path), "--workers", "1")
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"FAILED ledger {ledger} at sequence {seq}: "), lines[0]
    assert what in lines[0]


def test_verify_names_the_ledger_of_a_changed_balance(db: Db) -> None:
    _tamper(db, "UPDATE accounts SET balance = balance + 1 WHERE code = 'member:a'")
    done = _cli("verify", "--db", str(db.path), "--workers", "1")
    assert done.returncode == 1
    # both ledgers are wrong: the first, by name, is reported
    assert done.stderr.startswith(f"FAILED ledger {NORTH}: stored balance of member:a"), done.stderr


def test_verify_missing_database_fails_and_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    done = _cli("verify", "--db", str(missing))
    assert done.returncode != 0
    assert "no database" in done.stderr and str(missing) in done.stderr
    assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_verify_missing_bundle_fails_cleanly(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    done = _cli("verify", "--bundle", str(missing))
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert str(missing) in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_verify_leaves_the_database_file_untouched(db: Db) -> None:
    before = _fingerprint(db.path)
    time.sleep(0.01)  # a write would show in the mtime
    done = _cli("verify", "--db", str(db.path), "--workers", "1")
    assert done.returncode == 0, done.stderr
    assert _fingerprint(db.path) == before


def _read_only_prefix(probe_dir: Path) -> tuple[str, ...]:
    """How to run the CLI so file modes bind: as is, or for root without DAC override."""
    if os.geteuid() != 0:
        return ()
    if SETPRIV is None:
        pytest.skip("running as root, which ignores file modes, and setpriv is not available")
    prefix = (SETPRIV, NO_DAC)
    probe = subprocess.run(
        [*prefix, "sh", "-c", f"touch '{probe_dir}/probe'"], capture_output=True, check=False
    )
    if probe.returncode == 0:
        (probe_dir / "probe").unlink()
        pytest.skip("running as root, and setpriv could not drop the DAC override")
    return prefix


def test_verify_works_on_a_read_only_database_file(db: Db) -> None:
    db.path.chmod(0o444)
    try:
        before = _fingerprint(db.path)
        probe_dir = db.path.parent / "ro-probe"
        probe_dir.mkdir(mode=0o555)
        prefix = _read_only_prefix(probe_dir)
        done = _cli("verify", "--db", str(db.path), "--workers", "1", prefix=prefix)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("OK 2 ledgers")
        assert _fingerprint(db.path) == before
    finally:
        db.path.chmod(0o644)


def test_verify_works_on_a_read_only_database_file_and_directory(db: Db) -> None:
    folder = db.path.parent
    moved = folder / "ro"
    moved.mkdir()
    target = moved / db.path.name
    db.path.rename(target)
    target.chmod(0o444)
    moved.chmod(0o555)
    try:
        before = _fingerprint(target)
        prefix = _read_only_prefix(moved)
        done = _cli("verify", "--db", str(target), "--workers", "1", prefix=prefix)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("OK 2 ledgers")
        assert _fingerprint(target) == before
    finally:
        moved.chmod(0o755)
        target.chmod(0o644)


# ---- export-log ------------------------------------------------------------------------------


def _records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_export_log_ledger_filter(db: Db, tmp_path: Path) -> None:
    out = tmp_path / "north.jsonl"
    done = _cli("export-log", "--db", str(db.path), "--out", str(out), "--ledger", NORTH)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"wrote {db.heads[NORTH]} entries to {out}"
    records = _records(out)
    assert [r["ledger"] for r in records if r["type"] == "ledger"] == [NORTH]
    assert {r.get("ledger") for r in records if "ledger" in r} == {NORTH}
    assert sum(r["type"] == "entry" for r in records) == db.heads[NORTH]
    checked = _cli("verify", "--bundle", str(out), "--workers", "1")
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith("OK 1 ledgers, 6 entries")

    both = tmp_path / "both.jsonl"
    done = _cli(
        "export-log", "--db", str(db.path), "--out", str(both), "--ledger", SOUTH, "--ledger", NORTH
    )
    assert done.returncode == 0, done.stderr
    names = [str(r["ledger"]) for r in _records(both) if r["type"] == "ledger"]
    assert sorted(names) == [NORTH, SOUTH]


def test_export_log_refuses_an_unknown_ledger(db: Db, tmp_path: Path) -> None:
    out = tmp_path / "x.jsonl"
    done = _cli("export-log", "--db", str(db.path), "--out", str(out), "--ledger", "nope")
    assert done.returncode != 0
    assert "nope" in done.stderr


# ---- the scheduled jobs and key management ----------------------------------------------------


async def test_checkpoint_signs_every_ledger_once_per_size(db: Db) -> None:
    done = _cli("checkpoint", "--db", str(db.path), "--keys", str(db.keys))
    assert done.returncode == 0, done.stderr
    store = await _open(db)
    try:
        expected = []
        for ledger in (NORTH, SOUTH):
            cps = await store.checkpoints(ledger)
            assert cps[-1].size == db.heads[ledger]
            hashes = [(await store.entry(ledger, s)).hash for s in range(1, db.heads[ledger] + 1)]
            assert cps[-1].root == root_of(hashes)
            expected.append(f"{ledger}: checkpoint {cps[-1].size} root {cps[-1].root.hex()}")
        assert done.stdout.splitlines() == expected
        counts = [len(await store.checkpoints(lg)) for lg in (NORTH, SOUTH)]
        assert counts == [1, 1]  # NORTH already had its checkpoint of this size
    finally:
        await store.close()
    again = _cli("checkpoint", "--db", str(db.path), "--keys", str(db.keys))
    assert again.returncode == 0 and again.stdout.splitlines() == expected
    assert await _verified(db)


async def test_expire_releases_only_reservations_past_their_expiry(db: Db) -> None:
    done = _cli("expire", "--db", str(db.path), "--keys", str(db.keys))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"{NORTH}: 1 reservations expired",
        f"{SOUTH}: 0 reservations expired",
    ]
    store = await _open(db)
    try:
        expired = await store.reservation(NORTH, db.due)
        assert (expired.state, expired.resolved_by) == ("expired", db.heads[NORTH] + 1)
        assert (await store.reservation(NORTH, db.later)).state == "pending"
        assert (await store.account(NORTH, "member:a")).balance == 60 * 2
    finally:
        await store.close()
    again = _cli("expire", "--db", str(db.path), "--keys", str(db.keys))
    assert again.stdout.splitlines() == [
        f"{NORTH}: 0 reservations expired",
        f"{SOUTH}: 0 reservations expired",
    ]
    assert await _verified(db)


def _keys(db: Db, ledger: str) -> list[PublicKey]:
    done = _cli("keys", "--db", str(db.path), "--ledger", ledger)
    assert done.returncode == 0, done.stderr
    return [parse_key(json.loads(line)) for line in done.stdout.splitlines()]


async def test_rotate_key_and_keys(db: Db) -> None:
    (first,) = _keys(db, NORTH)
    assert first.from_seq == 1 and first.signer_key_id == first.key_id
    done = _cli("rotate-key", "--db", str(db.path), "--keys", str(db.keys), "--ledger", NORTH)
    assert done.returncode == 0, done.stderr
    keys = _keys(db, NORTH)
    assert len(keys) == 2 and keys[0] == first
    new = keys[1]
    assert done.stdout.strip() == (
        f"{NORTH}: now signing with key {new.key_id} from sequence {db.heads[NORTH] + 1}"
    )
    assert new.signer_key_id == first.key_id and new.from_seq == db.heads[NORTH] + 1
    assert key_list_problem(keys) is None
    key_file = db.keys / NORTH / f"{new.key_id}.ed25519"
    assert key_file.exists() and key_file.stat().st_mode & 0o777 == 0o600
    store = await _open(db)
    try:
        assert await store.public_keys(NORTH) == keys
        assert len(await store.public_keys(SOUTH)) == 1  # the other ledger keeps its key
        e = await store.transfer(
            NORTH, [("scheme:issuance", -5), ("member:a", 5)], idempotency_key="after"
        )
        assert e.key_id == new.key_id
    finally:
        await store.close()
    assert await _verified(db)


def test_keys_refuses_an_unknown_ledger_and_a_missing_database(db: Db, tmp_path: Path) -> None:
    done = _cli("keys", "--db", str(db.path), "--ledger", "nope")
    assert done.returncode == 2  # a bad argument
    assert done.stdout == "" and "no ledger 'nope'" in done.stderr
    missing = tmp_path / "missing.db"
    for command in (["keys", "--ledger", NORTH], ["checkpoint"]):
        done = _cli(command[0], "--db", str(missing), *command[1:])
        assert done.returncode != 0 and "no database" in done.stderr, command
    assert not missing.exists()


def test_rotate_key_refuses_an_unknown_ledger(db: Db) -> None:
    done = _cli("rotate-key", "--db", str(db.path), "--keys", str(db.keys), "--ledger", "nope")
    assert done.returncode != 0
    assert "nope" in done.stderr
