"""The served OpenAPI document against a golden copy (tests/api/openapi.golden.json), so a
refactoring that changes the API by accident fails here. A change meant to be made is recorded
by writing the golden copy again, and shows in its diff:

    .venv/bin/python -m tests.api.test_openapi_golden
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.openapi import document
from api.routes import ENDPOINTS

pytestmark = pytest.mark.both_backends

GOLDEN = Path(__file__).with_name("openapi.golden.json")


def _without_version(doc: dict[str, Any]) -> dict[str, Any]:
    """The document but its `info.version`, the package's version at the time."""
    return {**doc, "info": {k: v for k, v in doc["info"].items() if k != "version"}}


def _differences(got: Any, want: Any, at: str = "$") -> list[str]:
    """Where two JSON values differ, by path (the first few)."""
    if isinstance(got, dict) and isinstance(want, dict):
        out = [f"{at}.{k}: only in the golden copy" for k in sorted(want.keys() - got.keys())]
        out += [f"{at}.{k}: not in the golden copy" for k in sorted(got.keys() - want.keys())]
        for k in sorted(got.keys() & want.keys()):
            out += _differences(got[k], want[k], f"{at}.{k}")
        return out
    return (
        [] if got == want else [f"{at}: {json.dumps(got)[:120]} (golden {json.dumps(want)[:120]})"]
    )


async def test_the_served_openapi_document_is_the_golden_copy(
    app_client: httpx.AsyncClient,
) -> None:
    served = (await app_client.get("/api/v1/openapi.json")).json()
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    found = _differences(_without_version(served), golden)
    assert not found, "\n".join(found[:20]) + "\n(meant? write it again: see the docstring)"


if __name__ == "__main__":
    doc = _without_version(document(ENDPOINTS, "golden"))
    GOLDEN.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {GOLDEN}")
