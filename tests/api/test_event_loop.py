"""No request holds the event loop: while the largest hostile upload of each kind is being
handled, `/api/v1/health`, asked after the upload started and again as each piece of its work
goes to a worker process, is answered before the upload is; and the upload's answer (the
preview's JSON, the preview page's HTML) is made in a worker process, so the loop only passes
its bytes on. The writing imports likewise: their workers give back bytes (the parsed rows
packed, a refusal's JSON), never the rows themselves. Orders, not timings:
`bench/health_wait.py` measures how long health waits."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from api.endpoints import MAX_CSV_BYTES, MAX_JSON_BYTES
from identity.auth import ApiRole
from tests.api.world import World, log_hours, period
from tests.conftest import Clock
from timebank import offload
from timebank.imports import MAX_COLUMNS, MAX_ROWS
from web.book import AccountBook

pytestmark = pytest.mark.both_backends
HOURS = "member,activity,date,minutes,receiver,note\n"
PASSWORD = "correct horse battery"


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
# The coordinator's import page: the same files, previewed as a page.
PAGES: dict[str, tuple[str, Callable[[], bytes]]] = {
    "many lines": ("hours", many_lines),
    "huge fields": ("members", huge_fields),
    "many columns": ("members", many_columns),
}


# The writing imports (no `?preview`): what their workers give back must be small or bytes
# (the parsed rows packed as JSON chunks), never the rows themselves, and the checking and the
# writing let health in. A file of MAX_ROWS lines is refused whole after every line is checked;
# the written ones are smaller, so the test stays quick. (The sizes `bench/health_wait.py`
# measures are larger.)
WRITTEN = 2_000
TO_MEMBERS = "N,Name,Email,Phone,Alternative Phone\n"
TO_TRANSFERS = "Date,From,To,Post,Quantity\n"


def hours_written() -> bytes:
    """WRITTEN lines of M1's hours, one a day back from 2025-06-02: each logged and confirmed."""
    days = [date(2025, 6, 2) - timedelta(days=n) for n in range(WRITTEN)]
    return (HOURS + "".join(f"M1,garden,{d},30,,session {d}\n" for d in days)).encode()


def members_written() -> bytes:
    lines = "".join(f"N{i},Member {i},member,n{i}@example.org,\n" for i in range(WRITTEN))
    return ("id,display_name,roles,contact,card_number\n" + lines).encode()


def timeoverflow_members() -> bytes:
    return (TO_MEMBERS + "".join(f"{i},Member {i},m{i}@example.org,,\n"
                                 for i in range(WRITTEN))).encode()  # fmt: skip


def timeoverflow_transfers() -> bytes:
    """MAX_ROWS transfers between members this scheme does not have: every line checked, then
    the file refused whole, its problems numbered by the export's lines."""
    line = "2024-02-10 17:05:09 +0100,Carme Vidal (3),Anna Puig (1),Dog walking,0:30\n"
    return (TO_TRANSFERS + line * MAX_ROWS).encode()[:MAX_CSV_BYTES]


V1 = "/api/v1/schemes/taff/imports"
COMMITS: dict[str, tuple[str, Callable[[], bytes], int]] = {
    "many lines": (f"{V1}/hours", many_lines, 422),  # over the day's hours: refused whole
    "hours written": (f"{V1}/hours", hours_written, 200),
    "members written": (f"{V1}/members", members_written, 200),
    "TimeOverflow members": (f"{V1}/timeoverflow-members", timeoverflow_members, 200),
    "TimeOverflow transfers": (f"{V1}/timeoverflow-transfers?activity=garden",
                               timeoverflow_transfers, 422),
}  # fmt: skip


def compact(made: Any) -> bool:
    """Bytes, a flag, or a list or pair of bytes and strings: nothing the pool's thread takes
    long to unpickle."""
    if isinstance(made, list | tuple):
        return all(isinstance(x, bytes | str) for x in made)
    return isinstance(made, bytes | bool)


class Watch:
    """Health asked while an upload is handled: once as it starts, and again each time a piece
    of its work goes to a worker process; what each worker gave back; the order things ended."""

    def __init__(self, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
        self.client = client
        self.finished: list[str] = []
        self.made: list[Any] = []
        self.asked: list[asyncio.Task[None]] = []
        real = offload.run

        async def run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            self.ask()
            out = await real(fn, *args, **kwargs)
            self.made.append(out)
            return out

        monkeypatch.setattr(offload, "run", run)

    def ask(self) -> None:
        self.asked.append(asyncio.create_task(self.health(len(self.asked))))

    async def health(self, n: int) -> None:
        r = await self.client.get("/api/v1/health")
        assert r.status_code == 200
        self.finished.append(f"health {n}")

    async def upload(self, send: Awaitable[httpx.Response]) -> httpx.Response:
        async def sent() -> httpx.Response:
            r = await send
            self.finished.append("upload")
            return r

        task = asyncio.create_task(sent())
        await asyncio.sleep(0)  # the upload is under way: its request is in the app
        self.ask()
        answer = await task
        await asyncio.gather(*self.asked)
        return answer

    def assert_health_first(self) -> None:
        """Every health asked was answered before the upload, but the one asked at the last
        worker call: what follows that call may be quicker than a health's round trip, so that
        one may end either side of the upload (it is answered all the same)."""
        last = f"health {len(self.asked) - 1}" if len(self.asked) > 1 else "none"
        before = self.finished[: self.finished.index("upload")]
        wanted = {f"health {n}" for n in range(len(self.asked))}
        assert (set(before) | {last}) - {"none"} == wanted, self.finished
        assert len(self.finished) == len(self.asked) + 1, self.finished


@pytest.mark.parametrize("kind", list(UPLOADS))
async def test_health_is_answered_while_the_largest_hostile_upload_is_handled(
    app_client: httpx.AsyncClient, world: World, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, media, make = UPLOADS[kind]
    body = make()
    assert len(body) <= (MAX_CSV_BYTES if media == "text/csv" else MAX_JSON_BYTES)
    headers = world.as_("taff", "coordinator") | {"content-type": media}
    watch = Watch(app_client, monkeypatch)
    answer = await watch.upload(app_client.post(path, content=body, headers=headers))
    assert answer.status_code < 500, answer.text[:300]
    assert json.loads(answer.text) is not None
    if kind == "deep JSON":  # refused at once, by the body's model: no work to send anywhere
        assert answer.status_code == 422 and not watch.made
        return
    assert answer.status_code == 200
    watch.assert_health_first()
    assert len(watch.asked) >= 3  # one as it started, one for each of the two workers
    assert answer.content == watch.made[-1]  # the JSON was made in a worker, not on the loop
    assert all(isinstance(m, list) for m in watch.made[:-1])  # the ids to look up, no more


@pytest.mark.parametrize("kind", list(PAGES))
async def test_health_is_answered_while_the_import_page_previews_the_largest_files(
    app: Starlette, app_client: httpx.AsyncClient, world: World, db_url: str, clock: Clock,
    kind: str, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    what, make = PAGES[kind]
    book = await AccountBook.open(db_url, clock)
    try:
        await book.create("taff-coordinator", PASSWORD, ApiRole.COORDINATOR, "taff", member="C1")
    finally:
        await book.close()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tb.test") as browser:
        page = await browser.get("/sign-in")
        csrf = re.findall(r'name="csrf" value="([^"]+)"', page.text)[0]
        r = await browser.post("/sign-in", data={"csrf": csrf, "login": "taff-coordinator",
                                                 "password": PASSWORD})  # fmt: skip
        assert r.status_code == 303, r.text[:300]
        page = await browser.get("/s/taff/coordinate/import")
        csrf = re.findall(r'name="csrf" value="([^"]+)"', page.text)[0]
        watch = Watch(app_client, monkeypatch)
        answer = await watch.upload(browser.post(
            "/s/taff/coordinate/import", data={"csrf": csrf, "kind": what},
            files={"file": ("big.csv", make(), "text/csv")},
        ))  # fmt: skip
    assert answer.status_code == 200, answer.text[:300]
    assert "Nothing has been written yet" in answer.text
    watch.assert_health_first()
    assert len(watch.asked) >= 4  # as it started, the API's two workers, the page's
    assert answer.content == watch.made[-1]  # the page was rendered in a worker
    assert isinstance(watch.made[-2], bytes)  # from the API's preview, its JSON


@pytest.mark.parametrize("kind", list(COMMITS))
async def test_health_is_answered_while_a_writing_import_is_handled(
    app_client: httpx.AsyncClient, world: World, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, make, status = COMMITS[kind]
    body = make()
    assert len(body) <= MAX_CSV_BYTES
    headers = world.as_("taff", "coordinator") | {"content-type": "text/csv"}
    watch = Watch(app_client, monkeypatch)
    answer = await watch.upload(app_client.post(path, content=body, headers=headers))
    assert answer.status_code == status, answer.text[:300]
    if status == 200:
        assert answer.json()["added"] == WRITTEN
    else:  # its problems' JSON (100,000 of them) made in a worker, like a preview's answer
        assert answer.json()["code"] == "import_refused"
        assert answer.content == watch.made[-1]
    watch.assert_health_first()
    assert len(watch.asked) >= 2  # one as it started, one for its worker
    assert watch.made and all(compact(m) for m in watch.made), [type(m) for m in watch.made]


@pytest.mark.parametrize("fmt", ["json", "csv"])
async def test_health_is_answered_while_a_report_is_built(
    app_client: httpx.AsyncClient, world: World, clock: Clock, fmt: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """A report is built (0.3 s for a scheme of 5,000 members) and rendered in a worker: the
    loop reads its facts and passes the worker's bytes on. (This scheme's report is quick to
    build, so health asked as the worker starts may come after it: health asked as the request
    started comes first.)"""
    await log_hours(app_client, world, clock, [60, 90])
    watch = Watch(app_client, monkeypatch)
    answer = await watch.upload(app_client.get(
        "/api/v1/schemes/taff/reports", params=period(clock) | {"format": fmt},
        headers=world.as_("taff", "commissioner"),
    ))  # fmt: skip
    assert answer.status_code == 200, answer.text[:300]
    assert watch.finished[0].startswith("health") and watch.finished.count("upload") == 1
    assert answer.content == watch.made[-1] and isinstance(watch.made[-1], bytes)
