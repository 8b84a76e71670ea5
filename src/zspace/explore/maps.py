"""The explorer's t-SNE map: computed once, in a background thread, and cached beside the latents it maps.

A map of 100,000 points takes minutes, so the page asks for it, is told "computing", and asks again. The cache
(``explore-tsne.npy`` + ``explore-tsne.json``) lives in the latents folder: re-encoding a run replaces that folder
whole, and with it the stale map. The JSON records what the map was made from (number of points, a checksum of
a sample of them, the t-SNE settings); a cache that does not match is recomputed.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from zspace.analyses.tsne import PRESETS, embed_tsne
from zspace.errors import ConfigError
from zspace.io.atomic import atomic_write_bytes, atomic_write_text

log = logging.getLogger(__name__)

MAP_FILE, PARAMS_FILE = "explore-tsne.npy", "explore-tsne.json"


def checksum(points: np.ndarray) -> int:
    """CRC32 of about 4,096 evenly spaced rows: cheap, and changes when the points do."""
    step = max(1, len(points) // 4096)
    return zlib.crc32(np.ascontiguousarray(points[::step], dtype=np.float32).tobytes())


class TsneJob:
    """The t-SNE map (N, 2) of ``points`` (N, z_dim): read from ``cache_dir`` or computed on request.

    ``status`` is ``"ready"``, ``"computing"``, ``"absent"`` (not asked for yet) or ``"failed"``.
    """

    def __init__(
        self,
        points: np.ndarray,
        cache_dir: Path | None,
        *,
        preset: str = "default",
        pca_components: int | None = None,
        seed: int = 0,
    ):
        if preset not in PRESETS:
            raise ConfigError(f"unknown t-SNE preset {preset!r} (known: {', '.join(PRESETS)})")
        self._points = points
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.params: dict[str, Any] = {
            "n": len(points),
            "checksum": checksum(points),
            "preset": preset,
            "pca_components": pca_components,
            "seed": seed,
        }
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.error: str | None = None
        self.map: np.ndarray | None = self._read()

    @property
    def status(self) -> str:
        if self.map is not None:
            return "ready"
        if self.error is not None:
            return "failed"
        return "computing" if self._thread is not None else "absent"

    def start(self) -> str:
        """Start computing the map in a background thread unless it is there or under way; the new status."""
        with self._lock:
            if self.map is None and self._thread is None and self.error is None:
                self._thread = threading.Thread(target=self._run, name="zspace-explore-tsne", daemon=True)
                self._thread.start()
        return self.status

    def wait(self, timeout: float | None = None) -> str:
        """Block until a started computation ends (or ``timeout`` seconds pass); the status."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self.status

    def _run(self) -> None:
        try:
            self.compute()
        except Exception as e:  # a failed map must not take the server down; the page shows the reason
            log.warning("the t-SNE map failed: %s", e)
            self.error = f"{type(e).__name__}: {e}"

    def compute(self) -> np.ndarray:
        """Compute the map now (in the calling thread), cache it and return it, (N, 2) float32."""
        perplexity, exaggeration = PRESETS[self.params["preset"]]
        log.info("computing the t-SNE map of %d points (cached in %s)", len(self._points), self.cache_dir)
        t0 = time.perf_counter()
        Y = embed_tsne(
            self._points,
            perplexity=perplexity,
            early_exaggeration=exaggeration,
            pca_components=self.params["pca_components"],
            random_state=self.params["seed"],
        ).astype(np.float32)
        log.info("t-SNE map done in %.1f s", time.perf_counter() - t0)
        self._write(Y)
        self.map = Y
        return Y

    def _read(self) -> np.ndarray | None:
        if self.cache_dir is None or not (self.cache_dir / MAP_FILE).is_file():
            return None
        try:
            params = json.loads((self.cache_dir / PARAMS_FILE).read_text())
            Y = np.load(self.cache_dir / MAP_FILE, allow_pickle=False)
        except (OSError, ValueError) as e:
            log.warning("ignoring the cached t-SNE map in %s: %s", self.cache_dir, e)
            return None
        if params != self.params or Y.shape != (len(self._points), 2) or not np.isfinite(Y).all():
            log.info("the cached t-SNE map in %s was made from other points or settings; it will be recomputed",
                     self.cache_dir)  # fmt: skip
            return None
        log.info("t-SNE map read from %s", self.cache_dir / MAP_FILE)
        return Y.astype(np.float32)

    def _write(self, Y: np.ndarray) -> None:
        if self.cache_dir is None:
            return
        buf = io.BytesIO()
        np.save(buf, Y, allow_pickle=False)
        try:
            atomic_write_bytes(self.cache_dir / MAP_FILE, buf.getvalue())
            atomic_write_text(self.cache_dir / PARAMS_FILE, json.dumps(self.params, indent=2) + "\n")
        except OSError as e:  # a read-only latents folder: the map still serves from memory
            log.warning("could not cache the t-SNE map in %s: %s", self.cache_dir, e)
