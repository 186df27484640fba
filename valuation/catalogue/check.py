"""The rules a valuation catalogue must keep, beyond each value's type. Pure.

Ids are unique and well formed; every `source` and `outcome` reference resolves; percentages
(deadweight, attribution, displacement, drop-off, discount rates, optimism uplifts) lie in [0, 1];
low <= amount <= high, and a "between" value has both; periods match their FY/CY type; currencies
have the ISO 4217 shape; a discount schedule's bands run on from year 0 without gap or overlap; the
optimism-bias table has one band per grade 1-6; `cashable` agrees with the value type; and a
shipped catalogue (scheme None) holds no value from a source that may not be bundled unless the
value is marked licensed_external.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

from .model import Catalogue, Source, ValuationEntry

UNBUNDLEABLE_LICENCES = frozenset({"CC-BY-NC-ND-4.0", "proprietary"})
PERCENTAGES = ("drop_off", "deadweight", "attribution", "displacement")

_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,79}")
_CODE = re.compile(r"[a-z][a-z0-9-]{0,63}")  # proxy and scheme codes, as activities write them
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
_HASH = re.compile(r"sha256:[0-9a-f]{64}")
_CURRENCY = re.compile(r"[A-Z]{3}")  # the shape of an ISO 4217 code
_COUNTRY = re.compile(r"[A-Z]{2}")
_SOC = re.compile(r"[0-9]{4}")
_PUBLISHED = re.compile(r"[0-9]{4}(?:-[0-9]{2}(?:-[0-9]{2})?)?")
_FY = re.compile(r"([0-9]{4})/([0-9]{2})")
_CY = re.compile(r"[0-9]{4}")

Where = Callable[[str, int], str]
"""Names the JSON path of a record from its section and index, e.g. ("entries", 3)."""
Cite = Callable[[str, str, bool], None]
"""Checks a `source` reference at a record's path; the flag says the value is licensed_external."""


class CatalogueError(ValueError):
    """A catalogue document is refused: `path` names the JSON value, `message` says why."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}")


def check_catalogue(c: Catalogue, where: Where) -> None:
    """Raise CatalogueError at the first record that breaks a rule; `where(section, index)`
    names a record's path (a merge labels the base's records apart from the file's)."""
    _check_header(c)
    _unique(where, "sources", [s.id for s in c.sources], "id")
    for i, s in enumerate(c.sources):
        _check_source(s, where("sources", i))
    cite = _citer(c)
    _check_price_points(c, where, cite)
    _check_discount_bands(c, where, cite)
    _check_wage_rates(c, where, cite)
    _check_proxies(c, where, cite)
    _check_outcomes_and_entries(c, where, cite)
    _check_exchange_rates(c, where, cite)
    bias = c.optimism_bias
    grades = sorted(b.grade for b in bias.bands)
    _need(grades == [1, 2, 3, 4, 5, 6], "optimism_bias", "bands", "one band per grade 1-6")
    for i, b in enumerate(bias.bands):
        _fraction(f"optimism_bias.bands[{i}]", "uplift", b.uplift)
    cite("optimism_bias", bias.source, False)


def _citer(c: Catalogue) -> Cite:
    """Checks a record's `source`: it exists, and a shipped catalogue (scheme None) cites an
    unbundleable source only from a licensed_external value."""
    sources = {s.id: s for s in c.sources}

    def cite(at: str, source_id: str, licensed: bool) -> None:
        source = sources.get(source_id)
        _need(source is not None, at, "source", f"unknown source {source_id!r}")
        if c.scheme is None and source is not None and not source.bundle_allowed and not licensed:
            _fail(at, "source", f"{source_id!r} may not be bundled: not in a shipped catalogue")

    return cite


def _check_price_points(c: Catalogue, where: Where, cite: Cite) -> None:
    keys = [(p.series, p.period, p.vintage) for p in c.price_points]
    _unique(where, "price_points", keys, "period")
    for i, p in enumerate(c.price_points):
        at = where("price_points", i)
        _period(at, "period", p.period, p.period_type)
        _need(p.value > 0, at, "value", "must be above zero")
        cite(at, p.source, False)


def _check_wage_rates(c: Catalogue, where: Where, cite: Cite) -> None:
    keys = [
        (w.series, w.soc_code, w.soc_version, w.geography, w.year, w.statistic)
        for w in c.wage_rates
    ]
    _unique(where, "wage_rates", keys, "year")
    for i, w in enumerate(c.wage_rates):
        at = where("wage_rates", i)
        _soc(at, w.soc_code, w.soc_version)
        _period(at, "year", w.year, w.period_type)
        _currency(at, "currency", w.currency)
        _need(w.value > 0, at, "value", "must be above zero")
        cite(at, w.source, False)


def _check_proxies(c: Catalogue, where: Where, cite: Cite) -> None:
    _unique(where, "proxies", [(p.proxy_code, p.priority) for p in c.proxies], "priority")
    for i, proxy in enumerate(c.proxies):
        at = where("proxies", i)
        code_ok = _CODE.fullmatch(proxy.proxy_code)
        _need(code_ok, at, "proxy_code", "a lower-case code like 'gardening'")
        _need(proxy.priority >= 1, at, "priority", "1 (primary) or more")
        _soc(at, proxy.soc_code, proxy.soc_version)
        cite(at, proxy.source, False)


def _check_outcomes_and_entries(c: Catalogue, where: Where, cite: Cite) -> None:
    _unique(where, "outcomes", [o.id for o in c.outcomes], "id")
    for i, o in enumerate(c.outcomes):
        _need(_ID.fullmatch(o.id), where("outcomes", i), "id", "a lower-case id")
    outcomes = {o.id for o in c.outcomes}
    _unique(where, "entries", [e.id for e in c.entries], "id")
    for i, e in enumerate(c.entries):
        at = where("entries", i)
        _check_entry(e, at)
        known = e.outcome is None or e.outcome in outcomes
        _need(known, at, "outcome", f"unknown outcome {e.outcome!r}")
        cite(at, e.source, e.licensed_external)


def _check_exchange_rates(c: Catalogue, where: Where, cite: Cite) -> None:
    keys = [(x.from_currency, x.to_currency, x.date) for x in c.exchange_rates]
    _unique(where, "exchange_rates", keys, "date")
    for i, x in enumerate(c.exchange_rates):
        at = where("exchange_rates", i)
        _currency(at, "from_currency", x.from_currency)
        _currency(at, "to_currency", x.to_currency)
        _need(x.from_currency != x.to_currency, at, "to_currency", "must differ from from_currency")
        _need(x.rate > 0, at, "rate", "must be above zero")
        _need(_is_date(x.date), at, "date", "an ISO date like 2024-04-18")
        cite(at, x.source, False)


def _check_header(c: Catalogue) -> None:
    _need(_VERSION.fullmatch(c.version), "", "version", "letters, digits and . _ + - only")
    _need(c.scheme is None or _CODE.fullmatch(c.scheme), "", "scheme", "a scheme code or null")
    _need(
        c.based_on is None or _HASH.fullmatch(c.based_on),
        "",
        "based_on",
        "null or sha256:<64 hex digits>",
    )
    _currency("", "currency", c.currency)


def _check_source(s: Source, at: str) -> None:
    _need(_ID.fullmatch(s.id), at, "id", "a lower-case id: letters, digits and . _ -")
    _need(_PUBLISHED.fullmatch(s.published), at, "published", "a year, year-month or date")
    if s.data_year is not None:
        _need(
            _period_type(s.data_year) is not None, at, "data_year", "a period like 2023 or 2023/24"
        )
    _need(s.url is None or s.url.startswith(("https://", "http://")), at, "url", "an http(s) URL")
    _need(_COUNTRY.fullmatch(s.country), at, "country", "a two-letter country code like UK")
    if s.bundle_allowed and s.licence in UNBUNDLEABLE_LICENCES:
        _fail(at, "bundle_allowed", f"a {s.licence} source may not be bundled")


def _check_discount_bands(c: Catalogue, where: Where, cite: Cite) -> None:
    expected_from: dict[str, int | None] = {}
    for i, band in enumerate(c.discount_bands):
        at = where("discount_bands", i)
        _fraction(at, "rate", band.rate)
        if band.year_to is not None:
            _need(band.year_to >= band.year_from, at, "year_to", "at or after year_from")
        start = expected_from.get(band.schedule, 0)
        _need(start is not None, at, "year_from", f"{band.schedule} already runs open-ended")
        _need(
            band.year_from == start, at, "year_from", f"{band.schedule} continues at year {start}"
        )
        expected_from[band.schedule] = None if band.year_to is None else band.year_to + 1
        cite(at, band.source, False)


def _check_entry(e: ValuationEntry, at: str) -> None:
    _need(_ID.fullmatch(e.id), at, "id", "a lower-case id: letters, digits and . _ -")
    _currency(at, "currency", e.currency)
    _period(at, "price_year", e.price_year, e.price_year_type)
    _need(1 <= e.confidence_grade <= 6, at, "confidence_grade", "a grade from 1 to 6")
    _need(_COUNTRY.fullmatch(e.country), at, "country", "a two-letter country code like UK")
    for name in PERCENTAGES:
        share = getattr(e, name)
        if share is not None:
            _fraction(at, name, share)
    if e.default_duration_years is not None:
        _need(e.default_duration_years > 0, at, "default_duration_years", "above zero, or null")
    if e.qualifier == "between":
        _need(e.low is not None, at, "low", "a 'between' value needs low and high")
        _need(e.high is not None, at, "high", "a 'between' value needs low and high")
    if e.low is not None:
        _need(e.low <= e.amount, at, "low", f"{e.low} is above the amount {e.amount}")
    if e.high is not None:
        _need(e.amount <= e.high, at, "high", f"{e.high} is below the amount {e.amount}")
    fiscal = e.value_type in ("FISCAL_CASHABLE", "FISCAL_NONCASHABLE")
    _need(fiscal or e.cashable is None, at, "cashable", "null unless the value is fiscal")
    _need(
        (e.value_type == "FISCAL_CASHABLE") == (e.cashable is True),
        at,
        "cashable",
        "true exactly when value_type is FISCAL_CASHABLE",
    )


def _unique(where: Where, section: str, keys: list[Any], field: str) -> None:
    first: dict[Any, int] = {}
    for i, key in enumerate(keys):
        if key in first:
            _fail(where(section, i), field, f"duplicate of {where(section, first[key])}: {key!r}")
        first[key] = i


def _soc(at: str, code: str | None, version: str | None) -> None:
    _need(code is None or _SOC.fullmatch(code), at, "soc_code", "four digits, or null")
    _need((code is None) == (version is None), at, "soc_version", "given exactly with soc_code")


def _period(at: str, field: str, period: str, period_type: str) -> None:
    kind = _period_type(period)
    _need(kind is not None, at, field, "a financial year 2023/24 or a calendar year 2023")
    _need(kind == period_type, at, field, f"{period!r} is not a {period_type} period")


def _period_type(period: str) -> str | None:
    fy = _FY.fullmatch(period)
    if fy is not None:
        return "FY" if (int(fy.group(1)) + 1) % 100 == int(fy.group(2)) else None
    return "CY" if _CY.fullmatch(period) else None


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return len(text) == len("2024-04-18")


def _currency(at: str, field: str, code: str) -> None:
    _need(_CURRENCY.fullmatch(code), at, field, f"an ISO 4217 code like GBP, not {code!r}")


def _fraction(at: str, field: str, share: Decimal) -> None:
    _need(0 <= share <= 1, at, field, f"a fraction from 0 to 1 (0.25 is 25%), not {share}")


def _need(ok: object, at: str, field: str, message: str) -> None:
    if not ok:
        _fail(at, field, message)


def _fail(at: str, field: str, message: str) -> None:
    raise CatalogueError(join_path(at, field), message)


def join_path(path: str, key: str) -> str:
    """The JSON path of `key` inside `path` ("" is the document itself)."""
    return f"{path}.{key}" if path else key
