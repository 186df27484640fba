"""Long work (a big report, an import) run in the background, so no page waits on it.

A job's row (its progress, then its result) lives in the database, so whichever service process
a browser reaches can show it; the work runs as a task in the process that started it. Its page
refreshes itself every two seconds without JavaScript (`<meta http-equiv=refresh>`) until done.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute

from api.problems import Problem, from_exception
from identity.auth import ApiRole

from .book import AccountBook
from .visit import Visit, page

log = logging.getLogger("timebank.web.jobs")
STALE_US = 30 * 60 * 1_000_000  # a job still "running" after 30 minutes died with its process
_tasks: set[asyncio.Task[None]] = set()  # held, so running jobs are not garbage-collected


@dataclass
class Progress:
    """Handed to a job's work: report how far it has got."""

    book: AccountBook
    job_id: str

    async def __call__(self, done: int, total: int, message: str = "") -> None:
        await self.book.update_job(self.job_id, done=done, total=total, message=message)


Work = Callable[[Progress], Awaitable[tuple[bytes, str]]]  # -> (result, message)


async def start(v: Visit, kind: str, filename: str, media_type: str, work: Work) -> str:
    """Start `work` in the background for this visitor; returns the job's page URL."""
    assert v.account is not None
    job_id = uuid.uuid4().hex
    await v.book.start_job(
        {
            "id": job_id,
            "login": v.account.login,
            "scheme": v.scheme,
            "kind": kind,
            "state": "running",
            "done": 0,
            "total": 0,
            "message": "",
            "result": None,
            "media_type": media_type,
            "filename": filename,
            "created_us": v.services.bank.clock(),
        }
    )
    task = asyncio.create_task(_run(v.book, job_id, work))
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    return f"/s/{v.scheme}/jobs/{job_id}"


async def _run(book: AccountBook, job_id: str, work: Work) -> None:
    try:
        result, message = await work(Progress(book, job_id))
    except Exception as exc:
        try:
            detail = from_exception(exc).detail
        except Exception:
            log.exception("job %s failed", job_id)
            detail = "the job failed; nothing was written"
        await book.update_job(job_id, state="failed", message=detail)
        return
    await book.update_job(job_id, state="done", result=result, message=message)


async def _visible(v: Visit) -> dict[str, Any]:
    job = await v.book.job(v.request.path_params["job"])
    assert v.account is not None
    if job is None or job["login"] != v.account.login or job["scheme"] != v.scheme:
        raise Problem(404, v._("No such job."), field="job")
    if job["state"] == "running" and v.services.bank.clock() - int(job["created_us"]) > STALE_US:
        job["state"], job["message"] = "failed", v._("The job stopped before it finished.")
    return job


async def job_page(v: Visit) -> Response:
    job = await _visible(v)
    return v.render("job.html", job=job)


async def job_download(v: Visit) -> Response:
    job = await _visible(v)
    if job["state"] != "done" or not job["result"]:
        raise Problem(409, v._("The job has not finished."), field="job")
    name = str(job["filename"])
    return Response(
        bytes(job["result"]),
        200,
        media_type=str(job["media_type"]),
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )


def routes() -> list[BaseRoute]:
    anyone = frozenset(ApiRole)
    return [
        page("/s/{scheme}/jobs/{job}", job_page, roles=anyone),
        page("/s/{scheme}/jobs/{job}/download", job_download, roles=anyone),
    ]
