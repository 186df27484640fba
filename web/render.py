"""Jinja2 templates, one environment per language, and the response a page renders to."""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse

from .accounts import LANGUAGES
from .i18n import LANGUAGE_NAMES, translations


def hours(minutes: int) -> str:
    """Minutes as hours and minutes: 90 -> "1:30", -45 -> "-0:45"."""
    sign = "-" if minutes < 0 else ""
    h, m = divmod(abs(minutes), 60)
    return f"{sign}{h}:{m:02d}"


def when(time_us: int) -> str:
    """Microseconds since the epoch as UTC date and time to the minute."""
    return datetime.fromtimestamp(time_us / 1e6, UTC).strftime("%Y-%m-%d %H:%M UTC")


@cache
def environment(lang: str) -> Environment:
    assert lang in LANGUAGES, lang
    env = Environment(
        loader=PackageLoader("web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    env.filters["hours"] = hours
    env.filters["when"] = when
    env.filters["hex"] = lambda b: b.hex()
    env.globals["LANGUAGE_NAMES"] = LANGUAGE_NAMES
    env.globals["today"] = date.today
    return env


def page(lang: str, template: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    html = environment(lang).get_template(template).render(context)
    return HTMLResponse(html, status, headers={"Cache-Control": "no-store"})
