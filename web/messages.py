"""The app's translatable messages: extracted from the templates and the Python modules, and
the Welsh catalogue kept in step with them (`scripts/translations`). Used by the tests, which
require every message to be translated."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from .i18n import LOCALE_DIR

WEB = Path(__file__).parent
METHODS = [("templates/**.html", "jinja2.ext:babel_extract"), ("**.py", "python")]
OPTIONS = {"templates/**.html": {"extensions": "jinja2.ext.i18n", "trimmed": "true"}}
# N_ and N_plural mark the domain's refusals that `web.refusals` translates when shown.
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None, "N_plural": (1, 2)}
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def extract() -> Catalog:
    """Every message the app can show, with where it appears."""
    catalog = Catalog(project="timebank", locale=None)
    found = extract_from_dir(WEB, METHODS, OPTIONS, KEYWORDS, strip_comment_tags=True)
    for filename, lineno, message, comments, context in found:
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


def po_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"


def read(lang: str) -> Catalog:
    with po_path(lang).open("rb") as f:
        return read_po(f, locale=lang)


def update(lang: str) -> Catalog:
    """Bring `lang`'s catalogue up to date with the source: new messages are added untranslated,
    gone ones dropped; translations of unchanged messages are kept."""
    path = po_path(lang)
    if path.exists():
        catalog = read(lang)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        catalog = Catalog(locale=lang, project="timebank")
    catalog.update(extract(), no_fuzzy_matching=True)
    catalog.obsolete.clear()
    with path.open("wb") as f:
        write_po(f, catalog, width=100, omit_header=False, sort_output=True)
    return catalog


def untranslated(lang: str) -> list[str]:
    """Messages the app shows that `lang` has no (or a fuzzy, or a partial plural) translation
    for; a plural message is named by its singular."""
    catalog = read(lang)
    missing = []
    for message in extract():
        if not message.id:
            continue
        have = catalog.get(message.id)
        strings = (
            have.string
            if have is not None and isinstance(have.string, tuple)
            else ((have.string,) if have is not None else ("",))
        )
        if have is None or have.fuzzy or not all(strings):
            missing.append(message.id[0] if isinstance(message.id, tuple) else str(message.id))
    return missing


def placeholder_mismatches(lang: str) -> list[str]:
    """Translations whose %(name)s placeholders differ from their message's (a plural's forms
    may leave the number out, as Welsh "one" and "two" forms often do, but add none)."""
    bad = []
    for message in read(lang):
        if not (message.id and message.string):
            continue
        if isinstance(message.id, tuple):
            allowed = set(PLACEHOLDER.findall(message.id[1]))
            if any(set(PLACEHOLDER.findall(form)) - allowed for form in message.string):
                bad.append(message.id[0])
        elif set(PLACEHOLDER.findall(str(message.id))) != set(
            PLACEHOLDER.findall(str(message.string))
        ):
            bad.append(str(message.id))
    return bad
