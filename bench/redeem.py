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
2. floor:  a real server, `python -m timebank.cli serve --schedule-seconds 0` (uvicorn) on a
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

import argparse
import asyncio
import contextlib
import cProfile
import hashlib
import itertools
import json
import math
import os
import platform
import pstats
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

import httptools
import httpx

from ledger import KeyRing, LedgerStore, verify_database
from ledger.storage import sqlite_url

ROOT = Path(__file__).resolve().parent.parent
SCHEME = "bench"
ACTIVITY = {
    "code": "garden", "title": "Residents' garden", "form": "co-delivery",
    "subform": "co-performing", "contribution": "time-and-effort", "area": "housing",
    "mode": "collective", "relation": "supplements-staff", "proxy_code": "gardener",
}  # fmt: skip
COORDINATOR = "C1"
MEMBERS = 64
PARTNER = "bench-leisure"
VENUE = "pool"
OFFER = {"id": "swim", "title": "A swim", "credits": 1, "cash_price_pence": 450,
         "starts": "2020-01-01"}  # fmt: skip
MINUTES = 60 * int(cast(int, OFFER["credits"]))  # what one voucher reserves
CLAIM_MINUTES = 720  # a scheme's default max_minutes: the most one claim may log
MARGIN_CREDITS = 2  # each member earns this many credits more than its vouchers need
DAYS = 365  # a member's funding claims go back this many days at most, one a day
TARGET_PAIRS_PER_S = 500
TARGET_P99_MS = 100
ISSUER = "issuance"
T = TypeVar("T")


def member(i: int) -> str:
    return f"M{i % MEMBERS:03d}"


def credits_each(total: int) -> int:
    """Credits every member earns: its share of `total` vouchers and a margin."""
    return math.ceil(total / MEMBERS) * MINUTES // 60 + MARGIN_CREDITS


def funding_claims(total: int) -> int:
    """Claims of CLAIM_MINUTES each member logs (one a day) to earn `credits_each(total)`."""
    return math.ceil(credits_each(total) * 60 / CLAIM_MINUTES)


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{platform.platform()}, {model}, {os.cpu_count()} cpus"


def code_version() -> str:
    """The git commit and a digest of the packages as run (they may hold uncommitted work)."""
    digest = hashlib.sha256()
    for package in ("api", "timebank", "ledger", "partners"):
        for path in sorted((ROOT / package).glob("*.py")):
            digest.update(f"{package}/{path.name}".encode() + b"\0" + path.read_bytes())
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = ""
    return f"{commit or 'unknown'}+src:{digest.hexdigest()[:12]}"


def run_async(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run on uvloop when it is installed (as uvicorn does for the server), else asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main())
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main())


@dataclass
class Latencies:
    """Per-request latencies in ms, kept sorted once the run is over."""

    reserve: list[float] = field(default_factory=list)
    settle: list[float] = field(default_factory=list)
    pair: list[float] = field(default_factory=list)  # reserve + settle, one worker's turn

    def sort(self) -> None:
        self.reserve.sort()
        self.settle.sort()
        self.pair.sort()

    @property
    def requests(self) -> list[float]:
        return sorted(self.reserve + self.settle)


class CheckFailed(Exception):
    """The run did something wrong: its figures mean nothing."""


async def closed_loop(n: int, concurrency: int, one: Callable[[int], Awaitable[None]]) -> float:
    """`concurrency` workers take indices 0..n-1 in turn and await `one(i)`; returns seconds."""
    counter = itertools.count()

    async def worker() -> None:
        while (i := next(counter)) < n:
            await one(i)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - start


# ---- direct ledger pairs -----------------------------------------------------------------------


async def bench_direct(
    path: Path, key_dir: Path, n: int, concurrency: int, warmup: int
) -> tuple[float, list[float]]:
    """n reserve + post pairs by `concurrency` workers on a fresh ledger whose members were
    funded first: (seconds, sorted ms latencies per pair)."""
    store = await LedgerStore.open(sqlite_url(str(path)), KeyRing(key_dir))
    latencies: list[float] = []
    total = n + warmup
    funded = credits_each(total) * 60
    partner = f"partner:{PARTNER}"
    try:
        await store.create_ledger(SCHEME, idempotency_key="setup:ledger")
        await store.open_account(
            SCHEME, ISSUER, kind="issuance", floor=None, idempotency_key="setup:issuer"
        )
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
                    SCHEME, [(ISSUER, -funded), (a, funded)], idempotency_key=f"fund:{a}"
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
                    SCHEME, debit=accounts[i % MEMBERS], target=partner, amount=MINUTES,
                    expires_at=expires, meta={"offer": f"{PARTNER}/swim"},
                    idempotency_key=f"{prefix}reserve:{i}",
                )  # fmt: skip
                await store.post(
                    SCHEME, held.seq, meta={"venue": VENUE}, idempotency_key=f"{prefix}post:{i}"
                )
                if timed:
                    latencies.append((time.perf_counter() - t0) * 1000)

            return one

        await closed_loop(warmup, concurrency, pair("warmup:", 0, False))
        elapsed = await closed_loop(n, concurrency, pair("direct:", warmup, True))
        got = (await store.account(SCHEME, partner)).balance
        if got != total * MINUTES:
            raise CheckFailed(f"direct: the partner holds {got} minutes, wanted {total * MINUTES}")
        left = sum([(await store.account(SCHEME, a)).balance for a in accounts])
        pending = sum([await store.pending(SCHEME, a) for a in accounts])
        if left != MEMBERS * funded - total * MINUTES or pending:
            raise CheckFailed(f"direct: members hold {left} minutes, {pending} still reserved")
    finally:
        await store.close()
    return elapsed, sorted(latencies)


# ---- the server --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) a live process has used."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    """`timebank serve` in a subprocess on a free loopback port; its output goes to a file."""

    def __init__(self, work: Path, admin: str, profile: Path | None, clock: str) -> None:
        self.db = work / "bench.db"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = work / "server.log"
        serve = ["serve", "--db", str(self.db), "--port", str(self.port)]
        serve += ["--schedule-seconds", "0"]
        if profile is None:
            argv = [sys.executable, "-m", "timebank.cli", *serve]
        else:  # this very script, as a wrapper that profiles the server (see profiled_serve)
            argv = [sys.executable, __file__, "--profiled-server", str(profile)]
            argv += ["--profile-clock", clock, "--", *serve]
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIMEBANK_")}
        env["TIMEBANK_ADMIN_TOKEN"] = admin
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise CheckFailed(f"the server exited ({self.proc.returncode}):\n{self.output()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base}/api/v1/health", timeout=1).status_code == 200:
                    return
            time.sleep(0.05)
        raise CheckFailed(f"the server was not healthy within {timeout} s:\n{self.output()}")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then wait; the exit code (-9 when it had to be killed). After a graceful
        shutdown uvicorn raises the signal again, so a clean exit reads -SIGTERM."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return -9
        return self.proc.returncode


async def expect(response: httpx.Response, status: int) -> dict[str, Any]:
    if response.status_code != status:
        raise CheckFailed(
            f"{response.request.method} {response.request.url.path}: "
            f"{response.status_code} (wanted {status}) {response.text[:500]}"
        )
    body = response.json()
    assert isinstance(body, dict)
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class World:
    coordinator: dict[str, str]
    members: list[dict[str, str]]
    staff: dict[str, str]  # the partner's staff: they settle at the till
    funded: int  # minutes each member earned


async def set_up(client: httpx.AsyncClient, admin: dict[str, str], total: int) -> World:
    """A time-credits scheme, a coordinator, MEMBERS members with their tokens, an activity,
    enough confirmed hours for each member's share of `total` vouchers, and a partner with a
    venue and an offer under an agreement, with a partner-staff token."""
    base = f"/api/v1/schemes/{SCHEME}"
    scheme = {"id": SCHEME, "name": "Benchmark", "model": "time-credits"}
    await expect(await client.post("/api/v1/schemes", json=scheme, headers=admin), 201)
    people = [(COORDINATOR, "coordinator")] + [(member(i), "member") for i in range(MEMBERS)]
    tokens: dict[str, dict[str, str]] = {}
    for who, role in people:
        body = {"id": who, "display_name": f"Bench {who}", "roles": [role]}
        await expect(await client.post(f"{base}/members", json=body, headers=admin), 201)
        made = await expect(
            await client.post(f"{base}/tokens", json={"role": role, "member": who}, headers=admin),
            201,
        )
        tokens[who] = bearer(str(made["token"]))
    coordinator = tokens[COORDINATOR]
    await expect(await client.post(f"{base}/activities", json=ACTIVITY, headers=coordinator), 201)

    today = datetime.now(UTC).date()
    earn = credits_each(total) * 60
    claims = funding_claims(total)
    slots = asyncio.Semaphore(16)

    async def fund(i: int, k: int) -> None:  # member i's k-th claim, k + 1 days ago
        minutes = min(CLAIM_MINUTES, earn - k * CLAIM_MINUTES)
        body = {"activity": ACTIVITY["code"], "date": (today - timedelta(days=1 + k)).isoformat(),
                "minutes": minutes}  # fmt: skip
        async with slots:
            headers = tokens[member(i)] | {"Idempotency-Key": f"fund-{i}-{k}"}
            made = await expect(await client.post(f"{base}/claims", json=body, headers=headers),
                                201)  # fmt: skip
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
    agreement = {"partner": PARTNER, "offers": [OFFER["id"]], "venues": [VENUE],
                 "starts": "2020-01-01"}  # fmt: skip
    await expect(await client.post(f"{base}/agreements", json=agreement, headers=admin), 201)
    made = await expect(
        await client.post(
            f"{base}/tokens", json={"role": "partner-staff", "partner": PARTNER}, headers=admin
        ),
        201,
    )
    staff = bearer(str(made["token"]))
    return World(coordinator, [tokens[member(i)] for i in range(MEMBERS)], staff, earn)


# ---- load generators -----------------------------------------------------------------------


class LoadClient(Protocol):
    """What the timed phases send requests through: returns (status, response body)."""

    async def send(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[int, bytes]: ...

    async def aclose(self) -> None: ...


class HttpxClient:
    """httpx.AsyncClient: HTTP/1.1 keep-alive, a pool of `concurrency` connections."""

    def __init__(self, base: str, concurrency: int) -> None:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self.client = httpx.AsyncClient(base_url=base, limits=limits, timeout=httpx.Timeout(60))

    async def send(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[int, bytes]:
        if body is not None:
            headers = headers | {"Content-Type": "application/json"}
        reply = await self.client.request(method, path, headers=headers, content=body)
        return reply.status_code, reply.content

    async def aclose(self) -> None:
        await self.client.aclose()


class _RawConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time, parsed by httptools."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.body = bytearray()
        self.reply: asyncio.Future[tuple[int, bytes]] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.reply is not None and not self.reply.done():
            self.reply.set_exception(ConnectionError(f"the server closed the connection: {exc}"))

    def lose(self, exc: Exception) -> None:
        """Fail the request in flight and drop the connection."""
        if self.reply is not None and not self.reply.done():
            self.reply.set_exception(exc)
        if self.transport is not None:
            self.transport.close()

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        if self.reply is not None and not self.reply.done():
            self.reply.set_result((self.parser.get_status_code(), bytes(self.body)))
        self.body = bytearray()


class RawClient:
    """A minimal HTTP/1.1 client (asyncio + httptools, as uvicorn parses): `concurrency`
    keep-alive connections, a fraction of httpx's CPU per request, so more of a shared machine
    is left to the server."""

    def __init__(self, base: str, concurrency: int) -> None:
        host_port = base.split("://", 1)[1]
        self.host, port = host_port.rsplit(":", 1)
        self.port = int(port)
        self.head = f"Host: {host_port}\r\n".encode()
        self.size = concurrency
        self.idle: asyncio.Queue[_RawConnection] = asyncio.Queue()
        self.made = 0

    async def _connection(self) -> _RawConnection:
        if self.idle.empty() and self.made < self.size:
            self.made += 1
            loop = asyncio.get_running_loop()
            _, conn = await loop.create_connection(_RawConnection, self.host, self.port)
            return conn
        return await self.idle.get()

    async def send(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[int, bytes]:
        conn = await self._connection()
        lines = [f"{method} {path} HTTP/1.1\r\n".encode(), self.head]
        lines += [f"{k}: {v}\r\n".encode() for k, v in headers.items()]
        if body is not None:
            lines.append(b"Content-Type: application/json\r\n")
        lines.append(f"Content-Length: {len(body or b'')}\r\n\r\n".encode())
        loop = asyncio.get_running_loop()
        reply: asyncio.Future[tuple[int, bytes]] = loop.create_future()
        conn.reply = reply
        timer = loop.call_later(60, conn.lose, TimeoutError(f"no reply in 60 s: {method} {path}"))
        assert conn.transport is not None
        conn.transport.write(b"".join(lines) + (body or b""))
        try:
            return await reply
        finally:
            timer.cancel()
            conn.reply = None
            if conn.transport.is_closing():
                self.made -= 1
            else:
                self.idle.put_nowait(conn)

    async def aclose(self) -> None:
        while not self.idle.empty():
            conn = self.idle.get_nowait()
            if conn.transport is not None:
                conn.transport.close()


CLIENTS: dict[str, Callable[[str, int], LoadClient]] = {"httpx": HttpxClient, "raw": RawClient}


@dataclass
class HttpRun:
    floor_s: float  # GET /api/v1/health, 2 x pairs requests
    floor: list[float]  # their sorted latencies, ms
    pairs_s: float
    lat: Latencies
    client_cpu_s: float  # this process, over the timed pairs
    server_cpu_s: float  # the server process, over the timed pairs
    setup_s: float  # the API set-up, funding claims included
    settled: int  # vouchers on the partner's statement afterwards


def reply_json(method: str, path: str, got: tuple[int, bytes], status: int) -> dict[str, Any]:
    if got[0] != status:
        raise CheckFailed(f"{method} {path}: {got[0]} (wanted {status}) {got[1][:500]!r}")
    body = json.loads(got[1])
    assert isinstance(body, dict)
    return body


async def bench_http(
    server: Server, admin_token: str, n: int, concurrency: int, warmup: int, client_kind: str
) -> HttpRun:
    """The HTTP floor, then n vouchers taken and settled, through the chosen load generator."""
    base = f"/api/v1/schemes/{SCHEME}/vouchers"
    t_setup = time.perf_counter()
    async with httpx.AsyncClient(base_url=server.base, timeout=httpx.Timeout(60)) as setup:
        world = await set_up(setup, bearer(admin_token), n + warmup)
    setup_s = time.perf_counter() - t_setup
    reserve_body = json.dumps({"partner": PARTNER, "offer": OFFER["id"]}).encode()
    settle_body = json.dumps({"venue": VENUE}).encode()
    codes: list[str] = []
    load = CLIENTS[client_kind](server.base, concurrency)
    try:
        floor: list[float] = []

        def health(timed: bool) -> Callable[[int], Awaitable[None]]:
            async def one(_i: int) -> None:
                t0 = time.perf_counter()
                got = await load.send("GET", "/api/v1/health", {}, None)
                if timed:
                    floor.append((time.perf_counter() - t0) * 1000)
                reply_json("GET", "/api/v1/health", got, 200)

            return one

        await closed_loop(2 * warmup, concurrency, health(False))
        floor_s = await closed_loop(2 * n, concurrency, health(True))
        lat = Latencies()

        def pair(offset: int, timed: bool) -> Callable[[int], Awaitable[None]]:
            async def one(index: int) -> None:
                i = offset + index
                headers = world.members[i % MEMBERS] | {"Idempotency-Key": f"voucher-{i}"}
                t0 = time.perf_counter()
                got = await load.send("POST", base, headers, reserve_body)
                t1 = time.perf_counter()
                made = reply_json("POST", base, got, 201)
                if made["state"] != "pending" or made["member"] != member(i):
                    raise CheckFailed(f"voucher {i} was not taken: {made}")
                path = f"{base}/{made['code']}/settle"
                headers = world.staff | {"Idempotency-Key": f"settle-{i}"}
                t2 = time.perf_counter()
                got = await load.send("POST", path, headers, settle_body)
                t3 = time.perf_counter()
                done = reply_json("POST", path, got, 200)
                if done["state"] != "posted" or done["settled_by"] is None:
                    raise CheckFailed(f"voucher {i} was not settled: {done}")
                codes.append(str(made["code"]))
                if timed:
                    lat.reserve.append((t1 - t0) * 1000)
                    lat.settle.append((t3 - t2) * 1000)
                    lat.pair.append((t3 - t0) * 1000)

            return one

        await closed_loop(warmup, concurrency, pair(0, False))
        cpu0, server0 = time.process_time(), cpu_seconds(server.proc.pid)
        elapsed = await closed_loop(n, concurrency, pair(warmup, True))
        client_cpu = time.process_time() - cpu0
        server_cpu = cpu_seconds(server.proc.pid) - server0
    finally:
        await load.aclose()
    async with httpx.AsyncClient(base_url=server.base, timeout=httpx.Timeout(60)) as checks:
        settled = await check_http(checks, world, codes, n + warmup)
    lat.sort()
    floor.sort()
    return HttpRun(floor_s, floor, elapsed, lat, client_cpu, server_cpu, setup_s, settled)


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


# ---- profiling the server ----------------------------------------------------------------------


def profiled_serve(out: Path, clock: str, argv: list[str]) -> int:
    """Run `timebank <argv>` with a cProfile on every thread; merge and dump them at exit."""
    from timebank import cli

    timer = time.thread_time if clock == "cpu" else time.perf_counter
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()

    def start_thread_profile(*_args: Any) -> None:  # the first event on a new thread
        prof = cProfile.Profile(timer)
        with lock:
            profiles.append(prof)
        prof.enable()  # replaces this hook, for this thread only

    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again to exit by it: a
    # handler of our own makes that second one a no-op, so the stats below are written.
    signal.signal(signal.SIGTERM, lambda *_: None)
    threading.setprofile(start_thread_profile)
    main = cProfile.Profile(timer)
    profiles.append(main)
    main.enable()
    try:
        code = cli.main(argv)
    finally:
        main.disable()
        threading.setprofile(None)
        with lock:
            stats = pstats.Stats(profiles[0])
            for prof in profiles[1:]:
                stats.add(prof)
        stats.dump_stats(str(out))
    return code


def print_profile(path: Path, top: int, pairs: int) -> None:
    stats = pstats.Stats(str(path))
    print(f"server profile ({pairs} timed pairs plus set-up and warm-up) in {path}:")
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


# ---- main --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3000, help="vouchers taken and settled")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent workers")
    parser.add_argument("--warmup", type=int, default=None, help="untimed pairs (default 64)")
    parser.add_argument(
        "--client",
        choices=sorted(CLIENTS),
        default="raw",
        help="the load generator: raw (default; little CPU per request) or httpx (much more)",
    )
    parser.add_argument("--dir", type=Path, default=None, help="where the temp databases go")
    parser.add_argument("--keep", action="store_true", help="keep the databases afterwards")
    parser.add_argument("--profile", type=Path, default=None, help="profile the server to FILE")
    parser.add_argument("--profile-clock", choices=["wall", "cpu"], default="wall")
    parser.add_argument("--top", type=int, default=40, help="functions shown with --profile")
    parser.add_argument("--profiled-server", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("serve", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.profiled_server is not None:
        return profiled_serve(args.profiled_server, args.profile_clock, args.serve)
    n: int = args.pairs
    concurrency: int = args.concurrency
    warmup: int = args.warmup if args.warmup is not None else min(64, n)
    if n < 1 or concurrency < 1 or warmup < 0:
        parser.error("--pairs and --concurrency must be positive, --warmup not negative")
    if funding_claims(n + warmup) > DAYS:
        parser.error("that many pairs would need members to have earned credits on too many days")
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="redeem-", dir=args.dir))
    profile = args.profile.resolve() if args.profile is not None else None
    try:
        return run(work, n, concurrency, warmup, args.client, profile, args.profile_clock, args.top)
    except CheckFailed as exc:
        print(f"check failed, the figures mean nothing: {exc}")
        return 1
    finally:
        if args.keep:
            print(f"databases kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def run(
    work: Path,
    n: int,
    concurrency: int,
    warmup: int,
    client: str,
    profile: Path | None,
    clock: str,
    top: int,
) -> int:
    load_before = round(os.getloadavg()[0], 2)  # other work on the machine skews every figure
    print(f"Redeem benchmark: {machine()}, Python {platform.python_version()}, ", end="")
    print(f"SQLite {sqlite3.sqlite_version}, databases in {work}, load average {load_before}")

    direct_s, direct = run_async(
        lambda: bench_direct(work / "direct.db", work / "direct.keys", n, concurrency, warmup)
    )
    direct_rate = n / direct_s
    d50, d99 = percentile(direct, 50), percentile(direct, 99)
    print(
        f"direct (LedgerStore.reserve + post, {concurrency} workers): {n} pairs in "
        f"{direct_s:.2f} s = {direct_rate:.0f} pairs/s; per pair p50 {d50:.2f} ms, "
        f"p99 {d99:.2f} ms"
    )

    admin = "bench-admin-" + os.urandom(16).hex()
    server = Server(work, admin, profile, clock)
    try:
        server.wait_healthy()
        print(f"server (timebank serve, uvicorn) on {server.base}, load generator {client}")
        got = run_async(lambda: bench_http(server, admin, n, concurrency, warmup, client))
    finally:
        exit_code = server.stop()
    if exit_code not in (0, -signal.SIGTERM):
        raise CheckFailed(f"the server exited {exit_code} on SIGTERM:\n{server.output()}")
    wal = server.db.with_name(server.db.name + "-wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise CheckFailed(f"the server left {wal} behind: it did not close its database")
    report = run_async(lambda: verify_database(sqlite_url(str(server.db), read_only=True)))
    print(f"server database after SIGTERM: {report.summary()}")
    if not report.ok or report.entries < 2 * (n + warmup):
        raise CheckFailed(f"the server's database does not hold the vouchers: {report.summary()}")

    print(f"set-up through the API (funding claims included): {got.setup_s:.2f} s")
    lat, elapsed = got.lat, got.pairs_s
    floor_rate = 2 * n / got.floor_s
    f50, f99 = percentile(got.floor, 50), percentile(got.floor, 99)
    print(
        f"floor  (GET /api/v1/health, {concurrency} workers): {2 * n} requests in "
        f"{got.floor_s:.2f} s = {floor_rate:.0f} requests/s; p50 {f50:.2f} ms, p99 {f99:.2f} ms"
    )
    pairs_rate = n / elapsed
    requests = lat.requests
    p50, p99 = percentile(requests, 50), percentile(requests, 99)
    reserve_p50, reserve_p99 = percentile(lat.reserve, 50), percentile(lat.reserve, 99)
    settle_p50, settle_p99 = percentile(lat.settle, 50), percentile(lat.settle, 99)
    pair_p50, pair_p99 = percentile(lat.pair, 50), percentile(lat.pair, 99)
    print(
        f"http   (reserve + settle, {concurrency} workers): {n} pairs in {elapsed:.2f} s = "
        f"{pairs_rate:.0f} pairs/s, {2 * n / elapsed:.0f} requests/s; per request p50 "
        f"{p50:.2f} ms, p99 {p99:.2f} ms, max {requests[-1]:.2f} ms"
    )
    print(
        f"       reserve p50 {reserve_p50:.2f} ms, p99 {reserve_p99:.2f} ms; settle p50 "
        f"{settle_p50:.2f} ms, p99 {settle_p99:.2f} ms; whole pair p50 {pair_p50:.2f} ms, "
        f"p99 {pair_p99:.2f} ms"
    )
    server_cpu, client_cpu = got.server_cpu_s / n * 1000, got.client_cpu_s / n * 1000
    print(
        f"       CPU per pair: server {server_cpu:.2f} ms, load generator {client_cpu:.2f} ms "
        f"({os.cpu_count()} cpus shared)"
    )
    ratio = pairs_rate / direct_rate
    meets = pairs_rate >= TARGET_PAIRS_PER_S and p99 < TARGET_P99_MS
    print(
        f"ratio pairs/s to direct pairs/s {ratio:.3f}; target {TARGET_PAIRS_PER_S} pairs/s "
        f"with p99 under {TARGET_P99_MS} ms: {'met' if meets else 'NOT met'}"
    )
    if profile is not None:
        print_profile(profile, top, n)
    result = {
        "benchmark": "redeem",
        "pairs_per_s": round(pairs_rate, 1),
        "requests_per_s": round(2 * n / elapsed, 1),
        "p50_ms": round(p50, 3),
        "p99_ms": round(p99, 3),
        "max_ms": round(requests[-1], 3),
        "reserve_p50_ms": round(reserve_p50, 3),
        "reserve_p99_ms": round(reserve_p99, 3),
        "settle_p50_ms": round(settle_p50, 3),
        "settle_p99_ms": round(settle_p99, 3),
        "pair_p50_ms": round(pair_p50, 3),
        "pair_p99_ms": round(pair_p99, 3),
        "direct_pairs_per_s": round(direct_rate, 1),
        "direct_p50_ms": round(d50, 3),
        "direct_p99_ms": round(d99, 3),
        "ratio": round(ratio, 4),
        "floor_requests_per_s": round(floor_rate, 1),
        "floor_p50_ms": round(f50, 3),
        "floor_p99_ms": round(f99, 3),
        "server_cpu_ms_per_pair": round(server_cpu, 3),
        "client_cpu_ms_per_pair": round(client_cpu, 3),
        "setup_s": round(got.setup_s, 2),
        "pairs": n,
        "warmup": warmup,
        "concurrency": concurrency,
        "client": client,
        "members": MEMBERS,
        "minutes_per_voucher": MINUTES,
        "target_pairs_per_s": TARGET_PAIRS_PER_S,
        "target_p99_ms": TARGET_P99_MS,
        "meets_target": meets,
        "profiled": profile is not None,
        "vouchers_settled": got.settled,
        "entries_verified": report.entries,
        "load_avg_before": load_before,
        "load_avg_after": round(os.getloadavg()[0], 2),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "code": code_version(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "httpx": httpx.__version__,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
