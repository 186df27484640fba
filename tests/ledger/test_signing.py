"""Signature strictness (docs/ledger-format.md section 3): what a verifier MUST refuse.

Each forged signature here is first shown to pass a naive, cofactorless RFC 8032 verifier
written out below (which reduces S mod L and accepts any point), so the only thing standing
between it and acceptance is the strict rule under test. The reference must refuse it, both in
`ledger.signing` and in libsodium itself.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import nacl.bindings
import nacl.exceptions
import pytest

from conformance import make
from ledger import proofs
from ledger.encoding import key_digest, key_id_for
from ledger.model import PublicKey
from ledger.signing import (
    _ORDER_8_Y,
    SMALL_ORDER_Y,
    L,
    P,
    Signer,
    point_problem,
    signature_problem,
    verify_signature,
)

# ---- a naive Ed25519 over affine coordinates, for the tests only -------------------------------

D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)
Point = tuple[int, int]
IDENTITY: Point = (0, 1)


def _inv(x: int) -> int:
    return pow(x, P - 2, P)


def add(p: Point, q: Point) -> Point:
    (x1, y1), (x2, y2) = p, q
    t = D * x1 * x2 * y1 * y2 % P
    return ((x1 * y2 + x2 * y1) * _inv(1 + t) % P, (y1 * y2 + x1 * x2) * _inv(1 - t) % P)


def mul(k: int, p: Point) -> Point:
    out = IDENTITY
    while k:
        if k & 1:
            out = add(out, p)
        p, k = add(p, p), k >> 1
    return out


def decode(encoding: bytes) -> Point | None:
    """Lenient decoding: y is reduced mod p, as a careless verifier would."""
    y = (int.from_bytes(encoding, "little") & ((1 << 255) - 1)) % P
    xx = (y * y - 1) * _inv(D * y * y + 1) % P
    x = pow(xx, (P + 3) // 8, P)
    if (x * x - xx) % P:
        x = x * SQRT_M1 % P
    if (x * x - xx) % P:
        return None
    return (P - x if x & 1 != encoding[31] >> 7 else x), y


def encode(p: Point) -> bytes:
    x, y = p
    return (y | (x & 1) << 255).to_bytes(32, "little")


BASE = decode((4 * _inv(5) % P).to_bytes(32, "little"))


def naive_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """RFC 8032 without its checks: cofactorless, S reduced mod L, any point accepted."""
    a, r = decode(public_key), decode(signature[:32])
    assert BASE is not None
    if a is None or r is None:
        return False
    s = int.from_bytes(signature[32:], "little") % L
    h = int.from_bytes(hashlib.sha512(signature[:32] + public_key + message).digest(), "little")
    return mul(s, BASE) == add(r, mul(h % L, a))


def libsodium_accepts(public_key: bytes, message: bytes, signature: bytes) -> bool:
    try:
        nacl.bindings.crypto_sign_open(signature + message, public_key)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError):
        return False
    return True


MESSAGE = hashlib.sha256(b"a digest to sign").digest()
SIGNER = Signer(make.SEED_1)


def small_order_encodings() -> list[bytes]:
    """The 14 refused encodings: each y of SMALL_ORDER_Y, with either sign bit."""
    return [(y | sign << 255).to_bytes(32, "little") for y in SMALL_ORDER_Y for sign in (0, 1)]


# ---- the tests ---------------------------------------------------------------------------------


def test_an_honest_signature_passes_the_naive_and_the_strict_verifier() -> None:
    signature = SIGNER.sign(MESSAGE)
    assert naive_verify(SIGNER.public_key, MESSAGE, signature)
    assert verify_signature(SIGNER.public_key, MESSAGE, signature)
    assert signature_problem(SIGNER.public_key, signature) is None
    assert not naive_verify(SIGNER.public_key, MESSAGE[::-1], signature)  # the naive one checks


def test_s_plus_l_is_refused_though_it_is_the_same_scalar() -> None:
    bent = make.s_plus_l(SIGNER.sign(MESSAGE))
    assert naive_verify(SIGNER.public_key, MESSAGE, bent)
    assert signature_problem(SIGNER.public_key, bent) == "non-canonical S (S >= L)"
    assert not verify_signature(SIGNER.public_key, MESSAGE, bent)
    assert not libsodium_accepts(SIGNER.public_key, MESSAGE, bent)


def test_the_identity_point_as_a_public_key_signs_anything_and_is_refused() -> None:
    forged = make.identity_key_signature()
    for message in (MESSAGE, bytes(32), b"\xff" * 32):
        assert naive_verify(make.IDENTITY_POINT, message, forged)
        assert not verify_signature(make.IDENTITY_POINT, message, forged)
        assert not libsodium_accepts(make.IDENTITY_POINT, message, forged)
    assert signature_problem(make.IDENTITY_POINT, forged) == "public key: a point of small order"


def test_a_small_order_r_is_refused() -> None:
    forged = make.identity_r_signature(make.SEED_1, MESSAGE)
    assert forged[:32] == make.IDENTITY_POINT
    assert naive_verify(SIGNER.public_key, MESSAGE, forged)
    assert signature_problem(SIGNER.public_key, forged) == "R: a point of small order"
    assert not verify_signature(SIGNER.public_key, MESSAGE, forged)
    assert not libsodium_accepts(SIGNER.public_key, MESSAGE, forged)


def test_the_refused_encodings_are_exactly_points_of_small_order() -> None:
    encodings = small_order_encodings()
    assert len(set(encodings)) == 14
    orders = set()
    for encoding in encodings:
        point = decode(encoding)
        assert point is not None, encoding.hex()
        assert mul(8, point) == IDENTITY, encoding.hex()
        orders.add(next(n for n in (1, 2, 4, 8) if mul(n, point) == IDENTITY))
        assert point_problem(encoding) == "a point of small order"
        signature = encoding + (1).to_bytes(32, "little")
        assert not libsodium_accepts(SIGNER.public_key, MESSAGE, signature)
        assert not libsodium_accepts(encoding, MESSAGE, SIGNER.sign(MESSAGE))
    assert orders == {1, 2, 4, 8}
    assert all(mul(4, decode(bytes.fromhex(y)) or IDENTITY) != IDENTITY for y in _ORDER_8_Y)


def test_non_canonical_encodings_are_refused_and_honest_keys_are_not() -> None:
    for y in (P + 2, P + 5, (1 << 255) - 1):
        encoding = y.to_bytes(32, "little")
        assert point_problem(encoding) == "a non-canonical point encoding (y >= p)"
        assert point_problem(encoding[:31] + bytes([encoding[31] | 0x80])) is not None
    for seed in (make.SEED_1, make.SEED_2):
        public_key = Signer(seed).public_key
        assert point_problem(public_key) is None
        assert encode(decode(public_key) or IDENTITY) == public_key  # the test's codec agrees
    assert point_problem(bytes(31)) == "not 32 bytes"


def test_the_conformance_case_of_a_non_canonical_r_is_refused_for_its_r() -> None:
    """fail-signature-non-canonical-r: entry 1's S, with R the point y = 3 written as y = p + 3.
    It decodes to a point (so a verifier comparing points, not bytes, gets as far as the
    equation), and rule 2 alone names it."""
    lines = (make.HERE / "cases" / "fail-signature-non-canonical-r.jsonl").read_text()
    (entry,) = [json.loads(line) for line in lines.splitlines() if '"type":"entry"' in line]
    signature, digest = bytes.fromhex(entry["signature"]), bytes.fromhex(entry["hash"])
    assert signature[:32] == make.NON_CANONICAL_POINT
    assert decode(signature[:32]) is not None  # a point, reduced mod p: y = 3
    assert signature_problem(SIGNER.public_key, signature) == (
        "R: a non-canonical point encoding (y >= p)"
    )
    assert not verify_signature(SIGNER.public_key, digest, signature)
    assert not libsodium_accepts(SIGNER.public_key, digest, signature)


def test_a_key_list_anchored_on_the_identity_point_is_refused_by_its_own_rule() -> None:
    key_id = key_id_for(make.IDENTITY_POINT)
    key = PublicKey("forged", key_id, make.IDENTITY_POINT, 1, 0, key_id)
    key = replace(key, signature=make.identity_key_signature())
    assert naive_verify(key.public_key, key_digest(key), key.signature)  # self-certified
    assert proofs.key_list_problem([key]) == (
        f"key {key.key_id}: its public key is a point of small order"
    )


@pytest.mark.parametrize("bad", [b"", bytes(63), bytes(65)])
def test_a_signature_of_the_wrong_length_is_refused(bad: bytes) -> None:
    assert not verify_signature(SIGNER.public_key, MESSAGE, bad)
