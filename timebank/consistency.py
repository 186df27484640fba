"""The time bank's records against its ledger: each claim's decision and the entries naming it.

The ledger proves what was written; these rules prove the records agree with it. A confirmed
claim has exactly one entry (`entry_seq`) that names it; an entry that names a claim belongs to
a confirmed claim (or to one whose credit was taken back by a reversal that names it too); a
pending or plainly rejected claim has none. Pure: the rows come from `storage`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .claims import ClaimStatus

REPAIR_HINT = "timebank repair-decisions undoes it by a reversal"


@dataclass(frozen=True, slots=True)
class ClaimRecord:
    """What the claims table says of one claim's decision."""

    id: str
    status: ClaimStatus
    entry_seq: int | None
    reversal_seq: int | None


@dataclass(frozen=True, slots=True)
class ClaimEntry:
    """A ledger entry whose metadata names a claim: its transfer, or the reversal of it."""

    seq: int
    kind: str  # "transfer" or "reverse"
    ref: int | None  # for a reversal, the entry it negates
    claim: str


def claim_problems(
    scheme: str, records: Iterable[ClaimRecord], entries: Iterable[ClaimEntry]
) -> list[str]:
    """Every disagreement between the claims of `scheme` and its ledger, naming the claim."""
    by_id = {r.id: r for r in records}
    credits: dict[str, list[int]] = {}
    reversals: dict[str, list[ClaimEntry]] = {}
    out: list[str] = []
    for e in entries:
        if e.kind == "reverse":
            reversals.setdefault(e.claim, []).append(e)
        else:
            credits.setdefault(e.claim, []).append(e.seq)
    for claim_id in sorted((credits.keys() | reversals.keys()) - by_id.keys()):
        seqs = sorted(credits.get(claim_id, []) + [e.seq for e in reversals.get(claim_id, [])])
        out.append(f"{scheme}: entry {seqs[0]} names claim {claim_id}, which does not exist")
    for r in sorted(by_id.values(), key=lambda r: r.id):
        out += _one(scheme, r, credits.get(r.id, []), reversals.get(r.id, []))
    return out


def ledger_claim_problems(scheme: str, entries: Iterable[ClaimEntry]) -> list[str]:
    """What a ledger alone says of its claims, with no claims table beside it (an exported
    bundle): no claim credited by two entries or reversed twice, and a reversal that names a
    claim takes back that claim's own entry."""
    credits: dict[str, list[int]] = {}
    reversals: dict[str, list[ClaimEntry]] = {}
    for e in entries:
        if e.kind == "reverse":
            reversals.setdefault(e.claim, []).append(e)
        else:
            credits.setdefault(e.claim, []).append(e.seq)
    out: list[str] = []
    for claim_id in sorted(credits.keys() | reversals.keys()):
        name = f"{scheme}: claim {claim_id}"
        mine, back = sorted(credits.get(claim_id, [])), reversals.get(claim_id, [])
        if len(mine) > 1:
            out.append(
                f"{name} has {len(mine)} entries ({', '.join(map(str, mine))}); a claim has one"
            )
        elif len(back) > 1:
            out.append(f"{name} has {len(back)} reversals; a claim is reversed at most once")
        elif back and back[0].ref not in mine:
            out.append(
                f"{name}: reversal {back[0].seq} takes back entry {back[0].ref}, "
                f"not the claim's own ({mine[0] if mine else 'none'})"
            )
    return out


def _one(scheme: str, r: ClaimRecord, credits: list[int], reversals: list[ClaimEntry]) -> list[str]:
    name = f"{scheme}: claim {r.id}"
    if len(credits) > 1:
        return [
            f"{name} has {len(credits)} entries ({', '.join(map(str, sorted(credits)))}); "
            "a claim has one"
        ]
    if len(reversals) > 1:
        return [f"{name} has {len(reversals)} reversals; a claim is reversed at most once"]
    credit = credits[0] if credits else None
    reversal = reversals[0] if reversals else None
    named = credit if credit is not None else (reversal.seq if reversal else None)
    if r.status is ClaimStatus.PENDING and named is not None:
        return [f"{name} is pending, but entry {named} names it"]
    if r.status is ClaimStatus.REJECTED and credit is not None and reversal is None:
        return [f"{name} is rejected, but entry {credit} credits it ({REPAIR_HINT})"]
    if r.status is ClaimStatus.CONFIRMED and credit is None:
        return [f"{name} is confirmed, but no entry names it"]
    if credit is not None and r.entry_seq != credit:
        return [f"{name} records entry {r.entry_seq}, but entry {credit} is the one naming it"]
    if reversal is not None and (r.reversal_seq != reversal.seq or reversal.ref != credit):
        return [
            f"{name}: reversal {reversal.seq} does not match the claim's record "
            f"(reversal {r.reversal_seq} of entry {r.entry_seq})"
        ]
    if reversal is None and r.reversal_seq is not None:
        return [f"{name} records reversal {r.reversal_seq}, but no reversal names it"]
    return []
