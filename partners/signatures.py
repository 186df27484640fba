"""Partners' own signatures on settle requests: a partner's till integration may sign each
settlement with its own Ed25519 key, registered with us by its public half, and send the
detached signature in a header. The signature is kept as evidence with the ledger entry, so
a settlement can later be shown to have been asked for by the partner's key. Pure: no I/O.

What a partner signs, byte for byte (`settle_message`)::

    b"timebank/settle/v1" NUL scheme NUL code NUL venue NUL idempotency_key

each field UTF-8, `code` in canonical form (9 symbols, upper case, no dashes) and no field
containing NUL. The header is ``keyid=<16 lower-case hex>, sig=<base64 of the 64 bytes>``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass

import nacl.bindings
import nacl.exceptions

from ledger import key_id_for, verify_signature

from .codes import normalise
from .model import id_problem

PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
SETTLE_DOMAIN = b"timebank/settle/v1"
EVIDENCE_SCHEME = "ed25519"
MAX_HEADER = 200  # a valid header is 115 characters

_KEY_ID = re.compile(r"[0-9a-f]{16}")
_HEX_KEY = re.compile(r"[0-9a-fA-F]{64}")
_HEADER_PARAM = re.compile(r"([a-z]+)=(\S*)")


@dataclass(frozen=True, slots=True)
class PartnerKey:
    """A partner's registered Ed25519 public key; `key_id` is `key_id_for(public_key)`."""

    partner: str
    key_id: str
    public_key: bytes

    def __post_init__(self) -> None:
        if id_problem(self.partner, "partner"):
            raise ValueError(f"partner id {self.partner!r} is not 1-40 characters of a-z, 0-9, '-'")
        if len(self.public_key) != PUBLIC_KEY_BYTES:
            raise ValueError("an Ed25519 public key is 32 bytes")
        if self.key_id != key_id_for(self.public_key):
            raise ValueError(f"key id {self.key_id!r} does not name this public key")

    @classmethod
    def of(cls, partner: str, public_key: bytes) -> PartnerKey:
        return cls(partner, key_id_for(public_key), public_key)


def parse_public_key(text: str) -> bytes:
    """A raw 32-byte Ed25519 public key from its base64 (44 characters, padded) or hex (64)."""
    text = text.strip()
    if _HEX_KEY.fullmatch(text):
        raw = bytes.fromhex(text)
    else:
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(
                "a public key is the base64 (44 characters) or hex (64) of its 32 raw bytes"
            ) from exc
        if len(raw) != PUBLIC_KEY_BYTES:
            raise ValueError(f"an Ed25519 public key is 32 bytes, this is {len(raw)}")
    try:  # refuses points not on the curve and the small-order (weak) keys
        nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(raw)
    except (nacl.exceptions.RuntimeError, nacl.exceptions.ValueError) as exc:
        raise ValueError("not a valid Ed25519 public key (32 bytes, but no usable point)") from exc
    return raw


def settle_message(scheme: str, code: str, venue: str, idempotency_key: str) -> bytes:
    """The canonical bytes a partner signs to ask for a voucher's settlement (module doc)."""
    canonical = normalise(code)
    if canonical is None:
        raise ValueError("code: not a valid voucher code")
    fields = [("scheme", scheme), ("code", canonical), ("venue", venue)]
    fields.append(("idempotency_key", idempotency_key))
    parts = [SETTLE_DOMAIN]
    for name, value in fields:
        if "\0" in value:
            raise ValueError(f"{name}: contains a NUL character")
        try:
            parts.append(value.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise ValueError(f"{name}: not encodable as UTF-8") from exc
    return b"\0".join(parts)


def parse_signature_header(value: str) -> tuple[str, bytes]:
    """(key id, signature) from ``keyid=<16 lower-case hex>, sig=<base64 of 64 bytes>``."""
    if len(value) > MAX_HEADER:
        raise ValueError(f"signature header longer than {MAX_HEADER} characters")
    params: dict[str, str] = {}
    for part in value.split(","):
        match = _HEADER_PARAM.fullmatch(part.strip())
        if match is None:
            raise ValueError(f"signature header: {part.strip()!r} is not name=value")
        name, text = match.groups()
        if name not in ("keyid", "sig"):
            raise ValueError(f"signature header: unknown parameter {name!r}")
        if name in params:
            raise ValueError(f"signature header: {name} given twice")
        params[name] = text
    for name in ("keyid", "sig"):
        if name not in params:
            raise ValueError(f"signature header: no {name}")
    key_id = params["keyid"]
    if not _KEY_ID.fullmatch(key_id):
        raise ValueError("signature header: keyid is not 16 lower-case hex digits")
    return key_id, _decode_signature(params["sig"], "signature header: sig")


def verify(
    keys: Sequence[PartnerKey], partner: str, message: bytes, key_id: str, signature: bytes
) -> str | None:
    """None if `signature` is `partner`'s valid signature of `message` by its key `key_id`;
    otherwise why not. A key registered to another partner is an unknown key here."""
    key = next((k for k in keys if k.partner == partner and k.key_id == key_id), None)
    if key is None:
        return f"unknown key {key_id!r} for partner {partner!r}"
    if not verify_signature(key.public_key, message, signature):
        return "bad signature"
    return None


def evidence(key_id: str, signature: bytes) -> str:
    """What is stored with the settlement: ``ed25519:<key id>:<base64 signature>``."""
    if not _KEY_ID.fullmatch(key_id):
        raise ValueError("key id is not 16 lower-case hex digits")
    if len(signature) != SIGNATURE_BYTES:
        raise ValueError("an Ed25519 signature is 64 bytes")
    return f"{EVIDENCE_SCHEME}:{key_id}:{base64.b64encode(signature).decode()}"


def parse_evidence(text: str) -> tuple[str, bytes]:
    """(key id, signature) back from `evidence`, to check a stored settlement again."""
    scheme, _, rest = text.partition(":")
    key_id, _, sig = rest.partition(":")
    if scheme != EVIDENCE_SCHEME or not _KEY_ID.fullmatch(key_id):
        raise ValueError("evidence is not ed25519:<16 lower-case hex>:<base64 signature>")
    return key_id, _decode_signature(sig, "evidence signature")


def _decode_signature(text: str, where: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{where} is not base64") from exc
    if len(raw) != SIGNATURE_BYTES:
        raise ValueError(f"{where} is {len(raw)} bytes; an Ed25519 signature is 64")
    if base64.b64encode(raw).decode() != text:
        raise ValueError(f"{where} is not canonical base64")
    return raw
