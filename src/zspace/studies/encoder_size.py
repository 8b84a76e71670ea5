"""``zspace study encoder-size``: post XII's parameter table, peak training memory, and decoded grids.

The two Dense heads of the VAE hold most of the encoder's parameters (Flatten = 9,216 for 96x96 input); an extra
Dense layer of 256 or 384 between Flatten and the heads cuts them. The study lists the counts (with the
published figures), measures peak training memory per configuration, and trains a kl_weight-5 VAE with and
without the extra layer to show what each decodes from z ~ N(0, I).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Annotated

from zspace.config import Len, ModelConfig, Range
from zspace.errors import ConfigError
from zspace.models import build_model
from zspace.runs.folder import load_run
from zspace.sections.base import FigureItem, Section, Table
from zspace.studies.base import StudyContext, StudyResult
from zspace.studies.celeba_common import celeba_config, decode_gaussian_grid
from zspace.studies.memory import peak_training_memory, training_speed
from zspace.train.run import train_run

log = logging.getLogger(__name__)

# post XII, for 96x96x3 input: (z_dim, extra_dense) -> (encoder, decoder) in millions
PUBLISHED = {(512, 0): (9.83, 5.1), (256, 0): (5.11, 2.76), (256, 256): (2.88, 2.76), (256, 384): (4.13, 2.76)}
CONFIGS = [(256, 0), (256, 256), (256, 384), (512, 0), (512, 256), (512, 384)]
PUBLISHED_EPOCH_S = 120  # post XII: one epoch of 170,000 images on a GTX 960; batch 256 was no faster
TITLE = "zspace study: encoder size"
USES_DEVICE = True  # trains and encodes models: --device applies
DATA = "celeba"


@dataclass
class Config:
    # training epochs of each kl_weight-5 VAE whose decoded grids are shown
    epochs: Annotated[int, Range(1, 100000)] = 6
    limit: Annotated[int, Range(0, 2**31 - 1)] = 0  # CelebA images used for those trainings; 0 = the whole folder
    memory: bool = True  # peak training memory of every configuration, each in a fresh process
    memory_batch: Annotated[int, Range(1, 2**20)] = 128  # images per step while measuring memory
    # extra Dense sizes timed (z_dim 256); () = no timing
    speed_extra: Annotated[tuple[Annotated[int, Range(0, 2**20)], ...], Len(0, 64)] = (0, 256)
    # batch sizes timed (the series: 256 was no faster than 128)
    speed_batches: Annotated[tuple[Annotated[int, Range(1, 2**20)], ...], Len(1, 64)] = (128, 256)
    speed_steps: Annotated[int, Range(1, 100000)] = 8  # timed Adam steps per setting, after 2 untimed ones


QUICK = {"epochs": 1, "limit": 128, "memory": False, "memory_batch": 32, "speed_batches": (16, 32), "speed_steps": 2}


def validate(cfg: Config) -> None:
    if cfg.epochs < 1 or cfg.limit < 0 or cfg.memory_batch < 1 or cfg.speed_steps < 1:
        raise ConfigError(
            f"epochs, memory_batch and speed_steps must be >= 1 and limit >= 0; got {cfg.epochs}, "
            f"{cfg.memory_batch}, {cfg.speed_steps}, {cfg.limit}"
        )
    if any(b < 1 for b in cfg.speed_batches) or any(e < 0 for e in cfg.speed_extra):
        raise ConfigError(
            f"speed_batches must be >= 1 and speed_extra >= 0, got {cfg.speed_batches}, {cfg.speed_extra}"
        )


def parameter_section(*, batch_size: int, measure_memory: bool, device: str) -> Section:
    """Counts (and peak training memory) of every (z_dim, extra_dense) configuration at 96x96x3."""
    rows, metrics = [], {}
    for z_dim, extra in CONFIGS:
        cfg = ModelConfig(kind="vae", z_dim=z_dim, extra_dense=extra, image_size=96, channels=3)
        counts = build_model(cfg).param_counts()
        mem = peak_training_memory(cfg, batch_size=batch_size, device=device) if measure_memory else {}
        pub = PUBLISHED.get((z_dim, extra), (None, None))
        peak = mem.get("cuda_peak_mib", mem.get("cpu_peak_growth_mib"))
        rows.append([z_dim, extra or "none", counts["encoder_params"], pub[0], counts["decoder_params"], pub[1], peak])
        metrics[f"z{z_dim}_dense{extra}"] = {**counts, **mem}
    what = "GPU peak allocated" if device.startswith("cuda") else "growth of the process's peak RSS"
    table = Table(
        "Parameters and peak training memory (96x96x3, filters 32-256)",
        ["z_dim", "extra Dense", "encoder", "published (M)", "decoder", "published (M)", f"memory MiB ({what})"],
        rows,
        f"Memory: {batch_size} images per Adam step, 2 steps, each configuration in a fresh process on {device}.",
    )
    summary = (
        "The Dense heads dominate the encoder; an extra Dense layer between Flatten and the heads shrinks it "
        "from 5.1 M to 2.9 M parameters (z_dim 256) at no cost to the decoder."
    )
    return Section("parameters", "Encoder size (post XII)", summary=summary, tables=[table], metrics=metrics)


def speed_section(cfg: Config, device: str) -> Section:
    """Training speed with and without the extra Dense layer, at each batch size (random 96x96 images)."""
    rows, metrics = [], {}
    for extra in cfg.speed_extra:
        model = ModelConfig(kind="vae", z_dim=256, extra_dense=extra, image_size=96, channels=3, kl_weight=5.0)
        for batch in cfg.speed_batches:
            m = training_speed(model, batch_size=batch, steps=cfg.speed_steps, device=device)
            metrics[f"dense{extra}_batch{batch}"] = m
            rows.append([extra or "none", batch, m["images_per_s"], m["epoch_s_170k"]])
    base = metrics.get(f"dense0_batch{cfg.speed_batches[0]}") if cfg.speed_batches else None
    for row in rows:
        row.append(row[2] / base["images_per_s"] if base else None)
    table = Table(
        "Training speed (VAE, z_dim 256, 96x96x3)",
        ["extra Dense", "batch", "images/s", "s per epoch of 170,000", "speed vs no extra layer, first batch"],
        rows,
        f"{cfg.speed_steps} timed Adam steps per row on random images, on {device}, after 2 untimed ones. The "
        f"series: {PUBLISHED_EPOCH_S} s per epoch on a GTX 960 (about 1,400 images/s); batch 256 was no faster.",
    )
    section = Section("speed", "Time per epoch: the extra Dense layer and the batch size", tables=[table])
    section.metrics = metrics
    if base and len(rows) > 1:
        fastest = max(rows, key=lambda r: r[2])
        section.summary = (
            f"Fastest: extra Dense {fastest[0]}, batch {fastest[1]}, {fastest[2]:,.0f} images/s "
            f"({fastest[3]:,.0f} s per 170,000-image epoch on {device})."
        )
    return section


def run(cfg: Config, ctx: StudyContext) -> StudyResult:
    """The parameter table, peak memory and speed, then a kl_weight-5 VAE with and without the extra layer."""
    path = ctx.data_path(DATA)
    ctx.begin(4)
    params = parameter_section(batch_size=cfg.memory_batch, measure_memory=cfg.memory, device="cpu")
    ctx.step("parameters and memory")
    speed = speed_section(cfg, ctx.torch_device())
    ctx.step("speed")
    grids = Section("grids", "Decoded from z ~ N(0, I): kl_weight 5, with and without the extra Dense layer")
    for extra in (0, 256):
        name = f"vae5-dense{extra}"
        run_cfg = celeba_config(
            "celeba-vae", path, name=name, out_dir=ctx.runs, epochs=cfg.epochs, limit=cfg.limit, seed=ctx.seed,
            device=ctx.device,
        )  # fmt: skip
        run_cfg = dataclasses.replace(run_cfg, model=dataclasses.replace(run_cfg.model, extra_dense=extra))
        trained = load_run(train_run(run_cfg, overwrite=True))
        grids.figures.append(
            FigureItem(
                name,
                decode_gaussian_grid(trained.model, seed=ctx.seed),
                f"{'no extra layer' if not extra else f'extra Dense {extra}'}: 32 images "
                f"decoded from z ~ N(0, I) after {cfg.epochs} epochs.",
            )
        )
        grids.metrics[name] = {"total": trained.history[-1]["total"], "epochs": cfg.epochs}
        ctx.step(f"trained {name}")
    metrics = {"parameters": params.metrics, "speed": speed.metrics, "grids": grids.metrics}
    return StudyResult([params, speed, grids], metrics)
