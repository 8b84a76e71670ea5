"""Registry of studies: ``zspace study NAME`` -> ``"module:function"``.

A study function has the signature ``run(*, data, out, quick=False, seed=0, progress=None) -> dict`` (its
metrics); it trains, embeds and analyses what it needs and writes its report into ``out``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from zspace.errors import ConfigError

STUDIES: dict[str, str] = {
    "mnist-kmeans": "zspace.cluster.studies:run_mnist_kmeans",
    "mnist-latent": "zspace.cluster.studies:run_mnist_latent",
    "wifi": "zspace.cluster.studies:run_wifi",
    "celeba-ae-vs-vae": "zspace.celeba:run_ae_vs_vae",
    "encoder-size": "zspace.celeba:run_encoder_size",
}


def study_function(name: str) -> Callable[..., dict]:
    """The function of study ``name``."""
    if name not in STUDIES:
        raise ConfigError(f"unknown study {name!r} (known: {', '.join(STUDIES)})")
    module, _, func = STUDIES[name].partition(":")
    return getattr(importlib.import_module(module), func)
