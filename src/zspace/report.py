"""Write sections as a report folder: ``report.html`` (readable offline), one PNG per figure, ``metrics.json``.

The page has a table of contents, each section's plain-language summary, its tables (key numbers), its
figures with captions, and its notes (what was adapted or skipped), and ends with the command that made it.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from zspace.atomic import atomic_write_text
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


MANIFEST = ".zspace-report.json"  # the files the last report wrote into its folder


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

    Everything is rendered in a hidden staging folder first, so a failure while plotting leaves the folder as it
    was. The files are then moved in one by one with ``os.replace`` (never half-written), ``report.html`` last,
    and the figures of an earlier report that this one no longer has are removed. Nothing else in ``out_dir`` is
    touched: a study keeps its training runs beside its report, and ``--out .`` is safe.
    """
    sections = list(sections)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir, prefix=".report-staging-"))
    try:
        images: dict[str, str] = {}
        for s in sections:
            for f in s.figures:
                name = f"{slug(s.key)}-{slug(f.name)}.png"
                f.figure.savefig(staging / name, dpi=dpi)
                images[f"{s.key}/{f.name}"] = name
        metrics = {s.key: {**s.metrics, "skipped": s.skipped, "notes": s.notes} for s in sections}
        metrics = {**(extra_metrics or {}), "command": command, "sections": metrics}
        (staging / "metrics.json").write_text(json.dumps(to_json(metrics), indent=2) + "\n")
        (staging / "report.html").write_text(page(sections, images, title=title, command=command, intro=intro))
        written = [*sorted(set(images.values())), "metrics.json", "report.html"]
        previous = _previous_files(out_dir)
        for name in written:  # report.html last: the page never points at figures not yet in place
            os.replace(staging / name, out_dir / name)
        atomic_write_text(out_dir / MANIFEST, json.dumps(written) + "\n")
        for name in sorted(set(previous) - set(written)):
            (out_dir / name).unlink(missing_ok=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir / "report.html"


def _previous_files(out_dir: Path) -> list[str]:
    """Plain file names the previous report wrote (from its manifest); anything else is never removed."""
    try:
        names = json.loads((out_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(names, list):
        return []
    return [n for n in names if isinstance(n, str) and n == Path(n).name and not n.startswith(".")]
