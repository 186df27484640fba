"""The valuation catalogue: the shipped data, its hash, its checks, licensed and scheme versions.

Figures are checked against ../shared/DOMAIN.md section 2a (M1-M16) and ../shared/VALUATION.md.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import fields, is_dataclass, replace
from decimal import Decimal
from importlib import resources
from typing import Any

import pytest

from valuation.catalogue import (
    Catalogue,
    CatalogueError,
    ValuationEntry,
    derive,
    dump_catalogue,
    format_catalogue,
    load_catalogue,
    merge_licensed,
    shipped_catalogue,
)

PROXY_CODES = {
    "personal-care",
    "befriending",
    "gardening",
    "cleaning",
    "admin",
    "transport",
    "diy-repairs",
    "teaching",
    "fundraising-events",
    "catering",
    "design",
    "governance",
    "generalist",
}
HACT = "hact-uk-social-value-bank"


def packaged_text() -> str:
    data = resources.files("valuation.catalogue") / "data" / "uk-2026.1.json"
    return data.read_text(encoding="utf-8")


def shipped_document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(packaged_text())
    return document


def walk(value: object) -> list[object]:
    """Every value inside a record, depth first."""
    found: list[object] = [value]
    if isinstance(value, tuple):
        for item in value:
            found += walk(item)
    elif is_dataclass(value) and not isinstance(value, type):
        for f in fields(value):
            found += walk(getattr(value, f.name))
    return found


def cited_sources(c: Catalogue) -> list[str]:
    return [
        *(p.source for p in c.price_points),
        *(b.source for b in c.discount_bands),
        *(w.source for w in c.wage_rates),
        *(p.source for p in c.proxies),
        *(e.source for e in c.entries),
        c.optimism_bias.source,
    ]


# The shipped catalogue and its hash.


def test_the_shipped_catalogue_loads_and_is_the_uk_base_version() -> None:
    c = shipped_catalogue()
    assert (c.version, c.scheme, c.based_on, c.currency) == ("uk-2026.1", None, None, "GBP")
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", c.content_hash)
    assert c.entries and c.sources and c.wage_rates and c.proxies


def test_the_packaged_file_is_written_in_the_catalogues_own_format() -> None:
    assert packaged_text() == format_catalogue(shipped_catalogue())


def test_the_hash_is_stable_across_dump_and_load() -> None:
    c = shipped_catalogue()
    again = load_catalogue(dump_catalogue(c))
    assert again == c
    assert again.content_hash == c.content_hash
    assert dump_catalogue(again) == dump_catalogue(c)
    assert load_catalogue(format_catalogue(c)).content_hash == c.content_hash


def test_the_hash_is_sha256_of_the_canonical_dump() -> None:
    import hashlib

    c = shipped_catalogue()
    text = dump_catalogue(c)
    assert c.content_hash == "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    canonical = json.dumps(
        json.loads(text), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    assert text == canonical


def test_the_hash_follows_the_value_not_its_spelling() -> None:
    document = shipped_document()
    document["discount_bands"][1]["rate"] = "0.03"  # the file writes "0.030"
    assert load_catalogue(json.dumps(document)).content_hash == shipped_catalogue().content_hash


CHANGES: list[tuple[str, Callable[[Catalogue], Catalogue]]] = [
    ("an amount by a penny", lambda c: _entry(c, 0, amount=c.entries[0].amount + Decimal("0.01"))),
    ("a qualifier", lambda c: _entry(c, 0, qualifier="about")),
    ("a deadweight from null", lambda c: _entry(c, 3, deadweight=Decimal("0.25"))),
    ("a note", lambda c: _entry(c, 5, notes=c.entries[5].notes + ".")),
    (
        "a source's url",
        lambda c: replace(c, sources=(replace(c.sources[0], url=None), *c.sources[1:])),
    ),
    ("a wage", lambda c: replace(c, wage_rates=c.wage_rates[1:])),
    ("the version", lambda c: replace(c, version="uk-2026.2")),
    ("the entry order", lambda c: replace(c, entries=c.entries[::-1])),
]


def _entry(c: Catalogue, index: int, **changes: Any) -> Catalogue:
    entries = list(c.entries)
    entries[index] = replace(entries[index], **changes)
    return replace(c, entries=tuple(entries))


@pytest.mark.parametrize("change", [c for _, c in CHANGES], ids=[n for n, _ in CHANGES])
def test_the_hash_changes_when_any_value_changes(change: Callable[[Catalogue], Catalogue]) -> None:
    c = shipped_catalogue()
    changed = change(c)
    assert changed.content_hash != c.content_hash
    assert load_catalogue(dump_catalogue(changed)).content_hash == changed.content_hash


def test_every_loaded_number_is_a_decimal_never_a_float() -> None:
    c = shipped_catalogue()
    values = walk(c)
    assert not [v for v in values if isinstance(v, float)]
    for e in c.entries:
        for name in (
            "amount",
            "low",
            "high",
            "deadweight",
            "attribution",
            "default_duration_years",
        ):
            assert getattr(e, name) is None or type(getattr(e, name)) is Decimal, (e.id, name)
    assert all(type(w.value) is Decimal for w in c.wage_rates)
    assert all(type(b.rate) is Decimal for b in c.discount_bands)


# Provenance and licences.


def test_every_reference_resolves() -> None:
    c = shipped_catalogue()
    for source_id in cited_sources(c):
        c.source(source_id)
    for e in c.entries:
        assert e.outcome is None or c.outcome(e.outcome).id == e.outcome


def test_every_shipped_value_comes_from_a_bundleable_source() -> None:
    c = shipped_catalogue()
    assert not [e.id for e in c.entries if e.licensed_external]
    assert all(c.source(s).bundle_allowed for s in cited_sources(c))
    for s in c.sources:
        if s.licence in ("CC-BY-NC-ND-4.0", "proprietary"):
            assert not s.bundle_allowed, s.id


def test_no_hact_value_is_shipped_only_the_slot_that_names_its_licence() -> None:
    c = shipped_catalogue()
    hact = c.source(HACT)
    assert (hact.licence, hact.bundle_allowed) == ("CC-BY-NC-ND-4.0", False)
    assert "tools" in hact.licence_constraints
    assert HACT not in cited_sources(c)
    assert Decimal(3249) not in {e.amount for e in c.entries}  # HACT's 2014 volunteering value
    assert not c.source("social-value-portal-national-toms").bundle_allowed


def test_unverified_figures_are_left_out_or_tagged_r() -> None:
    c = shipped_catalogue()
    nlw = {w.year for w in c.wage_rates if w.series == "NLW"}
    assert nlw == {"2016/17", "2019/20", "2021/22", "2022/23", "2023/24", "2024/25", "2025/26"}
    years = {w.year for w in c.wage_rates if w.series == "IS_VOLUNTEER_HOUR"}
    assert "2022" in years and not {"2023", "2024"} & years  # 2023 is [S], 2024 [R]
    assert c.optimism_bias.verification == "R"
    assert [b.year_to for b in c.discount_schedule("GB_STPR")] == [30, 75, 125]  # 126+ is [R]
    assert c.proxies_for("befriending")[0].verification == "R"


# The figures themselves.

DOMAIN_FIGURES = [
    ("M1", "knapp-time-bank-savings-per-member", "1300", "more-than", None, None),
    ("M2", "knapp-time-bank-cost-per-member-year", "450", "less-than", None, None),
    ("M3", "knapp-befriending-cost-per-person-year", "80", "about", None, None),
    ("M4", "knapp-befriending-first-year-saving", "35", "about", None, None),
    ("M12", "expert-patient-avoided-gp-consultation", "42.50", "between", "27", "58"),
    ("M13", "expert-patient-diverted-ae", "84", "exact", None, None),
]


@pytest.mark.parametrize(
    ("figure", "entry_id", "amount", "qualifier", "low", "high"), DOMAIN_FIGURES
)
def test_the_domain_figures_are_present_with_their_qualifiers(
    figure: str, entry_id: str, amount: str, qualifier: str, low: str | None, high: str | None
) -> None:
    e = shipped_catalogue().entry(entry_id)
    assert re.search(rf"\bDOMAIN\b.*\b{figure}\b", e.seed_ref)
    assert (e.amount, e.qualifier, e.currency, e.verification) == (
        Decimal(amount),
        qualifier,
        "GBP",
        "V",
    )
    assert (e.low, e.high) == (
        None if low is None else Decimal(low),
        None if high is None else Decimal(high),
    )
    assert e.source and e.unit and e.price_year and 1 <= e.confidence_grade <= 6


def test_spot_checks_against_the_documents() -> None:
    c = shipped_catalogue()
    assert c.entry("knapp-time-bank-cost-per-member-year").unit == "per member-year"
    assert c.entry("knapp-befriending-first-year-saving").default_duration_years == 1
    gp = c.entry("expert-patient-avoided-gp-consultation")
    assert (gp.agency, gp.lens, gp.cashable) == ("NHS_PRIMARY", "C", None)
    assert "prescription" in gp.unit
    assert c.entry("expert-patient-diverted-ae").agency == "NHS_ACUTE"
    shared = c.entry("shared-lives-weekly-saving")
    assert (shared.amount, shared.qualifier, shared.unit) == (
        Decimal(995),
        "up-to",
        "per person-week",
    )
    teen = c.entry("teen-court-justice-saving")
    assert (teen.amount, teen.currency, teen.country, teen.agency) == (
        Decimal(11510),
        "USD",
        "US",
        "JUSTICE",
    )
    assert c.entry("nfp-public-spending-saving").amount == Decimal(41000)
    council = c.entry("parenting-classes-return-to-council")
    others = c.entry("parenting-classes-return-to-other-partners")
    assert (council.agency, others.agency) == ("COUNCIL", "PUBLIC_SECTOR_OTHER")
    assert council.amount + others.amount == 4  # "for every £1 spent by council, £4 comes back"
    stockport = c.entry("stockport-website-staff-time-saving")
    assert stockport.amount / c.entry("stockport-website-spend").amount > 4  # 300k p.a. for 70k
    wellby = c.entry("hmt-wellby")
    assert (wellby.amount, wellby.low, wellby.high) == tuple(map(Decimal, (13000, 10000, 16000)))
    assert wellby.price_year == "2019"
    assert c.entry("hmt-qaly").amount == 70000
    assert c.entry("refcost-2013-14-ed-admitted").price_year == "2013/14"


def test_the_golden_vectors_work_from_catalogue_values() -> None:
    c = shipped_catalogue()
    nlw = c.wage("NLW", "2024/25")
    assert nlw is not None and 1000 * nlw.value == Decimal("11440.00")  # VALUATION 7.6 #4
    d_0809 = c.deflator("HMT_GDP_DEFLATOR", "2008/09")
    d_1819 = c.deflator("HMT_GDP_DEFLATOR", "2018/19")
    assert d_0809 is not None and d_1819 is not None
    assert round(100 * d_1819.value / d_0809.value, 2) == Decimal("118.45")  # VALUATION 7.6 #3
    assert c.deflator("HMT_GDP_DEFLATOR", "2023/24") is None  # operators import the series
    assert [b.rate for b in c.discount_schedule("GB_STPR")] == [
        Decimal("0.035"),
        Decimal("0.030"),
        Decimal("0.025"),
    ]
    assert [b.rate for b in c.discount_schedule("GB_HEALTH")] == [Decimal("0.015")]
    assert [c.optimism_uplift(g) for g in range(1, 7)] == [
        Decimal(p) / 100 for p in (0, 5, 10, 15, 25, 40)
    ]


def test_wage_series_carry_their_year_geography_and_publication() -> None:
    c = shipped_catalogue()
    london = c.wage("RLW", "2023/24", geography="London")
    assert london is not None and london.value == Decimal("13.15")
    assert c.wage("AWE_DIV35", "2023") is not None  # the shipped generalist fallback
    us = c.wage("IS_VOLUNTEER_HOUR", "2022", geography="US")
    assert us is not None and (us.value, us.currency) == (Decimal("31.80"), "USD")
    source = c.source(us.source)
    assert source.data_year == "2022" and source.published > "2022"
    assert c.wage("ASHE_HOURLY_EXCL_OT", "2024", "6135") is None  # not invented


def test_proxies_for_gardening_name_a_soc_code_in_priority_order() -> None:
    c = shipped_catalogue()
    gardening = c.proxies_for("gardening")
    assert gardening[0].soc_code == "5113" and gardening[0].priority == 1
    assert [p.priority for p in gardening] == sorted(p.priority for p in gardening)
    assert len(gardening) == 2
    assert {p.proxy_code for p in c.proxies} == PROXY_CODES
    assert c.proxies_for("governance")[0].judgement
    assert c.proxies_for("generalist")[0].fallback == "NLW_FLOOR"
    assert c.proxies_for("no-such-code") == ()


def test_lookups_refuse_what_is_not_there() -> None:
    c = shipped_catalogue()
    with pytest.raises(KeyError):
        c.source("nowhere")
    with pytest.raises(KeyError):
        c.entry("nowhere")
    with pytest.raises(KeyError):
        c.optimism_uplift(7)


# Validation: each refusal names the JSON path.

Doc = dict[str, Any]


def index_of(document: Doc, section: str, record_id: str) -> int:
    return [r.get("id") for r in document[section]].index(record_id)


def entry_at(document: Doc, entry_id: str) -> tuple[dict[str, Any], str]:
    i = index_of(document, "entries", entry_id)
    return document["entries"][i], f"entries[{i}]"


def set_entry(entry_id: str, key: str, value: object) -> Callable[[Doc], str]:
    def mutate(document: Doc) -> str:
        record, path = entry_at(document, entry_id)
        record[key] = value
        return f"{path}.{key}"

    return mutate


def set_at(section: str, index: int, key: str, value: object) -> Callable[[Doc], str]:
    def mutate(document: Doc) -> str:
        document[section][index][key] = value
        return f"{section}[{index}].{key}"

    return mutate


def drop_key(document: Doc) -> str:
    del document["entries"][3]["deadweight"]
    return "entries[3].deadweight"


def duplicate_id(document: Doc) -> str:
    document["entries"][1]["id"] = document["entries"][0]["id"]
    return "entries[1].id"


def bundle_hact(document: Doc) -> str:
    i = index_of(document, "sources", HACT)
    document["sources"][i]["bundle_allowed"] = True
    return f"sources[{i}].bundle_allowed"


def gap_in_discounting(document: Doc) -> str:
    document["discount_bands"][1]["year_from"] = 32
    return "discount_bands[1].year_from"


def drop_grade(document: Doc) -> str:
    del document["optimism_bias"]["bands"][5]
    return "optimism_bias.bands"


def add_exchange_rate(to_currency: str, path: str) -> Callable[[Doc], str]:
    def mutate(document: Doc) -> str:
        rate = {"from_currency": "USD", "to_currency": to_currency, "rate": "0.79"}
        document["exchange_rates"] = [rate | {"date": "2024-04-18", "source": "hmt-green-book"}]
        return path

    return mutate


def set_top(key: str, value: object) -> Callable[[Doc], str]:
    def mutate(document: Doc) -> str:
        document[key] = value
        return key

    return mutate


def drop_top(document: Doc) -> str:
    del document["entries"]
    return "entries"


GP = "expert-patient-avoided-gp-consultation"
BEFRIENDING = "knapp-befriending-first-year-saving"
BAD_DOCUMENTS: list[tuple[str, Callable[[Doc], str]]] = [
    ("unknown key", set_entry(BEFRIENDING, "colour", "red")),
    ("missing key", drop_key),
    ("amount as a JSON number", set_entry(BEFRIENDING, "amount", 35)),
    ("percentage as a float", set_entry(BEFRIENDING, "deadweight", 0.25)),
    ("decimal with an exponent", set_entry(BEFRIENDING, "amount", "3.5E1")),
    ("bool as a string", set_at("sources", 0, "bundle_allowed", "yes")),
    ("grade as a bool", set_entry(BEFRIENDING, "confidence_grade", True)),
    ("grade as a float", set_entry(BEFRIENDING, "confidence_grade", 5.0)),
    ("grade out of range", set_entry(BEFRIENDING, "confidence_grade", 7)),
    ("empty string", set_entry(BEFRIENDING, "unit", "")),
    ("unknown source", set_entry(BEFRIENDING, "source", "nowhere")),
    ("unknown outcome", set_entry(BEFRIENDING, "outcome", "nowhere")),
    ("duplicate id", duplicate_id),
    ("deadweight above 1", set_entry(BEFRIENDING, "deadweight", "1.5")),
    ("attribution below 0", set_entry(BEFRIENDING, "attribution", "-0.1")),
    ("drop-off above 1", set_entry(BEFRIENDING, "drop_off", "2")),
    ("low above amount", set_entry(GP, "low", "50")),
    ("high below amount", set_entry(GP, "high", "40")),
    ("between without high", set_entry(GP, "high", None)),
    ("unknown qualifier", set_entry(GP, "qualifier", "roughly")),
    ("unknown lens", set_entry(GP, "lens", "D")),
    ("unknown agency", set_entry(GP, "agency", "NHS")),
    ("unknown wage series", set_at("wage_rates", 0, "series", "MINIMUM")),
    ("cashable on a non-fiscal value", set_entry("hmt-wellby", "cashable", False)),
    ("licensed source in the shipped catalogue", set_entry(GP, "source", HACT)),
    ("licensed source for a wage", set_at("wage_rates", 0, "source", HACT)),
    ("bundling an unbundleable licence", bundle_hact),
    ("currency not ISO-shaped", set_entry(GP, "currency", "pounds")),
    ("lower-case currency", set_at("wage_rates", 0, "currency", "usd")),
    ("catalogue currency", set_top("currency", "£")),
    ("period of the wrong shape", set_at("price_points", 0, "period", "2008-09")),
    ("FY period typed CY", set_entry(GP, "price_year", "2013/14")),
    ("FY whose years do not follow", set_at("price_points", 0, "period", "2008/10")),
    ("gap in a discount schedule", gap_in_discounting),
    ("discount rate above 1", set_at("discount_bands", 0, "rate", "3.5")),
    ("missing optimism grade", drop_grade),
    ("soc code without version", set_at("proxies", 0, "soc_version", None)),
    ("soc code of the wrong shape", set_at("proxies", 0, "soc_code", "61350")),
    ("proxy code not a code", set_at("proxies", 0, "proxy_code", "Personal Care")),
    ("published not a date", set_at("sources", 0, "published", "Sept 2010")),
    ("url not http", set_at("sources", 0, "url", "ftp://example.org/x")),
    ("exchange rate to itself", add_exchange_rate("USD", "exchange_rates[0].to_currency")),
    ("exchange rate currency shape", add_exchange_rate("usd", "exchange_rates[0].to_currency")),
    ("version with a space", set_top("version", "uk 2026")),
    ("based_on not a hash", set_top("based_on", "abc")),
    ("unknown top-level key", set_top("extra", [])),
    ("missing section", drop_top),
]


@pytest.mark.parametrize("mutate", [m for _, m in BAD_DOCUMENTS], ids=[n for n, _ in BAD_DOCUMENTS])
def test_each_refusal_names_the_json_path(mutate: Callable[[Doc], str]) -> None:
    document = shipped_document()
    path = mutate(document)
    with pytest.raises(CatalogueError) as refused:
        load_catalogue(json.dumps(document))
    assert refused.value.path == path
    assert str(refused.value).startswith(f"{path}: ")


def test_a_nested_record_is_named_by_its_full_path() -> None:
    document = shipped_document()
    document["optimism_bias"]["bands"][2]["uplift"] = "1.10"
    with pytest.raises(CatalogueError, match=r"^optimism_bias\.bands\[2\]\.uplift: "):
        load_catalogue(json.dumps(document))
    document["optimism_bias"]["bands"][2]["grade"] = "3"
    with pytest.raises(CatalogueError, match=r"^optimism_bias\.bands\[2\]\.grade: "):
        load_catalogue(json.dumps(document))


@pytest.mark.parametrize(
    "text",
    ["not json", "[]", '{"version": NaN}', ""],
    ids=["not-json", "array", "nan", "empty"],
)
def test_a_document_that_is_not_a_catalogue_object_is_refused_at_the_root(text: str) -> None:
    with pytest.raises(CatalogueError) as refused:
        load_catalogue(text)
    assert refused.value.path == "$"


def test_a_duplicate_key_is_refused_where_it_repeats() -> None:
    text = packaged_text().replace('"scheme": null,', '"scheme": null,\n  "scheme": "x",', 1)
    with pytest.raises(CatalogueError) as refused:
        load_catalogue(text)
    assert (refused.value.path, refused.value.message) == ("scheme", "duplicate key")


# Licensed and scheme versions.

LICENSED: dict[str, Any] = {
    "sources": [
        {
            "id": "licensee-svb-2024",
            "title": "UK Social Value Bank values (licensee's copy)",
            "publisher": "HACT",
            "authors": "HACT",
            "published": "2024",
            "data_year": None,
            "url": None,
            "licence": "CC-BY-NC-ND-4.0",
            "licence_constraints": "Licensed to this organisation only.",
            "bundle_allowed": False,
            "evidence_tier": "peer-reviewed",
            "country": "UK",
            "notes": "",
        }
    ],
    "entries": [
        {
            "id": "licensee-regular-volunteering",
            "label": "Regular volunteering (a made-up test value, not HACT's)",
            "outcome": None,
            "lens": "B",
            "value_type": "WELLBEING",
            "agency": "INDIVIDUAL",
            "cashable": None,
            "amount": "1000",
            "low": None,
            "high": None,
            "qualifier": "exact",
            "unit": "per person-year",
            "currency": "GBP",
            "price_year": "2024",
            "price_year_type": "CY",
            "confidence_grade": 2,
            "evidence_type": "estimate",
            "country": "UK",
            "default_duration_years": "1",
            "drop_off": None,
            "deadweight": "0.28",
            "attribution": None,
            "displacement": None,
            "source": "licensee-svb-2024",
            "seed_ref": "licensee import",
            "verification": "V",
            "licensed_external": False,
            "notes": "",
        }
    ],
}


def licensed_text(**changes: Any) -> str:
    document = copy.deepcopy(LICENSED)
    document["entries"][0].update(changes)
    return json.dumps(document)


def test_merge_licensed_makes_a_new_version_based_on_the_base() -> None:
    base = shipped_catalogue()
    merged = merge_licensed(base, licensed_text(), version="uk-2026.1+licensed.1")
    assert merged.based_on == base.content_hash
    assert merged.content_hash not in (base.content_hash, None)
    assert (merged.version, merged.scheme) == ("uk-2026.1+licensed.1", None)
    assert len(merged.entries) == len(base.entries) + 1 and len(base.entries) == 29
    value = merged.entry("licensee-regular-volunteering")
    assert value.licensed_external  # marked, though the file said false
    assert not merged.source("licensee-svb-2024").bundle_allowed
    assert load_catalogue(dump_catalogue(merged)) == merged


def test_merge_licensed_may_cite_the_shipped_hact_slot() -> None:
    merged = merge_licensed(shipped_catalogue(), licensed_text(source=HACT), version="lic.2")
    assert merged.entry("licensee-regular-volunteering").source == HACT


@pytest.mark.parametrize(
    ("text", "path"),
    [
        (licensed_text(id="hmt-wellby"), "entries[0].id"),
        (licensed_text(deadweight="28"), "entries[0].deadweight"),
        (licensed_text(source="nowhere"), "entries[0].source"),
        (json.dumps({"wage_rates": []}), "wage_rates"),
        (json.dumps({}), "$"),
    ],
    ids=["id-clash", "percentage", "unknown-source", "other-section", "nothing"],
)
def test_merge_licensed_refuses_a_bad_file(text: str, path: str) -> None:
    with pytest.raises(CatalogueError) as refused:
        merge_licensed(shipped_catalogue(), text, version="lic.3")
    assert refused.value.path == path


def test_merge_licensed_refuses_a_source_id_clash_and_the_base_version() -> None:
    document = copy.deepcopy(LICENSED)
    document["sources"][0]["id"] = HACT
    with pytest.raises(CatalogueError, match=r"^sources\[0\]\.id: duplicate of base sources\["):
        merge_licensed(shipped_catalogue(), json.dumps(document), version="lic.4")
    with pytest.raises(CatalogueError, match=r"^version: "):
        merge_licensed(shipped_catalogue(), licensed_text(), version="uk-2026.1")


ASHE = "ons-ashe-2024-table-14"


def ashe_wage(value: str, soc_code: str | None, statistic: str = "median") -> dict[str, Any]:
    return {
        "series": "ASHE_HOURLY_EXCL_OT",
        "soc_code": soc_code,
        "soc_version": None if soc_code is None else "SOC2020",
        "geography": "Wales",
        "year": "2024",
        "period_type": "CY",
        "statistic": statistic,
        "basis": "gross hourly pay excluding overtime, all employees",
        "currency": "GBP",
        "value": value,
        "source": ASHE,
        "verification": "V",
        "notes": "made-up test values",
    }


SCHEME_ADDITIONS: dict[str, Any] = {
    "sources": [
        {
            "id": ASHE,
            "title": "ASHE 2024 Table 14 (scheme's extract)",
            "publisher": "Office for National Statistics",
            "authors": "ONS",
            "published": "2024-10",
            "data_year": "2024",
            "url": None,
            "licence": "OGL-3.0",
            "licence_constraints": "",
            "bundle_allowed": True,
            "evidence_tier": "official-statistic",
            "country": "UK",
            "notes": "",
        }
    ],
    "wage_rates": [ashe_wage("12.34", "5113"), ashe_wage("13.00", None)],
}


def test_derive_adds_a_schemes_ashe_wages_that_wage_then_finds() -> None:
    base = shipped_catalogue()
    taff = derive(base, json.dumps(SCHEME_ADDITIONS), scheme="taff-housing", version="taff.1")
    assert (taff.scheme, taff.based_on) == ("taff-housing", base.content_hash)
    gardener = taff.wage("ASHE_HOURLY_EXCL_OT", "2024", "5113", "Wales")
    assert gardener is not None and gardener.value == Decimal("12.34")
    generalist = taff.wage("ASHE_HOURLY_EXCL_OT", "2024", geography="Wales")
    assert generalist is not None and generalist.value == Decimal("13.00")
    assert base.wage("ASHE_HOURLY_EXCL_OT", "2024", "5113", "Wales") is None
    assert load_catalogue(dump_catalogue(taff)) == taff


def test_a_scheme_may_hold_values_a_shipped_catalogue_may_not() -> None:
    additions = copy.deepcopy(SCHEME_ADDITIONS)
    additions["sources"][0]["licence"] = "proprietary"
    additions["sources"][0]["bundle_allowed"] = False
    taff = derive(shipped_catalogue(), json.dumps(additions), scheme="taff-housing", version="t.2")
    assert taff.wage("ASHE_HOURLY_EXCL_OT", "2024", "5113", "Wales") is not None
    with pytest.raises(CatalogueError, match=r"^wage_rates\[\d+\]\.source: "):
        load_catalogue(dump_catalogue(replace(taff, scheme=None)))


def test_wage_asks_for_a_statistic_when_several_fit() -> None:
    additions = copy.deepcopy(SCHEME_ADDITIONS)
    additions["wage_rates"].append(ashe_wage("14.10", "5113", statistic="mean"))
    taff = derive(shipped_catalogue(), json.dumps(additions), scheme="taff-housing", version="t.3")
    with pytest.raises(LookupError):
        taff.wage("ASHE_HOURLY_EXCL_OT", "2024", "5113", "Wales")
    mean = taff.wage("ASHE_HOURLY_EXCL_OT", "2024", "5113", "Wales", statistic="mean")
    assert mean is not None and mean.value == Decimal("14.10")


def test_derive_names_paths_in_the_schemes_file_and_keeps_to_one_scheme() -> None:
    additions = copy.deepcopy(SCHEME_ADDITIONS)
    additions["wage_rates"][0]["soc_code"] = "51130"
    with pytest.raises(CatalogueError, match=r"^wage_rates\[0\]\.soc_code: "):
        derive(shipped_catalogue(), json.dumps(additions), scheme="taff-housing", version="t.4")
    taff = derive(
        shipped_catalogue(), json.dumps(SCHEME_ADDITIONS), scheme="taff-housing", version="t.5"
    )
    more = {"wage_rates": [ashe_wage("12.50", "6135")]}
    assert derive(taff, json.dumps(more), scheme="taff-housing", version="t.6").based_on == (
        taff.content_hash
    )
    with pytest.raises(CatalogueError, match=r"^scheme: "):
        derive(taff, json.dumps(more), scheme="elderplan", version="e.1")


def test_catalogues_are_immutable() -> None:
    c = shipped_catalogue()
    with pytest.raises(AttributeError):
        c.version = "changed"  # type: ignore[misc]
    entry: ValuationEntry = c.entries[0]
    with pytest.raises(AttributeError):
        entry.amount = Decimal(0)  # type: ignore[misc]
