"""Tampering with a closed ledger is caught by `verify`, which names the ledger and first bad seq.

One small ledger is built once per module (reservations, a post, a void, an expiry, a reversal,
a key rotation and three checkpoints, plus a second ledger that stays intact). Each test copies
it, drops the append-only triggers (on SQLite, what an attacker holding the file can do; on
PostgreSQL, what one with the tables' owner's privileges can do), tampers, and checks
`verify_database` (and, for some cases, `timebank verify`). The same attacks are then made on an
exported bundle.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from ledger import KeyRing, LedgerStore, consistency_problem, from_us, verify_database
from ledger.bundle import (
    BundleError,
    bundle_sources,
    checkpoint_json,
    entry_json,
    key_json,
    parse_checkpoint,
    parse_entry,
)
from ledger.encoding import checkpoint_digest, entry_hash, key_digest
from ledger.merkle import Frontier, frontier_nodes, leaf_hash
from ledger.model import ZERO_HASH, Checkpoint, Entry, EntryKind, Posting, PublicKey
from ledger.signing import Signer
from ledger.storage import APPEND_ONLY, entry_row, posting_rows, sqlite_url, to_sync_url
from ledger.verify import Problem, Report, verify_sources
from tests.conftest import SERVER_URL, count_rows, server_database

pytestmark = pytest.mark.both_backends

LEDGER = "cardiff"
OTHER = "brooklyn"
ROOT = Path(__file__).resolve().parents[2]
TRIGGERS = [f"{table}_no_{action}" for table in APPEND_ONLY for action in ("update", "delete")]
PG_TRIGGERS = [  # (name, table)
    (f"{table}_append_only_{name}", table) for table in APPEND_ONLY for name in ("rows", "truncate")
]


# ---- the ledger under attack ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Built:
    db: str  # what `timebank --db` takes: the SQLite file, or the database's URL on the server
    keys: Path
    bundle: Path
    n: int  # entries in LEDGER
    other_n: int
    checkpoints: tuple[int, ...]  # sizes, ascending
    rotated_at: int  # the second key's from_seq
    old_key: str
    new_key: str
    reserve: int
    post: int
    void: int
    expire: int
    reversal: int
    reversed: int
    transfers: tuple[int, ...]


class _Clock:
    def __init__(self) -> None:
        self.now_us = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z

    def __call__(self) -> int:
        self.now_us += 60_000_000
        return self.now_us


async def _build(db: str, keys: Path) -> dict[str, Any]:
    clock = _Clock()
    store = await LedgerStore.open(_url(db), KeyRing(keys), clock=clock)
    n = 0

    def key() -> str:
        nonlocal n
        n += 1
        return f"k{n}"

    out: dict[str, Any] = {"transfers": []}
    try:
        first = await store.create_ledger(LEDGER, idempotency_key=key())
        await store.create_ledger(OTHER, idempotency_key=key())
        await store.open_account(
            LEDGER, "scheme:issuance", kind="issuance", floor=None, idempotency_key=key()
        )
        for code in ("member:alice", "member:bob", "member:carol", "partner:leisure"):
            await store.open_account(LEDGER, code, kind="member", floor=0, idempotency_key=key())
        for code in ("member:e1", "member:e2"):
            await store.open_account(OTHER, code, kind="member", floor=-600, idempotency_key=key())

        async def transfer(src: str, dst: str, minutes: int) -> None:
            e = await store.transfer(
                LEDGER,
                [(src, -minutes), (dst, minutes)],
                meta={"activity": "garden", "note": f"{src}->{dst}"},
                idempotency_key=key(),
            )
            out["transfers"].append(e.seq)

        for _ in range(2):
            for member in ("member:alice", "member:bob", "member:carol"):
                await transfer("scheme:issuance", member, 120)
        later = from_us(clock.now_us) + timedelta(days=2)
        res = await store.reserve(
            LEDGER,
            debit="member:alice",
            target="partner:leisure",
            amount=60,
            expires_at=later,
            idempotency_key=key(),
        )
        out["reserve"] = res.seq
        out["post"] = (await store.post(LEDGER, res.seq, idempotency_key=key())).seq
        res2 = await store.reserve(
            LEDGER,
            debit="member:bob",
            target="partner:leisure",
            amount=30,
            expires_at=later,
            idempotency_key=key(),
        )
        out["void"] = (await store.void(LEDGER, res2.seq, idempotency_key=key())).seq
        mistake = await store.transfer(
            LEDGER, [("scheme:issuance", -60), ("member:carol", 60)], idempotency_key=key()
        )
        out["reversed"] = mistake.seq
        reversal = await store.reverse(
            LEDGER, mistake.seq, meta={"reason": "logged twice"}, idempotency_key=key()
        )
        out["reversal"] = reversal.seq
        cps = [(await store.checkpoint(LEDGER, idempotency_key=key())).size]
        for _ in range(2):
            await transfer("member:alice", "member:bob", 30)
            await transfer("member:bob", "member:carol", 15)
        rotated = await store.rotate_key(LEDGER, idempotency_key=key())
        for _ in range(2):
            await transfer("member:carol", "member:alice", 20)
            await transfer("scheme:issuance", "member:bob", 60)
        soon = await store.reserve(
            LEDGER,
            debit="member:carol",
            target="partner:leisure",
            amount=60,
            expires_at=from_us(clock.now_us) + timedelta(hours=1),
            idempotency_key=key(),
        )
        clock.now_us += 2 * 3600 * 1_000_000
        expired = await store.expire_due(LEDGER, now=from_us(clock.now_us))
        assert [e.ref for e in expired] == [soon.seq]
        out["expire"] = expired[0].seq
        await transfer("scheme:issuance", "member:alice", 45)
        await transfer("member:alice", "member:carol", 15)
        cps.append((await store.checkpoint(LEDGER, idempotency_key=key())).size)
        for _ in range(3):
            await transfer("scheme:issuance", "member:carol", 30)
            await transfer("member:carol", "member:bob", 10)
        cps.append((await store.checkpoint(LEDGER, idempotency_key=key())).size)
        for _ in range(2):
            await transfer("scheme:issuance", "member:alice", 90)
            await transfer("member:alice", "member:bob", 40)
        last = await store.reserve(  # left open: @reserved holds it
            LEDGER,
            debit="member:alice",
            target="partner:leisure",
            amount=30,
            expires_at=from_us(clock.now_us) + timedelta(days=30),
            idempotency_key=key(),
        )
        for i in range(4):
            giver, taker = ("member:e1", "member:e2") if i % 2 else ("member:e2", "member:e1")
            await store.transfer(OTHER, [(taker, -60), (giver, 60)], idempotency_key=key())
        await store.checkpoint(OTHER, idempotency_key=key())
        out.update(
            n=last.seq,
            other_n=4,
            checkpoints=tuple(cps),
            rotated_at=rotated.from_seq,
            old_key=first.key_id,
            new_key=rotated.key_id,
        )
    finally:
        await store.close()
    out["transfers"] = tuple(out["transfers"])
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    base = tmp_path_factory.mktemp("tamper")
    keys, bundle = base / "keys", base / "log.jsonl"
    with server_database() if SERVER_URL else nullcontext(str(base / "ledger.db")) as db:
        with ThreadPoolExecutor(1) as pool:  # its own event loop, apart from pytest-asyncio's
            facts = pool.submit(asyncio.run, _build(db, keys)).result()
        done = _timebank("export-log", "--db", db, "--out", str(bundle))
        assert done.returncode == 0, done.stderr
        b = Built(db=db, keys=keys, bundle=bundle, **facts)
        # the shape the tests below rely on
        assert b.checkpoints[0] >= b.reversal and b.checkpoints[0] < b.rotated_at
        assert b.rotated_at < b.expire < b.checkpoints[1] < b.checkpoints[2] < b.n - 3
        yield b


@pytest.fixture
def db(built: Built, tmp_path: Path) -> Iterator[str]:
    """A private copy of the pristine database: a SQLite file (its path), or a database on the
    server made from the pristine one as its template (its URL)."""
    if SERVER_URL:
        with server_database(template=built.db) as url:
            yield url
        return
    target = tmp_path / "ledger.db"
    shutil.copyfile(built.db, target)
    for suffix in ("-wal", "-shm"):
        extra = Path(f"{built.db}{suffix}")
        if extra.exists():
            shutil.copyfile(extra, Path(f"{target}{suffix}"))
    yield str(target)


# ---- helpers ----------------------------------------------------------------------------------


def _timebank(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "main.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )


def _url(db: str, *, read_only: bool = False) -> str:
    """The async URL of `db` (a SQLite file's path, or a database URL on the server)."""
    return db if SERVER_URL else sqlite_url(db, read_only=read_only)


class Raw:
    """The attacker's connection, on either backend, used like sqlite3's: `execute(sql, params)`
    with `?` marks and a tuple, or `:name` marks and a mapping (or a list of mappings)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def execute(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any] | list[Mapping[str, Any]] = ()
    ) -> Any:  # a result with fetchone, fetchall and rowcount (rows are tuples), like a cursor
        if isinstance(params, tuple):
            parts = sql.split("?")
            assert len(parts) == len(params) + 1, sql
            sql = parts[0] + "".join(f":p{i}{part}" for i, part in enumerate(parts[1:]))
            params = {f"p{i}": value for i, value in enumerate(params)}
        return self.conn.execute(text(sql), params)


@contextmanager
def tampering(db: str) -> Iterator[Raw]:
    """A raw connection with the append-only triggers dropped (each must exist by its name),
    committed at the end.

    On SQLite, anyone who can write the file can do this. On PostgreSQL, the tables' owner (the
    test role) can; it also drops the foreign keys of postings, which the attacks below break
    (a stdlib sqlite3 connection, as an attacker of the file would use, does not enforce them).
    """
    engine = create_engine(to_sync_url(_url(db)))
    try:
        with engine.begin() as conn:
            if SERVER_URL:
                for name, table in PG_TRIGGERS:
                    conn.exec_driver_sql(f"DROP TRIGGER {name} ON {table}")
                fks = conn.exec_driver_sql(
                    "SELECT conname FROM pg_constraint "
                    "WHERE conrelid = 'postings'::regclass AND contype = 'f'"
                ).scalars()
                for fk in fks.all():
                    conn.exec_driver_sql(f"ALTER TABLE postings DROP CONSTRAINT {fk}")
            else:
                for name in TRIGGERS:
                    conn.exec_driver_sql(f"DROP TRIGGER {name}")
            yield Raw(conn)
    finally:
        engine.dispose()


_ENTRY_COLS = (
    "seq, prev_hash, hash, kind, time_us, key_id, ref, expires_us, target, meta, signature"
)


def read_entry(con: Raw, seq: int, ledger: str = LEDGER) -> Entry:
    row = con.execute(
        f"SELECT {_ENTRY_COLS} FROM entries WHERE ledger_id = ? AND seq = ?", (ledger, seq)
    ).fetchone()
    assert row is not None, f"no entry {seq}"
    posts = con.execute(
        "SELECT account, amount FROM postings WHERE ledger_id = ? AND seq = ? ORDER BY idx",
        (ledger, seq),
    ).fetchall()
    return Entry(
        ledger,
        row[0],
        row[1],
        EntryKind(row[3]),
        row[4],
        row[5],
        row[6] or 0,
        row[7],
        row[8],
        tuple(Posting(a, n) for a, n in posts),
        tuple((k, v) for k, v in json.loads(row[9])),
        row[2],
        row[10],
    )


def write_entry(con: Raw, e: Entry) -> None:
    """Overwrite the stored entry `e.seq` (row and postings) with `e`."""
    con.execute("DELETE FROM postings WHERE ledger_id = ? AND seq = ?", (e.ledger, e.seq))
    row = entry_row(e)
    sets = ", ".join(f"{col} = :{col}" for col in row)
    cur = con.execute(f"UPDATE entries SET {sets} WHERE ledger_id = :ledger_id AND seq = :seq", row)
    assert cur.rowcount == 1
    _insert_postings(con, e)


def insert_entry(con: Raw, e: Entry) -> None:
    row = entry_row(e)
    cols = ", ".join(row)
    marks = ", ".join(f":{col}" for col in row)
    con.execute(f"INSERT INTO entries ({cols}) VALUES ({marks})", row)
    _insert_postings(con, e)


def add_merkle_nodes(con: Raw, e: Entry) -> None:
    """Store the Merkle nodes that appending `e` completes, as the writer would."""
    nodes = frontier_nodes(e.seq - 1)
    stack = []
    for level, idx in nodes:
        if level == 0:
            (h,) = con.execute(
                "SELECT hash FROM entries WHERE ledger_id = ? AND seq = ?", (e.ledger, idx + 1)
            ).fetchone()
            stack.append((0, leaf_hash(h)))
        else:
            (h,) = con.execute(
                "SELECT hash FROM merkle_nodes WHERE ledger_id = ? AND level = ? AND idx = ?",
                (e.ledger, level, idx),
            ).fetchone()
            stack.append((level, h))
    frontier = Frontier(e.seq - 1, stack)
    for level, idx, h in frontier.append(e.hash):
        if level:
            con.execute(
                "INSERT INTO merkle_nodes (ledger_id, level, idx, hash) VALUES (?, ?, ?, ?)",
                (e.ledger, level, idx, h),
            )


def _insert_postings(con: Raw, e: Entry) -> None:
    con.execute(
        "INSERT INTO postings (ledger_id, seq, idx, account, amount) "
        "VALUES (:ledger_id, :seq, :idx, :account, :amount)",
        posting_rows(e),
    )


def delete_entries(con: Raw, first: int, last: int) -> None:
    for table in ("postings", "entries"):
        con.execute(
            f"DELETE FROM {table} WHERE ledger_id = ? AND seq BETWEEN ? AND ?",
            (LEDGER, first, last),
        )


def rehash(e: Entry) -> Entry:
    """`e` with its hash recomputed from its content and its old signature kept."""
    return dataclasses.replace(e, hash=entry_hash(e))


def resign(e: Entry, signer: Signer, *, key_id: str | None = None) -> Entry:
    """`e` with key id set, hash recomputed and signed by `signer` (`key_id` defaults to its)."""
    e = dataclasses.replace(e, key_id=key_id or signer.key_id)
    digest = entry_hash(e)
    return dataclasses.replace(e, hash=digest, signature=signer.sign(digest))


def scaled(e: Entry, factor: int) -> Entry:
    """`e` with every posting multiplied by `factor` (still summing to zero)."""
    return dataclasses.replace(
        e, postings=tuple(Posting(p.account, p.amount * factor) for p in e.postings)
    )


def fix_balances(con: Raw, ledger: str = LEDGER) -> None:
    """Make the balance cache agree with the (tampered) postings, as a careful attacker would."""
    con.execute(
        "UPDATE accounts SET balance = COALESCE((SELECT SUM(p.amount) FROM postings p "
        "WHERE p.ledger_id = accounts.ledger_id AND p.account = accounts.code), 0) "
        "WHERE ledger_id = ?",
        (ledger,),
    )


def fix_head(con: Raw, ledger: str = LEDGER) -> None:
    """Point the ledger's head row at its last remaining entry."""
    seq, digest, time_us = con.execute(
        "SELECT seq, hash, time_us FROM entries WHERE ledger_id = ? ORDER BY seq DESC LIMIT 1",
        (ledger,),
    ).fetchone()
    con.execute(
        "UPDATE ledgers SET head_seq = ?, head_hash = ?, head_time_us = ? WHERE id = ?",
        (seq, digest, time_us, ledger),
    )


def signer(built: Built, key_id: str) -> Signer:
    return KeyRing(built.keys).get(LEDGER, key_id)


def next_transfer(previous: Entry, key: Signer, minutes: int = 60) -> Entry:
    """A well-formed transfer following `previous`, signed by `key`."""
    e = Entry(
        LEDGER,
        previous.seq + 1,
        previous.hash,
        EntryKind.TRANSFER,
        previous.time_us + 1_000_000,
        key.key_id,
        0,
        0,
        "",
        (Posting("member:alice", minutes), Posting("scheme:issuance", -minutes)),
        (("activity", "garden"),),
    )
    return resign(e, key)


async def verify(db: str) -> Report:
    return await verify_database(_url(db, read_only=True), workers=1)


async def first_problem(db: str) -> Problem:
    report = await verify(db)
    assert not report.ok, "verify accepted a tampered database"
    assert len(report.problems) == 1, report.problems
    return report.problems[0]


async def assert_fails(db: str, seq: int | None, *fragments: str, ledger: str = LEDGER) -> None:
    problem = await first_problem(db)
    assert (problem.ledger, problem.seq) == (ledger, seq), str(problem)
    for fragment in fragments:
        assert fragment in problem.message, str(problem)


def assert_cli_fails(db: str, seq: int | None, *fragments: str, more: Sequence[str] = ()) -> None:
    done = _timebank("verify", "--db", db, "--workers", "1", *more)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    where = f"FAILED ledger {LEDGER}" + (f" at sequence {seq}:" if seq else ":")
    assert lines[0].startswith(where), lines[0]
    for fragment in fragments:
        assert fragment in lines[0]


# ---- the untampered ledger and its triggers ---------------------------------------------------


async def test_untampered_database_verifies(built: Built, db: str) -> None:
    report = await verify(db)
    assert report.ok, report.problems
    assert (report.ledgers, report.entries) == (2, built.n + built.other_n)
    assert (report.checkpoints, report.keys) == (len(built.checkpoints) + 1, 3)
    done = _timebank("verify", "--db", db, "--workers", "1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("OK 2 ledgers") and len(done.stdout.splitlines()) == 1


@pytest.mark.skipif(bool(SERVER_URL), reason="SQLite's triggers, read with stdlib sqlite3")
@pytest.mark.parametrize("table", APPEND_ONLY)
def test_triggers_refuse_update_and_delete(db: str, table: str) -> None:
    con = sqlite3.connect(db)
    try:
        names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='trigger'")}
        assert {f"{table}_no_update", f"{table}_no_delete"} <= names
        before = con.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3").fetchall()
        assert before, f"{table} is empty in the fixture"
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            con.execute(f"UPDATE {table} SET ledger_id = ledger_id")
        con.rollback()
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            con.execute(f"DELETE FROM {table} WHERE ledger_id = ?", (LEDGER,))
        con.rollback()
        assert con.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3").fetchall() == before
    finally:
        con.close()


@pytest.mark.skipif(not SERVER_URL, reason="PostgreSQL's triggers (SQLite's: the test above)")
@pytest.mark.parametrize("table", APPEND_ONLY)
def test_server_triggers_refuse_update_delete_and_truncate_by_the_owner(
    db: str, table: str
) -> None:
    """Even the tables' owner (the test role) is refused until it drops or disables them."""
    engine = create_engine(to_sync_url(db))
    try:
        with engine.connect() as conn:
            names = conn.execute(
                text(
                    "SELECT tgname FROM pg_trigger WHERE tgrelid = CAST(:t AS regclass) "
                    "AND NOT tgisinternal AND tgenabled = 'O'"
                ),
                {"t": table},
            ).scalars()
            assert {f"{table}_append_only_rows", f"{table}_append_only_truncate"} <= set(names)
            rows = f"SELECT * FROM {table} ORDER BY 1, 2, 3"
            before = conn.exec_driver_sql(rows).all()
            assert before, f"{table} is empty in the fixture"
            for sql in (
                f"UPDATE {table} SET ledger_id = ledger_id",
                f"DELETE FROM {table} WHERE ledger_id = '{LEDGER}'",
                f"TRUNCATE {table} CASCADE",  # else a foreign key may refuse it first
            ):
                with pytest.raises(DBAPIError, match=f"{table} is append-only"):
                    conn.exec_driver_sql(sql)
                conn.rollback()
            assert conn.exec_driver_sql(rows).all() == before
    finally:
        engine.dispose()


@pytest.mark.skipif(not SERVER_URL, reason="a PostgreSQL role's privileges")
def test_server_service_role_can_neither_rewrite_nor_unprotect_the_ledger(db: str) -> None:
    """The service role of docs/deployment.md (no UPDATE, DELETE or TRUNCATE on the ledger's
    tables) is refused them, and cannot drop or disable a trigger either: the attacks here need
    the owner."""
    role = f"svc_{uuid.uuid4().hex[:12]}"
    owner = create_engine(to_sync_url(db), isolation_level="AUTOCOMMIT")
    service = create_engine(
        to_sync_url(make_url(db).set(username=role).render_as_string(hide_password=False))
    )
    tables = ", ".join(APPEND_ONLY)
    try:
        with owner.connect() as conn:
            for sql in (  # as docs/deployment.md's "PostgreSQL" section has it
                f"CREATE ROLE {role} LOGIN",
                f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
                f"REVOKE UPDATE, DELETE, TRUNCATE ON {tables} FROM {role}",
                f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}",
            ):
                conn.exec_driver_sql(sql)
        with service.connect() as conn:
            for table in APPEND_ONLY:
                for sql in (
                    f"UPDATE {table} SET ledger_id = ledger_id",
                    f"DELETE FROM {table}",
                    f"TRUNCATE {table}",
                    f"DROP TRIGGER {table}_append_only_rows ON {table}",
                    f"ALTER TABLE {table} DISABLE TRIGGER USER",
                ):
                    with pytest.raises(DBAPIError) as err:
                        conn.exec_driver_sql(sql)
                    assert "InsufficientPrivilege" in str(err.value), sql
                    conn.rollback()
            # what it needs for its own work it still has: appending, and the balance cache
            for table in APPEND_ONLY:
                sql = f"SELECT has_table_privilege('{table}', 'SELECT, INSERT')"
                assert conn.exec_driver_sql(sql).scalar(), table
            conn.exec_driver_sql("UPDATE accounts SET balance = balance")
            conn.rollback()
    finally:
        service.dispose()
        with owner.connect() as conn:
            for kind in ("TABLES", "SEQUENCES"):  # DROP OWNED BY needs membership in the role
                conn.exec_driver_sql(f"REVOKE ALL ON ALL {kind} IN SCHEMA public FROM {role}")
            conn.exec_driver_sql(f"DROP ROLE {role}")
        owner.dispose()
    sql = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgenabled = 'O'"
    assert {name for name, _ in PG_TRIGGERS} <= {r[0] for r in count_rows(db, {"t": sql})["t"]}


async def test_appending_a_well_formed_entry_with_the_current_key_verifies(
    built: Built, db: str
) -> None:
    """The control for the attacks below: the tampering helpers themselves are sound."""
    with tampering(db) as con:
        e = next_transfer(read_entry(con, built.n), signer(built, built.new_key))
        insert_entry(con, e)
        add_merkle_nodes(con, e)
        fix_balances(con)
        fix_head(con)
    report = await verify(db)
    assert report.ok, report.problems
    assert report.entries == built.n + 1 + built.other_n


# ---- changed amounts, metadata and balances ----------------------------------------------------


@pytest.mark.parametrize("balanced", [True, False], ids=["zero-sum", "one-sided"])
@pytest.mark.parametrize("balances_fixed", [False, True], ids=["cache-as-is", "cache-fixed"])
async def test_changed_amount_is_caught(
    built: Built, db: str, balanced: bool, balances_fixed: bool
) -> None:
    seq = built.transfers[2]
    with tampering(db) as con:
        if balanced:
            con.execute(
                "UPDATE postings SET amount = amount * 3 WHERE ledger_id = ? AND seq = ?",
                (LEDGER, seq),
            )
        else:
            con.execute(
                "UPDATE postings SET amount = amount + 60 "
                "WHERE ledger_id = ? AND seq = ? AND amount > 0",
                (LEDGER, seq),
            )
        if balances_fixed:
            fix_balances(con)
    await assert_fails(db, seq, "hash does not match")


def test_changed_amount_is_caught_by_the_cli(built: Built, db: str) -> None:
    seq = built.transfers[4]
    with tampering(db) as con:
        con.execute(
            "UPDATE postings SET amount = amount * 2 WHERE ledger_id = ? AND seq = ?",
            (LEDGER, seq),
        )
        fix_balances(con)
    assert_cli_fails(db, seq, "hash does not match")


@pytest.mark.parametrize("change", ["value", "added", "removed"])
async def test_changed_metadata_is_caught(built: Built, db: str, change: str) -> None:
    seq = built.reversal
    with tampering(db) as con:
        meta = {
            "value": '[["reason","entered in error"]]',
            "added": '[["a","b"],["reason","logged twice"]]',
            "removed": "[]",
        }[change]
        con.execute(
            "UPDATE entries SET meta = ? WHERE ledger_id = ? AND seq = ?", (meta, LEDGER, seq)
        )
    await assert_fails(db, seq, "hash does not match")


@pytest.mark.parametrize("rebalanced", [False, True], ids=["one-account", "sum-kept-zero"])
async def test_changed_stored_balance_is_caught(db: str, rebalanced: bool) -> None:
    with tampering(db) as con:
        con.execute(
            "UPDATE accounts SET balance = balance + 600 WHERE ledger_id = ? AND code = ?",
            (LEDGER, "member:alice"),
        )
        if rebalanced:
            con.execute(
                "UPDATE accounts SET balance = balance - 600 WHERE ledger_id = ? AND code = ?",
                (LEDGER, "scheme:issuance"),
            )
    # a balance belongs to no one entry: the ledger is named, with no sequence number
    await assert_fails(db, None, "stored balance of member:alice")


def test_changed_stored_balance_is_caught_by_the_cli(db: str) -> None:
    with tampering(db) as con:
        con.execute(
            "UPDATE accounts SET balance = balance - 1 WHERE ledger_id = ? AND code = ?",
            (LEDGER, "@reserved"),
        )
    assert_cli_fails(db, None, "stored balance of @reserved")


# ---- removed and reordered entries -----------------------------------------------------------


@pytest.mark.parametrize("cleanup", ["none", "balances", "balances-and-head"])
async def test_deleted_entry_is_caught(built: Built, db: str, cleanup: str) -> None:
    seq = built.transfers[3]
    with tampering(db) as con:
        delete_entries(con, seq, seq)
        if cleanup != "none":
            fix_balances(con)
        if cleanup == "balances-and-head":
            fix_head(con)  # the head is the last entry, which is still there
    await assert_fails(db, seq, "gap or reorder")


async def test_deleted_entry_with_later_ones_renumbered_is_caught(built: Built, db: str) -> None:
    seq = built.transfers[3]
    with tampering(db) as con:
        delete_entries(con, seq, seq)
        for table in ("entries", "postings"):
            # by way of 1 - seq: PostgreSQL checks the primary key row by row, so seq - 1 in one
            # statement could meet a row not yet moved
            con.execute(
                f"UPDATE {table} SET seq = 1 - seq WHERE ledger_id = ? AND seq > ?", (LEDGER, seq)
            )
            con.execute(f"UPDATE {table} SET seq = -seq WHERE ledger_id = ? AND seq < 0", (LEDGER,))
        fix_balances(con)
        fix_head(con)
    await assert_fails(db, seq, "previous-hash link broken")


def test_deleted_entry_is_caught_by_the_cli(built: Built, db: str) -> None:
    seq = built.post
    with tampering(db) as con:
        delete_entries(con, seq, seq)
    assert_cli_fails(db, seq, "gap or reorder")


@pytest.mark.parametrize("which", ["transfers", "reserve-and-post"])
async def test_swapped_entries_are_caught(built: Built, db: str, which: str) -> None:
    a = built.transfers[6] if which == "transfers" else built.reserve
    b = a + 1
    with tampering(db) as con:
        for table in ("entries", "postings"):
            con.execute(f"UPDATE {table} SET seq = -1 WHERE ledger_id = ? AND seq = ?", (LEDGER, a))
            con.execute(
                f"UPDATE {table} SET seq = ? WHERE ledger_id = ? AND seq = ?", (a, LEDGER, b)
            )
            con.execute(f"UPDATE {table} SET seq = ? WHERE ledger_id = ? AND seq = -1", (b, LEDGER))
    await assert_fails(db, a, "previous-hash link broken")


# ---- forged signatures and keys ----------------------------------------------------------------


@pytest.mark.parametrize("where", ["middle", "tail"])
async def test_entry_resigned_with_an_unlisted_key_is_caught(
    built: Built, db: str, where: str
) -> None:
    seq = built.transfers[5] if where == "middle" else built.n
    forger = Signer.generate()
    with tampering(db) as con:
        write_entry(con, resign(scaled(read_entry(con, seq), 2), forger))
        fix_balances(con)
        fix_head(con)  # for the tail, the head row now matches the forged entry
    await assert_fails(db, seq, f"signed with key {forger.key_id}", "not the listed key")


async def test_entry_resigned_with_a_fresh_key_under_the_listed_key_id_is_caught(
    built: Built, db: str
) -> None:
    seq = built.n
    with tampering(db) as con:
        write_entry(
            con, resign(scaled(read_entry(con, seq), 2), Signer.generate(), key_id=built.new_key)
        )
        fix_balances(con)
        fix_head(con)
    await assert_fails(db, seq, "bad signature")


def _forged_key(forger: Signer, from_seq: int, claimed_signer: str) -> PublicKey:
    key = PublicKey(LEDGER, forger.key_id, forger.public_key, from_seq, 1, claimed_signer)
    return dataclasses.replace(key, signature=forger.sign(key_digest(key)))


@pytest.mark.parametrize("claims", ["self-signed", "certified-by-current"])
async def test_resigned_entry_with_the_attackers_key_inserted_is_caught(
    built: Built, db: str, claims: str
) -> None:
    """The forger lists their own key from the forged entry on: the certificate chain breaks."""
    seq = built.n
    forger = Signer.generate()
    claimed = forger.key_id if claims == "self-signed" else built.new_key
    key = _forged_key(forger, seq, claimed)
    with tampering(db) as con:
        write_entry(con, resign(scaled(read_entry(con, seq), 2), forger))
        con.execute(
            "INSERT INTO ledger_keys (ledger_id, position, key_id, public_key, from_seq, "
            "time_us, signer_key_id, signature) VALUES (?, 2, ?, ?, ?, ?, ?, ?)",
            (LEDGER, key.key_id, key.public_key, key.from_seq, key.time_us, claimed, key.signature),
        )
        con.execute("UPDATE ledgers SET key_count = 3 WHERE id = ?", (LEDGER,))
        fix_balances(con)
        fix_head(con)
    expected = "bad certificate signature" if claims != "self-signed" else "must be certified by"
    # a broken key list condemns the whole ledger: it is named, with no sequence number
    await assert_fails(db, None, f"key {forger.key_id}", expected)


async def test_replacing_the_current_key_with_the_attackers_is_caught(
    built: Built, db: str
) -> None:
    """Swap the listed current key for the forger's (same position and from_seq) and re-sign."""
    forger = Signer.generate()
    key = _forged_key(forger, built.rotated_at, built.old_key)
    with tampering(db) as con:
        con.execute(
            "UPDATE ledger_keys SET key_id = ?, public_key = ?, signature = ? "
            "WHERE ledger_id = ? AND position = 1",
            (key.key_id, key.public_key, key.signature, LEDGER),
        )
        prev = read_entry(con, built.rotated_at - 1)
        for seq in range(built.rotated_at, built.n + 1):
            e = resign(dataclasses.replace(read_entry(con, seq), prev_hash=prev.hash), forger)
            write_entry(con, e)
            prev = e
        fix_head(con)
    await assert_fails(db, None, f"key {forger.key_id}", "bad certificate signature")


async def test_a_full_rewrite_under_a_new_key_list_is_caught_only_by_the_published_keys(
    built: Built, db: str
) -> None:
    """Replace every key, re-sign every entry, rebuild the tree and re-sign the checkpoints.

    The database is then self-consistent, so plain verify cannot tell (this is why keys are
    published); pinned to the published key list, verify refuses it.
    """
    published = {LEDGER: _public_keys(db), OTHER: _public_keys(db, OTHER)}
    forger = Signer.generate()
    key = _forged_key(forger, 1, forger.key_id)
    with tampering(db) as con:
        con.execute("DELETE FROM ledger_keys WHERE ledger_id = ?", (LEDGER,))
        con.execute(
            "INSERT INTO ledger_keys (ledger_id, position, key_id, public_key, from_seq, "
            "time_us, signer_key_id, signature) VALUES (?, 0, ?, ?, 1, ?, ?, ?)",
            (LEDGER, key.key_id, key.public_key, key.time_us, key.key_id, key.signature),
        )
        con.execute("UPDATE ledgers SET key_count = 1 WHERE id = ?", (LEDGER,))
        con.execute("DELETE FROM merkle_nodes WHERE ledger_id = ?", (LEDGER,))
        frontier, prev = Frontier(), ZERO_HASH
        roots: dict[int, bytes] = {}
        for seq in range(1, built.n + 1):
            e = resign(dataclasses.replace(read_entry(con, seq), prev_hash=prev), forger)
            write_entry(con, e)
            for level, idx, h in frontier.append(e.hash):
                if level:
                    con.execute(
                        "INSERT INTO merkle_nodes (ledger_id, level, idx, hash) "
                        "VALUES (?, ?, ?, ?)",
                        (LEDGER, level, idx, h),
                    )
            roots[seq], prev = frontier.root(), e.hash
        for size in built.checkpoints:
            cp = Checkpoint(LEDGER, size, roots[size], 1, forger.key_id)
            con.execute(
                "UPDATE checkpoints SET root = ?, time_us = 1, key_id = ?, signature = ? "
                "WHERE ledger_id = ? AND size = ?",
                (cp.root, cp.key_id, forger.sign(checkpoint_digest(cp)), LEDGER, size),
            )
        fix_head(con)
    assert (await verify(db)).ok
    report = await verify_database(_url(db, read_only=True), workers=1, trusted=published)
    assert [(p.ledger, p.seq) for p in report.problems] == [(LEDGER, None)]
    assert "trusted keys" in report.problems[0].message


def _checkpoints(db: str, ledger: str = LEDGER) -> dict[int, Checkpoint]:
    sql = (
        "SELECT ledger_id, size, root, time_us, key_id, signature FROM checkpoints "
        f"WHERE ledger_id = '{ledger}' ORDER BY size"
    )
    return {
        r[1]: Checkpoint(r[0], r[1], bytes(r[2]), r[3], r[4], bytes(r[5]))
        for r in count_rows(_url(db), {"cps": sql})["cps"]
    }


async def test_a_rewrite_with_the_stolen_current_key_is_caught_by_a_checkpoint_held_from_before(
    built: Built, db: str
) -> None:
    """Key compromise: the attacker holds the ledger's current private key, so a rewrite of
    history since the rotation can be re-signed, tree and checkpoints included, under the very
    keys that were published. Plain verify and pinned keys cannot tell. An auditor who kept an
    older checkpoint (published, or from a receipt) can: the rewritten log's first entries give
    another root, and the consistency proof from the held checkpoint to the newest fails."""
    published = {LEDGER: _public_keys(db), OTHER: _public_keys(db, OTHER)}
    old, newest = built.checkpoints[1], built.checkpoints[2]
    stored = _checkpoints(db)
    held = stored[old]  # kept by an auditor before the attack
    stolen = KeyRing(built.keys).get(LEDGER, built.new_key)
    victim = min(s for s in built.transfers if built.rotated_at <= s <= old)
    with tampering(db) as con:
        prev = read_entry(con, victim - 1).hash
        for seq in range(victim, built.n + 1):
            e = read_entry(con, seq)
            if seq == victim:  # the changed history: whose garden it was
                e = dataclasses.replace(e, meta=(("activity", "lifts"), ("note", "rewritten")))
            e = resign(dataclasses.replace(e, prev_hash=prev), stolen)
            write_entry(con, e)
            prev = e.hash
        con.execute("DELETE FROM merkle_nodes WHERE ledger_id = ?", (LEDGER,))
        frontier, roots = Frontier(), {}
        for seq in range(1, built.n + 1):
            for level, idx, h in frontier.append(read_entry(con, seq).hash):
                if level:
                    con.execute("INSERT INTO merkle_nodes (ledger_id, level, idx, hash) "
                                "VALUES (?, ?, ?, ?)", (LEDGER, level, idx, h))  # fmt: skip
            roots[seq] = frontier.root()
        for size in (old, newest):
            cp = dataclasses.replace(stored[size], root=roots[size], key_id=stolen.key_id)
            con.execute("UPDATE checkpoints SET root = ?, signature = ? WHERE ledger_id = ? "
                        "AND size = ?", (cp.root, stolen.sign(checkpoint_digest(cp)), LEDGER,
                                         size))  # fmt: skip
        fix_head(con)
    url = _url(db, read_only=True)
    assert (await verify(db)).ok  # self-consistent, signed by the real, published keys
    assert (await verify_database(url, workers=1, trusted=published)).ok
    report = await verify_database(url, workers=1, trusted=published, held={LEDGER: [held]})
    assert [(p.ledger, p.seq) for p in report.problems] == [(LEDGER, old)], report.summary()
    assert "checkpoint you hold" in report.problems[0].message
    # what an auditor does with a consistency proof the rewritten store serves
    store = await LedgerStore.open(_url(db), KeyRing(built.keys))
    try:
        proof = await store.consistency_proof(LEDGER, old, newest)
    finally:
        await store.close()
    rewritten = _checkpoints(db)[newest]
    keys = published[LEDGER]
    assert consistency_problem(keys, held, rewritten, proof) == (
        f"checkpoint {newest} is not consistent with checkpoint {old}"
    )
    # and, untouched, the same held checkpoint is accepted
    assert (await verify_database(_url(built.db, read_only=True), workers=1,
                                  held={LEDGER: [held]})).ok  # fmt: skip
    # the CLI, given the checkpoint as the API served it (GET .../checkpoints/latest)
    kept = built.keys.parent / f"held-{uuid.uuid4().hex[:8]}.jsonl"
    kept.write_text(json.dumps({
        "ledger": LEDGER, "size": held.size, "root": held.root.hex(),
        "time": from_us(held.time_us).isoformat(), "key_id": held.key_id,
        "signature": held.signature.hex(),
    }) + "\n")  # fmt: skip
    try:
        assert _timebank("verify", "--db", db, "--workers", "1").returncode == 0
        assert_cli_fails(db, old, "checkpoint you hold", more=("--held-checkpoints", str(kept)))
        ok = _timebank("verify", "--db", built.db, "--held-checkpoints", str(kept))
        assert ok.returncode == 0, ok.stderr
    finally:
        kept.unlink()


def _public_keys(db: str, ledger: str = LEDGER) -> list[PublicKey]:
    sql = (
        "SELECT key_id, public_key, from_seq, time_us, signer_key_id, signature "
        f"FROM ledger_keys WHERE ledger_id = '{ledger}' ORDER BY position"
    )
    return [PublicKey(ledger, *row) for row in count_rows(_url(db), {"keys": sql})["keys"]]


@pytest.mark.parametrize("claimed", ["old", "new"])
async def test_entry_appended_by_the_rotated_out_key_is_caught(
    built: Built, db: str, claimed: str
) -> None:
    old = signer(built, built.old_key)
    with tampering(db) as con:
        e = next_transfer(read_entry(con, built.n), old)
        if claimed == "new":  # claims the current key id, but the old key signed it
            e = resign(e, old, key_id=built.new_key)
        insert_entry(con, e)
        fix_balances(con)
        fix_head(con)
    seq = built.n + 1
    if claimed == "old":
        await assert_fails(db, seq, f"signed with key {built.old_key}")
    else:
        await assert_fails(db, seq, "bad signature")


def test_entry_appended_by_the_rotated_out_key_is_caught_by_the_cli(built: Built, db: str) -> None:
    with tampering(db) as con:
        insert_entry(con, next_transfer(read_entry(con, built.n), signer(built, built.old_key)))
        fix_balances(con)
        fix_head(con)
    assert_cli_fails(db, built.n + 1, built.old_key)


# ---- the hash chain ----------------------------------------------------------------------------


async def test_rewritten_and_validly_resigned_entry_breaks_the_link_to_the_next(
    built: Built, db: str
) -> None:
    """Even with the real signing key, rewriting one entry breaks the next entry's prev_hash."""
    seq = built.transfers[-3]
    assert built.checkpoints[-1] < seq < built.n  # no checkpoint covers it
    with tampering(db) as con:
        e = resign(scaled(read_entry(con, seq), 2), signer(built, built.new_key))
        write_entry(con, e)
        fix_balances(con)
    await assert_fails(db, seq + 1, "previous-hash link broken")


async def test_rewritten_entry_with_recomputed_hash_but_old_signature_is_caught(
    built: Built, db: str
) -> None:
    seq = built.transfers[-3]
    with tampering(db) as con:
        write_entry(con, rehash(scaled(read_entry(con, seq), 2)))
        fix_balances(con)
    await assert_fails(db, seq, "bad signature")


async def test_changed_prev_hash_with_recomputed_hash_is_caught(built: Built, db: str) -> None:
    seq = built.transfers[-3]
    with tampering(db) as con:
        e = dataclasses.replace(read_entry(con, seq), prev_hash=bytes(range(32)))
        write_entry(con, resign(e, signer(built, built.new_key)))
    await assert_fails(db, seq, "previous-hash link broken")


async def test_changed_hash_column_alone_is_caught(built: Built, db: str) -> None:
    seq = built.transfers[0]
    with tampering(db) as con:
        con.execute(
            "UPDATE entries SET hash = ? WHERE ledger_id = ? AND seq = ?",
            (bytes(32), LEDGER, seq),
        )
    await assert_fails(db, seq, "hash does not match")


# ---- truncation and checkpoints --------------------------------------------------------------


@pytest.mark.parametrize("balances_fixed", [True, False])
async def test_truncated_tail_below_a_checkpoint_is_caught(
    built: Built, db: str, balances_fixed: bool
) -> None:
    """Cut the log back to the second checkpoint; the third checkpoint outlives the cut."""
    keep = built.checkpoints[1]
    with tampering(db) as con:
        delete_entries(con, keep + 1, built.n)
        fix_head(con)
        if balances_fixed:
            fix_balances(con)  # @reserved too: the open reservation went with the tail
    await assert_fails(db, keep + 1, f"checkpoint {built.checkpoints[2]} is beyond")


async def test_truncated_tail_with_the_head_row_left_is_caught(built: Built, db: str) -> None:
    keep = built.checkpoints[-1] + 1
    with tampering(db) as con:
        delete_entries(con, keep + 1, built.n)
        fix_balances(con)
    await assert_fails(db, keep + 1, f"head says {built.n} entries")


def test_truncated_tail_is_caught_by_the_cli(built: Built, db: str) -> None:
    keep = built.checkpoints[0]
    with tampering(db) as con:
        delete_entries(con, keep + 1, built.n)
        fix_head(con)
        fix_balances(con)
    assert_cli_fails(db, keep + 1, "beyond the log's end")


@pytest.mark.parametrize("field", ["root", "signature", "time"])
async def test_changed_checkpoint_is_caught(built: Built, db: str, field: str) -> None:
    size = built.checkpoints[1]
    with tampering(db) as con:
        if field == "root":
            con.execute(
                "UPDATE checkpoints SET root = ? WHERE ledger_id = ? AND size = ?",
                (bytes(32), LEDGER, size),
            )
        elif field == "signature":
            (sig,) = con.execute(
                "SELECT signature FROM checkpoints WHERE ledger_id = ? AND size = ?",
                (LEDGER, size),
            ).fetchone()
            con.execute(
                "UPDATE checkpoints SET signature = ? WHERE ledger_id = ? AND size = ?",
                (bytes([sig[0] ^ 1]) + sig[1:], LEDGER, size),
            )
        else:
            con.execute(
                "UPDATE checkpoints SET time_us = time_us + 1 WHERE ledger_id = ? AND size = ?",
                (LEDGER, size),
            )
    fragment = "root does not match" if field == "root" else "bad signature"
    await assert_fails(db, size, f"checkpoint {size}", fragment)


@pytest.mark.parametrize("delta", [-1, 1, -5])
async def test_checkpoint_with_changed_size_is_caught(built: Built, db: str, delta: int) -> None:
    size = built.checkpoints[1]
    with tampering(db) as con:
        con.execute(
            "UPDATE checkpoints SET size = ? WHERE ledger_id = ? AND size = ?",
            (size + delta, LEDGER, size),
        )
    await assert_fails(db, size + delta, f"checkpoint {size + delta}")


async def test_checkpoint_with_altered_root_resigned_by_the_real_key_is_caught(
    built: Built, db: str
) -> None:
    """The key holder can sign anything, but not a root the log does not have."""
    size = built.checkpoints[2]
    key = signer(built, built.new_key)
    cp = Checkpoint(LEDGER, size, bytes(32), 1, key.key_id)
    cp = dataclasses.replace(cp, signature=key.sign(checkpoint_digest(cp)))
    with tampering(db) as con:
        con.execute(
            "UPDATE checkpoints SET root = ?, time_us = ?, signature = ? "
            "WHERE ledger_id = ? AND size = ?",
            (cp.root, cp.time_us, cp.signature, LEDGER, size),
        )
    await assert_fails(db, size, "root does not match")


async def test_checkpoint_signed_by_the_retired_key_is_caught(built: Built, db: str) -> None:
    size = built.checkpoints[2]  # after the rotation
    old = signer(built, built.old_key)
    with tampering(db) as con:
        root, time_us = con.execute(
            "SELECT root, time_us FROM checkpoints WHERE ledger_id = ? AND size = ?",
            (LEDGER, size),
        ).fetchone()
        cp = Checkpoint(LEDGER, size, root, time_us, old.key_id)
        con.execute(
            "UPDATE checkpoints SET key_id = ?, signature = ? WHERE ledger_id = ? AND size = ?",
            (old.key_id, old.sign(checkpoint_digest(cp)), LEDGER, size),
        )
    await assert_fails(db, size, f"key {built.old_key} is not a listed key in service")


def test_changed_checkpoint_is_caught_by_the_cli(built: Built, db: str) -> None:
    size = built.checkpoints[0]
    with tampering(db) as con:
        con.execute(
            "UPDATE checkpoints SET root = ? WHERE ledger_id = ? AND size = ?",
            (bytes(32), LEDGER, size),
        )
    assert_cli_fails(db, size, f"checkpoint {size}")


async def test_tampering_in_the_other_ledger_names_it(built: Built, db: str) -> None:
    with tampering(db) as con:
        con.execute(
            "UPDATE postings SET amount = amount * 2 WHERE ledger_id = ? AND seq = 2", (OTHER,)
        )
    await assert_fails(db, 2, "hash does not match", ledger=OTHER)


async def test_reordered_postings_are_caught(built: Built, db: str) -> None:
    seq = built.transfers[1]
    with tampering(db) as con:
        for flip in ("idx - 10", "-9 - idx"):  # 0 <-> 1, by way of -10 and -9
            con.execute(
                f"UPDATE postings SET idx = {flip} WHERE ledger_id = ? AND seq = ?", (LEDGER, seq)
            )
    await assert_fails(db, seq, "hash does not match")


async def test_deleted_account_row_is_caught(built: Built, db: str) -> None:
    with tampering(db) as con:
        con.execute(
            "DELETE FROM accounts WHERE ledger_id = ? AND code = 'partner:leisure'", (LEDGER,)
        )
    # the reservation names it only as its target; the post is the first posting to it
    await assert_fails(db, built.post, "unknown account partner:leisure")


async def test_changed_head_hash_is_caught(built: Built, db: str) -> None:
    with tampering(db) as con:
        con.execute("UPDATE ledgers SET head_hash = ? WHERE id = ?", (bytes(32), LEDGER))
    await assert_fails(db, built.n + 1, "head says")


def _set_node(con: Raw, level: int, idx: int) -> None:
    cur = con.execute(
        "UPDATE merkle_nodes SET hash = ? WHERE ledger_id = ? AND level = ? AND idx = ?",
        (bytes(32), LEDGER, level, idx),
    )
    assert cur.rowcount == 1


async def test_changed_merkle_node_used_by_a_consistency_proof_is_caught(
    built: Built, db: str
) -> None:
    assert built.checkpoints[:2] == (12, 24)  # PROOF(12, 24) uses the nodes of 8..12 and 0..8
    with tampering(db) as con:
        _set_node(con, 3, 0)
    problem = await first_problem(db)
    assert problem.ledger == LEDGER
    assert "not consistent" in problem.message


@pytest.mark.parametrize(
    "node", [(1, 3), (1, 16)], ids=["inside-a-checkpoint", "frontier-past-last-checkpoint"]
)
async def test_changed_merkle_node_is_caught(built: Built, db: str, node: tuple[int, int]) -> None:
    with tampering(db) as con:
        _set_node(con, *node)
    problem = await first_problem(db)
    assert problem.ledger == LEDGER


# ---- the same attacks on an exported bundle --------------------------------------------------


def read_bundle(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def write_bundle(path: Path, records: list[dict[str, Any]]) -> None:
    text = "".join(json.dumps(r, separators=(",", ":"), ensure_ascii=False) + "\n" for r in records)
    path.write_text(text, encoding="utf-8")


def find(records: list[dict[str, Any]], kind: str, ledger: str = LEDGER, **match: Any) -> int:
    for i, r in enumerate(records):
        if r["type"] == kind and r.get("ledger") == ledger and match.items() <= r.items():
            return i
    raise AssertionError(f"no {kind} {match} in the bundle")


def set_end(records: list[dict[str, Any]], ledger: str = LEDGER) -> None:
    """Make the ledger's end line agree with its (tampered) entry lines."""
    count = sum(1 for r in records if r["type"] == "entry" and r["ledger"] == ledger)
    records[find(records, "end", ledger)]["entries"] = count


def recount_balances(records: list[dict[str, Any]], ledger: str = LEDGER) -> None:
    sums: dict[str, int] = {}
    for r in records:
        if r["type"] == "entry" and r["ledger"] == ledger:
            for account, amount in r["postings"]:
                sums[account] = sums.get(account, 0) + amount
    for r in records:
        if r["type"] == "account" and r["ledger"] == ledger:
            r["balance"] = sums.get(r["code"], 0)


async def verify_bundle(path: Path) -> Report:
    return await verify_sources(bundle_sources(path), workers=1)


async def assert_bundle_fails(
    path: Path, seq: int | None, *fragments: str, ledger: str = LEDGER
) -> None:
    report = await verify_bundle(path)
    assert not report.ok, "verify accepted a tampered bundle"
    assert len(report.problems) == 1, report.problems
    problem = report.problems[0]
    assert (problem.ledger, problem.seq) == (ledger, seq), str(problem)
    for fragment in fragments:
        assert fragment in problem.message, str(problem)


def assert_cli_bundle_fails(path: Path, *fragments: str) -> None:
    done = _timebank("verify", "--bundle", str(path), "--workers", "1")
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stdout == ""
    assert done.stderr.startswith("FAILED "), done.stderr
    for fragment in fragments:
        assert fragment in done.stderr


@pytest.fixture
def bundle(built: Built, tmp_path: Path) -> Path:
    target = tmp_path / "log.jsonl"
    shutil.copyfile(built.bundle, target)
    return target


async def test_untampered_bundle_verifies(built: Built, bundle: Path) -> None:
    report = await verify_bundle(bundle)
    assert report.ok, report.problems
    assert (report.ledgers, report.entries) == (2, built.n + built.other_n)
    done = _timebank("verify", "--bundle", str(bundle), "--workers", "1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("OK 2 ledgers")


async def test_bundle_changed_amount_is_caught(built: Built, bundle: Path) -> None:
    seq = built.transfers[2]
    records = read_bundle(bundle)
    line = records[find(records, "entry", seq=seq)]
    line["postings"] = [[a, n * 3] for a, n in line["postings"]]
    recount_balances(records)
    write_bundle(bundle, records)
    await assert_bundle_fails(bundle, seq, "hash does not match")
    assert_cli_bundle_fails(bundle, f"FAILED ledger {LEDGER} at sequence {seq}:")


async def test_bundle_changed_metadata_is_caught(built: Built, bundle: Path) -> None:
    seq = built.reversal
    records = read_bundle(bundle)
    records[find(records, "entry", seq=seq)]["meta"] = [["reason", "entered in error"]]
    write_bundle(bundle, records)
    await assert_bundle_fails(bundle, seq, "hash does not match")


async def test_bundle_changed_balance_is_caught(bundle: Path) -> None:
    records = read_bundle(bundle)
    records[find(records, "account", code="member:bob")]["balance"] += 30
    write_bundle(bundle, records)
    await assert_bundle_fails(bundle, None, "stored balance of member:bob")


@pytest.mark.parametrize("end_fixed", [True, False])
async def test_bundle_deleted_entry_is_caught(built: Built, bundle: Path, end_fixed: bool) -> None:
    seq = built.void
    records = read_bundle(bundle)
    del records[find(records, "entry", seq=seq)]
    if end_fixed:
        set_end(records)
        recount_balances(records)
    write_bundle(bundle, records)
    await assert_bundle_fails(bundle, seq, "gap or reorder")


async def test_bundle_swapped_entries_are_caught(built: Built, bundle: Path) -> None:
    seq = built.transfers[7]
    records = read_bundle(bundle)
    i = find(records, "entry", seq=seq)
    records[i]["seq"], records[i + 1]["seq"] = seq + 1, seq
    records[i], records[i + 1] = records[i + 1], records[i]
    write_bundle(bundle, records)
    await assert_bundle_fails(bundle, seq, "previous-hash link broken")


async def test_bundle_lines_swapped_without_renumbering_are_caught(
    built: Built, bundle: Path
) -> None:
    seq = built.transfers[7]
    records = read_bundle(bundle)
    i = find(records, "entry", seq=seq)
    records[i], records[i + 1] = records[i + 1], records[i]
    write_bundle(bundle, records)
    await assert_bundle_fails(bundle, seq, "gap or reorder")


async def test_bundle_entry_resigned_with_an_unlisted_key_is_caught(
    built: Built, bundle: Path
) -> None:
    seq = built.n
    forger = Signer.generate()
    records = read_bundle(bundle)
    i = find(records, "entry", seq=seq)
    records[i] = entry_json(resign(scaled(parse_entry(records[i]), 2), forger))
    recount_balances(records)
    write_bundle(bundle, records)
    await assert_bundle_fails(bundle, seq, f"signed with key {forger.key_id}")


@pytest.mark.parametrize("claims", ["self-signed", "certified-by-current"])
async def test_bundle_entry_resigned_with_the_attackers_key_listed_is_caught(
    built: Built, bundle: Path, claims: str
) -> None:
    seq = built.n
    forger = Signer.generate()
    claimed = forger.key_id if claims == "self-signed" else built.new_key
    records = read_bundle(bundle)
    i = find(records, "entry", seq=seq)
    records[i] = entry_json(resign(scaled(parse_entry(records[i]), 2), forger))
    recount_balances(records)
    last_key = find(records, "key", key_id=built.new_key)
    records.insert(last_key + 1, key_json(_forged_key(forger, seq, claimed)))
    write_bundle(bundle, records)
    await assert_bundle_fails(bundle, None, f"key {forger.key_id}")
    assert_cli_bundle_fails(bundle, f"FAILED ledger {LEDGER}:", forger.key_id)


@pytest.mark.parametrize("claimed", ["old", "new"])
async def test_bundle_entry_appended_by_the_rotated_out_key_is_caught(
    built: Built, bundle: Path, claimed: str
) -> None:
    old = signer(built, built.old_key)
    records = read_bundle(bundle)
    i = find(records, "entry", seq=built.n)
    e = next_transfer(parse_entry(records[i]), old)
    if claimed == "new":
        e = resign(e, old, key_id=built.new_key)
    records.insert(i + 1, entry_json(e))
    set_end(records)
    recount_balances(records)
    write_bundle(bundle, records)
    fragment = f"signed with key {built.old_key}" if claimed == "old" else "bad signature"
    await assert_bundle_fails(bundle, built.n + 1, fragment)


async def test_bundle_entry_appended_with_the_current_key_verifies(
    built: Built, bundle: Path
) -> None:
    """The control: the bundle editing helpers themselves produce a valid bundle."""
    records = read_bundle(bundle)
    i = find(records, "entry", seq=built.n)
    records.insert(
        i + 1, entry_json(next_transfer(parse_entry(records[i]), signer(built, built.new_key)))
    )
    set_end(records)
    recount_balances(records)
    write_bundle(bundle, records)
    report = await verify_bundle(bundle)
    assert report.ok, report.problems


async def test_bundle_rewritten_and_validly_resigned_entry_breaks_the_chain(
    built: Built, bundle: Path
) -> None:
    seq = built.transfers[-3]
    records = read_bundle(bundle)
    i = find(records, "entry", seq=seq)
    records[i] = entry_json(
        resign(scaled(parse_entry(records[i]), 2), signer(built, built.new_key))
    )
    recount_balances(records)
    write_bundle(bundle, records)
    await assert_bundle_fails(bundle, seq + 1, "previous-hash link broken")


@pytest.mark.parametrize("field", ["root", "size", "signature"])
async def test_bundle_changed_checkpoint_is_caught(built: Built, bundle: Path, field: str) -> None:
    size = built.checkpoints[1]
    records = read_bundle(bundle)
    i = find(records, "checkpoint", size=size)
    cp = parse_checkpoint(records[i])
    if field == "root":
        cp, seq = dataclasses.replace(cp, root=bytes(32)), size
    elif field == "size":
        cp, seq = dataclasses.replace(cp, size=size - 1), size - 1
    else:
        cp, seq = dataclasses.replace(cp, signature=bytes(64)), size
    records[i] = checkpoint_json(cp)
    write_bundle(bundle, records)
    await assert_bundle_fails(bundle, seq, f"checkpoint {seq}")


async def test_bundle_truncated_tail_below_a_checkpoint_is_caught(
    built: Built, bundle: Path
) -> None:
    keep = built.checkpoints[1]
    records = [
        r
        for r in read_bundle(bundle)
        if not (r["type"] == "entry" and r["ledger"] == LEDGER and r["seq"] > keep)
    ]
    set_end(records)
    recount_balances(records)
    write_bundle(bundle, records)
    await assert_bundle_fails(bundle, keep + 1, "beyond the log's end")


def _truncate(path: Path, cut: str) -> None:
    raw = path.read_bytes()
    lines = raw.splitlines(keepends=True)
    assert json.loads(lines[-1]) == {"type": "end-bundle"}
    if cut == "last-line":
        raw = b"".join(lines[:-1])
    elif cut == "mid-line":
        raw = raw[: len(raw) - len(lines[-1]) - len(lines[-2]) // 2]
    elif cut == "half":
        raw = raw[: len(raw) // 2]
    else:  # everything from the last ledger's "end" line on
        end = max(i for i, line in enumerate(lines) if line.startswith(b'{"type":"end",'))
        raw = b"".join(lines[:end])
    path.write_bytes(raw)


@pytest.mark.parametrize("cut", ["last-line", "mid-line", "half", "ledger-section"])
async def test_truncated_bundle_file_is_refused(bundle: Path, cut: str) -> None:
    _truncate(bundle, cut)
    with pytest.raises(BundleError):
        await verify_bundle(bundle)
    if cut == "last-line":
        done = _timebank("verify", "--bundle", str(bundle), "--workers", "1")
        assert done.returncode == 1
        assert done.stdout == ""
        assert done.stderr.startswith("FAILED bundle:"), done.stderr


# ---- a bundle the format's reader must refuse, exactly as docs/ledger-format.md says --------


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def _refused(path: Path, *fragments: str) -> None:
    done = _timebank("verify", "--bundle", str(path), "--workers", "1")
    assert done.returncode == 1 and done.stdout == "", (done.stdout, done.stderr)
    assert done.stderr.startswith("FAILED bundle: line "), done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    for fragment in fragments:
        assert fragment in done.stderr, done.stderr


def test_a_bundle_holding_a_ledgers_section_twice_is_refused_naming_both(bundle: Path) -> None:
    lines = _lines(bundle)
    start = next(i for i, t in enumerate(lines) if t.startswith('{"type":"ledger"'))
    end = next(i for i, t in enumerate(lines) if i > start and t.startswith('{"type":"end"'))
    twice = lines[: end + 1] + lines[start : end + 1] + lines[end + 1 :]
    bundle.write_text("".join(twice), encoding="utf-8")
    _refused(bundle, f"line {end + 2}:", "appears a second time", f"first at line {start + 1}")


def test_two_checkpoints_of_one_size_with_different_roots_are_a_fork_naming_both(
    bundle: Path,
) -> None:
    records = read_bundle(bundle)
    i = find(records, "checkpoint")
    forked = records[i] | {"root": "00" * 32}
    records.insert(i + 1, forked)
    write_bundle(bundle, records)
    _refused(bundle, f"line {i + 2}:", "another root", f"first is at line {i + 1}")


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda r: r | {"hash": r["hash"].upper()}, "'hash' is not lower-case hex"),
        (lambda r: r | {"colour": "blue"}, "unknown field 'colour'"),
        (lambda r: r | {"expires_us": 2**63}, "'expires_us' is out of range"),
        (lambda r: r | {"ref": -1}, "'ref' is out of range"),
        (lambda r: r | {"postings": [[a, n * 2**62] for a, n in r["postings"]]}, "out of range"),
    ],
    ids=["upper-case hex", "unknown field", "expires 2^63", "ref -1", "huge amounts"],
)
def test_an_entry_not_written_as_the_format_writes_it_is_refused_by_line(
    bundle: Path, change: Any, says: str
) -> None:
    records = read_bundle(bundle)
    i = find(records, "entry", seq=1)
    records[i] = change(records[i])
    write_bundle(bundle, records)
    _refused(bundle, f"line {i + 1}:", says)


def test_a_key_given_twice_in_one_record_is_refused(bundle: Path) -> None:
    lines = _lines(bundle)
    i = next(i for i, t in enumerate(lines) if t.startswith('{"type":"entry"'))
    lines[i] = lines[i].replace('{"type":"entry",', '{"type":"entry","seq":999,', 1)
    bundle.write_text("".join(lines), encoding="utf-8")
    _refused(bundle, f"line {i + 1}:", "'seq' appears twice")


def test_accounts_out_of_their_order_are_refused(bundle: Path) -> None:
    records = read_bundle(bundle)
    first = find(records, "account")
    records[first], records[first + 1] = records[first + 1], records[first]
    write_bundle(bundle, records)
    _refused(bundle, f"line {first + 2}:", "out of order")
