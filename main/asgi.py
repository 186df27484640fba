"""The ASGI application: routes, error handling, and the services opened for its lifetime."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from api.headers import SecurityHeaders, secured
from api.problems import Problem, handle_http, problem_response
from api.routes import api_mount
from ledger import KeyRing, LedgerError, from_us
from main.bootstrap import bootstrap
from main.jobs import Schedule, run_jobs
from timebank.service import TimeBank
from web import State, WebConfig, web_routes
from web.book import AccountBook

log = logging.getLogger("timebank.api")


@dataclass
class Config:
    url: str  # SQLAlchemy URL of the database
    key_dir: Path
    bootstrap_admin: str | None = None  # TIMEBANK_ADMIN_TOKEN: accepted as the deployment admin
    schedule_seconds: float = 300.0  # the scheduled jobs (main.jobs); 0 turns them off
    clock: Callable[[], int] | None = None  # µs since the epoch; tests pass a simulated one
    web: WebConfig = field(default_factory=WebConfig)  # the app's pages


def create_app(config: Config) -> Starlette:
    routes: list[BaseRoute] = [api_mount(version("timebank")), *web_routes()]

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[State]:
        """Every service opened (`bootstrap`), yielded as the lifespan state the API's
        handlers and the pages read from `request.state`; closed at shutdown."""
        app = await bootstrap(
            config.url,
            KeyRing.from_env(config.key_dir),
            clock=config.clock,
            bootstrap_admin=config.bootstrap_admin,
        )
        services = _app.state.services = app.services  # app.state: for tests and tools
        gc.freeze()  # what startup made lives as long as the app: the collector skips it
        job = None
        if config.schedule_seconds > 0:
            job = asyncio.create_task(_schedule(app.bank, app.book, config.schedule_seconds))
        try:
            yield {"services": services, "book": app.book, "web_config": config.web}
        finally:
            if job is not None:
                job.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await job
            await app.aclose()

    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: handle_http, Exception: _server_error},
        middleware=[Middleware(SecurityHeaders)],
    )


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, _route_of(request), exc_info=exc)
    response = problem_response(Problem(500, "the server failed; nothing was acknowledged"))
    return secured(response, request.url.scheme == "https")


def _route_of(request: Request) -> str:
    """The path with its ids shown as their names (the scheme's kept): a path may hold a card
    number or a voucher code, which have no place in a log. The query is never logged."""
    params = request.scope.get("path_params") or {}
    names = {str(v): "{" + k + "}" for k, v in params.items() if k != "scheme"}
    return "/".join(names.get(part, part) for part in request.url.path.split("/"))


async def _schedule(bank: TimeBank, book: AccountBook, every: float) -> None:
    """The scheduled jobs (`main.jobs`), then the app's old records forgotten
    (`forget_old`), every `every` seconds."""
    schedule = Schedule()
    while True:
        await asyncio.sleep(every)
        try:
            await run_jobs(bank, from_us(bank.clock()), schedule=schedule)
            await book.forget_old()
        except (LedgerError, OSError, SQLAlchemyError):
            log.exception("scheduled jobs failed; trying again next time")
