"""Sample quality in the CelebA study: the AE with N(0, I) and with a GMM fitted on its z, beside the VAEs.

The series saw faces only from the kl-5 VAE's N(0, I) samples; Ghosh et al. (2020) get them from an AE by
sampling a Gaussian mixture fitted on its latent points. The study's former L2 "faces" ratio (decoded image to
nearest training image) rewards blur and did not separate them (0.68 / 0.68 / 0.75). This section scores each
(model, sampler) with zspace-FID, precision, recall, density and coverage (:mod:`zspace.latents.quality`) in the
feature space of a CNN zspace trains on the study's images and their 40 attributes (:mod:`zspace.latents.feature_net`),
against the test images, with the training images themselves as the floor.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from zspace.latents.feature_net import FeatureConfig, data_features, feature_network, generated_features
from zspace.latents.quality import NAME, Quality, score
from zspace.latents.samplers import fit_sampler
from zspace.runs.folder import load_run
from zspace.sections.base import Section, Table

log = logging.getLogger(__name__)

PAIRS = (  # (run key, sampler, label) scored by the study
    ("ae", "normal", "AE + N(0, I)"),
    ("ae", "gmm", "AE + GMM on z"),
    ("vae-tiny-kl", "normal", "VAE 1e-5 + N(0, I)"),
    ("vae-kl5", "normal", "VAE kl 5 + N(0, I)"),
    ("vae-kl5", "gmm", "VAE kl 5 + GMM on z"),
)


def quality_section(run_dirs: dict[str, Path], *, folder: Path, quick: bool, seed: int = 0) -> Section:
    """Score every (model, sampler) of :data:`PAIRS` whose run is in ``run_dirs`` (by key); the feature net is
    trained once into ``folder`` (reused on a rerun with the same images)."""
    first = load_run(next(iter(run_dirs.values())))
    from zspace.data import load_dataset

    data = load_dataset(first.config.data)
    cfg = FeatureConfig(epochs=1, max_images=2000) if quick else FeatureConfig()
    net = feature_network(data, cfg=cfg, folder=folder)
    n = 64 if quick else 1000
    real = data_features(net, data, "test", n, seed=seed)
    scores: dict[str, Quality] = {"training images": score(real, data_features(net, data, "train", n, seed=seed + 1))}
    components: dict[str, int] = {}
    for key, kind, label in PAIRS:
        if key not in run_dirs:
            continue
        run = load_run(run_dirs[key])
        sampler = fit_sampler(run, kind)
        if kind == "gmm":
            components[label] = sampler.n_components_
        scores[label] = score(real, generated_features(net, run.model, sampler, n, seed=seed))
        log.info("%s: %s %.4g", label, NAME, scores[label].fid)
    section = Section("quality", f"Sample quality: {NAME} and precision / recall / density / coverage")
    section.tables.append(_table(scores, components, net, len(real)))
    section.metrics = {
        "measure": f"{NAME} (features: {net.describe()})",
        "feature_net": net.info,
        "scores": {k: q.to_dict() for k, q in scores.items()},
        "gmm_components": components,
    }
    section.summary = _summary(scores)
    return section


def _table(scores: dict[str, Quality], components: dict[str, int], net, n_real: int) -> Table:
    rows = [
        [label + (f" ({components[label]} components by BIC)" if label in components else ""),
         q.fid, q.precision, q.recall, q.density, q.coverage]
        for label, q in scores.items()
    ]  # fmt: skip
    caption = (
        f"{NAME} (features: {net.describe()}; test accuracy {_pct(net.info.get('test_accuracy'))}), never "
        f"comparable with an Inception FID. Each row: {next(iter(scores.values())).n_fake} images against "
        f"{n_real} test images; k = 5 neighbours for precision/recall (Kynkäänniemi 2019) and density/coverage "
        "(Naeem 2020). Lower FID and higher precision/density mean more data-like images; recall and coverage "
        "measure how much of the data's variety the samples reach. 'training images' is the floor: real vs real."
    )
    return Table(f"{NAME} per model and sampler", ["images", NAME, "precision", "recall", "density", "coverage"],
                 rows, caption)  # fmt: skip


def _pct(v: Any) -> str:
    return "-" if v is None else f"{100 * v:.1f} %"


def _summary(scores: dict[str, Quality]) -> str:
    fid = {k: q.fid for k, q in scores.items()}
    parts = [f"{k}: {v:.3g}" for k, v in fid.items()]
    text = f"{NAME}, lower is more data-like: " + "; ".join(parts) + "."
    ae, gmm, kl5 = fid.get("AE + N(0, I)"), fid.get("AE + GMM on z"), fid.get("VAE kl 5 + N(0, I)")
    if ae is not None and kl5 is not None:
        text += f" The kl-5 VAE's prior samples score {ae / max(kl5, 1e-12):.1f}x better than the AE's"
        text += f"; a GMM fitted on the AE's z brings it to {gmm:.3g}." if gmm is not None else "."
    return text


def quality_checks(section: Section) -> list[list[Any]]:
    """Acceptance rows: the measure separates what the eye sees."""
    fid = {k: v["fid"] for k, v in section.metrics.get("scores", {}).items()}
    rows = []
    if {"AE + N(0, I)", "VAE kl 5 + N(0, I)"} <= set(fid):
        ae, kl5 = fid["AE + N(0, I)"], fid["VAE kl 5 + N(0, I)"]
        rows.append([f"{NAME}: kl-5 VAE + N(0, I) below AE + N(0, I)", f"{kl5:.3g} vs {ae:.3g}", bool(kl5 < ae)])
    if {"AE + N(0, I)", "AE + GMM on z"} <= set(fid):
        ae, gmm = fid["AE + N(0, I)"], fid["AE + GMM on z"]
        rows.append([f"{NAME}: AE + GMM on z below AE + N(0, I)", f"{gmm:.3g} vs {ae:.3g}", bool(gmm < ae)])
    return rows


__all__ = ["PAIRS", "quality_checks", "quality_section"]
