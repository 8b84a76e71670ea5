"""What the machine can hold: estimate before allocating, and refuse with one line naming the key and the limit."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

from zspace.errors import ConfigError, DataError


def available_memory() -> int:
    """Bytes of memory this process can still allocate (MemAvailable; the cgroup limit where lower)."""
    avail = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024
                break
    except (OSError, ValueError, IndexError):
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError):
            avail = 8 * 2**30
    for cgroup in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            raw = Path(cgroup).read_text().strip()
        except OSError:
            continue
        if raw.isdigit():
            avail = min(avail, int(raw))
    return avail


def human(nbytes: float) -> str:
    """``1536`` -> ``"1.5 KiB"``."""
    if not math.isfinite(nbytes):
        return "unbounded"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(nbytes) < 1024 or unit == "PiB":
            return f"{nbytes:.3g} {unit}" if unit != "B" else f"{int(nbytes)} B"
        nbytes /= 1024
    return f"{nbytes:.3g} EiB"  # pragma: no cover


def check_memory(nbytes: float, key: str, what: str, *, share: float = 0.8) -> None:
    """Refuse when ``what`` (set by config key ``key``) needs more than ``share`` of the available memory."""
    limit = share * available_memory()
    if not math.isfinite(nbytes) or nbytes > limit:
        raise ConfigError(f"{key}: {what} would need {human(nbytes)}, more than this machine can hold ({human(limit)})")


def check_disk(folder: Path, nbytes: int, what: str) -> None:
    """Refuse when ``folder``'s file system has less than ``nbytes`` free (a memory map would fault, not fail)."""
    folder = Path(folder)
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if nbytes > free:
        raise DataError(f"{what} needs {human(nbytes)} in {folder}, but only {human(free)} is free")


# --- work estimated before it starts ---------------------------------------------------------------------------
#
# A cost model per step: time = operations / RATE. benchmarks/limits_calibration.py measures each RATE on small fits;
# on the development machine (2 AMD EPYC cores shared with ~6 other jobs, load ~11) it measured the k-means and
# t-SNE rates 3-4x below the constants, while the same code alone at full size ran 5-20x above them (the MNIST
# elbow, 60,000 x 784, k = 2..250 in 87 s: ~4e10; the analyze section's five 20k-point t-SNE maps in 541 s:
# ~1.8e5 point-iterations/s; benchmarks/RESULTS.md). Those two are set between the loaded and the unloaded
# measurements; the others are as measured. The estimates are deliberately coarse (within a factor of ~3-10); they
# exist to refuse work that would run for hours or exhaust memory, not to predict run time, and they do not scale
# with the core count (the tests' refusals must hold on any machine).

#: distance evaluations (point x centre x feature) per second of a k-means iteration (faiss Lloyd, elbow and
#: classifier); benchmarks/limits_calibration.py measures it
KMEANS_RATE = 2.0e9  # measured 4.7e8 loaded (small k) .. 4e10 alone (MNIST elbow); the first guess, kept
#: multiply-adds (point x centre x feature) per second of the passes over all points that follow each k-means fit
#: (faiss' assignment of every point, the exact nearest-centre inertia: both large matrix products, so BLAS-bound
#: and ~10x the fits' rate); benchmarks/limits_calibration.py measures it
PASS_RATE = 1.5e10  # measured 2.1e10 (200,000 x 256, 512 centres) .. 4.6e10 (50,000 x 256), loaded
#: distance evaluations (query x reference row x feature) per second of an exact nearest-neighbour search (faiss
#: IndexFlatL2, distances recomputed in float64; numpy's BLAS for the quality measures)
KNN_RATE = 2.4e9  # measured 2.4e9
#: point-iterations per second of an openTSNE (FFT) map
TSNE_RATE = 1.0e5  # measured 3.7e4 loaded (4,000 points) .. 1.8e5 alone (20,000 points)
#: decoded output values (pixels x channels) per second of the series' convolutional decoder on a CPU
DECODE_RATE = 2.5e6  # measured 2.5e6 (96x96x3 images, z_dim 256), loaded
#: Lloyd iterations assumed per fit when estimating (faiss' default niter is 25)
KMEANS_ITERS = 25
#: fixed seconds per k-means fit (k-means++ start, faiss set-up): what dominates small fits (the wifi study's)
KMEANS_FIT_SECONDS = 0.012  # measured 0.011
#: memory per image of a decoded grid (decoded batch + matplotlib figure): 18 GB measured for 100,000 MNIST images
GRID_BYTES_PER_IMAGE = 180_000
#: the longest a single analysis step may be estimated to take before it is refused (seconds)
TIME_BUDGET_S = 3600.0


def machine_cores() -> int:
    """CPU cores this process may run on (its affinity mask; ``os.cpu_count()`` where there is none)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


_THREAD_BUDGET: int | None = None  # --threads, for every library that runs threads (set_thread_budget)


def set_thread_budget(n: int | None) -> None:
    """Let every thread pool of this process use at most ``n`` threads (None: every core again).

    ``--threads`` used to reach torch only, while the elbow's fits, faiss, openTSNE and BLAS took every core. The
    budget is read by :func:`cpu_threads`, which zspace's own pools (elbow fits, classifier, t-SNE, image decoding)
    size themselves by, and it is applied at once to torch, faiss and the OpenMP and BLAS libraries loaded by then
    (threadpoolctl). ``None`` lifts a budget that was set: each library gets every core of this process again.
    """
    global _THREAD_BUDGET
    if n is None and _THREAD_BUDGET is None:
        return
    _THREAD_BUDGET = None if n is None else max(1, int(n))
    threads = cpu_threads()
    import faiss
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    threadpool_limits(limits=threads)  # not a context: stays for the process
    faiss.omp_set_num_threads(threads)


def cpu_threads() -> int:
    """Threads zspace's own parallel work may use: the cores of this process, capped by ``--threads``."""
    cores = machine_cores()
    return cores if _THREAD_BUDGET is None else min(cores, _THREAD_BUDGET)


def usable_threads(n: int, key: str = "--threads") -> tuple[int, str | None]:
    """``n`` capped at the machine's core count; returns ``(threads, note)``, the note None when not capped.

    ``n < 1`` is refused (ConfigError); ``n`` above the cores this process may use is capped (a huge thread count
    made torch segfault) and the note says so, for the log and the report.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"{key} must be an integer >= 1, got {n!r}")
    cores = machine_cores()
    if n <= cores:
        return n, None
    return cores, f"{key}={n} capped at {cores}, the number of CPU cores"


def estimate_kmeans_seconds(
    n_points: int,
    n_features: int,
    ks,
    restarts: int = 1,
    *,
    points_per_centroid: int = 256,
    fit_dims: int = 64,
    iters: int = KMEANS_ITERS,
) -> float:
    """Seconds for ``restarts`` Lloyd fits at each k in ``ks`` on ``n_points`` x ``n_features``, as faiss runs
    them (the defaults are zspace's LloydSettings): ``iters`` iterations on at most ``points_per_centroid * k``
    points in at most ``fit_dims`` dimensions; then the passes over all points, every point assigned in the fit's
    dimensions and the inertia in all of them (matrix products, at PASS_RATE); and a fixed cost per fit:

    ``restarts * (sum_k iters * min(n, ppc * k) * k * min(d, fit_dims) / KMEANS_RATE
    + sum_k n * k * (d + min(d, fit_dims)) / PASS_RATE + len(ks) * KMEANS_FIT_SECONDS)``.

    One rate for both parts made the passes 10x too slow: 686 s estimated for the 1M x 256 elbow that ran in 59 s,
    and a 10M-point elbow capped that would have run in minutes.
    """
    n, d = float(n_points), float(n_features)
    d_fit = min(d, float(fit_dims)) if fit_dims else d
    fits = passes = 0.0
    count = 0
    for k in ks:
        k = float(k)
        fits += iters * min(n, points_per_centroid * k) * k * d_fit
        passes += n * k * (d + d_fit)
        count += 1
    return restarts * (fits / KMEANS_RATE + passes / PASS_RATE + count * KMEANS_FIT_SECONDS)


def check_time(seconds: float, key: str, what: str, *, budget: float = TIME_BUDGET_S) -> None:
    """Refuse when ``what`` (set by ``key``) is estimated to take longer than ``budget`` seconds."""
    if not math.isfinite(seconds) or seconds > budget:
        shown = "unbounded" if not math.isfinite(seconds) else f"{seconds:.3g} s"
        raise ConfigError(f"{key}: {what} would take about {shown}, more than the limit of {budget:.0f} s")


def check_count(n, key: str, per_item_bytes: float, what: str, *, share: float = 0.8) -> int:
    """Refuse a count (``--n``, ``n_probes``, ``splits``) that is not a positive integer or whose memory is too much.

    Returns the count as an int. Memory is ``n * per_item_bytes`` checked with :func:`check_memory`.
    """
    if isinstance(n, bool) or not isinstance(n, (int, float)) or not math.isfinite(n) or n != int(n) or n < 1:
        raise ConfigError(f"{key} must be a positive integer, got {n!r}")
    n = int(n)
    check_memory(float(n) * per_item_bytes, key, what, share=share)
    return n


def estimate_knn_seconds(n_queries: int, n_reference: int, n_features: int) -> float:
    """Seconds of an exact nearest-neighbour search: ``n_queries * n_reference * n_features / KNN_RATE``."""
    return float(n_queries) * float(n_reference) * float(n_features) / KNN_RATE


def estimate_tsne_seconds(n_points: int, n_iter: int, n_maps: int = 1) -> float:
    """Seconds of ``n_maps`` openTSNE maps of ``n_points`` each: ``n_maps * n_points * n_iter / TSNE_RATE``
    (FFT-accelerated gradients: linear in the points)."""
    return float(n_maps) * float(n_points) * float(n_iter) / TSNE_RATE


def estimate_decode_seconds(n_images: int, values_per_image: int) -> float:
    """Seconds to decode ``n_images`` of ``values_per_image`` (height x width x channels) on a CPU."""
    return float(n_images) * float(values_per_image) / DECODE_RATE


def check_work(seconds: float, nbytes: float, key: str, what: str, *, budget: float = TIME_BUDGET_S) -> None:
    """Refuse ``what`` (set by ``key``) when its estimated memory or time is beyond this machine
    (:func:`check_memory`, then :func:`check_time`)."""
    check_memory(nbytes, key, what)
    check_time(seconds, key, what, budget=budget)
