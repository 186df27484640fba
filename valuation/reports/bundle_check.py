"""Check a report against an exported ledger bundle, with no database: what an auditor holding
only the public bundle (`timebank export-log`) can recompute.

From the bundle alone come the scheme's signed checkpoint, its entries up to that checkpoint
and so every figure the ledger decides: the hours by activity, month and classification (the
activity table is taken as the report states it), participations, unique members, sessions,
reciprocity, the credits and the books, the partners' redemptions, and Lens A when the report
was valued with the shipped catalogue. What needs the scheme's own records (monitoring answers,
outcomes, costs, ratings, a scheme's catalogue version) is listed as not checkable here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

from ledger import Entry, EntryKind, bundle_sources
from timebank.books import MEMBER_PREFIX, Fold

from ..catalogue import shipped_catalogue
from .compare import differences
from .engine import build
from .facts import ActivityInfo, ActivityMonth, Checkpoint, Facts, MemberTotal

CHECKABLE = (
    "headline.hours",
    "headline.minutes",
    "headline.unique_members",
    "headline.participations",
    "headline.credits_issued",
    "headline.credits_redeemed",
    "outputs",
    "inventory",
    "activities",
)
NOT_CHECKABLE = (
    "equality (members' monitoring answers)",
    "lenses.B and lenses.C, horizons (outcomes and costs)",
    "co_assessment (ratings)",
    "outcomes_recorded",
)


class _Claims:
    """Confirmed claims' hours from the entries, less those reversed by the checkpoint."""

    def __init__(self, start: date, end: date) -> None:
        self.start, self.end = start.isoformat(), end.isoformat()
        self.claims: dict[int, tuple[str, str, str, str | None, int]] = {}  # seq -> claim

    def add(self, e: Entry) -> None:
        meta = dict(e.meta)
        if e.kind is EntryKind.REVERSE:
            self.claims.pop(e.ref, None)
        elif e.kind is EntryKind.TRANSFER and "claim" in meta and "activity" in meta:
            day = meta["day"]
            if not self.start <= day <= self.end:
                return
            members = [p for p in e.postings if p.account.startswith(MEMBER_PREFIX)]
            giver = next(p for p in members if p.amount > 0)
            taker = next((p for p in members if p.amount < 0), None)
            receiver = taker.account.removeprefix(MEMBER_PREFIX) if taker else None
            giver_id = giver.account.removeprefix(MEMBER_PREFIX)
            self.claims[e.seq] = (meta["activity"], day, giver_id, receiver, giver.amount)

    def facts(self, report: dict[str, Any], start: date, end: date) -> Facts:
        cells: dict[tuple[str, str], list[tuple[str, str, int]]] = defaultdict(list)
        given: dict[str, list[int]] = defaultdict(list)
        received: dict[str, int] = defaultdict(int)
        for activity, day, member, receiver, minutes in self.claims.values():
            cells[(activity, day[:7])].append((member, day, minutes))
            given[member].append(minutes)
            if receiver:
                received[receiver] += minutes
        by_activity: dict[str, set[str]] = defaultdict(set)
        by_month: dict[str, set[str]] = defaultdict(set)
        for (activity, month), rows in cells.items():
            by_activity[activity] |= {m for m, _, _ in rows}
            by_month[month] |= {m for m, _, _ in rows}
        cp = report["checkpoint"]
        return Facts(
            scheme=report["scheme"]["id"],
            scheme_name=report["scheme"]["name"],
            model=report["scheme"]["model"],
            start=start,
            end=end,
            checkpoint=Checkpoint(
                cp["size"], cp["root"], cp["time"], cp["key_id"], cp["signature"]
            ),
            activities=tuple(ActivityInfo(**a) for a in report["activities"]),
            cells=tuple(
                ActivityMonth(
                    a,
                    m,
                    sum(x for _, _, x in rows),
                    len(rows),
                    len({p for p, _, _ in rows}),
                    len({d for _, d, _ in rows}),
                )
                for (a, m), rows in sorted(cells.items())
            ),
            members=tuple(
                MemberTotal(m, sum(given.get(m, [])), received.get(m, 0), len(given.get(m, [])))
                for m in sorted(given.keys() | received.keys())
            ),
            unique_members=len(given),
            members_by_activity={a: len(s) for a, s in by_activity.items()},
            members_by_month={m: len(s) for m, s in by_month.items()},
            as_of=report["as_of"],
        )


async def check_against_bundle(report: dict[str, Any], bundle: Path) -> tuple[list[str], int]:
    """The differences between `report` and what `bundle` says (empty when every checkable
    figure matches), and the number of the report's entries read."""
    from . import parameters_of  # the package's own helper; imported late to avoid a cycle

    scheme, size = report["scheme"]["id"], int(report["checkpoint"]["size"])
    start = date.fromisoformat(report["period"]["from"])
    end = date.fromisoformat(report["period"]["to"])
    async for data in bundle_sources(bundle):
        if data.ledger != scheme:
            continue
        signed = [cp for cp in data.checkpoints if cp.size == size]
        if not signed:
            return [f"$.checkpoint.size: the bundle has no checkpoint of size {size}"], 0
        if signed[0].root.hex() != report["checkpoint"]["root"]:
            return ["$.checkpoint.root: the bundle's checkpoint has another root"], 0
        fold, claims = Fold(scheme, start, end, size), _Claims(start, end)
        read = 0
        async for e in _upto(data.entries, size):
            fold.add(e)
            claims.add(e)
            read += 1
        again = build(
            claims.facts(report, start, end),
            fold.books(),
            parameters_of(report),
            shipped_catalogue(),
        )
        found = []
        for path in CHECKABLE:
            found += _compare(again, report, path)
        if report["catalogue"]["hash"] == shipped_catalogue().content_hash:
            found += _compare(again, report, "lenses.A") + _compare(
                again, report, "headline.lens_a_value_of_hours"
            )
        return found, read
    return [f"$.scheme.id: the bundle has no ledger {scheme!r}"], 0


def _compare(again: dict[str, Any], report: dict[str, Any], path: str) -> list[str]:
    a: Any = again
    b: Any = report
    for part in path.split("."):
        a, b = (
            a.get(part) if isinstance(a, dict) else None,
            b.get(part) if isinstance(b, dict) else None,
        )
    return differences(a, b, "$." + path)


async def _upto(entries: AsyncIterator[Entry], size: int) -> AsyncIterator[Entry]:
    async for e in entries:
        if e.seq > size:
            break
        yield e
