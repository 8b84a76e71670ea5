"""The explorer's 2-D maps (t-SNE, UMAP): each computed once, in a child process, and cached beside its latents.

A map of 100,000 points takes minutes, so the page asks for it, is told "computing", and asks again. The cache
(``explore-<method>.npy`` + ``explore-<method>.json``) lives in the latents folder: re-encoding a run replaces that
folder whole, and with it the stale maps. The JSON records what the map was made from (number of points, a
checksum of a sample of them, the method's settings); a cache that does not match is recomputed.

Why a child process: openTSNE and umap-learn run native threads. A map computed in a thread of the server's own
process was still running when Ctrl-C finalized the interpreter, and a native thread meeting a finalizing
interpreter aborts the process (SIGABRT). Here the map runs in a child Python (:func:`_child`) in its own session
(the terminal's Ctrl-C does not reach it), is sent its points on stdin and answers the map on stdout; the server
terminates it when it stops (:meth:`MapJob.close`), and it ends itself when its stdin closes (the server died).
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zspace.errors import ConfigError
from zspace.io.atomic import atomic_write_bytes, atomic_write_text

log = logging.getLogger(__name__)


def checksum(points: np.ndarray) -> int:
    """CRC32 of about 4,096 evenly spaced rows: cheap, and changes when the points do."""
    step = max(1, len(points) // 4096)
    return zlib.crc32(np.ascontiguousarray(points[::step], dtype=np.float32).tobytes())


def _tsne(points: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    from zspace.analyses.tsne import PRESETS, embed_tsne

    perplexity, exaggeration = PRESETS[params["preset"]]
    return embed_tsne(points, perplexity=perplexity, early_exaggeration=exaggeration,
                      pca_components=params["pca_components"], random_state=params["seed"])  # fmt: skip


def _umap(points: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    from zspace.analyses.umap import umap_embed

    return umap_embed(points, n_neighbors=params["n_neighbors"], min_dist=params["min_dist"],
                      random_state=params["seed"])  # fmt: skip


@dataclass(frozen=True)
class Method:
    """A 2-D map method: ``name`` (the view's and the cache's name), axis ``title``, and ``embed(points, params)``
    returning (n_samples, 2)."""

    name: str
    title: str
    embed: Callable[[np.ndarray, dict[str, Any]], np.ndarray]


METHODS = {"tsne": Method("tsne", "t-SNE", _tsne), "umap": Method("umap", "UMAP", _umap)}


def cache_files(method: str) -> tuple[str, str]:
    """The map's and its settings' file names in the cache folder."""
    return f"explore-{method}.npy", f"explore-{method}.json"


MAP_FILE, PARAMS_FILE = cache_files("tsne")
CHILD = "from zspace.explore.maps import _child; _child()"  # what the child process runs


class MapJob:
    """The ``method`` map (N, 2) of ``points`` (N, z_dim): read from ``cache_dir`` or computed on request.

    Parameters
    ----------
    points : ndarray of shape (n_samples, z_dim)
    cache_dir : folder of the cache (the latents folder), or None to keep the map in memory only.
    method : a key of :data:`METHODS`.
    params : the method's settings (JSON-able); recorded in the cache with ``n`` and ``checksum``.
    isolate : compute in a child process (the default; see the module's note). False computes in a thread of
        this process, for tests that replace the method.

    ``status`` is ``"ready"``, ``"computing"``, ``"absent"`` (not asked for yet, or stopped) or ``"failed"``.
    """

    def __init__(
        self,
        points: np.ndarray,
        cache_dir: Path | None,
        *,
        method: str = "tsne",
        params: dict[str, Any] | None = None,
        isolate: bool = True,
    ):
        if method not in METHODS:
            raise ConfigError(f"unknown map {method!r} (known: {', '.join(METHODS)})")
        self.method = METHODS[method]
        self._points = points
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.params: dict[str, Any] = {"n": len(points), "checksum": checksum(points), **(params or {})}
        self.isolate = isolate
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._proc: subprocess.Popen | None = None
        self._closed = False
        self.error: str | None = None
        self.map: np.ndarray | None = self._read()

    @property
    def files(self) -> tuple[str, str]:
        return cache_files(self.method.name)

    @property
    def status(self) -> str:
        if self.map is not None:
            return "ready"
        if self.error is not None:
            return "failed"
        return "computing" if self._thread is not None and self._thread.is_alive() else "absent"

    def start(self) -> str:
        """Start computing the map in the background unless it is there, under way or stopped; the new status."""
        with self._lock:
            if self.map is None and self.error is None and not self._closed and self.status == "absent":
                name = f"zspace-explore-{self.method.name}"
                self._thread = threading.Thread(target=self._run, name=name, daemon=True)
                self._thread.start()
        return self.status

    def wait(self, timeout: float | None = None) -> str:
        """Block until a started computation ends (or ``timeout`` seconds pass); the status."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self.status

    def close(self, timeout: float = 10.0) -> None:
        """Stop a computation under way (its child process is terminated, nothing is cached) and start no other."""
        with self._lock:
            self._closed = True
            proc = self._proc
        if proc is not None and proc.poll() is None:
            log.info("stopping the %s map under way", self.method.title)
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._thread is not None and self.isolate:
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            self.compute()
        except _Stopped:
            log.info("the %s map was stopped before it was done", self.method.title)
        except Exception as e:  # a failed map must not take the server down; the page shows the reason
            log.warning("the %s map failed: %s", self.method.title, e)
            self.error = f"{type(e).__name__}: {e}"

    def compute(self) -> np.ndarray:
        """Compute the map now (waiting for it in the calling thread), cache it and return it, (N, 2) float32."""
        log.info("computing the %s map of %d points (cached in %s)", self.method.title, len(self._points),
                 self.cache_dir)  # fmt: skip
        t0 = time.perf_counter()
        if self.isolate:
            Y = self._in_child()
        else:
            Y = np.asarray(self.method.embed(np.asarray(self._points, dtype=np.float32), self.params))
        Y = np.ascontiguousarray(Y, dtype=np.float32)
        if Y.shape != (len(self._points), 2) or not np.isfinite(Y).all():
            raise ValueError(f"the {self.method.title} map has shape {Y.shape} or non-finite values")
        log.info("%s map done in %.1f s", self.method.title, time.perf_counter() - t0)
        self._write(Y)
        self.map = Y
        return Y

    def _in_child(self) -> np.ndarray:
        points = np.ascontiguousarray(self._points, dtype="<f4")
        header = {"method": self.method.name, "params": self.params, "shape": list(points.shape)}
        with self._lock:
            if self._closed:
                raise _Stopped()
            # a session of its own: the terminal's Ctrl-C goes to the server, which then terminates this child
            self._proc = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip
        proc = self._proc
        log.info("the %s map runs in process %d", self.method.title, proc.pid)
        assert proc.stdin is not None
        assert proc.stdout is not None
        assert proc.stderr is not None
        errors: list[bytes] = []
        drain = threading.Thread(target=lambda: errors.append(proc.stderr.read()), daemon=True)  # never blocks it
        drain.start()
        try:
            proc.stdin.write(json.dumps(header).encode() + b"\n")
            proc.stdin.write(memoryview(points).cast("B"))
            proc.stdin.flush()  # stdin stays open: the child ends itself when it closes (this process died)
            answer = json.loads(proc.stdout.readline() or b"null")
            if answer == {"ok": True}:
                n = len(points)
                data = proc.stdout.read(n * 2 * 4)
                if len(data) == n * 2 * 4:
                    return np.frombuffer(data, dtype="<f4").reshape(n, 2).copy()
        except (OSError, ValueError):  # the child is gone (terminated, killed, crashed)
            answer = None
        finally:
            proc.stdin.close()
            code = proc.wait()
            drain.join(5)
            proc.stdout.close()
            proc.stderr.close()
        if self._closed:
            raise _Stopped()
        if isinstance(answer, dict) and "error" in answer:
            raise RuntimeError(answer["error"])
        tail = b"".join(errors).decode(errors="replace").strip().splitlines()[-1:]
        why = f"ended with signal {-code}" if code < 0 else f"ended with exit code {code}"
        raise RuntimeError(f"the {self.method.title} process {why}" + (f": {tail[0]}" if tail else ""))

    def _read(self) -> np.ndarray | None:
        map_file, params_file = self.files
        if self.cache_dir is None or not (self.cache_dir / map_file).is_file():
            return None
        try:
            params = json.loads((self.cache_dir / params_file).read_text())
            Y = np.load(self.cache_dir / map_file, allow_pickle=False)
        except (OSError, ValueError) as e:
            log.warning("ignoring the cached %s map in %s: %s", self.method.title, self.cache_dir, e)
            return None
        if params != self.params or Y.shape != (len(self._points), 2) or not np.isfinite(Y).all():
            log.info("the cached %s map in %s was made from other points or settings; it will be recomputed",
                     self.method.title, self.cache_dir)  # fmt: skip
            return None
        log.info("%s map read from %s", self.method.title, self.cache_dir / map_file)
        return Y.astype(np.float32)

    def _write(self, Y: np.ndarray) -> None:
        if self.cache_dir is None:
            return
        map_file, params_file = self.files
        buf = io.BytesIO()
        np.save(buf, Y, allow_pickle=False)
        try:
            atomic_write_bytes(self.cache_dir / map_file, buf.getvalue())
            atomic_write_text(self.cache_dir / params_file, json.dumps(self.params, indent=2) + "\n")
        except (OSError, ConfigError) as e:  # a read-only folder, or a user's file at the cache's name (never
            # replaced): the map still serves from memory
            log.warning("could not cache the %s map in %s: %s", self.method.title, self.cache_dir, e)


class _Stopped(Exception):
    """The job was closed while its map was being computed."""


def _read_exactly(stream: Any, out: np.ndarray) -> np.ndarray:
    """Fill ``out`` (C-contiguous) from ``stream`` in place: the points are held once, not once more as bytes."""
    view = memoryview(out).cast("B")
    got = 0
    while got < len(view):
        n = stream.readinto(view[got : got + (1 << 24)])
        if not n:
            raise EOFError(f"the points ended after {got} of {len(view)} bytes")
        got += n
    return out


def _child() -> None:
    """The child process (:data:`CHILD`): read a header line and the points (float32) on stdin, write
    ``{"ok": true}`` and the map (float32 (N, 2)) or ``{"error": ...}`` on stdout; end when stdin closes."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    header = json.loads(stdin.readline())
    n, d = header["shape"]
    points = _read_exactly(stdin, np.empty((n, d), dtype="<f4"))

    def orphaned() -> None:  # stdin closes when the server stops or dies: end at once, mid-map or not
        stdin.read()
        os._exit(0)

    threading.Thread(target=orphaned, daemon=True).start()
    try:
        Y = np.ascontiguousarray(METHODS[header["method"]].embed(points, header["params"]), dtype="<f4")
    except Exception as e:
        stdout.write(json.dumps({"error": f"{type(e).__name__}: {e}"}).encode() + b"\n")
    else:
        stdout.write(b'{"ok": true}\n' + Y.tobytes())
    stdout.flush()
    os._exit(0)  # no interpreter finalization while native threads may linger
