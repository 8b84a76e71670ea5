"""Embeddings a user already has, as a table: Parquet (``.parquet``), Arrow IPC (``.arrow``, ``.feather``), CSV.

The embedding ``z`` (n_samples, z_dim) is the one list (or fixed-size list) numeric column, found when there is
exactly one (else named with ``column``), or else every numeric column that is not a label or attribute column.
``labels`` names an integer or string column (strings become codes 0..K-1 in sorted order, the strings kept as
``meta["label_names"]``); ``attributes`` names numeric columns (``meta["attribute_names"]``). Only the needed
columns are read from Parquet and Arrow files. Checks are those of a latents folder: rows with NaN, infinity or
a missing value in ``z`` are counted and dropped; the index is 0..N-1.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zspace.errors import DataError
from zspace.latents.embedding import Latents, checked

log = logging.getLogger(__name__)

TABLE_SUFFIXES = (".parquet", ".arrow", ".feather", ".csv")


@dataclass(frozen=True)
class TableColumns:
    """Which columns of a table hold what: ``column`` (the embedding), ``labels``, ``attributes``; None = auto."""

    column: str | None = None
    labels: str | None = None
    attributes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def given(self) -> bool:
        return bool(self.column or self.labels or self.attributes)


def _first_line(e: BaseException) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def _read(path: Path, columns: list[str] | None) -> Any:
    """The table (only ``columns`` when given, None = the schema only for Parquet/Arrow); a pyarrow Table."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.feather as feather
    import pyarrow.parquet as pq

    readers = {
        ".parquet": lambda: pq.read_table(path, columns=columns) if columns is not None else pq.read_schema(path),
        ".arrow": lambda: _ipc(path, columns),
        ".feather": lambda: feather.read_table(path, columns=columns) if columns is not None else _ipc(path, None),
        ".csv": lambda: pcsv.read_csv(path),
    }
    try:
        return readers[path.suffix.lower()]()
    except (pa.ArrowException, OSError, ValueError, KeyError) as e:
        raise DataError(f"table {path} cannot be read ({_first_line(e)})") from None


def _ipc(path: Path, columns: list[str] | None) -> Any:
    import pyarrow as pa

    with pa.memory_map(str(path)) as source:
        try:
            reader = pa.ipc.open_file(source)
            schema = reader.schema
            table = reader.read_all() if columns is not None else None
        except pa.ArrowInvalid:  # an Arrow stream rather than a file
            source.seek(0)
            stream = pa.ipc.open_stream(source)
            schema = stream.schema
            table = stream.read_all() if columns is not None else None
    return schema if table is None else table.select(columns)


def _is_numeric(t: Any) -> bool:
    import pyarrow as pa

    return pa.types.is_integer(t) or pa.types.is_floating(t)


def _is_list(t: Any) -> bool:
    import pyarrow as pa

    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)


def _embedding_columns(schema: Any, spec: TableColumns, what: str) -> list[str]:
    taken = {spec.labels, *spec.attributes}
    if spec.column:
        t = schema.field(spec.column).type
        if not (_is_list(t) and _is_numeric(t.value_type)):
            raise DataError(f"{what}: column {spec.column!r} is {t}, not a list of numbers (one vector a row)")
        return [spec.column]
    lists = [f.name for f in schema if _is_list(f.type) and f.name not in taken]
    if len(lists) > 1:
        raise DataError(f"{what} has {len(lists)} list columns ({', '.join(lists)}); choose one with --column")
    if lists:
        t = schema.field(lists[0]).type
        if not _is_numeric(t.value_type):
            raise DataError(f"{what}: column {lists[0]!r} is {t}, not a list of numbers")
        return lists
    numeric = [f.name for f in schema if _is_numeric(f.type) and f.name not in taken]
    if not numeric:
        raise DataError(f"{what} has no numeric column and no list column to read as the embedding")
    if len(numeric) == 1:
        raise DataError(f"{what}: the embedding would be the lone column {numeric[0]!r} (z_dim 1); name a list "
                        "column with --column, or give at least 2 numeric columns")  # fmt: skip
    return numeric


def left_out(schema: Any, spec: TableColumns, z_cols: list[str]) -> list[str]:
    """The columns that are neither the embedding nor labels/attributes, with their types (``"c (string)"``): in
    numeric-columns mode a column with one non-numeric cell is one of them, so the report names them."""
    if len(z_cols) == 1 and _is_list(schema.field(z_cols[0]).type):
        return []  # the embedding is one list column: other columns are the user's own business
    taken = {spec.labels, *spec.attributes, *z_cols}
    return [f"{f.name} ({f.type})" for f in schema if f.name not in taken]


def _floats(chunked: Any) -> np.ndarray:
    """A numeric column as a float array, missing values as NaN."""
    a = chunked.to_numpy()
    return a if a.dtype.kind == "f" else a.astype(np.float64)


def _list_matrix(chunked: Any, name: str, what: str) -> np.ndarray:
    import pyarrow.compute as pc

    arr = chunked.combine_chunks()
    lengths = pc.list_value_length(arr).to_numpy(zero_copy_only=False)
    valid = ~np.isnan(lengths.astype(np.float64))
    sizes = np.unique(lengths[valid]).astype(int)
    if len(sizes) > 1:
        raise DataError(f"{what}: column {name!r} is ragged (vectors of lengths {sizes[0]} and {sizes[1]})")
    if len(sizes) == 0 or sizes[0] == 0:
        raise DataError(f"{what}: column {name!r} holds no vector with values")
    values = _floats(arr.filter(valid).flatten()).reshape(-1, int(sizes[0]))
    out = np.full((len(arr), int(sizes[0])), np.nan, dtype=values.dtype)  # a missing vector: a dropped row
    out[valid] = values
    return out


def _labels(chunked: Any, name: str, what: str) -> tuple[np.ndarray, list[str] | None]:
    import pyarrow as pa
    import pyarrow.compute as pc

    t = chunked.type
    if chunked.null_count:
        raise DataError(f"{what}: labels column {name!r} has {chunked.null_count:,} missing values")
    if pa.types.is_dictionary(t):
        chunked, t = chunked.cast(t.value_type), t.value_type
    if pa.types.is_integer(t):
        codes = chunked.to_numpy().astype(np.int64)
        if len(codes) and codes.min() < 0:
            raise DataError(f"{what}: labels column {name!r} has negative values (min {codes.min()})")
        return codes, None
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        names = sorted(pc.unique(chunked).to_pylist())
        return pc.index_in(chunked, value_set=pa.array(names, t)).to_numpy().astype(np.int64), names
    raise DataError(f"{what}: labels column {name!r} is {t}; labels are integers or strings")


def _check_names(schema: Any, spec: TableColumns, what: str) -> None:
    have = set(schema.names)
    for kind, names in (("--column", [spec.column]), ("--labels", [spec.labels]), ("--attributes", spec.attributes)):
        for n in names:
            if n is not None and n not in have:
                raise DataError(f"{what} has no column {n!r} ({kind}); it has: {', '.join(schema.names)}")


def read_table(path: str | Path, spec: TableColumns | None = None, *, drop_nonfinite: bool = True) -> Latents:
    """The latents in a table (see the module's docstring); a :class:`DataError` names what is wrong.

    Parameters
    ----------
    path : a ``.parquet``, ``.arrow``, ``.feather`` or ``.csv`` file.
    spec : which columns hold the embedding, the labels (n_samples,) and the attributes (n_samples, A).

    Returns
    -------
    Latents with ``z`` (n_samples, z_dim), ``labels`` and ``attributes`` when named; no ``mu``/``logvar``.
    """
    path, spec = Path(path), spec or TableColumns()
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise DataError(f"{path}: tables are {', '.join(TABLE_SUFFIXES)}")
    if not path.is_file():
        raise DataError(f"not found: {path}")
    what = f"table {path}"
    first = _read(path, None)
    schema = first.schema if hasattr(first, "schema") else first
    _check_names(schema, spec, what)
    bad = [a for a in spec.attributes if not _is_numeric(schema.field(a).type)]
    if bad:
        raise DataError(f"{what}: attribute column {bad[0]!r} is {schema.field(bad[0]).type}, not numeric")
    z_cols = _embedding_columns(schema, spec, what)
    needed = list(dict.fromkeys([*z_cols, *([spec.labels] if spec.labels else []), *spec.attributes]))
    table = first.select(needed) if hasattr(first, "schema") else _read(path, needed)
    if table.num_rows == 0:
        raise DataError(f"{what} has no rows")
    if len(z_cols) == 1 and _is_list(schema.field(z_cols[0]).type):
        z = _list_matrix(table.column(z_cols[0]), z_cols[0], what)
    else:
        z = np.column_stack([_floats(table.column(c)) for c in z_cols])
    meta: dict[str, Any] = {"source_file": str(path.resolve()), "kind": "ae", "table_columns": z_cols}
    if skipped := left_out(schema, spec, z_cols):
        log.warning("%s: columns left out of the embedding (not numeric): %s", what, ", ".join(skipped))
        meta["columns_left_out"] = skipped
    labels = None
    if spec.labels:
        labels, names = _labels(table.column(spec.labels), spec.labels, what)
        if names is not None:
            meta["label_names"] = names
    attributes = None
    if spec.attributes:
        attributes = np.column_stack([_floats(table.column(a)) for a in spec.attributes])
        meta["attribute_names"] = list(spec.attributes)
    lat = Latents(z=z, index=None, labels=labels, attributes=attributes, meta=meta)
    return checked(lat, what, drop_nonfinite=drop_nonfinite)
