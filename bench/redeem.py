"""Voucher reserve + settle pairs per second over real HTTP, against direct ledger pairs.

Run from the repository root:

    .venv/bin/python bench/redeem.py [--pairs 3000] [--concurrency 32] [--client raw|httpx]

A pair is what spending a credit costs the system: a member takes a voucher for a partner's
offer (POST /api/v1/schemes/{s}/vouchers: the offer's credits reserved on the member's account,
a two-phase ledger transfer) and the partner's staff settle it at the till (POST
.../vouchers/{code}/settle: the reservation posted to the partner's account). Three
measurements, one run, one machine (the load generator shares its cores with the server):

1. direct: `LedgerStore.reserve` then `LedgerStore.post` on a fresh SQLite file (WAL,
           synchronous=FULL), `--concurrency` workers each awaiting one pair after another until
           `--pairs` are done. Reports pairs/s and p50/p99 latency per pair: what the ledger
           alone costs per redeemed voucher.
2. floor:  a real server, `python -m main.cli serve --schedule-seconds 0` (uvicorn) on a
           fresh SQLite file and a free loopback port, with TIMEBANK_ADMIN_TOKEN set;
           `--concurrency` workers GET /api/v1/health 2 x `--pairs` times: what HTTP alone
           (the server's and the load generator's) costs, with no domain and no database.
3. http:   set up through the API: a time-credits scheme, a coordinator, MEMBERS members with a
           token each and one activity; every member earns enough credits for its share of the
           vouchers (claims of CLAIM_MINUTES on past days, confirmed by the coordinator); a
           partner with a venue and a 1-credit offer, the scheme's agreement with it and a
           partner-staff token. Then `--concurrency` workers each take a voucher (the member's
           token, an Idempotency-Key) and settle it (the partner-staff token, an
           Idempotency-Key) until `--pairs` are done; pair i is member i mod MEMBERS's.
           Reports pairs/s, requests/s and p50/p99 latency per request (reserve and settle
           apart and together) and per pair, and the CPU time per pair of the server and of
           this process.

The load generator (floor and http) is by default (`--client raw`) a minimal asyncio +
httptools HTTP/1.1 client over `--concurrency` keep-alive connections, so most of the 2-core
machine is left to the server; `--client httpx` uses one httpx.AsyncClient with a pool of as many
connections instead (it spends far more CPU per request itself). Set-up and checks always use
httpx.

`--warmup` pairs (not timed; twice as many health requests) go first in each phase. After the
timed run the results are checked: the partner's statement over a wide period counts every
voucher settled (pairs + warm-up) and their minutes, a sample of vouchers reads back as posted
and the members' balances add up to what they earned less what they spent; then the server is
stopped with SIGTERM (it must shut down cleanly: uvicorn then exits by the signal, -15) and its
database verified. A failed check exits 1; slowness never does. The ratio pairs_per_s /
direct_pairs_per_s is what HTTP and the partners' domain cost on top of the ledger.

`--profile FILE` runs the server under cProfile (every thread; `--profile-clock cpu` counts CPU
time per thread instead of wall time), writes the merged stats to FILE and prints the top
functions. Human-readable lines first; the last line is one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for bench.harness
from bench import harness
from bench.harness import ACTIVITY, MEMBERS, SCHEME, CheckFailed, expect, member

PARTNER = "bench-leisure"
VENUE = "pool"
OFFER = {
    "id": "swim",
    "title": "A swim",
    "credits": 1,
    "cash_price_pence": 450,
    "starts": "2020-01-01",
}
MINUTES = 60 * int(cast(int, OFFER["credits"]))  # what one voucher reserves
CLAIM_MINUTES = 720  # a scheme's default max_minutes: the most one claim may log
MARGIN_CREDITS = 2  # each member earns this many credits more than its vouchers need
DAYS = 365  # a member's funding claims go back this many days at most, one a day
TARGET_PAIRS_PER_S = 500
SPEC = harness.Spec(
    name="redeem",
    title="Redeem benchmark",
    packages=("api", "timebank", "ledger", "partners"),
    unit="pair",
    kinds=("reserve", "settle"),
    what="vouchers",
    entries=2,
    target_rate=TARGET_PAIRS_PER_S,
    direct="pairs",
    direct_call="LedgerStore.reserve + post",
    direct_latency="per pair",
)


def credits_each(total: int) -> int:
    """Credits every member earns: its share of `total` vouchers and a margin."""
    return math.ceil(total / MEMBERS) * MINUTES // 60 + MARGIN_CREDITS


def funding_claims(total: int) -> int:
    """Claims of CLAIM_MINUTES each member logs (one a day) to earn `credits_each(total)`."""
    return math.ceil(credits_each(total) * 60 / CLAIM_MINUTES)


# ---- direct ledger pairs -----------------------------------------------------------------------


async def bench_direct(
    db: str, key_dir: Path, n: int, concurrency: int, warmup: int
) -> tuple[float, list[float]]:
    """n reserve + post pairs by `concurrency` workers on a fresh ledger whose members were
    funded first: (seconds, sorted ms latencies per pair)."""
    latencies: list[float] = []
    total = n + warmup
    funded = credits_each(total) * 60
    partner = f"partner:{PARTNER}"
    async with harness.direct_ledger(db, key_dir) as store:
        await store.open_account(
            SCHEME, partner, kind="partner", floor=0, idempotency_key="setup:partner"
        )
        accounts = [f"member:{member(i)}" for i in range(MEMBERS)]
        await asyncio.gather(
            *(
                store.open_account(SCHEME, a, kind="member", floor=0, idempotency_key=f"open:{a}")
                for a in accounts
            )
        )
        await asyncio.gather(
            *(
                store.transfer(
                    SCHEME, [(harness.ISSUER, -funded), (a, funded)], idempotency_key=f"fund:{a}"
                )
                for a in accounts
            )
        )
        expires = datetime.now(UTC) + timedelta(hours=48)

        def pair(prefix: str, offset: int, timed: bool) -> Callable[[int], Awaitable[None]]:
            async def one(index: int) -> None:
                i = offset + index
                t0 = time.perf_counter()
                held = await store.reserve(
                    SCHEME,
                    debit=accounts[i % MEMBERS],
                    target=partner,
                    amount=MINUTES,
                    expires_at=expires,
                    meta={"offer": f"{PARTNER}/swim"},
                    idempotency_key=f"{prefix}reserve:{i}",
                )
                await store.post(
                    SCHEME, held.seq, meta={"venue": VENUE}, idempotency_key=f"{prefix}post:{i}"
                )
                if timed:
                    latencies.append((time.perf_counter() - t0) * 1000)

            return one

        await harness.closed_loop(warmup, concurrency, pair("warmup:", 0, False))
        elapsed = await harness.closed_loop(n, concurrency, pair("direct:", warmup, True))
        got = (await store.account(SCHEME, partner)).balance
        if got != total * MINUTES:
            raise CheckFailed(f"direct: the partner holds {got} minutes, wanted {total * MINUTES}")
        left = sum([(await store.account(SCHEME, a)).balance for a in accounts])
        pending = sum([await store.pending(SCHEME, a) for a in accounts])
        if left != MEMBERS * funded - total * MINUTES or pending:
            raise CheckFailed(f"direct: members hold {left} minutes, {pending} still reserved")
    return elapsed, sorted(latencies)


# ---- vouchers over HTTP --------------------------------------------------------------------------


@dataclass
class World(harness.People):
    staff: dict[str, str]  # the partner's staff: they settle at the till
    funded: int  # minutes each member earned


async def set_up(client: httpx.AsyncClient, admin: dict[str, str], total: int) -> World:
    """A time-credits scheme, a coordinator, MEMBERS members with their tokens, an activity,
    enough confirmed hours for each member's share of `total` vouchers, and a partner with a
    venue and an offer under an agreement, with a partner-staff token."""
    base = f"/api/v1/schemes/{SCHEME}"
    scheme = {"id": SCHEME, "name": "Benchmark", "model": "time-credits"}
    people = await harness.set_up_scheme(client, admin, scheme)
    coordinator = people.coordinator

    today = datetime.now(UTC).date()
    earn = credits_each(total) * 60
    claims = funding_claims(total)
    slots = asyncio.Semaphore(16)

    async def fund(i: int, k: int) -> None:  # member i's k-th claim, k + 1 days ago
        minutes = min(CLAIM_MINUTES, earn - k * CLAIM_MINUTES)
        body = {
            "activity": ACTIVITY["code"],
            "date": (today - timedelta(days=1 + k)).isoformat(),
            "minutes": minutes,
        }
        async with slots:
            headers = people.members[i] | {"Idempotency-Key": f"fund-{i}-{k}"}
            made = await expect(
                await client.post(f"{base}/claims", json=body, headers=headers), 201
            )
            done = await expect(
                await client.post(f"{base}/claims/{made['id']}/confirm", headers=coordinator), 200
            )
        if done["status"] != "confirmed":
            raise CheckFailed(f"a funding claim was not confirmed: {done}")

    await asyncio.gather(*(fund(i, k) for i in range(MEMBERS) for k in range(claims)))

    partner = {"id": PARTNER, "name": "Bench Leisure", "sector": "public"}
    await expect(await client.post("/api/v1/partners", json=partner, headers=admin), 201)
    venue = {"id": VENUE, "name": "The pool"}
    await expect(
        await client.post(f"/api/v1/partners/{PARTNER}/venues", json=venue, headers=admin), 201
    )
    await expect(
        await client.post(f"/api/v1/partners/{PARTNER}/offers", json=OFFER, headers=admin), 201
    )
    agreement = {
        "partner": PARTNER,
        "offers": [OFFER["id"]],
        "venues": [VENUE],
        "starts": "2020-01-01",
    }
    await expect(await client.post(f"{base}/agreements", json=agreement, headers=admin), 201)
    made = await expect(
        await client.post(
            f"{base}/tokens", json={"role": "partner-staff", "partner": PARTNER}, headers=admin
        ),
        201,
    )
    staff = harness.bearer(str(made["token"]))
    return World(coordinator, people.members, staff, earn)


@dataclass
class VoucherRun(harness.HttpRun):
    setup_s: float  # the API set-up, funding claims included
    settled: int  # vouchers on the partner's statement afterwards


async def bench_http(
    servers: list[harness.Server], admin_token: str, options: harness.HttpOptions
) -> VoucherRun:
    """The HTTP floor, then n vouchers taken and settled, through the chosen load generator."""
    n, concurrency, warmup = options.n, options.concurrency, options.warmup
    base = f"/api/v1/schemes/{SCHEME}/vouchers"
    t_setup = time.perf_counter()
    async with httpx.AsyncClient(base_url=servers[0].base, timeout=httpx.Timeout(60)) as setup:
        world = await set_up(setup, harness.bearer(admin_token), n + warmup)
    setup_s = time.perf_counter() - t_setup
    reserve_body = json.dumps({"partner": PARTNER, "offer": OFFER["id"]}).encode()
    settle_body = json.dumps({"venue": VENUE}).encode()
    codes: list[str] = []
    load = harness.Spread(options.client, servers, concurrency)
    try:
        floor_s, floor = await harness.health_floor(load, 2 * n, concurrency, 2 * warmup)
        lat = harness.Latencies()

        def pair(offset: int, timed: bool) -> Callable[[int], Awaitable[None]]:
            async def one(index: int) -> None:
                i = offset + index
                headers = world.members[i % MEMBERS] | {"Idempotency-Key": f"voucher-{i}"}
                reserve = harness.Request("POST", base, headers, reserve_body, 201)

                def settle(made: dict[str, Any]) -> harness.Request:
                    if made["state"] != "pending" or made["member"] != member(i):
                        raise CheckFailed(f"voucher {i} was not taken: {made}")
                    path = f"{base}/{made['code']}/settle"
                    headers = world.staff | {"Idempotency-Key": f"settle-{i}"}
                    return harness.Request("POST", path, headers, settle_body, 200)

                # taken on process i mod N, settled on the next
                made, done = await harness.two_requests(
                    load.on(i), reserve, settle, lat if timed else None, load.on(i + 1)
                )
                if done["state"] != "posted" or done["settled_by"] is None:
                    raise CheckFailed(f"voucher {i} was not settled: {done}")
                codes.append(str(made["code"]))

            return one

        elapsed, client_cpu, server_cpu = await harness.timed_run(options, servers, pair)
    finally:
        await load.aclose()
    # the checks read through the last process: another than the set-up's when there are more
    async with httpx.AsyncClient(base_url=servers[-1].base, timeout=httpx.Timeout(60)) as checks:
        settled = await check_http(checks, world, codes, n + warmup)
    lat.sort()
    return VoucherRun(floor_s, floor, elapsed, lat, client_cpu, server_cpu, setup_s, settled)


async def check_http(client: httpx.AsyncClient, world: World, codes: list[str], total: int) -> int:
    """Every voucher settled (the partner's statement counts them), a sample reads back as
    posted, and the members' balances are what they earned less what they spent. Returns the
    statement's count of vouchers."""
    base = f"/api/v1/schemes/{SCHEME}"
    if len(set(codes)) != total:
        raise CheckFailed(f"{len(set(codes))} distinct voucher codes, wanted {total}")
    period = {"start": "2000-01-01", "end": "2100-01-01"}
    statement = await expect(
        await client.get(f"{base}/partner/statement", params=period, headers=world.staff), 200
    )
    settled = int(statement["vouchers"])
    if settled != total or statement["minutes"] != total * MINUTES:
        raise CheckFailed(
            f"the partner's statement shows {settled} vouchers, {statement['minutes']} "
            f"minutes; wanted {total}, {total * MINUTES}"
        )
    for code in random.Random(7).sample(codes, min(5, total)):
        seen = await expect(await client.get(f"{base}/vouchers/{code}", headers=world.staff), 200)
        if seen["state"] != "posted" or seen["venue"] != VENUE:
            raise CheckFailed(f"voucher {code} reads back as {seen}")
    minutes = 0
    for i in range(MEMBERS):
        got = await expect(
            await client.get(f"{base}/members/{member(i)}/balance", headers=world.coordinator),
            200,
        )
        minutes += int(got["minutes"])
    wanted = MEMBERS * world.funded - total * MINUTES
    if minutes != wanted:
        raise CheckFailed(f"members' balances add up to {minutes} minutes, wanted {wanted}")
    return settled


# ---- main --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    return harness.http_main(
        argv,
        __doc__,
        SPEC,
        size=(3000, "vouchers taken and settled"),
        client_help="the load generator: raw (default; little CPU per request) or httpx "
        "(much more)",
        too_many=too_many,
        script=__file__,
        run=run,
    )


def too_many(total: int) -> str | None:
    """Why `total` pairs (warm-up included) cannot run, if they cannot."""
    if funding_claims(total) > DAYS:
        return "that many pairs would need members to have earned credits on too many days"
    return None


def run(work: Path, options: harness.HttpOptions) -> int:
    n, concurrency, warmup, client = options.n, options.concurrency, options.warmup, options.client
    measured = harness.measure(work, options, SPEC, bench_direct, bench_http)
    got = measured.got

    print(f"set-up through the API (funding claims included): {got.setup_s:.2f} s")
    figures, meets = harness.http_figures(options, SPEC, got, measured.direct_rate, measured.direct)
    if options.profile is not None:
        harness.print_profile(
            options.profile, options.top, f"{n} timed pairs plus set-up and warm-up"
        )
    keys = {
        "setup_s": round(got.setup_s, 2),
        "pairs": n,
        "warmup": warmup,
        "concurrency": concurrency,
        "client": client,
        "members": MEMBERS,
        "minutes_per_voucher": MINUTES,
        "target_pairs_per_s": TARGET_PAIRS_PER_S,
        "target_p99_ms": harness.TARGET_P99_MS,
        "meets_target": meets,
        "profiled": options.profile is not None,
        "vouchers_settled": got.settled,
    }
    return harness.emit(figures, keys, measured, SPEC)


if __name__ == "__main__":
    sys.exit(main())
