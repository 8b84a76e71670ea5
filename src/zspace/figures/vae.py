"""VAE figures: KL per latent dimension and the activity of every unit, both sorted."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure


def kl_and_activity(kl_per_dim: np.ndarray, mu_variance: np.ndarray, *, threshold: float = 0.01) -> Figure:
    """Sorted bars of the KL per dimension (nats) and of A_u = Var_x(mu_u) (log scale) with the activity threshold."""
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    d = len(kl_per_dim)
    x = np.arange(1, d + 1)
    ax1.bar(x, np.sort(kl_per_dim)[::-1], width=1.0, color="tab:blue")
    ax1.set(
        xlabel="dimension (sorted)",
        ylabel="KL per point (nats)",
        title=f"KL per dimension, total {kl_per_dim.sum():.4g}",
    )
    act = np.sort(mu_variance)[::-1]
    n_active = int(np.count_nonzero(mu_variance > threshold))
    ax2.bar(x, np.maximum(act, 1e-12), width=1.0, color=np.where(act > threshold, "tab:green", "0.6"))
    ax2.axhline(threshold, color="tab:red", lw=0.8, ls="--", label=f"threshold {threshold:g}")
    ax2.set_yscale("log")
    ax2.set(xlabel="unit (sorted)", ylabel="A_u = Var_x(mu_u)", title=f"active units: {n_active} of {d}")
    ax2.legend(fontsize=8)
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3, axis="y")
    return fig


def logvar_histogram(edges: np.ndarray, counts: np.ndarray, *, band: tuple[float, float]) -> Figure:
    """Components per logvar interval (log scale), the counted band shaded."""
    fig = Figure(figsize=(7, 3.4), layout="constrained")
    ax = fig.subplots()
    ax.stairs(np.maximum(counts, 0.5), edges, fill=True, color="tab:purple", alpha=0.7, baseline=0.5)
    ax.axvspan(band[0], band[1], color="tab:orange", alpha=0.15, label=f"band [{band[0]:g}, {band[1]:g}]")
    ax.set_yscale("log")
    ax.set(xlabel="logvar", ylabel="components", title=f"logvar of all {int(counts.sum()):,} components")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig
