"""Where two reports differ, path by path: what `timebank report verify` prints. Pure."""

from __future__ import annotations

from typing import Any

MAX_DIFFERENCES = 50  # enough to say what is wrong; a wholly different file is not listed in full


def differences(expected: Any, found: Any, path: str = "") -> list[str]:
    """Each place `found` differs from `expected`, as "path: expected X, found Y" (at most
    MAX_DIFFERENCES), or an empty list when they are equal."""
    out: list[str] = []
    _walk(expected, found, path or "$", out)
    return out


def _walk(a: Any, b: Any, path: str, out: list[str]) -> None:
    if len(out) >= MAX_DIFFERENCES:
        return
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            if key not in b:
                out.append(f"{path}.{key}: expected {_short(a[key])}, missing")
            elif key not in a:
                out.append(f"{path}.{key}: not expected, found {_short(b[key])}")
            else:
                _walk(a[key], b[key], f"{path}.{key}", out)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{path}: expected {len(a)} rows, found {len(b)}")
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            _walk(x, y, f"{path}[{i}]", out)
    elif type(a) is not type(b) or a != b:
        out.append(f"{path}: expected {_short(a)}, found {_short(b)}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
