"""Several training processes on PyTorch's own engine: ``torchrun --nproc-per-node N -m zspace train CONFIG``.

torchrun (or any launcher) sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``;
:func:`init` joins the process group (gloo on CPU, nccl on CUDA, each process on ``cuda:LOCAL_RANK``). The
trainer wraps the model in DistributedDataParallel; ``train.batch_size`` stays the global batch, of which each
process takes a contiguous slice, so the update equals single-process training up to the order of the
reductions. Only rank 0 writes the run folder and its checkpoints; a failure on one process reaches the
others as a :class:`DistributedFailure` (a one-line error, exit 1), never a hang.
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import logging
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from zspace.errors import DistributedFailure

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class World:
    """This process's place among the training processes (rank 0 of 1 without a launcher)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Whether this process writes (the run folder, checkpoints, logs)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


SINGLE = World()


def launched() -> bool:
    """Whether a launcher started several processes (``WORLD_SIZE`` > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init(device: torch.device, timeout_s: float) -> tuple[World, torch.device]:
    """Join the process group torchrun describes; returns this process's place and its device."""
    if not launched():
        return SINGLE, device
    world = World(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if backend == "nccl":
        # NCCL collectives are asynchronous: a lost peer is found by NCCL's watchdog after ``timeout_s``. In mode 2
        # (clean up only) the watchdog aborts the communicator without killing this process, so the error reaches
        # the next collective or read-back as an exception, which ``collectives`` turns into one line.
        os.environ.setdefault("TORCH_NCCL_ASYNC_ERROR_HANDLING", "2")
    if not dist.is_initialized():
        kwargs = {"device_id": device} if device.type == "cuda" else {}
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s), **kwargs)
    log.info("process %d of %d (%s, %s)", world.rank, world.size, backend, device)
    return world, device


def shutdown(world: World, *, ok: bool) -> None:
    """Leave the process group. After a success every process first waits for the others (rank 0 still writes
    its last checkpoint and evaluation when the others are done), and what held the group (DDP's reducer) is
    collected first, so that no process tears gloo down at interpreter exit while a peer still talks to it."""
    if not dist.is_initialized():
        return
    gc.collect()
    if ok and world.distributed:
        barrier(world)
    dist.destroy_process_group()


def barrier(world: World) -> None:
    if world.distributed:
        guarded(dist.barrier)


# What a collective raises when a peer is gone: gloo's "Connection reset/closed by peer", NCCL errors, timeouts.
_LOST = re.compile(r"gloo|nccl|connection|by peer|timed? ?out|processgroup|c10d", re.IGNORECASE)


@contextlib.contextmanager
def collectives(world: World | None = None, *, mixed: bool = True) -> Iterator[None]:
    """Code that talks to the other processes: a peer that failed or vanished becomes a one-line
    :class:`DistributedFailure`.

    ``mixed``: the code also computes (DDP's gradient all-reduce runs inside ``backward``), so only errors that
    read as a lost peer are translated and others (a bug) pass through; an out-of-memory always passes. With
    ``world`` given and single, nothing is caught at all.
    """
    if world is not None and not world.distributed:
        yield
        return
    try:
        yield
    except (torch.OutOfMemoryError, DistributedFailure):
        raise
    except (RuntimeError, dist.DistError) as e:
        text = str(e).strip()
        if mixed and not isinstance(e, dist.DistError) and not _LOST.search(text):
            raise
        first = text.splitlines()[0] if text else type(e).__name__
        where = f"process {dist.get_rank()} of {dist.get_world_size()}: " if dist.is_initialized() else ""
        raise DistributedFailure(
            f"{where}lost another training process ({first}); the last checkpoint is intact: rerun with --resume"
        ) from None


def guarded(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a collective; a peer that failed or vanished becomes a one-line :class:`DistributedFailure`."""
    with collectives(mixed=False):
        return fn(*args, **kwargs)


def run_on_main(world: World, fn: Callable[[], T]) -> T:
    """Run ``fn`` on rank 0 only; its result, or its bad-input error, reaches every process."""
    if not world.distributed:
        return fn()
    outcome: list[Any] = [None]
    if world.main:
        try:
            outcome[0] = ("ok", fn())
        except Exception as e:  # re-raised below, on every rank alike
            outcome[0] = ("error", e)
    guarded(dist.broadcast_object_list, outcome, src=0)
    status, value = outcome[0]
    if status == "error":
        raise value
    return value


def share_bytes(world: World, data: bytes | None) -> bytes:
    """Rank 0's bytes on every process (a checkpoint read once, also across machines without a shared disk)."""
    if not world.distributed:
        return data
    box = [data if world.main else None]
    guarded(dist.broadcast_object_list, box, src=0)
    return box[0]


def all_sum(t: torch.Tensor, world: World) -> torch.Tensor:
    """``t`` summed over every process, in place (on the device: no host sync)."""
    if world.distributed:
        guarded(dist.all_reduce, t, op=dist.ReduceOp.SUM)
    return t
