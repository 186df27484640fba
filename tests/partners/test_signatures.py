"""Partners' Ed25519 signatures on settle requests: keys, the signed message, the header,
verification and the evidence kept with the settlement."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ledger.encoding import key_id_for
from partners.codes import display, new_code
from partners.signatures import (
    SETTLE_DOMAIN,
    PartnerKey,
    evidence,
    parse_evidence,
    parse_public_key,
    parse_signature_header,
    settle_message,
    verify,
)

CODE = new_code()


def make_key(partner: str) -> tuple[Ed25519PrivateKey, PartnerKey]:
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return private, PartnerKey.of(partner, public)


def header(key_id: str, signature: bytes) -> str:
    return f"keyid={key_id}, sig={base64.b64encode(signature).decode()}"


def test_round_trip_through_header_and_evidence() -> None:
    private, key = make_key("gate")
    message = settle_message("taff", CODE, "gate-main", "till-7/0042")
    value = header(key.key_id, private.sign(message))
    key_id, signature = parse_signature_header(value)
    assert key_id == key.key_id == key_id_for(key.public_key)
    assert verify([key], "gate", message, key_id, signature) is None
    stored = evidence(key_id, signature)
    assert stored == f"ed25519:{key_id}:{base64.b64encode(signature).decode()}"
    assert parse_evidence(stored) == (key_id, signature)


def test_message_is_canonical_and_domain_separated() -> None:
    message = settle_message("taff", CODE, "gate-main", "k1")
    assert message == b"\0".join([SETTLE_DOMAIN, b"taff", CODE.encode(), b"gate-main", b"k1"])
    assert message.startswith(b"timebank/settle/v1\0")
    typed = display(CODE).lower()  # however the code was typed, the same message
    assert settle_message("taff", typed, "gate-main", "k1") == message
    assert settle_message("taff", CODE, "gate-main", "k\u00e9").endswith("k\u00e9".encode())


def test_tampered_message_or_field_fails() -> None:
    private, key = make_key("gate")
    fields = ("taff", CODE, "gate-main", "k1")
    signature = private.sign(settle_message(*fields))
    for i, other in enumerate(("lee", new_code(), "gate-annex", "k2")):
        changed = list(fields)
        changed[i] = other
        assert verify([key], "gate", settle_message(*changed), key.key_id, signature) == (
            "bad signature"
        )
    message = settle_message(*fields)
    assert verify([key], "gate", message + b"x", key.key_id, signature) == "bad signature"
    flipped = bytes([signature[0] ^ 1]) + signature[1:]
    assert verify([key], "gate", message, key.key_id, flipped) == "bad signature"
    assert verify([key], "gate", message, key.key_id, signature[:63]) == "bad signature"


def test_field_boundaries_cannot_shift() -> None:
    # Without separators "ab"+"c" and "a"+"bc" would sign the same bytes.
    a = settle_message("taff", CODE, "ab", "c")
    b = settle_message("taff", CODE, "a", "bc")
    assert a != b


@pytest.mark.parametrize(
    ("field", "reason"),
    [
        (0, "scheme: contains a NUL"),
        (1, "code: not a valid voucher code"),  # NUL is never a code symbol
        (2, "venue: contains a NUL"),
        (3, "idempotency_key: contains a NUL"),
    ],
)
def test_field_with_nul_refused(field: int, reason: str) -> None:
    fields = ["taff", CODE, "gate-main", "k1"]
    fields[field] = fields[field][:2] + "\0" + fields[field][2:]
    with pytest.raises(ValueError, match=reason):
        settle_message(*fields)


def test_invalid_code_and_unencodable_field_refused() -> None:
    with pytest.raises(ValueError, match="code"):
        settle_message("taff", "ABCD", "gate-main", "k1")
    with pytest.raises(ValueError, match="idempotency_key: not encodable"):
        settle_message("taff", CODE, "gate-main", "k\ud800")


def test_other_partners_key_refused() -> None:
    gate_private, gate = make_key("gate")
    _, cafe = make_key("cafe")
    message = settle_message("taff", CODE, "cafe-main", "k1")
    signature = gate_private.sign(message)
    # The Gate's key is registered, but to the Gate: it cannot sign for the cafe.
    reason = verify([gate, cafe], "cafe", message, gate.key_id, signature)
    assert reason == f"unknown key {gate.key_id!r} for partner 'cafe'"
    assert verify([gate, cafe], "gate", message, gate.key_id, signature) is None
    assert verify([], "gate", message, gate.key_id, signature) is not None


def test_right_partner_wrong_key_is_bad_signature() -> None:
    _, old = make_key("gate")
    new_private, new = make_key("gate")
    message = settle_message("taff", CODE, "gate-main", "k1")
    signature = new_private.sign(message)
    assert verify([old, new], "gate", message, old.key_id, signature) == "bad signature"
    assert verify([old, new], "gate", message, new.key_id, signature) is None


def test_parse_public_key_base64_and_hex() -> None:
    _, key = make_key("gate")
    assert parse_public_key(base64.b64encode(key.public_key).decode()) == key.public_key
    assert parse_public_key(" " + key.public_key.hex() + "\n") == key.public_key
    assert parse_public_key(key.public_key.hex().upper()) == key.public_key


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "32 bytes, this is 0"),
        ("not a key!", "base64 .* or hex"),
        (base64.b64encode(bytes(31)).decode(), "32 bytes, this is 31"),
        (base64.b64encode(bytes(33)).decode(), "32 bytes, this is 33"),
        ("ab" * 31, "base64 .* or hex"),  # 62 hex digits: neither
        ("zz" * 32, "32 bytes, this is 48"),
        (bytes(32).hex(), "not a valid Ed25519 public key"),  # a small-order point
        (base64.b64encode(b"\1" + bytes(31)).decode(), "not a valid Ed25519 public key"),
    ],
)
def test_parse_public_key_refuses(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_public_key(text)


def test_partner_key_checks_its_key_id() -> None:
    _, key = make_key("gate")
    with pytest.raises(ValueError, match="does not name"):
        PartnerKey("gate", "0" * 16, key.public_key)
    with pytest.raises(ValueError, match="32 bytes"):
        PartnerKey.of("gate", key.public_key[:31])
    with pytest.raises(ValueError, match="partner id"):
        PartnerKey.of("Gate!", key.public_key)


SIG = base64.b64encode(bytes(range(64))).decode()
KID = "0123456789abcdef"


def test_header_forms_accepted() -> None:
    assert parse_signature_header(f"keyid={KID}, sig={SIG}") == (KID, bytes(range(64)))
    assert parse_signature_header(f"keyid={KID},sig={SIG}")[0] == KID
    assert parse_signature_header(f"sig={SIG}, keyid={KID}")[0] == KID


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "'' is not name=value"),
        (f"keyid={KID}", "no sig"),
        (f"sig={SIG}", "no keyid"),
        (f"keyid={KID}, sig={SIG}, alg=ed25519", "unknown parameter 'alg'"),
        (f"keyid={KID}, keyid={KID}, sig={SIG}", "keyid given twice"),
        (f"keyid={KID}, sig={SIG},", "'' is not name=value"),
        (f"keyid={KID} sig={SIG}", "is not name=value"),
        (f"keyid={KID}; sig={SIG}", "is not name=value"),
        (f"KEYID={KID}, sig={SIG}", "is not name=value"),
        (f'keyid="{KID}", sig={SIG}', "keyid is not 16 lower-case hex"),
        (f"keyid={KID.upper()}, sig={SIG}", "keyid is not 16 lower-case hex"),
        (f"keyid={KID}0, sig={SIG}", "keyid is not 16 lower-case hex"),
        (f"keyid={KID}, sig=", "sig is 0 bytes"),
        (f"keyid={KID}, sig={SIG[:-4]}", "sig is 63 bytes"),
        (f"keyid={KID}, sig={SIG.rstrip('=')}", "sig is not base64"),
        (f"keyid={KID}, sig={SIG[:-3]}B==", "sig is not canonical base64"),
        (f"keyid={KID}, sig={SIG.replace('A', '-')}", "sig is not base64"),
        (f"keyid={KID}, sig={SIG}" + " " * 200, "longer than 200"),
    ],
)
def test_malformed_headers(value: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_signature_header(value)


def test_evidence_format_and_refusals() -> None:
    assert evidence(KID, bytes(range(64))) == f"ed25519:{KID}:{SIG}"
    with pytest.raises(ValueError, match="key id"):
        evidence("xyz", bytes(64))
    with pytest.raises(ValueError, match="64 bytes"):
        evidence(KID, bytes(63))
    for bad in (f"rsa:{KID}:{SIG}", f"ed25519:{KID}", f"ed25519:{KID}:{SIG[:-4]}"):
        with pytest.raises(ValueError):
            parse_evidence(bad)
