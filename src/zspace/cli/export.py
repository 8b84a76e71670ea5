"""``zspace export``: one row per latent point (coordinates, labels, per-point numbers) as Parquet, Arrow or CSV.

It only parses arguments and calls :func:`zspace.report.export.export`; every option is declared once, on
:class:`~zspace.report.export.ExportConfig`, and parsed against that declaration here.
"""

from __future__ import annotations

import argparse
import logging
import typing
from collections.abc import Callable

from zspace.config import SEED_ARG as SEED
from zspace.config import declared_arg, declared_help

log = logging.getLogger("zspace")


def _declared(name: str, flag: str) -> Callable[[str], typing.Any]:
    from zspace.report.export import ExportConfig

    return declared_arg(typing.get_type_hints(ExportConfig, include_extras=True)[name], flag)


def _help(name: str, text: str) -> str:
    from zspace.report.export import ExportConfig

    return f"{text} ({declared_help(ExportConfig, name)}; default {getattr(ExportConfig, name)})"


def add_command(
    command: Callable[..., argparse.ArgumentParser], table_options: Callable, table_columns: Callable
) -> None:
    """Register ``zspace export`` with ``command(name, help=...)`` (the main parser's subcommand factory);
    ``table_options(parser)`` adds analyze's --column/--labels/--attributes, ``table_columns(args)`` reads them."""
    from zspace.report.export import KEYS, SUFFIXES

    p = command(
        "export",
        help="one row per latent point (2-D maps, labels, radius, nn distance, LID, void, cluster) as a table",
        description="Write one row per latent point to a Parquet, Arrow/Feather or CSV table (by --to's suffix), "
        "readable by pandas, DuckDB, embedding-atlas and latent-scope.",
    )
    p.add_argument("source", help="run folder, latents folder, .npy/.npz/.safetensors, .parquet/.arrow/.feather/.csv")
    table_options(p)
    p.add_argument("--to", required=True, metavar="TABLE", help=f"the table to write: {', '.join(SUFFIXES)}")
    p.add_argument("--only", help=f"comma-separated column groups of {', '.join(KEYS)} (default: all)")
    p.add_argument("--seed", type=SEED, default=0, help="seeds subsamples, t-SNE, UMAP and KMeans (default 0)")
    p.add_argument("--k", type=_declared("k", "--k"), default=0,
                   help=_help("k", "KMeans clusters; 0 = the elbow's Kneedle pick"))  # fmt: skip
    for name, text in (
        ("tsne_max", "t-SNE is fitted on at most this many points, the others placed on its map"),
        ("umap_max", "UMAP is fitted on at most this many points, the others placed on its map"),
        ("neighbours_max", "nn_distance, lid and void on at most this many points (the others null)"),
    ):
        flag = "--" + name.replace("_", "-")
        p.add_argument(flag, dest=name, type=_declared(name, flag), default=None, help=_help(name, text))
    p.add_argument("--no-vectors", action="store_true", help="leave the embedding itself (column z) out")
    p.add_argument("--class-names", metavar="FILE", help="names of classes 0..K-1, one per line (UTF-8)")
    p.add_argument("--split", choices=("train", "test", "all"), default="all", help="split of a run to encode")
    p.add_argument("--device", default="auto", help="where a run's missing latents are encoded: auto, cpu, cuda:N")
    p.set_defaults(func=cmd_export, table_columns=table_columns)


def cmd_export(args: argparse.Namespace) -> int:
    from zspace.cli.progress import bar
    from zspace.report.export import export
    from zspace.train.loop import resolve_device

    options = {"only": args.only, "seed": args.seed, "k": args.k, "vectors": not args.no_vectors}
    for name in ("tsne_max", "umap_max", "neighbours_max"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    if args.only is None:
        options.pop("only")
    with bar("encoding", args.quiet) as progress:
        table = export(
            args.source,
            args.to,
            table=args.table_columns(args),
            class_names=args.class_names,
            split=args.split,
            device=str(resolve_device(args.device, key="--device")),
            progress=progress,
            on_step=lambda key: log.info("computing: %s", key),
            **options,
        )
    log.info("wrote %d rows x %d columns to %s", table.num_rows, table.num_columns, args.to)
    return 0
