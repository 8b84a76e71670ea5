"""``zspace study celeba-ae-vs-vae``: does a tiny-KL VAE behave like an AE? In numbers (posts XIII and XIV).

Trains, on the same CelebA images at 96x96 with z_dim 256 and the same convolutional layers, an AE, a VAE with
kl_weight 1e-5 (and the same without eps clipping) and a VAE with kl_weight 5; embeds and analyses all of them
with the same settings; and writes one comparison report whose first table puts the published figures beside
ours, followed by acceptance checks, the overlaid curves, t-SNE maps, decoded grids, and eps_factor at inference.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import torch

from zspace.config import Len, Range, Seed
from zspace.data.fingerprint import is_series_celeba
from zspace.errors import ConfigError
from zspace.figures.training import image_grid
from zspace.report.analyze import analysis_settings, open_source, run_sections, source_summary
from zspace.report.compare import compare_sections
from zspace.sections.base import FigureItem, Section, Table
from zspace.studies.base import StudyContext, StudyResult
from zspace.studies.celeba_common import celeba_config, decode_gaussian_grid
from zspace.studies.celeba_quality import PAIRS, quality_checks, quality_section
from zspace.studies.celeba_tables import acceptance, nested, published_table, spread_table
from zspace.train.run import train_run

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Model:
    key: str  # run name prefix
    config: str  # shipped config
    label: str
    eps_clip: bool = True  # False: the VAE without the series' eps clipping


MODELS = (
    Model("ae", "celeba-ae", "AE"),
    Model("vae-tiny-kl", "celeba-vae-tiny-kl", "VAE, kl_weight 1e-5"),
    Model("vae-kl5", "celeba-vae", "VAE, kl_weight 5"),
    Model("vae-tiny-kl-noclip", "celeba-vae-tiny-kl", "VAE, kl_weight 1e-5, no eps clipping", eps_clip=False),
)
ANALYSES = ("training", "radius", "axes", "pca", "elbow", "tsne", "vae", "decode", "manifold")


def analysis_sets(quick: bool, attribute: str, n: int) -> list[str]:
    """The study's analysis settings: the series' where affordable on a CPU, smaller in quick mode."""
    # MiniBatchKMeans with scikit-learn's former default n_init 3 (the MNIST post's 50 costs minutes per run)
    sets = [
        f"tsne.color_by={attribute!r}",
        'tsne.presets=["default"]',
        "tsne.pca_components=[]",
        "elbow.minibatch_n_init=3",
    ]
    if quick:
        sets += [
            "elbow.k_max=20",
            "elbow.minibatch_n_init=3",
            "tsne.n_iter=250",
            "manifold.max_reference=2000",
            "manifold.n_pairs=4",
        ]
    return [*sets, f"tsne.sizes=[{n}]"]


def train_all(path: Path, epochs: int, limit: int, seeds: tuple[int, ...], models, ctx: StudyContext):
    """Train every (model, seed) into ``ctx.runs``; returns run folders by display name and the training seconds."""
    runs, seconds = {}, {}
    for m in models:
        for seed in seeds:
            name = f"{m.key}-s{seed}" if len(seeds) > 1 else m.key
            cfg = celeba_config(
                m.config, path, name=name, out_dir=ctx.runs, epochs=epochs, limit=limit, seed=seed, device=ctx.device
            )
            if not m.eps_clip:
                cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, eps_clip=None))
            t0 = time.perf_counter()
            runs[name] = train_run(cfg, overwrite=True)
            seconds[name] = time.perf_counter() - t0
            ctx.step(f"trained {name} in {seconds[name]:.0f} s")
    return runs, seconds


@torch.no_grad()
def eps_factor_section(run_dir: Path, *, factors=(0.0, 1.0, 10.0, 100.0, 1000.0), n: int = 8, seed: int = 0) -> Section:
    """Post XIV: the tiny-KL VAE's encoder with eps_factor changed at inference: reconstructions per factor."""
    source = open_source(run_dir)
    model, data = source.run.model, None
    from zspace.data import load_dataset

    data = load_dataset(source.run.config.data)
    rows = data.indices("test")[:n] if len(data.indices("test")) >= n else data.indices("all")[:n]
    x = torch.from_numpy(np.asarray(data.x[rows])).permute(0, 3, 1, 2).float() / 255
    images, radii = [x.permute(0, 2, 3, 1).numpy()], {}
    for f in factors:
        model.eps_factor = f
        enc = model.encode(x, generator=torch.Generator().manual_seed(seed))
        radii[f] = float(enc.z.norm(dim=1).mean())
        images.append(model.decode_images(enc.z))
    model.eps_factor = 1.0
    fig = image_grid(
        np.concatenate(images),
        ncols=n,
        labels=[*(["original"] * n), *[f"eps x {f:g}" for f in factors for _ in range(n)]],
    )
    section = Section("eps_factor", "eps_factor at inference (post XIV): the tiny-KL VAE")
    section.summary = (
        "The tiny-KL VAE's logvar is so small that z = mu unless eps is blown up by a large eps_factor: the "
        "reconstructions stay the same at factor 1 and change only at large factors."
    )
    section.figures.append(
        FigureItem(
            "grid",
            fig,
            "Rows: originals, then reconstructions with z = mu + "
            "exp(logvar / 2) * eps * eps_factor for each factor (same eps).",
        )
    )
    section.tables.append(
        Table("Mean radius of z per eps_factor", ["eps_factor", "mean |z|"], [[f, r] for f, r in radii.items()])
    )
    section.metrics = {"mean_radius": {str(f): r for f, r in radii.items()}}
    return section


@torch.no_grad()
def face_distance(run_dir: Path, *, n: int = 64, n_reference: int = 3000, seed: int = 0) -> float:
    """Median distance of images decoded from z ~ N(0, I) to their nearest training image, over the median
    distance of a training image to its nearest other one: ~1 means data-like (faces), >> 1 means not."""
    from zspace.analyses.manifold_nn import nearest_distances
    from zspace.data import load_dataset

    source = open_source(run_dir)
    model = source.run.model
    data = load_dataset(source.run.config.data)
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(data.indices("train"), size=min(n_reference, len(data.indices("train"))), replace=False))
    reference = np.asarray(data.x[rows], dtype=np.float32).reshape(len(rows), -1) / 255
    z = torch.randn(n, model.cfg.z_dim, generator=torch.Generator().manual_seed(seed))
    decoded = model.decode_images(z).reshape(n, -1)
    probe = nearest_distances(decoded, reference)
    own = rng.choice(len(rows), size=min(256, len(rows)), replace=False)
    baseline = nearest_distances(reference[own], reference, exclude=own)
    return float(np.median(probe) / max(np.median(baseline), 1e-12))


def tsne_section(runs: dict[str, dict[str, Section]], attribute: str) -> Section:
    section = Section("tsne", f"t-SNE maps coloured by {attribute}")
    for name, secs in runs.items():
        tsne = secs.get("tsne")
        for f in (tsne.figures if tsne and not tsne.skipped else [])[:1]:
            section.figures.append(FigureItem(f"{name}-{f.name}", f.figure, f"{name}: {f.caption}"))
    return section


def manifold_section(ms: dict[str, dict]) -> Section:
    rows = []
    for name, m in ms.items():
        man = m.get("manifold", {})
        rows.append(
            [
                name,
                nested(man, "twonn", "dimension"),
                nested(man, "local", "median"),
                nested(man, "nn", "ratio"),
                nested(man, "void", "shares", "standard"),
                nested(man, "void", "shares", "gaussian_fit"),
                nested(man, "paths", "middle_over_ends"),
            ]
        )
    cols = [
        "run",
        "TwoNN dimension",
        "local MLE median",
        "NN distance ratio data / Gaussian",
        "void share, N(0, I) probes",
        "void share, Gaussian-fit probes",
        "path middle / ends",
    ]
    caption = (
        "Intrinsic dimension near 1 would mean curves (filaments), near z_dim a filled volume. An NN ratio well "
        "below 1 means the points crowd on thin structures compared with a Gaussian of the same spread. A void "
        "share near 5 % is what a Gaussian cloud gives; near 1 means random probes land in empty space. A path "
        "ratio above 1 means images decoded between two data points are farther from any training image "
        "mid-way than at the ends."
    )
    return Section("filaments", "Filaments and voids in numbers", tables=[Table("Per run", cols, rows, caption)])


PUBLISHED_AXES = (52, 130, 171, 200, 221)  # the series' off-centre, broad axes of the CelebA AE


def axes_elbow_section(ms: dict[str, dict], *, series: bool = True) -> Section:
    """The axes analysis and the Kneedle elbow of every model, in numbers; beside the series' only when
    ``series`` (the series' CelebA images)."""
    cols = ["model", "flagged axes", "flagged (ranked)", "bulk width", *(["of the series' 5"] if series else [])]
    cols += ["elbow 1", "elbow 2"]
    rows = []
    for key, run in ms.items():
        axes, curves = run.get("axes") or {}, _curves(run)
        flagged = axes.get("flagged", [])
        shared = sorted(set(flagged) & set(PUBLISHED_AXES))
        row = [key, axes.get("n_flagged"), ", ".join(map(str, flagged[:8])) + (" ..." if len(flagged) > 8 else "")]
        row += [axes.get("bulk_width"), *([", ".join(map(str, shared)) or "-"] if series else [])]
        for c in curves[:2]:
            ratio = c.get("elbow_slope_ratio")
            row.append(
                f"{c['algorithm']}: k = {c['elbow_k']}, slope ratio {'inf' if ratio is None else f'{ratio:.2f}'}"
                + (", pronounced" if c.get("elbow_pronounced") else ", not pronounced")
            )
        row += ["-"] * (len(cols) - len(row))
        rows.append(row)
    caption = (
        "Axes: an axis is flagged when its median is off the bulk's by more than one bulk width or it is wider than "
        "two bulk widths (section 'Per-axis densities'). "
        + (
            "The series' AE had about 5 such axes of 256 (52, 130, 171, 200, 221); axis numbers of another training "
            "are not expected to match, their count is. "
            if series
            else ""
        )
        + "Elbow: the Kneedle point of the inertia curve and the log-log slope ratio around it (pronounced above 3)."
        + (" The series: no clear elbow, 38 - 42 clusters plausible." if series else "")
    )
    section = Section("axes-elbow", "Per-axis densities and the elbow in numbers")
    section.tables.append(Table("Axes and elbow per model", cols, rows, caption))
    section.metrics = {
        k: {"n_flagged": (r.get("axes") or {}).get("n_flagged"), "elbow": [c["elbow_k"] for c in _curves(r)]}
        for k, r in ms.items()
    }
    return section


def _curves(run: dict) -> list[dict]:
    return [c for c in (run.get("elbow") or {}).values() if isinstance(c, dict) and "elbow_k" in c]


def attributes_section(run_dirs: dict[str, Path], cfg: Config, seed: int) -> Section:
    """KMeans with ``cfg.attribute_clusters`` clusters on each model's latents, against the 40 attributes."""
    from zspace.analyses.attributes import attribute_purity
    from zspace.analyses.kmeans import lloyd, nearest_centres

    section = Section("attributes", f"The 40 attributes against {cfg.attribute_clusters} clusters")
    nmi_rows: dict[str, dict[str, float]] = {}
    for key, run_dir in run_dirs.items():
        lat = open_source(run_dir).latents
        names = lat.meta.get("attribute_names") or []
        if lat.attributes is None or not names:
            section.notes.append(f"{key}: no attributes with the latents")
            continue
        Z = np.asarray(lat.mu if lat.mu is not None else lat.z, dtype=np.float32)
        k = min(cfg.attribute_clusters, len(Z) - 1)
        centres, _, _ = lloyd(Z, k, seed=seed, max_iter=100, tol=1e-4)
        labels, _ = nearest_centres(Z, centres)
        purity = attribute_purity(labels, lat.attributes, names)
        section.metrics[key] = purity.to_metrics()
        nmi_rows[key] = purity.nmi
        rows = [[c.cluster, c.size, c.attribute, c.share, c.base] for c in purity.clusters[:10]]
        section.tables.append(
            Table(
                f"{key}: the clusters purest in one attribute",
                ["cluster", "images", "attribute", "share in cluster", "share in all"],
                rows,
                f"KMeans (Lloyd, k = {k}) on the {'mu' if lat.mu is not None else 'z'} of {len(Z):,} images; per "
                "cluster the attribute value whose share departs most from its share in all images.",
            )
        )
    if nmi_rows:
        first = next(iter(nmi_rows.values()))
        top = sorted(first, key=lambda a: -first[a])[:12]
        section.tables.insert(
            0,
            Table(
                "Attributes the clusters capture best (normalised mutual information)",
                ["attribute", *nmi_rows],
                [[a, *[nmi_rows[k][a] for k in nmi_rows]] for a in top],
                "NMI between an attribute and the cluster labels: 0 = the clusters say nothing about it, 1 = they "
                f"decide it. Ranked by the {next(iter(nmi_rows))}'s value.",
            ),
        )
        best = {k: max(v, key=v.get) for k, v in nmi_rows.items()}
        section.summary = (
            "Best captured attribute: "
            + "; ".join(f"{k} {a} (NMI {nmi_rows[k][a]:.3f})" for k, a in best.items())
            + "."
        )
    return section


@dataclass
class Config:
    # training epochs per model (the series: 24 on 170,000; 6 on 10,000 images: ~3 min on 2 cores)
    epochs: Annotated[int, Range(1, 100000)] = 6
    limit: Annotated[int, Range(0, 2**31 - 1)] = 0  # CelebA images used; 0 = the whole folder
    # training seeds, several runs per model (a run-to-run table); [] = --seed alone
    seeds: Annotated[tuple[Seed, ...], Len(0, 64)] = ()
    attribute: Annotated[str, Len(1, 200)] = "Smiling"  # the attribute colouring the t-SNE maps
    clip_off: bool = True  # also the tiny-KL VAE without eps clipping (the series' jump of the radius to ~66)
    # KMeans k for attributes against clusters (the series: 38 - 42 plausible); 0 = skip
    attribute_clusters: Annotated[int, Range(0, 100000)] = 40
    # eps_factor at inference (post XIV)
    eps_factors: Annotated[tuple[Annotated[float, Range(0, 1e6)], ...], Len(1, 64)] = (0.0, 1.0, 10.0, 100.0, 1000.0)


QUICK = {"epochs": 1, "limit": 200, "attribute_clusters": 8}
TITLE = "zspace study: AE vs tiny-KL VAE vs generative VAE on CelebA"
USES_DEVICE = True  # trains and encodes models: --device applies
DATA = "celeba"


#: the 40 binary attributes of CelebA's list_attr_celeba.txt (Liu et al. 2015), in the file's order
_ATTRIBUTE_HEADER = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair Blond_Hair "
    "Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup High_Cheekbones "
    "Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose Receding_Hairline "
    "Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick "
    "Wearing_Necklace Wearing_Necktie Young"
)
CELEBA_ATTRIBUTES = tuple(_ATTRIBUTE_HEADER.split())


def _check_attribute(name: str) -> None:
    """An unknown attribute coloured the t-SNE maps by nothing: refuse it, naming the closest known ones."""
    if name in CELEBA_ATTRIBUTES:
        return
    import difflib

    close = difflib.get_close_matches(name, CELEBA_ATTRIBUTES, n=3, cutoff=0.4) or ["Smiling", "Male", "Young"]
    raise ConfigError(f"'attribute': unknown CelebA attribute {name!r}; known (40 in all): {', '.join(close)}, ...")


def validate(cfg: Config) -> None:
    _check_attribute(cfg.attribute)
    if cfg.epochs < 1 or cfg.limit < 0 or cfg.attribute_clusters < 0:
        raise ConfigError(
            f"epochs must be >= 1, limit and attribute_clusters >= 0; got {cfg.epochs}, {cfg.limit}, "
            f"{cfg.attribute_clusters}"
        )
    if len(set(cfg.seeds)) != len(cfg.seeds):
        raise ConfigError(f"seeds must differ from each other, got {list(cfg.seeds)}")


def run(cfg: Config, ctx: StudyContext) -> StudyResult:
    """Train every model (and seed), analyse each with the same settings, and compare them."""
    t0, path, seed, quick = time.perf_counter(), ctx.data_path(DATA), ctx.seed, ctx.quick
    seeds = tuple(cfg.seeds or (seed,))
    models = MODELS if cfg.clip_off else MODELS[:3]
    ctx.begin(len(models) * len(seeds) * 2 + 4)
    run_dirs, train_seconds = train_all(path, cfg.epochs, cfg.limit, seeds, models, ctx)
    analyses = ",".join(ANALYSES)
    keys, configs, aseed = analysis_settings(None, analysis_sets(quick, cfg.attribute, 10_000), analyses)
    runs, infos = {}, {}
    for name, run_dir in run_dirs.items():
        source = open_source(run_dir)
        runs[name] = {s.key: s for s in run_sections(source, keys, configs, seed=aseed)}
        infos[name] = source_summary(source)
        ctx.step(f"{name} analysed")
    ms = {name: {k: s.metrics for k, s in secs.items() if not s.skipped} for name, secs in runs.items()}
    primary = {m.key: (f"{m.key}-s{seeds[0]}" if len(seeds) > 1 else m.key) for m in models}
    by_key = {k: ms[v] for k, v in primary.items()}
    faces = {k: face_distance(run_dirs[v], seed=seed) for k, v in primary.items() if k != "vae-tiny-kl-noclip"}
    quality = quality_section({k: run_dirs[v] for k, v in primary.items()}, folder=ctx.out / "feature-net",
                              quick=quick, seed=seed)  # fmt: skip
    ctx.step("sample quality")
    prior_fid = {k: nested(quality.metrics, "scores", label, "fid") for k, kind, label in PAIRS if kind == "normal"}
    series = is_series_celeba(path)  # the published figures stand only beside the series' CelebA images
    head = Section("published", "Published figures beside ours" if series else "Our figures")
    head.tables += [published_table(by_key, faces, prior_fid, series=series), acceptance(by_key)]
    head.tables[1].rows += quality_checks(quality)
    if len(seeds) > 1:
        head.tables.append(spread_table(ms, [m.key for m in models], seeds))
    attributes = (
        attributes_section({k: run_dirs[primary[k]] for k in ("ae", "vae-tiny-kl", "vae-kl5")}, cfg, seed)
        if cfg.attribute_clusters
        else None
    )
    ctx.step("attributes against clusters")
    minutes = (time.perf_counter() - t0) / 60
    head.summary = (
        f"{infos[primary['ae']]['n']:,} {'CelebA' if series else path.name} images at 96x96, z_dim 256, "
        f"{cfg.epochs} epochs per model "
        f"({'quick mode' if quick else 'study defaults'}), seeds {list(seeds)}; training took "
        f"{sum(train_seconds.values()) / 60:.1f} min, the study {minutes:.1f} min before the report."
    )
    sections = [
        head,
        axes_elbow_section(by_key, series=series),
        *compare_sections(runs, infos),
        tsne_section(runs, cfg.attribute),
        manifold_section(ms),
        *([attributes] if attributes else []),
        eps_factor_section(run_dirs[primary["vae-tiny-kl"]], factors=cfg.eps_factors, seed=seed),
        quality,
    ]
    grids = Section("grids_kl5", "Decoded from z ~ N(0, I) at larger scale")
    for k in ("ae", "vae-tiny-kl", "vae-kl5"):
        model = open_source(run_dirs[primary[k]]).run.model
        grids.figures.append(FigureItem(k, decode_gaussian_grid(model, seed=seed), f"{k}: 32 images from z ~ N(0, I)"))
    sections.append(grids)
    ctx.step("figures")
    metrics = {
        "runs": ms,
        "faces": faces,
        "quality": quality.metrics,
        "attributes": attributes.metrics if attributes else None,
        "train_seconds": train_seconds,
        "epochs": cfg.epochs,
        "limit": cfg.limit,
        "seeds": list(seeds),
        "minutes": minutes,
        "acceptance": head.tables[1].rows,
    }
    return StudyResult(sections, metrics)
