"""The worker pool for CPU-heavy work: runs elsewhere, passes errors back, survives a worker's
death."""

from __future__ import annotations

import os
from concurrent.futures.process import BrokenProcessPool

import pytest

from timebank import offload


def _double(n: int) -> int:
    return 2 * n


def _fail(message: str) -> None:
    raise ValueError(message)


def _die() -> None:
    os._exit(9)  # as a worker killed by the kernel would


async def test_work_runs_in_another_process_and_its_error_comes_back() -> None:
    assert await offload.run(os.getpid) != os.getpid()
    assert await offload.run(_double, n=21) == 42
    with pytest.raises(ValueError, match="bad line"):
        await offload.run(_fail, "bad line")


async def test_a_dead_worker_does_not_fail_the_work_that_comes_after() -> None:
    with pytest.raises(BrokenProcessPool):
        await offload.run(_die)
    assert await offload.run(_double, 2) == 4  # a new pool
