"""Voucher codes a person can read out and type at a till: 8 random symbols of Crockford's
base32 (no I, L, O or U) and a check symbol (Luhn mod 32), shown as `XXXX-XXXX-C`.

Typing is forgiving where it is safe (case, spaces and dashes ignored; O read as 0, I and L as
1) and the check symbol catches any single wrong symbol and most swaps of neighbours. Pure.
"""

from __future__ import annotations

import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
BODY = 8  # 40 random bits
_VALUE = {c: i for i, c in enumerate(ALPHABET)} | {"O": 0, "I": 1, "L": 1}


def check_symbol(body: str) -> str:
    """Luhn mod 32 over `body` (symbols of ALPHABET)."""
    total, factor = 0, 2
    for symbol in reversed(body):
        addend = factor * _VALUE[symbol]
        total += addend // 32 + addend % 32
        factor = 1 if factor == 2 else 2
    return ALPHABET[(32 - total % 32) % 32]


def new_code() -> str:
    bits = int.from_bytes(secrets.token_bytes(5), "big")  # 40 random bits: 8 symbols of 5
    body = "".join(ALPHABET[(bits >> shift) & 31] for shift in range(35, -1, -5))
    return body + check_symbol(body)


def display(code: str) -> str:
    return f"{code[:4]}-{code[4:8]}-{code[8:]}"


def normalise(typed: str) -> str | None:
    """The code someone typed or scanned, in canonical form; None if it is not a valid code."""
    text = typed.upper().replace("-", "").replace(" ", "")
    if len(text) != BODY + 1 or any(c not in _VALUE for c in text):
        return None
    canonical = "".join(ALPHABET[_VALUE[c]] for c in text)
    return canonical if check_symbol(canonical[:BODY]) == canonical[BODY] else None
