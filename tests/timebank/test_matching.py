"""Offers and requests for help: normalisation, checks, ranking and the coordinators' summary."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from timebank.matching import (
    HelpRequest,
    Offer,
    matches,
    needs_and_capabilities,
    normalise_area,
    normalise_skills,
    offer_problems,
    request_problems,
)


def offer(
    id: str, member: str, skills: tuple[str, ...], area: str = "CF10", *, active: bool = True,
    created_us: int = 0, scheme: str = "s",
) -> Offer:  # fmt: skip
    return Offer(scheme, id, member, skills, area, "weekends", "", active, created_us)


def request(
    skills: tuple[str, ...], area: str = "CF10", member: str = "R", *, open: bool = True
) -> HelpRequest:
    return HelpRequest("s", "r1", member, skills, area, "soon", "", open, 0)


def test_skills_are_lowercase_slugs_without_repeats_in_one_order() -> None:
    assert normalise_skills([" Home  Repairs", "DIY", "diy", "", "dog_walking"]) == (
        "diy",
        "dog-walking",
        "home-repairs",
    )
    assert normalise_skills("Gardening, DIY") == ("diy", "gardening")
    assert normalise_area("  cf10 ") == "CF10" and normalise_area("cf10   1aa") == "CF10 1AA"


def test_bad_offers_and_requests_name_the_field() -> None:
    assert offer_problems(offer("o", "A", ("gardening",))) == []
    cases: list[tuple[Offer, str]] = [
        (offer("o", "A", ()), "skills"),
        (offer("o", "A", tuple(f"s{i}" for i in range(11))), "skills"),
        (offer("o", "A", ("café",)), "skills"),
        (offer("o", "A", ("x" * 41,)), "skills"),
        (offer("o", "A", ("Gardening",)), "skills"),  # not normalised
        (offer("o", "A", ("gardening",), area=""), "area"),
        (offer("o", "A", ("gardening",), area="cf10"), "area"),
        (offer("o", "A", ("gardening",), area="C" * 41), "area"),
    ]
    for o, field in cases:
        assert [f for f, _ in offer_problems(o)][:1] == [field], o
    long = Offer("s", "o", "A", ("diy",), "CF10", "x" * 501, "y" * 501, True, 0)
    assert [f for f, _ in offer_problems(long)] == ["availability", "note"]
    r = HelpRequest("s", "r", "A", ("diy",), "CF10", "w" * 501, "", True, 0)
    assert request_problems(r) == [("when", "at most 500 characters")]


def test_notes_stay_out_of_reprs() -> None:
    o = Offer("s", "o", "A", ("diy",), "CF10", "weekends", "my carer visits Tue", True, 0)
    r = HelpRequest("s", "r", "A", ("diy",), "CF10", "soon", "after my operation", True, 0)
    assert "carer" not in repr(o) and "operation" not in repr(r)


def test_more_shared_skills_then_the_same_area_then_the_oldest_offer_rank_first() -> None:
    found = [
        offer("far-two", "A", ("diy", "gardening"), "NP20", created_us=5),
        offer("near-one-new", "B", ("gardening",), created_us=9),
        offer("near-one-old", "C", ("gardening",), created_us=1),
        offer("far-one", "D", ("diy",), "NP20", created_us=0),
        offer("unrelated", "E", ("cooking",)),
    ]
    ranked = matches(request(("diy", "gardening")), found)
    assert [m.offer.id for m in ranked] == ["far-two", "near-one-old", "near-one-new", "far-one"]
    assert ranked[0].shared_skills == ("diy", "gardening") and not ranked[0].same_area
    assert [m.offer.id for m in matches(request(("diy", "gardening")), found, limit=2)] == [
        "far-two",
        "near-one-old",
    ]


def test_own_withdrawn_and_other_schemes_offers_and_closed_requests_never_match() -> None:
    found = [
        offer("own", "R", ("diy",)),
        offer("withdrawn", "A", ("diy",), active=False),
        offer("elsewhere", "B", ("diy",), scheme="other"),
        offer("ok", "C", ("diy",)),
    ]
    assert [m.offer.id for m in matches(request(("diy",)), found)] == ["ok"]
    assert matches(request(("diy",), open=False), found) == []


def test_coordinators_see_needs_and_capabilities_per_area() -> None:
    found = [
        offer("o1", "A", ("diy", "gardening")),
        offer("o2", "B", ("gardening",)),
        offer("o3", "C", ("cooking",), "NP20"),
        offer("o4", "D", ("diy",), active=False),
    ]
    asked = [
        request(("gardening", "shopping")),
        request(("lifts",), "NP20"),
        request(("lifts",), "NP20", open=False),
        request(("diy",), "SA1"),
    ]
    cf10, np20, sa1 = needs_and_capabilities(found, asked)
    assert (cf10.area, cf10.open_requests, cf10.active_offers) == ("CF10", 1, 2)
    assert cf10.needed == {"gardening": 1, "shopping": 1}
    assert cf10.offered == {"diy": 1, "gardening": 2} and cf10.unmet == ("shopping",)
    assert (np20.open_requests, np20.needed, np20.offered) == (1, {"lifts": 1}, {"cooking": 1})
    assert (sa1.active_offers, sa1.offered, sa1.unmet) == (0, {}, ("diy",))
    assert needs_and_capabilities([], []) == []


SKILLS = st.lists(st.sampled_from(["diy", "gardening", "lifts", "shopping"]), min_size=1)
OFFERS = st.lists(
    st.builds(
        offer,
        id=st.text("abcdef", min_size=1, max_size=4),
        member=st.sampled_from(["R", "A", "B"]),
        skills=SKILLS.map(normalise_skills),
        area=st.sampled_from(["CF10", "NP20"]),
        active=st.booleans(),
        created_us=st.integers(0, 100),
    ),
    max_size=20,
)


@given(OFFERS, SKILLS.map(normalise_skills), st.integers(1, 25))
def test_matches_are_others_active_offers_sharing_a_skill_best_first(
    found: list[Offer], skills: tuple[str, ...], limit: int
) -> None:
    req = request(skills)
    ranked = matches(req, found, limit)
    assert len(ranked) <= limit
    for m in ranked:
        assert m.offer.member != "R" and m.offer.active and m.shared_skills
        assert set(m.shared_skills) == set(m.offer.skills) & set(skills)
        assert m.same_area == (m.offer.area == req.area)
    keys = [(-len(m.shared_skills), not m.same_area, m.offer.created_us) for m in ranked]
    assert keys == sorted(keys)
    eligible = [o for o in found if o.active and o.member != "R" and set(o.skills) & set(skills)]
    assert len(ranked) == min(limit, len(eligible))
