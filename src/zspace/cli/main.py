"""The ``zspace`` command line: it only parses arguments, wires progress bars and chains library calls."""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import shlex
import sys
from pathlib import Path
from typing import Annotated

from tqdm import tqdm

from zspace.cli.progress import bar, labelled_bars, setup_logging
from zspace.config import SEED_ARG as SEED
from zspace.config import Range, declared_arg
from zspace.errors import ConfigError, DistributedFailure, TrainingDiverged, ZSpaceError

log = logging.getLogger("zspace")


def _overrides(args: argparse.Namespace) -> list:
    sets = list(args.set or [])
    for flag, key in (
        ("data", "data.path"),
        ("name", "name"),
        ("out_dir", "out_dir"),
        ("epochs", "train.epochs"),
        ("device", "train.device"),
        ("from_checkpoint", "train.init_from"),
        ("seed", "train.seed"),
        ("threads", "train.threads"),
    ):
        value = getattr(args, flag, None)
        if value is not None:
            sets.append((key, value))  # typed: a path is never re-parsed from a string
    if getattr(args, "strict", False):
        sets.append(("data.strict", True))
    return sets


def cmd_train(args: argparse.Namespace) -> int:
    from zspace.config import load_config
    from zspace.train.run import train_run

    cfg = load_config(args.config, _overrides(args))
    steps = None

    def on_step(info) -> None:
        nonlocal steps
        if steps is None or info.step == 0 or steps.total != info.steps_per_epoch:
            if steps is not None:
                steps.close()
            steps = tqdm(
                total=info.steps_per_epoch,
                initial=info.step,
                desc=f"epoch {info.epoch + 1}",
                unit="step",
                leave=False,
                disable=args.quiet,
                file=sys.stderr,
            )
        steps.update(1)
        steps.set_postfix(loss=f"{info.loss:.4g}", refresh=False)

    try:
        with bar("caching images", args.quiet) as progress:
            run_dir = train_run(cfg, resume=args.resume, overwrite=args.overwrite, progress=progress, on_step=on_step)
    finally:
        if steps is not None:
            steps.close()
    log.info("run folder: %s", run_dir)
    return 0


MODEL_SCHEMES = ("diffusers",)  # --model SCHEME:PATH


def _embed_with_model(args: argparse.Namespace, device) -> int:
    """``zspace embed --model diffusers:PATH --data FOLDER --out LATENTS``: a model trained elsewhere encodes an
    image folder; the latents' meta records the model (folder, weights' sha256) so later commands reload it."""
    from zspace.config import DataConfig, check_declared
    from zspace.data import load_dataset
    from zspace.data.images import DEFAULT_SIZE
    from zspace.latents.embedding import embed
    from zspace.models.adapters.diffusers import load_autoencoder_kl, model_spec
    from zspace.train.run import data_reference

    scheme, sep, target = args.model.partition(":")
    if not sep or scheme not in MODEL_SCHEMES or not target:
        known = ", ".join(f"{s}:PATH" for s in MODEL_SCHEMES)
        raise ConfigError(f"--model {args.model!r}: unknown model scheme {scheme!r} (known: {known})")
    if args.run is not None:
        raise ConfigError("embed takes a run folder or --model, not both")
    for flag, value in (("--data FOLDER", args.data), ("--out LATENTS", args.out)):
        if value is None:
            raise ConfigError(f"embed --model needs {flag}")
    if args.eps_factor is not None:
        raise ConfigError("--eps-factor goes with zspace's own VAEs, not with --model")
    data_cfg = DataConfig(name=args.dataset, path=str(Path(args.data).expanduser().resolve()),
                          image_size=args.image_size or DEFAULT_SIZE, limit=args.limit or 0)  # fmt: skip
    check_declared(data_cfg, "data.")
    data_config = {k: getattr(data_cfg, k) for k in ("name", "path", "image_size", "limit", "crop")}
    out = Path(args.out)
    model = load_autoencoder_kl(target, image_size=data_cfg.image_size, scaled=args.scaled, device=device)
    with bar("caching images", args.quiet) as progress:
        data = load_dataset(data_cfg, progress=progress)
    with bar("encoding", args.quiet) as progress:
        latents = embed(
            model,
            data,
            out,
            split=args.split,
            batch_size=16 if args.batch_size is None else args.batch_size,
            device=device,
            seed=args.seed,
            progress=progress,
            meta={"model": model_spec(model, out), "data": data_reference(data), "data_config": data_config},
        )
    log.info("wrote %d latents of dimension %d (images %dx%d) to %s", len(latents), latents.z.shape[1],
             data_cfg.image_size, data_cfg.image_size, out)  # fmt: skip
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    from zspace.data import load_dataset
    from zspace.latents.embedding import embed
    from zspace.latents.freshness import provenance
    from zspace.runs.folder import load_run
    from zspace.train.loop import resolve_device
    from zspace.train.run import check_data, data_reference

    device = resolve_device(args.device, key="--device")
    if args.model is not None:
        return _embed_with_model(args, device)
    if args.run is None:
        raise ConfigError("embed needs a run folder, or --model diffusers:PATH --data FOLDER --out LATENTS")
    given = [flag for flag, on in (("--image-size", args.image_size is not None), ("--limit", args.limit is not None),
             ("--dataset", args.dataset != "images"), ("--scaled", args.scaled)) if on]  # fmt: skip
    if given:
        raise ConfigError(f"{given[0]} goes with --model (a run's config sets its data and model)")
    run = load_run(args.run, device=device)
    data_cfg = run.config.data
    if args.data is not None:
        data_cfg.path = str(Path(args.data).expanduser().resolve())
    with bar("caching images", args.quiet) as progress:
        data = load_dataset(data_cfg, progress=progress)
    check_data(data, run.config)
    out = Path(args.out) if args.out else run.path / "latents" / args.split
    with bar("encoding", args.quiet) as progress:
        latents = embed(
            run.model,
            data,
            out,
            split=args.split,
            batch_size=512 if args.batch_size is None else args.batch_size,
            device=device,
            eps_factor=args.eps_factor,
            seed=args.seed,
            progress=progress,
            meta={**provenance(run, out), "data": data_reference(data)},
        )
    log.info("wrote %d latents of dimension %d to %s", len(latents), latents.z.shape[1], out)
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    from zspace.config import load_config
    from zspace.models.summary import format_table, layer_table
    from zspace.train.run import resolve, seeded_model

    cfg = resolve(load_config(args.config, _overrides(args)))
    model = seeded_model(cfg)
    counts = model.param_counts()
    if args.json:
        m = cfg.model
        print(
            json.dumps(
                {
                    **counts,
                    "kind": m.kind,
                    "z_dim": m.z_dim,
                    "input_shape": [m.image_size, m.image_size, m.channels],
                }
            )
        )
    else:
        print(
            f"{cfg.name}: {cfg.model.kind}, input {cfg.model.image_size}x{cfg.model.image_size}x"
            f"{cfg.model.channels}, z_dim {cfg.model.z_dim}"
        )
        print(format_table(layer_table(model), counts))
    return 0


def _command_line(args: argparse.Namespace) -> str:
    return "zspace " + " ".join(shlex.quote(a) for a in args.argv)


def cmd_analyze(args: argparse.Namespace) -> int:
    from zspace.report.analyze import analyze
    from zspace.train.loop import resolve_device

    sets = [*(args.set or []), *([f"seed={args.seed}"] if args.seed is not None else [])]
    with bar("encoding", args.quiet) as progress, labelled_bars(args.quiet) as steps:
        report = analyze(
            args.source,
            config_path=args.config,
            sets=sets,
            device=str(resolve_device(args.device, key="--device")),
            only=args.only,
            out=args.out,
            split=args.split,
            command=_command_line(args),
            progress=progress,
            on_section=lambda key: log.info("analysing: %s", key),
            on_progress=steps,
            table=_table_columns(args),
            class_names=args.class_names,
        )
    log.info("report: %s", report)
    return 0


def _table_columns(args: argparse.Namespace) -> object:
    """The columns of a table source from --column/--labels/--attributes (None when none is given)."""
    from zspace.latents.tables import TableColumns

    attrs = tuple(a.strip() for a in (args.attributes or "").split(",") if a.strip())
    spec = TableColumns(column=args.column, labels=args.labels, attributes=attrs)
    return spec if spec.given else None


def _table_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--column", help="table source: the list column holding the embedding (auto when only one)")
    p.add_argument("--labels", metavar="COLUMN", help="table source: the integer or string label column")
    p.add_argument("--attributes", metavar="COL,COL", help="table source: comma-separated attribute columns")


def cmd_compare(args: argparse.Namespace) -> int:
    from zspace.report.compare import compare
    from zspace.train.loop import resolve_device

    only = [k.strip() for k in args.only.split(",") if k.strip()] if args.only else None
    report = compare(
        args.sources,
        args.out,
        config_path=args.config,
        sets=args.set or [],
        command=_command_line(args),
        only=only,
        device=str(resolve_device(args.device, key="--device")),
        table=_table_columns(args),
    )
    log.info("report: %s", report)
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    from zspace.studies import run_study

    values: dict = {k: v for k, v in (("epochs", args.epochs), ("limit", args.limit)) if v is not None}
    if args.seeds:
        try:
            values["seeds"] = tuple(int(s) for s in args.seeds.split(","))
        except ValueError:
            raise ConfigError(f"--seeds must be comma-separated integers, e.g. 0,1,2; got {args.seeds!r}") from None
    with bar(args.name, args.quiet, unit="step") as progress:
        metrics = run_study(
            args.name,
            out=args.out,
            data=args.data,
            quick=args.quick,
            seed=args.seed,
            device=args.device,
            sets=args.set or [],
            config_path=args.config,
            values=values,
            progress=progress,
            command=_command_line(args),
        )
    log.info("study %s: report in %s (%.0f s)", args.name, args.out or f"studies/{args.name}", metrics["seconds"])
    return 0


class _StudyHelp(argparse.Action):
    """``zspace study NAME --help``: the options, then every key of that study's Config with its default."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None, study=""):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)
        self.study = study

    def __call__(self, parser, namespace, values, option_string=None):
        from zspace.studies import options_help, study_module

        parser.print_help()
        print("\n" + options_help(study_module(self.study)))
        parser.exit()


THREADS = declared_arg(Annotated[int, Range(1, 2**31 - 1)], "--threads")  # above the cores: capped with a note
THREADS_HELP = "CPU threads of torch, BLAS, faiss and zspace's own pools (capped at the cores)"


def cmd_explore(args: argparse.Namespace) -> int:
    from zspace.explore import ExploreConfig, open_explorer, serve
    from zspace.explore.server import bind
    from zspace.train.loop import resolve_device

    cfg = ExploreConfig(k=args.k)
    with bind(args.host, args.port) as sock:  # before the slow part: a port in use fails at once
        with bar("encoding", args.quiet) as progress:
            device = resolve_device(args.device, key="--device")
            explorer = open_explorer(args.source, split=args.split, device=device, cfg=cfg, progress=progress,
                                     table=_table_columns(args))  # fmt: skip
        if explorer.model is None:
            print("zspace: note: no model comes with these points: they are shown, clicks decode nothing",
                  file=sys.stderr)  # fmt: skip
        if args.tsne:
            explorer.tsne.start()
        try:
            serve(explorer, sock=sock, open_browser=not args.no_browser)
        except KeyboardInterrupt:  # uvicorn and any map under way have stopped cleanly: the usual interrupt's code
            log.info("explorer stopped")
            return 130
    log.info("explorer stopped")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from zspace.cli.demo import run_demo

    index = run_demo(
        out_dir=args.out_dir, epochs=args.epochs, overwrite=True, on_section=lambda key: log.info("analysing: %s", key)
    )
    log.info("report: %s", index)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from zspace import __version__
    from zspace.sections import COMPARED, OPT_IN, default_sections

    p = argparse.ArgumentParser(prog="zspace", description="Train AEs/VAEs on images and map their latent space.")
    p.add_argument("--version", action="version", version=f"zspace {__version__}")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars, warnings only")
    after = argparse.ArgumentParser(add_help=False)  # -q/-v after the subcommand too, without resetting them
    after.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS, help="more log output")
    after.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="warnings only")
    sub = p.add_subparsers(dest="command", required=True)

    def command(name: str, **kw) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[after], **kw)

    t = command("train", help="train the model a TOML config describes")
    t.add_argument("config", help="TOML config (see configs/)")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key, e.g. model.z_dim=32")
    t.add_argument("--data", help="data path (same as --set data.path=...)")
    t.add_argument("--name", help="run name (folder under out_dir)")
    t.add_argument("--out-dir", help="parent folder of run folders (default runs)")
    t.add_argument("--epochs", type=int, help="number of epochs")
    t.add_argument("--device", help="auto, cpu, cuda, cuda:N")
    t.add_argument("--seed", type=SEED, help="seed of weights, batch order and noise (same as --set train.seed=N)")
    t.add_argument("--threads", type=THREADS, help="CPU threads of all pools; = --set train.threads=N")
    t.add_argument("--strict", action="store_true", help="a corrupt image is an error, not a skipped file")
    t.add_argument("--resume", action="store_true", help="continue the run from its last checkpoint")
    t.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    t.add_argument(
        "--from-checkpoint",
        metavar="CKPT",
        help="start this new run from another run's checkpoint, e.g. RUN/checkpoints/epoch-018.safetensors",
    )
    t.set_defaults(func=cmd_train)

    e = command("embed", help="encode a dataset with a trained run (or a model from elsewhere) into a latents folder")
    e.add_argument("run", nargs="?", help="run folder (or --model)")
    e.add_argument("--model", metavar="SCHEME:PATH",
                   help="a model from elsewhere: diffusers:PATH, a local AutoencoderKL folder")  # fmt: skip
    e.add_argument("--data", help="data path (default: the run's; with --model: the image folder, required)")
    e.add_argument("--dataset", choices=("images", "celeba"), default="images",
                   help="--model: how --data is read: any image folder, or CelebA with its attributes")  # fmt: skip
    e.add_argument("--image-size", type=int, help="--model: square side the images are resized to (default 96)")
    e.add_argument("--limit", type=int, help="--model: only the first N images of the folder")
    e.add_argument("--scaled", action="store_true", help="--model diffusers: apply the VAE's scaling_factor")
    e.add_argument("--split", choices=("train", "test", "all"), default="all")
    e.add_argument("--out", help="latents folder (default RUN/latents/SPLIT; required with --model)")
    e.add_argument("--batch-size", type=int, help="images per batch (default 512; 16 with --model)")
    e.add_argument("--eps-factor", type=float, help="VAE: scale of eps at inference (post XIV)")
    e.add_argument("--seed", type=SEED, default=0, help="seed of the VAE's eps")
    e.add_argument("--device", default="auto")
    e.set_defaults(func=cmd_embed)

    s = command("summary", help="per-layer table and parameter counts of a config's model")
    s.add_argument("config")
    s.add_argument("--set", action="append", metavar="KEY=VALUE")
    s.add_argument("--json", action="store_true", help="print the counts as JSON")
    s.set_defaults(func=cmd_summary)

    a = command("analyze", help="map the latent space of a run or latents folder into an HTML report")
    a.add_argument("source", help="run folder, latents folder, .npy/.npz/.safetensors, .parquet/.arrow/.feather/.csv")
    _table_options(a)
    a.add_argument("--config", help="analysis TOML: one table per analysis, e.g. [radius] width = 0.05")
    a.add_argument("--set", action="append", metavar="KEY=VALUE", help="override, e.g. radius.width=0.05")
    a.add_argument(
        "--only",
        help=f"comma-separated analyses of {', '.join(default_sections())} (the default), "
        f"{', '.join(OPT_IN)} (on request); e.g. radius,pca",
    )
    a.add_argument("--out", help="report folder (default SOURCE/analysis)")
    a.add_argument("--split", choices=("train", "test", "all"), default="all", help="split of a run to encode")
    a.add_argument("--device", default="auto", help="where a run's missing latents are encoded: auto, cpu, cuda:N")
    a.add_argument("--seed", type=SEED, help="seed of the analyses' random subsets (same as --set seed=N)")
    a.add_argument("--threads", type=THREADS, help=THREADS_HELP)
    a.add_argument("--class-names", metavar="FILE", help="names of classes 0..K-1, one per line (UTF-8)")
    a.set_defaults(func=cmd_analyze)

    c = command("compare", help="several runs side by side in one report")
    c.add_argument("sources", nargs="+", help="run or latents folders, embeddings files or tables")
    _table_options(c)
    c.add_argument("--out", required=True, help="report folder")
    c.add_argument("--config", help="analysis TOML (the compared analyses use its settings)")
    c.add_argument("--set", action="append", metavar="KEY=VALUE")
    c.add_argument("--only", help=f"comma-separated compared analyses of {', '.join(COMPARED)}")
    c.add_argument("--device", default="auto", help="where missing latents are encoded: auto, cpu, cuda:N")
    c.add_argument("--threads", type=THREADS, help=THREADS_HELP)
    c.set_defaults(func=cmd_compare)

    from zspace.studies import ABOUT, STUDIES

    st = command(
        "study",
        help="reproduce a published study with one command",
        description="Reproduce a study of the series. `zspace study NAME --help` lists that study's keys.",
    )
    names = st.add_subparsers(dest="name", required=True, metavar="NAME")
    for name in STUDIES:
        one = names.add_parser(name, parents=[after], add_help=False, help=ABOUT[name], description=ABOUT[name])
        one.add_argument("-h", "--help", action=_StudyHelp, study=name, help="this help and the study's keys")
        one.add_argument("--data", help="data folder or file (default: ../shared/data/...)")
        one.add_argument("--out", help=f"report folder (default studies/{name})")
        one.add_argument("--quick", action="store_true", help="the reduced, minutes-long version (its QUICK keys)")
        one.add_argument("--set", action="append", metavar="KEY=VALUE", help="set a study key (see the list below)")
        one.add_argument("--config", help="TOML file of study keys (KEY = VALUE lines)")
        one.add_argument("--seed", type=SEED, default=0, help="seeds trainings, KMeans starts and t-SNE (default 0)")
        one.add_argument("--device", help="where models train and encode: auto, cpu, cuda:N")
        one.add_argument("--threads", type=THREADS, help=THREADS_HELP)
        one.add_argument("--epochs", type=int, help="same as --set epochs=N (studies that train)")
        one.add_argument("--limit", type=int, help="same as --set limit=N (studies that train)")
        one.add_argument("--seeds", help="same as --set seeds=[A,B,...] (celeba-ae-vs-vae)")
        one.set_defaults(func=cmd_study)

    d = command("demo", help="train a small VAE on the bundled digits and write a report")
    d.add_argument("--out-dir", default="runs", help="parent folder of the demo run (default runs)")
    d.add_argument("--epochs", type=int, help="epochs (default: the demo config's)")
    d.set_defaults(func=cmd_demo)

    x = command("explore", help="look at a latent space in the browser: hover shows images, click decodes")
    x.add_argument("source", help="run folder (latents encoded first if missing), latents folder, "
                                  ".npy/.npz/.safetensors, .parquet/.arrow/.feather/.csv")  # fmt: skip
    _table_options(x)
    x.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    x.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 = any free port, logged)")
    x.add_argument("--split", choices=("train", "test", "all"), default="all", help="split of the run to show")
    x.add_argument("--k", type=int, default=8, help="nearest training images shown beside a decoded point")
    x.add_argument("--tsne", action="store_true", help="start computing the t-SNE map at once (else when asked)")
    x.add_argument("--device", default="cpu", help="device of the decoder: cpu, auto, cuda, cuda:N")
    x.add_argument("--no-browser", action="store_true", help="do not open the page in a web browser")
    x.set_defaults(func=cmd_explore)

    from zspace.cli.generate import add_commands  # sample, reconstruct, interpolate, quality

    add_commands(command)
    from zspace.cli.export import add_command as add_export

    add_export(command, _table_options, _table_columns)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
    except ConfigError as e:  # a flag checked by its declaration (zspace.config.declared_arg)
        print(f"zspace: error: {e}", file=sys.stderr)
        _tell_other_processes(str(e))
        return 2
    except SystemExit as e:  # argparse's usage error (--help exits 0)
        if e.code not in (0, None):
            _tell_other_processes("a bad command line (see its usage message)")
        raise
    args.argv = argv
    if getattr(args, "threads", None) is not None:  # >= 1 by its declaration (THREADS)
        from zspace.io.limits import set_thread_budget, usable_threads

        args.threads, note = usable_threads(args.threads)
        if note:
            print(f"zspace: note: {note}", file=sys.stderr)
        set_thread_budget(args.threads)  # torch, BLAS/OpenMP, faiss and zspace's own pools
    main_process = os.environ.get("RANK", "0") == "0"  # under torchrun, one process speaks for all
    if not main_process:
        args.quiet = True
    setup_logging(-1 if args.quiet else args.verbose)
    say = (lambda line: print(line, file=sys.stderr)) if main_process else (lambda line: None)
    try:
        return args.func(args)
    except ZSpaceError as e:
        _tell_other_processes(str(e))
        say(f"zspace: error: {e}")
        return 2
    except TrainingDiverged as e:
        say(f"zspace: error: {e}")
        return 1
    except DistributedFailure as e:  # each process says which one it is
        print(f"zspace: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        _tell_other_processes("interrupted (Ctrl-C)", wait=False)
        say("zspace: interrupted; a run continues from its last checkpoint with --resume")
        return 130
    except OSError as e:  # a full disk, a read-only folder, a name too long: one line, never a traceback
        _tell_other_processes(os_error_message(e, args.command))
        print(f"zspace: error: {os_error_message(e, args.command)}", file=sys.stderr)
        return 2
    except (MemoryError, RuntimeError) as e:
        if not _is_out_of_memory(e):
            raise
        print(f"zspace: error: {args.command}: out of memory ({_first_line(e)}); use smaller sizes", file=sys.stderr)
        return 2


def _tell_other_processes(line: str, *, wait: bool = True) -> None:
    """Under a launcher (torchrun), a process that stops before training started tells the other processes, which
    then stop with one line instead of waiting for it (zspace.train.distributed.refuse)."""
    if os.environ.get("WORLD_SIZE", "1").strip() not in ("", "0", "1"):
        from zspace.train import distributed

        distributed.refuse(line, wait=wait)


def os_error_message(e: OSError, command: str) -> str:
    """``train: cannot write /runs/x/checkpoint.safetensors: No space left on device``."""
    reason = e.strerror or _first_line(e) or type(e).__name__
    path = e.filename if e.filename is not None else ""
    verb = "cannot write" if e.errno in _WRITE_ERRNOS else "cannot access"
    if e.filename2 is not None:
        path = f"{path} -> {e.filename2}"
    return f"{command}: {verb} {path}: {reason}" if path else f"{command}: {reason}"


_WRITE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EFBIG, errno.EEXIST, errno.ENOTEMPTY}


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _is_out_of_memory(e: BaseException) -> bool:
    return isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError" or "can't allocate memory" in str(e)


if __name__ == "__main__":
    sys.exit(main())
