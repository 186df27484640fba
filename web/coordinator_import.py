"""Importing members or historic hours from CSV: every line previewed (its values, and OK or
its problem) with nothing written; then the good lines imported as a background job.

The file travels from the preview to the confirmation in a hidden field (base64), bounded by
the API's own limit, and is checked again by the API when the job runs.

The API's preview answers with its JSON, made in a worker process (`api.imports`); the page
of a 50,000-line file is rendered in one too, and the good lines of the confirmation are chosen
in one, so that no import holds the event loop every other request waits on."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import uuid
from typing import Any

from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute

from api.endpoints import MAX_CSV_BYTES
from api.imports import ImportPreviewOut
from api.problems import Problem
from timebank import offload
from timebank.imports import keep_lines

from . import jobs, render
from .coordinator_common import STAFF
from .visit import Visit, page

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


async def _preview(v: Visit, kind: str, text: str) -> bytes:
    """The API's dry run: every line, its values and its problems; nothing written. The JSON
    of its `ImportPreviewOut`, as the API answers it."""
    answer: Response = await v.act(
        "POST", f"/schemes/{{scheme}}/imports/{kind}", body=text, query={"preview": True}
    )
    return bytes(answer.body)


def _context(v: Visit) -> dict[str, Any]:
    """What `Visit.render` gives every template (keep the two alike: the templates' undefined
    names fail the page tests), fit to send to a worker process: the form without its upload,
    the account without its password hash."""
    account = v.account and dataclasses.replace(v.account, password_hash="")
    form = FormData([(k, x) for k, x in v.form.multi_items() if isinstance(x, str)])
    return {
        "lang": v.lang,
        "account": account,
        "csrf": v.csrf,
        "scheme": v.scheme,
        "path": v.request.url.path,
        "form_key": uuid.uuid4().hex,
        "form": form,
        "errors": {},
        "notice": v._notice(),
    }


def _preview_page(context: dict[str, Any], kind: str, answer: bytes, raw: bytes) -> bytes:
    """In a worker process: the preview page (`render.page`'s HTML) of the API's answer."""
    found = ImportPreviewOut.model_validate_json(answer)
    columns = list(dict.fromkeys(c for line in found.lines for c in line.values))
    template = render.environment(context["lang"]).get_template("coordinator/import_preview.html")
    return template.render(
        context
        | {
            "kind": kind,
            "preview": found,
            "columns": columns,
            "data": base64.b64encode(raw).decode(),
        }
    ).encode()


def _good_lines(answer: bytes, text: str) -> tuple[int, str]:
    """In a worker process: how many lines the API's preview found good, and the file with
    only those (and its header)."""
    good = {line["line"] for line in json.loads(answer)["lines"] if line["ok"]}
    return len(good), keep_lines(text, good) if good else ""


async def form(v: Visit) -> Response:
    return v.render("coordinator/import.html", kinds=_kinds(v))


async def preview(v: Visit) -> Response:
    try:
        kind = _kind(v)
        upload = v.upload("file")
        if upload is None or not upload.filename:
            raise Problem(422, v._("Choose a CSV file."), field="file")
        raw = await upload.read(MAX_CSV_BYTES + 1)
        answer = await _preview(v, kind, _text(v, raw, "file"))
    except Problem as p:
        return v.problem(p, "coordinator/import.html", kinds=_kinds(v))
    html = await offload.run(_preview_page, _context(v), kind, answer, raw)
    response = HTMLResponse(html, headers={"Cache-Control": "no-store"})  # as `render.page`
    v.set_cookies(response)
    return response


async def run(v: Visit) -> Response:
    """Import the lines the preview found good, in the background; then the job's page."""
    kind = _kind(v)
    try:
        raw = base64.b64decode(v.field("data"), validate=True)
    except (binascii.Error, ValueError):
        raise Problem(
            422, v._("The file did not come back whole. Upload it again."), field="data"
        ) from None
    text = _text(v, raw, "data")
    good, chosen = await offload.run(_good_lines, await _preview(v, kind, text), text)
    if not good:
        raise Problem(422, v._("No line of the file can be imported."), field="data")
    key = v.field("key")

    async def work(progress: jobs.Progress) -> tuple[bytes, str]:
        await progress(0, good, v._("Importing %(n)s lines.", n=good))
        done = await v.act("POST", f"/schemes/{{scheme}}/imports/{kind}", body=chosen, key=key)
        await progress(good, good)
        return b"", v._("Imported. %(n)s added.", n=done.added)

    url = await jobs.start(v, f"import-{kind}", f"import-{kind}.txt", "text/plain", work)
    return v.redirect(url)


def routes() -> list[BaseRoute]:
    return [
        page("/s/{scheme}/coordinate/import", form, roles=STAFF),
        page("/s/{scheme}/coordinate/import", preview, roles=STAFF, methods=("POST",)),
        page("/s/{scheme}/coordinate/import/run", run, roles=STAFF, methods=("POST",)),
    ]
