"""Registry of analyses: key -> module defining ``TITLE``, ``Config`` and ``run(ctx, cfg) -> Section``.

Adding an analysis is one module plus one line here. The order is the order of the report.
"""

from __future__ import annotations

import importlib
from types import ModuleType

SECTIONS: dict[str, str] = {
    "training": "zspace.sections.training",
    "radius": "zspace.sections.radius",
    "axes": "zspace.sections.axes",
    "pca": "zspace.sections.pca",
    "elbow": "zspace.sections.elbow",
    "tsne": "zspace.sections.tsne",
    "vae": "zspace.sections.vae",
    "decode": "zspace.sections.decode",
    "manifold": "zspace.sections.manifold",
}

# The analyses ``zspace compare`` puts side by side (a subset of SECTIONS).
COMPARED: tuple[str, ...] = ("training", "radius", "pca", "elbow", "vae", "decode")


def section_module(key: str) -> ModuleType:
    """Import the module of analysis ``key``."""
    return importlib.import_module(SECTIONS[key])
