"""The contract between an analysis and the report: a :class:`Context` in, a :class:`Section` out.

A section module (``zspace/sections/<key>.py``) defines ``TITLE``, a ``Config`` dataclass (every parameter the
series varied, a comment on each default), optionally ``validate(cfg)`` (raises ConfigError; called before any
analysis runs) and ``run(ctx, cfg) -> Section``. It calls the computations in
``zspace.analyses`` and the plot functions in ``zspace.figures``, and writes nothing: the report writes files.
Defaults that do not fit a small latent space are adapted or skipped with a note, never a crash.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure

from zspace.errors import ZSpaceError
from zspace.latents.labels import label_codes

if TYPE_CHECKING:  # the report imports this module and must not pay for torch
    from zspace.latents.embedding import Latents

log = logging.getLogger(__name__)


@dataclass
class FigureItem:
    name: str  # file stem, unique within the section, e.g. "radius" -> <section>-radius.png
    figure: Figure
    caption: str  # what it shows and the parameters used


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[Any]]  # plain numbers and strings
    caption: str = ""


PUBLISHED_Z_DIM = 256  # the series' CelebA latents: their published figures compare only with this dimension


def celeba_comparable(ctx: Context, z_dim: int) -> bool:
    """May the series' published CelebA figures stand beside these latents? Only for a run on the series' CelebA
    images (its attribute file and image names, :func:`zspace.data.fingerprint.is_series_celeba`) at z_dim 256."""
    return z_dim == PUBLISHED_Z_DIM and ctx.series() == "celeba"


def published_where_comparable(table: Table, z_dim: int, ctx: Context) -> Table:
    """``table`` without its last (published) column unless the latents are the series' CelebA at z_dim 256."""
    if celeba_comparable(ctx, z_dim):
        return table
    why = (
        f"this space has z_dim {z_dim}"
        if ctx.series() == "celeba"
        else "the latents do not come from a run on the series' CelebA images"
    )
    note = f"The series' published CelebA figures (z_dim {PUBLISHED_Z_DIM}) are left out: {why}."
    return Table(table.title, table.columns[:-1], [r[:-1] for r in table.rows], note)


@dataclass
class Section:
    key: str  # the analysis name, e.g. "radius"
    title: str
    summary: str = ""  # a plain-language paragraph: what the numbers say
    metrics: dict[str, Any] = field(default_factory=dict)  # JSON-able; metrics.json holds it under ``key``
    figures: list[FigureItem] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # adaptations and skips, shown in the report
    skipped: bool = False  # the analysis did not apply at all (say why in ``notes``)


@dataclass
class Context:
    """What an analysis may use: the latents, and the run (model, config, data) when there is one."""

    latents: Latents
    run: Any = None  # zspace.runs.folder.Run, or None for a bare latents folder
    seed: int = 0
    progress: Any = None  # progress(what, done, total) from inside long analyses (t-SNE maps, elbow fits), or None
    _dataset: Any = field(default=None, repr=False)
    given_model: Any = None  # a model given without a run (any object with encode/decode), used before the run's
    # what a section leaves for the later ones of the same report, by its key (t-SNE's maps, for UMAP's comparison)
    shared: dict[str, Any] = field(default_factory=dict)

    def tick(self, what: str, done: int, total: int) -> None:
        """Report progress inside a long analysis (the CLI draws a bar; the library never prints)."""
        if self.progress is not None:
            self.progress(what, done, total)

    @property
    def model(self):
        """The model given with the latents, else the run's model (eval mode, CPU), or None for bare latents."""
        if self.given_model is not None:
            return self.given_model
        return None if self.run is None else self.run.model

    def dataset(self):
        """The run's dataset (loaded once), or None when there is no run or its data cannot be loaded."""
        if self._dataset is None and self.run is not None:
            from zspace.data import load_dataset

            try:
                self._dataset = load_dataset(self.run.config.data)
            except ZSpaceError as e:
                log.warning("the run's data could not be loaded: %s", e)
                self._dataset = False
        return self._dataset or None

    def series(self) -> str | None:
        """``"celeba"`` or ``"mnist"`` when the latents come from a run on the series' own files (fingerprinted by
        :mod:`zspace.data.fingerprint`), else None: bare latents, another dataset, or the same format with other
        data. The series' published figures are shown only where this says so."""
        data = getattr(getattr(self.run, "config", None), "data", None)
        if data is None or not getattr(data, "path", None) or data.name not in ("celeba", "mnist"):
            return None
        from zspace.data.fingerprint import is_series_celeba, is_series_mnist

        if data.name == "mnist":
            return "mnist" if is_series_mnist(data.path) else None
        return "celeba" if is_series_celeba(data.path, getattr(data, "attributes", None)) else None

    def rng(self, salt: int = 0) -> np.random.Generator:
        """A generator that depends only on the analysis seed and ``salt``."""
        return np.random.default_rng([self.seed, salt])

    def colors(self, by: str | None = None) -> tuple[np.ndarray, list[str]] | None:
        """Per-point classes to colour by: ``"label"``, an attribute name, or None for the first available.

        Returns (values (N,) int, names) or None when the latents carry neither labels nor that attribute.
        Attributes are -1/1 (0 unknown): values 0 = absent, 1 = present, 2 = unknown.
        """
        lat = self.latents
        names = lat.meta.get("attribute_names") or []
        if by in (None, "label") and lat.labels is not None:
            return label_codes(lat.labels, lat.meta.get("label_names") or [])  # 1e9: rank codes, not range(value)
        if lat.attributes is not None and names:
            name = names[0] if by in (None, "label") else by
            if name not in names:
                return None
            col = np.asarray(lat.attributes[:, names.index(name)])
            return np.where(col > 0, 1, np.where(col < 0, 0, 2)), [f"not {name}", name, "unknown"]
        return None
