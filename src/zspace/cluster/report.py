"""Write a study's report into its output folder: ``report.html``, one PNG per figure, ``metrics.json``.

One call, :func:`write_study_report`, so the page format lives in one place (``zspace.report``, shared with
``zspace analyze``). Unlike ``zspace.report.write_report``, the study folder is not replaced as a whole: a study
keeps its training runs next to the report, and only the report's own files are swapped in.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from zspace.report import write_report
from zspace.sections.base import Section

STAGING = ".report-staging"


def write_study_report(
    sections: Sequence[Section],
    out: str | Path,
    *,
    title: str,
    command: str,
    metrics: dict[str, Any],
    intro: str = "",
) -> Path:
    """Write the report of ``sections`` into ``out`` (created if needed) and return the page's path.

    ``metrics`` (the study's own numbers) go to the top level of ``metrics.json``; each section's metrics under
    ``sections``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    staging = out / STAGING
    shutil.rmtree(staging, ignore_errors=True)
    write_report(sections, staging, title=title, command=command, intro=intro, extra_metrics=metrics)
    for f in sorted(staging.iterdir()):
        os.replace(f, out / f.name)
    staging.rmdir()
    return out / "report.html"
