"""Pages for the till role (to be built)."""

from __future__ import annotations

from starlette.routing import BaseRoute

from .visit import Box


def routes(box: Box) -> list[BaseRoute]:
    return []
