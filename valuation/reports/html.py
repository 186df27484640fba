"""A report as one self-contained HTML page a commissioner can hand to a board. Pure.

Inline CSS and inline SVG charts; no script, font, image or style sheet is loaded from
anywhere, and the only links are to the sources the report cites. Every text from the report is
escaped. The page follows the board paper's order: title, scheme and period, the statement of
checkpoint, catalogue and parameters, the headline (hours and credits, unmonetised), charts,
every view as a table, assumptions, sources with their licences, caveats. The same content, in
the same order, is what the PDF prints (`pdf.py`), and the views are the spreadsheet's sheets.

The tables come from `document.py`, which the spreadsheet and the PDF share.
"""

from __future__ import annotations

from collections.abc import Iterator
from html import escape
from typing import Any

from .charts import Chart, charts
from .document import (
    Table,
    anchor,
    headline,
    is_number,
    label,
    statement,
    tables_in,
    text,
    title,
    views,
)

CSS = """
body{font-family:Georgia,'Times New Roman',serif;color:#1b1b1b;max-width:62rem;margin:2rem auto;
padding:0 1rem;line-height:1.45}
h1,h2,h3{font-family:Helvetica,Arial,sans-serif;line-height:1.2}h1{font-size:1.7rem}
h2{font-size:1.3rem;border-bottom:2px solid #2f6690;padding-bottom:.2rem;margin-top:2.2rem}
h3{font-size:1.05rem;margin-top:1.6rem}.statement{background:#f3f6f9;padding:.6rem 1rem}
.statement p{margin:.3rem 0;overflow-wrap:anywhere}
dl.headline{display:grid;grid-template-columns:max-content auto;gap:.3rem 1.2rem}
dl.headline dt{font-weight:bold}dl.headline dd{margin:0;font-variant-numeric:tabular-nums}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.85rem}
th,td{border:1px solid #c8d1da;padding:.2rem .45rem;text-align:left;vertical-align:top}
th{background:#e6edf3}td.n{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1rem 0}figure svg{max-width:100%;height:auto}figcaption{font-size:.85rem}
.caveats li{margin:.3rem 0}@media print{h2{break-after:avoid}table,figure{break-inside:avoid}}
"""


def to_html(report: dict[str, Any]) -> str:
    """The report as one HTML document (UTF-8 text)."""
    e = escape
    heading = title(report)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en-GB">',
        '<head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(heading)}</title><style>{CSS}</style></head>",
        "<body><main>",
        f"<h1>{e(heading)}</h1>",
        '<section class="statement" aria-labelledby="about"><h2 id="about">About this report</h2>',
        *(f"<p>{e(s)}</p>" for s in statement(report)),
        "</section>",
        '<section aria-labelledby="headline"><h2 id="headline">Headline</h2>',
        "<p>Hours and credits come first and are not money: one hour given is one credit.</p>",
        '<dl class="headline">',
        *(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v, _ in headline(report)),
        "</dl></section>",
    ]
    drawn = charts(report)
    if drawn:
        parts.append('<section aria-labelledby="charts"><h2 id="charts">Charts</h2>')
        parts.extend(_figure(c) for c in drawn)
        parts.append("</section>")
    parts.extend(_views(views(report)))
    if "assumptions" in report:
        parts.append('<section aria-labelledby="assumptions"><h2 id="assumptions">Assumptions</h2>')
        found = tables_in(report["assumptions"], ("assumptions",), ("Assumptions",))
        parts.extend(_table(t, level=len(t.path) - 1) for t in found)
        parts.append("</section>")
    if report.get("sources"):
        parts.append(_sources(report["sources"]))
    parts.append('<section aria-labelledby="caveats"><h2 id="caveats">Caveats</h2>')
    parts.append('<ul class="caveats">')
    parts.extend(f"<li>{e(str(c))}</li>" for c in report.get("caveats") or [])
    parts.append("</ul></section></main></body></html>")
    return "\n".join(parts) + "\n"


def _figure(chart: Chart) -> str:
    ident = f"chart-{chart.name}"
    svg = chart.svg().replace("<svg ", f'<svg role="img" aria-labelledby="{ident}" ', 1)
    return (
        f'<figure>{svg}<figcaption id="{ident}"><strong>{escape(chart.title)}.</strong> '
        f"{escape(chart.description)}</figcaption></figure>"
    )


def _views(tables: list[Table]) -> Iterator[str]:
    section = None
    for t in tables:
        if t.path[0] != section:
            if section is not None:
                yield "</section>"
            section = t.path[0]
            ident = anchor(t.path[:1])
            named = escape(label(section))
            yield f'<section aria-labelledby="{ident}"><h2 id="{ident}">{named}</h2>'
        yield _table(t, level=1 if len(t.path) > 1 else 0)
    if section is not None:
        yield "</section>"


def _table(t: Table, level: int) -> str:
    e = escape
    ident = anchor(t.path)
    head = f'<h3 id="{ident}">{e(t.heading)}</h3>' if level else ""
    if not t.rows:
        return f"{head}<p>None in this period.</p>"
    cols = "".join(f'<th scope="col">{e(label(c))}</th>' for c in t.columns)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{e(text(v))}</td>' if is_number(v) else f"<td>{e(text(v))}</td>"
            for v in row
        )
        + "</tr>"
        for row in t.rows
    )
    labelled = f' aria-labelledby="{ident}"' if level else f' aria-label="{e(t.heading)}"'
    return f"{head}<table{labelled}><thead><tr>{cols}</tr></thead><tbody>{body}</tbody></table>"


def _sources(sources: Any) -> str:
    e = escape
    items = []
    for s in sources if isinstance(sources, list) else []:
        if not isinstance(s, dict):
            items.append(f"<li>{e(str(s))}</li>")
            continue
        url = str(s.get("url") or "")
        named = e(str(s.get("title") or s.get("id") or url))
        link = (
            f'<a href="{e(url)}">{named}</a>' if url.startswith(("https://", "http://")) else named
        )
        said = [f"[{e(str(s['id']))}]"] if s.get("id") else []
        said.append(link)
        if s.get("publisher"):
            said.append(f"{e(str(s['publisher']))}.")
        said.append(f"Licence: {e(str(s.get('licence') or 'not stated'))}.")
        if url and not url.startswith(("https://", "http://")):
            said.append(e(url))
        items.append(f"<li>{' '.join(said)}</li>")
    return (
        '<section aria-labelledby="sources"><h2 id="sources">Sources</h2><ol>'
        + "".join(items)
        + "</ol></section>"
    )
