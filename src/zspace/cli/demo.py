"""``make demo``: train a small VAE on scikit-learn's bundled digits and map its latent space in one report."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from zspace.config import load_config, packaged_config
from zspace.report.analyze import analyze
from zspace.train.run import train_run

log = logging.getLogger(__name__)


# The demo's analysis settings: the defaults, but a lighter MiniBatchKMeans (the series' n_init 50 costs minutes).
DEMO_ANALYSIS = ("elbow.minibatch_n_init=3", "elbow.restarts=2")


def run_demo(
    out_dir: str = "runs",
    epochs: int | None = None,
    overwrite: bool = True,
    on_section: Callable[[str], None] | None = None,
) -> Path:
    """Train the digits demo VAE, analyse its latent space; returns the path of the report page."""
    sets = [("out_dir", str(out_dir))] + ([("train.epochs", epochs)] if epochs is not None else [])
    cfg = load_config(packaged_config("digits-demo"), sets)
    run_dir = train_run(cfg, overwrite=overwrite)
    command = "zspace demo  # = zspace analyze " + " ".join(f"--set {s}" for s in DEMO_ANALYSIS)
    return analyze(run_dir, sets=DEMO_ANALYSIS, command=command, on_section=on_section)
