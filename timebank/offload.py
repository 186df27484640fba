"""CPU-heavy pure work run in worker processes, so that one request never holds the event loop
that every other request (`/api/v1/health` included) waits on.

Pure Python holds the interpreter lock, so a thread would not do for parsing a CSV file or
rendering a report: `run(fn, *args)` sends `fn` and its arguments (picklable, by reference)
to a small process pool and awaits the answer. Work that releases the lock in C (Argon2
password hashing) goes to a thread instead, with `asyncio.to_thread`.

What goes in and comes back is pickled, and the pool's own thread unpickles the answer holding
the interpreter lock: so a worker should give back bytes (an answer's JSON, a page's HTML, a
file) or something small, never 50,000 dataclasses, whose unpickling held every request for
seconds (`api.imports`).
"""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

T = TypeVar("T")
WORKERS = 2  # one per core of the smallest machine we run on; each holds a module's imports

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None


def _executor() -> ProcessPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:  # forkserver: never a fork of a process running the writer's threads
            context = multiprocessing.get_context("forkserver")
            _pool = ProcessPoolExecutor(WORKERS, mp_context=context)  # lives as the process does
        return _pool


def _replace(broken: ProcessPoolExecutor) -> None:
    """Forget a pool one of whose workers died (killed, out of memory): the next call makes a
    new one, so one lost worker does not fail every later import and report."""
    global _pool
    with _lock:
        if _pool is broken:
            _pool = None
    broken.shutdown(wait=False, cancel_futures=True)


async def run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`fn(*args, **kwargs)` in a worker process; its exception, if it raises, is raised here.
    The work is pure, so if the worker dies under it, it is tried once more in a new pool."""
    work = functools.partial(fn, *args, **kwargs)
    loop = asyncio.get_running_loop()
    for attempt in (1, 2):
        pool = _executor()
        try:
            return await loop.run_in_executor(pool, work)
        except BrokenProcessPool:
            _replace(pool)
            if attempt == 2:
                raise
    raise AssertionError("unreachable")
