"""English and Welsh (Cymraeg): gettext catalogues read from `locale/*/LC_MESSAGES/messages.po`
at startup (no compiled files in the tree), and the choice of language for a request."""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from .accounts import LANGUAGES

LOCALE_DIR = Path(__file__).parent / "locale"
DEFAULT = "en"
LANGUAGE_NAMES = {"en": "English", "cy": "Cymraeg"}


@cache
def translations(lang: str) -> NullTranslations:
    """The catalogue for `lang`; English is the source language and needs none."""
    po = LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
    if lang == DEFAULT or not po.exists():
        return NullTranslations()
    with po.open("rb") as f:
        catalog = read_po(f, locale=lang)
    mo = io.BytesIO()
    write_mo(mo, catalog)
    mo.seek(0)
    return Translations(mo)


def choose(account_lang: str, cookie_lang: str, accept_language: str) -> str:
    """The account's choice, else the visitor's (a cookie), else the browser's, else English."""
    for lang in (account_lang, cookie_lang):
        if lang in LANGUAGES:
            return lang
    best, best_q = DEFAULT, 0.0
    for part in accept_language.split(",")[:20]:
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if primary in LANGUAGES and q > best_q:
            best, best_q = primary, q
    return best
