"""Entries verified per second by `verify_database`, against the bare hashing + Ed25519 floor.

Run from the repository root:

    .venv/bin/python bench/ledger_verify.py [--entries 1000000] [--db PATH] [--dir DIR]

1. build:  a ledger of `--entries` two-posting transfers (60 minutes from an issuance account to
           one of 100 members) through the ledger API, in groups of concurrent `transfer` calls
           that the writer group-commits, with a signed checkpoint every tenth of the way (so
           verify also checks checkpoint roots and consistency proofs). At a tenth of the way
           the database is copied (SQLite backup API): that copy is the small ledger for the
           memory comparison. The build time is printed. With `--db PATH` an existing
           database is reused as is (and `PATH` with `.small` before its suffix, if present, as
           the small one; otherwise that is built); a missing PATH is built there and kept.
2. verify: `verify_database(url, workers=--workers)` in a fresh subprocess, once per size,
           reporting entries/s and the subprocess's peak RSS (its ru_maxrss; the signature
           workers are separate processes and reported apart). Flat memory means the small
           and large figures are about equal.
3. floor:  what verification cannot avoid: the canonical encoding and SHA-256 of every entry
           (compared with its stored hash) and one Ed25519 verification, split over `--workers`
           processes. Each worker first loads its share of rows with stdlib sqlite3 (untimed,
           reported apart), then all start together. Ed25519 verification by `cryptography`
           and by PyNaCl is timed on one core first; the floor uses the faster.

Human-readable lines first; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import gc
import hashlib
import json
import multiprocessing as mp
import os
import platform
import resource
import sqlite3
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import nacl.bindings
import nacl.exceptions
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger import KeyRing, LedgerStore, verify_database
from ledger.storage import sqlite_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for bench.harness
from bench.harness import environment, ledger_code_version, machine, work_dir

LEDGER = "bench"
ISSUER = "issuance"
MEMBERS = 100
MINUTES = 60
BUILD_GROUP = 1024  # concurrent transfers per asyncio.gather while building
SPEED_SAMPLE = 20000  # signatures for the one-core cryptography vs PyNaCl comparison


def member(i: int) -> str:
    return f"m{i % MEMBERS:03d}"


def say(text: str) -> None:
    print(text, flush=True)


# ---- building the ledger through the API --------------------------------------------------------


def head_seq(path: Path) -> int | None:
    """The bench ledger's size in the database at `path`, or None if it has no such ledger."""
    if not path.exists():
        return None
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT head_seq FROM ledgers WHERE id = ?", (LEDGER,)).fetchone()
    except sqlite3.OperationalError:
        return None
    finally:
        db.close()
    return None if row is None else int(row[0])


async def build(path: Path, key_dir: Path, upto: int, checkpoint_every: int) -> None:
    """Append transfers to the bench ledger in `path` (created if new) until it holds `upto`."""
    store = await LedgerStore.open(sqlite_url(str(path)), KeyRing(key_dir))
    try:
        if LEDGER not in await store.ledgers():
            await store.create_ledger(LEDGER, idempotency_key="setup:ledger")
            await store.open_account(
                LEDGER, ISSUER, kind="issuance", floor=None, idempotency_key="setup:issuer"
            )
            await asyncio.gather(
                *(
                    store.open_account(
                        LEDGER,
                        member(i),
                        kind="member",
                        floor=0,
                        idempotency_key=f"setup:{member(i)}",
                    )
                    for i in range(MEMBERS)
                )
            )
        seq = head_seq(path) or 0
        start, done_before = time.perf_counter(), seq
        report_every = max(upto // 10, 1)
        while seq < upto:
            next_cp = (seq // checkpoint_every + 1) * checkpoint_every
            count = min(BUILD_GROUP, next_cp - seq, upto - seq)
            await asyncio.gather(
                *(
                    store.transfer(
                        LEDGER,
                        [(ISSUER, -MINUTES), (member(i), MINUTES)],
                        idempotency_key=f"build:{i}",
                    )
                    for i in range(seq + 1, seq + count + 1)
                )
            )
            if (seq + count) // report_every > seq // report_every:
                rate = (seq + count - done_before) / (time.perf_counter() - start)
                say(f"  built {seq + count:>9} entries ({rate:.0f} entries/s)")
            seq += count
            if seq % checkpoint_every == 0 or seq == upto:
                await store.checkpoint(LEDGER, idempotency_key=f"build:checkpoint:{seq}")
    finally:
        await store.close()


def backup(src: Path, dst: Path) -> None:
    """A consistent copy of a (WAL) SQLite database."""
    source = sqlite3.connect(src)
    target = sqlite3.connect(dst)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()


def small_path(path: Path) -> Path:
    return path.with_name(f"{path.stem}.small{path.suffix}")


def prepare(db: Path, key_dir: Path, n: int) -> tuple[Path, Path, float | None, int]:
    """The large and small databases, the build seconds (None if reused) and entries built."""
    small = small_path(db)
    found = head_seq(db)
    if found is not None:
        say(f"reusing {db}: {found} entries")
        small_found = head_seq(small)
        if small_found is not None:
            say(f"reusing {small}: {small_found} entries")
            return db, small, None, 0
        size = max(found // 10, 1)
        say(f"building the small ledger {small}: {size} entries")
        asyncio.run(build(small, key_dir.with_name(key_dir.name + ".small"), size, size))
        return db, small, None, 0
    small_n = max(n // 10, 1)
    say(f"building {db}: {n} entries through the ledger API (gather of {BUILD_GROUP})")
    t0 = time.perf_counter()
    asyncio.run(build(db, key_dir, small_n, small_n))
    backup(db, small)
    asyncio.run(build(db, key_dir, n, small_n))
    built = time.perf_counter() - t0
    say(f"built {n} entries in {built:.1f} s = {n / built:.0f} entries/s (small copy: {small_n})")
    return db, small, built, n


# ---- verify_database in a subprocess -----------------------------------------------------------


def child_verify(path: Path, workers: int) -> int:
    """Run inside the measuring subprocess: verify, then report time and peak RSS as JSON."""
    t0 = time.perf_counter()
    report = asyncio.run(verify_database(sqlite_url(str(path)), workers=workers))
    seconds = time.perf_counter() - t0
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    result = {
        "ok": report.ok,
        "summary": report.summary(),
        "entries": report.entries,
        "seconds": seconds,
        "rss_mb": own,
        "workers_rss_mb": kids,
    }
    print(json.dumps(result))
    return 0 if report.ok else 1


def measure_verify(path: Path, workers: int) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child-verify", str(path), "--workers", str(workers)],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise SystemExit(
            f"verify of {path} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}"
        )
    out: dict[str, Any] = json.loads(lines[-1])
    return out


# ---- the floor: canonical hashing + Ed25519 verification, nothing else -----------------------

_TAG = b"timebank-ledger/entry/v1\n"
_U32 = struct.Struct(">I").pack
_U64 = struct.Struct(">Q").pack
_I64 = struct.Struct(">q").pack

Row = tuple[Any, ...]  # (ledger, seq, prev, kind, time, key_id, ref, exp, target, posts, meta, ...)


def _text(value: str) -> bytes:
    raw = value.encode()
    return _U32(len(raw)) + raw


def canonical(r: Row) -> bytes:
    """The entry encoding of docs/ledger-format.md (ledger.encoding.entry_bytes), from a row."""
    parts = [
        _TAG,
        _text(r[0]),
        _U64(r[1]),
        r[2],
        _text(r[3]),
        _I64(r[4]),
        _text(r[5]),
        _U64(r[6]),
        _I64(r[7]),
        _text(r[8]),
        _U32(len(r[9])),
    ]
    for account, amount in r[9]:
        parts.append(_text(account))
        parts.append(_I64(amount))
    parts.append(_U32(len(r[10])))
    for key, value in r[10]:
        parts.append(_text(key))
        parts.append(_text(value))
    return b"".join(parts)


def load_rows(path: Path, lo: int, hi: int) -> list[Row]:
    """Entries with rowid in [lo, hi], each with its postings, meta and public key attached."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        keys: dict[str, tuple[list[int], list[bytes]]] = {}
        for ledger, from_seq, public in db.execute(
            "SELECT ledger_id, from_seq, public_key FROM ledger_keys ORDER BY ledger_id, position"
        ):
            starts, publics = keys.setdefault(ledger, ([], []))
            starts.append(from_seq)
            publics.append(public)
        rows: list[Row] = []
        current: list[Any] | None = None
        query = (
            "SELECT e.rowid, e.ledger_id, e.seq, e.prev_hash, e.kind, e.time_us, e.key_id, e.ref, "
            "e.expires_us, e.target, e.meta, e.hash, e.signature, p.account, p.amount "
            "FROM entries e JOIN postings p ON p.ledger_id = e.ledger_id AND p.seq = e.seq "
            "WHERE e.rowid BETWEEN ? AND ? ORDER BY e.rowid, p.idx"
        )
        for row in db.execute(query, (lo, hi)):
            if current is None or current[0] != row[0]:
                if current is not None:
                    rows.append(tuple(current[1:]))
                ledger, seq = row[1], row[2]
                starts, publics = keys[ledger]
                public = publics[bisect.bisect_right(starts, seq) - 1]
                meta = tuple(tuple(kv) for kv in json.loads(row[10]))
                current = [
                    row[0],
                    ledger,
                    seq,
                    row[3],
                    row[4],
                    row[5],
                    row[6],
                    row[7] or 0,
                    row[8],
                    row[9],
                    [],
                    meta,
                    row[11],
                    row[12],
                    public,
                ]
            current[10].append((row[13], row[14]))
        if current is not None:
            rows.append(tuple(current[1:]))
        return rows
    finally:
        db.close()


def _nacl_ok(public: bytes, message: bytes, signature: bytes) -> bool:
    try:
        nacl.bindings.crypto_sign_open(signature + message, public)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError):
        return False
    return True


def _cryptography_check() -> Callable[[bytes, bytes, bytes], bool]:
    loaded: dict[bytes, Ed25519PublicKey] = {}

    def ok(public: bytes, message: bytes, signature: bytes) -> bool:
        key = loaded.get(public)
        if key is None:
            key = loaded[public] = Ed25519PublicKey.from_public_bytes(public)
        try:
            key.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    return ok


def checker(lib: str) -> Callable[[bytes, bytes, bytes], bool]:
    return _nacl_ok if lib == "pynacl" else _cryptography_check()


def check_rows(rows: list[Row], lib: str) -> int:
    """Hash and verify every row; return how many failed."""
    ok = checker(lib)
    sha256 = hashlib.sha256
    bad = 0
    for r in rows:
        digest = sha256(canonical(r)).digest()
        if digest != r[11] or not ok(r[13], digest, r[12]):
            bad += 1
    return bad


def _floor_worker(path: str, lo: int, hi: int, lib: str, barrier: Barrier, out: Any) -> None:
    t0 = time.perf_counter()
    rows = load_rows(Path(path), lo, hi)
    loaded = time.perf_counter() - t0
    gc.collect()
    gc.freeze()  # the loaded rows are never garbage: keep collections from walking them
    barrier.wait()
    bad = check_rows(rows, lib)
    out.put((len(rows), bad, loaded))


def floor_verify(path: Path, workers: int, lib: str) -> tuple[int, int, float, float]:
    """(entries, failures, seconds for hashing + verification on `workers` cores, load seconds)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        lo, hi = db.execute("SELECT min(rowid), max(rowid) FROM entries").fetchone()
    finally:
        db.close()
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(workers + 1)
    out = ctx.Queue()
    step = (hi - lo + workers) // workers
    procs = [
        ctx.Process(
            target=_floor_worker,
            args=(str(path), lo + w * step, min(lo + (w + 1) * step - 1, hi), lib, barrier, out),
        )
        for w in range(workers)
    ]
    for p in procs:
        p.start()
    barrier.wait()
    t0 = time.perf_counter()
    results = [out.get() for _ in procs]
    seconds = time.perf_counter() - t0
    for p in procs:
        p.join()
    return (
        sum(r[0] for r in results),
        sum(r[1] for r in results),
        seconds,
        max(r[2] for r in results),
    )


def one_core_speeds(path: Path) -> dict[str, float]:
    """Ed25519 verifications per second on one core, by library (best of three runs)."""
    rows = load_rows(path, 0, SPEED_SAMPLE)  # rowids start at 1
    jobs = [(r[13], r[11], r[12]) for r in rows]
    speeds: dict[str, float] = {}
    for lib in ("cryptography", "pynacl"):
        ok = checker(lib)
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            good = sum(ok(pk, digest, sig) for pk, digest, sig in jobs)
            best = min(best, time.perf_counter() - t0)
            assert good == len(jobs), f"{lib}: {len(jobs) - good} signatures failed"
        speeds[lib] = len(jobs) / best
    return speeds


# ---- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000, help="ledger size to build")
    parser.add_argument("--db", type=Path, default=None, help="reuse (or build and keep) PATH")
    parser.add_argument("--dir", type=Path, default=None, help="where a temp database goes")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes")
    parser.add_argument("--keep", action="store_true", help="keep a temp database afterwards")
    parser.add_argument("--child-verify", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    workers: int = max(args.workers, 1)
    if args.child_verify is not None:
        return child_verify(args.child_verify, workers)
    if args.entries < 1:
        parser.error("--entries must be positive")
    if args.db is not None:
        db: Path = args.db.resolve()
        db.parent.mkdir(parents=True, exist_ok=True)
        return run(db, db.with_name(db.name + ".keys"), args.entries, workers)
    with work_dir("ledger-verify-", args.dir, args.keep) as work:
        return run(work / "ledger.db", work / "keys", args.entries, workers)


def run(db: Path, key_dir: Path, n: int, workers: int) -> int:
    say(
        f"ledger verify benchmark: {machine()}, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, {workers} workers"
    )
    large, small, built_s, built_n = prepare(db, key_dir, n)
    load_before = round(os.getloadavg()[0], 2)  # other work on the machine skews every figure
    say(f"load average before measuring: {load_before}")

    small_run = measure_verify(small, workers)
    say(
        f"verify_database small: {small_run['entries']:>9} entries in "
        f"{small_run['seconds']:7.2f} s = {small_run['entries'] / small_run['seconds']:8.0f} "
        f"entries/s; peak RSS {small_run['rss_mb']:.1f} MB "
        f"(signature workers {small_run['workers_rss_mb']:.1f} MB)"
    )
    large_run = measure_verify(large, workers)
    entries: int = large_run["entries"]
    rate = entries / large_run["seconds"]
    say(
        f"verify_database large: {entries:>9} entries in {large_run['seconds']:7.2f} s = "
        f"{rate:8.0f} entries/s; peak RSS {large_run['rss_mb']:.1f} MB "
        f"(signature workers {large_run['workers_rss_mb']:.1f} MB)"
    )
    say(f"  {large_run['summary']}")

    speeds = one_core_speeds(large)
    lib = max(speeds, key=speeds.__getitem__)
    say(
        f"Ed25519 verify on one core: cryptography {speeds['cryptography']:.0f}/s, "
        f"PyNaCl {speeds['pynacl']:.0f}/s; the floor uses {lib}"
    )
    count, bad, floor_s, load_s = floor_verify(large, workers, lib)
    if bad or count != entries:
        say(f"floor checked {count} entries, {bad} failed: its figure means nothing")
        return 1
    floor_rate = count / floor_s
    say(
        f"floor (hash + {lib} verify, {workers} processes): {count} entries in {floor_s:.2f} s "
        f"= {floor_rate:.0f} entries/s (rows loaded beforehand in {load_s:.1f} s, untimed)"
    )
    ratio = rate / floor_rate
    say(f"verify_database / floor = {ratio:.2f}")
    result = {
        "benchmark": "ledger_verify",
        "entries_per_s": round(rate, 1),
        "floor_entries_per_s": round(floor_rate, 1),
        "ratio": round(ratio, 4),
        "cryptography_verify_per_s": round(speeds["cryptography"], 1),
        "pynacl_verify_per_s": round(speeds["pynacl"], 1),
        "floor_library": lib,
        "peak_rss_mb_small": round(small_run["rss_mb"], 1),
        "peak_rss_mb_large": round(large_run["rss_mb"], 1),
        "workers_peak_rss_mb_large": round(large_run["workers_rss_mb"], 1),
        "entries": entries,
        "small_entries": small_run["entries"],
        "verify_s": round(large_run["seconds"], 2),
        "floor_s": round(floor_s, 2),
        "floor_load_s": round(load_s, 2),
        "build_s": None if built_s is None else round(built_s, 1),
        "build_entries_per_s": None if built_s is None else round(built_n / built_s, 1),
        "workers": workers,
        **environment(load_before, ledger_code_version()),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
