"""Write sections as a report folder: ``report.html`` (readable offline), one PNG per figure, ``metrics.json``.

The page has a table of contents, each section's plain-language summary, its tables (key numbers), its
figures with captions, and its notes (what was adapted or skipped), and ends with the command that made it.
"""

from __future__ import annotations

import html
import json
import math
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from zspace.atomic import replace_dir
from zspace.sections.base import Section, Table

CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.8em 0;font-size:.92em}td,th{border:1px solid #ddd;padding:3px 9px;
text-align:right}th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
figure{margin:1.2em 0}figure img{max-width:100%;border:1px solid #eee}figcaption{font-size:.9em;color:#444}
.note{background:#fff8e1;border-left:4px solid #f0c000;padding:.3em .8em;margin:.4em 0;font-size:.92em}
.skipped{color:#777}.summary{font-size:1.02em}code,pre{background:#f6f6f6;padding:1px 4px}
pre{padding:.6em;overflow-x:auto}nav li{margin:.1em 0}
"""


def fmt(value: Any) -> str:
    """A table cell: integers with thousands separators, floats with 4 significant digits."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isnan(v):
            return "–"
        if v != 0 and (abs(v) >= 1e6 or abs(v) < 1e-3):
            return f"{v:.4g}"
        return f"{v:,.4g}" if abs(v) >= 1e4 else f"{v:.4g}"
    return "–" if value is None else str(value)


def to_json(value: Any) -> Any:
    """JSON-able copy of metrics (numpy scalars and arrays, NaN as null, tuples as lists)."""
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_json(value.tolist())
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, Path):
        return str(value)
    return value


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "x"


def _table_html(t: Table) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in t.columns)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(fmt(v))}</td>" for v in row) + "</tr>" for row in t.rows)
    cap = f"<p>{html.escape(t.caption)}</p>" if t.caption else ""
    return f"<h3>{html.escape(t.title)}</h3><table><tr>{head}</tr>{rows}</table>{cap}"


def _section_html(s: Section, images: dict[str, str]) -> str:
    parts = [f'<section id="{slug(s.key)}"><h2>{html.escape(s.title)}</h2>']
    if s.skipped:
        parts.append('<p class="skipped">Skipped.</p>')
    if s.summary:
        parts.append(f'<p class="summary">{html.escape(s.summary)}</p>')
    parts += [f'<p class="note">{html.escape(n)}</p>' for n in s.notes]
    parts += [_table_html(t) for t in s.tables]
    for f in s.figures:
        src = images[f"{s.key}/{f.name}"]
        alt = html.escape(f.caption or f.name)
        parts.append(f'<figure><img src="{src}" alt="{alt}"><figcaption>{html.escape(f.caption)}</figcaption></figure>')
    parts.append("</section>")
    return "\n".join(parts)


def page(sections: list[Section], images: dict[str, str], *, title: str, command: str, intro: str = "") -> str:
    """The HTML of a report page."""
    toc = "".join(
        f'<li><a href="#{slug(s.key)}">{html.escape(s.title)}</a>{" (skipped)" if s.skipped else ""}</li>'
        for s in sections
    )
    body = "\n".join(_section_html(s, images) for s in sections)
    intro_html = f"<p>{html.escape(intro)}</p>" if intro else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">
<title>{html.escape(title)}</title><style>{CSS}</style></head>
<body><h1>{html.escape(title)}</h1>{intro_html}<nav><ol>{toc}</ol></nav>
{body}
<h2>How this report was made</h2><pre>{html.escape(command)}</pre>
<p>Numbers: <a href="metrics.json">metrics.json</a>.</p>
</body></html>
"""


def write_report(
    sections: Iterable[Section],
    out_dir: str | Path,
    *,
    title: str,
    command: str,
    intro: str = "",
    extra_metrics: dict[str, Any] | None = None,
    dpi: int = 110,
) -> Path:
    """Write ``report.html``, the figures and ``metrics.json`` into ``out_dir``; returns the page's path.

    The folder is filled in a temporary sibling and swapped in at the end, so an interrupted report never
    leaves a half-written folder in place of a good one.
    """
    sections = list(sections)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.tmp-"))
    images: dict[str, str] = {}
    for s in sections:
        for f in s.figures:
            name = f"{slug(s.key)}-{slug(f.name)}.png"
            f.figure.savefig(tmp / name, dpi=dpi)
            images[f"{s.key}/{f.name}"] = name
    metrics = {s.key: {**s.metrics, "skipped": s.skipped, "notes": s.notes} for s in sections}
    metrics = {**(extra_metrics or {}), "command": command, "sections": metrics}
    (tmp / "metrics.json").write_text(json.dumps(to_json(metrics), indent=2) + "\n")
    (tmp / "report.html").write_text(page(sections, images, title=title, command=command, intro=intro))
    replace_dir(tmp, out_dir)
    return out_dir / "report.html"
