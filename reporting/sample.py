"""A spot check for a person: N random accepted units with their photos and fields, as one HTML file.

``pipeline.py sample N`` draws the units from the pipeline's table of accepted
units (``TraceSpec.accepted``) and shows each with every field of its row and
the photos its result rows link to. The page is self-contained (inline style,
a few lines of script that mark photos that did not load, no other origin)
and every value is HTML-escaped: workers type anything into free-text fields.
"""

from __future__ import annotations

import html
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from engine.trace import Rows, TraceSpec

#: Only these link schemes become an image or a link (the store's links are one of them).
SAFE_SCHEMES = ("https://", "http://", "file://")


@dataclass(frozen=True)
class Sampled:
    """One unit drawn: its id, its accepted row and its photos ((what, link), in order)."""

    unit: str
    row: Mapping[str, str]
    photos: tuple[tuple[str, str], ...]


def draw(trace: TraceSpec, subject_column: str, rows: Mapping[str, Rows], result_tables: Sequence[str],
         n: int, seed: int) -> tuple[list[Sampled], int]:
    """``n`` units drawn at random (by ``seed``) from the accepted table, and how many there were.

    Each unit's photos come from its rows in ``result_tables`` (links kept as
    results, not the short-lived ones shown to checkers).
    """
    if trace.accepted is None:
        return [], 0
    accepted = list({row.get(subject_column, ""): row for row in rows.get(trace.accepted, ())
                     if row.get(subject_column)}.items())
    chosen = random.Random(seed).sample(accepted, min(n, len(accepted)))
    drawn = []
    for unit, row in chosen:
        mine = {name: [r for r in rows.get(name, ()) if r.get(subject_column) == unit] for name in result_tables}
        drawn.append(Sampled(unit, row, tuple(dict.fromkeys(trace.photos(mine)))))
    return drawn, len(accepted)


def _is_link_cell(value: str) -> bool:
    return value.startswith("[") and any(scheme in value for scheme in SAFE_SCHEMES)


def _photo(what: str, link: str) -> str:
    if not link.startswith(SAFE_SCHEMES):
        return f'<div class="photo">{html.escape(what)}: {html.escape(link)}</div>'
    href = html.escape(link, quote=True)
    return (f'<figure class="photo"><a href="{href}"><img src="{href}" alt="{html.escape(what, quote=True)}" '
            f'loading="eager"></a><figcaption>{html.escape(what)}</figcaption></figure>')


def render(drawn: Sequence[Sampled], *, label: str, total: int, seed: int, title: str, now: datetime) -> str:
    """The page: one section per unit (its label, fields, photos), numbered in the order drawn."""
    sections = []
    for number, one in enumerate(drawn, 1):
        fields = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                         for k, v in one.row.items() if not _is_link_cell(v))
        photos = "".join(_photo(what, link) for what, link in one.photos) or '<p class="muted">no photos</p>'
        name = html.escape(", ".join(one.row[c] for c in ("name", "address") if one.row.get(c)) or one.unit)
        sections.append(
            f'<section class="unit" data-unit="{html.escape(one.unit, quote=True)}"><h2>{number}. {name}</h2>'
            f'<p class="muted">{html.escape(label)} {html.escape(one.unit)}</p>'
            f'<table>{fields}</table><div class="photos">{photos}</div></section>')
    return _PAGE.format(
        title=html.escape(title), shown=len(drawn), total=total, seed=seed,
        now=html.escape(now.strftime("%Y-%m-%d %H:%M:%S")),
        sections="\n".join(sections) or "<p>nothing accepted yet</p>",
        command=html.escape(f"python pipeline.py sample {len(drawn)} --seed {seed}"),
    )


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src https: http: file: data:; \
style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>Spot check: {title}</title>
<style>
  body {{ font: 14px/1.4 system-ui, sans-serif; margin: 16px 24px; color: #1d2433; background: #f6f7f9; }}
  h1 {{ font-size: 20px; margin: 0 0 4px; }} h2 {{ font-size: 16px; margin: 0 0 4px; }}
  .muted {{ color: #667085; }}
  .unit {{ background: #fff; border: 1px solid #d0d5dd; border-radius: 6px; padding: 10px 14px; margin: 12px 0; }}
  table {{ border-collapse: collapse; margin: 6px 0; }}
  th, td {{ text-align: left; padding: 2px 8px; border-bottom: 1px solid #eaecf0; vertical-align: top; }}
  td {{ white-space: pre-wrap; }}
  .photos {{ display: flex; flex-wrap: wrap; gap: 10px; }}
  .photo {{ margin: 0; }} .photo img {{ max-width: 260px; max-height: 200px; display: block; }}
  .photo figcaption {{ font-size: 12px; color: #475467; }}
  .broken {{ outline: 3px solid #d92d20; }}
</style>
</head>
<body>
<h1>Spot check: {shown} of {total} accepted, drawn at random</h1>
<p class="muted">{title} &middot; written {now} UTC &middot; seed {seed}
(the same draw again, while the table is the same: <code>{command}</code>)
&middot; a photo outlined in red did not load (its link may have expired: <code>python pipeline.py relink</code>)</p>
{sections}
<script>
"use strict";
window.addEventListener("load", () => {{
  const images = Array.from(document.images);
  const broken = images.filter(img => !img.complete || img.naturalWidth === 0);
  broken.forEach(img => img.classList.add("broken"));
  document.body.dataset.images = String(images.length);
  document.body.dataset.broken = String(broken.length);
}});
</script>
</body>
</html>
"""
