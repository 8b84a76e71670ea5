"""Feeding images to the trainer: the epoch order, the global batch and its per-process slice, two gatherers.

The batch order of epoch ``e`` is a pure function of ``(seed, e)``. A global batch's rows are sorted (a
memory-mapped cache is then read front to back; a batch's loss is a mean, so the order inside it does not
matter) and process ``rank`` of ``world`` takes the ``rank``-th of ``world`` contiguous chunks of it.

Two gatherers give the same uint8 batches: :class:`MemmapBatches` gathers from the (memory-mapped) numpy cache
one batch ahead in a thread and copies it to the device; :class:`ResidentBatches` uploads the whole cache to the
device once and gathers there with ``index_select`` (no host work per step).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

log = logging.getLogger(__name__)


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffled order of ``n`` training items in ``epoch``: depends on nothing else."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def global_batches(rows: np.ndarray, batch_size: int, start: int = 0) -> Iterator[np.ndarray]:
    """The sorted rows of each global batch ``rows[i*bs:(i+1)*bs]`` from step ``start`` on."""
    for i in range(start * batch_size, len(rows), batch_size):
        yield np.sort(rows[i : i + batch_size])


def local_slice(n: int, rank: int, world: int) -> tuple[int, int]:
    """``[start, stop)`` of process ``rank``'s contiguous chunk of a global batch of ``n`` (np.array_split)."""
    base, extra = divmod(n, world)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


class MemmapBatches:
    """Batches gathered from the numpy array ``x`` (a memory map is fine), one ahead in a thread."""

    resident = False

    def __init__(self, x: np.ndarray, device: torch.device):
        self.x, self.device = x, device

    def iterate(self, batches: Iterator[np.ndarray]) -> Iterator[torch.Tensor]:
        """uint8 (B, H, W, C) tensors of ``x[rows]`` for each rows array, in order."""
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = None
            for rows in batches:
                nxt = pool.submit(self.x.__getitem__, rows)
                if pending is not None:
                    yield torch.from_numpy(pending.result())
                pending = nxt
            if pending is not None:
                yield torch.from_numpy(pending.result())


class ResidentBatches:
    """The whole uint8 array uploaded to ``device`` once; batches gathered there."""

    resident = True

    def __init__(self, x: np.ndarray, device: torch.device, chunk: int = 4096):
        self.device = device
        self.x = torch.empty(x.shape, dtype=torch.uint8, device=device)  # (N, H, W, C)
        for i in range(0, len(x), chunk):  # in chunks: a memory-mapped cache is never copied whole on the host
            self.x[i : i + chunk] = torch.from_numpy(np.array(x[i : i + chunk], dtype=np.uint8))

    def iterate(self, batches: Iterator[np.ndarray]) -> Iterator[torch.Tensor]:
        for rows in batches:
            idx = torch.from_numpy(np.ascontiguousarray(rows))
            if self.device.type == "cuda":
                idx = idx.pin_memory()  # a copy from pageable memory would wait for the whole stream every step
            yield self.x.index_select(0, idx.to(self.device, non_blocking=True))


def make_batches(x: np.ndarray, device: torch.device, mode: str) -> MemmapBatches | ResidentBatches:
    """``mode``: "on" (resident), "off" (memory map) or "auto" (resident when the array fits comfortably)."""
    if mode == "on" or (mode == "auto" and _fits(x.nbytes, device)):
        log.info("training images resident on %s (%.1f MB)", device, x.nbytes / 1e6)
        return ResidentBatches(x, device)
    return MemmapBatches(x, device)


def _fits(nbytes: int, device: torch.device) -> bool:
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return nbytes < 0.5 * free
    from zspace.io.limits import available_memory

    return nbytes < 0.25 * available_memory()
