"""How long `/api/v1/health` waits while the largest hostile upload of each kind is handled.

Run from the repository root:

    .venv/bin/python bench/health_wait.py [--rounds 5] [--lines 50000]

A real `timebank serve` on a fresh SQLite file. For each kind of upload (a CSV import preview
of `--lines` lines, one of members with fields as long as csv reads, one of the most columns a
line may have, a JSON body nested as deep as 64 KiB allows; the `--lines` file previewed on
the coordinator's import page, signed in; and the writing imports: the `--lines` hours file
and `--lines` TimeOverflow transfers committed, each checked whole then refused, and
`--written` lines of hours, members and TimeOverflow members written anew each round), in
`--rounds` interleaved rounds:
health asked alone (the baseline), then health asked every 20 ms from another connection while
the upload is in flight. Reported per kind: the median of the rounds' worst health wait during
the upload, the baseline's median, and their ratio. Before this was fixed a 100,000-column
header held every request for 149 s and a 50,000-line preview for 345 s. Slowness never fails
the run; a health answer other than 200 does. Human-readable lines first; the last line is one
JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for bench.harness
from bench import harness
from identity.auth import ApiRole
from ledger.storage import sqlite_url
from web.book import AccountBook

ADMIN = "bench-admin-token-health-wait"
LOGIN, PASSWORD = "bench-coordinator", "bench password for the import page"
PAGE = "multipart/form-data"  # an upload of the coordinator's import page
MAX_CSV = 8 * 1024 * 1024
MAX_JSON = 64 * 1024
HOURS = "member,activity,date,minutes,receiver,note\n"


ROUND = b"@R@"  # in a writing upload's body: the round's number, so that each round writes anew
WRITES = {"commit_written_hours", "commit_written_members", "commit_timeoverflow_members"}
TO_MEMBERS = "N,Name,Email,Phone,Alternative Phone\n"
TO_TRANSFERS = "Date,From,To,Post,Quantity\n"


def uploads(lines: int, written: int) -> dict[str, tuple[str, str, bytes]]:
    member = f"{harness.member(0)},{harness.ACTIVITY['code']},2025-06-02,15,,a note\n"
    long_name = 'M9,"' + "n" * 131_000 + '",member,,\n'
    wide_header = "id,display_name," + ",".join(f"x{i}" for i in range(62)) + "\n"
    wide = "M9,Name," + ",".join("v" * 20 for _ in range(62)) + "\n"
    depth = (MAX_JSON - 100) // 2
    deep = b'{"activity": "garden", "date": "2025-06-02", "minutes": 30, "note": '
    base = f"/api/v1/schemes/{harness.SCHEME}"
    # `written` lines of hours, one per member and day back from 2025-06-02
    days = [date(2025, 6, 2) - timedelta(days=n // harness.MEMBERS) for n in range(written)]
    hours = "".join(
        f"{harness.member(n)},{harness.ACTIVITY['code']},{d},30,,round @R@\n"
        for n, d in enumerate(days)
    )
    transfer = "2024-02-10 17:05:09 +0100,Carme Vidal (3),Anna Puig (1),Dog walking,0:30\n"
    return {
        "many_lines": (
            f"{base}/imports/hours?preview=true",
            "text/csv",
            (HOURS + member * lines).encode()[:MAX_CSV],
        ),
        "huge_fields": (
            f"{base}/imports/members?preview=true",
            "text/csv",
            (
                "id,display_name,roles,contact,card_number\n"
                + long_name * ((MAX_CSV - 100) // len(long_name))
            ).encode(),
        ),
        "many_columns": (
            f"{base}/imports/members?preview=true",
            "text/csv",
            (wide_header + wide * ((MAX_CSV - 2000) // len(wide))).encode(),
        ),
        "deep_json": (
            f"{base}/claims",
            "application/json",
            deep + b"[" * depth + b"]" * depth + b"}",
        ),
        "page_many_lines": (
            f"/s/{harness.SCHEME}/coordinate/import",
            PAGE,
            (HOURS + member * lines).encode()[:MAX_CSV],
        ),
        # the writing imports: `lines` lines checked, then refused whole (over a day's hours)
        "commit_many_lines": (
            f"{base}/imports/hours",
            "text/csv",
            (HOURS + member * lines).encode()[:MAX_CSV],
        ),
        # `written` lines logged and confirmed, or members added, each round
        "commit_written_hours": (f"{base}/imports/hours", "text/csv", (HOURS + hours).encode()),
        "commit_written_members": (
            f"{base}/imports/members",
            "text/csv",
            (
                "id,display_name,roles,contact,card_number\n"
                + "".join(f"R@R@n{i},Member {i},member,n{i}@example.org,\n" for i in range(written))
            ).encode(),
        ),
        "commit_timeoverflow_members": (
            f"{base}/imports/timeoverflow-members",
            "text/csv",
            (
                TO_MEMBERS
                + "".join(f"@R@{i:07d},Member {i},m{i}@example.org,,\n" for i in range(written))
            ).encode(),
        ),
        # `lines` transfers between members the scheme does not have: checked, refused whole
        "commit_timeoverflow_transfers": (
            f"{base}/imports/timeoverflow-transfers?activity={harness.ACTIVITY['code']}",
            "text/csv",
            (TO_TRANSFERS + transfer * lines).encode()[:MAX_CSV],
        ),
    }


async def health(client: httpx.AsyncClient) -> float:
    start = time.perf_counter()
    r = await client.get("/api/v1/health")
    if r.status_code != 200:
        raise harness.CheckFailed(f"health answered {r.status_code}")
    return time.perf_counter() - start


async def signed_in(base: str, db: Path, wait: httpx.Timeout) -> tuple[httpx.AsyncClient, str]:
    """A browser signed in as the scheme's coordinator, and its form token."""
    book = await AccountBook.open(sqlite_url(str(db)), lambda: time.time_ns() // 1000)
    try:
        await book.create(
            LOGIN, PASSWORD, ApiRole.COORDINATOR, harness.SCHEME, member=harness.COORDINATOR
        )
    finally:
        await book.close()
    browser = httpx.AsyncClient(base_url=base, timeout=wait)
    csrf = re.findall(r'name="csrf" value="([^"]+)"', (await browser.get("/sign-in")).text)[0]
    login = {"csrf": csrf, "login": LOGIN, "password": PASSWORD}
    if (await browser.post("/sign-in", data=login)).status_code != 303:
        raise harness.CheckFailed("the coordinator could not sign in")
    form = (await browser.get(f"/s/{harness.SCHEME}/coordinate/import")).text
    return browser, re.findall(r'name="csrf" value="([^"]+)"', form)[0]


async def during(
    client: httpx.AsyncClient,
    send: Callable[[], Awaitable[httpx.Response]],
    path: str,
    must_write: bool = False,
) -> tuple[float, float, int]:
    """(worst health wait, upload seconds, health answers) while the upload is in flight."""
    start = time.perf_counter()
    sent = asyncio.ensure_future(send())
    waits = []
    while not sent.done():
        waits.append(await health(client))
        await asyncio.sleep(0.02)
    answer = await sent
    must_be_ok = must_write or path.startswith("/s/")
    if answer.status_code >= 500 or (must_be_ok and answer.status_code != 200):
        raise harness.CheckFailed(f"{path}: {answer.status_code} {answer.text[:300]}")
    return max(waits, default=0.0), time.perf_counter() - start, len(waits)


async def run(
    base: str, db: Path, rounds: int, lines: int, written: int, only: set[str]
) -> dict[str, Any]:
    admin = harness.bearer(ADMIN)
    timeout = httpx.Timeout(600)
    async with (
        httpx.AsyncClient(base_url=base, timeout=timeout) as client,
        httpx.AsyncClient(base_url=base, timeout=timeout) as uploader,
    ):
        scheme = {"id": harness.SCHEME, "name": "Bench", "model": "time-credits"}
        people = await harness.set_up_scheme(client, admin, scheme)
        browser, csrf = await signed_in(base, db, timeout)
        out: dict[str, Any] = {}
        for kind, upload in uploads(lines, written).items():
            path, media, body = upload
            if only and kind not in only:
                continue
            rounds_sent = iter(range(1, rounds + 1))

            def send(
                path: str = path,
                media: str = media,
                body: bytes = body,
                sent: Iterator[int] = rounds_sent,
            ) -> Any:
                body = body.replace(ROUND, str(next(sent)).encode())
                if media == PAGE:
                    files = {"file": ("hours.csv", body, "text/csv")}
                    return browser.post(path, data={"csrf": csrf, "kind": "hours"}, files=files)
                headers = people.coordinator | {"content-type": media}
                return uploader.post(path, content=body, headers=headers)

            worst, alone, took, answers = [], [], [], []
            for _ in range(rounds):  # interleaved: a baseline, then one under the upload
                alone.append(statistics.median([await health(client) for _ in range(5)]))
                w, t, n = await during(client, send, path, kind in WRITES)
                worst.append(w)
                took.append(t)
                answers.append(n)
            med_worst, med_alone = statistics.median(worst), statistics.median(alone)
            out[kind] = {
                "upload_bytes": len(upload[2]),
                "upload_s": round(statistics.median(took), 3),
                "health_answers_during_upload": int(statistics.median(answers)),
                "health_worst_wait_ms": round(med_worst * 1000, 1),
                "health_alone_ms": round(med_alone * 1000, 2),
                "ratio": round(med_worst / med_alone, 1) if med_alone else None,
            }
            print(
                f"{kind}: {len(upload[2]):,} bytes in {out[kind]['upload_s']} s; health "
                f"waited at worst {out[kind]['health_worst_wait_ms']} ms (alone "
                f"{out[kind]['health_alone_ms']} ms), answered "
                f"{out[kind]['health_answers_during_upload']} times meanwhile"
            )
        await browser.aclose()
        return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--lines", type=int, default=50_000)
    parser.add_argument(
        "--written",
        type=int,
        default=None,
        help="lines a writing import writes each round (default: --lines / 10)",
    )
    parser.add_argument("--only", default="", help="comma-separated kinds (default: all)")
    args = parser.parse_args()
    written = args.lines // 10 if args.written is None else args.written
    only = {k for k in args.only.split(",") if k}
    with harness.work_dir("health-wait-", None, keep=False) as work:
        load = harness.header("health wait under hostile uploads", work)
        server = harness.Server(
            str(work / "bench.db"), work / "serve.log", ADMIN, None, "wall", __file__
        )
        try:
            server.wait_healthy()
            figures = harness.run_async(
                lambda: run(server.base, work / "bench.db", args.rounds, args.lines, written, only)
            )
        except harness.CheckFailed as failed:
            print(f"FAILED {failed}", file=sys.stderr)
            return 1
        finally:
            server.stop()
    result = {
        "benchmark": "health_wait",
        "rounds": args.rounds,
        "lines": args.lines,
        "written": written,
        "kinds": figures,
    }
    print(json.dumps(result | harness.environment(load, harness.ledger_code_version())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
