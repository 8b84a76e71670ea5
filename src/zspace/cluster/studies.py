"""The cluster studies by name: ``zspace study mnist-kmeans | mnist-latent | wifi --data DIR --out DIR``.

Every study function has the signature ``run_<name>(*, data, out, quick=False, seed=0, progress=None) -> dict``:
it writes ``report.html``, the figures (PNG) and ``metrics.json`` into ``out`` and returns the metrics.
``data`` is the folder of MNIST idx files or the WIFI file (None: ../shared/data); ``quick`` runs a reduced version.
"""

from __future__ import annotations

from collections.abc import Callable

from zspace.cluster.mnist_latent import run_mnist_latent
from zspace.cluster.mnist_pixels import run_mnist_kmeans
from zspace.cluster.wifi import run_wifi

STUDIES: dict[str, Callable[..., dict]] = {
    "mnist-kmeans": run_mnist_kmeans,
    "mnist-latent": run_mnist_latent,
    "wifi": run_wifi,
}

__all__ = ["STUDIES", "run_mnist_kmeans", "run_mnist_latent", "run_wifi"]
