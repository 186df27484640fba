"""The rules that tie claims and vouchers to the ledger entries that name them (pure)."""

from __future__ import annotations

from partners.consistency import VoucherRecord, voucher_problems
from timebank.claims import ClaimStatus
from timebank.consistency import ClaimEntry, ClaimRecord, claim_problems, ledger_claim_problems

P, C, R = ClaimStatus.PENDING, ClaimStatus.CONFIRMED, ClaimStatus.REJECTED


def credit(seq: int, claim: str) -> ClaimEntry:
    return ClaimEntry(seq, "transfer", None, claim)


def reversal(seq: int, of: int, claim: str) -> ClaimEntry:
    return ClaimEntry(seq, "reverse", of, claim)


def test_claims_that_agree_with_their_entries_have_no_problems() -> None:
    records = [
        ClaimRecord("a", P, None, None), ClaimRecord("b", C, 1, None),
        ClaimRecord("c", C, 2, 3), ClaimRecord("d", R, None, None),
        ClaimRecord("e", R, 4, 5),  # rejected, its racing entry since reversed (repaired)
    ]  # fmt: skip
    entries = [credit(1, "b"), credit(2, "c"), reversal(3, 2, "c"), credit(4, "e"),
               reversal(5, 4, "e")]  # fmt: skip
    assert claim_problems("taff", records, entries) == []


def test_each_disagreement_names_the_claim() -> None:
    records = [
        ClaimRecord("rejected", R, None, None), ClaimRecord("pending", P, None, None),
        ClaimRecord("lost", C, 7, None), ClaimRecord("twice", C, 8, None),
        ClaimRecord("moved", C, 3, None), ClaimRecord("unreversed", C, 11, 12),
    ]  # fmt: skip
    entries = [credit(1, "rejected"), credit(2, "pending"), credit(4, "moved"),
               credit(8, "twice"), credit(9, "twice"), credit(10, "ghost"),
               credit(11, "unreversed")]  # fmt: skip
    assert claim_problems("taff", records, entries) == [
        "taff: entry 10 names claim ghost, which does not exist",
        "taff: claim lost is confirmed, but no entry names it",
        "taff: claim moved records entry 3, but entry 4 is the one naming it",
        "taff: claim pending is pending, but entry 2 names it",
        "taff: claim rejected is rejected, but entry 1 credits it "
        "(timebank repair-decisions undoes it by a reversal)",
        "taff: claim twice has 2 entries (8, 9); a claim has one",
        "taff: claim unreversed records reversal 12, but no reversal names it",
    ]


def test_vouchers_agree_with_how_the_ledger_resolved_their_reservations() -> None:
    records = [
        VoucherRecord("OPEN", 1, False, None), VoucherRecord("USED", 2, False, 5),
        VoucherRecord("VOID", 3, True, None), VoucherRecord("LAPSED", 4, False, None),
    ]  # fmt: skip
    resolved = {2: (5, "post"), 3: (6, "void"), 4: (7, "expire")}
    assert voucher_problems("taff", records, resolved) == []


def test_a_voucher_whose_state_the_ledger_contradicts_is_named() -> None:
    records = [
        VoucherRecord("BOTH", 1, True, 9), VoucherRecord("NOPOST", 2, False, 5),
        VoucherRecord("NOVOID", 3, True, None), VoucherRecord("UNSEEN", 4, False, None),
        VoucherRecord("UNVOIDED", 5, False, None),
    ]  # fmt: skip
    resolved = {2: (6, "void"), 4: (7, "post"), 5: (8, "void")}
    assert voucher_problems("taff", records, resolved) == [
        "taff: voucher BOTH is both settled (entry 9) and voided",
        "taff: voucher NOPOST is settled by entry 5, but its reservation 2 is void by entry 6",
        "taff: voucher NOVOID is voided, but its reservation 3 is open",
        "taff: voucher UNSEEN is not settled, but entry 7 posted its reservation",
        "taff: voucher UNVOIDED is not voided, but entry 8 voided its reservation",
    ]


def test_a_ledger_alone_agrees_when_each_claim_has_one_entry_and_at_most_one_reversal() -> None:
    entries = [credit(1, "b"), credit(2, "c"), reversal(3, 2, "c"), credit(4, "e")]
    assert ledger_claim_problems("taff", entries) == []


def test_a_ledger_alone_names_each_claim_credited_twice_reversed_twice_or_crosswise() -> None:
    entries = [
        credit(1, "twice"),
        credit(2, "twice"),
        credit(3, "back"),
        reversal(4, 3, "back"),
        reversal(5, 3, "back"),
        credit(6, "mine"),
        credit(7, "other"),
        reversal(8, 7, "mine"),
        reversal(9, 1, "orphan"),
    ]
    assert ledger_claim_problems("taff", entries) == [
        "taff: claim back has 2 reversals; a claim is reversed at most once",
        "taff: claim mine: reversal 8 takes back entry 7, not the claim's own (6)",
        "taff: claim orphan: reversal 9 takes back entry 1, not the claim's own (none)",
        "taff: claim twice has 2 entries (1, 2); a claim has one",
    ]
