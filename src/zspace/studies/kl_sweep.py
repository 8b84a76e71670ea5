"""``zspace study kl-sweep``: what the KL weight does to the latent space, the reconstructions and the samples.

The series ends (post XIII) with its plan: from the tiny-KL VAE that behaves like an AE, "investigate the confining
and at the same time blurring impact of the KL-loss on the latent space". This study trains the series' CelebA VAE
(96x96, z_dim 256) at a ladder of KL weights, weight 0 being the AE, all on the same images with the same seed, and
measures per weight: the loss parts (the rate, KL in nats, against the distortion, the reconstruction loss), active
units (Burda et al. 2016) and the KL per dimension, the radius shells of z and mu against N(0, I_256)'s, the
logvar diagnostics, the mutual information I(x; z) (minibatch estimator), and the quality of decoded prior samples
and of samples from a GMM fitted on z (zspace-FID, precision, recall) beside the reconstructions. Its summary reads
off the measured numbers where the prior becomes usable and where the posterior starts to collapse.

Every run is an ordinary run folder under ``REPORT/runs`` (``zspace analyze``, ``explore`` and ``compare`` work
on each). ``--quick`` runs the same sweep on scikit-learn's bundled 8x8 digits in a few minutes.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np

from zspace.analyses.mutual_info import mutual_information
from zspace.analyses.radius import Histogram, chi_mode, radii, radius_stats
from zspace.analyses.vae import mu_variance, vae_diagnostics
from zspace.config import Len, OneOf, Range, RunConfig, load_config, packaged_config
from zspace.data import Dataset, load_dataset
from zspace.errors import ConfigError
from zspace.figures.sweep import against_weight, radius_overlay, rate_distortion, rows_of_images, weight_label
from zspace.latents.embedding import embed
from zspace.latents.feature_net import FeatureConfig, data_features, extract, feature_network, generated_features
from zspace.latents.freshness import provenance
from zspace.latents.generate import reconstruct, to_numpy_images
from zspace.latents.quality import NAME, score
from zspace.latents.samplers import fit_sampler
from zspace.runs.folder import load_run, read_history
from zspace.sections.base import FigureItem, Section, Table
from zspace.studies.base import StudyContext, StudyResult
from zspace.train.run import train_run

log = logging.getLogger(__name__)

TITLE = "zspace study: the KL weight, from the AE to a strongly regularised VAE"
USES_DEVICE = True  # trains and encodes models: --device applies
DATA = "celeba"
ACTIVE_THRESHOLD = 0.01  # Burda et al. 2016: a unit is active when Cov_x(E_q[z_u | x]) > 0.01
USABLE_WITHIN = 0.10  # the prior is "usable" when its samples' FID is within 10 % of the GMM's
DROP = 0.90  # active units "start to drop" below 90 % of the most seen at any smaller weight


@dataclass
class Config:
    # KL weights trained (the series' "fact"); 0 is the AE (no noise, no KL term)
    weights: Annotated[tuple[Annotated[float, Range(0, 1e4)], ...], Len(1, 64)] = (
        0.0, 1e-5, 1e-3, 1e-2, 0.1, 1.0, 5.0, 20.0,
    )  # fmt: skip
    # epochs per weight (the series: 24 on 170,000 images; 6 on 10,000 keep CPU time < 90 min)
    epochs: Annotated[int, Range(1, 100000)] = 6
    limit: Annotated[int, Range(0, 2**31 - 1)] = 0  # CelebA images used; 0 = the whole folder
    # linear KL warm-up from 0 over these epochs (train.kl_warmup_epochs of every run)
    warmup_epochs: Annotated[float, Range(0, 100000)] = 0.0
    # "constant" or "cyclical" (Fu et al. 2019; train.kl_schedule of every run)
    schedule: Annotated[str, OneOf("constant", "cyclical")] = "constant"
    # decoded samples (and test images) per sampler for zspace-FID, precision and recall
    samples: Annotated[int, Range(2, 1_000_000)] = 1000
    # points per batch of the mutual-information estimate (its ceiling is log(mi_batch))
    mi_batch: Annotated[int, Range(2, 2**20)] = 512


QUICK = {"epochs": 30, "samples": 300, "mi_batch": 256}


def validate(cfg: Config) -> None:
    if not cfg.weights or any(w < 0 for w in cfg.weights) or len(set(cfg.weights)) != len(cfg.weights):
        raise ConfigError(f"weights must be distinct numbers >= 0, at least one; got {list(cfg.weights)}")
    if cfg.epochs < 1 or cfg.limit < 0 or cfg.samples < 10 or cfg.mi_batch < 2 or cfg.warmup_epochs < 0:
        raise ConfigError(
            f"epochs >= 1, limit >= 0, samples >= 10, mi_batch >= 2 and warmup_epochs >= 0 needed; got {cfg.epochs}, "
            f"{cfg.limit}, {cfg.samples}, {cfg.mi_batch}, {cfg.warmup_epochs}"
        )
    if cfg.schedule not in ("constant", "cyclical"):
        raise ConfigError(f"schedule must be 'constant' or 'cyclical', got {cfg.schedule!r}")


def run_config(cfg: Config, weight: float, *, quick: bool, path: Path | None, out_dir: Path, seed: int,
               device: str) -> RunConfig:  # fmt: skip
    """The run of one weight: the shipped CelebA AE/VAE (or digits) config with the study's size and schedule."""
    if quick:
        base, model = "digits-demo", [("model.kind", "ae" if weight == 0 else "vae")]
        data = []
    else:
        base, model = ("celeba-ae" if weight == 0 else "celeba-vae"), []
        data = [("data.path", str(path)), ("data.limit", cfg.limit)]
    changes = [
        ("name", run_name(weight)),
        ("out_dir", str(out_dir)),
        *data,
        *model,
        ("train.epochs", cfg.epochs),
        ("train.seed", seed),
        ("train.device", device),
        ("train.kl_warmup_epochs", cfg.warmup_epochs),
        ("train.kl_schedule", cfg.schedule),
    ]
    run = load_config(packaged_config(base), changes)
    if weight > 0:
        run = dataclasses.replace(run, model=dataclasses.replace(run.model, kl_weight=float(weight)))
    return run


def run_name(weight: float) -> str:
    return "ae" if weight == 0 else f"kl-{weight:g}"


def latent_metrics(z: np.ndarray, mu: np.ndarray | None, logvar: np.ndarray | None, *, mi_batch: int,
                   seed: int) -> dict[str, Any]:  # fmt: skip
    """Everything the sweep measures on one run's encoder outputs (n, z_dim); an AE has no mu or logvar."""
    d = z.shape[1]
    center = mu if mu is not None else z  # E_q[z | x]: an AE's z
    activity = mu_variance(center)
    r_z = radius_stats(radii(z), z_dim=d)
    r_mu = radius_stats(radii(center), z_dim=d)
    out: dict[str, Any] = {
        "active_units": int((activity > ACTIVE_THRESHOLD).sum()),
        "z": {"peak": r_z.peak, "mean": r_z.mean, "shell50": list(r_z.shell50), "shell95": list(r_z.shell95)},
        "mu": {"peak": r_mu.peak, "mean": r_mu.mean, "shell50": list(r_mu.shell50), "shell95": list(r_mu.shell95)},
        "chi_mode": chi_mode(d),
        "radius_counts": r_z.hist.counts.tolist(),
        "radius_edges": r_z.hist.edges.tolist(),
    }
    if mu is None:
        out.update(logvar_mean=None, kl_per_dim=None, rate=None, mi=None, mi_ceiling=None, z_mu_rel_diff=0.0)
        return out
    diag = vae_diagnostics(z, mu, logvar, active_threshold=ACTIVE_THRESHOLD)
    mi = mutual_information(mu, logvar, batch=mi_batch, seed=seed)
    kl_sorted = np.sort(diag.kl_per_dim)[::-1]
    out.update(
        logvar_mean=diag.logvar_mean,
        kl_per_dim=np.round(kl_sorted, 6).tolist(),
        rate=float(diag.kl_per_dim.sum()),
        mi=mi.estimate,
        mi_ceiling=mi.ceiling,
        mi_at_ceiling=mi.at_ceiling,
        z_mu_rel_diff=diag.radius.rel_mean,
    )
    return out


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Where the prior becomes usable and where the posterior starts to collapse, read from the measured rows.

    ``rows``: one dict per weight with ``weight``, ``active_units``, ``prior_fid`` and ``gmm_fid`` (None where
    not measured). The prior is usable from the smallest VAE weight whose prior-sample FID is within 10 % of its GMM
    samples' FID; the posterior starts to collapse at the smallest VAE weight whose active units fall below 90 % of
    the most any smaller weight had. Either is None when no weight qualifies.
    """
    ordered = sorted(rows, key=lambda r: r["weight"])
    usable = next(
        (r["weight"] for r in ordered
         if r["weight"] > 0 and r.get("prior_fid") is not None and r.get("gmm_fid") is not None
         and r["prior_fid"] <= (1 + USABLE_WITHIN) * r["gmm_fid"]),
        None,
    )  # fmt: skip
    collapse, best = None, None
    for r in ordered:
        au = r.get("active_units")
        if au is None:
            continue
        if best is not None and r["weight"] > 0 and au < DROP * best:
            collapse = r["weight"]
            break
        best = au if best is None else max(best, au)
    return {"prior_usable_from": usable, "collapse_from": collapse}


def summary_text(s: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    by_w = {r["weight"]: r for r in rows}
    parts = []
    u = s["prior_usable_from"]
    if u is None:
        parts.append(f"At no weight do the prior's samples score within {USABLE_WITHIN:.0%} of a GMM fitted on z.")
    else:
        r = by_w[u]
        parts.append(
            f"The prior becomes usable at KL weight {weight_label(u)}: decoded N(0, I) samples score {NAME} "
            f"{r['prior_fid']:.3g} against {r['gmm_fid']:.3g} for a GMM fitted on z (within {USABLE_WITHIN:.0%})."
        )
    c = s["collapse_from"]
    if c is None:
        parts.append("Active units do not drop across the ladder.")
    else:
        parts.append(
            f"The posterior starts to collapse at KL weight {weight_label(c)}: {by_w[c]['active_units']} active "
            f"units, below {DROP:.0%} of the most at any smaller weight."
        )
    return " ".join(parts)


def _quality(net, data: Dataset, run, cfg: Config, real: np.ndarray, seed: int) -> dict[str, Any]:
    """zspace-FID, precision and recall of prior samples, GMM samples and reconstructions of test images."""
    out: dict[str, Any] = {}
    for kind in ("normal", "gmm"):
        sampler = fit_sampler(run, kind)
        q = score(real, generated_features(net, run.model, sampler, cfg.samples, seed=seed))
        out[kind] = {"fid": q.fid, "precision": q.precision, "recall": q.recall}
        if kind == "gmm":
            out[kind]["components"] = int(sampler.n_components_)
    rows = data.indices("test")[: cfg.samples]
    recon = np.concatenate([to_numpy_images(reconstruct(run.model, np.asarray(data.x[rows[s : s + 256]])))
                            for s in range(0, len(rows), 256)])  # fmt: skip
    q = score(real, extract(net, recon))
    out["reconstruction"] = {"fid": q.fid, "precision": q.precision, "recall": q.recall}
    return out


def _images(run, data: Dataset, seed: int, n: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(originals, reconstructions, prior samples), each (n, H, W, C) in [0, 1]."""
    rows = data.indices("test")[:n]
    x = np.asarray(data.x[rows])
    recon = to_numpy_images(reconstruct(run.model, x))
    z = np.random.default_rng(seed).standard_normal((n, run.config.model.z_dim)).astype(np.float32)
    return x.astype(np.float32) / 255.0, recon, run.model.decode_images(z)


def run(cfg: Config, ctx: StudyContext) -> StudyResult:
    """Train every weight, measure its latent space and samples, and lay the ladder out side by side."""
    t0 = time.perf_counter()
    weights = sorted(cfg.weights)
    path = None if ctx.quick else ctx.data_path(DATA)
    ctx.begin(2 * len(weights) + 2)
    configs = {w: run_config(cfg, w, quick=ctx.quick, path=path, out_dir=ctx.runs, seed=ctx.seed,
                             device=ctx.device) for w in weights}  # fmt: skip
    data = load_dataset(configs[weights[0]].data)
    run_dirs, seconds = {}, {}
    for w in weights:
        t = time.perf_counter()
        run_dirs[w] = train_run(configs[w], overwrite=True)
        seconds[w] = time.perf_counter() - t
        ctx.step(f"trained KL weight {weight_label(w)} in {seconds[w]:.0f} s")
    feature_cfg = FeatureConfig(epochs=2, max_images=2000) if ctx.quick else FeatureConfig()
    device = ctx.torch_device()
    net = feature_network(data, cfg=feature_cfg, folder=ctx.out / "feature-net", device=device)
    real = data_features(net, data, "test", cfg.samples, seed=ctx.seed)
    ctx.step("feature network")
    rows, per_run, images = [], {}, {}
    for w in weights:
        r = load_run(run_dirs[w], device=device)
        folder = run_dirs[w] / "latents" / "all"
        lat = embed(r.model, data, folder, split="all", device=device, seed=ctx.seed, meta=provenance(r, folder))
        m = latent_metrics(np.asarray(lat.z), None if lat.mu is None else np.asarray(lat.mu),
                           None if lat.logvar is None else np.asarray(lat.logvar), mi_batch=cfg.mi_batch,
                           seed=ctx.seed)  # fmt: skip
        last = read_history(run_dirs[w])[-1]
        m["loss"] = {k: last.get(k) for k in ("total", "reconstruction", "kl", "weighted_kl", "test_total",
                                             "test_reconstruction", "test_kl")}  # fmt: skip
        m["quality"] = _quality(net, data, r, cfg, real, ctx.seed)
        m["train_seconds"] = seconds[w]
        per_run[run_name(w)] = m
        images[w] = _images(r, data, ctx.seed)
        rows.append({"weight": w, "active_units": m["active_units"], "prior_fid": m["quality"]["normal"]["fid"],
                     "gmm_fid": m["quality"]["gmm"]["fid"]})  # fmt: skip
        ctx.step(f"measured KL weight {weight_label(w)}")
    found = summarize(rows)
    n_images = len(data.indices("train"))
    minutes = (time.perf_counter() - t0) / 60
    head = Section("sweep", "The KL ladder: what each weight does")
    dataset = "scikit-learn's 8x8 digits (quick)" if ctx.quick else "CelebA at 96x96"
    head.summary = (
        f"{summary_text(found, rows)} {len(weights)} runs on {n_images:,} training images of {dataset}, "
        f"{cfg.epochs} epochs each, seed {ctx.seed}"
        + (", fewer epochs and images than the series (24 epochs on 170,000 images)" if not ctx.quick else "")
        + f"; training took {sum(seconds.values()) / 60:.1f} min, the study {minutes:.1f} min before the report."
    )
    head.tables.append(_ladder_table(weights, per_run))
    sections = [head, *_sections(weights, per_run, images, configs[weights[-1]].model.z_dim)]
    metrics = {
        "runs": per_run,
        "summary": found,
        "weights": weights,
        "epochs": cfg.epochs,
        "train_images": n_images,
        "dataset": "digits" if ctx.quick else "celeba",
        "schedule": cfg.schedule,
        "warmup_epochs": cfg.warmup_epochs,
        "measure": f"{NAME} (features: {net.describe()})",
        "minutes": minutes,
    }
    return StudyResult(sections, metrics)


def _fmt_shell(s: list[float] | None) -> str:
    return "-" if not s else f"[{s[0]:.2f}, {s[1]:.2f}]"


def _ladder_table(weights: list[float], per_run: dict[str, dict]) -> Table:
    rows = []
    for w in weights:
        m = per_run[run_name(w)]
        q, loss = m["quality"], m["loss"]
        rows.append([
            weight_label(w), loss["reconstruction"], m["rate"], loss["weighted_kl"], loss["total"],
            m["active_units"], m["mi"], m["z"]["peak"], m["z"]["mean"], _fmt_shell(m["z"]["shell50"]),
            _fmt_shell(m["z"]["shell95"]), m["logvar_mean"], m["z_mu_rel_diff"], q["normal"]["fid"],
            q["gmm"]["fid"], q["reconstruction"]["fid"],
        ])  # fmt: skip
    ceiling = next((m["mi_ceiling"] for m in per_run.values() if m.get("mi_ceiling")), None)
    return Table(
        "Per KL weight",
        ["KL weight", "reco / image", "KL (nats)", "weighted KL", "total", "active units", "I(x; z) (nats)",
         "radius peak", "mean radius", "50 % shell", "95 % shell", "mean logvar", "|R_z - R_mu| / R_mu",
         f"{NAME} prior", f"{NAME} GMM", f"{NAME} reconstructions"],
        rows,
        "Losses: the last epoch's training means per image (under a KL warm-up or cycles, at that epoch's "
        "weights); KL and active units from the encoder outputs of all "
        f"images (active: variance of mu over the data > {ACTIVE_THRESHOLD}); radius of z. I(x; z): minibatch "
        + (f"estimate, at most log(batch) = {ceiling:.2f} nats. " if ceiling else "estimate. ")
        + f"{NAME}: decoded samples from N(0, I) ('prior') and from a GMM fitted on z, and reconstructions of test "
        "images, against test images; lower is more data-like.",
    )  # fmt: skip


def _sections(weights: list[float], per_run: dict[str, dict], images: dict, z_dim: int) -> list[Section]:
    runs = [per_run[run_name(w)] for w in weights]
    vae = [w for w in weights if w > 0]
    rate = Section("rate", "Rate against distortion")
    if vae:
        fig = rate_distortion(
            vae,
            [per_run[run_name(w)]["rate"] for w in vae],
            [per_run[run_name(w)]["loss"]["reconstruction"] for w in vae],
        )
        caption = "KL per image (the rate) against the reconstruction loss per image, one point per VAE weight."
        rate.figures.append(FigureItem("rd", fig, caption))
    hists = {}
    for w, m in zip(weights, runs, strict=True):
        edges = np.asarray(m["radius_edges"], dtype=np.float64)
        counts = np.asarray(m["radius_counts"], dtype=np.int64)
        hists[w] = Histogram(edges=edges, counts=counts, width=float(edges[1] - edges[0]), r_max_requested=edges[-1])
    shells = Section("radius", "Radius shells per weight")
    caption = f"Share of points per radius interval of ||z|| against N(0, I_{z_dim})'s (peak {chi_mode(z_dim):.2f})."
    shells.figures.append(FigureItem("overlay", radius_overlay(hists, z_dim=z_dim), caption))
    units = Section("units", "Active units, KL per dimension and mutual information")
    fig = against_weight(weights, {"active units": [m["active_units"] for m in runs]}, ylabel="active units",
                         title="active units per weight")  # fmt: skip
    units.figures.append(FigureItem("active", fig, f"Units with Var_x(E[z_u | x]) > {ACTIVE_THRESHOLD} (Burda 2016)."))
    if vae:
        series = {"KL (rate)": [m["rate"] for m in runs], "I(x; z) estimate": [m["mi"] for m in runs]}
        fig = against_weight(weights, series, ylabel="nats per image", title="rate and information", log_y=True)
        units.figures.append(FigureItem("mi", fig, "KL per image and the estimate of I(x; z) (at most log(batch))."))
        fig = against_weight(
            list(range(1, z_dim + 1)),
            {weight_label(w): per_run[run_name(w)]["kl_per_dim"] for w in vae},
            ylabel="KL (nats)",
            title="KL per dimension, sorted",
            log_y=True,
            log_x=False,
            xlabel="dimension, largest KL first",
        )
        units.figures.append(FigureItem("kl_dims", fig, "Mean KL of each latent dimension, largest first."))
    quality = Section("quality", f"Sample quality ({NAME}) against the weight")
    kinds = (("prior N(0, I)", "normal"), ("GMM on z", "gmm"), ("reconstructions", "reconstruction"))
    series = {label: [m["quality"][key]["fid"] for m in runs] for label, key in kinds}
    fig = against_weight(weights, series, ylabel=NAME, title=f"{NAME} per weight", log_y=True)
    quality.figures.append(FigureItem("fid", fig, f"{NAME} of decoded samples and reconstructions; lower is better."))
    grids = Section("images", "Decoded prior samples and reconstructions, one row per weight")
    prior = rows_of_images({weight_label(w): images[w][2] for w in weights})
    grids.figures.append(FigureItem("prior", prior, "Decoded from z ~ N(0, I): the same 10 draws for every weight."))
    recon = rows_of_images({"test images": images[weights[0]][0], **{weight_label(w): images[w][1] for w in weights}})
    grids.figures.append(FigureItem("reconstructions", recon, "The same 10 test images reconstructed (mu for a VAE)."))
    return [rate, shells, units, quality, grids]
