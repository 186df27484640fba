"""A scheme's full valued-contribution report over 1,000,000 confirmed claims, against hledger.

Run from the repository root:

    .venv/bin/python bench/report.py [--claims 1000000] [--small-claims 100000] [--db PATH]

1. build:  a time-credit scheme with `--members` members (5,000) and `--activities` activities
           (40), set up through the TimeBank API, then `--claims` confirmed claims spread over
           the 24 months of days given 2024-01-01..2025-12-31 (each member at most one claim a
           day, 30 minutes to 4 hours: well inside the 24-hours-a-day rule). Each claim is one
           `LedgerStore.transfer` (issuance -> member, the meta and idempotency key the service
           gives a confirmation) whose `then=` inserts the claim's `tb_claims` row, status
           confirmed with the entry's seq, in the same transaction: the rows `log_claim` and
           `confirm_claim` would have written. Transfers go in concurrent groups the writer
           group-commits, day by day, the ledger's clock on the day given. One claim in 200 is
           reversed three days later through `TimeBank.reverse_claim`. A checkpoint is signed
           at the end. The build rate is printed; the finished database is verified once with
           `verify_database` (timed apart). A second database of `--small-claims` (100,000)
           claims of the same shape (same members, activities and months) shows the report's
           memory does not grow with the ledger. With `--db PATH` the databases are kept
           (PATH and PATH with `.small` before its suffix) and reused when present; their
           shape is recorded in `PATH.params.json` and a database of another shape is refused.
2. report: `make_report` for the whole 24 months, rendered to JSON, in a fresh subprocess per
           database (so its peak RSS is the report's): one warm-up, then the best of 3 timed
           runs, then one run under `tracemalloc` for the peak of Python allocations. The
           subprocess's peak RSS (VmHWM: its `ru_maxrss`, also reported, cannot go below the
           parent's size at the fork) is reported with the same before the first report (the
           interpreter, the imports and the open database) for comparison.
3. hledger: each database exported as an hledger journal (`write_journal`, as `timebank
           export-journal` does: untimed), then `hledger -f FILE balance --date2 -M --pivot
           activity tag:hours=given -O csv` timed (wall clock), its peak RSS by GNU time's `%M`.
           Its CSV must equal the report's `outputs.by_activity_month` minutes, cell by cell;
           if not the run exits 1 naming the first difference. hledger is installed by
           scripts/install-hledger if missing. Its memory grows with the journal, so a watchdog
           kills it past `--hledger-max-gb` (default 85% of the memory available), and it runs
           on the large ledger whole unless `--hledger-claims N`, or an estimate scaled from
           the small run that does not fit, says otherwise (or it was killed: then on half as
           many claims, and so on): then on the journal of the ledger's first entries, up to
           three days past the end of the month of the N-th claim's day (so that month's
           reversals are in), compared in the months up to that one, and its time is scaled
           linearly to the whole ledger for the ratio, which says so ("ratio_is_scaled").

The ratio is hledger's seconds over the report's (same run, same data): at both sizes, the
large one's being the result. The target (issue 5): the report at least 30x faster than hledger
and under 2 s, memory flat with the ledger. Human-readable lines first; the last line is one
JSON object. A failed check exits 1; a reused database of another shape exits 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import gc
import hashlib
import io
import itertools
import json
import os
import random
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import tracemalloc
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for bench.harness

from bench.harness import CheckFailed, code_version, environment, header, run_async, work_dir
from ledger import KeyRing, LedgerStore, to_us, verify_database
from ledger import storage as ledger_storage
from ledger.model import Entry
from ledger.storage import sqlite_url
from timebank import storage as tb_storage
from timebank.activities import (
    Activity,
    CoForm,
    Contribution,
    CoSubform,
    Mode,
    RelationToPaidWork,
    ServiceArea,
    Voluntariness,
)
from timebank.claims import Claim, ClaimRules, ClaimStatus, SchemeModel
from timebank.journal import (
    HOURS_BY_ACTIVITY,
    LedgerHead,
    header_lines,
    ledger_lines,
    write_journal,
)
from timebank.schemes import ISSUANCE_ACCOUNT, Member, Role, Scheme, member_account
from timebank.service import TimeBank
from valuation.reports import make_report, render

SCHEME = "report-bench"
COORDINATOR = "C0000"
FIRST_DAY, LAST_DAY = date(2024, 1, 1), date(2025, 12, 31)  # 24 months of days given
DAYS = (LAST_DAY - FIRST_DAY).days + 1
MINUTES = (30, 45, 60, 60, 60, 90, 120, 120, 180, 240)  # a claim's length, drawn from these
REVERSE_ONE_IN = 200  # claims reversed (through TimeBank.reverse_claim), three days later
REVERSE_AFTER = 3  # days
BUILD_GROUP = 1024  # concurrent transfers per asyncio.gather while building
HOUR_US = 3_600_000_000
PACKAGES = ("ledger", "timebank", "valuation/reports", "bench")
TARGET_RATIO, TARGET_S = 30, 2.0
GNU_TIME = "/usr/bin/time"  # measures hledger's peak RSS (%M)


def say(text: str) -> None:
    print(text, flush=True)


# ---- the scheme and its claims --------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """What a bench database holds: recorded beside it, so a reused one of another shape is
    refused."""

    claims: int
    members: int
    activities: int
    seed: int = 5
    first_day: str = FIRST_DAY.isoformat()
    last_day: str = LAST_DAY.isoformat()
    reverse_one_in: int = REVERSE_ONE_IN


def member_id(n: int) -> str:
    return f"M{n:05d}"


_AREAS = tuple(ServiceArea)[:8]
_KINDS = (  # form, sub-form, contribution, mode, relation, proxy
    (
        CoForm.CO_DELIVERY,
        CoSubform.CO_PERFORMING,
        Contribution.TIME_AND_EFFORT,
        Mode.COLLECTIVE,
        RelationToPaidWork.SUPPLEMENTS,
        "gardening",
    ),
    (
        CoForm.CO_DELIVERY,
        CoSubform.CO_PERFORMING,
        Contribution.TIME_AND_EFFORT,
        Mode.COLLECTIVE,
        RelationToPaidWork.SUBSTITUTES,
        "cleaning",
    ),
    (
        CoForm.CO_DELIVERY,
        CoSubform.CO_MANAGEMENT,
        Contribution.SKILLS,
        Mode.COLLECTIVE,
        RelationToPaidWork.NEW,
        "catering",
    ),
    (
        CoForm.CO_ASSESSMENT,
        CoSubform.CO_MONITORING,
        Contribution.EXPERTISE,
        Mode.COLLECTIVE,
        RelationToPaidWork.SUPPLEMENTS,
        "governance",
    ),
    (
        CoForm.CO_COMMISSIONING,
        CoSubform.CO_PRIORITISATION,
        Contribution.EXPERTISE,
        Mode.COLLECTIVE,
        RelationToPaidWork.NEW,
        "governance",
    ),
    (
        CoForm.CO_DESIGN,
        None,
        Contribution.SKILLS,
        Mode.COLLECTIVE,
        RelationToPaidWork.SUBSTITUTES,
        "design",
    ),
    (
        CoForm.CO_DELIVERY,
        CoSubform.MUTUAL_AID,
        Contribution.TIME_AND_EFFORT,
        Mode.INDIVIDUAL,
        RelationToPaidWork.NEW,
        "befriending",
    ),
    (
        CoForm.CO_DELIVERY,
        CoSubform.MUTUAL_AID,
        Contribution.TIME_AND_EFFORT,
        Mode.INDIVIDUAL,
        RelationToPaidWork.NEW,
        "transport",
    ),
    (
        CoForm.CO_DELIVERY,
        CoSubform.CO_PERFORMING,
        Contribution.TIME_AND_EFFORT,
        Mode.INDIVIDUAL,
        RelationToPaidWork.SUPPLEMENTS,
        "generalist",
    ),
)


def activity(n: int) -> Activity:
    form, sub, contribution, mode, relation, proxy = _KINDS[n % len(_KINDS)]
    area = _AREAS[n % len(_AREAS)]
    voluntariness = Voluntariness.MANDATED if n % 13 == 12 else Voluntariness.VOLUNTARY
    return Activity(
        f"activity-{n:02d}",
        f"Activity {n:02d} ({proxy}, {area})",
        form,
        sub,
        contribution,
        area,
        mode,
        voluntariness,
        relation,
        False,
        proxy,
    )


def answers(n: int) -> dict[str, str]:
    """Equality-monitoring answers for member n: four in five consented (made up, varied)."""
    if n % 5 == 4:
        return {}
    pick = hashlib.sha256(f"answers:{n}".encode()).digest()
    return {
        "consent": "yes",
        "age_band": ("18-24", "25-34", "35-44", "45-54", "55-64", "65-74", "75-plus")[pick[0] % 7],
        "area_code": ("CF10", "CF11", "CF24", "CF5")[pick[1] % 4],
        "disability": ("yes", "no", "no", "no", "prefer-not-to-say")[pick[2] % 5],
        "deprivation_decile": str(1 + pick[3] % 10),
    }


@dataclass(frozen=True, slots=True)
class Planned:
    """One claim to write: its index, member, activity, minutes and whether it is reversed."""

    index: int
    member: int
    activity: int
    minutes: int
    reversed: bool


def plan_day(shape: Shape, day: int) -> list[Planned]:
    """The claims given on day `day` (0-based), in order: the same for the same shape, always.
    Each member gives at most one claim a day."""
    lo, hi = day * shape.claims // DAYS, (day + 1) * shape.claims // DAYS
    digest = hashlib.sha256(f"{shape.seed}:{day}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    members = rng.sample(range(shape.members), hi - lo)
    weights = [1 + (a * 7) % 11 for a in range(shape.activities)]  # some activities busier
    acts = rng.choices(range(shape.activities), weights, k=hi - lo)
    return [
        Planned(
            lo + j,
            members[j],
            acts[j],
            rng.choice(MINUTES),
            rng.randrange(shape.reverse_one_in) == 0,
        )
        for j in range(hi - lo)
    ]


def claim_id(index: int) -> str:
    """The id the service gives a claim logged with idempotency key `log:<index>`."""
    return hashlib.sha256(f"{SCHEME}\0log:{index}".encode()).hexdigest()[:24]


class BuildClock:
    """The build's clock: set to each day given in turn, moving a millisecond a reading."""

    def __init__(self) -> None:
        self.now_us = to_us(datetime(FIRST_DAY.year, 1, 1, tzinfo=UTC)) - 30 * 24 * HOUR_US

    def set(self, when_us: int) -> None:
        self.now_us = max(self.now_us, when_us)

    def __call__(self) -> int:
        self.now_us += 1000
        return self.now_us


def day_us(day: int, hour: int) -> int:
    d = FIRST_DAY + timedelta(days=day)
    return to_us(datetime(d.year, d.month, d.day, hour, tzinfo=UTC))


async def set_up(bank: TimeBank, shape: Shape) -> None:
    """The scheme, its coordinator, members and activities, through the TimeBank API."""
    rules = ClaimRules(SchemeModel.TIME_CREDITS)
    await bank.create_scheme(Scheme(SCHEME, "Report benchmark scheme", rules))
    coordinator = Member(SCHEME, COORDINATOR, "Coordinator", frozenset({Role.COORDINATOR}))
    await bank.add_member(coordinator)
    for lo in range(0, shape.members, 500):
        await asyncio.gather(
            *(
                bank.add_member(Member(SCHEME, member_id(n), f"Member {n}", attributes=answers(n)))
                for n in range(lo, min(lo + 500, shape.members))
            )
        )
    for n in range(shape.activities):
        await bank.add_activity(SCHEME, activity(n), by=COORDINATOR)


async def confirm(store: LedgerStore, p: Planned, day: date, logged_us: int) -> Entry:
    """Claim `p` as `log_claim` then `confirm_claim` write it: one entry, and the claim's row
    (confirmed, naming the entry) committed with it."""
    member = member_id(p.member)
    act = activity(p.activity).code
    content = [member, member, act, day.isoformat(), p.minutes, None, False, ""]
    digest = hashlib.sha256(json.dumps(content).encode()).digest()
    cid = claim_id(p.index)
    claim = Claim(
        SCHEME,
        cid,
        member,
        member,
        False,
        act,
        day,
        p.minutes,
        None,
        "",
        ClaimStatus.CONFIRMED,
        False,
        decided_by=COORDINATOR,
    )

    def record(conn: Any, entry: Entry) -> None:
        tb_storage.insert_claim(conn, replace(claim, entry_seq=entry.seq), digest, logged_us)

    return await store.transfer(
        SCHEME,
        [(ISSUANCE_ACCOUNT, -p.minutes), (member_account(member), p.minutes)],
        meta={"claim": cid, "activity": act, "day": day.isoformat()},
        idempotency_key=f"claim:{cid}:0",
        then=record,
    )


async def reverse(bank: TimeBank, planned: list[Planned]) -> None:
    await asyncio.gather(
        *(
            bank.reverse_claim(SCHEME, claim_id(p.index), by=COORDINATOR, reason="logged in error")
            for p in planned
        )
    )


async def build(db: Path, shape: Shape) -> tuple[int, int]:
    """Build a fresh bench database of `shape` at `db`; (claims, reversals) written."""
    clock = BuildClock()
    url = sqlite_url(str(db))
    store = await LedgerStore.open(url, KeyRing(keys_of(db)), clock=clock)
    bank = await TimeBank.open(url, store, clock)
    reversals = 0
    try:
        await set_up(bank, shape)
        due: dict[int, list[Planned]] = {}  # day -> claims given that day to reverse on it
        t0, done, report_every = time.perf_counter(), 0, max(shape.claims // 10, 1)
        for day in range(DAYS + REVERSE_AFTER):
            clock.set(day_us(day, 20))
            if day < DAYS:
                given = FIRST_DAY + timedelta(days=day)
                planned = plan_day(shape, day)
                for lo in range(0, len(planned), BUILD_GROUP):
                    await asyncio.gather(
                        *(
                            confirm(store, p, given, day_us(day, 18) + (lo + j) * 1000)
                            for j, p in enumerate(planned[lo : lo + BUILD_GROUP])
                        )
                    )
                due[day + REVERSE_AFTER] = [p for p in planned if p.reversed]
                if (done + len(planned)) // report_every > done // report_every:
                    rate = (done + len(planned)) / (time.perf_counter() - t0)
                    say(f"  built {done + len(planned):>9} claims ({rate:.0f} claims/s)")
                done += len(planned)
            clock.set(day_us(day, 22))
            undo = due.pop(day, [])
            await reverse(bank, undo)
            reversals += len(undo)
        clock.set(day_us(DAYS + REVERSE_AFTER, 23))
        size = await store.size(SCHEME)
        await store.checkpoint(SCHEME, idempotency_key=f"checkpoint:{size}")
    finally:
        await bank.close()
        await store.close()
    return done, reversals


def keys_of(db: Path) -> Path:
    return db.with_name(db.name + ".keys")


def params_of(db: Path) -> Path:
    return db.with_name(db.name + ".params.json")


def small_path(db: Path) -> Path:
    return db.with_name(f"{db.stem}.small{db.suffix}")


@dataclass(frozen=True)
class Built:
    """A bench database ready to measure, and how it came to be."""

    db: Path
    shape: Shape
    entries: int
    reversals: int
    build_s: float | None  # None: reused
    verify_s: float | None  # None: reused (verified when built)


def prepare(db: Path, shape: Shape) -> Built:
    """The database of `shape` at `db`: reused if its recorded shape matches, built (and
    verified) if there is none; another shape, or a database without its record, is refused."""
    record = params_of(db)
    if db.exists():
        if not record.exists():
            raise UsageError(f"{db} exists without {record.name}: not a finished bench database")
        found = json.loads(record.read_text())
        if found["shape"] != asdict(shape):
            raise UsageError(
                f"{db} holds {found['shape']}, not the {asdict(shape)} asked for: "
                "name another --db, or remove it"
            )
        say(f"reusing {db}: {shape.claims} claims, {found['entries']} entries")
        return Built(db, shape, found["entries"], found["reversals"], None, None)
    if keys_of(db).exists():
        shutil.rmtree(keys_of(db))
    say(
        f"building {db}: {shape.claims} claims of {shape.members} members in {shape.activities} "
        f"activities, {FIRST_DAY}..{LAST_DAY}, through LedgerStore.transfer(then=) "
        f"(gather of {BUILD_GROUP})"
    )
    t0 = time.perf_counter()
    claims, reversals = run_async(lambda: build(db, shape))
    built = time.perf_counter() - t0
    entries = claims + reversals
    say(
        f"built {claims} claims + {reversals} reversals = {entries} entries in {built:.1f} s = "
        f"{claims / built:.0f} claims/s"
    )
    t0 = time.perf_counter()
    report = run_async(lambda: verify_database(sqlite_url(str(db), read_only=True)))
    verified = time.perf_counter() - t0
    say(f"verify_database: {report.summary()} ({verified:.1f} s, not part of any timing)")
    if not report.ok or report.entries != entries:
        raise CheckFailed(f"the built database does not verify: {report.summary()}")
    record.write_text(
        json.dumps(
            {
                "shape": asdict(shape),
                "entries": entries,
                "reversals": reversals,
                "build_s": round(built, 1),
                "verify_s": round(verified, 1),
                "built": datetime.now(UTC).isoformat(timespec="seconds"),
            },
            indent=1,
        )
        + "\n"
    )
    return Built(db, shape, entries, reversals, built, verified)


# ---- the report, in a fresh subprocess per database ------------------------------------------


def ru_maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def peak_rss_mb() -> float:
    """This process's peak RSS since its exec (VmHWM). ru_maxrss cannot go below the size the
    parent had at the fork, which after a build is more than a report needs."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return ru_maxrss_mb()


async def child_report(db: Path, repeat: int) -> tuple[dict[str, Any], dict[str, int]]:
    """Inside the measuring subprocess: one warm-up, `repeat` timed reports (make_report and
    the JSON rendered), then one under tracemalloc; their figures, and the report's minutes by
    "activity|month"."""
    url = sqlite_url(str(db))
    store = await LedgerStore.open(url, KeyRing(keys_of(db)))
    bank = await TimeBank.open(url, store)
    try:
        gc.collect()
        before = peak_rss_mb()

        async def once() -> tuple[float, dict[str, Any], int]:
            t0 = time.perf_counter()
            report = await make_report(bank, SCHEME, FIRST_DAY, LAST_DAY)
            size = len(render(report, "json"))
            return time.perf_counter() - t0, report, size

        warmup, report, size = await once()
        runs = [(await once())[0] for _ in range(repeat)]
        tracemalloc.start()
        await once()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        await bank.close()
        await store.close()
    cells = {
        f"{r['activity']}|{r['month']}": r["minutes"]
        for r in report["outputs"]["by_activity_month"]
    }
    return {
        "warmup_s": warmup,
        "runs_s": runs,
        "best_s": min(runs),
        "json_bytes": size,
        "tracemalloc_peak_mb": peak / 2**20,
        "rss_before_mb": before,
        "maxrss_mb": peak_rss_mb(),
        "ru_maxrss_mb": ru_maxrss_mb(),
        "minutes": report["headline"]["minutes"],
        "checkpoint": report["checkpoint"]["size"],
        "participations": report["headline"]["participations"],
        "cells": len(cells),
    }, cells


@dataclass(frozen=True)
class Measured:
    """A report's figures (see child_report) and its hours by (activity, month)."""

    figures: dict[str, Any]
    cells: dict[tuple[str, str], int]


def measure_report(db: Path, repeat: int, work: Path) -> Measured:
    cells_out = work / f"{db.stem}.cells.json"
    argv = [sys.executable, __file__, "--child-report", str(db), "--repeat", str(repeat)]
    proc = subprocess.run(
        [*argv, "--cells-out", str(cells_out)], capture_output=True, text=True, check=False
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise CheckFailed(f"the report of {db} failed ({proc.returncode}):\n{proc.stderr}")
    figures: dict[str, Any] = json.loads(lines[-1])
    raw: dict[str, int] = json.loads(cells_out.read_text())
    cells_out.unlink()
    cells = {(k.split("|")[0], k.split("|")[1]): v for k, v in raw.items()}
    return Measured(figures, cells)


def say_report(built: Built, m: Measured) -> None:
    f = m.figures
    runs = ", ".join(f"{r:.3f}" for r in f["runs_s"])
    say(
        f"report ({built.shape.claims:,} claims, checkpoint {f['checkpoint']:,}, "
        f"{FIRST_DAY}..{LAST_DAY}, make_report + JSON of {f['json_bytes'] / 1e3:.0f} kB): "
        f"best of {len(f['runs_s'])} {f['best_s']:.3f} s ({runs}; warm-up {f['warmup_s']:.3f} s)"
    )
    say(
        f"       peak Python allocations {f['tracemalloc_peak_mb']:.1f} MB (tracemalloc), "
        f"peak RSS {f['maxrss_mb']:.1f} MB ({f['rss_before_mb']:.1f} MB before the first "
        f"report); {f['participations']:,} participations, {f['minutes']:,} minutes in "
        f"{f['cells']} activity-month cells"
    )


# ---- hledger on the exported journal -------------------------------------------------------


def ensure_hledger() -> str:
    found = shutil.which("hledger")
    if found is None:
        script = Path(__file__).resolve().parent.parent / "scripts" / "install-hledger"
        subprocess.run([str(script)], check=False)
        found = shutil.which("hledger")
    if found is None:
        raise CheckFailed("no hledger, and scripts/install-hledger could not install it")
    return found


def export_journal(db: Path, out: Path, upto: int | None) -> tuple[int, float]:
    """The journal of the bench scheme, as `timebank export-journal` writes it (`write_journal`),
    or (`upto`) of its first `upto` entries, written the same way; (entries, seconds)."""
    engine = ledger_storage.make_sync_engine(sqlite_url(str(db), read_only=True), read_only=True)
    t0 = time.perf_counter()
    try:
        with engine.connect() as conn, conn.begin(), out.open("w", encoding="utf-8") as f:
            when = datetime.now(UTC)
            if upto is None:
                written = write_journal(conn, f, [SCHEME], exported_at=when)
            else:
                last = ledger_storage.read_entries(conn, SCHEME, [upto])[upto]
                head = LedgerHead(SCHEME, upto, last.hash)
                f.writelines(f"{line}\n" for line in header_lines([head], when))
                accounts = ledger_storage.list_accounts(conn, SCHEME)
                refs = ledger_storage.reversal_refs(conn, SCHEME)
                chunks = ledger_storage.stream_entries_sync(conn, SCHEME, upto)
                entries = itertools.chain.from_iterable(chunks)
                lines = ledger_lines(head, accounts, entries, reversed_seqs=refs)
                f.writelines(f"{line}\n" for line in lines)
                written = upto
    finally:
        engine.dispose()
    return written, time.perf_counter() - t0


def mem_available_gb() -> float:
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    return 0.0


@dataclass(frozen=True)
class HledgerRun:
    seconds: float
    maxrss_mb: float
    killed: bool
    csv: str


def _vm_rss_kb(pid: int) -> int:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _children(pid: int) -> list[int]:
    with contextlib.suppress(OSError, ValueError):
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return []


def run_hledger(hledger: str, journal: Path, max_gb: float) -> HledgerRun:
    """`hledger -f JOURNAL balance --date2 -M --pivot activity tag:hours=given -O csv`, timed
    (wall clock), its peak RSS by GNU time's %M (or, without /usr/bin/time, wait4's maxrss,
    which cannot go below this process's size at the fork); killed if its RSS passes
    `max_gb`."""
    argv = [hledger, "-f", str(journal), *HOURS_BY_ACTIVITY.split(), "-O", "csv"]
    out, err, peak = (journal.with_suffix(s) for s in (".csv", ".err", ".rss"))
    timed = Path(GNU_TIME).exists()
    if timed:
        argv = [GNU_TIME, "-f", "%M", "-o", str(peak), *argv]
    killed = threading.Event()
    with out.open("wb") as stdout, err.open("wb") as stderr:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=stdout, stderr=stderr)
        done = threading.Event()

        def watch() -> None:  # the machine must not run out of memory
            while not done.wait(0.2):
                for pid in _children(proc.pid) if timed else [proc.pid]:
                    if _vm_rss_kb(pid) > max_gb * 2**20:
                        killed.set()
                        with contextlib.suppress(OSError):
                            os.kill(pid, signal.SIGKILL)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        done.set()
    watcher.join()
    errors = err.read_text(errors="replace")
    maxrss_mb = usage.ru_maxrss / 1024
    if timed:
        maxrss_mb = int(peak.read_text().split()[-1]) / 1024  # KiB
        peak.unlink()
    err.unlink()
    if proc.returncode != 0 and not killed.is_set():
        raise CheckFailed(f"hledger exited {proc.returncode}: {errors[-2000:]}")
    csv_text = out.read_text()
    out.unlink()
    return HledgerRun(seconds, maxrss_mb, killed.is_set(), csv_text)


def hledger_cells(text: str) -> dict[tuple[str, str], int]:
    """hledger's CSV as (activity, month) -> minutes (cells of 0 left out, as the report has
    none; the rows of postings with no activity and the total skipped)."""
    rows = list(csv.reader(io.StringIO(text)))
    months = rows[0][1:]
    out: dict[tuple[str, str], int] = {}
    for row in rows[1:]:
        if row[0] in ("total", ""):
            continue
        for month, cell in zip(months, row[1:], strict=True):
            minutes = 0 if cell == "0" else int(cell.removesuffix(" min"))
            if minutes:
                out[(row[0], month)] = minutes
    return out


def first_difference(
    report: dict[tuple[str, str], int], hledger: dict[tuple[str, str], int]
) -> str | None:
    for key in sorted(report.keys() | hledger.keys()):
        if report.get(key) != hledger.get(key):
            return (
                f"activity {key[0]} in {key[1]}: the report has {report.get(key)} minutes, "
                f"hledger {hledger.get(key)}"
            )
    return None


@dataclass(frozen=True)
class Scope:
    """What hledger was run on: the first `claims` claims' ledger, compared in months up to
    `last_month` (None: the whole ledger, every month)."""

    claims: int
    entries: int
    last_month: str | None


def subset(built: Built, claims: int) -> Scope:
    """The ledger up to the end of the month of the `claims`-th claim's day, and the three days
    after it in which that month's reversals come (so its months are complete)."""
    day = next(d for d in range(DAYS) if (d + 1) * built.shape.claims // DAYS >= claims)
    given = FIRST_DAY + timedelta(days=day)
    month_end = (given.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    until = day_us((month_end - FIRST_DAY).days + REVERSE_AFTER + 1, 0)
    db = sqlite3.connect(f"file:{built.db}?mode=ro", uri=True)
    try:
        entries = db.execute(
            "SELECT max(seq) FROM entries WHERE ledger_id = ? AND time_us < ?", (SCHEME, until)
        ).fetchone()[0]
    finally:
        db.close()
    last_day = (month_end - FIRST_DAY).days
    taken = (last_day + 1) * built.shape.claims // DAYS
    return Scope(taken, int(entries), month_end.isoformat()[:7])


@dataclass(frozen=True)
class Compared:
    scope: Scope
    run: HledgerRun
    journal_mb: float
    export_s: float
    cells: int


def against_hledger(
    hledger: str, built: Built, report: Measured, scope: Scope | None, work: Path, max_gb: float
) -> Compared | None:
    """Export the journal (whole, or as far as `scope` says), time hledger on it and check its
    hours by activity and month equal the report's. None: hledger passed `max_gb`."""
    journal = work / f"{built.db.stem}.journal"
    upto = None if scope is None else scope.entries
    entries, export_s = export_journal(built.db, journal, upto)
    size_mb = journal.stat().st_size / 1e6
    what = "whole ledger" if scope is None else f"first {scope.claims:,} claims' ledger"
    say(
        f"journal ({what}): {entries:,} transactions, {size_mb:.0f} MB, written in "
        f"{export_s:.1f} s (write_journal, as timebank export-journal; untimed)"
    )
    try:
        run = run_hledger(hledger, journal, max_gb)
    finally:
        journal.unlink()
    if run.killed:
        say(f"hledger passed {max_gb:.1f} GB of RSS after {run.seconds:.1f} s: killed")
        return None
    theirs = hledger_cells(run.csv)
    mine = report.cells
    if scope is not None and scope.last_month is not None:
        last = scope.last_month
        theirs = {k: v for k, v in theirs.items() if k[1] <= last}
        mine = {k: v for k, v in mine.items() if k[1] <= last}
    problem = first_difference(mine, theirs)
    if problem is not None:
        raise CheckFailed(f"hledger and the report disagree: {problem}")
    done = scope or Scope(built.shape.claims, entries, None)
    return Compared(done, run, size_mb, export_s, len(mine))


def say_hledger(c: Compared, version: str) -> None:
    months = "every month" if c.scope.last_month is None else f"months to {c.scope.last_month}"
    say(
        f"hledger ({version}, balance --date2 -M --pivot activity tag:hours=given -O csv) on "
        f"{c.scope.entries:,} transactions: {c.run.seconds:.2f} s, peak RSS "
        f"{c.run.maxrss_mb:,.0f} MB; equal to the report in all {c.cells} activity-month cells "
        f"({months})"
    )


# ---- main ----------------------------------------------------------------------------------------


class UsageError(Exception):
    """The run cannot go as asked (exit 2)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=1_000_000, help="confirmed claims")
    parser.add_argument("--small-claims", type=int, default=100_000, help="the small ledger's")
    parser.add_argument("--members", type=int, default=5000)
    parser.add_argument("--activities", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=3, help="timed reports (best is taken)")
    parser.add_argument("--db", type=Path, default=None, help="reuse (or build and keep) PATH")
    parser.add_argument("--dir", type=Path, default=None, help="where temp databases go")
    parser.add_argument("--keep", action="store_true", help="keep temp databases afterwards")
    parser.add_argument(
        "--hledger-claims",
        type=int,
        default=None,
        help="run hledger on the first N claims' ledger (default: all, if memory allows)",
    )
    parser.add_argument(
        "--hledger-max-gb",
        type=float,
        default=None,
        help="kill hledger past this RSS (default: 85%% of the memory available)",
    )
    parser.add_argument("--child-report", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--cells-out", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_report is not None:
        figures, cells = run_async(lambda: child_report(args.child_report, args.repeat))
        args.cells_out.write_text(json.dumps(cells))
        print(json.dumps(figures))
        return 0
    large = Shape(args.claims, args.members, args.activities)
    small = Shape(args.small_claims, args.members, args.activities)
    for shape in (large, small):
        if shape.claims < 1 or -(-shape.claims // DAYS) > shape.members:
            parser.error(f"{shape.claims} claims need 1 to {DAYS} x --members ({shape.members})")
    if args.activities < 1 or args.repeat < 1 or args.small_claims >= args.claims:
        parser.error("--activities and --repeat positive, --small-claims below --claims")
    try:
        if args.db is not None:
            db: Path = args.db.resolve()
            db.parent.mkdir(parents=True, exist_ok=True)
            return run(db, small_path(db), large, small, args, db.parent)
        with work_dir("report-", args.dir, args.keep) as work:
            return run(work / "report.db", work / "report.small.db", large, small, args, work)
    except CheckFailed as exc:
        print(f"check failed, the figures mean nothing: {exc}")
        return 1
    except UsageError as exc:
        print(f"{parser.prog}: {exc}", file=sys.stderr)
        return 2


def run(
    db: Path, small_db: Path, large: Shape, small: Shape, args: argparse.Namespace, work: Path
) -> int:
    load_before = header("report benchmark", work)
    hledger = ensure_hledger()
    version = subprocess.run([hledger, "--version"], capture_output=True, text=True).stdout
    version = version.strip().split(",")[0]
    built_small = prepare(small_db, small)
    built = prepare(db, large)

    report_small = measure_report(built_small.db, args.repeat, work)
    say_report(built_small, report_small)
    report = measure_report(built.db, args.repeat, work)
    say_report(built, report)

    available = mem_available_gb()
    max_gb: float = args.hledger_max_gb or 0.85 * available
    small_run = against_hledger(hledger, built_small, report_small, None, work, max_gb)
    if small_run is None:
        raise CheckFailed(f"hledger needed more than {max_gb:.1f} GB for the small ledger")
    say_hledger(small_run, version)
    estimate_gb = small_run.run.maxrss_mb / 1024 * built.entries / built_small.entries
    claims: int = args.hledger_claims or large.claims
    if args.hledger_claims is None and 1.2 * estimate_gb > max_gb:
        claims = int(large.claims * max_gb / (1.2 * estimate_gb))
        say(
            f"hledger on the whole ledger would need about {estimate_gb:.1f} GB ({available:.1f}"
            f" GB available): it runs on the first {claims:,} claims' ledger"
        )
    compared: Compared | None = None
    while compared is None:
        if claims < 1:
            raise CheckFailed(f"hledger needed more than {max_gb:.1f} GB for any of the ledger")
        scope = None if claims >= large.claims else subset(built, claims)
        compared = against_hledger(hledger, built, report, scope, work, max_gb)
        claims //= 2
    say_hledger(compared, version)

    f, fs = report.figures, report_small.figures
    measured_s = compared.run.seconds
    whole = compared.scope.last_month is None
    hledger_s = measured_s if whole else measured_s * built.entries / compared.scope.entries
    ratio = hledger_s / f["best_s"]
    ratio_small = small_run.run.seconds / fs["best_s"]
    meets = ratio >= TARGET_RATIO and f["best_s"] < TARGET_S
    scaled = (
        ""
        if whole
        else (
            f" (hledger's {measured_s:.1f} s on {compared.scope.entries:,} transactions scaled "
            f"linearly to {built.entries:,}: an estimate)"
        )
    )
    say(
        f"ratio hledger / report: {ratio:.1f}x at {large.claims:,} claims{scaled}, "
        f"{ratio_small:.1f}x at {small.claims:,}; report memory {fs['tracemalloc_peak_mb']:.1f} "
        f"-> {f['tracemalloc_peak_mb']:.1f} MB (tracemalloc), {fs['maxrss_mb']:.0f} -> "
        f"{f['maxrss_mb']:.0f} MB RSS from {small.claims:,} to {large.claims:,} claims"
    )
    say(
        f"target: the report at least {TARGET_RATIO}x faster than hledger and under {TARGET_S} s: "
        f"{'met' if meets else 'NOT met'}"
    )
    result = {
        "benchmark": "report",
        "report_s": round(f["best_s"], 4),
        "hledger_s": round(measured_s, 3),
        "ratio": round(ratio, 2),
        "ratio_is_scaled": not whole,
        "meets_target": meets,
        "target_ratio": TARGET_RATIO,
        "target_s": TARGET_S,
        "claims": large.claims,
        "entries": built.entries,
        "reversals": built.reversals,
        "members": large.members,
        "activities": large.activities,
        "months": 24,
        "report_runs_s": [round(r, 4) for r in f["runs_s"]],
        "report_warmup_s": round(f["warmup_s"], 4),
        "report_tracemalloc_peak_mb": round(f["tracemalloc_peak_mb"], 2),
        "report_peak_rss_mb": round(f["maxrss_mb"], 1),
        "report_rss_before_mb": round(f["rss_before_mb"], 1),
        "report_ru_maxrss_mb": round(f["ru_maxrss_mb"], 1),
        "small_claims": small.claims,
        "small_entries": built_small.entries,
        "small_report_s": round(fs["best_s"], 4),
        "small_report_tracemalloc_peak_mb": round(fs["tracemalloc_peak_mb"], 2),
        "small_report_peak_rss_mb": round(fs["maxrss_mb"], 1),
        "small_hledger_s": round(small_run.run.seconds, 3),
        "small_hledger_maxrss_mb": round(small_run.run.maxrss_mb, 1),
        "ratio_small": round(ratio_small, 2),
        "hledger_transactions": compared.scope.entries,
        "hledger_claims": compared.scope.claims,
        "hledger_months_to": compared.scope.last_month,
        "hledger_maxrss_mb": round(compared.run.maxrss_mb, 1),
        "hledger_journal_mb": round(compared.journal_mb, 1),
        "cells_compared": compared.cells,
        "small_cells_compared": small_run.cells,
        "journal_export_s": round(compared.export_s, 2),
        "hledger": version,
        "build_s": None if built.build_s is None else round(built.build_s, 1),
        "build_claims_per_s": (
            None if built.build_s is None else round(large.claims / built.build_s, 1)
        ),
        "verify_s": None if built.verify_s is None else round(built.verify_s, 1),
        **environment(load_before, code_version(PACKAGES)),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
