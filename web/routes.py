"""Every page of the app, and its static files."""

from __future__ import annotations

from pathlib import Path

from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from . import commissioner, coordinator, jobs, member, public, signin, till
from .visit import Box, WebConfig

STATIC = Path(__file__).parent / "static"

__all__ = ["WebConfig", "web_routes"]


def web_routes(box: Box) -> list[BaseRoute]:
    return [
        *signin.routes(box),
        *member.routes(box),
        *coordinator.routes(box),
        *till.routes(box),
        *commissioner.routes(box),
        *public.routes(box),
        *jobs.routes(box),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
