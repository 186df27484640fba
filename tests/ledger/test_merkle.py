"""ledger.merkle against the RFC 6962 reference definition at every size 1..70, and known answers.

`root_of` is the reference MTH; PATH and PROOF are written out here straight from RFC 6962
2.1.1/2.1.2 on top of it, so the range-based proofs, the Frontier and the RFC 9162 verifiers are
each checked against an independent statement of the same definitions.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.merkle import (
    EMPTY_ROOT,
    Frontier,
    consistency_ranges,
    frontier_levels,
    frontier_nodes,
    inclusion_ranges,
    leaf_hash,
    node_hash,
    range_hash,
    range_nodes,
    root_of,
    verify_consistency,
    verify_inclusion,
)

MAX = 70
LEAVES = [hashlib.sha256(f"entry {i}".encode()).digest() for i in range(MAX)]  # like entry hashes


@functools.cache
def mth(start: int, end: int) -> bytes:
    """MTH(D[start:end]) of LEAVES by the reference definition."""
    return root_of(LEAVES[start:end])


def ref_path(m: int, start: int, end: int) -> list[bytes]:
    """RFC 6962 2.1.1 PATH(m, D[start:end]), m relative to start."""
    n = end - start
    if n == 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    if m < k:
        return [*ref_path(m, start, start + k), mth(start + k, end)]
    return [*ref_path(m - k, start + k, end), mth(start, start + k)]


def ref_proof(m: int, n: int) -> list[bytes]:
    """RFC 6962 2.1.2 PROOF(m, D[0:n])."""

    def subproof(m: int, start: int, end: int, b: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if b else [mth(start, end)]
        k = 1 << ((n - 1).bit_length() - 1)
        if m <= k:
            return [*subproof(m, start, start + k, b), mth(start + k, end)]
        return [*subproof(m - k, start + k, end, False), mth(start, start + k)]

    return subproof(m, 0, n, True)


def flip(h: bytes, at: int = 0) -> bytes:
    return h[:at] + bytes([h[at] ^ 0x01]) + h[at + 1 :]


class Grown:
    """LEAVES appended to a Frontier one by one: the roots and every node it reported."""

    def __init__(self, leaves: Sequence[bytes] = LEAVES) -> None:
        self.frontier = Frontier()
        self.roots = [self.frontier.root()]
        self.nodes: dict[tuple[int, int], bytes] = {}
        self.made: list[list[tuple[int, int, bytes]]] = []
        for leaf in leaves:
            made = self.frontier.append(leaf)
            self.made.append(made)
            for level, idx, h in made:
                assert (level, idx) not in self.nodes, "a node was made twice"
                self.nodes[(level, idx)] = h
            self.roots.append(self.frontier.root())

    def lookup(self, node: tuple[int, int]) -> bytes:
        return self.nodes[node]

    def hashes(self, ranges: list[tuple[int, int]]) -> list[bytes]:
        """Proof hashes as the store makes them: from stored perfect-subtree nodes only."""
        return [range_hash(s, e, self.lookup) for s, e in ranges]


@pytest.fixture(scope="module")
def grown() -> Grown:
    return Grown()


# ---- RFC 6962 known answers (the Certificate Transparency test vectors) --------------------------

CT_LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_INCLUSION = [  # (0-based leaf index, tree size, PATH)
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
CT_CONSISTENCY = [  # (old size, new size, PROOF)
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]


def test_empty_root_is_sha256_of_nothing() -> None:
    assert hashlib.sha256(b"").digest() == EMPTY_ROOT
    assert EMPTY_ROOT.hex() == CT_ROOTS[0]
    assert root_of([]) == EMPTY_ROOT
    assert Frontier().root() == EMPTY_ROOT


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    a, b = LEAVES[0], LEAVES[1]
    assert node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()
    assert leaf_hash(a + b) != node_hash(a, b)  # a leaf can never pose as an inner node


def test_known_roots() -> None:
    grown = Grown(CT_LEAVES)
    for n, expected in enumerate(CT_ROOTS):
        assert root_of(CT_LEAVES[:n]).hex() == expected, n
        assert grown.roots[n].hex() == expected, n


def test_known_inclusion_proofs() -> None:
    grown = Grown(CT_LEAVES)
    for index, size, path in CT_INCLUSION:
        proof = grown.hashes(inclusion_ranges(index, size))
        assert [p.hex() for p in proof] == path
        root = bytes.fromhex(CT_ROOTS[size])
        assert verify_inclusion(index, size, leaf_hash(CT_LEAVES[index]), proof, root)


def test_known_consistency_proofs() -> None:
    grown = Grown(CT_LEAVES)
    for old, new, path in CT_CONSISTENCY:
        proof = grown.hashes(consistency_ranges(old, new))
        assert [p.hex() for p in proof] == path
        old_root, new_root = bytes.fromhex(CT_ROOTS[old]), bytes.fromhex(CT_ROOTS[new])
        assert verify_consistency(old, new, old_root, new_root, proof)


# ---- the Frontier --------------------------------------------------------------------------------


def test_frontier_root_matches_the_reference_for_every_size(grown: Grown) -> None:
    assert grown.roots[0] == EMPTY_ROOT
    for n in range(1, MAX + 1):
        assert grown.roots[n] == mth(0, n), n
    assert grown.frontier.size == MAX


def test_frontier_reports_each_perfect_subtree_when_it_completes(grown: Grown) -> None:
    for i, made in enumerate(grown.made):
        # appending leaf i completes one node per trailing 1-bit of i, plus the leaf itself
        assert [level for level, _, _ in made] == list(range(len(made)))
        assert len(made) == 1 + ((i + 1) & -(i + 1)).bit_length() - 1
        for level, idx, h in made:
            assert (idx + 1) << level == i + 1  # it ends at this leaf
            start = idx << level
            assert h == mth(start, start + (1 << level)), (level, idx)
    perfect = {(lvl, i) for lvl in range(7) for i in range(MAX >> lvl)}
    assert set(grown.nodes) == perfect


def test_frontier_levels_and_nodes_tile_the_tree() -> None:
    for n in range(MAX + 1):
        levels = frontier_levels(n)
        assert levels == sorted(levels, reverse=True)
        assert sum(1 << lvl for lvl in levels) == n
        start = 0
        for level, idx in frontier_nodes(n):
            assert idx << level == start  # left to right, no gap, aligned
            start += 1 << level
        assert start == n


@pytest.mark.parametrize("size", range(MAX + 1))
def test_frontier_reloaded_from_its_nodes_carries_on_identically(grown: Grown, size: int) -> None:
    stack = [(lvl, grown.nodes[(lvl, i)]) for lvl, i in frontier_nodes(size)]
    reloaded = Frontier(size, stack)
    assert reloaded.size == size
    assert reloaded.root() == grown.roots[size]
    for n in range(size, min(MAX, size + 17)):
        assert reloaded.append(LEAVES[n]) == grown.made[n]
        assert reloaded.root() == grown.roots[n + 1]


def test_frontier_refuses_a_stack_that_does_not_fit_its_size(grown: Grown) -> None:
    with pytest.raises(AssertionError):
        Frontier(3, [(1, grown.nodes[(1, 0)])])  # size 3 needs levels [1, 0]
    with pytest.raises(AssertionError):
        Frontier(0, [(0, grown.nodes[(0, 0)])])


def test_frontier_copy_is_independent(grown: Grown) -> None:
    f = Frontier()
    for leaf in LEAVES[:5]:
        f.append(leaf)
    g = f.copy()
    g.append(LEAVES[5])
    assert (f.size, f.root()) == (5, grown.roots[5])
    assert (g.size, g.root()) == (6, grown.roots[6])


# ---- ranges and stored-node hashing --------------------------------------------------------------


def test_range_hash_from_stored_nodes_is_the_mth_of_every_range(grown: Grown) -> None:
    for start in range(MAX):
        for end in range(start + 1, MAX + 1):
            nodes = range_nodes(start, end)
            covered = [(i << lvl, (i + 1) << lvl) for lvl, i in nodes]
            assert covered[0][0] == start and covered[-1][1] == end
            assert all(a[1] == b[0] for a, b in itertools.pairwise(covered))
            assert range_hash(start, end, grown.lookup) == mth(start, end), (start, end)


def test_range_hash_reads_only_the_nodes_range_nodes_names(grown: Grown) -> None:
    for start, end in [(0, 70), (3, 41), (12, 24), (7, 8), (33, 64)]:
        wanted = set(range_nodes(start, end))
        seen: set[tuple[int, int]] = set()

        def lookup(node: tuple[int, int], seen: set[tuple[int, int]] = seen) -> bytes:
            seen.add(node)
            return grown.lookup(node)

        range_hash(start, end, lookup)
        assert seen == wanted


# ---- inclusion proofs ----------------------------------------------------------------------------


InclusionArgs = tuple[int, int, bytes, list[bytes], bytes]  # index, size, leaf, proof, root
ConsistencyArgs = tuple[int, int, bytes, bytes, list[bytes]]  # old, new, roots, proof


def _altered(proof: list[bytes]) -> list[tuple[str, list[bytes]]]:
    """The proof with each element flipped in turn, an end dropped, or reversed."""
    out = [
        (f"element {k} flipped", [flip(p, k % 32) if j == k else p for j, p in enumerate(proof)])
        for k in range(len(proof))
    ]
    if proof:
        out += [("last dropped", proof[:-1]), ("first dropped", proof[1:])]
    if len(proof) > 1:
        out.append(("reversed", proof[::-1]))
    return out


def _inclusion_failures(
    grown: Grown, index: int, size: int, proof: list[bytes]
) -> list[tuple[str, InclusionArgs]]:
    root, leaf = grown.roots[size], leaf_hash(LEAVES[index])
    other_leaf = leaf_hash(LEAVES[(index + 1) % MAX])
    cases: list[tuple[str, InclusionArgs]] = [
        ("leaf data, not leaf hash", (index, size, LEAVES[index], proof, root)),
        ("another leaf", (index, size, other_leaf, proof, root)),
        ("flipped leaf", (index, size, flip(leaf), proof, root)),
        ("flipped root", (index, size, leaf, proof, flip(root, 31))),
        ("index out of range", (size, size, leaf, proof, root)),
        ("negative index", (-1, size, leaf, proof, root)),
        ("extra element", (index, size, leaf, [*proof, root], root)),
    ]
    for other in sorted({index - 1, index + 1, size - 1 - index, 0, size - 1} - {index}):
        if 0 <= other < size:
            cases.append((f"index {other}", (other, size, leaf, proof, root)))
    for other in (size - 1, size + 1):
        if index < other <= MAX:  # another tree: its own size and root
            cases.append((f"tree {other}", (index, other, leaf, proof, grown.roots[other])))
    for name, bad in _altered(proof):
        cases.append((name, (index, size, leaf, bad, root)))
    return cases


@pytest.mark.parametrize("size", range(1, MAX + 1))
def test_inclusion_proof_for_every_index(grown: Grown, size: int) -> None:
    root = grown.roots[size]
    for index in range(size):
        proof = grown.hashes(inclusion_ranges(index, size))
        assert proof == ref_path(index, 0, size), (index, size)
        assert verify_inclusion(index, size, leaf_hash(LEAVES[index]), proof, root)
        for name, args in _inclusion_failures(grown, index, size, proof):
            assert not verify_inclusion(*args), f"index {index} size {size}: {name} verified"


def test_inclusion_ranges_refuse_an_index_outside_the_tree() -> None:
    with pytest.raises(AssertionError):
        inclusion_ranges(5, 5)
    with pytest.raises(AssertionError):
        inclusion_ranges(-1, 5)


# ---- consistency proofs --------------------------------------------------------------------------


def _consistency_failures(
    grown: Grown, old: int, new: int, proof: list[bytes]
) -> list[tuple[str, ConsistencyArgs]]:
    r_old, r_new = grown.roots[old], grown.roots[new]
    cases: list[tuple[str, ConsistencyArgs]] = [
        ("old root flipped", (old, new, flip(r_old), r_new, proof)),
        ("new root flipped", (old, new, r_old, flip(r_new, 31), proof)),
        ("extra element", (old, new, r_old, r_new, [*proof, r_old])),
    ]
    if old != new:
        cases.append(("roots swapped", (old, new, r_new, r_old, proof)))
        cases.append(("sizes swapped", (new, old, r_new, r_old, proof)))
        cases.append(("no proof", (old, new, r_old, r_new, [])))
    for other in (old - 1, old + 1):
        if 1 <= other <= new:  # another old tree: its own size and root
            cases.append((f"old tree {other}", (other, new, grown.roots[other], r_new, proof)))
    for other in (new - 1, new + 1):
        if old <= other <= MAX:
            cases.append((f"new tree {other}", (old, other, r_old, grown.roots[other], proof)))
    for name, bad in _altered(proof):
        cases.append((name, (old, new, r_old, r_new, bad)))
    return cases


@pytest.mark.parametrize("new", range(1, MAX + 1))
def test_consistency_proof_for_every_pair(grown: Grown, new: int) -> None:
    for old in range(1, new + 1):
        proof = grown.hashes(consistency_ranges(old, new))
        assert proof == ref_proof(old, new), (old, new)
        assert verify_consistency(old, new, grown.roots[old], grown.roots[new], proof)
        for name, args in _consistency_failures(grown, old, new, proof):
            assert not verify_consistency(*args), f"{old} -> {new}: {name} verified"


def test_consistency_edge_cases(grown: Grown) -> None:
    r5, r9 = grown.roots[5], grown.roots[9]
    assert verify_consistency(5, 5, r5, r5, [])
    assert not verify_consistency(5, 5, r5, r9, [])
    assert not verify_consistency(5, 5, r5, r5, [r5])
    assert verify_consistency(0, 9, EMPTY_ROOT, r9, [])  # the empty tree precedes every tree
    assert not verify_consistency(0, 9, EMPTY_ROOT, r9, [r5])
    assert not verify_consistency(9, 5, r9, r5, [])
    assert not verify_consistency(-1, 5, r5, r5, [])
    assert consistency_ranges(7, 7) == []
    with pytest.raises(AssertionError):
        consistency_ranges(0, 7)
    with pytest.raises(AssertionError):
        consistency_ranges(8, 7)


def test_a_proof_too_short_for_the_claimed_size_is_refused(grown: Grown) -> None:
    """A proof that runs out before the path reaches the claimed tree's root proves nothing."""
    r1, r2 = grown.roots[1], grown.roots[2]
    proof = grown.hashes(consistency_ranges(1, 2))
    assert verify_consistency(1, 2, r1, r2, proof)
    for claimed in (4, 8, 64):
        assert not verify_consistency(1, claimed, r1, r2, proof), claimed
    path = grown.hashes(inclusion_ranges(0, 2))
    assert verify_inclusion(0, 2, leaf_hash(LEAVES[0]), path, r2)
    for claimed in (4, 8, 64):
        assert not verify_inclusion(0, claimed, leaf_hash(LEAVES[0]), path, r2), claimed


# ---- properties over arbitrary leaves ------------------------------------------------------------

leaf_lists = st.lists(st.binary(max_size=40), min_size=1, max_size=300)


@settings(max_examples=60, deadline=None)
@given(leaves=leaf_lists, data=st.data())
def test_arbitrary_trees_prove_what_they_hold(leaves: list[bytes], data: st.DataObject) -> None:
    grown = Grown(leaves)
    n = len(leaves)
    assert grown.roots[n] == root_of(leaves)
    index = data.draw(st.integers(0, n - 1), label="index")
    proof = grown.hashes(inclusion_ranges(index, n))
    assert verify_inclusion(index, n, leaf_hash(leaves[index]), proof, grown.roots[n])
    old = data.draw(st.integers(1, n), label="old")
    cproof = grown.hashes(consistency_ranges(old, n))
    assert cproof == [
        root_of(leaves[s:e]) for s, e in consistency_ranges(old, n)
    ]  # stored-node hashes agree with the reference
    assert verify_consistency(old, n, root_of(leaves[:old]), grown.roots[n], cproof)


@settings(max_examples=60, deadline=None)
@given(leaves=leaf_lists, extra=st.binary(max_size=40), data=st.data())
def test_a_changed_leaf_changes_the_root_and_fails_its_proofs(
    leaves: list[bytes], extra: bytes, data: st.DataObject
) -> None:
    n = len(leaves)
    index = data.draw(st.integers(0, n - 1), label="index")
    changed = list(leaves)
    changed[index] = leaves[index] + b"!" + extra
    root = root_of(leaves)
    assert root_of(changed) != root
    proof = [root_of(changed[s:e]) for s, e in inclusion_ranges(index, n)]
    assert not verify_inclusion(index, n, leaf_hash(changed[index]), proof, root)
    # history rewritten below an old checkpoint: the new tree is not consistent with it
    old = data.draw(st.integers(index + 1, n), label="old")
    cproof = [root_of(changed[s:e]) for s, e in consistency_ranges(old, n)]
    assert not verify_consistency(old, n, root_of(leaves[:old]), root_of(changed), cproof)


@settings(max_examples=100, deadline=None)
@given(
    size=st.integers(1, 2**40),
    data=st.data(),
)
def test_proof_ranges_tile_the_tree_at_any_size(size: int, data: st.DataObject) -> None:
    """Inclusion ranges plus the leaf cover [0, size) exactly; proofs stay logarithmic."""
    index = data.draw(st.integers(0, size - 1), label="index")
    ranges = sorted([*inclusion_ranges(index, size), (index, index + 1)])
    assert ranges[0][0] == 0 and ranges[-1][1] == size
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    assert len(ranges) - 1 <= size.bit_length()
    old = data.draw(st.integers(1, size), label="old")
    cranges = consistency_ranges(old, size)
    assert len(cranges) <= 2 * size.bit_length()
    assert all(0 <= s < e <= size for s, e in cranges)
