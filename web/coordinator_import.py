"""Importing members or historic hours from CSV: every line previewed (its values, and OK or
its problem) with nothing written; then the good lines imported as a background job.

The file travels from the preview to the confirmation in a hidden field (base64), bounded by
the API's own limit, and is checked again by the API when the job runs."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute

from api.endpoints import MAX_CSV_BYTES
from api.problems import Problem
from timebank.imports import keep_lines

from . import jobs
from .coordinator_common import STAFF
from .visit import Box, Visit, page

KINDS = ("members", "hours")


def _kinds(v: Visit) -> list[tuple[str, str]]:
    return [("members", v._("Members")), ("hours", v._("Historic hours"))]


def _kind(v: Visit) -> str:
    kind = v.field("kind")
    if kind not in KINDS:
        raise Problem(422, v._("Choose what the file holds."), field="kind")
    return kind


def _text(v: Visit, raw: bytes, name: str) -> str:
    if len(raw) > MAX_CSV_BYTES:
        raise Problem(413, v._("The file is over 8 MB."), field=name)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Problem(422, v._("The file is not UTF-8 text."), field=name) from None


async def _preview(v: Visit, kind: str, text: str) -> Any:
    """The API's dry run: every line, its values and its problems; nothing written."""
    return await v.act("POST", f"/schemes/{{scheme}}/imports/{kind}", body=text,
                       query={"preview": True})  # fmt: skip


async def form(v: Visit) -> Response:
    return v.render("coordinator/import.html", kinds=_kinds(v))


async def preview(v: Visit) -> Response:
    try:
        kind = _kind(v)
        upload = v.upload("file")
        if upload is None or not upload.filename:
            raise Problem(422, v._("Choose a CSV file."), field="file")
        raw = await upload.read(MAX_CSV_BYTES + 1)
        found = await _preview(v, kind, _text(v, raw, "file"))
    except Problem as p:
        return v.problem(p, "coordinator/import.html", kinds=_kinds(v))
    columns = list(dict.fromkeys(c for line in found.lines for c in line.values))
    return v.render("coordinator/import_preview.html", kind=kind, preview=found,
                    columns=columns, data=base64.b64encode(raw).decode())  # fmt: skip


async def run(v: Visit) -> Response:
    """Import the lines the preview found good, in the background; then the job's page."""
    kind = _kind(v)
    try:
        raw = base64.b64decode(v.field("data"), validate=True)
    except (binascii.Error, ValueError):
        raise Problem(422, v._("The file did not come back whole. Upload it again."),
                      field="data") from None  # fmt: skip
    text = _text(v, raw, "data")
    found = await _preview(v, kind, text)
    good = {line.line for line in found.lines if line.ok}
    if not good:
        raise Problem(422, v._("No line of the file can be imported."), field="data")
    chosen = keep_lines(text, good)
    key = v.field("key")

    async def work(progress: jobs.Progress) -> tuple[bytes, str]:
        await progress(0, len(good), v._("Importing %(n)s lines.", n=len(good)))
        done = await v.act("POST", f"/schemes/{{scheme}}/imports/{kind}", body=chosen, key=key)
        await progress(len(good), len(good))
        return b"", v._("Imported. %(n)s added.", n=done.added)

    url = await jobs.start(v, f"import-{kind}", f"import-{kind}.txt", "text/plain", work)
    return v.redirect(url)


def routes(box: Box) -> list[BaseRoute]:
    return [
        page("/s/{scheme}/coordinate/import", form, box, roles=STAFF),
        page("/s/{scheme}/coordinate/import", preview, box, roles=STAFF, methods=("POST",)),
        page("/s/{scheme}/coordinate/import/run", run, box, roles=STAFF, methods=("POST",)),
    ]
