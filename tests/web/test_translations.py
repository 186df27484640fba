"""Every message the app shows has a Welsh translation with the same placeholders, and the
catalogue is read at startup and used."""

from __future__ import annotations

import pytest

from web import messages
from web.i18n import translations

pytestmark = pytest.mark.both_backends


def test_every_message_has_a_welsh_translation() -> None:
    missing = messages.untranslated("cy")
    assert missing == [], f"run scripts/translations and translate: {missing[:20]}"


def test_welsh_translations_keep_their_placeholders() -> None:
    assert messages.placeholder_mismatches("cy") == []


def test_the_catalogue_translates_at_run_time() -> None:
    assert translations("cy").gettext("Sign in") == "Mewngofnodi"
    assert translations("en").gettext("Sign in") == "Sign in"


def test_extraction_finds_template_and_python_messages() -> None:
    found = {m.id for m in messages.extract()}
    assert "Skip to main content" in found  # base.html
    assert "That login and password do not match." in found  # web/signin.py
