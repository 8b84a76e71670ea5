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
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from zspace.errors import ConfigError
from zspace.io import ownership
from zspace.io.atomic import LOOSE_KINDS
from zspace.io.ownership import exclusive, lock_path
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
    """A table cell: integers with thousands separators, floats with 4 significant digits, checks as yes/no."""
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
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


MANIFEST = ownership.MANIFEST  # what the last report wrote into its folder: kind, and each file's sha256
LEGACY_MANIFEST, LEGACY_FORMAT = ".zspace-report.json", "zspace-report-2"  # read, for reports made before


def write_report(
    sections: Iterable[Section],
    out_dir: str | Path,
    *,
    title: str,
    command: str,
    intro: str = "",
    extra_metrics: dict[str, Any] | None = None,
    dpi: int = 110,
    kind: str | None = None,
) -> Path:
    """Write ``report.html``, the figures and ``metrics.json`` into ``out_dir``; returns the page's path.

    Everything is rendered in a hidden staging folder first, so a failure while plotting leaves the folder as it
    was. The files are then moved in one by one with ``os.replace`` (never half-written), ``report.html`` last,
    and the figures of an earlier report that this one no longer has are removed. Only files zspace can show it
    wrote are replaced or removed: the manifest records each file's sha256 and the report's ``kind`` (by default
    the command, e.g. ``zspace analyze``). A file of the user's own, a file changed since, or another kind of
    report in ``out_dir`` is a :class:`~zspace.errors.ConfigError`, before anything is written. A study keeps its
    training runs beside its report, and ``--out .`` is safe.
    """
    sections = list(sections)
    out_dir = Path(out_dir)
    kind = kind or _kind_of(command)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"report folder {out_dir} is a file, not a folder; choose another --out")
    out_dir.mkdir(parents=True, exist_ok=True)
    with exclusive(lock_path(out_dir, "report"), f"report folder {out_dir}"):
        ownership.remove_stale_temps(out_dir)  # only zspace's own temporary folders whose writer is gone
        previous, others = _previous_files(out_dir, kind)
        with ownership.temp_dir(out_dir) as staging:
            written = _render(sections, staging, title=title, command=command, intro=intro,
                              extra_metrics=extra_metrics, dpi=dpi)  # fmt: skip
            _check_owned(out_dir, written, previous)
            hashes = {name: ownership.sha256_file(staging / name) for name in written}
            for name in written:  # report.html last: the page never points at figures not yet in place
                os.replace(staging / name, out_dir / name)
            kept = {rel: h for rel, (h, _) in others.items() if rel not in hashes}  # other commands' files there
            ownership.write_manifest(out_dir, kind, {**kept, **hashes}, kinds={r: k for r, (_, k) in others.items()
                                                                             if r in kept})  # fmt: skip
            for name in sorted(set(previous) - set(written)):
                if _sha256_or_none(out_dir / name) == previous[name]:
                    (out_dir / name).unlink(missing_ok=True)
    return out_dir / "report.html"


def _render(sections: list[Section], staging: Path, *, title: str, command: str, intro: str,
            extra_metrics: dict[str, Any] | None, dpi: int) -> list[str]:  # fmt: skip
    """Figures, metrics.json and report.html into ``staging``; returns the file names, report.html last."""
    images: dict[str, str] = {}
    for s in sections:
        for f in s.figures:
            name = f"{slug(s.key)}-{slug(f.name)}.png"
            stem, i = name[:-4], 2
            while name in images.values():  # two figures whose names slug alike never share a file
                name, i = f"{stem}-{i}.png", i + 1
            f.figure.savefig(staging / name, dpi=dpi)
            images[f"{s.key}/{f.name}"] = name
    metrics = report_metrics(sections, command=command, extra_metrics=extra_metrics)
    (staging / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n")
    (staging / "report.html").write_text(page(sections, images, title=title, command=command, intro=intro))
    return [*sorted(set(images.values())), "metrics.json", "report.html"]


SCHEMA = "zspace.metrics/1"  # the layout of metrics.json: zspace/schemas/metrics.schema.json, docs/metrics.md


def report_metrics(
    sections: Iterable[Section], *, command: str, extra_metrics: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The JSON-able dict of ``metrics.json``: ``schema``, the extra entries, ``command``, and ``sections`` (each
    section's metrics under its key, with ``skipped`` and ``notes``)."""
    per = {s.key: {**s.metrics, "skipped": s.skipped, "notes": s.notes} for s in sections}
    out = {"schema": SCHEMA, **(extra_metrics or {}), "command": command, "sections": per}
    out["schema"] = SCHEMA  # first in the file, and never overridden by an extra entry
    return to_json(out)


def _kind_of(command: str) -> str:
    words = [w for w in command.split() if not w.startswith("-")]
    return " ".join(words[:3] if len(words) > 2 and words[1] == "study" else words[:2]) or "report"


def _check_owned(out_dir: Path, names: list[str], previous: dict[str, str]) -> None:
    """Every file about to be replaced must be one the previous report of this kind wrote, unchanged since."""
    for name in names:
        target = out_dir / name
        if target.is_symlink() or (target.exists() and not target.is_file()):
            raise ConfigError(f"{target} is not a plain file zspace wrote; choose another --out")
        if target.exists() and ownership.sha256_file(target) != previous.get(name):
            raise ConfigError(
                f"{target} exists and was not written by this kind of zspace report (or was changed since); "
                "choose another --out"
            )


def _sha256_or_none(path: Path) -> str | None:
    try:
        return ownership.sha256_file(path) if path.is_file() and not path.is_symlink() else None
    except OSError:
        return None


def _previous_files(out_dir: Path, kind: str) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    """Plain file names (with sha256) the previous report of ``kind`` wrote, and the files other commands
    recorded in the folder's manifest (path -> (sha256, kind)); anything else is never touched."""
    manifest = ownership.read_manifest(out_dir)
    if manifest is None and (out_dir / MANIFEST).exists():
        raise ConfigError(f"{out_dir / MANIFEST} was not written by zspace; move it or choose another --out")
    if manifest is None:
        return _legacy_files(out_dir, kind), {}
    files, kinds = manifest["files"], manifest["kinds"]
    if manifest["kind"] in LOOSE_KINDS and manifest["kind"] != kind:
        # a folder that only records single files (a sampled grid, an export: `--out .` beside the user's files):
        # the report goes beside them, and they stay recorded under the command that wrote them
        return {}, {r: (h, kinds.get(r) or manifest["kind"]) for r, h in files.items()}
    if manifest["kind"] != kind:
        other = manifest["kind"]
        raise ConfigError(f"{out_dir} holds the output of `{other}`; write this `{kind}` report elsewhere (--out)")
    others = {r: (h, kinds[r]) for r, h in files.items() if isinstance(kinds.get(r), str)}
    return {n: h for n, h in files.items() if n not in others and n == Path(n).name and not n.startswith(".")}, others


def _legacy_files(out_dir: Path, kind: str) -> dict[str, str]:
    """The files a report made before zspace's common manifest recorded in ``.zspace-report.json``."""
    try:
        manifest = json.loads((out_dir / LEGACY_MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(manifest, dict) or manifest.get("format") != LEGACY_FORMAT:
        return {}
    files = manifest.get("files")
    if not isinstance(files, dict):
        return {}
    if manifest.get("kind") != kind:
        other = manifest.get("kind")
        raise ConfigError(f"{out_dir} holds the report of `{other}`; write this `{kind}` report elsewhere (--out)")
    return {
        n: h
        for n, h in files.items()
        if isinstance(n, str) and isinstance(h, str) and n == Path(n).name and not n.startswith(".")
    }
