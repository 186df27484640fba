"""Reading, checking and extending valuation catalogues. Pure apart from reading the packaged file.

`load_catalogue` parses JSON (decimals are strings in the file; `parse_float=Decimal` so a stray
number never becomes a float) and checks every record against the model: unknown, missing or
duplicate keys, wrong types, unknown words, ids and references, percentages outside [0, 1],
low/amount/high out of order, currency and period shapes, and the bundling rule: a shipped
catalogue (scheme None) may not hold a value from a source with bundle_allowed false unless the
value is marked licensed_external. Each refusal is a `CatalogueError` naming the JSON path, e.g.
`entries[3].deadweight`.

`merge_licensed` adds a licensee's own sources and entries (e.g. UK Social Value Bank values,
which may not ship) as a new version; `derive` adds a scheme's local values (its unit costs, the
ASHE wages it sourced) likewise. Both return a new catalogue whose `based_on` is the base's
content hash, and refuse any id that clashes with the base.
"""

from __future__ import annotations

import functools
import json
import re
import types
from collections.abc import Callable, Iterable
from dataclasses import replace
from decimal import Decimal
from importlib import resources
from typing import Any, Literal, TypeVar, Union, cast, get_args, get_origin, get_type_hints

from .check import CatalogueError, check_catalogue, join_path
from .model import (
    Catalogue,
    DiscountBand,
    ExchangeRate,
    OccupationProxy,
    Outcome,
    PricePoint,
    Source,
    ValuationEntry,
    WageRate,
    canonical_json,
    plain,
)

SHIPPED_FILE = "uk-2026.1.json"
SECTIONS = (
    "sources",
    "price_points",
    "discount_bands",
    "wage_rates",
    "proxies",
    "outcomes",
    "entries",
    "exchange_rates",
)
LICENSED_SECTIONS = ("sources", "outcomes", "entries")
MAY_BE_EMPTY = frozenset({"notes", "licence_constraints"})

_R = TypeVar("_R")
_DECIMAL = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")


def load_catalogue(text: str) -> Catalogue:
    """Parse and check a catalogue document; CatalogueError naming the path of the first fault."""
    catalogue = _record(_parse(text), Catalogue, "")
    check_catalogue(catalogue, _where_plain)
    return catalogue


def dump_catalogue(catalogue: Catalogue) -> str:
    """Canonical JSON (sorted keys, no whitespace, decimals as strings); loads back equal."""
    return canonical_json(catalogue)


def format_catalogue(catalogue: Catalogue) -> str:
    """Readable JSON in field order, decimals as written: the packaged file's form."""
    return json.dumps(plain(catalogue, canonical=False), indent=2, ensure_ascii=False) + "\n"


@functools.cache
def shipped_catalogue() -> Catalogue:
    """The catalogue packaged with the software (no licensed values; see VALUATION section 0)."""
    data = resources.files("valuation.catalogue") / "data" / SHIPPED_FILE
    return load_catalogue(data.read_text(encoding="utf-8"))


def merge_licensed(base: Catalogue, text: str, *, version: str) -> Catalogue:
    """A new version of `base` with a licensee's sources, outcomes and entries. Every added source
    is marked bundle_allowed false and every added entry licensed_external, whatever the file
    says: such values are the licensee's and are never redistributed."""
    pairs = _root_object(text, LICENSED_SECTIONS)
    sources = tuple(replace(s, bundle_allowed=False) for s in _list(pairs, "sources", Source))
    entries = _list(pairs, "entries", ValuationEntry)
    return _extend(
        base,
        version=version,
        scheme=base.scheme,
        sources=sources,
        outcomes=_list(pairs, "outcomes", Outcome),
        entries=tuple(replace(e, licensed_external=True) for e in entries),
    )


def derive(base: Catalogue, text: str, *, scheme: str, version: str) -> Catalogue:
    """A new version of `base` for one scheme, with the scheme's own additions (any section)."""
    if base.scheme is not None and base.scheme != scheme:
        raise CatalogueError("scheme", f"the base was derived for {base.scheme!r}, not {scheme!r}")
    pairs = _root_object(text, SECTIONS)
    return _extend(
        base,
        version=version,
        scheme=scheme,
        sources=_list(pairs, "sources", Source),
        price_points=_list(pairs, "price_points", PricePoint),
        discount_bands=_list(pairs, "discount_bands", DiscountBand),
        wage_rates=_list(pairs, "wage_rates", WageRate),
        proxies=_list(pairs, "proxies", OccupationProxy),
        outcomes=_list(pairs, "outcomes", Outcome),
        entries=_list(pairs, "entries", ValuationEntry),
        exchange_rates=_list(pairs, "exchange_rates", ExchangeRate),
    )


def _extend(base: Catalogue, *, version: str, scheme: str | None, **added: Any) -> Catalogue:
    if version == base.version:
        raise CatalogueError("version", f"the new version must differ from the base's {version!r}")
    if not any(added.values()):
        raise CatalogueError("$", "the file adds nothing")
    grown = {name: getattr(base, name) + added.get(name, ()) for name in SECTIONS}
    catalogue = replace(base, version=version, scheme=scheme, based_on=base.content_hash, **grown)
    base_sizes = {name: len(getattr(base, name)) for name in SECTIONS}

    def where(section: str, index: int) -> str:
        size = base_sizes.get(section, 0)
        return f"base {section}[{index}]" if index < size else f"{section}[{index - size}]"

    check_catalogue(catalogue, where)
    return catalogue


def _where_plain(section: str, index: int) -> str:
    return f"{section}[{index}]"


# Parsing: JSON values to records, by the model's type hints.


class _JsonObject(tuple[tuple[str, object], ...]):
    """A JSON object's (key, value) pairs in order, so a duplicate key is refused by its path."""


def _parse(text: str) -> object:
    def refuse(name: str) -> object:
        raise CatalogueError("$", f"{name} is not allowed in a catalogue")

    try:
        return json.loads(
            text, parse_float=Decimal, parse_constant=refuse, object_pairs_hook=_JsonObject
        )
    except json.JSONDecodeError as e:
        raise CatalogueError("$", f"not JSON: {e.msg} (line {e.lineno}, column {e.colno})") from e


def _root_object(text: str, allowed: Iterable[str]) -> dict[str, object]:
    pairs = _object(_parse(text), "")
    names = tuple(allowed)
    for key in pairs:
        if key not in names:
            raise CatalogueError(key, f"unknown key; this file may hold: {', '.join(names)}")
    return pairs


def _object(value: object, path: str) -> dict[str, object]:
    if not isinstance(value, _JsonObject):
        raise CatalogueError(path or "$", "must be an object")
    out: dict[str, object] = {}
    for key, item in value:
        if key in out:
            raise CatalogueError(join_path(path, key), "duplicate key")
        out[key] = item
    return out


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _record(value: object, cls: type[_R], path: str) -> _R:
    pairs = _object(value, path)
    hints = _hints(cast(type, cls))
    for key in pairs:
        if key not in hints:
            raise CatalogueError(join_path(path, key), "unknown key")
    for name in hints:
        if name not in pairs:
            raise CatalogueError(join_path(path, name), "missing")
    values = {
        name: _value(pairs[name], hint, join_path(path, name)) for name, hint in hints.items()
    }
    for name, item in values.items():
        if item == "" and name not in MAY_BE_EMPTY:
            raise CatalogueError(join_path(path, name), "empty: write a value (or null for none)")
    factory: Callable[..., _R] = cls
    return factory(**values)


def _list(pairs: dict[str, object], key: str, cls: type[_R]) -> tuple[_R, ...]:
    value = pairs.get(key, [])
    if not isinstance(value, list):
        raise CatalogueError(key, "must be a list")
    return tuple(_record(item, cls, f"{key}[{i}]") for i, item in enumerate(value))


def _value(value: object, hint: Any, path: str) -> object:
    origin = get_origin(hint)
    if origin is Literal:
        words: tuple[str, ...] = get_args(hint)
        if not isinstance(value, str) or value not in words:
            raise CatalogueError(path, f"one of {', '.join(words)}; not {value!r}")
        return value
    if origin in (Union, types.UnionType):
        if value is None:
            return None
        (inner,) = (arg for arg in get_args(hint) if arg is not type(None))
        return _value(value, inner, path)
    if origin is tuple:
        if not isinstance(value, list):
            raise CatalogueError(path, "must be a list")
        item_hint = get_args(hint)[0]
        return tuple(_value(item, item_hint, f"{path}[{i}]") for i, item in enumerate(value))
    if hint is Decimal:
        if not isinstance(value, str) or not _DECIMAL.fullmatch(value):
            raise CatalogueError(path, 'a decimal written as a string, e.g. "12.50"')
        return Decimal(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise CatalogueError(path, "must be true or false")
        return value
    if hint is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise CatalogueError(path, "must be a whole number")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise CatalogueError(path, "must be a string")
        return value
    return _record(value, hint, path)
