"""Refusals from the domain (the ledger's, the time bank's, the partners' and the API's own
messages: "hours cannot be logged for a day still to come") in the visitor's language.

The domain speaks English and gives no code per message, so each message the pages can meet is
written here as its English text with `%(name)s` placeholders where the domain puts a value; that
text is both the pattern a refusal is matched against and the message translated (so English is
shown exactly as the domain wrote it). A message not listed is shown as it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from api.problems import Problem

from .i18n import translations


def N_(message: str) -> str:
    """Marks a message for extraction (`web.messages`); translated when shown."""
    return message


def N_plural(singular: str, plural: str) -> tuple[str, str]:
    """Marks a plural message for extraction; the domain writes the plural form, `%(num)d`."""
    return singular, plural


# Most specific first: "no member %(member)s" would also match "no member 'M1' in scheme 'x'".
MESSAGES: tuple[str | tuple[str, str], ...] = (
    # claims (timebank.claims)
    N_("minutes must be a whole number"),
    N_("a claim is %(min)s to %(max)s minutes in this scheme"),
    N_("hours cannot be logged for a day still to come"),
    N_plural(
        "in this scheme hours are logged within %(num)d day of the day they were given",
        "in this scheme hours are logged within %(num)d days of the day they were given",
    ),
    N_("%(member)s already has %(minutes)s minutes on %(day)s; a day has 1440"),
    N_("members may log only their own hours here"),
    N_("say which member was helped"),
    N_("a member cannot help themselves"),
    N_("this scheme issues credits; there is no receiver"),
    N_("nobody confirms their own hours"),
    N_("the member who was helped (or a coordinator) confirms"),
    N_("a coordinator confirms"),
    # claims decided (timebank.service)
    N_("claim %(claim)s is pending: only a confirmed claim is reversed"),
    N_("claim %(claim)s is rejected: only a confirmed claim is reversed"),
    N_("claim %(claim)s is reversed: only a confirmed claim is reversed"),
    N_("claim %(claim)s is pending"),
    N_("claim %(claim)s is confirmed"),
    N_("claim %(claim)s is rejected"),
    N_("claim %(claim)s is reversed"),
    N_("say why the claim is rejected"),
    N_("say why the claim is reversed"),
    N_("nobody decides on their own hours"),
    N_(
        "%(member)s has spent these hours: reversing them would take %(member)s below the "
        "scheme's limit"
    ),
    N_("%(member)s would go below the scheme's limit"),
    N_("%(member)s is not a coordinator of %(scheme)s"),
    N_("1 to 200 different members"),
    N_("only a scheme admin erases a coordinator or admin"),
    N_("member %(member)s was erased"),
    N_("no member holds that card"),
    N_("no current activity %(activity)s"),
    N_("no activity %(activity)s"),
    N_("no claim %(claim)s in scheme %(scheme)s"),
    N_("no member %(member)s in scheme %(scheme)s"),
    N_("no member %(member)s"),
    # vouchers and the till (partners.service, api.vouchers)
    N_("the partner's monthly cap for this scheme is reached (vouchers not yet used count)"),
    N_("the partner's monthly cap for this scheme is reached"),
    N_("no more vouchers for %(offer)s today"),
    N_("no more vouchers for %(offer)s this week"),
    N_("offer %(offer)s is not available in this scheme now"),
    N_("%(member)s has not enough credits for %(offer)s"),
    N_("not a voucher code (check the characters)"),
    N_("no voucher with that code"),
    N_("the voucher has expired"),
    N_("the voucher is already pending"),
    N_("the voucher is already settled"),
    N_("the voucher is already voided"),
    N_("the voucher is already expired"),
    N_("venue %(venue)s is not under the agreement"),
    N_("no agreement with partner %(partner)s"),
    N_("no offer %(offer)s"),
    N_("no venue %(venue)s"),
    N_("members take vouchers for themselves"),
    # who may do what (api)
    N_("members post only their own offers and requests"),
    N_("only its member or a coordinator"),
    N_("only your own records, or a coordinator"),
)

_PLACEHOLDER = re.compile(r"%\((\w+)\)([sd])")


@dataclass(frozen=True)
class _Known:
    pattern: re.Pattern[str]
    message: str | tuple[str, str]
    numbers: frozenset[str]  # placeholders written %(name)d


def _known(message: str | tuple[str, str]) -> _Known:
    """The pattern of the domain's text: the (plural) message, each placeholder a group (one
    used twice must hold the same text both times)."""
    text = message[1] if isinstance(message, tuple) else message
    parts, seen, numbers, at = [], set(), set(), 0
    for m in _PLACEHOLDER.finditer(text):
        parts.append(re.escape(text[at : m.start()]))
        name, kind = m.groups()
        if name in seen:
            parts.append(f"(?P={name})")
        elif kind == "d":
            parts.append(f"(?P<{name}>-?[0-9]+)")
            numbers.add(name)
        else:
            parts.append(f"(?P<{name}>.+?)")
        seen.add(name)
        at = m.end()
    parts.append(re.escape(text[at:]))
    return _Known(re.compile("".join(parts), re.DOTALL), message, frozenset(numbers))


@cache
def _table() -> tuple[_Known, ...]:
    return tuple(_known(m) for m in MESSAGES)


def translate(lang: str, text: str) -> str:
    """The domain's `text` in `lang`; as it is when it is not one the pages know."""
    for known in _table():
        found = known.pattern.fullmatch(text)
        if found is None:
            continue
        values: dict[str, object] = dict(found.groupdict())
        for name in known.numbers:
            values[name] = int(str(values[name]))
        gettext = translations(lang)
        if isinstance(known.message, tuple):
            num = int(str(values["num"]))
            return gettext.ngettext(*known.message, num) % values
        return gettext.gettext(known.message) % values
    return text


def translated(lang: str, p: Problem) -> Problem:
    """`p` with its detail and each error's message in `lang` (fields and codes kept)."""
    errors = [
        e | {"message": translate(lang, e["message"])} if "message" in e else e for e in p.errors
    ]
    return Problem(
        p.status,
        translate(lang, p.detail),
        code=p.code,
        field=p.field,
        errors=errors,
        headers=p.headers,
    )
