"""Per-axis densities: the histogram of every latent coordinate and the off-centre or broad axes (SPEC 4.2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from zspace.analyses.axes import AxisHistograms, AxisStats, axis_histograms, axis_stats
from zspace.config import Len, Range
from zspace.errors import ConfigError
from zspace.figures.axes import all_axes, chosen_axes
from zspace.sections.base import Context, FigureItem, Section, Table, celeba_comparable

TITLE = "Per-axis densities"
# The series' CelebA AE (z_dim 256): axis -> (centre, width) of its off-centre, broad axes.
PUBLISHED = {52: (5.0, 8.0), 130: (-2.0, 9.0), 171: (0.7, 5.0), 200: (0.5, 11.0), 221: (-1.0, 8.0)}


@dataclass
class Config:
    width: Annotated[float, Range(1e-9, 1e6)] = 0.25  # interval of the per-axis histograms (the series: 0.25)
    # axes (0-based, like the post's 52) drawn alone; () = the n_chosen top-ranked
    chosen: Annotated[tuple[Annotated[int, Range(0, 65535)], ...], Len(0, 4096)] = ()
    n_chosen: Annotated[int, Range(0, 4096)] = 4  # axes drawn alone when ``chosen`` is empty
    # width = half the tail .. 1 - tail quantile range (1.96 std for a Gaussian ~ the post's)
    tail: Annotated[float, Range(0, 0.49)] = 0.025
    # flag an axis whose median is off the bulk's by more than this many bulk widths
    centre_threshold: Annotated[float, Range(0, 1e6)] = 1.0
    # flag an axis wider than this many bulk widths (bulk width: median over axes)
    breadth_threshold: Annotated[float, Range(0, 1e6)] = 2.0
    # rows of the ranked table (the post listed 12 axes); all flagged axes at least
    table_rows: Annotated[int, Range(0, 65536)] = 12
    # at most this many histogram intervals (centred on 0); values beyond go to the outer ones
    max_bins: Annotated[int, Range(1, 10**6)] = 4000
    chunk: Annotated[int, Range(1, 2**24)] = 16_384  # rows per block


def run(ctx: Context, cfg: Config) -> Section:
    validate(cfg)
    Z = ctx.latents.z
    z_dim = int(Z.shape[1])
    notes: list[str] = []
    hist = axis_histograms(Z, width=cfg.width, max_bins=cfg.max_bins, chunk=cfg.chunk)
    if hist.clipped:
        notes.append(
            f"{hist.clipped:,} coordinates lie beyond the {cfg.max_bins} intervals "
            f"[{hist.edges[0]:g}, {hist.edges[-1]:g}) and are counted in the outermost ones"
        )
    st = axis_stats(
        Z,
        hist=hist,
        tail=cfg.tail,
        centre_threshold=cfg.centre_threshold,
        breadth_threshold=cfg.breadth_threshold,
        chunk=cfg.chunk,
    )
    chosen = _chosen(cfg, st, z_dim, notes)
    flagged = [int(a) for a in st.ranking if st.flagged[a]]
    section = Section(key="axes", title=TITLE, notes=notes, figures=_figures(hist, st, chosen, flagged, cfg))
    section.metrics = {**st.to_metrics(cfg.table_rows), "chosen": chosen, "histogram_width": cfg.width}
    series = celeba_comparable(ctx, z_dim)
    section.tables = [_table(st, cfg, series)]
    section.summary = _summary(st, flagged, z_dim, series)
    return section


def _figures(hist: AxisHistograms, st: AxisStats, chosen: list[int], flagged: list[int], cfg: Config) -> list:
    all_caption = (
        f"Number of points per interval of width {cfg.width:g} along each of the {len(hist.counts)} axes (grey); "
        f"the {min(len(flagged), 10)} highest-ranked flagged axes in colour. {_definitions(cfg)}"
    )
    chosen_caption = (
        f"Axes {', '.join(map(str, chosen))} alone: histogram (width {cfg.width:g}), median (red), central "
        f"{100 * (1 - 2 * cfg.tail):g} % range (shaded) and, dashed, a Gaussian with the bulk's centre "
        f"{st.bulk_centre:.3g} and width {st.bulk_width:.3g}."
    )
    return [
        FigureItem("all", all_axes(hist, st, highlight=flagged[:10]), all_caption),
        FigureItem("chosen", chosen_axes(hist, st, chosen), chosen_caption),
    ]


def validate(cfg: Config) -> None:
    if cfg.width <= 0 or not 0 < cfg.tail < 0.5 or cfg.centre_threshold < 0 or cfg.breadth_threshold < 0:
        raise ConfigError("axes: width must be > 0, tail in (0, 0.5) and the thresholds >= 0")
    if cfg.n_chosen < 0 or cfg.table_rows < 0 or cfg.max_bins < 1 or cfg.chunk < 1:
        raise ConfigError("axes: n_chosen and table_rows must be >= 0, max_bins and chunk >= 1")


def _chosen(cfg: Config, st: AxisStats, z_dim: int, notes: list[str]) -> list[int]:
    if not cfg.chosen:
        return [int(a) for a in st.ranking[: cfg.n_chosen]]
    chosen = [a for a in cfg.chosen if 0 <= a < z_dim]
    if len(chosen) < len(cfg.chosen):
        dropped = sorted(set(cfg.chosen) - set(chosen))
        notes.append(f"chosen axes {dropped} do not exist in a {z_dim}-dimensional space and are left out")
    return chosen or [int(a) for a in st.ranking[: cfg.n_chosen]]


def _definitions(cfg: Config) -> str:
    return (
        f"Centre: the median; width: half the {100 * cfg.tail:g} - {100 * (1 - cfg.tail):g} % quantile range "
        f"(1.96 std for a Gaussian, comparable to the post's 'width'); an axis is flagged when its centre is more "
        f"than {cfg.centre_threshold:g} bulk widths from the median centre or it is more than "
        f"{cfg.breadth_threshold:g} times the median width."
    )


def _table(st: AxisStats, cfg: Config, series: bool) -> Table:
    rows = [
        [
            r["axis"],
            round(r["centre"], 3),
            round(r["peak"], 3),
            round(r["width"], 3),
            round(r["offset"], 2),
            round(r["breadth"], 2),
            round(r["score"], 2),
            "yes" if r["flagged"] else "no",
        ]
        for r in st.ranked_rows(cfg.table_rows)
    ]
    published = "; ".join(f"{a}: centre {c:g}, width {w:g}" for a, (c, w) in PUBLISHED.items())
    caption = (
        f"Axes ranked by score = hypot(offset, max(breadth - 1, 0)); offset in bulk widths "
        f"({st.bulk_width:.3g}) from the median centre ({st.bulk_centre:.3g}), breadth = width / bulk width. "
        f"Peak: centre of the fullest interval of {cfg.width:g}. {_definitions(cfg)}"
    )
    if series:
        caption += f" Published (CelebA AE, z_dim 256): {published}; most other axes Gaussian around 0, width about 2."
    columns = ["axis", "centre (median)", "peak", "width", "offset", "breadth", "score", "flagged"]
    return Table("Off-centre and broad axes", columns, rows, caption)


def _summary(st: AxisStats, flagged: list[int], z_dim: int, series: bool) -> str:
    text = (
        f"Across the {z_dim} axes the median centre is {st.bulk_centre:.3g} and the median width "
        f"{st.bulk_width:.3g} (half the central {100 * (1 - 2 * st.tail):g} % range; 1.96 for a standard normal). "
        f"{len(flagged)} axes are off-centre or broad"
    )
    if flagged:
        a = flagged[0]
        text += (f"; the most prominent, axis {a}, has centre {st.centre[a]:.3g} and width {st.width[a]:.3g}") + (
            " (the series' CelebA AE: about 5 such axes, e.g. axis 52 with centre 5 and width 8)" if series else ""
        )
    return text + "."
