"""Registry of analyses: key -> module defining ``TITLE``, ``Config`` and ``run(ctx, cfg) -> Section``.

Adding an analysis is one module plus one line here. The order is the order of the report.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import ModuleType
from typing import Any

SECTIONS: dict[str, str] = {
    "training": "zspace.sections.training",
    "radius": "zspace.sections.radius",
    "axes": "zspace.sections.axes",
    "pca": "zspace.sections.pca",
    "elbow": "zspace.sections.elbow",
    "tsne": "zspace.sections.tsne",
    "umap": "zspace.sections.umap",
    "vae": "zspace.sections.vae",
    "decode": "zspace.sections.decode",
    "manifold": "zspace.sections.manifold",
}

# Analyses a report runs only when asked for: named in ``--only`` (or ``only``), or given settings (a ``[umap]``
# table, ``--set umap.KEY=VALUE``). UMAP compiles numba code on its first map in each process (10-20 s; minutes on
# busy cores), which would slow every default report and test of small data.
OPT_IN: tuple[str, ...] = ("umap",)

# The analyses ``zspace compare`` puts side by side (a subset of SECTIONS).
COMPARED: tuple[str, ...] = ("training", "radius", "pca", "elbow", "vae", "decode")


def default_sections(config: Mapping[str, Any] | None = None) -> list[str]:
    """The analyses a report runs when none are named: all but :data:`OPT_IN`, unless ``config`` (the analysis
    config: one table per analysis) has settings for them."""
    return [k for k in SECTIONS if k not in OPT_IN or k in (config or {})]


def section_module(key: str) -> ModuleType:
    """Import the module of analysis ``key``."""
    return importlib.import_module(SECTIONS[key])
