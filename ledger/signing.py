"""Ed25519 signing (the `cryptography` package) and verification (PyNaCl, the faster here)."""

from __future__ import annotations

import base64

import nacl.bindings
import nacl.exceptions
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .encoding import key_id_for

SEED_BYTES = 32
P = 2**255 - 19  # the field prime of Curve25519
L = 2**252 + 27742317777372353535851937790883648493  # the order of the base point
_Y_MASK = (1 << 255) - 1  # an encoding is y (255 bits, little-endian), then x's sign bit

# The y-coordinates of the eight points of small order (orders 1, 2, 4 and 8), and the two
# non-canonical encodings of small-order points (y = p and y = p + 1, i.e. 0 and 1). With either
# sign bit, these are the 14 encodings libsodium also refuses (`ge25519_has_small_order`).
_ORDER_8_Y = (
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
)
SMALL_ORDER_Y = frozenset(
    {0, 1, P - 1, P, P + 1} | {int.from_bytes(bytes.fromhex(y), "little") for y in _ORDER_8_Y}
)


class Signer:
    """A private signing key, held in memory only; `key_id` names its public half."""

    __slots__ = ("_private", "key_id", "public_key")

    def __init__(self, seed: bytes) -> None:
        if len(seed) != SEED_BYTES:
            raise ValueError("an Ed25519 seed is 32 bytes")
        self._private = Ed25519PrivateKey.from_private_bytes(seed)
        self.public_key = self._private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.key_id = key_id_for(self.public_key)

    @classmethod
    def generate(cls) -> Signer:
        from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

        private = Ed25519PrivateKey.generate()
        seed = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return cls(seed)

    def seed_text(self) -> str:
        """The private seed as base64, for the key file. Never log this."""
        from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

        seed = self._private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return base64.b64encode(seed).decode()

    def sign(self, digest: bytes) -> bytes:
        assert len(digest) == 32
        return self._private.sign(digest)

    def __repr__(self) -> str:  # never show key material
        return f"Signer(key_id={self.key_id!r})"


def point_problem(encoding: bytes) -> str | None:
    """Why a 32-byte point encoding (a public key, or a signature's R) is refused, or None.

    Refused: a non-canonical encoding (its y is p or more), and any encoding of a point of small
    order, the identity included. Honest keys and signatures never have either.
    """
    if len(encoding) != 32:
        return "not 32 bytes"
    y = int.from_bytes(encoding, "little") & _Y_MASK
    if y in SMALL_ORDER_Y:
        return "a point of small order"
    if y >= P:
        return "a non-canonical point encoding (y >= p)"
    return None


def signature_problem(public_key: bytes, signature: bytes) -> str | None:
    """Why a signature (R || S) and key are refused before the curve equation is tried: the
    strict checks of docs/ledger-format.md section 3, made here whatever libsodium is built to
    do (it makes them too)."""
    if len(signature) != 64:
        return "a signature is 64 bytes"
    if int.from_bytes(signature[32:], "little") >= L:
        return "non-canonical S (S >= L)"
    for name, point in (("public key", public_key), ("R", signature[:32])):
        problem = point_problem(point)
        if problem:
            return f"{name}: {problem}"
    return None


def verify_signature(public_key: bytes, digest: bytes, signature: bytes) -> bool:
    """True when `signature` is a valid Ed25519 signature of `digest` by `public_key`, under the
    strict rules: S < L, and neither the key nor R small-order or non-canonically encoded."""
    if signature_problem(public_key, signature) is not None:
        return False
    try:
        nacl.bindings.crypto_sign_open(signature + digest, public_key)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError):
        return False
    return True


def verify_many(items: list[tuple[int, bytes, bytes, bytes]]) -> list[int]:
    """Check (seq, public key, digest, signature) tuples; return the seqs that fail. For workers."""
    return [seq for seq, pk, digest, sig in items if not verify_signature(pk, digest, sig)]
