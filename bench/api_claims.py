"""Claims created and confirmed per second over real HTTP, against direct ledger appends.

Run from the repository root:

    .venv/bin/python bench/api_claims.py [--claims 4000] [--concurrency 32] [--client raw|httpx]

Three measurements, one run, one machine (the load generator shares its cores with the server):

1. direct: `LedgerStore.transfer` on a fresh SQLite file (WAL, synchronous=FULL), `--concurrency`
           workers each awaiting one transfer after another until `--claims` are done. Reports
           appends/s and p50/p99 latency: what the ledger alone costs per confirmed claim.
2. floor:  a real server, `python -m main.cli serve --schedule-seconds 0` (uvicorn) on a
           fresh SQLite file and a free loopback port, with TIMEBANK_ADMIN_TOKEN set;
           `--concurrency` workers GET /api/v1/health 2 x `--claims` times: what HTTP alone
           (the server's and the load generator's) costs, with no domain and no database.
3. http:   set up through the API: a time-credits scheme (min_minutes 15), a coordinator,
           MEMBERS members with a token each and one activity. Then `--concurrency` workers
           each log a claim (the member's token, an Idempotency-Key) and confirm it (the
           coordinator's token) until `--claims` are done. Claims spread over members and past
           days, so no member reaches a day's 1440 minutes. Reports claims/s (created and
           confirmed), requests/s and p50/p99 latency per request (create and confirm apart and
           together), and the CPU time per claim of the server and of this process.

The load generator (floor and http) is by default (`--client raw`) a minimal asyncio +
httptools HTTP/1.1 client over `--concurrency` keep-alive connections: about 0.1 ms of CPU per
claim, so most of the 2-core machine is left to the server. `--client httpx` uses one
httpx.AsyncClient with a pool of as many connections instead: it spends about 2 ms of CPU per
request itself, so on 2 cores it measures httpx more than the server. Set-up and checks always
use httpx.

`--warmup` claims (not timed; twice as many health requests) go first in each phase. After the
timed run the results are checked: no claim left pending, every claim in the coordinator's list
of confirmed claims, a sample read back as confirmed, and the members' balances adding up to
claims x minutes; then the server is stopped with SIGTERM (it must shut down cleanly: uvicorn
then exits by the signal, -15) and its database verified. A failed check exits 1; slowness never
does. The ratio claims_per_s / direct_appends_per_s is what HTTP and the time bank's domain cost
on top of the ledger.

`--profile FILE` runs the server under cProfile (every thread: the event loop, the ledger
writer, SQLite's driver threads; `--profile-clock cpu` counts CPU time per thread instead of
wall time), writes the merged stats to FILE and prints the top functions. Human-readable lines
first; the last line is one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for bench.harness
from bench import harness
from bench.harness import ACTIVITY, MEMBERS, SCHEME, CheckFailed, expect, member

MINUTES = 60
DAYS = 365  # claims go back this many days at most, one per member and day
TARGET_CLAIMS_PER_S = 1000
SPEC = harness.Spec(
    name="api_claims",
    title="API claims benchmark",
    packages=("api", "timebank", "ledger"),
    unit="claim",
    kinds=("create", "confirm"),
    what="claims",
    entries=1,
    target_rate=TARGET_CLAIMS_PER_S,
    direct="appends",
    direct_call="LedgerStore.transfer",
    direct_latency="latency",
)


def claim_day(i: int, today: date) -> date:
    """A past day for claim i: each member's claims fall on different days (up to DAYS)."""
    return today - timedelta(days=1 + (i // MEMBERS) % DAYS)


# ---- direct ledger appends ---------------------------------------------------------------------


async def bench_direct(
    db: str, key_dir: Path, n: int, concurrency: int, warmup: int
) -> tuple[float, list[float]]:
    """n transfers by `concurrency` workers on a fresh ledger: (seconds, sorted ms latencies)."""
    latencies: list[float] = []
    async with harness.direct_ledger(db, key_dir) as store:
        await asyncio.gather(
            *(
                store.open_account(
                    SCHEME, member(i), kind="member", floor=0, idempotency_key=f"setup:{i}"
                )
                for i in range(MEMBERS)
            )
        )

        def transfer(prefix: str, timed: bool) -> Callable[[int], Awaitable[None]]:
            async def one(i: int) -> None:
                t0 = time.perf_counter()
                await store.transfer(
                    SCHEME,
                    [(harness.ISSUER, -MINUTES), (member(i), MINUTES)],
                    meta={"claim": f"{prefix}{i}"},
                    idempotency_key=f"{prefix}{i}",
                )
                if timed:
                    latencies.append((time.perf_counter() - t0) * 1000)

            return one

        await harness.closed_loop(warmup, concurrency, transfer("warmup:", False))
        elapsed = await harness.closed_loop(n, concurrency, transfer("direct:", True))
        total = sum([(await store.account(SCHEME, member(i))).balance for i in range(MEMBERS)])
        if total != (n + warmup) * MINUTES:
            raise CheckFailed(f"direct: member balances add up to {total} minutes")
    return elapsed, sorted(latencies)


# ---- claims over HTTP ----------------------------------------------------------------------------


async def set_up(client: httpx.AsyncClient, admin: dict[str, str]) -> harness.People:
    """A time-credits scheme, a coordinator, MEMBERS members, their tokens and an activity."""
    scheme = {"id": SCHEME, "name": "Benchmark", "model": "time-credits", "min_minutes": 15}
    return await harness.set_up_scheme(client, admin, scheme)


async def bench_http(
    servers: list[harness.Server], admin_token: str, options: harness.HttpOptions
) -> harness.HttpRun:
    """The HTTP floor, then n claims logged and confirmed, through the chosen load generator."""
    n, concurrency, warmup = options.n, options.concurrency, options.warmup
    today = datetime.now(UTC).date()
    base = f"/api/v1/schemes/{SCHEME}/claims"
    async with httpx.AsyncClient(base_url=servers[0].base, timeout=httpx.Timeout(60)) as setup:
        world = await set_up(setup, harness.bearer(admin_token))
    load = harness.Spread(options.client, servers, concurrency)
    try:
        floor_s, floor = await harness.health_floor(load, 2 * n, concurrency, 2 * warmup)
        lat = harness.Latencies()

        def claim(offset: int, timed: bool) -> Callable[[int], Awaitable[None]]:
            async def one(index: int) -> None:
                i = offset + index
                body = {
                    "activity": ACTIVITY["code"],
                    "date": claim_day(i, today).isoformat(),
                    "minutes": MINUTES,
                }
                headers = world.members[i % MEMBERS] | {"Idempotency-Key": f"bench-{i}"}
                create = harness.Request("POST", base, headers, json.dumps(body).encode(), 201)

                def confirm(made: dict[str, Any]) -> harness.Request:
                    path = f"{base}/{made['id']}/confirm"
                    return harness.Request("POST", path, world.coordinator, None, 200)

                # logged on process i mod N, confirmed on the next: they interleave on one chain
                _, done = await harness.two_requests(
                    load.on(i), create, confirm, lat if timed else None, load.on(i + 1)
                )
                if done["status"] != "confirmed" or done["entry_seq"] is None:
                    raise CheckFailed(f"claim {i} was not confirmed: {done}")

            return one

        elapsed, client_cpu, server_cpu = await harness.timed_run(options, servers, claim)
    finally:
        await load.aclose()
    # the checks read through the last process: another than the set-up's when there are more
    async with httpx.AsyncClient(base_url=servers[-1].base, timeout=httpx.Timeout(60)) as checks:
        await check_http(checks, world, n + warmup)
    lat.sort()
    return harness.HttpRun(floor_s, floor, elapsed, lat, client_cpu, server_cpu)


async def check_http(client: httpx.AsyncClient, world: harness.People, total: int) -> None:
    """Every claim confirmed, none pending, and the members' balances add up."""
    base = f"/api/v1/schemes/{SCHEME}"
    coordinator = world.coordinator
    pending = await expect(
        await client.get(f"{base}/claims", params={"status": "pending"}, headers=coordinator), 200
    )
    if pending["items"]:
        raise CheckFailed(f"claims left pending: {pending['items'][:3]}")
    confirmed: list[dict[str, Any]] = []
    cursor = ""
    while True:
        params = {"status": "confirmed", "limit": "500"} | ({"cursor": cursor} if cursor else {})
        page = await expect(
            await client.get(f"{base}/claims", params=params, headers=coordinator), 200
        )
        confirmed += page["items"]
        cursor = page["next_cursor"] or ""
        if not cursor:
            break
    if len(confirmed) != total or len({c["id"] for c in confirmed}) != total:
        raise CheckFailed(f"{len(confirmed)} confirmed claims listed, wanted {total}")
    for c in random.Random(7).sample(confirmed, min(5, total)):
        got = await expect(await client.get(f"{base}/claims/{c['id']}", headers=coordinator), 200)
        if got["status"] != "confirmed" or not got["entry_seq"]:
            raise CheckFailed(f"claim {c['id']} reads back as {got}")
    minutes = 0
    for i in range(MEMBERS):
        got = await expect(
            await client.get(f"{base}/members/{member(i)}/balance", headers=coordinator), 200
        )
        minutes += int(got["minutes"])
    if minutes != total * MINUTES:
        raise CheckFailed(
            f"members' balances add up to {minutes} minutes, wanted {total * MINUTES}"
        )


# ---- main --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    return harness.http_main(
        argv,
        __doc__,
        SPEC,
        size=(4000, "claims logged and confirmed"),
        client_help="the load generator: raw (default; ~0.1 ms of CPU per claim) or httpx (~4 ms)",
        too_many=too_many,
        script=__file__,
        run=run,
    )


def too_many(total: int) -> str | None:
    """Why `total` claims (warm-up included) cannot run, if they cannot."""
    if total > MEMBERS * DAYS * (1440 // MINUTES):
        return "that many claims would fill members' days"
    return None


def run(work: Path, options: harness.HttpOptions) -> int:
    n, concurrency, warmup, client = options.n, options.concurrency, options.warmup, options.client
    measured = harness.measure(work, options, SPEC, bench_direct, bench_http)
    got = measured.got

    figures, meets = harness.http_figures(options, SPEC, got, measured.direct_rate, measured.direct)
    if options.profile is not None:
        harness.print_profile(
            options.profile, options.top, f"{n} timed claims plus setup and warm-up"
        )
    keys = {
        "claims": n,
        "warmup": warmup,
        "concurrency": concurrency,
        "client": client,
        "members": MEMBERS,
        "minutes": MINUTES,
        "target_claims_per_s": TARGET_CLAIMS_PER_S,
        "target_p99_ms": harness.TARGET_P99_MS,
        "meets_target": meets,
        "profiled": options.profile is not None,
    }
    return harness.emit(figures, keys, measured, SPEC)


if __name__ == "__main__":
    sys.exit(main())
