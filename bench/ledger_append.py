"""Signed entries appended per second through the ledger API, against the bare-minimum floor.

Run from the repository root:

    .venv/bin/python bench/ledger_append.py [--entries 20000] [--single 1000] [--dir DIR]

Three measurements, one run, one machine, each on a fresh SQLite file (WAL, synchronous=FULL):

1. single:  `LedgerStore.transfer` awaited one at a time; every entry is its own durable
            commit. Reports entries/s and p50/p99 latency.
2. grouped: groups of 100 concurrent `transfer` calls (asyncio.gather); the writer
            group-commits whatever has queued. Reports entries/s.
3. floor:   the same work with nothing but the standard library: `sqlite3` on the same schema
            (created by the ledger, so the same indexes, foreign keys and append-only triggers),
            WAL + synchronous=FULL, BEGIN IMMEDIATE, transactions of 100; per transaction one
            idempotency-key lookup and `executemany` of the rows one append writes (an
            `entries` row, its `postings`, the completed `merkle_nodes`, an `idempotency_keys`
            row, the changed `accounts` balances and the `ledgers` head); per entry the ledger's
            own canonical hash (`ledger.encoding.entry_hash`), its Ed25519 signature
            (`Signer.sign`), the request hash and the Merkle leaf/node hashes. No SQLAlchemy, no
            asyncio. The floor trusts its cached head and balances (it is the only writer). Its
            database is then checked with `verify_database`, so the floor provably wrote a
            valid ledger.

Grouped and floor runs alternate `--repeat` times (default 3), each on a fresh database, and
the best of each is reported (other work on a shared machine only ever slows a run down); every
run's figure is in the JSON too, with the load average before and after.

Every entry is a two-posting transfer of 60 minutes from an issuance account (no floor) to one
of 100 member accounts. Human-readable lines first; the last line is one JSON object.
`--profile FILE` profiles the grouped phase instead (cProfile over the event-loop thread and
aiosqlite's SQLite threads, merged), writes the stats to FILE and prints the top functions.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import hashlib
import json
import pstats
import sqlite3
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ledger import Entry, EntryKind, KeyRing, LedgerStore, Posting, Report, verify_database
from ledger.encoding import entry_hash
from ledger.signing import Signer
from ledger.storage import sqlite_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for bench.harness
from bench.harness import environment, header, ledger_code_version, percentile, work_dir

LEDGER = "bench"
ISSUER = "issuance"
MEMBERS = 100
GROUP = 100
MINUTES = 60


def member(i: int) -> str:
    return f"m{i % MEMBERS:03d}"


def postings_for(i: int) -> list[tuple[str, int]]:
    return [(ISSUER, -MINUTES), (member(i), MINUTES)]


# ---- through the ledger API ---------------------------------------------------------------


async def fresh_store(path: Path, key_dir: Path) -> tuple[LedgerStore, str]:
    """A new database holding one ledger, an issuance account and MEMBERS member accounts."""
    store = await LedgerStore.open(sqlite_url(str(path)), KeyRing(key_dir))
    key = await store.create_ledger(LEDGER, idempotency_key="setup:ledger")
    await store.open_account(
        LEDGER, ISSUER, kind="issuance", floor=None, idempotency_key="setup:issuer"
    )
    await asyncio.gather(
        *(
            store.open_account(
                LEDGER, member(i), kind="member", floor=0, idempotency_key=f"setup:{member(i)}"
            )
            for i in range(MEMBERS)
        )
    )
    return store, key.key_id


async def bench_single(path: Path, key_dir: Path, n: int) -> tuple[float, list[float]]:
    """Transfers awaited one at a time: (seconds, sorted latencies in ms)."""
    store, _ = await fresh_store(path, key_dir)
    latencies: list[float] = []
    try:
        start = time.perf_counter()
        for i in range(n):
            t0 = time.perf_counter()
            await store.transfer(LEDGER, postings_for(i), idempotency_key=f"single:{i}")
            latencies.append((time.perf_counter() - t0) * 1000)
        elapsed = time.perf_counter() - start
    finally:
        await store.close()
    return elapsed, sorted(latencies)


def _count_batches(store: LedgerStore) -> list[int]:
    """Best effort: record how many requests each writer transaction held (diagnostic only)."""
    sizes: list[int] = []
    writer: Any = getattr(store, "_writer", None)
    commit: Any = getattr(writer, "_commit", None)
    if commit is None:
        return sizes

    def counted(*args: Any, **kwargs: Any) -> Any:  # runs on the writer's thread
        if args and isinstance(args[0], list):
            sizes.append(len(args[0]))
        return commit(*args, **kwargs)

    writer._commit = counted
    return sizes


async def bench_grouped(
    path: Path, key_dir: Path, n: int, profiler: cProfile.Profile | None = None
) -> tuple[float, list[int]]:
    """Groups of GROUP concurrent transfers: (seconds, requests per writer transaction)."""
    store, _ = await fresh_store(path, key_dir)
    sizes = _count_batches(store)
    try:
        if profiler is not None:
            profiler.enable()
        start = time.perf_counter()
        for first in range(0, n, GROUP):
            await asyncio.gather(
                *(
                    store.transfer(LEDGER, postings_for(i), idempotency_key=f"grouped:{i}")
                    for i in range(first, min(first + GROUP, n))
                )
            )
        elapsed = time.perf_counter() - start
        if profiler is not None:
            profiler.disable()
    finally:
        await store.close()
    return elapsed, sizes


# ---- the floor: stdlib sqlite3, no SQLAlchemy, no asyncio ------------------------------------

_INSERT_ENTRY = (
    "INSERT INTO entries (ledger_id, seq, prev_hash, hash, kind, time_us, key_id, ref, "
    "expires_us, target, meta, signature) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_POSTING = (
    "INSERT INTO postings (ledger_id, seq, idx, account, amount) VALUES (?, ?, ?, ?, ?)"
)
_INSERT_NODE = "INSERT INTO merkle_nodes (ledger_id, level, idx, hash) VALUES (?, ?, ?, ?)"
_INSERT_IDEM = (
    "INSERT INTO idempotency_keys (ledger_id, key, request_hash, result, created_us) "
    "VALUES (?, ?, ?, ?, ?)"
)
_UPDATE_BALANCE = "UPDATE accounts SET balance = ? WHERE ledger_id = ? AND code = ?"
_UPDATE_HEAD = (
    "UPDATE ledgers SET head_seq = ?, head_hash = ?, head_time_us = ?, key_count = ? WHERE id = ?"
)


def floor_append(path: Path, signer: Signer, n: int) -> float:
    """Append `n` transfers to the ledger in `path` with bare sqlite3; return the seconds taken."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA busy_timeout = 10000")
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")
        seq, head_hash, head_time, key_count = db.execute(
            "SELECT head_seq, head_hash, head_time_us, key_count FROM ledgers WHERE id = ?",
            (LEDGER,),
        ).fetchone()
        balances: dict[str, int] = dict(
            db.execute("SELECT code, balance FROM accounts WHERE ledger_id = ?", (LEDGER,))
        )
        assert seq == 0, "the floor starts on an empty ledger"
        stack: list[tuple[int, bytes]] = []  # the Merkle frontier: (level, hash)
        sha256 = hashlib.sha256
        start = time.perf_counter()
        for first in range(0, n, GROUP):
            keys = [f"floor:{i}" for i in range(first, min(first + GROUP, n))]
            entry_rows: list[tuple[Any, ...]] = []
            posting_rows: list[tuple[Any, ...]] = []
            node_rows: list[tuple[Any, ...]] = []
            idem_rows: list[tuple[Any, ...]] = []
            changed: dict[str, int] = {}
            db.execute("BEGIN IMMEDIATE")
            marks = ",".join("?" * len(keys))
            seen = db.execute(
                f"SELECT key FROM idempotency_keys WHERE ledger_id = ? AND key IN ({marks})",
                (LEDGER, *keys),
            ).fetchall()
            assert not seen
            for offset, key in enumerate(keys):
                i = first + offset
                posts = tuple(
                    sorted(
                        (Posting(a, m) for a, m in postings_for(i)),
                        key=lambda p: p.account.encode(),
                    )
                )
                request = json.dumps(
                    ["transfer", LEDGER, [[p.account, p.amount] for p in posts], []],
                    separators=(",", ":"),
                )
                request_hash = sha256(request.encode()).digest()
                now = max(time.time_ns() // 1000, head_time)
                seq += 1
                entry = Entry(
                    LEDGER,
                    seq,
                    head_hash,
                    EntryKind.TRANSFER,
                    now,
                    signer.key_id,
                    0,
                    0,
                    "",
                    posts,
                    (),
                )
                digest = entry_hash(entry)
                signature = signer.sign(digest)
                entry_rows.append(
                    (
                        LEDGER,
                        seq,
                        head_hash,
                        digest,
                        "transfer",
                        now,
                        signer.key_id,
                        None,
                        0,
                        "",
                        "[]",
                        signature,
                    )
                )
                for idx, p in enumerate(posts):
                    posting_rows.append((LEDGER, seq, idx, p.account, p.amount))
                    balances[p.account] += p.amount
                    changed[p.account] = balances[p.account]
                h = sha256(b"\x00" + digest).digest()
                level, index = 0, seq - 1
                while stack and stack[-1][0] == level:
                    h = sha256(b"\x01" + stack.pop()[1] + h).digest()
                    level += 1
                    node_rows.append((LEDGER, level, index >> level, h))
                stack.append((level, h))
                idem_rows.append((LEDGER, key, request_hash, f"entry:{seq}", now))
                head_hash, head_time = digest, now
            db.executemany(_INSERT_ENTRY, entry_rows)
            db.executemany(_INSERT_POSTING, posting_rows)
            db.executemany(_INSERT_NODE, node_rows)
            db.executemany(_INSERT_IDEM, idem_rows)
            db.executemany(_UPDATE_BALANCE, [(b, LEDGER, c) for c, b in changed.items()])
            db.execute(_UPDATE_HEAD, (seq, head_hash, head_time, key_count, LEDGER))
            db.execute("COMMIT")
        return time.perf_counter() - start
    finally:
        db.close()


async def floor_setup(path: Path, key_dir: Path) -> Signer:
    """The floor's database is made by the ledger itself (same schema), then closed."""
    store, key_id = await fresh_store(path, key_dir)
    await store.close()
    return KeyRing(key_dir).get(LEDGER, key_id)


async def floor_check(path: Path, key_dir: Path) -> Report:
    """Have the ledger sign a checkpoint over the floor's rows (it reads the floor's Merkle
    frontier to do so), then verify the whole database: the floor must have written a ledger."""
    store = await LedgerStore.open(sqlite_url(str(path)), KeyRing(key_dir))
    try:
        await store.checkpoint(LEDGER, idempotency_key="floor:checkpoint")
    finally:
        await store.close()
    return await verify_database(sqlite_url(str(path)), workers=1)


# ---- profiling --------------------------------------------------------------------------------


def _profile_sqlite_threads() -> Callable[[], list[cProfile.Profile]]:
    """Run every aiosqlite connection thread made from now on under its own cProfile."""
    import aiosqlite.core

    original = aiosqlite.core._connection_worker_thread
    done: list[cProfile.Profile] = []
    threads: list[threading.Thread] = []

    def profiled(tx: Any) -> None:
        threads.append(threading.current_thread())
        prof = cProfile.Profile()
        prof.enable()
        try:
            original(tx)
        finally:
            prof.disable()
            done.append(prof)

    aiosqlite.core._connection_worker_thread = profiled

    def collect() -> list[cProfile.Profile]:
        for t in threads:
            t.join(timeout=10)
        return done

    return collect


def profile_grouped(work: Path, n: int, out: Path, top: int) -> None:
    collect = _profile_sqlite_threads()
    main = cProfile.Profile()
    elapsed, _ = asyncio.run(bench_grouped(work / "profile.db", work / "profile.keys", n, main))
    stats = pstats.Stats(main)
    for prof in collect():
        stats.add(prof)
    stats.dump_stats(str(out))
    print(f"profiled grouped appends: {n} entries in {elapsed:.2f} s under cProfile")
    print(f"stats written to {out} (event-loop thread + SQLite threads merged)")
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


# ---- main -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=20000, help="grouped and floor entries")
    parser.add_argument(
        "--single", type=int, default=None, help="single appends (default: entries/20, max 1000)"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="grouped and floor runs, interleaved; best is kept"
    )
    parser.add_argument("--dir", type=Path, default=None, help="where the temp databases go")
    parser.add_argument("--keep", action="store_true", help="keep the databases afterwards")
    parser.add_argument("--profile", type=Path, default=None, help="profile grouped appends")
    parser.add_argument("--top", type=int, default=30, help="functions shown with --profile")
    args = parser.parse_args(argv)
    n: int = args.entries
    single: int = args.single if args.single is not None else max(1, min(1000, n // 20))
    if n < 1 or single < 1 or args.repeat < 1:
        parser.error("--entries, --single and --repeat must be positive")
    with work_dir("ledger-append-", args.dir, args.keep) as work:
        if args.profile is not None:
            profile_grouped(work, n, args.profile, args.top)
            return 0
        return run(work, n, single, args.repeat)


def run(work: Path, n: int, single: int, repeat: int) -> int:
    load_before = header("ledger append benchmark", work)

    single_s, latencies = asyncio.run(
        bench_single(work / "single.db", work / "single.keys", single)
    )
    single_rate = single / single_s
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    print(
        f"single  (awaited one at a time): {single:>7} entries in {single_s:7.2f} s = "
        f"{single_rate:9.0f} entries/s; latency p50 {p50:.2f} ms, p99 {p99:.2f} ms, "
        f"max {latencies[-1]:.2f} ms"
    )

    grouped_rates: list[float] = []
    floor_rates: list[float] = []
    transactions: list[int] = []
    for r in range(1, repeat + 1):  # interleaved, so a busy spell on the machine hits both
        grouped_s, sizes = asyncio.run(
            bench_grouped(work / f"grouped{r}.db", work / f"grouped{r}.keys", n)
        )
        grouped_rates.append(n / grouped_s)
        line = (
            f"grouped (gather of {GROUP}) #{r}:     {n:>7} entries in {grouped_s:7.2f} s = "
            f"{n / grouped_s:9.0f} entries/s"
        )
        if sizes:
            transactions.append(len(sizes))
            line += f"; {len(sizes)} writer transactions, mean {sum(sizes) / len(sizes):.1f}"
        print(line)

        floor_db, floor_keys = work / f"floor{r}.db", work / f"floor{r}.keys"
        signer = asyncio.run(floor_setup(floor_db, floor_keys))
        floor_s = floor_append(floor_db, signer, n)
        floor_rates.append(n / floor_s)
        print(
            f"floor   (sqlite3 executemany) #{r}: {n:>7} entries in {floor_s:7.2f} s = "
            f"{n / floor_s:9.0f} entries/s"
        )
        if r == 1:
            report = asyncio.run(floor_check(floor_db, floor_keys))
            print(f"floor database check: {report.summary()}")
            if not report.ok or report.entries != n:
                print("the floor did not write a valid ledger: its figure means nothing")
                return 1

    grouped_rate, floor_rate = max(grouped_rates), max(floor_rates)
    ratio = grouped_rate / floor_rate
    print(
        f"best of {repeat}: ledger grouped {grouped_rate:.0f} entries/s, floor {floor_rate:.0f} "
        f"entries/s, ratio {ratio:.2f} (medians {statistics.median(grouped_rates):.0f} and "
        f"{statistics.median(floor_rates):.0f})"
    )
    result = {
        "benchmark": "ledger_append",
        "entries_per_s": round(grouped_rate, 1),
        "floor_entries_per_s": round(floor_rate, 1),
        "ratio": round(ratio, 4),
        "single_entries_per_s": round(single_rate, 1),
        "single_p50_ms": round(p50, 3),
        "single_p99_ms": round(p99, 3),
        "grouped_runs_entries_per_s": [round(x, 1) for x in grouped_rates],
        "floor_runs_entries_per_s": [round(x, 1) for x in floor_rates],
        "entries": n,
        "single_entries": single,
        "repeat": repeat,
        "group": GROUP,
        "writer_transactions": transactions[0] if transactions else None,
        **environment(load_before, ledger_code_version()),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
