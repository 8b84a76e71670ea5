"""How the run was trained: the loss curves and the last epoch's numbers (skipped for bare latents)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zspace.figures.training import training_curves
from zspace.sections.base import Context, FigureItem, Section, Table

TITLE = "Training"


@dataclass
class Config:
    pass  # nothing to choose: the history is what it is


def run(ctx: Context, cfg: Config) -> Section:
    section = Section("training", TITLE)
    if ctx.run is None or not ctx.run.history:
        section.skipped = True
        section.notes.append("no run folder with a training history belongs to these latents")
        return section
    run, last = ctx.run, ctx.run.history[-1]
    m, t = run.config.model, run.config.train
    section.summary = (
        f"A {m.kind.upper()} with z_dim {m.z_dim}, filters {list(m.filters)}, kl_weight {m.kl_weight}, trained "
        f"{int(last['epoch'])} epochs with Adam (lr {t.lr}, batch {t.batch_size}); losses are per image "
        f"({m.reconstruction.upper()} in the Keras convention: channel mean, pixel sum)."
    )
    keys = ["total", "reconstruction", "weighted_kl", "kl", "test_total", "images_per_s"]
    keys += [k for k in ("radius_mean", "radius_peak", "mu_radius_mean") if np.isfinite(last.get(k, np.nan))]
    section.tables.append(Table("Last epoch", ["quantity", "value"], [[k, last.get(k, float("nan"))] for k in keys]))
    section.metrics = {"epochs": int(last["epoch"]), "last": {k: last.get(k) for k in keys}}
    section.figures.append(
        FigureItem("curves", training_curves(run.history), "Loss per image and epoch, train and held-out test.")
    )
    return section
