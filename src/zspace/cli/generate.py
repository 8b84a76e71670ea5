"""``zspace sample``, ``zspace reconstruct``, ``zspace interpolate``, ``zspace quality``: the generative commands.

Like the rest of the command line, these only parse arguments and chain library calls (:mod:`zspace.latents.generate`,
:mod:`zspace.latents.samplers`, :mod:`zspace.latents.feature_net`, :mod:`zspace.latents.quality`); grids are drawn by
:mod:`zspace.figures.decode`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import numpy as np

from zspace.config import SEED_ARG as SEED
from zspace.config import Range
from zspace.errors import ConfigError, DataError

log = logging.getLogger("zspace")

SAMPLER_NAMES = ("normal", "gaussian", "gmm")
Count = Annotated[int, Range(1, None)]  # --n, --ncols, --steps, ...: the upper bound is the memory check's
WITH_MODEL = "run folder, or a latents folder with a model (zspace embed --model)"


def _components(value: str) -> int | str:
    """``--components``: ``bic`` or a GMM size >= 1, checked when parsed (before any encoding); one line if bad."""
    if value == "bic":
        return value
    try:
        return _count("--components")(value)
    except ConfigError:
        raise ConfigError(f"--components must be 'bic' or an integer >= 1, got {value!r}") from None


def _load(args: argparse.Namespace):
    from zspace.runs.folder import load_run
    from zspace.train.loop import resolve_device

    return load_run(args.run, device=resolve_device(args.device, key="--device"))


def _sampler(run, args: argparse.Namespace, progress=None):
    from zspace.latents.samplers import fit_sampler

    options = {"n_components": args.components} if args.sampler == "gmm" else {}
    return fit_sampler(run, args.sampler, refit=args.refit, progress=progress, **options)


def _dataset(run, args: argparse.Namespace):
    from zspace.data import load_dataset

    cfg = run.config.data
    if getattr(args, "data", None):
        cfg.path = str(Path(args.data).expanduser().resolve())
    return load_dataset(cfg)


def _save(fig, out: Path) -> None:
    """Write a figure as PNG in one rename (a reader never sees half a file), recorded as zspace's."""
    import io

    from zspace.io.atomic import write_owned_file

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    write_owned_file(out, buf.getvalue(), "images")  # replaces only a file a zspace manifest records
    log.info("wrote %s", out)


def _out(args: argparse.Namespace, name: str) -> Path:
    """The image to write (``--out``, else ``RUN/generated/name``), refused before any work when it is no .png or
    a file zspace may not replace (the rule :func:`_save` applies again when it writes)."""
    from zspace.io.atomic import check_owned_file

    out = Path(args.out) if args.out else Path(args.run) / "generated" / name
    if out.suffix.lower() != ".png":
        raise ConfigError(f"--out must name a .png file, got {out}")
    check_owned_file(out)
    return out


def cmd_sample(args: argparse.Namespace) -> int:
    from zspace.cli.progress import bar
    from zspace.figures.decode import image_grid
    from zspace.io.limits import GRID_BYTES_PER_IMAGE, check_count
    from zspace.latents.generate import sample, to_numpy_images

    check_count(args.n, "--n", GRID_BYTES_PER_IMAGE, f"a grid of {args.n} decoded images")
    out = _out(args, f"sample-{args.sampler}.png")
    if _is_latents_folder(args.run):
        name, model, sampler = _latents_sampler(args)
    else:
        run = _load(args)
        with bar("encoding", args.quiet) as progress:
            sampler = _sampler(run, args, progress)
        name, model = run.config.name, run.model
    images = to_numpy_images(sample(model, args.n, sampler=sampler, seed=args.seed))
    title = f"{name}: {args.n} decoded samples, sampler {_label(sampler)}"
    _save(image_grid(images, ncols=args.ncols, title=title), out)
    return 0


def _is_latents_folder(path: str) -> bool:
    from zspace.runs.folder import CONFIG

    return not (Path(path) / CONFIG).is_file() and (Path(path) / "z.npy").is_file()


def _latents_model(args: argparse.Namespace):
    """A latents folder's source and its model: its run's, or the one ``embed --model`` recorded (refused when its
    weights changed since); a latents folder without either is one line."""
    from zspace.report.analyze import open_source
    from zspace.train.loop import resolve_device

    src = open_source(args.run, device=str(resolve_device(args.device, key="--device")))
    model = src.model if src.model is not None else (src.run.model if src.run is not None else None)
    if model is None:
        raise DataError(f"{args.run}: these latents come without a model to decode with (a run, or embed --model)")
    return src, model


def _latents_sampler(args: argparse.Namespace):
    """``zspace sample LATENTS``: the latents' model and a sampler fitted on all their z, kept in
    ``LATENTS/samplers/`` while ``z.npy`` stays the same (``--refit`` fits anew)."""
    from zspace.latents.samplers import fit_latents_sampler

    src, model = _latents_model(args)
    options = {"n_components": args.components} if args.sampler == "gmm" else {}
    sampler = fit_latents_sampler(args.run, src.latents.z, args.sampler, refit=args.refit, **options)
    return src.name, model, sampler


def _decoder(args: argparse.Namespace):
    """``(name, model, dataset(), latents)`` of a run folder, or of a latents folder with a model (``zspace embed
    --model``: its images are the ones it was embedded from; ``latents`` is None for a run). ``dataset()`` loads the
    images when first called, None when a latents folder names none."""
    if not _is_latents_folder(args.run):
        run = _load(args)
        return run.config.name, run.model, lambda: _dataset(run, args), None
    if getattr(args, "data", None):
        raise ConfigError("--data goes with a run folder; a latents folder uses the images it was embedded from")
    src, model = _latents_model(args)
    if src.run is not None:
        return src.name, model, lambda: _dataset(src.run, args), src.latents
    return src.name, model, lambda: src.dataset, src.latents


def _label(sampler) -> str:
    if sampler.kind == "gmm":
        return f"gmm ({sampler.n_components_} components)"
    return "N(0, I)" if sampler.kind == "normal" else "Gaussian fitted on z"


def read_npy(path: str | Path, key: str) -> np.ndarray:
    """A plain numeric array from a ``.npy`` file given by option ``key``: never a pickle; an object, text,
    truncated or corrupt file, a non-numeric dtype, or one too large for memory is a one-line DataError/ConfigError.
    """
    from zspace.io.limits import check_memory

    p = Path(path)
    if not p.is_file():
        raise DataError(f"{key}: file not found: {p}")
    try:
        arr = np.load(p, mmap_mode="r", allow_pickle=False)  # the header only, until the shape is checked
    except (ValueError, OSError, EOFError) as e:
        first = (str(e).splitlines() or [type(e).__name__])[0]
        raise DataError(f"{key}: {p} is not a plain numeric .npy file ({first})") from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf":
        raise DataError(f"{key}: {p} holds {getattr(arr, 'dtype', type(arr).__name__)} values, not plain numbers")
    check_memory(4.0 * arr.nbytes, key, f"loading {p.name} ({list(arr.shape)}, {arr.dtype})")
    return np.array(arr)


def read_images(path: str) -> np.ndarray:
    """Images from a ``.npy`` file (no pickles) or one PNG/JPEG file, as an array for zspace.latents.generate."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"image file not found: {p}")
    if p.suffix.lower() == ".npy":
        return read_npy(p, "--images")
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(p) as im:
            arr = np.asarray(im.convert("L" if im.mode in ("L", "I;16", "I", "1") else "RGB"))
    except (UnidentifiedImageError, OSError) as e:
        raise DataError(f"{p} is not a readable image ({e})") from None
    return arr[..., None] if arr.ndim == 2 else arr


def cmd_reconstruct(args: argparse.Namespace) -> int:
    from zspace.figures.decode import reconstruction_pairs
    from zspace.io.limits import GRID_BYTES_PER_IMAGE, check_count
    from zspace.latents.generate import as_images, reconstruct, to_numpy_images

    check_count(args.n, "--n", 2 * GRID_BYTES_PER_IMAGE, f"a grid of {args.n} images beside their reconstructions")
    out = _out(args, "reconstruct.png")
    name, model, dataset, _latents = _decoder(args)
    if args.images:
        images = read_images(args.images)
        n = len(images) if images.ndim == 4 else 1
        check_count(n, "--images", 2 * GRID_BYTES_PER_IMAGE, f"a grid of {n} images beside their reconstructions")
    else:
        data = dataset()
        if data is None:
            raise DataError(f"{args.run}: these latents name no images to reconstruct; give some with --images")
        rows = data.indices(args.split)
        rows = np.sort(np.random.default_rng(args.seed).choice(rows, min(args.n, len(rows)), replace=False))
        images = np.asarray(data.x[rows])
    originals = to_numpy_images(as_images(images, model))
    decoded = to_numpy_images(reconstruct(model, images))
    fig = reconstruction_pairs(originals, decoded, ncols=args.ncols, title=f"{name}: reconstructions")
    _save(fig, out)
    return 0


def cmd_interpolate(args: argparse.Namespace) -> int:
    from zspace.figures.decode import interpolation_grid
    from zspace.latents.generate import interpolate, to_numpy_images

    _check_paths(args.pairs if not args.z else 1, args.steps, "--pairs")
    out = _out(args, f"interpolate-{args.path}.png")
    name, model, dataset, latents = _decoder(args)
    if args.z:
        ends = read_npy(args.z, "--z")
        if ends.ndim != 2 or len(ends) < 2 or len(ends) % 2:  # an odd last row would be dropped unsaid
            raise DataError(f"--z needs an array (2 * pairs, z_dim) of path ends, got shape {list(ends.shape)}")
        _check_paths(len(ends) // 2, args.steps, "--z")
        pairs = [(ends[i], ends[i + 1]) for i in range(0, len(ends) - 1, 2)]
        labels = [f"z[{i}] -> z[{i + 1}]" for i in range(0, len(ends) - 1, 2)]
    elif (data := dataset()) is not None:
        rows = data.indices(args.split)
        if len(rows) < 2:
            raise DataError(f"split {args.split!r} has fewer than 2 images to interpolate between")
        picks = np.random.default_rng(args.seed).choice(rows, size=(args.pairs, 2), replace=len(rows) < 2 * args.pairs)
        pairs = [(np.asarray(data.x[a]), np.asarray(data.x[b])) for a, b in picks]
        labels = [f"{a} -> {b}" for a, b in picks]
    else:  # a latents folder whose images are gone: paths between its own points
        z = latents.z
        if len(z) < 2:
            raise DataError(f"{args.run}: fewer than 2 latent points to interpolate between")
        picks = np.random.default_rng(args.seed).choice(len(z), size=(args.pairs, 2), replace=len(z) < 2 * args.pairs)
        pairs = [(np.asarray(z[a], np.float32), np.asarray(z[b], np.float32)) for a, b in picks]
        labels = [f"z row {a} -> {b}" for a, b in picks]
    paths = np.stack([to_numpy_images(interpolate(model, a, b, steps=args.steps, path=args.path)) for a, b in pairs])
    fig = interpolation_grid(paths, title=f"{name}: {args.path} paths", row_labels=labels)
    _save(fig, out)
    return 0


def _check_paths(pairs: int, steps: int, key: str) -> None:
    """Refuse, before anything is loaded, a grid of ``pairs`` x ``steps`` decoded images too large for memory."""
    from zspace.io.limits import GRID_BYTES_PER_IMAGE, check_count

    what = f"{pairs} paths of {steps} decoded images"
    larger, smaller = sorted([(steps, "--steps", pairs), (pairs, key, steps)], key=lambda t: t[0], reverse=True)
    for n, name, other in (larger, smaller):  # the larger of the two is named when the grid is too large
        check_count(n, name, other * GRID_BYTES_PER_IMAGE, what)


def cmd_quality(args: argparse.Namespace) -> int:
    from zspace.cli.progress import bar
    from zspace.latents.feature_net import chance_warning, data_features, feature_network, generated_features
    from zspace.latents.quality import NAME, check_cost, score

    run = _load(args)
    m = getattr(run.config, "model", None)
    check_cost(args.n, args.real, int(getattr(m, "image_size", 96) or 96) ** 2 * int(getattr(m, "channels", 3) or 3))
    data = _dataset(run, args)
    device = next(run.model.parameters()).device
    net = feature_network(data, device=device)
    real = data_features(net, data, "test", args.real, seed=args.seed)
    with bar("encoding", args.quiet) as progress:
        sampler = _sampler(run, args, progress)
    q = score(real, generated_features(net, run.model, sampler, args.n, seed=args.seed))
    result = {"measure": f"{NAME} (features: {net.describe()})", "sampler": _label(sampler), **q.to_dict()}
    warning = chance_warning(net, data)
    if warning:
        result["warning"] = warning
        print(f"zspace: warning: {warning}", file=sys.stderr)
    print(json.dumps(result) if args.json else _quality_line(result))
    return 0


def _quality_line(r: dict) -> str:
    return (
        f"{r['sampler']}: {r['measure']}\n  FID {r['fid']:.4g}  precision {r['precision']:.3f}  recall "
        f"{r['recall']:.3f}  density {r['density']:.3f}  coverage {r['coverage']:.3f}  "
        f"({r['n_fake']} samples vs {r['n_real']} test images, k = {r['k']})"
    )


def _count(flag: str):
    """The ``type=`` of a count flag (``--n``, ``--steps``, ...): an int >= 1 by declaration, a bad value one line."""
    from zspace.config import declared_arg

    return declared_arg(Count, flag)


def _common(p: argparse.ArgumentParser, default_out: str, what: str = "run folder") -> None:
    p.add_argument("run", help=what)
    p.add_argument("--out", help=f"PNG file to write (default RUN/generated/{default_out})")
    p.add_argument("--seed", type=SEED, default=0, help="seeds the samples or the choice of images")
    p.add_argument("--device", default="cpu", help="cpu, auto, cuda, cuda:N")


def _sampler_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sampler", choices=SAMPLER_NAMES, default="normal",
                   help="normal: the prior N(0, I); gaussian: one Gaussian fitted on the training z; gmm: a Gaussian "
                        "mixture fitted on them (kept in RUN/samplers/ or LATENTS/samplers/)")  # fmt: skip
    p.add_argument("--components", type=_components, default="bic", help="GMM size, or bic (default) to choose it")
    p.add_argument(
        "--refit", action="store_true", help="fit the sampler again even if RUN/samplers/ (LATENTS/samplers/) has it"
    )


def add_commands(add) -> None:
    """Add the generative subcommands; ``add(name, **kw)`` makes one subparser (the CLI's, with -q/-v)."""
    s = add("sample", help="decode samples of the prior or of a density fitted on the latent points")
    _common(s, "sample-SAMPLER.png", WITH_MODEL)
    _sampler_options(s)
    s.add_argument("--n", type=_count("--n"), default=64, help="number of samples (default 64)")
    s.add_argument("--ncols", type=_count("--ncols"), default=8, help="images per grid row")
    s.set_defaults(func=cmd_sample)

    r = add("reconstruct", help="images beside their reconstructions (encoded and decoded)")
    _common(r, "reconstruct.png", WITH_MODEL)
    r.add_argument("--images", help="a .npy array of images (N, H, W, C) or (N, C, H, W), uint8 or [0, 1] floats, "
                                    "or one PNG/JPEG file (default: random images of the run's data, or of the "
                                    "images embedded)")  # fmt: skip
    r.add_argument("--data", help="data path (default: the run's)")
    r.add_argument("--split", choices=("train", "test", "all"), default="test")
    r.add_argument("--n", type=_count("--n"), default=20, help="number of random images (default 20)")
    r.add_argument("--ncols", type=_count("--ncols"), default=10, help="images per grid row")
    r.set_defaults(func=cmd_reconstruct)

    i = add("interpolate", help="decoded straight or spherical paths between data points")
    _common(i, "interpolate-PATH.png", WITH_MODEL)
    i.add_argument("--path", choices=("linear", "slerp"), default="linear", help="straight line or great circle")
    i.add_argument("--steps", type=_count("--steps"), default=10, help="images per path, both ends included (>= 2)")
    i.add_argument(
        "--pairs",
        type=_count("--pairs"),
        default=4,
        help="random pairs of images of the run's data (or of the images embedded, else of latent points)",
    )
    i.add_argument("--z", help="a .npy array (2 * P, z_dim): rows 0-1, 2-3, ... are the ends of P paths")
    i.add_argument("--data", help="data path (default: the run's)")
    i.add_argument("--split", choices=("train", "test", "all"), default="test")
    i.set_defaults(func=cmd_interpolate)

    q = add("quality", help="zspace-FID, precision, recall, density, coverage of a sampler's images")
    q.add_argument("run", help="run folder")
    _sampler_options(q)
    q.add_argument("--n", type=_count("--n"), default=1000, help="generated images (default 1000)")
    q.add_argument(
        "--real", type=_count("--real"), default=2000, help="test images to compare with, at most (default 2000)"
    )
    q.add_argument("--data", help="data path (default: the run's)")
    q.add_argument("--seed", type=SEED, default=0)
    q.add_argument("--device", default="cpu", help="cpu, auto, cuda, cuda:N")
    q.add_argument("--json", action="store_true", help="print the scores as JSON")
    q.set_defaults(func=cmd_quality)
