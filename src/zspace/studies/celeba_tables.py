"""The tables of ``zspace study celeba-ae-vs-vae``: the series' published figures beside ours, the acceptance
checks, and the run-to-run spread over seeds. Inputs are the studied runs' ``metrics.json`` dicts, keyed by model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from zspace.sections.base import Table


def nested(d: dict, *keys: str) -> Any:
    """``d[k1][k2]...``, or None where a key is missing or a level is not a dict (a metric a run did not write)."""
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def _share(radius: dict, a: float, b: float) -> float | None:
    for s in radius.get("shells", []):
        if abs(s["a"] - a) < 1e-9 and abs(s["b"] - b) < 1e-9:
            return s["share"]
    return None


def _row(label: str, pub_ae: Any, ae: Any, pub_vae: Any, vae: Any, vae5: Any) -> list[Any]:
    return [label, pub_ae, ae, pub_vae, vae, vae5]


SPREAD = (  # (column, metric path) of the run-to-run table
    ("final loss per image", ("training", "last", "total")),
    ("radius peak", ("radius", "peak")),
    ("mean radius", ("radius", "mean")),
    ("95 % shell width", ("radius", "shell95")),
    ("mean logvar", ("vae", "logvar_mean")),
)


def spread_table(ms: dict[str, dict], models: Sequence[str], seeds: Sequence[int]) -> Table:
    """One row per (model, seed) and a min - max row per model: how far runs differ only by their seed."""

    def value(run: dict, path: tuple[str, ...]) -> float | None:
        v = nested(run, *path)
        if path[-1] == "shell95" and v is not None:
            return float(v[1] - v[0])
        return None if v is None else float(v)

    rows: list[list[Any]] = []
    for model in models:
        values = [[value(ms.get(f"{model}-s{seed}", {}), path) for _, path in SPREAD] for seed in seeds]
        rows += [[model, f"seed {seed}", *v] for seed, v in zip(seeds, values, strict=True)]
        columns = list(zip(*values, strict=True))
        span = [f"{min(c):.4g} - {max(c):.4g}" if all(x is not None for x in c) else "-" for c in columns]
        rows.append([model, "min - max", *span])
    return Table("Run-to-run spread (same data and settings, only the training seed differs)",
                 ["model", "run", *(c for c, _ in SPREAD)], rows)  # fmt: skip


def published_table(
    ms: dict[str, dict], faces: dict[str, float], fid: dict[str, float] | None = None, *, series: bool = True
) -> Table:
    """SPEC section 5 beside our values: one column per published model, ours beside each.

    ``fid``: zspace-FID of N(0, I) samples per run key (the quality section's), where measured. ``series``: the
    study ran on the series' CelebA images (:func:`zspace.data.fingerprint.is_series_celeba`); for any other faces
    the published columns are left out and the caption says why.
    """
    ae, vae, vae5 = (ms.get(k, {}) for k in ("ae", "vae-tiny-kl", "vae-kl5"))
    fid = fid or {}

    def m(run: dict, *keys: str) -> Any:
        return nested(run, *keys)

    rows = [
        _row(
            "total loss per image",
            "4,515 (4,553)",
            m(ae, "training", "last", "total"),
            "4,553 - 4,555",
            m(vae, "training", "last", "total"),
            m(vae5, "training", "last", "total"),
        ),
        _row(
            "radius of the density peak",
            "16.5 - 16.75",
            m(ae, "radius", "peak"),
            "~16",
            m(vae, "radius", "peak"),
            m(vae5, "radius", "peak"),
        ),
        _row(
            "mean radius",
            "-",
            m(ae, "radius", "mean"),
            "16.28 (17.37)",
            m(vae, "radius", "mean"),
            m(vae5, "radius", "mean"),
        ),
        _row(
            "share in 12 < R < 24",
            "almost all",
            _share(ae.get("radius", {}), 12, 24),
            "similar",
            _share(vae.get("radius", {}), 12, 24),
            _share(vae5.get("radius", {}), 12, 24),
        ),
        _row(
            "share in 14 <= R <= 19",
            "> 50 %",
            _share(ae.get("radius", {}), 14, 19),
            "similar",
            _share(vae.get("radius", {}), 14, 19),
            _share(vae5.get("radius", {}), 14, 19),
        ),
        _row(
            "95 % shell",
            "-",
            str(m(ae, "radius", "shell95")),
            "-",
            str(m(vae, "radius", "shell95")),
            str(m(vae5, "radius", "shell95")),
        ),
        _row(
            "logvar min / max / mean",
            "-",
            "-",
            "-24.66 / -2.02 / -13.68",
            _triple(vae.get("vae", {})),
            _triple(vae5.get("vae", {})),
        ),
        _row("max |z - mu|", "-", "-", 0.26, m(vae, "vae", "max_abs_z_minus_mu"), m(vae5, "vae", "max_abs_z_minus_mu")),
        _row(
            "components with 0.05 < |z - mu| < 2",
            "-",
            "-",
            "5 of 43.5 M",
            _band(vae.get("vae", {})),
            _band(vae5.get("vae", {})),
        ),
        _row(
            "mean rel. radius difference z vs mu",
            "-",
            "-",
            6.1e-5,
            m(vae, "vae", "radius", "rel_mean"),
            m(vae5, "vae", "radius", "rel_mean"),
        ),
        _row(
            "max rel. radius difference z vs mu",
            "-",
            "-",
            7.2e-4,
            m(vae, "vae", "radius", "rel_max"),
            m(vae5, "vae", "radius", "rel_max"),
        ),
        _row("elbow (Kneedle, Lloyd)", "none clear; 38 - 42", _elbow(ae), "similar", _elbow(vae), _elbow(vae5)),
        _row(
            "decoded N(0, I) vs nearest training image",
            "no faces",
            faces.get("ae"),
            "no faces",
            faces.get("vae-tiny-kl"),
            faces.get("vae-kl5"),
        ),
        _row(
            "zspace-FID of N(0, I) samples (lower: more face-like)",
            "no faces",
            fid.get("ae"),
            "no faces",
            fid.get("vae-tiny-kl"),
            fid.get("vae-kl5"),
        ),
    ]
    cols = ["quantity", "published AE", "ours AE", "published VAE 1e-5", "ours VAE 1e-5", "ours VAE kl 5"]
    caption = (
        "Published: CelebA, 170,000 images at 96x96, 24 epochs (SPEC section 5). Ours: the images and epochs of "
        "this study. The 'decoded N(0, I)' row is the L2 distance of images decoded from z ~ N(0, I) to their "
        "nearest training image, divided by the typical distance between neighbouring training images. Caution: "
        "L2 rewards blur, so a blurry non-face can score as close as a face. The zspace-FID row (section 'Sample "
        "quality') compares features of a CNN trained on the study's own images and attributes instead."
    )
    if not series:
        keep = [i for i, c in enumerate(cols) if not c.startswith("published")]
        caption = (
            "The series' published figures (CelebA, 170,000 images) are left out: the images given are not the "
            "series' CelebA (its attribute file and image names). " + caption[caption.index("The 'decoded") :]
        )
        return Table("Our figures", [cols[i] for i in keep], [[r[i] for i in keep] for r in rows], caption)
    return Table("Published figures beside ours", cols, rows, caption)


def _triple(v: dict) -> str | None:
    if not v:
        return None
    return f"{v['logvar_min']:.2f} / {v['logvar_max']:.2f} / {v['logvar_mean']:.2f}"


def _band(v: dict) -> str | None:
    return f"{v['band_count']:,} of {v['components']:,}" if v else None


def _elbow(run: dict) -> str | None:
    curves = [c for c in (run.get("elbow") or {}).values() if isinstance(c, dict) and "elbow_k" in c]
    if not curves:
        return None
    c = curves[-1]
    return f"k = {c['elbow_k']}" + ("" if c.get("elbow_pronounced") else " (not pronounced)")


def acceptance(ms: dict[str, dict]) -> Table:
    """The issue's acceptance checks, measured."""
    ae_peak, vae_peak = nested(ms, "ae", "radius", "peak"), nested(ms, "vae-tiny-kl", "radius", "peak")
    rows = []
    if ae_peak and vae_peak:
        diff = abs(ae_peak - vae_peak) / max(ae_peak, vae_peak)
        rows.append(["AE and tiny-KL VAE radius peaks within 15 %", f"{ae_peak:.2f} vs {vae_peak:.2f}", diff <= 0.15])
    logvar = nested(ms, "vae-tiny-kl", "vae", "logvar_mean")
    if logvar is not None:
        rows.append(["tiny-KL VAE mean logvar below -8", f"{logvar:.2f}", logvar < -8])
    rel = nested(ms, "vae-tiny-kl", "vae", "radius", "rel_mean")
    if rel is not None:
        rows.append(["tiny-KL mean relative radius difference z vs mu below 1e-3", f"{rel:.3g}", rel < 1e-3])
    means = {k: nested(ms, k, "radius", "mean") for k in ("ae", "vae-tiny-kl", "vae-kl5")}
    shells = {k: nested(ms, k, "radius", "shell95") for k in means}
    if all(v is not None for v in means.values()) and all(shells.values()):
        width = {k: b - a for k, (a, b) in shells.items()}
        confined = width["vae-kl5"] < 0.5 * min(width["ae"], width["vae-tiny-kl"])
        text = "; ".join(
            f"{k}: mean R {means[k]:.2f}, 95 % shell [{shells[k][0]:.2f}, {shells[k][1]:.2f}] (width {width[k]:.2f})"
            for k in means
        )
        rows.append(["kl-5 VAE markedly more confined (95 % shell under half as wide as the others')", text, confined])
    return Table("Acceptance checks", ["check", "measured", "met"], rows)
