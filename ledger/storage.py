"""All of the ledger's SQL: schema, append-only triggers, and the queries. Nothing else talks SQL.

Works on SQLite (aiosqlite, WAL, synchronous=FULL); written so a PostgreSQL backend can follow
with the same tables (BigInteger, LargeBinary, no SQLite-only column types).
"""

from __future__ import annotations

import hashlib
import json
import operator
import struct
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    bindparam,
    create_engine,
    event,
    exists,
    func,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql import Select

from .model import Account, Checkpoint, Entry, EntryKind, Posting, PublicKey
from .prepared import Prepared, raw

SCHEMA_VERSION = 1
metadata = MetaData()

schema_info = Table(
    "ledger_schema", metadata, Column("version", Integer, primary_key=True, autoincrement=False)
)
ledgers = Table(
    "ledgers",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("created_us", BigInteger, nullable=False),
    Column("head_seq", BigInteger, nullable=False),
    Column("head_hash", LargeBinary(32), nullable=False),
    Column("head_time_us", BigInteger, nullable=False),
    Column("key_count", Integer, nullable=False),
)
keys = Table(
    "ledger_keys",
    metadata,
    Column("ledger_id", String(64), nullable=False),
    Column("position", Integer, nullable=False),
    Column("key_id", String(16), nullable=False, unique=True),
    Column("public_key", LargeBinary(32), nullable=False),
    Column("from_seq", BigInteger, nullable=False),
    Column("time_us", BigInteger, nullable=False),
    Column("signer_key_id", String(16), nullable=False),
    Column("signature", LargeBinary(64), nullable=False),
    PrimaryKeyConstraint("ledger_id", "position"),
    ForeignKeyConstraint(["ledger_id"], ["ledgers.id"]),
)
accounts = Table(
    "accounts",
    metadata,
    Column("ledger_id", String(64), nullable=False),
    Column("code", String(128), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("floor", BigInteger, nullable=True),
    Column("balance", BigInteger, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    PrimaryKeyConstraint("ledger_id", "code"),
    ForeignKeyConstraint(["ledger_id"], ["ledgers.id"]),
)
entries = Table(
    "entries",
    metadata,
    Column("ledger_id", String(64), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("prev_hash", LargeBinary(32), nullable=False),
    Column("hash", LargeBinary(32), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("time_us", BigInteger, nullable=False),
    Column("key_id", String(16), nullable=False),
    Column("ref", BigInteger, nullable=True),  # NULL when unused, so UNIQUE allows many
    Column("expires_us", BigInteger, nullable=False),
    Column("target", String(128), nullable=False),
    Column("meta", Text, nullable=False),  # JSON array of [key, value] pairs, sorted
    Column("signature", LargeBinary(64), nullable=False),
    PrimaryKeyConstraint("ledger_id", "seq"),
    UniqueConstraint("ledger_id", "ref"),  # an entry is resolved or reversed at most once
    ForeignKeyConstraint(["ledger_id"], ["ledgers.id"]),
)
Index("entries_pending", entries.c.ledger_id, entries.c.kind, entries.c.expires_us)
postings = Table(
    "postings",
    metadata,
    Column("ledger_id", String(64), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("idx", Integer, nullable=False),
    Column("account", String(128), nullable=False),
    Column("amount", BigInteger, nullable=False),
    PrimaryKeyConstraint("ledger_id", "seq", "idx"),
    ForeignKeyConstraint(["ledger_id", "seq"], ["entries.ledger_id", "entries.seq"]),
    ForeignKeyConstraint(["ledger_id", "account"], ["accounts.ledger_id", "accounts.code"]),
)
Index("postings_by_account", postings.c.ledger_id, postings.c.account, postings.c.seq)
merkle_nodes = Table(
    "merkle_nodes",
    metadata,
    Column("ledger_id", String(64), nullable=False),
    Column("level", Integer, nullable=False),
    Column("idx", BigInteger, nullable=False),
    Column("hash", LargeBinary(32), nullable=False),
    PrimaryKeyConstraint("ledger_id", "level", "idx"),
)
checkpoints = Table(
    "checkpoints",
    metadata,
    Column("ledger_id", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("time_us", BigInteger, nullable=False),
    Column("key_id", String(16), nullable=False),
    Column("signature", LargeBinary(64), nullable=False),
    PrimaryKeyConstraint("ledger_id", "size"),
    ForeignKeyConstraint(["ledger_id"], ["ledgers.id"]),
)
idempotency = Table(
    "idempotency_keys",
    metadata,
    Column("ledger_id", String(64), nullable=False),
    Column("key", String(255), nullable=False),
    Column("request_hash", LargeBinary(32), nullable=False),
    Column("result", Text, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    PrimaryKeyConstraint("ledger_id", "key"),
)

APPEND_ONLY = ("ledger_keys", "entries", "postings", "merkle_nodes", "checkpoints")


def sqlite_url(path: str, *, read_only: bool = False) -> str:
    if read_only:
        return f"sqlite+aiosqlite:///file:{path}?mode=ro&uri=true"
    return f"sqlite+aiosqlite:///{path}"


def make_engine(url: str, *, read_only: bool = False, deferred: bool = False) -> AsyncEngine:
    """An async engine (readers, verify). On SQLite its transactions take the write lock at
    BEGIN unless `deferred`; `read_only` opens the file read-only (on PostgreSQL: each
    transaction is one read-only snapshot, REPEATABLE READ READ ONLY)."""
    snapshot: dict[str, Any] = {}
    if read_only and make_url(url).get_backend_name() == "postgresql":
        snapshot = {
            "isolation_level": "REPEATABLE READ",
            "execution_options": {"postgresql_readonly": True},
        }
    engine = create_async_engine(url, **snapshot)
    _prepare_sqlite(engine.sync_engine, read_only=read_only, deferred=deferred)
    return engine


def to_sync_url(url: str) -> str:
    """The same database through a sync driver: sqlite3 for aiosqlite, psycopg for asyncpg."""
    parsed = make_url(url)
    drivers = {
        "sqlite+aiosqlite": "sqlite",
        "postgresql+asyncpg": "postgresql+psycopg",
        "postgresql": "postgresql+psycopg",
    }
    if parsed.drivername not in drivers:
        raise NotImplementedError(f"no sync driver for {parsed.drivername}")
    return parsed.set(drivername=drivers[parsed.drivername]).render_as_string(hide_password=False)


def make_sync_engine(url: str, *, read_only: bool = False, readers: int = 0) -> Engine:
    """A sync engine for work done on a thread of its own, one connection, write lock at BEGIN;
    or, with `readers`, a pool of that many connections for deferred (read) transactions.

    The writer runs a whole group commit (reads, checks, signing, inserts, COMMIT) in one call
    to its thread, instead of one hop to a driver thread per statement; verify reads the stored
    Merkle nodes on another thread while it streams the entries; services read a request's rows
    in one call to a reader thread.
    """
    sync_url = make_url(to_sync_url(url))
    args: dict[str, Any] = {}
    if sync_url.drivername == "sqlite":
        args["connect_args"] = {"check_same_thread": False}
    if readers:
        args |= {"pool_size": readers, "max_overflow": 0}
    elif not read_only:
        args["poolclass"] = StaticPool  # the writer's one connection
    engine = create_engine(sync_url, **args)
    _prepare_sqlite(engine, read_only=read_only, deferred=readers > 0)
    return engine


def _prepare_sqlite(engine: Engine, *, read_only: bool, deferred: bool) -> None:
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout = 10000")
        cur.execute("PRAGMA foreign_keys = ON")
        if not read_only:
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = FULL")
        cur.close()

    begin = "BEGIN" if read_only or deferred else "BEGIN IMMEDIATE"

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        raw(conn, begin)


# PostgreSQL: one function refuses every UPDATE, DELETE and TRUNCATE of an append-only table
# (the service's role should also lack those privileges: see docs/deployment.md, "PostgreSQL").
_PG_REFUSE = (
    "CREATE OR REPLACE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP "
    "USING ERRCODE = 'insufficient_privilege'; END $$"
)
SCHEMA_LOCK = 7_305_121  # pg_advisory_xact_lock key: one process creates the schema at a time


def create_tables(meta: MetaData) -> Callable[[Connection], None]:
    """`meta.create_all`, for `run_sync`: on PostgreSQL one process at a time, under an advisory
    lock held to the end of the transaction (several service processes may start together)."""

    def create(conn: Connection) -> None:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({SCHEMA_LOCK})")
        meta.create_all(conn)

    return create


async def _pg_triggers(conn: AsyncConnection) -> set[str]:
    found = await conn.execute(text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"))
    return set(found.scalars())


async def create_schema(engine: AsyncEngine) -> None:
    """Create the tables and append-only triggers if absent; refuse a different schema version."""
    async with engine.begin() as conn:
        await conn.run_sync(create_tables(metadata))
        wanted = {f"{t}_append_only_{n}" for t in APPEND_ONLY for n in ("rows", "truncate")}
        if conn.dialect.name == "postgresql" and not wanted <= await _pg_triggers(conn):
            # only the tables' owner may do this: a service role without the privilege
            # starts on a database `timebank migrate` made, whose triggers are all there
            await conn.execute(text(_PG_REFUSE))
            for table in APPEND_ONLY:
                for when, name in (("UPDATE OR DELETE", "rows"), ("TRUNCATE", "truncate")):
                    each = "ROW" if name == "rows" else "STATEMENT"
                    await conn.execute(
                        text(
                            f"CREATE OR REPLACE TRIGGER {table}_append_only_{name} BEFORE {when} "
                            f"ON {table} FOR EACH {each} EXECUTE FUNCTION ledger_append_only()"
                        )
                    )
        if conn.dialect.name == "sqlite":
            for table in APPEND_ONLY:
                for action in ("UPDATE", "DELETE"):
                    await conn.execute(
                        text(
                            f"CREATE TRIGGER IF NOT EXISTS {table}_no_{action.lower()} "
                            f"BEFORE {action} ON {table} BEGIN SELECT RAISE(ABORT, "
                            f"'{table} is append-only: {action} refused'); END"
                        )
                    )
        found = (await conn.execute(select(schema_info.c.version))).scalar()
        if found is None:
            await conn.execute(schema_info.insert().values(version=SCHEMA_VERSION))
        elif found != SCHEMA_VERSION:
            raise RuntimeError(f"database schema version {found}, this code needs {SCHEMA_VERSION}")


# ---- rows <-> values -------------------------------------------------------------------------


def _entry(row: Any, posts: Sequence[Posting]) -> Entry:
    return Entry(
        ledger=row.ledger_id,
        seq=row.seq,
        prev_hash=row.prev_hash,
        kind=EntryKind(row.kind),
        time_us=row.time_us,
        key_id=row.key_id,
        ref=row.ref or 0,
        expires_us=row.expires_us,
        target=row.target,
        postings=tuple(posts),
        meta=_meta(row.meta),
        hash=row.hash,
        signature=row.signature,
    )


def _meta(text: str) -> tuple[tuple[str, str], ...]:
    if text == "[]":
        return ()
    try:
        return tuple((str(k), str(v)) for k, v in json.loads(text))
    except (ValueError, TypeError):  # unreadable: keep the raw text so the hash check fails
        return (("!unreadable", text),)


def _meta_text(meta: tuple[tuple[str, str], ...]) -> str:
    if not meta:
        return "[]"
    return json.dumps([list(kv) for kv in meta], separators=(",", ":"), ensure_ascii=False)


def entry_values(e: Entry) -> tuple[Any, ...]:
    """An entry's row, in the `entries` table's column order (the writer's hot path)."""
    return (
        e.ledger,
        e.seq,
        e.prev_hash,
        e.hash,
        str(e.kind),
        e.time_us,
        e.key_id,
        e.ref or None,
        e.expires_us,
        e.target,
        _meta_text(e.meta),
        e.signature,
    )


def posting_values(e: Entry) -> list[tuple[Any, ...]]:
    return [(e.ledger, e.seq, i, p.account, p.amount) for i, p in enumerate(e.postings)]


def entry_row(e: Entry) -> dict[str, Any]:
    return dict(zip(entries.c.keys(), entry_values(e), strict=True))


def posting_rows(e: Entry) -> list[dict[str, Any]]:
    return [dict(zip(postings.c.keys(), row, strict=True)) for row in posting_values(e)]


def _key(row: Any) -> PublicKey:
    return PublicKey(
        ledger=row.ledger_id,
        key_id=row.key_id,
        public_key=row.public_key,
        from_seq=row.from_seq,
        time_us=row.time_us,
        signer_key_id=row.signer_key_id,
        signature=row.signature,
    )


def key_row(k: PublicKey, position: int) -> dict[str, Any]:
    return {
        "ledger_id": k.ledger,
        "position": position,
        "key_id": k.key_id,
        "public_key": k.public_key,
        "from_seq": k.from_seq,
        "time_us": k.time_us,
        "signer_key_id": k.signer_key_id,
        "signature": k.signature,
    }


def _checkpoint(row: Any) -> Checkpoint:
    return Checkpoint(row.ledger_id, row.size, row.root, row.time_us, row.key_id, row.signature)


def checkpoint_row(cp: Checkpoint) -> dict[str, Any]:
    return {
        "ledger_id": cp.ledger,
        "size": cp.size,
        "root": cp.root,
        "time_us": cp.time_us,
        "key_id": cp.key_id,
        "signature": cp.signature,
    }


def _account(row: Any) -> Account:
    return Account(row.ledger_id, row.code, row.kind, row.floor, row.balance)


# ---- the writer's reads and its one batched write ------------------------------------------


@dataclass(frozen=True, slots=True)
class Head:
    seq: int
    hash: bytes
    time_us: int
    key_count: int


_HEAD = select(
    ledgers.c.head_seq, ledgers.c.head_hash, ledgers.c.head_time_us, ledgers.c.key_count
).where(ledgers.c.id == bindparam("l"))
_READ_HEAD = Prepared(_HEAD)
_LOCK_HEAD = Prepared(_HEAD.with_for_update())  # PostgreSQL: writers queue on the head row


def read_head(conn: Connection, ledger: str) -> Head | None:
    # a read-only snapshot (verify, the exports) takes no lock: it would hold up every writer
    readonly = conn.get_execution_options().get("postgresql_readonly", False)
    read = _LOCK_HEAD if conn.dialect.name == "postgresql" and not readonly else _READ_HEAD
    row = read.first(conn, {"l": ledger})
    return Head(row[0], bytes(row[1]), row[2], row[3]) if row else None


def read_accounts(conn: Connection, ledger: str, codes: Iterable[str]) -> dict[str, Account]:
    wanted = list(set(codes))
    out: dict[str, Account] = {}
    for i in range(0, len(wanted), 500):
        stmt = select(accounts).where(
            accounts.c.ledger_id == ledger, accounts.c.code.in_(wanted[i : i + 500])
        )
        for row in conn.execute(stmt):
            out[row.code] = _account(row)
    return out


def read_idempotency(
    conn: Connection, ledger: str, idem_keys: Iterable[str]
) -> dict[str, tuple[bytes, str]]:
    wanted = list(set(idem_keys))
    out: dict[str, tuple[bytes, str]] = {}
    for i in range(0, len(wanted), 500):
        chunk = wanted[i : i + 500]
        if conn.dialect.paramstyle == "qmark":  # the writer's hot path: skip statement building
            sql = (
                "SELECT key, request_hash, result FROM idempotency_keys "
                f"WHERE ledger_id = ? AND key IN ({','.join('?' * len(chunk))})"
            )
            rows = conn.exec_driver_sql(sql, (ledger, *chunk))
        else:
            rows = conn.execute(
                select(idempotency.c.key, idempotency.c.request_hash, idempotency.c.result).where(
                    idempotency.c.ledger_id == ledger, idempotency.c.key.in_(chunk)
                )
            )
        for key, request_hash, result in rows:
            out[key] = (request_hash, result)
    return out


def read_keys(conn: Connection, ledger: str) -> list[PublicKey]:
    stmt = select(keys).where(keys.c.ledger_id == ledger).order_by(keys.c.position)
    return [_key(row) for row in conn.execute(stmt)]


def read_entries(conn: Connection, ledger: str, seqs: Iterable[int]) -> dict[int, Entry]:
    """Entries by sequence number: one prepared read each for the entry and its postings
    (the writer's preload reads a batch's referenced entries; prepared, that is the cheap way)."""
    out: dict[int, Entry] = {}
    for seq in sorted(set(seqs)):
        row = _ENTRY.first(conn, {"l": ledger, "s": seq})
        if row is not None:
            posts = [
                Posting(p.account, p.amount) for p in _POSTINGS.all(conn, {"l": ledger, "s": seq})
            ]
            out[seq] = _entry(row, posts)
    return out


def read_referrers(conn: Connection, ledger: str, seqs: Iterable[int]) -> dict[int, int]:
    """For each of `seqs` already resolved or reversed, the seq of the entry that did it."""
    out: dict[int, int] = {}
    for ref in set(seqs):
        for row in _RESOLUTION.all(conn, {"ledger": ledger, "ref": ref}):
            out[row.ref] = row.seq
    return out


_ENTRY = Prepared(
    select(entries).where(entries.c.ledger_id == bindparam("l"), entries.c.seq == bindparam("s"))
)
_POSTINGS = Prepared(
    select(postings.c.account, postings.c.amount)
    .where(postings.c.ledger_id == bindparam("l"), postings.c.seq == bindparam("s"))
    .order_by(postings.c.idx)
)
_RESOLUTION = Prepared(  # the entry, if any, that resolved or reversed entry `ref`
    select(entries.c.ref, entries.c.seq, entries.c.kind).where(
        entries.c.ledger_id == bindparam("ledger"), entries.c.ref == bindparam("ref")
    )
)


def reservation_states(conn: Connection, ledger: str, seqs: Iterable[int]) -> dict[int, str]:
    """For each of `seqs` (reservations), how it was resolved: posted, voided or expired;
    pending ones are left out. One indexed read, for callers that need only the state."""
    wanted = list(set(seqs))
    if not wanted:
        return {}
    if len(wanted) == 1:  # one voucher's state: the common case, prepared
        found: list[Any] = _RESOLUTION.all(conn, {"ledger": ledger, "ref": wanted[0]})
    else:
        found = list(conn.execute(_RESOLUTIONS, {"ledger": ledger, "refs": wanted}))
    states = {"post": "posted", "void": "voided", "expire": "expired"}
    return {row.ref: states[row.kind] for row in found if row.kind in states}


_RESOLUTIONS = select(entries.c.ref, entries.c.kind).where(
    entries.c.ledger_id == bindparam("ledger"), entries.c.ref.in_(bindparam("refs", expanding=True))
)


def read_nodes(
    conn: Connection, ledger: str, nodes: Iterable[tuple[int, int]]
) -> dict[tuple[int, int], bytes]:
    """Perfect-subtree hashes: level 0 from the entries' hashes, higher levels from merkle_nodes."""
    from .merkle import leaf_hash

    wanted = set(nodes)
    out: dict[tuple[int, int], bytes] = {}
    leaves = [i + 1 for lvl, i in wanted if lvl == 0]
    if leaves:
        stmt = select(entries.c.seq, entries.c.hash).where(
            entries.c.ledger_id == ledger, entries.c.seq.in_(leaves)
        )
        for row in conn.execute(stmt):
            out[(0, row.seq - 1)] = leaf_hash(row.hash)
    upper = [n for n in wanted if n[0] > 0]
    for lvl in {n[0] for n in upper}:
        idxs = [i for level, i in upper if level == lvl]
        stmt = select(merkle_nodes.c.idx, merkle_nodes.c.hash).where(
            merkle_nodes.c.ledger_id == ledger,
            merkle_nodes.c.level == lvl,
            merkle_nodes.c.idx.in_(idxs),
        )
        for row in conn.execute(stmt):
            out[(lvl, row.idx)] = row.hash
    missing = wanted - out.keys()
    assert not missing, f"merkle nodes missing for {ledger}: {sorted(missing)[:5]}"
    return out


@dataclass
class Batch:
    """Everything one group commit writes, inserted in foreign-key order."""

    ledgers: list[dict[str, Any]] = field(default_factory=list)
    keys: list[dict[str, Any]] = field(default_factory=list)
    accounts: list[dict[str, Any]] = field(default_factory=list)
    entries: list[tuple[Any, ...]] = field(default_factory=list)  # rows in column order
    postings: list[tuple[Any, ...]] = field(default_factory=list)
    nodes: list[tuple[Any, ...]] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    idempotency: list[tuple[Any, ...]] = field(default_factory=list)
    balances: dict[tuple[str, str], int] = field(default_factory=dict)
    heads: dict[str, Head] = field(default_factory=dict)


def write_batch(conn: Connection, b: Batch) -> None:
    for table, rows in (
        (ledgers, b.ledgers),
        (keys, b.keys),
        (accounts, b.accounts),
        (entries, b.entries),
        (postings, b.postings),
        (merkle_nodes, b.nodes),
        (checkpoints, b.checkpoints),
        (idempotency, b.idempotency),
    ):
        if rows and isinstance(rows[0], tuple):
            _insert_values(conn, table, rows)
        elif rows:
            _many(conn, f"insert:{table.name}", table.insert(), cast(list[dict[str, Any]], rows))
    if b.balances:
        rows = [{"l": lg, "c": code, "b": bal} for (lg, code), bal in b.balances.items()]
        _many(conn, "set_balance", _set_balance, rows)
    if b.heads:
        rows = [
            {"l": lg, "s": h.seq, "h": h.hash, "t": h.time_us, "k": h.key_count}
            for lg, h in b.heads.items()
        ]
        _many(conn, "set_head", _set_head, rows)


_compiled: dict[tuple[str, str, str], tuple[str, tuple[str, ...]]] = {}


def _many(conn: Connection, name: str, stmt: Any, rows: list[dict[str, Any]]) -> None:
    """executemany straight to the driver: the hot path skips per-row statement processing."""
    cache_key = (conn.dialect.name, conn.dialect.driver, name)
    if cache_key not in _compiled:
        compiled = stmt.compile(dialect=conn.dialect, column_keys=list(rows[0]))
        order = tuple(compiled.positiontup or ()) if conn.dialect.positional else ()
        _compiled[cache_key] = (compiled.string, order)
    sql, order = _compiled[cache_key]
    if not order:  # a named paramstyle (PostgreSQL's drivers): the rows as they are
        conn.exec_driver_sql(sql, rows)
        return
    pick = operator.itemgetter(*order)
    conn.exec_driver_sql(sql, [pick(row) for row in rows])


def _insert_values(conn: Connection, table: Table, rows: list[Any]) -> None:
    """executemany of rows already in the table's column order."""
    cache_key = (conn.dialect.name, conn.dialect.driver, f"values:{table.name}")
    if cache_key not in _compiled:
        compiled = table.insert().compile(dialect=conn.dialect)
        if conn.dialect.positional:
            assert compiled.positiontup == table.c.keys(), "rows follow the table's columns"
        _compiled[cache_key] = (compiled.string, ())
    if not conn.dialect.positional:  # named parameters: each row as a dict
        keys = table.c.keys()
        rows = [dict(zip(keys, row, strict=True)) for row in rows]
    conn.exec_driver_sql(_compiled[cache_key][0], rows)


_set_balance = (
    update(accounts)
    .where(accounts.c.ledger_id == bindparam("l"), accounts.c.code == bindparam("c"))
    .values(balance=bindparam("b"))
)
_set_head = (
    update(ledgers)
    .where(ledgers.c.id == bindparam("l"))
    .values(
        head_seq=bindparam("s"),
        head_hash=bindparam("h"),
        head_time_us=bindparam("t"),
        key_count=bindparam("k"),
    )
)


# ---- reads for callers ------------------------------------------------------------------------


def list_ledgers(conn: Connection) -> list[str]:
    return list((conn.execute(select(ledgers.c.id).order_by(ledgers.c.id))).scalars())


def read_account(conn: Connection, ledger: str, code: str) -> Account | None:
    return (read_accounts(conn, ledger, [code])).get(code)


def list_accounts(conn: Connection, ledger: str) -> list[Account]:
    stmt = select(accounts).where(accounts.c.ledger_id == ledger).order_by(accounts.c.code)
    return [_account(row) for row in conn.execute(stmt)]


def _open_reserves(ledger: str) -> Select[Any]:
    resolver = entries.alias("resolver")
    return (
        select(
            entries.c.seq,
            entries.c.target,
            entries.c.expires_us,
            postings.c.account,
            postings.c.amount,
        )
        .join(
            postings,
            and_(
                postings.c.ledger_id == entries.c.ledger_id,
                postings.c.seq == entries.c.seq,
                postings.c.amount < 0,
            ),
        )
        .where(
            entries.c.ledger_id == ledger,
            entries.c.kind == EntryKind.RESERVE.value,
            ~exists().where(resolver.c.ledger_id == ledger, resolver.c.ref == entries.c.seq),
        )
    )


def pending_total(conn: Connection, ledger: str, account: str) -> int:
    sub = _open_reserves(ledger).where(postings.c.account == account).subquery()
    total = (conn.execute(select(func.coalesce(func.sum(-sub.c.amount), 0)))).scalar()
    return int(total or 0)


def due_reservations(conn: Connection, ledger: str, now_us: int, limit: int) -> list[int]:
    stmt = (
        _open_reserves(ledger)
        .where(entries.c.expires_us <= now_us)
        .order_by(entries.c.seq)
        .limit(limit)
    )
    return [row.seq for row in conn.execute(stmt)]


def account_history(
    conn: Connection, ledger: str, account: str, after_seq: int, limit: int
) -> list[Entry]:
    stmt = (
        select(postings.c.seq)
        .where(
            postings.c.ledger_id == ledger,
            postings.c.account == account,
            postings.c.seq > after_seq,
        )
        .order_by(postings.c.seq)
        .limit(limit)
    )
    seqs = list((conn.execute(stmt)).scalars())
    found = read_entries(conn, ledger, seqs)
    return [found[s] for s in seqs]


def list_checkpoints(conn: Connection, ledger: str) -> list[Checkpoint]:
    stmt = select(checkpoints).where(checkpoints.c.ledger_id == ledger).order_by(checkpoints.c.size)
    return [_checkpoint(row) for row in conn.execute(stmt)]


def latest_checkpoint(conn: Connection, ledger: str) -> Checkpoint | None:
    stmt = (
        select(checkpoints)
        .where(checkpoints.c.ledger_id == ledger)
        .order_by(checkpoints.c.size.desc())
        .limit(1)
    )
    row = (conn.execute(stmt)).first()
    return _checkpoint(row) if row else None


def read_checkpoint(conn: Connection, ledger: str, size: int) -> Checkpoint | None:
    stmt = select(checkpoints).where(checkpoints.c.ledger_id == ledger, checkpoints.c.size == size)
    row = (conn.execute(stmt)).first()
    return _checkpoint(row) if row else None


def read_level(
    conn: Connection, ledger: str, level: int, start: int, end: int
) -> list[tuple[int, bytes]]:
    """Stored perfect-subtree hashes of one level with index in [start, end), by index."""
    from .merkle import leaf_hash

    if level == 0:
        stmt = (
            select(entries.c.seq, entries.c.hash)
            .where(entries.c.ledger_id == ledger, entries.c.seq > start, entries.c.seq <= end)
            .order_by(entries.c.seq)
        )
        return [(row.seq - 1, leaf_hash(row.hash)) for row in conn.execute(stmt)]
    stmt = (
        select(merkle_nodes.c.idx, merkle_nodes.c.hash)
        .where(
            merkle_nodes.c.ledger_id == ledger,
            merkle_nodes.c.level == level,
            merkle_nodes.c.idx >= start,
            merkle_nodes.c.idx < end,
        )
        .order_by(merkle_nodes.c.idx)
    )
    return [(row.idx, row.hash) for row in conn.execute(stmt)]


_NODE_KEY = struct.Struct(">BQ")


def node_digest(conn: Connection, ledger: str, size: int) -> tuple[bytes, int]:
    """SHA-256 over the stored Merkle nodes of a log's first `size` leaves, in creation order
    (by the leaf that completes them, then level), and how many there are."""
    made_at = (merkle_nodes.c.idx + 1).op("<<")(merkle_nodes.c.level)
    stmt = (
        select(merkle_nodes.c.level, merkle_nodes.c.idx, merkle_nodes.c.hash)
        .where(merkle_nodes.c.ledger_id == ledger, made_at <= size)
        .order_by(made_at, merkle_nodes.c.level)
    )
    digest, count = hashlib.sha256(), 0
    result = conn.execution_options(yield_per=8192).execute(stmt)
    for rows in result.partitions():
        pack = _NODE_KEY.pack
        digest.update(b"".join(pack(lvl, idx) + h for lvl, idx, h in rows))
        count += len(rows)
    return digest.digest(), count


def count_nodes(conn: Connection, ledger: str) -> int:
    stmt = select(func.count()).select_from(merkle_nodes).where(merkle_nodes.c.ledger_id == ledger)
    return int((conn.execute(stmt)).scalar() or 0)


def reversal_refs(conn: Connection, ledger: str) -> set[int]:
    stmt = select(entries.c.ref).where(
        entries.c.ledger_id == ledger, entries.c.kind == EntryKind.REVERSE.value
    )
    return {int(r) for r in (conn.execute(stmt)).scalars() if r is not None}


def entries_naming(
    conn: Connection, ledger: str, key: str
) -> list[tuple[int, str, int | None, str]]:
    """(seq, kind, ref, value) of each entry whose metadata has `key`, in sequence order: how a
    service checks its records against the entries that name them."""
    assert key.isascii() and '"' not in key and "%" not in key and "_" not in key
    stmt = (
        select(entries.c.seq, entries.c.kind, entries.c.ref, entries.c.meta)
        .where(entries.c.ledger_id == ledger, entries.c.meta.contains(f'["{key}",'))
        .order_by(entries.c.seq)
    )
    out = []
    for seq, kind, ref, meta in conn.execute(stmt):
        value = dict(_meta(meta)).get(key)
        if value is not None:
            out.append((int(seq), str(kind), None if ref is None else int(ref), value))
    return out


def resolutions(conn: Connection, ledger: str) -> dict[int, tuple[int, str]]:
    """Each resolved reservation's seq -> (the post, void or expiry entry's seq, its kind)."""
    kinds = [k.value for k in (EntryKind.POST, EntryKind.VOID, EntryKind.EXPIRE)]
    stmt = select(entries.c.ref, entries.c.seq, entries.c.kind).where(
        entries.c.ledger_id == ledger, entries.c.kind.in_(kinds)
    )
    return {int(ref): (int(seq), str(kind)) for ref, seq, kind in conn.execute(stmt)}


_STREAMED = (
    "seq",
    "prev_hash",
    "hash",
    "kind",
    "time_us",
    "key_id",
    "ref",
    "expires_us",
    "target",
    "meta",
    "signature",
)


def _stream_statement(ledger: str, after_seq: int) -> Select[Any]:
    """Entries joined with their postings, in sequence then posting order."""
    return (
        select(*(entries.c[name] for name in _STREAMED), postings.c.account, postings.c.amount)
        .outerjoin(
            postings,
            and_(postings.c.ledger_id == entries.c.ledger_id, postings.c.seq == entries.c.seq),
        )
        .where(entries.c.ledger_id == ledger, entries.c.seq > after_seq)
        .order_by(entries.c.seq, postings.c.idx)
    )


async def stream_entries(
    conn: AsyncConnection, ledger: str, *, after_seq: int = 0, chunk: int = 4000
) -> AsyncIterator[Entry]:
    """Every entry of a ledger in sequence order, read in bounded chunks (memory stays flat)."""
    stmt = _stream_statement(ledger, after_seq)
    kinds = {k.value: k for k in EntryKind}
    result = await conn.stream(stmt.execution_options(yield_per=chunk))
    current: Any = None
    posts: list[Posting] = []
    async for rows in result.partitions(chunk):
        for row in rows:
            if current is None or row[0] != current[0]:
                if current is not None:
                    yield _streamed(ledger, current, posts, kinds)
                current, posts = row, []
            if row[11] is not None:
                posts.append(Posting(row[11], row[12]))
    if current is not None:
        yield _streamed(ledger, current, posts, kinds)


def stream_entries_sync(
    conn: Connection, ledger: str, until_seq: int, *, chunk: int = 4000
) -> Iterator[list[Entry]]:
    """Entries 1..until_seq of a ledger in order, in lists of about `chunk` (for a thread)."""
    stmt = _stream_statement(ledger, 0).where(entries.c.seq <= until_seq)
    kinds = {k.value: k for k in EntryKind}
    current: Any = None
    posts: list[Posting] = []
    out: list[Entry] = []
    for rows in conn.execution_options(yield_per=chunk).execute(stmt).partitions():
        for row in rows:
            if current is None or row[0] != current[0]:
                if current is not None:
                    out.append(_streamed(ledger, current, posts, kinds))
                current, posts = row, []
            if row[11] is not None:
                posts.append(Posting(row[11], row[12]))
        if len(out) >= chunk:
            yield out
            out = []
    if current is not None:
        out.append(_streamed(ledger, current, posts, kinds))
    yield out


def _streamed(ledger: str, r: Any, posts: list[Posting], kinds: dict[str, EntryKind]) -> Entry:
    return Entry(
        ledger,
        r[0],
        r[1],
        kinds.get(r[3], cast(EntryKind, r[3])),  # an unknown kind is reported by verify
        r[4],
        r[5],
        r[6] or 0,
        r[7],
        r[8],
        tuple(posts),
        _meta(r[9]),
        r[2],
        r[10],
    )
