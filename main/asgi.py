"""The ASGI application: routes, error handling, and the services opened for its lifetime."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
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
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from api import problem_types
from api.endpoints import Services
from api.headers import DOCUMENT_CSP, SecurityHeaders, secured
from api.openapi import docs_page, document
from api.problems import Problem, handle_http, problem_response
from api.routes import ENDPOINTS
from identity.tokens import TokenBook
from ledger import KeyRing, LedgerError, LedgerStore, from_us
from main.jobs import Schedule, run_jobs
from partners.service import Partners
from timebank.service import TimeBank
from web import Box, WebConfig, web_routes
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
    box = Box()  # holds the services between startup and shutdown; routes read it per request
    box.config = config.web
    doc = document(ENDPOINTS, version("timebank"))
    routes: list[BaseRoute] = [  # health first: load balancers ask it most often
        Route(
            "/api/v1/health",
            lambda _r: Response('{"status":"ok"}', 200, media_type="application/json"),
        ),
        *(ep.route_in(box) for ep in ENDPOINTS),
        Route(
            "/api/v1/openapi.json",
            lambda _r: Response(json.dumps(doc), 200, media_type="application/json"),
        ),
        Route(
            "/api/v1/docs",
            lambda _r: HTMLResponse(
                docs_page(doc), headers={"content-security-policy": DOCUMENT_CSP}
            ),
        ),
        *problem_types.ROUTES,
        *web_routes(box),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        store = await LedgerStore.open(
            config.url, KeyRing.from_env(config.key_dir), clock=config.clock
        )
        bank = await TimeBank.open(config.url, store, config.clock)
        tokens = await TokenBook.open(config.url, bank.clock, config.bootstrap_admin)
        partners = Partners(bank)
        await partners.create_tables()
        box.book = await AccountBook.open(config.url, bank.clock)
        box.services = _app.state.services = Services(
            bank, tokens, partners, on_erase=(box.book.disable_member,)
        )
        gc.freeze()  # what startup made lives as long as the app: the collector skips it
        job = None
        if config.schedule_seconds > 0:
            job = asyncio.create_task(_schedule(bank, box.book, config.schedule_seconds))
        try:
            yield
        finally:
            if job is not None:
                job.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await job
            await box.book.close()
            await tokens.close()
            await bank.close()
            await store.close()

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
