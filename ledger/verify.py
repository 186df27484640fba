"""Check every ledger invariant by streaming a ledger once; signatures checked on all cores.

The same checks run on a database (read-only) and on an exported bundle: sequence continuity,
the hash chain, every signature against the certified key list, well-formed zero-sum entries,
reservations resolved at most once, no account below its floor at any point, stored balances
against recomputed ones, every checkpoint's signature and root, and (on a database) explicit
RFC 6962 consistency proofs between successive checkpoints. Memory grows with the number of
accounts, open reservations and reversals, never with the number of entries.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from . import merkle, proofs, rules
from .encoding import entry_hash
from .model import RESERVED_ACCOUNT, ZERO_HASH, Account, Checkpoint, Entry, EntryKind, PublicKey
from .signing import verify_many

CHUNK = 2048  # signatures per job sent to a worker
_NODE_KEY = struct.Struct(">BQ")  # as storage.node_digest


@dataclass
class LedgerData:
    """What verification reads of one ledger; `entries` streams in sequence order."""

    ledger: str
    keys: list[PublicKey]
    accounts: list[Account]
    checkpoints: list[Checkpoint]
    reversal_refs: set[int]
    entries: AsyncIterator[Entry]
    head: tuple[int, bytes] | None = None  # the stored head, where the source has one
    consistency: Callable[[int, int], Awaitable[list[bytes]]] | None = None
    nodes_problem: Callable[[int], Awaitable[str | None]] | None = None  # stored Merkle nodes
    # (digest, count) of the stored Merkle nodes of the first n leaves in creation order, and
    # how many nodes are stored in all; computed on another thread while the entries stream
    node_digest: Callable[[int], Coroutine[Any, Any, tuple[bytes, int, int]]] | None = None


@dataclass(frozen=True)
class Problem:
    ledger: str
    seq: int | None
    message: str

    def __str__(self) -> str:
        where = f"ledger {self.ledger}" + (f" at sequence {self.seq}" if self.seq else "")
        return f"{where}: {self.message}"


@dataclass
class Report:
    ledgers: int = 0
    entries: int = 0
    checkpoints: int = 0
    keys: int = 0
    accounts: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        if self.problems:  # one line for each ledger at fault
            return "\n".join(f"FAILED {p}" for p in self.problems)
        return (
            f"OK {self.ledgers} ledgers, {self.entries} entries, {self.checkpoints} checkpoints, "
            f"{self.keys} keys, {self.accounts} accounts: chain, signatures, balances, floors "
            "and checkpoints verified"
        )


class _Chain:
    """Replays one ledger's entries, recording the first structural problem."""

    def __init__(self, data: LedgerData, held: list[Checkpoint]) -> None:
        self.data = data
        self.ledger = data.ledger
        self.seq = 0
        self.hash = ZERO_HASH
        self.time_us = 0
        self.floors = {a.code: a.floor for a in data.accounts}
        self.balances = dict.fromkeys(self.floors, 0)
        self.open: dict[int, Entry] = {}
        self.kept: dict[int, Entry] = {}
        self.reversed: set[int] = set()
        self.frontier = merkle.Frontier()
        self.nodes = hashlib.sha256()  # over the nodes the log makes, as storage.node_digest
        self.roots = {cp.size: cp.root for cp in data.checkpoints}
        self.held = {cp.size: cp.root for cp in held}  # checkpoints the verifier kept itself
        self.problem: Problem | None = None

    def fail(self, seq: int | None, message: str) -> None:
        if self.problem is None:
            self.problem = Problem(self.ledger, seq, message)

    def feed(self, e: Entry) -> tuple[int, bytes, bytes, bytes] | None:
        """Check one entry; return the signature job for it, or None once a problem is found."""
        expected = self.seq + 1
        if e.seq != expected:
            self.fail(expected, f"expected sequence {expected}, found {e.seq} (gap or reorder)")
            return None
        if e.ledger != self.ledger or e.prev_hash != self.hash:
            self.fail(e.seq, "previous-hash link broken: the chain was rewritten here")
            return None
        if e.kind not in rules.KINDS:
            self.fail(e.seq, f"unknown entry kind {e.kind!r}")
            return None
        if entry_hash(e) != e.hash:
            self.fail(e.seq, "stored hash does not match the entry's content (content changed)")
            return None
        key = proofs.key_for_seq(self.data.keys, e.seq)
        if key is None or key.key_id != e.key_id:
            self.fail(e.seq, f"signed with key {e.key_id}, not the listed key for this sequence")
            return None
        if e.time_us < self.time_us:
            self.fail(e.seq, "time goes backwards")
            return None
        referenced = self._referenced(e)
        problem = rules.shape_problem(e, referenced)
        if problem:
            self.fail(e.seq, problem)
            return None
        for p in e.postings:
            if p.account not in self.floors:
                self.fail(e.seq, f"posting to unknown account {p.account}")
                return None
        breach = rules.floor_problem(e.postings, self.balances, self.floors)
        if breach:
            self.fail(e.seq, breach[1])
            return None
        for p in e.postings:
            self.balances[p.account] += p.amount
        self._track(e)
        made = self.frontier.append(e.hash)
        if len(made) > 1:
            self.nodes.update(b"".join(_NODE_KEY.pack(lvl, i) + h for lvl, i, h in made[1:]))
        root = self.roots.get(e.seq)
        if root is not None and root != self.frontier.root():
            self.fail(e.seq, f"checkpoint {e.seq} root does not match the log")
            return None
        root = self.held.get(e.seq)
        if root is not None and root != self.frontier.root():
            self.fail(
                e.seq,
                f"the log's first {e.seq} entries are not those of the checkpoint "
                "you hold: history was rewritten",
            )
            return None
        self.seq, self.hash, self.time_us = e.seq, e.hash, e.time_us
        return (e.seq, key.public_key, e.hash, e.signature)

    def _referenced(self, e: Entry) -> Entry | None:
        if not e.ref:
            return None
        if e.kind is EntryKind.REVERSE:
            if e.ref in self.reversed:
                return None
            return self.kept.get(e.ref)
        return self.open.get(e.ref)

    def _track(self, e: Entry) -> None:
        if e.kind is EntryKind.RESERVE:
            self.open[e.seq] = e
        elif e.kind in (EntryKind.POST, EntryKind.VOID, EntryKind.EXPIRE):
            del self.open[e.ref]
        elif e.kind is EntryKind.REVERSE:
            self.reversed.add(e.ref)
            self.kept.pop(e.ref, None)
        if e.seq in self.data.reversal_refs:
            self.kept[e.seq] = e

    def finish(self) -> None:
        if self.problem is not None:
            return
        d = self.data
        if d.head is not None and d.head != (self.seq, self.hash):
            self.fail(
                self.seq + 1, f"the ledger's head says {d.head[0]} entries; log has {self.seq}"
            )
        for size in self.held:
            if size > self.seq:
                self.fail(
                    self.seq + 1,
                    f"the checkpoint you hold has {size} entries; the log "
                    f"has {self.seq}: entries were removed",
                )
        for cp in d.checkpoints:
            if cp.size > self.seq:
                self.fail(
                    self.seq + 1,
                    f"checkpoint {cp.size} is beyond the log's end "
                    f"({self.seq}): entries were removed",
                )
            elif cp.size == 0 and cp.root != merkle.EMPTY_ROOT:
                self.fail(None, "checkpoint 0 root is not the empty root")
        stored = {a.code: a.balance for a in d.accounts}
        for code, balance in sorted(self.balances.items()):
            if stored.get(code) != balance:
                self.fail(
                    None,
                    f"stored balance of {code} is {stored.get(code)}, "
                    f"its postings sum to {balance}",
                )
        if sum(self.balances.values()) != 0:
            self.fail(None, "balances do not sum to zero")
        held = sum(-rules.reserve_debit(e).amount for e in self.open.values())
        if self.balances.get(RESERVED_ACCOUNT, 0) != held:
            self.fail(
                None,
                f"{RESERVED_ACCOUNT} holds {self.balances.get(RESERVED_ACCOUNT)}, "
                f"open reservations total {held}",
            )


async def verify_sources(
    sources: AsyncIterator[LedgerData],
    *,
    workers: int | None = None,
    trusted: dict[str, list[PublicKey]] | None = None,
    held: dict[str, list[Checkpoint]] | None = None,
) -> Report:
    """Verify every ledger the source yields; signature checks fan out to `workers` processes.

    `trusted` pins each ledger's key list (from a published key file): the source's list must
    begin with exactly those keys, so a rewritten log signed by a substituted key fails.
    `held` are checkpoints the verifier kept from before (published, or from receipts): each
    must be signed by the ledger's keys, the log must be an append-only extension of it (its
    first entries give the same root, and the consistency proof to the newest stored
    checkpoint holds), so an old checkpoint cannot be passed off against a rewritten log.
    """
    report = Report()
    count = workers if workers is not None else (os.cpu_count() or 1)
    pool: Executor | None = ProcessPoolExecutor(count) if count > 1 else None
    try:
        async for data in sources:
            await _verify_one(data, report, pool, count, trusted, (held or {}).get(data.ledger, []))
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    report.problems.sort(key=lambda p: (p.ledger, p.seq is None, p.seq or 0))
    return report


async def _verify_one(
    data: LedgerData,
    report: Report,
    pool: Executor | None,
    count: int,
    trusted: dict[str, list[PublicKey]] | None,
    held: list[Checkpoint],
) -> None:
    report.ledgers += 1
    report.keys += len(data.keys)
    report.accounts += len(data.accounts)
    report.checkpoints += len(data.checkpoints)
    problem = proofs.key_list_problem(data.keys) or _sizes_problem(data.checkpoints)
    if not problem and any(k.ledger != data.ledger for k in data.keys):
        problem = "the key list belongs to another ledger"
    if not problem and trusted is not None:
        problem = _trust_problem(data, trusted.get(data.ledger, []))
    for cp in held:
        problem = problem or _held_problem(data, cp)
    if problem:
        report.problems.append(Problem(data.ledger, None, problem))
        return
    chain = _Chain(data, held)
    digest_task: asyncio.Task[tuple[bytes, int, int]] | None = None
    if data.node_digest is not None and data.head is not None:
        digest_task = asyncio.create_task(data.node_digest(data.head[0]))
    loop = asyncio.get_running_loop()
    jobs: list[tuple[int, bytes, bytes, bytes]] = []
    pending: list[asyncio.Future[list[int]]] = []
    bad: list[int] = []

    async def drain(limit: int) -> None:
        while len(pending) > limit:
            bad.extend(await pending.pop(0))

    def flush() -> None:
        if pool is None:
            bad.extend(verify_many(jobs))
        else:
            pending.append(loop.run_in_executor(pool, verify_many, list(jobs)))
        jobs.clear()

    async for entry in data.entries:
        job = chain.feed(entry)
        if job is None:
            break
        report.entries += 1
        jobs.append(job)
        if len(jobs) >= CHUNK:
            flush()
            await drain(2 * count)
    flush()
    nodes = None
    if digest_task is not None:
        stored, in_prefix, total = await digest_task
        made = chain.seq - bin(chain.seq).count("1")  # nodes of a tree of that many leaves
        intact = (stored, in_prefix, total) == (chain.nodes.digest(), made, made)
        if not intact and chain.problem is None and data.nodes_problem is not None:
            nodes = await data.nodes_problem(chain.seq) or "stored Merkle nodes do not match"
    await drain(0)
    chain.finish()
    if bad:
        report.problems.append(Problem(data.ledger, min(bad), "bad signature"))
    if chain.problem is not None:
        report.problems.append(chain.problem)
    for cp in data.checkpoints:
        problem = proofs.checkpoint_problem(data.keys, cp)
        if problem:
            report.problems.append(Problem(data.ledger, cp.size or None, problem))
    if data.consistency is not None and chain.problem is None:
        await _check_consistency(data, report, held)
    if nodes is not None and chain.problem is None:
        report.problems.append(Problem(data.ledger, None, nodes))
    # keep only the earliest problem per ledger: later ones are usually its echoes
    mine = [p for p in report.problems if p.ledger == data.ledger]
    if len(mine) > 1:
        first = min(mine, key=lambda p: (p.seq is None, p.seq or 0))
        report.problems[:] = [p for p in report.problems if p.ledger != data.ledger] + [first]


def _sizes_problem(checkpoints: list[Checkpoint]) -> str | None:
    sizes = [cp.size for cp in checkpoints]
    if len(set(sizes)) != len(sizes):
        return "two checkpoints claim the same size"
    return None


def _trust_problem(data: LedgerData, pinned: list[PublicKey]) -> str | None:
    if not pinned:
        return "no trusted keys for this ledger"
    if [k.public_key for k in data.keys[: len(pinned)]] != [k.public_key for k in pinned]:
        return "its key list does not begin with the trusted keys"
    return None


def _held_problem(data: LedgerData, cp: Checkpoint) -> str | None:
    if cp.ledger != data.ledger:
        return f"the checkpoint you hold at size {cp.size} is of ledger {cp.ledger}"
    problem = proofs.checkpoint_problem(data.keys, cp)
    return f"the checkpoint you hold: {problem}" if problem else None


async def _check_consistency(data: LedgerData, report: Report, held: list[Checkpoint]) -> None:
    assert data.consistency is not None
    sized = [cp for cp in data.checkpoints if cp.size > 0]
    pairs = list(itertools.pairwise(sized))
    newest = sized[-1] if sized else None
    pairs += [(cp, newest) for cp in held if newest and 0 < cp.size <= newest.size]
    for old, new in pairs:
        proof = await data.consistency(old.size, new.size)
        problem = proofs.consistency_problem(data.keys, old, new, proof)
        if problem:
            report.problems.append(Problem(data.ledger, new.size, problem))
            return
