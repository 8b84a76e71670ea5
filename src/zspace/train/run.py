"""The friendly layer: one call per CLI command, chaining config -> data -> model -> run folder -> training.

Everything is validated before anything is written, so bad input never leaves a half-written run folder.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path

import torch

from zspace.config import RunConfig
from zspace.data import Dataset, Progress, image_shape, load_dataset
from zspace.errors import CheckpointError, ConfigError, DataError
from zspace.io import ownership
from zspace.io.limits import set_thread_budget, usable_threads
from zspace.models import LatentModel, build_model, check_batch_size
from zspace.runs import folder as runs
from zspace.train import distributed
from zspace.train.loop import StepInfo, Trainer, check_batch_norm, resolve_device

log = logging.getLogger(__name__)


def resolve(cfg: RunConfig) -> RunConfig:
    """Fill in what the config leaves to the data: image size and channels, an absolute data path."""
    size, channels = image_shape(cfg.data)
    m = cfg.model
    for key, given, actual in (("image_size", m.image_size, size), ("channels", m.channels, channels)):
        if given not in (0, actual):
            raise ConfigError(f"model.{key} is {given} but the data gives {actual}; leave it unset (0)")
    path = str(Path(cfg.data.path).expanduser().resolve()) if cfg.data.path else None
    data = dataclasses.replace(cfg.data, image_size=size, path=path)
    init = cfg.train.init_from
    train = dataclasses.replace(cfg.train, init_from=str(Path(init).expanduser().resolve()) if init else None)
    model = dataclasses.replace(m, image_size=size, channels=channels)
    return dataclasses.replace(cfg, data=data, model=model, train=train)


def seeded_model(cfg: RunConfig) -> LatentModel:
    """The model of ``cfg`` with weights drawn from ``train.seed``."""
    torch.manual_seed(cfg.train.seed)
    return build_model(cfg.model)


def check_data(data: Dataset, cfg: RunConfig) -> None:
    """The loaded images must have the shape the model was built for."""
    want = (cfg.model.image_size, cfg.model.image_size, cfg.model.channels)
    if not data.is_image or tuple(data.image_shape) != want:
        got = data.image_shape if data.is_image else f"tabular {data.x.shape}"
        raise DataError(f"dataset {data.name!r} at {data.source.get('path')} has shape {got}, the model wants {want}")


def data_reference(data: Dataset) -> dict:
    """What a run folder records about its data."""
    return {
        "name": data.name,
        "n": len(data),
        "n_train": len(data.indices("train")),
        "n_test": len(data.indices("test")),
        "shape": list(data.x.shape[1:]),
        **data.source,
    }


def train_run(
    cfg: RunConfig,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: Progress | None = None,
    on_step: Callable[[StepInfo], None] | None = None,
    on_epoch: Callable[[dict], None] | None = None,
) -> Path:
    """Train the run ``cfg`` describes (or continue it with ``resume``); returns the run folder.

    The run's lock is held throughout, so a second process training the same run name is refused. A run folder
    with no checkpoint yet (an interrupted or failed start) is started afresh, by a rerun or by ``resume``.
    Under torchrun every process calls this; rank 0 checks, builds the cache and creates the folder first, and
    a bad input is the same one-line error on every process.
    """
    with distributed.refusing(cfg.train.dist_timeout):  # a bad data path on one process stops them all
        cfg = resolve(cfg)
    world, device = distributed.init(resolve_device(cfg.train.device), cfg.train.dist_timeout, cfg.to_dict())
    ok = False
    try:
        run_dir = _train(cfg, world, device, resume, overwrite, progress, on_step, on_epoch)
        ok = True
    finally:
        if world.distributed:
            distributed.shutdown(world, ok=ok)
    return run_dir


def _train(cfg, world, device, resume, overwrite, progress, on_step, on_epoch) -> Path:
    if cfg.train.threads:
        threads, note = usable_threads(cfg.train.threads, "train.threads")
        if note:
            log.warning(note)
        set_thread_budget(threads)  # torch, BLAS, faiss and image decoding alike, as --threads does (for the process)
    model = seeded_model(cfg)  # the same weights on every process (DDP broadcasts rank 0's anyway)
    run_dir = Path(cfg.out_dir) / cfg.name
    resume, overwrite = distributed.run_on_main(world, lambda: _start_mode(cfg, resume, overwrite))
    data = _load_data(cfg, world, progress)
    check_data(data, cfg)
    check_batch_size(cfg.model, min(cfg.train.batch_size, len(data.indices("train"))), "train.batch_size")
    check_batch_norm(cfg.model.batch_norm, world, device)
    with contextlib.ExitStack() as held:

        def open_run() -> Path:  # nothing is written before the input checked out
            held.enter_context(ownership.run_lock(Path(cfg.out_dir), cfg.name))
            if resume:
                runs.check_resumable(cfg)  # again: another process may have changed the folder meanwhile
                return run_dir
            return runs.create_run(cfg, data_reference(data), device=device, overwrite=overwrite)

        run_dir = distributed.run_on_main(world, open_run)
        trainer = Trainer(model, data, cfg, run_dir, device, world)
        trainer.on_step, trainer.on_epoch = on_step, _with_tensorboard(on_epoch, cfg, run_dir, world)
        if resume:
            trainer.resume()
            if world.main:
                runs.save_config(run_dir, cfg)  # only once the checkpoint has loaded: a failed resume changes nothing
        elif cfg.train.init_from:
            trainer.resume(Path(cfg.train.init_from).expanduser())
        trainer.fit()
    return run_dir


def _with_tensorboard(on_epoch, cfg: RunConfig, run_dir: Path, world: distributed.World):
    """``on_epoch``, also writing TensorBoard scalars when ``train.tensorboard`` (the writing process only)."""
    if not (cfg.train.tensorboard and world.main):
        return on_epoch
    from zspace.train.tensorboard import epoch_writer

    write = epoch_writer(run_dir)

    def both(row: dict) -> None:
        write(row)
        if on_epoch:
            on_epoch(row)

    return both


def _start_mode(cfg: RunConfig, resume: bool, overwrite: bool) -> tuple[bool, bool]:
    """(resume, overwrite) as they apply, checked before a possibly long data load."""
    if cfg.train.tensorboard:
        from zspace.train.tensorboard import check_available

        check_available()
    run_dir = Path(cfg.out_dir) / cfg.name
    if resume and runs.is_unfinished_start(run_dir):
        log.info("%s has no checkpoint yet: starting it from the beginning", run_dir)
        resume, overwrite = False, True
    if resume:
        runs.check_resumable(cfg)
        check_training_targets(cfg)
    else:
        runs.check_creatable(cfg, overwrite=overwrite)
        init = cfg.train.init_from
        if init and not Path(init).expanduser().is_file():
            raise CheckpointError(f"train.init_from: checkpoint not found: {init}")
    return resume, overwrite


def check_training_targets(cfg: RunConfig) -> None:
    """Refuse a resume, before any epoch, when a file it will write (the weights, the history, the config, the kept
    checkpoints of the epochs to come) is there but not zspace's: the writes would refuse it too, but only after an
    epoch of training."""
    from zspace.io.atomic import check_owned_file

    run_dir = Path(cfg.out_dir) / cfg.name
    if not (run_dir / ownership.MANIFEST).is_file():
        return  # a run from before manifests: nothing records what zspace wrote (its files are replaced as before)
    # not the checkpoint: resume reads it first, and an edited one is refused as "edited or corrupt" (more telling)
    targets = [run_dir / name for name in (runs.WEIGHTS, runs.HISTORY, runs.CONFIG)]
    if cfg.train.keep_checkpoints and (run_dir / runs.KEPT).is_dir():  # the names there that an epoch would take
        kept = {f"epoch-{e:03d}.safetensors" for e in range(1, cfg.train.epochs + 1)}
        targets += sorted(p for p in (run_dir / runs.KEPT).iterdir() if p.name in kept)
    for path in targets:
        check_owned_file(path, "move it away first")


def _load_data(cfg: RunConfig, world: distributed.World, progress: Progress | None) -> Dataset:
    """Rank 0 loads (and builds the cache) first; the other processes then read what it built."""
    loaded: list[Dataset] = []
    distributed.run_on_main(world, lambda: loaded.append(load_dataset(cfg.data, progress=progress)))
    return distributed.all_ok(world, lambda: loaded[0] if loaded else load_dataset(cfg.data))  # one bad copy stops all
