"""Number of latent points per radius interval, against a standard normal of the same dimension."""

from __future__ import annotations

from matplotlib.figure import Figure

from zspace.analyses.radius import Histogram, chi_counts, chi_mode


def radius_histogram(
    hist: Histogram,
    *,
    z_dim: int,
    shell50: tuple[float, float],
    mu_hist: Histogram | None = None,
    xlim: tuple[float, float] | None = None,
    title: str = "",
) -> Figure:
    """Counts per radius interval of z (and of mu), the chi reference, the peak and the narrowest 50 % shell.

    ``hist`` and ``mu_hist`` come from :func:`zspace.analyses.radius.histogram`; the reference is the expected
    count per interval for as many points drawn from N(0, I_z_dim).
    """
    fig = Figure(figsize=(8, 4), layout="constrained")
    ax = fig.subplots()
    n = int(hist.counts.sum())
    ax.axvspan(*shell50, color="tab:orange", alpha=0.15, label=f"50 % shell [{shell50[0]:.2f}, {shell50[1]:.2f}]")
    ax.step(hist.centres, hist.counts, where="mid", color="tab:blue", lw=1.2, label="radius of z")
    if mu_hist is not None:
        ax.step(mu_hist.centres, mu_hist.counts, where="mid", color="tab:green", lw=1, ls=":", label="radius of mu")
    ref = chi_counts(hist.edges, z_dim, n)
    ax.plot(
        hist.centres, ref, color="0.4", lw=1, ls="--", label=f"N(0, I_{z_dim}): peak sqrt(d-1) = {chi_mode(z_dim):.2f}"
    )
    ax.axvline(hist.peak, color="tab:red", lw=1, label=f"peak R = {hist.peak:.3g}")
    ax.set(xlabel="radius R = ||z||", ylabel=f"points per interval of {hist.width:g}", title=title)
    ax.set_xlim(*(xlim or (0.0, hist.r_max)))
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig
