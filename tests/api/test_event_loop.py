"""No request holds the event loop: while the largest hostile upload of each kind is being
handled, `/api/v1/health`, asked after the upload started, is answered before the upload is.
(An order, not a timing: `bench/health_wait.py` measures how long health waits.)"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from api.endpoints import MAX_CSV_BYTES, MAX_JSON_BYTES
from tests.api.world import World
from timebank.imports import MAX_COLUMNS, MAX_ROWS

pytestmark = pytest.mark.both_backends
HOURS = "member,activity,date,minutes,receiver,note\n"


def many_lines() -> bytes:
    """MAX_ROWS lines of one member's hours: the parse and every line's checks."""
    line = "M1,garden,2025-06-02,15,,a note of some length to fill the line\n"
    return (HOURS + line * MAX_ROWS).encode()[:MAX_CSV_BYTES]


def huge_fields() -> bytes:
    """Members whose names are as long as csv reads (131,072 characters), up to the limit."""
    line = 'M9,"' + "n" * 131_000 + '",member,,\n'
    count = (MAX_CSV_BYTES - 100) // len(line)
    return ("id,display_name,roles,contact,card_number\n" + line * count).encode()


def many_columns() -> bytes:
    """Lines of the most fields a line may have, up to the size limit."""
    header = "id,display_name," + ",".join(f"x{i}" for i in range(MAX_COLUMNS - 2)) + "\n"
    line = "M9,Name," + ",".join("v" * 20 for _ in range(MAX_COLUMNS - 2)) + "\n"
    count = min(MAX_ROWS, (MAX_CSV_BYTES - len(header)) // len(line))
    return (header + line * count).encode()


def deep_json() -> bytes:
    depth = (MAX_JSON_BYTES - 100) // 2
    return (
        b'{"activity": "garden", "date": "2025-06-02", "minutes": 30, "note": '
        + (b"[" * depth + b"]" * depth)
        + b"}"
    )


UPLOADS: dict[str, tuple[str, str, Any]] = {
    "many lines": ("/api/v1/schemes/taff/imports/hours?preview=true", "text/csv", many_lines),
    "huge fields": ("/api/v1/schemes/taff/imports/members?preview=true", "text/csv", huge_fields),
    "many columns": ("/api/v1/schemes/taff/imports/members?preview=true", "text/csv",
                     many_columns),
    "deep JSON": ("/api/v1/schemes/taff/claims", "application/json", deep_json),
}  # fmt: skip


@pytest.mark.parametrize("kind", list(UPLOADS))
async def test_health_is_answered_while_the_largest_hostile_upload_is_handled(
    app_client: httpx.AsyncClient, world: World, kind: str
) -> None:
    path, media, make = UPLOADS[kind]
    body = make()
    assert len(body) <= (MAX_CSV_BYTES if media == "text/csv" else MAX_JSON_BYTES)
    headers = world.as_("taff", "coordinator") | {"content-type": media}
    finished: list[str] = []

    async def upload() -> httpx.Response:
        r = await app_client.post(path, content=body, headers=headers)
        finished.append("upload")
        return r

    async def health() -> None:
        r = await app_client.get("/api/v1/health")
        assert r.status_code == 200
        finished.append("health")

    sent = asyncio.create_task(upload())
    await asyncio.sleep(0)  # the upload is under way: its request is in the app
    await health()
    answer = await sent
    assert answer.status_code < 500, answer.text[:300]
    if kind != "deep JSON":  # a deep body is refused at once; the files take their time
        assert finished == ["health", "upload"], finished
    assert json.loads(answer.text) is not None
