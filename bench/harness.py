"""What the benchmarks in bench/ share: figures, the machine and code they ran on, the server
they run against (`timebank serve` in a subprocess), the load generators that drive it, and
profiling the server.

The scripts run as `.venv/bin/python bench/<name>.py`; they put the repository root on
sys.path and import this module as `bench.harness` (the name mypy gives it too).
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
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, NamedTuple, Protocol, TypeVar, cast

import httptools
import httpx
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.pool import NullPool

from ledger import KeyRing, LedgerStore, Report, verify_database
from ledger.storage import sqlite_url

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")
R = TypeVar("R", bound="HttpRun")


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


def git_commit(where: Path) -> str:
    """The short commit checked out at `where` ('' when git cannot tell)."""
    try:
        return subprocess.run(
            ["git", "-C", str(where), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        return ""


def code_version(packages: Sequence[str]) -> str:
    """The git commit and a digest of the packages as run (they may hold uncommitted work)."""
    digest = hashlib.sha256()
    for package in packages:
        for path in sorted((ROOT / package).glob("*.py")):
            digest.update(f"{package}/{path.name}".encode() + b"\0" + path.read_bytes())
    return f"{git_commit(ROOT) or 'unknown'}+src:{digest.hexdigest()[:12]}"


def ledger_code_version() -> str:
    """The git commit and a digest of ledger/*.py as run (the ledger may hold uncommitted work)."""
    import ledger

    root = Path(ledger.__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return f"{git_commit(root) or 'unknown'}+ledger:{digest.hexdigest()[:12]}"


def header(title: str, work: Path) -> float:
    """Print the run's first line; returns the load average before it (other work on the
    machine skews every figure)."""
    load_before = round(os.getloadavg()[0], 2)
    print(f"{title}: {machine()}, Python {platform.python_version()}, ", end="")
    print(f"SQLite {sqlite3.sqlite_version}, databases in {work}, load average {load_before}")
    return load_before


def environment(load_before: float, code: str) -> dict[str, Any]:
    """The JSON result's closing keys: the load around the run, when, where and what ran."""
    return {
        "load_avg_before": load_before,
        "load_avg_after": round(os.getloadavg()[0], 2),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "code": code,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }


@contextlib.contextmanager
def work_dir(prefix: str, parent: Path | None, keep: bool) -> Iterator[Path]:
    """A fresh temp folder for the run's databases (in `parent` if given), removed afterwards
    unless `keep`."""
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield work
    finally:
        if keep:
            print(f"databases kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def run_async(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run on uvloop when it is installed (as uvicorn does for the server), else asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main())
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main())


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


# ---- the API benchmarks' time bank ----------------------------------------------------------

SCHEME = "bench"
ACTIVITY = {
    "code": "garden",
    "title": "Residents' garden",
    "form": "co-delivery",
    "subform": "co-performing",
    "contribution": "time-and-effort",
    "area": "housing",
    "mode": "collective",
    "relation": "supplements-staff",
    "proxy_code": "gardener",
}
COORDINATOR = "C1"
SCHEME_ADMIN = "A1"
MEMBERS = 64
ISSUER = "issuance"
TARGET_P99_MS = 100  # per request


def member(i: int) -> str:
    return f"M{i % MEMBERS:03d}"


def db_url(db: str) -> str:
    """A database's URL: `db` itself when it is one, else the SQLite file's."""
    return db if "://" in db else sqlite_url(db)


@contextlib.asynccontextmanager
async def direct_ledger(db: str, key_dir: Path) -> AsyncIterator[LedgerStore]:
    """A fresh LedgerStore at `db` (a SQLite file or a database URL) holding ledger SCHEME with
    its ISSUER account (no floor), for a direct phase; closed afterwards."""
    store = await LedgerStore.open(db_url(db), KeyRing(key_dir))
    try:
        await store.create_ledger(SCHEME, idempotency_key="setup:ledger")
        await store.open_account(
            SCHEME, ISSUER, kind="issuance", floor=None, idempotency_key="setup:issuer"
        )
        yield store
    finally:
        await store.close()


@dataclass
class People:
    """The Authorization headers of the scheme's coordinator and members."""

    coordinator: dict[str, str]
    members: list[dict[str, str]]  # member(i)'s at i


async def set_up_scheme(
    client: httpx.AsyncClient, admin: dict[str, str], scheme: dict[str, Any]
) -> People:
    """`scheme` (id SCHEME), a coordinator and MEMBERS members with a token each, and ACTIVITY
    (added by the coordinator)."""
    base = f"/api/v1/schemes/{SCHEME}"
    await expect(await client.post("/api/v1/schemes", json=scheme, headers=admin), 201)
    people = [(SCHEME_ADMIN, "scheme-admin"), (COORDINATOR, "coordinator")] + [
        (member(i), "member") for i in range(MEMBERS)
    ]
    tokens: dict[str, dict[str, str]] = {}
    for who, role in people:  # the admin makes the scheme admin's token, who makes the others
        body = {"id": who, "display_name": f"Bench {who}", "roles": [role]}
        await expect(await client.post(f"{base}/members", json=body, headers=admin), 201)
        maker = tokens.get(SCHEME_ADMIN, admin)
        grant = {"role": role, "member": who}
        made = await expect(await client.post(f"{base}/tokens", json=grant, headers=maker), 201)
        tokens[who] = bearer(str(made["token"]))
    coordinator = tokens[COORDINATOR]
    await expect(await client.post(f"{base}/activities", json=ACTIVITY, headers=coordinator), 201)
    return People(coordinator, [tokens[member(i)] for i in range(MEMBERS)])


# ---- where the databases go: SQLite files, or a PostgreSQL server ----------------------------


class Databases:
    """A run's databases: SQLite files in `work` (no `server_url`), or fresh databases
    (bench_<tag>_<random>) created on the PostgreSQL server at `server_url` through a sync
    psycopg AUTOCOMMIT connection and dropped by close() unless `keep`."""

    def __init__(self, work: Path, server_url: str | None, keep: bool) -> None:
        self.work, self.keep = work, keep
        self.server = make_url(server_url) if server_url is not None else None
        self.created: list[str] = []
        self.version = ""  # the PostgreSQL server's
        if self.server is not None:
            with self._admin() as conn:
                self.version = str(conn.execute(text("SHOW server_version")).scalar())

    @property
    def backend(self) -> str:
        return "sqlite" if self.server is None else "postgresql"

    @contextlib.contextmanager
    def _admin(self) -> Iterator[Any]:
        assert self.server is not None
        engine = create_engine(
            self.server.set(drivername="postgresql+psycopg"),
            isolation_level="AUTOCOMMIT",
            poolclass=NullPool,
        )
        try:
            with engine.connect() as conn:
                yield conn
        finally:
            engine.dispose()

    def fresh(self, tag: str) -> str:
        """A new, empty database: work/<tag>.db, or a server URL (asyncpg, for the service)."""
        if self.server is None:
            return str(self.work / f"{tag}.db")
        name = f"bench_{tag}_{os.urandom(5).hex()}"
        with self._admin() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        url = self.server.set(drivername="postgresql+asyncpg", database=name)
        return url.render_as_string(hide_password=False)

    def close(self) -> None:
        if not self.created:
            return
        if self.keep:
            print(f"databases kept on the server: {', '.join(self.created)}", file=sys.stderr)
            return
        with self._admin() as conn:
            for name in self.created:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.created.clear()


@contextlib.contextmanager
def postgres_cluster(keep: bool) -> Iterator[str]:
    """A throw-away PostgreSQL cluster (`scripts/postgres start` in a fresh temp folder, on
    $TIMEBANK_PG_PORT or the first free port from 55432); yields its URL, stops it afterwards and
    removes its folder unless `keep`."""
    where = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    script = str(ROOT / "scripts" / "postgres")
    started = subprocess.run(
        [script, "start", str(where)], capture_output=True, text=True, check=False
    )
    lines = started.stdout.strip().splitlines()
    try:
        if started.returncode != 0 or not lines:
            raise SystemExit(
                f"scripts/postgres start {where} failed ({started.returncode}): "
                f"{started.stdout}{started.stderr}"
            )
        print(f"PostgreSQL cluster in {where}: {lines[-1]}")
        yield lines[-1]
    finally:
        subprocess.run([script, "stop", str(where)], capture_output=True, check=False)
        if keep:
            print(f"PostgreSQL cluster kept in {where} (stopped)", file=sys.stderr)
        else:
            shutil.rmtree(where, ignore_errors=True)


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


class CpuTimer:
    """CPU seconds this process and others (the servers) have used since it was made."""

    def __init__(self, pids: Sequence[int]) -> None:
        self.pids = list(pids)
        self.client0, self.server0 = time.process_time(), self._servers()

    def _servers(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids)

    def read(self) -> tuple[float, float]:
        """(this process's, the others' together) CPU seconds so far."""
        return time.process_time() - self.client0, self._servers() - self.server0


class Server:
    """`timebank serve --db DB` (a SQLite file or a database URL) in a subprocess on a free
    loopback port; its output goes to `log`. With `profile`, the server runs under
    `script --profiled-server` (see profiled_serve). `key_dir` is its TIMEBANK_KEY_DIR (by
    default none: <db>.keys beside a SQLite file)."""

    def __init__(
        self,
        db: str,
        log: Path,
        admin: str,
        profile: Path | None,
        clock: str,
        script: str,
        key_dir: Path | None = None,
    ) -> None:
        self.db = db
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        serve = ["serve", "--db", db, "--port", str(self.port)]
        serve += ["--schedule-seconds", "0"]
        if profile is None:
            argv = [sys.executable, "-m", "main.cli", *serve]
        else:  # the benchmark script, as a wrapper that profiles the server (see profiled_serve)
            argv = [sys.executable, script, "--profiled-server", str(profile)]
            argv += ["--profile-clock", clock, "--", *serve]
        self.signalled = False
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIMEBANK_")}
        env["TIMEBANK_ADMIN_TOKEN"] = admin
        if key_dir is not None:
            env["TIMEBANK_KEY_DIR"] = str(key_dir)
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

    def terminate(self) -> None:
        """SIGTERM, once (a second one would make uvicorn force its exit)."""
        if self.proc.poll() is None and not self.signalled:
            self.signalled = True
            self.proc.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then wait; the exit code (-9 when it had to be killed). After a graceful
        shutdown uvicorn raises the signal again, so a clean exit reads -SIGTERM."""
        if self.proc.poll() is None:
            self.terminate()
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


def against_server(
    work: Path,
    options: HttpOptions,
    databases: Databases,
    bench: Callable[[list[Server], str], Coroutine[Any, Any, T]],
) -> tuple[T, Report]:
    """Start options.processes servers (with a fresh admin token) on one fresh database, all
    sharing one key directory on PostgreSQL: the first alone (it creates the schema), then the
    others. Run `bench(servers, admin_token)` against them, stop them with SIGTERM and check
    they shut down cleanly; returns what `bench` did and the verification of the database."""
    admin = "bench-admin-" + os.urandom(16).hex()
    db = databases.fresh("bench")
    key_dir = None if databases.server is None else work / "keys"
    servers: list[Server] = []

    def start(k: int) -> Server:
        log = work / ("server.log" if k == 0 else f"server-{k}.log")
        profile = options.profile if k == 0 else None  # one profile: the first process's
        server = Server(db, log, admin, profile, options.clock, options.script, key_dir)
        servers.append(server)
        return server

    exit_codes: list[int] = []
    try:
        start(0).wait_healthy()
        for server in [start(k) for k in range(1, options.processes)]:
            server.wait_healthy()
        load = options.client
        where = ", ".join(s.base for s in servers)
        what = "server" if len(servers) == 1 else f"{len(servers)} server processes"
        print(f"{what} (timebank serve, uvicorn) on {where}, load generator {load}")
        got = run_async(lambda: bench(servers, admin))
    finally:
        for server in servers:  # SIGTERM to all, then wait for each
            server.terminate()
        exit_codes = [server.stop() for server in servers]
    for server, exit_code in zip(servers, exit_codes, strict=True):
        if exit_code not in (0, -signal.SIGTERM):
            raise CheckFailed(f"a server exited {exit_code} on SIGTERM:\n{server.output()}")
    if databases.server is None:
        wal = Path(db + "-wal")
        if wal.exists() and wal.stat().st_size > 0:
            raise CheckFailed(f"the server left {wal} behind: it did not close its database")
        report = run_async(lambda: verify_database(sqlite_url(db, read_only=True)))
    else:
        report = run_async(lambda: verify_database(db))
    print(f"server database after SIGTERM: {report.summary()}")
    return got, report


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


class Spread:
    """One load client (of CLIENTS[kind], `concurrency` connections) per server process:
    send() goes to them round-robin, on(k) is process k mod N's."""

    def __init__(self, kind: str, servers: Sequence[Server], concurrency: int) -> None:
        self.clients = [CLIENTS[kind](server.base, concurrency) for server in servers]
        self.turn = itertools.count()

    def on(self, k: int) -> LoadClient:
        return self.clients[k % len(self.clients)]

    async def send(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[int, bytes]:
        return await self.on(next(self.turn)).send(method, path, headers, body)

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()


async def health_floor(
    load: LoadClient, n: int, concurrency: int, warmup: int
) -> tuple[float, list[float]]:
    """The HTTP floor: `warmup` untimed, then n timed GET /api/v1/health by `concurrency`
    workers; (seconds, sorted ms latencies)."""
    floor: list[float] = []

    def health(timed: bool) -> Callable[[int], Awaitable[None]]:
        async def one(_i: int) -> None:
            t0 = time.perf_counter()
            got = await load.send("GET", "/api/v1/health", {}, None)
            if timed:
                floor.append((time.perf_counter() - t0) * 1000)
            reply_json("GET", "/api/v1/health", got, 200)

        return one

    await closed_loop(warmup, concurrency, health(False))
    floor_s = await closed_loop(n, concurrency, health(True))
    floor.sort()
    return floor_s, floor


def reply_json(method: str, path: str, got: tuple[int, bytes], status: int) -> dict[str, Any]:
    if got[0] != status:
        raise CheckFailed(f"{method} {path}: {got[0]} (wanted {status}) {got[1][:500]!r}")
    body = json.loads(got[1])
    assert isinstance(body, dict)
    return body


@dataclass(frozen=True)
class HttpOptions:
    """How an HTTP benchmark runs, from its command line."""

    n: int  # timed operations (claims, pairs)
    concurrency: int
    warmup: int
    client: str  # a key of CLIENTS
    profile: Path | None  # profile the server to this file
    clock: str  # the profile's clock: wall or cpu
    top: int  # functions printed from the profile
    script: str  # the benchmark script: it wraps the server when profiling
    database_url: str | None = None  # a PostgreSQL server (None: SQLite files)
    processes: int = 1  # server processes on the one database
    keep: bool = False  # keep the databases afterwards


def http_main(
    argv: list[str] | None,
    doc: str,
    spec: Spec,
    size: tuple[int, str],
    client_help: str,
    too_many: Callable[[int], str | None],
    script: str,
    run: Callable[[Path, HttpOptions], int],
) -> int:
    """The HTTP benchmarks' main (its description the first line of `doc`): --<unit>s (default
    and help in `size`), --concurrency, --warmup and the shared options; checks them
    (`too_many(n + warmup)` says what is wrong, if anything) and calls `run` in a fresh work
    folder; a failed check exits 1. As `--profiled-server`, runs the server under cProfile
    instead (see Server)."""
    flag = f"{spec.unit}s"
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument(f"--{flag}", type=int, default=size[0], help=size[1])
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent workers")
    parser.add_argument("--warmup", type=int, default=None, help=f"untimed {flag} (default 64)")
    parser.add_argument("--client", choices=sorted(CLIENTS), default="raw", help=client_help)
    parser.add_argument("--dir", type=Path, default=None, help="where the temp databases go")
    parser.add_argument("--keep", action="store_true", help="keep the databases afterwards")
    parser.add_argument(
        "--database-url",
        default=None,
        help="a PostgreSQL server URL (postgresql+asyncpg://USER@HOST:PORT/DB): the run creates "
        "fresh databases of its own there and drops them afterwards (default: SQLite files)",
    )
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="start a throw-away PostgreSQL cluster (scripts/postgres, on $TIMEBANK_PG_PORT or "
        "the first free port from 55432) for the run, and stop it afterwards",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="server processes on the one database, requests spread round-robin (more than 1 "
        "needs PostgreSQL)",
    )
    parser.add_argument("--profile", type=Path, default=None, help="profile the server to FILE")
    parser.add_argument("--profile-clock", choices=["wall", "cpu"], default="wall")
    parser.add_argument("--top", type=int, default=40, help="functions shown with --profile")
    parser.add_argument("--profiled-server", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("serve", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.profiled_server is not None:
        return profiled_serve(args.profiled_server, args.profile_clock, args.serve)
    n: int = getattr(args, flag)
    concurrency: int = args.concurrency
    warmup: int = args.warmup if args.warmup is not None else min(64, n)
    if n < 1 or concurrency < 1 or warmup < 0:
        parser.error(f"--{flag} and --concurrency must be positive, --warmup not negative")
    if (problem := too_many(n + warmup)) is not None:
        parser.error(problem)
    processes: int = args.processes
    if processes < 1:
        parser.error("--processes must be positive")
    if args.postgres and args.database_url is not None:
        parser.error("--postgres starts a cluster of its own: give it or --database-url, not both")
    postgres = args.postgres or args.database_url is not None
    if processes > 1 and not postgres:
        parser.error(
            "--processes above 1 needs PostgreSQL (--database-url URL or --postgres): SQLite is "
            "one server process by design (a second would only queue for the file's write lock)"
        )
    with contextlib.ExitStack() as stack:
        url: str | None = args.database_url
        if args.postgres:
            url = stack.enter_context(postgres_cluster(args.keep))
        work = stack.enter_context(work_dir(spec.name.replace("_", "-") + "-", args.dir, args.keep))
        profile = args.profile.resolve() if args.profile is not None else None
        options = HttpOptions(
            n,
            concurrency,
            warmup,
            args.client,
            profile,
            args.profile_clock,
            args.top,
            script,
            url,
            processes,
            args.keep,
        )
        try:
            return run(work, options)
        except CheckFailed as exc:
            print(f"check failed, the figures mean nothing: {exc}")
            return 1
    raise AssertionError("unreachable")


async def timed_run(
    options: HttpOptions,
    servers: Sequence[Server],
    phase: Callable[[int, bool], Callable[[int], Awaitable[None]]],
) -> tuple[float, float, float]:
    """`phase(offset, timed)` makes what a worker does with index i (operation offset + i):
    options.warmup operations untimed, then options.n timed. Returns the timed ones' seconds
    and the CPU seconds this process and the server processes (together) used over them."""
    await closed_loop(options.warmup, options.concurrency, phase(0, False))
    cpu = CpuTimer([server.proc.pid for server in servers])
    elapsed = await closed_loop(options.n, options.concurrency, phase(options.warmup, True))
    client_cpu, server_cpu = cpu.read()
    return elapsed, client_cpu, server_cpu


@dataclass
class Latencies:
    """Per-request latencies in ms of operations made of two requests (a claim: create, then
    confirm; a voucher: reserve, then settle), kept sorted once the run is over."""

    first: list[float] = field(default_factory=list)
    second: list[float] = field(default_factory=list)
    whole: list[float] = field(default_factory=list)  # both requests, one worker's turn

    def sort(self) -> None:
        self.first.sort()
        self.second.sort()
        self.whole.sort()


class Request(NamedTuple):
    """A request for a load generator, and the status its reply must have."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes | None
    status: int


async def two_requests(
    load: LoadClient,
    first: Request,
    then: Callable[[dict[str, Any]], Request],
    lat: Latencies | None,
    then_load: LoadClient | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One operation: `first`, then the request `then` makes of its reply's body (it may raise
    CheckFailed), through `then_load` if given (another server process). Returns both replies'
    bodies; records the latencies in `lat` if given."""
    t0 = time.perf_counter()
    got = await load.send(first.method, first.path, first.headers, first.body)
    t1 = time.perf_counter()
    made = reply_json(first.method, first.path, got, first.status)
    second = then(made)
    t2 = time.perf_counter()
    got = await (then_load or load).send(second.method, second.path, second.headers, second.body)
    t3 = time.perf_counter()
    done = reply_json(second.method, second.path, got, second.status)
    if lat is not None:
        lat.first.append((t1 - t0) * 1000)
        lat.second.append((t3 - t2) * 1000)
        lat.whole.append((t3 - t0) * 1000)
    return made, done


@dataclass
class HttpRun:
    """What an HTTP benchmark's timed phases measured."""

    floor_s: float  # GET /api/v1/health, 2 x n requests
    floor: list[float]  # their sorted latencies, ms
    elapsed: float  # the n timed operations
    lat: Latencies
    client_cpu_s: float  # this process, over the timed operations
    server_cpu_s: float  # the server processes together, over the timed operations


@dataclass(frozen=True)
class Spec:
    """What an HTTP benchmark is called, what it measures and what it aims at."""

    name: str  # the JSON result's "benchmark"
    title: str  # the first line's: "API claims benchmark"
    packages: tuple[str, ...]  # the code it measures, for code_version
    unit: str  # one timed operation: "claim"
    kinds: tuple[str, str]  # its two requests: ("create", "confirm")
    what: str  # what the server's database must hold: "claims"
    entries: int  # ledger entries one operation appends
    target_rate: int  # operations/s wanted, with a p99 under TARGET_P99_MS
    direct: str  # what the direct phase counts: "appends"
    direct_call: str  # what it calls: "LedgerStore.transfer"
    direct_latency: str  # what its latencies are of: "latency" (per append), "per pair"


def print_floor(
    floor_s: float, floor: list[float], requests: int, concurrency: int
) -> dict[str, float]:
    """Print the HTTP floor's figures (its latencies sorted); returns them for the JSON result."""
    rate = requests / floor_s
    f50, f99 = percentile(floor, 50), percentile(floor, 99)
    print(
        f"floor  (GET /api/v1/health, {concurrency} workers): {requests} requests in "
        f"{floor_s:.2f} s = {rate:.0f} requests/s; p50 {f50:.2f} ms, p99 {f99:.2f} ms"
    )
    return {
        "floor_requests_per_s": round(rate, 1),
        "floor_p50_ms": round(f50, 3),
        "floor_p99_ms": round(f99, 3),
    }


DirectBench = Callable[[str, Path, int, int, int], Coroutine[Any, Any, tuple[float, list[float]]]]


def direct_phase(
    work: Path, options: HttpOptions, spec: Spec, databases: Databases, bench: DirectBench
) -> tuple[float, list[float]]:
    """Run `bench(db, key_dir, n, concurrency, warmup)` (the ledger alone, on a fresh database:
    a SQLite file in `work` or a database on the PostgreSQL server) and print its figures;
    returns (operations/s, sorted ms latencies)."""
    n, concurrency, warmup = options.n, options.concurrency, options.warmup
    db = databases.fresh("direct")
    seconds, latencies = run_async(lambda: bench(db, work / "direct.keys", n, concurrency, warmup))
    rate = n / seconds
    d50, d99 = percentile(latencies, 50), percentile(latencies, 99)
    print(
        f"direct ({spec.direct_call}, {concurrency} workers): {n} {spec.direct} in {seconds:.2f} "
        f"s = {rate:.0f} {spec.direct}/s; {spec.direct_latency} p50 {d50:.2f} ms, p99 {d99:.2f} ms"
    )
    return rate, latencies


@dataclass(frozen=True)
class Measured(Generic[R]):
    """An HTTP benchmark's phases, done and checked."""

    load_before: float  # the load average before
    direct_rate: float  # the direct phase's operations/s
    direct: list[float]  # and its sorted ms latencies
    got: R  # the HTTP phases'
    report: Report  # the server's database, verified after SIGTERM
    backend: str = "sqlite"  # or "postgresql"
    processes: int = 1  # server processes
    postgresql: str = ""  # the PostgreSQL server's version
    notes: tuple[str, ...] = ()  # anything the figures need read with


def measure(
    work: Path,
    options: HttpOptions,
    spec: Spec,
    bench_direct: DirectBench,
    bench_http: Callable[[list[Server], str, HttpOptions], Coroutine[Any, Any, R]],
) -> Measured[R]:
    """The first line, the direct phase, then the HTTP phases against options.processes
    servers that must shut down cleanly and leave every operation's entries in a valid
    database. With options.database_url, every database is a fresh one on that PostgreSQL
    server, dropped afterwards unless options.keep."""
    load_before = header(spec.title, work)
    databases = Databases(work, options.database_url, options.keep)
    notes: list[str] = []
    try:
        if databases.server is not None:
            print(
                f"PostgreSQL {databases.version} at "
                f"{databases.server.render_as_string(hide_password=True)}: fresh databases on "
                f"it, {options.processes} server process(es) on one"
            )
            notes.append(
                "direct: the ledger alone on another fresh database on the same PostgreSQL server"
            )
        if options.profile is not None and options.processes > 1:
            notes.append("the profile is of the first server process only")
        direct_rate, direct = direct_phase(work, options, spec, databases, bench_direct)
        got, report = against_server(
            work, options, databases, lambda servers, admin: bench_http(servers, admin, options)
        )
    finally:
        databases.close()
    if not report.ok or report.entries < spec.entries * (options.n + options.warmup):
        raise CheckFailed(
            f"the server's database does not hold the {spec.what}: {report.summary()}"
        )
    return Measured(
        load_before,
        direct_rate,
        direct,
        got,
        report,
        databases.backend,
        options.processes,
        databases.version,
        tuple(notes),
    )


def emit(figures: dict[str, Any], keys: dict[str, Any], measured: Measured[R], spec: Spec) -> int:
    """Print the JSON result, the last line: `figures` (see http_figures), the benchmark's own
    `keys`, then the entries verified, the environment and httpx's version. Returns 0."""
    result = {
        **figures,
        **keys,
        "backend": measured.backend,
        "processes": measured.processes,
        **({"postgresql": measured.postgresql} if measured.postgresql else {}),
        **({"notes": list(measured.notes)} if measured.notes else {}),
        "entries_verified": measured.report.entries,
        **environment(measured.load_before, code_version(spec.packages)),
        "httpx": httpx.__version__,
    }
    print(json.dumps(result))
    return 0


def http_figures(
    options: HttpOptions, spec: Spec, got: HttpRun, direct_rate: float, direct: list[float]
) -> tuple[dict[str, Any], bool]:
    """Print an HTTP benchmark's figures after the direct phase's (`direct_rate` and its sorted
    ms latencies `direct`): the floor, then options.n operations, each two requests, against
    the direct phase and the target. Returns the JSON result's first keys (benchmark to CPU
    per operation) and whether the target was met."""
    n, concurrency = options.n, options.concurrency
    unit, kinds, direct_unit, target_rate = spec.unit, spec.kinds, spec.direct, spec.target_rate
    floor_json = print_floor(got.floor_s, got.floor, 2 * n, concurrency)
    lat, elapsed, cpu_s = got.lat, got.elapsed, (got.server_cpu_s, got.client_cpu_s)
    first, second, whole = lat.first, lat.second, lat.whole
    requests = sorted(first + second)
    rate = n / elapsed
    p50, p99 = percentile(requests, 50), percentile(requests, 99)
    a50, a99 = percentile(first, 50), percentile(first, 99)
    b50, b99 = percentile(second, 50), percentile(second, 99)
    w50, w99 = percentile(whole, 50), percentile(whole, 99)
    print(
        f"http   ({kinds[0]} + {kinds[1]}, {concurrency} workers): {n} {unit}s in {elapsed:.2f} "
        f"s = {rate:.0f} {unit}s/s, {2 * n / elapsed:.0f} requests/s; per request p50 "
        f"{p50:.2f} ms, p99 {p99:.2f} ms, max {requests[-1]:.2f} ms"
    )
    print(
        f"       {kinds[0]} p50 {a50:.2f} ms, p99 {a99:.2f} ms; {kinds[1]} p50 {b50:.2f} ms, "
        f"p99 {b99:.2f} ms; whole {unit} p50 {w50:.2f} ms, p99 {w99:.2f} ms"
    )
    server_cpu, client_cpu = cpu_s[0] / n * 1000, cpu_s[1] / n * 1000
    print(
        f"       CPU per {unit}: server {server_cpu:.2f} ms, load generator {client_cpu:.2f} ms "
        f"({os.cpu_count()} cpus shared)"
    )
    ratio = rate / direct_rate
    meets = rate >= target_rate and p99 < TARGET_P99_MS
    print(
        f"ratio {unit}s/s to direct {direct_unit}/s {ratio:.3f}; target {target_rate} {unit}s/s "
        f"with p99 under {TARGET_P99_MS} ms: {'met' if meets else 'NOT met'}"
    )
    figures = {
        "benchmark": spec.name,
        f"{unit}s_per_s": round(rate, 1),
        "requests_per_s": round(2 * n / elapsed, 1),
        "p50_ms": round(p50, 3),
        "p99_ms": round(p99, 3),
        "max_ms": round(requests[-1], 3),
        f"{kinds[0]}_p50_ms": round(a50, 3),
        f"{kinds[0]}_p99_ms": round(a99, 3),
        f"{kinds[1]}_p50_ms": round(b50, 3),
        f"{kinds[1]}_p99_ms": round(b99, 3),
        f"{unit}_p50_ms": round(w50, 3),
        f"{unit}_p99_ms": round(w99, 3),
        f"direct_{direct_unit}_per_s": round(direct_rate, 1),
        "direct_p50_ms": round(percentile(direct, 50), 3),
        "direct_p99_ms": round(percentile(direct, 99), 3),
        "ratio": round(ratio, 4),
        **floor_json,
        f"server_cpu_ms_per_{unit}": round(server_cpu, 3),
        f"client_cpu_ms_per_{unit}": round(client_cpu, 3),
    }
    return figures, meets


# ---- profiling the server ----------------------------------------------------------------------


def profiled_serve(out: Path, clock: str, argv: list[str]) -> int:
    """Run `timebank <argv>` with a cProfile on every thread; merge and dump them at exit."""
    from main import cli

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


def print_profile(path: Path, top: int, what: str) -> None:
    """The top functions of the server's profile; `what` says what it covers."""
    stats = pstats.Stats(str(path))
    print(f"server profile ({what}) in {path}:")
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
