"""Schemes and members: settings are checked and personal data stays off the ledger."""

from __future__ import annotations

from timebank.claims import ClaimRules, SchemeModel
from timebank.schemes import Member, Role, Scheme, member_problems, scheme_problems

CREDITS = ClaimRules(SchemeModel.TIME_CREDITS)
P2P = ClaimRules(SchemeModel.PERSON_TO_PERSON)


def test_a_time_credit_scheme_and_a_person_to_person_bank_are_well_formed() -> None:
    assert scheme_problems(Scheme("taff-housing", "Taff Housing", CREDITS)) == []
    bank = Scheme("member-to-member", "Member to Member", P2P, member_floor=-600)
    assert scheme_problems(bank) == []


def test_members_of_a_time_credit_scheme_cannot_go_below_zero() -> None:
    fields = [f for f, _ in scheme_problems(Scheme("taff", "Taff", CREDITS, member_floor=-60))]
    assert fields == ["member_floor"]


def test_bad_scheme_settings_are_named_by_field() -> None:
    bad = Scheme("X", " ", P2P, member_floor=60, credit_expiry_months=0, auto_accept_hours=0)
    fields = {f for f, _ in scheme_problems(bad)}
    assert fields == {"id", "name", "member_floor", "credit_expiry_months", "auto_accept_hours"}


def test_a_members_ledger_account_is_pseudonymous() -> None:
    m = Member("taff-housing", "T0042", "Ann Jones", contact="ann@example.org")
    assert m.account == "member:T0042"
    assert "Ann" not in m.account and member_problems(m) == []


def test_bad_members_are_named_by_field() -> None:
    bad = Member("taff-housing", "no spaces", "", roles=frozenset())
    assert {f for f, _ in member_problems(bad)} == {"id", "display_name", "roles"}
    assert member_problems(Member("t", "C1", "Cath", roles=frozenset({Role.COORDINATOR}))) == []
