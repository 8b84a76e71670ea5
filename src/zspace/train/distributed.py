"""Several training processes on PyTorch's own engine: ``torchrun --nproc-per-node N -m zspace train CONFIG``.

torchrun (or any launcher) sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``;
:func:`init` joins the process group (gloo on CPU, nccl on CUDA, each process on ``cuda:LOCAL_RANK``). The
trainer wraps the model in DistributedDataParallel; ``train.batch_size`` stays the global batch, of which each
process takes a contiguous slice, so the update equals single-process training up to the order of the
reductions. Only rank 0 writes the run folder and its checkpoints; a failure on one process reaches the
others as a :class:`DistributedFailure` (a one-line error, exit 1), never a hang.

Before the process group forms, the processes agree that every one of them can start (:func:`init`): each
publishes "ok" or its one-line refusal (a bad config, option or data path, found before any collective) in the
launcher's key-value store, and waits for the others' in a Python loop, so Ctrl-C stops a waiting process at once.
A refusal on any process stops every process with one line (``process 1 of 2 refused to start: ...``, exit 2);
a process that never shows up is named after ``train.dist_timeout``.
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import json
import logging
import os
import re
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from zspace.errors import ConfigError, DistributedFailure, ZSpaceError

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


def environment_world() -> World:
    """This process's place as the launcher's environment describes it (no process group needed)."""
    if not launched():
        return SINGLE
    try:
        return World(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", "0")))
    except (KeyError, ValueError) as e:
        raise ConfigError(f"WORLD_SIZE is set but RANK is missing or not a number ({e}); start with torchrun") from None


def init(device: torch.device, timeout_s: float, config: dict[str, Any] | None = None) -> tuple[World, torch.device]:
    """Join the process group torchrun describes; returns this process's place and its device.

    Every process first says in the launcher's store that it is ready, with its ``config`` (:func:`agree_to_start`);
    a process that refused to start (see :func:`refuse`), or was given another config, stops all the others with
    one line before any collective.
    """
    if not launched():
        return SINGLE, device
    world = environment_world()
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
        store = agree_to_start(world, timeout_s, config)
        kwargs: dict[str, Any] = {"device_id": device} if device.type == "cuda" else {}
        with collectives(mixed=False):
            dist.init_process_group(
                backend,
                store=dist.PrefixStore("default_pg", store),
                rank=world.rank,
                world_size=world.size,
                timeout=datetime.timedelta(seconds=timeout_s),
                **kwargs,
            )
    log.info("process %d of %d (%s, %s)", world.rank, world.size, backend, device)
    return world, device


# --- agreeing to start, before the process group forms ------------------------------------------------------------

DEFAULT_TIMEOUT_S = 300.0  # train.dist_timeout's default: how long to wait for a process that has not started
REFUSAL_WAIT_S = 60.0  # at most this long a refusing process stays to tell the others
_POLL_S = 0.05
_PREFIX = "zspace-start"
_started: dict[str, Any] = {"decided": False, "store": None, "host": False}


def _connect(world: World, timeout_s: float) -> dist.Store:
    """The launcher's key-value store: torchrun's agent store, or one that rank 0 serves (a plain env launch).

    A client waits for the server with plain socket probes in Python (quiet, and Ctrl-C stops it at once) before
    torch connects; rank 0 serves without waiting for the others (they are waited for in :func:`_exchange`).
    """
    if _started["store"] is not None:
        return _started["store"]
    addr, port_text = os.environ.get("MASTER_ADDR", "127.0.0.1"), os.environ.get("MASTER_PORT", "29500")
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"MASTER_PORT must be a port number, got {port_text!r}") from None
    agent = os.environ.get("TORCHELASTIC_USE_AGENT_STORE", "").lower() == "true"
    host = world.rank == 0 and not agent
    timeout = datetime.timedelta(seconds=timeout_s)
    try:
        if host:
            store: dist.Store = dist.TCPStore(addr, port, world.size, True, timeout=timeout, wait_for_workers=False)
        else:
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    socket.create_connection((addr, port), timeout=1.0).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise DistributedFailure(
                            f"process {world.rank} of {world.size}: nothing answered at {addr}:{port} within "
                            f"{timeout_s:g} s (train.dist_timeout): is process 0 running?"
                        ) from None
                    time.sleep(0.2)
            store = dist.TCPStore(addr, port, world.size, False, timeout=timeout)
    except (RuntimeError, dist.DistError) as e:
        if isinstance(e, DistributedFailure):
            raise
        raise DistributedFailure(
            f"process {world.rank} of {world.size}: cannot reach {addr}:{port} ({_first(e)})"
        ) from None
    if agent:  # torch's own layout of the agent store (torch.distributed.rendezvous), one namespace per restart
        store = dist.PrefixStore(f"/worker/attempt_{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}", store)
    _started.update(store=store, host=host)
    return store


def _first(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _exchange(world: World, refusal: str | None, timeout_s: float, config: str = "") -> tuple[dict, dict]:
    """Publish this process's outcome (and, when ready, its ``config``) and read the others'.

    Returns ``(refusals, configs)``: the others' refusals and the ready ones' configs, by rank. A ready process
    waits (up to ``timeout_s``) until every other one has answered or one has refused; a refusing process only
    waits when it serves the store (rank 0 of a plain launch), until the others have read.
    """
    store = dist.PrefixStore(_PREFIX, _started["store"])
    store.set(f"status/{world.rank}", f"ok:{config}" if refusal is None else f"refused:{refusal}")
    _started["decided"] = True
    if refusal is not None and not _started["host"]:
        return {}, {}
    pending = set(range(world.size)) - {world.rank}
    configs: dict[int, str] = {}
    refusals: dict[int, str] = {}
    deadline = time.monotonic() + timeout_s
    while pending and not (refusals and refusal is None):
        for r in sorted(pending):
            if store.check([f"status/{r}"]):
                pending.discard(r)
                value = store.get(f"status/{r}").decode("utf-8", "replace")
                if value.startswith("ok:"):
                    configs[r] = value.removeprefix("ok:")
                else:
                    refusals[r] = value.removeprefix("refused:")
        if pending and time.monotonic() > deadline:
            if refusal is not None:
                return refusals, configs  # told whoever came; the others find nobody at the address
            missing = ", ".join(map(str, sorted(pending)))
            raise DistributedFailure(
                f"process {world.rank} of {world.size}: process {missing} did not start within {timeout_s:g} s "
                "(train.dist_timeout)"
            )
        if pending:
            time.sleep(_POLL_S)
    store.set(f"seen/{world.rank}", "1")
    if refusal is not None or refusals:
        _linger(store, set(configs), deadline)
    return refusals, configs


def _linger(store: dist.Store, ready: set[int], deadline: float) -> None:
    """Rank 0 of a plain launch serves the store: before it stops, it waits until the ``ready`` processes have
    read every answer (their ``seen`` key), so that they stop with the same line instead of a lost connection."""
    if not _started["host"]:
        return
    while ready and time.monotonic() < deadline:
        ready = {r for r in ready if not store.check([f"seen/{r}"])}
        if ready:
            time.sleep(_POLL_S)


# Keys that may differ between the processes of one launch: where each machine keeps its copy of the data and
# writes (only rank 0 writes), and how many threads or decoding workers each one uses.
LOCAL_KEYS = frozenset({"out_dir", "data.path", "data.attributes", "data.cache_dir", "data.workers", "train.threads",
                        "train.init_from", "train.device"})  # fmt: skip


def comparable_config(config: dict[str, Any] | None) -> str:
    """A run config (``RunConfig.to_dict()``) as canonical JSON without the :data:`LOCAL_KEYS`; "" for None."""
    if config is None:
        return ""
    flat = {k: v for k, v in _flatten(config).items() if k not in LOCAL_KEYS}
    return json.dumps(flat, sort_keys=True, default=str)


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out |= _flatten(v, f"{prefix}{k}.")
        else:
            out[prefix + k] = v
    return out


def _first_difference(world: World, configs: dict[int, str]) -> str | None:
    """The first process whose config differs from process 0's, and the first key that differs (the same answer
    on every process), or None when every process trains the same run."""
    base = json.loads(configs[0]) if configs.get(0) else None
    if base is None:
        return None
    for r in range(1, world.size):
        other = json.loads(configs[r]) if configs.get(r) else None
        if other is None or other == base:
            continue
        key = min(k for k in set(base) | set(other) if base.get(k) != other.get(k))
        return (
            f"process {r} of {world.size} was started with another config than process 0: {key} is "
            f"{json.dumps(other.get(key))[:60]} there and {json.dumps(base.get(key))[:60]} on process 0; start "
            "every process with the same config and options"
        )
    return None


def agree_to_start(world: World, timeout_s: float, config: dict[str, Any] | None = None) -> dist.Store:
    """Say this process is ready and wait until every other one is; returns the store the group forms on.

    ``config`` (``RunConfig.to_dict()``) is compared across the processes, apart from the :data:`LOCAL_KEYS`.

    Raises
    ------
    ConfigError
        When another process refused to start (``process 1 of 2 refused to start: <its one line>``), or was
        started with another config (naming the first key that differs).
    DistributedFailure
        When another process did not show up within ``timeout_s``.
    """
    _connect(world, timeout_s)
    try:
        refusals, configs = _exchange(world, None, timeout_s, comparable_config(config))
    except KeyboardInterrupt:  # the others stop too, instead of waiting for this one
        with contextlib.suppress(RuntimeError, dist.DistError):
            dist.PrefixStore(_PREFIX, _started["store"]).set(f"status/{world.rank}", "refused:interrupted (Ctrl-C)")
        raise
    except (RuntimeError, dist.DistError) as e:
        if isinstance(e, DistributedFailure):
            raise
        raise DistributedFailure(
            f"process {world.rank} of {world.size}: lost the other processes before training started ({_first(e)})"
        ) from None
    if refusals:
        rank = min(refusals)
        raise ConfigError(f"process {rank} of {world.size} refused to start: {refusals[rank]}")
    configs[world.rank] = comparable_config(config)
    mismatch = _first_difference(world, configs)
    if mismatch:
        _linger(dist.PrefixStore(_PREFIX, _started["store"]), set(configs) - {world.rank}, time.monotonic() + timeout_s)
        raise ConfigError(mismatch)
    return _started["store"]


def refuse(reason: str, timeout_s: float = DEFAULT_TIMEOUT_S, *, wait: bool = True) -> None:
    """Tell the other processes of a launch that this one cannot start (its bad config, option or data path),
    so that they stop with one line instead of waiting. Nothing happens without a launcher, or once this process
    has agreed to start (later failures reach the others through the process group).

    ``wait=False`` (Ctrl-C) tells only through a store already connected, and never waits.
    """
    if not launched() or _started["decided"] or dist.is_initialized():
        return
    try:
        world = environment_world()
    except ConfigError:
        return
    reason = " ".join(reason.split()) or "refused"
    try:
        if _started["store"] is None:
            if not wait:
                return
            _connect(world, min(timeout_s, REFUSAL_WAIT_S))
        _exchange(world, reason, min(timeout_s, REFUSAL_WAIT_S) if wait else 0.0)
    except (DistributedFailure, RuntimeError, dist.DistError) as e:  # nobody to tell: this process's own line stands
        log.debug("could not tell the other processes: %s", _first(e))


@contextlib.contextmanager
def refusing(timeout_s: float = DEFAULT_TIMEOUT_S) -> Iterator[None]:
    """Checks done before the process group forms: an error in them is told to the other processes
    (:func:`refuse`), then raised here as usual."""
    try:
        yield
    except KeyboardInterrupt:
        refuse("interrupted (Ctrl-C)", timeout_s, wait=False)
        raise
    except Exception as e:
        refuse(_first(e) if isinstance(e, ZSpaceError) else f"{type(e).__name__}: {_first(e)}", timeout_s)
        raise


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


def all_ok(world: World, fn: Callable[[], T]) -> T:
    """Run ``fn`` on every process and agree on the outcome: a bad-input error (:class:`ZSpaceError`) on any
    process is raised on every one (``process 1 of 2: <its line>`` on the others), so that a data folder missing on
    one machine stops all processes with one line instead of leaving the others to find a lost peer."""
    if not world.distributed:
        return fn()
    result: Any = None
    error: ZSpaceError | None = None
    try:
        result = fn()
    except ZSpaceError as e:  # raised below, once every process has said how it went
        error = e
    answers: list[Any] = [None] * world.size
    guarded(dist.all_gather_object, answers, None if error is None else _first(error))
    if error is not None:
        raise error
    failed = next(((r, a) for r, a in enumerate(answers) if a), None)
    if failed is not None:
        raise ConfigError(f"process {failed[0]} of {world.size}: {failed[1]}")
    return result


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
