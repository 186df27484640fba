"""Every page of the app, and its static files."""

from __future__ import annotations

from pathlib import Path

from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from . import commissioner, coordinator, jobs, member, public, signin, till
from .visit import WebConfig

STATIC = Path(__file__).parent / "static"

__all__ = ["WebConfig", "web_routes"]


def web_routes() -> list[BaseRoute]:
    return [
        *signin.routes(),
        *member.routes(),
        *coordinator.routes(),
        *till.routes(),
        *commissioner.routes(),
        *public.routes(),
        *jobs.routes(),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
