"""``make demo``: train a small VAE on scikit-learn's bundled digits and write a page that shows it.

The full latent-space report comes with the analyses; this page shows training curves, reconstructions of
held-out digits and digits decoded from z ~ N(0, I).
"""

from __future__ import annotations

import html
import logging
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from zspace.api import train_run
from zspace.config import load_config
from zspace.data import load_dataset
from zspace.figures.training import image_grid, reconstruction_grid, training_curves
from zspace.runs import Run, load_run

log = logging.getLogger(__name__)


def packaged_config(name: str) -> Path:
    """Path of a config shipped in ``zspace/configs``."""
    return Path(str(resources.files("zspace") / "configs" / f"{name}.toml"))


@torch.no_grad()
def reconstructions(run: Run, n: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random test images and their decoded reconstructions (from mu for a VAE), (n, H, W, C) in [0, 1]."""
    data = load_dataset(run.config.data)
    rows = data.indices("test")
    rows = np.sort(np.random.default_rng(seed).choice(rows, size=min(n, len(rows)), replace=False))
    x = torch.from_numpy(np.asarray(data.x[rows])).permute(0, 3, 1, 2).float() / 255
    enc = run.model.encode(x)
    x_hat = run.model.decode(enc.mu if enc.mu is not None else enc.z)
    return x.permute(0, 2, 3, 1).numpy(), x_hat.permute(0, 2, 3, 1).numpy()


@torch.no_grad()
def samples(run: Run, n: int = 40, seed: int = 0) -> np.ndarray:
    """Images decoded from z ~ N(0, I), (n, H, W, C) in [0, 1]."""
    z = torch.randn(n, run.config.model.z_dim, generator=torch.Generator().manual_seed(seed))
    return run.model.decode(z).permute(0, 2, 3, 1).numpy()


def write_demo_page(run: Run) -> Path:
    """Write the figures and ``index.html`` into the run folder; returns the page's path."""
    figures = {
        "curves.png": (training_curves(run.history), "Loss per image and epoch (train and held-out test)."),
        "reconstructions.png": (
            reconstruction_grid(*reconstructions(run)),
            "Held-out test digits and their reconstructions (decoded from mu).",
        ),
        "samples.png": (
            image_grid(samples(run)),
            "Digits decoded from z ~ N(0, I): points that are not data.",
        ),
    }
    for name, (fig, _) in figures.items():
        fig.savefig(run.path / name, dpi=110)
    last = run.history[-1]
    m = run.config.model
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{v:.4f}</td></tr>" for k, v in last.items())
    body = "".join(
        f'<figure><img src="{n}" alt="{html.escape(c)}"><figcaption>{html.escape(c)}</figcaption></figure>'
        for n, (_, c) in figures.items()
    )
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>zspace demo: {run.config.name}</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto}}img{{max-width:100%}}
td,th{{padding:2px 10px;text-align:left}}figure{{margin:1.5em 0}}</style></head><body>
<h1>zspace demo: a {m.kind.upper()} on scikit-learn's 8x8 digits</h1>
<p>z_dim {m.z_dim}, filters {list(m.filters)}, kl_weight {m.kl_weight}, {run.config.train.epochs} epochs.
Made by <code>zspace demo</code>; the run folder holds the config, weights and history.</p>
<h2>Last epoch</h2><table>{rows}</table>{body}</body></html>
"""
    index = run.path / "index.html"
    index.write_text(page)
    return index


def run_demo(out_dir: str = "runs", epochs: int | None = None, overwrite: bool = True) -> Path:
    """Train the digits demo VAE and write its page; returns the path of ``index.html``."""
    sets = [f'out_dir="{out_dir}"'] + ([f"train.epochs={epochs}"] if epochs is not None else [])
    cfg = load_config(packaged_config("digits-demo"), sets)
    run_dir = train_run(cfg, overwrite=overwrite)
    return write_demo_page(load_run(run_dir))
