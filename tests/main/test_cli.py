"""The CLI end to end: demo, verify, export-log, verify --bundle; on a SQLite file, or on a
database of the test server's (keys on disk either way)."""

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
import uuid
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url

from ledger import KeyRing, LedgerStore, PublicKey, from_us, verify_database
from ledger.merkle import root_of
from ledger.proofs import key_list_problem
from ledger.records import parse_key
from ledger.storage import sqlite_url, to_sync_url
from tests.conftest import SERVER_URL, count_rows, snapshot

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.both_backends
SQLITE_FILE = pytest.mark.skipif(bool(SERVER_URL), reason="about a SQLite file (server run)")
ON_SERVER = pytest.mark.skipif(not SERVER_URL, reason="needs a PostgreSQL server (server run)")


def _timebank(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "main.cli", *args], capture_output=True, text=True, check=False
    )


def test_demo_database_verifies_and_its_bundle_verifies_offline(
    tmp_path: Path, db_url: str
) -> None:
    db = tmp_path / "demo.db"
    made = _timebank("demo", "--db", str(db), "--entries", "300")
    assert made.returncode == 0, made.stderr
    assert made.stdout.splitlines()[-1].startswith("OK 2 ledgers")
    where = str(db)
    if SERVER_URL:  # the demo builds on a SQLite file by design: copied to the server
        copied = _timebank("migrate-store", "--from", str(db), "--to", db_url)
        assert copied.returncode == 0, copied.stdout + copied.stderr
        assert copied.stdout.splitlines()[-1].startswith("OK 2 ledgers")
        where = db_url
    bundle = tmp_path / "log.jsonl"
    exported = _timebank("export-log", "--db", where, "--out", str(bundle))
    assert exported.returncode == 0, exported.stderr
    checked = _timebank("verify", "--bundle", str(bundle))
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith("OK 2 ledgers")
    assert "claims named by its entries, each credited once and reversed at most once" in (
        checked.stdout
    )


# ---- a small database of two ledgers, built through the library -----------------------------

NORTH, SOUTH = "north", "south"
SETPRIV = shutil.which("setpriv")
NO_DAC = "--bounding-set=-dac_override,-dac_read_search,-fowner"  # root obeys file modes


@dataclass(frozen=True)
class Db:
    path: Path  # the SQLite file (on a server run: never made, the database is `url`)
    url: str  # the database, for the library
    where: str  # the database, for the CLI's --db: the file's path or the server URL
    keys: Path
    heads: dict[str, int]
    due: int  # a reservation of NORTH whose expiry has passed
    later: int  # one that expires in a month


def _cli(*args: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIMEBANK_")}
    return subprocess.run(
        [*prefix, sys.executable, "-m", "main.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd=ROOT,
    )


def _open(db: Db) -> Awaitable[LedgerStore]:
    return LedgerStore.open(db.url, KeyRing(db.keys))


async def _verified(db: Db) -> bool:
    read = db.url if SERVER_URL else sqlite_url(str(db.path), read_only=True)
    report = await verify_database(read, workers=1)
    return report.ok


@pytest.fixture
async def db(tmp_path: Path, db_url: str) -> Db:
    path, keys = tmp_path / "bank.db", tmp_path / "bank.db.keys"
    url, where = (db_url, db_url) if SERVER_URL else (sqlite_url(str(path)), str(path))
    start = int((datetime.now(UTC) - timedelta(days=10)).timestamp() * 1_000_000)
    ticks = itertools.count()
    store = await LedgerStore.open(
        url, KeyRing(keys), clock=lambda: start + next(ticks) * 60_000_000
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
    return Db(path, url, where, keys, heads, due.seq, later.seq)


def _tamper(db: Db, sql: str) -> None:
    """Run `sql` past the database's guards: the append-only triggers dropped (and on the
    server, where the tables' owner could, the postings' foreign keys, which a plain sqlite3
    connection does not enforce either)."""
    if SERVER_URL:
        _tamper_server(db.url, sql.replace("zeroblob(32)", "decode(repeat('00', 32), 'hex')"))
        return
    con = sqlite3.connect(db.path)
    try:
        for table in ("entries", "postings", "checkpoints", "ledger_keys", "merkle_nodes"):
            for action in ("update", "delete"):
                con.execute(f"DROP TRIGGER {table}_no_{action}")
        con.execute(sql)
        con.commit()
    finally:
        con.close()


def _tamper_server(url: str, sql: str) -> None:
    engine = create_engine(to_sync_url(url))
    try:
        with engine.begin() as conn:
            for table in ("entries", "postings", "checkpoints", "ledger_keys", "merkle_nodes"):
                conn.exec_driver_sql(f"DROP TRIGGER {table}_append_only_rows ON {table}")
            keys = conn.exec_driver_sql(
                "SELECT conname FROM pg_constraint "
                "WHERE conrelid = 'postings'::regclass AND contype = 'f'"
            )
            for (name,) in keys.all():
                conn.exec_driver_sql(f'ALTER TABLE postings DROP CONSTRAINT "{name}"')
            conn.exec_driver_sql(sql)
    finally:
        engine.dispose()


def _fingerprint(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return hashlib.sha256(path.read_bytes()).hexdigest(), st.st_mtime_ns, st.st_size


# ---- verify ----------------------------------------------------------------------------------


def test_verify_intact_database_exits_0_with_one_ok_line(db: Db) -> None:
    done = _cli("verify", "--db", db.where)  # default workers: the process pool
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
    done = _cli("verify", "--db", db.where, "--workers", "1")
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"FAILED ledger {ledger} at sequence {seq}: "), lines[0]
    assert what in lines[0]


def test_verify_names_the_ledger_of_a_changed_balance(db: Db) -> None:
    _tamper(db, "UPDATE accounts SET balance = balance + 1 WHERE code = 'member:a'")
    done = _cli("verify", "--db", db.where, "--workers", "1")
    assert done.returncode == 1
    # both ledgers are wrong: the first, by name, is reported
    assert done.stderr.startswith(f"FAILED ledger {NORTH}: stored balance of member:a"), done.stderr


@SQLITE_FILE
def test_verify_missing_database_fails_and_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    done = _cli("verify", "--db", str(missing))
    assert done.returncode != 0
    assert "no database" in done.stderr and str(missing) in done.stderr
    assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []


def _missing_server_database() -> tuple[str, str]:
    """A database name the test server does not have, and its URL."""
    name = f"t_missing_{uuid.uuid4().hex[:12]}"
    return name, make_url(SERVER_URL).set(database=name).render_as_string(hide_password=False)


def _server_has(name: str) -> bool:
    found = count_rows(
        SERVER_URL, {"n": f"SELECT count(*) FROM pg_database WHERE datname = '{name}'"}
    )
    return bool(found["n"][0][0])


@ON_SERVER
def test_verify_missing_server_database_is_a_one_line_error_and_creates_nothing(
    tmp_path: Path,
) -> None:
    name, url = _missing_server_database()
    done = _cli("verify", "--db", url)
    assert done.returncode == 2, done.stderr
    assert done.stderr == f'timebank: cannot use the database: database "{name}" does not exist\n'
    assert done.stdout == ""
    assert not _server_has(name)
    assert list(tmp_path.iterdir()) == []


def test_verify_missing_bundle_fails_cleanly(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    done = _cli("verify", "--bundle", str(missing))
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert str(missing) in done.stderr
    assert list(tmp_path.iterdir()) == []


@SQLITE_FILE
def test_verify_leaves_the_database_file_untouched(db: Db) -> None:
    before = _fingerprint(db.path)
    time.sleep(0.01)  # a write would show in the mtime
    done = _cli("verify", "--db", str(db.path), "--workers", "1")
    assert done.returncode == 0, done.stderr
    assert _fingerprint(db.path) == before


@ON_SERVER
def test_verify_leaves_the_server_database_unchanged(db: Db) -> None:
    before = snapshot(db.url)
    done = _cli("verify", "--db", db.url, "--workers", "1")
    assert done.returncode == 0, done.stderr
    assert snapshot(db.url) == before


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


@SQLITE_FILE
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


@SQLITE_FILE
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


@contextmanager
def _reader(url: str) -> Iterator[str]:
    """A login role of the server's that may only read the database's tables: its URL."""
    role, password = f"r_{uuid.uuid4().hex[:12]}", uuid.uuid4().hex
    engine = create_engine(to_sync_url(url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
            conn.exec_driver_sql(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
        try:
            yield (
                make_url(url)
                .set(username=role, password=password)
                .render_as_string(hide_password=False)
            )
        finally:
            with engine.connect() as conn:
                conn.exec_driver_sql(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}")
                conn.exec_driver_sql(f"DROP ROLE {role}")
    finally:
        engine.dispose()


@ON_SERVER
def test_verify_works_as_a_server_role_that_may_only_read(db: Db) -> None:
    before = snapshot(db.url)
    with _reader(db.url) as url:
        done = _cli("verify", "--db", url, "--workers", "1")
        exported = _cli("keys", "--db", url, "--ledger", NORTH)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("OK 2 ledgers")
    assert exported.returncode == 0 and len(exported.stdout.splitlines()) == 1, exported.stderr
    assert snapshot(db.url) == before


# ---- export-log ------------------------------------------------------------------------------


def _records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_export_log_ledger_filter(db: Db, tmp_path: Path) -> None:
    out = tmp_path / "north.jsonl"
    done = _cli("export-log", "--db", db.where, "--out", str(out), "--ledger", NORTH)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"wrote {db.heads[NORTH]} entries to {out}"
    records = _records(out)
    assert [r["ledger"] for r in records if r["type"] == "ledger"] == [NORTH]
    assert {r.get("ledger") for r in records if "ledger" in r} == {NORTH}
    assert sum(r["type"] == "entry" for r in records) == db.heads[NORTH]
    checked = _cli("verify", "--bundle", str(out), "--workers", "1")
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith("OK 1 ledgers, 6 entries")
    assert "claims named" not in checked.stdout  # a ledger of no time bank names none

    both = tmp_path / "both.jsonl"
    done = _cli(
        "export-log", "--db", db.where, "--out", str(both), "--ledger", SOUTH, "--ledger", NORTH
    )
    assert done.returncode == 0, done.stderr
    names = [str(r["ledger"]) for r in _records(both) if r["type"] == "ledger"]
    assert sorted(names) == [NORTH, SOUTH]


async def test_verify_bundle_checks_what_its_entries_say_of_the_claims_they_name(
    db: Db, tmp_path: Path
) -> None:
    """A bundle holds no claims table, but its entries name claims: one credited by two
    entries is named (a whole, signed ledger all the same); one credited once is counted."""
    store = await _open(db)
    try:
        for n, claim in enumerate(("c1", "c1", "c2")):
            await store.transfer(
                SOUTH,
                [("scheme:issuance", -30), ("member:a", 30)],
                meta={"claim": claim},
                idempotency_key=f"claim{n}",
            )
    finally:
        await store.close()
    out = tmp_path / "south.jsonl"
    done = _cli("export-log", "--db", db.where, "--out", str(out), "--ledger", SOUTH)
    assert done.returncode == 0, done.stderr
    checked = _cli("verify", "--bundle", str(out), "--workers", "1")
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert checked.stderr.splitlines() == [
        f"FAILED {SOUTH}: claim c1 has 2 entries (5, 6); a claim has one"
    ]
    assert checked.stdout == ""


def test_export_log_refuses_an_unknown_ledger(db: Db, tmp_path: Path) -> None:
    out = tmp_path / "x.jsonl"
    done = _cli("export-log", "--db", db.where, "--out", str(out), "--ledger", "nope")
    assert done.returncode != 0
    assert "nope" in done.stderr


# ---- the scheduled jobs and key management ----------------------------------------------------


async def test_checkpoint_signs_every_ledger_once_per_size(db: Db) -> None:
    done = _cli("checkpoint", "--db", db.where, "--keys", str(db.keys))
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
    again = _cli("checkpoint", "--db", db.where, "--keys", str(db.keys))
    assert again.returncode == 0 and again.stdout.splitlines() == expected
    assert await _verified(db)


async def test_expire_releases_only_reservations_past_their_expiry(db: Db) -> None:
    done = _cli("expire", "--db", db.where, "--keys", str(db.keys))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"{NORTH}: 1 reservations expired",
        f"{SOUTH}: 0 reservations expired",
        "forgot 0 session records, 0 failed sign-ins and 0 background jobs",
    ]
    store = await _open(db)
    try:
        expired = await store.reservation(NORTH, db.due)
        assert (expired.state, expired.resolved_by) == ("expired", db.heads[NORTH] + 1)
        assert (await store.reservation(NORTH, db.later)).state == "pending"
        assert (await store.account(NORTH, "member:a")).balance == 60 * 2
    finally:
        await store.close()
    again = _cli("expire", "--db", db.where, "--keys", str(db.keys))
    assert again.stdout.splitlines() == [
        f"{NORTH}: 0 reservations expired",
        f"{SOUTH}: 0 reservations expired",
        "forgot 0 session records, 0 failed sign-ins and 0 background jobs",
    ]
    assert await _verified(db)


def _keys(db: Db, ledger: str) -> list[PublicKey]:
    done = _cli("keys", "--db", db.where, "--ledger", ledger)
    assert done.returncode == 0, done.stderr
    return [parse_key(json.loads(line)) for line in done.stdout.splitlines()]


async def test_rotate_key_and_keys(db: Db) -> None:
    (first,) = _keys(db, NORTH)
    assert first.from_seq == 1 and first.signer_key_id == first.key_id
    done = _cli("rotate-key", "--db", db.where, "--keys", str(db.keys), "--ledger", NORTH)
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
    done = _cli("keys", "--db", db.where, "--ledger", "nope")
    assert done.returncode == 2  # a bad argument
    assert done.stdout == "" and "no ledger 'nope'" in done.stderr
    if SERVER_URL:  # a database the server does not have
        name, url = _missing_server_database()
        for command in (["keys", "--ledger", NORTH], ["checkpoint"]):
            done = _cli(command[0], "--db", url, "--keys", str(db.keys), *command[1:])
            assert done.returncode != 0 and f'database "{name}" does not exist' in done.stderr
            assert done.stderr.count("\n") == 1, done.stderr
        assert not _server_has(name)
        return
    missing = tmp_path / "missing.db"
    for command in (["keys", "--ledger", NORTH], ["checkpoint"]):
        done = _cli(command[0], "--db", str(missing), *command[1:])
        assert done.returncode != 0 and "no database" in done.stderr, command
    assert not missing.exists()


def test_rotate_key_refuses_an_unknown_ledger(db: Db) -> None:
    done = _cli("rotate-key", "--db", db.where, "--keys", str(db.keys), "--ledger", "nope")
    assert done.returncode != 0
    assert "nope" in done.stderr
