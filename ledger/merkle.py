"""RFC 6962 / RFC 9162 Merkle tree hashing, proofs and their verification. Pure functions.

Leaves are the entries' 32-byte hashes: leaf i (0-based) is the entry with sequence number i+1.
Stored trees keep the hash of every perfect, aligned subtree as (level, index): level 0 is a
leaf hash, level l index i covers leaves [i * 2**l, (i + 1) * 2**l).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()
Node = tuple[int, int]  # (level, index) of a perfect aligned subtree


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly less than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def _perfect(start: int, end: int) -> Node | None:
    size = end - start
    if size & (size - 1) == 0 and start % size == 0:
        return (size.bit_length() - 1, start // size)
    return None


def range_nodes(start: int, end: int) -> list[Node]:
    """The perfect subtrees whose hashes give MTH(D[start:end]) by `range_hash`."""
    assert 0 <= start < end
    node = _perfect(start, end)
    if node is not None:
        return [node]
    k = _split(end - start)
    return range_nodes(start, start + k) + range_nodes(start + k, end)


def range_hash(start: int, end: int, lookup: Callable[[Node], bytes]) -> bytes:
    """MTH(D[start:end]) as RFC 6962 defines it, from stored perfect-subtree hashes."""
    node = _perfect(start, end)
    if node is not None:
        return lookup(node)
    k = _split(end - start)
    return node_hash(range_hash(start, start + k, lookup), range_hash(start + k, end, lookup))


def root_of(leaves: Sequence[bytes]) -> bytes:
    """MTH of a whole list of leaf data: the reference definition, for tests and small trees."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaf_hash(leaves[0])
    k = _split(len(leaves))
    return node_hash(root_of(leaves[:k]), root_of(leaves[k:]))


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Leaf ranges whose hashes make PATH(index, D[0:size]), leaf side first (RFC 6962 2.1.1)."""
    assert 0 <= index < size
    out: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            out.append((start + k, end))
            end = start + k
        else:
            out.append((start, start + k))
            start = start + k
    out.reverse()
    return out


def consistency_ranges(old: int, new: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes make PROOF(old, D[0:new]) (RFC 6962 2.1.2), in order."""
    assert 0 < old <= new
    if old == new:
        return []

    def subproof(m: int, start: int, end: int, whole: bool) -> list[tuple[int, int]]:
        n = end - start
        if m == n:
            return [] if whole else [(start, end)]
        k = _split(n)
        if m <= k:
            return [*subproof(m, start, start + k, whole), (start + k, end)]
        return [*subproof(m - k, start + k, end, False), (start, start + k)]

    return subproof(old, 0, new, True)


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 2.1.3.2: does `proof` show leaf hash `leaf` at `index` in the tree of `root`?"""
    if not 0 <= index < size:
        return False
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 2.1.4.2: is the tree of size `new` an append-only extension of size `old`?"""
    if old > new or old < 0:
        return False
    if old == new:
        return not proof and old_root == new_root
    if old == 0:
        return not proof  # the empty tree is consistent with every tree
    if not proof:
        return False
    path = list(proof)
    if old & (old - 1) == 0:  # old is a power of two: its root is the first node
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


class Frontier:
    """The right edge of a growing tree: O(log n) hashes that yield the root and new nodes."""

    __slots__ = ("_stack", "size")

    def __init__(self, size: int = 0, stack: Sequence[tuple[int, bytes]] = ()) -> None:
        self.size = size
        self._stack = list(stack)  # (level, hash), levels strictly decreasing
        assert [lvl for lvl, _ in self._stack] == frontier_levels(size)

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add one leaf (its data, an entry hash); return the perfect nodes it completes."""
        index = self.size
        h = leaf_hash(leaf)
        made = [(0, index, h)]
        level = 0
        while self._stack and self._stack[-1][0] == level:
            _, left = self._stack.pop()
            h = node_hash(left, h)
            level += 1
            made.append((level, index >> level, h))
        self._stack.append((level, h))
        self.size += 1
        return made

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        h = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            h = node_hash(left, h)
        return h

    def copy(self) -> Frontier:
        return Frontier(self.size, self._stack)


def frontier_nodes(size: int) -> list[Node]:
    """The perfect subtrees that make up the right edge of a tree of `size` leaves, left first."""
    out: list[Node] = []
    start = 0
    for level in frontier_levels(size):
        out.append((level, start >> level))
        start += 1 << level
    return out


def frontier_levels(size: int) -> list[int]:
    return [lvl for lvl in range(size.bit_length() - 1, -1, -1) if size >> lvl & 1]
