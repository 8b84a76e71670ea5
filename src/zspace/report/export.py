"""Results out: one row per latent point, with its 2-D coordinates and the per-point numbers of the analyses.

``zspace export LATENTS --to table.parquet`` and :func:`export` build one ``pyarrow.Table`` that pandas, DuckDB,
embedding-atlas and latent-scope read as it is (plain columns; the embedding itself as the fixed-size list column
``z``, so those tools can project it again):

=================  ================================================================================================
column             what
=================  ================================================================================================
``index``          the item of each row in its source dataset (``Latents.index``)
``label``          the integer label, and ``label_name`` where class names are known
attributes         one float column per attribute, by its name (``attr_NAME`` when the name is taken)
``z``              fixed-size list of float32 (z_dim), left out with ``vectors=False`` (``--no-vectors``)
``pca_x, pca_y``   coordinates on the first PCA plane (PC1, PC2; :mod:`zspace.analyses.pca`)
``tsne_x, tsne_y`` openTSNE map (:mod:`zspace.analyses.tsne`); above ``tsne_max`` points it is fitted on a seeded
                   subsample and the other points are placed on it with openTSNE's ``TSNEEmbedding.transform``
``umap_x, umap_y`` UMAP map (:func:`zspace.analyses.umap.fit_umap`); above ``umap_max`` points fitted on a seeded
                   subsample, the other points placed with ``UMAP.transform``
``radius``         ||z||
``nn_distance``    distance to the nearest other point (exact, :func:`~zspace.analyses.manifold_nn.neighbour_distances`)
``lid``            local intrinsic dimension: Levina-Bickel MLE on ``lid_k`` neighbours
                   (:func:`~zspace.analyses.manifold_id.local_dimensions`); null where undefined (duplicates)
``void``           the point lies in a void as the manifold analysis defines one: its nearest other point is farther
                   than the ``void_quantile`` of all nearest-neighbour distances
                   (:func:`~zspace.analyses.manifold_nn.in_void`)
``cluster``        KMeans cluster id (Lloyd, as the elbow analysis fits); ``k = 0`` takes the pronounced Kneedle elbow
                   of a Lloyd elbow curve on at most ``elbow_max`` points, else :data:`DEFAULT_K`
=================  ================================================================================================

The exact neighbour search behind ``nn_distance``, ``lid`` and ``void`` is quadratic: above ``neighbours_max``
points it runs on a seeded subsample (neighbours among the subsample) and the other rows are null. Every choice
of this kind (what each coordinate was fitted on, how many points were placed, the k and how it was chosen) is
recorded in the table's metadata: the Parquet/Arrow schema key ``zspace`` holds a JSON object (layout
``zspace.export/1``) with the zspace version, the source, the seed and one entry per column group. A CSV has no
place for metadata or list columns: there ``z`` becomes the columns ``z_0 .. z_{d-1}`` and the metadata is not
written.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np

from zspace.config import Len, OneOf, Range, Seed, check_declared
from zspace.errors import ConfigError, DataError
from zspace.latents.embedding import Latents

log = logging.getLogger(__name__)

FORMAT = "zspace.export/1"
KEYS = ("pca", "tsne", "umap", "radius", "nn", "lid", "void", "cluster")  # --only: the column groups
COLUMNS = {
    "pca": ("pca_x", "pca_y"),
    "tsne": ("tsne_x", "tsne_y"),
    "umap": ("umap_x", "umap_y"),
    "radius": ("radius",),
    "nn": ("nn_distance",),
    "lid": ("lid",),
    "void": ("void",),
    "cluster": ("cluster",),
}
SUFFIXES = {".parquet": "parquet", ".csv": "csv", ".arrow": "arrow", ".feather": "arrow"}
DEFAULT_K = 10  # clusters when k = 0 and the elbow curve has no Kneedle point
# The ks of the elbow curve that picks k: every k up to 20 (so that 2 or 5 clusters are found exactly, and k = 1, the
# data's own spread, anchors the curve), then every second k up to 80 (the elbow analysis' range).
ELBOW_KS = np.r_[np.arange(1, 21), np.arange(22, 81, 2)]
NEIGHBOURS = ("nn", "lid", "void")
Big = Annotated[int, Range(4, 2**31 - 1)]


@dataclass
class ExportConfig:
    """What :func:`export_table` computes; every option declared (checked by ``check_declared``)."""

    # column groups computed (index, labels, attributes and z always come along)
    only: Annotated[tuple[Annotated[str, OneOf(*KEYS)], ...], Len(0, len(KEYS))] = KEYS
    seed: Seed = 0  # seeds every subsample, PCA subset, t-SNE, UMAP and KMeans
    k: Annotated[int, Range(0, 100000)] = 0  # KMeans clusters; 0 = the elbow's pick, else DEFAULT_K
    tsne_max: Big = 20_000  # t-SNE fitted on at most this many points; the others are placed on the map
    umap_max: Big = 50_000  # UMAP fitted on at most this many points; the others are placed with its transform
    neighbours_max: Big = 200_000  # exact neighbour search (nn_distance, lid, void) on at most this many points
    elbow_max: Big = 20_000  # points of the elbow curve that picks k when k = 0
    pca_fit_max: Big = 200_000  # PCA fitted on at most this many points (as the pca analysis)
    lid_k: Annotated[int, Range(2, 10000)] = 20  # neighbours of the local dimension (the manifold analysis' k)
    void_quantile: Annotated[float, Range(0.001, 0.999)] = 0.95  # the manifold analysis' void threshold quantile
    vectors: bool = True  # the embedding itself as the fixed-size list column z


def parse_only(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"pca,tsne"`` or ``["pca", "tsne"]`` -> ``("pca", "tsne")``; an unknown name is a ConfigError naming it."""
    if text is None:
        return KEYS
    items = [s.strip() for s in (text.split(",") if isinstance(text, str) else text) if str(s).strip()]
    unknown = [s for s in items if s not in KEYS]
    if unknown:
        raise ConfigError(f"--only: unknown column group {unknown[0]!r} (known: {', '.join(KEYS)})")
    return tuple(dict.fromkeys(items))


def _rng(seed: int, salt: int) -> np.random.Generator:
    return np.random.default_rng([seed, salt])


def _subsample(n: int, m: int, seed: int, salt: int) -> np.ndarray | None:
    """Sorted seeded row numbers of ``m`` of ``n`` rows, or None when all rows are taken."""
    return None if n <= m else np.sort(_rng(seed, salt).choice(n, size=m, replace=False))


def _floats(X: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    return np.ascontiguousarray(X if rows is None else X[rows], dtype=np.float32)


# --- the column groups --------------------------------------------------------------------------------------------


def _pca(Z: np.ndarray, cfg: ExportConfig, info: dict) -> dict[str, np.ndarray]:
    from zspace.analyses.pca import fit_pca, project

    n = len(Z)
    try:
        pca, n_fit = fit_pca(Z, fit_max=cfg.pca_fit_max, random_state=_rng(cfg.seed, 1))
    except ValueError as e:
        info["pca"] = {"skipped": str(e)}
        return {}
    comps = min(2, pca.n_components_)
    P = project(Z, pca.mean_, pca.components_[:comps])
    out = {"pca_x": P[:, 0]}
    if comps == 2:
        out["pca_y"] = P[:, 1]
    ratio = [float(r) for r in pca.explained_variance_ratio_[:comps]]
    info["pca"] = {"components": [1, 2][:comps], "explained_variance_ratio": ratio, "fitted_on": n_fit, "n": n}
    if comps < 2:
        info["pca"]["note"] = "one component only: pca_y is null"
    return out


def _tsne(Z: np.ndarray, cfg: ExportConfig, info: dict) -> dict[str, np.ndarray]:
    from zspace.analyses.tsne import embed_tsne, fit_perplexity, tsne_features

    n = len(Z)
    if n < 4:
        info["tsne"] = {"skipped": f"t-SNE needs at least 4 points, got {n}"}
        return {}
    fit = _subsample(n, cfg.tsne_max, cfg.seed, 2)
    t0 = time.perf_counter()
    if fit is None:
        Y = embed_tsne(_floats(Z), random_state=cfg.seed)
        n_fit = n
    else:
        rest = np.setdiff1d(np.arange(n), fit, assume_unique=True)
        feats = tsne_features(_floats(Z, fit), _floats(Z, rest), random_state=cfg.seed)
        Y = np.empty((n, 2))
        Y[fit], Y[rest] = feats.train, feats.test
        n_fit = len(fit)
    info["tsne"] = {
        "method": "openTSNE",
        "perplexity": fit_perplexity(30.0, n_fit),
        "early_exaggeration": 12.0,
        "n_iter": 1000,
        "fitted_on": n_fit,
        "placed": n - n_fit,
        "placement": "openTSNE TSNEEmbedding.transform" if n_fit < n else None,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return {"tsne_x": Y[:, 0].astype(np.float32), "tsne_y": Y[:, 1].astype(np.float32)}


def _umap(Z: np.ndarray, cfg: ExportConfig, info: dict) -> dict[str, np.ndarray]:
    from zspace.analyses.umap import fit_umap

    n = len(Z)
    if n < 3:
        info["umap"] = {"skipped": f"a UMAP map needs at least 3 points, got {n}"}
        return {}
    fit = _subsample(n, cfg.umap_max, cfg.seed, 3)
    t0 = time.perf_counter()
    model = fit_umap(_floats(Z, fit), random_state=cfg.seed)
    Y = np.empty((n, 2), dtype=np.float32)
    if fit is None:
        Y[:] = model.embedding_
    else:
        rest = np.setdiff1d(np.arange(n), fit, assume_unique=True)
        Y[fit] = model.embedding_
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # umap-learn and numba warn about their internals
            for start in range(0, len(rest), 65536):
                part = rest[start : start + 65536]
                Y[part] = model.transform(_floats(Z, part))
    n_fit = n if fit is None else len(fit)
    info["umap"] = {
        "method": "umap-learn",
        "n_neighbors": int(model.n_neighbors),
        "min_dist": float(model.min_dist),
        "fitted_on": n_fit,
        "placed": n - n_fit,
        "placement": "umap.UMAP.transform" if n_fit < n else None,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return {"umap_x": Y[:, 0], "umap_y": Y[:, 1]}


def _neighbours(Z: np.ndarray, keys: set[str], cfg: ExportConfig, info: dict) -> dict[str, np.ndarray]:
    from zspace.analyses.manifold_id import local_dimensions
    from zspace.analyses.manifold_nn import in_void, neighbour_distances, void_threshold

    n = len(Z)
    if n < 2:
        for key in keys:
            info[key] = {"skipped": f"neighbours need at least 2 points, got {n}"}
        return {}
    rows = _subsample(n, cfg.neighbours_max, cfg.seed, 4)
    X = _floats(Z, rows)
    m = len(X)
    k = min(cfg.lid_k, m - 1) if "lid" in keys else 1
    dist = neighbour_distances(X, k)
    where = {"computed_on": m, "null": n - m}
    if rows is not None:
        where["note"] = f"a seeded subsample of {m:,} of {n:,} points (neighbours among it); other rows are null"
    values: dict[str, np.ndarray] = {}
    if "nn" in keys:
        values["nn_distance"] = dist[:, 0]
        info["nn"] = {"method": "exact (faiss IndexFlatL2, distances in float64)", **where}
    if "lid" in keys:
        if k >= 2:
            values["lid"] = local_dimensions(dist)
            info["lid"] = {"method": "Levina-Bickel MLE", "k": k, **where}
            if k < cfg.lid_k:
                info["lid"]["note"] = f"k = {cfg.lid_k} asked for, but only {m} points: k = {k}"
        else:
            info["lid"] = {"skipped": f"the local dimension needs at least 3 points, got {m}"}
    if "void" in keys:
        threshold = void_threshold(dist[:, 0], cfg.void_quantile)
        values["void"] = in_void(dist[:, 0], threshold)
        info["void"] = {"quantile": cfg.void_quantile, "threshold": threshold, **where}
    if rows is None:
        return values
    full = {}
    for name, v in values.items():
        out = np.full(n, np.nan) if v.dtype != bool else np.zeros(n, dtype=bool)
        out[rows] = v
        full[name] = (out, rows)  # the rows that hold a value (the others become null)
    return full


def _radius(Z: np.ndarray, cfg: ExportConfig, info: dict) -> dict[str, np.ndarray]:
    from zspace.analyses.radius import radii

    info["radius"] = {"of": "z"}
    return {"radius": radii(Z)}


def _cluster(Z: np.ndarray, cfg: ExportConfig, info: dict) -> dict[str, np.ndarray]:
    return {"cluster": kmeans_labels(Z, pick_k(Z, cfg, info), seed=cfg.seed)}


def pick_k(Z: np.ndarray, cfg: ExportConfig, info: dict) -> int:
    """The number of clusters: ``cfg.k`` when given, else the pronounced Kneedle elbow of a Lloyd elbow curve
    (:data:`ELBOW_KS`, one fit per k, on at most ``cfg.elbow_max`` seeded points), else :data:`DEFAULT_K`."""
    n = len(Z)
    if cfg.k:
        if cfg.k > n:
            raise ConfigError(f"--k {cfg.k} is larger than the {n:,} points")
        info["cluster"] = {"k": cfg.k, "chosen_by": "given (--k)"}
        return cfg.k
    from zspace.analyses.elbow import elbow_curve

    rows = _subsample(n, cfg.elbow_max, cfg.seed, 5)
    X = _floats(Z, rows)
    ks = ELBOW_KS[: int(np.searchsorted(ELBOW_KS, len(X) - 1, side="right"))]
    elbow = elbow_curve(X, ks, algorithm="lloyd", restarts=1, seed=cfg.seed).elbow if len(ks) >= 3 else None
    curve = f"Kneedle on a Lloyd curve of k = {ks[0]}..{ks[-1]}, {len(X):,} points" if len(ks) else "no curve"
    if elbow is not None and elbow.k is not None and elbow.pronounced:
        k, chosen = int(elbow.k), f"elbow ({curve}; {elbow.describe()})"
    else:  # clusterless data bends nowhere: a Kneedle point of a power law is no number of clusters
        k = min(DEFAULT_K, n)
        why = elbow.describe() if elbow is not None else "too few points for a curve"
        chosen = f"default k = {k} ({curve}; {why})"
    info["cluster"] = {"k": k, "chosen_by": chosen}
    return k


def kmeans_labels(Z: np.ndarray, k: int, *, seed: int = 0) -> np.ndarray:
    """KMeans cluster of every point, fitted as the elbow analysis' Lloyd curve fits one k.

    faiss Lloyd k-means from k-means++ starts, in the first 64 PCA components of a larger space, on a sample of at
    most 256 points per centre (at least 20,000); then each centre moves to the mean of its points in the full
    space and every point takes its nearest centre there.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, z_dim)
    k : int, 1 <= k <= n_samples.
    seed : int

    Returns
    -------
    ndarray of shape (n_samples,), int32 in 0..k-1.
    """
    from zspace.analyses.elbow import LloydSettings
    from zspace.analyses.kmeans import cluster_means, faiss_labels, nearest_centres, pca_basis, project

    settings = LloydSettings()
    X = _floats(Z)
    if 0 < settings.fit_dims < X.shape[1]:
        mean, basis = pca_basis(X, settings.fit_dims, seed=seed)
        Y = project(X, mean, basis)
    else:
        Y = X
    first = faiss_labels(Y, k, seed=seed, n_iter=settings.n_iter,
                         max_points_per_centroid=settings.max_points_per_centroid)  # fmt: skip
    centres = cluster_means(X, [first], [k])[0]
    return nearest_centres(X, centres)[0].astype(np.int32)


# --- the table ----------------------------------------------------------------------------------------------------


def _column(values: Any) -> Any:
    """A pyarrow array; NaN (float) or rows outside a subsample (a (values, rows) pair) become nulls."""
    import pyarrow as pa

    mask = None
    if isinstance(values, tuple):
        values, rows = values
        mask = np.ones(len(values), dtype=bool)
        mask[rows] = False
    values = np.asarray(values)
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        mask = ~np.isfinite(values) if mask is None else mask | ~np.isfinite(values)
    return pa.array(values) if mask is None else pa.array(values, mask=mask)


def _label_columns(lat: Latents) -> dict[str, Any]:
    import pyarrow as pa

    if lat.labels is None:
        return {}
    labels = np.asarray(lat.labels).astype(np.int64)
    out: dict[str, Any] = {"label": pa.array(labels)}
    names = lat.meta.get("label_names")
    if names:
        names = [str(s) for s in names]
        ok = (labels >= 0) & (labels < len(names))
        text = np.array(names, dtype=object)[np.where(ok, labels, 0)]
        out["label_name"] = pa.array(text.tolist(), type=pa.string(), mask=~ok)
    return out


def _attribute_columns(lat: Latents, taken: set[str], notes: list[str]) -> dict[str, Any]:
    import pyarrow as pa

    if lat.attributes is None:
        return {}
    A = np.asarray(lat.attributes)
    A = A.reshape(len(A), -1)
    names = [str(s) for s in (lat.meta.get("attribute_names") or [])]
    if len(names) != A.shape[1]:
        names = [f"attribute_{j}" for j in range(A.shape[1])]
    out = {}
    for j, name in enumerate(names):
        col = name
        while col in taken or col in out:
            col = f"attr_{col}"
        if col != name:
            notes.append(f"attribute {name!r} is written as column {col!r} (the name is taken)")
        out[col] = pa.array(np.asarray(A[:, j], dtype=np.float32))
    return out


def _vectors(Z: np.ndarray) -> Any:
    import pyarrow as pa

    flat = pa.array(np.ascontiguousarray(Z, dtype=np.float32).reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, Z.shape[1])


def export_table(
    latents: Latents,
    cfg: ExportConfig | None = None,
    *,
    source: dict[str, Any] | None = None,
    on_step: Callable[[str], None] | None = None,
) -> Any:
    """One row per point of ``latents``: index, labels, attributes, the embedding and the asked column groups.

    Parameters
    ----------
    latents : Latents with ``z`` of shape (n_samples, z_dim), n_samples >= 1.
    cfg : ExportConfig (default: every column group).
    source : what the latents came from, for the metadata (JSON-able).
    on_step : called with the name of each column group before it is computed.

    Returns
    -------
    pyarrow.Table of n_samples rows; the schema's metadata key ``zspace`` holds the JSON described in the module.
    """
    import pyarrow as pa

    from zspace import __version__

    cfg = cfg or ExportConfig()
    check_declared(cfg, "export.")
    Z = latents.z
    n = len(Z)
    if n == 0:
        raise DataError("no latent points to export")
    info: dict[str, Any] = {}
    notes: list[str] = []
    step = on_step or (lambda name: None)
    cols: dict[str, Any] = {"index": pa.array(np.asarray(latents.index).astype(np.int64))}
    cols |= _label_columns(latents)
    computed: dict[str, Any] = {}
    asked = [k for k in KEYS if k in cfg.only]
    steps: list[tuple[str, Callable[..., dict[str, Any]]]] = [
        ("cluster", _cluster),  # first: a --k larger than N fails before anything slow runs
        ("pca", _pca),
        ("tsne", _tsne),
        ("umap", _umap),
        ("radius", _radius),
    ]
    near = {k for k in NEIGHBOURS if k in asked}
    if near:
        steps.append(("neighbours", lambda Z, cfg, info: _neighbours(Z, near, cfg, info)))
    for key, compute in steps:
        if key != "neighbours" and key not in asked:
            continue
        step(key)
        t0 = time.perf_counter()
        computed |= compute(Z, cfg, info)
        for group in near if key == "neighbours" else (key,):
            info.setdefault(group, {})["seconds"] = round(time.perf_counter() - t0, 3)
    for key in asked:
        for name in COLUMNS[key]:
            if name in computed:
                cols[name] = _column(computed[name])
    if cfg.vectors:
        cols["z"] = _vectors(Z)
    cols |= _attribute_columns(latents, set(cols), notes)
    meta = {
        "format": FORMAT,
        "zspace_version": __version__,
        "source": {**(source or {}), "n": n, "z_dim": int(Z.shape[1])},
        "seed": cfg.seed,
        "nonfinite_dropped": int(latents.meta.get("nonfinite_dropped", 0)),
        "vectors": "z" if cfg.vectors else None,
        "columns": {k: info.get(k, {}) for k in asked},
        "config": dataclasses.asdict(cfg),
        "notes": notes,
    }
    table = pa.table(cols)
    return table.replace_schema_metadata({"zspace": json.dumps(meta, default=_jsonable)})


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


def metadata(table: Any) -> dict[str, Any]:
    """The ``zspace`` metadata of an exported table (or of its schema) as a dict; {} when there is none."""
    schema = getattr(table, "schema", table)
    raw = (schema.metadata or {}).get(b"zspace")
    return json.loads(raw) if raw else {}


# --- writing ------------------------------------------------------------------------------------------------------


def table_bytes(table: Any, fmt: str) -> bytes:
    """The bytes of ``table`` as ``"parquet"``, ``"arrow"`` (IPC file, also ``.feather`` v2) or ``"csv"``."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    if fmt == "parquet":
        pq.write_table(table, sink)
    elif fmt == "arrow":
        with pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
    elif fmt == "csv":
        pcsv.write_csv(_flat(table), sink)
    else:
        raise ConfigError(f"unknown table format {fmt!r} (known: parquet, arrow, csv)")
    return sink.getvalue().to_pybytes()


def _flat(table: Any) -> Any:
    """``table`` without list columns: ``z`` as ``z_0 .. z_{d-1}``, and without metadata (CSV has neither)."""
    import pyarrow as pa

    cols = {}
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_fixed_size_list(col.type):
            width = col.type.list_size
            flat = np.asarray(col.combine_chunks().flatten()).reshape(-1, width)
            cols |= {f"{name}_{j}": pa.array(flat[:, j]) for j in range(width)}
        else:
            cols[name] = col
    return pa.table(cols)


def format_of(path: str | Path) -> str:
    """``"parquet"``, ``"arrow"`` or ``"csv"`` from the suffix of ``path``; any other suffix is a ConfigError."""
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise ConfigError(f"export: {path}: the table's suffix must be one of {', '.join(SUFFIXES)}, got {suffix!r}")
    return SUFFIXES[suffix]


def write_export(table: Any, path: str | Path) -> Path:
    """Write ``table`` to ``path`` (format by suffix), atomically; a file there is replaced only when zspace
    wrote it (a manifest records it with its current hash), else a ConfigError names it."""
    from zspace.io.atomic import write_owned_file

    path = Path(path)
    fmt = format_of(path)
    write_owned_file(path, table_bytes(table, fmt), kind="export", remedy="choose another --to")
    return path


def check_target(path: str | Path) -> None:
    """Refuse ``path`` before anything slow runs: an unknown suffix, a folder, a link, or a file zspace did not
    write (the same rule :func:`write_export` applies)."""
    from zspace.io.atomic import check_owned_file

    format_of(Path(path))
    check_owned_file(Path(path), "choose another --to")


# --- the one entry point ------------------------------------------------------------------------------------------


def export(
    source: Any,
    path: str | Path | None = None,
    *,
    table: Any = None,
    labels: Any = None,
    class_names: Sequence[str] | str | Path | None = None,
    split: str = "all",
    device: str = "cpu",
    progress: Any = None,
    on_step: Callable[[str], None] | None = None,
    **options: Any,
) -> Any:
    """One row per latent point, as a ``pyarrow.Table``, written to ``path`` when given.

    Parameters
    ----------
    source : anything :func:`zspace.report.resolve.resolve` takes: a run folder, a latents folder, an
        ``.npy``/``.npz``/``.safetensors`` file, a ``.parquet``/``.arrow``/``.feather``/``.csv`` table, loaded
        ``Latents`` or a ``Run``, or an array of shape (n_samples, z_dim).
    path : str or Path, optional; ``.parquet``, ``.arrow``/``.feather`` or ``.csv`` (by suffix).
    table : :class:`~zspace.latents.tables.TableColumns`, optional; which columns of a table source hold the
        embedding, labels and attributes.
    labels : array of shape (n_samples,) int, optional; only with an array ``source`` in memory.
    class_names : names of classes 0..K-1 (a sequence, or a file with one name per line).
    split, device, progress : a run's split, and where/how its missing latents are encoded.
    on_step : called with the name of each column group before it is computed.
    **options : fields of :class:`ExportConfig`: ``only`` ("pca,tsne" or a sequence), ``seed``, ``k``,
        ``tsne_max``, ``umap_max``, ``neighbours_max``, ``elbow_max``, ``pca_fit_max``, ``lid_k``,
        ``void_quantile``, ``vectors``.

    Returns
    -------
    pyarrow.Table with n_samples rows (see the module's docstring for the columns and metadata).
    """
    from zspace.data.names import read_names
    from zspace.report.analyze import name_classes
    from zspace.report.resolve import resolve

    fields = {f.name for f in dataclasses.fields(ExportConfig)}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise ConfigError(f"export: unknown option {unknown[0]!r} (known: {', '.join(sorted(fields))})")
    if "only" in options:
        options["only"] = parse_only(options["only"])
    cfg = ExportConfig(**options)
    check_declared(cfg, "export.")
    if path is not None:
        check_target(path)
    src = resolve(source, labels=labels, split=split, device=device, progress=progress, table=table)
    if isinstance(class_names, (str, Path)):
        class_names = read_names(class_names)
    name_classes(src, list(class_names or ()))
    lat = src.latents
    described = {
        "name": src.name,
        "input": str(source) if isinstance(source, (str, Path)) else type(source).__name__,
        "latents": str(lat.path) if lat.path is not None else None,
        "run": str(src.run.path) if src.run is not None else None,
        "kind": lat.meta.get("kind"),
        "split": lat.meta.get("split"),
        "dataset": lat.meta.get("dataset"),
        "freshness": src.freshness or None,
    }
    out = export_table(lat, cfg, source=described, on_step=on_step)
    if path is not None:
        write_export(out, path)
        log.debug("exported %d rows x %d columns to %s", out.num_rows, out.num_columns, path)
    return out
