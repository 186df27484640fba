"""Ed25519 signing (the `cryptography` package) and verification (PyNaCl, the faster here)."""

from __future__ import annotations

import base64

import nacl.bindings
import nacl.exceptions
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .encoding import key_id_for

SEED_BYTES = 32


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


def verify_signature(public_key: bytes, digest: bytes, signature: bytes) -> bool:
    """True when `signature` is a valid Ed25519 signature of `digest` by `public_key`."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    try:
        nacl.bindings.crypto_sign_open(signature + digest, public_key)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError):
        return False
    return True


def verify_many(items: list[tuple[int, bytes, bytes, bytes]]) -> list[int]:
    """Check (seq, public key, digest, signature) tuples; return the seqs that fail. For workers."""
    return [seq for seq, pk, digest, sig in items if not verify_signature(pk, digest, sig)]
