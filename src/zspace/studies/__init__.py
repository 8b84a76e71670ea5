"""The series' studies, one command each: ``zspace study NAME [--quick] [--set KEY=VALUE] [--config FILE]``.

Every study follows the contract of :mod:`zspace.studies.base` (a typed ``Config``, ``QUICK`` overrides and
``run(cfg, ctx) -> StudyResult``); :func:`run_study` resolves its options, runs it and writes its report.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from zspace.errors import ConfigError

log = logging.getLogger(__name__)

# Registry: study name -> module under zspace.studies (in the order of the series' posts).
STUDIES: dict[str, str] = {
    "mnist-kmeans": "mnist_kmeans",
    "wifi": "wifi",
    "mnist-latent": "mnist_latent",
    "encoder-size": "encoder_size",
    "celeba-ae-vs-vae": "celeba_ae_vs_vae",
    "kl-sweep": "kl_sweep",
}

# One line each for ``zspace study --help`` (the modules load only when a study runs or shows its keys).
ABOUT: dict[str, str] = {
    "mnist-kmeans": "KMeans as a classifier on raw MNIST pixels (post V): scalers, elbow, distances as features",
    "wifi": "KMeans as a classifier on the UCI WIFI signals (posts I - IV): 7-D, 2 and 3 PCA components",
    "mnist-latent": "KMeans as a classifier on the latents of a 25-d CNN AE and VAE (post V)",
    "encoder-size": "the encoder's parameters, memory and speed with an extra Dense layer (post XII)",
    "celeba-ae-vs-vae": "AE vs tiny-KL VAE vs generative VAE on CelebA, in numbers (posts XIII, XIV)",
    "kl-sweep": "the KL weight from the AE to a strong VAE: rate, units, shells, samples (post XIII's plan)",
}

__all__ = [
    "ABOUT",
    "STUDIES",
    "StudyContext",
    "StudyResult",
    "options_help",
    "run_study",
    "study_config",
    "study_module",
]


def __getattr__(name: str) -> Any:
    """The contract's names, loaded on first use: building the command line must not pay for matplotlib."""
    if name in ("StudyContext", "StudyResult", "options_help", "study_config"):
        from zspace.studies import base

        return getattr(base, name)
    raise AttributeError(f"module 'zspace.studies' has no attribute {name!r}")


def study_module(name: str) -> ModuleType:
    """The module of study ``name``; an unknown name is a one-line :class:`ConfigError` listing the known ones."""
    if name not in STUDIES:
        raise ConfigError(f"unknown study {name!r} (known: {', '.join(STUDIES)})")
    return importlib.import_module(f"zspace.studies.{STUDIES[name]}")


def run_study(
    name: str,
    *,
    out: str | Path | None = None,
    data: str | Path | None = None,
    quick: bool = False,
    seed: int = 0,
    device: str | None = None,
    sets: Sequence[str] = (),
    config_path: str | Path | None = None,
    values: Mapping[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Run study ``name`` and write its report into ``out`` (default studies/NAME); returns its metrics.

    Every option is checked before anything runs or is written.
    """
    from zspace.report.page import write_report
    from zspace.studies.base import StudyContext, StudyResult, study_config

    module = study_module(name)
    if device not in (None, "auto") and not getattr(module, "USES_DEVICE", False):
        raise ConfigError(f"study {name!r} has no option --device: it trains and encodes no model")
    cfg = study_config(module, quick=quick, config_path=config_path, sets=sets, values=values)
    out = Path(out) if out else Path("studies") / name
    ctx = StudyContext(
        name=name,
        out=out,
        data=Path(data) if data else None,
        seed=seed,
        quick=quick,
        device=device or "auto",
        command=command or _command(name, out, data, quick, seed, sets),
        progress=progress,
    )
    t0 = time.perf_counter()
    result: StudyResult = module.run(cfg, ctx)
    metrics = {
        "study": name,
        "config": dataclasses.asdict(cfg),
        "seed": seed,
        "quick": quick,
        **result.metrics,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    write_report(result.sections, out, title=result.title or module.TITLE, command=ctx.command, extra_metrics=metrics)
    log.info("study %s: report in %s", name, out)
    return metrics


def _command(name: str, out: Path, data: Any, quick: bool, seed: int, sets: Sequence[str]) -> str:
    parts = ["zspace study", name, f"--data {data}" if data else "", f"--out {out}", "--quick" if quick else ""]
    parts += [f"--seed {seed}" if seed else "", *(f"--set {s}" for s in sets)]
    return " ".join(p for p in parts if p)
